/* exp_config_attack.c - the `attacks:` list of experiment files (schema in exp_config.h). */
#include <stdio.h>
#include <string.h>

#include "exp_config.h"
#include "exp_yaml.h"

/* Which keys each attack accepts (exp_field.bit). */
enum {
    A_EPS = 1u << 0,
    A_STEP = 1u << 1, /* step, iters, restarts, random_start */
    A_LOSS = 1u << 2, /* loss, temperature, kappa */
    A_TARGETED = 1u << 3,
    A_JSMA = 1u << 4, /* gamma, on, temperature */
    A_CW = 1u << 5,   /* iters, search_steps, lr, c0, abort_early, kappa */
    A_DF = 1u << 6,   /* iters, overshoot */
    A_ITERS = 1u << 7,
    A_T = 1u << 8,
    A_KAPPA = 1u << 9,
};

static unsigned kind_mask(atk_kind k) {
    switch (k) {
    case ATK_FGSM: return A_EPS | A_LOSS | A_T | A_KAPPA | A_TARGETED;
    case ATK_BIM:
    case ATK_PGD: return A_EPS | A_STEP | A_ITERS | A_LOSS | A_T | A_KAPPA | A_TARGETED;
    case ATK_JSMA: return A_EPS | A_JSMA | A_T;
    case ATK_CW: return A_EPS | A_CW | A_ITERS | A_KAPPA | A_TARGETED;
    case ATK_DEEPFOOL: return A_EPS | A_DF | A_ITERS;
    default: return 0;
    }
}

/* eps: a number or a list of at most EXP_MAX_EPS positive numbers. */
static int set_eps(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_attack *a = base;
    char k[300];
    if (v->type == YAML_SCALAR_NODE) {
        a->n_eps = 1;
        int rc = exp_yaml_get_float(y, v, key, &a->eps[0], err);
        if (!rc && !(a->eps[0] > 0)) rc = exp_yaml_fail(y, v, key, NN_E_INVAL, err, "must be > 0, got %g", a->eps[0]);
        return rc;
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a number or a list such as [0.1, 0.3], got %s",
                             exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > EXP_MAX_EPS)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected 1 to %d values, got %zu", EXP_MAX_EPS, n);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = exp_yaml_node(y, v->data.sequence.items.start[i]);
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        int rc = exp_yaml_get_float(y, e, k, &a->eps[i], err);
        if (rc) return rc;
        if (!(a->eps[i] > 0)) return exp_yaml_fail(y, e, k, NN_E_INVAL, err, "must be > 0, got %g", a->eps[i]);
    }
    a->n_eps = n;
    return NN_OK;
}

static const exp_choice loss_choices[] = {{"ce", ATK_LOSS_CE}, {"margin", ATK_LOSS_MARGIN}, {NULL, 0}};
static const exp_choice on_choices[] = {{"softmax", ATK_JSMA_SOFTMAX}, {"logits", ATK_JSMA_LOGITS}, {NULL, 0}};
static const exp_choice target_choices[] = {
    {"all", EXP_TARGETS_ALL}, {"next", EXP_TARGETS_NEXT}, {"random", EXP_TARGETS_RANDOM}, {NULL, 0}};

#define AK(k, t, m) EXP_KEY(k, t, exp_attack, cfg.m)
static const exp_field attack_fields[] = {
    {.key = "type", .type = EXP_F_SKIP},
    {EXP_STR("name", exp_attack, name)},
    {EXP_KEY("samples", EXP_F_SIZE, exp_attack, samples), EXP_GE(1)},
    {EXP_KEY("grid", EXP_F_SIZE, exp_attack, grid), EXP_LE(64)},
    {AK("seed", EXP_F_U64, seed)},
    {.key = "eps", .type = EXP_F_CUSTOM, .set = set_eps, .bit = A_EPS},
    {AK("step", EXP_F_FLOAT, step), EXP_GT(0), .bit = A_STEP},
    {AK("iters", EXP_F_INT, iters), EXP_IN(1, 1000000), .bit = A_ITERS},
    {AK("restarts", EXP_F_INT, restarts), EXP_IN(1, 1000), .bit = A_STEP},
    {AK("random_start", EXP_F_BOOL, random_start), .bit = A_STEP},
    {AK("loss", EXP_F_ENUM, loss), .choices = loss_choices, .bit = A_LOSS},
    {AK("temperature", EXP_F_FLOAT, temperature), EXP_GT(0), .bit = A_T},
    {AK("kappa", EXP_F_FLOAT, kappa), EXP_GE(0), .bit = A_KAPPA},
    {AK("targeted", EXP_F_BOOL, targeted), .bit = A_TARGETED},
    {EXP_KEY("targets", EXP_F_ENUM, exp_attack, targets), .choices = target_choices, .bit = A_TARGETED | A_JSMA},
    {AK("gamma", EXP_F_FLOAT, gamma), EXP_IN(0, 1), .bit = A_JSMA},
    {AK("on", EXP_F_ENUM, jsma_on), .choices = on_choices, .bit = A_JSMA},
    {AK("search_steps", EXP_F_INT, search_steps), EXP_IN(1, 100), .bit = A_CW},
    {AK("lr", EXP_F_FLOAT, lr), EXP_GT(0), .bit = A_CW},
    {AK("c0", EXP_F_FLOAT, c0), EXP_GT(0), .bit = A_CW},
    {AK("abort_early", EXP_F_BOOL, abort_early), .bit = A_CW},
    {AK("overshoot", EXP_F_FLOAT, overshoot), EXP_IN_HALF(0, 10), .bit = A_DF},
};
static const exp_table attack_table = EXP_TABLE(attack_fields);
/* For exp_config_canon.c: the table, and the keys (exp_field.bit) attack a accepts. */
const exp_table *exp_config_attack_table(void) { return &attack_table; }
unsigned exp_config_attack_mask(const exp_attack *a) { return kind_mask(a->cfg.kind); }

