/* test_conv.c - conv2d and maxpool layers: forward against naive direct loops, finite-difference
 * gradients, configuration errors, and identical results for 1 and 2 threads.
 * The layers are driven directly through their ops tables on hand-made nn_layer structs. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "nn_layer.h"
#include "nn_rng.h"

/* A layer with its own parameters, scratch and aux for batches up to n. */
typedef struct tl {
    nn_layer l;
    size_t n;
    float *x, *y, *dy, *dx, *dw;
} tl;

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

static void fill_uniform(float *a, size_t n, float lo, float hi, nn_rng *rng) {
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * nn_rng_uniform(rng);
}

/* Sets up a layer for input shape in, batch n; fills w, x, dy with random values from seed. */
static void tl_make(tl *t, const nn_layer_ops *ops, nn_layer_cfg cfg, nn_shape in, size_t n, uint64_t seed) {
    memset(t, 0, sizeof *t);
    t->l.ops = ops;
    t->l.cfg = cfg;
    t->l.in = in;
    t->n = n;
    nn_err err;
    nn_err_clear(&err);
    int rc = ops->setup(&t->l, &err);
    if (rc) fail_msg("setup failed: %s", err.msg);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    size_t ni = nn_shape_size(in) * n, no = nn_shape_size(t->l.out) * n;
    t->l.w = xcalloc(t->l.n_params, sizeof(float));
    t->l.aux = xcalloc(t->l.n_aux * n, sizeof(float));
    t->l.scratch = xcalloc(t->l.n_scratch * n, sizeof(float));
    t->x = xcalloc(ni, sizeof(float));
    t->dx = xcalloc(ni, sizeof(float));
    t->y = xcalloc(no, sizeof(float));
    t->dy = xcalloc(no, sizeof(float));
    t->dw = xcalloc(t->l.n_params, sizeof(float));
    fill_uniform(t->l.w, t->l.n_params, -0.5f, 0.5f, &rng);
    fill_uniform(t->x, ni, -1.0f, 1.0f, &rng);
    fill_uniform(t->dy, no, -1.0f, 1.0f, &rng);
}

static void tl_free(tl *t) {
    free(t->l.w);
    free(t->l.aux);
    free(t->l.scratch);
    free(t->x);
    free(t->dx);
    free(t->y);
    free(t->dy);
    free(t->dw);
}

static nn_layer_cfg conv_cfg(size_t filters, size_t kernel, size_t stride, size_t pad) {
    nn_layer_cfg c = nn_layer_cfg_default("conv2d");
    c.filters = filters, c.kernel = kernel, c.stride = stride, c.pad = pad;
    return c;
}

static nn_layer_cfg pool_cfg(size_t kernel, size_t stride) {
    nn_layer_cfg c = nn_layer_cfg_default("maxpool");
    c.kernel = kernel, c.stride = stride;
    return c;
}

/* ---- conv2d forward vs the direct 7-loop definition ---- */

/* y[i,f,oy,ox] = b[f] + sum_{c,kh,kw} W[f,c,kh,kw] x[i,c,oy*s+kh-p,ox*s+kw-p] (0 outside), in double. */
static void naive_conv(const tl *t, double *ref) {
    const nn_layer *l = &t->l;
    size_t C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h, OW = l->out.w;
    size_t K = l->cfg.kernel, s = l->cfg.stride;
    long p = (long)l->cfg.pad;
    const float *w = l->w, *b = l->w + F * C * K * K;
    for (size_t i = 0; i < t->n; i++)
        for (size_t f = 0; f < F; f++)
            for (size_t oy = 0; oy < OH; oy++)
                for (size_t ox = 0; ox < OW; ox++) {
                    double acc = b[f];
                    for (size_t c = 0; c < C; c++)
                        for (size_t kh = 0; kh < K; kh++)
                            for (size_t kw = 0; kw < K; kw++) {
                                long iy = (long)(oy * s + kh) - p, ix = (long)(ox * s + kw) - p;
                                if (iy < 0 || ix < 0 || iy >= (long)H || ix >= (long)W) continue;
                                acc += (double)w[((f * C + c) * K + kh) * K + kw] *
                                       (double)t->x[((i * C + c) * H + (size_t)iy) * W + (size_t)ix];
                            }
                    ref[((i * F + f) * OH + oy) * OW + ox] = acc;
                }
}

