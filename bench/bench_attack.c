/* bench_attack.c - attack speed on a trained MNIST model (C side; PyTorch side: torch_attack.py).
 *
 * Measures adversarial examples per second of one attack through the public API (atk_run, batches of
 * 128: one batched forward/backward per iteration, early-stopped samples compacted out), on the first
 * test images of MNIST (nn_data_load "mnist", pixel range from the model's temper.range metadata):
 *   fgsm  L-inf eps 0.3, CE; the first N images (default 1000)
 *   pgd   L-inf eps 0.3, step 0.01, 40 iterations, random start, 1 restart, CE; a sample stops as soon
 *         as it is adversarial; the first N images (default 512)
 *   jsma  targeted, softmax at T = 1, gamma 0.145, theta +1, pairs; the first M images x their 9 other
 *         classes as targets (default M = 100: 900 runs)
 *   cw    C&W L2, targeted, reduced for a benchmark: 1 binary-search step, 100 Adam iterations with
 *         lr = --cw-lr (default 0.1: at the reference's 0.01, 100 iterations make ~1% of the runs succeed)
 *         and c = --cw-c (default 1), no abort-early (every run does exactly 100 iterations); the first
 *         M images x 9 targets (default M = 32: 288 runs)
 * Protocol, identical to torch_attack.py: warm-up (>= 0.5 s of batched input-gradient passes, not timed),
 * then `repeats` timed runs of the whole workload (the attack's results are deterministic, every run does
 * the same work); the median is reported. The time covers atk_run only (data loading excluded), which
 * includes the predictions on x_adv that atk_run always makes.
 *
 * Usage: bench_attack --model FILE --attack fgsm|pgd|jsma|cw [--name LABEL] [--n N] [--images M]
 *                     [--batch B] [--repeats R] [--cw-c C] [--cw-lr LR] [--save DIR]
 *   --save DIR  also writes DIR/temper_<label>_<attack>_{adv,x}.npy and _y/_t/_pred (int32) .npy
 * Output: a "temper-info" line, then one line
 *   "temper <label> <attack> adv_per_s=<x> seconds=<s> runs=<a,b,c> n=<runs> n_correct=<c> n_success=<s>
 *    success=<s/c> mean_iters=<x> mean_l0=<x> mean_l2=<x> mean_linf=<x> threads=<t>"
 * (success and the means over the runs whose clean prediction is right; the distortion means over the
 * successes). Exit status 1 on any failure. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "atk.h"
#include "nn_data.h"
#include "nn_io.h"
#include "nn_model.h"
#include "nn_net.h"
#include "nn_sys.h"

typedef struct bench_opts {
    const char *model, *attack, *name, *save;
    size_t n, images, batch, repeats;
    float cw_c, cw_lr;
} bench_opts;

/* The workload: x[n, d] (copies of test images), labels, targets (targeted attacks). */
typedef struct workload {
    size_t n, d;
    float *x, *x_adv;
    int *y, *t;
    atk_result *res;
} workload;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void workload_free(workload *w) {
    free(w->x);
    free(w->x_adv);
    free(w->y);
    free(w->t);
    free(w->res);
}

/* The attack's configuration (see the header comment); lo, hi = the data range. */
static int attack_cfg(const bench_opts *o, float lo, float hi, atk_cfg *c, nn_err *err) {
    atk_kind kind;
    atk_norm norm;
    if (atk_kind_parse(o->attack, &kind, &norm) || !(kind == ATK_FGSM || kind == ATK_PGD || kind == ATK_JSMA ||
                                                     kind == ATK_CW))
        return NN_FAIL(err, NN_E_INVAL, "unknown attack '%s' (fgsm, pgd, jsma, cw)", o->attack);
    *c = atk_cfg_default(kind);
    c->norm = norm;
    c->lo = lo;
    c->hi = hi;
    if (kind == ATK_PGD) c->step = 0.01f;
    if (kind == ATK_CW) {
        c->targeted = 1;
        c->iters = 100;
        c->search_steps = 1;
        c->c0 = o->cw_c;
        c->lr = o->cw_lr;
        c->abort_early = 0;
    }
    return atk_cfg_validate(c, err);
}

/* The pixel range of the model's data from its temper.range metadata ("lo,hi"); [0, 1] if absent. */
static int model_range(const nn_model_meta *m, float *lo, float *hi, nn_err *err) {
    const char *r = nn_model_meta_get(m, "temper.range");
    *lo = 0.0f;
    *hi = 1.0f;
    if (r && sscanf(r, "%f,%f", lo, hi) != 2) return NN_FAIL(err, NN_E_FORMAT, "bad temper.range '%s'", r);
    return NN_OK;
}

