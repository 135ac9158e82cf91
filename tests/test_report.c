/* test_report.c - exp_report_write on hand-made results folders: summary.csv rows and values, report.md
 * (worst-case table, diagnostics, temperature-aware marker, valid tables, links that exist), every plot a
 * valid PNG (chunk CRCs checked with zlib) and a well-formed SVG, success_vs_T only when temperatures
 * differ, byte-identical regeneration, the series cap, and errors naming the file and member (including
 * truncated and mutated results.json, which must fail cleanly, never crash).
 *
 * The folder is built here: results.json with exp_json (the schema of eval_schema / exp_report.h) and
 * records.npy with nn_npy_write_f32. Expected numbers are the ones written into the fixture; the
 * percentages are those fractions x 100 done by hand. Files go to a mkdtemp folder (on /dev/shm when there
 * is one: the atomic writes fsync), removed at the end. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "test_util.h"
#include <cmocka.h>

#include "exp_json.h"
#include "exp_plot.h"
#include "exp_report.h"
#include "nn_io.h"

static char g_root[256];

static int group_setup(void **state) {
    (void)state;
    snprintf(g_root, sizeof g_root, "/dev/shm/temper_test_report_XXXXXX");
    if (mkdtemp(g_root)) return 0;
    snprintf(g_root, sizeof g_root, "/tmp/temper_test_report_XXXXXX");
    return mkdtemp(g_root) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    rm_rf(g_root);
    return 0;
}

/* ---- the fixture ---- */

typedef struct fx {
    char dir[512];
    size_t n_models;
    double t[80];
    int full;       /* 1: every cell kind and three worst-case entries; 0: one cell, one entry per model */
    size_t n_extra; /* extra bounded attacks "a<k>" on every model: eps 0.1 (no success), 0.2 (all) */
} fx;

static const char *const LABELS[3] = {"m/t1", "m/t10|x", "m/t100"};
static const char *const DIRS[3] = {"models/m__t1", "models/m__t10_x", "models/m__t100"};
static const double MEAN_LOGIT[3] = {1.5, 72.25, 722.1}, ZERO_GRAD[3] = {0, 0.5, 0.9},
                    SAT[3] = {0.01, 0.5, 0.99};

static void label_of(const fx *f, size_t i, char *lab, char *dir) {
    if (f->full && i < 3) {
        strcpy(lab, LABELS[i]), strcpy(dir, DIRS[i]);
        return;
    }
    sprintf(lab, "model-%zu", i), sprintf(dir, "models/model-%zu", i);
}

static void mkdirs(const char *dir) {
    nn_err err = {0};
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s", dir);
    for (char *p = cmd + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(cmd, 0777);
            *p = '/';
        }
    mkdir(cmd, 0777);
    (void)err;
}

/* records.npy with 4 rows: rows r < successes succeed; distortions l0 = r + 1, l2 = 0.5 (r + 1),
 * linf = 0.1 (r + 1). */
static void write_records(const char *dir, const char *rel, size_t successes, size_t cols) {
    char path[1024], sub[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    snprintf(sub, sizeof sub, "%s", path);
    *strrchr(sub, '/') = 0;
    mkdirs(sub);
    float v[4 * 10];
    for (size_t r = 0; r < 4; r++) {
        float row[10] = {(float)r,
                         1,
                         -1,
                         1,
                         r < successes ? 2.0f : 1.0f,
                         r < successes ? 1.0f : 0.0f,
                         (float)(r + 1),
                         0.5f * (float)(r + 1),
                         0.1f * (float)(r + 1),
                         7};
        memcpy(v + r * cols, row, cols * sizeof(float));
    }
    size_t dims[2] = {4, cols};
    nn_err err = {0};
    assert_int_equal(nn_npy_write_f32(path, v, 2, dims, &err), NN_OK);
}

static void json_sum(exp_json *j, double eps, size_t succ, double robust, double iters) {
    exp_json_object_begin(j);
    exp_json_key(j, "eps");
    if (isnan(eps))
        exp_json_null(j);
    else
        exp_json_number(j, eps);
    exp_json_kv_uint(j, "samples", 4), exp_json_kv_uint(j, "runs", 4),
        exp_json_kv_uint(j, "clean_correct", 4);
    exp_json_kv_uint(j, "successes", succ);
    exp_json_kv_number(j, "robust_accuracy", robust), exp_json_kv_number(j, "success_rate", succ / 4.0);
    exp_json_kv_number(j, "mean_l0", 2), exp_json_kv_number(j, "mean_l2", 0.75);
    exp_json_kv_number(j, "mean_linf", 0.125), exp_json_kv_number(j, "median_l0", 2);
    exp_json_kv_number(j, "median_l2", 0.75);
    exp_json_key(j, "median_linf"), exp_json_null(j); /* null -> empty field */
    exp_json_kv_number(j, "mean_iters", iters);
    exp_json_object_end(j);
}

/* One cell: records written with `succ` successes; unbounded (eps NaN) cells get a second summary at eps2. */
static void json_cell(exp_json *j, const fx *f, const char *mdir, const char *attack, const char *run,
                      const char *kind, const char *norm, double eps, double eps2, const char *added,
                      size_t succ, int grid) {
    char rel[512];
    exp_json_object_begin(j);
    exp_json_kv_string(j, "attack", attack), exp_json_kv_string(j, "run", run);
    exp_json_kv_string(j, "kind", kind), exp_json_kv_string(j, "norm", norm);
    exp_json_key(j, "eps");
    if (isnan(eps))
        exp_json_null(j);
    else
        exp_json_number(j, eps);
    exp_json_kv_string(j, "added", added);
    exp_json_kv_string(j, "key", "0123");
    exp_json_key(j, "reused"), exp_json_bool(j, added != NULL);
    exp_json_kv_number(j, "seconds", added ? 0.25 : 1.5);
    exp_json_key(j, "params"), exp_json_object_begin(j), exp_json_object_end(j);
    snprintf(rel, sizeof rel, "%s/%s/records.npy", mdir, run);
    exp_json_kv_string(j, "records", rel);
    write_records(f->dir, rel, succ, 10);
    snprintf(rel, sizeof rel, "%s/%s/grid.png", mdir, run);
    exp_json_kv_string(j, "grid", grid ? rel : NULL);
    if (grid) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", f->dir, rel);
        FILE *g = fopen(p, "wb");
        assert_non_null(g);
        fputs("not a real grid", g);
        fclose(g);
    }
    exp_json_key(j, "summaries");
    exp_json_array_begin(j);
    json_sum(j, isnan(eps) ? NAN : eps, succ, 1 - succ / 4.0, 10);
    if (isnan(eps)) json_sum(j, eps2, succ > 0 ? succ - 1 : 0, 0.75, 10);
    exp_json_array_end(j);
    exp_json_object_end(j);
}

