/* exp_config.c - the experiment file's schema (see exp_config.h) as field tables over exp_yaml.
 * Adding a key is one line in a table; a new top-level section is one line in top_fields plus its table. */
#include "exp_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_yaml.h"
#include "nn_io.h"
#include "nn_json.h"
#include "nn_net.h"
#include "nn_optim.h"

/* The attacks: list (exp_config_attack.c): the setter, and the checks that need the data range. */
int exp_config_set_attacks(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err);
int exp_config_check_attacks(exp_yaml *y, exp_config *cfg, nn_err *err);
/* teacher: and defense: (exp_config_defense.c). */
int exp_config_set_teacher(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err);
int exp_config_set_defense(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err);
int exp_config_check_defense(exp_yaml *y, exp_config *cfg, nn_err *err);
int exp_config_set_sweep(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err);
int exp_config_set_variants(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err);
/* bss: (exp_config_bss.c). */
int exp_config_set_bss(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err);
int exp_config_set_boundary(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err);

/* ---- custom setters ---- */

/* data.range: [lo, hi], finite floats, lo < hi. */
static int set_range(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    nn_data_cfg *d = base;
    char k[280];
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top - v->data.sequence.items.start != 2)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list of two numbers [lo, hi], got %s",
                             v->type == YAML_SEQUENCE_NODE ? "a list of another length" : exp_yaml_kind(v));
    float r[2];
    for (int i = 0; i < 2; i++) {
        snprintf(k, sizeof k, "%s[%d]", key, i);
        int rc = exp_yaml_get_float(y, exp_yaml_node(y, v->data.sequence.items.start[i]), k, &r[i], err);
        if (rc) return rc;
    }
    if (!(r[0] < r[1]))
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "lo must be < hi, got [%g, %g]", r[0], r[1]);
    d->lo = r[0];
    d->hi = r[1];
    return NN_OK;
}

/* data.exclude_classes: a list of distinct class indices 0..9 -> the nn_data_cfg.exclude bit mask. */
static int set_exclude(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    nn_data_cfg *d = base;
    char k[280];
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err,
                             "expected a list of class indices such as [3], got %s", exp_yaml_kind(v));
    uint32_t mask = 0;
    size_t i = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, i++) {
        yaml_node_t *c = exp_yaml_node(y, *it);
        size_t cls;
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = exp_yaml_get_size(y, c, k, &cls, err);
        if (rc) return rc;
        if (cls > 9)
            return exp_yaml_fail(y, c, k, NN_E_INVAL, err, "must be a class in [0, 9], got %zu", cls);
        if (mask & (1u << cls))
            return exp_yaml_fail(y, c, k, NN_E_INVAL, err, "class %zu is listed twice", cls);
        mask |= 1u << cls;
    }
    d->exclude = mask;
    return NN_OK;
}

/* train.schedule.milestones: strictly increasing epoch indices, at most NN_MAX_MILESTONES. */
static int set_milestones(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    nn_optim_cfg *o = base;
    char k[280];
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list of epochs such as [40, 60], got %s",
                             exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > NN_MAX_MILESTONES)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "at most %d milestones, got %zu", NN_MAX_MILESTONES,
                             n);
    size_t m[NN_MAX_MILESTONES];
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = exp_yaml_node(y, v->data.sequence.items.start[i]);
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = exp_yaml_get_size(y, e, k, &m[i], err);
        if (rc) return rc;
        if (i > 0 && m[i] <= m[i - 1])
            return exp_yaml_fail(y, e, k, NN_E_INVAL, err,
                                 "must be greater than the previous milestone %zu, got %zu", m[i - 1], m[i]);
    }
    memcpy(o->milestones, m, n * sizeof m[0]);
    o->n_milestones = n;
    return NN_OK;
}

/* ---- model ---- */

static const exp_choice init_choices[] = {{"he", NN_INIT_HE}, {"glorot", NN_INIT_GLOROT}, {NULL, 0}};

