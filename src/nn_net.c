/* nn_net.c - a network: layers in sequence over one memory block.
 *
 * Memory: parameters and gradients are two flat vectors of identical layout (layer i's tensors at the
 * same offset in both), allocated at create. nn_net_reserve carves one block, each segment rounded up
 * to 16 floats (64 bytes):
 *   act[i]   out_i * max_batch        output of layer i (act[L-1] = logits)
 *   aux_i    n_aux_i * max_batch      kept from forward to backward (dropout mask)
 *   scratch  max_i n_scratch_i * max_batch, shared (im2col)
 *   gbuf[2]  max_i out_i * max_batch  backward ping-pong
 * Backward: layer i reads dy from gbuf[(i+1) % 2] (layer L-1 from the caller's dlogits) and writes dx
 * into gbuf[i % 2]; layer 0 writes into the caller's dx. nn_net_input_grad puts the dlogits in
 * gbuf[L % 2], which is the buffer layer L-1 reads and layer L-2 writes only after it. */
#include "nn_net.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_FLOATS 16

/* Bits of the cfg fields that are set (non-zero). */
static unsigned cfg_fields_set(const nn_layer_cfg *c) {
    unsigned f = 0;
    if (c->units) f |= NN_F_UNITS;
    if (c->filters) f |= NN_F_FILTERS;
    if (c->kernel) f |= NN_F_KERNEL;
    if (c->stride) f |= NN_F_STRIDE;
    if (c->pad) f |= NN_F_PAD;
    if (c->rate != 0.0f) f |= NN_F_RATE;
    if (c->init) f |= NN_F_INIT;
    return f;
}

/* Sets up layer i of kind cfg->kind on input shape `in`. Errors name the layer index and kind. */
static int layer_setup(nn_layer *l, size_t i, const nn_layer_cfg *cfg, nn_shape in, nn_err *err) {
    l->cfg = *cfg;
    l->cfg.kind[sizeof l->cfg.kind - 1] = '\0';
    const char *kind = l->cfg.kind;
    l->ops = nn_layer_ops_find(kind);
    if (!l->ops) {
        char known[128];
        nn_layer_kinds_list(known, sizeof known);
        return NN_FAIL(err, NN_E_INVAL, "layer %zu: unknown kind \"%s\" (known: %s)", i, kind, known);
    }
    unsigned extra = cfg_fields_set(&l->cfg) & ~l->ops->fields;
    for (size_t k = 0; k < NN_LAYER_N_FIELDS; k++)
        if (extra & nn_layer_fields[k].bit)
            return NN_FAIL(err, NN_E_INVAL, "layer %zu (%s): %s is not a %s setting", i, kind,
                           nn_layer_fields[k].name, kind);
    l->in = in;
    nn_err e;
    nn_err_clear(&e);
    int rc = l->ops->setup(l, &e);
    if (rc) return NN_FAIL(err, rc, "layer %zu (%s): %s", i, kind, e.msg);
    if (nn_shape_size(l->out) == 0)
        return NN_FAIL(err, NN_E_SHAPE, "layer %zu (%s): input %zux%zux%zu gives an empty output", i, kind,
                       in.c, in.h, in.w);
    return NN_OK;
}

int nn_net_create(nn_net **out, nn_shape in, const nn_layer_cfg *cfgs, size_t n, nn_err *err) {
    int rc = NN_OK;
    nn_net *net = NULL;
    *out = NULL;
    if (n == 0 || !cfgs) return NN_FAIL(err, NN_E_INVAL, "a net needs at least one layer");
    if (in.c == 0 || in.h == 0 || in.w == 0)
        return NN_FAIL(err, NN_E_SHAPE, "input shape %zux%zux%zu is empty", in.c, in.h, in.w);
    if (in.c > NN_MAX_DIM || in.h > NN_MAX_DIM || in.w > NN_MAX_DIM ||
        (double)in.c * (double)in.h * (double)in.w > (double)NN_MAX_DIM * 2048.0)
        return NN_FAIL(err, NN_E_SHAPE, "input shape %zux%zux%zu is too large (each dimension <= %d, C*H*W <= 2^31)",
                       in.c, in.h, in.w, NN_MAX_DIM);
    net = calloc(1, sizeof *net);
    if (!net) return NN_FAIL(err, NN_E_NOMEM, "net");
    net->n_layers = n;
    net->in_shape = in;
    net->n_in = nn_shape_size(in);
    net->temperature = 1.0f;
    net->layers = calloc(n, sizeof *net->layers);
    net->act = calloc(n, sizeof *net->act);
    if (!net->layers || !net->act) {
        rc = NN_FAIL(err, NN_E_NOMEM, "net layers");
        goto fail;
    }
    nn_shape cur = in;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        rc = layer_setup(&net->layers[i], i, &cfgs[i], cur, err);
        if (rc) goto fail;
        if (net->layers[i].n_params > SIZE_MAX / sizeof(float) - total) {
            rc = NN_FAIL(err, NN_E_INVAL, "layer %zu (%s): too many parameters", i, net->layers[i].cfg.kind);
            goto fail;
        }
        total += net->layers[i].n_params;
        cur = net->layers[i].out;
    }
    net->n_classes = nn_shape_size(cur);
    net->n_params = total;
    net->params = calloc(total ? total : 1, sizeof(float));
    net->grads = calloc(total ? total : 1, sizeof(float));
    if (!net->params || !net->grads) {
        rc = NN_FAIL(err, NN_E_NOMEM, "%zu parameters", total);
        goto fail;
    }
    for (size_t i = 0, off = 0; i < n; i++) {
        net->layers[i].w = net->params + off;
        off += net->layers[i].n_params;
    }
    *out = net;
    return NN_OK;
