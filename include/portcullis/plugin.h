/* plugin.h - the Portcullis plugin SDK: the only header a plugin needs. */
#ifndef PORTCULLIS_PLUGIN_H
#define PORTCULLIS_PLUGIN_H

/*
 * ===========================================================================
 * Overview
 * ===========================================================================
 *
 * A plugin is a shared object NAME.so in plugin_dir, enabled by a block in
 * the configuration:
 *
 *     plugin NAME {
 *         directive args...
 *     }
 *
 * It exports one function, PC_ENTRY (whose name carries the ABI major
 * version), returning a static pc_plugin_desc_t. Everything the plugin may
 * ask of the host goes through the pc_host_t function table it receives, so
 * a plugin needs no host symbols at link time. Handles are opaque.
 *
 * Versioning. PC_ABI_MAJOR changes only when something existing changes
 * meaning; the entry symbol's name changes with it, so an old plugin is
 * refused, never misread. PC_ABI_MINOR grows when something is appended:
 * pc_host_t, pc_plugin_desc_t and every struct here only grow at the end.
 * The host loads a plugin whose major equals its own and whose minor is not
 * newer; it refuses (and does not start) on a missing entry symbol, a
 * different major, a newer minor, or a descriptor whose size or fields are
 * wrong, naming the file and both versions. A plugin built against a newer
 * minor may test for a host member with PC_HOST_HAS().
 *
 * Life cycle (all on the main thread, which carries no traffic and may
 * block):
 *
 *   1. conf_create()  a new configuration object with defaults;
 *   2. directives     each directive of the plugin's block is applied
 *                     through the directive table (typed setters, or set());
 *   3. conf_finish()  validate and build the immutable state this
 *                     configuration needs (load lists, compile patterns,
 *                     open databases). May take long; may fail with a
 *                     message. Nothing visible may change yet.
 *   4. init()         once, with the first configuration, before any
 *                     traffic: register hooks, services, event subscriptions,
 *                     listeners, timers.
 *   5. reconfigure()  on each successful reload, after every plugin's
 *                     conf_finish() succeeded: the new configuration is
 *                     committed. Cannot fail. If any plugin's conf_finish()
 *                     (or a new plugin's init()) fails, nothing changes
 *                     anywhere and the old configuration keeps serving.
 *                     old_conf is the object the plugin had until now
 *                     (from init() or the previous reconfigure()); it is
 *                     valid during the call and while transactions of the
 *                     old configuration run. A plugin a reload drops from
 *                     the file stays loaded and initialised, its hooks no
 *                     longer called; if a later reload adds it back, it
 *                     gets reconfigure() from the object it last had.
 *   6. drain()        the daemon is stopping: stop taking new work of your
 *                     own (listeners); in-flight transactions still finish.
 *   7. shutdown()     the last call, in the reverse order of init() (users
 *                     before their providers), after the conf_free() of
 *                     every configuration object: free everything, and
 *                     stop your threads; no host function may be called
 *                     once it returned.
 *   conf_free()       when no transaction uses a configuration object any
 *                     more and it is no longer the plugin's current one
 *                     (any thread).
 *
 * `portcullis -t` runs steps 1-3 for every plugin (and conf_free), so a
 * configuration that passes -t also loads.
 *
 * Threads. Hooks run on worker threads: with `workers N`, several at once.
 * A configuration object is read-only after conf_finish() and shared by all
 * threads. State a plugin changes at run time must be thread-safe. A
 * transaction (pc_txn_t) belongs to one worker thread: call the txn_*
 * functions only from that thread, inside a hook or a callback the host
 * runs there (loop_post() gets you there from another thread).
 *
 * Memory. Strings the host returns are valid until the hook returns unless
 * said otherwise; copy what you keep. Strings a plugin passes in are copied
 * by the host. Anything a typed directive stores (PC_DIR_STRING, PC_DIR_PATH)
 * is malloc()ed and the plugin's conf_free() frees it with free().
 *
 * ===========================================================================
 * Hooks and verdicts
 * ===========================================================================
 *
 * A plugin registers at most one function per hook, from init(). For each
 * hook, the host calls the plugins in configuration order. Each returns a
 * verdict:
 *
 *   PC_CONTINUE  no opinion; the next plugin runs.
 *   PC_ALLOW     allowed: the remaining plugins are skipped for this hook
 *                (e.g. an exception list). Later hooks still run.
 *   PC_BLOCK     blocked: the client gets the block page (status, reason and
 *                category from txn_block(); 403 by default) and the header
 *                "X-Portcullis-Block: <plugin>; <reason>". Nothing more is
 *                forwarded.
 *   PC_DEFER     undecided: the plugin called txn_defer() and will resume
 *                the token later (from a callback or another thread). The
 *                transaction waits (reading from the client stops, response
 *                bytes are held) until the token is resumed or its deadline
 *                passes, when the fallback verdict applies.
 *
 *   hook (pc_hook_t)           called                        may return
 *   PC_HOOK_ACCEPT             a client connected            CONTINUE, BLOCK
 *   PC_HOOK_CONNECT            a CONNECT request head        all
 *   PC_HOOK_TLS_SNI            the ClientHello of a tunnel   all
 *                              (after "200 Connection
 *                              established"; txn_sni() gives
 *                              the SNI, txn_host() the
 *                              CONNECT host)
 *   PC_HOOK_REQUEST_HEADERS    a request head (not CONNECT)  all
 *   PC_HOOK_REQUEST_BODY       request body (if asked)       all
 *   PC_HOOK_RESPONSE_HEADERS   a response head               all
 *   PC_HOOK_RESPONSE_BODY      response body (if asked)      all
 *   PC_HOOK_TXN_END            exactly once per transaction  (ignored)
 *   PC_HOOK_CONN_CLOSE         a client connection closed    (ignored)
 *   PC_HOOK_UPSTREAM_ADDR      before connecting to each     CONTINUE, BLOCK
 *                              resolved address, and before
 *                              reusing an idle connection
 *                              (a BLOCK blocks the
 *                              transaction)
 *
 * ACCEPT and CONN_CLOSE get a connection (pc_conn_t), the others a
 * transaction (pc_txn_t). A BLOCK at ACCEPT marks the connection: each of
 * its requests gets the block page and its CONNECTs are refused. The
 * connection is closed after the block page, so the client's next request
 * comes on a new connection and meets ACCEPT again (a block lifted in
 * between, e.g. an unban, no longer applies).
 *
 * TXN_END runs exactly once for every transaction whose request head was
 * parsed, whatever happened: completed, blocked, client abort, upstream
 * failure, timeout. Slots are destroyed after it.
 *
 * CONNECT tunnels. PC_HOOK_CONNECT runs on the CONNECT head (txn_host() is
 * the CONNECT host). The proxy then answers "200 Connection established"
 * and reads the client's first bytes; when they are a TLS ClientHello,
 * PC_HOOK_TLS_SNI runs on the same transaction, with txn_sni() the name the
 * client asked TLS for (NULL when it named none). A BLOCK there (or at
 * CONNECT) shows the block page inside TLS when the client may be
 * intercepted, and otherwise ends the tunnel with a TLS access_denied
 * alert. txn_intercept() chooses interception per tunnel. The requests of
 * an intercepted tunnel are transactions of their own with txn_scheme()
 * "https", txn_url() "https://host/path" and txn_sni() the tunnel's SNI;
 * they run REQUEST_HEADERS and every later hook as plain HTTP does.
 *
 * Request headers may be changed in PC_HOOK_REQUEST_HEADERS (and CONNECT),
 * response headers in PC_HOOK_RESPONSE_HEADERS; the host removes
 * hop-by-hop fields before the hooks run and adds Via after them.
 *
 * ===========================================================================
 * Deferral
 * ===========================================================================
 *
 * txn_defer() returns a one-shot token with a deadline and a fallback
 * verdict. Exactly one of these happens, once:
 *   - defer_resume(token, verdict) on the transaction's thread, or
 *     defer_resume_threadsafe(token, ...) from any thread (queued to the
 *     transaction's loop): the chain continues with that verdict;
 *   - the deadline passes: the plugin's cancel callback runs, then the
 *     fallback verdict applies (logged);
 *   - the transaction is aborted (client gone, upstream failure, stop): the
 *     plugin's cancel callback runs.
 * The cancel callback runs on the transaction's thread, while the
 * transaction still exists, and never after a resume: a plugin that has
 * seen neither its own resume nor its cancel may still use the transaction
 * from a callback on that thread. After any of these the token is dead: a
 * late resume is a harmless no-op (tokens are never reused while a resume
 * could still reference them). Call each resume at most once; the token
 * must not be used after it. A hook that takes a token and then returns
 * something else than PC_DEFER has decided: the token is dropped without a
 * cancel. Streamed BODY pieces and UPSTREAM_ADDR cannot defer.
 *
 * ===========================================================================
 * Bodies
 * ===========================================================================
 *
 * In PC_HOOK_REQUEST_HEADERS (request bodies) or PC_HOOK_RESPONSE_HEADERS
 * (response bodies) a plugin asks for the body with txn_body_want():
 *
 *   PC_BODY_STREAM  the BODY hook runs for each piece as it passes
 *                   (txn_body_data() gives the piece; PC_BODY_LAST marks the
 *                   end). A BLOCK after bytes went out aborts the transfer.
 *   PC_BODY_HOLD    nothing of the message goes out (the response head is
 *                   held too) until the whole body has arrived and every
 *                   holder's BODY hook gave its verdict. The host keeps the
 *                   body in memory up to body_memory_limit, then in an
 *                   unlinked temporary file in spool_dir (written
 *                   asynchronously), up to the plugin's max. Past max the
 *                   plugin's on_oversize rule applies and is logged:
 *                   PC_FAIL_OPEN streams the rest unchecked (the BODY hook
 *                   gets PC_BODY_OVERSIZE), PC_FAIL_CLOSED blocks. The BODY
 *                   hook sees the whole decoded body (transfer coding
 *                   removed; content coding such as gzip left as is): in
 *                   memory via txn_body_data(), or as a file via
 *                   txn_body_fd().
 *
 * Long holds: a browser waiting for a held download would time out, so
 * after hold_trickle_after the host sends the response head and trickles
 * the first bytes of the body slowly; it never sends the last
 * hold_trickle_keep bytes before the verdict. A BLOCK after trickling began
 * cannot show a page any more: the transfer is aborted, and the client is
 * left with an incomplete file.
 *
 * ===========================================================================
 * Services and events
 * ===========================================================================
 *
 * A plugin registers a named, versioned service (a struct of function
 * pointers it owns); others acquire it by name and minimum version. The
 * provider is initialised before its users (a provider missing, or a cycle,
 * is a configuration error). The `scanner` service (pc_scanner_t below) is
 * the one the avscan plugin provides and the mail and share scanners use.
 *
 * Events: event_publish() from any thread; subscribers' callbacks run on
 * the main thread, in publication order, after the publisher returned.
 * Topics used by the bundled plugins:
 *   "av.infected"    client, subject=URL or path, detail=virus name
 *   "txn.blocked"    client, subject=URL, detail=reason, plugin=blocker
 *   "share.alert"    client, subject=path, detail=what was seen
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PC_ABI_MAJOR 1
#define PC_ABI_MINOR 0

#define PC_ENTRY_NAME_(major) portcullis_plugin_abi_##major
#define PC_ENTRY_NAME(major) PC_ENTRY_NAME_(major)
/* The entry function every plugin defines (portcullis_plugin_abi_1). */
#define PC_ENTRY PC_ENTRY_NAME(PC_ABI_MAJOR)
#define PC_STR_(x) #x
#define PC_STR(x) PC_STR_(x)
#define PC_ENTRY_SYMBOL "portcullis_plugin_abi_" PC_STR(PC_ABI_MAJOR)

