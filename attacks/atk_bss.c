/* atk_bss.c - boundary-supporting samples (Heo et al., AAAI 2019), as bhheo/BSS_distillation makes them
 * (attacks/attack_BSS.py, train_BSS_distillation.py; contract in atk_bss.h).
 *
 * Generation works on chunks of at most teacher->max_batch work rows (one row = one BSS: base sample
 * w / per, per = 1, or K - 1 for ATK_BSS_ALL). The chunk's samples live in the caller's out[] from the start.
 * Every evaluation is batched: over the whole chunk at first, then over the rows still active, gathered into
 * one smaller batch (the official code keeps stopped rows in the batch with a zero step size; a stopped row
 * never moves again, so its recorded logits stay current and the result is the same). An evaluation is one
 * nn_net_input_grad, or, when many rows are expected to cross, a forward and then nn_net_input_grad over the
 * rows still active only (bss_chunk).
 * Its dlogits function records the logits, sets base and target at the first evaluation, applies the stop
 * rule and seeds +1 at k, -1 at b for the active rows.
 * Then every active row steps (OpenMP over rows, disjoint memory):
 *     x <- clip(x + eta (z_b - z_k + 1e-4) g / |g|_2, lo, hi),   g = d(z_k - z_b)/dx
 * After cfg->steps steps a last forward gives the logits, predictions and crossings of the final samples.
 * Per-row arithmetic only (norms in double, in a fixed order), draws from per-sample streams: the results do
 * not depend on the thread count, nor on the chunking as far as the teacher's own numbers for a row do not
 * (OpenBLAS's sgemm can change a row's last bits with the number of rows; see atk.h). */
#include "atk_bss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_loss.h"
#include "nn_rng.h"

#define BSS_NUDGE 1e-4
#define BSS_OMP_MIN 16384 /* rows x features below which the step loop stays serial */

/* Row states. ACTIVE rows step; the others keep their x. */
enum { BSS_ACTIVE = 0, BSS_CROSSED, BSS_FLAT, BSS_BAD_LOGITS, BSS_BAD_GRAD, BSS_BAD_TARGET };

atk_bss_cfg atk_bss_cfg_default(void) {
    atk_bss_cfg c;
    memset(&c, 0, sizeof c);
    c.eta = 0.3f;
    c.steps = 10;
    c.max_base = 64;
    c.policy = ATK_BSS_SAMPLE;
    c.lo = 0.0f;
    c.hi = 1.0f;
    c.seed = 0;
    return c;
}

int atk_bss_cfg_validate(const atk_bss_cfg *c, nn_err *err) {
    if (!(c->eta > 0) || !isfinite(c->eta))
        return NN_FAIL(err, NN_E_INVAL, "eta must be > 0 and finite (got %g)", c->eta);
    if (c->steps < 1 || c->steps > 1000)
        return NN_FAIL(err, NN_E_INVAL, "steps must be in 1..1000 (got %d)", c->steps);
    if (c->max_base < 1) return NN_FAIL(err, NN_E_INVAL, "max_base must be >= 1 (got %zu)", c->max_base);
    if ((unsigned)c->policy > (unsigned)ATK_BSS_ALL)
        return NN_FAIL(err, NN_E_INVAL, "policy: unknown BSS target policy %d", (int)c->policy);
    if (!(c->lo < c->hi) || !isfinite(c->lo) || !isfinite(c->hi))
        return NN_FAIL(err, NN_E_INVAL, "range: lo (%g) must be below hi (%g), both finite", c->lo, c->hi);
    return NN_OK;
}

size_t atk_bss_count(const atk_bss_cfg *cfg, size_t n, size_t k) {
    if (cfg->policy != ATK_BSS_ALL) return n;
    return k >= 2 ? n * (k - 1) : 0;
}

/* ---------- selection ---------- */

typedef struct bss_cand {
    double score;
    size_t i;
} bss_cand;

