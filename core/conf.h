/* conf.h - the configuration: the parsed directive tree and the core settings. */
#ifndef PC_CONF_H
#define PC_CONF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "confval.h"
#include "netaddr.h"

/*
 * The file format (docs/portcullis.conf.5 describes it for admins):
 *
 *   # comment to end of line
 *   directive arg1 "arg 2" 'arg 3'       one directive per line
 *   name arg { child directives }         a block; '{' ends the line
 *   include PATH                           glob; relative to the including file
 *
 * A directive ends at the end of the line; a '\' as the last character joins
 * the next line. Double-quoted arguments understand \" \\ \n \t. '{' and '}'
 * are tokens of their own unless quoted.
 *
 * The details, decided (core/conf_parse.c implements them):
 *  - '#' starts a comment only where a token could start, so "a#b" and
 *    "http://x/#top" are words; a comment ends at the line end and a '\'
 *    before that does not continue it.
 *  - '\' + line end joins lines like a shell: inside a word it joins the
 *    word ("fo\<LF>o" is "foo"), between words it is a space. Elsewhere an
 *    unquoted '\' is literal. CRLF line ends are accepted.
 *  - In "...", an unknown escape keeps its backslash ("\d" stays "\d", so
 *    regular expressions need no doubling). '...' is entirely literal. A
 *    quoted string never spans a raw line end; a quote inside a word is
 *    literal ("it's"); after a closing quote comes a space, '{', '}', '#' or
 *    the line end ('"a"b' is an error).
 *  - '{' must be on the line of its directive (K&R style): '{' at the start
 *    of a line is "'{' without a directive name". Blocks nest 8 deep; text
 *    may follow '{' or '}' on the same line ("p x { a 1 }").
 *  - Any byte >= 0x80 is allowed (UTF-8 or not); NUL, other control
 *    characters than tab, and CR not before LF are errors anywhere, comments
 *    included. A line (without its CRLF/LF) holds at most 65536 bytes; a
 *    file at most 16 MiB and must be a regular file.
 *  - include PATH: a relative PATH is dirname(including file)/PATH and
 *    nodes carry that name. With '*', '?' or '[' it is a glob(3): sorted,
 *    dot files skipped, no match (even a missing directory) is fine; else the
 *    file must exist. Includes nest 16 deep; a file that includes itself
 *    through any chain is an error (device + inode, so symlinks count).
 *    Inside a block the included directives become children of the block;
 *    each file must balance its own braces. 'include' never reaches
 *    conf_core_build().
 *
 * Parser messages (after "FILE:LINE: "): "unterminated quote" (line of the
 * opening quote), "unexpected 'x' after closing quote", "'}' without
 * matching '{'", "'{' without matching '}'" (line of the '{'), "'{' without a
 * directive name", "blocks nested too deeply (max 8)", "empty directive
 * name", "NUL byte", "control character 0x01", "line too long (more than
 * 65536 bytes)", "'include' takes 1 argument", "'include' takes no block",
 * "include: cannot open 'PATH': No such file or directory", "include: 'PATH'
 * is not a regular file", "include: cannot read 'PATTERN'", "include: cycle:
 * 'PATH' is already being read", "include: nested too deeply (max 16)". For
 * the main file: "FILE: cannot open: No such file or directory", "FILE: not
 * a regular file".
 *
 * Parsing is two steps: conf_tree_load() turns files into a tree of nodes
 * (syntax only), then conf_core_build() applies the core directive table to
 * the top level and leaves plugin blocks for the plugin loader. Every error
 * is reported as "FILE:LINE: message". No global state: a reload may parse
 * on a worker thread while the loop thread reads the old snapshot.
 */

typedef struct conf_node conf_node_t;
struct conf_node {
    const char *name;    /* directive name */
    int argc;            /* arguments, not counting the block */
    char **argv;         /* argc unquoted arguments, NULL-terminated */
    conf_node_t *child;  /* first directive inside '{ }', or NULL */
    conf_node_t *next;   /* next directive at the same level */
    const char *file;    /* file the directive came from */
    int line;            /* line of the directive name */
    int has_block;       /* 1 when '{ ... }' followed, even if empty */
};

/* Owns every node and string of one parse. */
typedef struct conf_tree conf_tree_t;

/* Loads PATH and its includes. Returns the tree, or NULL with a
 * "FILE:LINE: message" (or "FILE: message") in err. The caller frees the
 * tree with conf_tree_free(). */
conf_tree_t *conf_tree_load(const char *path, char *err, size_t errlen);

/* Parses a configuration held in memory (for tests and fuzzing); name is the
 * file name used in messages and as the base of relative includes. */
conf_tree_t *conf_tree_parse(const char *name, const char *text, size_t len,
                             char *err, size_t errlen);

/* The root is a synthetic node: name "", no arguments, has_block 1, file the
 * main file, line 0; its children are the top-level directives in file
 * order, with included files spliced in where the include stood. */
conf_node_t *conf_tree_root(conf_tree_t *tree);
void conf_tree_free(conf_tree_t *tree);

