/* test_model.c - model files (safetensors) and the strict JSON reader behind them.
 *
 * Round trip (parameters bitwise, architecture, temperature, extra metadata, same logits), atomic
 * writes (a failed save leaves the previous file byte for byte), and one rejection per way a file can
 * be wrong: each must fail with a message that names the file and the problem. Corrupted files are
 * made by editing the header text of a valid file and re-packing it. */
#include <dirent.h>
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

#include <cmocka.h>

#include "nn_io.h"
#include "nn_json.h"
#include "nn_model.h"
#include "test_util.h"

typedef struct fx {
    char dir[64];
    char path[128]; /* dir/m.safetensors: a valid model of small_net(1) */
    char *buf;      /* its bytes */
    size_t len;
    size_t hlen;
    char *hdr; /* its header text, NUL-terminated */
    nn_net *net;
} fx;

/* in 1x8x8: conv2d(2, k3, pad 1, glorot) relu maxpool2 flatten dropout(0.25) dense3.
 * Tensors: 0.weight [2,1,3,3] bytes [0,72), 0.bias [72,80), 5.weight [3,32] [80,464), 5.bias [464,476). */
static nn_net *small_net(uint64_t seed) {
    nn_layer_cfg c[6] = {nn_layer_cfg_default("conv2d"),  nn_layer_cfg_default("relu"),
                         nn_layer_cfg_default("maxpool"), nn_layer_cfg_default("flatten"),
                         nn_layer_cfg_default("dropout"), nn_layer_cfg_default("dense")};
    c[0].filters = 2, c[0].kernel = 3, c[0].pad = 1, c[0].init = NN_INIT_GLOROT;
    c[2].kernel = 2;
    c[4].rate = 0.25f;
    c[5].units = 3;
    nn_net *net = NULL;
    nn_err err = {0};
    if (nn_net_create(&net, (nn_shape){1, 8, 8}, c, 6, &err)) fail_msg("nn_net_create: %s", err.msg);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    nn_net_init(net, &rng);
    for (size_t i = 0; i < net->n_params; i++)
        net->params[i] += 0.1f * (nn_rng_uniform(&rng) - 0.5f);
    net->temperature = 20.0f;
    return net;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* 8-byte length + header (padded with spaces to 8) + data. */
static void write_st(const char *path, const char *hdr, const void *data, size_t dlen) {
    size_t h = strlen(hdr), hp = (h + 7) / 8 * 8;
    unsigned char *b = calloc(8 + hp + dlen + 1, 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hp >> (8 * i));
    memcpy(b + 8, hdr, h);
    memset(b + 8 + h, ' ', hp - h);
    if (dlen) memcpy(b + 8 + hp, data, dlen);
    write_file(path, b, 8 + hp + dlen);
    free(b);
}

/* s with the first occurrence of from replaced by to (malloc'ed); from must occur. */
static char *replace(const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    if (!at) fail_msg("\"%s\" not found in the header", from);
    size_t a = (size_t)(at - s), fl = strlen(from), tl = strlen(to);
    char *r = malloc(strlen(s) - fl + tl + 1);
    memcpy(r, s, a);
    memcpy(r + a, to, tl);
    strcpy(r + a + tl, at + fl);
    return r;
}

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/test_model.XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/m.safetensors", f->dir);
    f->net = small_net(1);
    nn_err err = {0};
    if (nn_model_save(f->net, NULL, f->path, &err)) return -1;
    if (nn_io_read_all(f->path, &f->buf, &f->len, &err)) return -1;
    for (int i = 7; i >= 0; i--)
        f->hlen = (f->hlen << 8) | (unsigned char)f->buf[i];
    f->hdr = calloc(f->hlen + 1, 1);
    memcpy(f->hdr, f->buf + 8, f->hlen);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    rm_rf(f->dir);
    nn_net_destroy(f->net);
    free(f->buf);
    free(f->hdr);
    free(f);
    return 0;
}

