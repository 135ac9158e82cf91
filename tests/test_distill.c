/* test_distill.c - the knowledge-distillation loss, soft labels, ensembles, bias adjustment, the teacher's
 * immutability, and tiny end-to-end distillations on synthetic data. */
#include "def_distill.h"
#include "nn_loss.h"
#include "nn_train.h"
#include "test_util.h"

#include "test_atk_util.h"

enum { D = 8, K = 3, N = 600 };

/* Three Gaussian blobs in D dimensions (class c centred at +1.5 on feature c and c + 3). */
static void blobs(nn_dataset *ds, size_t n, uint64_t seed) {
    atk_test_blobs(ds, n, D, K, seed);
}

static nn_train_cfg train_cfg(size_t epochs, float T) {
    nn_train_cfg c = nn_train_cfg_default();
    c.epochs = epochs;
    c.batch_size = 32;
    c.temperature = T;
    c.seed = 3;
    c.optim.lr = 0.05f;
    c.optim.momentum = 0.9f;
    return c;
}

static void train(nn_net *net, const nn_dataset *ds, const nn_train_cfg *c) {
    nn_err err;
    nn_err_clear(&err);
    if (nn_train(net, ds, NULL, c, NULL, NULL, &err)) fail_msg("nn_train: %s", err.msg);
}

/* Fraction of samples on which a and b predict the same class. */
static double agreement(nn_net *a, nn_net *b, const nn_dataset *ds) {
    float *za = malloc(ds->n * K * sizeof *za), *zb = malloc(ds->n * K * sizeof *zb);
    int *pa = malloc(ds->n * sizeof *pa), *pb = malloc(ds->n * sizeof *pb);
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(nn_net_predict(a, ds->x, ds->n, za, &err), NN_OK);
    assert_int_equal(nn_net_predict(b, ds->x, ds->n, zb, &err), NN_OK);
    nn_argmax(za, ds->n, K, pa);
    nn_argmax(zb, ds->n, K, pb);
    size_t same = 0;
    for (size_t i = 0; i < ds->n; i++)
        same += pa[i] == pb[i];
    free(za), free(zb), free(pa), free(pb);
    return (double)same / (double)ds->n;
}

typedef struct loss_ctx {
    def_kd *kd;
    const int *y;
    const size_t *idx;
    size_t n;
} loss_ctx;

static double loss_at(void *vctx, const float *z) {
    loss_ctx *c = vctx;
    float g[4 * K];
    return def_kd_loss(c->kd, NULL, c->y, c->idx, z, c->n, K, g);
}

/* Finite differences of the KD loss in the logits: T 4 and 20, with and without T^2, alpha 0.7 and 1. */
static void test_kd_gradcheck(void **s) {
    float soft[4 * K], z[4 * K], g[4 * K];
    int y[4] = {0, 2, 1, 2};
    size_t idx[4] = {3, 1, 0, 2}; /* rows of the soft-label table, shuffled as a batch would be */
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    for (size_t i = 0; i < 4; i++) {
        float sum = 0;
        for (size_t j = 0; j < K; j++)
            sum += soft[i * K + j] = 0.1f + nn_rng_uniform(&rng);
        for (size_t j = 0; j < K; j++)
            soft[i * K + j] /= sum;
    }
    for (size_t i = 0; i < 4 * K; i++)
        z[i] = 6.0f * nn_rng_normal(&rng);
    for (int v = 0; v < 8; v++) {
        def_kd_cfg cfg = {v & 1 ? 20.0f : 4.0f, v & 2 ? 0.7f : 1.0f, (v & 4) != 0};
        def_kd kd;
        nn_err err;
        nn_err_clear(&err);
        assert_int_equal(def_kd_init(&kd, &cfg, soft, NULL, 0, K, 4, &err), NN_OK);
        loss_ctx c = {&kd, y, idx, 4};
        def_kd_loss(&kd, NULL, y, idx, z, 4, K, g);
        char what[48];
        snprintf(what, sizeof what, "kd loss T %g alpha %g t2 %d", cfg.temperature, cfg.alpha, cfg.t2);
        gradcheck(loss_at, NULL, &c, z, 4 * K, g, 1e-2, 1e-6, 1e-3, 64, what);
        def_kd_free(&kd);
    }
}

