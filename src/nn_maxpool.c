/* nn_maxpool.c - 2-D max pooling, like torch.nn.MaxPool2d(kernel, stride) without padding or dilation.
 *
 * Input x[N, C, H, W], output y[N, C, OH, OW], OH = floor((H - K) / s) + 1 (same for OW), s = stride or K.
 * The selected element of a window is torch's: the first maximum in row-major window order, and a NaN
 * anywhere in the window propagates (the last NaN wins, as in torch). Backward recomputes that argmax
 * from x (no aux memory). Work is an OpenMP loop over (sample, channel) planes writing disjoint memory;
 * the common 2x2 stride-2 case has branch-free loops (on random data a compare-and-branch mispredicts
 * often enough to make pooling cost several times more). */
#include <stdint.h>
#include <string.h>

#include "nn_layer.h"

#define POOL_PAR_MIN 32768 /* floats touched below which the loops run on one thread */

typedef struct pool_geom {
    size_t h, w, k, s, oh, ow;
} pool_geom;

static size_t pool_stride(const nn_layer_cfg *c) {
    return c->stride ? c->stride : c->kernel;
}

static pool_geom pool_geom_of(const nn_layer *l) {
    return (pool_geom){l->in.h, l->in.w, l->cfg.kernel, pool_stride(&l->cfg), l->out.h, l->out.w};
}

static int maxpool_setup(nn_layer *l, nn_err *err) {
    const nn_layer_cfg *c = &l->cfg;
    size_t lim = (size_t)1 << 20, s = pool_stride(c);
    if (c->kernel == 0) return NN_FAIL(err, NN_E_INVAL, "maxpool: kernel must be >= 1");
    if (c->pad != 0) return NN_FAIL(err, NN_E_INVAL, "maxpool: padding is not supported (pad %zu)", c->pad);
    if (l->in.c == 0 || l->in.h == 0 || l->in.w == 0)
        return NN_FAIL(err, NN_E_SHAPE, "maxpool: empty input %zux%zux%zu", l->in.c, l->in.h, l->in.w);
    if (c->kernel > lim || s > lim || l->in.c > lim || l->in.h > lim || l->in.w > lim)
        return NN_FAIL(err, NN_E_INVAL, "maxpool: a size exceeds %zu", lim);
    if (l->in.h < c->kernel || l->in.w < c->kernel)
        return NN_FAIL(err, NN_E_SHAPE,
                       "maxpool: kernel %zu is larger than the input %zux%zu: output would be empty",
                       c->kernel, l->in.h, l->in.w);
    l->out = (nn_shape){l->in.c, (l->in.h - c->kernel) / s + 1, (l->in.w - c->kernel) / s + 1};
    l->n_params = 0;
    l->n_aux = 0;
    l->n_scratch = 0;
    return NN_OK;
}

/* Offset in the plane x[H, W] of the selected element of window (oy, ox): torch's rule (see top). */
static inline size_t pool_argmax(const pool_geom *g, const float *x, size_t oy, size_t ox) {
    size_t y0 = oy * g->s, x0 = ox * g->s, best = y0 * g->w + x0;
    float m = x[best];
    for (size_t a = 0; a < g->k; a++)
        for (size_t b = 0; b < g->k; b++) {
            size_t o = (y0 + a) * g->w + x0 + b;
            float v = x[o];
            int t = (v > m) | (v != v);
            m = t ? v : m, best = t ? o : best;
        }
    return best;
}

/* Index in 0..3 of the selected element of the 2x2 window (a, b; c, d), torch's rule as written (the
 * fast paths below use it only for windows that may hold a NaN). */
static int pool_pick4(float a, float b, float c, float d) {
    const float v[4] = {a, b, c, d};
    float m = a;
    int k = 0;
    for (int j = 1; j < 4; j++)
        if (v[j] > m || v[j] != v[j]) m = v[j], k = j;
    return k;
}

/* The value of that element: plain compares (selects, no branch to mispredict on random data) unless the
 * window may hold a NaN (its sum is NaN: a NaN, or +inf with -inf), a rare and predictable branch. */
static inline float pool_max4(float a, float b, float c, float d) {
    float m = a, sum = a + b + c + d;
    m = b > m ? b : m;
    m = c > m ? c : m;
    m = d > m ? d : m;
    if (sum != sum) {
        const float v[4] = {a, b, c, d};
        m = v[pool_pick4(a, b, c, d)];
    }
    return m;
}

