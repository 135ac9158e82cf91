/* test_net.c - the network engine: full-net gradient checks (parameters and input), the attacks' input
 * gradient entry point, batch limits, config errors, seeding, thread-count independence.
 * The loss is a mean softmax cross-entropy computed here (not nn_loss.c) in double. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn_net.h"
#include "test_util.h"

/* ---------- helpers ---------- */

static nn_layer_cfg L_(const char *kind, size_t size) {
    nn_layer_cfg c = nn_layer_cfg_default(kind);
    if (strcmp(kind, "dense") == 0) c.units = size;
    if (strcmp(kind, "conv2d") == 0) c.filters = size, c.kernel = 3;
    if (strcmp(kind, "maxpool") == 0) c.kernel = size;
    return c;
}

static nn_net *net_make(nn_shape in, const nn_layer_cfg *cfgs, size_t n, uint64_t seed, size_t max_batch) {
    nn_net *net = NULL;
    nn_err err;
    nn_err_clear(&err);
    int rc = nn_net_create(&net, in, cfgs, n, &err);
    if (rc) fail_msg("nn_net_create: %s", err.msg);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    nn_net_init(net, &rng);
    assert_int_equal(nn_net_reserve(net, max_batch, &err), NN_OK);
    return net;
}

static void fill_uniform(float *a, size_t n, float lo, float hi, uint64_t seed) {
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * nn_rng_uniform(&rng);
}

/* Mean softmax cross-entropy of z[n, k] with labels y[n]; dz = (softmax(z) - onehot(y)) / n if dz. */
static double ce(const float *z, const int *y, size_t n, size_t k, float *dz) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *zi = z + i * k;
        double m = zi[0], s = 0.0;
        for (size_t j = 1; j < k; j++)
            m = fmax(m, zi[j]);
        for (size_t j = 0; j < k; j++)
            s += exp(zi[j] - m);
        total += m + log(s) - zi[y[i]];
        for (size_t j = 0; dz && j < k; j++)
            dz[i * k + j] = (float)((exp(zi[j] - m) / s - (j == (size_t)y[i])) / (double)n);
    }
    return total / (double)n;
}

typedef struct gctx {
    nn_net *net;
    const float *x;
    const int *y;
    size_t n;
    float *target; /* the array gradcheck perturbs (net->params or the input) */
    unsigned char *sig0, *sig1;
    size_t sig_len;
} gctx;

static double loss_of(void *p, const float *unused) {
    (void)unused;
    gctx *c = p;
    const float *z;
    assert_int_equal(nn_net_forward(c->net, c->x, c->n, 0, NULL, &z, NULL), NN_OK);
    return ce(z, c->y, c->n, c->net->n_classes, NULL);
}

static int ce_dlogits(void *p, const float *z, size_t n, size_t k, float *dz) {
    gctx *c = p;
    ce(z, c->y, n, k, dz);
    return 0;
}

/* The piecewise-linear structure of the last forward: relu on/off bits and, per max-pool window, the
 * index of the first input equal to the maximum. Written to sig (or only counted); returns the length. */
static size_t signature(const nn_net *net, unsigned char *sig) {
    size_t len = 0;
    for (size_t li = 0; li < net->n_layers; li++) {
        const nn_layer *l = &net->layers[li];
        size_t total = net->n_last * nn_shape_size(l->out);
        if (strcmp(l->cfg.kind, "relu") == 0) {
            for (size_t i = 0; i < total; i++, len++)
                if (sig) sig[len] = net->act[li][i] > 0.0f;
        } else if (strcmp(l->cfg.kind, "maxpool") == 0) {
            size_t k = l->cfg.kernel, s = l->cfg.stride ? l->cfg.stride : k;
            const float *in = net->act[li - 1];
            for (size_t o = 0; o < total; o++, len++) {
                size_t ow = o % l->out.w, oh = (o / l->out.w) % l->out.h, plane = o / (l->out.w * l->out.h);
                const float *x = in + plane * l->in.h * l->in.w;
                unsigned char arg = 255;
                for (size_t a = 0; a < k * k && arg == 255; a++)
                    if (x[(oh * s + a / k) * l->in.w + ow * s + a % k] == net->act[li][o])
                        arg = (unsigned char)a;
                if (sig) sig[len] = arg;
            }
        }
    }
    return len;
}

