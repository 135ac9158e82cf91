/* atk.h - adversarial attacks on a temper net, all through nn_net_input_grad (or one forward followed by
 * extra nn_net_backward calls with parameter gradients off): an attack never touches the parameters or
 * their gradients.
 *
 * Every attack works on whole batches in lockstep: atk_run cuts the n inputs into batches of at most
 * net->max_batch, and inside a batch every sample steps through one batched forward/backward; samples that
 * are done are masked (or compacted out of the batch), never run one by one. Results are per sample and do
 * not depend on the thread count; random draws come from a stream seeded by (cfg.seed, the sample's index in
 * the call), so they do not depend on the batch either. The network's own numbers can: OpenBLAS's sgemm
 * gives a row different last bits for different numbers of rows, so an attack that follows gradient
 * magnitudes (C&W's Adam) can end a few ulps apart when the same sample runs in another batch.
 *
 * Units: eps, step and distortions are in the data's units (e.g. [0,1] or [-0.5,0.5] pixels); every
 * adversarial example is clipped to [cfg.lo, cfg.hi]. */
#ifndef ATK_H
#define ATK_H

#include <stddef.h>
#include <stdint.h>

#include "nn_err.h"
#include "nn_net.h"

/* Largest number of classes an attack handles (per-row buffers live on the stack). */
#define ATK_MAX_CLASSES 1024

typedef enum atk_kind {
    ATK_FGSM,     /* one step: L-inf eps*sign(g) ("fgsm") or L2 eps*g/|g| ("fgm") */
    ATK_BIM,      /* iterative FGSM, no random start (Kurakin et al.) */
    ATK_PGD,      /* projected gradient descent, random start, restarts (Madry et al.) */
    ATK_JSMA,     /* Jacobian saliency map attack, targeted, L0 (Papernot et al. 2016) */
    ATK_CW,       /* Carlini & Wagner L2 (tanh box, binary search over c, Adam) */
    ATK_DEEPFOOL, /* DeepFool L2, minimum-norm, untargeted (Moosavi-Dezfooli et al.) */
    ATK_N_KINDS
} atk_kind;

typedef enum atk_norm { ATK_LINF, ATK_L2 } atk_norm;

/* The objective of the gradient attacks (FGSM/BIM/PGD), always *ascended*:
 * CE: untargeted  +CE(softmax(z/T), y);  targeted  -CE(softmax(z/T), t).
 * MARGIN (C&W f6 on logits, capped at kappa):
 *     untargeted  min(max_{j!=y} z_j - z_y, kappa);  targeted  min(z_t - max_{j!=t} z_j, kappa). */
typedef enum atk_loss { ATK_LOSS_CE, ATK_LOSS_MARGIN } atk_loss;

/* What JSMA differentiates: the softmax of z/T (JSMA-F at T = 1) or the logits z (JSMA-Z). */
typedef enum atk_jsma_on { ATK_JSMA_SOFTMAX, ATK_JSMA_LOGITS } atk_jsma_on;

typedef struct atk_cfg {
    atk_kind kind;
    atk_norm norm;      /* FGSM/BIM/PGD: the threat model; JSMA is L0, C&W and DeepFool are L2 */
    atk_loss loss;      /* FGSM/BIM/PGD */
    float temperature;  /* T of the CE loss and of JSMA's softmax (1) */
    float kappa;        /* confidence of the margin loss and of C&W (0) */
    float eps;          /* FGSM/BIM/PGD budget (0.3); must be > 0 */
    float step;         /* BIM/PGD step; 0 = 2.5 * eps / iters (Madry's rule of thumb) */
    int iters;          /* BIM/PGD 40; C&W iterations per binary-search step 1000; DeepFool 50 */
    int restarts;       /* PGD random restarts, the first success kept (1) */
    int random_start;   /* start uniformly in the eps-ball (PGD 1, BIM 0) */
    int targeted;       /* 1: the run gets targets and must hit them. JSMA is always targeted; DeepFool never */
    float gamma;        /* JSMA maximum fraction of features changed (0.145) */
    atk_jsma_on jsma_on;
    int search_steps;   /* C&W binary-search steps over c (9) */
    float lr;           /* C&W Adam learning rate (1e-2) */
    float c0;           /* C&W initial c (1e-3) */
    int abort_early;    /* C&W: stop a search step when the loss stops falling (1) */
    float overshoot;    /* DeepFool overshoot (0.02) */
    float lo, hi;       /* valid data range (0, 1) */
    uint64_t seed;
} atk_cfg;

/* Defaults for kind (the values in the comments above). */
atk_cfg atk_cfg_default(atk_kind kind);
/* Ranges and combinations; messages name the field (e.g. "eps must be > 0"). */
int atk_cfg_validate(const atk_cfg *cfg, nn_err *err);
/* "fgsm", "fgm", "bim", "pgd", "jsma", "cw", "deepfool" -> kind and norm (fgm = fgsm with L2).
 * Returns -1 on an unknown name. */
int atk_kind_parse(const char *name, atk_kind *kind, atk_norm *norm);
/* The short name of cfg's attack ("fgm" for L2 FGSM, "pgd-l2", ...), static storage. */
const char *atk_name(const atk_cfg *cfg);

/* One adversarial example. Distortions are of x_adv - x: l0 counts features changed by more than
 * ATK_L0_TOL * (hi - lo) (C&W's tanh box cannot return x exactly). */
