/* test_evaluate.c - batch evaluation (exp_evaluate.h): the worst-case rule on hand-made records, the
 * temperature-aware battery, the `evaluate:` block of experiment files (errors with file:line:col), and the
 * engine end to end on a tiny synthetic data set (6x6 IDX files in a TEMPER_DATA folder) with two hand-set
 * linear models (T = 1 and a "distilled" copy at T = 20): cells cached and reused, only a changed attack's
 * cells recomputed, --force, the results folder, and resuming after kill -9 at three points (fork + SIGKILL)
 * giving the uninterrupted run's numbers and records byte for byte; and `evaluate:` in a file that trains (a
 * sweep, a distillation's teacher): the runs' models evaluated, runs and cells reused, --force. Everything lives
 * in a mkdtemp folder. */
#include <dirent.h>
#include <omp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#include "exp_cli.h"
#include "exp_config.h"
#include "exp_evaluate.h"
#include "exp_evaluate_int.h"
#include "exp_run.h"
#include "nn_io.h"
#include "nn_json.h"
#include "nn_model.h"

static char g_dir[256];

#define assert_contains(hay, needle)                                                                         \
    do {                                                                                                     \
        if (!strstr((hay), (needle))) fail_msg("'%s' not found in:\n%s", (needle), (hay));                   \
    } while (0)

/* ---- worst case on hand-made records ---- */

/* One record row. */
static void rec(float *r, int idx, int label, int target, int pred, int success, float l0, float l2, float linf) {
    float v[EXP_REC_COLS] = {(float)idx, (float)label, (float)target, (float)label, (float)pred, (float)success,
                             l0, l2, linf, 1};
    memcpy(r, v, sizeof v);
}

static void test_worst_case(void **state) {
    (void)state;
    /* 5 images; image 3 is misclassified to begin with; image 4 no attack covers. */
    const unsigned char cc[5] = {1, 1, 1, 0, 1};
    float a[4 * EXP_REC_COLS], b[4 * EXP_REC_COLS], c[2 * EXP_REC_COLS];
    /* cell a: an L-inf attack at 0.1 breaks image 0 (linf 0.1), fails on 1 and 2 */
    rec(a + 0 * EXP_REC_COLS, 0, 7, -1, 2, 1, 30, 1.2f, 0.1f);
    rec(a + 1 * EXP_REC_COLS, 1, 4, -1, 4, 0, 30, 1.0f, 0.1f);
    rec(a + 2 * EXP_REC_COLS, 2, 1, -1, 1, 0, 30, 1.0f, 0.1f);
    rec(a + 3 * EXP_REC_COLS, 9, 1, -1, 0, 1, 1, 0.1f, 0.01f); /* beyond n_samples: ignored */
    /* cell b: targeted L2 runs on image 1: target 3 missed but landed on class 5 (still breaks it), with
     * l2 1.5 and linf 0.25; target 6 missed, back on the label; and on image 2 a hit far away */
    rec(b + 0 * EXP_REC_COLS, 1, 4, 3, 5, 0, 12, 1.5f, 0.25f);
    rec(b + 1 * EXP_REC_COLS, 1, 4, 6, 4, 0, 3, 0.2f, 0.05f);
    rec(b + 2 * EXP_REC_COLS, 2, 1, 0, 0, 1, 40, 3.0f, 0.9f);
    rec(b + 3 * EXP_REC_COLS, 3, 2, 0, 0, 1, 1, 0.01f, 0.01f); /* not clean-correct: never counts */
    /* cell c: tolerance: image 2 broken at linf 0.3f * (1 + 5e-6), inside eps (1 + 1e-5) + 1e-7 of eps 0.3;
     * image 0's record at linf 0.3f * (1 + 5e-5) is outside (checked in double below) */
    float inside = 0.3f * (1 + 5e-6f), outside = 0.3f * (1 + 5e-5f);
    double bound = 0.3 * (1 + 1e-5) + 1e-7; /* the rule at eps 0.3 */
    assert_true((double)inside <= bound && (double)outside > bound);
    rec(c + 0 * EXP_REC_COLS, 2, 1, -1, 8, 1, 5, 0.9f, inside);
    rec(c + 1 * EXP_REC_COLS, 0, 7, -1, 3, 1, 5, 0.9f, outside);
    exp_records cells[3] = {{a, 4}, {b, 4}, {c, 2}};
    unsigned char robust[5], counted[3];

    /* linf 0.1: image 0 broken by a; 1: b's 0.25 > 0.1 and its second run is on the label; 2: only >= 0.3 */
    assert_int_equal(exp_worst_case(cells, 3, cc, 5, EXP_NORM_LINF, 0.1, robust, counted), 3);
    const unsigned char r01[5] = {0, 1, 1, 0, 1}, c01[3] = {1, 1, 0};
    assert_memory_equal(robust, r01, 5);
    assert_memory_equal(counted, c01, 3);
    /* linf 0.3: b's wrong-class miss now counts (cross-norm: an L2 run by its linf distortion), c's image 2 */
    assert_int_equal(exp_worst_case(cells, 3, cc, 5, EXP_NORM_LINF, 0.3, robust, counted), 1);
    const unsigned char r03[5] = {0, 0, 0, 0, 1}, c03[3] = {1, 1, 1};
    assert_memory_equal(robust, r03, 5);
    assert_memory_equal(counted, c03, 3);
    /* l2 1: a's records of images 1 and 2 (l2 1.0) and b's 0.2 are within but on the label; c's two (l2 0.9)
     * break images 0 and 2 */
    assert_int_equal(exp_worst_case(cells, 3, cc, 5, EXP_NORM_L2, 1.0, robust, counted), 2);
    const unsigned char rl2[5] = {0, 1, 0, 0, 1}, cl2[3] = {1, 1, 1};
    assert_memory_equal(robust, rl2, 5);
    assert_memory_equal(counted, cl2, 3);
    /* l2 2: a breaks 0 (1.2), b breaks 1 (1.5), c breaks 0 and 2 (0.9) */
    assert_int_equal(exp_worst_case(cells, 3, cc, 5, EXP_NORM_L2, 2.0, robust, NULL), 1);
    /* l0 10: a's (30) and b's 12 and 40 are outside, b's l0-3 run is on the label, c's (5) break 0 and 2 */
    assert_int_equal(exp_worst_case(cells, 3, cc, 5, EXP_NORM_L0, 10, robust, counted), 2);
    const unsigned char cl0[3] = {0, 1, 1};
    assert_memory_equal(robust, rl2, 5);
    assert_memory_equal(counted, cl0, 3);
    /* n_samples 2: images 2.. ignored whatever their records */
    assert_int_equal(exp_worst_case(cells, 3, cc, 2, EXP_NORM_LINF, 0.3, robust, counted), 0);
    /* no cells: robust = clean-correct */
    assert_int_equal(exp_worst_case(NULL, 0, cc, 5, EXP_NORM_LINF, 0.3, robust, NULL), 4);
}

/* ---- the battery ---- */

static exp_attack mk(atk_kind k, atk_norm norm, const char *name, float eps0, float eps1) {
    exp_attack a = exp_attack_default(k, norm);
    snprintf(a.name, sizeof a.name, "%s", name);
    if (eps0 > 0) a.eps[a.n_eps++] = eps0;
    if (eps1 > 0) a.eps[a.n_eps++] = eps1;
    return a;
}

