/* test_ddgsd.c - DDGSD self-distillation: finite-difference checks of the symmetric KL, both MMD kernels and
 * the whole loss through the net, their closed forms and properties, the views, the step, configuration
 * errors and a tiny end-to-end training on synthetic images. */
#include <omp.h>

#include "def_ddgsd.h"
#include "nn_loss.h"
#include "nn_train.h"
#include "test_util.h"

#include "test_atk_util.h"

static void fill_normal(float *a, size_t n, float scale, uint64_t seed) {
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        a[i] = scale * nn_rng_normal(&rng);
}

static void fill_uniform(float *a, size_t n, float lo, float hi, uint64_t seed) {
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * nn_rng_uniform(&rng);
}

static nn_net *make_net(nn_shape in, const nn_layer_cfg *cfgs, size_t n, uint64_t seed) {
    nn_net *net = NULL;
    nn_err err;
    nn_err_clear(&err);
    if (nn_net_create(&net, in, cfgs, n, &err)) fail_msg("nn_net_create: %s", err.msg);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    nn_net_init(net, &rng);
    return net;
}

static nn_layer_cfg layer(const char *kind, size_t units) {
    nn_layer_cfg c = nn_layer_cfg_default(kind);
    c.units = units;
    return c;
}

/* ---------- symmetric KL ---------- */

enum { SN = 4, SK = 5 };

typedef struct kl_ctx {
    const float *za, *zb;
    float T;
} kl_ctx;

static double kl_of(void *p, const float *unused) {
    (void)unused;
    kl_ctx *c = p;
    return def_sym_kl(c->za, c->zb, SN, SK, c->T, NULL, NULL);
}

/* Central differences of def_sym_kl in both logit sets, T = 1 and T = 3. */
static void test_sym_kl_gradcheck(void **s) {
    float za[SN * SK], zb[SN * SK], ga[SN * SK], gb[SN * SK];
    fill_normal(za, SN * SK, 2.0f, 1);
    fill_normal(zb, SN * SK, 2.0f, 2);
    const float Ts[2] = {1.0f, 3.0f};
    for (int t = 0; t < 2; t++) {
        kl_ctx c = {za, zb, Ts[t]};
        double l = def_sym_kl(za, zb, SN, SK, Ts[t], ga, gb);
        assert_true(l > 0.05);
        char what[64];
        snprintf(what, sizeof what, "sym kl dza T %g", Ts[t]);
        assert_int_equal(gradcheck(kl_of, NULL, &c, za, SN * SK, ga, 1e-3, 1e-6, 1e-3, 64, what), SN * SK);
        snprintf(what, sizeof what, "sym kl dzb T %g", Ts[t]);
        assert_int_equal(gradcheck(kl_of, NULL, &c, zb, SN * SK, gb, 1e-3, 1e-6, 1e-3, 64, what), SN * SK);
        /* either gradient alone equals the one computed together */
        float g1[SN * SK];
        def_sym_kl(za, zb, SN, SK, Ts[t], NULL, g1);
        assert_memory_equal(g1, gb, sizeof g1);
    }
}

/* 0 on identical logits (also shifted by a constant per row), symmetric in its arguments (values and
 * swapped gradients), and equal to KL(pa||pb) + KL(pb||pa) computed through nn_loss_kl. */
