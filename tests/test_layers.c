/* test_layers.c - dense, relu, flatten, dropout and the layer registry, each layer driven directly
 * through its nn_layer_ops table (no net). Gradients are checked by central differences of the scalar
 * loss L = sum(r * y) for a fixed random r, so dL/dy = r is the dy given to backward. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn_layer.h"
#include "test_util.h"

/* One layer set up on its own, with its own buffers. */
typedef struct lt {
    nn_layer l;
    size_t n;         /* batch */
    size_t din, dout; /* floats per sample */
    float *x, *y, *r, *dx, *dw, *w_mem, *aux_mem, *scratch_mem;
    int train;
    uint64_t seed; /* rng seed for every forward (dropout: the same mask each evaluation) */
} lt;

static void fill_uniform(float *a, size_t n, float lo, float hi, nn_rng *rng) {
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * nn_rng_uniform(rng);
}

static void lt_make(lt *t, nn_layer_cfg cfg, nn_shape in, size_t n, uint64_t seed) {
    memset(t, 0, sizeof *t);
    t->l.ops = nn_layer_ops_find(cfg.kind);
    assert_non_null(t->l.ops);
    t->l.cfg = cfg;
    t->l.in = in;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(t->l.ops->setup(&t->l, &err), NN_OK);
    t->n = n;
    t->din = nn_shape_size(in);
    t->dout = nn_shape_size(t->l.out);
    t->seed = seed;
    t->x = calloc(n * t->din, sizeof(float));
    t->dx = calloc(n * t->din, sizeof(float));
    t->y = calloc(n * t->dout, sizeof(float));
    t->r = calloc(n * t->dout, sizeof(float));
    t->w_mem = calloc(t->l.n_params + 1, sizeof(float));
    t->dw = calloc(t->l.n_params + 1, sizeof(float));
    t->aux_mem = calloc(t->l.n_aux * n + 1, sizeof(float));
    t->scratch_mem = calloc(t->l.n_scratch * n + 1, sizeof(float));
    t->l.w = t->w_mem;
    t->l.aux = t->aux_mem;
    t->l.scratch = t->scratch_mem;
    nn_rng rng;
    nn_rng_seed(&rng, seed + 1000);
    if (t->l.ops->init) t->l.ops->init(&t->l, &rng);
    fill_uniform(t->x, n * t->din, -1.0f, 1.0f, &rng);
    fill_uniform(t->r, n * t->dout, -1.0f, 1.0f, &rng);
    /* non-zero biases, so the bias path is exercised */
    for (size_t i = 0; i < t->l.n_params; i++)
        t->l.w[i] += 0.1f * (nn_rng_uniform(&rng) - 0.5f);
}

static void lt_free(lt *t) {
    free(t->x), free(t->dx), free(t->y), free(t->r), free(t->w_mem), free(t->dw), free(t->aux_mem);
    free(t->scratch_mem);
}

static void lt_forward(lt *t) {
    nn_rng rng;
    nn_rng_seed(&rng, t->seed);
    t->l.ops->forward(&t->l, t->x, t->y, t->n, t->train, &rng);
}

/* L = sum(r * y) after a forward; the argument is t->x or t->l.w, perturbed in place by gradcheck. */
static double lt_loss(void *ctx, const float *unused) {
    (void)unused;
    lt *t = ctx;
    lt_forward(t);
    double s = 0.0;
    for (size_t i = 0; i < t->n * t->dout; i++)
        s += (double)t->r[i] * (double)t->y[i];
    return s;
}

/* Forward + backward with dy = r: t->dx overwritten, t->dw accumulated. */
static void lt_grads(lt *t) {
    lt_forward(t);
    t->l.ops->backward(&t->l, t->x, t->y, t->r, t->dx, t->l.n_params ? t->dw : NULL, t->n);
}

static int skip_relu_kink(void *ctx, const float *x, size_t i, double h) {
    (void)ctx;
    return fabs((double)x[i]) < 2.0 * h;
}

static void check_layer(lt *t, gc_skip_fn skip, const char *what) {
    lt_grads(t);
    char name[64];
    snprintf(name, sizeof name, "%s dx", what);
    size_t nx = gradcheck(lt_loss, skip, t, t->x, t->n * t->din, t->dx, 1e-2, 1e-3, 1e-2, 64, name);
    assert_true(nx >= 16);
    if (t->l.n_params) {
        snprintf(name, sizeof name, "%s dw", what);
        size_t nw = gradcheck(lt_loss, NULL, t, t->l.w, t->l.n_params, t->dw, 1e-2, 1e-3, 1e-2, 64, name);
        assert_true(nw >= 16);
    }
}

