/* nn_flatten.c - (C, H, W) -> (C*H*W, 1, 1). NCHW row-major already is the flattened order
 * (torch.flatten(x, 1)), so forward and backward are copies. */
#include <string.h>

#include "nn_layer.h"

static int flatten_setup(nn_layer *l, nn_err *err) {
    (void)err;
    l->out = (nn_shape){nn_shape_size(l->in), 1, 1};
    l->n_params = 0;
    l->n_aux = 0;
    l->n_scratch = 0;
    return NN_OK;
}

/* y[N, C*H*W] = x[N, C, H, W]. */
static void flatten_forward(nn_layer *l, const float *x, float *y, size_t n, int train, nn_rng *rng) {
    (void)train;
    (void)rng;
    memcpy(y, x, n * nn_shape_size(l->in) * sizeof(float));
}

/* dx[N, C, H, W] = dy[N, C*H*W] (identity). */
static void flatten_backward(nn_layer *l, const float *x, const float *y, const float *dy, float *dx,
                             float *dw, size_t n) {
    (void)x;
    (void)y;
    (void)dw;
    if (dx) memcpy(dx, dy, n * nn_shape_size(l->in) * sizeof(float));
}

const nn_layer_ops nn_flatten_ops = {
    .kind = "flatten",
    .fields = 0,
    .setup = flatten_setup,
    .init = NULL,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .params = NULL,
};
