/* exp_report_plot.c - the report's plots (exp_report.c): robust accuracy vs eps per norm, success vs training
 * temperature, distortion histograms; each as PNG and SVG (exp_plot.h). */
#include "exp_plot.h"
#include "exp_report_int.h"
#include "exp_run.h"
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- plots ---- */

static int stem_used(const rp *r, const char *s) {
    for (size_t i = 0; i < r->n_plot; i++)
        if (!strcmp(r->plot[i].stem, s)) return 1;
    return 0;
}

/* A new plot record named stem (made unique with a counter). */
static int plot_add(rp *r, const char *stem, rp_plot **pl, nn_err *err) {
    if (r->n_plot == r->cap_plot) {
        size_t cap = r->cap_plot ? 2 * r->cap_plot : 8;
        rp_plot *p = realloc(r->plot, cap * sizeof *p);
        if (!p) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
        r->plot = p, r->cap_plot = cap;
    }
    *pl = memset(&r->plot[r->n_plot], 0, sizeof **pl);
    snprintf((*pl)->stem, sizeof(*pl)->stem, "%s", stem);
    for (size_t k = 2; stem_used(r, (*pl)->stem); k++)
        snprintf((*pl)->stem, sizeof(*pl)->stem, "%.100s_%zu", stem, k);
    r->n_plot++;
    return NN_OK;
}

/* <dir>/plots/<stem>.png and .svg. */
static int plot_write(const rp *r, const exp_plot_spec *p, const rp_plot *pl, FILE *out, nn_err *err) {
    char dir[RP_PATH], name[200], path[RP_PATH];
    int rc = exp_path_join(dir, sizeof dir, r->dir, "plots", err);
    if (!rc) rc = exp_mkdir_p(dir, err);
    for (int svg = 0; svg < 2 && !rc; svg++) {
        snprintf(name, sizeof name, "%s.%s", pl->stem, svg ? "svg" : "png");
        rc = exp_path_join(path, sizeof path, dir, name, err);
        if (!rc && (rc = svg ? exp_plot_svg_write(p, path, err) : exp_plot_png(p, path, err)) && err &&
            !strstr(err->msg, path)) { /* name the file */
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            NN_FAIL(err, rc, "%s: %s", path, msg);
        }
        if (!rc && out) fprintf(out, "%s\n", path);
    }
    return rc;
}

/* Sorts the points (x[i], y[i]) by x, stably (insertion sort: short series). */
static void sort_xy(double *x, double *y, size_t n) {
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && x[j - 1] > x[j]; j--) {
            double tx = x[j], ty = y[j];
            x[j] = x[j - 1], y[j] = y[j - 1], x[j - 1] = tx, y[j - 1] = ty;
        }
}

static exp_plot_spec spec_rate(const char *title, const char *xlabel, const char *ylabel) {
    exp_plot_spec p = exp_plot_spec_default();
    p.title = title, p.xlabel = xlabel, p.ylabel = ylabel;
    p.y_fixed = 1, p.y_min = 0, p.y_max = 1, p.y_format = EXP_PLOT_FMT_PERCENT;
    return p;
}

/* The length of the longest prefix ending in '/' common to the labels of all models (>= 2 models), leaving
 * every label non-empty; 0 when there is none. Legends of per-model series show the labels without it. */
size_t rp_label_prefix(const rp *r) {
    if (r->n_m < 2) return 0;
    size_t n = strlen(r->m[0].label);
    for (size_t i = 1; i < r->n_m; i++) {
        size_t k = 0;
        while (k < n && r->m[i].label[k] == r->m[0].label[k])
            k++;
        n = k;
    }
    for (; n > 0; n--) {
        int ok = r->m[0].label[n - 1] == '/';
        for (size_t i = 0; i < r->n_m && ok; i++)
            ok = r->m[i].label[n] != '\0';
        if (ok) return n;
    }
    return 0;
}

/* The report's line above a plot of per-model series whose legend drops the common prefix. */
static void prefix_sub(const rp *r, rp_plot *pl) {
    size_t pre = r->pre;
    if (pre)
        snprintf(pl->sub, sizeof pl->sub, "Legend: the model labels without their common prefix \"%.*s\".",
                 (int)(pre < 200 ? pre : 200), r->m[0].label);
}

/* robust_vs_eps_<norm>: the worst case per threat model, a line per model (series i = model i, so a model
 * keeps its colour across plots; a model without that norm has no points and no legend entry). */
