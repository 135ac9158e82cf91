/* test_png.c - PNG writing (read back with libpng's simplified read API) and the adversarial grid.
 * Files go to a mkdtemp folder under /tmp, removed at the end. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>

#include "test_util.h"

#include "nn_png.h"

static char g_dir[256]; /* the temp folder of this run */

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/temper_test_png_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    rm_rf(g_dir);
    return 0;
}

static void path_in_dir(char *out, size_t cap, const char *name) {
    int n = snprintf(out, cap, "%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Number of entries in g_dir (to catch leftover temporary files). */
static size_t dir_count(void) {
    size_t n = 0;
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Reads path with libpng's simplified API as `format` (PNG_FORMAT_GRAY or _RGB). *file_format is the
 * format the file itself declares. Returns a malloc'ed buffer of w*h*channels bytes. */
static uint8_t *read_png(const char *path, png_uint_32 format, size_t *w, size_t *h,
                         png_uint_32 *file_format) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) fail_msg("%s: %s", path, img.message);
    *file_format = img.format;
    img.format = format;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(buf);
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) fail_msg("%s: %s", path, img.message);
    *w = img.width;
    *h = img.height;
    return buf;
}

/* ---- nn_png_write ---- */

static void roundtrip(const char *name, size_t w, size_t h, int channels) {
    char path[512];
    path_in_dir(path, sizeof path, name);
    size_t len = w * h * (size_t)channels;
    uint8_t *pix = malloc(len);
    assert_non_null(pix);
    for (size_t i = 0; i < len; i++)
        pix[i] = (uint8_t)((i * 37 + 11) & 255); /* every byte value occurs */
    nn_err err = {0};
    assert_int_equal(nn_png_write(path, pix, w, h, channels, &err), NN_OK);
    size_t rw, rh;
    png_uint_32 ff;
    png_uint_32 fmt = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    uint8_t *back = read_png(path, fmt, &rw, &rh, &ff);
    assert_int_equal(ff, fmt); /* the file's colour type is grey / RGB, 8-bit, no alpha */
    assert_int_equal(rw, w);
    assert_int_equal(rh, h);
    assert_memory_equal(back, pix, len);
    free(back);
    free(pix);
}

static void test_write_grey(void **state) {
    (void)state;
    roundtrip("grey.png", 5, 3, 1);
    roundtrip("grey_tall.png", 1, 300, 1);
}

static void test_write_rgb(void **state) {
    (void)state;
    roundtrip("rgb.png", 7, 4, 3);
    roundtrip("rgb_wide.png", 257, 2, 3);
}

/* The largest side accepted (2^16) works; one more is rejected. */
static void test_write_max_side(void **state) {
    (void)state;
    roundtrip("max_side.png", NN_PNG_MAX_SIDE, 1, 1);
}

/* A second write replaces the first and leaves no temporary file behind. */
static void test_write_replaces(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "replace.png");
    size_t before = dir_count();
    uint8_t a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {250, 0, 7, 8, 9, 10};
    nn_err err = {0};
    assert_int_equal(nn_png_write(path, a, 3, 2, 1, &err), NN_OK);
    assert_int_equal(nn_png_write(path, b, 2, 1, 3, &err), NN_OK);
    size_t rw, rh;
    png_uint_32 ff;
    uint8_t *back = read_png(path, PNG_FORMAT_RGB, &rw, &rh, &ff);
    assert_int_equal(ff, PNG_FORMAT_RGB);
    assert_int_equal(rw, 2);
    assert_int_equal(rh, 1);
    assert_memory_equal(back, b, 6);
    free(back);
    assert_int_equal(dir_count(), before + 1);
}

static void test_write_missing_folder(void **state) {
    (void)state;
    char dir[512], path[600];
    path_in_dir(dir, sizeof dir, "no_such_folder");
    snprintf(path, sizeof path, "%s/x.png", dir);
    size_t before = dir_count();
    uint8_t pix[4] = {0, 64, 128, 255};
    nn_err err = {0};
    assert_int_equal(nn_png_write(path, pix, 2, 2, 1, &err), NN_E_IO);
    assert_int_equal(err.code, NN_E_IO);
    if (!strstr(err.msg, path)) fail_msg("message does not name %s: %s", path, err.msg);
    assert_false(file_exists(path));
    assert_false(file_exists(dir));
    assert_int_equal(dir_count(), before);
}

