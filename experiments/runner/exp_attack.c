/* exp_attack.c - runs a battery of attacks on one model and writes its results folder (see exp_attack.h). */
#include "exp_attack.h"
#include "exp_attack_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atk_diag.h"
#include "exp_json.h"
#include "exp_progress.h"
#include "exp_run.h"
#include "nn_io.h"
#include "nn_png.h"
#include "nn_rng.h"

exp_attack exp_attack_default(atk_kind kind, atk_norm norm) {
    exp_attack a;
    memset(&a, 0, sizeof a);
    a.cfg = atk_cfg_default(kind);
    a.cfg.norm = norm;
    a.samples = 1000;
    a.targets = EXP_TARGETS_ALL;
    a.grid = 16;
    return a;
}

int exp_attack_bounded(const exp_attack *a) {
    return a->cfg.kind == ATK_FGSM || a->cfg.kind == ATK_BIM || a->cfg.kind == ATK_PGD;
}

void exp_attack_set_free(exp_atk_set *s) {
    free(s->x);
    free(s->y);
    free(s->t);
    free(s->id);
    memset(s, 0, sizeof *s);
}

int exp_attack_set_build(const exp_attack *a, const nn_dataset *test, exp_atk_set *s, nn_err *err) {
    size_t m = a->samples < test->n ? a->samples : test->n, k = test->n_classes, d = nn_shape_size(test->shape);
    size_t per = a->cfg.targeted && a->targets == EXP_TARGETS_ALL ? k - 1 : 1;
    s->n = m * per;
    s->x = malloc(s->n * d * sizeof *s->x);
    s->y = malloc(s->n * sizeof *s->y);
    s->t = malloc(s->n * sizeof *s->t);
    s->id = malloc(s->n * sizeof *s->id);
    size_t *src = malloc(s->n * sizeof *src);
    if (!s->x || !s->y || !s->t || !s->id || !src) {
        free(src);
        return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory for %zu samples", a->name, s->n);
    }
    nn_rng rng;
    nn_rng_seed_stream(&rng, a->cfg.seed, 0x74617267u); /* "targ" */
    if (per > 1) atk_targets_all(test->y, m, k, src, s->t);
    for (size_t i = 0; i < s->n; i++) {
        size_t j = per > 1 ? src[i] : i;
        int y = test->y[j];
        if (per == 1)
            s->t[i] = !a->cfg.targeted ? -1
                      : a->targets == EXP_TARGETS_NEXT ? (int)((size_t)(y + 1) % k)
                                                        : (int)(((size_t)y + 1 + nn_rng_below(&rng, k - 1)) % k);
        s->y[i] = y;
        s->id[i] = test->id ? test->id[j] : j;
        memcpy(s->x + i * d, test->x + j * d, d * sizeof *s->x);
    }
    free(src);
    return NN_OK;
}

/* ---- progress ---- */

typedef struct atk_prog {
    FILE *f;
    int tty;
    const char *what;
    double t0, last;
} atk_prog;

static void prog_cb(void *ctx, double done, double total) {
    atk_prog *p = ctx;
    double now = exp_now();
    /* a terminal: one line redrawn ~5 times a second; a log: a plain line a minute on long attacks */
    if (!p->f || done >= total || now - p->last < (p->tty ? 0.2 : 60.0)) return;
    p->last = now;
    char eta[32] = "";
    if (done > 0) exp_fmt_duration(eta, sizeof eta, (now - p->t0) * (total - done) / done);
    if (!p->tty) {
        fprintf(p->f, "%s: %.0f/%.0f ETA %s\n", p->what, done, total, eta);
        fflush(p->f);
        return;
    }
    int bar = total > 0 ? (int)(20 * done / total) : 0;
    fprintf(p->f, "\r%-24s [%.*s%.*s] %.0f/%.0f %s%s\033[K", p->what, bar, "####################", 20 - bar,
            "....................", done, total, eta[0] ? "ETA " : "", eta);
    fflush(p->f);
}

/* ---- one run: attack, summaries, files ---- */

typedef struct run_rec {
    char run[80];        /* folder name */
    const exp_attack *a;
    atk_summary s;
    int norm_l0;
    double seconds;
    float eps;           /* bounded attacks: the eps run; else < 0 */
} run_rec;