static nn_layer_cfg dense_cfg(size_t units, int init) {
    nn_layer_cfg c = nn_layer_cfg_default("dense");
    c.units = units;
    c.init = init;
    return c;
}

static void test_dense_forward_naive(void **state) {
    (void)state;
    lt t;
    lt_make(&t, dense_cfg(5, NN_INIT_HE), (nn_shape){7, 1, 1}, 4, 1);
    lt_forward(&t);
    const float *w = t.l.w, *b = t.l.w + 5 * 7;
    for (size_t i = 0; i < 4; i++)
        for (size_t o = 0; o < 5; o++) {
            double s = b[o];
            for (size_t k = 0; k < 7; k++)
                s += (double)t.x[i * 7 + k] * (double)w[o * 7 + k];
            assert_close(t.y[i * 5 + o], s, 1e-5, 1e-5);
        }
    lt_free(&t);
}

static void test_dense_grad(void **state) {
    (void)state;
    lt t;
    lt_make(&t, dense_cfg(6, NN_INIT_GLOROT), (nn_shape){9, 1, 1}, 5, 2);
    check_layer(&t, NULL, "dense");
    lt_free(&t);
}

/* dx is overwritten, dw accumulated: a second backward on top of dw = c gives c + grad. */
static void test_dense_accumulates(void **state) {
    (void)state;
    lt t;
    lt_make(&t, dense_cfg(3, NN_INIT_HE), (nn_shape){4, 1, 1}, 2, 3);
    lt_grads(&t);
    size_t np = t.l.n_params;
    float *g = malloc(np * sizeof(float)), *gx = malloc(t.n * t.din * sizeof(float));
    memcpy(g, t.dw, np * sizeof(float));
    memcpy(gx, t.dx, t.n * t.din * sizeof(float));
    for (size_t i = 0; i < np; i++)
        t.dw[i] = 0.5f;
    for (size_t i = 0; i < t.n * t.din; i++)
        t.dx[i] = 123.0f;
    lt_grads(&t);
    for (size_t i = 0; i < np; i++)
        assert_close(t.dw[i], 0.5 + g[i], 1e-6, 1e-6);
    assert_close_array(t.dx, gx, t.n * t.din, 0, 0, "dx overwritten");
    /* dw == NULL: dx only; dx == NULL: dw only */
    t.l.ops->backward(&t.l, t.x, t.y, t.r, NULL, t.dw, t.n);
    for (size_t i = 0; i < np; i++)
        assert_close(t.dw[i], 0.5 + 2.0 * g[i], 1e-6, 1e-6);
    free(g), free(gx);
    lt_free(&t);
}

static void test_dense_rejects(void **state) {
    (void)state;
    nn_layer l;
    memset(&l, 0, sizeof l);
    l.ops = &nn_dense_ops;
    l.cfg = dense_cfg(10, NN_INIT_HE);
    l.in = (nn_shape){3, 4, 4};
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(l.ops->setup(&l, &err), NN_E_SHAPE);
    assert_non_null(strstr(err.msg, "needs flatten first"));
    l.in = (nn_shape){3, 1, 1};
    l.cfg.units = 0;
    assert_int_equal(l.ops->setup(&l, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "units"));
}

static void test_dense_params_desc(void **state) {
    (void)state;
    lt t;
    lt_make(&t, dense_cfg(3, NN_INIT_HE), (nn_shape){4, 1, 1}, 1, 4);
    nn_param_desc d[2];
    assert_int_equal(t.l.ops->params(&t.l, d), 2);
    assert_string_equal(d[0].suffix, "weight");
    assert_int_equal(d[0].ndim, 2);
    assert_int_equal(d[0].dims[0], 3);
    assert_int_equal(d[0].dims[1], 4);
    assert_int_equal(d[0].offset, 0);
    assert_string_equal(d[1].suffix, "bias");
    assert_int_equal(d[1].dims[0], 3);
    assert_int_equal(d[1].offset, 12);
    assert_int_equal(t.l.n_params, 15);
    lt_free(&t);
}

static void test_relu(void **state) {
    (void)state;
    lt t;
    lt_make(&t, nn_layer_cfg_default("relu"), (nn_shape){2, 3, 3}, 3, 5);
    lt_forward(&t);
    for (size_t i = 0; i < t.n * t.din; i++)
        assert_true(t.y[i] == (t.x[i] > 0 ? t.x[i] : 0.0f));
    check_layer(&t, skip_relu_kink, "relu");
    lt_free(&t);
}

