/* def_ddgsd.c - data-distortion guided self-distillation (def_ddgsd.h).
 *
 * Determinism: per-row (or per-column) values are written by OpenMP loops into stack arrays of a fixed
 * block size and then summed in order, so every total is the sequential sum whatever the thread count
 * (the scheme of nn_loss.c); nothing is allocated after def_ddgsd_init. */
#include "def_ddgsd.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn_data.h"
#include "nn_loss.h"

#define ROW_BLOCK 256

def_ddgsd_cfg def_ddgsd_cfg_default(void) {
    def_ddgsd_cfg c;
    memset(&c, 0, sizeof c);
    c.lambda = 1.0f;
    c.mu = 5e-4f;
    c.temperature = 1.0f;
    c.kernel = DEF_MMD_LINEAR;
    c.sigma = 1.0f;
    c.view[0] = (def_ddgsd_view){2, 0.0f, 0.0f};
    c.view[1] = (def_ddgsd_view){2, 0.0f, 0.1f};
    c.lo = 0.0f;
    c.hi = 1.0f;
    return c;
}

static int weight_ok(float w) {
    return w >= 0 && isfinite(w);
}

int def_ddgsd_cfg_validate(const def_ddgsd_cfg *c, nn_err *err) {
    if (!weight_ok(c->lambda))
        return NN_FAIL(err, NN_E_INVAL, "ddgsd.lambda must be >= 0 and finite (got %g)", c->lambda);
    if (!weight_ok(c->mu))
        return NN_FAIL(err, NN_E_INVAL, "ddgsd.mu must be >= 0 and finite (got %g)", c->mu);
    if (!(c->temperature > 0) || !isfinite(c->temperature))
        return NN_FAIL(err, NN_E_INVAL, "ddgsd.temperature must be > 0 and finite (got %g)", c->temperature);
    if (c->kernel != DEF_MMD_LINEAR && c->kernel != DEF_MMD_GAUSS)
        return NN_FAIL(err, NN_E_INVAL, "ddgsd.kernel must be linear (%d) or gauss (%d) (got %d)",
                       DEF_MMD_LINEAR, DEF_MMD_GAUSS, c->kernel);
    if (c->kernel == DEF_MMD_GAUSS && (!(c->sigma > 0) || !isfinite(c->sigma)))
        return NN_FAIL(err, NN_E_INVAL, "ddgsd.sigma must be > 0 and finite for the gauss kernel (got %g)",
                       c->sigma);
    if (!isfinite(c->lo) || !isfinite(c->hi) || !(c->lo < c->hi))
        return NN_FAIL(err, NN_E_INVAL, "ddgsd.lo must be < ddgsd.hi, both finite (got %g, %g)", c->lo,
                       c->hi);
    for (int v = 0; v < 2; v++) {
        const def_ddgsd_view *w = &c->view[v];
        if (w->shift < 0 || w->shift > 64)
            return NN_FAIL(err, NN_E_INVAL, "ddgsd.view[%d].shift must be in [0, 64] pixels (got %d)", v,
                           w->shift);
        if (!(w->flip >= 0 && w->flip <= 1))
            return NN_FAIL(err, NN_E_INVAL, "ddgsd.view[%d].flip must be a probability in [0, 1] (got %g)", v,
                           w->flip);
        if (!weight_ok(w->noise))
            return NN_FAIL(err, NN_E_INVAL, "ddgsd.view[%d].noise must be >= 0 and finite (got %g)", v,
                           w->noise);
    }
    return NN_OK;
}

/* ---------- symmetric KL ---------- */

/* log sum_j exp(z_j / T) of one row, max-subtracted, in double. */
static double row_lse(const float *z, size_t k, double invT) {
    double m = (double)z[0] * invT, s = 0;
    for (size_t j = 1; j < k; j++)
        m = fmax(m, (double)z[j] * invT);
    for (size_t j = 0; j < k; j++)
        s += exp((double)z[j] * invT - m);
    return m + log(s);
}

