/* atk_boundary.c - MagSim / AngSim: teacher and student decision boundaries along adversarial directions
 * (contract and definitions in atk_boundary.h; our reading of Heo et al., normalisation unverified).
 *
 * Per chunk of samples: clean logits of both nets (nn_net_predict) -> pairs (sample, target), "correct"
 * when both nets predict y -> the DeepFool-like targeted attack on the teacher, then on the student
 * (lockstep, running pairs compacted, slices of the net's max_batch, one nn_net_input_grad each) ->
 * d_M = clip(x + (1 + overshoot) r) - x -> refine (line search of M along d_M on [0, |d_M|]) -> per-pair
 * metrics -> the student's line search along the teacher's direction. The line search is a lockstep state
 * machine too: grid points t_max j / G, then bisection of the first crossed interval. */
#include "atk_boundary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_loss.h"

#define BD_NUDGE 1e-4 /* pushes the linearised step just past the boundary (logit units) */

/* A pair's state in the attack (RUN -> STOP) and in a line search (RUN -> FOUND | MISS; SKIP: not run). */
enum { BD_RUN = 0, BD_STOP, BD_FOUND, BD_MISS, BD_SKIP, BD_BAD };

typedef struct bd_work {
    nn_net *net[2]; /* 0 teacher, 1 student */
    const atk_boundary_cfg *cfg;
    const float *x;                /* the caller's x[n, d] */
    size_t d, k, per, mb;          /* features, classes, pairs per sample, the larger max_batch */
    size_t cap_s, cap;             /* samples and pairs per chunk */
    atk_boundary_sample *o;        /* the chunk's pairs (inside the caller's out) */
    size_t nj;                     /* pairs in the chunk */
    float *r[2];                   /* [cap, d]: the attack's r, then d_M */
    double *len[2];                /* [cap]: |d_M|, -1 when M did not cross */
    double *tmax, *tlo, *thi, *tq; /* [cap]: line search bounds and the t being evaluated */
    int *gj;                       /* [cap]: grid index 1..G, 0 while bisecting */
    unsigned char *state;          /* [cap] */
    size_t *idx;                   /* [cap]: the running pairs, compacted */
    const size_t *rows;            /* the current slice: pairs rows[0..nrows) */
    size_t nrows;
    float *xa, *g, *z; /* [mb, d] slice inputs, [mb, d] gradients, [mb, k] logits */
    int *sy, *st;      /* [mb] the slice's labels and targets */
    float *zc[2];      /* [cap_s, k]: clean logits of the chunk's samples */
} bd_work;

atk_boundary_cfg atk_boundary_cfg_default(void) {
    atk_boundary_cfg c;
    memset(&c, 0, sizeof c);
    c.steps = 50;
    c.overshoot = 0.02f;
    c.targets = ATK_BOUNDARY_SECOND;
    c.lo = 0.0f, c.hi = 1.0f;
    c.refine = 1;
    c.line_search = 1;
    c.ls_max = 4.0f;
    c.ls_grid = 8;
    c.ls_tol = 1e-4f;
    return c;
}

int atk_boundary_cfg_validate(const atk_boundary_cfg *c, nn_err *err) {
    if (!c) return NN_FAIL(err, NN_E_INVAL, "boundary: cfg is NULL");
    if (c->steps < 1 || c->steps > 100000)
        return NN_FAIL(err, NN_E_INVAL, "steps must be in [1, 100000] (got %d)", c->steps);
    if (!(c->overshoot >= 0.0f && c->overshoot <= 1.0f))
        return NN_FAIL(err, NN_E_INVAL, "overshoot must be in [0, 1] (got %g)", c->overshoot);
    if (c->targets != ATK_BOUNDARY_SECOND && c->targets != ATK_BOUNDARY_ALL)
        return NN_FAIL(err, NN_E_INVAL, "targets must be second or all (got %d)", (int)c->targets);
    if (!(c->lo < c->hi) || !isfinite(c->lo) || !isfinite(c->hi))
        return NN_FAIL(err, NN_E_INVAL, "range: lo (%g) must be below hi (%g), both finite", c->lo, c->hi);
    if (c->refine != 0 && c->refine != 1)
        return NN_FAIL(err, NN_E_INVAL, "refine must be 0 or 1 (got %d)", c->refine);
    if (c->line_search != 0 && c->line_search != 1)
        return NN_FAIL(err, NN_E_INVAL, "line_search must be 0 or 1 (got %d)", c->line_search);
    if (!(c->ls_max > 0.0f) || !isfinite(c->ls_max))
        return NN_FAIL(err, NN_E_INVAL, "ls_max must be > 0 and finite (got %g)", c->ls_max);
    if (c->ls_grid < 1 || c->ls_grid > 1024)
        return NN_FAIL(err, NN_E_INVAL, "ls_grid must be in [1, 1024] (got %d)", c->ls_grid);
    if (!(c->ls_tol > 0.0f) || !isfinite(c->ls_tol))
        return NN_FAIL(err, NN_E_INVAL, "ls_tol must be > 0 and finite (got %g)", c->ls_tol);
    return NN_OK;
}