static void test_flatten(void **state) {
    (void)state;
    lt t;
    lt_make(&t, nn_layer_cfg_default("flatten"), (nn_shape){2, 3, 4}, 2, 6);
    assert_int_equal(t.l.out.c, 24);
    assert_int_equal(t.l.out.h, 1);
    assert_int_equal(t.l.out.w, 1);
    lt_forward(&t);
    assert_memory_equal(t.x, t.y, t.n * t.din * sizeof(float));
    check_layer(&t, NULL, "flatten");
    lt_free(&t);
}

static nn_layer_cfg dropout_cfg(float rate) {
    nn_layer_cfg c = nn_layer_cfg_default("dropout");
    c.rate = rate;
    return c;
}

static void test_dropout_grad(void **state) {
    (void)state;
    lt t;
    lt_make(&t, dropout_cfg(0.5f), (nn_shape){20, 1, 1}, 4, 7);
    t.train = 1;
    lt_forward(&t);
    size_t kept = 0;
    for (size_t i = 0; i < t.n * t.din; i++) {
        assert_true(t.y[i] == 0.0f || t.y[i] == t.x[i] * 2.0f);
        kept += t.y[i] != 0.0f;
    }
    assert_true(kept > 0 && kept < t.n * t.din);
    check_layer(&t, NULL, "dropout");
    lt_free(&t);
}

/* Keep rate ~ 1 - rate, values x / (1 - rate); eval copies and its backward is the identity. */
static void test_dropout_modes(void **state) {
    (void)state;
    lt t;
    lt_make(&t, dropout_cfg(0.3f), (nn_shape){1024, 1, 1}, 64, 8);
    t.train = 1;
    lt_forward(&t);
    size_t kept = 0, total = t.n * t.din;
    for (size_t i = 0; i < total; i++) {
        if (t.y[i] != 0.0f) {
            kept++;
            assert_close(t.y[i], t.x[i] / 0.7f, 0, 1e-6);
        }
    }
    /* binomial(65536, 0.7): sd 0.0018, the bound is 5.5 sd */
    assert_close((double)kept / (double)total, 0.7, 0.01, 0);
    t.train = 0;
    lt_forward(&t);
    assert_memory_equal(t.x, t.y, total * sizeof(float));
    lt_grads(&t);
    assert_memory_equal(t.dx, t.r, total * sizeof(float));
    lt_free(&t);
}

/* The mask depends on the rng only: same seed -> same mask, whatever the thread count;
 * another seed -> another mask. 64 x 1024 elements is above the parallel threshold. */
static void test_dropout_threads(void **state) {
    (void)state;
    lt t;
    lt_make(&t, dropout_cfg(0.5f), (nn_shape){1024, 1, 1}, 64, 9);
    t.train = 1;
    size_t total = t.n * t.din;
    float *y1 = malloc(total * sizeof(float));
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    lt_forward(&t);
    memcpy(y1, t.y, total * sizeof(float));
    omp_set_num_threads(2);
    lt_forward(&t);
    omp_set_num_threads(saved);
    assert_memory_equal(y1, t.y, total * sizeof(float));
    t.seed++;
    lt_forward(&t);
    assert_memory_not_equal(y1, t.y, total * sizeof(float));
    free(y1);
    lt_free(&t);
}

static void test_dropout_rejects_rate(void **state) {
    (void)state;
    nn_layer l;
    memset(&l, 0, sizeof l);
    l.ops = &nn_dropout_ops;
    l.in = (nn_shape){4, 1, 1};
    nn_err err;
    float bad[] = {1.0f, -0.1f, NAN};
    for (size_t i = 0; i < 3; i++) {
        l.cfg = dropout_cfg(bad[i]);
        assert_int_equal(l.ops->setup(&l, &err), NN_E_INVAL);
        assert_non_null(strstr(err.msg, "rate"));
    }
}

static void test_registry(void **state) {
    (void)state;
    const char *kinds[] = {"dense", "conv2d", "maxpool", "flatten", "relu", "dropout"};
    const nn_layer_ops *const *all = nn_layer_ops_all();
    size_t n = 0;
    while (all[n])
        n++;
    assert_int_equal(n, 6);
    for (size_t i = 0; i < 6; i++) {
        const nn_layer_ops *ops = nn_layer_ops_find(kinds[i]);
        assert_non_null(ops);
        assert_string_equal(ops->kind, kinds[i]);
        assert_string_equal(nn_layer_cfg_default(kinds[i]).kind, kinds[i]);
    }
    assert_null(nn_layer_ops_find("Dense"));
    assert_null(nn_layer_ops_find(NULL));
    assert_string_equal(nn_layer_cfg_default("lstm").kind, "");
    nn_layer_cfg c = nn_layer_cfg_default("conv2d");
    assert_int_equal(c.stride, 1);
    assert_int_equal(c.pad, 0);
    assert_int_equal(c.init, NN_INIT_HE);
    assert_int_equal(nn_layer_cfg_default("maxpool").stride, 0); /* 0 = same as the kernel */
    assert_close(nn_layer_cfg_default("dropout").rate, 0.5, 0, 0);
    c = nn_layer_cfg_default("relu");
    assert_int_equal(c.units + c.filters + c.kernel + c.stride + c.pad + (size_t)c.init, 0);
}