typedef struct conv_case {
    size_t n, c, h, w, f, k, s, p;
} conv_case;

/* Small odd shapes, strides 1-3, pads 0-2 (a window entirely in the padding included), K = 1..3, and
 * batches that split into chunks with a last chunk of one sample (n = 10: chunks of 3, 3, 3, 1). */
static const conv_case CONV_CASES[] = {
    {2, 1, 5, 7, 3, 3, 1, 0},    {3, 2, 6, 5, 4, 3, 2, 1},  {2, 3, 7, 8, 2, 2, 2, 0},
    {5, 2, 4, 4, 3, 3, 1, 1},    {2, 3, 5, 6, 4, 1, 1, 0},  {2, 2, 5, 4, 2, 2, 3, 2},
    {10, 4, 12, 12, 8, 3, 1, 0}, {7, 3, 9, 11, 5, 3, 2, 1},
};

static void test_conv_forward_naive(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof CONV_CASES / sizeof CONV_CASES[0]; k++) {
        const conv_case *cc = &CONV_CASES[k];
        tl t;
        tl_make(&t, &nn_conv2d_ops, conv_cfg(cc->f, cc->k, cc->s, cc->p), (nn_shape){cc->c, cc->h, cc->w},
                cc->n, 100 + k);
        size_t oh = (cc->h + 2 * cc->p - cc->k) / cc->s + 1, ow = (cc->w + 2 * cc->p - cc->k) / cc->s + 1;
        assert_int_equal(t.l.out.c, cc->f);
        assert_int_equal(t.l.out.h, oh);
        assert_int_equal(t.l.out.w, ow);
        size_t no = nn_shape_size(t.l.out) * cc->n;
        double *ref = xcalloc(no, sizeof(double));
        naive_conv(&t, ref);
        t.l.ops->forward(&t.l, t.x, t.y, cc->n, 0, NULL);
        for (size_t i = 0; i < no; i++)
            if (!(fabs((double)t.y[i] - ref[i]) <= 1e-5 + 1e-5 * fabs(ref[i])))
                fail_msg("case %zu: y[%zu] = %.9g, direct convolution %.9g", k, i, (double)t.y[i], ref[i]);
        free(ref);
        tl_free(&t);
    }
}

/* Output sizes torch documents for Conv2d / MaxPool2d on known inputs (floor division). */
static void test_output_shapes(void **state) {
    (void)state;
    tl t;
    tl_make(&t, &nn_conv2d_ops, conv_cfg(32, 3, 1, 0), (nn_shape){1, 28, 28}, 1, 1);
    assert_true(t.l.out.c == 32 && t.l.out.h == 26 && t.l.out.w == 26);
    assert_int_equal(t.l.n_params, 32 * 9 + 32);
    tl_free(&t);
    tl_make(&t, &nn_conv2d_ops, conv_cfg(4, 3, 2, 1), (nn_shape){3, 7, 8}, 1, 1);
    assert_true(t.l.out.c == 4 && t.l.out.h == 4 && t.l.out.w == 4);
    tl_free(&t);
    tl_make(&t, &nn_maxpool_ops, pool_cfg(2, 0), (nn_shape){3, 7, 6}, 1, 1);
    assert_true(t.l.out.c == 3 && t.l.out.h == 3 && t.l.out.w == 3);
    tl_free(&t);
    tl_make(&t, &nn_maxpool_ops, pool_cfg(3, 2), (nn_shape){2, 8, 7}, 1, 1);
    assert_true(t.l.out.c == 2 && t.l.out.h == 3 && t.l.out.w == 3);
    tl_free(&t);
}

