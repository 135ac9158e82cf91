/* exp_cli.c - argument parsing, help texts and the exit status of `temper`. */
#include "exp_cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exp_bss.h"
#include "exp_report.h"
#include "exp_run.h"
#include "nn_sys.h"


static const char usage_main[] =
    "usage: temper <command> [options]\n"
    "\n"
    "commands:\n"
    "  run FILE.yaml      train and test the network an experiment file describes (or, with an evaluate:\n"
    "                     block, attack many saved models with one cached battery)\n"
    "  eval MODEL         evaluate a model file on a test set\n"
    "  attack MODEL       attack a model file (FGSM, PGD, JSMA, C&W, DeepFool) on its test set\n"
    "  bss MODEL          generate boundary-supporting samples (BSS) from a model on its training set\n"
    "  report DIR         regenerate the report of a batch evaluation's results folder\n"
    "  help [COMMAND]     this text, or a command's options\n"
    "\n"
    "options: --help, --version\n"
    "exit status: 0 success, 1 error, 2 command-line mistake\n";

static const char usage_run[] =
    "usage: temper run FILE.yaml [--output DIR] [--threads N] [--epochs N] [--force] [--quiet]\n"
    "                            [--allow-any-blas]\n"
    "\n"
    "Trains the network described by FILE.yaml, evaluates it on the test set and writes into the output\n"
    "folder: model.safetensors, train_log.csv, experiment.yaml (a copy of FILE.yaml) and, last,\n"
    "metrics.json. A folder holds a metrics.json only when the run that wrote it finished.\n"
    "\n"
    "Reuse: metrics.json records the run key, a SHA-256 over everything that produced the run: every\n"
    "setting that can change the model or its evaluation (data, model, model_file, train, teacher, defense,\n"
    "attacks, bss, boundary, after --epochs; not name, output or threads), the temper version, and the\n"
    "bytes of the data set's files and of every model file the run loads (model_file, teacher,\n"
    "defense.pool). A folder that already holds a finished run of the same key is reused: a single run\n"
    "prints the path of its metrics.json, a sweep: or variants: experiment reruns only its other points.\n"
    "A folder of another key is recomputed (\"the experiment changed since it ran (run key differs)\"); its\n"
    "old files stay until the new model is trained, then its metrics.json goes first. A folder from an\n"
    "older temper (no run key, e.g. restored by scripts/results_sync.sh) is reused with a warning.\n"
    "--force recomputes every run.\n"
    "\n"
    "A file with an evaluate: block and no model: instead attacks every model file it names (paths or glob\n"
    "patterns) with its attacks: list. Each model x attack x eps is a cell cached in evaluate.cache (default\n"
    "results/.cache): a rerun reuses every finished cell, a changed attack recomputes only its own cells,\n"
    "an interrupted run resumes. The output folder gets results.json (written last), per model its cells'\n"
    "records.npy and grid.png and samples.csv, and the report (summary.csv, report.md, plots/).\n"
    "\n"
    "A file that trains (model:, also with sweep: or variants:) and has an evaluate: block first finishes\n"
    "every run (trained or reused) without attacking it: its attacks: list is used ONLY by the batch\n"
    "evaluation (and is not part of the run key), so nothing is attacked twice. Then it evaluates, into\n"
    "<output>/evaluate/, every run's model.safetensors in the sweep's order (labelled by its folder, e.g.\n"
    "temperature-10, kd/subset-600/seed-0), after each the teacher the run trained when evaluate.teachers is\n"
    "true (default false), then the models evaluate.models names (optional here). --force recomputes the\n"
    "runs and the cells.\n"
    "\n"
    "  --output DIR      results folder (default: the file's `output`, else results/<name>)\n"
    "  --threads N       OpenMP threads (default: the file's `threads`, else OMP_NUM_THREADS / all cores)\n"
    "  --epochs N        override train.epochs\n"
    "  --force           recompute every run and every evaluate: cell instead of reusing finished ones\n"
    "  --quiet           no progress lines\n"
    "  --allow-any-blas  run even if OpenBLAS is not its OpenMP build\n"
    "\n"
    "Data are read from $TEMPER_DATA, else ~/.cache/temper/data (scripts/fetch_data.sh fills it).\n";

