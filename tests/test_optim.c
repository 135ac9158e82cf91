/* test_optim.c - SGD / Nesterov / Adam against torch.optim trajectories, the schedule, cfg validation. */
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

#include "nn_optim.h"
#include "nn_rng.h"

/* Reference trajectories: generated once by tests/ref/optim_ref.py with torch 1.13.0a0 (CPU, float32).
 * Problem: p0 below, gradient g = a * (p - c) in float32; rows = p after steps 1..5. */
static const float P0[4] = {0.5f, -1.25f, 2.0f, 0.0f};
static const float A[4] = {1.0f, 0.5f, 2.0f, 3.0f};
static const float C[4] = {0.1f, 0.3f, -0.7f, 1.5f};

static const float ref_sgd[5][4] = {
    {0.459499985f, -1.17124999f, 1.45799994f, 0.450000018f},
    {0.423090488f, -1.09651625f, 1.02494192f, 0.76455003f},
    {0.390358359f, -1.02559388f, 0.678928614f, 0.984420478f},
    {0.360932171f, -0.95828861f, 0.402463943f, 1.13810992f},
    {0.334478021f, -0.894415915f, 0.181568667f, 1.24553883f},
};
static const float ref_momentum[5][4] = {
    {0.460000008f, -1.17250001f, 1.46000004f, 0.450000018f},
    {0.388000011f, -1.02912498f, 0.541999996f, 1.16999996f},
    {0.294400007f, -0.833631217f, -0.532600045f, 1.91699994f},
    {0.190720007f, -0.601005316f, -1.53322005f, 2.46420002f},
    {0.0883360133f, -0.346591741f, -2.26713395f, 2.66741991f},
};
static const float ref_nesterov[5][4] = {
    {0.461524993f, -1.17518747f, 1.48510003f, 0.42750001f},
    {0.410339177f, -1.07210588f, 0.84901017f, 0.91500634f},
    {0.350876212f, -0.946859479f, 0.178738147f, 1.37502086f},
    {0.287342876f, -0.805367231f, -0.451843709f, 1.74478436f},
    {0.22353965f, -0.653234601f, -0.986920953f, 1.98989701f},
};
static const float ref_adam[5][4] = {
    {0.49000001f, -1.24000001f, 1.99000001f, 0.00999999978f},
    {0.48000738f, -1.23000181f, 1.98000097f, 0.0199981928f},
    {0.470027298f, -1.22000647f, 1.9700036f, 0.0299933646f},
    {0.460065126f, -1.21001518f, 1.9600085f, 0.0399842933f},
    {0.45012638f, -1.20002925f, 1.95001638f, 0.0499697588f},
};

/* Runs 5 steps of cfg on the reference problem and compares every step with ref. */
static void run_traj(const nn_optim_cfg *cfg, const float ref[5][4], const char *what) {
    nn_optim *o = NULL;
    nn_err err = {0};
    assert_int_equal(nn_optim_create(&o, cfg, 4, &err), NN_OK);
    float p[4], g[4];
    memcpy(p, P0, sizeof p);
    char name[64];
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < 4; i++)
            g[i] = A[i] * (p[i] - C[i]);
        nn_optim_step(o, p, g, cfg->lr);
        snprintf(name, sizeof name, "%s step %d", what, s + 1);
        assert_close_array(p, ref[s], 4, 1e-7, 2e-6, name);
    }
    assert_int_equal(nn_optim_steps(o), 5);
    nn_optim_destroy(o);
}

static void test_sgd(void **s) {
    (void)s;
    nn_optim_cfg c = nn_optim_cfg_default();
    c.lr = 0.1f;
    c.weight_decay = 0.01f;
    run_traj(&c, ref_sgd, "sgd");
}

static void test_momentum(void **s) {
    (void)s;
    nn_optim_cfg c = nn_optim_cfg_default();
    c.lr = 0.1f;
    c.momentum = 0.9f;
    run_traj(&c, ref_momentum, "momentum");
}

static void test_nesterov(void **s) {
    (void)s;
    nn_optim_cfg c = nn_optim_cfg_default();
    c.lr = 0.05f;
    c.momentum = 0.9f;
    c.nesterov = 1;
    c.weight_decay = 0.01f;
    run_traj(&c, ref_nesterov, "nesterov");
}

static void test_adam(void **s) {
    (void)s;
    nn_optim_cfg c = nn_optim_cfg_default();
    c.kind = NN_OPT_ADAM;
    c.lr = 0.01f;
    c.weight_decay = 0.01f;
    run_traj(&c, ref_adam, "adam");
}

