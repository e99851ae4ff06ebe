/* avscan_pool_test.c - unit tests of the avscan scan pool and engines with the real libclamav: results, cancels, deadlines, queue limits, swaps. */
#include <clamav.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "avscan.h"
#include "tap.h"

/*
 * The pool posts results to "loops"; here the test's main thread is the
 * one loop: posted functions go to a queue that run_loop() drains, so a
 * callback runs on the submitting thread exactly as on a worker.
 */

PC_PLUGIN_HOST_DEFINE;

#ifndef AVSCAN_TEST_SIGDIR
#define AVSCAN_TEST_SIGDIR "plugins/avscan/sigs"
#endif

static const char EICAR[] =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/* ---- a fake host and loop -------------------------------------------------- */

static void fake_log(pc_plugin_t *self, int level, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    (void)self;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (level <= PC_LOG_NOTICE)
        diag("log %d: %s", level, msg);
}

static int fake_metric(pc_plugin_t *self, const char *name, int64_t v)
{
    (void)self;
    (void)name;
    (void)v;
    return 0;
}

static pc_host_t fake_host;

pc_plugin_t *avscan_self(void)
{
    return NULL;
}

typedef struct item {
    struct item *next;
    void (*fn)(void *);
    void *arg;
} item_t;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static item_t *q_head, **q_tail = &q_head;
static pthread_t loop_thread;
static int the_loop;

static void *loop_current(void)
{
    return pthread_equal(pthread_self(), loop_thread) ? &the_loop : NULL;
}

static int loop_post(void *loop, void (*fn)(void *), void *arg)
{
    item_t *it;

    if (loop != &the_loop)
        return -1;
    it = calloc(1, sizeof(*it));
    it->fn = fn;
    it->arg = arg;
    pthread_mutex_lock(&q_lock);
    *q_tail = it;
    q_tail = &it->next;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
    return 0;
}

static void pool_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

static const avscan_pool_ops_t ops = {loop_current, loop_post, pool_log};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs posted functions until *done is non-zero or ms passed. */
static void run_loop(const int *done, uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    while ((done == NULL || !*done) && now_ms() < end) {
        item_t *it;
        pthread_mutex_lock(&q_lock);
        if (q_head == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q_cond, &q_lock, &ts);
        }
        it = q_head;
        if (it) {
            q_head = it->next;
            if (q_head == NULL)
                q_tail = &q_head;
        }
        pthread_mutex_unlock(&q_lock);
        if (it) {
            it->fn(it->arg);
            free(it);
        }
    }
}

/* ---- results ---------------------------------------------------------------- */

typedef struct got {
    int done;
    int status;
    char virus[128];
    char error[256];
    char part[64];
    unsigned flags;
    int ticks;
    uint64_t scanned;
} got_t;

static void on_result(void *arg, const pc_scan_result_t *r)
{
    got_t *g = arg;
    const avscan_result_t *ar = (const avscan_result_t *)(const void *)r;

    g->done++;
    g->status = r->status;
    snprintf(g->virus, sizeof(g->virus), "%s", r->virus ? r->virus : "");
    snprintf(g->error, sizeof(g->error), "%s", r->error ? r->error : "");
    snprintf(g->part, sizeof(g->part), "%s", ar->part ? ar->part : "");
    g->flags = ar->flags;
    g->scanned = r->scanned_bytes;
}

static void on_tick(void *arg, uint64_t elapsed)
{
    (void)elapsed;
    ((got_t *)arg)->ticks++;
}

static pc_scan_t *submit(const void *mem, size_t len, int fd, int coding,
                         const char *boundary, uint64_t deadline, got_t *g,
                         const char **err)
{
    avscan_req_t r;

    memset(&r, 0, sizeof(r));
    memset(g, 0, sizeof(*g));
    r.mem = mem;
    r.len = len;
    r.fd = fd;
    r.coding = coding;
    r.boundary = boundary;
    r.deadline_ms = deadline;
    r.cb = on_result;
    r.tick = on_tick;
    r.arg = g;
    return avscan_pool_submit(&r, err);
}

