/* exp_sweep.c - `sweep:` and `variants:` in experiment files: the experiment run once per variant and point of
 * the grid of the swept parameters, each run in its own folder, finished runs of the same run key reused on a
 * rerun (resumable; a changed experiment recomputes the runs it changes), one table row per run in
 * <output>/sweep.csv and a Markdown summary (mean +- std over seeds) in sweep.md. */
#include "exp_sweep.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

int exp_sweep_check(const exp_sweep_axis *s, char *why, size_t cap) {
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

#define MAX_COLS 128

/* The numbers of one run, by column. */
typedef struct sweep_table {
    char names[MAX_COLS][96];
    size_t n_cols;
    double *v;       /* [rows, MAX_COLS], NaN = missing */
    size_t *variant; /* [rows] */
    double *point;   /* [rows, EXP_MAX_AXES] */
    size_t rows, cap;
} sweep_table;

/* Column `name` of the current row: added to the header if new. */
static void put(sweep_table *t, const char *name, double v) {
    size_t c = 0;
    while (c < t->n_cols && strcmp(t->names[c], name)) c++;
    if (c == t->n_cols) {
        if (c == MAX_COLS) return;
        snprintf(t->names[c], sizeof t->names[c], "%s", name);
        t->n_cols++;
        for (size_t r = 0; r < t->rows; r++) t->v[r * MAX_COLS + c] = NAN;
    }
    t->v[(t->rows - 1) * MAX_COLS + c] = v;
}

static double num(const nn_json *doc, const nn_json_val *obj, const char *key) {
    const nn_json_val *v = obj ? nn_json_get(doc, obj, key) : NULL;
    return v && v->type == NN_JSON_NUMBER ? v->num : NAN;
}

/* Adds a row for the run in dir: metrics.json and, when present, attacks/attacks.json. */
static int add_row(sweep_table *t, const char *dir, size_t variant, const double *point, nn_err *err) {
    if (t->rows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        double *v = realloc(t->v, cap * MAX_COLS * sizeof *v), *p = v ? realloc(t->point, cap * EXP_MAX_AXES * sizeof *p) : NULL;
        if (v) t->v = v;
        if (p) t->point = p;
        size_t *vr = p ? realloc(t->variant, cap * sizeof *vr) : NULL;
        if (!vr) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
        t->variant = vr;
        t->cap = cap;
    }
    size_t r = t->rows++;
    for (size_t c = 0; c < MAX_COLS; c++) t->v[r * MAX_COLS + c] = NAN;
    memcpy(t->point + r * EXP_MAX_AXES, point, EXP_MAX_AXES * sizeof *point);
    t->variant[r] = variant;
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
    const nn_json_val *mr = nn_json_root(&m), *te = nn_json_get(&m, mr, "teacher"), *bd = nn_json_get(&m, mr, "boundary");
    put(t, "test_accuracy", num(&m, mr, "test_accuracy"));
    put(t, "teacher_accuracy", num(&m, te, "test_accuracy"));
    put(t, "agreement", num(&m, mr, "teacher_student_agreement"));
    put(t, "magsim", num(&m, bd, "magsim"));
    put(t, "angsim", num(&m, bd, "angsim"));
    put(t, "train_seconds", num(&m, mr, "train_seconds"));
    const nn_json_val *res = has_a ? nn_json_get(&a, nn_json_root(&a), "results") : NULL;
    const nn_json_val *dg = has_a ? nn_json_get(&a, nn_json_root(&a), "diagnostics") : NULL;
    put(t, "mean_abs_logit", num(&a, dg, "mean_abs_logit"));
    put(t, "frac_zero_gradient", num(&a, dg, "frac_zero_gradient"));
    for (const nn_json_val *x = res ? nn_json_first(&a, res) : NULL; x; x = nn_json_next(&a, x)) {
        const nn_json_val *run = nn_json_get(&a, x, "run"), *eps = nn_json_get(&a, x, "eps");
        char name[96], rn[64];
        snprintf(rn, sizeof rn, "%s", run && run->type == NN_JSON_STRING ? run->str : "?");
        if (eps && eps->type == NN_JSON_NUMBER && !strstr(rn, "-eps")) /* a bound of an unbounded attack */
            snprintf(rn + strlen(rn), sizeof rn - strlen(rn), "@%g", eps->num);
        snprintf(name, sizeof name, "%s success", rn);
        put(t, name, num(&a, x, "success_rate"));
        snprintf(name, sizeof name, "%s robust", rn);
        put(t, name, num(&a, x, "robust_accuracy"));
    }
fail:
    nn_json_free(&m);
    nn_json_free(&a);
    return rc;
}

/* The run-defining columns of row r (variant, axes) as CSV or Markdown cells. */
static void row_keys(nn_jbuf *b, const exp_config *cfg, const sweep_table *t, size_t r, const char *sep, int skip_seed) {
    const exp_sweep *s = &cfg->sweep;
    int first = 1;
    if (cfg->n_variants) {
        nn_jbuf_printf(b, "%s", cfg->variants[t->variant[r]].name);
        first = 0;
    }
    for (size_t a = 0; a < s->n_axes; a++) {
        if (skip_seed && !strcmp(s->axis[a].key, "train.seed")) continue;
        nn_jbuf_printf(b, "%s%g", first ? "" : sep, t->point[r * EXP_MAX_AXES + a]);
        first = 0;
    }
}

static void header_keys(nn_jbuf *b, const exp_config *cfg, const char *sep, int skip_seed) {
    int first = 1;
    if (cfg->n_variants) {
        nn_jbuf_puts(b, "variant");
        first = 0;
    }
    for (size_t a = 0; a < cfg->sweep.n_axes; a++) {
        if (skip_seed && !strcmp(cfg->sweep.axis[a].key, "train.seed")) continue;
        nn_jbuf_printf(b, "%s%s", first ? "" : sep, cfg->sweep.axis[a].key);
        first = 0;
    }
}

static void write_csv(nn_jbuf *b, const exp_config *cfg, const sweep_table *t) {
    header_keys(b, cfg, ",", 0);
    for (size_t c = 0; c < t->n_cols; c++) nn_jbuf_printf(b, ",%s", t->names[c]);
    nn_jbuf_puts(b, "\n");
    for (size_t r = 0; r < t->rows; r++) {
        row_keys(b, cfg, t, r, ",", 0);
        for (size_t c = 0; c < t->n_cols; c++) {
            double v = t->v[r * MAX_COLS + c];
            if (isnan(v)) nn_jbuf_puts(b, ",");
            else nn_jbuf_printf(b, ",%.6g", v);
        }
        nn_jbuf_puts(b, "\n");
    }
}

/* Whether rows r and q differ only in train.seed. */
static int same_group(const exp_config *cfg, const sweep_table *t, size_t r, size_t q) {
    if (t->variant[r] != t->variant[q]) return 0;
    for (size_t a = 0; a < cfg->sweep.n_axes; a++)
        if (strcmp(cfg->sweep.axis[a].key, "train.seed") &&
            t->point[r * EXP_MAX_AXES + a] != t->point[q * EXP_MAX_AXES + a])
            return 0;
    return 1;
}

/* sweep.md: one row per group of runs that differ only in train.seed, each column as mean +- sample std
 * (fractions in %), the empty columns left out. */
static void write_md(nn_jbuf *b, const exp_config *cfg, const sweep_table *t) {
    int used[MAX_COLS] = {0};
    for (size_t c = 0; c < t->n_cols; c++)
        for (size_t r = 0; r < t->rows && !used[c]; r++) used[c] = !isnan(t->v[r * MAX_COLS + c]);
    nn_jbuf_printf(b, "# %s\n\nEach cell: mean ± sample standard deviation over the seeds (n runs); accuracies and "
                      "success rates in %%.\n\n| ", cfg->name);
    header_keys(b, cfg, " | ", 1);
    nn_jbuf_puts(b, " | n");
    for (size_t c = 0; c < t->n_cols; c++) if (used[c]) nn_jbuf_printf(b, " | %s", t->names[c]);
    nn_jbuf_puts(b, " |\n|");
    size_t nk = (cfg->n_variants ? 1 : 0) + 1;
    for (size_t a = 0; a < cfg->sweep.n_axes; a++) nk += strcmp(cfg->sweep.axis[a].key, "train.seed") != 0;
    for (size_t c = 0; c < t->n_cols; c++) nk += used[c];
    for (size_t i = 0; i < nk; i++) nn_jbuf_puts(b, "---|");
    nn_jbuf_puts(b, "\n");
    for (size_t r = 0; r < t->rows; r++) {
        int seen = 0;
        for (size_t q = 0; q < r && !seen; q++) seen = same_group(cfg, t, r, q);
        if (seen) continue;
        nn_jbuf_puts(b, "| ");
        row_keys(b, cfg, t, r, " | ", 1);
        size_t n = 0;
        for (size_t q = r; q < t->rows; q++) n += same_group(cfg, t, r, q);
        nn_jbuf_printf(b, " | %zu", n);
        for (size_t c = 0; c < t->n_cols; c++) {
            if (!used[c]) continue;
            double sum = 0, sq = 0;
            size_t m = 0;
            for (size_t q = r; q < t->rows; q++) {
                double v = t->v[q * MAX_COLS + c];
                if (!same_group(cfg, t, r, q) || isnan(v)) continue;
                sum += v, m++;
            }
            double mean = m ? sum / (double)m : NAN;
            for (size_t q = r; q < t->rows; q++) {
                double v = t->v[q * MAX_COLS + c];
                if (same_group(cfg, t, r, q) && !isnan(v)) sq += (v - mean) * (v - mean);
            }
            int pct = !strstr(t->names[c], "seconds") && !strstr(t->names[c], "logit") && !strstr(t->names[c], "sim");
            double k = pct ? 100.0 : 1.0;
            if (!m) nn_jbuf_puts(b, " | ");
            else if (m == 1) nn_jbuf_printf(b, pct ? " | %.2f" : " | %.3g", k * mean);
            else nn_jbuf_printf(b, pct ? " | %.2f ± %.2f" : " | %.3g ± %.2g", k * mean, k * sqrt(sq / (double)(m - 1)));
        }
        nn_jbuf_puts(b, " |\n");
    }
}

/* The folder of variant v at grid point p (values per axis) into dir. */
static int run_dir(char *dir, size_t cap, const exp_config *cfg, size_t v, const double *p, nn_err *err) {
    size_t n = (size_t)snprintf(dir, cap, "%s", cfg->output);
    if (cfg->n_variants && n < cap) n += (size_t)snprintf(dir + n, cap - n, "/%s", cfg->variants[v].name);
    for (size_t a = 0; a < cfg->sweep.n_axes && n < cap; a++) {
        const char *key = cfg->sweep.axis[a].key, *name = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
        n += (size_t)snprintf(dir + n, cap - n, "/%s-%g", name, p[a]);
    }
    if (n >= cap) return NN_FAIL(err, NN_E_INVAL, "%s: output folder name too long", cfg->output);
    return NN_OK;
}

size_t exp_sweep_count(const exp_config *cfg) {
    size_t n = cfg->n_variants ? cfg->n_variants : 1;
    for (size_t a = 0; a < cfg->sweep.n_axes; a++)
        n *= cfg->sweep.axis[a].n;
    return n;
}

int exp_sweep_point(const exp_config *cfg, size_t i, exp_config *c, size_t *variant, double *point, char *what,
                    size_t wcap, nn_err *err) {
    const exp_sweep *s = &cfg->sweep;
    size_t nv = cfg->n_variants ? cfg->n_variants : 1, v = i % nv, rest = i / nv, w = 0;
    double p[EXP_MAX_AXES] = {0};
    char dir[4096], tmp[1024];
    if (!what || !wcap) what = tmp, wcap = sizeof tmp;
    *c = *cfg;
    if (cfg->n_variants) c->defense = cfg->variants[v].defense;
    what[0] = '\0';
    w += (size_t)snprintf(what, wcap, "%s", cfg->n_variants ? cfg->variants[v].name : "");
    for (size_t a = s->n_axes; a-- > 0;) { /* the last axis varies fastest */
        p[a] = s->axis[a].values[rest % s->axis[a].n];
        rest /= s->axis[a].n;
    }
    for (size_t a = 0; a < s->n_axes; a++) {
        exp_sweep_apply(c, s->axis[a].key, p[a]);
        if (w < wcap) w += (size_t)snprintf(what + w, wcap - w, "%s%s = %g", w ? ", " : "", s->axis[a].key, p[a]);
    }
    exp_defense_finish(c);
    int rc = run_dir(dir, sizeof dir, cfg, v, p, err);
    if (!rc && strlen(dir) >= sizeof c->output) rc = NN_FAIL(err, NN_E_INVAL, "%s: output folder name too long", dir);
    if (rc) return rc;
    strcpy(c->output, dir);
    if (variant) *variant = v;
    if (point) memcpy(point, p, sizeof p);
    return NN_OK;
}

int exp_sweep_run(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg, FILE *out,
                  FILE *progress, nn_err *err) {
    exp_config *c = malloc(sizeof *c);
    sweep_table *t = calloc(1, sizeof *t);
    nn_jbuf b = {0}, md = {0};
    char dir[4096], what[1024];
    size_t total = exp_sweep_count(cfg);
    char key[65];
    exp_hash_memo memo; /* the data set's files are hashed once for the whole sweep */
    exp_hash_memo_init(&memo);
    int rc = c && t ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    /* every variant at a grid point before the next point: a partial sweep compares like with like */
    for (size_t i = 0; i < total && !rc; i++) {
        double p[EXP_MAX_AXES];
        size_t v;
        if ((rc = exp_sweep_point(cfg, i, c, &v, p, what, sizeof what, err))) break;
        if ((rc = exp_run_key(c, &memo, key, err))) break;
        if (!exp_run_reuse(o, c, key, what, out, progress)) {
            if (out) fprintf(out, "%s (%zu of %zu)\n", what, i + 1, total);
            rc = exp_run_config(o, text, len, c, key, out, progress, err);
        }
        if (!rc) rc = add_row(t, c->output, v, p, err);
    }
    if (!rc) write_csv(&b, cfg, t);
    if (!rc) write_md(&md, cfg, t);
    if (!rc && (b.oom || md.oom)) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) rc = exp_path_join(dir, sizeof dir, cfg->output, "sweep.csv", err);
    if (!rc) rc = nn_io_write_atomic(dir, b.p, b.len, err);
    if (!rc) rc = exp_path_join(dir, sizeof dir, cfg->output, "sweep.md", err);
    if (!rc) rc = nn_io_write_atomic(dir, md.p, md.len, err);
    if (!rc && out) fprintf(out, "sweep table: %s/sweep.csv, summary: %s\n%s", cfg->output, dir, md.p);
    nn_jbuf_free(&b);
    nn_jbuf_free(&md);
    exp_hash_memo_free(&memo);
    if (t) {
        free(t->v);
        free(t->point);
        free(t->variant);
    }
    free(t);
    free(c);
    return rc;
}
