/* exp_bss.c - BSS folders (exp_bss.h): generation from a teacher, reading a pool back, `temper bss`.
 *
 * Generation walks the first spec->samples training samples in chunks of the teacher's max_batch: per chunk,
 * atk_bss_select (no student) keeps at most cfg.max_base samples the teacher classifies correctly, and
 * atk_bss_generate makes their BSS with `first` = the number of base samples before the chunk, so the target
 * draws depend on a base sample's rank only, not on the chunking. Everything stays in memory until the
 * files are written; bss.json (removed first) is written last, so a folder with a bss.json is complete. */
#include "exp_bss.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "atk_bss.h"
#include "exp_cli.h"
#include "exp_json.h"
#include "exp_progress.h"
#include "exp_run.h"
#include "nn_io.h"
#include "nn_model.h"
#include "nn_png.h"
#include "nn_sys.h"

static const char *const policy_names[] = {"sample", "second", "uniform", "all", NULL};

/* Everything generated, plus the statistics. */
typedef struct bss_set {
    size_t d, k, m, cap, n_base, n_seen; /* rows m of cap; base samples; training samples looked at */
    float *x, *z;                        /* [cap, d] BSS, [cap, k] teacher logits */
    int *base, *target, *steps, *source; /* [cap] */
    size_t *local;                       /* [cap] index of the base sample in train */
    size_t crossed;
    double steps_sum, l2_sum;      /* summed in row order */
    size_t *pair_n, *pair_crossed; /* [k, k] by (b, k) */
    double *pair_l2;               /* [k, k] */
    double seconds;
} bss_set;

static void bss_set_free(bss_set *s) {
    free(s->x), free(s->z), free(s->base), free(s->target), free(s->steps), free(s->source), free(s->local);
    free(s->pair_n), free(s->pair_crossed), free(s->pair_l2);
    memset(s, 0, sizeof *s);
}

/* Room for every BSS the walk can make: per chunk at most max_base base samples, each giving per rows. */
static int bss_set_alloc(bss_set *s, const nn_net *t, const atk_bss_cfg *cfg, size_t n, nn_err *err) {
    size_t mb = t->max_batch, bases = 0, cb = mb < cfg->max_base ? mb : cfg->max_base;
    for (size_t off = 0; off < n; off += mb)
        bases += n - off < cb ? n - off : cb;
    s->d = t->n_in, s->k = t->n_classes;
    size_t per = atk_bss_count(cfg, 1, s->k), wide = s->d > s->k ? s->d : s->k;
    if (per && bases > SIZE_MAX / per / wide / sizeof(float))
        return NN_FAIL(err, NN_E_NOMEM, "bss: %zu x %zu BSS of %zu features do not fit in memory", bases, per,
                       s->d);
    s->cap = bases * per;
    size_t c = s->cap ? s->cap : 1, kk = s->k * s->k;
    s->x = malloc(c * s->d * sizeof *s->x), s->z = malloc(c * s->k * sizeof *s->z);
    s->base = malloc(c * sizeof(int)), s->target = malloc(c * sizeof(int));
    s->steps = malloc(c * sizeof(int)), s->source = malloc(c * sizeof(int)),
    s->local = malloc(c * sizeof(size_t));
    s->pair_n = calloc(kk, sizeof(size_t)), s->pair_crossed = calloc(kk, sizeof(size_t));
    s->pair_l2 = calloc(kk, sizeof(double));
    if (!s->x || !s->z || !s->base || !s->target || !s->steps || !s->source || !s->local || !s->pair_n ||
        !s->pair_crossed || !s->pair_l2)
        return NN_FAIL(err, NN_E_NOMEM, "bss: out of memory for %zu BSS of %zu features", s->cap, s->d);
    return NN_OK;
}

/* Appends the rows atk_bss_generate wrote at s->m (res[rows]) with their bookkeeping. */
static int bss_append(bss_set *s, const nn_dataset *train, size_t off, const size_t *sel,
                      const atk_bss_result *res, size_t rows, nn_err *err) {
    for (size_t r = 0; r < rows; r++) {
        size_t row = s->m + r, li = off + sel[res[r].sample];
        size_t src = train->id ? train->id[li] : li;
        if (src > INT32_MAX)
            return NN_FAIL(err, NN_E_INVAL, "bss: training index %zu does not fit int32", src);
        s->base[row] = res[r].base, s->target[row] = res[r].target, s->steps[row] = res[r].steps;
        s->source[row] = (int)src, s->local[row] = li;
        size_t p = (size_t)res[r].base * s->k + (size_t)res[r].target;
        s->pair_n[p]++;
        s->pair_crossed[p] += res[r].crossed != 0;
        s->pair_l2[p] += res[r].l2;
        s->crossed += res[r].crossed != 0;
        s->steps_sum += res[r].steps;
        s->l2_sum += res[r].l2;
    }
    s->m += rows;
    return NN_OK;
}

