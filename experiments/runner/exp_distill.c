/* exp_distill.c - defensive distillation and knowledge distillation runs (see exp_distill.h). */
#include "exp_distill.h"

#include <stdlib.h>
#include <string.h>

#include "def_distill.h"
#include "exp_progress.h"
#include "nn_loss.h"
#include "nn_model.h"

/* The rng stream of the teacher's initial weights, apart from the student's. */
#define DISTILL_TEACHER_STREAM 0x74656163u /* "teac" */

/* Whether a and b have the same layers and parameter count (so parameters can be copied). */
static int same_arch(const nn_net *a, const nn_net *b) {
    if (a->n_layers != b->n_layers || a->n_params != b->n_params || a->n_in != b->n_in) return 0;
    for (size_t i = 0; i < a->n_layers; i++)
        if (strcmp(a->layers[i].cfg.kind, b->layers[i].cfg.kind) || a->layers[i].n_params != b->layers[i].n_params)
            return 0;
    return 1;
}

/* Carlini's common initialisation: one epoch of hard-label training at T from the student's initial weights,
 * copied into both teacher and student. */
static int common_init(const exp_config *cfg, const nn_dataset *train, nn_net *student, nn_net *teacher,
                       nn_progress_fn cb, void *ctx, nn_err *err) {
    if (!same_arch(student, teacher))
        return NN_FAIL(err, NN_E_INVAL, "defense.common_init needs the teacher and the student to share one architecture");
    nn_train_cfg c = cfg->teacher.train;
    c.epochs = 1;
    c.loss = NULL;
    memcpy(teacher->params, student->params, student->n_params * sizeof(float));
    int rc = nn_train(teacher, train, NULL, &c, cb, ctx, err);
    if (!rc) memcpy(student->params, teacher->params, student->n_params * sizeof(float));
    return rc;
}

/* The teacher: loaded from teacher.model_file, the ensemble's files, or built, initialised and trained here. */
static int teacher_get(const exp_config *cfg, const nn_dataset *train, const nn_dataset *val, nn_net *student,
                       nn_progress_fn cb, void *ctx, exp_distill_out *out, nn_err *err) {
    const exp_teacher *t = &cfg->teacher;
    nn_model_meta meta;
    memset(&meta, 0, sizeof meta);
    if (t->n_ensemble) {
        for (; out->n_teachers < t->n_ensemble; out->n_teachers++) {
            int rc = nn_model_load(&out->teachers[out->n_teachers], &meta, t->ensemble[out->n_teachers], err);
            if (rc) return rc;
        }
        return NN_OK;
    }
    out->n_teachers = 1;
    if (t->model_file[0]) {
        int rc = nn_model_load(&out->teachers[0], &meta, t->model_file, err);
        out->teacher = out->teachers[0];
        return rc;
    }
    int rc = nn_net_create(&out->teachers[0], train->shape, t->layers, t->n_layers, err);
    out->teacher = out->teachers[0];
    if (rc) return rc;
    nn_rng rng;
    nn_rng_seed_stream(&rng, t->train.seed, DISTILL_TEACHER_STREAM);
    nn_net_init(out->teacher, &rng);
    out->teacher_trained = 1;
    double t0 = exp_now();
    if (cfg->defense.common_init && (rc = common_init(cfg, train, student, out->teacher, cb, ctx, err))) return rc;
    rc = nn_train(out->teacher, train, val, &t->train, cb, ctx, err);
    out->teacher_s = exp_now() - t0;
    return rc;
}

/* The teacher's (the ensemble's mean softmax's) test accuracy, and its agreement with the student on d. */
static int teacher_eval(exp_distill_out *out, nn_net *student, const nn_dataset *d, nn_err *err) {
    size_t k = student->n_classes;
    float *pt = malloc(d->n * k * sizeof *pt), *zs = malloc(d->n * k * sizeof *zs);
    int rc = pt && zs ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) rc = def_soft_labels(out->teachers, out->n_teachers, d->x, d->n, 1.0f, pt, err);
    if (!rc) rc = nn_net_predict(student, d->x, d->n, zs, err);
    size_t same = 0, errors = 0;
    for (size_t i = 0; i < d->n && !rc; i++) {
        int a, b;
        nn_argmax(pt + i * k, 1, k, &a);
        nn_argmax(zs + i * k, 1, k, &b);
        same += a == b;
        errors += a != d->y[i];
    }
    out->teacher_ev.n = d->n;
    out->teacher_ev.errors = errors;
    out->teacher_ev.accuracy = d->n ? 1.0 - (double)errors / (double)d->n : 0;
    out->agreement = d->n ? (double)same / (double)d->n : 0;
    free(pt);
    free(zs);
    return rc;
}

void exp_distill_free(exp_distill_out *out) {
    for (size_t i = 0; i < out->n_teachers; i++) nn_net_destroy(out->teachers[i]);
    out->n_teachers = 0;
    out->teacher = NULL;
}

int exp_distill_run(const exp_config *cfg, const nn_dataset *train, const nn_dataset *val, const nn_dataset *test,
                    nn_net *student, nn_progress_fn cb, void *cb_ctx, nn_progress_fn teacher_cb, void *teacher_ctx,
                    exp_distill_out *out, nn_err *err) {
    memset(out, 0, sizeof *out);
    const exp_defense *d = &cfg->defense;
    size_t b = cfg->train.batch_size, k = student->n_classes;
    float *soft = NULL;
    def_kd kd;
    memset(&kd, 0, sizeof kd);
    int rc = teacher_get(cfg, train, val, student, teacher_cb, teacher_ctx, out, err);
    for (size_t i = 0; i < out->n_teachers && !rc; i++) {
        const nn_net *t = out->teachers[i];
        if (t->n_in != student->n_in || t->n_classes != k)
            rc = NN_FAIL(err, NN_E_SHAPE, "teacher %zu takes %zu inputs and gives %zu classes, the student %zu and %zu",
                         i, t->n_in, t->n_classes, student->n_in, k);
        if (!rc) rc = nn_net_reserve(out->teachers[i], b, err);
    }
    /* the teacher sees exactly the student's inputs: once for unaugmented data, per batch under jitter */
    out->soft_on_the_fly = cfg->train.jitter > 0;
    if (!rc && !out->soft_on_the_fly) {
        soft = malloc(train->n * k * sizeof *soft);
        rc = soft ? def_soft_labels(out->teachers, out->n_teachers, train->x, train->n, d->kd.temperature, soft, err)
                  : NN_FAIL(err, NN_E_NOMEM, "out of memory for %zu soft labels", train->n);
    }
    if (!rc) rc = def_kd_init(&kd, &d->kd, soft, out->teachers, out->n_teachers, k, b, err);
    if (!rc) {
        nn_train_cfg c = cfg->train;
        c.loss = def_kd_loss;
        c.loss_ctx = &kd;
        rc = nn_train(student, train, val, &c, cb, cb_ctx, err);
        if (rc && kd.failed) rc = NN_FAIL(err, kd.err.code, "%s", kd.err.msg);
    }
    for (size_t i = 0; i < d->n_bias && !rc; i++)
        rc = def_bias_adjust(student, d->bias_class[i], d->bias_delta[i], err);
    if (!rc) rc = teacher_eval(out, student, test, err);
    def_kd_free(&kd);
    free(soft);
    return rc;
}
