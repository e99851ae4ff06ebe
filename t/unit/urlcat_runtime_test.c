/* urlcat_runtime_test.c - unit tests for plugins/urlcat/runtime.c and lists.c with a mock host: SNI, CONNECT, requests, policies. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lists.h"
#include "tap.h"
#include "urlcat.h"

/* The TLS SNI hook cannot run through the daemon until the core reports
 * the SNI (a later issue), so it is driven here through a mock host, with
 * the CONNECT and request hooks for comparison. */

PC_PLUGIN_HOST_DEFINE;

typedef struct fake_txn {
    const char *hostname, *scheme, *path, *sni, *client;
    int port;
    struct sockaddr_in sa;
    int block_status;
    char reason[256], category[128], note_cat[256], note_uc[64];
} fake_txn_t;

#define F(t) ((fake_txn_t *)(void *)(t))

static const char *f_host(pc_txn_t *t) { return F(t)->hostname; }
static const char *f_scheme(pc_txn_t *t) { return F(t)->scheme; }
static const char *f_path(pc_txn_t *t) { return F(t)->path; }
static const char *f_sni(pc_txn_t *t) { return F(t)->sni; }
static int f_port(pc_txn_t *t) { return F(t)->port; }
static const char *f_client(pc_txn_t *t) { return F(t)->client; }

static const struct sockaddr *f_client_addr(pc_txn_t *t)
{
    return (const struct sockaddr *)&F(t)->sa;
}

static void f_block(pc_plugin_t *self, pc_txn_t *t, int status, const char *reason,
                    const char *category)
{
    (void)self;
    F(t)->block_status = status;
    snprintf(F(t)->reason, sizeof(F(t)->reason), "%s", reason ? reason : "");
    snprintf(F(t)->category, sizeof(F(t)->category), "%s", category ? category : "");
}

static void f_note(pc_txn_t *t, const char *name, const char *value)
{
    if (strcmp(name, "category") == 0)
        snprintf(F(t)->note_cat, sizeof(F(t)->note_cat), "%s", value);
    if (strcmp(name, "urlcat") == 0)
        snprintf(F(t)->note_uc, sizeof(F(t)->note_uc), "%s", value);
}

static int f_metric(pc_plugin_t *self, const char *name, int64_t d)
{
    (void)self;
    (void)name;
    (void)d;
    return 0;
}

static void f_log_txn(pc_plugin_t *self, pc_txn_t *t, int level, const char *fmt, ...)
{
    (void)self;
    (void)t;
    (void)level;
    (void)fmt;
}

static pc_host_t mock = {
    .txn_host = f_host,
    .txn_scheme = f_scheme,
    .txn_path = f_path,
    .txn_sni = f_sni,
    .txn_port = f_port,
    .txn_client = f_client,
    .txn_client_addr = f_client_addr,
    .txn_block = f_block,
    .txn_note = f_note,
    .metric_add = f_metric,
    .log_txn = f_log_txn,
};

static char dir[] = "/tmp/urlcat_runtime_test.XXXXXX";
static uc_conf_t conf;

static char *write_list(const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return strdup(path);
}

static void add_source(enum uc_src_kind kind, char *path, const char *cat)
{
    uc_source_t *s;

    conf.src = realloc(conf.src, (size_t)(conf.nsrc + 1) * sizeof(*s));
    s = &conf.src[conf.nsrc++];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->path = path;
    s->category = cat ? strdup(cat) : NULL;
    s->file = strdup("test.conf");
    s->line = conf.nsrc;
}

static void add_name(uc_name_t **v, int *n, const char *name)
{
    *v = realloc(*v, (size_t)(*n + 1) * sizeof(**v));
    (*v)[*n].name = strdup(name);
    (*v)[*n].file = strdup("test.conf");
    (*v)[*n].line = 99;
    (*n)++;
}

static void setup(void)
{
    char err[512];

    ok(mkdtemp(dir) != NULL, "temp dir");
    add_source(UC_SRC_DOMAINS, write_list("adult.txt", "evil.test\nb\xc3\xbc" "cher.test\n"),
               "adult");
    add_source(UC_SRC_URLS, write_list("urls.txt", "#listcategory: games\nplay.test/flash/\n"),
               NULL);
    add_source(UC_SRC_ALLOW, write_list("allow.txt", "ok.evil.test\n"), NULL);
    conf.npol = 2;
    conf.pol = calloc(2, sizeof(*conf.pol));
    conf.pol[0].name = strdup("default");
    add_name(&conf.pol[0].block, &conf.pol[0].nblock, "adult");
    conf.pol[0].allow_src = malloc(sizeof(int));
    conf.pol[0].allow_src[0] = 2;
    conf.pol[0].nallow_src = 1;
    conf.pol[1].name = strdup("kids");
    conf.pol[1].clients = netaddr_set_new();
    netaddr_set_add_text(conf.pol[1].clients, "127.0.0.2", err, sizeof(err));
    netaddr_set_finish(conf.pol[1].clients);
    add_name(&conf.pol[1].block, &conf.pol[1].nblock, "adult");
    add_name(&conf.pol[1].block, &conf.pol[1].nblock, "games");
    conf.caseless = 1;
    pthread_rwlock_init(&conf.lock, NULL);
    conf.lock_ready = 1;
    conf.cur = uc_lists_load(&conf, NULL, NULL, err, sizeof(err));
    ok(conf.cur != NULL, "lists loaded (%s)", conf.cur ? "ok" : err);
}

