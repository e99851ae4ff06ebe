/* banlist.h - the banlist plugin's internal interfaces: lists, matchers, dynamic bans, rules. */
#ifndef BL_BANLIST_H
#define BL_BANLIST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

/*
 * The plugin is split by job (one file each):
 *
 *   lists.c    reading list files: comments, blank lines, FILE:LINE errors
 *   strset.c   an immutable hash set of strings (extensions, MIME types,
 *              domains) built once, then read by every worker
 *   sites.c    site lists: domains matching their subdomains, IPs, CIDRs
 *   regex.c    PCRE2 pattern lists (URLs, user agents)
 *   filetype.c file names, extensions, Content-Disposition, MIME types
 *   dynban.c   the dynamic bans: immutable snapshots swapped atomically
 *   state.c    the state file: format, parse, atomic write
 *   autoban.c  auto_ban rules: syntax and per-client event counting
 *   timefmt.c  durations and wall-clock times as admins read them
 *   conf.c     the directive table, conf_create/finish/free
 *   hookcmd.c  the hook command: spawned from the main loop, timed out
 *   ctl.c      the control commands ban, unban, bans, bancheck
 *   banlist.c  the descriptor, life cycle and the request-time checks
 *
 * Everything but conf.c, hookcmd.c, ctl.c and banlist.c is free of the
 * host table, so the unit tests link it as it is.
 */

/* ---- lists.c ------------------------------------------------------------- */

/* Longest line of a list file (bytes, without the newline). */
#define BL_LINE_MAX 4096

/* Called for each entry of a list: text is the line without comment and
 * surrounding space (NUL-terminated, writable), line its number. Returns 0,
 * or -1 with a message (no FILE:LINE) in err. */
typedef int (*bl_entry_fn)(void *arg, char *text, long line, char *err,
                           size_t errlen);

/* How a list treats '#': BL_COMMENT_ANY starts a comment at a '#' at the
 * start of the line or after a space; BL_COMMENT_LINE only at the start
 * (regex lists, where '#' may be part of a pattern). */
enum bl_comment { BL_COMMENT_ANY = 0, BL_COMMENT_LINE = 1 };

/* Reads path line by line and calls fn for every entry. A bad line is an
 * error "PATH:LINE: message" (the first one stops the load), unless
 * skip_bad is set: then each bad line is passed to warn (when not NULL)
 * with that text, and skipped. Refused: unreadable files, NUL bytes, lines
 * longer than BL_LINE_MAX. Returns the number of entries, or -1 with the
 * message in err. */
long bl_list_read(const char *path, enum bl_comment comments, bl_entry_fn fn,
                  void *arg, int skip_bad, void (*warn)(void *warg, const char *msg),
                  void *warg, char *err, size_t errlen);

/* ---- strset.c ------------------------------------------------------------ */

/* A set of strings, built with adds, then frozen by bl_strset_finish();
 * read-only and thread-safe afterwards. Lookups hash once and compare
 * one or two candidates: 100,000 entries cost what 10 do. */
typedef struct bl_strset bl_strset_t;

bl_strset_t *bl_strset_new(void);
/* Copies s[0..len) into the set (duplicates are kept once). Returns 0 or
 * -1 when out of memory. */
int bl_strset_add(bl_strset_t *set, const char *s, size_t len);
/* Builds the index. Returns 0 or -1 when out of memory. */
int bl_strset_finish(bl_strset_t *set);
/* The stored copy equal to s[0..len), or NULL. */
const char *bl_strset_find(const bl_strset_t *set, const char *s, size_t len);
size_t bl_strset_count(const bl_strset_t *set);
void bl_strset_free(bl_strset_t *set);

/* The hash every index of the plugin uses (64 bits). */
uint64_t bl_hash(const void *p, size_t len);

/* ---- sites.c ------------------------------------------------------------- */

/* 1 when text is "ADDRESS/..." (a CIDR, maybe a bad one), not a URL. */
int bl_is_cidr(const char *text);
/* 1 when the normalised host[0..len) is an address literal (cheaper than
 * urlnorm_host_is_ip(), and only right for urlnorm_host() output). */
int bl_host_is_ip(const char *host, size_t len);

/* Sites: "example.com" (also written ".example.com" or "*.example.com")
 * matches example.com and every name under it; an IP address or a CIDR
 * matches hosts written as such an address. Entries go through
 * urlnorm_host(), as the hosts of requests do. */
typedef struct bl_sites bl_sites_t;

