/* nn_json.c - strict recursive-descent JSON reader and a small JSON text writer. */
#include "nn_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jp {
    const unsigned char *s;
    size_t len, pos;
    nn_json *doc;
    size_t pool_len;
    nn_err *err;
} jp;

static int jp_fail(jp *p, size_t off, const char *what) {
    return NN_FAIL(p->err, NN_E_FORMAT, "JSON byte %zu: %s", off, what);
}

static void skip_ws(jp *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Appends a value; its index goes to *idx. Pointers into doc->v are invalidated. */
static int new_val(jp *p, int type, size_t *idx) {
    nn_json *d = p->doc;
    if (d->n_vals == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        nn_json_val *nv = realloc(d->v, cap * sizeof *nv);
        if (!nv) return NN_FAIL(p->err, NN_E_NOMEM, "JSON: out of memory");
        d->v = nv;
        d->cap = cap;
    }
    nn_json_val *v = &d->v[d->n_vals];
    memset(v, 0, sizeof *v);
    v->type = type;
    v->offset = p->pos;
    v->next = NN_JSON_NONE;
    *idx = d->n_vals++;
    return NN_OK;
}

/* Length of the valid UTF-8 sequence at s (avail bytes), or 0 if invalid (overlong, surrogate, > U+10FFFF).
 */
static size_t utf8_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (avail < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

int nn_json_utf8_valid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_len(u + i, len - i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

static int hex4(jp *p, size_t at, unsigned *out) {
    if (p->len - at < 4) return jp_fail(p, at, "truncated \\u escape");
    unsigned v = 0;
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = p->s[at + i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10u;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10u;
        else
            return jp_fail(p, at + i, "bad hex digit in \\u escape");
        v = v * 16 + d;
    }
    *out = v;
    return NN_OK;
}

/* Decodes the \u escape at p->pos (pointing at 'u') into UTF-8 at o; advances. */
static int unicode_escape(jp *p, char *o, size_t *w) {
    size_t at = p->pos - 1; /* the backslash */
    unsigned cp, lo;
    int rc = hex4(p, p->pos + 1, &cp);
    if (rc) return rc;
    p->pos += 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return jp_fail(p, at, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return jp_fail(p, at, "high surrogate not followed by a low surrogate");
        if ((rc = hex4(p, p->pos + 2, &lo)) != NN_OK) return rc;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return jp_fail(p, p->pos, "high surrogate not followed by a low surrogate");
        p->pos += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0) return jp_fail(p, at, "\\u0000 is not supported");
    if (cp < 0x80) {
        o[(*w)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*w)++] = (char)(0xC0 | (cp >> 6));
        o[(*w)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*w)++] = (char)(0xE0 | (cp >> 12));
        o[(*w)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*w)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*w)++] = (char)(0xF0 | (cp >> 18));
        o[(*w)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*w)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*w)++] = (char)(0x80 | (cp & 0x3F));
    }
    return NN_OK;
}

/* The character a one-letter escape \c stands for, 0 if c is not one. */
static char escape_char(unsigned char c) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *at = c ? strchr(from, c) : NULL;
    return at ? to[at - from] : 0;
}

