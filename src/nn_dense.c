/* nn_dense.c - fully connected layer, PyTorch Linear layout.
 *
 * Parameters: "weight" W[out, in] row-major at offset 0, then "bias" b[out].
 * All matrix work is one whole-batch sgemm (nn_sgemm: thread-count independent). The bias gradient is a
 * column sum of dy taken row by row in sample order on one thread, also independent of the thread count. */
#include <limits.h>
#include <stdint.h>

#include "nn_layer.h"

static int dense_setup(nn_layer *l, nn_err *err) {
    if (l->in.h * l->in.w != 1)
        return NN_FAIL(err, NN_E_SHAPE,
                       "input is %zux%zux%zu: dense after a spatial layer needs flatten first", l->in.c,
                       l->in.h, l->in.w);
    if (l->cfg.units == 0) return NN_FAIL(err, NN_E_INVAL, "units must be >= 1");
    if (l->cfg.init != NN_INIT_DEFAULT && l->cfg.init != NN_INIT_HE && l->cfg.init != NN_INIT_GLOROT)
        return NN_FAIL(err, NN_E_INVAL, "unknown init %d", l->cfg.init);
    size_t in = l->in.c, out = l->cfg.units;
    if (in > INT_MAX || out > INT_MAX || in > (SIZE_MAX / sizeof(float)) / out - 1)
        return NN_FAIL(err, NN_E_INVAL, "%zu x %zu weights are too many", out, in);
    l->out = (nn_shape){out, 1, 1};
    l->n_params = out * in + out;
    l->n_aux = 0;
    l->n_scratch = 0;
    return NN_OK;
}

/* W[out, in] ~ he/glorot with fan_in = in, fan_out = out; b[out] = 0. */
static void dense_init(nn_layer *l, nn_rng *rng) {
    size_t in = l->in.c, out = l->out.c;
    nn_init_weights(l->w, out * in, in, out, l->cfg.init, rng);
    for (size_t j = 0; j < out; j++)
        l->w[out * in + j] = 0.0f;
}

/* y[N, out] = x[N, in] W^T + b. */
static void dense_forward(nn_layer *l, const float *x, float *y, size_t n, int train, nn_rng *rng) {
    (void)train;
    (void)rng;
    size_t in = l->in.c, out = l->out.c;
    const float *w = l->w, *b = l->w + out * in;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < out; j++)
            y[i * out + j] = b[j];
    nn_sgemm(0, 1, n, out, in, 1.0f, x, in, w, in, 1.0f, y, out);
}

/* dx[N, in] = dy[N, out] W;  dW[out, in] += dy^T x;  db[out] += sum_i dy[i, :]. */
static void dense_backward(nn_layer *l, const float *x, const float *y, const float *dy, float *dx, float *dw,
                           size_t n) {
    (void)y;
    size_t in = l->in.c, out = l->out.c;
    if (dx) nn_sgemm(0, 0, n, in, out, 1.0f, dy, out, l->w, in, 0.0f, dx, in);
    if (dw) {
        nn_sgemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
        float *db = dw + out * in;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < out; j++)
                db[j] += dy[i * out + j];
    }
}

static int dense_params(const nn_layer *l, nn_param_desc out[2]) {
    size_t in = l->in.c, o = l->out.c;
    out[0] = (nn_param_desc){"weight", 2, {o, in, 0, 0}, 0};
    out[1] = (nn_param_desc){"bias", 1, {o, 0, 0, 0}, o * in};
    return 2;
}

const nn_layer_ops nn_dense_ops = {
    .kind = "dense",
    .fields = NN_F_UNITS | NN_F_INIT,
    .setup = dense_setup,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .params = dense_params,
};
