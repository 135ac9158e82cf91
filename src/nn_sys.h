/* nn_sys.h - facts about the numeric runtime, for metrics and --version. */
#ifndef NN_SYS_H
#define NN_SYS_H

#include <stddef.h>

#include "nn_err.h"

typedef struct nn_sys_info {
    int threads;          /* OpenMP max threads */
    int blas_threads;     /* openblas_get_num_threads() */
    int blas_parallel;    /* openblas_get_parallel(): 0 sequential, 1 pthreads, 2 OpenMP */
    char blas_config[256];/* openblas_get_config() */
    int gemm_avx512;      /* conv layers use temper's AVX-512 GEMM kernels (else cblas_sgemm) */
} nn_sys_info;

void nn_sys_info_get(nn_sys_info *out);
/* NN_OK when OpenBLAS runs on OpenMP (parallel mode 2); otherwise an error explaining how to select
 * Debian's OpenMP build (update-alternatives / pkg-config path). */
int nn_sys_check_blas(nn_err *err);

#endif
