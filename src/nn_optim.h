/* nn_optim.h - optimizers over the flat parameter vector, and the learning-rate schedule. */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include <stddef.h>

#include "nn_err.h"

enum { NN_OPT_SGD = 0, NN_OPT_ADAM };

#define NN_MAX_MILESTONES 8

typedef struct nn_optim_cfg {
    int kind;           /* NN_OPT_SGD | NN_OPT_ADAM */
    float lr;           /* base learning rate */
    float momentum;     /* SGD: [0, 1) */
    int nesterov;       /* SGD: Nesterov momentum (PyTorch's formulation) */
    float weight_decay; /* L2 coefficient added to the gradient (PyTorch's SGD/Adam weight_decay) */
    float beta1, beta2, eps; /* Adam */
    /* Step schedule: lr is multiplied by gamma at each epoch in milestones (0-based epoch index at
     * which the new rate starts), e.g. {40, 60} with gamma 0.1 -> 0.1, 0.01, 0.001. */
    size_t milestones[NN_MAX_MILESTONES];
    size_t n_milestones;
    float gamma;
    /* Keras-style per-step decay (Carlini's code uses 1e-6): lr_t = lr_epoch / (1 + decay * t). */
    float decay;
} nn_optim_cfg;

nn_optim_cfg nn_optim_cfg_default(void); /* SGD lr 0.01, no momentum, gamma 0.1, Adam betas 0.9/0.999, eps 1e-8 */
/* lr > 0, momentum in [0,1), nesterov needs momentum > 0, weight_decay >= 0, betas in [0,1), eps > 0,
 * milestones strictly increasing, gamma > 0, decay >= 0. The message names the field. */
int nn_optim_cfg_validate(const nn_optim_cfg *cfg, nn_err *err);

typedef struct nn_optim nn_optim;

int nn_optim_create(nn_optim **out, const nn_optim_cfg *cfg, size_t n_params, nn_err *err);
void nn_optim_destroy(nn_optim *o);
/* Learning rate in force for epoch (0-based) at global step t (0-based), from the schedule. */
float nn_optim_lr(const nn_optim_cfg *cfg, size_t epoch, size_t t);
/* One update of params[n_params] from grads[n_params] with learning rate lr. Increments the step. */
void nn_optim_step(nn_optim *o, float *params, const float *grads, float lr);
/* Steps taken so far. */
size_t nn_optim_steps(const nn_optim *o);

#endif
