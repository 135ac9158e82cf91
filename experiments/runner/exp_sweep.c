/* exp_sweep.c - `sweep:` in experiment files: the experiment run once per value of one parameter, each run in
 * its own folder (<output>/<name>-<value>/), finished runs reused on a rerun (resumable), and one table row
 * per value in <output>/sweep.csv. */
#include "exp_sweep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exp_run.h"
#include "nn_io.h"
#include "nn_json.h"

/* The parameters a sweep can vary, with their valid range. */
static const struct {
    const char *key;
    double lo, hi;
    int integer;
} sweep_keys[] = {
    {"defense.temperature", 1e-6, 1e6, 0}, {"defense.alpha", 0, 1, 0}, {"train.temperature", 1e-6, 1e6, 0},
    {"train.epochs", 1, 1e6, 1},           {"train.seed", 0, 1e15, 1}, {"data.subset", 0, 60000, 1},
};
#define N_SWEEP_KEYS (sizeof sweep_keys / sizeof sweep_keys[0])

static int key_index(const char *key) {
    for (size_t i = 0; i < N_SWEEP_KEYS; i++)
        if (!strcmp(key, sweep_keys[i].key)) return (int)i;
    return -1;
}

int exp_sweep_check(const exp_sweep *s, char *why, size_t cap) {
    int k = key_index(s->key);
    if (k < 0) {
        snprintf(why, cap, "cannot sweep '%s' (can: defense.temperature, defense.alpha, train.temperature, "
                           "train.epochs, train.seed, data.subset)", s->key);
        return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        double v = s->values[i];
        if (!(v >= sweep_keys[k].lo && v <= sweep_keys[k].hi) || (sweep_keys[k].integer && v != (double)(long long)v)) {
            snprintf(why, cap, "values[%zu] = %g is not a valid %s", i, v, s->key);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (s->values[j] == v) {
                snprintf(why, cap, "values[%zu] = %g is listed twice", i, v);
                return -1;
            }
    }
    return 0;
}

void exp_sweep_apply(exp_config *c, const char *key, double v) {
    if (!strcmp(key, "defense.temperature")) {
        c->defense.kd.temperature = (float)v;
        c->train.temperature = (float)v;
        if (c->defense.kind == EXP_DEFENSE_DISTILLATION) c->teacher.train.temperature = (float)v;
    } else if (!strcmp(key, "defense.alpha")) {
        c->defense.kd.alpha = (float)v;
    } else if (!strcmp(key, "train.temperature")) {
        c->train.temperature = (float)v;
    } else if (!strcmp(key, "train.epochs")) {
        c->train.epochs = (size_t)v;
    } else if (!strcmp(key, "train.seed")) {
        c->train.seed = (uint64_t)v;
    } else if (!strcmp(key, "data.subset")) {
        c->data.subset = (size_t)v;
    }
}

/* A finished run: metrics.json, and when the experiment attacks, attacks/attacks.json (and the teacher's,
 * which come last, with a defense). */
static int run_finished(const char *dir, const exp_config *c) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/metrics.json", dir);
    if (stat(p, &st) != 0) return 0;
    snprintf(p, sizeof p, "%s/%sattacks/attacks.json", dir, exp_config_attacks_teacher(c) ? "teacher/" : "");
    return !c->n_attacks || stat(p, &st) == 0;
}

/* Appends number v (or an empty field) to b. */
static void csv_num(nn_jbuf *b, const nn_json *doc, const nn_json_val *obj, const char *key) {
    const nn_json_val *v = obj ? nn_json_get(doc, obj, key) : NULL;
    if (v && v->type == NN_JSON_NUMBER) nn_jbuf_printf(b, ",%.6g", v->num);
    else nn_jbuf_puts(b, ",");
}

