/* test_cli.c - the `temper` command line (exit status, messages), the JSON writer, the progress
 * formatting, and one end-to-end `run` + `eval` on a tiny synthetic IDX data set in a temp folder. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include "test_util.h"

#include "exp_cli.h"
#include "exp_config.h"
#include "exp_json.h"
#include "exp_progress.h"
#include "exp_run.h"
#include "nn_io.h"
#include "nn_json.h"

static char g_dir[256]; /* this run's temp folder */

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/temper_test_cli_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    rm_rf(g_dir);
    return 0;
}

/* ---- running the CLI as a function ---- */

typedef struct cli_result {
    int status;
    char out[16384], err[16384];
} cli_result;

static void slurp(FILE *f, char *buf, size_t cap) {
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs exp_main on a NULL-terminated argument list; output and errors captured in r. */
static void cli(cli_result *r, ...) {
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, r);
    argv[argc++] = "temper";
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    r->status = exp_main(argc, argv, out, err);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
}

#define assert_contains(hay, needle)                                                                         \
    do {                                                                                                     \
        if (!strstr((hay), (needle))) fail_msg("'%s' not found in:\n%s", (needle), (hay));                   \
    } while (0)

static void test_help_and_version(void **state) {
    (void)state;
    static cli_result r;
    cli(&r, "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "usage: temper <command>");
    cli(&r, "help", "eval", NULL);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "--logits");
    cli(&r, "run", "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "--epochs");
    assert_contains(r.out, "attacks: list is used ONLY by the batch\nevaluation"); /* evaluate: in a training file */
    assert_contains(r.out, "evaluate.teachers");
    cli(&r, "--version", NULL);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "BLAS threading");
    cli(&r, NULL);
    assert_int_equal(r.status, 2);
}

static void test_usage_errors(void **state) {
    (void)state;
    static cli_result r;
    cli(&r, "train", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "unknown command 'train'");
    cli(&r, "run", "x.yaml", "--bogus", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "'--bogus'");
    cli(&r, "run", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "missing experiment file");
    cli(&r, "run", "x.yaml", "--epochs", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "--epochs needs a value");
    cli(&r, "run", "x.yaml", "--threads", "2x", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "--threads");
    cli(&r, "eval", "m.safetensors", "--batch=0", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "--batch: '0'");
    cli(&r, "eval", "m.safetensors", "--range", "1,0", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "--range");
    cli(&r, "eval", "a", "b", NULL);
    assert_int_equal(r.status, 2);
    cli(&r, "run", "x.yaml", "--quiet=1", NULL);
    assert_int_equal(r.status, 2);
    cli(&r, "attack", "m.safetensors", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "--attack NAME is required");
    cli(&r, "attack", "m.safetensors", "--attack", "pdg", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "unknown attack 'pdg'");
    cli(&r, "attack", "m.safetensors", "--attack", "pgd", "--eps", "0.1,-2", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "--eps: '0.1,-2' is not valid");
    cli(&r, "attack", "m.safetensors", "--attack", "jsma", "--on", "probs", NULL);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "--on");
}

static void test_runtime_errors(void **state) {
    (void)state;
    static cli_result r;
    char missing[512], garbage[512];
    snprintf(missing, sizeof missing, "%s/no-such-experiment.yaml", g_dir);
    cli(&r, "run", missing, "--quiet", NULL);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "temper: error: ");
    assert_contains(r.err, missing);
    snprintf(garbage, sizeof garbage, "%s/garbage.safetensors", g_dir);
    const char junk[] = "this is not a safetensors file, just some bytes of text";
    assert_int_equal(nn_io_write_atomic(garbage, junk, sizeof junk, NULL), 0);
    cli(&r, "eval", garbage, "--data", "mnist", NULL);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "temper: error: ");
    assert_contains(r.err, garbage);
}

/* ---- JSON writer ---- */