/* Skip coordinate i when moving it by +-h changes the structure (crosses a ReLU kink or a pool tie). */
static int skip_kink(void *p, const float *unused, size_t i, double h) {
    (void)unused;
    gctx *c = p;
    float keep = c->target[i];
    loss_of(c, NULL);
    signature(c->net, c->sig0);
    int crossed = 0;
    for (int sgn = -1; sgn <= 1 && !crossed; sgn += 2) {
        c->target[i] = (float)((double)keep + sgn * h);
        loss_of(c, NULL);
        signature(c->net, c->sig1);
        crossed = memcmp(c->sig0, c->sig1, c->sig_len) != 0;
    }
    c->target[i] = keep;
    return crossed;
}

static void gctx_init(gctx *c, nn_net *net, const float *x, const int *y, size_t n) {
    memset(c, 0, sizeof *c);
    c->net = net, c->x = x, c->y = y, c->n = n;
    loss_of(c, NULL);
    c->sig_len = signature(net, NULL);
    c->sig0 = malloc(c->sig_len + 1);
    c->sig1 = malloc(c->sig_len + 1);
}

static void gctx_free(gctx *c) {
    free(c->sig0), free(c->sig1);
}

/* Parameter gradients of the mean CE against central differences (all coordinates up to max). */
static void check_param_grads(nn_net *net, const float *x, const int *y, size_t n, size_t max,
                              const char *what) {
    gctx c;
    gctx_init(&c, net, x, y, n);
    size_t k = net->n_classes;
    float *dz = malloc(n * k * sizeof(float)), *g = malloc(net->n_params * sizeof(float));
    const float *z;
    nn_net_zero_grad(net);
    assert_int_equal(nn_net_forward(net, x, n, 0, NULL, &z, NULL), NN_OK);
    ce(z, y, n, k, dz);
    assert_int_equal(nn_net_backward(net, dz, NULL, 1, NULL), NN_OK);
    memcpy(g, net->grads, net->n_params * sizeof(float));
    c.target = net->params;
    size_t want = net->n_params < max ? net->n_params : max;
    size_t checked =
        gradcheck(loss_of, skip_kink, &c, net->params, net->n_params, g, 5e-3, 3e-4, 2e-2, max, what);
    assert_true(checked >= want * 3 / 4);
    free(dz), free(g);
    gctx_free(&c);
}

/* nn_net_input_grad against central differences of the same loss in x; grads are left untouched. */
static void check_input_grad(nn_net *net, float *x, const int *y, size_t n, const char *what) {
    gctx c;
    gctx_init(&c, net, x, y, n);
    float *dx = malloc(n * net->n_in * sizeof(float)), *g0 = malloc(net->n_params * sizeof(float));
    for (size_t i = 0; i < net->n_params; i++)
        net->grads[i] = (float)i * 0.25f - 3.0f;
    memcpy(g0, net->grads, net->n_params * sizeof(float));
    nn_err err;
    assert_int_equal(nn_net_input_grad(net, x, n, ce_dlogits, &c, dx, &err), NN_OK);
    assert_memory_equal(g0, net->grads, net->n_params * sizeof(float));
    c.target = x;
    size_t total = n * net->n_in, max = 128, want = total < max ? total : max;
    size_t checked = gradcheck(loss_of, skip_kink, &c, x, total, dx, 5e-3, 3e-4, 2e-2, max, what);
    assert_true(checked >= want * 3 / 4);
    free(dx), free(g0);
    gctx_free(&c);
}

static const nn_shape MLP_IN = {5, 1, 1};

static void mlp_cfgs(nn_layer_cfg c[5]) {
    c[0] = L_("dense", 8), c[1] = L_("relu", 0), c[2] = L_("dense", 6), c[3] = L_("relu", 0);
    c[4] = L_("dense", 4);
}

/* ---------- tests ---------- */