static void json_worst(exp_json *j, const char *norm, double eps, double robust) {
    exp_json_object_begin(j);
    exp_json_kv_string(j, "norm", norm), exp_json_kv_number(j, "eps", eps);
    exp_json_kv_uint(j, "samples", 4), exp_json_kv_number(j, "robust_accuracy", robust);
    exp_json_key(j, "attacks"), exp_json_array_begin(j), exp_json_string(j, "fgsm-eps0.3"),
        exp_json_string(j, "cw");
    exp_json_array_end(j);
    exp_json_object_end(j);
}

static void json_model(exp_json *j, const fx *f, size_t i) {
    char lab[64], dir[128];
    label_of(f, i, lab, dir);
    size_t d = i < 3 ? i : 0;
    exp_json_object_begin(j);
    exp_json_kv_string(j, "label", lab), exp_json_kv_string(j, "dir", dir);
    exp_json_kv_string(j, "file", "results/x/model.safetensors"), exp_json_kv_string(j, "sha256", "abc");
    exp_json_kv_string(j, "data", "mnist");
    exp_json_key(j, "range"), exp_json_array_begin(j), exp_json_number(j, -0.5), exp_json_number(j, 0.5);
    exp_json_array_end(j);
    exp_json_kv_number(j, "temperature", f->t[i]);
    exp_json_kv_uint(j, "test_samples", 4), exp_json_kv_number(j, "clean_accuracy", 0.99);
    exp_json_key(j, "diagnostics"), exp_json_object_begin(j);
    exp_json_kv_uint(j, "samples", 4), exp_json_kv_number(j, "mean_abs_logit", MEAN_LOGIT[d]);
    exp_json_kv_number(j, "std_abs_logit", 1), exp_json_kv_number(j, "frac_zero_gradient", ZERO_GRAD[d]);
    exp_json_kv_number(j, "frac_saturated_softmax", SAT[d]), exp_json_kv_number(j, "mean_gradient_l2", 0);
    exp_json_object_end(j);
    exp_json_key(j, "warnings"), exp_json_array_begin(j);
    if (f->full && i == 2) exp_json_string(j, "softmax saturated | gradients vanish");
    exp_json_array_end(j);
    exp_json_key(j, "cells"), exp_json_array_begin(j);
    json_cell(j, f, dir, "fgsm", "fgsm-eps0.1", "fgsm", "linf", 0.1, NAN, NULL, 1, 1);
    if (f->full) {
        json_cell(j, f, dir, "fgsm", "fgsm-eps0.3", "fgsm", "linf", 0.3, NAN, NULL, 2, 1);
        json_cell(j, f, dir, "cw", "cw", "cw", "l2", NAN, 1, NULL, i + 1, 0);
        if (f->t[i] > 1)
            json_cell(j, f, dir, "fgsm-T", "fgsm-T-eps0.3", "fgsm", "linf", 0.3, NAN, "temperature-aware", 3,
                      1);
        if (i == 0) json_cell(j, f, dir, "jsma", "jsma", "jsma", "l0", NAN, 10, NULL, 2, 1);
    }
    for (size_t k = 0; k < f->n_extra; k++) {
        char at[32], run[48];
        snprintf(at, sizeof at, "a%zu", k);
        snprintf(run, sizeof run, "a%zu-eps0.2", k);
        json_cell(j, f, dir, at, run, "pgd", "linf", 0.2, NAN, NULL, 4, 0);
        snprintf(run, sizeof run, "a%zu-eps0.1", k);
        json_cell(j, f, dir, at, run, "pgd", "linf", 0.1, NAN, NULL, 0, 0);
    }
    exp_json_array_end(j);
    exp_json_key(j, "worst_case"), exp_json_array_begin(j);
    json_worst(j, "linf", 0.1, 0.75 - 0.25 * (double)d);
    if (f->full) json_worst(j, "linf", 0.3, 0.125 * (double)d), json_worst(j, "l2", 1, 0.375);
    exp_json_array_end(j);
    exp_json_object_end(j);
}