static void test_sym_kl_properties(void **s) {
    float za[SN * SK], zb[SN * SK], zc[SN * SK], pa[SN * SK], pb[SN * SK];
    float ga[SN * SK], gb[SN * SK], ha[SN * SK], hb[SN * SK];
    fill_normal(za, SN * SK, 3.0f, 3);
    fill_normal(zb, SN * SK, 3.0f, 4);
    assert_true(def_sym_kl(za, za, SN, SK, 1.0f, ga, gb) == 0.0);
    for (size_t i = 0; i < SN * SK; i++)
        assert_true(ga[i] == 0.0f && gb[i] == 0.0f);
    for (size_t i = 0; i < SN * SK; i++)
        zc[i] = za[i] + 4.0f; /* softmax is shift-invariant: the same posteriors */
    assert_close(def_sym_kl(za, zc, SN, SK, 2.0f, NULL, NULL), 0.0, 1e-12, 0);
    for (int t = 1; t <= 3; t += 2) {
        float T = (float)t;
        double ab = def_sym_kl(za, zb, SN, SK, T, ga, gb), ba = def_sym_kl(zb, za, SN, SK, T, hb, ha);
        assert_true(ab > 0.1);
        assert_close(ab, ba, 1e-12, 1e-12);
        assert_close_array(ga, ha, SN * SK, 1e-9, 1e-6, "swapped dza");
        assert_close_array(gb, hb, SN * SK, 1e-9, 1e-6, "swapped dzb");
        nn_softmax(za, SN, SK, T, pa);
        nn_softmax(zb, SN, SK, T, pb);
        double ref = nn_loss_kl(zb, pa, SN, SK, T, 0, NULL) + nn_loss_kl(za, pb, SN, SK, T, 0, NULL);
        assert_close(ab, ref, 1e-6, 1e-5);
    }
}

/* ---------- MMD ---------- */

enum { MN = 5, MD = 3 };

typedef struct mmd_ctx {
    const float *fa, *fb;
    float sigma; /* 0: linear kernel */
} mmd_ctx;

static double mmd_of(void *p, const float *unused) {
    (void)unused;
    mmd_ctx *c = p;
    return c->sigma > 0 ? def_mmd_gauss(c->fa, c->fb, MN, MD, c->sigma, NULL, NULL)
                        : def_mmd(c->fa, c->fb, MN, MD, NULL, NULL);
}

/* Central differences of both kernels' MMD^2 in both feature sets. */
static void test_mmd_gradcheck(void **s) {
    float fa[MN * MD], fb[MN * MD], ga[MN * MD], gb[MN * MD];
    fill_normal(fa, MN * MD, 1.0f, 5);
    fill_normal(fb, MN * MD, 1.0f, 6);
    for (size_t i = 0; i < MN * MD; i++)
        fb[i] += 0.5f;
    const float sigmas[3] = {0.0f, 1.5f, 0.7f};
    for (int v = 0; v < 3; v++) {
        mmd_ctx c = {fa, fb, sigmas[v]};
        double l = sigmas[v] > 0 ? def_mmd_gauss(fa, fb, MN, MD, sigmas[v], ga, gb)
                                 : def_mmd(fa, fb, MN, MD, ga, gb);
        assert_true(l > 1e-3);
        char what[64];
        snprintf(what, sizeof what, "mmd dfa sigma %g", sigmas[v]);
        assert_int_equal(gradcheck(mmd_of, NULL, &c, fa, MN * MD, ga, 1e-3, 1e-6, 1e-3, 64, what), MN * MD);
        snprintf(what, sizeof what, "mmd dfb sigma %g", sigmas[v]);
        assert_int_equal(gradcheck(mmd_of, NULL, &c, fb, MN * MD, gb, 1e-3, 1e-6, 1e-3, 64, what), MN * MD);
    }
}

/* Exactly 0 for identical sets (gradients too), > 0 otherwise; linear = |mean difference|^2 computed here;
 * Gaussian with one point each = 2 - 2 exp(-|a - b|^2 / (2 sigma^2)) (closed form); both kernels are
 * invariant to a common translation of the two sets. */