static void test_battery(void **state) {
    (void)state;
    exp_attack in[7], out[16];
    int added[16];
    in[0] = mk(ATK_FGSM, ATK_LINF, "fgsm", 0.3f, 0.1f);
    in[1] = mk(ATK_PGD, ATK_LINF, "pgd", 0.2f, 0.1f);
    in[2] = mk(ATK_PGD, ATK_L2, "pgd-l2", 2.0f, 0);
    in[3] = mk(ATK_JSMA, ATK_LINF, "jsma", 0, 0);
    in[4] = mk(ATK_JSMA, ATK_LINF, "jsma-z", 0, 0);
    in[4].cfg.jsma_on = ATK_JSMA_LOGITS;
    in[5] = mk(ATK_CW, ATK_L2, "cw", 1.0f, 0);
    in[6] = mk(ATK_BIM, ATK_LINF, "bim-t5", 0.3f, 0);
    in[6].cfg.temperature = 5; /* not at T = 1: not copied */

    /* T = 1, or temperature_aware off: exactly the list */
    assert_int_equal(exp_evaluate_battery(in, 7, 1.0f, 1, 50, out, added, 16), 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(out[i].name, in[i].name);
        assert_int_equal(added[i], 0);
    }
    assert_int_equal(exp_evaluate_battery(in, 7, 20.0f, 0, 50, out, added, 16), 7);

    /* T = 20: fgsm-T, pgd-T, pgd-l2-T, jsma-T at T = 20, then pgd-margin over {0.1, 0.2, 0.3} */
    size_t n = exp_evaluate_battery(in, 7, 20.0f, 1, 50, out, added, 16);
    assert_int_equal(n, 12);
    const char *names[5] = {"fgsm-T", "pgd-T", "pgd-l2-T", "jsma-T", "pgd-margin"};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(out[7 + i].name, names[i]);
        assert_int_equal(added[7 + i], 1);
    }
    for (size_t i = 7; i < 11; i++)
        assert_true(out[i].cfg.temperature == 20.0f);
    assert_int_equal(out[8].n_eps, 2); /* a copy keeps its grid and parameters */
    assert_true(out[9].cfg.norm == ATK_L2 && out[10].cfg.kind == ATK_JSMA);
    const exp_attack *pm = &out[11];
    assert_int_equal(pm->cfg.kind, ATK_PGD);
    assert_int_equal(pm->cfg.loss, ATK_LOSS_MARGIN);
    assert_int_equal(pm->cfg.norm, ATK_LINF);
    assert_int_equal(pm->samples, 50);
    assert_int_equal(pm->n_eps, 3);
    assert_true(pm->eps[0] == 0.1f && pm->eps[1] == 0.2f && pm->eps[2] == 0.3f);

    /* an L-inf margin attack already there: no pgd-margin; a taken name gets a suffix */
    in[2] = mk(ATK_PGD, ATK_LINF, "fgsm-T", 0.3f, 0);
    in[2].cfg.loss = ATK_LOSS_MARGIN;
    n = exp_evaluate_battery(in, 7, 20.0f, 1, 50, out, added, 16);
    assert_int_equal(n, 10);
    assert_string_equal(out[7].name, "fgsm-T-2");
    assert_string_equal(out[8].name, "pgd-T");
    assert_string_equal(out[9].name, "jsma-T");
    /* cap respected */
    assert_int_equal(exp_evaluate_battery(in, 7, 20.0f, 1, 50, out, added, 8), 8);
}

/* ---- experiment files ---- */

