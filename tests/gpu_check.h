/* gpu_check.h: what every GPU test file shares: skip, saying why, where there is no usable GPU, and
 * assert that a CUDA runtime call succeeded. Include after criterion.h, inside US_HAVE_CUDA. */
#ifndef US_TESTS_GPU_CHECK_H
#define US_TESTS_GPU_CHECK_H

#include "cuda_device.h"

#include <criterion/criterion.h>
#include <cuda_runtime.h>

static inline void require_gpu(void)
{
    char why[256];
    if (us_cuda_device_count(why, (int)sizeof why) <= 0) cr_skip_test("GPU test skipped: %s", why);
}

#define CUDA_OK(call)                                                                                              \
    do {                                                                                                           \
        cudaError_t e_ = (call);                                                                                   \
        cr_assert_eq(e_, cudaSuccess, "%s: %s", #call, cudaGetErrorString(e_));                                   \
    } while (0)

#endif
