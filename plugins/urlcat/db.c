/* db.c - urlcat's category database: hash tables of domains and URL prefixes, address sets, PCRE2 expressions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "exprset.h"

/*
 * Memory layout (1,000,000 domains cost about 40 MB): a key is its bytes
 * in one arena, NUL-terminated; a table slot is 8 bytes holding the key's
 * 32-bit hash and its entry number, so a probe compares hashes without
 * touching the arena; an entry is the arena offset and a category set id.
 * Tables stay at most half full, so a probe sequence is short and always
 * ends at an empty slot.
 */

typedef struct strtab {
    uint64_t *slots;      /* hash32 << 32 | (entry + 1); 0 is empty */
    uint32_t mask;
    uint32_t n;
    uint32_t cap;         /* entries allocated */
    uint32_t *off;        /* entry -> arena offset */
    uint32_t *set;        /* entry -> category set id */
    char *arena;
    size_t alen, acap;
    size_t maxlen;        /* longest key */
} strtab_t;

typedef struct alias {
    char *name;
    int cat;
} alias_t;

struct ucdb {
    int caseless;
    int ncat;
    char *names[UCDB_MAX_CATEGORIES];
    char *titles[UCDB_MAX_CATEGORIES];
    char *descs[UCDB_MAX_CATEGORIES];
    alias_t *aliases;
    int naliases;

    strtab_t domains;
    strtab_t urls;
    strtab_t url_hosts;       /* the hosts of the URL keys: a gate */

    /* Interned category sets; set 0 is unused. */
    ucset_t *sets;
    uint32_t nsets, capsets;
    uint32_t *set_index;      /* open addressing: set id or 0 */
    uint32_t set_mask;
    uint32_t single[UCDB_MAX_CATEGORIES];  /* singleton set of a category */
    uint32_t memo_old, memo_new;          /* last union: old + memo_cat */
    int memo_cat;

    netaddr_set_t *ranges[UCDB_MAX_CATEGORIES];
    int range_cats[UCDB_MAX_CATEGORIES];
    int nrange_cats;
    size_t nranges;

    exprset_t *exprs;         /* or NULL */

    ucset_t blanket_all, blanket_ip;
    int has_blanket;
    size_t dups;
};

struct ucdb_builder {
    struct ucdb db;
};

/* ---- category sets --------------------------------------------------------- */

int ucset_first_common(const ucset_t *a, const ucset_t *b)
{
    for (int i = 0; i < UCDB_WORDS; i++) {
        uint64_t x = a->w[i] & b->w[i];
        if (x)
            return i * 64 + __builtin_ctzll(x);
    }
    return -1;
}

int ucset_empty(const ucset_t *s)
{
    for (int i = 0; i < UCDB_WORDS; i++)
        if (s->w[i])
            return 0;
    return 1;
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint32_t set_hash(const ucset_t *s)
{
    uint64_t h = 0;

    for (int i = 0; i < UCDB_WORDS; i++)
        h = mix64(h ^ s->w[i]) + (uint64_t)i;
    return (uint32_t)h;
}

static int set_index_grow(struct ucdb *db)
{
    uint32_t cap = db->set_mask ? (db->set_mask + 1) * 2 : 64;
    uint32_t *idx = calloc(cap, sizeof(*idx));

    if (idx == NULL)
        return -1;
    for (uint32_t id = 1; id < db->nsets; id++) {
        uint32_t i = set_hash(&db->sets[id]) & (cap - 1);
        while (idx[i])
            i = (i + 1) & (cap - 1);
        idx[i] = id;
    }
    free(db->set_index);
    db->set_index = idx;
    db->set_mask = cap - 1;
    return 0;
}

/* The id of set s, added when new; 0 when out of memory. */
static uint32_t set_intern(struct ucdb *db, const ucset_t *s)
{
    uint32_t h = set_hash(s), i;

    if (db->set_index == NULL && set_index_grow(db) < 0)
        return 0;
    for (i = h & db->set_mask; db->set_index[i]; i = (i + 1) & db->set_mask)
        if (memcmp(&db->sets[db->set_index[i]], s, sizeof(*s)) == 0)
            return db->set_index[i];
    if (db->nsets + 1 >= db->capsets) {
        uint32_t cap = db->capsets ? db->capsets * 2 : 16;
        ucset_t *ns = realloc(db->sets, cap * sizeof(*ns));
        if (ns == NULL)
            return 0;
        db->sets = ns;
        db->capsets = cap;
    }
    if (db->nsets == 0)
        db->nsets = 1;  /* id 0 means "none" */
    db->sets[db->nsets] = *s;
    db->set_index[i] = db->nsets++;
    if (db->nsets * 2 > db->set_mask + 1 && set_index_grow(db) < 0)
        return 0;
    return db->nsets - 1;
}

static uint32_t set_single(struct ucdb *db, int cat)
{
    if (db->single[cat] == 0) {
        ucset_t s;
        memset(&s, 0, sizeof(s));
        ucset_add(&s, cat);
        db->single[cat] = set_intern(db, &s);
    }
    return db->single[cat];
}

/* The id of set old plus cat. */
static uint32_t set_plus(struct ucdb *db, uint32_t old, int cat)
{
    ucset_t s;
    uint32_t id;

    if (ucset_has(&db->sets[old], cat))
        return old;
    if (old == db->memo_old && cat == db->memo_cat)
        return db->memo_new;
    s = db->sets[old];
    ucset_add(&s, cat);
    id = set_intern(db, &s);
    if (id) {
        db->memo_old = old;
        db->memo_cat = cat;
        db->memo_new = id;
    }
    return id;
}

/* ---- string tables ------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* The slot hash of a 64-bit FNV-1a state. */
static uint32_t fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32)) | 1u;  /* never 0 */
}

