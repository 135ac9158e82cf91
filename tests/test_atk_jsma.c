/* test_atk_jsma.c - the JSMA attack on tiny hand-built nets whose answers are known: the pairs it picks on a
 * linear model, its L0 budget and range, the saturated-softmax gradient masking (and its two cures), a
 * finite-difference check of its gradients alpha and beta, independence from batch composition and thread
 * count, the non-finite-gradient error, and the same attack through atk_run. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atk.h"
#include "nn_net.h"
#include "test_util.h"
#include "test_atk_util.h"


/* ---------- helpers ---------- */

static void fill_uniform(float *a, size_t n, float lo, float hi, uint64_t seed) {
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * nn_rng_uniform(&rng);
}

static atk_cfg jsma_cfg(atk_jsma_on on, float temp, float gamma) {
    atk_cfg c = atk_cfg_default(ATK_JSMA);
    c.jsma_on = on;
    c.temperature = temp;
    c.gamma = gamma;
    c.lo = 0.0f;
    c.hi = 1.0f;
    return c;
}

/* Runs atk_jsma_batch directly on x[n, d] with targets t[n] (labels unused by JSMA: all 0). */
static int jsma_direct(nn_net *net, const atk_cfg *cfg, const float *x, const int *t, size_t n, float *x_adv,
                       int *iters, nn_err *err) {
    int y[64] = {0};
    assert_true(n <= 64);
    atk_batch b = {.net = net,
                   .cfg = cfg,
                   .x = x,
                   .y = y,
                   .t = t,
                   .n = n,
                   .d = net->n_in,
                   .k = net->n_classes,
                   .x_adv = x_adv,
                   .iters = iters,
                   .total = (double)n};
    return atk_jsma_batch(&b, err);
}

static int predict1(nn_net *net, const float *x) {
    const float *z;
    assert_int_equal(nn_net_forward(net, x, 1, 0, NULL, &z, NULL), NN_OK);
    int best = 0;
    for (size_t j = 1; j < net->n_classes; j++)
        if (z[j] > z[best]) best = (int)j;
    return best;
}

/* The obvious linear model: 2 classes x 8 features. Target class 1 has its largest weights on features 3
 * and 5, where class 0's are most negative. JSMA-Z (alpha = W1, beta = W0) pair scores (W1p+W1q)|W0p+W0q|:
 * (3,5) = 1.9*0.9 = 1.71 beats (3,6) = 1.28 and (5,6) = 1.05; without 3 and 5, (4,6) = 0.9*0.4 = 0.36 beats
 * (1,6) = 0.32. JSMA-F (beta = -alpha, alpha ~ W1 - W0 = [.2 .3 .2 1.5 .4 1.3 .9 -6]) ranks the same pairs.
 * Feature 7 is a decoy: its pairs have the largest |a * c| (e.g. (0,7): 2.9 * 2.9) but a < 0, c > 0, never
 * admissible. With x = 0 and bias (b0, 0): z1 - z0 = -b0, +2.8 after the first pair, +1.3 after the
 * second. */
#define LD 8
static const float lin_w[2 * LD] = {-0.1f, -0.1f, -0.1f, -0.5f, -0.1f, -0.4f, -0.3f, 3.0f,
                                    0.1f,  0.2f,  0.1f,  1.0f,  0.3f,  0.9f,  0.6f,  -3.0f};

static nn_net *lin_obvious(float b0, float scale) {
    float w[2 * LD], b[2] = {b0 * scale, 0.0f};
    for (size_t i = 0; i < 2 * LD; i++)
        w[i] = lin_w[i] * scale;
    return atk_test_linear(LD, 2, w, b, 4);
}

/* ---------- tests ---------- */

