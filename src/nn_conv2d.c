/* nn_conv2d.c - 2-D convolution, PyTorch Conv2d layout (square kernel, stride, symmetric zero padding).
 *
 * Parameters: "weight" W[F, C, K, K] at offset 0, then "bias" b[F].
 * Input x[N, C, H, W], output y[N, F, OH, OW], OH = (H + 2p - K) / s + 1 (same for OW); P = OH * OW.
 *
 * im2col + sgemm on chunks of b samples: col[C*K*K, b*P] (row r = (c, kh, kw), column i*P + p = sample i,
 * pixel p), Y'[F, b*P] = W[F, CKK] col, permuted to NCHW with the bias added. Backward: dY' = dy permuted,
 * dW += dY' col^T, dcol = W^T dY', dx = col2im(dcol). The chunk (b from the geometry: its col + Y' about
 * CONV_CHUNK_FLOATS) stays in cache between im2col, sgemm and col2im; chunks are spread over OpenMP threads,
 * each running single-threaded sgemms in its own slice of the scratch. Measured on the MNIST CNN's layers
 * at batch 128, this is ~1.6x faster than one whole-batch sgemm per step, whose 85 MB col goes through
 * memory. The sgemms are nn_gemm.h's (AVX-512 kernels where the CPU has them, ~2x OpenBLAS's Haswell
 * kernels on these shapes; cblas_sgemm elsewhere). No result depends on the thread count: a chunk's
 * numbers depend only on its samples, and the per-chunk weight gradients are summed in chunk order. */
#include <limits.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "nn_gemm.h"
#include "nn_layer.h"

/* Below this many floats touched, the OpenMP loops run on one thread (parallel start-up costs more). */
#define CONV_PAR_MIN 32768
/* Target size in floats of one chunk's col + Y' (about the 2 MB L2 of a core here; 0.25-1.5x all measure
 * within 2% on the MNIST CNN), and the fewest chunks a batch is cut into when it allows (thread balance). */
#define CONV_CHUNK_FLOATS (512 * 1024)
#define CONV_MIN_CHUNKS 4

typedef struct conv_geom {
    size_t c, h, w;    /* input */
    size_t f, k, s, p; /* filters, kernel, stride, pad */
    size_t oh, ow, np; /* output height, width, pixels per sample */
    size_t ckk;        /* C*K*K: rows of col, columns of W */
} conv_geom;

static conv_geom conv_geom_of(const nn_layer *l) {
    conv_geom g;
    g.c = l->in.c, g.h = l->in.h, g.w = l->in.w;
    g.f = l->cfg.filters, g.k = l->cfg.kernel, g.s = l->cfg.stride, g.p = l->cfg.pad;
    g.oh = l->out.h, g.ow = l->out.w, g.np = g.oh * g.ow;
    g.ckk = g.c * g.k * g.k;
    return g;
}

static int conv2d_setup(nn_layer *l, nn_err *err) {
    const nn_layer_cfg *c = &l->cfg;
    /* per-dimension sanity bound: keeps every product below far from overflowing size_t */
    size_t lim = (size_t)1 << 20;
    if (c->filters == 0) return NN_FAIL(err, NN_E_INVAL, "conv2d: filters must be >= 1");
    if (c->kernel == 0) return NN_FAIL(err, NN_E_INVAL, "conv2d: kernel must be >= 1");
    if (c->stride == 0) return NN_FAIL(err, NN_E_INVAL, "conv2d: stride must be >= 1");
    if (c->init != NN_INIT_DEFAULT && c->init != NN_INIT_HE && c->init != NN_INIT_GLOROT)
        return NN_FAIL(err, NN_E_INVAL, "conv2d: unknown init %d", c->init);
    if (l->in.c == 0 || l->in.h == 0 || l->in.w == 0)
        return NN_FAIL(err, NN_E_SHAPE, "conv2d: empty input %zux%zux%zu", l->in.c, l->in.h, l->in.w);
    if (c->filters > lim || c->kernel > lim || c->stride > lim || c->pad > lim || l->in.c > lim ||
        l->in.h > lim || l->in.w > lim)
        return NN_FAIL(err, NN_E_INVAL, "conv2d: a size exceeds %zu", lim);
    size_t hp = l->in.h + 2 * c->pad, wp = l->in.w + 2 * c->pad;
    if (hp < c->kernel || wp < c->kernel)
        return NN_FAIL(err, NN_E_SHAPE,
                       "conv2d: kernel %zu is larger than the padded input %zux%zu (input %zux%zu, pad %zu): "
                       "output would be empty",
                       c->kernel, hp, wp, l->in.h, l->in.w, c->pad);
    size_t oh = (hp - c->kernel) / c->stride + 1, ow = (wp - c->kernel) / c->stride + 1;
    size_t ckk = l->in.c * c->kernel * c->kernel, np = oh * ow;
    /* nn_gemm's cblas fallback takes int dimensions (a chunk's b*P fits too, see conv_chunk) */
    if (ckk > INT_MAX / 4 || np > INT_MAX / 4 || c->filters * ckk > INT_MAX / 4)
        return NN_FAIL(err, NN_E_INVAL, "conv2d: %zu filters x %zu inputs x %zu pixels is too large",
                       c->filters, ckk, np);
    l->out = (nn_shape){c->filters, oh, ow};
    l->n_params = c->filters * ckk + c->filters;
    l->n_aux = 0;
    /* per sample: a share of the chunk buffers (col + Y') and at most one chunk's dW + db */
    l->n_scratch = (ckk + c->filters) * np + c->filters * ckk + c->filters;
    return NN_OK;
}