bl_sites_t *bl_sites_new(void);
/* Parses and adds one entry. Returns 0, or -1 with a message in err. */
int bl_sites_add(bl_sites_t *s, const char *entry, char *err, size_t errlen);
int bl_sites_finish(bl_sites_t *s);
/* host is normalised (urlnorm_host). Returns the entry that matched (the
 * domain, or host itself for an address), or NULL. */
const char *bl_sites_match(const bl_sites_t *s, const char *host);
size_t bl_sites_count(const bl_sites_t *s);
void bl_sites_free(bl_sites_t *s);

/* Normalises a site given by an admin ("Example.COM.", ".example.com",
 * "*.example.com", "[::1]") into out (URLNORM_HOST_MAX + 1 bytes). Returns
 * 0, or -1 with a message in err. */
int bl_site_normalise(const char *entry, char *out, size_t outlen, char *err,
                      size_t errlen);

/* ---- regex.c ------------------------------------------------------------- */

/* A list of PCRE2 patterns, matched case-insensitively (a pattern may say
 * (?-i)). Each pattern is compiled on its own to report errors by line;
 * matching runs one combined, JIT-compiled alternation. */
typedef struct bl_relist bl_relist_t;

bl_relist_t *bl_relist_new(void);
/* Compiles and adds pattern; where ("FILE:LINE") is kept for messages.
 * Returns 0, or -1 with PCRE2's message and the offset in err. */
int bl_relist_add(bl_relist_t *l, const char *pattern, const char *where,
                  char *err, size_t errlen);
/* Builds the combined matcher. Returns 0, or -1 with a message. */
int bl_relist_finish(bl_relist_t *l, char *err, size_t errlen);
/* 1 when some pattern matches subject[0..len), and then *where names it
 * ("FILE:LINE"); 0 otherwise. Thread-safe. */
int bl_relist_match(const bl_relist_t *l, const char *subject, size_t len,
                    const char **where);
size_t bl_relist_count(const bl_relist_t *l);
void bl_relist_free(bl_relist_t *l);

/* ---- filetype.c ---------------------------------------------------------- */

/* An extension entry as written in a list ("exe", ".EXE", "*.exe") made
 * into its stored form ("exe") in out. Returns 0, or -1 with a message. */
int bl_ext_normalise(const char *entry, char *out, size_t outlen, char *err,
                     size_t errlen);
/* A MIME type entry ("Application/X-MSDownload"; "video/" followed by "*"
 * for a whole type) in stored form. Returns 0, or -1 with a message. */
int bl_mime_normalise(const char *entry, char *out, size_t outlen, char *err,
                      size_t errlen);

/* The file name of a URL path ("/a/b/invoice.pdf.exe?x=1" ->
 * "invoice.pdf.exe"): the path is normalised first (urlnorm_path), the
 * query and ";params" dropped. Returns 0, or -1 when there is none. */
int bl_path_filename(const char *path, char *out, size_t outlen);

/* The file names of a Content-Disposition value (RFC 6266): out1 gets the
 * name a browser saves as (filename*=, RFC 8187, percent-decoded, when
 * there is one, else filename=), out2 the other one if both are given ("");
 * directory parts removed. Returns how many names there are (0..2). */
int bl_disposition_filenames(const char *value, size_t len, char *out1,
                             char *out2, size_t outlen);

/* Checks every extension of name ("invoice.pdf.exe": "pdf" and "exe")
 * against ban, minus those in exc (either may be NULL). Trailing dots and
 * spaces are ignored, as Windows ignores them. Returns the banned
 * extension (as stored in ban), or NULL. */
const char *bl_ext_banned(const bl_strset_t *ban, const bl_strset_t *exc,
                          const char *name);
/* The last extension of name, lowercased, into out ("" when none). */
void bl_ext_last(const char *name, char *out, size_t outlen);

/* The media type of a Content-Type value, lowercased, without parameters,
 * into out. Returns 0, or -1 when there is none. */
int bl_mime_of(const char *value, size_t len, char *out, size_t outlen);
/* The entry of set matching the media type mime: "type/sub" itself, or
 * the wildcard entry of its whole type. Returns it, or NULL. */
const char *bl_mime_find(const bl_strset_t *set, const char *mime);

/* ---- timefmt.c ----------------------------------------------------------- */

/* Milliseconds since the epoch (wall clock). */
int64_t bl_now_ms(void);
/* The same from the kernel's tick (a few ms behind at most, five times
 * cheaper): for the per-request checks, where a ban ending a tick late
 * does not matter and a clock read per request does. */