/* T^2 scales the soft term exactly; alpha mixes the two terms linearly (against nn_loss directly). */
static void test_kd_terms(void **s) {
    float p[2 * K] = {0.2f, 0.5f, 0.3f, 0.6f, 0.3f, 0.1f}, z[2 * K] = {1, -2, 3, 0.5f, 4, -1}, g[2 * K];
    int y[2] = {2, 0};
    size_t idx[2] = {0, 1};
    nn_err err;
    nn_err_clear(&err);
    def_kd kd;
    def_kd_cfg cfg = {5.0f, 0.25f, 1};
    assert_int_equal(def_kd_init(&kd, &cfg, p, NULL, 0, K, 2, &err), NN_OK);
    double l = def_kd_loss(&kd, NULL, y, idx, z, 2, K, g);
    double soft = nn_loss_soft_ce(z, p, 2, K, 5.0f, 0, NULL), hard = nn_loss_ce(z, y, 2, K, 1.0f, NULL);
    assert_close(l, 0.25 * 25.0 * soft + 0.75 * hard, 1e-9, 1e-9);
    def_kd_free(&kd);
}

/* def_soft_labels of an ensemble is the mean of the members' softmax(z / T) (computed here in double). */
static void test_ensemble_soft_labels(void **s) {
    float w1[K * D], w2[K * D], b[K] = {0.1f, -0.2f, 0.3f}, x[5 * D], p[5 * K];
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    for (size_t i = 0; i < K * D; i++)
        w1[i] = nn_rng_normal(&rng), w2[i] = nn_rng_normal(&rng);
    for (size_t i = 0; i < 5 * D; i++)
        x[i] = nn_rng_normal(&rng);
    nn_net *t[2] = {atk_test_linear(D, K, w1, b, 2), atk_test_linear(D, K, w2, NULL, 3)};
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_soft_labels(t, 2, x, 5, 3.0f, p, &err), NN_OK);
    for (size_t i = 0; i < 5; i++) {
        double want[K] = {0};
        for (int m = 0; m < 2; m++) {
            const float *w = m ? w2 : w1;
            double z[K], mx = -1e300, sum = 0;
            for (size_t j = 0; j < K; j++) {
                z[j] = m ? 0 : b[j];
                for (size_t e = 0; e < D; e++)
                    z[j] += (double)w[j * D + e] * x[i * D + e];
                z[j] /= 3.0;
                mx = fmax(mx, z[j]);
            }
            for (size_t j = 0; j < K; j++)
                sum += exp(z[j] - mx);
            for (size_t j = 0; j < K; j++)
                want[j] += 0.5 * exp(z[j] - mx) / sum;
        }
        for (size_t j = 0; j < K; j++)
            assert_close(p[i * K + j], want[j], 1e-6, 1e-5);
    }
    nn_net_destroy(t[0]);
    nn_net_destroy(t[1]);
}

/* Raising the class-c bias by delta raises logit c by delta on every input and leaves the others alone. */
static void test_bias_adjust(void **s) {
    nn_net *net = atk_test_mlp(D, 6, K, 9, 4);
    float x[4 * D], z0[4 * K], z1[4 * K];
    for (size_t i = 0; i < 4 * D; i++)
        x[i] = (float)i / 7.0f - 2.0f;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(nn_net_predict(net, x, 4, z0, &err), NN_OK);
    assert_int_equal(def_bias_adjust(net, 1, 3.5f, &err), NN_OK);
    assert_int_equal(nn_net_predict(net, x, 4, z1, &err), NN_OK);
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < K; j++)
            assert_close(z1[i * K + j], z0[i * K + j] + (j == 1 ? 3.5 : 0.0), 1e-5, 0);
    assert_int_not_equal(def_bias_adjust(net, K, 1.0f, &err), NN_OK);
    assert_int_not_equal(def_bias_adjust(net, 0, NAN, &err), NN_OK);
    nn_net_destroy(net);
}

/* Hinton KD from an on-the-fly teacher: the student agrees with the teacher far more than at its start,
 * and the teacher's parameters are bitwise unchanged by the whole training. */
static void test_kd_end_to_end(void **s) {
    nn_dataset ds, test;
    blobs(&ds, N, 1);
    blobs(&test, 300, 2);
    nn_net *teacher = atk_test_mlp(D, 16, K, 4, 32), *student = atk_test_mlp(D, 6, K, 5, 32);
    nn_train_cfg tc = train_cfg(8, 1.0f);
    train(teacher, &ds, &tc);
    size_t bytes = teacher->n_params * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, teacher->params, bytes);
    double agree0 = agreement(teacher, student, &test);
    def_kd kd;
    def_kd_cfg kc = {4.0f, 0.9f, 1};
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_kd_init(&kd, &kc, NULL, &teacher, 1, K, 32, &err), NN_OK);
    nn_train_cfg sc = train_cfg(6, 4.0f);
    sc.loss = def_kd_loss;
    sc.loss_ctx = &kd;
    train(student, &ds, &sc);
    assert_int_equal(kd.failed, 0);
    double agree1 = agreement(teacher, student, &test);
    if (!(agree1 > 0.9 && agree1 > agree0 + 0.2)) fail_msg("agreement %.3f -> %.3f", agree0, agree1);
    assert_memory_equal(before, teacher->params, bytes);
    assert_true(student->temperature == 4.0f);
    free(before);
    def_kd_free(&kd);
    nn_net_destroy(teacher);
    nn_net_destroy(student);
    nn_dataset_free(&ds);
    nn_dataset_free(&test);
}

