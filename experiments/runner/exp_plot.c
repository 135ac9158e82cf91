/* exp_plot.c - line charts and histograms as SVG and PNG (see exp_plot.h). One layout (lay_make) and one
 * drawing routine (draw) feed two back ends behind five primitives (rect, line, polyline, dot, text): SVG
 * elements or pixels in an RGB buffer, so both files put every mark at the same place. */
#include "exp_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_io.h"
#include "nn_png.h"

const uint32_t EXP_PLOT_PALETTE[EXP_PLOT_N_PALETTE] = {0x0072B2, 0xD55E00, 0x009E73, 0xE69F00,
                                                       0x56B4E9, 0xCC79A7, 0xF0E442, 0x000000};

#define INK 0x222222u  /* frame, ticks, text */
#define GRID 0xDDDDDDu /* gridlines */
#define BG 0xFFFFFFu
#define NOSTROKE 0xFF000000u
#define CW 12.0       /* text advance per character: the 5x7 font at scale 2 plus a 1-column gap */
#define LINE_H 20.0   /* text line height */
#define DOT_R 3.5     /* marker radius */
#define EDGE 8.0      /* text keeps this far from the image's edges */
#define LEG_GAP 12.0  /* plot frame to a legend swatch */
#define LEG_TEXT 30.0 /* swatch start to label start */
#define LEG_PAD (LEG_GAP + LEG_TEXT - 2 + EDGE) /* legend column = LEG_PAD + chars * CW */
#define MIN_AREA 0.55 /* long legend labels are truncated rather than leave the plot area narrower (x W) */
#define TXT_CAP 1400  /* a fitted text: at most EXP_PLOT_MAX_SIDE / CW code points of <= 4 bytes */
enum { A_START, A_MID, A_END };

/* 5x7 glyphs (row 7: descenders) for ASCII 32..126, then epsilon, infinity. Byte r = row r (top first),
 * bit 4 = leftmost column. */
static const uint64_t glyphs[97] = {
    0x0000000000000000u, 0x0004000404040404u, 0x0000000000000a0au, 0x000a0a1f0a1f0a0au, 0x00041e050e140f04u,
    0x0003130804021918u, 0x000d12150814120cu, 0x0000000000000404u, 0x0002040808080402u, 0x0008040202020408u,
    0x000004150e150400u, 0x000004041f040400u, 0x0804040000000000u, 0x000000001f000000u, 0x000c0c0000000000u,
    0x0010100804020101u, 0x000e11191513110eu, 0x000e040404040c04u, 0x001f08040201110eu, 0x000e11010204021fu,
    0x0002021f120a0602u, 0x000e1101011e101fu, 0x000e11111e100806u, 0x000808080402011fu, 0x000e11110e11110eu,
    0x000c02010f11110eu, 0x00000c0c000c0c00u, 0x0008040c000c0c00u, 0x0002040810080402u, 0x0000001f001f0000u,
    0x0008040201020408u, 0x000400040201110eu, 0x000f10171517110eu, 0x001111111f11110eu, 0x001e11111e11111eu,
    0x000e11101010110eu, 0x001e11111111111eu, 0x001f10101e10101fu, 0x001010101e10101fu, 0x000f11111710110eu,
    0x001111111f111111u, 0x000e04040404040eu, 0x000c120202020207u, 0x0011121418141211u, 0x001f101010101010u,
    0x0011111115151b11u, 0x0011111315191111u, 0x000e11111111110eu, 0x001010101e11111eu, 0x000d12151111110eu,
    0x001112141e11111eu, 0x001e01010e10100fu, 0x000404040404041fu, 0x000e111111111111u, 0x00040a1111111111u,
    0x000a151515111111u, 0x0011110a040a1111u, 0x00040404040a1111u, 0x001f10080402011fu, 0x000e08080808080eu,
    0x0001010204081010u, 0x000e02020202020eu, 0x0000000000110a04u, 0x1f00000000000000u, 0x0000000000000408u,
    0x000f110f010e0000u, 0x001e111119161010u, 0x000e1110100e0000u, 0x000f1111130d0101u, 0x000e101f110e0000u,
    0x000808081c080906u, 0x0e010f11110f0000u, 0x0011111119161010u, 0x000e0404040c0004u, 0x0c12020202060002u,
    0x0012141814121010u, 0x000e04040404040cu, 0x00151515151a0000u, 0x0011111119160000u, 0x000e1111110e0000u,
    0x10101e11111e0000u, 0x01010f11110f0000u, 0x0010101019160000u, 0x001e010e100f0000u, 0x00060908081c0808u,
    0x000d131111110000u, 0x00040a1111110000u, 0x000a151511110000u, 0x00110a040a110000u, 0x0e010f1111110000u,
    0x001f0804021f0000u, 0x0002040408040402u, 0x0004040404040404u, 0x0008040402040408u, 0x0000000215080000u,
    0x000f100e100f0000u, 0x00000a15150a0000u,
};

exp_plot_spec exp_plot_spec_default(void) {
    exp_plot_spec p = {0};
    return p;
}

/* ---- nice numbers: a step m x 10^e, m in {1, 2, 5}; values k*step computed as k*m / 10^-e (exact for
 * small decimals: 3 x 0.1 gives 0.3, not 0.30000000000000004) ---- */

typedef struct nstep {
    double m;
    int e;
} nstep;

static double nval(nstep s, double k) {
    return s.e >= 0 ? k * s.m * pow(10, s.e) : k * s.m / pow(10, -s.e);
}