/* One plane, the common 2x2 stride-2 case: y[OH, OW] = selected element of each window of x[H, W]. */
static void pool_plane_2x2(const pool_geom *g, const float *restrict x, float *restrict y) {
    for (size_t oy = 0; oy < g->oh; oy++) {
        const float *r0 = x + 2 * oy * g->w, *r1 = r0 + g->w;
        float *yr = y + oy * g->ow;
        for (size_t ox = 0; ox < g->ow; ox++)
            yr[ox] = pool_max4(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
    }
}

/* Windows [0, ow) of one output row, 2x2 stride 2: rows d0, d1 of dx get dy[ox] at the selected element,
 * 0 at the other three. Branch-free (random data would mispredict branches): the selected element is the
 * first equal to the plain maximum, which is torch's rule when the window has no NaN, and the gradient is
 * dy's bits masked. Returns non-zero if some window may hold a NaN (its sum is NaN); the caller then redoes
 * the row with pool_pick4. */
static int pool_row_2x2_back(const float *restrict r0, const float *restrict r1, const float *restrict dy,
                             float *restrict d0, float *restrict d1, size_t ow) {
    uint32_t bad = 0;
    for (size_t ox = 0; ox < ow; ox++) {
        float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
        float m = a, sum = a + b + c + d;
        m = b > m ? b : m;
        m = c > m ? c : m;
        m = d > m ? d : m;
        uint32_t v, ka = -(uint32_t)(a == m), kb = -(uint32_t)(b == m) & ~ka;
        uint32_t kc = -(uint32_t)(c == m) & ~(ka | kb), kd = ~(ka | kb | kc);
        memcpy(&v, dy + ox, sizeof v);
        uint32_t gr[4] = {v & ka, v & kb, v & kc, v & kd};
        memcpy(d0 + 2 * ox, gr, 2 * sizeof *d0);
        memcpy(d1 + 2 * ox, gr + 2, 2 * sizeof *d1);
        bad |= (uint32_t)(sum != sum);
    }
    return bad != 0;
}

/* One plane, 2x2 stride 2: dx[H, W] = dy at each window's selected element, 0 elsewhere (the windows
 * tile the plane except an odd last row/column, which is zeroed). */
static void pool_plane_2x2_back(const pool_geom *g, const float *restrict x, const float *restrict dy,
                                float *restrict dx) {
    for (size_t oy = 0; oy < g->oh; oy++) {
        const float *r0 = x + 2 * oy * g->w, *r1 = r0 + g->w, *dyr = dy + oy * g->ow;
        float *d0 = dx + 2 * oy * g->w, *d1 = d0 + g->w;
        if (pool_row_2x2_back(r0, r1, dyr, d0, d1, g->ow))
            for (size_t ox = 0; ox < g->ow; ox++) {
                int k = pool_pick4(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
                d0[2 * ox] = d0[2 * ox + 1] = d1[2 * ox] = d1[2 * ox + 1] = 0.0f;
                (k < 2 ? d0 : d1)[2 * ox + (k & 1)] = dyr[ox];
            }
        if (g->w & 1) d0[g->w - 1] = d1[g->w - 1] = 0.0f;
    }
    if (g->h & 1) memset(dx + (g->h - 1) * g->w, 0, g->w * sizeof *dx);
}

/* y[N, C, OH, OW] = max over each K x K window of x[N, C, H, W]. */
static void maxpool_forward(nn_layer *l, const float *x, float *y, size_t n, int train, nn_rng *rng) {
    (void)train;
    (void)rng;
    pool_geom g = pool_geom_of(l);
    size_t planes = n * l->in.c, hw = g.h * g.w, ohw = g.oh * g.ow;
#pragma omp parallel for schedule(static) if (planes * hw > POOL_PAR_MIN)
    for (size_t q = 0; q < planes; q++) {
        const float *xp = x + q * hw;
        float *yp = y + q * ohw;
        if (g.k == 2 && g.s == 2) {
            pool_plane_2x2(&g, xp, yp);
            continue;
        }
        for (size_t oy = 0; oy < g.oh; oy++)
            for (size_t ox = 0; ox < g.ow; ox++)
                yp[oy * g.ow + ox] = xp[pool_argmax(&g, xp, oy, ox)];
    }
}

/* dx[i, c, h, w] = sum over windows whose selected element is (h, w) of dy[i, c, oy, ox]; 0 elsewhere. */
static void maxpool_backward(nn_layer *l, const float *x, const float *y, const float *dy, float *dx,
                             float *dw, size_t n) {
    (void)y;
    (void)dw;
    if (!dx) return;
    pool_geom g = pool_geom_of(l);
    size_t planes = n * l->in.c, hw = g.h * g.w, ohw = g.oh * g.ow;
#pragma omp parallel for schedule(static) if (planes * hw > POOL_PAR_MIN)
    for (size_t q = 0; q < planes; q++) {
        const float *xp = x + q * hw, *dyp = dy + q * ohw;
        float *dxp = dx + q * hw;
        if (g.k == 2 && g.s == 2) {
            pool_plane_2x2_back(&g, xp, dyp, dxp);
            continue;
        }
        memset(dxp, 0, hw * sizeof *dxp);
        for (size_t oy = 0; oy < g.oh; oy++)
            for (size_t ox = 0; ox < g.ow; ox++)
                dxp[pool_argmax(&g, xp, oy, ox)] += dyp[oy * g.ow + ox];
    }
}

const nn_layer_ops nn_maxpool_ops = {
    .kind = "maxpool",
    .fields = NN_F_KERNEL | NN_F_STRIDE,
    .setup = maxpool_setup,
    .init = NULL,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .params = NULL,
};
