/* fuzz_tmpfile.c: us_fuzz_file_path (fuzz_entry.h). One file per process, created with mkstemp and
 * unlinked at once, so nothing is left behind even when the process dies; readers reach it through
 * /proc/self/fd/N, which open(), stat() and mmap() follow to the unlinked file. */
#include "fuzz_entry.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int g_fd = -1;
static char g_path[64];

const char *us_fuzz_file_path(const uint8_t *data, size_t size)
{
    if (g_fd < 0) {
        const char *dir = getenv("TMPDIR");
        char tmpl[512];
        snprintf(tmpl, sizeof tmpl, "%s/us_fuzz_XXXXXX", dir && dir[0] ? dir : "/tmp");
        g_fd = mkstemp(tmpl);
        if (g_fd < 0) return NULL;
        unlink(tmpl);
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    if (ftruncate(g_fd, 0) != 0) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(g_fd, data + done, size - done, (off_t)done);
        if (n <= 0) return NULL;
        done += (size_t)n;
    }
    return g_path;
}