static const char usage_eval[] =
    "usage: temper eval MODEL.safetensors [--data mnist|fashion-mnist] [--range LO,HI] [--batch N]\n"
    "                   [--limit N] [--logits OUT.npy] [--threads N]\n"
    "\n"
    "Evaluates a model file on a test set: accuracy, errors, errors per class.\n"
    "\n"
    "  --data NAME       test set (default: the data set the model was trained on, from its metadata)\n"
    "  --range LO,HI     pixel range (default: the model's training range, else 0,1)\n"
    "  --batch N         evaluation batch size (default 256)\n"
    "  --limit N         evaluate the first N test samples only\n"
    "  --logits OUT.npy  write the logits [n, classes] as float32 .npy\n"
    "  --threads N       OpenMP threads\n";

static const char usage_attack[] =
    "usage: temper attack MODEL.safetensors --attack NAME [options]\n"
    "\n"
    "Attacks the first --samples test images and writes a results folder (attacks.json, summary.csv, and\n"
    "per run samples.csv, adv.npy, labels.npy, targets.npy, grid.png). Prints robust accuracy, success rate,\n"
    "distortions and the gradient-masking diagnostics, with a warning when the numbers look like masking.\n"
    "\n"
    "  --attack NAME       fgsm | fgm | bim | bim-l2 | pgd | pgd-l2 | jsma | cw | deepfool\n"
    "  --eps LIST          budgets, e.g. 0.1,0.2,0.3 (bounded attacks: one run each, default 0.3, L2: 2;\n"
    "                      jsma/cw/deepfool: extra summaries within each bound)\n"
    "  --samples N         first N test images (default 1000)\n"
    "  --targeted          targeted attack (jsma always is; deepfool never)\n"
    "  --targets WHICH     all (every other class, default) | next | random\n"
    "  --loss ce|margin    fgsm/bim/pgd objective (default ce: cross-entropy at --temperature)\n"
    "  --temperature T     softmax temperature of the ce loss and of jsma (default 1)\n"
    "  --kappa K           confidence of the margin loss and of cw (default 0)\n"
    "  --iters N           bim/pgd 40, cw 1000 per search step, deepfool 50\n"
    "  --step S            bim/pgd step (default 2.5 * eps / iters)\n"
    "  --restarts N        pgd random restarts (default 1)\n"
    "  --no-random-start   pgd without its random start\n"
    "  --gamma G           jsma: largest fraction of features changed (default 0.145)\n"
    "  --on WHAT           jsma: softmax (default; at --temperature) | logits\n"
    "  --search-steps N    cw binary-search steps (default 9)\n"
    "  --lr X, --c0 X      cw Adam learning rate (1e-2) and initial constant (1e-3)\n"
    "  --overshoot X       deepfool overshoot (default 0.02)\n"
    "  --seed N            random starts and targets (default 1)\n"
    "  --grid N            rows of grid.png (0..64, default 16; 0: no grid)\n"
    "  --data NAME, --range LO,HI   as for eval (default: from the model's metadata)\n"
    "  --output DIR        results folder (default: <model folder>/attacks)\n"
    "  --threads N, --quiet\n";

static const char usage_report[] =
    "usage: temper report DIR\n"
    "\n"
    "Regenerates the report of a batch evaluation's results folder DIR (written by `temper run` on a file\n"
    "with an evaluate: block) from its results.json and the records it names: summary.csv, report.md and\n"
    "plots/. Attacks nothing and never changes results.json or the records.\n";

enum { OPT_FLAG, OPT_STR, OPT_COUNT, OPT_INT, OPT_RANGE };
enum { PARSE_HELP = -1 }; /* parse_args/parse_command: --help was asked for (and printed) */

typedef struct cli_opt {
    const char *name; /* without the leading "--" */
    int kind;         /* OPT_* */
    void *dst;        /* int* (FLAG, INT), const char** (STR), size_t* (COUNT), exp_eval_opts* (RANGE) */
} cli_opt;

