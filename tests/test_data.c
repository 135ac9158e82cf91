/* test_data.c - IDX parsing, data set building, splits/exclusion/subsets/shuffle, translation jitter.
 * Small IDX files are written to a mkdtemp folder; the real MNIST / Fashion-MNIST checks skip when the
 * cache (scripts/fetch_data.sh) is absent. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "test_util.h"

#include "nn_data.h"

static char g_dir[256]; /* the temp folder of this run */

static int group_setup(void **state) {
    snprintf(g_dir, sizeof g_dir, "/tmp/temper_test_data_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    rm_rf(g_dir);
    return 0;
}

/* Builds an IDX image in buf: magic {0, 0, type, ndim}, big-endian dims, then n_data bytes of data. */
static size_t idx_build(uint8_t *buf, int type, int ndim, const uint32_t *dims, const uint8_t *data,
                        size_t n_data) {
    size_t o = 0;
    buf[o++] = 0;
    buf[o++] = 0;
    buf[o++] = (uint8_t)type;
    buf[o++] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) {
        buf[o++] = (uint8_t)(dims[d] >> 24);
        buf[o++] = (uint8_t)(dims[d] >> 16);
        buf[o++] = (uint8_t)(dims[d] >> 8);
        buf[o++] = (uint8_t)dims[d];
    }
    if (n_data) memcpy(buf + o, data, n_data);
    return o + n_data;
}

