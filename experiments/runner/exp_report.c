/* exp_report.c - the report of a batch evaluation (see exp_report.h).
 *
 * Two phases. Load: results.json is parsed and checked member by member (errors name the file and the
 * member path), every cell's records.npy is read and its shape checked, and the distortions the
 * histograms need are kept; nothing is written yet. Write: the plots, summary.csv, then report.md, each
 * atomically; finally plots an earlier report made and this one did not are removed. Strings point into
 * the parsed document. No global mutable state. */
#include "exp_report.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exp_plot.h"
#include "exp_progress.h"
#include "exp_run.h"
#include "nn_io.h"
#include "nn_json.h"

#define RP_PATH 4096
#define RP_FORMAT "temper-evaluate-1"
#define RP_REC_COLS 10 /* records.npy: test_index,label,target,clean_pred,pred,success,l0,l2,linf,iters */

/* A summary's members in summary.csv column order. */
static const char *const SUM_CNT[] = {"samples", "runs", "clean_correct", "successes"};
static const char *const SUM_NUM[] = {"robust_accuracy", "success_rate", "mean_l0",
                                      "mean_l2",         "mean_linf",    "median_l0",
                                      "median_l2",       "median_linf",  "mean_iters"};
enum { N_CNT = 4, N_NUM = 9, S_ROBUST = 0, S_SUCCESS = 1, S_L0 = 2, S_L2 = 3, S_LINF = 4, S_ITERS = 8 };
static const char *const DIAG[] = {"mean_abs_logit", "frac_zero_gradient", "frac_saturated_softmax"};
enum { N_DIAG = 3 };
static const char *const NORMS[] = {"linf", "l2", "l0"}; /* display order; records column 8, 7, 6 */
static const char *const NORM_SHOW[] = {"L∞", "L2", "L0"};
enum { N_NORMS = 3 };

typedef struct rp_sum {
    double eps; /* NaN: null (the attack's own criterion, no bound) */
    size_t cnt[N_CNT];
    double num[N_NUM]; /* NaN: null or absent */
} rp_sum;

typedef struct rp_cell {
    const char *attack, *run, *kind, *added, *records, *grid; /* added, grid: NULL for null */
    int norm;                                                 /* index in NORMS */
    double eps, seconds;                                      /* eps NaN: unbounded attack */
    int reused;
    rp_sum *sum;
    size_t n_sum;
    double *dist; /* unbounded: distortion in its norm of each successful run (from records.npy) */
    size_t n_dist;
} rp_cell;

typedef struct rp_worst {
    int norm;
    double eps, robust;
    size_t samples;
    const nn_json_val *attacks; /* array of strings, or NULL */
} rp_worst;

typedef struct rp_model {
    const char *label, *dir, *file, *sha, *data;
    double t, clean, diag[N_DIAG], diag_samples, test_samples;
    const nn_json_val *warnings; /* array of strings, or NULL */
    rp_cell *cell;
    size_t n_cell;
    rp_worst *wc;
    size_t n_wc;
} rp_model;

/* A plot written (for the report's links and the removal of stale plots). */
typedef struct rp_plot {
    char stem[160], caption[320], sub[320], note[1024]; /* sub: above the image; note: after the links */
} rp_plot;

typedef struct rp {
    nn_json doc;
    const char *dir;
    char file[RP_PATH]; /* <dir>/results.json */
    const char *name, *xpath, *xsha, *version, *git, *started, *blas_cfg, *blas_mode;
    double seed, threads, blas_threads, wall, cells_total, cells_reused, samples; /* NaN: absent */
    int force, taware;                                                            /* -1: absent */
    const nn_json_val *libs;
    rp_model *m;
    size_t n_m, pre; /* pre: length of the model labels' common prefix that legends drop (label_prefix) */
    rp_plot *plot;
    size_t n_plot, cap_plot;
} rp;

/* ---- checked access to results.json ---- */

enum { OPT = 0, REQ = 1, NUL = 2 }; /* member flags: required; null accepted (read as absent) */