/* Moments of 40000 draws: he has mean 0 and variance 2/fan_in; glorot stays inside [-a, a] and
 * has variance a^2/3 (uniform), a = sqrt(6/(fan_in+fan_out)). Standard errors ~0.7% of the variance. */
static void test_init_weights(void **state) {
    (void)state;
    size_t n = 40000;
    float *w = malloc(n * sizeof(float));
    nn_rng rng;
    for (int init = NN_INIT_HE; init <= NN_INIT_GLOROT; init++) {
        nn_rng_seed(&rng, 11);
        nn_init_weights(w, n, 50, 30, init, &rng);
        double m = 0, v = 0, a = sqrt(6.0 / 80.0);
        for (size_t i = 0; i < n; i++)
            m += w[i];
        m /= (double)n;
        for (size_t i = 0; i < n; i++)
            v += (w[i] - m) * (w[i] - m);
        v /= (double)n;
        double want = init == NN_INIT_HE ? 2.0 / 50.0 : a * a / 3.0;
        assert_close(m, 0.0, 4.0 * sqrt(want / (double)n), 0);
        assert_close(v, want, 0, 0.04);
        if (init == NN_INIT_GLOROT)
            for (size_t i = 0; i < n; i++)
                assert_true(fabs(w[i]) <= a);
    }
    free(w);
}

/* nn_sgemm against a double-precision triple loop for every transpose combination, with padded leading
 * dimensions and beta != 0, split over m (tall) and over n (wide); then bitwise equal with 1 and 2 threads.
 */
static void sgemm_case(size_t m, size_t n, size_t k, int ta, int tb) {
    size_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
    size_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
    float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float)), *c0 = malloc(nc * sizeof(float));
    float *c1 = malloc(nc * sizeof(float)), *c2 = malloc(nc * sizeof(float));
    nn_rng rng;
    nn_rng_seed(&rng, m * 1000 + n + (size_t)ta * 7 + (size_t)tb);
    fill_uniform(a, na, -1, 1, &rng);
    fill_uniform(b, nb, -1, 1, &rng);
    fill_uniform(c0, nc, -1, 1, &rng);
    memcpy(c1, c0, nc * sizeof(float));
    memcpy(c2, c0, nc * sizeof(float));
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    nn_sgemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 2.0f, c1, ldc);
    omp_set_num_threads(2);
    nn_sgemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 2.0f, c2, ldc);
    omp_set_num_threads(saved);
    assert_memory_equal(c1, c2, nc * sizeof(float));
    for (size_t i = 0; i < m; i += 7)
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t p = 0; p < k; p++)
                s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                     (double)(tb ? b[j * ldb + p] : b[p * ldb + j]);
            assert_close(c1[i * ldc + j], 0.5 * s + 2.0 * c0[i * ldc + j], 1e-4, 1e-4);
        }
    for (size_t i = 0; i < m; i++) /* padding columns untouched */
        for (size_t j = n; j < ldc; j++)
            assert_true(c1[i * ldc + j] == c0[i * ldc + j]);
    free(a), free(b), free(c0), free(c1), free(c2);
}

static void test_sgemm(void **state) {
    (void)state;
    for (int t = 0; t < 4; t++) {
        sgemm_case(300, 70, 300, t & 1, t >> 1); /* 4 blocks of 80 over m */
        sgemm_case(9, 1100, 120, t & 1, t >> 1); /* blocks over n, widened to 256 for the thin m */
    }
    sgemm_case(1, 1, 5, 0, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_forward_naive),
        cmocka_unit_test(test_dense_grad),
        cmocka_unit_test(test_dense_accumulates),
        cmocka_unit_test(test_dense_rejects),
        cmocka_unit_test(test_dense_params_desc),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_dropout_grad),
        cmocka_unit_test(test_dropout_modes),
        cmocka_unit_test(test_dropout_threads),
        cmocka_unit_test(test_dropout_rejects_rate),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_init_weights),
        cmocka_unit_test(test_sgemm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
