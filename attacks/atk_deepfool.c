/* atk_deepfool.c - DeepFool L2, multi-class, untargeted (Moosavi-Dezfooli et al., CVPR 2016).
 *
 * Per sample, with k0 the clean prediction, r_tot = 0 and x_adv = x, repeat while the prediction on x_adv
 * is still k0 and fewer than cfg->iters steps were taken: at x_adv, for every class j != k0,
 *     w_j = grad z_j - grad z_k0,  f_j = z_j - z_k0;
 * l = argmin_j |f_j| / ||w_j||_2 (the nearest boundary of the local linearisation), then
 *     r_tot += (|f_l| + 1e-4) / ||w_l||^2 * w_l,   x_adv = clip(x + (1 + overshoot) r_tot).
 * (The authors' code adds 1e-4 to the distance |f_l|/||w_l|| instead of to |f_l|; either only nudges the
 * step past the linearised boundary.) A sample the net misclassifies from the start is left unchanged.
 *
 * Batched lockstep: each iteration compacts the running samples into one batch, runs one forward and K
 * backward passes with one-hot seeds (the full Jacobian of the logits), and steps every sample. Per-sample
 * arithmetic only, so the results do not depend on the thread count, nor on the batch composition as far
 * as the net's numbers for a sample do not (OpenBLAS's sgemm kernels can change a row's last bits with the
 * batch size). b->iters[i] counts DeepFool steps (one Jacobian each) taken for sample i. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atk.h"
#include "nn_loss.h"

#define DF_NUDGE 1e-4

typedef struct df_state {
    const atk_batch *b;
    size_t *idx;          /* [n] samples of this iteration's compacted batch */
    size_t na;            /* how many */
    float *xa;            /* [na, d] their current x_adv */
    float *jac;           /* [k, na, d]: jac + (j na + r) d = dz_j/dx of row r */
    float *z;             /* [na, k] their logits */
    float *seed;          /* [na, k] one-hot backward seeds (our own buffer, never net->gbuf) */
    float *rtot;          /* [n, d] accumulated perturbation by sample */
    int *k0;              /* [n] clean prediction, -1 before the first evaluation */
    unsigned char *state; /* [n] DF_RUNNING, DF_DONE or DF_BAD */
} df_state;

enum { DF_RUNNING = 0, DF_DONE, DF_BAD };

static void df_state_free(df_state *s) {
    free(s->idx), free(s->xa), free(s->k0), free(s->state);
    memset(s, 0, sizeof *s);
}

/* One allocation per type: floats [(k + 2) n d + 2 n k], ints [n], bytes [n], indices [n]. */
static int df_state_init(df_state *s, const atk_batch *b, nn_err *err) {
    memset(s, 0, sizeof *s);
    s->b = b;
    size_t n = b->n, nd = n * b->d, k = b->k;
    s->idx = malloc(n * sizeof *s->idx);
    s->xa = malloc(((k + 2) * nd + 2 * n * k) * sizeof *s->xa);
    s->k0 = malloc(n * sizeof *s->k0);
    s->state = calloc(n, 1);
    if (!s->idx || !s->xa || !s->k0 || !s->state) {
        df_state_free(s);
        return NN_FAIL(err, NN_E_NOMEM, "deepfool: out of memory for a batch of %zu x %zu", n, b->d);
    }
    s->rtot = s->xa + nd, s->jac = s->rtot + nd, s->z = s->jac + k * nd, s->seed = s->z + n * k;
    return NN_OK;
}

/* Records the logits and seeds class 0 for the first backward. */
static int df_dlogits(void *ctx, const float *z, size_t n, size_t k, float *dz) {
    df_state *s = ctx;
    memcpy(s->z, z, n * k * sizeof *z);
    for (size_t r = 0; r < n; r++) {
        memset(dz + r * k, 0, k * sizeof *dz);
        dz[r * k] = 1.0f;
    }
    return 0;
}

/* Logits z[na, k] and Jacobian jac[k, na, d] of the compacted batch xa: one forward, K backward passes
 * (the first through nn_net_input_grad, the rest re-using its activations with one-hot seeds). */
static int df_jacobian(df_state *s, nn_err *err) {
    const atk_batch *b = s->b;
    size_t na = s->na, k = b->k, d = b->d;
    int rc = nn_net_input_grad(b->net, s->xa, na, df_dlogits, s, s->jac, err);
    for (size_t j = 1; j < k && !rc; j++) {
        memset(s->seed, 0, na * k * sizeof *s->seed);
        for (size_t r = 0; r < na; r++)
            s->seed[r * k + j] = 1.0f;
        rc = nn_net_backward(b->net, s->seed, s->jac + j * na * d, 0, err);
    }
    return rc;
}

/* The nearest linearised boundary of row r (class c0 = k0, finite logits): returns l (or -1 when every
 * w_j is zero), its |f_l| and ||w_l||^2; *bad when a gradient is not finite. */
static int df_nearest(const df_state *s, size_t r, int c0, double *f_l, double *wn2_l, int *bad) {
    size_t na = s->na, k = s->b->k, d = s->b->d;
    const float *zr = s->z + r * k, *g0 = s->jac + ((size_t)c0 * na + r) * d;
    double best = HUGE_VAL;
    int l = -1;
    *bad = 0;
    for (size_t j = 0; j < k; j++) {
        if ((int)j == c0) continue;
        const float *gj = s->jac + (j * na + r) * d;
        double wn2 = 0.0;
        for (size_t e = 0; e < d; e++) {
            double w = (double)gj[e] - (double)g0[e];
            wn2 += w * w;
        }
        double f = fabs((double)zr[j] - (double)zr[c0]);
        if (!isfinite(wn2) || !isfinite(f)) *bad = 1;
        if (*bad || !(wn2 > 0.0)) continue;
        double dist = f / sqrt(wn2);
        if (dist < best) best = dist, l = (int)j, *f_l = f, *wn2_l = wn2;
    }
    return *bad ? -1 : l;
}

