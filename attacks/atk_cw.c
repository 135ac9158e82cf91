/* atk_cw.c - Carlini & Wagner L2 (arXiv 1608.04644), following the authors' reference code
 * (carlini/nn_robust_attacks l2_attack.py).
 *
 * Variables w[n, d] with x' = lo + (hi - lo) (tanh(w) + 1) / 2 (the reference's tanh(w)/2 on [-0.5, 0.5],
 * moved to [lo, hi]). Per sample, minimise
 *     L(w) = ||x' - x||^2 + c * loss1(z(x')),
 *     loss1 = max(0, max_{j!=t} z_j - z_t + kappa)   (targeted, target t)
 *           = max(0, z_y - max_{j!=y} z_j + kappa)   (untargeted, label y)
 * on the logits z. loss1 is C&W's f6 plus kappa (f6 = max(..., -kappa)): the same gradient, and a loss >= 0
 * as the reference's, which its abort-early test relies on. Adam on w (TensorFlow's update), reset at every
 * binary-search step, w restarting from x. Per sample, c starts at cfg->c0 and follows the reference's
 * binary search over cfg->search_steps steps; the output is the smallest-L2 adversarial x' seen over all
 * steps (x itself if none). Untargeted, a sample misclassified from the start is returned unchanged.
 * b->iters[i] counts the evaluations (forward + backward) spent on sample i.
 *
 * Batched lockstep: one nn_net_input_grad per iteration on the compacted batch of samples still running in
 * this step. All attack state is per sample and computed in a fixed order, so results do not depend on the
 * thread count, nor on the batch composition as far as the net's numbers for a sample do not (OpenBLAS's
 * sgemm kernels can change a row's last bits with the batch size: see tests/test_atk_cw.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atk.h"
#include "nn_loss.h"

#define CW_SHRINK 0.9999995 /* atanh argument scale: the reference's arctanh(x * 1.999999) on [-0.5, 0.5] */
#define CW_BETA1 0.9        /* Adam, TensorFlow's AdamOptimizer defaults */
#define CW_BETA2 0.999
#define CW_ADAM_EPS 1e-8
#define CW_UP_NONE 1e10 /* the reference's "no upper bound on c yet" */
#define CW_UP_KNOWN 1e9
#define CW_ABORT_RATIO 0.9999

typedef struct cw_state {
    const atk_batch *b;
    size_t *idx;                    /* [n] samples in this iteration's compacted batch */
    size_t na;                      /* how many */
    float *w, *m, *v;               /* [n, d] tanh-space variables and Adam moments, by sample */
    float *xa, *ga;                 /* [na, d] x' and dL/dw of the compacted batch */
    double *c, *c_lo, *c_up;        /* [n] trade-off constant and its binary-search bounds */
    double *best_l2;                /* [n] smallest L2^2 of an adversarial x' so far (all steps) */
    double *l2, *loss1, *prev;      /* [n] last evaluation; loss at the previous abort check */
    unsigned char *ok;              /* [n] last x' adversarial (with kappa) */
    unsigned char *stopped, *found; /* [n] out of this step (abort early); adversarial found this step */
    unsigned char *skip;            /* [n] untargeted and misclassified from the start: left unchanged */
    int bad;                        /* set by cw_dlogits on non-finite logits */
    size_t bad_sample;
} cw_state;

static void cw_state_free(cw_state *s) {
    free(s->idx), free(s->w), free(s->c), free(s->ok);
    memset(s, 0, sizeof *s);
}

/* One allocation per type: floats [5 n d], doubles [7 n], bytes [4 n], indices [n]. */
static int cw_state_init(cw_state *s, const atk_batch *b, nn_err *err) {
    memset(s, 0, sizeof *s);
    s->b = b;
    size_t n = b->n, nd = n * b->d;
    s->idx = malloc(n * sizeof *s->idx);
    s->w = malloc(5 * nd * sizeof *s->w);
    s->c = malloc(7 * n * sizeof *s->c);
    s->ok = calloc(4 * n, 1);
    if (!s->idx || !s->w || !s->c || !s->ok) {
        cw_state_free(s);
        return NN_FAIL(err, NN_E_NOMEM, "cw: out of memory for a batch of %zu x %zu", n, b->d);
    }
    s->m = s->w + nd, s->v = s->m + nd, s->xa = s->v + nd, s->ga = s->xa + nd;
    s->c_lo = s->c + n, s->c_up = s->c_lo + n, s->best_l2 = s->c_up + n;
    s->l2 = s->best_l2 + n, s->loss1 = s->l2 + n, s->prev = s->loss1 + n;
    s->stopped = s->ok + n, s->found = s->stopped + n, s->skip = s->found + n;
    return NN_OK;
}

