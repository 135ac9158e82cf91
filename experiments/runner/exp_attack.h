/* exp_attack.h - a battery of attacks on one model: the `attacks:` list of experiment files and
 * `temper attack`. Runs every attack (each bounded one once per eps), measures the gradient-masking
 * diagnostics, and writes a results folder:
 *   attacks.json        every figure with its parameters, the diagnostics and the warnings (written last)
 *   summary.csv         one row per (attack, eps)
 *   <run>/samples.csv   per sample: test index, label, target, clean and adversarial prediction, success,
 *                       L0/L2/Linf distortion, gradient evaluations
 *   <run>/adv.npy       adversarial examples, float32 [n, C, H, W]; labels.npy, targets.npy (int32, -1 = none)
 *   <run>/grid.png      originals | adversarials | perturbations of the first rows
 * where <run> is the attack's name, with "-eps<eps>" for bounded attacks. Every file is written atomically. */
#ifndef EXP_ATTACK_H
#define EXP_ATTACK_H

#include <stddef.h>
#include <stdio.h>

#include "atk.h"
#include "nn_data.h"
#include "nn_err.h"
#include "nn_net.h"

#define EXP_MAX_ATTACKS 32
#define EXP_MAX_EPS 16

/* Which targets a targeted attack gets: every other class (Papernot's and Carlini's protocol: 9 runs per
 * sample), the next class (y+1 mod K), or one drawn at random (seeded). */
enum { EXP_TARGETS_ALL, EXP_TARGETS_NEXT, EXP_TARGETS_RANDOM };

typedef struct exp_attack {
    char name[48];    /* label in reports; default atk_name(&cfg) */
    atk_cfg cfg;      /* lo/hi come from the data */
    float eps[EXP_MAX_EPS]; /* bounded attacks: one run per value; C&W/DeepFool/JSMA: summaries at each bound */
    size_t n_eps;
    size_t samples;   /* the first `samples` test images (default 1000) */
    int targets;      /* EXP_TARGETS_*, when cfg.targeted */
    size_t grid;      /* rows of grid.png (default 16; 0: no grid) */
} exp_attack;

/* Defaults for kind (see the field comments); name empty. */
exp_attack exp_attack_default(atk_kind kind, atk_norm norm);
/* Whether the attack is bounded by eps (FGSM/FGM, BIM, PGD) rather than minimising a distortion. */
int exp_attack_bounded(const exp_attack *a);

/* Batch size of the attacks: the net is reserved for at least this many samples. Results do not depend on it. */
#define EXP_ATTACK_BATCH 128

/* Runs attacks a[n] on net against test (its first a[i].samples images) and writes the results folder dir
 * (created). Prints a table, the diagnostics and any masking warning to out; progress to progress (NULL or
 * quiet: none). Errors: attack, data or file errors (with the path). */
int exp_attacks_run(nn_net *net, const nn_dataset *test, const exp_attack *a, size_t n, const char *dir, int quiet,
                    FILE *out, FILE *progress, nn_err *err);

#endif