/* Strict positive integer: digits only, no sign, no overflow, >= 1. */
static int parse_count(const char *s, unsigned long long max, unsigned long long *v) {
    if (!s[0]) return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno == ERANGE || x < 1 || x > max) return -1;
    *v = x;
    return 0;
}

static int parse_range_opt(const char *s, exp_eval_opts *e) {
    if (exp_parse_range(s, &e->lo, &e->hi) != 0) return -1;
    e->has_range = 1;
    return 0;
}

/* Stores value into the option's destination; non-zero with a message when the value is malformed. */
static int opt_store(const char *cmd, const cli_opt *o, const char *value, FILE *errs) {
    unsigned long long v;
    switch (o->kind) {
    case OPT_STR:
        *(const char **)o->dst = value;
        return 0;
    case OPT_COUNT:
        if (parse_count(value, SIZE_MAX, &v) == 0) {
            *(size_t *)o->dst = (size_t)v;
            return 0;
        }
        break;
    case OPT_INT: /* only --threads: 1..1024 (libgomp aborts when it cannot create a thread) */
        if (parse_count(value, 1024, &v) == 0) {
            *(int *)o->dst = (int)v;
            return 0;
        }
        fprintf(errs, "temper %s: --%s: '%s' is not an integer in 1..1024\n", cmd, o->name, value);
        return -1;
    case OPT_RANGE:
        if (parse_range_opt(value, o->dst) == 0) return 0;
        fprintf(errs, "temper %s: --%s: '%s' is not LO,HI with LO < HI\n", cmd, o->name, value);
        return -1;
    }
    fprintf(errs, "temper %s: --%s: '%s' is not a positive integer\n", cmd, o->name, value);
    return -1;
}

/* Parses argv[0..argc) against opts, one positional argument into *pos. Returns 0, PARSE_HELP,
 * or EXP_EXIT_USAGE after printing what is wrong. */
static int parse_args(const char *cmd, int argc, char **argv, const cli_opt *opts, const char **pos,
                      FILE *errs) {
    int only_pos = 0;
    *pos = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) return PARSE_HELP;
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*pos) {
                fprintf(errs, "temper %s: unexpected argument '%s'\n", cmd, a);
                return EXP_EXIT_USAGE;
            }
            *pos = a;
            continue;
        }
        const char *name = a[1] == '-' ? a + 2 : a + 1, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = opts;
        while (o->name && (a[1] != '-' || strlen(o->name) != len || strncmp(o->name, name, len) != 0))
            o++;
        if (!o->name) {
            fprintf(errs, "temper %s: unknown option '%s'\n", cmd, a);
            return EXP_EXIT_USAGE;
        }
        if (o->kind == OPT_FLAG) {
            if (eq) {
                fprintf(errs, "temper %s: option --%s takes no value\n", cmd, o->name);
                return EXP_EXIT_USAGE;
            }
            *(int *)o->dst = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            fprintf(errs, "temper %s: option --%s needs a value\n", cmd, o->name);
            return EXP_EXIT_USAGE;
        }
        if (opt_store(cmd, o, value, errs)) return EXP_EXIT_USAGE;
    }
    return 0;
}

/* Shared ending of a command: help, usage error, missing positional argument, or go. */
static int parse_command(const char *cmd, const char *usage, const char *what, int argc, char **argv,
                         const cli_opt *opts, const char **pos, FILE *out, FILE *errs) {
    int rc = parse_args(cmd, argc, argv, opts, pos, errs);
    if (rc == PARSE_HELP) {
        fputs(usage, out);
        return PARSE_HELP;
    }
    if (rc == 0 && !*pos) {
        fprintf(errs, "temper %s: missing %s\n", cmd, what);
        rc = EXP_EXIT_USAGE;
    }
    if (rc) fprintf(errs, "Try 'temper %s --help'.\n", cmd);
    return rc;
}

