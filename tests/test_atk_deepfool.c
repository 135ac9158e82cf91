/* test_atk_deepfool.c - DeepFool L2: the logits' Jacobian (one forward, K backward passes) against central
 * differences, the projection onto the nearest boundary of affine classifiers (closed form), the box and the
 * iteration limit, samples misclassified from the start, batch/thread independence, errors, atk_run.
 *
 * The file includes attacks/atk_deepfool.c to reach its static pieces (df_jacobian); the library's copy of
 * atk_deepfool_batch is then not linked into this executable. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "test_atk_util.h"

#include "atk_deepfool.c"

/* ---------- helpers ---------- */

/* A hand-set affine classifier z = W x + b, 4 features -> 3 classes. */
enum { LD = 4, LK = 3 };
static const double LW[LK][LD] = {{2.0, 0.5, -1.0, 0.0}, {0.0, 1.5, 0.5, -1.0}, {-1.0, 0.0, 1.0, 1.5}};
static const double LB[LK] = {0.4, 0.0, -0.4};

static nn_net *linear_make(const double *bias, size_t max_batch) {
    return atk_test_linear_d(LD, LK, &LW[0][0], bias, max_batch);
}

/* Closed form for the affine net: the predicted class y of x, the nearest boundary j (smallest
 * (z_y - z_j) / ||w_j - w_y||, its distance returned) and the projection p of x onto it. */
static double linear_nearest(const double *x, int *y, int *j_out, double *p) {
    double z[LK];
    for (size_t j = 0; j < LK; j++) {
        z[j] = LB[j];
        for (size_t e = 0; e < LD; e++)
            z[j] += LW[j][e] * x[e];
    }
    int c = 0;
    for (int j = 1; j < LK; j++)
        if (z[j] > z[c]) c = j;
    double best = HUGE_VAL;
    for (int j = 0; j < LK; j++) {
        if (j == c) continue;
        double a2 = 0.0;
        for (size_t e = 0; e < LD; e++)
            a2 += (LW[j][e] - LW[c][e]) * (LW[j][e] - LW[c][e]);
        double dist = (z[c] - z[j]) / sqrt(a2);
        if (dist < best) {
            best = dist, *j_out = j;
            for (size_t e = 0; e < LD; e++)
                p[e] = x[e] + (z[c] - z[j]) / a2 * (LW[j][e] - LW[c][e]);
        }
    }
    *y = c;
    return best;
}

static int argmax_f(const float *z, size_t k) {
    int a = 0;
    for (size_t j = 1; j < k; j++)
        if (z[j] > z[a]) a = (int)j;
    return a;
}

static atk_cfg df_cfg(float overshoot, int iters) {
    atk_cfg c = atk_cfg_default(ATK_DEEPFOOL);
    c.overshoot = overshoot, c.iters = iters;
    return c;
}

static int run_df(nn_net *net, const atk_cfg *cfg, const float *x, const int *y, size_t n, float *x_adv,
                  int *iters, nn_err *err) {
    atk_batch b = {net, cfg, x, y, NULL, n, net->n_in, net->n_classes, 0, x_adv, iters, NULL, NULL, NULL, 0.0, 0.0};
    b.total = (double)n;
    return atk_deepfool_batch(&b, err);
}

/* ---------- the Jacobian ---------- */

typedef struct gc_ctx {
    nn_net *net;
    size_t n, j;
    unsigned char sig0[64], sig1[64];
} gc_ctx;

/* sum over the batch of z_j(x_r); the relu pattern goes to sig if given. */
static double gc_zj(gc_ctx *g, const float *x, unsigned char *sig) {
    const float *z;
    assert_int_equal(nn_net_forward(g->net, x, g->n, 0, NULL, &z, NULL), NN_OK);
    size_t k = g->net->n_classes, hid = g->n * g->net->layers[1].out.c;
    for (size_t e = 0; sig && e < hid; e++)
        sig[e] = g->net->act[1][e] > 0.0f;
    double s = 0.0;
    for (size_t r = 0; r < g->n; r++)
        s += z[r * k + g->j];
    return s;
}

static double gc_f(void *p, const float *x) {
    return gc_zj(p, x, NULL);
}