static nstep nice_step(double x) { /* the 1/2/5 x 10^k nearest x > 0 */
    int e = (int)floor(log10(x));
    double f = x / pow(10, e);
    nstep s = {f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10, e};
    if (s.m == 10) s = (nstep){1, e + 1};
    return s;
}

static void push_tick(exp_plot_axis *ax, double v) {
    if (ax->n_ticks < EXP_PLOT_MAX_TICKS) ax->ticks[ax->n_ticks++] = v + 0.0; /* + 0.0: no -0 */
}

static int log_axis(double dmin, double dmax, int fixed, exp_plot_axis *ax, nn_err *err) {
    if (fixed) return NN_FAIL(err, NN_E_INVAL, "plot axis: a log axis is always fitted to the data");
    if (!(dmin >= 1e-300 && dmax <= 1e300))
        return NN_FAIL(err, NN_E_INVAL, "plot axis: log range [%g, %g] must lie in [1e-300, 1e300]", dmin,
                       dmax);
    int e0 = (int)floor(log10(dmin) + 1e-9), e1 = (int)ceil(log10(dmax) - 1e-9);
    if (e1 <= e0) e1 = e0 + 1;
    ax->lo = fmin(nval((nstep){1, e0}, 1), dmin);
    ax->hi = fmax(nval((nstep){1, e1}, 1), dmax);
    static const double ms[3] = {1, 2, 5};
    int s = (e1 - e0 + 7) / 8; /* decades per tick when > 3 decades */
    for (int e = e0; e <= e1; e += e1 - e0 <= 3 ? 1 : s)
        for (int i = 0; i < (e1 - e0 <= 3 && e < e1 ? 3 : 1); i++)
            push_tick(ax, nval((nstep){ms[i], e}, 1));
    return NN_OK;
}

int exp_plot_axis_make(double dmin, double dmax, int log, int fixed, exp_plot_axis *ax, nn_err *err) {
    if (!ax) return NN_FAIL(err, NN_E_INVAL, "plot axis: NULL output");
    memset(ax, 0, sizeof *ax);
    ax->log = log != 0;
    if (isnan(dmin) != isnan(dmax)) return NN_FAIL(err, NN_E_INVAL, "plot axis: one bound is NaN");
    if (isnan(dmin) && fixed) return NN_FAIL(err, NN_E_INVAL, "plot axis: a fixed range needs bounds");
    if (isnan(dmin)) { /* no data */
        dmin = log ? 1 : 0;
        dmax = log ? 10 : 1;
    }
    if (!isfinite(dmin) || !isfinite(dmax) || !isfinite(dmax - dmin) || dmin > dmax)
        return NN_FAIL(err, NN_E_INVAL, "plot axis: range [%g, %g] is not finite and increasing", dmin, dmax);
    if (log) return log_axis(dmin, dmax, fixed, ax, err);
    if (fixed && !(dmin < dmax))
        return NN_FAIL(err, NN_E_INVAL, "plot axis: fixed range [%g, %g] is empty", dmin, dmax);
    if (dmin == dmax) {
        double d = dmin == 0 ? 1 : 0.1 * fabs(dmin);
        dmin -= d;
        dmax += d;
    }
    nstep s = nice_step((dmax - dmin) / 5);
    double st = nval(s, 1);
    double k0 = fixed ? ceil(dmin / st - 1e-9) : floor(dmin / st + 1e-9);
    double k1 = fixed ? floor(dmax / st + 1e-9) : ceil(dmax / st - 1e-9);
    ax->lo = fixed ? dmin : fmin(nval(s, k0), dmin);
    ax->hi = fixed ? dmax : fmax(nval(s, k1), dmax);
    for (int i = 0; k0 + i <= k1 && i < EXP_PLOT_MAX_TICKS; i++) /* an int: k0 + 1 == k0 beyond 2^53 */
        push_tick(ax, fmin(fmax(nval(s, k0 + i), ax->lo), ax->hi));
    return NN_OK;
}

/* ---- histogram bins ---- */

int exp_plot_hist_bins(const exp_plot_series *series, size_t n_series, size_t bins, double *lo, double *width,
                       size_t *n_bins, nn_err *err) {
    if (!lo || !width || !n_bins) return NN_FAIL(err, NN_E_INVAL, "plot bins: NULL output");
    if (n_series && !series) return NN_FAIL(err, NN_E_INVAL, "plot bins: NULL series");
    if (bins > EXP_PLOT_MAX_BINS)
        return NN_FAIL(err, NN_E_INVAL, "plot bins: %zu bins > %d", bins, EXP_PLOT_MAX_BINS);
    double vmin = INFINITY, vmax = -INFINITY;
    size_t nmax = 0;
    for (size_t s = 0; s < n_series; s++) {
        if (series[s].n && !series[s].x) return NN_FAIL(err, NN_E_INVAL, "plot bins: series %zu: NULL x", s);
        size_t c = 0;
        for (size_t i = 0; i < series[s].n; i++)
            if (isfinite(series[s].x[i])) {
                vmin = fmin(vmin, series[s].x[i]);
                vmax = fmax(vmax, series[s].x[i]);
                c++;
            }
        nmax = c > nmax ? c : nmax;
    }
    if (!nmax) vmin = 0, vmax = 1;
    if (vmin == vmax) vmin -= 0.5, vmax += 0.5;
    if (!(vmax > vmin) || !isfinite(vmax - vmin))
        return NN_FAIL(err, NN_E_INVAL, "plot bins: values spanning [%g, %g] cannot be binned", vmin, vmax);
    if (bins) {
        *lo = vmin, *width = (vmax - vmin) / (double)bins, *n_bins = bins;
        return NN_OK;
    }
    double target = nmax ? fmin(fmax(ceil(log2((double)nmax)) + 1, 1), 50) : 10;
    nstep s = nice_step((vmax - vmin) / target);
    double k0 = floor(vmin / nval(s, 1)), w = nval(s, 1);
    for (int i = 0; i < 4 && nval(s, k0) > vmin; i++) /* rounding; bounded: k0 - 1 == k0 beyond 2^53 */
        k0--;
    *lo = fmin(nval(s, k0), vmin);
    double nb = fmax(ceil((vmax - *lo) / w - 1e-9), 1);
    while (nb <= EXP_PLOT_MAX_BINS && *lo + nb * w < vmax)
        nb++;
    if (nb > EXP_PLOT_MAX_BINS)
        return NN_FAIL(err, NN_E_INVAL, "plot bins: %.0f automatic bins > %d", nb, EXP_PLOT_MAX_BINS);
    *width = w, *n_bins = (size_t)nb;
    return NN_OK;
}