static void test_mmd_properties(void **s) {
    float fa[MN * MD], fb[MN * MD], ga[MN * MD], gb[MN * MD], sa[MN * MD], sb[MN * MD];
    fill_normal(fa, MN * MD, 1.0f, 7);
    fill_normal(fb, MN * MD, 1.0f, 8);
    assert_true(def_mmd(fa, fa, MN, MD, ga, gb) == 0.0);
    for (size_t i = 0; i < MN * MD; i++)
        assert_true(ga[i] == 0.0f && gb[i] == 0.0f);
    assert_true(def_mmd_gauss(fa, fa, MN, MD, 1.0f, ga, gb) == 0.0);
    for (size_t i = 0; i < MN * MD; i++)
        assert_close(ga[i], 0.0, 1e-6, 0);
    double want = 0;
    for (size_t j = 0; j < MD; j++) {
        double m = 0;
        for (size_t i = 0; i < MN; i++)
            m += ((double)fa[i * MD + j] - (double)fb[i * MD + j]) / MN;
        want += m * m;
    }
    double lin = def_mmd(fa, fb, MN, MD, NULL, NULL), gau = def_mmd_gauss(fa, fb, MN, MD, 1.0f, NULL, NULL);
    assert_close(lin, want, 1e-9, 1e-6);
    assert_true(lin > 0 && gau > 0);
    for (size_t i = 0; i < MN * MD; i++)
        sa[i] = fa[i] + 0.75f * (float)(i % MD), sb[i] = fb[i] + 0.75f * (float)(i % MD);
    assert_close(def_mmd(sa, sb, MN, MD, NULL, NULL), lin, 1e-6, 1e-5);
    assert_close(def_mmd_gauss(sa, sb, MN, MD, 1.0f, NULL, NULL), gau, 1e-6, 1e-5);
    float a[2] = {0.5f, -1.0f}, b[2] = {1.5f, 1.0f}; /* |a - b|^2 = 5 */
    assert_close(def_mmd_gauss(a, b, 1, 2, 2.0f, NULL, NULL), 2.0 - 2.0 * exp(-5.0 / 8.0), 1e-9, 1e-7);
}

/* ---------- the whole loss through a net ---------- */

enum { GN = 3, GD = 6, GH = 5, GK = 3 };

typedef struct net_ctx {
    def_ddgsd *dd;
    nn_net *net;
    const float *xab;
    const int *y;
    unsigned char sig0[2 * GN * GH], sig1[2 * GN * GH];
} net_ctx;

static double net_loss(void *p, const float *unused) {
    (void)unused;
    net_ctx *c = p;
    double l = def_ddgsd_loss_views(c->dd, c->net, c->xab, c->y, GN, 0, NULL, 0, NULL);
    assert_false(c->dd->failed);
    return l;
}

/* The ReLU pattern of the last forward (layer 1 of the MLP) into sig. */
static void relu_sig(const nn_net *net, unsigned char *sig) {
    for (size_t i = 0; i < 2 * GN * GH; i++)
        sig[i] = net->act[1][i] > 0.0f;
}

/* Skip parameter i when moving it by +-h flips a ReLU. */
static int skip_kink(void *p, const float *x, size_t i, double h) {
    net_ctx *c = p;
    float *w = (float *)x, keep = w[i];
    net_loss(c, NULL);
    relu_sig(c->net, c->sig0);
    int crossed = 0;
    for (int sgn = -1; sgn <= 1 && !crossed; sgn += 2) {
        w[i] = (float)((double)keep + sgn * h);
        net_loss(c, NULL);
        relu_sig(c->net, c->sig1);
        crossed = memcmp(c->sig0, c->sig1, sizeof c->sig0) != 0;
    }
    w[i] = keep;
    return crossed;
}

/* dL/dparams of def_ddgsd_loss_views against central differences of the loss, on two different fixed views,
 * for the linear and the Gaussian kernel with a large mu (so the feature term is visible); the MMD term
 * changes the gradient (it is not dropped). */