size_t atk_boundary_count(const atk_boundary_cfg *cfg, size_t n, size_t k) {
    return cfg->targets == ATK_BOUNDARY_ALL && k >= 2 ? n * (k - 1) : n;
}

static const float *bd_x(const bd_work *w, size_t j) {
    return w->x + w->o[j].sample * w->d;
}

/* ---------- network calls on one slice ---------- */

typedef struct bd_seed {
    const int *y, *t;
    float *z;
} bd_seed;

/* Records the logits and seeds dL/dz = e_t - e_y per row. */
static int bd_seed_fn(void *ctx, const float *z, size_t n, size_t k, float *dz) {
    bd_seed *s = ctx;
    memcpy(s->z, z, n * k * sizeof *z);
    memset(dz, 0, n * k * sizeof *dz);
    for (size_t r = 0; r < n; r++)
        dz[r * k + (size_t)s->t[r]] = 1.0f, dz[r * k + (size_t)s->y[r]] = -1.0f;
    return 0;
}

/* xa[ns, D] -> logits z[ns, K] and g[ns, D] = d(z_t - z_y)/dx per row (labels y[ns], targets t[ns],
 * t != y). ns <= net->max_batch. Parameter gradients untouched. */
static int bd_margin_grad(nn_net *net, const float *xa, size_t ns, const int *y, const int *t, float *z,
                          float *g, nn_err *err) {
    bd_seed s = {y, t, z};
    return nn_net_input_grad(net, xa, ns, bd_seed_fn, &s, g, err);
}

/* xa[ns, D] -> logits z[ns, K] (eval mode). */
static int bd_logits(nn_net *net, const float *xa, size_t ns, float *z, nn_err *err) {
    const float *zz = NULL;
    int rc = nn_net_forward(net, xa, ns, 0, NULL, &zz, err);
    if (!rc) memcpy(z, zz, ns * net->n_classes * sizeof *z);
    return rc;
}

/* Pairs in state BD_RUN into w->idx; returns how many. */
static size_t bd_compact(bd_work *w) {
    size_t na = 0;
    for (size_t j = 0; j < w->nj; j++)
        if (w->state[j] == BD_RUN) w->idx[na++] = j;
    return na;
}

static int bd_any_bad(const bd_work *w, size_t *j) {
    for (size_t r = 0; r < w->nrows; r++)
        if (w->state[w->rows[r]] == BD_BAD) return *j = w->rows[r], 1;
    return 0;
}

/* ---------- the attack ---------- */

/* Slice inputs: xa[r] = clip(x + (1 + overshoot) r_m) of pair rows[r]. */
static void bd_gather_attack(bd_work *w, int m) {
    size_t d = w->d;
    double scale = 1.0 + (double)w->cfg->overshoot;
    float lo = w->cfg->lo, hi = w->cfg->hi;
#pragma omp parallel for schedule(static) if (w->nrows * d > 8192)
    for (size_t r = 0; r < w->nrows; r++) {
        size_t j = w->rows[r];
        const float *x = bd_x(w, j), *rm = w->r[m] + j * d;
        float *xa = w->xa + r * d;
        for (size_t e = 0; e < d; e++)
            xa[e] = fminf(fmaxf((float)((double)x[e] + scale * (double)rm[e]), lo), hi);
        w->sy[r] = w->o[j].label, w->st[r] = w->o[j].target;
    }
}

