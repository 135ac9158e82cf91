/* nn_io.c - atomic file writes, whole-file reads, .npy output. */
#include "nn_io.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int nn_io_write_atomic_v(const char *path, const void *const *parts, const size_t *lens, size_t n_parts,
                         nn_err *err) {
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return NN_FAIL(err, NN_E_INVAL, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return NN_FAIL(err, NN_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    for (size_t i = 0; i < n_parts; i++) {
        if (lens[i] && fwrite(parts[i], 1, lens[i], f) != lens[i]) goto fail;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) goto fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) goto fail;
    return NN_OK;
fail: {
    int e = errno;
    if (f) fclose(f);
    remove(tmp);
    return NN_FAIL(err, NN_E_IO, "%s: write failed: %s (previous file, if any, left intact)", path, strerror(e));
}
}

int nn_io_write_atomic(const char *path, const void *data, size_t len, nn_err *err) {
    const void *parts[1] = {data};
    return nn_io_write_atomic_v(path, parts, &len, 1, err);
}

int nn_io_read_all(const char *path, char **data, size_t *len, nn_err *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NN_FAIL(err, NN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            fclose(f);
            return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NN_FAIL(err, NN_E_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return NN_OK;
}

/* .npy 1.0: magic, version, uint16 header length, ASCII dict padded with spaces to a multiple of 64. */
static int npy_write(const char *path, const void *data, size_t elem, const char *descr, int ndim,
                     const size_t *dims, nn_err *err) {
    if (ndim < 1 || ndim > 4) return NN_FAIL(err, NN_E_INVAL, "%s: npy ndim %d outside 1..4", path, ndim);
    char shape[128] = "";
    size_t count = 1, off = 0;
    for (int i = 0; i < ndim; i++) {
        off += (size_t)snprintf(shape + off, sizeof shape - off, "%zu,%s", dims[i], (i + 1 < ndim) ? " " : "");
        count *= dims[i];
    }
    if (ndim > 1) shape[off - 1] = '\0'; /* "(a, b)" without the trailing comma */
    char header[256];
    int h = snprintf(header + 10, sizeof header - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     descr, shape);
    size_t total = 10 + (size_t)h + 1;
    size_t padded = (total + 63) / 64 * 64;
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    size_t hl = padded - 10;
    header[8] = (char)(hl & 0xff);
    header[9] = (char)(hl >> 8);
    memset(header + 10 + h, ' ', padded - 10 - (size_t)h - 1);
    header[padded - 1] = '\n';
    const void *parts[2] = {header, data};
    size_t lens[2] = {padded, count * elem};
    return nn_io_write_atomic_v(path, parts, lens, 2, err);
}

int nn_npy_write_f32(const char *path, const float *data, int ndim, const size_t *dims, nn_err *err) {
    return npy_write(path, data, sizeof(float), "<f4", ndim, dims, err);
}

int nn_npy_write_i32(const char *path, const int *data, int ndim, const size_t *dims, nn_err *err) {
    _Static_assert(sizeof(int) == 4, "int must be 32-bit");
    return npy_write(path, data, sizeof(int), "<i4", ndim, dims, err);
}

/* ---- .npy input ---- */

#define NPY_MAX_HEADER 65536u /* numpy itself refuses headers over 10000 bytes by default */
_Static_assert(NN_NPY_MAX_DIMS == 8, "update the 'more than 8 dimensions' message");

/* A cursor over the header's Python dict literal. */
typedef struct npy_cur {
    const char *s;
    size_t n, i;
} npy_cur;

static void npy_ws(npy_cur *c) {
    while (c->i < c->n &&
           (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int npy_eat(npy_cur *c, char ch) {
    npy_ws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return 1;
    }
    return 0;
}

/* A quoted string ('...' or "...", no escapes) into buf[cap]. 0, or -1. */
static int npy_str(npy_cur *c, char *buf, size_t cap) {
    npy_ws(c);
    if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"')) return -1;
    char q = c->s[c->i++];
    size_t len = 0;
    while (c->i < c->n && c->s[c->i] != q) {
        if (c->s[c->i] == '\\' || len + 1 >= cap) return -1;
        buf[len++] = c->s[c->i++];
    }
    if (c->i >= c->n) return -1;
    c->i++;
    buf[len] = '\0';
    return 0;
}

/* The shape tuple: "()", "(3,)", "(2, 3)", Python 2's "3L" accepted. 0, or -1 (*why says what). */
static int npy_shape(npy_cur *c, nn_npy *a, const char **why) {
    *why = "expected a tuple of integers such as (2, 3)";
    if (!npy_eat(c, '(')) return -1;
    a->ndim = 0;
    for (;;) {
        if (npy_eat(c, ')')) return 0;
        npy_ws(c);
        if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9') return -1;
        if (a->ndim == NN_NPY_MAX_DIMS) {
            *why = "more than 8 dimensions";
            return -1;
        }
        size_t v = 0;
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
            size_t dgt = (size_t)(c->s[c->i++] - '0');
            if (v > (SIZE_MAX - dgt) / 10) {
                *why = "a dimension overflows size_t";
                return -1;
            }
            v = v * 10 + dgt;
        }
        if (c->i < c->n && c->s[c->i] == 'L') c->i++;
        a->dims[a->ndim++] = v;
        if (npy_eat(c, ')')) return 0;
        if (!npy_eat(c, ',')) return -1;
    }
}

/* One "key: value" member; *seen collects the keys (1 descr, 2 fortran_order, 4 shape). */
static int npy_member(npy_cur *c, nn_npy *a, unsigned *seen, const char *path, nn_err *err) {
    char key[32], descr[32], word[8];
    const char *why = NULL;
    if (npy_str(c, key, sizeof key) || !npy_eat(c, ':'))
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header: expected 'key': value at byte %zu", path, c->i);
    unsigned bit = !strcmp(key, "descr")           ? 1u
                   : !strcmp(key, "fortran_order") ? 2u
                   : !strcmp(key, "shape")         ? 4u
                                                   : 0u;
    if (!bit) return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header: unknown key '%s'", path, key);
    if (*seen & bit) return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header: key '%s' given twice", path, key);
    *seen |= bit;
    if (bit == 1u) {
        if (npy_str(c, descr, sizeof descr))
            return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header: descr is not a dtype string", path);
        a->dtype = !strcmp(descr, "<f4") ? NN_NPY_F32 : !strcmp(descr, "<i4") ? NN_NPY_I32 : 0;
        if (!a->dtype)
            return NN_FAIL(err, NN_E_FORMAT,
                           "%s: dtype '%s' is not supported (only little-endian float32 '<f4' "
                           "and int32 '<i4')",
                           path, descr);
    } else if (bit == 2u) {
        npy_ws(c);
        size_t len = 0;
        while (c->i < c->n && len + 1 < sizeof word && c->s[c->i] >= 'A' && c->s[c->i] <= 'z')
            word[len++] = c->s[c->i++];
        word[len] = '\0';
        if (!strcmp(word, "True"))
            return NN_FAIL(err, NN_E_FORMAT, "%s: fortran_order arrays are not supported (C order only)",
                           path);
        if (strcmp(word, "False"))
            return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header: fortran_order is not True or False", path);
    } else if (npy_shape(c, a, &why)) {
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header: shape: %s", path, why);
    }
    return NN_OK;
}

/* The header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } then padding only. */
static int npy_header(const char *h, size_t len, nn_npy *a, const char *path, nn_err *err) {
    npy_cur c = {h, len, 0};
    unsigned seen = 0;
    if (!npy_eat(&c, '{')) return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header is not a dict", path);
    while (!npy_eat(&c, '}')) {
        int rc = npy_member(&c, a, &seen, path, err);
        if (rc) return rc;
        if (!npy_eat(&c, ',') && !(npy_ws(&c), c.i < c.n && c.s[c.i] == '}'))
            return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header: expected ',' or '}' at byte %zu", path, c.i);
    }
    npy_ws(&c);
    if (c.i != c.n)
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header: text after the dict at byte %zu", path, c.i);
    if (seen != 7u)
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header lacks '%s'", path,
                       !(seen & 1u)   ? "descr"
                       : !(seen & 2u) ? "fortran_order"
                                      : "shape");
    return NN_OK;
}

/* Magic, version and header length; then the header text into *h (malloc'd). */
static int npy_read_header(FILE *f, const char *path, char **h, size_t *len, nn_err *err) {
    unsigned char pre[12];
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return NN_FAIL(err, NN_E_FORMAT, "%s: not a NumPy .npy file (bad magic)", path);
    if ((pre[6] != 1 && pre[6] != 2) || pre[7] != 0)
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy format version %d.%d is not supported (1.0 or 2.0)", path,
                       pre[6], pre[7]);
    size_t nl = pre[6] == 1 ? 2 : 4, hl = 0;
    if (fread(pre + 8, 1, nl, f) != nl)
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy file truncated in its header", path);
    for (size_t i = 0; i < nl; i++)
        hl |= (size_t)pre[8 + i] << (8 * i);
    if (hl == 0 || hl > NPY_MAX_HEADER)
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header length %zu outside 1..%u", path, hl,
                       NPY_MAX_HEADER);
    if (!(*h = malloc(hl))) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
    *len = hl;
    if (fread(*h, 1, hl, f) != hl)
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy file truncated in its header", path);
    if ((*h)[hl - 1] != '\n')
        return NN_FAIL(err, NN_E_FORMAT, "%s: .npy header does not end with a newline", path);
    return NN_OK;
}

/* count and its byte size from the shape, with overflow checks. */
static int npy_size(nn_npy *a, size_t *bytes, const char *path, nn_err *err) {
    a->count = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->dims[i] && a->count > SIZE_MAX / a->dims[i])
            return NN_FAIL(err, NN_E_FORMAT, "%s: .npy shape overflows size_t", path);
        a->count *= a->dims[i];
    }
    if (a->count > SIZE_MAX / 4) return NN_FAIL(err, NN_E_FORMAT, "%s: .npy shape overflows size_t", path);
    *bytes = a->count * 4;
    return NN_OK;
}

