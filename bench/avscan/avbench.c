/* avbench.c - libclamav on its own, for bench/avscan/run: engine load time and memory, and cl_scandesc() time of a file. */
#include <clamav.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The baseline the avscan plugin is measured against: the same library,
 * the same signatures and the same scan options as the plugin (all
 * parsers, heuristic alerts, the EXCEEDS_MAX heuristic), with nothing
 * around it.
 *
 *   avbench load DIR                 load + compile; prints one JSON line:
 *                                    signatures, load_ms, compile_ms,
 *                                    rss_kib before and after
 *   avbench scan DIR FILE N [nocache]
 *                                    scans FILE N times with cl_scandesc();
 *                                    prints first_ms (a cold scan: the
 *                                    cache is empty), then the median, min
 *                                    and mean of the others
 *
 * Exit status 0, or 1 with a message on stderr.
 */

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static struct cl_engine *load(const char *dir, int nocache, unsigned *sigs,
                              double *load_ms, double *compile_ms)
{
    struct cl_engine *e;
    double t0;
    cl_error_t rc;

    rc = cl_init(CL_INIT_DEFAULT);
    if (rc != CL_SUCCESS) {
        fprintf(stderr, "avbench: cl_init: %s\n", cl_strerror(rc));
        return NULL;
    }
    e = cl_engine_new();
    if (e == NULL) {
        fprintf(stderr, "avbench: out of memory\n");
        return NULL;
    }
    if (nocache)
        cl_engine_set_num(e, CL_ENGINE_DISABLE_CACHE, 1);
    t0 = now_ms();
    *sigs = 0;
    rc = cl_load(dir, e, sigs, CL_DB_STDOPT);
    *load_ms = now_ms() - t0;
    if (rc != CL_SUCCESS) {
        fprintf(stderr, "avbench: cl_load %s: %s\n", dir, cl_strerror(rc));
        cl_engine_free(e);
        return NULL;
    }
    t0 = now_ms();
    rc = cl_engine_compile(e);
    *compile_ms = now_ms() - t0;
    if (rc != CL_SUCCESS) {
        fprintf(stderr, "avbench: compile: %s\n", cl_strerror(rc));
        cl_engine_free(e);
        return NULL;
    }
    return e;
}

int main(int argc, char **argv)
{
    struct cl_engine *e;
    unsigned sigs;
    double load_ms, compile_ms;
    long before;

    if (argc == 3 && strcmp(argv[1], "load") == 0) {
        before = rss_kib();
        e = load(argv[2], 0, &sigs, &load_ms, &compile_ms);
        if (e == NULL)
            return 1;
        printf("{\"signatures\": %u, \"load_ms\": %.1f, \"compile_ms\": %.1f, "
               "\"rss_before_kib\": %ld, \"rss_after_kib\": %ld}\n",
               sigs, load_ms, compile_ms, before, rss_kib());
        cl_engine_free(e);
        return 0;
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "scan") == 0) {
        struct cl_scan_options o;
        int n = atoi(argv[4]), fd;
        double *t, first, sum = 0;

        if (n < 2) {
            fprintf(stderr, "avbench: N must be at least 2\n");
            return 1;
        }
        e = load(argv[2], argc == 6 && strcmp(argv[5], "nocache") == 0, &sigs,
                 &load_ms, &compile_ms);
        if (e == NULL)
            return 1;
        fd = open(argv[3], O_RDONLY);
        t = calloc((size_t)n, sizeof(*t));
        if (fd < 0 || t == NULL) {
            perror(argv[3]);
            return 1;
        }
        memset(&o, 0, sizeof(o));
        o.general = CL_SCAN_GENERAL_HEURISTICS;
        o.parse = ~0u;
        o.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
        for (int i = 0; i < n; i++) {
            const char *virname = NULL;
            unsigned long scanned = 0;
            double t0 = now_ms();
            cl_error_t rc = cl_scandesc(fd, argv[3], &virname, &scanned, e, &o);
            t[i] = now_ms() - t0;
            if (rc != CL_CLEAN) {
                fprintf(stderr, "avbench: scan %d: %s\n", i,
                        rc == CL_VIRUS ? virname : cl_strerror(rc));
                return 1;
            }
        }
        first = t[0];
        for (int i = 1; i < n; i++)
            sum += t[i];
        qsort(t + 1, (size_t)(n - 1), sizeof(*t), cmp_double);
        printf("{\"first_ms\": %.3f, \"median_ms\": %.3f, \"min_ms\": %.3f, "
               "\"mean_ms\": %.3f, \"scans\": %d}\n", first, t[1 + (n - 1) / 2], t[1],
               sum / (n - 1), n);
        free(t);
        close(fd);
        cl_engine_free(e);
        return 0;
    }
    fprintf(stderr, "usage: avbench load DIR | avbench scan DIR FILE N [nocache]\n");
    return 1;
}
