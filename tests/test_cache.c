/* test_cache.c - the batch-evaluation cache: SHA-256, cell keys, the file-hash memo, and the cell store
 * (lifecycle, crashes at several points simulated by fork() + SIGKILL, concurrent runs, --force).
 *
 * Reference digests come from FIPS 180-4 / NIST examples and from Python's hashlib (another
 * implementation); the pinned key was computed with hashlib over the encoding documented in exp_cache.h.
 * Everything is written to a mkdtemp folder under /tmp, removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include <cmocka.h>

#include "exp_cache.h"
#include "nn_io.h"

static char g_dir[256]; /* this run's temp folder */

enum { PBUF = EXP_CACHE_PATH_MAX + 64 }; /* a cell folder + a file name */

/* A folder on tmpfs (/dev/shm) when there is one, else g_dir: for the many-commit test, whose fsyncs
 * would take seconds on a disk. The other tests run on /tmp's real file system. */
static char g_fast[256];

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/temper_test_cache_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_fast, sizeof g_fast, "/dev/shm/temper_test_cache_XXXXXX");
    if (!mkdtemp(g_fast)) snprintf(g_fast, sizeof g_fast, "%s", g_dir);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    rm_rf(g_dir);
    rm_rf(g_fast);
    return 0;
}

/* ---- helpers ---- */

static void put_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* 1 if the file holds exactly data[0..len). */
static int file_is(const char *path, const void *data, size_t len) {
    char *buf = NULL;
    size_t n = 0;
    nn_err err = {0};
    if (nn_io_read_all(path, &buf, &n, &err)) return 0;
    int same = n == len && memcmp(buf, data, len) == 0;
    free(buf);
    return same;
}

/* Sets a file's mtime (and atime) to t seconds since the epoch. */
static void set_mtime(const char *path, time_t t) {
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Number of entries (other than . and ..) in a folder; 0 if it does not exist. */
static size_t count_entries(const char *dir) {
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    return n;
}

/* Number of finished-looking cell folders under root/cells/<shard>/ (every shard, tmp excluded). */
static size_t count_cells(const char *root) {
    char cells[512], shard[1024];
    snprintf(cells, sizeof cells, "%s/cells", root);
    DIR *d = opendir(cells);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "tmp")) continue;
        snprintf(shard, sizeof shard, "%s/%s", cells, e->d_name);
        n += count_entries(shard);
    }
    if (d) closedir(d);
    return n;
}

static void tmp_of(char *buf, size_t cap, const char *root) {
    snprintf(buf, cap, "%s/cells/tmp", root);
}

/* A cell key for the tests: SHA-256 of a label. */
static void hex_of(const char *label, char hex[65]) {
    exp_sha256_hex(label, strlen(label), hex);
}

/* The content a "run" writes into a cell: a.txt = "<tag>:a", sub/b.bin = 70000 bytes from tag. */
static void cell_content(const char *tag, char *a, size_t cap, unsigned char *b, size_t nb) {
    snprintf(a, cap, "%s:a", tag);
    for (size_t i = 0; i < nb; i++)
        b[i] = (unsigned char)(i * 31 + (unsigned char)tag[0] * 7 + strlen(tag));
}

enum { B_LEN = 70000 };

/* Writes the cell's files (a.txt, sub/b.bin) into dir; 0 or -1 (usable in a forked child). */
static int write_cell_files(const char *dir, const char *tag) {
    char a[64], p[PBUF];
    unsigned char *b = malloc(B_LEN);
    if (!b) return -1;
    cell_content(tag, a, sizeof a, b, B_LEN);
    nn_err err = {0};
    int rc = 0;
    snprintf(p, sizeof p, "%s/a.txt", dir);
    rc |= nn_io_write_atomic(p, a, strlen(a), &err);
    snprintf(p, sizeof p, "%s/sub", dir);
    rc |= mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/sub/b.bin", dir);
    FILE *f = rc ? NULL : fopen(p, "wb"); /* a plain write: nothing in a work folder is ever read */
    rc |= !f || fwrite(b, 1, B_LEN, f) != B_LEN;
    if (f) rc |= fclose(f);
    free(b);
    return rc ? -1 : 0;
}

