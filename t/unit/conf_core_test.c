/* conf_core_test.c - unit tests for core/conf_core.c: defaults, every directive, errors, references. */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"

static char dir[PATH_MAX];

static const char *P(const char *rel)
{
    static char bufs[4][PATH_MAX * 2];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, PATH_MAX * 2, "%s/%s", dir, rel);
    return b;
}

static void writef(const char *rel, const char *text)
{
    FILE *f = fopen(P(rel), "w");
    if (f == NULL || fputs(text, f) < 0) {
        diag("cannot write %s", rel);
        exit(1);
    }
    fclose(f);
}

/* Builds a snapshot from text parsed as DIR/main.conf. */
static conf_t *build(const char *text, char *err, size_t errlen)
{
    conf_tree_t *t = conf_tree_parse(P("main.conf"), text, strlen(text), err, errlen);
    conf_t *c;

    if (t == NULL)
        return NULL;
    c = conf_core_build(t, P("main.conf"), err, errlen);
    if (c == NULL)
        conf_tree_free(t);  /* a failed build leaves the tree to the caller */
    return c;
}

static conf_t *build_ok(const char *text, const char *name)
{
    char err[1024] = "";
    conf_t *c = build(text, err, sizeof(err));
    if (!ok(c != NULL, "%s: builds", name))
        diag("  %s", err);
    return c;
}

/* Expects the error "DIR/main.conf:" + want, with "@" in want replaced by DIR. */
static void build_err(const char *text, const char *want, const char *name)
{
    char err[1024] = "", exp[4 * PATH_MAX], *o;
    const char *w;
    conf_t *c = build(text, err, sizeof(err));

    o = exp + snprintf(exp, sizeof(exp), "%s:", P("main.conf"));
    for (w = want; *w != '\0' && o + strlen(dir) + 2 < exp + sizeof(exp); w++) {
        if (*w == '@') {
            strcpy(o, dir);
            o += strlen(dir);
        } else {
            *o++ = *w;
        }
    }
    *o = '\0';
    ok(c == NULL, "%s: refused", name);
    is_str(err, exp, "%s: message", name);
    if (c != NULL)
        conf_unref(c);
}

static int contains(const conf_t *c, const char *addr)
{
    netaddr_t a;
    if (netaddr_parse(addr, &a) < 0) {
        diag("test bug: %s", addr);
        return -1;
    }
    return netaddr_set_contains(c->allow_clients, &a);
}

/* ---- defaults ------------------------------------------------------------ */