/* Domains hash right to left, so the hash of each suffix falls out of one
 * pass over a host. */
static uint32_t hash_rev(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;

    while (n > 0)
        h = (h ^ (unsigned char)s[--n]) * FNV_PRIME;
    return fold(h);
}

static uint32_t hash_fwd(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return fold(h);
}

static int strtab_grow(strtab_t *t)
{
    uint32_t cap = t->mask ? (t->mask + 1) * 2 : 1024;
    uint64_t *slots = calloc(cap, sizeof(*slots));

    if (slots == NULL)
        return -1;
    for (uint32_t i = 0; t->mask && i <= t->mask; i++) {
        uint64_t s = t->slots[i];
        uint32_t j;
        if (s == 0)
            continue;
        for (j = (uint32_t)(s >> 32) & (cap - 1); slots[j]; j = (j + 1) & (cap - 1))
            ;
        slots[j] = s;
    }
    free(t->slots);
    t->slots = slots;
    t->mask = cap - 1;
    return 0;
}

/* The entry of key, or -1. */
static int64_t strtab_find(const strtab_t *t, const char *key, size_t len,
                           uint32_t h)
{
    if (t->slots == NULL || len > t->maxlen)
        return -1;
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        uint64_t s = t->slots[i];
        if (s == 0)
            return -1;
        if ((uint32_t)(s >> 32) == h) {
            uint32_t e = (uint32_t)s - 1;
            const char *k = t->arena + t->off[e];
            if (memcmp(k, key, len) == 0 && k[len] == '\0')
                return e;
        }
    }
}

/* Adds key to cat in t. Returns 0 or -1. */
static int strtab_add(struct ucdb *db, strtab_t *t, const char *key, size_t len,
                      uint32_t h, int cat)
{
    int64_t e;
    uint32_t i, set;

    if (t->slots == NULL && strtab_grow(t) < 0)
        return -1;
    if (len > t->maxlen)
        t->maxlen = len;
    e = strtab_find(t, key, len, h);
    if (e >= 0) {
        set = set_plus(db, t->set[e], cat);
        if (set == 0)
            return -1;
        if (set == t->set[e])
            db->dups++;
        t->set[e] = set;
        return 0;
    }
    set = set_single(db, cat);
    if (set == 0)
        return -1;
    if (t->alen + len + 1 > t->acap) {
        size_t cap = t->acap ? t->acap * 2 : 65536;
        char *a;
        while (cap < t->alen + len + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            return -1;
        a = realloc(t->arena, cap);
        if (a == NULL)
            return -1;
        t->arena = a;
        t->acap = cap;
    }
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 1024;
        uint32_t *off = realloc(t->off, cap * sizeof(*off));
        uint32_t *st;
        if (off == NULL)
            return -1;
        t->off = off;
        st = realloc(t->set, cap * sizeof(*st));
        if (st == NULL)
            return -1;
        t->set = st;
        t->cap = cap;
    }
    memcpy(t->arena + t->alen, key, len);
    t->arena[t->alen + len] = '\0';
    t->off[t->n] = (uint32_t)t->alen;
    t->set[t->n] = set;
    t->alen += len + 1;
    for (i = h & t->mask; t->slots[i]; i = (i + 1) & t->mask)
        ;
    t->slots[i] = ((uint64_t)h << 32) | (t->n + 1);
    t->n++;
    if ((uint64_t)t->n * 2 > (uint64_t)t->mask + 1 && strtab_grow(t) < 0)
        return -1;
    return 0;
}

