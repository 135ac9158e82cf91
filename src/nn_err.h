/* nn_err.h - status codes and the error record every fallible call fills.
 *
 * Convention: a fallible function returns int (NN_OK == 0 on success) and takes `nn_err *err` last.
 * On failure it records code, message, and source location with NN_FAIL and returns the code.
 * `err` may be NULL (the message is then dropped, the code still returned). */
#ifndef NN_ERR_H
#define NN_ERR_H

#include <stddef.h>

enum {
    NN_OK = 0,
    NN_E_NOMEM,   /* allocation failed */
    NN_E_IO,      /* open/read/write/rename failed */
    NN_E_FORMAT,  /* a file's contents are malformed, truncated, inconsistent or foreign */
    NN_E_INVAL,   /* an argument or configuration value is out of range */
    NN_E_SHAPE,   /* tensor shapes do not fit together */
    NN_E_NUMERIC, /* NaN/Inf appeared where it must not */
    NN_E_CHECKSUM /* a data file's sha256 differs from the pinned one */
};

typedef struct nn_err {
    int code;
    char msg[512];
    const char *file; /* source file that recorded the error */
    int line;
} nn_err;

/* Records code and a printf-style message into err (if non-NULL). Returns code. */
int nn_err_set(nn_err *err, int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Clears err (code NN_OK, empty message). NULL is a no-op. */
void nn_err_clear(nn_err *err);

/* Short name of a code, e.g. "format error". */
const char *nn_err_name(int code);

/* Record and evaluate to the code: `return NN_FAIL(err, NN_E_INVAL, "batch %zu > max %zu", n, m);` */
#define NN_FAIL(err, code, ...) nn_err_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

#endif
