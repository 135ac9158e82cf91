/* nn_net.h - a network: a sequence of layers owning one memory block.
 *
 * Life cycle: nn_net_create (shapes checked, parameters and gradients allocated as two flat vectors
 * of identical layout) -> nn_net_init (seeded) -> nn_net_reserve(max_batch) (activations, aux, scratch,
 * gradient ping-pong buffers: one allocation) -> forward/backward any number of times with n <= max_batch,
 * never allocating -> nn_net_destroy.
 * Networks output logits. A net is not thread-safe: one caller at a time; parallelism is inside
 * (OpenMP + BLAS), and results do not depend on the thread count. */
#ifndef NN_NET_H
#define NN_NET_H

#include <stddef.h>

#include "nn_err.h"
#include "nn_layer.h"
#include "nn_rng.h"

/* Largest input dimension (C, H or W) a net accepts; C*H*W is limited to 2^31. */
#define NN_MAX_DIM (1 << 20)

typedef struct nn_net {
    size_t n_layers;
    nn_layer *layers;
    nn_shape in_shape;
    size_t n_in;      /* C*H*W of the input */
    size_t n_classes; /* size of the output (logits) */
    size_t n_params;
    float *params; /* n_params */
    float *grads;  /* n_params, same layout */
    size_t max_batch;
    float **act;       /* act[i] = output of layer i (n_layers entries), inside block */
    const float *x_in; /* the input of the last forward (caller's memory) */
    size_t n_last;     /* batch size of the last forward */
    float *block;      /* activations + aux + scratch + two gradient buffers */
    float *gbuf[2];    /* backward ping-pong, each max activation * max_batch */
    float temperature; /* the training temperature, recorded in model files (1 if none) */
} nn_net;

/* Creates a net for inputs of shape `in` from n layer configs. Validates every layer (clear error
 * naming the layer index and kind), allocates parameters and gradients (zeroed). */
int nn_net_create(nn_net **out, nn_shape in, const nn_layer_cfg *cfgs, size_t n, nn_err *err);
/* NULL is a no-op. */
void nn_net_destroy(nn_net *net);
/* Initialises every parameter (He/Glorot weights, zero biases) from rng. */
void nn_net_init(nn_net *net, nn_rng *rng);
/* (Re)allocates the work block for batches up to max_batch (no-op if already big enough). */
int nn_net_reserve(nn_net *net, size_t max_batch, nn_err *err);

/* Forward x[n, n_in] -> logits[n, n_classes] (returned pointer is valid until the next forward).
 * x must stay valid and unchanged until the matching backward. train: dropout on (uses rng).
 * Errors: n == 0 or n > max_batch. */
int nn_net_forward(nn_net *net, const float *x, size_t n, int train, nn_rng *rng, const float **logits,
                   nn_err *err);
/* Backward from dlogits[n, n_classes] of the last forward. param_grads != 0 accumulates into
 * net->grads; dx (NULL to skip) receives dL/dx[n, n_in], overwritten. */
int nn_net_backward(nn_net *net, const float *dlogits, float *dx, int param_grads, nn_err *err);
/* The same, with a loss term on an intermediate activation: dact[n, size of act[at]] is added to the
 * gradient reaching the output of layer `at` (at < n_layers - 1; e.g. the penultimate features of a
 * feature-matching loss). Errors: at out of range, dact NULL. */
int nn_net_backward_at(nn_net *net, const float *dlogits, size_t at, const float *dact, float *dx, int param_grads,
                       nn_err *err);
/* Sets net->grads to zero. */
void nn_net_zero_grad(nn_net *net);

/* The attacks' single entry point. fn receives the logits of x (eval mode, no dropout) and writes
 * dlogits[n, k] (it may also record losses/predictions through ctx; return non-zero to abort with
 * that code). Then dx[n, n_in] = dL/dx. Parameter gradients are never touched. */
typedef int (*nn_dlogits_fn)(void *ctx, const float *logits, size_t n, size_t k, float *dlogits);
int nn_net_input_grad(nn_net *net, const float *x, size_t n, nn_dlogits_fn fn, void *ctx, float *dx,
                      nn_err *err);

/* Logits for x[n] in eval mode in batches of at most max_batch, written to out[n, n_classes]. */
int nn_net_predict(nn_net *net, const float *x, size_t n, float *out, nn_err *err);

/* Human-readable one-line-per-layer summary into buf (e.g. "0 conv2d 1x28x28 -> 32x26x26 320 params"). */
void nn_net_summary(const nn_net *net, char *buf, size_t cap);

#endif