/* Asserts the finished folder dir holds exactly the files a run with tag wrote, and cell.json = json. */
static void assert_cell_is(const char *dir, const char *tag) {
    char a[64], p[PBUF], json[128];
    unsigned char *b = malloc(B_LEN);
    assert_non_null(b);
    cell_content(tag, a, sizeof a, b, B_LEN);
    snprintf(json, sizeof json, "{\"run\": \"%s\"}\n", tag);
    snprintf(p, sizeof p, "%s/a.txt", dir);
    assert_true(file_is(p, a, strlen(a)));
    snprintf(p, sizeof p, "%s/sub/b.bin", dir);
    assert_true(file_is(p, b, B_LEN));
    snprintf(p, sizeof p, "%s/cell.json", dir);
    assert_true(file_is(p, json, strlen(json)));
    assert_int_equal(count_entries(dir), 3); /* a.txt, sub, cell.json: no temporaries, nothing else */
    snprintf(p, sizeof p, "%s/sub", dir);
    assert_int_equal(count_entries(p), 1);
    free(b);
}

/* One whole "run" of a cell: begin, write, commit (replace: commit_replace). 0 or an NN_E_* code. */
static int run_cell(const char *root, const char *hex, const char *tag, int replace, exp_cell *c) {
    nn_err err = {0};
    char json[128];
    snprintf(json, sizeof json, "{\"run\": \"%s\"}\n", tag);
    int rc = exp_cell_begin(root, hex, c, &err);
    if (!rc && write_cell_files(c->dir, tag)) rc = NN_E_IO;
    if (!rc)
        rc = replace ? exp_cell_commit_replace(c, json, strlen(json), &err)
                     : exp_cell_commit(c, json, strlen(json), &err);
    exp_cell_abort(c);
    return rc;
}

/* Waits for child pid; returns its status. */
static int reap(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return st;
}

/* ---- SHA-256 ---- */

