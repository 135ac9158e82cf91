/* exp_run.c - `temper run`: experiment file -> trained model, test metrics and a results folder. */
#include "exp_run.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exp_bss.h"
#include "exp_config.h"
#include "exp_distill.h"
#include "exp_evaluate.h"
#include "exp_sweep.h"
#include "exp_json.h"
#include "exp_progress.h"
#include "nn_io.h"
#include "nn_json.h"
#include "nn_model.h"
#include "nn_sys.h"


/* The rng stream of the initial weights ("init"), apart from the per-epoch streams nn_train uses. */
#define RUN_INIT_STREAM 0x696e6974u

/* One epoch-end record for train_log.csv. */
typedef struct run_row {
    nn_progress p;
    double seconds; /* wall time of the epoch, validation included */
} run_row;

/* Everything one run holds; released by run_free. */
typedef struct run_ctx {
    const exp_run_opts *o;
    exp_config cfg;
    const char *text; /* the experiment file as read (copied to experiment.yaml), borrowed */
    size_t text_len;
    nn_dataset train, val, test;
    nn_net *net;
    exp_progress prog;
    run_row *rows; /* cfg.train.epochs entries */
    size_t n_rows;
    double t_last, train_s;
    nn_eval ev;
    nn_sys_info sys;
    exp_distill_out dist; /* with a defense: the teacher and its figures */
    atk_boundary_summary bsum; /* teacher-student boundary similarity (when bsum_s >= 0) */
    double bsum_s;             /* its wall time; -1: not measured */
    nn_jbuf bcsv;              /* its per-pair table (boundary.csv) */
    char key[65];              /* the run key (exp_run_key), recorded in metrics.json */
} run_ctx;

void exp_threads_set(int n) {
    if (n > 0) omp_set_num_threads(n); /* OpenBLAS's OpenMP build follows omp_get_max_threads() per call */
}

const char *exp_blas_mode_name(int mode) {
    return mode == 2 ? "openmp" : mode == 1 ? "pthreads" : "sequential";
}


int exp_mkdir_p(const char *dir, nn_err *err) {
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) return NN_FAIL(err, NN_E_INVAL, "output folder name empty or too long");
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char keep = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return NN_FAIL(err, NN_E_IO, "%s: cannot create folder: %s", path, strerror(errno));
        path[i] = keep;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return NN_FAIL(err, NN_E_IO, "%s: exists and is not a folder", dir);
    return NN_OK;
}

/* buf <- dir/name. */
int exp_path_join(char *buf, size_t cap, const char *dir, const char *name, nn_err *err) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return NN_FAIL(err, NN_E_INVAL, "%s/%s: path too long", dir, name);
    return NN_OK;
}

/* Progress callback: keeps epoch rows for train_log.csv, then shows progress. */
static void run_cb(void *ctx, const nn_progress *ev) {
    run_ctx *r = ctx;
    if (ev->event == NN_PROGRESS_EPOCH && r->n_rows < r->cfg.train.epochs) {
        double now = exp_now();
        r->rows[r->n_rows].p = *ev;
        r->rows[r->n_rows].seconds = now - r->t_last;
        r->n_rows++;
        r->t_last = now;
    }
    exp_progress_cb(&r->prog, ev);
}

/* Reads and parses the experiment, applies the command-line overrides, checks BLAS, prepares the folder. */
/* Reads and parses the experiment file and applies the command-line overrides. */
static int run_load_config(const exp_run_opts *o, char **text, size_t *len, exp_config *cfg, nn_err *err) {
    int rc = nn_io_read_all(o->file, text, len, err);
    if (rc) return rc;
    if ((rc = exp_config_parse(*text, *len, o->file, cfg, err))) return rc;
    if (o->output) snprintf(cfg->output, sizeof cfg->output, "%s", o->output);
    if (o->threads > 0) cfg->threads = o->threads;
    if (o->epochs > 0) cfg->train.epochs = o->epochs;
    if (o->epochs > 0 && !cfg->teacher.has_train) cfg->teacher.train.epochs = o->epochs;
    exp_defense_finish(cfg);
    return NN_OK;
}

