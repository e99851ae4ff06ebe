/* sandbox.c - temporary files for the fuzz targets, and a fence around the files a fuzzed input may name. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/*
 * The config parser follows "include PATH" (with globs) and urlcat's lists
 * follow ".Include<PATH>": a fuzzed input can name any file of the machine,
 * a glob over all of /proc, a FIFO or a device. The parsers under test call
 * open(), fopen() and glob(); this file defines them too, and the
 * executable's definitions win over libc's in the dynamic link, so while
 * the fence is up every path outside the target's own temporary directory
 * is "not found". The real functions are reached through dlsym(RTLD_NEXT).
 * libFuzzer's own file work (corpus, crash files) happens with the fence
 * down.
 */

static char fence[PATH_MAX];   /* "" while down */
static char tmp_root[PATH_MAX];
static pid_t tmp_owner;

static int allowed(const char *path)
{
    size_t n = strlen(fence);

    if (fence[0] == '\0')
        return 1;
    if (path == NULL || strstr(path, "..") != NULL)
        return 0;
    return strncmp(path, fence, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);

    if (f == NULL) {
        fprintf(stderr, "sandbox: no %s in libc\n", name);
        abort();
    }
    return f;
}

int open(const char *path, int flags, ...)
{
    static int (*next)(const char *, int, ...);
    mode_t mode = 0;

    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (!allowed(path)) {
        errno = ENOENT;
        return -1;
    }
    if (next == NULL)
        next = (int (*)(const char *, int, ...))real("open");
    return next(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    static int (*next)(const char *, int, ...);
    mode_t mode = 0;

    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (!allowed(path)) {
        errno = ENOENT;
        return -1;
    }
    if (next == NULL)
        next = (int (*)(const char *, int, ...))real("open64");
    return next(path, flags, mode);
}

FILE *fopen(const char *path, const char *mode)
{
    static FILE *(*next)(const char *, const char *);

    if (!allowed(path)) {
        errno = ENOENT;
        return NULL;
    }
    if (next == NULL)
        next = (FILE * (*)(const char *, const char *)) real("fopen");
    return next(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    static FILE *(*next)(const char *, const char *);

    if (!allowed(path)) {
        errno = ENOENT;
        return NULL;
    }
    if (next == NULL)
        next = (FILE * (*)(const char *, const char *)) real("fopen64");
    return next(path, mode);
}

int glob(const char *pattern, int flags, int (*errfunc)(const char *, int),
         glob_t *g)
{
    static int (*next)(const char *, int, int (*)(const char *, int), glob_t *);

    if (next == NULL)
        next = (int (*)(const char *, int, int (*)(const char *, int), glob_t *))real(
            "glob");
    if (!allowed(pattern)) {
        /* Empty, as glob() leaves g when nothing matches. */
        int rc = next("", flags & ~GLOB_APPEND, NULL, g);
        return rc == 0 ? GLOB_NOMATCH : rc;
    }
    return next(pattern, flags, errfunc, g);
}

void fuzz_sandbox(const char *dir)
{
    snprintf(fence, sizeof(fence), "%s", dir);
}

void fuzz_sandbox_off(void)
{
    fence[0] = '\0';
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void tmp_cleanup(void)
{
    /* Replay children leave with _exit(); only the creator cleans up. */
    if (tmp_root[0] && getpid() == tmp_owner)
        nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
    const char *base = getenv("TMPDIR");

    if (tmp_root[0])
        return tmp_root;
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(tmp_root, sizeof(tmp_root), "%s/pcfuzz.XXXXXX", base);
    if (mkdtemp(tmp_root) == NULL) {
        perror("fuzz: mkdtemp");
        abort();
    }
    tmp_owner = getpid();
    atexit(tmp_cleanup);
    return tmp_root;
}

void fuzz_write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    for (char *s = path + strlen(dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            perror(path);
            abort();
        }
        *s = '/';
    }
    f = fopen(path, "wb");
    if (f == NULL || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}
