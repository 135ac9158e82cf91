/* test_yaml.c - the experiment-file parser: a full file onto the structs, defaults, and one error per
 * kind of mistake with its exact "file:line:col: key: problem" prefix.
 * Every line:column below was counted by hand from the YAML text next to it (1-based, the first
 * character of the offending node); the comments show the count where it is not obvious. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include "test_util.h"

#include "exp_config.h"
#include "exp_yaml.h"
#include "nn_optim.h"

static const char FULL[] =
    "name: quick\n"
    "output: out/quick\n"
    "threads: 2\n"
    "data:\n"
    "  name: fashion-mnist\n"
    "  range: [-0.5, 0.5]\n"
    "  val_size: 5000\n"
    "  shuffle: yes\n"
    "  seed: 7\n"
    "  subset: 1000\n"
    "  exclude_classes: [3, 7]\n"
    "  test_subset: 500\n"
    "model:\n"
    "  - {type: conv2d, filters: 32, kernel: 3, stride: 2, pad: 1, init: glorot}\n"
    "  - {type: relu}\n"
    "  - {type: maxpool, kernel: 2}\n"
    "  - {type: flatten}\n"
    "  - type: dense   # block style works too\n"
    "    units: 200\n"
    "  - {type: dropout, rate: 0.25}\n"
    "  - {type: dense, units: 10}\n"
    "train:\n"
    "  epochs: 3\n"
    "  batch_size: 64\n"
    "  temperature: 20\n"
    "  seed: 18446744073709551615\n"
    "  jitter: 2\n"
    "  optimizer: {type: adam, lr: 0.001, momentum: 0.9, nesterov: true, weight_decay: 5e-4,\n"
    "              decay: 1e-6, beta1: 0.8, beta2: 0.99, eps: 1e-7}\n"
    "  schedule: {milestones: [40, 60], gamma: 0.5}\n";

static void test_full(void **state) {
    (void)state;
    exp_config c;
    nn_err err = {0};
    int rc = exp_config_parse(FULL, strlen(FULL), "dir/full.yaml", &c, &err);
    if (rc) fail_msg("unexpected error: %s", err.msg);
    assert_string_equal(c.path, "dir/full.yaml");
    assert_string_equal(c.name, "quick");
    assert_string_equal(c.output, "out/quick");
    assert_int_equal(c.threads, 2);
    assert_string_equal(c.data.name, "fashion-mnist");
    assert_true(c.data.lo == (float)-0.5 && c.data.hi == (float)0.5);
    assert_int_equal(c.data.val_size, 5000);
    assert_int_equal(c.data.shuffle, 1);
    assert_true(c.data.seed == 7);
    assert_int_equal(c.data.subset, 1000);
    assert_int_equal(c.data.exclude, (1u << 3) | (1u << 7));
    assert_int_equal(c.data.test_subset, 500);

    assert_int_equal(c.n_layers, 7);
    const nn_layer_cfg *l = c.layers;
    assert_string_equal(l[0].kind, "conv2d");
    assert_int_equal(l[0].filters, 32);
    assert_int_equal(l[0].kernel, 3);
    assert_int_equal(l[0].stride, 2);
    assert_int_equal(l[0].pad, 1);
    assert_int_equal(l[0].init, NN_INIT_GLOROT);
    assert_string_equal(l[1].kind, "relu");
    assert_string_equal(l[2].kind, "maxpool");
    assert_int_equal(l[2].kernel, 2);
    /* untouched fields keep nn_layer_cfg_default's values (maxpool stride: "same as kernel") */
    nn_layer_cfg pool = nn_layer_cfg_default("maxpool");
    assert_int_equal(l[2].stride, pool.stride);
    assert_string_equal(l[3].kind, "flatten");
    assert_string_equal(l[4].kind, "dense");
    assert_int_equal(l[4].units, 200);
    assert_int_equal(l[4].init, nn_layer_cfg_default("dense").init);
    assert_string_equal(l[5].kind, "dropout");
    assert_true(l[5].rate == (float)0.25);
    assert_int_equal(l[6].units, 10);

    const nn_train_cfg *t = &c.train;
    assert_int_equal(t->epochs, 3);
    assert_int_equal(t->batch_size, 64);
    assert_true(t->temperature == 20.0f);
    assert_true(t->seed == UINT64_MAX);
    assert_int_equal(t->jitter, 2);
    assert_null(t->loss);
    const nn_optim_cfg *o = &t->optim;
    assert_int_equal(o->kind, NN_OPT_ADAM);
    assert_true(o->lr == (float)0.001 && o->momentum == (float)0.9 && o->nesterov == 1);
    assert_true(o->weight_decay == (float)5e-4 && o->decay == (float)1e-6);
    assert_true(o->beta1 == (float)0.8 && o->beta2 == (float)0.99 && o->eps == (float)1e-7);
    assert_int_equal(o->n_milestones, 2);
    assert_int_equal(o->milestones[0], 40);
    assert_int_equal(o->milestones[1], 60);
    assert_true(o->gamma == (float)0.5);
}

/* Minimal file: everything else comes from the modules' defaults; name and output from the path. */
static void test_defaults(void **state) {
    (void)state;
    static const char y[] = "data: {name: mnist}\nmodel: [{type: flatten}, {type: dense, units: 10}]\n";
    exp_config c;
    nn_err err = {0};
    int rc = exp_config_parse(y, strlen(y), "experiments/quickstart.yaml", &c, &err);
    if (rc) fail_msg("unexpected error: %s", err.msg);
    assert_string_equal(c.name, "quickstart");
    assert_string_equal(c.output, "results/quickstart");
    assert_int_equal(c.threads, 0);
    nn_data_cfg dd = nn_data_cfg_default();
    assert_true(c.data.lo == dd.lo && c.data.hi == dd.hi && c.data.val_size == dd.val_size);
    assert_true(c.data.shuffle == dd.shuffle && c.data.seed == dd.seed && c.data.exclude == dd.exclude);
    nn_train_cfg td = nn_train_cfg_default();
    assert_int_equal(c.train.epochs, td.epochs);
    assert_int_equal(c.train.batch_size, td.batch_size);
    assert_true(c.train.temperature == td.temperature);
    assert_int_equal(c.train.optim.kind, td.optim.kind);
    assert_true(c.train.optim.lr == td.optim.lr && c.train.optim.gamma == td.optim.gamma);
    assert_int_equal(c.n_layers, 2);
    assert_int_equal(c.layers[1].units, 10);
    /* .yml and no extension also give the base name */
    rc = exp_config_parse(y, strlen(y), "a.b/x.yml", &c, &err);
    assert_int_equal(rc, NN_OK);
    assert_string_equal(c.name, "x");
    rc = exp_config_parse(y, strlen(y), "plain", &c, &err);
    assert_int_equal(rc, NN_OK);
    assert_string_equal(c.name, "plain");
}

