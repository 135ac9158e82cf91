/* exp_report_load.c - loads a batch evaluation's results.json for the report (exp_report.c): every member
 * checked (errors name the file and the member's path), every cell's records.npy read and its shape checked,
 * and the distortions the histograms need kept. Strings point into the parsed document. */
#include "exp_report_int.h"
#include "exp_run.h"
#include "nn_io.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const RP_SUM_CNT[] = {"samples", "runs", "clean_correct", "successes"};
const char *const RP_SUM_NUM[] = {"robust_accuracy", "success_rate", "mean_l0",     "mean_l2",   "mean_linf",
                                  "median_l0",       "median_l2",    "median_linf", "mean_iters"};
const char *const RP_DIAG[] = {"mean_abs_logit", "frac_zero_gradient", "frac_saturated_softmax"};
const char *const RP_NORMS[] = {"linf", "l2", "l0"}; /* display order; records column 8, 7, 6 */
const char *const RP_NORM_SHOW[] = {"L∞", "L2", "L0"};

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
        if (!strcmp(s, RP_NORMS[*norm])) return NN_OK;
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
        rc = get_cnt(r, o, path, RP_SUM_CNT[i], &s->cnt[i], err);
    for (size_t i = 0; i < N_NUM && !rc; i++)
        rc = get_num(r, o, path, RP_SUM_NUM[i], (i <= S_SUCCESS ? REQ : OPT) | NUL, &s->num[i], err);
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
        rc = get_num(r, dg, dp, RP_DIAG[i], OPT | NUL, &m->diag[i], err);
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

int rp_load(rp *r, nn_err *err) {
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

void rp_free(rp *r) {
    for (size_t i = 0; i < r->n_m; i++) {
        for (size_t j = 0; j < r->m[i].n_cell; j++)
            free(r->m[i].cell[j].sum), free(r->m[i].cell[j].dist);
        free(r->m[i].cell), free(r->m[i].wc);
    }
    free(r->m), free(r->plot);
    nn_json_free(&r->doc);
}
