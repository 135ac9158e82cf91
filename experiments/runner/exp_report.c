/* exp_report.c - the report of a batch evaluation (see exp_report.h).
 *
 * Two phases. Load (exp_report_load.c): results.json is parsed and checked member by member (errors name the
 * file and the member path), every cell's records.npy is read and its shape checked, and the distortions the
 * histograms need are kept; nothing is written yet. Write: the plots (exp_report_plot.c), summary.csv, then
 * report.md, each atomically; finally plots an earlier report made and this one did not are removed. Strings
 * point into the parsed document. No global mutable state. */
#include "exp_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exp_progress.h"
#include "exp_run.h"
#include "nn_io.h"

#include "exp_report_int.h"

/* ---- summary.csv ---- */

/* ",<s>" with RFC 4180 quoting (NULL: an empty field); first: no comma. */
static void csv_str(nn_jbuf *b, const char *s, int first) {
    if (!first) nn_jbuf_puts(b, ",");
    if (!s || !strpbrk(s, ",\"\r\n")) {
        nn_jbuf_puts(b, s ? s : "");
        return;
    }
    nn_jbuf_puts(b, "\"");
    for (const char *p = s; *p; p++)
        nn_jbuf_puts(b, *p == '"' ? "\"\"" : (char[2]){*p, 0});
    nn_jbuf_puts(b, "\"");
}

static void csv_num(nn_jbuf *b, double v) {
    nn_jbuf_puts(b, ",");
    if (isfinite(v)) nn_jbuf_printf(b, "%.9g", v);
}

static void csv_diag(nn_jbuf *b, const rp_model *m) {
    for (size_t i = 0; i < N_DIAG; i++)
        csv_num(b, m->diag[i]);
    nn_jbuf_puts(b, "\n");
}

static void csv_worst(nn_jbuf *b, const rp *r, const rp_model *m, const rp_worst *w) {
    nn_jbuf at = {0};
    for (const nn_json_val *v = w->attacks ? nn_json_first(&r->doc, w->attacks) : NULL; v;
         v = nn_json_next(&r->doc, v))
        nn_jbuf_printf(&at, "%s%s", at.len ? ";" : "", v->str);
    if (at.oom) b->oom = 1;
    csv_str(b, m->label, 1);
    csv_num(b, m->t);
    csv_str(b, "worst-case", 0), csv_str(b, at.p, 0), csv_str(b, NULL, 0), csv_str(b, RP_NORMS[w->norm], 0);
    csv_num(b, w->eps);
    nn_jbuf_printf(b, ",,%zu,,,", w->samples);
    csv_num(b, w->robust);
    nn_jbuf_puts(b, ",,,,,,,,,,"); /* success_rate .. mean_iters, seconds, reused */
    csv_diag(b, m);
    nn_jbuf_free(&at);
}

static void write_csv(nn_jbuf *b, const rp *r) {
    nn_jbuf_puts(b, "model,temperature,attack,run,kind,norm,eps,added");
    for (size_t i = 0; i < N_CNT; i++)
        nn_jbuf_printf(b, ",%s", RP_SUM_CNT[i]);
    for (size_t i = 0; i < N_NUM; i++)
        nn_jbuf_printf(b, ",%s", RP_SUM_NUM[i]);
    nn_jbuf_puts(b, ",seconds,reused");
    for (size_t i = 0; i < N_DIAG; i++)
        nn_jbuf_printf(b, ",%s", RP_DIAG[i]);
    nn_jbuf_puts(b, "\n");
    for (size_t i = 0; i < r->n_m; i++) {
        const rp_model *m = &r->m[i];
        for (size_t j = 0; j < m->n_cell; j++)
            for (size_t q = 0; q < m->cell[j].n_sum; q++) {
                const rp_cell *c = &m->cell[j];
                const rp_sum *s = &c->sum[q];
                csv_str(b, m->label, 1);
                csv_num(b, m->t);
                csv_str(b, c->attack, 0), csv_str(b, c->run, 0), csv_str(b, c->kind, 0),
                    csv_str(b, RP_NORMS[c->norm], 0);
                csv_num(b, s->eps);
                csv_str(b, c->added, 0);
                for (size_t k = 0; k < N_CNT; k++)
                    nn_jbuf_printf(b, ",%zu", s->cnt[k]);
                for (size_t k = 0; k < N_NUM; k++)
                    csv_num(b, s->num[k]);
                csv_num(b, c->seconds);
                nn_jbuf_puts(b, c->reused ? ",true" : ",false");
                csv_diag(b, m);
            }
        for (size_t j = 0; j < m->n_wc; j++)
            csv_worst(b, r, m, &m->wc[j]);
    }
}

/* ---- report.md ---- */

/* Text safe inside Markdown (also in a table cell): punctuation that could start markup is
 * backslash-escaped, '&' becomes &amp;, control characters become spaces. NULL -> "?". */
