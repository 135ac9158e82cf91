/* atk.c - attack configuration, the batching driver (atk_run), the gradient attacks' objective, projection
 * onto eps-balls, and the per-sample distortion measures. */
#include "atk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_loss.h"

static const struct {
    const char *name;
    atk_kind kind;
    atk_norm norm;
} atk_names[] = {
    {"fgsm", ATK_FGSM, ATK_LINF}, {"fgm", ATK_FGSM, ATK_L2}, {"bim", ATK_BIM, ATK_LINF},
    {"pgd", ATK_PGD, ATK_LINF},   {"jsma", ATK_JSMA, ATK_LINF}, {"cw", ATK_CW, ATK_L2},
    {"deepfool", ATK_DEEPFOOL, ATK_L2},
};

int atk_kind_parse(const char *name, atk_kind *kind, atk_norm *norm) {
    for (size_t i = 0; i < sizeof atk_names / sizeof atk_names[0]; i++)
        if (!strcmp(name, atk_names[i].name)) {
            *kind = atk_names[i].kind;
            *norm = atk_names[i].norm;
            return 0;
        }
    return -1;
}

const char *atk_name(const atk_cfg *cfg) {
    int l2 = cfg->norm == ATK_L2;
    switch (cfg->kind) {
    case ATK_FGSM: return l2 ? "fgm" : "fgsm";
    case ATK_BIM: return l2 ? "bim-l2" : "bim";
    case ATK_PGD: return l2 ? "pgd-l2" : "pgd";
    case ATK_JSMA: return "jsma";
    case ATK_CW: return "cw";
    case ATK_DEEPFOOL: return "deepfool";
    default: return "?";
    }
}

atk_cfg atk_cfg_default(atk_kind kind) {
    atk_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.norm = (kind == ATK_CW || kind == ATK_DEEPFOOL) ? ATK_L2 : ATK_LINF;
    c.loss = ATK_LOSS_CE;
    c.temperature = 1.0f;
    c.kappa = 0.0f;
    c.eps = 0.3f;
    c.iters = kind == ATK_CW ? 1000 : kind == ATK_DEEPFOOL ? 50 : kind == ATK_FGSM ? 1 : 40;
    c.restarts = 1;
    c.random_start = kind == ATK_PGD;
    c.targeted = kind == ATK_JSMA;
    c.gamma = 0.145f;
    c.jsma_on = ATK_JSMA_SOFTMAX;
    c.search_steps = 9;
    c.lr = 1e-2f;
    c.c0 = 1e-3f;
    c.abort_early = 1;
    c.overshoot = 0.02f;
    c.lo = 0.0f;
    c.hi = 1.0f;
    c.seed = 1;
    return c;
}

int atk_cfg_validate(const atk_cfg *c, nn_err *err) {
    if ((unsigned)c->kind >= ATK_N_KINDS) return NN_FAIL(err, NN_E_INVAL, "unknown attack kind %d", (int)c->kind);
    if (!(c->lo < c->hi) || !isfinite(c->lo) || !isfinite(c->hi))
        return NN_FAIL(err, NN_E_INVAL, "range: lo (%g) must be below hi (%g), both finite", c->lo, c->hi);
    if (!(c->temperature > 0) || !isfinite(c->temperature))
        return NN_FAIL(err, NN_E_INVAL, "temperature must be > 0 (got %g)", c->temperature);
    if (!(c->kappa >= 0) || !isfinite(c->kappa)) return NN_FAIL(err, NN_E_INVAL, "kappa must be >= 0 (got %g)", c->kappa);
    int bounded = c->kind == ATK_FGSM || c->kind == ATK_BIM || c->kind == ATK_PGD;
    if (bounded && (!(c->eps > 0) || !isfinite(c->eps)))
        return NN_FAIL(err, NN_E_INVAL, "eps must be > 0 (got %g)", c->eps);
    if (!(c->step >= 0) || !isfinite(c->step)) return NN_FAIL(err, NN_E_INVAL, "step must be >= 0 (got %g)", c->step);
    if (c->iters < 1 || c->iters > 1000000) return NN_FAIL(err, NN_E_INVAL, "iters must be in 1..1000000 (got %d)", c->iters);
    if (c->restarts < 1 || c->restarts > 1000)
        return NN_FAIL(err, NN_E_INVAL, "restarts must be in 1..1000 (got %d)", c->restarts);
    if (c->kind == ATK_JSMA && !c->targeted) return NN_FAIL(err, NN_E_INVAL, "jsma is a targeted attack (targeted: true)");
    if (c->kind == ATK_DEEPFOOL && c->targeted) return NN_FAIL(err, NN_E_INVAL, "deepfool is untargeted only");
    if (!(c->gamma > 0 && c->gamma <= 1)) return NN_FAIL(err, NN_E_INVAL, "gamma must be in (0, 1] (got %g)", c->gamma);
    if (c->search_steps < 1 || c->search_steps > 100)
        return NN_FAIL(err, NN_E_INVAL, "search_steps must be in 1..100 (got %d)", c->search_steps);
    if (!(c->lr > 0) || !isfinite(c->lr)) return NN_FAIL(err, NN_E_INVAL, "lr must be > 0 (got %g)", c->lr);
    if (!(c->c0 > 0) || !isfinite(c->c0)) return NN_FAIL(err, NN_E_INVAL, "c0 must be > 0 (got %g)", c->c0);
    if (!(c->overshoot >= 0 && c->overshoot < 10))
        return NN_FAIL(err, NN_E_INVAL, "overshoot must be in [0, 10) (got %g)", c->overshoot);
    return NN_OK;
}

