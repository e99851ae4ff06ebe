/* fuzz_urlcat_lists.c - fuzz target: urlcat's list loader (plugins/urlcat/lists.c) on UT1 trees and e2guardian-style lists. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "fuzz.h"
#include "lists.h"
#include "netaddr.h"
#include "urlnorm.h"

/*
 * The loader reads files (its only entry point is uc_lists_load() on a
 * configuration), so the input becomes files in a temporary directory, and
 * sandbox.c keeps ".Include<...>" from reaching anything else. The first
 * byte picks:
 *
 *   bits 0-2  the source: 0 a UT1/squidGuard tree (lists DIR), 1
 *             domain_list, 2 url_list, 3 expression_list, 4 allow (an
 *             exception list: hosts, addresses, CIDRs and URLs mixed)
 *   bit 3     list_errors warn (bad lines skipped) instead of fail
 *   bit 4     expressions_caseless
 *   bit 5     the directive names a category (no #listcategory switches)
 *
 * The rest is up to five files separated by NUL bytes (a NUL inside a list
 * line is an error anyway): for a list, the list, inc1.list and
 * sub/inc2.list (for .Include<inc1.list> and nested includes); for a tree,
 * cat0/domains, cat0/urls, cat0/expressions, global_usage, cat1/domains.
 *
 * Invariants: a load that succeeds answers lookups, and every plain domain
 * line of a domain list (and of cat0/domains) is found again by a lookup
 * of that domain, as a request for it would be; the summary line is
 * written. Everything else is memory safety (ASan, UBSan).
 */

static char dir[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(dir, sizeof(dir), "%s", fuzz_tmpdir());
    return 0;
}

static const char *const tree_files[] = {
    "tree/cat0/domains", "tree/cat0/urls", "tree/cat0/expressions", "tree/global_usage",
    "tree/cat1/domains",
};
static const char *const list_files[] = {"main.list", "inc1.list", "sub/inc2.list"};

static void warn(void *arg, const char *msg)
{
    (void)arg;
    FUZZ_CHECK(strchr(msg, '\n') == NULL, "warning of more than one line: %s", msg);
}

/* The host a domain-list line stands for, as lists.c reads it, into host;
 * 0 when the line is a plain domain (no range, blanket, include or
 * comment), else -1. */
static int line_domain(char *line, int e2, char *host)
{
    char *s = line, *e, *sep;
    const char *why;
    netaddr_t a;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    if (*s == '\0' || *s == '#' || (e2 && strncmp(s, ".Include<", 9) == 0))
        return -1;
    s[strcspn(s, " \t")] = '\0';  /* the first token (a " #" comment follows it) */
    for (char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    if (strcmp(s, "**") == 0 || strcmp(s, "*ip") == 0)
        return -1;  /* blankets */
    sep = strpbrk(s, "/-");
    if (sep) {
        char c = *sep;
        int addr;
        *sep = '\0';
        addr = netaddr_parse(s, &a) == 0;
        *sep = c;
        if (addr)
            return -1;  /* a CIDR or a range */
    }
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    else if (s[0] == '.')
        s++;
    if (urlnorm_host(s, strlen(s), host, URLNORM_HOST_MAX + 1, &why) < 0)
        return -1;
    return 0;
}

/* Looks every plain domain line of text up in db. */
static void check_domains(const ucdb_t *db, const uint8_t *text, size_t n, int e2)
{
    fuzz_in_t in = {text, n};

    while (in.n > 0) {
        size_t ll;
        const uint8_t *l = fuzz_part(&in, '\n', &ll);
        char *line = fuzz_strndup(l, ll), host[URLNORM_HOST_MAX + 1];
        if (ll <= 65536 && line_domain(line, e2, host) == 0) {
            ucdb_query_t q;
            ucset_t out;
            memset(&q, 0, sizeof(q));
            memset(&out, 0, sizeof(out));
            q.hostname = host;
            q.host_is_ip = urlnorm_host_is_ip(host);
            if (q.host_is_ip)
                FUZZ_CHECK(netaddr_parse(host, &q.ip) == 0, "address '%s' does not parse",
                           host);
            ucdb_lookup(db, &q, NULL, &out);
            FUZZ_CHECK(!ucset_empty(&out), "domain '%s' of the list is not found", host);
        }
        free(line);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    unsigned b = fuzz_byte(&in), kind = (b & 7) % 5;
    const uint8_t *part[5] = {NULL};
    size_t plen[5] = {0};
    uc_conf_t conf;
    uc_source_t src;
    uc_policy_t pol;
    char path[4200], err[1024], summary[512];
    uc_lists_t *l;
    int tree = kind == 0;

    if (size > 1 << 18)
        return 0;
    for (int i = 0; i < 5; i++)
        part[i] = fuzz_part(&in, 0, &plen[i]);
    for (int i = 0; i < (tree ? 5 : 3); i++)
        fuzz_write_file(dir, tree ? tree_files[i] : list_files[i], part[i], plen[i]);

    memset(&conf, 0, sizeof(conf));
    memset(&src, 0, sizeof(src));
    memset(&pol, 0, sizeof(pol));
    pol.name = "default";
    pol.file = "urlcat.conf";
    pol.line = 1;
    pol.log_only = -1;
    src.kind = tree ? UC_SRC_TREE
               : kind == 1 ? UC_SRC_DOMAINS
               : kind == 2 ? UC_SRC_URLS
               : kind == 3 ? UC_SRC_EXPRESSIONS
                           : UC_SRC_ALLOW;
    snprintf(path, sizeof(path), "%s/%s", dir, tree ? "tree" : "main.list");
    src.path = path;
    src.category = (b & 32) ? "fixed" : NULL;
    src.file = "urlcat.conf";
    src.line = 2;
    conf.src = &src;
    conf.nsrc = 1;
    conf.pol = &pol;
    conf.npol = 1;
    conf.caseless = (b >> 4) & 1;
    conf.list_errors = (b & 8) ? UC_ERRORS_WARN : UC_ERRORS_FAIL;

    err[0] = '\0';
    fuzz_sandbox(dir);
    l = uc_lists_load(&conf, warn, NULL, err, sizeof(err));
    fuzz_sandbox_off();
    if (l == NULL) {
        FUZZ_CHECK(err[0] != '\0', "failed load without a message");
        FUZZ_CHECK(strchr(err, '\n') == NULL, "message of more than one line: %s", err);
        return 0;
    }
    uc_lists_summary(l, summary, sizeof(summary));
    if (conf.list_errors == UC_ERRORS_FAIL) {
        if (kind == 1)
            check_domains(l->db, part[0], plen[0], 1);
        else if (tree)
            check_domains(l->db, part[0], plen[0], 0);
    }
    uc_lists_free(l);
    return 0;
}
