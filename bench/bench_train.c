/* bench_train.c - training speed of the three MNIST nets (C side; PyTorch side: torch_train.py).
 *
 * Measures training samples/s: forward (train mode, dropout on) + cross-entropy at T=1 + backward
 * (parameter gradients, no input gradient) + one SGD step (lr 0.01, momentum 0.9) per batch of 128,
 * on synthetic data (a pool of 8 random batches: pixels U[0,1), labels uniform in 0..9).
 * Protocol, identical to torch_train.py: warm-up of >= 5 batches and ~0.5 s (not timed), calibration
 * (half as many batches again, each timed; the fastest sets the batch count), then `repeats` timed runs
 * of a fixed number of batches chosen so that one run takes ~`seconds`; the median is reported.
 *
 * Usage: bench_train [--net mlp800|mlp1200|cnn]... [--seconds S] [--repeats R] [--batch B]
 *                    [--iters N] [--layers] [--teacher NET]
 *   --iters N      fixed number of batches per run (no calibration; handy under perf)
 *   --layers       also print a per-layer forward/backward time breakdown (ms per batch)
 *   --teacher NET  distillation: each step also runs NET (eval mode, frozen) on the batch and the loss is
 *                  Hinton's KD (def_kd_loss on the fly: T 20, alpha 0.9, T^2) instead of CE
 * Output, one line per net: "temper <net> samples_per_s=<x> ms_per_batch=<x> iters=<n> runs=<a,b,c>
 * threads=<t>" (<net> is "<teacher>-<net>" with --teacher), preceded by a "temper-info" line (threads,
 * BLAS threading mode and config).
 * Exit status 1 on any failure (e.g. OpenBLAS not the OpenMP build). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "def_distill.h"
#include "nn_err.h"
#include "nn_layer.h"
#include "nn_loss.h"
#include "nn_net.h"
#include "nn_optim.h"
#include "nn_rng.h"
#include "nn_sys.h"

#define N_POOL 8
#define MAX_LAYERS 24

typedef struct bench_opts {
    const char *nets[8];
    size_t n_nets;
    double seconds;
    size_t repeats, batch, iters;
    int layers;
    const char *teacher; /* NULL: plain training */
} bench_opts;

/* Everything one net's benchmark needs; the loop never allocates. */
typedef struct bench_ctx {
    nn_net *net;
    nn_net *teacher; /* NULL: plain training; else distillation through kd */
    def_kd kd;
    nn_optim *opt;
    nn_rng rng;
    float *x;      /* [N_POOL, batch, 784] */
    int *y;        /* [N_POOL, batch] */
    float *dz;     /* [batch, 10] */
    float *gb[2];  /* per-layer profile: gradient ping-pong [batch, max activation] */
    size_t batch;
    double t_fwd[MAX_LAYERS], t_bwd[MAX_LAYERS], t_loss, t_step;
} bench_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static nn_layer_cfg L(const char *kind, size_t size) {
    nn_layer_cfg c = nn_layer_cfg_default(kind);
    if (strcmp(kind, "dense") == 0) c.units = size;
    if (strcmp(kind, "conv2d") == 0) {
        c.filters = size;
        c.kernel = 3;
    }
    if (strcmp(kind, "maxpool") == 0) {
        c.kernel = 2;
        c.stride = 2;
    }
    return c;
}

/* The layer list of net `name` (same order as the torch.nn.Sequential in torch_train.py). */
static size_t net_layers(const char *name, nn_layer_cfg *c) {
    size_t n = 0;
    if (strcmp(name, "mlp800") == 0 || strcmp(name, "mlp1200") == 0) {
        int drop = name[3] == '1';
        size_t h = drop ? 1200 : 800;
        c[n++] = L("flatten", 0);
        for (int k = 0; k < 2; k++) {
            c[n++] = L("dense", h);
            c[n++] = L("relu", 0);
            if (drop) c[n++] = L("dropout", 0); /* rate 0.5 by default */
        }
        c[n++] = L("dense", 10);
    } else if (strcmp(name, "cnn") == 0) {
        const char *k[] = {"conv2d", "relu",  "conv2d", "relu",    "maxpool", "conv2d", "relu",  "conv2d",
                           "relu",   "maxpool", "flatten", "dense", "relu",   "dropout", "dense", "relu",
                           "dense"};
        const size_t s[] = {32, 0, 32, 0, 0, 64, 0, 64, 0, 0, 0, 200, 0, 0, 200, 0, 10};
        for (n = 0; n < sizeof s / sizeof s[0]; n++) c[n] = L(k[n], s[n]);
    }
    return n;
}

