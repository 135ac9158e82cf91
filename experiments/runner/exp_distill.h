/* exp_distill.h - `temper run` with a teacher or a defense: the teacher (loaded or trained), the student
 * trained by the defense (hard labels, distillation, KD, KD with BSS, DDGSD), bias adjustments, and the
 * teacher's figures. */
#ifndef EXP_DISTILL_H
#define EXP_DISTILL_H

#include <stdio.h>

#include "exp_config.h"
#include "nn_train.h"

typedef struct exp_distill_out {
    nn_net *teachers[EXP_MAX_ENSEMBLE]; /* owned by the caller afterwards (exp_distill_free) */
    size_t n_teachers;  /* 1, or the ensemble's size */
    nn_net *teacher;    /* teachers[0] for a single teacher, NULL for an ensemble */
    int teacher_trained;/* 1: trained here (the caller saves it), 0: loaded from teacher.model_file */
    nn_eval teacher_ev; /* the teacher (the ensemble's mean softmax) on the test set: n, errors, accuracy */
    double agreement;   /* fraction of test samples where teacher and student predict the same class */
    double teacher_s;   /* wall time of the teacher's (and common init's) training */
    int soft_on_the_fly;/* soft labels computed per batch (jitter on) instead of once */
    size_t n_bss, n_bss_crossed; /* BSS made while training (defense bss) and how many crossed */
    double bss_l2;      /* their summed L2 distance from the base samples */
} exp_distill_out;

/* Trains `student` (created and initialised by the caller) by cfg->defense (none: hard labels) with the
 * teacher described by cfg->teacher when exp_config_has_teacher, on train (val may be NULL). Student epochs
 * report to cb/cb_ctx; the teacher's epochs to teacher_cb (may be NULL). Errors: architecture mismatch for
 * common_init, teacher files, a BSS pool, training errors. */
int exp_distill_run(const exp_config *cfg, const nn_dataset *train, const nn_dataset *val, const nn_dataset *test,
                    nn_net *student, nn_progress_fn cb, void *cb_ctx, nn_progress_fn teacher_cb, void *teacher_ctx,
                    exp_distill_out *out, nn_err *err);

/* Destroys out's teachers. */
void exp_distill_free(exp_distill_out *out);

#endif