/* After an evaluation of row r: crossed -> STOP; else (unless last) one step r += (f + nudge) g / |g|^2. */
static void bd_step_row(bd_work *w, int m, size_t r, int last) {
    size_t j = w->rows[r], d = w->d, k = w->k;
    atk_boundary_sample *o = &w->o[j];
    const float *zr = w->z + r * k, *gr = w->g + r * d;
    for (size_t c = 0; c < k; c++)
        if (!isfinite(zr[c])) {
            w->state[j] = BD_BAD;
            return;
        }
    int pred;
    nn_argmax(zr, 1, k, &pred);
    if (pred != o->label) {
        *(m ? &o->crossed_s : &o->crossed_t) = 1;
        w->state[j] = BD_STOP;
        return;
    }
    if (last) {
        w->state[j] = BD_STOP;
        return;
    }
    double f = (double)zr[o->label] - (double)zr[o->target], gn2 = 0.0; /* f >= 0: y is still the argmax */
    for (size_t e = 0; e < d; e++)
        gn2 += (double)gr[e] * (double)gr[e];
    if (!isfinite(gn2)) {
        w->state[j] = BD_BAD;
        return;
    }
    double coef = (f + BD_NUDGE) / gn2;
    if (!(gn2 > 0.0) || !isfinite(coef)) { /* flat: no direction to move in */
        w->state[j] = BD_STOP;
        return;
    }
    float *rm = w->r[m] + j * d;
    for (size_t e = 0; e < d; e++)
        rm[e] = (float)((double)rm[e] + coef * (double)gr[e]);
    (*(m ? &o->steps_s : &o->steps_t))++;
}

/* Attacks every correct pair of the chunk on net m; r[m] holds the accumulated steps afterwards. */
static int bd_attack(bd_work *w, int m, nn_err *err) {
    nn_net *net = w->net[m];
    memset(w->r[m], 0, w->nj * w->d * sizeof(float));
    for (size_t j = 0; j < w->nj; j++)
        w->state[j] = w->o[j].correct ? BD_RUN : BD_SKIP;
    for (int it = 0;; it++) {
        size_t na = bd_compact(w), bad;
        int last = it == w->cfg->steps;
        if (na == 0) return NN_OK;
        for (size_t s0 = 0; s0 < na; s0 += net->max_batch) {
            w->rows = w->idx + s0;
            w->nrows = na - s0 < net->max_batch ? na - s0 : net->max_batch;
            bd_gather_attack(w, m);
            int rc = last ? bd_logits(net, w->xa, w->nrows, w->z, err)
                          : bd_margin_grad(net, w->xa, w->nrows, w->sy, w->st, w->z, w->g, err);
            if (rc) return rc;
#pragma omp parallel for schedule(static) if (w->nrows * w->d > 8192)
            for (size_t r = 0; r < w->nrows; r++)
                bd_step_row(w, m, r, last);
            if (bd_any_bad(w, &bad))
                return NN_FAIL(err, NN_E_NUMERIC,
                               "boundary: non-finite logits or gradient of the %s, sample %zu",
                               m ? "student" : "teacher", w->o[bad].sample);
        }
    }
}

/* r[m] -> d_M = clip(x + (1 + overshoot) r) - x for crossed pairs (0 otherwise); len[m] = |d_M| or -1. */
static void bd_finish_attack(bd_work *w, int m) {
    size_t d = w->d;
    double scale = 1.0 + (double)w->cfg->overshoot;
    float lo = w->cfg->lo, hi = w->cfg->hi;
#pragma omp parallel for schedule(static) if (w->nj * d > 8192)
    for (size_t j = 0; j < w->nj; j++) {
        const float *x = bd_x(w, j);
        float *rm = w->r[m] + j * d;
        int crossed = m ? w->o[j].crossed_s : w->o[j].crossed_t;
        double s2 = 0.0;
        for (size_t e = 0; e < d; e++) {
            float v = fminf(fmaxf((float)((double)x[e] + scale * (double)rm[e]), lo), hi);
            rm[e] = crossed ? v - x[e] : 0.0f;
            s2 += (double)rm[e] * (double)rm[e];
        }
        w->len[m][j] = crossed ? sqrt(s2) : -1.0;
    }
}

