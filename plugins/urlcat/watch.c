/* watch.c - urlcat's list watcher: polls list files from the main loop, rebuilds off the loop, swaps atomically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "lists.h"
#include "urlcat.h"

/*
 * Every poll_interval a timer on the main loop queues one job on the
 * host's work pool (never two at once). The job stat()s every file and
 * directory the lists in force were read from. A change is acted on once
 * it has settled (the same at two polls in a row), so a list being copied
 * in is not read half-written; then the job loads all lists again. Back on
 * the main loop the new lists replace the old ones under the write lock
 * (lookups in flight finish on the old ones first), and the old ones are
 * freed. A load that fails is logged with its FILE:LINE and the lists in
 * force stay; the same broken state is not retried until it changes.
 */

typedef struct job {
    pc_plugin_t *self;
    uc_conf_t *conf;       /* a reference of its own */
    const uc_lists_t *cur; /* the lists in force when queued */
    uc_lists_t *fresh;     /* the new lists, or NULL */
    int failed;
    char err[2048];
} job_t;

static struct {
    pc_plugin_t *self;
    uv_timer_t *timer;
    uc_conf_t *conf;       /* the configuration in force (a reference) */
} W;

static void job_warn(void *arg, const char *msg)
{
    host->log(arg, PC_LOG_WARN, "%s (line skipped: list_errors warn)", msg);
}

/* On the work pool: only this job touches the conf's watcher fields while
 * it runs (busy), and only the main loop swaps conf->cur, after it. */
static void job_work(void *arg)
{
    job_t *j = arg;
    uc_conf_t *c = j->conf;
    uint64_t sig = uc_lists_stat_sig(j->cur);

    if (sig == j->cur->sig) {
        c->pending_sig = 0;
        return;
    }
    if (sig == c->failed_sig)
        return;
    if (sig != c->pending_sig) {
        c->pending_sig = sig;  /* wait one more poll for it to settle */
        return;
    }
    c->pending_sig = 0;
    j->fresh = uc_lists_load(c, job_warn, j->self, j->err, sizeof(j->err));
    if (j->fresh == NULL) {
        j->failed = 1;
        c->failed_sig = sig;
    }
}

static void job_done(void *arg)
{
    job_t *j = arg;
    uc_conf_t *c = j->conf;

    if (j->fresh) {
        uc_lists_t *old;
        char summary[512];

        pthread_rwlock_wrlock(&c->lock);
        old = c->cur;
        c->cur = j->fresh;
        pthread_rwlock_unlock(&c->lock);
        uc_lists_free(old);
        c->failed_sig = 0;
        uc_lists_summary(j->fresh, summary, sizeof(summary));
        host->log(j->self, PC_LOG_NOTICE, "list files changed; %s", summary);
        host->metric_add(j->self, "reloads", 1);
    } else if (j->failed) {
        host->log(j->self, PC_LOG_ERR,
                  "list files changed but cannot be loaded: %s; keeping the lists "
                  "in force", j->err);
        host->metric_add(j->self, "reload_failures", 1);
    }
    c->busy = 0;
    uc_conf_unref(c);
    free(j);
}

static void on_poll(uv_timer_t *t)
{
    uc_conf_t *c = W.conf;
    job_t *j;

    (void)t;
    if (c == NULL || c->busy)
        return;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return;
    j->self = W.self;
    j->conf = uc_conf_ref(c);
    j->cur = c->cur;
    c->busy = 1;
    if (host->work_queue(host->loop_main(), job_work, job_done, j) < 0) {
        c->busy = 0;
        uc_conf_unref(c);
        free(j);
        host->log(W.self, PC_LOG_WARN, "cannot queue the list check; trying again "
                  "at the next poll");
    }
}

static void arm(void)
{
    if (W.timer == NULL)
        return;
    uv_timer_stop(W.timer);
    if (W.conf && W.conf->poll_ms > 0)
        uv_timer_start(W.timer, on_poll, W.conf->poll_ms, W.conf->poll_ms);
}

int uc_watch_start(pc_plugin_t *self, uc_conf_t *conf, char *err, size_t errlen)
{
    uv_loop_t *loop = host->loop_uv(host->loop_main());

    W.self = self;
    W.timer = calloc(1, sizeof(*W.timer));
    if (loop == NULL || W.timer == NULL || uv_timer_init(loop, W.timer) < 0) {
        free(W.timer);
        W.timer = NULL;
        snprintf(err, errlen, "cannot create the list watch timer");
        return -1;
    }
    /* The timer alone must not keep the daemon from stopping. */
    uv_unref((uv_handle_t *)W.timer);
    W.conf = uc_conf_ref(conf);
    arm();
    return 0;
}

void uc_watch_set(uc_conf_t *conf)
{
    uc_conf_t *old = W.conf;

    W.conf = uc_conf_ref(conf);
    uc_conf_unref(old);
    arm();
}

static void on_close(uv_handle_t *h)
{
    free(h);
}

void uc_watch_stop(void)
{
    if (W.timer) {
        uv_timer_stop(W.timer);
        uv_close((uv_handle_t *)W.timer, on_close);
        W.timer = NULL;
    }
    uc_conf_unref(W.conf);
    W.conf = NULL;
}

uc_conf_t *uc_watch_conf(void)
{
    return W.conf;
}
