/* def_ddgsd.h - data-distortion guided self-distillation (DDGSD; Xu & Liu, AAAI 2019) as an nn_step_fn.
 *
 * One network sees two differently distorted views x_a, x_b of every training sample; with logits z_a, z_b
 * [n, K], class posteriors p = softmax(z / T) and penultimate features f_a, f_b [n, D] (the output of layer
 * L-2, i.e. the input of the final dense layer), the loss of a batch of n samples is
 *     L = CE(z_a, y) + CE(z_b, y) + lambda * [KL(p_a || p_b) + KL(p_b || p_a)] + mu * MMD^2(f_a, f_b)
 * CE at T = 1 and the symmetric KL are means over the batch; the KL term is not multiplied by T^2 (set
 * lambda accordingly). MMD^2 is the (biased, V-statistic) squared maximum mean discrepancy between the two
 * sets of n feature vectors:
 *   linear kernel k(u, v) = u.v (default):  MMD^2 = |mean_i f_a,i - mean_i f_b,i|^2   (exact, O(n D));
 *   Gaussian kernel k(u, v) = exp(-|u - v|^2 / (2 sigma^2)):
 *       MMD^2 = 1/n^2 sum_ij [k(a_i, a_j) + k(b_i, b_j) - 2 k(a_i, b_j)]                (O(n^2 D)).
 * Both views go through ONE forward of 2n rows (view a in rows 0..n-1, view b in rows n..2n-1), so a
 * single backward carries every term. Defaults lambda = 1, mu = 5e-4 (PAPERS.md section 5, secondary source).
 *
 * Views: each view v applies, in this order, a random translation by up to view[v].shift pixels (pixels
 * shifted in are lo; nn_data_translate), a horizontal flip with probability view[v].flip, and additive
 * Gaussian noise of std view[v].noise followed by clipping to [lo, hi] (only when noise > 0: a view with
 * shift 0, flip 0 and noise 0 is exactly x). All randomness comes from the caller's nn_rng: view a's draws
 * then view b's; the noise of sample i is drawn from its own stream of one seed taken from the rng, so the
 * views depend only on the rng state, never on the thread count. */
#ifndef DEF_DDGSD_H
#define DEF_DDGSD_H

#include <stddef.h>

#include "nn_err.h"
#include "nn_net.h"

/* The distortions of one view. */
typedef struct def_ddgsd_view {
    int shift;   /* random translation by up to this many pixels in x and y, [0, 64]; 0 = off */
    float flip;  /* probability of a horizontal flip (mirror in W), [0, 1] */
    float noise; /* std of additive Gaussian noise (>= 0, finite), then clipped to [lo, hi]; 0 = off */
} def_ddgsd_view;

enum { DEF_MMD_LINEAR = 0, DEF_MMD_GAUSS = 1 };

typedef struct def_ddgsd_cfg {
    float lambda;           /* weight of the symmetric KL (>= 0, finite) */
    float mu;               /* weight of MMD^2 on the penultimate features (>= 0, finite) */
    float temperature;      /* T of the posteriors in the KL term (> 0, finite); CE is always at T = 1 */
    int kernel;             /* DEF_MMD_LINEAR or DEF_MMD_GAUSS */
    float sigma;            /* Gaussian kernel bandwidth (> 0, finite; used with DEF_MMD_GAUSS only) */
    def_ddgsd_view view[2]; /* distortions of view a and view b */
    float lo, hi;           /* the data range (lo < hi, finite): translation fill and noise clipping */
} def_ddgsd_cfg;

/* lambda 1, mu 5e-4, T 1, linear kernel (sigma 1), view a {shift 2, flip 0, noise 0}, view b {shift 2,
 * flip 0, noise 0.1}, range [0, 1] (MNIST-like images; set lo/hi for other pixel ranges). */
def_ddgsd_cfg def_ddgsd_cfg_default(void);
/* Checks the ranges above; messages name the field ("ddgsd.view[1].noise ..."). */
int def_ddgsd_cfg_validate(const def_ddgsd_cfg *cfg, nn_err *err);

/* Mean over the n rows of KL(p_a || p_b) + KL(p_b || p_a), p = softmax(z / T), za/zb [n, k]; computed as
 * sum_j (p_a,j - p_b,j)(log p_a,j - log p_b,j) with max-subtracted log-softmax in double.
 * dza/dzb [n, k] (either may be NULL) receive the gradients (including the 1/n), overwritten:
 *   dL/dza = [p_a (r - E_pa r) + p_a - p_b] / (T n),  r = log p_a - log p_b;  dzb symmetric.
 * Pure; rows in parallel, summed in row order (thread-count independent). */
