/* test_atk_boundary.c - MagSim / AngSim (attacks/atk_boundary.c): the direction d(z_k - z_y)/dx against
 * central differences; distances, cosines and the line search against closed forms on affine
 * classifiers (hyperplane distances, ray-hyperplane intersections); identical and logit-scaled students;
 * targets, exclusion of misclassified samples, the box, the limits; MLP properties (the boundary points
 * are on the other side, nets and inputs untouched, refine never lengthens, 1 vs 2 threads); the summary;
 * cfg and argument errors.
 *
 * The file includes attacks/atk_boundary.c to reach its static pieces (bd_margin_grad); the library's
 * copy is then not linked into this executable. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
/* after test_util.h, which it needs */
#include "test_atk_util.h"

#include "atk_boundary.c"

/* ---------- affine classifiers in closed form ---------- */

/* z = W x + b, 4 features -> 3 classes. Every constant is a multiple of 1/8: exact in float, so the
 * double closed forms below describe exactly the nets the attack runs on. */
enum { LD = 4, LK = 3 };
typedef struct lin {
    double w[LK][LD], b[LK];
} lin;

static const lin LT = {{{1, 0.5, -0.5, 0.25}, {0.25, 1, 0.5, -0.5}, {-0.5, 0.25, 1, 0.75}}, {0.5, 0, -0.25}};
/* The student: every row moved, so its boundaries are tilted against the teacher's. */
static const lin LS = {{{1, 0.25, -0.5, 0.5}, {0.5, 1, 0.25, -0.25}, {-0.25, 0.5, 1, 0.5}},
                       {0.375, 0.125, -0.125}};

/* Points both classify as 0, away from the box [-10, 10]; the teacher's runner-up is 2, 1, 2, 1, 2, 1 (no
 * ties). */
enum { NP = 6 };
static const double PTS[NP][LD] = {{0.25, 0.125, 0.25, 0.625}, {0.75, 0.125, 0.625, 0.25},
                                   {0.25, 0.125, 0.125, 0.5},  {0.125, 0.375, 0.25, 0.375},
                                   {0.5, 0.625, 0.25, 0.875},  {0.25, 0.375, 0.125, 0.25}};

static nn_net *lin_net(const lin *m, double scale, size_t max_batch) {
    double w[LK * LD], b[LK];
    for (size_t j = 0; j < LK; j++) {
        b[j] = scale * m->b[j];
        for (size_t e = 0; e < LD; e++)
            w[j * LD + e] = scale * m->w[j][e];
    }
    return atk_test_linear_d(LD, LK, w, b, max_batch);
}

static void lin_z(const lin *m, const double *x, double *z) {
    for (size_t j = 0; j < LK; j++) {
        z[j] = m->b[j];
        for (size_t e = 0; e < LD; e++)
            z[j] += m->w[j][e] * x[e];
    }
}

static int lin_argmax(const lin *m, const double *x) {
    double z[LK];
    lin_z(m, x, z);
    int a = 0;
    for (int j = 1; j < LK; j++)
        if (z[j] > z[a]) a = j;
    return a;
}

/* u = (w_k - w_y) / |w_k - w_y|; returns |w_k - w_y|. */
static double lin_dir(const lin *m, int y, int k, double *u) {
    double n2 = 0.0;
    for (size_t e = 0; e < LD; e++)
        u[e] = m->w[k][e] - m->w[y][e], n2 += u[e] * u[e];
    for (size_t e = 0; e < LD; e++)
        u[e] /= sqrt(n2);
    return sqrt(n2);
}

/* The first t > 0 where the ray x + t u leaves class y: min over j of (z_y - z_j) / ((w_j - w_y) . u). */
static double lin_ray(const lin *m, const double *x, const double *u, int y, int *cls) {
    double z[LK], best = HUGE_VAL;
    lin_z(m, x, z);
    *cls = -1;
    for (int j = 0; j < LK; j++) {
        double a = 0.0;
        for (size_t e = 0; e < LD && j != y; e++)
            a += (m->w[j][e] - m->w[y][e]) * u[e];
        if (j == y || !(a > 0.0)) continue;
        if ((z[y] - z[j]) / a < best) best = (z[y] - z[j]) / a, *cls = j;
    }
    return best;
}

/* The expected numbers of the pair (x, y, k) for teacher T and student S. */
typedef struct lin_expect {
    double dist_t, dist_s; /* first crossing along each model's own w_k - w_y */
    double cos;            /* between the two w_k - w_y */
    double along;          /* first crossing of S along the teacher's direction */
    int cls_t, cls_s, cls_along;
} lin_expect;

static void lin_expect_pair(const lin *T, const lin *S, const double *x, int y, int k, lin_expect *e) {
    double ut[LD], us[LD];
    lin_dir(T, y, k, ut);
    lin_dir(S, y, k, us);
    e->dist_t = lin_ray(T, x, ut, y, &e->cls_t);
    e->dist_s = lin_ray(S, x, us, y, &e->cls_s);
    e->along = lin_ray(S, x, ut, y, &e->cls_along);
    e->cos = 0.0;
    for (size_t i = 0; i < LD; i++)
        e->cos += ut[i] * us[i];
}

static void pts_float(float *x, int *y) {
    for (size_t i = 0; i < NP; i++) {
        y[i] = 0;
        for (size_t e = 0; e < LD; e++)
            x[i * LD + e] = (float)PTS[i][e];
    }
}

static atk_boundary_cfg wide_cfg(void) {
    atk_boundary_cfg c = atk_boundary_cfg_default();
    c.lo = -10.0f, c.hi = 10.0f;
    return c;
}

