/* bench_bss.c - boundary-supporting-sample (BSS) generation speed (C side; PyTorch side: torch_bss.py).
 *
 * Measures BSS per second on the Papernot/Carlini MNIST CNN teacher (the layers of bench_train.c's "cnn",
 * randomly initialised from seed 1: the speed does not depend on the weights), as BSS distillation makes
 * them per training batch: for each batch of 256 synthetic inputs (a pool of 8 batches, pixels U[0,1),
 * labels = the teacher's own predictions so that every sample is a candidate), atk_bss_select with the
 * teacher only (one forward of the batch; the first 64 correct samples), then atk_bss_generate on those 64
 * (SAMPLE targets, 10 steps, range [0, 1]; the teacher's logits on the results included, as the distillation
 * step needs them). BSS/s = 64 x batches / time.
 *
 * Same work on both sides: stopped samples are masked, not removed, on both sides (as in the official code),
 * so a batch costs 10 forward/backward passes on its 64 samples plus one forward for the final logits
 * unless ALL 64 have left their base class before the 10th step (the official early exit). Whether they do
 * depends on the weights, which differ between the two sides' random initialisations; the step size eta is
 * therefore 0.001 by default, so small that only samples with a near-tie between their two top logits cross
 * (a few percent with random weights) and no batch exits early. mean_steps and crossed on the result line
 * show it; --eta 0.3 (the official value) may make the sides do different work.
 * Protocol, identical to bench_train.c and torch_bss.py: warm-up of >= 5 batches and ~0.5 s (not timed),
 * calibration (half as many batches again, each timed; the fastest sets the batch count), then `repeats`
 * timed runs of a fixed number of batches chosen so that one run takes ~`seconds`; the median is reported.
 *
 * Usage: bench_bss [--seconds S] [--repeats R] [--batch B] [--base M] [--steps N] [--eta E] [--iters N]
 * Output: a "temper-info" line, then
 *   "temper cnn bss_per_s=<x> ms_per_batch=<x> iters=<n> runs=<a,b,c> threads=<t> mean_steps=<x> crossed=<x>"
 * (mean_steps and crossed: over the BSS of the timed runs). Exit status 1 on any failure. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atk_bss.h"
#include "bench_util.h"
#include "nn_err.h"
#include "nn_layer.h"
#include "nn_net.h"
#include "nn_rng.h"
#include "nn_sys.h"

#define N_POOL 8
#define N_LAYERS 17

typedef struct bench_opts {
    double seconds;
    size_t repeats, batch, base, iters;
    int steps;
    float eta;
} bench_opts;

/* Everything the loop needs; it allocates nothing but what atk_bss_select/generate allocate per call. */
typedef struct bench_ctx {
    nn_net *teacher;
    atk_bss_cfg cfg;
    size_t batch, d, k;
    float *x; /* [N_POOL, batch, d] */
    int *y;   /* [N_POOL, batch] the teacher's predictions */
    size_t *sel;
    float *xb;  /* [base, d] the selected base samples */
    float *out; /* [base, d] */
    float *logits;
    atk_bss_result *res;
    size_t drawn; /* base samples so far (random-stream index) */
    double steps_sum, n_bss, n_crossed;
} bench_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* bench_train.c's "cnn": conv3x3x32 relu conv3x3x32 relu maxpool2 conv3x3x64 relu conv3x3x64 relu maxpool2
 * flatten dense200 relu dropout0.5 dense200 relu dense10 (dropout is off in eval mode). */
static void cnn_layers(nn_layer_cfg *c) {
    const char *k[N_LAYERS] = {"conv2d", "relu",    "conv2d", "relu",    "maxpool", "conv2d",
                               "relu",   "conv2d",  "relu",   "maxpool", "flatten", "dense",
                               "relu",   "dropout", "dense",  "relu",    "dense"};
    const size_t s[N_LAYERS] = {32, 0, 32, 0, 0, 64, 0, 64, 0, 0, 0, 200, 0, 0, 200, 0, 10};
    for (size_t n = 0; n < N_LAYERS; n++) {
        c[n] = nn_layer_cfg_default(k[n]);
        if (!strcmp(k[n], "dense")) c[n].units = s[n];
        if (!strcmp(k[n], "conv2d")) c[n].filters = s[n], c[n].kernel = 3;
        if (!strcmp(k[n], "maxpool")) c[n].kernel = 2, c[n].stride = 2;
    }
}

