/* test_atk_pgd.c - FGSM/FGM, BIM and PGD, the attack objective, summaries and the masking diagnostics,
 * checked by properties on tiny models whose answers are known. */
#include "atk.h"
#include "atk_diag.h"
#include "nn_net.h"
#include "test_util.h"
#include "test_atk_util.h"

static void fill(float *a, size_t n, float lo, float hi, uint64_t seed) {
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * nn_rng_uniform(&rng);
}

static int run(nn_net *net, const atk_cfg *cfg, const float *x, const int *y, const int *t, size_t n, float *xa,
               atk_result *res) {
    nn_err err;
    nn_err_clear(&err);
    int rc = atk_run(net, cfg, x, y, t, n, xa, res, NULL, NULL, &err);
    if (rc) fail_msg("atk_run: %s", err.msg);
    return rc;
}

/* 2 classes: CE at label 0 has dL/dx = p_1 (W_1 - W_0), so FGSM moves by eps*sign(W_1 - W_0) exactly
 * and FGM by eps*(W_1 - W_0)/|W_1 - W_0| (closed form). */
static void test_fgsm_linear(void **s) {
    enum { D = 6 };
    float w[2 * D] = {0.5f, -1, 0.25f, 2, -0.5f, 1, /* class 0 */ -0.5f, 1, 0.5f, -1, 0.5f, 1.5f};
    float b[2] = {3, 0};
    nn_net *net = atk_test_linear(D, 2, w, b, 4);
    float x[D] = {0.5f, 0.4f, 0.6f, 0.5f, 0.45f, 0.55f}, xa[D];
    int y = 0;
    atk_result r;
    for (int l2 = 0; l2 < 2; l2++) {
        atk_cfg cfg = atk_cfg_default(ATK_FGSM);
        cfg.norm = l2 ? ATK_L2 : ATK_LINF;
        cfg.eps = 0.1f;
        run(net, &cfg, x, &y, NULL, 1, xa, &r);
        double nrm = 0;
        for (size_t j = 0; j < D; j++)
            nrm += (double)(w[D + j] - w[j]) * (w[D + j] - w[j]);
        for (size_t j = 0; j < D; j++) {
            double dw = w[D + j] - w[j];
            double want = l2 ? 0.1 * dw / sqrt(nrm) : 0.1 * (dw > 0 ? 1 : dw < 0 ? -1 : 0);
            assert_close(xa[j] - x[j], want, 1e-6, 1e-5);
        }
        assert_int_equal(r.iters, 1);
        assert_int_equal(r.clean_pred, 0);
    }
    nn_net_destroy(net);
}

/* PGD (L-inf and L2, CE and margin, targeted or not) stays in the eps-ball and the valid range. */
static void test_pgd_ball_and_range(void **s) {
    enum { N = 9, D = 10, K = 4 };
    nn_net *net = atk_test_mlp(D, 12, K, 3, 4);
    float x[N * D], xa[N * D];
    int y[N], t[N];
    fill(x, N * D, 0, 1, 5);
    for (int i = 0; i < N; i++)
        y[i] = i % K, t[i] = (i + 1) % K;
    atk_result res[N];
    for (int v = 0; v < 8; v++) {
        atk_cfg cfg = atk_cfg_default(ATK_PGD);
        cfg.norm = v & 1 ? ATK_L2 : ATK_LINF;
        cfg.loss = v & 2 ? ATK_LOSS_MARGIN : ATK_LOSS_CE;
        cfg.targeted = (v & 4) != 0;
        cfg.eps = cfg.norm == ATK_L2 ? 0.5f : 0.08f;
        cfg.iters = 10;
        cfg.restarts = 2;
        run(net, &cfg, x, y, cfg.targeted ? t : NULL, N, xa, res);
        for (int i = 0; i < N; i++) {
            float dist = cfg.norm == ATK_L2 ? res[i].l2 : res[i].linf;
            if (dist > cfg.eps * (1 + 1e-5f) + 1e-6f) fail_msg("variant %d sample %d: distortion %g > eps %g", v, i, dist, cfg.eps);
            for (int j = 0; j < D; j++)
                assert_true(xa[i * D + j] >= 0.0f && xa[i * D + j] <= 1.0f);
            assert_true(res[i].iters <= cfg.iters * cfg.restarts);
        }
    }
    nn_net_destroy(net);
}