/* Returns a path for argument arg of node: arg itself when absolute, else
 * dirname(node->file)/arg, so relative paths in a directive resolve against
 * the directory of the file that holds the directive (arg unchanged when
 * that file name has no '/'). The caller frees the result; NULL when out of
 * memory. */
char *conf_path_resolve(const conf_node_t *node, const char *arg);

/* The value parsers shared by core and plugin directive setters
 * (conf_parse_size, conf_parse_duration, conf_parse_flag, conf_parse_int)
 * live in lib/confval.h, included above, so plugins get them from libpcutil. */

/* ---- the core settings --------------------------------------------------- */

enum conf_log_format { CONF_LOG_SQUID, CONF_LOG_JSON };

typedef struct conf_access_log {
    char *path;
    enum conf_log_format format;
} conf_access_log_t;

enum conf_log_level {
    CONF_LOG_EMERG,
    CONF_LOG_ALERT,
    CONF_LOG_CRIT,
    CONF_LOG_ERR,
    CONF_LOG_WARN,
    CONF_LOG_NOTICE,
    CONF_LOG_INFO,
    CONF_LOG_DEBUG
};

enum conf_forwarded_for { CONF_XFF_OFF, CONF_XFF_ON, CONF_XFF_DELETE };

/* A list of words from repeatable directives. */
typedef struct conf_strlist {
    char **v;
    int n;
} conf_strlist_t;

typedef struct conf_port_range {
    uint16_t lo, hi;
} conf_port_range_t;

/* policy NAME { clients CIDR...; intercept on|off }: settings for the
 * clients of some networks. A client gets the first policy (in file order)
 * whose clients hold its address; a setting a policy leaves out comes from
 * the global directive. */
typedef struct conf_policy {
    char *name;
    netaddr_set_t *clients;
    int intercept;         /* 1 on, 0 off, -1 not set (the global intercept) */
    const char *file;      /* where the block is (the tree's strings) */
    int line;
} conf_policy_t;

/* One immutable snapshot of the whole configuration. A transaction keeps a
 * reference to the snapshot it started with; a reload builds a new one. */
typedef struct conf {
    atomic_uint refs;      /* atomically counted; conf_ref/conf_unref */
    char *path;            /* the main file */
    conf_tree_t *tree;     /* kept: plugin blocks point into it */

    netaddr_port_t *listen;   /* listen ADDR:PORT ... */
    int nlisten;
    netaddr_set_t *allow_clients;  /* allow_clients CIDR ... (default: loopback) */
    conf_port_range_t *connect_ports;  /* connect_ports 443 8443 1000-2000 */
    int nconnect_ports;
    int allow_local_upstreams;     /* allow_local_upstreams on|off (off) */
    int splice;                    /* splice on|off (on): relay tunnels and
                                    * plain bodies with splice(2) */

    conf_access_log_t *access_logs;  /* access_log PATH [squid|json] | off */
    int naccess_logs;
    char *error_log;                 /* error_log PATH|stderr [LEVEL]: "stderr" or a path */
    enum conf_log_level error_log_level;

    char *plugin_dir;              /* plugin_dir DIR (PLUGINDIR) */
    char *control_socket;          /* control_socket PATH (none when unset) */
    char *block_page;              /* block_page FILE (etc/blockpage.html); NULL: built-in */
    char *user;                    /* user NAME [GROUP]; NULL: do not switch */
    char *group;                   /* NULL: the user's primary group */
    char *pid_file;                /* pid_file PATH; NULL: none */
    char *visible_hostname;        /* visible_hostname NAME (Via); default hostname */
    enum conf_forwarded_for forwarded_for;  /* forwarded_for on|off|delete (off) */

    /* timeouts, milliseconds */
    uint64_t connect_timeout;        /* connect_timeout 30s */
    uint64_t client_header_timeout;  /* client_header_timeout 30s */
    uint64_t client_idle_timeout;    /* client_idle_timeout 2m */
    uint64_t read_timeout;           /* read_timeout 5m: upstream silence, client body */
    uint64_t send_timeout;           /* send_timeout 1m: client not reading */
    uint64_t tunnel_idle_timeout;    /* tunnel_idle_timeout 15m */
    uint64_t upstream_idle_timeout;  /* upstream_idle_timeout 1m: pooled connections */
    uint64_t drain_timeout;          /* drain_timeout 30s: graceful stop */
    uint64_t dns_ttl;                /* dns_ttl 5m */
    uint64_t dns_negative_ttl;       /* dns_negative_ttl 30s */

    /* limits */
    long max_connections;            /* max_connections 4096 */
    long max_connections_per_client; /* max_connections_per_client 256 */
    uint64_t max_header_size;        /* max_header_size 64k */
    long upstream_pool_size;         /* upstream_pool_size 1024 idle in all */
    long upstream_pool_per_host;     /* upstream_pool_per_host 128 */
    long workers;                    /* workers N (0 = one per core) */

    /* the proxy auto-config file (/wpad.dat, /proxy.pac; pac.c) */
    conf_strlist_t pac_proxy;            /* pac_proxy HOST:PORT...: default the
                                          * address the client reached */
    conf_strlist_t pac_bypass_networks;  /* pac_bypass_networks CIDR... */
    int pac_bypass_networks_given;       /* else: RFC 1918, loopback, link-local */
    conf_strlist_t pac_bypass_domains;   /* pac_bypass_domains DOMAIN... */
    int pac_direct_fallback;             /* pac_direct_fallback on|off (off) */

    /* bodies held for plugins (txn_body.c) */
    uint64_t body_memory_limit;      /* body_memory_limit 1M: then spool */
    char *spool_dir;                 /* spool_dir /var/tmp */
    uint64_t spool_max;              /* spool_max 1G: the largest held body */
    uint64_t hold_trickle_after;     /* hold_trickle_after 10s (0: never) */
    uint64_t hold_trickle_interval;  /* hold_trickle_interval 5s */
    uint64_t hold_trickle_bytes;     /* hold_trickle_bytes 1k per interval */
    uint64_t hold_trickle_keep;      /* hold_trickle_keep 64k never sent early */
    uint64_t defer_timeout;          /* defer_timeout 60s: a plugin's deferral
                                        without a timeout of its own */

    /* TLS interception (docs/https.md). The core only parses these;
     * tls_conf_check() (core/tls_conf.c) checks the files at load. */
    int intercept;                   /* intercept on|off (off) */
    char *ca_dir;                    /* ca_dir DIR (LOCALSTATEDIR/lib/portcullis/ca):
                                      * ca.crt and ca.key of the local CA */
    char *upstream_ca_file;          /* upstream_ca_file FILE: extra CAs trusted
                                      * upstream; NULL: the system store only */
    char *no_intercept;              /* no_intercept FILE: domains never
                                      * intercepted; NULL: none */
    conf_policy_t *policies;         /* policy NAME { ... }, in file order */
    int npolicies;
    uint64_t tls_peek_timeout;       /* tls_peek_timeout 10s: the ClientHello
                                      * after "200 Connection established" */
    int sni_mismatch_allow;          /* sni_mismatch block|allow (block) */
    conf_port_range_t *require_tls_ports;  /* connect_require_tls PORTS|off (443) */
    int nrequire_tls_ports;
    int upstream_cert_refuse;        /* upstream_cert_error page|refuse (page) */

    /* Filled after the directives, not from them (see server.c). */
    netaddr_set_t *own_addrs;        /* the server's interface addresses */
    char *block_page_text;           /* the block page template, read */
    void *plugins;                   /* plugin set: per plugin its conf */
    void (*plugins_free)(void *plugins);  /* frees it (any thread) */
    void *tls;                       /* TLS state: the CA, the upstream
                                      * SSL_CTX, the no_intercept set
                                      * (core/tls_policy.c), or NULL */
    void (*tls_free)(void *tls);     /* frees it (any thread) */
} conf_t;