/* Checks BLAS, sets the threads, prepares the folder and the epoch records. */
static int run_prepare(run_ctx *r, FILE *progress, nn_err *err) {
    const exp_run_opts *o = r->o;
    int rc;
    nn_err blas = {0};
    if (nn_sys_check_blas(&blas)) {
        if (!o->allow_any_blas) return NN_FAIL(err, blas.code, "%s", blas.msg);
        if (progress) fprintf(progress, "temper: warning: %s\n", blas.msg);
    }
    exp_threads_set(r->cfg.threads);
    nn_sys_info_get(&r->sys);
    if ((rc = exp_mkdir_p(r->cfg.output, err))) return rc;
    r->rows = calloc(r->cfg.train.epochs, sizeof *r->rows);
    if (!r->rows) return NN_FAIL(err, NN_E_NOMEM, "out of memory for %zu epoch records", r->cfg.train.epochs);
    return NN_OK;
}

/* model_file: the saved model instead of training one, evaluated on the test set. */
static int run_load(run_ctx *r, nn_err *err) {
    nn_model_meta meta;
    memset(&meta, 0, sizeof meta);
    int rc = nn_model_load(&r->net, &meta, r->cfg.model_file, err);
    if (rc) return rc;
    const char *range = nn_model_meta_get(&meta, EXP_META_RANGE);
    float lo, hi;
    if (range && exp_parse_range(range, &lo, &hi) == 0 && (lo != r->cfg.data.lo || hi != r->cfg.data.hi))
        return NN_FAIL(err, NN_E_INVAL, "%s: data.range [%g, %g] differs from the range %s was trained on [%g, %g]",
                       r->o->file, (double)r->cfg.data.lo, (double)r->cfg.data.hi, r->cfg.model_file, (double)lo,
                       (double)hi);
    if (r->net->n_in != nn_shape_size(r->test.shape) || r->net->n_classes != r->test.n_classes)
        return NN_FAIL(err, NN_E_SHAPE, "%s: model_file: the model takes %zu inputs and gives %zu classes; %s has %zu and %zu",
                       r->o->file, r->net->n_in, r->net->n_classes, r->cfg.data.name, nn_shape_size(r->test.shape),
                       r->test.n_classes);
    return nn_evaluate(r->net, &r->test, 256, NULL, &r->ev, err);
}

/* Loads the data, builds and initialises the net, trains, evaluates on the test set. */
static int run_train(run_ctx *r, FILE *progress, nn_err *err) {
    exp_config *c = &r->cfg;
    int rc = nn_data_load(&c->data, &r->train, c->data.val_size ? &r->val : NULL, &r->test, err);
    if (rc) return rc;
    if (c->model_file[0]) return run_load(r, err);
    if ((rc = nn_net_create(&r->net, r->train.shape, c->layers, c->n_layers, err))) return rc;
    nn_rng rng;
    nn_rng_seed_stream(&rng, c->train.seed, RUN_INIT_STREAM);
    nn_net_init(r->net, &rng);
    exp_progress_init(&r->prog, progress, r->o->quiet);
    double t0 = exp_now();
    r->t_last = t0;
    const nn_dataset *val = r->val.n ? &r->val : NULL;
    if (exp_config_has_teacher(c)) {
        if (progress && !r->o->quiet)
            fprintf(progress, "teacher: %s\n", c->teacher.model_file[0] ? c->teacher.model_file
                                                : c->teacher.n_ensemble ? "an ensemble" : "training");
        rc = exp_distill_run(c, &r->train, val, &r->test, r->net, run_cb, r, exp_progress_cb, &r->prog, &r->dist, err);
    } else {
        rc = nn_train(r->net, &r->train, val, &c->train, run_cb, r, err);
    }
    r->train_s = exp_now() - t0 - r->dist.teacher_s; /* the student's training */
    exp_progress_end(&r->prog);
    if (rc) return rc;
    return nn_evaluate(r->net, &r->test, c->train.batch_size, NULL, &r->ev, err);
}

/* train_log.csv: one row per epoch; missing validation values are empty fields. */
static int write_log(const run_ctx *r, const char *path, nn_err *err) {
    nn_jbuf b = {0};
    nn_jbuf_puts(&b, "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds,samples_per_s\n");
    for (size_t i = 0; i < r->n_rows; i++) {
        const nn_progress *p = &r->rows[i].p;
        nn_jbuf_printf(&b, "%zu,%.9g,%.9g,%.9g,", p->epoch, p->lr, p->loss, p->acc);
        if (isfinite(p->val_loss))
            nn_jbuf_printf(&b, "%.9g,%.9g,", p->val_loss, p->val_acc);
        else
            nn_jbuf_puts(&b, ",,");
        nn_jbuf_printf(&b, "%.3f,%.1f\n", r->rows[i].seconds, p->samples_per_s);
    }
    int rc = b.oom ? NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path)
                   : nn_io_write_atomic(path, b.p, b.len, err);
    nn_jbuf_free(&b);
    return rc;
}