/* One row of sweep.csv from a run's metrics.json and attacks.json; header (first row) names the columns. */
static int sweep_row(nn_jbuf *b, const char *dir, double value, int header, nn_err *err) {
    char p[4200], *text = NULL;
    size_t len;
    nn_json m = {0}, a = {0};
    snprintf(p, sizeof p, "%s/metrics.json", dir);
    int rc = nn_io_read_all(p, &text, &len, err);
    if (!rc) rc = nn_json_parse(&m, text, len, err);
    free(text);
    text = NULL;
    snprintf(p, sizeof p, "%s/attacks/attacks.json", dir);
    int has_a = !rc && nn_io_read_all(p, &text, &len, NULL) == 0 && nn_json_parse(&a, text, len, NULL) == 0;
    free(text);
    if (rc) goto fail;
    const nn_json_val *mr = nn_json_root(&m), *t = nn_json_get(&m, mr, "teacher");
    const nn_json_val *res = has_a ? nn_json_get(&a, nn_json_root(&a), "results") : NULL;
    const nn_json_val *dg = has_a ? nn_json_get(&a, nn_json_root(&a), "diagnostics") : NULL;
    if (header) {
        nn_jbuf_puts(b, "value,test_accuracy,teacher_accuracy,agreement,mean_abs_logit,frac_zero_gradient");
        for (const nn_json_val *r = res ? nn_json_first(&a, res) : NULL; r; r = nn_json_next(&a, r)) {
            const nn_json_val *run = nn_json_get(&a, r, "run"), *eps = nn_json_get(&a, r, "eps");
            const char *rn = run && run->type == NN_JSON_STRING ? run->str : "?";
            if (eps && eps->type == NN_JSON_NUMBER && !strstr(rn, "-eps")) /* a bound of an unbounded attack */
                nn_jbuf_printf(b, ",%s@%g success", rn, eps->num);
            else
                nn_jbuf_printf(b, ",%s success", rn);
        }
        nn_jbuf_puts(b, "\n");
    }
    nn_jbuf_printf(b, "%g", value);
    csv_num(b, &m, mr, "test_accuracy");
    csv_num(b, &m, t, "test_accuracy");
    csv_num(b, &m, mr, "teacher_student_agreement");
    csv_num(b, &a, dg, "mean_abs_logit");
    csv_num(b, &a, dg, "frac_zero_gradient");
    for (const nn_json_val *r = res ? nn_json_first(&a, res) : NULL; r; r = nn_json_next(&a, r))
        csv_num(b, &a, r, "success_rate");
    nn_jbuf_puts(b, "\n");
fail:
    nn_json_free(&m);
    nn_json_free(&a);
    return rc;
}

int exp_sweep_run(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg, FILE *out,
                  FILE *progress, nn_err *err) {
    const exp_sweep *s = &cfg->sweep;
    const char *name = strrchr(s->key, '.') ? strrchr(s->key, '.') + 1 : s->key;
    exp_config *c = malloc(sizeof *c);
    nn_jbuf b = {0};
    char dir[4096];
    int rc = c ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n && !rc; i++) {
        *c = *cfg;
        exp_sweep_apply(c, s->key, s->values[i]);
        int n = snprintf(dir, sizeof dir, "%s/%s-%g", cfg->output, name, s->values[i]);
        if (n < 0 || (size_t)n >= sizeof c->output) {
            rc = NN_FAIL(err, NN_E_INVAL, "%s: output folder name too long", cfg->output);
            break;
        }
        memcpy(c->output, dir, (size_t)n + 1);
        if (run_finished(dir, cfg)) {
            if (out) fprintf(out, "%s = %g: finished earlier, reused (%s/)\n", s->key, s->values[i], dir);
        } else {
            if (out) fprintf(out, "%s = %g (%zu of %zu)\n", s->key, s->values[i], i + 1, s->n);
            rc = exp_run_config(o, text, len, c, out, progress, err);
        }
        if (!rc) rc = sweep_row(&b, dir, s->values[i], i == 0, err);
    }
    if (!rc && b.oom) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) rc = exp_path_join(dir, sizeof dir, cfg->output, "sweep.csv", err);
    if (!rc) rc = nn_io_write_atomic(dir, b.p, b.len, err);
    if (!rc && out) fprintf(out, "sweep table: %s\n%s", dir, b.p);
    nn_jbuf_free(&b);
    free(c);
    return rc;
}