static void test_conv_params_desc(void **state) {
    (void)state;
    tl t;
    tl_make(&t, &nn_conv2d_ops, conv_cfg(5, 3, 1, 1), (nn_shape){2, 6, 6}, 1, 1);
    nn_param_desc d[2];
    assert_int_equal(t.l.ops->params(&t.l, d), 2);
    assert_string_equal(d[0].suffix, "weight");
    assert_int_equal(d[0].ndim, 4);
    assert_true(d[0].dims[0] == 5 && d[0].dims[1] == 2 && d[0].dims[2] == 3 && d[0].dims[3] == 3);
    assert_int_equal(d[0].offset, 0);
    assert_string_equal(d[1].suffix, "bias");
    assert_int_equal(d[1].ndim, 1);
    assert_int_equal(d[1].dims[0], 5);
    assert_int_equal(d[1].offset, 5 * 2 * 9);
    assert_int_equal(t.l.n_params, 5 * 2 * 9 + 5);
    assert_null(nn_maxpool_ops.params);
    tl_free(&t);
}

/* He: N(0, 2/fan_in), fan_in = C*K*K; Glorot: U(-a, a), a = sqrt(6/(C*K*K + F*K*K)); bias 0. */
static void test_conv_init(void **state) {
    (void)state;
    for (int init = NN_INIT_HE; init <= NN_INIT_GLOROT; init++) {
        tl t;
        nn_layer_cfg c = conv_cfg(64, 3, 1, 0);
        c.init = init;
        tl_make(&t, &nn_conv2d_ops, c, (nn_shape){16, 5, 5}, 1, 7);
        nn_rng rng;
        nn_rng_seed(&rng, 3);
        t.l.ops->init(&t.l, &rng);
        size_t nw = 64 * 16 * 9;
        double fan_in = 16 * 9, fan_out = 64 * 9, a = sqrt(6.0 / (fan_in + fan_out)), ss = 0.0, mx = 0.0;
        for (size_t i = 0; i < nw; i++)
            ss += (double)t.l.w[i] * t.l.w[i], mx = fmax(mx, fabs(t.l.w[i]));
        double var = ss / (double)nw, want = init == NN_INIT_HE ? 2.0 / fan_in : a * a / 3.0;
        assert_close(var, want, 0.0, 0.06); /* 9216 draws: the variance estimate's sd is ~1.5% */
        if (init == NN_INIT_GLOROT) assert_true(mx <= a);
        for (size_t f = 0; f < 64; f++)
            assert_true(t.l.w[nw + f] == 0.0f);
        tl_free(&t);
    }
}

/* ---- finite-difference gradients, L = sum(r * y) ---- */

typedef struct gc_ctx {
    tl *t;
    const float *r; /* the weights r of L; also the dy given to backward */
} gc_ctx;

static double gc_loss(void *ctx, const float *unused) {
    (void)unused;
    gc_ctx *g = ctx;
    tl *t = g->t;
    t->l.ops->forward(&t->l, t->x, t->y, t->n, 0, NULL);
    size_t no = nn_shape_size(t->l.out) * t->n;
    double s = 0.0;
    for (size_t i = 0; i < no; i++)
        s += (double)g->r[i] * (double)t->y[i];
    return s;
}

/* Runs backward with dy = r into dx (pre-filled with junk: must be overwritten) and dw (pre-filled with
 * 0.25: must be accumulated), then checks dx, dW and db by central differences. */