/* Fills w from the first test images: untargeted, one run per image; targeted, images x 9 targets. */
static int workload_make(const bench_opts *o, const atk_cfg *c, size_t d, workload *w, nn_err *err) {
    nn_dataset tr = {0}, te = {0};
    nn_data_cfg dc = nn_data_cfg_default();
    snprintf(dc.name, sizeof dc.name, "mnist");
    dc.lo = c->lo;
    dc.hi = c->hi;
    dc.val_size = 0;
    dc.subset = 1;
    size_t imgs = c->targeted ? o->images : o->n;
    dc.test_subset = imgs;
    int rc = nn_data_load(&dc, &tr, NULL, &te, err);
    if (rc) goto fail;
    if (te.n < imgs || te.n_classes > ATK_MAX_CLASSES || (size_t)te.shape.c * te.shape.h * te.shape.w != d) {
        rc = NN_FAIL(err, NN_E_SHAPE, "test set: %zu images of %zu features, need %zu of %zu", te.n,
                     (size_t)te.shape.c * te.shape.h * te.shape.w, imgs, d);
        goto fail;
    }
    size_t per = c->targeted ? te.n_classes - 1 : 1, k = te.n_classes;
    w->n = imgs * per;
    w->d = d;
    w->x = malloc(w->n * d * sizeof(float));
    w->x_adv = malloc(w->n * d * sizeof(float));
    w->y = malloc(w->n * sizeof(int));
    w->t = malloc(w->n * sizeof(int));
    w->res = malloc(w->n * sizeof(atk_result));
    size_t *idx = malloc(w->n * sizeof(size_t));
    if (!w->x || !w->x_adv || !w->y || !w->t || !w->res || !idx) {
        free(idx);
        rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
        goto fail;
    }
    if (c->targeted) {
        atk_targets_all(te.y, imgs, k, idx, w->t);
    } else {
        for (size_t i = 0; i < w->n; i++) idx[i] = i, w->t[i] = -1;
    }
    for (size_t i = 0; i < w->n; i++) {
        memcpy(w->x + i * d, te.x + idx[i] * d, d * sizeof(float));
        w->y[i] = te.y[idx[i]];
    }
    free(idx);
fail:
    nn_dataset_free(&tr);
    nn_dataset_free(&te);
    return rc;
}

static int warm_seed(void *ctx, const float *z, size_t n, size_t k, float *g) {
    (void)ctx;
    (void)z;
    for (size_t i = 0; i < n * k; i++) g[i] = (i % k == 0) ? 1.0f : 0.0f;
    return 0;
}

/* >= 0.5 s and >= 5 batched input-gradient passes at the full batch (threads, caches, page faults). */
static int warm_up(nn_net *net, const workload *w, float *g, nn_err *err) {
    size_t m = w->n < net->max_batch ? w->n : net->max_batch;
    double t0 = now_s();
    for (int i = 0; i < 5 || now_s() - t0 < 0.5; i++) {
        int rc = nn_net_input_grad(net, w->x, m, warm_seed, NULL, g, err);
        if (rc) return rc;
    }
    return NN_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Prints the result line: speed and what the attack achieved (runs with a right clean prediction). */
static void report(const bench_opts *o, const workload *w, const double *runs) {
    size_t nc = 0, ns = 0;
    double it = 0, l0 = 0, l2 = 0, li = 0;
    for (size_t i = 0; i < w->n; i++) {
        const atk_result *r = &w->res[i];
        if (r->clean_pred != r->label) continue;
        nc++;
        it += r->iters;
        if (!r->success) continue;
        ns++;
        l0 += r->l0, l2 += r->l2, li += r->linf;
    }
    double sorted[16];
    memcpy(sorted, runs, o->repeats * sizeof(double));
    qsort(sorted, o->repeats, sizeof(double), cmp_double);
    size_t h = o->repeats / 2;
    double med = o->repeats % 2 ? sorted[h] : 0.5 * (sorted[h - 1] + sorted[h]);
    double sd = ns ? (double)ns : 1.0;
    printf("temper %s %s adv_per_s=%.2f seconds=%.3f runs=", o->name, o->attack, med, (double)w->n / med);
    for (size_t r = 0; r < o->repeats; r++) printf("%s%.2f", r ? "," : "", runs[r]);
    printf(" n=%zu n_correct=%zu n_success=%zu success=%.4f mean_iters=%.2f mean_l0=%.2f mean_l2=%.4f "
           "mean_linf=%.4f threads=%d\n",
           w->n, nc, ns, nc ? (double)ns / (double)nc : 0.0, nc ? it / (double)nc : 0.0, l0 / sd, l2 / sd, li / sd,
           omp_get_max_threads());
    fflush(stdout);
}

/* --save: the adversarial examples and what they came from, for cross-checks. */
static int save_npy(const bench_opts *o, const workload *w, nn_err *err) {
    char p[4096];
    size_t dx[2] = {w->n, w->d}, dn[1] = {w->n};
    int *pred = malloc(w->n * sizeof(int));
    if (!pred) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < w->n; i++) pred[i] = w->res[i].pred;
    int rc;
    snprintf(p, sizeof p, "%s/temper_%s_%s_adv.npy", o->save, o->name, o->attack);
    if ((rc = nn_npy_write_f32(p, w->x_adv, 2, dx, err))) goto fail;
    snprintf(p, sizeof p, "%s/temper_%s_%s_x.npy", o->save, o->name, o->attack);
    if ((rc = nn_npy_write_f32(p, w->x, 2, dx, err))) goto fail;
    snprintf(p, sizeof p, "%s/temper_%s_%s_y.npy", o->save, o->name, o->attack);
    if ((rc = nn_npy_write_i32(p, w->y, 1, dn, err))) goto fail;
    snprintf(p, sizeof p, "%s/temper_%s_%s_t.npy", o->save, o->name, o->attack);
    if ((rc = nn_npy_write_i32(p, w->t, 1, dn, err))) goto fail;
    snprintf(p, sizeof p, "%s/temper_%s_%s_pred.npy", o->save, o->name, o->attack);
    rc = nn_npy_write_i32(p, pred, 1, dn, err);
fail:
    free(pred);
    return rc;
}

