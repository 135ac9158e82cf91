/* nn_sys.c - runtime facts: OpenMP threads, OpenBLAS build and threading mode. */
#include "nn_sys.h"

#include "nn_gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

void nn_sys_info_get(nn_sys_info *out) {
    memset(out, 0, sizeof *out);
    out->threads = omp_get_max_threads();
    out->blas_threads = openblas_get_num_threads();
    out->blas_parallel = openblas_get_parallel();
    snprintf(out->blas_config, sizeof out->blas_config, "%s", openblas_get_config());
    out->gemm_avx512 = nn_gemm_avx512();
}

int nn_sys_check_blas(nn_err *err) {
    int mode = openblas_get_parallel();
    if (mode == 2) return NN_OK;
    return NN_FAIL(err, NN_E_INVAL,
                   "OpenBLAS threading mode is %d (%s), not OpenMP (2): two thread pools would fight over the "
                   "cores. Install libopenblas0-openmp and select it: update-alternatives --set "
                   "libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3",
                   mode, mode == 1 ? "pthreads" : "sequential");
}