/* Builds the folder (records and grids) and returns results.json's text (malloc'd); also writes it. */
static char *fx_build(const fx *f) {
    mkdirs(f->dir);
    exp_json j;
    exp_json_init(&j);
    exp_json_object_begin(&j);
    exp_json_kv_string(&j, "format", "temper-evaluate-1");
    exp_json_key(&j, "experiment"), exp_json_object_begin(&j);
    exp_json_kv_string(&j, "path", "experiments/x.yaml"), exp_json_kv_string(&j, "name", "eval-test");
    exp_json_kv_string(&j, "sha256", "feed"), exp_json_kv_string(&j, "text", "name: eval-test\n");
    exp_json_object_end(&j);
    exp_json_kv_string(&j, "temper_version", "0.1.0"), exp_json_kv_string(&j, "git_commit", "deadbeef");
    exp_json_kv_uint(&j, "seed", 1), exp_json_kv_uint(&j, "threads", 2);
    exp_json_key(&j, "blas"), exp_json_object_begin(&j), exp_json_kv_string(&j, "config", "OpenBLAS 0.3");
    exp_json_kv_uint(&j, "threads", 2), exp_json_kv_string(&j, "parallel_mode", "openmp"),
        exp_json_object_end(&j);
    exp_json_key(&j, "libraries"), exp_json_object_begin(&j), exp_json_kv_string(&j, "zlib", "1.2.13");
    exp_json_kv_string(&j, "libpng", "1.6.39"), exp_json_object_end(&j);
    exp_json_kv_string(&j, "started", "2026-12-05T22:10:00Z"), exp_json_kv_number(&j, "wall_seconds", 123.4);
    exp_json_kv_uint(&j, "cells_total", 40), exp_json_kv_uint(&j, "cells_reused", 12);
    exp_json_key(&j, "force"), exp_json_bool(&j, 0);
    exp_json_kv_uint(&j, "samples", 4);
    exp_json_key(&j, "temperature_aware"), exp_json_bool(&j, 1);
    exp_json_key(&j, "models"), exp_json_array_begin(&j);
    for (size_t i = 0; i < f->n_models; i++)
        json_model(&j, f, i);
    exp_json_array_end(&j);
    exp_json_object_end(&j);
    nn_err err = {0};
    assert_int_equal(exp_json_finish(&j, &err), NN_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/results.json", f->dir);
    assert_int_equal(nn_io_write_atomic(path, j.b.p, j.b.len, &err), NN_OK);
    char *text = strdup(j.b.p);
    exp_json_free(&j);
    return text;
}

static fx fx_full(const char *name) {
    fx f = {.n_models = 3, .t = {1, 10, 100}, .full = 1};
    snprintf(f.dir, sizeof f.dir, "%s/%s", g_root, name);
    return f;
}

/* ---- helpers ---- */

static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[1024];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char *text = NULL;
    size_t used = 0, cap = 0, got;
    do {
        if (cap - used < 4096) assert_non_null(text = realloc(text, cap = 2 * cap + 8192));
        got = fread(text + used, 1, cap - used - 1, f);
        used += got;
    } while (got > 0);
    fclose(f);
    text[used] = 0;
    if (len) *len = used;
    return text;
}

