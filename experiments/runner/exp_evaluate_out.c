/* exp_evaluate_out.c - phase 2 of a batch evaluation (exp_evaluate.c has phase 1): from the finished cells,
 * the results folder: per model its cells' files, the worst case per threat model and samples.csv; then
 * results.json, written last so that a folder without it never looks finished; and the summary table. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <zlib.h>

#include "exp_evaluate_int.h"
#include "exp_progress.h"
#include "exp_run.h"
#include "nn_sys.h"

static int cmp_threat(const void *a, const void *b) {
    const ev_threat *x = a, *y = b;
    return x->norm != y->norm ? (x->norm > y->norm) - (x->norm < y->norm)
                              : (x->eps > y->eps) - (x->eps < y->eps);
}

/* The threat models of a model's battery: every (norm, eps) of any attack's grid, sorted by norm, then eps.
 */
static int model_threats(ev_model *m, nn_err *err) {
    size_t cap = 0;
    for (size_t i = 0; i < m->n_bat; i++)
        cap += m->bat[i].n_eps;
    m->wc = calloc(cap ? cap : 1, sizeof *m->wc);
    if (!m->wc) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (int norm = EXP_NORM_LINF; norm <= EXP_NORM_L0; norm++) {
        size_t first = m->n_wc;
        for (size_t i = 0; i < m->n_bat; i++) {
            if (ev_attack_norm(&m->bat[i]) != norm) continue;
            for (size_t e = 0; e < m->bat[i].n_eps; e++) {
                size_t j = first;
                while (j < m->n_wc && m->wc[j].eps != m->bat[i].eps[e])
                    j++;
                if (j == m->n_wc) m->wc[m->n_wc++] = (ev_threat){.norm = norm, .eps = m->bat[i].eps[e]};
            }
        }
        qsort(m->wc + first, m->n_wc - first, sizeof *m->wc, cmp_threat);
    }
    return NN_OK;
}

static int copy_file(const char *from, const char *to, nn_err *err) {
    char *buf = NULL;
    size_t len = 0;
    int rc = nn_io_read_all(from, &buf, &len, err);
    if (!rc) rc = nn_io_write_atomic(to, buf, len, err);
    free(buf);
    return rc;
}

/* Copies a cell's records.npy (and grid.png) into <mdir>/<run>/. */
static int cell_copy(const ev_cell *c, const char *mdir, nn_err *err) {
    char sub[EV_PATH], from[EV_PATH], to[EV_PATH];
    int rc = exp_path_join(sub, sizeof sub, mdir, c->run, err);
    if (!rc) rc = exp_mkdir_p(sub, err);
    for (int f = 0; f < 1 + c->grid && !rc; f++) {
        const char *name = f ? "grid.png" : "records.npy";
        rc = exp_path_join(from, sizeof from, c->dir, name, err);
        if (!rc) rc = exp_path_join(to, sizeof to, sub, name, err);
        if (!rc) rc = copy_file(from, to, err);
    }
    return rc;
}

/* samples.csv: one row per image of the largest sample set; per run its outcome (targeted "all": any target
 * reached; pred and distortions of the successful run with the least distortion, else of the first), empty
 * where the run did not cover the image; the worst case per threat model (empty beyond n_samples). */