/* Closed forms: lr * gamma^(milestones passed) / (1 + decay * t). */
static void test_schedule(void **s) {
    (void)s;
    nn_optim_cfg c = nn_optim_cfg_default();
    c.lr = 0.5f;
    c.gamma = 0.1f;
    c.milestones[0] = 2;
    c.milestones[1] = 5;
    c.n_milestones = 2;
    const double want[7] = {0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005};
    for (size_t e = 0; e < 7; e++)
        assert_close(nn_optim_lr(&c, e, 0), want[e], 0, 1e-6);
    c.decay = 1e-3f;
    assert_close(nn_optim_lr(&c, 0, 0), 0.5, 0, 1e-7);
    assert_close(nn_optim_lr(&c, 0, 1000), 0.25, 0, 1e-6);
    assert_close(nn_optim_lr(&c, 5, 3000), 0.005 / 4.0, 0, 1e-6);
}

/* Sets one bad field and expects a failure whose message contains `needle`. */
#define EXPECT_BAD(stmt, needle)                                                                             \
    do {                                                                                                     \
        nn_optim_cfg c = nn_optim_cfg_default();                                                             \
        stmt;                                                                                                \
        nn_err err = {0};                                                                                    \
        assert_int_equal(nn_optim_cfg_validate(&c, &err), NN_E_INVAL);                                       \
        if (!strstr(err.msg, needle)) fail_msg("message '%s' does not name '%s'", err.msg, needle);          \
        nn_optim *o = (nn_optim *)&c;                                                                        \
        assert_int_equal(nn_optim_create(&o, &c, 4, NULL), NN_E_INVAL);                                      \
        assert_null(o);                                                                                      \
    } while (0)

static void test_validate(void **s) {
    (void)s;
    nn_optim_cfg ok = nn_optim_cfg_default();
    assert_int_equal(nn_optim_cfg_validate(&ok, NULL), NN_OK);
    assert_int_equal(ok.kind, NN_OPT_SGD);
    assert_close(ok.lr, 0.01, 0, 1e-7);
    nn_err err = {0};
    ok.momentum = 1.5f;
    assert_int_equal(nn_optim_cfg_validate(&ok, &err), NN_E_INVAL);
    assert_string_equal(err.msg, "optimizer.momentum must be in [0, 1), got 1.5");
    EXPECT_BAD(c.kind = 7, "optimizer.type");
    EXPECT_BAD(c.lr = 0.0f, "optimizer.lr");
    EXPECT_BAD(c.lr = NAN, "optimizer.lr");
    EXPECT_BAD(c.momentum = -0.1f, "optimizer.momentum");
    EXPECT_BAD(c.momentum = 1.0f, "optimizer.momentum");
    EXPECT_BAD(c.nesterov = 1, "optimizer.nesterov");
    EXPECT_BAD(c.weight_decay = -1e-4f, "optimizer.weight_decay");
    EXPECT_BAD(c.beta1 = 1.0f, "optimizer.beta1");
    EXPECT_BAD(c.beta2 = -0.5f, "optimizer.beta2");
    EXPECT_BAD(c.eps = 0.0f, "optimizer.eps");
    EXPECT_BAD(c.decay = -1.0f, "optimizer.decay");
    EXPECT_BAD(c.gamma = 0.0f, "schedule.gamma");
    EXPECT_BAD((c.n_milestones = 2, c.milestones[0] = 5, c.milestones[1] = 5), "schedule.milestones");
    EXPECT_BAD(c.n_milestones = NN_MAX_MILESTONES + 1, "schedule.milestones");
}

/* A vector big enough for the OpenMP loop: one and two threads give the same bits. */
static void test_threads(void **s) {
    (void)s;
    enum { n = 100000 };
    float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    assert_non_null(p1 && p2 && g);
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    for (int i = 0; i < n; i++)
        p1[i] = p2[i] = nn_rng_normal(&rng), g[i] = nn_rng_normal(&rng);
    nn_optim_cfg c = nn_optim_cfg_default();
    c.kind = NN_OPT_ADAM;
    c.weight_decay = 1e-3f;
    nn_optim *o1 = NULL, *o2 = NULL;
    assert_int_equal(nn_optim_create(&o1, &c, n, NULL), NN_OK);
    assert_int_equal(nn_optim_create(&o2, &c, n, NULL), NN_OK);
    int saved = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(1);
        nn_optim_step(o1, p1, g, 1e-3f);
        omp_set_num_threads(2);
        nn_optim_step(o2, p2, g, 1e-3f);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(p1, p2, n * sizeof(float));
    nn_optim_destroy(o1);
    nn_optim_destroy(o2);
    nn_optim_destroy(NULL);
    free(p1), free(p2), free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),     cmocka_unit_test(test_momentum), cmocka_unit_test(test_nesterov),
        cmocka_unit_test(test_adam),    cmocka_unit_test(test_schedule), cmocka_unit_test(test_validate),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
