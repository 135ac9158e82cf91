/* atk_summary.c - robust accuracy, success rate and distortion statistics of a set of attack results. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atk.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median of v[n] (sorted in place); 0 for n == 0. */
static double median(float *v, size_t n) {
    if (n == 0) return 0.0;
    qsort(v, n, sizeof *v, cmp_float);
    return n % 2 ? v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + v[n / 2]);
}

/* The distortion a bound applies to. */
static float bound_dist(const atk_result *r, int norm_l0, atk_norm norm) {
    return norm_l0 ? r->l0 : norm == ATK_L2 ? r->l2 : r->linf;
}

int atk_summarize(const atk_result *res, size_t n, size_t d, int norm_l0, atk_norm norm, double eps,
                  atk_summary *s, nn_err *err) {
    memset(s, 0, sizeof *s);
    s->eps = eps;
    s->n_runs = n;
    if (n == 0) return NN_OK;
    float *buf = malloc(3 * n * sizeof *buf);
    if (!buf) return NN_FAIL(err, NN_E_NOMEM, "summary: out of memory");
    float *l0 = buf, *l2 = buf + n, *li = buf + 2 * n;
    double sum0 = 0, sum2 = 0, sumi = 0, iters = 0;
    size_t robust = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i; /* entries i..j-1 share one source sample */
        int broken = 0, correct = res[i].clean_pred == res[i].label, all = 1;
        float lo = INFINITY, hi = 0;
        for (; j < n && res[j].sample == res[i].sample; j++) {
            const atk_result *r = &res[j];
            iters += r->iters;
            if (r->clean_pred != r->label) continue;
            s->n_correct++;
            float dist = bound_dist(r, norm_l0, norm);
            if (!r->success || (eps >= 0 && dist > eps + 1e-6 * (eps + 1))) {
                all = 0;
                continue;
            }
            broken = 1;
            lo = dist < lo ? dist : lo;
            hi = dist > hi ? dist : hi;
            l0[s->n_success] = r->l0;
            l2[s->n_success] = r->l2;
            li[s->n_success] = r->linf;
            sum0 += r->l0;
            sum2 += r->l2;
            sumi += r->linf;
            s->n_success++;
        }
        s->n_samples++;
        robust += correct && !broken;
        if (broken) s->best_case += lo, s->n_best++;
        if (broken && all) s->worst_case += hi, s->n_worst++;
        i = j;
    }
    size_t k = s->n_success;
    s->robust_acc = (double)robust / (double)s->n_samples;
    s->success_rate = s->n_correct ? (double)k / (double)s->n_correct : 0.0;
    s->mean_iters = iters / (double)n;
    if (k) {
        s->mean_l0 = sum0 / k;
        s->mean_l2 = sum2 / k;
        s->mean_linf = sumi / k;
        s->rho_adv = s->mean_l0 / (double)d;
    }
    if (s->n_best) s->best_case /= (double)s->n_best;
    if (s->n_worst) s->worst_case /= (double)s->n_worst;
    s->median_l0 = median(l0, k);
    s->median_l2 = median(l2, k);
    s->median_linf = median(li, k);
    free(buf);
    return NN_OK;
}
