/* fuzz.h - what every fuzz target of t/fuzz/ shares: the entry points, invariant checks, input splitting. */
#ifndef PC_FUZZ_H
#define PC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A target is one file t/fuzz/fuzz_NAME.c that defines
 * LLVMFuzzerTestOneInput() (and LLVMFuzzerInitialize() when it needs set-up
 * once). The same file is linked two ways:
 *
 *   --enable-fuzz (clang)   with libFuzzer's main: t/fuzz/fuzz_NAME
 *   every build (make check) with t/fuzz/replay.c's main: t/fuzz/replay_NAME
 *                           runs the seed corpus and the saved crashes
 *
 * A target checks invariants, not only "no crash": a broken one is reported
 * with FUZZ_FAIL(), which prints why and aborts, so libFuzzer saves the
 * input and the replay test fails.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Reports a broken invariant and aborts (libFuzzer saves the input). */
#define FUZZ_FAIL(...)                                                         \
    do {                                                                       \
        fprintf(stderr, "%s:%d: invariant broken: ", __FILE__, __LINE__);      \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        abort();                                                               \
    } while (0)

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond))                                                           \
            FUZZ_FAIL(__VA_ARGS__);                                            \
    } while (0)

/* A cursor over the input: targets take mode bytes from the front. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in_t;

/* The next byte, or 0 when the input is used up. */
static inline unsigned fuzz_byte(fuzz_in_t *in)
{
    unsigned b;

    if (in->n == 0)
        return 0;
    b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

/* The next part of the input up to a separator byte sep (not included), or
 * the rest; *len set. The separator is consumed. */
static inline const uint8_t *fuzz_part(fuzz_in_t *in, uint8_t sep, size_t *len)
{
    const uint8_t *s = in->p, *e = memchr(in->p, sep, in->n);
    size_t n = e ? (size_t)(e - s) : in->n;

    *len = n;
    in->p += n + (e != NULL);
    in->n -= n + (e != NULL);
    return s;
}

/* A NUL-terminated malloc()ed copy of p[0..n) (aborts when out of memory:
 * libFuzzer's -rss_limit_mb, not the target, handles memory). */
static inline char *fuzz_strndup(const void *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* 1 when s[0..n) holds a byte below 0x20 or 0x7f. */
static inline int fuzz_has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return 1;
    return 0;
}

/* A small deterministic generator (split points of a feed): the same input
 * always splits the same way, so a saved crash replays. */
static inline uint64_t fuzz_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static inline uint64_t fuzz_rand(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- sandbox.c: files a target may touch --------------------------------- */

/* Makes a fresh temporary directory for the target's files (removed at
 * exit) and returns its path; aborts when it cannot. */
const char *fuzz_tmpdir(void);
/* Writes p[0..n) to dir/name (parents created). Aborts on failure. */
void fuzz_write_file(const char *dir, const char *name, const void *p, size_t n);
/* While on, open(), fopen() and glob() refuse every path outside dir (and
 * any with ".."), so a fuzzed "include /proc/..." or ".Include</dev/...>"
 * reads nothing of the machine and cannot block on a FIFO or a device. */
void fuzz_sandbox(const char *dir);
void fuzz_sandbox_off(void);

#endif
