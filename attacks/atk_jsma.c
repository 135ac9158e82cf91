/* atk_jsma.c - Jacobian saliency map attack (Papernot et al. 2016, "The Limitations of Deep Learning in
 * Adversarial Settings"), targeted, L0, theta = +1: the reference is cleverhans's jsma_symbolic.
 *
 * Per iteration and still-active sample: F = softmax(z/T) (ATK_JSMA_SOFTMAX; JSMA-F at T = 1) or F = z
 * (ATK_JSMA_LOGITS; JSMA-Z); alpha_p = dF_t/dx_p, beta_p = sum_{j != t} dF_j/dx_p. Over pairs p < q of the
 * search domain (features < hi, not chosen yet): a = alpha_p + alpha_q, c = beta_p + beta_q, admissible when
 * a > 0 and c < 0, score (-a) * c; the best pair (lowest (p, q) among equal float scores) is set to hi and
 * leaves the domain. A sample stops on success (argmax z == t, checked before each step), when no pair is
 * admissible, when its domain has fewer than 2 features, or after floor(D * gamma / 2) steps.
 *
 * Everything is float32 on purpose, as in PyTorch: a saturated softmax (a distilled net at T = 1) gives
 * exactly zero gradients and the attack fails: that is the gradient masking the experiments measure.
 *
 * Batching: every iteration compacts the active samples into one contiguous buffer and runs ONE forward
 * and one (softmax) or two (logits) backward passes over it; the pair search is an OpenMP loop over those
 * samples writing disjoint memory. Per-sample results depend neither on the batch nor on the thread count:
 * the network's per-sample outputs do not, and the pair search is per sample with an exact integer max. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "atk.h"


typedef struct jsma_seed_ctx {
    const atk_cfg *cfg;
    const int *t;       /* [n] targets */
    float *seed2;       /* [n, k] sum_{j != t} one-hot(j) (logits variant only) */
    unsigned char *hit; /* [n] or NULL */
} jsma_seed_ctx;

/* Index of the largest of z[k], lowest on ties. */
static size_t jsma_argmax(const float *z, size_t k) {
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

/* dF_t/dz of p = softmax(z/T) in float32 like PyTorch: g[m] = p_t (delta_tm - p_m) / T (z, g: [k]).
 * A saturated softmax (p_t exactly 0 or 1 in float) gives exactly zero. */
static void jsma_softmax_seed(const float *z, size_t k, size_t t, float temp, float *g) {
    float m = z[0] / temp, s = 0.0f;
    for (size_t j = 1; j < k; j++)
        m = fmaxf(m, z[j] / temp);
    for (size_t j = 0; j < k; j++) {
        g[j] = expf(z[j] / temp - m);
        s += g[j];
    }
    for (size_t j = 0; j < k; j++)
        g[j] /= s; /* g = p */
    float pt = g[t];
    for (size_t j = 0; j < k; j++)
        g[j] = pt * ((j == t ? 1.0f : 0.0f) - g[j]) / temp;
}

/* nn_dlogits_fn: the seed of alpha (and, for logits, the seed of beta into ctx->seed2), per sample. */
static int jsma_seed(void *vctx, const float *logits, size_t n, size_t k, float *dlogits) {
    jsma_seed_ctx *c = vctx;
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        float *g = dlogits + i * k;
        size_t t = (size_t)c->t[i];
        if (c->hit) c->hit[i] = jsma_argmax(z, k) == t;
        if (c->cfg->jsma_on == ATK_JSMA_SOFTMAX) {
            jsma_softmax_seed(z, k, t, c->cfg->temperature, g);
        } else {
            for (size_t j = 0; j < k; j++) {
                g[j] = j == t ? 1.0f : 0.0f;
                c->seed2[i * k + j] = j == t ? 0.0f : 1.0f;
            }
        }
    }
    return 0;
}