static void test_loss_param_gradcheck(void **s) {
    nn_net *net = atk_test_mlp(GD, GH, GK, 11, 1);
    fill_uniform(net->params + GD * GH, GH, -0.2f, 0.2f, 12); /* non-zero hidden biases */
    float xab[2 * GN * GD];
    int y[GN] = {0, 2, 1};
    fill_uniform(xab, 2 * GN * GD, -1.0f, 1.0f, 13);
    float *g = malloc(net->n_params * sizeof *g), *g0 = malloc(net->n_params * sizeof *g0);
    for (int v = 0; v < 2; v++) {
        def_ddgsd_cfg cfg = def_ddgsd_cfg_default();
        cfg.lambda = 0.7f, cfg.mu = 0.5f, cfg.temperature = 2.0f;
        cfg.kernel = v ? DEF_MMD_GAUSS : DEF_MMD_LINEAR, cfg.sigma = 1.2f;
        def_ddgsd dd;
        nn_err err;
        nn_err_clear(&err);
        assert_int_equal(def_ddgsd_init(&dd, &cfg, net, GN, &err), NN_OK);
        assert_int_equal(dd.feat_layer, 1);
        assert_int_equal(dd.d_feat, GH);
        assert_true(net->max_batch >= 2 * GN);
        nn_net_zero_grad(net);
        double l = def_ddgsd_loss_views(&dd, net, xab, y, GN, 0, NULL, 1, NULL);
        assert_false(dd.failed);
        assert_true(dd.kl > 1e-4 && dd.mmd > 1e-4);
        assert_close(l, dd.ce + (double)cfg.lambda * dd.kl + (double)cfg.mu * dd.mmd, 1e-12, 1e-12);
        memcpy(g, net->grads, net->n_params * sizeof *g);
        net_ctx c = {&dd, net, xab, y, {0}, {0}};
        size_t checked = gradcheck(net_loss, skip_kink, &c, net->params, net->n_params, g, 5e-3, 3e-4, 2e-2,
                                   200, v ? "ddgsd params gauss" : "ddgsd params linear");
        assert_true(checked >= net->n_params * 3 / 4);
        /* without the MMD term the first layer's gradient differs */
        dd.cfg.mu = 0;
        nn_net_zero_grad(net);
        def_ddgsd_loss_views(&dd, net, xab, y, GN, 0, NULL, 1, NULL);
        memcpy(g0, net->grads, net->n_params * sizeof *g0);
        assert_true(memcmp(g0, g, GD * GH * sizeof *g) != 0);
        def_ddgsd_free(&dd);
    }
    free(g), free(g0);
    nn_net_destroy(net);
}

/* The one 2n-row forward gives the terms of two separate forwards: CE of each view, the symmetric KL
 * through nn_loss_kl and the linear MMD of the hidden features recomputed here. */
static void test_loss_terms(void **s) {
    nn_net *net = atk_test_mlp(GD, GH, GK, 21, 1);
    float xab[2 * GN * GD], za[GN * GK], zb[GN * GK], fa[GN * GH], fb[GN * GH], pa[GN * GK], pb[GN * GK];
    int y[GN] = {1, 1, 0};
    fill_uniform(xab, 2 * GN * GD, -1.0f, 1.0f, 22);
    def_ddgsd_cfg cfg = def_ddgsd_cfg_default();
    cfg.temperature = 3.0f;
    def_ddgsd dd;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_ddgsd_init(&dd, &cfg, net, GN, &err), NN_OK);
    int pred[GN], want_pred[GN];
    double l = def_ddgsd_loss_views(&dd, net, xab, y, GN, 0, NULL, 0, pred);
    const float *z;
    assert_int_equal(nn_net_forward(net, xab, GN, 0, NULL, &z, &err), NN_OK);
    memcpy(za, z, sizeof za), memcpy(fa, net->act[1], sizeof fa);
    assert_int_equal(nn_net_forward(net, xab + GN * GD, GN, 0, NULL, &z, &err), NN_OK);
    memcpy(zb, z, sizeof zb), memcpy(fb, net->act[1], sizeof fb);
    double ce = nn_loss_ce(za, y, GN, GK, 1.0f, NULL) + nn_loss_ce(zb, y, GN, GK, 1.0f, NULL);
    nn_softmax(za, GN, GK, 3.0f, pa);
    nn_softmax(zb, GN, GK, 3.0f, pb);
    double kl = nn_loss_kl(zb, pa, GN, GK, 3.0f, 0, NULL) + nn_loss_kl(za, pb, GN, GK, 3.0f, 0, NULL);
    double mmd = 0;
    for (size_t j = 0; j < GH; j++) {
        double m = 0;
        for (size_t i = 0; i < GN; i++)
            m += ((double)fa[i * GH + j] - (double)fb[i * GH + j]) / GN;
        mmd += m * m;
    }
    assert_close(dd.ce, ce, 1e-6, 1e-5);
    assert_close(dd.kl, kl, 1e-6, 1e-5);
    assert_close(dd.mmd, mmd, 1e-6, 1e-5);
    assert_close(l, ce + kl + 5e-4 * mmd, 1e-6, 1e-5);
    nn_argmax(za, GN, GK, want_pred);
    assert_memory_equal(pred, want_pred, sizeof pred);
    def_ddgsd_free(&dd);
    nn_net_destroy(net);
}