/* Opaque handles. */
typedef struct pc_plugin pc_plugin_t;       /* one loaded plugin */
typedef struct pc_txn pc_txn_t;             /* one transaction */
typedef struct pc_conn pc_conn_t;           /* one client connection */
typedef struct pc_defer pc_defer_t;         /* a deferral token */
typedef struct pc_conf_node pc_conf_node_t; /* a directive in a nested block */
typedef struct pc_loop pc_loop_t;           /* a host event loop (thread) */
typedef struct pc_ctl pc_ctl_t;             /* one control-socket command */
typedef struct pc_host pc_host_t;

/* ---- verdicts, hooks, levels -------------------------------------------- */

enum pc_verdict { PC_CONTINUE = 0, PC_ALLOW = 1, PC_BLOCK = 2, PC_DEFER = 3 };

typedef enum pc_hook {
    PC_HOOK_ACCEPT = 0,
    PC_HOOK_CONNECT = 1,
    PC_HOOK_TLS_SNI = 2,
    PC_HOOK_REQUEST_HEADERS = 3,
    PC_HOOK_REQUEST_BODY = 4,
    PC_HOOK_RESPONSE_HEADERS = 5,
    PC_HOOK_RESPONSE_BODY = 6,
    PC_HOOK_TXN_END = 7,
    PC_HOOK_CONN_CLOSE = 8,
    PC_HOOK_UPSTREAM_ADDR = 9,
    PC_HOOK_COUNT_ = 10        /* grows with the minor version */
} pc_hook_t;

