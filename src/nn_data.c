/* nn_data.c - MNIST / Fashion-MNIST in memory: configuration, loading, splits, class filtering, jitter.
 *
 * Order of operations in nn_data_load (all on indices into the training file, so only the samples kept
 * are ever converted to floats):
 *   1. shuffle == 1: Fisher-Yates shuffle of the training file's indices with nn_rng seeded from `seed`;
 *   2. validation = the FIRST val_size samples of that order. This matches Carlini & Wagner's reference
 *      code (nn_robust_attacks, setup_mnist.py holds out train[:5000] as validation); with shuffle == 0 and
 *      val_size = 5000 the split is theirs exactly. (The header's "from the end" wording predates this.)
 *   3. classes whose bit is set in `exclude` are dropped from the remaining training part only;
 *   4. subset > 0 keeps the first `subset` of what remains (a seeded random subset when shuffle == 1).
 * The test set is the first test_subset samples of the test file (all when 0). Every sample keeps in `id`
 * its index in its source file. Pixels: byte b -> lo + (hi - lo) * b / 255 (computed in double). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn_data.h"

#define NN_DATA_CLASSES 10
#define NN_DATA_PATH 4200       /* bytes for <dir>/<name>/<file> */
#define NN_TRANSLATE_BLOCK 1024 /* samples whose shifts are drawn before one parallel pass */

static const char *const nn_data_names[] = {"mnist", "fashion-mnist"};

nn_data_cfg nn_data_cfg_default(void) {
    nn_data_cfg c;
    memset(&c, 0, sizeof c);
    c.lo = 0.0f;
    c.hi = 1.0f;
    return c;
}

int nn_data_cfg_validate(const nn_data_cfg *cfg, nn_err *err) {
    int known = 0;
    for (size_t i = 0; i < sizeof nn_data_names / sizeof nn_data_names[0]; i++)
        if (strcmp(cfg->name, nn_data_names[i]) == 0) known = 1;
    if (!known)
        return NN_FAIL(err, NN_E_INVAL, "data set name '%.32s' unknown (mnist | fashion-mnist)", cfg->name);
    if (!isfinite(cfg->lo) || !isfinite(cfg->hi) || !(cfg->lo < cfg->hi))
        return NN_FAIL(err, NN_E_INVAL, "pixel range [%g, %g] must be finite with lo < hi", (double)cfg->lo,
                       (double)cfg->hi);
    if (cfg->val_size >= 60000)
        return NN_FAIL(err, NN_E_INVAL, "val_size %zu must be < 60000", cfg->val_size);
    uint32_t all = (1u << NN_DATA_CLASSES) - 1;
    if (cfg->exclude & ~all)
        return NN_FAIL(err, NN_E_INVAL, "exclude 0x%x names a class >= %d", (unsigned)cfg->exclude,
                       NN_DATA_CLASSES);
    if ((cfg->exclude & all) == all)
        return NN_FAIL(err, NN_E_INVAL, "exclude drops all %d classes", NN_DATA_CLASSES);
    return NN_OK;
}

void nn_data_dir(const nn_data_cfg *cfg, char *buf, size_t cap) {
    if (!cap) return;
    const char *env = getenv("TEMPER_DATA"), *home = getenv("HOME");
    if (cfg && cfg->dir[0])
        snprintf(buf, cap, "%.*s", (int)sizeof cfg->dir, cfg->dir);
    else if (env && env[0])
        snprintf(buf, cap, "%s", env);
    else
        snprintf(buf, cap, "%s/.cache/temper/data", home && home[0] ? home : ".");
}

void nn_dataset_free(nn_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    free(d->id);
    memset(d, 0, sizeof *d);
}