/* The walk over the first n training samples (see the top of the file). */
static int bss_walk(nn_net *t, const nn_dataset *train, const atk_bss_cfg *cfg, size_t n, bss_set *s,
                    FILE *progress, nn_err *err) {
    size_t mb = t->max_batch, d = s->d, per = atk_bss_count(cfg, 1, s->k);
    size_t *sel = malloc(mb * sizeof *sel);
    float *xb = malloc(mb * d * sizeof *xb);
    atk_bss_result *res = malloc(mb * per * sizeof *res);
    int rc = sel && xb && res ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "bss: out of memory");
    for (size_t off = 0; off < n && !rc; off += mb) {
        size_t len = n - off < mb ? n - off : mb, ns = 0;
        rc = atk_bss_select(t, NULL, cfg, train->x + off * d, train->y + off, len, NULL, sel, &ns, err);
        for (size_t r = 0; r < ns && !rc; r++)
            memcpy(xb + r * d, train->x + (off + sel[r]) * d, d * sizeof *xb);
        size_t rows = atk_bss_count(cfg, ns, s->k);
        if (!rc && ns)
            rc = atk_bss_generate(t, cfg, xb, ns, s->n_base, NULL, s->x + s->m * d, res, s->z + s->m * s->k,
                                  err);
        if (!rc && ns) rc = bss_append(s, train, off, sel, res, rows, err);
        s->n_base += ns;
        s->n_seen = off + len;
        if (!rc && progress) {
            fprintf(progress, "bss: %zu/%zu samples, %zu base samples, %zu BSS\n", s->n_seen, n, s->n_base,
                    s->m);
            fflush(progress);
        }
    }
    free(sel), free(xb), free(res);
    return rc;
}

static int write_pairs_csv(const char *path, const bss_set *s, nn_err *err) {
    nn_jbuf b = {0};
    nn_jbuf_puts(&b, "base,target,count,crossed,mean_l2\n");
    for (size_t p = 0; p < s->k * s->k; p++)
        if (s->pair_n[p])
            nn_jbuf_printf(&b, "%zu,%zu,%zu,%zu,%.9g\n", p / s->k, p % s->k, s->pair_n[p], s->pair_crossed[p],
                           s->pair_l2[p] / (double)s->pair_n[p]);
    int rc = b.oom ? NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path)
                   : nn_io_write_atomic(path, b.p, b.len, err);
    nn_jbuf_free(&b);
    return rc;
}

/* v as the shortest decimal that reads back as the same float: 0.3f is written 0.3, not 0.300000012. */
static double float_num(float v) {
    char b[32];
    for (int p = 6; p < 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)v);
        if ((float)strtod(b, NULL) == v) return strtod(b, NULL);
    }
    return v;
}

static void json_settings(exp_json *j, const exp_bss_spec *spec, size_t batch) {
    const atk_bss_cfg *c = &spec->cfg;
    exp_json_key(j, "settings");
    exp_json_object_begin(j);
    exp_json_kv_uint(j, "samples", spec->samples);
    exp_json_kv_number(j, "eta", float_num(c->eta));
    exp_json_kv_uint(j, "steps", (unsigned long long)c->steps);
    exp_json_kv_string(j, "policy", (unsigned)c->policy <= ATK_BSS_ALL ? policy_names[c->policy] : NULL);
    exp_json_kv_uint(j, "seed", c->seed);
    exp_json_kv_uint(j, "max_base", c->max_base);
    exp_json_kv_uint(j, "batch", batch);
    exp_json_key(j, "range");
    exp_json_array_begin(j);
    exp_json_number(j, float_num(c->lo));
    exp_json_number(j, float_num(c->hi));
    exp_json_array_end(j);
    exp_json_kv_uint(j, "grid", spec->grid);
    exp_json_object_end(j);
}