static const char *type_desc(int t) {
    static const char *const d[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return t >= 0 && t <= NN_JSON_OBJECT ? d[t] : "?";
}

/* *out <- member key of obj (at path) when present and of type t; NULL when absent (OPT) or null (NUL). */
static int mem(const rp *r, const nn_json_val *obj, const char *path, const char *key, int t, int flags,
               const nn_json_val **out, nn_err *err) {
    const nn_json_val *v = nn_json_get(&r->doc, obj, key);
    *out = NULL;
    if (!v && (flags & REQ))
        return NN_FAIL(err, NN_E_FORMAT, "%s: %s%smissing '%s'", r->file, path, *path ? ": " : "", key);
    if (!v || (v->type == NN_JSON_NULL && (flags & NUL))) return NN_OK;
    if (v->type != t)
        return NN_FAIL(err, NN_E_FORMAT, "%s: %s%s%s: expected %s, got %s", r->file, path, *path ? "." : "",
                       key, type_desc(t), nn_json_type_name(v->type));
    *out = v;
    return NN_OK;
}

static int get_str(const rp *r, const nn_json_val *o, const char *path, const char *key, int flags,
                   const char **s, nn_err *err) {
    const nn_json_val *v;
    int rc = mem(r, o, path, key, NN_JSON_STRING, flags, &v, err);
    *s = v ? v->str : NULL;
    return rc;
}

static int get_num(const rp *r, const nn_json_val *o, const char *path, const char *key, int flags, double *d,
                   nn_err *err) {
    const nn_json_val *v;
    int rc = mem(r, o, path, key, NN_JSON_NUMBER, flags, &v, err);
    *d = v ? v->num : NAN;
    if (!rc && v && !isfinite(v->num)) /* a literal beyond the double range, e.g. 1e999 */
        return NN_FAIL(err, NN_E_FORMAT, "%s: %s%s%s: number out of range", r->file, path, *path ? "." : "",
                       key);
    return rc;
}

static int get_cnt(const rp *r, const nn_json_val *o, const char *path, const char *key, size_t *n,
                   nn_err *err) {
    const nn_json_val *v;
    int rc = mem(r, o, path, key, NN_JSON_NUMBER, REQ, &v, err);
    if (!rc && (!v->is_uint || v->u > SIZE_MAX))
        return NN_FAIL(err, NN_E_FORMAT, "%s: %s.%s: expected a non-negative integer, got %g", r->file, path,
                       key, v->num);
    *n = rc ? 0 : (size_t)v->u;
    return rc;
}

/* A bound: a finite number >= 0 (or null with NUL: NaN). */
static int get_eps(const rp *r, const nn_json_val *o, const char *path, int flags, double *eps, nn_err *err) {
    int rc = get_num(r, o, path, "eps", flags, eps, err);
    if (!rc && !isnan(*eps) && !(isfinite(*eps) && *eps >= 0))
        return NN_FAIL(err, NN_E_FORMAT, "%s: %s.eps: %g is not a bound (finite, >= 0)", r->file, path, *eps);
    return rc;
}

static int get_norm(const rp *r, const nn_json_val *o, const char *path, int *norm, nn_err *err) {
    const char *s;
    int rc = get_str(r, o, path, "norm", REQ, &s, err);
    for (*norm = 0; !rc && *norm < N_NORMS; ++*norm)
        if (!strcmp(s, NORMS[*norm])) return NN_OK;
    return rc ? rc
              : NN_FAIL(err, NN_E_FORMAT, "%s: %s.norm: unknown norm \"%s\" (linf, l2 or l0)", r->file, path,
                        s);
}

/* A path inside the results folder: relative, no ".." component, no control character. */
static int get_rel(const rp *r, const nn_json_val *o, const char *path, const char *key, int flags,
                   const char **s, nn_err *err) {
    int rc = get_str(r, o, path, key, flags, s, err);
    if (rc || !*s) return rc;
    int bad = !**s || **s == '/';
    for (const char *p = *s; *p && !bad; p++) {
        bad = (unsigned char)*p < 32;
        if ((p == *s || p[-1] == '/') && p[0] == '.' && p[1] == '.' && (p[2] == '/' || !p[2])) bad = 1;
    }
    return bad ? NN_FAIL(err, NN_E_FORMAT, "%s: %s.%s: \"%s\" is not a relative path inside the folder",
                         r->file, path, key, *s)
               : NN_OK;
}

/* An array of strings (or absent/null). */
static int get_strings(const rp *r, const nn_json_val *o, const char *path, const char *key,
                       const nn_json_val **arr, nn_err *err) {
    int rc = mem(r, o, path, key, NN_JSON_ARRAY, OPT | NUL, arr, err);
    size_t i = 0;
    for (const nn_json_val *v = *arr ? nn_json_first(&r->doc, *arr) : NULL; v && !rc;
         v = nn_json_next(&r->doc, v), i++)
        if (v->type != NN_JSON_STRING)
            rc = NN_FAIL(err, NN_E_FORMAT, "%s: %s.%s[%zu]: expected a string, got %s", r->file, path, key, i,
                         nn_json_type_name(v->type));
    return rc;
}

/* Element i of an array must be an object. */
static int elem_obj(const rp *r, const nn_json_val *v, const char *path, nn_err *err) {
    return v->type == NN_JSON_OBJECT ? NN_OK
                                     : NN_FAIL(err, NN_E_FORMAT, "%s: %s: expected an object, got %s",
                                               r->file, path, nn_json_type_name(v->type));
}

/* ---- loading ---- */

static int load_sum(const rp *r, const nn_json_val *o, const char *path, rp_sum *s, nn_err *err) {
    int rc = elem_obj(r, o, path, err);
    if (!rc) rc = get_eps(r, o, path, REQ | NUL, &s->eps, err);
    for (size_t i = 0; i < N_CNT && !rc; i++)
        rc = get_cnt(r, o, path, SUM_CNT[i], &s->cnt[i], err);
    for (size_t i = 0; i < N_NUM && !rc; i++)
        rc = get_num(r, o, path, SUM_NUM[i], (i <= S_SUCCESS ? REQ : OPT) | NUL, &s->num[i], err);
    return rc;
}

static int load_cell(const rp *r, const nn_json_val *o, const char *path, rp_cell *c, nn_err *err) {
    const nn_json_val *v = NULL, *sums = NULL;
    int rc = elem_obj(r, o, path, err);
    if (!rc) rc = get_str(r, o, path, "attack", REQ, &c->attack, err);
    if (!rc) rc = get_str(r, o, path, "run", REQ, &c->run, err);
    if (!rc) rc = get_str(r, o, path, "kind", REQ, &c->kind, err);
    if (!rc) rc = get_norm(r, o, path, &c->norm, err);
    if (!rc) rc = get_eps(r, o, path, REQ | NUL, &c->eps, err);
    if (!rc) rc = get_str(r, o, path, "added", OPT | NUL, &c->added, err);
    if (!rc) rc = mem(r, o, path, "reused", NN_JSON_BOOL, OPT, &v, err);
    c->reused = v && v->boolean;
    if (!rc) rc = get_num(r, o, path, "seconds", OPT | NUL, &c->seconds, err);
    if (!rc) rc = get_rel(r, o, path, "records", REQ, &c->records, err);
    if (!rc) rc = get_rel(r, o, path, "grid", OPT | NUL, &c->grid, err);
    if (!rc) rc = mem(r, o, path, "summaries", NN_JSON_ARRAY, REQ, &sums, err);
    if (!rc && !sums->n) rc = NN_FAIL(err, NN_E_FORMAT, "%s: %s.summaries: empty", r->file, path);
    if (!rc && !(c->sum = calloc(sums->n, sizeof *c->sum))) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    char sp[320];
    for (v = rc ? NULL : nn_json_first(&r->doc, sums); v && !rc; v = nn_json_next(&r->doc, v), c->n_sum++) {
        snprintf(sp, sizeof sp, "%s.summaries[%zu]", path, c->n_sum);
        rc = load_sum(r, v, sp, &c->sum[c->n_sum], err);
    }
    return rc;
}

static int load_worst(const rp *r, const nn_json_val *o, const char *path, rp_worst *w, nn_err *err) {
    int rc = elem_obj(r, o, path, err);
    if (!rc) rc = get_norm(r, o, path, &w->norm, err);
    if (!rc) rc = get_eps(r, o, path, REQ, &w->eps, err);
    if (!rc) rc = get_cnt(r, o, path, "samples", &w->samples, err);
    if (!rc) rc = get_num(r, o, path, "robust_accuracy", REQ | NUL, &w->robust, err);
    if (!rc) rc = get_strings(r, o, path, "attacks", &w->attacks, err);
    return rc;
}

static int load_model_head(const rp *r, const nn_json_val *o, const char *path, rp_model *m, nn_err *err) {
    const nn_json_val *dg = NULL;
    int rc = elem_obj(r, o, path, err);
    if (!rc) rc = get_str(r, o, path, "label", REQ, &m->label, err);
    if (!rc && !*m->label) rc = NN_FAIL(err, NN_E_FORMAT, "%s: %s.label: empty", r->file, path);
    if (!rc) rc = get_rel(r, o, path, "dir", REQ, &m->dir, err);
    if (!rc) rc = get_str(r, o, path, "file", OPT | NUL, &m->file, err);
    if (!rc) rc = get_str(r, o, path, "sha256", OPT | NUL, &m->sha, err);
    if (!rc) rc = get_str(r, o, path, "data", OPT | NUL, &m->data, err);
    if (!rc) rc = get_num(r, o, path, "temperature", REQ, &m->t, err);
    if (!rc) rc = get_num(r, o, path, "test_samples", OPT | NUL, &m->test_samples, err);
    if (!rc) rc = get_num(r, o, path, "clean_accuracy", REQ | NUL, &m->clean, err);
    if (!rc) rc = mem(r, o, path, "diagnostics", NN_JSON_OBJECT, OPT | NUL, &dg, err);
    char dp[256];
    snprintf(dp, sizeof dp, "%s.diagnostics", path);
    m->diag_samples = NAN;
    for (size_t i = 0; i < N_DIAG; i++)
        m->diag[i] = NAN;
    if (!rc && dg) rc = get_num(r, dg, dp, "samples", OPT | NUL, &m->diag_samples, err);
    for (size_t i = 0; i < N_DIAG && !rc && dg; i++)
        rc = get_num(r, dg, dp, DIAG[i], OPT | NUL, &m->diag[i], err);
    if (!rc) rc = get_strings(r, o, path, "warnings", &m->warnings, err);
    return rc;
}

/* Reads the cell's records.npy (float32 [n, 10]) and keeps, for an unbounded attack, the distortion in its
 * norm of every successful run. */
static int load_records(const rp *r, rp_cell *c, nn_err *err) {
    char path[RP_PATH];
    nn_npy a = {0};
    int rc = exp_path_join(path, sizeof path, r->dir, c->records, err);
    if (!rc) rc = nn_npy_read(path, &a, err);
    if (!rc && (a.dtype != NN_NPY_F32 || a.ndim != 2 || a.dims[1] != RP_REC_COLS))
        rc = NN_FAIL(err, NN_E_FORMAT,
                     "%s: records must be float32 [n, %d], got %s with %d dimensions (last %zu)", path,
                     RP_REC_COLS, a.dtype == NN_NPY_F32 ? "float32" : "int32", a.ndim,
                     a.ndim ? a.dims[a.ndim - 1] : 0);
    size_t n = rc ? 0 : a.dims[0], col = 8 - (size_t)c->norm;
    const float *v = a.data;
    if (!rc && isnan(c->eps) && !(c->dist = malloc((n ? n : 1) * sizeof *c->dist)))
        rc = NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n && c->dist; i++)
        if (v[i * RP_REC_COLS + 5] > 0.5f) c->dist[c->n_dist++] = v[i * RP_REC_COLS + col];
    nn_npy_free(&a);
    return rc;
}