/* Loading path must fail with code and a message naming path and containing what. */
static void expect_reject(const char *path, int code, const char *what) {
    nn_net *net = (nn_net *)&net; /* must be reset to NULL */
    nn_model_meta extra = {.n = 3};
    nn_err err = {0};
    int rc = nn_model_load(&net, &extra, path, &err);
    if (rc == NN_OK) fail_msg("%s: accepted, expected an error containing \"%s\"", path, what);
    if (getenv("TEST_MODEL_SHOW")) print_message("%s\n", err.msg);
    assert_null(net);
    assert_int_equal(extra.n, 0);
    if (rc != code || !strstr(err.msg, path) || !strstr(err.msg, what))
        fail_msg("code %d (want %d), message \"%s\": want the path and \"%s\"", rc, code, err.msg, what);
}

/* The valid header edited by one replacement, re-packed with data of dlen bytes (default: the original). */
static void expect_edit_rejected(fx *f, const char *from, const char *to, int code, const char *what) {
    char path[160];
    snprintf(path, sizeof path, "%s/edited.safetensors", f->dir);
    char *h = replace(f->hdr, from, to);
    write_st(path, h, f->buf + 8 + f->hlen, f->len - 8 - f->hlen);
    free(h);
    expect_reject(path, code, what);
}

static void test_roundtrip(void **state) {
    fx *f = *state;
    nn_model_meta extra = {0}, got = {0};
    nn_err err = {0};
    f->net->temperature = 1.0f / 3.0f; /* needs all 9 digits to round-trip */
    assert_int_equal(nn_model_meta_set(&extra, "dataset", "mnist", &err), NN_OK);
    assert_int_equal(nn_model_meta_set(&extra, "note", "quote \" backslash \\ tab\t nl\n \xc3\xa9", &err),
                     NN_OK);
    assert_int_equal(nn_model_save(f->net, &extra, f->path, &err), NN_OK);
    nn_net *b = NULL;
    if (nn_model_load(&b, &got, f->path, &err)) fail_msg("%s", err.msg);
    nn_net *a = f->net;
    assert_int_equal(b->n_layers, a->n_layers);
    for (size_t i = 0; i < a->n_layers; i++) {
        const nn_layer_cfg *x = &a->layers[i].cfg, *y = &b->layers[i].cfg;
        assert_string_equal(x->kind, y->kind);
        assert_true(x->units == y->units && x->filters == y->filters && x->kernel == y->kernel);
        assert_true(x->stride == y->stride && x->pad == y->pad && x->rate == y->rate && x->init == y->init);
    }
    assert_true(b->in_shape.c == 1 && b->in_shape.h == 8 && b->in_shape.w == 8);
    assert_int_equal(b->n_params, a->n_params);
    assert_memory_equal(b->params, a->params, a->n_params * sizeof(float));
    assert_true(b->temperature == a->temperature);
    assert_int_equal(got.n, 2);
    assert_string_equal(nn_model_meta_get(&got, "dataset"), "mnist");
    assert_string_equal(nn_model_meta_get(&got, "note"), extra.value[1]);
    assert_null(nn_model_meta_get(&got, "temper.arch"));
    /* The loaded net computes the same logits, bitwise. */
    float x[2 * 64], la[2 * 3], lb[2 * 3];
    for (size_t i = 0; i < 2 * 64; i++)
        x[i] = (float)((i * 37) % 101) / 100.0f;
    assert_int_equal(nn_net_reserve(a, 2, &err), NN_OK);
    assert_int_equal(nn_net_reserve(b, 2, &err), NN_OK);
    assert_int_equal(nn_net_predict(a, x, 2, la, &err), NN_OK);
    assert_int_equal(nn_net_predict(b, x, 2, lb, &err), NN_OK);
    assert_memory_equal(la, lb, sizeof la);
    nn_net_destroy(b);
}