static void ctx_free(bench_ctx *b) {
    nn_net_destroy(b->teacher);
    free(b->x), free(b->y), free(b->sel), free(b->xb), free(b->out), free(b->logits), free(b->res);
}

static int ctx_init(bench_ctx *b, const bench_opts *o, nn_err *err) {
    memset(b, 0, sizeof *b);
    b->batch = o->batch;
    nn_layer_cfg cfgs[N_LAYERS];
    cnn_layers(cfgs);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    int rc = nn_net_create(&b->teacher, (nn_shape){1, 28, 28}, cfgs, N_LAYERS, err);
    if (rc) return rc;
    nn_net_init(b->teacher, &rng);
    if ((rc = nn_net_reserve(b->teacher, o->batch, err))) return rc;
    b->d = b->teacher->n_in, b->k = b->teacher->n_classes;
    b->cfg = atk_bss_cfg_default();
    b->cfg.eta = o->eta, b->cfg.steps = o->steps, b->cfg.max_base = o->base, b->cfg.seed = 1;
    if ((rc = atk_bss_cfg_validate(&b->cfg, err))) return rc;
    size_t nx = N_POOL * o->batch;
    b->x = malloc(nx * b->d * sizeof *b->x);
    b->y = malloc(nx * sizeof *b->y);
    b->sel = malloc(o->batch * sizeof *b->sel);
    b->xb = malloc(o->base * b->d * sizeof *b->xb);
    b->out = malloc(o->base * b->d * sizeof *b->out);
    b->logits = malloc(nx * b->k * sizeof *b->logits); /* first the pool's logits, then the BSS' */
    b->res = malloc(o->base * sizeof *b->res);
    if (!b->x || !b->y || !b->sel || !b->xb || !b->out || !b->logits || !b->res)
        return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < nx * b->d; i++)
        b->x[i] = nn_rng_uniform(&rng);
    if ((rc = nn_net_predict(b->teacher, b->x, nx, b->logits, err))) return rc;
    for (size_t i = 0; i < nx; i++) {
        const float *z = b->logits + i * b->k;
        int a = 0;
        for (size_t j = 1; j < b->k; j++)
            if (z[j] > z[a]) a = (int)j;
        b->y[i] = a;
    }
    return NN_OK;
}