/* ---------- views ---------- */

enum { VC = 2, VH = 5, VW = 4, VS = VC * VH * VW, VN = 6 };

static def_ddgsd init_views(const def_ddgsd_cfg *cfg, nn_net **net, size_t max_batch) {
    nn_layer_cfg l[2] = {layer("flatten", 0), layer("dense", 3)};
    *net = make_net((nn_shape){VC, VH, VW}, l, 2, 1);
    def_ddgsd dd;
    nn_err err;
    nn_err_clear(&err);
    if (def_ddgsd_init(&dd, cfg, *net, max_batch, &err)) fail_msg("def_ddgsd_init: %s", err.msg);
    return dd;
}

/* x translated by (dx, dy) with fill 0 equals out (one sample). */
static int is_shift(const float *x, const float *out, int dx, int dy) {
    for (int c = 0; c < VC; c++)
        for (int r = 0; r < VH; r++)
            for (int q = 0; q < VW; q++) {
                int sr = r - dy, sq = q - dx;
                float want = (sr >= 0 && sr < VH && sq >= 0 && sq < VW) ? x[(c * VH + sr) * VW + sq] : 0.0f;
                if (out[(c * VH + r) * VW + q] != want) return 0;
            }
    return 1;
}

/* No distortion: both views are x. Flip 1: the exact mirror. Shift 1: a translation by at most one
 * pixel. Noise: within [lo, hi] and different from x. The same seed gives the same views. */
static void test_views(void **s) {
    float x[VN * VS];
    fill_uniform(x, VN * VS, 0.05f, 0.95f, 31);
    def_ddgsd_cfg cfg = def_ddgsd_cfg_default();
    cfg.view[0] = cfg.view[1] = (def_ddgsd_view){0, 0.0f, 0.0f};
    nn_net *net;
    def_ddgsd dd = init_views(&cfg, &net, VN);
    assert_int_equal(dd.feat_grad, 0); /* flatten only below the final dense layer */
    nn_rng rng, keep;
    nn_rng_seed(&rng, 1);
    keep = rng;
    def_ddgsd_views(&dd, x, VN, &rng);
    assert_memory_equal(dd.xv, x, sizeof x);
    assert_memory_equal(dd.xv + VN * VS, x, sizeof x);
    assert_memory_equal(&rng, &keep, sizeof rng); /* nothing drawn */
    /* view a mirrored always, view b shifted by up to one pixel */
    dd.cfg.view[0].flip = 1.0f;
    dd.cfg.view[1].shift = 1;
    def_ddgsd_views(&dd, x, VN, &rng);
    int shifted = 0;
    for (size_t i = 0; i < VN; i++) {
        const float *xi = x + i * VS, *a = dd.xv + i * VS, *b = dd.xv + (VN + i) * VS;
        for (size_t r = 0; r < VC * VH; r++)
            for (size_t q = 0; q < VW; q++)
                assert_true(a[r * VW + q] == xi[r * VW + VW - 1 - q]);
        int found = 0;
        for (int dy = -1; dy <= 1 && !found; dy++)
            for (int dx = -1; dx <= 1 && !found; dx++)
                if (is_shift(xi, b, dx, dy)) found = 1, shifted += dx || dy;
        assert_true(found);
    }
    assert_true(shifted > 0);
    /* noise: clipped into [lo, hi] = [0.1, 0.9] (x itself reaches outside), reproducible from the seed */
    dd.cfg.view[0] = dd.cfg.view[1] = (def_ddgsd_view){1, 0.5f, 0.3f};
    dd.cfg.lo = 0.1f, dd.cfg.hi = 0.9f;
    float first[2 * VN * VS];
    nn_rng_seed(&rng, 7);
    def_ddgsd_views(&dd, x, VN, &rng);
    memcpy(first, dd.xv, sizeof first);
    size_t moved = 0;
    for (size_t i = 0; i < 2 * VN * VS; i++) {
        assert_true(first[i] >= 0.1f && first[i] <= 0.9f);
        moved += first[i] != x[i % (VN * VS)];
    }
    assert_true(moved > VN * VS);
    assert_memory_not_equal(first, first + VN * VS, VN * VS * sizeof(float)); /* the two views differ */
    nn_rng_seed(&rng, 7);
    def_ddgsd_views(&dd, x, VN, &rng);
    assert_memory_equal(dd.xv, first, sizeof first);
    nn_rng_seed(&rng, 8);
    def_ddgsd_views(&dd, x, VN, &rng);
    assert_memory_not_equal(dd.xv, first, sizeof first);
    def_ddgsd_free(&dd);
    nn_net_destroy(net);
}

