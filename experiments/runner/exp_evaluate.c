/* exp_evaluate.c - batch evaluation (see exp_evaluate.h): every model x attack x eps is a cell of the
 * content-addressed store (exp_cache.h), found or computed; then the results folder is rewritten,
 * results.json last, and the report regenerated (exp_report.h).
 *
 * Two phases. 1: per model, its net and test set (loaded once per data set and range), clean predictions,
 * diagnostics, then every cell: key -> found (reused) or computed in a work folder and committed; the cell's
 * summaries come from its records.npy either way, so a reused cell gives exactly the numbers of a computed
 * one. Only the store changes in phase 1. 2 (exp_evaluate_out.c): the results folder: results.json removed
 * first (a mixture of old and new files never looks finished), the cells' files copied, worst case and
 * samples.csv per model, results.json, then the report. */
#include "exp_evaluate.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exp_attack_int.h"
#include "exp_evaluate_int.h"
#include "exp_progress.h"
#include "exp_report.h"
#include "exp_run.h"
#include "nn_json.h"
#include "nn_model.h"
#include "nn_png.h"

/* ---- worst case ---- */

float ev_rec_dist(const float *r, int norm) {
    return r[norm == EXP_NORM_L0 ? EXP_REC_L0 : norm == EXP_NORM_L2 ? EXP_REC_L2 : EXP_REC_LINF];
}

size_t exp_worst_case(const exp_records *cells, size_t n_cells, const unsigned char *clean_correct,
                      size_t n_samples, int norm, double eps, unsigned char *robust, unsigned char *counted) {
    const double bound = eps * (1 + 1e-5) + 1e-7;
    for (size_t i = 0; i < n_samples; i++)
        robust[i] = clean_correct[i] != 0;
    for (size_t c = 0; c < n_cells; c++) {
        int any = 0;
        for (size_t j = 0; j < cells[c].n; j++) {
            const float *r = cells[c].rows + j * EXP_REC_COLS;
            double idx = r[EXP_REC_INDEX];
            if (!(idx >= 0 && idx < (double)n_samples)) continue;
            size_t i = (size_t)idx;
            if (!clean_correct[i] || !((double)ev_rec_dist(r, norm) <= bound)) continue;
            any = 1;
            if (r[EXP_REC_PRED] != r[EXP_REC_LABEL]) robust[i] = 0;
        }
        if (counted) counted[c] = (unsigned char)any;
    }
    size_t n = 0;
    for (size_t i = 0; i < n_samples; i++)
        n += robust[i];
    return n;
}

/* ---- the battery ---- */

static int name_taken(const exp_attack *a, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(a[i].name, name)) return 1;
    return 0;
}

