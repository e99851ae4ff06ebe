/* avscan_pool.c - the scan thread pool: a bounded queue, per-scan deadlines, results posted to the submitting loop; the `scanner` service. */
#include <clamav.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "avscan.h"

/*
 * A scan (pc_scan_t) is submitted from a loop thread and runs on one of
 * the pool's threads with a reference to the engine in force. Its result
 * is posted back to the submitting loop (ops.loop_post) and the callback
 * runs there. A watchdog thread enforces deadlines: when one passes, the
 * submitter gets an ERROR result at once, and the scanning thread is told
 * to give up (libclamav's pre-scan callback skips the remaining embedded
 * files, and the engine's own time limit bounds a single file).
 *
 * Memory. A scan is reference counted under the pool lock: one reference
 * for the submitter (dropped by cancel or after the callback ran), one for
 * the pool while it is queued or running, and one for each posted message
 * (result, tick) not yet run. `cancelled` is only written on the
 * submitting thread, which is also where posted messages run, so a
 * message that finds it set does nothing: no callback after cancel.
 *
 * Data. scan_mem copies the bytes: a cancel or a deadline lets the caller
 * free them while a thread may still be reading. scan_fd dup()s the
 * descriptor and reads it with pread only, so the caller's offset is
 * never moved.
 */

#define MAX_THREADS 64
#define MEM_DECODE_MAX (1024 * 1024)

enum { J_QUEUED, J_RUNNING, J_DONE };

struct pc_scan {
    struct pc_scan *qnext;            /* the queue */
    struct pc_scan *anext, *aprev;    /* queued or running (watchdog) */
    struct pc_scan *all_next, *all_prev;
    int refs;
    int state;
    int delivered;                    /* a result was posted */
    int cancelled;                    /* submitting thread only */
    atomic_int abandoned;             /* the scanning thread may stop (read
                                       * by it without the lock) */

    void *loop;
    pc_scan_cb cb;
    pc_scan_tick_cb tick;
    void *arg;
    uint64_t submitted, deadline, next_tick;

    /* what to scan */
    char *mem;
    size_t len;
    int fd;
    int immutable;
    int coding;
    uint64_t decode_limit;
    char *boundary;
    char *filename;

    /* settings at submission */
    struct cl_scan_options opts;
    int on_limits;
    char *temp_dir;
    long max_parts;

    /* scanning thread scratch */
    char *found_real;                 /* first match that is not a limit */
    char *found_limits;

    /* the result delivered */
    avscan_result_t res;
    char *virus, *error, *part;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;              /* threads wait for scans */
    pthread_cond_t wd;                /* the watchdog waits for deadlines */
    avscan_pool_ops_t ops;
    avscan_pool_settings_t set;
    char *temp_dir;
    int started;
    int stop;

    pc_scan_t *qhead, *qtail;
    long queued, running;
    pc_scan_t *active;
    pc_scan_t *all;

    pthread_t threads[MAX_THREADS];
    int live[MAX_THREADS];            /* created and not joined */
    int exited[MAX_THREADS];
    int target;
    pthread_t watchdog;

    uint64_t scans, clean, infected, errors, timeouts, rejected;

    char **descs;                     /* every description handed out */
    int ndescs;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
       .wd = PTHREAD_COND_INITIALIZER};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- scan objects (P.lock held) ----------------------------------------- */

static void job_free(pc_scan_t *j)
{
    if (j->all_prev)
        j->all_prev->all_next = j->all_next;
    else
        P.all = j->all_next;
    if (j->all_next)
        j->all_next->all_prev = j->all_prev;
    free(j->mem);
    if (j->fd >= 0)
        close(j->fd);
    free(j->boundary);
    free(j->filename);
    free(j->temp_dir);
    free(j->found_real);
    free(j->found_limits);
    free(j->virus);
    free(j->error);
    free(j->part);
    free(j);
}

static void job_unref(pc_scan_t *j)
{
    if (--j->refs == 0)
        job_free(j);
}