/* Noisy views, the symmetric KL and both MMDs (values and gradients) on inputs big enough for the parallel
 * paths are bitwise the same on 1 and 2 threads. */
static void test_threads(void **s) {
    enum { N = 300, K = 20, D = 100, OUT = 2 * N * VS + 2 * N * K + 4 * N * D + 3 };
    float *x = malloc(N * VS * sizeof *x), *z = malloc(2 * N * K * sizeof *z),
          *f = malloc(2 * N * D * sizeof *f);
    float *o[2] = {malloc(OUT * sizeof(float)), malloc(OUT * sizeof(float))};
    fill_uniform(x, N * VS, 0.0f, 1.0f, 41);
    fill_normal(z, 2 * N * K, 2.0f, 42);
    fill_normal(f, 2 * N * D, 1.0f, 43);
    def_ddgsd_cfg cfg = def_ddgsd_cfg_default();
    cfg.view[0].noise = 0.2f;
    nn_net *net;
    def_ddgsd dd = init_views(&cfg, &net, N);
    int threads = omp_get_max_threads();
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        float *p = o[t - 1];
        nn_rng rng;
        nn_rng_seed(&rng, 5);
        def_ddgsd_views(&dd, x, N, &rng);
        memcpy(p, dd.xv, 2 * N * VS * sizeof *p);
        p += 2 * N * VS;
        p[2 * N * K] = (float)def_sym_kl(z, z + N * K, N, K, 2.0f, p, p + N * K);
        p += 2 * N * K + 1;
        p[2 * N * D] = (float)def_mmd(f, f + N * D, N, D, p, p + N * D);
        p += 2 * N * D + 1;
        p[2 * N * D] = (float)def_mmd_gauss(f, f + N * D, N, D, 4.0f, p, p + N * D);
    }
    omp_set_num_threads(threads);
    assert_memory_equal(o[0], o[1], OUT * sizeof(float));
    def_ddgsd_free(&dd);
    nn_net_destroy(net);
    free(x), free(z), free(f), free(o[0]), free(o[1]);
}

/* ---------- the step ---------- */

/* The step is def_ddgsd_views then def_ddgsd_loss_views (same loss, bitwise same gradients, view a's
 * classes); a batch over max_batch fails with NaN and a message. */
static void test_step(void **s) {
    nn_net *net = atk_test_mlp(GD, GH, GK, 51, 1);
    float x[GN * GD], xab[2 * GN * GD];
    int y[GN] = {2, 0, 1}, pred[GN], pred2[GN];
    size_t idx[GN] = {0, 1, 2};
    fill_uniform(x, GN * GD, 0.0f, 1.0f, 52);
    def_ddgsd_cfg cfg = def_ddgsd_cfg_default();
    cfg.view[0].noise = 0.2f, cfg.mu = 0.1f;
    def_ddgsd dd;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_ddgsd_init(&dd, &cfg, net, GN, &err), NN_OK);
    assert_true(dd.feat_grad);
    float *g = malloc(net->n_params * sizeof *g);
    nn_rng rng;
    nn_rng_seed(&rng, 9);
    nn_net_zero_grad(net);
    double l = def_ddgsd_step(&dd, net, x, y, idx, GN, 0, &rng, pred);
    assert_true(isfinite(l) && !dd.failed);
    memcpy(g, net->grads, net->n_params * sizeof *g);
    nn_rng_seed(&rng, 9);
    def_ddgsd_views(&dd, x, GN, &rng);
    memcpy(xab, dd.xv, sizeof xab);
    nn_net_zero_grad(net);
    assert_true(def_ddgsd_loss_views(&dd, net, xab, y, GN, 1, &rng, 1, pred2) == l);
    assert_memory_equal(g, net->grads, net->n_params * sizeof *g);
    assert_memory_equal(pred, pred2, sizeof pred);
    assert_true(isnan(def_ddgsd_step(&dd, net, x, y, idx, GN + 1, 0, &rng, pred)));
    assert_true(dd.failed);
    assert_non_null(strstr(dd.err.msg, "batch"));
    free(g);
    def_ddgsd_free(&dd);
    nn_net_destroy(net);
}