enum pc_log_level {
    PC_LOG_EMERG, PC_LOG_ALERT, PC_LOG_CRIT, PC_LOG_ERR,
    PC_LOG_WARN, PC_LOG_NOTICE, PC_LOG_INFO, PC_LOG_DEBUG
};

/* Which message of a transaction. */
enum pc_dir { PC_REQUEST = 0, PC_RESPONSE = 1 };

enum pc_body_mode { PC_BODY_STREAM = 1, PC_BODY_HOLD = 2 };
enum pc_fail_mode { PC_FAIL_OPEN = 0, PC_FAIL_CLOSED = 1 };

/* Flags txn_body_data() reports. */
#define PC_BODY_LAST 0x1      /* this is the end of the body */
#define PC_BODY_OVERSIZE 0x2  /* a hold passed max under PC_FAIL_OPEN */

/* A transaction hook; returns a verdict. conf is the plugin's configuration
 * object of the snapshot this transaction started with. */
typedef int (*pc_txn_hook_fn)(pc_plugin_t *self, pc_txn_t *txn, void *conf);
/* A connection hook (ACCEPT, CONN_CLOSE). */
typedef int (*pc_conn_hook_fn)(pc_plugin_t *self, pc_conn_t *conn, void *conf);

/* ---- directive tables ---------------------------------------------------- */