/* The class of z[k] that wins when z[cls] is replaced by zc (first index among ties, as numpy argmax). */
static size_t cw_argmax_with(const float *z, size_t k, size_t cls, float zc) {
    size_t best = 0;
    float bv = cls == 0 ? zc : z[0];
    for (size_t j = 1; j < k; j++) {
        float vj = j == cls ? zc : z[j];
        if (vj > bv) bv = vj, best = j;
    }
    return best;
}

/* The reference's success test with confidence: targeted, argmax of z with kappa taken from z_t is t;
 * untargeted, argmax of z with kappa added to z_y is not y (the reference subtracts it there too, which
 * makes kappa > 0 easier instead of harder; adding is what its loss asks for). */
static int cw_adversarial(const float *z, size_t k, size_t cls, float kappa, int targeted) {
    if (targeted) return cw_argmax_with(z, k, cls, z[cls] - kappa) == cls;
    return cw_argmax_with(z, k, cls, z[cls] + kappa) != cls;
}

/* dlogits of c * loss1 for the compacted batch z[na, k] -> dz[na, k]; records loss1 and ok per sample.
 * d loss1 / dz: targeted +1 at the runner-up j, -1 at t; untargeted +1 at y, -1 at j; 0 where loss1 = 0. */
static int cw_dlogits(void *ctx, const float *z, size_t n, size_t k, float *dz) {
    cw_state *s = ctx;
    const atk_cfg *cfg = s->b->cfg;
    int tg = cfg->targeted;
    for (size_t r = 0; r < n; r++) {
        size_t i = s->idx[r];
        const float *zr = z + r * k;
        float *g = dz + r * k;
        memset(g, 0, k * sizeof *g);
        for (size_t j = 0; j < k; j++)
            if (!isfinite(zr[j])) {
                s->bad = 1, s->bad_sample = i;
                return NN_E_NUMERIC;
            }
        size_t cls = (size_t)(tg ? s->b->t[i] : s->b->y[i]);
        size_t jo = cls == 0 ? 1 : 0; /* runner-up: argmax over j != cls, first among ties */
        for (size_t j = jo + 1; j < k; j++)
            if (j != cls && zr[j] > zr[jo]) jo = j;
        double diff = (double)zr[jo] - (double)zr[cls];
        double v = (tg ? diff : -diff) + (double)cfg->kappa;
        s->loss1[i] = v > 0.0 ? v : 0.0;
        s->ok[i] = (unsigned char)cw_adversarial(zr, k, cls, cfg->kappa, tg);
        if (v > 0.0) {
            float cg = (float)s->c[i];
            g[jo] = tg ? cg : -cg;
            g[cls] = tg ? -cg : cg;
        }
    }
    return 0;
}

/* x'[na, d] of the compacted samples from their w, inside [lo, hi]. */
static void cw_box(cw_state *s) {
    const atk_batch *b = s->b;
    size_t d = b->d;
    double lo = b->cfg->lo, half = 0.5 * ((double)b->cfg->hi - lo);
#pragma omp parallel for schedule(static) if (s->na * d > 4096)
    for (size_t r = 0; r < s->na; r++) {
        const float *w = s->w + s->idx[r] * d;
        float *xr = s->xa + r * d;
        for (size_t j = 0; j < d; j++) {
            float xv = (float)(lo + half * (tanh((double)w[j]) + 1.0));
            xr[j] = fminf(fmaxf(xv, b->cfg->lo), b->cfg->hi);
        }
    }
}

/* Evaluates the compacted samples idx[0..na): x' (xa), l2 = ||x' - x||^2, loss1, ok, and
 * ga[na, d] = dL/dw = (2 (x' - x) + c dloss1/dx') * (hi - lo)/2 * (1 - tanh(w)^2). One batched
 * forward/backward. Errors: non-finite logits or gradient (NN_E_NUMERIC), the net's own errors. */
static int cw_eval(cw_state *s, nn_err *err) {
    const atk_batch *b = s->b;
    size_t d = b->d;
    cw_box(s);
    int rc = nn_net_input_grad(b->net, s->xa, s->na, cw_dlogits, s, s->ga, err);
    if (s->bad)
        return NN_FAIL(err, NN_E_NUMERIC, "cw: non-finite logits for sample %zu", b->first + s->bad_sample);
    if (rc) return rc;
    double half = 0.5 * ((double)b->cfg->hi - (double)b->cfg->lo);
#pragma omp parallel for schedule(static) if (s->na * d > 4096)
    for (size_t r = 0; r < s->na; r++) {
        size_t i = s->idx[r];
        const float *xr = s->xa + r * d, *x0 = b->x + i * d, *w = s->w + i * d;
        float *g = s->ga + r * d;
        double l2 = 0.0;
        int finite = 1;
        for (size_t j = 0; j < d; j++) {
            double diff = (double)xr[j] - (double)x0[j], th = tanh((double)w[j]);
            l2 += diff * diff;
            g[j] = (float)((2.0 * diff + (double)g[j]) * half * (1.0 - th * th));
            finite &= isfinite(g[j]) != 0;
        }
        s->l2[i] = finite ? l2 : NAN; /* NaN flags the row; reported below in sample order */
    }
    for (size_t r = 0; r < s->na; r++)
        if (isnan(s->l2[s->idx[r]]))
            return NN_FAIL(err, NN_E_NUMERIC, "cw: non-finite gradient for sample %zu", b->first + s->idx[r]);
    return NN_OK;
}

