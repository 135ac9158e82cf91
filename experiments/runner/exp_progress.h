/* exp_progress.h - training progress display, fed by nn_train's progress callback.
 *
 * On a terminal: one line redrawn in place at most ~10 times a second,
 *   "epoch 3/20 [#####.....] 210/430 loss 0.1234 acc 97.1% 3,512 samples/s ETA 1m12s"
 * then a permanent line at each epoch end (with val loss/acc when available). Not a terminal: only the
 * epoch-end lines. Quiet: nothing. */
#ifndef EXP_PROGRESS_H
#define EXP_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

#include "nn_train.h"

enum { EXP_PROGRESS_QUIET = 0, EXP_PROGRESS_PLAIN, EXP_PROGRESS_TTY };

typedef struct exp_progress {
    FILE *out;
    int mode;         /* EXP_PROGRESS_* */
    double last_draw; /* monotonic seconds of the last redraw */
    int line_open;    /* a redrawable line is on screen */
} exp_progress;

/* mode from out: quiet if quiet, else TTY when isatty(fileno(out)), else PLAIN. */
void exp_progress_init(exp_progress *p, FILE *out, int quiet);
/* An nn_progress_fn: ctx is an exp_progress*. */
void exp_progress_cb(void *ctx, const nn_progress *ev);
/* Clears a half-drawn line (call before printing anything else, e.g. after an error). */
void exp_progress_end(exp_progress *p);

/* Formatting helpers (also used by the run summary). Each writes a NUL-terminated string into buf. */
/* 1234567 -> "1,234,567". */
void exp_fmt_count(char *buf, size_t cap, double v);
/* Seconds -> "45s", "1m12s", "2h03m" (rounded to whole seconds; "0.4s" below 10 s keeps a decimal). */
void exp_fmt_duration(char *buf, size_t cap, double s);
/* The in-epoch line (without "\r" or newline). */
void exp_progress_format_batch(char *buf, size_t cap, const nn_progress *ev);
/* The epoch-end line (without newline). */
void exp_progress_format_epoch(char *buf, size_t cap, const nn_progress *ev);

/* Monotonic clock in seconds. */
double exp_now(void);

#endif