static void test_write_invalid(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "invalid.png");
    static uint8_t pix[3 * 4];
    nn_err err = {0};
    assert_int_equal(nn_png_write(path, pix, 0, 2, 1, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, pix, 2, 0, 1, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, pix, (size_t)NN_PNG_MAX_SIDE + 1, 1, 1, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, pix, 1, (size_t)NN_PNG_MAX_SIDE + 1, 1, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, pix, SIZE_MAX, SIZE_MAX, 3, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, pix, 2, 2, 0, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, pix, 2, 2, 2, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, pix, 2, 2, 4, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, NULL, 2, 2, 1, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(NULL, pix, 2, 2, 1, &err), NN_E_INVAL);
    assert_int_equal(nn_png_write(path, pix, 2, 2, 1, NULL), NN_OK); /* err may be NULL */
    assert_int_equal(nn_png_write(path, pix, 2, 0, 1, NULL), NN_E_INVAL);
    unlink(path);
    assert_int_equal(nn_png_write(path, pix, 4, 0, 3, &err), NN_E_INVAL);
    assert_false(file_exists(path));
}

/* ---- nn_png_adv_grid ---- */

typedef struct rgb {
    uint8_t r, g, b;
} rgb;

/* Checks every pixel of a grid read back as RGB against the layout documented in nn_png.h: tiles of
 * scale*W x scale*H pixels, 2-pixel grey (200) gutters between tiles and rows, no border. tiles[r][t][p]
 * is the expected colour of source pixel p (row-major H x W) of tile t (0 original, 1 adversarial,
 * 2 perturbation) in row r. */
static void check_grid(const uint8_t *img, size_t cw, size_t ch, size_t rows, size_t H, size_t W,
                       size_t scale, const rgb *tiles) {
    size_t th = H * scale, tw = W * scale, g = 2;
    for (size_t y = 0; y < ch; y++) {
        for (size_t x = 0; x < cw; x++) {
            const uint8_t *px = img + (y * cw + x) * 3;
            size_t r = y / (th + g), yy = y % (th + g), t = x / (tw + g), xx = x % (tw + g);
            assert_true(r < rows && t < 3);
            rgb e = {200, 200, 200};
            if (yy < th && xx < tw) e = tiles[(r * 3 + t) * H * W + (yy / scale) * W + xx / scale];
            if (px[0] != e.r || px[1] != e.g || px[2] != e.b)
                fail_msg("pixel (x %zu, y %zu) = (%d,%d,%d), expected (%d,%d,%d)", x, y, px[0], px[1], px[2],
                         e.r, e.g, e.b);
        }
    }
}

static uint8_t *read_grid(const char *path, size_t *w, size_t *h) {
    png_uint_32 ff;
    uint8_t *img = read_png(path, PNG_FORMAT_RGB, w, h, &ff);
    assert_int_equal(ff, PNG_FORMAT_RGB); /* always RGB, even for grey inputs */
    return img;
}

/* Grey 2x3 images, two samples, lo = 0, hi = 1. All inputs and differences are dyadic (exact in float);
 * expected values derived by hand from the formulas in nn_png.h:
 *   grey = round(255 v) clamped: 0.25 -> 63.75 -> 64, 0.625 -> 159.375 -> 159, 0.375 -> 95.625 -> 96,
 *   0.9375 -> 239.06 -> 239, 0.125 -> 31.875 -> 32, 0.875 -> 223.125 -> 223, 0.5625 -> 143.44 -> 143,
 *   0.2578125 -> 65.74 -> 66, 0.244140625 -> 62.26 -> 62, -0.5 -> 0, 1.5 -> 255.
 *   perturbation, t = d / max|d| of the row, f = round(255 (1 - |t|)): t = 0 white, t = 1 (255,0,0),
 *   t = -1 (0,0,255), t = 0.25 -> f = 191.25 -> 191 -> (255,191,191), t = -0.75 -> f = 63.75 -> 64 ->
 *   (64,64,255). Row 1's perturbation is 64x smaller than row 0's but drawn just as strongly. */