/* Parses text as "t.yaml" and checks that it fails with a message containing want. */
static void expect_error(const char *text, const char *want) {
    exp_config c;
    nn_err err = {0};
    int rc = exp_config_parse(text, strlen(text), "t.yaml", &c, &err);
    if (rc == NN_OK) fail_msg("parsed without error, expected \"%s\"\n--- yaml:\n%s", want, text);
    assert_int_equal(rc, err.code);
    if (!strstr(err.msg, want)) fail_msg("message\n  \"%s\"\nlacks\n  \"%s\"", err.msg, want);
}

#define HEAD "data: {name: mnist}\nmodel: [{type: relu}]\n" /* two valid lines; line 3 comes next */

static void test_errors_types(void **state) {
    (void)state;
    expect_error(HEAD "train:\n  epochs: ten\n",
                 "t.yaml:4:11: train.epochs: expected a positive integer, got 'ten'");
    /* "train: {batch_size: -5}": '{' is column 8, the key 9..18, the value at 21 */
    expect_error(HEAD "train: {batch_size: -5}\n",
                 "t.yaml:3:21: train.batch_size: expected a positive integer, got '-5'");
    /* "data: {name: mnist, val_size: 1.5}": val_size at 21..28, value at 31 */
    expect_error("data: {name: mnist, val_size: 1.5}\nmodel: [{type: relu}]\n",
                 "t.yaml:1:31: data.val_size: expected a non-negative integer, got '1.5'");
    expect_error("data: {name: mnist, seed: 18446744073709551616}\nmodel: [{type: relu}]\n",
                 "t.yaml:1:27: data.seed: expected a non-negative integer <= 18446744073709551615, "
                 "got '18446744073709551616'");
    expect_error("threads: 2147483648\n" HEAD,
                 "t.yaml:1:10: threads: expected a non-negative integer <= 2147483647, got '2147483648'");
    expect_error(HEAD "train:\n  epochs: \"10\"\n",
                 "t.yaml:4:11: train.epochs: expected a positive integer, got the quoted string '10'");
    expect_error(HEAD "train: {epochs: 010}\n",
                 "t.yaml:3:17: train.epochs: expected a positive integer, got '010'");
    expect_error(HEAD "train: {jitter: -1}\n",
                 "t.yaml:3:17: train.jitter: expected a non-negative integer, got '-1'");
    expect_error(HEAD "train:\n  optimizer:\n    lr: .inf\n",
                 "t.yaml:5:9: train.optimizer.lr: expected a finite number, got '.inf'");
    expect_error(HEAD "train:\n  optimizer:\n    lr: 1e400\n",
                 "t.yaml:5:9: train.optimizer.lr: expected a finite number, got '1e400'");
    expect_error(HEAD "train:\n  optimizer:\n    lr: 1e39\n",
                 "t.yaml:5:9: train.optimizer.lr: expected a number within float range, got '1e39'");
    expect_error(HEAD "train:\n  temperature: nan\n",
                 "t.yaml:4:16: train.temperature: expected a finite number, got 'nan'");
    expect_error("data:\n  name: mnist\n  shuffle: maybe\nmodel: [{type: relu}]\n",
                 "t.yaml:3:12: data.shuffle: expected true or false, got 'maybe'");
    expect_error(HEAD "train:\n  optimizer: {type: rmsprop}\n",
                 "t.yaml:4:21: train.optimizer.type: expected one of: sgd, adam; got 'rmsprop'");
    expect_error("data: {name: mnist}\nmodel:\n  - {type: dense, units: 3, init: xavier}\n",
                 "t.yaml:3:35: model[0].init: expected one of: he, glorot; got 'xavier'");
    expect_error(
        "data:\nmodel: [{type: relu}]\n",
        "t.yaml:1:6: data: expected a mapping, got nothing"); /* the empty value sits right after "data:" */
    expect_error("data: {name: mnist}\nmodel: {type: relu}\n",
                 "t.yaml:2:8: model: expected a list of layers, got a mapping");
    expect_error(HEAD "? [a, b]\n: 1\n", "t.yaml:3:3: expected a plain key, got a list");
}