static void test_json_escaping(void **state) {
    (void)state;
    exp_json j;
    exp_json_init(&j);
    exp_json_string(&j, "a\"b\\c\n\t\x01/\xc3\xa9");
    assert_int_equal(exp_json_finish(&j, NULL), 0);
    /* RFC 8259: quote and backslash escaped, control characters as \n, \t or \u00XX, UTF-8 kept. */
    assert_string_equal(j.b.p, "\"a\\\"b\\\\c\\n\\t\\u0001/\xc3\xa9\"\n");
    exp_json_free(&j);

    /* Round trip through the strict parser: valid text decodes back to the input; an invalid UTF-8
     * byte (0xff), a truncated sequence (0xe2 0x82) and a surrogate (ed a0 80) become U+FFFD each. */
    const char *keys[] = {"plain", "q\"uote", "ctl\x1f\x7f", "bad\xff", "cut\xe2\x82", "sur\xed\xa0\x80"};
    const char *want[] = {"plain",
                          "q\"uote",
                          "ctl\x1f\x7f",
                          "bad\xef\xbf\xbd",
                          "cut\xef\xbf\xbd\xef\xbf\xbd",
                          "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"};
    exp_json_init(&j);
    exp_json_object_begin(&j);
    for (size_t i = 0; i < 6; i++)
        exp_json_kv_string(&j, keys[i], keys[i]);
    exp_json_kv_number(&j, "nan", NAN);
    exp_json_kv_number(&j, "inf", -INFINITY);
    exp_json_kv_number(&j, "third", 1.0 / 3.0);
    exp_json_key(&j, "list");
    exp_json_array_begin(&j);
    exp_json_uint(&j, 18446744073709551615ull);
    exp_json_int(&j, -5);
    exp_json_bool(&j, 1);
    exp_json_array_begin(&j);
    exp_json_array_end(&j);
    exp_json_object_begin(&j);
    exp_json_object_end(&j);
    exp_json_array_end(&j);
    exp_json_object_end(&j);
    assert_int_equal(exp_json_finish(&j, NULL), 0);
    nn_json doc = {0};
    nn_err err = {0};
    if (nn_json_parse(&doc, j.b.p, j.b.len, &err)) fail_msg("%s in:\n%s", err.msg, j.b.p);
    const nn_json_val *root = nn_json_root(&doc);
    for (size_t i = 0; i < 6; i++) {
        const nn_json_val *v = nn_json_first(&doc, root);
        for (size_t s = 0; s < i; s++)
            v = nn_json_next(&doc, v);
        assert_string_equal(v->key, want[i]);
        assert_string_equal(v->str, want[i]);
    }
    assert_int_equal(nn_json_get(&doc, root, "nan")->type, NN_JSON_NULL);
    assert_int_equal(nn_json_get(&doc, root, "inf")->type, NN_JSON_NULL);
    assert_non_null(strstr(j.b.p, "\"third\": 0.333333333,")); /* %.9g */
    const nn_json_val *list = nn_json_get(&doc, root, "list");
    assert_int_equal(list->n, 5);
    assert_true(nn_json_at(&doc, list, 0)->is_uint);
    assert_true(nn_json_at(&doc, list, 0)->u == UINT64_MAX);
    assert_true(nn_json_at(&doc, list, 1)->num == -5.0);
    nn_json_free(&doc);
    exp_json_free(&j);
}

static void test_json_misuse(void **state) {
    (void)state;
    exp_json j;
    exp_json_init(&j); /* a value without its key inside an object */
    exp_json_object_begin(&j);
    exp_json_number(&j, 1);
    exp_json_object_end(&j);
    assert_int_equal(exp_json_finish(&j, NULL), NN_E_INVAL);
    exp_json_free(&j);
    exp_json_init(&j); /* unclosed */
    exp_json_array_begin(&j);
    assert_int_equal(exp_json_finish(&j, NULL), NN_E_INVAL);
    exp_json_free(&j);
    exp_json_init(&j); /* a key inside an array */
    exp_json_array_begin(&j);
    exp_json_key(&j, "k");
    exp_json_null(&j);
    exp_json_array_end(&j);
    assert_int_equal(exp_json_finish(&j, NULL), NN_E_INVAL);
    exp_json_free(&j);
    exp_json_init(&j); /* mismatched close */
    exp_json_array_begin(&j);
    exp_json_object_end(&j);
    assert_int_equal(exp_json_finish(&j, NULL), NN_E_INVAL);
    exp_json_free(&j);
}

/* ---- progress formatting ---- */

