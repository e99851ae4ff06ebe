/* testkit.c - the test plugin: every SDK feature, chosen per request by X-Test-* headers. */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <portcullis/plugin.h>

/*
 * Built several times under different names (TK_NAME: testkit, testkit2,
 * testkit3) so a test can configure more than one instance and check the
 * order the host calls them in. What it does is chosen per request:
 *
 *   X-Test-Id: NAME          names the transaction in the trail file
 *   X-Test-Verdict: ITEM,... ITEM is [PLUGIN:]HOOK=ACTION[:RESULT][/MS]
 *       HOOK     connect request reqbody response respbody upstream
 *       ACTION   continue allow block
 *                detail-continue  txn_block() details, then PC_CONTINUE
 *                defer-resume     a thread waits MS (50), loop_post()s, and
 *                                 defer_resume(RESULT) runs on the loop
 *                defer-thread     defer_resume_threadsafe(RESULT) after MS
 *                defer-work       work_queue(): sleeps MS on the host pool,
 *                                 done() resumes with RESULT
 *                defer-inline     defer_resume(RESULT) inside the hook
 *                defer-timeout    timeout MS (300), fallback CONTINUE; a
 *                                 late threadsafe resume (RESULT, default
 *                                 block) comes 400 ms after the deadline
 *                defer-timeout-block  the same with fallback BLOCK (late
 *                                 RESULT default continue)
 *                defer-never      timeout MS (default: the host's), no
 *                                 resume: only the deadline or a cancel
 *       RESULT   continue allow block (default continue)
 *   X-Test-Reason / X-Test-Status / X-Test-Category: block details
 *   X-Test-Hold: [PLUGIN:]DIR[:MAX[:open|closed]],...  txn_body_want(HOLD)
 *   X-Test-Stream: [PLUGIN:]DIR[:BLOCKAFTER],...      txn_body_want(STREAM)
 *       the BODY hook reports what it saw: size, crc (zlib's crc32), and
 *       held=mem|fd for a held body (read with pread() from the fd)
 *   X-Test-Note: NAME=VALUE (repeatable)        txn_note()
 *   X-Test-Set-Header: DIR:NAME=VALUE (repeatable) txn_set_header()
 *   X-Test-Publish: TOPIC                       event_publish()
 *
 * Every hook call, slot destructor, cancel and late resume appends a line
 * "ID PLUGIN WHAT [key=value...]" to trail_file; events received go to
 * event_file. The response carries X-Test-Trail (the hooks every instance
 * saw so far, in call order, from the "trail" note) and X-Tag-<PLUGIN>
 * (its tag directive).
 */

#ifndef TK_NAME
#define TK_NAME "testkit"
#endif

PC_PLUGIN_HOST_DEFINE;
#define host pc_plugin_host_

typedef struct tk_conf {
    char *trail_file;
    char *event_file;
    char *tag;
    char **hosts;          /* block_host */
    int nhosts;
    char **topics;         /* subscribe */
    int ntopics;
    int accept_block;
    int accept_detail;     /* conn_block() details, then PC_CONTINUE */
    int fail_finish;
    int fail_init;
    long level;            /* checked only: PC_DIR_INT */
    uint64_t hold_max;     /* default max for X-Test-Hold */
    uint64_t defer_ms;     /* default timeout of defer-never */
    int color;             /* checked only: PC_DIR_ENUM */
} tk_conf_t;

/* Process-wide state of this copy of the plugin (main thread). Copies, not
 * the configuration's own strings: shutdown() runs after the last
 * conf_free(). */
typedef struct tk_global {
    char *trail_file;      /* of the configuration in force */
    char *event_file;
} tk_global_t;

static void global_set(tk_global_t *g, const tk_conf_t *conf)
{
    free(g->trail_file);
    free(g->event_file);
    g->trail_file = conf->trail_file ? strdup(conf->trail_file) : NULL;
    g->event_file = conf->event_file ? strdup(conf->event_file) : NULL;
}

static atomic_int live_threads;

/* ---- the trail ---------------------------------------------------------- */

static void tk_line(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One line appended with one write(2): lines of several threads and
 * instances never mix. A test plugin may do this small blocking write. */
static void tk_line(const char *path, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    int n, fd;

    if (path == NULL)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, buf, (size_t)n) < 0)
        host->log(NULL, PC_LOG_ERR, "testkit: cannot write %s", path);
    close(fd);
}

/* CRC-32 (IEEE 802.3, zlib's crc32()): what the test compares with. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_add(uint32_t crc, const unsigned char *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- directives --------------------------------------------------------- */