/* p->pos at the opening quote. The decoded text (never longer than the literal) goes to the pool. */
static int parse_string(jp *p, const char **out, size_t *out_len) {
    size_t start = p->pos++;
    char *o = p->doc->pool + p->pool_len;
    size_t w = 0;
    for (;;) {
        if (p->pos >= p->len) return jp_fail(p, start, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') break;
        if (c < 0x20) return jp_fail(p, p->pos, "control character in string (must be escaped)");
        if (c >= 0x80) {
            size_t n = utf8_len(p->s + p->pos, p->len - p->pos);
            if (!n) return jp_fail(p, p->pos, "invalid UTF-8 in string");
            memcpy(o + w, p->s + p->pos, n);
            w += n;
            p->pos += n;
            continue;
        }
        p->pos++;
        if (c != '\\') {
            o[w++] = (char)c;
            continue;
        }
        if (p->pos >= p->len) return jp_fail(p, start, "unterminated string");
        c = p->s[p->pos++];
        if (c == 'u') {
            p->pos--;
            int rc = unicode_escape(p, o, &w);
            if (rc) return rc;
            continue;
        }
        char e = escape_char(c);
        if (!e) return jp_fail(p, p->pos - 2, "invalid escape in string");
        o[w++] = e;
    }
    p->pos++; /* closing quote */
    o[w] = '\0';
    p->pool_len += w + 1;
    *out = o;
    *out_len = w;
    return NN_OK;
}

static size_t skip_digits(jp *p) {
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++, n++;
    return n;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(jp *p, nn_json_val *v) {
    size_t start = p->pos;
    int neg = 0, frac = 0;
    if (p->s[p->pos] == '-') p->pos++, neg = 1;
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return jp_fail(p, start, "invalid number");
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            return jp_fail(p, start, "leading zero in number");
    } else {
        skip_digits(p);
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        frac = 1;
        if (!skip_digits(p)) return jp_fail(p, p->pos, "digit expected after '.'");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        frac = 1;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (!skip_digits(p)) return jp_fail(p, p->pos, "digit expected in exponent");
    }
    size_t n = p->pos - start;
    char small[128], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return NN_FAIL(p->err, NN_E_NOMEM, "JSON: out of memory");
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    v->num = strtod(buf, NULL);
    if (buf != small) free(buf);
    if (!isfinite(v->num)) return jp_fail(p, start, "number out of range");
    if (!neg && !frac) {
        uint64_t u = 0;
        int ok = 1;
        for (size_t i = start; i < p->pos; i++) {
            uint64_t d = (uint64_t)(p->s[i] - '0');
            if (u > (UINT64_MAX - d) / 10) ok = 0;
            u = u * 10 + d;
        }
        v->is_uint = ok;
        v->u = ok ? u : 0;
    }
    return NN_OK;
}

static int parse_value(jp *p, int depth, size_t *idx);

/* Rejects duplicate keys among the n members following container index c (O(n log n)). */
static int key_cmp(const void *a, const void *b) {
    const nn_json_val *x = *(const nn_json_val *const *)a, *y = *(const nn_json_val *const *)b;
    return strcmp(x->key, y->key);
}

static int check_dup_keys(jp *p, size_t c) {
    nn_json *d = p->doc;
    size_t n = d->v[c].n;
    if (n < 2) return NN_OK;
    const nn_json_val **m = malloc(n * sizeof *m);
    if (!m) return NN_FAIL(p->err, NN_E_NOMEM, "JSON: out of memory");
    size_t k = 0;
    for (size_t i = c + 1; i != NN_JSON_NONE; i = d->v[i].next)
        m[k++] = &d->v[i];
    qsort(m, n, sizeof *m, key_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(m[i - 1]->key, m[i]->key) == 0) {
            size_t off = m[i - 1]->offset > m[i]->offset ? m[i - 1]->offset : m[i]->offset;
            char what[128];
            snprintf(what, sizeof what, "duplicate key \"%.80s\"", m[i]->key);
            free(m);
            return jp_fail(p, off, what);
        }
    }
    free(m);
    return NN_OK;
}

/* Array or object at p->pos ('[' or '{'); container already appended at index c. */
static int parse_container(jp *p, int depth, size_t c) {
    int obj = p->s[p->pos] == '{';
    char close = obj ? '}' : ']';
    size_t prev = NN_JSON_NONE;
    if (depth >= NN_JSON_MAX_DEPTH) return jp_fail(p, p->pos, "nesting too deep");
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return NN_OK;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0, key_off = p->pos, child;
        if (obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return jp_fail(p, p->pos, "object key (string) expected");
            int rc = parse_string(p, &key, &key_len);
            if (rc) return rc;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return jp_fail(p, p->pos, "':' expected after key");
            p->pos++;
        }
        int rc = parse_value(p, depth + 1, &child);
        if (rc) return rc;
        nn_json_val *cv = &p->doc->v[child];
        cv->key = key;
        cv->key_len = key_len;
        if (obj) cv->offset = key_off;
        if (prev != NN_JSON_NONE) p->doc->v[prev].next = child;
        prev = child;
        p->doc->v[c].n++;
        skip_ws(p);
        if (p->pos >= p->len) return jp_fail(p, p->pos, obj ? "unterminated object" : "unterminated array");
        if (p->s[p->pos] == close) break;
        if (p->s[p->pos] != ',')
            return jp_fail(p, p->pos, obj ? "',' or '}' expected" : "',' or ']' expected");
        p->pos++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == close) return jp_fail(p, p->pos, "trailing comma");
    }
    p->pos++;
    return obj ? check_dup_keys(p, c) : NN_OK;
}

static int literal(jp *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return jp_fail(p, p->pos, "invalid literal");
    p->pos += n;
    return NN_OK;
}

