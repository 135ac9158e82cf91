/* nn_model.c - model files in the safetensors format (see nn_model.h for the layout).
 *
 * Save: header JSON padded with spaces to a multiple of 8 bytes, tensors in layer order (weight, bias),
 * little-endian F32, written atomically. Load: every byte of the file is accounted for: header length,
 * JSON, temper metadata, each tensor's name/dtype/shape/offsets against the architecture, offsets tiling
 * the data exactly, file size, finite parameters. Byte order is explicit, so any host reads any file. */
#include "nn_model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_io.h"
#include "nn_json.h"

#define FOREIGN "not a temper model file (foreign safetensors?)"
/* A format error from a loader function (err in scope). */
#define BAD(...) NN_FAIL(err, NN_E_FORMAT, __VA_ARGS__)


/* Metadata keys owned by this file; callers cannot set them and load does not return them in extra. */
static const char *const RESERVED[] = {"format", "temper.arch", "temper.input_shape", "temper.temperature",
                                       "temper.version"};

static int is_reserved(const char *key) {
    for (size_t i = 0; i < sizeof RESERVED / sizeof RESERVED[0]; i++)
        if (strcmp(key, RESERVED[i]) == 0) return 1;
    return 0;
}

int nn_model_meta_set(nn_model_meta *m, const char *key, const char *value, nn_err *err) {
    size_t kl = strlen(key), vl = strlen(value);
    if (kl == 0 || kl >= sizeof m->key[0])
        return NN_FAIL(err, NN_E_INVAL, "metadata key \"%.64s\" must have 1..%zu bytes", key,
                       sizeof m->key[0] - 1);
    if (vl >= sizeof m->value[0])
        return NN_FAIL(err, NN_E_INVAL, "metadata value of \"%s\" is %zu bytes long (max %zu)", key, vl,
                       sizeof m->value[0] - 1);
    if (!nn_json_utf8_valid(key, kl) || !nn_json_utf8_valid(value, vl))
        return NN_FAIL(err, NN_E_INVAL, "metadata \"%.64s\": key and value must be valid UTF-8", key);
    size_t i = 0;
    while (i < m->n && strcmp(m->key[i], key) != 0)
        i++;
    if (i == m->n) {
        if (m->n >= NN_MODEL_MAX_META)
            return NN_FAIL(err, NN_E_INVAL, "metadata is full (%d keys): cannot add \"%s\"",
                           NN_MODEL_MAX_META, key);
        m->n++;
    }
    memcpy(m->key[i], key, kl + 1);
    memcpy(m->value[i], value, vl + 1);
    return NN_OK;
}

const char *nn_model_meta_get(const nn_model_meta *m, const char *key) {
    for (size_t i = 0; m && i < m->n; i++)
        if (strcmp(m->key[i], key) == 0) return m->value[i];
    return NULL;
}

/* The shortest "%.<p>g" text (p <= 9, always enough for a float) that reads back as exactly f: 20 -> "20". */
static void fmt_float(char *buf, size_t cap, float f) {
    char t[32];
    buf[0] = '\0';
    for (int p = 1; p <= 9; p++) {
        snprintf(t, sizeof t, "%.*g", p, (double)f);
        if (strtof(t, NULL) == f && (!buf[0] || strlen(t) < strlen(buf))) snprintf(buf, cap, "%s", t);
    }
}