size_t exp_plot_hist_count(const double *v, size_t n, double lo, double width, size_t n_bins,
                           size_t *counts) {
    if (!counts || !n_bins) return 0;
    memset(counts, 0, n_bins * sizeof *counts);
    if (!v || !(width > 0) || !isfinite(lo)) return 0;
    double hi = lo + (double)n_bins * width;
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (!isfinite(x) || x < lo || x > hi) continue;
        double t = floor((x - lo) / width);
        size_t b = t < 0 ? 0 : t >= (double)n_bins ? n_bins - 1 : (size_t)t;
        while (b + 1 < n_bins && x >= lo + (double)(b + 1) * width) /* the edges are lo + b*width exactly */
            b++;
        while (b > 0 && x < lo + (double)b * width)
            b--;
        counts[b]++;
        c++;
    }
    return c;
}

/* ---- spec checks and layout ---- */

static int check_series(const exp_plot_spec *p, size_t s, nn_err *err) {
    const exp_plot_series *r = &p->series[s];
    if (r->n && (!r->x || (p->kind == EXP_PLOT_LINE && !r->y)))
        return NN_FAIL(err, NN_E_INVAL, "plot: series %zu has n = %zu and NULL data", s, r->n);
    for (size_t i = 0; p->kind == EXP_PLOT_LINE && i < r->n; i++) {
        if (!isfinite(r->x[i]) || (p->log_x && r->x[i] <= 0))
            return NN_FAIL(err, NN_E_INVAL, "plot: series %zu point %zu: x = %g is not %s", s, i, r->x[i],
                           p->log_x ? "finite and > 0 (log x axis)" : "finite");
        if (isinf(r->y[i]))
            return NN_FAIL(err, NN_E_INVAL, "plot: series %zu point %zu: y is infinite (NaN leaves a gap)", s,
                           i);
    }
    return NN_OK;
}

static int check_spec(const exp_plot_spec *p, nn_err *err) {
    if (!p) return NN_FAIL(err, NN_E_INVAL, "plot: NULL spec");
    if (p->kind != EXP_PLOT_LINE && p->kind != EXP_PLOT_HIST)
        return NN_FAIL(err, NN_E_INVAL, "plot: unknown kind %d", p->kind);
    if (p->y_format != EXP_PLOT_FMT_PLAIN && p->y_format != EXP_PLOT_FMT_PERCENT)
        return NN_FAIL(err, NN_E_INVAL, "plot: unknown y_format %d", p->y_format);
    if ((p->width == 0) != (p->height == 0) ||
        (p->width && (p->width < EXP_PLOT_MIN_SIDE || p->width > EXP_PLOT_MAX_SIDE ||
                      p->height < EXP_PLOT_MIN_SIDE || p->height > EXP_PLOT_MAX_SIDE)))
        return NN_FAIL(err, NN_E_INVAL, "plot: size %zu x %zu (both 0 for the default, else %d..%d each)",
                       p->width, p->height, EXP_PLOT_MIN_SIDE, EXP_PLOT_MAX_SIDE);
    if (p->n_series > EXP_PLOT_MAX_SERIES || (p->n_series && !p->series))
        return NN_FAIL(err, NN_E_INVAL, "plot: %zu series at %p (at most %d)", p->n_series,
                       (const void *)p->series, EXP_PLOT_MAX_SERIES);
    if (p->kind == EXP_PLOT_HIST && p->log_x) return NN_FAIL(err, NN_E_INVAL, "plot: log_x on a histogram");
    if (p->y_fixed && !(isfinite(p->y_min) && isfinite(p->y_max) && p->y_min < p->y_max))
        return NN_FAIL(err, NN_E_INVAL, "plot: fixed y range [%g, %g] is not finite and increasing", p->y_min,
                       p->y_max);
    int rc = NN_OK;
    for (size_t s = 0; s < p->n_series && !rc; s++)
        rc = check_series(p, s, err);
    return rc;
}

