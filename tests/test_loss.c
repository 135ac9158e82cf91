/* test_loss.c - softmax, CE, soft-target CE, KL, argmax: gradients, closed forms, stability, determinism. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include "test_util.h"

#include "nn_loss.h"
#include "nn_rng.h"

enum { K_CE = 0, K_SOFT, K_KL };

typedef struct loss_ctx {
    int kind;
    const int *y;
    const float *p;
    size_t n, k;
    float T;
    int t2;
} loss_ctx;

static double eval_loss(const loss_ctx *c, const float *z, float *dz) {
    switch (c->kind) {
    case K_CE:
        return nn_loss_ce(z, c->y, c->n, c->k, c->T, dz);
    case K_SOFT:
        return nn_loss_soft_ce(z, c->p, c->n, c->k, c->T, c->t2, dz);
    default:
        return nn_loss_kl(z, c->p, c->n, c->k, c->T, c->t2, dz);
    }
}

static double gc_loss(void *ctx, const float *z) {
    return eval_loss(ctx, z, NULL);
}

static void fill_normal(float *x, size_t n, float scale, nn_rng *rng) {
    for (size_t i = 0; i < n; i++)
        x[i] = scale * nn_rng_normal(rng);
}

/* Random target distributions p[n, k]: softmax of normal logits (rows sum to 1). */
static void fill_dist(float *p, size_t n, size_t k, nn_rng *rng) {
    float *t = malloc(n * k * sizeof *t);
    fill_normal(t, n * k, 1.5f, rng);
    nn_softmax(t, n, k, 1.0f, p);
    free(t);
}

#define N 4
#define K 6

/* Gradcheck of one loss configuration; z scaled with T so the softmax is neither flat nor saturated. */
static void check_grad(int kind, float T, int t2, const char *what) {
    nn_rng rng;
    nn_rng_seed(&rng, 42);
    float z[N * K], dz[N * K], p[N * K];
    int y[N] = {0, 3, 5, 2};
    fill_normal(z, N * K, 2.0f * T, &rng);
    fill_dist(p, N, K, &rng);
    loss_ctx c = {kind, y, p, N, K, T, t2};
    double L = eval_loss(&c, z, dz);
    assert_true(isfinite(L));
    double h = 1e-2 * T; /* relative to the logit scale */
    size_t checked = gradcheck(gc_loss, NULL, &c, z, N * K, dz, h, 1e-6, 2e-3, 64, what);
    assert_int_equal(checked, N * K);
}

static void test_ce_grad(void **s) {
    (void)s;
    check_grad(K_CE, 1.0f, 0, "ce T=1");
    check_grad(K_CE, 20.0f, 0, "ce T=20");
}

static void test_soft_ce_grad(void **s) {
    (void)s;
    check_grad(K_SOFT, 1.0f, 0, "soft ce T=1");
    check_grad(K_SOFT, 20.0f, 0, "soft ce T=20");
    check_grad(K_SOFT, 1.0f, 1, "soft ce T=1 t2");
    check_grad(K_SOFT, 20.0f, 1, "soft ce T=20 t2");
}

static void test_kl_grad(void **s) {
    (void)s;
    check_grad(K_KL, 1.0f, 0, "kl T=1");
    check_grad(K_KL, 20.0f, 0, "kl T=20");
    check_grad(K_KL, 20.0f, 1, "kl T=20 t2");
}

/* Closed forms: equal logits -> CE = log k and dz = (1/k - onehot)/n; k=2 softmax = logistic. */
static void test_closed_forms(void **s) {
    (void)s;
    float z[2 * 5] = {0}, dz[2 * 5];
    for (int j = 0; j < 5; j++)
        z[5 + j] = 3.25f; /* a constant shift changes nothing */
    int y[2] = {1, 4};
    assert_close(nn_loss_ce(z, y, 2, 5, 7.0f, dz), log(5.0), 1e-12, 1e-12);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 5; j++)
            assert_close(dz[i * 5 + j], (0.2 - (j == y[i])) / (7.0 * 2), 1e-8, 1e-6);
    float z2[2] = {1.5f, -0.5f}, p2[2];
    nn_softmax(z2, 1, 2, 4.0f, p2);
    assert_close(p2[0], 1.0 / (1.0 + exp(-2.0 / 4.0)), 1e-7, 1e-6);
    assert_close(p2[1], 1.0 / (1.0 + exp(2.0 / 4.0)), 1e-7, 1e-6);
}

