/* ucbench.c - urlcat's matcher alone: list load time, memory and lookups/s over a query file (for bench/urlcat/run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lists.h"
#include "urlnorm.h"

/*
 * Usage: ucbench LISTS_DIR CATEGORY QUERIES [ROUNDS]
 *
 * Loads LISTS_DIR (a UT1/squidGuard tree) with urlcat's own loader, as
 * `lists LISTS_DIR` + `block CATEGORY` would, then judges every URL of
 * QUERIES ("http://host/path" a line) ROUNDS times (default 1) on one
 * thread, doing what the plugin does per request: normalise the host and
 * path with lib/urlnorm, build the URL key, look up, decide. Prints one
 * JSON line: load_s, entry counts, db_bytes, rss_kib, lookups, lookup_s,
 * lookups_per_s, blocked (per round).
 */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One query, as runtime.c's check() does it. Returns 1 when blocked. */
static int judge(const uc_lists_t *l, const char *line)
{
    char h[URLNORM_HOST_MAX + 1], np[8192], key[8192 + 300], url[8192 + 300];
    const char *why, *s = line, *hend, *path;
    ucdb_query_t q;
    ucset_t hit;
    int n;

    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    path = s + strcspn(s, "/?");
    hend = memchr(s, ':', (size_t)(path - s));
    if (hend == NULL)
        hend = path;
    if (urlnorm_host(s, (size_t)(hend - s), h, sizeof(h), &why) < 0 ||
        urlnorm_path(path, strlen(path), np, sizeof(np), &why) < 0)
        return 1;  /* refused: the plugin answers 400 */
    memset(&q, 0, sizeof(q));
    q.hostname = h;
    q.host_is_ip = urlnorm_host_is_ip(h) && netaddr_parse(h, &q.ip) == 0;
    n = ucdb_url_key(h, np, key, sizeof(key));
    q.url_key = n >= 0 ? key : NULL;
    q.url_key_len = n >= 0 ? (size_t)n : 0;
    q.url_len = (size_t)snprintf(url, sizeof(url), "http://%s%s", h, np);
    q.url = url;
    ucdb_lookup(l->db, &q, &l->want[0], &hit);
    return ucset_first_common(&hit, &l->block[0]) >= 0;
}

int main(int argc, char **argv)
{
    uc_conf_t conf;
    uc_source_t src;
    uc_policy_t pol;
    uc_name_t name;
    uc_lists_t *l;
    ucdb_stats_t st;
    char err[1024], *buf = NULL, **lines = NULL;
    size_t cap = 0, nlines = 0, caplines = 0;
    ssize_t len;
    FILE *f;
    long rss;
    int rounds = argc > 4 ? atoi(argv[4]) : 1, blocked = 0;
    double t0, t1;

    if (argc < 4 || rounds < 1) {
        fprintf(stderr, "usage: ucbench LISTS_DIR CATEGORY QUERIES [ROUNDS]\n");
        return 2;
    }
    memset(&conf, 0, sizeof(conf));
    memset(&src, 0, sizeof(src));
    memset(&pol, 0, sizeof(pol));
    src.kind = UC_SRC_TREE;
    src.path = argv[1];
    src.file = "ucbench";
    name.name = argv[2];
    name.file = "ucbench";
    name.line = 1;
    pol.name = "default";
    pol.block = &name;
    pol.nblock = 1;
    conf.src = &src;
    conf.nsrc = 1;
    conf.pol = &pol;
    conf.npol = 1;
    conf.caseless = 1;

    l = uc_lists_load(&conf, NULL, NULL, err, sizeof(err));
    if (l == NULL) {
        fprintf(stderr, "ucbench: %s\n", err);
        return 1;
    }
    rss = rss_kib();
    f = fopen(argv[3], "r");
    if (f == NULL) {
        perror(argv[3]);
        return 1;
    }
    while ((len = getline(&buf, &cap, f)) > 0) {
        if (buf[len - 1] == '\n')
            buf[--len] = '\0';
        if (nlines == caplines) {
            caplines = caplines ? caplines * 2 : 1024;
            lines = realloc(lines, caplines * sizeof(*lines));
            if (lines == NULL)
                return 1;
        }
        lines[nlines++] = strdup(buf);
    }
    fclose(f);
    free(buf);
    t0 = now_s();
    for (int r = 0; r < rounds; r++) {
        int b = 0;
        for (size_t i = 0; i < nlines; i++)
            b += judge(l, lines[i]);
        blocked = b;
    }
    t1 = now_s();
    ucdb_get_stats(l->db, &st);
    printf("{\"load_s\":%.3f,\"domains\":%zu,\"urls\":%zu,\"expressions\":%zu,"
           "\"db_bytes\":%zu,\"rss_kib\":%ld,\"lookups\":%zu,\"lookup_s\":%.3f,"
           "\"lookups_per_s\":%.0f,\"blocked\":%d}\n",
           l->load_s, st.domains, st.urls, st.expressions, st.bytes, rss,
           nlines * (size_t)rounds, t1 - t0,
           (double)(nlines * (size_t)rounds) / (t1 - t0), blocked);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    uc_lists_free(l);
    return 0;
}