static void expect_cfg_error(const char *yaml, const char *want) {
    exp_config *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    nn_err err = {0};
    int rc = exp_config_parse(yaml, strlen(yaml), "t.yaml", cfg, &err);
    free(cfg);
    if (rc == 0) fail_msg("expected an error containing '%s' for:\n%s", want, yaml);
    if (!strstr(err.msg, want)) fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

static void test_config(void **state) {
    (void)state;
    exp_config *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    nn_err err = {0};
    const char *ok = "name: ev\n"
                     "evaluate:\n"
                     "  models: [a/model.safetensors, 'b/*/model.safetensors']\n"
                     "  samples: 40\n"
                     "attacks:\n"
                     "  - {type: fgsm, eps: [0.1, 0.3]}\n"
                     "  - {type: cw, samples: 7}\n";
    if (exp_config_parse(ok, strlen(ok), "t.yaml", cfg, &err)) fail_msg("%s", err.msg);
    assert_true(cfg->evaluate.enabled);
    assert_int_equal(cfg->evaluate.n_models, 2);
    assert_string_equal(cfg->evaluate.models[1], "b/*/model.safetensors");
    assert_int_equal(cfg->evaluate.samples, 40);
    assert_true(cfg->evaluate.temperature_aware);
    assert_string_equal(cfg->evaluate.cache, "results/.cache");
    assert_false(cfg->evaluate.has_data);
    assert_int_equal(cfg->attacks[0].samples, 40); /* evaluate.samples is the default */
    assert_int_equal(cfg->attacks[1].samples, 7);  /* its own samples: kept */
    assert_string_equal(cfg->output, "results/ev");
    const char *ok2 = "evaluate: {models: [m], temperature_aware: false, cache: /tmp/c}\n"
                      "data: {name: fashion-mnist, range: [-0.5, 0.5]}\n"
                      "attacks: [{type: pgd}]\n";
    if (exp_config_parse(ok2, strlen(ok2), "t.yaml", cfg, &err)) fail_msg("%s", err.msg);
    assert_false(cfg->evaluate.temperature_aware);
    assert_true(cfg->evaluate.has_data && cfg->evaluate.has_range);
    assert_string_equal(cfg->evaluate.cache, "/tmp/c");
    assert_int_equal(cfg->attacks[0].samples, 1000);
    /* a training experiment is unchanged: data: still required without evaluate: */
    const char *train = "model: [{type: flatten}, {type: dense, units: 10}]\n";
    assert_int_not_equal(exp_config_parse(train, strlen(train), "t.yaml", cfg, &err), 0);
    assert_string_equal(err.msg, "t.yaml:1:1: data: required");
    assert_false(cfg->evaluate.enabled);
    free(cfg);

    expect_cfg_error("evaluate:\n  models: [m]\n  bogus: 1\nattacks: [{type: pgd}]\n",
                     "t.yaml:3:3: evaluate.bogus: unknown key");
    expect_cfg_error("evaluate:\n  models: []\nattacks: [{type: pgd}]\n", "t.yaml:2:11: evaluate.models: no models");
    expect_cfg_error("evaluate:\n  samples: 5\nattacks: [{type: pgd}]\n", "t.yaml:2:3: evaluate.models: required");
    expect_cfg_error("evaluate:\n  models: [m]\nattacks: [{type: pgd}]\ntrain: {epochs: 1}\n",
                     "t.yaml:4:1: train: not allowed together with evaluate:");
    expect_cfg_error("model_file: x\nevaluate: {models: [m]}\nattacks: [{type: pgd}]\n",
                     "t.yaml:1:1: model_file: not allowed together with evaluate:");
    expect_cfg_error("evaluate: {models: [m]}\n", "t.yaml:1:1: attacks: required with evaluate:");
    expect_cfg_error("evaluate: {models: [m], samples: 0}\nattacks: [{type: pgd}]\n",
                     "t.yaml:1:34: evaluate.samples");
    expect_cfg_error("evaluate: {models: [m]}\nattacks: [{type: pgd}]\ndata: {range: [0, 1]}\n",
                     "t.yaml:3:7: data.name: required");
    expect_cfg_error("evaluate: {models: [m], teachers: true}\nattacks: [{type: pgd}]\n",
                     "t.yaml:1:25: evaluate.teachers: only for a file that trains models (model:)");
    expect_cfg_error("evaluate: {models: [m]}\nattacks: [{type: pgd}]\nsweep: {key: train.seed, values: [1]}\n",
                     "t.yaml:3:1: sweep: not allowed together with evaluate:");

    /* evaluate: in a file that trains: models optional, teachers allowed, the attacks get evaluate.samples */
    static const char tr[] = "data: {name: mnist}\n"
                             "model: [{type: flatten}, {type: dense, units: 10}]\n";
    char buf[1024];
    cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    snprintf(buf, sizeof buf,
             "%sevaluate: {teachers: true, samples: 9}\nattacks: [{type: fgsm}, {type: cw, samples: 4}]\n"
             "sweep: {key: train.seed, values: [1, 2]}\n",
             tr);
    if (exp_config_parse(buf, strlen(buf), "t.yaml", cfg, &err)) fail_msg("%s", err.msg);
    assert_true(cfg->evaluate.enabled && cfg->evaluate.trains && cfg->evaluate.teachers);
    assert_int_equal(cfg->evaluate.n_models, 0);
    assert_int_equal(cfg->attacks[0].samples, 9);
    assert_int_equal(cfg->attacks[1].samples, 4);
    assert_int_equal(cfg->sweep.n_axes, 1);
    snprintf(buf, sizeof buf, "%sevaluate: {models: [m]}\nattacks: [{type: fgsm}]\n", tr);
    if (exp_config_parse(buf, strlen(buf), "t.yaml", cfg, &err)) fail_msg("%s", err.msg);
    assert_true(cfg->evaluate.trains && !cfg->evaluate.teachers);
    assert_int_equal(cfg->evaluate.n_models, 1);
    assert_int_equal(cfg->attacks[0].samples, 1000);
    free(cfg);
    /* ... with the errors of both kinds of file, at their line:column */
    snprintf(buf, sizeof buf, "%sevaluate: {teachers: true}\n", tr);
    expect_cfg_error(buf, "t.yaml:1:1: attacks: required with evaluate:");
    snprintf(buf, sizeof buf, "%sevaluate:\n  teachers: 1\nattacks: [{type: fgsm}]\n", tr);
    expect_cfg_error(buf, "t.yaml:4:13: evaluate.teachers: ");
    snprintf(buf, sizeof buf, "%sevaluate:\n  models: []\nattacks: [{type: fgsm}]\n", tr);
    expect_cfg_error(buf, "t.yaml:4:11: evaluate.models: no models");
    snprintf(buf, sizeof buf, "%sevaluate: {}\nattacks: [{type: fgsm, name: a/b}]\n", tr);
    expect_cfg_error(buf, "t.yaml:4:11: attacks[0]: name 'a/b' must not contain '/'");
    snprintf(buf, sizeof buf, "%sevaluate: {}\nattacks: [{type: fgsm}]\nvariants: [{name: hard}, {name: evaluate}]\n",
             tr);
    expect_cfg_error(buf, "t.yaml:5:26: variants[1]: name 'evaluate' is the folder of the evaluate: results");
    snprintf(buf, sizeof buf, "%sevaluate: {}\nattacks: [{type: fgsm}]\nmodel_file: x\n", tr);
    expect_cfg_error(buf, "t.yaml:5:13: model_file: give either model: (to train) or model_file:");
    snprintf(buf, sizeof buf, "%sevaluate: {}\nattacks: [{type: fgsm}]\ntrain: {epochs: 0}\n", tr);
    expect_cfg_error(buf, "t.yaml:5:17: train.epochs: must be >= 1");
}

/* ---- a synthetic data set and two models ---- */

#define SYN_H 6
#define SYN_W 6

/* <dir>/mnist/<prefix>-{images-idx3,labels-idx1}-ubyte: class c = i % 3 lights row 2c, plus noise. */
static void write_split(const char *dir, const char *prefix, uint32_t n) {
    uint8_t *im = calloc((size_t)n * SYN_H * SYN_W, 1), *lb = malloc(n);
    assert_true(im && lb);
    for (uint32_t i = 0; i < n; i++) {
        lb[i] = (uint8_t)(i % 3);
        for (int x = 0; x < SYN_W; x++)
            im[(size_t)i * SYN_H * SYN_W + 2 * lb[i] * SYN_W + x] = (uint8_t)(120 + (i * 37 + x * 11) % 100);
        for (int k = 0; k < 4; k++)
            im[(size_t)i * SYN_H * SYN_W + (i * 7 + k * 13) % (SYN_H * SYN_W)] ^= (uint8_t)(0x40 + 16 * k);
    }
    char path[1024];
    uint32_t dims[3] = {n, SYN_H, SYN_W};
    snprintf(path, sizeof path, "%s/mnist/%s-images-idx3-ubyte", dir, prefix);
    test_write_idx(path, 3, dims, im, (size_t)n * SYN_H * SYN_W);
    snprintf(path, sizeof path, "%s/mnist/%s-labels-idx1-ubyte", dir, prefix);
    test_write_idx(path, 1, dims, lb, n);
    free(im);
    free(lb);
}

/* flatten -> dense 10 reading row 2c for class c (plus seeded noise), logits scaled by T, saved at T. */
static void write_model(const char *path, float T) {
    nn_layer_cfg l[2] = {nn_layer_cfg_default("flatten"), nn_layer_cfg_default("dense")};
    l[1].units = 10;
    nn_net *net = NULL;
    nn_err err = {0};
    if (nn_net_create(&net, (nn_shape){1, SYN_H, SYN_W}, l, 2, &err)) fail_msg("%s", err.msg);
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    size_t d = SYN_H * SYN_W;
    for (size_t k = 0; k < 10; k++) {
        for (size_t j = 0; j < d; j++) {
            float w = 0.25f * nn_rng_normal(&rng) + (k < 3 && j / SYN_W == 2 * k ? 0.6f : 0.0f);
            net->params[k * d + j] = T * w;
        }
        net->params[10 * d + k] = T * (k < 3 ? 0.0f : -1.0f);
    }
    net->temperature = T;
    nn_model_meta meta = {0};
    assert_int_equal(nn_model_meta_set(&meta, EXP_META_DATA, "mnist", &err), 0);
    assert_int_equal(nn_model_meta_set(&meta, EXP_META_RANGE, "0,1", &err), 0);
    if (nn_model_save(net, &meta, path, &err)) fail_msg("%s", err.msg);
    nn_net_destroy(net);
}

/* On tmpfs (/dev/shm) when there is one: every cell commit fsyncs its files and folders, which takes
 * seconds on a disk over the ~100 commits here (test_cache.c tests the store itself on /tmp). */
static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/dev/shm/temper_test_evaluate_XXXXXX");
    if (mkdtemp(g_dir)) return 0;
    snprintf(g_dir, sizeof g_dir, "/tmp/temper_test_evaluate_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    if (!getenv("KEEP_EVALUATE_TEST")) rm_rf(g_dir);
    unsetenv("TEMPER_DATA");
    return 0;
}

/* Data and models made once: g_dir/data, g_dir/models/{a,b}/model.safetensors (T = 1 and 20). */
static void fixtures(void) {
    static int done;
    char p[600];
    if (done) return;
    snprintf(p, sizeof p, "%s/data", g_dir);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(setenv("TEMPER_DATA", p, 1), 0);
    snprintf(p, sizeof p, "%s/data/mnist", g_dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/data", g_dir);
    write_split(p, "train", 20);
    write_split(p, "t10k", 30);
    const char *sub[] = {"models", "models/a", "models/b"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, sub[i]);
        assert_int_equal(mkdir(p, 0700), 0);
    }
    snprintf(p, sizeof p, "%s/models/a/model.safetensors", g_dir);
    write_model(p, 1.0f);
    snprintf(p, sizeof p, "%s/models/b/model.safetensors", g_dir);
    write_model(p, 20.0f);
    done = 1;
}

/* The experiment text: both models, cache <g_dir>/<cache>, output <g_dir>/<out>; pgd_iters varies. */
static char *yaml_text(const char *cache, const char *out, int pgd_iters, int small) {
    static char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "name: ev\n"
                     "output: %s/%s\n"
                     "evaluate:\n"
                     "  models:\n"
                     "    - %s/models/*/model.safetensors\n"
                     "    - %s/models/a/model.safetensors\n" /* a duplicate: removed */
                     "    - %s/nothing/*.safetensors\n"      /* matches nothing: a warning */
                     "  samples: 12\n"
                     "  cache: %s/%s\n"
                     "attacks:\n"
                     "  - {type: fgsm, eps: [0.1, 0.3], grid: 4}\n"
                     "  - {type: pgd, eps: 0.1, iters: %d, grid: 0}\n"
                     "  - {type: cw, targeted: false, samples: 6, iters: 10, search_steps: 2, eps: [1]}\n"
                     "%s",
                     g_dir, out, g_dir, g_dir, g_dir, g_dir, cache, pgd_iters,
                     small ? "" :
                     "  - {type: jsma, samples: 3, eps: [5]}\n"
                     "  - {type: deepfool, samples: 6, iters: 10, grid: 0}\n");
    assert_true(n > 0 && (size_t)n < sizeof buf);
    return buf;
}