static void test_progress_format(void **state) {
    (void)state;
    char buf[256];
    exp_fmt_count(buf, sizeof buf, 1234567);
    assert_string_equal(buf, "1,234,567");
    exp_fmt_count(buf, sizeof buf, 999);
    assert_string_equal(buf, "999");
    exp_fmt_count(buf, sizeof buf, 1000);
    assert_string_equal(buf, "1,000");
    exp_fmt_duration(buf, sizeof buf, 72.2);
    assert_string_equal(buf, "1m12s");
    exp_fmt_duration(buf, sizeof buf, 3.5);
    assert_string_equal(buf, "3.5s");
    exp_fmt_duration(buf, sizeof buf, 7325);
    assert_string_equal(buf, "2h02m");

    /* Epoch 3 of 20, batch 210 of 430: done f = (2*430 + 210) / (20*430); ETA = elapsed (1 - f) / f,
     * so elapsed = 72 f / (1 - f) = 72 * 1070 / 7530 gives an ETA of 72 s = 1m12s. The bar has
     * round(10 * 210/430) = 5 of 10 marks. */
    nn_progress p = {.event = NN_PROGRESS_BATCH,
                     .epoch = 3,
                     .epochs = 20,
                     .batch = 210,
                     .batches = 430,
                     .loss = 0.12341,
                     .acc = 0.9712,
                     .val_loss = NAN,
                     .val_acc = NAN,
                     .lr = 0.01,
                     .samples_per_s = 3512.4,
                     .elapsed_s = 72.0 * 1070.0 / 7530.0};
    exp_progress_format_batch(buf, sizeof buf, &p);
    assert_string_equal(buf,
                        "epoch 3/20 [#####.....] 210/430 loss 0.1234 acc 97.1% 3,512 samples/s ETA 1m12s");
    p.event = NN_PROGRESS_EPOCH;
    exp_progress_format_epoch(buf, sizeof buf, &p);
    assert_null(strstr(buf, "val_"));
    p.val_loss = 0.05;
    p.val_acc = 0.985;
    exp_progress_format_epoch(buf, sizeof buf, &p);
    assert_contains(buf, "val_loss 0.0500 val_acc 98.50%");
}

/* ---- end to end on a synthetic data set ---- */

#define SYN_H 6
#define SYN_W 6
#define SYN_K 3