static int write_json(const char *path, const bss_set *s, const exp_bss_spec *spec, const nn_net *t,
                      const nn_dataset *train, const char *teacher_desc, const char *data_name, nn_err *err) {
    exp_json j;
    exp_json_init(&j);
    exp_json_object_begin(&j);
    json_settings(&j, spec, t->max_batch);
    exp_json_kv_string(&j, "teacher", teacher_desc);
    exp_json_key(&j, "data");
    exp_json_object_begin(&j);
    exp_json_kv_string(&j, "name", data_name);
    exp_json_kv_uint(&j, "train_samples", train->n);
    exp_json_kv_uint(&j, "samples_used", s->n_seen);
    exp_json_key(&j, "shape");
    exp_json_array_begin(&j);
    exp_json_uint(&j, train->shape.c), exp_json_uint(&j, train->shape.h), exp_json_uint(&j, train->shape.w);
    exp_json_array_end(&j);
    exp_json_kv_uint(&j, "classes", s->k);
    exp_json_object_end(&j);
    exp_json_kv_uint(&j, "n_base", s->n_base);
    exp_json_kv_uint(&j, "n_bss", s->m);
    exp_json_kv_uint(&j, "crossed", s->crossed);
    exp_json_kv_number(&j, "fraction_crossed", (double)s->crossed / (double)s->m);
    exp_json_kv_number(&j, "mean_steps", s->steps_sum / (double)s->m);
    exp_json_kv_number(&j, "mean_l2", s->l2_sum / (double)s->m);
    exp_json_key(&j, "pairs");
    exp_json_array_begin(&j);
    for (size_t p = 0; p < s->k * s->k; p++) {
        if (!s->pair_n[p]) continue;
        exp_json_object_begin(&j);
        exp_json_kv_uint(&j, "base", p / s->k);
        exp_json_kv_uint(&j, "target", p % s->k);
        exp_json_kv_uint(&j, "count", s->pair_n[p]);
        exp_json_kv_uint(&j, "crossed", s->pair_crossed[p]);
        exp_json_kv_number(&j, "mean_l2", s->pair_l2[p] / (double)s->pair_n[p]);
        exp_json_object_end(&j);
    }
    exp_json_array_end(&j);
    exp_json_kv_number(&j, "seconds", s->seconds);
    exp_json_object_end(&j);
    int rc = exp_json_finish(&j, err);
    if (!rc) rc = nn_io_write_atomic(path, j.b.p, j.b.len, err);
    exp_json_free(&j);
    return rc;
}

/* grid.png: the first rows BSS under their base samples (nn_png_adv_grid: base, BSS, difference). Shapes
 * other than 1 or 3 channels are drawn as one grey C*H x W image. */
static int write_grid(const char *path, const bss_set *s, const nn_dataset *train, size_t rows,
                      const atk_bss_cfg *c, nn_err *err) {
    nn_shape sh = train->shape;
    if (sh.c != 1 && sh.c != 3) sh = (nn_shape){1, sh.c * sh.h, sh.w};
    float *x0 = malloc(rows * s->d * sizeof *x0);
    if (!x0) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
    for (size_t r = 0; r < rows; r++)
        memcpy(x0 + r * s->d, train->x + s->local[r] * s->d, s->d * sizeof *x0);
    int rc = nn_png_adv_grid(path, x0, s->x, rows, sh, c->lo, c->hi, err);
    free(x0);
    return rc;
}

/* The folder's files, bss.json last. */
static int bss_write(const char *dir, const bss_set *s, const exp_bss_spec *spec, const nn_net *t,
                     const nn_dataset *train, const char *teacher_desc, const char *data_name, nn_err *err) {
    char path[4096];
    nn_shape sh = train->shape;
    size_t d4[4] = {s->m, sh.c, sh.h, sh.w}, d2[2] = {s->m, s->k};
    const char *names[4] = {"base.npy", "target.npy", "steps.npy", "source.npy"};
    const int *cols[4] = {s->base, s->target, s->steps, s->source};
    int rc = exp_path_join(path, sizeof path, dir, "samples.npy", err);
    if (!rc) rc = nn_npy_write_f32(path, s->x, 4, d4, err);
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "logits.npy", err);
    if (!rc) rc = nn_npy_write_f32(path, s->z, 2, d2, err);
    for (int i = 0; i < 4 && !rc; i++) {
        rc = exp_path_join(path, sizeof path, dir, names[i], err);
        if (!rc) rc = nn_npy_write_i32(path, cols[i], 1, d2, err);
    }
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "pairs.csv", err);
    if (!rc) rc = write_pairs_csv(path, s, err);
    size_t rows = spec->grid < s->m ? spec->grid : s->m;
    if (rows > NN_PNG_GRID_MAX_ROWS) rows = NN_PNG_GRID_MAX_ROWS;
    if (!rc && rows) rc = exp_path_join(path, sizeof path, dir, "grid.png", err);
    if (!rc && rows) rc = write_grid(path, s, train, rows, &spec->cfg, err);
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "bss.json", err);
    if (!rc) rc = write_json(path, s, spec, t, train, teacher_desc, data_name, err);
    return rc;
}