#define ATK_L0_TOL 1e-3f
typedef struct atk_result {
    size_t sample;   /* index of the source sample in the caller's numbering (atk_run: 0..n-1) */
    int label;       /* true class */
    int target;      /* target class, -1 if untargeted */
    int clean_pred;  /* prediction on x */
    int pred;        /* prediction on x_adv */
    int success;     /* untargeted: pred != label; targeted: pred == target */
    int iters;       /* gradient evaluations used on this sample (forward+backward pairs) */
    float l0, l2, linf;
} atk_result;

/* Progress: done / total samples finished so far (called from the calling thread). */
typedef void (*atk_progress_fn)(void *ctx, double done, double total);

/* Attacks x[n, D] with labels y[n] (and targets t[n] if cfg->targeted, else t may be NULL).
 * Writes x_adv[n, D] and res[n]. net must be reserved (nn_net_reserve); batches are net->max_batch.
 * A sample misclassified from the start is left unchanged (untargeted: counted as a success with zero
 * distortion; targeted: attacked like the others).
 * Errors: invalid cfg, labels/targets out of range, target == label, a non-finite gradient. */
int atk_run(nn_net *net, const atk_cfg *cfg, const float *x, const int *y, const int *t, size_t n,
            float *x_adv, atk_result *res, atk_progress_fn progress, void *pctx, nn_err *err);

/* ---- for the attack implementations (atk_<name>.c) ---- */

/* One batch handed to an attack: x[n, d] -> x_adv[n, d], iters[n]. first = index of x[0] in the atk_run
 * call (for per-sample random streams). tick(b, frac) reports the fraction of the batch done. */
typedef struct atk_batch {
    nn_net *net;
    const atk_cfg *cfg;
    const float *x;
    const int *y, *t; /* t NULL when untargeted */
    size_t n, d, k, first;
    float *x_adv;
    int *iters;
    int *clean_pred; /* [n] or NULL, -1 on entry: an attack that sees the logits of x stores its prediction
                        here; atk_run computes the ones left at -1 with one forward */
    atk_progress_fn progress;
    void *pctx;
    double done_before, total;
} atk_batch;
void atk_tick(const atk_batch *b, double frac);

int atk_fgsm_batch(const atk_batch *b, nn_err *err); /* FGSM and FGM */
int atk_pgd_batch(const atk_batch *b, nn_err *err);  /* BIM and PGD */
int atk_jsma_batch(const atk_batch *b, nn_err *err);
int atk_cw_batch(const atk_batch *b, nn_err *err);
int atk_deepfool_batch(const atk_batch *b, nn_err *err);
/* JSMA's gradients (atk_jsma.c; used by its tests) for x[n, d] and
 * targets t[n] (n <= net->max_batch): alpha[n, d] = dF_t/dx, beta[n, d] = sum_{j != t} dF_j/dx with F as
 * cfg->jsma_on / cfg->temperature; hit[n] (may be NULL) = (argmax z == t, lowest index on ties).
 * seed2[n, k] is caller scratch. x must stay unchanged during the call. Not thread-safe (uses net).
 * Errors: those of the network calls. Does not check finiteness. */
int atk_jsma_grads(nn_net *net, const atk_cfg *cfg, const float *x, const int *t, size_t n, float *alpha,
                   float *beta, float *seed2, unsigned char *hit, nn_err *err);

/* The gradient attacks' objective (see atk_loss) per sample of z[n, k]: obj[n] (may be NULL) and
 * dobj/dz into g[n, k] (not divided by n). t may be NULL when untargeted. */
void atk_objective(const atk_cfg *cfg, const float *z, const int *y, const int *t, size_t n, size_t k,
                   double *obj, float *g);

/* x_adv[n, d] <- clip(x + proj(x_adv - x)) with proj onto the eps-ball of norm. */
void atk_project(atk_norm norm, float eps, float lo, float hi, const float *x, float *x_adv, size_t n, size_t d);

/* ---- summaries ---- */

typedef struct atk_summary {
    double eps;           /* the bound the summary applies (successes with a larger distortion do not count);
                             < 0: none */
    size_t n_samples;     /* distinct source samples */
    size_t n_runs;        /* results (samples x targets) */
    size_t n_correct;     /* results whose clean prediction was right */
    size_t n_success;     /* successful results among those, within eps */
    double robust_acc;    /* fraction of source samples classified right with no successful attack */
    double success_rate;  /* n_success / n_correct */
    double mean_l0, mean_l2, mean_linf;  /* over the successes counted */
    double median_l0, median_l2, median_linf;
    double rho_adv;       /* Papernot's robustness: mean l0 / D over the successes */
    /* Carlini's cases for several targets per sample, in the bound's norm (L0 when norm_l0): the mean over
     * samples of the smallest distortion among its successful targets (best case; samples with at least one
     * success) and of the largest (worst case; samples whose every target succeeded). */
    double best_case, worst_case;
    size_t n_best, n_worst; /* samples behind each */
    double mean_iters;
} atk_summary;

/* Summarises res[n] (entries of one source sample must be consecutive, as atk_targets_all makes them).
 * d = features per sample; eps bound in norm (ATK_LINF, ATK_L2; L0 when norm_l0) or eps < 0 for none.
 * Needs scratch for the medians: returns NN_E_NOMEM on allocation failure. */
int atk_summarize(const atk_result *res, size_t n, size_t d, int norm_l0, atk_norm norm, double eps,
                  atk_summary *s, nn_err *err);

/* Expands n samples into n*(k-1) (sample, target) pairs, every class other than the label, in class order:
 * idx[i] = source sample, t[i] = target. idx and t must hold n*(k-1) entries. */
void atk_targets_all(const int *y, size_t n, size_t k, size_t *idx, int *t);

#endif