static void run_ok(nn_net *t, nn_net *s, const atk_boundary_cfg *cfg, const float *x, const int *y, size_t n,
                   atk_boundary_sample *out, float *pt_t, float *pt_s, atk_boundary_summary *sum) {
    nn_err err;
    nn_err_clear(&err);
    if (atk_boundary_run(t, s, cfg, x, y, n, out, pt_t, pt_s, sum, &err))
        fail_msg("atk_boundary_run: %s", err.msg);
}

/* ---------- the direction ---------- */

typedef struct gc_ctx {
    nn_net *net;
    size_t n;
    const int *y, *t;
    unsigned char sig0[128], sig1[128];
} gc_ctx;

/* sum over rows of z_t - z_y; the ReLU pattern into sig if given. */
static double gc_margin(gc_ctx *g, const float *x, unsigned char *sig) {
    const float *z;
    assert_int_equal(nn_net_forward(g->net, x, g->n, 0, NULL, &z, NULL), NN_OK);
    size_t k = g->net->n_classes, hid = g->n * g->net->layers[1].out.c;
    assert_true(hid <= sizeof g->sig0);
    for (size_t e = 0; sig && e < hid; e++)
        sig[e] = g->net->act[1][e] > 0.0f;
    double s = 0.0;
    for (size_t r = 0; r < g->n; r++)
        s += (double)z[r * k + (size_t)g->t[r]] - (double)z[r * k + (size_t)g->y[r]];
    return s;
}

static double gc_f(void *p, const float *x) {
    return gc_margin(p, x, NULL);
}

static int gc_skip(void *p, const float *x, size_t i, double h) {
    gc_ctx *g = p;
    float *xm = (float *)x, keep = x[i];
    gc_margin(g, x, g->sig0);
    int crossed = 0;
    for (int s = -1; s <= 1 && !crossed; s += 2) {
        xm[i] = (float)((double)keep + s * h);
        gc_margin(g, xm, g->sig1);
        crossed = memcmp(g->sig0, g->sig1, sizeof g->sig0) != 0;
    }
    xm[i] = keep;
    return crossed;
}

/* g = d(z_t - z_y)/dx of every row against central differences; the logits equal a plain forward. */
static void test_bd_direction_gradcheck(void **state) {
    (void)state;
    enum { N = 4, D = 7, K = 5 };
    nn_net *net = atk_test_mlp(D, 10, K, 33, N);
    float x[N * D], z[N * K], g[N * D], zf[N * K];
    int y[N] = {0, 3, 2, 4}, t[N] = {1, 0, 4, 2};
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    for (size_t i = 0; i < N * D; i++)
        x[i] = -1.0f + 2.0f * nn_rng_uniform(&rng);
    nn_err err;
    assert_int_equal(bd_margin_grad(net, x, N, y, t, z, g, &err), NN_OK);
    assert_int_equal(nn_net_predict(net, x, N, zf, &err), NN_OK);
    assert_memory_equal(z, zf, sizeof z);
    gc_ctx c = {net, N, y, t, {0}, {0}};
    size_t checked = gradcheck(gc_f, gc_skip, &c, x, N * D, g, 1e-3, 1e-4, 1e-2, 64, "d(z_t - z_y)/dx");
    assert_true(checked >= N * D * 3 / 4);
    nn_net_destroy(net);
}

/* ---------- affine classifiers ---------- */

/* Teacher LT, tilted student LS: each model's distance is its hyperplane distance (z_y - z_k)/|w_k - w_y|
 * (the ray along w_k - w_y meets class k first at these points), cos is the cosine of the two w_k - w_y,
 * t_S is where the teacher's direction meets the student's hyperplane; one attack step each; the boundary
 * points lie along w_k - w_y at the reported distance; the summary is the mean of the closed forms. */
static void test_bd_linear_closed_form(void **state) {
    (void)state;
    nn_net *t = lin_net(&LT, 1.0, 4), *s = lin_net(&LS, 1.0, 3); /* slices of 4 and 3 */
    float x[NP * LD], pt[NP * LD], ps[NP * LD];
    int y[NP];
    pts_float(x, y);
    atk_boundary_cfg cfg = wide_cfg();
    atk_boundary_sample out[NP];
    atk_boundary_summary sum;
    run_ok(t, s, &cfg, x, y, NP, out, pt, ps, &sum);
    double magsim = 0.0, angsim = 0.0, ratio = 0.0;
    for (size_t i = 0; i < NP; i++) {
        double z[LK], ut[LD];
        lin_z(&LT, PTS[i], z);
        int k = z[1] > z[2] ? 1 : 2;
        assert_true(fabs(z[1] - z[2]) > 0.01);
        lin_expect e;
        lin_expect_pair(&LT, &LS, PTS[i], 0, k, &e);
        assert_true(e.cls_t == k && e.cls_s == k && e.cls_along == k); /* the design of PTS */
        double wn = lin_dir(&LT, 0, k, ut);
        assert_close(e.dist_t, (z[0] - z[k]) / wn, 1e-12, 0);
        assert_int_equal(out[i].sample, i);
        assert_int_equal(out[i].target, k);
        assert_true(out[i].correct && out[i].crossed_t && out[i].crossed_s && out[i].used);
        assert_int_equal(out[i].steps_t, 1);
        assert_int_equal(out[i].steps_s, 1);
        assert_close(out[i].dist_t, e.dist_t, 2e-4, 0);
        assert_close(out[i].dist_s, e.dist_s, 2e-4, 0);
        assert_close(out[i].cos, e.cos, 1e-5, 0);
        assert_int_equal(out[i].found_along_t, 1);
        assert_close(out[i].dist_s_along_t, e.along, 2e-4, 0);
        assert_close(out[i].ratio_along_t, e.along / e.dist_t, 2e-3, 0);
        double mt = fmin(e.dist_t, e.dist_s) / fmax(e.dist_t, e.dist_s);
        assert_close(out[i].magsim, mt, 2e-3, 0);
        magsim += mt / NP, angsim += e.cos / NP, ratio += e.along / e.dist_t / NP;
        for (size_t c = 0; c < LD; c++) /* x + dist u */
            assert_close(pt[i * LD + c], PTS[i][c] + out[i].dist_t * ut[c], 1e-5, 0);
    }
    assert_int_equal(sum.n_pairs, NP);
    assert_int_equal(sum.n_correct, NP);
    assert_int_equal(sum.n_used, NP);
    assert_int_equal(sum.n_along_t, NP);
    assert_int_equal(sum.n_along_t_missed, 0);
    assert_close(sum.magsim, magsim, 2e-3, 0);
    assert_close(sum.angsim, angsim, 1e-5, 0);
    assert_close(sum.mean_ratio_along_t, ratio, 2e-3, 0);
    assert_true(sum.angsim < 0.97); /* the tilt is visible */
    nn_net_destroy(t), nn_net_destroy(s);
}

