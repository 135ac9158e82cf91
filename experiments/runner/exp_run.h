/* exp_run.h - the `temper run` and `temper eval` commands (the CLI parsing lives in exp_cli.c).
 *
 * Both return NN_OK or an NN_E_* code with err filled; they print their summary to `out` and
 * progress to `progress` (may be NULL), never an error message (the caller does that). */
#ifndef EXP_RUN_H
#define EXP_RUN_H

#include <stddef.h>
#include <stdio.h>

#include "exp_attack.h"
#include "exp_cache.h"
#include "nn_err.h"

/* Metadata keys `run` writes into model.safetensors and `eval` reads back. */
#define EXP_META_DATA "temper.data"             /* data set name, e.g. "mnist" */
#define EXP_META_RANGE "temper.range"           /* pixel range "lo,hi" with %.9g, e.g. "-0.5,0.5" */
#define EXP_META_EXPERIMENT "temper.experiment" /* the experiment's name */

typedef struct exp_run_opts {
    const char *file;   /* the experiment file */
    const char *output; /* NULL: the experiment's `output` */
    int threads;        /* > 0 overrides the experiment's `threads` */
    size_t epochs;      /* > 0 overrides train.epochs */
    int quiet;          /* no progress lines */
    int allow_any_blas; /* run even if OpenBLAS is not the OpenMP build */
    int force;          /* recompute: every run (training files), every cell (evaluate:) */
} exp_run_opts;

/* Loads the experiment, trains, evaluates on the test set and writes into the output folder
 * (created with its parents): model.safetensors, train_log.csv, experiment.yaml (a byte copy of the
 * file that was parsed), and metrics.json last (with the run key), each atomically. An existing
 * metrics.json there (and attacks.json) is removed before the first new file, so a folder holds a
 * metrics.json only when every file in it belongs to one finished run. A folder that already holds the
 * run of the same key is reused (exp_run_reuse) unless o->force. Prints a summary to out. A file with an
 * evaluate: block and no model: runs the batch evaluation instead (exp_evaluate.h); one with model: runs every
 * run (sweep and variants included) without attacks (its attacks: list out of the runs and their keys), then
 * the batch evaluation of the runs' models (and teachers, evaluate.teachers) and of evaluate.models into
 * <output>/evaluate/ (exp_config.h); o->force recomputes both the runs and the cells. */
int exp_run(const exp_run_opts *o, FILE *out, FILE *progress, nn_err *err);

struct exp_config;
/* One run of an already parsed experiment (text: the file's bytes, copied to experiment.yaml); exp_run
 * without the parsing and the reuse check, and what a sweep calls once per value. key: the run key that
 * metrics.json records (exp_run_key), NULL to compute it here. */
int exp_run_config(const exp_run_opts *o, const char *text, size_t len, const struct exp_config *cfg,
                   const char *key, FILE *out, FILE *progress, nn_err *err);

/* The run key of cfg (its effective configuration, as for exp_config_canon): lowercase hex SHA-256
 * (exp_key_*) over "temper-run-key-1", TEMPER_VERSION, the canonical text, the SHA-256 of the data set's
 * four IDX files (wherever nn_data_load finds them, .gz included), and of every model file the run loads
 * (model_file; the teacher's model_file or ensemble when it has a teacher; a bss defense's pool arrays).
 * memo (may be NULL) hashes each file once per process. Errors: those of exp_config_canon; NN_E_IO naming a
 * missing or unreadable file (a missing data set says to run scripts/fetch_data.sh). */
int exp_run_key(const struct exp_config *cfg, exp_hash_memo *memo, char hex[65], nn_err *err);

/* What a results folder holds for a run of key `key`. */
typedef enum exp_run_state {
    EXP_RUN_NEW,     /* nothing finished: no (readable) metrics.json, or attacks.json missing when it attacks */
    EXP_RUN_SAME,    /* finished, with the same run key */
    EXP_RUN_CHANGED, /* metrics.json of another run key: the experiment changed since */
    EXP_RUN_NO_KEY   /* finished by a temper that wrote no run key */
} exp_run_state;

/* Reads dir/metrics.json (and checks [teacher/]attacks/attacks.json when cfg attacks). Never fails. */
exp_run_state exp_run_state_of(const char *dir, const struct exp_config *cfg, const char *key);

/* Whether the run of cfg (key) in its folder cfg->output is reused rather than computed: 1 for
 * EXP_RUN_SAME and EXP_RUN_NO_KEY unless o->force, else 0. Prints to out (may be NULL) "<what>: finished
 * earlier, reused (<dir>/)" (what NULL: "<dir>: finished earlier, reused"), "<dir>: the experiment changed
 * since it ran (run key differs): recomputing" or "<dir>: --force: recomputing"; for EXP_RUN_NO_KEY also
 * "temper: warning: <dir>: no run key (older temper): reused as is; --force recomputes" to progress (out
 * when progress is NULL). Implemented in exp_config_canon.c. */
int exp_run_reuse(const exp_run_opts *o, const struct exp_config *cfg, const char *key, const char *what,
                  FILE *out, FILE *progress);

typedef struct exp_eval_opts {
    const char *model; /* a model.safetensors */
    const char *data;  /* "mnist" | "fashion-mnist"; NULL: the model's temper.data metadata */
    int has_range;     /* lo/hi given; else the model's temper.range, else [0, 1] */
    float lo, hi;
    size_t batch;       /* >= 1 */
    size_t limit;       /* evaluate the first `limit` test samples; 0 = all */
    const char *logits; /* NULL, or a .npy path for the logits [n, classes] (float32) */
    int threads;        /* > 0: OpenMP threads */
} exp_eval_opts;

/* Loads the model and evaluates it on the test set; prints accuracy, errors and per-class errors. */
int exp_eval(const exp_eval_opts *o, FILE *out, nn_err *err);

typedef struct exp_attack_opts {
    exp_eval_opts ev;   /* model, data, range, threads; ev.limit = the number of test samples */
    exp_attack attack;  /* lo/hi filled from the data */
    const char *output; /* NULL: <the model's folder>/attacks */
    int quiet;
} exp_attack_opts;

/* `temper attack`: loads the model and its test set and runs one attack (over its eps grid) with
 * exp_attacks_run. */
int exp_attack_cmd(exp_attack_opts *o, FILE *out, FILE *progress, nn_err *err);

/* "lo,hi" -> two finite numbers with lo < hi, nothing else in the string. 0, or -1 if malformed. */
int exp_parse_range(const char *s, float *lo, float *hi);

/* openblas_get_parallel() mode as a word: 0 "sequential", 1 "pthreads", 2 "openmp". */
const char *exp_blas_mode_name(int mode);

/* Creates dir and its missing parents (like mkdir -p); errors name the folder. */
int exp_mkdir_p(const char *dir, nn_err *err);
/* buf <- dir/name; NN_E_INVAL if it does not fit. */
int exp_path_join(char *buf, size_t cap, const char *dir, const char *name, nn_err *err);

/* Sets the OpenMP (and so OpenBLAS) thread count when n > 0. */
void exp_threads_set(int n);

#endif