/* Default eps grid of a bounded attack: Madry's MNIST budget for L-inf, 2.0 for L2. */
static void default_eps(exp_attack *a) {
    if (a->n_eps || !exp_attack_bounded(a)) return;
    a->eps[0] = a->cfg.norm == ATK_L2 ? 2.0f : 0.3f;
    a->n_eps = 1;
}

static int parse_attack(exp_yaml *y, yaml_node_t *v, const char *key, exp_attack *out, nn_err *err) {
    static const char kinds[] = "fgsm, fgm, bim, pgd, pgd-l2, jsma, cw, deepfool";
    char tkey[64], kind[32], what[64];
    if (v->type != YAML_MAPPING_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a mapping such as {type: pgd, eps: 0.3}, got %s",
                             exp_yaml_kind(v));
    exp_yaml_key(tkey, sizeof tkey, key, "type");
    yaml_node_t *t = exp_yaml_map_get(y, v, "type", NULL);
    if (!t) return exp_yaml_fail(y, v, tkey, NN_E_INVAL, err, "required (one of: %s)", kinds);
    int rc = exp_yaml_get_str(y, t, tkey, kind, sizeof kind, err);
    if (rc) return rc;
    atk_kind k;
    atk_norm norm;
    int l2 = strcmp(kind, "pgd-l2") == 0 || strcmp(kind, "bim-l2") == 0;
    if (l2) kind[3] = '\0';
    if (atk_kind_parse(kind, &k, &norm) != 0)
        return exp_yaml_fail(y, t, tkey, NN_E_INVAL, err, "unknown attack '%s' (expected one of: %s)", kind, kinds);
    *out = exp_attack_default(k, l2 ? ATK_L2 : norm);
    snprintf(what, sizeof what, "attack type '%s%s'", kind, l2 ? "-l2" : "");
    if ((rc = exp_yaml_apply(y, v, key, &attack_table, kind_mask(k), what, out, err))) return rc;
    if (!out->name[0]) snprintf(out->name, sizeof out->name, "%s", atk_name(&out->cfg));
    default_eps(out);
    return NN_OK;
}

int exp_config_set_attacks(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_config *cfg = base;
    char k[64];
    if (v->type != YAML_SEQUENCE_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "expected a list of attacks, got %s", exp_yaml_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > EXP_MAX_ATTACKS)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err, "at most %d attacks, got %zu", EXP_MAX_ATTACKS, n);
    for (size_t i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        yaml_node_t *item = exp_yaml_node(y, v->data.sequence.items.start[i]);
        int rc = parse_attack(y, item, k, &cfg->attacks[i], err);
        if (rc) return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cfg->attacks[j].name, cfg->attacks[i].name))
                return exp_yaml_fail(y, item, k, NN_E_INVAL, err,
                                     "a second attack named '%s' (attacks[%zu]); give each a distinct name:",
                                     cfg->attacks[i].name, j);
    }
    cfg->n_attacks = n;
    return NN_OK;
}

int exp_config_check_attacks(exp_yaml *y, exp_config *cfg, nn_err *err) {
    yaml_node_t *list = exp_yaml_map_get(y, exp_yaml_root(y), "attacks", NULL);
    for (size_t i = 0; i < cfg->n_attacks; i++) {
        exp_attack *a = &cfg->attacks[i];
        a->cfg.lo = cfg->data.lo;
        a->cfg.hi = cfg->data.hi;
        if (!exp_attack_bounded(a)) a->cfg.eps = 1; /* unused: min-distortion attacks */
        nn_err e;
        nn_err_clear(&e);
        int rc = atk_cfg_validate(&a->cfg, &e);
        if (!rc && strchr(a->name, '/')) rc = NN_FAIL(&e, NN_E_INVAL, "name '%s' must not contain '/'", a->name);
        if (rc) {
            char k[64];
            snprintf(k, sizeof k, "attacks[%zu]", i);
            return exp_yaml_fail(y, exp_yaml_node(y, list->data.sequence.items.start[i]), k, rc, err, "%s", e.msg);
        }
    }
    return NN_OK;
}