static void write_raw(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const uint8_t *b, size_t n) {
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, b, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

/* Writes an IDX file of unsigned bytes with the given dims and data (count = product of dims). */
static void write_idx(const char *path, int gz, int ndim, const uint32_t *dims, const uint8_t *data) {
    size_t count = 1;
    for (int d = 0; d < ndim; d++)
        count *= dims[d];
    uint8_t *buf = malloc(4 + 16 + count);
    assert_non_null(buf);
    size_t n = idx_build(buf, 0x08, ndim, dims, data, count);
    if (gz)
        write_gz(path, buf, n);
    else
        write_raw(path, buf, n);
    free(buf);
}

static void test_idx_valid_raw_and_gz(void **state) {
    uint8_t data[2 * 3 * 2 * 2];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    uint32_t dims[4] = {2, 3, 2, 2};
    char path[512];
    for (int gz = 0; gz < 2; gz++) {
        for (int ndim = 1; ndim <= 4; ndim++) {
            snprintf(path, sizeof path, "%s/valid_%d_%d%s", g_dir, ndim, gz, gz ? ".gz" : "");
            write_idx(path, gz, ndim, dims, data);
            nn_idx idx;
            nn_err err = {0};
            assert_int_equal(nn_idx_read(path, &idx, &err), NN_OK);
            size_t count = 1;
            for (int d = 0; d < ndim; d++)
                count *= dims[d];
            assert_int_equal(idx.ndim, ndim);
            for (int d = 0; d < ndim; d++)
                assert_int_equal(idx.dims[d], dims[d]);
            assert_int_equal(idx.count, count);
            assert_memory_equal(idx.data, data, count);
            nn_idx_free(&idx);
            assert_null(idx.data);
        }
    }
    nn_idx_free(NULL);
}

typedef struct bad_case {
    const char *name;
    uint8_t bytes[40];
    size_t n;
    const char *says; /* substring the message must contain */
} bad_case;

static void test_idx_errors(void **state) {
    /* dims {2, 3}: 6 data bytes expected after the 12-byte header. */
    const bad_case cases[] = {
        {"bad_magic", {1, 0, 8, 1, 0, 0, 0, 1, 5}, 9, "magic"},
        {"bad_magic2", {0, 7, 8, 1, 0, 0, 0, 1, 5}, 9, "magic"},
        {"wrong_type", {0, 0, 0x09, 1, 0, 0, 0, 1, 5}, 9, "type 0x09"},
        {"float_type", {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0}, 12, "type 0x0d"},
        {"ndim0", {0, 0, 8, 0}, 4, "ndim 0"},
        {"ndim5", {0, 0, 8, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9}, 25, "ndim 5"},
        {"truncated", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5}, 17, "truncated"},
        {"trailing", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7}, 19, "trailing"},
        {"zero_dim", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 0}, 12, "dimension 1 is zero"},
        {"short_magic", {0, 0, 8}, 3, "too short"},
        {"short_dims", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0}, 10, "too short"},
        {"empty", {0}, 0, "too short"},
        /* (2^32 - 1)^2 bytes announced, 2 present: reported as truncated without allocating the claim. */
        {"huge", {0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2}, 14, "truncated"},
        {"overflow",
         {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         16,
         "overflow"},
    };
    char path[512];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int gz = 0; gz < 2; gz++) {
            snprintf(path, sizeof path, "%s/%s%s", g_dir, cases[c].name, gz ? ".gz" : "");
            if (gz)
                write_gz(path, cases[c].bytes, cases[c].n);
            else
                write_raw(path, cases[c].bytes, cases[c].n);
            nn_idx idx;
            nn_err err = {0};
            int rc = nn_idx_read(path, &idx, &err);
            if (rc != NN_E_FORMAT) fail_msg("%s: code %d (%s), expected format error", path, rc, err.msg);
            if (!strstr(err.msg, path)) fail_msg("%s: message '%s' does not name the file", path, err.msg);
            if (!strstr(err.msg, cases[c].says))
                fail_msg("%s: message '%s' lacks '%s'", path, err.msg, cases[c].says);
            assert_null(idx.data);
            assert_int_equal(idx.count, 0);
        }
    }
    /* A gzip stream cut short: a format error naming the file. */
    uint8_t data[600], full[700];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37 % 251);
    uint32_t dims[2] = {20, 30};
    size_t n = idx_build(full, 8, 2, dims, data, sizeof data);
    snprintf(path, sizeof path, "%s/whole.gz", g_dir);
    write_gz(path, full, n);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t comp[2048];
    size_t nc = fread(comp, 1, sizeof comp, f);
    fclose(f);
    assert_true(nc > 40 && nc < sizeof comp);
    snprintf(path, sizeof path, "%s/cut.gz", g_dir);
    write_raw(path, comp, nc / 2);
    nn_idx idx;
    nn_err err = {0};
    assert_int_equal(nn_idx_read(path, &idx, &err), NN_E_FORMAT);
    assert_non_null(strstr(err.msg, path));
    assert_null(idx.data);
    /* A missing file: an i/o error naming it. */
    snprintf(path, sizeof path, "%s/no_such_file", g_dir);
    assert_int_equal(nn_idx_read(path, &idx, &err), NN_E_IO);
    assert_non_null(strstr(err.msg, path));
}

/* images [n, h, w] with pixel bytes px and labels [n]; both owned by the caller's buffers. */
static nn_idx make_idx(int ndim, size_t d0, size_t d1, size_t d2, uint8_t *data) {
    nn_idx x = {0};
    x.ndim = ndim;
    x.dims[0] = d0;
    x.dims[1] = d1;
    x.dims[2] = d2;
    x.count = d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    x.data = data;
    return x;
}

