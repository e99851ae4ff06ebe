/* avscan.h - the avscan plugin's internal interfaces: configuration, engine, scan pool, HTTP scanning. */
#ifndef AVSCAN_H
#define AVSCAN_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <portcullis/plugin.h>

/*
 * The plugin is split by job:
 *   avscan.c           the descriptor, life cycle, database check timer,
 *                      the `ctl avscan` command
 *   avscan_conf.c      the directive table, defaults, validation
 *   avscan_engine.c    libclamav engines: load, compile, refcounted swap,
 *                      database change checks, the background thread
 *   avscan_pool.c      the scan thread pool, its bounded queue, deadlines,
 *                      and the `scanner` service (pc_scanner_t)
 *   avscan_decode.c    gzip/deflate content decoding (zlib) before a scan
 *   avscan_multipart.c the file parts of multipart/form-data uploads
 *   avscan_types.c     header parsing: MIME types, file names, codings
 *   avscan_http.c      the download and upload hooks
 */

#define AVSCAN_ALLOW 0
#define AVSCAN_BLOCK 1

/* A list of strings a repeatable directive builds. */
typedef struct avscan_strlist {
    char **v;
    int n;
    int set;            /* given in the configuration (even as "none") */
} avscan_strlist_t;

/* Frees the strings and the array; leaves an empty list. */
void avscan_strlist_clear(avscan_strlist_t *l);
/* Appends a copy of s. Returns 0 or -1 (out of memory). */
int avscan_strlist_add(avscan_strlist_t *l, const char *s);

/* ---- configuration (avscan_conf.c) -------------------------------------- */

/* What an engine is built from: two configurations whose options are equal
 * share one engine. */
typedef struct avscan_engine_opts {
    char *database;              /* the ClamAV database directory */
    int database_set;            /* named in the config: must exist */
    char *test_signatures;       /* the project's test signature directory */
    avscan_strlist_t signatures; /* extra signature files */
    char *temp_dir;              /* libclamav's and our temporary files */
    uint64_t max_scan_size;      /* CL_ENGINE_MAX_SCANSIZE */
    uint64_t max_file_size;      /* CL_ENGINE_MAX_FILESIZE */
    long max_recursion;          /* CL_ENGINE_MAX_RECURSION */
    long max_files;              /* CL_ENGINE_MAX_FILES */
    uint64_t scan_timeout;       /* CL_ENGINE_MAX_SCANTIME, ms */
    int detect_pua;              /* load PUA signatures */
    int scan_cache;              /* libclamav's cache of clean files */
} avscan_engine_opts_t;

typedef struct avscan_engine avscan_engine_t;

/* One configuration of the plugin; read-only after conf_finish. */
typedef struct avscan_conf {
    avscan_engine_opts_t eng;

    /* the scan pool */
    long threads;                /* 0: one per CPU */
    long queue_size;
    uint64_t check_interval;     /* database checks, ms; 0: off */

    /* what a scan reports */
    int heuristic_alerts;
    int block_encrypted;
    int block_macros;
    int on_limits;               /* AVSCAN_ALLOW | AVSCAN_BLOCK */
    int on_error;

    /* HTTP */
    uint64_t max_size;           /* largest body held and scanned */
    int on_oversize;
    int on_oversize_risky;
    int scan_uploads;
    int range_requests;          /* AVSCAN_RANGE_* */
    avscan_strlist_t skip_mime;
    avscan_strlist_t skip_extension;
    avscan_strlist_t risky_mime;
    avscan_strlist_t risky_extension;

    /* Built by conf_finish: an engine compiled for this configuration and
     * not yet in force, or NULL when the engine in force fits it. */
    avscan_engine_t *engine;
} avscan_conf_t;

enum { AVSCAN_RANGE_STRIP = 0, AVSCAN_RANGE_REFUSE = 1 };