static void put_u32le(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---------------------------------------------------------------- save */

/* [{"type":"conv2d","filters":32,...},...]: exactly the fields each kind accepts, in nn_layer_fields order. */
static void arch_json(const nn_net *net, nn_jbuf *b) {
    char num[32];
    nn_jbuf_puts(b, "[");
    for (size_t i = 0; i < net->n_layers; i++) {
        const nn_layer *l = &net->layers[i];
        const nn_layer_cfg *c = &l->cfg;
        nn_jbuf_puts(b, i ? ",{\"type\":" : "{\"type\":");
        nn_jbuf_str(b, l->ops->kind);
        const size_t vals[] = {c->units, c->filters, c->kernel, c->stride, c->pad};
        for (size_t f = 0; f < NN_LAYER_N_FIELDS; f++) {
            if (!(l->ops->fields & nn_layer_fields[f].bit)) continue;
            nn_jbuf_printf(b, ",\"%s\":", nn_layer_fields[f].name);
            if (nn_layer_fields[f].bit == NN_F_RATE) {
                fmt_float(num, sizeof num, c->rate);
                nn_jbuf_puts(b, num);
            } else if (nn_layer_fields[f].bit == NN_F_INIT) {
                nn_jbuf_puts(b, c->init == NN_INIT_GLOROT ? "\"glorot\"" : "\"he\"");
            } else {
                nn_jbuf_printf(b, "%zu", vals[f]);
            }
        }
        nn_jbuf_puts(b, "}");
    }
    nn_jbuf_puts(b, "]");
}

static void meta_pair(nn_jbuf *b, const char *key, const char *value) {
    nn_jbuf_puts(b, ",");
    nn_jbuf_str(b, key);
    nn_jbuf_puts(b, ":");
    nn_jbuf_str(b, value);
}

/* {"__metadata__":{...} (the root object is left open). */
static void save_meta(const nn_net *net, const nn_model_meta *extra, nn_jbuf *hdr) {
    nn_jbuf arch = {0};
    char buf[96];
    arch_json(net, &arch);
    nn_jbuf_puts(hdr, "{\"__metadata__\":{\"format\":\"pt\",\"temper.arch\":");
    if (arch.oom)
        hdr->oom = 1;
    else
        nn_jbuf_str(hdr, arch.p);
    nn_jbuf_free(&arch);
    snprintf(buf, sizeof buf, "%zu,%zu,%zu", net->in_shape.c, net->in_shape.h, net->in_shape.w);
    meta_pair(hdr, "temper.input_shape", buf);
    fmt_float(buf, sizeof buf, net->temperature);
    meta_pair(hdr, "temper.temperature", buf);
    meta_pair(hdr, "temper.version", "1");
    for (size_t i = 0; extra && i < extra->n; i++)
        meta_pair(hdr, extra->key[i], extra->value[i]);
    nn_jbuf_puts(hdr, "}");
}

/* ,"<i>.<suffix>":{"dtype":"F32","shape":[...],"data_offsets":[a,b]} per tensor in layer order, and the
 * data d[n_params * 4] as little-endian F32. Non-finite parameters are refused. */
static int save_tensors(const nn_net *net, const char *path, nn_jbuf *hdr, unsigned char *d, nn_err *err) {
    size_t off = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        const nn_layer *l = &net->layers[i];
        nn_param_desc pd[2];
        int np = l->ops->params ? l->ops->params(l, pd) : 0;
        for (int t = 0; t < np; t++) {
            size_t count = 1;
            for (int k = 0; k < pd[t].ndim; k++)
                count *= pd[t].dims[k];
            if (pd[t].offset + count > l->n_params || off + count * 4 > net->n_params * 4)
                return NN_FAIL(err, NN_E_INVAL, "%s: layer %zu: tensor %s exceeds the parameters", path, i,
                               pd[t].suffix);
            nn_jbuf_printf(hdr, ",\"%zu.%s\":{\"dtype\":\"F32\",\"shape\":[", i, pd[t].suffix);
            for (int k = 0; k < pd[t].ndim; k++)
                nn_jbuf_printf(hdr, k ? ",%zu" : "%zu", pd[t].dims[k]);
            nn_jbuf_printf(hdr, "],\"data_offsets\":[%zu,%zu]}", off, off + count * 4);
            for (size_t j = 0; j < count; j++) {
                float v = l->w[pd[t].offset + j];
                uint32_t u;
                memcpy(&u, &v, 4);
                if (!isfinite(v))
                    return NN_FAIL(err, NN_E_NUMERIC, "%s: refusing to save: parameter %zu.%s[%zu] is %g",
                                   path, i, pd[t].suffix, j, (double)v);
                put_u32le(d + off + 4 * j, u);
            }
            off += count * 4;
        }
    }
    if (off != net->n_params * 4)
        return NN_FAIL(err, NN_E_INVAL, "%s: the layers' tensors do not cover the parameter vector", path);
    return NN_OK;
}

