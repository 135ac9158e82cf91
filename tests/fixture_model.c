/* fixture_model.c - writes random models, inputs and our logits for the PyTorch cross-check.
 *
 * Usage: fixture_model OUTDIR
 * Writes OUTDIR/model.safetensors, x.npy [64,1,28,28], logits.npy [64,10]: the MNIST CNN of Carlini &
 * Wagner (conv3x3x32 relu conv3x3x32 relu maxpool2 conv3x3x64 relu conv3x3x64 relu maxpool2 flatten
 * dense200 relu dropout0.5 dense200 relu dense10), temperature 20; and OUTDIR/mlp.safetensors,
 * mlp.x.npy, mlp.logits.npy: flatten dense100(glorot) relu dense10, temperature 1.
 * Weights are seeded He/Glorot, biases random non-zero (so a bias loaded into the wrong place shows),
 * inputs uniform in [0,1). Logits are in eval mode (dropout off). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_io.h"
#include "nn_model.h"
#include "nn_net.h"

#define N_SAMPLES 64

static nn_layer_cfg layer(const char *kind, size_t size, size_t kernel) {
    nn_layer_cfg c = nn_layer_cfg_default(kind);
    if (strcmp(kind, "conv2d") == 0) c.filters = size, c.kernel = kernel;
    if (strcmp(kind, "dense") == 0) c.units = size;
    if (strcmp(kind, "maxpool") == 0) c.kernel = kernel;
    return c;
}

/* Biases ~ U(-0.2, 0.2) excluding a small band around 0. */
static void random_biases(nn_net *net, nn_rng *rng) {
    for (size_t i = 0; i < net->n_layers; i++) {
        nn_layer *l = &net->layers[i];
        nn_param_desc pd[2];
        int np = l->ops->params ? l->ops->params(l, pd) : 0;
        for (int t = 0; t < np; t++) {
            if (strcmp(pd[t].suffix, "bias") != 0) continue;
            for (size_t j = 0; j < pd[t].dims[0]; j++) {
                float u = nn_rng_uniform(rng) * 0.19f + 0.01f;
                l->w[pd[t].offset + j] = (nn_rng_u64(rng) & 1) ? u : -u;
            }
        }
    }
}

static int write_case(const char *dir, const char *stem, const char *xname, const char *lname,
                      const nn_layer_cfg *cfgs, size_t n_layers, float temperature, uint64_t seed,
                      nn_err *err) {
    char path[4096];
    nn_shape in = {1, 28, 28};
    nn_net *net = NULL;
    float *x = NULL, *logits = NULL;
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    int rc = nn_net_create(&net, in, cfgs, n_layers, err);
    if (rc) goto fail;
    nn_net_init(net, &rng);
    random_biases(net, &rng);
    net->temperature = temperature;
    if ((rc = nn_net_reserve(net, N_SAMPLES, err))) goto fail;
    x = malloc(sizeof(float) * N_SAMPLES * net->n_in);
    logits = malloc(sizeof(float) * N_SAMPLES * net->n_classes);
    if (!x || !logits) {
        rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < (size_t)N_SAMPLES * net->n_in; i++)
        x[i] = nn_rng_uniform(&rng);
    if ((rc = nn_net_predict(net, x, N_SAMPLES, logits, err))) goto fail;
    nn_model_meta meta = {0};
    if ((rc = nn_model_meta_set(&meta, "fixture", stem, err))) goto fail;
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, stem);
    if ((rc = nn_model_save(net, &meta, path, err))) goto fail;
    size_t xd[4] = {N_SAMPLES, 1, 28, 28}, ld[2] = {N_SAMPLES, net->n_classes};
    snprintf(path, sizeof path, "%s/%s", dir, xname);
    if ((rc = nn_npy_write_f32(path, x, 4, xd, err))) goto fail;
    snprintf(path, sizeof path, "%s/%s", dir, lname);
    rc = nn_npy_write_f32(path, logits, 2, ld, err);
fail:
    free(x);
    free(logits);
    nn_net_destroy(net);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    nn_layer_cfg cnn[] = {layer("conv2d", 32, 3), layer("relu", 0, 0),    layer("conv2d", 32, 3),
                          layer("relu", 0, 0),    layer("maxpool", 0, 2), layer("conv2d", 64, 3),
                          layer("relu", 0, 0),    layer("conv2d", 64, 3), layer("relu", 0, 0),
                          layer("maxpool", 0, 2), layer("flatten", 0, 0), layer("dense", 200, 0),
                          layer("relu", 0, 0),    layer("dropout", 0, 0), layer("dense", 200, 0),
                          layer("relu", 0, 0),    layer("dense", 10, 0)};
    nn_layer_cfg mlp[] = {layer("flatten", 0, 0), layer("dense", 100, 0), layer("relu", 0, 0),
                          layer("dense", 10, 0)};
    mlp[1].init = NN_INIT_GLOROT;
    nn_err err = {0};
    if (write_case(argv[1], "model", "x.npy", "logits.npy", cnn, sizeof cnn / sizeof cnn[0], 20.0f, 1234,
                   &err) ||
        write_case(argv[1], "mlp", "mlp.x.npy", "mlp.logits.npy", mlp, sizeof mlp / sizeof mlp[0], 1.0f, 99,
                   &err)) {
        fprintf(stderr, "fixture_model: %s\n", err.msg);
        return 1;
    }
    printf("fixture_model: wrote %s/{model,mlp}.safetensors and inputs/logits\n", argv[1]);
    return 0;
}