/* Without refine the raw attack point counts: one step of (f + 1e-4)/|w|^2 (w_k - w_y), times 1 + overshoot.
 * Overshoot 0: within 1e-3 of the hyperplane distance and not before it; 0.02: 1.02 (f + 1e-4)/|w|. */
static void test_bd_linear_raw_step(void **state) {
    (void)state;
    nn_net *t = lin_net(&LT, 1.0, NP), *s = lin_net(&LS, 1.0, NP);
    float x[NP * LD];
    int y[NP];
    pts_float(x, y);
    for (int os = 0; os <= 1; os++) {
        atk_boundary_cfg cfg = wide_cfg();
        cfg.refine = 0, cfg.line_search = 0, cfg.overshoot = os ? 0.02f : 0.0f;
        atk_boundary_sample out[NP];
        run_ok(t, s, &cfg, x, y, NP, out, NULL, NULL, NULL);
        for (size_t i = 0; i < NP; i++) {
            double z[LK], u[LD];
            lin_z(&LT, PTS[i], z);
            int k = out[i].target;
            double wn = lin_dir(&LT, 0, k, u), dist = (z[0] - z[k]) / wn;
            assert_int_equal(out[i].steps_t, 1);
            assert_int_equal(out[i].found_along_t, -1);
            assert_close(out[i].dist_s_along_t, -1.0, 0, 0);
            if (os) {
                assert_close(out[i].dist_t, 1.02 * (z[0] - z[k] + 1e-4) / wn, 0, 1e-5);
            } else {
                assert_close(out[i].dist_t, dist, 1e-3, 0);
                assert_true(out[i].dist_t >= dist);
            }
        }
    }
    nn_net_destroy(t), nn_net_destroy(s);
}

/* A copy of the teacher: MagSim = AngSim = 1 and t_S = |d_T|. The teacher with logits times 2 has the same
 * boundaries: MagSim and AngSim 1 again (the steps differ only by the nudge), t_S / |d_T| = 1. */
static void test_bd_identical_and_scaled(void **state) {
    (void)state;
    float x[NP * LD];
    int y[NP];
    pts_float(x, y);
    for (int scaled = 0; scaled <= 1; scaled++) {
        nn_net *t = lin_net(&LT, 1.0, NP), *s = lin_net(&LT, scaled ? 2.0 : 1.0, NP);
        atk_boundary_cfg cfg = wide_cfg();
        atk_boundary_sample out[NP];
        atk_boundary_summary sum;
        run_ok(t, s, &cfg, x, y, NP, out, NULL, NULL, &sum);
        assert_int_equal(sum.n_used, NP);
        for (size_t i = 0; i < NP; i++) {
            assert_close(out[i].cos, 1.0, 1e-6, 0);
            assert_close(out[i].magsim, 1.0, scaled ? 1e-3 : 1e-7, 0);
            assert_close(out[i].dist_s_along_t, out[i].dist_t, 2e-4, 0);
        }
        assert_close(sum.magsim, 1.0, scaled ? 1e-3 : 1e-5, 0);
        assert_close(sum.angsim, 1.0, 1e-5, 0);
        assert_close(sum.mean_ratio_along_t, 1.0, 1e-3, 0);
        assert_close(sum.magsim_along_t, 1.0, 1e-3, 0);
        nn_net_destroy(t), nn_net_destroy(s);
    }
    /* MLP copy, same max_batch: the same computations, bit for bit. */
    enum { N = 12, D = 6, K = 4 };
    nn_net *t = atk_test_mlp(D, 12, K, 3, 5), *s = atk_test_mlp(D, 12, K, 3, 5);
    float xm[N * D], zt[N * K], pt[N * D], ps[N * D];
    int ym[N];
    nn_rng rng;
    nn_rng_seed(&rng, 17);
    for (size_t i = 0; i < N * D; i++)
        xm[i] = 0.2f + 0.6f * nn_rng_uniform(&rng);
    nn_err err;
    assert_int_equal(nn_net_predict(t, xm, N, zt, &err), NN_OK);
    nn_argmax(zt, N, K, ym);
    atk_boundary_cfg cfg = atk_boundary_cfg_default();
    atk_boundary_sample out[N];
    atk_boundary_summary sum;
    run_ok(t, s, &cfg, xm, ym, N, out, pt, ps, &sum);
    assert_true(sum.n_used >= N / 2);
    assert_memory_equal(pt, ps, sizeof pt);
    assert_close(sum.magsim, 1.0, 1e-12, 0);
    assert_close(sum.angsim, 1.0, 1e-6, 0);
    nn_net_destroy(t), nn_net_destroy(s);
}