/* KL(pa||pb) + KL(pb||pa) = sum_j (pa_j - pb_j) r_j, r = log pa - log pb, of one row; gradients (times
 * scale = 1/(T n)) into ga/gb when non-NULL: ga = pa (r - E_pa r) + pa - pb, gb = pb (E_pb r - r) + pb - pa.
 */
static double sym_kl_row(const float *za, const float *zb, size_t k, double invT, double scale, float *ga,
                         float *gb) {
    double lsa = row_lse(za, k, invT), lsb = row_lse(zb, k, invT), d = 0, ea = 0, eb = 0;
    for (size_t j = 0; j < k; j++) {
        double la = (double)za[j] * invT - lsa, lb = (double)zb[j] * invT - lsb, pa = exp(la), pb = exp(lb);
        d += (pa - pb) * (la - lb);
        ea += pa * (la - lb);
        eb += pb * (la - lb);
    }
    for (size_t j = 0; (ga || gb) && j < k; j++) {
        double la = (double)za[j] * invT - lsa, lb = (double)zb[j] * invT - lsb, pa = exp(la), pb = exp(lb);
        double r = la - lb;
        if (ga) ga[j] = (float)(scale * (pa * (r - ea) + pa - pb));
        if (gb) gb[j] = (float)(scale * (pb * (eb - r) + pb - pa));
    }
    return d;
}

double def_sym_kl(const float *za, const float *zb, size_t n, size_t k, float T, float *dza, float *dzb) {
    double rows[ROW_BLOCK], total = 0, invT = 1.0 / (double)T, scale = invT / (double)n;
    for (size_t b0 = 0; b0 < n; b0 += ROW_BLOCK) {
        size_t nb = n - b0 < ROW_BLOCK ? n - b0 : ROW_BLOCK;
#pragma omp parallel for schedule(static) if (nb * k > 4096)
        for (size_t r = 0; r < nb; r++) {
            size_t i = b0 + r;
            rows[r] = sym_kl_row(za + i * k, zb + i * k, k, invT, scale, dza ? dza + i * k : NULL,
                                 dzb ? dzb + i * k : NULL);
        }
        for (size_t r = 0; r < nb; r++)
            total += rows[r];
    }
    return total / (double)n;
}

/* ---------- MMD ---------- */

double def_mmd(const float *fa, const float *fb, size_t n, size_t d, float *dfa, float *dfb) {
    double diff[ROW_BLOCK], total = 0, invn = 1.0 / (double)n;
    for (size_t j0 = 0; j0 < d; j0 += ROW_BLOCK) {
        size_t nb = d - j0 < ROW_BLOCK ? d - j0 : ROW_BLOCK;
        /* diff_j = mean_i fa_ij - mean_i fb_ij (two sums in the same order: 0 for identical sets) */
#pragma omp parallel for schedule(static) if (nb * n > 20000)
        for (size_t c = 0; c < nb; c++) {
            size_t j = j0 + c;
            double sa = 0, sb = 0;
            for (size_t i = 0; i < n; i++) {
                sa += fa[i * d + j];
                sb += fb[i * d + j];
            }
            diff[c] = (sa - sb) * invn;
            float g = (float)(2.0 * diff[c] * invn); /* dfa_ij = 2 diff_j / n = -dfb_ij */
            for (size_t i = 0; dfa && i < n; i++)
                dfa[i * d + j] = g;
            for (size_t i = 0; dfb && i < n; i++)
                dfb[i * d + j] = -g;
        }
        for (size_t c = 0; c < nb; c++)
            total += diff[c] * diff[c];
    }
    return total;
}

/* Point r of the 2n points u (fa rows, then fb rows). */
static const float *gauss_point(const float *fa, const float *fb, size_t n, size_t d, size_t r) {
    return r < n ? fa + r * d : fb + (r - n) * d;
}