static void json_size_array(exp_json *j, const char *key, const size_t *v, size_t n) {
    exp_json_key(j, key);
    exp_json_array_begin(j);
    for (size_t i = 0; i < n; i++)
        exp_json_uint(j, v[i]);
    exp_json_array_end(j);
}

/* The metrics members about the run's environment: seed, threads, BLAS, version, commit. */
static void json_environment(exp_json *j, const run_ctx *r) {
    exp_json_kv_uint(j, "seed", r->cfg.train.seed);
    exp_json_kv_uint(j, "threads", (unsigned long long)r->sys.threads);
    exp_json_key(j, "blas");
    exp_json_object_begin(j);
    exp_json_kv_string(j, "config", r->sys.blas_config);
    exp_json_kv_uint(j, "threads", (unsigned long long)r->sys.blas_threads);
    exp_json_kv_uint(j, "parallel", (unsigned long long)r->sys.blas_parallel);
    exp_json_kv_string(j, "parallel_mode", exp_blas_mode_name(r->sys.blas_parallel));
    exp_json_object_end(j);
    exp_json_kv_string(j, "conv_gemm", r->sys.gemm_avx512 ? "avx512" : "cblas");
    exp_json_kv_string(j, "temper_version", TEMPER_VERSION);
    exp_json_kv_string(j, "git_commit", TEMPER_GIT);
    /* The commit is taken when CMake configures the build; later edits are not reflected in it. */
    exp_json_kv_string(j, "git_commit_note",
                       "commit at build configuration; uncommitted changes not detected");
}

/* The defense's settings and the teacher's figures (each when there is one). */
static void json_defense(exp_json *j, const run_ctx *r) {
    const exp_defense *d = &r->cfg.defense;
    static const char *const kinds[] = {"none", "distillation", "kd", "bss", "ddgsd"};
    if (d->kind) {
        exp_json_key(j, "defense");
        exp_json_object_begin(j);
        exp_json_kv_string(j, "type", kinds[d->kind]);
        exp_json_kv_number(j, "temperature", d->kd.temperature);
        if (d->kind == EXP_DEFENSE_DISTILLATION || d->kind == EXP_DEFENSE_KD) {
            exp_json_kv_number(j, "alpha", d->kd.alpha);
            exp_json_key(j, "t2");
            exp_json_bool(j, d->kd.t2);
            exp_json_key(j, "common_init");
            exp_json_bool(j, d->common_init);
            exp_json_kv_string(j, "soft_labels", r->dist.soft_on_the_fly ? "per batch (augmented inputs)" : "precomputed");
        } else if (d->kind == EXP_DEFENSE_BSS) {
            static const char *const pol[] = {"sample", "second", "uniform", "all"};
            exp_json_kv_number(j, "ratio", d->bss.ratio_hi);
            exp_json_kv_number(j, "attack_ratio", d->bss.attack_hi);
            exp_json_kv_number(j, "attack_speed", d->bss.attack_speed);
            exp_json_kv_number(j, "eta", d->bss.bss.eta);
            exp_json_kv_uint(j, "steps", (size_t)d->bss.bss.steps);
            exp_json_kv_uint(j, "max_base", d->bss.bss.max_base);
            exp_json_kv_string(j, "policy", pol[d->bss.bss.policy]);
            exp_json_kv_string(j, "bss", d->pool[0] ? d->pool : "generated per batch");
            exp_json_kv_uint(j, "bss_made", r->dist.n_bss);
            exp_json_kv_number(j, "bss_crossed", r->dist.n_bss ? (double)r->dist.n_bss_crossed / (double)r->dist.n_bss : NAN);
            exp_json_kv_number(j, "bss_mean_l2", r->dist.n_bss ? r->dist.bss_l2 / (double)r->dist.n_bss : NAN);
        } else {
            exp_json_kv_number(j, "lambda", d->ddgsd.lambda);
            exp_json_kv_number(j, "mu", d->ddgsd.mu);
            exp_json_kv_string(j, "kernel", d->ddgsd.kernel == DEF_MMD_GAUSS ? "gauss" : "linear");
            exp_json_key(j, "views");
            exp_json_array_begin(j);
            for (int v = 0; v < 2; v++) {
                exp_json_object_begin(j);
                exp_json_kv_uint(j, "shift", (size_t)d->ddgsd.view[v].shift);
                exp_json_kv_number(j, "flip", d->ddgsd.view[v].flip);
                exp_json_kv_number(j, "noise", d->ddgsd.view[v].noise);
                exp_json_object_end(j);
            }
            exp_json_array_end(j);
        }
        exp_json_kv_uint(j, "bias_adjustments", d->n_bias);
        exp_json_object_end(j);
    }
    if (!r->dist.n_teachers) return;
    exp_json_key(j, "teacher");
    exp_json_object_begin(j);
    const exp_teacher *t = &r->cfg.teacher;
    if (t->n_ensemble) {
        exp_json_key(j, "ensemble");
        exp_json_array_begin(j);
        for (size_t i = 0; i < t->n_ensemble; i++) exp_json_string(j, t->ensemble[i]);
        exp_json_array_end(j);
    } else {
        exp_json_kv_string(j, "model_file", t->model_file[0] ? t->model_file : "teacher/model.safetensors");
    }
    exp_json_kv_number(j, "test_accuracy", r->dist.teacher_ev.accuracy);
    exp_json_kv_uint(j, "test_errors", r->dist.teacher_ev.errors);
    exp_json_kv_number(j, "train_seconds", r->dist.teacher_s);
    exp_json_kv_number(j, "temperature", r->dist.teacher ? r->dist.teacher->temperature : NAN);
    exp_json_object_end(j);
    exp_json_kv_number(j, "teacher_student_agreement", r->dist.agreement);
}