/* dst <- base + suffix, unique among a[0..n) ("-2", "-3", ... appended), base truncated to fit. */
static void unique_name(char *dst, size_t cap, const exp_attack *a, size_t n, const char *base,
                        const char *suffix) {
    for (int k = 1; k < 1000; k++) {
        char tail[32];
        snprintf(tail, sizeof tail, k == 1 ? "%s" : "%s-%d", suffix, k);
        int keep = (int)(cap - 1 - strlen(tail));
        snprintf(dst, cap, "%.*s%s", keep, base, tail);
        if (!name_taken(a, n, dst)) return;
    }
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

size_t exp_evaluate_battery(const exp_attack *a, size_t n, float T, int temperature_aware, size_t samples,
                            exp_attack *out, int *added, size_t cap) {
    size_t m = 0, ng = 0;
    for (size_t i = 0; i < n && m < cap; i++) {
        out[m] = a[i];
        added[m++] = 0;
    }
    if (!temperature_aware || !(T > 1)) return m;
    int margin = 0;
    float grid[EXP_MAX_ATTACKS * EXP_MAX_EPS];
    for (size_t i = 0; i < n; i++) {
        const exp_attack *x = &a[i];
        int bounded = exp_attack_bounded(x);
        if (bounded && x->cfg.norm == ATK_LINF) {
            margin |= x->cfg.loss == ATK_LOSS_MARGIN;
            for (size_t e = 0; e < x->n_eps && ng < sizeof grid / sizeof grid[0]; e++)
                grid[ng++] = x->eps[e];
        }
        int at1 = x->cfg.temperature == 1.0f;
        int copy = (bounded && x->cfg.loss == ATK_LOSS_CE && at1) ||
                   (x->cfg.kind == ATK_JSMA && x->cfg.jsma_on == ATK_JSMA_SOFTMAX && at1);
        if (!copy || m >= cap) continue;
        out[m] = *x;
        out[m].cfg.temperature = T;
        unique_name(out[m].name, sizeof out[m].name, out, m, x->name, "-T");
        added[m++] = 1;
    }
    if (margin || !ng || m >= cap) return m;
    qsort(grid, ng, sizeof *grid, cmp_float);
    exp_attack p = exp_attack_default(ATK_PGD, ATK_LINF);
    p.cfg.loss = ATK_LOSS_MARGIN;
    p.cfg.lo = a[0].cfg.lo;
    p.cfg.hi = a[0].cfg.hi;
    p.samples = samples;
    for (size_t i = 0; i < ng && p.n_eps < EXP_MAX_EPS; i++)
        if (!p.n_eps || grid[i] != p.eps[p.n_eps - 1]) p.eps[p.n_eps++] = grid[i];
    unique_name(p.name, sizeof p.name, out, m, "pgd-margin", "");
    out[m] = p;
    added[m++] = 1;
    return m;
}

/* The tests' kill hook (exp_evaluate.h). */
void ev_kill_point(const exp_evaluate_opts *o, int at, size_t k) {
    if (o->kill_at != at || (at != EXP_KILL_BEFORE_RESULTS && o->kill_cell != k)) return;
    fflush(NULL);
    raise(SIGKILL);
}

const char *ev_norm_name(int norm) {
    return norm == EXP_NORM_L0 ? "l0" : norm == EXP_NORM_L2 ? "l2" : "linf";
}

/* The norm an attack's distortion and eps grid are measured in. */
int ev_attack_norm(const exp_attack *a) {
    if (a->cfg.kind == ATK_JSMA) return EXP_NORM_L0;
    return a->cfg.norm == ATK_L2 ? EXP_NORM_L2 : EXP_NORM_LINF;
}

/* ---- progress ---- */

static void draw(ev_ctx *x, double done, double total) {
    double now = exp_now();
    char line[256], eta[32] = "?", bar[21], cbar[11];
    if (x->done)
        exp_fmt_duration(eta, sizeof eta, (now - x->t0) * (double)(x->total - x->done) / (double)x->done);
    size_t f = x->total ? 20 * x->done / x->total : 0, g = total > 0 ? (size_t)(10 * done / total) : 0;
    for (size_t i = 0; i < 20; i++)
        bar[i] = i < f ? '#' : '.';
    for (size_t i = 0; i < 10; i++)
        cbar[i] = i < g ? '#' : '.';
    bar[20] = cbar[10] = '\0';
    int n = snprintf(line, sizeof line, "[%zu/%zu] [%s] ETA %s | %.40s %.40s", x->done, x->total, bar, eta,
                     x->what_model ? x->what_model : "", x->what_run ? x->what_run : "");
    if (total > 0 && n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, " [%s] %.0f/%.0f", cbar, done, total);
    line[119] = '\0'; /* a wrapped line could not be redrawn in place */
    fprintf(x->pf, "\r%s\033[K", line);
    fflush(x->pf);
}

/* atk_progress_fn: a terminal gets the line redrawn ~5 times a second, a log a line a minute on long cells.
 */
static void prog_cb(void *ctx, double done, double total) {
    ev_ctx *x = ctx;
    double now = exp_now();
    if (!x->pf || done >= total || now - x->last < (x->tty ? 0.2 : 60.0)) return;
    x->last = now;
    if (x->tty) {
        draw(x, done, total);
        return;
    }
    char eta[32] = "?";
    if (done > 0) exp_fmt_duration(eta, sizeof eta, (now - x->cell_t0) * (total - done) / done);
    fprintf(x->pf, "[%zu/%zu] %s %s: %.0f/%.0f ETA %s\n", x->done + 1, x->total, x->what_model, x->what_run,
            done, total, eta);
    fflush(x->pf);
}

static void prog_clear(ev_ctx *x) {
    if (x->pf && x->tty) {
        fputs("\r\033[K", x->pf);
        fflush(x->pf);
    }
}

/* The line of a finished cell (not a terminal), or the redrawn line. */
static void prog_cell(ev_ctx *x, const ev_model *m, const ev_cell *c) {
    if (!x->pf) return;
    if (x->tty) {
        draw(x, 0, 0);
        return;
    }
    char dur[32];
    exp_fmt_duration(dur, sizeof dur, c->seconds);
    fprintf(x->pf, "[%zu/%zu] %s %s: %.1f%% success, %s%s\n", x->done, x->total, m->label, c->run,
            100 * c->sum[0].success_rate, dur, c->reused ? " (reused)" : "");
    fflush(x->pf);
}

/* ---- models ---- */

int ev_name_cmp(const char *a0, const char *b0) {
    const char *a = a0, *b = b0;
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0')
                a++;
            while (*b == '0')
                b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la]))
                la++;
            while (isdigit((unsigned char)b[lb]))
                lb++;
            int c = la != lb ? (la < lb ? -1 : 1) : strncmp(a, b, la);
            if (c) return c;
            a += la, b += lb;
        } else if (*a != *b) {
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        } else {
            a++, b++;
        }
    }
    return *a != *b ? (*a ? 1 : -1) : strcmp(a0, b0);
}

static int cmp_str(const void *a, const void *b) {
    return ev_name_cmp(*(char *const *)a, *(char *const *)b);
}

static int files_add(ev_ctx *x, const char *path, size_t *cap, nn_err *err) {
    if (x->n_files == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        char **p = realloc(x->files, nc * sizeof *p);
        if (!p) return NN_FAIL(err, NN_E_NOMEM, "out of memory for %zu model names", nc);
        x->files = p, *cap = nc;
    }
    if (!(x->files[x->n_files] = strdup(path))) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    x->n_files++;
    return NN_OK;
}