static int load_model(const rp *r, const nn_json_val *o, const char *path, rp_model *m, nn_err *err) {
    const nn_json_val *cells = NULL, *wc = NULL, *v;
    int rc = load_model_head(r, o, path, m, err);
    if (!rc) rc = mem(r, o, path, "cells", NN_JSON_ARRAY, REQ, &cells, err);
    if (!rc) rc = mem(r, o, path, "worst_case", NN_JSON_ARRAY, REQ, &wc, err);
    if (!rc &&
        (!(m->cell = calloc(cells->n + 1, sizeof *m->cell)) || !(m->wc = calloc(wc->n + 1, sizeof *m->wc))))
        rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    char sp[128];
    for (v = rc ? NULL : nn_json_first(&r->doc, cells); v && !rc; v = nn_json_next(&r->doc, v)) {
        snprintf(sp, sizeof sp, "%s.cells[%zu]", path, m->n_cell);
        rc = load_cell(r, v, sp, &m->cell[m->n_cell++], err);
    }
    for (v = rc ? NULL : nn_json_first(&r->doc, wc); v && !rc; v = nn_json_next(&r->doc, v)) {
        snprintf(sp, sizeof sp, "%s.worst_case[%zu]", path, m->n_wc);
        rc = load_worst(r, v, sp, &m->wc[m->n_wc++], err);
    }
    if (!rc && !isfinite(m->t))
        rc = NN_FAIL(err, NN_E_FORMAT, "%s: %s.temperature: not finite", r->file, path);
    for (size_t i = 0; i < m->n_cell && !rc; i++)
        rc = load_records(r, &m->cell[i], err);
    return rc;
}

