/* db.h - urlcat's category database: the builder, the immutable matcher and its lookups. */
#ifndef URLCAT_DB_H
#define URLCAT_DB_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

/*
 * A database maps list entries to categories. It is built once (off the
 * traffic loops: conf_finish on the main thread, or the host's work pool),
 * then frozen and read by every worker thread without locks.
 *
 *   domains      a hash of whole names; a lookup tries the host and each
 *                parent at a label boundary ("a.b.c", "b.c", "c"), so
 *                "amex.com" matches "www.amex.com" but not "aamex.com".
 *                Hashes run from the right, so one pass over the host gives
 *                the hash of every suffix.
 *   urls         a hash of "host/path" keys; a lookup tries every prefix of
 *                the request that ends at a boundary ('/', an escaped
 *                "%2F", '?', '&', the end), hashed in one pass, skipping
 *                prefixes longer than the longest key.
 *   addresses    single IPs live in the domain hash (their canonical text);
 *                CIDRs and ranges in a netaddr set per category.
 *   expressions  PCRE2 (JIT) per category, combined into one alternation
 *                when the patterns allow it.
 *
 * A key's value is a category set: sets are interned, so a million
 * entries in one category share one set.
 */

/* Categories per database, exception lists included. */
#define UCDB_MAX_CATEGORIES 512
#define UCDB_WORDS (UCDB_MAX_CATEGORIES / 64)

/* A set of categories (a bitmap). */
typedef struct ucset {
    uint64_t w[UCDB_WORDS];
} ucset_t;

static inline void ucset_add(ucset_t *s, int cat)
{
    s->w[cat >> 6] |= 1ull << (cat & 63);
}

static inline int ucset_has(const ucset_t *s, int cat)
{
    return (s->w[cat >> 6] >> (cat & 63)) & 1;
}

/* First category in a & b, or -1. */
int ucset_first_common(const ucset_t *a, const ucset_t *b);
int ucset_empty(const ucset_t *s);

typedef struct ucdb ucdb_t;
typedef struct ucdb_builder ucdb_builder_t;

/* Entry counts, for the load log line. */
typedef struct ucdb_stats {
    size_t domains;      /* distinct domain keys (single IPs included) */
    size_t urls;         /* distinct URL keys */
    size_t expressions;  /* patterns */
    size_t ranges;       /* CIDR and range entries */
    size_t dups;         /* entries that were already there */
    size_t bytes;        /* memory held by the database */
    int categories;
} ucdb_stats_t;

/* A new, empty builder; NULL when out of memory. */
ucdb_builder_t *ucdb_builder_new(int caseless);
void ucdb_builder_free(ucdb_builder_t *b);

/* The id of category name (lowercase), created when new, or -1 when there
 * are too many. name is copied. */
int ucdb_category(ucdb_builder_t *b, const char *name);
/* Finds a category of the builder or the database; -1 when unknown. */
int ucdb_builder_find(const ucdb_builder_t *b, const char *name);
/* Makes alias another name for the category cat (UT1's symlinked
 * directories). Returns 0 or -1. */
int ucdb_alias(ucdb_builder_t *b, const char *alias, int cat);
/* Sets a category's title and description (copied; NULL leaves it). */
void ucdb_describe(ucdb_builder_t *b, int cat, const char *title,
                   const char *desc);

/* Adds a normalised host (urlnorm_host output) to cat. Returns 0 or -1
 * (out of memory). */
int ucdb_add_domain(ucdb_builder_t *b, const char *host, size_t len, int cat);
/* Adds a URL key (ucdb_url_key output) to cat. Returns 0 or -1. */
int ucdb_add_url(ucdb_builder_t *b, const char *key, size_t len, int cat);
/* Adds a CIDR or range ("10.0.0.0/8", "10.0.0.1-10.0.0.9") to cat.
 * Returns 0, or -1 with a message. */
int ucdb_add_range(ucdb_builder_t *b, const char *text, int cat, char *err,
                   size_t errlen);
/* Compiles and adds a regular expression to cat. Returns 0, or -1 with the
 * PCRE2 message and offset. */
int ucdb_add_expression(ucdb_builder_t *b, const char *re, int cat, char *err,
                        size_t errlen);
/* e2guardian's blanket entries: every host ("**") or every address host
 * ("*ip") is in cat. */
void ucdb_add_blanket(ucdb_builder_t *b, int cat, int ip_only);

/* Freezes the builder into a database (the builder is consumed either
 * way). Returns NULL with a message on failure. */
ucdb_t *ucdb_build(ucdb_builder_t *b, char *err, size_t errlen);
void ucdb_free(ucdb_t *db);

int ucdb_ncategories(const ucdb_t *db);
int ucdb_find(const ucdb_t *db, const char *name);
const char *ucdb_name(const ucdb_t *db, int cat);
const char *ucdb_title(const ucdb_t *db, int cat);  /* or NULL */
const char *ucdb_desc(const ucdb_t *db, int cat);   /* or NULL */
void ucdb_get_stats(const ucdb_t *db, ucdb_stats_t *st);

/* What a lookup matches. host is normalised (urlnorm_host); url_key is
 * ucdb_url_key() of host and path, or NULL (CONNECT, SNI: no path); url
 * is the whole normalised URL the expressions see. */
typedef struct ucdb_query {
    const char *hostname;
    int host_is_ip;
    netaddr_t ip;             /* when host_is_ip */
    const char *url_key;
    size_t url_key_len;
    const char *url;
    size_t url_len;
} ucdb_query_t;

/* Fills out with the categories q matches. Expressions run only for the
 * categories in want (those that can change the verdict; NULL: all) that nothing
 * else matched yet. Returns the number of expression matches that hit
 * PCRE2's match limit (they count as matches). Thread-safe. */
int ucdb_lookup(const ucdb_t *db, const ucdb_query_t *q, const ucset_t *want,
                ucset_t *out);

/* Builds the URL key of host (normalised) and path (urlnorm_path output):
 * "www", "www2"... removed from the front of the host (when a dot remains
 * after it), host and path lowercased, joined. Returns the length, or -1
 * when it does not fit in outlen. */
int ucdb_url_key(const char *host, const char *path, char *out, size_t outlen);

#endif