/* How a directive's arguments are stored into the configuration object. */
enum pc_dir_type {
    PC_DIR_CUSTOM = 0,   /* set() does everything */
    PC_DIR_FLAG,         /* int at offset: on|off */
    PC_DIR_INT,          /* long at offset; data: const pc_int_range_t * */
    PC_DIR_SIZE,         /* uint64_t bytes at offset: 64k, 10M, 1G */
    PC_DIR_DURATION,     /* uint64_t ms at offset: 500ms, 30s, 5m, 1h */
    PC_DIR_STRING,       /* char * at offset (malloc()ed) */
    PC_DIR_PATH,         /* char * at offset, relative to the config file */
    PC_DIR_ENUM,         /* int at offset; data: NULL-terminated names */
};

#define PC_ARGS_ANY (-1)
#define PC_DIR_REPEAT 0x1     /* may appear more than once */
#define PC_DIR_BLOCK 0x2      /* takes a { ... } block (set() walks it) */

typedef struct pc_int_range {
    long min, max;
} pc_int_range_t;

typedef struct pc_directive pc_directive_t;

/* What a setter receives. argv has argc entries (NULL-terminated). */
typedef struct pc_directive_args {
    const char *name;
    int argc;
    const char *const *argv;
    const char *file;                 /* where the directive is */
    int line;
    const pc_conf_node_t *block;      /* first child of its block, or NULL */
    const pc_directive_t *directive;  /* the table row */
} pc_directive_args_t;

/* A custom setter: returns 0, or -1 with a message (no FILE:LINE; the host
 * adds it) in err. */
typedef int (*pc_directive_set_fn)(pc_plugin_t *self, void *conf,
                                   const pc_directive_args_t *args, char *err,
                                   size_t errlen);

struct pc_directive {
    const char *name;
    int min_args;
    int max_args;               /* PC_ARGS_ANY for no limit */
    unsigned flags;             /* PC_DIR_REPEAT, PC_DIR_BLOCK */
    enum pc_dir_type type;
    size_t offset;              /* offsetof(your_conf, field) for typed rows */
    const void *data;           /* per type, see enum pc_dir_type */
    pc_directive_set_fn set;    /* PC_DIR_CUSTOM; or runs after a typed set */
};

/* Ends a directive table. */
#define PC_DIRECTIVE_END {NULL, 0, 0, 0, PC_DIR_CUSTOM, 0, NULL, NULL}

/* ---- the descriptor ------------------------------------------------------ */

typedef struct pc_service_ref {
    const char *name;
    uint32_t version;     /* provided version, or the minimum required */
} pc_service_ref_t;