/* 1 when some client may have its TLS intercepted: intercept on, globally
 * or in a policy (then the CA must load). */
int conf_intercept_wanted(const conf_t *conf);
/* The policy for a client address, or NULL. */
const conf_policy_t *conf_policy_for(const conf_t *conf, const netaddr_t *addr);

/* Builds a snapshot from a loaded tree; the snapshot owns the tree on
 * success, the caller still owns (and frees) it on failure. Returns NULL
 * with "FILE:LINE: message" in err. Plugin blocks are checked by the plugin
 * loader, not here: the core only insists on "plugin NAME { ... }" with one
 * name of [A-Za-z0-9_-] (not starting with '-') and no name twice.
 *
 * Messages (after "FILE:LINE: "):
 *   "unknown directive 'X'"
 *   "'X' takes 1 argument" / "takes 1 or 2 arguments" / "takes at least 1
 *   argument"
 *   "'X' takes no block", "'plugin' needs a block"
 *   "'X' is duplicate (first at FILE:LINE)"      (non-repeatable directives)
 *   "X: MESSAGE" for a bad value, MESSAGE from the value parser, e.g.
 *   "listen: invalid port '0'", "workers: '300' is out of range (0..256)",
 *   "connect_timeout: '0' is too short (at least 1ms)",
 *   "listen: '127.0.0.1:3128' is duplicate (first at FILE:LINE)",
 *   "listen: '10.0.0.1:3128' overlaps '*:3128' (FILE:LINE)",
 *   "plugin: 'urlcat' is duplicate (first at FILE:LINE)".
 * Repeatable, accumulating: listen, allow_clients, connect_ports (the first
 * replaces the default 443), access_log, plugin. "access_log off" cannot be
 * combined with other access_log lines. Relative paths resolve with
 * conf_path_resolve(). The timeouts other than drain_timeout, dns_ttl and
 * dns_negative_ttl must be at least 1ms. */
conf_t *conf_core_build(conf_tree_t *tree, const char *path, char *err,
                        size_t errlen);

/* Loads PATH completely (tree + core settings). */
conf_t *conf_load(const char *path, char *err, size_t errlen);

/* Takes one more reference; returns conf. Thread-safe. */
conf_t *conf_ref(conf_t *conf);
/* Drops a reference; the last one frees the snapshot and its tree.
 * Thread-safe; NULL is a no-op. */
void conf_unref(conf_t *conf);

#endif
