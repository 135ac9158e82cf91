/* test_exp_bss.c - BSS folders from the runner: the .npy reader (round trips through the writers, files built
 * by hand from the NumPy format description, and every kind of bad file), exp_bss_generate on Gaussian blobs
 * with a hand-set linear teacher (every file, shapes, the statistics recomputed from the .npy data, the base
 * samples recomputed from the teacher's predictions), exp_bss_pool_load, the `bss:` block of experiment
 * files, and the usage errors of `temper bss`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "test_atk_util.h" /* after test_util.h */

#include "exp_bss.h"
#include "exp_cli.h"
#include "exp_config.h"
#include "exp_run.h"
#include "nn_io.h"
#include "nn_json.h"
#include "nn_loss.h"

static char g_dir[256];

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/temper_test_exp_bss_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    if (!getenv("KEEP_BSS_TEST")) rm_rf(g_dir);
    return 0;
}

static void path_in(char *buf, size_t cap, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_bytes(const char *path, const void *p, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A .npy file by hand, from the format description: "\x93NUMPY", major, minor, the header length (uint16
 * little-endian for 1.0, uint32 for 2.0), the dict padded with spaces and a final newline so that the data
 * start at a multiple of 64, then the data. */
static void make_npy(const char *path, int major, const char *dict, const void *data, size_t len) {
    unsigned char buf[1024];
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hl = total - pre;
    assert_true(total + len <= sizeof buf);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major, buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', total - pre - dl - 1);
    buf[total - 1] = '\n';
    if (len) memcpy(buf + total, data, len);
    write_bytes(path, buf, total + len);
}

static void read_ok(const char *path, nn_npy *a) {
    nn_err err = {0};
    if (nn_npy_read(path, a, &err)) fail_msg("nn_npy_read: %s", err.msg);
}

/* nn_npy_read fails on path with a message containing the path and want. */
static void read_bad(const char *path, const char *want) {
    nn_npy a;
    nn_err err = {0};
    int rc = nn_npy_read(path, &a, &err);
    if (rc == NN_OK) fail_msg("%s: read without error, expected \"%s\"", path, want);
    assert_int_equal(rc, err.code);
    assert_null(a.data);
    if (!strstr(err.msg, path) || !strstr(err.msg, want))
        fail_msg("message \"%s\" lacks the path or \"%s\"", err.msg, want);
}

/* ---------- .npy ---------- */

static void test_npy_roundtrip(void **state) {
    (void)state;
    const size_t shapes[4][4] = {{7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}};
    char path[512];
    for (int nd = 1; nd <= 4; nd++) {
        size_t count = 1;
        for (int i = 0; i < nd; i++)
            count *= shapes[nd - 1][i];
        float *f = malloc(count * sizeof *f);
        int *v = malloc(count * sizeof *v);
        assert_true(f && v);
        for (size_t i = 0; i < count; i++) {
            f[i] = (float)i * 0.37f - 3.1f;
            v[i] = (int)i * 7919 - 40000;
        }
        f[0] = -0.0f, f[count - 1] = 1e-38f;
        nn_err err = {0};
        for (int is_int = 0; is_int < 2; is_int++) {
            snprintf(path, sizeof path, "%s/rt%d%c.npy", g_dir, nd, is_int ? 'i' : 'f');
            int rc = is_int ? nn_npy_write_i32(path, v, nd, shapes[nd - 1], &err)
                            : nn_npy_write_f32(path, f, nd, shapes[nd - 1], &err);
            assert_int_equal(rc, NN_OK);
            nn_npy a;
            read_ok(path, &a);
            assert_int_equal(a.dtype, is_int ? NN_NPY_I32 : NN_NPY_F32);
            assert_int_equal(a.ndim, nd);
            for (int i = 0; i < nd; i++)
                assert_int_equal(a.dims[i], shapes[nd - 1][i]);
            assert_int_equal(a.count, count);
            assert_memory_equal(a.data, is_int ? (const void *)v : (const void *)f, count * 4); /* bitwise */
            nn_npy_free(&a);
            assert_null(a.data);
        }
        free(f), free(v);
    }
    nn_npy_free(NULL);
}

/* Files made by hand as NumPy writes them (or may): version 2.0, another key order, double quotes,
 * Python 2's 3L, a 0-d array, an empty array. */
static void test_npy_by_hand(void **state) {
    (void)state;
    char path[512];
    const float f[3] = {1.0f, -2.5f, 3.25f};
    const int32_t v[2] = {-7, 123456};
    nn_npy a;

    path_in(path, sizeof path, "h1.npy");
    make_npy(path, 2, "{\"shape\": (3L,), \"fortran_order\": False, \"descr\": \"<f4\"}", f, sizeof f);
    read_ok(path, &a);
    assert_int_equal(a.dtype, NN_NPY_F32);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.dims[0], 3);
    assert_memory_equal(a.data, f, sizeof f);
    nn_npy_free(&a);

    path_in(path, sizeof path, "h2.npy");
    make_npy(path, 1, "{'descr':'<i4','fortran_order':False,'shape':(1,2)}", v, sizeof v);
    read_ok(path, &a);
    assert_int_equal(a.dtype, NN_NPY_I32);
    assert_int_equal(a.ndim, 2);
    assert_true(a.dims[0] == 1 && a.dims[1] == 2);
    assert_memory_equal(a.data, v, sizeof v);
    nn_npy_free(&a);

    path_in(path, sizeof path, "h3.npy");
    make_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4);
    read_ok(path, &a);
    assert_int_equal(a.ndim, 0);
    assert_int_equal(a.count, 1);
    assert_true(((float *)a.data)[0] == 1.0f);
    nn_npy_free(&a);

    path_in(path, sizeof path, "h4.npy");
    make_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", NULL, 0);
    read_ok(path, &a);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.count, 0);
    assert_null(a.data);
    nn_npy_free(&a);
}