static int gc_skip(void *p, const float *x, size_t i, double h) {
    gc_ctx *g = p;
    float *xm = (float *)x, keep = x[i];
    gc_zj(g, x, g->sig0);
    int crossed = 0;
    for (int s = -1; s <= 1 && !crossed; s += 2) {
        xm[i] = (float)((double)keep + s * h);
        gc_zj(g, xm, g->sig1);
        crossed = memcmp(g->sig0, g->sig1, sizeof g->sig0) != 0;
    }
    xm[i] = keep;
    return crossed;
}

/* jac[j] = dz_j/dx of each row, for every class j, against central differences; z = the net's logits. */
static void test_df_jacobian_gradcheck(void **state) {
    (void)state;
    enum { N = 3, D = 6, K = 4 };
    nn_net *net = atk_test_mlp(D, 8, K, 21, N);
    atk_cfg cfg = df_cfg(0.02f, 50);
    float x[N * D], xa[N * D], zf[N * K];
    int y[N] = {0, 1, 2}, iters[N];
    nn_rng rng;
    nn_rng_seed(&rng, 8);
    for (size_t i = 0; i < N * D; i++)
        x[i] = -1.0f + 2.0f * nn_rng_uniform(&rng);
    atk_batch b = {net, &cfg, x, y, NULL, N, D, K, 0, xa, iters, NULL, NULL, NULL, 0.0, N};
    df_state s;
    nn_err err;
    assert_int_equal(df_state_init(&s, &b, &err), NN_OK);
    s.na = N;
    for (size_t r = 0; r < N; r++)
        s.idx[r] = r;
    memcpy(s.xa, x, sizeof x);
    assert_int_equal(df_jacobian(&s, &err), NN_OK);
    assert_int_equal(nn_net_predict(net, x, N, zf, &err), NN_OK);
    assert_memory_equal(s.z, zf, sizeof zf);
    for (size_t j = 0; j < K; j++) {
        gc_ctx g = {net, N, j, {0}, {0}};
        char what[32];
        snprintf(what, sizeof what, "dz_%zu/dx", j);
        size_t checked =
            gradcheck(gc_f, gc_skip, &g, x, N * D, s.jac + j * N * D, 1e-3, 1e-4, 1e-2, 64, what);
        assert_true(checked >= N * D * 3 / 4);
    }
    df_state_free(&s);
    nn_net_destroy(net);
}

/* ---------- the affine classifier ---------- */

/* Points around X0 = (0.5, 0.45, 0.55, 0.5), whose nearest boundaries differ. At X0 itself the class with
 * the smallest |f_j| (class 1: 0.625 vs 0.675) is the farther one (0.2176 vs 0.1715): DeepFool must pick
 * by |f_j| / ||w_j||. One step reaches the projection p (plus the 1e-4 nudge); overshoot 0 lands within
 * 1% of p, overshoot 0.02 at x + 1.02 (p - x). */
static void test_df_linear_projection(void **state) {
    (void)state;
    enum { N = 6 };
    const double pts[N][LD] = {{0.5, 0.45, 0.55, 0.5}, {0.55, 0.4, 0.5, 0.45}, {0.5, 0.5, 0.5, 0.5},
                               {0.6, 0.3, 0.5, 0.55},  {0.45, 0.55, 0.6, 0.4}, {0.4, 0.6, 0.55, 0.45}};
    nn_net *net = linear_make(LB, N);
    float x[N * LD], xa[N * LD];
    double p[N][LD], dist[N];
    int y[N], near[N], it[N], seen[LK] = {0};
    for (size_t i = 0; i < N; i++) {
        dist[i] = linear_nearest(pts[i], &y[i], &near[i], p[i]);
        assert_int_equal(y[i], 0);
        seen[near[i]] = 1;
        for (size_t e = 0; e < LD; e++) {
            x[i * LD + e] = (float)pts[i][e];
            assert_true(p[i][e] > 0.05 && p[i][e] < 0.95); /* inside the box: no clipping */
        }
    }
    assert_true(seen[1] && seen[2] && near[0] == 2);
    nn_err err;
    for (int os = 0; os <= 1; os++) {
        atk_cfg cfg = df_cfg(os ? 0.02f : 0.0f, 50);
        assert_int_equal(run_df(net, &cfg, x, y, N, xa, it, &err), NN_OK);
        const float *z;
        assert_int_equal(nn_net_forward(net, xa, N, 0, NULL, &z, &err), NN_OK);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(it[i], 1);
            assert_int_equal(argmax_f(z + i * LK, LK), near[i]);
            double scale = os ? 1.02 : 1.0, off = 0.0;
            for (size_t e = 0; e < LD; e++) {
                double want = pts[i][e] + scale * (p[i][e] - pts[i][e]), v = (double)xa[i * LD + e] - want;
                off += v * v;
            }
            if (!(sqrt(off) <= 0.01 * dist[i]))
                fail_msg("sample %zu (overshoot %d): %.3g from the projection, distance %.4f", i, os,
                         sqrt(off), dist[i]);
        }
    }
    nn_net_destroy(net);
}

