/* exp_cache.c - SHA-256, cell keys, file-hash memo, and the crash-safe cell store (see exp_cache.h). */
#include "exp_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exp_run.h"
#include "nn_io.h"

/* ---- SHA-256 (FIPS 180-4, section 6.2) ---- */

static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* One 64-byte block p (big-endian words) into the state h. */
static void sha_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 =
            hh + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void exp_sha256_init(exp_sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->nbytes = 0;
    s->nbuf = 0;
}

void exp_sha256_update(exp_sha256 *s, const void *data, size_t len) {
    const unsigned char *p = data;
    if (len == 0) return;
    s->nbytes += len;
    if (s->nbuf) {
        size_t take = len < 64 - s->nbuf ? len : 64 - s->nbuf;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take, p += take, len -= take;
        if (s->nbuf < 64) return;
        sha_block(s->h, s->buf);
        s->nbuf = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        sha_block(s->h, p);
    memcpy(s->buf, p, len);
    s->nbuf = len;
}

void exp_sha256_final(exp_sha256 *s, unsigned char out[32]) {
    uint64_t bits = s->nbytes * 8; /* message length mod 2^64 bits */
    unsigned char pad[64] = {0x80}, lenb[8];
    size_t padlen = s->nbuf < 56 ? 56 - s->nbuf : 120 - s->nbuf; /* 0x80, zeros, to 56 mod 64 */
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    exp_sha256_update(s, pad, padlen);
    exp_sha256_update(s, lenb, 8);
    for (int i = 0; i < 32; i++)
        out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

static void sha_hex(const unsigned char d[32], char out[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = '\0';
}

void exp_sha256_hex(const void *data, size_t len, char out[65]) {
    exp_sha256 s;
    unsigned char d[32];
    exp_sha256_init(&s);
    exp_sha256_update(&s, data, len);
    exp_sha256_final(&s, d);
    sha_hex(d, out);
}

/* out <- SHA-256 hex of everything readable from fd, in 64 KiB chunks. */
static int sha_fd(int fd, const char *path, char out[65], nn_err *err) {
    enum { CHUNK = 1 << 16 };
    unsigned char *buf = malloc(CHUNK), d[32];
    if (!buf) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
    exp_sha256 s;
    exp_sha256_init(&s);
    for (;;) {
        ssize_t got = read(fd, buf, CHUNK);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            return NN_FAIL(err, NN_E_IO, "%s: read error: %s", path, strerror(e));
        }
        if (got == 0) break;
        exp_sha256_update(&s, buf, (size_t)got);
    }
    free(buf);
    exp_sha256_final(&s, d);
    sha_hex(d, out);
    return NN_OK;
}

int exp_sha256_file(const char *path, char out[65], nn_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NN_FAIL(err, NN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = sha_fd(fd, path, out, err);
    close(fd);
    return rc;
}

/* ---- file-hash memo ---- */

void exp_hash_memo_init(exp_hash_memo *m) {
    memset(m, 0, sizeof *m);
}

void exp_hash_memo_free(exp_hash_memo *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].path);
    free(m->e);
    memset(m, 0, sizeof *m);
}

/* The identity fields of st into e (path and hex untouched). */
static void memo_ident(exp_hash_memo_entry *e, const struct stat *st) {
    e->dev = (uint64_t)st->st_dev, e->ino = (uint64_t)st->st_ino, e->size = (uint64_t)st->st_size;
    e->mtime_s = (int64_t)st->st_mtim.tv_sec, e->mtime_ns = (int64_t)st->st_mtim.tv_nsec;
    e->ctime_s = (int64_t)st->st_ctim.tv_sec, e->ctime_ns = (int64_t)st->st_ctim.tv_nsec;
}

static int memo_same(const exp_hash_memo_entry *a, const exp_hash_memo_entry *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
           a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* Remembers (path, id, hex), replacing an older entry of the same path. */
static int memo_put(exp_hash_memo *m, const char *path, const exp_hash_memo_entry *id, nn_err *err) {
    exp_hash_memo_entry *slot = NULL;
    for (size_t i = 0; i < m->n && !slot; i++)
        if (!strcmp(m->e[i].path, path)) slot = &m->e[i];
    if (!slot) {
        if (m->n == m->cap) {
            size_t cap = m->cap ? 2 * m->cap : 16;
            exp_hash_memo_entry *ne = realloc(m->e, cap * sizeof *ne);
            if (!ne) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
            m->e = ne, m->cap = cap;
        }
        char *p = strdup(path);
        if (!p) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
        slot = &m->e[m->n++];
        slot->path = p;
    }
    char *keep = slot->path;
    *slot = *id;
    slot->path = keep;
    return NN_OK;
}

int exp_hash_memo_file(exp_hash_memo *m, const char *path, char out[65], nn_err *err) {
    struct stat st, st2;
    exp_hash_memo_entry id = {0}, id2 = {0};
    if (m) {
        if (stat(path, &st) != 0) return NN_FAIL(err, NN_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        memo_ident(&id, &st);
        for (size_t i = 0; i < m->n; i++) {
            if (strcmp(m->e[i].path, path) || !memo_same(&m->e[i], &id)) continue;
            memcpy(out, m->e[i].hex, 65);
            m->hits++;
            return NN_OK;
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* before reading: see the racy rule below */
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NN_FAIL(err, NN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = fstat(fd, &st) ? NN_FAIL(err, NN_E_IO, "%s: cannot stat: %s", path, strerror(errno)) : NN_OK;
    if (!rc) rc = sha_fd(fd, path, out, err);
    if (!rc && fstat(fd, &st2)) rc = NN_FAIL(err, NN_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    close(fd);
    if (rc || !m) return rc;
    m->misses++;
    memo_ident(&id, &st);
    memo_ident(&id2, &st2);
    if (!memo_same(&id, &id2)) return NN_FAIL(err, NN_E_IO, "%s: changed while being read", path);
    /* Racy: modified within 2 s of our read (or in the future) -> a later same-tick write could keep
     * size and mtime; do not remember it. 2 s covers coarse timestamps (jiffies, FAT's 2 s). */
    if (id.mtime_s >= (int64_t)now.tv_sec - 2) return NN_OK;
    memcpy(id.hex, out, 65);
    return memo_put(m, path, &id, err);
}

/* ---- cell keys ---- */

static void key_u64le(exp_sha256 *s, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    exp_sha256_update(s, b, 8);
}

/* type byte, u64le(len name), name, u64le(len value), value. */
static void key_field(exp_key *k, char type, const char *name, const void *v, size_t vlen) {
    size_t nl = strlen(name);
    exp_sha256_update(&k->ctx, &type, 1);
    key_u64le(&k->ctx, (uint64_t)nl);
    exp_sha256_update(&k->ctx, name, nl);
    key_u64le(&k->ctx, (uint64_t)vlen);
    exp_sha256_update(&k->ctx, v, vlen);
}

void exp_key_init(exp_key *k) {
    static const char magic[] = "temper-cell-key-v1\n";
    exp_sha256_init(&k->ctx);
    exp_sha256_update(&k->ctx, magic, sizeof magic - 1);
}

void exp_key_add_str(exp_key *k, const char *name, const char *value) {
    key_field(k, 's', name, value, strlen(value));
}

void exp_key_add_u64(exp_key *k, const char *name, uint64_t value) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(value >> (8 * i));
    key_field(k, 'u', name, b, 8);
}

void exp_key_add_double(exp_key *k, const char *name, double value) {
    uint64_t bits = 0; /* +0.0 and -0.0 */
    if (isnan(value))
        bits = 0x7ff8000000000000ull;
    else if (value != 0.0)
        memcpy(&bits, &value, sizeof bits);
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(bits >> (8 * i));
    key_field(k, 'd', name, b, 8);
}

int exp_key_add_file_hash(exp_key *k, const char *name, const char *path, exp_hash_memo *memo, nn_err *err) {
    char hex[65];
    int rc = exp_hash_memo_file(memo, path, hex, err);
    if (!rc) key_field(k, 'f', name, hex, 64);
    return rc;
}

void exp_key_final(exp_key *k, char hex[65]) {
    unsigned char d[32];
    exp_sha256_final(&k->ctx, d);
    sha_hex(d, hex);
}

/* ---- file system helpers ---- */

static int hex_valid(const char *hex) {
    size_t i = 0;
    for (; i < 64 && hex[i]; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'))) return 0;
    return i == 64 && hex[64] == '\0';
}

/* buf <- printf(fmt, ...); -1 if it does not fit. */
static int path_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int path_fmt(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* fsync of a file or folder by name (a folder's fsync makes its entries' creation and renames durable).
 * EINVAL (a file system that cannot sync folders) counts as done. */
static int sync_path(const char *path, nn_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NN_FAIL(err, NN_E_IO, "%s: cannot open to sync: %s", path, strerror(errno));
    int bad = fsync(fd) != 0 && errno != EINVAL;
    int e = errno;
    close(fd);
    return bad ? NN_FAIL(err, NN_E_IO, "%s: fsync failed: %s", path, strerror(e)) : NN_OK;
}

/* fsyncs every regular file and folder under p (p is a buffer of cap bytes, used as scratch and
 * restored), p itself last. Symbolic links are not followed. */
static int sync_tree(char *p, size_t cap, int depth, nn_err *err) {
    DIR *d = opendir(p);
    if (!d) return NN_FAIL(err, NN_E_IO, "%s: cannot open folder: %s", p, strerror(errno));
    size_t len = strlen(p);
    int rc = depth > 32 ? NN_FAIL(err, NN_E_IO, "%s: folders nested too deep", p) : NN_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (path_fmt(p + len, cap - len, "/%s", e->d_name))
            rc = NN_FAIL(err, NN_E_INVAL, "%s: path too long", p);
        else if (lstat(p, &st))
            rc = NN_FAIL(err, NN_E_IO, "%s: cannot stat: %s", p, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = sync_tree(p, cap, depth + 1, err);
        else if (S_ISREG(st.st_mode))
            rc = sync_path(p, err);
        p[len] = '\0';
    }
    closedir(d);
    return rc ? rc : sync_path(p, err);
}

/* rm -rf p (a buffer of cap bytes, used as scratch and restored); symbolic links are removed, not
 * followed. 0, or -1 with errno of the last failure (the rest is still removed). */
static int rm_tree(char *p, size_t cap, int depth) {
    struct stat st;
    if (lstat(p, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(p) == 0 || errno == ENOENT ? 0 : -1;
    DIR *d = depth > 32 ? NULL : opendir(p);
    if (!d) return -1;
    size_t len = strlen(p);
    int rc = 0, e = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (path_fmt(p + len, cap - len, "/%s", de->d_name))
            rc = -1, e = ENAMETOOLONG;
        else if (rm_tree(p, cap, depth + 1))
            rc = -1, e = errno;
        p[len] = '\0';
    }
    closedir(d);
    if (!rc && rmdir(p) != 0 && errno != ENOENT) rc = -1, e = errno;
    errno = e;
    return rc;
}

static int rm_path(const char *path) {
    char p[EXP_CACHE_PATH_MAX];
    if (path_fmt(p, sizeof p, "%s", path)) return errno = ENAMETOOLONG, -1;
    return rm_tree(p, sizeof p, 0);
}

/* A name suffix that differs between calls, processes and attempts (uniqueness itself comes from
 * mkdir/rename failing on an existing name): splitmix64 of the clocks, an address and the attempt. */
static uint64_t name_rand(const void *addr, unsigned attempt) {
    struct timespec a = {0}, b = {0};
    clock_gettime(CLOCK_REALTIME, &a);
    clock_gettime(CLOCK_MONOTONIC, &b);
    uint64_t z = (uint64_t)a.tv_sec * 1000000007ull ^ (uint64_t)a.tv_nsec ^ (uint64_t)b.tv_nsec << 20 ^
                 (uint64_t)(uintptr_t)addr ^ (uint64_t)attempt * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 1 if folder fin holds a cell.json (a finished cell). */
static int cell_finished(const char *fin) {
    char p[EXP_CACHE_PATH_MAX];
    struct stat st;
    return !path_fmt(p, sizeof p, "%s/cell.json", fin) && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- cell store ---- */

int exp_cell_find(const char *root, const char *hex, char *dir, size_t cap) {
    char fin[EXP_CACHE_PATH_MAX];
    if (!hex_valid(hex) || path_fmt(fin, sizeof fin, "%s/cells/%.2s/%s", root, hex, hex)) return -1;
    if (dir && strlen(fin) >= cap) return -1;
    if (!cell_finished(fin)) return 0;
    if (dir) memcpy(dir, fin, strlen(fin) + 1);
    return 1;
}

int exp_cell_begin(const char *root, const char *hex, exp_cell *c, nn_err *err) {
    char tmp[EXP_CACHE_PATH_MAX];
    c->open = 0, c->kept_existing = 0, c->dir[0] = '\0';
    if (!hex_valid(hex))
        return NN_FAIL(err, NN_E_INVAL, "cell key '%.80s' is not 64 lowercase hex digits", hex);
    if (path_fmt(c->root, sizeof c->root, "%s", root) || path_fmt(tmp, sizeof tmp, "%s/cells/tmp", root))
        return NN_FAIL(err, NN_E_INVAL, "%.200s: cache folder name too long", root);
    memcpy(c->hex, hex, 65);
    int rc = exp_mkdir_p(tmp, err);
    for (unsigned attempt = 0; !rc && attempt < 100; attempt++) {
        if (path_fmt(c->dir, sizeof c->dir, "%s/%s.%ld.%016llx", tmp, hex, (long)getpid(),
                     (unsigned long long)name_rand(c, attempt)))
            return NN_FAIL(err, NN_E_INVAL, "%s: work folder name too long", tmp);
        if (mkdir(c->dir, 0777) == 0) {
            c->open = 1;
            return NN_OK;
        }
        if (errno != EEXIST)
            return NN_FAIL(err, NN_E_IO, "%s: cannot create folder: %s", c->dir, strerror(errno));
    }
    return rc ? rc : NN_FAIL(err, NN_E_IO, "%s: no free work folder name after 100 attempts", tmp);
}

void exp_cell_abort(exp_cell *c) {
    if (!c->open) return;
    rm_path(c->dir); /* a failure leaves a folder exp_cache_clean_tmp removes once we are gone */
    c->open = 0;
    c->dir[0] = '\0';
}

/* Renames the work folder c->dir onto fin. An existing folder there is kept if finished and !replace
 * (ours removed); otherwise it is moved aside into tmp, ours renamed in, and the old one removed.
 * Retries when a concurrent writer changes fin in between. */
static int cell_publish(exp_cell *c, const char *fin, int replace, nn_err *err) {
    for (unsigned attempt = 0; attempt < 16; attempt++) {
        if (rename(c->dir, fin) == 0) return NN_OK;
        if (errno != ENOTEMPTY && errno != EEXIST)
            return NN_FAIL(err, NN_E_IO, "%s -> %s: cannot rename: %s", c->dir, fin, strerror(errno));
        if (!replace && cell_finished(fin)) {
            rm_path(c->dir); /* a failure leaves a stale work folder, removed by a later clean */
            c->kept_existing = 1;
            return NN_OK;
        }
        char aside[EXP_CACHE_PATH_MAX];
        if (path_fmt(aside, sizeof aside, "%s/cells/tmp/%s.%ld.old%016llx", c->root, c->hex, (long)getpid(),
                     (unsigned long long)name_rand(c, attempt)))
            return NN_FAIL(err, NN_E_INVAL, "%s: path too long", c->root);
        if (rename(fin, aside) != 0) {
            if (errno == ENOENT) continue; /* someone else moved it meanwhile: try again */
            return NN_FAIL(err, NN_E_IO, "%s -> %s: cannot rename: %s", fin, aside, strerror(errno));
        }
        int moved = rename(c->dir, fin) == 0, e = errno;
        rm_path(aside); /* a failure leaves it in tmp for a later clean */
        if (moved) return NN_OK;
        if (e != ENOTEMPTY && e != EEXIST)
            return NN_FAIL(err, NN_E_IO, "%s -> %s: cannot rename: %s", c->dir, fin, strerror(e));
    }
    return NN_FAIL(err, NN_E_IO, "%s: could not publish the cell after 16 attempts (concurrent writers?)",
                   fin);
}

static int cell_commit(exp_cell *c, const char *cell_json, size_t len, int replace, nn_err *err) {
    if (!c->open)
        return NN_FAIL(err, NN_E_INVAL, "cell commit: the cell is not open (begin failed, or done)");
    char path[EXP_CACHE_PATH_MAX], shard[EXP_CACHE_PATH_MAX], fin[EXP_CACHE_PATH_MAX];
    int rc = exp_path_join(path, sizeof path, c->dir, "cell.json", err);
    if (!rc && (path_fmt(shard, sizeof shard, "%s/cells/%.2s", c->root, c->hex) ||
                path_fmt(fin, sizeof fin, "%s/%s", shard, c->hex)))
        rc = NN_FAIL(err, NN_E_INVAL, "%s: cell folder name too long", c->root);
    if (!rc) rc = nn_io_write_atomic(path, cell_json, len, err);
    if (!rc) { /* the files' data and the work folders' entries reach the disk before the rename */
        memcpy(path, c->dir, strlen(c->dir) + 1);
        rc = sync_tree(path, sizeof path, 0, err);
    }
    if (!rc) rc = exp_mkdir_p(shard, err);
    if (!rc) rc = cell_publish(c, fin, replace, err);
    if (rc) {
        exp_cell_abort(c);
        return rc;
    }
    c->open = 0;
    memcpy(c->dir, fin, strlen(fin) + 1);
    /* Make the rename durable: the shard folder (new entry), cells/ (a new shard), tmp/ (entry gone). */
    rc = sync_path(shard, err);
    if (!rc && !path_fmt(path, sizeof path, "%s/cells", c->root)) rc = sync_path(path, err);
    if (!rc && !path_fmt(path, sizeof path, "%s/cells/tmp", c->root)) rc = sync_path(path, err);
    return rc;
}

int exp_cell_commit(exp_cell *c, const char *cell_json, size_t len, nn_err *err) {
    return cell_commit(c, cell_json, len, 0, err);
}

int exp_cell_commit_replace(exp_cell *c, const char *cell_json, size_t len, nn_err *err) {
    return cell_commit(c, cell_json, len, 1, err);
}

/* The pid in a tmp entry name <64 hex>.<pid>.<suffix>; 0 if the name has another form. */
static long tmp_name_pid(const char *name) {
    for (int i = 0; i < 64; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
    if (name[64] != '.') return 0;
    long long pid = 0;
    const char *p = name + 65;
    for (; *p >= '0' && *p <= '9' && pid <= INT_MAX; p++)
        pid = pid * 10 + (*p - '0');
    return p > name + 65 && *p == '.' && p[1] && pid <= INT_MAX ? (long)pid : 0;
}

int exp_cache_clean_tmp(const char *root, nn_err *err) {
    char tmp[EXP_CACHE_PATH_MAX], p[EXP_CACHE_PATH_MAX];
    if (path_fmt(tmp, sizeof tmp, "%s/cells/tmp", root))
        return NN_FAIL(err, NN_E_INVAL, "%.200s: cache folder name too long", root);
    DIR *d = opendir(tmp);
    if (!d)
        return errno == ENOENT ? NN_OK : NN_FAIL(err, NN_E_IO, "%s: cannot open: %s", tmp, strerror(errno));
    int rc = NN_OK;
    long self = (long)getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = tmp_name_pid(e->d_name);
        if (pid <= 0 || pid == self) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (EPERM: another user's) */
        if (path_fmt(p, sizeof p, "%s/%s", tmp, e->d_name)) continue;
        if (rm_tree(p, sizeof p, 0) != 0 && !rc)
            rc = NN_FAIL(err, NN_E_IO, "%s: cannot remove stale work folder: %s", p, strerror(errno));
    }
    closedir(d);
    return rc;
}
