/* plugin_load.c - loading plugins, checking their ABI, building their configuration. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "plugin_host.h"

/* Every plugin ever loaded by this process (main thread only). */
static pc_plugin_t *registry;
static unsigned nregistry;
static unsigned ninited;      /* init() calls that succeeded */

/* The smallest descriptor this host understands: ABI 1.0's, which ends
 * with shutdown. Fixed here, not sizeof(), which grows with the minor: a
 * plugin built against 1.0 must still load when the struct has grown. */
#define DESC_SIZE_1_0                                                          \
    (offsetof(pc_plugin_desc_t, shutdown) + sizeof(((pc_plugin_desc_t *)0)->shutdown))

static const plugin_set_t empty_set;

const plugin_set_t *plugin_set_of(const conf_t *conf)
{
    return conf->plugins ? conf->plugins : &empty_set;
}

unsigned plugin_slot_count(void)
{
    return nregistry;
}

static pc_plugin_t *registry_find(const char *name)
{
    for (pc_plugin_t *p = registry; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static int file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* NAME.so in dir, or NAME/NAME.so (the layout of the build tree). */
static int find_plugin_file(const char *dir, const char *name, char *out,
                            size_t len)
{
    snprintf(out, len, "%s/%s.so", dir, name);
    if (file_exists(out))
        return 0;
    snprintf(out, len, "%s/%s/%s.so", dir, name, name);
    if (file_exists(out))
        return 0;
    snprintf(out, len, "%s/%s.so", dir, name);
    return -1;
}

/* Validates what a descriptor says before anything of it is used. */
static int check_desc(const pc_plugin_desc_t *d, const char *name,
                      const char *path, char *err, size_t errlen)
{
    if (d == NULL) {
        snprintf(err, errlen, "plugin '%s' (%s): the entry function returned no "
                 "descriptor", name, path);
        return -1;
    }
    if (d->abi_major != PC_ABI_MAJOR || d->abi_minor > PC_ABI_MINOR) {
        snprintf(err, errlen, "plugin '%s' (%s) was built for plugin ABI %u.%u; "
                 "this portcullis provides ABI %d.%d", name, path,
                 d->abi_major, d->abi_minor, PC_ABI_MAJOR, PC_ABI_MINOR);
        return -1;
    }
    if (d->size < DESC_SIZE_1_0) {
        snprintf(err, errlen, "plugin '%s' (%s): descriptor size %u is smaller "
                 "than ABI %u.%u's %zu", name, path, d->size, d->abi_major,
                 d->abi_minor, DESC_SIZE_1_0);
        return -1;
    }
    if (d->name == NULL || strcmp(d->name, name) != 0) {
        snprintf(err, errlen, "plugin '%s' (%s): the descriptor names it '%s'",
                 name, path, d->name ? d->name : "(null)");
        return -1;
    }
    if (d->directives && d->conf_create == NULL) {
        snprintf(err, errlen, "plugin '%s' (%s): it has directives but no "
                 "conf_create", name, path);
        return -1;
    }
    for (const pc_directive_t *dir = d->directives; dir && dir->name; dir++) {
        if (dir->type == PC_DIR_CUSTOM && dir->set == NULL) {
            snprintf(err, errlen, "plugin '%s' (%s): directive '%s' has no setter",
                     name, path, dir->name);
            return -1;
        }
        if (dir->type > PC_DIR_ENUM || (dir->type == PC_DIR_ENUM && dir->data == NULL)) {
            snprintf(err, errlen, "plugin '%s' (%s): directive '%s' has a bad type",
                     name, path, dir->name);
            return -1;
        }
    }
    return 0;
}

/* Loads NAME from dir into the registry. Returns it, or NULL with err. */
static pc_plugin_t *plugin_load(const char *dir, const char *name, char *err,
                                size_t errlen)
{
    char path[PATH_MAX];
    const pc_plugin_desc_t *(*entry)(const pc_host_t *);
    const pc_plugin_desc_t *desc;
    pc_plugin_t *p;
    void *dl;

    if (find_plugin_file(dir, name, path, sizeof(path)) < 0) {
        snprintf(err, errlen, "plugin '%s': %s not found (plugin_dir %s)", name,
                 path, dir);
        return NULL;
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        snprintf(err, errlen, "plugin '%s': cannot load %s: %s", name, path,
                 dlerror());
        return NULL;
    }
    *(void **)&entry = dlsym(dl, PC_ENTRY_SYMBOL);
    if (entry == NULL) {
        /* Say which ABI it was built for, when it is another major. */
        for (int major = 0; major < 16; major++) {
            char sym[64];
            if (major == PC_ABI_MAJOR)
                continue;
            snprintf(sym, sizeof(sym), "portcullis_plugin_abi_%d", major);
            if (dlsym(dl, sym)) {
                snprintf(err, errlen, "plugin '%s' (%s) was built for plugin ABI "
                         "%d.x; this portcullis provides ABI %d.%d", name, path,
                         major, PC_ABI_MAJOR, PC_ABI_MINOR);
                dlclose(dl);
                return NULL;
            }
        }
        snprintf(err, errlen, "plugin '%s' (%s) is not a portcullis plugin: no "
                 "symbol %s (this portcullis provides ABI %d.%d)", name, path,
                 PC_ENTRY_SYMBOL, PC_ABI_MAJOR, PC_ABI_MINOR);
        dlclose(dl);
        return NULL;
    }
    desc = entry(&plugin_host_table);
    if (check_desc(desc, name, path, err, errlen) < 0) {
        dlclose(dl);
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->name = strdup(name)) == NULL ||
        (p->path = strdup(path)) == NULL) {
        if (p)
            free(p->name);
        free(p);
        dlclose(dl);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->dl = dl;
    p->desc = desc;
    p->slot = nregistry++;
    /* Append: the registry keeps load order. */
    {
        pc_plugin_t **pp = &registry;
        while (*pp)
            pp = &(*pp)->next;
        *pp = p;
    }
    log_debug(0, "loaded plugin %s %s from %s (ABI %u.%u)", name,
             desc->version ? desc->version : "", path, desc->abi_major,
             desc->abi_minor);
    return p;
}

/* ---- applying directive tables ------------------------------------------ */

static const pc_directive_t *table_find(const pc_directive_t *t, const char *name,
                                        int *index)
{
    for (int i = 0; t && t[i].name; i++) {
        if (strcmp(t[i].name, name) == 0) {
            *index = i;
            return &t[i];
        }
    }
    return NULL;
}

/* Stores a typed value. Returns 0 or -1 with err (no FILE:LINE). */
static int set_typed(void *obj, const pc_directive_t *d,
                     const pc_directive_args_t *a, char *err, size_t errlen)
{
    char *field = (char *)obj + d->offset;

    switch (d->type) {
    case PC_DIR_CUSTOM:
        return 0;
    case PC_DIR_FLAG:
        return conf_parse_flag(a->argv[0], (int *)(void *)field, err, errlen);
    case PC_DIR_INT: {
        const pc_int_range_t *r = d->data;
        return conf_parse_int(a->argv[0], r ? r->min : 0, r ? r->max : LONG_MAX,
                              (long *)(void *)field, err, errlen);
    }
    case PC_DIR_SIZE:
        return conf_parse_size(a->argv[0], (uint64_t *)(void *)field, err, errlen);
    case PC_DIR_DURATION:
        return conf_parse_duration(a->argv[0], (uint64_t *)(void *)field, err,
                                   errlen);
    case PC_DIR_STRING:
    case PC_DIR_PATH: {
        char **sp = (char **)(void *)field;
        char *v;
        if (d->type == PC_DIR_PATH)
            v = plugin_host_table.conf_path(a, a->argv[0]);
        else
            v = strdup(a->argv[0]);
        if (v == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(*sp);
        *sp = v;
        return 0;
    }
    case PC_DIR_ENUM: {
        const char *const *names = d->data;
        for (int i = 0; names[i]; i++) {
            if (strcmp(names[i], a->argv[0]) == 0) {
                *(int *)(void *)field = i;
                return 0;
            }
        }
        {
            size_t n = (size_t)snprintf(err, errlen, "'%s' is not one of", a->argv[0]);
            for (int i = 0; names[i] && n < errlen; i++)
                n += (size_t)snprintf(err + n, errlen - n, "%s%s", i ? ", " : " ",
                                      names[i]);
        }
        return -1;
    }
    }
    return 0;
}

int plugin_apply_block(pc_plugin_t *p, void *obj, const conf_node_t *first,
                       const pc_directive_t *table, const char *where,
                       char *err, size_t errlen)
{
    const conf_node_t *seen[256];
    int nseen = 0;
    char msg[1024];

    memset(seen, 0, sizeof(seen));
    for (const conf_node_t *n = first; n; n = n->next) {
        int idx = -1;
        const pc_directive_t *d = table_find(table, n->name, &idx);
        pc_directive_args_t a;

        if (d == NULL) {
            snprintf(err, errlen, "%s:%d: unknown directive '%s' in %s", n->file,
                     n->line, n->name, where);
            return -1;
        }
        if (idx < 256 && !(d->flags & PC_DIR_REPEAT)) {
            if (seen[idx]) {
                snprintf(err, errlen, "%s:%d: '%s' is duplicate (first at %s:%d)",
                         n->file, n->line, n->name, seen[idx]->file,
                         seen[idx]->line);
                return -1;
            }
            seen[idx] = n;
            if (idx >= nseen)
                nseen = idx + 1;
        }
        if (n->argc < d->min_args ||
            (d->max_args != PC_ARGS_ANY && n->argc > d->max_args)) {
            if (d->max_args == PC_ARGS_ANY)
                snprintf(err, errlen, "%s:%d: '%s' takes at least %d argument%s",
                         n->file, n->line, n->name, d->min_args,
                         d->min_args == 1 ? "" : "s");
            else if (d->min_args == d->max_args)
                snprintf(err, errlen, "%s:%d: '%s' takes %d argument%s", n->file,
                         n->line, n->name, d->min_args, d->min_args == 1 ? "" : "s");
            else
                snprintf(err, errlen, "%s:%d: '%s' takes %d to %d arguments",
                         n->file, n->line, n->name, d->min_args, d->max_args);
            return -1;
        }
        if ((d->flags & PC_DIR_BLOCK) && !n->has_block) {
            snprintf(err, errlen, "%s:%d: '%s' needs a block", n->file, n->line,
                     n->name);
            return -1;
        }
        if (!(d->flags & PC_DIR_BLOCK) && n->has_block) {
            snprintf(err, errlen, "%s:%d: '%s' takes no block", n->file, n->line,
                     n->name);
            return -1;
        }
        if (d->type != PC_DIR_CUSTOM && n->argc < 1) {
            snprintf(err, errlen, "%s:%d: '%s' takes an argument", n->file,
                     n->line, n->name);
            return -1;
        }
        memset(&a, 0, sizeof(a));
        a.name = n->name;
        a.argc = n->argc;
        a.argv = (const char *const *)n->argv;
        a.file = n->file;
        a.line = n->line;
        a.block = (const pc_conf_node_t *)n->child;
        a.directive = d;
        msg[0] = '\0';
        if (set_typed(obj, d, &a, msg, sizeof(msg)) < 0 ||
            (d->set && d->set(p, obj, &a, msg, sizeof(msg)) < 0)) {
            snprintf(err, errlen, "%s:%d: %s: %s", n->file, n->line, n->name,
                     msg[0] ? msg : "invalid value");
            return -1;
        }
    }
    (void)nseen;
    return 0;
}

/* ---- plugin sets -------------------------------------------------------- */

static void plugin_set_free(void *arg)
{
    plugin_set_t *s = arg;

    if (s == NULL)
        return;
    for (int i = 0; i < s->n; i++) {
        pc_plugin_t *p = s->v[i].p;
        if (s->v[i].conf && p->desc->conf_free)
            p->desc->conf_free(p, s->v[i].conf);
    }
    free(s->v);
    free(s->init_order);
    free(s);
}

static int provides(const pc_plugin_t *p, const char *name, uint32_t version)
{
    for (const pc_service_ref_t *r = p->desc->provides; r && r->name; r++)
        if (strcmp(r->name, name) == 0 && r->version >= version)
            return 1;
    return 0;
}

/* Orders the set so providers come before their users (depth-first
 * topological sort). Returns 0, or -1 with err for a missing provider or a
 * cycle. */
static int order_set(plugin_set_t *s, char *err, size_t errlen)
{
    int *state = calloc((size_t)s->n + 1, sizeof(int));  /* 0 new, 1 visiting, 2 done */
    int *stack = calloc((size_t)s->n + 1, sizeof(int));
    int *iter = calloc((size_t)s->n + 1, sizeof(int));
    int norder = 0, rc = -1;

    if (state == NULL || stack == NULL || iter == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* Every requirement must have a provider in the set. */
    for (int i = 0; i < s->n; i++) {
        const pc_plugin_t *p = s->v[i].p;
        for (const pc_service_ref_t *r = p->desc->requires; r && r->name; r++) {
            int found = 0;
            for (int j = 0; j < s->n && !found; j++)
                found = j != i && provides(s->v[j].p, r->name, r->version);
            if (!found) {
                snprintf(err, errlen, "%s:%d: plugin '%s' requires service '%s' "
                         "(version %u or later), which no configured plugin "
                         "provides", s->v[i].file, s->v[i].line, p->name, r->name,
                         r->version);
                goto out;
            }
        }
    }
    for (int root = 0; root < s->n; root++) {
        int sp = 0;
        if (state[root])
            continue;
        stack[sp++] = root;
        state[root] = 1;
        iter[root] = 0;
        while (sp > 0) {
            int cur = stack[sp - 1];
            const pc_plugin_t *p = s->v[cur].p;
            const pc_service_ref_t *reqs = p->desc->requires;
            int pushed = 0;

            while (reqs && reqs[iter[cur]].name && !pushed) {
                const pc_service_ref_t *r = &reqs[iter[cur]++];
                for (int j = 0; j < s->n; j++) {
                    if (j == cur || !provides(s->v[j].p, r->name, r->version))
                        continue;
                    if (state[j] == 1) {
                        snprintf(err, errlen, "%s:%d: plugins '%s' and '%s' need "
                                 "each other's services (a cycle)", s->v[cur].file,
                                 s->v[cur].line, p->name, s->v[j].p->name);
                        goto out;
                    }
                    if (state[j] == 0) {
                        state[j] = 1;
                        iter[j] = 0;
                        stack[sp++] = j;
                        pushed = 1;
                        break;
                    }
                }
            }
            if (!pushed) {
                state[cur] = 2;
                s->init_order[norder++] = cur;
                sp--;
            }
        }
    }
    rc = 0;
out:
    free(state);
    free(stack);
    free(iter);
    return rc;
}

int plugin_set_build(conf_t *conf, char *err, size_t errlen)
{
    const conf_node_t *root = conf_tree_root(conf->tree);
    plugin_set_t *s;
    int n = 0;

    for (const conf_node_t *c = root->child; c; c = c->next)
        if (strcmp(c->name, "plugin") == 0)
            n++;
    if (n == 0)
        return 0;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->v = calloc((size_t)n, sizeof(*s->v))) == NULL ||
        (s->init_order = calloc((size_t)n, sizeof(int))) == NULL) {
        plugin_set_free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (const conf_node_t *c = root->child; c; c = c->next) {
        pc_plugin_t *p;
        plugin_inst_t *in;
        char msg[8192];
        char where[128];

        if (strcmp(c->name, "plugin") != 0)
            continue;
        in = &s->v[s->n];
        in->file = c->file;
        in->line = c->line;
        p = registry_find(c->argv[0]);
        if (p == NULL) {
            p = plugin_load(conf->plugin_dir, c->argv[0], msg, sizeof(msg));
            if (p == NULL) {
                snprintf(err, errlen, "%s:%d: %s", c->file, c->line, msg);
                goto fail;
            }
        }
        in->p = p;
        s->n++;
        if (p->desc->conf_create) {
            in->conf = p->desc->conf_create(p);
            if (in->conf == NULL) {
                snprintf(err, errlen, "%s:%d: plugin '%s': out of memory",
                         c->file, c->line, p->name);
                goto fail;
            }
        }
        snprintf(where, sizeof(where), "plugin '%s'", p->name);
        if (plugin_apply_block(p, in->conf, c->child, p->desc->directives, where,
                               err, errlen) < 0)
            goto fail;
        msg[0] = '\0';
        if (p->desc->conf_finish &&
            p->desc->conf_finish(p, in->conf, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "%s:%d: plugin '%s': %s", c->file, c->line,
                     p->name, msg[0] ? msg : "configuration rejected");
            goto fail;
        }
    }
    if (order_set(s, err, errlen) < 0)
        goto fail;
    conf->plugins = s;
    conf->plugins_free = plugin_set_free;
    return 0;
fail:
    plugin_set_free(s);
    return -1;
}

static void set_hook_mask(plugin_set_t *s)
{
    s->hook_mask = 0;
    for (int i = 0; i < s->n; i++)
        for (int h = 0; h < PC_HOOK_COUNT_; h++)
            if (s->v[i].p->txn_hooks[h] || s->v[i].p->conn_hooks[h])
                s->hook_mask |= 1u << h;
}

/* p's configuration object is now in's, held through a reference on the
 * snapshot conf: whatever happens to that snapshot in the server (a reload
 * that fails later, a reload that drops p), the object p was given stays
 * valid until p is given the next one. */
static void plugin_take_conf(pc_plugin_t *p, plugin_inst_t *in, conf_t *conf)
{
    conf_t *old = p->conf_snap;

    p->conf = in->conf;
    p->conf_snap = conf_ref(conf);
    conf_unref(old);  /* may free the previous object: reconfigure() ran */
}

int plugin_set_commit(conf_t *conf, char *err, size_t errlen)
{
    plugin_set_t *s = conf->plugins;

    if (s == NULL)
        return 0;
    /* New plugins first, providers before users: a failure leaves the
     * running ones untouched. */
    for (int k = 0; k < s->n; k++) {
        plugin_inst_t *in = &s->v[s->init_order[k]];
        pc_plugin_t *p = in->p;
        char msg[1024] = "";

        if (p->inited)
            continue;
        p->in_init = 1;
        if (p->desc->init && p->desc->init(p, in->conf, msg, sizeof(msg)) < 0) {
            p->in_init = 0;
            memset(p->txn_hooks, 0, sizeof(p->txn_hooks));
            memset(p->conn_hooks, 0, sizeof(p->conn_hooks));
            snprintf(err, errlen, "%s:%d: plugin '%s' failed to start: %s",
                     in->file, in->line, p->name, msg[0] ? msg : "init failed");
            return -1;
        }
        p->in_init = 0;
        p->inited = 1;
        p->init_seq = ++ninited;
        /* Kept even if a later init() of this commit fails: p is running
         * now and may use its configuration from its own timers. */
        plugin_take_conf(p, in, conf);
        log_info(0, "plugin %s %s started (%s, ABI %u.%u)", p->name,
                 p->desc->version ? p->desc->version : "", p->path,
                 p->desc->abi_major, p->desc->abi_minor);
    }
    for (int k = 0; k < s->n; k++) {
        plugin_inst_t *in = &s->v[s->init_order[k]];
        pc_plugin_t *p = in->p;

        if (p->conf == in->conf)
            continue;
        if (p->desc->reconfigure)
            p->desc->reconfigure(p, p->conf, in->conf);
        plugin_take_conf(p, in, conf);
    }
    set_hook_mask(s);
    return 0;
}

/* The initialised plugin with the highest init_seq below before. */
static pc_plugin_t *last_inited_before(unsigned before)
{
    pc_plugin_t *best = NULL;

    for (pc_plugin_t *p = registry; p; p = p->next)
        if (p->inited && p->init_seq < before && (best == NULL || p->init_seq > best->init_seq))
            best = p;
    return best;
}

void plugins_drain(void)
{
    for (pc_plugin_t *p = last_inited_before(UINT_MAX); p;
         p = last_inited_before(p->init_seq))
        if (p->desc->drain)
            p->desc->drain(p);
}

void plugins_shutdown(void)
{
    /* The configuration objects first: conf_free() comes before
     * shutdown(). */
    for (pc_plugin_t *p = registry; p; p = p->next) {
        conf_t *snap = p->conf_snap;
        p->conf_snap = NULL;
        p->conf = NULL;
        conf_unref(snap);
    }
    for (pc_plugin_t *p = last_inited_before(UINT_MAX); p;
         p = last_inited_before(p->init_seq))
        if (p->desc->shutdown)
            p->desc->shutdown(p);
    while (registry) {
        pc_plugin_t *p = registry;
        registry = p->next;
        /* The code stays mapped: a configuration freed later on another
         * thread may still call conf_free; the process is exiting. */
        free(p->name);
        free(p->path);
        free(p);
    }
    nregistry = 0;
    ninited = 0;
}