void atk_tick(const atk_batch *b, double frac) {
    if (!b->progress) return;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    b->progress(b->pctx, b->done_before + frac * (double)b->n, b->total);
}

/* Largest logit other than class c of row z[k]. */
static float max_other(const float *z, size_t k, int c, int *arg) {
    float m = -INFINITY;
    int a = -1;
    for (size_t j = 0; j < k; j++)
        if ((int)j != c && (a < 0 || z[j] > m)) {
            m = z[j];
            a = (int)j;
        }
    *arg = a;
    return m;
}

/* The gradient attacks' objective for one row (see atk_loss in atk.h); g[k] = dobj/dz. */
static double objective_row(const atk_cfg *cfg, const float *z, int y, int t, size_t k, float *g) {
    if (cfg->loss == ATK_LOSS_CE) {
        int c = cfg->targeted ? t : y;
        float sign = cfg->targeted ? -1.0f : 1.0f;
        float p[ATK_MAX_CLASSES];
        nn_softmax(z, 1, k, cfg->temperature, p);
        /* d(+-CE)/dz_j = +-(p_j - [j == c]) / T, in float32 like any framework: a saturated softmax gives 0 */
        for (size_t j = 0; j < k; j++)
            g[j] = sign * (p[j] - ((int)j == c ? 1.0f : 0.0f)) / cfg->temperature;
        double lp = log(p[c] > 0 ? (double)p[c] : 1e-45);
        return -sign * lp;
    }
    int c = cfg->targeted ? t : y, o;
    float m = max_other(z, k, c, &o);
    double d = cfg->targeted ? (double)z[c] - m : (double)m - z[c];
    memset(g, 0, k * sizeof *g);
    if (d >= cfg->kappa) return cfg->kappa; /* capped: no gradient once the confidence is reached */
    g[c] = cfg->targeted ? 1.0f : -1.0f;
    g[o] = cfg->targeted ? -1.0f : 1.0f;
    return d;
}

void atk_objective(const atk_cfg *cfg, const float *z, const int *y, const int *t, size_t n, size_t k,
                   double *obj, float *g) {
#pragma omp parallel for schedule(static) if (n * k > 4096)
    for (size_t i = 0; i < n; i++) {
        double o = objective_row(cfg, z + i * k, y[i], t ? t[i] : -1, k, g + i * k);
        if (obj) obj[i] = o;
    }
}

/* x_adv[n, d] <- clip(x + proj_eps(x_adv - x)). */
void atk_project(atk_norm norm, float eps, float lo, float hi, const float *x, float *x_adv, size_t n, size_t d) {
#pragma omp parallel for schedule(static) if (n * d > 65536)
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float *a = x_adv + i * d;
        float scale = 1.0f;
        if (norm == ATK_L2) {
            double s = 0;
            for (size_t j = 0; j < d; j++)
                s += (double)(a[j] - xi[j]) * (a[j] - xi[j]);
            double l2 = sqrt(s);
            if (l2 > eps) scale = (float)(eps / l2);
        }
        for (size_t j = 0; j < d; j++) {
            float r = (a[j] - xi[j]) * scale;
            if (norm == ATK_LINF) r = r > eps ? eps : r < -eps ? -eps : r;
            float v = xi[j] + r;
            a[j] = v < lo ? lo : v > hi ? hi : v;
        }
    }
}

static int batch_dispatch(const atk_batch *b, nn_err *err) {
    switch (b->cfg->kind) {
    case ATK_FGSM: return atk_fgsm_batch(b, err);
    case ATK_BIM:
    case ATK_PGD: return atk_pgd_batch(b, err);
    case ATK_JSMA: return atk_jsma_batch(b, err);
    case ATK_CW: return atk_cw_batch(b, err);
    case ATK_DEEPFOOL: return atk_deepfool_batch(b, err);
    default: return NN_FAIL(err, NN_E_INVAL, "unknown attack kind");
    }
}

