/* nn_png.h - PNG output (libpng): plain 8-bit images and the adversarial-example grid.
 *
 * Files are encoded in memory and then written atomically (nn_io_write_atomic): a crash never leaves a
 * half-written PNG, and a failed write leaves any previous file at path untouched. libpng's errors and
 * warnings never reach stderr: errors become NN_E_IO naming the path, warnings are dropped. */
#ifndef NN_PNG_H
#define NN_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "nn_err.h"
#include "nn_layer.h"

#define NN_PNG_MAX_SIDE 65536u      /* largest width or height accepted (2^16) */
#define NN_PNG_GRID_MAX_ROWS 64     /* nn_png_adv_grid draws at most this many samples */
#define NN_PNG_GRID_GUTTER 2        /* pixels between tiles and between rows */
#define NN_PNG_GRID_GUTTER_GREY 200 /* gutter colour: (200, 200, 200) */

/* Writes an 8-bit PNG. pix[h][w][channels], rows top to bottom; channels 1 (grey) or 3 (RGB,
 * interleaved). Errors: NN_E_INVAL for NULL arguments, channels other than 1/3, or w, h outside
 * 1..NN_PNG_MAX_SIDE; NN_E_NOMEM; NN_E_IO (libpng failure or the file cannot be written) with a message
 * naming path. Thread-safe (no shared state); the caller keeps ownership of pix. */
int nn_png_write(const char *path, const uint8_t *pix, size_t w, size_t h, int channels, nn_err *err);

/* Writes an RGB grid picturing adversarial examples: one row per sample (the first
 * min(n, NN_PNG_GRID_MAX_ROWS) samples), three tiles per row, left to right:
 *   1. the original x[i] (C*H*W floats, NCHW; C = 1 grey, C = 3 RGB planes), value v shown as
 *      round(255 * (v - lo) / (hi - lo)), clamped to 0..255 (NaN shows as 0);
 *   2. the adversarial x_adv[i], mapped the same way;
 *   3. the perturbation d = x_adv[i] - x[i] on a diverging colour map. A pixel's value p is the d of
 *      its channel with the largest |d| (sign kept; the first such channel on ties; for C = 1 simply d).
 *      Each row is scaled by its own m = max |d| over the sample (the largest |perturbation| of that
 *      row), so even a small L2 perturbation is visible: t = p / m in [-1, 1], f = round(255 * (1 - |t|)),
 *      t > 0 -> (255, f, f) (full red at t = 1), t < 0 -> (f, f, 255) (full blue at t = -1), p = 0 ->
 *      white. The scale m itself is not drawn: compare magnitudes across rows with the numbers (e.g.
 *      atk_summarize's norms), not with the colours. A row with m = 0 (or m not finite) is white.
 * Tiles are upscaled x2 (nearest neighbour) when H <= 32 and W <= 32, else drawn 1:1. Tiles and rows are
 * separated by NN_PNG_GRID_GUTTER pixels of grey NN_PNG_GRID_GUTTER_GREY (no outer border), so the image
 * is (3 * s*W + 2 * gutter) x (rows * s*H + (rows - 1) * gutter) pixels, s the scale.
 * Shapes: x, x_adv [n, C, H, W]. Errors: NN_E_INVAL (NULL pointers, n = 0, !(lo < hi), non-finite lo/hi,
 * grid wider or taller than NN_PNG_MAX_SIDE), NN_E_SHAPE (C not 1 or 3, H or W = 0), NN_E_NOMEM, and
 * those of nn_png_write. Thread-safe; the inputs are only read. */
int nn_png_adv_grid(const char *path, const float *x, const float *x_adv, size_t n, nn_shape shape, float lo,
                    float hi, nn_err *err);

#endif