/* Row-centred logits of net on ds into z[n, K] (softmax is invariant to a per-row shift). */
static void centred_logits(nn_net *net, const nn_dataset *ds, float *z) {
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(nn_net_predict(net, ds->x, ds->n, z, &err), NN_OK);
    for (size_t i = 0; i < ds->n; i++) {
        float m = 0;
        for (size_t j = 0; j < K; j++)
            m += z[i * K + j] / K;
        for (size_t j = 0; j < K; j++)
            z[i * K + j] -= m;
    }
}

/* Defensive distillation at T = 20: teacher trained at T, soft labels at T, student at T on them. The
 * student deployed at T = 1 outputs raw logits on the teacher's scale: softmax(z / T) reproduces the soft
 * labels, so its centred logits match the teacher's (trained at T, ~T times those of a T = 1 net at
 * convergence), and at T = 1 its softmax is sharper than at T. */
static void test_defensive_distillation_scale(void **s) {
    const float T = 20.0f;
    nn_dataset ds;
    blobs(&ds, N, 3);
    nn_net *teacher = atk_test_mlp(D, 16, K, 6, 32), *student = atk_test_mlp(D, 16, K, 7, 32);
    nn_train_cfg cT = train_cfg(8, T);
    cT.optim.lr = 0.5f; /* the gradients at T are 1/T as large */
    train(teacher, &ds, &cT);
    float *soft = malloc(N * K * sizeof *soft), *zt = malloc(N * K * sizeof *zt), *zs = malloc(N * K * sizeof *zs);
    float *ps = malloc(N * K * sizeof *ps), *p1 = malloc(N * K * sizeof *p1);
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_soft_labels(&teacher, 1, ds.x, N, T, soft, &err), NN_OK);
    def_kd kd;
    def_kd_cfg kc = {T, 1.0f, 0};
    assert_int_equal(def_kd_init(&kd, &kc, soft, NULL, 0, K, 32, &err), NN_OK);
    cT.epochs = 30;
    cT.loss = def_kd_loss;
    cT.loss_ctx = &kd;
    train(student, &ds, &cT);
    assert_true(student->temperature == T);
    centred_logits(teacher, &ds, zt);
    centred_logits(student, &ds, zs);
    nn_softmax(zs, N, K, T, ps);
    nn_softmax(zs, N, K, 1.0f, p1);
    double dp = 0, dz = 0, nz = 0, top_T = 0, top_1 = 0;
    for (size_t i = 0; i < N * K; i++) {
        dp += fabs((double)ps[i] - soft[i]) / (N * K);
        dz += fabs((double)zs[i] - zt[i]);
        nz += fabs((double)zt[i]);
    }
    for (size_t i = 0; i < N; i++) {
        int c;
        nn_argmax(zs + i * K, 1, K, &c);
        top_T += ps[i * K + c] / N;
        top_1 += p1[i * K + c] / N;
    }
    if (!(dp < 0.02)) fail_msg("softmax(z_s / T) vs soft labels: mean |diff| %.4f", dp);
    if (!(dz < 0.2 * nz)) fail_msg("student vs teacher centred logits: relative L1 %.3f", dz / nz);
    if (!(top_1 > top_T + 0.05)) fail_msg("top probability at T=1 %.3f, at T %.3f", top_1, top_T);
    free(soft), free(zt), free(zs), free(ps), free(p1);
    def_kd_free(&kd);
    nn_net_destroy(teacher);
    nn_net_destroy(student);
    nn_dataset_free(&ds);
}

static void test_cfg_errors(void **s) {
    nn_err err;
    nn_err_clear(&err);
    def_kd_cfg c = def_kd_cfg_default();
    c.alpha = 1.5f;
    assert_int_not_equal(def_kd_cfg_validate(&c, &err), NN_OK);
    assert_non_null(strstr(err.msg, "alpha"));
    c = def_kd_cfg_default();
    c.temperature = 0;
    assert_int_not_equal(def_kd_cfg_validate(&c, &err), NN_OK);
    def_kd kd;
    c = def_kd_cfg_default();
    assert_int_not_equal(def_kd_init(&kd, &c, NULL, NULL, 0, K, 4, &err), NN_OK); /* no soft labels, no teacher */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kd_gradcheck),         cmocka_unit_test(test_kd_terms),
        cmocka_unit_test(test_ensemble_soft_labels), cmocka_unit_test(test_bias_adjust),
        cmocka_unit_test(test_kd_end_to_end),        cmocka_unit_test(test_defensive_distillation_scale),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
