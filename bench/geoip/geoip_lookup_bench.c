/* geoip_lookup_bench.c - lookups/s of the geoip plugin's lookup path (slot, MMDB lookup, fields, rules). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "geoip_cache.h"
#include "geoip_db.h"
#include "geoip_rules.h"

/*
 * Usage: geoip_lookup_bench [-c] [-t THREADS] [-s SECONDS] [-6 PERCENT] [-a ADDR] DB [ASN_DB]
 *
 * Runs, per thread, what the plugin's PC_HOOK_UPSTREAM_ADDR does for one
 * address minus the host calls: take the database from its slot
 * (geoip_slot_peek, the per-thread cache), look the address up, read the
 * country (auto paths) and, with ASN_DB, the AS number from the second
 * slot, and judge with a deny-list of three countries and two AS numbers. Addresses are random (a fixed seed):
 * public IPv4 and, PERCENT of them (default 20), IPv6 in 2000::/3; or, with
 * -a, always ADDR (a proxy talking to one origin looks up one address
 * again and again, with the database's path to it in the CPU cache). With
 * -c, lookups go through the per-thread answer cache first, as the
 * plugin's hook does (geoip_cache.c). Prints
 * one line per thread count: lookups/s in total, per thread, ns each, and
 * how many found a country.
 */

#define NADDR 65536

static struct sockaddr_storage addrs[NADDR];
static geoip_slot_t *cslot, *aslot;
static geoip_paths_t cpaths, apaths;
static geoip_rules_t rules;
static volatile int stop;
static int use_cache;

typedef struct worker {
    pthread_t t;
    unsigned seed;
    long n, found, blocked;
} worker_t;

static uint32_t rnd(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*x >> 33);
}