static void test_errors_ranges(void **state) {
    (void)state;
    /* "  - {type: maxpool, kernel: 0}": '{' 5, type 6..9, maxpool 12..18, kernel 21..26, value 29 */
    expect_error("data: {name: mnist}\nmodel:\n  - {type: conv2d, filters: 4, kernel: 3}\n  - {type: relu}\n"
                 "  - {type: maxpool, kernel: 0}\n",
                 "t.yaml:5:29: model[2].kernel: must be >= 1, got 0");
    expect_error(HEAD "train:\n  optimizer: {lr: 0}\n",
                 "t.yaml:4:19: train.optimizer.lr: must be > 0, got 0");
    expect_error(HEAD "train:\n  optimizer:\n    momentum: 1\n",
                 "t.yaml:5:15: train.optimizer.momentum: must be in [0, 1), got 1");
    expect_error("data: {name: mnist}\nmodel: [{type: dropout, rate: 1}]\n",
                 "t.yaml:2:31: model[0].rate: must be in [0, 1), got 1");
    /* exclude_classes at 21..35, '[' 38, first item 39, second 42 */
    expect_error("data: {name: mnist, exclude_classes: [3, 3]}\nmodel: [{type: relu}]\n",
                 "t.yaml:1:42: data.exclude_classes[1]: class 3 is listed twice");
    expect_error("data: {name: mnist, exclude_classes: [10]}\nmodel: [{type: relu}]\n",
                 "t.yaml:1:39: data.exclude_classes[0]: must be a class in [0, 9], got 10");
    expect_error("data: {name: mnist, exclude_classes: 3}\nmodel: [{type: relu}]\n",
                 "t.yaml:1:38: data.exclude_classes: expected a list of class indices");
    /* range at 21..25, '[' at 28 */
    expect_error("data: {name: mnist, range: [1, 0]}\nmodel: [{type: relu}]\n",
                 "t.yaml:1:28: data.range: lo must be < hi, got [1, 0]");
    expect_error("data: {name: mnist, range: [0]}\nmodel: [{type: relu}]\n",
                 "t.yaml:1:28: data.range: expected a list of two numbers [lo, hi]");
    expect_error("data: {name: mnist, range: [0, x]}\nmodel: [{type: relu}]\n",
                 "t.yaml:1:32: data.range[1]: expected a finite number, got 'x'");
    /* "  schedule: {milestones: [60, 40]}": '[' 26, 60 at 27, 40 at 31 */
    expect_error(
        HEAD "train:\n  schedule: {milestones: [60, 40]}\n",
        "t.yaml:4:31: train.schedule.milestones[1]: must be greater than the previous milestone 60, got 40");
    expect_error(HEAD "train:\n  schedule: {milestones: [1, 2, 3, 4, 5, 6, 7, 8, 9]}\n",
                 "t.yaml:4:26: train.schedule.milestones: at most 8 milestones, got 9");
    expect_error(HEAD "train: {jitter: 65}\n", "t.yaml:3:17: train.jitter: must be in [0, 64], got 65");
    expect_error("threads: 1025\n" HEAD, "t.yaml:1:10: threads: must be in [0, 1024], got 1025");
    { /* the bounds themselves are accepted */
        static const char y[] = "threads: 1024\n" HEAD "train: {jitter: 64}\n";
        exp_config c;
        nn_err err = {0};
        int rc = exp_config_parse(y, strlen(y), "t.yaml", &c, &err);
        if (rc) fail_msg("unexpected error: %s", err.msg);
        assert_int_equal(c.threads, 1024);
        assert_int_equal(c.train.jitter, 64);
    }
    char longname[300] = "name: ";
    memset(longname + 6, 'a', 200);
    strcpy(longname + 206, "\n" HEAD);
    expect_error(longname, "t.yaml:1:7: name: too long (at most 127 bytes)");
}

static void test_errors_keys(void **state) {
    (void)state;
    expect_error(
        "name: x\ndata:\n  nmae: mnist\nmodel: [{type: relu}]\n",
        "t.yaml:3:3: data.nmae: unknown key (expected one of: name, range, val_size, shuffle, seed, subset, "
        "exclude_classes, test_subset)");
    expect_error(
        HEAD "trian: {epochs: 1}\n",
        "t.yaml:3:1: trian: unknown key (expected one of: name, output, threads, data, model, model_file, train, teacher, defense, attacks, sweep, variants, bss, boundary, evaluate)");
    expect_error(HEAD "train:\n  optimizer: {type: sgd, momentun: 0.9}\n",
                 "t.yaml:4:26: train.optimizer.momentun: unknown key (expected one of: type, lr, momentum,");
    expect_error("model: [{type: relu}]\ndata:\n  shuffle: true\n", "t.yaml:3:3: data.name: required");
    expect_error("data: {name: mnist}\n", "t.yaml:1:1: model: required");
    expect_error("model: [{type: relu}]\n", "t.yaml:1:1: data: required");
    expect_error(HEAD "train:\n  epochs: 2\n  epochs: 3\n",
                 "t.yaml:5:3: train.epochs: duplicate key (first given at 4:3)");
    expect_error("data: {name: mnist}\nmodel: []\n", "t.yaml:2:8: model: must list at least one layer");
}

