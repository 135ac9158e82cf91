/* exp_yaml.h - a small layer over libyaml: a document as a tree of nodes with line:column marks, strict
 * scalar conversions, and field tables that map a YAML mapping onto a C struct.
 *
 * Every error message has the form "<path>:<line>:<col>: <dotted.key>: <problem>" (1-based line and
 * column of the offending node), or "<path>:<line>:<col>: <problem>" for file-level problems.
 * Nothing here prints. Not thread-safe per document (libyaml documents are plain data; use one per thread).
 */
#ifndef EXP_YAML_H
#define EXP_YAML_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "nn_err.h"

typedef struct exp_yaml {
    yaml_document_t doc;
    int loaded;       /* doc must be deleted */
    const char *path; /* borrowed; only used in messages */
} exp_yaml;

/* Parses text[len] (the first and only document) into y. path names the source in messages.
 * Errors (NN_E_FORMAT): YAML syntax errors with libyaml's mark, an empty document, more than one
 * document. On failure y holds nothing; exp_yaml_free(y) is still safe. */
int exp_yaml_load(exp_yaml *y, const char *text, size_t len, const char *path, nn_err *err);
/* Releases the document. Safe on a zeroed or failed exp_yaml, and twice. */
void exp_yaml_free(exp_yaml *y);

/* The root node (non-NULL after a successful load). */
yaml_node_t *exp_yaml_root(exp_yaml *y);
/* The node with the given id (from a pair or a sequence item), or NULL. */
yaml_node_t *exp_yaml_node(exp_yaml *y, int id);
/* The value node of `key` in mapping map (NULL if absent or map is not a mapping); *key_node, if
 * non-NULL, receives the key node (NULL if absent). The first occurrence wins. */
yaml_node_t *exp_yaml_map_get(exp_yaml *y, yaml_node_t *map, const char *key, yaml_node_t **key_node);
/* "a mapping", "a list", "null", "a scalar" - for messages. */
const char *exp_yaml_kind(const yaml_node_t *n);
/* True if n is a plain scalar spelling null: empty, "~", "null" (any case). */
int exp_yaml_is_null(const yaml_node_t *n);

/* Records "<path>:<line>:<col>: <key>: <printf message>" (key may be NULL or "" to omit it; at may be
 * NULL for line 1, column 1) with code into err. Returns code. */
