/* exp_json.c - JSON writer over nn_jbuf: comma/indent bookkeeping, escaping with UTF-8 repair. */
#include "exp_json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void exp_json_init(exp_json *j) {
    memset(j, 0, sizeof *j);
}

void exp_json_free(exp_json *j) {
    nn_jbuf_free(&j->b);
    memset(j, 0, sizeof *j);
}

static void put(exp_json *j, const char *s, size_t n) {
    if (j->failed) return;
    nn_jbuf_printf(&j->b, "%.*s", (int)n, s);
    if (j->b.oom) j->failed = NN_E_NOMEM;
}

static void puts_(exp_json *j, const char *s) {
    put(j, s, strlen(s));
}

static void newline_indent(exp_json *j, int depth) {
    put(j, "\n", 1);
    for (int i = 0; i < depth; i++)
        put(j, "  ", 2);
}

/* Separator and indentation before a value (or a key, inside an object). */
static void before_item(exp_json *j, int is_key) {
    if (j->failed) return;
    if (j->depth == 0) {
        if (j->has_item[0]) j->failed = NN_E_INVAL; /* a second top-level value */
        j->has_item[0] = 1;
        return;
    }
    int d = j->depth;
    if (d < 0 || d >= EXP_JSON_MAX_DEPTH) return; /* cannot happen (open_ stops before); for the compiler */
    if (j->in_object[d] && !is_key) {             /* a value inside an object must follow its key */
        if (!j->want_value) j->failed = NN_E_INVAL;
        j->want_value = 0;
        return;
    }
    if (is_key && (!j->in_object[d] || j->want_value)) {
        j->failed = NN_E_INVAL;
        return;
    }
    if (j->has_item[d]) put(j, j->in_object[d] ? "," : ", ", j->in_object[d] ? 1 : 2);
    if (j->in_object[d]) newline_indent(j, d);
    j->has_item[d] = 1;
}

static void open_(exp_json *j, int object) {
    before_item(j, 0);
    if (j->failed) return;
    if (j->depth + 1 >= EXP_JSON_MAX_DEPTH) {
        j->failed = NN_E_INVAL;
        return;
    }
    put(j, object ? "{" : "[", 1);
    j->depth++;
    j->in_object[j->depth] = (unsigned char)object;
    j->has_item[j->depth] = 0;
}

static void close_(exp_json *j, int object) {
    if (j->failed) return;
    if (j->depth == 0 || j->in_object[j->depth] != object || j->want_value) {
        j->failed = NN_E_INVAL;
        return;
    }
    int had = j->has_item[j->depth];
    j->depth--;
    if (object && had) newline_indent(j, j->depth);
    put(j, object ? "}" : "]", 1);
}

void exp_json_object_begin(exp_json *j) {
    open_(j, 1);
}
void exp_json_object_end(exp_json *j) {
    close_(j, 1);
}
void exp_json_array_begin(exp_json *j) {
    open_(j, 0);
}
void exp_json_array_end(exp_json *j) {
    close_(j, 0);
}

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if the bytes there are not one
 * (bad lead byte, missing continuation, overlong form, surrogate, above U+10FFFF). */
/* A JSON string: escapes, invalid UTF-8 replaced by U+FFFD (nn_jbuf_str). */
static void escaped(exp_json *j, const char *str) {
    if (j->failed) return;
    nn_jbuf_str(&j->b, str);
    if (j->b.oom) j->failed = NN_E_NOMEM;
}

void exp_json_key(exp_json *j, const char *key) {
    before_item(j, 1);
    escaped(j, key ? key : "");
    put(j, ": ", 2);
    j->want_value = 1;
}

void exp_json_string(exp_json *j, const char *s) {
    if (!s) {
        exp_json_null(j);
        return;
    }
    before_item(j, 0);
    escaped(j, s);
}

void exp_json_number(exp_json *j, double v) {
    if (!isfinite(v)) {
        exp_json_null(j);
        return;
    }
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.9g", v);
    before_item(j, 0);
    puts_(j, tmp);
}

void exp_json_uint(exp_json *j, unsigned long long v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%llu", v);
    before_item(j, 0);
    puts_(j, tmp);
}

void exp_json_int(exp_json *j, long long v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v);
    before_item(j, 0);
    puts_(j, tmp);
}

void exp_json_bool(exp_json *j, int v) {
    before_item(j, 0);
    puts_(j, v ? "true" : "false");
}

void exp_json_null(exp_json *j) {
    before_item(j, 0);
    puts_(j, "null");
}

void exp_json_kv_string(exp_json *j, const char *key, const char *s) {
    exp_json_key(j, key);
    exp_json_string(j, s);
}

void exp_json_kv_number(exp_json *j, const char *key, double v) {
    exp_json_key(j, key);
    exp_json_number(j, v);
}

void exp_json_kv_uint(exp_json *j, const char *key, unsigned long long v) {
    exp_json_key(j, key);
    exp_json_uint(j, v);
}

int exp_json_finish(exp_json *j, nn_err *err) {
    if (!j->failed && (j->depth != 0 || !j->has_item[0] || j->want_value)) j->failed = NN_E_INVAL;
    if (!j->failed) put(j, "\n", 1);
    if (j->failed == NN_E_NOMEM) return NN_FAIL(err, NN_E_NOMEM, "JSON writer: out of memory");
    if (j->failed)
        return NN_FAIL(err, j->failed, "JSON writer: unbalanced or misplaced value (internal error)");
    return NN_OK;
}