static void test_linear_picks_obvious_pairs(void **state) {
    (void)state;
    float x[LD] = {0}, xa[LD];
    int t = 1, iters;
    const float two_steps[LD] = {0, 0, 0, 1, 1, 1, 1, 0}, one_step[LD] = {0, 0, 0, 1, 0, 1, 0, 0};
    atk_jsma_on ons[2] = {ATK_JSMA_LOGITS, ATK_JSMA_SOFTMAX};
    for (int v = 0; v < 2; v++) {
        /* b0 = 1.5: one pair suffices (z1 - z0 = 1.3 after it). */
        nn_net *net = lin_obvious(1.5f, 1.0f);
        atk_cfg cfg = jsma_cfg(ons[v], 1.0f, 1.0f);
        assert_int_equal(jsma_direct(net, &cfg, x, &t, 1, xa, &iters, NULL), NN_OK);
        assert_memory_equal(xa, one_step, sizeof xa);
        assert_int_equal(iters, 1);
        assert_int_equal(predict1(net, xa), 1);
        nn_net_destroy(net);
        /* b0 = 3.5: (3,5) then (4,6) (z1 - z0 = -0.7, then 0.6). */
        net = lin_obvious(3.5f, 1.0f);
        assert_int_equal(jsma_direct(net, &cfg, x, &t, 1, xa, &iters, NULL), NN_OK);
        assert_memory_equal(xa, two_steps, sizeof xa);
        assert_int_equal(iters, 2);
        assert_int_equal(predict1(net, xa), 1);
        /* a budget of one pair (floor(8 * 0.25 / 2) = 1): only (3,5), and the target is not reached. */
        cfg.gamma = 0.25f;
        assert_int_equal(jsma_direct(net, &cfg, x, &t, 1, xa, &iters, NULL), NN_OK);
        assert_memory_equal(xa, one_step, sizeof xa);
        assert_int_equal(iters, 1);
        assert_int_equal(predict1(net, xa), 0);
        nn_net_destroy(net);
    }
}

static void test_ties_lowest_pair(void **state) {
    (void)state;
    /* equal weights on 6 features: every pair has exactly the same score, so the lowest pair (0,1) wins;
     * one pair suffices (z1 - z0 = -1.5 + 2). */
    float w[2 * 6], b[2] = {1.5f, 0.0f}, x[6] = {0}, xa[6];
    for (size_t j = 0; j < 6; j++)
        w[j] = -0.5f, w[6 + j] = 0.5f;
    nn_net *net = atk_test_linear(6, 2, w, b, 1);
    const float want[6] = {1, 1, 0, 0, 0, 0};
    atk_cfg cfgs[2] = {jsma_cfg(ATK_JSMA_SOFTMAX, 1.0f, 1.0f), jsma_cfg(ATK_JSMA_LOGITS, 1.0f, 1.0f)};
    int t = 1, iters;
    for (int v = 0; v < 2; v++) {
        assert_int_equal(jsma_direct(net, &cfgs[v], x, &t, 1, xa, &iters, NULL), NN_OK);
        assert_memory_equal(xa, want, sizeof xa);
        assert_int_equal(iters, 1);
    }
    nn_net_destroy(net);
}

static void test_strict_admissibility(void **state) {
    (void)state;
    /* JSMA-Z with alpha = W1 = 0 (a = 0, c = -2 < 0) or beta = W0 = 0 (a = 2 > 0, c = 0): a > 0 and c < 0
     * are strict, so no pair is admissible: the attack fails after one gradient, x untouched. */
    float w[2][8] = {{-1, -1, -1, -1, 0, 0, 0, 0}, {0, 0, 0, 0, 1, 1, 1, 1}}, b[2] = {1.0f, 0.0f};
    float x[4] = {0.25f, 0.25f, 0.25f, 0.25f}, xa[4];
    atk_cfg cfg = jsma_cfg(ATK_JSMA_LOGITS, 1.0f, 1.0f);
    int t = 1, iters;
    for (int v = 0; v < 2; v++) {
        nn_net *net = atk_test_linear(4, 2, w[v], b, 1);
        assert_int_equal(jsma_direct(net, &cfg, x, &t, 1, xa, &iters, NULL), NN_OK);
        assert_memory_equal(xa, x, sizeof xa);
        assert_int_equal(iters, 1);
        nn_net_destroy(net);
    }
}