fail:
    nn_net_destroy(net);
    return rc;
}

void nn_net_destroy(nn_net *net) {
    if (!net) return;
    free(net->block);
    free(net->params);
    free(net->grads);
    free(net->act);
    free(net->layers);
    free(net);
}

void nn_net_init(nn_net *net, nn_rng *rng) {
    for (size_t i = 0; i < net->n_layers; i++) {
        nn_layer *l = &net->layers[i];
        if (l->ops->init && l->n_params) l->ops->init(l, rng);
    }
}

/* Adds a segment of a*b floats (rounded up to ALIGN_FLOATS) to *total; 0 on overflow. */
static int seg_add(size_t *total, size_t a, size_t b) {
    if (a && b > SIZE_MAX / a) return 0;
    size_t s = a * b;
    if (s > SIZE_MAX - ALIGN_FLOATS) return 0;
    s = (s + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    if (s > SIZE_MAX - *total) return 0;
    *total += s;
    return 1;
}

/* Floats needed for batch mb (SIZE_MAX on overflow); when base != NULL also points the act, aux,
 * scratch and gbuf views into base. The offsets are those of the counting pass. */
static size_t block_layout(nn_net *net, size_t mb, float *base) {
    size_t total = 0, max_act = 0, max_scratch = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        nn_layer *l = &net->layers[i];
        size_t o = nn_shape_size(l->out);
        if (base) net->act[i] = base + total;
        if (!seg_add(&total, o, mb)) return SIZE_MAX;
        if (base) l->aux = l->n_aux ? base + total : NULL;
        if (!seg_add(&total, l->n_aux, mb)) return SIZE_MAX;
        if (o > max_act) max_act = o;
        if (l->n_scratch > max_scratch) max_scratch = l->n_scratch;
    }
    for (size_t i = 0; base && i < net->n_layers; i++)
        net->layers[i].scratch = base + total;
    if (!seg_add(&total, max_scratch, mb)) return SIZE_MAX;
    for (int k = 0; k < 2; k++) {
        if (base) net->gbuf[k] = base + total;
        if (!seg_add(&total, max_act, mb)) return SIZE_MAX;
    }
    return total;
}

int nn_net_reserve(nn_net *net, size_t max_batch, nn_err *err) {
    if (max_batch == 0 || max_batch > INT_MAX)
        return NN_FAIL(err, NN_E_INVAL, "max_batch %zu is not in 1..%d", max_batch, INT_MAX);
    if (net->block && max_batch <= net->max_batch) return NN_OK;
    size_t floats = block_layout(net, max_batch, NULL);
    if (floats == SIZE_MAX || floats > SIZE_MAX / sizeof(float))
        return NN_FAIL(err, NN_E_NOMEM, "work memory for batch %zu overflows size_t", max_batch);
    void *p = NULL;
    if (posix_memalign(&p, ALIGN_FLOATS * sizeof(float), floats * sizeof(float)) != 0 || !p)
        return NN_FAIL(err, NN_E_NOMEM, "work memory for batch %zu: %zu MB", max_batch,
                       floats * sizeof(float) >> 20);
    memset(p, 0, floats * sizeof(float));
    free(net->block);
    net->block = p;
    net->max_batch = max_batch;
    net->n_last = 0; /* activations of an earlier forward are gone */
    net->x_in = NULL;
    block_layout(net, max_batch, net->block);
    return NN_OK;
}

int nn_net_forward(nn_net *net, const float *x, size_t n, int train, nn_rng *rng, const float **logits,
                   nn_err *err) {
    if (!x || !logits) return NN_FAIL(err, NN_E_INVAL, "forward: x and logits must not be NULL");
    if (n == 0 || n > net->max_batch)
        return NN_FAIL(err, NN_E_INVAL,
                       "forward: batch of %zu samples is not in 1..%zu (max_batch, see "
                       "nn_net_reserve)",
                       n, net->max_batch);
    if (train && !rng) return NN_FAIL(err, NN_E_INVAL, "forward: training mode needs an rng");
    const float *in = x;
    for (size_t i = 0; i < net->n_layers; i++) {
        nn_layer *l = &net->layers[i];
        l->ops->forward(l, in, net->act[i], n, train, rng);
        in = net->act[i];
    }
    net->x_in = x;
    net->n_last = n;
    *logits = net->act[net->n_layers - 1];
    return NN_OK;
}