static int exists(const char *dir, const char *name) {
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    nn_err err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(nn_io_write_atomic(path, text, strlen(text), &err), NN_OK);
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Signature, IHDR first (13 bytes, non-zero size), every chunk's CRC (zlib crc32 over type + data), at
 * least one IDAT, IEND last and at the end of the file. */
static void check_png(const char *dir, const char *name) {
    size_t len;
    unsigned char *p = (unsigned char *)slurp(dir, name, &len);
    assert_true(len > 8 + 25 + 12);
    assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
    size_t off = 8, chunks = 0, idat = 0;
    int end = 0;
    while (off + 12 <= len && !end) {
        uint32_t n = be32(p + off);
        assert_true(off + 12 + (size_t)n <= len);
        const unsigned char *type = p + off + 4;
        uint32_t crc = (uint32_t)crc32(0L, type, 4 + n);
        if (crc != be32(p + off + 8 + n))
            fail_msg("%s: chunk %zu (%.4s): bad CRC", name, chunks, (const char *)type);
        if (chunks == 0) {
            assert_memory_equal(type, "IHDR", 4);
            assert_int_equal(n, 13);
            assert_true(be32(p + off + 8) > 0 && be32(p + off + 12) > 0);
        }
        idat += !memcmp(type, "IDAT", 4);
        end = !memcmp(type, "IEND", 4);
        if (end) assert_int_equal(n, 0);
        off += 12 + (size_t)n, chunks++;
    }
    assert_true(end && off == len && idat > 0);
    free(p);
}

static void check_svg(const char *dir, const char *name) {
    size_t len;
    char *s = slurp(dir, name, &len);
    assert_int_equal(strncmp(s, "<?xml", 5), 0);
    assert_non_null(strstr(s, "<svg "));
    while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
        len--;
    assert_true(len > 6 && !strncmp(s + len - 6, "</svg>", 6));
    free(s);
}

/* Field k (0-based) of a CSV line without quoted fields, into out. */
static void csv_field(const char *line, size_t k, char *out, size_t cap) {
    const char *p = line;
    for (size_t i = 0; i < k; i++) {
        p = strchr(p, ',');
        assert_non_null(p);
        p++;
    }
    size_t n = strcspn(p, ",\n");
    assert_true(n < cap);
    memcpy(out, p, n);
    out[n] = 0;
}

/* The line of summary.csv whose fields 0 and 3 (model, run) and 6 (eps) match. */
static const char *csv_row(const char *csv, const char *model, const char *run, const char *eps) {
    for (const char *l = strchr(csv, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        char a[128], b[128], c[64];
        csv_field(l, 0, a, sizeof a), csv_field(l, 3, b, sizeof b), csv_field(l, 6, c, sizeof c);
        if (!strcmp(a, model) && !strcmp(b, run) && !strcmp(c, eps)) return l;
    }
    fail_msg("no row %s, %s, %s", model, run, eps);
    return NULL;
}

/* Unescaped '|' of a Markdown line. */
static size_t pipes(const char *l, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (l[i] == '\\')
            i++;
        else
            c += l[i] == '|';
    }
    return c;
}

/* Every table (a block of lines starting with '|'): a delimiter row second, the same cell count in every row.
 */
static size_t check_tables(const char *md) {
    size_t tables = 0;
    for (const char *l = md; *l;) {
        if (*l != '|') {
            l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l);
            continue;
        }
        size_t n = strcspn(l, "\n"), cells = pipes(l, n), row = 0;
        tables++;
        for (; *l == '|'; l += n + (l[n] == '\n'), n = strcspn(l, "\n"), row++) {
            if (pipes(l, n) != cells)
                fail_msg("table row %zu: %zu cells, header %zu: %.*s", row, pipes(l, n), cells, (int)n, l);
            if (row == 1)
                for (size_t i = 0; i < n; i++)
                    assert_non_null(strchr("|-: ", l[i]));
        }
        assert_true(row >= 2);
    }
    return tables;
}

/* Every link or image destination "](dest)" is a file under dir. Returns how many. */
static size_t check_links(const char *dir, const char *md) {
    size_t n = 0;
    for (const char *p = strstr(md, "]("); p; p = strstr(p + 1, "](")) {
        char dest[512];
        size_t k = strcspn(p + 2, ")");
        assert_true(k < sizeof dest);
        memcpy(dest, p + 2, k);
        dest[k] = 0;
        assert_null(strchr(dest, '%')); /* the fixture's names need no encoding */
        if (!exists(dir, dest)) fail_msg("link to a missing file: %s", dest);
        n++;
    }
    return n;
}

static int run_report(const char *dir, nn_err *err, size_t *lines) {
    FILE *out = tmpfile();
    assert_non_null(out);
    int rc = exp_report_write(dir, out, err);
    rewind(out);
    char l[2048];
    size_t n = 0;
    while (fgets(l, sizeof l, out)) {
        l[strcspn(l, "\n")] = 0;
        struct stat st;
        assert_int_equal(strncmp(l, dir, strlen(dir)), 0);
        if (stat(l, &st) != 0) fail_msg("printed %s, which is not there", l);
        n++;
    }
    fclose(out);
    if (lines) *lines = n;
    return rc;
}

/* ---- tests ---- */

static const char *const PLOTS[] = {"robust_vs_eps_linf", "robust_vs_eps_l2", "success_vs_T", "hist_cw",
                                    "hist_jsma"};
enum { N_PLOTS = 5 };