static void test_header_text(void **state) {
    fx *f = *state;
    /* Layout facts a reader relies on: 8-byte aligned data, metadata strings, tensors in layer order. */
    assert_int_equal(f->hlen % 8, 0);
    assert_int_equal(f->len, 8 + f->hlen + 476);
    assert_non_null(strstr(f->hdr, "\"temper.temperature\":\"20\""));
    assert_non_null(strstr(f->hdr, "\"temper.input_shape\":\"1,8,8\""));
    assert_non_null(strstr(f->hdr, "{\\\"type\\\":\\\"maxpool\\\",\\\"kernel\\\":2,\\\"stride\\\":0}"));
    assert_non_null(strstr(f->hdr, "{\\\"type\\\":\\\"dropout\\\",\\\"rate\\\":0.25}"));
    const char *w0 = strstr(f->hdr, "\"0.weight\""), *b0 = strstr(f->hdr, "\"0.bias\"");
    const char *w5 = strstr(f->hdr, "\"5.weight\""), *b5 = strstr(f->hdr, "\"5.bias\"");
    assert_true(w0 && b0 && w5 && b5 && w0 < b0 && b0 < w5 && w5 < b5);
    assert_non_null(
        strstr(f->hdr, "\"5.weight\":{\"dtype\":\"F32\",\"shape\":[3,32],\"data_offsets\":[80,464]}"));
}

static void test_atomic_save(void **state) {
    fx *f = *state;
    nn_err err = {0};
    char tmp[256], missing[160], dirpath[160];
    nn_net *other = small_net(2);
    /* The temporary name is taken by a directory: the write fails, the old file stays byte for byte. */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", f->path, (long)getpid());
    assert_int_equal(mkdir(tmp, 0700), 0);
    assert_int_equal(nn_model_save(other, NULL, f->path, &err), NN_E_IO);
    assert_non_null(strstr(err.msg, f->path));
    assert_int_equal(rmdir(tmp), 0);
    char *now;
    size_t len;
    assert_int_equal(nn_io_read_all(f->path, &now, &len, &err), NN_OK);
    assert_int_equal(len, f->len);
    assert_memory_equal(now, f->buf, len);
    free(now);
    /* A path in a missing directory. */
    snprintf(missing, sizeof missing, "%s/no/such/dir/m.safetensors", f->dir);
    assert_int_equal(nn_model_save(other, NULL, missing, &err), NN_E_IO);
    assert_non_null(strstr(err.msg, missing));
    /* The rename fails (the target is a non-empty directory): the temporary file is removed. */
    snprintf(dirpath, sizeof dirpath, "%s/isdir", f->dir);
    assert_int_equal(mkdir(dirpath, 0700), 0);
    snprintf(tmp, sizeof tmp, "%s/keep", dirpath);
    write_file(tmp, "x", 1);
    assert_int_equal(nn_model_save(other, NULL, dirpath, &err), NN_E_IO);
    assert_int_equal(count_tmp_files(f->dir), 0);
    /* And a good save replaces the file. */
    assert_int_equal(nn_model_save(other, NULL, f->path, &err), NN_OK);
    nn_net *b = NULL;
    assert_int_equal(nn_model_load(&b, NULL, f->path, &err), NN_OK);
    assert_memory_equal(b->params, other->params, other->n_params * sizeof(float));
    assert_memory_not_equal(b->params, f->net->params, other->n_params * sizeof(float));
    nn_net_destroy(b);
    nn_net_destroy(other);
}

static void test_save_rejects(void **state) {
    fx *f = *state;
    nn_err err = {0};
    char p[160];
    snprintf(p, sizeof p, "%s/bad.safetensors", f->dir);
    nn_model_meta extra = {0};
    assert_int_equal(nn_model_meta_set(&extra, "temper.arch", "[]", &err), NN_OK);
    assert_int_equal(nn_model_save(f->net, &extra, p, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "reserved"));
    float keep = f->net->params[5];
    f->net->params[5] = NAN;
    assert_int_equal(nn_model_save(f->net, NULL, p, &err), NN_E_NUMERIC);
    f->net->params[5] = keep;
    assert_int_equal(access(p, F_OK), -1); /* nothing written */
}