static int bss_check(const nn_net *t, const nn_dataset *train, const exp_bss_spec *spec, nn_err *err) {
    if (!t || !train || !spec)
        return NN_FAIL(err, NN_E_INVAL, "bss: teacher, data and settings must not be NULL");
    int rc = atk_bss_cfg_validate(&spec->cfg, err);
    if (rc) return rc;
    if (t->max_batch == 0) return NN_FAIL(err, NN_E_INVAL, "bss: teacher not reserved (nn_net_reserve)");
    size_t dd = (size_t)train->shape.c * train->shape.h * train->shape.w;
    if (dd != t->n_in)
        return NN_FAIL(err, NN_E_SHAPE,
                       "bss: the data's samples have %zu features (%zux%zux%zu), the teacher takes %zu", dd,
                       train->shape.c, train->shape.h, train->shape.w, t->n_in);
    if (train->n == 0) return NN_FAIL(err, NN_E_INVAL, "bss: the training set is empty");
    return NN_OK;
}

/* exp_bss_generate with the data set's name for bss.json, and the statistics kept in *s (freed by caller). */
static int bss_generate(nn_net *t, const nn_dataset *train, const exp_bss_spec *spec, const char *dir,
                        const char *teacher_desc, const char *data_name, FILE *progress, bss_set *s,
                        nn_err *err) {
    double t0 = exp_now();
    char path[4096];
    memset(s, 0, sizeof *s);
    exp_bss_spec sp; /* max_base 0: every correct sample of a chunk */
    if (spec && t) {
        sp = *spec;
        if (!sp.cfg.max_base) sp.cfg.max_base = t->max_batch;
        spec = &sp;
    }
    int rc = bss_check(t, train, spec, err);
    size_t n = spec && spec->samples && spec->samples < train->n ? spec->samples : (train ? train->n : 0);
    if (!rc) rc = exp_mkdir_p(dir, err);
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "bss.json", err);
    if (!rc && remove(path) != 0 && errno != ENOENT)
        rc = NN_FAIL(err, NN_E_IO, "%s: cannot remove the previous report: %s", path, strerror(errno));
    if (!rc) rc = bss_set_alloc(s, t, &spec->cfg, n, err);
    if (!rc) rc = bss_walk(t, train, &spec->cfg, n, s, progress, err);
    if (!rc && s->m == 0)
        rc = NN_FAIL(err, NN_E_INVAL,
                     "bss: the teacher classifies none of the first %zu training samples correctly: "
                     "no base samples",
                     n);
    s->seconds = exp_now() - t0;
    if (!rc) rc = bss_write(dir, s, spec, t, train, teacher_desc, data_name, err);
    return rc;
}

int exp_bss_generate(nn_net *teacher, const nn_dataset *train, const exp_bss_spec *spec, const char *dir,
                     const char *teacher_desc, const char *data_name, FILE *progress, nn_err *err) {
    bss_set s;
    int rc = bss_generate(teacher, train, spec, dir, teacher_desc, data_name, progress, &s, err);
    bss_set_free(&s);
    return rc;
}

/* ---- reading a folder back ---- */

static int pool_read(const char *dir, const char *name, nn_npy *a, char *path, size_t cap, nn_err *err) {
    int rc = exp_path_join(path, cap, dir, name, err);
    if (!rc) rc = nn_npy_read(path, a, err);
    if (!rc && a->dtype != NN_NPY_F32)
        rc = NN_FAIL(err, NN_E_FORMAT, "%s: dtype int32, expected float32", path);
    if (!rc && a->ndim < 1) rc = NN_FAIL(err, NN_E_FORMAT, "%s: a scalar, expected an array of rows", path);
    if (!rc && a->dims[0] == 0) rc = NN_FAIL(err, NN_E_FORMAT, "%s: no rows (an empty pool)", path);
    return rc;
}

