/* autoban.c - auto_ban rules: their syntax, and counting each client's events in a sliding window. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banlist.h"

/*
 *   auto_ban av.infected  1      1h                      "infected download"
 *   auto_ban txn.blocked  20/5m  1h  from=urlcat
 *   auto_ban share.alert  1      forever
 *
 * EVENT is a topic of the SDK's events; COUNT/WINDOW fires when one client
 * caused COUNT events within WINDOW (fail2ban's maxretry/findtime); a
 * lone COUNT of 1 needs no window. DURATION is the ban's length or
 * "forever". from=PLUGIN counts only events of that plugin (for
 * txn.blocked: the plugin that blocked). The rest is the ban's reason.
 *
 * A counter keeps, per client, the times of its last COUNT events in a
 * ring: the rule fires when the oldest of them is within WINDOW of the
 * newest. Memory is bounded: COUNT <= 10,000 and at most 65,536 clients
 * per rule, the stalest dropped first.
 */

static int topic_ok(const char *t)
{
    if (*t == '\0' || strlen(t) > 64)
        return 0;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '.' ||
              *t == '_' || *t == '-'))
            return 0;
    return 1;
}

static int parse_count(const char *s, long *out)
{
    long v = 0;

    if (*s == '\0' || *s == '0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > BL_RULE_MAX_COUNT)
            return -1;
    }
    *out = v;
    return 0;
}

/* argv[0..argc) joined by spaces; malloc()ed, NULL when out of memory. */
static char *join(int argc, const char *const *argv)
{
    size_t len = 1, o = 0;
    char *s;

    for (int j = 0; j < argc; j++)
        len += strlen(argv[j]) + 1;
    s = malloc(len);
    if (s == NULL)
        return NULL;
    for (int j = 0; j < argc; j++) {
        size_t n = strlen(argv[j]);
        if (j)
            s[o++] = ' ';
        memcpy(s + o, argv[j], n);
        o += n;
    }
    s[o] = '\0';
    return s;
}

int bl_rule_parse(bl_rule_t *r, int argc, const char *const *argv,
                  int (*parse_duration)(const char *, uint64_t *, char *, size_t),
                  char *err, size_t errlen)
{
    char num[32], msg[256];
    const char *slash;
    int i;

    memset(r, 0, sizeof(*r));
    if (argc < 3) {
        snprintf(err, errlen, "usage: auto_ban EVENT COUNT[/WINDOW] DURATION|forever "
                 "[from=PLUGIN] [REASON...]");
        return -1;
    }
    if (!topic_ok(argv[0])) {
        snprintf(err, errlen, "invalid event name '%.64s' (e.g. av.infected, txn.blocked)",
                 argv[0]);
        return -1;
    }
    slash = strchr(argv[1], '/');
    snprintf(num, sizeof(num), "%.*s",
             (int)(slash ? (size_t)(slash - argv[1]) : strlen(argv[1])), argv[1]);
    if (parse_count(num, &r->count) < 0) {
        snprintf(err, errlen, "invalid count '%.64s' (1..%d, optionally /WINDOW: 20/5m)",
                 argv[1], BL_RULE_MAX_COUNT);
        return -1;
    }
    if (slash) {
        if (parse_duration(slash + 1, &r->window_ms, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "window: %s", msg);
            return -1;
        }
        if (r->window_ms == 0) {
            snprintf(err, errlen, "window '%s' must be longer than 0", slash + 1);
            return -1;
        }
    } else if (r->count > 1) {
        snprintf(err, errlen, "count %ld needs a window: %ld/5m means %ld events "
                 "within 5 minutes", r->count, r->count, r->count);
        return -1;
    }
    if (strcmp(argv[2], "forever") == 0) {
        r->duration_ms = 0;
    } else {
        if (parse_duration(argv[2], &r->duration_ms, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "%s (or forever)", msg);
            return -1;
        }
        if (r->duration_ms < 1000) {
            snprintf(err, errlen, "ban duration '%s' is shorter than 1s", argv[2]);
            return -1;
        }
    }
    i = 3;
    if (i < argc && strncmp(argv[i], "from=", 5) == 0) {
        if (argv[i][5] == '\0') {
            snprintf(err, errlen, "from= needs a plugin name");
            return -1;
        }
        r->from = strdup(argv[i] + 5);
        if (r->from == NULL)
            goto oom;
        i++;
    }
    if (i < argc && (r->reason = join(argc - i, argv + i)) == NULL)
        goto oom;
    if ((r->text = join(argc, argv)) == NULL)
        goto oom;
    r->topic = strdup(argv[0]);
    if (r->topic == NULL)
        goto oom;
    return 0;
oom:
    bl_rule_clear(r);
    snprintf(err, errlen, "out of memory");
    return -1;
}