static void test_full(void **state) {
    (void)state;
    fx f = fx_full("full");
    free(fx_build(&f));
    write_text(f.dir, "models/m__t100/samples.csv", "test_index\n"); /* the engine's, linked when there */
    nn_err err = {0};
    size_t lines = 0;
    if (run_report(f.dir, &err, &lines)) fail_msg("%s", err.msg);
    assert_int_equal(lines, 2 * N_PLOTS + 2); /* every plot as PNG and SVG, summary.csv, report.md */
    char name[128];
    for (size_t i = 0; i < N_PLOTS; i++) {
        snprintf(name, sizeof name, "plots/%s.png", PLOTS[i]);
        check_png(f.dir, name);
        snprintf(name, sizeof name, "plots/%s.svg", PLOTS[i]);
        check_svg(f.dir, name);
    }
    assert_false(exists(f.dir, "plots/robust_vs_eps_l0.png")); /* no L0 worst-case entry */

    /* summary.csv: models 6 + 5 + 5 summary rows (unbounded cells: two) + 3 worst-case rows each */
    char *csv = slurp(f.dir, "summary.csv", NULL);
    assert_int_equal(test_count_str(csv, "\n"), 1 + 25);
    const char *want =
        "model,temperature,attack,run,kind,norm,eps,added,samples,runs,clean_correct,successes,"
        "robust_accuracy,success_rate,mean_l0,mean_l2,mean_linf,median_l0,median_l2,median_linf,"
        "mean_iters,seconds,reused,mean_abs_logit,frac_zero_gradient,frac_saturated_softmax\n";
    assert_int_equal(strncmp(csv, want, strlen(want)), 0);
    want = "m/t100,100,fgsm-T,fgsm-T-eps0.3,fgsm,linf,0.3,temperature-aware,4,4,4,3,0.25,0.75,2,0.75,"
           "0.125,2,0.75,,10,0.25,true,722.1,0.9,0.99\n";
    assert_int_equal(strncmp(csv_row(csv, "m/t100", "fgsm-T-eps0.3", "0.3"), want, strlen(want)), 0);
    want = "m/t1,1,cw,cw,cw,l2,1,,4,4,4,0,0.75,0,2,0.75,0.125,2,0.75,,10,1.5,false,1.5,0,0.01\n";
    assert_int_equal(strncmp(csv_row(csv, "m/t1", "cw", "1"), want, strlen(want)), 0);
    want = "m/t10|x,10,cw,cw,cw,l2,,,4,4,4,2,0.5,0.5,";
    assert_int_equal(strncmp(csv_row(csv, "m/t10|x", "cw", ""), want, strlen(want)), 0);
    want = "m/t100,100,worst-case,fgsm-eps0.3;cw,,linf,0.3,,4,,,,0.25,,,,,,,,,,,722.1,0.9,0.99\n";
    assert_int_equal(strncmp(csv_row(csv, "m/t100", "fgsm-eps0.3;cw", "0.3"), want, strlen(want)), 0);

    /* report.md */
    char *md = slurp(f.dir, "report.md", NULL);
    assert_int_equal(strncmp(md, "# eval-test\n", 12), 0);
    assert_non_null(strstr(md, "(sha256 feed)"));
    assert_non_null(strstr(md, "git commit deadbeef"));
    assert_non_null(strstr(md, "zlib 1.2.13, libpng 1.6.39"));
    assert_non_null(strstr(md, "wall time 2m03s\n")); /* once, not also "(123.4 s)" */
    assert_null(strstr(md, "123.4"));
    assert_non_null(strstr(md, "Cells: 40 in total, 12 reused"));
    const char *wc = strstr(md, "## Robust accuracy, worst case over all attacks");
    assert_non_null(wc);
    assert_non_null(
        strstr(wc, "| Model | T | Clean accuracy | L∞ 0.1 | L∞ 0.3 | L2 1 |\n|---|---:|---:|---:|---:|---:|\n"
                   "| m/t1 | 1 | 99.00% | 75.00% | 0.00% | 37.50% |\n"
                   "| m/t10\\|x | 10 | 99.00% | 50.00% | 12.50% | 37.50% |\n"
                   "| m/t100 | 100 | 99.00% | 25.00% | 25.00% | 37.50% |\n"));
    assert_non_null(
        strstr(md, "mean \\|logit\\| 722.1; zero input gradient 90.00%; saturated softmax 99.00%"));
    assert_non_null(
        strstr(md, "mean \\|logit\\| 72.25; zero input gradient 50.00%; saturated softmax 50.00%"));
    assert_non_null(strstr(md, "  - softmax saturated \\| gradients vanish\n"));
    assert_int_equal(test_count_str(md, "- Warnings: none"), 2);
    /* the temperature-aware runs of the T = 10 and T = 100 models, marked, with a legend */
    assert_int_equal(test_count_str(md, "| fgsm-T-eps0.3 † | 0.3 | 25.00% | 75.00% |"), 2);
    assert_int_equal(test_count_str(md, "† added by the temperature-aware rule"), 2);
    assert_int_equal(test_count_str(md, "†"), 4);
    assert_int_equal(test_count_str(md, "| cw | none | 25.00% | 75.00% |"), 1); /* m/t100: 3 of 4 */
    assert_int_equal(test_count_str(md, "| cw | ≤ 1 | 75.00% | 50.00% |"), 1);
    assert_int_equal(test_count_str(md, "Mean L0"), 1); /* only the model with JSMA */
    assert_int_equal(test_count_str(md, "(cached)"), 2);
    assert_int_equal(check_tables(md), 4);
    /* 5 plots x (PNG + SVG), 9 grids, summary.csv, one samples.csv */
    assert_int_equal(check_links(f.dir, md), 2 * N_PLOTS + 9 + 1 + 1);
    assert_int_equal(test_count_str(md, "[samples.csv](models/m__t100/samples.csv)"), 1);
    assert_non_null(strstr(md, "![Worst-case robust accuracy vs ε (L∞)](plots/robust_vs_eps_linf.png)"));
    assert_null(strstr(md, "Only the first"));

    /* the histograms read the successful records: cw succeeds on i + 1 of 4 runs of model i */
    /* (legends of per-model series drop the labels' common prefix "m/"; the report names it) */
    char *svg = slurp(f.dir, "plots/hist_cw.svg", NULL);
    assert_non_null(strstr(svg, ">t1 (n=1)<"));
    assert_non_null(strstr(svg, ">t100 (n=3)<"));
    assert_null(strstr(svg, "m/t1"));
    free(svg);
    svg = slurp(f.dir, "plots/hist_jsma.svg", NULL);
    assert_non_null(strstr(svg, ">t1 (n=2)<"));
    assert_null(strstr(svg, "t100"));
    free(svg);
    svg = slurp(f.dir, "plots/robust_vs_eps_linf.svg", NULL);
    assert_true(strstr(svg, ">t1<") && strstr(svg, ">t10|x<") && strstr(svg, ">t100<"));
    assert_null(strstr(svg, "m/t1"));
    free(svg);
    assert_int_equal(test_count_str(md, "Legend: the model labels without their common prefix \"m/\"."), 4);
    /* success_vs_T: a line per attack on >= 2 temperatures, bounded ones at their largest eps: fgsm (0.3,
     * all models), cw (unbounded, all), fgsm-T (0.3, T = 10 and 100); jsma ran on one model only */
    svg = slurp(f.dir, "plots/success_vs_T.svg", NULL);
    assert_non_null(strstr(svg, ">fgsm \xCE\xB5=0.3<"));
    assert_non_null(strstr(svg, ">cw<"));
    assert_non_null(strstr(svg, ">fgsm-T \xCE\xB5=0.3<"));
    assert_null(strstr(svg, "jsma"));
    assert_null(strstr(svg, "0.1<"));
    assert_int_equal(test_count_str(svg, "<polyline"), 3);
    assert_int_equal(test_count_str(svg, "<circle"), 3 + 3 + 2 + 3); /* points + legend markers */
    free(svg);
    assert_non_null(strstr(md, "A line per attack: bounded attacks at their largest ε"));
    assert_non_null(strstr(md, "Not plotted, run at fewer than two temperatures: jsma."));
    assert_null(strstr(md, "Left out"));

    /* regenerating gives the same bytes */
    size_t n_svg, n_png;
    char *svg1 = slurp(f.dir, "plots/success_vs_T.svg", &n_svg),
         *png1 = slurp(f.dir, "plots/hist_cw.png", &n_png);
    if (run_report(f.dir, &err, NULL)) fail_msg("%s", err.msg);
    char *csv2 = slurp(f.dir, "summary.csv", NULL), *md2 = slurp(f.dir, "report.md", NULL);
    size_t n2;
    char *svg2 = slurp(f.dir, "plots/success_vs_T.svg", NULL), *png2 = slurp(f.dir, "plots/hist_cw.png", &n2);
    assert_string_equal(csv, csv2);
    assert_string_equal(md, md2);
    assert_string_equal(svg1, svg2);
    assert_int_equal(n_png, n2);
    assert_memory_equal(png1, png2, n2);
    free(csv), free(md), free(csv2), free(md2), free(svg1), free(svg2), free(png1), free(png2);
}