int exp_bss_pool_load(const char *dir, size_t d, size_t k, float **x, float **logits, size_t *n,
                      nn_err *err) {
    nn_npy xs, zs;
    char px[4096], pz[4096];
    memset(&zs, 0, sizeof zs);
    *x = *logits = NULL;
    *n = 0;
    int rc = pool_read(dir, "samples.npy", &xs, px, sizeof px, err);
    size_t rows = rc ? 0 : xs.dims[0];
    if (!rc && xs.count / rows != d)
        rc = NN_FAIL(err, NN_E_SHAPE, "%s: samples of %zu features, the network takes %zu", px,
                     xs.count / rows, d);
    if (!rc) rc = pool_read(dir, "logits.npy", &zs, pz, sizeof pz, err);
    if (!rc && (zs.ndim != 2 || zs.dims[1] != k))
        rc = NN_FAIL(err, NN_E_SHAPE,
                     "%s: expected logits of shape [n, %zu], got %d dimensions with %zu per row", pz, k,
                     zs.ndim, zs.count / zs.dims[0]);
    if (!rc && zs.dims[0] != rows)
        rc = NN_FAIL(err, NN_E_SHAPE, "%s: %zu rows, but %s has %zu", pz, zs.dims[0], px, rows);
    if (!rc) {
        *x = xs.data, *logits = zs.data, *n = rows;
        xs.data = zs.data = NULL;
    }
    nn_npy_free(&xs);
    nn_npy_free(&zs);
    return rc;
}

/* ---- `temper bss` ---- */

static const char usage_bss[] =
    "usage: temper bss MODEL.safetensors [options]\n"
    "\n"
    "Generates boundary-supporting samples (Heo et al. 2019) from a model on the first --samples training\n"
    "images it classifies correctly, and writes a folder: samples.npy, logits.npy, base.npy, target.npy,\n"
    "steps.npy, source.npy, pairs.csv, grid.png and, last, bss.json. `defense: {type: bss, pool: DIR}` "
    "reads\n"
    "it back.\n"
    "\n"
    "  --samples N       training images considered (default 1000; 0: all)\n"
    "  --eta X           step size (default 0.3)\n"
    "  --steps N         at most N steps per sample (1..1000, default 10)\n"
    "  --policy P        target class: sample (drawn from the softmax, default) | second | uniform | all\n"
    "  --seed S          target draws (default 0)\n"
    "  --max-base N      at most N base samples per batch of --batch images (default: all correct ones)\n"
    "  --batch N         batch size (default 128)\n"
    "  --grid N          rows of grid.png (0..64, default 16; 0: no grid)\n"
    "  --data NAME, --range LO,HI   training set and pixel range (default: from the model's metadata)\n"
    "  --output DIR      results folder (default: results/bss-<model file name without extension>)\n"
    "  --threads N, --quiet\n";

typedef struct bss_opts {
    const char *model, *data, *output;
    int has_range, quiet, threads;
    float lo, hi;
    size_t batch;
    exp_bss_spec spec;
} bss_opts;

/* The integer options: name, smallest and largest value, what the message asks for. */
static const struct bss_int_opt {
    const char *name;
    uint64_t lo, hi;
    const char *want;
} int_opts[] = {
    {"samples", 0, SIZE_MAX, "an integer >= 0"},        {"seed", 0, UINT64_MAX, "an integer >= 0"},
    {"steps", 1, 1000, "an integer in 1..1000"},        {"max-base", 1, SIZE_MAX, "a positive integer"},
    {"batch", 1, 1u << 20, "an integer in 1..1048576"}, {"grid", 0, 64, "an integer in 0..64"},
    {"threads", 1, 1024, "an integer in 1..1024"},
};
enum { N_INT_OPTS = sizeof int_opts / sizeof int_opts[0] };
static const char *const str_opts[] = {"data", "output", "range", "eta", "policy", "quiet", NULL};

static int bss_opt_known(const char *name) {
    for (size_t i = 0; i < N_INT_OPTS; i++)
        if (!strcmp(name, int_opts[i].name)) return 1;
    for (size_t i = 0; str_opts[i]; i++)
        if (!strcmp(name, str_opts[i])) return 1;
    return 0;
}

/* Digits only, lo <= value <= hi. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *v) {
    if (!s[0] || strlen(s) > 20) return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno == ERANGE || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

/* A finite float > 0, from the whole string. */
static int parse_eta(const char *s, float *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !(x > 0) || !isfinite((float)x)) return -1;
    *v = (float)x;
    return 0;
}