static void conv_gradcheck(const conv_case *cc, uint64_t seed) {
    tl t;
    tl_make(&t, &nn_conv2d_ops, conv_cfg(cc->f, cc->k, cc->s, cc->p), (nn_shape){cc->c, cc->h, cc->w}, cc->n,
            seed);
    size_t ni = nn_shape_size(t.l.in) * t.n, np = t.l.n_params, nwt = np - cc->f;
    for (size_t i = 0; i < ni; i++)
        t.dx[i] = 1e30f;
    for (size_t i = 0; i < np; i++)
        t.dw[i] = 0.25f;
    t.l.ops->forward(&t.l, t.x, t.y, t.n, 1, NULL);
    t.l.ops->backward(&t.l, t.x, t.y, t.dy, t.dx, t.dw, t.n);
    for (size_t i = 0; i < np; i++)
        t.dw[i] -= 0.25f;
    gc_ctx g = {&t, t.dy};
    /* L is linear in x, W and b, so central differences are exact up to float rounding: h can be large. */
    size_t k = gradcheck(gc_loss, NULL, &g, t.x, ni, t.dx, 0.05, 1e-3, 1e-3, 64, "conv dx");
    k += gradcheck(gc_loss, NULL, &g, t.l.w, nwt, t.dw, 0.05, 2e-3, 1e-3, 64, "conv dW");
    k += gradcheck(gc_loss, NULL, &g, t.l.w + nwt, cc->f, t.dw + nwt, 0.05, 2e-3, 1e-3, 64, "conv db");
    assert_true(k >= 3);
    /* dx-only and dw-only calls give the same numbers as the joint call */
    float *dx2 = xcalloc(ni, sizeof(float)), *dw2 = xcalloc(np, sizeof(float));
    t.l.ops->backward(&t.l, t.x, t.y, t.dy, dx2, NULL, t.n);
    t.l.ops->backward(&t.l, t.x, t.y, t.dy, NULL, dw2, t.n);
    assert_memory_equal(dx2, t.dx, ni * sizeof(float));
    assert_close_array(dw2, t.dw, np, 1e-6, 1e-6, "dw alone");
    free(dx2);
    free(dw2);
    tl_free(&t);
}

static void test_conv_gradcheck(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof CONV_CASES / sizeof CONV_CASES[0]; k++)
        conv_gradcheck(&CONV_CASES[k], 200 + k);
}

/* ---- maxpool ---- */

/* Direct definition: the first maximum of each window in row-major order (torch). */
static void naive_pool(const tl *t, float *ref, size_t *arg) {
    const nn_layer *l = &t->l;
    size_t H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, K = l->cfg.kernel;
    size_t s = l->cfg.stride ? l->cfg.stride : K;
    for (size_t q = 0; q < t->n * l->in.c; q++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                size_t best = q * H * W + oy * s * W + ox * s;
                for (size_t a = 0; a < K; a++)
                    for (size_t b = 0; b < K; b++) {
                        size_t o = q * H * W + (oy * s + a) * W + ox * s + b;
                        if (t->x[o] > t->x[best]) best = o;
                    }
                ref[(q * OH + oy) * OW + ox] = t->x[best];
                if (arg) arg[(q * OH + oy) * OW + ox] = best;
            }
}

typedef struct pool_case {
    size_t n, c, h, w, k, s;
} pool_case;

/* 2x2/2 (the fast path), overlapping 3/2 and 2/1, 3/3 with leftover rows and columns, 1/1. */
static const pool_case POOL_CASES[] = {
    {2, 3, 6, 6, 2, 0}, {2, 2, 7, 8, 3, 2}, {3, 2, 5, 6, 2, 1},
    {2, 2, 8, 7, 3, 3}, {2, 1, 3, 4, 1, 1}, {2, 2, 7, 9, 2, 2},
};

static void test_pool_forward_naive(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof POOL_CASES / sizeof POOL_CASES[0]; k++) {
        const pool_case *pc = &POOL_CASES[k];
        tl t;
        tl_make(&t, &nn_maxpool_ops, pool_cfg(pc->k, pc->s), (nn_shape){pc->c, pc->h, pc->w}, pc->n, 300 + k);
        size_t no = nn_shape_size(t.l.out) * pc->n;
        float *ref = xcalloc(no, sizeof(float));
        naive_pool(&t, ref, NULL);
        t.l.ops->forward(&t.l, t.x, t.y, pc->n, 0, NULL);
        assert_memory_equal(t.y, ref, no * sizeof(float));
        free(ref);
        tl_free(&t);
    }
}

/* Skip coordinate i when some window holding it has another element within 2h of it (a near tie). */
static int pool_skip(void *ctx, const float *x, size_t i, double h) {
    const nn_layer *l = &((gc_ctx *)ctx)->t->l;
    size_t H = l->in.h, W = l->in.w, K = l->cfg.kernel, s = l->cfg.stride ? l->cfg.stride : K;
    size_t q = i / (H * W), iy = i % (H * W) / W, ix = i % W;
    for (size_t oy = 0; oy < l->out.h; oy++)
        for (size_t ox = 0; ox < l->out.w; ox++) {
            if (iy < oy * s || iy >= oy * s + K || ix < ox * s || ix >= ox * s + K) continue;
            for (size_t a = 0; a < K; a++)
                for (size_t b = 0; b < K; b++) {
                    size_t o = q * H * W + (oy * s + a) * W + ox * s + b;
                    if (o != i && fabs((double)x[o] - (double)x[i]) <= 2.0 * h) return 1;
                }
        }
    return 0;
}

