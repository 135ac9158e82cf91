/* exp_attack_int.h - helpers of exp_attack.c shared with the batch evaluation (exp_evaluate.c); internal to
 * the runner. */
#ifndef EXP_ATTACK_INT_H
#define EXP_ATTACK_INT_H

#include <stddef.h>

#include "exp_attack.h"
#include "atk_diag.h"
#include "exp_json.h"

/* The inputs of one attack: samples (expanded with targets when targeted). Owned arrays. */
typedef struct exp_atk_set {
    size_t n;
    float *x;   /* [n, D] */
    int *y, *t; /* labels, targets (-1 when untargeted) */
    size_t *id; /* test-set index of each entry */
} exp_atk_set;

/* Builds the attack's input set from the first min(a->samples, test->n) test images: one entry per image,
 * or k - 1 per image (every other class, in class order) for a targeted attack with targets "all"; next /
 * random targets from a->cfg.seed. Errors: NN_E_NOMEM (s then holds what was allocated: free it). */
int exp_attack_set_build(const exp_attack *a, const nn_dataset *test, exp_atk_set *s, nn_err *err);
/* Frees s's arrays and zeroes it. */
void exp_attack_set_free(exp_atk_set *s);

/* v as the shortest decimal that reads back as the same float (0.3f -> 0.3, not 0.300000012). */
double exp_float_decimal(float v);

/* The attack's parameters as JSON members of the object being written (attacks.json's members). */
void exp_attack_json_params(exp_json *j, const exp_attack *a);
/* One summary's figures as JSON members: eps (the float's shortest decimal, or null: unbounded), counts,
 * rates, mean/median distortions, rho_adv (JSMA), best/worst case (targeted "all"), mean_iters. */
void exp_attack_json_summary(exp_json *j, const atk_summary *s, const exp_attack *a);
/* "diagnostics": {the masking diagnostics} as a member of the object being written. */
void exp_attack_json_diag(exp_json *j, const atk_diag *d);

#endif