int64_t bl_now_coarse_ms(void);
/* "1h30m", "2d3h", "45s", "0s": at most the two largest units. */
char *bl_fmt_duration(int64_t ms, char *buf, size_t len);
/* "2026-05-01 14:00:00 UTC". */
char *bl_fmt_time(int64_t ms, char *buf, size_t len);
/* "2026-05-01T14:00:00.250Z" (the state file's form) and back. The parser
 * returns 0, or -1 for anything else. */
char *bl_fmt_iso(int64_t ms, char *buf, size_t len);
int bl_parse_iso(const char *s, int64_t *ms);

/* ---- dynban.c ------------------------------------------------------------ */

enum bl_kind { BL_CLIENT = 0, BL_SITE = 1 };

/* One dynamic ban. Immutable once published; shared by the snapshots that
 * hold it (refs), freed when the last one lets go (any thread). */
typedef struct bl_ban {
    atomic_int refs;
    enum bl_kind kind;
    char *target;         /* "10.0.0.5", "10.0.0.0/24", "example.com" */
    netaddr_t net;        /* BL_CLIENT: the network, host bits clear */
    int prefix;           /* BL_CLIENT: prefix length in the IPv6 space */
    int64_t created_ms;   /* wall clock */
    int64_t until_ms;     /* wall clock; 0: until unbanned */
    char *reason;
    char *source;         /* "ctl", "auto:av.infected", ... */
} bl_ban_t;

/* Parses a target given by an admin: "10.0.0.5", "10.0.0.0/24", "::1",
 * "example.com", or with an explicit kind "client:..." / "site:...". An
 * address or CIDR without a kind is a client, a name a site. Fills a new
 * ban's kind, target, net and prefix. Returns a ban with one reference,
 * or NULL with a message in err. */
bl_ban_t *bl_ban_parse_target(const char *text, char *err, size_t errlen);
/* Sets reason and source (copied, control bytes made spaces). Returns 0 or
 * -1 when out of memory. */
int bl_ban_set_text(bl_ban_t *b, const char *reason, const char *source);
bl_ban_t *bl_ban_ref(bl_ban_t *b);
void bl_ban_unref(bl_ban_t *b);
/* "client" or "site". */
const char *bl_kind_name(enum bl_kind kind);

/* A snapshot: the bans in force at one moment, with lookup indexes.
 * Immutable; shared by reference count. */
typedef struct bl_snap bl_snap_t;

/* Every ban of a snapshot, sorted by kind then target. */
size_t bl_snap_count(const bl_snap_t *s);
const bl_ban_t *bl_snap_at(const bl_snap_t *s, size_t i);
/* The most specific ban covering addr that is in force at now_ms, or NULL. */
const bl_ban_t *bl_snap_client(const bl_snap_t *s, const netaddr_t *addr,
                               int64_t now_ms);
/* The ban of host or of a parent domain, in force at now_ms, or NULL.
 * host is normalised. */
const bl_ban_t *bl_snap_site(const bl_snap_t *s, const char *host, int64_t now_ms);
/* The ban with exactly this kind and target, or NULL. */
const bl_ban_t *bl_snap_find(const bl_snap_t *s, enum bl_kind kind,
                             const char *target);
/* The earliest until_ms of a timed ban, or 0 when none. */
int64_t bl_snap_next_expiry(const bl_snap_t *s);
void bl_snap_ref(bl_snap_t *s);
void bl_snap_unref(bl_snap_t *s);

/* The table the workers read and the main thread changes.
 *
 * Why a snapshot swap and not a read-write lock: a lookup runs for every
 * request on every worker, a change comes from an admin or an event a few
 * times a minute at most. Writers build a whole new snapshot (indexes and
 * all) without holding anything, then swap the pointer; readers take a
 * reference to the current snapshot and search it without a lock. The
 * mutex guards only the pointer load and the reference increment (a few
 * instructions), so a reader never waits for a writer's rebuild and an old
 * snapshot is freed by whoever drops its last reference. */
typedef struct bl_dyn {
    pthread_mutex_t lock;
    bl_snap_t *cur;
    size_t max;           /* most bans kept (max_bans) */
} bl_dyn_t;

int bl_dyn_init(bl_dyn_t *d, size_t max);
void bl_dyn_destroy(bl_dyn_t *d);
/* The current snapshot with a reference (release with bl_snap_unref). */
bl_snap_t *bl_dyn_get(bl_dyn_t *d);