static void ctx_free(bench_ctx *b) {
    nn_net_destroy(b->net);
    nn_net_destroy(b->teacher);
    def_kd_free(&b->kd);
    nn_optim_destroy(b->opt);
    free(b->x);
    free(b->y);
    free(b->dz);
    free(b->gb[0]);
    free(b->gb[1]);
}

/* Creates net `name`, initialised from rng and reserved for batch. */
static int make_net(nn_net **net, const char *name, nn_rng *rng, size_t batch, nn_err *err) {
    nn_layer_cfg cfgs[MAX_LAYERS];
    size_t n = net_layers(name, cfgs);
    if (n == 0) return NN_FAIL(err, NN_E_INVAL, "unknown net '%s' (mlp800, mlp1200, cnn)", name);
    nn_shape in = {1, 28, 28};
    int rc = nn_net_create(net, in, cfgs, n, err);
    if (rc) return rc;
    nn_net_init(*net, rng);
    return nn_net_reserve(*net, batch, err);
}

static int ctx_init(bench_ctx *b, const char *name, const char *teacher, size_t batch, nn_err *err) {
    memset(b, 0, sizeof *b);
    b->batch = batch;
    nn_rng_seed(&b->rng, 1);
    int rc = make_net(&b->net, name, &b->rng, batch, err);
    if (rc) return rc;
    if (teacher) {
        def_kd_cfg kc = def_kd_cfg_default();
        kc.alpha = 0.9f;
        if ((rc = make_net(&b->teacher, teacher, &b->rng, batch, err))) return rc;
        if ((rc = def_kd_init(&b->kd, &kc, NULL, &b->teacher, 1, b->net->n_classes, batch, err))) return rc;
    }
    nn_optim_cfg oc = nn_optim_cfg_default();
    oc.lr = 0.01f;
    oc.momentum = 0.9f;
    if ((rc = nn_optim_create(&b->opt, &oc, b->net->n_params, err))) return rc;
    size_t max_act = b->net->n_in;
    for (size_t i = 0; i < b->net->n_layers; i++) {
        size_t s = nn_shape_size(b->net->layers[i].out);
        if (s > max_act) max_act = s;
    }
    b->x = malloc(sizeof(float) * N_POOL * batch * b->net->n_in);
    b->y = malloc(sizeof(int) * N_POOL * batch);
    b->dz = malloc(sizeof(float) * batch * b->net->n_classes);
    b->gb[0] = malloc(sizeof(float) * batch * max_act);
    b->gb[1] = malloc(sizeof(float) * batch * max_act);
    if (!b->x || !b->y || !b->dz || !b->gb[0] || !b->gb[1]) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < N_POOL * batch * b->net->n_in; i++) b->x[i] = nn_rng_uniform(&b->rng);
    for (size_t i = 0; i < N_POOL * batch; i++) b->y[i] = (int)nn_rng_below(&b->rng, b->net->n_classes);
    return NN_OK;
}

/* One training step on pool batch i: zero grads, forward, CE (T=1) or the KD loss (the teacher's forward
 * pass inside), backward, SGD step. */