/* P_r = s_r (sum_{q in a} k(u_r, u_q) - sum_{q in b} k(u_r, u_q)) for point r; when du is non-NULL,
 * du = gscale s_r sum_q s_q k(u_r, u_q) (u_r - u_q), gscale = -2/(n^2 sigma^2). */
static double gauss_row(const float *fa, const float *fb, size_t n, size_t d, double inv2s2, double gscale,
                        size_t r, float *du) {
    const float *u = gauss_point(fa, fb, n, d, r);
    double s_r = r < n ? 1.0 : -1.0, sum[2] = {0, 0};
    if (du) memset(du, 0, d * sizeof *du);
    for (size_t q = 0; q < 2 * n; q++) {
        const float *v = gauss_point(fa, fb, n, d, q);
        double dist2 = 0;
        for (size_t j = 0; j < d; j++) {
            double t = (double)u[j] - (double)v[j];
            dist2 += t * t;
        }
        double kv = exp(-dist2 * inv2s2);
        sum[q >= n] += kv;
        if (!du || q == r) continue;
        float coef = (float)(gscale * s_r * (q < n ? kv : -kv));
        for (size_t j = 0; j < d; j++)
            du[j] += coef * (u[j] - v[j]);
    }
    return s_r * (sum[0] - sum[1]);
}

double def_mmd_gauss(const float *fa, const float *fb, size_t n, size_t d, float sigma, float *dfa,
                     float *dfb) {
    double rows[ROW_BLOCK], total = 0, inv2s2 = 1.0 / (2.0 * (double)sigma * (double)sigma);
    double nn2 = (double)n * (double)n, gscale = -4.0 * inv2s2 / nn2;
    for (size_t b0 = 0; b0 < 2 * n; b0 += ROW_BLOCK) {
        size_t nb = 2 * n - b0 < ROW_BLOCK ? 2 * n - b0 : ROW_BLOCK;
#pragma omp parallel for schedule(static) if (nb * n * d > 20000)
        for (size_t c = 0; c < nb; c++) {
            size_t r = b0 + c;
            float *du = r < n ? (dfa ? dfa + r * d : NULL) : (dfb ? dfb + (r - n) * d : NULL);
            rows[c] = gauss_row(fa, fb, n, d, inv2s2, gscale, r, du);
        }
        for (size_t c = 0; c < nb; c++)
            total += rows[c];
    }
    return total / nn2;
}

/* ---------- context ---------- */

/* malloc(a * b * sizeof(float)) with an overflow check. */
static float *alloc_floats(size_t a, size_t b) {
    if (a && b > SIZE_MAX / sizeof(float) / a) return NULL;
    return malloc(a * b * sizeof(float));
}

/* The feature layer of net: output of layer L-2 (or the input of a one-layer net) and whether a parameter
 * sits at or below it. */
static void find_features(def_ddgsd *c, const nn_net *net) {
    size_t L = net->n_layers;
    c->feat_input = L < 2;
    c->feat_layer = L < 2 ? 0 : L - 2;
    c->d_feat = L < 2 ? net->n_in : nn_shape_size(net->layers[L - 2].out);
    c->feat_grad = 0;
    for (size_t i = 0; L >= 2 && i <= L - 2; i++)
        c->feat_grad |= net->layers[i].n_params > 0;
}