extern const pc_directive_t avscan_directives[];
void *avscan_conf_create(pc_plugin_t *self);
int avscan_conf_finish(pc_plugin_t *self, void *conf, char *err, size_t errlen);
void avscan_conf_free(pc_plugin_t *self, void *conf);
/* The thread count a configuration asks for (threads 0 resolved). */
int avscan_conf_threads(const avscan_conf_t *conf);

/* ---- engines (avscan_engine.c) ------------------------------------------ */

/* Sends libclamav's messages to log_fn; once per process. Returns 0 or -1
 * with a message. */
int avscan_engine_global_init(char *err, size_t errlen);

/* Loads and compiles an engine from o (blocking: seconds for the official
 * databases). Returns 0 with *out holding one reference, or -1 with a
 * message. When the database directory holds no databases, the test
 * signatures are loaded and the engine says so (avscan_engine_test_only). */
int avscan_engine_load(const avscan_engine_opts_t *o, avscan_engine_t **out,
                       char *err, size_t errlen);
avscan_engine_t *avscan_engine_ref(avscan_engine_t *e);
/* Drops a reference; the last one frees the engine, on the background
 * thread when it runs (cl_engine_free can take a second), else here. */
void avscan_engine_unref(avscan_engine_t *e);
/* The compiled libclamav engine. */
const struct cl_engine *avscan_engine_cl(const avscan_engine_t *e);
int avscan_engine_same_opts(const avscan_engine_t *e, const avscan_engine_opts_t *o);
int avscan_engine_test_only(const avscan_engine_t *e);
unsigned avscan_engine_signatures(const avscan_engine_t *e);
uint64_t avscan_engine_load_ms(const avscan_engine_t *e);
/* "ClamAV 1.4.6, 8704521 signatures from /var/lib/clamav (daily 27450)";
 * valid while the reference is held. */
const char *avscan_engine_describe(const avscan_engine_t *e);
/* Logs what the engine is (and the loud warning for test signatures). */
void avscan_engine_log_loaded(pc_plugin_t *self, const avscan_engine_t *e,
                              const char *why);

/* The engine in force: a new reference, or NULL. Any thread. */
avscan_engine_t *avscan_engine_current(void);
/* Puts e in force (takes over the caller's reference). Any thread. */
void avscan_engine_commit(avscan_engine_t *e);

/* The background thread: database checks, reloads, engine frees. */
int avscan_bg_start(pc_plugin_t *self, char *err, size_t errlen);
/* Asks for a database check (force: reload even when unchanged). Returns
 * 0, or -1 when a check is already running. Main thread. */
int avscan_bg_check(int force);
/* Finishes queued frees and stops the thread. */
void avscan_bg_stop(void);
/* Counters for `ctl avscan`. */
void avscan_bg_stats(uint64_t *reloads, uint64_t *failures, int64_t *last_reload);

/* ---- decoding (avscan_decode.c) ----------------------------------------- */

enum avscan_coding {
    AVSCAN_CODING_NONE = 0,
    AVSCAN_CODING_GZIP = 1,
    AVSCAN_CODING_DEFLATE = 2,
    AVSCAN_CODING_UNKNOWN = 3,
};

/* Reads up to len bytes at off; returns the count, 0 at the end, -1. */
typedef long (*avscan_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);

/* Bytes in memory or in an unlinked temporary file. */
typedef struct avscan_blob {
    char *mem;
    size_t len;            /* bytes in mem, or in the file */
    size_t cap;
    int fd;                /* -1 while in memory */
    uint64_t flen;
    const char *tmpdir;    /* where a file goes when memory passes max_mem */
    size_t max_mem;
} avscan_blob_t;

void avscan_blob_init(avscan_blob_t *b, const char *tmpdir, size_t max_mem);
/* Returns 0 or -1 (errno set). */
int avscan_blob_append(avscan_blob_t *b, const void *p, size_t len);
uint64_t avscan_blob_size(const avscan_blob_t *b);
void avscan_blob_free(avscan_blob_t *b);