/* Keys of a layer; `bit` ties each to the NN_F_* flag a kind must accept (nn_layer_ops.fields). */
static const exp_field layer_fields[] = {
    {.key = "type", .type = EXP_F_SKIP},
    {EXP_KEY("units", EXP_F_SIZE, nn_layer_cfg, units), EXP_GE(1), .bit = NN_F_UNITS},
    {EXP_KEY("filters", EXP_F_SIZE, nn_layer_cfg, filters), EXP_GE(1), .bit = NN_F_FILTERS},
    {EXP_KEY("kernel", EXP_F_SIZE, nn_layer_cfg, kernel), EXP_GE(1), .bit = NN_F_KERNEL},
    {EXP_KEY("stride", EXP_F_SIZE, nn_layer_cfg, stride), EXP_GE(1), .bit = NN_F_STRIDE},
    {EXP_KEY("pad", EXP_F_SIZE, nn_layer_cfg, pad), .bit = NN_F_PAD},
    {EXP_KEY("rate", EXP_F_FLOAT, nn_layer_cfg, rate), EXP_IN_HALF(0, 1), .bit = NN_F_RATE},
    {EXP_KEY("init", EXP_F_ENUM, nn_layer_cfg, init), .bit = NN_F_INIT, .choices = init_choices},
};
static const exp_table layer_table = EXP_TABLE(layer_fields);
const exp_table *exp_config_layer_table(void) { return &layer_table; }

static int parse_layer(exp_yaml *y, yaml_node_t *v, const char *key, nn_layer_cfg *out, nn_err *err) {
    char kinds[160], tkey[64], kind[64], what[96];
    nn_layer_kinds_list(kinds, sizeof kinds);
    if (v->type != YAML_MAPPING_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a mapping such as {type: relu}, got %s",
                             exp_yaml_kind(v));
    exp_yaml_key(tkey, sizeof tkey, key, "type");
    yaml_node_t *t = exp_yaml_map_get(y, v, "type", NULL);
    if (!t) return exp_yaml_fail(y, v, tkey, NN_E_INVAL, err, "required (one of: %s)", kinds);
    int rc = exp_yaml_get_str(y, t, tkey, kind, sizeof kind, err);
    if (rc) return rc;
    const nn_layer_ops *ops = nn_layer_ops_find(kind);
    if (!ops)
        return exp_yaml_fail(y, t, tkey, NN_E_INVAL, err, "unknown layer type '%s' (expected one of: %s)",
                             kind, kinds);
    *out = nn_layer_cfg_default(kind);
    snprintf(what, sizeof what, "layer type '%s'", kind);
    return exp_yaml_apply(y, v, key, &layer_table, ops->fields, what, out, err);
}

/* A non-empty list of at most EXP_MAX_LAYERS layers into layers[], *n. */
int exp_config_parse_layers(exp_yaml *y, yaml_node_t *v, const char *key, nn_layer_cfg *layers, size_t *n_out,
                            nn_err *err) {
    char k[64];
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list of layers, got %s",
                             exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0) return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "must list at least one layer");
    if (n > EXP_MAX_LAYERS)
        return exp_yaml_fail(y, exp_yaml_node(y, v->data.sequence.items.start[EXP_MAX_LAYERS]), key,
                             NN_E_INVAL, err, "at most %d layers, got %zu", EXP_MAX_LAYERS, n);
    for (size_t i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = parse_layer(y, exp_yaml_node(y, v->data.sequence.items.start[i]), k, &layers[i], err);
        if (rc) return rc;
    }
    *n_out = n;
    return NN_OK;
}

static int set_model(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_config *cfg = base;
    return exp_config_parse_layers(y, v, key, cfg->layers, &cfg->n_layers, err);
}

/* ---- sections ---- */

static const exp_field data_fields[] = {
    {EXP_STR("name", nn_data_cfg, name), .flags = EXP_REQUIRED},
    {.key = "range", .type = EXP_F_CUSTOM, .set = set_range},
    {EXP_KEY("val_size", EXP_F_SIZE, nn_data_cfg, val_size)},
    {EXP_KEY("shuffle", EXP_F_BOOL, nn_data_cfg, shuffle)},
    {EXP_KEY("seed", EXP_F_U64, nn_data_cfg, seed)},
    {EXP_KEY("subset", EXP_F_SIZE, nn_data_cfg, subset)},
    {.key = "exclude_classes", .type = EXP_F_CUSTOM, .set = set_exclude},
    {EXP_KEY("test_subset", EXP_F_SIZE, nn_data_cfg, test_subset)},
};
static const exp_table data_table = EXP_TABLE(data_fields);