typedef struct pc_plugin_desc {
    uint32_t abi_major;     /* PC_ABI_MAJOR */
    uint32_t abi_minor;     /* PC_ABI_MINOR the plugin was built with */
    uint32_t size;          /* sizeof(pc_plugin_desc_t) */
    const char *name;       /* must equal the NAME of NAME.so */
    const char *version;    /* the plugin's own version */
    const char *description;
    const pc_service_ref_t *provides;   /* {NULL} terminated, or NULL */
    const pc_service_ref_t *requires;   /* {NULL} terminated, or NULL */
    const pc_directive_t *directives;   /* PC_DIRECTIVE_END terminated */

    /* Configuration objects (see the life cycle above). conf_create may
     * not return NULL except when out of memory. */
    void *(*conf_create)(pc_plugin_t *self);
    int (*conf_finish)(pc_plugin_t *self, void *conf, char *err, size_t errlen);
    void (*conf_free)(pc_plugin_t *self, void *conf);

    /* Returns 0, or -1 with a message (the daemon does not start). */
    int (*init)(pc_plugin_t *self, void *conf, char *err, size_t errlen);
    void (*reconfigure)(pc_plugin_t *self, void *old_conf, void *new_conf);
    void (*drain)(pc_plugin_t *self);
    void (*shutdown)(pc_plugin_t *self);
} pc_plugin_desc_t;

/* Defines the entry function returning desc (a pc_plugin_desc_t). */
#define PC_PLUGIN(desc)                                              \
    __attribute__((visibility("default"))) const pc_plugin_desc_t *  \
        PC_ENTRY(const pc_host_t *host_);                            \
    const pc_plugin_desc_t *PC_ENTRY(const pc_host_t *host_)         \
    {                                                                \
        pc_plugin_host_ = host_;                                     \
        return &(desc);                                              \
    }

/* The host table, set by PC_PLUGIN's entry function before anything else
 * is called; define it in one file of the plugin with PC_PLUGIN_HOST_DEFINE.
 * Hidden, so plugins never share each other's copy. */
#define PC_PLUGIN_HOST_DEFINE \
    __attribute__((visibility("hidden"))) const pc_host_t *pc_plugin_host_
extern __attribute__((visibility("hidden"))) const pc_host_t *pc_plugin_host_;

/* ---- events -------------------------------------------------------------- */

typedef struct pc_event {
    const char *topic;      /* "av.infected", "txn.blocked", ... */
    const char *client;     /* client address text, or NULL */
    const char *subject;    /* URL, path, message id, or NULL */
    const char *detail;     /* virus name, reason, or NULL */
    const char *plugin;     /* publisher (set by the host) */
    int64_t value;          /* topic-specific number */
} pc_event_t;

typedef void (*pc_event_fn)(pc_plugin_t *self, const pc_event_t *ev, void *arg);

/* ---- control commands ----------------------------------------------------- */

/* A command of `portcullis ctl NAME ARGS...` (the control socket). Runs on
 * the main loop. Write the answer with ctl_reply() (any number of lines);
 * return 0 for success or -1 for failure (the last reply line is then the
 * error message). argv[0] is the command name. */
typedef int (*pc_ctl_fn)(pc_plugin_t *self, pc_ctl_t *ctl, int argc,
                         const char *const *argv);

/* ---- the scanner service ------------------------------------------------- */

#define PC_SCANNER_SERVICE "scanner"
#define PC_SCANNER_VERSION 1

enum pc_scan_origin { PC_SCAN_HTTP = 0, PC_SCAN_MAIL = 1, PC_SCAN_SHARE = 2 };
enum pc_scan_status { PC_SCAN_CLEAN = 0, PC_SCAN_INFECTED = 1, PC_SCAN_ERROR = 2 };

typedef struct pc_scan_meta {
    uint32_t size;              /* sizeof(pc_scan_meta_t) */
    const char *filename;       /* as the user would see it, or NULL */
    const char *mime_type;      /* declared type, or NULL */
    enum pc_scan_origin origin;
    const char *client;         /* who sent or fetched it, or NULL */
    int is_mail;                /* the data is an RFC 5322 message */
} pc_scan_meta_t;

typedef struct pc_scan_result {
    enum pc_scan_status status;
    const char *virus;          /* INFECTED: the name, or NULL if unnamed */
    const char *error;          /* ERROR: what went wrong */
    uint64_t scanned_bytes;
    uint64_t elapsed_ms;
} pc_scan_result_t;

/* Runs on the loop thread the scan was submitted from; result is valid
 * during the call only. Never called after pc_scanner_t.cancel(). */
typedef void (*pc_scan_cb)(void *arg, const pc_scan_result_t *result);
/* Optional: a keep-alive tick during long scans, on the same thread;
 * never after the result or cancel(). */
typedef void (*pc_scan_tick_cb)(void *arg, uint64_t elapsed_ms);

typedef struct pc_scan pc_scan_t;

