/* def_distill.c - the knowledge-distillation loss, teacher soft labels and bias adjustment (def_distill.h). */
#include "def_distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_loss.h"

def_kd_cfg def_kd_cfg_default(void) {
    def_kd_cfg c = {20.0f, 1.0f, 1};
    return c;
}

int def_kd_cfg_validate(const def_kd_cfg *c, nn_err *err) {
    if (!(c->temperature > 0) || !isfinite(c->temperature))
        return NN_FAIL(err, NN_E_INVAL, "temperature must be > 0 (got %g)", c->temperature);
    if (!(c->alpha >= 0 && c->alpha <= 1)) return NN_FAIL(err, NN_E_INVAL, "alpha must be in [0, 1] (got %g)", c->alpha);
    return NN_OK;
}

/* Checks that the teachers agree on input size and classes. */
static int check_teachers(nn_net *const *t, size_t n, nn_err *err) {
    if (n == 0 || !t) return NN_FAIL(err, NN_E_INVAL, "distillation needs at least one teacher");
    for (size_t i = 0; i < n; i++) {
        if (t[i]->max_batch == 0) return NN_FAIL(err, NN_E_INVAL, "teacher %zu is not reserved (nn_net_reserve)", i);
        if (t[i]->n_in != t[0]->n_in || t[i]->n_classes != t[0]->n_classes)
            return NN_FAIL(err, NN_E_SHAPE, "teacher %zu takes %zu inputs and gives %zu classes, teacher 0 %zu and %zu",
                           i, t[i]->n_in, t[i]->n_classes, t[0]->n_in, t[0]->n_classes);
    }
    return NN_OK;
}

/* def_soft_labels with caller scratch acc[n * K] (doubles) and q[K]. */
static int soft_labels_into(nn_net *const *teachers, size_t n_teachers, const float *x, size_t n, float T, float *p,
                            double *acc, float *q, nn_err *err) {
    int rc = NN_OK;
    size_t k = teachers[0]->n_classes, d = teachers[0]->n_in;
    memset(acc, 0, n * k * sizeof *acc);
    for (size_t t = 0; t < n_teachers && !rc; t++) {
        nn_net *net = teachers[t];
        for (size_t off = 0; off < n && !rc; off += net->max_batch) {
            size_t m = n - off < net->max_batch ? n - off : net->max_batch;
            const float *z;
            if ((rc = nn_net_forward(net, x + off * d, m, 0, NULL, &z, err))) break;
            for (size_t i = 0; i < m; i++) {
                nn_softmax(z + i * k, 1, k, T, q);
                for (size_t j = 0; j < k; j++)
                    acc[(off + i) * k + j] += q[j];
            }
        }
    }
    for (size_t i = 0; i < n * k && !rc; i++)
        p[i] = (float)(acc[i] / (double)n_teachers);
    return rc;
}

int def_soft_labels(nn_net *const *teachers, size_t n_teachers, const float *x, size_t n, float T, float *p,
                    nn_err *err) {
    int rc = check_teachers(teachers, n_teachers, err);
    if (rc) return rc;
    if (!(T > 0)) return NN_FAIL(err, NN_E_INVAL, "soft labels: temperature must be > 0 (got %g)", T);
    size_t k = teachers[0]->n_classes;
    double *acc = malloc(n * k * sizeof *acc);
    float *q = malloc(k * sizeof *q);
    rc = acc && q ? soft_labels_into(teachers, n_teachers, x, n, T, p, acc, q, err)
                  : NN_FAIL(err, NN_E_NOMEM, "soft labels: out of memory for %zu x %zu", n, k);
    free(acc);
    free(q);
    return rc;
}