int atk_jsma_grads(nn_net *net, const atk_cfg *cfg, const float *x, const int *t, size_t n, float *alpha,
                   float *beta, float *seed2, unsigned char *hit, nn_err *err) {
    jsma_seed_ctx ctx = {cfg, t, seed2, hit};
    int rc = nn_net_input_grad(net, x, n, jsma_seed, &ctx, alpha, err);
    if (rc) return rc;
    size_t nd = n * net->n_in;
    if (cfg->jsma_on == ATK_JSMA_LOGITS) /* second backward after the same forward: d(sum_{j!=t} z_j)/dx */
        return nn_net_backward(net, seed2, beta, 0, err);
    /* Softmax: sum_j F_j = 1 identically, so sum_{j != t} dF_j/dx = -dF_t/dx in exact arithmetic: we use
     * that identity (one backward pass). A second float32 backward of sum_{j != t} F_j (what autograd in
     * PyTorch or cleverhans computes) is cancellation noise once p_t < ~1e-7 (1 - p_t rounds to 1): on the
     * MNIST CNN it picks other pixels in most runs, with the same success rate and mean L0 (90 runs).
     * A saturated softmax gives exactly zero either way. */
    for (size_t i = 0; i < nd; i++)
        beta[i] = -alpha[i];
    return NN_OK;
}

/* The best score of row p: max over q in (p, m) of the int32 bits of (-a) * c when admissible (a > 0,
 * c < 0; the product is then >= +0 and non-negative floats order like their bits), else -1. An exact
 * integer max: its value does not depend on the vector width or the summation order. */
static int32_t jsma_row_max(const float *A, const float *B, size_t p, size_t m) {
    const float ap = A[p], bp = B[p];
    int32_t best = -1;
#pragma omp simd reduction(max : best)
    for (size_t q = p + 1; q < m; q++) {
        float a = ap + A[q], c = bp + B[q];
        float s = -a * c;
        int32_t bits;
        memcpy(&bits, &s, sizeof bits);
        int32_t v = ((a > 0.0f) & (c < 0.0f)) ? bits : -1;
        best = v > best ? v : best;
    }
    return best;
}

/* Best admissible pair over A[m], B[m] (the gathered alpha, beta of the domain): the highest score, the
 * lowest (p, q) among equals, into *pp < *qp (positions in the domain list). Returns 0 if none. */
static int jsma_best_pair(const float *A, const float *B, size_t m, size_t *pp, size_t *qp) {
    int32_t best = -1;
    size_t bp = 0;
    for (size_t p = 0; p + 1 < m; p++) {
        int32_t r = jsma_row_max(A, B, p, m);
        if (r > best) best = r, bp = p;
    }
    if (best < 0) return 0;
    for (size_t q = bp + 1; q < m; q++) { /* the first q of row bp reaching best, same arithmetic */
        float a = A[bp] + A[q], c = B[bp] + B[q];
        float s = -a * c;
        int32_t bits;
        memcpy(&bits, &s, sizeof bits);
        if (a > 0.0f && c < 0.0f && bits == best) {
            *pp = bp;
            *qp = q;
            return 1;
        }
    }
    return 0; /* unreachable: row bp reached best */
}

/* Workspace of one batch, allocated once. */
typedef struct jsma_ws {
    float *xa;           /* [n, d] inputs of the active samples, compacted */
    float *ga, *gb;      /* [n, d] alpha, beta of the active samples */
    float *A, *B;        /* [n, d] alpha, beta gathered over each active sample's domain */
    float *seed2;        /* [n, k] */
    uint32_t *dom;       /* [n, d] per batch sample: its domain, ascending feature indices */
    size_t *dom_n;       /* [n] domain sizes */
    size_t *act;         /* [n] batch index of active slot j */
    int *ta;             /* [n] targets of the active slots */
    unsigned char *hit;  /* [n] active slot already at its target */
    unsigned char *live; /* [n] per batch sample: still attacked */
    int *status;         /* [n] per active slot: 0 ok, 1 non-finite gradient */
} jsma_ws;

static void jsma_ws_free(jsma_ws *w) {
    free(w->xa), free(w->ga), free(w->gb), free(w->A), free(w->B), free(w->seed2);
    free(w->dom), free(w->dom_n), free(w->act), free(w->ta), free(w->hit), free(w->live), free(w->status);
}