/* ---------- line search ---------- */

/* Slice inputs: xa[r] = clip(x + t dir / len) with t = tq of pair rows[r] (t on the grid or mid-interval). */
static void bd_gather_search(bd_work *w, const float *dir, const double *len) {
    size_t d = w->d;
    double G = (double)w->cfg->ls_grid;
    float lo = w->cfg->lo, hi = w->cfg->hi;
#pragma omp parallel for schedule(static) if (w->nrows * d > 8192)
    for (size_t r = 0; r < w->nrows; r++) {
        size_t j = w->rows[r];
        double t = w->gj[j] ? w->tmax[j] * (double)w->gj[j] / G : 0.5 * (w->tlo[j] + w->thi[j]);
        double s = t / len[j];
        const float *x = bd_x(w, j), *u = dir + j * d;
        float *xa = w->xa + r * d;
        for (size_t e = 0; e < d; e++)
            xa[e] = fminf(fmaxf((float)((double)x[e] + s * (double)u[e]), lo), hi);
        w->tq[j] = t;
    }
}

/* Row r evaluated at t = tq: grid -> the first crossed grid point opens the bisection; bisect -> halve. */
static void bd_search_row(bd_work *w, size_t r, int pred) {
    size_t j = w->rows[r];
    double t = w->tq[j], tol = (double)w->cfg->ls_tol;
    int crossed = pred != w->o[j].label;
    if (w->gj[j]) {
        if (crossed) {
            w->thi[j] = t, w->gj[j] = 0;
        } else {
            w->tlo[j] = t;
            if (++w->gj[j] > w->cfg->ls_grid) w->state[j] = BD_MISS;
        }
    } else {
        *(crossed ? &w->thi[j] : &w->tlo[j]) = t;
    }
    if (w->state[j] == BD_RUN && !w->gj[j] && !(w->thi[j] - w->tlo[j] > tol)) w->state[j] = BD_FOUND;
}

/* For the pairs in state BD_RUN with tmax set: the first t in (0, tmax] (to ls_tol) where net's argmax at
 * clip(x + t dir / len) is not y, into thi (state BD_FOUND), or BD_MISS. dir[cap, d], len[cap] > 0. */
static int bd_search(bd_work *w, nn_net *net, const float *dir, const double *len, nn_err *err) {
    for (size_t j = 0; j < w->nj; j++)
        if (w->state[j] == BD_RUN) w->gj[j] = 1, w->tlo[j] = 0.0, w->thi[j] = w->tmax[j];
    for (;;) {
        size_t na = bd_compact(w), bad;
        if (na == 0) return NN_OK;
        for (size_t s0 = 0; s0 < na; s0 += net->max_batch) {
            w->rows = w->idx + s0;
            w->nrows = na - s0 < net->max_batch ? na - s0 : net->max_batch;
            bd_gather_search(w, dir, len);
            int rc = bd_logits(net, w->xa, w->nrows, w->z, err);
            if (rc) return rc;
            for (size_t r = 0; r < w->nrows; r++) {
                const float *zr = w->z + r * w->k;
                int pred, fin = 1;
                for (size_t c = 0; c < w->k; c++)
                    fin &= isfinite(zr[c]) != 0;
                nn_argmax(zr, 1, w->k, &pred);
                if (!fin)
                    w->state[w->rows[r]] = BD_BAD;
                else
                    bd_search_row(w, r, pred);
            }
            if (bd_any_bad(w, &bad))
                return NN_FAIL(err, NN_E_NUMERIC, "boundary: non-finite logits in a line search, sample %zu",
                               w->o[bad].sample);
        }
    }
}

/* Refine: d_M shortened to M's first crossing on [x, x + d_M]. A miss (the end point re-evaluated on the
 * other side by rounding) keeps the attack's d_M. */
