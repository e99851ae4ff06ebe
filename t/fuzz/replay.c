/* replay.c - runs a fuzz target's entry function on saved inputs, as a TAP test of make check (no clang needed). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

/*
 * Linked with one t/fuzz/fuzz_NAME.c (by gcc in every build), this is
 * t/fuzz/replay_NAME. Without arguments it runs every file of
 * FUZZ_DATA_DIR/regressions/NAME/ (the inputs that once crashed or broke an
 * invariant) and FUZZ_DATA_DIR/corpus/NAME/ (the seeds), one test point
 * each; with arguments, the files and directories named. Each input runs
 * in a child process, so one that aborts fails its own test point and the
 * others still run; its stderr (the broken invariant, a sanitizer report
 * in the ASan build) goes to the test's log; one that runs longer than
 * REPLAY_TIMEOUT seconds is killed and fails.
 *
 *   t/fuzz/replay_sni                      the regressions and the seeds
 *   t/fuzz/replay_sni crash-0123abcd       one input, e.g. from t/fuzz/run
 */

#ifndef FUZZ_DATA_DIR
#define FUZZ_DATA_DIR "t/fuzz"
#endif
#define REPLAY_TIMEOUT 30  /* seconds per input */

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET (the target's name) must be defined"
#endif

/* Optional in a target: the replay calls it when the target has one. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int npoints, nfailed;

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL)
        return -1;
    for (;;) {
        size_t got;
        if (n == cap) {
            uint8_t *nb;
            cap = cap ? cap * 2 : 4096;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

/* One test point: the input at path, run in a child. */
static void replay_one(const char *path, const char *label)
{
    uint8_t *data = NULL;
    size_t len = 0;
    pid_t pid;
    int status = 0, good;

    npoints++;
    if (read_file(path, &data, &len) < 0) {
        printf("not ok %d - %s: cannot read: %s\n", npoints, label, strerror(errno));
        nfailed++;
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        printf("not ok %d - %s: fork: %s\n", npoints, label, strerror(errno));
        nfailed++;
        free(data);
        return;
    }
    if (pid == 0) {
        /* An input that makes the target hang fails too (t/fuzz/run
         * gives libFuzzer -timeout=5; a slower sanitizer build gets more). */
        alarm(REPLAY_TIMEOUT);
        LLVMFuzzerTestOneInput(data, len);
        fflush(stderr);
        _exit(0);
    }
    free(data);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    good = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (good) {
        printf("ok %d - %s (%zu bytes)\n", npoints, label, len);
    } else {
        nfailed++;
        if (WIFSIGNALED(status))
            printf("not ok %d - %s (%zu bytes): killed by signal %d\n", npoints, label,
                   len, WTERMSIG(status));
        else
            printf("not ok %d - %s (%zu bytes): exit status %d\n", npoints, label, len,
                   WEXITSTATUS(status));
    }
    fflush(stdout);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, sorted; a missing dir has none. */
static void replay_dir(const char *dir, const char *label_dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **nn;
            cap = cap ? cap * 2 : 64;
            nn = realloc(names, cap * sizeof(*nn));
            if (nn == NULL)
                abort();
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL)
            abort();
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX], label[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        snprintf(label, sizeof(label), "%s/%s", label_dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            replay_one(path, label);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            struct stat st;
            if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
                replay_dir(argv[i], argv[i]);
            else
                replay_one(argv[i], argv[i]);
        }
    } else {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/regressions/%s", FUZZ_DATA_DIR, FUZZ_TARGET);
        replay_dir(dir, "regressions/" FUZZ_TARGET);
        snprintf(dir, sizeof(dir), "%s/corpus/%s", FUZZ_DATA_DIR, FUZZ_TARGET);
        replay_dir(dir, "corpus/" FUZZ_TARGET);
    }
    if (npoints == 0) {
        printf("1..0 # SKIP no inputs for %s\n", FUZZ_TARGET);
        return 0;
    }
    printf("1..%d\n", npoints);
    if (nfailed)
        printf("# %d of %d inputs failed\n", nfailed, npoints);
    return nfailed ? 1 : 0;
}
