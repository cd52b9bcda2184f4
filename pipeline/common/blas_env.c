/* blas_env.c: see blas_env.h. */
#include "blas_env.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *us_blas_core_name(void) { return openblas_get_corename(); }

void us_blas_env_fix(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv("UNISPARSE_BLAS_REEXEC")) return;
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0) return;
    __builtin_cpu_init();
    const char *want = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? "SkylakeX"
                       : __builtin_cpu_supports("avx2")                                           ? "Haswell"
                                                                                                  : NULL;
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("UNISPARSE_BLAS_REEXEC", "1", 1); /* never loop */
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the slow kernels */
}