static int write_samples_csv(const char *path, const exp_atk_set *s, const atk_result *r, nn_err *err) {
    nn_jbuf b = {0};
    nn_jbuf_puts(&b, "test_index,label,target,clean_pred,pred,success,l0,l2,linf,iters\n");
    for (size_t i = 0; i < s->n; i++)
        nn_jbuf_printf(&b, "%zu,%d,%d,%d,%d,%d,%.0f,%.9g,%.9g,%d\n", s->id[i], r[i].label, r[i].target,
                       r[i].clean_pred, r[i].pred, r[i].success, (double)r[i].l0, (double)r[i].l2, (double)r[i].linf,
                       r[i].iters);
    int rc = b.oom ? NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path) : nn_io_write_atomic(path, b.p, b.len, err);
    nn_jbuf_free(&b);
    return rc;
}

/* samples.csv, adv.npy, labels.npy, targets.npy, grid.png of one run into dir/run. */
static int write_run(const char *dir, const run_rec *rr, const nn_dataset *test, const exp_atk_set *s, const float *xa,
                     const atk_result *r, nn_err *err) {
    char sub[4096], path[4096];
    nn_shape sh = test->shape;
    size_t dims[4] = {s->n, sh.c, sh.h, sh.w};
    int rc = exp_path_join(sub, sizeof sub, dir, rr->run, err);
    if (!rc) rc = exp_mkdir_p(sub, err);
    if (!rc) rc = exp_path_join(path, sizeof path, sub, "samples.csv", err);
    if (!rc) rc = write_samples_csv(path, s, r, err);
    if (!rc) rc = exp_path_join(path, sizeof path, sub, "adv.npy", err);
    if (!rc) rc = nn_npy_write_f32(path, xa, 4, dims, err);
    if (!rc) rc = exp_path_join(path, sizeof path, sub, "labels.npy", err);
    if (!rc) rc = nn_npy_write_i32(path, s->y, 1, dims, err);
    if (!rc) rc = exp_path_join(path, sizeof path, sub, "targets.npy", err);
    if (!rc) rc = nn_npy_write_i32(path, s->t, 1, dims, err);
    if (!rc && rr->a->grid) rc = exp_path_join(path, sizeof path, sub, "grid.png", err);
    if (!rc && rr->a->grid)
        rc = nn_png_adv_grid(path, s->x, xa, s->n < rr->a->grid ? s->n : rr->a->grid, sh, rr->a->cfg.lo,
                             rr->a->cfg.hi, err);
    return rc;
}

/* Runs attack a at eps (bounded) or once (eps < 0), appending one record per summary to recs. */
static int run_one(nn_net *net, const nn_dataset *test, const exp_attack *a, float eps, const char *dir,
                   atk_prog *p, run_rec *recs, size_t *n_recs, size_t cap, nn_err *err) {
    exp_atk_set s = {0};
    atk_cfg cfg = a->cfg;
    if (eps >= 0) cfg.eps = eps;
    float *xa = NULL;
    atk_result *r = NULL;
    int rc = exp_attack_set_build(a, test, &s, err);
    if (!rc && !(xa = malloc(s.n * net->n_in * sizeof *xa))) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc && !(r = malloc(s.n * sizeof *r))) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (rc) goto fail;
    run_rec base = {.a = a, .eps = eps, .norm_l0 = a->cfg.kind == ATK_JSMA};
    if (eps >= 0) snprintf(base.run, sizeof base.run, "%s-eps%g", a->name, (double)eps);
    else snprintf(base.run, sizeof base.run, "%s", a->name);
    p->what = base.run;
    p->t0 = exp_now();
    p->last = p->tty ? 0 : p->t0;
    rc = atk_run(net, &cfg, s.x, s.y, cfg.targeted ? s.t : NULL, s.n, xa, r, prog_cb, p, err);
    base.seconds = exp_now() - p->t0;
    if (p->f && p->tty) fprintf(p->f, "\r\033[K");
    if (rc) goto fail;
    for (size_t i = 0; i < s.n; i++)
        r[i].sample = s.id[i]; /* summaries group the targets of one test image */
    /* bounded: the run's own eps; others: unbounded, then each bound of the grid */
    for (size_t i = 0; i <= (eps >= 0 ? 0 : a->n_eps) && !rc; i++) {
        if (*n_recs == cap) break;
        run_rec *rr = &recs[(*n_recs)++];
        *rr = base;
        double bound = eps >= 0 ? eps : i == 0 ? -1.0 : a->eps[i - 1];
        rc = atk_summarize(r, s.n, net->n_in, base.norm_l0, cfg.norm, bound, &rr->s, err);
    }
    if (!rc) rc = write_run(dir, &base, test, &s, xa, r, err);
