/* test_atk_bss.c - boundary-supporting samples: the step on affine teachers against its closed form, the
 * per-sample stop rule, the target policies (chi-square against the teacher's softmax), base-sample
 * selection, the teacher's immutability, thread/chunk/seed independence, the step direction against central
 * differences on an MLP, and the configuration and argument errors.
 *
 * The file includes attacks/atk_bss.c to reach its static pieces (bss_run, bss_dlogits); the library's copy
 * of the module is then not linked into this executable. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "test_atk_util.h" /* after test_util.h */

#include "atk_bss.c"

/* ---------- helpers ---------- */

#define NUDGE 1e-4 /* the official step's constant (attack_BSS.py: pert + 1e-4) */

static int argmax_f(const float *z, size_t k) {
    int a = 0;
    for (size_t j = 1; j < k; j++)
        if (z[j] > z[a]) a = (int)j;
    return a;
}

static atk_bss_cfg bss_cfg(float eta, int steps, float lo, float hi) {
    atk_bss_cfg c = atk_bss_cfg_default();
    c.eta = eta, c.steps = steps, c.lo = lo, c.hi = hi;
    return c;
}

/* An affine teacher z = W x + c, 4 features -> 4 classes, made so that from X0 = (0.5, 0.5, 0.5, 0.5):
 *   class 0 is the top one (z = 1.25), classes 1 and 2 are 0.9 below it (z = 0.35), class 3 far below;
 *   w_1 - w_0 = (-0.6, 0.8, 0, 0) (norm 1), w_2 - w_0 = (0, 0, 2, 0) (norm 2), orthogonal: a step
 *   towards class 1 leaves z_2 - z_0 unchanged and vice versa, and neither brings class 3 near. */
enum { AD = 4, AK = 4 };
static const double AW[AK][AD] = {{0.5, 0, 0, 0}, {-0.1, 0.8, 0, 0}, {0.5, 0, 2, 0}, {0, 0, 0, 1}};
static const double AB[AK] = {1.0, 0.0, -0.9, -10.0};
static const double AX0[AD] = {0.5, 0.5, 0.5, 0.5};

static nn_net *affine_make(size_t max_batch) {
    return atk_test_linear_d(AD, AK, &AW[0][0], AB, max_batch);
}

/* z_b - z_k of the affine teacher at x (double). */
static double affine_gap(const float *x, int b, int k) {
    double g = AB[b] - AB[k];
    for (size_t e = 0; e < AD; e++)
        g += (AW[b][e] - AW[k][e]) * (double)x[e];
    return g;
}

/* |w_k - w_b| and the unit direction u = (w_k - w_b) / |w_k - w_b| of the affine teacher. */
static double affine_dir(int b, int k, double *u) {
    double a2 = 0.0;
    for (size_t e = 0; e < AD; e++)
        a2 += (AW[k][e] - AW[b][e]) * (AW[k][e] - AW[b][e]);
    for (size_t e = 0; e < AD; e++)
        u[e] = (AW[k][e] - AW[b][e]) / sqrt(a2);
    return sqrt(a2);
}

static void gen_ok(nn_net *t, const atk_bss_cfg *cfg, const float *x, size_t n, size_t first, const int *tg,
                   float *out, atk_bss_result *res, float *logits) {
    nn_err err;
    nn_err_clear(&err);
    if (atk_bss_generate(t, cfg, x, n, first, tg, out, res, logits, &err)) fail_msg("generate: %s", err.msg);
}

/* ---------- 1. the step on an affine teacher ---------- */

/* Closed form: every step moves x along u = (w_k - w_b)/a, a = |w_k - w_b|, by eta (gap + 1e-4), so
 *     gap_{t+1} = gap_t - eta a (gap_t + 1e-4),   x_t = x_0 + (sum_{s<t} eta (gap_s + 1e-4)) u.
 * With eta a = 1 the first step lands on the b/k hyperplane (1e-4 / a past it); with eta a = 0.6 (target 2,
 * eta 0.3) each of 6 steps shrinks the gap by the factor 0.4 without crossing. Checked: the gap after each
 * number of steps (one run per `steps`), x, l2, steps, crossed, pred and the returned logits. */
