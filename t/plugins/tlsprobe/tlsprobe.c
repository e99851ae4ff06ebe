/* tlsprobe.c - the HTTPS test plugin: records what the CONNECT, TLS_SNI and request hooks see; blocks, defers and chooses interception by host. */
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <portcullis/plugin.h>

/*
 *     plugin tlsprobe {
 *         trail           FILE        one line per hook call (below)
 *         connect_block   PATTERN...  CONNECT: block hosts (shell patterns)
 *         sni_block       PATTERN...  TLS_SNI: block by SNI
 *         path_block      PATTERN...  REQUEST_HEADERS: block by path
 *         intercept       PATTERN...  CONNECT/TLS_SNI: txn_intercept(1) for
 *                                     the host or SNI
 *         splice          PATTERN...  CONNECT/TLS_SNI: txn_intercept(0)
 *         sni_defer       MS          TLS_SNI defers; the host pool resumes
 *                                     with CONTINUE after MS
 *     }
 *
 * Trail lines: "connect host=H port=P", "sni host=H sni=S|- vote=R" (R the
 * txn_intercept() result, or "none"), "request method=M url=U scheme=S
 * sni=S|-".
 */

PC_PLUGIN_HOST_DEFINE;
#define host pc_plugin_host_

typedef struct probe_conf {
    char *trail;
    char **pat[5];   /* connect_block, sni_block, path_block, intercept, splice */
    int npat[5];
    uint64_t sni_defer;
} probe_conf_t;

enum { P_CONNECT, P_SNI, P_PATH, P_INTERCEPT, P_SPLICE };

static pthread_mutex_t trail_lock = PTHREAD_MUTEX_INITIALIZER;