fail:
    free(xa);
    free(r);
    exp_attack_set_free(&s);
    return rc;
}

/* ---- reports ---- */

static const char *loss_name(const atk_cfg *c) { return c->loss == ATK_LOSS_MARGIN ? "margin" : "ce"; }

void exp_attack_json_params(exp_json *j, const exp_attack *a) {
    const atk_cfg *c = &a->cfg;
    exp_json_kv_string(j, "kind", atk_name(c));
    exp_json_kv_string(j, "norm", c->kind == ATK_JSMA ? "l0" : c->norm == ATK_L2 ? "l2" : "linf");
    exp_json_key(j, "targeted");
    exp_json_bool(j, c->targeted);
    if (c->targeted)
        exp_json_kv_string(j, "targets", a->targets == EXP_TARGETS_ALL    ? "all"
                                         : a->targets == EXP_TARGETS_NEXT ? "next"
                                                                          : "random");
    if (exp_attack_bounded(a)) {
        exp_json_kv_string(j, "loss", loss_name(c));
        exp_json_kv_uint(j, "iters", (unsigned long long)(c->kind == ATK_FGSM ? 1 : c->iters));
        if (c->kind != ATK_FGSM) {
            exp_json_kv_number(j, "step", c->step); /* 0: 2.5 eps / iters */
            exp_json_kv_uint(j, "restarts", (unsigned long long)c->restarts);
            exp_json_key(j, "random_start");
            exp_json_bool(j, c->random_start);
        }
    }
    if (c->kind == ATK_JSMA) {
        exp_json_kv_string(j, "on", c->jsma_on == ATK_JSMA_LOGITS ? "logits" : "softmax");
        exp_json_kv_number(j, "gamma", c->gamma);
    }
    if (c->kind == ATK_CW) {
        exp_json_kv_uint(j, "iters", (unsigned long long)c->iters);
        exp_json_kv_uint(j, "search_steps", (unsigned long long)c->search_steps);
        exp_json_kv_number(j, "lr", c->lr);
        exp_json_kv_number(j, "c0", c->c0);
    }
    if (c->kind == ATK_DEEPFOOL) {
        exp_json_kv_uint(j, "iters", (unsigned long long)c->iters);
        exp_json_kv_number(j, "overshoot", c->overshoot);
    }
    if ((exp_attack_bounded(a) && c->loss == ATK_LOSS_CE) || c->kind == ATK_JSMA)
        exp_json_kv_number(j, "temperature", c->temperature);
    if ((exp_attack_bounded(a) && c->loss == ATK_LOSS_MARGIN) || c->kind == ATK_CW)
        exp_json_kv_number(j, "kappa", c->kappa);
    exp_json_kv_uint(j, "seed", (unsigned long long)c->seed);
}

double exp_float_decimal(float v) {
    char b[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)v);
        if ((float)strtod(b, NULL) == v) break;
    }
    return strtod(b, NULL);
}

void exp_attack_json_summary(exp_json *j, const atk_summary *s, const exp_attack *a) {
    if (s->eps >= 0) exp_json_kv_number(j, "eps", exp_float_decimal((float)s->eps));
    else {
        exp_json_key(j, "eps");
        exp_json_null(j);
    }
    exp_json_kv_uint(j, "samples", s->n_samples);
    exp_json_kv_uint(j, "runs", s->n_runs);
    exp_json_kv_uint(j, "clean_correct", s->n_correct);
    exp_json_kv_uint(j, "successes", s->n_success);
    exp_json_kv_number(j, "robust_accuracy", s->robust_acc);
    exp_json_kv_number(j, "success_rate", s->success_rate);
    exp_json_kv_number(j, "mean_l0", s->mean_l0);
    exp_json_kv_number(j, "mean_l2", s->mean_l2);
    exp_json_kv_number(j, "mean_linf", s->mean_linf);
    exp_json_kv_number(j, "median_l0", s->median_l0);
    exp_json_kv_number(j, "median_l2", s->median_l2);
    exp_json_kv_number(j, "median_linf", s->median_linf);
    if (a->cfg.kind == ATK_JSMA) exp_json_kv_number(j, "rho_adv", s->rho_adv);
    if (a->cfg.targeted && a->targets == EXP_TARGETS_ALL) {
        exp_json_kv_number(j, "best_case", s->best_case); /* in the norm of eps (l0 for jsma) */
        exp_json_kv_uint(j, "best_case_samples", s->n_best);
        exp_json_kv_number(j, "worst_case", s->worst_case);
        exp_json_kv_uint(j, "worst_case_samples", s->n_worst);
    }
    exp_json_kv_number(j, "mean_iters", s->mean_iters);
}