/* <dir>/mnist/<prefix>-{images-idx3,labels-idx1}-ubyte with n samples: class c = i % 3 lights row 2c. */
static void write_split(const char *dir, const char *prefix, uint32_t n) {
    uint8_t *im = calloc((size_t)n * SYN_H * SYN_W, 1), *lb = malloc(n);
    assert_non_null(im);
    assert_non_null(lb);
    for (uint32_t i = 0; i < n; i++) {
        lb[i] = (uint8_t)(i % SYN_K);
        for (int x = 0; x < SYN_W; x++)
            im[(size_t)i * SYN_H * SYN_W + 2 * lb[i] * SYN_W + x] = (uint8_t)(200 + i % 50);
        im[(size_t)i * SYN_H * SYN_W + (i * 7) % (SYN_H * SYN_W)] ^= 0x80; /* some noise */
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

static const char tiny_yaml[] = "name: tiny\n"
                                "data:\n"
                                "  name: mnist\n"
                                "  range: [-0.5, 0.5]\n"
                                "  val_size: 24\n"
                                "model:\n"
                                "  - {type: flatten}\n"
                                "  - {type: dense, units: 16}\n"
                                "  - {type: relu}\n"
                                "  - {type: dense, units: 3}\n"
                                "train:\n"
                                "  epochs: 1\n"
                                "  batch_size: 16\n"
                                "  seed: 1\n"
                                "  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}\n";

static char *read_text(const char *dir, const char *name, size_t *len) {
    char path[1024];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof path);
    char *text = NULL;
    nn_err err = {0};
    if (nn_io_read_all(path, &text, len, &err)) fail_msg("%s", err.msg);
    return text;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Checks the results folder of a finished run of `epochs` epochs; returns test_errors from metrics.json. */
static size_t check_results(const char *out, size_t epochs) {
    size_t len;
    char *m = read_text(out, "metrics.json", &len);
    nn_json doc = {0};
    nn_err err = {0};
    if (nn_json_parse(&doc, m, len, &err)) fail_msg("metrics.json: %s", err.msg);
    const nn_json_val *root = nn_json_root(&doc), *acc = nn_json_get(&doc, root, "test_accuracy");
    assert_non_null(acc);
    assert_int_equal(acc->type, NN_JSON_NUMBER);
    assert_true(acc->num >= 0 && acc->num <= 1);
    size_t errors = (size_t)nn_json_get(&doc, root, "test_errors")->u;
    assert_int_equal(nn_json_get(&doc, root, "test_samples")->u, 30);
    assert_close(acc->num, (30.0 - (double)errors) / 30.0, 1e-8, 0);
    assert_int_equal(nn_json_get(&doc, root, "epochs")->u, epochs);
    assert_int_equal(nn_json_get(&doc, root, "class_totals")->n, SYN_K);
    const nn_json_val *val = nn_json_get(&doc, root, "val_accuracy");
    assert_int_equal(val->type, NN_JSON_NUMBER);
    assert_true(val->num >= 0 && val->num <= 1);
    assert_int_equal(nn_json_get(&doc, root, "val_samples")->u, 24);
    assert_int_equal(nn_json_get(&doc, root, "train_samples")->u, 120 - 24);
    nn_json_free(&doc);
    free(m);
    char *log = read_text(out, "train_log.csv", &len);
    assert_int_equal(count_lines(log), 1 + epochs);
    const char *header = "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds,samples_per_s\n";
    assert_true(strncmp(log, header, strlen(header)) == 0);
    assert_null(strstr(log, ",,")); /* validation columns filled */
    free(log);
    char *copy = read_text(out, "experiment.yaml", &len);
    assert_string_equal(copy, tiny_yaml);
    free(copy);
    free(read_text(out, "model.safetensors", &len));
    DIR *d = opendir(out); /* nothing else: no temporary files left behind */
    struct dirent *e;
    size_t files = 0;
    while ((e = readdir(d)) != NULL)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 4);
    return errors;
}

/* The synthetic data set in dir (<dir>/mnist/...: 120 training, 30 test samples), made once. */
static void make_data(const char *dir) {
    char sub[600];
    struct stat st;
    snprintf(sub, sizeof sub, "%s/mnist", dir);
    if (stat(sub, &st) == 0) return;
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_split(dir, "train", 120);
    write_split(dir, "t10k", 30);
}

static void test_run_end_to_end(void **state) {
    (void)state;
    static cli_result r;
    char data[512], yaml[512], out[512], model[600], logits[600], empty[512];
    snprintf(data, sizeof data, "%s/data", g_dir);
    make_data(data);
    snprintf(yaml, sizeof yaml, "%s/tiny.yaml", g_dir);
    assert_int_equal(nn_io_write_atomic(yaml, tiny_yaml, strlen(tiny_yaml), NULL), 0);
    snprintf(out, sizeof out, "%s/results/a/b", g_dir); /* parents created like mkdir -p */
    assert_int_equal(setenv("TEMPER_DATA", data, 1), 0);

    cli(&r, "run", yaml, "--output", out, "--threads", "2", NULL);
    if (r.status != 0) fail_msg("run failed: %s", r.err);
    assert_contains(r.err, "epoch 1/1 loss"); /* not a terminal: one plain line per epoch */
    assert_contains(r.out, "test accuracy");
    size_t errors = check_results(out, 1);

    /* the same experiment and seed on 1 thread gives a byte-identical model file */
    char out1[600];
    snprintf(out1, sizeof out1, "%s/results/one_thread", g_dir);
    cli(&r, "run", yaml, "--output", out1, "--threads", "1", "--quiet", NULL);
    if (r.status != 0) fail_msg("1-thread run failed: %s", r.err);
    size_t len1, len2;
    char *a = read_text(out, "model.safetensors", &len1), *b = read_text(out1, "model.safetensors", &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(a, b, len1);
    free(a);
    free(b);

    /* eval reads the data set and range back from the model's metadata */
    snprintf(model, sizeof model, "%s/model.safetensors", out);
    snprintf(logits, sizeof logits, "%s/logits.npy", g_dir);
    cli(&r, "eval", model, "--logits", logits, "--batch", "7", NULL);
    if (r.status != 0) fail_msg("eval failed: %s", r.err);
    char want[64];
    snprintf(want, sizeof want, "(%zu errors of 30)", errors);
    assert_contains(r.out, want);
    assert_contains(r.out, "pixel range [-0.5, 0.5]");
    size_t len;
    char *npy = read_text(g_dir, "logits.npy", &len);
    assert_int_equal(len, 128 + 30 * SYN_K * sizeof(float)); /* .npy 1.0: 128-byte header for this shape */
    size_t wrong = 0; /* the logits' argmax against the labels (i % 3) gives the reported error count */
    for (size_t i = 0; i < 30; i++) {
        float z[SYN_K];
        memcpy(z, npy + 128 + i * sizeof z, sizeof z);
        size_t best = 0;
        for (size_t k = 1; k < SYN_K; k++)
            best = z[k] > z[best] ? k : best;
        wrong += best != i % SYN_K;
    }
    assert_int_equal(wrong, errors);
    free(npy);

    /* attacks on the model: files, a bounded run per eps, and PGD beating nothing it should not */
    char adir[600];
    snprintf(adir, sizeof adir, "%s/atk", g_dir);
    cli(&r, "attack", model, "--attack", "pgd", "--eps", "0.05,0.5", "--iters", "10", "--samples", "12", "--output",
        adir, NULL);
    if (r.status != 0) fail_msg("attack failed: %s", r.err);
    assert_contains(r.out, "  100.00%"); /* eps 0.5 spans the whole [-0.5, 0.5] range: every sample falls */
    char *aj = read_text(adir, "attacks.json", &len);
    assert_contains(aj, "\"run\": \"pgd-eps0.05\"");
    assert_contains(aj, "\"frac_zero_gradient\"");
    free(aj);
    char *csv = read_text(adir, "pgd-eps0.5/samples.csv", &len);
    assert_int_equal(count_lines(csv), 1 + 12);
    free(csv);
    free(read_text(adir, "pgd-eps0.5/grid.png", &len));
    char *adv = read_text(adir, "pgd-eps0.5/adv.npy", &len);
    assert_int_equal(len, 128 + 12 * SYN_H * SYN_W * sizeof(float));
    free(adv);
    cli(&r, "attack", model, "--attack", "deepfool", "--samples", "5", "--output", adir, "--range", "0,1", NULL);
    assert_int_equal(r.status, 0);
    cli(&r, "attack", model, "--attack", "cw", "--kappa", "-1", "--output", adir, NULL);
    assert_int_equal(r.status, 2);

    /* a distillation run: the teacher trained first and saved beside the student, both in metrics.json */
    char dyaml[600], dout[600], dtext[1024];
    snprintf(dyaml, sizeof dyaml, "%s/kd.yaml", g_dir);
    snprintf(dout, sizeof dout, "%s/results/kd", g_dir);
    snprintf(dtext, sizeof dtext, "%sdefense: {type: kd, temperature: 4, alpha: 0.5, bias: [{class: 1, delta: 0.5}]}\n",
             tiny_yaml);
    assert_int_equal(nn_io_write_atomic(dyaml, dtext, strlen(dtext), NULL), 0);
    cli(&r, "run", dyaml, "--output", dout, "--quiet", NULL);
    if (r.status != 0) fail_msg("kd run failed: %s", r.err);
    assert_contains(r.out, "teacher-student agreement");
    char *dm = read_text(dout, "metrics.json", &len);
    assert_contains(dm, "\"teacher_student_agreement\"");
    assert_contains(dm, "\"type\": \"kd\"");
    free(dm);
    free(read_text(dout, "teacher/model.safetensors", &len));

    /* an ensemble of two saved models teaches; the attacks run on the student only */
    char etext[2400], eout[600];
    snprintf(eout, sizeof eout, "%s/results/ensemble", g_dir);
    snprintf(etext, sizeof etext,
             "%sdefense: {type: kd, temperature: 4}\nteacher: {ensemble: [%s/teacher/model.safetensors, "
             "%s/model.safetensors]}\nattacks: [{type: fgsm, eps: 0.3, samples: 6, grid: 0}]\n",
             tiny_yaml, dout, dout);
    assert_int_equal(nn_io_write_atomic(dyaml, etext, strlen(etext), NULL), 0);
    cli(&r, "run", dyaml, "--output", eout, "--quiet", NULL);
    if (r.status != 0) fail_msg("ensemble run failed: %s", r.err);
    char *em = read_text(eout, "metrics.json", &len);
    assert_contains(em, "\"ensemble\": [");
    assert_contains(em, "\"teacher_student_agreement\"");
    free(em);
    free(read_text(eout, "attacks/attacks.json", &len));
    char tdir[700];
    snprintf(tdir, sizeof tdir, "%s/teacher", eout);
    assert_int_not_equal(access(tdir, F_OK), 0);

    /* a sweep: one folder per value, a table, and a rerun that reuses every finished run */
    char stext[1200], sout[600];
    snprintf(sout, sizeof sout, "%s/results/sweep", g_dir);
    snprintf(stext, sizeof stext,
             "%sdefense: {type: distillation, temperature: 2}\nsweep: {key: defense.temperature, values: [2, 8]}\n"
             "attacks: [{type: fgsm, eps: 0.3, samples: 6, grid: 0}]\n",
             tiny_yaml);
    assert_int_equal(nn_io_write_atomic(dyaml, stext, strlen(stext), NULL), 0);
    cli(&r, "run", dyaml, "--output", sout, "--quiet", NULL);
    if (r.status != 0) fail_msg("sweep failed: %s", r.err);
    char *table = read_text(sout, "sweep.csv", &len);
    assert_int_equal(count_lines(table), 3);
    assert_contains(table, "fgsm-eps0.3 success");
    free(table);
    char *m8 = read_text(sout, "temperature-8/metrics.json", &len);
    assert_contains(m8, "\"temperature\": 8");
    free(m8);
    cli(&r, "run", dyaml, "--output", sout, "--quiet", NULL);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "defense.temperature = 8: finished earlier, reused");

    /* variants x a grid: hard labels, KD with BSS and DDGSD against a saved teacher, two subsets x two seeds,
     * one folder per run, boundary similarity in metrics.json, sweep.csv and the seed-averaged sweep.md */
    char vtext[3000], vout[600];
    snprintf(vout, sizeof vout, "%s/results/variants", g_dir);
    snprintf(vtext, sizeof vtext,
             "%steacher: {model_file: %s/teacher/model.safetensors, attack: false}\n"
             "variants: [{name: hard}, {name: bss, defense: {type: bss, max_base: 4, steps: 3}}, "
             "{name: ddgsd, defense: {type: ddgsd, views: [{shift: 1}, {shift: 1, noise: 0.05}]}}]\n"
             "sweep: [{key: data.subset, values: [40, 0]}, {key: train.seed, values: [1, 2]}]\n"
             "boundary: {samples: 10, steps: 20}\n"
             "attacks: [{type: fgsm, eps: 0.3, samples: 6, grid: 0}]\n",
             tiny_yaml, dout);
    assert_int_equal(nn_io_write_atomic(dyaml, vtext, strlen(vtext), NULL), 0);
    cli(&r, "run", dyaml, "--output", vout, "--quiet", NULL);
    if (r.status != 0) fail_msg("variants run failed: %s", r.err);
    char *vcsv = read_text(vout, "sweep.csv", &len);
    assert_int_equal(count_lines(vcsv), 1 + 3 * 2 * 2);
    assert_contains(vcsv, "variant,data.subset,train.seed,test_accuracy");
    assert_contains(vcsv, "magsim");
    assert_contains(vcsv, "\nbss,40,2,");
    free(vcsv);
    char *vmd = read_text(vout, "sweep.md", &len);
    assert_contains(vmd, "| variant | data.subset | n |");
    assert_contains(vmd, "| ddgsd | 0 | 2 |");
    free(vmd);
    char *bm = read_text(vout, "bss/subset-40/seed-1/metrics.json", &len);
    assert_contains(bm, "\"type\": \"bss\"");
    assert_contains(bm, "\"bss_made\"");
    assert_contains(bm, "\"magsim\"");
    free(bm);
    free(read_text(vout, "hard/subset-0/seed-2/boundary.csv", &len));
    cli(&r, "run", dyaml, "--output", vout, "--quiet", NULL);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "ddgsd, data.subset = 0, train.seed = 2: finished earlier, reused");

    /* a rerun into the same folder with another setting (--epochs) replaces everything */
    cli(&r, "run", yaml, "--output", out, "--epochs", "2", "--quiet", NULL);
    if (r.status != 0) fail_msg("rerun failed: %s", r.err);
    assert_string_equal(r.err, "");
    assert_contains(r.out, "the experiment changed since it ran (run key differs): recomputing");
    check_results(out, 2);

    /* a rerun that fails (here: no data) never destroys the previous finished result */
    snprintf(empty, sizeof empty, "%s/empty", g_dir);
    assert_int_equal(mkdir(empty, 0700), 0);
    assert_int_equal(setenv("TEMPER_DATA", empty, 1), 0);
    cli(&r, "run", yaml, "--output", out, "--quiet", NULL);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "fetch_data.sh");
    struct stat st;
    snprintf(model, sizeof model, "%s/metrics.json", out);
    assert_int_equal(stat(model, &st), 0);
    check_results(out, 2);
    unsetenv("TEMPER_DATA");
}

