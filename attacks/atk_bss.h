/* atk_bss.h - boundary-supporting samples (BSS; Heo et al., AAAI 2019), as the authors' official code makes
 * them (bhheo/BSS_distillation attacks/attack_BSS.py, train_BSS_distillation.py; ../shared/PAPERS.md sec. 4).
 *
 * From base samples x with base class b (the teacher's argmax) and target classes k, each step moves every
 * still-active sample on the TEACHER's logits z:
 *     g = d(z_k - z_b)/dx,   x <- clip(x + eta * (z_b - z_k + 1e-4) * g / |g|_2, lo, hi)
 * a DeepFool-like step towards the b/k boundary: it moves x by eta (z_b - z_k + 1e-4) in L2 (logit units,
 * as the official code; on a linear teacher it reaches the b/k hyperplane in one step only when
 * eta |w_k - w_b| = 1). A sample stops (its step becomes 0) once the teacher's argmax is no longer b, checked
 * on the logits of its current x before each step; all stop after `steps` steps. A sample whose g is 0 stops
 * without a step. The teacher is only read (forward and input gradient through nn_net_input_grad): its
 * parameters and gradients never change.
 *
 * Selection (atk_bss_select) picks the base samples of a training batch: those both teacher and student
 * (when given) classify correctly; with more than max_base of them, the max_base with the largest
 * disagreement sum_{j != y} (p_t,j - p_s,j)^2 at T = 1 (without a student: the first max_base).
 * Targets are drawn per sample from the teacher's softmax with the top class removed (ATK_BSS_SAMPLE), or
 * chosen by another policy. ATK_BSS_SAMPLE is the official inverse-CDF draw: the other classes sorted by
 * decreasing T = 1 probability (ties: lower index first), k = the first whose cumulative probability reaches
 * u * (their total), u uniform in [0, 1) (fallback: the second-best). Random draws come from a stream seeded
 * by (seed, the sample's index: nn_rng_seed_stream(seed, first + i)), so they depend neither on the batch
 * nor on the thread count. */
#ifndef ATK_BSS_H
#define ATK_BSS_H

#include <stddef.h>
#include <stdint.h>

#include "nn_err.h"
#include "nn_net.h"

typedef enum atk_bss_policy {
    ATK_BSS_SAMPLE,  /* k ~ p_t restricted to the classes other than the top one (official) */
    ATK_BSS_SECOND,  /* k = the teacher's second-best class */
    ATK_BSS_UNIFORM, /* k uniform among the classes other than the top one */
    ATK_BSS_ALL      /* one BSS per class other than the top one (K - 1 per base sample) */
} atk_bss_policy;

typedef struct atk_bss_cfg {
    float eta;             /* step size (0.3) */
    int steps;             /* at most this many steps (10) */
    size_t max_base;       /* base samples per batch (64) */
    atk_bss_policy policy; /* ATK_BSS_SAMPLE */
    float lo, hi;          /* the data range every sample is clipped to ([0, 1]) */
    uint64_t seed;         /* target draws */
} atk_bss_cfg;

/* eta 0.3, 10 steps, 64 base samples, ATK_BSS_SAMPLE, range [0, 1], seed 0. */
atk_bss_cfg atk_bss_cfg_default(void);
/* eta > 0 and finite, 1 <= steps <= 1000, max_base >= 1, a known policy, lo < hi (both finite); messages
 * name the field (NN_E_INVAL). */
int atk_bss_cfg_validate(const atk_bss_cfg *cfg, nn_err *err);

/* Base samples of a batch x[n, D] with labels y[n] (zt: the teacher's logits on x[n, K] when the caller has
 * them, else NULL and the teacher runs): writes up to cfg->max_base indices into sel (sorted by
 * decreasing disagreement; ties by index) and returns their count in *n_sel. student may be NULL (then the
 * first max_base correct ones in index order). Both nets run forward only in eval mode, in batches of their
 * max_batch (reserved). Errors: bad cfg, labels out of range, the student's shape differs from the teacher's,
 * non-finite logits (NN_E_NUMERIC). */
int atk_bss_select(nn_net *teacher, nn_net *student, const atk_bss_cfg *cfg, const float *x, const int *y,
                   size_t n, const float *zt, size_t *sel, size_t *n_sel, nn_err *err);

/* One generated sample. */
typedef struct atk_bss_result {
    size_t sample;    /* index of its base sample in the call (0..n-1) */
    int base, target; /* b (the teacher's argmax on the base sample) and k */
    int steps;        /* steps taken (0..cfg->steps) */
    int crossed;      /* the teacher's argmax left b */
    int pred;         /* the teacher's argmax on the result */
    float l2;         /* |x_bss - x|_2 */
} atk_bss_result;

/* Number of BSS atk_bss_generate makes from n base samples: n, or n * (K - 1) for ATK_BSS_ALL. */
size_t atk_bss_count(const atk_bss_cfg *cfg, size_t n, size_t k);

/* Generates BSS from x[n, D] on the teacher: targets by cfg->policy (or given: targets[n] not NULL, each
 * != the teacher's top class; then one BSS per sample whatever the policy), out[m, D] and res[m] with
 * m = atk_bss_count(cfg, n, K), or m = n when targets are given (res may be NULL); logits (may be NULL)
 * receives the teacher's logits on out[m, K]. ATK_BSS_ALL rows are sample-major, targets in increasing
 * class order. `first` is the index of x[0] in the caller's numbering, for the random streams. Batched in
 * the teacher's max_batch, never one sample at a time; buffers allocated once per call, none per step.
 * Errors: shape (K < 2), unreserved net, bad cfg, a given target equal to the top class (NN_E_INVAL) or out
 * of range, non-finite logits or gradients (NN_E_NUMERIC). Not thread-safe (uses the teacher). */
int atk_bss_generate(nn_net *teacher, const atk_bss_cfg *cfg, const float *x, size_t n, size_t first,
                     const int *targets, float *out, atk_bss_result *res, float *logits, nn_err *err);

#endif