static void active_remove(pc_scan_t *j)
{
    if (j->aprev)
        j->aprev->anext = j->anext;
    else
        P.active = j->anext;
    if (j->anext)
        j->anext->aprev = j->aprev;
    j->anext = j->aprev = NULL;
}

static void queue_remove(pc_scan_t *j)
{
    pc_scan_t **pp = &P.qhead, *prev = NULL;

    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (*pp == NULL)
        return;
    *pp = j->qnext;
    if (P.qtail == j)
        P.qtail = prev;
    j->qnext = NULL;
    P.queued--;
}

/* ---- delivery (runs on the submitting loop) ----------------------------- */

static void deliver_result(void *arg)
{
    pc_scan_t *j = arg;
    int run;

    pthread_mutex_lock(&P.lock);
    run = !j->cancelled;
    /* After the callback the handle is dead: a cancel must not follow. */
    j->cancelled = 1;
    pthread_mutex_unlock(&P.lock);
    if (run)
        j->cb(j->arg, &j->res.r);
    pthread_mutex_lock(&P.lock);
    if (run)
        job_unref(j);  /* the submitter's reference */
    job_unref(j);      /* this message's */
    pthread_mutex_unlock(&P.lock);
}

static void deliver_tick(void *arg)
{
    pc_scan_t *j = arg;
    int run;
    uint64_t elapsed;

    pthread_mutex_lock(&P.lock);
    run = !j->cancelled && !j->delivered;
    elapsed = now_ms() - j->submitted;
    pthread_mutex_unlock(&P.lock);
    if (run)
        j->tick(j->arg, elapsed);
    pthread_mutex_lock(&P.lock);
    job_unref(j);
    pthread_mutex_unlock(&P.lock);
}

/* Posts fn(j) to j's loop with a reference for the message. P.lock held. */
static void post(pc_scan_t *j, void (*fn)(void *))
{
    j->refs++;
    if (P.ops.loop_post(j->loop, fn, j) < 0) {
        /* The loop is gone: the submitter went with it. */
        j->refs--;
    }
}

static void count_result(const avscan_result_t *r)
{
    P.scans++;
    if (r->r.status == PC_SCAN_CLEAN)
        P.clean++;
    else if (r->r.status == PC_SCAN_INFECTED)
        P.infected++;
    else
        P.errors++;
    if (r->flags & AVSCAN_RES_TIMEOUT)
        P.timeouts++;
}

/* ---- scanning (a pool thread, no lock) ---------------------------------- */

/* The bytes a scan reads: memory, or a file from base for len bytes. */
typedef struct src {
    const char *mem;
    int fd;
    uint64_t base, len;
    const atomic_int *stop;       /* the pool is stopping */
} src_t;

/* Set when the pool stops: running scans then fail their next read. Only
 * then: a read error in the middle of a scan could let libclamav cache a
 * half-read file as clean, which is harmless only in a process that is
 * about to exit (the cache lives in memory). */
static atomic_int stopping;     /* read by the scan threads without the lock */

static long src_read(void *ctx, void *buf, size_t count, uint64_t off)
{
    src_t *s = ctx;

    /* The proxy is stopping: libclamav gives up on the file at once
     * instead of reading it to the end. */
    if (s->stop && *s->stop) {
        errno = ECANCELED;
        return -1;
    }
    if (off >= s->len)
        return 0;
    if (count > s->len - off)
        count = (size_t)(s->len - off);
    if (s->mem) {
        memcpy(buf, s->mem + s->base + off, count);
        return (long)count;
    }
    for (;;) {
        ssize_t n = pread(s->fd, buf, count, (off_t)(s->base + off));
        if (n < 0 && errno == EINTR)
            continue;
        return (long)n;
    }
}

static off_t fmap_read(void *handle, void *buf, size_t count, off_t offset)
{
    return (off_t)src_read(handle, buf, count, (uint64_t)offset);
}

