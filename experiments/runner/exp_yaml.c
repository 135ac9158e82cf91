/* exp_yaml.c - libyaml documents, strict scalar conversions, field tables (see exp_yaml.h). */
#include "exp_yaml.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- document ---- */

static int vfail_at(const exp_yaml *y, size_t line, size_t col, const char *key, int code, nn_err *err,
                    const char *fmt, va_list ap) {
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const char *path = y && y->path ? y->path : "<string>";
    if (key && *key) return NN_FAIL(err, code, "%s:%zu:%zu: %s: %s", path, line, col, key, msg);
    return NN_FAIL(err, code, "%s:%zu:%zu: %s", path, line, col, msg);
}

static int fail_at(const exp_yaml *y, size_t line, size_t col, int code, nn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int fail_at(const exp_yaml *y, size_t line, size_t col, int code, nn_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(y, line, col, NULL, code, err, fmt, ap);
    va_end(ap);
    return rc;
}

int exp_yaml_fail(const exp_yaml *y, const yaml_node_t *at, const char *key, int code, nn_err *err,
                  const char *fmt, ...) {
    size_t line = at ? at->start_mark.line + 1 : 1, col = at ? at->start_mark.column + 1 : 1;
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(y, line, col, key, code, err, fmt, ap);
    va_end(ap);
    return rc;
}

/* Turns a libyaml parser error into "<path>:<line>:<col>: syntax error: ...". */
static int parser_fail(const exp_yaml *y, const yaml_parser_t *p, const char *text, size_t len, nn_err *err) {
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR) return fail_at(y, 1, 1, NN_E_NOMEM, err, "out of memory parsing YAML");
    if (p->error == YAML_READER_ERROR) { /* only a byte offset is known: count lines and columns ourselves */
        size_t line = 1, col = 1, end = p->problem_offset < len ? p->problem_offset : len;
        for (size_t i = 0; i < end; i++) {
            if (text[i] == '\n')
                line++, col = 1;
            else if (((unsigned char)text[i] & 0xC0u) != 0x80u)
                col++;
        }
        return fail_at(y, line, col, NN_E_FORMAT, err, "invalid input: %s", problem);
    }
    size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
    if (p->context)
        return fail_at(y, line, col, NN_E_FORMAT, err, "syntax error: %s (%s at %zu:%zu)", problem,
                       p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    return fail_at(y, line, col, NN_E_FORMAT, err, "syntax error: %s", problem);
}

int exp_yaml_load(exp_yaml *y, const char *text, size_t len, const char *path, nn_err *err) {
    memset(y, 0, sizeof *y);
    y->path = path ? path : "<string>";
    if (!text) text = "", len = 0;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", y->path);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = NN_OK;
    if (!yaml_parser_load(&p, &y->doc)) {
        rc = parser_fail(y, &p, text, len, err);
        goto fail;
    }
    y->loaded = 1;
    if (!yaml_document_get_root_node(&y->doc)) {
        rc = fail_at(y, 1, 1, NN_E_FORMAT, err, "empty file: expected a YAML mapping");
        goto fail;
    }
    yaml_document_t extra;
    if (!yaml_parser_load(&p, &extra)) {
        rc = parser_fail(y, &p, text, len, err);
        goto fail;
    }
    int more = yaml_document_get_root_node(&extra) != NULL;
    yaml_mark_t m = extra.start_mark;
    yaml_document_delete(&extra);
    if (more) {
        rc = fail_at(y, m.line + 1, m.column + 1, NN_E_FORMAT, err,
                     "a second YAML document (only one allowed)");
        goto fail;
    }
    yaml_parser_delete(&p);
    return NN_OK;
fail:
    yaml_parser_delete(&p);
    exp_yaml_free(y);
    return rc;
}

void exp_yaml_free(exp_yaml *y) {
    if (!y || !y->loaded) return;
    yaml_document_delete(&y->doc);
    y->loaded = 0;
}

yaml_node_t *exp_yaml_root(exp_yaml *y) {
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

yaml_node_t *exp_yaml_node(exp_yaml *y, int id) {
    return y->loaded ? yaml_document_get_node(&y->doc, id) : NULL;
}

static int scalar_is(const yaml_node_t *n, const char *s) {
    size_t len = strlen(s);
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
           memcmp(n->data.scalar.value, s, len) == 0;
}

yaml_node_t *exp_yaml_map_get(exp_yaml *y, yaml_node_t *map, const char *key, yaml_node_t **key_node) {
    if (key_node) *key_node = NULL;
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = exp_yaml_node(y, p->key);
        if (scalar_is(k, key)) {
            if (key_node) *key_node = k;
            return exp_yaml_node(y, p->value);
        }
    }
    return NULL;
}

int exp_yaml_is_null(const yaml_node_t *n) {
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

const char *exp_yaml_kind(const yaml_node_t *n) {
    if (!n) return "nothing";
    if (n->type == YAML_MAPPING_NODE) return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE) return "a list";
    return exp_yaml_is_null(n) ? "null" : "a scalar";
}

char *exp_yaml_key(char *buf, size_t cap, const char *prefix, const char *name) {
    snprintf(buf, cap, "%s%s%s", prefix ? prefix : "", prefix && *prefix ? "." : "", name);
    return buf;
}

/* What a node is, for "got ...": 'text' (quoted, shortened, non-printables as '?') for scalars. */
static const char *describe(const yaml_node_t *n, char *buf, size_t cap) {
    if (!n || n->type != YAML_SCALAR_NODE || exp_yaml_is_null(n)) {
        snprintf(buf, cap, "%s",
                 n && n->type == YAML_SCALAR_NODE && !n->data.scalar.length ? "nothing" : exp_yaml_kind(n));
        return buf;
    }
    char v[48];
    size_t len = n->data.scalar.length, shown = len < 40 ? len : 40;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = n->data.scalar.value[i];
        v[i] = c >= 0x20 && c != 0x7f ? (char)c : '?';
    }
    v[shown] = '\0';
    snprintf(buf, cap, "%s'%s%s'",
             n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? "" : "the quoted string ", v,
             shown < len ? "..." : "");
    return buf;
}

