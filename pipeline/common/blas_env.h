/* blas_env.h: make OpenBLAS use the kernels this CPU deserves. */
#ifndef UNISPARSE_BLAS_ENV_H
#define UNISPARSE_BLAS_ENV_H

/* OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons (e.g. family 6 model 207) and falls
 * back to its Prescott (SSE3) kernels, about 10x slower than its AVX-512 ones. Its core type is
 * read from OPENBLAS_CORETYPE when the library loads, before main, so when OpenBLAS reports
 * Prescott on a CPU with AVX-512 or AVX2 and the user has not chosen a core type, this sets
 * OPENBLAS_CORETYPE (SkylakeX or Haswell) and re-executes the program once. Returns only when no
 * re-execution happens. */
void us_blas_env_fix(char **argv);

/* OpenBLAS's core type name, e.g. "SkylakeX". */
const char *us_blas_core_name(void);

#endif
