/* stb_image_impl.c: stb_image's implementation compiled into fuzz_image only, so that the fuzzer sees
 * (and the sanitizers check) the decoder itself rather than Debian's uninstrumented libstb; the
 * definitions here take precedence over the shared library's. The normal build never compiles it. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