static void test_reject_truncated(void **state) {
    fx *f = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/cut.safetensors", f->dir);
    size_t cuts[] = {0, 5, 8, 8 + f->hlen / 2, 8 + f->hlen, 8 + f->hlen + 4, 8 + f->hlen + 100, f->len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(p, f->buf, cuts[i]);
        expect_reject(p, NN_E_FORMAT, i < 2 ? "too short" : i < 4 ? "header length" : "truncated");
    }
    expect_reject("/nonexistent/dir/m.safetensors", NN_E_IO, "cannot open");
}

static void test_reject_header_length(void **state) {
    fx *f = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/hl.safetensors", f->dir);
    uint64_t bad[] = {(uint64_t)1 << 40, 0, f->len - 8 + 1};
    for (size_t i = 0; i < 3; i++) {
        for (int k = 0; k < 8; k++)
            f->buf[k] = (char)(bad[i] >> (8 * k));
        write_file(p, f->buf, f->len);
        expect_reject(p, NN_E_FORMAT, i < 2 ? "absurd" : "past the end");
    }
    for (int k = 0; k < 8; k++)
        f->buf[k] = (char)((uint64_t)f->hlen >> (8 * k));
}

static void test_reject_bad_header(void **state) {
    fx *f = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/g.safetensors", f->dir);
    write_st(p, "this is not json {{{", "", 0);
    expect_reject(p, NN_E_FORMAT, "not valid JSON");
    write_st(p, "[1,2]", "", 0);
    expect_reject(p, NN_E_FORMAT, "not an object");
    /* Foreign: a valid safetensors file without temper metadata, with and without __metadata__. */
    float one = 1.0f;
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &one, 4);
    expect_reject(p, NN_E_FORMAT, "foreign safetensors");
    write_st(p,
             "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":["
             "0,4]}}",
             &one, 4);
    expect_reject(p, NN_E_FORMAT, "foreign safetensors");
}

static void test_reject_tensors(void **state) {
    fx *f = *state;
    expect_edit_rejected(f, "\"F32\"", "\"F16\"", NN_E_FORMAT, "dtype F16");
    expect_edit_rejected(f, "[2,1,3,3]", "[2,1,9,1]", NN_E_FORMAT, "0.weight: wrong shape");
    expect_edit_rejected(f, "[3,32]", "[3,32,1]", NN_E_FORMAT, "5.weight: wrong shape");
    expect_edit_rejected(f, "\"5.bias\"", "\"6.bias\"", NN_E_FORMAT, "unexpected tensor \"6.bias\"");
    expect_edit_rejected(f, "[72,80]", "[76,84]", NN_E_FORMAT, "not contiguous");
    expect_edit_rejected(f, "[464,476]", "[468,480]", NN_E_FORMAT, "past the data");
    expect_edit_rejected(f, "[464,476]", "[464,472]", NN_E_FORMAT, "shape needs 12");
    expect_edit_rejected(f, "\"dtype\":\"F32\",", "\"dtype\":\"F32\",\"x\":1,", NN_E_FORMAT, "entry must be");
    /* Missing tensor: the last entry and its 12 data bytes removed. */
    char p[160];
    snprintf(p, sizeof p, "%s/miss.safetensors", f->dir);
    char *h = replace(f->hdr, ",\"5.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[464,476]}", "");
    write_st(p, h, f->buf + 8 + f->hlen, 464);
    free(h);
    expect_reject(p, NN_E_FORMAT, "missing tensor 5.bias");
    /* Trailing bytes after the data. */
    char *longer = malloc(f->len + 4);
    memcpy(longer, f->buf, f->len);
    memset(longer + f->len, 0, 4);
    write_file(p, longer, f->len + 4);
    free(longer);
    expect_reject(p, NN_E_FORMAT, "file size");
}

