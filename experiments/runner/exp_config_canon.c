/* exp_config_canon.c - what identifies a run: the canonical text of its effective configuration, its run key
 * (SHA-256 over that text, the code version and the bytes of every file it reads), whether a results folder
 * already holds the run of a key, and the decision to reuse it.
 *
 * The text walks the same field tables the YAML parser maps keys with (exp_config*.c), so an ordinary new
 * key is covered without touching this file. A key that the section's kind does not accept (exp_field.bit not in
 * the kind's mask: a dense layer's kernel, a kd defense's eta) holds a default fixed by the kind and the code
 * version, so it is left out. A new custom key (EXP_F_CUSTOM / EXP_F_SKIP) has no generic
 * form and makes exp_config_canon fail until a hook below prints it (tests/test_yaml.c runs it on every
 * section). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exp_config.h"
#include "exp_run.h"
#include "exp_yaml.h"
#include "nn_io.h"
#include "nn_json.h"

/* Top-level keys that never change what a run computes: where it goes, how it is labelled, how many threads
 * (results do not depend on them), and the keys a sweep has already applied to the run's config. */
static const char *const top_omitted[] = {"name", "output", "threads", "sweep", "variants", "evaluate", NULL};

typedef struct canon canon;
/* Prints custom field f (key: its dotted name) of the struct at base. 0 done, -1 no canonical form. */
typedef int (*canon_hook)(canon *c, const char *key, const exp_field *f, const void *base);

struct canon {
    nn_jbuf b;
    const exp_config *cfg;
    char bad[256]; /* the first key without a canonical form */
};

