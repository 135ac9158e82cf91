/* nn_png.c - PNG encoding through libpng into memory, atomic writes, adversarial-example grids. */
#include "nn_png.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_io.h"

/* The encoder's output buffer, also libpng's error pointer (its message is kept for NN_FAIL). */
typedef struct png_mem {
    unsigned char *data;
    size_t len, cap;
    int nomem;     /* the buffer could not grow */
    char msg[256]; /* libpng's error message, if any */
} png_mem;

/* libpng error callback: keep the message and jump back to the setjmp in mem_encode (never returns). */
static void mem_on_error(png_structp png, png_const_charp msg) {
    png_mem *m = png_get_error_ptr(png);
    snprintf(m->msg, sizeof m->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

/* libpng warning callback: warnings are dropped (src/ never prints). */
static void mem_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* libpng write callback: append n bytes, growing the buffer by doubling. */
static void mem_on_write(png_structp png, png_bytep data, size_t n) {
    png_mem *m = png_get_io_ptr(png);
    if (n > m->cap - m->len) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap - m->len < n) {
            if (cap > SIZE_MAX / 2) png_error(png, "encoded image too large");
            cap *= 2;
        }
        unsigned char *d = realloc(m->data, cap);
        if (!d) {
            m->nomem = 1;
            png_error(png, "out of memory");
        }
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, n);
    m->len += n;
}

static void mem_on_flush(png_structp png) {
    (void)png;
}

/* Encodes pix[h][w][channels] (sizes already validated) into m. Returns 0, or -1 with m->msg set when
 * libpng reported an error (m->msg empty: libpng could not even be initialised). */
static int mem_encode(png_mem *m, const uint8_t *pix, size_t w, size_t h, int channels) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, m, mem_on_error, mem_on_warning);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    /* png and info are not modified after setjmp, so they are valid after a longjmp. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, m, mem_on_write, mem_on_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = w * (size_t)channels;
    for (size_t y = 0; y < h; y++)
        png_write_row(png, pix + y * stride);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int nn_png_write(const char *path, const uint8_t *pix, size_t w, size_t h, int channels, nn_err *err) {
    if (!path || !pix) return NN_FAIL(err, NN_E_INVAL, "PNG: path and pixels must not be NULL");
    if (channels != 1 && channels != 3)
        return NN_FAIL(err, NN_E_INVAL, "%s: PNG with %d channels (must be 1 or 3)", path, channels);
    if (w == 0 || h == 0 || w > NN_PNG_MAX_SIDE || h > NN_PNG_MAX_SIDE)
        return NN_FAIL(err, NN_E_INVAL, "%s: PNG size %zux%zu (each side must be 1..%u)", path, w, h,
                       NN_PNG_MAX_SIDE);
    if (w * (size_t)channels > SIZE_MAX / h)
        return NN_FAIL(err, NN_E_INVAL, "%s: PNG size %zux%zux%d overflows", path, w, h, channels);
    png_mem m = {0};
    int rc;
    if (mem_encode(&m, pix, w, h, channels) != 0) {
        if (m.nomem)
            rc = NN_FAIL(err, NN_E_NOMEM, "%s: out of memory encoding the PNG", path);
        else
            rc = NN_FAIL(err, NN_E_IO, "%s: PNG encoding failed: %s", path,
                         m.msg[0] ? m.msg : "libpng could not be initialised");
        goto fail;
    }
    rc = nn_io_write_atomic(path, m.data, m.len, err);
fail:
    free(m.data);
    return rc;
}

/* ---- adversarial-example grid ---- */

/* Nominal 0..255 value to a byte: rounded (half up), clamped, NaN -> 0 (no undefined float->int cast). */
static uint8_t to_u8(double v) {
    if (!(v > 0.0)) return 0;
    if (v >= 255.0) return 255;
    return (uint8_t)round(v);
}

/* img[C,H,W] (C = 1 or 3) -> rgb[H*W*3], v shown as 255 * (v - lo) / (hi - lo). */
static void tile_image(uint8_t *rgb, const float *img, nn_shape s, double lo, double hi) {
    size_t hw = s.h * s.w;
    for (size_t p = 0; p < hw; p++) {
        for (size_t k = 0; k < 3; k++) {
            const float v = img[(s.c == 3 ? k : 0) * hw + p];
            rgb[3 * p + k] = to_u8(255.0 * ((double)v - lo) / (hi - lo));
        }
    }
}

