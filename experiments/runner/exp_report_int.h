/* exp_report_int.h - the report's model of results.json, shared by exp_report.c (summary.csv, report.md, the
 * entry point), exp_report_load.c (results.json and records.npy, checked) and exp_report_plot.c (the plots).
 * Internal to the runner. */
#ifndef EXP_REPORT_INT_H
#define EXP_REPORT_INT_H

#include <stdio.h>

#include "nn_err.h"
#include "nn_json.h"

#define RP_PATH 4096
#define RP_FORMAT "temper-evaluate-1"
#define RP_REC_COLS 10 /* records.npy: test_index,label,target,clean_pred,pred,success,l0,l2,linf,iters */

/* A summary's members in summary.csv column order. */
extern const char *const RP_SUM_CNT[];
extern const char *const RP_SUM_NUM[];
enum { N_CNT = 4, N_NUM = 9, S_ROBUST = 0, S_SUCCESS = 1, S_L0 = 2, S_L2 = 3, S_LINF = 4, S_ITERS = 8 };
extern const char *const RP_DIAG[];
enum { N_DIAG = 3 };
extern const char *const RP_NORMS[];
extern const char *const RP_NORM_SHOW[];
enum { N_NORMS = 3 };

typedef struct rp_sum {
    double eps; /* NaN: null (the attack's own criterion, no bound) */
    size_t cnt[N_CNT];
    double num[N_NUM]; /* NaN: null or absent */
} rp_sum;

typedef struct rp_cell {
    const char *attack, *run, *kind, *added, *records, *grid; /* added, grid: NULL for null */
    int norm;                                                 /* index in RP_NORMS */
    double eps, seconds;                                      /* eps NaN: unbounded attack */
    int reused;
    rp_sum *sum;
    size_t n_sum;
    double *dist; /* unbounded: distortion in its norm of each successful run (from records.npy) */
    size_t n_dist;
} rp_cell;

typedef struct rp_worst {
    int norm;
    double eps, robust;
    size_t samples;
    const nn_json_val *attacks; /* array of strings, or NULL */
} rp_worst;

typedef struct rp_model {
    const char *label, *dir, *file, *sha, *data;
    double t, clean, diag[N_DIAG], diag_samples, test_samples;
    const nn_json_val *warnings; /* array of strings, or NULL */
    rp_cell *cell;
    size_t n_cell;
    rp_worst *wc;
    size_t n_wc;
} rp_model;

/* A plot written (for the report's links and the removal of stale plots). */
typedef struct rp_plot {
    char stem[160], caption[320], sub[320], note[1024]; /* sub: above the image; note: after the links */
} rp_plot;

typedef struct rp {
    nn_json doc;
    const char *dir;
    char file[RP_PATH]; /* <dir>/results.json */
    const char *name, *xpath, *xsha, *version, *git, *started, *blas_cfg, *blas_mode;
    double seed, threads, blas_threads, wall, cells_total, cells_reused, samples; /* NaN: absent */
    int force, taware;                                                            /* -1: absent */
    const nn_json_val *libs;
    rp_model *m;
    size_t n_m, pre; /* pre: length of the model labels' common prefix that legends drop (label_prefix) */
    rp_plot *plot;
    size_t n_plot, cap_plot;
} rp;

int rp_load(rp *r, nn_err *err); /* results.json and every cell's records.npy; writes nothing */
void rp_free(rp *r);
size_t rp_label_prefix(const rp *r);               /* the model labels' common prefix that legends drop */
int rp_plot_robust(rp *r, FILE *out, nn_err *err); /* robust accuracy vs eps per norm */
int rp_plot_temperature(rp *r, FILE *out, nn_err *err); /* success vs training temperature */
int rp_plot_hists(rp *r, FILE *out, nn_err *err);       /* distortion histograms of unbounded attacks */
void rp_plots_clean(const rp *r); /* removes the plots an earlier report made and this one did not */

#endif
