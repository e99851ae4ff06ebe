/* example.c - a small, complete plugin: block requests by host pattern or header. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <portcullis/plugin.h>

/*
 * The plugin every Portcullis plugin starts from (docs/plugin-guide.md
 * walks through it). Configuration:
 *
 *     plugin example {
 *         block_host    *.example.net ads.*      # shell patterns, any case
 *         block_header  User-Agent "*BadBot*"    # field name, value pattern
 *         reason        "not allowed here"       # shown on the block page
 *         category      testing                  # logged and shown
 *     }
 *
 * It blocks plain requests and CONNECT tunnels whose host matches a
 * block_host pattern, and requests with a header matching block_header.
 */

PC_PLUGIN_HOST_DEFINE;
#define HOST pc_plugin_host_  /* the host table; HOST, not host: a macro named
                                   * host would rename struct members too */

/* One configuration: built by the directives, read-only afterwards and
 * shared by every worker thread. */
typedef struct example_conf {
    char **hosts;        /* block_host patterns */
    int nhosts;
    char **headers;      /* block_header: name, pattern, name, pattern... */
    int nheaders;
    char *reason;        /* reason TEXT (typed directive: malloc()ed) */
    char *category;      /* category NAME */
} example_conf_t;

static int append(char ***arr, int *n, const char *s)
{
    char **a = realloc(*arr, (size_t)(*n + 1) * sizeof(*a));

    if (a == NULL)
        return -1;
    *arr = a;
    a[*n] = strdup(s);
    if (a[*n] == NULL)
        return -1;
    (*n)++;
    return 0;
}

/* block_host PATTERN... (may repeat): lowercased, since hosts are. */
static int set_block_host(pc_plugin_t *self, void *obj,
                          const pc_directive_args_t *a, char *err, size_t errlen)
{
    example_conf_t *conf = obj;

    (void)self;
    for (int i = 0; i < a->argc; i++) {
        if (append(&conf->hosts, &conf->nhosts, a->argv[i]) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (char *p = conf->hosts[conf->nhosts - 1]; *p; p++)
            *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    }
    return 0;
}

/* block_header NAME PATTERN (may repeat). */
static int set_block_header(pc_plugin_t *self, void *obj,
                            const pc_directive_args_t *a, char *err, size_t errlen)
{
    example_conf_t *conf = obj;

    (void)self;
    if (append(&conf->headers, &conf->nheaders, a->argv[0]) < 0 ||
        append(&conf->headers, &conf->nheaders, a->argv[1]) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The directive table: the host checks names, argument counts and
 * repetition, and reports errors as FILE:LINE for us. */
static const pc_directive_t example_directives[] = {
    {"block_host", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_block_host},
    {"block_header", 2, 2, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_block_header},
    {"reason", 1, 1, 0, PC_DIR_STRING, offsetof(example_conf_t, reason), NULL, NULL},
    {"category", 1, 1, 0, PC_DIR_STRING, offsetof(example_conf_t, category), NULL, NULL},
    PC_DIRECTIVE_END,
};

static void *example_conf_create(pc_plugin_t *self)
{
    (void)self;
    return calloc(1, sizeof(example_conf_t));
}

static int example_conf_finish(pc_plugin_t *self, void *obj, char *err,
                               size_t errlen)
{
    example_conf_t *conf = obj;

    (void)self;
    if (conf->nhosts == 0 && conf->nheaders == 0) {
        snprintf(err, errlen, "nothing to block: give block_host or block_header");
        return -1;
    }
    return 0;
}

static void example_conf_free(pc_plugin_t *self, void *obj)
{
    example_conf_t *conf = obj;

    (void)self;
    for (int i = 0; i < conf->nhosts; i++)
        free(conf->hosts[i]);
    for (int i = 0; i < conf->nheaders; i++)
        free(conf->headers[i]);
    free(conf->hosts);
    free(conf->headers);
    free(conf->reason);
    free(conf->category);
    free(conf);
}

static int block(pc_plugin_t *self, pc_txn_t *txn, const example_conf_t *conf,
                 const char *why)
{
    HOST->txn_block(self, txn, 403, conf->reason ? conf->reason : why,
                    conf->category);
    HOST->metric_add(self, "blocked", 1);
    return PC_BLOCK;
}

/* PC_HOOK_REQUEST_HEADERS and PC_HOOK_CONNECT: runs on a worker thread for
 * every request; must not block. */
static int example_check(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const example_conf_t *conf = obj;
    const char *h = HOST->txn_host(txn);

    for (int i = 0; i < conf->nhosts; i++)
        if (fnmatch(conf->hosts[i], h, 0) == 0)
            return block(self, txn, conf, "host is blocked");
    for (int i = 0; i < conf->nheaders; i += 2) {
        size_t len;
        const char *v = HOST->txn_header(txn, PC_REQUEST, conf->headers[i], &len);
        char value[1024];
        if (v == NULL || len >= sizeof(value))
            continue;
        memcpy(value, v, len);
        value[len] = '\0';
        if (fnmatch(conf->headers[i + 1], value, 0) == 0)
            return block(self, txn, conf, "request header is blocked");
    }
    return PC_CONTINUE;
}

static int example_init(pc_plugin_t *self, void *conf, char *err, size_t errlen)
{
    (void)conf;
    if (HOST->hook_txn(self, PC_HOOK_REQUEST_HEADERS, example_check) < 0 ||
        HOST->hook_txn(self, PC_HOOK_CONNECT, example_check) < 0) {
        snprintf(err, errlen, "cannot register hooks");
        return -1;
    }
    HOST->log(self, PC_LOG_INFO, "ready");
    return 0;
}

static const pc_plugin_desc_t example_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "example",
    .version = "1.0",
    .description = "blocks requests by host pattern or request header",
    .directives = example_directives,
    .conf_create = example_conf_create,
    .conf_finish = example_conf_finish,
    .conf_free = example_conf_free,
    .init = example_init,
};

PC_PLUGIN(example_desc)
