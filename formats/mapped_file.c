/* mapped_file.c: see mapped_file.h. */
#include "mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

us_status us_mapped_file_open(const char *path, size_t min_size, const char *what, us_mapped_file *out,
                              us_error *err)
{
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return us_error_set(err, US_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return us_error_set(err, US_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return us_error_set(err, US_ERR_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size < (unsigned long long)min_size || sb.st_size == 0) {
        close(fd);
        return us_error_set(err, US_ERR_FORMAT, "%s: truncated: %lld bytes, fewer than %s", path,
                            (long long)sb.st_size, what);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) return us_error_set(err, US_ERR_IO, "%s: cannot mmap: %s", path, strerror(map_errno));
    out->data = map;
    out->size = size;
    return US_OK;
}

void us_mapped_file_close(us_mapped_file *f)
{
    if (f->data) munmap(f->data, f->size);
    f->data = NULL;
    f->size = 0;
}
