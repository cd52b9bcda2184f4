/* tile_kernels_avx512.c: the tile products built for AVX-512 (compiled with -mavx512f). */
#define TILE_SUFFIX _avx512
#include "tile_kernels_body.h"