static void test_npy_bad(void **state) {
    (void)state;
    char path[512];
    const float f[4] = {1, 2, 3, 4};
    const size_t dims[2] = {2, 2};
    nn_err err = {0};

    path_in(path, sizeof path, "missing.npy");
    read_bad(path, "cannot open");

    path_in(path, sizeof path, "trunc.npy"); /* a good file cut 3 bytes short */
    assert_int_equal(nn_npy_write_f32(path, f, 2, dims, &err), NN_OK);
    assert_int_equal(truncate(path, 128 + 16 - 3), 0);
    read_bad(path, "truncated: the shape needs 16 bytes of data, the file has 13");
    assert_int_equal(truncate(path, 50), 0);
    read_bad(path, "truncated in its header");

    path_in(path, sizeof path, "long.npy");
    make_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f, sizeof f);
    read_bad(path, "unexpected bytes after the 12 bytes of data");

    static const struct {
        const char *dict, *want;
    } cases[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", "dtype '<f8' is not supported"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", "dtype '>f4' is not supported"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", "dtype '<i8' is not supported"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
         "fortran_order arrays are not supported"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,), }", "fortran_order is not True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", "shape: expected a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [4], }", "shape: expected a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, }", "lacks 'shape'"},
        {"{'descr': '<f4', 'shape': (4,), 'shape': (4,), 'fortran_order': False}", "'shape' given twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", "unknown key 'x'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (4,)}", "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,)} junk", "text after the dict"},
        {"garbage", "header is not a dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", "more than 8 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "overflows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", "overflows"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/bad%zu.npy", g_dir, i);
        make_npy(path, 1, cases[i].dict, f, sizeof f);
        read_bad(path, cases[i].want);
    }

    unsigned char raw[80];
    memset(raw, ' ', sizeof raw);
    path_in(path, sizeof path, "magic.npy");
    memcpy(raw, "\x93NUMPZ\x01\x00", 8);
    write_bytes(path, raw, sizeof raw);
    read_bad(path, "not a NumPy .npy file");
    path_in(path, sizeof path, "v3.npy");
    memcpy(raw, "\x93NUMPY\x03\x00\x40\x00", 10);
    write_bytes(path, raw, sizeof raw);
    read_bad(path, "version 3.0 is not supported");
    path_in(path, sizeof path, "nonl.npy"); /* header of 70 bytes (all spaces): no final newline */
    memcpy(raw, "\x93NUMPY\x01\x00\x46\x00", 10);
    write_bytes(path, raw, sizeof raw);
    read_bad(path, "does not end with a newline");
}

