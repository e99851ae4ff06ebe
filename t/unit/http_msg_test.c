/* http_msg_test.c - unit tests for core/http_msg.c: the header store, hop-by-hop removal, and the
 * request and response head decisions the proxy and its fuzz targets share. */
#include <string.h>

#include "http_msg.h"
#include "tap.h"

/* A message from "Name: value" lines separated by '|'; a value may hold
 * any byte but '|'. */
static void build(http_msg_t *m, const char *lines)
{
    char buf[1024];
    char *save = NULL;

    http_msg_init(m, 65536);
    snprintf(buf, sizeof(buf), "%s", lines);
    for (char *l = strtok_r(buf, "|", &save); l; l = strtok_r(NULL, "|", &save)) {
        char *colon = strchr(l, ':');
        const char *v = colon + 1;
        *colon = '\0';
        while (*v == ' ')
            v++;
        if (http_msg_add(m, l, v, strlen(v)) < 0)
            diag("http_msg_add failed for %s", l);
    }
}

/* Fields not removed (removal marks them deleted). */
static unsigned live(const http_msg_t *m)
{
    unsigned n = 0;

    for (unsigned i = 0; i < m->nfields; i++)
        n += !m->fields[i].deleted;
    return n;
}

static void test_store(void)
{
    http_msg_t m;
    size_t len;
    const char *v;

    build(&m, "Host: a.example|Accept: */*|X-Multi: 1|x-multi: 2");
    is_int(m.nfields, 4, "four fields stored");
    v = http_msg_get(&m, "host", &len);
    ok(v && len == 9 && memcmp(v, "a.example", 9) == 0, "lookup ignores case");
    is_int(http_msg_count(&m, "X-MULTI"), 2, "count ignores case");
    ok(http_msg_get(&m, "Missing", &len) == NULL, "a missing field is NULL");
    http_msg_remove(&m, "X-Multi");
    is_int(http_msg_count(&m, "x-multi"), 0, "remove takes every field of the name");
    http_msg_free(&m);
}

static void test_hop_by_hop(void)
{
    http_msg_t m;

    build(&m, "Host: h|Connection: keep-alive, X-Named|Keep-Alive: 5|Proxy-Connection: x|"
              "Proxy-Authorization: Basic Zm9v|TE: trailers|Upgrade: h2c|"
              "Transfer-Encoding: chunked|Content-Length: 3|X-Named: secret|X-Kept: yes");
    http_msg_strip_hop_by_hop(&m);
    is_int(live(&m), 2, "hop-by-hop, framing and Connection-named fields removed");
    ok(http_msg_count(&m, "Host") == 1 && http_msg_count(&m, "X-Kept") == 1,
       "end-to-end fields kept");
    http_msg_free(&m);

    /* A Connection field naming Connection must not hide what a second one
     * names (t/fuzz/regressions/http_request/connection-naming-connection). */
    build(&m, "Connection: Connection, keep-alive|Connection: X-Second|X-Second: s|X-Kept: y");
    http_msg_strip_hop_by_hop(&m);
    is_int(http_msg_count(&m, "X-Second"), 0, "a field named by the second Connection removed");
    is_int(live(&m), 1, "only the end-to-end field left");
    http_msg_free(&m);
}

static void test_flags(void)
{
    http_msg_t m;

    build(&m, "Host: h|X-A: a\nb");
    ok(http_msg_has_ctl(&m), "LF in a value found");
    http_msg_free(&m);
    build(&m, "Host: h|X-A: a\tb");
    ok(!http_msg_has_ctl(&m), "a tab in a value is allowed");
    http_msg_free(&m);
    build(&m, "Host: h|: x");
    ok(http_msg_has_empty_name(&m), "a field without a name found");
    http_msg_free(&m);
    build(&m, "Transfer-Encoding: chunked|transfer-encoding: CHUNKED");
    ok(http_msg_te_chunked_only(&m), "chunked alone, twice, any case");
    http_msg_free(&m);
    build(&m, "Transfer-Encoding: gzip, chunked");
    ok(!http_msg_te_chunked_only(&m), "gzip under the chunks is not chunked alone");
    http_msg_free(&m);
    build(&m, "Transfer-Encoding: chunked|Transfer-Encoding: gzip");
    ok(!http_msg_te_chunked_only(&m), "a second field with another coding");
    http_msg_free(&m);
}

