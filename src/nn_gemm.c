/* nn_gemm.c - AVX-512 sgemm for the conv layer's three products, cblas_sgemm elsewhere.
 *
 * nn / tn: C[M, N] = A B with B, C walked along N (the conv layer's long b*P dimension). Tiles of 8 rows x
 * 48 columns: 24 zmm accumulators; per k, three loads of B, eight broadcasts of A, 24 FMAs. Edge tiles
 * mask the columns and repeat the last row (its results are dropped). C[i, j] = sum over k in order.
 * nt: C[M, N] = A B^T with A and B walked along K (the long dimension of the conv's dW). Tiles of 4 rows
 * of A x 6 rows of B: 24 zmm accumulators of 16 lanes each; lane l sums k = l, l + 16, ... in order (the
 * K tail masked), then the lanes are added by _mm512_reduce_add_ps (a fixed tree).
 * Loop order: column panels of C outer, row tiles inner, so a panel of B is reused from cache. The
 * kernels compile with a target attribute, so the file builds without -mavx512f; gemm_avx512_ok()
 * decides at run time (a cheap read of libgcc's CPU feature word, no state of ours). */
#include "nn_gemm.h"

#include <cblas.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GEMM_X86 1
#define GEMM_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,fma")))
#else
#define GEMM_X86 0
#endif

#define NN_MR 8  /* nn/tn tile rows */
#define NN_NR 48 /* nn/tn tile columns: 3 zmm */
#define NT_MR 4  /* nt tile rows of A */
#define NT_NR 6  /* nt tile rows of B */

static int gemm_avx512_ok(void) {
#if GEMM_X86
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int nn_gemm_avx512(void) {
    return gemm_avx512_ok();
}

/* Fallback: the same products through cblas (sizes fit an int, see the header). */
static void gemm_blas(int ta, int tb, size_t m, size_t n, size_t k, const float *a, size_t lda,
                      const float *b, size_t ldb, float *c, size_t ldc, int acc) {
    if (m == 0 || n == 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, 1.0f, a, (int)lda, b, (int)ldb, acc ? 1.0f : 0.0f, c, (int)ldc);
}

#if GEMM_X86

/* Lanes [0, min(cols, 16)) set. */
GEMM_TARGET static inline __mmask16 gemm_mask(size_t cols) {
    return cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1u);
}

/* One tile: C[mr, nr] (+)= A B, mr <= 8, 1 <= nr <= 48; A(i, p) = a[i*rs + p*cs], B[k, nr] (ld ldb).
 * Always inlined into gemm_tile_nn / gemm_tile_tn, which make cs resp. rs the constant 1. */
GEMM_TARGET static inline __attribute__((always_inline)) void gemm_tile(size_t k, const float *a, size_t rs,
                                                                        size_t cs, size_t mr, const float *b,
                                                                        size_t ldb, size_t nr, float *c,
                                                                        size_t ldc, int acc) {
    const __mmask16 m0 = gemm_mask(nr), m1 = gemm_mask(nr > 16 ? nr - 16 : 0),
                    m2 = gemm_mask(nr > 32 ? nr - 32 : 0);
    size_t ro[NN_MR];
    for (size_t r = 0; r < NN_MR; r++)
        ro[r] = (r < mr ? r : mr - 1) * rs;
    __m512 x[NN_MR][3];
#pragma GCC unroll 8
    for (size_t r = 0; r < NN_MR; r++)
        x[r][0] = x[r][1] = x[r][2] = _mm512_setzero_ps();
    for (size_t p = 0; p < k; p++) {
        const float *bp = b + p * ldb, *ap = a + p * cs;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bp), b1 = _mm512_maskz_loadu_ps(m1, bp + 16),
               b2 = _mm512_maskz_loadu_ps(m2, bp + 32);
#pragma GCC unroll 8
        for (size_t r = 0; r < NN_MR; r++) {
            __m512 av = _mm512_set1_ps(ap[ro[r]]);
            x[r][0] = _mm512_fmadd_ps(av, b0, x[r][0]);
            x[r][1] = _mm512_fmadd_ps(av, b1, x[r][1]);
            x[r][2] = _mm512_fmadd_ps(av, b2, x[r][2]);
        }
    }
    const __mmask16 mv[3] = {m0, m1, m2};
#pragma GCC unroll 8 /* constant indices keep x in registers */
    for (size_t r = 0; r < NN_MR; r++)
#pragma GCC unroll 3
        for (size_t v = 0; v < 3; v++) {
            if (r >= mr) continue;
            float *cp = c + r * ldc + 16 * v;
            __m512 s = x[r][v];
            if (acc) s = _mm512_add_ps(_mm512_maskz_loadu_ps(mv[v], cp), s);
            _mm512_mask_storeu_ps(cp, mv[v], s);
        }
}

GEMM_TARGET static void gemm_tile_nn(size_t k, const float *a, size_t lda, size_t mr, const float *b,
                                     size_t ldb, size_t nr, float *c, size_t ldc, int acc) {
    gemm_tile(k, a, lda, 1, mr, b, ldb, nr, c, ldc, acc);
}

