/* exp_config_defense.c - the teacher: and defense: sections of experiment files (schema in exp_config.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_config.h"
#include "exp_sweep.h"
#include "exp_yaml.h"

int exp_config_parse_layers(exp_yaml *y, yaml_node_t *v, const char *key, nn_layer_cfg *layers, size_t *n_out,
                            nn_err *err);
const exp_table *exp_config_train_table(void);

static int set_teacher_model(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_teacher *t = base;
    return exp_config_parse_layers(y, v, key, t->layers, &t->n_layers, err);
}

static int set_teacher_train(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_teacher *t = base;
    t->has_train = 1;
    return exp_yaml_apply(y, v, key, exp_config_train_table(), EXP_ALL_FIELDS, NULL, &t->train, err);
}

/* teacher.ensemble: a list of at least two model files. */
static int set_teacher_ensemble(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_teacher *t = base;
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list of model files, got %s", exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n < 2 || n > EXP_MAX_ENSEMBLE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "an ensemble has 2 to %d model files, got %zu", EXP_MAX_ENSEMBLE,
                             n);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *f = exp_yaml_node(y, v->data.sequence.items.start[i]);
        const char *s = f->type == YAML_SCALAR_NODE ? (const char *)f->data.scalar.value : NULL;
        if (!s || !*s || strlen(s) >= sizeof t->ensemble[i])
            return exp_yaml_fail(y, f, key, NN_E_INVAL, err, "entry %zu: expected a model file path (under %zu bytes)",
                                 i, sizeof t->ensemble[i]);
        strcpy(t->ensemble[i], s);
    }
    t->n_ensemble = n;
    return NN_OK;
}

static const exp_field teacher_fields[] = {
    {EXP_STR("model_file", exp_teacher, model_file)},
    {.key = "ensemble", .type = EXP_F_CUSTOM, .set = set_teacher_ensemble},
    {.key = "model", .type = EXP_F_CUSTOM, .set = set_teacher_model},
    {.key = "train", .type = EXP_F_CUSTOM, .set = set_teacher_train},
    {EXP_KEY("attack", EXP_F_BOOL, exp_teacher, attack)},
};
static const exp_table teacher_table = EXP_TABLE(teacher_fields);
const exp_table *exp_config_teacher_table(void) { return &teacher_table; } /* for exp_config_canon.c */

int exp_config_set_teacher(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_config *cfg = base;
    cfg->teacher.train = nn_train_cfg_default();
    cfg->teacher.present = 1;
    return exp_yaml_apply(y, v, key, &teacher_table, EXP_ALL_FIELDS, NULL, &cfg->teacher, err);
}

/* defense.bias: a list of {class: c, delta: d}. */
typedef struct bias_item {
    size_t cls;
    float delta;
} bias_item;
static const exp_field bias_fields[] = {
    {EXP_KEY("class", EXP_F_SIZE, bias_item, cls), EXP_LE(1023), .flags = EXP_REQUIRED},
    {EXP_KEY("delta", EXP_F_FLOAT, bias_item, delta), .flags = EXP_REQUIRED},
};
static const exp_table bias_table = EXP_TABLE(bias_fields);

static int set_bias(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_defense *d = base;
    char k[300];
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list such as [{class: 3, delta: 3.5}], got %s",
                             exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > EXP_MAX_BIAS) return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "at most %d entries", EXP_MAX_BIAS);
    for (size_t i = 0; i < n; i++) {
        bias_item b = {0, 0};
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = exp_yaml_apply(y, exp_yaml_node(y, v->data.sequence.items.start[i]), k, &bias_table, EXP_ALL_FIELDS,
                                NULL, &b, err);
        if (rc) return rc;
        d->bias_class[i] = (int)b.cls;
        d->bias_delta[i] = b.delta;
    }
    d->n_bias = n;
    return NN_OK;
}

/* defense.views (ddgsd): a list of two {shift, flip, noise}. */
static const exp_field view_fields[] = {
    {EXP_KEY("shift", EXP_F_INT, def_ddgsd_view, shift), EXP_LE(64)},
    {EXP_KEY("flip", EXP_F_FLOAT, def_ddgsd_view, flip), EXP_IN(0, 1)},
    {EXP_KEY("noise", EXP_F_FLOAT, def_ddgsd_view, noise), EXP_GE(0)},
};
static const exp_table view_table = EXP_TABLE(view_fields);
const exp_table *exp_config_view_table(void) { return &view_table; }