int rp_plot_robust(rp *r, FILE *out, nn_err *err) {
    size_t nm = r->n_m < EXP_PLOT_MAX_SERIES ? r->n_m : EXP_PLOT_MAX_SERIES, tot = 0;
    for (size_t i = 0; i < r->n_m; i++)
        tot += r->m[i].n_wc;
    double *x = malloc(2 * (tot + 1) * sizeof *x), *y = x ? x + tot + 1 : NULL;
    exp_plot_series *s = calloc(nm + 1, sizeof *s);
    int rc = x && s ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (int k = 0; k < N_NORMS && !rc; k++) {
        size_t off = 0, any = 0;
        for (size_t i = 0; i < r->n_m; i++)
            for (size_t j = 0; j < r->m[i].n_wc; j++)
                any += r->m[i].wc[j].norm == k;
        for (size_t i = 0; i < nm && any; i++) {
            s[i] = (exp_plot_series){NULL, x + off, y + off, 0};
            for (size_t j = 0; j < r->m[i].n_wc; j++)
                if (r->m[i].wc[j].norm == k)
                    x[off + s[i].n] = r->m[i].wc[j].eps, y[off + s[i].n++] = r->m[i].wc[j].robust;
            sort_xy(x + off, y + off, s[i].n);
            s[i].label = s[i].n ? r->m[i].label + r->pre : NULL;
            off += s[i].n;
        }
        if (!any) continue;
        char stem[64], title[96], xl[64];
        rp_plot *pl;
        snprintf(stem, sizeof stem, "robust_vs_eps_%s", RP_NORMS[k]);
        snprintf(title, sizeof title, "Worst-case robust accuracy vs ε (%s)", RP_NORM_SHOW[k]);
        snprintf(xl, sizeof xl, "ε (%s bound%s)", RP_NORM_SHOW[k], k == 2 ? ", features changed" : "");
        exp_plot_spec p = spec_rate(title, xl, "robust accuracy");
        p.series = s, p.n_series = nm;
        if ((rc = plot_add(r, stem, &pl, err))) break;
        snprintf(pl->caption, sizeof pl->caption, "%s", title);
        prefix_sub(r, pl);
        if (nm < r->n_m)
            snprintf(pl->note, sizeof pl->note, "Only the first %zu of %zu models are plotted.", nm, r->n_m);
        rc = plot_write(r, &p, pl, out, err);
    }
    free(x), free(s);
    return rc;
}

/* The success rate model m reaches with `attack`: bounded (eps a number) at exactly that eps, unbounded (eps
 * NaN) by its own criterion (the summary without a bound). NaN when m has no such cell or summary. */
static double success_at(const rp_model *m, const char *attack, double eps) {
    for (size_t j = 0; j < m->n_cell; j++) {
        const rp_cell *c = &m->cell[j];
        if (strcmp(c->attack, attack) || (isnan(eps) ? !isnan(c->eps) : c->eps != eps)) continue;
        for (size_t q = 0; q < c->n_sum; q++)
            if (isnan(eps) ? isnan(c->sum[q].eps) : c->sum[q].eps == eps) return c->sum[q].num[S_SUCCESS];
    }
    return NAN;
}

/* Appends " <head>a, b, c." to buf (nothing when n == 0; cut with "..." when full). */
static void note_list(char *buf, size_t cap, const char *head, const char *const *names, size_t n) {
    size_t w = strlen(buf);
    for (size_t i = 0; i < n && w < cap; i++) {
        int k = snprintf(buf + w, cap - w, "%s%s%s%s", i == 0 && w ? " " : "", i == 0 ? head : "", names[i],
                         i + 1 < n ? ", " : ".");
        w += k > 0 ? (size_t)k : 0;
    }
    if (w >= cap && cap > 4) memcpy(buf + cap - 4, "...", 4);
}

/* 1 when at least two models of distinct temperatures have a success rate for (attack, eps). */
static int two_temperatures(const rp *r, const char *attack, double eps) {
    double t0 = NAN;
    for (size_t i = 0; i < r->n_m; i++)
        if (!isnan(success_at(&r->m[i], attack, eps))) {
            if (!isnan(t0) && r->m[i].t != t0) return 1;
            t0 = r->m[i].t;
        }
    return 0;
}

/* The attacks of the battery in order of first appearance, each with its largest bound (NaN: unbounded).
 * at[] and eps[] have room for every cell. Returns how many. */