static void test_bss_affine_closed_form(void **state) {
    (void)state;
    nn_net *net = affine_make(4);
    const struct {
        float eta;
        int target, steps, crosses_at; /* 0: never */
    } cases[] = {{1.0f, 1, 5, 1}, {0.5f, 2, 5, 1}, {0.3f, 2, 6, 0}, {0.3f, 1, 6, 0}};
    float x[AD], out[AD], z[AK];
    for (size_t e = 0; e < AD; e++)
        x[e] = (float)AX0[e];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double u[AD], a = affine_dir(0, cases[c].target, u), prev = affine_gap(x, 0, cases[c].target);
        assert_close(prev, 0.9, 1e-6, 0);
        double gap = prev, moved = 0.0;
        for (int s = 1; s <= cases[c].steps; s++) {
            atk_bss_cfg cfg = bss_cfg(cases[c].eta, s, -5.0f, 5.0f);
            atk_bss_result r;
            int tg = cases[c].target;
            gen_ok(net, &cfg, x, 1, 0, &tg, out, &r, z);
            if (gap > 0) { /* the closed form takes the step */
                moved += cases[c].eta * (gap + NUDGE);
                gap -= cases[c].eta * a * (gap + NUDGE);
            }
            double now = affine_gap(out, 0, tg);
            assert_close(now, gap, 2e-6, 0);
            assert_true(now < prev || (cases[c].crosses_at && s > cases[c].crosses_at));
            prev = now;
            for (size_t e = 0; e < AD; e++)
                assert_close(out[e], AX0[e] + moved * u[e], 2e-6, 0);
            assert_close(r.l2, moved, 2e-6, 1e-6);
            int crossed = cases[c].crosses_at && s >= cases[c].crosses_at;
            assert_int_equal(r.steps, crossed ? cases[c].crosses_at : s);
            assert_int_equal(r.crossed, crossed);
            assert_int_equal(r.pred, crossed ? tg : 0);
            assert_int_equal(r.base, 0);
            assert_int_equal(r.target, tg);
            assert_int_equal(argmax_f(z, AK), r.pred);
            assert_close((double)z[0] - (double)z[tg], now, 2e-6, 0);
            if (cases[c].crosses_at == 1) { /* eta a = 1: on the hyperplane, 1e-4 / a past it */
                assert_close(now / a, -NUDGE / a, 2e-6, 0);
                assert_close(r.l2, 0.9 / a + NUDGE * cases[c].eta, 2e-6, 0); /* the analytic distance */
            }
        }
    }
    nn_net_destroy(net);
}

/* The box: a step that would leave [lo, hi] is clipped coordinate-wise. */
static void test_bss_affine_clip(void **state) {
    (void)state;
    nn_net *net = affine_make(1);
    float x[AD], out[AD];
    for (size_t e = 0; e < AD; e++)
        x[e] = (float)AX0[e];
    atk_bss_cfg cfg = bss_cfg(1.0f, 1, 0.0f, 0.6f);
    int tg = 1; /* the unclipped step goes to (0.5 - 0.54006, 0.5 + 0.72008, 0.5, 0.5) */
    atk_bss_result r;
    gen_ok(net, &cfg, x, 1, 0, &tg, out, &r, NULL);
    assert_true(out[0] == 0.0f && out[1] == 0.6f && out[2] == 0.5f && out[3] == 0.5f);
    assert_int_equal(r.steps, 1);
    assert_close(r.l2, sqrt(0.25 + 0.01), 1e-6, 0);
    nn_net_destroy(net);
}

/* ---------- 3. the per-sample stop rule ---------- */

/* Two samples at X0 in one batch, eta 0.5: towards class 2 (eta a = 1) the first step crosses and the
 * sample stops (its x stays that of step 1, bitwise); towards class 1 (eta a = 0.5) the gap halves each step
 * and the sample steps until cfg->steps. */
static void test_bss_stop_rule(void **state) {
    (void)state;
    enum { N = 2 };
    nn_net *net = affine_make(N);
    float x[N * AD], out[N * AD], out1[N * AD];
    for (size_t i = 0; i < N * AD; i++)
        x[i] = (float)AX0[i % AD];
    int tg[N] = {1, 2};
    atk_bss_result r[N], r1[N];
    atk_bss_cfg cfg = bss_cfg(0.5f, 5, -5.0f, 5.0f);
    gen_ok(net, &cfg, x, N, 0, tg, out, r, NULL);
    cfg.steps = 1;
    gen_ok(net, &cfg, x, N, 0, tg, out1, r1, NULL);
    assert_int_equal(r[1].steps, 1);
    assert_int_equal(r[1].crossed, 1);
    assert_memory_equal(out + AD, out1 + AD, AD * sizeof(float));
    assert_int_equal(r[0].steps, 5);
    assert_int_equal(r[0].crossed, 0);
    assert_close(affine_gap(out, 0, 1), 0.9001 / 32 - NUDGE, 2e-6, 0);
    for (size_t i = 0; i < N; i++)
        assert_true(r[i].steps >= 0 && r[i].steps <= 5);
    nn_net_destroy(net);
}

/* A target equal to the top class (b is the argmax: such a sample would be "crossed" at step 0) and targets
 * out of range are rejected. */