int exp_yaml_fail(const exp_yaml *y, const yaml_node_t *at, const char *key, int code, nn_err *err,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Strict scalar conversions. Each accepts only a plain (unquoted) scalar that is entirely consumed and
 * fails with NN_E_INVAL naming the node and key and quoting the value. Integers: decimal digits only (no
 * sign, fraction, exponent), no overflow of the destination type. Floats: finite, also after rounding to
 * float for get_float. Booleans: true/false/yes/no (any case). Strings: any scalar, plain or quoted, not
 * null, at most cap-1 bytes. */
int exp_yaml_get_u64(const exp_yaml *y, const yaml_node_t *n, const char *key, uint64_t *out, nn_err *err);
int exp_yaml_get_size(const exp_yaml *y, const yaml_node_t *n, const char *key, size_t *out, nn_err *err);
int exp_yaml_get_int(const exp_yaml *y, const yaml_node_t *n, const char *key, int *out, nn_err *err);
int exp_yaml_get_double(const exp_yaml *y, const yaml_node_t *n, const char *key, double *out, nn_err *err);
int exp_yaml_get_float(const exp_yaml *y, const yaml_node_t *n, const char *key, float *out, nn_err *err);
int exp_yaml_get_bool(const exp_yaml *y, const yaml_node_t *n, const char *key, int *out, nn_err *err);
int exp_yaml_get_str(const exp_yaml *y, const yaml_node_t *n, const char *key, char *buf, size_t cap,
                     nn_err *err);

/* ---- field tables ---- */

typedef enum exp_ftype {
    EXP_F_SIZE,   /* size_t */
    EXP_F_U64,    /* uint64_t */
    EXP_F_INT,    /* int, >= 0 (negatives are rejected like every integer) */
    EXP_F_FLOAT,  /* float */
    EXP_F_DOUBLE, /* double */
    EXP_F_BOOL,   /* int 0/1 */
    EXP_F_STRING, /* char[size] */
    EXP_F_ENUM,   /* int, one of choices */
    EXP_F_MAP,    /* a nested mapping onto the struct at offset, through sub */
    EXP_F_CUSTOM, /* set() does the work */
    EXP_F_SKIP    /* a known key handled by the caller (e.g. a layer's `type`) */
} exp_ftype;

/* Numeric range; flags say which bounds apply and whether they are exclusive. */
enum { EXP_R_LO = 1u, EXP_R_HI = 2u, EXP_R_LO_EXCL = 4u, EXP_R_HI_EXCL = 8u };
typedef struct exp_range {
    double lo, hi;
    unsigned flags;
} exp_range;
#define EXP_GE(a) .range = {(a), 0, EXP_R_LO}
#define EXP_GT(a) .range = {(a), 0, EXP_R_LO | EXP_R_LO_EXCL}
#define EXP_LE(b) .range = {0, (b), EXP_R_HI}
#define EXP_IN(a, b) .range = {(a), (b), EXP_R_LO | EXP_R_HI}                      /* [a, b] */
#define EXP_IN_HALF(a, b) .range = {(a), (b), EXP_R_LO | EXP_R_HI | EXP_R_HI_EXCL} /* [a, b) */

typedef struct exp_choice {
    const char *name;
    int value;
} exp_choice; /* arrays end with {NULL, 0} */

typedef struct exp_table exp_table;

/* Custom setter: val is the value node, key the dotted key, base the struct the table maps. */
typedef int (*exp_setter)(exp_yaml *y, yaml_node_t *val, const char *key, void *base, nn_err *err);

enum { EXP_REQUIRED = 1u };

typedef struct exp_field {
    const char *key;
    exp_ftype type;
    size_t offset;             /* destination within the mapped struct (not used by CUSTOM/SKIP) */
    size_t size;               /* EXP_F_STRING: capacity of the char array */
    exp_range range;           /* numeric types: checked after conversion */
    unsigned flags;            /* EXP_REQUIRED */
    unsigned bit;              /* non-zero: accepted only when the apply mask has this bit */
    const exp_choice *choices; /* EXP_F_ENUM */
    const exp_table *sub;      /* EXP_F_MAP */
    exp_setter set;            /* EXP_F_CUSTOM */
} exp_field;

struct exp_table {
    const exp_field *fields;
    size_t n;
};
/* Table rows use designated initializers only, e.g.
 *   {EXP_KEY("epochs", EXP_F_SIZE, nn_train_cfg, epochs), EXP_GE(1)},
 *   {EXP_STR("name", nn_data_cfg, name), .flags = EXP_REQUIRED},
 *   {.key = "range", .type = EXP_F_CUSTOM, .set = set_range},                                       */
#define EXP_KEY(k, t, st, m) .key = (k), .type = (t), .offset = offsetof(st, m)
#define EXP_STR(k, st, m) EXP_KEY(k, EXP_F_STRING, st, m), .size = sizeof(((st *)0)->m)
#define EXP_TABLE(arr)                                                                                       \
    { (arr), sizeof(arr) / sizeof((arr)[0]) }
#define EXP_ALL_FIELDS (~0u)

/* Maps the mapping node `map` onto the struct at base through table t. key is the dotted prefix of the
 * mapping ("" at the top level, "data", "model[2]"); it prefixes every key in messages. Fields with a
 * non-zero bit are accepted only when (mask & bit); such a key given without its bit is an error naming
 * `what` (e.g. "layer type 'relu'") and listing the accepted keys. Errors: map not a mapping, a non-scalar
 * key, a duplicate key (the second one, citing the first), an unknown key (listing the accepted ones), a
 * missing required key (at the mapping's mark), and every conversion/range error of the fields. Fields
 * absent from the mapping keep their values in base. */
int exp_yaml_apply(exp_yaml *y, yaml_node_t *map, const char *key, const exp_table *t, unsigned mask,
                   const char *what, void *base, nn_err *err);

/* Writes "<prefix>.<name>" (or just name when prefix is empty) into buf, truncating. Returns buf. */
char *exp_yaml_key(char *buf, size_t cap, const char *prefix, const char *name);

#endif