static void make_addrs(int v6_percent, const char *fixed)
{
    uint64_t x = 42;

    if (fixed) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (inet_pton(AF_INET, fixed, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
            ss.ss_family = AF_INET;
        else if (inet_pton(AF_INET6, fixed, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
            ss.ss_family = AF_INET6;
        else {
            fprintf(stderr, "geoip_lookup_bench: invalid address '%s'\n", fixed);
            exit(2);
        }
        for (int i = 0; i < NADDR; i++)
            addrs[i] = ss;
        return;
    }

    for (int i = 0; i < NADDR; i++) {
        memset(&addrs[i], 0, sizeof(addrs[i]));
        if ((int)(rnd(&x) % 100) < v6_percent) {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&addrs[i];
            s->sin6_family = AF_INET6;
            for (int k = 0; k < 16; k += 4) {
                uint32_t r = rnd(&x);
                memcpy(&s->sin6_addr.s6_addr[k], &r, 4);
            }
            s->sin6_addr.s6_addr[0] = (uint8_t)(0x20 | (s->sin6_addr.s6_addr[0] & 0x1f));
        } else {
            struct sockaddr_in *s = (struct sockaddr_in *)&addrs[i];
            uint32_t a;
            do
                a = rnd(&x);
            while ((a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || (a >> 24) >= 224);
            s->sin_family = AF_INET;
            s->sin_addr.s_addr = htonl(a);
        }
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    geoip_query_t cq = {&cpaths, NULL, 0}, aq = {NULL, &apaths, 0};
    unsigned i = w->seed;

    while (!stop) {
        /* 256 lookups between looks at the stop flag. */
        for (int k = 0; k < 256; k++, i++) {
            const struct sockaddr *sa = (const struct sockaddr *)&addrs[i % NADDR];
            geoip_answer_t a;
            geoip_cache_key_t key;
            geoip_db_t *db;
            int e;

            memset(&a, 0, sizeof(a));
            if (use_cache) {
                /* What the hook's cache_key() does. */
                memset(&key, 0, sizeof(key));
                netaddr_from_sockaddr(&key.addr, sa);
                key.conf_id = 1;
                key.gen[0] = atomic_load_explicit(&cslot->gen, memory_order_acquire);
                key.gen[1] = aslot ? atomic_load_explicit(&aslot->gen, memory_order_acquire) : 0;
                if (geoip_cache_get(&key, &a))
                    goto judge;
            }
            db = geoip_slot_peek(cslot);
            geoip_db_lookup(db, sa, &cq, &a, &e);
            if (aslot) {
                db = geoip_slot_peek(aslot);
                geoip_db_lookup(db, sa, &aq, &a, &e);
            }
            if (use_cache)
                geoip_cache_put(&key, &a);
judge:
            if (a.cc[0])
                w->found++;
            if (geoip_rules_judge(&rules, a.cc, a.asn) != GEOIP_PASS)
                w->blocked++;
        }
        w->n += 256;
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(int nthreads, double seconds)
{
    worker_t *w = calloc((size_t)nthreads, sizeof(*w));
    long n = 0, found = 0;
    double t0, t1;

    if (w == NULL)
        return -1;
    stop = 0;
    t0 = now();
    for (int i = 0; i < nthreads; i++) {
        w[i].seed = (unsigned)i * 7919u;
        if (pthread_create(&w[i].t, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            free(w);
            return -1;
        }
    }
    usleep((useconds_t)(seconds * 1e6));
    stop = 1;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].t, NULL);
        n += w[i].n;
        found += w[i].found;
    }
    t1 = now();
    printf("threads %d: %.0f lookups/s (%.0f per thread, %.0f ns each), "
           "%.1f%% with a country\n",
           nthreads, n / (t1 - t0), n / (t1 - t0) / nthreads,
           (t1 - t0) * 1e9 * nthreads / (double)n, 100.0 * (double)found / (double)n);
    free(w);
    return 0;
}

static geoip_slot_t *open_slot(const char *path)
{
    geoip_db_t *db;
    char err[512], desc[200];

    if (geoip_db_open(path, &db, err, sizeof(err)) < 0) {
        fprintf(stderr, "geoip_lookup_bench: %s\n", err);
        exit(1);
    }
    printf("# %s: %s\n", path, geoip_db_describe(db, desc, sizeof(desc)));
    return geoip_slot_new(path, "database", db);
}

int main(int argc, char **argv)
{
    int threads = 0, v6 = 20, c;
    const char *fixed = NULL;
    double seconds = 3;
    char cc[3], err[200];

    while ((c = getopt(argc, argv, "ct:s:6:a:")) != -1) {
        switch (c) {
        case 't':
            threads = atoi(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case '6':
            v6 = atoi(optarg);
            break;
        case 'a':
            fixed = optarg;
            break;
        case 'c':
            use_cache = 1;
            break;
        default:
            goto usage;
        }
    }
    if (optind >= argc || seconds <= 0 || seconds > 600)
        goto usage;
    cslot = open_slot(argv[optind]);
    if (optind + 1 < argc)
        aslot = open_slot(argv[optind + 1]);
    geoip_paths_auto(&cpaths, GEOIP_COUNTRY);
    geoip_paths_auto(&apaths, GEOIP_ASN);
    for (const char *p = "RU\0CN\0KP\0"; *p; p += 3) {
        geoip_cc_parse(p, cc, err, sizeof(err));
        geoip_ccset_add(&rules.block_cc, cc);
    }
    geoip_asnset_add(&rules.block_asn, 64500);
    geoip_asnset_add(&rules.block_asn, 64501);
    geoip_asnset_finish(&rules.block_asn);
    make_addrs(v6, fixed);
    if (fixed)
        printf("# always %s, %.1f s per run%s\n", fixed, seconds,
               use_cache ? ", through the answer cache" : "");
    else
        printf("# %d random addresses (%d%% IPv6), %.1f s per run%s\n", NADDR, v6, seconds,
               use_cache ? ", through the answer cache" : "");
    if (threads > 0)
        run(threads, seconds);
    else {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        run(1, seconds);
        if (ncpu > 1)
            run((int)ncpu, seconds);
    }
    geoip_slot_unref(cslot);
    geoip_slot_unref(aslot);
    geoip_paths_free(&cpaths);
    geoip_paths_free(&apaths);
    geoip_rules_free(&rules);
    return 0;
usage:
    fprintf(stderr, "usage: geoip_lookup_bench [-c] [-t THREADS] [-s SECONDS] [-6 PERCENT] "
            "[-a ADDR] DB [ASN_DB]\n");
    return 2;
}
