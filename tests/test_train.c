/* test_train.c - the training loop and evaluation on tiny synthetic problems. */
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
#include "nn_net.h"
#include "nn_train.h"

/* n samples of shape s, labels 0/1. Features ~ N(0, 1); label = [w.x > 0] with w = (1, -2, 0.5, ...)
 * cycling; samples with |w.x| < margin are redrawn, so the classes are linearly separable. */
static void make_data(nn_dataset *d, size_t n, nn_shape s, uint64_t seed, float margin) {
    size_t D = nn_shape_size(s);
    memset(d, 0, sizeof *d);
    d->n = n;
    d->shape = s;
    d->n_classes = 2;
    d->x = malloc(n * D * sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    d->id = malloc(n * sizeof *d->id);
    assert_non_null(d->x && d->y && d->id);
    static const float w[3] = {1.0f, -2.0f, 0.5f};
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        float *x = d->x + i * D;
        double dot;
        do {
            dot = 0.0;
            for (size_t j = 0; j < D; j++) {
                x[j] = nn_rng_normal(&rng);
                dot += (double)w[j % 3] * x[j];
            }
        } while (fabs(dot) < margin);
        d->y[i] = dot > 0.0;
        d->id[i] = i;
    }
}

static nn_net *make_net(nn_shape in, int dropout, uint64_t seed) {
    nn_layer_cfg l[5];
    size_t nl = 0;
    l[nl++] = nn_layer_cfg_default("flatten");
    l[nl] = nn_layer_cfg_default("dense");
    l[nl++].units = 16;
    l[nl++] = nn_layer_cfg_default("relu");
    if (dropout) {
        l[nl] = nn_layer_cfg_default("dropout");
        l[nl++].rate = 0.25f;
    }
    l[nl] = nn_layer_cfg_default("dense");
    l[nl++].units = 2;
    nn_net *net = NULL;
    nn_err err = {0};
    if (nn_net_create(&net, in, l, nl, &err)) fail_msg("nn_net_create: %s", err.msg);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    nn_net_init(net, &rng);
    return net;
}

static nn_train_cfg small_cfg(void) {
    nn_train_cfg c = nn_train_cfg_default();
    c.epochs = 15;
    c.batch_size = 16;
    c.seed = 1;
    c.optim.lr = 0.05f;
    c.optim.momentum = 0.9f;
    return c;
}

static const nn_shape VEC2 = {2, 1, 1};

/* 200 separable points, 15 epochs: >= 95% accuracy on 400 held-out points. */
static void test_learns(void **s) {
    (void)s;
    nn_dataset tr, te;
    make_data(&tr, 200, VEC2, 10, 0.2f);
    make_data(&te, 400, VEC2, 11, 0.2f);
    nn_net *net = make_net(VEC2, 0, 3);
    nn_train_cfg c = small_cfg();
    c.temperature = 2.0f;
    nn_err err = {0};
    nn_eval before, after;
    assert_int_equal(nn_evaluate(net, &te, 64, NULL, &before, &err), NN_OK);
    if (nn_train(net, &tr, NULL, &c, NULL, NULL, &err)) fail_msg("nn_train: %s", err.msg);
    assert_close(net->temperature, 2.0, 0, 0);
    assert_int_equal(nn_evaluate(net, &te, 64, NULL, &after, &err), NN_OK);
    if (after.accuracy < 0.95)
        fail_msg("accuracy %.3f < 0.95 (before training %.3f)", after.accuracy, before.accuracy);
    assert_true(after.loss < before.loss && after.loss < 0.3);
    assert_int_equal(after.n, 400);
    assert_int_equal(after.class_total[0] + after.class_total[1], 400);
    assert_int_equal(after.class_errors[0] + after.class_errors[1], after.errors);
    assert_close(after.accuracy, 1.0 - (double)after.errors / 400.0, 1e-12, 0);
    nn_net_destroy(net);
    nn_dataset_free(&tr);
    nn_dataset_free(&te);
}