/* Equal temperatures: no success_vs_T, and the one an earlier report made is removed (other files stay). */
static void test_same_temperature(void **state) {
    (void)state;
    fx f = fx_full("same");
    free(fx_build(&f));
    nn_err err = {0};
    if (run_report(f.dir, &err, NULL)) fail_msg("%s", err.msg);
    assert_true(exists(f.dir, "plots/success_vs_T.png") && exists(f.dir, "plots/success_vs_T.svg"));
    write_text(f.dir, "plots/notes.txt", "mine");
    write_text(f.dir, "plots/hist_mine.txt", "mine");
    f.t[0] = f.t[1] = f.t[2] = 10;
    free(fx_build(&f));
    size_t lines = 0;
    if (run_report(f.dir, &err, &lines)) fail_msg("%s", err.msg);
    assert_int_equal(lines, 2 * (N_PLOTS - 1) + 2);
    assert_false(exists(f.dir, "plots/success_vs_T.png"));
    assert_false(exists(f.dir, "plots/success_vs_T.svg"));
    assert_true(exists(f.dir, "plots/notes.txt") && exists(f.dir, "plots/hist_mine.txt"));
    assert_true(exists(f.dir, "plots/hist_cw.png") && exists(f.dir, "plots/robust_vs_eps_l2.svg"));
    char *md = slurp(f.dir, "report.md", NULL);
    assert_null(strstr(md, "success_vs_T"));
    assert_int_equal(test_count_str(md, "| fgsm-T-eps0.3 † |"), 3); /* all three models have T = 10 now */
    check_links(f.dir, md);
    free(md);
}

