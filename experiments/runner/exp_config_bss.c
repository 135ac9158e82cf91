/* exp_config_bss.c - the `bss:` block of experiment files (exp_config.h, exp_bss.h):
 *   bss: {samples: 1000, eta: 0.3, steps: 10, max_base: 64, policy: sample, seed: 0, grid: 16}
 * Every key is optional; `bss:` with no value (or {}) generates with the defaults. */
#include <string.h>

#include "exp_config.h"
#include "exp_yaml.h"

int exp_config_set_bss(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err);

static const exp_choice policy_choices[] = {{"sample", ATK_BSS_SAMPLE},
                                            {"second", ATK_BSS_SECOND},
                                            {"uniform", ATK_BSS_UNIFORM},
                                            {"all", ATK_BSS_ALL},
                                            {NULL, 0}};

#define BK(k, t, m) EXP_KEY(k, t, exp_bss_spec, m)
static const exp_field bss_fields[] = {
    {BK("samples", EXP_F_SIZE, samples)},
    {BK("eta", EXP_F_FLOAT, cfg.eta), EXP_GT(0)},
    {BK("steps", EXP_F_INT, cfg.steps), EXP_IN(1, 1000)},
    {BK("max_base", EXP_F_SIZE, cfg.max_base)},   /* 0 (default): every correct sample */
    {BK("policy", EXP_F_ENUM, cfg.policy), .choices = policy_choices},
    {BK("seed", EXP_F_U64, cfg.seed)},
    {BK("grid", EXP_F_SIZE, grid), EXP_LE(64)},
};
static const exp_table bss_table = EXP_TABLE(bss_fields);
const exp_table *exp_config_bss_table(void) { return &bss_table; } /* for exp_config_canon.c */

/* Defaults (1000 samples, atk_bss_cfg_default(), grid 16), then the mapping v (or nothing when v is null).
 * The range cfg.lo/hi stays [0, 1] here: whoever generates sets it to the data's range. */
int exp_config_set_bss(exp_yaml *y, yaml_node_t *v, const char *key, void *base, nn_err *err) {
    exp_bss_spec *s = &((exp_config *)base)->bss;
    memset(s, 0, sizeof *s);
    s->samples = 1000;
    s->cfg = atk_bss_cfg_default();
    s->cfg.max_base = 0;
    s->grid = 16;
    s->enabled = 1;
    if (v->type == YAML_SCALAR_NODE && exp_yaml_is_null(v)) return NN_OK;
    if (v->type != YAML_MAPPING_NODE)
        return exp_yaml_fail(y, v, key, NN_E_INVAL, err,
                             "expected a mapping such as {samples: 1000, eta: 0.3}, got %s",
                             exp_yaml_kind(v));
    return exp_yaml_apply(y, v, key, &bss_table, EXP_ALL_FIELDS, NULL, s, err);
}