static void test_sha256_vectors(void **state) {
    (void)state;
    static const struct {
        const char *msg, *hex;
    } v[] = {
        /* FIPS 180-4 examples / NIST CAVS (SHA256ShortMsg) */
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", /* 448 bits */
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmno"
         "pqrst"
         "nopqrstu", /* 896 bits */
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        exp_sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        assert_string_equal(hex, v[i].hex);
    }
    /* Padding boundaries: 'a' x n, digests from Python's hashlib. */
    static const struct {
        size_t n;
        const char *hex;
    } a[] = {{55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
             {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
             {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
             {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
             {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
             {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"}};
    char as[128];
    memset(as, 'a', sizeof as);
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        exp_sha256_hex(as, a[i].n, hex);
        assert_string_equal(hex, a[i].hex);
    }
    /* One million 'a' (FIPS 180-4 example), streamed in odd-sized pieces. */
    static const size_t piece[] = {1, 3, 7, 61, 64, 65, 127, 1001, 4099, 63};
    char *m = malloc(1000000);
    assert_non_null(m);
    memset(m, 'a', 1000000);
    exp_sha256 s;
    exp_sha256_init(&s);
    exp_sha256_update(&s, NULL, 0);
    for (size_t off = 0, k = 0; off < 1000000; k++) {
        size_t n = piece[k % 10] < 1000000 - off ? piece[k % 10] : 1000000 - off;
        exp_sha256_update(&s, m + off, n);
        off += n;
    }
    unsigned char d[32];
    exp_sha256_final(&s, d);
    static const unsigned char million[32] = {
        0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
        0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    assert_memory_equal(d, million, 32);
    /* Every two-piece split of the 896-bit message gives the one-shot digest. */
    size_t len = strlen(v[3].msg);
    for (size_t cut = 0; cut <= len; cut++) {
        exp_sha256_init(&s);
        exp_sha256_update(&s, v[3].msg, cut);
        exp_sha256_update(&s, v[3].msg + cut, len - cut);
        exp_sha256_final(&s, d);
        static const char dg[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++)
            hex[2 * i] = dg[d[i] >> 4], hex[2 * i + 1] = dg[d[i] & 15];
        hex[64] = '\0';
        assert_string_equal(hex, v[3].hex);
    }
    /* The file reader (1 MB: many 64 KiB chunks), an empty file, a missing file. */
    char path[512];
    snprintf(path, sizeof path, "%s/million.txt", g_dir);
    put_file(path, m, 1000000);
    free(m);
    nn_err err = {0};
    assert_int_equal(exp_sha256_file(path, hex, &err), NN_OK);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    put_file(path, "", 0);
    assert_int_equal(exp_sha256_file(path, hex, &err), NN_OK);
    assert_string_equal(hex, v[0].hex);
    snprintf(path, sizeof path, "%s/no_such_file", g_dir);
    assert_int_equal(exp_sha256_file(path, hex, &err), NN_E_IO);
    assert_non_null(strstr(err.msg, path));
}

/* ---- keys ---- */

typedef struct key_in {
    const char *text, *file;
    uint64_t seed;
    double eps;
} key_in;

static void key_of(const key_in *in, char hex[65]) {
    exp_key k;
    nn_err err = {0};
    exp_key_init(&k);
    exp_key_add_str(&k, "experiment", in->text);
    exp_key_add_u64(&k, "seed", in->seed);
    exp_key_add_double(&k, "eps", in->eps);
    assert_int_equal(exp_key_add_file_hash(&k, "model", in->file, NULL, &err), NN_OK);
    exp_key_final(&k, hex);
}

static void test_key_pinned(void **state) {
    (void)state;
    /* hashlib over the documented encoding: "temper-cell-key-v1\n" + per field type byte, u64le name
     * length, name, u64le value length, value (u64/double little-endian, file = hex of SHA-256("hello\n")).
     */
    char path[512], hex[65];
    snprintf(path, sizeof path, "%s/hello.txt", g_dir);
    put_file(path, "hello\n", 6);
    key_in in = {"attack: pgd\neps: 0.3\n", path, 42, 0.3};
    key_of(&in, hex);
    assert_string_equal(hex, "3d307e639b05f84f69307b0fe56f316b3ab70e13d3b70494fcfa7f2e4fb65ad4");
}

static void test_key_sensitivity(void **state) {
    (void)state;
    char f1[512], f2[512], f3[512];
    snprintf(f1, sizeof f1, "%s/m1.bin", g_dir);
    snprintf(f2, sizeof f2, "%s/m2.bin", g_dir);
    snprintf(f3, sizeof f3, "%s/m1_copy.bin", g_dir);
    put_file(f1, "model one", 9);
    put_file(f2, "model One", 9);
    put_file(f3, "model one", 9);
    const key_in base = {"attack: pgd\nsteps: 40\n", f1, 7, 0.3};
    key_in var[5] = {base, base, base, base, base};
    var[0].text = "attack: pgd\nsteps: 41\n"; /* one attack parameter */
    var[1].seed = 8;
    var[2].eps = nextafter(0.3, 1.0); /* one ulp */
    var[3].file = f2;                 /* one byte of the model */
    var[4].text = "attack: pgd\nsteps: 40";
    char kb[65], kb2[65], kv[5][65];
    key_of(&base, kb);
    key_of(&base, kb2);
    assert_string_equal(kb, kb2); /* same inputs, same order: same key */
    for (int i = 0; i < 5; i++) {
        key_of(&var[i], kv[i]);
        if (!strcmp(kv[i], kb)) fail_msg("variant %d did not change the key", i);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(kv[i], kv[j]);
    }
    key_in moved = base; /* the same bytes at another path: same key */
    moved.file = f3;
    key_of(&moved, kb2);
    assert_string_equal(kb, kb2);

    /* Boundaries and types: each pair must differ. */
    exp_key k;
    char x[65], y[65];
    exp_key_init(&k), exp_key_add_str(&k, "ab", "c"), exp_key_final(&k, x);
    exp_key_init(&k), exp_key_add_str(&k, "a", "bc"), exp_key_final(&k, y);
    assert_string_not_equal(x, y);
    exp_key_init(&k), exp_key_add_str(&k, "a", "b"), exp_key_add_str(&k, "c", "d"), exp_key_final(&k, x);
    exp_key_init(&k), exp_key_add_str(&k, "a", "bcd"), exp_key_final(&k, y);
    assert_string_not_equal(x, y);
    exp_key_init(&k), exp_key_add_str(&k, "a", "1"), exp_key_add_str(&k, "b", "2"), exp_key_final(&k, x);
    exp_key_init(&k), exp_key_add_str(&k, "b", "2"), exp_key_add_str(&k, "a", "1"), exp_key_final(&k, y);
    assert_string_not_equal(x, y); /* order matters: callers add fields canonically */
    exp_key_init(&k), exp_key_add_str(&k, "n", "12345678"), exp_key_final(&k, x);
    exp_key_init(&k), exp_key_add_u64(&k, "n", 0x3837363534333231ull),
        exp_key_final(&k, y); /* same 8 bytes */
    assert_string_not_equal(x, y);
    exp_key_init(&k), exp_key_add_u64(&k, "n", 1), exp_key_final(&k, x);
    exp_key_init(&k), exp_key_add_double(&k, "n", 4.9406564584124654e-324), exp_key_final(&k, y); /* bits 1 */
    assert_string_not_equal(x, y);
    exp_key_init(&k), exp_key_final(&k, x);
    exp_key_init(&k), exp_key_add_str(&k, "", ""), exp_key_final(&k, y);
    assert_string_not_equal(x, y);

    /* Doubles: -0.0 == 0.0, every NaN the same, neighbours different. */
    union {
        uint64_t u;
        double d;
    } nan2 = {0xfff0000000000123ull}; /* a negative signalling-pattern NaN with a payload */
    const double same[][2] = {{0.0, -0.0}, {NAN, -NAN}, {NAN, nan2.d}, {1.5, 1.5}};
    for (size_t i = 0; i < 4; i++) {
        exp_key_init(&k), exp_key_add_double(&k, "v", same[i][0]), exp_key_final(&k, x);
        exp_key_init(&k), exp_key_add_double(&k, "v", same[i][1]), exp_key_final(&k, y);
        assert_string_equal(x, y);
    }
    const double diff[][2] = {{0.0, 4.9406564584124654e-324},
                              {1.0, nextafter(1.0, 2.0)},
                              {INFINITY, NAN},
                              {INFINITY, -INFINITY},
                              {1.0, -1.0}};
    for (size_t i = 0; i < 5; i++) {
        exp_key_init(&k), exp_key_add_double(&k, "v", diff[i][0]), exp_key_final(&k, x);
        exp_key_init(&k), exp_key_add_double(&k, "v", diff[i][1]), exp_key_final(&k, y);
        assert_string_not_equal(x, y);
    }

    /* A missing file: an error naming it, the key unchanged. */
    nn_err err = {0};
    char missing[512];
    snprintf(missing, sizeof missing, "%s/missing.bin", g_dir);
    exp_key_init(&k), exp_key_add_str(&k, "a", "1");
    assert_int_equal(exp_key_add_file_hash(&k, "m", missing, NULL, &err), NN_E_IO);
    assert_non_null(strstr(err.msg, missing));
    exp_key_final(&k, x);
    exp_key_init(&k), exp_key_add_str(&k, "a", "1"), exp_key_final(&k, y);
    assert_string_equal(x, y);
}

/* ---- file-hash memo ---- */

static void test_hash_memo(void **state) {
    (void)state;
    char p[512], q[512], hex[65], ref[65];
    snprintf(p, sizeof p, "%s/data.bin", g_dir);
    snprintf(q, sizeof q, "%s/labels.bin", g_dir);
    put_file(p, "0123456789", 10);
    put_file(q, "labels", 6);
    const time_t t0 = 1577836800; /* 2020-01-01: well out of the racy window */
    set_mtime(p, t0);
    set_mtime(q, t0);
    exp_hash_memo m;
    exp_hash_memo_init(&m);
    nn_err err = {0};

    assert_int_equal(exp_hash_memo_file(&m, p, hex, &err), NN_OK); /* first: read */
    exp_sha256_hex("0123456789", 10, ref);
    assert_string_equal(hex, ref);
    assert_int_equal(m.misses, 1);
    assert_int_equal(exp_hash_memo_file(&m, q, hex, &err), NN_OK);
    assert_int_equal(m.misses, 2);
    memset(hex, 0, sizeof hex);
    assert_int_equal(exp_hash_memo_file(&m, p, hex, &err), NN_OK); /* unchanged: a hit, same digest */
    assert_int_equal(m.hits, 1);
    assert_string_equal(hex, ref);
    assert_int_equal(exp_hash_memo_file(&m, q, hex, &err), NN_OK);
    assert_int_equal(m.hits, 2);

    /* Same size, other bytes, another (old) mtime: a miss and the new digest. */
    put_file(p, "0123456780", 10);
    set_mtime(p, t0 + 86400);
    assert_int_equal(exp_hash_memo_file(&m, p, hex, &err), NN_OK);
    exp_sha256_hex("0123456780", 10, ref);
    assert_string_equal(hex, ref);
    assert_int_equal(m.misses, 3);
    assert_int_equal(exp_hash_memo_file(&m, p, hex, &err), NN_OK);
    assert_int_equal(m.hits, 3);
    assert_int_equal(m.n, 2); /* the entry of p was replaced, not duplicated */

    /* Another size, the mtime set back to the remembered one: still a miss. */
    put_file(p, "01234567801", 11);
    set_mtime(p, t0 + 86400);
    assert_int_equal(exp_hash_memo_file(&m, p, hex, &err), NN_OK);
    exp_sha256_hex("01234567801", 11, ref);
    assert_string_equal(hex, ref);
    assert_int_equal(m.misses, 4);

    /* A file just written (racy mtime) is read every time, never answered from the table. */
    put_file(p, "fresh", 5);
    exp_sha256_hex("fresh", 5, ref);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(exp_hash_memo_file(&m, p, hex, &err), NN_OK);
        assert_string_equal(hex, ref);
    }
    assert_int_equal(m.misses, 6);
    assert_int_equal(m.hits, 3);

    /* exp_key_add_file_hash through the memo gives the key it gives without one. */
    set_mtime(p, t0);
    exp_key k1, k2;
    char x[65], y[65];
    exp_key_init(&k1);
    assert_int_equal(exp_key_add_file_hash(&k1, "data", p, &m, &err), NN_OK);
    assert_int_equal(exp_key_add_file_hash(&k1, "data2", p, &m, &err), NN_OK); /* a hit */
    exp_key_final(&k1, x);
    assert_int_equal(m.hits, 4);
    exp_key_init(&k2);
    assert_int_equal(exp_key_add_file_hash(&k2, "data", p, NULL, &err), NN_OK);
    assert_int_equal(exp_key_add_file_hash(&k2, "data2", p, NULL, &err), NN_OK);
    exp_key_final(&k2, y);
    assert_string_equal(x, y);

    snprintf(q, sizeof q, "%s/gone.bin", g_dir);
    assert_int_equal(exp_hash_memo_file(&m, q, hex, &err), NN_E_IO);
    assert_non_null(strstr(err.msg, q));
    exp_hash_memo_free(&m);
    assert_null(m.e);
    exp_hash_memo_free(NULL);
}

/* ---- cell store ---- */

static void test_cell_lifecycle(void **state) {
    (void)state;
    char root[512], hex[65], dir[1024], tmp[600], p[PBUF];
    snprintf(root, sizeof root, "%s/lifecycle", g_dir);
    tmp_of(tmp, sizeof tmp, root);
    hex_of("lifecycle", hex);
    nn_err err = {0};
    exp_cell c;

    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 0); /* nothing yet (no root even) */
    assert_int_equal(exp_cell_begin(root, hex, &c, &err), NN_OK);
    assert_int_equal(c.open, 1);
    assert_non_null(strstr(c.dir, "/cells/tmp/"));
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 0); /* begun, empty */
    assert_int_equal(write_cell_files(c.dir, "one"), 0);
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 0); /* files, no commit */
    snprintf(p, sizeof p, "%s/cell.json", c.dir);
    put_file(p, "{}", 2);
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 0); /* even a cell.json in the work folder */
    const char *json = "{\"run\": \"one\"}\n";
    assert_int_equal(exp_cell_commit(&c, json, strlen(json), &err), NN_OK); /* replaces that cell.json */
    assert_int_equal(c.open, 0);
    assert_int_equal(c.kept_existing, 0);
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1);
    assert_string_equal(dir, c.dir);
    snprintf(p, sizeof p, "%s/cells/%.2s/%s", root, hex, hex);
    assert_string_equal(dir, p);
    assert_cell_is(dir, "one");
    assert_int_equal(count_entries(tmp), 0);
    assert_int_equal(count_cells(root), 1);
    exp_cell_abort(&c); /* after commit: a no-op */
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1);
    assert_int_equal(exp_cell_commit(&c, json, strlen(json), &err), NN_E_INVAL); /* not open */

    /* Abort removes the work folder and publishes nothing. */
    char hex2[65];
    hex_of("aborted", hex2);
    assert_int_equal(exp_cell_begin(root, hex2, &c, &err), NN_OK);
    assert_int_equal(write_cell_files(c.dir, "two"), 0);
    snprintf(p, sizeof p, "%s", c.dir);
    exp_cell_abort(&c);
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    assert_int_equal(exp_cell_find(root, hex2, dir, sizeof dir), 0);
    assert_int_equal(count_entries(tmp), 0);

    /* Bad keys and a too-small buffer. */
    assert_int_equal(exp_cell_find(root, "../../etc", dir, sizeof dir), -1);
    char upper[65];
    snprintf(upper, sizeof upper, "%s", hex);
    upper[0] = 'A';
    assert_int_equal(exp_cell_find(root, upper, dir, sizeof dir), -1);
    assert_int_equal(exp_cell_begin(root, "abc", &c, &err), NN_E_INVAL);
    assert_int_equal(c.open, 0);
    exp_cell_abort(&c);
    assert_int_equal(exp_cell_find(root, hex, dir, 10), -1);
    assert_int_equal(exp_cell_find(root, hex, NULL, 0), 1);
    assert_int_equal(exp_cell_find(root, hex2, NULL, 0), 0);
}