/* W[F, CKK] ~ he/glorot with fan_in = C*K*K, fan_out = F*K*K (torch's convention); b[F] = 0. */
static void conv2d_init(nn_layer *l, nn_rng *rng) {
    conv_geom g = conv_geom_of(l);
    nn_init_weights(l->w, g.f * g.ckk, g.ckk, g.f * g.k * g.k, l->cfg.init, rng);
    for (size_t j = 0; j < g.f; j++)
        l->w[g.f * g.ckk + j] = 0.0f;
}

/* Output columns [lo, hi) whose input column ow*s + kk - p lies inside [0, len). */
static void conv_valid_range(size_t len, size_t out, size_t s, size_t p, size_t kk, size_t *lo, size_t *hi) {
    size_t a = p > kk ? (p - kk + s - 1) / s : 0;             /* first ow with ow*s + kk >= p */
    size_t b = len + p > kk ? (len + p - kk - 1) / s + 1 : 0; /* first ow with ow*s + kk - p >= len */
    if (b > out) b = out;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

/* Kernel offset (kh, kw): output rows [ylo, yhi) x columns [lo, hi) read inside the input; off = offset in
 * a channel plane of the input under output (ylo, lo), meaningful only when the window is not empty. */
typedef struct conv_win {
    size_t ylo, yhi, lo, hi, off;
} conv_win;

static conv_win conv_win_of(const conv_geom *g, size_t kh, size_t kw) {
    conv_win v;
    conv_valid_range(g->h, g->oh, g->s, g->p, kh, &v.ylo, &v.yhi);
    conv_valid_range(g->w, g->ow, g->s, g->p, kw, &v.lo, &v.hi);
    if (v.lo == v.hi) v.yhi = v.ylo; /* empty */
    v.off = v.ylo < v.yhi ? (v.ylo * g->s + kh - g->p) * g->w + v.lo * g->s + kw - g->p : 0;
    return v;
}

/* One col row d[OH*OW] of kernel offset v from one input channel xc[H, W]: d[oy, ox] = x under it, or 0. */
static void conv_im2col_row(const conv_geom *g, const conv_win *v, const float *restrict xc,
                            float *restrict d) {
    size_t ow = g->ow, s = g->s, n = v->hi - v->lo, step = s * g->w;
    memset(d, 0, v->ylo * ow * sizeof *d);
    for (size_t oy = v->ylo; oy < v->yhi; oy++) {
        const float *restrict xr = xc + v->off + (oy - v->ylo) * step;
        float *restrict dr = d + oy * ow;
        for (size_t ox = 0; ox < v->lo; ox++)
            dr[ox] = 0.0f;
        if (s == 1)
            for (size_t j = 0; j < n; j++)
                dr[v->lo + j] = xr[j];
        else
            for (size_t j = 0; j < n; j++)
                dr[v->lo + j] = xr[j * s];
        for (size_t ox = v->hi; ox < ow; ox++)
            dr[ox] = 0.0f;
    }
    memset(d + v->yhi * ow, 0, (g->oh - v->yhi) * ow * sizeof *d);
}

/* One sample: x[C, H, W] -> col rows r = (c, kh, kw), each P floats at col + r*ld. */
static void conv_im2col(const conv_geom *g, const float *x, float *col, size_t ld) {
    size_t hw = g->h * g->w, kk = g->k * g->k;
    for (size_t kh = 0; kh < g->k; kh++)
        for (size_t kw = 0; kw < g->k; kw++) {
            conv_win v = conv_win_of(g, kh, kw);
            for (size_t c = 0; c < g->c; c++)
                conv_im2col_row(g, &v, x + c * hw, col + (c * kk + kh * g->k + kw) * ld);
        }
}

/* One col row d[OH*OW] of kernel offset v added back onto one channel dxc[H, W] (transpose of the above). */
static void conv_col2im_row(const conv_geom *g, const conv_win *v, const float *restrict d,
                            float *restrict dxc) {
    size_t ow = g->ow, s = g->s, n = v->hi - v->lo, step = s * g->w;
    for (size_t oy = v->ylo; oy < v->yhi; oy++) {
        float *restrict xr = dxc + v->off + (oy - v->ylo) * step;
        const float *restrict dr = d + oy * ow + v->lo;
        if (s == 1)
            for (size_t j = 0; j < n; j++)
                xr[j] += dr[j];
        else
            for (size_t j = 0; j < n; j++)
                xr[j * s] += dr[j];
    }
}

/* One sample: dx[C, H, W] = sum over col rows (c, kh, kw) of dcol scattered back (overwrites dx). */
static void conv_col2im(const conv_geom *g, const float *dcol, size_t ld, float *dx) {
    size_t hw = g->h * g->w, kk = g->k * g->k;
    memset(dx, 0, g->c * hw * sizeof *dx);
    for (size_t kh = 0; kh < g->k; kh++)
        for (size_t kw = 0; kw < g->k; kw++) {
            conv_win v = conv_win_of(g, kh, kw);
            for (size_t c = 0; c < g->c; c++)
                conv_col2im_row(g, &v, dcol + (c * kk + kh * g->k + kw) * ld, dx + c * hw);
        }
}

/* Sum of r[len] in a fixed order: 8 double lanes (vectorisable), then the lanes in index order. */
static double conv_sum(const float *restrict r, size_t len) {
    double acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= len; j += 8)
        for (size_t k = 0; k < 8; k++)
            acc[k] += (double)r[j + k];
    double s = 0.0;
    for (size_t k = 0; k < 8; k++)
        s += acc[k];
    for (; j < len; j++)
        s += (double)r[j];
    return s;
}