double def_sym_kl(const float *za, const float *zb, size_t n, size_t k, float T, float *dza, float *dzb);

/* Linear-kernel MMD^2 = |mean_i fa_i - mean_i fb_i|^2 of fa, fb [n, d]; dfa/dfb [n, d] (either may be NULL)
 * receive the gradients, overwritten: dfa_i = 2 (mean fa - mean fb) / n = -dfb_i. Exactly 0 for identical
 * sets. Pure; columns in parallel, each summed in row order (thread-count independent). */
double def_mmd(const float *fa, const float *fb, size_t n, size_t d, float *dfa, float *dfb);

/* Gaussian-kernel MMD^2 (biased estimator above) with bandwidth sigma > 0 of fa, fb [n, d]; gradients as
 * def_mmd: d/du_r = -2/(n^2 sigma^2) sum_q s_r s_q k(u_r, u_q) (u_r - u_q) over the 2n points u with sign
 * s = +1 for fa, -1 for fb. Exactly 0 for identical sets, > 0 otherwise (characteristic kernel). Pure. */
double def_mmd_gauss(const float *fa, const float *fb, size_t n, size_t d, float sigma, float *dfa,
                     float *dfb);

/* The state of a DDGSD training run; pass def_ddgsd_step as nn_train_cfg.step and the def_ddgsd as
 * step_ctx. Holds every buffer a step needs: a step never allocates. */
typedef struct def_ddgsd {
    def_ddgsd_cfg cfg;
    nn_shape shape;     /* the net's input shape */
    size_t n_in, k;     /* input size and classes of the net */
    size_t feat_layer;  /* features = act[feat_layer] = output of layer L-2 (when L >= 2) */
    size_t d_feat;      /* D: size of one feature vector (the final dense layer's input) */
    int feat_input;     /* 1: the net is a single dense layer and the features are its input */
    int feat_grad;      /* 1: the features depend on parameters (MMD's gradient goes through backward_at) */
    size_t max_batch;   /* n per step (the net holds 2 max_batch rows) */
    float *xv;          /* [2 max_batch, n_in] the views: rows 0..n-1 view a, n..2n-1 view b */
    float *dlogits;     /* [2 max_batch, K] dL/dz of both views */
    float *g;           /* [2 max_batch, K] scratch for a term's gradient */
    float *dfeat;       /* [2 max_batch, D] dL/df */
    double ce, kl, mmd; /* the last batch's terms: CE_a + CE_b, symmetric KL, MMD^2 (unweighted) */
    int failed;         /* an error in a step (the step then returns NaN) */
    nn_err err;         /* its message */
} def_ddgsd;

/* Sets up ctx for net (borrowed; its last layer must be dense) and batches up to max_batch: validates cfg,
 * locates the feature layer, reserves the net for 2 * max_batch rows and allocates the buffers.
 * Errors: invalid cfg, last layer not dense, max_batch 0, out of memory. On error ctx needs no free. */
int def_ddgsd_init(def_ddgsd *ctx, const def_ddgsd_cfg *cfg, nn_net *net, size_t max_batch, nn_err *err);
/* Frees the buffers (NULL and a freed ctx are no-ops). */
void def_ddgsd_free(def_ddgsd *ctx);

/* The two views of x [n, C, H, W] (n <= ctx->max_batch) into ctx->xv (rows 0..n-1 view a, n..2n-1 view b),
 * drawing from rng as described in the file comment. */
void def_ddgsd_views(def_ddgsd *ctx, const float *x, size_t n, nn_rng *rng);

/* The loss above on fixed views xab [2n, n_in] (view a rows first; must stay valid during the call):
 * one forward of 2n rows (train: training mode, dropout from rng), the four terms (recorded in ctx->ce,
 * ->kl, ->mmd), and with param_grads != 0 one backward accumulating dL/dparams into net->grads.
 * pred[n] (may be NULL) = argmax of view a's logits. Returns the loss; on error sets ctx->failed and
 * ctx->err and returns NaN. The step calls it on the views it built; tests call it on views they chose. */
double def_ddgsd_loss_views(def_ddgsd *ctx, nn_net *net, const float *xab, const int *y, size_t n, int train,
                            nn_rng *rng, int param_grads, int *pred);

/* nn_step_fn: builds the two views of x [n, n_in] from rng, then def_ddgsd_loss_views in training mode
 * with parameter gradients; pred[n] = the classes of view a. Returns the loss, or NaN with ctx->failed
 * and ctx->err set (batch larger than max_batch, net not the one set up, network errors). */
double def_ddgsd_step(void *ctx, nn_net *net, const float *x, const int *y, const size_t *idx, size_t n,
                      size_t epoch, nn_rng *rng, int *pred);

#endif