/* One DeepFool update of row r (sample i) after an evaluation; sets the sample's state. */
static void df_update_row(df_state *s, size_t r) {
    const atk_batch *b = s->b;
    const atk_cfg *cfg = b->cfg;
    size_t i = s->idx[r], k = b->k, d = b->d;
    const float *zr = s->z + r * k;
    for (size_t j = 0; j < k; j++)
        if (!isfinite(zr[j])) {
            s->state[i] = DF_BAD;
            return;
        }
    int pred;
    nn_argmax(zr, 1, k, &pred);
    if (s->k0[i] < 0) { /* the first evaluation is at x */
        s->k0[i] = pred;
        if (b->clean_pred) b->clean_pred[i] = pred;
    }
    int c0 = s->k0[i];
    if (c0 != b->y[i] || pred != c0) { /* misclassified from the start (unchanged) or crossed */
        s->state[i] = DF_DONE;
        return;
    }
    double f_l = 0.0, wn2 = 1.0;
    int bad, l = df_nearest(s, r, c0, &f_l, &wn2, &bad);
    if (bad) {
        s->state[i] = DF_BAD;
        return;
    }
    if (l < 0) { /* flat: every logit difference has a zero gradient, no direction to move in */
        s->state[i] = DF_DONE;
        return;
    }
    double coef = (f_l + DF_NUDGE) / wn2, scale = 1.0 + (double)cfg->overshoot;
    const float *gl = s->jac + ((size_t)l * s->na + r) * d, *g0 = s->jac + ((size_t)c0 * s->na + r) * d;
    const float *x = b->x + i * d;
    float *rt = s->rtot + i * d, *xa = b->x_adv + i * d;
    for (size_t e = 0; e < d; e++) {
        rt[e] = (float)((double)rt[e] + coef * ((double)gl[e] - (double)g0[e]));
        float v = (float)((double)x[e] + scale * (double)rt[e]);
        xa[e] = fminf(fmaxf(v, cfg->lo), cfg->hi);
    }
    b->iters[i]++;
    if (b->iters[i] >= cfg->iters) s->state[i] = DF_DONE;
}

/* Contract in atk.h. Checks what the batch needs (shapes, labels); cfg ranges are atk_run's. */
static int df_check(const atk_batch *b, nn_err *err) {
    if (b->n > b->net->max_batch)
        return NN_FAIL(err, NN_E_INVAL, "deepfool: batch of %zu > max_batch %zu", b->n, b->net->max_batch);
    if (b->d != b->net->n_in || b->k != b->net->n_classes || b->k < 2)
        return NN_FAIL(err, NN_E_SHAPE, "deepfool: batch is %zu x %zu classes, net takes %zu -> %zu", b->d,
                       b->k, b->net->n_in, b->net->n_classes);
    if (b->cfg->targeted) return NN_FAIL(err, NN_E_INVAL, "deepfool is untargeted only");
    if (b->cfg->iters < 1 || !(b->cfg->hi > b->cfg->lo))
        return NN_FAIL(err, NN_E_INVAL, "deepfool: needs iters >= 1 and hi > lo");
    for (size_t i = 0; i < b->n; i++)
        if (b->y[i] < 0 || (size_t)b->y[i] >= b->k)
            return NN_FAIL(err, NN_E_INVAL, "deepfool: label %d of sample %zu out of range", b->y[i],
                           b->first + i);
    return NN_OK;
}

/* One lockstep iteration over the running samples; *left = how many were running. */
static int df_iterate(df_state *s, size_t *left, nn_err *err) {
    const atk_batch *b = s->b;
    size_t d = b->d;
    s->na = 0;
    for (size_t i = 0; i < b->n; i++)
        if (s->state[i] == DF_RUNNING) s->idx[s->na++] = i;
    *left = s->na;
    if (s->na == 0) return NN_OK;
    for (size_t r = 0; r < s->na; r++)
        memcpy(s->xa + r * d, b->x_adv + s->idx[r] * d, d * sizeof(float));
    int rc = df_jacobian(s, err);
    if (rc) return rc;
#pragma omp parallel for schedule(static) if (s->na * d * b->k > 8192)
    for (size_t r = 0; r < s->na; r++)
        df_update_row(s, r);
    for (size_t r = 0; r < s->na; r++)
        if (s->state[s->idx[r]] == DF_BAD)
            return NN_FAIL(err, NN_E_NUMERIC, "deepfool: non-finite logits or gradient for sample %zu",
                           b->first + s->idx[r]);
    return NN_OK;
}

int atk_deepfool_batch(const atk_batch *b, nn_err *err) {
    if (b->n == 0) return NN_OK;
    int rc = df_check(b, err);
    if (rc) return rc;
    df_state s;
    if ((rc = df_state_init(&s, b, err))) return rc;
    memcpy(b->x_adv, b->x, b->n * b->d * sizeof(float));
    memset(s.rtot, 0, b->n * b->d * sizeof *s.rtot);
    for (size_t i = 0; i < b->n; i++)
        b->iters[i] = 0, s.k0[i] = -1;
    size_t left = b->n;
    while (left > 0 && !rc) {
        rc = df_iterate(&s, &left, err);
        size_t done = 0;
        for (size_t i = 0; i < b->n; i++)
            done += s.state[i] != DF_RUNNING;
        atk_tick(b, (double)done / (double)b->n);
    }
    df_state_free(&s);
    return rc;
}