static void test_mlp_param_grads(void **state) {
    (void)state;
    nn_layer_cfg c[5];
    mlp_cfgs(c);
    nn_net *net = net_make(MLP_IN, c, 5, 1, 4);
    assert_int_equal(net->n_params, 5 * 8 + 8 + 8 * 6 + 6 + 6 * 4 + 4);
    float x[3 * 5];
    int y[3] = {0, 3, 1};
    fill_uniform(x, 15, -1.0f, 1.0f, 2);
    /* non-zero biases so that their gradients are exercised through the ReLUs */
    fill_uniform(net->params + 40, 8, -0.2f, 0.2f, 3);
    check_param_grads(net, x, y, 3, 200, "mlp params");
    nn_net_destroy(net);
}

static void test_mlp_input_grad(void **state) {
    (void)state;
    nn_layer_cfg c[5];
    mlp_cfgs(c);
    nn_net *net = net_make(MLP_IN, c, 5, 4, 4);
    float x[4 * 5];
    int y[4] = {2, 0, 3, 1};
    fill_uniform(x, 20, -1.0f, 1.0f, 5);
    check_input_grad(net, x, y, 4, "mlp input");
    nn_net_destroy(net);
}

/* Param grads do not depend on whether dx is requested; layers below the first parametrised one are
 * skipped when dx is NULL. */
static void test_backward_dx_optional(void **state) {
    (void)state;
    nn_layer_cfg c[4] = {L_("flatten", 0), L_("dense", 6), L_("relu", 0), L_("dense", 3)};
    nn_net *net = net_make((nn_shape){2, 2, 2}, c, 4, 6, 3);
    float x[3 * 8], dx[3 * 8], dz[3 * 3];
    fill_uniform(x, 24, -1, 1, 7);
    fill_uniform(dz, 9, -1, 1, 8);
    const float *z;
    float *g = malloc(net->n_params * sizeof(float));
    nn_err err;
    assert_int_equal(nn_net_backward(net, dz, dx, 1, &err), NN_E_INVAL); /* no forward yet */
    assert_int_equal(nn_net_forward(net, x, 3, 0, NULL, &z, &err), NN_OK);
    nn_net_zero_grad(net);
    assert_int_equal(nn_net_backward(net, dz, dx, 1, &err), NN_OK);
    memcpy(g, net->grads, net->n_params * sizeof(float));
    nn_net_zero_grad(net);
    assert_int_equal(nn_net_backward(net, dz, NULL, 1, &err), NN_OK);
    assert_memory_equal(g, net->grads, net->n_params * sizeof(float));
    /* accumulation: a second backward doubles the gradients */
    assert_int_equal(nn_net_backward(net, dz, NULL, 1, &err), NN_OK);
    for (size_t i = 0; i < net->n_params; i++)
        assert_close(net->grads[i], 2.0 * g[i], 1e-6, 1e-6);
    free(g);
    nn_net_destroy(net);
}

/* backward_at: L = CE(z) + c * sum(h^2) over the penultimate features h = act[3]: the parameter gradients
 * with dact = 2c h match central differences. Bad layer indices are errors. */
typedef struct featctx {
    gctx g;
    float c;
} featctx;

static double feat_loss(void *p, const float *unused) {
    featctx *f = p;
    double l = loss_of(&f->g, unused), s = 0;
    const float *h = f->g.net->act[3];
    for (size_t i = 0; i < f->g.n * nn_shape_size(f->g.net->layers[3].out); i++)
        s += (double)h[i] * h[i];
    return l + f->c * s;
}

