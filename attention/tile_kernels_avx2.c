/* tile_kernels_avx2.c: the tile products built for the baseline target (AVX2 + FMA by default). */
#define TILE_SUFFIX _avx2
#include "tile_kernels_body.h"