/* out <- the samples idx[0..m) of images/labels (idx NULL: the first m). Checks nothing: callers do. */
static int data_gather(const nn_idx *images, const nn_idx *labels, const size_t *idx, size_t m, float lo,
                       float hi, size_t n_classes, nn_dataset *out, nn_err *err) {
    size_t c = images->ndim == 4 ? images->dims[1] : 1;
    nn_shape s = {c, images->dims[images->ndim - 2], images->dims[images->ndim - 1]};
    size_t d = nn_shape_size(s); /* the dims product fits in size_t: nn_idx_read checked it */
    memset(out, 0, sizeof *out);
    out->shape = s;
    out->n_classes = n_classes;
    if (m == 0) return NN_OK;
    out->x = malloc(m * d * sizeof *out->x); /* x: [m, d]; m * d <= images->count */
    out->y = malloc(m * sizeof *out->y);
    out->id = malloc(m * sizeof *out->id);
    if (!out->x || !out->y || !out->id) {
        nn_dataset_free(out);
        return NN_FAIL(err, NN_E_NOMEM, "cannot allocate a data set of %zu samples x %zu pixels", m, d);
    }
    out->n = m;
    float lut[256];
    for (int b = 0; b < 256; b++)
        lut[b] = (float)((double)lo + ((double)hi - (double)lo) * b / 255.0);
    const uint8_t *px = images->data, *lb = labels->data;
    float *x = out->x;
    int *y = out->y;
    size_t *id = out->id;
#pragma omp parallel for schedule(static) if (m * d > 100000)
    for (size_t i = 0; i < m; i++) {
        size_t src = idx ? idx[i] : i;
        const uint8_t *p = px + src * d;
        float *q = x + i * d;
        for (size_t j = 0; j < d; j++)
            q[j] = lut[p[j]];
        y[i] = (int)lb[src];
        id[i] = src;
    }
    return NN_OK;
}

/* Images [n, h, w] (or [n, c, h, w]) and labels [n] that agree, every label < n_classes. */
static int data_check_pair(const nn_idx *images, const nn_idx *labels, size_t n_classes, nn_err *err) {
    if (!images->data || !labels->data) return NN_FAIL(err, NN_E_INVAL, "IDX file not loaded");
    if (images->ndim != 3 && images->ndim != 4)
        return NN_FAIL(err, NN_E_SHAPE, "images have %d dimensions, expected 3 [n, h, w] or 4 [n, c, h, w]",
                       images->ndim);
    if (labels->ndim != 1)
        return NN_FAIL(err, NN_E_SHAPE, "labels have %d dimensions, expected 1 [n]", labels->ndim);
    if (images->dims[0] != labels->dims[0])
        return NN_FAIL(err, NN_E_SHAPE, "%zu images but %zu labels", images->dims[0], labels->dims[0]);
    if (n_classes == 0 || n_classes > 256)
        return NN_FAIL(err, NN_E_INVAL, "n_classes %zu outside 1..256", n_classes);
    for (size_t i = 0; i < labels->count; i++)
        if (labels->data[i] >= n_classes)
            return NN_FAIL(err, NN_E_FORMAT, "label %u of sample %zu is not below %zu classes",
                           (unsigned)labels->data[i], i, n_classes);
    return NN_OK;
}

int nn_dataset_from_idx(const nn_idx *images, const nn_idx *labels, float lo, float hi, size_t n_classes,
                        nn_dataset *out, nn_err *err) {
    memset(out, 0, sizeof *out);
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
        return NN_FAIL(err, NN_E_INVAL, "pixel range [%g, %g] must be finite with lo < hi", (double)lo,
                       (double)hi);
    int rc = data_check_pair(images, labels, n_classes, err);
    if (rc) return rc;
    return data_gather(images, labels, NULL, images->dims[0], lo, hi, n_classes, out, err);
}