/* A one-layer net: the features are the input, so MMD adds to the loss but not to the gradient. */
static void test_single_dense(void **s) {
    size_t k = GK;
    nn_net *net = atk_test_dense(GD, &k, 1, 61, 1);
    float xab[2 * GN * GD];
    int y[GN] = {0, 1, 2};
    fill_uniform(xab, 2 * GN * GD, 0.0f, 1.0f, 62);
    def_ddgsd_cfg cfg = def_ddgsd_cfg_default();
    cfg.mu = 2.0f;
    def_ddgsd dd;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_ddgsd_init(&dd, &cfg, net, GN, &err), NN_OK);
    assert_true(dd.feat_input && !dd.feat_grad && dd.d_feat == GD);
    nn_net_zero_grad(net);
    double l = def_ddgsd_loss_views(&dd, net, xab, y, GN, 0, NULL, 1, NULL);
    assert_close(dd.mmd, def_mmd(xab, xab + GN * GD, GN, GD, NULL, NULL), 0, 0);
    assert_close(l, dd.ce + dd.kl + 2.0 * dd.mmd, 1e-12, 1e-12);
    float *g = malloc(net->n_params * sizeof *g);
    memcpy(g, net->grads, net->n_params * sizeof *g);
    dd.cfg.mu = 0;
    nn_net_zero_grad(net);
    def_ddgsd_loss_views(&dd, net, xab, y, GN, 0, NULL, 1, NULL);
    assert_memory_equal(g, net->grads, net->n_params * sizeof *g);
    free(g);
    def_ddgsd_free(&dd);
    nn_net_destroy(net);
}

/* ---------- end to end ---------- */

enum { EN = 240, EK = 3, ES = 8 };

/* 8x8 images in [0, 1]: a dim noisy background and a bright 3x3 patch whose place is the class. */
static void patches(nn_dataset *ds, uint64_t seed) {
    memset(ds, 0, sizeof *ds);
    ds->n = EN;
    ds->shape = (nn_shape){1, ES, ES};
    ds->n_classes = EK;
    ds->x = malloc(EN * ES * ES * sizeof *ds->x);
    ds->y = malloc(EN * sizeof *ds->y);
    ds->id = malloc(EN * sizeof *ds->id);
    assert_true(ds->x && ds->y && ds->id);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    const int r0[EK] = {1, 4, 1}, c0[EK] = {1, 4, 4};
    for (size_t i = 0; i < EN; i++) {
        int c = (int)(i % EK);
        ds->y[i] = c, ds->id[i] = i;
        float *x = ds->x + i * ES * ES;
        for (int p = 0; p < ES * ES; p++) {
            int r = p / ES, q = p % ES;
            int in = r >= r0[c] && r < r0[c] + 3 && q >= c0[c] && q < c0[c] + 3;
            x[p] = (in ? 0.6f : 0.0f) + 0.4f * nn_rng_uniform(&rng);
        }
    }
}

typedef struct epochs {
    double loss[8];
    size_t n;
} epochs;

static void on_progress(void *p, const nn_progress *pr) {
    epochs *e = p;
    if (pr->event == NN_PROGRESS_EPOCH && e->n < 8) e->loss[e->n++] = pr->loss;
}

/* nn_train with def_ddgsd_step learns the patches (clean accuracy well above chance 1/3) and the DDGSD loss
 * falls; both distortion terms are live (the views differ). */
