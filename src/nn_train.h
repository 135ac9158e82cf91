/* nn_train.h - the training loop and evaluation, reporting through a callback (no printing here). */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "nn_data.h"
#include "nn_err.h"
#include "nn_net.h"
#include "nn_optim.h"

/* A loss on a batch: given logits[n, k] of inputs x[n, n_in] with labels y[n] and sample indices
 * idx[n] into the training set, write dlogits (mean over the batch) and return the loss. Defenses
 * plug soft labels in here. Return NaN to abort. */
typedef double (*nn_loss_fn)(void *ctx, const float *x, const int *y, const size_t *idx, const float *logits,
                             size_t n, size_t k, float *dlogits);

/* A whole training step, for defenses whose loss needs more than the batch's logits (extra forward passes
 * on generated samples, two views, intermediate features): given the batch x[n, n_in] (after jitter) with
 * labels y, training-set indices idx and the loop's 0-based epoch and rng, accumulate the gradients into
 * net->grads (zeroed before the call), write pred[n] (the net's classes for x, for the training accuracy)
 * and return the loss. NaN aborts training (keep the reason in ctx). The loop then takes the optimizer step. */
typedef double (*nn_step_fn)(void *ctx, nn_net *net, const float *x, const int *y, const size_t *idx, size_t n,
                             size_t epoch, nn_rng *rng, int *pred);

typedef struct nn_train_cfg {
    size_t epochs;      /* >= 1 */
    size_t batch_size;  /* >= 1 */
    float temperature;  /* softmax temperature of the default CE loss (> 0); recorded in net->temperature */
    uint64_t seed;      /* shuffling, dropout, jitter */
    int jitter;         /* random translation by up to this many pixels (0 = off, at most 64) */
    nn_optim_cfg optim;
    nn_loss_fn loss;    /* NULL: cross-entropy at `temperature` with hard labels */
    void *loss_ctx;
    nn_step_fn step;    /* non-NULL: replaces forward, loss and backward (loss is then unused) */
    void *step_ctx;
} nn_train_cfg;

nn_train_cfg nn_train_cfg_default(void); /* 10 epochs, batch 128, T 1, seed 0, SGD default */
int nn_train_cfg_validate(const nn_train_cfg *cfg, nn_err *err);

enum { NN_PROGRESS_BATCH = 0, NN_PROGRESS_EPOCH = 1, NN_PROGRESS_EVAL = 2 };

typedef struct nn_progress {
    int event;            /* NN_PROGRESS_* */
    size_t epoch, epochs; /* 1-based epoch */
    size_t batch, batches;
    double loss;          /* running mean training loss of this epoch */
    double acc;           /* running training accuracy of this epoch */
    double val_loss, val_acc; /* at NN_PROGRESS_EPOCH when a validation set is given, else NaN */
    double lr;
    double samples_per_s; /* this epoch so far */
    double elapsed_s;     /* since training started */
} nn_progress;

typedef void (*nn_progress_fn)(void *ctx, const nn_progress *p);

/* Trains net on train (val may be NULL or empty) for cfg->epochs. Calls cb (may be NULL) after each
 * batch and at each epoch end. Stops with NN_E_NUMERIC if the loss becomes NaN/Inf. Reserves the net
 * for cfg->batch_size. Deterministic for a given seed, whatever the thread count. */
int nn_train(nn_net *net, const nn_dataset *train, const nn_dataset *val, const nn_train_cfg *cfg,
             nn_progress_fn cb, void *cb_ctx, nn_err *err);

#define NN_MAX_CLASSES 32

typedef struct nn_eval {
    size_t n, errors;
    double accuracy, loss; /* loss: CE at T=1 */
    size_t class_total[NN_MAX_CLASSES], class_errors[NN_MAX_CLASSES];
    double seconds;
} nn_eval;

/* Evaluates net on d in batches of at most `batch` (eval mode). logits (NULL: not kept) receives the
 * logits [d->n, n_classes] from the same forward passes. */
int nn_evaluate(nn_net *net, const nn_dataset *d, size_t batch, float *logits, nn_eval *out, nn_err *err);

#endif