static const exp_choice optim_choices[] = {{"sgd", NN_OPT_SGD}, {"adam", NN_OPT_ADAM}, {NULL, 0}};

static const exp_field optim_fields[] = {
    {EXP_KEY("type", EXP_F_ENUM, nn_optim_cfg, kind), .choices = optim_choices},
    {EXP_KEY("lr", EXP_F_FLOAT, nn_optim_cfg, lr), EXP_GT(0)},
    {EXP_KEY("momentum", EXP_F_FLOAT, nn_optim_cfg, momentum), EXP_IN_HALF(0, 1)},
    {EXP_KEY("nesterov", EXP_F_BOOL, nn_optim_cfg, nesterov)},
    {EXP_KEY("weight_decay", EXP_F_FLOAT, nn_optim_cfg, weight_decay), EXP_GE(0)},
    {EXP_KEY("decay", EXP_F_FLOAT, nn_optim_cfg, decay), EXP_GE(0)},
    {EXP_KEY("beta1", EXP_F_FLOAT, nn_optim_cfg, beta1), EXP_IN_HALF(0, 1)},
    {EXP_KEY("beta2", EXP_F_FLOAT, nn_optim_cfg, beta2), EXP_IN_HALF(0, 1)},
    {EXP_KEY("eps", EXP_F_FLOAT, nn_optim_cfg, eps), EXP_GT(0)},
};
static const exp_table optim_table = EXP_TABLE(optim_fields);

static const exp_field schedule_fields[] = {
    {.key = "milestones", .type = EXP_F_CUSTOM, .set = set_milestones},
    {EXP_KEY("gamma", EXP_F_FLOAT, nn_optim_cfg, gamma), EXP_GT(0)},
};
static const exp_table schedule_table = EXP_TABLE(schedule_fields);

static const exp_field train_fields[] = {
    {EXP_KEY("epochs", EXP_F_SIZE, nn_train_cfg, epochs), EXP_GE(1)},
    {EXP_KEY("batch_size", EXP_F_SIZE, nn_train_cfg, batch_size), EXP_GE(1)},
    {EXP_KEY("temperature", EXP_F_FLOAT, nn_train_cfg, temperature), EXP_GT(0)},
    {EXP_KEY("seed", EXP_F_U64, nn_train_cfg, seed)},
    {EXP_KEY("jitter", EXP_F_INT, nn_train_cfg, jitter), EXP_IN(0, 64)},
    {EXP_KEY("optimizer", EXP_F_MAP, nn_train_cfg, optim), .sub = &optim_table},
    {EXP_KEY("schedule", EXP_F_MAP, nn_train_cfg, optim), .sub = &schedule_table},
};
static const exp_table train_table = EXP_TABLE(train_fields);
const exp_table *exp_config_train_table(void) { return &train_table; }

/* ---- evaluate: ---- */

/* evaluate.models: a non-empty list of at most EXP_MAX_EVAL_MODELS paths or patterns. */
static int set_eval_models(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_evaluate_cfg *e = base;
    char k[300];
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err,
                             "expected a list of model files or glob patterns such as "
                             "[results/x/*/model.safetensors], got %s",
                             exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0) return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "no models: list at least one model file or pattern");
    if (n > EXP_MAX_EVAL_MODELS)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "at most %d entries, got %zu (use glob patterns)",
                             EXP_MAX_EVAL_MODELS, n);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *m = exp_yaml_node(y, v->data.sequence.items.start[i]);
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = exp_yaml_get_str(y, m, k, e->models[i], sizeof e->models[i], err);
        if (rc) return rc;
        if (!e->models[i][0]) return exp_yaml_fail(y, m, k, NN_E_INVAL, err, "empty path");
    }
    e->n_models = n;
    return NN_OK;
}