/* path <- <dir>/<name>/<file>, or with ".gz" if only that exists. A missing file says how to fetch it. */
static int data_find(const char *dir, const char *name, const char *file, char *path, size_t cap,
                     nn_err *err) {
    struct stat st;
    int len = snprintf(path, cap, "%s/%s/%s", dir, name, file);
    if (len < 0 || (size_t)len + 4 >= cap)
        return NN_FAIL(err, NN_E_INVAL, "data path too long: %s/%s", dir, name);
    if (stat(path, &st) == 0) return NN_OK;
    strcat(path, ".gz");
    if (stat(path, &st) == 0) return NN_OK;
    return NN_FAIL(err, NN_E_IO, "%s/%s/%s(.gz) not found: run scripts/fetch_data.sh", dir, name, file);
}

/* Reads <dir>/<name>/<prefix>-images-idx3-ubyte and the matching labels; checks they agree. */
static int data_read_pair(const char *dir, const char *name, const char *prefix, nn_idx *im, nn_idx *lb,
                          nn_err *err) {
    char path[NN_DATA_PATH], file[64];
    nn_err why = {0};
    snprintf(file, sizeof file, "%s-images-idx3-ubyte", prefix);
    int rc = data_find(dir, name, file, path, sizeof path, err);
    if (!rc) rc = nn_idx_read(path, im, err);
    if (rc) return rc;
    snprintf(file, sizeof file, "%s-labels-idx1-ubyte", prefix);
    rc = data_find(dir, name, file, path, sizeof path, err);
    if (!rc) rc = nn_idx_read(path, lb, err);
    if (rc) goto fail;
    if (im->ndim != 3)
        rc = NN_FAIL(&why, NN_E_FORMAT, "images have %d dimensions, expected 3 [n, h, w]", im->ndim);
    else if (data_check_pair(im, lb, NN_DATA_CLASSES, &why))
        rc = NN_E_FORMAT; /* inconsistent files: a format problem, whatever the generic check calls it */
    if (rc) {
        NN_FAIL(err, rc, "%s/%s: %s files: %s", dir, name, prefix, why.msg);
        goto fail;
    }
    return NN_OK;
fail:
    nn_idx_free(im);
    nn_idx_free(lb);
    return rc;
}

/* Splits the training file per steps 1-4 above: val <- order[0..v), train <- the rest filtered/capped. */
static int data_split(const nn_data_cfg *cfg, const nn_idx *im, const nn_idx *lb, nn_dataset *train,
                      nn_dataset *val, nn_err *err) {
    size_t n = lb->dims[0], v = cfg->val_size, m = 0;
    if (v >= n) return NN_FAIL(err, NN_E_INVAL, "val_size %zu leaves no training sample of %zu", v, n);
    size_t *order = malloc(n * sizeof *order);
    if (!order) return NN_FAIL(err, NN_E_NOMEM, "cannot allocate %zu indices", n);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (cfg->shuffle) {
        nn_rng rng;
        nn_rng_seed(&rng, cfg->seed);
        nn_rng_shuffle(&rng, order, n);
    }
    for (size_t i = v; i < n; i++) /* compact the kept training indices to the front of order + v */
        if (!(cfg->exclude >> lb->data[order[i]] & 1u)) order[v + m++] = order[i];
    if (cfg->subset && cfg->subset < m) m = cfg->subset;
    int rc = NN_OK;
    if (m == 0) {
        rc = NN_FAIL(err, NN_E_INVAL, "no training sample left after the split and class exclusion");
        goto fail;
    }
    rc = data_gather(im, lb, order + v, m, cfg->lo, cfg->hi, NN_DATA_CLASSES, train, err);
    if (!rc && val) rc = data_gather(im, lb, order, v, cfg->lo, cfg->hi, NN_DATA_CLASSES, val, err);
    if (rc) nn_dataset_free(train);
fail:
    free(order);
    return rc;
}