static int train_step(bench_ctx *b, size_t i, nn_err *err) {
    const float *x = b->x + (i % N_POOL) * b->batch * b->net->n_in, *z;
    const int *y = b->y + (i % N_POOL) * b->batch;
    nn_net_zero_grad(b->net);
    int rc = nn_net_forward(b->net, x, b->batch, 1, &b->rng, &z, err);
    if (rc) return rc;
    double loss = b->teacher ? def_kd_loss(&b->kd, x, y, NULL, z, b->batch, b->net->n_classes, b->dz)
                             : nn_loss_ce(z, y, b->batch, b->net->n_classes, 1.0f, b->dz);
    if (b->kd.failed) return NN_FAIL(err, b->kd.err.code, "%s", b->kd.err.msg);
    if (loss != loss) return NN_FAIL(err, NN_E_NUMERIC, "loss is NaN");
    if ((rc = nn_net_backward(b->net, b->dz, NULL, 1, err))) return rc;
    nn_optim_step(b->opt, b->net->params, b->net->grads, 0.01f);
    return NN_OK;
}

/* The same step, layer by layer through the ops tables, timing each piece (for --layers). Mirrors
 * nn_net_forward/backward: no input gradient at or below the first layer with parameters. */
static void profiled_step(bench_ctx *b, size_t it) {
    nn_net *net = b->net;
    size_t n = b->batch, nl = net->n_layers;
    const float *x0 = b->x + (it % N_POOL) * n * net->n_in;
    const int *y = b->y + (it % N_POOL) * n;
    nn_net_zero_grad(net);
    for (size_t i = 0; i < nl; i++) {
        double t = now_s();
        nn_layer *l = &net->layers[i];
        l->ops->forward(l, i ? net->act[i - 1] : x0, net->act[i], n, 1, &b->rng);
        b->t_fwd[i] += now_s() - t;
    }
    double t = now_s();
    nn_loss_ce(net->act[nl - 1], y, n, net->n_classes, 1.0f, b->dz);
    b->t_loss += now_s() - t;
    const float *dy = b->dz;
    size_t lo = 0; /* like nn_net_backward: nothing below the first layer with parameters */
    while (lo < nl && net->layers[lo].n_params == 0) lo++;
    for (size_t i = nl; i-- > lo;) {
        nn_layer *l = &net->layers[i];
        float *dx = i > lo ? b->gb[i % 2] : NULL;
        float *dw = l->n_params ? net->grads + (size_t)(l->w - net->params) : NULL;
        t = now_s();
        l->ops->backward(l, i ? net->act[i - 1] : x0, net->act[i], dy, dx, dw, n);
        b->t_bwd[i] += now_s() - t;
        dy = dx;
    }
    t = now_s();
    nn_optim_step(b->opt, net->params, net->grads, 0.01f);
    b->t_step += now_s() - t;
}

