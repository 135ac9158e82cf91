/* exp_evaluate_int.h - the batch evaluation's state, shared by exp_evaluate.c (phase 1: the cells) and
 * exp_evaluate_out.c (phase 2: the results folder). Internal to the runner. */
#ifndef EXP_EVALUATE_INT_H
#define EXP_EVALUATE_INT_H

#include <stdio.h>

#include "atk_diag.h"
#include "exp_attack_int.h"
#include "exp_cache.h"
#include "exp_config.h"
#include "exp_evaluate.h"
#include "exp_json.h"
#include "nn_io.h"

#define EV_FORMAT "temper-evaluate-1"
#define EV_CELL_FORMAT "temper-eval-cell-1"
#define EV_MAX_BATTERY (2 * EXP_MAX_ATTACKS + 1)
#define EV_PATH EXP_CACHE_PATH_MAX
#define EV_WARN 8192

typedef struct ev_cell {
    size_t ai;        /* index into the model's battery */
    float eps;        /* bounded: this cell's eps; < 0: unbounded */
    char run[96];     /* folder name: the attack's name, "-eps<eps>" for bounded attacks */
    char key[65];
    char *dir;        /* the finished cell folder, owned */
    int reused, grid; /* grid: the cell holds a grid.png */
    double seconds;   /* the attack's time in the run that computed the cell (NaN: unknown) */
    size_t n_runs;
    atk_summary sum[1 + EXP_MAX_EPS]; /* bounded: its eps; unbounded: none, then each eps of the grid */
    size_t n_sum;
} ev_cell;

/* One threat model of the worst case and its result. */
typedef struct ev_threat {
    int norm; /* EXP_NORM_* */
    float eps;
    size_t robust;
    unsigned char *counted; /* [n_cells]: the cell has a record within the bound */
} ev_threat;

typedef struct ev_model {
    const char *file; /* borrowed from the expanded list */
    char label[256], dir[300], sha[65];
    nn_data_cfg dc;
    float T;
    exp_attack bat[EV_MAX_BATTERY];
    int added[EV_MAX_BATTERY];
    size_t n_bat;
    ev_cell *cells;
    size_t n_cells;
    size_t n_samples, max_m; /* images of the worst case; rows of samples.csv */
    size_t n_in;
    double clean_acc;
    int *pred, *y;     /* [max_m] clean predictions and labels */
    size_t *tid;       /* [max_m] test-set indices */
    atk_diag diag;
    char warn[EV_WARN];
    ev_threat *wc;
    size_t n_wc;
} ev_model;

/* A loaded test set, and the hashes of its prefixes used by cell keys. */
typedef struct ev_hash {
    size_t n;
    char x[65], y[65];
} ev_hash;

typedef struct ev_data {
    nn_data_cfg dc;
    nn_dataset test;
    ev_hash *h;
    size_t n_h;
} ev_data;

typedef struct ev_ctx {
    const exp_config *cfg;
    const exp_evaluate_opts *o;
    const char *root; /* the cell store */
    char **files;   /* o->models' files first (n_given of them), then evaluate.models' */
    size_t n_files, n_given;
    ev_model *m;
    size_t n_m;
    ev_data *data;
    size_t n_data;
    exp_hash_memo memo;
    size_t need; /* test images loaded per data set */
    size_t total, done, reused, computed;
    double t0;
    char started[32];
    FILE *pf; /* progress (NULL: quiet) */
    int tty;
    double last, cell_t0;
    const char *what_model, *what_run;
} ev_ctx;

float ev_rec_dist(const float *r, int norm); /* a record's distortion in the norm (EXP_NORM_*) */
const char *ev_norm_name(int norm);
/* Natural order of model paths: digit runs compare as numbers (temperature-2 before temperature-10), ties
 * (leading zeros) by strcmp, so only equal strings compare equal. */
int ev_name_cmp(const char *a, const char *b);
int ev_attack_norm(const exp_attack *a); /* the norm an attack's distortion and eps grid are measured in */
void ev_kill_point(const exp_evaluate_opts *o, int at, size_t k); /* the tests' kill hook (exp_evaluate.h) */
void ev_json_summary(exp_json *j, const atk_summary *s, const exp_attack *a);
int ev_records_load(const char *dir, nn_npy *a, nn_err *err); /* records.npy of a finished cell folder */

/* Phase 2: the results folder (results.json removed first, written last). */
int ev_write_folder(ev_ctx *x, nn_err *err);
/* The table of worst-case robust accuracies printed at the end of a run. */
void ev_print_table(const ev_ctx *x, FILE *out);

#endif