static void test_pool_gradcheck(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof POOL_CASES / sizeof POOL_CASES[0]; k++) {
        const pool_case *pc = &POOL_CASES[k];
        tl t;
        tl_make(&t, &nn_maxpool_ops, pool_cfg(pc->k, pc->s), (nn_shape){pc->c, pc->h, pc->w}, pc->n, 400 + k);
        size_t ni = nn_shape_size(t.l.in) * t.n;
        for (size_t i = 0; i < ni; i++)
            t.dx[i] = 1e30f;
        t.l.ops->forward(&t.l, t.x, t.y, t.n, 1, NULL);
        t.l.ops->backward(&t.l, t.x, t.y, t.dy, t.dx, NULL, t.n);
        gc_ctx g = {&t, t.dy};
        size_t checked = gradcheck(gc_loss, pool_skip, &g, t.x, ni, t.dx, 1e-3, 1e-3, 1e-3, 64, "maxpool dx");
        assert_true(checked >= 16);
        tl_free(&t);
    }
}

/* Ties go to the first element of the window in row-major order; a NaN in a window propagates and takes
 * the gradient (torch's rule), wherever it sits in the window. */
static void test_pool_ties_and_nan(void **state) {
    (void)state;
    for (size_t k = 2; k <= 3; k++)                /* 2: the 2x2/2 fast path; 3: the general path */
        for (size_t pos = 0; pos < k * k; pos++) { /* NaN at each position of the second window */
            tl t;
            tl_make(&t, &nn_maxpool_ops, pool_cfg(k, 0), (nn_shape){1, k, 2 * k}, 1, 5);
            for (size_t i = 0; i < 2 * k * k; i++)
                t.x[i] = 1.0f;
            size_t nan_at = (pos / k) * 2 * k + k + pos % k;
            t.x[nan_at] = NAN;
            t.dy[0] = 3.0f, t.dy[1] = 5.0f;
            t.l.ops->forward(&t.l, t.x, t.y, 1, 0, NULL);
            assert_true(t.y[0] == 1.0f);
            assert_true(isnan(t.y[1]));
            t.l.ops->backward(&t.l, t.x, t.y, t.dy, t.dx, NULL, 1);
            for (size_t i = 0; i < 2 * k * k; i++) {
                float want = i == 0 ? 3.0f : i == nan_at ? 5.0f : 0.0f;
                if (t.dx[i] != want)
                    fail_msg("k %zu, NaN at %zu: dx[%zu] = %g, want %g", k, nan_at, i, (double)t.dx[i],
                             (double)want);
            }
            tl_free(&t);
        }
}

/* ---- configuration errors ---- */

static void expect_setup_error(const nn_layer_ops *ops, nn_layer_cfg cfg, nn_shape in, int code,
                               const char *word) {
    nn_layer l;
    memset(&l, 0, sizeof l);
    l.ops = ops, l.cfg = cfg, l.in = in;
    nn_err err;
    nn_err_clear(&err);
    int rc = ops->setup(&l, &err);
    if (rc != code) fail_msg("%s: code %d, want %d (%s)", ops->kind, rc, code, err.msg);
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, word)) fail_msg("message \"%s\" does not mention \"%s\"", err.msg, word);
}