static void test_reject_nan_inf(void **state) {
    fx *f = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/nan.safetensors", f->dir);
    const uint32_t bits[2] = {0x7fc00000u, 0x7f800000u}; /* quiet NaN, +Inf */
    const size_t at[2] = {100, 468};                     /* inside 5.weight, inside 5.bias */
    for (int i = 0; i < 2; i++) {
        char *b = malloc(f->len);
        memcpy(b, f->buf, f->len);
        for (int k = 0; k < 4; k++)
            b[8 + f->hlen + at[i] + k] = (char)(bits[i] >> (8 * k));
        write_file(p, b, f->len);
        free(b);
        expect_reject(p, NN_E_NUMERIC, i == 0 ? "5.weight element 5" : "5.bias element 1");
    }
}

static void test_reject_metadata(void **state) {
    fx *f = *state;
    expect_edit_rejected(f, "\\\"type\\\":\\\"relu\\\"", "\\\"type\\\":\\\"tanh\\\"", NN_E_FORMAT,
                         "layer 1: unknown type \"tanh\"");
    expect_edit_rejected(f, "\\\"type\\\":\\\"relu\\\"", "\\\"type\\\":\\\"relu\\\",\\\"units\\\":3",
                         NN_E_FORMAT, "layer 1 (relu): unexpected field \"units\"");
    expect_edit_rejected(f, ",\\\"pad\\\":1", "", NN_E_FORMAT, "layer 0 (conv2d): missing field \"pad\"");
    expect_edit_rejected(f, "\\\"init\\\":\\\"glorot\\\"", "\\\"init\\\":\\\"xavier\\\"", NN_E_FORMAT,
                         "init must be");
    expect_edit_rejected(f, "\\\"kernel\\\":3", "\\\"kernel\\\":-3", NN_E_FORMAT, "kernel must be");
    expect_edit_rejected(f, "\"temper.arch\":\"[", "\"temper.arch\":\"[,", NN_E_FORMAT,
                         "temper.arch is not valid JSON");
    expect_edit_rejected(f, "\\\"units\\\":3", "\\\"units\\\":0", NN_E_FORMAT,
                         "architecture in temper.arch is invalid");
    expect_edit_rejected(f, "\"1,8,8\"", "\"2,8,8\"", NN_E_FORMAT, "0.weight: wrong shape");
    expect_edit_rejected(f, "\"1,8,8\"", "\"1,8\"", NN_E_FORMAT, "temper.input_shape");
    expect_edit_rejected(f, "\"temper.temperature\":\"20\"", "\"temper.temperature\":\"-1\"", NN_E_FORMAT,
                         "temper.temperature");
    expect_edit_rejected(f, "\"temper.temperature\":\"20\"", "\"temper.temperature\":\"1e-46\"", NN_E_FORMAT,
                         "float32"); /* > 0 as a double, 0 as a float */
    expect_edit_rejected(f, "\"1,8,8\"", "\"2,10275459842,7180892868\"", NN_E_FORMAT, "too large");
    expect_edit_rejected(f, "\"temper.version\":\"1\"", "\"temper.version\":\"2\"", NN_E_FORMAT, "version");
    expect_edit_rejected(f, "\"format\":\"pt\"", "\"format\":7", NN_E_FORMAT, "not a string");
}

static void test_meta(void **state) {
    (void)state;
    nn_model_meta m = {0};
    nn_err err = {0};
    char key[80], big[300];
    assert_int_equal(nn_model_meta_set(&m, "a", "1", &err), NN_OK);
    assert_int_equal(nn_model_meta_set(&m, "a", "2", &err), NN_OK); /* replaces */
    assert_int_equal(m.n, 1);
    assert_string_equal(nn_model_meta_get(&m, "a"), "2");
    assert_null(nn_model_meta_get(&m, "b"));
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(nn_model_meta_set(&m, "b", big, &err), NN_E_INVAL);
    assert_int_equal(nn_model_meta_set(&m, "", "x", &err), NN_E_INVAL);
    assert_int_equal(nn_model_meta_set(&m, "b", "caf\xe9", &err), NN_E_INVAL); /* the loader would refuse it */
    assert_non_null(strstr(err.msg, "UTF-8"));
    for (int i = 1; i < NN_MODEL_MAX_META; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(nn_model_meta_set(&m, key, "v", &err), NN_OK);
    }
    assert_int_equal(nn_model_meta_set(&m, "one-too-many", "v", &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "full"));
}

