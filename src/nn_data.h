/* nn_data.h - IDX files, the MNIST / Fashion-MNIST data sets, splits, subsets, class filtering, jitter.
 *
 * Data live in a cache folder outside git: $TEMPER_DATA if set, else $HOME/.cache/temper/data;
 * data set `name` is read from <dir>/<name>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 * (scripts/fetch_data.sh puts them there and checks the pinned sha256 of each file). */
#ifndef NN_DATA_H
#define NN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "nn_err.h"
#include "nn_layer.h"
#include "nn_rng.h"

/* A parsed IDX file. Only unsigned-byte data (type 0x08) is accepted. */
typedef struct nn_idx {
    int ndim;         /* 1..4 */
    size_t dims[4];
    size_t count;     /* product of dims */
    uint8_t *data;    /* count bytes, owned */
} nn_idx;

/* Reads an IDX file, raw or gzip-compressed (detected by content). Rejects bad magic, unsupported
 * type, ndim outside 1..4, zero dims, truncated or over-long data, naming the file. */
int nn_idx_read(const char *path, nn_idx *out, nn_err *err);
void nn_idx_free(nn_idx *idx);

/* A data set held in memory: x[n, C*H*W] floats in [lo, hi], y[n] labels in [0, n_classes). */
typedef struct nn_dataset {
    size_t n;
    nn_shape shape;
    size_t n_classes;
    float *x;   /* owned */
    int *y;     /* owned */
    size_t *id; /* owned; index of each sample in its source file (for reports) */
} nn_dataset;

void nn_dataset_free(nn_dataset *d);

typedef struct nn_data_cfg {
    char name[32];      /* "mnist" | "fashion-mnist" */
    char dir[512];      /* cache folder; "" = $TEMPER_DATA or $HOME/.cache/temper/data */
    float lo, hi;       /* pixel range: byte 0 -> lo, 255 -> hi. Default [0, 1]; Carlini: [-0.5, 0.5] */
    size_t val_size;    /* the FIRST val_size samples of the (shuffled or not) training file (Carlini: 5000) */
    int shuffle;        /* shuffle the training file before the validation split; default 0 */
    uint64_t seed;      /* for shuffle and subset */
    size_t subset;      /* keep at most this many training samples (after the split, filtering); 0 = all */
    uint32_t exclude;   /* bit c set: drop class c from the training set (not from val/test) */
    size_t test_subset; /* keep the first this many test samples; 0 = all */
} nn_data_cfg;

nn_data_cfg nn_data_cfg_default(void);
/* Name known, lo < hi, finite, val_size < 60000, exclude leaves at least one class. */
int nn_data_cfg_validate(const nn_data_cfg *cfg, nn_err *err);
/* The resolved cache folder for cfg into buf. */
void nn_data_dir(const nn_data_cfg *cfg, char *buf, size_t cap);

/* Loads train (minus validation), val (may end up n=0) and test according to cfg.
 * val may be NULL when val_size == 0. A missing file's message says to run scripts/fetch_data.sh. */
int nn_data_load(const nn_data_cfg *cfg, nn_dataset *train, nn_dataset *val, nn_dataset *test, nn_err *err);

/* Builds a data set from two parsed IDX files (images [n, h, w], labels [n]); checks they agree. */
int nn_dataset_from_idx(const nn_idx *images, const nn_idx *labels, float lo, float hi, size_t n_classes,
                        nn_dataset *out, nn_err *err);

/* Random translation by up to k pixels in each direction (independent dx, dy per sample, uniform in
 * [-k, k]); pixels shifted in are `fill`. x, out: [n, C, H, W]; out must not alias x. */
void nn_data_translate(const float *x, float *out, size_t n, nn_shape s, int k, float fill, nn_rng *rng);

#endif