static const exp_field evaluate_fields[] = {
    {.key = "models", .type = EXP_F_CUSTOM, .set = set_eval_models}, /* required without model: (validate) */
    {EXP_KEY("samples", EXP_F_SIZE, exp_evaluate_cfg, samples), EXP_GE(1)},
    {EXP_KEY("temperature_aware", EXP_F_BOOL, exp_evaluate_cfg, temperature_aware)},
    {EXP_STR("cache", exp_evaluate_cfg, cache)},
    {EXP_KEY("teachers", EXP_F_BOOL, exp_evaluate_cfg, teachers)}, /* only with model: (validate) */
};
static const exp_table evaluate_table = EXP_TABLE(evaluate_fields);

/* evaluate: defaults (samples 1000, temperature-aware, cache results/.cache), then the mapping. */
static int set_evaluate(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_evaluate_cfg *e = &((exp_config *)base)->evaluate;
    memset(e, 0, sizeof *e);
    e->enabled = 1;
    e->samples = 1000;
    e->temperature_aware = 1;
    snprintf(e->cache, sizeof e->cache, "results/.cache");
    if (v->type == YAML_SCALAR_NODE && exp_yaml_is_null(v))
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a mapping such as {models: [...]}, got null");
    int rc = exp_yaml_apply(y, v, key, &evaluate_table, EXP_ALL_FIELDS, NULL, e, err);
    if (!rc && !e->cache[0])
        rc = exp_yaml_fail(y, exp_yaml_map_get(y, v, "cache", NULL), "evaluate.cache", NN_E_INVAL, err,
                           "empty folder name");
    return rc;
}

/* The top level. Later sections (teacher, defense, attacks, sweep) are added here, one line each. */
static const exp_field top_fields[] = {
    {EXP_STR("name", exp_config, name)},
    {EXP_STR("output", exp_config, output)},
    {EXP_KEY("threads", EXP_F_INT, exp_config, threads), EXP_IN(0, 1024)},
    {EXP_KEY("data", EXP_F_MAP, exp_config, data), .sub = &data_table}, /* required unless evaluate: */
    {.key = "model", .type = EXP_F_CUSTOM, .set = set_model},
    {EXP_STR("model_file", exp_config, model_file)},
    {EXP_KEY("train", EXP_F_MAP, exp_config, train), .sub = &train_table},
    {.key = "teacher", .type = EXP_F_CUSTOM, .set = exp_config_set_teacher},
    {.key = "defense", .type = EXP_F_CUSTOM, .set = exp_config_set_defense},
    {.key = "attacks", .type = EXP_F_CUSTOM, .set = exp_config_set_attacks},
    {.key = "sweep", .type = EXP_F_CUSTOM, .set = exp_config_set_sweep},
    {.key = "variants", .type = EXP_F_CUSTOM, .set = exp_config_set_variants},
    {.key = "bss", .type = EXP_F_CUSTOM, .set = exp_config_set_bss},
    {.key = "boundary", .type = EXP_F_CUSTOM, .set = exp_config_set_boundary},
    {.key = "evaluate", .type = EXP_F_CUSTOM, .set = set_evaluate},
};
static const exp_table top_table = EXP_TABLE(top_fields);
const exp_table *exp_config_top_table(void) { return &top_table; } /* for exp_config_canon.c */

/* ---- after parsing ---- */

/* name defaults to the file's base name without .yaml/.yml; output to results/<name>. */
static int fill_defaults(exp_yaml *y, exp_config *cfg, nn_err *err) {
    if (!cfg->name[0]) {
        const char *base = strrchr(cfg->path, '/');
        base = base ? base + 1 : cfg->path;
        size_t len = strlen(base);
        if (len > 5 && strcmp(base + len - 5, ".yaml") == 0)
            len -= 5;
        else if (len > 4 && strcmp(base + len - 4, ".yml") == 0)
            len -= 4;
        if (len == 0 || len >= sizeof cfg->name)
            return exp_yaml_fail(y, NULL, "name", NN_E_INVAL, err,
                                 "cannot derive a name from the file name (%zu characters); set name:", len);
        if (!nn_json_utf8_valid(base, len))
            return exp_yaml_fail(
                y, NULL, "name", NN_E_INVAL, err,
                "the file name is not valid UTF-8, so no name can be derived from it; set name:");
        memcpy(cfg->name, base, len);
        cfg->name[len] = '\0';
    }
    if (!cfg->output[0]) snprintf(cfg->output, sizeof cfg->output, "results/%s", cfg->name);
    return NN_OK;
}

