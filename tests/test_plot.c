/* test_plot.c - exp_plot: nice ticks, histogram bins, well-formed escaped SVG, PNG decoded back with libpng
 * (size, series colours, markers at the SVG's coordinates), errors. Files go to a mkdtemp folder. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "test_util.h"

#include "exp_plot.h"
#include "nn_io.h"
#include "nn_json.h"

static char g_dir[256];

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/temper_test_plot_XXXXXX");
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

/* ---- axes and ticks ---- */

/* Properties every axis has: >= 2 ticks, strictly increasing, inside [lo, hi], [lo, hi] covers the data;
 * linear: evenly spaced by 1, 2 or 5 x 10^k; fitted linear: the first and last ticks are the range ends. */
static void check_axis(const exp_plot_axis *a, double dmin, double dmax, int fixed) {
    assert_true(a->n_ticks >= 2 && a->n_ticks <= 12);
    assert_true(a->lo <= dmin && a->hi >= dmax && a->lo < a->hi);
    for (size_t i = 0; i < a->n_ticks; i++) {
        assert_true(a->ticks[i] >= a->lo && a->ticks[i] <= a->hi);
        if (i) assert_true(a->ticks[i] > a->ticks[i - 1]);
    }
    if (a->log) return;
    double step = a->ticks[1] - a->ticks[0], m = step / pow(10, floor(log10(step) + 1e-9));
    assert_true(fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6);
    for (size_t i = 1; i < a->n_ticks; i++)
        assert_true(fabs(a->ticks[i] - a->ticks[i - 1] - step) < 1e-9 * (1 + fabs(step)));
    if (!fixed) {
        assert_true(a->ticks[0] == a->lo && a->ticks[a->n_ticks - 1] == a->hi);
        assert_true(a->hi - a->lo <= 2.5 * (dmax - dmin) + 1e-12); /* not absurdly wide */
    }
}

static void test_ticks_linear(void **state) {
    (void)state;
    exp_plot_axis a;
    nn_err err = {0};
    assert_int_equal(exp_plot_axis_make(0, 1, 0, 0, &a, &err), NN_OK);
    check_axis(&a, 0, 1, 0);
    assert_true(a.lo == 0 && a.hi == 1);
    assert_int_equal(exp_plot_axis_make(0, 0.3, 0, 0, &a, &err), NN_OK);
    check_axis(&a, 0, 0.3, 0);
    assert_true(a.lo == 0 &&
                a.hi == 0.3); /* ticks k * 5 / 100 are exact decimals: 0.3, not 0.30000000000000004 */
    assert_int_equal(exp_plot_axis_make(-3.7, -0.2, 0, 0, &a, &err), NN_OK);
    check_axis(&a, -3.7, -0.2, 0);
    assert_true(a.hi <= 0);
    for (size_t i = 0; i < a.n_ticks; i++)
        assert_false(signbit(a.ticks[i]) && a.ticks[i] == 0); /* no -0 */
    assert_int_equal(exp_plot_axis_make(0.013, 0.29, 0, 0, &a, &err), NN_OK);
    check_axis(&a, 0.013, 0.29, 0);
    assert_int_equal(exp_plot_axis_make(-250, 1e4, 0, 0, &a, &err), NN_OK);
    check_axis(&a, -250, 1e4, 0);
    /* a single value widens by 10% (or 1 around 0) */
    assert_int_equal(exp_plot_axis_make(5, 5, 0, 0, &a, &err), NN_OK);
    check_axis(&a, 4.5, 5.5, 0);
    assert_int_equal(exp_plot_axis_make(0, 0, 0, 0, &a, &err), NN_OK);
    check_axis(&a, -1, 1, 0);
    /* no data: 0..1 */
    assert_int_equal(exp_plot_axis_make(NAN, NAN, 0, 0, &a, &err), NN_OK);
    check_axis(&a, 0, 1, 0);
    assert_true(a.lo == 0 && a.hi == 1);
    /* fixed 0..1: exactly that range, ticks every 0.2 (step nice(1/5) = 0.2) */
    assert_int_equal(exp_plot_axis_make(0, 1, 0, 1, &a, &err), NN_OK);
    check_axis(&a, 0, 1, 1);
    assert_true(a.lo == 0 && a.hi == 1);
    assert_int_equal(a.n_ticks, 6);
    assert_close(a.ticks[3], 0.6, 1e-15, 0);
    /* fixed range not on tick multiples: the range stays, ticks are the multiples inside */
    assert_int_equal(exp_plot_axis_make(0.03, 0.97, 0, 1, &a, &err), NN_OK);
    check_axis(&a, 0.03, 0.97, 1);
    assert_true(a.lo == 0.03 && a.hi == 0.97 && a.ticks[0] > 0.03);
}

