/* exp_json.h - a small JSON writer into a growable buffer (metrics.json and other reports).
 *
 * Usage: exp_json j; exp_json_init(&j); exp_json_object_begin(&j); exp_json_key(&j, "acc");
 * exp_json_number(&j, 0.98); exp_json_object_end(&j); exp_json_finish(&j, err) -> j.b.p; exp_json_free(&j).
 * Objects are written one member per line (2-space indent), arrays on one line. Strings are escaped
 * (quote, backslash, control characters; invalid UTF-8 bytes become U+FFFD) so the output is always
 * valid JSON. Numbers use %.9g; NaN and +-Inf become null. Errors (out of memory, misuse such as a value
 * without a key inside an object or too deep nesting) are sticky and reported by exp_json_finish.
 * Not thread-safe; one writer per caller. */
#ifndef EXP_JSON_H
#define EXP_JSON_H

#include <stddef.h>

#include "nn_err.h"
#include "nn_json.h"

#define EXP_JSON_MAX_DEPTH 32

typedef struct exp_json {
    nn_jbuf b; /* the text so far (b.p, b.len), owned */
    int depth;
    unsigned char in_object[EXP_JSON_MAX_DEPTH]; /* the container at each level is an object */
    unsigned char has_item[EXP_JSON_MAX_DEPTH];  /* something was written at this level already */
    int want_value;                              /* a key was written, its value comes next */
    int failed;                                  /* 0, or the NN_E_* code of the first error */
} exp_json;

void exp_json_init(exp_json *j);
/* Frees the text; the writer can be initialised again. */
void exp_json_free(exp_json *j);

void exp_json_object_begin(exp_json *j);
void exp_json_object_end(exp_json *j);
void exp_json_array_begin(exp_json *j);
void exp_json_array_end(exp_json *j);
/* A member name inside an object; the next call must write its value. */
void exp_json_key(exp_json *j, const char *key);

void exp_json_string(exp_json *j, const char *s); /* NULL writes null */
void exp_json_number(exp_json *j, double v);      /* %.9g; non-finite -> null */
void exp_json_uint(exp_json *j, unsigned long long v);
void exp_json_int(exp_json *j, long long v);
void exp_json_bool(exp_json *j, int v);
void exp_json_null(exp_json *j);

/* key + value in one call, for objects. */
void exp_json_kv_string(exp_json *j, const char *key, const char *s);
void exp_json_kv_number(exp_json *j, const char *key, double v);
void exp_json_kv_uint(exp_json *j, const char *key, unsigned long long v);

/* Ends the document (adds a final newline). NN_OK when the document is complete and nothing failed;
 * otherwise the recorded code with a message. j->b.p / j->b.len then hold the text. */
int exp_json_finish(exp_json *j, nn_err *err);

#endif
