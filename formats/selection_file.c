/* selection_file.c: see selection_file.h. */
#include "selection_file.h"

#include "safetensors.h"

#include <stdio.h>
#include <string.h>

static us_st_tensor tensor(const char *name, const char *dtype, size_t elem, int ndim, const int64_t *shape,
                           const void *data)
{
    us_st_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.dtype_name, sizeof t.dtype_name, "%s", dtype);
    t.dtype = -1;
    t.elem_size = elem;
    t.ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], n *= (size_t)shape[i];
    t.data = data;
    t.nbytes = n * elem;
    return t;
}

us_status us_selection_save(const char *path, const us_selection *sel, us_error *err)
{
    int64_t rows = (int64_t)sel->n_heads * sel->n_qblocks;
    int64_t total = sel->row_offset[rows - 1] + sel->visible[sel->n_qblocks - 1];
    int64_t shape2[2] = {sel->n_heads, sel->n_qblocks}, shape1[1] = {total};
    us_st_tensor t[3] = {tensor("counts", "I32", 4, 2, shape2, sel->counts),
                         tensor("row_offset", "I64", 8, 2, shape2, sel->row_offset),
                         tensor("indices", "I32", 4, 1, shape1, sel->indices)};
    char block[32], hpr[32], nq[32], nk[32], off[32], dens[32];
    snprintf(block, sizeof block, "%d", sel->block);
    snprintf(hpr, sizeof hpr, "%d", sel->heads_per_row);
    snprintf(nq, sizeof nq, "%lld", (long long)sel->nq);
    snprintf(nk, sizeof nk, "%lld", (long long)sel->nk);
    snprintf(off, sizeof off, "%lld", (long long)sel->q_offset);
    snprintf(dens, sizeof dens, "%.6f", sel->density);
    const char *meta[12] = {"block", block, "heads_per_row", hpr, "nq", nq, "nk", nk, "q_offset", off, "density", dens};
    return us_safetensors_write(path, t, 3, meta, 6, err);
}