static void test_grid_grey(void **state) {
    (void)state;
    const float x[12] = {0.0f,  0.25f, 0.625f, 1.0f,  0.375f, 0.9375f, /* d = 0, 1/8, -1/2, 0, 1/2, -3/8 */
                         -0.5f, 1.5f,  0.25f,  0.25f, 0.25f,  0.25f};  /* d = 0, 0, 2^-7, 0, -3*2^-9, 0 */
    const float xa[12] = {0.0f,  0.375f, 0.125f,     1.0f,  0.875f,       0.5625f,
                          -0.5f, 1.5f,   0.2578125f, 0.25f, 0.244140625f, 0.25f};
    const rgb W_ = {255, 255, 255}, RED = {255, 0, 0}, BLUE = {0, 0, 255};
    const rgb P25 = {255, 191, 191}, M75 = {64, 64, 255};
#define G_(v)                                                                                                \
    { v, v, v }
    const rgb tiles[2 * 3 * 6] = {
        G_(0), G_(64),  G_(159), G_(255), G_(96),  G_(239), /* row 0 original */
        G_(0), G_(96),  G_(32),  G_(255), G_(223), G_(143), /* row 0 adversarial */
        W_,    P25,     BLUE,    W_,      RED,     M75,     /* row 0 perturbation */
        G_(0), G_(255), G_(64),  G_(64),  G_(64),  G_(64),  /* row 1 original (clamped) */
        G_(0), G_(255), G_(66),  G_(64),  G_(62),  G_(64),  /* row 1 adversarial */
        W_,    W_,      RED,     W_,      M75,     W_,      /* row 1 perturbation */
    };
#undef G_
    char path[512];
    path_in_dir(path, sizeof path, "grid_grey.png");
    nn_err err = {0};
    assert_int_equal(nn_png_adv_grid(path, x, xa, 2, (nn_shape){1, 2, 3}, 0.0f, 1.0f, &err), NN_OK);
    size_t w, h;
    uint8_t *img = read_grid(path, &w, &h);
    /* x2 upscale (H, W <= 32): tiles 6x4; width 3*6 + 2*2 = 22, height 2*4 + 2 = 10 */
    assert_int_equal(w, 22);
    assert_int_equal(h, 10);
    check_grid(img, w, h, 2, 2, 3, 2, tiles);
    free(img);
}

/* RGB 1x2 images (NCHW planes), lo = -1, hi = 1: grey value 255 (v + 1) / 2, by hand:
 *   pixel 0: x (-1, 0.625, 0.25) -> (0, 207, 159); x_adv (-0.75, 0.125, 0.25) -> (32, 143, 159);
 *   pixel 1: x (1, -0.5, -0.75) -> (255, 64, 32); x_adv (1.125, -0.5, -0.8125) -> (255, 64, 24).
 *   d pixel 0 = (0.25, -0.5, 0): the largest |d| is green's -0.5 (the channel mean would be -1/12),
 *   max |d| = 0.5 -> t = -1 -> blue; d pixel 1 = (0.125, 0, -0.0625) -> t = 0.25 -> (255, 191, 191). */
static void test_grid_rgb(void **state) {
    (void)state;
    const float x[6] = {-1.0f, 1.0f, 0.625f, -0.5f, 0.25f, -0.75f};
    const float xa[6] = {-0.75f, 1.125f, 0.125f, -0.5f, 0.25f, -0.8125f};
    const rgb tiles[3 * 2] = {{0, 207, 159}, {255, 64, 32}, {32, 143, 159},
                              {255, 64, 24}, {0, 0, 255},   {255, 191, 191}};
    char path[512];
    path_in_dir(path, sizeof path, "grid_rgb.png");
    nn_err err = {0};
    assert_int_equal(nn_png_adv_grid(path, x, xa, 1, (nn_shape){3, 1, 2}, -1.0f, 1.0f, &err), NN_OK);
    size_t w, h;
    uint8_t *img = read_grid(path, &w, &h);
    assert_int_equal(w, 3 * 4 + 4);
    assert_int_equal(h, 2);
    check_grid(img, w, h, 1, 1, 2, 2, tiles);
    free(img);
}

/* More than 64 samples: only the first 64 rows; 1x1 tiles x2 -> 2x2, height 64*2 + 63*2 = 254.
 * Also: an all-zero perturbation row is white, and tiles taller than 32 are not upscaled. */