/* UTF-8 decoding: returns the bytes consumed (>= 1); invalid input gives *cp = 0xFFFD and 1 byte. */
static size_t u8dec(const unsigned char *s, uint32_t *cp) {
    unsigned c = s[0];
    size_t n = c < 0x80                ? 1
               : c >= 0xC2 && c < 0xE0 ? 2
               : c >= 0xE0 && c < 0xF0 ? 3
               : c >= 0xF0 && c < 0xF5 ? 4
                                       : 0;
    *cp = n == 1 ? c : 0xFFFD;
    if (n < 2) return 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 1;
    if (!nn_json_utf8_valid((const char *)s, n)) return 1; /* overlong forms, surrogates */
    *cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++)
        *cp = (*cp << 6) | (s[i] & 0x3F);
    return n;
}

typedef struct lay {
    const exp_plot_spec *p;
    double W, H, l, r, t, b; /* image size; plot area [l, r] x [t, b] in pixels, y down */
    exp_plot_axis ax, ay;
    char xt[EXP_PLOT_MAX_TICKS][40], yt[EXP_PLOT_MAX_TICKS][40]; /* tick labels */
    size_t nb;                                                   /* HIST: bins [hlo + b*hw, +hw) */
    double hlo, hw;
    double *bar; /* HIST: [n_series][nb] bar heights */
    /* Texts as drawn (shortened with "..." to fit) and where: title and x label centred at tx, xx (on the
     * plot area when they fit there), the y label at yy. */
    char title[TXT_CAP], xlabel[TXT_CAP], ylabel[TXT_CAP];
    double tx, xx, yy;
    /* Legend: entries for series leg_s[0..n_leg) with labels leg[i]; more > 0: a last line "+<more> more". */
    size_t n_leg, more, leg_s[EXP_PLOT_MAX_SERIES];
    const char *leg[EXP_PLOT_MAX_SERIES];
    char *legbuf, more_txt[40];
} lay;

static void lay_free(lay *L) {
    free(L->bar), free(L->legbuf);
    L->bar = NULL, L->legbuf = NULL;
}

static size_t u8len(const char *s) { /* code points as drawn: u8dec's steps */
    size_t n = 0;
    for (const unsigned char *q = (const unsigned char *)s; q && *q; n++) {
        uint32_t cp;
        q += u8dec(q, &cp);
    }
    return n;
}

/* Byte offset of code point k of s (as u8dec steps through it). */
static size_t u8off(const char *s, size_t k) {
    const unsigned char *q = (const unsigned char *)s;
    for (uint32_t cp; k > 0 && *q; k--)
        q += u8dec(q, &cp);
    return (size_t)(q - (const unsigned char *)s);
}

/* s when it has <= max code points, else (max >= 4) its first (max - 3) / 2 and last max - 3 - (max - 3) / 2
 * code points around "..." in buf (cap >= 4 max + 4 bytes): labels that share a start (model names) differ
 * at their end, so both ends stay. */
static const char *fit_text(const char *s, size_t max, char *buf, size_t cap) {
    size_t n = u8len(s);
    if (!s || n <= max || max < 4) return s;
    size_t head = u8off(s, (max - 3) / 2), tail = u8off(s, n - (max - 3 - (max - 3) / 2));
    size_t lt = strlen(s + tail);
    if (head + 3 + lt + 1 > cap) return s; /* cannot happen with cap >= 4 max + 4 */
    memcpy(buf, s, head);
    memcpy(buf + head, "...", 3);
    memcpy(buf + head + 3, s + tail, lt + 1);
    return buf;
}

/* A text of at most the code points fitting in `room` pixels, copied into buf (NULL stays ""). */
static void fit_copy(const char *s, double room, char *buf) {
    size_t max = room > 4 * CW ? (size_t)((room + 2) / CW) : 4;
    char tmp[TXT_CAP];
    max = max < (TXT_CAP - 4) / 4 ? max : (TXT_CAP - 4) / 4;
    const char *f = fit_text(s, max, tmp, sizeof tmp);
    snprintf(buf, TXT_CAP, "%s", f ? f : "");
}

/* The centre of a text of n code points near c, moved so that it stays inside [EDGE, side - EDGE]. */
static double fit_centre(double c, size_t n, double side) {
    double half = ((double)n * CW - 2) / 2;
    return fmax(fmin(c, side - EDGE - half), EDGE + half);
}

static void tick_label(char *buf, size_t cap, double v, const exp_plot_axis *a, int pct) {
    double step = a->n_ticks > 1 ? a->ticks[1] - a->ticks[0] : fabs(v) > 0 ? fabs(v) : 1;
    const char *unit = pct ? "%" : "";
    if (pct) v *= 100, step *= 100;
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-6);
    if (a->log || fabs(v) >= 1e7 || dec > 6)
        snprintf(buf, cap, "%g%s", v, unit);
    else
        snprintf(buf, cap, "%.*f%s", dec, v, unit);
}

static int hist_bars(const exp_plot_spec *p, lay *L, double *ymax, nn_err *err) {
    int rc = exp_plot_hist_bins(p->series, p->n_series, p->bins, &L->hlo, &L->hw, &L->nb, err);
    if (rc) return rc;
    size_t *cnt = malloc(L->nb * sizeof *cnt);
    L->bar = malloc((p->n_series ? p->n_series : 1) * L->nb * sizeof *L->bar);
    if (!cnt || !L->bar) {
        free(cnt);
        return NN_FAIL(err, NN_E_NOMEM, "plot: out of memory for %zu bins", L->nb);
    }
    for (size_t s = 0; s < p->n_series; s++) {
        size_t c = exp_plot_hist_count(p->series[s].x, p->series[s].n, L->hlo, L->hw, L->nb, cnt);
        for (size_t b = 0; b < L->nb; b++) {
            double h = p->hist_frac ? (c ? (double)cnt[b] / (double)c : 0) : (double)cnt[b];
            L->bar[s * L->nb + b] = h;
            *ymax = fmax(*ymax, h);
        }
    }
    free(cnt);
    return NN_OK;
}

