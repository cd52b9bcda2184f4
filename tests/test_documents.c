/* test_documents.c: document reading (every kind of bad text named), UTF-8 validation against
 * Python's decoder on the same bytes, and atomic output files. */
#include "document.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/us_docs_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(documents, .init = setup, .fini = teardown);

static void write_bytes(const char *name, const void *b, size_t n, char *path, size_t pn)
{
    snprintf(path, pn, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Each case: bytes and the offset of the first invalid byte as Python's
 * bytes.decode('utf-8', errors='strict') reports it (UnicodeDecodeError.start), or the length. */
Test(documents, utf8_validation_matches_python_decoder)
{
    static const struct {
        const char *b;
        size_t n, bad;
    } cases[] = {
        {"plain ascii", 11, 11},
        {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14, 14}, /* é € 😀 */
        {"caf\xE9", 4, 3},                                      /* latin-1 é */
        {"\xC0\xAF", 2, 0},                                     /* overlong '/' */
        {"ab\xED\xA0\x80", 5, 2},                               /* surrogate U+D800 */
        {"\xF4\x90\x80\x80", 4, 0},                             /* above U+10FFFF */
        {"ok\xE2\x82", 4, 2},                                   /* truncated sequence */
        {"\x80", 1, 0},                                         /* lone continuation */
        {"x\xF8\x88\x80\x80\x80", 6, 1},                        /* 5-byte form */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_expect_eq(us_utf8_valid_prefix(cases[i].b, cases[i].n), cases[i].bad, "case %zu", i);
}

Test(documents, reads_text_and_drops_bom)
{
    char p[128], *t = NULL;
    size_t n = 0;
    us_error err;
    write_bytes("a.md", "\xEF\xBB\xBF# Title\r\nBody \xC3\xA9\n", 20, p, sizeof p);
    cr_assert_eq(us_document_read(p, 1 << 20, &t, &n, &err), US_OK, "%s", err.msg);
    cr_expect_eq(n, 17);
    cr_expect_str_eq(t, "# Title\r\nBody \xC3\xA9\n");
    free(t);
}

static void expect_rejected(const char *name, const void *b, size_t n, size_t limit, const char *why)
{
    char p[128], *t = NULL;
    size_t len = 0;
    us_error err;
    write_bytes(name, b, n, p, sizeof p);
    cr_expect_neq(us_document_read(p, limit, &t, &len, &err), US_OK, "%s accepted", name);
    cr_expect_null(t);
    cr_expect_not_null(strstr(err.msg, p), "message names the file: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, why), "message says '%s': %s", why, err.msg);
}

Test(documents, bad_documents_are_named)
{
    expect_rejected("empty.txt", "", 0, 1 << 20, "empty");
    expect_rejected("blank.txt", " \n\t\r\n ", 6, 1 << 20, "empty");
    expect_rejected("bom-only.txt", "\xEF\xBB\xBF\n", 4, 1 << 20, "empty");
    expect_rejected("binary.bin", "PK\x03\x04\0\0\x01", 7, 1 << 20, "binary");
    expect_rejected("latin1.txt", "na\xEFve", 5, 1 << 20, "not UTF-8");
    expect_rejected("big.txt", "0123456789", 10, 9, "limit");
    char p[128], *t = NULL;
    size_t len = 0;
    us_error err;
    snprintf(p, sizeof p, "%s/missing.txt", dir);
    cr_expect_eq(us_document_read(p, 1 << 20, &t, &len, &err), US_ERR_IO);
    cr_expect_not_null(strstr(err.msg, "missing.txt"));
    cr_expect_eq(us_document_read(dir, 1 << 20, &t, &len, &err), US_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "directory"), "%s", err.msg);
}

Test(documents, atomic_write_replaces_whole_and_leaves_no_temp)
{
    char p[128], tmp[160];
    snprintf(p, sizeof p, "%s/out.md", dir);
    snprintf(tmp, sizeof tmp, "%s/.out.md.partial", dir);
    us_error err;
    cr_assert_eq(us_atomic_write(p, "first version\n", 14, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_atomic_write(p, "second\n", 7, &err), US_OK, "%s", err.msg);
    char *t = NULL;
    size_t n = 0;
    cr_assert_eq(us_document_read(p, 1 << 20, &t, &n, &err), US_OK);
    cr_expect_str_eq(t, "second\n");
    free(t);
    cr_expect_neq(access(tmp, F_OK), 0, "temporary file left behind");
    /* a directory that does not exist: an error naming the output, nothing created */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/out.md", dir);
    cr_expect_eq(us_atomic_write(bad, "x", 1, &err), US_ERR_IO);
    cr_expect_not_null(strstr(err.msg, bad), "%s", err.msg);
    /* writing over a directory fails at the rename; the temporary is removed */
    char sub[160], subtmp[192];
    snprintf(sub, sizeof sub, "%s/taken", dir);
    snprintf(subtmp, sizeof subtmp, "%s/.taken.partial", dir);
    cr_assert_eq(mkdir(sub, 0777), 0);
    char inner[192];
    snprintf(inner, sizeof inner, "%s/keep", sub);
    cr_assert_eq(us_atomic_write(inner, "k", 1, &err), US_OK);
    cr_expect_eq(us_atomic_write(sub, "x", 1, &err), US_ERR_IO);
    cr_expect_neq(access(subtmp, F_OK), 0, "temporary file left behind after a failed rename");
}

/* A full disk, simulated with the file-size limit (writes past it fail with EFBIG, as ENOSPC would
 * fail them): the write reports the output and the reason, the previous complete file is kept, and
 * no temporary file is left. Criterion runs each test in its own process, so the limit stays here. */
Test(documents, atomic_write_on_a_full_disk_keeps_the_old_file)
{
    char p[128], tmp[160];
    snprintf(p, sizeof p, "%s/summary.md", dir);
    snprintf(tmp, sizeof tmp, "%s/.summary.md.partial", dir);
    us_error err;
    cr_assert_eq(us_atomic_write(p, "old and complete\n", 17, &err), US_OK, "%s", err.msg);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {4096, 4096};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    static char big[65536];
    memset(big, 'x', sizeof big);
    cr_expect_eq(us_atomic_write(p, big, sizeof big, &err), US_ERR_IO);
    cr_expect_not_null(strstr(err.msg, p), "%s", err.msg);
    char *t = NULL;
    size_t n = 0;
    cr_assert_eq(us_document_read(p, 1 << 20, &t, &n, &err), US_OK);
    cr_expect_str_eq(t, "old and complete\n");
    free(t);
    cr_expect_neq(access(tmp, F_OK), 0, "temporary file left behind");
}