static void md(nn_jbuf *b, const char *s) {
    if (!s) s = "?";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 32 || ch == 127)
            nn_jbuf_puts(b, " ");
        else if (ch == '&')
            nn_jbuf_puts(b, "&amp;");
        else
            nn_jbuf_puts(b,
                         strchr("\\`*_[]<>|~#!", ch) ? (char[3]){'\\', (char)ch, 0} : (char[2]){(char)ch, 0});
    }
}

/* A link destination (relative path), percent-encoded outside [A-Za-z0-9/._~-]. */
static void md_dest(nn_jbuf *b, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("/._~-", ch))
            nn_jbuf_puts(b, (char[2]){(char)ch, 0});
        else
            nn_jbuf_printf(b, "%%%02X", ch);
    }
}

/* "12.34%" (2 decimals), "–" for a missing value. */
static void md_pct(nn_jbuf *b, const char *pre, double v) {
    if (isfinite(v))
        nn_jbuf_printf(b, "%s%.2f%%", pre, 100 * v);
    else
        nn_jbuf_printf(b, "%s–", pre);
}

static void md_num(nn_jbuf *b, const char *pre, const char *fmt, double v) {
    nn_jbuf_puts(b, pre);
    if (isfinite(v))
        nn_jbuf_printf(b, fmt, v);
    else
        nn_jbuf_puts(b, "–");
}

static void md_provenance(nn_jbuf *b, const rp *r) {
    char dur[32];
    exp_fmt_duration(dur, sizeof dur, r->wall);
    nn_jbuf_puts(b, "## Provenance\n\n- Experiment: ");
    md(b, r->xpath);
    nn_jbuf_puts(b, " (sha256 "), md(b, r->xsha), nn_jbuf_puts(b, ")\n- temper "), md(b, r->version);
    nn_jbuf_puts(b, ", git commit "), md(b, r->git);
    md_num(b, "\n- Threads: ", "%.0f", r->threads);
    nn_jbuf_puts(b, "; BLAS: "), md(b, r->blas_cfg), nn_jbuf_puts(b, " ("), md(b, r->blas_mode);
    md_num(b, ", ", "%.0f", r->blas_threads);
    nn_jbuf_puts(b, " threads)\n- Libraries:");
    if (!r->libs || !r->libs->n) nn_jbuf_puts(b, " ?");
    for (const nn_json_val *v = r->libs ? nn_json_first(&r->doc, r->libs) : NULL; v;
         v = nn_json_next(&r->doc, v)) {
        nn_jbuf_puts(b, v == nn_json_first(&r->doc, r->libs) ? " " : ", ");
        md(b, v->key), nn_jbuf_puts(b, " "), md(b, v->str);
    }
    nn_jbuf_puts(b, "\n- Started: "), md(b, r->started);
    nn_jbuf_printf(b, "; wall time %s", isfinite(r->wall) && r->wall >= 0 ? dur : "–");
    md_num(b, "\n- Cells: ", "%.0f", r->cells_total);
    md_num(b, " in total, ", "%.0f", r->cells_reused);
    nn_jbuf_printf(b, " reused from the cache%s\n", r->force == 1 ? " (--force: all recomputed)" : "");
    md_num(b, "- Seed ", "%.0f", r->seed);
    md_num(b, "; test images per attack (unless it sets its own): ", "%.0f", r->samples);
    nn_jbuf_printf(b, "; temperature-aware battery: %s\n\n",
                   r->taware == 1   ? "on"
                   : r->taware == 0 ? "off"
                                    : "?");
}

typedef struct rp_tm {
    int norm;
    double eps;
} rp_tm;

static int tm_cmp(const void *a, const void *b) {
    const rp_tm *x = a, *y = b;
    return x->norm != y->norm ? x->norm - y->norm : (x->eps > y->eps) - (x->eps < y->eps);
}

