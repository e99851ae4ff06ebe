/* mint_bench.c - times tls_mint_leaf and tls_mint_ctx under ECDSA and RSA CAs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "mint.h"

/* Thread CPU time: what a mint costs, even on a machine busy with other
 * work (wall time is printed too, for the record). */
static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints median, p90, p99 and mean of n samples (microseconds). */
static void report(const char *what, double *v, int n)
{
    double sum = 0;

    for (int k = 0; k < n; k++)
        sum += v[k];
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("%-28s n=%-5d median %8.1f us   p90 %8.1f us   p99 %8.1f us   mean %8.1f us\n",
           what, n, v[n / 2], v[n * 9 / 10], v[n * 99 / 100], sum / n);
}

static int run(const char *base, int rsa, int n)
{
    char dir[512], err[512], host[64], label[64];
    tls_ca_opts_t opts = {0};
    double *leaf_us = calloc((size_t)n, sizeof(double));
    double *ctx_us = calloc((size_t)n, sizeof(double));
    double *both_us = calloc((size_t)n, sizeof(double));
    tls_ca_t *ca;

    snprintf(dir, sizeof(dir), "%s/%s", base, rsa ? "rsa" : "ecdsa");
    opts.rsa = rsa;
    if (leaf_us == NULL || ctx_us == NULL || both_us == NULL ||
        tls_ca_create(dir, &opts, err, sizeof(err)) < 0 ||
        (ca = tls_ca_load(dir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "mint_bench: %s\n", err);
        return -1;
    }
    /* warm up: OpenSSL fetches its algorithms on first use */
    for (int k = 0; k < 20; k++) {
        X509 *x = tls_mint_leaf(ca, "warm.example", NULL, err, sizeof(err));
        SSL_CTX *ctx = x ? tls_mint_ctx(ca, x, err, sizeof(err)) : NULL;
        SSL_CTX_free(ctx);
        X509_free(x);
    }
    for (int k = 0; k < n; k++) {
        double t0, t1, t2;
        X509 *x;
        SSL_CTX *ctx;

        snprintf(host, sizeof(host), "host%d.bench.example", k);
        t0 = cpu_us();
        x = tls_mint_leaf(ca, host, NULL, err, sizeof(err));
        t1 = cpu_us();
        ctx = x ? tls_mint_ctx(ca, x, err, sizeof(err)) : NULL;
        t2 = cpu_us();
        if (ctx == NULL) {
            fprintf(stderr, "mint_bench: %s\n", err);
            return -1;
        }
        leaf_us[k] = t1 - t0;
        ctx_us[k] = t2 - t1;
        both_us[k] = t2 - t0;
        SSL_CTX_free(ctx);
        X509_free(x);
    }
    printf("CA: %s, leaf key %s\n", tls_ca_key_type(ca), rsa ? "RSA 2048" : "ECDSA P-256");
    snprintf(label, sizeof(label), "%s leaf (tls_mint_leaf)", rsa ? "RSA" : "ECDSA");
    report(label, leaf_us, n);
    snprintf(label, sizeof(label), "%s SSL_CTX (tls_mint_ctx)", rsa ? "RSA" : "ECDSA");
    report(label, ctx_us, n);
    snprintf(label, sizeof(label), "%s leaf + SSL_CTX", rsa ? "RSA" : "ECDSA");
    report(label, both_us, n);
    tls_ca_unref(ca);
    free(leaf_us);
    free(ctx_us);
    free(both_us);
    return 0;
}

int main(int argc, char **argv)
{
    char base[] = "/tmp/pc-mint-bench.XXXXXX";
    char cmd[600];
    int n = argc > 1 ? atoi(argv[1]) : 1000, rc = 0;

    if (n < 10) {
        fprintf(stderr, "usage: mint_bench [N >= 10]\n");
        return 2;
    }
    if (mkdtemp(base) == NULL) {
        fprintf(stderr, "mint_bench: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    printf("%d mints per key type, one thread; target: a leaf in <= 1 ms (issue 4)\n", n);
    if (run(base, 0, n) < 0 || run(base, 1, n) < 0)
        rc = 1;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
