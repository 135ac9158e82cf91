/* exp_plot.h - small line charts and histograms for the runner's reports, as SVG text and PNG images.
 *
 * One layout (axis ranges, "nice" ticks, margins, pixel mapping) drives both writers through the same
 * drawing code, so an SVG and a PNG of one spec put every mark at the same pixel. The PNG is rasterized
 * here (2 px lines, filled disks, a built-in 5x7 bitmap font covering ASCII 32..126 plus the Greek
 * epsilon and the infinity sign; other characters draw as '?') and written with nn_png_write; the SVG is
 * self-contained SVG 1.1 with all text XML-escaped (valid UTF-8 passes through, invalid bytes become
 * U+FFFD). Series colours follow the colour-blind-safe Okabe-Ito palette (EXP_PLOT_PALETTE order).
 * Files are written atomically (temporary file + rename). No global state; thread-safe per spec. */
#ifndef EXP_PLOT_H
#define EXP_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "nn_err.h"
#include "nn_json.h"

enum { EXP_PLOT_LINE = 0, EXP_PLOT_HIST = 1 };
enum { EXP_PLOT_FMT_PLAIN = 0, EXP_PLOT_FMT_PERCENT = 1 }; /* PERCENT: tick v reads "100*v %" */

#define EXP_PLOT_MAX_TICKS 32
#define EXP_PLOT_MAX_SERIES 64
#define EXP_PLOT_MAX_BINS 1000
#define EXP_PLOT_MAX_MARKERS 100 /* a line series with more points is drawn without markers */
#define EXP_PLOT_DEFAULT_W 800
#define EXP_PLOT_DEFAULT_H 500
#define EXP_PLOT_MIN_SIDE 160
#define EXP_PLOT_MAX_SIDE 4096
#define EXP_PLOT_N_PALETTE 8
/* Series i is drawn in EXP_PLOT_PALETTE[i % 8] (0xRRGGBB): blue, vermillion, bluish green, orange, sky
 * blue, reddish purple, yellow, black. */
extern const uint32_t EXP_PLOT_PALETTE[EXP_PLOT_N_PALETTE];

/* One data series. LINE: points (x[i], y[i]), i < n; x finite (and > 0 on a log axis), y finite or NaN
 * (NaN leaves a gap: the polyline is split there). HIST: x holds n raw values (non-finite ones are
 * skipped), y is unused. label: legend text (UTF-8); NULL or "" puts no legend entry. Borrowed.
 * The legend is a column right of the plot area, as wide as its longest label (the 5x7 font advances 12 px
 * per character), so every label ends inside the image; when that would leave the plot area narrower than
 * 55% of the width, longer labels are shortened to the width left by replacing their middle with "..."
 * (both ends stay: labels sharing a start differ at their end; the same text in SVG and PNG). Entries run
 * from the top of the plot area to its bottom; those that do not fit are summed up in a last entry
 * "+N more". Title and axis labels likewise stay inside the image (moved, else shortened with "..."). */
typedef struct exp_plot_series {
    const char *label;
    const double *x, *y;
    size_t n;
} exp_plot_series;

typedef struct exp_plot_spec {
    const char *title, *xlabel, *ylabel; /* UTF-8, NULL = none */
    int kind;                            /* EXP_PLOT_LINE | EXP_PLOT_HIST */
    int log_x;                           /* LINE only: log10 x axis */
    int y_fixed; /* 1: the y axis spans exactly [y_min, y_max]; 0: fitted to the data */
    double y_min, y_max;
    int y_format;  /* EXP_PLOT_FMT_* for the y tick labels */
    size_t bins;   /* HIST: number of bins, 0 = automatic (see exp_plot_hist_bins) */
    int hist_frac; /* HIST: bar height = fraction of the series' counted values (else the count) */
    const exp_plot_series *series;
    size_t n_series;      /* 0..EXP_PLOT_MAX_SERIES; 0 draws empty axes */
    size_t width, height; /* pixels (SVG user units); both 0 = 800 x 500 */
} exp_plot_spec;

