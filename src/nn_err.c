/* nn_err.c - error records. */
#include "nn_err.h"

#include <stdarg.h>
#include <stdio.h>

int nn_err_set(nn_err *err, int code, const char *file, int line, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    err->file = file;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void nn_err_clear(nn_err *err) {
    if (!err) return;
    err->code = NN_OK;
    err->msg[0] = '\0';
    err->file = NULL;
    err->line = 0;
}

const char *nn_err_name(int code) {
    switch (code) {
    case NN_OK: return "ok";
    case NN_E_NOMEM: return "out of memory";
    case NN_E_IO: return "i/o error";
    case NN_E_FORMAT: return "format error";
    case NN_E_INVAL: return "invalid value";
    case NN_E_SHAPE: return "shape mismatch";
    case NN_E_NUMERIC: return "numeric error";
    case NN_E_CHECKSUM: return "checksum mismatch";
    default: return "unknown error";
    }
}
