/* fakescan.c - a test provider of the "scanner" service: a fake engine on its own thread. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <portcullis/plugin.h>

/*
 * The engine finds "infected" data by a marker string, so tests need no
 * real signatures:
 *
 *     plugin fakescan {
 *         marker        FAKE-VIRUS     # data containing it is infected
 *         virus_name    Fake.Test.Virus
 *         error_marker  FAKE-ERROR     # data containing it fails to scan
 *         delay         0              # how long each scan takes
 *         fail_init     off            # on: init() fails (reload tests)
 *     }
 *
 * Scans run one at a time on the engine's thread. A result goes back to
 * the submitting loop with loop_post(); a cancelled scan never calls back.
 * The deadline is the scan's time budget in ms: past it the result is an
 * error ("deadline passed").
 */

PC_PLUGIN_HOST_DEFINE;
#define host pc_plugin_host_

typedef struct fs_conf {
    int fail_init;
    char *marker;
    char *virus_name;
    char *error_marker;
    uint64_t delay_ms;
} fs_conf_t;

struct pc_scan {
    struct pc_scan *next;         /* engine queue */
    atomic_int refs;              /* the engine's (then the result's), ticks */
    atomic_int cancelled;
    pthread_mutex_t lock;         /* held while the engine reads data */
    pc_loop_t *loop;
    const unsigned char *data;    /* scan_mem: the caller keeps it alive */
    size_t len;
    int fd;                       /* scan_fd: our dup(), or -1 */
    uint64_t deadline_ms;
    pc_scan_cb cb;
    pc_scan_tick_cb tick;
    void *arg;
    struct timespec start;
    uint64_t delay_ms;            /* from the configuration at submission */
    char *marker, *virus, *error_marker;
    pc_scan_result_t res;
    char errbuf[128];
    uint64_t tick_elapsed;
};

/* The engine: one thread, one queue. */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static pc_scan_t *q_head, *q_tail;
static int q_stop;
static pthread_t engine;
static int engine_running;
static fs_conf_t *conf_now;       /* in force (main thread writes, under q_lock) */
static pc_plugin_t *me;
static atomic_llong scans_done;

static uint64_t ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)(t.tv_sec - t0->tv_sec) * 1000 +
           (uint64_t)((t.tv_nsec - t0->tv_nsec) / 1000000);
}

static void scan_unref(pc_scan_t *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->fd >= 0)
        close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s->marker);
    free(s->virus);
    free(s->error_marker);
    free(s);
}

/* On the submitting loop. */
static void deliver(void *arg)
{
    pc_scan_t *s = arg;

    if (!atomic_load(&s->cancelled))
        s->cb(s->arg, &s->res);
    scan_unref(s);
}

static void deliver_tick(void *arg)
{
    pc_scan_t *s = arg;

    if (!atomic_load(&s->cancelled) && s->tick)
        s->tick(s->arg, s->tick_elapsed);
    scan_unref(s);
}

/* Looks for the markers in [p, p+n); carry keeps the tail of the previous
 * piece so a marker across two reads is found. */
static void look(pc_scan_t *s, const unsigned char *p, size_t n, int *infected,
                 int *error)
{
    if (memmem(p, n, s->marker, strlen(s->marker)))
        *infected = 1;
    if (memmem(p, n, s->error_marker, strlen(s->error_marker)))
        *error = 1;
}

static void run_scan(pc_scan_t *s)
{
    int infected = 0, error = 0;
    uint64_t waited = 0;

    /* The engine's "work": the configured delay, in steps, so cancel and
     * the deadline are noticed; a tick every 100 ms. */
    while (waited < s->delay_ms && !atomic_load(&s->cancelled)) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        waited += 20;
        if (s->deadline_ms && ms_since(&s->start) >= s->deadline_ms)
            break;
        if (s->tick && waited % 100 == 0) {
            atomic_fetch_add(&s->refs, 1);
            s->tick_elapsed = ms_since(&s->start);
            if (host->loop_post(s->loop, deliver_tick, s) < 0)
                scan_unref(s);
        }
    }
    if (s->fd >= 0) {
        unsigned char buf[65536 + 256];
        size_t keep = 0, ml = strlen(s->marker) > strlen(s->error_marker)
                                  ? strlen(s->marker) : strlen(s->error_marker);
        off_t off = 0;
        ssize_t r;
        if (ml > 255)
            ml = 255;
        while ((r = pread(s->fd, buf + keep, 65536, off)) > 0) {
            size_t n = keep + (size_t)r;
            look(s, buf, n, &infected, &error);
            s->res.scanned_bytes += (uint64_t)r;
            off += r;
            keep = n < ml ? n : ml;
            memmove(buf, buf + n - keep, keep);
        }
        if (r < 0) {
            snprintf(s->errbuf, sizeof(s->errbuf), "read: %s", strerror(errno));
            error = 1;
        }
    } else {
        /* The caller's memory: read only while not cancelled (cancel
         * waits for this lock, then the caller may free it). */
        pthread_mutex_lock(&s->lock);
        if (!atomic_load(&s->cancelled)) {
            look(s, s->data, s->len, &infected, &error);
            s->res.scanned_bytes = s->len;
        }
        pthread_mutex_unlock(&s->lock);
    }
    s->res.elapsed_ms = ms_since(&s->start);
    if (s->deadline_ms && s->res.elapsed_ms >= s->deadline_ms) {
        s->res.status = PC_SCAN_ERROR;
        s->res.error = "deadline passed";
    } else if (error) {
        s->res.status = PC_SCAN_ERROR;
        s->res.error = s->errbuf[0] ? s->errbuf : "the engine failed on this data";
    } else if (infected) {
        s->res.status = PC_SCAN_INFECTED;
        s->res.virus = s->virus;
    } else {
        s->res.status = PC_SCAN_CLEAN;
    }
    atomic_fetch_add(&scans_done, 1);
}