static void line(canon *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void line(canon *c, const char *key, const char *fmt, ...) {
    char v[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    nn_jbuf_printf(&c->b, "%s=%s\n", key, v);
}

/* A float exactly (%.9g round-trips a float), -0 as 0. */
static void line_float(canon *c, const char *key, float v) { line(c, key, "%.9g", v == 0 ? 0.0 : (double)v); }

/* A string on one line: backslash, and bytes below 0x20, escaped. */
static void line_str(canon *c, const char *key, const char *s) {
    nn_jbuf_printf(&c->b, "%s=", key);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\\') nn_jbuf_puts(&c->b, "\\\\");
        else if (ch < 0x20) nn_jbuf_printf(&c->b, "\\x%02x", ch);
        else nn_jbuf_printf(&c->b, "%c", ch);
    }
    nn_jbuf_puts(&c->b, "\n");
}

static int walk(canon *c, const char *prefix, const exp_table *t, const void *base, unsigned mask, canon_hook hook,
                const char *const *omit);

/* One field of the table at base. */
static int walk_field(canon *c, const char *key, const exp_field *f, const void *base, canon_hook hook) {
    const char *p = (const char *)base + f->offset;
    int i;
    size_t z;
    uint64_t u;
    float fl;
    double d;
    switch (f->type) {
    case EXP_F_SIZE: memcpy(&z, p, sizeof z); line(c, key, "%zu", z); return 0;
    case EXP_F_U64: memcpy(&u, p, sizeof u); line(c, key, "%" PRIu64, u); return 0;
    case EXP_F_INT: memcpy(&i, p, sizeof i); line(c, key, "%d", i); return 0;
    case EXP_F_FLOAT: memcpy(&fl, p, sizeof fl); line_float(c, key, fl); return 0;
    case EXP_F_DOUBLE: memcpy(&d, p, sizeof d); line(c, key, "%.17g", d == 0 ? 0.0 : d); return 0;
    case EXP_F_BOOL: memcpy(&i, p, sizeof i); line(c, key, "%s", i ? "true" : "false"); return 0;
    case EXP_F_STRING: line_str(c, key, p); return 0;
    case EXP_F_ENUM: {
        memcpy(&i, p, sizeof i);
        const exp_choice *ch = f->choices;
        while (ch && ch->name && ch->value != i) ch++;
        if (ch && ch->name) line(c, key, "%s", ch->name);
        else line(c, key, "%d", i);
        return 0;
    }
    case EXP_F_MAP: return walk(c, key, f->sub, p, EXP_ALL_FIELDS, hook, NULL);
    default: break; /* EXP_F_CUSTOM, EXP_F_SKIP */
    }
    if (hook && hook(c, key, f, base) == 0) return 0;
    if (!c->bad[0]) snprintf(c->bad, sizeof c->bad, "%s", key);
    return -1;
}

/* The fields of table t at base that mask accepts, but those named in omit (NULL-terminated, or NULL). */
static int walk(canon *c, const char *prefix, const exp_table *t, const void *base, unsigned mask, canon_hook hook,
                const char *const *omit) {
    for (size_t i = 0; i < t->n; i++) {
        const exp_field *f = &t->fields[i];
        int skip = f->bit && !(mask & f->bit);
        for (const char *const *o = omit; o && *o && !skip; o++) skip = !strcmp(*o, f->key);
        if (skip) continue;
        char key[256];
        exp_yaml_key(key, sizeof key, prefix, f->key);
        if (walk_field(c, key, f, base, hook)) return -1;
    }
    return 0;
}

/* ---- the custom keys ---- */

/* Keys of the nested sections that any hook may meet: data.range, data.exclude_classes, schedule.milestones. */
static int hook_common(canon *c, const char *key, const exp_field *f, const void *base) {
    if (!strcmp(f->key, "range")) {
        const nn_data_cfg *d = base;
        nn_jbuf_printf(&c->b, "%s=[%.9g, %.9g]\n", key, (double)d->lo, (double)d->hi);
    } else if (!strcmp(f->key, "exclude_classes")) {
        const nn_data_cfg *d = base;
        nn_jbuf_printf(&c->b, "%s=[", key);
        for (unsigned k = 0, n = 0; k < 32; k++)
            if (d->exclude >> k & 1u) nn_jbuf_printf(&c->b, "%s%u", n++ ? ", " : "", k);
        nn_jbuf_puts(&c->b, "]\n");
    } else if (!strcmp(f->key, "milestones")) {
        const nn_optim_cfg *o = base;
        nn_jbuf_printf(&c->b, "%s=[", key);
        for (size_t k = 0; k < o->n_milestones; k++) nn_jbuf_printf(&c->b, "%s%zu", k ? ", " : "", o->milestones[k]);
        nn_jbuf_puts(&c->b, "]\n");
    } else {
        return -1;
    }
    return 0;
}

static int hook_layer(canon *c, const char *key, const exp_field *f, const void *base) {
    if (strcmp(f->key, "type")) return -1;
    line_str(c, key, ((const nn_layer_cfg *)base)->kind);
    return 0;
}

static int layers(canon *c, const char *key, const nn_layer_cfg *l, size_t n) {
    line(c, key, "%zu layers", n);
    for (size_t i = 0; i < n; i++) {
        char k[256];
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        const nn_layer_ops *ops = nn_layer_ops_find(l[i].kind);
        if (walk(c, k, exp_config_layer_table(), &l[i], ops ? ops->fields : EXP_ALL_FIELDS, hook_layer, NULL))
            return -1;
    }
    return 0;
}

static int hook_teacher(canon *c, const char *key, const exp_field *f, const void *base) {
    const exp_teacher *t = base;
    if (!strcmp(f->key, "ensemble")) {
        line(c, key, "%zu models", t->n_ensemble);
        for (size_t i = 0; i < t->n_ensemble; i++) {
            char k[256];
            snprintf(k, sizeof k, "%s[%zu]", key, i);
            line_str(c, k, t->ensemble[i]);
        }
        return 0;
    }
    int loaded = t->model_file[0] || t->n_ensemble; /* its model: and train: are unused copies of the student's */
    if (!strcmp(f->key, "model")) return loaded ? 0 : layers(c, key, t->layers, t->n_layers);
    if (!strcmp(f->key, "train"))
        return loaded ? 0 : walk(c, key, exp_config_train_table(), &t->train, EXP_ALL_FIELDS, hook_common, NULL);
    return hook_common(c, key, f, base);
}

static int hook_defense(canon *c, const char *key, const exp_field *f, const void *base) {
    const exp_defense *d = base;
    char k[256];
    if (!strcmp(f->key, "type")) {
        const exp_choice *ch = exp_config_defense_kinds();
        while (ch->name && ch->value != d->kind) ch++;
        line(c, key, "%s", ch->name ? ch->name : "none");
    } else if (!strcmp(f->key, "bias")) {
        line(c, key, "%zu adjustments", d->n_bias);
        for (size_t i = 0; i < d->n_bias; i++) {
            snprintf(k, sizeof k, "%s[%zu].class", key, i);
            line(c, k, "%d", d->bias_class[i]);
            snprintf(k, sizeof k, "%s[%zu].delta", key, i);
            line_float(c, k, d->bias_delta[i]);
        }
    } else if (!strcmp(f->key, "views")) {
        for (size_t i = 0; i < 2; i++) {
            snprintf(k, sizeof k, "%s[%zu]", key, i);
            if (walk(c, k, exp_config_view_table(), &d->ddgsd.view[i], EXP_ALL_FIELDS, NULL, NULL)) return -1;
        }
    } else {
        return hook_common(c, key, f, base);
    }
    return 0;
}

static int hook_attack(canon *c, const char *key, const exp_field *f, const void *base) {
    const exp_attack *a = base;
    if (!strcmp(f->key, "type")) {
        line(c, key, "%s", atk_name(&a->cfg));
    } else if (!strcmp(f->key, "eps")) {
        nn_jbuf_printf(&c->b, "%s=[", key);
        for (size_t i = 0; i < a->n_eps; i++) nn_jbuf_printf(&c->b, "%s%.9g", i ? ", " : "", (double)a->eps[i]);
        nn_jbuf_puts(&c->b, "]\n");
    } else {
        return hook_common(c, key, f, base);
    }
    return 0;
}

/* The experiment's own custom keys. The teacher only when the run has one (otherwise its fields are unused
 * copies); the defense is the run's own (a variant's, once the sweep applied it). */
static int hook_top(canon *c, const char *key, const exp_field *f, const void *base) {
    const exp_config *cfg = base;
    if (!strcmp(f->key, "model")) return layers(c, key, cfg->layers, cfg->n_layers);
    if (!strcmp(f->key, "teacher")) {
        int has = exp_config_has_teacher(cfg);
        line(c, key, "%s", has ? "yes" : "none");
        return has ? walk(c, key, exp_config_teacher_table(), &cfg->teacher, EXP_ALL_FIELDS, hook_teacher, NULL) : 0;
    }
    if (!strcmp(f->key, "defense")) {
        if (cfg->defense.kind == EXP_DEFENSE_NONE) {
            line(c, key, "none");
            return 0;
        }
        return walk(c, key, exp_config_defense_table(), &cfg->defense, exp_config_defense_mask(cfg->defense.kind),
                    hook_defense, NULL);
    }
    if (!strcmp(f->key, "attacks")) {
        line(c, key, "%zu attacks", cfg->n_attacks);
        for (size_t i = 0; i < cfg->n_attacks; i++) {
            char k[64];
            snprintf(k, sizeof k, "%s[%zu]", key, i);
            const exp_attack *a = &cfg->attacks[i];
            if (walk(c, k, exp_config_attack_table(), a, exp_config_attack_mask(a), hook_attack, NULL)) return -1;
        }
        return 0;
    }
    if (!strcmp(f->key, "bss")) {
        line(c, key, "%s", cfg->bss.enabled ? "yes" : "none");
        return cfg->bss.enabled ? walk(c, key, exp_config_bss_table(), &cfg->bss, EXP_ALL_FIELDS, NULL, NULL) : 0;
    }
    if (!strcmp(f->key, "boundary"))
        return walk(c, key, exp_config_boundary_table(), &cfg->boundary, EXP_ALL_FIELDS, NULL, NULL);
    return hook_common(c, key, f, base);
}

int exp_config_canon(const exp_config *cfg, char **text, nn_err *err) {
    canon c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    *text = NULL;
    int bad = walk(&c, "", exp_config_top_table(), cfg, EXP_ALL_FIELDS, hook_top, top_omitted);
    int rc = NN_OK;
    if (bad)
        rc = NN_FAIL(err, NN_E_INVAL, "%s: no canonical form for the key '%s' (exp_config_canon.c must print it)",
                     cfg->path, c.bad);
    else if (c.b.oom || !c.b.p)
        rc = NN_FAIL(err, NN_E_NOMEM, "out of memory");
    if (rc) nn_jbuf_free(&c.b);
    else *text = c.b.p;
    return rc;
}

/* ---- run keys ---- */

/* path <- <data dir>/<name>/<file>, or its .gz when only that exists (as nn_data_load finds them). */
static int data_file(const nn_data_cfg *d, const char *file, char *path, size_t cap, nn_err *err) {
    char dir[4096];
    struct stat st;
    nn_data_dir(d, dir, sizeof dir);
    int n = snprintf(path, cap, "%s/%s/%s", dir, d->name, file);
    if (n < 0 || (size_t)n + 4 >= cap) return NN_FAIL(err, NN_E_INVAL, "data path too long: %s/%s", dir, d->name);
    if (stat(path, &st) == 0) return NN_OK;
    strcat(path, ".gz");
    if (stat(path, &st) == 0) return NN_OK;
    return NN_FAIL(err, NN_E_IO, "%s/%s/%s(.gz) not found: run scripts/fetch_data.sh", dir, d->name, file);
}

/* The files a run reads besides the data: a model_file, its teacher's file(s), a BSS pool's arrays. */
static int key_models(exp_key *k, const exp_config *cfg, exp_hash_memo *memo, nn_err *err) {
    char path[4096];
    int rc = cfg->model_file[0] ? exp_key_add_file_hash(k, "model_file", cfg->model_file, memo, err) : NN_OK;
    const exp_teacher *t = &cfg->teacher;
    if (exp_config_has_teacher(cfg)) {
        if (!rc && t->model_file[0]) rc = exp_key_add_file_hash(k, "teacher.model_file", t->model_file, memo, err);
        for (size_t i = 0; i < t->n_ensemble && !rc; i++)
            rc = exp_key_add_file_hash(k, "teacher.ensemble", t->ensemble[i], memo, err);
    }
    static const char *const pool[] = {"samples.npy", "logits.npy"}; /* what exp_bss_pool_load reads */
    for (size_t i = 0; i < 2 && !rc && cfg->defense.kind == EXP_DEFENSE_BSS && cfg->defense.pool[0]; i++) {
        rc = exp_path_join(path, sizeof path, cfg->defense.pool, pool[i], err);
        if (!rc) rc = exp_key_add_file_hash(k, "defense.pool", path, memo, err);
    }
    return rc;
}

int exp_run_key(const exp_config *cfg, exp_hash_memo *memo, char hex[65], nn_err *err) {
    static const char *const files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char *text = NULL, path[4096];
    int rc = exp_config_canon(cfg, &text, err);
    if (rc) return rc;
    exp_key k;
    exp_key_init(&k);
    exp_key_add_str(&k, "format", "temper-run-key-1");
    exp_key_add_str(&k, "version", TEMPER_VERSION);
    exp_key_add_str(&k, "config", text);
    free(text);
    for (size_t i = 0; i < 4 && !rc; i++) {
        rc = data_file(&cfg->data, files[i], path, sizeof path, err);
        if (!rc) rc = exp_key_add_file_hash(&k, files[i], path, memo, err);
    }
    if (!rc) rc = key_models(&k, cfg, memo, err);
    if (!rc) exp_key_final(&k, hex);
    return rc;
}

exp_run_state exp_run_state_of(const char *dir, const exp_config *cfg, const char *key) {
    char p[4200], *text = NULL;
    size_t len = 0;
    struct stat st;
    nn_json doc = {0};
    snprintf(p, sizeof p, "%s/metrics.json", dir);
    if (nn_io_read_all(p, &text, &len, NULL) != 0) return EXP_RUN_NEW;
    exp_run_state s = EXP_RUN_NEW;
    if (nn_json_parse(&doc, text, len, NULL) == 0) {
        const nn_json_val *v = nn_json_get(&doc, nn_json_root(&doc), "run_key");
        s = !v || v->type != NN_JSON_STRING ? EXP_RUN_NO_KEY : strcmp(v->str, key) ? EXP_RUN_CHANGED : EXP_RUN_SAME;
    }
    nn_json_free(&doc);
    free(text);
    if (s == EXP_RUN_CHANGED || !cfg->n_attacks) return s;
    /* attacks.json comes after metrics.json (the teacher's last, with a defense): without it, unfinished */
    snprintf(p, sizeof p, "%s/%sattacks/attacks.json", dir, exp_config_attacks_teacher(cfg) ? "teacher/" : "");
    return stat(p, &st) == 0 ? s : EXP_RUN_NEW;
}

int exp_run_reuse(const exp_run_opts *o, const exp_config *cfg, const char *key, const char *what, FILE *out,
                  FILE *progress) {
    const char *dir = cfg->output;
    exp_run_state s = exp_run_state_of(dir, cfg, key);
    FILE *warn = progress ? progress : out;
    if (s == EXP_RUN_NEW) return 0;
    if (o->force) {
        if (out) fprintf(out, "%s: --force: recomputing\n", dir);
        return 0;
    }
    if (s == EXP_RUN_CHANGED) {
        if (out) fprintf(out, "%s: the experiment changed since it ran (run key differs): recomputing\n", dir);
        return 0;
    }
    if (s == EXP_RUN_NO_KEY && warn)
        fprintf(warn, "temper: warning: %s: no run key (older temper): reused as is; --force recomputes\n", dir);
    if (out && what) fprintf(out, "%s: finished earlier, reused (%s/)\n", what, dir);
    else if (out) fprintf(out, "%s: finished earlier, reused\n", dir);
    return 1;
}
