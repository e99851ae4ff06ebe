/* dynban.c - dynamic bans: immutable snapshots with hash indexes, swapped atomically for the workers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banlist.h"
#include "urlnorm.h"

/*
 * See bl_dyn_t in banlist.h for why snapshots. A snapshot holds its bans
 * sorted by kind and target (the listing order, and binary search for
 * changes) plus two open-addressing indexes: client bans keyed by
 * (prefix length, network), site bans keyed by domain. A client lookup
 * probes once per distinct prefix length in use, longest first, so the
 * most specific ban answers (its reason is the one shown); a site lookup
 * probes the host and each parent domain.
 */

typedef struct islot {
    uint32_t hash;
    uint32_t idx;         /* index into v + 1; 0 is empty */
} islot_t;

struct bl_snap {
    atomic_int refs;
    size_t n;
    bl_ban_t **v;
    islot_t *cli, *site;
    size_t cli_mask, site_mask;
    uint8_t plens[129];   /* prefix lengths in use, longest first */
    int nplens;
    uint64_t site_labels[2];  /* bit n: a site ban with n labels (n < 128) */
    int64_t next_expiry;
};

/* ---- bans ---------------------------------------------------------------- */

const char *bl_kind_name(enum bl_kind kind)
{
    return kind == BL_CLIENT ? "client" : "site";
}

bl_ban_t *bl_ban_ref(bl_ban_t *b)
{
    atomic_fetch_add(&b->refs, 1);
    return b;
}

void bl_ban_unref(bl_ban_t *b)
{
    if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    free(b->target);
    free(b->reason);
    free(b->source);
    free(b);
}

/* The 16-byte key of an address: IPv4 as ::ffff:a.b.c.d. */
static void key16(const netaddr_t *a, uint8_t k[16])
{
    if (a->family == AF_INET) {
        memset(k, 0, 10);
        k[10] = k[11] = 0xff;
        memcpy(k + 12, a->a, 4);
    } else {
        memcpy(k, a->a, 16);
    }
}