/* The interface a scanner provider registers (version 1). Submit from a
 * loop thread (a worker, or the main loop); scans run on the provider's own
 * thread pool. */
typedef struct pc_scanner {
    uint32_t size;              /* sizeof(pc_scanner_t) */
    /* Scans len bytes at data. The caller keeps data valid until the
     * callback ran or cancel() returned; the provider copies it or reads it
     * in place, but never touches it after cancel() returned (a provider
     * reading in place on its own thread makes cancel() wait for that
     * read). deadline_ms is the scan's time budget in milliseconds from
     * submission (0: the provider's default); past it the result is
     * PC_SCAN_ERROR. Returns a handle, valid until the callback ran or
     * cancel() returned, or NULL with *err set (queue full, no engine). */
    pc_scan_t *(*scan_mem)(const void *data, size_t len,
                           const pc_scan_meta_t *meta, uint64_t deadline_ms,
                           pc_scan_cb cb, pc_scan_tick_cb tick, void *arg,
                           const char **err);
    /* Scans the file open at fd from offset 0 (the provider dup()s it). */
    pc_scan_t *(*scan_fd)(int fd, const pc_scan_meta_t *meta,
                          uint64_t deadline_ms, pc_scan_cb cb,
                          pc_scan_tick_cb tick, void *arg, const char **err);
    /* Guarantees cb will not be called; call on the submitting thread,
     * at most once, and not after cb ran. */
    void (*cancel)(pc_scan_t *scan);
    /* A one-line description of the engine (signatures, version). */
    const char *(*describe)(void);
} pc_scanner_t;

/* ---- the host function table --------------------------------------------- */

struct pc_host {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t size;          /* sizeof(pc_host_t) of the running host */