/* One batch: select the base samples (teacher only), gather them, generate their BSS. */
static int bss_step(bench_ctx *b, size_t i, nn_err *err) {
    const float *x = b->x + (i % N_POOL) * b->batch * b->d;
    const int *y = b->y + (i % N_POOL) * b->batch;
    size_t n_sel = 0;
    int rc = atk_bss_select(b->teacher, NULL, &b->cfg, x, y, b->batch, b->sel, &n_sel, err);
    if (rc) return rc;
    for (size_t r = 0; r < n_sel; r++)
        memcpy(b->xb + r * b->d, x + b->sel[r] * b->d, b->d * sizeof *x);
    rc = atk_bss_generate(b->teacher, &b->cfg, b->xb, n_sel, b->drawn, NULL, b->out, b->res, b->logits, err);
    if (rc) return rc;
    b->drawn += n_sel;
    for (size_t r = 0; r < n_sel; r++)
        b->steps_sum += b->res[r].steps, b->n_crossed += b->res[r].crossed;
    b->n_bss += (double)n_sel;
    return NN_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Warm-up, calibration, `repeats` timed runs; prints the result line. */
static int bench(const bench_opts *o, nn_err *err) {
    bench_ctx b;
    double runs[16], sorted[16];
    int rc = ctx_init(&b, o, err);
    if (rc) goto fail;
    size_t i = 0;
    double t0 = now_s();
    while (i < 5 || now_s() - t0 < 0.5)
        if ((rc = bss_step(&b, i++, err))) goto fail;
    size_t half = i / 2 > 2 ? i / 2 : 2; /* the fastest single batch of another half warm-up */
    double per_batch = 1e30;
    for (size_t k = 0; k < half; k++) {
        t0 = now_s();
        if ((rc = bss_step(&b, i + k, err))) goto fail;
        double dt = now_s() - t0;
        if (dt < per_batch) per_batch = dt;
    }
    size_t iters = o->iters ? o->iters : (size_t)(o->seconds / per_batch + 0.5);
    if (iters < 5) iters = 5;
    b.steps_sum = b.n_bss = b.n_crossed = 0.0;
    for (size_t r = 0; r < o->repeats; r++) {
        t0 = now_s();
        for (size_t it = 0; it < iters; it++)
            if ((rc = bss_step(&b, it, err))) goto fail;
        runs[r] = (double)(iters * o->base) / (now_s() - t0);
    }
    if (b.n_bss != (double)(iters * o->base * o->repeats)) {
        rc = NN_FAIL(err, NN_E_INVAL, "fewer than %zu base samples per batch", o->base);
        goto fail;
    }
    memcpy(sorted, runs, sizeof(double) * o->repeats);
    qsort(sorted, o->repeats, sizeof(double), cmp_double);
    double med =
        o->repeats % 2 ? sorted[o->repeats / 2] : 0.5 * (sorted[o->repeats / 2 - 1] + sorted[o->repeats / 2]);
    printf("temper cnn bss_per_s=%.1f ms_per_batch=%.3f iters=%zu runs=", med, 1000.0 * (double)o->base / med,
           iters);
    for (size_t r = 0; r < o->repeats; r++)
        printf("%s%.1f", r ? "," : "", runs[r]);
    printf(" threads=%d mean_steps=%.3f crossed=%.4f\n", omp_get_max_threads(), b.steps_sum / b.n_bss,
           b.n_crossed / b.n_bss);
    fflush(stdout);
fail:
    ctx_free(&b);
    return rc;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    o->seconds = 2.5, o->repeats = 3, o->batch = 256, o->base = 64, o->iters = 0, o->steps = 10,
    o->eta = 0.001f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        i++;
        if (strcmp(a, "--seconds") == 0)
            o->seconds = atof(v);
        else if (strcmp(a, "--repeats") == 0)
            o->repeats = (size_t)atoi(v);
        else if (strcmp(a, "--batch") == 0)
            o->batch = (size_t)atoi(v);
        else if (strcmp(a, "--base") == 0)
            o->base = (size_t)atoi(v);
        else if (strcmp(a, "--steps") == 0)
            o->steps = atoi(v);
        else if (strcmp(a, "--eta") == 0)
            o->eta = (float)atof(v);
        else if (strcmp(a, "--iters") == 0)
            o->iters = (size_t)atoi(v);
        else
            return -1;
    }
    if (o->seconds <= 0 || o->repeats < 1 || o->repeats > 16 || o->batch < 1 || o->base < 1 ||
        o->base > o->batch)
        return -1;
    return 0;
}

int main(int argc, char **argv) {
    bench_opts o;
    nn_err err;
    nn_err_clear(&err);
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr,
                "usage: %s [--seconds S] [--repeats R (1..16)] [--batch B] [--base M (<= B)] [--steps N] "
                "[--eta E] [--iters N]\n",
                argv[0]);
        return 2;
    }
    bench_print_info();
    if (nn_sys_check_blas(&err)) {
        fprintf(stderr, "bench_bss: %s\n", err.msg);
        return 1;
    }
    if (bench(&o, &err)) {
        fprintf(stderr, "bench_bss: %s (%s:%d)\n", err.msg, err.file ? err.file : "?", err.line);
        return 1;
    }
    return 0;
}