/* Samples per chunk: chunk buffers (col + Y', (CKK + F) * P floats a sample) near CONV_CHUNK_FLOATS, at
 * least CONV_MIN_CHUNKS chunks when n allows. Depends on the geometry and n only, never on the threads.
 * b * P fits an int: either b == 1 and P <= INT_MAX / 4 (setup), or b * P <= CONV_CHUNK_FLOATS. */
static size_t conv_chunk(const conv_geom *g, size_t n) {
    size_t b = CONV_CHUNK_FLOATS / ((g->ckk + g->f) * g->np);
    size_t cap = (n + CONV_MIN_CHUNKS - 1) / CONV_MIN_CHUNKS;
    if (b > cap) b = cap;
    return b ? b : 1;
}

/* One forward or backward pass over a batch; chunk functions read their samples' slices of it. */
typedef struct conv_job {
    conv_geom g;
    const float *w, *x, *dy; /* W then b; x[N, C, H, W]; dy[N, F, OH, OW] (backward) */
    float *y, *dx, *part;    /* y[N, F, OH, OW] (forward); dx (NULL: skip); per-chunk dW + db (NULL: skip) */
} conv_job;

/* Samples [i0, i0 + m): y = W col + b, permuted to NCHW. buf: (CKK + F) * m * P floats. */
static void conv_fwd_chunk(const conv_job *jb, size_t i0, size_t m, float *buf) {
    const conv_geom *g = &jb->g;
    size_t np = g->np, ld = m * np, chw = g->c * g->h * g->w;
    const float *b = jb->w + g->f * g->ckk, *x = jb->x + i0 * chw;
    float *y = jb->y + i0 * g->f * np;
    float *col = buf, *t = m == 1 ? y : buf + g->ckk * ld; /* one sample: Y'[F, P] is already NCHW */
    for (size_t i = 0; i < m; i++)
        conv_im2col(g, x + i * chw, col + i * np, ld);
    nn_gemm_nn(g->f, ld, g->ckk, jb->w, g->ckk, col, ld, t, ld, 0);
    for (size_t i = 0; i < m; i++)
        for (size_t f = 0; f < g->f; f++) {
            const float *src = t + f * ld + i * np;
            float *dst = y + (i * g->f + f) * np, bf = b[f];
            for (size_t p = 0; p < np; p++)
                dst[p] = src[p] + bf;
        }
}

/* Samples [i0, i0 + m) = chunk j, dY'[F, m*P] = their dy permuted:  part_j[F, CKK] = dY' col^T and
 * part_j[F*CKK + f] = sum of row f of dY' (if part);  dx = col2im(W^T dY') (if dx). */