/* Gives back the slack of the growing arrays once the table is complete. */
static void strtab_shrink(strtab_t *t)
{
    if (t->n == 0)
        return;
    char *a = realloc(t->arena, t->alen);
    uint32_t *off = realloc(t->off, t->n * sizeof(*off));
    uint32_t *set;

    if (a) {
        t->arena = a;
        t->acap = t->alen;
    }
    if (off)
        t->off = off;
    set = realloc(t->set, t->n * sizeof(*set));
    if (set)
        t->set = set;
    t->cap = t->n;
}

static size_t strtab_bytes(const strtab_t *t)
{
    return (t->slots ? ((size_t)t->mask + 1) * sizeof(uint64_t) : 0) +
           (size_t)t->cap * 2 * sizeof(uint32_t) + t->acap;
}

static void strtab_free(strtab_t *t)
{
    free(t->slots);
    free(t->off);
    free(t->set);
    free(t->arena);
}

/* ---- building ------------------------------------------------------------- */

ucdb_builder_t *ucdb_builder_new(int caseless)
{
    ucdb_builder_t *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->db.caseless = caseless;
    b->db.memo_cat = -1;
    return b;
}

void ucdb_builder_free(ucdb_builder_t *b)
{
    if (b)
        ucdb_free(&b->db);
}

static int find_name(const struct ucdb *db, const char *name)
{
    for (int i = 0; i < db->ncat; i++)
        if (strcmp(db->names[i], name) == 0)
            return i;
    for (int i = 0; i < db->naliases; i++)
        if (strcmp(db->aliases[i].name, name) == 0)
            return db->aliases[i].cat;
    return -1;
}

int ucdb_builder_find(const ucdb_builder_t *b, const char *name)
{
    return find_name(&b->db, name);
}

int ucdb_category(ucdb_builder_t *b, const char *name)
{
    struct ucdb *db = &b->db;
    int c = find_name(db, name);

    if (c >= 0)
        return c;
    if (db->ncat >= UCDB_MAX_CATEGORIES)
        return -1;
    db->names[db->ncat] = strdup(name);
    if (db->names[db->ncat] == NULL)
        return -1;
    return db->ncat++;
}

int ucdb_alias(ucdb_builder_t *b, const char *alias, int cat)
{
    struct ucdb *db = &b->db;
    alias_t *a;

    if (find_name(db, alias) >= 0)
        return 0;
    a = realloc(db->aliases, (size_t)(db->naliases + 1) * sizeof(*a));
    if (a == NULL)
        return -1;
    db->aliases = a;
    a[db->naliases].name = strdup(alias);
    if (a[db->naliases].name == NULL)
        return -1;
    a[db->naliases++].cat = cat;
    return 0;
}

void ucdb_describe(ucdb_builder_t *b, int cat, const char *title,
                   const char *desc)
{
    struct ucdb *db = &b->db;

    if (title) {
        free(db->titles[cat]);
        db->titles[cat] = strdup(title);
    }
    if (desc) {
        free(db->descs[cat]);
        db->descs[cat] = strdup(desc);
    }
}

int ucdb_add_domain(ucdb_builder_t *b, const char *host, size_t len, int cat)
{
    return strtab_add(&b->db, &b->db.domains, host, len, hash_rev(host, len), cat);
}

int ucdb_add_url(ucdb_builder_t *b, const char *key, size_t len, int cat)
{
    const char *slash = memchr(key, '/', len);
    size_t hl = slash ? (size_t)(slash - key) : len, dups = b->db.dups;

    if (strtab_add(&b->db, &b->db.url_hosts, key, hl, hash_fwd(key, hl), cat) < 0)
        return -1;
    b->db.dups = dups;  /* many URLs share a host: no duplicate entries */
    return strtab_add(&b->db, &b->db.urls, key, len, hash_fwd(key, len), cat);
}