/* w[i] <- w0 = atanh(CW_SHRINK * u), u = x mapped from [lo, hi] to [-1, 1]; Adam moments zeroed. */
static void cw_restart(cw_state *s) {
    const atk_batch *b = s->b;
    size_t nd = b->n * b->d;
    double lo = b->cfg->lo, span = (double)b->cfg->hi - lo;
#pragma omp parallel for schedule(static) if (nd > 4096)
    for (size_t j = 0; j < nd; j++) {
        double u = ((double)b->x[j] - lo) / span * 2.0 - 1.0;
        u = u < -1.0 ? -1.0 : u > 1.0 ? 1.0 : u;
        s->w[j] = (float)atanh(CW_SHRINK * u);
    }
    memset(s->m, 0, nd * sizeof *s->m);
    memset(s->v, 0, nd * sizeof *s->v);
}

/* One Adam step t (1-based) of the compacted samples with gradient ga, as TensorFlow's AdamOptimizer:
 * lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * w -= lr_t m / (sqrt(v) + eps). Samples stopped at this iteration's check are left alone. */
static void cw_adam(cw_state *s, int t) {
    size_t d = s->b->d;
    double lr_t = (double)s->b->cfg->lr * sqrt(1.0 - pow(CW_BETA2, t)) / (1.0 - pow(CW_BETA1, t));
#pragma omp parallel for schedule(static) if (s->na * d > 4096)
    for (size_t r = 0; r < s->na; r++) {
        size_t i = s->idx[r];
        if (s->stopped[i]) continue;
        const float *g = s->ga + r * d;
        float *w = s->w + i * d, *m = s->m + i * d, *v = s->v + i * d;
        for (size_t j = 0; j < d; j++) {
            double gj = g[j];
            double mj = CW_BETA1 * m[j] + (1.0 - CW_BETA1) * gj;
            double vj = CW_BETA2 * v[j] + (1.0 - CW_BETA2) * gj * gj;
            m[j] = (float)mj, v[j] = (float)vj;
            w[j] = (float)((double)w[j] - lr_t * (double)m[j] / (sqrt((double)v[j]) + CW_ADAM_EPS));
        }
    }
}

/* After an evaluation at iteration it: iteration counts, the abort-early test, the best adversarial x'.
 * Abort early: the reference stops the whole batch when the batch's summed loss fell by less than 0.01%
 * since the check iters/10 iterations earlier; here each sample is tested on its own loss and masked out
 * (the batched-lockstep equivalent; a batch of one behaves as the reference). The first check has no
 * previous loss (the reference's 1e6 would stop a large-c sample before its first step). */
static void cw_record(cw_state *s, int it) {
    const atk_batch *b = s->b;
    const atk_cfg *cfg = b->cfg;
    int period = cfg->iters / 10 > 0 ? cfg->iters / 10 : 1;
    for (size_t r = 0; r < s->na; r++) {
        size_t i = s->idx[r];
        b->iters[i]++;
        double loss = s->l2[i] + s->c[i] * s->loss1[i];
        if (cfg->abort_early && it % period == 0) {
            if (loss > s->prev[i] * CW_ABORT_RATIO) {
                s->stopped[i] = 1;
                continue;
            }
            s->prev[i] = loss;
        }
        if (!s->ok[i]) continue;
        s->found[i] = 1;
        if (s->l2[i] < s->best_l2[i]) {
            s->best_l2[i] = s->l2[i];
            memcpy(b->x_adv + i * b->d, s->xa + r * b->d, b->d * sizeof(float));
        }
    }
}

/* The reference's update of c after a search step: success lowers the upper bound, failure raises the
 * lower one; bisect once an upper bound is known, else multiply by 10. */
static void cw_update_c(cw_state *s) {
    for (size_t i = 0; i < s->b->n; i++) {
        if (s->found[i]) {
            s->c_up[i] = fmin(s->c_up[i], s->c[i]);
            if (s->c_up[i] < CW_UP_KNOWN) s->c[i] = (s->c_lo[i] + s->c_up[i]) / 2.0;
        } else {
            s->c_lo[i] = fmax(s->c_lo[i], s->c[i]);
            s->c[i] = s->c_up[i] < CW_UP_KNOWN ? (s->c_lo[i] + s->c_up[i]) / 2.0 : s->c[i] * 10.0;
        }
    }
}