/* MagSim/AngSim of teacher and student on the first boundary.samples test samples (a single teacher only). */
static int run_boundary(run_ctx *r, FILE *progress, nn_err *err) {
    const exp_boundary *b = &r->cfg.boundary;
    if (!r->dist.teacher || !b->samples || !r->test.n) return NN_OK;
    size_t n = b->samples < r->test.n ? b->samples : r->test.n;
    size_t m = atk_boundary_count(&b->cfg, n, r->net->n_classes);
    atk_boundary_sample *s = malloc(m * sizeof *s);
    if (!s) return NN_FAIL(err, NN_E_NOMEM, "out of memory for %zu boundary pairs", m);
    if (progress && !r->o->quiet) fprintf(progress, "boundary similarity on %zu test samples\n", n);
    double t0 = exp_now();
    int rc = atk_boundary_run(r->dist.teacher, r->net, &b->cfg, r->test.x, r->test.y, n, s, NULL, NULL, &r->bsum, err);
    if (!rc) {
        r->bsum_s = exp_now() - t0;
        nn_jbuf *c = &r->bcsv;
        nn_jbuf_puts(c, "sample,label,target,used,dist_teacher,dist_student,magsim,cos,dist_student_along_teacher\n");
        for (size_t i = 0; i < m; i++)
            nn_jbuf_printf(c, "%zu,%d,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g\n", r->test.id[s[i].sample], s[i].label, s[i].target,
                           s[i].used, s[i].dist_t, s[i].dist_s, s[i].magsim, s[i].cos, s[i].dist_s_along_t);
        if (c->oom) rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    }
    free(s);
    return rc;
}

/* bss: BSS from the run's model on the training set into <output>/bss/. */
static int run_bss(run_ctx *r, FILE *progress, nn_err *err) {
    char dir[4096];
    int rc = exp_path_join(dir, sizeof dir, r->cfg.output, "bss", err);
    if (!rc) rc = nn_net_reserve(r->net, r->cfg.train.batch_size, err);
    const char *desc = r->cfg.model_file[0] ? r->cfg.model_file : "model.safetensors (trained by this run)";
    if (!rc) rc = exp_bss_generate(r->net, &r->train, &r->cfg.bss, dir, desc, r->cfg.data.name,
                                   r->o->quiet ? NULL : progress, err);
    return rc;
}

