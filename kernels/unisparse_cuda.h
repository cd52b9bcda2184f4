/* unisparse_cuda.h: UniSparse and dense attention on NVIDIA Hopper GPUs (sm_90a).
 *
 *   us_cuda_plan *plan = NULL;
 *   us_error err;
 *   // shapes, mask and parameters: converted once into device buffers (no tensor data read)
 *   if (us_cuda_plan_create(US_METHOD_UNISPARSE, &args, &params, &plan, &err)) ...
 *   // args.q/k/v/o (and lse) hold DEVICE pointers; estimation, selection and attention are queued
 *   // on the stream with no host synchronisation, so the call can be captured in a CUDA graph
 *   if (us_cuda_attention(plan, &args, stream, &err)) ...
 *   us_cuda_plan_free(&plan);
 *
 * Methods on the device: dense, unisparse, and the baselines xattention and flexprefill (their
 * estimation and selection run on the GPU too, reproducing the CPU selectors); any selection made
 * on the host can be uploaded with us_cuda_plan_set_selection. The selection the GPU builds has
 * the format of us_selection (attention.h); the plan owns it on the device and
 * us_cuda_plan_selection copies it to the host for inspection.
 */
#ifndef UNISPARSE_CUDA_H
#define UNISPARSE_CUDA_H

#include <stdbool.h>

#include "unisparse/attention.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct us_cuda_plan us_cuda_plan;

/* Validates a (shapes, strides, dtypes, mask) and p for method m on the GPU and allocates the
 * plan's device buffers. q, k, v must share one dtype, f16 or bf16; o has that dtype too. */
us_status us_cuda_plan_create(us_method m, const us_attn_args *a, const us_unisparse_params *p, us_cuda_plan **out,
                              us_error *err);
void us_cuda_plan_free(us_cuda_plan **plan);

/* Queues selection (unless dense) and attention on stream (a cudaStream_t; NULL = default). The
 * tensors of a must match the plan's shapes. */
us_status us_cuda_attention(us_cuda_plan *plan, const us_attn_args *a, void *stream, us_error *err);

/* Queues only the selection. */
us_status us_cuda_select(us_cuda_plan *plan, const us_attn_args *a, void *stream, us_error *err);

/* Makes sel (made on the host by any selector, for the plan's shapes) the plan's selection, so that
 * us_cuda_attention_selected runs the GPU kernel over it. Synchronous. */
us_status us_cuda_plan_set_selection(us_cuda_plan *plan, const us_selection *sel, us_error *err);

/* Queues only the attention, over the plan's current selection. */
us_status us_cuda_attention_selected(us_cuda_plan *plan, const us_attn_args *a, void *stream, us_error *err);

/* The attention kernel a plan runs. AUTO (the default) takes the Hopper kernel (wgmma, TMA, a
 * producer warpgroup) where it covers the call and was measured faster (bench/RESULTS.md), and the
 * mma.sync kernel otherwise; MMA and WGMMA force one (tests and benchmarks compare the two).
 * Forcing WGMMA on a call it does not cover makes the attention calls fail with US_ERR_UNSUPPORTED. */
typedef enum { US_CUDA_KERNEL_AUTO = 0, US_CUDA_KERNEL_MMA = 1, US_CUDA_KERNEL_WGMMA = 2 } us_cuda_kernel;
void us_cuda_plan_set_kernel(us_cuda_plan *plan, us_cuda_kernel k);
/* "wgmma" or "mma": the kernel the plan's attention calls run for tensors laid out as in a. */
const char *us_cuda_plan_kernel_name(const us_cuda_plan *plan, const us_attn_args *a);

/* True when the plan's sparse method runs dense on its calls: fewer keys than p.min_tokens, or
 * less dense attention work than p.gpu_min_gflop, where estimation could not pay for itself. */
bool us_cuda_plan_falls_back(const us_cuda_plan *plan);

/* Device memory and timing for C callers (tests, the CLI, benchmarks). */
us_status us_cuda_alloc(void **ptr, size_t bytes, us_error *err);
void us_cuda_free(void *ptr);
us_status us_cuda_upload(void *dst, const void *src, size_t bytes, us_error *err);
us_status us_cuda_download(void *dst, const void *src, size_t bytes, us_error *err);
us_status us_cuda_sync(us_error *err);
/* Milliseconds between two points on the default stream: call with *state = NULL to start,
 * again to stop (returns the time and frees the state). */
double us_cuda_timer(void **state);

/* Copies the last selection to a new host us_selection (synchronises the device). */
us_status us_cuda_plan_selection(const us_cuda_plan *plan, us_selection **out, us_error *err);

#ifdef __cplusplus
}
#endif
#endif