static int set_views(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_defense *d = base;
    char k[300];
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top - v->data.sequence.items.start != 2)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list of two views such as "
                             "[{shift: 2}, {shift: 2, noise: 0.1}]");
    for (size_t i = 0; i < 2; i++) { /* a view given lists all its distortions: the rest are off */
        memset(&d->ddgsd.view[i], 0, sizeof d->ddgsd.view[i]);
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = exp_yaml_apply(y, exp_yaml_node(y, v->data.sequence.items.start[i]), k, &view_table, EXP_ALL_FIELDS,
                                NULL, &d->ddgsd.view[i], err);
        if (rc) return rc;
    }
    return NN_OK;
}

enum { D_KD = 1u, D_BSS = 2u, D_DDGSD = 4u, D_TEACHER = 8u };
static const exp_choice defense_choices[] = {{"distillation", EXP_DEFENSE_DISTILLATION},
                                             {"kd", EXP_DEFENSE_KD},
                                             {"bss", EXP_DEFENSE_BSS},
                                             {"ddgsd", EXP_DEFENSE_DDGSD},
                                             {NULL, 0}};
static const exp_choice policy_choices[] = {
    {"sample", ATK_BSS_SAMPLE}, {"second", ATK_BSS_SECOND}, {"uniform", ATK_BSS_UNIFORM}, {"all", ATK_BSS_ALL}, {NULL, 0}};
static const exp_choice kernel_choices[] = {{"linear", DEF_MMD_LINEAR}, {"gauss", DEF_MMD_GAUSS}, {NULL, 0}};
static const exp_field defense_fields[] = {
    {.key = "type", .type = EXP_F_SKIP},
    {EXP_KEY("temperature", EXP_F_FLOAT, exp_defense, kd.temperature), EXP_GT(0)},
    {EXP_KEY("alpha", EXP_F_FLOAT, exp_defense, kd.alpha), EXP_IN(0, 1), .bit = D_KD},
    {EXP_KEY("t2", EXP_F_BOOL, exp_defense, kd.t2), .bit = D_KD},
    {EXP_KEY("common_init", EXP_F_BOOL, exp_defense, common_init), .bit = D_TEACHER},
    {.key = "bias", .type = EXP_F_CUSTOM, .set = set_bias},
    {EXP_KEY("ratio", EXP_F_FLOAT, exp_defense, bss.ratio_hi), EXP_GE(0), .bit = D_BSS},
    {EXP_KEY("attack_ratio", EXP_F_FLOAT, exp_defense, bss.attack_hi), EXP_GE(0), .bit = D_BSS},
    {EXP_KEY("attack_speed", EXP_F_FLOAT, exp_defense, bss.attack_speed), EXP_GE(0), .bit = D_BSS},
    {EXP_KEY("eta", EXP_F_FLOAT, exp_defense, bss.bss.eta), EXP_GT(0), .bit = D_BSS},
    {EXP_KEY("steps", EXP_F_INT, exp_defense, bss.bss.steps), EXP_IN(1, 1000), .bit = D_BSS},
    {EXP_KEY("max_base", EXP_F_SIZE, exp_defense, bss.bss.max_base), EXP_GE(1), .bit = D_BSS},
    {EXP_KEY("policy", EXP_F_ENUM, exp_defense, bss.bss.policy), .choices = policy_choices, .bit = D_BSS},
    {EXP_KEY("seed", EXP_F_U64, exp_defense, bss.bss.seed), .bit = D_BSS},
    {EXP_STR("pool", exp_defense, pool), .bit = D_BSS},
    {EXP_KEY("lambda", EXP_F_FLOAT, exp_defense, ddgsd.lambda), EXP_GE(0), .bit = D_DDGSD},
    {EXP_KEY("mu", EXP_F_FLOAT, exp_defense, ddgsd.mu), EXP_GE(0), .bit = D_DDGSD},
    {EXP_KEY("kernel", EXP_F_ENUM, exp_defense, ddgsd.kernel), .choices = kernel_choices, .bit = D_DDGSD},
    {EXP_KEY("sigma", EXP_F_FLOAT, exp_defense, ddgsd.sigma), EXP_GT(0), .bit = D_DDGSD},
    {.key = "views", .type = EXP_F_CUSTOM, .set = set_views, .bit = D_DDGSD},
};
static const exp_table defense_table = EXP_TABLE(defense_fields);
const exp_table *exp_config_defense_table(void) { return &defense_table; }
const exp_choice *exp_config_defense_kinds(void) { return defense_choices; }