static void test_already_target_unchanged(void **state) {
    (void)state;
    /* sample 0 is predicted as its target 0 (b0 = 1.5 > 0): untouched, 0 iterations; sample 1 (target 1) is
     * attacked in the same batch. Inputs slightly inside the range so that "unchanged" is not clipping. */
    nn_net *net = lin_obvious(1.5f, 1.0f);
    float x[2 * LD], xa[2 * LD];
    fill_uniform(x, 2 * LD, 0.1f, 0.2f, 7);
    int t[2] = {0, 1}, iters[2] = {-1, -1};
    atk_cfg cfg = jsma_cfg(ATK_JSMA_SOFTMAX, 1.0f, 1.0f);
    assert_int_equal(jsma_direct(net, &cfg, x, t, 2, xa, iters, NULL), NN_OK);
    assert_memory_equal(xa, x, LD * sizeof(float));
    assert_int_equal(iters[0], 0);
    assert_true(iters[1] >= 1);
    assert_int_equal(predict1(net, xa + LD), 1);
    nn_net_destroy(net);
}

/* Counts features of a[d] that differ from clip(x[d]); fails if one is changed to anything but hi or leaves
 * [lo, hi]. */
static size_t changed_features(const float *x, const float *a, size_t d, float lo, float hi) {
    size_t n = 0;
    for (size_t j = 0; j < d; j++) {
        float c = fminf(fmaxf(x[j], lo), hi);
        if (!(a[j] >= lo && a[j] <= hi)) fail_msg("feature %zu = %g outside [%g, %g]", j, a[j], lo, hi);
        if (a[j] != c) {
            if (a[j] != hi) fail_msg("feature %zu changed to %g, not to hi", j, a[j]);
            n++;
        }
    }
    return n;
}

static void test_budget_and_range(void **state) {
    (void)state;
    enum { N = 8, D = 40, K = 5 };
    nn_net *net = atk_test_mlp(D, 16, K, 11, N);
    float x[N * D], xa[N * D];
    fill_uniform(x, N * D, -0.3f, 1.3f, 12); /* some features start out of range, some clipped to hi */
    int t[N], iters[N];
    for (int i = 0; i < N; i++)
        t[i] = i % K;
    atk_jsma_on ons[2] = {ATK_JSMA_SOFTMAX, ATK_JSMA_LOGITS};
    for (int v = 0; v < 2; v++) {
        atk_cfg cfg = jsma_cfg(ons[v], 1.0f, 0.3f); /* max_iters = floor(40 * 0.3 / 2) = 6 */
        assert_int_equal(jsma_direct(net, &cfg, x, t, N, xa, iters, NULL), NN_OK);
        int stepped = 0;
        for (int i = 0; i < N; i++) {
            size_t ch = changed_features(x + i * D, xa + i * D, D, 0.0f, 1.0f);
            assert_true(ch <= 2 * 6);
            assert_true(iters[i] >= 0 && iters[i] <= 6);
            /* every used gradient but a final failed search sets one pair */
            assert_true(ch == 2 * (size_t)iters[i] || (iters[i] > 0 && ch == 2 * (size_t)(iters[i] - 1)));
            /* all gradients used and budget left: the sample stopped because it hit its target */
            if (ch == 2 * (size_t)iters[i] && iters[i] < 6) assert_int_equal(predict1(net, xa + i * D), t[i]);
            stepped += ch > 0;
        }
        assert_true(stepped > 0);
    }
    nn_net_destroy(net);
}

