/* def_bss.c - knowledge distillation with boundary-supporting samples (def_bss.h). */
#include "def_bss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_loss.h"

def_bss_cfg def_bss_cfg_default(void) {
    def_bss_cfg c;
    memset(&c, 0, sizeof c);
    c.temperature = 3.0f;
    c.ratio_hi = 3.0f;
    c.attack_hi = 2.0f;
    c.attack_speed = 4.0f / 3.0f;
    c.epochs = 80;
    c.bss = atk_bss_cfg_default();
    return c;
}

int def_bss_cfg_validate(const def_bss_cfg *c, nn_err *err) {
    if (!(c->temperature > 0) || !isfinite(c->temperature))
        return NN_FAIL(err, NN_E_INVAL, "temperature must be > 0 (got %g)", c->temperature);
    const float w[3] = {c->ratio_hi, c->attack_hi, c->attack_speed};
    const char *names[3] = {"ratio", "attack_ratio", "attack_speed"};
    for (int i = 0; i < 3; i++)
        if (!(w[i] >= 0) || !isfinite(w[i]))
            return NN_FAIL(err, NN_E_INVAL, "%s must be >= 0 and finite (got %g)", names[i], w[i]);
    if (c->epochs < 1) return NN_FAIL(err, NN_E_INVAL, "epochs must be >= 1");
    return atk_bss_cfg_validate(&c->bss, err);
}

double def_bss_ratio(const def_bss_cfg *c, size_t e) {
    double v = c->ratio_hi * (1.0 - (double)e / (double)c->epochs);
    return (v > 0 ? v : 0) + 1.0;
}

double def_bss_attack_ratio(const def_bss_cfg *c, size_t e) {
    double v = c->attack_hi * (1.0 - c->attack_speed * (double)e / (double)c->epochs);
    return v > 0 ? v : 0;
}

/* w * mean-row soft CE of one row: adds w * (softmax(z/T) - p) / (T n) to dz and returns w * the row's CE / n. */
static double soft_row(const float *z, const float *p, size_t k, float T, double w, size_t n, float *dz) {
    double mx = z[0], s = 0, loss = 0;
    for (size_t j = 1; j < k; j++)
        if (z[j] > mx) mx = z[j];
    for (size_t j = 0; j < k; j++)
        s += exp(((double)z[j] - mx) / T);
    double lse = log(s);
    for (size_t j = 0; j < k; j++) {
        double ls = ((double)z[j] - mx) / T - lse; /* log softmax(z/T)_j */
        loss -= (double)p[j] * ls;
        dz[j] += (float)(w * (exp(ls) - (double)p[j]) / ((double)T * (double)n));
    }
    return w * loss / (double)n;
}

double def_bss_loss(const float *z, const int *y, const float *p, size_t n, const float *zb, const float *pb,
                    size_t m, size_t k, float T, double r, double a, float *dz, float *dzb) {
    double loss = nn_loss_ce(z, y, n, k, 1.0f, dz); /* mean CE and its gradient into dz */
    for (size_t i = 0; i < n; i++)
        loss += soft_row(z + i * k, p + i * k, k, T, r, n, dz + i * k);
    memset(dzb, 0, m * k * sizeof *dzb);
    for (size_t i = 0; i < m; i++)
        loss += soft_row(zb + i * k, pb + i * k, k, T, a, m, dzb + i * k);
    return loss;
}

void def_bss_free(def_bss *b) {
    free(b->xs);
    free(b->zt);
    free(b->dz);
    free(b->sel);
    free(b->res);
    b->xs = b->zt = b->dz = NULL;
    b->sel = NULL;
    b->res = NULL;
}

