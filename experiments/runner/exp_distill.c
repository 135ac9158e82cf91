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

/* The teacher: loaded from teacher.model_file, or built, initialised and trained here. */
static int teacher_get(const exp_config *cfg, const nn_dataset *train, const nn_dataset *val, nn_net *student,
                       nn_progress_fn cb, void *ctx, exp_distill_out *out, nn_err *err) {
    const exp_teacher *t = &cfg->teacher;
    if (t->model_file[0]) {
        nn_model_meta meta;
        memset(&meta, 0, sizeof meta);
        return nn_model_load(&out->teacher, &meta, t->model_file, err);
    }
    int rc = nn_net_create(&out->teacher, train->shape, t->layers, t->n_layers, err);
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

/* Teacher-student agreement on d. */
static int agreement(nn_net *a, nn_net *b, const nn_dataset *d, double *out, nn_err *err) {
    size_t k = a->n_classes;
    float *za = malloc(d->n * k * sizeof *za), *zb = malloc(d->n * k * sizeof *zb);
    int rc = za && zb ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) rc = nn_net_predict(a, d->x, d->n, za, err);
    if (!rc) rc = nn_net_predict(b, d->x, d->n, zb, err);
    size_t same = 0;
    for (size_t i = 0; i < d->n && !rc; i++) {
        int pa, pb;
        nn_argmax(za + i * k, 1, k, &pa);
        nn_argmax(zb + i * k, 1, k, &pb);
        same += pa == pb;
    }
    *out = d->n ? (double)same / (double)d->n : 0;
    free(za);
    free(zb);
    return rc;
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
    if (!rc && (out->teacher->n_in != student->n_in || out->teacher->n_classes != k))
        rc = NN_FAIL(err, NN_E_SHAPE, "the teacher takes %zu inputs and gives %zu classes, the student %zu and %zu",
                     out->teacher->n_in, out->teacher->n_classes, student->n_in, k);
    if (!rc) rc = nn_net_reserve(out->teacher, b, err);
    if (!rc) rc = nn_evaluate(out->teacher, test, b, NULL, &out->teacher_ev, err);
    /* the teacher sees exactly the student's inputs: once for unaugmented data, per batch under jitter */
    out->soft_on_the_fly = cfg->train.jitter > 0;
    if (!rc && !out->soft_on_the_fly) {
        soft = malloc(train->n * k * sizeof *soft);
        rc = soft ? def_soft_labels(&out->teacher, 1, train->x, train->n, d->kd.temperature, soft, err)
                  : NN_FAIL(err, NN_E_NOMEM, "out of memory for %zu soft labels", train->n);
    }
    if (!rc) rc = def_kd_init(&kd, &d->kd, soft, &out->teacher, 1, k, b, err);
    if (!rc) {
        nn_train_cfg c = cfg->train;
        c.loss = def_kd_loss;
        c.loss_ctx = &kd;
        rc = nn_train(student, train, val, &c, cb, cb_ctx, err);
        if (rc && kd.failed) rc = NN_FAIL(err, kd.err.code, "%s", kd.err.msg);
    }
    for (size_t i = 0; i < d->n_bias && !rc; i++)
        rc = def_bias_adjust(student, d->bias_class[i], d->bias_delta[i], err);
    if (!rc) rc = agreement(out->teacher, student, test, &out->agreement, err);
    def_kd_free(&kd);
    free(soft);
    return rc;
}
