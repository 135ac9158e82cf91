/* nn_optim.c - SGD (momentum, Nesterov) and Adam over the flat parameter vector, as torch.optim does them,
 * and the learning-rate schedule (step milestones x gamma, then Keras-style 1/(1 + decay t)).
 * Updates are element-wise (one OpenMP loop writing disjoint memory), so results do not depend on the
 * thread count. State is float, like PyTorch's; per-step scalars are computed in double. */
#include "nn_optim.h"

#include <math.h>
#include <stdlib.h>

#define PAR_MIN_PARAMS 65536 /* below this an update runs on one thread */

struct nn_optim {
    nn_optim_cfg cfg;
    size_t n;
    size_t t; /* steps taken */
    float *m; /* SGD: momentum buffer; Adam: first moment (n floats, zeroed) */
    float *v; /* Adam: second moment (n floats, zeroed); NULL for SGD */
};

nn_optim_cfg nn_optim_cfg_default(void) {
    nn_optim_cfg c = {0};
    c.kind = NN_OPT_SGD;
    c.lr = 0.01f;
    c.momentum = 0.0f;
    c.nesterov = 0;
    c.weight_decay = 0.0f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.n_milestones = 0;
    c.gamma = 0.1f;
    c.decay = 0.0f;
    return c;
}

/* Fails naming `name` unless 0 <= x < 1 (NaN fails too). */
static int check_unit(float x, const char *name, nn_err *err) {
    if (!(x >= 0.0f && x < 1.0f))
        return NN_FAIL(err, NN_E_INVAL, "%s must be in [0, 1), got %g", name, (double)x);
    return NN_OK;
}

/* Fails naming `name` unless x > 0 and finite (positive = 1) or x >= 0 and finite (positive = 0). */
static int check_pos(float x, const char *name, int positive, nn_err *err) {
    int ok = positive ? x > 0.0f : x >= 0.0f;
    if (!ok || !isfinite(x))
        return NN_FAIL(err, NN_E_INVAL, "%s must be %s and finite, got %g", name, positive ? "> 0" : ">= 0",
                       (double)x);
    return NN_OK;
}

int nn_optim_cfg_validate(const nn_optim_cfg *cfg, nn_err *err) {
    int rc;
    if (cfg->kind != NN_OPT_SGD && cfg->kind != NN_OPT_ADAM)
        return NN_FAIL(err, NN_E_INVAL, "optimizer.type must be sgd or adam, got kind %d", cfg->kind);
    if ((rc = check_pos(cfg->lr, "optimizer.lr", 1, err))) return rc;
    if ((rc = check_unit(cfg->momentum, "optimizer.momentum", err))) return rc;
    if (cfg->nesterov && !(cfg->momentum > 0.0f))
        return NN_FAIL(err, NN_E_INVAL, "optimizer.nesterov needs optimizer.momentum > 0, got %g",
                       (double)cfg->momentum);
    if ((rc = check_pos(cfg->weight_decay, "optimizer.weight_decay", 0, err))) return rc;
    if ((rc = check_unit(cfg->beta1, "optimizer.beta1", err))) return rc;
    if ((rc = check_unit(cfg->beta2, "optimizer.beta2", err))) return rc;
    if ((rc = check_pos(cfg->eps, "optimizer.eps", 1, err))) return rc;
    if ((rc = check_pos(cfg->decay, "optimizer.decay", 0, err))) return rc;
    if (cfg->n_milestones > NN_MAX_MILESTONES)
        return NN_FAIL(err, NN_E_INVAL, "schedule.milestones has %zu entries, at most %d allowed",
                       cfg->n_milestones, NN_MAX_MILESTONES);
    for (size_t i = 1; i < cfg->n_milestones; i++)
        if (cfg->milestones[i] <= cfg->milestones[i - 1])
            return NN_FAIL(err, NN_E_INVAL,
                           "schedule.milestones must be strictly increasing, got %zu after %zu (entry %zu)",
                           cfg->milestones[i], cfg->milestones[i - 1], i);
    if ((rc = check_pos(cfg->gamma, "schedule.gamma", 1, err))) return rc;
    return NN_OK;
}

int nn_optim_create(nn_optim **out, const nn_optim_cfg *cfg, size_t n_params, nn_err *err) {
    *out = NULL;
    int rc = nn_optim_cfg_validate(cfg, err);
    if (rc) return rc;
    nn_optim *o = calloc(1, sizeof *o);
    if (!o) return NN_FAIL(err, NN_E_NOMEM, "optimizer: out of memory");
    o->cfg = *cfg;
    o->n = n_params;
    size_t cnt = n_params ? n_params : 1;
    int need_m = cfg->kind == NN_OPT_ADAM || cfg->momentum > 0.0f;
    if (need_m && !(o->m = calloc(cnt, sizeof *o->m))) goto fail;
    if (cfg->kind == NN_OPT_ADAM && !(o->v = calloc(cnt, sizeof *o->v))) goto fail;
    *out = o;
    return NN_OK;
fail:
    nn_optim_destroy(o);
    return NN_FAIL(err, NN_E_NOMEM, "optimizer: out of memory for state of %zu parameters", n_params);
}

void nn_optim_destroy(nn_optim *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o);
}

float nn_optim_lr(const nn_optim_cfg *cfg, size_t epoch, size_t t) {
    double lr = (double)cfg->lr;
    size_t nm = cfg->n_milestones < NN_MAX_MILESTONES ? cfg->n_milestones : NN_MAX_MILESTONES;
    for (size_t i = 0; i < nm; i++)
        if (epoch >= cfg->milestones[i]) lr *= (double)cfg->gamma;
    lr /= 1.0 + (double)cfg->decay * (double)t;
    return (float)lr;
}

/* torch.optim.SGD: d = g + wd p; v = mu v + d; d = nesterov ? d + mu v : v (d if mu = 0); p -= lr d.
 * params, grads, m: [n]. */
static void sgd_step(nn_optim *o, float *params, const float *grads, float lr) {
    const float mu = o->cfg.momentum, wd = o->cfg.weight_decay;
    const int nesterov = o->cfg.nesterov;
    float *m = o->m;
    const size_t n = o->n;
    int par = n >= PAR_MIN_PARAMS;
#pragma omp parallel for schedule(static) if (par)
    for (size_t i = 0; i < n; i++) {
        float d = grads[i];
        if (wd != 0.0f) d += wd * params[i];
        if (m) {
            m[i] = mu * m[i] + d;
            d = nesterov ? d + mu * m[i] : m[i];
        }
        params[i] -= lr * d;
    }
}

/* torch.optim.Adam (amsgrad off): g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t counted from 1. [n] each. */
static void adam_step(nn_optim *o, float *params, const float *grads, float lr) {
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps, wd = o->cfg.weight_decay;
    const double t = (double)(o->t + 1);
    const float step = (float)((double)lr / (1.0 - pow((double)b1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow((double)b2, t));
    float *m = o->m, *v = o->v;
    const size_t n = o->n;
    int par = n >= PAR_MIN_PARAMS;
#pragma omp parallel for schedule(static) if (par)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        if (wd != 0.0f) g += wd * params[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= step * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
    }
}

void nn_optim_step(nn_optim *o, float *params, const float *grads, float lr) {
    if (o->cfg.kind == NN_OPT_ADAM)
        adam_step(o, params, grads, lr);
    else
        sgd_step(o, params, grads, lr);
    o->t++;
}

size_t nn_optim_steps(const nn_optim *o) {
    return o->t;
}