/* Trains a fresh net (init seed 3) on d with jitter and dropout; returns it. */
static nn_net *train_once(const nn_dataset *d, uint64_t seed, int threads) {
    nn_net *net = make_net(d->shape, 1, 3);
    nn_train_cfg c = small_cfg();
    c.epochs = 3;
    c.jitter = 1;
    c.seed = seed;
    c.optim.kind = NN_OPT_ADAM;
    c.optim.lr = 1e-2f;
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    nn_err err = {0};
    int rc = nn_train(net, d, NULL, &c, NULL, NULL, &err);
    omp_set_num_threads(saved);
    if (rc) fail_msg("nn_train: %s", err.msg);
    return net;
}

/* Same seed -> byte-identical parameters (also across 1 and 2 threads); another seed -> different. */
static void test_reproducible(void **s) {
    (void)s;
    nn_dataset d;
    make_data(&d, 150, (nn_shape){1, 4, 4}, 20, 0.0f);
    nn_net *a = train_once(&d, 7, 1), *b = train_once(&d, 7, 2), *c = train_once(&d, 8, 2);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_memory_not_equal(a->params, c->params, a->n_params * sizeof(float));
    nn_net_destroy(a);
    nn_net_destroy(b);
    nn_net_destroy(c);
    nn_dataset_free(&d);
}

/* A step function doing exactly the default step (forward in train mode, CE, backward) trains to the same
 * bytes as the loop's own step, with jitter and dropout on; its epochs arrive in order; NaN aborts. */
typedef struct step_spy {
    size_t calls, last_epoch, nan_at;
    float dz[16 * 2];
} step_spy;

static double ce_step(void *ctx, nn_net *net, const float *x, const int *y, const size_t *idx, size_t n,
                      size_t epoch, nn_rng *rng, int *pred) {
    (void)idx;
    step_spy *s = ctx;
    assert_true(epoch >= s->last_epoch);
    s->last_epoch = epoch;
    if (++s->calls == s->nan_at) return NAN;
    const float *z;
    if (nn_net_forward(net, x, n, 1, rng, &z, NULL)) return NAN;
    double loss = nn_loss_ce(z, y, n, net->n_classes, 1.0f, s->dz);
    nn_argmax(z, n, net->n_classes, pred);
    return nn_net_backward(net, s->dz, NULL, 1, NULL) ? NAN : loss;
}

static void test_step_fn(void **s) {
    (void)s;
    nn_dataset d;
    make_data(&d, 150, (nn_shape){1, 4, 4}, 20, 0.0f);
    nn_net *a = train_once(&d, 7, 2), *b = make_net(d.shape, 1, 3);
    nn_train_cfg c = small_cfg();
    c.epochs = 3;
    c.jitter = 1;
    c.seed = 7;
    c.optim.kind = NN_OPT_ADAM;
    c.optim.lr = 1e-2f;
    step_spy spy = {0};
    c.step = ce_step;
    c.step_ctx = &spy;
    nn_err err = {0};
    if (nn_train(b, &d, NULL, &c, NULL, NULL, &err)) fail_msg("nn_train: %s", err.msg);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_int_equal(spy.calls, 3 * 10);
    assert_int_equal(spy.last_epoch, 2);
    spy = (step_spy){.nan_at = 4};
    assert_int_equal(nn_train(b, &d, NULL, &c, NULL, NULL, &err), NN_E_NUMERIC);
    assert_non_null(strstr(err.msg, "batch 4 of 10"));
    nn_net_destroy(a);
    nn_net_destroy(b);
    nn_dataset_free(&d);
}

/* A loss that checks what the loop hands it and counts, then delegates to CE (NaN at one call). */
typedef struct spy {
    const nn_dataset *d;
    size_t calls, nan_at;
    size_t *seen; /* per sample, times it appeared */
    size_t samples;
} spy;

static double spy_loss(void *ctx, const float *x, const int *y, const size_t *idx, const float *logits,
                       size_t n, size_t k, float *dlogits) {
    spy *sp = ctx;
    size_t D = nn_shape_size(sp->d->shape);
    sp->calls++;
    for (size_t i = 0; i < n; i++) {
        assert_true(idx[i] < sp->d->n);
        assert_int_equal(y[i], sp->d->y[idx[i]]);
        assert_memory_equal(x + i * D, sp->d->x + idx[i] * D, D * sizeof(float));
        sp->seen[idx[i]]++;
    }
    sp->samples += n;
    if (sp->calls == sp->nan_at) return NAN;
    return nn_loss_ce(logits, y, n, k, 1.0f, dlogits);
}