static int bd_refine(bd_work *w, int m, nn_err *err) {
    for (size_t j = 0; j < w->nj; j++) {
        w->state[j] = w->len[m][j] > 0.0 ? BD_RUN : BD_SKIP;
        w->tmax[j] = w->len[m][j];
    }
    int rc = bd_search(w, w->net[m], w->r[m], w->len[m], err);
    for (size_t j = 0; j < w->nj && !rc; j++) {
        if (w->state[j] != BD_FOUND || !(w->thi[j] < w->len[m][j])) continue;
        float *dm = w->r[m] + j * w->d;
        double s = w->thi[j] / w->len[m][j], s2 = 0.0;
        for (size_t e = 0; e < w->d; e++) {
            dm[e] = (float)(s * (double)dm[e]);
            s2 += (double)dm[e] * (double)dm[e];
        }
        w->len[m][j] = sqrt(s2);
    }
    return rc;
}

/* The largest t with x + t u inside [lo, hi] (u = dir / len); 0 when x is on the face it points out of. */
static double bd_tbox(const bd_work *w, size_t j) {
    const float *x = bd_x(w, j), *u = w->r[0] + j * w->d;
    double tb = HUGE_VAL, len = w->len[0][j];
    for (size_t e = 0; e < w->d; e++) {
        double ue = (double)u[e] / len, te = HUGE_VAL;
        if (ue > 0.0)
            te = ((double)w->cfg->hi - (double)x[e]) / ue;
        else if (ue < 0.0)
            te = ((double)w->cfg->lo - (double)x[e]) / ue;
        if (te < tb) tb = te;
    }
    return tb > 0.0 ? tb : 0.0;
}

/* The student's line search along the teacher's direction, for every pair whose teacher crossed. */
static int bd_along_teacher(bd_work *w, nn_err *err) {
    for (size_t j = 0; j < w->nj; j++) {
        w->state[j] = BD_SKIP;
        if (!(w->len[0][j] > 0.0)) continue;
        double tm = (double)w->cfg->ls_max * w->len[0][j], tb = bd_tbox(w, j);
        w->tmax[j] = tm < tb ? tm : tb;
        w->state[j] = w->tmax[j] > 0.0 ? BD_RUN : BD_MISS;
    }
    int rc = bd_search(w, w->net[1], w->r[0], w->len[0], err);
    for (size_t j = 0; j < w->nj && !rc; j++) {
        atk_boundary_sample *o = &w->o[j];
        if (w->state[j] == BD_SKIP) continue;
        o->found_along_t = w->state[j] == BD_FOUND;
        if (o->found_along_t)
            o->dist_s_along_t = (float)w->thi[j], o->ratio_along_t = (float)(w->thi[j] / w->len[0][j]);
    }
    return rc;
}

/* ---------- per chunk ---------- */

/* Clean logits of samples [s0, s0 + cs) and the chunk's pairs out[0..nj). */
static int bd_pairs(bd_work *w, size_t s0, size_t cs, const int *y, atk_boundary_sample *out, nn_err *err) {
    size_t k = w->k;
    for (int m = 0; m < 2; m++) {
        int rc = nn_net_predict(w->net[m], w->x + s0 * w->d, cs, w->zc[m], err);
        if (rc) return rc;
        for (size_t i = 0; i < cs * k; i++)
            if (!isfinite(w->zc[m][i]))
                return NN_FAIL(err, NN_E_NUMERIC, "boundary: non-finite %s logits on sample %zu",
                               m ? "student" : "teacher", s0 + i / k);
    }
    w->o = out, w->nj = cs * w->per;
    for (size_t i = 0; i < cs; i++) {
        int yi = y[s0 + i], pt, ps, second = -1;
        const float *zt = w->zc[0] + i * k;
        nn_argmax(zt, 1, k, &pt);
        nn_argmax(w->zc[1] + i * k, 1, k, &ps);
        for (size_t c = 0; c < k; c++)
            if ((int)c != yi && (second < 0 || zt[c] > zt[second])) second = (int)c;
        for (size_t p = 0; p < w->per; p++) {
            atk_boundary_sample *o = &out[i * w->per + p];
            memset(o, 0, sizeof *o);
            o->sample = s0 + i, o->label = yi, o->correct = pt == yi && ps == yi;
            o->target = w->cfg->targets == ATK_BOUNDARY_ALL ? (int)(p < (size_t)yi ? p : p + 1)
                        : o->correct                        ? second
                                                            : -1;
            o->dist_t = o->dist_s = o->dist_s_along_t = o->ratio_along_t = -1.0f;
            o->found_along_t = -1;
        }
    }
    return NN_OK;
}