/* The legend column and the plot's right edge L->r. Entries (labelled series) fill rows from the top of
 * the plot area down to its bottom; when they do not all fit, the last row reads "+N more". The column is
 * as wide as the longest label shown (LEG_PAD + chars x CW, so every label ends EDGE pixels inside the
 * image) unless that leaves the plot area narrower than MIN_AREA x W: then longer labels are shortened to
 * the width left, their middle replaced by "..." (fit_text). Without labels, the right margin holds half of
 * the last x tick label. */
static int lay_legend(const exp_plot_spec *p, lay *L, size_t xlast, nn_err *err) {
    size_t n_lab = 0, rows = 1, leg = 0;
    for (size_t s = 0; s < p->n_series; s++)
        if (p->series[s].label && *p->series[s].label) L->leg_s[n_lab++] = s;
    if (!n_lab) {
        L->r = L->W - fmax(16, (double)xlast * CW / 2 + 6);
        return NN_OK;
    }
    double room = L->b - 4 - (L->t + 12); /* row k's centre at t + 12 + k LINE_H, <= b - 4 */
    if (room >= LINE_H) rows += (size_t)(room / LINE_H);
    L->n_leg = n_lab <= rows ? n_lab : rows - 1;
    L->more = n_lab - L->n_leg;
    if (L->more) snprintf(L->more_txt, sizeof L->more_txt, "+%zu more", L->more);
    for (size_t i = 0; i < L->n_leg; i++)
        leg = u8len(p->series[L->leg_s[i]].label) > leg ? u8len(p->series[L->leg_s[i]].label) : leg;
    leg = u8len(L->more_txt) > leg ? u8len(L->more_txt) : leg;
    double fit = floor((L->W - (L->l + MIN_AREA * L->W) - LEG_PAD) / CW); /* chars keeping MIN_AREA */
    size_t max = fit > 4 ? (size_t)fmin(fit, (TXT_CAP - 4) / 4) : 4;
    leg = leg < max ? leg : max;
    L->r = L->W - (LEG_PAD + (double)leg * CW);
    size_t cap = 4 * leg + 4;
    if (!(L->legbuf = malloc(L->n_leg * cap + 1)))
        return NN_FAIL(err, NN_E_NOMEM, "plot: out of memory for the legend");
    for (size_t i = 0; i < L->n_leg; i++)
        L->leg[i] = fit_text(p->series[L->leg_s[i]].label, leg, L->legbuf + i * cap, cap);
    return NN_OK;
}

/* Data ranges -> axes -> tick labels -> margins. */
static int lay_make(const exp_plot_spec *p, lay *L, nn_err *err) {
    memset(L, 0, sizeof *L);
    int rc = check_spec(p, err);
    if (rc) return rc;
    L->p = p;
    L->W = p->width ? (double)p->width : EXP_PLOT_DEFAULT_W;
    L->H = p->height ? (double)p->height : EXP_PLOT_DEFAULT_H;
    double xmin = NAN, xmax = NAN, ymin = NAN, ymax = NAN;
    if (p->kind == EXP_PLOT_HIST) {
        ymax = 0;
        if ((rc = hist_bars(p, L, &ymax, err))) return rc;
        xmin = L->hlo, xmax = L->hlo + (double)L->nb * L->hw, ymin = 0;
        if (!(ymax > 0)) ymax = 1;
    } else
        for (size_t s = 0; s < p->n_series; s++)
            for (size_t i = 0; i < p->series[s].n; i++) {
                xmin = fmin(xmin, p->series[s].x[i]), xmax = fmax(xmax, p->series[s].x[i]);
                if (!isnan(p->series[s].y[i]))
                    ymin = fmin(ymin, p->series[s].y[i]), ymax = fmax(ymax, p->series[s].y[i]);
            }
    if ((rc = exp_plot_axis_make(xmin, xmax, p->log_x, 0, &L->ax, err)) ||
        (rc = p->y_fixed ? exp_plot_axis_make(p->y_min, p->y_max, 0, 1, &L->ay, err)
                         : exp_plot_axis_make(ymin, ymax, 0, 0, &L->ay, err)))
        return rc;
    size_t yw = 0, xlast = 0;
    for (size_t i = 0; i < L->ax.n_ticks; i++)
        tick_label(L->xt[i], sizeof L->xt[i], L->ax.ticks[i], &L->ax, 0), xlast = strlen(L->xt[i]);
    for (size_t i = 0; i < L->ay.n_ticks; i++) {
        tick_label(L->yt[i], sizeof L->yt[i], L->ay.ticks[i], &L->ay, p->y_format == EXP_PLOT_FMT_PERCENT);
        yw = strlen(L->yt[i]) > yw ? strlen(L->yt[i]) : yw;
    }
    L->t = p->title ? 44 : 16;
    L->b = L->H - (17 + LINE_H + (p->xlabel ? LINE_H + 6 : 0));
    L->l = 12 + (p->ylabel ? LINE_H + 6 : 0) + (double)yw * CW + 10;
    if ((rc = lay_legend(p, L, xlast, err))) return rc;
    if (L->r - L->l < 40 || L->b - L->t < 40)
        return NN_FAIL(err, NN_E_INVAL, "plot: %.0f x %.0f is too small for its labels", L->W, L->H);
    fit_copy(p->title, L->W - 2 * EDGE, L->title);
    fit_copy(p->xlabel, L->W - 2 * EDGE, L->xlabel);
    fit_copy(p->ylabel, L->H - 2 * EDGE, L->ylabel);
    L->tx = fit_centre((L->l + L->r) / 2, u8len(L->title), L->W);
    L->xx = fit_centre((L->l + L->r) / 2, u8len(L->xlabel), L->W);
    L->yy = fit_centre((L->t + L->b) / 2, u8len(L->ylabel), L->H);
    return NN_OK;
}