int nn_npy_read(const char *path, nn_npy *out, nn_err *err) {
    _Static_assert(sizeof(float) == 4 && sizeof(int32_t) == 4, "float and int32_t must be 4 bytes");
    memset(out, 0, sizeof *out);
    char *h = NULL;
    size_t hl = 0, bytes = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NN_FAIL(err, NN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = npy_read_header(f, path, &h, &hl, err);
    if (!rc) rc = npy_header(h, hl, out, path, err);
    if (!rc) rc = npy_size(out, &bytes, path, err);
    if (!rc && bytes && !(out->data = malloc(bytes)))
        rc = NN_FAIL(err, NN_E_NOMEM, "%s: out of memory for %zu bytes", path, bytes);
    if (!rc) {
        size_t got = bytes ? fread(out->data, 1, bytes, f) : 0;
        if (ferror(f))
            rc = NN_FAIL(err, NN_E_IO, "%s: read error", path);
        else if (got < bytes)
            rc = NN_FAIL(err, NN_E_FORMAT,
                         "%s: truncated: the shape needs %zu bytes of data, the file has %zu", path, bytes,
                         got);
        else if (fgetc(f) != EOF)
            rc = NN_FAIL(err, NN_E_FORMAT, "%s: unexpected bytes after the %zu bytes of data", path, bytes);
    }
    free(h);
    fclose(f);
    if (rc) nn_npy_free(out);
    return rc;
}

void nn_npy_free(nn_npy *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