/* 65 models: every plot keeps EXP_PLOT_MAX_SERIES series and the report says so. */
static void test_series_cap(void **state) {
    (void)state;
    fx f = {.n_models = EXP_PLOT_MAX_SERIES + 1, .full = 0};
    snprintf(f.dir, sizeof f.dir, "%s/cap", g_root);
    for (size_t i = 0; i < f.n_models; i++)
        f.t[i] = (double)(i + 1);
    free(fx_build(&f));
    nn_err err = {0};
    if (run_report(f.dir, &err, NULL)) fail_msg("%s", err.msg);
    char *md = slurp(f.dir, "report.md", NULL);
    assert_int_equal(test_count_str(md, "Only the first 64 of 65 models are plotted."),
                     1);                                  /* robust_vs_eps_linf */
    assert_true(exists(f.dir, "plots/success_vs_T.png")); /* one run: no cap there */
    check_png(f.dir, "plots/robust_vs_eps_linf.png");
    check_png(f.dir, "plots/success_vs_T.png");
    char *svg = slurp(f.dir, "plots/robust_vs_eps_linf.svg", NULL);
    /* 64 series: the legend shows the rows that fit and counts the rest in "+N more" */
    size_t more = 0;
    assert_non_null(strstr(svg, ">model-0<"));
    assert_int_equal(sscanf(strstr(svg, ">+") + 1, "+%zu more<", &more), 1);
    assert_int_equal(test_count_str(svg, ">model-") + more, 64);
    assert_null(strstr(svg, ">model-64<"));
    free(svg);
    assert_int_equal(check_tables(md), 1 + 65);
    assert_null(strstr(md, "common prefix")); /* labels model-<i>: no prefix ending in '/' */
    free(md);
}

/* success_vs_T keeps at most 8 lines, the first attacks in battery order, and the report names the others;
 * a bounded attack is drawn at its largest eps (a<k>: 0.2, where every run succeeds). */
static void test_temperature_lines(void **state) {
    (void)state;
    fx f = {.n_models = 2, .t = {1, 20}, .n_extra = 10};
    snprintf(f.dir, sizeof f.dir, "%s/lines", g_root);
    free(fx_build(&f));
    nn_err err = {0};
    if (run_report(f.dir, &err, NULL)) fail_msg("%s", err.msg);
    char *svg = slurp(f.dir, "plots/success_vs_T.svg", NULL), *md = slurp(f.dir, "report.md", NULL);
    assert_int_equal(test_count_str(svg, "<polyline"), 8);
    assert_non_null(strstr(svg, ">fgsm \xCE\xB5=0.1<"));
    assert_non_null(strstr(svg, ">a0 \xCE\xB5=0.2<"));
    assert_non_null(strstr(svg, ">a6 \xCE\xB5=0.2<"));
    assert_null(strstr(svg, ">a7 "));
    assert_int_equal(test_count_str(svg, "=0.1<"), 1); /* fgsm's only bound; a<k> at 0.2 */
    /* every point of a0's line (the second) is at 100%: the frame's top edge */
    const char *pl = strstr(strstr(svg, "<polyline") + 1, "<polyline");
    const char *fr = strstr(svg, "fill=\"none\" stroke=\"#222222\"");
    while (fr > svg && strncmp(fr, "<rect", 5))
        fr--;
    double top, x0, y0, x1, y1;
    assert_int_equal(sscanf(fr, "<rect x=\"%*f\" y=\"%lf\"", &top), 1);
    assert_int_equal(sscanf(strstr(pl, "points=\"") + 8, "%lf,%lf %lf,%lf", &x0, &y0, &x1, &y1), 4);
    assert_true(x0 < x1);
    assert_close(y0, top, 0.01, 0);
    assert_close(y1, top, 0.01, 0);
    assert_non_null(strstr(md, "Left out (at most 8 lines, the first in battery order): a7, a8, a9."));
    assert_null(strstr(md, "Not plotted"));
    check_png(f.dir, "plots/success_vs_T.png");
    free(svg), free(md);
}

/* Replaces the k-th (0-based) occurrence of a in text by b; the result is malloc'd. */
static char *replace_nth(const char *text, const char *a, const char *b, size_t k) {
    const char *p = strstr(text, a);
    for (size_t i = 0; i < k && p; i++)
        p = strstr(p + 1, a);
    if (!p) fail_msg("no occurrence %zu of %s", k, a);
    size_t la = strlen(a), lb = strlen(b), n = strlen(text);
    char *out = malloc(n - la + lb + 1);
    assert_non_null(out);
    memcpy(out, text, (size_t)(p - text));
    memcpy(out + (p - text), b, lb);
    strcpy(out + (p - text) + lb, p + la);
    return out;
}

static void expect_error(const char *dir, int code, const char *what) {
    nn_err err = {0};
    int rc = run_report(dir, &err, NULL);
    if (rc != code || !strstr(err.msg, what))
        fail_msg("expected code %d with \"%s\", got %d: %s", code, what, rc, err.msg);
}