static size_t battery(const rp *r, const char **at, double *eps) {
    size_t na = 0;
    for (size_t i = 0; i < r->n_m; i++)
        for (size_t j = 0; j < r->m[i].n_cell; j++) {
            const rp_cell *c = &r->m[i].cell[j];
            size_t q = 0;
            while (q < na && strcmp(at[q], c->attack))
                q++;
            if (q == na) at[na] = c->attack, eps[na++] = c->eps;
            if (!isnan(c->eps) && !(eps[q] >= c->eps)) eps[q] = c->eps; /* NaN or smaller: the larger */
        }
    return na;
}

/* success_vs_T (when the models differ in training temperature): a line per attack over T, the success
 * rate of bounded attacks at their largest eps ("<attack> ε=<eps>") and of unbounded ones by their own
 * criterion; only attacks with points at >= 2 distinct temperatures; at most EXP_PLOT_N_PALETTE lines (the
 * first in battery order). The note names the attacks not plotted. */
int rp_plot_temperature(rp *r, FILE *out, nn_err *err) {
    size_t distinct = 0, tot = 0, na = 0, ns = 0, n_few = 0, n_cut = 0;
    for (size_t i = 0; i < r->n_m; i++)
        distinct += i > 0 && r->m[i].t != r->m[0].t, tot += r->m[i].n_cell;
    if (!distinct) return NN_OK;
    const char **at = malloc((3 * tot + 1) * sizeof *at), **few = at ? at + tot : NULL,
               **cut = at ? at + 2 * tot : NULL;
    double *eps = malloc((tot + 1) * sizeof *eps), tmin = INFINITY, tmax = -INFINITY;
    double *x = malloc(2 * (EXP_PLOT_N_PALETTE * r->n_m + 1) * sizeof *x),
           *y = x ? x + EXP_PLOT_N_PALETTE * r->n_m + 1 : NULL;
    exp_plot_series s[EXP_PLOT_N_PALETTE] = {{0}};
    char lab[EXP_PLOT_N_PALETTE][200];
    rp_plot *pl = NULL;
    int rc = at && eps && x ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) na = battery(r, at, eps);
    for (size_t a = 0; a < na && !rc; a++) {
        double *px = x + ns * r->n_m, *py = y + ns * r->n_m;
        int two = two_temperatures(r, at[a], eps[a]);
        if (!two || ns == EXP_PLOT_N_PALETTE) {
            if (two)
                cut[n_cut++] = at[a];
            else
                few[n_few++] = at[a];
            continue;
        }
        size_t n = 0;
        for (size_t i = 0; i < r->n_m; i++) {
            double v = success_at(&r->m[i], at[a], eps[a]);
            if (!isnan(v)) px[n] = r->m[i].t, py[n++] = v;
        }
        sort_xy(px, py, n);
        for (size_t k = 0; k < n; k++)
            tmin = fmin(tmin, px[k]), tmax = fmax(tmax, px[k]);
        if (isnan(eps[a]))
            snprintf(lab[ns], sizeof lab[ns], "%.150s", at[a]);
        else
            snprintf(lab[ns], sizeof lab[ns], "%.150s ε=%g", at[a], eps[a]);
        s[ns] = (exp_plot_series){lab[ns], px, py, n};
        ns++;
    }
    exp_plot_spec p =
        spec_rate("Attack success rate vs training temperature", "training temperature T", "success rate");
    p.series = s, p.n_series = ns, p.log_x = tmin > 0 && tmax / tmin >= 20;
    if (!rc && ns) rc = plot_add(r, "success_vs_T", &pl, err);
    if (!rc && pl) {
        snprintf(pl->caption, sizeof pl->caption, "%s", p.title);
        snprintf(pl->sub, sizeof pl->sub,
                 "A line per attack: bounded attacks at their largest ε, unbounded attacks by their own "
                 "success criterion; only attacks run on models of at least two temperatures.");
        char head[96];
        snprintf(head, sizeof head,
                 "Left out (at most %d lines, the first in battery order): ", EXP_PLOT_N_PALETTE);
        note_list(pl->note, sizeof pl->note, "Not plotted, run at fewer than two temperatures: ", few, n_few);
        note_list(pl->note, sizeof pl->note, head, cut, n_cut);
        rc = plot_write(r, &p, pl, out, err);
    }
    free(at), free(eps), free(x);
    return rc;
}

/* The cell of model m running the unbounded attack `attack` in norm k, or NULL. */
static const rp_cell *find_unbounded(const rp_model *m, const char *attack, int k) {
    for (size_t j = 0; j < m->n_cell; j++)
        if (isnan(m->cell[j].eps) && m->cell[j].norm == k && !strcmp(m->cell[j].attack, attack))
            return &m->cell[j];
    return NULL;
}