static void test_defaults(void)
{
    conf_t *c = build_ok("# nothing\n", "empty config");
    char host[256] = "";

    if (c == NULL)
        return;
    is_int(c->nlisten, 1, "default: one listener");
    is_str(c->listen[0].text, "127.0.0.1:3128", "default: listen 127.0.0.1:3128");
    ok(c->listen[0].ss.ss_family == AF_INET &&
           ((struct sockaddr_in *)&c->listen[0].ss)->sin_port == htons(3128) &&
           ((struct sockaddr_in *)&c->listen[0].ss)->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
           c->listen[0].len == sizeof(struct sockaddr_in),
       "default: listen sockaddr");
    ok(contains(c, "127.0.0.1") == 1 && contains(c, "127.255.255.255") == 1 &&
           contains(c, "::1") == 1 && contains(c, "::ffff:127.0.0.2") == 1,
       "default: allow_clients holds 127.0.0.0/8 and ::1");
    ok(contains(c, "128.0.0.1") == 0 && contains(c, "10.0.0.1") == 0 &&
           contains(c, "::2") == 0 && contains(c, "::") == 0 && contains(c, "0.0.0.0") == 0,
       "default: allow_clients holds nothing else");
    is_int(netaddr_set_count(c->allow_clients), 2, "default: two allow_clients entries");
    ok(c->nconnect_ports == 1 && c->connect_ports[0].lo == 443 && c->connect_ports[0].hi == 443,
       "default: connect_ports 443");
    is_int(c->allow_local_upstreams, 0, "default: allow_local_upstreams off");
    is_int(c->naccess_logs, 0, "default: no access log");
    ok(c->access_logs == NULL, "default: access_logs NULL");
    is_str(c->error_log, "stderr", "default: error_log stderr");
    is_int(c->error_log_level, CONF_LOG_INFO, "default: error_log level info");
#ifdef PLUGINDIR
    is_str(c->plugin_dir, PLUGINDIR, "default: plugin_dir PLUGINDIR");
#else
    is_str(c->plugin_dir, "/usr/local/lib/portcullis/plugins", "default: plugin_dir");
#endif
    ok(c->block_page == NULL, "default: block_page built in");
    ok(c->user == NULL && c->group == NULL, "default: no user switch");
    ok(c->pid_file == NULL, "default: no pid file");
    gethostname(host, sizeof(host) - 1);
    ok(c->visible_hostname != NULL && c->visible_hostname[0] != '\0', "default: visible_hostname set");
    if (host[0] != '\0' && strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == strlen(host))
        is_str(c->visible_hostname, host, "default: visible_hostname is gethostname()");
    is_int(c->forwarded_for, CONF_XFF_OFF, "default: forwarded_for off");
    is_int(c->connect_timeout, 30000, "default: connect_timeout 30s");
    is_int(c->client_header_timeout, 30000, "default: client_header_timeout 30s");
    is_int(c->client_idle_timeout, 120000, "default: client_idle_timeout 2m");
    is_int(c->read_timeout, 300000, "default: read_timeout 5m");
    is_int(c->send_timeout, 60000, "default: send_timeout 1m");
    is_int(c->tunnel_idle_timeout, 900000, "default: tunnel_idle_timeout 15m");
    is_int(c->upstream_idle_timeout, 60000, "default: upstream_idle_timeout 1m");
    is_int(c->drain_timeout, 30000, "default: drain_timeout 30s");
    is_int(c->dns_ttl, 300000, "default: dns_ttl 5m");
    is_int(c->dns_negative_ttl, 30000, "default: dns_negative_ttl 30s");
    is_int(c->max_connections, 4096, "default: max_connections 4096");
    is_int(c->max_connections_per_client, 256, "default: max_connections_per_client 256");
    is_int(c->max_header_size, 65536, "default: max_header_size 64k");
    is_int(c->upstream_pool_size, 1024, "default: upstream_pool_size 1024");
    is_int(c->upstream_pool_per_host, 128, "default: upstream_pool_per_host 128");
    is_int(c->workers, 0, "default: workers 0 (one per CPU)");
    is_int(atomic_load(&c->refs), 1, "new snapshot has one reference");
    ok(c->tree != NULL, "snapshot keeps the tree");
    is_str(c->path, P("main.conf"), "snapshot path");
    conf_unref(c);
}

/* ---- every directive, good values ---------------------------------------- */

