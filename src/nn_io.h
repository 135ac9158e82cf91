/* nn_io.h - small file helpers shared by the model writer and the runner. */
#ifndef NN_IO_H
#define NN_IO_H

#include <stddef.h>

#include "nn_err.h"

/* Writes len bytes to path atomically: <path>.tmp.<pid>, fwrite, fflush, fsync, rename. On failure
 * the temporary file is removed and any existing file at path is left untouched. */
int nn_io_write_atomic(const char *path, const void *data, size_t len, nn_err *err);

/* Same, from several pieces written one after another (e.g. a header then tensor data). */
int nn_io_write_atomic_v(const char *path, const void *const *parts, const size_t *lens, size_t n_parts,
                         nn_err *err);

/* Reads a whole file into a malloc'ed buffer (NUL-terminated for convenience; *len excludes it). */
int nn_io_read_all(const char *path, char **data, size_t *len, nn_err *err);

/* Writes a float32 .npy (NumPy format 1.0) with the given shape (ndim <= 4), atomically. */
int nn_npy_write_f32(const char *path, const float *data, int ndim, const size_t *dims, nn_err *err);
/* Writes an int32 .npy, atomically. */
int nn_npy_write_i32(const char *path, const int *data, int ndim, const size_t *dims, nn_err *err);

/* ---- .npy input ---- */

#define NN_NPY_MAX_DIMS 8

enum { NN_NPY_F32 = 1, NN_NPY_I32 = 2 };

/* A NumPy array read by nn_npy_read. data holds count elements of dtype (float for NN_NPY_F32, int32_t
 * for NN_NPY_I32) in C order; count = the product of dims[0..ndim) (1 for ndim 0). */
typedef struct nn_npy {
    int dtype; /* NN_NPY_F32 | NN_NPY_I32 */
    int ndim;  /* 0..NN_NPY_MAX_DIMS */
    size_t dims[NN_NPY_MAX_DIMS];
    size_t count;
    void *data; /* malloc'd, owned; NULL when count == 0 */
} nn_npy;

/* Reads a .npy file (format 1.0 or 2.0) holding a little-endian float32 ('<f4') or int32 ('<i4') array in
 * C order into out (zeroed first; free with nn_npy_free, also after a failure). Errors name the file:
 * NN_E_IO (cannot open, read error), NN_E_FORMAT (not NumPy, another version, a malformed or unterminated
 * header, a missing or unknown key, fortran_order True, any other dtype, more than NN_NPY_MAX_DIMS
 * dimensions, a size overflow, data shorter or longer than the shape says), NN_E_NOMEM. Assumes a
 * little-endian host, as the writers above. Thread-safe (no shared state). */
int nn_npy_read(const char *path, nn_npy *out, nn_err *err);
/* Frees a's data and zeroes it. NULL is a no-op. */
void nn_npy_free(nn_npy *a);

#endif