/* Whether file is among x->files[0..n). */
static int files_has(const ev_ctx *x, size_t n, const char *file) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(x->files[i], file)) return 1;
    return 0;
}

/* x->files: the caller's models (o->models, in order; each must exist), then evaluate.models: literal paths
 * must exist; patterns are expanded (matching nothing: a warning); sorted in natural order, duplicates (of
 * the caller's models too) removed. */
static int expand_models(ev_ctx *x, nn_err *err) {
    const exp_evaluate_cfg *e = &x->cfg->evaluate;
    size_t cap = 0;
    int rc = NN_OK;
    for (size_t i = 0; i < x->o->n_models && !rc; i++) {
        struct stat st;
        const char *p = x->o->models[i].file;
        if (stat(p, &st) != 0) return NN_FAIL(err, NN_E_IO, "%s: %s: %s", x->cfg->path, p, strerror(errno));
        if (!files_has(x, x->n_files, p)) rc = files_add(x, p, &cap, err);
    }
    size_t given = x->n_given = x->n_files;
    for (size_t i = 0; i < e->n_models && !rc; i++) {
        const char *p = e->models[i];
        struct stat st;
        if (!strpbrk(p, "*?[")) {
            if (stat(p, &st) != 0)
                return NN_FAIL(err, NN_E_IO, "%s: evaluate.models[%zu]: %s: %s", x->cfg->path, i, p,
                               strerror(errno));
            rc = files_add(x, p, &cap, err);
            continue;
        }
        glob_t g;
        memset(&g, 0, sizeof g);
        int r = glob(p, 0, NULL, &g);
        if (r == GLOB_NOMATCH && x->o->progress)
            fprintf(x->o->progress, "temper: warning: evaluate.models[%zu]: '%s' matches no file\n", i, p);
        else if (r != 0 && r != GLOB_NOMATCH)
            rc = NN_FAIL(err, NN_E_IO, "%s: evaluate.models[%zu]: cannot expand '%s'%s", x->cfg->path, i, p,
                         r == GLOB_NOSPACE ? " (out of memory)" : " (read error)");
        for (size_t j = 0; r == 0 && j < g.gl_pathc && !rc; j++)
            rc = files_add(x, g.gl_pathv[j], &cap, err);
        globfree(&g);
    }
    if (rc) return rc;
    if (!x->n_files)
        return NN_FAIL(err, NN_E_INVAL,
                       "%s: evaluate.models: no model file found (every pattern matched nothing)",
                       x->cfg->path);
    qsort(x->files + given, x->n_files - given, sizeof *x->files, cmp_str);
    size_t k = given;
    for (size_t i = given; i < x->n_files; i++) {
        if ((k > given && !strcmp(x->files[i], x->files[k - 1])) || files_has(x, given, x->files[i]))
            free(x->files[i]);
        else
            x->files[k++] = x->files[i];
    }
    x->n_files = k;
    return NN_OK;
}

/* The label: the caller's (o->models), else the path minus "./", a leading "results/" and a trailing
 * "/model.safetensors" or ".safetensors"; made unique among the first i models with "#2", "#3", ...; dir: the
 * label with '/' -> "__". */
static void model_names(ev_ctx *x, size_t i) {
    ev_model *m = &x->m[i];
    const char *p = m->file, *given = NULL;
    for (size_t j = 0; i < x->n_given && j < x->o->n_models && !given;
         j++) /* o->models less its duplicates */
        if (!strcmp(x->o->models[j].file, m->file)) given = x->o->models[j].label;
    size_t len;
    if (given) {
        p = given, len = strlen(p);
    } else {
        while (p[0] == '.' && p[1] == '/')
            p += 2;
        while (*p == '/')
            p++;
        if (!strncmp(p, "results/", 8)) p += 8;
        len = strlen(p);
        static const char *const tails[] = {"/model.safetensors", ".safetensors"};
        for (size_t t = 0; t < 2; t++) {
            size_t tl = strlen(tails[t]);
            if (len > tl && !strcmp(p + len - tl, tails[t])) {
                len -= tl;
                break;
            }
        }
    }
    if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
        p = "model", len = 5;
    if (len > 200) p += len - 200, len = 200;
    for (int k = 1; k < 10000; k++) {
        char tail[16] = "";
        if (k > 1) snprintf(tail, sizeof tail, "#%d", k);
        snprintf(m->label, sizeof m->label, "%.*s%s", (int)len, p, tail);
        size_t j = 0;
        while (j < i && strcmp(x->m[j].label, m->label))
            j++;
        if (j == i) break;
    }
    size_t o = 0;
    for (const char *s = m->label; *s && o + 3 < sizeof m->dir; s++) {
        if (*s == '/')
            m->dir[o++] = '_', m->dir[o++] = '_';
        else
            m->dir[o++] = *s;
    }
    m->dir[o] = '\0';
}