/* Forks a child that runs a cell up to a crash point and kills itself with SIGKILL:
 * 0 right after begin, 1 after writing the files, 2 after also writing cell.json in the work folder
 * (the last step before the rename), 3 right after commit returned. */
static void crash_child(const char *root, const char *hex, int point) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        exp_cell c;
        nn_err err = {0};
        char p[PBUF];
        const char *json = "{\"run\": \"crashed\"}\n";
        if (exp_cell_begin(root, hex, &c, &err)) _exit(2);
        if (point >= 1 && write_cell_files(c.dir, "crashed")) _exit(3);
        snprintf(p, sizeof p, "%s/cell.json", c.dir);
        if (point == 2 && nn_io_write_atomic(p, json, strlen(json), &err)) _exit(4);
        if (point == 3 && exp_cell_commit(&c, json, strlen(json), &err)) _exit(5);
        raise(SIGKILL);
        _exit(6);
    }
    int st = reap(pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        fail_msg("crash point %d: child did not die of SIGKILL (status %d)", point, st);
}

static void test_crash_then_rerun(void **state) {
    (void)state;
    for (int point = 0; point < 3; point++) {
        char root[512], tmp[600], hex[65], dir[1024];
        snprintf(root, sizeof root, "%s/crash%d", g_dir, point);
        tmp_of(tmp, sizeof tmp, root);
        hex_of("crash", hex);
        crash_child(root, hex, point);
        assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 0); /* a partial cell is not finished */
        assert_int_equal(count_entries(tmp), 1);                        /* the dead run's work folder */
        assert_int_equal(count_cells(root), 0);

        /* The next run: clean, find nothing, recompute. */
        nn_err err = {0};
        exp_cell c;
        assert_int_equal(exp_cache_clean_tmp(root, &err), NN_OK);
        assert_int_equal(count_entries(tmp), 0);
        assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 0);
        assert_int_equal(run_cell(root, hex, "second", 0, &c), NN_OK);
        assert_int_equal(c.kept_existing, 0);
        assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1);
        assert_cell_is(dir, "second");
        assert_int_equal(count_cells(root), 1);
        assert_int_equal(count_entries(tmp), 0);
    }
}