/* Per-pair distances, MagSim, cos; the boundary points. */
static void bd_metrics(bd_work *w, float *pt_t, float *pt_s) {
    size_t d = w->d;
    for (size_t j = 0; j < w->nj; j++) {
        atk_boundary_sample *o = &w->o[j];
        const float *x = bd_x(w, j), *dt = w->r[0] + j * d, *ds = w->r[1] + j * d;
        double lt = w->len[0][j], ls = w->len[1][j], dot = 0.0;
        o->dist_t = (float)lt, o->dist_s = (float)ls;
        o->used = o->correct && o->crossed_t && o->crossed_s && lt > 0.0 && ls > 0.0;
        if (o->used) {
            for (size_t e = 0; e < d; e++)
                dot += (double)dt[e] * (double)ds[e];
            o->cos = (float)(dot / (lt * ls));
            o->magsim = (float)(lt < ls ? lt / ls : ls / lt);
        }
        for (size_t e = 0; pt_t && e < d; e++)
            pt_t[j * d + e] = x[e] + dt[e]; /* d_M = 0 when M did not cross */
        for (size_t e = 0; pt_s && e < d; e++)
            pt_s[j * d + e] = x[e] + ds[e];
    }
}

static int bd_chunk(bd_work *w, size_t s0, size_t cs, const int *y, atk_boundary_sample *out, float *pt_t,
                    float *pt_s, nn_err *err) {
    int rc = bd_pairs(w, s0, cs, y, out, err);
    for (int m = 0; m < 2 && !rc; m++) {
        rc = bd_attack(w, m, err);
        if (!rc) bd_finish_attack(w, m);
        if (!rc && w->cfg->refine) rc = bd_refine(w, m, err);
    }
    if (rc) return rc;
    bd_metrics(w, pt_t, pt_s);
    return w->cfg->line_search ? bd_along_teacher(w, err) : NN_OK;
}

/* ---------- the driver ---------- */

static int bd_check(nn_net *t, nn_net *s, const atk_boundary_cfg *cfg, const float *x, const int *y, size_t n,
                    const atk_boundary_sample *out, nn_err *err) {
    int rc = atk_boundary_cfg_validate(cfg, err);
    if (rc) return rc;
    if (!t || !s) return NN_FAIL(err, NN_E_INVAL, "boundary: teacher and student must not be NULL");
    if (n && (!x || !y || !out)) return NN_FAIL(err, NN_E_INVAL, "boundary: x, y and out must not be NULL");
    if (t->n_in != s->n_in || t->n_classes != s->n_classes)
        return NN_FAIL(err, NN_E_SHAPE, "boundary: teacher %zu -> %zu and student %zu -> %zu do not match",
                       t->n_in, t->n_classes, s->n_in, s->n_classes);
    if (t->n_classes < 2) return NN_FAIL(err, NN_E_SHAPE, "boundary: needs at least 2 classes");
    if (t->max_batch == 0 || s->max_batch == 0)
        return NN_FAIL(err, NN_E_INVAL, "boundary: both nets must be reserved (nn_net_reserve)");
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (size_t)y[i] >= t->n_classes)
            return NN_FAIL(err, NN_E_INVAL, "boundary: label %d of sample %zu out of range [0, %zu)", y[i], i,
                           t->n_classes);
    for (size_t i = 0; i < n * t->n_in; i++)
        if (!(x[i] >= cfg->lo && x[i] <= cfg->hi))
            return NN_FAIL(err, NN_E_INVAL, "boundary: x[%zu] of sample %zu = %g is outside [lo %g, hi %g]",
                           i % t->n_in, i / t->n_in, x[i], cfg->lo, cfg->hi);
    return NN_OK;
}

static void bd_free(bd_work *w) {
    free(w->r[0]), free(w->len[0]), free(w->gj), free(w->state), free(w->idx);
}

/* One allocation per type. floats: r 2 cap d, xa and g 2 mb d, z mb k, zc 2 cap_s k; doubles: 6 cap;
 * ints: cap + 2 mb; bytes: cap; indices: cap. */