static void test_dataset_from_idx(void **state) {
    uint8_t px[2 * 2 * 2] = {0, 51, 102, 255, 255, 0, 153, 204};
    uint8_t lb[3] = {3, 9, 1};
    nn_idx im = make_idx(3, 2, 2, 2, px), labels = make_idx(1, 2, 0, 0, lb);
    nn_dataset d;
    nn_err err = {0};
    /* Byte b -> lo + (hi - lo) * b / 255; with [lo, hi] = [-0.5, 0.5] and b = 51k that is -0.5 + 0.2k. */
    assert_int_equal(nn_dataset_from_idx(&im, &labels, -0.5f, 0.5f, 10, &d, &err), NN_OK);
    const float want[8] = {-0.5f, -0.3f, -0.1f, 0.5f, 0.5f, -0.5f, 0.1f, 0.3f};
    assert_int_equal(d.n, 2);
    assert_int_equal(d.shape.c, 1);
    assert_int_equal(d.shape.h, 2);
    assert_int_equal(d.shape.w, 2);
    assert_int_equal(d.n_classes, 10);
    assert_close_array(d.x, want, 8, 1e-7, 0, "pixels in [-0.5, 0.5]");
    assert_true(d.x[0] == -0.5f && d.x[3] == 0.5f); /* the ends are exact */
    assert_int_equal(d.y[0], 3);
    assert_int_equal(d.y[1], 9);
    assert_int_equal(d.id[0], 0);
    assert_int_equal(d.id[1], 1);
    nn_dataset_free(&d);
    assert_null(d.x);
    nn_dataset_free(NULL);
    /* Default range [0, 1]: b / 255. */
    assert_int_equal(nn_dataset_from_idx(&im, &labels, 0.0f, 1.0f, 10, &d, &err), NN_OK);
    assert_true(d.x[0] == 0.0f && d.x[3] == 1.0f);
    assert_close(d.x[1], 0.2, 1e-7, 0);
    nn_dataset_free(&d);
    /* Mismatched counts: 3 labels for 2 images. */
    nn_idx labels3 = make_idx(1, 3, 0, 0, lb);
    assert_int_equal(nn_dataset_from_idx(&im, &labels3, 0.0f, 1.0f, 10, &d, &err), NN_E_SHAPE);
    assert_non_null(strstr(err.msg, "2 images but 3 labels"));
    assert_null(d.x);
    /* A label not below n_classes; labels that are not 1-D; a bad range. */
    assert_int_equal(nn_dataset_from_idx(&im, &labels, 0.0f, 1.0f, 5, &d, &err), NN_E_FORMAT);
    assert_int_equal(nn_dataset_from_idx(&im, &im, 0.0f, 1.0f, 10, &d, &err), NN_E_SHAPE);
    assert_int_equal(nn_dataset_from_idx(&im, &labels, 1.0f, 1.0f, 10, &d, &err), NN_E_INVAL);
    assert_int_equal(nn_dataset_from_idx(&im, &labels, NAN, 1.0f, 10, &d, &err), NN_E_INVAL);
}

static void test_translate_identity(void **state) {
    nn_shape s = {2, 5, 4};
    size_t n = 3, d = nn_shape_size(s);
    float x[3 * 40], out[3 * 40];
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)i * 0.5f - 7.0f;
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    nn_data_translate(x, out, n, s, 0, -9.0f, &rng);
    assert_memory_equal(out, x, sizeof x);
}

/* One bright pixel (1.0) at (r0, c0) of a 7x7 image of 0.25, both channels; k = 2, fill = -1. Each of many
 * samples must move it by the (dx, dy) drawn from a copy of the rng (dx then dy, below(2k+1) - k, sample
 * order), show fill exactly on the shifted-in band, and 0.25 elsewhere. 1500 samples > one draw block. */
