/* def_distill.h - knowledge distillation (Hinton et al. 2015) and defensive distillation (Papernot et al.
 * 2016) as a loss for nn_train, soft labels from a frozen teacher or an ensemble, and the post-hoc bias
 * adjustment of Hinton's omitted-class experiment.
 *
 * Loss on a student batch with logits z (K classes), hard labels y and teacher soft labels
 * p = mean over the teachers of softmax(z_teacher / T):
 *     L = alpha * s * CE(p, softmax(z / T)) + (1 - alpha) * CE(onehot(y), softmax(z)),   s = T^2 if t2 else 1.
 * Defensive distillation is alpha = 1, t2 = 0, trained at T (nn_train_cfg.temperature = T, recorded in the
 * model) and deployed at T = 1: the saved student outputs its raw logits.
 *
 * Teachers are borrowed and run forward only (eval mode): no defense ever writes to a teacher. */
#ifndef DEF_DISTILL_H
#define DEF_DISTILL_H

#include <stddef.h>

#include "nn_data.h"
#include "nn_err.h"
#include "nn_net.h"

typedef struct def_kd_cfg {
    float temperature; /* T of the soft labels and of the student's soft term (> 0); Hinton 20 */
    float alpha;       /* weight of the soft term in [0, 1]; 1 = soft labels only (defensive distillation) */
    int t2;            /* multiply the soft term by T^2 (Hinton: keeps its gradients comparable across T) */
} def_kd_cfg;

/* T = 20, alpha = 1, t2 = 1. */
def_kd_cfg def_kd_cfg_default(void);
/* T > 0 and finite, alpha in [0, 1]; messages name the field. */
int def_kd_cfg_validate(const def_kd_cfg *cfg, nn_err *err);

/* p[n, K] = mean over teachers[0..n_teachers) of softmax(teacher(x) / T) for x[n, D], in batches of each
 * teacher's max_batch (reserved). The teachers must share input size and K. Averages in double in teacher
 * order (thread-count independent). Errors: no teacher, shape mismatch, network errors. */
int def_soft_labels(nn_net *const *teachers, size_t n_teachers, const float *x, size_t n, float T, float *p,
                    nn_err *err);

/* The state of the KD loss; pass def_kd_loss as nn_train_cfg.loss and the def_kd as loss_ctx. */
typedef struct def_kd {
    def_kd_cfg cfg;
    const float *soft;        /* [n_train, K] soft labels indexed by the sample index, or NULL: on the fly */
    nn_net *const *teachers;  /* on the fly (augmented inputs): the teachers run on each batch */
    size_t n_teachers;
    size_t k, max_batch;
    float *p, *g;             /* scratch [max_batch, K] */
    double *acc;              /* scratch [max_batch, K]: the ensemble average */
    int failed;               /* an error in an on-the-fly teacher pass (the loss then returns NaN) */
    nn_err err;               /* its message */
} def_kd;

/* Sets up kd for students with k classes and batches up to max_batch. soft (borrowed) holds precomputed
 * soft labels (def_soft_labels over the training set); when NULL the teachers (borrowed, reserved for
 * max_batch) label every batch as it comes, which augmentation (jitter) needs. */
int def_kd_init(def_kd *kd, const def_kd_cfg *cfg, const float *soft, nn_net *const *teachers, size_t n_teachers,
                size_t k, size_t max_batch, nn_err *err);
void def_kd_free(def_kd *kd);

/* nn_loss_fn: the KD loss above (mean over the batch) and its gradient dL/dz into dlogits. */
double def_kd_loss(void *ctx, const float *x, const int *y, const size_t *idx, const float *logits, size_t n,
                   size_t k, float *dlogits);

/* Adds delta to the output bias of class c (the bias of the last dense layer, which must be the net's last
 * layer). Errors: no such layer, c out of range, non-finite delta. */
int def_bias_adjust(nn_net *net, int c, float delta, nn_err *err);

#endif
