/* test_bss_kd.c - knowledge distillation with boundary-supporting samples (def_bss.h): the schedule, the
 * loss against its terms and finite differences, and tiny end-to-end trainings (generated and pooled BSS). */
#include "def_bss.h"
#include "nn_loss.h"
#include "nn_train.h"
#include "test_util.h"

#include "test_atk_util.h"

enum { D = 8, K = 3, N = 600 };

/* ratio and attack_ratio at the start (epoch 1), 40, 60 and 80 of 80 epochs, by the official formulas. */
static void test_schedule(void **s) {
    (void)s;
    def_bss_cfg c = def_bss_cfg_default();
    assert_int_equal(c.epochs, 80);
    const size_t e[4] = {1, 40, 60, 80};
    const double ratio[4] = {3.0 * (1 - 1 / 80.0) + 1, 2.5, 1.75, 1.0};
    const double attack[4] = {2.0 * (1 - (4 / 3.0) / 80.0), 2.0 / 3.0, 0.0, 0.0};
    for (int i = 0; i < 4; i++) {
        assert_close(def_bss_ratio(&c, e[i]), ratio[i], 1e-6, 1e-6);
        assert_close(def_bss_attack_ratio(&c, e[i]), attack[i], 1e-6, 1e-6);
    }
    assert_close(def_bss_ratio(&c, 1), 3.9625, 1e-9, 0);
    assert_close(def_bss_attack_ratio(&c, 1), 1.9666666, 1e-6, 0);
}

typedef struct lctx {
    const int *y;
    const float *p, *pb;
    size_t n, m;
    double r, a;
    int which; /* 0: differentiate in z, 1: in zb */
    float *z, *zb;
} lctx;

static double loss_at(void *v, const float *unused) {
    (void)unused;
    lctx *c = v;
    float dz[4 * K], dzb[3 * K];
    return def_bss_loss(c->z, c->y, c->p, c->n, c->zb, c->pb, c->m, K, 3.0f, c->r, c->a, dz, dzb);
}

/* The loss is CE + r * soft CE_T (clean) + a * soft CE_T (BSS), no T^2; its gradients match finite
 * differences in both logit sets. */
static void test_loss(void **s) {
    (void)s;
    float z[4 * K] = {1.0f, -0.5f, 2.0f, 0.3f, 0.1f, -1.2f, 3.0f, 2.5f, -2.0f, -0.7f, 0.9f, 0.4f};
    float zb[3 * K] = {0.5f, 0.4f, -0.3f, -1.0f, 2.0f, 1.5f, 0.2f, 0.0f, 0.1f};
    float p[4 * K], pb[3 * K], zt[4 * K], ztb[3 * K];
    for (size_t i = 0; i < 4 * K; i++)
        zt[i] = (float)((i * 7) % 5) - 2.0f;
    for (size_t i = 0; i < 3 * K; i++)
        ztb[i] = (float)((i * 3) % 4) - 1.5f;
    nn_softmax(zt, 4, K, 3.0f, p);
    nn_softmax(ztb, 3, K, 3.0f, pb);
    int y[4] = {2, 0, 0, 1};
    lctx c = {y, p, pb, 4, 3, 2.5, 0.7, 0, z, zb};
    float dz[4 * K], dzb[3 * K], g[4 * K];
    double l = def_bss_loss(z, y, p, 4, zb, pb, 3, K, 3.0f, 2.5, 0.7, dz, dzb);
    double want = nn_loss_ce(z, y, 4, K, 1.0f, g) + 2.5 * nn_loss_soft_ce(z, p, 4, K, 3.0f, 0, g) +
                  0.7 * nn_loss_soft_ce(zb, pb, 3, K, 3.0f, 0, g);
    assert_close(l, want, 1e-6, 1e-6);
    gradcheck(loss_at, NULL, &c, z, 4 * K, dz, 1e-3, 1e-5, 1e-3, 100, "dL/dz");
    gradcheck(loss_at, NULL, &c, zb, 3 * K, dzb, 1e-3, 1e-5, 1e-3, 100, "dL/dzb");
    /* no BSS: the third term and its gradient vanish */
    double l0 = def_bss_loss(z, y, p, 4, zb, pb, 0, K, 3.0f, 2.5, 0.7, dz, dzb);
    assert_close(l0, want - 0.7 * nn_loss_soft_ce(zb, pb, 3, K, 3.0f, 0, g), 1e-6, 1e-6);
}

static nn_train_cfg train_cfg(size_t epochs) {
    nn_train_cfg c = nn_train_cfg_default();
    c.epochs = epochs;
    c.batch_size = 32;
    c.seed = 3;
    c.optim.lr = 0.05f;
    c.optim.momentum = 0.9f;
    return c;
}

static double accuracy(nn_net *net, const nn_dataset *ds) {
    nn_eval ev;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(nn_evaluate(net, ds, 64, NULL, &ev, &err), NN_OK);
    return ev.accuracy;
}

/* A student distilled with on-the-fly BSS from a trained teacher learns the task; BSS are made while
 * attack_ratio > 0 (the first 75% of the epochs) and most cross the teacher's boundary; the teacher's bytes
 * never change; with attack_ratio 0 throughout no BSS is made. */