static void test_all_directives(void)
{
    static const char text[] =
        "listen 127.0.0.1:3128 [::1]:3129\n"
        "listen 10.0.0.1:8080\n"
        "allow_clients 10.0.0.0/8 192.168.1.10-192.168.1.20\n"
        "allow_clients fd00::/8 203.0.113.7\n"
        "connect_ports 443 8443\n"
        "connect_ports 1000-2000\n"
        "allow_local_upstreams on\n"
        "access_log logs/access.log\n"
        "access_log /var/log/p/access.json json\n"
        "access_log \"logs/squid.log\" squid\n"
        "error_log logs/error.log debug\n"
        "plugin_dir plugins\n"
        "block_page /usr/share/p/block.html\n"
        "user proxy nogroup\n"
        "pid_file run/p.pid\n"
        "visible_hostname proxy.example.com\n"
        "forwarded_for delete\n"
        "connect_timeout 10s\n"
        "client_header_timeout 15s\n"
        "client_idle_timeout 1m30s\n"
        "read_timeout 2m\n"
        "send_timeout 45\n"
        "tunnel_idle_timeout 1h\n"
        "upstream_idle_timeout 500ms\n"
        "drain_timeout 0\n"
        "dns_ttl 0s\n"
        "dns_negative_ttl 1d\n"
        "max_connections 1000000\n"
        "max_connections_per_client 1\n"
        "max_header_size 1M\n"
        "upstream_pool_size 0\n"
        "upstream_pool_per_host 10000\n"
        "workers 0\n"
        "plugin urlcat {\n"
        "    lists /var/lib/lists\n"
        "    block malware phishing\n"
        "}\n"
        "plugin geoip {\n}\n";
    conf_t *c = build_ok(text, "every directive");
    const conf_node_t *n;
    int plugins = 0;

    if (c == NULL)
        return;
    is_int(c->nlisten, 3, "listen accumulates");
    is_str(c->listen[0].text, "127.0.0.1:3128", "listen 1");
    is_str(c->listen[1].text, "[::1]:3129", "listen 2");
    is_str(c->listen[2].text, "10.0.0.1:8080", "listen 3");
    ok(contains(c, "10.200.0.1") == 1 && contains(c, "192.168.1.15") == 1 &&
           contains(c, "fd12::1") == 1 && contains(c, "203.0.113.7") == 1,
       "allow_clients accumulates");
    ok(contains(c, "127.0.0.1") == 0 && contains(c, "::1") == 0 &&
           contains(c, "192.168.1.21") == 0,
       "given allow_clients replace the loopback default");
    is_int(netaddr_set_count(c->allow_clients), 4, "four allow_clients entries");
    ok(c->nconnect_ports == 3 && c->connect_ports[0].lo == 443 && c->connect_ports[0].hi == 443 &&
           c->connect_ports[1].lo == 8443 && c->connect_ports[2].lo == 1000 &&
           c->connect_ports[2].hi == 2000,
       "connect_ports accumulate");
    is_int(c->allow_local_upstreams, 1, "allow_local_upstreams on");
    is_int(c->naccess_logs, 3, "three access logs");
    if (c->naccess_logs == 3) {
        is_str(c->access_logs[0].path, P("logs/access.log"), "access_log relative path resolved");
        is_int(c->access_logs[0].format, CONF_LOG_SQUID, "access_log default format squid");
        is_str(c->access_logs[1].path, "/var/log/p/access.json", "access_log absolute path");
        is_int(c->access_logs[1].format, CONF_LOG_JSON, "access_log json");
        is_str(c->access_logs[2].path, P("logs/squid.log"), "access_log quoted path");
        is_int(c->access_logs[2].format, CONF_LOG_SQUID, "access_log squid");
    }
    is_str(c->error_log, P("logs/error.log"), "error_log path resolved");
    is_int(c->error_log_level, CONF_LOG_DEBUG, "error_log debug");
    is_str(c->plugin_dir, P("plugins"), "plugin_dir resolved");
    is_str(c->block_page, "/usr/share/p/block.html", "block_page");
    is_str(c->user, "proxy", "user");
    is_str(c->group, "nogroup", "group");
    is_str(c->pid_file, P("run/p.pid"), "pid_file resolved");
    is_str(c->visible_hostname, "proxy.example.com", "visible_hostname");
    is_int(c->forwarded_for, CONF_XFF_DELETE, "forwarded_for delete");
    is_int(c->connect_timeout, 10000, "connect_timeout");
    is_int(c->client_header_timeout, 15000, "client_header_timeout");
    is_int(c->client_idle_timeout, 90000, "client_idle_timeout");
    is_int(c->read_timeout, 120000, "read_timeout");
    is_int(c->send_timeout, 45000, "send_timeout bare seconds");
    is_int(c->tunnel_idle_timeout, 3600000, "tunnel_idle_timeout");
    is_int(c->upstream_idle_timeout, 500, "upstream_idle_timeout");
    is_int(c->drain_timeout, 0, "drain_timeout 0");
    is_int(c->dns_ttl, 0, "dns_ttl 0");
    is_int(c->dns_negative_ttl, 86400000, "dns_negative_ttl");
    is_int(c->max_connections, 1000000, "max_connections");
    is_int(c->max_connections_per_client, 1, "max_connections_per_client");
    is_int(c->max_header_size, 1048576, "max_header_size");
    is_int(c->upstream_pool_size, 0, "upstream_pool_size");
    is_int(c->upstream_pool_per_host, 10000, "upstream_pool_per_host");
    is_int(c->workers, 0, "workers");
    for (n = conf_tree_root(c->tree)->child; n != NULL; n = n->next) {
        if (strcmp(n->name, "plugin") == 0) {
            plugins++;
            if (strcmp(n->argv[0], "urlcat") == 0)
                ok(n->has_block && n->child != NULL && strcmp(n->child->name, "lists") == 0 &&
                       n->child->next != NULL && n->child->next->argc == 2,
                   "plugin block left intact for the loader");
        }
    }
    is_int(plugins, 2, "both plugin blocks in the tree");
    conf_unref(c);

    c = build_ok("user proxy\nerror_log stderr warn\nforwarded_for on\n", "user without group");
    if (c != NULL) {
        ok(c->user != NULL && strcmp(c->user, "proxy") == 0 && c->group == NULL, "group NULL");
        is_str(c->error_log, "stderr", "error_log stderr");
        is_int(c->error_log_level, CONF_LOG_WARN, "error_log warn");
        is_int(c->forwarded_for, CONF_XFF_ON, "forwarded_for on");
        conf_unref(c);
    }
    c = build_ok("error_log /var/log/e.log\nforwarded_for off\nallow_local_upstreams no\n",
                 "error_log without level");
    if (c != NULL) {
        is_str(c->error_log, "/var/log/e.log", "error_log absolute");
        is_int(c->error_log_level, CONF_LOG_INFO, "error_log level stays info");
        is_int(c->forwarded_for, CONF_XFF_OFF, "forwarded_for off");
        conf_unref(c);
    }
    c = build_ok("access_log off\nlisten 3128\nlisten [::]:3129\nconnect_ports 443-443 1\n",
                 "access_log off");
    if (c != NULL) {
        is_int(c->naccess_logs, 0, "access_log off: no logs");
        is_str(c->listen[0].text, "*:3128", "listen PORT is *:PORT");
        ok(c->listen[0].ss.ss_family == AF_INET6 &&
               IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&c->listen[0].ss)->sin6_addr),
           "listen PORT binds [::]");
        ok(c->nconnect_ports == 2 && c->connect_ports[1].lo == 1 && c->connect_ports[1].hi == 1,
           "connect_ports 443-443 1");
        conf_unref(c);
    }
    {
        static const char *levels[] = {"debug", "info", "notice", "warn",
                                       "error", "crit", "alert", "emerg"};
        static const int want[] = {CONF_LOG_DEBUG, CONF_LOG_INFO, CONF_LOG_NOTICE, CONF_LOG_WARN,
                                   CONF_LOG_ERR, CONF_LOG_CRIT, CONF_LOG_ALERT, CONF_LOG_EMERG};
        size_t k;
        for (k = 0; k < 8; k++) {
            char t[64];
            snprintf(t, sizeof(t), "error_log stderr %s\n", levels[k]);
            c = build_ok(t, levels[k]);
            if (c != NULL) {
                is_int(c->error_log_level, want[k], "level %s", levels[k]);
                conf_unref(c);
            }
        }
    }
}