/* metrics.json's "boundary" object. */
static void json_boundary(exp_json *j, const run_ctx *r) {
    if (r->bsum_s < 0) return;
    const atk_boundary_summary *b = &r->bsum;
    exp_json_key(j, "boundary");
    exp_json_object_begin(j);
    exp_json_kv_string(j, "targets", r->cfg.boundary.cfg.targets == ATK_BOUNDARY_ALL ? "all" : "second");
    exp_json_kv_uint(j, "pairs", b->n_pairs);
    exp_json_kv_uint(j, "correct", b->n_correct);
    exp_json_kv_uint(j, "used", b->n_used);
    exp_json_kv_number(j, "magsim", b->magsim);
    exp_json_kv_number(j, "angsim", b->angsim);
    exp_json_kv_number(j, "mean_dist_teacher", b->mean_dist_t);
    exp_json_kv_number(j, "mean_dist_student", b->mean_dist_s);
    exp_json_kv_number(j, "mean_ratio_along_teacher", b->mean_ratio_along_t);
    exp_json_kv_number(j, "magsim_along_teacher", b->magsim_along_t);
    exp_json_kv_uint(j, "along_teacher_missed", b->n_along_t_missed);
    exp_json_kv_number(j, "seconds", r->bsum_s);
    exp_json_object_end(j);
}

static int write_metrics(const run_ctx *r, const char *path, nn_err *err) {
    const nn_eval *ev = &r->ev;
    const size_t k = r->net->n_classes < NN_MAX_CLASSES ? r->net->n_classes : NN_MAX_CLASSES;
    const run_row *last = r->n_rows ? &r->rows[r->n_rows - 1] : NULL;
    double n_seen = (double)r->train.n * (double)r->n_rows;
    exp_json j;
    exp_json_init(&j);
    exp_json_object_begin(&j);
    exp_json_kv_string(&j, "experiment", r->cfg.name);
    exp_json_kv_string(&j, "experiment_file", r->o->file);
    exp_json_kv_string(&j, "run_key", r->key);
    if (r->cfg.model_file[0]) exp_json_kv_string(&j, "model_file", r->cfg.model_file);
    exp_json_kv_string(&j, "data", r->cfg.data.name);
    exp_json_key(&j, "range");
    exp_json_array_begin(&j);
    exp_json_number(&j, r->cfg.data.lo);
    exp_json_number(&j, r->cfg.data.hi);
    exp_json_array_end(&j);
    exp_json_kv_uint(&j, "train_samples", r->train.n);
    exp_json_kv_uint(&j, "val_samples", r->val.n);
    exp_json_kv_uint(&j, "test_samples", ev->n);
    exp_json_kv_uint(&j, "params", r->net->n_params);
    exp_json_kv_uint(&j, "epochs", r->n_rows);
    exp_json_kv_number(&j, "test_accuracy", ev->accuracy);
    exp_json_kv_uint(&j, "test_errors", ev->errors);
    exp_json_kv_number(&j, "test_loss", ev->loss);
    json_size_array(&j, "class_errors", ev->class_errors, k);
    json_size_array(&j, "class_totals", ev->class_total, k);
    exp_json_kv_number(&j, "val_accuracy", last ? last->p.val_acc : NAN); /* null without validation */
    exp_json_kv_number(&j, "val_loss", last ? last->p.val_loss : NAN);
    exp_json_kv_number(&j, "train_loss", last ? last->p.loss : NAN);
    exp_json_kv_number(&j, "train_accuracy", last ? last->p.acc : NAN);
    exp_json_kv_number(&j, "train_seconds", r->train_s);
    exp_json_kv_number(&j, "eval_seconds", ev->seconds);
    /* Training samples over the whole training wall time (per-epoch validation passes included). */
    exp_json_kv_number(&j, "train_samples_per_s", r->train_s > 0 ? n_seen / r->train_s : NAN);
    json_defense(&j, r);
    json_boundary(&j, r);
    json_environment(&j, r);
    exp_json_object_end(&j);
    int rc = exp_json_finish(&j, err);
    if (!rc) rc = nn_io_write_atomic(path, j.b.p, j.b.len, err);
    exp_json_free(&j);
    return rc;
}

/* Model with the data metadata `eval` reads back. */
static int write_model(const run_ctx *r, const nn_net *net, const char *path, nn_err *err) {
    nn_model_meta m;
    memset(&m, 0, sizeof m);
    char range[64];
    snprintf(range, sizeof range, "%.9g,%.9g", (double)r->cfg.data.lo, (double)r->cfg.data.hi);
    int rc = nn_model_meta_set(&m, EXP_META_DATA, r->cfg.data.name, err);
    if (!rc) rc = nn_model_meta_set(&m, EXP_META_RANGE, range, err);
    if (!rc) rc = nn_model_meta_set(&m, EXP_META_EXPERIMENT, r->cfg.name, err);
    if (!rc) rc = nn_model_save(net, &m, path, err);
    return rc;
}