cl_error_t avscan_pool_pre_scan(int fd, const char *type, void *context)
{
    pc_scan_t *j = context;

    (void)fd;
    (void)type;
    /* Skips the rest of a scan nobody waits for (deadline passed, or
     * cancelled) at its next embedded file. CL_VIRUS, not CL_BREAK: a
     * file "allowed" here could be entered in libclamav's clean cache and
     * never be scanned again; the result is thrown away anyway. */
    return j && j->abandoned ? CL_VIRUS : CL_CLEAN;
}

static int is_limits_name(const char *name)
{
    return name && strncmp(name, "Heuristics.Limits.Exceeded", 26) == 0;
}

void avscan_pool_virus_found(int fd, const char *virname, void *context)
{
    pc_scan_t *j = context;

    (void)fd;
    if (j == NULL || virname == NULL)
        return;
    if (is_limits_name(virname)) {
        if (j->found_limits == NULL)
            j->found_limits = strdup(virname);
    } else if (j->found_real == NULL) {
        j->found_real = strdup(virname);
    }
}

/* What one libclamav scan found. */
typedef struct outcome {
    int status;          /* PC_SCAN_* */
    unsigned flags;
    char *virus;         /* malloc()ed */
    char *error;
    uint64_t scanned;
} outcome_t;

static void outcome_error(outcome_t *o, unsigned flags, const char *fmt, const char *arg)
{
    char buf[512];

    snprintf(buf, sizeof(buf), fmt, arg);
    o->status = PC_SCAN_ERROR;
    o->flags |= flags;
    free(o->error);
    o->error = strdup(buf);
}

/* Scans s with e, name for libclamav's messages. */
static void scan_one(pc_scan_t *j, const avscan_engine_t *e, src_t *s,
                     const char *name, outcome_t *o)
{
    cl_fmap_t *map;
    const char *virname = NULL;
    unsigned long scanned = 0;
    cl_error_t rc;

    o->status = PC_SCAN_CLEAN;
    if (s->len == 0)
        return;
    /* Memory is mapped as it is (no copy: the fastest path); a file is
     * read through src_read (pread, and a quick end when stopping). */
    map = s->mem ? cl_fmap_open_memory(s->mem + s->base, (size_t)s->len)
                 : cl_fmap_open_handle(s, 0, (size_t)s->len, fmap_read, 1);
    if (map == NULL) {
        outcome_error(o, 0, "%s", "cannot map the data for scanning");
        return;
    }
    free(j->found_real);
    free(j->found_limits);
    j->found_real = j->found_limits = NULL;
    rc = cl_scanmap_callback(map, name, &virname, &scanned, avscan_engine_cl(e),
                             &j->opts, j);
    cl_fmap_close(map);
    /* libclamav counts in CL_COUNT_PRECISION blocks; say bytes handed in. */
    (void)scanned;
    o->scanned += s->len;
    if (rc == CL_VIRUS) {
        /* A real match wins over a limits alert found on the way. */
        const char *v = j->found_real ? j->found_real
                        : (virname && *virname) ? virname : j->found_limits;
        if (is_limits_name(v) && j->on_limits == AVSCAN_ALLOW) {
            o->status = PC_SCAN_CLEAN;
            o->flags |= AVSCAN_RES_LIMITS;
            return;
        }
        o->status = PC_SCAN_INFECTED;
        /* An unnamed match is still a match: virus stays NULL. */
        o->virus = v && *v ? strdup(v) : NULL;
    } else if (rc == CL_CLEAN || rc == CL_SUCCESS || rc == CL_BREAK) {
        o->status = PC_SCAN_CLEAN;
        if (j->found_limits && j->on_limits == AVSCAN_ALLOW)
            o->flags |= AVSCAN_RES_LIMITS;
    } else if (rc == CL_ETIMEOUT) {
        outcome_error(o, AVSCAN_RES_TIMEOUT, "%s", "the scan reached scan_timeout");
    } else {
        outcome_error(o, 0, "libclamav: %s", cl_strerror(rc));
    }
}