static void mask16(uint8_t k[16], int prefix)
{
    for (int i = 0; i < 16; i++) {
        int bits = prefix - i * 8;
        if (bits >= 8)
            continue;
        k[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
    }
}

static int parse_prefix(const char *s, int max)
{
    int v = 0;

    if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    return v;
}

/* "10.0.0.0/24", "10.0.0.5", "2001:db8::/32" into b. Returns 0 or -1. */
static int client_target(bl_ban_t *b, const char *text, char *err, size_t errlen)
{
    char addr[NETADDR_STRLEN + 8], canon[NETADDR_STRLEN + 8];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    int len, max;
    uint8_t k[16];

    if (alen >= sizeof(addr))
        goto bad;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    if (alen > 2 && addr[0] == '[' && addr[alen - 1] == ']') {
        memmove(addr, addr + 1, alen - 2);
        addr[alen - 2] = '\0';
    }
    if (netaddr_parse(addr, &b->net) < 0)
        goto bad;
    max = b->net.family == AF_INET ? 32 : 128;
    len = slash ? parse_prefix(slash + 1, max) : max;
    if (len < 0) {
        snprintf(err, errlen, "invalid prefix length in '%.100s'", text);
        return -1;
    }
    b->prefix = b->net.family == AF_INET ? 96 + len : len;
    /* Host bits cleared, as squid does with "10.1.2.3/8". */
    key16(&b->net, k);
    mask16(k, b->prefix);
    if (b->net.family == AF_INET)
        memcpy(b->net.a, k + 12, 4);
    else
        memcpy(b->net.a, k, 16);
    netaddr_format(&b->net, canon, sizeof(canon));
    if (len != max) {
        size_t cl = strlen(canon);
        snprintf(canon + cl, sizeof(canon) - cl, "/%d", len);
    }
    b->target = strdup(canon);
    if (b->target == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "invalid client address '%.100s' (an IP address or "
             "CIDR, e.g. 10.0.0.5 or 10.0.0.0/24)", text);
    return -1;
}

bl_ban_t *bl_ban_parse_target(const char *text, char *err, size_t errlen)
{
    bl_ban_t *b = calloc(1, sizeof(*b));
    char host[URLNORM_HOST_MAX + 1];
    int kind = -1;
    netaddr_t probe;

    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&b->refs, 1);
    if (strncmp(text, "client:", 7) == 0) {
        kind = BL_CLIENT;
        text += 7;
    } else if (strncmp(text, "site:", 5) == 0) {
        kind = BL_SITE;
        text += 5;
    }
    if (*text == '\0') {
        snprintf(err, errlen, "empty target");
        goto fail;
    }
    if (kind == -1 && (bl_is_cidr(text) || netaddr_parse(text, &probe) == 0 ||
                       (text[0] == '[' && strchr(text, ':') != NULL)))
        kind = BL_CLIENT;
    if (kind == BL_CLIENT) {
        b->kind = BL_CLIENT;
        if (client_target(b, text, err, errlen) < 0)
            goto fail;
        return b;
    }
    if (bl_site_normalise(text, host, sizeof(host), err, errlen) < 0)
        goto fail;
    if (kind == -1 && urlnorm_host_is_ip(host)) {
        /* "127.1" is an address too, once normalised. */
        b->kind = BL_CLIENT;
        if (client_target(b, host, err, errlen) < 0)
            goto fail;
        return b;
    }
    b->kind = BL_SITE;
    b->target = strdup(host);
    if (b->target == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return b;
fail:
    bl_ban_unref(b);
    return NULL;
}

/* A copy of s with control bytes made spaces, at most max bytes. */
static char *clean_copy(const char *s, size_t max)
{
    size_t n = strlen(s);
    char *d;

    if (n > max)
        n = max;
    d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
    d[n] = '\0';
    return d;
}

int bl_ban_set_text(bl_ban_t *b, const char *reason, const char *source)
{
    char *r = clean_copy(reason ? reason : "", 1024);
    char *s = clean_copy(source ? source : "-", 128);

    if (r == NULL || s == NULL) {
        free(r);
        free(s);
        return -1;
    }
    /* The source is one word in the state file. */
    for (char *p = s; *p; p++)
        if (*p == ' ')
            *p = '_';
    free(b->reason);
    free(b->source);
    b->reason = r;
    b->source = s;
    return 0;
}

/* ---- snapshots ------------------------------------------------------------ */

static int in_force(const bl_ban_t *b, int64_t now_ms)
{
    return b->until_ms == 0 || b->until_ms > now_ms;
}

static uint64_t cli_hash(const uint8_t k[16], int prefix)
{
    uint8_t buf[17];

    memcpy(buf, k, 16);
    buf[16] = (uint8_t)prefix;
    return bl_hash(buf, sizeof(buf));
}

static int cmp_ban(const bl_ban_t *a, enum bl_kind kind, const char *target)
{
    if (a->kind != kind)
        return a->kind < kind ? -1 : 1;
    return strcmp(a->target, target);
}

static void snap_free(bl_snap_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        bl_ban_unref(s->v[i]);
    free(s->v);
    free(s->cli);
    free(s->site);
    free(s);
}

void bl_snap_ref(bl_snap_t *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void bl_snap_unref(bl_snap_t *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        snap_free(s);
}

static int count_labels(const char *name)
{
    int n = 1;

    for (; *name; name++)
        n += *name == '.';
    return n;
}

static size_t table_size(size_t n)
{
    size_t size = 16;

    while (size < n * 2 + 2)
        size *= 2;
    return size;
}

/* Builds a snapshot owning v[0..n) (sorted; one reference each, given to
 * it). Returns NULL when out of memory (then v is still the caller's). */
static bl_snap_t *snap_build(bl_ban_t **v, size_t n)
{
    bl_snap_t *s = calloc(1, sizeof(*s));
    size_t ncli = 0, nsite = 0;
    int used[129] = {0};

    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    for (size_t i = 0; i < n; i++) {
        if (v[i]->kind == BL_CLIENT)
            ncli++;
        else
            nsite++;
    }
    s->cli_mask = table_size(ncli) - 1;
    s->site_mask = table_size(nsite) - 1;
    s->cli = calloc(s->cli_mask + 1, sizeof(islot_t));
    s->site = calloc(s->site_mask + 1, sizeof(islot_t));
    if (s->cli == NULL || s->site == NULL) {
        free(s->cli);
        free(s->site);
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const bl_ban_t *b = v[i];
        uint64_t h;
        size_t j;
        if (b->kind == BL_CLIENT) {
            uint8_t k[16];
            key16(&b->net, k);
            h = cli_hash(k, b->prefix);
            for (j = h & s->cli_mask; s->cli[j].idx; j = (j + 1) & s->cli_mask)
                ;
            s->cli[j].hash = (uint32_t)h;
            s->cli[j].idx = (uint32_t)i + 1;
            used[b->prefix] = 1;
        } else {
            int labels = count_labels(b->target);
            h = bl_hash(b->target, strlen(b->target));
            for (j = h & s->site_mask; s->site[j].idx; j = (j + 1) & s->site_mask)
                ;
            s->site[j].hash = (uint32_t)h;
            s->site[j].idx = (uint32_t)i + 1;
            if (labels < 128)
                s->site_labels[labels / 64] |= 1ull << (labels % 64);
        }
        if (b->until_ms && (s->next_expiry == 0 || b->until_ms < s->next_expiry))
            s->next_expiry = b->until_ms;
    }
    for (int p = 128; p >= 0; p--)
        if (used[p])
            s->plens[s->nplens++] = (uint8_t)p;
    s->v = v;
    s->n = n;
    return s;
}

size_t bl_snap_count(const bl_snap_t *s)
{
    return s->n;
}

const bl_ban_t *bl_snap_at(const bl_snap_t *s, size_t i)
{
    return i < s->n ? s->v[i] : NULL;
}

int64_t bl_snap_next_expiry(const bl_snap_t *s)
{
    return s->next_expiry;
}

const bl_ban_t *bl_snap_client(const bl_snap_t *s, const netaddr_t *addr,
                               int64_t now_ms)
{
    uint8_t k[16];

    if (s == NULL || s->nplens == 0)
        return NULL;
    for (int i = 0; i < s->nplens; i++) {
        int prefix = s->plens[i];
        uint64_t h;
        key16(addr, k);
        mask16(k, prefix);
        h = cli_hash(k, prefix);
        for (size_t j = h & s->cli_mask; s->cli[j].idx; j = (j + 1) & s->cli_mask) {
            const bl_ban_t *b;
            uint8_t bk[16];
            if (s->cli[j].hash != (uint32_t)h)
                continue;
            b = s->v[s->cli[j].idx - 1];
            key16(&b->net, bk);
            if (b->prefix == prefix && memcmp(bk, k, 16) == 0 && in_force(b, now_ms))
                return b;
        }
    }
    return NULL;
}

static const bl_ban_t *site_probe(const bl_snap_t *s, const char *name, size_t len)
{
    uint64_t h = bl_hash(name, len);

    for (size_t j = h & s->site_mask; s->site[j].idx; j = (j + 1) & s->site_mask) {
        const bl_ban_t *b;
        if (s->site[j].hash != (uint32_t)h)
            continue;
        b = s->v[s->site[j].idx - 1];
        if (strlen(b->target) == len && memcmp(b->target, name, len) == 0)
            return b;
    }
    return NULL;
}

const bl_ban_t *bl_snap_site(const bl_snap_t *s, const char *host, int64_t now_ms)
{
    size_t len;
    int labels;

    if (s == NULL || s->n == 0 || host == NULL)
        return NULL;
    len = strlen(host);
    labels = count_labels(host);
    if (bl_host_is_ip(host, len)) {
        const bl_ban_t *b = site_probe(s, host, len);
        return b && in_force(b, now_ms) ? b : NULL;
    }
    /* Only the suffixes with as many labels as some ban (see sites.c). */
    for (const char *p = host; p && labels > 0; labels--) {
        if (labels < 128 && (s->site_labels[labels / 64] >> (labels % 64)) & 1) {
            const bl_ban_t *b = site_probe(s, p, len - (size_t)(p - host));
            if (b && in_force(b, now_ms))
                return b;
        }
        p = strchr(p, '.');
        if (p)
            p++;
    }
    return NULL;
}

/* Index of the first ban >= (kind, target) in s->v. */
static size_t lower_bound(const bl_snap_t *s, enum bl_kind kind, const char *target)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_ban(s->v[mid], kind, target) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const bl_ban_t *bl_snap_find(const bl_snap_t *s, enum bl_kind kind,
                             const char *target)
{
    size_t i = lower_bound(s, kind, target);

    return i < s->n && cmp_ban(s->v[i], kind, target) == 0 ? s->v[i] : NULL;
}

/* ---- the table ------------------------------------------------------------ */

int bl_dyn_init(bl_dyn_t *d, size_t max)
{
    memset(d, 0, sizeof(*d));
    if (pthread_mutex_init(&d->lock, NULL) != 0)
        return -1;
    d->max = max;
    d->cur = snap_build(NULL, 0);
    if (d->cur == NULL) {
        pthread_mutex_destroy(&d->lock);
        return -1;
    }
    return 0;
}

void bl_dyn_destroy(bl_dyn_t *d)
{
    bl_snap_unref(d->cur);
    d->cur = NULL;
    pthread_mutex_destroy(&d->lock);
}

bl_snap_t *bl_dyn_get(bl_dyn_t *d)
{
    bl_snap_t *s;

    pthread_mutex_lock(&d->lock);
    s = d->cur;
    bl_snap_ref(s);
    pthread_mutex_unlock(&d->lock);
    return s;
}

/* Publishes v[0..n) (references given) as the new snapshot. Returns 0, or
 * -1 when out of memory (the references are dropped then). */
static int publish(bl_dyn_t *d, bl_ban_t **v, size_t n)
{
    bl_snap_t *s = snap_build(v, n), *old;

    if (s == NULL) {
        for (size_t i = 0; i < n; i++)
            bl_ban_unref(v[i]);
        free(v);
        return -1;
    }
    pthread_mutex_lock(&d->lock);
    old = d->cur;
    d->cur = s;
    pthread_mutex_unlock(&d->lock);
    bl_snap_unref(old);
    return 0;
}

/* A copy of the current bans, one reference each, with room for one more. */
static bl_ban_t **copy_bans(const bl_snap_t *s)
{
    bl_ban_t **v = malloc((s->n + 1) * sizeof(*v));

    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        v[i] = bl_ban_ref(s->v[i]);
    return v;
}

int bl_dyn_add(bl_dyn_t *d, bl_ban_t *ban, bl_ban_t **old, char *err,
               size_t errlen)
{
    bl_snap_t *cur = d->cur;   /* only this thread changes it */
    size_t i = lower_bound(cur, ban->kind, ban->target);
    int replace = i < cur->n && cmp_ban(cur->v[i], ban->kind, ban->target) == 0;
    bl_ban_t **v;
    size_t n = cur->n;

    *old = NULL;
    if (!replace && n >= d->max) {
        snprintf(err, errlen, "too many bans (max_bans %zu)", d->max);
        return -1;
    }
    v = copy_bans(cur);
    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (replace) {
        *old = v[i];   /* the copy's reference goes to the caller */
        v[i] = bl_ban_ref(ban);
    } else {
        memmove(v + i + 1, v + i, (n - i) * sizeof(*v));
        v[i] = bl_ban_ref(ban);
        n++;
    }
    if (publish(d, v, n) < 0) {
        /* publish dropped the references in v; the replaced one is ours. */
        bl_ban_unref(*old);
        *old = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int bl_dyn_remove(bl_dyn_t *d, enum bl_kind kind, const char *target,
                  bl_ban_t **old)
{
    bl_snap_t *cur = d->cur;
    size_t i = lower_bound(cur, kind, target);
    bl_ban_t **v;
    size_t n = cur->n;

    *old = NULL;
    if (i >= n || cmp_ban(cur->v[i], kind, target) != 0)
        return -1;
    v = copy_bans(cur);
    if (v == NULL)
        return -1;
    *old = v[i];
    memmove(v + i, v + i + 1, (n - i - 1) * sizeof(*v));
    n--;
    if (publish(d, v, n) < 0) {
        bl_ban_unref(*old);
        *old = NULL;
        return -1;
    }
    return 0;
}

static int cmp_ptr(const void *a, const void *b)
{
    const bl_ban_t *x = *(bl_ban_t *const *)a, *y = *(bl_ban_t *const *)b;

    return cmp_ban(x, y->kind, y->target);
}

int bl_dyn_replace_all(bl_dyn_t *d, bl_ban_t *const *bans, size_t n)
{
    bl_ban_t **v = malloc((n + 1) * sizeof(*v));
    size_t keep = 0;

    if (v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = bl_ban_ref(bans[i]);
    qsort(v, n, sizeof(*v), cmp_ptr);
    /* The same target twice: the later line of the file wins. */
    for (size_t i = 0; i < n; i++) {
        if (keep > 0 && cmp_ptr(&v[keep - 1], &v[i]) == 0) {
            bl_ban_unref(v[keep - 1]);
            v[keep - 1] = v[i];
            continue;
        }
        v[keep++] = v[i];
    }
    if (keep > d->max) {
        for (size_t i = d->max; i < keep; i++)
            bl_ban_unref(v[i]);
        keep = d->max;
    }
    return publish(d, v, keep);
}

long bl_dyn_expire(bl_dyn_t *d, int64_t now_ms, bl_ban_t ***out)
{
    bl_snap_t *cur = d->cur;
    bl_ban_t **v, **gone;
    size_t n = 0, ngone = 0;

    *out = NULL;
    for (size_t i = 0; i < cur->n; i++)
        if (!in_force(cur->v[i], now_ms))
            ngone++;
    if (ngone == 0)
        return 0;
    v = malloc((cur->n + 1) * sizeof(*v));
    gone = malloc(ngone * sizeof(*gone));
    if (v == NULL || gone == NULL) {
        free(v);
        free(gone);
        return -1;
    }
    ngone = 0;
    for (size_t i = 0; i < cur->n; i++) {
        if (in_force(cur->v[i], now_ms))
            v[n++] = bl_ban_ref(cur->v[i]);
        else
            gone[ngone++] = bl_ban_ref(cur->v[i]);
    }
    if (publish(d, v, n) < 0) {
        for (size_t i = 0; i < ngone; i++)
            bl_ban_unref(gone[i]);
        free(gone);
        return -1;
    }
    *out = gone;
    return (long)ngone;
}