static void *engine_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q_lock);
    for (;;) {
        pc_scan_t *s;
        while (q_head == NULL && !q_stop)
            pthread_cond_wait(&q_cond, &q_lock);
        if (q_head == NULL)
            break;
        s = q_head;
        q_head = s->next;
        if (q_head == NULL)
            q_tail = NULL;
        pthread_mutex_unlock(&q_lock);
        if (!atomic_load(&s->cancelled))
            run_scan(s);
        /* The engine's reference goes with the result (or is dropped). */
        if (atomic_load(&s->cancelled) || host->loop_post(s->loop, deliver, s) < 0)
            scan_unref(s);
        pthread_mutex_lock(&q_lock);
    }
    pthread_mutex_unlock(&q_lock);
    return NULL;
}

static pc_scan_t *submit(pc_scan_t *s, const pc_scan_meta_t *meta,
                         uint64_t deadline_ms, pc_scan_cb cb,
                         pc_scan_tick_cb tick, void *arg, const char **err)
{
    s->loop = host->loop_current();
    if (s->loop == NULL || cb == NULL) {
        *err = s->loop == NULL ? "submit from a loop thread" : "no callback";
        goto fail;
    }
    /* One reference, the engine's: the submitter holds none, since cancel
     * and the result both run on its loop, in order, and the result frees. */
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->cancelled, 0);
    s->cb = cb;
    s->tick = tick;
    s->arg = arg;
    s->deadline_ms = deadline_ms;
    clock_gettime(CLOCK_MONOTONIC, &s->start);
    pthread_mutex_lock(&q_lock);
    if (!engine_running || q_stop) {
        pthread_mutex_unlock(&q_lock);
        *err = "the engine is not running";
        goto fail;
    }
    s->delay_ms = conf_now->delay_ms;
    s->marker = strdup(conf_now->marker);
    s->virus = strdup(conf_now->virus_name);
    s->error_marker = strdup(conf_now->error_marker);
    if (s->marker == NULL || s->virus == NULL || s->error_marker == NULL) {
        pthread_mutex_unlock(&q_lock);
        *err = "out of memory";
        goto fail;
    }
    if (q_tail)
        q_tail->next = s;
    else
        q_head = s;
    q_tail = s;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
    (void)meta;
    return s;
fail:
    if (s->fd >= 0)
        close(s->fd);
    if (s->cb)
        pthread_mutex_destroy(&s->lock);
    free(s->marker);
    free(s->virus);
    free(s->error_marker);
    free(s);
    return NULL;
}

static pc_scan_t *fs_scan_mem(const void *data, size_t len, const pc_scan_meta_t *meta,
                              uint64_t deadline_ms, pc_scan_cb cb, pc_scan_tick_cb tick,
                              void *arg, const char **err)
{
    pc_scan_t *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        *err = "out of memory";
        return NULL;
    }
    s->fd = -1;
    s->data = data;
    s->len = len;
    return submit(s, meta, deadline_ms, cb, tick, arg, err);
}

static pc_scan_t *fs_scan_fd(int fd, const pc_scan_meta_t *meta, uint64_t deadline_ms,
                             pc_scan_cb cb, pc_scan_tick_cb tick, void *arg,
                             const char **err)
{
    pc_scan_t *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        *err = "out of memory";
        return NULL;
    }
    s->fd = dup(fd);
    if (s->fd < 0) {
        free(s);
        *err = "cannot dup the descriptor";
        return NULL;
    }
    return submit(s, meta, deadline_ms, cb, tick, arg, err);
}

