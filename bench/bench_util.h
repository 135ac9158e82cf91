/* bench_util.h - shared by the benchmark programs. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>

#include "nn_sys.h"

/* One "temper-info key=value ..." line: threads, BLAS threading and build, the conv GEMM kernels. */
static inline void bench_print_info(void) {
    nn_sys_info si;
    nn_sys_info_get(&si);
    printf("temper-info threads=%d blas_threads=%d blas_parallel=%d gemm_avx512=%d blas_config=", si.threads,
           si.blas_threads, si.blas_parallel, si.gemm_avx512);
    for (const char *c = si.blas_config; *c; c++)
        putchar(*c == ' ' ? '_' : *c);
    putchar('\n');
}

#endif
