/* nn_idx.c - IDX files (the MNIST container), raw or gzip-compressed.
 *
 * Layout: 4-byte magic {0x00, 0x00, type, ndim}, ndim big-endian uint32 dimensions, then the data in
 * row-major order. Only type 0x08 (unsigned byte) is accepted. zlib's gzopen/gzread read both plain and
 * gzip files transparently, so compression is detected by content, not by the file name.
 * The data buffer grows as bytes actually arrive, so a corrupt header announcing a huge size costs no
 * more memory than the file really holds before it is reported as truncated. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "nn_data.h"

#define IDX_TYPE_U8 0x08
#define IDX_CHUNK ((size_t)1 << 30) /* largest single gzread request (its length is an unsigned int) */
#define IDX_FIRST_CAP ((size_t)1 << 20)

/* Reads up to n bytes; returns how many arrived (< n only at end of input), or -1 on a zlib error. */
static long long idx_gzread_all(gzFile gz, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
        int r = gzread(gz, buf + got, (unsigned)want);
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long long)got;
}

/* A zlib problem on gz (e.g. a truncated or corrupt gzip stream), or NULL if none; without the
 * "<path>: " prefix zlib puts in front of its message (callers name the file themselves). */
static const char *idx_gz_problem(gzFile gz, const char *path) {
    int code = Z_OK;
    const char *msg = gzerror(gz, &code);
    if (code == Z_OK || code == Z_STREAM_END) return NULL;
    if (!msg || !msg[0]) return "zlib error";
    size_t lp = strlen(path);
    if (strncmp(msg, path, lp) == 0 && msg[lp] == ':' && msg[lp + 1] == ' ') msg += lp + 2;
    return msg;
}

/* Reads n header bytes; fails (naming what) if they are not all there. A zlib end-of-input error
 * (Z_BUF_ERROR) may already be pending while the bytes asked for are delivered: it is judged later. */
static int idx_read_exact(gzFile gz, const char *path, uint8_t *buf, size_t n, const char *what,
                          nn_err *err) {
    long long got = idx_gzread_all(gz, buf, n);
    const char *zp = idx_gz_problem(gz, path);
    if (got < 0)
        return NN_FAIL(err, NN_E_FORMAT, "%s: corrupt or unreadable: %s", path, zp ? zp : "read error");
    if ((size_t)got < n)
        return NN_FAIL(err, NN_E_FORMAT, "%s: header too short (%lld of %zu %s bytes)%s%s", path, got, n,
                       what, zp ? ": " : "", zp ? zp : "");
    return NN_OK;
}

/* Parses the magic and dimensions. Fills out->ndim, dims, count. */
static int idx_read_header(gzFile gz, const char *path, nn_idx *out, nn_err *err) {
    uint8_t magic[4], dimb[16];
    int rc = idx_read_exact(gz, path, magic, 4, "magic", err);
    if (rc) return rc;
    if (magic[0] != 0 || magic[1] != 0)
        return NN_FAIL(err, NN_E_FORMAT, "%s: bad magic: starts 0x%02x 0x%02x, IDX files start 0x00 0x00",
                       path, magic[0], magic[1]);
    if (magic[2] != IDX_TYPE_U8)
        return NN_FAIL(err, NN_E_FORMAT, "%s: unsupported data type 0x%02x (only unsigned byte 0x08)", path,
                       magic[2]);
    int ndim = magic[3];
    if (ndim < 1 || ndim > 4) return NN_FAIL(err, NN_E_FORMAT, "%s: ndim %d outside 1..4", path, ndim);
    rc = idx_read_exact(gz, path, dimb, (size_t)ndim * 4, "dimension", err);
    if (rc) return rc;
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        const uint8_t *b = dimb + 4 * d;
        uint32_t v = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | (uint32_t)b[3];
        if (v == 0) return NN_FAIL(err, NN_E_FORMAT, "%s: dimension %d is zero", path, d);
        if ((size_t)v > SIZE_MAX / count)
            return NN_FAIL(err, NN_E_FORMAT, "%s: dimensions overflow the address space", path);
        out->dims[d] = (size_t)v;
        count *= (size_t)v;
    }
    out->ndim = ndim;
    out->count = count;
    return NN_OK;
}

/* Reads exactly out->count data bytes into a buffer grown as data arrives, then demands end of file. */
static int idx_read_data(gzFile gz, const char *path, nn_idx *out, nn_err *err) {
    int rc = NN_OK;
    size_t count = out->count, have = 0, cap = count < IDX_FIRST_CAP ? count : IDX_FIRST_CAP;
    long long got = 0, more = 0;
    uint8_t extra, *nb, *buf = malloc(cap);
    if (!buf) return NN_FAIL(err, NN_E_NOMEM, "%s: cannot allocate %zu bytes", path, cap);
    while (have < count) {
        if (have == cap) {
            size_t ncap = cap > count / 2 ? count : cap * 2;
            if (!(nb = realloc(buf, ncap))) {
                rc = NN_FAIL(err, NN_E_NOMEM, "%s: cannot allocate %zu bytes", path, ncap);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        if ((got = idx_gzread_all(gz, buf + have, cap - have)) < 0) break;
        have += (size_t)got;
        if (have < cap) break; /* end of input */
    }
    if (got >= 0 && have == count) more = idx_gzread_all(gz, &extra, 1);
    const char *zp = idx_gz_problem(gz, path);
    if (got < 0 || more < 0) {
        rc = NN_FAIL(err, NN_E_FORMAT, "%s: corrupt data after %zu bytes: %s", path, have,
                     zp ? zp : "read error");
    } else if (have < count) {
        rc = NN_FAIL(err, NN_E_FORMAT, "%s: truncated: %zu of %zu data bytes%s%s", path, have, count,
                     zp ? ": " : "", zp ? zp : "");
    } else if (zp) {
        rc = NN_FAIL(err, NN_E_FORMAT, "%s: corrupt compressed data: %s", path, zp);
    } else if (more > 0) {
        rc = NN_FAIL(err, NN_E_FORMAT, "%s: trailing bytes after the %zu data bytes", path, count);
    } else {
        out->data = buf;
        return NN_OK;
    }
fail:
    free(buf);
    return rc;
}

int nn_idx_read(const char *path, nn_idx *out, nn_err *err) {
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        int e = errno;
        return NN_FAIL(err, e ? NN_E_IO : NN_E_NOMEM, "%s: cannot open: %s", path,
                       e ? strerror(e) : "out of memory");
    }
    int rc = idx_read_header(gz, path, out, err);
    if (rc == NN_OK) rc = idx_read_data(gz, path, out, err);
    gzclose(gz);
    if (rc != NN_OK) memset(out, 0, sizeof *out);
    return rc;
}

void nn_idx_free(nn_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