/* A teacher trained by the run, into <output>/teacher/model.safetensors. */
static int write_teacher(const run_ctx *r, nn_err *err) {
    char dir[4096], path[4096];
    int rc = exp_path_join(dir, sizeof dir, r->cfg.output, "teacher", err);
    if (!rc) rc = exp_mkdir_p(dir, err);
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "model.safetensors", err);
    if (!rc) rc = write_model(r, r->dist.teacher, path, err);
    return rc;
}

/* A previous run's results stay whole until this run has trained and tested; before its first file is written
 * (bss/ included), the previous metrics.json and attacks.json files go, so a mix of old and new files never
 * looks finished, whatever the run keys (attacks.json: the attacks run after metrics.json is written). */
static int run_retire(const run_ctx *r, nn_err *err) {
    static const char *const old[] = {"metrics.json", "attacks/attacks.json", "teacher/attacks/attacks.json"};
    char path[4096];
    int rc = NN_OK;
    for (size_t i = 0; i < 3 && !rc; i++) {
        rc = exp_path_join(path, sizeof path, r->cfg.output, old[i], err);
        if (!rc && remove(path) != 0 && errno != ENOENT)
            rc = NN_FAIL(err, NN_E_IO, "%s: cannot remove the previous run's file: %s", path, strerror(errno));
    }
    return rc;
}

/* Every output file, metrics.json last (after run_retire). */
static int run_write(const run_ctx *r, nn_err *err) {
    char path[4096];
    const char *dir = r->cfg.output;
    int rc = NN_OK;
    int trained = !r->cfg.model_file[0];
    if (!rc && trained) rc = exp_path_join(path, sizeof path, dir, "model.safetensors", err);
    if (!rc && trained) rc = write_model(r, r->net, path, err);
    if (!rc && r->dist.teacher_trained) rc = write_teacher(r, err);
    if (!rc && r->bsum_s >= 0) rc = exp_path_join(path, sizeof path, dir, "boundary.csv", err);
    if (!rc && r->bsum_s >= 0) rc = nn_io_write_atomic(path, r->bcsv.p, r->bcsv.len, err);
    if (!rc && trained) rc = exp_path_join(path, sizeof path, dir, "train_log.csv", err);
    if (!rc && trained) rc = write_log(r, path, err);
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "experiment.yaml", err);
    if (!rc) rc = nn_io_write_atomic(path, r->text, r->text_len, err);
    if (!rc) rc = exp_path_join(path, sizeof path, dir, "metrics.json", err);
    if (!rc) rc = write_metrics(r, path, err);
    return rc;
}

static void run_summary(const run_ctx *r, FILE *out) {
    char n[32], errs[32], wall[32], rate[32], ev_s[32];
    exp_fmt_count(n, sizeof n, (double)r->ev.n);
    exp_fmt_count(errs, sizeof errs, (double)r->ev.errors);
    exp_fmt_duration(wall, sizeof wall, r->train_s);
    exp_fmt_duration(ev_s, sizeof ev_s, r->ev.seconds);
    exp_fmt_count(rate, sizeof rate,
                  r->train_s > 0 ? (double)r->train.n * (double)r->n_rows / r->train_s : 0);
    fprintf(out, "%s: test accuracy %.2f%% (%s errors of %s)\n", r->cfg.name, 100.0 * r->ev.accuracy, errs,
            n);
    if (r->cfg.model_file[0])
        fprintf(out, "model %s (no training), evaluation %s\n", r->cfg.model_file, ev_s);
    else
        fprintf(out, "training %s (%s samples/s, %zu epoch%s, %d thread%s), evaluation %s\n", wall, rate,
                r->n_rows, r->n_rows == 1 ? "" : "s", r->sys.threads, r->sys.threads == 1 ? "" : "s", ev_s);
    if (r->dist.n_teachers)
        fprintf(out, "teacher: test accuracy %.2f%% (%zu errors), teacher-student agreement %.2f%%\n",
                100.0 * r->dist.teacher_ev.accuracy, r->dist.teacher_ev.errors, 100.0 * r->dist.agreement);
    fprintf(out, "results in %s/\n", r->cfg.output);
    fflush(out);
}

/* The experiment's attacks on the trained model, into <output>/attacks (after the model and metrics are
 * written: a failing attack never costs the trained model). */
