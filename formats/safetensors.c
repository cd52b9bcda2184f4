/* safetensors.c: placeholder */
#include "safetensors.h"