/* Linear 3-class model with room to move: targeted PGD reaches every target; the untargeted one succeeds. */
static void test_pgd_targeted_hits(void **s) {
    enum { D = 4, K = 3 };
    float w[K * D] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    float b[K] = {0, 0, 0};
    nn_net *net = atk_test_linear(D, K, w, b, 8);
    float x[2 * D] = {0.6f, 0.4f, 0.4f, 0.5f, 0.4f, 0.4f, 0.6f, 0.5f}, xa[2 * D];
    int y[2] = {0, 2}, t[2] = {2, 1};
    atk_result r[2];
    atk_cfg cfg = atk_cfg_default(ATK_PGD);
    cfg.targeted = 1;
    cfg.eps = 0.3f;
    cfg.iters = 20;
    run(net, &cfg, x, y, t, 2, xa, r);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r[i].pred, t[i]);
        assert_true(r[i].success);
    }
    cfg.targeted = 0;
    cfg.loss = ATK_LOSS_MARGIN;
    run(net, &cfg, x, y, NULL, 2, xa, r);
    assert_true(r[0].success && r[1].success);
    nn_net_destroy(net);
}

/* Results depend neither on the batch size nor on where a sample sits in the batch (random starts). */
static void test_pgd_batch_independent(void **s) {
    enum { N = 7, D = 10, K = 4 };
    nn_net *a = atk_test_mlp(D, 12, K, 11, 2), *b = atk_test_mlp(D, 12, K, 11, 16);
    float x[N * D], xa[N * D], xb[N * D];
    int y[N];
    fill(x, N * D, 0, 1, 9);
    for (int i = 0; i < N; i++)
        y[i] = i % K;
    atk_result ra[N], rb[N];
    atk_cfg cfg = atk_cfg_default(ATK_PGD);
    cfg.eps = 0.05f;
    cfg.iters = 7;
    cfg.restarts = 3;
    run(a, &cfg, x, y, NULL, N, xa, ra);
    run(b, &cfg, x, y, NULL, N, xb, rb);
    assert_memory_equal(xa, xb, sizeof xa);
    for (int i = 0; i < N; i++)
        assert_int_equal(ra[i].iters, rb[i].iters);
    nn_net_destroy(a);
    nn_net_destroy(b);
}

/* An untargeted sample the model already gets wrong is left unchanged. */
static void test_misclassified_unchanged(void **s) {
    enum { D = 4, K = 3 };
    float w[K * D] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, b[K] = {0};
    nn_net *net = atk_test_linear(D, K, w, b, 4);
    float x[D] = {0.2f, 0.9f, 0.1f, 0.5f}, xa[D];
    int y = 0; /* predicted 1 */
    atk_result r;
    atk_cfg cfg = atk_cfg_default(ATK_PGD);
    run(net, &cfg, x, &y, NULL, 1, xa, &r);
    assert_memory_equal(x, xa, sizeof x);
    assert_true(r.success);
    assert_int_equal(r.iters, 0);
    assert_true(r.l2 == 0.0f);
    nn_net_destroy(net);
}

typedef struct obj_ctx {
    nn_net *net;
    atk_cfg cfg;
    int y, t;
} obj_ctx;

static double obj_at(void *vctx, const float *x) {
    obj_ctx *c = vctx;
    const float *z;
    nn_err err;
    nn_err_clear(&err);
    nn_net_forward(c->net, x, 1, 0, NULL, &z, &err);
    double o;
    float g[8];
    atk_objective(&c->cfg, z, &c->y, &c->t, 1, c->net->n_classes, &o, g);
    return o;
}

static int obj_dlogits(void *vctx, const float *z, size_t n, size_t k, float *g) {
    obj_ctx *c = vctx;
    atk_objective(&c->cfg, z, &c->y, &c->t, n, k, NULL, g);
    return 0;
}