int ucdb_add_range(ucdb_builder_t *b, const char *text, int cat, char *err,
                   size_t errlen)
{
    struct ucdb *db = &b->db;

    if (db->ranges[cat] == NULL) {
        db->ranges[cat] = netaddr_set_new();
        if (db->ranges[cat] == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        db->range_cats[db->nrange_cats++] = cat;
    }
    if (netaddr_set_add_text(db->ranges[cat], text, err, errlen) < 0)
        return -1;
    db->nranges++;
    return 0;
}

int ucdb_add_expression(ucdb_builder_t *b, const char *re, int cat, char *err,
                        size_t errlen)
{
    struct ucdb *db = &b->db;

    if (db->exprs == NULL && (db->exprs = exprset_new(db->caseless)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return exprset_add(db->exprs, re, cat, err, errlen);
}

void ucdb_add_blanket(ucdb_builder_t *b, int cat, int ip_only)
{
    ucset_add(ip_only ? &b->db.blanket_ip : &b->db.blanket_all, cat);
    b->db.has_blanket = 1;
}

ucdb_t *ucdb_build(ucdb_builder_t *b, char *err, size_t errlen)
{
    struct ucdb *db = &b->db;

    for (int i = 0; i < db->nrange_cats; i++)
        if (netaddr_set_finish(db->ranges[db->range_cats[i]]) < 0)
            goto oom;
    if (db->exprs && exprset_build(db->exprs) < 0)
        goto oom;
    strtab_shrink(&db->domains);
    strtab_shrink(&db->urls);
    strtab_shrink(&db->url_hosts);
    free(db->set_index);
    db->set_index = NULL;
    return (ucdb_t *)b;
oom:
    snprintf(err, errlen, "out of memory building the lists");
    ucdb_builder_free(b);
    return NULL;
}

void ucdb_free(ucdb_t *db)
{
    if (db == NULL)
        return;
    for (int i = 0; i < db->ncat; i++) {
        free(db->names[i]);
        free(db->titles[i]);
        free(db->descs[i]);
        netaddr_set_free(db->ranges[i]);
    }
    for (int i = 0; i < db->naliases; i++)
        free(db->aliases[i].name);
    free(db->aliases);
    strtab_free(&db->domains);
    strtab_free(&db->urls);
    strtab_free(&db->url_hosts);
    free(db->sets);
    free(db->set_index);
    exprset_free(db->exprs);
    free(db);
}

/* ---- reading ------------------------------------------------------------- */

int ucdb_ncategories(const ucdb_t *db)
{
    return db->ncat;
}

int ucdb_find(const ucdb_t *db, const char *name)
{
    return find_name(db, name);
}

const char *ucdb_name(const ucdb_t *db, int cat)
{
    return cat >= 0 && cat < db->ncat ? db->names[cat] : "?";
}

const char *ucdb_title(const ucdb_t *db, int cat)
{
    return cat >= 0 && cat < db->ncat ? db->titles[cat] : NULL;
}

const char *ucdb_desc(const ucdb_t *db, int cat)
{
    return cat >= 0 && cat < db->ncat ? db->descs[cat] : NULL;
}

void ucdb_get_stats(const ucdb_t *db, ucdb_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->domains = db->domains.n;
    st->urls = db->urls.n;
    st->ranges = db->nranges;
    st->dups = db->dups;
    st->categories = db->ncat;
    st->bytes = sizeof(*db) + strtab_bytes(&db->domains) + strtab_bytes(&db->urls) +
                strtab_bytes(&db->url_hosts) +
                (size_t)db->capsets * sizeof(ucset_t) + db->nranges * 40;
    st->bytes += exprset_bytes(db->exprs);
    st->expressions = exprset_count(db->exprs);
}

/* ---- lookups ------------------------------------------------------------- */

static void set_or(ucset_t *out, const ucset_t *s)
{
    for (int i = 0; i < UCDB_WORDS; i++)
        out->w[i] |= s->w[i];
}

static void lookup_domain(const ucdb_t *db, const ucdb_query_t *q, ucset_t *out)
{
    const strtab_t *t = &db->domains;
    const char *h = q->hostname;
    size_t n = strlen(h);
    uint64_t st = FNV_OFFSET;

    if (t->n == 0)
        return;
    if (q->host_is_ip) {
        /* An address is one key: its "parents" are not names. */
        int64_t e = strtab_find(t, h, n, hash_rev(h, n));
        if (e >= 0)
            set_or(out, &db->sets[t->set[e]]);
        return;
    }
    /* Right to left: at each label start, st is the hash of the suffix
     * from there. */
    for (size_t i = n; i > 0; i--) {
        st = (st ^ (unsigned char)h[i - 1]) * FNV_PRIME;
        if (i - 1 == 0 || h[i - 2] == '.') {
            size_t len = n - (i - 1);
            int64_t e;
            if (len > t->maxlen)
                break;
            e = strtab_find(t, h + i - 1, len, fold(st));
            if (e >= 0)
                set_or(out, &db->sets[t->set[e]]);
        }
    }
}

static void url_probe(const strtab_t *t, const ucdb_t *db, const char *k,
                      size_t len, uint64_t st, ucset_t *out)
{
    int64_t e = strtab_find(t, k, len, fold(st));

    if (e >= 0)
        set_or(out, &db->sets[t->set[e]]);
}

static void lookup_url(const ucdb_t *db, const ucdb_query_t *q, ucset_t *out)
{
    const strtab_t *t = &db->urls;
    const char *k = q->url_key;
    size_t n = q->url_key_len, i;
    uint64_t st = FNV_OFFSET;
    int in_query = 0, seen_slash = 0;

    if (t->n == 0 || k == NULL)
        return;
    /* Most requests are for hosts no URL entry names: one probe in the
     * small table of URL hosts settles that. */
    {
        const char *slash = memchr(k, '/', n);
        size_t hl = slash ? (size_t)(slash - k) : n;
        if (strtab_find(&db->url_hosts, k, hl, hash_fwd(k, hl)) < 0)
            return;
    }
    /* Every prefix that ends at a boundary: before and after each '/' of
     * the path, before the '?' and each '&' of the query, and the whole
     * key. An entry "host/a/b" thus matches "/a/b", "/a/b/c" and "/a/b?x",
     * not "/a/bc"; "host/a/" matches everything under "/a/". One pass
     * hashes them all; prefixes longer than the longest key are skipped. */
    for (i = 0; i < n && i <= t->maxlen; i++) {
        char c = k[i];
        if (!in_query && c == '/') {
            if (seen_slash)
                url_probe(t, db, k, i, st, out);
            seen_slash = 1;
            st = (st ^ (unsigned char)c) * FNV_PRIME;
            url_probe(t, db, k, i + 1, st, out);
            continue;
        }
        if (!in_query && c == '%' && i + 2 < n && k[i + 1] == '2' && k[i + 2] == 'f' &&
            seen_slash) {
            /* An escaped slash: servers that decode it (nginx does) see a
             * segment boundary here, so the prefix before it counts. */
            url_probe(t, db, k, i, st, out);
        } else if (!in_query && c == '?') {
            url_probe(t, db, k, i, st, out);
            in_query = 1;
        } else if (in_query && c == '&') {
            url_probe(t, db, k, i, st, out);
        }
        st = (st ^ (unsigned char)c) * FNV_PRIME;
    }
    if (i == n && (n == 0 || k[n - 1] != '/'))
        url_probe(t, db, k, n, st, out);
}

int ucdb_lookup(const ucdb_t *db, const ucdb_query_t *q, const ucset_t *want,
                ucset_t *out)
{
    memset(out, 0, sizeof(*out));
    lookup_domain(db, q, out);
    if (q->host_is_ip) {
        for (int i = 0; i < db->nrange_cats; i++) {
            int c = db->range_cats[i];
            if (!ucset_has(out, c) && netaddr_set_contains(db->ranges[c], &q->ip))
                ucset_add(out, c);
        }
        if (db->has_blanket)
            set_or(out, &db->blanket_ip);
    }
    if (db->has_blanket)
        set_or(out, &db->blanket_all);
    lookup_url(db, q, out);
    if (db->exprs && q->url != NULL)
        return exprset_match(db->exprs, q->url, q->url_len, want, out);
    return 0;
}

int ucdb_url_key(const char *host, const char *path, char *out, size_t outlen)
{
    size_t hl, pl, o = 0;

    /* squidGuard's rule: "www.", "www2."... name the same site. */
    if (strncmp(host, "www", 3) == 0) {
        const char *p = host + 3;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p == '.' && strchr(p + 1, '.') != NULL)
            host = p + 1;
    }
    hl = strlen(host);
    pl = strlen(path);
    if (hl + pl + 1 > outlen)
        return -1;
    memcpy(out, host, hl);
    o = hl;
    for (size_t i = 0; i < pl; i++) {
        char c = path[i];
        out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    out[o] = '\0';
    return (int)o;
}