/* Relative paths resolve against the file that holds the directive. */
static void test_paths_in_includes(void)
{
    char err[1024] = "";
    conf_t *c;

    mkdir(P("sub"), 0700);
    writef("main.conf", "access_log a.log\ninclude sub/logs.conf\n");
    writef("sub/logs.conf", "access_log b.log json\nblock_page ../page.html\n");
    c = conf_load(P("main.conf"), err, sizeof(err));
    if (!ok(c != NULL, "conf_load with include"))
        diag("  %s", err);
    if (c != NULL) {
        is_str(c->access_logs[0].path, P("a.log"), "path in main file");
        is_str(c->access_logs[1].path, P("sub/b.log"), "path in included file");
        is_str(c->block_page, P("sub/../page.html"), "'..' path in included file");
        is_str(c->path, P("main.conf"), "conf_load path");
        conf_unref(c);
    }

    /* Duplicates across files name both places. */
    writef("main.conf", "workers 2\ninclude sub/dup.conf\n");
    writef("sub/dup.conf", "\nworkers 3\n");
    c = conf_load(P("main.conf"), err, sizeof(err));
    {
        char exp[3 * PATH_MAX];
        snprintf(exp, sizeof(exp), "%s:2: 'workers' is duplicate (first at %s:1)",
                 P("sub/dup.conf"), P("main.conf"));
        ok(c == NULL, "duplicate across an include refused");
        is_str(err, exp, "duplicate across an include: message");
    }
    conf_unref(c);

    c = conf_load(P("missing.conf"), err, sizeof(err));
    {
        char exp[3 * PATH_MAX];
        snprintf(exp, sizeof(exp), "%s: cannot open: No such file or directory", P("missing.conf"));
        ok(c == NULL, "conf_load of a missing file");
        is_str(err, exp, "conf_load of a missing file: message");
    }
}

/* ---- errors -------------------------------------------------------------- */