/* The data set and range of a model: the experiment's data: if given, else the model's metadata. */
static int model_data_cfg(const ev_ctx *x, const char *file, const nn_model_meta *meta, nn_data_cfg *dc,
                          nn_err *err) {
    const exp_evaluate_cfg *e = &x->cfg->evaluate;
    *dc = nn_data_cfg_default();
    const char *name = e->has_data ? x->cfg->data.name : nn_model_meta_get(meta, EXP_META_DATA);
    if (!name)
        return NN_FAIL(err, NN_E_INVAL,
                       "%s: the model names no data set (%s metadata): give data: {name: ...} in %s", file,
                       EXP_META_DATA, x->cfg->path);
    snprintf(dc->name, sizeof dc->name, "%s", name);
    const char *range = nn_model_meta_get(meta, EXP_META_RANGE);
    if (e->has_range) {
        dc->lo = x->cfg->data.lo;
        dc->hi = x->cfg->data.hi;
    } else if (range && exp_parse_range(range, &dc->lo, &dc->hi) != 0) {
        return NN_FAIL(err, NN_E_FORMAT, "%s: metadata %s = '%s' is not 'lo,hi': give data.range in %s", file,
                       EXP_META_RANGE, range, x->cfg->path);
    }
    dc->test_subset = x->need;
    dc->subset = 1; /* nn_data_load always reads the training file; one sample skips converting the rest */
    nn_err why = {0};
    int rc = nn_data_cfg_validate(dc, &why);
    return rc ? NN_FAIL(err, rc, "%s: %s", file, why.msg) : NN_OK;
}

/* Reads the model's metadata and temperature, builds its battery and the list of cells. */
static int model_prepare(ev_ctx *x, ev_model *m, nn_err *err) {
    nn_net *net = NULL;
    nn_model_meta meta;
    memset(&meta, 0, sizeof meta);
    int rc = nn_model_load(&net, &meta, m->file, err);
    if (!rc) rc = model_data_cfg(x, m->file, &meta, &m->dc, err);
    if (!rc) rc = exp_hash_memo_file(&x->memo, m->file, m->sha, err);
    if (rc) goto done;
    const exp_evaluate_cfg *e = &x->cfg->evaluate;
    m->T = net->temperature;
    m->n_in = net->n_in;
    m->n_bat = exp_evaluate_battery(x->cfg->attacks, x->cfg->n_attacks, m->T, e->temperature_aware,
                                    e->samples, m->bat, m->added, EV_MAX_BATTERY);
    size_t n = 0;
    for (size_t i = 0; i < m->n_bat && !rc; i++) {
        exp_attack *a = &m->bat[i];
        a->cfg.lo = m->dc.lo, a->cfg.hi = m->dc.hi;
        if (!exp_attack_bounded(a)) a->cfg.eps = 1; /* unused */
        n += exp_attack_bounded(a) ? a->n_eps : 1;
        nn_err e2 = {0};
        if (atk_cfg_validate(&a->cfg, &e2))
            rc = NN_FAIL(err, e2.code, "%s: attack %s: %s", m->file, a->name, e2.msg);
    }
    if (!rc && !(m->cells = calloc(n ? n : 1, sizeof *m->cells)))
        rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_bat && !rc; i++) {
        const exp_attack *a = &m->bat[i];
        int bounded = exp_attack_bounded(a);
        for (size_t k = 0; k < (bounded ? a->n_eps : 1); k++) {
            ev_cell *c = &m->cells[m->n_cells++];
            c->ai = i;
            c->eps = bounded ? a->eps[k] : -1.0f;
            c->seconds = NAN;
            if (bounded)
                snprintf(c->run, sizeof c->run, "%s-eps%g", a->name, (double)c->eps);
            else
                snprintf(c->run, sizeof c->run, "%s", a->name);
            for (size_t j = 0; j + 1 < m->n_cells; j++) /* two eps printing alike: keep the folders apart */
                if (!strcmp(m->cells[j].run, c->run)) {
                    size_t l = strlen(c->run);
                    snprintf(c->run + l, sizeof c->run - l, "#%zu", m->n_cells);
                    break;
                }
        }
    }
done:
    nn_net_destroy(net);
    return rc;
}

/* ---- data ---- */

/* The test set of dc, loaded once per (name, range). The pointer is valid until the next call. */
static int data_get(ev_ctx *x, const nn_data_cfg *dc, ev_data **out, nn_err *err) {
    for (size_t i = 0; i < x->n_data; i++)
        if (!strcmp(x->data[i].dc.name, dc->name) && x->data[i].dc.lo == dc->lo &&
            x->data[i].dc.hi == dc->hi) {
            *out = &x->data[i];
            return NN_OK;
        }
    ev_data *p = realloc(x->data, (x->n_data + 1) * sizeof *p);
    if (!p) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    x->data = p;
    ev_data *d = &x->data[x->n_data];
    memset(d, 0, sizeof *d);
    d->dc = *dc;
    nn_dataset train = {0};
    int rc = nn_data_load(dc, &train, NULL, &d->test, err);
    nn_dataset_free(&train);
    if (rc) return rc;
    x->n_data++;
    *out = d;
    return NN_OK;
}

