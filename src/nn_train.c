/* nn_train.c - the mini-batch training loop and evaluation.
 *
 * Per epoch e (0-based) one rng is seeded with nn_rng_seed_stream(seed, e) and used, in this order, for
 * the shuffle, then per batch for the jitter and the dropout masks: an epoch's randomness depends only on
 * (seed, e), never on the thread count. Every epoch shuffles a fresh identity permutation (like
 * torch's RandomSampler) and uses the last partial batch (drop_last=False). All buffers are allocated
 * once before the loop. */
#include "nn_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn_loss.h"

nn_train_cfg nn_train_cfg_default(void) {
    nn_train_cfg c;
    memset(&c, 0, sizeof c);
    c.epochs = 10;
    c.batch_size = 128;
    c.temperature = 1.0f;
    c.seed = 0;
    c.jitter = 0;
    c.optim = nn_optim_cfg_default();
    c.loss = NULL;
    c.loss_ctx = NULL;
    return c;
}

int nn_train_cfg_validate(const nn_train_cfg *cfg, nn_err *err) {
    if (cfg->epochs < 1) return NN_FAIL(err, NN_E_INVAL, "train.epochs must be >= 1, got %zu", cfg->epochs);
    if (cfg->batch_size < 1)
        return NN_FAIL(err, NN_E_INVAL, "train.batch_size must be >= 1, got %zu", cfg->batch_size);
    if (!(cfg->temperature > 0.0f) || !isfinite(cfg->temperature))
        return NN_FAIL(err, NN_E_INVAL, "train.temperature must be > 0 and finite, got %g",
                       (double)cfg->temperature);
    if (cfg->jitter < 0 || cfg->jitter > 64)
        return NN_FAIL(err, NN_E_INVAL, "train.jitter must be in [0, 64] pixels, got %d", cfg->jitter);
    return nn_optim_cfg_validate(&cfg->optim, err);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The data set fits the net: sample size n_in, labels in [0, min(n_classes, max_label)). */
static int check_data(const nn_net *net, const nn_dataset *d, const char *what, size_t max_label,
                      nn_err *err) {
    if (nn_shape_size(d->shape) != net->n_in)
        return NN_FAIL(err, NN_E_SHAPE, "%s set: samples of %zux%zux%zu = %zu values, the net takes %zu",
                       what, d->shape.c, d->shape.h, d->shape.w, nn_shape_size(d->shape), net->n_in);
    size_t k = net->n_classes < max_label ? net->n_classes : max_label;
    for (size_t i = 0; i < d->n; i++)
        if (d->y[i] < 0 || (size_t)d->y[i] >= k)
            return NN_FAIL(err, NN_E_INVAL, "%s set: label %d of sample %zu is outside [0, %zu)", what,
                           d->y[i], i, k);
    return NN_OK;
}

/* Everything one training run holds; the buffers are sized for cfg->batch_size. */
typedef struct train_run {
    nn_net *net;
    const nn_dataset *d;
    const nn_train_cfg *cfg;
    nn_optim *opt;
    nn_rng rng;     /* the current epoch's stream */
    size_t *idx;    /* [n] sample order of the epoch */
    float *xb;      /* [bs, n_in] gathered batch */
    float *xj;      /* [bs, n_in] jittered batch (NULL when jitter is off) */
    int *yb;        /* [bs] */
    int *pred;      /* [bs] */
    float *dlogits; /* [bs, k] */
    float fill;     /* jitter fill value: the smallest value of the training inputs */
    size_t epoch, batches, t;
    double loss_sum, t_start, t_epoch;
    size_t correct, seen;
    float lr;
} train_run;

/* One step on batch b of the epoch: gather, (jitter), forward, loss, backward (or cfg->step), update. */
static int train_batch(train_run *r, size_t b, nn_err *err) {
    nn_net *net = r->net;
    const size_t bs = r->cfg->batch_size, n_in = net->n_in, k = net->n_classes;
    const size_t b0 = b * bs, nb = r->d->n - b0 < bs ? r->d->n - b0 : bs;
    const size_t *ix = r->idx + b0;
    for (size_t i = 0; i < nb; i++) {
        memcpy(r->xb + i * n_in, r->d->x + ix[i] * n_in, n_in * sizeof(float));
        r->yb[i] = r->d->y[ix[i]];
    }
    const float *x = r->xb;
    if (r->xj) {
        nn_data_translate(r->xb, r->xj, nb, r->d->shape, r->cfg->jitter, r->fill, &r->rng);
        x = r->xj;
    }
    int rc = NN_OK;
    double loss;
    nn_net_zero_grad(net);
    if (r->cfg->step) {
        loss = r->cfg->step(r->cfg->step_ctx, net, x, r->yb, ix, nb, r->epoch, &r->rng, r->pred);
    } else {
        const float *logits;
        if ((rc = nn_net_forward(net, x, nb, 1, &r->rng, &logits, err))) return rc;
        loss = r->cfg->loss ? r->cfg->loss(r->cfg->loss_ctx, x, r->yb, ix, logits, nb, k, r->dlogits)
                            : nn_loss_ce(logits, r->yb, nb, k, r->cfg->temperature, r->dlogits);
        if (isfinite(loss)) nn_argmax(logits, nb, k, r->pred);
        if (isfinite(loss) && (rc = nn_net_backward(net, r->dlogits, NULL, 1, err))) return rc;
    }
    if (!isfinite(loss))
        return NN_FAIL(err, NN_E_NUMERIC, "training loss is %g at epoch %zu, batch %zu of %zu", loss,
                       r->epoch + 1, b + 1, r->batches);
    for (size_t i = 0; i < nb; i++)
        r->correct += r->pred[i] == r->yb[i];
    r->loss_sum += loss * (double)nb;
    r->seen += nb;
    r->lr = nn_optim_lr(&r->cfg->optim, r->epoch, r->t);
    nn_optim_step(r->opt, net->params, net->grads, r->lr);
    r->t++;
    return NN_OK;
}

/* The progress record of the epoch so far (val fields NaN). */
static nn_progress progress_of(const train_run *r, int event, size_t batch) {
    double now = now_s();
    nn_progress p;
    memset(&p, 0, sizeof p);
    p.event = event;
    p.epoch = r->epoch + 1;
    p.epochs = r->cfg->epochs;
    p.batch = batch;
    p.batches = r->batches;
    p.loss = r->seen ? r->loss_sum / (double)r->seen : NAN;
    p.acc = r->seen ? (double)r->correct / (double)r->seen : NAN;
    p.val_loss = p.val_acc = NAN;
    p.lr = r->lr;
    p.samples_per_s = now > r->t_epoch ? (double)r->seen / (now - r->t_epoch) : 0.0;
    p.elapsed_s = now - r->t_start;
    return p;
}

/* One epoch: reseed, shuffle, all batches (callback after each), validation, epoch callback. */
static int train_epoch(train_run *r, const nn_dataset *val, nn_progress_fn cb, void *cb_ctx, nn_err *err) {
    const size_t n = r->d->n;
    nn_rng_seed_stream(&r->rng, r->cfg->seed, (uint64_t)r->epoch);
    for (size_t i = 0; i < n; i++)
        r->idx[i] = i;
    nn_rng_shuffle(&r->rng, r->idx, n);
    r->loss_sum = 0.0;
    r->correct = r->seen = 0;
    r->t_epoch = now_s();
    for (size_t b = 0; b < r->batches; b++) {
        int rc = train_batch(r, b, err);
        if (rc) return rc;
        if (cb) {
            nn_progress p = progress_of(r, NN_PROGRESS_BATCH, b + 1);
            cb(cb_ctx, &p);
        }
    }
    nn_progress p = progress_of(r, NN_PROGRESS_EPOCH, r->batches);
    if (val && val->n) {
        nn_eval ev;
        int rc = nn_evaluate(r->net, val, r->cfg->batch_size, NULL, &ev, err);
        if (rc) return rc;
        p.val_loss = ev.loss;
        p.val_acc = ev.accuracy;
    }
    if (cb) cb(cb_ctx, &p);
    return NN_OK;
}

/* Buffers for batches of bs; xj only with jitter. */
static int run_alloc(train_run *r, size_t bs, nn_err *err) {
    const size_t n_in = r->net->n_in, k = r->net->n_classes;
    r->idx = malloc(r->d->n * sizeof *r->idx);
    r->xb = malloc(bs * n_in * sizeof *r->xb);
    r->xj = r->cfg->jitter > 0 ? malloc(bs * n_in * sizeof *r->xj) : NULL;
    r->yb = malloc(bs * sizeof *r->yb);
    r->pred = malloc(bs * sizeof *r->pred);
    r->dlogits = malloc(bs * k * sizeof *r->dlogits);
    if (!r->idx || !r->xb || (r->cfg->jitter > 0 && !r->xj) || !r->yb || !r->pred || !r->dlogits)
        return NN_FAIL(err, NN_E_NOMEM, "training: out of memory for batch buffers (batch %zu)", bs);
    return NN_OK;
}

static void run_free(train_run *r) {
    free(r->idx);
    free(r->xb);
    free(r->xj);
    free(r->yb);
    free(r->pred);
    free(r->dlogits);
    nn_optim_destroy(r->opt);
}

int nn_train(nn_net *net, const nn_dataset *train, const nn_dataset *val, const nn_train_cfg *cfg,
             nn_progress_fn cb, void *cb_ctx, nn_err *err) {
    train_run r;
    memset(&r, 0, sizeof r);
    int rc = nn_train_cfg_validate(cfg, err);
    if (rc) return rc;
    if (!train || train->n == 0) return NN_FAIL(err, NN_E_INVAL, "training set is empty");
    if ((rc = check_data(net, train, "training", (size_t)-1, err))) return rc;
    if (val && val->n && (rc = check_data(net, val, "validation", NN_MAX_CLASSES, err))) return rc;
    net->temperature = cfg->temperature;
    r.net = net;
    r.d = train;
    r.cfg = cfg;
    r.batches = (train->n + cfg->batch_size - 1) / cfg->batch_size;
    r.lr = nn_optim_lr(&cfg->optim, 0, 0);
    if ((rc = nn_net_reserve(net, cfg->batch_size, err))) goto fail;
    if ((rc = run_alloc(&r, cfg->batch_size, err))) goto fail;
    if ((rc = nn_optim_create(&r.opt, &cfg->optim, net->n_params, err))) goto fail;
    r.fill = train->x[0];
    for (size_t i = 1; i < train->n * net->n_in; i++)
        if (train->x[i] < r.fill) r.fill = train->x[i];
    r.t_start = now_s();
    for (r.epoch = 0; r.epoch < cfg->epochs; r.epoch++)
        if ((rc = train_epoch(&r, val, cb, cb_ctx, err))) goto fail;
fail:
    run_free(&r);
    return rc;
}

/* Batch [b0, b0 + nb) of d: predictions, per-class counts and the summed CE at T=1 into out; the logits
 * into keep[b0 * k ...] when keep is not NULL. */
static int eval_batch(nn_net *net, const nn_dataset *d, size_t b0, size_t nb, float *keep, nn_eval *out,
                      nn_err *err) {
    const size_t k = net->n_classes;
    const float *logits;
    int rc = nn_net_forward(net, d->x + b0 * net->n_in, nb, 0, NULL, &logits, err);
    if (rc) return rc;
    if (keep) memcpy(keep + b0 * k, logits, nb * k * sizeof *keep);
    out->loss += nn_loss_ce(logits, d->y + b0, nb, k, 1.0f, NULL) * (double)nb;
    for (size_t i = 0; i < nb; i++) {
        int best, y = d->y[b0 + i];
        nn_argmax(logits + i * k, 1, k, &best);
        out->class_total[y]++;
        if (best != y) {
            out->class_errors[y]++;
            out->errors++;
        }
    }
    return NN_OK;
}

int nn_evaluate(nn_net *net, const nn_dataset *d, size_t batch, float *logits, nn_eval *out, nn_err *err) {
    memset(out, 0, sizeof *out);
    double t0 = now_s();
    if (batch < 1) return NN_FAIL(err, NN_E_INVAL, "evaluation batch size must be >= 1, got %zu", batch);
    int rc = check_data(net, d, "evaluation", NN_MAX_CLASSES, err);
    if (rc) return rc;
    if ((rc = nn_net_reserve(net, batch, err))) return rc;
    for (size_t b0 = 0; b0 < d->n; b0 += batch) {
        size_t nb = d->n - b0 < batch ? d->n - b0 : batch;
        if ((rc = eval_batch(net, d, b0, nb, logits, out, err))) return rc;
    }
    out->n = d->n;
    out->accuracy = d->n ? (double)(d->n - out->errors) / (double)d->n : NAN;
    out->loss = d->n ? out->loss / (double)d->n : NAN;
    out->seconds = now_s() - t0;
    return NN_OK;
}