static void test_saturation_masks_gradients(void **state) {
    (void)state;
    /* The obvious model scaled by 1000: logits ~1e3, z0 - z1 = 3500 at x = 0. */
    nn_net *net = lin_obvious(3.5f, 1000.0f);
    float x[LD] = {0}, xa[LD], alpha[LD], beta[LD], seed2[2];
    const float two_steps[LD] = {0, 0, 0, 1, 1, 1, 1, 0};
    int t = 1, iters;
    /* softmax at T = 1 is saturated in float32: p1 = exp(-3500) = 0, so every gradient is exactly 0 */
    atk_cfg cfg = jsma_cfg(ATK_JSMA_SOFTMAX, 1.0f, 1.0f);
    assert_int_equal(atk_jsma_grads(net, &cfg, x, &t, 1, alpha, beta, seed2, NULL, NULL), NN_OK);
    for (size_t j = 0; j < LD; j++)
        assert_true(alpha[j] == 0.0f && beta[j] == 0.0f);
    assert_int_equal(jsma_direct(net, &cfg, x, &t, 1, xa, &iters, NULL), NN_OK);
    assert_memory_equal(xa, x, sizeof xa); /* no admissible pair: fails untouched after one gradient */
    assert_int_equal(iters, 1);
    assert_int_equal(predict1(net, xa), 0);
    /* logits (JSMA-Z) and softmax at T = 100 (p1 = exp(-35) > 0) see through it: the same two pairs */
    atk_cfg cures[2] = {jsma_cfg(ATK_JSMA_LOGITS, 1.0f, 1.0f), jsma_cfg(ATK_JSMA_SOFTMAX, 100.0f, 1.0f)};
    for (int v = 0; v < 2; v++) {
        assert_int_equal(jsma_direct(net, &cures[v], x, &t, 1, xa, &iters, NULL), NN_OK);
        assert_memory_equal(xa, two_steps, sizeof xa);
        assert_int_equal(iters, 2);
        assert_int_equal(predict1(net, xa), 1);
    }
    nn_net_destroy(net);
}

/* ---------- finite differences of alpha and beta ---------- */

typedef struct fd_ctx {
    nn_net *net;
    const atk_cfg *cfg;
    int t;
    int beta; /* 0: F_t, 1: sum_{j != t} F_j */
} fd_ctx;

/* F_t or sum_{j != t} F_j of one sample, F = softmax(z/T) (in double) or z. */
static double fd_objective(void *p, const float *x) {
    fd_ctx *c = p;
    const float *z;
    assert_int_equal(nn_net_forward(c->net, x, 1, 0, NULL, &z, NULL), NN_OK);
    size_t k = c->net->n_classes;
    double f[16], m = -INFINITY, s = 0.0, out = 0.0;
    for (size_t j = 0; j < k; j++) {
        f[j] = (double)z[j];
        if (c->cfg->jsma_on == ATK_JSMA_SOFTMAX) m = fmax(m, f[j] / c->cfg->temperature);
    }
    if (c->cfg->jsma_on == ATK_JSMA_SOFTMAX) {
        for (size_t j = 0; j < k; j++)
            s += f[j] = exp(f[j] / c->cfg->temperature - m);
        for (size_t j = 0; j < k; j++)
            f[j] /= s;
    }
    for (size_t j = 0; j < k; j++)
        if (((int)j == c->t) != c->beta) out += f[j];
    return out;
}

/* Skips coordinate i when a step of h could cross a ReLU kink of the first layer (dense, relu, dense). */
static int fd_skip(void *p, const float *x, size_t i, double h) {
    fd_ctx *c = p;
    const nn_layer *l = &c->net->layers[0];
    size_t d = l->in.c, hn = l->out.c;
    for (size_t j = 0; j < hn; j++) {
        double pre = l->w[hn * d + j];
        for (size_t u = 0; u < d; u++)
            pre += (double)l->w[j * d + u] * x[u];
        if (fabs(pre) <= 2.0 * h * fabs((double)l->w[j * d + i])) return 1;
    }
    return 0;
}