static void test_bss_given_target_errors(void **state) {
    (void)state;
    nn_net *net = affine_make(2);
    float x[2 * AD], out[2 * AD];
    for (size_t i = 0; i < 2 * AD; i++)
        x[i] = (float)AX0[i % AD];
    atk_bss_cfg cfg = bss_cfg(0.3f, 3, 0.0f, 1.0f);
    nn_err err;
    int tg[2] = {1, 0};
    assert_int_equal(atk_bss_generate(net, &cfg, x, 2, 40, tg, out, NULL, NULL, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "top class"));
    assert_non_null(strstr(err.msg, "sample 41"));
    tg[1] = 4;
    assert_int_equal(atk_bss_generate(net, &cfg, x, 2, 0, tg, out, NULL, NULL, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "out of range"));
    tg[1] = -1;
    assert_int_equal(atk_bss_generate(net, &cfg, x, 2, 0, tg, out, NULL, NULL, &err), NN_E_INVAL);
    nn_net_destroy(net);
}

/* ---------- 2. target policies ---------- */

/* A teacher with fixed logits: z = W x + c at x = 0 is c (exactly: 0 * w sums to 0). */
enum { SD = 2, SK = 5 };
static const double SC[SK] = {0.3, 1.1, -0.4, 2.0, 0.6}; /* top class 3; second 1 */

static nn_net *fixed_make(size_t max_batch) {
    double w[SK * SD];
    for (size_t i = 0; i < SK * SD; i++)
        w[i] = 0.25 * (double)((i * 7) % 5) - 0.4; /* any nonzero W: x = 0 fixes the logits */
    return atk_test_linear_d(SD, SK, w, SC, max_batch);
}

/* Pearson's chi-square of counts[m] against probabilities q[m] over n draws. */
static double chi2(const size_t *counts, const double *q, size_t m, size_t n) {
    double s = 0.0;
    for (size_t j = 0; j < m; j++) {
        double e = q[j] * (double)n;
        s += ((double)counts[j] - e) * ((double)counts[j] - e) / e;
    }
    return s;
}

/* SAMPLE over 20000 draws: frequencies p_k / (1 - p_top) (chi-square, 3 dof, p = 0.001 critical value
 * 16.266); the first draws reproduced exactly from their streams (sorted inverse CDF); UNIFORM: uniform
 * (same test); SECOND: always the second-best; `first` selects the streams. */
static void test_bss_target_policies(void **state) {
    (void)state;
    enum { N = 20000 };
    nn_net *net = fixed_make(1024);
    float *x = calloc(N * SD, sizeof *x), *out = malloc(N * SD * sizeof *out);
    atk_bss_result *r = malloc(N * sizeof *r), r2[50];
    double p[SK], sum = 0.0, q[SK - 1], qu[SK - 1]; /* q: p_k / (1 - p_top) over the classes k != 3 */
    for (size_t j = 0; j < SK; j++)
        sum += p[j] = exp(SC[j]);
    for (size_t j = 0; j < SK; j++)
        p[j] /= sum;
    for (size_t j = 0, m = 0; j < SK; j++)
        if (j != 3) qu[m] = 1.0 / (SK - 1), q[m++] = p[j] / (1.0 - p[3]);
    atk_bss_cfg cfg = bss_cfg(0.3f, 1, -1.0f, 1.0f);
    cfg.seed = 77;
    for (int pol = 0; pol < 3; pol++) {
        cfg.policy = pol == 0 ? ATK_BSS_SAMPLE : pol == 1 ? ATK_BSS_UNIFORM : ATK_BSS_SECOND;
        gen_ok(net, &cfg, x, N, 1000, NULL, out, r, NULL);
        size_t counts[SK - 1] = {0};
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(r[i].base, 3);
            assert_int_equal(r[i].sample, i);
            assert_true(r[i].target >= 0 && r[i].target < SK && r[i].target != 3);
            if (pol == 2) assert_int_equal(r[i].target, 1);
            counts[r[i].target < 3 ? r[i].target : r[i].target - 1]++;
        }
        if (pol < 2) {
            double c2 = chi2(counts, pol ? qu : q, SK - 1, N);
            if (!(c2 < 16.266)) fail_msg("policy %d: chi-square %.2f >= 16.266", pol, c2);
        }
        if (pol == 0) { /* the draws themselves: u from stream (seed, first + i), classes 1, 4, 0, 2 */
            const int order[SK - 1] = {1, 4, 0, 2};
            for (size_t i = 0; i < 50; i++) {
                nn_rng rng;
                nn_rng_seed_stream(&rng, 77, 1000 + i);
                double thr = nn_rng_uniform_d(&rng) * (1.0 - p[3]), cum = 0.0;
                int want = order[SK - 2];
                for (size_t c = 0; c < SK - 1; c++)
                    if ((cum += p[order[c]]) >= thr) {
                        want = order[c];
                        break;
                    }
                assert_int_equal(r[i].target, want);
            }
            gen_ok(net, &cfg, x, 50, 1000 + 300, NULL, out, r2, NULL); /* samples 300.. of the big call */
            for (size_t i = 0; i < 50; i++)
                assert_int_equal(r2[i].target, r[300 + i].target);
        }
    }
    free(x), free(out), free(r);
    nn_net_destroy(net);
}