/* SHA-256 of the first n test images (float32 bytes as loaded) and labels (int bytes). */
static int data_hash(ev_data *d, size_t n, const ev_hash **out, nn_err *err) {
    for (size_t i = 0; i < d->n_h; i++)
        if (d->h[i].n == n) {
            *out = &d->h[i];
            return NN_OK;
        }
    ev_hash *p = realloc(d->h, (d->n_h + 1) * sizeof *p);
    if (!p) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    d->h = p;
    ev_hash *h = &d->h[d->n_h++];
    h->n = n;
    exp_sha256_hex(d->test.x, n * nn_shape_size(d->test.shape) * sizeof *d->test.x, h->x);
    exp_sha256_hex(d->test.y, n * sizeof *d->test.y, h->y);
    *out = h;
    return NN_OK;
}

/* ---- cells ---- */

/* The cell's key (exp_cache.h), fields in the documented order. */
static int cell_key(ev_ctx *x, const ev_model *m, ev_data *d, ev_cell *c, nn_err *err) {
    const exp_attack *a = &m->bat[c->ai];
    size_t n = a->samples < d->test.n ? a->samples : d->test.n;
    const ev_hash *h = NULL;
    int rc = data_hash(d, n, &h, err);
    if (rc) return rc;
    exp_json j;
    exp_json_init(&j);
    exp_json_object_begin(&j);
    exp_attack_json_params(&j, a);
    if (a->cfg.kind == ATK_CW) { /* changes C&W's result but is not among attacks.json's parameters */
        exp_json_key(&j, "abort_early");
        exp_json_bool(&j, a->cfg.abort_early);
    }
    exp_json_kv_uint(&j, "samples", n);
    exp_json_kv_number(&j, "eps", c->eps >= 0 ? (double)c->eps : NAN); /* null when unbounded */
    exp_json_object_end(&j);
    exp_key k;
    exp_key_init(&k);
    exp_key_add_str(&k, "format", EV_CELL_FORMAT);
    exp_key_add_str(&k, "version", TEMPER_VERSION);
    rc = exp_json_finish(&j, err);
    if (!rc) rc = exp_key_add_file_hash(&k, "model", m->file, &x->memo, err);
    if (!rc) {
        exp_key_add_str(&k, "test_x", h->x);
        exp_key_add_str(&k, "test_y", h->y);
        exp_key_add_double(&k, "range_lo", m->dc.lo);
        exp_key_add_double(&k, "range_hi", m->dc.hi);
        exp_key_add_str(&k, "attack", j.b.p);
        exp_key_add_double(&k, "eps", c->eps >= 0 ? (double)c->eps : -1.0);
        exp_key_final(&k, c->key);
    }
    exp_json_free(&j);
    return rc;
}

void ev_json_summary(exp_json *j, const atk_summary *s, const exp_attack *a) {
    exp_json_object_begin(j);
    exp_attack_json_summary(j, s, a);
    exp_json_object_end(j);
}

/* The summaries of a cell from its records (the same numbers whether the cell was computed or reused). */
static int cell_summarize(const ev_model *m, ev_cell *c, const float *rows, size_t n, nn_err *err) {
    const exp_attack *a = &m->bat[c->ai];
    atk_result *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) return NN_FAIL(err, NN_E_NOMEM, "out of memory for %zu records", n);
    for (size_t i = 0; i < n; i++) {
        const float *q = rows + i * EXP_REC_COLS;
        r[i] = (atk_result){.sample = (size_t)q[EXP_REC_INDEX],
                            .label = (int)q[EXP_REC_LABEL],
                            .target = (int)q[EXP_REC_TARGET],
                            .clean_pred = (int)q[EXP_REC_CLEAN],
                            .pred = (int)q[EXP_REC_PRED],
                            .success = q[EXP_REC_SUCCESS] != 0,
                            .iters = (int)q[EXP_REC_ITERS],
                            .l0 = q[EXP_REC_L0],
                            .l2 = q[EXP_REC_L2],
                            .linf = q[EXP_REC_LINF]};
    }
    c->n_runs = n;
    c->n_sum = c->eps >= 0 ? 1 : 1 + a->n_eps;
    int rc = NN_OK;
    for (size_t s = 0; s < c->n_sum && !rc; s++) {
        double bound = c->eps >= 0 ? (double)c->eps : s == 0 ? -1.0 : (double)a->eps[s - 1];
        rc = atk_summarize(r, n, m->n_in, a->cfg.kind == ATK_JSMA, a->cfg.norm, bound, &c->sum[s], err);
    }
    free(r);
    return rc;
}