/* name and output end up in JSON reports and file names: both must be valid UTF-8 (libyaml already
 * rejects invalid bytes in the file itself; this also covers values that arrive by other routes). */
static int check_utf8(exp_yaml *y, const exp_config *cfg, nn_err *err) {
    static const char *const keys[] = {"name", "output"};
    const char *vals[] = {cfg->name, cfg->output};
    for (size_t i = 0; i < 2; i++)
        if (!nn_json_utf8_valid(vals[i], strlen(vals[i])))
            return exp_yaml_fail(y, exp_yaml_map_get(y, exp_yaml_root(y), keys[i], NULL), keys[i], NN_E_INVAL,
                                 err, "not valid UTF-8");
    return NN_OK;
}

/* The input shape of each data set (C x H x W); 0 for an unknown name. */
static int data_input_shape(const char *name, nn_shape *out) {
    static const struct {
        const char *name;
        nn_shape shape;
    } sets[] = {{"mnist", {1, 28, 28}}, {"fashion-mnist", {1, 28, 28}}};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (strcmp(name, sets[i].name) == 0) {
            *out = sets[i].shape;
            return 1;
        }
    return 0;
}

/* Builds the net once on the data set's input shape so that shape errors (dense without flatten, a kernel
 * larger than its input, ...) are reported now, at the offending layer's mark, not after loading the data.
 * nn_net_create's messages begin "layer <i> (<kind>): "; that prefix becomes the key model[<i>]. */
static int validate_model(exp_yaml *y, const exp_config *cfg, nn_err *err) {
    yaml_node_t *root = exp_yaml_root(y), *mk = NULL;
    yaml_node_t *data = exp_yaml_map_get(y, root, "data", NULL),
                *model = exp_yaml_map_get(y, root, "model", &mk);
    nn_shape in;
    if (!data_input_shape(cfg->data.name, &in))
        return exp_yaml_fail(y, exp_yaml_map_get(y, data, "name", NULL), "data.name", NN_E_INVAL, err,
                             "no input shape known for data set '%s'", cfg->data.name);
    nn_net *net = NULL;
    nn_err e;
    nn_err_clear(&e);
    int rc = nn_net_create(&net, in, cfg->layers, cfg->n_layers, &e);
    nn_net_destroy(net);
    if (!rc) return NN_OK;
    const char *msg = e.msg, *kind = "", *close = NULL;
    char *end = NULL;
    size_t i = cfg->n_layers, klen = 0;
    if (strncmp(msg, "layer ", 6) == 0 && msg[6] >= '0' && msg[6] <= '9') {
        unsigned long long v = strtoull(msg + 6, &end, 10);
        if (v < cfg->n_layers) i = (size_t)v;
    }
    if (i == cfg->n_layers || !model || model->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, model ? model : mk, "model", rc, err, "%s", msg);
    msg = end;
    if (msg[0] == ' ' && msg[1] == '(' && (close = strstr(msg, "): ")) != NULL) {
        kind = msg + 2;
        klen = (size_t)(close - kind);
        msg = close + 3;
    } else if (msg[0] == ':' && msg[1] == ' ') {
        msg += 2;
    }
    char key[32];
    snprintf(key, sizeof key, "model[%zu]", i);
    yaml_node_t *at = exp_yaml_node(y, model->data.sequence.items.start[i]);
    if (klen == 0 || (strncmp(msg, kind, klen) == 0 && msg[klen] == ':')) /* "conv2d: ..." already */
        return exp_yaml_fail(y, at, key, rc, err, "%s", msg);
    return exp_yaml_fail(y, at, key, rc, err, "%.*s: %s", (int)klen, kind, msg);
}

/* The attacks: list of a file with evaluate: required, and evaluate.samples the default of every attack that
 * gives no samples: of its own (before exp_config_check_attacks). */