/* The worst-case table: a row per model, a column per threat model (norm, eps) of any model. */
static int md_worst(nn_jbuf *b, const rp *r, nn_err *err) {
    size_t tot = 0, n = 0;
    for (size_t i = 0; i < r->n_m; i++)
        tot += r->m[i].n_wc;
    rp_tm *tm = malloc((tot + 1) * sizeof *tm);
    if (!tm) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_m; i++)
        for (size_t j = 0; j < r->m[i].n_wc; j++) {
            rp_tm t = {r->m[i].wc[j].norm, r->m[i].wc[j].eps};
            size_t q = 0;
            while (q < n && tm_cmp(&tm[q], &t))
                q++;
            if (q == n) tm[n++] = t;
        }
    qsort(tm, n, sizeof *tm, tm_cmp);
    nn_jbuf_puts(
        b, "## Robust accuracy, worst case over all attacks\n\nA test image counts as robust at a bound when "
           "it is classified correctly and no run of any attack found a misclassified example within the "
           "bound (AutoAttack's rule)");
    md_num(b, ", over the first ", "%.0f test images", r->samples);
    nn_jbuf_puts(b, ". Columns: threat model (norm, ε).\n\n| Model | T | Clean accuracy |");
    for (size_t q = 0; q < n; q++)
        nn_jbuf_printf(b, " %s %g |", RP_NORM_SHOW[tm[q].norm], tm[q].eps);
    nn_jbuf_puts(b, "\n|---|---:|---:|");
    for (size_t q = 0; q < n; q++)
        nn_jbuf_puts(b, "---:|");
    for (size_t i = 0; i < r->n_m; i++) {
        const rp_model *m = &r->m[i];
        nn_jbuf_puts(b, "\n| "), md(b, m->label), nn_jbuf_printf(b, " | %g", m->t),
            md_pct(b, " | ", m->clean);
        for (size_t q = 0; q < n; q++) {
            size_t j = 0;
            while (j < m->n_wc && (m->wc[j].norm != tm[q].norm || m->wc[j].eps != tm[q].eps))
                j++;
            md_pct(b, " | ", j < m->n_wc ? m->wc[j].robust : NAN);
        }
        nn_jbuf_puts(b, " |");
    }
    nn_jbuf_puts(b, "\n\n");
    free(tm);
    return NN_OK;
}

static void md_plots(nn_jbuf *b, const rp *r) {
    nn_jbuf_puts(b, "## Plots\n\n");
    if (!r->n_plot) nn_jbuf_puts(b, "No plot (no worst-case entry and no unbounded attack).\n\n");
    for (size_t i = 0; i < r->n_plot; i++) {
        const rp_plot *p = &r->plot[i];
        nn_jbuf_puts(b, "### "), md(b, p->caption), nn_jbuf_puts(b, "\n\n");
        if (p->sub[0]) md(b, p->sub), nn_jbuf_puts(b, "\n\n");
        nn_jbuf_puts(b, "![");
        md(b, p->caption);
        nn_jbuf_puts(b, "](plots/"), md_dest(b, p->stem), nn_jbuf_puts(b, ".png)\n\n[SVG](plots/");
        md_dest(b, p->stem), nn_jbuf_puts(b, ".svg)");
        if (p->note[0]) nn_jbuf_puts(b, "\n\n"), md(b, p->note);
        nn_jbuf_puts(b, "\n\n");
    }
}

/* The per-model header: file, data, temperature, clean accuracy, masking diagnostics, warnings. */
static void md_model_head(nn_jbuf *b, const rp *r, const rp_model *m) {
    char rel[RP_PATH], path[RP_PATH];
    struct stat st;
    nn_jbuf_puts(b, "### "), md(b, m->label), nn_jbuf_puts(b, "\n\n- File: "), md(b, m->file);
    nn_jbuf_puts(b, " (sha256 "), md(b, m->sha), nn_jbuf_puts(b, ")");
    if (!exp_path_join(rel, sizeof rel, m->dir, "samples.csv", NULL) &&
        !exp_path_join(path, sizeof path, r->dir, rel, NULL) && !stat(path, &st))
        nn_jbuf_puts(b, "\n- Per test image: [samples.csv]("), md_dest(b, rel), nn_jbuf_puts(b, ")");
    nn_jbuf_puts(b, "\n- Data: "), md(b, m->data);
    nn_jbuf_printf(b, "; training temperature T = %g; clean accuracy", m->t);
    md_pct(b, " ", m->clean);
    md_num(b, " on ", "%.0f test images", m->test_samples);
    md_num(b, "\n- Masking diagnostics (", "%.0f samples", m->diag_samples);
    md_num(b, "): mean \\|logit\\| ", "%.4g", m->diag[0]);
    md_pct(b, "; zero input gradient ", m->diag[1]);
    md_pct(b, "; saturated softmax ", m->diag[2]);
    nn_jbuf_puts(b, "\n- Warnings:");
    if (!m->warnings || !m->warnings->n) nn_jbuf_puts(b, " none");
    for (const nn_json_val *v = m->warnings ? nn_json_first(&r->doc, m->warnings) : NULL; v;
         v = nn_json_next(&r->doc, v))
        nn_jbuf_puts(b, "\n  - "), md(b, v->str);
    nn_jbuf_puts(b, "\n\n");
}

/* A grid link (when the file is there). */
static void md_grid(nn_jbuf *b, const rp *r, const rp_cell *c) {
    char path[RP_PATH];
    struct stat st;
    if (!c->grid)
        nn_jbuf_puts(b, " | –");
    else if (exp_path_join(path, sizeof path, r->dir, c->grid, NULL) || stat(path, &st))
        nn_jbuf_puts(b, " | missing");
    else
        nn_jbuf_puts(b, " | [grid]("), md_dest(b, c->grid), nn_jbuf_puts(b, ")");
}