/* ---- scalar conversions ---- */

/* The text of a plain, non-null scalar without NUL bytes, or NULL. */
static const char *plain_text(const yaml_node_t *n) {
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return NULL;
    if (exp_yaml_is_null(n)) return NULL;
    const char *s = (const char *)n->data.scalar.value;
    return strlen(s) == n->data.scalar.length ? s : NULL;
}

/* Unsigned decimal integer <= max; `expect` names what was wanted in the message. */
static int get_uint(const exp_yaml *y, const yaml_node_t *n, const char *key, uint64_t max,
                    const char *expect, uint64_t *out, nn_err *err) {
    char d[80];
    const char *s = plain_text(n);
    int ok = s && s[0] >= '0' && s[0] <= '9' && !(s[0] == '0' && s[1] != '\0');
    for (const char *c = s; ok && *c; c++)
        ok = *c >= '0' && *c <= '9';
    if (!ok)
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "expected %s, got %s", expect,
                             describe(n, d, sizeof d));
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v > max)
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "expected %s <= %llu, got %s", expect,
                             (unsigned long long)max, describe(n, d, sizeof d));
    *out = (uint64_t)v;
    return NN_OK;
}

int exp_yaml_get_u64(const exp_yaml *y, const yaml_node_t *n, const char *key, uint64_t *out, nn_err *err) {
    return get_uint(y, n, key, UINT64_MAX, "a non-negative integer", out, err);
}

int exp_yaml_get_size(const exp_yaml *y, const yaml_node_t *n, const char *key, size_t *out, nn_err *err) {
    uint64_t v;
    int rc = get_uint(y, n, key, SIZE_MAX, "a non-negative integer", &v, err);
    if (!rc) *out = (size_t)v;
    return rc;
}

int exp_yaml_get_int(const exp_yaml *y, const yaml_node_t *n, const char *key, int *out, nn_err *err) {
    uint64_t v;
    int rc = get_uint(y, n, key, INT_MAX, "a non-negative integer", &v, err);
    if (!rc) *out = (int)v;
    return rc;
}

int exp_yaml_get_double(const exp_yaml *y, const yaml_node_t *n, const char *key, double *out, nn_err *err) {
    char d[80];
    const char *s = plain_text(n);
    char *end = NULL;
    double v = 0;
    int ok = s && !strpbrk(s, "xX"); /* no hexadecimal floats */
    if (ok) v = strtod(s, &end);
    if (!ok || end == s || *end != '\0' || !isfinite(v))
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "expected a finite number, got %s",
                             describe(n, d, sizeof d));
    *out = v;
    return NN_OK;
}

int exp_yaml_get_float(const exp_yaml *y, const yaml_node_t *n, const char *key, float *out, nn_err *err) {
    double v = 0;
    int rc = exp_yaml_get_double(y, n, key, &v, err);
    if (rc) return rc;
    if (fabs(v) > FLT_MAX) {
        char d[80];
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "expected a number within float range, got %s",
                             describe(n, d, sizeof d));
    }
    *out = (float)v;
    return NN_OK;
}

int exp_yaml_get_bool(const exp_yaml *y, const yaml_node_t *n, const char *key, int *out, nn_err *err) {
    const char *s = plain_text(n);
    if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes"))) return *out = 1, NN_OK;
    if (s && (!strcasecmp(s, "false") || !strcasecmp(s, "no"))) return *out = 0, NN_OK;
    char d[80];
    return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "expected true or false, got %s",
                         describe(n, d, sizeof d));
}