/* On the submitting loop: the result, if still to come, is dropped there.
 * Waits for a read of the caller's memory in progress: after cancel the
 * caller may free it. */
static void fs_cancel(pc_scan_t *s)
{
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->cancelled, 1);
    pthread_mutex_unlock(&s->lock);
}

static const char *fs_describe(void)
{
    return "fakescan 1.0 (a test engine: markers, no signatures)";
}

static const pc_scanner_t fs_scanner = {
    .size = sizeof(pc_scanner_t),
    .scan_mem = fs_scan_mem,
    .scan_fd = fs_scan_fd,
    .cancel = fs_cancel,
    .describe = fs_describe,
};

/* ---- configuration and life cycle --------------------------------------- */

static const pc_directive_t fs_directives[] = {
    {"marker", 1, 1, 0, PC_DIR_STRING, offsetof(fs_conf_t, marker), NULL, NULL},
    {"virus_name", 1, 1, 0, PC_DIR_STRING, offsetof(fs_conf_t, virus_name), NULL, NULL},
    {"error_marker", 1, 1, 0, PC_DIR_STRING, offsetof(fs_conf_t, error_marker), NULL, NULL},
    {"delay", 1, 1, 0, PC_DIR_DURATION, offsetof(fs_conf_t, delay_ms), NULL, NULL},
    {"fail_init", 1, 1, 0, PC_DIR_FLAG, offsetof(fs_conf_t, fail_init), NULL, NULL},
    PC_DIRECTIVE_END,
};

static void *fs_conf_create(pc_plugin_t *self)
{
    return calloc(1, sizeof(fs_conf_t));
}

static int fs_conf_finish(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    fs_conf_t *c = obj;

    if ((c->marker == NULL && (c->marker = strdup("FAKE-VIRUS")) == NULL) ||
        (c->virus_name == NULL && (c->virus_name = strdup("Fake.Test.Virus")) == NULL) ||
        (c->error_marker == NULL && (c->error_marker = strdup("FAKE-ERROR")) == NULL)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (c->marker[0] == '\0' || c->error_marker[0] == '\0') {
        snprintf(err, errlen, "markers cannot be empty");
        return -1;
    }
    return 0;
}

static void fs_conf_free(pc_plugin_t *self, void *obj)
{
    fs_conf_t *c = obj;

    free(c->marker);
    free(c->virus_name);
    free(c->error_marker);
    free(c);
}

static int fs_init(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    if (((fs_conf_t *)obj)->fail_init) {
        snprintf(err, errlen, "fail_init is set");
        return -1;
    }
    me = self;
    conf_now = obj;
    if (pthread_create(&engine, NULL, engine_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the engine thread");
        return -1;
    }
    engine_running = 1;
    if (host->service_register(self, PC_SCANNER_SERVICE, PC_SCANNER_VERSION,
                               &fs_scanner) < 0) {
        snprintf(err, errlen, "cannot register the scanner service");
        return -1;
    }
    host->log(self, PC_LOG_INFO, "scanner ready: %s", fs_describe());
    return 0;
}

static void fs_reconfigure(pc_plugin_t *self, void *old_obj, void *new_obj)
{
    pthread_mutex_lock(&q_lock);
    conf_now = new_obj;
    pthread_mutex_unlock(&q_lock);
}

static void fs_shutdown(pc_plugin_t *self)
{
    pthread_mutex_lock(&q_lock);
    q_stop = 1;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
    if (engine_running)
        pthread_join(engine, NULL);
    engine_running = 0;
    /* Whatever is still queued can never be delivered now. */
    while (q_head) {
        pc_scan_t *s = q_head;
        q_head = s->next;
        scan_unref(s);
    }
    q_tail = NULL;
    host->log(self, PC_LOG_INFO, "engine stopped after %lld scans",
              (long long)atomic_load(&scans_done));
}

static const pc_service_ref_t fs_provides[] = {
    {PC_SCANNER_SERVICE, PC_SCANNER_VERSION},
    {NULL, 0},
};

static const pc_plugin_desc_t fs_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "fakescan",
    .version = "1.0",
    .description = "a fake scanner engine for the tests",
    .provides = fs_provides,
    .directives = fs_directives,
    .conf_create = fs_conf_create,
    .conf_finish = fs_conf_finish,
    .conf_free = fs_conf_free,
    .init = fs_init,
    .reconfigure = fs_reconfigure,
    .shutdown = fs_shutdown,
};

PC_PLUGIN(fs_desc)