void bl_rule_clear(bl_rule_t *r)
{
    free(r->topic);
    free(r->from);
    free(r->reason);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

/* ---- counting ------------------------------------------------------------- */

typedef struct centry {
    struct centry *next;
    uint8_t key[16];
    int64_t last;         /* newest event */
    long head, n;         /* ring of the last count event times */
    int64_t times[];
} centry_t;

struct bl_counter {
    long count;
    int64_t window;
    char *text;
    centry_t **buckets;
    size_t nbuckets;      /* a power of two */
    size_t n;
};

static void key_of(const netaddr_t *a, uint8_t k[16])
{
    memset(k, 0, 16);
    if (a->family == AF_INET) {
        k[10] = k[11] = 0xff;
        memcpy(k + 12, a->a, 4);
    } else {
        memcpy(k, a->a, 16);
    }
}

bl_counter_t *bl_counter_new(const bl_rule_t *r)
{
    bl_counter_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->count = r->count;
    c->window = (int64_t)r->window_ms;
    c->nbuckets = 256;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    c->text = strdup(r->text ? r->text : "");
    if (c->buckets == NULL || c->text == NULL) {
        bl_counter_free(c);
        return NULL;
    }
    return c;
}

const char *bl_counter_rule_text(const bl_counter_t *c)
{
    return c->text;
}

size_t bl_counter_clients(const bl_counter_t *c)
{
    return c->n;
}

static centry_t **slot_of(bl_counter_t *c, const uint8_t k[16])
{
    size_t b = (size_t)bl_hash(k, 16) & (c->nbuckets - 1);
    centry_t **pp = &c->buckets[b];

    while (*pp && memcmp((*pp)->key, k, 16) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void grow(bl_counter_t *c)
{
    size_t nb = c->nbuckets * 2;
    centry_t **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return;  /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++) {
        while (c->buckets[i]) {
            centry_t *e = c->buckets[i];
            size_t j = (size_t)bl_hash(e->key, 16) & (nb - 1);
            c->buckets[i] = e->next;
            e->next = b[j];
            b[j] = e;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* Drops the client whose newest event is the oldest of all. */
static void evict_stalest(bl_counter_t *c)
{
    centry_t **victim = NULL;

    for (size_t i = 0; i < c->nbuckets; i++)
        for (centry_t **pp = &c->buckets[i]; *pp; pp = &(*pp)->next)
            if (victim == NULL || (*pp)->last < (*victim)->last)
                victim = pp;
    if (victim) {
        centry_t *e = *victim;
        *victim = e->next;
        free(e);
        c->n--;
    }
}

int bl_counter_hit(bl_counter_t *c, const netaddr_t *client, int64_t now_ms)
{
    uint8_t k[16];
    centry_t **pp, *e;
    int64_t oldest;

    if (c->count <= 1)
        return 1;
    key_of(client, k);
    pp = slot_of(c, k);
    e = *pp;
    if (e == NULL) {
        if (c->n >= BL_COUNTER_MAX_CLIENTS) {
            bl_counter_sweep(c, now_ms);
            if (c->n >= BL_COUNTER_MAX_CLIENTS)
                evict_stalest(c);
            pp = slot_of(c, k);
        }
        e = calloc(1, sizeof(*e) + (size_t)c->count * sizeof(int64_t));
        if (e == NULL)
            return -1;
        memcpy(e->key, k, 16);
        *pp = e;
        c->n++;
        if (c->n > c->nbuckets * 2)
            grow(c);
    }
    e->times[e->head] = now_ms;
    e->head = (e->head + 1) % c->count;
    if (e->n < c->count)
        e->n++;
    e->last = now_ms;
    if (e->n < c->count)
        return 0;
    oldest = e->times[e->head];  /* the ring is full: head is the oldest */
    if (now_ms - oldest > c->window)
        return 0;
    bl_counter_forget(c, client);
    return 1;
}

void bl_counter_sweep(bl_counter_t *c, int64_t now_ms)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        centry_t **pp = &c->buckets[i];
        while (*pp) {
            if (now_ms - (*pp)->last > c->window) {
                centry_t *e = *pp;
                *pp = e->next;
                free(e);
                c->n--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

void bl_counter_forget(bl_counter_t *c, const netaddr_t *client)
{
    uint8_t k[16];
    centry_t **pp, *e;

    key_of(client, k);
    pp = slot_of(c, k);
    e = *pp;
    if (e) {
        *pp = e->next;
        free(e);
        c->n--;
    }
}

void bl_counter_free(bl_counter_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; c->buckets && i < c->nbuckets; i++) {
        while (c->buckets[i]) {
            centry_t *e = c->buckets[i];
            c->buckets[i] = e->next;
            free(e);
        }
    }
    free(c->buckets);
    free(c->text);
    free(c);
}