int exp_yaml_get_str(const exp_yaml *y, const yaml_node_t *n, const char *key, char *buf, size_t cap,
                     nn_err *err) {
    char d[80];
    if (!n || n->type != YAML_SCALAR_NODE || exp_yaml_is_null(n))
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "expected a string, got %s",
                             describe(n, d, sizeof d));
    size_t len = n->data.scalar.length;
    if (memchr(n->data.scalar.value, '\0', len))
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "a string must not contain NUL characters");
    if (len >= cap)
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "too long (at most %zu bytes), got %s", cap - 1,
                             describe(n, d, sizeof d));
    memcpy(buf, n->data.scalar.value, len);
    buf[len] = '\0';
    return NN_OK;
}

/* ---- field tables ---- */

/* "a, b, c" of the keys accepted under mask (shortened with "..." if it does not fit). */
static void list_keys(const exp_table *t, unsigned mask, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < t->n; i++) {
        const exp_field *f = &t->fields[i];
        if (f->bit && !(mask & f->bit)) continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", f->key);
        if (w < 0 || (size_t)w >= cap - used) {
            if (cap > 4) strcpy(buf + cap - 4, "...");
            return;
        }
        used += (size_t)w;
    }
}

static int check_range(const exp_yaml *y, const yaml_node_t *n, const char *key, const exp_range *r, double v,
                       nn_err *err) {
    unsigned f = r->flags;
    int lo_bad = (f & EXP_R_LO) && ((f & EXP_R_LO_EXCL) ? !(v > r->lo) : !(v >= r->lo));
    int hi_bad = (f & EXP_R_HI) && ((f & EXP_R_HI_EXCL) ? !(v < r->hi) : !(v <= r->hi));
    if (!lo_bad && !hi_bad) return NN_OK;
    if ((f & EXP_R_LO) && (f & EXP_R_HI))
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "must be in %c%g, %g%c, got %g",
                             (f & EXP_R_LO_EXCL) ? '(' : '[', r->lo, r->hi, (f & EXP_R_HI_EXCL) ? ')' : ']',
                             v);
    if (lo_bad)
        return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "must be %s %g, got %g",
                             (f & EXP_R_LO_EXCL) ? ">" : ">=", r->lo, v);
    return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "must be %s %g, got %g",
                         (f & EXP_R_HI_EXCL) ? "<" : "<=", r->hi, v);
}