int nn_data_load(const nn_data_cfg *cfg, nn_dataset *train, nn_dataset *val, nn_dataset *test, nn_err *err) {
    nn_idx im = {0}, lb = {0};
    char dir[4096];
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (val) memset(val, 0, sizeof *val);
    int rc = nn_data_cfg_validate(cfg, err);
    if (rc) return rc;
    if (!val && cfg->val_size)
        return NN_FAIL(err, NN_E_INVAL, "val_size %zu but no val data set given", cfg->val_size);
    nn_data_dir(cfg, dir, sizeof dir);
    if (strlen(dir) + 1 >= sizeof dir)
        return NN_FAIL(err, NN_E_INVAL, "data folder name too long: %.64s...", dir);
    rc = data_read_pair(dir, cfg->name, "train", &im, &lb, err);
    if (rc) goto fail;
    rc = data_split(cfg, &im, &lb, train, val, err);
    nn_idx_free(&im);
    nn_idx_free(&lb);
    if (rc) goto fail;
    rc = data_read_pair(dir, cfg->name, "t10k", &im, &lb, err);
    if (rc) goto fail;
    if (im.dims[1] != train->shape.h || im.dims[2] != train->shape.w) {
        rc = NN_FAIL(err, NN_E_FORMAT, "%s/%s: test images are %zux%zu, training images %zux%zu", dir,
                     cfg->name, im.dims[1], im.dims[2], train->shape.h, train->shape.w);
        goto fail;
    }
    size_t k = cfg->test_subset && cfg->test_subset < im.dims[0] ? cfg->test_subset : im.dims[0];
    rc = data_gather(&im, &lb, NULL, k, cfg->lo, cfg->hi, NN_DATA_CLASSES, test, err);
    if (rc) goto fail;
    nn_idx_free(&im);
    nn_idx_free(&lb);
    return NN_OK;
fail:
    nn_idx_free(&im);
    nn_idx_free(&lb);
    nn_dataset_free(train);
    nn_dataset_free(test);
    if (val) nn_dataset_free(val);
    return rc;
}

/* out[i] <- x[i] shifted by (dx[i], dy[i]): out[c, y, x] = in[c, y - dy, x - dx], or fill outside. */
static void data_shift(const float *x, float *out, size_t n, nn_shape s, const int *dx, const int *dy,
                       float fill) {
    size_t d = nn_shape_size(s);
    long H = (long)s.h, W = (long)s.w;
#pragma omp parallel for schedule(static) if (n * d > 20000)
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < s.c; c++) {
            const float *p = x + i * d + c * s.h * s.w;
            float *q = out + i * d + c * s.h * s.w;
            for (long r = 0; r < H; r++) {
                long sr = r - dy[i];
                for (long col = 0; col < W; col++) {
                    long sc = col - dx[i];
                    q[r * W + col] = (sr >= 0 && sr < H && sc >= 0 && sc < W) ? p[sr * W + sc] : fill;
                }
            }
        }
    }
}

/* Shifts are drawn serially in sample order (dx then dy, each nn_rng_below(2k + 1) - k), a block at a
 * time, so the result does not depend on the thread count. k <= 0 copies x and draws nothing. */
void nn_data_translate(const float *x, float *out, size_t n, nn_shape s, int k, float fill, nn_rng *rng) {
    if (k <= 0) {
        memcpy(out, x, n * nn_shape_size(s) * sizeof *out);
        return;
    }
    int dx[NN_TRANSLATE_BLOCK], dy[NN_TRANSLATE_BLOCK];
    size_t span = 2 * (size_t)k + 1, d = nn_shape_size(s);
    for (size_t b0 = 0; b0 < n; b0 += NN_TRANSLATE_BLOCK) {
        size_t nb = n - b0 < NN_TRANSLATE_BLOCK ? n - b0 : NN_TRANSLATE_BLOCK;
        for (size_t i = 0; i < nb; i++) {
            dx[i] = (int)nn_rng_below(rng, span) - k;
            dy[i] = (int)nn_rng_below(rng, span) - k;
        }
        data_shift(x + b0 * d, out + b0 * d, nb, s, dx, dy, fill);
    }
}