/* Backward from dlogits; with dact, dact is added to the gradient of act[at] before layer at's backward. */
static int backward(nn_net *net, const float *dlogits, size_t at, const float *dact, float *dx, int param_grads,
                    nn_err *err) {
    if (!dlogits) return NN_FAIL(err, NN_E_INVAL, "backward: dlogits must not be NULL");
    if (net->n_last == 0 || !net->x_in) return NN_FAIL(err, NN_E_INVAL, "backward without a forward");
    size_t L = net->n_layers, n = net->n_last, lo = 0;
    if (!dx) { /* nothing is needed below the first layer with parameters */
        if (!param_grads) return NN_OK;
        while (lo < L && net->layers[lo].n_params == 0)
            lo++;
        if (lo == L) return NN_OK;
    }
    const float *dy = dlogits;
    for (size_t i = L; i-- > lo;) {
        nn_layer *l = &net->layers[i];
        if (dact && i == at) { /* dy is a gradient buffer here (at < L - 1) */
            float *d = (float *)dy;
            size_t m = n * nn_shape_size(l->out);
            for (size_t j = 0; j < m; j++)
                d[j] += dact[j];
        }
        const float *x = i ? net->act[i - 1] : net->x_in;
        float *dxi = i == 0 ? dx : (i > lo ? net->gbuf[i % 2] : NULL);
        float *dw = param_grads && l->n_params ? net->grads + (size_t)(l->w - net->params) : NULL;
        l->ops->backward(l, x, net->act[i], dy, dxi, dw, n);
        dy = dxi;
    }
    return NN_OK;
}

int nn_net_backward(nn_net *net, const float *dlogits, float *dx, int param_grads, nn_err *err) {
    return backward(net, dlogits, 0, NULL, dx, param_grads, err);
}

int nn_net_backward_at(nn_net *net, const float *dlogits, size_t at, const float *dact, float *dx, int param_grads,
                       nn_err *err) {
    if (!dact) return NN_FAIL(err, NN_E_INVAL, "backward_at: dact must not be NULL");
    if (at + 1 >= net->n_layers)
        return NN_FAIL(err, NN_E_INVAL, "backward_at: layer %zu is not below the last of %zu layers", at,
                       net->n_layers);
    /* the gradient must reach layer at: below the first layer with parameters only when dx is asked */
    size_t lo = 0;
    while (!dx && lo < net->n_layers && net->layers[lo].n_params == 0)
        lo++;
    if (at < lo) return NN_FAIL(err, NN_E_INVAL, "backward_at: layer %zu is below every parameter", at);
    return backward(net, dlogits, at, dact, dx, param_grads, err);
}

void nn_net_zero_grad(nn_net *net) {
    if (net->n_params) memset(net->grads, 0, net->n_params * sizeof(float));
}

int nn_net_input_grad(nn_net *net, const float *x, size_t n, nn_dlogits_fn fn, void *ctx, float *dx,
                      nn_err *err) {
    if (!fn) return NN_FAIL(err, NN_E_INVAL, "input_grad: no dlogits function");
    const float *logits = NULL;
    int rc = nn_net_forward(net, x, n, 0, NULL, &logits, err);
    if (rc) return rc;
    float *dlogits = net->gbuf[net->n_layers % 2];
    rc = fn(ctx, logits, n, net->n_classes, dlogits);
    if (rc) return NN_FAIL(err, rc, "input_grad: the dlogits function returned %d", rc);
    return nn_net_backward(net, dlogits, dx, 0, err);
}

int nn_net_predict(nn_net *net, const float *x, size_t n, float *out, nn_err *err) {
    if (n && (!x || !out)) return NN_FAIL(err, NN_E_INVAL, "predict: x and out must not be NULL");
    if (n && net->max_batch == 0)
        return NN_FAIL(err, NN_E_INVAL, "predict: net not reserved (nn_net_reserve)");
    size_t k = net->n_classes;
    for (size_t off = 0; off < n; off += net->max_batch) {
        size_t b = n - off < net->max_batch ? n - off : net->max_batch;
        const float *logits = NULL;
        int rc = nn_net_forward(net, x + off * net->n_in, b, 0, NULL, &logits, err);
        if (rc) return rc;
        memcpy(out + off * k, logits, b * k * sizeof(float));
    }
    return NN_OK;
}

void nn_net_summary(const nn_net *net, char *buf, size_t cap) {
    if (!buf || cap == 0) return;
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i <= net->n_layers && pos < cap; i++) {
        int w;
        if (i == net->n_layers) {
            w = snprintf(buf + pos, cap - pos, "total %zu params\n", net->n_params);
        } else {
            const nn_layer *l = &net->layers[i];
            w = snprintf(buf + pos, cap - pos, "%zu %s %zux%zux%zu -> %zux%zux%zu %zu params\n", i,
                         l->cfg.kind, l->in.c, l->in.h, l->in.w, l->out.c, l->out.h, l->out.w, l->n_params);
        }
        if (w < 0) break;
        pos += (size_t)w;
    }
}