/* ---------- generation ---------- */

enum { BD = 16, BK = 4, BN = 120 };

/* Teacher z_c = x_c + x_{c+K}: the sum of the two features that carry class c's blob. */
static nn_net *blob_teacher(size_t max_batch) {
    float w[BK * BD] = {0};
    for (size_t c = 0; c < BK; c++)
        w[c * BD + c] = w[c * BD + c + BK] = 1.0f;
    return atk_test_linear(BD, BK, w, NULL, max_batch);
}

static exp_bss_spec blob_spec(size_t samples, atk_bss_policy policy, size_t max_base) {
    exp_bss_spec s;
    memset(&s, 0, sizeof s);
    s.enabled = 1;
    s.samples = samples;
    s.cfg = atk_bss_cfg_default();
    s.cfg.eta = 0.75f, s.cfg.steps = 6, s.cfg.policy = policy, s.cfg.max_base = max_base, s.cfg.seed = 5;
    s.cfg.lo = -10.0f, s.cfg.hi = 10.0f; /* blobs are N(0,1) + 1.5: never clipped */
    s.grid = 5;
    return s;
}

static void load_in(const char *dir, const char *name, nn_npy *a) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    read_ok(p, a);
}

static const nn_json_val *jget(const nn_json *doc, const nn_json_val *obj, const char *key) {
    const nn_json_val *v = nn_json_get(doc, obj, key);
    if (!v) fail_msg("bss.json lacks '%s'", key);
    return v;
}

/* Expected base samples: per chunk of mb of the first n, the first max_base the teacher gets right. */
static size_t expected_bases(nn_net *t, const nn_dataset *ds, size_t n, size_t mb, size_t max_base,
                             int *src) {
    float *z = malloc(n * BK * sizeof *z);
    assert_non_null(z);
    nn_err err = {0};
    assert_int_equal(nn_net_predict(t, ds->x, n, z, &err), NN_OK);
    size_t m = 0;
    for (size_t off = 0; off < n; off += mb) {
        size_t taken = 0;
        for (size_t i = off; i < n && i < off + mb && taken < max_base; i++) {
            int p;
            nn_argmax(z + i * BK, 1, BK, &p);
            if (p == ds->y[i]) src[m++] = (int)i, taken++;
        }
    }
    free(z);
    return m;
}