int def_ddgsd_init(def_ddgsd *c, const def_ddgsd_cfg *cfg, nn_net *net, size_t max_batch, nn_err *err) {
    memset(c, 0, sizeof *c);
    int rc = def_ddgsd_cfg_validate(cfg, err);
    if (rc) return rc;
    if (max_batch == 0 || max_batch > SIZE_MAX / 4)
        return NN_FAIL(err, NN_E_INVAL, "ddgsd: max_batch must be >= 1 (got %zu)", max_batch);
    const nn_layer *last = &net->layers[net->n_layers - 1];
    if (strcmp(last->cfg.kind, "dense") != 0)
        return NN_FAIL(
            err, NN_E_INVAL,
            "ddgsd: the last layer (%zu) is %s, not dense: the features are the input of a final dense "
            "layer",
            net->n_layers - 1, last->cfg.kind);
    if ((rc = nn_net_reserve(net, 2 * max_batch, err))) return rc;
    c->cfg = *cfg;
    c->shape = net->in_shape;
    c->n_in = net->n_in;
    c->k = net->n_classes;
    c->max_batch = max_batch;
    find_features(c, net);
    size_t rows = 2 * max_batch;
    c->xv = alloc_floats(rows, c->n_in);
    c->dlogits = alloc_floats(rows, c->k);
    c->g = alloc_floats(rows, c->k);
    c->dfeat = alloc_floats(rows, c->d_feat);
    if (!c->xv || !c->dlogits || !c->g || !c->dfeat) {
        def_ddgsd_free(c);
        return NN_FAIL(err, NN_E_NOMEM, "ddgsd: out of memory for batch %zu", max_batch);
    }
    return NN_OK;
}

void def_ddgsd_free(def_ddgsd *c) {
    if (!c) return;
    free(c->xv);
    free(c->dlogits);
    free(c->g);
    free(c->dfeat);
    c->xv = c->dlogits = c->g = c->dfeat = NULL;
}

/* ---------- views ---------- */

/* Mirrors every row of every channel of one sample x[C, H, W] in place. */
static void flip_sample(float *x, nn_shape s) {
    for (size_t r = 0; r < s.c * s.h; r++) {
        float *row = x + r * s.w;
        for (size_t a = 0, b = s.w - 1; a < b; a++, b--) {
            float t = row[a];
            row[a] = row[b];
            row[b] = t;
        }
    }
}

/* Adds N(0, std^2) noise to x[n, d] and clips to [lo, hi]; sample i draws from stream i of one seed. */
static void add_noise(float *x, size_t n, size_t d, float std, float lo, float hi, nn_rng *rng) {
    uint64_t seed = nn_rng_u64(rng);
#pragma omp parallel for schedule(static) if (n * d > 20000)
    for (size_t i = 0; i < n; i++) {
        nn_rng r;
        nn_rng_seed_stream(&r, seed, (uint64_t)i);
        float *xi = x + i * d;
        for (size_t j = 0; j < d; j++) {
            float v = xi[j] + std * nn_rng_normal(&r);
            xi[j] = v < lo ? lo : (v > hi ? hi : v);
        }
    }
}

void def_ddgsd_views(def_ddgsd *c, const float *x, size_t n, nn_rng *rng) {
    const def_ddgsd_cfg *cfg = &c->cfg;
    for (size_t v = 0; v < 2; v++) {
        const def_ddgsd_view *w = &cfg->view[v];
        float *out = c->xv + v * n * c->n_in;
        nn_data_translate(x, out, n, c->shape, w->shift, cfg->lo, rng);
        for (size_t i = 0; w->flip > 0 && i < n; i++)
            if (nn_rng_uniform(rng) < w->flip) flip_sample(out + i * c->n_in, c->shape);
        if (w->noise > 0) add_noise(out, n, c->n_in, w->noise, cfg->lo, cfg->hi, rng);
    }
}

/* ---------- loss and step ---------- */

/* Records a failure in ctx and returns NaN. */
#define STEP_FAIL(c, code, ...) ((c)->failed = NN_FAIL(&(c)->err, (code), __VA_ARGS__), (double)NAN)