static void trail(const probe_conf_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void trail(const probe_conf_t *c, const char *fmt, ...)
{
    va_list ap;
    FILE *f;

    if (c->trail == NULL)
        return;
    pthread_mutex_lock(&trail_lock);
    f = fopen(c->trail, "a");
    if (f) {
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
        fclose(f);
    }
    pthread_mutex_unlock(&trail_lock);
}

static int set_list(pc_plugin_t *self, void *obj, const pc_directive_args_t *a, char *err,
                    size_t errlen)
{
    static const char *const names[] = {"connect_block", "sni_block", "path_block",
                                        "intercept", "splice"};
    probe_conf_t *c = obj;
    int k;

    (void)self;
    for (k = 0; k < 5 && strcmp(names[k], a->name) != 0; k++)
        ;
    for (int i = 0; i < a->argc; i++) {
        char **v = realloc(c->pat[k], (size_t)(c->npat[k] + 1) * sizeof(*v));
        if (v == NULL || (v[c->npat[k]] = strdup(a->argv[i])) == NULL) {
            if (v)
                c->pat[k] = v;
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->pat[k] = v;
        c->npat[k]++;
    }
    return 0;
}

static const pc_directive_t probe_directives[] = {
    {"trail", 1, 1, 0, PC_DIR_PATH, offsetof(probe_conf_t, trail), NULL, NULL},
    {"connect_block", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_list},
    {"sni_block", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_list},
    {"path_block", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_list},
    {"intercept", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_list},
    {"splice", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_list},
    {"sni_defer", 1, 1, 0, PC_DIR_DURATION, offsetof(probe_conf_t, sni_defer), NULL, NULL},
    PC_DIRECTIVE_END,
};

static void *probe_conf_create(pc_plugin_t *self)
{
    (void)self;
    return calloc(1, sizeof(probe_conf_t));
}

static void probe_conf_free(pc_plugin_t *self, void *obj)
{
    probe_conf_t *c = obj;

    (void)self;
    for (int k = 0; k < 5; k++) {
        for (int i = 0; i < c->npat[k]; i++)
            free(c->pat[k][i]);
        free(c->pat[k]);
    }
    free(c->trail);
    free(c);
}

static int match(const probe_conf_t *c, int list, const char *s)
{
    for (int i = 0; s && i < c->npat[list]; i++)
        if (fnmatch(c->pat[list][i], s, 0) == 0)
            return 1;
    return 0;
}

/* txn_intercept() by the lists; returns what it answered, or "none". */
static const char *vote(const probe_conf_t *c, pc_txn_t *txn, const char *name)
{
    int rc;

    if (match(c, P_INTERCEPT, name))
        rc = host->txn_intercept(txn, 1);
    else if (match(c, P_SPLICE, name))
        rc = host->txn_intercept(txn, 0);
    else
        return "none";
    return rc == 0 ? "ok" : "refused";
}

static int on_connect(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const probe_conf_t *c = obj;
    const char *h = host->txn_host(txn);
    const char *v = vote(c, txn, h);

    trail(c, "connect host=%s port=%d vote=%s", h, host->txn_port(txn), v);
    if (match(c, P_CONNECT, h)) {
        host->txn_block(self, txn, 403, "tlsprobe connect_block", "testing");
        return PC_BLOCK;
    }
    return PC_CONTINUE;
}

typedef struct resume {
    pc_defer_t *token;
    uint64_t ms;
} resume_t;

static void resume_work(void *arg)
{
    resume_t *r = arg;
    struct timespec ts = {(time_t)(r->ms / 1000), (long)(r->ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static void resume_done(void *arg)
{
    resume_t *r = arg;

    host->defer_resume(r->token, PC_CONTINUE);
    free(r);
}

static int on_sni(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const probe_conf_t *c = obj;
    const char *sni = host->txn_sni(txn);
    const char *v = vote(c, txn, sni);

    trail(c, "sni host=%s sni=%s vote=%s", host->txn_host(txn), sni ? sni : "-", v);
    if (match(c, P_SNI, sni)) {
        host->txn_block(self, txn, 403, "tlsprobe sni_block", "testing");
        return PC_BLOCK;
    }
    if (c->sni_defer) {
        resume_t *r = calloc(1, sizeof(*r));
        if (r == NULL)
            return PC_CONTINUE;
        r->ms = c->sni_defer;
        r->token = host->txn_defer(self, txn, 0, PC_BLOCK, NULL, NULL);
        if (r->token == NULL ||
            host->work_queue(host->loop_current(), resume_work, resume_done, r) < 0) {
            free(r);
            return PC_CONTINUE;
        }
        return PC_DEFER;
    }
    return PC_CONTINUE;
}

static int on_request(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const probe_conf_t *c = obj;
    const char *sni = host->txn_sni(txn);

    trail(c, "request method=%s url=%s scheme=%s sni=%s", host->txn_method(txn),
          host->txn_url(txn), host->txn_scheme(txn), sni ? sni : "-");
    if (match(c, P_PATH, host->txn_path(txn))) {
        host->txn_block(self, txn, 403, "tlsprobe path_block", "testing");
        return PC_BLOCK;
    }
    return PC_CONTINUE;
}

static int probe_init(pc_plugin_t *self, void *conf, char *err, size_t errlen)
{
    (void)conf;
    if (!PC_HOST_HAS(host, txn_intercept)) {
        snprintf(err, errlen, "the host has no txn_intercept");
        return -1;
    }
    if (host->hook_txn(self, PC_HOOK_CONNECT, on_connect) < 0 ||
        host->hook_txn(self, PC_HOOK_TLS_SNI, on_sni) < 0 ||
        host->hook_txn(self, PC_HOOK_REQUEST_HEADERS, on_request) < 0) {
        snprintf(err, errlen, "cannot register hooks");
        return -1;
    }
    return 0;
}

static const pc_plugin_desc_t probe_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = "tlsprobe",
    .version = "1.0",
    .description = "HTTPS test probe: CONNECT, TLS_SNI and request hooks",
    .directives = probe_directives,
    .conf_create = probe_conf_create,
    .conf_free = probe_conf_free,
    .init = probe_init,
};

PC_PLUGIN(probe_desc)