/* An axis: range [lo, hi] and increasing tick positions inside it (data units, not log). */
typedef struct exp_plot_axis {
    double lo, hi;
    int log;
    size_t n_ticks;
    double ticks[EXP_PLOT_MAX_TICKS];
} exp_plot_axis;

/* A spec with every field zero except width/height 0 (default size), kind LINE. */
exp_plot_spec exp_plot_spec_default(void);

/* Builds an axis over data spanning [dmin, dmax]. Linear: ticks are multiples of a step 1, 2 or 5 x 10^k
 * chosen for about five intervals; fitted (fixed = 0) the range widens to the enclosing ticks, fixed the
 * range is exactly [dmin, dmax] and the ticks are the multiples inside it. A single value v widens to
 * v +- 10% (+-1 for 0); no data (both NaN) gives 0..1. Log (fitted only): the range widens to whole
 * decades (at least one); ticks at 1, 2, 5 x 10^k when it spans <= 3 decades, else at every decade (or
 * every s-th, keeping <= 9 ticks); no data gives 1..10. Errors: NN_E_INVAL (ax NULL, dmin > dmax, one bound
 * NaN, a non-finite bound or range, log with dmin <= 0 or fixed, fixed with dmin >= dmax). */
int exp_plot_axis_make(double dmin, double dmax, int log, int fixed, exp_plot_axis *ax, nn_err *err);

/* Shared histogram bins for all series of a HIST spec: bin b spans [lo + b*width, lo + (b+1)*width), the
 * last bin also holds its right edge. Over the finite values of all series, [vmin, vmax] (widened by 0.5
 * each side when vmin == vmax; 0..1 when there is no value): bins > 0 gives exactly that many bins with
 * lo = vmin, width = (vmax - vmin) / bins; bins == 0 picks a target of ceil(log2 n) + 1 bins (n the largest
 * series' count, Sturges' rule, 1..50), rounds the width to a 1/2/5 x 10^k step and aligns lo to a
 * multiple of it. Errors: NN_E_INVAL (NULL outputs, series NULL with n_series > 0, a series with n > 0
 * and x NULL, bins > EXP_PLOT_MAX_BINS, automatic bins exceeding it, non-finite range). */
int exp_plot_hist_bins(const exp_plot_series *series, size_t n_series, size_t bins, double *lo, double *width,
                       size_t *n_bins, nn_err *err);

/* counts[b] = number of the n values v falling in bin b of the bins above (edges lo + b*width; a value
 * exactly on an inner edge belongs to the bin on its right, the last bin holds its right edge). Values
 * outside [lo, lo + n_bins*width] or non-finite are not counted. counts[0..n_bins) is overwritten (zeroed
 * first). Returns the number counted (0 for v NULL, width <= 0 or non-finite lo). */
size_t exp_plot_hist_count(const double *v, size_t n, double lo, double width, size_t n_bins, size_t *counts);

/* Appends the plot as an SVG 1.1 document (UTF-8, starting with the XML declaration) to out. Errors:
 * NN_E_INVAL (see exp_plot_png), NN_E_NOMEM (also when out ran out of memory). */
int exp_plot_svg(const exp_plot_spec *p, nn_jbuf *out, nn_err *err);

/* Writes the SVG of exp_plot_svg to path, atomically. Errors: as exp_plot_svg, NN_E_IO naming path. */
int exp_plot_svg_write(const exp_plot_spec *p, const char *path, nn_err *err);

/* Rasterizes the plot into a width x height RGB image and writes it to path as PNG (atomically, by
 * nn_png_write). Errors: NN_E_INVAL with a message: p or path NULL, unknown kind or y_format, one of
 * width/height 0 or outside EXP_PLOT_MIN_SIDE..EXP_PLOT_MAX_SIDE, n_series > EXP_PLOT_MAX_SERIES, series
 * NULL with n_series > 0, a series with n > 0 and x (or, LINE, y) NULL, a non-finite x or infinite y
 * (LINE), x <= 0 on a log axis, log_x on a histogram, y_fixed without finite y_min < y_max, bins out of
 * range, a size too small for the labels; NN_E_NOMEM; NN_E_IO from nn_png_write. */
int exp_plot_png(const exp_plot_spec *p, const char *path, nn_err *err);

#endif