static double map_x(const lay *L, double v) {
    const exp_plot_axis *a = &L->ax;
    double f =
        a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    return L->l + f * (L->r - L->l);
}

static double map_y(const lay *L, double v) {
    return L->b - (v - L->ay.lo) / (L->ay.hi - L->ay.lo) * (L->b - L->t);
}

/* ---- the two back ends: SVG text (svg != NULL) or an RGB buffer ---- */

typedef struct cv {
    nn_jbuf *svg;
    uint8_t *pix; /* [h][w][3] */
    long w, h;
    int clip; /* PNG: draw only inside [cx0, cx1) x [cy0, cy1) */
    long cx0, cy0, cx1, cy1;
    double px, py; /* PNG polyline: the previous point */
} cv;

static void svg_esc(nn_jbuf *b, const char *s) {
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        uint32_t cp;
        size_t n = u8dec(c, &cp);
        const char *e = cp == '&'                ? "&amp;"
                        : cp == '<'              ? "&lt;"
                        : cp == '>'              ? "&gt;"
                        : cp == '"'              ? "&quot;"
                        : cp == '\''             ? "&apos;"
                        : cp < 0x20              ? " "
                        : cp == 0xFFFD && n == 1 ? "\xEF\xBF\xBD"
                                                 : NULL;
        if (e)
            nn_jbuf_puts(b, e);
        else
            nn_jbuf_printf(b, "%.*s", (int)n, (const char *)c);
        c += n;
    }
}

static void put_px(cv *c, long x, long y, uint32_t rgb, double a) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    if (c->clip && (x < c->cx0 || x >= c->cx1 || y < c->cy0 || y >= c->cy1)) return;
    uint8_t *q = c->pix + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    for (int k = 0; k < 3; k++) {
        double src = (double)((rgb >> (16 - 8 * k)) & 255);
        q[k] = (uint8_t)lround(a * src + (1 - a) * q[k]);
    }
}

static long pxl(const cv *c, double v) {
    return lround(fmin(fmax(v, -8), (double)(c->w > c->h ? c->w : c->h) + 8));
}

static void fill(cv *c, double x0, double y0, double x1, double y1, uint32_t rgb, double a) {
    for (long y = pxl(c, y0); y < pxl(c, y1); y++)
        for (long x = pxl(c, x0); x < pxl(c, x1); x++)
            put_px(c, x, y, rgb, a);
}

/* A w-pixel line: squares stamped along the segment, after clipping it to the image (Liang-Barsky). */
static void png_line(cv *c, double x0, double y0, double x1, double y1, uint32_t rgb, double w) {
    double dx = x1 - x0, dy = y1 - y0, t0 = 0, t1 = 1;
    const double p[4] = {-dx, dx, -dy, dy},
                 q[4] = {x0 + 4, (double)c->w + 4 - x0, y0 + 4, (double)c->h + 4 - y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return;
        } else if (p[i] < 0)
            t0 = fmax(t0, q[i] / p[i]);
        else
            t1 = fmin(t1, q[i] / p[i]);
    }
    if (t0 > t1) return;
    double n = fmax(ceil(2 * fmax(fabs(dx), fabs(dy)) * (t1 - t0)), 1); /* half-pixel steps: no gaps */
    for (double i = 0; i <= n; i++) {
        double t = t0 + (t1 - t0) * i / n;
        fill(c, x0 + t * dx - w / 2, y0 + t * dy - w / 2, x0 + t * dx + w / 2, y0 + t * dy + w / 2, rgb, 1);
    }
}

static void rect(cv *c, double x0, double y0, double x1, double y1, uint32_t rgb, double a, uint32_t stroke) {
    if (c->svg) {
        nn_jbuf_printf(c->svg, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"", x0, y0, x1 - x0,
                       y1 - y0);
        if (a > 0)
            nn_jbuf_printf(c->svg, " fill=\"#%06x\"", rgb);
        else
            nn_jbuf_puts(c->svg, " fill=\"none\"");
        if (a > 0 && a < 1) nn_jbuf_printf(c->svg, " fill-opacity=\"%.2f\"", a);
        if (stroke != NOSTROKE) nn_jbuf_printf(c->svg, " stroke=\"#%06x\" stroke-width=\"1\"", stroke);
        nn_jbuf_puts(c->svg, "/>\n");
        return;
    }
    if (a > 0) fill(c, x0, y0, x1, y1, rgb, a);
    if (stroke == NOSTROKE) return;
    png_line(c, x0, y0, x1, y0, stroke, 1), png_line(c, x1, y0, x1, y1, stroke, 1);
    png_line(c, x1, y1, x0, y1, stroke, 1), png_line(c, x0, y1, x0, y0, stroke, 1);
}