/* Every class other than y, in class order. Along w_k - w_y a ray can meet another class first (5 such
 * pairs here, by the closed form): the distance is then that first crossing, which refine finds. */
static void test_bd_all_targets(void **state) {
    (void)state;
    nn_net *t = lin_net(&LT, 1.0, 5), *s = lin_net(&LS, 1.0, 5);
    float x[NP * LD];
    int y[NP];
    pts_float(x, y);
    atk_boundary_cfg cfg = wide_cfg();
    cfg.targets = ATK_BOUNDARY_ALL;
    assert_int_equal(atk_boundary_count(&cfg, NP, LK), NP * (LK - 1));
    atk_boundary_sample out[NP * (LK - 1)];
    atk_boundary_summary sum;
    run_ok(t, s, &cfg, x, y, NP, out, NULL, NULL, &sum);
    int other_first = 0;
    for (size_t i = 0; i < NP; i++)
        for (int k = 1; k < LK; k++) {
            const atk_boundary_sample *o = &out[i * (LK - 1) + (size_t)(k - 1)];
            lin_expect e;
            lin_expect_pair(&LT, &LS, PTS[i], 0, k, &e);
            other_first += (e.cls_t != k) + (e.cls_s != k);
            assert_int_equal(o->sample, i);
            assert_int_equal(o->target, k);
            assert_true(o->used);
            assert_close(o->dist_t, e.dist_t, 2e-4, 0);
            assert_close(o->dist_s, e.dist_s, 2e-4, 0);
            assert_close(o->cos, e.cos, 1e-5, 0);
            assert_int_equal(o->found_along_t, 1);
            assert_close(o->dist_s_along_t, e.along, 2e-4, 0);
        }
    assert_int_equal(other_first, 5);
    assert_int_equal(sum.n_used, NP * (LK - 1));
    nn_net_destroy(t), nn_net_destroy(s);
}

/* Samples misclassified by either model are excluded: at Q the teacher says 0 and the student 2. */
static void test_bd_excluded(void **state) {
    (void)state;
    static const double Q[LD] = {0.125, 0.125, 0.5, 0.125};
    assert_int_equal(lin_argmax(&LT, Q), 0);
    assert_int_equal(lin_argmax(&LS, Q), 2);
    enum { N = 5 };
    nn_net *t = lin_net(&LT, 1.0, 2), *s = lin_net(&LS, 1.0, 3);
    float x[N * LD], pt[N * (LK - 1) * LD];
    int y[N] = {0, 0, 2, 0, 1}; /* PTS[0]; Q: student wrong, teacher wrong, PTS[1]; Q: both wrong */
    const double *src[N] = {PTS[0], Q, Q, PTS[1], Q};
    for (size_t i = 0; i < N; i++)
        for (size_t e = 0; e < LD; e++)
            x[i * LD + e] = (float)src[i][e];
    for (int all = 0; all <= 1; all++) {
        atk_boundary_cfg cfg = wide_cfg();
        cfg.targets = all ? ATK_BOUNDARY_ALL : ATK_BOUNDARY_SECOND;
        size_t per = all ? LK - 1 : 1;
        atk_boundary_sample out[N * (LK - 1)];
        atk_boundary_summary sum;
        run_ok(t, s, &cfg, x, y, N, out, pt, NULL, &sum);
        assert_int_equal(sum.n_pairs, N * per);
        assert_int_equal(sum.n_correct, 2 * per);
        assert_int_equal(sum.n_used, 2 * per);
        for (size_t i = 0; i < N; i++)
            for (size_t p = 0; p < per; p++) {
                const atk_boundary_sample *o = &out[i * per + p];
                int ok = i == 0 || i == 3;
                assert_int_equal(o->sample, i);
                assert_int_equal(o->correct, ok);
                assert_int_equal(o->used, ok);
                if (ok) continue;
                assert_int_equal(o->target, all ? (int)(p < (size_t)y[i] ? p : p + 1) : -1);
                assert_true(!o->crossed_t && !o->crossed_s && o->steps_t == 0 && o->found_along_t == -1);
                assert_true(o->dist_t == -1.0f && o->dist_s == -1.0f && o->cos == 0.0f && o->magsim == 0.0f);
                assert_memory_equal(pt + (i * per + p) * LD, x + i * LD, LD * sizeof(float));
            }
    }
    nn_net_destroy(t), nn_net_destroy(s);
}

/* Limits: (a) in [0, 1] at B the teacher's boundary is 0.157 away, the box face 0.183 along its direction
 * and the student's boundary 0.236: t_max is the face, the search misses. (b) ls_max 0.6: found exactly
 * where the closed-form t_S / |d_T| is below 0.6 (ratios here 0.33 to 1.03), the others counted in
 * n_along_t_missed. (c) a teacher with z_0 ahead by 5 - sum |w_0 - w_j| > 0 everywhere in
 * [0, 1]^4 never crosses: it stops after `steps` steps, the pair is not used, no line search. */