/* Soft CE with one-hot targets is CE; t2 scales loss and gradient by T^2; KL = soft CE - H(p). */
static void test_consistency(void **s) {
    (void)s;
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    const float T = 5.0f;
    float z[N * K], p[N * K], onehot[N * K] = {0};
    float d1[N * K], d2[N * K], d3[N * K];
    int y[N] = {2, 0, 5, 1};
    fill_normal(z, N * K, 6.0f, &rng);
    fill_dist(p, N, K, &rng);
    for (int i = 0; i < N; i++)
        onehot[i * K + y[i]] = 1.0f;
    double ce = nn_loss_ce(z, y, N, K, T, d1);
    assert_close(nn_loss_soft_ce(z, onehot, N, K, T, 0, d2), ce, 1e-12, 1e-12);
    assert_close_array(d2, d1, N * K, 1e-9, 1e-6, "soft ce one-hot grad");
    double s0 = nn_loss_soft_ce(z, p, N, K, T, 0, d1);
    double s1 = nn_loss_soft_ce(z, p, N, K, T, 1, d2);
    assert_close(s1, T * T * s0, 1e-12, 1e-12);
    for (int i = 0; i < N * K; i++)
        d1[i] *= T * T;
    assert_close_array(d2, d1, N * K, 1e-9, 1e-6, "t2 grad scale");
    double H = 0.0; /* entropy of p, row mean, computed here in double */
    for (int i = 0; i < N * K; i++)
        H -= (double)p[i] * log((double)p[i]);
    H /= N;
    assert_close(nn_loss_kl(z, p, N, K, T, 0, d3), s0 - H, 1e-9, 1e-9);
    nn_loss_soft_ce(z, p, N, K, T, 0, d1);
    assert_close_array(d3, d1, N * K, 0, 0, "kl grad == soft ce grad");
}

/* KL >= 0 for random pairs, == 0 when p = softmax(z/T); zero target entries are allowed. */
static void test_kl_properties(void **s) {
    (void)s;
    nn_rng rng;
    nn_rng_seed(&rng, 11);
    float z[N * K], p[N * K], dz[N * K];
    for (int trial = 0; trial < 20; trial++) {
        float T = trial % 2 ? 20.0f : 1.0f;
        fill_normal(z, N * K, 3.0f * T, &rng);
        fill_dist(p, N, K, &rng);
        assert_true(nn_loss_kl(z, p, N, K, T, trial % 3 == 0, NULL) >= 0.0);
        nn_softmax(z, N, K, T, p);
        assert_close(nn_loss_kl(z, p, N, K, T, 0, dz), 0.0, 1e-6, 0);
        for (int i = 0; i < N * K; i++)
            assert_close(dz[i], 0.0, 1e-7, 0);
    }
    float zz[3] = {1.0f, 2.0f, 3.0f}, pz[3] = {0.0f, 1.0f, 0.0f};
    double kl = nn_loss_kl(zz, pz, 1, 3, 1.0f, 0, NULL); /* = -log q_1 */
    assert_close(kl, -(2.0 - log(exp(1.0) + exp(2.0) + exp(3.0))), 1e-9, 1e-9);
}

static void test_softmax_rows(void **s) {
    (void)s;
    nn_rng rng;
    nn_rng_seed(&rng, 3);
    enum { n = 50, k = 10 };
    float z[n * k], p[n * k];
    const float Ts[3] = {1.0f, 20.0f, 100.0f};
    for (int t = 0; t < 3; t++) {
        fill_normal(z, n * k, 30.0f, &rng);
        nn_softmax(z, n, k, Ts[t], p);
        for (int i = 0; i < n; i++) {
            double sum = 0.0;
            for (int j = 0; j < k; j++) {
                assert_true(p[i * k + j] >= 0.0f && p[i * k + j] <= 1.0f);
                sum += p[i * k + j];
            }
            assert_close(sum, 1.0, 1e-6, 0);
        }
    }
}

/* 1e4 logits at T=1 (and FLT_MAX): exp would overflow without the max subtraction. Closed forms:
 * CE(y = argmax) = 0 (other terms underflow to exp(-1e4) = 0), CE(y) = z_max - z_y otherwise. */
