/* atk_boundary.h - how alike the decision boundaries of a teacher and a student are, measured along
 * adversarial directions from test samples: MagSim and AngSim (Heo et al., "Knowledge Distillation with
 * Adversarial Samples Supporting Decision Boundary", AAAI 2019, arXiv 1805.05532; the earlier version
 * "Improving Knowledge Distillation with Supporting Adversarial Samples" introduces the two metrics).
 *
 * The definitions below are OUR READING; the paper's exact normalisation is unverified (../shared/PAPERS.md
 * sec. 4 marks the formulas as unverified; the paper text could not be consulted).
 *
 * For every sample x with label y that BOTH nets classify as y, and a target class k (the teacher's
 * second-best class, or every class other than y), each model M in {teacher T, student S} is attacked
 * towards k on its own logits z with a DeepFool-like minimal-L2 targeted step (r starts at 0):
 *     g = d(z_k - z_y)/dx at x_M,   r <- r + (z_y - z_k + 1e-4) g / |g|^2,
 *     x_M = clip(x + (1 + overshoot) r, lo, hi)
 * (the exact step onto the linearised y/k boundary), up to `steps` steps, until M's argmax at x_M is no
 * longer y (it need not be k). d_M = x_M - x. With `refine`, d_M is then shortened to the first point of
 * the segment [x, x_M] where M's argmax leaves y (grid scan and bisection, below): the distance to M's
 * boundary along its own adversarial direction, free of the overshoot and of the step's nudge.
 * A pair (x, k) is *used* when both attacks crossed (with non-zero distances); over the used pairs
 *     MagSim = mean min(|d_T|, |d_S|) / max(|d_T|, |d_S|)     (1: equal distances)
 *     AngSim = mean cos(d_T, d_S) = d_T . d_S / (|d_T| |d_S|) (1: the same direction)
 * Line search ("the student's boundary along the teacher's direction"): with u = d_T / |d_T|, t_S is the
 * first t in (0, t_max] where the student's argmax at clip(x + t u) is not y, t_max = min(ls_max |d_T|,
 * the largest t keeping x + t u inside [lo, hi]); found by evaluating ls_grid evenly spaced points, then
 * bisecting the first crossed interval until it is shorter than ls_tol (t_S = its crossed end; a region
 * narrower than t_max / ls_grid can be missed). Reported per pair with t_S / |d_T|; searched whenever the
 * teacher crossed.
 *
 * Batching: samples are processed in chunks; inside a chunk every pair steps in lockstep through one
 * batched nn_net_input_grad (attack) or nn_net_forward (line search) per slice of at most the net's
 * max_batch, running pairs compacted, finished ones masked out. Never one sample at a time. Per-pair
 * arithmetic only: the results do not depend on the thread count. Both nets are only read: their
 * parameters and gradients never change. */
#ifndef ATK_BOUNDARY_H
#define ATK_BOUNDARY_H

#include <stddef.h>

#include "nn_err.h"
#include "nn_net.h"

typedef enum atk_boundary_targets {
    ATK_BOUNDARY_SECOND, /* k = the teacher's runner-up on x (lowest index on ties): one pair per sample */
    ATK_BOUNDARY_ALL     /* every class k != y, in class order: K - 1 pairs per sample */
} atk_boundary_targets;

typedef struct atk_boundary_cfg {
    int steps;                    /* attack steps per model at most (50) */
    float overshoot;              /* DeepFool's overshoot, in [0, 1] (0.02) */
    atk_boundary_targets targets; /* ATK_BOUNDARY_SECOND */
    float lo, hi;                 /* the valid data range; every x must lie inside ([0, 1]) */
    int refine;                   /* 0/1: shorten d_M to M's first crossing on [x, x_M] (1) */
    int line_search;              /* 0/1: the student's boundary along the teacher's direction (1) */
    float ls_max;                 /* t_max factor: search t in (0, ls_max |d_T|] (4) */
    int ls_grid;                  /* grid points before bisecting, also for refine (8) */
    float ls_tol;                 /* bisection stops below this interval, data units (1e-4) */
} atk_boundary_cfg;