/* The net is still the one set up: sizes, the feature layer and room for 2n rows. */
static int check_net(def_ddgsd *c, const nn_net *net, size_t n) {
    if (n == 0 || n > c->max_batch)
        return NN_FAIL(&c->err, NN_E_INVAL, "ddgsd: batch of %zu samples is not in 1..%zu", n, c->max_batch);
    size_t L = net->n_layers;
    size_t d = L < 2 ? net->n_in : nn_shape_size(net->layers[L - 2].out);
    if (net->n_in != c->n_in || net->n_classes != c->k || d != c->d_feat || (L < 2) != c->feat_input)
        return NN_FAIL(&c->err, NN_E_SHAPE,
                       "ddgsd: the net (%zu inputs, %zu classes) is not the one set up (%zu, %zu)", net->n_in,
                       net->n_classes, c->n_in, c->k);
    if (net->max_batch < 2 * n)
        return NN_FAIL(&c->err, NN_E_INVAL, "ddgsd: the net holds %zu rows, the two views need %zu",
                       net->max_batch, 2 * n);
    return NN_OK;
}

/* mu * MMD^2 of the features of the last forward; its gradient into c->dfeat when want_grad. */
static double mmd_term(def_ddgsd *c, const nn_net *net, const float *xab, size_t n, int want_grad) {
    const float *f = c->feat_input ? xab : net->act[c->feat_layer];
    size_t d = c->d_feat, nd = n * d;
    float *g = want_grad ? c->dfeat : NULL;
    double m = c->cfg.kernel == DEF_MMD_GAUSS
                   ? def_mmd_gauss(f, f + nd, n, d, c->cfg.sigma, g, g ? g + nd : NULL)
                   : def_mmd(f, f + nd, n, d, g, g ? g + nd : NULL);
    for (size_t i = 0; g && i < 2 * nd; i++)
        g[i] *= c->cfg.mu;
    return m;
}

double def_ddgsd_loss_views(def_ddgsd *c, nn_net *net, const float *xab, const int *y, size_t n, int train,
                            nn_rng *rng, int param_grads, int *pred) {
    const def_ddgsd_cfg *cfg = &c->cfg;
    int rc = check_net(c, net, n);
    const float *z;
    if (rc || (rc = nn_net_forward(net, xab, 2 * n, train, rng, &z, &c->err))) {
        c->failed = rc;
        return NAN;
    }
    size_t k = c->k, nk = n * k;
    float *dl = c->dlogits, *g = c->g;
    /* dz = (softmax(z) - onehot(y)) / n for each view, + lambda * d symKL / dz */
    c->ce = nn_loss_ce(z, y, n, k, 1.0f, dl) + nn_loss_ce(z + nk, y, n, k, 1.0f, dl + nk);
    int kl_grad = param_grads && cfg->lambda > 0;
    c->kl = def_sym_kl(z, z + nk, n, k, cfg->temperature, kl_grad ? g : NULL, kl_grad ? g + nk : NULL);
    for (size_t i = 0; kl_grad && i < 2 * nk; i++)
        dl[i] += cfg->lambda * g[i];
    int feat_grad = param_grads && cfg->mu > 0 && c->feat_grad;
    c->mmd = mmd_term(c, net, xab, n, feat_grad);
    if (pred) nn_argmax(z, n, k, pred);
    double loss = c->ce + cfg->lambda * c->kl + cfg->mu * c->mmd;
    if (param_grads) {
        rc = feat_grad ? nn_net_backward_at(net, dl, c->feat_layer, c->dfeat, NULL, 1, &c->err)
                       : nn_net_backward(net, dl, NULL, 1, &c->err);
        if (rc) {
            c->failed = rc;
            return NAN;
        }
    }
    return loss;
}

double def_ddgsd_step(void *ctx, nn_net *net, const float *x, const int *y, const size_t *idx, size_t n,
                      size_t epoch, nn_rng *rng, int *pred) {
    (void)idx;
    (void)epoch;
    def_ddgsd *c = ctx;
    if (n == 0 || n > c->max_batch)
        return STEP_FAIL(c, NN_E_INVAL, "ddgsd: batch of %zu samples is not in 1..%zu", n, c->max_batch);
    def_ddgsd_views(c, x, n, rng);
    return def_ddgsd_loss_views(c, net, c->xv, y, n, 1, rng, 1, pred);
}
