/* nn_layer.h - one layer = one .c file exporting a const nn_layer_ops table.
 *
 * Shapes: activations are NCHW row-major, a sample is C*H*W floats (a feature vector is C=D, H=W=1).
 * Layers are listed in the same order as the equivalent torch.nn.Sequential, one module each
 * (relu, flatten, dropout and maxpool are layers too), so parameter names are "<index>.weight"/"<index>.bias". */
#ifndef NN_LAYER_H
#define NN_LAYER_H

#include <stddef.h>

#include "nn_err.h"
#include "nn_rng.h"

typedef struct nn_shape {
    size_t c, h, w;
} nn_shape;

static inline size_t nn_shape_size(nn_shape s) { return s.c * s.h * s.w; }

enum { NN_INIT_DEFAULT = 0, NN_INIT_HE, NN_INIT_GLOROT };

/* Bits naming which nn_layer_cfg fields a layer kind accepts (YAML and model metadata use them). */
enum {
    NN_F_UNITS = 1u << 0,   /* dense: output features */
    NN_F_FILTERS = 1u << 1, /* conv2d: output channels */
    NN_F_KERNEL = 1u << 2,  /* conv2d/maxpool: square kernel size */
    NN_F_STRIDE = 1u << 3,  /* conv2d/maxpool: stride (maxpool default = kernel) */
    NN_F_PAD = 1u << 4,     /* conv2d: zero padding on each side */
    NN_F_RATE = 1u << 5,    /* dropout: drop probability in [0,1) */
    NN_F_INIT = 1u << 6     /* dense/conv2d: he | glorot (default he) */
};

/* The cfg fields' names by bit, in a fixed order (YAML keys, model-file arch keys, messages). */
typedef struct nn_layer_field {
    unsigned bit; /* NN_F_* */
    const char *name;
} nn_layer_field;
#define NN_LAYER_N_FIELDS 7
extern const nn_layer_field nn_layer_fields[NN_LAYER_N_FIELDS];

/* Configuration of one layer; fields a kind does not use stay 0. */
typedef struct nn_layer_cfg {
    char kind[16]; /* "dense", "conv2d", "maxpool", "flatten", "relu", "dropout" */
    size_t units, filters, kernel, stride, pad;
    float rate;
    int init; /* NN_INIT_* */
} nn_layer_cfg;

/* One parameter tensor of a layer, as safetensors/PyTorch see it. */
typedef struct nn_param_desc {
    const char *suffix; /* "weight" or "bias" */
    int ndim;
    size_t dims[4];
    size_t offset; /* in floats, from the layer's first parameter */
} nn_param_desc;

typedef struct nn_layer nn_layer;

typedef struct nn_layer_ops {
    const char *kind;
    unsigned fields; /* NN_F_* accepted in the cfg */
    /* Validates l->cfg against input shape l->in; sets l->out, l->n_params, l->n_aux (floats per sample
     * kept from forward to backward, e.g. a dropout mask), l->n_scratch (floats per sample of scratch,
     * shared by all layers, valid only inside one forward or backward call). */
    int (*setup)(nn_layer *l, nn_err *err);
    /* Fills l->w (n_params floats) with the initial values; NULL for parameterless layers. */
    void (*init)(nn_layer *l, nn_rng *rng);
    /* y[N, out] = f(x[N, in]). train != 0 enables training behaviour (dropout); rng is used then only. */
    void (*forward)(nn_layer *l, const float *x, float *y, size_t n, int train, nn_rng *rng);
    /* Given dy[N, out], x and y of the last forward: dx[N, in] is overwritten (skip when NULL),
     * dw[n_params] is accumulated (skip when NULL). */
    void (*backward)(nn_layer *l, const float *x, const float *y, const float *dy, float *dx, float *dw,
                     size_t n);
    /* Describes the parameter tensors (at most 2) in PyTorch layout; returns how many. NULL if none. */
    int (*params)(const nn_layer *l, nn_param_desc out[2]);
} nn_layer_ops;

struct nn_layer {
    const nn_layer_ops *ops;
    nn_layer_cfg cfg;
    nn_shape in, out;
    size_t n_params;  /* floats */
    size_t n_aux;     /* floats per sample */
    size_t n_scratch; /* floats per sample */
    float *w;         /* parameters: view into the net's flat parameter vector */
    float *aux;       /* n_aux * max_batch floats, owned by the net */
    float *scratch;   /* shared scratch, n_scratch * max_batch floats at least */
};

/* The table for kind, or NULL if unknown. */
const nn_layer_ops *nn_layer_ops_find(const char *kind);
/* NULL-terminated list of all layer kinds (for help and error messages). */
const nn_layer_ops *const *nn_layer_ops_all(void);
/* "dense, conv2d, ..." (every kind, comma-separated) into buf, truncated to cap. */
void nn_layer_kinds_list(char *buf, size_t cap);

/* A layer cfg with kind set and defaults for its fields (stride 1, init he, ...). Unknown kind: kind "" */
nn_layer_cfg nn_layer_cfg_default(const char *kind);

extern const nn_layer_ops nn_dense_ops, nn_conv2d_ops, nn_maxpool_ops, nn_flatten_ops, nn_relu_ops,
    nn_dropout_ops;

/* Fan-in/out based init helper used by dense and conv2d: w[count] ~ N(0, 2/fan_in) (he) or
 * U(-a, a), a = sqrt(6/(fan_in+fan_out)) (glorot). */
void nn_init_weights(float *w, size_t count, size_t fan_in, size_t fan_out, int init, nn_rng *rng);

/* Row-major C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C, op = transpose when trans_* != 0; arguments as
 * cblas_sgemm (lda/ldb/ldc are the stored row lengths). Unlike a plain cblas_sgemm call, the result does not
 * depend on the thread count: OpenBLAS's own threading changes the summation order with the number of
 * threads, so the larger of m and n is cut into fixed blocks, each computed by a single-threaded sgemm
 * inside one OpenMP loop. Dimensions must fit in int. Use it for every sgemm in a layer. */
void nn_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
              const float *b, size_t ldb, float beta, float *c, size_t ldc);

#endif