static int jsma_ws_alloc(jsma_ws *w, size_t n, size_t d, size_t k) {
    memset(w, 0, sizeof *w);
    size_t nd = n * d;
    w->xa = malloc(nd * sizeof(float)), w->ga = malloc(nd * sizeof(float));
    w->gb = malloc(nd * sizeof(float)), w->A = malloc(nd * sizeof(float)), w->B = malloc(nd * sizeof(float));
    w->seed2 = malloc(n * k * sizeof(float)), w->dom = malloc(nd * sizeof(uint32_t));
    w->dom_n = malloc(n * sizeof(size_t)), w->act = malloc(n * sizeof(size_t));
    w->ta = malloc(n * sizeof(int)), w->hit = malloc(n), w->live = malloc(n),
    w->status = malloc(n * sizeof(int));
    return w->xa && w->ga && w->gb && w->A && w->B && w->seed2 && w->dom && w->dom_n && w->act && w->ta &&
           w->hit && w->live && w->status;
}

/* One step for active slot j (batch sample i = w->act[j]) after its gradients are in ga/gb row j:
 * success check, gather over the domain, finiteness check, pair search, update. */
static void jsma_step_one(const atk_batch *b, jsma_ws *w, size_t j) {
    size_t d = b->d, i = w->act[j];
    w->status[j] = 0;
    if (w->hit[j]) { /* already classified as the target: success, no gradient used */
        w->live[i] = 0;
        return;
    }
    const float *ga = w->ga + j * d, *gb = w->gb + j * d;
    float *A = w->A + j * d, *B = w->B + j * d, *xi = b->x_adv + i * d;
    uint32_t *dom = w->dom + i * d;
    size_t m = w->dom_n[i], p, q;
    int finite = 1;
    for (size_t u = 0; u < m; u++) {
        A[u] = ga[dom[u]];
        B[u] = gb[dom[u]];
        finite &= isfinite(A[u]) && isfinite(B[u]);
    }
    b->iters[i]++;
    if (!finite) {
        w->status[j] = 1;
        return;
    }
    if (!jsma_best_pair(A, B, m, &p, &q)) { /* no admissible pair: the attack fails on this sample */
        w->live[i] = 0;
        return;
    }
    xi[dom[p]] = b->cfg->hi;
    xi[dom[q]] = b->cfg->hi;
    size_t o = 0;
    for (size_t u = 0; u < m; u++) /* remove p and q, keeping the order */
        if (u != p && u != q) dom[o++] = dom[u];
    w->dom_n[i] = o;
}

/* x_adv = clip(x), domains = features < hi, everyone live. Returns whether clipping changed x. */
static int jsma_start(const atk_batch *b, jsma_ws *w) {
    size_t d = b->d;
    int clipped = 0;
    float lo = b->cfg->lo, hi = b->cfg->hi;
    for (size_t i = 0; i < b->n; i++) {
        const float *x = b->x + i * d;
        float *xa = b->x_adv + i * d;
        uint32_t *dom = w->dom + i * d;
        size_t m = 0;
        for (size_t u = 0; u < d; u++) {
            xa[u] = fminf(fmaxf(x[u], lo), hi);
            clipped |= xa[u] != x[u];
            if (xa[u] < hi) dom[m++] = (uint32_t)u;
        }
        w->dom_n[i] = m;
        w->live[i] = 1;
        b->iters[i] = 0;
    }
    return clipped;
}

/* The predictions on x from the first pass's logits (still the net's last forward), when that pass ran
 * every sample of the batch, in order, on x itself. */
static void jsma_clean_pred(const atk_batch *b, const jsma_ws *w, size_t na) {
    const float *z = b->net->act[b->net->n_layers - 1];
    if (!b->clean_pred || na != b->n) return;
    for (size_t j = 0; j < na; j++)
        b->clean_pred[w->act[j]] = (int)jsma_argmax(z + j * b->k, b->k);
}

