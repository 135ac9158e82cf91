/* nn_dropout.c - inverted dropout, as torch.nn.Dropout.
 *
 * Training: each element is kept with probability 1 - rate and scaled by 1/(1 - rate); the per-element
 * factor (0 or 1/(1 - rate)) is stored in aux as the mask. Evaluation: y = x and the mask is set to 1,
 * so a backward after an eval forward (the attacks' input gradient) is the identity.
 * Randomness: one u64 drawn from the caller's rng per training forward seeds an independent stream per
 * sample (nn_rng_seed_stream(base, sample)), each consumed in element order: the mask depends only on
 * the rng state and the sample index, never on the thread count. */
#include <math.h>
#include <string.h>

#include "nn_layer.h"

#define PAR_MIN 32768 /* elements below which the loops run on one thread */

static int dropout_setup(nn_layer *l, nn_err *err) {
    float r = l->cfg.rate;
    if (!(r >= 0.0f && r < 1.0f)) return NN_FAIL(err, NN_E_INVAL, "rate %g is not in [0, 1)", (double)r);
    l->out = l->in;
    l->n_params = 0;
    l->n_aux = nn_shape_size(l->in);
    l->n_scratch = 0;
    return NN_OK;
}

/* train: mask[N, D] = (u >= rate) / (1 - rate), y = x * mask;  eval: y = x, mask = 1. */
static void dropout_forward(nn_layer *l, const float *x, float *y, size_t n, int train, nn_rng *rng) {
    size_t d = nn_shape_size(l->in), total = n * d;
    float *mask = l->aux;
    if (!train || !rng) {
        memcpy(y, x, total * sizeof(float));
        for (size_t i = 0; i < total; i++)
            mask[i] = 1.0f;
        return;
    }
    float rate = l->cfg.rate, scale = 1.0f / (1.0f - rate);
    uint64_t base = nn_rng_u64(rng);
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        nn_rng r;
        nn_rng_seed_stream(&r, base, (uint64_t)i);
        for (size_t j = 0; j < d; j++) {
            float m = nn_rng_uniform(&r) >= rate ? scale : 0.0f;
            mask[i * d + j] = m;
            y[i * d + j] = x[i * d + j] * m;
        }
    }
}

/* dx[N, D] = dy * mask. */
static void dropout_backward(nn_layer *l, const float *x, const float *y, const float *dy, float *dx,
                             float *dw, size_t n) {
    (void)x;
    (void)y;
    (void)dw;
    if (!dx) return;
    size_t total = n * nn_shape_size(l->in);
    const float *mask = l->aux;
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (size_t i = 0; i < total; i++)
        dx[i] = dy[i] * mask[i];
}

const nn_layer_ops nn_dropout_ops = {
    .kind = "dropout",
    .fields = NN_F_RATE,
    .setup = dropout_setup,
    .init = NULL,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .params = NULL,
};