static void line(cv *c, double x0, double y0, double x1, double y1, uint32_t rgb, double w) {
    if (c->svg)
        nn_jbuf_printf(
            c->svg,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#%06x\" stroke-width=\"%g\"/>\n",
            x0, y0, x1, y1, rgb, w);
    else
        png_line(c, x0, y0, x1, y1, rgb, w);
}

/* A 2 px polyline, streamed: poly_pt(first = 1) starts it, poly_end closes the SVG element. */
static void poly_pt(cv *c, double x, double y, int first, uint32_t rgb) {
    if (c->svg && first)
        nn_jbuf_printf(
            c->svg,
            "<polyline fill=\"none\" stroke=\"#%06x\" stroke-width=\"2\" stroke-linejoin=\"round\" "
            "points=\"%.2f,%.2f",
            rgb, x, y);
    else if (c->svg)
        nn_jbuf_printf(c->svg, " %.2f,%.2f", x, y);
    else if (!first)
        png_line(c, c->px, c->py, x, y, rgb, 2);
    c->px = x, c->py = y;
}

static void poly_end(cv *c) {
    if (c->svg) nn_jbuf_puts(c->svg, "\"/>\n");
}

static void dot(cv *c, double x, double y, uint32_t rgb) {
    if (c->svg) {
        nn_jbuf_printf(c->svg, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%g\" fill=\"#%06x\"/>\n", x, y, DOT_R,
                       rgb);
        return;
    }
    for (long py = pxl(c, y - DOT_R); py <= pxl(c, y + DOT_R); py++)
        for (long px = pxl(c, x - DOT_R); px <= pxl(c, x + DOT_R); px++)
            if (((double)px + 0.5 - x) * ((double)px + 0.5 - x) +
                    ((double)py + 0.5 - y) * ((double)py + 0.5 - y) <=
                DOT_R * DOT_R)
                put_px(c, px, py, rgb, 1);
}

/* Text with its baseline at y (vertical: rotated 90 degrees counter-clockwise, baseline at x, reading
 * upwards), anchored at its start, middle or end. PNG: the bitmap font at scale 2. */
static void text(cv *c, double x, double y, const char *s, int anchor, int vertical, int big) {
    if (!s || !*s) return;
    static const char *const anc[3] = {"", " text-anchor=\"middle\"", " text-anchor=\"end\""};
    if (c->svg) {
        nn_jbuf_printf(c->svg, "<text x=\"%.2f\" y=\"%.2f\"%s%s", x, y, anc[anchor],
                       big ? " font-size=\"17\"" : "");
        if (vertical) nn_jbuf_printf(c->svg, " transform=\"rotate(-90 %.2f %.2f)\"", x, y);
        nn_jbuf_puts(c->svg, ">");
        svg_esc(c->svg, s);
        nn_jbuf_puts(c->svg, "</text>\n");
        return;
    }
    double len = (double)u8len(s) * CW - 2;
    long u = lround(anchor == A_START ? 0
                    : anchor == A_MID ? -len / 2
                                      : -len),
         bx = lround(x), by = lround(y);
    for (const unsigned char *q = (const unsigned char *)s; *q; u += (long)CW) {
        uint32_t cp;
        q += u8dec(q, &cp);
        uint64_t g = glyphs[cp >= 32 && cp < 127 ? cp - 32 : cp == 0x3B5 ? 95 : cp == 0x221E ? 96 : '?' - 32];
        for (long row = 0; row < 8; row++)
            for (long col = 0; col < 5; col++)
                for (long k = 0; (g >> (8 * row + 4 - col)) & 1 && k < 4; k++) {
                    long tu = u + 2 * col + k % 2, tv = 2 * (row - 7) + k / 2; /* text frame: along, down */
                    put_px(c, vertical ? bx + tv : bx + tu, vertical ? by - tu : by + tv, INK, 1);
                }
    }
}

/* ---- drawing (shared by both back ends) ---- */

#define CLIP_PAD 4.0 /* marks may overhang the plot area by this much (a marker at y = 100%) */

static void clip(cv *c, const lay *L, int on) {
    if (c->svg) nn_jbuf_puts(c->svg, on ? "<g clip-path=\"url(#exp-plot-area)\">\n" : "</g>\n");
    c->clip = on;
    c->cx0 = lround(L->l - CLIP_PAD), c->cy0 = lround(L->t - CLIP_PAD);
    c->cx1 = lround(L->r + CLIP_PAD), c->cy1 = lround(L->b + CLIP_PAD);
}

static void draw_data(cv *c, const lay *L) {
    const exp_plot_spec *p = L->p;
    double alpha = p->n_series > 1 ? 0.45 : 0.8, y0 = map_y(L, fmax(L->ay.lo, 0));
    clip(c, L, 1);
    for (size_t s = 0; s < p->n_series; s++) {
        const exp_plot_series *r = &p->series[s];
        uint32_t col = EXP_PLOT_PALETTE[s % EXP_PLOT_N_PALETTE];
        if (p->kind == EXP_PLOT_HIST) {
            for (size_t b = 0; b < L->nb; b++)
                if (L->bar[s * L->nb + b] > 0)
                    rect(c, map_x(L, L->hlo + (double)b * L->hw), map_y(L, L->bar[s * L->nb + b]),
                         map_x(L, L->hlo + (double)(b + 1) * L->hw), y0, col, alpha, col);
            continue;
        }
        int open = 0; /* a polyline is being written; NaN y ends it */
        for (size_t i = 0; i < r->n; i++) {
            if (isnan(r->y[i])) {
                if (open) poly_end(c);
                open = 0;
                continue;
            }
            poly_pt(c, map_x(L, r->x[i]), map_y(L, r->y[i]), !open, col);
            open = 1;
        }
        if (open) poly_end(c);
        for (size_t i = 0; r->n <= EXP_PLOT_MAX_MARKERS && i < r->n; i++)
            if (!isnan(r->y[i])) dot(c, map_x(L, r->x[i]), map_y(L, r->y[i]), col);
    }
    clip(c, L, 0);
}