static void test_errors(void)
{
    /* The table's generic rules. */
    build_err("listen 3128\nfoo bar\n", "2: unknown directive 'foo'", "unknown directive");
    build_err("acl x {\n}\n", "1: unknown directive 'acl'", "unknown block directive");
    build_err("workers\n", "1: 'workers' takes 1 argument", "missing argument");
    build_err("workers 1 2\n", "1: 'workers' takes 1 argument", "extra argument");
    build_err("listen\n", "1: 'listen' takes at least 1 argument", "listen without address");
    build_err("allow_clients\n", "1: 'allow_clients' takes at least 1 argument", "empty allow_clients");
    build_err("connect_ports\n", "1: 'connect_ports' takes at least 1 argument", "empty connect_ports");
    build_err("access_log a squid x\n", "1: 'access_log' takes 1 or 2 arguments", "access_log 3 args");
    build_err("access_log\n", "1: 'access_log' takes 1 or 2 arguments", "access_log 0 args");
    build_err("error_log a info x\n", "1: 'error_log' takes 1 or 2 arguments", "error_log 3 args");
    build_err("user a b c\n", "1: 'user' takes 1 or 2 arguments", "user 3 args");
    build_err("plugin\n", "1: 'plugin' takes 1 argument", "plugin without name");
    build_err("plugin a b {\n}\n", "1: 'plugin' takes 1 argument", "plugin with two names");
    build_err("plugin urlcat\n", "1: 'plugin' needs a block", "plugin without block");
    build_err("workers 2 {\n}\n", "1: 'workers' takes no block", "block on a plain directive");
    build_err("listen 3128 {\n listen 3129\n}\n", "1: 'listen' takes no block", "block on listen");
    build_err("\nworkers 2\n\nworkers 3\n", "4: 'workers' is duplicate (first at @/main.conf:2)",
              "duplicate directive");
    build_err("error_log stderr\nerror_log stderr\n",
              "2: 'error_log' is duplicate (first at @/main.conf:1)", "duplicate error_log");
    build_err("user a\nuser b\n", "2: 'user' is duplicate (first at @/main.conf:1)", "duplicate user");
    build_err("plugin a {\n}\nplugin b {\n}\nplugin a {\n}\n",
              "5: plugin: 'a' is duplicate (first at @/main.conf:1)", "duplicate plugin");
    build_err("plugin ../evil {\n}\n", "1: plugin: invalid plugin name '../evil'", "plugin name with '/'");
    build_err("plugin -x {\n}\n", "1: plugin: invalid plugin name '-x'", "plugin name with leading '-'");
    build_err("plugin \"\" {\n}\n", "1: plugin: invalid plugin name ''", "empty plugin name");

    /* listen */
    build_err("listen 127.0.0.1:0\n", "1: listen: invalid port '0'", "listen port 0");
    build_err("listen 65536\n", "1: listen: invalid port '65536'", "listen port 65536");
    build_err("listen localhost:3128\n", "1: listen: invalid address 'localhost'", "listen host name");
    build_err("listen ::1:3128\n", "1: listen: IPv6 address needs brackets in '::1:3128'",
              "listen IPv6 without brackets");
    build_err("listen 127.0.0.1\n", "1: listen: missing port in '127.0.0.1'", "listen without port");
    build_err("listen 127.0.0.1:3128\nlisten 127.0.0.1:3128\n",
              "2: listen: '127.0.0.1:3128' is duplicate (first at @/main.conf:1)", "duplicate listen");
    build_err("listen 127.0.0.1:3128 [::ffff:127.0.0.1]:3128\n",
              "1: listen: '127.0.0.1:3128' is duplicate (first at @/main.conf:1)",
              "duplicate listen through a mapped address");
    build_err("listen 3128\nlisten *:3128\n", "2: listen: '*:3128' is duplicate (first at @/main.conf:1)",
              "duplicate wildcard listen");
    build_err("listen 3128\nlisten [::]:3128\n", "2: listen: '[::]:3128' is duplicate (first at @/main.conf:1)",
              "[::] is the wildcard");
    build_err("listen 3128\nlisten 10.0.0.1:3128\n",
              "2: listen: '10.0.0.1:3128' overlaps '*:3128' (@/main.conf:1)", "address under a wildcard");
    build_err("listen [::1]:3128\nlisten *:3128\n",
              "2: listen: '*:3128' overlaps '[::1]:3128' (@/main.conf:1)", "wildcard over an address");
    build_err("listen 0.0.0.0:80\nlisten 10.0.0.1:80\n",
              "2: listen: '10.0.0.1:80' overlaps '0.0.0.0:80' (@/main.conf:1)", "IPv4 wildcard");

    /* allow_clients, connect_ports */
    build_err("allow_clients 10.0.0.0/8 10.0.0.0/33\n",
              "1: allow_clients: invalid prefix length in '10.0.0.0/33'", "allow_clients bad prefix");
    build_err("allow_clients all\n", "1: allow_clients: invalid address 'all'", "allow_clients all");
    build_err("allow_clients 10.0.0.9-10.0.0.1\n",
              "1: allow_clients: invalid range '10.0.0.9-10.0.0.1': start is after end",
              "allow_clients reversed range");
    build_err("connect_ports 0\n", "1: connect_ports: invalid port '0'", "connect_ports 0");
    build_err("connect_ports 443 https\n", "1: connect_ports: invalid port 'https'", "connect_ports name");
    build_err("connect_ports 2000-1000\n", "1: connect_ports: invalid port range '2000-1000'",
              "connect_ports reversed range");
    build_err("connect_ports 1000-\n", "1: connect_ports: invalid port range '1000-'", "half range");
    build_err("connect_ports 0-10\n", "1: connect_ports: invalid port range '0-10'", "range from 0");
    build_err("connect_ports 1-65536\n", "1: connect_ports: invalid port range '1-65536'", "range past 65535");
    build_err("connect_ports 123456789-1\n", "1: connect_ports: invalid port range '123456789-1'",
              "range with a long start");

    /* flags and enums */
    build_err("allow_local_upstreams maybe\n",
              "1: allow_local_upstreams: invalid flag 'maybe' (use on or off)", "bad flag");
    build_err("forwarded_for yes\n", "1: forwarded_for: invalid value 'yes' (use on, off or delete)",
              "bad forwarded_for");
    build_err("access_log a.log csv\n", "1: access_log: invalid format 'csv' (use squid or json)",
              "bad log format");
    build_err("error_log stderr verbose\n",
              "1: error_log: invalid level 'verbose' (use debug, info, notice, warn, error, crit, alert or emerg)",
              "bad log level");
    build_err("access_log off json\n", "1: access_log: 'off' takes no format", "access_log off json");
    build_err("access_log a.log\naccess_log off\n",
              "2: access_log: 'off' conflicts with access_log at @/main.conf:1", "off after a log");
    build_err("access_log off\naccess_log a.log\n",
              "2: access_log: conflicts with 'access_log off' at @/main.conf:1", "a log after off");
    build_err("access_log a.log\naccess_log /x/y.log\naccess_log a.log json\n",
              "3: access_log: '@/a.log' is duplicate (first at @/main.conf:1)", "same access log twice");
    build_err("access_log \"\"\n", "1: access_log: empty argument", "empty access_log path");
    build_err("error_log \"\"\n", "1: error_log: empty argument", "empty error_log path");
    build_err("pid_file ''\n", "1: pid_file: empty argument", "empty pid_file");
    build_err("user ''\n", "1: user: empty argument", "empty user");
    build_err("user a ''\n", "1: user: empty argument", "empty group");
    build_err("visible_hostname 'a b'\n", "1: visible_hostname: invalid host name 'a b'",
              "host name with a space");
    /* Messages stay one line: a control byte of the word shows as '?'. */
    build_err("visible_hostname \"a\\nVia: x\"\n", "1: visible_hostname: invalid host name 'a?Via: x'",
              "host name with a newline");

    /* durations */
    build_err("connect_timeout 5x\n",
              "1: connect_timeout: invalid duration '5x' (use a number with ms, s, m, h or d)",
              "bad duration");
    build_err("connect_timeout 0\n", "1: connect_timeout: '0' is too short (at least 1ms)",
              "zero connect_timeout");
    build_err("read_timeout 0ms\n", "1: read_timeout: '0ms' is too short (at least 1ms)",
              "zero read_timeout");
    build_err("dns_ttl 99999999999999999999\n",
              "1: dns_ttl: duration '99999999999999999999' is too large", "huge dns_ttl");
    {
        static const char *nonzero[] = {"connect_timeout", "client_header_timeout",
                                        "client_idle_timeout", "read_timeout", "send_timeout",
                                        "tunnel_idle_timeout", "upstream_idle_timeout"};
        static const char *zero_ok[] = {"drain_timeout", "dns_ttl", "dns_negative_ttl"};
        size_t k;
        for (k = 0; k < sizeof(nonzero) / sizeof(nonzero[0]); k++) {
            char t[128], w[128];
            snprintf(t, sizeof(t), "%s 0\n", nonzero[k]);
            snprintf(w, sizeof(w), "1: %s: '0' is too short (at least 1ms)", nonzero[k]);
            build_err(t, w, nonzero[k]);
            snprintf(t, sizeof(t), "%s 1ms\n", nonzero[k]);
            conf_unref(build_ok(t, nonzero[k]));
            snprintf(t, sizeof(t), "%s 1s\n%s 2s\n", nonzero[k], nonzero[k]);
            snprintf(w, sizeof(w), "2: '%s' is duplicate (first at @/main.conf:1)", nonzero[k]);
            build_err(t, w, nonzero[k]);
        }
        for (k = 0; k < sizeof(zero_ok) / sizeof(zero_ok[0]); k++) {
            char t[128], w[160];
            snprintf(t, sizeof(t), "%s 0\n", zero_ok[k]);
            conf_unref(build_ok(t, zero_ok[k]));
            snprintf(t, sizeof(t), "%s 1 2\n", zero_ok[k]);
            snprintf(w, sizeof(w), "1: '%s' takes 1 argument", zero_ok[k]);
            build_err(t, w, zero_ok[k]);
            snprintf(t, sizeof(t), "%s 1y\n", zero_ok[k]);
            snprintf(w, sizeof(w),
                     "1: %s: invalid duration '1y' (use a number with ms, s, m, h or d)", zero_ok[k]);
            build_err(t, w, zero_ok[k]);
        }
    }

    /* numeric limits: each bound and one past it */
    {
        static const struct {
            const char *name, *lo, *hi, *below, *above, *range;
            size_t off;
        } lim[] = {
            {"max_connections", "1", "1000000", "0", "1000001", "1..1000000",
             offsetof(conf_t, max_connections)},
            {"max_connections_per_client", "1", "1000000", "0", "1000001", "1..1000000",
             offsetof(conf_t, max_connections_per_client)},
            {"upstream_pool_size", "0", "100000", "-1", "100001", "0..100000",
             offsetof(conf_t, upstream_pool_size)},
            {"upstream_pool_per_host", "0", "10000", "-1", "10001", "0..10000",
             offsetof(conf_t, upstream_pool_per_host)},
            {"workers", "0", "256", "-1", "257", "0..256", offsetof(conf_t, workers)},
        };
        size_t k;
        for (k = 0; k < sizeof(lim) / sizeof(lim[0]); k++) {
            char t[128], w[160];
            conf_t *c;
            snprintf(t, sizeof(t), "%s %s\n", lim[k].name, lim[k].lo);
            conf_unref(build_ok(t, lim[k].name));
            snprintf(t, sizeof(t), "%s %s\n", lim[k].name, lim[k].hi);
            conf_unref(build_ok(t, lim[k].name));
            snprintf(t, sizeof(t), "%s %s\n", lim[k].name, lim[k].below);
            snprintf(w, sizeof(w), "1: %s: '%s' is out of range (%s)", lim[k].name, lim[k].below,
                     lim[k].range);
            build_err(t, w, lim[k].name);
            snprintf(t, sizeof(t), "%s %s\n", lim[k].name, lim[k].above);
            snprintf(w, sizeof(w), "1: %s: '%s' is out of range (%s)", lim[k].name, lim[k].above,
                     lim[k].range);
            build_err(t, w, lim[k].name);
            snprintf(t, sizeof(t), "%s lots\n", lim[k].name);
            snprintf(w, sizeof(w), "1: %s: invalid number 'lots'", lim[k].name);
            build_err(t, w, lim[k].name);
            snprintf(t, sizeof(t), "%s 7\n", lim[k].name);
            c = build(t, w, sizeof(w));
            ok(c != NULL && *(long *)((char *)c + lim[k].off) == 7, "%s 7 is stored",
               lim[k].name);
            conf_unref(c);
        }
    }
    build_err("max_header_size 1023\n", "1: max_header_size: '1023' is out of range (1k..1M)",
              "max_header_size below 1k");
    build_err("max_header_size 1025k\n", "1: max_header_size: '1025k' is out of range (1k..1M)",
              "max_header_size above 1M");
    build_err("max_header_size 64KB\n",
              "1: max_header_size: invalid size '64KB' (use a number with k, m or g)",
              "max_header_size with KB");
    conf_unref(build_ok("max_header_size 1k\n", "max_header_size 1k"));
    conf_unref(build_ok("max_header_size 1024\n", "max_header_size 1024"));
    conf_unref(build_ok("max_header_size 1048576\n", "max_header_size 1048576"));

    /* A syntax error never reaches the table. */
    build_err("workers 1\nlisten \"3128\n", "2: unterminated quote", "syntax error first");
}

