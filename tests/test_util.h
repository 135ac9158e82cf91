/* test_util.h - shared helpers for the CMocka tests. Include after the standard headers and
 * <setjmp.h>/<stdarg.h>/<stddef.h>, before or after <cmocka.h> (it includes it). */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "nn_io.h"

/* Fails naming the index when |a[i] - b[i]| > atol + rtol * |b[i]| for some i. */
static inline void assert_close_array(const float *a, const float *b, size_t n, double atol, double rtol,
                                      const char *what) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            fail_msg("%s: index %zu: %.9g vs %.9g (|diff| %.3g > atol %.3g + rtol %.3g)", what, i, (double)a[i],
                     (double)b[i], d, atol, rtol);
        }
    }
}

#define assert_close(a, b, atol, rtol)                                                                       \
    do {                                                                                                     \
        double a_ = (double)(a), b_ = (double)(b);                                                           \
        if (!(fabs(a_ - b_) <= (atol) + (rtol)*fabs(b_)))                                                    \
            fail_msg("%s = %.9g vs %s = %.9g", #a, a_, #b, b_);                                              \
    } while (0)

/* Scalar function of x used by the finite-difference check. */
typedef double (*gc_fn)(void *ctx, const float *x);
/* Optional: return non-zero to skip coordinate i (e.g. within h of a ReLU kink or a max-pool tie). */
typedef int (*gc_skip_fn)(void *ctx, const float *x, size_t i, double h);

/* Central-difference check of analytic[n] = df/dx at x (x is restored). Checks at most max_coords
 * coordinates (all if n <= max_coords, else an evenly strided sample). Fails naming the coordinate
 * when |num - ana| > atol + rtol * max(|num|, |ana|). Returns how many coordinates were checked. */
static inline size_t gradcheck(gc_fn f, gc_skip_fn skip_fn, void *ctx, float *x, size_t n, const float *analytic,
                               double h, double atol, double rtol, size_t max_coords, const char *what) {
    size_t stride = n <= max_coords ? 1 : (n + max_coords - 1) / max_coords;
    size_t checked = 0;
    for (size_t i = (n > max_coords ? (stride / 2) : 0); i < n; i += stride) {
        if (skip_fn && skip_fn(ctx, x, i, h)) continue;
        float keep = x[i];
        x[i] = (float)((double)keep + h);
        double fp = f(ctx, x);
        x[i] = (float)((double)keep - h);
        double fm = f(ctx, x);
        double hh = ((double)(float)((double)keep + h) - (double)(float)((double)keep - h)); /* exact step */
        x[i] = keep;
        double num = (fp - fm) / hh, ana = (double)analytic[i];
        double scale = fmax(fabs(num), fabs(ana));
        if (!(fabs(num - ana) <= atol + rtol * scale))
            fail_msg("%s: coordinate %zu: numeric %.6g vs analytic %.6g", what, i, num, ana);
        checked++;
    }
    return checked;
}

/* Removes a file or a folder tree (like rm -rf), for the tests' temporary folders. */
static inline void rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[1024];
        int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (n > 0 && (size_t)n < sizeof sub) rm_rf(sub);
    }
    if (d) closedir(d);
    rmdir(path);
}

/* Writes an uncompressed IDX file (ubyte, ndim <= 3): magic {0, 0, 0x08, ndim}, big-endian uint32 dims, then
 * the n bytes of data, atomically; fails the test on error. */
static inline void test_write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data, size_t n) {
    uint8_t hdr[4 + 4 * 3] = {0, 0, 0x08, (uint8_t)ndim};
    for (int d = 0; d < ndim; d++)
        for (int b = 0; b < 4; b++)
            hdr[4 + 4 * d + b] = (uint8_t)(dims[d] >> (24 - 8 * b));
    const void *parts[2] = {hdr, data};
    size_t lens[2] = {4 + 4 * (size_t)ndim, n};
    assert_int_equal(nn_io_write_atomic_v(path, parts, lens, 2, NULL), 0);
}

/* How many times needle occurs in hay (overlapping occurrences counted). */
static inline size_t test_count_str(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

#endif
