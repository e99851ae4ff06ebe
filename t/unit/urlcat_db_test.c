/* urlcat_db_test.c - unit tests for plugins/urlcat/db.c: label boundaries, URL prefixes, sets, expressions, addresses. */
#include <string.h>

#include "db.h"
#include "exprset.h"
#include "tap.h"
#include "urlnorm.h"

static ucdb_t *db;
static int adult, news, malware, blanket, iponly;

/* The categories host + path (path NULL: a tunnel) is in, as "a,b". */
static const char *cats(const char *host, const char *path)
{
    static char buf[256];
    char h[URLNORM_HOST_MAX + 1], key[1024], url[1024], np[1024];
    const char *why;
    ucdb_query_t q;
    ucset_t out;
    size_t o = 0;

    if (urlnorm_host(host, strlen(host), h, sizeof(h), &why) < 0)
        return "refused";
    if (urlnorm_path(path ? path : "/", strlen(path ? path : "/"), np, sizeof(np), &why) < 0)
        return "refused";
    memset(&q, 0, sizeof(q));
    q.hostname = h;
    q.host_is_ip = urlnorm_host_is_ip(h) && netaddr_parse(h, &q.ip) == 0;
    q.url_key_len = (size_t)ucdb_url_key(h, np, key, sizeof(key));
    q.url_key = key;
    q.url_len = (size_t)snprintf(url, sizeof(url), "http://%s%s", h, np);
    q.url = url;
    ucdb_lookup(db, &q, NULL, &out);
    buf[0] = '\0';
    for (int c = 0; c < ucdb_ncategories(db); c++)
        if (ucset_has(&out, c))
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? "," : "",
                                  ucdb_name(db, c));
    return buf;
}

static void add_domain(ucdb_builder_t *b, const char *d, int cat)
{
    ok(ucdb_add_domain(b, d, strlen(d), cat) == 0, "add domain %s", d);
}

static void add_url(ucdb_builder_t *b, const char *host, const char *path, int cat)
{
    char key[512];
    int n = ucdb_url_key(host, path, key, sizeof(key));

    ok(n > 0 && ucdb_add_url(b, key, (size_t)n, cat) == 0, "add URL %s%s", host, path);
}

static void build(void)
{
    ucdb_builder_t *b = ucdb_builder_new(1);
    char err[256];

    adult = ucdb_category(b, "adult");
    news = ucdb_category(b, "news");
    malware = ucdb_category(b, "malware");
    blanket = ucdb_category(b, "everything");
    iponly = ucdb_category(b, "ipsites");
    ok(adult == 0 && news == 1 && malware == 2, "categories numbered in order");
    is_int(ucdb_category(b, "adult"), adult, "a known name gives its number");
    ok(ucdb_alias(b, "porn", adult) == 0, "alias");
    ucdb_describe(b, adult, "Adult", "adult sites");

    add_domain(b, "amex.com", adult);
    add_domain(b, "amex.com", adult);   /* a duplicate */
    add_domain(b, "amex.com", news);    /* a second category */
    add_domain(b, "deep.a.b.example", malware);
    add_domain(b, "com", news);
    add_domain(b, "10.1.2.3", malware);
    add_url(b, "example.net", "/bad/path", adult);
    add_url(b, "www.example.net", "/dir/", adult);
    add_url(b, "q.test", "/page?id=1", malware);
    add_url(b, "whole.test", "/", malware);
    ok(ucdb_add_range(b, "192.168.0.0/16", malware, err, sizeof(err)) == 0, "add CIDR");
    ok(ucdb_add_range(b, "fd00::/8", malware, err, sizeof(err)) == 0, "add IPv6 CIDR");
    ok(ucdb_add_range(b, "10.0.0.0/33", malware, err, sizeof(err)) == -1 &&
           strstr(err, "prefix length") != NULL,
       "bad CIDR refused with a message");
    ok(ucdb_add_expression(b, "(^|[-/_.])porn([-/_.]|$)", adult, err, sizeof(err)) == 0,
       "add expression");
    ok(ucdb_add_expression(b, "Casino", adult, err, sizeof(err)) == 0, "add second expression");
    ok(ucdb_add_expression(b, "(a)\\1xyz", news, err, sizeof(err)) == 0,
       "add expression with a back reference (not combinable)");
    ok(ucdb_add_expression(b, "(unclosed", news, err, sizeof(err)) == -1 &&
           strstr(err, "offset 9") != NULL,
       "bad expression refused with its offset: %s", err);
    ucdb_add_blanket(b, iponly, 1);
    (void)blanket;
    db = ucdb_build(b, err, sizeof(err));
    ok(db != NULL, "build");
}

