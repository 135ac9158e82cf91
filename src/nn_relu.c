/* nn_relu.c - rectified linear unit, elementwise, any shape (out shape = in shape). */
#include "nn_layer.h"

#define PAR_MIN 32768 /* elements below which the loops run on one thread */

static int relu_setup(nn_layer *l, nn_err *err) {
    (void)err;
    l->out = l->in;
    l->n_params = 0;
    l->n_aux = 0;
    l->n_scratch = 0;
    return NN_OK;
}

/* y[N, D] = max(0, x[N, D]) (NaN maps to 0). */
static void relu_forward(nn_layer *l, const float *x, float *y, size_t n, int train, nn_rng *rng) {
    (void)train;
    (void)rng;
    size_t total = n * nn_shape_size(l->in);
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (size_t i = 0; i < total; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dx[N, D] = dy * (y > 0). */
static void relu_backward(nn_layer *l, const float *x, const float *y, const float *dy, float *dx, float *dw,
                          size_t n) {
    (void)x;
    (void)dw;
    if (!dx) return;
    size_t total = n * nn_shape_size(l->in);
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (size_t i = 0; i < total; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

const nn_layer_ops nn_relu_ops = {
    .kind = "relu",
    .fields = 0,
    .setup = relu_setup,
    .init = NULL,
    .forward = relu_forward,
    .backward = relu_backward,
    .params = NULL,
};
