/* nn_maxpool.c - 2-D max pooling, like torch.nn.MaxPool2d(kernel, stride) without padding or dilation.
 *
 * Input x[N, C, H, W], output y[N, C, OH, OW], OH = floor((H - K) / s) + 1 (same for OW), s = stride or K.
 * The selected element of a window is torch's: the first maximum in row-major window order, and a NaN
 * anywhere in the window propagates (the last NaN wins, as in torch). Backward recomputes that argmax
 * from x (no aux memory). Work is an OpenMP loop over (sample, channel) planes writing disjoint memory. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "nn_layer.h"

#define POOL_PAR_MIN 32768 /* floats touched below which the loops run on one thread */

typedef struct pool_geom {
    size_t h, w, k, s, oh, ow;
} pool_geom;

static size_t pool_stride(const nn_layer_cfg *c) { return c->stride ? c->stride : c->kernel; }

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
        return NN_FAIL(err, NN_E_SHAPE, "maxpool: kernel %zu is larger than the input %zux%zu: output would be empty",
                       c->kernel, l->in.h, l->in.w);
    l->out = (nn_shape){l->in.c, (l->in.h - c->kernel) / s + 1, (l->in.w - c->kernel) / s + 1};
    if (nn_shape_size(l->in) > INT_MAX)
        return NN_FAIL(err, NN_E_INVAL, "maxpool: input of %zu floats per sample is too large", nn_shape_size(l->in));
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
            if (v > m || v != v) m = v, best = o;
        }
    return best;
}

/* One plane, the common 2x2 stride-2 case: y[OH, OW] = max of x[H, W] windows (torch's NaN rule). */
static void pool_plane_2x2(const pool_geom *g, const float *x, float *y) {
    for (size_t oy = 0; oy < g->oh; oy++) {
        const float *r0 = x + 2 * oy * g->w, *r1 = r0 + g->w;
        float *yr = y + oy * g->ow;
        for (size_t ox = 0; ox < g->ow; ox++) {
            float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            float m = a;
            m = (b > m || b != b) ? b : m;
            m = (c > m || c != c) ? c : m;
            m = (d > m || d != d) ? d : m;
            yr[ox] = m;
        }
    }
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
            for (size_t ox = 0; ox < g.ow; ox++) yp[oy * g.ow + ox] = xp[pool_argmax(&g, xp, oy, ox)];
    }
}

/* dx[i, c, h, w] = sum over windows whose selected element is (h, w) of dy[i, c, oy, ox]; 0 elsewhere. */
static void maxpool_backward(nn_layer *l, const float *x, const float *y, const float *dy, float *dx, float *dw,
                             size_t n) {
    (void)y;
    (void)dw;
    if (!dx) return;
    pool_geom g = pool_geom_of(l);
    size_t planes = n * l->in.c, hw = g.h * g.w, ohw = g.oh * g.ow;
#pragma omp parallel for schedule(static) if (planes * hw > POOL_PAR_MIN)
    for (size_t q = 0; q < planes; q++) {
        const float *xp = x + q * hw, *dyp = dy + q * ohw;
        float *dxp = dx + q * hw;
        memset(dxp, 0, hw * sizeof *dxp);
        for (size_t oy = 0; oy < g.oh; oy++)
            for (size_t ox = 0; ox < g.ow; ox++) dxp[pool_argmax(&g, xp, oy, ox)] += dyp[oy * g.ow + ox];
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