int main(void)
{
    ucdb_stats_t st;

    build();
    if (db == NULL)
        return done_testing();
    ucdb_get_stats(db, &st);
    is_int(st.domains, 4, "stats: distinct domain keys");
    is_int(st.urls, 4, "stats: URL keys");
    is_int(st.expressions, 3, "stats: expressions");
    is_int(st.ranges, 2, "stats: ranges");
    is_int(st.dups, 1, "stats: duplicates");
    ok(st.bytes > 0, "stats: memory");
    is_int(ucdb_find(db, "porn"), adult, "alias resolves");
    is_str(ucdb_title(db, adult), "Adult", "title");
    is_str(ucdb_desc(db, adult), "adult sites", "description");

    /* Domains at label boundaries. */
    is_str(cats("amex.com", NULL), "adult,news", "domain in two categories");
    is_str(cats("www.amex.com", NULL), "adult,news", "subdomain");
    is_str(cats("aamex.com", NULL), "news", "no match inside a label (only 'com')");
    is_str(cats("amex.com.org", NULL), "", "no match as a left part");
    is_str(cats("a.b.example", NULL), "", "a parent of a listed name does not match");
    is_str(cats("x.deep.a.b.example", NULL), "malware", "deep name");
    is_str(cats("net", NULL), "", "top-level domain alone");

    /* Addresses. */
    is_str(cats("10.1.2.3", NULL), "malware,ipsites", "listed address (+ *ip blanket)");
    is_str(cats("167838211", NULL), "malware,ipsites", "decimal spelling of it");
    is_str(cats("2.3", NULL), "ipsites", "an address's parts are not names");
    is_str(cats("192.168.7.7", NULL), "malware,ipsites", "address in a CIDR");
    is_str(cats("[fd12::1]", NULL), "malware,ipsites", "IPv6 in a CIDR");
    is_str(cats("192.169.0.1", NULL), "ipsites", "outside the CIDR");

    /* URL prefixes at boundaries. */
    is_str(cats("example.net", "/bad/path"), "adult", "URL exactly");
    is_str(cats("example.net", "/bad/path/"), "adult", "URL + /");
    is_str(cats("example.net", "/bad/path/deeper/x"), "adult", "URL + deeper path");
    is_str(cats("example.net", "/bad/path?x"), "adult", "URL + query");
    is_str(cats("example.net", "/bad/path%2Fx"), "adult", "URL + escaped slash");
    is_str(cats("example.net", "/bad/pathx"), "", "no boundary");
    is_str(cats("example.net", "/bad/pat"), "", "shorter");
    is_str(cats("example.net", "/BAD/PATH"), "adult", "URL case-insensitive");
    is_str(cats("www3.example.net", "/bad/path"), "adult", "www3. stripped");
    is_str(cats("sub.example.net", "/bad/path"), "", "not a subdomain rule");
    is_str(cats("example.net", "/dir/a"), "adult", "entry ending in / (www stripped)");
    is_str(cats("example.net", "/dir"), "", "entry ending in / needs the slash");
    is_str(cats("q.test", "/page?id=1"), "malware", "entry with a query");
    is_str(cats("q.test", "/page?id=1&b=2"), "malware", "entry with a query + &");
    is_str(cats("q.test", "/page?id=12"), "", "query value prefix is no boundary");
    is_str(cats("whole.test", "/anything/at/all"), "malware", "host/ covers the site");
    is_str(cats("whole.test", NULL), "malware", "host/ covers a tunnel");
    is_str(cats("example.net", NULL), "", "deeper entries do not judge a tunnel");

    /* Expressions (caseless), one combined code plus a separate one. */
    is_str(cats("site.test", "/porn/x"), "adult", "expression");
    is_str(cats("site.test", "/pornography"), "", "expression boundary");
    is_str(cats("site.test", "/casino"), "adult", "caseless expression");
    is_str(cats("site.test", "/aaxyz"), "news", "back-reference expression kept alone");
    is_str(cats("porn.test", "/"), "adult", "expression sees the host too");

    {
        char key[64];
        is_int(ucdb_url_key("www.com", "/a", key, sizeof(key)), 9, "www.com keeps its www");
        is_str(key, "www.com/a", "www.com key");
        is_int(ucdb_url_key("wwwx.test", "/A", key, sizeof(key)), 11, "wwwx. is a name");
        is_str(key, "wwwx.test/a", "wwwx key lowercased path");
        is_int(ucdb_url_key("a.test", "/toolong", key, 8), -1, "key too long refused");
    }
    {
        ucset_t a, b;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        ok(ucset_empty(&a), "empty set");
        ucset_add(&a, 700 % UCDB_MAX_CATEGORIES);
        ucset_add(&b, 700 % UCDB_MAX_CATEGORIES);
        ucset_add(&a, 3);
        is_int(ucset_first_common(&a, &b), 700 % UCDB_MAX_CATEGORIES, "first common");
    }
    /* The literal prefilter: only literals every match must contain. */
    {
        static const struct {
            const char *re, *lit;
        } lits[] = {
            {"(^|[-/_.])casino([-/_.]|$)", "casino"},
            {"Casino", "casino"},
            {"abc|def", NULL},
            {"(abc|def)xyz", "xyz"},
            {"abcd?ef", "abc"},
            {"ab*cdef", "cdef"},
            {"abc+def", "def"},
            {"a{2}bcdefg", "bcdefg"},
            {"x[abc]yzw", "yzw"},
            {"\\\\.exe$", "exe"},
            {"\\.exe$", ".exe"},
            {"\\d+porn\\d", "porn"},
            {"(?x) c a s i n o", NULL},
            {"(?i)casino", NULL},
            {"fo.bar", "bar"},
            {"ab", NULL},
            {"[a-z]+\\.(com|net)", NULL},
        };
        for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
            char out[64];
            int rc = exprset_required_literal(lits[i].re, out, sizeof(out));
            is_str(rc == 0 ? out : NULL, lits[i].lit, "required literal of %s", lits[i].re);
        }
    }
    /* A set where the prefilter must not hide a match. */
    {
        exprset_t *es = exprset_new(1);
        char err[256];
        ucset_t out;
        static const char *const urls[] = {
            "http://a.test/CASINO", "http://a.test/x?q=ab", "http://a.test/abcabcabc",
        };
        ok(exprset_add(es, "casino", 1, err, sizeof(err)) == 0, "set: literal pattern");
        ok(exprset_add(es, "q=a[b]", 2, err, sizeof(err)) == 0, "set: no-literal pattern");
        ok(exprset_add(es, "(abc){3}", 3, err, sizeof(err)) == 0, "set: group repeat");
        ok(exprset_build(es) == 0, "set: build");
        for (int i = 0; i < 3; i++) {
            memset(&out, 0, sizeof(out));
            exprset_match(es, urls[i], strlen(urls[i]), NULL, &out);
            ok(ucset_has(&out, i + 1), "set: %s matches category %d", urls[i], i + 1);
        }
        memset(&out, 0, sizeof(out));
        exprset_match(es, "http://clean.test/", 18, NULL, &out);
        ok(ucset_empty(&out), "set: a clean URL matches nothing");
        is_int(exprset_count(es), 3, "set: count");
        exprset_free(es);
    }
    ucdb_free(db);
    return done_testing();
}