static void test_kill_after_commit(void **state) {
    (void)state;
    char root[512], tmp[600], hex[65], dir[1024];
    snprintf(root, sizeof root, "%s/killed_after", g_dir);
    tmp_of(tmp, sizeof tmp, root);
    hex_of("killed after commit", hex);
    crash_child(root, hex, 3);
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1);
    assert_cell_is(dir, "crashed");
    assert_int_equal(count_entries(tmp), 0);
    nn_err err = {0};
    assert_int_equal(exp_cache_clean_tmp(root, &err), NN_OK);
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1); /* the rerun reuses it */
    assert_cell_is(dir, "crashed");
}

/* A child commits cells 0..N-1 in a loop and is killed with SIGKILL at an arbitrary moment (after a
 * trial-dependent number of commits, plus a trial-dependent delay). Whatever the moment, every cell found
 * is complete and nothing else sits under a final name; a rerun completes the rest, reusing the finished
 * ones. */
static void test_kill_anywhere(void **state) {
    (void)state;
    enum { N = 200 };
    char root[512], tmp[600], hex[65], dir[1024], tag[16];
    snprintf(root, sizeof root, "%s/kill_anywhere", g_fast);
    tmp_of(tmp, sizeof tmp, root);
    size_t before = 0;
    for (int trial = 0; trial < 4; trial++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int i = 0; i < N; i++) {
                exp_cell c;
                snprintf(tag, sizeof tag, "c%d", i);
                hex_of(tag, hex);
                if (exp_cell_find(root, hex, dir, sizeof dir) == 1) continue;
                if (run_cell(root, hex, tag, 0, &c)) _exit(2);
            }
            _exit(0);
        }
        /* Wait for a few more commits (at most ~5 s), then a little longer, then kill. */
        struct timespec ms = {0, 1000000L}, jitter = {0, 37000L * trial};
        for (int w = 0; w < 5000 && count_cells(root) < before + 5 + 10 * (size_t)trial; w++)
            nanosleep(&ms, NULL);
        nanosleep(&jitter, NULL);
        kill(pid, SIGKILL);
        int st = reap(pid);
        assert_false(WIFEXITED(st) && WEXITSTATUS(st) != 0);
        size_t found = 0;
        for (int i = 0; i < N; i++) {
            snprintf(tag, sizeof tag, "c%d", i);
            hex_of(tag, hex);
            int f = exp_cell_find(root, hex, dir, sizeof dir);
            assert_true(f == 0 || f == 1);
            if (f == 1) assert_cell_is(dir, tag), found++;
        }
        assert_int_equal(count_cells(root), found); /* nothing else under a final name */
        assert_true(found >= before);               /* finished cells are never lost */
        before = found;
    }
    /* The rerun in this process: clean, skip finished cells, compute the rest. */
    nn_err err = {0};
    assert_int_equal(exp_cache_clean_tmp(root, &err), NN_OK);
    assert_int_equal(count_entries(tmp), 0);
    size_t computed = 0;
    for (int i = 0; i < N; i++) {
        exp_cell c;
        snprintf(tag, sizeof tag, "c%d", i);
        hex_of(tag, hex);
        if (exp_cell_find(root, hex, dir, sizeof dir) == 1) continue;
        assert_int_equal(run_cell(root, hex, tag, 0, &c), NN_OK);
        assert_int_equal(c.kept_existing, 0);
        computed++;
    }
    assert_int_equal(computed, N - before);
    for (int i = 0; i < N; i++) {
        snprintf(tag, sizeof tag, "c%d", i);
        hex_of(tag, hex);
        assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1);
        assert_cell_is(dir, tag);
    }
    assert_int_equal(count_cells(root), N);
    assert_int_equal(count_entries(tmp), 0);
}