/* Decreasing score, then increasing index. */
static int bss_cand_cmp(const void *a, const void *b) {
    const bss_cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* p[k] = softmax(z) at T = 1 in double. */
static void bss_softmax_d(const float *z, size_t k, double *p) {
    double zmax = z[0], sum = 0.0;
    for (size_t j = 1; j < k; j++)
        if (z[j] > zmax) zmax = z[j];
    for (size_t j = 0; j < k; j++)
        sum += p[j] = exp((double)z[j] - zmax);
    for (size_t j = 0; j < k; j++)
        p[j] /= sum;
}

static int bss_finite(const float *z, size_t k) {
    for (size_t j = 0; j < k; j++)
        if (!isfinite(z[j])) return 0;
    return 1;
}

/* sum_{j != y} (p_t,j - p_s,j)^2 of one sample (pt, ps: [k] scratch). */
static double bss_disagreement(const float *zt, const float *zs, int y, size_t k, double *pt, double *ps) {
    bss_softmax_d(zt, k, pt);
    bss_softmax_d(zs, k, ps);
    double s = 0.0;
    for (size_t j = 0; j < k; j++)
        if ((int)j != y) s += (pt[j] - ps[j]) * (pt[j] - ps[j]);
    return s;
}

static int bss_select_check(nn_net *teacher, nn_net *student, const int *y, size_t n, nn_err *err) {
    size_t k = teacher->n_classes;
    if (k < 2) return NN_FAIL(err, NN_E_SHAPE, "bss: the teacher has %zu classes, needs >= 2", k);
    if (student && (student->n_in != teacher->n_in || student->n_classes != k))
        return NN_FAIL(err, NN_E_SHAPE, "bss: student takes %zu -> %zu, teacher %zu -> %zu", student->n_in,
                       student->n_classes, teacher->n_in, k);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (size_t)y[i] >= k)
            return NN_FAIL(err, NN_E_INVAL, "bss: label %d of sample %zu out of range 0..%zu", y[i], i,
                           k - 1);
    return NN_OK;
}

/* Candidates (right for both nets) with their scores into c; returns their count or sets *rc. */
static size_t bss_candidates(const float *zt, const float *zs, const int *y, size_t n, size_t k, double *pt,
                             bss_cand *c, int *rc, nn_err *err) {
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        const float *ti = zt + i * k, *si = zs ? zs + i * k : NULL;
        if (!bss_finite(ti, k) || (si && !bss_finite(si, k))) {
            *rc = NN_FAIL(err, NN_E_NUMERIC, "bss: non-finite %s logits on sample %zu",
                          bss_finite(ti, k) ? "student" : "teacher", i);
            return 0;
        }
        int pt_i, ps_i = y[i];
        nn_argmax(ti, 1, k, &pt_i);
        if (si) nn_argmax(si, 1, k, &ps_i);
        if (pt_i != y[i] || ps_i != y[i]) continue;
        c[nc].i = i;
        c[nc++].score = si ? bss_disagreement(ti, si, y[i], k, pt, pt + k) : 0.0;
    }
    return nc;
}

int atk_bss_select(nn_net *teacher, nn_net *student, const atk_bss_cfg *cfg, const float *x, const int *y,
                   size_t n, const float *zt_given, size_t *sel, size_t *n_sel, nn_err *err) {
    int rc = atk_bss_cfg_validate(cfg, err);
    if (rc) return rc;
    if (!teacher || !n_sel) return NN_FAIL(err, NN_E_INVAL, "bss: teacher and n_sel must not be NULL");
    *n_sel = 0;
    if (n == 0) return NN_OK;
    if (!x || !y || !sel) return NN_FAIL(err, NN_E_INVAL, "bss: x, y and sel must not be NULL");
    if ((rc = bss_select_check(teacher, student, y, n, err))) return rc;
    size_t k = teacher->n_classes;
    float *zt = malloc(n * k * (student ? 2 : 1) * sizeof *zt);
    double *p = malloc(2 * k * sizeof *p);
    bss_cand *c = malloc(n * sizeof *c);
    if (!zt || !p || !c) {
        rc = NN_FAIL(err, NN_E_NOMEM, "bss: out of memory selecting from %zu samples", n);
        goto fail;
    }
    float *zs = student ? zt + n * k : NULL;
    if (zt_given)
        memcpy(zt, zt_given, n * k * sizeof *zt);
    else if ((rc = nn_net_predict(teacher, x, n, zt, err)))
        goto fail;
    if (student && (rc = nn_net_predict(student, x, n, zs, err))) goto fail;
    size_t nc = bss_candidates(zt, zs, y, n, k, p, c, &rc, err);
    if (rc) goto fail;
    if (student) qsort(c, nc, sizeof *c, bss_cand_cmp); /* without one, every score is 0: index order */
    *n_sel = nc < cfg->max_base ? nc : cfg->max_base;
    for (size_t r = 0; r < *n_sel; r++)
        sel[r] = c[r].i;
fail:
    free(zt), free(p), free(c);
    return rc;
}