static void test_ticks_log(void **state) {
    (void)state;
    exp_plot_axis a;
    nn_err err = {0};
    /* 2 decades: ticks at 1, 2, 5 x 10^k */
    assert_int_equal(exp_plot_axis_make(1, 100, 1, 0, &a, &err), NN_OK);
    check_axis(&a, 1, 100, 0);
    const double want[7] = {1, 2, 5, 10, 20, 50, 100};
    assert_int_equal(a.n_ticks, 7);
    for (size_t i = 0; i < 7; i++)
        assert_close(a.ticks[i], want[i], 0, 1e-12);
    assert_true(a.lo == 1 && a.hi == 100);
    /* within one decade: widened to the whole decade */
    assert_int_equal(exp_plot_axis_make(0.3, 0.7, 1, 0, &a, &err), NN_OK);
    check_axis(&a, 0.3, 0.7, 0);
    assert_close(a.lo, 0.1, 0, 1e-12);
    assert_close(a.hi, 1, 0, 1e-12);
    /* 9 decades: powers of ten only, at most 9 ticks */
    assert_int_equal(exp_plot_axis_make(1e-3, 1e6, 1, 0, &a, &err), NN_OK);
    check_axis(&a, 1e-3, 1e6, 0);
    assert_true(a.n_ticks <= 9);
    for (size_t i = 0; i < a.n_ticks; i++)
        assert_close(log10(a.ticks[i]), round(log10(a.ticks[i])), 1e-9, 0);
    /* a single value and no data */
    assert_int_equal(exp_plot_axis_make(10, 10, 1, 0, &a, &err), NN_OK);
    check_axis(&a, 10, 10, 0);
    assert_int_equal(exp_plot_axis_make(NAN, NAN, 1, 0, &a, &err), NN_OK);
    check_axis(&a, 1, 10, 0);
}