static int report(int rc, const nn_err *err, FILE *errs) {
    if (rc == NN_OK) return EXP_EXIT_OK;
    fprintf(errs, "temper: error: %s\n", err->msg[0] ? err->msg : nn_err_name(rc));
    return EXP_EXIT_ERROR;
}

static int cmd_run(int argc, char **argv, FILE *out, FILE *errs) {
    exp_run_opts o = {0};
    const cli_opt opts[] = {{"output", OPT_STR, &o.output},
                            {"threads", OPT_INT, &o.threads},
                            {"epochs", OPT_COUNT, &o.epochs},
                            {"quiet", OPT_FLAG, &o.quiet},
                            {"force", OPT_FLAG, &o.force},
                            {"allow-any-blas", OPT_FLAG, &o.allow_any_blas},
                            {NULL, 0, NULL}};
    int rc =
        parse_command("run", usage_run, "experiment file (FILE.yaml)", argc, argv, opts, &o.file, out, errs);
    if (rc) return rc == PARSE_HELP ? EXP_EXIT_OK : rc;
    nn_err err = {0};
    return report(exp_run(&o, out, errs, &err), &err, errs);
}

static int cmd_eval(int argc, char **argv, FILE *out, FILE *errs) {
    exp_eval_opts o = {0};
    o.batch = 256;
    const cli_opt opts[] = {{"data", OPT_STR, &o.data},
                            {"range", OPT_RANGE, &o},
                            {"batch", OPT_COUNT, &o.batch},
                            {"limit", OPT_COUNT, &o.limit},
                            {"logits", OPT_STR, &o.logits},
                            {"threads", OPT_INT, &o.threads},
                            {NULL, 0, NULL}};
    int rc = parse_command("eval", usage_eval, "model file (MODEL.safetensors)", argc, argv, opts, &o.model,
                           out, errs);
    if (rc) return rc == PARSE_HELP ? EXP_EXIT_OK : rc;
    nn_err err = {0};
    return report(exp_eval(&o, out, &err), &err, errs);
}

/* A finite number >= 0 (> 0 when positive), from the whole string. */
static int parse_num(const char *s, int positive, float *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(x) || x < 0 || (positive && x == 0)) return -1;
    *v = (float)x;
    return 0;
}

/* --eps 0.1,0.2,0.3 -> a->eps (positive numbers). */
static int parse_eps(const char *s, exp_attack *a) {
    char buf[512];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    a->n_eps = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (a->n_eps == EXP_MAX_EPS || parse_num(t, 1, &a->eps[a->n_eps])) return -1;
        a->n_eps++;
    }
    return a->n_eps ? 0 : -1;
}

static int choice(const char *s, const char *const *names, int *v) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) {
            *v = i;
            return 0;
        }
    return -1;
}