static void test_backward_at(void **state) {
    (void)state;
    nn_layer_cfg c[5];
    mlp_cfgs(c);
    nn_net *net = net_make(MLP_IN, c, 5, 21, 4);
    float x[4 * 5], dz[4 * 4], dact[4 * 6];
    int y[4] = {0, 3, 1, 2};
    fill_uniform(x, 20, -1, 1, 22);
    featctx f = {.c = 0.05f};
    gctx_init(&f.g, net, x, y, 4);
    const float *z;
    nn_err err;
    assert_int_equal(nn_net_forward(net, x, 4, 0, NULL, &z, &err), NN_OK);
    ce(z, y, 4, 4, dz);
    for (size_t i = 0; i < 4 * 6; i++)
        dact[i] = 2.0f * f.c * net->act[3][i];
    nn_net_zero_grad(net);
    assert_int_equal(nn_net_backward_at(net, dz, 3, dact, NULL, 1, &err), NN_OK);
    float *g = malloc(net->n_params * sizeof(float));
    memcpy(g, net->grads, net->n_params * sizeof(float));
    f.g.target = net->params;
    size_t checked = gradcheck(feat_loss, skip_kink, &f, net->params, net->n_params, g, 5e-3, 3e-4, 2e-2, 200,
                               "backward_at params");
    assert_true(checked >= net->n_params * 3 / 4);
    /* the feature term changes the gradients (it is not silently dropped) */
    nn_net_zero_grad(net);
    assert_int_equal(nn_net_forward(net, x, 4, 0, NULL, &z, &err), NN_OK);
    assert_int_equal(nn_net_backward(net, dz, NULL, 1, &err), NN_OK);
    assert_true(memcmp(g, net->grads, net->n_params * sizeof(float)) != 0);
    assert_int_equal(nn_net_backward_at(net, dz, 4, dact, NULL, 1, &err), NN_E_INVAL);
    assert_int_equal(nn_net_backward_at(net, dz, 3, NULL, NULL, 1, &err), NN_E_INVAL);
    free(g);
    gctx_free(&f.g);
    nn_net_destroy(net);
}

/* input_grad runs in eval mode: with dropout after a training forward it equals the net without it. */
static void test_input_grad_eval_mode(void **state) {
    (void)state;
    nn_layer_cfg a[4] = {L_("dense", 7), L_("relu", 0), L_("dropout", 0), L_("dense", 3)};
    nn_layer_cfg b[3] = {L_("dense", 7), L_("relu", 0), L_("dense", 3)};
    nn_net *na = net_make(MLP_IN, a, 4, 9, 2), *nb = net_make(MLP_IN, b, 3, 9, 2);
    assert_memory_equal(na->params, nb->params, na->n_params * sizeof(float));
    float x[10], dxa[10], dxb[10];
    int y[2] = {1, 2};
    fill_uniform(x, 10, -1, 1, 10);
    gctx c = {.y = y};
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    const float *z;
    assert_int_equal(nn_net_forward(na, x, 2, 1, &rng, &z, NULL), NN_OK);
    assert_int_equal(nn_net_input_grad(na, x, 2, ce_dlogits, &c, dxa, NULL), NN_OK);
    assert_int_equal(nn_net_input_grad(nb, x, 2, ce_dlogits, &c, dxb, NULL), NN_OK);
    assert_memory_equal(dxa, dxb, sizeof dxa);
    nn_net_destroy(na);
    nn_net_destroy(nb);
}

static int abort_fn(void *ctx, const float *z, size_t n, size_t k, float *dz) {
    (void)ctx, (void)z, (void)n, (void)k, (void)dz;
    return NN_E_NUMERIC;
}

static void test_batch_limits(void **state) {
    (void)state;
    nn_layer_cfg c[5];
    mlp_cfgs(c);
    nn_net *net = net_make(MLP_IN, c, 5, 11, 4);
    float x[8 * 5], dx[8 * 5];
    fill_uniform(x, 40, -1, 1, 12);
    const float *z;
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(nn_net_forward(net, x, 5, 0, NULL, &z, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "5"));
    assert_int_equal(nn_net_forward(net, x, 0, 0, NULL, &z, &err), NN_E_INVAL);
    assert_int_equal(nn_net_forward(net, x, 2, 1, NULL, &z, &err), NN_E_INVAL); /* train needs an rng */
    assert_int_equal(nn_net_input_grad(net, x, 5, ce_dlogits, NULL, dx, &err), NN_E_INVAL);
    assert_int_equal(nn_net_input_grad(net, x, 2, abort_fn, NULL, dx, &err), NN_E_NUMERIC);
    assert_int_equal(nn_net_reserve(net, 2, &err), NN_OK); /* smaller: no-op */
    assert_int_equal(net->max_batch, 4);
    assert_int_equal(nn_net_reserve(net, 8, &err), NN_OK);
    assert_int_equal(nn_net_forward(net, x, 8, 0, NULL, &z, &err), NN_OK);
    assert_int_equal(nn_net_reserve(net, 0, &err), NN_E_INVAL);
    nn_net_destroy(net);
    nn_net_destroy(NULL);
}

