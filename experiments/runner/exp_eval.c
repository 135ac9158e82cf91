/* exp_eval.c - `temper eval`: a model file evaluated on a test set, optionally saving the logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp_progress.h"
#include "exp_run.h"
#include "nn_data.h"
#include "nn_io.h"
#include "nn_model.h"
#include "nn_sys.h"

int exp_parse_range(const char *s, float *lo, float *hi) {
    char *end;
    double a = strtod(s, &end);
    if (end == s || *end != ',') return -1;
    const char *t = end + 1;
    double b = strtod(t, &end);
    if (end == t || *end != '\0') return -1;
    if (!isfinite(a) || !isfinite(b) || !(a < b)) return -1;
    *lo = (float)a;
    *hi = (float)b;
    return 0;
}

/* The data configuration from the options, falling back on the model's metadata. */
static int eval_data_cfg(const exp_eval_opts *o, const nn_model_meta *meta, nn_data_cfg *dc, nn_err *err) {
    *dc = nn_data_cfg_default();
    const char *name = o->data ? o->data : nn_model_meta_get(meta, EXP_META_DATA);
    if (!name)
        return NN_FAIL(err, NN_E_INVAL, "%s: the model names no data set (%s metadata): give --data",
                       o->model, EXP_META_DATA);
    snprintf(dc->name, sizeof dc->name, "%s", name);
    const char *range = nn_model_meta_get(meta, EXP_META_RANGE);
    if (o->has_range) {
        dc->lo = o->lo;
        dc->hi = o->hi;
    } else if (range && exp_parse_range(range, &dc->lo, &dc->hi) != 0) {
        return NN_FAIL(err, NN_E_FORMAT, "%s: metadata %s = '%s' is not 'lo,hi': give --range", o->model,
                       EXP_META_RANGE, range);
    }
    dc->test_subset = o->limit;
    /* nn_data_load always reads the training file; keeping one training sample skips converting the rest. */
    dc->subset = 1;
    return nn_data_cfg_validate(dc, err);
}

/* Logits of every test sample into a float32 .npy [n, classes]. */
/* Evaluates; with o->logits also writes the logits of the same forward passes as .npy. */
static int eval_run(const exp_eval_opts *o, nn_net *net, const nn_dataset *test, nn_eval *ev, nn_err *err) {
    size_t dims[2] = {test->n, net->n_classes};
    float *z = NULL;
    if (o->logits && !(z = malloc(dims[0] * dims[1] * sizeof *z)))
        return NN_FAIL(err, NN_E_NOMEM, "out of memory for %zu x %zu logits", dims[0], dims[1]);
    int rc = nn_evaluate(net, test, o->batch, z, ev, err);
    if (!rc && z) rc = nn_npy_write_f32(o->logits, z, 2, dims, err);
    free(z);
    return rc;
}

static void eval_print(const exp_eval_opts *o, const nn_data_cfg *dc, const nn_net *net, const nn_eval *ev,
                       FILE *out) {
    char n[32], errs[32], dur[32];
    exp_fmt_count(n, sizeof n, (double)ev->n);
    exp_fmt_count(errs, sizeof errs, (double)ev->errors);
    exp_fmt_duration(dur, sizeof dur, ev->seconds);
    fprintf(out, "model %s: %zu parameters, %zu classes\n", o->model, net->n_params, net->n_classes);
    fprintf(out, "data %s test set, %s samples, pixel range [%g, %g]\n", dc->name, n, (double)dc->lo,
            (double)dc->hi);
    fprintf(out, "accuracy %.2f%% (%s errors of %s), loss %.4f, %s\n", 100.0 * ev->accuracy, errs, n,
            ev->loss, dur);
    fprintf(out, "errors per class:");
    for (size_t c = 0; c < net->n_classes && c < NN_MAX_CLASSES; c++)
        fprintf(out, " %zu:%zu/%zu", c, ev->class_errors[c], ev->class_total[c]);
    fprintf(out, "\n");
    if (o->logits) fprintf(out, "logits [%zu, %zu] written to %s\n", ev->n, net->n_classes, o->logits);
    fflush(out);
}

int exp_eval(const exp_eval_opts *o, FILE *out, nn_err *err) {
    nn_net *net = NULL;
    nn_model_meta meta;
    nn_dataset train = {0}, test = {0};
    nn_data_cfg dc;
    nn_eval ev;
    memset(&meta, 0, sizeof meta);
    exp_threads_set(o->threads);
    nn_err blas = {0};
    if (nn_sys_check_blas(&blas) && out) fprintf(out, "temper: warning: %s\n", blas.msg);
    int rc = nn_model_load(&net, &meta, o->model, err);
    if (!rc) rc = eval_data_cfg(o, &meta, &dc, err);
    if (!rc) rc = nn_data_load(&dc, &train, NULL, &test, err);
    if (!rc) rc = eval_run(o, net, &test, &ev, err);
    if (!rc && out) eval_print(o, &dc, net, &ev, out);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    nn_net_destroy(net);
    return rc;
}

/* The results folder: o->output, else <the model's folder>/attacks. */
static int attack_dir(const exp_attack_opts *o, char *buf, size_t cap, nn_err *err) {
    const char *slash = strrchr(o->ev.model, '/');
    int n = o->output ? snprintf(buf, cap, "%s", o->output)
            : slash   ? snprintf(buf, cap, "%.*s/attacks", (int)(slash - o->ev.model), o->ev.model)
                      : snprintf(buf, cap, "attacks");
    if (n < 0 || (size_t)n >= cap) return NN_FAIL(err, NN_E_INVAL, "output folder name too long");
    return NN_OK;
}

int exp_attack_cmd(exp_attack_opts *o, FILE *out, FILE *progress, nn_err *err) {
    nn_net *net = NULL;
    nn_model_meta meta;
    nn_dataset train = {0}, test = {0};
    nn_data_cfg dc;
    char dir[4096];
    memset(&meta, 0, sizeof meta);
    exp_threads_set(o->ev.threads);
    nn_err blas = {0};
    if (nn_sys_check_blas(&blas) && out) fprintf(out, "temper: warning: %s\n", blas.msg);
    o->ev.limit = o->attack.samples;
    int rc = attack_dir(o, dir, sizeof dir, err);
    if (!rc) rc = nn_model_load(&net, &meta, o->ev.model, err);
    if (!rc) rc = eval_data_cfg(&o->ev, &meta, &dc, err);
    if (!rc) {
        o->attack.cfg.lo = dc.lo;
        o->attack.cfg.hi = dc.hi;
        if (!exp_attack_bounded(&o->attack)) o->attack.cfg.eps = 1; /* unused */
        rc = atk_cfg_validate(&o->attack.cfg, err);
    }
    if (!rc) rc = nn_data_load(&dc, &train, NULL, &test, err);
    if (!rc && out)
        fprintf(out, "model %s (trained at T=%g), %s test set, first %zu samples, range [%g, %g]\n", o->ev.model,
                (double)net->temperature, dc.name, test.n, (double)dc.lo, (double)dc.hi);
    if (!rc) rc = exp_attacks_run(net, &test, &o->attack, 1, dir, o->quiet, out, progress, err);
    if (!rc && out) fprintf(out, "results in %s/\n", dir);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    nn_net_destroy(net);
    return rc;
}