static void draw_axes(cv *c, const lay *L) {
    const exp_plot_spec *p = L->p;
    rect(c, L->l, L->t, L->r, L->b, BG, 0, INK);
    for (size_t i = 0; i < L->ax.n_ticks; i++) {
        double x = map_x(L, L->ax.ticks[i]);
        line(c, x, L->b, x, L->b + 5, INK, 1);
        text(c, x, L->b + 24, L->xt[i], A_MID, 0, 0);
    }
    for (size_t i = 0; i < L->ay.n_ticks; i++) {
        double y = map_y(L, L->ay.ticks[i]);
        line(c, L->l - 5, y, L->l, y, INK, 1);
        text(c, L->l - 9, y + 7, L->yt[i], A_END, 0, 0);
    }
    text(c, L->tx, 30, L->title, A_MID, 0, 1);
    text(c, L->xx, L->H - 12, L->xlabel, A_MID, 0, 0);
    text(c, 12 + 14, L->yy, L->ylabel, A_MID, 1, 0);
    double x = L->r + LEG_GAP, y = L->t + 12;
    for (size_t i = 0; i < L->n_leg; i++, y += LINE_H) {
        size_t s = L->leg_s[i];
        uint32_t col = EXP_PLOT_PALETTE[s % EXP_PLOT_N_PALETTE];
        if (p->kind == EXP_PLOT_HIST)
            rect(c, x + 4, y - 6, x + 20, y + 6, col, p->n_series > 1 ? 0.45 : 0.8, col);
        else
            line(c, x, y, x + 24, y, col, 2), dot(c, x + 12, y, col);
        text(c, x + LEG_TEXT, y + 7, L->leg[i], A_START, 0, 0);
    }
    if (L->more) text(c, x + LEG_TEXT, y + 7, L->more_txt, A_START, 0, 0);
}

static void draw(cv *c, const lay *L) {
    rect(c, 0, 0, L->W, L->H, BG, 1, NOSTROKE);
    for (size_t i = 0; i < L->ax.n_ticks; i++)
        line(c, map_x(L, L->ax.ticks[i]), L->t, map_x(L, L->ax.ticks[i]), L->b, GRID, 1);
    for (size_t i = 0; i < L->ay.n_ticks; i++)
        line(c, L->l, map_y(L, L->ay.ticks[i]), L->r, map_y(L, L->ay.ticks[i]), GRID, 1);
    draw_data(c, L);
    draw_axes(c, L);
}

/* ---- writers ---- */

int exp_plot_svg(const exp_plot_spec *p, nn_jbuf *out, nn_err *err) {
    if (!out) return NN_FAIL(err, NN_E_INVAL, "plot: NULL output buffer");
    lay L;
    int rc = lay_make(p, &L, err);
    if (rc) {
        lay_free(&L);
        return rc;
    }
    cv c = {.svg = out};
    nn_jbuf_printf(out,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
                   "version=\"1.1\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                   "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"14\" fill=\"#%06x\">\n",
                   L.W, L.H, L.W, L.H, INK);
    if (p->title) {
        nn_jbuf_puts(out, "<title>");
        svg_esc(out, p->title);
        nn_jbuf_puts(out, "</title>\n");
    }
    nn_jbuf_printf(out,
                   "<defs><clipPath id=\"exp-plot-area\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                   "height=\"%.2f\"/></clipPath></defs>\n",
                   L.l - CLIP_PAD, L.t - CLIP_PAD, L.r - L.l + 2 * CLIP_PAD, L.b - L.t + 2 * CLIP_PAD);
    draw(&c, &L);
    nn_jbuf_puts(out, "</svg>\n");
    lay_free(&L);
    return out->oom ? NN_FAIL(err, NN_E_NOMEM, "plot: out of memory writing the SVG") : NN_OK;
}

int exp_plot_svg_write(const exp_plot_spec *p, const char *path, nn_err *err) {
    if (!path) return NN_FAIL(err, NN_E_INVAL, "plot: NULL path");
    nn_jbuf b = {0};
    int rc = exp_plot_svg(p, &b, err);
    if (!rc) rc = nn_io_write_atomic(path, b.p, b.len, err);
    nn_jbuf_free(&b);
    return rc;
}

int exp_plot_png(const exp_plot_spec *p, const char *path, nn_err *err) {
    if (!path) return NN_FAIL(err, NN_E_INVAL, "plot: NULL path");
    lay L;
    int rc = lay_make(p, &L, err);
    uint8_t *pix = rc ? NULL : malloc((size_t)L.W * (size_t)L.H * 3);
    if (!rc && !pix) rc = NN_FAIL(err, NN_E_NOMEM, "plot: out of memory for a %.0f x %.0f image", L.W, L.H);
    if (!rc) {
        cv c = {.pix = pix, .w = (long)L.W, .h = (long)L.H};
        draw(&c, &L);
        rc = nn_png_write(path, pix, (size_t)L.W, (size_t)L.H, 3, err);
    }
    free(pix);
    lay_free(&L);
    return rc;
}
