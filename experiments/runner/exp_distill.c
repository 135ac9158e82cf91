/* exp_distill.c - defensive distillation and knowledge distillation runs (see exp_distill.h). */
#include "exp_distill.h"

#include <stdlib.h>
#include <string.h>

#include "def_bss.h"
#include "def_ddgsd.h"
#include "def_distill.h"
#include "exp_bss.h"
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

/* Hinton KD or defensive distillation: soft labels precomputed (or per batch under jitter), def_kd_loss. */
static int train_kd(const exp_config *cfg, const nn_dataset *train, const nn_dataset *val, nn_net *student,
                    nn_progress_fn cb, void *cb_ctx, exp_distill_out *out, nn_err *err) {
    const exp_defense *d = &cfg->defense;
    size_t b = cfg->train.batch_size, k = student->n_classes;
    float *soft = NULL;
    def_kd kd;
    memset(&kd, 0, sizeof kd);
    int rc = NN_OK;
    /* the teacher sees exactly the student's inputs: once for unaugmented data, per batch under jitter */
    out->soft_on_the_fly = cfg->train.jitter > 0;
    if (!out->soft_on_the_fly) {
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
    def_kd_free(&kd);
    free(soft);
    return rc;
}

/* KD with BSS (generated per batch, or from defense.pool), through nn_train's step hook. */
static int train_bss(const exp_config *cfg, const nn_dataset *train, const nn_dataset *val, nn_net *student,
                     nn_progress_fn cb, void *cb_ctx, exp_distill_out *out, nn_err *err) {
    const exp_defense *d = &cfg->defense;
    if (out->n_teachers != 1) return NN_FAIL(err, NN_E_INVAL, "defense bss needs a single teacher, not an ensemble");
    float *px = NULL, *pz = NULL;
    size_t pn = 0;
    int rc = d->pool[0] ? exp_bss_pool_load(d->pool, student->n_in, student->n_classes, &px, &pz, &pn, err) : NN_OK;
    def_bss_cfg bc = d->bss;
    bc.bss.seed += cfg->train.seed; /* each training seed draws its own targets */
    def_bss bss;
    memset(&bss, 0, sizeof bss);
    if (!rc) rc = def_bss_init(&bss, &bc, out->teacher, student, cfg->train.batch_size, px, pz, pn, err);
    if (!rc) {
        nn_train_cfg c = cfg->train;
        c.step = def_bss_step;
        c.step_ctx = &bss;
        rc = nn_train(student, train, val, &c, cb, cb_ctx, err);
        if (rc && bss.failed) rc = NN_FAIL(err, bss.err.code, "%s", bss.err.msg);
        out->n_bss = bss.n_bss;
        out->n_bss_crossed = bss.n_crossed;
        out->bss_l2 = bss.l2_sum;
    }
    def_bss_free(&bss);
    free(px);
    free(pz);
    return rc;
}

/* DDGSD self-distillation through nn_train's step hook (no teacher). */
static int train_ddgsd(const exp_config *cfg, const nn_dataset *train, const nn_dataset *val, nn_net *student,
                       nn_progress_fn cb, void *cb_ctx, nn_err *err) {
    def_ddgsd dd;
    memset(&dd, 0, sizeof dd);
    int rc = def_ddgsd_init(&dd, &cfg->defense.ddgsd, student, cfg->train.batch_size, err);
    if (!rc) {
        nn_train_cfg c = cfg->train;
        c.step = def_ddgsd_step;
        c.step_ctx = &dd;
        rc = nn_train(student, train, val, &c, cb, cb_ctx, err);
        if (rc && dd.failed) rc = NN_FAIL(err, dd.err.code, "%s", dd.err.msg);
    }
    def_ddgsd_free(&dd);
    return rc;
}

int exp_distill_run(const exp_config *cfg, const nn_dataset *train, const nn_dataset *val, const nn_dataset *test,
                    nn_net *student, nn_progress_fn cb, void *cb_ctx, nn_progress_fn teacher_cb, void *teacher_ctx,
                    exp_distill_out *out, nn_err *err) {
    memset(out, 0, sizeof *out);
    const exp_defense *d = &cfg->defense;
    size_t b = cfg->train.batch_size, k = student->n_classes;
    int rc = exp_config_has_teacher(cfg) ? teacher_get(cfg, train, val, student, teacher_cb, teacher_ctx, out, err)
                                         : NN_OK;
    for (size_t i = 0; i < out->n_teachers && !rc; i++) {
        const nn_net *t = out->teachers[i];
        if (t->n_in != student->n_in || t->n_classes != k)
            rc = NN_FAIL(err, NN_E_SHAPE, "teacher %zu takes %zu inputs and gives %zu classes, the student %zu and %zu",
                         i, t->n_in, t->n_classes, student->n_in, k);
        if (!rc) rc = nn_net_reserve(out->teachers[i], b, err);
    }
    if (!rc) {
        switch (d->kind) {
        case EXP_DEFENSE_DISTILLATION:
        case EXP_DEFENSE_KD: rc = train_kd(cfg, train, val, student, cb, cb_ctx, out, err); break;
        case EXP_DEFENSE_BSS: rc = train_bss(cfg, train, val, student, cb, cb_ctx, out, err); break;
        case EXP_DEFENSE_DDGSD: rc = train_ddgsd(cfg, train, val, student, cb, cb_ctx, err); break;
        default: rc = nn_train(student, train, val, &cfg->train, cb, cb_ctx, err); break;
        }
    }
    for (size_t i = 0; i < d->n_bias && !rc; i++)
        rc = def_bias_adjust(student, d->bias_class[i], d->bias_delta[i], err);
    if (!rc && out->n_teachers) rc = teacher_eval(out, student, test, err);
    return rc;
}