/* ---- JSON reader ---- */

static void test_json_valid(void **state) {
    (void)state;
    const char *t = " {\"a\": [1, -2.5e3, 0, true, false, null, {}],\n \"b\": {\"c\": \"d\"}, "
                    "\"n\": 18446744073709551615, \"big\": 18446744073709551616, \"e\": 1.5E-3} ";
    nn_json d;
    nn_err err = {0};
    if (nn_json_parse(&d, t, strlen(t), &err)) fail_msg("%s", err.msg);
    const nn_json_val *r = nn_json_root(&d), *a = nn_json_get(&d, r, "a");
    assert_true(r->type == NN_JSON_OBJECT && r->n == 5 && r->offset == 1);
    assert_true(a && a->type == NN_JSON_ARRAY && a->n == 7 && a->offset == 2 && a->key_len == 1);
    const nn_json_val *v = nn_json_at(&d, a, 0);
    assert_true(v->type == NN_JSON_NUMBER && v->is_uint && v->u == 1 && v->num == 1.0);
    v = nn_json_at(&d, a, 1);
    assert_true(v->type == NN_JSON_NUMBER && !v->is_uint && v->num == -2500.0);
    v = nn_json_at(&d, a, 2);
    assert_true(v->is_uint && v->u == 0);
    assert_true(nn_json_at(&d, a, 3)->type == NN_JSON_BOOL && nn_json_at(&d, a, 3)->boolean == 1);
    assert_true(nn_json_at(&d, a, 4)->type == NN_JSON_BOOL && nn_json_at(&d, a, 4)->boolean == 0);
    assert_int_equal(nn_json_at(&d, a, 5)->type, NN_JSON_NULL);
    assert_true(nn_json_at(&d, a, 6)->type == NN_JSON_OBJECT && nn_json_at(&d, a, 6)->n == 0);
    assert_null(nn_json_at(&d, a, 7));
    assert_null(nn_json_first(&d, nn_json_at(&d, a, 6)));
    v = nn_json_get(&d, nn_json_get(&d, r, "b"), "c");
    assert_true(v && v->type == NN_JSON_STRING && strcmp(v->str, "d") == 0 && v->str_len == 1);
    v = nn_json_get(&d, r, "n");
    assert_true(v->is_uint && v->u == UINT64_MAX);
    v = nn_json_get(&d, r, "big"); /* 2^64: not a uint64, still a double */
    assert_true(!v->is_uint && v->num == 18446744073709551616.0);
    assert_true(nn_json_get(&d, r, "e")->num == 1.5e-3);
    assert_null(nn_json_get(&d, r, "zz"));
    assert_null(nn_json_get(&d, a, "a")); /* not an object */
    nn_json_free(&d);
    /* Scalars at the root; not NUL-terminated input. */
    assert_int_equal(nn_json_parse(&d, "42xyz", 2, &err), NN_OK);
    assert_true(nn_json_root(&d)->u == 42);
    nn_json_free(&d);
    /* NN_JSON_MAX_DEPTH nested arrays parse, one more does not. */
    char deep[2 * NN_JSON_MAX_DEPTH + 3];
    for (int extra = 0; extra < 2; extra++) {
        size_t n = NN_JSON_MAX_DEPTH + (size_t)extra;
        memset(deep, '[', n);
        memset(deep + n, ']', n);
        int rc = nn_json_parse(&d, deep, 2 * n, &err);
        nn_json_free(&d);
        assert_int_equal(rc, extra ? NN_E_FORMAT : NN_OK);
    }
    assert_string_equal(err.msg, "JSON byte 64: nesting too deep");
    assert_int_equal(nn_json_parse(&d, "1", NN_JSON_MAX_LEN + 1, &err),
                     NN_E_FORMAT); /* checked before reading */
    nn_json_free(&d);
}

