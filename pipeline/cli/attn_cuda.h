/* attn_cuda.h: the GPU half of `unisparse attn` (--device cuda). */
#ifndef UNISPARSE_CLI_ATTN_CUDA_H
#define UNISPARSE_CLI_ATTN_CUDA_H

#include "unisparse/attention.h"

#include <stdbool.h>

/* Runs the methods on the GPU over the host input a (any dtype; f32 is narrowed to bf16) and prints
 * a table or JSON lines. Fidelity is measured against our GPU dense kernel in the same run (itself
 * tested against the CPU kernel). save_selection (optional): a file for UniSparse's selection.
 * kernel_choice: the attention kernel every method runs, a us_cuda_kernel value (0: the library's choice).
 * Returns the exit status. */
int attn_run_cuda(const us_attn_args *a, const us_method *methods, int n_methods, const us_unisparse_params *p,
                  int repeat, bool json, const char *source, const char *save_selection, int kernel_choice);

#endif