static int evaluate_attacks(exp_yaml *y, exp_config *cfg, nn_err *err) {
    yaml_node_t *root = exp_yaml_root(y), *list = exp_yaml_map_get(y, root, "attacks", NULL);
    if (!cfg->n_attacks)
        return exp_yaml_fail(y, list ? list : root, "attacks", NN_E_INVAL, err,
                             "required with evaluate: (a non-empty list: the battery run on every model)");
    for (size_t i = 0; i < cfg->n_attacks; i++)
        if (!exp_yaml_map_get(y, exp_yaml_node(y, list->data.sequence.items.start[i]), "samples", NULL))
            cfg->attacks[i].samples = cfg->evaluate.samples;
    return NN_OK;
}

/* An evaluate: experiment (no model:): no training keys, evaluate.models required, data: optional. */
static int validate_evaluate(exp_yaml *y, exp_config *cfg, nn_err *err) {
    static const char *const banned[] = {"model_file", "train", "defense", "teacher",
                                         "sweep",      "variants", "bss",  "boundary"};
    yaml_node_t *root = exp_yaml_root(y), *k = NULL, *ev = exp_yaml_map_get(y, root, "evaluate", NULL);
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (exp_yaml_map_get(y, root, banned[i], &k))
            return exp_yaml_fail(y, k, banned[i], NN_E_INVAL, err,
                                 "not allowed together with evaluate: in a file without model: (such a file "
                                 "attacks the saved models that evaluate.models names; it trains nothing)");
    if (!exp_yaml_map_get(y, ev, "models", NULL))
        return exp_yaml_fail(y, ev, "evaluate.models", NN_E_INVAL, err,
                             "required (model files or glob patterns) unless the file trains a model (model:)");
    if (exp_yaml_map_get(y, ev, "teachers", &k))
        return exp_yaml_fail(y, k, "evaluate.teachers", NN_E_INVAL, err,
                             "only for a file that trains models (model:): the teachers its runs train");
    yaml_node_t *data = exp_yaml_map_get(y, root, "data", &k);
    cfg->evaluate.has_data = data != NULL;
    cfg->evaluate.has_range = data && exp_yaml_map_get(y, data, "range", NULL);
    nn_err e;
    nn_err_clear(&e);
    if (data && nn_data_cfg_validate(&cfg->data, &e)) return exp_yaml_fail(y, k, "data", e.code, err, "%s", e.msg);
    int rc = evaluate_attacks(y, cfg, err);
    return rc ? rc : exp_config_check_attacks(y, cfg, err);
}

/* evaluate: in a training experiment (after the training checks, before the attacks'): the runs' models are
 * evaluated into <output>/evaluate/, so no variant of that name (model_file: beside model: is already an error). */
static int validate_train_evaluate(exp_yaml *y, exp_config *cfg, nn_err *err) {
    yaml_node_t *root = exp_yaml_root(y);
    yaml_node_t *vl = exp_yaml_map_get(y, root, "variants", NULL);
    for (size_t i = 0; i < cfg->n_variants; i++)
        if (!strcmp(cfg->variants[i].name, "evaluate")) {
            char key[32];
            snprintf(key, sizeof key, "variants[%zu]", i);
            return exp_yaml_fail(y, exp_yaml_node(y, vl->data.sequence.items.start[i]), key, NN_E_INVAL, err,
                                 "name 'evaluate' is the folder of the evaluate: results; choose another");
        }
    return evaluate_attacks(y, cfg, err);
}

