/* selection_file.h: a block selection as a safetensors file, so that other tools (the GPU
 * benchmark's FlexAttention baseline) can run the very blocks a selector chose.
 *
 * Tensors: counts I32 [n_heads, n_qblocks]; row_offset I64 [n_heads, n_qblocks];
 * indices I32 [total]. __metadata__: block, heads_per_row, nq, nk, q_offset, density.
 */
#ifndef UNISPARSE_SELECTION_FILE_H
#define UNISPARSE_SELECTION_FILE_H

#include "unisparse/attention.h"

us_status us_selection_save(const char *path, const us_selection *sel, us_error *err);

#endif
