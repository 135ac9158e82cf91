/* exp_config.h - an experiment file (YAML) mapped onto the modules' config structs.
 *
 * Schema (every key optional unless marked; unknown keys, wrong types, out-of-range values are errors
 * naming file:line:column and the dotted key):
 *   name: quickstart                 # default: the file's base name without .yaml
 *   output: results/quickstart       # default: results/<name>
 *   threads: 0                       # OpenMP threads (0..1024), 0 = OMP_NUM_THREADS / all cores
 *   data:                            # required (except with evaluate:)
 *     name: mnist                    # required: mnist | fashion-mnist
 *     range: [0, 1]                  # pixel range [lo, hi]
 *     val_size: 0
 *     shuffle: false
 *     seed: 0
 *     subset: 0
 *     exclude_classes: []            # e.g. [3]
 *     test_subset: 0
 *   model_file: results/x/model.safetensors  # instead of model: + train: evaluate (and attack) a saved model
 *   model:                           # required unless model_file: a list of layers, in torch.nn.Sequential order
 *     - {type: conv2d, filters: 32, kernel: 3, stride: 1, pad: 0, init: he}
 *     - {type: relu}
 *     - {type: maxpool, kernel: 2}
 *     - {type: flatten}
 *     - {type: dense, units: 200}
 *     - {type: dropout, rate: 0.5}
 *   train:
 *     epochs: 10
 *     batch_size: 128
 *     temperature: 1
 *     seed: 0
 *     jitter: 0                      # random translation by up to k pixels (0..64)
 *     optimizer: {type: sgd, lr: 0.01, momentum: 0.9, nesterov: true, weight_decay: 0, decay: 0,
 *                 beta1: 0.9, beta2: 0.999, eps: 1e-8}
 *     schedule: {milestones: [40, 60], gamma: 0.1}
 *   defense:                         # distillation; the experiment's model:/train: describe the student
 *     type: distillation             # distillation (Papernot: teacher and student at T, alpha 1, no T^2) | kd (Hinton)
 *     temperature: 100
 *     alpha: 1                       # kd: weight of the soft term; (1 - alpha) on the hard labels at T=1
 *     t2: true                       # kd: multiply the soft term by T^2
 *     common_init: false             # teacher and student start from one epoch of training at T (Carlini)
 *     bias: [{class: 3, delta: 3.5}] # added to the student's output biases after training
 *   teacher:                         # default: trained from model:/train: (at T for distillation)
 *     model_file: results/t/model.safetensors   # or model: [...] and/or train: {...}
 *   sweep: {key: defense.temperature, values: [1, 2, 5, 10]}   # one run per value in <output>/temperature-<v>/,
 *                                    # finished ones of the same run key reused (`temper help run`); keys:
 *                                    # defense.temperature, defense.alpha, train.temperature, train.epochs,
 *                                    # train.seed, data.subset
 *   attacks:                         # run on the trained model's test set, results in <output>/attacks/
 *                                    # (with evaluate: by the batch evaluation only, see below)
 *     - {type: fgsm, eps: [0.1, 0.2, 0.3]}               # fgsm | fgm | bim | bim-l2 | pgd | pgd-l2
 *     - {type: pgd, eps: 0.3, iters: 40, step: 0.01, restarts: 1, random_start: true,
 *        loss: ce, temperature: 1, kappa: 0, targeted: false, targets: all}   # loss: ce | margin
 *     - {type: jsma, on: softmax, temperature: 1, gamma: 0.145, samples: 100} # on: softmax | logits
 *     - {type: cw, iters: 1000, search_steps: 9, lr: 0.01, c0: 0.001, kappa: 0, targeted: true,
 *        abort_early: true, eps: [1, 2]}              # eps of C&W/DeepFool/JSMA: extra bounded summaries
 *     - {type: deepfool, iters: 50, overshoot: 0.02}
 *     # every attack also takes: name (default the type), samples (first N test images, 1000),
 *     # grid (rows of grid.png, 16), seed (1). Attacks run in batches of at least 128.
 *   evaluate:                        # batch evaluation (exp_evaluate.h) of saved models and/or of the models
 *                                    # this file trains
 *     models:                        # model files or glob(3) patterns, expanded, sorted, duplicates removed
 *       - results/x/t-?/model.safetensors # (a pattern matching nothing: a warning); required without model:
 *     samples: 1000                  # first N test images, for every attack that gives no samples: of its own
 *     temperature_aware: true        # models trained at T > 1 also face attacks at T (exp_evaluate.h)
 *     cache: results/.cache          # the cell store (exp_cache.h)
 *     teachers: false                # with model: also evaluate the teachers the runs trained
 *   # With evaluate:, the attacks: list is required and every attack without samples: of its own takes
 *   # evaluate.samples. Two kinds of file:
 *   # - without model: (an evaluate: experiment): it trains nothing and attacks the models evaluate.models
 *   #   names; data: is optional (it overrides the data set and, when data.range is given, the pixel range that
 *   #   each model's metadata names); model_file:, train:, defense:, teacher:, sweep:, variants:, bss: and
 *   #   boundary: are errors; evaluate.teachers: too.
 *   # - with model: (a training experiment, single run, sweep: and/or variants:): every run trains (or is
 *   #   reused) as without evaluate:, but runs no attacks of its own (attacks: is not part of the run key);
 *   #   then one batch evaluation attacks each run's model.safetensors in the sweep's order (labelled by its
 *   #   folder under output:, e.g. "temperature-10", "kd/subset-600/seed-0"; a single run's "model"), after
 *   #   each the teacher the run trained (<run>/teacher/model.safetensors, label "<run>/teacher") when
 *   #   evaluate.teachers, then the models of evaluate.models (optional), with the attacks: list, into
 *   #   <output>/evaluate/. Each model's data set and range come from its metadata. model_file: is an error
 *   #   and no variant may be named "evaluate".
 */