/* ---- references ---------------------------------------------------------- */

struct ref_arg {
    conf_t *c;
    int n;
};

/* ---- HTTPS policy directives (issue 4) ------------------------------------ */

static const conf_policy_t *policy_of(const conf_t *c, const char *addr)
{
    netaddr_t a;

    if (netaddr_parse(addr, &a) < 0)
        return NULL;
    return conf_policy_for(c, &a);
}

static void test_tls_policy(void)
{
    static const char text[] =
        "intercept off\n"
        "tls_peek_timeout 2s\n"
        "sni_mismatch allow\n"
        "connect_require_tls 443 8443\n"
        "connect_require_tls 9000-9010\n"
        "upstream_cert_error refuse\n"
        "policy staff {\n"
        "    clients 10.1.0.0/16 10.2.0.1\n"
        "    intercept on\n"
        "}\n"
        "policy guests {\n"
        "    clients 10.0.0.0/8\n"
        "}\n";
    conf_t *c = build_ok("listen 127.0.0.1:3128\n", "no TLS directives");
    const conf_policy_t *p;

    if (c) {
        is_int((int)c->tls_peek_timeout, 10000, "tls_peek_timeout defaults to 10s");
        is_int(c->sni_mismatch_allow, 0, "sni_mismatch defaults to block");
        ok(c->nrequire_tls_ports == 1 && c->require_tls_ports[0].lo == 443 &&
               c->require_tls_ports[0].hi == 443,
           "connect_require_tls defaults to 443");
        is_int(c->upstream_cert_refuse, 0, "upstream_cert_error defaults to page");
        is_int(c->npolicies, 0, "no policies");
        is_int(conf_intercept_wanted(c), 0, "nothing intercepted by default");
        conf_unref(c);
    }
    c = build_ok(text, "TLS directives");
    if (c == NULL)
        return;
    is_int((int)c->tls_peek_timeout, 2000, "tls_peek_timeout 2s");
    is_int(c->sni_mismatch_allow, 1, "sni_mismatch allow");
    ok(c->nrequire_tls_ports == 3 && c->require_tls_ports[1].lo == 8443 &&
           c->require_tls_ports[2].lo == 9000 && c->require_tls_ports[2].hi == 9010,
       "connect_require_tls accumulates and replaces the default");
    is_int(c->upstream_cert_refuse, 1, "upstream_cert_error refuse");
    is_int(c->npolicies, 2, "two policies");
    p = policy_of(c, "10.1.2.3");
    ok(p != NULL && strcmp(p->name, "staff") == 0 && p->intercept == 1,
       "a client of the first policy gets it");
    p = policy_of(c, "10.9.9.9");
    ok(p != NULL && strcmp(p->name, "guests") == 0 && p->intercept == -1,
       "the first matching policy in file order; intercept left to the global one");
    ok(policy_of(c, "192.168.1.1") == NULL, "no policy for other clients");
    is_int(conf_intercept_wanted(c), 1, "a policy with intercept on wants the CA");
    conf_unref(c);
    c = build_ok("connect_require_tls off\n", "connect_require_tls off");
    if (c) {
        is_int(c->nrequire_tls_ports, 0, "connect_require_tls off: no port requires TLS");
        conf_unref(c);
    }
    build_err("policy p {\n  intercept on\n}\n", "1: policy p: no 'clients' in the block",
              "policy without clients");
    build_err("policy p {\n  clients 10.0.0.0/8\n  colour red\n}\n",
              "3: policy p: unknown directive 'colour' in a policy block (use clients, "
              "intercept)",
              "unknown directive in a policy");
    build_err("policy p {\n  clients 10.0.0.0/8\n}\npolicy p {\n  clients 10.0.0.1\n}\n",
              "4: policy: 'p' is duplicate (first at @/main.conf:1)", "duplicate policy");
    build_err("sni_mismatch maybe\n",
              "1: sni_mismatch: invalid value 'maybe' (use block or allow)", "bad sni_mismatch");
    build_err("upstream_cert_error ignore\n",
              "1: upstream_cert_error: invalid value 'ignore' (use page or refuse)",
              "bad upstream_cert_error");
    build_err("connect_require_tls off 443\n",
              "1: connect_require_tls: 'off' cannot be combined with ports",
              "connect_require_tls off with ports");
}