static int append(char ***arr, int *n, const char *s)
{
    char **a = realloc(*arr, (size_t)(*n + 1) * sizeof(*a));

    if (a == NULL)
        return -1;
    *arr = a;
    if ((a[*n] = strdup(s)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

static int set_list(char ***arr, int *n, const pc_directive_args_t *a, char *err,
                    size_t errlen)
{
    for (int i = 0; i < a->argc; i++) {
        if (append(arr, n, a->argv[i]) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int set_block_host(pc_plugin_t *self, void *obj,
                          const pc_directive_args_t *a, char *err, size_t errlen)
{
    tk_conf_t *c = obj;

    return set_list(&c->hosts, &c->nhosts, a, err, errlen);
}

static int set_subscribe(pc_plugin_t *self, void *obj,
                         const pc_directive_args_t *a, char *err, size_t errlen)
{
    tk_conf_t *c = obj;

    return set_list(&c->topics, &c->ntopics, a, err, errlen);
}

/* A typed row with a setter that runs after the value was stored. */
static int check_tag(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                     char *err, size_t errlen)
{
    tk_conf_t *c = obj;

    if (strchr(c->tag, ' ')) {
        snprintf(err, errlen, "a tag has no spaces");
        return -1;
    }
    return 0;
}

static const pc_int_range_t level_range = {1, 10};
static const char *const colors[] = {"red", "green", "blue", NULL};

static const pc_directive_t tk_directives[] = {
    {"trail_file", 1, 1, 0, PC_DIR_PATH, offsetof(tk_conf_t, trail_file), NULL, NULL},
    {"event_file", 1, 1, 0, PC_DIR_PATH, offsetof(tk_conf_t, event_file), NULL, NULL},
    {"tag", 1, 1, 0, PC_DIR_STRING, offsetof(tk_conf_t, tag), NULL, check_tag},
    {"block_host", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_block_host},
    {"subscribe", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_subscribe},
    {"accept_block", 1, 1, 0, PC_DIR_FLAG, offsetof(tk_conf_t, accept_block), NULL, NULL},
    {"accept_detail", 1, 1, 0, PC_DIR_FLAG, offsetof(tk_conf_t, accept_detail), NULL, NULL},
    {"fail_finish", 1, 1, 0, PC_DIR_FLAG, offsetof(tk_conf_t, fail_finish), NULL, NULL},
    {"fail_init", 1, 1, 0, PC_DIR_FLAG, offsetof(tk_conf_t, fail_init), NULL, NULL},
    {"level", 1, 1, 0, PC_DIR_INT, offsetof(tk_conf_t, level), &level_range, NULL},
    {"hold_max", 1, 1, 0, PC_DIR_SIZE, offsetof(tk_conf_t, hold_max), NULL, NULL},
    {"defer_timeout", 1, 1, 0, PC_DIR_DURATION, offsetof(tk_conf_t, defer_ms), NULL, NULL},
    {"color", 1, 1, 0, PC_DIR_ENUM, offsetof(tk_conf_t, color), colors, NULL},
    PC_DIRECTIVE_END,
};

static void *tk_conf_create(pc_plugin_t *self)
{
    tk_conf_t *c = calloc(1, sizeof(*c));

    if (c)
        c->level = 1;
    return c;
}

static int tk_conf_finish(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    tk_conf_t *c = obj;

    if (c->fail_finish) {
        snprintf(err, errlen, "fail_finish is set (tag %s)", c->tag ? c->tag : "-");
        return -1;
    }
    if (c->tag == NULL && (c->tag = strdup("none")) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void tk_conf_free(pc_plugin_t *self, void *obj)
{
    tk_conf_t *c = obj;

    tk_line(c->trail_file, "- %s CONF_FREE tag=%s", TK_NAME, c->tag ? c->tag : "-");
    for (int i = 0; i < c->nhosts; i++)
        free(c->hosts[i]);
    for (int i = 0; i < c->ntopics; i++)
        free(c->topics[i]);
    free(c->hosts);
    free(c->topics);
    free(c->trail_file);
    free(c->event_file);
    free(c->tag);
    free(c);
}

/* ---- per-transaction state (a slot) ------------------------------------- */

typedef struct tk_defer tk_defer_t;

typedef struct tk_txn {
    char id[96];
    char *trail;                 /* copy of trail_file */
    tk_defer_t *defers;          /* every deferral made; one reference each */
    int want[2];                 /* PC_BODY_* asked per direction */
    uint64_t block_after[2];     /* stream: block after this many bytes */
    unsigned pieces[2];
    uint64_t streamed[2];
    uint32_t crc[2];
} tk_txn_t;

struct tk_defer {
    tk_defer_t *next;
    atomic_int refs;             /* the tk_txn's, and the resumer's */
    atomic_int cancelled;        /* the host ran the cancel callback */
    pc_plugin_t *self;
    pc_txn_t *txn;               /* valid on the loop while not cancelled */
    pc_defer_t *token;
    pc_loop_t *loop;
    int how;
    int verdict;
    unsigned delay_ms;
    int status;
    char reason[256];
    char category[64];
    char id[96];
    char *trail;
};

static void defer_unref(tk_defer_t *d)
{
    if (atomic_fetch_sub(&d->refs, 1) == 1) {
        free(d->trail);
        free(d);
    }
}

static void tk_txn_free(void *arg)
{
    tk_txn_t *s = arg;

    tk_line(s->trail, "%s %s SLOT_DTOR", s->id, TK_NAME);
    while (s->defers) {
        tk_defer_t *d = s->defers;
        s->defers = d->next;
        defer_unref(d);
    }
    free(s->trail);
    free(s);
}

/* Copies header name's first value into buf ("" when absent). */
static const char *hdr(pc_txn_t *txn, int dir, const char *name, char *buf,
                       size_t len)
{
    size_t n = 0;
    const char *v = host->txn_header(txn, dir, name, &n);

    if (v == NULL || n >= len)
        n = 0;
    else
        memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

static void txn_label(pc_txn_t *txn, char *buf, size_t len)
{
    char id[80];

    if (*hdr(txn, PC_REQUEST, "X-Test-Id", id, sizeof(id)))
        snprintf(buf, len, "%s", id);
    else
        snprintf(buf, len, "txn%llu", (unsigned long long)host->txn_id(txn));
}

static tk_txn_t *state(pc_plugin_t *self, pc_txn_t *txn, const tk_conf_t *conf)
{
    tk_txn_t *s = host->txn_slot_get(self, txn);

    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    txn_label(txn, s->id, sizeof(s->id));
    s->trail = conf->trail_file ? strdup(conf->trail_file) : NULL;
    host->txn_slot_set(self, txn, s, tk_txn_free);
    if (host->txn_slot_get(self, txn) != s)
        return NULL;  /* the host could not keep it (and freed it) */
    return s;
}

static const char *hook_name(pc_hook_t h)
{
    static const char *const names[] = {
        "ACCEPT", "CONNECT", "TLS_SNI", "REQUEST_HEADERS", "REQUEST_BODY",
        "RESPONSE_HEADERS", "RESPONSE_BODY", "TXN_END", "CONN_CLOSE",
        "UPSTREAM_ADDR"};
    return (unsigned)h < sizeof(names) / sizeof(names[0]) ? names[h] : "?";
}

/* Records a hook call: a trail line, and "NAME:HOOK" appended to the
 * transaction's "trail" note (shared by every instance). */
static void record(pc_txn_t *txn, const tk_conf_t *conf, pc_hook_t h,
                   const char *extra)
{
    char id[96], note[2048];
    const char *old = host->txn_get_note(txn, "trail");

    txn_label(txn, id, sizeof(id));
    tk_line(conf->trail_file, "%s %s %s%s%s", id, TK_NAME, hook_name(h),
            extra ? " " : "", extra ? extra : "");
    snprintf(note, sizeof(note), "%s%s%s:%s", old ? old : "", old ? " " : "",
             TK_NAME, hook_name(h));
    host->txn_note(txn, "trail", note);
}

/* ---- verdict specs ------------------------------------------------------ */

enum {
    A_CONTINUE, A_ALLOW, A_BLOCK, A_DETAIL_CONTINUE, A_RESUME, A_THREAD,
    A_WORK, A_INLINE, A_TIMEOUT, A_TIMEOUT_BLOCK, A_NEVER
};

typedef struct action {
    int what;
    int result;
    int ms;          /* -1: not given */
} action_t;

static int verdict_of(const char *s)
{
    if (strcmp(s, "allow") == 0)
        return PC_ALLOW;
    if (strcmp(s, "block") == 0)
        return PC_BLOCK;
    return PC_CONTINUE;
}

/* Finds the item for hook in X-Test-Verdict. Returns 1 and fills a, or 0. */
static int find_action(pc_txn_t *txn, const char *hookname, action_t *a)
{
    static const struct {
        const char *name;
        int what;
    } acts[] = {
        {"continue", A_CONTINUE}, {"allow", A_ALLOW}, {"block", A_BLOCK},
        {"detail-continue", A_DETAIL_CONTINUE}, {"defer-resume", A_RESUME},
        {"defer-thread", A_THREAD}, {"defer-work", A_WORK},
        {"defer-inline", A_INLINE}, {"defer-timeout", A_TIMEOUT},
        {"defer-timeout-block", A_TIMEOUT_BLOCK}, {"defer-never", A_NEVER},
    };
    char buf[1024], *save = NULL;

    hdr(txn, PC_REQUEST, "X-Test-Verdict", buf, sizeof(buf));
    for (char *item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *eq, *colon, *slash, *act;

        while (*item == ' ')
            item++;
        colon = strchr(item, ':');
        eq = strchr(item, '=');
        if (eq == NULL)
            continue;
        if (colon && colon < eq) {
            *colon = '\0';
            if (strcmp(item, TK_NAME) != 0)
                continue;
            item = colon + 1;
        }
        *eq = '\0';
        if (strcmp(item, hookname) != 0)
            continue;
        act = eq + 1;
        a->ms = -1;
        a->result = -1;
        if ((slash = strchr(act, '/')) != NULL) {
            *slash = '\0';
            a->ms = atoi(slash + 1);
        }
        if ((colon = strchr(act, ':')) != NULL) {
            *colon = '\0';
            a->result = verdict_of(colon + 1);
        }
        for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
            if (strcmp(acts[i].name, act) == 0) {
                a->what = acts[i].what;
                return 1;
            }
        }
        host->log_txn(NULL, txn, PC_LOG_ERR, "%s: unknown action '%s'", TK_NAME, act);
        return 0;
    }
    return 0;
}

static void block_details(pc_plugin_t *self, pc_txn_t *txn, int *status,
                          char *reason, size_t rlen, char *cat, size_t clen)
{
    char st[16];

    hdr(txn, PC_REQUEST, "X-Test-Reason", reason, rlen);
    if (!*reason)
        snprintf(reason, rlen, "%s says no", TK_NAME);
    hdr(txn, PC_REQUEST, "X-Test-Category", cat, clen);
    *status = atoi(hdr(txn, PC_REQUEST, "X-Test-Status", st, sizeof(st)));
}

static int do_block(pc_plugin_t *self, pc_txn_t *txn)
{
    char reason[256], cat[64];
    int status;

    block_details(self, txn, &status, reason, sizeof(reason), cat, sizeof(cat));
    host->txn_block(self, txn, status, reason, *cat ? cat : NULL);
    return PC_BLOCK;
}

/* ---- deferral ----------------------------------------------------------- */

enum { HOW_LOOP, HOW_THREAD, HOW_WORK, HOW_NONE };

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0)
        ;
}

static void tk_cancel(void *arg)
{
    tk_defer_t *d = arg;

    atomic_store(&d->cancelled, 1);
    tk_line(d->trail, "%s %s CANCEL", d->id, TK_NAME);
}

/* On the transaction's loop: resume unless the token died. A dead token
 * is resumed anyway, to show the host ignores it. */
static void resume_on_loop(void *arg)
{
    tk_defer_t *d = arg;

    if (atomic_load(&d->cancelled)) {
        tk_line(d->trail, "%s %s LATE_RESUME", d->id, TK_NAME);
    } else if (d->verdict == PC_BLOCK) {
        host->txn_block(d->self, d->txn, d->status, d->reason,
                        d->category[0] ? d->category : NULL);
    }
    host->defer_resume(d->token, d->verdict);
    defer_unref(d);
}

static void *resumer(void *arg)
{
    tk_defer_t *d = arg;

    sleep_ms(d->delay_ms);
    if (d->how == HOW_THREAD) {
        if (atomic_load(&d->cancelled))
            tk_line(d->trail, "%s %s LATE_RESUME_THREADSAFE", d->id, TK_NAME);
        if (host->loop_current() != NULL)
            tk_line(d->trail, "%s %s BAD_LOOP_CURRENT", d->id, TK_NAME);
        host->defer_resume_threadsafe(d->token, d->verdict, d->status, d->reason,
                                      d->category[0] ? d->category : NULL);
        defer_unref(d);
    } else if (host->loop_post(d->loop, resume_on_loop, d) < 0) {
        defer_unref(d);
    }
    atomic_fetch_sub(&live_threads, 1);
    return NULL;
}

static void work_sleep(void *arg)
{
    tk_defer_t *d = arg;

    sleep_ms(d->delay_ms);
}

static int start_resumer(tk_defer_t *d)
{
    pthread_t th;
    pthread_attr_t at;
    int rc;

    atomic_fetch_add(&d->refs, 1);
    if (d->how == HOW_WORK) {
        if (host->work_queue(d->loop, work_sleep, resume_on_loop, d) < 0) {
            defer_unref(d);
            return -1;
        }
        return 0;
    }
    atomic_fetch_add(&live_threads, 1);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &at, resumer, d);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        atomic_fetch_sub(&live_threads, 1);
        defer_unref(d);
        return -1;
    }
    return 0;
}

/* Carries out a defer-* action. Returns the hook's verdict. */
static int do_defer(pc_plugin_t *self, pc_txn_t *txn, const tk_conf_t *conf,
                    tk_txn_t *s, const action_t *a)
{
    tk_defer_t *d = calloc(1, sizeof(*d));
    uint64_t timeout = 0;
    int fallback = PC_CONTINUE;

    if (d == NULL)
        return PC_CONTINUE;
    atomic_init(&d->refs, 1);      /* the tk_txn's */
    atomic_init(&d->cancelled, 0);
    d->self = self;
    d->txn = txn;
    d->loop = host->loop_current();
    d->trail = s->trail ? strdup(s->trail) : NULL;
    snprintf(d->id, sizeof(d->id), "%s", s->id);
    block_details(self, txn, &d->status, d->reason, sizeof(d->reason), d->category,
                  sizeof(d->category));
    d->verdict = a->result >= 0 ? a->result : PC_CONTINUE;
    d->delay_ms = a->ms >= 0 ? (unsigned)a->ms : 50;
    d->how = HOW_NONE;
    switch (a->what) {
    case A_RESUME:
        d->how = HOW_LOOP;
        break;
    case A_THREAD:
        d->how = HOW_THREAD;
        break;
    case A_WORK:
        d->how = HOW_WORK;
        break;
    case A_TIMEOUT:
    case A_TIMEOUT_BLOCK:
        timeout = a->ms >= 0 ? (uint64_t)a->ms : 300;
        fallback = a->what == A_TIMEOUT ? PC_CONTINUE : PC_BLOCK;
        d->verdict = a->result >= 0 ? a->result
                                    : (fallback == PC_BLOCK ? PC_CONTINUE : PC_BLOCK);
        d->delay_ms = (unsigned)timeout + 400;
        d->how = HOW_THREAD;
        break;
    case A_NEVER:
        timeout = a->ms >= 0 ? (uint64_t)a->ms : conf->defer_ms;
        break;
    }
    d->next = s->defers;
    s->defers = d;
    d->token = host->txn_defer(self, txn, timeout, fallback, tk_cancel, d);
    if (d->token == NULL) {
        tk_line(s->trail, "%s %s DEFER_REFUSED", s->id, TK_NAME);
        return PC_CONTINUE;
    }
    if (a->what == A_INLINE) {
        if (d->verdict == PC_BLOCK)
            do_block(self, txn);
        host->defer_resume(d->token, d->verdict);
        return PC_DEFER;
    }
    if (d->how != HOW_NONE && start_resumer(d) < 0) {
        tk_line(s->trail, "%s %s NO_RESUMER", s->id, TK_NAME);
        host->defer_resume(d->token, PC_CONTINUE);
    }
    return PC_DEFER;
}

/* The verdict for hook per X-Test-Verdict. */
static int act(pc_plugin_t *self, pc_txn_t *txn, const tk_conf_t *conf,
               tk_txn_t *s, const char *hookname)
{
    action_t a;

    if (!find_action(txn, hookname, &a))
        return PC_CONTINUE;
    switch (a.what) {
    case A_CONTINUE:
        return PC_CONTINUE;
    case A_ALLOW:
        return PC_ALLOW;
    case A_BLOCK:
        return do_block(self, txn);
    case A_DETAIL_CONTINUE:
        do_block(self, txn);
        return PC_CONTINUE;
    default:
        if (s == NULL)
            return PC_CONTINUE;
        return do_defer(self, txn, conf, s, &a);
    }
}

/* ---- header-driven features --------------------------------------------- */

/* Calls fn(value) for every field called name. */
static void each_field(pc_txn_t *txn, const char *name,
                       void (*fn)(pc_txn_t *, const char *, void *), void *arg)
{
    const char *n, *v;
    size_t nl, vl;
    char buf[1024];

    for (int i = 0; (i = host->txn_header_next(txn, PC_REQUEST, i, &n, &nl, &v, &vl)) > 0;) {
        if (nl != strlen(name) || strncasecmp(n, name, nl) != 0 || vl >= sizeof(buf))
            continue;
        memcpy(buf, v, vl);
        buf[vl] = '\0';
        fn(txn, buf, arg);
    }
}

static void add_note(pc_txn_t *txn, const char *v, void *arg)
{
    char buf[1024], *eq;

    snprintf(buf, sizeof(buf), "%s", v);
    if ((eq = strchr(buf, '=')) == NULL)
        return;
    *eq = '\0';
    host->txn_note(txn, buf, eq + 1);
}

static void set_header(pc_txn_t *txn, const char *v, void *arg)
{
    int dir = *(int *)arg;
    const char *want = dir == PC_REQUEST ? "request:" : "response:";
    char buf[1024], *eq;

    if (strncmp(v, want, strlen(want)) != 0)
        return;
    snprintf(buf, sizeof(buf), "%s", v + strlen(want));
    if ((eq = strchr(buf, '=')) == NULL)
        return;
    *eq = '\0';
    if (host->txn_set_header(txn, dir, buf, eq + 1) < 0)
        host->log_txn(NULL, txn, PC_LOG_ERR, "%s: txn_set_header(%s) failed", TK_NAME, buf);
}

/* Splits an X-Test-Hold/X-Test-Stream item "[PLUGIN:]DIR[:A[:B]]" into
 * f[0..2] (DIR, A, B). Returns 0 when it is for this plugin and dir. */
static int body_item(char *it, const char *dname, char *f[3])
{
    char *v[4] = {it, NULL, NULL, NULL};
    int k = 0;

    for (int i = 1; i < 4 && v[i - 1]; i++)
        if ((v[i] = strchr(v[i - 1], ':')) != NULL)
            *v[i]++ = '\0';
    if (strcmp(v[0], "request") != 0 && strcmp(v[0], "response") != 0) {
        if (strcmp(v[0], TK_NAME) != 0 || v[1] == NULL)
            return -1;
        k = 1;
    }
    f[0] = v[k];
    f[1] = v[k + 1];
    f[2] = k + 2 < 4 ? v[k + 2] : NULL;
    return strcmp(f[0], dname) == 0 ? 0 : -1;
}

/* X-Test-Hold and X-Test-Stream for one direction. */
static void want_bodies(pc_plugin_t *self, pc_txn_t *txn, const tk_conf_t *conf,
                        tk_txn_t *s, int dir)
{
    const char *dname = dir == PC_REQUEST ? "request" : "response";
    char buf[512], *save = NULL, *f[3];

    hdr(txn, PC_REQUEST, "X-Test-Hold", buf, sizeof(buf));
    for (char *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        uint64_t max = conf->hold_max;
        int fail = PC_FAIL_OPEN, rc;
        char msg[128];

        if (body_item(it, dname, f) < 0)
            continue;
        if (f[1] && host->parse_size(f[1], &max, msg, sizeof(msg)) < 0)
            host->log_txn(self, txn, PC_LOG_ERR, "bad X-Test-Hold max: %s", msg);
        if (f[2] && strcmp(f[2], "closed") == 0)
            fail = PC_FAIL_CLOSED;
        rc = host->txn_body_want(self, txn, dir, PC_BODY_HOLD, max, fail);
        if (rc == 0)
            s->want[dir] = PC_BODY_HOLD;
        tk_line(s->trail, "%s %s WANT dir=%s mode=hold rc=%d", s->id, TK_NAME, dname, rc);
    }
    hdr(txn, PC_REQUEST, "X-Test-Stream", buf, sizeof(buf));
    save = NULL;
    for (char *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        int rc;

        if (body_item(it, dname, f) < 0)
            continue;
        rc = host->txn_body_want(self, txn, dir, PC_BODY_STREAM, 0, PC_FAIL_OPEN);
        if (rc == 0 && s->want[dir] == 0)
            s->want[dir] = PC_BODY_STREAM;
        s->block_after[dir] = f[1] ? strtoull(f[1], NULL, 10) : 0;
        tk_line(s->trail, "%s %s WANT dir=%s mode=stream rc=%d", s->id, TK_NAME, dname, rc);
    }
}

/* ---- hooks -------------------------------------------------------------- */

static int blocked_host(pc_plugin_t *self, pc_txn_t *txn, const tk_conf_t *conf)
{
    const char *h = host->txn_host(txn);
    char reason[256];

    for (int i = 0; i < conf->nhosts; i++) {
        if (strcmp(conf->hosts[i], h) == 0) {
            snprintf(reason, sizeof(reason), "host %s is blocked (tag %s)", h, conf->tag);
            host->txn_block(self, txn, 403, reason, "testing");
            return 1;
        }
    }
    return 0;
}

static int tk_connect(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const tk_conf_t *conf = obj;
    tk_txn_t *s = state(self, txn, conf);

    record(txn, conf, PC_HOOK_CONNECT, NULL);
    if (blocked_host(self, txn, conf))
        return PC_BLOCK;
    return act(self, txn, conf, s, "connect");
}

static void publish(pc_plugin_t *self, pc_txn_t *txn)
{
    char topic[128];
    pc_event_t ev;

    if (!*hdr(txn, PC_REQUEST, "X-Test-Publish", topic, sizeof(topic)))
        return;
    memset(&ev, 0, sizeof(ev));
    ev.topic = topic;
    ev.client = host->txn_client(txn);
    ev.subject = host->txn_url(txn);
    ev.detail = "published by " TK_NAME;
    ev.value = 42;
    host->event_publish(self, &ev);
}

static int tk_request_headers(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const tk_conf_t *conf = obj;
    tk_txn_t *s = state(self, txn, conf);
    int dir = PC_REQUEST;
    char extra[512];

    snprintf(extra, sizeof(extra), "url=%s host=%s port=%d path=%s method=%s",
             host->txn_url(txn), host->txn_host(txn), host->txn_port(txn),
             host->txn_path(txn), host->txn_method(txn));
    record(txn, conf, PC_HOOK_REQUEST_HEADERS, extra);
    host->metric_add(self, "requests", 1);
    each_field(txn, "X-Test-Note", add_note, NULL);
    each_field(txn, "X-Test-Set-Header", set_header, &dir);
    publish(self, txn);
    if (s)
        want_bodies(self, txn, conf, s, PC_REQUEST);
    if (blocked_host(self, txn, conf))
        return PC_BLOCK;
    return act(self, txn, conf, s, "request");
}

static int tk_upstream_addr(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const tk_conf_t *conf = obj;

    record(txn, conf, PC_HOOK_UPSTREAM_ADDR, NULL);
    return act(self, txn, conf, NULL, "upstream");
}

static int tk_response_headers(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    const tk_conf_t *conf = obj;
    tk_txn_t *s = state(self, txn, conf);
    int dir = PC_RESPONSE;
    char extra[64];

    snprintf(extra, sizeof(extra), "status=%d", host->txn_status(txn));
    record(txn, conf, PC_HOOK_RESPONSE_HEADERS, extra);
    each_field(txn, "X-Test-Set-Header", set_header, &dir);
    host->txn_set_header(txn, PC_RESPONSE, "X-Test-Trail", host->txn_get_note(txn, "trail"));
    host->txn_set_header(txn, PC_RESPONSE, "X-Tag-" TK_NAME, conf->tag);
    if (s)
        want_bodies(self, txn, conf, s, PC_RESPONSE);
    return act(self, txn, conf, s, "response");
}

/* Hashes a held body from the spool file (blocking reads: a test plugin). */
static int hash_fd(int fd, uint32_t *h, uint64_t *n)
{
    unsigned char buf[65536];
    ssize_t r;
    off_t off = 0;

    *h = 0;
    *n = 0;
    while ((r = pread(fd, buf, sizeof(buf), off)) > 0) {
        *h = crc_add(*h, buf, (size_t)r);
        *n += (uint64_t)r;
        off += r;
    }
    return r < 0 ? -1 : 0;
}

static int body_hook(pc_plugin_t *self, pc_txn_t *txn, const tk_conf_t *conf,
                     int dir)
{
    tk_txn_t *s = state(self, txn, conf);
    const char *dname = dir == PC_REQUEST ? "request" : "response";
    pc_hook_t h = dir == PC_REQUEST ? PC_HOOK_REQUEST_BODY : PC_HOOK_RESPONSE_BODY;
    const void *p;
    size_t len;
    int flags;

    if (s == NULL)
        return PC_CONTINUE;
    flags = host->txn_body_data(txn, dir, &p, &len);
    if (s->want[dir] == PC_BODY_STREAM) {
        s->pieces[dir]++;
        s->streamed[dir] += len;
        s->crc[dir] = crc_add(s->crc[dir], p, len);
        if (flags & PC_BODY_LAST) {
            char extra[160];
            snprintf(extra, sizeof(extra), "dir=%s mode=stream pieces=%u size=%llu "
                     "crc=%08x total=%llu", dname, s->pieces[dir],
                     (unsigned long long)s->streamed[dir],
                     (unsigned)s->crc[dir],
                     (unsigned long long)host->txn_body_size(txn, dir));
            record(txn, conf, h, extra);
        }
        if (s->block_after[dir] && s->streamed[dir] >= s->block_after[dir]) {
            tk_line(s->trail, "%s %s STREAM_BLOCK dir=%s at=%llu", s->id, TK_NAME,
                    dname, (unsigned long long)s->streamed[dir]);
            s->block_after[dir] = 0;
            return do_block(self, txn);
        }
        return PC_CONTINUE;
    }
    {
        char extra[200];
        uint32_t hash = 0;
        uint64_t n = len;
        const char *where = "mem";

        if (flags & PC_BODY_OVERSIZE) {
            snprintf(extra, sizeof(extra), "dir=%s oversize size=%llu", dname,
                     (unsigned long long)host->txn_body_size(txn, dir));
            record(txn, conf, h, extra);
            return PC_CONTINUE;
        }
        if (p != NULL) {
            hash = crc_add(hash, p, len);
        } else {
            int fd = host->txn_body_fd(txn, dir);
            where = "fd";
            if (fd < 0 || hash_fd(fd, &hash, &n) < 0)
                where = "none";
        }
        snprintf(extra, sizeof(extra), "dir=%s mode=hold held=%s size=%llu crc=%08x "
                 "total=%llu last=%d", dname, where, (unsigned long long)n,
                 (unsigned)hash,
                 (unsigned long long)host->txn_body_size(txn, dir),
                 (flags & PC_BODY_LAST) != 0);
        record(txn, conf, h, extra);
    }
    return act(self, txn, conf, s, dir == PC_REQUEST ? "reqbody" : "respbody");
}

static int tk_request_body(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    return body_hook(self, txn, obj, PC_REQUEST);
}

static int tk_response_body(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    return body_hook(self, txn, obj, PC_RESPONSE);
}

static int tk_txn_end(pc_plugin_t *self, pc_txn_t *txn, void *obj)
{
    char extra[64];

    snprintf(extra, sizeof(extra), "status=%d", host->txn_status(txn));
    record(txn, obj, PC_HOOK_TXN_END, extra);
    return PC_CONTINUE;
}

static int tk_accept(pc_plugin_t *self, pc_conn_t *conn, void *obj)
{
    const tk_conf_t *conf = obj;

    tk_line(conf->trail_file, "conn%llu %s ACCEPT client=%s",
            (unsigned long long)host->conn_id(conn), TK_NAME, host->conn_client(conn));
    if (conf->accept_block || conf->accept_detail) {
        host->conn_block(self, conn, 403, "this client is refused by " TK_NAME, "test");
        return conf->accept_block ? PC_BLOCK : PC_CONTINUE;
    }
    return PC_CONTINUE;
}

static int tk_conn_close(pc_plugin_t *self, pc_conn_t *conn, void *obj)
{
    const tk_conf_t *conf = obj;

    tk_line(conf->trail_file, "conn%llu %s CONN_CLOSE",
            (unsigned long long)host->conn_id(conn), TK_NAME);
    return PC_CONTINUE;
}

/* ---- events ------------------------------------------------------------- */

static void on_event(pc_plugin_t *self, const pc_event_t *ev, void *arg)
{
    tk_global_t *g = host->plugin_data(self);

    (void)arg;
    tk_line(g ? g->event_file : NULL,
            "EVENT %s topic=%s plugin=%s client=%s subject=%s detail=%s value=%lld",
            TK_NAME, ev->topic, ev->plugin ? ev->plugin : "-",
            ev->client ? ev->client : "-", ev->subject ? ev->subject : "-",
            ev->detail ? ev->detail : "-", (long long)ev->value);
}

/* ---- life cycle --------------------------------------------------------- */

static int tk_init(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    tk_conf_t *conf = obj;
    tk_global_t *g;

    tk_line(conf->trail_file, "- %s INIT tag=%s", TK_NAME, conf->tag);
    if (conf->fail_init) {
        snprintf(err, errlen, "fail_init is set (tag %s)", conf->tag);
        return -1;
    }
    if (host->hook_conn(self, PC_HOOK_ACCEPT, tk_accept) < 0 ||
        host->hook_conn(self, PC_HOOK_CONN_CLOSE, tk_conn_close) < 0 ||
        host->hook_txn(self, PC_HOOK_CONNECT, tk_connect) < 0 ||
        host->hook_txn(self, PC_HOOK_REQUEST_HEADERS, tk_request_headers) < 0 ||
        host->hook_txn(self, PC_HOOK_REQUEST_BODY, tk_request_body) < 0 ||
        host->hook_txn(self, PC_HOOK_RESPONSE_HEADERS, tk_response_headers) < 0 ||
        host->hook_txn(self, PC_HOOK_RESPONSE_BODY, tk_response_body) < 0 ||
        host->hook_txn(self, PC_HOOK_UPSTREAM_ADDR, tk_upstream_addr) < 0 ||
        host->hook_txn(self, PC_HOOK_TXN_END, tk_txn_end) < 0) {
        snprintf(err, errlen, "cannot register hooks");
        return -1;
    }
    /* Registering twice must fail. */
    if (host->hook_txn(self, PC_HOOK_TXN_END, tk_txn_end) == 0) {
        snprintf(err, errlen, "the host let a hook be registered twice");
        return -1;
    }
    for (int i = 0; i < conf->ntopics; i++) {
        if (host->event_subscribe(self, conf->topics[i], on_event, NULL) < 0) {
            snprintf(err, errlen, "cannot subscribe to %s", conf->topics[i]);
            return -1;
        }
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    global_set(g, conf);
    host->plugin_set_data(self, g);
    host->log(self, PC_LOG_INFO, "ready (tag %s)", conf->tag);
    return 0;
}

static void tk_reconfigure(pc_plugin_t *self, void *old_obj, void *new_obj)
{
    tk_conf_t *old = old_obj, *conf = new_obj;
    tk_global_t *g = host->plugin_data(self);

    /* Reads the old object on purpose: it must still be alive. */
    tk_line(conf->trail_file, "- %s RECONFIGURE old_tag=%s new_tag=%s", TK_NAME,
            old->tag, conf->tag);
    if (g)
        global_set(g, conf);
}

static void tk_drain(pc_plugin_t *self)
{
    tk_global_t *g = host->plugin_data(self);

    if (g)
        tk_line(g->trail_file, "- %s DRAIN", TK_NAME);
}

static void tk_shutdown(pc_plugin_t *self)
{
    tk_global_t *g = host->plugin_data(self);

    /* Threads still sleeping toward a resume finish first (bounded). */
    for (int i = 0; i < 500 && atomic_load(&live_threads) > 0; i++)
        sleep_ms(10);
    if (g) {
        tk_line(g->trail_file, "- %s SHUTDOWN threads=%d", TK_NAME,
                atomic_load(&live_threads));
        free(g->trail_file);
        free(g->event_file);
    }
    free(g);
    host->plugin_set_data(self, NULL);
}

static const pc_plugin_desc_t tk_desc = {
    .abi_major = PC_ABI_MAJOR,
    .abi_minor = PC_ABI_MINOR,
    .size = sizeof(pc_plugin_desc_t),
    .name = TK_NAME,
    .version = "1.0",
    .description = "drives every SDK feature from X-Test-* request headers",
    .directives = tk_directives,
    .conf_create = tk_conf_create,
    .conf_finish = tk_conf_finish,
    .conf_free = tk_conf_free,
    .init = tk_init,
    .reconfigure = tk_reconfigure,
    .drain = tk_drain,
    .shutdown = tk_shutdown,
};

PC_PLUGIN(tk_desc)