static void test_errors(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/nothing-here", g_root);
    expect_error(path, NN_E_IO, "nothing-here/results.json");

    fx f = fx_full("err");
    char *good = fx_build(&f);
    nn_err err = {0};
    if (run_report(f.dir, &err, NULL)) fail_msg("%s", err.msg);
    char *md0 = slurp(f.dir, "report.md", NULL), *csv0 = slurp(f.dir, "summary.csv", NULL);
    const struct {
        const char *a, *b;
        size_t k;
        const char *what;
    } cases[] = {
        {"\"run\": \"fgsm-eps0.1\"", "\"rux\": \"fgsm-eps0.1\"", 2,
         "results.json: models[2].cells[0]: missing 'run'"},
        {"\"temperature\": 10,", "\"temperature\": \"10\",", 0,
         "results.json: models[1].temperature: expected a number, got string"},
        {"temper-evaluate-1", "temper-evaluate-9", 0,
         "results.json: format: \"temper-evaluate-9\", expected"},
        {"\"successes\": 2,", "\"successes\": -2,", 0,
         "results.json: models[0].cells[1].summaries[0].successes: expected a non-negative integer"},
        {"\"successes\": 2,", "\"successes\": 2.5,", 0,
         "models[0].cells[1].summaries[0].successes: expected a non-negative integer"},
        {"\"norm\": \"l2\"", "\"norm\": \"l3\"", 0,
         "results.json: models[0].cells[2].norm: unknown norm \"l3\""},
        {"\"records\": \"models/m__t1/fgsm-eps0.1/records.npy\"", "\"records\": \"../x/records.npy\"", 0,
         "results.json: models[0].cells[0].records: \"../x/records.npy\" is not a relative path"},
        {"\"worst_case\"", "\"worst_casX\"", 1, "results.json: models[1]: missing 'worst_case'"},
        {"\"eps\": 0.3", "\"eps\": 1e999", 0, "results.json: JSON byte"},
        {"\"summaries\": [", "\"summaries\": [1, ", 3,
         "results.json: models[0].cells[3].summaries[0]: expected an object, got number"},
        {"\"name\": \"eval-test\"", "\"nom\": \"eval-test\"", 0, "results.json: experiment: missing 'name'"},
        {"\"models\": [", "\"models\": {", 0, "results.json: JSON byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *bad = replace_nth(good, cases[i].a, cases[i].b, cases[i].k);
        write_text(f.dir, "results.json", bad);
        expect_error(f.dir, NN_E_FORMAT, cases[i].what);
        free(bad);
    }
    write_text(f.dir, "results.json", good);
    /* records: missing, wrong shape, wrong type */
    snprintf(path, sizeof path, "%s/models/m__t10_x/cw/records.npy", f.dir);
    assert_int_equal(unlink(path), 0);
    expect_error(f.dir, NN_E_IO, "models/m__t10_x/cw/records.npy");
    write_records(f.dir, "models/m__t10_x/cw/records.npy", 1, 9);
    expect_error(f.dir, NN_E_FORMAT, "models/m__t10_x/cw/records.npy: records must be float32 [n, 10]");
    int iv[40] = {0};
    size_t dims[2] = {4, 10};
    assert_int_equal(nn_npy_write_i32(path, iv, 2, dims, &err), NN_OK);
    expect_error(f.dir, NN_E_FORMAT,
                 "models/m__t10_x/cw/records.npy: records must be float32 [n, 10], got int32");
    write_records(f.dir, "models/m__t10_x/cw/records.npy", 2, 10);
    /* nothing was rewritten by the failed runs */
    char *md1 = slurp(f.dir, "report.md", NULL), *csv1 = slurp(f.dir, "summary.csv", NULL);
    assert_string_equal(md0, md1);
    assert_string_equal(csv0, csv1);
    /* a write error names the path: plots/ is a file */
    fx g = fx_full("err-write");
    free(fx_build(&g));
    write_text(g.dir, "plots", "in the way");
    expect_error(g.dir, NN_E_IO, "plots");
    assert_false(exists(g.dir, "report.md"));
    free(good), free(md0), free(csv0), free(md1), free(csv1);
}

/* Truncated and mutated results.json: a clean error naming a file, or a report; never a crash. */
static void test_fuzz(void **state) {
    (void)state;
    fx f = fx_full("fuzz");
    char *good = fx_build(&f);
    size_t len = strlen(good), fails = 0, oks = 0;
    nn_err err = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/results.json", f.dir);
    for (size_t cut = 0; cut + 1 < len; cut += 1 + len / 150) { /* the last byte is the newline */
        assert_int_equal(nn_io_write_atomic(path, good, cut, &err), NN_OK);
        expect_error(f.dir, NN_E_FORMAT, "results.json: ");
    }
    const char alphabet[] = "\"{}[],:-.0123456789eEnulltrsfa \\/\x80\xff";
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (size_t it = 0; it < 120; it++) {
        char *bad = strdup(good);
        for (int m = 0; m < 1 + (int)(it % 3); m++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            bad[(s >> 33) % len] = alphabet[(s >> 20) % (sizeof alphabet - 1)];
        }
        assert_int_equal(nn_io_write_atomic(path, bad, len, &err), NN_OK);
        nn_err e = {0};
        int rc = exp_report_write(f.dir, NULL, &e);
        if (rc) {
            fails++;
            if (!strstr(e.msg, f.dir)) fail_msg("mutation %zu: the error names no file: %s", it, e.msg);
        } else
            oks++;
        free(bad);
    }
    assert_true(fails > 0 && oks > 0); /* both outcomes were exercised */
    free(good);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),       cmocka_unit_test(test_same_temperature),
        cmocka_unit_test(test_series_cap), cmocka_unit_test(test_temperature_lines),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