static exp_config *parse(const char *text) {
    exp_config *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    nn_err err = {0};
    if (exp_config_parse(text, strlen(text), "ev.yaml", cfg, &err)) fail_msg("%s", err.msg);
    return cfg;
}

/* Runs the evaluation of text; returns the stats. */
static exp_evaluate_stats run_eval(const char *text, int force, FILE *progress) {
    exp_config *cfg = parse(text);
    exp_evaluate_opts o = {.force = force, .progress = progress, .text = text, .text_len = strlen(text)};
    exp_evaluate_stats st = {0};
    nn_err err = {0};
    if (exp_evaluate_run(cfg, &o, &st, &err)) fail_msg("exp_evaluate_run: %s", err.msg);
    free(cfg);
    return st;
}

static char *slurp_path(const char *path, size_t *len) {
    char *t = NULL;
    nn_err err = {0};
    if (nn_io_read_all(path, &t, len, &err)) fail_msg("%s", err.msg);
    return t;
}

/* results.json of <g_dir>/<out>, parsed. */
static char *load_results(const char *out, nn_json *doc) {
    char path[600];
    size_t len;
    snprintf(path, sizeof path, "%s/%s/results.json", g_dir, out);
    char *t = slurp_path(path, &len);
    nn_err err = {0};
    memset(doc, 0, sizeof *doc);
    if (nn_json_parse(doc, t, len, &err)) fail_msg("results.json: %s", err.msg);
    return t;
}

static const nn_json_val *get(const nn_json *doc, const nn_json_val *o, const char *key) {
    const nn_json_val *v = nn_json_get(doc, o, key);
    if (!v) fail_msg("results.json: no member '%s'", key);
    return v;
}

/* Two JSON values equal (numbers exactly, strings, bools, null, containers recursively). */
static int json_equal(const nn_json *da, const nn_json_val *a, const nn_json *db, const nn_json_val *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case NN_JSON_NUMBER: return a->num == b->num;
    case NN_JSON_STRING: return !strcmp(a->str, b->str);
    case NN_JSON_BOOL: return a->boolean == b->boolean;
    case NN_JSON_NULL: return 1;
    default: break;
    }
    if (a->n != b->n) return 0;
    for (const nn_json_val *x = nn_json_first(da, a), *y = nn_json_first(db, b); x; x = nn_json_next(da, x), y = nn_json_next(db, y))
        if ((x->key && strcmp(x->key, y->key)) || !json_equal(da, x, db, y)) return 0;
    return 1;
}

/* Results folders out_a and out_b hold the same numbers: per model the clean accuracy, diagnostics, every
 * cell's key and summaries and records.npy bytes, the worst case, samples.csv. Timing, provenance and the
 * reused flags are not compared. Returns the number of cells. */
