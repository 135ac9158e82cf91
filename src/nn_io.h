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

#endif