/* cell.json: what the cell is (informational: nothing reads it but the seconds). */
static int cell_json(const ev_model *m, const ev_cell *c, exp_json *j, nn_err *err) {
    const exp_attack *a = &m->bat[c->ai];
    exp_json_object_begin(j);
    exp_json_kv_string(j, "format", EV_CELL_FORMAT);
    exp_json_kv_string(j, "key", c->key);
    exp_json_kv_string(j, "temper_version", TEMPER_VERSION);
    exp_json_kv_string(j, "model_sha256", m->sha);
    exp_json_kv_string(j, "attack", a->name);
    exp_json_kv_string(j, "run", c->run);
    exp_json_key(j, "params");
    exp_json_object_begin(j);
    exp_attack_json_params(j, a);
    exp_json_object_end(j);
    exp_json_kv_number(j, "eps", c->eps >= 0 ? exp_float_decimal(c->eps) : NAN);
    exp_json_kv_uint(j, "runs", c->n_runs);
    exp_json_kv_number(j, "seconds", c->seconds);
    exp_json_key(j, "summary");
    ev_json_summary(j, &c->sum[0], a);
    exp_json_object_end(j);
    return exp_json_finish(j, err);
}

/* Attacks the cell's images and commits records.npy, grid.png and cell.json into the store. */
static int cell_compute(ev_ctx *x, ev_model *m, nn_net *net, const nn_dataset *test, ev_cell *c,
                        nn_err *err) {
    const exp_attack *a = &m->bat[c->ai];
    atk_cfg cfg = a->cfg;
    if (c->eps >= 0) cfg.eps = c->eps;
    exp_cell cell;
    memset(&cell, 0, sizeof cell);
    exp_atk_set s = {0};
    exp_json j;
    exp_json_init(&j);
    float *xa = NULL, *rows = NULL;
    atk_result *r = NULL;
    char path[EV_PATH];
    int rc = exp_attack_set_build(a, test, &s, err);
    if (!rc && (!(xa = malloc(s.n * net->n_in * sizeof *xa)) || !(r = malloc(s.n * sizeof *r)) ||
                !(rows = malloc(s.n * EXP_REC_COLS * sizeof *rows))))
        rc = NN_FAIL(err, NN_E_NOMEM, "%s: out of memory for %zu runs", c->run, s.n);
    if (!rc) rc = exp_cell_begin(x->root, c->key, &cell, err);
    if (rc) goto fail;
    x->last = x->tty ? 0 : x->cell_t0;
    rc = atk_run(net, &cfg, s.x, s.y, cfg.targeted ? s.t : NULL, s.n, xa, r, prog_cb, x, err);
    c->seconds = exp_now() - x->cell_t0;
    if (rc) goto fail;
    for (size_t i = 0; i < s.n; i++) {
        float *q = rows + i * EXP_REC_COLS;
        q[EXP_REC_INDEX] = (float)s.id[i], q[EXP_REC_LABEL] = (float)r[i].label;
        q[EXP_REC_TARGET] = (float)r[i].target, q[EXP_REC_CLEAN] = (float)r[i].clean_pred;
        q[EXP_REC_PRED] = (float)r[i].pred, q[EXP_REC_SUCCESS] = (float)(r[i].success != 0);
        q[EXP_REC_L0] = r[i].l0, q[EXP_REC_L2] = r[i].l2, q[EXP_REC_LINF] = r[i].linf;
        q[EXP_REC_ITERS] = (float)r[i].iters;
    }
    size_t dims[2] = {s.n, EXP_REC_COLS}, g = s.n < a->grid ? s.n : a->grid;
    rc = exp_path_join(path, sizeof path, cell.dir, "records.npy", err);
    if (!rc) rc = nn_npy_write_f32(path, rows, 2, dims, err);
    if (!rc && g) rc = exp_path_join(path, sizeof path, cell.dir, "grid.png", err);
    if (!rc && g) rc = nn_png_adv_grid(path, s.x, xa, g, test->shape, cfg.lo, cfg.hi, err);
    if (!rc) rc = cell_summarize(m, c, rows, s.n, err);
    if (!rc) rc = cell_json(m, c, &j, err);
    if (rc) goto fail;
    x->computed++;
    ev_kill_point(x->o, EXP_KILL_BEFORE_COMMIT, x->computed);
    rc = x->o->force ? exp_cell_commit_replace(&cell, j.b.p, j.b.len, err)
                     : exp_cell_commit(&cell, j.b.p, j.b.len, err);
    if (!rc && !(c->dir = strdup(cell.dir))) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) ev_kill_point(x->o, EXP_KILL_AFTER_COMMIT, x->computed);
fail:
    exp_cell_abort(&cell);
    exp_json_free(&j);
    exp_attack_set_free(&s);
    free(xa);
    free(r);
    free(rows);
    return rc;
}

/* records.npy of a finished cell folder: float32 [n, EXP_REC_COLS]. */
int ev_records_load(const char *dir, nn_npy *a, nn_err *err) {
    char path[EV_PATH];
    int rc = exp_path_join(path, sizeof path, dir, "records.npy", err);
    if (!rc) rc = nn_npy_read(path, a, err);
    if (!rc && (a->dtype != NN_NPY_F32 || a->ndim != 2 || a->dims[1] != EXP_REC_COLS))
        rc = NN_FAIL(err, NN_E_FORMAT,
                     "%s: expected float32 records [n, %d] (remove the cell or run with --force)", path,
                     EXP_REC_COLS);
    return rc;
}

static int file_exists(const char *dir, const char *name) {
    char path[EV_PATH];
    struct stat st;
    return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path && stat(path, &st) == 0;
}