/* Runs the modules' validators; their messages get the path and the mark of the section's key. */
static int validate(exp_yaml *y, exp_config *cfg, nn_err *err) {
    nn_err e;
    nn_err_clear(&e);
    yaml_node_t *root = exp_yaml_root(y), *dk, *tk, *ok = NULL, *sk = NULL;
    cfg->evaluate.trains = cfg->evaluate.enabled && exp_yaml_map_get(y, root, "model", NULL) != NULL;
    if (cfg->evaluate.enabled && !cfg->evaluate.trains) return validate_evaluate(y, cfg, err);
    if (!exp_yaml_map_get(y, root, "data", &dk)) return exp_yaml_fail(y, root, "data", NN_E_INVAL, err, "required");
    yaml_node_t *train = exp_yaml_map_get(y, root, "train", &tk);
    if (train) {
        exp_yaml_map_get(y, train, "optimizer", &ok);
        exp_yaml_map_get(y, train, "schedule", &sk);
    }
    if (nn_data_cfg_validate(&cfg->data, &e)) return exp_yaml_fail(y, dk, "data", e.code, err, "%s", e.msg);
    yaml_node_t *mf = exp_yaml_map_get(y, root, "model_file", NULL);
    if (!cfg->n_layers && !cfg->model_file[0])
        return exp_yaml_fail(y, root, "model", NN_E_INVAL, err, "required (a list of layers; or model_file: a saved model)");
    if (cfg->n_layers && cfg->model_file[0])
        return exp_yaml_fail(y, mf, "model_file", NN_E_INVAL, err, "give either model: (to train) or model_file:, not both");
    int rc = cfg->n_layers ? validate_model(y, cfg, err) : NN_OK;
    if (rc) return rc;
    if (nn_optim_cfg_validate(&cfg->train.optim, &e)) {
        yaml_node_t *at = ok ? ok : sk ? sk : tk;
        return exp_yaml_fail(y, at,
                             ok   ? "train.optimizer"
                             : sk ? "train.schedule"
                                  : "train",
                             e.code, err, "%s", e.msg);
    }
    if (nn_train_cfg_validate(&cfg->train, &e))
        return exp_yaml_fail(y, tk, "train", e.code, err, "%s", e.msg);
    if ((rc = exp_config_check_defense(y, cfg, err))) return rc;
    if (cfg->evaluate.enabled && (rc = validate_train_evaluate(y, cfg, err))) return rc;
    return exp_config_check_attacks(y, cfg, err);
}

int exp_config_has_teacher(const exp_config *cfg) {
    int k = cfg->defense.kind;
    return cfg->teacher.present || k == EXP_DEFENSE_DISTILLATION || k == EXP_DEFENSE_KD || k == EXP_DEFENSE_BSS;
}

int exp_config_attacks_teacher(const exp_config *cfg) {
    return cfg->n_attacks && exp_config_has_teacher(cfg) && cfg->teacher.attack && !cfg->teacher.n_ensemble;
}

void exp_config_default(exp_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->data = nn_data_cfg_default();
    cfg->train = nn_train_cfg_default();
    cfg->teacher.attack = 1;
    cfg->boundary.samples = 500;
    cfg->boundary.cfg = atk_boundary_cfg_default();
}

int exp_config_parse(const char *text, size_t len, const char *path, exp_config *cfg, nn_err *err) {
    exp_yaml y = {0};
    if (!path) path = "<string>";
    exp_config_default(cfg);
    if (strlen(path) >= sizeof cfg->path)
        return NN_FAIL(err, NN_E_INVAL, "%s: path too long (at most %zu bytes)", path, sizeof cfg->path - 1);
    strcpy(cfg->path, path);
    int rc = exp_yaml_load(&y, text, len, cfg->path, err);
    if (rc) goto fail;
    yaml_node_t *root = exp_yaml_root(&y);
    if (root->type != YAML_MAPPING_NODE) {
        rc = exp_yaml_fail(&y, root, NULL, NN_E_INVAL, err,
                           "the top level must be a mapping (with data: and model:), got %s",
                           exp_yaml_kind(root));
        goto fail;
    }
    rc = exp_yaml_apply(&y, root, "", &top_table, EXP_ALL_FIELDS, NULL, cfg, err);
    if (!rc) rc = fill_defaults(&y, cfg, err);
    if (!rc) rc = check_utf8(&y, cfg, err);
    if (!rc) rc = validate(&y, cfg, err);
fail:
    exp_yaml_free(&y);
    return rc;
}

int exp_config_load(const char *path, exp_config *cfg, nn_err *err) {
    char *text = NULL;
    size_t len = 0;
    exp_config_default(cfg);
    int rc = nn_io_read_all(path, &text, &len, err);
    if (!rc) rc = exp_config_parse(text, len, path, cfg, err);
    free(text);
    return rc;
}