static void test_ticks_errors(void **state) {
    (void)state;
    exp_plot_axis a;
    nn_err err = {0};
    assert_int_equal(exp_plot_axis_make(0, 1, 0, 0, NULL, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_axis_make(NAN, 1, 0, 0, &a, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_axis_make(2, 1, 0, 0, &a, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_axis_make(0, INFINITY, 0, 0, &a, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_axis_make(-1e308, 1e308, 0, 0, &a, &err), NN_E_INVAL); /* range overflows */
    assert_int_equal(exp_plot_axis_make(0, 10, 1, 0, &a, &err), NN_E_INVAL);
    assert_non_null(strstr(err.msg, "log"));
    assert_int_equal(exp_plot_axis_make(1, 10, 1, 1, &a, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_axis_make(1, 1, 0, 1, &a, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_axis_make(NAN, NAN, 0, 1, &a, &err), NN_E_INVAL);
}

/* ---- histogram bins ---- */

static void test_hist_bins(void **state) {
    (void)state;
    nn_err err = {0};
    double lo, w;
    size_t nb, c[16];
    /* 5 bins over [0, 10]: width 2; 2 lies on an inner edge (goes right), 10 on the last edge (kept) */
    const double v[8] = {0, 1, 2, 3, 4, 10, NAN, INFINITY};
    exp_plot_series s = {"a", v, NULL, 8};
    assert_int_equal(exp_plot_hist_bins(&s, 1, 5, &lo, &w, &nb, &err), NN_OK);
    assert_true(lo == 0 && w == 2 && nb == 5);
    assert_int_equal(exp_plot_hist_count(v, 8, lo, w, nb, c), 6);
    const size_t want[5] = {2, 2, 1, 0, 1};
    for (size_t b = 0; b < 5; b++)
        assert_int_equal(c[b], want[b]);
    /* exact binary edges: 0.5 and 1.0 go to the right of their edges; outside values are not counted */
    const double e[5] = {0.5, 1.0, 1.49, -0.01, 1.51};
    assert_int_equal(exp_plot_hist_count(e, 5, 0, 0.5, 3, c), 3);
    assert_true(c[0] == 0 && c[1] == 1 && c[2] == 2);
    /* the edges lo + b*width decide, not the rounding of (x - lo) / width: 1.7 / 0.1 gives 17 but
     * 1.7 < 17 * 0.1 (= 1.7000000000000002), 4.3 / 0.1 gives 42 but 4.3 >= 43 * 0.1 (IEEE doubles) */
    size_t c100[100];
    for (size_t k = 0; k < 100; k++) {
        const double xk = (double)k / 10;
        assert_int_equal(exp_plot_hist_count(&xk, 1, 0, 0.1, 100, c100), 1);
        size_t b = 0;
        while (!c100[b])
            b++;
        assert_true((double)b * 0.1 <= xk && xk < (double)(b + 1) * 0.1);
        if (k == 17) assert_int_equal(b, 16);
        if (k == 43) assert_int_equal(b, 43);
    }
    /* shared edges over two series */
    const double a1[2] = {0, 1}, a2[2] = {9, 10};
    exp_plot_series two[2] = {{"a", a1, NULL, 2}, {"b", a2, NULL, 2}};
    assert_int_equal(exp_plot_hist_bins(two, 2, 2, &lo, &w, &nb, &err), NN_OK);
    assert_true(lo == 0 && w == 5 && nb == 2);
    /* automatic: 100 values (i + 0.5) / 100 over 0.005..0.995; Sturges ceil(log2 100) + 1 = 8 bins of
     * 0.124 rounds to width 0.1, lo aligned to 0 -> 10 bins of 10 values each */
    double u[100];
    for (size_t i = 0; i < 100; i++)
        u[i] = ((double)i + 0.5) / 100;
    exp_plot_series su = {"u", u, NULL, 100};
    assert_int_equal(exp_plot_hist_bins(&su, 1, 0, &lo, &w, &nb, &err), NN_OK);
    assert_true(lo == 0 && nb == 10);
    assert_close(w, 0.1, 1e-15, 0);
    assert_int_equal(exp_plot_hist_count(u, 100, lo, w, nb, c), 100);
    for (size_t b = 0; b < 10; b++)
        assert_int_equal(c[b], 10);
    /* all equal: widened to v +- 0.5; no values: 0..1 */
    const double k[3] = {7, 7, 7};
    exp_plot_series sk = {"k", k, NULL, 3};
    assert_int_equal(exp_plot_hist_bins(&sk, 1, 4, &lo, &w, &nb, &err), NN_OK);
    assert_true(lo == 6.5 && w == 0.25 && nb == 4);
    assert_int_equal(exp_plot_hist_count(k, 3, lo, w, nb, c), 3);
    assert_int_equal(c[2], 3);
    assert_int_equal(exp_plot_hist_bins(NULL, 0, 0, &lo, &w, &nb, &err), NN_OK);
    assert_true(lo <= 0 && lo + (double)nb * w >= 1);
    /* errors */
    assert_int_equal(exp_plot_hist_bins(&s, 1, EXP_PLOT_MAX_BINS + 1, &lo, &w, &nb, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_hist_bins(NULL, 1, 0, &lo, &w, &nb, &err), NN_E_INVAL);
    exp_plot_series bad = {"x", NULL, NULL, 3};
    assert_int_equal(exp_plot_hist_bins(&bad, 1, 0, &lo, &w, &nb, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_hist_bins(&s, 1, 0, NULL, &w, &nb, &err), NN_E_INVAL);
}

/* ---- SVG ---- */

/* 1 if s starts with a predefined XML entity or a character reference. */
static int entity_ok(const char *s) {
    static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"};
    for (size_t i = 0; i < 6; i++)
        if (!strncmp(s, ents[i], strlen(ents[i]))) return 1;
    return 0;
}

/* A small well-formedness check: one <svg> root, every element closed in order (self-closing allowed),
 * no '<' or unescaped '&' in text or attribute values, attribute values quoted. Returns the number of
 * elements. */
static size_t check_xml(const char *s) {
    char stack[64][32];
    size_t depth = 0, elems = 0, roots = 0;
    assert_true(!strncmp(s, "<?xml", 5));
    s = strstr(s, "?>") + 2;
    while (*s) {
        if (*s != '<') {
            if (*s == '&' && !entity_ok(s)) fail_msg("unescaped '&' in text: %.20s", s);
            if (*s == '>') fail_msg("'>' in text");
            if (depth == 0 && !strchr(" \n", *s)) fail_msg("text outside the root: %.20s", s);
            s++;
            continue;
        }
        int closing = s[1] == '/';
        const char *name = s + 1 + closing;
        size_t nl = strcspn(name, " />\n");
        assert_true(nl > 0 && nl < 32);
        const char *q = name + nl;
        while (*q && *q != '>') { /* attributes: name="value" */
            if (*q == '"') {
                for (q++; *q != '"'; q++) {
                    assert_true(*q && *q != '<');
                    if (*q == '&' && !entity_ok(q)) fail_msg("unescaped '&' in an attribute: %.20s", q);
                }
            } else if (*q == '<')
                fail_msg("'<' inside a tag");
            q++;
        }
        assert_int_equal(*q, '>');
        int self = q[-1] == '/';
        if (closing) {
            assert_true(depth > 0);
            depth--;
            if (strncmp(stack[depth], name, nl) || stack[depth][nl])
                fail_msg("</%.*s> closes <%s>", (int)nl, name, stack[depth]);
        } else {
            elems++;
            if (depth == 0) roots++, assert_true(!strncmp(name, "svg", nl) && nl == 3);
            if (!self) {
                assert_true(depth < 64);
                memcpy(stack[depth], name, nl);
                stack[depth++][nl] = 0;
            }
        }
        s = q + 1;
    }
    assert_int_equal(depth, 0);
    assert_int_equal(roots, 1);
    return elems;
}

static size_t count(const char *s, const char *what) {
    size_t n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

static void test_svg_line(void **state) {
    (void)state;
    const double x[4] = {0.12, 0.2, 0.28, 0.37};
    const double y0[4] = {0.8, 0.75, 0.7, 0.85}, y1[4] = {0.5, NAN, 0.45, 0.55},
                 y2[4] = {0.2, 0.15, 0.3, NAN};
    const exp_plot_series s[3] = {
        {"a & b <c> \"q\" 'x'", x, y0, 4}, {"\xCE\xB5-trained", x, y1, 4}, {"bad \xff byte", x, y2, 4}};
    exp_plot_spec p = exp_plot_spec_default();
    p.title = "robust accuracy vs \xCE\xB5";
    p.xlabel = "eps";
    p.ylabel = "robust accuracy (%)";
    p.y_fixed = 1, p.y_min = 0, p.y_max = 1, p.y_format = EXP_PLOT_FMT_PERCENT;
    p.series = s, p.n_series = 3;
    nn_jbuf b = {0};
    nn_err err = {0};
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    check_xml(b.p);
    assert_non_null(strstr(b.p, "width=\"800\" height=\"500\" viewBox=\"0 0 800 500\""));
    assert_non_null(strstr(b.p, ">robust accuracy vs \xCE\xB5</text>"));
    assert_non_null(strstr(b.p, ">eps</text>"));
    assert_non_null(strstr(b.p, ">robust accuracy (%)</text>"));
    assert_non_null(strstr(b.p, ">a &amp; b &lt;c&gt; &quot;q&quot; &apos;x&apos;</text>"));
    assert_non_null(strstr(b.p, ">\xCE\xB5-trained</text>"));
    assert_non_null(strstr(b.p, ">bad \xEF\xBF\xBD byte</text>")); /* invalid UTF-8 -> U+FFFD */
    assert_non_null(strstr(b.p, ">100%</text>"));
    assert_non_null(strstr(b.p, ">20%</text>"));
    assert_non_null(strstr(b.p, ">0.15</text>")); /* x ticks 0.10..0.40 by 0.05 */
    /* polylines: series 0 one of 4 points, series 1 split at NaN into 1 + 2, series 2 one of 3 points */
    assert_int_equal(count(b.p, "<polyline"), 4);
    const char *pl = b.p;
    const size_t want_pts[4] = {4, 1, 2, 3};
    const uint32_t want_col[4] = {EXP_PLOT_PALETTE[0], EXP_PLOT_PALETTE[1], EXP_PLOT_PALETTE[1],
                                  EXP_PLOT_PALETTE[2]};
    for (size_t i = 0; i < 4; i++) {
        pl = strstr(pl, "<polyline");
        char col[16];
        snprintf(col, sizeof col, "\"#%06x\"", want_col[i]);
        const char *pts = strstr(pl, "points=\"") + 8, *end = strchr(pts, '"');
        assert_true(strstr(pl, col) && strstr(pl, col) < end);
        size_t n = 1;
        for (const char *q = pts; q < end; q++)
            n += *q == ' ';
        assert_int_equal(n, want_pts[i]);
        pl = end;
    }
    /* markers: the 10 non-NaN points plus one legend dot per series */
    assert_int_equal(count(b.p, "<circle"), 10 + 3);
    nn_jbuf_free(&b);
}

/* Pixel x of the points of the first polyline. */
static size_t polyline_xs(const char *svg, double *xs, size_t cap) {
    const char *p = strstr(strstr(svg, "<polyline"), "points=\"") + 8;
    size_t n = 0;
    while (*p != '"' && n < cap) {
        char *end;
        xs[n++] = strtod(p, &end);
        p = strchr(end, ',') + 1;
        strtod(p, &end);
        p = end + (*end == ' ');
    }
    return n;
}

static void test_svg_log_and_hist(void **state) {
    (void)state;
    const double x[3] = {1, 10, 100}, y[3] = {0.9, 0.5, 0.1};
    exp_plot_series s = {"JSMA", x, y, 3};
    exp_plot_spec p = exp_plot_spec_default();
    p.log_x = 1, p.xlabel = "T", p.series = &s, p.n_series = 1;
    nn_jbuf b = {0};
    nn_err err = {0};
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    check_xml(b.p);
    double xs[3];
    assert_int_equal(polyline_xs(b.p, xs, 3), 3);
    assert_close(xs[1] - xs[0], xs[2] - xs[1], 0.02, 0); /* equal steps per decade */
    assert_true(xs[1] > xs[0]);
    assert_non_null(strstr(b.p, ">50</text>"));
    nn_jbuf_free(&b);

    /* histogram: bars (rects with a fill-opacity) of both series, shared edges */
    const double v1[6] = {0.1, 0.2, 0.25, 0.35, 0.9, NAN}, v2[3] = {0.6, 0.65, 0.62};
    exp_plot_series h[2] = {{"FGSM", v1, NULL, 6}, {"C&W", v2, NULL, 3}};
    exp_plot_spec q = exp_plot_spec_default();
    q.kind = EXP_PLOT_HIST, q.bins = 4, q.series = h, q.n_series = 2, q.ylabel = "count";
    assert_int_equal(exp_plot_svg(&q, &b, &err), NN_OK);
    check_xml(b.p);
    /* 4 bins of width 0.2 from 0.1 (no value near an edge): series 0 fills bins 0, 1, 3, series 1 bin 2 -> 4
     * bars + 2 legend swatches */
    assert_int_equal(count(b.p, "fill-opacity"), 6);
    assert_non_null(strstr(b.p, ">C&amp;W</text>"));
    nn_jbuf_free(&b);
}

/* ---- PNG ---- */

static uint8_t *read_png(const char *path, size_t *w, size_t *h) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char sig[8];
    assert_int_equal(fread(sig, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) fail_msg("%s: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(buf);
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) fail_msg("%s: %s", path, img.message);
    *w = img.width;
    *h = img.height;
    return buf;
}

static uint32_t pixel(const uint8_t *pix, size_t w, size_t x, size_t y) {
    const uint8_t *q = pix + (y * w + x) * 3;
    return (uint32_t)q[0] << 16 | (uint32_t)q[1] << 8 | q[2];
}

static size_t count_colour(const uint8_t *pix, size_t w, size_t h, uint32_t rgb) {
    size_t n = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            n += pixel(pix, w, x, y) == rgb;
    return n;
}

static void test_png_line(void **state) {
    (void)state;
    const double x[4] = {0.12, 0.2, 0.28, 0.37};
    const double y0[4] = {0.8, 0.75, 0.7, 0.85}, y1[4] = {0.5, NAN, 0.45, 0.55},
                 y2[4] = {0.2, 0.15, 0.3, 0.25};
    const exp_plot_series s[3] = {
        {"baseline", x, y0, 4}, {"distilled T=100", x, y1, 4}, {"\xCE\xB5", x, y2, 4}};
    exp_plot_spec p = exp_plot_spec_default();
    p.title = "robust accuracy";
    p.xlabel = "eps";
    p.ylabel = "acc";
    p.y_fixed = 1, p.y_min = 0, p.y_max = 1;
    p.series = s, p.n_series = 3;
    char path[512];
    path_in_dir(path, sizeof path, "line.png");
    nn_err err = {0};
    size_t before = dir_count();
    assert_int_equal(exp_plot_png(&p, path, &err), NN_OK);
    assert_int_equal(dir_count(), before + 1); /* no temporary file left */
    size_t w, h;
    uint8_t *pix = read_png(path, &w, &h);
    assert_true(w == 800 && h == 500);
    assert_int_equal(pixel(pix, w, 0, 0), 0xFFFFFF);
    for (size_t i = 0; i < 3; i++)
        assert_true(count_colour(pix, w, h, EXP_PLOT_PALETTE[i]) > 100);
    assert_int_equal(count_colour(pix, w, h, EXP_PLOT_PALETTE[3]), 0);
    /* the SVG of the same spec: every marker's centre pixel has the marker's colour in the PNG */
    nn_jbuf b = {0};
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    size_t n = 0;
    for (const char *c = strstr(b.p, "<circle"); c; c = strstr(c + 1, "<circle"), n++) {
        double cx, cy;
        unsigned col;
        assert_int_equal(
            sscanf(c, "<circle cx=\"%lf\" cy=\"%lf\" r=\"%*[0-9.]\" fill=\"#%6x\"", &cx, &cy, &col), 3);
        assert_true(cx >= 0 && cy >= 0 && cx < (double)w && cy < (double)h);
        if (pixel(pix, w, (size_t)cx, (size_t)cy) != col)
            fail_msg("marker %zu at (%.2f, %.2f): PNG pixel #%06x, SVG fill #%06x", n, cx, cy,
                     pixel(pix, w, (size_t)cx, (size_t)cy), col);
    }
    assert_int_equal(n, 11 + 3);
    nn_jbuf_free(&b);
    free(pix);
}

/* A two-point series drawn as a continuous line: every pixel column (shallow line) or row (steep line)
 * between the two markers (centres taken from the SVG) holds a pixel of the series colour. */
static void check_segment(const double *x, const double *y, int steep) {
    exp_plot_series s = {NULL, x, y, 2};
    exp_plot_spec p = exp_plot_spec_default();
    p.series = &s, p.n_series = 1, p.y_fixed = 1, p.y_min = 0, p.y_max = 1;
    char path[512];
    path_in_dir(path, sizeof path, "segment.png");
    nn_err err = {0};
    nn_jbuf b = {0};
    assert_int_equal(exp_plot_png(&p, path, &err), NN_OK);
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    double c[4];
    const char *q = strstr(b.p, "<circle");
    assert_int_equal(sscanf(q, "<circle cx=\"%lf\" cy=\"%lf\"", &c[0], &c[1]), 2);
    assert_int_equal(sscanf(strstr(q + 1, "<circle"), "<circle cx=\"%lf\" cy=\"%lf\"", &c[2], &c[3]), 2);
    nn_jbuf_free(&b);
    size_t w, h;
    uint8_t *pix = read_png(path, &w, &h);
    size_t a = (size_t)fmin(c[steep], c[2 + steep]), z = (size_t)fmax(c[steep], c[2 + steep]);
    assert_true(z > a + 100);
    for (size_t i = a; i <= z; i++) {
        size_t hits = 0;
        for (size_t j = 0; j < (steep ? w : h); j++)
            hits += pixel(pix, w, steep ? j : i, steep ? i : j) == EXP_PLOT_PALETTE[0];
        if (!hits) fail_msg("%s %zu has no line pixel", steep ? "row" : "column", i);
    }
    free(pix);
}

static void test_png_continuous(void **state) {
    (void)state;
    const double x[2] = {0.12, 0.88}, y[2] = {0.1, 0.9}, xv[2] = {0.5, 0.5}; /* away from the frame */
    check_segment(x, y, 0);                                                  /* shallow diagonal */
    check_segment(xv, y, 1);                                                 /* vertical */
}

static void test_png_hist_blank_size(void **state) {
    (void)state;
    nn_err err = {0};
    char path[512];
    size_t w, h;
    /* a blank plot: only axes */
    exp_plot_spec p = exp_plot_spec_default();
    path_in_dir(path, sizeof path, "blank.png");
    assert_int_equal(exp_plot_png(&p, path, &err), NN_OK);
    uint8_t *pix = read_png(path, &w, &h);
    assert_true(w == 800 && h == 500);
    for (size_t i = 0; i < EXP_PLOT_N_PALETTE; i++)
        assert_int_equal(count_colour(pix, w, h, EXP_PLOT_PALETTE[i]), 0);
    assert_true(count_colour(pix, w, h, 0x222222) > 500); /* frame, ticks, tick labels */
    free(pix);
    /* an overlaid histogram at a custom size: both colours appear (bar outlines) */
    double v1[50], v2[40];
    for (size_t i = 0; i < 50; i++)
        v1[i] = sin((double)i) + 1;
    for (size_t i = 0; i < 40; i++)
        v2[i] = 0.5 * cos((double)i) + 2;
    exp_plot_series hs[2] = {{"L2", v1, NULL, 50}, {"Linf", v2, NULL, 40}};
    p.kind = EXP_PLOT_HIST, p.series = hs, p.n_series = 2, p.width = 400, p.height = 300, p.hist_frac = 1;
    p.y_format = EXP_PLOT_FMT_PERCENT, p.title = "distortion";
    path_in_dir(path, sizeof path, "hist.png");
    assert_int_equal(exp_plot_png(&p, path, &err), NN_OK);
    pix = read_png(path, &w, &h);
    assert_true(w == 400 && h == 300);
    assert_true(count_colour(pix, w, h, EXP_PLOT_PALETTE[0]) > 50);
    assert_true(count_colour(pix, w, h, EXP_PLOT_PALETTE[1]) > 50);
    free(pix);
    /* the SVG writer to a file: the same text as in memory */
    nn_jbuf b = {0};
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    path_in_dir(path, sizeof path, "hist.svg");
    assert_int_equal(exp_plot_svg_write(&p, path, &err), NN_OK);
    char *text;
    size_t len;
    assert_int_equal(nn_io_read_all(path, &text, &len, &err), NN_OK);
    assert_true(len == b.len && !memcmp(text, b.p, len));
    check_xml(text);
    free(text);
    nn_jbuf_free(&b);
}

/* ---- text inside the image: legend column, truncation, long titles ---- */

#define ADV 12.0 /* the 5x7 font's advance at scale 2 (the layout's unit for text width) */

/* One <text> element of an SVG: position, anchor (0 start, 1 middle, 2 end), rotated, its text with the
 * XML entities decoded, and its width in code points. */
typedef struct svg_text {
    double x, y;
    int anchor, vertical;
    char s[512];
    size_t n;
} svg_text;

/* Reads the <text> elements of svg into t[0..cap). Returns how many. */
static size_t svg_texts(const char *svg, svg_text *t, size_t cap) {
    size_t k = 0;
    for (const char *p = strstr(svg, "<text "); p && k < cap; p = strstr(p + 1, "<text "), k++) {
        const char *gt = strchr(p, '>'), *end = strstr(gt, "</text>");
        assert_true(gt && end);
        assert_int_equal(sscanf(p, "<text x=\"%lf\" y=\"%lf\"", &t[k].x, &t[k].y), 2);
        const char *m = strstr(p, "text-anchor=\"");
        t[k].anchor = m && m < gt ? (m[13] == 'm' ? 1 : 2) : 0;
        m = strstr(p, "transform=");
        t[k].vertical = m && m < gt;
        size_t w = 0;
        t[k].n = 0;
        for (const char *q = gt + 1; q < end && w + 1 < sizeof t[k].s;) {
            static const char *const ent[5][2] = {
                {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
            size_t e = 0;
            while (e < 5 && strncmp(q, ent[e][0], strlen(ent[e][0])))
                e++;
            char c = e < 5 ? ent[e][1][0] : *q;
            q += e < 5 ? strlen(ent[e][0]) : 1;
            t[k].s[w++] = c;
            t[k].n += ((unsigned char)c & 0xC0) != 0x80;
        }
        t[k].s[w] = 0;
        assert_true(nn_json_utf8_valid(t[k].s, w));
    }
    return k;
}

/* Every text of the SVG lies inside the w x h image, at least `edge` pixels from its edges (width n x ADV
 * - 2 along the baseline, rotated texts along y). */
static void check_texts_inside(const char *svg, double w, double h, double edge) {
    svg_text t[128];
    size_t n = svg_texts(svg, t, 128);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        double len = (double)t[i].n * ADV - 2, c = t[i].vertical ? t[i].y : t[i].x;
        double lo = t[i].anchor == 0 ? c : t[i].anchor == 1 ? c - len / 2 : c - len, hi = lo + len;
        if (t[i].vertical) lo = c - len / 2, hi = c + len / 2; /* rotated texts are centred */
        if (lo < edge - 0.01 || hi > (t[i].vertical ? h : w) - edge + 0.01)
            fail_msg("text \"%s\" spans %.1f..%.1f, outside the %.0f x %.0f image", t[i].s, lo, hi, w, h);
    }
}

/* The text of the SVG equal to s, or shortened from s: its first and last code points around "..."; NULL
 * when there is none. */
static const svg_text *find_label(const svg_text *t, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(t[i].s, s)) return &t[i];
        const char *dots = strstr(t[i].s, "...");
        size_t head = dots ? (size_t)(dots - t[i].s) : 0, tail = dots ? strlen(dots + 3) : 0;
        if (dots && head + tail < strlen(s) && !strncmp(t[i].s, s, head) &&
            !strcmp(dots + 3, s + strlen(s) - tail))
            return &t[i];
    }
    return NULL;
}

/* The frame's left, right and bottom edges (the first rect with fill="none": the plot area). */
static void frame_lrb(const char *svg, double *l, double *r, double *b) {
    const char *p = strstr(svg, "<rect ");
    for (; p; p = strstr(p + 1, "<rect ")) {
        const char *f = strstr(p, "fill=\"none\"");
        if (f && f < strchr(p, '>')) break;
    }
    assert_non_null(p);
    double y, wd, ht;
    assert_int_equal(sscanf(p, "<rect x=\"%lf\" y=\"%lf\" width=\"%lf\" height=\"%lf\"", l, &y, &wd, &ht), 4);
    *r = *l + wd, *b = y + ht;
}

static void test_legend_fits(void **state) {
    (void)state;
    const double x[3] = {0.1, 0.2, 0.3}, y[3] = {0.9, 0.5, 0.1};
    const char *lab40 = "papernot2016_mnist/temperature-100/seed1"; /* 40 characters */
    assert_int_equal(strlen(lab40), 40);
    exp_plot_series s[2] = {{lab40, x, y, 3}, {"papernot2016_mnist/temperature-1/seed2", x, y, 3}};
    exp_plot_spec p = exp_plot_spec_default();
    p.title = "Worst-case robust accuracy vs \xCE\xB5";
    p.xlabel = "eps", p.ylabel = "robust accuracy";
    p.y_fixed = 1, p.y_min = 0, p.y_max = 1, p.y_format = EXP_PLOT_FMT_PERCENT;
    p.series = s, p.n_series = 2;
    nn_jbuf b = {0};
    nn_err err = {0};
    svg_text t[64];
    double l, r, fb;
    /* 40 characters (480 px) would leave the plot area < 55% of 800 px: both labels are shortened, their
     * distinct ends kept, and end inside the image */
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    check_xml(b.p);
    check_texts_inside(b.p, 800, 500, 0);
    size_t n = svg_texts(b.p, t, 64);
    const svg_text *a = find_label(t, n, lab40), *c = find_label(t, n, s[1].label);
    assert_true(a && c && a != c);
    assert_non_null(strstr(a->s, "..."));
    assert_non_null(strstr(c->s, "..."));
    assert_true(a->n == c->n && a->n >= 12 && a->n < 40);
    assert_true(strstr(a->s, "seed1") && strstr(c->s, "seed2")); /* the ends that tell them apart */
    assert_true(a->x + (double)a->n * ADV - 2 <= 800);
    frame_lrb(b.p, &l, &r, &fb);
    assert_true(r - l >= 0.55 * 800 - 1e-9);
    assert_true(a->x + (double)(a->n + 1) * ADV - 2 > 800); /* one more character would not fit */
    /* the PNG draws the same text: ink reaches the SVG text's end, never the right edge */
    char path[512];
    path_in_dir(path, sizeof path, "legend.png");
    assert_int_equal(exp_plot_png(&p, path, &err), NN_OK);
    size_t w, h;
    uint8_t *pix = read_png(path, &w, &h);
    long right = -1;
    for (size_t yy = (size_t)a->y - 16; yy <= (size_t)a->y + 4; yy++)
        for (size_t xx = (size_t)r + 2; xx < w; xx++)
            if (pixel(pix, w, xx, yy) == 0x222222 && (long)xx > right) right = (long)xx;
    if (!(right > (long)(a->x + (double)a->n * ADV - 2) - 6 && right < (long)(a->x + (double)a->n * ADV)))
        fail_msg("legend ink ends at x = %ld, the SVG text at %.1f", right, a->x + (double)a->n * ADV - 2);
    for (size_t yy = 0; yy < h; yy++)
        for (size_t xx = w - 4; xx < w; xx++)
            assert_int_equal(pixel(pix, w, xx, yy), 0xFFFFFF);
    free(pix);
    nn_jbuf_free(&b);

    /* short labels: kept whole, the column sized from them (the text ends near the right edge) */
    s[0].label = "temperature-1", s[1].label = "temperature-100";
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    check_texts_inside(b.p, 800, 500, 0);
    n = svg_texts(b.p, t, 64);
    a = find_label(t, n, "temperature-100");
    assert_true(a && !strcmp(a->s, "temperature-100"));
    assert_true(a->x + 15 * ADV - 2 >= 800 - 16 && a->x + 15 * ADV - 2 <= 800);
    frame_lrb(b.p, &l, &r, &fb);
    assert_true(r > 800 - 16 - (15 * ADV + 48)); /* no wider than the label needs */
    nn_jbuf_free(&b);

    /* multi-byte labels are cut between code points; a 120-character title and x label stay inside */
    char eps40[81] = {0}, title[121] = {0};
    for (size_t i = 0; i < 40; i++)
        memcpy(eps40 + 2 * i, "\xCE\xB5", 2);
    memset(title, 'T', 120);
    s[0].label = eps40;
    p.title = title, p.xlabel = title;
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    check_xml(b.p);
    check_texts_inside(b.p, 800, 500, 0);
    n = svg_texts(b.p, t, 64);
    assert_non_null(a = find_label(t, n, eps40));
    assert_true(a->n < 40 && strstr(a->s, "..."));
    assert_non_null(strstr(b.p, "<title>TTTT")); /* the document title keeps the whole text */
    nn_jbuf_free(&b);
    path_in_dir(path, sizeof path, "legend2.png");
    assert_int_equal(exp_plot_png(&p, path, &err), NN_OK);
}

/* More labelled series than rows: the legend stops at the plot's bottom with "+N more". */
static void test_legend_rows(void **state) {
    (void)state;
    const double x[2] = {0, 1}, y[2] = {0, 1};
    exp_plot_series s[40];
    char lab[40][16];
    for (size_t i = 0; i < 40; i++) {
        snprintf(lab[i], sizeof lab[i], "series %zu", i);
        s[i] = (exp_plot_series){lab[i], x, y, 2};
    }
    s[3].label = NULL; /* no entry */
    exp_plot_spec p = exp_plot_spec_default();
    p.series = s, p.n_series = 40, p.xlabel = "x";
    nn_jbuf b = {0};
    nn_err err = {0};
    assert_int_equal(exp_plot_svg(&p, &b, &err), NN_OK);
    check_texts_inside(b.p, 800, 500, 0);
    svg_text t[128];
    size_t n = svg_texts(b.p, t, 128), shown = 0, more = 0;
    double bottom = -1, l, r, fb;
    frame_lrb(b.p, &l, &r, &fb);
    for (size_t i = 0; i < n; i++) {
        if (t[i].x < r || t[i].anchor) continue; /* tick labels, axis labels */
        bottom = fmax(bottom, t[i].y);
        if (!strncmp(t[i].s, "series ", 7)) shown++;
        if (t[i].s[0] == '+') assert_int_equal(sscanf(t[i].s, "+%zu more", &more), 1);
    }
    assert_true(shown > 5 && shown < 39);
    assert_int_equal(shown + more, 39); /* every labelled series counted once */
    assert_null(strstr(b.p, ">series 3<"));
    assert_true(bottom <= fb + 7 + 0.01); /* baselines: rows end at the plot area's bottom */
    nn_jbuf_free(&b);
}

/* ---- errors ---- */

static void expect_inval(const exp_plot_spec *p, const char *word) {
    char path[512];
    path_in_dir(path, sizeof path, "bad.png");
    nn_err err = {0};
    nn_jbuf b = {0};
    size_t before = dir_count();
    assert_int_equal(exp_plot_png(p, path, &err), NN_E_INVAL);
    if (!strstr(err.msg, word)) fail_msg("message lacks '%s': %s", word, err.msg);
    nn_err_clear(&err);
    assert_int_equal(exp_plot_svg(p, &b, &err), NN_E_INVAL);
    if (!strstr(err.msg, word)) fail_msg("message lacks '%s': %s", word, err.msg);
    assert_int_equal(b.len, 0); /* nothing appended */
    assert_int_equal(dir_count(), before);
    nn_jbuf_free(&b);
}

static void test_errors(void **state) {
    (void)state;
    const double x[3] = {0, 1, 2}, y[3] = {1, 2, 3}, xi[2] = {1, INFINITY}, yi[2] = {1, -INFINITY};
    exp_plot_series s = {"s", x, y, 3};
    expect_inval(NULL, "NULL spec");
    exp_plot_spec p = exp_plot_spec_default();
    p.series = &s, p.n_series = 1;
    p.width = 0, p.height = 300;
    expect_inval(&p, "size");
    p.width = 100, p.height = 100;
    expect_inval(&p, "size");
    p.width = p.height = 0;
    p.log_x = 1; /* x = 0 on a log axis */
    expect_inval(&p, "log");
    exp_plot_series si = {"s", xi, y, 2};
    p.series = &si, p.log_x = 0;
    expect_inval(&p, "not finite");
    exp_plot_series sy = {"s", x, yi, 2};
    p.series = &sy;
    expect_inval(&p, "infinite");
    p.series = &s;
    p.kind = 7;
    expect_inval(&p, "kind");
    p.kind = EXP_PLOT_HIST, p.log_x = 1;
    expect_inval(&p, "log_x");
    p.log_x = 0, p.bins = EXP_PLOT_MAX_BINS + 1;
    expect_inval(&p, "bins");
    p.kind = EXP_PLOT_LINE, p.bins = 0, p.y_fixed = 1, p.y_min = 1, p.y_max = 1;
    expect_inval(&p, "fixed y");
    p.y_fixed = 0, p.y_format = 9;
    expect_inval(&p, "y_format");
    p.y_format = 0, p.series = NULL;
    expect_inval(&p, "series");
    exp_plot_series sn = {"s", x, NULL, 3};
    p.series = &sn;
    expect_inval(&p, "NULL data");
    p.series = &s, p.n_series = EXP_PLOT_MAX_SERIES + 1;
    expect_inval(&p, "series");
    /* NULL outputs, a missing folder */
    p.n_series = 1;
    nn_err err = {0};
    assert_int_equal(exp_plot_png(&p, NULL, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_svg_write(&p, NULL, &err), NN_E_INVAL);
    assert_int_equal(exp_plot_svg(&p, NULL, &err), NN_E_INVAL);
    char path[512];
    path_in_dir(path, sizeof path, "missing/x.png");
    assert_int_equal(exp_plot_png(&p, path, &err), NN_E_IO);
    assert_non_null(strstr(err.msg, "missing"));
    path_in_dir(path, sizeof path, "missing/x.svg");
    assert_int_equal(exp_plot_svg_write(&p, path, &err), NN_E_IO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_linear),
        cmocka_unit_test(test_ticks_log),
        cmocka_unit_test(test_ticks_errors),
        cmocka_unit_test(test_hist_bins),
        cmocka_unit_test(test_svg_line),
        cmocka_unit_test(test_svg_log_and_hist),
        cmocka_unit_test(test_png_line),
        cmocka_unit_test(test_png_continuous),
        cmocka_unit_test(test_png_hist_blank_size),
        cmocka_unit_test(test_legend_fits),
        cmocka_unit_test(test_legend_rows),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
