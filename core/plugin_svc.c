/* plugin_svc.c - services, events, the main-loop queue and plugin metrics. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "plugin_host.h"

/* ---- services (main thread: registered and acquired from init) ---------- */

typedef struct service {
    struct service *next;
    char *name;
    uint32_t version;
    const void *iface;
    pc_plugin_t *provider;
    atomic_uint users;
} service_t;

static service_t *services;
static pthread_mutex_t services_lock = PTHREAD_MUTEX_INITIALIZER;

int plugin_service_register(pc_plugin_t *p, const char *name, uint32_t version,
                            const void *iface)
{
    service_t *s;
    int declared = 0;

    if (name == NULL || iface == NULL)
        return -1;
    for (const pc_service_ref_t *r = p->desc->provides; r && r->name; r++)
        declared |= strcmp(r->name, name) == 0;
    if (!declared) {
        log_error(0, "%s: registers service '%s' without declaring it in "
                  "'provides'", p->name, name);
        return -1;
    }
    pthread_mutex_lock(&services_lock);
    for (s = services; s; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            if (s->provider != p) {
                pthread_mutex_unlock(&services_lock);
                log_error(0, "%s: service '%s' is already provided by %s", p->name,
                          name, s->provider->name);
                return -1;
            }
            /* The same provider again (e.g. a new engine): replace. */
            s->version = version;
            s->iface = iface;
            pthread_mutex_unlock(&services_lock);
            return 0;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->name = strdup(name)) == NULL) {
        free(s);
        pthread_mutex_unlock(&services_lock);
        return -1;
    }
    s->version = version;
    s->iface = iface;
    s->provider = p;
    s->next = services;
    services = s;
    pthread_mutex_unlock(&services_lock);
    log_info(0, "%s: provides service %s version %u", p->name, name, version);
    return 0;
}

const void *plugin_service_acquire(pc_plugin_t *p, const char *name,
                                   uint32_t min_version)
{
    const void *iface = NULL;

    pthread_mutex_lock(&services_lock);
    for (service_t *s = services; s; s = s->next) {
        if (strcmp(s->name, name) == 0 && s->version >= min_version) {
            atomic_fetch_add(&s->users, 1);
            iface = s->iface;
            break;
        }
    }
    pthread_mutex_unlock(&services_lock);
    if (iface == NULL)
        log_error(0, "%s: no service '%s' of version %u or later", p->name, name,
                  min_version);
    return iface;
}

void plugin_service_release(pc_plugin_t *p, const char *name)
{
    (void)p;
    pthread_mutex_lock(&services_lock);
    for (service_t *s = services; s; s = s->next)
        if (strcmp(s->name, name) == 0 && atomic_load(&s->users) > 0)
            atomic_fetch_sub(&s->users, 1);
    pthread_mutex_unlock(&services_lock);
}

/* ---- the main-loop queue ------------------------------------------------ */

typedef struct mainq_item {
    struct mainq_item *next;
    void (*fn)(void *arg);
    void *arg;
} mainq_item_t;

static pthread_mutex_t mainq_lock = PTHREAD_MUTEX_INITIALIZER;
static mainq_item_t *mainq_head, *mainq_tail;
static uv_async_t mainq_async;
static int mainq_open;

static void on_mainq(uv_async_t *a)
{
    mainq_item_t *it;

    (void)a;
    pthread_mutex_lock(&mainq_lock);
    it = mainq_head;
    mainq_head = mainq_tail = NULL;
    pthread_mutex_unlock(&mainq_lock);
    while (it) {
        mainq_item_t *next = it->next;
        it->fn(it->arg);
        free(it);
        it = next;
    }
}

int mainq_post(void (*fn)(void *), void *arg)
{
    mainq_item_t *it = malloc(sizeof(*it));

    if (it == NULL)
        return -1;
    it->next = NULL;
    it->fn = fn;
    it->arg = arg;
    pthread_mutex_lock(&mainq_lock);
    if (!mainq_open) {
        pthread_mutex_unlock(&mainq_lock);
        free(it);
        return -1;
    }
    if (mainq_tail)
        mainq_tail->next = it;
    else
        mainq_head = it;
    mainq_tail = it;
    uv_async_send(&mainq_async);
    pthread_mutex_unlock(&mainq_lock);
    return 0;
}

/* ---- events ------------------------------------------------------------- */

typedef struct subscription {
    struct subscription *next;
    char *topic;
    pc_plugin_t *p;
    pc_event_fn fn;
    void *arg;
} subscription_t;

static subscription_t *subs;   /* written only from init (main thread) */