/* ALL: K - 1 rows per sample, sample-major, every class but the top one once in increasing order, chunks
 * splitting a sample's rows (max_batch 3); count; given targets make one row per sample whatever the policy.
 */
static void test_bss_all_policy(void **state) {
    (void)state;
    enum { N = 3 };
    nn_net *net = fixed_make(3);
    float x[N * SD] = {0}, out[N * (SK - 1) * SD], lg[N * (SK - 1) * SK];
    atk_bss_result r[N * (SK - 1)];
    atk_bss_cfg cfg = bss_cfg(0.3f, 2, -1.0f, 1.0f);
    cfg.policy = ATK_BSS_ALL;
    assert_int_equal(atk_bss_count(&cfg, N, SK), N * (SK - 1));
    gen_ok(net, &cfg, x, N, 0, NULL, out, r, lg);
    const int want[SK - 1] = {0, 1, 2, 4};
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < SK - 1; j++) {
            const atk_bss_result *o = r + i * (SK - 1) + j;
            assert_int_equal(o->sample, i);
            assert_int_equal(o->base, 3);
            assert_int_equal(o->target, want[j]);
            assert_int_equal(o->pred, argmax_f(lg + (i * (SK - 1) + j) * SK, SK));
        }
    int tg[N] = {0, 4, 2};
    gen_ok(net, &cfg, x, N, 0, tg, out, r, NULL);
    for (size_t i = 0; i < N; i++)
        assert_true(r[i].sample == i && r[i].target == tg[i]);
    cfg.policy = ATK_BSS_SAMPLE;
    assert_int_equal(atk_bss_count(&cfg, N, SK), N);
    nn_net_destroy(net);
}

/* ---------- 4. selection ---------- */

enum { QD = 3, QN = 12 };

/* Teacher z = 2x, student z = x + (0, 0.6, 0): they disagree on some argmaxes and by varying amounts. */
static void sel_nets(nn_net **t, nn_net **s, size_t max_batch) {
    const double wt[9] = {2, 0, 0, 0, 2, 0, 0, 0, 2}, ws[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const double bt[3] = {0, 0, 0}, bs[3] = {0, 0.6, 0};
    *t = atk_test_linear_d(QD, 3, wt, bt, max_batch);
    *s = atk_test_linear_d(QD, 3, ws, bs, max_batch);
}

/* The expected selection, computed directly: candidates, scores in double, then repeated argmax. */
static size_t sel_expected(const float *x, const int *y, size_t n, int student, size_t max_base,
                           size_t *want) {
    double score[QN];
    int cand[QN];
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * QD;
        double zt[3], zs[3], st = 0, ss = 0;
        for (size_t j = 0; j < 3; j++)
            zt[j] = 2.0 * xi[j], zs[j] = xi[j] + (j == 1 ? 0.6 : 0.0);
        int at = 0, as = 0;
        for (int j = 1; j < 3; j++)
            at = zt[j] > zt[at] ? j : at, as = (float)zs[j] > (float)zs[as] ? j : as;
        cand[i] = at == y[i] && (!student || as == y[i]);
        for (size_t j = 0; j < 3; j++)
            st += exp(zt[j]), ss += exp(zs[j]);
        score[i] = 0;
        for (size_t j = 0; j < 3; j++)
            if ((int)j != y[i]) score[i] += pow(exp(zt[j]) / st - exp(zs[j]) / ss, 2);
        if (!student) score[i] = 0;
    }
    size_t m = 0;
    while (m < max_base) {
        int best = -1;
        for (size_t i = 0; i < n; i++)
            if (cand[i] && (best < 0 || score[i] > score[best])) best = (int)i;
        if (best < 0) break;
        want[m++] = (size_t)best;
        cand[best] = 0;
    }
    return m;
}

/* Only samples right for both, by decreasing disagreement (ties by index: sample 9 copies sample 2),
 * capped at max_base; without a student the first correct ones by index; chunked predictions. */
