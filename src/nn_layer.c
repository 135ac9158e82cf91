/* nn_layer.c - the registry of layer kinds, per-kind config defaults, and the weight-init helper.
 * Adding a layer kind = one .c file exporting its nn_layer_ops table + one entry in KINDS below. */
#include "nn_layer.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const nn_layer_field nn_layer_fields[NN_LAYER_N_FIELDS] = {
    {NN_F_UNITS, "units"}, {NN_F_FILTERS, "filters"}, {NN_F_KERNEL, "kernel"}, {NN_F_STRIDE, "stride"},
    {NN_F_PAD, "pad"},     {NN_F_RATE, "rate"},       {NN_F_INIT, "init"}};

/* nn_sgemm blocks: about GEMM_BLOCK rows/columns, and at least GEMM_BLOCK_WORK multiply-adds each so that a
 * thin matrix is not cut into calls too small for sgemm to be efficient. Sizes only, never thread counts. */
#define GEMM_BLOCK 128
#define GEMM_BLOCK_WORK 262144.0

/* NULL-terminated; order = the order kinds are listed in help and error messages. */
static const nn_layer_ops *const KINDS[] = {
    &nn_dense_ops, &nn_conv2d_ops, &nn_maxpool_ops, &nn_flatten_ops, &nn_relu_ops, &nn_dropout_ops, NULL};

void nn_layer_kinds_list(char *buf, size_t cap) {
    size_t pos = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; KINDS[i] && pos < cap; i++) {
        int w = snprintf(buf + pos, cap - pos, "%s%s", i ? ", " : "", KINDS[i]->kind);
        if (w < 0) break;
        pos += (size_t)w;
    }
}

const nn_layer_ops *nn_layer_ops_find(const char *kind) {
    if (!kind) return NULL;
    for (size_t i = 0; KINDS[i]; i++)
        if (strcmp(KINDS[i]->kind, kind) == 0) return KINDS[i];
    return NULL;
}

const nn_layer_ops *const *nn_layer_ops_all(void) {
    return KINDS;
}

/* Defaults follow torch where torch has one: stride 1 and pad 0 for conv2d, maxpool stride 0 meaning
 * "same as the kernel" (torch's MaxPool2d default), dropout rate 0.5, he init. Sizes torch requires
 * (units, filters, kernel) stay 0 = "not given", which setup rejects. */
nn_layer_cfg nn_layer_cfg_default(const char *kind) {
    nn_layer_cfg c;
    memset(&c, 0, sizeof c);
    const nn_layer_ops *ops = nn_layer_ops_find(kind);
    if (!ops) return c; /* kind "" */
    strncpy(c.kind, ops->kind, sizeof c.kind - 1);
    if (ops->fields & NN_F_STRIDE) c.stride = strcmp(ops->kind, "maxpool") == 0 ? 0 : 1;
    if (ops->fields & NN_F_RATE) c.rate = 0.5f;
    if (ops->fields & NN_F_INIT) c.init = NN_INIT_HE;
    return c;
}

/* w[count]: he ~ N(0, 2/fan_in); glorot ~ U(-a, a), a = sqrt(6/(fan_in+fan_out)). Draws in index order. */
void nn_init_weights(float *w, size_t count, size_t fan_in, size_t fan_out, int init, nn_rng *rng) {
    if (init == NN_INIT_GLOROT) {
        double a = sqrt(6.0 / (double)(fan_in + fan_out));
        for (size_t i = 0; i < count; i++)
            w[i] = (float)((2.0 * nn_rng_uniform_d(rng) - 1.0) * a);
    } else {
        double sd = sqrt(2.0 / (double)(fan_in ? fan_in : 1));
        for (size_t i = 0; i < count; i++)
            w[i] = (float)((double)nn_rng_normal(rng) * sd);
    }
}

/* Block length for a split dimension d whose lines cost per_line multiply-adds each: lines enough for
 * GEMM_BLOCK_WORK (a multiple of 64), else an even number of blocks of about GEMM_BLOCK, rounded up to 8
 * (1200 -> 10 x 120: an even count shares evenly between two threads; measured ~5% faster than 64s). */
static size_t gemm_block(size_t d, double per_line) {
    if (per_line * GEMM_BLOCK < GEMM_BLOCK_WORK) {
        size_t blk = (size_t)ceil(GEMM_BLOCK_WORK / per_line);
        return (blk + 63) / 64 * 64;
    }
    size_t nb = 2 * ((d + 2 * GEMM_BLOCK - 1) / (2 * GEMM_BLOCK)), blk = (d + nb - 1) / nb;
    return (blk + 7) / 8 * 8;
}

/* The larger of m and n is cut into nb blocks of blk (the last one shorter); block i is
 * C[rows o..o+len) = op(A)[rows o..] op(B) (split over m) or C[:, o..o+len) = op(A) op(B)[:, o..] (over n).
 * The OpenMP region is always active, so OpenBLAS runs each call on one thread whatever the team size. */
void nn_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
              const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    if (m == 0 || n == 0) return;
    int split_m = m >= n;
    size_t d = split_m ? m : n, other = split_m ? n : m;
    size_t blk = gemm_block(d, (double)other * (double)(k ? k : 1)), nb = (d + blk - 1) / blk;
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nb; i++) {
        size_t o = i * blk, len = d - o < blk ? d - o : blk;
        const float *ai = a, *bi = b;
        float *ci;
        if (split_m) {
            ai = trans_a ? a + o : a + o * lda;
            ci = c + o * ldc;
        } else {
            bi = trans_b ? b + o * ldb : b + o;
            ci = c + o;
        }
        cblas_sgemm(CblasRowMajor, ta, tb, (int)(split_m ? len : m), (int)(split_m ? n : len), (int)k, alpha,
                    ai, (int)lda, bi, (int)ldb, beta, ci, (int)ldc);
    }
}