/* ---- reuse of finished runs by run key ---- */

static size_t count_of(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* metrics.json of dir: its run_key into key ("" when absent) and its epochs. */
static size_t metrics_of(const char *dir, char key[65]) {
    size_t len;
    char *m = read_text(dir, "metrics.json", &len);
    nn_json doc = {0};
    nn_err err = {0};
    if (nn_json_parse(&doc, m, len, &err)) fail_msg("%s/metrics.json: %s", dir, err.msg);
    const nn_json_val *k = nn_json_get(&doc, nn_json_root(&doc), "run_key");
    key[0] = '\0';
    if (k) {
        assert_int_equal(k->type, NN_JSON_STRING);
        assert_int_equal(strlen(k->str), 64);
        assert_true(strspn(k->str, "0123456789abcdef") == 64);
        strcpy(key, k->str);
    }
    size_t epochs = (size_t)nn_json_get(&doc, nn_json_root(&doc), "epochs")->u;
    nn_json_free(&doc);
    free(m);
    return epochs;
}

/* Removes the "run_key" member from dir/metrics.json, as an older temper wrote it. */
static void strip_run_key(const char *dir) {
    size_t len = 0, start, end;
    char path[1024], *m = NULL;
    nn_err err = {0};
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    if (nn_io_read_all(path, &m, &len, &err)) fail_msg("%s", err.msg);
    const char *at = strstr(m, "\"run_key\"");
    if (!at) fail_msg("%s: no run_key", path);
    start = end = (size_t)(at - m);
    while (start > 0 && m[start - 1] != '\n') start--;
    while (m[end] && m[end] != '\n') end++;
    assert_int_equal(m[end], '\n');
    memmove(m + start, m + end + 1, len - end); /* the rest and its NUL */
    assert_int_equal(nn_io_write_atomic(path, m, strlen(m), NULL), 0);
    free(m);
}

static void write_file(const char *path, const char *text) {
    assert_int_equal(nn_io_write_atomic(path, text, strlen(text), NULL), 0);
}

/* A single run: reused when nothing that defines it changed (not name, output, threads, comments), recomputed
 * with --force or when a setting changed. */
static void test_run_reuse(void **state) {
    (void)state;
    static cli_result r;
    char data[512], yaml[600], yaml2[600], out[600], text[2048], want[1400], key[65], key2[65];
    snprintf(data, sizeof data, "%s/data", g_dir);
    make_data(data);
    assert_int_equal(setenv("TEMPER_DATA", data, 1), 0);
    snprintf(yaml, sizeof yaml, "%s/reuse.yaml", g_dir);
    snprintf(yaml2, sizeof yaml2, "%s/reuse2.yaml", g_dir);
    snprintf(out, sizeof out, "%s/results/reuse", g_dir);
    write_file(yaml, tiny_yaml);
    cli(&r, "run", yaml, "--output", out, "--quiet", NULL);
    if (r.status != 0) fail_msg("run failed: %s", r.err);
    assert_contains(r.out, "test accuracy");
    assert_int_equal(metrics_of(out, key), 1);
    assert_int_not_equal(key[0], '\0');
    size_t len1, len2;
    char *m1 = read_text(out, "metrics.json", &len1);

    /* unchanged: reused, nothing trained (no progress lines, metrics.json untouched), its metrics named */
    cli(&r, "run", yaml, "--output", out, "--threads", "1", NULL);
    if (r.status != 0) fail_msg("rerun failed: %s", r.err);
    snprintf(want, sizeof want, "%s: finished earlier, reused\nmetrics: %s/metrics.json\n", out, out);
    assert_string_equal(r.out, want);
    assert_string_equal(r.err, "");
    char *m2 = read_text(out, "metrics.json", &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(m1, m2, len1);
    free(m2);

    /* another name, output, thread count and a comment: the same run */
    snprintf(text, sizeof text, "name: other\n# a comment\nthreads: 1\noutput: %s/elsewhere\n%s", g_dir,
             tiny_yaml + strlen("name: tiny\n"));
    write_file(yaml2, text);
    cli(&r, "run", yaml2, "--output", out, "--quiet", NULL);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "finished earlier, reused");
    m2 = read_text(out, "metrics.json", &len2);
    assert_memory_equal(m1, m2, len1);
    free(m2);
    free(m1);

    /* --force recomputes (the same key); a changed setting recomputes and says so */
    cli(&r, "run", yaml, "--output", out, "--quiet", "--force", NULL);
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "%s: --force: recomputing\n", out);
    assert_contains(r.out, want);
    assert_contains(r.out, "test accuracy");
    assert_int_equal(metrics_of(out, key2), 1);
    assert_string_equal(key, key2);
    snprintf(text, sizeof text, "%s", tiny_yaml);
    memcpy(strstr(text, "lr: 0.1"), "lr: 0.2", 7);
    write_file(yaml2, text);
    cli(&r, "run", yaml2, "--output", out, "--quiet", NULL);
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "%s: the experiment changed since it ran (run key differs): recomputing\n", out);
    assert_contains(r.out, want);
    assert_contains(r.out, "test accuracy");
    assert_int_equal(metrics_of(out, key2), 1);
    assert_string_not_equal(key, key2);

    /* the key holds the data files' bytes, not their folder; the memo reads each file once */
    char data2[400], k1[65], k2[65], k3[65];
    snprintf(data2, sizeof data2, "%.300s/data2", g_dir);
    make_data(data2);
    exp_config *c = malloc(sizeof *c);
    assert_non_null(c);
    nn_err err = {0};
    exp_hash_memo memo;
    exp_hash_memo_init(&memo);
    if (exp_config_parse(tiny_yaml, strlen(tiny_yaml), yaml, c, &err)) fail_msg("%s", err.msg);
    if (exp_run_key(c, &memo, k1, &err)) fail_msg("%s", err.msg);
    assert_string_equal(k1, key);
    snprintf(c->data.dir, sizeof c->data.dir, "%s", data2);
    if (exp_run_key(c, &memo, k2, &err)) fail_msg("%s", err.msg);
    assert_string_equal(k1, k2);
    write_split(data2, "t10k", 29); /* other test bytes */
    if (exp_run_key(c, &memo, k3, &err)) fail_msg("%s", err.msg);
    assert_string_not_equal(k1, k3);
    snprintf(c->data.dir, sizeof c->data.dir, "%s/none", g_dir);
    assert_int_equal(exp_run_key(c, &memo, k3, &err), NN_E_IO);
    assert_contains(err.msg, "fetch_data.sh");
    exp_hash_memo_free(&memo);
    free(c);
    unsetenv("TEMPER_DATA");
}