static void conv_bwd_chunk(const conv_job *jb, size_t j, size_t i0, size_t m, float *buf) {
    const conv_geom *g = &jb->g;
    size_t np = g->np, ld = m * np, chw = g->c * g->h * g->w, fc = g->f * g->ckk;
    const float *dy = jb->dy + i0 * g->f * np, *d = dy; /* one sample: dy[F, P] is already dY' */
    float *col = buf, *t = buf + g->ckk * ld;
    if (m > 1) {
        for (size_t i = 0; i < m; i++)
            for (size_t f = 0; f < g->f; f++)
                memcpy(t + f * ld + i * np, dy + (i * g->f + f) * np, np * sizeof *t);
        d = t;
    }
    if (jb->part) {
        float *part = jb->part + j * (fc + g->f);
        for (size_t f = 0; f < g->f; f++)
            part[fc + f] = (float)conv_sum(d + f * ld, ld);
        for (size_t i = 0; i < m; i++)
            conv_im2col(g, jb->x + (i0 + i) * chw, col + i * np, ld);
        nn_gemm_nt(g->f, g->ckk, ld, d, ld, col, ld, part, g->ckk, 0);
    }
    if (jb->dx) {
        nn_gemm_tn(g->ckk, ld, g->f, jb->w, g->ckk, d, ld, col, ld, 0);
        for (size_t i = 0; i < m; i++)
            conv_col2im(g, col + i * np, ld, jb->dx + (i0 + i) * chw);
    }
}

/* Runs every chunk of a batch of n; returns the chunk count. Chunk j runs on thread j mod T
 * (schedule(static, 1): round-robin in thread order), so j >= the thread number t, and thread t's buffer
 * at t * b * (CKK + F) * P, of which chunk j uses m * (CKK + F) * P, ends inside the first
 * n * (CKK + F) * P floats of the scratch.
 * The region has no size guard on purpose: inside it OpenBLAS (nn_gemm's fallback) runs single-threaded,
 * while a call from outside would run multi-threaded, and OpenBLAS's multi-threaded sgemm does not give
 * the same bits as its single-threaded one (measured), so results would depend on the thread count. */
static size_t conv_run(const conv_job *jb, float *scratch, size_t n, int backward) {
    const conv_geom *g = &jb->g;
    size_t b = conv_chunk(g, n), nch = (n + b - 1) / b, per = (g->ckk + g->f) * g->np;
#pragma omp parallel
    {
        float *buf = scratch + (size_t)omp_get_thread_num() * b * per;
#pragma omp for schedule(static, 1)
        for (size_t j = 0; j < nch; j++) {
            size_t i0 = j * b, m = n - i0 < b ? n - i0 : b;
            if (backward)
                conv_bwd_chunk(jb, j, i0, m, buf);
            else
                conv_fwd_chunk(jb, i0, m, buf);
        }
    }
    return nch;
}

/* y[N, F, OH, OW] = W[F, CKK] im2col(x)[CKK, N*P] + b, permuted to NCHW. */
static void conv2d_forward(nn_layer *l, const float *x, float *y, size_t n, int train, nn_rng *rng) {
    (void)train;
    (void)rng;
    conv_job jb = {conv_geom_of(l), l->w, x, NULL, y, NULL, NULL};
    conv_run(&jb, l->scratch, n, 0);
}

/* dw[e] += sum over chunks j, in order, of part[j * len + e]; e < len. */
static void conv_reduce(const float *part, size_t nch, size_t len, float *dw) {
#pragma omp parallel for schedule(static) if (nch * len > CONV_PAR_MIN)
    for (size_t e = 0; e < len; e++) {
        float s = 0.0f;
        for (size_t j = 0; j < nch; j++)
            s += part[j * len + e];
        dw[e] += s;
    }
}

/* dW[F, CKK] += dY'[F, N*P] col^T;  db[F] += sum_{i,p} dy[i, F, p];  dx = col2im(W^T dY'), dY' = dy as
 * [F, N*P]. Per-chunk parameter gradients go to the scratch after the chunk buffers (n * (F*CKK + F) floats
 * at most, see setup) and are then summed in chunk order. */
static void conv2d_backward(nn_layer *l, const float *x, const float *y, const float *dy, float *dx,
                            float *dw, size_t n) {
    (void)y;
    if (!dx && !dw) return;
    conv_geom g = conv_geom_of(l);
    float *part = dw ? l->scratch + n * (g.ckk + g.f) * g.np : NULL;
    conv_job jb = {g, l->w, x, dy, NULL, dx, part};
    size_t nch = conv_run(&jb, l->scratch, n, 1);
    if (dw) conv_reduce(part, nch, g.f * g.ckk + g.f, dw);
}

static int conv2d_params(const nn_layer *l, nn_param_desc out[2]) {
    conv_geom g = conv_geom_of(l);
    out[0] = (nn_param_desc){"weight", 4, {g.f, g.c, g.k, g.k}, 0};
    out[1] = (nn_param_desc){"bias", 1, {g.f, 0, 0, 0}, g.f * g.ckk};
    return 2;
}

const nn_layer_ops nn_conv2d_ops = {
    .kind = "conv2d",
    .fields = NN_F_FILTERS | NN_F_KERNEL | NN_F_STRIDE | NN_F_PAD | NN_F_INIT,
    .setup = conv2d_setup,
    .init = conv2d_init,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .params = conv2d_params,
};