static void test_predict_batches(void **state) {
    (void)state;
    nn_layer_cfg c[5];
    mlp_cfgs(c);
    nn_net *small = net_make(MLP_IN, c, 5, 13, 3), *big = net_make(MLP_IN, c, 5, 13, 7);
    float x[7 * 5], out[7 * 4];
    fill_uniform(x, 35, -1, 1, 14);
    assert_int_equal(nn_net_predict(small, x, 7, out, NULL), NN_OK);
    const float *z;
    assert_int_equal(nn_net_forward(big, x, 7, 0, NULL, &z, NULL), NN_OK);
    assert_close_array(out, z, 28, 1e-6, 1e-5, "predict vs forward");
    nn_net_destroy(small);
    nn_net_destroy(big);
}

static void expect_create_error(nn_shape in, const nn_layer_cfg *c, size_t n, int code, const char *a,
                                const char *b) {
    nn_net *net = (nn_net *)&net; /* must be reset to NULL */
    nn_err err;
    nn_err_clear(&err);
    assert_int_equal(nn_net_create(&net, in, c, n, &err), code);
    assert_null(net);
    if (!strstr(err.msg, a) || !strstr(err.msg, b))
        fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", err.msg, a, b);
}

static void test_bad_configs(void **state) {
    (void)state;
    nn_shape img = {1, 8, 8};
    nn_layer_cfg units0[3] = {L_("dense", 10), L_("relu", 0), L_("dense", 0)};
    expect_create_error(MLP_IN, units0, 3, NN_E_INVAL, "layer 2 (dense)", "units");
    nn_layer_cfg noflat[3] = {L_("conv2d", 4), L_("relu", 0), L_("dense", 10)};
    expect_create_error(img, noflat, 3, NN_E_SHAPE, "layer 2 (dense)", "flatten first");
    nn_layer_cfg unknown[2] = {L_("relu", 0), L_("dense", 3)};
    strcpy(unknown[1].kind, "dens");
    expect_create_error(MLP_IN, unknown, 2, NN_E_INVAL, "layer 1", "unknown kind \"dens\"");
    nn_layer_cfg rate[2] = {L_("dense", 3), L_("dropout", 0)};
    rate[1].rate = 1.5f;
    expect_create_error(MLP_IN, rate, 2, NN_E_INVAL, "layer 1 (dropout)", "rate");
    nn_layer_cfg extra[2] = {L_("relu", 0), L_("dense", 3)};
    extra[0].units = 5;
    expect_create_error(MLP_IN, extra, 2, NN_E_INVAL, "layer 0 (relu)", "units is not a relu setting");
    nn_layer_cfg big_kernel[1] = {L_("conv2d", 2)};
    big_kernel[0].kernel = 9;
    expect_create_error(img, big_kernel, 1, NN_E_SHAPE, "layer 0 (conv2d)", "kernel");
    expect_create_error(MLP_IN, units0, 0, NN_E_INVAL, "at least one layer", "");
    expect_create_error((nn_shape){0, 1, 1}, units0, 3, NN_E_SHAPE, "empty", "");
    /* 4294967296 * 4294967296 wraps to 0 in size_t: caught by the per-dimension limit, not "empty" */
    expect_create_error((nn_shape){(size_t)1 << 32, (size_t)1 << 32, 1}, units0, 3, NN_E_SHAPE, "too large", "");
}

static void test_seed_determinism(void **state) {
    (void)state;
    nn_layer_cfg c[5];
    mlp_cfgs(c);
    nn_net *a = net_make(MLP_IN, c, 5, 42, 1), *b = net_make(MLP_IN, c, 5, 42, 1),
           *d = net_make(MLP_IN, c, 5, 43, 1);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_memory_not_equal(a->params, d->params, a->n_params * sizeof(float));
    for (size_t j = 0; j < 8; j++)
        assert_true(a->params[40 + j] == 0.0f); /* biases start at 0 */
    assert_true(a->temperature == 1.0f);
    assert_int_equal(a->n_classes, 4);
    char buf[512];
    nn_net_summary(a, buf, sizeof buf);
    assert_non_null(strstr(buf, "0 dense 5x1x1 -> 8x1x1 48 params"));
    assert_non_null(strstr(buf, "4 dense 6x1x1 -> 4x1x1 28 params"));
    assert_non_null(strstr(buf, "total 130 params"));
    nn_net_summary(a, buf, 10); /* truncated, still terminated */
    assert_int_equal(strlen(buf), 9);
    nn_net_destroy(a), nn_net_destroy(b), nn_net_destroy(d);
}