/* Where the label cannot be left inside the box (class 0 wins on all of [0, 1]^4 with this bias), DeepFool
 * stops after iters steps with every step clipped to the box. */
static void test_df_box_and_iteration_limit(void **state) {
    (void)state;
    const double bias[LK] = {5.0, 0.0, 0.0};
    nn_net *net = linear_make(bias, 1);
    float x[LD] = {0.9f, 0.1f, 0.95f, 0.05f}, xa[LD];
    int y = 0, it = 0;
    nn_err err;
    atk_cfg cfg = df_cfg(0.02f, 7);
    assert_int_equal(run_df(net, &cfg, x, &y, 1, xa, &it, &err), NN_OK);
    assert_int_equal(it, 7);
    const float *z;
    assert_int_equal(nn_net_forward(net, xa, 1, 0, NULL, &z, &err), NN_OK);
    assert_int_equal(argmax_f(z, LK), 0);
    int at_edge = 0;
    for (size_t e = 0; e < LD; e++) {
        assert_true(xa[e] >= 0.0f && xa[e] <= 1.0f);
        at_edge += xa[e] == 0.0f || xa[e] == 1.0f;
    }
    assert_true(at_edge >= 2);
    nn_net_destroy(net);
}

/* ---------- an MLP, through atk_run ---------- */

/* Points near the edges of [0, 1]: outputs inside the box, successes really change the prediction, a
 * sample misclassified from the start is returned unchanged (success, zero distortion, no iteration),
 * and 1 vs 2 threads give bitwise the same results. */
static void test_df_mlp_atk_run(void **state) {
    (void)state;
    enum { N = 70, D = 64, K = 4 };
    nn_net *net = atk_test_mlp(D, 16, K, 5, N);
    float *x = malloc(sizeof(float) * N * D * 2), *xa = x + N * D, zc[N * K];
    int y[N];
    atk_result res[N], res1[N];
    nn_rng rng;
    nn_rng_seed(&rng, 13);
    for (size_t i = 0; i < (size_t)N * D; i++)
        x[i] = nn_rng_uniform(&rng) < 0.3f ? (float)(nn_rng_uniform(&rng) < 0.5f) : nn_rng_uniform(&rng);
    nn_err err;
    assert_int_equal(nn_net_predict(net, x, N, zc, &err), NN_OK);
    for (size_t i = 0; i < N; i++)
        y[i] = argmax_f(zc + i * K, K);
    y[3] = (y[3] + 1) % K; /* misclassified from the start */
    atk_cfg cfg = df_cfg(0.02f, 50);
    omp_set_num_threads(2);
    assert_int_equal(atk_run(net, &cfg, x, y, NULL, N, xa, res, NULL, NULL, &err), NN_OK);
    const float *z;
    assert_int_equal(nn_net_forward(net, xa, N, 0, NULL, &z, &err), NN_OK);
    size_t ok = 0;
    for (size_t i = 0; i < N; i++) {
        for (size_t e = 0; e < D; e++)
            assert_true(xa[i * D + e] >= 0.0f && xa[i * D + e] <= 1.0f);
        assert_int_equal(res[i].pred, argmax_f(z + i * K, K));
        assert_true(res[i].iters >= 0 && res[i].iters <= 50);
        ok += res[i].success;
    }
    assert_true(ok >= N * 9 / 10);
    assert_int_equal(res[3].success, 1);
    assert_int_equal(res[3].iters, 0);
    assert_memory_equal(xa + 3 * D, x + 3 * D, D * sizeof(float));
    float *xb = malloc(sizeof(float) * N * D);
    omp_set_num_threads(1);
    assert_int_equal(atk_run(net, &cfg, x, y, NULL, N, xb, res1, NULL, NULL, &err), NN_OK);
    omp_set_num_threads(2);
    assert_memory_equal(xa, xb, sizeof(float) * N * D);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(res[i].iters, res1[i].iters);
    free(x), free(xb);
    nn_net_destroy(net);
}