/* The keys (exp_field.bit) a defense of kind EXP_DEFENSE_* accepts. */
unsigned exp_config_defense_mask(int kind) {
    switch (kind) {
    case EXP_DEFENSE_DISTILLATION: return D_TEACHER;
    case EXP_DEFENSE_KD: return D_KD | D_TEACHER;
    case EXP_DEFENSE_BSS: return D_BSS;
    case EXP_DEFENSE_DDGSD: return D_DDGSD;
    default: return 0;
    }
}

/* Parses a defense mapping v into d (defaults of its type first). */
static int parse_defense(exp_yaml *y, yaml_node_t *v, const char *key, exp_defense *d, nn_err *err) {
    char tkey[300], kind[32];
    if (v->type != YAML_MAPPING_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a mapping such as {type: distillation, temperature: 100}, got %s",
                             exp_yaml_kind(v));
    exp_yaml_key(tkey, sizeof tkey, key, "type");
    yaml_node_t *t = exp_yaml_map_get(y, v, "type", NULL);
    if (!t) return exp_yaml_fail(y, v, tkey, NN_E_INVAL, err, "required (distillation, kd, bss or ddgsd)");
    int rc = exp_yaml_get_str(y, t, tkey, kind, sizeof kind, err);
    if (rc) return rc;
    memset(d, 0, sizeof *d);
    for (const exp_choice *c = defense_choices; c->name; c++)
        if (!strcmp(kind, c->name)) d->kind = c->value;
    if (d->kind == EXP_DEFENSE_NONE)
        return exp_yaml_fail(y, t, tkey, NN_E_INVAL, err, "unknown defense '%s' (expected distillation, kd, bss or ddgsd)",
                             kind);
    d->kd = def_kd_cfg_default();
    d->bss = def_bss_cfg_default();
    d->ddgsd = def_ddgsd_cfg_default();
    switch (d->kind) {
    case EXP_DEFENSE_DISTILLATION: d->kd.t2 = 0; break; /* Papernot: soft labels only, no T^2 */
    case EXP_DEFENSE_KD: d->kd.alpha = 0.9f; break;
    case EXP_DEFENSE_BSS: d->kd.temperature = d->bss.temperature; break;
    default: d->kd.temperature = d->ddgsd.temperature; break;
    }
    char what[48];
    snprintf(what, sizeof what, "defense type '%s'", kind);
    return exp_yaml_apply(y, v, key, &defense_table, exp_config_defense_mask(d->kind), what, d, err);
}

int exp_config_set_defense(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_config *cfg = base;
    return parse_defense(y, v, key, &cfg->defense, err);
}

/* variants: a list of {name: ..., defense: {...}} (no defense: hard labels). */
typedef struct variant_item {
    char name[64];
    exp_defense defense;
} variant_item;

static int set_variant_defense(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    return parse_defense(y, v, key, &((variant_item *)base)->defense, err);
}

static const exp_field variant_fields[] = {
    {EXP_STR("name", variant_item, name), .flags = EXP_REQUIRED},
    {.key = "defense", .type = EXP_F_CUSTOM, .set = set_variant_defense},
};
static const exp_table variant_table = EXP_TABLE(variant_fields);

int exp_config_set_variants(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_config *cfg = base;
    char k[300];
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list such as [{name: hard}, {name: kd, defense: "
                             "{type: kd}}], got %s", exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > EXP_MAX_VARIANTS)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected 1 to %d variants, got %zu", EXP_MAX_VARIANTS, n);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *node = exp_yaml_node(y, v->data.sequence.items.start[i]);
        variant_item it;
        memset(&it, 0, sizeof it);
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = exp_yaml_apply(y, node, k, &variant_table, EXP_ALL_FIELDS, NULL, &it, err);
        if (rc) return rc;
        const char *bad = it.name[0] == '.' ? "." : strpbrk(it.name, "/\\ ");
        if (bad) return exp_yaml_fail(y, node, k, NN_E_INVAL, err, "name '%s' must be a plain folder name", it.name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cfg->variants[j].name, it.name))
                return exp_yaml_fail(y, node, k, NN_E_INVAL, err, "name '%s' is used twice", it.name);
        memcpy(cfg->variants[i].name, it.name, sizeof it.name);
        cfg->variants[i].defense = it.defense;
    }
    cfg->n_variants = n;
    return NN_OK;
}