int plugin_event_subscribe(pc_plugin_t *p, const char *topic, pc_event_fn fn,
                           void *arg)
{
    subscription_t *s;

    if (topic == NULL || fn == NULL)
        return -1;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->topic = strdup(topic)) == NULL) {
        free(s);
        return -1;
    }
    s->p = p;
    s->fn = fn;
    s->arg = arg;
    /* Appended: subscribers hear events in subscription order. */
    {
        subscription_t **pp = &subs;
        while (*pp)
            pp = &(*pp)->next;
        *pp = s;
    }
    return 0;
}

typedef struct event_copy {
    pc_event_t ev;
    char *topic, *client, *subject, *detail, *plugin;
} event_copy_t;

static void event_copy_free(event_copy_t *e)
{
    free(e->topic);
    free(e->client);
    free(e->subject);
    free(e->detail);
    free(e->plugin);
    free(e);
}

static void deliver(void *arg)
{
    event_copy_t *e = arg;

    for (subscription_t *s = subs; s; s = s->next)
        if (strcmp(s->topic, e->ev.topic) == 0)
            s->fn(s->p, &e->ev, s->arg);
    event_copy_free(e);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *failed = 1;
    return d;
}

void plugin_event_publish(pc_plugin_t *p, const pc_event_t *ev)
{
    event_copy_t *e;
    int failed = 0;

    if (ev == NULL || ev->topic == NULL)
        return;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    e->topic = dup_or_null(ev->topic, &failed);
    e->client = dup_or_null(ev->client, &failed);
    e->subject = dup_or_null(ev->subject, &failed);
    e->detail = dup_or_null(ev->detail, &failed);
    /* A plugin is named by the host; the host's own events may name the
     * plugin they are about (txn.blocked: the blocker). */
    e->plugin = dup_or_null(p ? p->name : ev->plugin ? ev->plugin : "core", &failed);
    if (failed) {
        event_copy_free(e);
        return;
    }
    e->ev.topic = e->topic;
    e->ev.client = e->client;
    e->ev.subject = e->subject;
    e->ev.detail = e->detail;
    e->ev.plugin = e->plugin;
    e->ev.value = ev->value;
    if (mainq_post(deliver, e) < 0)
        event_copy_free(e);
}

int plugin_events_start(void *uv_main_loop)
{
    if (uv_async_init(uv_main_loop, &mainq_async, on_mainq) < 0)
        return -1;
    pthread_mutex_lock(&mainq_lock);
    mainq_open = 1;
    pthread_mutex_unlock(&mainq_lock);
    return 0;
}

void plugin_events_stop(void)
{
    mainq_item_t *it;

    pthread_mutex_lock(&mainq_lock);
    if (!mainq_open) {
        pthread_mutex_unlock(&mainq_lock);
        return;
    }
    mainq_open = 0;
    uv_close((uv_handle_t *)&mainq_async, NULL);
    it = mainq_head;
    mainq_head = mainq_tail = NULL;
    pthread_mutex_unlock(&mainq_lock);
    /* Run what is queued: events are delivered, posted functions run. */
    while (it) {
        mainq_item_t *next = it->next;
        it->fn(it->arg);
        free(it);
        it = next;
    }
}

void plugin_events_free(void)
{
    while (subs) {
        subscription_t *s = subs;
        subs = s->next;
        free(s->topic);
        free(s);
    }
    while (services) {
        service_t *s = services;
        services = s->next;
        free(s->name);
        free(s);
    }
}

/* ---- metrics ------------------------------------------------------------ */

typedef struct metric {
    struct metric *next;
    char *name;          /* "<plugin>_<name>" */
    atomic_llong value;
} metric_t;

static metric_t *metrics;
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;

int plugin_metric(const char *plugin, const char *name, int64_t v, int set)
{
    char full[256];
    metric_t *m;

    snprintf(full, sizeof(full), "%s_%s", plugin, name);
    pthread_mutex_lock(&metrics_lock);
    for (m = metrics; m; m = m->next)
        if (strcmp(m->name, full) == 0)
            break;
    if (m == NULL) {
        m = calloc(1, sizeof(*m));
        if (m == NULL || (m->name = strdup(full)) == NULL) {
            free(m);
            pthread_mutex_unlock(&metrics_lock);
            return -1;
        }
        m->next = metrics;
        metrics = m;
    }
    pthread_mutex_unlock(&metrics_lock);
    if (set)
        atomic_store(&m->value, v);
    else
        atomic_fetch_add(&m->value, v);
    return 0;
}

void plugin_metrics_each(void (*fn)(const char *name, int64_t value, void *arg),
                         void *arg)
{
    pthread_mutex_lock(&metrics_lock);
    for (metric_t *m = metrics; m; m = m->next)
        fn(m->name, atomic_load(&m->value), arg);
    pthread_mutex_unlock(&metrics_lock);
}

void plugin_metrics_free(void)
{
    pthread_mutex_lock(&metrics_lock);
    while (metrics) {
        metric_t *m = metrics;
        metrics = m->next;
        free(m->name);
        free(m);
    }
    pthread_mutex_unlock(&metrics_lock);
}