static void json_summary(exp_json *j, const run_rec *r) {
    exp_json_kv_string(j, "run", r->run);
    exp_attack_json_summary(j, &r->s, r->a);
    exp_json_kv_number(j, "seconds", r->seconds);
    exp_json_kv_number(j, "per_second", r->seconds > 0 ? (double)r->s.n_runs / r->seconds : 0);
}

void exp_attack_json_diag(exp_json *j, const atk_diag *d) {
    exp_json_key(j, "diagnostics");
    exp_json_object_begin(j);
    exp_json_kv_uint(j, "samples", d->n);
    exp_json_kv_number(j, "mean_abs_logit", d->mean_abs_logit);
    exp_json_kv_number(j, "std_abs_logit", d->std_abs_logit);
    exp_json_kv_number(j, "frac_zero_gradient", d->frac_zero_grad);
    exp_json_kv_number(j, "frac_saturated_softmax", d->frac_saturated);
    exp_json_kv_number(j, "mean_gradient_l2", d->mean_grad_l2);
    exp_json_object_end(j);
}

/* attacks.json: diagnostics, one object per record, the warnings as a list of lines. */
static int write_json(const char *path, const atk_diag *d, const run_rec *recs, size_t n, const char *warn,
                      nn_err *err) {
    exp_json j;
    exp_json_init(&j);
    exp_json_object_begin(&j);
    exp_attack_json_diag(&j, d);
    exp_json_key(&j, "results");
    exp_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) {
        exp_json_object_begin(&j);
        exp_json_kv_string(&j, "attack", recs[i].a->name);
        exp_attack_json_params(&j, recs[i].a);
        json_summary(&j, &recs[i]);
        exp_json_object_end(&j);
    }
    exp_json_array_end(&j);
    exp_json_key(&j, "warnings");
    exp_json_array_begin(&j);
    for (const char *p = warn; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        exp_json_string(&j, line);
        p += len + (e != NULL);
    }
    exp_json_array_end(&j);
    exp_json_object_end(&j);
    int rc = exp_json_finish(&j, err);
    if (!rc) rc = nn_io_write_atomic(path, j.b.p, j.b.len, err);
    exp_json_free(&j);
    return rc;
}

static int write_csv(const char *path, const run_rec *recs, size_t n, nn_err *err) {
    nn_jbuf b = {0};
    nn_jbuf_puts(&b, "attack,run,eps,samples,runs,clean_correct,successes,robust_accuracy,success_rate,mean_l0,"
                     "mean_l2,mean_linf,median_l0,median_l2,median_linf,best_case,worst_case,mean_iters,seconds\n");
    for (size_t i = 0; i < n; i++) {
        const atk_summary *s = &recs[i].s;
        char eps[32] = "";
        if (s->eps >= 0) snprintf(eps, sizeof eps, "%.9g", s->eps);
        nn_jbuf_printf(&b, "%s,%s,%s,%zu,%zu,%zu,%zu,%.6f,%.6f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.3f,%.3f\n",
                       recs[i].a->name, recs[i].run, eps, s->n_samples, s->n_runs, s->n_correct, s->n_success,
                       s->robust_acc, s->success_rate, s->mean_l0, s->mean_l2, s->mean_linf, s->median_l0,
                       s->median_l2, s->median_linf, s->best_case, s->worst_case, s->mean_iters, recs[i].seconds);
    }
    int rc = b.oom ? NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path) : nn_io_write_atomic(path, b.p, b.len, err);
    nn_jbuf_free(&b);
    return rc;
}