static int bench(const bench_opts *o, nn_err *err) {
    nn_net *net = NULL;
    nn_model_meta meta = {0};
    workload w = {0};
    float *g = NULL, lo, hi;
    double runs[16];
    atk_cfg cfg;
    int rc = nn_model_load(&net, &meta, o->model, err);
    if (rc) goto fail;
    if ((rc = model_range(&meta, &lo, &hi, err))) goto fail;
    if ((rc = attack_cfg(o, lo, hi, &cfg, err))) goto fail;
    if ((rc = nn_net_reserve(net, o->batch, err))) goto fail;
    if ((rc = workload_make(o, &cfg, net->n_in, &w, err))) goto fail;
    if (!(g = malloc(net->max_batch * net->n_in * sizeof(float)))) {
        rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = warm_up(net, &w, g, err))) goto fail;
    for (size_t r = 0; r < o->repeats; r++) {
        double t0 = now_s();
        rc = atk_run(net, &cfg, w.x, w.y, cfg.targeted ? w.t : NULL, w.n, w.x_adv, w.res, NULL, NULL, err);
        double dt = now_s() - t0;
        if (rc) goto fail;
        runs[r] = (double)w.n / dt;
    }
    report(o, &w, runs);
    if (o->save) rc = save_npy(o, &w, err);
fail:
    free(g);
    workload_free(&w);
    nn_net_destroy(net);
    return rc;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch = 128;
    o->repeats = 3;
    o->cw_c = 1.0f;
    o->cw_lr = 0.1f;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--model") == 0) o->model = v;
        else if (strcmp(a, "--attack") == 0) o->attack = v;
        else if (strcmp(a, "--name") == 0) o->name = v;
        else if (strcmp(a, "--save") == 0) o->save = v;
        else if (strcmp(a, "--n") == 0) o->n = (size_t)atol(v);
        else if (strcmp(a, "--images") == 0) o->images = (size_t)atol(v);
        else if (strcmp(a, "--batch") == 0) o->batch = (size_t)atol(v);
        else if (strcmp(a, "--repeats") == 0) o->repeats = (size_t)atol(v);
        else if (strcmp(a, "--cw-c") == 0) o->cw_c = (float)atof(v);
        else if (strcmp(a, "--cw-lr") == 0) o->cw_lr = (float)atof(v);
        else return -1;
    }
    if (argc % 2 == 0 || !o->model || !o->attack || o->batch < 1 || o->repeats < 1 || o->repeats > 16) return -1;
    if (!o->name) o->name = "model";
    if (!o->n) o->n = strcmp(o->attack, "pgd") == 0 ? 512 : 1000;
    if (!o->images) o->images = strcmp(o->attack, "cw") == 0 ? 32 : 100;
    return 0;
}

int main(int argc, char **argv) {
    bench_opts o;
    nn_err err;
    nn_err_clear(&err);
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "usage: %s --model FILE --attack fgsm|pgd|jsma|cw [--name LABEL] [--n N] [--images M] "
                        "[--batch B] [--repeats R (1..16)] [--cw-c C] [--cw-lr LR] [--save DIR]\n", argv[0]);
        return 2;
    }
    bench_print_info();
    if (nn_sys_check_blas(&err) || bench(&o, &err)) {
        fprintf(stderr, "bench_attack: %s: %s (%s:%d)\n", o.attack, err.msg, err.file ? err.file : "?", err.line);
        return 1;
    }
    return 0;
}