/* sweep: {key: ..., values: [...]}, or a list of up to EXP_MAX_AXES of them (a grid). */
static int set_values(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_sweep_axis *s = base;
    char k[300];
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list of numbers, got %s", exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > EXP_MAX_SWEEP)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected 1 to %d values, got %zu", EXP_MAX_SWEEP, n);
    for (size_t i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = exp_yaml_get_double(y, exp_yaml_node(y, v->data.sequence.items.start[i]), k, &s->values[i], err);
        if (rc) return rc;
    }
    s->n = n;
    return NN_OK;
}

static const exp_field sweep_fields[] = {
    {EXP_STR("key", exp_sweep_axis, key), .flags = EXP_REQUIRED},
    {.key = "values", .type = EXP_F_CUSTOM, .flags = EXP_REQUIRED, .set = set_values},
};
static const exp_table sweep_table = EXP_TABLE(sweep_fields);

int exp_config_set_sweep(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_sweep *s = &((exp_config *)base)->sweep;
    int list = v->type == YAML_SEQUENCE_NODE;
    size_t n = list ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start) : 1;
    if (n == 0 || n > EXP_MAX_AXES)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected 1 to %d axes, got %zu", EXP_MAX_AXES, n);
    char k[300], why[256];
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *node = list ? exp_yaml_node(y, v->data.sequence.items.start[i]) : v;
        if (list) snprintf(k, sizeof k, "%s[%zu]", key, i);
        else snprintf(k, sizeof k, "%s", key);
        int rc = exp_yaml_apply(y, node, k, &sweep_table, EXP_ALL_FIELDS, NULL, &s->axis[i], err);
        if (!rc && exp_sweep_check(&s->axis[i], why, sizeof why))
            rc = exp_yaml_fail(y, node, k, NN_E_INVAL, err, "%s", why);
        for (size_t j = 0; j < i && !rc; j++)
            if (!strcmp(s->axis[j].key, s->axis[i].key))
                rc = exp_yaml_fail(y, node, k, NN_E_INVAL, err, "'%s' is swept twice", s->axis[i].key);
        if (rc) return rc;
    }
    s->n_axes = n;
    return NN_OK;
}

/* boundary: {samples, targets, steps, overshoot}. */
static const exp_choice boundary_targets[] = {{"second", ATK_BOUNDARY_SECOND}, {"all", ATK_BOUNDARY_ALL}, {NULL, 0}};
static const exp_field boundary_fields[] = {
    {EXP_KEY("samples", EXP_F_SIZE, exp_boundary, samples)},
    {EXP_KEY("targets", EXP_F_ENUM, exp_boundary, cfg.targets), .choices = boundary_targets},
    {EXP_KEY("steps", EXP_F_INT, exp_boundary, cfg.steps), EXP_IN(1, 100000)},
    {EXP_KEY("overshoot", EXP_F_FLOAT, exp_boundary, cfg.overshoot), EXP_IN(0, 1)},
};
static const exp_table boundary_table = EXP_TABLE(boundary_fields);
const exp_table *exp_config_boundary_table(void) { return &boundary_table; }

int exp_config_set_boundary(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    return exp_yaml_apply(y, v, key, &boundary_table, EXP_ALL_FIELDS, NULL, &((exp_config *)base)->boundary, err);
}

void exp_defense_finish(exp_config *c) {
    c->boundary.cfg.lo = c->bss.cfg.lo = c->data.lo;
    c->boundary.cfg.hi = c->bss.cfg.hi = c->data.hi;
    exp_defense *d = &c->defense;
    float T = d->kd.temperature;
    switch (d->kind) {
    case EXP_DEFENSE_DISTILLATION:
        c->teacher.train.temperature = T;
        c->train.temperature = T; /* the student trains at T; recorded in its model file */
        break;
    case EXP_DEFENSE_KD: c->train.temperature = T; break;
    case EXP_DEFENSE_BSS:
        d->bss.temperature = T;
        d->bss.epochs = c->train.epochs;
        d->bss.bss.lo = c->data.lo;
        d->bss.bss.hi = c->data.hi;
        break;
    case EXP_DEFENSE_DDGSD:
        d->ddgsd.temperature = T;
        d->ddgsd.lo = c->data.lo;
        d->ddgsd.hi = c->data.hi;
        break;
    default: break;
    }
}