/* Checks the folder against the teacher, the data and the settings. */
static void check_folder(const char *dir, nn_net *t, const nn_dataset *ds, const exp_bss_spec *spec,
                         size_t mb) {
    nn_npy xs, zs, bs, ts, ss, src;
    load_in(dir, "samples.npy", &xs), load_in(dir, "logits.npy", &zs), load_in(dir, "base.npy", &bs);
    load_in(dir, "target.npy", &ts), load_in(dir, "steps.npy", &ss), load_in(dir, "source.npy", &src);
    size_t m = xs.dims[0], per = spec->cfg.policy == ATK_BSS_ALL ? BK - 1 : 1;
    assert_int_equal(xs.ndim, 4);
    assert_true(xs.dims[1] == ds->shape.c && xs.dims[2] == ds->shape.h && xs.dims[3] == ds->shape.w);
    assert_true(zs.ndim == 2 && zs.dims[0] == m && zs.dims[1] == BK);
    const nn_npy *cols[4] = {&bs, &ts, &ss, &src};
    for (int i = 0; i < 4; i++)
        assert_true(cols[i]->dtype == NN_NPY_I32 && cols[i]->ndim == 1 && cols[i]->dims[0] == m);
    const float *x = xs.data, *z = zs.data;
    const int *b = bs.data, *tg = ts.data, *st = ss.data, *so = src.data;

    /* the base samples, recomputed */
    int *want = malloc(ds->n * sizeof *want);
    size_t nb = expected_bases(t, ds, spec->samples ? spec->samples : ds->n, mb, spec->cfg.max_base, want);
    assert_int_equal(m, nb * per);
    size_t crossed = 0, pairs[BK * BK] = {0};
    double l2sum = 0.0;
    float *zp = malloc(m * BK * sizeof *zp);
    nn_err err = {0};
    assert_int_equal(nn_net_predict(t, x, m, zp, &err), NN_OK);
    assert_close_array(z, zp, m * BK, 1e-5, 1e-5, "logits.npy vs the teacher on samples.npy");
    for (size_t r = 0; r < m; r++) {
        assert_int_equal(so[r], want[r / per]);
        assert_int_equal(b[r], ds->y[so[r]]); /* correctly classified: base = label */
        assert_true(tg[r] >= 0 && tg[r] < BK && tg[r] != b[r]);
        if (per > 1)
            assert_int_equal(tg[r], (int)(r % per) + ((int)(r % per) >= b[r])); /* increasing, b skipped */
        assert_true(st[r] >= 0 && st[r] <= spec->cfg.steps);
        int p;
        nn_argmax(z + r * BK, 1, BK, &p);
        crossed += p != b[r];
        pairs[b[r] * BK + tg[r]]++;
        double d2 = 0;
        for (size_t e = 0; e < BD; e++) {
            double dd = (double)x[r * BD + e] - (double)ds->x[(size_t)so[r] * BD + e];
            d2 += dd * dd;
        }
        l2sum += sqrt(d2);
    }
    /* eta 0.75, |w_k - w_b| = 2: one step takes z_k - z_b from -gap to gap / 2 + 1.5e-4 (atk_bss.h): every
     * BSS crosses, in exactly one step (the range [-10, 10] leaves the blobs unclipped) */
    assert_int_equal(crossed, m);
    double steps_sum = 0;
    for (size_t r = 0; r < m; r++) {
        assert_int_equal(st[r], 1);
        steps_sum += st[r];
    }

    /* bss.json */
    char p[600], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/bss.json", dir);
    assert_int_equal(nn_io_read_all(p, &text, &len, &err), NN_OK);
    nn_json doc = {0};
    if (nn_json_parse(&doc, text, len, &err)) fail_msg("bss.json: %s", err.msg);
    const nn_json_val *root = nn_json_root(&doc), *set = jget(&doc, root, "settings");
    assert_int_equal(jget(&doc, root, "n_bss")->u, m);
    assert_int_equal(jget(&doc, root, "n_base")->u, nb);
    assert_int_equal(jget(&doc, root, "crossed")->u, crossed);
    assert_close(jget(&doc, root, "fraction_crossed")->num, (double)crossed / (double)m, 1e-12, 1e-8);
    assert_close(jget(&doc, root, "mean_steps")->num, steps_sum / (double)m, 1e-12, 1e-9);
    assert_close(jget(&doc, root, "mean_l2")->num, l2sum / (double)m, 1e-6, 1e-5);
    assert_true((float)jget(&doc, set, "eta")->num == spec->cfg.eta);
    assert_int_equal(jget(&doc, set, "steps")->u, spec->cfg.steps);
    assert_int_equal(jget(&doc, set, "seed")->u, spec->cfg.seed);
    assert_int_equal(jget(&doc, set, "max_base")->u, spec->cfg.max_base);
    assert_string_equal(jget(&doc, set, "policy")->str, spec->cfg.policy == ATK_BSS_ALL ? "all" : "second");
    assert_string_equal(jget(&doc, root, "teacher")->str, "blob teacher");
    assert_true(jget(&doc, root, "seconds")->num >= 0);
    size_t pair_total = 0;
    for (const nn_json_val *q = nn_json_first(&doc, jget(&doc, root, "pairs")); q;
         q = nn_json_next(&doc, q)) {
        size_t bb = jget(&doc, q, "base")->u, kk = jget(&doc, q, "target")->u;
        assert_int_equal(jget(&doc, q, "count")->u, pairs[bb * BK + kk]);
        pair_total += jget(&doc, q, "count")->u;
    }
    assert_int_equal(pair_total, m);
    nn_json_free(&doc);
    free(text);

    /* pairs.csv: the same counts */
    snprintf(p, sizeof p, "%s/pairs.csv", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "base,target,count,crossed,mean_l2\n");
    unsigned bb, kk, cnt, cr;
    double ml2;
    pair_total = 0;
    while (fscanf(f, "%u,%u,%u,%u,%lf\n", &bb, &kk, &cnt, &cr, &ml2) == 5) {
        assert_int_equal(cnt, pairs[bb * BK + kk]);
        assert_true(cr <= cnt && ml2 >= 0);
        pair_total += cnt;
    }
    assert_int_equal(pair_total, m);
    fclose(f);
    snprintf(p, sizeof p, "%s/grid.png", dir);
    assert_int_equal(access(p, R_OK), 0);
    free(want), free(zp);
    nn_npy_free(&xs), nn_npy_free(&zs), nn_npy_free(&bs), nn_npy_free(&ts), nn_npy_free(&ss),
        nn_npy_free(&src);
}