/* The attack's string options -> o->attack; prints what is wrong. */
static int attack_opts(const char *const *sv, int no_rs, int targeted, exp_attack_opts *o, FILE *errs) {
    enum { A_NAME, A_EPS, A_LOSS, A_T, A_KAPPA, A_STEP, A_GAMMA, A_ON, A_LR, A_C0, A_OVER, A_TARGETS, A_N };
    static const char *const names[] = {"attack", "eps", "loss", "temperature", "kappa", "step", "gamma",
                                        "on", "lr", "c0", "overshoot", "targets"};
    static const char *const losses[] = {"ce", "margin", NULL}, *const ons[] = {"softmax", "logits", NULL},
                             *const targets[] = {"all", "next", "random", NULL};
    atk_kind k;
    atk_norm norm;
    char kind[16];
    const char *a = sv[A_NAME];
    int l2 = !strcmp(a, "pgd-l2") || !strcmp(a, "bim-l2");
    snprintf(kind, sizeof kind, "%.3s", a);
    if (!l2) snprintf(kind, sizeof kind, "%s", a);
    if (atk_kind_parse(kind, &k, &norm)) {
        fprintf(errs, "temper attack: --attack: unknown attack '%s'\n", a);
        return -1;
    }
    exp_attack *x = &o->attack;
    *x = exp_attack_default(k, l2 ? ATK_L2 : norm);
    snprintf(x->name, sizeof x->name, "%s", atk_name(&x->cfg));
    atk_cfg *c = &x->cfg;
    float *fl[A_N] = {NULL, NULL, NULL, &c->temperature, &c->kappa, &c->step, &c->gamma, NULL, &c->lr, &c->c0,
                      &c->overshoot, NULL};
    int pos[A_N] = {0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0}, bad = 0, v = 0;
    for (int i = 1; i < A_N && !bad; i++) {
        if (!sv[i]) continue;
        if (fl[i]) bad = parse_num(sv[i], pos[i], fl[i]);
        else if (i == A_EPS) bad = parse_eps(sv[i], x);
        else if (i == A_LOSS) bad = choice(sv[i], losses, &v), c->loss = (atk_loss)v;
        else if (i == A_ON) bad = choice(sv[i], ons, &v), c->jsma_on = (atk_jsma_on)v;
        else if (i == A_TARGETS) bad = choice(sv[i], targets, &v), x->targets = v;
        if (bad) fprintf(errs, "temper attack: --%s: '%s' is not valid\n", names[i], sv[i]);
    }
    if (bad) return -1;
    if (!x->n_eps && exp_attack_bounded(x)) x->eps[x->n_eps++] = norm == ATK_L2 || l2 ? 2.0f : 0.3f;
    if (no_rs) c->random_start = 0;
    if (targeted) c->targeted = 1;
    return 0;
}

static int cmd_attack(int argc, char **argv, FILE *out, FILE *errs) {
    exp_attack_opts o;
    memset(&o, 0, sizeof o);
    const char *sv[12] = {NULL};
    size_t iters = 0, restarts = 0, search = 0, seed = 0, samples = 0;
    const char *grid = NULL;
    int no_rs = 0, targeted = 0;
    const cli_opt opts[] = {
        {"attack", OPT_STR, &sv[0]},        {"eps", OPT_STR, &sv[1]},         {"loss", OPT_STR, &sv[2]},
        {"temperature", OPT_STR, &sv[3]},   {"kappa", OPT_STR, &sv[4]},       {"step", OPT_STR, &sv[5]},
        {"gamma", OPT_STR, &sv[6]},         {"on", OPT_STR, &sv[7]},          {"lr", OPT_STR, &sv[8]},
        {"c0", OPT_STR, &sv[9]},            {"overshoot", OPT_STR, &sv[10]},  {"targets", OPT_STR, &sv[11]},
        {"iters", OPT_COUNT, &iters},       {"restarts", OPT_COUNT, &restarts}, {"search-steps", OPT_COUNT, &search},
        {"samples", OPT_COUNT, &samples}, {"seed", OPT_COUNT, &seed}, {"grid", OPT_STR, &grid},
        {"no-random-start", OPT_FLAG, &no_rs}, {"targeted", OPT_FLAG, &targeted},
        {"data", OPT_STR, &o.ev.data},      {"range", OPT_RANGE, &o.ev},      {"output", OPT_STR, &o.output},
        {"threads", OPT_INT, &o.ev.threads}, {"quiet", OPT_FLAG, &o.quiet},   {NULL, 0, NULL}};
    int rc = parse_command("attack", usage_attack, "model file (MODEL.safetensors)", argc, argv, opts, &o.ev.model,
                           out, errs);
    if (rc) return rc == PARSE_HELP ? EXP_EXIT_OK : rc;
    if (!sv[0]) {
        fprintf(errs, "temper attack: --attack NAME is required\nTry 'temper attack --help'.\n");
        return EXP_EXIT_USAGE;
    }
    if (attack_opts(sv, no_rs, targeted, &o, errs)) return EXP_EXIT_USAGE;
    if (seed) o.attack.cfg.seed = seed;
    if (samples) o.attack.samples = samples;
    float g = 0;
    if (grid && (parse_num(grid, 0, &g) || g > 64 || g != (float)(int)g)) {
        fprintf(errs, "temper attack: --grid: '%s' is not an integer in 0..64\n", grid);
        return EXP_EXIT_USAGE;
    }
    if (grid) o.attack.grid = (size_t)g;
    if (iters) o.attack.cfg.iters = iters > 1000000 ? 1000001 : (int)iters;
    if (restarts) o.attack.cfg.restarts = restarts > 1000 ? 1001 : (int)restarts;
    if (search) o.attack.cfg.search_steps = search > 100 ? 101 : (int)search;
    nn_err err = {0};
    return report(exp_attack_cmd(&o, out, errs, &err), &err, errs);
}