static void test_bd_limits(void **state) {
    (void)state;
    static const double B[LD] = {0.125, 0.125, 0.125, 0.875};
    float xb[LD], x[NP * LD];
    int yb = 0, y[NP];
    for (size_t e = 0; e < LD; e++)
        xb[e] = (float)B[e];
    pts_float(x, y);
    nn_net *t = lin_net(&LT, 1.0, 4), *s = lin_net(&LS, 1.0, 4);
    atk_boundary_cfg cfg = atk_boundary_cfg_default();
    atk_boundary_sample out[NP];
    atk_boundary_summary sum;
    run_ok(t, s, &cfg, xb, &yb, 1, out, NULL, NULL, &sum);
    lin_expect e;
    lin_expect_pair(&LT, &LS, B, 0, 2, &e);
    assert_int_equal(out[0].target, 2);
    assert_true(out[0].used && e.along > 0.2);
    assert_close(out[0].dist_t, e.dist_t, 2e-4, 0);
    assert_int_equal(out[0].found_along_t, 0);
    assert_true(out[0].dist_s_along_t == -1.0f && out[0].ratio_along_t == -1.0f);
    assert_int_equal(sum.n_along_t_missed, 1);

    cfg = wide_cfg();
    cfg.ls_max = 0.6f;
    run_ok(t, s, &cfg, x, y, NP, out, NULL, NULL, &sum);
    assert_int_equal(sum.n_used, NP);
    size_t found = 0;
    for (size_t i = 0; i < NP; i++) {
        lin_expect_pair(&LT, &LS, PTS[i], 0, out[i].target, &e);
        int in = e.along / e.dist_t < 0.6;
        assert_true(fabs(e.along / e.dist_t - 0.6) > 0.05);
        assert_int_equal(out[i].found_along_t, in);
        if (in)
            assert_close(out[i].dist_s_along_t, e.along, 2e-4, 0);
        else
            assert_true(out[i].dist_s_along_t == -1.0f);
        found += (size_t)in;
    }
    assert_true(found >= 1 && found < NP);
    assert_int_equal(sum.n_along_t, found);
    assert_int_equal(sum.n_along_t_missed, NP - found);

    lin far = LT;
    far.b[0] = 5.0;
    nn_net *tf = lin_net(&far, 1.0, 4);
    cfg = atk_boundary_cfg_default();
    cfg.steps = 7;
    run_ok(tf, s, &cfg, x, y, NP, out, NULL, NULL, &sum);
    for (size_t i = 0; i < NP; i++) {
        assert_true(out[i].correct && !out[i].crossed_t && out[i].crossed_s && !out[i].used);
        assert_int_equal(out[i].steps_t, 7);
        assert_true(out[i].dist_t == -1.0f && out[i].dist_s > 0.0f);
        assert_int_equal(out[i].found_along_t, -1);
    }
    assert_int_equal(sum.n_used, 0);
    assert_close(sum.magsim, 0.0, 0, 0);
    nn_net_destroy(t), nn_net_destroy(s), nn_net_destroy(tf);
}

/* ---------- MLPs ---------- */

/* The line search reports the FIRST crossing. In 1-D from x = 0.15 along +1, the teacher z = (0, x - 0.4)
 * crosses at t = 0.25; the student, a ReLU net with z_1 - z_0 = -1 + 10 relu(x - 0.1) - 20 relu(x - 0.3)
 * + 20 relu(x - 0.6), is class 1 on t in (0.05, 0.25) and beyond 0.65 (x > 0.8). t_max = 4 * 0.25 = 1: the
 * grid of 8 sees the first region at t = 0.125 and bisects [0, 0.125] to 0.05; a grid of 1 bisects [0, 1],
 * whose midpoint 0.5 lies between the regions, and ends at 0.65. The student's own attack crosses at 0.05
 * along +1 as well: MagSim 0.05 / 0.25 = 0.2, cos 1. */
static void test_bd_line_search_first_crossing(void **state) {
    (void)state;
    const double tw[2] = {0, 1}, tb[2] = {0, -0.4};
    nn_net *t = atk_test_linear_d(1, 2, tw, tb, 2), *s = atk_test_mlp(1, 3, 2, 1, 2);
    const float sp[] = {1, 1, 1, -0.1f, -0.3f, -0.6f,         /* hidden: w[3, 1], b[3] */
                        0, 0, 0, 10,    -20,   20,    0, -1}; /* output: w[2, 3], b[2] */
    assert_int_equal(s->n_params, sizeof sp / sizeof sp[0]);
    memcpy(s->params, sp, sizeof sp);
    const float probe[4] = {0.15f, 0.25f, 0.5f, 0.9f}, want[4] = {-0.5f, 0.5f, -1.0f, 1.0f};
    float zs[8];
    nn_err err;
    assert_int_equal(nn_net_predict(s, probe, 4, zs, &err), NN_OK);
    for (size_t i = 0; i < 4; i++)
        assert_close(zs[2 * i + 1] - zs[2 * i], want[i], 1e-6, 0);
    float x = 0.15f;
    int y = 0;
    for (int grid = 1; grid <= 8; grid += 7) {
        atk_boundary_cfg cfg = wide_cfg();
        cfg.ls_grid = grid;
        atk_boundary_sample o;
        atk_boundary_summary sum;
        run_ok(t, s, &cfg, &x, &y, 1, &o, NULL, NULL, &sum);
        assert_true(o.used);
        assert_close(o.dist_t, 0.25, 2e-4, 0);
        assert_close(o.dist_s, 0.05, 2e-4, 0);
        assert_close(o.cos, 1.0, 1e-6, 0);
        assert_close(sum.magsim, 0.2, 2e-3, 0);
        assert_int_equal(o.found_along_t, 1);
        assert_close(o.dist_s_along_t, grid == 8 ? 0.05 : 0.65, 2e-4, 0);
    }
    nn_net_destroy(t), nn_net_destroy(s);
}

