/* atk_pgd.c - gradient-sign / normalised-gradient attacks: PGD (Madry et al.: random start in the eps-ball,
 * restarts), BIM (iterative FGSM from x), and FGSM/FGM (one step of size eps, the one-iteration case).
 *
 * Each iteration: one batched forward/backward over the samples still running (compacted into a contiguous
 * buffer), ascent on the objective of atk_objective (CE at T, or the C&W margin), a step of size `step`
 * (L-inf: step*sign(g); L2: step*g/|g|_2), projection onto the eps-ball around x and clipping to [lo, hi].
 * A sample stops as soon as it is adversarial (for the margin loss: with margin >= kappa); samples the
 * model already gets wrong are left unchanged when untargeted. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atk.h"
#include "nn_loss.h"
#include "nn_rng.h"

typedef struct pgd_ctx {
    const atk_cfg *cfg;
    const int *y, *t; /* of the compacted samples */
    int *done;        /* out: 1 if the sample is already adversarial at these logits */
    int *pred;        /* out: argmax of the logits */
    double *obj;      /* scratch [n] */
} pgd_ctx;

/* dlogits: the objective's gradient, zero for samples that are already adversarial (they stop). */
static int pgd_dlogits(void *vctx, const float *z, size_t n, size_t k, float *g) {
    pgd_ctx *c = vctx;
    double *obj = c->obj;
    atk_objective(c->cfg, z, c->y, c->t, n, k, obj, g);
    for (size_t i = 0; i < n; i++) {
        int p;
        nn_argmax(z + i * k, 1, k, &p);
        int adv = c->cfg->targeted ? p == c->t[i] : p != c->y[i];
        if (adv && c->cfg->loss == ATK_LOSS_MARGIN) adv = obj[i] >= c->cfg->kappa;
        c->done[i] = adv;
        c->pred[i] = p;
        if (adv) memset(g + i * k, 0, k * sizeof *g);
    }
    return 0;
}

/* Random start: x + U(-eps, eps) per feature (L-inf) or eps*u*dir with a Gaussian direction (L2), clipped. */
static void random_start(const atk_cfg *cfg, nn_rng *rng, const float *x, float *a, size_t d) {
    if (cfg->norm == ATK_LINF) {
        for (size_t j = 0; j < d; j++)
            a[j] = x[j] + cfg->eps * (2.0f * nn_rng_uniform(rng) - 1.0f);
    } else {
        double s = 0;
        for (size_t j = 0; j < d; j++) {
            a[j] = nn_rng_normal(rng);
            s += (double)a[j] * a[j];
        }
        float r = (float)(cfg->eps * nn_rng_uniform_d(rng) / (s > 0 ? sqrt(s) : 1.0));
        for (size_t j = 0; j < d; j++)
            a[j] = x[j] + r * a[j];
    }
    atk_project(cfg->norm, cfg->eps, cfg->lo, cfg->hi, x, a, 1, d);
}

/* One step on a[d] along g[d] (ascent), then projection around x. Returns 0 or NN_E_NUMERIC. */
static int step_one(const atk_cfg *cfg, float step, const float *x, float *a, const float *g, size_t d) {
    if (cfg->norm == ATK_LINF) {
        for (size_t j = 0; j < d; j++) {
            if (!isfinite(g[j])) return NN_E_NUMERIC;
            a[j] += g[j] > 0 ? step : g[j] < 0 ? -step : 0.0f;
        }
    } else {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)g[j] * g[j];
        if (!isfinite(s)) return NN_E_NUMERIC;
        if (s > 0) {
            float f = (float)(step / sqrt(s));
            for (size_t j = 0; j < d; j++)
                a[j] += f * g[j];
        }
    }
    atk_project(cfg->norm, cfg->eps, cfg->lo, cfg->hi, x, a, 1, d);
    return 0;
}

typedef struct pgd_work {
    size_t *act;  /* indices of running samples */
    float *xa, *xo, *g; /* compacted current points, their originals, gradients [n, d] */
    float *gz;    /* [n, k] dlogits scratch of the final check */
    double *obj;  /* [n] */
    int *ya, *ta, *done, *pred;
    nn_rng *rng; /* one stream per sample */
} pgd_work;

static void pgd_work_free(pgd_work *w) {
    free(w->act); free(w->xa); free(w->xo); free(w->g); free(w->ya); free(w->ta); free(w->done); free(w->rng); free(w->pred);
    free(w->gz); free(w->obj);
}

/* Compacts the samples flagged in run[] into w (indices, points, originals, labels); returns their count. */
static size_t gather(const atk_batch *b, pgd_work *w, const int *run) {
    size_t m = 0, d = b->d;
    for (size_t i = 0; i < b->n; i++)
        if (run[i]) w->act[m++] = i;
    for (size_t a = 0; a < m; a++) {
        size_t i = w->act[a];
        memcpy(w->xa + a * d, b->x_adv + i * d, d * sizeof(float));
        memcpy(w->xo + a * d, b->x + i * d, d * sizeof(float));
        w->ya[a] = b->y[i];
        w->ta[a] = b->t ? b->t[i] : -1;
    }
    return m;
}