/* Writers: main thread only (one writer at a time). */
/* Adds ban (takes a reference of its own) or replaces the ban with the
 * same kind and target; *old gets the replaced one (a reference the
 * caller drops) or NULL. Returns 0, or -1 with a message ("too many bans"). */
int bl_dyn_add(bl_dyn_t *d, bl_ban_t *ban, bl_ban_t **old, char *err,
               size_t errlen);
/* Removes the ban with kind and target; *old gets it (a reference the
 * caller drops). Returns 0, or -1 when there is none. */
int bl_dyn_remove(bl_dyn_t *d, enum bl_kind kind, const char *target,
                  bl_ban_t **old);
/* Replaces every ban at once (the state file at start). Takes a
 * reference to each of bans[0..n). Returns 0 or -1 (then nothing
 * changed). */
int bl_dyn_replace_all(bl_dyn_t *d, bl_ban_t *const *bans, size_t n);
/* Removes bans whose until_ms <= now_ms; the removed ones are stored in
 * *out (malloc()ed array of references; the caller drops each and frees
 * the array). Returns how many, or -1 when out of memory. */
long bl_dyn_expire(bl_dyn_t *d, int64_t now_ms, bl_ban_t ***out);

/* ---- state.c ------------------------------------------------------------- */

/* The state file: a comment header, then one ban per line:
 *   KIND TARGET UNTIL CREATED SOURCE REASON...
 * UNTIL and CREATED in bl_fmt_iso() form, UNTIL "forever" for no end. */

/* Writes the bans of s in force at now_ms to path atomically: a temporary
 * file beside it, fsync, rename over path, fsync of the directory. A
 * reader sees the old file or the new one, never a part. Returns 0, or -1
 * with a message in err. Blocking: run it off the loop. */
int bl_state_write(const char *path, const bl_snap_t *s, int64_t now_ms,
                   char *err, size_t errlen);
/* Reads path. Bans that ended before now_ms are dropped; a bad line is
 * passed to warn as "PATH:LINE: message" and skipped. A missing file is
 * an empty list. *out gets a malloc()ed array of bans (one reference
 * each), *n its length. Returns 0, or -1 with a message in err (the file
 * exists but cannot be read). */
int bl_state_read(const char *path, int64_t now_ms, bl_ban_t ***out, size_t *n,
                  void (*warn)(void *arg, const char *msg), void *warg,
                  char *err, size_t errlen);

/* ---- autoban.c ----------------------------------------------------------- */

/* One auto_ban rule:
 *   auto_ban EVENT COUNT[/WINDOW] DURATION|forever [from=PLUGIN] [REASON...] */
typedef struct bl_rule {
    char *topic;          /* "av.infected" */
    long count;           /* events from one client ... */
    uint64_t window_ms;   /* ... within this long (0: any time, count 1) */
    uint64_t duration_ms; /* ban for this long (0: forever) */
    char *from;           /* only events of this plugin, or NULL */
    char *reason;         /* or NULL: a reason is made up */
    char *text;           /* the rule as written, its identity on reload */
} bl_rule_t;

/* Parses the arguments after "auto_ban". Returns 0, or -1 with a message.
 * parse_duration is the host's (or confval's) duration parser. */
int bl_rule_parse(bl_rule_t *r, int argc, const char *const *argv,
                  int (*parse_duration)(const char *, uint64_t *, char *, size_t),
                  char *err, size_t errlen);
void bl_rule_clear(bl_rule_t *r);

/* Counting state of one rule: the recent event times of each client.
 * Main thread only. */
typedef struct bl_counter bl_counter_t;

/* Most clients one rule tracks at once; past it the stalest is dropped. */
#define BL_COUNTER_MAX_CLIENTS 65536
/* Largest COUNT of a rule. */
#define BL_RULE_MAX_COUNT 10000

bl_counter_t *bl_counter_new(const bl_rule_t *r);
/* Records an event of client at now_ms. Returns 1 when the rule fires
 * (the client's count is then reset), else 0; -1 when out of memory. */
int bl_counter_hit(bl_counter_t *c, const netaddr_t *client, int64_t now_ms);
/* Forgets clients whose events are all older than the window. */
void bl_counter_sweep(bl_counter_t *c, int64_t now_ms);
/* Forgets one client (it was banned). */
void bl_counter_forget(bl_counter_t *c, const netaddr_t *client);
size_t bl_counter_clients(const bl_counter_t *c);
const char *bl_counter_rule_text(const bl_counter_t *c);
void bl_counter_free(bl_counter_t *c);

#endif
