/* nn_loss.c - softmax, cross-entropy (hard and soft targets), KL, argmax; all fused on logits.
 *
 * Every row goes through one max-subtracted log-softmax in double: a_j = z_j / T, m = max_j a_j,
 * lse = m + log(sum_j exp(a_j - m)), log q_j = a_j - lse. Nothing overflows for any finite logits
 * (1e4 at T=1 gives exp(0) for the maximum and exp(-huge) = 0 elsewhere).
 *
 * Determinism: rows are processed in blocks of ROW_BLOCK; inside a block an OpenMP loop writes one
 * loss value per row into a stack array, which is then summed in row order. The total is therefore
 * exactly the sequential sum over rows, whatever the thread count, and nothing is allocated.
 * dz may alias z: each row's statistics are computed before its dz is written element by element. */
#include "nn_loss.h"

#include <math.h>

#define ROW_BLOCK 1024
#define PAR_MIN_WORK 32768 /* n * k below which the OpenMP loop runs on one thread */

/* log-sum-exp of a[k] = z[k] / T, max-subtracted. */
static double row_lse(const float *z, size_t k, double invT) {
    double m = -INFINITY;
    for (size_t j = 0; j < k; j++) {
        double a = (double)z[j] * invT;
        if (a > m) m = a;
    }
    double s = 0.0;
    for (size_t j = 0; j < k; j++)
        s += exp((double)z[j] * invT - m);
    return m + log(s);
}

/* The three losses share one row kernel; kind selects the target and the per-row value. */
enum { LOSS_CE = 0, LOSS_SOFT_CE, LOSS_KL };

typedef struct loss_args {
    const float *z;
    const int *y;   /* LOSS_CE */
    const float *p; /* LOSS_SOFT_CE, LOSS_KL */
    size_t n, k;
    double invT;
    double gscale; /* s / (T n): multiplies (q - target) in the gradient */
    float *dz;
    int kind;
} loss_args;

/* Loss of row i (unscaled, not divided by n); writes dz row i when requested.
 * z[k], dz[k]: CE: -log q_y; soft CE: -sum p_j log q_j; KL: sum p_j (log p_j - log q_j). */
static double loss_row(const loss_args *a, size_t i) {
    const float *z = a->z + i * a->k;
    double lse = row_lse(z, a->k, a->invT);
    double v = 0.0;
    const float *p = a->p ? a->p + i * a->k : NULL;
    if (a->kind == LOSS_CE) {
        v = lse - (double)z[a->y[i]] * a->invT;
    } else {
        for (size_t j = 0; j < a->k; j++) {
            double pj = (double)p[j];
            if (pj == 0.0) continue; /* 0 log 0 = 0, and 0 * (-log q) = 0 even if q underflows */
            double logq = (double)z[j] * a->invT - lse;
            v -= pj * logq;
            if (a->kind == LOSS_KL) v += pj * log(pj);
        }
    }
    if (a->dz) {
        float *dz = a->dz + i * a->k;
        int yi = a->kind == LOSS_CE ? a->y[i] : -1;
        for (size_t j = 0; j < a->k; j++) {
            double q = exp((double)z[j] * a->invT - lse);
            double t = a->kind == LOSS_CE ? ((int)j == yi ? 1.0 : 0.0) : (double)p[j];
            dz[j] = (float)((q - t) * a->gscale);
        }
    }
    return v;
}

/* Mean over rows of loss_row, summed in row order (see the file comment). */
static double loss_run(const loss_args *a) {
    double rows[ROW_BLOCK];
    double total = 0.0;
    for (size_t b0 = 0; b0 < a->n; b0 += ROW_BLOCK) {
        size_t nb = a->n - b0 < ROW_BLOCK ? a->n - b0 : ROW_BLOCK;
        int par = nb * a->k >= PAR_MIN_WORK;
#pragma omp parallel for schedule(static) if (par)
        for (size_t r = 0; r < nb; r++)
            rows[r] = loss_row(a, b0 + r);
        for (size_t r = 0; r < nb; r++)
            total += rows[r];
    }
    return a->n ? total / (double)a->n : 0.0;
}

void nn_softmax(const float *z, size_t n, size_t k, float T, float *p) {
    double invT = 1.0 / (double)T;
    int par = n * k >= PAR_MIN_WORK;
#pragma omp parallel for schedule(static) if (par)
    for (size_t i = 0; i < n; i++) {
        const float *zi = z + i * k;
        float *pi = p + i * k;
        double lse = row_lse(zi, k, invT);
        for (size_t j = 0; j < k; j++)
            pi[j] = (float)exp((double)zi[j] * invT - lse);
    }
}

double nn_loss_ce(const float *z, const int *y, size_t n, size_t k, float T, float *dz) {
    loss_args a = {
        .z = z, .y = y, .p = NULL, .n = n, .k = k, .invT = 1.0 / (double)T, .dz = dz, .kind = LOSS_CE};
    a.gscale = n ? 1.0 / ((double)T * (double)n) : 0.0;
    return loss_run(&a);
}

/* Shared by soft CE and KL: scale s = T^2 (t2) or 1 on both the loss and the gradient. */
static double soft_loss(const float *z, const float *p, size_t n, size_t k, float T, int t2, float *dz,
                        int kind) {
    double s = t2 ? (double)T * (double)T : 1.0;
    loss_args a = {
        .z = z, .y = NULL, .p = p, .n = n, .k = k, .invT = 1.0 / (double)T, .dz = dz, .kind = kind};
    a.gscale = n ? s / ((double)T * (double)n) : 0.0;
    return s * loss_run(&a);
}

double nn_loss_soft_ce(const float *z, const float *p, size_t n, size_t k, float T, int t2, float *dz) {
    return soft_loss(z, p, n, k, T, t2, dz, LOSS_SOFT_CE);
}

double nn_loss_kl(const float *z, const float *p, size_t n, size_t k, float T, int t2, float *dz) {
    return soft_loss(z, p, n, k, T, t2, dz, LOSS_KL);
}

void nn_argmax(const float *z, size_t n, size_t k, int *pred) {
    for (size_t i = 0; i < n; i++) {
        const float *zi = z + i * k;
        size_t best = 0;
        for (size_t j = 1; j < k; j++)
            if (zi[j] > zi[best]) best = j;
        pred[i] = (int)best;
    }
}