/* Marks done[] for the m gathered samples from one forward pass (no gradient). */
static int check_done(const atk_batch *b, pgd_ctx *c, pgd_work *w, size_t m, nn_err *err) {
    const float *z;
    int rc = nn_net_forward(b->net, w->xa, m, 0, NULL, &z, err);
    if (rc) return rc;
    return pgd_dlogits(c, z, m, b->k, w->gz);
}

/* Runs the iterations of one restart on the samples flagged in run[]; clears run[i] for finished ones. */
static int pgd_restart(const atk_batch *b, const atk_cfg *cfg, pgd_work *w, int *run, int r, nn_err *err) {
    size_t d = b->d;
    float step = cfg->step > 0 ? cfg->step : (cfg->kind == ATK_FGSM ? cfg->eps : 2.5f * cfg->eps / (float)cfg->iters);
    int final = r == cfg->restarts - 1 || !cfg->random_start; /* no restart follows */
    for (int it = 0; it <= cfg->iters; it++) {
        /* the pass after the last step only tells a restart which samples still need one: forward only,
         * and none after the final restart (atk_run's results forward judges success) */
        int last = it == cfg->iters;
        if (last && final) break;
        size_t m = gather(b, w, run);
        if (m == 0) break;
        pgd_ctx c = {cfg, w->ya, b->t ? w->ta : NULL, w->done, w->pred, w->obj};
        int rc = last ? check_done(b, &c, w, m, err)
                      : nn_net_input_grad(b->net, w->xa, m, pgd_dlogits, &c, w->g, err);
        if (rc) return rc;
        if (r == 0 && it == 0 && !cfg->random_start && b->clean_pred) /* the first pass saw x: every sample */
            for (size_t a = 0; a < m; a++)
                b->clean_pred[w->act[a]] = w->pred[a];
        int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad)
        for (size_t a = 0; a < m; a++) {
            size_t i = w->act[a];
            if (w->done[a]) run[i] = 0; /* adversarial: finished */
            if (w->done[a] || last) continue;
            b->iters[i]++;
            bad |= step_one(cfg, step, w->xo + a * d, w->xa + a * d, w->g + a * d, d);
            memcpy(b->x_adv + i * d, w->xa + a * d, d * sizeof(float));
        }
        if (bad) return NN_FAIL(err, NN_E_NUMERIC, "%s: non-finite input gradient", atk_name(cfg));
        atk_tick(b, ((double)r * cfg->iters + it + 1) / ((double)cfg->restarts * (cfg->iters + 1)));
    }
    return NN_OK;
}

int atk_pgd_batch(const atk_batch *b, nn_err *err) {
    const atk_cfg *cfg = b->cfg;
    size_t n = b->n, d = b->d;
    pgd_work w = {0};
    int rc = NN_OK;
    int *run = malloc(n * sizeof *run);
    w.act = malloc(n * sizeof *w.act);
    w.xa = malloc(n * d * sizeof *w.xa);
    w.xo = malloc(n * d * sizeof *w.xo);
    w.g = malloc(n * d * sizeof *w.g);
    w.ya = malloc(n * sizeof *w.ya);
    w.ta = malloc(n * sizeof *w.ta);
    w.done = malloc(n * sizeof *w.done);
    w.rng = malloc(n * sizeof *w.rng);
    w.gz = malloc(n * b->k * sizeof *w.gz);
    w.obj = malloc(n * sizeof *w.obj);
    w.pred = malloc(n * sizeof *w.pred);
    if (!run || !w.act || !w.xa || !w.xo || !w.g || !w.ya || !w.ta || !w.done || !w.rng || !w.gz || !w.obj ||
        !w.pred) {
        rc = NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", atk_name(cfg));
        goto fail;
    }
    /* samples already adversarial at x are left unchanged */
    memcpy(b->x_adv, b->x, n * d * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        run[i] = 1;
        nn_rng_seed_stream(&w.rng[i], cfg->seed, (uint64_t)(b->first + i));
    }
    if (cfg->random_start) { /* else the first gradient pass, on x itself, finds them */
        size_t m = gather(b, &w, run);
        pgd_ctx c = {cfg, w.ya, b->t ? w.ta : NULL, w.done, w.pred, w.obj};
        if ((rc = check_done(b, &c, &w, m, err))) goto fail;
        for (size_t i = 0; i < n; i++) {
            run[i] = !w.done[i];
            if (b->clean_pred) b->clean_pred[i] = w.pred[i];
        }
    }
    for (int r = 0; r < cfg->restarts && !rc; r++) {
        /* each restart runs the samples no earlier restart made adversarial */
        for (size_t i = 0; i < n; i++)
            if (run[i] && cfg->random_start) random_start(cfg, &w.rng[i], b->x + i * d, b->x_adv + i * d, d);
            else if (run[i]) memcpy(b->x_adv + i * d, b->x + i * d, d * sizeof(float));
        rc = pgd_restart(b, cfg, &w, run, r, err);
        if (!cfg->random_start) break; /* without a random start, a restart would repeat itself */
    }
fail:
    free(run);
    pgd_work_free(&w);
    return rc;
}

int atk_fgsm_batch(const atk_batch *b, nn_err *err) {
    atk_cfg c = *b->cfg;
    c.iters = 1;
    c.step = c.eps;
    c.random_start = 0;
    c.restarts = 1;
    atk_batch one = *b;
    one.cfg = &c;
    return atk_pgd_batch(&one, err);
}