static void test_bss_select(void **state) {
    (void)state;
    nn_net *t, *s;
    sel_nets(&t, &s, 5); /* smaller than the batch: predictions in chunks */
    float x[QN * QD];
    int y[QN];
    nn_rng rng;
    nn_rng_seed(&rng, 4);
    for (size_t i = 0; i < QN * QD; i++)
        x[i] = nn_rng_uniform(&rng);
    memcpy(x + 9 * QD, x + 2 * QD, QD * sizeof(float));
    for (size_t i = 0; i < QN; i++)
        y[i] = argmax_f(x + i * QD, QD);
    y[4] = (y[4] + 1) % 3; /* wrong for the teacher */
    size_t sel[QN], want[QN], n_sel;
    nn_err err;
    for (int with = 0; with <= 1; with++)
        for (size_t mb = 1; mb <= QN; mb += 3) {
            atk_bss_cfg cfg = atk_bss_cfg_default();
            cfg.max_base = mb;
            size_t m = sel_expected(x, y, QN, with, mb, want);
            assert_int_equal(atk_bss_select(t, with ? s : NULL, &cfg, x, y, QN, NULL, sel, &n_sel, &err),
                             NN_OK);
            assert_int_equal(n_sel, m);
            assert_memory_equal(sel, want, m * sizeof *sel);
            for (size_t r = 0; r < n_sel; r++)
                assert_true(sel[r] != 4);
        }
    /* the teacher's logits given by the caller: the same selection, and they are what is used */
    float zt[QN * 3];
    atk_bss_cfg cg = atk_bss_cfg_default();
    size_t n_given;
    assert_int_equal(nn_net_predict(t, x, QN, zt, &err), NN_OK);
    assert_int_equal(atk_bss_select(t, s, &cg, x, y, QN, NULL, want, &n_sel, &err), NN_OK);
    assert_int_equal(atk_bss_select(t, s, &cg, x, y, QN, zt, sel, &n_given, &err), NN_OK);
    assert_int_equal(n_given, n_sel);
    assert_memory_equal(sel, want, n_sel * sizeof *sel);
    assert_true(n_sel > 0);
    size_t drop = want[0];
    zt[drop * 3 + (size_t)(y[drop] + 1) % 3] =
        zt[drop * 3 + (size_t)y[drop]] + 1.0f; /* wrong for the "teacher" */
    assert_int_equal(atk_bss_select(t, s, &cg, x, y, QN, zt, sel, &n_given, &err), NN_OK);
    assert_int_equal(n_given, n_sel - 1);
    for (size_t r = 0; r < n_given; r++)
        assert_true(sel[r] != drop);
    /* the student rejects some that the teacher accepts, and the tie is ordered by index */
    atk_bss_cfg cfg = atk_bss_cfg_default();
    size_t n_t, n_ts;
    assert_int_equal(atk_bss_select(t, NULL, &cfg, x, y, QN, NULL, sel, &n_t, &err), NN_OK);
    for (size_t r = 1; r < n_t; r++)
        assert_true(sel[r] > sel[r - 1]);
    assert_int_equal(atk_bss_select(t, s, &cfg, x, y, QN, NULL, sel, &n_ts, &err), NN_OK);
    assert_true(n_ts < n_t && n_ts >= 3);
    size_t p2 = QN, p9 = QN;
    for (size_t r = 0; r < n_ts; r++)
        p2 = sel[r] == 2 ? r : p2, p9 = sel[r] == 9 ? r : p9;
    assert_true(p2 < QN && p9 == p2 + 1);
    y[0] = 3;
    assert_int_equal(atk_bss_select(t, s, &cfg, x, y, QN, NULL, sel, &n_sel, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "label"));
    nn_net_destroy(s);
    s = atk_test_linear_d(QD, 2, (const double[]){1, 0, 0, 0, 1, 0}, (const double[]){0, 0}, 4);
    y[0] = 0;
    assert_int_equal(atk_bss_select(t, s, &cfg, x, y, QN, NULL, sel, &n_sel, &err), NN_E_SHAPE);
    nn_net_destroy(s);
    nn_net_destroy(t);
}

/* ---------- 5. teacher immutability, threads, chunks, seeds ---------- */

/* An MLP teacher (D 64 -> 16 -> 5), N * D above the OpenMP threshold: parameters and gradients bitwise
 * unchanged; 1 vs 2 threads bitwise the same; the outputs in the box; logits = the teacher's on out; l2,
 * pred, crossed and steps consistent. */
