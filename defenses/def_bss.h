/* def_bss.h - knowledge distillation with boundary-supporting samples (Heo et al., AAAI 2019), as the
 * official code trains (bhheo/BSS_distillation train_BSS_distillation.py; ../shared/PAPERS.md sec. 4).
 *
 * Per batch of n clean samples with teacher soft labels p_t = softmax(z_t / T) and m BSS x^ (atk_bss.h) with
 * p^_t = softmax(z_t(x^) / T), at 1-based epoch e of E:
 *     L = CE(z_s, y) + ratio(e) * CE_T(p_t, z_s) + attack_ratio(e) * CE_T(p^_t, z_s(x^))
 * where CE_T(p, z) = mean over its rows of -sum_j p_j log softmax(z / T)_j (no T^2, as the official code) and
 *     ratio(e)        = max(ratio_hi * (1 - e / E), 0) + 1                      (3.96 at e = 1 of 80, then 1)
 *     attack_ratio(e) = max(attack_hi * (1 - attack_speed * e / E), 0)          (1.97 at e = 1, 0 from e = 60)
 * BSS are generated on the fly from each batch (base samples: correct for teacher and student, the max_base
 * with the largest disagreement) or drawn in order from a saved pool (`temper bss` output). When
 * attack_ratio(e) = 0 no BSS is made. The teacher runs forward only: its parameters never change. */
#ifndef DEF_BSS_H
#define DEF_BSS_H

#include <stddef.h>

#include "atk_bss.h"
#include "nn_err.h"
#include "nn_net.h"
#include "nn_rng.h"

typedef struct def_bss_cfg {
    float temperature;  /* T of both KD terms (3) */
    float ratio_hi;     /* ratio(e) = max(ratio_hi (1 - e/E), 0) + 1 (3) */
    float attack_hi;    /* attack_ratio(e) = max(attack_hi (1 - attack_speed e/E), 0) (2) */
    float attack_speed; /* (4/3: BSS only in the first 75% of the epochs) */
    size_t epochs;      /* E: the student's epochs (80) */
    atk_bss_cfg bss;    /* generation: eta 0.3, 10 steps, 64 base samples, sampled targets */
} def_bss_cfg;

/* T 3, ratio_hi 3, attack_hi 2, attack_speed 4/3, 80 epochs, atk_bss_cfg_default(). */
def_bss_cfg def_bss_cfg_default(void);
/* T > 0, weights >= 0 and finite, epochs >= 1, and the BSS settings; messages name the field. */
int def_bss_cfg_validate(const def_bss_cfg *cfg, nn_err *err);

/* ratio(e) and attack_ratio(e) at 1-based epoch e. */
double def_bss_ratio(const def_bss_cfg *cfg, size_t e);
double def_bss_attack_ratio(const def_bss_cfg *cfg, size_t e);

/* The loss above on student logits z[n, K] (labels y, soft labels p[n, K]) and zb[m, K] (BSS, soft labels
 * pb[m, K]; m may be 0) with weights r = ratio(e), a = attack_ratio(e). Writes dz[n, K] and dzb[m, K] (dL/dz
 * of the total) and returns L. */
double def_bss_loss(const float *z, const int *y, const float *p, size_t n, const float *zb, const float *pb,
                    size_t m, size_t k, float T, double r, double a, float *dz, float *dzb);

/* Training state; pass def_bss_step as nn_train_cfg.step and the def_bss as step_ctx. */
typedef struct def_bss {
    def_bss_cfg cfg;
    nn_net *teacher;          /* borrowed, reserved for max_batch */
    const float *pool_x;      /* saved BSS [pool_n, D] or NULL: generated on the fly */
    const float *pool_logits; /* the teacher's logits on them [pool_n, K] */
    size_t pool_n, pool_next;
    size_t max_batch, max_bss, k, d;
    float *xs;                /* [max_batch + max_bss, D]: the batch, then its BSS */
    float *zt;                /* [max_batch + max_bss, K] teacher logits, then soft labels */
    float *dz;                /* [max_batch + max_bss, K] */
    size_t *sel;              /* [max_batch] base samples */
    atk_bss_result *res;      /* [max_bss] */
    size_t drawn;             /* base samples used so far (the generator's random-stream index) */
    size_t n_bss, n_crossed;  /* statistics over the whole training */
    double l2_sum;
    int failed;               /* an error inside a step (the step then returns NaN) */
    nn_err err;
} def_bss;

/* Sets up bss for students with the teacher's input size and classes and batches up to max_batch; reserves
 * the student for max_batch + the most BSS a batch can add. pool_x/pool_logits (borrowed; both NULL or both
 * set, pool_n > 0) make the steps draw BSS from a saved pool instead of generating them. */
int def_bss_init(def_bss *bss, const def_bss_cfg *cfg, nn_net *teacher, nn_net *student, size_t max_batch,
                 const float *pool_x, const float *pool_logits, size_t pool_n, nn_err *err);
void def_bss_free(def_bss *bss);

/* nn_step_fn: teacher soft labels of the batch, BSS (generated or from the pool, when attack_ratio > 0), one
 * student forward (train mode) of batch + BSS, def_bss_loss, backward. */
double def_bss_step(void *ctx, nn_net *net, const float *x, const int *y, const size_t *idx, size_t n, size_t epoch,
                    nn_rng *rng, int *pred);

#endif
