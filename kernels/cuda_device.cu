/* cuda_device.cu: GPU discovery, so that callers and tests can skip cleanly without a GPU. */
#include "cuda_device.h"

#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int us_cuda_device_count(char *name, int n)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        if (name && n > 0) snprintf(name, (size_t)n, "no usable CUDA device: %s", cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky error */
        return 0;
    }
    if (name && n > 0) {
        cudaDeviceProp prop;
        if (count > 0 && cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
            snprintf(name, (size_t)n, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
        else
            snprintf(name, (size_t)n, "no CUDA device");
    }
    return count;
}