#ifndef EXP_CONFIG_H
#define EXP_CONFIG_H

#include <stddef.h>

#include "atk_boundary.h"
#include "def_bss.h"
#include "def_ddgsd.h"
#include "def_distill.h"
#include "exp_attack.h"
#include "nn_data.h"
#include "nn_err.h"
#include "nn_layer.h"
#include "nn_train.h"

#define EXP_MAX_LAYERS 64

#define EXP_MAX_BIAS 10

/* The frozen teacher of a distillation: a saved model, or one trained here (default: the experiment's
 * model: and train: blocks; for defensive distillation it trains at defense.temperature). */
#define EXP_MAX_ENSEMBLE 8

typedef struct exp_teacher {
    char model_file[512];
    char ensemble[EXP_MAX_ENSEMBLE][512]; /* model files whose mean softmax at T teaches (instead of one teacher) */
    size_t n_ensemble;
    nn_layer_cfg layers[EXP_MAX_LAYERS];
    size_t n_layers;       /* 0: the experiment's model */
    nn_train_cfg train;
    int has_train;         /* 0: the experiment's train block */
    int attack;            /* the experiment's attacks also run on the teacher (default 1) */
    int present;           /* a teacher: section was given (without a defense: a teacher to compare with) */
} exp_teacher;

enum { EXP_DEFENSE_NONE, EXP_DEFENSE_DISTILLATION, EXP_DEFENSE_KD, EXP_DEFENSE_BSS, EXP_DEFENSE_DDGSD };

typedef struct exp_defense {
    int kind;              /* EXP_DEFENSE_* */
    def_kd_cfg kd;         /* temperature (of every kind), alpha, t2 */
    def_bss_cfg bss;       /* type bss; its temperature, epochs and range follow kd, train and data */
    char pool[512];        /* type bss: a `temper bss` folder whose samples replace on-the-fly generation */
    def_ddgsd_cfg ddgsd;   /* type ddgsd; its temperature and range follow kd and data */
    int common_init;       /* teacher and student start from one epoch at T (Carlini's reference code) */
    int bias_class[EXP_MAX_BIAS]; /* post-hoc student bias adjustments */
    float bias_delta[EXP_MAX_BIAS];
    size_t n_bias;
} exp_defense;

#define EXP_MAX_SWEEP 32
#define EXP_MAX_AXES 3
#define EXP_MAX_VARIANTS 8

/* One axis of a sweep: {key: defense.temperature, values: [1, 2, 5]}. */
typedef struct exp_sweep_axis {
    char key[64];
    double values[EXP_MAX_SWEEP];
    size_t n;
} exp_sweep_axis;

/* sweep: one axis, or a list of up to EXP_MAX_AXES axes (their grid): the experiment once per point. */
typedef struct exp_sweep {
    exp_sweep_axis axis[EXP_MAX_AXES];
    size_t n_axes; /* 0: no sweep */
} exp_sweep;

/* bss: BSS generated from the experiment's model (a teacher: model_file: or trained here) on the training
 * set, saved under <output>/bss/ (exp_bss.h). */
typedef struct exp_bss_spec {
    int enabled;
    size_t samples;  /* base samples considered: the first `samples` training samples (0 = all) */
    atk_bss_cfg cfg; /* eta, steps, policy, seed; max_base = per batch of the teacher's batch size */
    size_t grid;     /* samples in grid.png (0 = none) */
} exp_bss_spec;

/* boundary: teacher-student decision-boundary similarity (MagSim, AngSim; atk_boundary.h) on the first
 * `samples` test samples, whenever the run has a teacher; its range follows the data. */
typedef struct exp_boundary {
    size_t samples;       /* 0 = off (default 500) */
    atk_boundary_cfg cfg;
} exp_boundary;

/* variants: named defenses run side by side ({name: hard} has none), each over the whole sweep grid. */
typedef struct exp_variant {
    char name[64];
    exp_defense defense;
} exp_variant;

#define EXP_MAX_EVAL_MODELS 64

/* evaluate: (see the schema above). */
typedef struct exp_evaluate_cfg {
    int enabled;                               /* an evaluate: block was given */
    int trains;                                /* the file also trains (model:): evaluate the runs' models */
    int teachers;                              /* with trains: also the teachers the runs trained (default 0) */
    char models[EXP_MAX_EVAL_MODELS][512];     /* paths or glob(3) patterns, as written */
    size_t n_models;
    size_t samples;                            /* default 1000 */
    int temperature_aware;                     /* default 1 */
    char cache[512];                           /* default results/.cache */
    int has_data, has_range;                   /* data: / data.range: given: they override every model's */
} exp_evaluate_cfg;