static void test_generate(void **state) {
    (void)state;
    enum { MB = 32 };
    nn_dataset ds;
    atk_test_blobs(&ds, BN, BD, BK, 3);
    ds.shape = (nn_shape){1, 4, 4}; /* a grey 4x4 image for grid.png */
    nn_net *t = blob_teacher(MB);
    char dir[512], prog[4096] = "";
    nn_err err = {0};

    /* 100 samples in chunks 32, 32, 32, 4; at most 8 base samples per chunk */
    snprintf(dir, sizeof dir, "%s/gen/second", g_dir); /* a missing parent is created */
    exp_bss_spec spec = blob_spec(100, ATK_BSS_SECOND, 8);
    FILE *pf = tmpfile();
    assert_non_null(pf);
    if (exp_bss_generate(t, &ds, &spec, dir, "blob teacher", "blobs", pf, &err)) fail_msg("generate: %s", err.msg);
    rewind(pf);
    size_t got = fread(prog, 1, sizeof prog - 1, pf);
    prog[got] = '\0';
    fclose(pf);
    int src[BN];
    size_t nb = expected_bases(t, &ds, 100, MB, 8, src);
    char last[96];
    snprintf(last, sizeof last, "bss: 100/100 samples, %zu base samples, %zu BSS\n", nb, nb);
    assert_true(nb > 8 && nb <= 28);
    assert_non_null(strstr(prog, "bss: 32/100 samples, 8 base samples, 8 BSS\n"));
    assert_non_null(strstr(prog, last));
    check_folder(dir, t, &ds, &spec, MB);

    /* every sample, K - 1 BSS each, on a {16, 1, 1} input (the grid draws it as one 16x1 grey tile) */
    ds.shape = (nn_shape){BD, 1, 1};
    snprintf(dir, sizeof dir, "%s/gen/all", g_dir);
    spec = blob_spec(0, ATK_BSS_ALL, 64);
    if (exp_bss_generate(t, &ds, &spec, dir, "blob teacher", "blobs", NULL, &err)) fail_msg("generate: %s", err.msg);
    check_folder(dir, t, &ds, &spec, MB);
    nn_net_destroy(t);
    nn_dataset_free(&ds);
}

static void test_generate_errors(void **state) {
    (void)state;
    nn_dataset ds;
    atk_test_blobs(&ds, 40, BD, BK, 4);
    nn_net *t = blob_teacher(16);
    char dir[512], stale[600];
    nn_err err = {0};
    exp_bss_spec spec = blob_spec(0, ATK_BSS_SAMPLE, 64);

    snprintf(dir, sizeof dir, "%s/generr", g_dir);
    ds.shape = (nn_shape){1, 3, 5}; /* 15 features, the teacher takes 16 */
    assert_int_equal(exp_bss_generate(t, &ds, &spec, dir, NULL, NULL, NULL, &err), NN_E_SHAPE);
    assert_non_null(strstr(err.msg, "15 features"));
    ds.shape = (nn_shape){BD, 1, 1};

    spec.cfg.eta = 0;
    assert_int_equal(exp_bss_generate(t, &ds, &spec, dir, NULL, NULL, NULL, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "eta"));
    spec.cfg.eta = 0.3f;

    /* a teacher that is always wrong: no base samples; a stale bss.json is gone afterwards */
    assert_int_equal(exp_mkdir_p(dir, &err), NN_OK);
    snprintf(stale, sizeof stale, "%s/bss.json", dir);
    write_bytes(stale, "{}\n", 3);
    for (size_t i = 0; i < ds.n; i++)
        ds.y[i] = 1;
    float w[BK * BD] = {0}, bias[BK] = {1, 0, 0, 0};
    nn_net *wrong = atk_test_linear(BD, BK, w, bias, 16);
    assert_int_equal(exp_bss_generate(wrong, &ds, &spec, dir, NULL, NULL, NULL, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "none of the first 40"));
    assert_int_not_equal(access(stale, F_OK), 0);
    nn_net_destroy(wrong);
    nn_net_destroy(t);
    nn_dataset_free(&ds);
}

