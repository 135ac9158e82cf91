/* nn_model.h - model files in the safetensors format.
 *
 * Layout: 8-byte little-endian header length, a JSON header, then raw little-endian F32 data.
 * Tensor names and shapes are those of the equivalent torch.nn.Sequential state_dict:
 * "<layer index>.weight" (dense [out, in], conv2d [out, in, kh, kw]) and "<layer index>.bias".
 * __metadata__ (all values strings): "format": "pt", "temper.arch": JSON list of layer configs,
 * "temper.input_shape": "C,H,W", "temper.temperature": training T, plus caller key/values.
 * Files are written atomically: <path>.tmp.<pid>, fflush + fsync, rename. */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include <stddef.h>

#include "nn_err.h"
#include "nn_net.h"

#define NN_MODEL_MAX_META 16

typedef struct nn_model_meta {
    size_t n;
    char key[NN_MODEL_MAX_META][64];
    char value[NN_MODEL_MAX_META][256];
} nn_model_meta;

/* Adds or replaces key. Error if full or too long. */
int nn_model_meta_set(nn_model_meta *m, const char *key, const char *value, nn_err *err);
/* The value of key, or NULL. */
const char *nn_model_meta_get(const nn_model_meta *m, const char *key);

/* Saves net (architecture, parameters, net->temperature) plus extra metadata (may be NULL). */
int nn_model_save(const nn_net *net, const nn_model_meta *extra, const char *path, nn_err *err);

/* Loads a model file: builds the net from temper.arch and input shape, checks every tensor's name,
 * dtype, shape and offsets against it, and the file size. Rejects truncated, inconsistent or foreign
 * (no temper metadata) files with a message naming the file and the problem. extra (may be NULL)
 * receives the metadata keys that are not temper.*-internal. The net is not reserved. */
int nn_model_load(nn_net **out, nn_model_meta *extra, const char *path, nn_err *err);

#endif