/* Finite-difference check of each objective's input gradient (CE at T=1 and T=20, margin; targeted or not). */
static void test_objective_gradcheck(void **s) {
    enum { D = 10, K = 4 };
    nn_net *net = atk_test_mlp(D, 12, K, 21, 1);
    float x[D], g[D];
    fill(x, D, 0, 1, 4);
    for (int v = 0; v < 6; v++) {
        obj_ctx c = {net, atk_cfg_default(ATK_PGD), 1, 3};
        c.cfg.loss = v < 4 ? ATK_LOSS_CE : ATK_LOSS_MARGIN;
        c.cfg.temperature = v % 4 >= 2 ? 20.0f : 1.0f;
        c.cfg.targeted = v & 1;
        c.cfg.kappa = 100; /* never capped here */
        nn_err err;
        nn_err_clear(&err);
        assert_int_equal(nn_net_input_grad(net, x, 1, obj_dlogits, &c, g, &err), NN_OK);
        char what[32];
        snprintf(what, sizeof what, "objective variant %d", v);
        gradcheck(obj_at, NULL, &c, x, D, g, 4e-3, 3e-5, 5e-3, 64, what); /* float logits: atol covers their rounding */
    }
    nn_net_destroy(net);
}

/* Summary: 3 samples x 2 targets; hand-counted robust accuracy, success rate, medians and the eps bound. */
static void test_summarize(void **s) {
    atk_result r[6] = {0};
    float l2[6] = {1, 3, 2, 0, 0, 5};
    int succ[6] = {1, 1, 0, 0, 1, 1};
    for (int i = 0; i < 6; i++) {
        r[i].sample = (size_t)i / 2;
        r[i].label = 0;
        r[i].clean_pred = i / 2 == 2 ? 1 : 0; /* sample 2 misclassified from the start */
        r[i].success = succ[i];
        r[i].l2 = l2[i];
        r[i].l0 = 10 * l2[i];
        r[i].iters = i;
    }
    atk_summary sm;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(atk_summarize(r, 6, 100, 0, ATK_L2, -1, &sm, &err), NN_OK);
    assert_int_equal(sm.n_samples, 3);
    assert_int_equal(sm.n_correct, 4);
    assert_int_equal(sm.n_success, 2);              /* entries 0 and 1 */
    assert_close(sm.robust_acc, 1.0 / 3, 1e-12, 0); /* sample 1 only */
    assert_close(sm.success_rate, 0.5, 1e-12, 0);
    assert_close(sm.median_l2, 2.0, 1e-12, 0);
    assert_close(sm.rho_adv, 20.0 / 100, 1e-12, 0);
    assert_close(sm.mean_iters, 2.5, 1e-12, 0);
    assert_int_equal(sm.n_best, 1); /* sample 0: targets at l2 1 and 3 */
    assert_close(sm.best_case, 1.0, 1e-12, 0);
    assert_int_equal(sm.n_worst, 1);
    assert_close(sm.worst_case, 3.0, 1e-12, 0);
    assert_int_equal(atk_summarize(r, 6, 100, 0, ATK_L2, 2.0, &sm, &err), NN_OK);
    assert_int_equal(sm.n_success, 1); /* l2 = 3 exceeds the bound */
    assert_close(sm.robust_acc, 1.0 / 3, 1e-12, 0);
    assert_int_equal(sm.n_worst, 0); /* sample 0 is no longer broken on every target */
}

static void test_targets_all(void **s) {
    int y[2] = {1, 0}, t[6];
    size_t idx[6];
    atk_targets_all(y, 2, 4, idx, t);
    int want_t[6] = {0, 2, 3, 1, 2, 3};
    size_t want_i[6] = {0, 0, 0, 1, 1, 1};
    assert_memory_equal(t, want_t, sizeof t);
    assert_memory_equal(idx, want_i, sizeof idx);
}

/* A linear model with logits ~1e3 saturates the float32 softmax: zero input gradients, flagged in words;
 * the same model scaled down is not flagged. */