int def_bss_init(def_bss *b, const def_bss_cfg *cfg, nn_net *teacher, nn_net *student, size_t max_batch,
                 const float *pool_x, const float *pool_logits, size_t pool_n, nn_err *err) {
    memset(b, 0, sizeof *b);
    int rc = def_bss_cfg_validate(cfg, err);
    if (rc) return rc;
    if (!teacher || !student) return NN_FAIL(err, NN_E_INVAL, "BSS distillation needs a teacher and a student");
    if (teacher->max_batch == 0) return NN_FAIL(err, NN_E_INVAL, "the teacher is not reserved (nn_net_reserve)");
    if (teacher->n_in != student->n_in || teacher->n_classes != student->n_classes)
        return NN_FAIL(err, NN_E_SHAPE, "the teacher takes %zu inputs and gives %zu classes, the student %zu and %zu",
                       teacher->n_in, teacher->n_classes, student->n_in, student->n_classes);
    if (!pool_x != !pool_logits || (pool_x && pool_n == 0))
        return NN_FAIL(err, NN_E_INVAL, "a BSS pool needs samples, teacher logits and at least one row");
    if (max_batch == 0) return NN_FAIL(err, NN_E_INVAL, "max_batch must be >= 1");
    b->cfg = *cfg;
    b->teacher = teacher;
    b->pool_x = pool_x;
    b->pool_logits = pool_logits;
    b->pool_n = pool_n;
    b->max_batch = max_batch;
    b->k = student->n_classes;
    b->d = student->n_in;
    size_t base = cfg->bss.max_base < max_batch ? cfg->bss.max_base : max_batch;
    b->max_bss = pool_x ? base : atk_bss_count(&cfg->bss, base, b->k);
    size_t rows = max_batch + b->max_bss;
    /* xs also holds the gathered base samples after the BSS: [rows + base, D] */
    b->xs = malloc((rows + base) * b->d * sizeof *b->xs);
    b->zt = malloc(2 * rows * b->k * sizeof *b->zt);
    b->dz = malloc(rows * b->k * sizeof *b->dz);
    b->sel = malloc(max_batch * sizeof *b->sel);
    b->res = malloc((b->max_bss ? b->max_bss : 1) * sizeof *b->res);
    if (!b->xs || !b->zt || !b->dz || !b->sel || !b->res) {
        def_bss_free(b);
        return NN_FAIL(err, NN_E_NOMEM, "out of memory for BSS distillation buffers (batch %zu)", max_batch);
    }
    if ((rc = nn_net_reserve(student, rows, err))) def_bss_free(b);
    return rc;
}

/* The batch's BSS into xs[n..n+m) with the teacher's logits in zt[n..n+m); returns m through *m. */
static int make_bss(def_bss *b, nn_net *student, const float *x, const int *y, size_t n, size_t *m, nn_err *err) {
    size_t d = b->d, k = b->k;
    *m = 0;
    if (b->pool_x) {
        size_t want = b->max_bss < b->pool_n ? b->max_bss : b->pool_n;
        for (size_t i = 0; i < want; i++, b->pool_next = (b->pool_next + 1) % b->pool_n) {
            memcpy(b->xs + (n + i) * d, b->pool_x + b->pool_next * d, d * sizeof(float));
            memcpy(b->zt + (n + i) * k, b->pool_logits + b->pool_next * k, k * sizeof(float));
        }
        *m = want;
        return NN_OK;
    }
    size_t ns = 0;
    int rc = atk_bss_select(b->teacher, student, &b->cfg.bss, x, y, n, b->zt, b->sel, &ns, err);
    if (rc || ns == 0) return rc;
    float *base = b->xs + (b->max_batch + b->max_bss) * d;
    for (size_t i = 0; i < ns; i++)
        memcpy(base + i * d, x + b->sel[i] * d, d * sizeof(float));
    size_t cnt = atk_bss_count(&b->cfg.bss, ns, k);
    rc = atk_bss_generate(b->teacher, &b->cfg.bss, base, ns, b->drawn, NULL, b->xs + n * d, b->res, b->zt + n * k,
                          err);
    if (rc) return rc;
    b->drawn += ns;
    for (size_t i = 0; i < cnt; i++) {
        b->n_crossed += b->res[i].crossed != 0;
        b->l2_sum += b->res[i].l2;
    }
    b->n_bss += cnt;
    *m = cnt;
    return NN_OK;
}

double def_bss_step(void *ctx, nn_net *net, const float *x, const int *y, const size_t *idx, size_t n, size_t epoch,
                    nn_rng *rng, int *pred) {
    (void)idx;
    def_bss *b = ctx;
    size_t k = b->k, d = b->d, m = 0, e = epoch + 1;
    if (n > b->max_batch) {
        b->failed = NN_FAIL(&b->err, NN_E_INVAL, "BSS distillation: batch %zu, set up for %zu", n, b->max_batch);
        return NAN;
    }
    double r = def_bss_ratio(&b->cfg, e), a = def_bss_attack_ratio(&b->cfg, e);
    int rc = nn_net_predict(b->teacher, x, n, b->zt, &b->err);
    if (!rc && a > 0) rc = make_bss(b, net, x, y, n, &m, &b->err);
    const float *z = NULL;
    if (!rc) {
        memcpy(b->xs, x, n * d * sizeof(float));
        float *p = b->zt + (b->max_batch + b->max_bss) * k; /* soft labels after the logits */
        nn_softmax(b->zt, n + m, k, b->cfg.temperature, p);
        rc = nn_net_forward(net, b->xs, n + m, 1, rng, &z, &b->err);
        if (!rc) {
            double loss = def_bss_loss(z, y, p, n, z + n * k, p + n * k, m, k, b->cfg.temperature, r, a, b->dz,
                                       b->dz + n * k);
            nn_argmax(z, n, k, pred);
            rc = nn_net_backward(net, b->dz, NULL, 1, &b->err);
            if (!rc) return loss;
        }
    }
    b->failed = rc;
    return NAN;
}