static void *ref_thread(void *p)
{
    struct ref_arg *a = p;
    int k;
    for (k = 0; k < a->n; k++)
        conf_unref(conf_ref(a->c));
    return NULL;
}

static void test_refs(void)
{
    conf_t *c = build_ok("workers 3\n", "refcount");
    pthread_t th[8];
    struct ref_arg arg;
    int k, started = 0;

    if (c == NULL)
        return;
    ok(conf_ref(c) == c, "conf_ref returns its argument");
    is_int(atomic_load(&c->refs), 2, "two references");
    conf_unref(c);
    is_int(atomic_load(&c->refs), 1, "back to one");

    arg.c = c;
    arg.n = 100000;
    for (k = 0; k < 8; k++)
        if (pthread_create(&th[k], NULL, ref_thread, &arg) == 0)
            started++;
    for (k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    is_int(started, 8, "eight threads");
    is_int(atomic_load(&c->refs), 1, "800,000 concurrent ref/unref pairs balance");
    is_int(c->workers, 3, "snapshot intact after concurrent use");
    conf_unref(c);  /* frees; ASan reports a leak or double free */
    conf_unref(NULL);
    ok(1, "conf_unref(NULL) is a no-op");
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    char tmpl[] = "/tmp/conf_core_test.XXXXXX";

    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s", tmpl);

    test_defaults();
    test_all_directives();
    test_paths_in_includes();
    test_errors();
    test_tls_policy();
    test_refs();

    if (nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
        diag("cannot remove %s", dir);
    return done_testing();
}
