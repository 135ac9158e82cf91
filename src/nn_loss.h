/* nn_loss.h - losses fused on logits, numerically stable (max-subtracted log-softmax), double sums.
 * All losses are means over the batch; gradients are w.r.t. the logits, overwritten, and already
 * include the 1/n of the mean. dz may be NULL. z[n, k] row-major. Deterministic: per-row values are
 * summed in a fixed order whatever the thread count. */
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include <stddef.h>

/* p[n, k] = softmax(z / T). */
void nn_softmax(const float *z, size_t n, size_t k, float T, float *p);

/* Cross-entropy at temperature T with hard labels y[n] in [0, k):
 * L = mean_i -log softmax(z_i / T)[y_i];  dL/dz_ij = (softmax(z_i/T)_j - [j == y_i]) / (T n). */
double nn_loss_ce(const float *z, const int *y, size_t n, size_t k, float T, float *dz);

/* Soft-target cross-entropy between target distributions p[n, k] (already at T) and softmax(z / T):
 * L = s * mean_i -sum_j p_ij log softmax(z_i/T)_j, s = T*T if t2 else 1;
 * dL/dz_ij = s * (softmax(z_i/T)_j - p_ij) / (T n). Rows of p should sum to 1. */
double nn_loss_soft_ce(const float *z, const float *p, size_t n, size_t k, float T, int t2, float *dz);

/* KL(p || softmax(z/T)) = soft_ce - H(p), same scaling and gradient as nn_loss_soft_ce
 * (0 log 0 = 0). */
double nn_loss_kl(const float *z, const float *p, size_t n, size_t k, float T, int t2, float *dz);

/* Index of the largest value of each row of z[n, k] into pred[n] (first one on ties). */
void nn_argmax(const float *z, size_t n, size_t k, int *pred);

#endif
