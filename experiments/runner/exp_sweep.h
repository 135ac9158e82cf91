/* exp_sweep.h - `sweep:` in experiment files (see exp_sweep.c). */
#ifndef EXP_SWEEP_H
#define EXP_SWEEP_H

#include <stdio.h>

#include "exp_config.h"
#include "exp_run.h"

/* 0 if the axis names a sweepable parameter and valid, distinct values; else -1 with the reason in why. */
int exp_sweep_check(const exp_sweep_axis *s, char *why, size_t cap);
/* Sets parameter key of c to v (a defense temperature also sets the student's, and a distillation
 * teacher's, training temperature). */
void exp_sweep_apply(exp_config *c, const char *key, double v);
/* Runs the experiment once per variant and grid point into <output>[/<variant>]/<last key part>-<value>[/...]/
 * (one level per axis), reusing finished runs of the same run key (exp_run_reuse), then writes <output>/sweep.csv (one row per run: accuracies,
 * boundary similarity, diagnostics, every attack's success rate and robust accuracy) and <output>/sweep.md
 * (the same as mean +- sample standard deviation over train.seed when it is an axis). */
int exp_sweep_run(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg, FILE *out,
                  FILE *progress, nn_err *err);

#endif