static void print_table(FILE *out, const atk_diag *d, const run_rec *recs, size_t n, const char *warn) {
    fprintf(out, "diagnostics on %zu test samples: mean |logit| %.3g, zero input gradient %.1f%%, saturated "
                 "softmax %.1f%%\n",
            d->n, d->mean_abs_logit, 100 * d->frac_zero_grad, 100 * d->frac_saturated);
    fprintf(out, "%-22s %8s %7s %9s %8s %8s %8s %8s %7s %9s\n", "attack", "eps", "runs", "robust", "success",
            "mean L0", "mean L2", "mean Linf", "iters", "adv/s");
    for (size_t i = 0; i < n; i++) {
        const atk_summary *s = &recs[i].s;
        char eps[32] = "-";
        if (s->eps >= 0) snprintf(eps, sizeof eps, "%g", s->eps);
        fprintf(out, "%-22s %8s %7zu %8.2f%% %7.2f%% %8.1f %8.3f %8.3f %7.1f %9.1f\n", recs[i].a->name, eps, s->n_runs,
                100 * s->robust_acc, 100 * s->success_rate, s->mean_l0, s->mean_l2, s->mean_linf, s->mean_iters,
                recs[i].seconds > 0 ? (double)s->n_runs / recs[i].seconds : 0);
        if (s->eps < 0 && s->n_best && recs[i].a->cfg.targeted && recs[i].a->targets == EXP_TARGETS_ALL)
            fprintf(out, "%-22s best case %.3f (%zu samples), worst case %.3f (%zu samples), %s\n", "", s->best_case,
                    s->n_best, s->worst_case, s->n_worst, recs[i].norm_l0 ? "features changed" : "L2");
    }
    fputs(warn, out);
    fflush(out);
}

/* Diagnostics on the largest sample set any attack uses. */
static int diagnose(nn_net *net, const nn_dataset *test, const exp_attack *a, size_t n, atk_diag *d, nn_err *err) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m = a[i].samples > m ? a[i].samples : m;
    if (m > test->n) m = test->n;
    return atk_diag_compute(net, test->x, test->y, m, d, err);
}

int exp_attacks_run(nn_net *net, const nn_dataset *test, const exp_attack *a, size_t n, const char *dir, int quiet,
                    FILE *out, FILE *progress, nn_err *err) {
    size_t cap = 0;
    for (size_t i = 0; i < n; i++)
        cap += exp_attack_bounded(&a[i]) ? a[i].n_eps : 1 + a[i].n_eps;
    run_rec *recs = calloc(cap ? cap : 1, sizeof *recs);
    atk_row *rows = calloc(cap ? cap : 1, sizeof *rows);
    char *warn = calloc(1, 8192);
    size_t nr = 0;
    atk_diag d;
    int rc = recs && rows && warn ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    atk_prog p = {quiet ? NULL : progress, progress && !quiet && isatty(fileno(progress)), "", 0, 0};
    if (!rc) rc = exp_mkdir_p(dir, err);
    if (!rc) rc = nn_net_reserve(net, EXP_ATTACK_BATCH, err);
    if (!rc) rc = diagnose(net, test, a, n, &d, err);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t runs = exp_attack_bounded(&a[i]) ? a[i].n_eps : 1;
        for (size_t e = 0; e < runs && !rc; e++) {
            size_t before = nr;
            rc = run_one(net, test, &a[i], exp_attack_bounded(&a[i]) ? a[i].eps[e] : -1.0f, dir, &p, recs, &nr, cap,
                         err);
            if (!rc && p.f && !p.tty)
                fprintf(p.f, "%s: %.2f%% success (%.1fs)\n", recs[before].run, 100 * recs[before].s.success_rate,
                        recs[before].seconds);
        }
    }
    for (size_t i = 0; i < nr && !rc; i++)
        rows[i] = (atk_row){recs[i].a->name, recs[i].a->cfg.kind, recs[i].a->cfg.norm, recs[i].s.eps,
                            recs[i].s.success_rate};
    char path[4096];
    if (!rc) atk_diag_warnings(&d, rows, nr, warn, 8192);
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "summary.csv", err);
    if (!rc) rc = write_csv(path, recs, nr, err);
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "attacks.json", err);
    if (!rc) rc = write_json(path, &d, recs, nr, warn, err);
    if (!rc && out) print_table(out, &d, recs, nr, warn);
    free(recs);
    free(rows);
    free(warn);
    return rc;
}