static void test_diag_saturated(void **s) {
    enum { N = 6, D = 5, K = 3 };
    float w[K * D], b[K] = {0}, x[N * D];
    int y[N];
    fill(w, K * D, -1, 1, 8);
    fill(x, N * D, 0, 1, 9);
    nn_net *net = atk_test_linear(D, K, w, b, 4);
    for (int i = 0; i < N; i++) {
        const float *z;
        nn_err err;
        nn_err_clear(&err);
        nn_net_forward(net, x + i * D, 1, 0, NULL, &z, &err);
        y[i] = z[0] > z[1] ? (z[0] > z[2] ? 0 : 2) : (z[1] > z[2] ? 1 : 2);
    }
    atk_diag d;
    nn_err err;
    nn_err_clear(&err);
    char buf[2048];
    assert_int_equal(atk_diag_compute(net, x, y, N, &d, &err), NN_OK);
    assert_true(d.frac_zero_grad == 0.0 && d.frac_saturated == 0.0);
    assert_int_equal(atk_diag_warnings(&d, NULL, 0, buf, sizeof buf), 0);
    for (int i = 0; i < K * D; i++)
        net->params[i] *= 1e4f;
    assert_int_equal(atk_diag_compute(net, x, y, N, &d, &err), NN_OK);
    assert_true(d.frac_zero_grad == 1.0 && d.frac_saturated == 1.0);
    assert_true(d.mean_abs_logit > 100);
    assert_int_equal(atk_diag_warnings(&d, NULL, 0, buf, sizeof buf), 1);
    assert_non_null(strstr(buf, "exactly zero"));
    nn_net_destroy(net);
}

/* The warnings about attack figures: single-step beating iterative, success falling with eps, unbounded < 95%. */
static void test_diag_warnings(void **s) {
    char buf[4096];
    atk_row ok[3] = {{"fgsm", ATK_FGSM, ATK_LINF, 0.1, 0.3}, {"pgd", ATK_PGD, ATK_LINF, 0.1, 0.6},
                     {"cw", ATK_CW, ATK_L2, -1, 1.0}};
    assert_int_equal(atk_diag_warnings(NULL, ok, 3, buf, sizeof buf), 0);
    atk_row bad[4] = {{"fgsm", ATK_FGSM, ATK_LINF, 0.1, 0.5}, {"pgd", ATK_PGD, ATK_LINF, 0.1, 0.2},
                      {"pgd", ATK_PGD, ATK_LINF, 0.3, 0.1}, {"cw", ATK_CW, ATK_L2, -1, 0.4}};
    assert_int_equal(atk_diag_warnings(NULL, bad, 4, buf, sizeof buf), 3);
    assert_non_null(strstr(buf, "single-step fgsm"));
    assert_non_null(strstr(buf, "pgd success falls"));
    assert_non_null(strstr(buf, "unbounded cw"));
    atk_row flat[2] = {{"bim", ATK_BIM, ATK_LINF, 0.1, 0.05}, {"bim", ATK_BIM, ATK_LINF, 0.3, 0.05}};
    assert_int_equal(atk_diag_warnings(NULL, flat, 2, buf, sizeof buf), 1);
    assert_non_null(strstr(buf, "does not grow"));
}

static void test_cfg_errors(void **s) {
    nn_err err;
    atk_cfg c = atk_cfg_default(ATK_PGD);
    c.eps = 0;
    nn_err_clear(&err);
    assert_int_not_equal(atk_cfg_validate(&c, &err), NN_OK);
    assert_non_null(strstr(err.msg, "eps"));
    c = atk_cfg_default(ATK_DEEPFOOL);
    c.targeted = 1;
    assert_int_not_equal(atk_cfg_validate(&c, &err), NN_OK);
    atk_kind k;
    atk_norm nm;
    assert_int_equal(atk_kind_parse("fgm", &k, &nm), 0);
    assert_true(k == ATK_FGSM && nm == ATK_L2);
    assert_int_equal(atk_kind_parse("nope", &k, &nm), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fgsm_linear),           cmocka_unit_test(test_pgd_ball_and_range),
        cmocka_unit_test(test_pgd_targeted_hits),     cmocka_unit_test(test_pgd_batch_independent),
        cmocka_unit_test(test_misclassified_unchanged), cmocka_unit_test(test_objective_gradcheck),
        cmocka_unit_test(test_summarize),             cmocka_unit_test(test_targets_all),
        cmocka_unit_test(test_diag_saturated),        cmocka_unit_test(test_diag_warnings),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