static int run_attacks(run_ctx *r, FILE *out, FILE *progress, nn_err *err) {
    char dir[4096];
    int rc = exp_path_join(dir, sizeof dir, r->cfg.output, "attacks", err);
    if (!rc) rc = exp_attacks_run(r->net, &r->test, r->cfg.attacks, r->cfg.n_attacks, dir, r->o->quiet, out, progress,
                                  err);
    if (!rc && out) fprintf(out, "attack results in %s/\n", dir);
    /* the teacher faces the same attacks: the defense's effect is the difference */
    int teacher = exp_config_attacks_teacher(&r->cfg);
    if (!rc && teacher) rc = exp_path_join(dir, sizeof dir, r->cfg.output, "teacher/attacks", err);
    if (!rc && teacher) {
        if (out) fprintf(out, "the same attacks on the teacher:\n");
        rc = exp_attacks_run(r->dist.teacher, &r->test, r->cfg.attacks, r->cfg.n_attacks, dir, r->o->quiet, out,
                             progress, err);
    }
    return rc;
}

static void run_free(run_ctx *r) {
    free(r->rows);
    nn_dataset_free(&r->train);
    nn_dataset_free(&r->val);
    nn_dataset_free(&r->test);
    nn_net_destroy(r->net);
    exp_distill_free(&r->dist);
    nn_jbuf_free(&r->bcsv);
}

/* The batch evaluation of cfg (BLAS check and threads as for training), models (may be NULL) first. */
static int run_evaluate(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg,
                        const exp_evaluate_model *models, size_t n_models, FILE *out, FILE *progress, nn_err *err) {
    nn_err blas = {0};
    if (nn_sys_check_blas(&blas)) {
        if (!o->allow_any_blas) return NN_FAIL(err, blas.code, "%s", blas.msg);
        if (progress) fprintf(progress, "temper: warning: %s\n", blas.msg);
    }
    exp_threads_set(cfg->threads);
    exp_evaluate_opts eo = {.force = o->force, .quiet = o->quiet, .out = out, .progress = progress, .text = text,
                            .text_len = len, .models = models, .n_models = n_models};
    return exp_evaluate_run(cfg, &eo, NULL, err);
}

/* One run (no sweep): reused when its folder holds the run of the same key, else computed. */
static int run_single(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg, FILE *out,
                      FILE *progress, nn_err *err) {
    char key[65];
    int rc = exp_run_key(cfg, NULL, key, err);
    if (!rc && exp_run_reuse(o, cfg, key, NULL, out, progress)) {
        if (out) fprintf(out, "metrics: %s/metrics.json\n", cfg->output);
        return NN_OK;
    }
    return rc ? rc : exp_run_config(o, text, len, cfg, key, out, progress, err);
}

/* Every run of cfg: a sweep (sweep: and/or variants:) or a single run. */
static int run_all(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg, FILE *out,
                   FILE *progress, nn_err *err) {
    return cfg->sweep.n_axes || cfg->n_variants ? exp_sweep_run(o, text, len, cfg, out, progress, err)
                                                : run_single(o, text, len, cfg, out, progress, err);
}

/* The models a training experiment produced, in the sweep's order: each run's model.safetensors, labelled by
 * its folder under cfg->output ("model" for a single run), then, when evaluate.teachers, the teacher the run
 * trained ("<label>/teacher"). m[2 * runs] receives *n models whose strings are malloc'd (models_free). */
static int run_models(const exp_config *cfg, exp_config *c, exp_evaluate_model *m, size_t *n, nn_err *err) {
    size_t runs = exp_sweep_count(cfg), olen = strlen(cfg->output);
    char path[4096], label[1024];
    int rc = NN_OK;
    *n = 0;
    for (size_t i = 0; i < runs && !rc; i++) {
        if ((rc = exp_sweep_point(cfg, i, c, NULL, NULL, NULL, 0, err))) break;
        const char *rel = c->output + olen + (c->output[olen] == '/'); /* "" for a single run */
        int teacher = cfg->evaluate.teachers && exp_config_has_teacher(c) && !c->teacher.model_file[0] &&
                      !c->teacher.n_ensemble; /* exp_distill.c trains it, run_write saves it in teacher/ */
        for (int t = 0; t <= teacher && !rc; t++) {
            const char *file = t ? "teacher/model.safetensors" : "model.safetensors";
            rc = exp_path_join(path, sizeof path, c->output, file, err);
            snprintf(label, sizeof label, "%s%s%s", rel, rel[0] && t ? "/" : "", t ? "teacher" : rel[0] ? "" : "model");
            exp_evaluate_model *e = &m[*n];
            if (!rc && (!(e->file = strdup(path)) || !(e->label = strdup(label)))) {
                free((char *)e->file);
                rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
            }
            if (!rc) (*n)++;
        }
    }
    return rc;
}