static void test_gradients_finite_differences(void **state) {
    (void)state;
    enum { N = 3, D = 6, K = 3 };
    nn_net *net = atk_test_mlp(D, 10, K, 21, N);
    float x[N * D], alpha[N * D], beta[N * D], seed2[N * K];
    fill_uniform(x, N * D, 0.1f, 0.9f, 22);
    int t[N] = {2, 0, 1};
    atk_cfg cfgs[3] = {jsma_cfg(ATK_JSMA_SOFTMAX, 1.0f, 1.0f), jsma_cfg(ATK_JSMA_SOFTMAX, 4.0f, 1.0f),
                       jsma_cfg(ATK_JSMA_LOGITS, 1.0f, 1.0f)};
    const char *names[3][2] = {{"softmax T=1 alpha", "softmax T=1 beta"},
                               {"softmax T=4 alpha", "softmax T=4 beta"},
                               {"logits alpha", "logits beta"}};
    size_t checked = 0;
    for (int v = 0; v < 3; v++) {
        assert_int_equal(atk_jsma_grads(net, &cfgs[v], x, t, N, alpha, beta, seed2, NULL, NULL), NN_OK);
        for (size_t i = 0; i < N; i++)
            for (int which = 0; which < 2; which++) {
                fd_ctx c = {net, &cfgs[v], t[i], which};
                float xi[D];
                memcpy(xi, x + i * D, sizeof xi);
                checked += gradcheck(fd_objective, fd_skip, &c, xi, D, (which ? beta : alpha) + i * D, 1e-3,
                                     2e-4, 1e-2, D, names[v][which]);
            }
    }
    assert_true(checked >= 3 * N * 2 * D / 2); /* most coordinates were checked, not skipped */
    nn_net_destroy(net);
}

/* ---------- determinism ---------- */

static void test_batch_and_thread_invariance(void **state) {
    (void)state;
    enum { N = 7, D = 48, K = 4 };
    nn_net *net = atk_test_mlp(D, 24, K, 31, 8);
    float x[N * D], ref[N * D], xa[N * D];
    int t[N], it_ref[N], it[N];
    fill_uniform(x, N * D, -0.4f, 1.0f, 32); /* about 30% at lo after clipping */
    for (int i = 0; i < N; i++)
        t[i] = (i * 3 + 1) % K;
    int threads = omp_get_max_threads();
    atk_jsma_on ons[2] = {ATK_JSMA_SOFTMAX, ATK_JSMA_LOGITS};
    for (int v = 0; v < 2; v++) {
        atk_cfg cfg = jsma_cfg(ons[v], 1.0f, 0.5f); /* up to 12 pairs */
        omp_set_num_threads(2);
        assert_int_equal(jsma_direct(net, &cfg, x, t, N, ref, it_ref, NULL), NN_OK);
        int most = 0;
        for (int i = 0; i < N; i++)
            most = it_ref[i] > most ? it_ref[i] : most;
        assert_true(most >= 3); /* the comparison covers several iterations with a shrinking batch */
        omp_set_num_threads(1);
        assert_int_equal(jsma_direct(net, &cfg, x, t, N, xa, it, NULL), NN_OK);
        assert_memory_equal(xa, ref, sizeof xa);
        assert_memory_equal(it, it_ref, sizeof it);
        omp_set_num_threads(2);
        for (size_t off = 0; off < N; off += 3) { /* batches of 3, 3, 1 */
            size_t m = N - off < 3 ? N - off : 3;
            assert_int_equal(jsma_direct(net, &cfg, x + off * D, t + off, m, xa + off * D, it + off, NULL),
                             NN_OK);
        }
        assert_memory_equal(xa, ref, sizeof xa);
        assert_memory_equal(it, it_ref, sizeof it);
        for (size_t i = 0; i < N; i++) /* one by one */
            assert_int_equal(jsma_direct(net, &cfg, x + i * D, t + i, 1, xa + i * D, it + i, NULL), NN_OK);
        assert_memory_equal(xa, ref, sizeof xa);
        assert_memory_equal(it, it_ref, sizeof it);
    }
    omp_set_num_threads(threads);
    nn_net_destroy(net);
}

/* ---------- errors, progress, atk_run ---------- */

static void test_nonfinite_gradient(void **state) {
    (void)state;
    float w[2 * LD], b[2] = {3.5f, 0.0f}, x[LD] = {0}, xa[LD];
    memcpy(w, lin_w, sizeof w);
    w[LD + 2] = NAN; /* dz1/dx2 = NaN: alpha of JSMA-Z is NaN at feature 2 */
    nn_net *net = atk_test_linear(LD, 2, w, b, 1);
    atk_cfg cfg = jsma_cfg(ATK_JSMA_LOGITS, 1.0f, 1.0f);
    int t = 1, iters;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(jsma_direct(net, &cfg, x, &t, 1, xa, &iters, &err), NN_E_NUMERIC);
    assert_int_equal(err.code, NN_E_NUMERIC);
    nn_net_destroy(net);
}