static void test_grid_rows_and_scale(void **state) {
    (void)state;
    enum { N = 70 };
    float x[N], xa[N];
    for (size_t i = 0; i < N; i++)
        x[i] = xa[i] = (float)i / 80.0f;
    rgb tiles[64 * 3];
    for (size_t i = 0; i < 64; i++) {
        /* the documented mapping round(255 (v - lo) / (hi - lo)), lo = 0, hi = 1 */
        uint8_t v = (uint8_t)lround(255.0 * (double)x[i]);
        tiles[i * 3] = tiles[i * 3 + 1] = (rgb){v, v, v};
        tiles[i * 3 + 2] = (rgb){255, 255, 255};
    }
    char path[512];
    path_in_dir(path, sizeof path, "grid_rows.png");
    nn_err err = {0};
    assert_int_equal(nn_png_adv_grid(path, x, xa, N, (nn_shape){1, 1, 1}, 0.0f, 1.0f, &err), NN_OK);
    size_t w, h;
    uint8_t *img = read_grid(path, &w, &h);
    assert_int_equal(w, 10);
    assert_int_equal(h, 254);
    check_grid(img, w, h, 64, 1, 1, 2, tiles);
    free(img);

    /* H = 33 > 32: drawn 1:1, 3*2 + 4 = 10 wide, 33 tall */
    float y[66], ya[66];
    for (size_t i = 0; i < 66; i++)
        y[i] = ya[i] = 0.5f;
    path_in_dir(path, sizeof path, "grid_noscale.png");
    assert_int_equal(nn_png_adv_grid(path, y, ya, 1, (nn_shape){1, 33, 2}, 0.0f, 1.0f, &err), NN_OK);
    img = read_grid(path, &w, &h);
    assert_int_equal(w, 10);
    assert_int_equal(h, 33);
    free(img);
}

static void test_grid_errors(void **state) {
    (void)state;
    char path[512], dir[512], missing[600];
    path_in_dir(path, sizeof path, "grid_bad.png");
    path_in_dir(dir, sizeof dir, "missing");
    snprintf(missing, sizeof missing, "%s/grid.png", dir);
    const float x[4] = {0}, xa[4] = {0};
    nn_shape s = {1, 2, 2};
    size_t before = dir_count();
    nn_err err = {0};
    assert_int_equal(nn_png_adv_grid(path, x, xa, 0, s, 0.0f, 1.0f, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(path, x, xa, 1, s, 1.0f, 1.0f, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(path, x, xa, 1, s, 1.0f, 0.0f, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(path, x, xa, 1, s, 0.0f, INFINITY, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(path, x, xa, 1, s, NAN, 1.0f, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(path, NULL, xa, 1, s, 0.0f, 1.0f, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(path, x, NULL, 1, s, 0.0f, 1.0f, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(NULL, x, xa, 1, s, 0.0f, 1.0f, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(path, x, xa, 1, (nn_shape){2, 1, 2}, 0.0f, 1.0f, &err), NN_E_SHAPE);
    assert_int_equal(nn_png_adv_grid(path, x, xa, 1, (nn_shape){1, 0, 2}, 0.0f, 1.0f, &err), NN_E_SHAPE);
    /* 3 tiles of 30000 columns (not upscaled: W > 32) are wider than 2^16: rejected before drawing */
    assert_int_equal(nn_png_adv_grid(path, x, xa, 1, (nn_shape){1, 1, 30000}, 0.0f, 1.0f, &err), NN_E_INVAL);
    assert_int_equal(nn_png_adv_grid(missing, x, xa, 1, s, 0.0f, 1.0f, &err), NN_E_IO);
    if (!strstr(err.msg, missing)) fail_msg("message does not name %s: %s", missing, err.msg);
    assert_false(file_exists(path));
    assert_false(file_exists(missing));
    assert_int_equal(dir_count(), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_grey),
        cmocka_unit_test(test_write_rgb),
        cmocka_unit_test(test_write_max_side),
        cmocka_unit_test(test_write_replaces),
        cmocka_unit_test(test_write_missing_folder),
        cmocka_unit_test(test_write_invalid),
        cmocka_unit_test(test_grid_grey),
        cmocka_unit_test(test_grid_rgb),
        cmocka_unit_test(test_grid_rows_and_scale),
        cmocka_unit_test(test_grid_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
