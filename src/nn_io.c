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