static void test_bad_configs(void **state) {
    (void)state;
    nn_shape in = {2, 6, 6};
    expect_setup_error(&nn_conv2d_ops, conv_cfg(0, 3, 1, 0), in, NN_E_INVAL, "filters");
    expect_setup_error(&nn_conv2d_ops, conv_cfg(4, 0, 1, 0), in, NN_E_INVAL, "kernel");
    expect_setup_error(&nn_conv2d_ops, conv_cfg(4, 3, 0, 0), in, NN_E_INVAL, "stride");
    expect_setup_error(&nn_conv2d_ops, conv_cfg(4, 7, 1, 0), in, NN_E_SHAPE, "kernel 7");
    expect_setup_error(&nn_conv2d_ops, conv_cfg(4, 3, 1, 0), (nn_shape){2, 6, 2}, NN_E_SHAPE, "empty");
    nn_layer_cfg c = conv_cfg(4, 3, 1, 0);
    c.init = 42;
    expect_setup_error(&nn_conv2d_ops, c, in, NN_E_INVAL, "init");
    expect_setup_error(&nn_maxpool_ops, pool_cfg(0, 0), in, NN_E_INVAL, "kernel");
    expect_setup_error(&nn_maxpool_ops, pool_cfg(7, 0), in, NN_E_SHAPE, "kernel 7");
    c = pool_cfg(2, 2);
    c.pad = 1;
    expect_setup_error(&nn_maxpool_ops, c, in, NN_E_INVAL, "pad");
    /* kernel 7 fits once padding makes the input 8x8: not an error */
    nn_layer l;
    memset(&l, 0, sizeof l);
    l.cfg = conv_cfg(4, 7, 1, 1), l.in = in;
    assert_int_equal(nn_conv2d_ops.setup(&l, NULL), NN_OK);
    assert_true(l.out.h == 2 && l.out.w == 2);
}

/* ---- thread count ---- */

/* Runs forward + backward (dx and dw) with `threads` threads; returns y, dx, dw concatenated. */
static float *run_threads(const nn_layer_ops *ops, nn_layer_cfg cfg, nn_shape in, size_t n, int threads,
                          size_t *len) {
    tl t;
    tl_make(&t, ops, cfg, in, n, 77);
    omp_set_num_threads(threads);
    t.l.ops->forward(&t.l, t.x, t.y, n, 1, NULL);
    t.l.ops->backward(&t.l, t.x, t.y, t.dy, t.dx, t.l.n_params ? t.dw : NULL, n);
    size_t no = nn_shape_size(t.l.out) * n, ni = nn_shape_size(in) * n;
    *len = no + ni + t.l.n_params;
    float *out = xcalloc(*len, sizeof(float));
    memcpy(out, t.y, no * sizeof(float));
    memcpy(out + no, t.dx, ni * sizeof(float));
    memcpy(out + no + ni, t.dw, t.l.n_params * sizeof(float));
    tl_free(&t);
    return out;
}

static void test_thread_count(void **state) {
    (void)state;
    int keep = omp_get_max_threads();
    struct {
        const nn_layer_ops *ops;
        nn_layer_cfg cfg;
        nn_shape in;
        size_t n;
    } cases[] = {
        {&nn_conv2d_ops, conv_cfg(16, 3, 1, 1), {8, 14, 14}, 18}, /* 4 chunks of 5, 5, 5, 3 */
        {&nn_conv2d_ops, conv_cfg(8, 3, 2, 0), {3, 28, 28}, 9},
        {&nn_conv2d_ops, conv_cfg(32, 3, 1, 0), {32, 26, 26}, 1}, /* one chunk: one thread works */
        {&nn_maxpool_ops, pool_cfg(2, 0), {16, 24, 24}, 8},
        {&nn_maxpool_ops, pool_cfg(3, 2), {8, 15, 15}, 8},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t l1, l2;
        float *a = run_threads(cases[k].ops, cases[k].cfg, cases[k].in, cases[k].n, 1, &l1);
        float *b = run_threads(cases[k].ops, cases[k].cfg, cases[k].in, cases[k].n, 2, &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(a, b, l1 * sizeof(float));
        free(a);
        free(b);
    }
    omp_set_num_threads(keep);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_forward_naive), cmocka_unit_test(test_output_shapes),
        cmocka_unit_test(test_conv_params_desc),   cmocka_unit_test(test_conv_init),
        cmocka_unit_test(test_conv_gradcheck),     cmocka_unit_test(test_pool_forward_naive),
        cmocka_unit_test(test_pool_gradcheck),     cmocka_unit_test(test_pool_ties_and_nan),
        cmocka_unit_test(test_bad_configs),        cmocka_unit_test(test_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