static int cmd_report(int argc, char **argv, FILE *out, FILE *errs) {
    const cli_opt opts[] = {{NULL, 0, NULL}};
    const char *dir = NULL;
    int rc = parse_command("report", usage_report, "results folder (DIR)", argc, argv, opts, &dir, out, errs);
    if (rc) return rc == PARSE_HELP ? EXP_EXIT_OK : rc;
    nn_err err = {0};
    return report(exp_report_write(dir, out, &err), &err, errs);
}

static void print_version(FILE *out) {
    nn_sys_info s;
    nn_sys_info_get(&s);
    fprintf(out, "temper %s (git %s)\n", TEMPER_VERSION, TEMPER_GIT);
    fprintf(out, "BLAS: %s\n", s.blas_config);
    fprintf(out, "conv GEMM: %s\n", s.gemm_avx512 ? "temper AVX-512 kernels" : "cblas_sgemm (no AVX-512)");
    fprintf(out, "BLAS threading: %s (mode %d)%s, %d threads\n", exp_blas_mode_name(s.blas_parallel),
            s.blas_parallel, s.blas_parallel == 2 ? "" : " - not the OpenMP build: `temper run` refuses it",
            s.blas_threads);
    fprintf(out, "OpenMP threads: %d\n", s.threads);
}

/* `temper help [CMD]`. */
static int cmd_help(int argc, char **argv, FILE *out, FILE *errs) {
    if (argc == 0) {
        fputs(usage_main, out);
        return EXP_EXIT_OK;
    }
    if (argc == 1 && strcmp(argv[0], "run") == 0)
        fputs(usage_run, out);
    else if (argc == 1 && strcmp(argv[0], "eval") == 0)
        fputs(usage_eval, out);
    else if (argc == 1 && strcmp(argv[0], "attack") == 0)
        fputs(usage_attack, out);
    else if (argc == 1 && strcmp(argv[0], "report") == 0)
        fputs(usage_report, out);
    else if (argc == 1 && strcmp(argv[0], "bss") == 0)
        return exp_bss_cmd(1, (char *[]){"--help"}, out, errs);
    else if (argc == 1 && strcmp(argv[0], "help") == 0)
        fputs(usage_main, out);
    else {
        fprintf(errs, "temper help: unknown command '%s'\nTry 'temper --help'.\n", argv[0]);
        return EXP_EXIT_USAGE;
    }
    return EXP_EXIT_OK;
}

int exp_main(int argc, char **argv, FILE *out, FILE *errs) {
    if (argc < 2) {
        fputs(usage_main, errs);
        return EXP_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) return cmd_help(0, NULL, out, errs);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        print_version(out);
        return EXP_EXIT_OK;
    }
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 2, argv + 2, out, errs);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 2, argv + 2, out, errs);
    if (strcmp(cmd, "attack") == 0) return cmd_attack(argc - 2, argv + 2, out, errs);
    if (strcmp(cmd, "bss") == 0) return exp_bss_cmd(argc - 2, argv + 2, out, errs);
    if (strcmp(cmd, "report") == 0) return cmd_report(argc - 2, argv + 2, out, errs);
    if (strcmp(cmd, "help") == 0) return cmd_help(argc - 2, argv + 2, out, errs);
    fprintf(errs, "temper: unknown %s '%s'\nTry 'temper --help'.\n", cmd[0] == '-' ? "option" : "command",
            cmd);
    return EXP_EXIT_USAGE;
}