/* The computing time recorded in a cell's cell.json (NaN if unreadable: informational only). */
static double cell_seconds(const char *dir) {
    char path[EV_PATH], *text = NULL;
    size_t len = 0;
    double s = NAN;
    nn_err e = {0};
    nn_json doc = {0};
    if (snprintf(path, sizeof path, "%s/cell.json", dir) < (int)sizeof path &&
        !nn_io_read_all(path, &text, &len, &e) && !nn_json_parse(&doc, text, len, &e)) {
        const nn_json_val *v = nn_json_get(&doc, nn_json_root(&doc), "seconds");
        if (v && v->type == NN_JSON_NUMBER) s = v->num;
    }
    nn_json_free(&doc);
    free(text);
    return s;
}

/* One cell: found in the store (unless --force) or computed; then its summaries from its records. */
static int cell_run(ev_ctx *x, ev_model *m, ev_data *d, nn_net *net, ev_cell *c, nn_err *err) {
    char dir[EV_PATH];
    nn_npy rec = {0};
    x->what_model = m->label, x->what_run = c->run;
    x->cell_t0 = exp_now();
    if (x->pf && x->tty) draw(x, 0, 0);
    int rc = cell_key(x, m, d, c, err);
    if (rc) return rc;
    if (!x->o->force && exp_cell_find(x->root, c->key, dir, sizeof dir) == 1) {
        c->reused = 1;
        x->reused++;
        if (!(c->dir = strdup(dir))) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
        c->seconds = cell_seconds(dir);
    } else {
        rc = cell_compute(x, m, net, &d->test, c, err);
    }
    if (!rc) rc = ev_records_load(c->dir, &rec, err);
    if (!rc) rc = cell_summarize(m, c, rec.data, rec.dims[0], err);
    nn_npy_free(&rec);
    if (rc) return rc;
    c->grid = file_exists(c->dir, "grid.png");
    x->done++;
    prog_cell(x, m, c);
    return NN_OK;
}

/* Clean predictions on the first max_m images, clean accuracy on the first n_samples. */
static int model_clean(ev_model *m, nn_net *net, const nn_dataset *test, nn_err *err) {
    size_t k = net->n_classes, n = m->max_m, right = 0;
    float *z = malloc(n * k * sizeof *z);
    m->pred = malloc(n * sizeof *m->pred);
    m->y = malloc(n * sizeof *m->y);
    m->tid = malloc(n * sizeof *m->tid);
    int rc = z && m->pred && m->y && m->tid ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) rc = nn_net_predict(net, test->x, n, z, err);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t best = 0;
        for (size_t j = 1; j < k; j++)
            best = z[i * k + j] > z[i * k + best] ? j : best;
        m->pred[i] = (int)best;
        m->y[i] = test->y[i];
        m->tid[i] = test->id ? test->id[i] : i;
        right += i < m->n_samples && m->pred[i] == m->y[i];
    }
    m->clean_acc = (double)right / (double)m->n_samples;
    free(z);
    return rc;
}

/* The masking warnings (atk_diag_warnings) into m->warn: the diagnostics and the list's attacks, then the
 * temperature-aware additions among themselves (comparing an attack at T with one at 1 would be meaningless).
 */
static int model_warnings(ev_model *m, nn_err *err) {
    size_t nr = 0, len = 0;
    for (size_t i = 0; i < m->n_cells; i++)
        nr += m->cells[i].n_sum;
    atk_row *rows = calloc(nr ? nr : 1, sizeof *rows);
    if (!rows) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (int added = 0; added < 2; added++) {
        nr = 0;
        for (size_t i = 0; i < m->n_cells; i++) {
            const exp_attack *a = &m->bat[m->cells[i].ai];
            for (size_t s = 0; s < m->cells[i].n_sum && m->added[m->cells[i].ai] == added; s++)
                rows[nr++] = (atk_row){a->name, a->cfg.kind, a->cfg.norm, m->cells[i].sum[s].eps,
                                       m->cells[i].sum[s].success_rate};
        }
        if (!added || nr)
            atk_diag_warnings(added ? NULL : &m->diag, rows, nr, m->warn + len, sizeof m->warn - len);
        len = strlen(m->warn);
    }
    free(rows);
    return NN_OK;
}