/* hist_<attack>.png/.svg of one unbounded attack: the distortions of its successful runs, a series per model.
 */
static int plot_hist(rp *r, const char *attack, int k, FILE *out, nn_err *err) {
    size_t nm = r->n_m < EXP_PLOT_MAX_SERIES ? r->n_m : EXP_PLOT_MAX_SERIES;
    exp_plot_series *s = calloc(nm + 1, sizeof *s);
    char(*lab)[200] = malloc((nm + 1) * sizeof *lab), stem[160], title[200], xl[64];
    rp_plot *pl = NULL;
    int rc = s && lab ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < nm && !rc; i++) {
        const rp_cell *c = find_unbounded(&r->m[i], attack, k);
        if (!c) continue;
        snprintf(lab[i], sizeof lab[i], "%.150s (n=%zu)", r->m[i].label + r->pre, c->n_dist);
        s[i] = (exp_plot_series){lab[i], c->dist, NULL, c->n_dist};
    }
    size_t w = (size_t)snprintf(stem, sizeof stem, "hist_");
    for (const char *p = attack; *p && w < 100; p++) /* a file name: [A-Za-z0-9._-], others '_' */
        stem[w++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                            strchr("._-", *p)
                        ? *p
                        : '_';
    stem[w] = '\0';
    if (stem_used(r, stem)) snprintf(stem + w, sizeof stem - w, "_%s", RP_NORMS[k]);
    snprintf(title, sizeof title, "%.150s: distortion of successful runs", attack);
    snprintf(xl, sizeof xl, "%s distortion%s", RP_NORM_SHOW[k], k == 2 ? " (features changed)" : "");
    exp_plot_spec p = exp_plot_spec_default();
    p.kind = EXP_PLOT_HIST, p.hist_frac = 1, p.title = title, p.xlabel = xl,
    p.ylabel = "fraction of successful runs";
    p.series = s, p.n_series = nm;
    if (!rc) rc = plot_add(r, stem, &pl, err);
    if (!rc)
        snprintf(pl->caption, sizeof pl->caption, "Distortion (%s) of the successful runs of %.200s",
                 RP_NORM_SHOW[k], attack);
    if (!rc) prefix_sub(r, pl);
    if (!rc && nm < r->n_m)
        snprintf(pl->note, sizeof pl->note, "Only the first %zu of %zu models are plotted.", nm, r->n_m);
    if (!rc) rc = plot_write(r, &p, pl, out, err);
    free(s), free(lab);
    return rc;
}

/* A histogram per unbounded attack (name and norm), in order of first appearance. */
int rp_plot_hists(rp *r, FILE *out, nn_err *err) {
    int rc = NN_OK;
    for (size_t i = 0; i < r->n_m && !rc; i++)
        for (size_t j = 0; j < r->m[i].n_cell && !rc; j++) {
            const rp_cell *c = &r->m[i].cell[j];
            int seen = !isnan(c->eps) || find_unbounded(&r->m[i], c->attack, c->norm) != c;
            for (size_t q = 0; q < i && !seen; q++)
                seen = find_unbounded(&r->m[q], c->attack, c->norm) != NULL;
            if (!seen) rc = plot_hist(r, c->attack, c->norm, out, err);
        }
    return rc;
}

/* Removes <dir>/plots/{robust_vs_eps_*,success_vs_T,hist_*}.{png,svg} that this report did not write. */
void rp_plots_clean(const rp *r) {
    char dir[RP_PATH], path[RP_PATH];
    DIR *d = exp_path_join(dir, sizeof dir, r->dir, "plots", NULL) ? NULL : opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        const char *n = e->d_name;
        size_t len = strlen(n), keep = 0;
        if (len < 5 || (strcmp(n + len - 4, ".png") && strcmp(n + len - 4, ".svg"))) continue;
        if (strncmp(n, "robust_vs_eps_", 14) && strncmp(n, "hist_", 5) && strncmp(n, "success_vs_T.", 13))
            continue;
        for (size_t i = 0; i < r->n_plot && !keep; i++)
            keep = strlen(r->plot[i].stem) == len - 4 && !strncmp(n, r->plot[i].stem, len - 4);
        if (!keep && !exp_path_join(path, sizeof path, dir, n, NULL)) unlink(path);
    }
    if (d) closedir(d);
}
