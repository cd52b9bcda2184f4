/* test_permissions.c: files the process may not read and a directory it may not write. Every
 * loader must name the file and the reason (the system's "Permission denied"), and an output into a
 * read-only directory must leave nothing behind.
 *
 * Permission bits do not stop root, and CI runs as root. So each case runs in a forked child that
 * first drops to the unprivileged user nobody (65534) when it is root; the files stay owned by the
 * parent, which sets them up and cleans up. Without root the child keeps the parent's user, and
 * mode 000 stops it all the same. */
#define _DEFAULT_SOURCE /* setgroups */

#include "document.h"
#include "gemma3_weights.h"
#include "gguf.h"
#include "safetensors.h"

#include <criterion/criterion.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/us_perm_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0755), 0); /* the child may enter: only the files' own bits stop it */
}

static void teardown(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", dir, dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(permissions, .init = setup, .fini = teardown);

typedef struct {
    int status;    /* the us_status the call returned; -1 when privileges could not be dropped */
    char msg[512]; /* its message */
} outcome;

/* Runs fn(path) in a child process that holds no privileges, and returns what it returned. */
static outcome unprivileged(us_status (*fn)(const char *path, us_error *err), const char *path)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    const pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        outcome o;
        memset(&o, 0, sizeof o);
        if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) {
            o.status = -1;
            snprintf(o.msg, sizeof o.msg, "cannot drop root privileges to user 65534");
        } else {
            us_error err;
            memset(&err, 0, sizeof err);
            o.status = (int)fn(path, &err);
            snprintf(o.msg, sizeof o.msg, "%s", err.msg);
        }
        const ssize_t w = write(p[1], &o, sizeof o);
        _exit(w == (ssize_t)sizeof o ? 0 : 1);
    }
    close(p[1]);
    outcome o;
    memset(&o, 0, sizeof o);
    const ssize_t r = read(p[0], &o, sizeof o);
    close(p[0]);
    int ws = 0;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && r == (ssize_t)sizeof o, "the child died");
    cr_assert_neq(o.status, -1, "%s", o.msg);
    return o;
}

/* A file of the given bytes, owned by this process, mode 000. */
static void unreadable_file(const char *name, const void *bytes, size_t n, char *path, size_t pn)
{
    snprintf(path, pn, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
    cr_assert_eq(chmod(path, 0), 0);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    cr_assert(in && out, "copying %s", from);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    cr_assert_eq(chmod(to, 0644), 0);
}

static void expect_denied(const outcome *o, const char *path)
{
    cr_expect_neq(o->status, US_OK, "reading %s should fail", path);
    cr_expect_not_null(strstr(o->msg, path), "the message names the file: %s", o->msg);
    cr_expect_not_null(strstr(o->msg, "Permission denied"), "the message gives the reason: %s", o->msg);
}

static us_status read_document(const char *path, us_error *err)
{
    char *text = NULL;
    size_t len = 0;
    us_status s = us_document_read(path, 1 << 20, &text, &len, err);
    free(text);
    return s;
}

static us_status open_gguf(const char *path, us_error *err)
{
    us_gguf *g = NULL;
    us_status s = us_gguf_open(path, &g, err);
    us_gguf_close(&g);
    return s;
}

static us_status open_safetensors(const char *path, us_error *err)
{
    us_safetensors *st = NULL;
    us_status s = us_safetensors_open(path, &st, err);
    us_safetensors_close(&st);
    return s;
}

static us_status load_checkpoint_dir(const char *path, us_error *err)
{
    us_gemma3_weights *w = NULL;
    us_status s = us_gemma3_weights_load(path, &w, err);
    us_gemma3_weights_free(&w);
    return s;
}

static us_status write_output(const char *path, us_error *err)
{
    return us_atomic_write(path, "summary\n", 8, err);
}

Test(permissions, unreadable_document_gguf_and_safetensors_are_named)
{
    char path[128];
    unreadable_file("notes.txt", "plain text\n", 11, path, sizeof path);
    outcome o = unprivileged(read_document, path);
    expect_denied(&o, path);
    unreadable_file("model.gguf", "GGUF\3\0\0\0", 8, path, sizeof path);
    o = unprivileged(open_gguf, path);
    expect_denied(&o, path);
    unreadable_file("weights.safetensors", "\2\0\0\0\0\0\0\0{}", 10, path, sizeof path);
    o = unprivileged(open_safetensors, path);
    expect_denied(&o, path);
}

/* A Hugging Face directory whose config.json is readable but whose weights are not (and the other
 * way round): the message names the file that could not be read, not just the directory. */
Test(permissions, checkpoint_directory_names_the_unreadable_file)
{
    const char *assets = getenv("US_ASSETS") ? getenv("US_ASSETS") : "assets";
    char src[512], cfg[128], weights[128];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    snprintf(src, sizeof src, "%s/gemma3-tiny/config.json", assets);
    copy_file(src, cfg);
    snprintf(src, sizeof src, "%s/gemma3-tiny/model.safetensors", assets);
    copy_file(src, weights);
    outcome o = unprivileged(load_checkpoint_dir, dir);
    cr_assert_eq(o.status, US_OK, "the readable copy loads: %s", o.msg);
    cr_assert_eq(chmod(weights, 0), 0);
    o = unprivileged(load_checkpoint_dir, dir);
    expect_denied(&o, weights);
    cr_assert_eq(chmod(weights, 0644), 0);
    cr_assert_eq(chmod(cfg, 0), 0);
    o = unprivileged(load_checkpoint_dir, dir);
    expect_denied(&o, cfg);
}

/* An output into a directory the process may not write: a named error, and no file (final or
 * temporary) appears. */
Test(permissions, output_into_a_read_only_directory_leaves_nothing)
{
    char out_dir[96], path[160];
    snprintf(out_dir, sizeof out_dir, "%s/out", dir);
    cr_assert_eq(mkdir(out_dir, 0555), 0);
    cr_assert_eq(chmod(out_dir, 0555), 0); /* whatever the umask */
    snprintf(path, sizeof path, "%s/summary.txt", out_dir);
    outcome o = unprivileged(write_output, path);
    cr_expect_neq(o.status, US_OK);
    cr_expect_not_null(strstr(o.msg, out_dir), "the message names where it wrote: %s", o.msg);
    cr_expect_not_null(strstr(o.msg, "Permission denied"), "the message gives the reason: %s", o.msg);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", out_dir);
    cr_expect_eq(system(cmd), 0, "nothing was left in %s", out_dir);
}