static fake_txn_t txn(const char *h, const char *path, const char *sni, const char *client)
{
    fake_txn_t t;

    memset(&t, 0, sizeof(t));
    t.hostname = h;
    t.scheme = "http";
    t.path = path;
    t.sni = sni;
    t.port = path ? 80 : 443;
    t.client = client;
    t.sa.sin_family = AF_INET;
    inet_pton(AF_INET, client, &t.sa.sin_addr);
    return t;
}

int main(void)
{
    pc_plugin_t *self = NULL;
    fake_txn_t t;
    char err[512];

    pc_plugin_host_ = &mock;
    setup();
    if (conf.cur == NULL)
        return done_testing();

    /* SNI: normalised like a URL host, then matched. */
    t = txn("127.0.0.1", NULL, "WWW.Evil.Test.", "127.0.0.1");
    is_int(uc_hook_sni(self, (pc_txn_t *)&t, &conf), PC_BLOCK, "SNI of a blocked domain: block");
    is_str(t.category, "adult", "SNI block: category");
    is_str(t.note_cat, "adult", "SNI block: category note");
    is_int(t.block_status, 403, "SNI block: 403");
    t = txn("127.0.0.1", NULL, "b\xc3\xbc" "cher.test", "127.0.0.1");
    is_int(uc_hook_sni(self, (pc_txn_t *)&t, &conf), PC_BLOCK, "SNI in UTF-8: IDN normalised");
    t = txn("127.0.0.1", NULL, "xn--bcher-kva.test", "127.0.0.1");
    is_int(uc_hook_sni(self, (pc_txn_t *)&t, &conf), PC_BLOCK, "SNI as an A-label");
    t = txn("127.0.0.1", NULL, "fine.test", "127.0.0.1");
    is_int(uc_hook_sni(self, (pc_txn_t *)&t, &conf), PC_CONTINUE, "SNI of a clean host: continue");
    t = txn("127.0.0.1", NULL, NULL, "127.0.0.1");
    is_int(uc_hook_sni(self, (pc_txn_t *)&t, &conf), PC_CONTINUE, "no SNI: continue");
    t = txn("127.0.0.1", NULL, "bad..name", "127.0.0.1");
    is_int(uc_hook_sni(self, (pc_txn_t *)&t, &conf), PC_BLOCK, "invalid SNI: refused");
    is_int(t.block_status, 400, "invalid SNI: 400");
    ok(strstr(t.reason, "TLS server name") != NULL, "invalid SNI: reason says so (%s)", t.reason);
    t = txn("127.0.0.1", NULL, "ok.evil.test", "127.0.0.1");
    is_int(uc_hook_sni(self, (pc_txn_t *)&t, &conf), PC_CONTINUE, "SNI on the exception list");
    is_str(t.note_uc, "exception", "SNI exception noted");

    /* CONNECT and requests. */
    t = txn("sub.evil.test", NULL, NULL, "127.0.0.1");
    is_int(uc_hook_connect(self, (pc_txn_t *)&t, &conf), PC_BLOCK, "CONNECT to a blocked domain");
    t = txn("play.test", "/flash/x", NULL, "127.0.0.1");
    is_int(uc_hook_request(self, (pc_txn_t *)&t, &conf), PC_CONTINUE,
           "games not blocked for the default policy");
    is_str(t.note_cat, "games", "games noted (#listcategory)");
    t = txn("play.test", "/flash/./x", NULL, "127.0.0.2");
    is_int(uc_hook_request(self, (pc_txn_t *)&t, &conf), PC_BLOCK, "games blocked for kids");
    t = txn("play.test", "/a%00", NULL, "127.0.0.1");
    is_int(uc_hook_request(self, (pc_txn_t *)&t, &conf), PC_BLOCK, "escaped NUL refused");
    is_int(t.block_status, 400, "escaped NUL: 400");
    {
        char *longp = malloc(20000);
        memset(longp, 'a', 19999);
        longp[0] = '/';
        longp[19999] = '\0';
        t = txn("evil.test", longp, NULL, "127.0.0.1");
        is_int(uc_hook_request(self, (pc_txn_t *)&t, &conf), PC_BLOCK,
               "a 20000-byte path (heap buffers) is still judged");
        is_str(t.category, "adult", "long path: category");
        free(longp);
    }

    /* Signature: unchanged, then changed. */
    ok(uc_lists_stat_sig(conf.cur) == conf.cur->sig, "signature unchanged");
    free(write_list("adult.txt", "evil.test\nmore.test\n"));
    ok(uc_lists_stat_sig(conf.cur) != conf.cur->sig, "signature changes with a file");
    {
        char sum[512];
        uc_lists_t *l = uc_lists_load(&conf, NULL, NULL, err, sizeof(err));
        ok(l != NULL, "reload");
        uc_lists_summary(l, sum, sizeof(sum));
        ok(strstr(sum, "3 domains, 1 urls") != NULL, "summary: %s", sum);
        uc_lists_free(l);
    }
    uc_lists_free(conf.cur);
    for (int i = 0; i < conf.nsrc; i++) {
        unlink(conf.src[i].path);
        free(conf.src[i].path);
        free(conf.src[i].category);
        free(conf.src[i].file);
    }
    free(conf.src);
    for (int p = 0; p < conf.npol; p++) {
        for (int i = 0; i < conf.pol[p].nblock; i++) {
            free(conf.pol[p].block[i].name);
            free(conf.pol[p].block[i].file);
        }
        free(conf.pol[p].block);
        free(conf.pol[p].allow_src);
        free(conf.pol[p].name);
        netaddr_set_free(conf.pol[p].clients);
    }
    free(conf.pol);
    pthread_rwlock_destroy(&conf.lock);
    rmdir(dir);
    return done_testing();
}