static int parse_policy(const char *s, atk_bss_policy *v) {
    for (int i = 0; policy_names[i]; i++)
        if (!strcmp(s, policy_names[i])) return *v = (atk_bss_policy)i, 0;
    return -1;
}

/* One option (known, with a value) into o; 0, or -1 after printing what is wrong. */
static int bss_opt(bss_opts *o, const char *name, const char *val, FILE *errf) {
    uint64_t u = 0;
    int bad = 0;
    const char *want = NULL;
    size_t i = 0;
    if (!strcmp(name, "data"))
        o->data = val;
    else if (!strcmp(name, "output"))
        o->output = val;
    else if (!strcmp(name, "range"))
        bad = exp_parse_range(val, &o->lo, &o->hi), o->has_range = 1, want = "LO,HI with LO < HI";
    else if (!strcmp(name, "eta"))
        bad = parse_eta(val, &o->spec.cfg.eta), want = "a number > 0";
    else if (!strcmp(name, "policy"))
        bad = parse_policy(val, &o->spec.cfg.policy), want = "sample, second, uniform or all";
    else {
        while (strcmp(name, int_opts[i].name))
            i++;
        bad = parse_u64(val, int_opts[i].lo, int_opts[i].hi, &u), want = int_opts[i].want;
        switch (bad ? -1 : (int)i) { /* int_opts order */
        case 0:
            o->spec.samples = (size_t)u;
            break;
        case 1:
            o->spec.cfg.seed = u;
            break;
        case 2:
            o->spec.cfg.steps = (int)u;
            break;
        case 3:
            o->spec.cfg.max_base = (size_t)u;
            break;
        case 4:
            o->batch = (size_t)u;
            break;
        case 5:
            o->spec.grid = (size_t)u;
            break;
        case 6:
            o->threads = (int)u;
            break;
        default:
            break;
        }
    }
    if (bad) fprintf(errf, "temper bss: --%s: '%s' is not %s\n", name, val, want);
    return bad ? -1 : 0;
}

/* argv -> o. 0, 1 when --help was printed, or -1 after printing a usage error. */
static int bss_parse(int argc, char **argv, bss_opts *o, FILE *out, FILE *errf) {
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && (!strcmp(a, "--help") || !strcmp(a, "-h"))) return fputs(usage_bss, out), 1;
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (o->model) return fprintf(errf, "temper bss: unexpected argument '%s'\n", a), -1;
            o->model = a;
            continue;
        }
        if (a[1] != '-') return fprintf(errf, "temper bss: unknown option '%s'\n", a), -1;
        char name[32];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len < sizeof name) memcpy(name, a + 2, len), name[len] = '\0';
        if (len >= sizeof name || !bss_opt_known(name))
            return fprintf(errf, "temper bss: unknown option '%s'\n", a), -1;
        if (!strcmp(name, "quiet")) {
            if (eq) return fprintf(errf, "temper bss: option --quiet takes no value\n"), -1;
            o->quiet = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!val) return fprintf(errf, "temper bss: option --%s needs a value\n", name), -1;
        if (bss_opt(o, name, val, errf)) return -1;
    }
    if (!o->model) return fprintf(errf, "temper bss: missing model file (MODEL.safetensors)\n"), -1;
    return 0;
}

/* The training set: --data/--range, else the model's metadata (as `temper eval`); the first --samples. */
static int bss_data_cfg(const bss_opts *o, const nn_model_meta *meta, nn_data_cfg *dc, nn_err *err) {
    *dc = nn_data_cfg_default();
    const char *name = o->data ? o->data : nn_model_meta_get(meta, EXP_META_DATA);
    const char *range = nn_model_meta_get(meta, EXP_META_RANGE);
    if (!name)
        return NN_FAIL(err, NN_E_INVAL, "%s: the model names no data set (%s metadata): give --data",
                       o->model, EXP_META_DATA);
    snprintf(dc->name, sizeof dc->name, "%s", name);
    if (o->has_range)
        dc->lo = o->lo, dc->hi = o->hi;
    else if (range && exp_parse_range(range, &dc->lo, &dc->hi) != 0)
        return NN_FAIL(err, NN_E_FORMAT, "%s: metadata %s = '%s' is not 'lo,hi': give --range", o->model,
                       EXP_META_RANGE, range);
    dc->subset = o->spec.samples;
    dc->test_subset = 1; /* nn_data_load always reads the test file too; one sample skips converting it */
    return nn_data_cfg_validate(dc, err);
}