static size_t compare_results(const char *out_a, const char *out_b) {
    nn_json da, db;
    char *ta = load_results(out_a, &da), *tb = load_results(out_b, &db);
    const nn_json_val *ma = get(&da, nn_json_root(&da), "models"), *mb = get(&db, nn_json_root(&db), "models");
    assert_int_equal(ma->n, mb->n);
    size_t cells = 0;
    for (const nn_json_val *a = nn_json_first(&da, ma), *b = nn_json_first(&db, mb); a;
         a = nn_json_next(&da, a), b = nn_json_next(&db, b)) {
        static const char *const keys[] = {"label", "sha256", "clean_accuracy", "diagnostics", "worst_case",
                                           "temperature"};
        for (size_t k = 0; k < 6; k++)
            if (!json_equal(&da, get(&da, a, keys[k]), &db, get(&db, b, keys[k])))
                fail_msg("model %s: '%s' differs", get(&da, a, "label")->str, keys[k]);
        const nn_json_val *ca = get(&da, a, "cells"), *cb = get(&db, b, "cells");
        assert_int_equal(ca->n, cb->n);
        for (const nn_json_val *x = nn_json_first(&da, ca), *y = nn_json_first(&db, cb); x;
             x = nn_json_next(&da, x), y = nn_json_next(&db, y), cells++) {
            assert_string_equal(get(&da, x, "run")->str, get(&db, y, "run")->str);
            assert_string_equal(get(&da, x, "key")->str, get(&db, y, "key")->str);
            if (!json_equal(&da, get(&da, x, "summaries"), &db, get(&db, y, "summaries")))
                fail_msg("cell %s: summaries differ", get(&da, x, "run")->str);
            char pa[800], pb[800];
            size_t la, lb;
            snprintf(pa, sizeof pa, "%s/%s/%s", g_dir, out_a, get(&da, x, "records")->str);
            snprintf(pb, sizeof pb, "%s/%s/%s", g_dir, out_b, get(&db, y, "records")->str);
            char *ra = slurp_path(pa, &la), *rb = slurp_path(pb, &lb);
            assert_int_equal(la, lb);
            assert_memory_equal(ra, rb, la);
            free(ra);
            free(rb);
        }
        char pa[800], pb[800];
        size_t la, lb;
        snprintf(pa, sizeof pa, "%s/%s/%s/samples.csv", g_dir, out_a, get(&da, a, "dir")->str);
        snprintf(pb, sizeof pb, "%s/%s/%s/samples.csv", g_dir, out_b, get(&db, b, "dir")->str);
        char *sa = slurp_path(pa, &la), *sb = slurp_path(pb, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(sa, sb, la);
        free(sa);
        free(sb);
    }
    nn_json_free(&da);
    nn_json_free(&db);
    free(ta);
    free(tb);
    return cells;
}

/* The reused flag of every cell of results.json, model by model, as a string of 0/1 with '|' between
 * models, and the run names in order. */
static void reused_flags(const char *out, char *flags, size_t cap, char *runs, size_t rcap) {
    nn_json d;
    char *t = load_results(out, &d);
    size_t o = 0, r = 0;
    const nn_json_val *models = get(&d, nn_json_root(&d), "models");
    for (const nn_json_val *m = nn_json_first(&d, models); m; m = nn_json_next(&d, m)) {
        if (o) flags[o++] = '|';
        for (const nn_json_val *c = nn_json_first(&d, get(&d, m, "cells")); c; c = nn_json_next(&d, c)) {
            assert_true(o + 2 < cap);
            flags[o++] = get(&d, c, "reused")->boolean ? '1' : '0';
            r += (size_t)snprintf(runs + r, rcap - r, "%s ", get(&d, c, "run")->str);
            assert_true(r < rcap);
        }
    }
    flags[o] = '\0';
    nn_json_free(&d);
    free(t);
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Checks the first run's results folder: models, battery, files, worst case, samples.csv. */
static void check_folder(const char *out) {
    nn_json d;
    char *t = load_results(out, &d);
    const nn_json_val *root = nn_json_root(&d);
    assert_string_equal(get(&d, root, "format")->str, "temper-evaluate-1");
    assert_int_equal(get(&d, root, "cells_total")->u, 18);
    assert_int_equal(get(&d, root, "samples")->u, 12);
    assert_string_equal(get(&d, get(&d, root, "experiment"), "name")->str, "ev");
    const nn_json_val *models = get(&d, root, "models");
    assert_int_equal(models->n, 2);
    const nn_json_val *a = nn_json_at(&d, models, 0), *b = nn_json_at(&d, models, 1);
    char want[400];
    snprintf(want, sizeof want, "%s/models/a", g_dir + 1); /* the leading '/' is dropped */
    assert_string_equal(get(&d, a, "label")->str, want);
    assert_int_equal(get(&d, a, "temperature")->num, 1);
    assert_int_equal(get(&d, b, "temperature")->num, 20);
    assert_int_equal(get(&d, a, "test_samples")->u, 12);
    assert_string_equal(get(&d, a, "data")->str, "mnist");
    /* the same logits up to the factor T: the same clean predictions */
    assert_true(get(&d, a, "clean_accuracy")->num == get(&d, b, "clean_accuracy")->num);
    assert_true(get(&d, a, "clean_accuracy")->num >= 0.5);
    /* T = 1: the list's 6 cells; T = 20: + fgsm-T (2), pgd-T, jsma-T, pgd-margin (0.1, 0.3) */
    const nn_json_val *ca = get(&d, a, "cells"), *cb = get(&d, b, "cells");
    assert_int_equal(ca->n, 6);
    assert_int_equal(cb->n, 12);
    const char *runs_b[] = {"fgsm-eps0.1", "fgsm-eps0.3", "pgd-eps0.1", "cw", "jsma", "deepfool", "fgsm-T-eps0.1",
                            "fgsm-T-eps0.3", "pgd-T-eps0.1", "jsma-T", "pgd-margin-eps0.1", "pgd-margin-eps0.3"};
    size_t i = 0;
    for (const nn_json_val *c = nn_json_first(&d, cb); c; c = nn_json_next(&d, c), i++) {
        assert_string_equal(get(&d, c, "run")->str, runs_b[i]);
        const nn_json_val *added = get(&d, c, "added");
        if (i < 6) assert_int_equal(added->type, NN_JSON_NULL);
        else assert_string_equal(added->str, "temperature-aware");
        assert_false(get(&d, c, "reused")->boolean);
        assert_int_equal(strlen(get(&d, c, "key")->str), 64);
        char p[800];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s/%s", g_dir, out, get(&d, c, "records")->str);
        assert_int_equal(stat(p, &st), 0);
        const nn_json_val *grid = get(&d, c, "grid");
        int want_grid = i < 2 || i == 3 || i == 4 || i == 6 || i == 7 || i == 9 || i >= 10;
        assert_int_equal(grid->type == NN_JSON_STRING, want_grid);
        /* the summaries: bounded one; unbounded null then each eps */
        const nn_json_val *s = get(&d, c, "summaries");
        assert_int_equal(s->n, (i == 3 || i == 4 || i == 9) ? 2 : 1);
        const nn_json_val *s0 = nn_json_first(&d, s);
        assert_int_equal(get(&d, s0, "samples")->u, i == 3 || i == 5 ? 6 : i == 4 || i == 9 ? 3 : 12);
        assert_int_equal(get(&d, s0, "runs")->u, i == 4 || i == 9 ? 27 : get(&d, s0, "samples")->u);
    }
    const nn_json_val *tp = get(&d, get(&d, nn_json_at(&d, cb, 8), "params"), "temperature");
    assert_int_equal(tp->num, 20);
    /* DeepFool crosses a linear model's boundary in one step: it breaks every clean-correct image */
    const nn_json_val *df = nn_json_first(&d, get(&d, nn_json_at(&d, ca, 5), "summaries"));
    assert_true(get(&d, df, "clean_correct")->u > 0);
    assert_int_equal(get(&d, df, "successes")->u, get(&d, df, "clean_correct")->u);
    /* worst case: linf 0.1, 0.3; l2 1; l0 5; robust accuracy falls with eps and never exceeds any summary's */
    const nn_json_val *wc = get(&d, b, "worst_case");
    assert_int_equal(wc->n, 4);
    const char *norms[] = {"linf", "linf", "l2", "l0"};
    double eps[] = {0.1, 0.3, 1, 5};
    for (i = 0; i < 4; i++) {
        const nn_json_val *w = nn_json_at(&d, wc, i);
        assert_string_equal(get(&d, w, "norm")->str, norms[i]);
        assert_true(get(&d, w, "eps")->num == eps[i]);
        assert_int_equal(get(&d, w, "samples")->u, 12);
        assert_true(get(&d, w, "robust_accuracy")->num <= get(&d, b, "clean_accuracy")->num);
    }
    double r01 = get(&d, nn_json_at(&d, wc, 0), "robust_accuracy")->num,
           r03 = get(&d, nn_json_at(&d, wc, 1), "robust_accuracy")->num;
    assert_true(r03 <= r01);
    const nn_json_val *fg = nn_json_first(&d, get(&d, nn_json_at(&d, cb, 1), "summaries"));
    assert_true(r03 <= get(&d, fg, "robust_accuracy")->num + 1e-12);
    const nn_json_val *att = get(&d, nn_json_at(&d, wc, 1), "attacks");
    assert_true(att->n >= 4); /* fgsm-eps0.3, fgsm-T-eps0.3, pgd-margin-eps0.3 at least */
    /* samples.csv: header + 12 rows; columns 3 + 5 per run + 4 worst */
    char p[800];
    size_t len;
    snprintf(p, sizeof p, "%s/%s/%s/samples.csv", g_dir, out, get(&d, b, "dir")->str);
    char *csv = slurp_path(p, &len);
    assert_int_equal(count_lines(csv), 13);
    size_t commas = 0;
    for (const char *q = csv; *q != '\n'; q++)
        commas += *q == ',';
    assert_int_equal(commas + 1, 3 + 5 * 12 + 4);
    assert_contains(csv, "test_index,label,clean_pred,fgsm-eps0.1_success,fgsm-eps0.1_pred,");
    assert_contains(csv, ",worst_linf_0.1_robust,worst_linf_0.3_robust,worst_l2_1_robust,worst_l0_5_robust\n");
    /* the worst-case column agrees with results.json */
    size_t robust = 0, commas_left = 0;
    for (size_t k = len; k-- > 0;) { /* worst_linf_0.3 is the fourth field from the end of each line */
        if (csv[k] == '\n') commas_left = 0;
        else if (csv[k] == ',' && ++commas_left == 3) robust += csv[k + 1] == '1';
    }
    assert_int_equal(robust, get(&d, nn_json_at(&d, wc, 1), "robust")->u);
    free(csv);
    /* the report was written */
    snprintf(p, sizeof p, "%s/%s/report.md", g_dir, out);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    nn_json_free(&d);
    free(t);
}

/* Models are listed in natural order: t-2 before t-10, numbers inside names compared as numbers. */
static void test_name_order(void **state) {
    (void)state;
    static const char *const sorted[] = {"a",        "a/t-1",    "a/t-02", "a/t-2", "a/t-10", "a/t-100",
                                         "a/t-100b", "a/t-100x", "a/u",    "b1",    "b1c2",   "b1c10"};
    size_t n = sizeof sorted / sizeof *sorted;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = ev_name_cmp(sorted[i], sorted[j]);
            if ((i < j && c >= 0) || (i == j && c != 0) || (i > j && c <= 0))
                fail_msg("ev_name_cmp('%s', '%s') = %d", sorted[i], sorted[j], c);
        }
}

static void test_cache_reuse_and_force(void **state) {
    (void)state;
    fixtures();
    char *log = NULL;
    size_t log_len = 0;
    FILE *progress = open_memstream(&log, &log_len);
    assert_non_null(progress);
    exp_evaluate_stats st = run_eval(yaml_text("c1", "o1", 5, 0), 0, progress);
    fclose(progress);
    assert_int_equal(st.models, 2);
    assert_int_equal(st.cells_total, 18);
    assert_int_equal(st.cells_reused, 0);
    assert_contains(log, "matches no file");                 /* the empty pattern: a warning */
    assert_contains(log, "[1/18] ");                         /* not a terminal: a line per cell */
    assert_contains(log, "fgsm-eps0.1: ");
    check_folder("o1");

    /* rerun: every cell reused, identical numbers and bytes */
    free(log);
    progress = open_memstream(&log, &log_len);
    st = run_eval(yaml_text("c1", "o2", 5, 0), 0, progress);
    fclose(progress);
    assert_int_equal(st.cells_reused, 18);
    assert_contains(log, "(reused)");
    free(log);
    char flags[64], runs[1024];
    reused_flags("o2", flags, sizeof flags, runs, sizeof runs);
    assert_string_equal(flags, "111111|111111111111");
    assert_int_equal(compare_results("o1", "o2"), 18);

    /* one pgd parameter changed: only pgd's cells (and its temperature-aware copy's) recomputed */
    st = run_eval(yaml_text("c1", "o3", 6, 0), 0, NULL);
    assert_int_equal(st.cells_reused, 15);
    reused_flags("o3", flags, sizeof flags, runs, sizeof runs);
    assert_string_equal(runs, "fgsm-eps0.1 fgsm-eps0.3 pgd-eps0.1 cw jsma deepfool fgsm-eps0.1 fgsm-eps0.3 pgd-eps0.1 "
                              "cw jsma deepfool fgsm-T-eps0.1 fgsm-T-eps0.3 pgd-T-eps0.1 jsma-T pgd-margin-eps0.1 "
                              "pgd-margin-eps0.3 ");
    assert_string_equal(flags, "110111|110111110111");

    /* --force through the command line: everything recomputed, the same bytes as the first run */
    char yaml[600], *text = yaml_text("c1", "o4", 5, 0);
    snprintf(yaml, sizeof yaml, "%s/ev.yaml", g_dir);
    assert_int_equal(nn_io_write_atomic(yaml, text, strlen(text), NULL), 0);
    FILE *out = tmpfile(), *errs = tmpfile();
    char *argv[] = {"temper", "run", yaml, "--force", "--quiet", NULL};
    int status = exp_main(5, argv, out, errs);
    char obuf[8192], ebuf[8192];
    rewind(out), rewind(errs);
    obuf[fread(obuf, 1, sizeof obuf - 1, out)] = '\0';
    ebuf[fread(ebuf, 1, sizeof ebuf - 1, errs)] = '\0';
    fclose(out), fclose(errs);
    if (status) fail_msg("temper run --force: %s", ebuf);
    assert_contains(obuf, "18 cells, 0 reused");
    assert_contains(obuf, "worst-case robust accuracy");
    assert_contains(obuf, "linf 0.3");
    reused_flags("o4", flags, sizeof flags, runs, sizeof runs);
    assert_string_equal(flags, "000000|000000000000");
    assert_int_equal(compare_results("o1", "o4"), 18);
}

/* ---- resume after kill -9 ---- */

/* Runs the evaluation in a child process on one thread (libgomp cannot start threads after fork), with the
 * kill hook; returns the wait status. */
static int child_run(const char *text, int kill_at, size_t kill_cell) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        omp_set_num_threads(1);
        exp_config *cfg = malloc(sizeof *cfg);
        nn_err err = {0};
        exp_evaluate_opts o = {.text = text, .text_len = strlen(text), .kill_at = kill_at, .kill_cell = kill_cell};
        int rc = !cfg || exp_config_parse(text, strlen(text), "ev.yaml", cfg, &err) ||
                 exp_evaluate_run(cfg, &o, NULL, &err);
        if (rc) fprintf(stderr, "child: %s\n", err.msg);
        _exit(rc ? 1 : 0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Finished cells and work folders in a cache. */
static void count_cells(const char *cache, size_t *finished, size_t *work) {
    char p[600];
    *finished = *work = 0;
    snprintf(p, sizeof p, "%s/%s/cells", g_dir, cache);
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%.256s", p, e->d_name);
        DIR *s = opendir(sub);
        struct dirent *f;
        while (s && (f = readdir(s)) != NULL)
            if (f->d_name[0] != '.') *(strcmp(e->d_name, "tmp") ? finished : work) += 1;
        if (s) closedir(s);
    }
    if (d) closedir(d);
}

static void test_resume_after_kill(void **state) {
    (void)state;
    fixtures();
    /* the uninterrupted reference, in this process */
    exp_evaluate_stats st = run_eval(yaml_text("k0", "r0", 5, 1), 0, NULL);
    assert_int_equal(st.cells_total, 13);
    struct {
        int at;
        size_t cell, finished, reused;
    } pts[3] = {{EXP_KILL_AFTER_COMMIT, 2, 2, 2}, {EXP_KILL_BEFORE_COMMIT, 3, 2, 2}, {EXP_KILL_BEFORE_RESULTS, 0, 13, 13}};
    for (int k = 0; k < 3; k++) {
        char cache[16], out[16], p[600];
        snprintf(cache, sizeof cache, "k%d", k + 1);
        snprintf(out, sizeof out, "r%d", k + 1);
        const char *text = yaml_text(cache, out, 5, 1);
        char *copy = strdup(text);
        int status = child_run(copy, pts[k].at, pts[k].cell);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("kill point %d: the child was not killed (status 0x%x)", pts[k].at, status);
        size_t fin, work;
        count_cells(cache, &fin, &work);
        assert_int_equal(fin, pts[k].finished);
        assert_int_equal(work, pts[k].at == EXP_KILL_BEFORE_COMMIT); /* the dead cell's work folder */
        struct stat sst;
        snprintf(p, sizeof p, "%s/%s/results.json", g_dir, out);
        assert_int_not_equal(stat(p, &sst), 0); /* never a results.json from an unfinished run */
        status = child_run(copy, EXP_KILL_NONE, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        count_cells(cache, &fin, &work);
        assert_int_equal(fin, 13);
        assert_int_equal(work, 0); /* the stale work folder was cleaned */
        nn_json d;
        char *t = load_results(out, &d);
        assert_int_equal(get(&d, nn_json_root(&d), "cells_reused")->u, pts[k].reused);
        nn_json_free(&d);
        free(t);
        assert_int_equal(compare_results("r0", out), 13);
        free(copy);
    }
}

/* ---- evaluate: in a file that trains ---- */

/* Runs `temper run <g_dir>/<name>.yaml --quiet [extra]` on text; returns the exit status, out and errors in
 * obuf/ebuf (cap bytes each). */
static int run_cli(const char *name, const char *text, const char *extra, char *obuf, char *ebuf, size_t cap) {
    char yaml[600];
    snprintf(yaml, sizeof yaml, "%s/%s.yaml", g_dir, name);
    assert_int_equal(nn_io_write_atomic(yaml, text, strlen(text), NULL), 0);
    FILE *out = tmpfile(), *errs = tmpfile();
    assert_true(out && errs);
    char *argv[] = {"temper", "run", yaml, "--quiet", (char *)extra, NULL};
    int status = exp_main(extra ? 5 : 4, argv, out, errs);
    rewind(out), rewind(errs);
    obuf[fread(obuf, 1, cap - 1, out)] = '\0';
    ebuf[fread(ebuf, 1, cap - 1, errs)] = '\0';
    fclose(out), fclose(errs);
    return status;
}

/* A training experiment: tiny linear nets trained one epoch on the synthetic set, output <g_dir>/<out>, cache
 * <g_dir>/<out>-cache; `extra` adds sections (sweep:, defense:, evaluate: keys via `ev`). */
static char *train_text(const char *out, const char *extra, const char *ev) {
    static char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "name: tev\n"
                     "output: %s/%s\n"
                     "data: {name: mnist}\n"
                     "model: [{type: flatten}, {type: dense, units: 10}]\n"
                     "train: {epochs: 1, batch_size: 10, seed: 1, optimizer: {type: sgd, lr: 0.1}}\n"
                     "%s"
                     "evaluate: {samples: 6, cache: %s/%s-cache%s}\n"
                     "attacks:\n"
                     "  - {type: fgsm, eps: [0.1, 0.3], grid: 2}\n",
                     g_dir, out, extra, g_dir, out, ev);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    return buf;
}

/* Whether <g_dir>/<out>/<sub> exists. */
static int exists(const char *out, const char *sub) {
    char p[800];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s/%s", g_dir, out, sub);
    return stat(p, &st) == 0;
}

/* results.json of <out>/evaluate: the labels (space-separated) into labels, cells_total and cells_reused. */
static void eval_summary(const char *out, char *labels, size_t cap, size_t *total, size_t *reused) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/evaluate", out);
    nn_json d;
    char *t = load_results(sub, &d);
    const nn_json_val *root = nn_json_root(&d);
    size_t o = 0;
    labels[0] = '\0';
    for (const nn_json_val *m = nn_json_first(&d, get(&d, root, "models")); m; m = nn_json_next(&d, m))
        o += (size_t)snprintf(labels + o, cap - o, "%s%s", o ? " " : "", get(&d, m, "label")->str);
    assert_true(o < cap);
    *total = (size_t)get(&d, root, "cells_total")->u;
    *reused = (size_t)get(&d, root, "cells_reused")->u;
    nn_json_free(&d);
    free(t);
}