/* x, xa [C,H,W] -> rgb[H*W*3]: the perturbation xa - x on the diverging map described in nn_png.h. */
static void tile_perturb(uint8_t *rgb, const float *x, const float *xa, nn_shape s) {
    size_t hw = s.h * s.w;
    double m = 0.0;
    for (size_t i = 0; i < s.c * hw; i++) {
        double d = fabs((double)xa[i] - (double)x[i]);
        if (d > m) m = d;
    }
    for (size_t p = 0; p < hw; p++) {
        double best = 0.0;
        for (size_t c = 0; c < s.c; c++) {
            double d = (double)xa[c * hw + p] - (double)x[c * hw + p];
            if (fabs(d) > fabs(best)) best = d;
        }
        double t = (m > 0.0 && isfinite(m)) ? best / m : 0.0;
        uint8_t f = to_u8(255.0 * (1.0 - fabs(t)));
        uint8_t *o = rgb + 3 * p;
        if (t > 0.0) {
            o[0] = 255, o[1] = f, o[2] = f;
        } else if (t < 0.0) {
            o[0] = f, o[1] = f, o[2] = 255;
        } else {
            o[0] = o[1] = o[2] = 255; /* zero (or NaN) perturbation */
        }
    }
}

/* Copies rgb[h*w*3] into canvas (cw pixels wide, RGB) at (x0, y0), each pixel as a scale x scale block. */
static void tile_blit(uint8_t *canvas, size_t cw, const uint8_t *rgb, size_t h, size_t w, size_t scale,
                      size_t x0, size_t y0) {
    for (size_t y = 0; y < h * scale; y++) {
        uint8_t *row = canvas + ((y0 + y) * cw + x0) * 3;
        const uint8_t *src = rgb + (y / scale) * w * 3;
        for (size_t x = 0; x < w * scale; x++)
            memcpy(row + 3 * x, src + (x / scale) * 3, 3);
    }
}

int nn_png_adv_grid(const char *path, const float *x, const float *x_adv, size_t n, nn_shape shape, float lo,
                    float hi, nn_err *err) {
    const char *name = path ? path : "(null)";
    if (!path || !x || !x_adv) return NN_FAIL(err, NN_E_INVAL, "%s: grid: NULL argument", name);
    if (n == 0) return NN_FAIL(err, NN_E_INVAL, "%s: grid of 0 samples", path);
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
        return NN_FAIL(err, NN_E_INVAL, "%s: grid value range [%g, %g] (need finite lo < hi)", path,
                       (double)lo, (double)hi);
    if ((shape.c != 1 && shape.c != 3) || shape.h == 0 || shape.w == 0)
        return NN_FAIL(err, NN_E_SHAPE, "%s: grid of images %zux%zux%zu (need C = 1 or 3, H, W >= 1)", path,
                       shape.c, shape.h, shape.w);
    if (shape.h > NN_PNG_MAX_SIDE || shape.w > NN_PNG_MAX_SIDE)
        return NN_FAIL(err, NN_E_INVAL, "%s: grid tiles %zux%zu too large", path, shape.h, shape.w);
    size_t rows = n < NN_PNG_GRID_MAX_ROWS ? n : NN_PNG_GRID_MAX_ROWS;
    size_t scale = (shape.h <= 32 && shape.w <= 32) ? 2 : 1, g = NN_PNG_GRID_GUTTER;
    size_t tw = shape.w * scale, th = shape.h * scale;
    size_t cw = 3 * tw + 2 * g, ch = rows * th + (rows - 1) * g;
    if (cw > NN_PNG_MAX_SIDE || ch > NN_PNG_MAX_SIDE)
        return NN_FAIL(err, NN_E_INVAL, "%s: grid would be %zux%zu pixels (max %u per side)", path, cw, ch,
                       NN_PNG_MAX_SIDE);
    size_t d = nn_shape_size(shape), hw = shape.h * shape.w;
    uint8_t *canvas = malloc(cw * ch * 3), *tile = malloc(hw * 3);
    int rc;
    if (!canvas || !tile) {
        rc = NN_FAIL(err, NN_E_NOMEM, "%s: out of memory for a %zux%zu grid", path, cw, ch);
        goto fail;
    }
    memset(canvas, NN_PNG_GRID_GUTTER_GREY, cw * ch * 3);
    for (size_t i = 0; i < rows; i++) {
        const float *xi = x + i * d, *ai = x_adv + i * d;
        size_t y0 = i * (th + g);
        tile_image(tile, xi, shape, lo, hi);
        tile_blit(canvas, cw, tile, shape.h, shape.w, scale, 0, y0);
        tile_image(tile, ai, shape, lo, hi);
        tile_blit(canvas, cw, tile, shape.h, shape.w, scale, tw + g, y0);
        tile_perturb(tile, xi, ai, shape);
        tile_blit(canvas, cw, tile, shape.h, shape.w, scale, 2 * (tw + g), y0);
    }
    rc = nn_png_write(path, canvas, cw, ch, 3, err);
fail:
    free(canvas);
    free(tile);
    return rc;
}
