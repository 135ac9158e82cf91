/* exp_evaluate.h - batch evaluation: one attack battery on many saved models, cached per cell.
 *
 * An experiment file with an `evaluate:` block (exp_config.h) names model files (paths or glob patterns), or
 * trains them (a file with model:, whose runs' models exp_run.c passes in exp_evaluate_opts.models), and gives
 * an `attacks:` list. For every model: its data set and pixel range come from its metadata (temper.data,
 * temper.range; `data:` overrides), the gradient-masking diagnostics are measured on the first
 * evaluate.samples test images, and the battery is the attacks: list plus, when temperature_aware and the
 * model was trained at T > 1, the temperature-aware additions (exp_evaluate_battery). Every model x attack x
 * eps is one cell (an unbounded attack - C&W, DeepFool, JSMA - is one cell; its eps grid only adds
 * summaries), keyed by SHA-256 over everything that produces it (exp_cache.h) and kept in the cell store:
 * a rerun reuses every finished cell, a changed attack parameter recomputes only that attack's cells, an
 * interrupted run (Ctrl-C, kill -9) resumes where it stopped, `--force` recomputes everything.
 *
 * The results folder <output>/ (every file rewritten atomically on each run):
 *   models/<dir>/<run>/records.npy, grid.png   copies of the cell's files
 *   models/<dir>/samples.csv                  one row per test image, every run's outcome and the worst case
 *   results.json                              format "temper-evaluate-1", written last
 *   summary.csv, report.md, plots/             exp_report_write (exp_report.h), called at the end
 * records.npy: float32 [n_runs, EXP_REC_COLS], one row per attack run (targeted "all": k - 1 rows per image),
 * columns EXP_REC_*.
 *
 * results.json: {"format": "temper-evaluate-1", "experiment": {path, name, sha256, text}, temper_version,
 * git_commit, seed, threads, blas {config, threads, parallel_mode}, libraries {libyaml, zlib, libpng, openblas},
 * started (UTC ISO 8601), wall_seconds, cells_total, cells_reused, force, samples, temperature_aware,
 * "models": [{label (the path minus "./", "results/", "/model.safetensors"; or the caller's label, see
 * exp_evaluate_opts.models; "#2"... when taken), dir
 * ("models/<label with / -> __>"), file, sha256, data, range [lo, hi], temperature, test_samples,
 * clean_accuracy, diagnostics {samples, mean_abs_logit, std_abs_logit, frac_zero_gradient,
 * frac_saturated_softmax, mean_gradient_l2}, warnings [lines],
 *   "cells": [{attack, run, kind, norm (linf | l2 | l0), eps (null: unbounded), added ("temperature-aware" |
 *   null), key, reused, seconds (of the run that computed it), params {attacks.json's members}, records, grid
 *   (paths under the folder; grid null without one), "summaries": [{eps (null: unbounded), samples, runs,
 *   clean_correct, successes, robust_accuracy, success_rate, mean_/median_ l0 l2 linf, [rho_adv (jsma)],
 *   [best_case, best_case_samples, worst_case, worst_case_samples (targeted "all")], mean_iters}]
 *   (bounded: one; unbounded: null, then one per eps of its grid)}],
 *   "worst_case": [{norm, eps, samples, robust, robust_accuracy, attacks [runs with a record within the
 *   bound]}] (every (norm, eps) of the battery's grids: linf, l2, l0, each by eps)}]}
 * samples.csv: test_index,label,clean_pred, then per run <run>_success,<run>_pred,<run>_l0,<run>_l2,<run>_linf
 * (targeted "all": any target reached; the successful run of least distortion in the attack's norm, else the
 * first; empty where the run did not cover the image), then worst_<norm>_<eps>_robust (0/1; empty beyond
 * evaluate.samples). */
#ifndef EXP_EVALUATE_H
#define EXP_EVALUATE_H

#include <stddef.h>
#include <stdio.h>

#include "exp_attack.h"
#include "nn_err.h"

struct exp_config;

/* Columns of records.npy. */
enum {
    EXP_REC_INDEX,   /* test-set index of the image */
    EXP_REC_LABEL,   /* its label */
    EXP_REC_TARGET,  /* target class, -1 untargeted */
    EXP_REC_CLEAN,   /* prediction on the image */
    EXP_REC_PRED,    /* prediction on the returned example */
    EXP_REC_SUCCESS, /* 0/1, the attack's own criterion */
    EXP_REC_L0,      /* distortions of the returned example */
    EXP_REC_L2,
    EXP_REC_LINF,
    EXP_REC_ITERS, /* gradient evaluations */
    EXP_REC_COLS
};

/* Threat-model norms of the worst case; JSMA's budgets are L0 (features changed). */
enum { EXP_NORM_LINF, EXP_NORM_L2, EXP_NORM_L0 };