static float dist_l2(const float *a, const float *b, size_t d) {
    double s = 0.0;
    for (size_t e = 0; e < d; e++)
        s += ((double)a[e] - (double)b[e]) * ((double)a[e] - (double)b[e]);
    return (float)sqrt(s);
}

/* A teacher MLP and a student = the teacher with its parameters perturbed (so they mostly agree but their
 * boundaries differ), slices of 5 and 7: the boundary points are inside the box and on the
 * other side of each model's boundary at the reported distances; cos and MagSim follow from them; the
 * student is on the other side at t_S along the teacher's direction; refine never lengthens a distance
 * nor turns it; both nets' parameters and gradients and x are unchanged. */
static void test_bd_mlp_properties(void **state) {
    (void)state;
    enum { N = 20, D = 8, K = 4 };
    nn_net *t = atk_test_mlp(D, 16, K, 41, 5), *s = atk_test_mlp(D, 16, K, 41, 7);
    float x[N * D], x0[N * D], zt[N * K], pt[N * D], ps[N * D], pr[N * D], q[D], zq[K];
    int y[N];
    nn_rng rng;
    nn_rng_seed(&rng, 9);
    for (size_t i = 0; i < s->n_params; i++)
        s->params[i] += 0.15f * nn_rng_normal(&rng);
    for (size_t i = 0; i < N * D; i++)
        x[i] = -0.8f + 1.6f * nn_rng_uniform(&rng);
    memcpy(x0, x, sizeof x);
    nn_err err;
    assert_int_equal(nn_net_predict(t, x, N, zt, &err), NN_OK);
    nn_argmax(zt, N, K, y);
    for (size_t i = 0; i < t->n_params; i++)
        t->grads[i] = 0.25f * (float)(i % 7);
    for (size_t i = 0; i < s->n_params; i++)
        s->grads[i] = -0.5f * (float)(i % 5);
    float *keep = malloc(2 * (t->n_params + s->n_params) * sizeof(float));
    assert_non_null(keep);
    memcpy(keep, t->params, t->n_params * sizeof(float));
    memcpy(keep + t->n_params, t->grads, t->n_params * sizeof(float));
    memcpy(keep + 2 * t->n_params, s->params, s->n_params * sizeof(float));
    memcpy(keep + 2 * t->n_params + s->n_params, s->grads, s->n_params * sizeof(float));
    atk_boundary_cfg cfg = atk_boundary_cfg_default();
    cfg.lo = -1.0f, cfg.hi = 1.0f;
    atk_boundary_sample out[N], raw[N];
    atk_boundary_summary sum;
    run_ok(t, s, &cfg, x, y, N, out, pt, ps, &sum);
    assert_memory_equal(keep, t->params, t->n_params * sizeof(float));
    assert_memory_equal(keep + t->n_params, t->grads, t->n_params * sizeof(float));
    assert_memory_equal(keep + 2 * t->n_params, s->params, s->n_params * sizeof(float));
    assert_memory_equal(keep + 2 * t->n_params + s->n_params, s->grads, s->n_params * sizeof(float));
    assert_memory_equal(x, x0, sizeof x);
    free(keep);
    assert_true(sum.n_used >= N / 2 && sum.n_along_t >= 1);
    assert_true(sum.magsim > 0.0 && sum.magsim <= 1.0 && sum.angsim > -1.0 && sum.angsim < 1.0);
    cfg.refine = 0;
    run_ok(t, s, &cfg, x, y, N, raw, pr, NULL, NULL);
    for (size_t i = 0; i < N; i++) {
        const atk_boundary_sample *o = &out[i];
        const float *xi = x + i * D, *a = pt + i * D, *b = ps + i * D;
        if (!o->used) continue;
        for (size_t e = 0; e < D; e++)
            assert_true(a[e] >= -1.0f && a[e] <= 1.0f && b[e] >= -1.0f && b[e] <= 1.0f);
        int p;
        assert_int_equal(nn_net_predict(t, a, 1, zq, &err), NN_OK);
        nn_argmax(zq, 1, K, &p);
        assert_true(p != y[i]);
        assert_int_equal(nn_net_predict(s, b, 1, zq, &err), NN_OK);
        nn_argmax(zq, 1, K, &p);
        assert_true(p != y[i]);
        assert_close(dist_l2(a, xi, D), o->dist_t, 1e-6, 1e-5);
        assert_close(dist_l2(b, xi, D), o->dist_s, 1e-6, 1e-5);
        double dot = 0.0, rdot = 0.0, rn = dist_l2(pr + i * D, xi, D);
        for (size_t e = 0; e < D; e++) {
            dot += ((double)a[e] - xi[e]) * ((double)b[e] - xi[e]);
            rdot += ((double)a[e] - xi[e]) * ((double)pr[i * D + e] - xi[e]);
        }
        assert_close(o->cos, dot / ((double)o->dist_t * o->dist_s), 1e-5, 0);
        assert_close(o->magsim, fmin(o->dist_t, o->dist_s) / fmax(o->dist_t, o->dist_s), 1e-6, 0);
        assert_true(o->dist_t <= raw[i].dist_t * (1.0f + 1e-6f));
        assert_close(raw[i].dist_t, rn, 1e-6, 1e-5);
        assert_close(rdot / ((double)o->dist_t * rn), 1.0, 1e-5, 0);
        if (o->found_along_t != 1) continue;
        for (size_t e = 0; e < D; e++)
            q[e] = xi[e] + o->dist_s_along_t / o->dist_t * (a[e] - xi[e]);
        assert_int_equal(nn_net_predict(s, q, 1, zq, &err), NN_OK);
        nn_argmax(zq, 1, K, &p);
        assert_true(p != y[i]);
        assert_close(o->ratio_along_t, o->dist_s_along_t / o->dist_t, 0, 1e-6);
    }
    nn_net_destroy(t), nn_net_destroy(s);
}