static void test_json_strings(void **state) {
    (void)state;
    const char *t =
        "\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t u\\u00e9 \\u20AC e\\ud83d\\ude00 raw\xc3\xa9\xe2\x82\xac\"";
    const char *want =
        "q\" b\\ s/ \b\f\n\r\t u\xc3\xa9 \xe2\x82\xac e\xf0\x9f\x98\x80 raw\xc3\xa9\xe2\x82\xac";
    nn_json d;
    nn_err err = {0};
    if (nn_json_parse(&d, t, strlen(t), &err)) fail_msg("%s", err.msg);
    assert_string_equal(nn_json_root(&d)->str, want);
    assert_int_equal(nn_json_root(&d)->str_len, strlen(want));
    nn_json_free(&d);
    /* The writer's escaping reads back as the original. */
    const char *orig = "a\"b\\c\nd\te\x01 \xc3\xa9";
    nn_jbuf b = {0};
    nn_jbuf_str(&b, orig);
    nn_jbuf_printf(&b, "%s", "");
    assert_false(b.oom);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\nd\\te\\u0001 \xc3\xa9\"");
    assert_int_equal(nn_json_parse(&d, b.p, b.len, &err), NN_OK);
    assert_string_equal(nn_json_root(&d)->str, orig);
    nn_json_free(&d);
    nn_jbuf_free(&b);
}

static void test_json_invalid(void **state) {
    (void)state;
    /* Each text and the byte offset the error must name. */
    static const struct {
        const char *text;
        size_t off;
    } bad[] = {
        {"", 0},
        {"   ", 3},
        {"[1,]", 3},
        {"[1 2]", 3},
        {"{\"a\":1,}", 7},
        {"{a:1}", 1},
        {"{\"a\" 1}", 5},
        {"[", 1},
        {"01", 0},
        {"-01", 0},
        {"1.", 2},
        {".5", 0},
        {"+1", 0},
        {"-", 0},
        {"1e", 2},
        {"1e999", 0},
        {"\"abc", 0},
        {"\"a\x01\"", 2},
        {"\"\\x\"", 1},
        {"\"\\ud800\"", 1},
        {"\"\\udc00\"", 1},
        {"\"\\ud800\\u0041\"", 7},
        {"\"\\u12\"", 3},
        {"\"\\u00g0\"", 5},
        {"\"\\u0000\"", 1},
        {"\"\xff\"", 1},
        {"\"\xc0\xaf\"", 1},
        {"\"\xed\xa0\x80\"", 1},
        {"\"\xe2\x82\"", 1},
        {"tru", 0},
        {"nul", 0},
        {"NaN", 0},
        {"Infinity", 0},
        {"[1] x", 4},
        {"'a'", 0},
        {"[1]//c", 3},
        {"{\"a\":1,\"a\":2}", 7},
        {"{\"k\":{\"x\":1,\"y\":2,\"x\":3}}", 18},
        {"\xef\xbb\xbf{}", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nn_json d;
        nn_err err = {0};
        char want[32];
        int rc = nn_json_parse(&d, bad[i].text, strlen(bad[i].text), &err);
        nn_json_free(&d);
        snprintf(want, sizeof want, "JSON byte %zu:", bad[i].off);
        if (rc != NN_E_FORMAT || strncmp(err.msg, want, strlen(want)) != 0)
            fail_msg("case %zu: code %d, message \"%s\", want \"%s ...\"", i, rc, err.msg, want);
    }
    nn_json d;
    nn_err err = {0};
    assert_int_equal(nn_json_parse(&d, "[1,\0]", 5, &err), NN_E_FORMAT); /* embedded NUL */
    assert_string_equal(err.msg, "JSON byte 3: value expected");
    nn_json_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_header_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_bad_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_tensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_nan_inf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_metadata, setup, teardown),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_json_strings),
        cmocka_unit_test(test_json_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