/* Decodes coding (GZIP or DEFLATE) from rd into out, at most limit bytes.
 * *stop is polled so an abandoned scan stops early. Returns 0, 1 when the
 * decoded body passed limit (out holds limit bytes), or -1 with a message
 * (out holds what decoded before the error). */
int avscan_decode(int coding, avscan_read_fn rd, void *rctx, avscan_blob_t *out,
                  uint64_t limit, const atomic_int *stop, char *err,
                  size_t errlen);

/* ---- multipart (avscan_multipart.c) ------------------------------------- */

/* Called for each part: its content at [off, off + len) of the body, and
 * the filename= of its Content-Disposition (or NULL). Return 0 to go on,
 * anything else to stop (returned by avscan_multipart_each). */
typedef int (*avscan_part_fn)(void *arg, uint64_t off, uint64_t len,
                              const char *filename);

/* Walks the parts of a multipart body of size bytes read through rd, at
 * most max_parts. Returns the callback's non-zero value, 0 when all parts
 * were seen, or -1 when the body is not multipart with this boundary. */
int avscan_multipart_each(avscan_read_fn rd, void *rctx, uint64_t size,
                          const char *boundary, int max_parts,
                          avscan_part_fn fn, void *arg);

/* ---- header parsing (avscan_types.c) ------------------------------------ */

/* "Text/HTML; charset=x" -> "text/html". Returns 0, or -1 when empty. */
int avscan_mime_type(const char *v, size_t len, char *out, size_t outlen);
/* Exact types, or a type followed by a slash and a star for all its subtypes; any case. */
int avscan_mime_match(const avscan_strlist_t *patterns, const char *mime);
/* The filename of a Content-Disposition value (filename* preferred,
 * RFC 6266), without directories. Returns 0 or -1 when it has none. */
int avscan_disposition_filename(const char *v, size_t len, char *out,
                                size_t outlen);
/* The last segment of a path (query dropped, %XX decoded). 0 or -1. */
int avscan_path_filename(const char *path, char *out, size_t outlen);
/* 1 when the extension of filename (after its last dot) is in list. */
int avscan_ext_match(const avscan_strlist_t *list, const char *filename);
/* The boundary= of a multipart/form-data Content-Type. 0 or -1. */
int avscan_multipart_boundary(const char *v, size_t len, char *out,
                              size_t outlen);
/* Classifies a Content-Encoding value (AVSCAN_CODING_*). */
int avscan_content_coding(const char *v, size_t len);
/* Keeps the codings we can decode (gzip, x-gzip, deflate, identity) of an
 * Accept-Encoding value; "identity" when none is left. Returns 1 when the
 * value changed, 0 when it is fine as it is, -1 when it does not fit. */
int avscan_accept_encoding(const char *v, size_t len, char *out, size_t outlen);
/* "100M", "64k", "512 bytes": a size for messages. */
void avscan_format_size(uint64_t n, char *out, size_t outlen);

/* ---- the scan pool (avscan_pool.c) -------------------------------------- */

/* Result details beyond pc_scan_result_t (which comes first, so a
 * pc_scan_cb sees only that). */
#define AVSCAN_RES_LIMITS 0x1     /* a scan limit was hit; on_limits allowed it */
#define AVSCAN_RES_OVERSIZE 0x2   /* decoded body passed its limit: not scanned */
#define AVSCAN_RES_TIMEOUT 0x4    /* the deadline passed (ERROR) */
#define AVSCAN_RES_UNDECODED 0x8  /* decoding failed: raw bytes scanned too */

typedef struct avscan_result {
    pc_scan_result_t r;
    unsigned flags;
    const char *part;          /* the upload part (filename) that matched */
} avscan_result_t;