typedef struct prog {
    int calls;
    double last, total;
} prog;

static void on_progress(void *ctx, double done, double total) {
    prog *p = ctx;
    assert_true(done >= p->last && done <= total);
    p->last = done;
    p->total = total;
    p->calls++;
}

static void test_through_atk_run(void **state) {
    (void)state;
    /* the obvious model with the default cfg but gamma = 1 (the default 0.145 allows no pair for D = 8) */
    nn_net *net = lin_obvious(3.5f, 1.0f);
    atk_cfg cfg = atk_cfg_default(ATK_JSMA);
    cfg.gamma = 1.0f;
    float x[LD] = {0}, xa[LD];
    int y = 0, t = 1;
    atk_result r;
    assert_int_equal(atk_run(net, &cfg, x, &y, &t, 1, xa, &r, NULL, NULL, NULL), NN_OK);
    assert_int_equal(r.success, 1);
    assert_int_equal(r.pred, 1);
    assert_int_equal(r.clean_pred, 0);
    assert_int_equal(r.iters, 2);
    assert_close(r.l0, 4.0, 0.0, 0.0);
    nn_net_destroy(net);

    /* default cfg on an MLP: budget floor(64 * 0.145 / 2) = 4 pairs; same answers as the direct call */
    enum { N = 3, D = 64, K = 3 };
    net = atk_test_mlp(D, 16, K, 41, 2); /* max_batch 2: atk_run cuts 6 runs into 3 batches */
    float xs[N * D], xr[N * (K - 1) * D], xad[N * (K - 1) * D], xd[N * (K - 1) * D];
    fill_uniform(xs, N * D, 0.0f, 1.0f, 42);
    int ys[N] = {0, 1, 2}, tr[N * (K - 1)], itd[N * (K - 1)];
    size_t idx[N * (K - 1)];
    atk_targets_all(ys, N, K, idx, tr);
    int yr[N * (K - 1)];
    for (size_t i = 0; i < N * (K - 1); i++) {
        memcpy(xr + i * D, xs + idx[i] * D, D * sizeof(float));
        yr[i] = ys[idx[i]];
    }
    cfg = atk_cfg_default(ATK_JSMA);
    atk_result res[N * (K - 1)];
    prog pr = {0, 0.0, 0.0};
    assert_int_equal(atk_run(net, &cfg, xr, yr, tr, N * (K - 1), xad, res, on_progress, &pr, NULL), NN_OK);
    assert_true(pr.calls >= 3);
    assert_close(pr.last, (double)(N * (K - 1)), 0.0, 0.0);
    for (size_t i = 0; i < N * (K - 1); i++) {
        assert_int_equal(jsma_direct(net, &cfg, xr + i * D, tr + i, 1, xd + i * D, itd + i, NULL), NN_OK);
        assert_int_equal(res[i].iters, itd[i]);
        assert_true(res[i].l0 <= 8.0f);
        assert_int_equal(res[i].success, res[i].pred == tr[i]);
        assert_int_equal(res[i].pred, predict1(net, xad + i * D));
    }
    assert_memory_equal(xad, xd, sizeof xd);
    nn_net_destroy(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_picks_obvious_pairs),
        cmocka_unit_test(test_ties_lowest_pair),
        cmocka_unit_test(test_strict_admissibility),
        cmocka_unit_test(test_already_target_unchanged),
        cmocka_unit_test(test_budget_and_range),
        cmocka_unit_test(test_saturation_masks_gradients),
        cmocka_unit_test(test_gradients_finite_differences),
        cmocka_unit_test(test_batch_and_thread_invariance),
        cmocka_unit_test(test_nonfinite_gradient),
        cmocka_unit_test(test_through_atk_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