/* Every attack run of model m: a row per summary (an unbounded attack: its own criterion, then each bound).
 */
static void md_model(nn_jbuf *b, const rp *r, const rp_model *m) {
    int l0 = 0, added = 0;
    for (size_t j = 0; j < m->n_cell; j++)
        l0 |= m->cell[j].norm == 2, added |= m->cell[j].added != NULL;
    md_model_head(b, r, m);
    nn_jbuf_printf(b,
                   "| Run | Bound | Robust accuracy | Success rate | Mean L2 | Mean L∞ |%s Iterations | "
                   "Seconds | Grid |\n"
                   "|---|---:|---:|---:|---:|---:|%s---:|---:|---|\n",
                   l0 ? " Mean L0 |" : "", l0 ? "---:|" : "");
    for (size_t j = 0; j < m->n_cell; j++) {
        const rp_cell *c = &m->cell[j];
        for (size_t q = 0; q < c->n_sum; q++) {
            const rp_sum *s = &c->sum[q];
            nn_jbuf_puts(b, "| "), md(b, c->run), nn_jbuf_puts(b, c->added ? " †" : "");
            if (isnan(s->eps))
                nn_jbuf_puts(b, " | none");
            else
                nn_jbuf_printf(b, isnan(c->eps) ? " | ≤ %g" : " | %g", s->eps);
            md_pct(b, " | ", s->num[S_ROBUST]), md_pct(b, " | ", s->num[S_SUCCESS]);
            md_num(b, " | ", "%.4g", s->num[S_L2]), md_num(b, " | ", "%.4g", s->num[S_LINF]);
            if (l0) md_num(b, " | ", "%.4g", s->num[S_L0]);
            md_num(b, " | ", "%.1f", s->num[S_ITERS]);
            if (q == 0) { /* the cell's time and grid once, on its first row */
                md_num(b, " | ", "%.1f", c->seconds);
                nn_jbuf_puts(b, c->reused ? " (cached)" : "");
                md_grid(b, r, c);
            } else
                nn_jbuf_puts(b, " | |");
            nn_jbuf_puts(b, " |\n");
        }
    }
    if (added)
        nn_jbuf_puts(b, "\n† added by the temperature-aware rule (training temperature T > 1): the attack at "
                        "temperature T, or PGD with the margin loss.\n");
    nn_jbuf_puts(b, "\n");
}

static int write_md(nn_jbuf *b, const rp *r, nn_err *err) {
    nn_jbuf_puts(b, "# "), md(b, r->name),
        nn_jbuf_puts(b, "\n\nBatch evaluation report (`temper report`), made "
                        "from results.json; every figure is also in "
                        "[summary.csv](summary.csv).\n\n");
    md_provenance(b, r);
    int rc = md_worst(b, r, err);
    md_plots(b, r);
    nn_jbuf_puts(
        b, "## Models\n\nPercentages over each attack's runs (success) or test images (robust accuracy); "
           "distortions are means over the successful runs.\n\n");
    for (size_t i = 0; i < r->n_m && !rc; i++)
        md_model(b, r, &r->m[i]);
    return rc;
}

/* ---- the entry point ---- */

static int put_file(const rp *r, const char *name, const nn_jbuf *b, FILE *out, nn_err *err) {
    char path[RP_PATH];
    int rc = exp_path_join(path, sizeof path, r->dir, name, err);
    if (!rc && b->oom) rc = NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
    if (!rc) rc = nn_io_write_atomic(path, b->p, b->len, err);
    if (!rc && out) fprintf(out, "%s\n", path);
    return rc;
}

int exp_report_write(const char *dir, FILE *out, nn_err *err) {
    if (!dir) return NN_FAIL(err, NN_E_INVAL, "report: NULL folder");
    rp *r = calloc(1, sizeof *r);
    if (!r) return NN_FAIL(err, NN_E_NOMEM, "report: out of memory");
    r->dir = dir;
    nn_jbuf csv = {0}, md = {0};
    int rc = rp_load(r, err);
    if (!rc) r->pre = rp_label_prefix(r);
    if (!rc) rc = rp_plot_robust(r, out, err);
    if (!rc) rc = rp_plot_temperature(r, out, err);
    if (!rc) rc = rp_plot_hists(r, out, err);
    if (!rc) write_csv(&csv, r);
    if (!rc) rc = write_md(&md, r, err);
    if (!rc) rc = put_file(r, "summary.csv", &csv, out, err);
    if (!rc) rc = put_file(r, "report.md", &md, out, err);
    if (!rc) rp_plots_clean(r);
    nn_jbuf_free(&csv), nn_jbuf_free(&md);
    rp_free(r);
    free(r);
    return rc;
}