/* http_req_check on the lines given: its result, and *why for 400. */
static void req(const char *lines, int vmajor, int vminor, int chunked, http_req_refusal_t exp,
                const char *exp_why, const char *name)
{
    http_msg_t m;
    const char *why = "unset";
    http_req_refusal_t got;

    build(&m, lines);
    got = http_req_check(&m, vmajor, vminor, chunked, &why);
    is_int(got, exp, "%s: result", name);
    if (exp_why)
        is_str(why, exp_why, "%s: reason", name);
    else
        ok(why == NULL, "%s: no reason", name);
    http_msg_free(&m);
}

static void test_req_check(void)
{
    req("Host: h", 1, 1, 0, HTTP_REQ_OK, NULL, "plain HTTP/1.1");
    req("Accept: */*", 1, 0, 0, HTTP_REQ_OK, NULL, "HTTP/1.0 without Host");
    req("Host: h|Transfer-Encoding: chunked", 1, 1, 1, HTTP_REQ_OK, NULL, "chunked upload");
    req("Host: h|Expect: 100-Continue", 1, 1, 0, HTTP_REQ_OK, NULL, "Expect: 100-continue");
    req("Host: h", 2, 0, 0, HTTP_REQ_VERSION, NULL, "HTTP/2 in an HTTP/1 head");
    req("Host: h", 0, 9, 0, HTTP_REQ_BAD, "HTTP/0.9 request", "HTTP/0.9");
    req("Host: h|X-A: a\rb", 1, 1, 0, HTTP_REQ_BAD,
        "line folding or control character in a header", "CR in a value");
    req("Host: h|: x", 1, 1, 0, HTTP_REQ_BAD, "empty header field name", "empty field name");
    req("Accept: */*", 1, 1, 0, HTTP_REQ_BAD, "missing Host header", "HTTP/1.1 without Host");
    req("Host: a|Host: b", 1, 1, 0, HTTP_REQ_BAD, "more than one Host header", "two Hosts");
    req("Host: a|Host: b", 1, 0, 0, HTTP_REQ_BAD, "more than one Host header",
        "two Hosts in HTTP/1.0");
    req("Host: h|Transfer-Encoding: chunked", 1, 0, 1, HTTP_REQ_BAD,
        "Transfer-Encoding in an HTTP/1.0 request", "chunked in HTTP/1.0");
    req("Host: h|Transfer-Encoding: gzip, chunked", 1, 1, 1, HTTP_REQ_CODING, NULL,
        "gzip under the chunks");
    req("Host: h|Expect: something", 1, 1, 0, HTTP_REQ_EXPECT, NULL, "unknown expectation");
    /* The order: the first failing check decides. */
    req("X-A: a\nb", 2, 0, 0, HTTP_REQ_VERSION, NULL, "version before fields");
    req(": x|X-A: a\nb", 1, 1, 0, HTTP_REQ_BAD, "line folding or control character in a header",
        "control bytes before empty names");
    req("Expect: nothing", 1, 1, 0, HTTP_REQ_BAD, "missing Host header", "Host before Expect");
}

static void test_resp_mode(void)
{
    http_msg_t m;

    build(&m, "Transfer-Encoding: chunked");
    is_int(http_resp_mode(&m, 1, 1, 1, 0, 1), RESP_NONE, "HEAD or 304: no body");
    is_int(http_resp_mode(&m, 0, 1, 1, 0, 1), RESP_RAW, "chunked to HTTP/1.1: as received");
    is_int(http_resp_mode(&m, 0, 1, 1, 0, 0), RESP_DECODED, "chunked to HTTP/1.0: decoded");
    http_msg_free(&m);
    build(&m, "Transfer-Encoding: gzip, chunked");
    is_int(http_resp_mode(&m, 0, 1, 1, 0, 1), -1, "gzip under the chunks: refused");
    http_msg_free(&m);
    build(&m, "Transfer-Encoding: gzip");
    is_int(http_resp_mode(&m, 0, 0, 1, 0, 1), -1, "a coding without chunked: refused");
    http_msg_free(&m);
    build(&m, "Content-Length: 5");
    is_int(http_resp_mode(&m, 0, 0, 0, 1, 1), RESP_RAW, "Content-Length: as received");
    is_int(http_resp_mode(&m, 0, 0, 0, 1, 0), RESP_RAW, "Content-Length to HTTP/1.0 too");
    http_msg_free(&m);
    build(&m, "X-A: b");
    is_int(http_resp_mode(&m, 0, 0, 0, 0, 1), RESP_CHUNK, "close-delimited to HTTP/1.1: chunked");
    is_int(http_resp_mode(&m, 0, 0, 0, 0, 0), RESP_EOF, "close-delimited to HTTP/1.0: to EOF");
    http_msg_free(&m);
}

int main(void)
{
    test_store();
    test_hop_by_hop();
    test_flags();
    test_req_check();
    test_resp_mode();
    return done_testing();
}