/* A sweep of two points with evaluate:: each run trained without attacks, both models evaluated with labels
 * of their folders; a rerun reuses every run and every cell; --force recomputes both. */
static void test_train_sweep_evaluate(void **state) {
    (void)state;
    fixtures();
    static char obuf[16384], ebuf[16384];
    char labels[256], want[800];
    size_t total = 0, reused = 0;
    const char *text = train_text("ts", "sweep: {key: train.seed, values: [1, 2]}\n", "");
    if (run_cli("ts", text, NULL, obuf, ebuf, sizeof obuf)) fail_msg("temper run: %s", ebuf);
    assert_contains(obuf, "train.seed = 2 (2 of 2)");
    assert_contains(obuf, "evaluating the 2 models of tev\n");
    assert_contains(obuf, "4 cells, 0 reused");
    eval_summary("ts", labels, sizeof labels, &total, &reused);
    assert_string_equal(labels, "seed-1 seed-2");
    assert_int_equal(total, 4); /* 2 models x fgsm at 2 eps (T = 1: no temperature-aware additions) */
    assert_int_equal(reused, 0);
    /* the runs finished without attacking: the attacks: list is the batch evaluation's only */
    assert_true(exists("ts", "seed-1/metrics.json") && exists("ts", "seed-2/model.safetensors"));
    assert_false(exists("ts", "seed-1/attacks"));
    assert_false(exists("ts", "seed-2/attacks"));
    assert_true(exists("ts", "sweep.csv"));
    assert_true(exists("ts", "evaluate/report.md"));
    assert_true(exists("ts", "evaluate/models/seed-2/fgsm-eps0.3/records.npy"));
    assert_true(exists("ts", "evaluate/models/seed-1/fgsm-eps0.1/grid.png"));
    nn_json d;
    char *t = load_results("ts/evaluate", &d);
    const nn_json_val *m0 = nn_json_first(&d, get(&d, nn_json_root(&d), "models"));
    snprintf(want, sizeof want, "%s/ts/seed-1/model.safetensors", g_dir);
    assert_string_equal(get(&d, m0, "file")->str, want);
    assert_string_equal(get(&d, m0, "dir")->str, "models/seed-1");
    assert_int_equal(get(&d, m0, "test_samples")->u, 6);
    assert_string_equal(get(&d, get(&d, nn_json_root(&d), "experiment"), "text")->str, text);
    nn_json_free(&d);
    free(t);

    /* rerun: every run and every cell reused */
    if (run_cli("ts", text, NULL, obuf, ebuf, sizeof obuf)) fail_msg("temper run (rerun): %s", ebuf);
    assert_int_equal(test_count_str(obuf, "finished earlier, reused"), 2);
    assert_int_equal(test_count_str(obuf, " of 2)"), 0);
    eval_summary("ts", labels, sizeof labels, &total, &reused);
    assert_string_equal(labels, "seed-1 seed-2");
    assert_int_equal(total, 4);
    assert_int_equal(reused, total);
    /* another attack list: the runs are still reused (attacks: is not in their keys), the new cells computed */
    char *edited = strdup(text);
    memcpy(strstr(edited, "0.1, 0.3"), "0.1, 0.2", 8);
    if (run_cli("ts", edited, NULL, obuf, ebuf, sizeof obuf)) fail_msg("temper run (edited): %s", ebuf);
    assert_int_equal(test_count_str(obuf, "finished earlier, reused"), 2);
    eval_summary("ts", labels, sizeof labels, &total, &reused);
    assert_int_equal(total, 4);
    assert_int_equal(reused, 2);
    free(edited);

    /* --force: the runs retrained and every cell recomputed */
    if (run_cli("ts", text, "--force", obuf, ebuf, sizeof obuf)) fail_msg("temper run --force: %s", ebuf);
    assert_int_equal(test_count_str(obuf, "--force: recomputing"), 2);
    assert_contains(obuf, "train.seed = 1 (1 of 2)");
    assert_contains(obuf, "4 cells, 0 reused");
    eval_summary("ts", labels, sizeof labels, &total, &reused);
    assert_int_equal(total, 4);
    assert_int_equal(reused, 0);
    assert_false(exists("ts", "seed-1/attacks"));
}