/* The records of one cell: rows[n, EXP_REC_COLS], borrowed. */
typedef struct exp_records {
    const float *rows;
    size_t n;
} exp_records;

/* AutoAttack's worst case over the cells of one model at the threat model (norm, eps): image i < n_samples
 * is robust iff clean_correct[i] and no record of any cell with test index i has pred != label and a
 * distortion in norm <= eps * (1 + 1e-5) + 1e-7 (a targeted run that missed its target but reached a wrong
 * class counts; so does a record of a larger-eps run or of another norm's attack whose distortion in this
 * norm is small enough). Images that no record covers count on their clean prediction alone; records with a
 * test index >= n_samples are ignored. robust[n_samples] (required) receives 0/1 per image; counted[n_cells]
 * (may be NULL) receives 1 for a cell with at least one record within the bound on a clean-correct image
 * below n_samples. Returns the number of robust images. Pure; thread-safe. */
size_t exp_worst_case(const exp_records *cells, size_t n_cells, const unsigned char *clean_correct, size_t n_samples,
                      int norm, double eps, unsigned char *robust, unsigned char *counted);

/* The battery of one model trained at temperature T: a[0..n) copied, then, when temperature_aware and T > 1
 * (each added one flagged added[i] = 1, the others 0):
 *  - "<name>-T" for every bounded attack (FGSM/FGM/BIM/PGD) with loss ce at temperature 1, at temperature T;
 *  - "<name>-T" for every JSMA on the softmax at temperature 1, at temperature T;
 *  - "pgd-margin" (PGD, margin loss, defaults otherwise, `samples` images) over the sorted union of the eps
 *    grids of the L-inf bounded attacks (at most EXP_MAX_EPS, the smallest), unless a bounded L-inf attack
 *    already uses the margin loss or there is no L-inf bounded attack.
 * An added name already taken gets "-2", "-3", ... Writes at most cap attacks; returns how many. Pure. */
size_t exp_evaluate_battery(const exp_attack *a, size_t n, float T, int temperature_aware, size_t samples,
                            exp_attack *out, int *added, size_t cap);

/* Where a test run kills the process with SIGKILL (exp_evaluate_opts.kill_at). FOR TESTS ONLY: the resume
 * tests fork a child that dies at one of these points and check that a rerun gives the uninterrupted
 * results. Cells count those computed by this run (not reused), from 1. */
enum {
    EXP_KILL_NONE = 0,
    EXP_KILL_AFTER_COMMIT,  /* right after cell kill_cell is committed */
    EXP_KILL_BEFORE_COMMIT, /* in cell kill_cell, its files written, before its commit */
    EXP_KILL_BEFORE_RESULTS /* after every cell and the results folder's other files, before results.json */
};

/* A model given by the caller rather than by evaluate.models: a training experiment's runs (exp_run.c). */
typedef struct exp_evaluate_model {
    const char *file;  /* its model.safetensors */
    const char *label; /* its label in results.json ("temperature-10", "kd/seed-0/teacher"; NULL: from file) */
} exp_evaluate_model;

typedef struct exp_evaluate_opts {
    int force;          /* recompute every cell (exp_cell_commit_replace) */
    int quiet;          /* no progress lines (warnings still go to progress) */
    FILE *out;          /* the final table and the paths (NULL: none) */
    FILE *progress;     /* progress and warnings (NULL: none); a terminal gets one line redrawn */
    const char *text;   /* the experiment file's bytes for results.json (NULL: read from cfg->path) */
    size_t text_len;
    const exp_evaluate_model *models; /* evaluated first, in this order, then evaluate.models (borrowed) */
    size_t n_models;
    int kill_at;        /* EXP_KILL_*: tests only (see above) */
    size_t kill_cell;
} exp_evaluate_opts;

typedef struct exp_evaluate_stats {
    size_t models, cells_total, cells_reused;
    double seconds;
} exp_evaluate_stats;

/* Runs the evaluate: experiment cfg (cfg->evaluate.enabled): the models o->models (in their order, labelled
 * as given), then those of cfg->evaluate.models (patterns expanded, sorted in natural order: t-2 before t-10;
 * duplicates of any earlier model removed; labelled by their path), each made unique ("#2"); evaluates every
 * model (cells reused from cfg->evaluate.cache unless o->force), writes the results folder cfg->output
 * (created) with results.json last, then calls exp_report_write on it. Prints progress to o->progress and a
 * table of clean and worst-case robust accuracy to o->out. st (may be NULL) receives the counts.
 * Errors: no model at all, a literal evaluate.models path or an o->models file missing, a model or its data
 * that cannot be loaded or do not match (naming the file), attack errors, file errors (naming the path),
 * report errors. Cells finished before an error stay in the store.
 * Not thread-safe (one evaluation per process at a time; concurrent processes may share a cache). */
int exp_evaluate_run(const struct exp_config *cfg, const exp_evaluate_opts *o, exp_evaluate_stats *st, nn_err *err);

#endif