    /* -- logging: to the error log, prefixed with the plugin name */
    void (*log)(pc_plugin_t *self, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* The same with the transaction's connection id (*N). */
    void (*log_txn)(pc_plugin_t *self, pc_txn_t *txn, int level,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

    /* -- the plugin itself */
    const char *(*plugin_name)(pc_plugin_t *self);
    void (*plugin_set_data)(pc_plugin_t *self, void *data);
    void *(*plugin_data)(pc_plugin_t *self);

    /* -- configuration helpers (main thread) */
    /* A path argument resolved against the directory of the config file
     * holding the directive; malloc()ed, free() it. */
    char *(*conf_path)(const pc_directive_args_t *args, const char *arg);
    /* Applies table to the directives of a nested block (args->block), as
     * the host does for the plugin block. Returns 0 or -1 with a full
     * "FILE:LINE: message" in err. */
    int (*conf_apply)(pc_plugin_t *self, void *obj,
                      const pc_conf_node_t *block, const pc_directive_t *table,
                      char *err, size_t errlen);
    /* Value parsers, the same as the core's: 0 or -1 with a message. */
    int (*parse_size)(const char *s, uint64_t *out, char *err, size_t errlen);
    int (*parse_duration)(const char *s, uint64_t *out_ms, char *err, size_t errlen);
    int (*parse_flag)(const char *s, int *out, char *err, size_t errlen);

    /* -- hooks (from init only): 0, or -1 when the hook does not exist or
     * is already registered */
    int (*hook_txn)(pc_plugin_t *self, pc_hook_t hook, pc_txn_hook_fn fn);
    int (*hook_conn)(pc_plugin_t *self, pc_hook_t hook, pc_conn_hook_fn fn);

    /* -- transaction: request */
    uint64_t (*txn_id)(pc_txn_t *txn);          /* unique in the process */
    uint64_t (*txn_conn_id)(pc_txn_t *txn);     /* the *N of the error log */
    pc_conn_t *(*txn_conn)(pc_txn_t *txn);
    const char *(*txn_method)(pc_txn_t *txn);
    /* The URL: "http://host:port/path?query", "https://..." when
     * intercepted, or "host:port" for CONNECT. */
    const char *(*txn_url)(pc_txn_t *txn);
    const char *(*txn_scheme)(pc_txn_t *txn);   /* "http", "https" */
    /* The host, lowercased, no trailing dot, IPv6 without brackets; IP
     * literals in every numeric form are given in canonical form. */
    const char *(*txn_host)(pc_txn_t *txn);
    int (*txn_port)(pc_txn_t *txn);
    /* Path and query as received ("/" at least; "" for CONNECT). */
    const char *(*txn_path)(pc_txn_t *txn);
    /* The TLS SNI of a tunnel, or NULL. */
    const char *(*txn_sni)(pc_txn_t *txn);
    /* The client address (sockaddr) and its text form. */
    const struct sockaddr *(*txn_client_addr)(pc_txn_t *txn);
    const char *(*txn_client)(pc_txn_t *txn);

    /* -- transaction: header fields. dir is PC_REQUEST or PC_RESPONSE. */
    /* The first value of name (case-insensitive) or NULL; *len set. */
    const char *(*txn_header)(pc_txn_t *txn, int dir, const char *name,
                              size_t *len);
    /* Iterates fields: start with i = 0; returns the next i, or -1 at the
     * end. Names and values are not NUL-terminated. */
    int (*txn_header_next)(pc_txn_t *txn, int dir, int i, const char **name,
                           size_t *nlen, const char **value, size_t *vlen);
    /* Replaces every field called name by one with value (NULL removes).
     * Returns 0 or -1 (no such message yet, or too large). */
    int (*txn_set_header)(pc_txn_t *txn, int dir, const char *name,
                          const char *value);
    int (*txn_add_header)(pc_txn_t *txn, int dir, const char *name,
                          const char *value);
    /* The response status, or 0 before the response head. */
    int (*txn_status)(pc_txn_t *txn);

    /* -- verdict details */
    /* Details for a PC_BLOCK this plugin returns (or resumes with). status
     * 0 means 403. reason and category are copied; category may be NULL. */
    void (*txn_block)(pc_plugin_t *self, pc_txn_t *txn, int status,
                      const char *reason, const char *category);
    /* A note for the access log (JSON field "notes") and the block page,
     * e.g. ("category", "adult"), ("country", "DE"). Copied. */
    void (*txn_note)(pc_txn_t *txn, const char *name, const char *value);
    const char *(*txn_get_note)(pc_txn_t *txn, const char *name);

    /* -- deferral */
    /* A token for this plugin's PC_DEFER, from inside its hook. timeout_ms
     * 0 means the host's defer_timeout (60 s unless configured). fallback
     * is the verdict when the deadline passes (PC_CONTINUE or PC_BLOCK).
     * cancel(arg) (may be NULL) runs when the token dies without a resume:
     * at the deadline, or when the transaction ends first (see "Deferral").
     * Returns NULL when out of memory or outside a hook that may defer
     * (then do not return PC_DEFER). */
    pc_defer_t *(*txn_defer)(pc_plugin_t *self, pc_txn_t *txn,
                             uint64_t timeout_ms, int fallback,
                             void (*cancel)(void *arg), void *arg);
    /* On the transaction's thread. */
    void (*defer_resume)(pc_defer_t *token, int verdict);
    /* From any thread: verdict and, for PC_BLOCK, the details (copied). */
    void (*defer_resume_threadsafe)(pc_defer_t *token, int verdict,
                                    int status, const char *reason,
                                    const char *category);

    /* -- per-transaction slots: one per plugin; dtor runs after TXN_END */
    void (*txn_slot_set)(pc_plugin_t *self, pc_txn_t *txn, void *value,
                         void (*dtor)(void *value));
    void *(*txn_slot_get)(pc_plugin_t *self, pc_txn_t *txn);

    /* -- bodies (see "Bodies" above) */
    /* Asks for dir's body; from the matching *_HEADERS hook. max 0 means
     * no limit beyond the host's spool_max. Returns 0, or -1 when the
     * message has no body or it is too late. */
    int (*txn_body_want)(pc_plugin_t *self, pc_txn_t *txn, int dir, int mode,
                         uint64_t max, int on_oversize);
    /* In a BODY hook: the current piece (STREAM) or the whole body if held
     * in memory (HOLD; *p NULL when it is in a file). Returns PC_BODY_*
     * flags. */
    int (*txn_body_data)(pc_txn_t *txn, int dir, const void **p, size_t *len);
    /* A held body in a file: a descriptor valid until TXN_END (read it with
     * pread; do not close it), or -1 when the body is in memory. */
    int (*txn_body_fd)(pc_txn_t *txn, int dir);
    /* Bytes of the (decoded) body seen so far. */
    uint64_t (*txn_body_size)(pc_txn_t *txn, int dir);

    /* -- connections */
    uint64_t (*conn_id)(pc_conn_t *conn);
    const struct sockaddr *(*conn_client_addr)(pc_conn_t *conn);
    const char *(*conn_client)(pc_conn_t *conn);
    /* Details for a PC_BLOCK at ACCEPT. */
    void (*conn_block)(pc_plugin_t *self, pc_conn_t *conn, int status,
                       const char *reason, const char *category);

    /* -- services (register from init; acquire from init or later) */
    int (*service_register)(pc_plugin_t *self, const char *name,
                            uint32_t version, const void *iface);
    /* The provider's interface, or NULL when none is registered with at
     * least min_version. Hold it until service_release(). */
    const void *(*service_acquire)(pc_plugin_t *self, const char *name,
                                   uint32_t min_version);
    void (*service_release)(pc_plugin_t *self, const char *name);

    /* -- events */
    int (*event_subscribe)(pc_plugin_t *self, const char *topic,
                           pc_event_fn fn, void *arg);
    /* Any thread; the event is copied. */
    void (*event_publish)(pc_plugin_t *self, const pc_event_t *ev);

    /* -- loops and blocking work */
    /* The loop of the calling thread (a worker, or the main loop), or NULL
     * on a thread of your own. */
    pc_loop_t *(*loop_current)(void);
    /* The main loop: where plugins run their own listeners and timers. */
    pc_loop_t *(*loop_main)(void);
    /* The libuv loop behind a pc_loop_t (plugins may link libuv). */
    void *(*loop_uv)(pc_loop_t *loop);
    /* Runs fn(arg) on loop's thread soon; callable from any thread.
     * Returns 0, or -1 when the loop is gone (fn will not run). */
    int (*loop_post)(pc_loop_t *loop, void (*fn)(void *arg), void *arg);
    /* Runs work(arg) on the host's worker pool (blocking allowed), then
     * done(arg) on the calling loop. Returns 0 or -1. */
    int (*work_queue)(pc_loop_t *loop, void (*work)(void *arg),
                      void (*done)(void *arg), void *arg);

    /* -- metrics: counters shown by the stats endpoint and `portcullis ctl
     * stats`, named "<plugin>_<name>" */
    int (*metric_add)(pc_plugin_t *self, const char *name, int64_t delta);
    int (*metric_set)(pc_plugin_t *self, const char *name, int64_t value);

    /* -- control commands (register from init; main thread) */
    /* Adds `portcullis ctl name ...`; usage is one line for `ctl help`.
     * Returns 0, or -1 when the name is taken. */
    int (*ctl_register)(pc_plugin_t *self, const char *name, const char *usage,
                        pc_ctl_fn fn);
    /* One line of the answer (no newline needed; control bytes escaped). */
    void (*ctl_reply)(pc_ctl_t *ctl, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

    /* -- more transaction details */
    /* The upstream address being tried or used (UPSTREAM_ADDR and later),
     * or NULL. */
    const struct sockaddr *(*txn_upstream_addr)(pc_txn_t *txn);

    /* -- more connection details */
    /* A note on the connection, as txn_note() is on a transaction: every
     * transaction of the connection starts with its notes, so they reach
     * the access log and the block page. With conn_block() at ACCEPT this
     * is how a block page of a refused connection gets its details, e.g.
     * ("until", "2026-05-01 14:00:00 UTC") shown as {{until}}. Copied. On
     * the connection's thread only (ACCEPT, or a hook of one of its
     * transactions). */
    void (*conn_note)(pc_conn_t *conn, const char *name, const char *value);

    /* -- TLS interception */
    /* Asks for a tunnel to be intercepted (on 1: decrypted, its requests
     * going through the hooks as https URLs) or spliced (on 0: left
     * encrypted), e.g. by the site's category. Only from a CONNECT or
     * TLS_SNI hook of that tunnel; the last call wins. It overrides the
     * client's policy and the intercept directive, but not the
     * no_intercept list, and interception needs a loaded CA (intercept on
     * globally or in some policy). Returns 0, or -1 outside those hooks.
     * Test with PC_HOST_HAS(host, txn_intercept) first. */
    int (*txn_intercept)(pc_txn_t *txn, int on);

    /* -- body sizes */
    /* The length dir's body was announced with (Content-Length), once its
     * head is known; -1 when it comes chunked or close-delimited (or for
     * a response before its head). The host rewrites framing fields, so
     * plugins do not see Content-Length among the headers. */
    int64_t (*txn_body_length)(pc_txn_t *txn, int dir);
};

/* 1 when the running host has member m (for plugins built against a newer
 * minor than the host's). */
#define PC_HOST_HAS(host, m) \
    (offsetof(pc_host_t, m) + sizeof((host)->m) <= (host)->size)

#ifdef __cplusplus
}
#endif

#endif
