/* atk_diag.h - gradient-masking diagnostics, printed next to every robustness figure.
 *
 * Defensive distillation fooled its first evaluation (Carlini & Wagner 2016): a net trained at T and
 * deployed at T=1 has logits ~T times larger, its float32 softmax saturates to exactly 0/1, softmax-based
 * gradients vanish, and FGSM/JSMA-F "fail" while the model is no more robust. These numbers and warnings
 * make that visible. */
#ifndef ATK_DIAG_H
#define ATK_DIAG_H

#include <stddef.h>

#include "atk.h"
#include "nn_err.h"
#include "nn_net.h"

typedef struct atk_diag {
    size_t n;
    double mean_abs_logit; /* mean over samples and classes of |z| */
    double std_abs_logit;
    double frac_zero_grad; /* samples whose input gradient of CE(softmax(z), y) at T=1 is exactly zero (float32) */
    double frac_saturated; /* samples whose float32 softmax at T=1 has its top probability exactly 1 */
    double mean_grad_l2;   /* mean L2 norm of that input gradient */
} atk_diag;

/* Diagnostics of net on x[n, D] with labels y[n], in batches of net->max_batch (net reserved).
 * Errors: a forward/backward error, out of memory. */
int atk_diag_compute(nn_net *net, const float *x, const int *y, size_t n, atk_diag *d, nn_err *err);

/* One robustness figure, as the warnings need it. */
typedef struct atk_row {
    const char *attack; /* atk_name() */
    atk_kind kind;
    atk_norm norm;
    double eps;         /* < 0 for an unbounded attack (C&W, DeepFool) */
    double success;     /* success rate in [0, 1] */
} atk_row;

/* Writes plain-words warnings (one per line, each starting "warning: ") about gradient masking into buf
 * (always NUL-terminated) and returns how many there are:
 * - zero input gradients on more than 1% of the samples, a saturated softmax on more than half;
 * - a single-step attack (FGSM/FGM) beating an iterative one (BIM/PGD) of the same norm at the same eps;
 * - success not growing with eps (falling as eps grows, or flat and below 50% over a wider grid);
 * - an unbounded attack (C&W, DeepFool) below 95% success.
 * d may be NULL (no diagnostics measured). */
size_t atk_diag_warnings(const atk_diag *d, const atk_row *rows, size_t n_rows, char *buf, size_t cap);

#endif