static int write_samples(const ev_model *m, const exp_records *rec, const unsigned char *rob,
                         const char *path, nn_err *err) {
    size_t n = m->max_m, nc = m->n_cells;
    long *best = malloc((nc * n > 0 ? nc * n : 1) * sizeof *best);
    if (!best) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
    for (size_t c = 0; c < nc; c++) {
        long *b = best + c * n;
        int norm = ev_attack_norm(&m->bat[m->cells[c].ai]);
        for (size_t i = 0; i < n; i++)
            b[i] = -1;
        for (size_t j = 0; j < rec[c].n; j++) {
            const float *q = rec[c].rows + j * EXP_REC_COLS;
            double idx = q[EXP_REC_INDEX];
            if (!(idx >= 0 && idx < (double)n)) continue;
            size_t i = (size_t)idx;
            const float *cur = b[i] < 0 ? NULL : rec[c].rows + (size_t)b[i] * EXP_REC_COLS;
            if (!cur || (q[EXP_REC_SUCCESS] != 0 &&
                         (cur[EXP_REC_SUCCESS] == 0 || ev_rec_dist(q, norm) < ev_rec_dist(cur, norm))))
                b[i] = (long)j;
        }
    }
    nn_jbuf b = {0};
    nn_jbuf_puts(&b, "test_index,label,clean_pred");
    for (size_t c = 0; c < nc; c++) {
        const char *r = m->cells[c].run;
        nn_jbuf_printf(&b, ",%s_success,%s_pred,%s_l0,%s_l2,%s_linf", r, r, r, r, r);
    }
    for (size_t t = 0; t < m->n_wc; t++)
        nn_jbuf_printf(&b, ",worst_%s_%g_robust", ev_norm_name(m->wc[t].norm),
                       exp_float_decimal(m->wc[t].eps));
    nn_jbuf_puts(&b, "\n");
    for (size_t i = 0; i < n; i++) {
        nn_jbuf_printf(&b, "%zu,%d,%d", m->tid[i], m->y[i], m->pred[i]);
        for (size_t c = 0; c < nc; c++) {
            long k = best[c * n + i];
            const float *q = k < 0 ? NULL : rec[c].rows + (size_t)k * EXP_REC_COLS;
            if (!q)
                nn_jbuf_puts(&b, ",,,,,");
            else
                nn_jbuf_printf(&b, ",%d,%d,%.0f,%.9g,%.9g", q[EXP_REC_SUCCESS] != 0, (int)q[EXP_REC_PRED],
                               (double)q[EXP_REC_L0], (double)q[EXP_REC_L2], (double)q[EXP_REC_LINF]);
        }
        for (size_t t = 0; t < m->n_wc; t++)
            if (i < m->n_samples)
                nn_jbuf_printf(&b, ",%d", rob[t * m->n_samples + i]);
            else
                nn_jbuf_puts(&b, ",");
        nn_jbuf_puts(&b, "\n");
    }
    int rc = b.oom ? NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path)
                   : nn_io_write_atomic(path, b.p, b.len, err);
    nn_jbuf_free(&b);
    free(best);
    return rc;
}

/* Phase 2 for one model: its folder, the cells' files, the worst case, samples.csv. */
static int model_write(ev_ctx *x, ev_model *m, nn_err *err) {
    char mdir[EV_PATH], path[EV_PATH];
    size_t nc = m->n_cells, ns = m->n_samples;
    nn_npy *arr = calloc(nc ? nc : 1, sizeof *arr);
    exp_records *rec = calloc(nc ? nc : 1, sizeof *rec);
    unsigned char *cc = malloc(ns), *rob = NULL;
    int rc = arr && rec && cc ? model_threats(m, err) : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc && !(rob = malloc(m->n_wc * ns + 1))) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) rc = exp_path_join(path, sizeof path, x->cfg->output, "models", err);
    if (!rc) rc = exp_path_join(mdir, sizeof mdir, path, m->dir, err);
    if (!rc) rc = exp_mkdir_p(mdir, err);
    for (size_t c = 0; c < nc && !rc; c++) {
        rc = cell_copy(&m->cells[c], mdir, err);
        if (!rc) rc = ev_records_load(m->cells[c].dir, &arr[c], err);
        if (!rc) rec[c] = (exp_records){arr[c].data, arr[c].dims[0]};
    }
    for (size_t i = 0; i < ns && !rc; i++)
        cc[i] = m->pred[i] == m->y[i];
    for (size_t t = 0; t < m->n_wc && !rc; t++) {
        ev_threat *w = &m->wc[t];
        if (!(w->counted = malloc(nc + 1)))
            rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
        else
            w->robust = exp_worst_case(rec, nc, cc, ns, w->norm, (double)w->eps, rob + t * ns, w->counted);
    }
    if (!rc) rc = exp_path_join(path, sizeof path, mdir, "samples.csv", err);
    if (!rc) rc = write_samples(m, rec, rob, path, err);
    for (size_t c = 0; arr && c < nc; c++)
        nn_npy_free(&arr[c]);
    free(arr);
    free(rec);
    free(cc);
    free(rob);
    return rc;
}

/* The warning lines as a JSON list of strings. */
static void json_lines(exp_json *j, const char *key, const char *text) {
    exp_json_key(j, key);
    exp_json_array_begin(j);
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        exp_json_string(j, line);
        p += len + (e != NULL);
    }
    exp_json_array_end(j);
}

static void json_cell(exp_json *j, const ev_model *m, const ev_cell *c) {
    const exp_attack *a = &m->bat[c->ai];
    char path[1024];
    exp_json_object_begin(j);
    exp_json_kv_string(j, "attack", a->name);
    exp_json_kv_string(j, "run", c->run);
    exp_json_kv_string(j, "kind", atk_name(&a->cfg));
    exp_json_kv_string(j, "norm", ev_norm_name(ev_attack_norm(a)));
    exp_json_kv_number(j, "eps", c->eps >= 0 ? exp_float_decimal(c->eps) : NAN);
    exp_json_kv_string(j, "added", m->added[c->ai] ? "temperature-aware" : NULL);
    exp_json_kv_string(j, "key", c->key);
    exp_json_key(j, "reused");
    exp_json_bool(j, c->reused);
    exp_json_kv_number(j, "seconds", c->seconds);
    exp_json_key(j, "params");
    exp_json_object_begin(j);
    exp_attack_json_params(j, a);
    exp_json_object_end(j);
    snprintf(path, sizeof path, "models/%s/%s/records.npy", m->dir, c->run);
    exp_json_kv_string(j, "records", path);
    snprintf(path, sizeof path, "models/%s/%s/grid.png", m->dir, c->run);
    exp_json_kv_string(j, "grid", c->grid ? path : NULL);
    exp_json_key(j, "summaries");
    exp_json_array_begin(j);
    for (size_t s = 0; s < c->n_sum; s++)
        ev_json_summary(j, &c->sum[s], a);
    exp_json_array_end(j);
    exp_json_object_end(j);
}