GEMM_TARGET static void gemm_tile_tn(size_t k, const float *a, size_t lda, size_t mr, const float *b,
                                     size_t ldb, size_t nr, float *c, size_t ldc, int acc) {
    gemm_tile(k, a, 1, lda, mr, b, ldb, nr, c, ldc, acc);
}

/* C[M, N] (+)= op(A) B over 8 x 48 tiles; trans: A stored [K, M]. Panels of 48 columns outer. */
GEMM_TARGET static void gemm_avx_nn(int trans, size_t m, size_t n, size_t k, const float *a, size_t lda,
                                    const float *b, size_t ldb, float *c, size_t ldc, int acc) {
    for (size_t j = 0; j < n; j += NN_NR) {
        size_t nr = n - j < NN_NR ? n - j : NN_NR;
        for (size_t i = 0; i < m; i += NN_MR) {
            size_t mr = m - i < NN_MR ? m - i : NN_MR;
            if (trans)
                gemm_tile_tn(k, a + i, lda, mr, b + j, ldb, nr, c + i * ldc + j, ldc, acc);
            else
                gemm_tile_nn(k, a + i * lda, lda, mr, b + j, ldb, nr, c + i * ldc + j, ldc, acc);
        }
    }
}

/* One tile: C[mr, nr] (+)= A B^T, mr <= 4, nr <= 6; rows of A and B at lda / ldb, K along each row. */
GEMM_TARGET static void gemm_tile_nt(size_t k, const float *a, size_t lda, size_t mr, const float *b,
                                     size_t ldb, size_t nr, float *c, size_t ldc, int acc) {
    const float *ap[NT_MR], *bp[NT_NR];
    for (size_t r = 0; r < NT_MR; r++)
        ap[r] = a + (r < mr ? r : mr - 1) * lda;
    for (size_t q = 0; q < NT_NR; q++)
        bp[q] = b + (q < nr ? q : nr - 1) * ldb;
    __m512 x[NT_MR][NT_NR];
#pragma GCC unroll 4
    for (size_t r = 0; r < NT_MR; r++)
#pragma GCC unroll 6
        for (size_t q = 0; q < NT_NR; q++)
            x[r][q] = _mm512_setzero_ps();
    for (size_t p = 0; p < k; p += 16) {
        __mmask16 mk = gemm_mask(k - p);
        __m512 bv[NT_NR];
#pragma GCC unroll 6
        for (size_t q = 0; q < NT_NR; q++)
            bv[q] = _mm512_maskz_loadu_ps(mk, bp[q] + p);
#pragma GCC unroll 4 /* one row of A at a time: 24 accumulators + 6 + 1 registers */
        for (size_t r = 0; r < NT_MR; r++) {
            __m512 av = _mm512_maskz_loadu_ps(mk, ap[r] + p);
#pragma GCC unroll 6
            for (size_t q = 0; q < NT_NR; q++)
                x[r][q] = _mm512_fmadd_ps(av, bv[q], x[r][q]);
        }
    }
#pragma GCC unroll 4 /* constant indices keep x in registers */
    for (size_t r = 0; r < NT_MR; r++)
#pragma GCC unroll 6
        for (size_t q = 0; q < NT_NR; q++) {
            if (r >= mr || q >= nr) continue;
            float s = _mm512_reduce_add_ps(x[r][q]);
            c[r * ldc + q] = acc ? c[r * ldc + q] + s : s;
        }
}

/* C[M, N] (+)= A B^T over 4 x 6 tiles; tiles of B (the 6 rows stay in cache) outer. */
GEMM_TARGET static void gemm_avx_nt(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                                    size_t ldb, float *c, size_t ldc, int acc) {
    for (size_t j = 0; j < n; j += NT_NR) {
        size_t nr = n - j < NT_NR ? n - j : NT_NR;
        for (size_t i = 0; i < m; i += NT_MR) {
            size_t mr = m - i < NT_MR ? m - i : NT_MR;
            gemm_tile_nt(k, a + i * lda, lda, mr, b + j * ldb, ldb, nr, c + i * ldc + j, ldc, acc);
        }
    }
}

#endif /* GEMM_X86 */

void nn_gemm_nn(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, int acc) {
#if GEMM_X86
    if (gemm_avx512_ok()) {
        gemm_avx_nn(0, m, n, k, a, lda, b, ldb, c, ldc, acc);
        return;
    }
#endif
    gemm_blas(0, 0, m, n, k, a, lda, b, ldb, c, ldc, acc);
}

void nn_gemm_tn(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, int acc) {
#if GEMM_X86
    if (gemm_avx512_ok()) {
        gemm_avx_nn(1, m, n, k, a, lda, b, ldb, c, ldc, acc);
        return;
    }
#endif
    gemm_blas(1, 0, m, n, k, a, lda, b, ldb, c, ldc, acc);
}

void nn_gemm_nt(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, int acc) {
#if GEMM_X86
    if (gemm_avx512_ok()) {
        gemm_avx_nt(m, n, k, a, lda, b, ldb, c, ldc, acc);
        return;
    }
#endif
    gemm_blas(0, 1, m, n, k, a, lda, b, ldb, c, ldc, acc);
}
