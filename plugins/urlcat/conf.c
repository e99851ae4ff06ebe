/* conf.c - urlcat's configuration: the directive tables, defaults, validation and the first list load. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "lists.h"
#include "urlcat.h"

/*
 *     plugin urlcat {
 *         lists            /var/lib/portcullis/lists     # UT1/squidGuard tree
 *         domain_list      /etc/portcullis/ads.txt  ads  # e2guardian-style
 *         url_list         FILE [CATEGORY]
 *         expression_list  FILE [CATEGORY]
 *         block            malware phishing adult
 *         allow            /etc/portcullis/urlcat-allow.txt
 *         allow_category   liste_blanche
 *         log_only         off
 *         expressions_caseless on
 *         poll_interval    60s
 *         list_errors      fail
 *         policy staff {
 *             clients      10.1.0.0/16
 *             block        malware phishing
 *             allow        /etc/portcullis/staff-allow.txt
 *         }
 *     }
 *
 * The top-level block, allow_category and log_only make the default policy
 * (clients that no policy block names); top-level allow lists and
 * allow_category are exceptions for every policy.
 */

static const uint64_t poll_default_ms = 60000;

static char *lowered(const char *s)
{
    char *d = strdup(s);

    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    return d;
}

static int add_source(uc_conf_t *c, enum uc_src_kind kind,
                      const pc_directive_args_t *a, const char *path_arg,
                      const char *category, char *err, size_t errlen)
{
    uc_source_t *s = realloc(c->src, (size_t)(c->nsrc + 1) * sizeof(*s));

    if (s == NULL)
        goto oom;
    c->src = s;
    s = &c->src[c->nsrc];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->line = a->line;
    s->path = host->conf_path(a, path_arg);
    s->file = strdup(a->file);
    s->category = category ? lowered(category) : NULL;
    if (s->path == NULL || s->file == NULL || (category && s->category == NULL)) {
        free(s->path);
        free(s->file);
        free(s->category);
        goto oom;
    }
    if (category && (s->category[0] == '\0' || strncmp(s->category, "allow:", 6) == 0)) {
        snprintf(err, errlen, "invalid category name '%s'", category);
        free(s->path);
        free(s->file);
        free(s->category);
        return -1;
    }
    c->nsrc++;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int add_names(uc_name_t **v, int *n, const pc_directive_args_t *a,
                     char *err, size_t errlen)
{
    uc_name_t *nv = realloc(*v, (size_t)(*n + a->argc) * sizeof(*nv));

    if (nv == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *v = nv;
    for (int i = 0; i < a->argc; i++) {
        nv[*n].name = lowered(a->argv[i]);
        nv[*n].file = strdup(a->file);
        nv[*n].line = a->line;
        if (nv[*n].name == NULL || nv[*n].file == NULL) {
            free(nv[*n].name);
            free(nv[*n].file);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static int add_allow_files(uc_conf_t *c, int pol, const pc_directive_args_t *a,
                           char *err, size_t errlen)
{
    for (int i = 0; i < a->argc; i++) {
        uc_policy_t *p;
        int *v;
        if (add_source(c, UC_SRC_ALLOW, a, a->argv[i], NULL, err, errlen) < 0)
            return -1;
        p = &c->pol[pol];
        v = realloc(p->allow_src, (size_t)(p->nallow_src + 1) * sizeof(*v));
        if (v == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        p->allow_src = v;
        v[p->nallow_src++] = c->nsrc - 1;
    }
    return 0;
}

/* ---- top-level directives ------------------------------------------------ */

static int set_lists(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                     char *err, size_t errlen)
{
    (void)self;
    return add_source(obj, UC_SRC_TREE, a, a->argv[0], NULL, err, errlen);
}

static int set_list_file(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                         char *err, size_t errlen)
{
    enum uc_src_kind kind = UC_SRC_DOMAINS;

    (void)self;
    if (strcmp(a->name, "url_list") == 0)
        kind = UC_SRC_URLS;
    else if (strcmp(a->name, "expression_list") == 0)
        kind = UC_SRC_EXPRESSIONS;
    return add_source(obj, kind, a, a->argv[0], a->argc > 1 ? a->argv[1] : NULL,
                      err, errlen);
}

static int set_block(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                     char *err, size_t errlen)
{
    uc_conf_t *c = obj;

    (void)self;
    return add_names(&c->pol[0].block, &c->pol[0].nblock, a, err, errlen);
}

static int set_allow_category(pc_plugin_t *self, void *obj,
                              const pc_directive_args_t *a, char *err, size_t errlen)
{
    uc_conf_t *c = obj;

    (void)self;
    return add_names(&c->pol[0].allow_cat, &c->pol[0].nallow_cat, a, err, errlen);
}

static int set_allow(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                     char *err, size_t errlen)
{
    (void)self;
    return add_allow_files(obj, 0, a, err, errlen);
}

/* ---- policy blocks ------------------------------------------------------- */

/* What the directives of one policy block write into. */
typedef struct policy_ctx {
    uc_conf_t *conf;
    int pol;
} policy_ctx_t;

static int pol_clients(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                       char *err, size_t errlen)
{
    policy_ctx_t *x = obj;
    uc_policy_t *p = &x->conf->pol[x->pol];

    (void)self;
    for (int i = 0; i < a->argc; i++)
        if (netaddr_set_add_text(p->clients, a->argv[i], err, errlen) < 0)
            return -1;
    return 0;
}

static int pol_block(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                     char *err, size_t errlen)
{
    policy_ctx_t *x = obj;
    uc_policy_t *p = &x->conf->pol[x->pol];

    (void)self;
    return add_names(&p->block, &p->nblock, a, err, errlen);
}

static int pol_allow_category(pc_plugin_t *self, void *obj,
                              const pc_directive_args_t *a, char *err, size_t errlen)
{
    policy_ctx_t *x = obj;
    uc_policy_t *p = &x->conf->pol[x->pol];

    (void)self;
    return add_names(&p->allow_cat, &p->nallow_cat, a, err, errlen);
}

static int pol_allow(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                     char *err, size_t errlen)
{
    policy_ctx_t *x = obj;

    (void)self;
    return add_allow_files(x->conf, x->pol, a, err, errlen);
}

static int pol_log_only(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                        char *err, size_t errlen)
{
    policy_ctx_t *x = obj;

    (void)self;
    return host->parse_flag(a->argv[0], &x->conf->pol[x->pol].log_only, err, errlen);
}

static const pc_directive_t policy_directives[] = {
    {"clients", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, pol_clients},
    {"block", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, pol_block},
    {"allow", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, pol_allow},
    {"allow_category", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL,
     pol_allow_category},
    {"log_only", 1, 1, 0, PC_DIR_CUSTOM, 0, NULL, pol_log_only},
    PC_DIRECTIVE_END,
};

static int set_policy(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                      char *err, size_t errlen)
{
    uc_conf_t *c = obj;
    uc_policy_t *p;
    policy_ctx_t x;

    for (int i = 0; i < c->npol; i++) {
        if (strcmp(c->pol[i].name, a->argv[0]) == 0) {
            snprintf(err, errlen, "policy '%s' is already defined at %s:%d",
                     a->argv[0], c->pol[i].file, c->pol[i].line);
            return -1;
        }
    }
    p = realloc(c->pol, (size_t)(c->npol + 1) * sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->pol = p;
    p = &c->pol[c->npol];
    memset(p, 0, sizeof(*p));
    p->log_only = -1;
    p->name = strdup(a->argv[0]);
    p->file = strdup(a->file);
    p->line = a->line;
    p->clients = netaddr_set_new();
    c->npol++;
    if (p->name == NULL || p->file == NULL || p->clients == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    x.conf = c;
    x.pol = c->npol - 1;
    if (host->conf_apply(self, &x, a->block, policy_directives, err, errlen) < 0)
        return -1;
    if (netaddr_set_count(c->pol[x.pol].clients) == 0) {
        snprintf(err, errlen, "policy '%s' needs a 'clients' line", a->argv[0]);
        return -1;
    }
    return 0;
}

static const char *const list_errors_names[] = {"fail", "warn", NULL};

const pc_directive_t uc_directives[] = {
    {"lists", 1, 1, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_lists},
    {"domain_list", 1, 2, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_list_file},
    {"url_list", 1, 2, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_list_file},
    {"expression_list", 1, 2, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_list_file},
    {"block", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_block},
    {"allow", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_allow},
    {"allow_category", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL,
     set_allow_category},
    {"log_only", 1, 1, 0, PC_DIR_FLAG, offsetof(uc_conf_t, log_only), NULL, NULL},
    {"expressions_caseless", 1, 1, 0, PC_DIR_FLAG, offsetof(uc_conf_t, caseless),
     NULL, NULL},
    {"poll_interval", 1, 1, 0, PC_DIR_DURATION, offsetof(uc_conf_t, poll_ms), NULL,
     NULL},
    {"list_errors", 1, 1, 0, PC_DIR_ENUM, offsetof(uc_conf_t, list_errors),
     list_errors_names, NULL},
    {"policy", 1, 1, PC_DIR_REPEAT | PC_DIR_BLOCK, PC_DIR_CUSTOM, 0, NULL, set_policy},
    PC_DIRECTIVE_END,
};

/* ---- life cycle ---------------------------------------------------------- */

void *uc_conf_create(pc_plugin_t *self)
{
    uc_conf_t *c = calloc(1, sizeof(*c));

    (void)self;
    if (c == NULL)
        return NULL;
    atomic_init(&c->refs, 1);
    c->caseless = 1;
    c->poll_ms = poll_default_ms;
    c->list_errors = UC_ERRORS_FAIL;
    c->pol = calloc(1, sizeof(*c->pol));
    if (c->pol == NULL || (c->pol[0].name = strdup("default")) == NULL) {
        free(c->pol);
        free(c);
        return NULL;
    }
    c->pol[0].log_only = -1;
    c->npol = 1;
    return c;
}

static void warn_line(void *arg, const char *msg)
{
    host->log(arg, PC_LOG_WARN, "%s (line skipped: list_errors warn)", msg);
}

int uc_conf_finish(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    uc_conf_t *c = obj;
    pthread_rwlockattr_t ra;
    char summary[512];

    if (c->nsrc == 0) {
        snprintf(err, errlen, "no lists: give 'lists DIR' (a UT1/squidGuard tree), "
                 "domain_list, url_list, expression_list or allow");
        return -1;
    }
    if (c->poll_ms > 0 && c->poll_ms < 1000) {
        snprintf(err, errlen, "poll_interval must be 0 (off) or at least 1s");
        return -1;
    }
    c->pol[0].log_only = c->log_only;
    for (int i = 1; i < c->npol; i++) {
        if (c->pol[i].log_only < 0)
            c->pol[i].log_only = c->log_only;
        if (netaddr_set_finish(c->pol[i].clients) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    /* Writers first: a list swap must not wait behind a stream of lookups. */
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&c->lock, &ra) != 0) {
        pthread_rwlockattr_destroy(&ra);
        snprintf(err, errlen, "cannot create a lock");
        return -1;
    }
    pthread_rwlockattr_destroy(&ra);
    c->lock_ready = 1;
    c->cur = uc_lists_load(c, warn_line, self, err, errlen);
    if (c->cur == NULL)
        return -1;
    uc_lists_summary(c->cur, summary, sizeof(summary));
    host->log(self, PC_LOG_INFO, "%s", summary);
    return 0;
}

uc_conf_t *uc_conf_ref(uc_conf_t *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

static void names_free(uc_name_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].file);
    }
    free(v);
}

static void conf_destroy(void *arg)
{
    uc_conf_t *c = arg;

    uc_lists_free(c->cur);
    if (c->lock_ready)
        pthread_rwlock_destroy(&c->lock);
    for (int i = 0; i < c->nsrc; i++) {
        free(c->src[i].path);
        free(c->src[i].category);
        free(c->src[i].file);
    }
    free(c->src);
    for (int i = 0; i < c->npol; i++) {
        uc_policy_t *p = &c->pol[i];
        free(p->name);
        free(p->file);
        netaddr_set_free(p->clients);
        names_free(p->block, p->nblock);
        names_free(p->allow_cat, p->nallow_cat);
        free(p->allow_src);
    }
    free(c->pol);
    free(c);
}

void uc_conf_unref(uc_conf_t *c)
{
    pc_loop_t *cur, *main_loop;

    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    /* Freeing millions of entries takes milliseconds: not on a worker. */
    cur = host->loop_current();
    main_loop = host->loop_main();
    if (cur != NULL && cur != main_loop && host->loop_post(main_loop, conf_destroy, c) == 0)
        return;
    conf_destroy(c);
}

void uc_conf_free(pc_plugin_t *self, void *obj)
{
    (void)self;
    uc_conf_unref(obj);
}