/* A sweep: every finished run of the same key reused; a run without attacks.json recomputed; an older temper's
 * folder (no run key) reused with a warning; an edited train.epochs recomputes the runs it changes; --force
 * recomputes all. */
static void test_sweep_reuse(void **state) {
    (void)state;
    static cli_result r;
    char data[512], yaml[600], out[600], text[2048], want[1400], path[1200], dir1[700], dir2[700], key[65];
    snprintf(data, sizeof data, "%s/data", g_dir);
    make_data(data);
    assert_int_equal(setenv("TEMPER_DATA", data, 1), 0);
    snprintf(yaml, sizeof yaml, "%s/sreuse.yaml", g_dir);
    snprintf(out, sizeof out, "%s/results/sreuse", g_dir);
    snprintf(dir1, sizeof dir1, "%s/seed-1", out);
    snprintf(dir2, sizeof dir2, "%s/seed-2", out);
    snprintf(text, sizeof text, "%ssweep: {key: train.seed, values: [1, 2]}\n"
                                "attacks: [{type: fgsm, eps: 0.3, samples: 6, grid: 0}]\n", tiny_yaml);
    write_file(yaml, text);
    cli(&r, "run", yaml, "--output", out, "--quiet", NULL);
    if (r.status != 0) fail_msg("sweep failed: %s", r.err);
    assert_contains(r.out, "train.seed = 1 (1 of 2)");
    assert_contains(r.out, "train.seed = 2 (2 of 2)");

    cli(&r, "run", yaml, "--output", out, "--quiet", NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_of(r.out, "finished earlier, reused"), 2);
    assert_int_equal(count_of(r.out, " of 2)"), 0);
    assert_string_equal(r.err, "");

    /* attacks.json comes after metrics.json: without it the run is unfinished */
    snprintf(path, sizeof path, "%s/attacks/attacks.json", dir2);
    assert_int_equal(unlink(path), 0);
    cli(&r, "run", yaml, "--output", out, "--quiet", NULL);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "train.seed = 1: finished earlier, reused");
    assert_contains(r.out, "train.seed = 2 (2 of 2)");

    /* seed-1 from an older temper; then train.epochs edited */
    strip_run_key(dir1);
    assert_int_equal(metrics_of(dir1, key), 1);
    assert_string_equal(key, "");
    memcpy(strstr(text, "epochs: 1"), "epochs: 2", 9);
    write_file(yaml, text);
    cli(&r, "run", yaml, "--output", out, "--quiet", NULL);
    if (r.status != 0) fail_msg("sweep rerun failed: %s", r.err);
    snprintf(want, sizeof want, "temper: warning: %s: no run key (older temper): reused as is; --force recomputes\n",
             dir1);
    assert_string_equal(r.err, want);
    assert_contains(r.out, "train.seed = 1: finished earlier, reused");
    snprintf(want, sizeof want, "%s: the experiment changed since it ran (run key differs): recomputing\n"
                                "train.seed = 2 (2 of 2)\n", dir2);
    assert_contains(r.out, want);
    assert_int_equal(metrics_of(dir1, key), 1);
    assert_int_equal(metrics_of(dir2, key), 2);
    assert_int_not_equal(key[0], '\0');

    /* --force: every run recomputed */
    cli(&r, "run", yaml, "--output", out, "--quiet", "--force", NULL);
    if (r.status != 0) fail_msg("sweep --force failed: %s", r.err);
    assert_int_equal(count_of(r.out, "--force: recomputing"), 2);
    assert_contains(r.out, "train.seed = 1 (1 of 2)");
    assert_contains(r.out, "train.seed = 2 (2 of 2)");
    char key1[65];
    assert_int_equal(metrics_of(dir1, key1), 2);
    assert_int_equal(metrics_of(dir2, key), 2);
    assert_int_not_equal(key1[0], '\0');
    assert_string_not_equal(key1, key); /* the seeds are different runs */
    size_t len;
    char *csv = read_text(out, "sweep.csv", &len);
    assert_int_equal(count_lines(csv), 3);
    free(csv);

    cli(&r, "run", yaml, "--output", out, "--quiet", NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_of(r.out, "finished earlier, reused"), 2);
    assert_string_equal(r.err, "");
    unsetenv("TEMPER_DATA");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version), cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_runtime_errors),   cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_json_misuse),      cmocka_unit_test(test_progress_format),
        cmocka_unit_test(test_run_end_to_end),   cmocka_unit_test(test_run_reuse),
        cmocka_unit_test(test_sweep_reuse),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