static void check_bright_pixel(size_t r0, size_t c0, uint64_t seed) {
    enum { K = 2, HW = 7, N = 1500 };
    nn_shape s = {2, HW, HW};
    size_t d = nn_shape_size(s);
    float *x = malloc(N * d * sizeof *x), *out = malloc(N * d * sizeof *out);
    assert_true(x && out);
    for (size_t i = 0; i < N * d; i++)
        x[i] = 0.25f;
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < 2; c++)
            x[i * d + c * HW * HW + r0 * HW + c0] = 1.0f;
    nn_rng rng, copy;
    nn_rng_seed(&rng, seed);
    copy = rng;
    nn_data_translate(x, out, N, s, K, -1.0f, &rng);
    int seen[2 * K + 1][2 * K + 1] = {{0}};
    for (size_t i = 0; i < N; i++) {
        long dx = (long)nn_rng_below(&copy, 2 * K + 1) - K, dy = (long)nn_rng_below(&copy, 2 * K + 1) - K;
        seen[dy + K][dx + K]++;
        for (size_t c = 0; c < 2; c++) {
            const float *o = out + i * d + c * HW * HW;
            for (long r = 0; r < HW; r++) {
                for (long q = 0; q < HW; q++) {
                    long sr = r - dy, sq = q - dx;
                    float want = (sr < 0 || sr >= HW || sq < 0 || sq >= HW) ? -1.0f
                                 : (sr == (long)r0 && sq == (long)c0)       ? 1.0f
                                                                            : 0.25f;
                    if (o[r * HW + q] != want)
                        fail_msg("sample %zu ch %zu (%ld, %ld), shift (%ld, %ld): %g, want %g", i, c, r, q,
                                 dx, dy, (double)o[r * HW + q], (double)want);
                }
            }
        }
    }
    assert_memory_equal(&copy, &rng, sizeof rng); /* exactly 2 draws per sample */
    for (int a = 0; a < 2 * K + 1; a++)
        for (int b = 0; b < 2 * K + 1; b++)
            assert_true(seen[a][b] > 0); /* every shift occurs */
    free(x);
    free(out);
}

static void test_translate_moves_pixel(void **state) {
    check_bright_pixel(3, 3, 11); /* centre: always stays inside */
    check_bright_pixel(0, 6, 12); /* corner: leaves the image for some shifts */
}

/* A synthetic MNIST folder: train 40 samples of 2x2, every pixel of sample i = i, label i % 10;
 * test 15 samples (gzip only, to exercise the .gz fallback), pixel 100 + i, label 3i % 10. */
static void make_fake_mnist(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/mnist", g_dir);
    mkdir(path, 0700);
    uint8_t px[40 * 4], lb[40];
    for (int i = 0; i < 40; i++) {
        for (int j = 0; j < 4; j++)
            px[i * 4 + j] = (uint8_t)i;
        lb[i] = (uint8_t)(i % 10);
    }
    uint32_t di[3] = {40, 2, 2}, dl[1] = {40};
    snprintf(path, sizeof path, "%s/mnist/train-images-idx3-ubyte", g_dir);
    write_idx(path, 0, 3, di, px);
    snprintf(path, sizeof path, "%s/mnist/train-labels-idx1-ubyte", g_dir);
    write_idx(path, 0, 1, dl, lb);
    for (int i = 0; i < 15; i++) {
        for (int j = 0; j < 4; j++)
            px[i * 4 + j] = (uint8_t)(100 + i);
        lb[i] = (uint8_t)(3 * i % 10);
    }
    di[0] = dl[0] = 15;
    snprintf(path, sizeof path, "%s/mnist/t10k-images-idx3-ubyte.gz", g_dir);
    write_idx(path, 1, 3, di, px);
    snprintf(path, sizeof path, "%s/mnist/t10k-labels-idx1-ubyte.gz", g_dir);
    write_idx(path, 1, 1, dl, lb);
}

static nn_data_cfg fake_cfg(void) {
    nn_data_cfg c = nn_data_cfg_default();
    snprintf(c.name, sizeof c.name, "mnist");
    snprintf(c.dir, sizeof c.dir, "%s", g_dir);
    return c;
}

/* Every sample's pixels and label match its id (train file encoding: pixel = id, label = id % 10). */
static void check_consistent(const nn_dataset *d, int is_test) {
    for (size_t i = 0; i < d->n; i++) {
        size_t id = d->id[i];
        double px = is_test ? 100.0 + (double)id : (double)id;
        int label = is_test ? (int)(3 * id % 10) : (int)(id % 10);
        assert_int_equal(d->y[i], label);
        for (size_t j = 0; j < 4; j++)
            assert_close(d->x[i * 4 + j], px / 255.0, 1e-7, 0);
    }
}