/* The defaults in the comments above. */
atk_boundary_cfg atk_boundary_cfg_default(void);
/* 1 <= steps <= 100000, 0 <= overshoot <= 1, targets a known value, lo < hi (finite), refine and
 * line_search 0 or 1, ls_max > 0, 1 <= ls_grid <= 1024, ls_tol > 0 (finite). NN_E_INVAL with a message
 * naming the field. */
int atk_boundary_cfg_validate(const atk_boundary_cfg *cfg, nn_err *err);

/* One (sample, target) pair. Distances are L2 norms in data units; -1 marks "not available". */
typedef struct atk_boundary_sample {
    size_t sample;            /* index of the sample in the call (0..n-1) */
    int label, target;        /* y and k (k = -1 when the sample is not correct under ATK_BOUNDARY_SECOND) */
    int correct;              /* both nets classify x as y; nothing below is computed otherwise */
    int crossed_t, crossed_s; /* the model's argmax left y within cfg->steps */
    int steps_t, steps_s;     /* attack steps taken */
    int used;                 /* correct, both crossed, both distances > 0: counted in MagSim/AngSim */
    float dist_t, dist_s;     /* |d_T|, |d_S| (after refine); -1 when that model did not cross */
    float magsim;             /* min / max of the two distances; 0 unless used */
    float cos;                /* cos(d_T, d_S); 0 unless used */
    int found_along_t;        /* line search: 1 found the student's boundary along u within t_max, 0 searched
                                 without finding it, -1 not searched (line_search off or the teacher did not
                                 cross) */
    float dist_s_along_t;     /* t_S; -1 when not searched or not found */
    float ratio_along_t;      /* t_S / |d_T|; -1 likewise */
} atk_boundary_sample;

typedef struct atk_boundary_summary {
    size_t n_pairs;        /* entries summarised */
    size_t n_correct;      /* pairs whose sample both nets classify correctly */
    size_t n_used;         /* pairs counted in the means below */
    double magsim, angsim; /* means over the used pairs (0 when none) */
    double mean_dist_t, mean_dist_s;
    size_t n_along_t;          /* used pairs whose line search found t_S */
    size_t n_along_t_missed;   /* used pairs searched without finding it (beyond t_max): the ratio's bias */
    double mean_ratio_along_t; /* mean t_S / |d_T| over the n_along_t pairs */
    double magsim_along_t;     /* mean min(t_S, |d_T|) / max(t_S, |d_T|) over them */
} atk_boundary_summary;

/* Pairs atk_boundary_run writes for n samples of k classes: n, or n (k - 1) for ATK_BOUNDARY_ALL. */
size_t atk_boundary_count(const atk_boundary_cfg *cfg, size_t n, size_t k);

/* Measures x[n, D] with labels y[n] on teacher and student (same D and K >= 2, both reserved with
 * nn_net_reserve; each runs in slices of its own max_batch). Writes out[m] with m = atk_boundary_count
 * (pairs of one sample consecutive, samples in order), the summary of out into *sum (may be NULL), and,
 * when not NULL, the boundary points x + d_T into pt_t[m, D] and x + d_S into pt_s[m, D] (x itself for a
 * pair whose model did not cross or that is not correct). The nets' parameters and gradients, and x, are
 * not modified. Allocates its work memory once per call (O((max_batch + K) D)); nothing per step. Not
 * thread-safe (uses both nets). Errors: bad cfg, NULL arguments, mismatched or unreserved nets, a label
 * out of range, an x outside [lo, hi] or not finite (NN_E_INVAL / NN_E_SHAPE), non-finite logits or
 * gradients (NN_E_NUMERIC), allocation (NN_E_NOMEM), the nets' own errors. On error out is incomplete. */
int atk_boundary_run(nn_net *teacher, nn_net *student, const atk_boundary_cfg *cfg, const float *x,
                     const int *y, size_t n, atk_boundary_sample *out, float *pt_t, float *pt_s,
                     atk_boundary_summary *sum, nn_err *err);

/* Summarises s[m] into *sum, sums in index order (independent of threads). */
void atk_boundary_summarize(const atk_boundary_sample *s, size_t m, atk_boundary_summary *sum);

#endif
