/* lookup.c - what banlist's checks cost per request, with 100,000 CIDRs and 100,000 sites loaded. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banlist.h"

/*
 * Built and run by bench/banlist/run (cc with the plugin's own sources):
 *
 *     lookup CLIENTS_FILE SITES_FILE ITERATIONS THREADS
 *
 * Each iteration does what the plugin's hooks do for one plain request and
 * its response, on the same data structures: the client against the
 * exception list, the dynamic bans (a snapshot reference taken and
 * dropped, as a worker does) and the 100,000-entry client list; the host
 * against the exception sites, the dynamic site bans and the
 * 100,000-entry site list (label by label); the file name of the URL path
 * against the extension lists; the Content-Type against the MIME lists.
 * Clients and hosts vary (none banned, so every check runs to its end)
 * and are many, so the caches see what a busy proxy gives them. With
 * THREADS > 1 the threads share the dynamic bans, as the workers do.
 * Prints the CPU nanoseconds per iteration (all threads' CPU time over all
 * their iterations), which other load on the machine hardly changes.
 */

static bl_dyn_t dyn;
static netaddr_set_t *ban_clients, *exc_clients;
static bl_sites_t *ban_sites, *exc_sites;
static bl_strset_t *ban_ext, *exc_ext, *ban_mime, *exc_mime;
static long iterations;
static volatile long sink;

#define NCLIENTS 4096
#define NHOSTS 4096
static netaddr_t clients[NCLIENTS];
static char hosts[NHOSTS][64];
static const char *const paths[] = {
    "/", "/index.html", "/static/js/app.min.js?v=3", "/files/report-2024.pdf",
    "/images/logo.png", "/api/v1/items?page=2", "/download/setup.zip",
};

static int add_client(void *arg, char *text, long line, char *err, size_t errlen)
{
    (void)line;
    return netaddr_set_add_text(arg, text, err, errlen);
}

static int add_site(void *arg, char *text, long line, char *err, size_t errlen)
{
    (void)line;
    return bl_sites_add(arg, text, err, errlen);
}

static void *run(void *arg)
{
    long seed = (long)(size_t)arg, found = 0;
    char name[256], mime[64];

    for (long i = 0; i < iterations; i++) {
        const netaddr_t *a = &clients[(i * 7 + seed) % NCLIENTS];
        const char *h = hosts[(i * 13 + seed) % NHOSTS];
        const char *path = paths[i % (sizeof(paths) / sizeof(paths[0]))];
        int64_t now = bl_now_coarse_ms();
        bl_snap_t *s = bl_dyn_get(&dyn);

        found += netaddr_set_count(exc_clients) && netaddr_set_contains(exc_clients, a);
        found += bl_snap_client(s, a, now) != NULL;
        found += netaddr_set_contains(ban_clients, a);
        found += bl_sites_match(exc_sites, h) != NULL;
        found += bl_snap_site(s, h, now) != NULL;
        found += bl_sites_match(ban_sites, h) != NULL;
        bl_snap_unref(s);
        if (bl_path_filename(path, name, sizeof(name)) == 0)
            found += bl_ext_banned(ban_ext, exc_ext, name) != NULL;
        if (bl_mime_of("text/html; charset=utf-8", 24, mime, sizeof(mime)) == 0)
            found += bl_mime_find(ban_mime, mime) != NULL &&
                     bl_mime_find(exc_mime, mime) == NULL;
    }
    sink += found;
    return NULL;
}

int main(int argc, char **argv)
{
    char err[1024];
    struct timespec t0, t1;
    pthread_t th[16];
    int nthreads;
    static const char *const exts[] = {"exe", "scr", "msi", "hta", "vbs", "js"};
    static const char *const mimes[] = {"application/x-msdownload", "application/hta",
                                        "video/*"};

    if (argc != 5) {
        fprintf(stderr, "usage: lookup CLIENTS SITES ITERATIONS THREADS\n");
        return 2;
    }
    iterations = atol(argv[3]);
    nthreads = atoi(argv[4]);
    if (nthreads < 1 || nthreads > 16)
        nthreads = 1;
    ban_clients = netaddr_set_new();
    exc_clients = netaddr_set_new();
    ban_sites = bl_sites_new();
    exc_sites = bl_sites_new();
    ban_ext = bl_strset_new();
    exc_ext = bl_strset_new();
    ban_mime = bl_strset_new();
    exc_mime = bl_strset_new();
    if (bl_list_read(argv[1], BL_COMMENT_ANY, add_client, ban_clients, 0, NULL, NULL, err,
                     sizeof(err)) < 0 ||
        bl_list_read(argv[2], BL_COMMENT_ANY, add_site, ban_sites, 0, NULL, NULL, err,
                     sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
        bl_strset_add(ban_ext, exts[i], strlen(exts[i]));
    for (size_t i = 0; i < sizeof(mimes) / sizeof(mimes[0]); i++)
        bl_strset_add(ban_mime, mimes[i], strlen(mimes[i]));
    netaddr_set_finish(ban_clients);
    netaddr_set_finish(exc_clients);
    bl_sites_finish(ban_sites);
    bl_sites_finish(exc_sites);
    bl_strset_finish(ban_ext);
    bl_strset_finish(exc_ext);
    bl_strset_finish(ban_mime);
    bl_strset_finish(exc_mime);

    /* A hundred dynamic bans, as after a bad day. */
    bl_dyn_init(&dyn, 100000);
    for (int i = 0; i < 100; i++) {
        char t[64];
        bl_ban_t *b, *old;
        snprintf(t, sizeof(t), i % 2 ? "192.0.2.%d" : "dyn%d.example", i);
        b = bl_ban_parse_target(t, err, sizeof(err));
        if (b == NULL) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        bl_ban_set_text(b, "bench", "bench");
        bl_dyn_add(&dyn, b, &old, err, sizeof(err));
        bl_ban_unref(b);
        bl_ban_unref(old);
    }
    /* Clients from the office ranges, hosts of ordinary sites: none banned. */
    for (int i = 0; i < NCLIENTS; i++) {
        char t[32];
        snprintf(t, sizeof(t), "172.16.%d.%d", i / 250, i % 250 + 1);
        netaddr_parse(t, &clients[i]);
    }
    for (int i = 0; i < NHOSTS; i++)
        snprintf(hosts[i], sizeof(hosts[i]), "www.site%d.example.org", i);

    /* CPU time, not wall time: other load on the machine must not count. */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, run, (void *)(size_t)(i * 1000));
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
                         ((double)iterations * nthreads));
    return 0;
}