/* ---------- pool ---------- */

static void pool_bad(const char *dir, size_t d, size_t k, const char *file, const char *want) {
    float *x = (float *)1, *z = (float *)1;
    size_t n = 7;
    nn_err err = {0};
    int rc = exp_bss_pool_load(dir, d, k, &x, &z, &n, &err);
    if (rc == NN_OK) fail_msg("pool %s loaded, expected \"%s\"", dir, want);
    assert_true(x == NULL && z == NULL && n == 0);
    if (!strstr(err.msg, file) || !strstr(err.msg, want))
        fail_msg("message \"%s\" lacks %s or \"%s\"", err.msg, file, want);
}

static void test_pool(void **state) {
    (void)state;
    nn_dataset ds;
    atk_test_blobs(&ds, 64, BD, BK, 5);
    nn_net *t = blob_teacher(32);
    char dir[512], p[600];
    nn_err err = {0};
    snprintf(dir, sizeof dir, "%s/pool", g_dir);
    exp_bss_spec spec = blob_spec(0, ATK_BSS_SAMPLE, 64);
    spec.grid = 0;
    if (exp_bss_generate(t, &ds, &spec, dir, "t", "blobs", NULL, &err)) fail_msg("generate: %s", err.msg);
    snprintf(p, sizeof p, "%s/grid.png", dir);
    assert_int_not_equal(access(p, F_OK), 0); /* grid 0: no picture */

    float *x = NULL, *z = NULL;
    size_t n = 0;
    if (exp_bss_pool_load(dir, BD, BK, &x, &z, &n, &err)) fail_msg("pool: %s", err.msg);
    nn_npy xs, zs;
    load_in(dir, "samples.npy", &xs), load_in(dir, "logits.npy", &zs);
    assert_true(n > 0 && n == xs.dims[0]);
    assert_memory_equal(x, xs.data, n * BD * sizeof *x);
    assert_memory_equal(z, zs.data, n * BK * sizeof *z);
    free(x), free(z);

    pool_bad(dir, BD - 1, BK, "samples.npy", "samples of 16 features, the network takes 15");
    pool_bad(dir, BD, BK + 1, "logits.npy", "expected logits of shape [n, 5]");
    snprintf(p, sizeof p, "%s/nowhere", g_dir);
    pool_bad(p, BD, BK, "samples.npy", "cannot open");

    /* logits with one row fewer than the samples */
    size_t d2[2] = {n - 1, BK};
    snprintf(p, sizeof p, "%s/logits.npy", dir);
    assert_int_equal(nn_npy_write_f32(p, zs.data, 2, d2, &err), NN_OK);
    char want[64];
    snprintf(want, sizeof want, "%zu rows, but", n - 1);
    pool_bad(dir, BD, BK, "logits.npy", want);
    /* int32 samples; an empty pool */
    snprintf(p, sizeof p, "%s/samples.npy", dir);
    size_t d1[1] = {4};
    const int iv[4] = {1, 2, 3, 4};
    assert_int_equal(nn_npy_write_i32(p, iv, 1, d1, &err), NN_OK);
    pool_bad(dir, BD, BK, "samples.npy", "dtype int32, expected float32");
    size_t d0[2] = {0, BD};
    assert_int_equal(nn_npy_write_f32(p, xs.data, 2, d0, &err), NN_OK);
    pool_bad(dir, BD, BK, "samples.npy", "no rows");
    nn_npy_free(&xs), nn_npy_free(&zs);
    nn_net_destroy(t);
    nn_dataset_free(&ds);
}