static int load_head(rp *r, const nn_json_val *root, nn_err *err) {
    const char *fmt = NULL;
    const nn_json_val *x = NULL, *blas = NULL, *v = NULL;
    int rc = root->type == NN_JSON_OBJECT
                 ? NN_OK
                 : NN_FAIL(err, NN_E_FORMAT, "%s: expected an object at the top, got %s", r->file,
                           nn_json_type_name(root->type));
    if (!rc) rc = get_str(r, root, "", "format", REQ, &fmt, err);
    if (!rc && strcmp(fmt, RP_FORMAT))
        rc = NN_FAIL(err, NN_E_FORMAT, "%s: format: \"%s\", expected \"%s\"", r->file, fmt, RP_FORMAT);
    if (!rc) rc = mem(r, root, "", "experiment", NN_JSON_OBJECT, REQ, &x, err);
    if (!rc) rc = get_str(r, x, "experiment", "name", REQ, &r->name, err);
    if (!rc) rc = get_str(r, x, "experiment", "path", REQ, &r->xpath, err);
    if (!rc) rc = get_str(r, x, "experiment", "sha256", OPT | NUL, &r->xsha, err);
    if (!rc) rc = get_str(r, root, "", "temper_version", OPT | NUL, &r->version, err);
    if (!rc) rc = get_str(r, root, "", "git_commit", OPT | NUL, &r->git, err);
    if (!rc) rc = get_str(r, root, "", "started", OPT | NUL, &r->started, err);
    const char *nk[] = {"seed", "threads", "wall_seconds", "cells_total", "cells_reused", "samples"};
    double *nv[] = {&r->seed, &r->threads, &r->wall, &r->cells_total, &r->cells_reused, &r->samples};
    for (size_t i = 0; i < 6 && !rc; i++)
        rc = get_num(r, root, "", nk[i], OPT | NUL, nv[i], err);
    r->blas_threads = NAN;
    if (!rc) rc = mem(r, root, "", "blas", NN_JSON_OBJECT, OPT | NUL, &blas, err);
    if (!rc && blas) rc = get_str(r, blas, "blas", "config", OPT | NUL, &r->blas_cfg, err);
    if (!rc && blas) rc = get_str(r, blas, "blas", "parallel_mode", OPT | NUL, &r->blas_mode, err);
    if (!rc && blas) rc = get_num(r, blas, "blas", "threads", OPT | NUL, &r->blas_threads, err);
    if (!rc) rc = mem(r, root, "", "libraries", NN_JSON_OBJECT, OPT | NUL, &r->libs, err);
    for (v = !rc && r->libs ? nn_json_first(&r->doc, r->libs) : NULL; v && !rc; v = nn_json_next(&r->doc, v))
        if (v->type != NN_JSON_STRING)
            rc = NN_FAIL(err, NN_E_FORMAT, "%s: libraries.%s: expected a string, got %s", r->file, v->key,
                         nn_json_type_name(v->type));
    if (!rc) rc = mem(r, root, "", "force", NN_JSON_BOOL, OPT, &v, err);
    r->force = !rc && v ? v->boolean : -1;
    if (!rc) rc = mem(r, root, "", "temperature_aware", NN_JSON_BOOL, OPT, &v, err);
    r->taware = !rc && v ? v->boolean : -1;
    return rc;
}