/* Distortions of a - x (one sample of d features). */
static void distortion(const float *x, const float *a, size_t d, float tol, atk_result *r) {
    double s = 0, m = 0;
    size_t l0 = 0;
    for (size_t j = 0; j < d; j++) {
        double v = fabs((double)a[j] - x[j]);
        s += v * v;
        if (v > m) m = v;
        if (v > tol) l0++;
    }
    r->l0 = (float)l0;
    r->l2 = (float)sqrt(s);
    r->linf = (float)m;
}

static int check_inputs(const nn_net *net, const atk_cfg *cfg, const int *y, const int *t, size_t n, nn_err *err) {
    if (net->n_classes > ATK_MAX_CLASSES)
        return NN_FAIL(err, NN_E_INVAL, "attacks support at most %d classes (the net has %zu)", ATK_MAX_CLASSES,
                       net->n_classes);
    if (net->max_batch == 0) return NN_FAIL(err, NN_E_INVAL, "attack: net not reserved (nn_net_reserve)");
    if (cfg->targeted && !t) return NN_FAIL(err, NN_E_INVAL, "a targeted attack needs targets");
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || (size_t)y[i] >= net->n_classes)
            return NN_FAIL(err, NN_E_INVAL, "sample %zu: label %d is not a class of this %zu-class net", i, y[i],
                           net->n_classes);
        if (cfg->targeted && (t[i] < 0 || (size_t)t[i] >= net->n_classes || t[i] == y[i]))
            return NN_FAIL(err, NN_E_INVAL, "sample %zu: target %d is not a class other than the label %d", i, t[i], y[i]);
    }
    return NN_OK;
}

/* Clean (unless the attack saw them) and adversarial predictions and distortions of one batch into res. */
static int batch_results(nn_net *net, const atk_cfg *cfg, const atk_batch *b, atk_result *res, nn_err *err) {
    size_t k = net->n_classes;
    int missing = 0;
    for (size_t i = 0; i < b->n; i++)
        missing |= b->clean_pred[i] < 0;
    for (int pass = !missing; pass < 2; pass++) {
        const float *z;
        int rc = nn_net_forward(net, pass ? b->x_adv : b->x, b->n, 0, NULL, &z, err);
        if (rc) return rc;
        for (size_t i = 0; i < b->n; i++) {
            int p;
            nn_argmax(z + i * k, 1, k, &p);
            if (pass) res[i].pred = p;
            else b->clean_pred[i] = p;
        }
    }
    for (size_t i = 0; i < b->n; i++)
        res[i].clean_pred = b->clean_pred[i];
    float tol = ATK_L0_TOL * (cfg->hi - cfg->lo);
    for (size_t i = 0; i < b->n; i++) {
        atk_result *r = &res[i];
        r->sample = b->first + i;
        r->label = b->y[i];
        r->target = cfg->targeted ? b->t[i] : -1;
        r->iters = b->iters[i];
        r->success = cfg->targeted ? r->pred == r->target : r->pred != r->label;
        distortion(b->x + i * b->d, b->x_adv + i * b->d, b->d, tol, r);
    }
    return NN_OK;
}

int atk_run(nn_net *net, const atk_cfg *cfg, const float *x, const int *y, const int *t, size_t n, float *x_adv,
            atk_result *res, atk_progress_fn progress, void *pctx, nn_err *err) {
    int rc = atk_cfg_validate(cfg, err);
    if (rc) return rc;
    if (n == 0) return NN_OK;
    if (!x || !y || !x_adv || !res) return NN_FAIL(err, NN_E_INVAL, "attack: x, y, x_adv and res must not be NULL");
    if ((rc = check_inputs(net, cfg, y, t, n, err))) return rc;
    int *iters = calloc(2 * net->max_batch, sizeof *iters), *clean = iters + net->max_batch;
    if (!iters) return NN_FAIL(err, NN_E_NOMEM, "attack: out of memory");
    size_t d = net->n_in;
    for (size_t off = 0; off < n && !rc; off += net->max_batch) {
        size_t m = n - off < net->max_batch ? n - off : net->max_batch;
        memset(iters, 0, m * sizeof *iters);
        for (size_t i = 0; i < m; i++)
            clean[i] = -1;
        atk_batch b = {net, cfg, x + off * d, y + off, cfg->targeted ? t + off : NULL, m, d, net->n_classes, off,
                       x_adv + off * d, iters, clean, progress, pctx, (double)off, (double)n};
        rc = batch_dispatch(&b, err);
        if (!rc) rc = batch_results(net, cfg, &b, res + off, err);
        if (!rc) atk_tick(&b, 1.0);
    }
    free(iters);
    return rc;
}

void atk_targets_all(const int *y, size_t n, size_t k, size_t *idx, int *t) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++)
            if ((int)j != y[i]) {
                idx[m] = i;
                t[m++] = (int)j;
            }
}
