/* fuzz_tmpfile.c: us_fuzz_file_path and us_fuzz_dir* (fuzz_entry.h). us_fuzz_file_path: one file per
 * process, created with mkstemp and unlinked at once, so nothing is left behind even when the process
 * dies; readers reach it through /proc/self/fd/N, which open(), stat() and mmap() follow to the
 * unlinked file. */
#include "fuzz_entry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The folder of us_fuzz_dir. Unlike the single file above it cannot be unlinked while in use (files
 * cannot be created in a removed directory), so it is emptied and removed at exit instead. */
static char g_dir[512];

static void remove_dir(void)
{
    DIR *d = opendir(g_dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_dir);
}

const char *us_fuzz_dir(void)
{
    if (!g_dir[0]) {
        const char *dir = getenv("TMPDIR");
        char tmpl[sizeof g_dir];
        snprintf(tmpl, sizeof tmpl, "%s/us_fuzz_dir_XXXXXX", dir && dir[0] && strlen(dir) < 400 ? dir : "/tmp");
        if (!mkdtemp(tmpl)) return NULL;
        memcpy(g_dir, tmpl, sizeof g_dir);
        atexit(remove_dir);
    }
    return g_dir;
}

int us_fuzz_dir_write(const char *name, const uint8_t *data, size_t size)
{
    const char *dir = us_fuzz_dir();
    if (!dir) return -1;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    return close(fd) == 0 && done == size ? 0 : -1;
}

int us_fuzz_dir_remove(const char *name)
{
    const char *dir = us_fuzz_dir();
    if (!dir) return -1;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return unlink(p) == 0 || errno == ENOENT ? 0 : -1;
}