/* Per-sample state never mixes samples: reverse order, one by one and 1 thread give bitwise the same
 * x_adv and counts. On the 4-feature affine net, whose forward and backward are themselves independent of
 * the batch composition here (checked first; OpenBLAS's sgemm kernels are not for inner dimensions >= 8).
 * N * D * K > 8192 so that the attack's OpenMP loop runs in parallel. */
static void test_df_batch_independence(void **state) {
    (void)state;
    enum { N = 1100, S = 8 };
    nn_net *net = linear_make(LB, N);
    float *x = malloc(sizeof(float) * N * LD * 4), *xr = x + N * LD, *xa = xr + N * LD, *xb = xa + N * LD;
    int y[N], yr[N], it[N], itb[N];
    nn_rng rng;
    nn_rng_seed(&rng, 6);
    for (size_t i = 0; i < (size_t)N * LD; i++)
        x[i] = 0.2f + 0.6f * nn_rng_uniform(&rng);
    nn_err err;
    const float *z;
    float zb[S * LK];
    assert_int_equal(nn_net_forward(net, x, N, 0, NULL, &z, &err), NN_OK);
    for (size_t i = 0; i < N; i++)
        y[i] = argmax_f(z + i * LK, LK);
    memcpy(zb, z + (N - S) * LK, sizeof zb);
    for (size_t i = N - S; i < N; i++) {
        assert_int_equal(nn_net_forward(net, x + i * LD, 1, 0, NULL, &z, &err), NN_OK);
        if (memcmp(z, zb + (i - (N - S)) * LK, LK * sizeof(float)))
            fail_msg("the net's logits of sample %zu change with the batch: the premise of this test fails",
                     i);
    }
    for (size_t i = 0; i < N; i++) {
        memcpy(xr + i * LD, x + (N - 1 - i) * LD, LD * sizeof(float));
        yr[i] = y[N - 1 - i];
    }
    atk_cfg cfg = df_cfg(0.02f, 50);
    assert_int_equal(run_df(net, &cfg, x, y, N, xa, it, &err), NN_OK);
    assert_int_equal(run_df(net, &cfg, xr, yr, N, xb, itb, &err), NN_OK);
    for (size_t i = 0; i < N; i++) {
        assert_memory_equal(xa + i * LD, xb + (N - 1 - i) * LD, LD * sizeof(float));
        assert_int_equal(it[i], itb[N - 1 - i]);
    }
    for (size_t i = N - S; i < N; i++) {
        assert_int_equal(run_df(net, &cfg, x + i * LD, y + i, 1, xb, itb, &err), NN_OK);
        assert_memory_equal(xa + i * LD, xb, LD * sizeof(float));
        assert_int_equal(it[i], itb[0]);
    }
    omp_set_num_threads(1);
    assert_int_equal(run_df(net, &cfg, x, y, N, xb, itb, &err), NN_OK);
    omp_set_num_threads(2);
    assert_memory_equal(xa, xb, sizeof(float) * N * LD);
    assert_memory_equal(it, itb, sizeof it);
    free(x);
    nn_net_destroy(net);
}

static void test_df_errors(void **state) {
    (void)state;
    nn_net *net = linear_make(LB, 2);
    float x[LD] = {0.5f, 0.45f, 0.55f, 0.5f}, xa[LD];
    int y = 0, it;
    nn_err err;
    atk_cfg cfg = df_cfg(0.02f, 10);
    cfg.targeted = 1;
    assert_int_equal(run_df(net, &cfg, x, &y, 1, xa, &it, &err), NN_E_INVAL);
    cfg.targeted = 0;
    y = 3;
    assert_int_equal(run_df(net, &cfg, x, &y, 1, xa, &it, &err), NN_E_INVAL);
    y = 0;
    net->params[5] = NAN;
    assert_int_equal(run_df(net, &cfg, x, &y, 1, xa, &it, &err), NN_E_NUMERIC);
    assert_non_null(strstr(err.msg, "non-finite"));
    net->params[5] = 1.5f;
    net->params[LK * LD] = INFINITY; /* an infinite logit for class 0 */
    assert_int_equal(run_df(net, &cfg, x, &y, 1, xa, &it, &err), NN_E_NUMERIC);
    nn_net_destroy(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_df_jacobian_gradcheck),      cmocka_unit_test(test_df_linear_projection),
        cmocka_unit_test(test_df_box_and_iteration_limit), cmocka_unit_test(test_df_mlp_atk_run),
        cmocka_unit_test(test_df_batch_independence),      cmocka_unit_test(test_df_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
