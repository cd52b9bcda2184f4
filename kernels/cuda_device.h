/* cuda_device.h: what the CUDA side offers to C code. */
#ifndef UNISPARSE_CUDA_DEVICE_H
#define UNISPARSE_CUDA_DEVICE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is no GPU or no driver. name (optional, size n)
 * receives device 0's name, or the reason none is usable. */
int us_cuda_device_count(char *name, int n);

#ifdef __cplusplus
}
#endif
#endif