static void test_bss_mlp_threads_teacher(void **state) {
    (void)state;
    enum { N = 300, D = 64, K = 5 };
    nn_net *net = atk_test_mlp(D, 16, K, 9, N);
    assert_true(N * D >= BSS_OMP_MIN);
    size_t nb = net->n_params * sizeof(float);
    float *x = malloc(sizeof(float) * N * D * 3), *o2 = x + N * D, *o1 = o2 + N * D;
    float *keep = malloc(2 * nb), *lg2 = malloc(sizeof(float) * N * K * 3), *lg1 = lg2 + N * K,
          *zp = lg1 + N * K;
    atk_bss_result *r2 = malloc(2 * N * sizeof *r2), *r1 = r2 + N;
    nn_rng rng;
    nn_rng_seed(&rng, 3);
    for (size_t i = 0; i < (size_t)N * D; i++)
        x[i] = nn_rng_uniform(&rng);
    for (size_t i = 0; i < net->n_params; i++)
        net->grads[i] = nn_rng_normal(&rng);
    memcpy(keep, net->params, nb);
    memcpy((char *)keep + nb, net->grads, nb);
    atk_bss_cfg cfg = bss_cfg(0.3f, 10, 0.0f, 1.0f);
    cfg.seed = 5;
    omp_set_num_threads(2);
    gen_ok(net, &cfg, x, N, 0, NULL, o2, r2, lg2);
    assert_memory_equal(keep, net->params, nb);
    assert_memory_equal((char *)keep + nb, net->grads, nb);
    omp_set_num_threads(1);
    gen_ok(net, &cfg, x, N, 0, NULL, o1, r1, lg1);
    omp_set_num_threads(2);
    assert_memory_equal(o1, o2, sizeof(float) * N * D);
    assert_memory_equal(lg1, lg2, sizeof(float) * N * K);
    assert_memory_equal(r1, r2, N * sizeof *r1);
    nn_err err;
    assert_int_equal(nn_net_predict(net, o2, N, zp, &err), NN_OK);
    /* the generator evaluates the still-active rows as a smaller batch: sgemm may round a row's last bits
     * differently for another number of rows */
    assert_close_array(lg2, zp, (size_t)N * K, 1e-5, 1e-5, "logits vs nn_net_predict");
    size_t crossed = 0;
    for (size_t i = 0; i < N; i++) {
        double l2 = 0;
        for (size_t e = 0; e < D; e++) {
            assert_true(o2[i * D + e] >= 0.0f && o2[i * D + e] <= 1.0f);
            l2 += pow((double)o2[i * D + e] - (double)x[i * D + e], 2);
        }
        assert_close(r2[i].l2, sqrt(l2), 1e-6, 1e-5);
        assert_int_equal(r2[i].pred, argmax_f(lg2 + i * K, K));
        assert_int_equal(r2[i].crossed, r2[i].pred != r2[i].base);
        assert_true(r2[i].steps >= 1 && r2[i].steps <= 10);
        if (!r2[i].crossed) assert_int_equal(r2[i].steps, 10);
        assert_true(r2[i].target != r2[i].base);
        crossed += r2[i].crossed;
    }
    assert_true(crossed >= N / 10 && crossed < N); /* 74 of 300 here: both kinds of rows occur */
    free(x), free(keep), free(lg2), free(r2);
    nn_net_destroy(net);
}

/* Chunking (max_batch 7 vs 600) and seeds, on a 4-feature affine net whose logits do not depend on the
 * batch composition (checked first: OpenBLAS's sgemm can change a row's last bits with the number of rows
 * for inner dimensions >= 8, so this test avoids them). SAMPLE and ALL policies; the same seed gives the
 * same results, another seed other targets. */
static void test_bss_chunks_and_seeds(void **state) {
    (void)state;
    enum { N = 600, M = N * (AK - 1) };
    nn_net *big = affine_make(M), *small = affine_make(7);
    float *x = malloc(sizeof(float) * (N * AD + 2 * M * AD + 2 * M * AK));
    float *oa = x + N * AD, *ob = oa + M * AD, *la = ob + M * AD, *lb = la + M * AK;
    atk_bss_result *ra = malloc(2 * M * sizeof *ra), *rb = ra + M;
    nn_rng rng;
    nn_rng_seed(&rng, 12);
    for (size_t i = 0; i < (size_t)N * AD; i++)
        x[i] = nn_rng_uniform(&rng); /* top class 0 or 2 */
    const float *z;
    nn_err err;
    float zb[7 * AK];
    assert_int_equal(nn_net_forward(big, x, N, 0, NULL, &z, &err), NN_OK);
    memcpy(zb, z, sizeof zb);
    assert_int_equal(nn_net_forward(small, x, 7, 0, NULL, &z, &err), NN_OK);
    if (memcmp(z, zb, sizeof zb)) fail_msg("the affine net's logits change with the batch: premise fails");
    atk_bss_cfg cfg = bss_cfg(0.3f, 10, 0.0f, 1.0f);
    for (int pol = 0; pol < 2; pol++) {
        cfg.policy = pol ? ATK_BSS_ALL : ATK_BSS_SAMPLE;
        size_t m = atk_bss_count(&cfg, N, AK);
        gen_ok(big, &cfg, x, N, 0, NULL, oa, ra, la);
        gen_ok(small, &cfg, x, N, 0, NULL, ob, rb, lb);
        assert_memory_equal(oa, ob, sizeof(float) * m * AD);
        assert_memory_equal(la, lb, sizeof(float) * m * AK);
        assert_memory_equal(ra, rb, m * sizeof *ra);
        size_t crossed = 0, bases = 0;
        for (size_t i = 0; i < m; i++)
            crossed += ra[i].crossed, bases |= 1u << ra[i].base;
        assert_true(crossed > m / 10 && crossed < m && bases == 5u); /* not degenerate: bases 0 and 2 */
    }
    cfg.policy = ATK_BSS_SAMPLE;
    gen_ok(big, &cfg, x, N, 0, NULL, oa, ra, NULL);
    gen_ok(big, &cfg, x, N, 0, NULL, ob, rb, NULL);
    assert_memory_equal(oa, ob, sizeof(float) * N * AD);
    assert_memory_equal(ra, rb, N * sizeof *ra);
    cfg.seed = 99;
    gen_ok(big, &cfg, x, N, 0, NULL, ob, rb, NULL);
    size_t differ = 0;
    for (size_t i = 0; i < N; i++)
        differ += ra[i].target != rb[i].target;
    assert_true(differ > N / 10);
    free(x), free(ra);
    nn_net_destroy(big);
    nn_net_destroy(small);
}