typedef struct part_ctx {
    pc_scan_t *j;
    const avscan_engine_t *e;
    src_t *body;
    outcome_t *o;
    char *part;
} part_ctx_t;

static int scan_part(void *arg, uint64_t off, uint64_t len, const char *filename)
{
    part_ctx_t *pc = arg;
    src_t s = *pc->body;

    if (pc->j->abandoned)
        return 1;
    s.base += off;
    s.len = len;
    scan_one(pc->j, pc->e, &s, filename, pc->o);
    if (pc->o->status != PC_SCAN_CLEAN) {
        pc->part = filename ? strdup(filename) : NULL;
        return 1;
    }
    return 0;
}

/* Maps a file nobody will change (a held body's spool file, our own
 * decoded copy): libclamav reads it as memory, half again as fast as
 * through pread. Other files (a share's, which a user may truncate under
 * us: SIGBUS) are read with pread. Returns the mapping or NULL. */
static void *map_file(int fd, uint64_t len)
{
    void *p;

    if (len == 0 || len > SIZE_MAX)
        return NULL;
    p = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, (size_t)len, MADV_SEQUENTIAL);
    return p;
}

/* Runs scan j: decode, scan whole, scan parts. Fills o and *part. */
static void run_job(pc_scan_t *j, outcome_t *o, char **part)
{
    avscan_engine_t *e = avscan_engine_current();
    avscan_blob_t blob;
    src_t raw = {j->mem, j->fd, 0, j->len, &stopping}, body;
    char err[512];
    int undecoded = 0;
    void *raw_map = NULL, *body_map = NULL;

    *part = NULL;
    avscan_blob_init(&blob, j->temp_dir, MEM_DECODE_MAX);
    if (e == NULL) {
        outcome_error(o, 0, "%s", "no signatures are loaded");
        return;
    }
    if (j->fd >= 0) {
        struct stat st;
        if (fstat(j->fd, &st) < 0) {
            outcome_error(o, 0, "cannot read the file: %s", strerror(errno));
            goto done;
        }
        raw.len = (uint64_t)st.st_size;
        if (j->immutable && (raw_map = map_file(j->fd, raw.len)) != NULL)
            raw.mem = raw_map;
    }
    body = raw;
    if (j->coding == AVSCAN_CODING_GZIP || j->coding == AVSCAN_CODING_DEFLATE) {
        int rc = avscan_decode(j->coding, src_read, &raw, &blob, j->decode_limit,
                               &j->abandoned, err, sizeof(err));
        if (j->abandoned)
            goto done;
        if (rc == 1) {
            char lim[32];
            avscan_format_size(j->decode_limit, lim, sizeof(lim));
            outcome_error(o, AVSCAN_RES_OVERSIZE, "the decoded body is larger than %s", lim);
            goto done;
        }
        if (rc < 0) {
            /* What the browser cannot decode it will not save whole; the
             * decoded start and the raw bytes are both scanned. */
            o->flags |= AVSCAN_RES_UNDECODED;
            undecoded = 1;
            if (o->error == NULL)
                o->error = strdup(err);
        }
        body.mem = blob.fd >= 0 ? NULL : blob.mem;
        body.fd = blob.fd;
        body.base = 0;
        body.len = avscan_blob_size(&blob);
        if (blob.fd >= 0 && (body_map = map_file(blob.fd, body.len)) != NULL)
            body.mem = body_map;
    }
    scan_one(j, e, &body, j->filename, o);
    if (o->status == PC_SCAN_CLEAN && j->boundary && !j->abandoned) {
        part_ctx_t pc = {j, e, &body, o, NULL};
        avscan_multipart_each(src_read, &body, body.len, j->boundary,
                              (int)j->max_parts, scan_part, &pc);
        *part = pc.part;
    }
    if (o->status == PC_SCAN_CLEAN && undecoded && !j->abandoned)
        scan_one(j, e, &raw, j->filename, o);
    if (o->status == PC_SCAN_CLEAN) {
        free(o->error);
        o->error = NULL;
    }
done:
    if (raw_map)
        munmap(raw_map, (size_t)raw.len);
    if (body_map)
        munmap(body_map, (size_t)body.len);
    avscan_blob_free(&blob);
    avscan_engine_unref(e);
}

