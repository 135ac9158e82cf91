/* exp_progress.c - the progress line: throttled redraws on a terminal, one line per epoch otherwise. */
#include "exp_progress.h"

#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 10
#define REDRAW_S 0.1 /* at most ~10 redraws a second */

double exp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void exp_progress_init(exp_progress *p, FILE *out, int quiet) {
    memset(p, 0, sizeof *p);
    p->out = out;
    if (quiet || !out)
        p->mode = EXP_PROGRESS_QUIET;
    else
        p->mode = isatty(fileno(out)) ? EXP_PROGRESS_TTY : EXP_PROGRESS_PLAIN;
    p->last_draw = -1e300;
}

void exp_fmt_count(char *buf, size_t cap, double v) {
    if (cap == 0) return;
    if (!isfinite(v) || v < 0 || v >= 1e18) {
        snprintf(buf, cap, "%g", v);
        return;
    }
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%.0f", v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0 && o + 2 < cap) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

void exp_fmt_duration(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    if (s < 10) {
        snprintf(buf, cap, "%.1fs", s);
        return;
    }
    unsigned long long t = (unsigned long long)(s + 0.5);
    if (t < 60)
        snprintf(buf, cap, "%llus", t);
    else if (t < 3600)
        snprintf(buf, cap, "%llum%02llus", t / 60, t % 60);
    else
        snprintf(buf, cap, "%lluh%02llum", t / 3600, (t % 3600) / 60);
}

/* Fraction of the whole training done after batch ev->batch of epoch ev->epoch. */
static double done_fraction(const nn_progress *ev) {
    if (ev->epochs == 0 || ev->batches == 0) return 0.0;
    double steps = (double)(ev->epoch - 1) * (double)ev->batches + (double)ev->batch;
    return steps / ((double)ev->epochs * (double)ev->batches);
}

void exp_progress_format_batch(char *buf, size_t cap, const nn_progress *ev) {
    char bar[BAR_WIDTH + 1], rate[32], eta[32];
    size_t fill =
        ev->batches ? (size_t)((double)BAR_WIDTH * (double)ev->batch / (double)ev->batches + 0.5) : 0;
    if (fill > BAR_WIDTH) fill = BAR_WIDTH;
    for (size_t i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    exp_fmt_count(rate, sizeof rate, ev->samples_per_s);
    double f = done_fraction(ev);
    exp_fmt_duration(eta, sizeof eta, f > 0 ? ev->elapsed_s * (1.0 - f) / f : NAN);
    snprintf(buf, cap, "epoch %zu/%zu [%s] %zu/%zu loss %.4f acc %.1f%% %s samples/s ETA %s", ev->epoch,
             ev->epochs, bar, ev->batch, ev->batches, ev->loss, 100.0 * ev->acc, rate, eta);
}

void exp_progress_format_epoch(char *buf, size_t cap, const nn_progress *ev) {
    char rate[32], el[32];
    exp_fmt_count(rate, sizeof rate, ev->samples_per_s);
    exp_fmt_duration(el, sizeof el, ev->elapsed_s);
    int n = snprintf(buf, cap, "epoch %zu/%zu loss %.4f acc %.2f%%", ev->epoch, ev->epochs, ev->loss,
                     100.0 * ev->acc);
    if (n < 0 || (size_t)n >= cap) return;
    size_t o = (size_t)n;
    if (isfinite(ev->val_loss)) {
        n = snprintf(buf + o, cap - o, " val_loss %.4f val_acc %.2f%%", ev->val_loss, 100.0 * ev->val_acc);
        if (n < 0 || (size_t)n >= cap - o) return;
        o += (size_t)n;
    }
    snprintf(buf + o, cap - o, " lr %.3g %s samples/s elapsed %s", ev->lr, rate, el);
}

/* Columns of the terminal on out (80 if unknown). */
static size_t term_width(FILE *out) {
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

void exp_progress_end(exp_progress *p) {
    if (p->mode == EXP_PROGRESS_TTY && p->line_open) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
    }
    p->line_open = 0;
}

void exp_progress_cb(void *ctx, const nn_progress *ev) {
    exp_progress *p = ctx;
    char line[256];
    if (p->mode == EXP_PROGRESS_QUIET) return;
    if (ev->event == NN_PROGRESS_EPOCH) {
        exp_progress_end(p);
        exp_progress_format_epoch(line, sizeof line, ev);
        fprintf(p->out, "%s\n", line);
        fflush(p->out);
        return;
    }
    if (p->mode != EXP_PROGRESS_TTY || ev->event != NN_PROGRESS_BATCH) return;
    double now = exp_now();
    if (now - p->last_draw < REDRAW_S) return;
    p->last_draw = now;
    exp_progress_format_batch(line, sizeof line, ev);
    size_t w = term_width(p->out); /* a wrapped line could not be redrawn in place */
    if (w - 1 < sizeof line) line[w - 1] = '\0';
    /* \r back to column 0, the line, then erase whatever a longer previous line left. */
    fprintf(p->out, "\r%s\033[K", line);
    fflush(p->out);
    p->line_open = 1;
}