static int load(rp *r, nn_err *err) {
    char *text = NULL;
    size_t len = 0;
    const nn_json_val *models = NULL, *v;
    int rc = exp_path_join(r->file, sizeof r->file, r->dir, "results.json", err);
    if (!rc) rc = nn_io_read_all(r->file, &text, &len, err);
    if (!rc && nn_json_parse(&r->doc, text, len, err)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        rc = NN_FAIL(err, NN_E_FORMAT, "%s: %s", r->file, msg);
    }
    free(text);
    if (!rc) rc = load_head(r, nn_json_root(&r->doc), err);
    if (!rc) rc = mem(r, nn_json_root(&r->doc), "", "models", NN_JSON_ARRAY, REQ, &models, err);
    if (!rc && !(r->m = calloc(models->n + 1, sizeof *r->m))) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    char path[64];
    for (v = rc ? NULL : nn_json_first(&r->doc, models); v && !rc; v = nn_json_next(&r->doc, v)) {
        snprintf(path, sizeof path, "models[%zu]", r->n_m);
        rc = load_model(r, v, path, &r->m[r->n_m++], err);
    }
    return rc;
}

static void rp_free(rp *r) {
    for (size_t i = 0; i < r->n_m; i++) {
        for (size_t j = 0; j < r->m[i].n_cell; j++)
            free(r->m[i].cell[j].sum), free(r->m[i].cell[j].dist);
        free(r->m[i].cell), free(r->m[i].wc);
    }
    free(r->m), free(r->plot);
    nn_json_free(&r->doc);
}

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
static size_t label_prefix(const rp *r) {
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
static int plot_robust(rp *r, FILE *out, nn_err *err) {
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
        snprintf(stem, sizeof stem, "robust_vs_eps_%s", NORMS[k]);
        snprintf(title, sizeof title, "Worst-case robust accuracy vs ε (%s)", NORM_SHOW[k]);
        snprintf(xl, sizeof xl, "ε (%s bound%s)", NORM_SHOW[k], k == 2 ? ", features changed" : "");
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
static int plot_temperature(rp *r, FILE *out, nn_err *err) {
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
    if (stem_used(r, stem)) snprintf(stem + w, sizeof stem - w, "_%s", NORMS[k]);
    snprintf(title, sizeof title, "%.150s: distortion of successful runs", attack);
    snprintf(xl, sizeof xl, "%s distortion%s", NORM_SHOW[k], k == 2 ? " (features changed)" : "");
    exp_plot_spec p = exp_plot_spec_default();
    p.kind = EXP_PLOT_HIST, p.hist_frac = 1, p.title = title, p.xlabel = xl,
    p.ylabel = "fraction of successful runs";
    p.series = s, p.n_series = nm;
    if (!rc) rc = plot_add(r, stem, &pl, err);
    if (!rc)
        snprintf(pl->caption, sizeof pl->caption, "Distortion (%s) of the successful runs of %.200s",
                 NORM_SHOW[k], attack);
    if (!rc) prefix_sub(r, pl);
    if (!rc && nm < r->n_m)
        snprintf(pl->note, sizeof pl->note, "Only the first %zu of %zu models are plotted.", nm, r->n_m);
    if (!rc) rc = plot_write(r, &p, pl, out, err);
    free(s), free(lab);
    return rc;
}

/* A histogram per unbounded attack (name and norm), in order of first appearance. */
static int plot_hists(rp *r, FILE *out, nn_err *err) {
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
static void plots_clean(const rp *r) {
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
    csv_str(b, "worst-case", 0), csv_str(b, at.p, 0), csv_str(b, NULL, 0), csv_str(b, NORMS[w->norm], 0);
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
        nn_jbuf_printf(b, ",%s", SUM_CNT[i]);
    for (size_t i = 0; i < N_NUM; i++)
        nn_jbuf_printf(b, ",%s", SUM_NUM[i]);
    nn_jbuf_puts(b, ",seconds,reused");
    for (size_t i = 0; i < N_DIAG; i++)
        nn_jbuf_printf(b, ",%s", DIAG[i]);
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
                    csv_str(b, NORMS[c->norm], 0);
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
        nn_jbuf_printf(b, " %s %g |", NORM_SHOW[tm[q].norm], tm[q].eps);
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
    int rc = load(r, err);
    if (!rc) r->pre = label_prefix(r);
    if (!rc) rc = plot_robust(r, out, err);
    if (!rc) rc = plot_temperature(r, out, err);
    if (!rc) rc = plot_hists(r, out, err);
    if (!rc) write_csv(&csv, r);
    if (!rc) rc = write_md(&md, r, err);
    if (!rc) rc = put_file(r, "summary.csv", &csv, out, err);
    if (!rc) rc = put_file(r, "report.md", &md, out, err);
    if (!rc) plots_clean(r);
    nn_jbuf_free(&csv), nn_jbuf_free(&md);
    rp_free(r);
    free(r);
    return rc;
}