typedef struct events {
    size_t batch_events, epoch_events, next_batch, batches;
    int ok;
} events;

static void on_progress(void *ctx, const nn_progress *p) {
    events *e = ctx;
    if (p->event == NN_PROGRESS_BATCH) {
        e->batch_events++;
        if (p->batch != e->next_batch || p->epoch != e->epoch_events + 1 || !isfinite(p->loss)) e->ok = 0;
        e->next_batch = p->batch == p->batches ? 1 : p->batch + 1;
        e->batches = p->batches;
    } else if (p->event == NN_PROGRESS_EPOCH) {
        e->epoch_events++;
        if (p->epoch != e->epoch_events || !(p->val_acc >= 0.0 && p->val_acc <= 1.0) ||
            !isfinite(p->val_loss))
            e->ok = 0;
    }
}

/* 100 samples in batches of 16 -> 7 batches, the last of 4: every batch reaches the callback and every
 * sample reaches the loss exactly once per epoch, with its own input and label. */
static void test_progress_and_batches(void **s) {
    (void)s;
    nn_dataset d, v;
    make_data(&d, 100, VEC2, 30, 0.2f);
    make_data(&v, 30, VEC2, 31, 0.2f);
    nn_net *net = make_net(VEC2, 0, 3);
    size_t seen[100] = {0};
    spy sp = {&d, 0, 0, seen, 0};
    events ev = {0, 0, 1, 0, 1};
    nn_train_cfg c = small_cfg();
    c.epochs = 3;
    c.loss = spy_loss;
    c.loss_ctx = &sp;
    nn_err err = {0};
    if (nn_train(net, &d, &v, &c, on_progress, &ev, &err)) fail_msg("nn_train: %s", err.msg);
    assert_true(ev.ok);
    assert_int_equal(ev.batches, 7);
    assert_int_equal(ev.batch_events, 3 * 7);
    assert_int_equal(ev.epoch_events, 3);
    assert_int_equal(sp.calls, 3 * 7);
    assert_int_equal(sp.samples, 300);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(seen[i], 3);
    nn_net_destroy(net);
    nn_dataset_free(&d);
    nn_dataset_free(&v);
}

/* NaN from the loss at epoch 2, batch 3 (call 7 + 3 = 10) stops training with NN_E_NUMERIC, naming both,
 * and without touching the parameters in that step. */
static void test_nan_aborts(void **s) {
    (void)s;
    nn_dataset d;
    make_data(&d, 100, VEC2, 40, 0.2f);
    nn_net *net = make_net(VEC2, 0, 3);
    size_t seen[100] = {0};
    spy sp = {&d, 0, 10, seen, 0};
    nn_train_cfg c = small_cfg();
    c.loss = spy_loss;
    c.loss_ctx = &sp;
    nn_err err = {0};
    assert_int_equal(nn_train(net, &d, NULL, &c, NULL, NULL, &err), NN_E_NUMERIC);
    assert_int_equal(err.code, NN_E_NUMERIC);
    if (!strstr(err.msg, "epoch 2") || !strstr(err.msg, "batch 3"))
        fail_msg("message does not name epoch 2, batch 3: %s", err.msg);
    assert_int_equal(sp.calls, 10);
    for (size_t i = 0; i < net->n_params; i++)
        assert_true(isfinite(net->params[i]));
    nn_net_destroy(net);
    nn_dataset_free(&d);
}

/* A dense layer with identity weights outputs x as logits: predictions, per-class counts and the mean
 * CE at T=1 (computed here with log-sum-exp in double) are known. Batch 2 leaves a partial last batch. */