static void json_model(exp_json *j, const ev_model *m) {
    exp_json_object_begin(j);
    exp_json_kv_string(j, "label", m->label);
    char dir[400];
    snprintf(dir, sizeof dir, "models/%s", m->dir);
    exp_json_kv_string(j, "dir", dir);
    exp_json_kv_string(j, "file", m->file);
    exp_json_kv_string(j, "sha256", m->sha);
    exp_json_kv_string(j, "data", m->dc.name);
    exp_json_key(j, "range");
    exp_json_array_begin(j);
    exp_json_number(j, exp_float_decimal(m->dc.lo));
    exp_json_number(j, exp_float_decimal(m->dc.hi));
    exp_json_array_end(j);
    exp_json_kv_number(j, "temperature", exp_float_decimal(m->T));
    exp_json_kv_uint(j, "test_samples", m->n_samples);
    exp_json_kv_number(j, "clean_accuracy", m->clean_acc);
    exp_attack_json_diag(j, &m->diag);
    json_lines(j, "warnings", m->warn);
    exp_json_key(j, "cells");
    exp_json_array_begin(j);
    for (size_t c = 0; c < m->n_cells; c++)
        json_cell(j, m, &m->cells[c]);
    exp_json_array_end(j);
    exp_json_key(j, "worst_case");
    exp_json_array_begin(j);
    for (size_t t = 0; t < m->n_wc; t++) {
        const ev_threat *w = &m->wc[t];
        exp_json_object_begin(j);
        exp_json_kv_string(j, "norm", ev_norm_name(w->norm));
        exp_json_kv_number(j, "eps", exp_float_decimal(w->eps));
        exp_json_kv_uint(j, "samples", m->n_samples);
        exp_json_kv_uint(j, "robust", w->robust);
        exp_json_kv_number(j, "robust_accuracy", (double)w->robust / (double)m->n_samples);
        exp_json_key(j, "attacks");
        exp_json_array_begin(j);
        for (size_t c = 0; c < m->n_cells; c++)
            if (w->counted[c]) exp_json_string(j, m->cells[c].run);
        exp_json_array_end(j);
        exp_json_object_end(j);
    }
    exp_json_array_end(j);
    exp_json_object_end(j);
}

/* The provenance members of results.json. */
static void json_provenance(exp_json *j, const ev_ctx *x, const char *text, size_t len) {
    nn_sys_info s;
    nn_sys_info_get(&s);
    char sha[65];
    exp_sha256_hex(text, len, sha);
    exp_json_kv_string(j, "format", EV_FORMAT);
    exp_json_key(j, "experiment");
    exp_json_object_begin(j);
    exp_json_kv_string(j, "path", x->cfg->path);
    exp_json_kv_string(j, "name", x->cfg->name);
    exp_json_kv_string(j, "sha256", sha);
    exp_json_kv_string(j, "text", text);
    exp_json_object_end(j);
    exp_json_kv_string(j, "temper_version", TEMPER_VERSION);
    exp_json_kv_string(j, "git_commit", TEMPER_GIT);
    exp_json_kv_uint(j, "seed",
                     x->cfg->n_attacks ? x->cfg->attacks[0].cfg.seed : 0); /* each cell has its own */
    exp_json_kv_uint(j, "threads", (unsigned long long)s.threads);
    exp_json_key(j, "blas");
    exp_json_object_begin(j);
    exp_json_kv_string(j, "config", s.blas_config);
    exp_json_kv_uint(j, "threads", (unsigned long long)s.blas_threads);
    exp_json_kv_string(j, "parallel_mode", exp_blas_mode_name(s.blas_parallel));
    exp_json_object_end(j);
    exp_json_key(j, "libraries");
    exp_json_object_begin(j);
    exp_json_kv_string(j, "libyaml", yaml_get_version_string());
    exp_json_kv_string(j, "zlib", zlibVersion());
    exp_json_kv_string(j, "libpng", png_get_libpng_ver(NULL));
    exp_json_kv_string(j, "openblas", s.blas_config);
    exp_json_object_end(j);
    exp_json_kv_string(j, "started", x->started);
    exp_json_kv_number(j, "wall_seconds", exp_now() - x->t0);
    exp_json_kv_uint(j, "cells_total", x->total);
    exp_json_kv_uint(j, "cells_reused", x->reused);
    exp_json_key(j, "force");
    exp_json_bool(j, x->o->force);
    exp_json_kv_uint(j, "samples", x->cfg->evaluate.samples);
    exp_json_key(j, "temperature_aware");
    exp_json_bool(j, x->cfg->evaluate.temperature_aware);
}

