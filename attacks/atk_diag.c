/* atk_diag.c - gradient-masking diagnostics and the warnings printed beside robustness figures. */
#include "atk_diag.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_loss.h"

typedef struct diag_ctx {
    const int *y;
    atk_cfg cfg;       /* untargeted CE at T=1 */
    double abs_sum, abs_sq; /* |z| sums */
    size_t saturated;
    float *p;          /* [n, k] scratch */
} diag_ctx;

static int diag_dlogits(void *vctx, const float *z, size_t n, size_t k, float *g) {
    diag_ctx *c = vctx;
    for (size_t i = 0; i < n * k; i++) {
        double a = fabs((double)z[i]);
        c->abs_sum += a;
        c->abs_sq += a * a;
    }
    nn_softmax(z, n, k, 1.0f, c->p);
    for (size_t i = 0; i < n; i++) {
        float m = 0;
        for (size_t j = 0; j < k; j++)
            m = c->p[i * k + j] > m ? c->p[i * k + j] : m;
        c->saturated += m == 1.0f;
    }
    atk_objective(&c->cfg, z, c->y, NULL, n, k, NULL, g);
    return 0;
}

int atk_diag_compute(nn_net *net, const float *x, const int *y, size_t n, atk_diag *d, nn_err *err) {
    memset(d, 0, sizeof *d);
    if (n == 0) return NN_OK;
    if (net->max_batch == 0) return NN_FAIL(err, NN_E_INVAL, "diagnostics: net not reserved (nn_net_reserve)");
    size_t b = net->max_batch, k = net->n_classes, dim = net->n_in;
    diag_ctx c = {.cfg = atk_cfg_default(ATK_FGSM)};
    float *g = malloc(b * dim * sizeof *g);
    c.p = malloc(b * k * sizeof *c.p);
    int rc = NN_OK;
    if (!g || !c.p) {
        rc = NN_FAIL(err, NN_E_NOMEM, "diagnostics: out of memory");
        goto fail;
    }
    size_t zero = 0;
    double gsum = 0;
    for (size_t off = 0; off < n; off += b) {
        size_t m = n - off < b ? n - off : b;
        c.y = y + off;
        if ((rc = nn_net_input_grad(net, x + off * dim, m, diag_dlogits, &c, g, err))) goto fail;
        for (size_t i = 0; i < m; i++) {
            double s = 0;
            for (size_t j = 0; j < dim; j++)
                s += (double)g[i * dim + j] * g[i * dim + j];
            zero += s == 0.0;
            gsum += sqrt(s);
        }
    }
    double cells = (double)n * (double)k;
    d->n = n;
    d->mean_abs_logit = c.abs_sum / cells;
    d->std_abs_logit = sqrt(fmax(0.0, c.abs_sq / cells - d->mean_abs_logit * d->mean_abs_logit));
    d->frac_zero_grad = (double)zero / (double)n;
    d->frac_saturated = (double)c.saturated / (double)n;
    d->mean_grad_l2 = gsum / (double)n;
fail:
    free(g);
    free(c.p);
    return rc;
}

typedef struct wbuf {
    char *buf;
    size_t cap, len, count;
} wbuf;

static void warn(wbuf *w, const char *fmt, ...) {
    w->count++;
    if (w->len + 1 >= w->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (r > 0) w->len = w->len + (size_t)r < w->cap ? w->len + (size_t)r : w->cap - 1;
}

static int single_step(atk_kind k) { return k == ATK_FGSM; }
static int iterative(atk_kind k) { return k == ATK_BIM || k == ATK_PGD; }

/* Single-step beating iterative at the same norm and eps. */
static void warn_single_vs_iter(wbuf *w, const atk_row *r, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (single_step(r[i].kind) && iterative(r[j].kind) && r[i].norm == r[j].norm &&
                fabs(r[i].eps - r[j].eps) <= 1e-6 * (1 + r[i].eps) && r[i].success > r[j].success + 0.02)
                warn(w,
                     "warning: single-step %s (%.1f%% success) beats iterative %s (%.1f%%) at eps %g: an "
                     "iterative attack should do at least as well; its gradients are likely masked or its "
                     "loss uninformative (try the margin loss)\n",
                     r[i].attack, 100 * r[i].success, r[j].attack, 100 * r[j].success, r[i].eps);
}

/* Success not growing with eps, per attack name. */
static void warn_eps_growth(wbuf *w, const atk_row *r, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (r[i].eps < 0) continue;
        int first = 1;
        for (size_t j = 0; j < i; j++)
            first &= strcmp(r[j].attack, r[i].attack) != 0 || r[j].eps < 0;
        if (!first) continue;
        size_t lo = i, hi = i; /* the smallest and largest eps of this attack */
        int falls = 0;
        for (size_t j = i; j < n; j++) {
            if (strcmp(r[j].attack, r[i].attack) || r[j].eps < 0) continue;
            if (r[j].eps < r[lo].eps) lo = j;
            if (r[j].eps > r[hi].eps) hi = j;
            for (size_t l = i; l < n; l++)
                if (!strcmp(r[l].attack, r[i].attack) && r[l].eps > r[j].eps && r[l].success < r[j].success - 0.02)
                    falls = 1;
        }
        if (falls)
            warn(w, "warning: %s success falls as eps grows: a stronger attack cannot do worse; gradient masking "
                    "or a broken attack\n", r[i].attack);
        else if (hi != lo && r[hi].eps >= 2 * r[lo].eps && r[hi].success < 0.5 &&
                 r[hi].success < r[lo].success + 0.02)
            warn(w, "warning: %s success does not grow with eps (%.1f%% at eps %g, %.1f%% at eps %g): the "
                    "gradients it follows are likely uninformative (masked)\n",
                 r[i].attack, 100 * r[lo].success, r[lo].eps, 100 * r[hi].success, r[hi].eps);
    }
}

size_t atk_diag_warnings(const atk_diag *d, const atk_row *rows, size_t n_rows, char *buf, size_t cap) {
    wbuf w = {buf, cap, 0, 0};
    if (cap) buf[0] = '\0';
    if (d && d->frac_zero_grad > 0.01)
        warn(&w, "warning: %.1f%% of the samples have an input gradient of exactly zero at T=1 (mean |logit| %.3g): "
                 "the softmax is saturated and softmax/cross-entropy attacks see nothing. Failures of FGSM, PGD-CE "
                 "or JSMA-F here are gradient masking, not robustness; use the margin loss, C&W, or softmax(z/T)\n",
             100 * d->frac_zero_grad, d->mean_abs_logit);
    else if (d && d->frac_saturated > 0.5)
        warn(&w, "warning: the softmax at T=1 is saturated (top probability exactly 1 in float32) on %.1f%% of the "
                 "samples (mean |logit| %.3g): softmax-based gradients are unreliable; prefer logit-based attacks\n",
             100 * d->frac_saturated, d->mean_abs_logit);
    warn_single_vs_iter(&w, rows, n_rows);
    warn_eps_growth(&w, rows, n_rows);
    for (size_t i = 0; i < n_rows; i++)
        if (rows[i].eps < 0 && (rows[i].kind == ATK_CW || rows[i].kind == ATK_DEEPFOOL) && rows[i].success < 0.95)
            warn(&w, "warning: unbounded %s reaches only %.1f%% success: an unbounded attack should reach ~100%%; "
                     "more iterations or search steps, or masked gradients\n",
                 rows[i].attack, 100 * rows[i].success);
    return w.count;
}