/* A single distillation run with evaluate.teachers and evaluate.models: the student ("model"), the teacher it
 * trained ("teacher"), then the saved model a; the teacher's own attacks do not run either. */
static void test_train_teachers_evaluate(void **state) {
    (void)state;
    fixtures();
    static char obuf[16384], ebuf[16384];
    char labels[1024], ev[700], want[1024];
    size_t total = 0, reused = 0;
    snprintf(ev, sizeof ev, ", teachers: true, models: [%s/models/a/model.safetensors]", g_dir);
    const char *text = train_text("td", "defense: {type: distillation, temperature: 2}\n", ev);
    if (run_cli("td", text, NULL, obuf, ebuf, sizeof obuf)) fail_msg("temper run: %s", ebuf);
    assert_contains(obuf, "teacher-student agreement");
    assert_contains(obuf, "evaluating the 2 models of tev and evaluate.models\n");
    eval_summary("td", labels, sizeof labels, &total, &reused);
    snprintf(want, sizeof want, "model teacher %s/models/a", g_dir + 1); /* the leading '/' dropped */
    assert_string_equal(labels, want);
    /* student and teacher at T = 2: fgsm, fgsm-T and pgd-margin at 2 eps each; a at T = 1: fgsm only */
    assert_int_equal(total, 6 + 6 + 2);
    assert_int_equal(reused, 0);
    assert_false(exists("td", "attacks"));
    assert_false(exists("td", "teacher/attacks"));
    nn_json d;
    char *t = load_results("td/evaluate", &d);
    const nn_json_val *models = get(&d, nn_json_root(&d), "models"), *tm = nn_json_at(&d, models, 1);
    snprintf(want, sizeof want, "%s/td/teacher/model.safetensors", g_dir);
    assert_string_equal(get(&d, tm, "file")->str, want);
    assert_int_equal(get(&d, tm, "temperature")->num, 2);
    assert_int_equal(get(&d, nn_json_at(&d, models, 0), "temperature")->num, 2);
    assert_int_equal(get(&d, nn_json_at(&d, models, 2), "temperature")->num, 1);
    nn_json_free(&d);
    free(t);
    if (run_cli("td", text, NULL, obuf, ebuf, sizeof obuf)) fail_msg("temper run (rerun): %s", ebuf);
    assert_contains(obuf, "finished earlier, reused");
    eval_summary("td", labels, sizeof labels, &total, &reused);
    assert_int_equal(reused, 14);

    /* without evaluate.teachers: no teacher; a run that trains none warns when asked for teachers */
    text = train_text("tn", "", ", teachers: true");
    if (run_cli("tn", text, NULL, obuf, ebuf, sizeof obuf)) fail_msg("temper run: %s", ebuf);
    assert_contains(ebuf, "temper: warning: evaluate.teachers: no run of ");
    eval_summary("tn", labels, sizeof labels, &total, &reused);
    assert_string_equal(labels, "model");
    assert_int_equal(total, 2);
}

