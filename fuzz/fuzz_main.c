/* fuzz_main.c: the libFuzzer entry of one target, compiled once per target with
 * -DUS_FUZZ_ENTRY=us_fuzz_<target> (CMakeLists.txt, US_BUILD_FUZZ). The parser's status is not a
 * finding: only crashes, sanitizer reports, leaks and timeouts are. */
#include "fuzz_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)US_FUZZ_ENTRY(data, size);
    return 0;
}