static unsigned char *gzip_of(const void *in, size_t len, size_t *outlen)
{
    z_stream z;
    size_t cap = compressBound((uLong)len) + 64;
    unsigned char *out = malloc(cap);

    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void settings(avscan_pool_settings_t *s, int threads, long queue, int on_limits)
{
    memset(s, 0, sizeof(*s));
    s->threads = threads;
    s->queue_size = queue;
    s->scan_timeout = 20000;
    s->tick_interval = 20;
    s->heuristic_alerts = 1;
    s->on_limits = on_limits;
    s->temp_dir = "/tmp";
    s->max_parts = 100;
}

static void opts_init(avscan_engine_opts_t *o, char *db, char *sigs)
{
    memset(o, 0, sizeof(*o));
    o->database = db;
    o->database_set = 1;
    o->test_signatures = sigs;
    o->temp_dir = "/tmp";
    o->max_scan_size = 400ull << 20;
    o->max_file_size = 100ull << 20;
    o->max_recursion = 17;
    o->max_files = 10000;
    o->scan_timeout = 20000;
    o->scan_cache = 1;
}

int main(void)
{
    char db[] = "/tmp/avscan-pool-test-XXXXXX", sigs[4096], err[1024];
    const char *src = getenv("TOP_SRCDIR"), *e = NULL;
    avscan_engine_opts_t o;
    avscan_engine_t *eng, *eng2;
    avscan_pool_settings_t s;
    avscan_pool_stats_t st;
    pc_scan_t *h, *h2;
    got_t g, g2, g3;
    size_t clam_len = 0, zlen, big_len = 48u << 20;
    char *clam, *big;
    unsigned char *z;

    fake_host.log = fake_log;
    fake_host.metric_set = fake_metric;
    fake_host.metric_add = fake_metric;
    pc_plugin_host_ = &fake_host;
    loop_thread = pthread_self();
    snprintf(sigs, sizeof(sigs), "%s/plugins/avscan/sigs", src ? src : ".");
    if (access(sigs, R_OK) < 0)
        snprintf(sigs, sizeof(sigs), "%s", AVSCAN_TEST_SIGDIR);
    if (mkdtemp(db) == NULL) {
        ok(0, "mkdtemp");
        return done_testing();
    }

    /* ---- engines */
    opts_init(&o, db, sigs);
    if (!ok(avscan_engine_load(&o, &eng, err, sizeof(err)) == 0, "engine from the test signatures"))
        diag("%s", err);
    ok(avscan_engine_test_only(eng), "an empty database directory: test signatures, said so");
    is_int(avscan_engine_signatures(eng), 2, "two test signatures (EICAR .ndb, clam.exe .hdb)");
    ok(strstr(avscan_engine_describe(eng), "TEST SIGNATURES ONLY") != NULL,
       "the description says test only: %s", avscan_engine_describe(eng));
    {
        avscan_engine_opts_t bad;
        avscan_engine_t *none;
        opts_init(&bad, "/nonexistent/avscan-db", sigs);
        ok(avscan_engine_load(&bad, &none, err, sizeof(err)) < 0 && strstr(err, "/nonexistent/avscan-db"),
           "a missing database directory that was named: an error naming it (%s)", err);
        bad.test_signatures = db;
        bad.database = db;
        ok(avscan_engine_load(&bad, &none, err, sizeof(err)) < 0 && strstr(err, "no ClamAV databases"),
           "no databases and no test signatures: an error (%s)", err);
    }
    avscan_engine_commit(eng);
    ok(strstr(avscan_scanner.describe(), "ClamAV") != NULL, "describe(): %s", avscan_scanner.describe());

    settings(&s, 2, 8, AVSCAN_ALLOW);
    ok(avscan_pool_start(&ops, &s, err, sizeof(err)) == 0, "pool started");
    {
        /* An idle pool sleeps: its watchdog waits on the right clock. */
        struct rusage r0, r1;
        double used;
        getrusage(RUSAGE_SELF, &r0);
        usleep(500000);
        getrusage(RUSAGE_SELF, &r1);
        used = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
                r0.ru_stime.tv_sec) * 1e3 +
               (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
                r0.ru_stime.tv_usec) / 1e3;
        ok(used < 50, "an idle pool uses no CPU (%.1f ms in 500 ms)", used);
    }

    /* ---- results */
    memset(&g, 0, sizeof(g));
    h = avscan_scanner.scan_mem(EICAR, sizeof(EICAR) - 1, NULL, 0, on_result, NULL, &g, &e);
    ok(h != NULL, "scan_mem submitted");
    run_loop(&g.done, 5000);
    is_int(g.done, 1, "EICAR: one callback");
    is_int(g.status, PC_SCAN_INFECTED, "EICAR: infected");
    is_str(g.virus, "Eicar-Test-Signature.UNOFFICIAL", "EICAR: named");
    is_int(g.scanned, sizeof(EICAR) - 1, "EICAR: every byte scanned");

    h = submit("just text\n", 10, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
    run_loop(&g.done, 5000);
    ok(g.done == 1 && g.status == PC_SCAN_CLEAN, "clean text: clean");

    clam = read_file("/usr/share/clamav-testfiles/clam.exe", &clam_len);
    if (clam) {
        int fd = open("/usr/share/clamav-testfiles/clam.exe", O_RDONLY);
        off_t before;
        lseek(fd, 17, SEEK_SET);
        before = lseek(fd, 0, SEEK_CUR);
        memset(&g, 0, sizeof(g));
        h = avscan_scanner.scan_fd(fd, NULL, 0, on_result, NULL, &g, &e);
        close(fd);  /* the provider dup()ed it */
        run_loop(&g.done, 5000);
        ok(h && g.status == PC_SCAN_INFECTED, "scan_fd clam.exe: infected");
        is_str(g.virus, "ClamAV-Test-File.UNOFFICIAL", "scan_fd clam.exe: named");
        ok(before == 17, "the caller's file offset is not used (scanned from 0)");

        /* In a multipart upload the hash matches only the isolated part. */
        {
            const char *head = "--bb\r\nContent-Disposition: form-data; name=\"f\"; "
                               "filename=\"clam.exe\"\r\nContent-Type: application/octet-stream\r\n\r\n";
            size_t hl = strlen(head), n = hl + clam_len + 10;
            char *body = malloc(n);
            memcpy(body, head, hl);
            memcpy(body + hl, clam, clam_len);
            memcpy(body + hl + clam_len, "\r\n--bb--\r\n", 10);
            h = submit(body, n, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
            run_loop(&g.done, 5000);
            ok(g.status == PC_SCAN_CLEAN, "multipart scanned whole only: the hash does not match");
            h = submit(body, n, -1, AVSCAN_CODING_NONE, "bb", 0, &g, &e);
            run_loop(&g.done, 5000);
            ok(g.status == PC_SCAN_INFECTED, "multipart scanned by parts: infected");
            is_str(g.virus, "ClamAV-Test-File.UNOFFICIAL", "multipart: named");
            is_str(g.part, "clam.exe", "multipart: the part's file name");
            free(body);
        }
        free(clam);
    } else {
        for (int i = 0; i < 7; i++)
            ok(1, "# SKIP clamav-testfiles not installed");
    }

    z = gzip_of(EICAR, sizeof(EICAR) - 1, &zlen);
    h = submit(z, zlen, -1, AVSCAN_CODING_GZIP, NULL, 0, &g, &e);
    run_loop(&g.done, 5000);
    ok(g.status == PC_SCAN_INFECTED && strncmp(g.virus, "Eicar", 5) == 0,
       "gzip content coding decoded: EICAR found");
    h = submit(z, zlen - 5, -1, AVSCAN_CODING_GZIP, NULL, 0, &g, &e);
    run_loop(&g.done, 5000);
    ok(g.status == PC_SCAN_INFECTED && (g.flags & AVSCAN_RES_UNDECODED),
       "truncated gzip: what decoded is scanned anyway (infected, flagged undecoded)");
    {
        avscan_req_t r;
        memset(&r, 0, sizeof(r));
        memset(&g, 0, sizeof(g));
        r.mem = z;
        r.len = zlen;
        r.fd = -1;
        r.coding = AVSCAN_CODING_GZIP;
        r.decode_limit = 10;
        r.cb = on_result;
        r.arg = &g;
        h = avscan_pool_submit(&r, &e);
        run_loop(&g.done, 5000);
        ok(g.status == PC_SCAN_ERROR && (g.flags & AVSCAN_RES_OVERSIZE),
           "decoded body over its limit: an error flagged oversize (%s)", g.error);
    }
    free(z);

    /* ---- cancel */
    h = submit(EICAR, sizeof(EICAR) - 1, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
    avscan_pool_cancel(h);
    run_loop(NULL, 300);
    is_int(g.done, 0, "cancelled at once: no callback");

    big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 2654435761u >> 13);
    h = submit(big, big_len, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
    usleep(20000);  /* no loop turn: whatever happened, nothing was delivered */
    avscan_pool_cancel(h);
    run_loop(NULL, 1500);
    is_int(g.done, 0, "cancelled while running: no callback, ever");

    /* ---- ticks, and a swap while a scan runs */
    opts_init(&o, db, sigs);
    o.max_files = 9999;  /* a different engine */
    ok(avscan_engine_load(&o, &eng2, err, sizeof(err)) == 0, "a second engine");
    h = submit(big, big_len, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
    run_loop(NULL, 5);
    avscan_engine_commit(eng2);  /* the first is freed after this scan */
    run_loop(&g.done, 20000);
    is_int(g.status, PC_SCAN_CLEAN, "48 MiB scan across an engine swap: clean");
    ok(g.ticks >= 1, "keep-alive ticks during a long scan (%d)", g.ticks);
    h = submit(EICAR, sizeof(EICAR) - 1, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
    run_loop(&g.done, 5000);
    is_int(g.status, PC_SCAN_INFECTED, "the new engine scans");

    /* ---- deadlines and the queue bound, with one thread */
    settings(&s, 1, 1, AVSCAN_ALLOW);
    avscan_pool_configure(&s);
    h = submit(big, big_len, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
    for (int i = 0; i < 200; i++) {
        avscan_pool_stats(&st);
        if (st.running == 1)
            break;
        usleep(5000);
    }
    is_int(st.running, 1, "one scan running");
    h = submit(EICAR, sizeof(EICAR) - 1, -1, AVSCAN_CODING_NONE, NULL, 1, &g2, &e);
    ok(h != NULL, "a second one queued (deadline 1 ms)");
    h2 = submit(EICAR, sizeof(EICAR) - 1, -1, AVSCAN_CODING_NONE, NULL, 0, &g3, &e);
    ok(h2 == NULL && e && strstr(e, "queue is full"), "a third: refused, queue full (%s)", e ? e : "");
    run_loop(&g2.done, 2000);
    is_int(g2.status, PC_SCAN_ERROR, "queued past its deadline: an error at the deadline");
    ok(g2.flags & AVSCAN_RES_TIMEOUT, "flagged as a timeout: %s", g2.error);
    ok(strstr(g2.error, "did not start") != NULL, "the error says it never started");
    run_loop(&g.done, 20000);
    is_int(g.status, PC_SCAN_CLEAN, "the running scan still finished");

    h = submit(big, big_len, -1, AVSCAN_CODING_NONE, NULL, 30, &g, &e);
    run_loop(&g.done, 5000);
    ok(g.done == 1 && g.status == PC_SCAN_ERROR && (g.flags & AVSCAN_RES_TIMEOUT),
       "a 48 MiB scan past its 30 ms deadline: an error at the deadline (%s)", g.error);
    run_loop(NULL, 200);
    is_int(g.done, 1, "and no second callback when the thread finishes");
    avscan_pool_stats(&st);
    ok(st.timeouts >= 2, "timeouts counted (%llu)", (unsigned long long)st.timeouts);

    /* ---- limits: on_limits decides */
    settings(&s, 2, 8, AVSCAN_ALLOW);
    avscan_pool_configure(&s);
    opts_init(&o, db, sigs);
    o.max_recursion = 1;
    ok(avscan_engine_load(&o, &eng, err, sizeof(err)) == 0, "an engine with max_recursion 1");
    avscan_engine_commit(eng);
    {
        static char zeros[5000];
        z = gzip_of(zeros, sizeof(zeros), &zlen);
        h = submit(z, zlen, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
        run_loop(&g.done, 5000);
        ok(g.status == PC_SCAN_CLEAN && (g.flags & AVSCAN_RES_LIMITS),
           "on_limits allow: a gzip file past max_recursion is clean, flagged");
        settings(&s, 2, 8, AVSCAN_BLOCK);
        avscan_pool_configure(&s);
        h = submit(z, zlen, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
        run_loop(&g.done, 5000);
        is_int(g.status, PC_SCAN_INFECTED, "on_limits block: infected");
        is_str(g.virus, "Heuristics.Limits.Exceeded.MaxRecursion", "on_limits block: the limit named");
        free(z);
    }

    avscan_pool_stats(&st);
    ok(st.scans > 10 && st.infected > 3, "counters: %llu scans, %llu infected",
       (unsigned long long)st.scans, (unsigned long long)st.infected);
    avscan_pool_stop();
    h = submit(EICAR, sizeof(EICAR) - 1, -1, AVSCAN_CODING_NONE, NULL, 0, &g, &e);
    ok(h == NULL, "after stop: refused (%s)", e ? e : "");
    avscan_engine_commit(NULL);
    free(big);
    rmdir(db);
    return done_testing();
}