/* ---------- the bss: block ---------- */

#define HEAD "data: {name: mnist}\nmodel: [{type: relu}]\n" /* line 3 comes next */

static void expect_error(const char *text, const char *want) {
    exp_config c;
    nn_err err = {0};
    int rc = exp_config_parse(text, strlen(text), "t.yaml", &c, &err);
    if (rc == NN_OK) fail_msg("parsed without error, expected \"%s\"\n--- yaml:\n%s", want, text);
    assert_int_equal(rc, err.code);
    if (!strstr(err.msg, want)) fail_msg("message\n  \"%s\"\nlacks\n  \"%s\"", err.msg, want);
}

static void parse_ok(const char *text, exp_config *c) {
    nn_err err = {0};
    if (exp_config_parse(text, strlen(text), "t.yaml", c, &err)) fail_msg("unexpected error: %s", err.msg);
}

static void test_yaml(void **state) {
    (void)state;
    exp_config *c = malloc(sizeof *c);
    assert_non_null(c);
    parse_ok(HEAD, c);
    assert_int_equal(c->bss.enabled, 0);

    parse_ok(HEAD "bss:\n", c); /* no value: the defaults */
    atk_bss_cfg def = atk_bss_cfg_default();
    assert_int_equal(c->bss.enabled, 1);
    assert_int_equal(c->bss.samples, 1000);
    assert_int_equal(c->bss.grid, 16);
    assert_true(c->bss.cfg.eta == def.eta && c->bss.cfg.steps == def.steps &&
                c->bss.cfg.max_base == 0); /* every correct sample */
    assert_true(c->bss.cfg.policy == def.policy && c->bss.cfg.seed == def.seed);

    parse_ok(HEAD "bss:\n  samples: 0\n  eta: 0.05\n  steps: 1000\n  max_base: 32\n  policy: all\n"
                  "  seed: 18446744073709551615\n  grid: 0\n",
             c);
    assert_int_equal(c->bss.enabled, 1);
    assert_int_equal(c->bss.samples, 0);
    assert_true(c->bss.cfg.eta == 0.05f);
    assert_int_equal(c->bss.cfg.steps, 1000);
    assert_int_equal(c->bss.cfg.max_base, 32);
    assert_int_equal(c->bss.cfg.policy, ATK_BSS_ALL);
    assert_true(c->bss.cfg.seed == UINT64_MAX);
    assert_int_equal(c->bss.grid, 0);
    const char *pol[] = {"sample", "second", "uniform", "all"};
    for (int i = 0; i < 4; i++) {
        char text[128];
        snprintf(text, sizeof text, HEAD "bss: {policy: %s}\n", pol[i]);
        parse_ok(text, c);
        assert_int_equal(c->bss.cfg.policy, i);
    }
    free(c);

    /* "bss: {eta: 0}": '{' at column 6, the key at 7, the value at 12 */
    expect_error(HEAD "bss: {eta: 0}\n", "t.yaml:3:12: bss.eta: must be > 0, got 0");
    expect_error(HEAD "bss: {steps: 0}\n", "t.yaml:3:14: bss.steps: must be in [1, 1000], got 0");
    expect_error(HEAD "bss: {steps: 1001}\n", "t.yaml:3:14: bss.steps: must be in [1, 1000], got 1001");
    expect_error(HEAD "bss: {max_base: -1}\n", "bss.max_base");
    expect_error(HEAD "bss: {grid: 65}\n", "t.yaml:3:13: bss.grid: must be <= 64, got 65");
    expect_error(HEAD "bss: {samples: -1}\n",
                 "t.yaml:3:16: bss.samples: expected a non-negative integer, got '-1'");
    expect_error(HEAD "bss:\n  policy: best\n",
                 "t.yaml:4:11: bss.policy: expected one of: sample, second, uniform, all; got 'best'");
    expect_error(HEAD "bss: {etta: 1}\n",
                 "t.yaml:3:7: bss.etta: unknown key (expected one of: samples, eta,");
    expect_error(HEAD "bss: [1, 2]\n",
                 "t.yaml:3:6: bss: expected a mapping such as {samples: 1000, eta: 0.3}, got a list");
    expect_error(HEAD "bss: 3\n", "t.yaml:3:6: bss: expected a mapping");
}