/* Binary-search step `step`: restart from x, up to iters Adam iterations in lockstep, each one batched
 * evaluation of the samples not stopped yet; ends early once every sample is stopped. */
static int cw_search_step(cw_state *s, int step, nn_err *err) {
    const atk_batch *b = s->b;
    const atk_cfg *cfg = b->cfg;
    cw_restart(s);
    for (size_t i = 0; i < b->n; i++)
        s->stopped[i] = s->skip[i], s->found[i] = 0, s->prev[i] = HUGE_VAL;
    for (int it = 0; it < cfg->iters; it++) {
        s->na = 0;
        for (size_t i = 0; i < b->n; i++)
            if (!s->stopped[i]) s->idx[s->na++] = i;
        if (s->na == 0) break;
        int rc = cw_eval(s, err);
        if (rc) return rc;
        cw_record(s, it);
        cw_adam(s, it + 1);
        atk_tick(b, ((double)step + (double)(it + 1) / cfg->iters) / cfg->search_steps);
    }
    return NN_OK;
}

/* Contract in atk.h. Checks what the batch needs (shapes, classes, targets); cfg ranges are atk_run's. */
static int cw_check(const atk_batch *b, nn_err *err) {
    const atk_cfg *cfg = b->cfg;
    if (b->n > b->net->max_batch)
        return NN_FAIL(err, NN_E_INVAL, "cw: batch of %zu > max_batch %zu", b->n, b->net->max_batch);
    if (b->d != b->net->n_in || b->k != b->net->n_classes || b->k < 2)
        return NN_FAIL(err, NN_E_SHAPE, "cw: batch is %zu x %zu classes, net takes %zu -> %zu", b->d, b->k,
                       b->net->n_in, b->net->n_classes);
    if (cfg->iters < 1 || cfg->search_steps < 1 || !(cfg->hi > cfg->lo) || !(cfg->c0 > 0.0f))
        return NN_FAIL(err, NN_E_INVAL, "cw: needs iters >= 1, search_steps >= 1, hi > lo, c0 > 0");
    if (cfg->targeted && !b->t) return NN_FAIL(err, NN_E_INVAL, "cw: targeted without targets");
    for (size_t i = 0; i < b->n; i++) {
        int cls = cfg->targeted ? b->t[i] : b->y[i];
        if (cls < 0 || (size_t)cls >= b->k)
            return NN_FAIL(err, NN_E_INVAL, "cw: class %d of sample %zu out of range", cls, b->first + i);
    }
    return NN_OK;
}

/* Untargeted: marks the samples the net already misclassifies (atk.h: left unchanged). One forward. */
static int cw_mark_skip(cw_state *s, nn_err *err) {
    const atk_batch *b = s->b;
    if (b->cfg->targeted) return NN_OK;
    const float *z;
    int rc = nn_net_forward(b->net, b->x, b->n, 0, NULL, &z, err);
    if (rc) return rc;
    for (size_t i = 0; i < b->n; i++) {
        size_t y = (size_t)b->y[i];
        s->skip[i] = (unsigned char)(cw_argmax_with(z + i * b->k, b->k, y, z[i * b->k + y]) != y);
        if (b->clean_pred) nn_argmax(z + i * b->k, 1, b->k, &b->clean_pred[i]);
    }
    return NN_OK;
}

int atk_cw_batch(const atk_batch *b, nn_err *err) {
    if (b->n == 0) return NN_OK;
    int rc = cw_check(b, err);
    if (rc) return rc;
    cw_state s;
    rc = cw_state_init(&s, b, err);
    if (rc) return rc;
    const atk_cfg *cfg = b->cfg;
    memcpy(b->x_adv, b->x, b->n * b->d * sizeof(float));
    if ((rc = cw_mark_skip(&s, err))) goto fail;
    for (size_t i = 0; i < b->n; i++) {
        b->iters[i] = 0;
        s.c[i] = cfg->c0, s.c_lo[i] = 0.0, s.c_up[i] = CW_UP_NONE, s.best_l2[i] = HUGE_VAL;
    }
    for (int step = 0; step < cfg->search_steps; step++) {
        if (cfg->search_steps >= 10 && step == cfg->search_steps - 1) /* the reference's final repeat */
            memcpy(s.c, s.c_up, b->n * sizeof *s.c);
        rc = cw_search_step(&s, step, err);
        if (rc) goto fail;
        cw_update_c(&s);
    }
fail:
    cw_state_free(&s);
    return rc;
}
