/* exp_bss.h - boundary-supporting samples from the runner: `temper bss MODEL` and the bss: block of
 * experiment files generate BSS from a saved (or just trained) teacher on a data set's training samples and
 * save them, with statistics and a grid, in a folder; defense type bss reads such a folder back as its pool.
 *
 * Folder contents: samples.npy (float32 [m, C, H, W]), base.npy (int32 [m]: base class b), target.npy
 * (int32 [m]: k), logits.npy (float32 [m, K]: the teacher's logits on the samples), steps.npy (int32 [m]),
 * source.npy (int32 [m]: index of the base sample in the data set's training file), bss.json (settings,
 * teacher, data, fraction crossed, mean L2 per class pair, wall time), pairs.csv (b, k, count, crossed,
 * mean L2), grid.png (base samples above their BSS). */
#ifndef EXP_BSS_H
#define EXP_BSS_H

#include <stdio.h>

#include "exp_config.h"
#include "nn_data.h"
#include "nn_err.h"
#include "nn_net.h"

/* Generates BSS from teacher on the first spec->samples samples of train (0: all) into dir (created with its
 * parents), as above. The samples are walked in chunks of teacher->max_batch (teacher reserved by the caller);
 * per chunk the first spec->cfg.max_base samples the teacher classifies correctly are base samples
 * (atk_bss_select without a student), so max_base < max_batch keeps only part of them. Their target draws
 * follow a base sample's rank (atk_bss_generate's `first`), not the chunking. spec->cfg.lo/hi must be the
 * data's pixel range (the caller sets it; the bss: parser leaves [0, 1]). A previous bss.json in dir is
 * removed first and the new one written last (every file atomically), so a folder with a bss.json is
 * complete. bss.json: settings {samples, eta, steps, policy, seed, max_base, batch, range, grid}, teacher
 * (teacher_desc, may be NULL), data {name (null: not known here), train_samples, samples_used, shape,
 * classes}, n_base, n_bss, crossed, fraction_crossed, mean_steps, mean_l2, pairs [{base, target, count,
 * crossed, mean_l2}], seconds. grid.png shows the first spec->grid BSS (at most 64; 0: no file), inputs
 * of other than 1 or 3 channels as one grey C*H x W image. Progress: one line per chunk to progress (may be
 * NULL), "bss: 256/1000 samples, 240 base samples, 240 BSS". Errors: bad cfg, unreserved teacher, the
 * data's sample size differs from the teacher's input, no base sample at all (NN_E_INVAL), and those of
 * atk_bss_* and of the writes. Not thread-safe (uses the teacher). */
int exp_bss_generate(nn_net *teacher, const nn_dataset *train, const exp_bss_spec *spec, const char *dir,
                     const char *teacher_desc, const char *data_name, FILE *progress, nn_err *err);

/* Reads a BSS folder written by exp_bss_generate for nets of input size d and k classes: *x [n, d] and
 * *logits [n, K] (malloc'd; the caller frees). Errors name the file: missing, not NumPy, wrong dtype or
 * shape, inconsistent row counts, empty; then *x and *logits are NULL and *n is 0. */
int exp_bss_pool_load(const char *dir, size_t d, size_t k, float **x, float **logits, size_t *n, nn_err *err);

/* `temper bss MODEL [options]`; argv holds the arguments after "bss" (dispatch: exp_bss_cmd(argc - 2,
 * argv + 2, out, errs)). --help prints the usage to out (so `temper help bss` can call it with {"--help"}).
 * Results go to out, progress lines and errors to errf. Exit status: 0 ok, 1 runtime error (printed as
 * "temper: error: ..."), 2 usage (the message names the option). Sets the OpenMP thread count (--threads). */
int exp_bss_cmd(int argc, char **argv, FILE *out, FILE *errf);

#endif