/* ---------- target draws ---------- */

typedef struct bss_cls {
    double p;
    int j;
} bss_cls;

/* Decreasing probability, then increasing class index. */
static int bss_cls_cmp(const void *a, const void *b) {
    const bss_cls *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

/* k ~ softmax(z) restricted to the classes != b (the top one), by inverse CDF as the official code: the
 * remaining classes sorted by decreasing probability (ties: lower index first), the first whose cumulative
 * probability reaches u * (their total). Fallback (nothing reached): the second-best. s: [k] scratch. */
static int bss_draw(const float *z, size_t k, int b, double u, double *p, bss_cls *s) {
    bss_softmax_d(z, k, p);
    size_t m = 0;
    for (size_t j = 0; j < k; j++)
        if ((int)j != b) s[m].p = p[j], s[m++].j = (int)j;
    qsort(s, m, sizeof *s, bss_cls_cmp);
    double total = 0.0, cum = 0.0;
    for (size_t c = 0; c < m; c++)
        total += s[c].p;
    double thr = u * total;
    for (size_t c = 0; c < m; c++) {
        cum += s[c].p;
        if (cum >= thr) return s[c].j;
    }
    return s[0].j;
}

/* ---------- generation ---------- */

typedef struct bss_run {
    nn_net *net;
    const atk_bss_cfg *cfg;
    const float *x;             /* [n, d] base samples */
    const int *given;           /* [n] given targets or NULL */
    size_t n, d, k, per;        /* per: BSS per base sample */
    size_t first;               /* index of x[0] for the random streams */
    size_t cap;                 /* rows per chunk: min(teacher's max_batch, all rows) */
    size_t off, m;              /* this chunk: work rows off .. off + m - 1 */
    int it;                     /* evaluation index in the chunk: 0 = at the base samples */
    float *xa;                  /* [m, d] the chunk's current samples (inside the caller's out) */
    float *dx;                  /* [cap, d] d(z_k - z_b)/dx */
    float *z;                   /* [cap, k] logits of the last evaluation */
    int *base, *target, *steps; /* [cap] */
    unsigned char *state;       /* [cap] */
    size_t n_active;
    size_t *act;                /* [cap] rows of the current evaluation after the first (the active ones) */
    size_t n_eval;              /* rows in the current evaluation: m at it = 0, then the active rows */
    float *xc;                  /* [cap, d] the active rows' samples, gathered for their evaluation */
    double *p;   /* [k] draw scratch */
    bss_cls *cl; /* [k] draw scratch */
} bss_run;

static void bss_run_free(bss_run *s) {
    free(s->dx), free(s->base), free(s->state), free(s->p), free(s->cl), free(s->act), free(s->xc);
}

/* Buffers for chunks of up to s->cap rows: one allocation per type. */
static int bss_run_alloc(bss_run *s, nn_err *err) {
    size_t mb = s->cap, d = s->d, k = s->k;
    s->dx = malloc((mb * d + mb * k) * sizeof *s->dx);
    s->base = malloc(3 * mb * sizeof *s->base);
    s->state = malloc(mb);
    s->p = malloc(k * sizeof *s->p);
    s->cl = malloc(k * sizeof *s->cl);
    s->act = malloc(mb * sizeof *s->act);
    s->xc = malloc(mb * d * sizeof *s->xc);
    if (!s->dx || !s->base || !s->state || !s->p || !s->cl || !s->act || !s->xc) {
        bss_run_free(s);
        return NN_FAIL(err, NN_E_NOMEM, "bss: out of memory for chunks of %zu x %zu", mb, d);
    }
    s->z = s->dx + mb * d, s->target = s->base + mb, s->steps = s->target + mb;
    return NN_OK;
}

/* Base class and target of row r from its logits at the base sample (first evaluation). */
static void bss_init_row(bss_run *s, size_t r, const float *zr) {
    size_t w = s->off + r, i = w / s->per, k = s->k;
    s->steps[r] = 0, s->target[r] = -1, s->base[r] = -1;
    if (!bss_finite(zr, k)) {
        s->state[r] = BSS_BAD_LOGITS;
        return;
    }
    int b, t;
    nn_argmax(zr, 1, k, &b);
    s->base[r] = b;
    s->state[r] = BSS_ACTIVE;
    if (s->given) {
        t = s->given[i];
        if (t == b) s->state[r] = BSS_BAD_TARGET;
    } else if (s->cfg->policy == ATK_BSS_ALL) {
        size_t j = w % s->per;
        t = (int)j < b ? (int)j : (int)j + 1;
    } else {
        nn_rng rng;
        nn_rng_seed_stream(&rng, s->cfg->seed, (uint64_t)(s->first + i));
        if (s->cfg->policy == ATK_BSS_UNIFORM) {
            int j = (int)nn_rng_below(&rng, k - 1);
            t = j < b ? j : j + 1;
        } else { /* SAMPLE, and SECOND as a draw at u = 0 (the first remaining class in sorted order) */
            double u = s->cfg->policy == ATK_BSS_SAMPLE ? nn_rng_uniform_d(&rng) : 0.0;
            t = bss_draw(zr, k, b, u, s->p, s->cl);
        }
    }
    s->target[r] = t;
}

/* Row of the chunk evaluated as row j of the current evaluation. */
static size_t bss_row(const bss_run *s, size_t j) {
    return s->it == 0 ? j : s->act[j];
}

/* Records the logits z[n_eval, k] of the evaluated rows (a stopped row never moves again, so its recorded
 * logits stay current), sets up the rows at the first evaluation, stops the rows whose argmax left b, and
 * writes the seeds dz[n_eval, k] (NULL: none) of d(z_k - z_b). */
static void bss_record(bss_run *s, const float *z, float *dz) {
    size_t k = s->k;
    for (size_t j = 0; j < s->n_eval; j++) {
        size_t r = bss_row(s, j);
        float *zr = s->z + r * k;
        memcpy(zr, z + j * k, k * sizeof *z);
        if (s->it == 0) bss_init_row(s, r, zr);
        if (s->state[r] == BSS_ACTIVE) {
            int a;
            nn_argmax(zr, 1, k, &a);
            if (!bss_finite(zr, k))
                s->state[r] = BSS_BAD_LOGITS;
            else if (a != s->base[r])
                s->state[r] = BSS_CROSSED;
        }
        if (!dz) continue;
        memset(dz + j * k, 0, k * sizeof *dz);
        if (s->state[r] != BSS_ACTIVE) continue;
        dz[j * k + (size_t)s->target[r]] = 1.0f;
        dz[j * k + (size_t)s->base[r]] = -1.0f;
    }
    s->n_active = 0;
    for (size_t r = 0; r < s->m; r++)
        s->n_active += s->state[r] == BSS_ACTIVE;
}

static int bss_dlogits(void *ctx, const float *z, size_t n, size_t k, float *dz) {
    (void)n, (void)k;
    bss_record(ctx, z, dz);
    return 0;
}

/* The first row in a bad state as an error. */
static int bss_check(const bss_run *s, nn_err *err) {
    for (size_t r = 0; r < s->m; r++) {
        size_t i = (s->off + r) / s->per;
        switch (s->state[r]) {
        case BSS_BAD_LOGITS:
            return NN_FAIL(err, NN_E_NUMERIC, "bss: non-finite teacher logits for sample %zu", s->first + i);
        case BSS_BAD_GRAD:
            return NN_FAIL(err, NN_E_NUMERIC, "bss: non-finite gradient for sample %zu", s->first + i);
        case BSS_BAD_TARGET:
            return NN_FAIL(err, NN_E_INVAL, "bss: target %d of sample %zu is the teacher's top class",
                           s->target[r], s->first + i);
        default:
            break;
        }
    }
    return NN_OK;
}

/* One step of every active row (gradient row j of the evaluation); returns how many moved. A zero gradient
 * stops the row without a step. */
static size_t bss_step(bss_run *s) {
    size_t ne = s->n_eval, d = s->d, k = s->k, moved = 0;
    double eta = s->cfg->eta;
    float lo = s->cfg->lo, hi = s->cfg->hi;
#pragma omp parallel for schedule(static) reduction(+ : moved) if (ne * d >= BSS_OMP_MIN)
    for (size_t j = 0; j < ne; j++) {
        size_t r = bss_row(s, j);
        if (s->state[r] != BSS_ACTIVE) continue;
        const float *g = s->dx + j * d, *zr = s->z + r * k;
        double g2 = 0.0;
        for (size_t e = 0; e < d; e++)
            g2 += (double)g[e] * (double)g[e];
        if (!isfinite(g2)) {
            s->state[r] = BSS_BAD_GRAD;
            continue;
        }
        if (g2 == 0.0) {
            s->state[r] = BSS_FLAT;
            continue;
        }
        double coef = eta * ((double)zr[s->base[r]] - (double)zr[s->target[r]] + BSS_NUDGE) / sqrt(g2);
        float *xr = s->xa + r * d;
        for (size_t e = 0; e < d; e++) {
            float v = (float)((double)xr[e] + coef * (double)g[e]);
            xr[e] = fminf(fmaxf(v, lo), hi);
        }
        s->steps[r]++;
        moved++;
    }
    return moved;
}

/* Gathers the active rows' samples into xc (their order in act) for the next evaluation. */
static void bss_gather(bss_run *s) {
    size_t ne = 0, d = s->d;
    for (size_t r = 0; r < s->m; r++)
        if (s->state[r] == BSS_ACTIVE) s->act[ne++] = r;
    s->n_eval = ne;
#pragma omp parallel for schedule(static) if (ne * d >= BSS_OMP_MIN)
    for (size_t j = 0; j < ne; j++)
        memcpy(s->xc + j * d, s->xa + s->act[j] * d, d * sizeof *s->xc);
}

/* Evaluates the rows of xin (n_eval of them): logits, stop rule and, while steps remain, the input gradients
 * of the rows still active. Fused, one nn_net_input_grad over every row; split, a forward over every row,
 * then nn_net_input_grad over the rows the forward left active, gathered again, so that the rows that just
 * crossed cost no backward. */
static int bss_eval(bss_run *s, const float *xin, int split, nn_err *err) {
    int rc;
    if (s->it < s->cfg->steps && !split)
        return nn_net_input_grad(s->net, xin, s->n_eval, bss_dlogits, s, s->dx, err);
    const float *z;
    if ((rc = nn_net_forward(s->net, xin, s->n_eval, 0, NULL, &z, err))) return rc;
    bss_record(s, z, NULL);
    if (s->it == s->cfg->steps || s->n_active == 0) return NN_OK; /* bss_chunk checks the rows' states */
    if (s->n_active < s->n_eval) bss_gather(s); /* the logits of the rows it drops are recorded */
    return nn_net_input_grad(s->net, s->xc, s->n_eval, bss_dlogits, s, s->dx, err);
}

/* Runs the steps of the current chunk (s->off, s->m, s->xa set, xa holding the base samples). The first
 * evaluation covers every row; later ones only the rows still active, compacted into one smaller batch.
 * The first evaluation is fused (base samples are right: none stops). After a step, the evaluation is split
 * when many rows are expected to cross: always after the first step (with the official eta most rows cross
 * in one step), later when at least a third of the rows crossed at the previous evaluation; a backward costs
 * about two forwards, so splitting pays from about a third crossing on and costs one forward otherwise. */
static int bss_chunk(bss_run *s, nn_err *err) {
    int rc = NN_OK, split = 0;
    for (s->it = 0;; s->it++) {
        const float *xin = s->xa;
        s->n_eval = s->m;
        if (s->it > 0) {
            bss_gather(s);
            xin = s->xc;
        }
        size_t n_in = s->n_eval;
        rc = bss_eval(s, xin, split, err);
        if (!rc) rc = bss_check(s, err);
        if (rc || s->it == s->cfg->steps || s->n_active == 0) break;
        split = s->it == 0 || 3 * (n_in - s->n_active) >= n_in;
        size_t moved = bss_step(s);
        if ((rc = bss_check(s, err)) || moved == 0) break; /* nothing moved: the logits are current */
    }
    return rc;
}

/* Results and logits of the chunk's rows. */
static void bss_chunk_results(const bss_run *s, atk_bss_result *res, float *logits) {
    size_t d = s->d, k = s->k;
    for (size_t r = 0; r < s->m; r++) {
        size_t w = s->off + r, i = w / s->per;
        if (logits) memcpy(logits + w * k, s->z + r * k, k * sizeof *logits);
        if (!res) continue;
        atk_bss_result *o = res + w;
        const float *xr = s->xa + r * d, *x0 = s->x + i * d;
        double l2 = 0.0;
        for (size_t e = 0; e < d; e++)
            l2 += ((double)xr[e] - (double)x0[e]) * ((double)xr[e] - (double)x0[e]);
        o->sample = i, o->base = s->base[r], o->target = s->target[r], o->steps = s->steps[r];
        nn_argmax(s->z + r * k, 1, k, &o->pred);
        o->crossed = o->pred != o->base;
        o->l2 = (float)sqrt(l2);
    }
}

static int bss_generate_check(nn_net *t, const float *x, size_t n, size_t first, const int *targets,
                              const float *out, nn_err *err) {
    if (!x || !out) return NN_FAIL(err, NN_E_INVAL, "bss: x and out must not be NULL");
    if (t->max_batch == 0) return NN_FAIL(err, NN_E_INVAL, "bss: teacher not reserved (nn_net_reserve)");
    if (t->n_classes < 2)
        return NN_FAIL(err, NN_E_SHAPE, "bss: the teacher has %zu classes, needs >= 2", t->n_classes);
    for (size_t i = 0; targets && i < n; i++)
        if (targets[i] < 0 || (size_t)targets[i] >= t->n_classes)
            return NN_FAIL(err, NN_E_INVAL, "bss: target %d of sample %zu out of range 0..%zu", targets[i],
                           first + i, t->n_classes - 1);
    return NN_OK;
}

int atk_bss_generate(nn_net *teacher, const atk_bss_cfg *cfg, const float *x, size_t n, size_t first,
                     const int *targets, float *out, atk_bss_result *res, float *logits, nn_err *err) {
    int rc = atk_bss_cfg_validate(cfg, err);
    if (rc) return rc;
    if (!teacher) return NN_FAIL(err, NN_E_INVAL, "bss: no teacher");
    if (n == 0) return NN_OK;
    if ((rc = bss_generate_check(teacher, x, n, first, targets, out, err))) return rc;
    bss_run s;
    memset(&s, 0, sizeof s);
    s.net = teacher, s.cfg = cfg, s.x = x, s.given = targets, s.n = n, s.first = first;
    s.d = teacher->n_in, s.k = teacher->n_classes;
    s.per = targets || cfg->policy != ATK_BSS_ALL ? 1 : s.k - 1;
    size_t total = n * s.per, d = s.d;
    s.cap = total < teacher->max_batch ? total : teacher->max_batch;
    if ((rc = bss_run_alloc(&s, err))) return rc;
    for (s.off = 0; s.off < total && !rc; s.off += s.cap) {
        s.m = total - s.off < s.cap ? total - s.off : s.cap;
        s.xa = out + s.off * d;
        for (size_t r = 0; r < s.m; r++)
            memcpy(s.xa + r * d, x + (s.off + r) / s.per * d, d * sizeof *x);
        if (!(rc = bss_chunk(&s, err))) bss_chunk_results(&s, res, logits);
    }
    bss_run_free(&s);
    return rc;
}