int def_kd_init(def_kd *kd, const def_kd_cfg *cfg, const float *soft, nn_net *const *teachers, size_t n_teachers,
                size_t k, size_t max_batch, nn_err *err) {
    memset(kd, 0, sizeof *kd);
    int rc = def_kd_cfg_validate(cfg, err);
    if (rc) return rc;
    if (!soft && cfg->alpha > 0 && (rc = check_teachers(teachers, n_teachers, err))) return rc;
    if (!soft && cfg->alpha > 0 && teachers[0]->n_classes != k)
        return NN_FAIL(err, NN_E_SHAPE, "the teacher gives %zu classes, the student %zu", teachers[0]->n_classes, k);
    kd->cfg = *cfg;
    kd->soft = soft;
    kd->teachers = teachers;
    kd->n_teachers = n_teachers;
    kd->k = k;
    kd->max_batch = max_batch;
    kd->p = malloc(max_batch * k * sizeof *kd->p);
    kd->g = malloc(max_batch * k * sizeof *kd->g);
    kd->acc = malloc(max_batch * k * sizeof *kd->acc);
    if (!kd->p || !kd->g || !kd->acc) {
        def_kd_free(kd);
        return NN_FAIL(err, NN_E_NOMEM, "distillation: out of memory");
    }
    return NN_OK;
}

void def_kd_free(def_kd *kd) {
    if (!kd) return;
    free(kd->p);
    free(kd->g);
    free(kd->acc);
    kd->p = kd->g = NULL;
    kd->acc = NULL;
}

/* The soft labels of one batch: gathered from the precomputed table, or from the teachers on x. */
static int batch_soft(def_kd *kd, const float *x, const size_t *idx, size_t n) {
    if (kd->soft) {
        for (size_t i = 0; i < n; i++)
            memcpy(kd->p + i * kd->k, kd->soft + idx[i] * kd->k, kd->k * sizeof *kd->p);
        return NN_OK;
    }
    /* per batch under augmentation: scratch from def_kd_init, no allocation in the training loop */
    return soft_labels_into(kd->teachers, kd->n_teachers, x, n, kd->cfg.temperature, kd->p, kd->acc, kd->g,
                            &kd->err);
}

double def_kd_loss(void *ctx, const float *x, const int *y, const size_t *idx, const float *logits, size_t n,
                   size_t k, float *dlogits) {
    def_kd *kd = ctx;
    const def_kd_cfg *c = &kd->cfg;
    if (n > kd->max_batch || k != kd->k) {
        kd->failed = NN_FAIL(&kd->err, NN_E_INVAL, "distillation: batch %zu x %zu, set up for %zu x %zu", n, k,
                             kd->max_batch, kd->k);
        return NAN;
    }
    double loss = 0;
    memset(dlogits, 0, n * k * sizeof *dlogits);
    if (c->alpha > 0) {
        int rc = batch_soft(kd, x, idx, n);
        if (rc) {
            kd->failed = rc;
            return NAN;
        }
        /* dz = alpha * s * (softmax(z/T) - p) / (T n) */
        loss += c->alpha * nn_loss_soft_ce(logits, kd->p, n, k, c->temperature, c->t2, kd->g);
        for (size_t i = 0; i < n * k; i++)
            dlogits[i] += c->alpha * kd->g[i];
    }
    if (c->alpha < 1) {
        /* dz = (1 - alpha) * (softmax(z) - onehot(y)) / n */
        loss += (1 - c->alpha) * nn_loss_ce(logits, y, n, k, 1.0f, kd->g);
        for (size_t i = 0; i < n * k; i++)
            dlogits[i] += (1 - c->alpha) * kd->g[i];
    }
    return loss;
}

int def_bias_adjust(nn_net *net, int c, float delta, nn_err *err) {
    nn_layer *l = &net->layers[net->n_layers - 1];
    if (strcmp(l->cfg.kind, "dense") != 0)
        return NN_FAIL(err, NN_E_INVAL, "bias adjustment: the last layer is %s, not dense", l->cfg.kind);
    size_t k = net->n_classes;
    if (c < 0 || (size_t)c >= k) return NN_FAIL(err, NN_E_INVAL, "bias adjustment: class %d is not in 0..%zu", c, k - 1);
    if (!isfinite(delta)) return NN_FAIL(err, NN_E_INVAL, "bias adjustment: delta must be finite");
    l->w[l->n_params - k + (size_t)c] += delta; /* dense: W[k, in] then b[k] */
    return NN_OK;
}