/* 1 and 2 OpenMP threads give the same bytes; D = 300 with slices of 32 turns the per-row loops parallel. */
static void test_bd_threads(void **state) {
    (void)state;
    enum { N = 40, D = 300, K = 5 };
    nn_net *t = atk_test_mlp(D, 16, K, 51, 32), *s = atk_test_mlp(D, 8, K, 52, 32);
    float *x = malloc(N * D * sizeof(float)), *pt[2], *ps[2], zt[N * K];
    int y[N];
    atk_boundary_sample out[2][N * (K - 1)];
    atk_boundary_summary sum[2];
    nn_rng rng;
    nn_rng_seed(&rng, 12);
    for (size_t i = 0; i < (size_t)N * D; i++)
        x[i] = nn_rng_uniform(&rng);
    nn_err err;
    assert_int_equal(nn_net_predict(t, x, N, zt, &err), NN_OK);
    nn_argmax(zt, N, K, y);
    atk_boundary_cfg cfg = atk_boundary_cfg_default();
    cfg.targets = ATK_BOUNDARY_ALL;
    for (int th = 0; th < 2; th++) {
        pt[th] = malloc((size_t)N * (K - 1) * D * sizeof(float));
        ps[th] = malloc((size_t)N * (K - 1) * D * sizeof(float));
        assert_true(x && pt[th] && ps[th]);
        omp_set_num_threads(th + 1);
        memset(out[th], 0, sizeof out[th]);
        run_ok(t, s, &cfg, x, y, N, out[th], pt[th], ps[th], &sum[th]);
    }
    omp_set_num_threads(2);
    assert_true(sum[0].n_used > N);
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    assert_memory_equal(pt[0], pt[1], (size_t)N * (K - 1) * D * sizeof(float));
    assert_memory_equal(ps[0], ps[1], (size_t)N * (K - 1) * D * sizeof(float));
    assert_memory_equal(&sum[0], &sum[1], sizeof sum[0]);
    for (int th = 0; th < 2; th++)
        free(pt[th]), free(ps[th]);
    free(x);
    nn_net_destroy(t), nn_net_destroy(s);
}

/* ---------- summary, cfg, errors ---------- */

/* Hand-made pairs: means over the used ones only; the line-search means over the found ones. */
static void test_bd_summarize(void **state) {
    (void)state;
    atk_boundary_sample p[4];
    memset(p, 0, sizeof p);
    p[0] = (atk_boundary_sample){.correct = 1,
                                 .used = 1,
                                 .dist_t = 0.5f,
                                 .dist_s = 0.25f,
                                 .magsim = 0.5f,
                                 .cos = 0.75f,
                                 .found_along_t = 1,
                                 .dist_s_along_t = 1.0f,
                                 .ratio_along_t = 2.0f};
    p[1] = (atk_boundary_sample){.correct = 1,
                                 .used = 1,
                                 .dist_t = 1.0f,
                                 .dist_s = 1.0f,
                                 .magsim = 1.0f,
                                 .cos = 0.25f,
                                 .found_along_t = 0,
                                 .dist_s_along_t = -1,
                                 .ratio_along_t = -1};
    p[2] = (atk_boundary_sample){.correct = 1,
                                 .used = 0,
                                 .dist_t = 1.0f,
                                 .dist_s = -1.0f,
                                 .found_along_t = 1,
                                 .dist_s_along_t = 3.0f,
                                 .ratio_along_t = 3.0f};
    p[3] = (atk_boundary_sample){.correct = 0, .dist_t = -1, .dist_s = -1, .found_along_t = -1};
    atk_boundary_summary s;
    atk_boundary_summarize(p, 4, &s);
    assert_int_equal(s.n_pairs, 4);
    assert_int_equal(s.n_correct, 3);
    assert_int_equal(s.n_used, 2);
    assert_close(s.magsim, 0.75, 1e-12, 0);
    assert_close(s.angsim, 0.5, 1e-12, 0);
    assert_close(s.mean_dist_t, 0.75, 1e-12, 0);
    assert_close(s.mean_dist_s, 0.625, 1e-12, 0);
    assert_int_equal(s.n_along_t, 1);
    assert_int_equal(s.n_along_t_missed, 1);
    assert_close(s.mean_ratio_along_t, 2.0, 1e-12, 0);
    assert_close(s.magsim_along_t, 0.5, 1e-12, 0);
    atk_boundary_summarize(p, 0, &s);
    assert_int_equal(s.n_used, 0);
    assert_close(s.magsim, 0.0, 0, 0);
}

static void expect_invalid(const atk_boundary_cfg *c, const char *field) {
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(atk_boundary_cfg_validate(c, &err), NN_E_INVAL);
    if (!strstr(err.msg, field)) fail_msg("message \"%s\" does not name %s", err.msg, field);
}