static void test_commit_existing_and_replace(void **state) {
    (void)state;
    char root[512], tmp[600], hex[65], dir[1024], p[PBUF];
    snprintf(root, sizeof root, "%s/existing", g_dir);
    tmp_of(tmp, sizeof tmp, root);
    hex_of("existing", hex);
    nn_err err = {0};
    exp_cell c, c2;
    assert_int_equal(run_cell(root, hex, "first", 0, &c), NN_OK);

    /* Two more runs of the same cell (one begun before the other commits): both keep the first. */
    assert_int_equal(exp_cell_begin(root, hex, &c, &err), NN_OK);
    assert_int_equal(write_cell_files(c.dir, "late"), 0);
    assert_int_equal(run_cell(root, hex, "other", 0, &c2), NN_OK);
    assert_int_equal(c2.kept_existing, 1);
    const char *json = "{\"run\": \"late\"}\n";
    assert_int_equal(exp_cell_commit(&c, json, strlen(json), &err), NN_OK);
    assert_int_equal(c.kept_existing, 1);
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1);
    assert_string_equal(c.dir, dir);
    assert_cell_is(dir, "first");
    assert_int_equal(count_entries(tmp), 0); /* ours were discarded */

    /* --force: commit_replace puts the new cell in whole; an extra file of the old one does not survive. */
    snprintf(p, sizeof p, "%s/extra.txt", dir);
    put_file(p, "old", 3);
    assert_int_equal(run_cell(root, hex, "forced", 1, &c), NN_OK);
    assert_int_equal(c.kept_existing, 0);
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1);
    assert_cell_is(dir, "forced");
    assert_int_equal(count_entries(tmp), 0); /* the aside was removed */
    assert_int_equal(count_cells(root), 1);

    /* commit_replace with nothing there: a plain commit. */
    char hex2[65];
    hex_of("forced fresh", hex2);
    assert_int_equal(run_cell(root, hex2, "fresh", 1, &c), NN_OK);
    assert_int_equal(exp_cell_find(root, hex2, dir, sizeof dir), 1);
    assert_cell_is(dir, "fresh");

    /* A folder at the final name without cell.json (not made by the store) is not finished and is
     * replaced by a plain commit. */
    char hex3[65];
    hex_of("foreign", hex3);
    snprintf(p, sizeof p, "%s/cells/%.2s/%s", root, hex3, hex3);
    char shard[PBUF];
    snprintf(shard, sizeof shard, "%s/cells/%.2s", root, hex3);
    mkdir(shard, 0777);
    assert_int_equal(mkdir(p, 0777), 0);
    snprintf(shard, sizeof shard, "%s/cells/%.2s/%s/junk", root, hex3, hex3);
    put_file(shard, "junk", 4);
    assert_int_equal(exp_cell_find(root, hex3, dir, sizeof dir), 0);
    assert_int_equal(run_cell(root, hex3, "proper", 0, &c), NN_OK);
    assert_int_equal(c.kept_existing, 0);
    assert_int_equal(exp_cell_find(root, hex3, dir, sizeof dir), 1);
    assert_cell_is(dir, "proper");
    assert_int_equal(count_entries(tmp), 0);
}