/* results/bss-<the model file's name without its extension; for .../NAME/model.safetensors, NAME>, or
 * --output. */
static int bss_dir(const bss_opts *o, char *buf, size_t cap, nn_err *err) {
    const char *base = strrchr(o->model, '/'), *dot;
    base = base ? base + 1 : o->model;
    dot = strrchr(base, '.');
    int len = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    if (len == 5 && !strncmp(base, "model", 5) && base - o->model >= 2) { /* the folder's name instead */
        const char *end = base - 1, *start = end;
        while (start > o->model && start[-1] != '/') start--;
        if (end > start) base = start, len = (int)(end - start);
    }
    int n =
        o->output ? snprintf(buf, cap, "%s", o->output) : snprintf(buf, cap, "results/bss-%.*s", len, base);
    if (n < 0 || (size_t)n >= cap) return NN_FAIL(err, NN_E_INVAL, "output folder name too long");
    return NN_OK;
}

static void bss_print(const bss_set *s, const char *dir, FILE *out) {
    char dur[32];
    exp_fmt_duration(dur, sizeof dur, s->seconds);
    fprintf(out,
            "%zu BSS from %zu base samples (of %zu training samples): %.1f%% crossed, mean %.2f steps, "
            "mean L2 %.4f, %s\n",
            s->m, s->n_base, s->n_seen, 100.0 * (double)s->crossed / (double)s->m,
            s->steps_sum / (double)s->m, s->l2_sum / (double)s->m, dur);
    fprintf(out, "results in %s/\n", dir);
    fflush(out);
}

static int bss_run(bss_opts *o, FILE *out, FILE *progress, nn_err *err) {
    nn_net *net = NULL;
    nn_model_meta meta;
    nn_dataset train = {0}, test = {0};
    nn_data_cfg dc;
    bss_set s;
    char dir[4096];
    memset(&meta, 0, sizeof meta);
    memset(&s, 0, sizeof s);
    exp_threads_set(o->threads);
    nn_err blas = {0};
    if (nn_sys_check_blas(&blas)) fprintf(out, "temper: warning: %s\n", blas.msg);
    int rc = bss_dir(o, dir, sizeof dir, err);
    if (!rc) rc = nn_model_load(&net, &meta, o->model, err);
    if (!rc) rc = bss_data_cfg(o, &meta, &dc, err);
    if (!rc) {
        o->spec.cfg.lo = dc.lo, o->spec.cfg.hi = dc.hi;
        rc = atk_bss_cfg_validate(&o->spec.cfg, err);
    }
    if (!rc) rc = nn_net_reserve(net, o->batch, err);
    if (!rc) rc = nn_data_load(&dc, &train, NULL, &test, err);
    if (!rc) {
        fprintf(out, "model %s (trained at T=%g), %s training set, first %zu samples, range [%g, %g]\n",
                o->model, (double)net->temperature, dc.name, train.n, (double)dc.lo, (double)dc.hi);
        fflush(out);
        rc = bss_generate(net, &train, &o->spec, dir, o->model, dc.name, o->quiet ? NULL : progress, &s, err);
    }
    if (!rc) bss_print(&s, dir, out);
    bss_set_free(&s);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    nn_net_destroy(net);
    return rc;
}

int exp_bss_cmd(int argc, char **argv, FILE *out, FILE *errf) {
    bss_opts o;
    memset(&o, 0, sizeof o);
    o.batch = 128;
    o.spec.enabled = 1;
    o.spec.samples = 1000;
    o.spec.cfg = atk_bss_cfg_default();
    o.spec.cfg.max_base = 0; /* every correct sample */
    o.spec.grid = 16;
    int rc = bss_parse(argc, argv, &o, out, errf);
    if (rc > 0) return EXP_EXIT_OK;
    if (rc < 0) {
        fprintf(errf, "Try 'temper bss --help'.\n");
        return EXP_EXIT_USAGE;
    }
    nn_err err = {0};
    if ((rc = bss_run(&o, out, errf, &err)) == NN_OK) return EXP_EXIT_OK;
    fprintf(errf, "temper: error: %s\n", err.msg[0] ? err.msg : nn_err_name(rc));
    return EXP_EXIT_ERROR;
}