/* The attacks: list: values land in the attack configs (data range included), defaults fill the rest. */
static void test_attacks(void **state) {
    (void)state;
    exp_config c;
    nn_err err;
    nn_err_clear(&err);
    static const char yaml[] = "data: {name: mnist, range: [-0.5, 0.5]}\nmodel: [{type: flatten}, {type: dense, units: 10}]\n"
                               "attacks:\n"
                               "  - {type: fgsm, eps: [0.1, 0.3]}\n"
                               "  - {type: pgd-l2, name: pgd2, eps: 1.5, iters: 7, step: 0.5, restarts: 3, loss: margin, kappa: 2}\n"
                               "  - {type: jsma, on: logits, gamma: 0.1, samples: 100, targets: next}\n"
                               "  - {type: cw, targeted: true, iters: 100, search_steps: 5, lr: 0.05, c0: 0.01, eps: [1, 2]}\n"
                               "  - {type: deepfool, overshoot: 0.05, grid: 0}\n";
    if (exp_config_parse(yaml, sizeof yaml - 1, "t.yaml", &c, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.n_attacks, 5);
    exp_attack *a = c.attacks;
    assert_string_equal(a[0].name, "fgsm");
    assert_int_equal(a[0].n_eps, 2);
    assert_true(a[0].eps[1] == 0.3f && a[0].cfg.lo == -0.5f && a[0].cfg.hi == 0.5f && a[0].samples == 1000);
    assert_string_equal(a[1].name, "pgd2");
    assert_true(a[1].cfg.kind == ATK_PGD && a[1].cfg.norm == ATK_L2 && a[1].cfg.loss == ATK_LOSS_MARGIN);
    assert_true(a[1].cfg.iters == 7 && a[1].cfg.restarts == 3 && a[1].cfg.step == 0.5f && a[1].cfg.kappa == 2.0f);
    assert_true(a[2].cfg.kind == ATK_JSMA && a[2].cfg.targeted && a[2].cfg.jsma_on == ATK_JSMA_LOGITS);
    assert_true(a[2].targets == EXP_TARGETS_NEXT && a[2].samples == 100 && a[2].cfg.gamma == 0.1f);
    assert_true(a[3].cfg.targeted && a[3].cfg.search_steps == 5 && a[3].cfg.c0 == 0.01f && a[3].n_eps == 2);
    assert_true(a[4].cfg.kind == ATK_DEEPFOOL && a[4].cfg.overshoot == 0.05f && a[4].grid == 0);
}

static void test_errors_attacks(void **state) {
    (void)state;
    expect_error(HEAD "attacks:\n  - {type: pdg}\n",
                 "t.yaml:4:12: attacks[0].type: unknown attack 'pdg' (expected one of: fgsm, fgm,");
    expect_error(HEAD "attacks:\n  - {type: fgsm, gamma: 0.1}\n",
                 "t.yaml:4:18: attacks[0].gamma: not accepted by attack type 'fgsm'");
    expect_error(HEAD "attacks:\n  - {type: pgd, eps: [0.1, 0]}\n", "t.yaml:4:28: attacks[0].eps[1]: must be > 0");
    expect_error(HEAD "attacks:\n  - {type: pgd, loss: xent}\n", "t.yaml:4:23: attacks[0].loss: expected one of: ce, margin");
    expect_error(HEAD "attacks:\n  - {type: fgsm}\n  - {type: fgsm}\n",
                 "t.yaml:5:5: attacks[1]: a second attack named 'fgsm'");
    expect_error(HEAD "attacks:\n  - {type: deepfool, targeted: true}\n", "attacks[0].targeted: not accepted by attack type 'deepfool'");
    expect_error(HEAD "attacks: {type: fgsm}\n", "t.yaml:3:10: attacks: expected a list of attacks");
    expect_error(HEAD "model_file: m.safetensors\n", "t.yaml:3:13: model_file: give either model: (to train)");
    exp_config c;
    nn_err err = {0};
    static const char mf[] = "data: {name: mnist}\nmodel_file: m.safetensors\nattacks: [{type: deepfool}]\n";
    if (exp_config_parse(mf, sizeof mf - 1, "t.yaml", &c, &err)) fail_msg("%s", err.msg);
    assert_string_equal(c.model_file, "m.safetensors");
    assert_int_equal(c.n_layers, 0);
}

/* defense: and teacher: land in their structs; the teacher defaults to the student's model and train. */
static void test_defense(void **state) {
    (void)state;
    exp_config c;
    nn_err err = {0};
    static const char dd[] = "data: {name: mnist}\nmodel: [{type: flatten}, {type: dense, units: 10}]\n"
                             "train: {epochs: 3, temperature: 1}\n"
                             "defense: {type: distillation, temperature: 50, common_init: true}\n";
    if (exp_config_parse(dd, sizeof dd - 1, "t.yaml", &c, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.defense.kind, EXP_DEFENSE_DISTILLATION);
    assert_true(c.defense.kd.temperature == 50.0f && c.defense.kd.alpha == 1.0f && !c.defense.kd.t2);
    assert_true(c.defense.common_init);
    assert_int_equal(c.teacher.n_layers, 2);
    assert_int_equal(c.teacher.train.epochs, 3);
    assert_true(c.teacher.train.temperature == 50.0f && c.train.temperature == 50.0f);
    static const char kd[] = "data: {name: mnist}\nmodel: [{type: flatten}, {type: dense, units: 10}]\n"
                             "teacher: {model_file: t.safetensors}\n"
                             "defense: {type: kd, temperature: 20, alpha: 0.7, t2: false, bias: [{class: 3, delta: 3.5}]}\n";
    if (exp_config_parse(kd, sizeof kd - 1, "t.yaml", &c, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.defense.kind, EXP_DEFENSE_KD);
    assert_true(c.defense.kd.alpha == 0.7f && !c.defense.kd.t2 && c.train.temperature == 20.0f);
    assert_int_equal(c.defense.n_bias, 1);
    assert_true(c.defense.bias_class[0] == 3 && c.defense.bias_delta[0] == 3.5f);
    assert_string_equal(c.teacher.model_file, "t.safetensors");
    expect_error(HEAD "defense: {type: distill}\n", "t.yaml:3:17: defense.type: unknown defense 'distill'");
    expect_error(HEAD "defense: {type: distillation, alpha: 0.5}\n",
                 "defense.alpha: not accepted by defense type 'distillation'");
    static const char tn[] = HEAD "teacher: {model_file: t.safetensors}\n"; /* a teacher to compare with */
    if (exp_config_parse(tn, sizeof tn - 1, "t.yaml", &c, &err)) fail_msg("%s", err.msg);
    assert_true(exp_config_has_teacher(&c) && c.defense.kind == EXP_DEFENSE_NONE);
    static const char en[] = HEAD "defense: {type: kd}\nteacher: {ensemble: [a.safetensors, b.safetensors], attack: false}\n";
    if (exp_config_parse(en, sizeof en - 1, "t.yaml", &c, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.teacher.n_ensemble, 2);
    assert_string_equal(c.teacher.ensemble[1], "b.safetensors");
    assert_false(c.teacher.attack);
    expect_error(HEAD "defense: {type: kd}\nteacher: {ensemble: [a.safetensors]}\n",
                 "t.yaml:4:21: teacher.ensemble: an ensemble has 2 to 8 model files, got 1");
    expect_error(HEAD "defense: {type: kd}\nteacher: {ensemble: [a, [b]]}\n",
                 "teacher.ensemble: entry 1: expected a model file path");
    expect_error(HEAD "defense: {type: kd}\nteacher: {ensemble: [a, b], model_file: c}\n",
                 "teacher: give one of model_file:, ensemble: or model:/train:, not several");
    expect_error(HEAD "defense: {type: kd, bias: [{class: 3}]}\n", "defense.bias[0].delta: required");
    static const char sw[] = HEAD "sweep: {key: train.epochs, values: [1, 2, 5]}\n";
    if (exp_config_parse(sw, sizeof sw - 1, "t.yaml", &c, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.sweep.n_axes, 1);
    assert_int_equal(c.sweep.axis[0].n, 3);
    assert_true(c.sweep.axis[0].values[2] == 5.0);
    expect_error(HEAD "sweep: {key: train.lr, values: [1]}\n", "t.yaml:3:8: sweep: cannot sweep 'train.lr'");
    expect_error(HEAD "sweep: {key: train.epochs, values: [1, 1.5]}\n", "values[1] = 1.5 is not a valid train.epochs");
    expect_error(HEAD "sweep: {key: defense.alpha, values: [0.5, 0.5]}\n", "values[1] = 0.5 is listed twice");
    expect_error(HEAD "sweep: {values: [1]}\n", "sweep.key: required");
    /* a grid of axes, variants, the BSS and DDGSD defenses, boundary */
    static const char gr[] = HEAD "sweep: [{key: data.subset, values: [600, 0]}, {key: train.seed, values: [0, 1, 2]}]\n"
                                  "teacher: {model_file: t.safetensors}\n"
                                  "variants: [{name: hard}, {name: bss, defense: {type: bss, eta: 0.5, policy: second}},\n"
                                  "  {name: dd, defense: {type: ddgsd, mu: 0.01, views: [{shift: 1}, {noise: 0.2}]}}]\n"
                                  "boundary: {samples: 50, targets: all}\n";
    if (exp_config_parse(gr, sizeof gr - 1, "t.yaml", &c, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.sweep.n_axes, 2);
    assert_int_equal(c.sweep.axis[1].n, 3);
    assert_int_equal(c.n_variants, 3);
    assert_int_equal(c.variants[0].defense.kind, EXP_DEFENSE_NONE);
    assert_int_equal(c.variants[1].defense.kind, EXP_DEFENSE_BSS);
    assert_true(c.variants[1].defense.bss.bss.eta == 0.5f && c.variants[1].defense.bss.bss.policy == ATK_BSS_SECOND);
    assert_true(c.variants[1].defense.kd.temperature == 3.0f); /* BSS's default T */
    assert_true(c.variants[2].defense.ddgsd.mu == 0.01f && c.variants[2].defense.ddgsd.view[1].noise == 0.2f);
    assert_int_equal(c.variants[2].defense.ddgsd.view[1].shift, 0);
    assert_int_equal(c.boundary.samples, 50);
    assert_int_equal(c.boundary.cfg.targets, ATK_BOUNDARY_ALL);
    expect_error(HEAD "sweep: [{key: train.seed, values: [0]}, {key: train.seed, values: [1]}]\n",
                 "t.yaml:3:41: sweep[1]: 'train.seed' is swept twice");
    expect_error(HEAD "variants: [{name: a}, {name: a}]\n", "t.yaml:3:23: variants[1]: name 'a' is used twice");
    expect_error(HEAD "variants: [{name: a/b}]\n", "variants[0]: name 'a/b' must be a plain folder name");
    expect_error(HEAD "variants: [{name: a, defense: {type: bss, alpha: 0.5}}]\n",
                 "variants[0].defense.alpha: not accepted by defense type 'bss'");
    expect_error(HEAD "defense: {type: kd}\nvariants: [{name: a}]\n", "variants: give defense: or variants:, not both");
    expect_error(HEAD "defense: {type: ddgsd, views: [{shift: 1}]}\n", "defense.views: expected a list of two views");
    expect_error(HEAD "defense: {type: bss, policy: best}\n", "defense.policy");
    expect_error(HEAD "boundary: {targets: some}\n", "boundary.targets");
}

static void test_errors_layers(void **state) {
    (void)state;
    /* a key another kind accepts: "  - {type: relu, units: 10}": units at 18 */
    expect_error("data: {name: mnist}\nmodel:\n  - {type: flatten}\n  - {type: relu, units: 10}\n",
                 "t.yaml:4:18: model[1].units: not accepted by layer type 'relu' (it accepts: type)");
    expect_error(
        "data: {name: mnist}\nmodel:\n  - type: conv2d\n    filters: 8\n    rate: 0.5\n",
        "t.yaml:5:5: model[0].rate: not accepted by layer type 'conv2d' (it accepts: type, filters, kernel, "
        "stride, pad, init)");
    /* a key no kind accepts lists what this kind accepts */
    expect_error("data: {name: mnist}\nmodel: [{type: dense, unit: 3}]\n",
                 "t.yaml:2:23: model[0].unit: unknown key (expected one of: type, units, init)");
    expect_error(
        "data: {name: mnist}\nmodel: [{type: lstm}]\n",
        "t.yaml:2:16: model[0].type: unknown layer type 'lstm' (expected one of: dense, conv2d, maxpool, "
        "flatten, relu, dropout)");
    expect_error("data: {name: mnist}\nmodel: [{units: 3}]\n",
                 "t.yaml:2:9: model[0].type: required (one of: dense,");
    expect_error("data: {name: mnist}\nmodel: [relu]\n",
                 "t.yaml:2:9: model[0]: expected a mapping such as {type: relu}");
    expect_error("data: {name: mnist}\nmodel: [{type: relu, type: flatten}]\n",
                 "t.yaml:2:22: model[0].type: duplicate key (first given at 2:10)");
    /* EXP_MAX_LAYERS + 1 layers: item i is on line 3 + i, so the first extra one (i = 64) on line 67 */
    static char many[64 + 24 * (EXP_MAX_LAYERS + 1)];
    strcpy(many, "data: {name: mnist}\nmodel:\n");
    for (int i = 0; i <= EXP_MAX_LAYERS; i++)
        strcat(many, "  - {type: relu}\n");
    expect_error(many, "t.yaml:67:5: model: at most 64 layers, got 65");
    /* exactly EXP_MAX_LAYERS is fine */
    *strrchr(many, '-') = '\0';
    *strrchr(many, '\n') = '\0';
    exp_config c;
    nn_err err = {0};
    int rc = exp_config_parse(many, strlen(many), "t.yaml", &c, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(c.n_layers, EXP_MAX_LAYERS);
}

static void test_errors_file(void **state) {
    (void)state;
    expect_error("", "t.yaml:1:1: empty file");
    expect_error("# nothing but a comment\n\n", "t.yaml:1:1: empty file");
    expect_error("- data\n- model\n",
                 "t.yaml:1:1: the top level must be a mapping (with data: and model:), got a list");
    expect_error("just a word\n", "t.yaml:1:1: the top level must be a mapping");
    /* a tab cannot indent in YAML: libyaml stops at the tab, line 2 column 1 */
    expect_error("data:\n\tname: mnist\n",
                 "t.yaml:2:1: syntax error: found character that cannot start any token");
    /* an unclosed flow sequence: the mark is where libyaml gave up (end of input, line 3 column 1) */
    expect_error("data: {name: mnist}\nmodel: [{type: relu}\n", "t.yaml:3:1: syntax error: ");
    expect_error(HEAD "---\nx: 1\n", "t.yaml:3:1: a second YAML document (only one allowed)");
    expect_error(HEAD "train: *nowhere\n", "t.yaml:3:8: syntax error: found undefined alias");
}

/* The net is built once on the data set's input shape (1x28x28 for mnist): shape errors name the layer. */
static void test_errors_shapes(void **state) {
    (void)state;
    /* "model: [{...}, {type: dense, units: 10}]": the first item is 9..45, ", " then the second '{' at 48 */
    expect_error(
        "data: {name: mnist}\nmodel: [{type: conv2d, filters: 2, kernel: 3}, {type: dense, units: 10}]\n",
        "t.yaml:2:48: model[1]: dense: input is 2x26x26: dense after a spatial layer needs flatten first");
    /* 28 -conv k3-> 26 -pool 2-> 13; a 14-kernel does not fit: the third item, line 5, '-' 3, '{' 5 */
    expect_error("data: {name: fashion-mnist}\nmodel:\n  - {type: conv2d, filters: 4, kernel: 3}\n"
                 "  - {type: maxpool, kernel: 2}\n  - {type: conv2d, filters: 4, kernel: 14}\n",
                 "t.yaml:5:5: model[2]: conv2d: kernel 14 is larger than the padded input 13x13");
    /* block style: the item's mark is its first key (line 4, column 5) */
    expect_error(
        "data: {name: mnist}\nmodel:\n  - {type: flatten}\n  - type: conv2d\n    filters: 1\n    kernel: 3\n",
        "t.yaml:4:5: model[1]: conv2d: kernel 3 is larger than the padded input 1x1");
    /* the same layers with flatten, or a kernel that fits exactly (13 -> 1x1), are fine */
    exp_config c;
    nn_err err = {0};
    const char *y = "data: {name: mnist}\nmodel: [{type: conv2d, filters: 2, kernel: 3}, {type: flatten}, "
                    "{type: dense, units: 10}]\n";
    int rc = exp_config_parse(y, strlen(y), "t.yaml", &c, &err);
    if (rc) fail_msg("unexpected error: %s", err.msg);
    y = "data: {name: mnist}\nmodel: [{type: conv2d, filters: 4, kernel: 3}, {type: maxpool, kernel: 2},\n"
        "        {type: conv2d, filters: 4, kernel: 13}, {type: flatten}, {type: dense, units: 10}]\n";
    rc = exp_config_parse(y, strlen(y), "t.yaml", &c, &err);
    if (rc) fail_msg("unexpected error: %s", err.msg);
}

/* name and output must be valid UTF-8. libyaml rejects invalid bytes in the file itself; a default name
 * derived from a file name with an invalid byte (0xe9: Latin-1 e-acute) gets its own message. */
static void test_errors_utf8(void **state) {
    (void)state;
    /* libyaml's mark is just past the bad byte: "name: caf" is 9 characters, 0xe9 the 10th */
    expect_error("name: caf\xe9\n" HEAD, "t.yaml:1:11: invalid input: invalid trailing UTF-8 octet");
    expect_error("output: out/caf\xe9\n" HEAD, "t.yaml:1:17: invalid input: invalid trailing UTF-8 octet");
    exp_config c;
    nn_err err = {0};
    static const char y[] = HEAD;
    assert_int_equal(exp_config_parse(y, strlen(y), "dir/caf\xe9.yaml", &c, &err), NN_E_INVAL);
    if (!strstr(err.msg, "dir/caf\xe9.yaml:1:1: name: the file name is not valid UTF-8") ||
        !strstr(err.msg, "set name:"))
        fail_msg("message: %s", err.msg);
    /* with an explicit name the file name does not matter; valid multi-byte names are fine */
    static const char named[] = "name: caf\xc3\xa9\noutput: r/\xe2\x82\xac\n" HEAD;
    int rc = exp_config_parse(named, strlen(named), "dir/caf\xe9.yaml", &c, &err);
    if (rc) fail_msg("unexpected error: %s", err.msg);
    assert_string_equal(c.name, "caf\xc3\xa9");
    assert_string_equal(c.output, "r/\xe2\x82\xac");
    rc = exp_config_parse(y, strlen(y), "dir/caf\xc3\xa9.yaml", &c, &err);
    if (rc) fail_msg("unexpected error: %s", err.msg);
    assert_string_equal(c.name, "caf\xc3\xa9");
}

/* The modules' validators run after parsing; their messages get the path and the section's key mark. */
static void test_validators(void **state) {
    (void)state;
    exp_config c;
    nn_err err = {0};
    const char *y = "threads: 1\ndata: {name: cifar}\nmodel: [{type: relu}]\n";
    assert_int_equal(exp_config_parse(y, strlen(y), "t.yaml", &c, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "t.yaml:2:1: data: "));
    assert_true(strlen(err.msg) > strlen("t.yaml:2:1: data: ")); /* followed by nn_data's own message */
    /* nesterov needs momentum > 0 (nn_optim_cfg_validate) */
    y = HEAD "train:\n  epochs: 1\n  optimizer: {nesterov: true}\n";
    assert_int_equal(exp_config_parse(y, strlen(y), "t.yaml", &c, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "t.yaml:5:3: train.optimizer: "));
}

/* A real file through exp_config_load, and a missing one. */
static void test_load(void **state) {
    (void)state;
    char dir[] = "/tmp/temper_test_yaml_XXXXXX", path[128], missing[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/my-exp.yaml", dir);
    snprintf(missing, sizeof missing, "%s/nope.yaml", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(FULL, f);
    fputs("\n# the name key wins over the file name\n", f);
    fclose(f);
    exp_config c;
    nn_err err = {0};
    int rc = exp_config_load(path, &c, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_string_equal(c.path, path);
    assert_string_equal(c.name, "quick");
    assert_int_equal(c.n_layers, 7);
    /* without name: the file's base name */
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("data: {name: mnist}\nmodel: [{type: relu}]\ntrain: {epochs: many}\n", f);
    fclose(f);
    assert_int_equal(exp_config_load(path, &c, &err), NN_E_INVAL);
    char want[256];
    snprintf(want, sizeof want, "%s:3:17: train.epochs: expected a positive integer, got 'many'", path);
    assert_string_equal(err.msg, want);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("data: {name: mnist}\nmodel: [{type: relu}]\n", f);
    fclose(f);
    assert_int_equal(exp_config_load(path, &c, &err), NN_OK);
    assert_string_equal(c.name, "my-exp");
    assert_string_equal(c.output, "results/my-exp");

    rc = exp_config_load(missing, &c, &err);
    assert_int_equal(rc, NN_E_IO);
    assert_non_null(strstr(err.msg, missing));
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- the canonical text of a run (exp_config_canon) ---- */

static const char CANON[] = "name: canon\n"
                            "output: out/canon\n"
                            "threads: 2\n"
                            "data: {name: mnist, range: [-0.5, 0.5], subset: 1000, exclude_classes: [3]}\n"
                            "model:\n"
                            "  - {type: conv2d, filters: 4, kernel: 3}\n"
                            "  - {type: relu}\n"
                            "  - {type: flatten}\n"
                            "  - {type: dense, units: 32}\n"
                            "  - {type: relu}\n"
                            "  - {type: dense, units: 10}\n"
                            "train: {epochs: 3, batch_size: 64, seed: 5, optimizer: {type: sgd, lr: 0.1, momentum: 0.9},\n"
                            "        schedule: {milestones: [1, 2], gamma: 0.5}}\n"
                            "defense: {type: kd, temperature: 20, alpha: 0.5, bias: [{class: 3, delta: 1.5}]}\n"
                            "teacher: {model: [{type: flatten}, {type: dense, units: 10}], train: {epochs: 2}}\n"
                            "attacks:\n"
                            "  - {type: pgd, eps: [0.1, 0.3], iters: 10}\n"
                            "  - {type: cw, iters: 5, eps: [1]}\n"
                            "bss: {samples: 10}\n"
                            "boundary: {samples: 20, steps: 5}\n";

/* The canonical text of text (must parse), malloc'd. */
static char *canon_of(const char *text) {
    exp_config *c = malloc(sizeof *c);
    assert_non_null(c);
    nn_err err = {0};
    if (exp_config_parse(text, strlen(text), "canon.yaml", c, &err)) fail_msg("parse: %s\n--- yaml:\n%s", err.msg, text);
    char *t = NULL;
    if (exp_config_canon(c, &t, &err)) fail_msg("canon: %s", err.msg);
    free(c);
    assert_non_null(t);
    return t;
}

/* CANON with its only occurrence of `from` replaced by `to`, into buf. */
static const char *edited(char *buf, size_t cap, const char *from, const char *to) {
    const char *at = strstr(CANON, from);
    if (!at || strstr(at + 1, from)) fail_msg("'%s' must occur exactly once in CANON", from);
    int n = snprintf(buf, cap, "%.*s%s%s", (int)(at - CANON), CANON, to, at + strlen(from));
    assert_true(n > 0 && (size_t)n < cap);
    return buf;
}

static void assert_line(const char *text, const char *line) {
    char want[256];
    snprintf(want, sizeof want, "\n%s\n", line);
    if (strncmp(text, line, strlen(line)) != 0 && !strstr(text, want)) fail_msg("no line '%s' in:\n%s", line, text);
}

/* Every setting that changes the model or its evaluation changes the text (and the changed line holds the
 * new value); output, threads, name, comments and YAML style do not. */
static void test_canon(void **state) {
    (void)state;
    char buf[4096];
    char *base = canon_of(CANON);
    /* spot checks: the format, table order, ranges and lists, kind-specific keys only */
    assert_line(base, "data.name=mnist");
    assert_line(base, "data.range=[-0.5, 0.5]");
    assert_line(base, "data.exclude_classes=[3]");
    assert_line(base, "model[0].type=conv2d");
    assert_line(base, "model[3].units=32");
    assert_line(base, "train.optimizer.lr=0.100000001"); /* (float)0.1 = 0.100000001490116..., %.9g */
    assert_line(base, "train.schedule.milestones=[1, 2]");
    assert_line(base, "train.temperature=20"); /* kd: the student trains at the defense's T */
    assert_line(base, "teacher.model[1].units=10");
    assert_line(base, "teacher.train.epochs=2");
    assert_line(base, "defense.type=kd");
    assert_line(base, "defense.bias[0].class=3");
    assert_line(base, "defense.bias[0].delta=1.5");
    assert_line(base, "attacks[0].eps=[0.100000001, 0.300000012]");
    assert_line(base, "attacks[1].type=cw");
    assert_line(base, "bss.samples=10");
    assert_line(base, "boundary.steps=5");
    assert_null(strstr(base, "name=canon"));
    assert_null(strstr(base, "output="));
    assert_null(strstr(base, "threads="));
    assert_null(strstr(base, "\nmodel[1].units=")); /* relu takes no units */
    assert_null(strstr(base, "attacks[1].step=")); /* C&W takes no step */
    assert_null(strstr(base, "defense.eta="));     /* a kd defense takes no BSS keys */
    const char *order[] = {"\ndata.", "\nmodel=", "\ntrain.", "\nteacher=", "\ndefense.", "\nattacks=", "\nbss=",
                           "\nboundary."};
    for (size_t i = 1; i < sizeof order / sizeof order[0]; i++) {
        const char *a = strstr(base, order[i - 1] + (i == 1)), *b = strstr(base, order[i]);
        if (!a || !b || a > b) fail_msg("'%s' must come before '%s' in:\n%s", order[i - 1] + 1, order[i] + 1, base);
    }
    for (const char *p = base; *p; p = strchr(p, '\n') + 1) { /* key=value lines */
        const char *eq = strchr(p, '='), *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (!eq || eq > nl || eq == p) fail_msg("not a key=value line: %.*s", (int)(nl - p), p);
    }

    static const struct {
        const char *from, *to, *line;
    } changes[] = {
        {"epochs: 3", "epochs: 4", "train.epochs=4"},
        {"lr: 0.1", "lr: 0.2", "train.optimizer.lr=0.200000003"},
        {"units: 32", "units: 33", "model[3].units=33"},
        {"filters: 4", "filters: 5", "model[0].filters=5"},
        {"subset: 1000", "subset: 500", "data.subset=500"},
        {"exclude_classes: [3]", "exclude_classes: [3, 4]", "data.exclude_classes=[3, 4]"},
        {"range: [-0.5, 0.5]", "range: [0, 1]", "data.range=[0, 1]"},
        {"eps: [0.1, 0.3]", "eps: [0.1, 0.2]", "attacks[0].eps=[0.100000001, 0.200000003]"},
        {"iters: 10", "iters: 11", "attacks[0].iters=11"},
        {"temperature: 20", "temperature: 10", "defense.temperature=10"},
        {"alpha: 0.5", "alpha: 0.25", "defense.alpha=0.25"},
        {"delta: 1.5", "delta: 2", "defense.bias[0].delta=2"},
        {"train: {epochs: 2}", "train: {epochs: 1}", "teacher.train.epochs=1"},
        {"milestones: [1, 2]", "milestones: [1]", "train.schedule.milestones=[1]"},
        {"seed: 5", "seed: 6", "train.seed=6"},
        {"samples: 10}", "samples: 11}", "bss.samples=11"},
        {"steps: 5", "steps: 6", "boundary.steps=6"},
        {"bss: {samples: 10}\n", "", "bss=none"},
    };
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        char *t = canon_of(edited(buf, sizeof buf, changes[i].from, changes[i].to));
        if (!strcmp(t, base)) fail_msg("changing '%s' to '%s' left the canonical text unchanged", changes[i].from,
                                       changes[i].to);
        assert_line(t, changes[i].line);
        free(t);
    }
    static const struct {
        const char *from, *to;
    } same[] = {
        {"name: canon\n", "name: other\n"},
        {"name: canon\n", ""}, /* the name from the file name */
        {"output: out/canon\n", "output: elsewhere\n"},
        {"threads: 2\n", "threads: 1\n"},
        {"threads: 2\n", "# a comment\n\n"},
        {"bss: {samples: 10}\n", "bss:     # block style\n  samples: 10\n"},
        {"lr: 0.1", "lr: 1e-1"},
        {"boundary: {samples: 20, steps: 5}\n", "boundary: {steps: 5, samples: 20}  # keys in another order\n"},
        {"bss: {samples: 10}\n", "bss: {samples: 10}\nevaluate: {teachers: true, cache: c, models: [m]}\n"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char *t = canon_of(edited(buf, sizeof buf, same[i].from, same[i].to));
        if (strcmp(t, base)) fail_msg("changing '%s' to '%s' changed the canonical text", same[i].from, same[i].to);
        free(t);
    }
    free(base);

    /* the other custom keys: a teacher's model file, an ensemble, a BSS pool, DDGSD views; a swept value */
    static const char *const more[] = {
        "data: {name: mnist}\nmodel: [{type: flatten}, {type: dense, units: 10}]\n"
        "defense: {type: bss, pool: results/p/bss, eta: 0.5}\nteacher: {model_file: results/t/model.safetensors}\n",
        "data: {name: mnist}\nmodel: [{type: flatten}, {type: dense, units: 10}]\n"
        "defense: {type: kd}\nteacher: {ensemble: [a.safetensors, b.safetensors]}\n",
        "data: {name: mnist}\nmodel: [{type: flatten}, {type: dense, units: 10}]\n"
        "defense: {type: ddgsd, views: [{shift: 1}, {shift: 2, noise: 0.25}]}\n",
    };
    static const char *const lines[] = {"defense.pool=results/p/bss", "teacher.ensemble[1]=b.safetensors",
                                        "defense.views[1].noise=0.25"};
    for (size_t i = 0; i < 3; i++) {
        char *t = canon_of(more[i]);
        assert_line(t, lines[i]);
        if (i < 2) assert_null(strstr(t, "teacher.train.")); /* a loaded teacher's train: is an unused copy */
        if (i == 0) assert_line(t, "defense.eta=0.5");
        free(t);
    }
}

/* The schema's field tables as exp_config.h declares them: non-empty, distinct keys, and the top-level one is the
 * list an unknown top-level key's message names (test_errors_keys). */
static void test_tables(void **state) {
    (void)state;
    const exp_table *t[] = {exp_config_top_table(),     exp_config_layer_table(),   exp_config_train_table(),
                            exp_config_attack_table(),  exp_config_teacher_table(), exp_config_defense_table(),
                            exp_config_view_table(),    exp_config_boundary_table(), exp_config_bss_table()};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_non_null(t[i]);
        assert_true(t[i]->n > 0);
        for (size_t a = 0; a < t[i]->n; a++)
            for (size_t b = 0; b < a; b++)
                if (!strcmp(t[i]->fields[a].key, t[i]->fields[b].key))
                    fail_msg("table %zu: key '%s' twice", i, t[i]->fields[a].key);
    }
    char keys[512];
    size_t o = 0;
    for (size_t a = 0; a < t[0]->n; a++)
        o += (size_t)snprintf(keys + o, sizeof keys - o, "%s%s", a ? ", " : "", t[0]->fields[a].key);
    assert_string_equal(keys, "name, output, threads, data, model, model_file, train, teacher, defense, attacks, sweep, "
                              "variants, bss, boundary, evaluate");
    const exp_choice *k = exp_config_defense_kinds();
    size_t n = 0;
    for (; k[n].name; n++)
        assert_int_not_equal(exp_config_defense_mask(k[n].value), 0); /* each kind accepts keys of its own */
    assert_true(n >= 4);
    exp_attack a = exp_attack_default(ATK_CW, ATK_L2);
    assert_int_not_equal(exp_config_attack_mask(&a), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),         cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors_types), cmocka_unit_test(test_errors_ranges),
        cmocka_unit_test(test_errors_keys),  cmocka_unit_test(test_errors_layers),
        cmocka_unit_test(test_errors_file),  cmocka_unit_test(test_errors_shapes),
        cmocka_unit_test(test_errors_utf8),  cmocka_unit_test(test_validators),
        cmocka_unit_test(test_load),         cmocka_unit_test(test_attacks),
        cmocka_unit_test(test_errors_attacks),       cmocka_unit_test(test_defense),
        cmocka_unit_test(test_canon),        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
