/* bench_bss.c - boundary-supporting-sample (BSS) generation speed (C side; PyTorch side: torch_bss.py).
 *
 * Measures BSS per second on the Papernot/Carlini MNIST CNN teacher, as BSS distillation makes them per
 * training batch: for each batch of 256 inputs (a pool of 8 batches, cycled), atk_bss_select with the teacher
 * only (one forward of the batch; the first 64 correctly classified samples), then atk_bss_generate on those
 * 64 (SAMPLE targets, 10 steps; the teacher's logits on the results included, as the distillation step needs
 * them). BSS/s = 64 x batches / time.
 *
 * Two set-ups:
 *  - default: the layers of bench_train.c's "cnn" randomly initialised from seed 1, synthetic inputs
 *    U[lo, hi) with labels = the teacher's own predictions (every sample is a candidate), range [0, 1];
 *  - realistic (--model FILE --data mnist --eta 0.3): a trained teacher (a temper model file, e.g.
 *    results/mnist_cnn/model.safetensors) on the first 8 x 256 MNIST training images with their true labels
 *    (selection keeps the correctly classified ones, as BSS distillation does), range = the model's
 *    temper.range metadata ([-0.5, 0.5] for the Carlini CNN) unless --range.
 *
 * The work per batch depends on the weights: atk_bss_generate (see atk_bss.c) evaluates every row at the
 * first step, then only the rows still active, gathered into a smaller batch, and stops when none is active;
 * the official code (and torch_bss.py by default) keeps all 64 rows in the batch until all have stopped.
 * With random weights and the default eta 0.001 only samples with a near-tie between their two top logits
 * cross (a few percent), so both sides run (almost) all 10 full passes. With a trained teacher and eta 0.3,
 * most samples cross within a few steps and temper's compaction pays; torch_bss.py --compact does the same
 * in PyTorch. mean_steps and crossed on the result line show the work done. Targets are random draws
 * (different generators on the two sides, the same distribution); --policy second takes the second-best
 * class instead, so that the same weights and data give the same crossings on both sides up to float
 * rounding.
 * Protocol, identical to bench_train.c and torch_bss.py: warm-up of >= 5 batches and ~0.5 s (not timed),
 * calibration (half as many batches again, each timed; the fastest sets the batch count, rounded to a
 * multiple of the pool's 8 batches so that every run covers the pool evenly), then `repeats` timed runs of
 * that many batches (~`seconds` each); the median is reported.
 *
 * Usage: bench_bss [--seconds S] [--repeats R] [--batch B] [--base M] [--steps N] [--eta E] [--iters N]
 *                  [--model FILE] [--data synthetic|mnist] [--range LO,HI] [--policy sample|second]
 * MNIST is read from $TEMPER_DATA/mnist or $HOME/.cache/temper/data/mnist (scripts/fetch_data.sh).
 * Output: a "temper-info" line, then
 *   "temper cnn bss_per_s=<x> ms_per_batch=<x> iters=<n> runs=<a,b,c> threads=<t> mean_steps=<x> crossed=<x>
 *    teacher=<random|FILE> data=<synthetic|mnist> range=<lo,hi> eta=<x> policy=<sample|second>"
 * (mean_steps and crossed: over the BSS of the timed runs). Exit status 1 on any failure. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atk_bss.h"
#include "bench_util.h"
#include "exp_run.h"
#include "nn_data.h"
#include "nn_err.h"
#include "nn_layer.h"
#include "nn_loss.h"
#include "nn_model.h"
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
    const char *model; /* NULL: the random CNN */
    int mnist;         /* real MNIST training images instead of synthetic inputs */
    int has_range;
    float lo, hi;
    atk_bss_policy policy;
} bench_opts;

