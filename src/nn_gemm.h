/* nn_gemm.h - single-precision GEMM for the three products of the conv layer (nn_conv2d.c).
 *
 * Row-major, single-threaded (call it from inside a parallel region, one call per thread). On a CPU with
 * AVX-512 (F, VL, BW) an AVX-512 register-blocked kernel runs; elsewhere the call goes to cblas_sgemm.
 * Each element of C is a fixed-order sum for given shapes: the result depends on the shapes and the data
 * only (never on the thread count or on where the arrays lie in memory), but it is not bitwise equal to
 * OpenBLAS's. Counts and leading dimensions must fit an int (the fallback passes them to cblas). No
 * allocation, no state: thread-safe on disjoint outputs. Aliasing C with A or B is not allowed. */
#ifndef NN_GEMM_H
#define NN_GEMM_H

#include <stddef.h>

/* C[M, N] = A[M, K] B[K, N] (acc == 0) or C += A B (acc != 0). A, B, C row-major, leading dims lda >= K,
 * ldb >= N, ldc >= N. Any size >= 0; K == 0 gives C = 0 (or leaves it when acc). */
void nn_gemm_nn(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, int acc);

/* C[M, N] (+)= A^T B, A stored as [K, M] (lda >= M), B[K, N] (ldb >= N). As nn_gemm_nn otherwise. */
void nn_gemm_tn(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, int acc);

/* C[M, N] (+)= A B^T, A[M, K] (lda >= K), B stored as [N, K] (ldb >= K): dot products along K, which
 * suits a long K. As nn_gemm_nn otherwise. */
void nn_gemm_nt(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, int acc);

/* 1 when the AVX-512 kernels run on this CPU, 0 when the calls go to cblas_sgemm. */
int nn_gemm_avx512(void);

#endif