/* exp_cache_clean_tmp removes only dead runs' folders: not a live child's, not ours, not unknown names. */
static void test_clean_keeps_live(void **state) {
    (void)state;
    char root[512], tmp[600], hex[65], dir[1024], p[PBUF];
    snprintf(root, sizeof root, "%s/live", g_dir);
    tmp_of(tmp, sizeof tmp, root);
    hex_of("live", hex);
    nn_err err = {0};

    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* a live concurrent run: begins, reports its folder, waits, then commits */
        close(up[0]), close(down[1]);
        exp_cell c;
        nn_err e = {0};
        const char *json = "{\"run\": \"child\"}\n";
        if (exp_cell_begin(root, hex, &c, &e) || write_cell_files(c.dir, "child")) _exit(2);
        if (write(up[1], c.dir, sizeof c.dir) != (ssize_t)sizeof c.dir) _exit(3);
        char go;
        if (read(down[0], &go, 1) != 1) _exit(4);
        _exit(exp_cell_commit(&c, json, strlen(json), &e) ? 5 : 0);
    }
    close(up[1]), close(down[0]);
    static char child_dir[EXP_CACHE_PATH_MAX];
    size_t got = 0;
    while (got < sizeof child_dir) {
        ssize_t r = read(up[0], child_dir + got, sizeof child_dir - got);
        assert_true(r > 0);
        got += (size_t)r;
    }

    /* A dead run's folder: named with the pid of a child that has exited and been reaped. */
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0) _exit(0);
    reap(dead);
    char stale[1024];
    snprintf(stale, sizeof stale, "%s/%s.%ld.0123456789abcdef", tmp, hex, (long)dead);
    assert_int_equal(mkdir(stale, 0777), 0);
    snprintf(p, sizeof p, "%s/cell.json", stale); /* even a complete-looking one */
    put_file(p, "{}", 2);
    /* Our own open cell, and names the store did not make. */
    exp_cell mine;
    assert_int_equal(exp_cell_begin(root, hex, &mine, &err), NN_OK);
    snprintf(p, sizeof p, "%s/notes.txt", tmp);
    put_file(p, "keep", 4);
    snprintf(p, sizeof p, "%s/%s.x.1", tmp, hex);
    assert_int_equal(mkdir(p, 0777), 0);
    assert_int_equal(count_entries(tmp), 5);

    assert_int_equal(exp_cache_clean_tmp(root, &err), NN_OK);
    struct stat st;
    assert_int_not_equal(stat(stale, &st), 0); /* dead: removed */
    assert_int_equal(stat(child_dir, &st), 0); /* live child: kept */
    assert_int_equal(stat(mine.dir, &st), 0);  /* ours: kept */
    assert_int_equal(count_entries(tmp), 4);

    /* The child goes on and commits; then ours is discarded in favour of it. */
    assert_int_equal(write(down[1], "g", 1), 1);
    int cst = reap(pid);
    assert_true(WIFEXITED(cst));
    assert_int_equal(WEXITSTATUS(cst), 0);
    close(up[0]), close(down[1]);
    assert_int_equal(exp_cell_find(root, hex, dir, sizeof dir), 1);
    assert_cell_is(dir, "child");
    assert_int_equal(write_cell_files(mine.dir, "mine"), 0);
    const char *json = "{\"run\": \"mine\"}\n";
    assert_int_equal(exp_cell_commit(&mine, json, strlen(json), &err), NN_OK);
    assert_int_equal(mine.kept_existing, 1);
    assert_cell_is(dir, "child");
    assert_int_equal(count_entries(tmp), 2); /* only the foreign names are left */
    assert_int_equal(exp_cache_clean_tmp(root, &err), NN_OK);
    assert_int_equal(count_entries(tmp), 2);

    snprintf(p, sizeof p, "%s/no_cache_here", g_dir); /* no tmp folder: nothing to do */
    assert_int_equal(exp_cache_clean_tmp(p, &err), NN_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_key_pinned),
        cmocka_unit_test(test_key_sensitivity),
        cmocka_unit_test(test_hash_memo),
        cmocka_unit_test(test_cell_lifecycle),
        cmocka_unit_test(test_crash_then_rerun),
        cmocka_unit_test(test_kill_after_commit),
        cmocka_unit_test(test_kill_anywhere),
        cmocka_unit_test(test_commit_existing_and_replace),
        cmocka_unit_test(test_clean_keeps_live),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