static void test_evaluate(void **s) {
    (void)s;
    nn_layer_cfg l = nn_layer_cfg_default("dense");
    l.units = 3;
    nn_net *net = NULL;
    assert_int_equal(nn_net_create(&net, (nn_shape){3, 1, 1}, &l, 1, NULL), NN_OK);
    memset(net->params, 0, net->n_params * sizeof(float));
    for (int i = 0; i < 3; i++)
        net->params[i * 3 + i] = 1.0f;
    float x[5 * 3] = {3, 1, 0, 0, 2, 1, 5, 0, 4, 1, 1, 2, 0, 9, 0};
    int y[5] = {0, 1, 2, 2, 1}; /* predictions 0, 1, 0, 2, 1: one error, in class 2 */
    nn_dataset d = {5, {3, 1, 1}, 3, x, y, NULL};
    nn_eval e;
    nn_err err = {0};
    assert_int_equal(nn_evaluate(net, &d, 2, NULL, &e, &err), NN_OK);
    assert_int_equal(e.n, 5);
    assert_int_equal(e.errors, 1);
    assert_close(e.accuracy, 0.8, 1e-12, 0);
    const size_t tot[3] = {1, 2, 2}, errs[3] = {0, 0, 1};
    for (int c = 0; c < 3; c++) {
        assert_int_equal(e.class_total[c], tot[c]);
        assert_int_equal(e.class_errors[c], errs[c]);
    }
    double want = 0.0;
    for (int i = 0; i < 5; i++) {
        const float *z = x + i * 3;
        want += log(exp(z[0]) + exp(z[1]) + exp(z[2])) - z[y[i]];
    }
    assert_close(e.loss, want / 5.0, 1e-9, 1e-9);
    assert_true(e.seconds >= 0.0);
    y[3] = 3; /* out of range for a 3-class net */
    assert_int_equal(nn_evaluate(net, &d, 2, NULL, &e, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "label 3"));
    nn_net_destroy(net);
}

#define EXPECT_BAD(stmt, needle)                                                                             \
    do {                                                                                                     \
        nn_train_cfg c = nn_train_cfg_default();                                                             \
        stmt;                                                                                                \
        nn_err err = {0};                                                                                    \
        assert_int_equal(nn_train_cfg_validate(&c, &err), NN_E_INVAL);                                       \
        if (!strstr(err.msg, needle)) fail_msg("message '%s' does not name '%s'", err.msg, needle);          \
    } while (0)

static void test_validate(void **s) {
    (void)s;
    nn_train_cfg c = nn_train_cfg_default();
    assert_int_equal(nn_train_cfg_validate(&c, NULL), NN_OK);
    assert_int_equal(c.epochs, 10);
    assert_int_equal(c.batch_size, 128);
    assert_close(c.temperature, 1.0, 0, 0);
    assert_null(c.loss);
    EXPECT_BAD(c.epochs = 0, "train.epochs");
    EXPECT_BAD(c.batch_size = 0, "train.batch_size");
    EXPECT_BAD(c.temperature = 0.0f, "train.temperature");
    EXPECT_BAD(c.temperature = NAN, "train.temperature");
    EXPECT_BAD(c.jitter = -1, "train.jitter");
    EXPECT_BAD(c.jitter = 65, "train.jitter");
    EXPECT_BAD(c.optim.momentum = 1.5f, "optimizer.momentum");
    /* nn_train refuses a bad cfg, a mismatched data set, and an empty one */
    nn_dataset d;
    make_data(&d, 10, VEC2, 50, 0.0f);
    nn_net *net = make_net(VEC2, 0, 3);
    nn_err err = {0};
    c.epochs = 0;
    assert_int_equal(nn_train(net, &d, NULL, &c, NULL, NULL, &err), NN_E_INVAL);
    c = small_cfg();
    d.shape = (nn_shape){3, 1, 1};
    assert_int_equal(nn_train(net, &d, NULL, &c, NULL, NULL, &err), NN_E_SHAPE);
    d.shape = VEC2;
    d.n = 0;
    assert_int_equal(nn_train(net, &d, NULL, &c, NULL, NULL, &err), NN_E_INVAL);
    nn_net_destroy(net);
    nn_dataset_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_step_fn),
        cmocka_unit_test(test_progress_and_batches),
        cmocka_unit_test(test_nan_aborts),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
