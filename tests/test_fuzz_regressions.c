/* test_fuzz_regressions.c: every input the fuzzers found a bug with (tests/fuzz-regressions/<target>/,
 * minimized, see FUZZING.md) goes through the same entry point as the fuzz target (fuzz/fuzz_entry.h)
 * and must come back as success or an error status, without a crash; under the ASan build and in CI
 * that also means no out-of-bounds access, no leak and no undefined behaviour. A target with no
 * directory has no findings yet, and passes. */
#include "fuzz_entry.h"

#include "unisparse/attention.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*entry_fn)(const uint8_t *, size_t);

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: cannot open", path);
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            b = realloc(b, cap);
            cr_assert_not_null(b);
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    cr_assert(!ferror(f), "%s: read error", path);
    fclose(f);
    *size = n;
    return b;
}

static void run_dir(const char *target, entry_fn fn)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", US_FUZZ_REGRESSIONS_DIR, target);
    DIR *d = opendir(dir);
    if (!d) {
        cr_log_info("%s: no regression inputs", target);
        return;
    }
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t size = 0;
        uint8_t *data = read_all(path, &size);
        int r = fn(data, size);
        free(data);
        cr_expect(r == US_OK || (r < 0 && r >= US_ERR_DEVICE), "%s: returned %d, not a us_status", path, r);
        count++;
    }
    closedir(d);
    cr_log_info("%s: %d regression inputs", target, count);
}

#define TARGET(name)                                                                                          \
    Test(fuzz_regressions, name) { run_dir(#name, us_fuzz_##name); }

TARGET(safetensors)
TARGET(gguf)
TARGET(config_json)
TARGET(qkv_file)
TARGET(sp_from_gguf)
TARGET(video)
TARGET(image)
TARGET(document)
TARGET(tokenizer_model)
TARGET(hf_dir)
