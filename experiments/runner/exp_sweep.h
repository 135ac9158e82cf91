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
/* The number of runs of cfg: variants (1 without) x the points of the sweep grid (1 without). */
size_t exp_sweep_count(const exp_config *cfg);
/* Run i (0 <= i < exp_sweep_count(cfg)) in the order exp_sweep_run runs them (every variant at a grid point
 * before the next point, the last axis fastest): *c <- cfg with the variant's defense and the point applied
 * (exp_defense_finish called) and c->output its folder <output>[/<variant>]/<last key part>-<value>[/...]
 * (cfg->output itself without sweep: and variants:). variant, point[EXP_MAX_AXES] (may be NULL) receive the
 * variant's index and the axes' values; what (may be NULL) "<variant>, <key> = <value>, ..." within wcap.
 * Errors: NN_E_INVAL when the folder name is too long. */
int exp_sweep_point(const exp_config *cfg, size_t i, exp_config *c, size_t *variant, double *point, char *what,
                    size_t wcap, nn_err *err);
/* Runs the experiment once per variant and grid point into <output>[/<variant>]/<last key part>-<value>[/...]/
 * (one level per axis), reusing finished runs of the same run key (exp_run_reuse), then writes <output>/sweep.csv (one row per run: accuracies,
 * boundary similarity, diagnostics, every attack's success rate and robust accuracy) and <output>/sweep.md
 * (the same as mean +- sample standard deviation over train.seed when it is an axis). */
int exp_sweep_run(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg, FILE *out,
                  FILE *progress, nn_err *err);

#endif