/* ---------- 6. the step direction against central differences ---------- */

typedef struct gc_ctx {
    nn_net *net;
    size_t n;
    const int *b, *k;
    unsigned char sig0[64], sig1[64];
} gc_ctx;

/* sum over the rows of z_k - z_b at x; the hidden ReLU pattern goes to sig if given. */
static double gc_margin(gc_ctx *g, const float *x, unsigned char *sig) {
    const float *z;
    assert_int_equal(nn_net_forward(g->net, x, g->n, 0, NULL, &z, NULL), NN_OK);
    size_t kk = g->net->n_classes, hid = g->n * g->net->layers[1].out.c;
    for (size_t e = 0; sig && e < hid; e++)
        sig[e] = g->net->act[1][e] > 0.0f;
    double s = 0.0;
    for (size_t r = 0; r < g->n; r++)
        s += (double)z[r * kk + (size_t)g->k[r]] - (double)z[r * kk + (size_t)g->b[r]];
    return s;
}

static double gc_f(void *p, const float *x) {
    return gc_margin(p, x, NULL);
}

/* Skips a coordinate whose +-h moves change the ReLU pattern (a kink inside the difference). */
static int gc_skip(void *p, const float *x, size_t i, double h) {
    gc_ctx *g = p;
    float *xm = (float *)x, keep = x[i];
    gc_margin(g, x, g->sig0);
    int crossed = 0;
    for (int s = -1; s <= 1 && !crossed; s += 2) {
        xm[i] = (float)((double)keep + s * h);
        gc_margin(g, xm, g->sig1);
        crossed = memcmp(g->sig0, g->sig1, sizeof g->sig0) != 0;
    }
    xm[i] = keep;
    return crossed;
}

/* g = d(z_k - z_b)/dx from the generator's first evaluation (all rows active, given targets) against
 * central differences; then one generate step equals clip(x + eta (z_b - z_k + 1e-4) g / |g|). */
static void test_bss_direction_gradcheck(void **state) {
    (void)state;
    enum { N = 3, D = 6, K = 4 };
    nn_net *net = atk_test_mlp(D, 8, K, 21, N);
    float x[N * D], zf[N * K], out[N * D];
    nn_rng rng;
    nn_rng_seed(&rng, 8);
    for (size_t i = 0; i < N * D; i++)
        x[i] = -1.0f + 2.0f * nn_rng_uniform(&rng);
    nn_err err;
    assert_int_equal(nn_net_predict(net, x, N, zf, &err), NN_OK);
    int b[N], k[N];
    for (size_t r = 0; r < N; r++)
        b[r] = argmax_f(zf + r * K, K), k[r] = (b[r] + 1 + (int)r) % K;
    atk_bss_cfg cfg = bss_cfg(0.3f, 1, -3.0f, 3.0f);
    bss_run s;
    memset(&s, 0, sizeof s);
    s.net = net, s.cfg = &cfg, s.x = x, s.given = k, s.n = N, s.d = D, s.k = K, s.per = 1, s.m = N, s.cap = N;
    s.n_eval = N; /* the first evaluation covers every row */
    assert_int_equal(bss_run_alloc(&s, &err), NN_OK);
    memcpy(out, x, sizeof x);
    s.xa = out;
    assert_int_equal(nn_net_input_grad(net, out, N, bss_dlogits, &s, s.dx, &err), NN_OK);
    assert_int_equal(s.n_active, N);
    for (size_t r = 0; r < N; r++)
        assert_true(s.base[r] == b[r] && s.target[r] == k[r] && s.state[r] == BSS_ACTIVE);
    gc_ctx g = {net, N, b, k, {0}, {0}};
    size_t checked = gradcheck(gc_f, gc_skip, &g, x, N * D, s.dx, 1e-3, 1e-4, 1e-2, 64, "d(z_k - z_b)/dx");
    assert_true(checked >= N * D * 3 / 4);
    float want[N * D];
    for (size_t r = 0; r < N; r++) {
        const float *gr = s.dx + r * D;
        double g2 = 0;
        for (size_t e = 0; e < D; e++)
            g2 += (double)gr[e] * gr[e];
        double c = 0.3 * ((double)zf[r * K + b[r]] - zf[r * K + k[r]] + 1e-4) / sqrt(g2);
        for (size_t e = 0; e < D; e++)
            want[r * D + e] = (float)fmin(fmax(x[r * D + e] + c * gr[e], -3.0), 3.0);
    }
    bss_run_free(&s);
    atk_bss_result res[N];
    gen_ok(net, &cfg, x, N, 0, k, out, res, NULL);
    assert_close_array(out, want, N * D, 1e-6, 1e-6, "one step");
    nn_net_destroy(net);
}

