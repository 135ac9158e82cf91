/* test_gemm.c - nn_gemm_{nn,tn,nt} against a naive double-precision product: the conv layer's real shapes
 * (MNIST CNN at one chunk) and awkward ones (sizes not multiples of the tiles, K = 9, 1x1x1, K = 0), with
 * overwrite (C starts as NaN and must not leak) and accumulate, leading dimensions larger than the rows
 * (padding must stay untouched). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "nn_gemm.h"

enum { OR_NN, OR_TN, OR_NT };

/* Deterministic values in [-1, 1). */
static void fill(float *v, size_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = (float)((double)(s >> 8) / (double)(1u << 23) - 1.0);
    }
}

/* A(i, p) and B(p, j) of the product in orientation o, from the stored arrays. */
static double elem_a(int o, const float *a, size_t lda, size_t i, size_t p) {
    return o == OR_TN ? a[p * lda + i] : a[i * lda + p];
}
static double elem_b(int o, const float *b, size_t ldb, size_t p, size_t j) {
    return o == OR_NT ? b[j * ldb + p] : b[p * ldb + j];
}

static void call(int o, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                 float *c, size_t ldc, int acc) {
    if (o == OR_NN) nn_gemm_nn(m, n, k, a, lda, b, ldb, c, ldc, acc);
    if (o == OR_TN) nn_gemm_tn(m, n, k, a, lda, b, ldb, c, ldc, acc);
    if (o == OR_NT) nn_gemm_nt(m, n, k, a, lda, b, ldb, c, ldc, acc);
}

/* One product in orientation o with padded leading dimensions, overwrite then accumulate, checked
 * element-wise against double sums with the float error bound K * 2^-23 * sum |a b| (+ a tiny atol). */
static void check(int o, size_t m, size_t n, size_t k, uint32_t seed) {
    size_t pad = 3;
    size_t ar = o == OR_TN ? k : m, ac = o == OR_TN ? m : k; /* stored A is ar x ac */
    size_t br = o == OR_NT ? n : k, bc = o == OR_NT ? k : n;
    size_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
    float *a = malloc((ar * lda + 1) * sizeof *a), *b = malloc((br * ldb + 1) * sizeof *b);
    float *c = malloc((m * ldc + 1) * sizeof *c), *c0 = malloc((m * ldc + 1) * sizeof *c0);
    assert_non_null(a), assert_non_null(b), assert_non_null(c), assert_non_null(c0);
    fill(a, ar * lda + 1, seed), fill(b, br * ldb + 1, seed + 1), fill(c0, m * ldc + 1, seed + 2);
    for (int acc = 0; acc <= 1; acc++) {
        memcpy(c, c0, (m * ldc + 1) * sizeof *c);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                if (!acc) c[i * ldc + j] = NAN; /* overwrite must ignore C */
        call(o, m, n, k, a, lda, b, ldb, c, ldc, acc);
        for (size_t i = 0; i < m; i++) {
            for (size_t j = 0; j < n; j++) {
                double s = acc ? (double)c0[i * ldc + j] : 0.0, mag = fabs(s);
                for (size_t p = 0; p < k; p++) {
                    double t = elem_a(o, a, lda, i, p) * elem_b(o, b, ldb, p, j);
                    s += t, mag += fabs(t);
                }
                double got = c[i * ldc + j], tol = 1e-6 + (double)(k + 1) * 0x1p-23 * mag;
                if (!(fabs(got - s) <= tol))
                    fail_msg("orient %d %zux%zux%zu acc %d: C[%zu, %zu] = %.9g, expected %.9g", o, m, n, k,
                             acc, i, j, got, s);
            }
            for (size_t j = n; j < ldc; j++) /* padding untouched */
                assert_true(memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof *c) == 0);
        }
    }
    free(a), free(b), free(c), free(c0);
}

/* The conv layer's products for one chunk of the MNIST CNN (F, CKK, L = b*P), in all three orientations:
 * forward Y'[F, L] = W col, dcol[CKK, L] = W^T dY', dW[F, CKK] = dY' col^T. */
static void test_conv_shapes(void **state) {
    (void)state;
    static const size_t shp[][3] = {{32, 9, 676}, {32, 288, 576}, {64, 288, 200}, {64, 576, 128}};
    for (size_t s = 0; s < sizeof shp / sizeof shp[0]; s++) {
        size_t f = shp[s][0], ckk = shp[s][1], l = shp[s][2];
        check(OR_NN, f, l, ckk, (uint32_t)s);
        check(OR_TN, ckk, l, f, (uint32_t)s + 10);
        check(OR_NT, f, ckk, l, (uint32_t)s + 20);
    }
}

/* Sizes around the tiles (8 x 48 for nn/tn, 4 x 6 x 16 for nt) and degenerate ones. */
static void test_awkward_shapes(void **state) {
    (void)state;
    static const size_t shp[][3] = {{1, 1, 1},    {1, 1, 9},   {7, 49, 9},   {9, 47, 17},
                                    {13, 50, 33}, {5, 3, 15},  {3, 7, 16},   {8, 48, 32},
                                    {4, 6, 31},   {17, 97, 1}, {2, 13, 100}, {33, 5, 9},
                                    {6, 65, 2},   {1, 96, 7},  {12, 1, 50},  {3, 4, 0}};
    for (size_t s = 0; s < sizeof shp / sizeof shp[0]; s++)
        for (int o = OR_NN; o <= OR_NT; o++)
            check(o, shp[s][0], shp[s][1], shp[s][2], (uint32_t)(100 + 3 * s + (size_t)o));
}

/* The same product from copies of the operands at other addresses (other alignments) gives the same bits:
 * the summation order depends on the shapes only. */
static void test_placement(void **state) {
    (void)state;
    size_t m = 19, n = 53, k = 37;
    float *a = malloc((m * k + 8) * sizeof *a), *b = malloc((k * n + 8) * sizeof *b);
    float *c1 = malloc((m * n + 8) * sizeof *c1), *c2 = malloc((m * n + 8) * sizeof *c2);
    assert_non_null(a), assert_non_null(b), assert_non_null(c1), assert_non_null(c2);
    fill(a, m * k, 7), fill(b, k * n, 8);
    for (int o = OR_NN; o <= OR_NT; o++) {
        size_t lda = o == OR_TN ? m : k, ldb = o == OR_NT ? k : n;
        call(o, m, n, k, a, lda, b, ldb, c1, n, 0);
        memmove(a + 3, a, m * k * sizeof *a), memmove(b + 5, b, k * n * sizeof *b);
        call(o, m, n, k, a + 3, lda, b + 5, ldb, c2 + 1, n, 0);
        assert_memory_equal(c1, c2 + 1, m * n * sizeof *c1);
        memmove(a, a + 3, m * k * sizeof *a), memmove(b, b + 5, k * n * sizeof *b);
    }
    free(a), free(b), free(c1), free(c2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_shapes),
        cmocka_unit_test(test_awkward_shapes),
        cmocka_unit_test(test_placement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