static void test_bd_cfg_validate(void **state) {
    (void)state;
    atk_boundary_cfg d = atk_boundary_cfg_default(), c;
    nn_err err;
    assert_int_equal(atk_boundary_cfg_validate(&d, &err), NN_OK);
    assert_true(d.steps == 50 && d.overshoot == 0.02f && d.targets == ATK_BOUNDARY_SECOND && d.lo == 0.0f &&
                d.hi == 1.0f && d.refine == 1 && d.line_search == 1 && d.ls_max == 4.0f && d.ls_grid == 8 &&
                d.ls_tol == 1e-4f);
#define BAD(stmt, field) (c = d, stmt, expect_invalid(&c, field))
    BAD(c.steps = 0, "steps");
    BAD(c.steps = 100001, "steps");
    BAD(c.overshoot = -0.1f, "overshoot");
    BAD(c.overshoot = NAN, "overshoot");
    BAD(c.targets = (atk_boundary_targets)7, "targets");
    BAD(c.lo = 1.0f, "lo");
    BAD(c.hi = INFINITY, "hi");
    BAD(c.refine = 2, "refine");
    BAD(c.line_search = -1, "line_search");
    BAD(c.ls_max = 0.0f, "ls_max");
    BAD(c.ls_grid = 0, "ls_grid");
    BAD(c.ls_grid = 1025, "ls_grid");
    BAD(c.ls_tol = 0.0f, "ls_tol");
    BAD(c.ls_tol = NAN, "ls_tol");
#undef BAD
    assert_int_equal(atk_boundary_cfg_validate(NULL, &err), NN_E_INVAL);
}

static void test_bd_errors(void **state) {
    (void)state;
    nn_net *t = lin_net(&LT, 1.0, 4), *s = lin_net(&LS, 1.0, 4), *s5 = atk_test_mlp(5, 4, LK, 1, 4);
    nn_layer_cfg dense = nn_layer_cfg_default("dense");
    dense.units = LK;
    nn_net *unres = NULL;
    nn_err err;
    assert_int_equal(nn_net_create(&unres, (nn_shape){LD, 1, 1}, &dense, 1, &err), NN_OK);
    float x[NP * LD];
    int y[NP];
    pts_float(x, y); /* only the first two samples are used */
    atk_boundary_cfg cfg = atk_boundary_cfg_default(), bad = cfg;
    bad.steps = 0;
    atk_boundary_sample out[2];
#define EXPECT(call, code, text)                                                                             \
    do {                                                                                                     \
        nn_err_clear(&err);                                                                                  \
        assert_int_equal((call), (code));                                                                    \
        if (!strstr(err.msg, text)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, text);                  \
    } while (0)
    EXPECT(atk_boundary_run(t, s, &bad, x, y, 2, out, NULL, NULL, NULL, &err), NN_E_INVAL, "steps");
    EXPECT(atk_boundary_run(t, NULL, &cfg, x, y, 2, out, NULL, NULL, NULL, &err), NN_E_INVAL, "NULL");
    EXPECT(atk_boundary_run(t, s, &cfg, x, y, 2, NULL, NULL, NULL, NULL, &err), NN_E_INVAL, "NULL");
    EXPECT(atk_boundary_run(t, s5, &cfg, x, y, 2, out, NULL, NULL, NULL, &err), NN_E_SHAPE, "do not match");
    EXPECT(atk_boundary_run(t, unres, &cfg, x, y, 2, out, NULL, NULL, NULL, &err), NN_E_INVAL, "reserved");
    y[1] = LK;
    EXPECT(atk_boundary_run(t, s, &cfg, x, y, 2, out, NULL, NULL, NULL, &err), NN_E_INVAL,
           "label 3 of sample 1");
    y[1] = -1;
    EXPECT(atk_boundary_run(t, s, &cfg, x, y, 2, out, NULL, NULL, NULL, &err), NN_E_INVAL, "out of range");
    y[1] = 0;
    x[LD + 2] = 1.5f;
    EXPECT(atk_boundary_run(t, s, &cfg, x, y, 2, out, NULL, NULL, NULL, &err), NN_E_INVAL,
           "x[2] of sample 1");
    x[LD + 2] = NAN;
    EXPECT(atk_boundary_run(t, s, &cfg, x, y, 2, out, NULL, NULL, NULL, &err), NN_E_INVAL, "outside");
#undef EXPECT
    atk_boundary_summary sum;
    sum.n_used = 99;
    assert_int_equal(atk_boundary_run(t, s, &cfg, NULL, NULL, 0, NULL, NULL, NULL, &sum, &err), NN_OK);
    assert_int_equal(sum.n_used, 0);
    nn_net_destroy(t), nn_net_destroy(s), nn_net_destroy(s5), nn_net_destroy(unres);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bd_direction_gradcheck),
        cmocka_unit_test(test_bd_linear_closed_form),
        cmocka_unit_test(test_bd_linear_raw_step),
        cmocka_unit_test(test_bd_identical_and_scaled),
        cmocka_unit_test(test_bd_all_targets),
        cmocka_unit_test(test_bd_excluded),
        cmocka_unit_test(test_bd_limits),
        cmocka_unit_test(test_bd_line_search_first_crossing),
        cmocka_unit_test(test_bd_mlp_properties),
        cmocka_unit_test(test_bd_threads),
        cmocka_unit_test(test_bd_summarize),
        cmocka_unit_test(test_bd_cfg_validate),
        cmocka_unit_test(test_bd_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