static int write_results(const ev_ctx *x, const char *path, nn_err *err) {
    char *own = NULL;
    const char *text = x->o->text;
    size_t len = x->o->text_len;
    int rc = text ? NN_OK : nn_io_read_all(x->cfg->path, &own, &len, err);
    if (rc) return rc;
    if (!text) text = own;
    exp_json j;
    exp_json_init(&j);
    exp_json_object_begin(&j);
    json_provenance(&j, x, text, len);
    exp_json_key(&j, "models");
    exp_json_array_begin(&j);
    for (size_t i = 0; i < x->n_m; i++)
        json_model(&j, &x->m[i]);
    exp_json_array_end(&j);
    exp_json_object_end(&j);
    rc = exp_json_finish(&j, err);
    if (!rc) rc = nn_io_write_atomic(path, j.b.p, j.b.len, err);
    exp_json_free(&j);
    free(own);
    return rc;
}

/* The table: model, T, clean accuracy, worst-case robust accuracy per threat model (union over the models).
 */
void ev_print_table(const ev_ctx *x, FILE *out) {
    ev_threat u[64];
    size_t nu = 0, w = 5;
    for (size_t i = 0; i < x->n_m; i++) {
        size_t l = strlen(x->m[i].label);
        w = l > w ? l : w;
        for (size_t t = 0; t < x->m[i].n_wc && nu < 64; t++) {
            const ev_threat *a = &x->m[i].wc[t];
            size_t k = 0;
            while (k < nu && (u[k].norm != a->norm || u[k].eps != a->eps))
                k++;
            if (k == nu) u[nu++] = *a;
        }
    }
    w = w > 40 ? 40 : w;
    for (size_t a = 1; a < nu; a++) /* insertion sort: norm, then eps */
        for (size_t b = a;
             b > 0 && (u[b].norm < u[b - 1].norm || (u[b].norm == u[b - 1].norm && u[b].eps < u[b - 1].eps));
             b--) {
            ev_threat t = u[b];
            u[b] = u[b - 1], u[b - 1] = t;
        }
    fprintf(out, "%-*s %6s %8s", (int)w, "model", "T", "clean");
    for (size_t k = 0; k < nu; k++) {
        char h[32];
        snprintf(h, sizeof h, "%s %g", ev_norm_name(u[k].norm), exp_float_decimal(u[k].eps));
        fprintf(out, " %10s", h);
    }
    fputc('\n', out);
    for (size_t i = 0; i < x->n_m; i++) {
        const ev_model *m = &x->m[i];
        fprintf(out, "%-*.*s %6g %7.2f%%", (int)w, (int)w, m->label, (double)m->T, 100 * m->clean_acc);
        for (size_t k = 0; k < nu; k++) {
            size_t t = 0;
            while (t < m->n_wc && (m->wc[t].norm != u[k].norm || m->wc[t].eps != u[k].eps))
                t++;
            if (t == m->n_wc)
                fprintf(out, " %10s", "-");
            else
                fprintf(out, " %9.2f%%", 100.0 * (double)m->wc[t].robust / (double)m->n_samples);
        }
        fputc('\n', out);
    }
    fprintf(out, "worst-case robust accuracy over every attack, on the first %zu test images per model\n",
            x->cfg->evaluate.samples);
}

/* Phase 2: the results folder, results.json last. */
int ev_write_folder(ev_ctx *x, nn_err *err) {
    char path[EV_PATH];
    const char *out = x->cfg->output;
    int rc = exp_mkdir_p(out, err);
    if (!rc) rc = exp_path_join(path, sizeof path, out, "results.json", err);
    if (!rc && remove(path) != 0 && errno != ENOENT)
        rc = NN_FAIL(err, NN_E_IO, "%s: cannot remove the previous run's file: %s", path, strerror(errno));
    for (size_t i = 0; i < x->n_m && !rc; i++)
        rc = model_write(x, &x->m[i], err);
    if (rc) return rc;
    ev_kill_point(x->o, EXP_KILL_BEFORE_RESULTS, 0);
    return write_results(x, path, err);
}