static void test_end_to_end(void **s) {
    (void)s;
    nn_dataset ds, test;
    atk_test_blobs(&ds, N, D, K, 1);
    atk_test_blobs(&test, 300, D, K, 2);
    nn_net *teacher = atk_test_mlp(D, 16, K, 4, 32), *student = atk_test_mlp(D, 6, K, 5, 32);
    nn_train_cfg tc = train_cfg(8);
    nn_err err;
    nn_err_clear(&err);
    if (nn_train(teacher, &ds, NULL, &tc, NULL, NULL, &err)) fail_msg("teacher: %s", err.msg);
    size_t bytes = teacher->n_params * sizeof(float);
    float *before = malloc(bytes), *gbefore = malloc(bytes);
    memcpy(before, teacher->params, bytes);
    memcpy(gbefore, teacher->grads, bytes);
    def_bss_cfg bc = def_bss_cfg_default();
    bc.epochs = 4;
    bc.bss.max_base = 8;
    bc.bss.lo = -10.0f;
    bc.bss.hi = 10.0f;
    def_bss b;
    assert_int_equal(def_bss_init(&b, &bc, teacher, student, 32, NULL, NULL, 0, &err), NN_OK);
    nn_train_cfg sc = train_cfg(4);
    sc.step = def_bss_step;
    sc.step_ctx = &b;
    if (nn_train(student, &ds, NULL, &sc, NULL, NULL, &err)) fail_msg("student: %s (%s)", err.msg, b.err.msg);
    assert_int_equal(b.failed, 0);
    double acc = accuracy(student, &test);
    if (acc < 0.85) fail_msg("student accuracy %.3f", acc);
    /* attack_ratio > 0 in epochs 1..2 of 4 (0 from e = 3): at most 8 BSS per batch of 19 batches */
    assert_true(b.n_bss > 0 && b.n_bss <= 2 * 19 * 8);
    if (!(b.n_crossed > b.n_bss / 2)) fail_msg("%zu of %zu BSS crossed", b.n_crossed, b.n_bss);
    assert_true(b.l2_sum > 0);
    assert_memory_equal(before, teacher->params, bytes);
    assert_memory_equal(gbefore, teacher->grads, bytes);
    def_bss_free(&b);

    bc.attack_hi = 0.0f;
    assert_int_equal(def_bss_init(&b, &bc, teacher, student, 32, NULL, NULL, 0, &err), NN_OK);
    sc.epochs = 1;
    sc.step_ctx = &b;
    if (nn_train(student, &ds, NULL, &sc, NULL, NULL, &err)) fail_msg("student: %s", err.msg);
    assert_int_equal(b.n_bss, 0);
    def_bss_free(&b);
    free(before);
    free(gbefore);
    nn_net_destroy(teacher);
    nn_net_destroy(student);
    nn_dataset_free(&ds);
    nn_dataset_free(&test);
}

/* With a pool, each step takes max_base rows in order, wrapping around. */
static void test_pool(void **s) {
    (void)s;
    nn_dataset ds;
    atk_test_blobs(&ds, 64, D, K, 5);
    nn_net *teacher = atk_test_mlp(D, 16, K, 4, 32), *student = atk_test_mlp(D, 6, K, 5, 32);
    float pool[5 * D], logits[5 * K];
    for (size_t i = 0; i < 5 * D; i++)
        pool[i] = (float)i / 40.0f;
    for (size_t i = 0; i < 5 * K; i++)
        logits[i] = (float)(i % K);
    def_bss_cfg bc = def_bss_cfg_default();
    bc.bss.max_base = 3;
    def_bss b;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_bss_init(&b, &bc, teacher, student, 32, pool, logits, 5, &err), NN_OK);
    nn_train_cfg sc = train_cfg(1);
    sc.step = def_bss_step;
    sc.step_ctx = &b;
    if (nn_train(student, &ds, NULL, &sc, NULL, NULL, &err)) fail_msg("student: %s", err.msg);
    assert_int_equal(b.pool_next, (2 * 3) % 5); /* two batches of 32, three rows each */
    assert_int_equal(b.n_bss, 0);               /* nothing generated */
    def_bss_free(&b);
    /* errors */
    assert_int_equal(def_bss_init(&b, &bc, teacher, student, 32, pool, NULL, 5, &err), NN_E_INVAL);
    bc.temperature = 0.0f;
    assert_int_equal(def_bss_init(&b, &bc, teacher, student, 32, NULL, NULL, 0, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "temperature"));
    bc = def_bss_cfg_default();
    bc.epochs = 0;
    assert_int_equal(def_bss_cfg_validate(&bc, &err), NN_E_INVAL);
    nn_net *other = atk_test_mlp(D, 6, K + 1, 5, 32);
    bc = def_bss_cfg_default();
    assert_int_equal(def_bss_init(&b, &bc, teacher, other, 32, NULL, NULL, 0, &err), NN_E_SHAPE);
    nn_net_destroy(other);
    nn_net_destroy(teacher);
    nn_net_destroy(student);
    nn_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_loss),
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