/* ---------- temper bss: usage ---------- */

/* Runs exp_bss_cmd on args; returns its status, out and errs text in the buffers. */
static int run_cmd(int argc, const char **args, char *out, char *errs, size_t cap) {
    FILE *o = tmpfile(), *e = tmpfile();
    assert_true(o && e);
    int rc = exp_bss_cmd(argc, (char **)args, o, e);
    FILE *f[2] = {o, e};
    char *b[2] = {out, errs};
    for (int i = 0; i < 2; i++) {
        rewind(f[i]);
        size_t n = fread(b[i], 1, cap - 1, f[i]);
        b[i][n] = '\0';
        fclose(f[i]);
    }
    return rc;
}

static void expect_usage(int argc, const char **args, const char *want) {
    char out[4096], errs[4096];
    int rc = run_cmd(argc, args, out, errs, sizeof out);
    if (rc != EXP_EXIT_USAGE || !strstr(errs, want) || !strstr(errs, "Try 'temper bss --help'."))
        fail_msg("exit %d, stderr \"%s\": expected exit 2 and \"%s\"", rc, errs, want);
    assert_string_equal(out, "");
}

static void test_cmd_usage(void **state) {
    (void)state;
    char out[4096], errs[4096];
    const char *help[] = {"--help"};
    assert_int_equal(run_cmd(1, help, out, errs, sizeof out), EXP_EXIT_OK);
    assert_non_null(strstr(out, "usage: temper bss MODEL.safetensors"));
    assert_string_equal(errs, "");

    expect_usage(0, NULL, "temper bss: missing model file (MODEL.safetensors)");
    const char *a1[] = {"m.safetensors", "--eta", "-1"};
    expect_usage(3, a1, "temper bss: --eta: '-1' is not a number > 0");
    const char *a2[] = {"m.safetensors", "--policy=best"};
    expect_usage(2, a2, "--policy: 'best' is not sample, second, uniform or all");
    const char *a3[] = {"--steps", "0", "m.safetensors"};
    expect_usage(3, a3, "--steps: '0' is not an integer in 1..1000");
    const char *a4[] = {"m.safetensors", "--grid", "65"};
    expect_usage(3, a4, "--grid: '65' is not an integer in 0..64");
    const char *a5[] = {"m.safetensors", "--bogus", "1"};
    expect_usage(3, a5, "temper bss: unknown option '--bogus'");
    const char *a6[] = {"m.safetensors", "--quiet=yes"};
    expect_usage(2, a6, "option --quiet takes no value");
    const char *a7[] = {"m.safetensors", "--samples"};
    expect_usage(2, a7, "option --samples needs a value");
    const char *a8[] = {"a.safetensors", "b.safetensors"};
    expect_usage(2, a8, "unexpected argument 'b.safetensors'");
    const char *a9[] = {"m.safetensors", "--range", "1,0"};
    expect_usage(3, a9, "--range: '1,0' is not LO,HI with LO < HI");
    const char *a10[] = {"m.safetensors", "--max-base", "0"};
    expect_usage(3, a10, "--max-base: '0' is not a positive integer");
    const char *a11[] = {"m.safetensors", "--seed", "1.5"};
    expect_usage(3, a11, "--seed: '1.5' is not an integer >= 0");
    const char *a12[] = {"m.safetensors", "-x"};
    expect_usage(2, a12, "unknown option '-x'");

    /* a runtime error (no such model) is exit 1 naming the file */
    char model[600];
    snprintf(model, sizeof model, "%s/none.safetensors", g_dir);
    const char *r1[] = {model, "--quiet"};
    assert_int_equal(run_cmd(2, r1, out, errs, sizeof out), EXP_EXIT_ERROR);
    assert_non_null(strstr(errs, "temper: error: "));
    assert_non_null(strstr(errs, model));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_roundtrip),
        cmocka_unit_test(test_npy_by_hand),
        cmocka_unit_test(test_npy_bad),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_generate_errors),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_yaml),
        cmocka_unit_test(test_cmd_usage),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