static int bd_alloc(bd_work *w, nn_err *err) {
    size_t d = w->d, k = w->k, cap = w->cap, mb = w->mb;
    w->r[0] = malloc((2 * cap * d + 2 * mb * d + mb * k + 2 * w->cap_s * k) * sizeof(float));
    w->len[0] = malloc(6 * cap * sizeof(double));
    w->gj = malloc((cap + 2 * mb) * sizeof(int));
    w->state = malloc(cap);
    w->idx = malloc(cap * sizeof(size_t));
    if (!w->r[0] || !w->len[0] || !w->gj || !w->state || !w->idx) {
        bd_free(w);
        return NN_FAIL(err, NN_E_NOMEM, "boundary: out of memory for %zu pairs x %zu features", cap, d);
    }
    w->r[1] = w->r[0] + cap * d, w->xa = w->r[1] + cap * d, w->g = w->xa + mb * d, w->z = w->g + mb * d;
    w->zc[0] = w->z + mb * k, w->zc[1] = w->zc[0] + w->cap_s * k;
    w->len[1] = w->len[0] + cap, w->tmax = w->len[1] + cap, w->tlo = w->tmax + cap, w->thi = w->tlo + cap;
    w->tq = w->thi + cap;
    w->sy = w->gj + cap, w->st = w->sy + mb;
    return NN_OK;
}

int atk_boundary_run(nn_net *teacher, nn_net *student, const atk_boundary_cfg *cfg, const float *x,
                     const int *y, size_t n, atk_boundary_sample *out, float *pt_t, float *pt_s,
                     atk_boundary_summary *sum, nn_err *err) {
    int rc = bd_check(teacher, student, cfg, x, y, n, out, err);
    if (rc) return rc;
    size_t m = atk_boundary_count(cfg, n, teacher->n_classes);
    if (n == 0) {
        if (sum) atk_boundary_summarize(out, 0, sum);
        return NN_OK;
    }
    bd_work w;
    memset(&w, 0, sizeof w);
    w.net[0] = teacher, w.net[1] = student, w.cfg = cfg, w.x = x;
    w.d = teacher->n_in, w.k = teacher->n_classes;
    w.per = m / n;
    w.mb = teacher->max_batch > student->max_batch ? teacher->max_batch : student->max_batch;
    w.cap_s = w.mb / w.per ? w.mb / w.per : 1;
    if (w.cap_s > n) w.cap_s = n;
    w.cap = w.cap_s * w.per;
    if ((rc = bd_alloc(&w, err))) return rc;
    for (size_t s0 = 0; s0 < n && !rc; s0 += w.cap_s) {
        size_t cs = n - s0 < w.cap_s ? n - s0 : w.cap_s, p0 = s0 * w.per;
        rc = bd_chunk(&w, s0, cs, y, out + p0, pt_t ? pt_t + p0 * w.d : NULL, pt_s ? pt_s + p0 * w.d : NULL,
                      err);
    }
    bd_free(&w);
    if (!rc && sum) atk_boundary_summarize(out, m, sum);
    return rc;
}

void atk_boundary_summarize(const atk_boundary_sample *s, size_t m, atk_boundary_summary *sum) {
    memset(sum, 0, sizeof *sum);
    sum->n_pairs = m;
    for (size_t i = 0; i < m; i++) {
        sum->n_correct += s[i].correct != 0;
        if (!s[i].used) continue;
        sum->n_used++;
        sum->magsim += s[i].magsim, sum->angsim += s[i].cos;
        sum->mean_dist_t += s[i].dist_t, sum->mean_dist_s += s[i].dist_s;
        if (s[i].found_along_t == 0) sum->n_along_t_missed++;
        if (s[i].found_along_t != 1) continue;
        double a = s[i].dist_s_along_t, b = s[i].dist_t;
        sum->n_along_t++;
        sum->mean_ratio_along_t += s[i].ratio_along_t;
        sum->magsim_along_t += a < b ? a / b : b / a;
    }
    if (sum->n_used) {
        double u = (double)sum->n_used;
        sum->magsim /= u, sum->angsim /= u, sum->mean_dist_t /= u, sum->mean_dist_s /= u;
    }
    if (sum->n_along_t) {
        sum->mean_ratio_along_t /= (double)sum->n_along_t;
        sum->magsim_along_t /= (double)sum->n_along_t;
    }
}