int nn_model_save(const nn_net *net, const nn_model_meta *extra, const char *path, nn_err *err) {
    if (!(isfinite(net->temperature) && net->temperature > 0.0f))
        return NN_FAIL(err, NN_E_INVAL, "%s: temperature %g must be finite and > 0", path,
                       (double)net->temperature);
    for (size_t i = 0; extra && i < extra->n; i++)
        if (is_reserved(extra->key[i]))
            return NN_FAIL(err, NN_E_INVAL, "%s: metadata key \"%s\" is reserved", path, extra->key[i]);
    nn_jbuf hdr = {0};
    unsigned char len8[8], *data = malloc(net->n_params * 4 + 1);
    int rc = data ? NN_OK : NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
    if (rc) goto fail;
    save_meta(net, extra, &hdr);
    if ((rc = save_tensors(net, path, &hdr, data, err))) goto fail;
    nn_jbuf_puts(&hdr, "}");
    while (!hdr.oom && hdr.len % 8)
        nn_jbuf_puts(&hdr, " ");
    if (hdr.oom) {
        rc = NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    const void *parts[3] = {len8, hdr.p, data};
    size_t lens[3] = {8, hdr.len, net->n_params * 4};
    rc = nn_io_write_atomic_v(path, parts, lens, 3, err);
fail:
    nn_jbuf_free(&hdr);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------- load */

typedef struct slot {
    char name[48];
    const nn_json_val *entry; /* the header entry, NULL until found */
    const nn_layer *layer;
    nn_param_desc d;
    size_t count;        /* floats */
    uint64_t start, end; /* byte offsets into the data area */
} slot;

typedef struct loader {
    const char *path;
    char *buf;
    size_t len;
    size_t data_off, data_len; /* data area: buf[data_off .. data_off + data_len) */
    nn_json hdr, arch;
    const nn_json_val *meta;
    nn_layer_cfg *cfgs;
    size_t n_cfgs;
    nn_shape in;
    float temperature;
    slot *slots;
    size_t n_slots;
} loader;

/* Length prefix and header JSON. */
static int ld_header(loader *L, nn_err *err) {
    nn_err je;
    if (L->len < 8) return BAD("%s: file too short (%zu bytes) for a safetensors header", L->path, L->len);
    uint64_t h = get_u64le((const unsigned char *)L->buf);
    if (h == 0 || h > NN_JSON_MAX_LEN)
        return BAD("%s: header length %llu is absurd (allowed 1..%zu)", L->path, (unsigned long long)h,
                   NN_JSON_MAX_LEN);
    if (h > L->len - 8)
        return NN_FAIL(err, NN_E_FORMAT,
                       "%s: header length %llu runs past the end of the file (%zu bytes; truncated?)",
                       L->path, (unsigned long long)h, L->len);
    L->data_off = 8 + (size_t)h;
    L->data_len = L->len - L->data_off;
    if (nn_json_parse(&L->hdr, L->buf + 8, (size_t)h, &je))
        return BAD("%s: header is not valid JSON (bytes count from file offset 8): %s", L->path, je.msg);
    if (nn_json_root(&L->hdr)->type != NN_JSON_OBJECT)
        return BAD("%s: header is a JSON %s, not an object", L->path,
                   nn_json_type_name(nn_json_root(&L->hdr)->type));
    return NN_OK;
}

/* "C,H,W" of three positive integers. */
static int parse_shape(const char *s, nn_shape *out) {
    size_t v[3];
    for (int i = 0; i < 3; i++) {
        if (*s < '0' || *s > '9') return -1;
        v[i] = 0;
        while (*s >= '0' && *s <= '9') {
            if (v[i] > ((size_t)1 << 30)) return -1;
            v[i] = v[i] * 10 + (size_t)(*s++ - '0');
        }
        if (v[i] == 0 || *s != (i < 2 ? ',' : '\0')) return -1;
        s++;
    }
    *out = (nn_shape){v[0], v[1], v[2]};
    return 0;
}

static const char *meta_str(const loader *L, const char *key) {
    const nn_json_val *v = nn_json_get(&L->hdr, L->meta, key);
    return v ? v->str : NULL;
}

/* __metadata__: all values strings; the temper keys; the rest into extra. */
static int ld_meta(loader *L, nn_model_meta *extra, nn_err *err) {
    L->meta = nn_json_get(&L->hdr, nn_json_root(&L->hdr), "__metadata__");
    if (!L->meta || L->meta->type != NN_JSON_OBJECT)
        return BAD("%s: %s: no __metadata__ object", L->path, FOREIGN);
    for (const nn_json_val *m = nn_json_first(&L->hdr, L->meta); m; m = nn_json_next(&L->hdr, m)) {
        if (m->type != NN_JSON_STRING)
            return BAD("%s: __metadata__ value of \"%.64s\" is a %s, not a string", L->path, m->key,
                       nn_json_type_name(m->type));
        nn_err me;
        if (extra && !is_reserved(m->key) && nn_model_meta_set(extra, m->key, m->str, &me))
            return BAD("%s: %s", L->path, me.msg);
    }
    if (!meta_str(L, "temper.arch")) return BAD("%s: %s: __metadata__ has no temper.arch", L->path, FOREIGN);
    const char *ver = meta_str(L, "temper.version"), *shape = meta_str(L, "temper.input_shape");
    const char *temp = meta_str(L, "temper.temperature");
    if (!ver || strcmp(ver, "1") != 0)
        return BAD("%s: temper.version is \"%s\", this program reads version \"1\"", L->path,
                   ver ? ver : "(missing)");
    if (!shape || parse_shape(shape, &L->in))
        return NN_FAIL(err, NN_E_FORMAT,
                       "%s: temper.input_shape \"%s\" is not \"C,H,W\" of positive integers", L->path,
                       shape ? shape : "(missing)");
    char *end = NULL;
    double t = temp ? strtod(temp, &end) : NAN;
    if (!temp || end == temp || *end || !(t > 0.0 && t < 3.4e38))
        return BAD("%s: temper.temperature \"%s\" is not a finite number > 0", L->path,
                   temp ? temp : "(missing)");
    L->temperature = (float)t;
    if (!(L->temperature > 0.0f)) /* a positive double below float's range would load as 0 */
        return BAD("%s: temper.temperature \"%s\" is not a finite number > 0 in float32", L->path, temp);
    return NN_OK;
}

static int field_value(const loader *L, size_t i, const nn_json_val *v, unsigned bit, nn_layer_cfg *c,
                       nn_err *err) {
    if (bit == NN_F_INIT) {
        if (v->type == NN_JSON_STRING && strcmp(v->str, "he") == 0)
            c->init = NN_INIT_HE;
        else if (v->type == NN_JSON_STRING && strcmp(v->str, "glorot") == 0)
            c->init = NN_INIT_GLOROT;
        else
            return BAD("%s: temper.arch layer %zu: init must be \"he\" or \"glorot\"", L->path, i);
    } else if (bit == NN_F_RATE) {
        if (v->type != NN_JSON_NUMBER)
            return BAD("%s: temper.arch layer %zu: rate must be a number", L->path, i);
        c->rate = (float)v->num;
    } else {
        if (v->type != NN_JSON_NUMBER || !v->is_uint || v->u > ((uint64_t)1 << 40))
            return BAD("%s: temper.arch layer %zu: %s must be a non-negative integer", L->path, i, v->key);
        size_t u = (size_t)v->u;
        if (bit == NN_F_UNITS)
            c->units = u;
        else if (bit == NN_F_FILTERS)
            c->filters = u;
        else if (bit == NN_F_KERNEL)
            c->kernel = u;
        else if (bit == NN_F_STRIDE)
            c->stride = u;
        else
            c->pad = u;
    }
    return NN_OK;
}

/* One {"type": ..., fields...} object: every accepted field present, no other key. */
static int arch_layer(const loader *L, size_t i, const nn_json_val *o, nn_layer_cfg *c, nn_err *err) {
    const nn_json_val *t = nn_json_get(&L->arch, o, "type");
    if (o->type != NN_JSON_OBJECT || !t || t->type != NN_JSON_STRING)
        return BAD("%s: temper.arch layer %zu is not an object with a \"type\" string", L->path, i);
    const nn_layer_ops *ops = nn_layer_ops_find(t->str);
    if (!ops) return BAD("%s: temper.arch layer %zu: unknown type \"%.32s\"", L->path, i, t->str);
    *c = nn_layer_cfg_default(t->str);
    unsigned seen = 0;
    for (const nn_json_val *m = nn_json_first(&L->arch, o); m; m = nn_json_next(&L->arch, m)) {
        if (m == t) continue;
        size_t f = 0;
        while (f < NN_LAYER_N_FIELDS && strcmp(nn_layer_fields[f].name, m->key) != 0)
            f++;
        if (f == NN_LAYER_N_FIELDS || !(ops->fields & nn_layer_fields[f].bit))
            return BAD("%s: temper.arch layer %zu (%s): unexpected field \"%.32s\"", L->path, i, ops->kind,
                       m->key);
        int rc = field_value(L, i, m, nn_layer_fields[f].bit, c, err);
        if (rc) return rc;
        seen |= nn_layer_fields[f].bit;
    }
    for (size_t f = 0; f < NN_LAYER_N_FIELDS; f++)
        if ((ops->fields & nn_layer_fields[f].bit) && !(seen & nn_layer_fields[f].bit))
            return BAD("%s: temper.arch layer %zu (%s): missing field \"%s\"", L->path, i, ops->kind,
                       nn_layer_fields[f].name);
    return NN_OK;
}

static int ld_arch(loader *L, nn_err *err) {
    nn_err je;
    const char *text = meta_str(L, "temper.arch");
    if (nn_json_parse(&L->arch, text, strlen(text), &je))
        return BAD("%s: temper.arch is not valid JSON: %s", L->path, je.msg);
    const nn_json_val *a = nn_json_root(&L->arch);
    if (a->type != NN_JSON_ARRAY || a->n == 0)
        return BAD("%s: temper.arch must be a non-empty JSON list of layers", L->path);
    L->cfgs = calloc(a->n, sizeof *L->cfgs);
    if (!L->cfgs) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", L->path);
    L->n_cfgs = a->n;
    size_t i = 0;
    for (const nn_json_val *o = nn_json_first(&L->arch, a); o; o = nn_json_next(&L->arch, o), i++) {
        int rc = arch_layer(L, i, o, &L->cfgs[i], err);
        if (rc) return rc;
    }
    return NN_OK;
}

/* The tensors the architecture expects, in layer order. */
static int ld_slots(loader *L, const nn_net *net, nn_err *err) {
    L->slots = calloc(2 * net->n_layers + 1, sizeof *L->slots);
    if (!L->slots) return NN_FAIL(err, NN_E_NOMEM, "%s: out of memory", L->path);
    for (size_t i = 0; i < net->n_layers; i++) {
        const nn_layer *l = &net->layers[i];
        nn_param_desc pd[2];
        int np = l->ops->params ? l->ops->params(l, pd) : 0;
        for (int t = 0; t < np; t++) {
            slot *s = &L->slots[L->n_slots++];
            snprintf(s->name, sizeof s->name, "%zu.%s", i, pd[t].suffix);
            s->layer = l;
            s->d = pd[t];
            s->count = 1;
            for (int k = 0; k < pd[t].ndim; k++)
                s->count *= pd[t].dims[k];
        }
    }
    return NN_OK;
}

/* {"dtype":"F32","shape":[...],"data_offsets":[a,b]} checked against slot s. */
static int tensor_entry(loader *L, slot *s, const nn_json_val *e, nn_err *err) {
    const nn_json *H = &L->hdr;
    const nn_json_val *dt = nn_json_get(H, e, "dtype"), *sh = nn_json_get(H, e, "shape");
    const nn_json_val *of = nn_json_get(H, e, "data_offsets");
    if (e->type != NN_JSON_OBJECT || e->n != 3 || !dt || !sh || !of || dt->type != NN_JSON_STRING ||
        sh->type != NN_JSON_ARRAY || of->type != NN_JSON_ARRAY)
        return BAD("%s: tensor %s: entry must be {dtype, shape, data_offsets}", L->path, s->name);
    if (strcmp(dt->str, "F32") != 0)
        return BAD("%s: tensor %s: dtype %.16s, expected F32", L->path, s->name, dt->str);
    int ok = sh->n == (size_t)s->d.ndim;
    for (int k = 0; ok && k < s->d.ndim; k++) {
        const nn_json_val *v = nn_json_at(H, sh, (size_t)k);
        ok = v->type == NN_JSON_NUMBER && v->is_uint && v->u == s->d.dims[k];
    }
    if (!ok) {
        char want[96] = "";
        for (int k = 0, n = 0; k < s->d.ndim; k++)
            n += snprintf(want + n, sizeof want - (size_t)n, k ? ",%zu" : "%zu", s->d.dims[k]);
        return BAD("%s: tensor %s: wrong shape, the architecture needs [%s]", L->path, s->name, want);
    }
    const nn_json_val *a = nn_json_at(H, of, 0), *b = nn_json_at(H, of, 1);
    if (of->n != 2 || a->type != NN_JSON_NUMBER || b->type != NN_JSON_NUMBER || !a->is_uint || !b->is_uint ||
        b->u < a->u)
        return BAD("%s: tensor %s: data_offsets must be [begin, end] integers", L->path, s->name);
    if (b->u - a->u != (uint64_t)s->count * 4)
        return BAD("%s: tensor %s: data_offsets span %llu bytes, its shape needs %zu", L->path, s->name,
                   (unsigned long long)(b->u - a->u), s->count * 4);
    if (b->u > L->data_len)
        return NN_FAIL(err, NN_E_FORMAT,
                       "%s: tensor %s: data_offsets end %llu is past the data (%zu bytes; truncated?)",
                       L->path, s->name, (unsigned long long)b->u, L->data_len);
    s->entry = e;
    s->start = a->u;
    s->end = b->u;
    return NN_OK;
}

static int slot_cmp(const void *a, const void *b) {
    const slot *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* Matches header entries to slots, then checks that the offsets tile the data area exactly. */
static int ld_tensors(loader *L, nn_err *err) {
    for (const nn_json_val *e = nn_json_first(&L->hdr, nn_json_root(&L->hdr)); e;
         e = nn_json_next(&L->hdr, e)) {
        if (strcmp(e->key, "__metadata__") == 0) continue;
        size_t k = 0;
        while (k < L->n_slots && strcmp(L->slots[k].name, e->key) != 0)
            k++;
        if (k == L->n_slots)
            return NN_FAIL(err, NN_E_FORMAT,
                           "%s: unexpected tensor \"%.48s\": the architecture has no such parameter", L->path,
                           e->key);
        int rc = tensor_entry(L, &L->slots[k], e, err);
        if (rc) return rc;
    }
    for (size_t k = 0; k < L->n_slots; k++)
        if (!L->slots[k].entry) return BAD("%s: missing tensor %s", L->path, L->slots[k].name);
    qsort(L->slots, L->n_slots, sizeof *L->slots, slot_cmp);
    uint64_t at = 0;
    for (size_t k = 0; k < L->n_slots; k++) {
        if (L->slots[k].start != at)
            return NN_FAIL(
                err, NN_E_FORMAT, "%s: tensor %s: data_offsets begin at %llu, expected %llu (not contiguous)",
                L->path, L->slots[k].name, (unsigned long long)L->slots[k].start, (unsigned long long)at);
        at = L->slots[k].end;
    }
    if (at != L->data_len)
        return BAD("%s: file size %zu != 8 + header %zu + data %llu", L->path, L->len, L->data_off - 8,
                   (unsigned long long)at);
    return NN_OK;
}

/* Little-endian F32 -> the layer's parameters; NaN/Inf rejected. */
static int ld_copy(loader *L, nn_err *err) {
    for (size_t k = 0; k < L->n_slots; k++) {
        const slot *s = &L->slots[k];
        const unsigned char *p = (const unsigned char *)L->buf + L->data_off + s->start;
        float *w = s->layer->w + s->d.offset;
        for (size_t j = 0; j < s->count; j++, p += 4) {
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            memcpy(&w[j], &u, 4);
            if (!isfinite(w[j]))
                return NN_FAIL(err, NN_E_NUMERIC, "%s: tensor %s element %zu is %g", L->path, s->name, j,
                               (double)w[j]);
        }
    }
    return NN_OK;
}

int nn_model_load(nn_net **out, nn_model_meta *extra, const char *path, nn_err *err) {
    loader L;
    memset(&L, 0, sizeof L);
    L.path = path;
    nn_net *net = NULL;
    nn_err ne;
    *out = NULL;
    if (extra) extra->n = 0;
    int rc = nn_io_read_all(path, &L.buf, &L.len, err);
    if (rc) goto fail;
    if ((rc = ld_header(&L, err)) || (rc = ld_meta(&L, extra, err)) || (rc = ld_arch(&L, err))) goto fail;
    if ((rc = nn_net_create(&net, L.in, L.cfgs, L.n_cfgs, &ne)) != NN_OK) {
        rc = BAD("%s: the architecture in temper.arch is invalid: %s", path, ne.msg);
        goto fail;
    }
    if ((rc = ld_slots(&L, net, err)) || (rc = ld_tensors(&L, err)) || (rc = ld_copy(&L, err))) goto fail;
    net->temperature = L.temperature;
    *out = net;
    net = NULL;
fail:
    if (rc && extra) extra->n = 0;
    nn_net_destroy(net);
    free(L.slots);
    free(L.cfgs);
    nn_json_free(&L.arch);
    nn_json_free(&L.hdr);
    free(L.buf);
    return rc;
}