static void print_layers(const bench_ctx *b, const char *name, size_t iters) {
    const nn_net *net = b->net;
    double tot = b->t_loss + b->t_step, k = 1000.0 / (double)iters;
    for (size_t i = 0; i < net->n_layers; i++) tot += b->t_fwd[i] + b->t_bwd[i];
    for (size_t i = 0; i < net->n_layers; i++) {
        const nn_layer *l = &net->layers[i];
        printf("temper-layer %s %2zu %-8s %3zux%2zux%2zu -> %4zux%2zux%2zu fwd_ms=%7.3f bwd_ms=%7.3f (%4.1f%%)\n",
               name, i, l->cfg.kind, l->in.c, l->in.h, l->in.w, l->out.c, l->out.h, l->out.w, b->t_fwd[i] * k,
               b->t_bwd[i] * k, 100.0 * (b->t_fwd[i] + b->t_bwd[i]) / tot);
    }
    printf("temper-layer %s loss_ms=%.3f step_ms=%.3f total_ms=%.3f\n", name, b->t_loss * k, b->t_step * k,
           tot * k);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Warm-up, calibration, `repeats` timed runs; prints the result line. */
static int bench_net(const char *name, const bench_opts *o, nn_err *err) {
    bench_ctx b;
    double runs[16];
    int rc = ctx_init(&b, name, o->teacher, o->batch, err);
    if (rc) goto fail;
    size_t i = 0, it = 0;
    double t0 = now_s();
    while (i < 5 || now_s() - t0 < 0.5)
        if ((rc = train_step(&b, i++, err))) goto fail;
    /* Calibration: the fastest single batch of another half warm-up (robust to a moment of foreign load). */
    size_t half = i / 2 > 2 ? i / 2 : 2;
    double per_batch = 1e30;
    for (size_t k = 0; k < half; k++) {
        t0 = now_s();
        if ((rc = train_step(&b, i + k, err))) goto fail;
        double dt = now_s() - t0;
        if (dt < per_batch) per_batch = dt;
    }
    size_t iters = o->iters ? o->iters : (size_t)(o->seconds / per_batch + 0.5);
    if (iters < 5) iters = 5;
    for (size_t r = 0; r < o->repeats; r++) {
        t0 = now_s();
        for (it = 0; it < iters; it++)
            if ((rc = train_step(&b, it, err))) goto fail;
        runs[r] = (double)(iters * o->batch) / (now_s() - t0);
    }
    if (o->teacher) printf("temper %s-%s samples_per_s=", o->teacher, name);
    else printf("temper %s samples_per_s=", name);
    double sorted[16];
    memcpy(sorted, runs, sizeof(double) * o->repeats);
    qsort(sorted, o->repeats, sizeof(double), cmp_double);
    double med = o->repeats % 2 ? sorted[o->repeats / 2]
                                : 0.5 * (sorted[o->repeats / 2 - 1] + sorted[o->repeats / 2]);
    printf("%.1f ms_per_batch=%.3f iters=%zu runs=", med, 1000.0 * (double)o->batch / med, iters);
    for (size_t r = 0; r < o->repeats; r++) printf("%s%.1f", r ? "," : "", runs[r]);
    printf(" threads=%d\n", omp_get_max_threads());
    if (o->layers) {
        for (it = 0; it < iters; it++) profiled_step(&b, it);
        print_layers(&b, name, iters);
    }
    fflush(stdout);
fail:
    ctx_free(&b);
    return rc;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->seconds = 2.5;
    o->repeats = 3;
    o->batch = 128;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--layers") == 0) {
            o->layers = 1;
            continue;
        }
        if (!v) return -1;
        i++;
        if (strcmp(a, "--net") == 0 && o->n_nets < 8) o->nets[o->n_nets++] = v;
        else if (strcmp(a, "--seconds") == 0) o->seconds = atof(v);
        else if (strcmp(a, "--repeats") == 0) o->repeats = (size_t)atoi(v);
        else if (strcmp(a, "--batch") == 0) o->batch = (size_t)atoi(v);
        else if (strcmp(a, "--iters") == 0) o->iters = (size_t)atoi(v);
        else if (strcmp(a, "--teacher") == 0) o->teacher = v;
        else return -1;
    }
    if (o->seconds <= 0 || o->repeats < 1 || o->repeats > 16 || o->batch < 1) return -1;
    if (o->teacher && o->layers) return -1; /* the profile covers plain training only */
    if (o->n_nets == 0) {
        o->nets[0] = "mlp800";
        o->nets[1] = "mlp1200";
        o->nets[2] = "cnn";
        o->n_nets = 3;
    }
    return 0;
}

int main(int argc, char **argv) {
    bench_opts o;
    nn_err err;
    nn_err_clear(&err);
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "usage: %s [--net mlp800|mlp1200|cnn]... [--seconds S] [--repeats R (1..16)] "
                        "[--batch B] [--iters N] [--layers | --teacher mlp800|mlp1200|cnn]\n", argv[0]);
        return 2;
    }
    bench_print_info();
    if (nn_sys_check_blas(&err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < o.n_nets; i++) {
        if (bench_net(o.nets[i], &o, &err)) {
            fprintf(stderr, "bench_train: %s: %s (%s:%d)\n", o.nets[i], err.msg, err.file ? err.file : "?",
                    err.line);
            return 1;
        }
    }
    return 0;
}
