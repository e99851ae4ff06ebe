/* geoip_watch.c - the geoip plugin's database change watcher: poll, reopen, swap. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "geoip_watch.h"

#define host pc_plugin_host_

struct geoip_watch {
    pc_plugin_t *self;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* CLOCK_MONOTONIC */
    int stop;                   /* under lock */
    int changed;                /* set_conf happened; under lock */
    geoip_slot_t *slots[2];     /* references; under lock */
    uint64_t interval_ms;       /* under lock */
};

/* Looks at one file; swaps in a new version that opens. */
static void check_slot(geoip_watch_t *w, geoip_slot_t *slot)
{
    geoip_ident_t id;
    geoip_db_t *cur, *db;
    char err[512], desc[160];

    if (geoip_ident_of(slot->path, &id) < 0) {
        int e = errno;
        if (!slot->missing) {
            cur = geoip_slot_get(slot);
            host->log(w->self, PC_LOG_ERR, "%s: cannot open %s: %s; keeping the "
                      "loaded one (%s)", slot->directive, slot->path, strerror(e),
                      geoip_db_describe(cur, desc, sizeof(desc)));
            geoip_db_unref(cur);
            host->metric_add(w->self, "reload_errors", 1);
            slot->missing = 1;
        }
        return;
    }
    slot->missing = 0;
    cur = geoip_slot_get(slot);
    if (geoip_ident_equal(&id, geoip_db_ident(cur)) ||
        (slot->has_failed && geoip_ident_equal(&id, &slot->failed))) {
        geoip_db_unref(cur);
        return;
    }
    if (geoip_db_open(slot->path, &db, err, sizeof(err)) < 0) {
        host->log(w->self, PC_LOG_ERR, "%s: %s; keeping the loaded one (%s)",
                  slot->directive, err, geoip_db_describe(cur, desc, sizeof(desc)));
        host->metric_add(w->self, "reload_errors", 1);
        slot->failed = id;
        slot->has_failed = 1;
        geoip_db_unref(cur);
        return;
    }
    slot->has_failed = 0;
    geoip_db_unref(cur);
    host->log(w->self, PC_LOG_NOTICE, "%s %s changed: reloaded (%s)", slot->directive,
              slot->path, geoip_db_describe(db, desc, sizeof(desc)));
    geoip_slot_set(slot, db);
    host->metric_add(w->self, "reloads", 1);
}

static void deadline_after(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *watch_main(void *arg)
{
    geoip_watch_t *w = arg;
    struct timespec next;

    pthread_mutex_lock(&w->lock);
    deadline_after(&next, w->interval_ms);
    while (!w->stop) {
        geoip_slot_t *slots[2];
        int rc = 0;

        if (w->changed) {
            w->changed = 0;
            deadline_after(&next, w->interval_ms);
        }
        if (w->interval_ms == 0)
            pthread_cond_wait(&w->cond, &w->lock);
        else
            rc = pthread_cond_timedwait(&w->cond, &w->lock, &next);
        if (w->stop || w->changed || rc != ETIMEDOUT)
            continue;
        for (int i = 0; i < 2; i++)
            slots[i] = geoip_slot_ref(w->slots[i]);
        pthread_mutex_unlock(&w->lock);
        for (int i = 0; i < 2; i++) {
            if (slots[i])
                check_slot(w, slots[i]);
            geoip_slot_unref(slots[i]);
        }
        pthread_mutex_lock(&w->lock);
        deadline_after(&next, w->interval_ms);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Takes references to conf's slots; under w->lock (or before the thread). */
static void take_conf(geoip_watch_t *w, geoip_conf_t *conf)
{
    for (int i = 0; i < 2; i++)
        geoip_slot_unref(w->slots[i]);
    w->slots[0] = geoip_slot_ref(conf->country_slot);
    w->slots[1] = geoip_slot_ref(conf->asn_slot);
    w->interval_ms = conf->poll_interval_ms;
}

geoip_watch_t *geoip_watch_start(pc_plugin_t *self, geoip_conf_t *conf, char *err,
                                 size_t errlen)
{
    geoip_watch_t *w = calloc(1, sizeof(*w));
    pthread_condattr_t ca;
    sigset_t all, old;
    int rc, have_lock = 0, have_cond = 0;

    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->self = self;
    if (pthread_mutex_init(&w->lock, NULL) != 0)
        goto fail;
    have_lock = 1;
    if (pthread_condattr_init(&ca) != 0)
        goto fail;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        goto fail;
    have_cond = 1;
    take_conf(w, conf);
    /* Signals belong to the daemon's main loop, not to this thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, watch_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        goto fail;
    }
    return w;
fail:
    snprintf(err, errlen, "cannot start the database watcher: %s", strerror(errno));
    for (int i = 0; i < 2; i++)
        geoip_slot_unref(w->slots[i]);
    if (have_cond)
        pthread_cond_destroy(&w->cond);
    if (have_lock)
        pthread_mutex_destroy(&w->lock);
    free(w);
    return NULL;
}

void geoip_watch_set_conf(geoip_watch_t *w, geoip_conf_t *conf)
{
    pthread_mutex_lock(&w->lock);
    take_conf(w, conf);
    w->changed = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void geoip_watch_stop(geoip_watch_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    for (int i = 0; i < 2; i++)
        geoip_slot_unref(w->slots[i]);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