/* ---- threads ------------------------------------------------------------- */

/* Hands the scanning thread's outcome to the submitter unless the watchdog
 * or a cancel came first. P.lock held. */
static void job_finish(pc_scan_t *j, outcome_t *o, char *part)
{
    if (!j->delivered && !j->cancelled) {
        j->delivered = 1;
        j->virus = o->virus;
        j->error = o->error;
        j->part = part;
        o->virus = o->error = NULL;
        part = NULL;
        j->res.r.status = (enum pc_scan_status)o->status;
        j->res.r.virus = j->virus;
        j->res.r.error = j->error;
        j->res.r.scanned_bytes = o->scanned;
        j->res.r.elapsed_ms = now_ms() - j->submitted;
        j->res.flags = o->flags;
        j->res.part = j->part;
        count_result(&j->res);
        post(j, deliver_result);
    }
    free(o->virus);
    free(o->error);
    free(part);
}

static void *thread_main(void *arg)
{
    int me = (int)(intptr_t)arg;

    pthread_mutex_lock(&P.lock);
    for (;;) {
        pc_scan_t *j;
        outcome_t o;
        char *part;

        if (P.stop || me >= P.target)
            break;
        j = P.qhead;
        if (j == NULL) {
            pthread_cond_wait(&P.work, &P.lock);
            continue;
        }
        P.qhead = j->qnext;
        if (P.qhead == NULL)
            P.qtail = NULL;
        j->qnext = NULL;
        P.queued--;
        j->state = J_RUNNING;
        j->next_tick = now_ms() + P.set.tick_interval;
        if (j->tick)
            pthread_cond_signal(&P.wd);  /* it may be asleep until later */
        P.running++;
        pthread_mutex_unlock(&P.lock);

        memset(&o, 0, sizeof(o));
        run_job(j, &o, &part);

        pthread_mutex_lock(&P.lock);
        P.running--;
        j->state = J_DONE;
        active_remove(j);
        job_finish(j, &o, part);
        job_unref(j);  /* the pool's */
    }
    P.exited[me] = 1;
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

static void timeout_result(pc_scan_t *j, uint64_t now)
{
    char buf[160];

    snprintf(buf, sizeof(buf), j->state == J_QUEUED
             ? "the scan did not start within its %llu ms deadline (all scan threads busy)"
             : "the scan did not finish within its %llu ms deadline",
             (unsigned long long)(j->deadline - j->submitted));
    j->delivered = 1;
    j->abandoned = 1;
    j->error = strdup(buf);
    j->res.r.status = PC_SCAN_ERROR;
    j->res.r.error = j->error ? j->error : "scan deadline passed";
    j->res.r.elapsed_ms = now - j->submitted;
    j->res.flags = AVSCAN_RES_TIMEOUT;
    count_result(&j->res);
    post(j, deliver_result);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&P.lock);
    while (!P.stop) {
        uint64_t now = now_ms(), next = now + 1000;
        struct timespec ts;
        pc_scan_t *j, *jn;

        for (j = P.active; j; j = jn) {
            jn = j->anext;
            if (j->delivered || j->cancelled)
                continue;
            if (now >= j->deadline) {
                int queued = j->state == J_QUEUED;
                timeout_result(j, now);
                if (queued) {
                    queue_remove(j);
                    j->state = J_DONE;
                    active_remove(j);
                    job_unref(j);  /* the pool's */
                }
                continue;
            }
            if (j->deadline < next)
                next = j->deadline;
            if (j->tick && j->state == J_RUNNING) {
                if (now >= j->next_tick) {
                    post(j, deliver_tick);
                    j->next_tick = now + P.set.tick_interval;
                }
                if (j->next_tick < next)
                    next = j->next_tick;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        {
            uint64_t wait = next > now ? next - now : 1;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
        }
        pthread_cond_timedwait(&P.wd, &P.lock, &ts);
    }
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

/* Joins exited threads and starts missing ones up to target. P.lock held.
 * Returns 0 or -1 (some thread could not start). */
static int threads_adjust(void)
{
    int rc = 0;

    for (int i = 0; i < MAX_THREADS; i++) {
        if (P.live[i] && P.exited[i]) {
            /* It has left its loop: the join is immediate. */
            pthread_mutex_unlock(&P.lock);
            pthread_join(P.threads[i], NULL);
            pthread_mutex_lock(&P.lock);
            P.live[i] = 0;
            P.exited[i] = 0;
        }
    }
    for (int i = 0; i < P.target && i < MAX_THREADS; i++) {
        if (P.live[i])
            continue;
        if (pthread_create(&P.threads[i], NULL, thread_main, (void *)(intptr_t)i) != 0) {
            rc = -1;
            continue;
        }
        P.live[i] = 1;
    }
    return rc;
}

static void settings_apply(const avscan_pool_settings_t *s)
{
    char *td = s->temp_dir ? strdup(s->temp_dir) : NULL;

    P.set = *s;
    free(P.temp_dir);
    P.temp_dir = td;
    P.set.temp_dir = td;
    if (P.set.threads < 1)
        P.set.threads = 1;
    if (P.set.threads > MAX_THREADS)
        P.set.threads = MAX_THREADS;
    if (P.set.tick_interval == 0)
        P.set.tick_interval = 1000;
    P.target = P.set.threads;
}

int avscan_pool_start(const avscan_pool_ops_t *ops, const avscan_pool_settings_t *s,
                      char *err, size_t errlen)
{
    pthread_condattr_t attr;
    int rc;

    /* The watchdog's deadlines are CLOCK_MONOTONIC times; the condition
     * variable must wait on that clock too (the default is the wall
     * clock, against which every deadline has long passed). */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_destroy(&P.wd);
    pthread_cond_init(&P.wd, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_lock(&P.lock);
    P.ops = *ops;
    P.stop = 0;
    stopping = 0;
    settings_apply(s);
    if (threads_adjust() < 0) {
        P.stop = 1;
        pthread_cond_broadcast(&P.work);
        pthread_mutex_unlock(&P.lock);
        avscan_pool_stop();
        snprintf(err, errlen, "cannot start %d scan threads", s->threads);
        return -1;
    }
    rc = pthread_create(&P.watchdog, NULL, watchdog_main, NULL);
    if (rc != 0) {
        P.stop = 1;
        pthread_cond_broadcast(&P.work);
        pthread_mutex_unlock(&P.lock);
        avscan_pool_stop();
        snprintf(err, errlen, "cannot start the scan watchdog: %s", strerror(rc));
        return -1;
    }
    P.started = 1;
    pthread_mutex_unlock(&P.lock);
    return 0;
}

void avscan_pool_configure(const avscan_pool_settings_t *s)
{
    pthread_mutex_lock(&P.lock);
    if (!P.started || P.stop) {
        pthread_mutex_unlock(&P.lock);
        return;
    }
    settings_apply(s);
    pthread_cond_broadcast(&P.work);  /* threads over the target leave */
    if (threads_adjust() < 0)
        P.ops.log(PC_LOG_ERR, "cannot start all %d scan threads", P.target);
    pthread_mutex_unlock(&P.lock);
}

void avscan_pool_stop(void)
{
    pthread_mutex_lock(&P.lock);
    P.stop = 1;
    pthread_cond_broadcast(&P.work);
    pthread_cond_broadcast(&P.wd);
    /* Running scans give up at their next read; queued ones are dropped:
     * nobody is left to hear of them. */
    stopping = 1;
    for (pc_scan_t *j = P.active; j; j = j->anext)
        j->abandoned = 1;
    while (P.qhead) {
        pc_scan_t *j = P.qhead;
        queue_remove(j);
        j->state = J_DONE;
        active_remove(j);
        job_unref(j);
    }
    pthread_mutex_unlock(&P.lock);
    for (int i = 0; i < MAX_THREADS; i++) {
        if (P.live[i]) {
            pthread_join(P.threads[i], NULL);
            P.live[i] = P.exited[i] = 0;
        }
    }
    if (P.started)
        pthread_join(P.watchdog, NULL);
    pthread_mutex_lock(&P.lock);
    P.started = 0;
    /* Loops are gone: posted messages that never ran leave their scans. */
    while (P.all)
        job_free(P.all);
    free(P.temp_dir);
    P.temp_dir = NULL;
    for (int i = 0; i < P.ndescs; i++)
        free(P.descs[i]);
    free(P.descs);
    P.descs = NULL;
    P.ndescs = 0;
    pthread_mutex_unlock(&P.lock);
}

/* ---- submission ---------------------------------------------------------- */

pc_scan_t *avscan_pool_submit(const avscan_req_t *r, const char **err)
{
    void *loop = P.ops.loop_current ? P.ops.loop_current() : NULL;
    pc_scan_t *j;
    uint64_t now;

    if (loop == NULL) {
        *err = "scans are submitted from a loop thread";
        return NULL;
    }
    if (r->cb == NULL) {
        *err = "no callback";
        return NULL;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        goto oom;
    j->fd = -1;
    if (r->fd >= 0) {
        j->fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
        if (j->fd < 0) {
            free(j);
            *err = "cannot duplicate the descriptor";
            return NULL;
        }
    } else if (r->len) {
        j->mem = malloc(r->len);
        if (j->mem == NULL) {
            free(j);
            goto oom;
        }
        memcpy(j->mem, r->mem, r->len);
        j->len = r->len;
    }
    j->immutable = r->fd_immutable;
    j->coding = r->coding;
    j->decode_limit = r->decode_limit;
    if ((r->boundary && (j->boundary = strdup(r->boundary)) == NULL) ||
        (r->meta && r->meta->filename &&
         (j->filename = strdup(r->meta->filename)) == NULL)) {
        pthread_mutex_lock(&P.lock);
        j->refs = 1;
        job_unref(j);
        pthread_mutex_unlock(&P.lock);
        goto oom;
    }
    j->loop = loop;
    j->cb = r->cb;
    j->tick = r->tick;
    j->arg = r->arg;
    /* The deadline runs from now: copying a large buffer is not the
     * scan's time. */
    now = now_ms();
    j->submitted = now;

    pthread_mutex_lock(&P.lock);
    j->all_next = P.all;
    if (P.all)
        P.all->all_prev = j;
    P.all = j;
    j->refs = 1;
    if (!P.started || P.stop) {
        job_unref(j);
        pthread_mutex_unlock(&P.lock);
        *err = "the scanner is stopping";
        return NULL;
    }
    if (P.queued >= P.set.queue_size) {
        P.rejected++;
        job_unref(j);
        pthread_mutex_unlock(&P.lock);
        *err = "the scan queue is full";
        return NULL;
    }
    /* A week is "no deadline" for any caller; it also keeps the sum from
     * overflowing. */
    j->deadline = now + (r->deadline_ms == 0 ? P.set.scan_timeout
                         : r->deadline_ms > 7 * 86400000ull ? 7 * 86400000ull
                                                           : r->deadline_ms);
    j->opts.general = P.set.heuristic_alerts ? CL_SCAN_GENERAL_HEURISTICS : 0;
    j->opts.parse = ~0u;
    j->opts.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX |
                        (P.set.block_encrypted ? CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE |
                                                     CL_SCAN_HEURISTIC_ENCRYPTED_DOC
                                               : 0) |
                        (P.set.block_macros ? CL_SCAN_HEURISTIC_MACROS : 0);
    j->on_limits = P.set.on_limits;
    j->max_parts = P.set.max_parts > 0 ? P.set.max_parts : 1000;
    j->temp_dir = P.temp_dir ? strdup(P.temp_dir) : NULL;
    j->refs = 2;  /* the submitter's and the pool's */
    j->state = J_QUEUED;
    if (P.qtail)
        P.qtail->qnext = j;
    else
        P.qhead = j;
    P.qtail = j;
    P.queued++;
    j->anext = P.active;
    if (P.active)
        P.active->aprev = j;
    P.active = j;
    pthread_cond_signal(&P.work);
    pthread_cond_signal(&P.wd);
    pthread_mutex_unlock(&P.lock);
    return j;
oom:
    *err = "out of memory";
    return NULL;
}

void avscan_pool_cancel(pc_scan_t *j)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&P.lock);
    if (j->cancelled) {
        pthread_mutex_unlock(&P.lock);
        return;
    }
    j->cancelled = 1;
    j->abandoned = 1;
    if (j->state == J_QUEUED) {
        queue_remove(j);
        j->state = J_DONE;
        active_remove(j);
        job_unref(j);  /* the pool's */
    }
    job_unref(j);      /* the submitter's */
    pthread_mutex_unlock(&P.lock);
}

void avscan_pool_stats(avscan_pool_stats_t *st)
{
    pthread_mutex_lock(&P.lock);
    st->threads = P.target;
    st->queued = P.queued;
    st->running = P.running;
    st->scans = P.scans;
    st->clean = P.clean;
    st->infected = P.infected;
    st->errors = P.errors;
    st->timeouts = P.timeouts;
    st->rejected = P.rejected;
    pthread_mutex_unlock(&P.lock);
}

/* ---- the scanner service ------------------------------------------------- */

static pc_scan_t *svc_scan_mem(const void *data, size_t len, const pc_scan_meta_t *meta,
                               uint64_t deadline_ms, pc_scan_cb cb,
                               pc_scan_tick_cb tick, void *arg, const char **err)
{
    avscan_req_t r;

    memset(&r, 0, sizeof(r));
    r.mem = data;
    r.len = len;
    r.fd = -1;
    r.meta = meta;
    r.deadline_ms = deadline_ms;
    r.cb = cb;
    r.tick = tick;
    r.arg = arg;
    return avscan_pool_submit(&r, err);
}

static pc_scan_t *svc_scan_fd(int fd, const pc_scan_meta_t *meta, uint64_t deadline_ms,
                              pc_scan_cb cb, pc_scan_tick_cb tick, void *arg,
                              const char **err)
{
    avscan_req_t r;

    if (fd < 0) {
        *err = "invalid descriptor";
        return NULL;
    }
    memset(&r, 0, sizeof(r));
    r.fd = fd;
    r.meta = meta;
    r.deadline_ms = deadline_ms;
    r.cb = cb;
    r.tick = tick;
    r.arg = arg;
    return avscan_pool_submit(&r, err);
}

static const char *svc_describe(void)
{
    const char *d;

    pthread_mutex_lock(&P.lock);
    d = P.ndescs ? P.descs[P.ndescs - 1] : "ClamAV (no signatures loaded)";
    pthread_mutex_unlock(&P.lock);
    return d;
}

void avscan_scanner_set_description(const char *text)
{
    char **v;
    char *d;

    if (text == NULL)
        return;
    d = strdup(text);
    if (d == NULL)
        return;
    pthread_mutex_lock(&P.lock);
    /* Kept until the pool stops: a caller may still hold an older one. */
    v = realloc(P.descs, (size_t)(P.ndescs + 1) * sizeof(*v));
    if (v == NULL) {
        pthread_mutex_unlock(&P.lock);
        free(d);
        return;
    }
    P.descs = v;
    P.descs[P.ndescs++] = d;
    pthread_mutex_unlock(&P.lock);
}

const pc_scanner_t avscan_scanner = {
    .size = sizeof(pc_scanner_t),
    .scan_mem = svc_scan_mem,
    .scan_fd = svc_scan_fd,
    .cancel = avscan_pool_cancel,
    .describe = svc_describe,
};