typedef struct exp_config {
    char path[512];   /* the experiment file as given */
    char name[128];
    char output[512];
    int threads;
    nn_data_cfg data;
    char model_file[512]; /* "" = train the model of `layers` */
    nn_layer_cfg layers[EXP_MAX_LAYERS];
    size_t n_layers;
    nn_train_cfg train;
    exp_teacher teacher; /* used when defense.kind != EXP_DEFENSE_NONE */
    exp_defense defense;
    exp_attack attacks[EXP_MAX_ATTACKS];
    size_t n_attacks;
    exp_sweep sweep;
    exp_variant variants[EXP_MAX_VARIANTS];
    size_t n_variants;
    exp_bss_spec bss;
    exp_boundary boundary;
    exp_evaluate_cfg evaluate;
} exp_config;

/* Whether the run needs a teacher: a teacher: section, or a defense that learns from one. */
int exp_config_has_teacher(const exp_config *cfg);

/* Sets the fields that follow others (call after changing the defense, train or data settings): a
 * distillation teacher and a distilled or KD student train at the defense's T; BSS and DDGSD take their T
 * from defense.temperature, BSS its schedule length from train.epochs, both their range from the data. */
void exp_defense_finish(exp_config *cfg);

/* Whether the experiment's attacks also run on its teacher (a defense with a single teacher, teacher.attack). */
int exp_config_attacks_teacher(const exp_config *cfg);

/* Defaults for every field (no layers, data name empty). */
void exp_config_default(exp_config *cfg);

/* The canonical text of one run's effective configuration (call after exp_defense_finish, with any sweep
 * point and variant applied): one "dotted.key=value" line per field that can change the trained model or its
 * evaluation, in the order of the schema's field tables (exp_config_canon.c walks them): data (its range as
 * [lo, hi]), model, model_file, train, teacher (only when the run has one), defense (the run's own, a
 * variant's once applied), attacks, bss, boundary. Floats with %.9g (exact), -0 as 0. Left out: name, output,
 * threads (results do not depend on them), sweep, variants and evaluate. Equal texts <=> equal settings.
 * *text: malloc'd, NUL-terminated, freed by the caller (NULL on error). Errors: NN_E_NOMEM; NN_E_INVAL when a
 * custom key of the schema has no canonical form yet (a new EXP_F_CUSTOM key needs a line in
 * exp_config_canon.c). */
int exp_config_canon(const exp_config *cfg, char **text, nn_err *err);

/* ---- the schema's field tables (exp_config*.c), for exp_config_canon.c which walks them ---- */

struct exp_table;
struct exp_choice;
/* The top-level keys (exp_config.c): exp_config's fields. Static data, valid for the process's life. */
const struct exp_table *exp_config_top_table(void);
/* The keys of one model: layer (exp_config.c), each with its NN_F_* bit: an nn_layer_cfg. */
const struct exp_table *exp_config_layer_table(void);
/* The keys of train: (exp_config.c): an nn_train_cfg (also a teacher's train:). */
const struct exp_table *exp_config_train_table(void);
/* The keys of one attacks: item (exp_config_attack.c), bits per kind (exp_config_attack_mask): an exp_attack. */
const struct exp_table *exp_config_attack_table(void);
/* The keys of teacher: (exp_config_defense.c): an exp_teacher. */
const struct exp_table *exp_config_teacher_table(void);
/* The keys of defense: (exp_config_defense.c), bits per kind (exp_config_defense_mask): an exp_defense. */
const struct exp_table *exp_config_defense_table(void);
/* The keys of one defense.views item (ddgsd, exp_config_defense.c): a def_ddgsd_view. */
const struct exp_table *exp_config_view_table(void);
/* The keys of boundary: (exp_config_defense.c): an exp_boundary. */
const struct exp_table *exp_config_boundary_table(void);
/* The keys of bss: (exp_config_bss.c): an exp_bss_spec. */
const struct exp_table *exp_config_bss_table(void);
/* defense.type's names and EXP_DEFENSE_* values, ending with {NULL, 0} (exp_config_defense.c). */
const struct exp_choice *exp_config_defense_kinds(void);
/* The field bits of defense_table that defense kind EXP_DEFENSE_* accepts (exp_config_defense.c). */
unsigned exp_config_defense_mask(int kind);
/* The field bits of attack_table that the kind of attack a accepts (exp_config_attack.c). */
unsigned exp_config_attack_mask(const exp_attack *a);

/* Parses the experiment file at path into cfg (defaults first, then the file), then validates every
 * module config. Errors: "<path>:<line>:<col>: <dotted.key>: <problem>" in err->msg. */
int exp_config_load(const char *path, exp_config *cfg, nn_err *err);

/* Same, from a string in memory; `path` is only used in messages and for the default name. */
int exp_config_parse(const char *text, size_t len, const char *path, exp_config *cfg, nn_err *err);

#endif