static void models_free(exp_evaluate_model *m, size_t n) {
    for (size_t i = 0; m && i < n; i++) {
        free((char *)m[i].file);
        free((char *)m[i].label);
    }
    free(m);
}

/* A training experiment with evaluate: its runs without attacks (trained or reused), then the batch evaluation
 * of their models (and teachers, evaluate.teachers) and of evaluate.models into <output>/evaluate/ with the
 * attacks: list. */
static int run_train_evaluate(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg, FILE *out,
                              FILE *progress, nn_err *err) {
    size_t runs = exp_sweep_count(cfg), n = 0;
    exp_config *rcfg = malloc(sizeof *rcfg), *ecfg = malloc(sizeof *ecfg);
    exp_evaluate_model *m = calloc(2 * runs, sizeof *m);
    int rc = rcfg && ecfg && m ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc) {
        *rcfg = *cfg;
        rcfg->n_attacks = 0; /* the attacks: list is the batch evaluation's: not in the runs, nor in their keys */
        rc = run_all(o, text, len, rcfg, out, progress, err);
    }
    if (!rc) rc = run_models(rcfg, ecfg, m, &n, err);
    if (!rc && cfg->evaluate.teachers && n == runs && progress)
        fprintf(progress, "temper: warning: evaluate.teachers: no run of %s trains a teacher\n", cfg->path);
    if (!rc) {
        *ecfg = *cfg;
        ecfg->evaluate.has_data = ecfg->evaluate.has_range = 0; /* every model's data and range: its metadata */
        rc = exp_path_join(ecfg->output, sizeof ecfg->output, cfg->output, "evaluate", err);
    }
    if (!rc && out)
        fprintf(out, "evaluating the %zu model%s of %s%s\n", n, n == 1 ? "" : "s", cfg->name,
                cfg->evaluate.n_models ? " and evaluate.models" : "");
    if (!rc) rc = run_evaluate(o, text, len, ecfg, m, n, out, progress, err);
    free(rcfg);
    free(ecfg);
    models_free(m, n);
    return rc;
}

int exp_run(const exp_run_opts *o, FILE *out, FILE *progress, nn_err *err) {
    char *text = NULL;
    size_t len = 0;
    exp_config *cfg = malloc(sizeof *cfg);
    int rc = cfg ? run_load_config(o, &text, &len, cfg, err) : NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (!rc && cfg->evaluate.enabled && !cfg->evaluate.trains && o->epochs)
        rc = NN_FAIL(err, NN_E_INVAL, "%s: --epochs does not apply to an evaluate: experiment (it trains nothing)",
                     o->file);
    else if (!rc && cfg->evaluate.enabled && !cfg->evaluate.trains)
        rc = run_evaluate(o, text, len, cfg, NULL, 0, out, progress, err);
    else if (!rc && cfg->evaluate.enabled)
        rc = run_train_evaluate(o, text, len, cfg, out, progress, err);
    else if (!rc)
        rc = run_all(o, text, len, cfg, out, progress, err);
    free(text);
    free(cfg);
    return rc;
}

int exp_run_config(const exp_run_opts *o, const char *text, size_t len, const exp_config *cfg, const char *key,
                   FILE *out, FILE *progress, nn_err *err) {
    run_ctx *r = calloc(1, sizeof *r);
    if (!r) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    r->o = o;
    r->text = text;
    r->text_len = len;
    r->cfg = *cfg;
    r->bsum_s = -1;
    int rc = key ? NN_OK : exp_run_key(cfg, NULL, r->key, err);
    if (key) snprintf(r->key, sizeof r->key, "%s", key);
    if (!rc) rc = run_prepare(r, progress, err);
    if (!rc) rc = run_train(r, progress, err);
    if (!rc) rc = run_boundary(r, progress, err);
    if (!rc) rc = run_retire(r, err);
    if (!rc && r->cfg.bss.enabled) rc = run_bss(r, progress, err);
    if (!rc) rc = run_write(r, err);
    if (!rc && out) run_summary(r, out);
    if (!rc && r->cfg.n_attacks) rc = run_attacks(r, out, progress, err);
    run_free(r);
    free(r);
    return rc;
}
