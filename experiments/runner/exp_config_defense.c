/* exp_config_defense.c - the teacher: and defense: sections of experiment files (schema in exp_config.h). */
#include <stdio.h>
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

int exp_config_set_teacher(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_config *cfg = base;
    cfg->teacher.train = nn_train_cfg_default();
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

enum { D_KD = 1u };
static const exp_choice defense_choices[] = {
    {"distillation", EXP_DEFENSE_DISTILLATION}, {"kd", EXP_DEFENSE_KD}, {NULL, 0}};
static const exp_field defense_fields[] = {
    {.key = "type", .type = EXP_F_SKIP},
    {EXP_KEY("temperature", EXP_F_FLOAT, exp_defense, kd.temperature), EXP_GT(0)},
    {EXP_KEY("alpha", EXP_F_FLOAT, exp_defense, kd.alpha), EXP_IN(0, 1), .bit = D_KD},
    {EXP_KEY("t2", EXP_F_BOOL, exp_defense, kd.t2), .bit = D_KD},
    {EXP_KEY("common_init", EXP_F_BOOL, exp_defense, common_init)},
    {.key = "bias", .type = EXP_F_CUSTOM, .set = set_bias},
};
static const exp_table defense_table = EXP_TABLE(defense_fields);

int exp_config_set_defense(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_config *cfg = base;
    exp_defense *d = &cfg->defense;
    char tkey[64], kind[32];
    if (v->type != YAML_MAPPING_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a mapping such as {type: distillation, temperature: 100}, got %s",
                             exp_yaml_kind(v));
    exp_yaml_key(tkey, sizeof tkey, key, "type");
    yaml_node_t *t = exp_yaml_map_get(y, v, "type", NULL);
    if (!t) return exp_yaml_fail(y, v, tkey, NN_E_INVAL, err, "required (distillation or kd)");
    int rc = exp_yaml_get_str(y, t, tkey, kind, sizeof kind, err);
    if (rc) return rc;
    d->kind = EXP_DEFENSE_NONE;
    for (const exp_choice *c = defense_choices; c->name; c++)
        if (!strcmp(kind, c->name)) d->kind = c->value;
    if (d->kind == EXP_DEFENSE_NONE)
        return exp_yaml_fail(y, t, tkey, NN_E_INVAL, err, "unknown defense '%s' (expected distillation or kd)", kind);
    d->kd = def_kd_cfg_default();
    if (d->kind == EXP_DEFENSE_DISTILLATION) d->kd.t2 = 0; /* Papernot: soft labels only, no T^2 */
    else d->kd.alpha = 0.9f;
    char what[48];
    snprintf(what, sizeof what, "defense type '%s'", kind);
    return exp_yaml_apply(y, v, key, &defense_table, d->kind == EXP_DEFENSE_KD ? D_KD : 0, what, d, err);
}

/* sweep: {key: ..., values: [...]}. */
static int set_values(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_sweep *s = base;
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
    {EXP_STR("key", exp_sweep, key), .flags = EXP_REQUIRED},
    {.key = "values", .type = EXP_F_CUSTOM, .flags = EXP_REQUIRED, .set = set_values},
};
static const exp_table sweep_table = EXP_TABLE(sweep_fields);

int exp_config_set_sweep(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_config *cfg = base;
    int rc = exp_yaml_apply(y, v, key, &sweep_table, EXP_ALL_FIELDS, NULL, &cfg->sweep, err);
    char why[256];
    if (!rc && exp_sweep_check(&cfg->sweep, why, sizeof why))
        rc = exp_yaml_fail(y, v, key, NN_E_INVAL, err, "%s", why);
    return rc;
}

/* After parsing: the teacher's defaults, the student's temperature, bias classes within the net's classes. */
int exp_config_check_defense(exp_yaml *y, exp_config *cfg, nn_err *err) {
    yaml_node_t *root = exp_yaml_root(y), *dk = NULL, *tk = NULL;
    yaml_node_t *def = exp_yaml_map_get(y, root, "defense", &dk);
    exp_yaml_map_get(y, root, "teacher", &tk);
    if (!def) {
        if (tk) return exp_yaml_fail(y, tk, "teacher", NN_E_INVAL, err, "a teacher needs a defense: section");
        return NN_OK;
    }
    if (cfg->model_file[0])
        return exp_yaml_fail(y, dk, "defense", NN_E_INVAL, err, "a defense trains a student: give model:, not model_file:");
    exp_teacher *t = &cfg->teacher;
    if (!!t->model_file[0] + !!t->n_ensemble + !!(t->n_layers || t->has_train) > 1)
        return exp_yaml_fail(y, tk, "teacher", NN_E_INVAL, err,
                             "give one of model_file:, ensemble: or model:/train:, not several");
    if (!t->n_layers) {
        memcpy(t->layers, cfg->layers, sizeof t->layers);
        t->n_layers = cfg->n_layers;
    }
    if (!t->has_train) t->train = cfg->train;
    nn_err e;
    nn_err_clear(&e);
    nn_net *net = NULL;
    int rc = t->model_file[0] || t->n_ensemble ? NN_OK : nn_net_create(&net, (nn_shape){1, 28, 28}, t->layers, t->n_layers, &e);
    nn_net_destroy(net);
    if (!rc) rc = nn_train_cfg_validate(&t->train, &e);
    if (rc) return exp_yaml_fail(y, tk ? tk : dk, tk ? "teacher" : "defense", rc, err, "teacher: %s", e.msg);
    exp_defense *d = &cfg->defense;
    if (d->kind == EXP_DEFENSE_DISTILLATION) t->train.temperature = d->kd.temperature;
    cfg->train.temperature = d->kd.temperature; /* the student trains at T; recorded in its model file */
    for (size_t i = 0; i < d->n_bias; i++)
        if (d->bias_class[i] > 9)
            return exp_yaml_fail(y, dk, "defense.bias", NN_E_INVAL, err, "class %d is not a class of %s", d->bias_class[i],
                                 cfg->data.name);
    return NN_OK;
}