/* A defense's own checks once the experiment's settings are known (on a copy: finish changes fields). */
static int check_one(exp_yaml *y, yaml_node_t *node, const char *key, const exp_config *cfg, const exp_defense *d,
                     nn_err *err) {
    exp_config *c = malloc(sizeof *c);
    if (!c) return NN_FAIL(err, NN_E_NOMEM, "out of memory");
    *c = *cfg;
    c->defense = *d;
    exp_defense_finish(c);
    nn_err e;
    nn_err_clear(&e);
    int rc = NN_OK;
    if (d->kind == EXP_DEFENSE_BSS) rc = def_bss_cfg_validate(&c->defense.bss, &e);
    if (d->kind == EXP_DEFENSE_DDGSD) rc = def_ddgsd_cfg_validate(&c->defense.ddgsd, &e);
    free(c);
    if (rc) return exp_yaml_fail(y, node, key, rc, err, "%s", e.msg);
    for (size_t i = 0; i < d->n_bias; i++)
        if (d->bias_class[i] > 9)
            return exp_yaml_fail(y, node, key, NN_E_INVAL, err, "bias: class %d is not a class of %s", d->bias_class[i],
                                 cfg->data.name);
    return NN_OK;
}

/* After parsing: defense or variants (not both), the teacher's defaults, each defense's own checks, the
 * fields that follow the defense. */
int exp_config_check_defense(exp_yaml *y, exp_config *cfg, nn_err *err) {
    yaml_node_t *root = exp_yaml_root(y), *dk = NULL, *tk = NULL, *vk = NULL;
    yaml_node_t *def = exp_yaml_map_get(y, root, "defense", &dk);
    exp_yaml_map_get(y, root, "teacher", &tk);
    exp_yaml_map_get(y, root, "variants", &vk);
    if (def && vk) return exp_yaml_fail(y, vk, "variants", NN_E_INVAL, err, "give defense: or variants:, not both");
    int needs = exp_config_has_teacher(cfg);
    for (size_t i = 0; i < cfg->n_variants; i++) {
        int k = cfg->variants[i].defense.kind;
        needs |= k == EXP_DEFENSE_DISTILLATION || k == EXP_DEFENSE_KD || k == EXP_DEFENSE_BSS;
    }
    if (cfg->model_file[0] && (def || vk))
        return exp_yaml_fail(y, def ? dk : vk, def ? "defense" : "variants", NN_E_INVAL, err,
                             "a defense trains a student: give model:, not model_file:");
    exp_teacher *t = &cfg->teacher;
    if (!!t->model_file[0] + !!t->n_ensemble + !!(t->n_layers || t->has_train) > 1)
        return exp_yaml_fail(y, tk, "teacher", NN_E_INVAL, err,
                             "give one of model_file:, ensemble: or model:/train:, not several");
    if (needs) {
        if (!t->n_layers) {
            memcpy(t->layers, cfg->layers, sizeof t->layers);
            t->n_layers = cfg->n_layers;
        }
        if (!t->has_train) t->train = cfg->train;
        nn_err e;
        nn_err_clear(&e);
        nn_net *net = NULL;
        int rc = t->model_file[0] || t->n_ensemble ? NN_OK
                                                   : nn_net_create(&net, (nn_shape){1, 28, 28}, t->layers, t->n_layers, &e);
        nn_net_destroy(net);
        if (!rc) rc = nn_train_cfg_validate(&t->train, &e);
        if (rc) return exp_yaml_fail(y, tk ? tk : dk, tk ? "teacher" : "defense", rc, err, "teacher: %s", e.msg);
    }
    int rc = def ? check_one(y, dk, "defense", cfg, &cfg->defense, err) : NN_OK;
    for (size_t i = 0; i < cfg->n_variants && !rc; i++) {
        char k[64];
        snprintf(k, sizeof k, "variants[%zu]", i);
        rc = check_one(y, vk, k, cfg, &cfg->variants[i].defense, err);
    }
    if (!rc) exp_defense_finish(cfg);
    return rc;
}
