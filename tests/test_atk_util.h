/* test_atk_util.h - the tiny networks the attack tests run on. Include after test_util.h. */
#ifndef TEST_ATK_UTIL_H
#define TEST_ATK_UTIL_H

#include "nn_data.h"
#include "nn_net.h"
#include "nn_rng.h"

/* A stack of dense layers d -> units[0] -> ... -> units[n-1] with ReLUs between them, He-initialised from
 * seed, input shape d x 1 x 1, reserved for max_batch. */
static inline nn_net *atk_test_dense(size_t d, const size_t *units, size_t n, uint64_t seed, size_t max_batch) {
    nn_layer_cfg cfgs[16];
    size_t m = 0;
    assert_true(n >= 1 && 2 * n <= 16);
    for (size_t i = 0; i < n; i++) {
        if (i) cfgs[m++] = nn_layer_cfg_default("relu");
        cfgs[m] = nn_layer_cfg_default("dense");
        cfgs[m++].units = units[i];
    }
    nn_net *net = NULL;
    nn_err err;
    nn_err_clear(&err);
    if (nn_net_create(&net, (nn_shape){d, 1, 1}, cfgs, m, &err)) fail_msg("nn_net_create: %s", err.msg);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    nn_net_init(net, &rng);
    if (nn_net_reserve(net, max_batch, &err)) fail_msg("nn_net_reserve: %s", err.msg);
    return net;
}

/* The ReLU MLP d -> h -> k. */
static inline nn_net *atk_test_mlp(size_t d, size_t h, size_t k, uint64_t seed, size_t max_batch) {
    size_t units[2] = {h, k};
    return atk_test_dense(d, units, 2, seed, max_batch);
}

/* The linear model z = W x + b: w[k, d] row-major, b[k] (NULL: zero). */
static inline nn_net *atk_test_linear(size_t d, size_t k, const float *w, const float *b, size_t max_batch) {
    nn_net *net = atk_test_dense(d, &k, 1, 1, max_batch);
    memcpy(net->params, w, d * k * sizeof(float));
    for (size_t j = 0; j < k; j++)
        net->params[d * k + j] = b ? b[j] : 0.0f;
    return net;
}

/* The same from double weights and biases (closed-form tests keep their constants in double). */
static inline nn_net *atk_test_linear_d(size_t d, size_t k, const double *w, const double *b, size_t max_batch) {
    nn_net *net = atk_test_dense(d, &k, 1, 1, max_batch);
    for (size_t i = 0; i < d * k; i++)
        net->params[i] = (float)w[i];
    for (size_t j = 0; j < k; j++)
        net->params[d * k + j] = (float)b[j];
    return net;
}

/* Gaussian blobs for the distillation tests: n samples of d features, class c = i % k centred at +1.5 on
 * features c and c + k (requires d >= 2k). Free with nn_dataset_free. */
static inline void atk_test_blobs(nn_dataset *ds, size_t n, size_t d, size_t k, uint64_t seed) {
    assert_true(d >= 2 * k);
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->shape = (nn_shape){d, 1, 1};
    ds->n_classes = k;
    ds->x = malloc(n * d * sizeof *ds->x);
    ds->y = malloc(n * sizeof *ds->y);
    ds->id = malloc(n * sizeof *ds->id);
    assert_true(ds->x && ds->y && ds->id);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        size_t c = i % k;
        ds->y[i] = (int)c;
        ds->id[i] = i;
        for (size_t j = 0; j < d; j++)
            ds->x[i * d + j] = nn_rng_normal(&rng) + ((j == c || j == c + k) ? 1.5f : 0.0f);
    }
}

#endif