/* One scan request (internal form of scan_mem / scan_fd). */
typedef struct avscan_req {
    const void *mem;           /* copied at submit */
    size_t len;
    int fd;                    /* or a file (dup()ed); -1 for mem */
    int fd_immutable;          /* nobody changes the file: it may be mapped */
    int coding;                /* AVSCAN_CODING_NONE/GZIP/DEFLATE */
    uint64_t decode_limit;     /* decoded bytes allowed (0: no limit) */
    const char *boundary;      /* multipart/form-data: scan each part too */
    const pc_scan_meta_t *meta;
    uint64_t deadline_ms;      /* from submission; 0: the scan_timeout */
    pc_scan_cb cb;             /* gets an avscan_result_t */
    pc_scan_tick_cb tick;
    void *arg;
} avscan_req_t;

/* What the pool needs from its host (tests give their own). */
typedef struct avscan_pool_ops {
    void *(*loop_current)(void);
    int (*loop_post)(void *loop, void (*fn)(void *), void *arg);
    void (*log)(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
} avscan_pool_ops_t;

/* Settings a configuration gives the pool (copied). */
typedef struct avscan_pool_settings {
    int threads;
    long queue_size;
    uint64_t scan_timeout;     /* ms: default and largest deadline */
    uint64_t tick_interval;    /* ms between keep-alive ticks */
    int heuristic_alerts, block_encrypted, block_macros, detect_pua;
    int on_limits;
    const char *temp_dir;      /* copied */
    uint64_t max_file_size;    /* parts and decoded data kept in memory up to 1M */
    long max_parts;
} avscan_pool_settings_t;

/* Starts the pool. Returns 0, or -1 with a message. */
int avscan_pool_start(const avscan_pool_ops_t *ops, const avscan_pool_settings_t *s,
                      char *err, size_t errlen);
/* New settings (threads grow or shrink; queued scans keep theirs). */
void avscan_pool_configure(const avscan_pool_settings_t *s);
/* Submits from a loop thread. Returns a handle (valid until the callback
 * ran or cancel), or NULL with *err: "scan queue full", "no engine",
 * "not on a loop thread", "out of memory". */
pc_scan_t *avscan_pool_submit(const avscan_req_t *r, const char **err);
/* On the submitting thread: cb will not run after this. */
void avscan_pool_cancel(pc_scan_t *s);
/* Stops the pool: queued scans are dropped (their callbacks do not run),
 * running ones finish, threads are joined, undelivered results freed. */
void avscan_pool_stop(void);

typedef struct avscan_pool_stats {
    int threads;
    long queued, running;
    uint64_t scans, clean, infected, errors, timeouts, rejected;
} avscan_pool_stats_t;
void avscan_pool_stats(avscan_pool_stats_t *st);

#ifdef __CLAMAV_H
/* libclamav callbacks every engine gets (context: the scan): pre_scan
 * makes a scan nobody waits for any more skip its remaining embedded
 * files; virus_found records the first real match and the first limits
 * alert, so a real virus is named even after a limits alert. */
cl_error_t avscan_pool_pre_scan(int fd, const char *type, void *context);
void avscan_pool_virus_found(int fd, const char *virname, void *context);
#endif

/* The `scanner` service table (version 1). */
extern const pc_scanner_t avscan_scanner;
/* The text describe() returns; set when an engine goes in force. */
void avscan_scanner_set_description(const char *text);

/* ---- HTTP (avscan_http.c) ------------------------------------------------ */

int avscan_http_request_headers(pc_plugin_t *self, pc_txn_t *txn, void *conf);
int avscan_http_request_body(pc_plugin_t *self, pc_txn_t *txn, void *conf);
int avscan_http_response_headers(pc_plugin_t *self, pc_txn_t *txn, void *conf);
int avscan_http_response_body(pc_plugin_t *self, pc_txn_t *txn, void *conf);

/* ---- the plugin (avscan.c) ------------------------------------------------ */

/* The plugin handle, for logging from threads of our own. */
pc_plugin_t *avscan_self(void);
/* The settings of the configuration in force, for the pool. */
void avscan_settings_from_conf(const avscan_conf_t *c, avscan_pool_settings_t *s);

#endif