/* One training step's numbers (logits, param grads, input grad) with 1 and 2 threads, bitwise. */
static void run_step(nn_net *net, const float *x, const int *y, size_t n, float *out) {
    const float *z;
    nn_rng rng;
    nn_rng_seed(&rng, 77);
    size_t k = net->n_classes;
    float *dz = malloc(n * k * sizeof(float));
    nn_net_zero_grad(net);
    assert_int_equal(nn_net_forward(net, x, n, 1, &rng, &z, NULL), NN_OK);
    memcpy(out, z, n * k * sizeof(float));
    ce(z, y, n, k, dz);
    assert_int_equal(nn_net_backward(net, dz, out + n * k, 1, NULL), NN_OK);
    memcpy(out + n * k + n * net->n_in, net->grads, net->n_params * sizeof(float));
    free(dz);
}

static void check_threads(nn_shape in, const nn_layer_cfg *c, size_t nl, size_t n) {
    nn_net *net = net_make(in, c, nl, 21, n);
    size_t len = n * net->n_classes + n * net->n_in + net->n_params;
    float *x = malloc(n * net->n_in * sizeof(float)), *o1 = malloc(len * sizeof(float)),
          *o2 = malloc(len * sizeof(float));
    int *y = malloc(n * sizeof(int));
    fill_uniform(x, n * net->n_in, -1, 1, 22);
    for (size_t i = 0; i < n; i++)
        y[i] = (int)(i % net->n_classes);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    run_step(net, x, y, n, o1);
    omp_set_num_threads(2);
    run_step(net, x, y, n, o2);
    omp_set_num_threads(saved);
    assert_memory_equal(o1, o2, len * sizeof(float));
    free(x), free(o1), free(o2), free(y);
    nn_net_destroy(net);
}

/* Sizes above the OpenMP thresholds (64 x 512 activations) so the parallel paths run. */
static void test_threads_mlp(void **state) {
    (void)state;
    nn_layer_cfg c[7] = {L_("dense", 512), L_("relu", 0), L_("dropout", 0),
                         L_("dense", 512), L_("relu", 0), L_("dense", 10)};
    check_threads((nn_shape){256, 1, 1}, c, 6, 64);
}

static void test_threads_cnn(void **state) {
    (void)state;
    nn_layer_cfg c[6] = {L_("conv2d", 16), L_("relu", 0),    L_("maxpool", 2),
                         L_("flatten", 0), L_("dropout", 0), L_("dense", 10)};
    check_threads((nn_shape){3, 16, 16}, c, 6, 64);
}

static void test_cnn_grads(void **state) {
    (void)state;
    nn_layer_cfg c[5] = {L_("conv2d", 4), L_("relu", 0), L_("maxpool", 2), L_("flatten", 0), L_("dense", 3)};
    nn_net *net = net_make((nn_shape){1, 8, 8}, c, 5, 31, 2);
    assert_int_equal(net->n_classes, 3);
    float x[2 * 64];
    int y[2] = {2, 0};
    fill_uniform(x, 128, -1, 1, 32);
    check_input_grad(net, x, y, 2, "cnn input");
    check_param_grads(net, x, y, 2, 160, "cnn params");
    nn_net_destroy(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_param_grads),
        cmocka_unit_test(test_mlp_input_grad),
        cmocka_unit_test(test_backward_dx_optional),
        cmocka_unit_test(test_backward_at),
        cmocka_unit_test(test_input_grad_eval_mode),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_predict_batches),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_threads_mlp),
        cmocka_unit_test(test_threads_cnn),
        cmocka_unit_test(test_cnn_grads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