/* ---- runtime errors and the command line ---- */

static void test_errors_and_cli(void **state) {
    (void)state;
    fixtures();
    char text[1024];
    snprintf(text, sizeof text,
             "evaluate: {models: ['%s/none/*.safetensors'], cache: %s/c9}\noutput: %s/o9\nattacks: [{type: fgsm}]\n",
             g_dir, g_dir, g_dir);
    exp_config *cfg = parse(text);
    exp_evaluate_opts o = {0};
    nn_err err = {0};
    assert_int_not_equal(exp_evaluate_run(cfg, &o, NULL, &err), 0);
    assert_contains(err.msg, "no model file found");
    snprintf(text, sizeof text, "evaluate: {models: ['%s/none.safetensors'], cache: %s/c9}\nattacks: [{type: fgsm}]\n",
             g_dir, g_dir);
    free(cfg);
    cfg = parse(text);
    assert_int_not_equal(exp_evaluate_run(cfg, &o, NULL, &err), 0);
    assert_contains(err.msg, "evaluate.models[0]");
    assert_contains(err.msg, "none.safetensors");
    free(cfg);

    FILE *out = tmpfile(), *errs = tmpfile();
    char buf[8192];
    char *h1[] = {"temper", "help", "run", NULL};
    assert_int_equal(exp_main(3, h1, out, errs), 0);
    char *h2[] = {"temper", "help", "report", NULL};
    assert_int_equal(exp_main(3, h2, out, errs), 0);
    char *h3[] = {"temper", "report", NULL};
    assert_int_equal(exp_main(2, h3, out, errs), 2); /* missing DIR */
    snprintf(text, sizeof text, "%s/missing", g_dir);
    char *h4[] = {"temper", "report", text, NULL};
    assert_int_equal(exp_main(3, h4, out, errs), 1); /* no results.json */
    rewind(out);
    buf[fread(buf, 1, sizeof buf - 1, out)] = '\0';
    assert_contains(buf, "--force");
    assert_contains(buf, "usage: temper report DIR");
    rewind(errs);
    buf[fread(buf, 1, sizeof buf - 1, errs)] = '\0';
    assert_contains(buf, "temper report: missing results folder");
    assert_contains(buf, "temper: error:");
    fclose(out);
    fclose(errs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worst_case),
        cmocka_unit_test(test_name_order),
        cmocka_unit_test(test_battery),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_cache_reuse_and_force),
        cmocka_unit_test(test_resume_after_kill),
        cmocka_unit_test(test_train_sweep_evaluate),
        cmocka_unit_test(test_train_teachers_evaluate),
        cmocka_unit_test(test_errors_and_cli),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