static void test_load_split_exclude_subset(void **state) {
    make_fake_mnist();
    nn_data_cfg cfg = fake_cfg();
    nn_dataset tr, va, te;
    nn_err err = {0};
    assert_int_equal(nn_data_load(&cfg, &tr, NULL, &te, &err), NN_OK);
    assert_int_equal(tr.n, 40);
    assert_int_equal(te.n, 15);
    assert_int_equal(tr.shape.h, 2);
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(tr.id[i], i);
    check_consistent(&tr, 0);
    check_consistent(&te, 1);
    nn_dataset_free(&tr);
    nn_dataset_free(&te);

    /* Validation = the first 5; classes 0 and 3 dropped from train only (ids 10, 13, 20, 23, 30, 33 go);
     * subset 7 = the first 7 that remain; test_subset 4 = test ids 0..3. */
    cfg.val_size = 5;
    cfg.exclude = (1u << 0) | (1u << 3);
    cfg.test_subset = 4;
    assert_int_equal(nn_data_load(&cfg, &tr, &va, &te, &err), NN_OK);
    assert_int_equal(va.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(va.id[i], i); /* holds labels 0 and 3: untouched */
    assert_int_equal(tr.n, 29);
    for (size_t i = 0; i < tr.n; i++)
        assert_true(tr.y[i] != 0 && tr.y[i] != 3);
    assert_int_equal(te.n, 4);
    check_consistent(&tr, 0);
    check_consistent(&va, 0);
    check_consistent(&te, 1);
    nn_dataset_free(&tr);
    nn_dataset_free(&va);
    nn_dataset_free(&te);
    cfg.subset = 7;
    assert_int_equal(nn_data_load(&cfg, &tr, &va, &te, &err), NN_OK);
    const size_t want[7] = {5, 6, 7, 8, 9, 11, 12};
    assert_int_equal(tr.n, 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(tr.id[i], want[i]);
    nn_dataset_free(&tr);
    nn_dataset_free(&va);
    nn_dataset_free(&te);

    /* val_size 0 with a val data set: an empty one. */
    cfg = fake_cfg();
    assert_int_equal(nn_data_load(&cfg, &tr, &va, &te, &err), NN_OK);
    assert_int_equal(va.n, 0);
    assert_int_equal(va.shape.w, 2);
    nn_dataset_free(&tr);
    nn_dataset_free(&va);
    nn_dataset_free(&te);
}

/* The ids of train after a shuffled load (val_size 6, subset 20) under seed. */
static void shuffled_ids(uint64_t seed, size_t *val_ids, size_t *train_ids) {
    nn_data_cfg cfg = fake_cfg();
    cfg.shuffle = 1;
    cfg.seed = seed;
    cfg.val_size = 6;
    cfg.subset = 20;
    nn_dataset tr, va, te;
    nn_err err = {0};
    assert_int_equal(nn_data_load(&cfg, &tr, &va, &te, &err), NN_OK);
    assert_int_equal(va.n, 6);
    assert_int_equal(tr.n, 20);
    check_consistent(&tr, 0);
    memcpy(val_ids, va.id, 6 * sizeof *val_ids);
    memcpy(train_ids, tr.id, 20 * sizeof *train_ids);
    nn_dataset_free(&tr);
    nn_dataset_free(&va);
    nn_dataset_free(&te);
}

static void test_load_shuffle(void **state) {
    make_fake_mnist();
    size_t v1[6], t1[20], v2[6], t2[20], v3[6], t3[20];
    shuffled_ids(42, v1, t1);
    shuffled_ids(42, v2, t2);
    shuffled_ids(43, v3, t3);
    assert_memory_equal(v1, v2, sizeof v1);
    assert_memory_equal(t1, t2, sizeof t1);
    assert_true(memcmp(t1, t3, sizeof t1) != 0 || memcmp(v1, v3, sizeof v1) != 0);
    /* val and train are disjoint, and the order is a shuffle (not the file order). */
    int used[40] = {0}, in_order = 1;
    for (size_t i = 0; i < 6; i++)
        used[v1[i]]++;
    for (size_t i = 0; i < 20; i++)
        used[t1[i]]++;
    for (size_t i = 0; i < 40; i++)
        assert_true(used[i] <= 1);
    for (size_t i = 1; i < 20; i++)
        in_order &= t1[i] > t1[i - 1];
    assert_false(in_order);
}

static void test_load_errors(void **state) {
    make_fake_mnist();
    nn_data_cfg cfg = fake_cfg();
    nn_dataset tr, va, te;
    nn_err err = {0};
    snprintf(cfg.name, sizeof cfg.name, "fashion-mnist"); /* not in the temp folder */
    assert_int_equal(nn_data_load(&cfg, &tr, &va, &te, &err), NN_E_IO);
    assert_non_null(strstr(err.msg, "run scripts/fetch_data.sh"));
    assert_non_null(strstr(err.msg, g_dir));
    assert_null(tr.x);
    cfg = fake_cfg();
    cfg.val_size = 40; /* leaves nothing to train on */
    assert_int_equal(nn_data_load(&cfg, &tr, &va, &te, &err), NN_E_INVAL);
    cfg.val_size = 3;
    assert_int_equal(nn_data_load(&cfg, &tr, NULL, &te, &err), NN_E_INVAL);
    /* A label file whose count disagrees with the images: a format error naming the folder. */
    char path[512];
    uint8_t lb[39] = {0};
    uint32_t dl[1] = {39};
    snprintf(path, sizeof path, "%s/mnist/train-labels-idx1-ubyte", g_dir);
    write_idx(path, 0, 1, dl, lb);
    cfg = fake_cfg();
    assert_int_equal(nn_data_load(&cfg, &tr, &va, &te, &err), NN_E_FORMAT);
    assert_non_null(strstr(err.msg, "40 images but 39 labels"));
    make_fake_mnist();
}

static void test_cfg(void **state) {
    nn_data_cfg c = nn_data_cfg_default();
    nn_err err = {0};
    assert_string_equal(c.name, "");
    assert_string_equal(c.dir, "");
    assert_true(c.lo == 0.0f && c.hi == 1.0f);
    assert_true(c.val_size == 0 && c.shuffle == 0 && c.seed == 0 && c.subset == 0 && c.exclude == 0);
    assert_int_equal(c.test_subset, 0);
    assert_int_equal(nn_data_cfg_validate(&c, &err), NN_E_INVAL); /* no name */
    snprintf(c.name, sizeof c.name, "fashion-mnist");
    assert_int_equal(nn_data_cfg_validate(&c, &err), NN_OK);
    snprintf(c.name, sizeof c.name, "mnist");
    assert_int_equal(nn_data_cfg_validate(&c, &err), NN_OK);
    nn_data_cfg b = c;
    b.lo = 1.0f;
    assert_int_equal(nn_data_cfg_validate(&b, &err), NN_E_INVAL);
    b = c;
    b.hi = INFINITY;
    assert_int_equal(nn_data_cfg_validate(&b, &err), NN_E_INVAL);
    b = c;
    b.lo = NAN;
    assert_int_equal(nn_data_cfg_validate(&b, &err), NN_E_INVAL);
    b = c;
    b.exclude = 0x3FF;
    assert_int_equal(nn_data_cfg_validate(&b, &err), NN_E_INVAL);
    b.exclude = 0x3FE; /* class 0 left */
    assert_int_equal(nn_data_cfg_validate(&b, &err), NN_OK);
    b.exclude = 1u << 10;
    assert_int_equal(nn_data_cfg_validate(&b, &err), NN_E_INVAL);
    b = c;
    b.val_size = 60000;
    assert_int_equal(nn_data_cfg_validate(&b, &err), NN_E_INVAL);
    b.val_size = 5000;
    assert_int_equal(nn_data_cfg_validate(&b, &err), NN_OK);
}

static void test_data_dir(void **state) {
    nn_data_cfg c = nn_data_cfg_default();
    char buf[600], *keep_env = getenv("TEMPER_DATA"), keep[600] = "";
    if (keep_env) snprintf(keep, sizeof keep, "%s", keep_env);
    snprintf(c.dir, sizeof c.dir, "/x/y");
    nn_data_dir(&c, buf, sizeof buf);
    assert_string_equal(buf, "/x/y");
    c.dir[0] = '\0';
    setenv("TEMPER_DATA", "/from/env", 1);
    nn_data_dir(&c, buf, sizeof buf);
    assert_string_equal(buf, "/from/env");
    unsetenv("TEMPER_DATA");
    nn_data_dir(&c, buf, sizeof buf);
    char want[600];
    snprintf(want, sizeof want, "%s/.cache/temper/data", getenv("HOME") ? getenv("HOME") : ".");
    if (getenv("HOME") && getenv("HOME")[0]) assert_string_equal(buf, want);
    if (keep_env) setenv("TEMPER_DATA", keep, 1);
}

/* The real data, when scripts/fetch_data.sh has filled the cache. Expected class counts are the published
 * ones (MNIST: LeCun et al.'s files; Fashion-MNIST: 6000/1000 per class), recounted with Python. */
static void check_real(const char *name, const size_t *train_hist, const size_t *test_hist) {
    nn_data_cfg cfg = nn_data_cfg_default();
    snprintf(cfg.name, sizeof cfg.name, "%s", name);
    char dir[600], path[700];
    struct stat st;
    nn_data_dir(&cfg, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s/train-images-idx3-ubyte", dir, name);
    int have = stat(path, &st) == 0;
    snprintf(path, sizeof path, "%s/%s/train-images-idx3-ubyte.gz", dir, name);
    have |= stat(path, &st) == 0;
    if (!have) skip();
    nn_dataset tr, te;
    nn_err err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = nn_data_load(&cfg, &tr, NULL, &te, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) fail_msg("%s", err.msg);
    if (getenv("TEMPER_TEST_VERBOSE"))
        fprintf(stderr, "%s loaded in %.3f s\n", name,
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    assert_int_equal(tr.n, 60000);
    assert_int_equal(te.n, 10000);
    assert_true(tr.shape.c == 1 && tr.shape.h == 28 && tr.shape.w == 28);
    size_t ht[10] = {0}, he[10] = {0}, sum_t = 0, sum_e = 0;
    for (size_t i = 0; i < tr.n; i++)
        ht[tr.y[i]]++;
    for (size_t i = 0; i < te.n; i++)
        he[te.y[i]]++;
    for (int c = 0; c < 10; c++) {
        assert_int_equal(ht[c], train_hist[c]);
        assert_int_equal(he[c], test_hist[c]);
        sum_t += ht[c];
        sum_e += he[c];
    }
    assert_int_equal(sum_t, 60000);
    assert_int_equal(sum_e, 10000);
    float mn = tr.x[0], mx = tr.x[0];
    for (size_t i = 0; i < tr.n * 784; i++) {
        mn = tr.x[i] < mn ? tr.x[i] : mn;
        mx = tr.x[i] > mx ? tr.x[i] : mx;
    }
    assert_true(mn == 0.0f && mx == 1.0f);
    nn_dataset_free(&tr);
    nn_dataset_free(&te);
}

static void test_real_mnist(void **state) {
    const size_t tr[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    const size_t te[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    check_real("mnist", tr, te);
}

static void test_real_fashion_mnist(void **state) {
    const size_t tr[10] = {6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000};
    const size_t te[10] = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};
    check_real("fashion-mnist", tr, te);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_valid_raw_and_gz),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_dataset_from_idx),
        cmocka_unit_test(test_translate_identity),
        cmocka_unit_test(test_translate_moves_pixel),
        cmocka_unit_test(test_load_split_exclude_subset),
        cmocka_unit_test(test_load_shuffle),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_cfg),
        cmocka_unit_test(test_data_dir),
        cmocka_unit_test(test_real_mnist),
        cmocka_unit_test(test_real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
