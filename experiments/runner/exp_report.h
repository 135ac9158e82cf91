/* exp_report.h - the report of a batch evaluation (`evaluate:` experiments, `temper report DIR`).
 *
 * Reads <dir>/results.json (written by exp_evaluate_run, schema in exp_evaluate.h) and the per-cell
 * records it names, and (re)writes, each atomically:
 *   <dir>/summary.csv           one row per model x attack run x bound, plus the worst-case rows
 *   <dir>/report.md             provenance, per-model tables with the masking diagnostics, worst case
 *                               per threat model, links to the plots and adversarial grids
 *   <dir>/plots/ (.png + .svg)  robust accuracy vs eps per threat model (a line per model, worst case),
 *                               success vs training temperature (when models differ in T), distortion
 *                               histograms of the unbounded attacks (a series per model)
 * Never modifies results.json or the records.
 *
 * Details.
 * - summary.csv columns: model,temperature,attack,run,kind,norm,eps,added,samples,runs,clean_correct,
 *   successes,robust_accuracy,success_rate,mean_l0,mean_l2,mean_linf,median_l0,median_l2,median_linf,
 *   mean_iters,seconds,reused,mean_abs_logit,frac_zero_gradient,frac_saturated_softmax. A row per summary of
 *   every cell (an unbounded attack: its own criterion with eps empty, then one per bound), then per model a
 *   row per worst-case entry: attack "worst-case", run = the runs that counted joined by ';', only norm, eps,
 *   samples, robust_accuracy and the diagnostics filled. Numbers %.9g, a null value is an empty field,
 *   reused is true/false, text fields are quoted per RFC 4180 when needed.
 * - report.md: the experiment name as title, provenance, the worst-case table (a row per model with T and
 *   clean accuracy, a column per threat model), the plots (PNG shown, SVG linked), then per model its
 *   diagnostics, warnings and a table of every attack run; runs added by the temperature-aware rule are
 *   marked with a dagger. Percentages with 2 decimals; text is Markdown-escaped ('|' included), links
 *   percent-encoded; a grid link only when the file exists. No time stamp of its own: regenerating from
 *   the same folder gives the same bytes.
 * - plots (names made of [A-Za-z0-9._-]): robust_vs_eps_<norm> per norm with a worst-case entry (series i
 *   = model i, y 0..100 %); success_vs_T when at least two models differ in temperature: a line per attack
 *   (bounded attacks at their largest eps, labelled "<attack> ε=<eps>", unbounded ones by their own
 *   criterion), only attacks with success rates at >= 2 distinct temperatures, at most EXP_PLOT_N_PALETTE
 *   lines (the first in battery order: order of first appearance over the models' cells); the report names
 *   the attacks not plotted; log x when all T > 0 and max/min >= 20; no plot when no attack qualifies;
 *   hist_<attack> per unbounded attack (cells with eps null): the distortion in the cell's norm of the
 *   successful records (column 5 = 1), fraction per model, legend "<model> (n=<successes>)". Legends of
 *   per-model series drop the longest prefix ending in '/' common to all model labels (>= 2 models), and
 *   report.md says which under the plot's heading; tables keep the full labels. At most
 *   EXP_PLOT_MAX_SERIES series per plot (the first ones; the report says so). Plots of those three
 *   families that an earlier report wrote and this one did not are removed.
 * Everything is read and checked before anything is written; plots first, summary.csv, report.md last. */
#ifndef EXP_REPORT_H
#define EXP_REPORT_H
#include <stdio.h>
#include "nn_err.h"
/* Regenerates the report files of the results folder dir. out: one line per file written (NULL: silent).
 * Errors: a missing or malformed results.json or records file (naming the file and the JSON member,
 * e.g. "<dir>/results.json: models[2].cells[0]: missing 'run'"; a records file that is not float32
 * [n, 10]), paths in results.json that leave the folder, write errors naming the path. On error no report
 * file is left half-written (each is written atomically). Thread-safe for different folders. */
int exp_report_write(const char *dir, FILE *out, nn_err *err);
#endif