/* Everything the loop needs; it allocates nothing but what atk_bss_select/generate allocate per call. */
typedef struct bench_ctx {
    nn_net *teacher;
    atk_bss_cfg cfg;
    size_t batch, d, k;
    float *x; /* [N_POOL, batch, d] */
    int *y;   /* [N_POOL, batch] the true labels (mnist) or the teacher's predictions (synthetic) */
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

/* The teacher: the model file (its temper.range into *lo, *hi unless given) or the random CNN (from rng). */
static int teacher_init(bench_ctx *b, const bench_opts *o, nn_rng *rng, float *lo, float *hi, nn_err *err) {
    if (!o->model) {
        nn_layer_cfg cfgs[N_LAYERS];
        cnn_layers(cfgs);
        int rc = nn_net_create(&b->teacher, (nn_shape){1, 28, 28}, cfgs, N_LAYERS, err);
        if (rc) return rc;
        nn_net_init(b->teacher, rng);
        return NN_OK;
    }
    nn_model_meta meta;
    int rc = nn_model_load(&b->teacher, &meta, o->model, err);
    if (rc) return rc;
    const char *range = nn_model_meta_get(&meta, EXP_META_RANGE);
    if (!o->has_range && range && exp_parse_range(range, lo, hi) != 0)
        return NN_FAIL(err, NN_E_FORMAT, "%s: metadata %s = '%s' is not 'lo,hi': give --range", o->model,
                       EXP_META_RANGE, range);
    return NN_OK;
}

/* The pool x[N_POOL * batch, d], y: the first MNIST training images with their labels, or U[lo, hi) with the
 * teacher's predictions. Every pool batch must hold >= base samples the teacher classifies correctly. */
static int pool_init(bench_ctx *b, const bench_opts *o, nn_rng *rng, nn_err *err) {
    size_t nx = N_POOL * o->batch;
    float lo = b->cfg.lo, hi = b->cfg.hi;
    int rc;
    if (o->mnist) {
        nn_data_cfg dc = nn_data_cfg_default();
        snprintf(dc.name, sizeof dc.name, "mnist");
        dc.lo = lo, dc.hi = hi, dc.val_size = 0, dc.subset = nx;
        dc.test_subset = 1; /* nn_data_load always reads the test file too */
        nn_dataset train, test;
        if ((rc = nn_data_load(&dc, &train, NULL, &test, err))) return rc;
        nn_dataset_free(&test);
        if (train.n < nx || nn_shape_size(train.shape) != b->d || train.n_classes != b->k) {
            rc = NN_FAIL(err, NN_E_SHAPE,
                         "mnist: %zu training images of %zu pixels and %zu classes; need %zu of %zu "
                         "and %zu",
                         train.n, nn_shape_size(train.shape), train.n_classes, nx, b->d, b->k);
            nn_dataset_free(&train);
            return rc;
        }
        memcpy(b->x, train.x, nx * b->d * sizeof *b->x);
        memcpy(b->y, train.y, nx * sizeof *b->y);
        nn_dataset_free(&train);
    } else {
        for (size_t i = 0; i < nx * b->d; i++)
            b->x[i] = lo + (hi - lo) * nn_rng_uniform(rng);
    }
    if ((rc = nn_net_predict(b->teacher, b->x, nx, b->logits, err))) return rc;
    for (size_t p = 0; p < N_POOL; p++) {
        size_t correct = 0;
        for (size_t i = p * o->batch; i < (p + 1) * o->batch; i++) {
            int a;
            nn_argmax(b->logits + i * b->k, 1, b->k, &a);
            if (!o->mnist) b->y[i] = a;
            correct += b->y[i] == a;
        }
        if (correct < o->base)
            return NN_FAIL(err, NN_E_INVAL,
                           "pool batch %zu: the teacher classifies only %zu of %zu correctly, "
                           "fewer than --base %zu",
                           p, correct, o->batch, o->base);
    }
    return NN_OK;
}

static int ctx_init(bench_ctx *b, const bench_opts *o, nn_err *err) {
    memset(b, 0, sizeof *b);
    b->batch = o->batch;
    b->cfg = atk_bss_cfg_default();
    b->cfg.lo = o->has_range ? o->lo : o->mnist ? -0.5f : 0.0f;
    b->cfg.hi = o->has_range ? o->hi : o->mnist ? 0.5f : 1.0f;
    nn_rng rng; /* the random CNN's weights, then the synthetic pool */
    nn_rng_seed(&rng, 1);
    int rc = teacher_init(b, o, &rng, &b->cfg.lo, &b->cfg.hi, err);
    if (rc) return rc;
    if ((rc = nn_net_reserve(b->teacher, o->batch, err))) return rc;
    b->d = b->teacher->n_in, b->k = b->teacher->n_classes;
    b->cfg.eta = o->eta, b->cfg.steps = o->steps, b->cfg.max_base = o->base, b->cfg.seed = 1;
    b->cfg.policy = o->policy;
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
    return pool_init(b, o, &rng, err);
}

/* One batch: select the base samples (teacher only), gather them, generate their BSS. */
static int bss_step(bench_ctx *b, size_t i, nn_err *err) {
    const float *x = b->x + (i % N_POOL) * b->batch * b->d;
    const int *y = b->y + (i % N_POOL) * b->batch;
    size_t n_sel = 0;
    int rc = atk_bss_select(b->teacher, NULL, &b->cfg, x, y, b->batch, NULL, b->sel, &n_sel, err);
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
    size_t iters = o->iters; /* else ~seconds, rounded to whole passes over the pool */
    if (!iters) iters = N_POOL * (size_t)(o->seconds / per_batch / N_POOL + 0.5);
    if (iters < 5) iters = o->iters ? 5 : N_POOL;
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
    printf(" threads=%d mean_steps=%.3f crossed=%.4f teacher=%s data=%s range=%g,%g eta=%g policy=%s\n",
           omp_get_max_threads(), b.steps_sum / b.n_bss, b.n_crossed / b.n_bss,
           o->model ? o->model : "random", o->mnist ? "mnist" : "synthetic", (double)b.cfg.lo,
           (double)b.cfg.hi, (double)o->eta, o->policy == ATK_BSS_SECOND ? "second" : "sample");
    fflush(stdout);
fail:
    ctx_free(&b);
    return rc;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    o->seconds = 2.5, o->repeats = 3, o->batch = 256, o->base = 64, o->iters = 0, o->steps = 10,
    o->eta = 0.001f, o->model = NULL, o->mnist = 0, o->has_range = 0, o->lo = 0.0f, o->hi = 1.0f,
    o->policy = ATK_BSS_SAMPLE;
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
        else if (strcmp(a, "--model") == 0)
            o->model = v;
        else if (strcmp(a, "--data") == 0 && (!strcmp(v, "mnist") || !strcmp(v, "synthetic")))
            o->mnist = !strcmp(v, "mnist");
        else if (strcmp(a, "--range") == 0 && exp_parse_range(v, &o->lo, &o->hi) == 0)
            o->has_range = 1;
        else if (strcmp(a, "--policy") == 0 && (!strcmp(v, "sample") || !strcmp(v, "second")))
            o->policy = !strcmp(v, "second") ? ATK_BSS_SECOND : ATK_BSS_SAMPLE;
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
                "[--eta E] [--iters N] [--model FILE] [--data synthetic|mnist] [--range LO,HI] "
                "[--policy sample|second]\n",
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
