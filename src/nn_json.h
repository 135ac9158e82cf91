/* nn_json.h - a small, strict JSON (RFC 8259) reader, plus a growing text buffer for writing JSON.
 *
 * Used for the safetensors header and the temper.arch metadata. The whole text is parsed into a flat
 * array of values in document order (a container's first child directly follows it, siblings are linked
 * by index). Strict: no comments, no trailing commas, no leading zeros, no NaN/Infinity, no duplicate
 * object keys, no raw control characters, valid UTF-8 and escapes only, \u0000 rejected (strings are C
 * strings), at most NN_JSON_MAX_DEPTH nested containers and NN_JSON_MAX_LEN bytes. Errors name the byte
 * offset: "JSON byte 12: expected ',' or ']'". Not thread-safe per document; no global state. */
#ifndef NN_JSON_H
#define NN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "nn_err.h"

#define NN_JSON_MAX_DEPTH 64
#define NN_JSON_MAX_LEN ((size_t)100 << 20) /* 100 MiB, the safetensors header limit */
#define NN_JSON_NONE ((size_t)-1)

enum { NN_JSON_NULL = 0, NN_JSON_BOOL, NN_JSON_NUMBER, NN_JSON_STRING, NN_JSON_ARRAY, NN_JSON_OBJECT };

typedef struct nn_json_val {
    int type;        /* NN_JSON_* */
    size_t offset;   /* byte offset of the value in the parsed text */
    const char *key; /* member name when the parent is an object, else NULL */
    size_t key_len;
    int boolean;     /* BOOL */
    double num;      /* NUMBER (strtod of the literal) */
    int is_uint;     /* NUMBER: a non-negative integer literal (no fraction/exponent) that fits uint64 */
    uint64_t u;      /* NUMBER: the exact value when is_uint */
    const char *str; /* STRING: decoded UTF-8, NUL-terminated */
    size_t str_len;
    size_t n;    /* ARRAY/OBJECT: number of children */
    size_t next; /* index of the next sibling, NN_JSON_NONE for the last */
} nn_json_val;

typedef struct nn_json {
    nn_json_val *v; /* v[0] is the root */
    size_t n_vals, cap;
    char *pool; /* decoded strings and keys */
} nn_json;

/* Parses text[0..len) (need not be NUL-terminated) into doc, which the caller frees with nn_json_free
 * (also after a failure). Errors: NN_E_FORMAT with "JSON byte <offset>: <problem>", NN_E_NOMEM. */
int nn_json_parse(nn_json *doc, const char *text, size_t len, nn_err *err);
/* Releases doc's memory and zeroes it. NULL is a no-op. */
void nn_json_free(nn_json *doc);

/* The root value (NULL if doc holds none). */
const nn_json_val *nn_json_root(const nn_json *doc);
/* First child of an array/object, or NULL. */
const nn_json_val *nn_json_first(const nn_json *doc, const nn_json_val *v);
/* Next sibling, or NULL. */
const nn_json_val *nn_json_next(const nn_json *doc, const nn_json_val *v);
/* Member of object obj named key, or NULL (also NULL if obj is not an object). */
const nn_json_val *nn_json_get(const nn_json *doc, const nn_json_val *obj, const char *key);
/* Element i of array arr (O(i)), or NULL. */
const nn_json_val *nn_json_at(const nn_json *doc, const nn_json_val *arr, size_t i);
/* "null", "boolean", "number", "string", "array", "object". */
const char *nn_json_type_name(int type);

/* A growing NUL-terminated text buffer for writing JSON. Start zeroed ({0}). After an allocation
 * failure every further call is a no-op and `oom` stays set: check it once at the end. */
typedef struct nn_jbuf {
    char *p;
    size_t len, cap;
    int oom;
} nn_jbuf;

void nn_jbuf_puts(nn_jbuf *b, const char *s);
void nn_jbuf_printf(nn_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted JSON string, escaping '"', '\\' and control characters. */
void nn_jbuf_str(nn_jbuf *b, const char *s);
void nn_jbuf_free(nn_jbuf *b);

/* 1 if s[0..len) is valid UTF-8 (what the reader accepts in strings), else 0. */
int nn_json_utf8_valid(const char *s, size_t len);

#endif