static int set_enum(const exp_yaml *y, const yaml_node_t *n, const char *key, const exp_choice *c, int *out,
                    nn_err *err) {
    const char *s = plain_text(n);
    if (!s && n && n->type == YAML_SCALAR_NODE && !exp_yaml_is_null(n))
        s = (const char *)n->data.scalar.value;
    for (size_t i = 0; s && c[i].name; i++)
        if (strcmp(s, c[i].name) == 0) return *out = c[i].value, NN_OK;
    char names[200] = "", d[80];
    for (size_t i = 0, used = 0; c[i].name && used < sizeof names - 1; i++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", c[i].name);
    return exp_yaml_fail(y, n, key, NN_E_INVAL, err, "expected one of: %s; got %s", names,
                         describe(n, d, sizeof d));
}

/* Numeric fields: converts, range-checks and stores into dst. */
static int set_number(const exp_yaml *y, const exp_field *f, const yaml_node_t *v, const char *key, char *dst,
                      nn_err *err) {
    const exp_range *r = &f->range;
    int positive = (r->flags & EXP_R_LO) && (r->lo >= 1 || (r->lo >= 0 && (r->flags & EXP_R_LO_EXCL)));
    const char *expect = positive ? "a positive integer" : "a non-negative integer";
    uint64_t u = 0;
    double x = 0;
    float fl = 0;
    int rc = NN_OK;
    switch (f->type) {
    case EXP_F_SIZE:
        rc = get_uint(y, v, key, SIZE_MAX, expect, &u, err);
        break;
    case EXP_F_U64:
        rc = get_uint(y, v, key, UINT64_MAX, expect, &u, err);
        break;
    case EXP_F_INT:
        rc = get_uint(y, v, key, INT_MAX, expect, &u, err);
        break;
    case EXP_F_FLOAT:
        rc = exp_yaml_get_float(y, v, key, &fl, err), x = fl;
        break;
    default:
        rc = exp_yaml_get_double(y, v, key, &x, err);
        break;
    }
    if (rc) return rc;
    int is_int = f->type == EXP_F_SIZE || f->type == EXP_F_U64 || f->type == EXP_F_INT;
    rc = check_range(y, v, key, r, is_int ? (double)u : x, err);
    if (rc) return rc;
    size_t sz = (size_t)u;
    int i = (int)u;
    switch (f->type) {
    case EXP_F_SIZE:
        memcpy(dst, &sz, sizeof sz);
        break;
    case EXP_F_U64:
        memcpy(dst, &u, sizeof u);
        break;
    case EXP_F_INT:
        memcpy(dst, &i, sizeof i);
        break;
    case EXP_F_FLOAT:
        memcpy(dst, &fl, sizeof fl);
        break;
    default:
        memcpy(dst, &x, sizeof x);
        break;
    }
    return NN_OK;
}

/* Converts value node v for field f and stores it into base + f->offset. */
static int set_field(exp_yaml *y, const exp_field *f, yaml_node_t *v, const char *key, void *base,
                     nn_err *err) {
    char *dst = (char *)base + f->offset;
    int b = 0, rc;
    switch (f->type) {
    case EXP_F_BOOL:
        rc = exp_yaml_get_bool(y, v, key, &b, err);
        if (!rc) memcpy(dst, &b, sizeof b);
        return rc;
    case EXP_F_ENUM:
        rc = set_enum(y, v, key, f->choices, &b, err);
        if (!rc) memcpy(dst, &b, sizeof b);
        return rc;
    case EXP_F_STRING:
        return exp_yaml_get_str(y, v, key, dst, f->size, err);
    case EXP_F_MAP:
        return exp_yaml_apply(y, v, key, f->sub, EXP_ALL_FIELDS, NULL, dst, err);
    case EXP_F_CUSTOM:
        return f->set(y, v, key, base, err);
    case EXP_F_SKIP:
        return NN_OK;
    default:
        return set_number(y, f, v, key, dst, err);
    }
}

static const exp_field *find_field(const exp_table *t, const yaml_node_t *k) {
    for (size_t i = 0; i < t->n; i++)
        if (scalar_is(k, t->fields[i].key)) return &t->fields[i];
    return NULL;
}

/* Checks one key node: a scalar, not seen before in the mapping, known and accepted under mask. */
static int check_key(exp_yaml *y, yaml_node_t *map, yaml_node_pair_t *pair, const char *prefix,
                     const exp_table *t, unsigned mask, const char *what, const exp_field **out,
                     nn_err *err) {
    char key[256], list[300], d[80];
    yaml_node_t *k = exp_yaml_node(y, pair->key);
    if (!k || k->type != YAML_SCALAR_NODE || exp_yaml_is_null(k))
        return exp_yaml_fail(y, k ? k : map, prefix, NN_E_INVAL, err, "expected a plain key, got %s",
                             describe(k, d, sizeof d));
    exp_yaml_key(key, sizeof key, prefix, (const char *)k->data.scalar.value);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
        yaml_node_t *pk = exp_yaml_node(y, p->key);
        if (pk && pk->type == YAML_SCALAR_NODE && pk->data.scalar.length == k->data.scalar.length &&
            memcmp(pk->data.scalar.value, k->data.scalar.value, k->data.scalar.length) == 0)
            return exp_yaml_fail(y, k, key, NN_E_INVAL, err, "duplicate key (first given at %zu:%zu)",
                                 pk->start_mark.line + 1, pk->start_mark.column + 1);
    }
    const exp_field *f = find_field(t, k);
    list_keys(t, mask, list, sizeof list);
    if (!f) return exp_yaml_fail(y, k, key, NN_E_INVAL, err, "unknown key (expected one of: %s)", list);
    if (f->bit && !(mask & f->bit))
        return exp_yaml_fail(y, k, key, NN_E_INVAL, err, "not accepted by %s (it accepts: %s)",
                             what ? what : "this mapping", list);
    *out = f;
    return NN_OK;
}

int exp_yaml_apply(exp_yaml *y, yaml_node_t *map, const char *key, const exp_table *t, unsigned mask,
                   const char *what, void *base, nn_err *err) {
    char sub[256], d[80];
    if (!map || map->type != YAML_MAPPING_NODE)
        return exp_yaml_fail(y, map, key, NN_E_INVAL, err, "expected a mapping, got %s",
                             describe(map, d, sizeof d));
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const exp_field *f = NULL;
        int rc = check_key(y, map, p, key, t, mask, what, &f, err);
        if (rc) return rc;
        rc = set_field(y, f, exp_yaml_node(y, p->value), exp_yaml_key(sub, sizeof sub, key, f->key), base,
                       err);
        if (rc) return rc;
    }
    for (size_t i = 0; i < t->n; i++) {
        const exp_field *f = &t->fields[i];
        if (!(f->flags & EXP_REQUIRED) || (f->bit && !(mask & f->bit))) continue;
        if (!exp_yaml_map_get(y, map, f->key, NULL))
            return exp_yaml_fail(y, map, exp_yaml_key(sub, sizeof sub, key, f->key), NN_E_INVAL, err,
                                 "required");
    }
    return NN_OK;
}