static int parse_value(jp *p, int depth, size_t *idx) {
    skip_ws(p);
    if (p->pos >= p->len) return jp_fail(p, p->pos, "value expected, end of text");
    unsigned char c = p->s[p->pos];
    int type;
    switch (c) {
    case '{':
        type = NN_JSON_OBJECT;
        break;
    case '[':
        type = NN_JSON_ARRAY;
        break;
    case '"':
        type = NN_JSON_STRING;
        break;
    case 't':
    case 'f':
        type = NN_JSON_BOOL;
        break;
    case 'n':
        type = NN_JSON_NULL;
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            type = NN_JSON_NUMBER;
        else
            return jp_fail(p, p->pos, "value expected");
    }
    int rc = new_val(p, type, idx);
    if (rc) return rc;
    nn_json_val *v = &p->doc->v[*idx];
    switch (type) {
    case NN_JSON_OBJECT:
    case NN_JSON_ARRAY:
        return parse_container(p, depth, *idx);
    case NN_JSON_STRING:
        return parse_string(p, &v->str, &v->str_len);
    case NN_JSON_NUMBER:
        return parse_number(p, v);
    case NN_JSON_NULL:
        return literal(p, "null");
    default:
        v->boolean = c == 't';
        return literal(p, c == 't' ? "true" : "false");
    }
}

int nn_json_parse(nn_json *doc, const char *text, size_t len, nn_err *err) {
    memset(doc, 0, sizeof *doc);
    if (len > NN_JSON_MAX_LEN)
        return NN_FAIL(err, NN_E_FORMAT, "JSON text of %zu bytes exceeds the %zu-byte limit", len,
                       NN_JSON_MAX_LEN);
    doc->pool = malloc(len + 1);
    if (!doc->pool) return NN_FAIL(err, NN_E_NOMEM, "JSON: out of memory");
    jp p = {(const unsigned char *)text, len, 0, doc, 0, err};
    size_t root;
    int rc = parse_value(&p, 0, &root);
    if (rc) return rc;
    skip_ws(&p);
    if (p.pos != len) return jp_fail(&p, p.pos, "trailing characters after the JSON value");
    return NN_OK;
}

void nn_json_free(nn_json *doc) {
    if (!doc) return;
    free(doc->v);
    free(doc->pool);
    memset(doc, 0, sizeof *doc);
}

const nn_json_val *nn_json_root(const nn_json *doc) {
    return doc->n_vals ? &doc->v[0] : NULL;
}

const nn_json_val *nn_json_first(const nn_json *doc, const nn_json_val *v) {
    if (!v || (v->type != NN_JSON_ARRAY && v->type != NN_JSON_OBJECT) || v->n == 0) return NULL;
    (void)doc;
    return v + 1; /* children directly follow their container (document order) */
}

const nn_json_val *nn_json_next(const nn_json *doc, const nn_json_val *v) {
    return (v && v->next != NN_JSON_NONE) ? &doc->v[v->next] : NULL;
}

const nn_json_val *nn_json_get(const nn_json *doc, const nn_json_val *obj, const char *key) {
    if (!obj || obj->type != NN_JSON_OBJECT) return NULL;
    for (const nn_json_val *c = nn_json_first(doc, obj); c; c = nn_json_next(doc, c))
        if (strcmp(c->key, key) == 0) return c;
    return NULL;
}

const nn_json_val *nn_json_at(const nn_json *doc, const nn_json_val *arr, size_t i) {
    if (!arr || arr->type != NN_JSON_ARRAY) return NULL;
    const nn_json_val *c = nn_json_first(doc, arr);
    while (c && i--)
        c = nn_json_next(doc, c);
    return c;
}

const char *nn_json_type_name(int type) {
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (type >= 0 && type <= NN_JSON_OBJECT) ? names[type] : "?";
}

/* ---- writer ---- */

static int jbuf_grow(nn_jbuf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

void nn_jbuf_puts(nn_jbuf *b, const char *s) {
    size_t n = strlen(s);
    if (jbuf_grow(b, n)) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void nn_jbuf_printf(nn_jbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (jbuf_grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void nn_jbuf_str(nn_jbuf *b, const char *s) {
    nn_jbuf_puts(b, "\"");
    size_t left = strlen(s);
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t n = 1;
        if (*c == '"' || *c == '\\')
            nn_jbuf_printf(b, "\\%c", *c);
        else if (*c < 0x20) {
            const char *named = *c == '\n' ? "\\n" : *c == '\t' ? "\\t" : *c == '\r' ? "\\r" : NULL;
            if (named)
                nn_jbuf_puts(b, named);
            else
                nn_jbuf_printf(b, "\\u%04x", (unsigned)*c);
        } else if (*c < 0x80)
            nn_jbuf_printf(b, "%c", *c);
        else if ((n = utf8_len(c, left)) != 0)
            nn_jbuf_printf(b, "%.*s", (int)n, (const char *)c);
        else {
            nn_jbuf_puts(b, "\\ufffd"); /* invalid UTF-8: the replacement character */
            n = 1;
        }
        c += n;
        left -= n;
    }
    nn_jbuf_puts(b, "\"");
}

void nn_jbuf_free(nn_jbuf *b) {
    if (!b) return;
    free(b->p);
    memset(b, 0, sizeof *b);
}