/* ---------- 7. configuration and argument errors ---------- */

static void expect_bad(const atk_bss_cfg *c, const char *field) {
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(atk_bss_cfg_validate(c, &err), NN_E_INVAL);
    if (!strstr(err.msg, field)) fail_msg("message '%s' does not name '%s'", err.msg, field);
}

static void test_bss_cfg_validate(void **state) {
    (void)state;
    atk_bss_cfg d = atk_bss_cfg_default(), c;
    nn_err err;
    assert_int_equal(atk_bss_cfg_validate(&d, &err), NN_OK);
    assert_true(d.eta == 0.3f && d.steps == 10 && d.max_base == 64 && d.policy == ATK_BSS_SAMPLE);
    assert_true(d.lo == 0.0f && d.hi == 1.0f && d.seed == 0);
    const float bad_eta[] = {0.0f, -0.1f, NAN, INFINITY};
    for (size_t i = 0; i < 4; i++)
        c = d, c.eta = bad_eta[i], expect_bad(&c, "eta");
    c = d, c.steps = 0, expect_bad(&c, "steps");
    c = d, c.steps = 1001, expect_bad(&c, "steps");
    c = d, c.steps = 1000;
    assert_int_equal(atk_bss_cfg_validate(&c, &err), NN_OK);
    c = d, c.max_base = 0, expect_bad(&c, "max_base");
    c = d, c.policy = (atk_bss_policy)7, expect_bad(&c, "policy");
    c = d, c.lo = 1.0f, expect_bad(&c, "lo");
    c = d, c.hi = NAN, expect_bad(&c, "hi");
    /* generate and select validate too */
    nn_net *net = affine_make(2);
    float x[AD] = {0.5f, 0.5f, 0.5f, 0.5f}, out[AD];
    int y = 0;
    size_t sel, n_sel;
    c = d, c.eta = 0.0f;
    assert_int_equal(atk_bss_generate(net, &c, x, 1, 0, NULL, out, NULL, NULL, &err), NN_E_INVAL);
    assert_int_equal(atk_bss_select(net, NULL, &c, x, &y, 1, NULL, &sel, &n_sel, &err), NN_E_INVAL);
    assert_int_equal(atk_bss_generate(net, &d, NULL, 1, 0, NULL, out, NULL, NULL, &err), NN_E_INVAL);
    assert_int_equal(atk_bss_generate(net, &d, x, 0, 0, NULL, NULL, NULL, NULL, &err), NN_OK);
    net->params[2] = NAN;
    assert_int_equal(atk_bss_generate(net, &d, x, 1, 0, NULL, out, NULL, NULL, &err), NN_E_NUMERIC);
    assert_non_null(strstr(err.msg, "non-finite"));
    nn_net_destroy(net);
    nn_layer_cfg lc = nn_layer_cfg_default("dense");
    lc.units = 1;
    assert_int_equal(nn_net_create(&net, (nn_shape){AD, 1, 1}, &lc, 1, &err), NN_OK);
    assert_int_equal(atk_bss_generate(net, &d, x, 1, 0, NULL, out, NULL, NULL, &err),
                     NN_E_INVAL); /* unreserved */
    assert_int_equal(nn_net_reserve(net, 1, &err), NN_OK);
    assert_int_equal(atk_bss_generate(net, &d, x, 1, 0, NULL, out, NULL, NULL, &err), NN_E_SHAPE); /* K = 1 */
    nn_net_destroy(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bss_affine_closed_form),
        cmocka_unit_test(test_bss_affine_clip),
        cmocka_unit_test(test_bss_stop_rule),
        cmocka_unit_test(test_bss_given_target_errors),
        cmocka_unit_test(test_bss_target_policies),
        cmocka_unit_test(test_bss_all_policy),
        cmocka_unit_test(test_bss_select),
        cmocka_unit_test(test_bss_mlp_threads_teacher),
        cmocka_unit_test(test_bss_chunks_and_seeds),
        cmocka_unit_test(test_bss_direction_gradcheck),
        cmocka_unit_test(test_bss_cfg_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