static void test_end_to_end(void **s) {
    nn_dataset ds;
    patches(&ds, 71);
    nn_layer_cfg l[4] = {layer("flatten", 0), layer("dense", 16), layer("relu", 0), layer("dense", EK)};
    nn_net *net = make_net(ds.shape, l, 4, 72);
    def_ddgsd_cfg cfg = def_ddgsd_cfg_default();
    cfg.view[0].shift = cfg.view[1].shift = 1;
    cfg.mu = 0.01f;
    nn_train_cfg tc = nn_train_cfg_default();
    tc.epochs = 6, tc.batch_size = 24, tc.seed = 3;
    tc.optim.lr = 0.05f, tc.optim.momentum = 0.9f;
    def_ddgsd dd;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_ddgsd_init(&dd, &cfg, net, tc.batch_size, &err), NN_OK);
    tc.step = def_ddgsd_step, tc.step_ctx = &dd;
    epochs e = {{0}, 0};
    if (nn_train(net, &ds, NULL, &tc, on_progress, &e, &err))
        fail_msg("nn_train: %s (%s)", err.msg, dd.err.msg);
    assert_false(dd.failed);
    assert_int_equal(e.n, 6);
    assert_true(e.loss[5] < 0.2 * e.loss[0]);
    assert_true(dd.kl > 0 && dd.mmd > 0);
    nn_eval ev;
    assert_int_equal(nn_evaluate(net, &ds, 64, NULL, &ev, &err), NN_OK);
    assert_true(ev.accuracy > 0.9);
    def_ddgsd_free(&dd);
    nn_net_destroy(net);
    nn_dataset_free(&ds);
}

/* ---------- configuration ---------- */

static void expect_invalid(const def_ddgsd_cfg *c, const char *field) {
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(def_ddgsd_cfg_validate(c, &err), NN_E_INVAL);
    if (!strstr(err.msg, field)) fail_msg("message \"%s\" does not name %s", err.msg, field);
}

static void test_cfg_errors(void **s) {
    nn_err err;
    nn_err_clear(&err);
    def_ddgsd_cfg d = def_ddgsd_cfg_default(), c;
    assert_int_equal(def_ddgsd_cfg_validate(&d, &err), NN_OK);
    assert_true(d.lambda == 1.0f && d.mu == 5e-4f && d.temperature == 1.0f);
    c = d, c.lambda = -1;
    expect_invalid(&c, "ddgsd.lambda");
    c = d, c.mu = NAN;
    expect_invalid(&c, "ddgsd.mu");
    c = d, c.temperature = 0;
    expect_invalid(&c, "ddgsd.temperature");
    c = d, c.kernel = 7;
    expect_invalid(&c, "ddgsd.kernel");
    c = d, c.kernel = DEF_MMD_GAUSS, c.sigma = 0;
    expect_invalid(&c, "ddgsd.sigma");
    c = d, c.hi = c.lo;
    expect_invalid(&c, "ddgsd.lo");
    c = d, c.view[1].shift = 65;
    expect_invalid(&c, "ddgsd.view[1].shift");
    c = d, c.view[0].flip = 1.5f;
    expect_invalid(&c, "ddgsd.view[0].flip");
    c = d, c.view[1].noise = -0.1f;
    expect_invalid(&c, "ddgsd.view[1].noise");
    /* init refuses a bad cfg and a net whose last layer is not dense, leaving nothing to free */
    nn_layer_cfg l[2] = {layer("dense", 4), layer("relu", 0)};
    nn_net *net = make_net((nn_shape){3, 1, 1}, l, 2, 1);
    def_ddgsd dd;
    c = d, c.mu = -1;
    assert_int_equal(def_ddgsd_init(&dd, &c, net, 4, &err), NN_E_INVAL);
    assert_int_equal(def_ddgsd_init(&dd, &d, net, 4, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "not dense"));
    assert_null(dd.xv);
    assert_int_equal(net->max_batch, 0); /* not reserved on failure */
    def_ddgsd_free(&dd);
    def_ddgsd_free(NULL);
    nn_net_destroy(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sym_kl_gradcheck),
        cmocka_unit_test(test_sym_kl_properties),
        cmocka_unit_test(test_mmd_gradcheck),
        cmocka_unit_test(test_mmd_properties),
        cmocka_unit_test(test_loss_param_gradcheck),
        cmocka_unit_test(test_loss_terms),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_step),
        cmocka_unit_test(test_single_dense),
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