/* Compacts the live samples with at least 2 domain features into slots 0..na-1; returns na. */
static size_t jsma_compact(const atk_batch *b, jsma_ws *w) {
    size_t na = 0, d = b->d;
    for (size_t i = 0; i < b->n; i++) {
        if (w->live[i] && w->dom_n[i] < 2) w->live[i] = 0;
        if (!w->live[i]) continue;
        memcpy(w->xa + na * d, b->x_adv + i * d, d * sizeof(float));
        w->act[na] = i;
        w->ta[na] = b->t[i];
        na++;
    }
    return na;
}

static int jsma_check(const atk_batch *b, nn_err *err) {
    nn_net *net = b->net;
    const atk_cfg *cfg = b->cfg;
    if (!net || !cfg || !b->x || !b->t || !b->x_adv || !b->iters)
        return NN_FAIL(err, NN_E_INVAL, "jsma: net, cfg, x, t, x_adv and iters must not be NULL");
    if (b->d != net->n_in || b->k != net->n_classes)
        return NN_FAIL(err, NN_E_SHAPE, "jsma: batch is %zu features x %zu classes, the net %zu x %zu", b->d,
                       b->k, net->n_in, net->n_classes);
    if (b->n > net->max_batch)
        return NN_FAIL(err, NN_E_INVAL, "jsma: batch of %zu > max_batch %zu", b->n, net->max_batch);
    if (b->d > UINT32_MAX) return NN_FAIL(err, NN_E_INVAL, "jsma: %zu features are too many", b->d);
    if (!(cfg->gamma >= 0.0f && cfg->gamma <= 1.0f))
        return NN_FAIL(err, NN_E_INVAL, "jsma: gamma must be in [0, 1]");
    if (cfg->jsma_on == ATK_JSMA_SOFTMAX && !(cfg->temperature > 0.0f && isfinite(cfg->temperature)))
        return NN_FAIL(err, NN_E_INVAL, "jsma: temperature must be > 0");
    if (cfg->jsma_on != ATK_JSMA_SOFTMAX && cfg->jsma_on != ATK_JSMA_LOGITS)
        return NN_FAIL(err, NN_E_INVAL, "jsma: unknown jsma_on %d", (int)cfg->jsma_on);
    for (size_t i = 0; i < b->n; i++)
        if (b->t[i] < 0 || (size_t)b->t[i] >= b->k)
            return NN_FAIL(err, NN_E_INVAL, "jsma: target %d of sample %zu is not in 0..%zu", b->t[i],
                           b->first + i, b->k - 1);
    return NN_OK;
}

int atk_jsma_batch(const atk_batch *b, nn_err *err) {
    int rc = jsma_check(b, err);
    if (rc) return rc;
    if (b->n == 0) return NN_OK;
    jsma_ws w;
    if (!jsma_ws_alloc(&w, b->n, b->d, b->k)) {
        rc = NN_FAIL(err, NN_E_NOMEM, "jsma: out of memory for a batch of %zu x %zu", b->n, b->d);
        goto fail;
    }
    int clipped = jsma_start(b, &w);
    size_t max_iters = (size_t)floor((double)b->d * (double)b->cfg->gamma / 2.0);
    for (size_t it = 0; it < max_iters; it++) {
        size_t na = jsma_compact(b, &w);
        if (na == 0) break;
        rc = atk_jsma_grads(b->net, b->cfg, w.xa, w.ta, na, w.ga, w.gb, w.seed2, w.hit, err);
        if (rc) goto fail;
        if (it == 0 && !clipped) jsma_clean_pred(b, &w, na);
#pragma omp parallel for schedule(static) if (na > 1)
        for (size_t j = 0; j < na; j++)
            jsma_step_one(b, &w, j);
        for (size_t j = 0; j < na; j++)
            if (w.status[j]) {
                rc = NN_FAIL(err, NN_E_NUMERIC, "jsma: non-finite gradient on sample %zu at iteration %zu",
                             b->first + w.act[j], it);
                goto fail;
            }
        atk_tick(b, (double)(it + 1) / (double)max_iters);
    }
    rc = NN_OK;
fail:
    jsma_ws_free(&w);
    return rc;
}