static void test_huge_logits(void **s) {
    (void)s;
    float z[2 * 4] = {1e4f, 0.0f, -1e4f, 5e3f, FLT_MAX, -FLT_MAX, 0.0f, 1.0f};
    float dz[2 * 4], p[2 * 4], q[2 * 4] = {0.25f, 0.25f, 0.25f, 0.25f, 0.5f, 0.0f, 0.0f, 0.5f};
    int y0[2] = {0, 0}, y1[2] = {1, 1};
    assert_close(nn_loss_ce(z, y0, 2, 4, 1.0f, dz), 0.0, 1e-12, 0);
    for (int i = 0; i < 8; i++)
        assert_true(isfinite(dz[i]));
    double L = nn_loss_ce(z, y1, 2, 4, 1.0f, dz);
    assert_close(L, (1e4 + 2.0 * (double)FLT_MAX) / 2.0, 0, 1e-12);
    for (int i = 0; i < 8; i++)
        assert_true(isfinite(dz[i]));
    assert_close(dz[1], -0.5, 1e-7, 0); /* (q - 1)/n with q = 0 */
    assert_close(dz[0], 0.5, 1e-7, 0);  /* (q - 0)/n with q = 1 */
    nn_softmax(z, 2, 4, 1.0f, p);
    const float want[8] = {1, 0, 0, 0, 1, 0, 0, 0};
    assert_close_array(p, want, 8, 0, 0, "saturated softmax");
    assert_true(isfinite(nn_loss_soft_ce(z, q, 2, 4, 1.0f, 1, dz)));
    for (int i = 0; i < 8; i++)
        assert_true(isfinite(dz[i]));
    assert_true(isfinite(nn_loss_kl(z, q, 2, 4, 1.0f, 0, dz)));
    for (int i = 0; i < 8; i++)
        assert_true(isfinite(dz[i]));
}

static void test_argmax(void **s) {
    (void)s;
    float z[3 * 4] = {1, 3, 3, 2, -1, -1, -1, -1, 0, 0, 0, 5};
    int pred[3];
    nn_argmax(z, 3, 4, pred);
    assert_int_equal(pred[0], 1); /* first on ties */
    assert_int_equal(pred[1], 0);
    assert_int_equal(pred[2], 3);
}

/* A batch big enough for the OpenMP loop: the total equals the row-by-row sequential sum exactly, and
 * one vs two threads give identical bits. */
static void test_determinism(void **s) {
    (void)s;
    enum { n = 5000, k = 10 };
    float *z = malloc(sizeof(float) * n * k), *p = malloc(sizeof(float) * n * k);
    float *d1 = malloc(sizeof(float) * n * k), *d2 = malloc(sizeof(float) * n * k);
    int *y = malloc(sizeof(int) * n);
    assert_non_null(z && p && d1 && d2 && y);
    nn_rng rng;
    nn_rng_seed(&rng, 99);
    fill_normal(z, (size_t)n * k, 5.0f, &rng);
    fill_dist(p, n, k, &rng);
    for (int i = 0; i < n; i++)
        y[i] = (int)nn_rng_below(&rng, k);
    double seq = 0.0;
    for (int i = 0; i < n; i++)
        seq += nn_loss_ce(z + (size_t)i * k, y + i, 1, k, 3.0f, NULL);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double a = nn_loss_ce(z, y, n, k, 3.0f, d1), ka = nn_loss_kl(z, p, n, k, 3.0f, 1, NULL);
    omp_set_num_threads(2);
    double b = nn_loss_ce(z, y, n, k, 3.0f, d2), kb = nn_loss_kl(z, p, n, k, 3.0f, 1, NULL);
    omp_set_num_threads(saved);
    assert_true(a == seq / n);
    assert_true(a == b && ka == kb);
    assert_memory_equal(d1, d2, sizeof(float) * n * k);
    free(z), free(p), free(d1), free(d2), free(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_grad),      cmocka_unit_test(test_soft_ce_grad),
        cmocka_unit_test(test_kl_grad),      cmocka_unit_test(test_closed_forms),
        cmocka_unit_test(test_consistency),  cmocka_unit_test(test_kl_properties),
        cmocka_unit_test(test_softmax_rows), cmocka_unit_test(test_huge_logits),
        cmocka_unit_test(test_argmax),       cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