/* Phase 1 for one model: net, test set, clean predictions, diagnostics, every cell, the masking warnings. */
static int model_run(ev_ctx *x, ev_model *m, nn_err *err) {
    nn_net *net = NULL;
    ev_data *d = NULL;
    int rc = nn_model_load(&net, NULL, m->file, err);
    if (!rc) rc = data_get(x, &m->dc, &d, err);
    if (rc) goto done;
    const nn_dataset *test = &d->test;
    if (net->n_in != nn_shape_size(test->shape) || net->n_classes != test->n_classes || !test->n) {
        rc = NN_FAIL(err, NN_E_SHAPE,
                     "%s: the model takes %zu inputs and gives %zu classes; the %s test set has %zu "
                     "inputs, %zu classes and %zu images",
                     m->file, net->n_in, net->n_classes, m->dc.name, nn_shape_size(test->shape),
                     test->n_classes, test->n);
        goto done;
    }
    m->n_samples = x->cfg->evaluate.samples < test->n ? x->cfg->evaluate.samples : test->n;
    m->max_m = m->n_samples;
    for (size_t i = 0; i < m->n_bat; i++) {
        size_t s = m->bat[i].samples < test->n ? m->bat[i].samples : test->n;
        m->max_m = s > m->max_m ? s : m->max_m;
    }
    rc = nn_net_reserve(net, EXP_ATTACK_BATCH, err);
    if (!rc) rc = model_clean(m, net, test, err);
    if (!rc) rc = atk_diag_compute(net, test->x, test->y, m->n_samples, &m->diag, err);
    if (!rc && x->pf) {
        prog_clear(x);
        fprintf(x->pf, "model %s (T=%g, %s [%g, %g]): clean accuracy %.2f%% on %zu test images\n", m->label,
                (double)m->T, m->dc.name, (double)m->dc.lo, (double)m->dc.hi, 100 * m->clean_acc,
                m->n_samples);
    }
    for (size_t i = 0; i < m->n_cells && !rc; i++)
        rc = cell_run(x, m, d, net, &m->cells[i], err);
    if (!rc) rc = model_warnings(m, err);
    if (!rc && x->pf && m->warn[0]) { /* each line "<label>: warning: ..." */
        prog_clear(x);
        for (const char *p = m->warn, *e; *p; p = e + (*e != '\0')) {
            e = strchr(p, '\n');
            e = e ? e : p + strlen(p);
            fprintf(x->pf, "%s: %.*s\n", m->label, (int)(e - p), p);
        }
    }
done:
    nn_net_destroy(net);
    return rc;
}

static void ctx_free(ev_ctx *x) {
    for (size_t i = 0; x->m && i < x->n_m; i++) {
        ev_model *m = &x->m[i];
        for (size_t c = 0; c < m->n_cells; c++)
            free(m->cells[c].dir);
        for (size_t t = 0; t < m->n_wc; t++)
            free(m->wc[t].counted);
        free(m->cells);
        free(m->wc);
        free(m->pred);
        free(m->y);
        free(m->tid);
    }
    free(x->m);
    for (size_t i = 0; i < x->n_files; i++)
        free(x->files[i]);
    free(x->files);
    for (size_t i = 0; i < x->n_data; i++) {
        nn_dataset_free(&x->data[i].test);
        free(x->data[i].h);
    }
    free(x->data);
    exp_hash_memo_free(&x->memo);
    free(x);
}

/* Phase 1 over every model (after the patterns are expanded and the batteries built). */
static int evaluate_models(ev_ctx *x, nn_err *err) {
    int rc = expand_models(x, err);
    if (!rc && !(x->m = calloc(x->n_files, sizeof *x->m))) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < x->n_files && !rc; i++) {
        x->m[i].file = x->files[i];
        x->n_m = i + 1;
        model_names(x, i);
        rc = model_prepare(x, &x->m[i], err);
        x->total += x->m[i].n_cells;
    }
    if (!rc && x->pf)
        fprintf(x->pf, "%zu model%s, %zu cells (cache %s)%s\n", x->n_m, x->n_m == 1 ? "" : "s", x->total,
                x->root, x->o->force ? ", --force: recomputing every cell" : "");
    for (size_t i = 0; i < x->n_m && !rc; i++)
        rc = model_run(x, &x->m[i], err);
    prog_clear(x);
    return rc;
}

int exp_evaluate_run(const exp_config *cfg, const exp_evaluate_opts *o, exp_evaluate_stats *st, nn_err *err) {
    if (!cfg->evaluate.enabled) return NN_FAIL(err, NN_E_INVAL, "%s: no evaluate: block", cfg->path);
    ev_ctx *x = calloc(1, sizeof *x);
    if (!x) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    x->cfg = cfg, x->o = o, x->root = cfg->evaluate.cache;
    x->t0 = exp_now();
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(x->started, sizeof x->started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    x->pf = o->quiet ? NULL : o->progress;
    x->tty = x->pf && isatty(fileno(x->pf));
    x->need = cfg->evaluate.samples;
    for (size_t i = 0; i < cfg->n_attacks; i++)
        x->need = cfg->attacks[i].samples > x->need ? cfg->attacks[i].samples : x->need;
    int rc = exp_cache_clean_tmp(x->root, err);
    if (!rc) rc = evaluate_models(x, err);
    if (!rc) rc = ev_write_folder(x, err);
    if (!rc && st) *st = (exp_evaluate_stats){x->n_m, x->total, x->reused, exp_now() - x->t0};
    if (!rc) rc = exp_report_write(cfg->output, NULL, err);
    if (!rc && o->out) {
        char dur[32];
        exp_fmt_duration(dur, sizeof dur, exp_now() - x->t0);
        ev_print_table(x, o->out);
        fprintf(o->out, "%zu cells, %zu reused (cache %s), %s\nresults in %s/ (results.json, report.md)\n",
                x->total, x->reused, x->root, dur, cfg->output);
        fflush(o->out);
    }
    ctx_free(x);
    return rc;
}
