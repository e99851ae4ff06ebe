/* http_common.h - what the HTTP request and response fuzz targets share: feeds, transcripts, re-parsing what the proxy writes. */
#ifndef PC_FUZZ_HTTP_COMMON_H
#define PC_FUZZ_HTTP_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "fuzz.h"
#include "http_msg.h"

/*
 * Both targets parse their input with llhttp as the proxy does (the same
 * strict-mode build, lib/libllhttp.a, the same callbacks), keep the fields
 * in core/http_msg.c's store, apply the proxy's header checks and rewrites
 * and serialise the head it would send on. Each run writes a transcript of
 * what the proxy decided (heads, errors, what it forwards) and is done
 * three times, with the bytes arriving all at once, one per read, and in
 * pseudo-random reads: the transcripts must be equal, since TCP may cut a
 * stream anywhere. What the proxy forwards must parse back with llhttp to
 * exactly the fields it meant to send, none of them hop-by-hop.
 */

/* A transcript line: printf into a strbuf. */
static void note(strbuf_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(strbuf_t *t, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    strbuf_adds(t, line);
    strbuf_add(t, "\n", 1);
}

/* Appends p[0..n) escaped (printable ASCII as is, the rest as \xHH). */
static void note_bytes(strbuf_t *t, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            strbuf_add(t, (const char *)&c, 1);
        } else {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            strbuf_add(t, e, 4);
        }
    }
}

/* RFC 9110 5.6.2 token characters. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The fields named in every Connection (and Proxy-Connection) value, as
 * llhttp gave them: a strbuf of "name\n" lines, lowercased. */
static void connection_tokens(const http_msg_t *m, strbuf_t *out)
{
    static const char *const names[] = {"Connection", "Proxy-Connection"};

    for (int k = 0; k < 2; k++) {
        for (int i = http_msg_find(m, names[k], 0); i >= 0;
             i = http_msg_find(m, names[k], i + 1)) {
            size_t vlen;
            const char *v = http_field_value(m, &m->fields[i], &vlen), *end = v + vlen;
            while (v < end) {
                const char *c = memchr(v, ',', (size_t)(end - v)), *te = c ? c : end;
                while (v < te && (*v == ' ' || *v == '\t'))
                    v++;
                while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
                    te--;
                for (const char *q = v; q < te; q++) {
                    char ch = *q >= 'A' && *q <= 'Z' ? (char)(*q + 32) : *q;
                    strbuf_add(out, &ch, 1);
                }
                strbuf_add(out, "\n", 1);
                v = c ? c + 1 : end;
            }
        }
    }
}

/* 1 when name (len bytes, any case) is a line of the token list. */
static int in_tokens(const strbuf_t *toks, const char *name, size_t len)
{
    const char *p = toks->p, *end;

    if (toks->len == 0)
        return 0;
    end = p + toks->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(nl - p) == len && strncasecmp(p, name, len) == 0)
            return 1;
        p = nl + 1;
    }
    return 0;
}

/* What RFC 9110 7.6.1 and the proxy (http_msg_strip_hop_by_hop) drop. */
static int is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
        "Proxy-Authorization", "TE", "Transfer-Encoding", "Upgrade", "Content-Length",
    };

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0)
            return 1;
    return 0;
}

/* Checks the live fields of m after the proxy stripped it: names are
 * tokens, values hold no CR, LF or NUL, nothing hop-by-hop or named by
 * the original Connection fields (toks) is left. */
static void check_stripped(const http_msg_t *m, const strbuf_t *toks)
{
    for (unsigned i = 0; i < m->nfields; i++) {
        const http_field_t *f = &m->fields[i];
        const char *name = http_field_name(m, f);
        size_t vlen;
        const char *v;

        if (f->deleted)
            continue;
        v = http_field_value(m, f, &vlen);
        FUZZ_CHECK(f->name_len > 0, "empty field name forwarded");
        for (uint32_t k = 0; k < f->name_len; k++)
            FUZZ_CHECK(is_tchar((unsigned char)name[k]), "byte 0x%02x in field name '%.*s'",
                       (unsigned char)name[k], (int)f->name_len, name);
        FUZZ_CHECK(memchr(v, '\r', vlen) == NULL && memchr(v, '\n', vlen) == NULL &&
                       memchr(v, '\0', vlen) == NULL,
                   "CR, LF or NUL in the value of '%.*s'", (int)f->name_len, name);
        FUZZ_CHECK(!is_hop_by_hop(name, f->name_len), "hop-by-hop field '%.*s' forwarded",
                   (int)f->name_len, name);
        FUZZ_CHECK(!in_tokens(toks, name, f->name_len),
                   "field '%.*s' named in Connection forwarded", (int)f->name_len, name);
    }
}

/* ---- re-parsing what the proxy forwards ------------------------------------ */

typedef struct reparse {
    http_msg_t m;
    char url[8192];
    size_t url_len;
    int done;
} reparse_t;

static int rp_url(llhttp_t *p, const char *at, size_t len)
{
    reparse_t *r = p->data;

    if (r->url_len + len >= sizeof(r->url))
        return HPE_USER;
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    return 0;
}

static int rp_field(llhttp_t *p, const char *at, size_t len)
{
    reparse_t *r = p->data;

    return http_msg_name_piece(&r->m, at, len) < 0 ? HPE_USER : 0;
}

static int rp_value(llhttp_t *p, const char *at, size_t len)
{
    reparse_t *r = p->data;

    return http_msg_value_piece(&r->m, at, len) < 0 ? HPE_USER : 0;
}

static int rp_headers_complete(llhttp_t *p)
{
    reparse_t *r = p->data;

    r->done = 1;
    return HPE_PAUSED;
}

/* Parses the head s[0..n) (type HTTP_REQUEST or HTTP_RESPONSE) with a
 * fresh strict llhttp and checks it holds the live fields of want, in
 * order, after `before` fields the proxy writes first (Host) and followed
 * by `after` more (framing, Via), and for a request the target want_url.
 * Aborts on a difference. */
static void check_reparse(int type, const char *s, size_t n, const http_msg_t *want,
                          const char *want_url, size_t want_url_len, unsigned before,
                          unsigned after)
{
    llhttp_settings_t set;
    llhttp_t p;
    reparse_t *r = calloc(1, sizeof(*r));
    enum llhttp_errno err;
    unsigned j = before, live = 0;

    if (r == NULL)
        abort();
    llhttp_settings_init(&set);
    set.on_url = rp_url;
    set.on_header_field = rp_field;
    set.on_header_value = rp_value;
    set.on_headers_complete = rp_headers_complete;
    llhttp_init(&p, (llhttp_type_t)type, &set);
    p.data = r;
    http_msg_init(&r->m, 1 << 20);
    err = llhttp_execute(&p, s, n);
    FUZZ_CHECK(err == HPE_PAUSED && r->done, "the forwarded head does not parse: %s (%s)",
               llhttp_errno_name(err), llhttp_get_error_reason(&p));
    FUZZ_CHECK((size_t)(llhttp_get_error_pos(&p) - s) == n,
               "the forwarded head ends before its end");
    if (want_url)
        FUZZ_CHECK(r->url_len == want_url_len && memcmp(r->url, want_url, want_url_len) == 0,
                   "the forwarded target parses as '%.*s'", (int)r->url_len, r->url);
    for (unsigned i = 0; i < want->nfields; i++) {
        const http_field_t *f = &want->fields[i];
        const http_field_t *g;
        size_t vl1, vl2;
        const char *v1, *v2;

        if (f->deleted)
            continue;
        live++;
        FUZZ_CHECK(j < r->m.nfields, "forwarded field '%.*s' missing when parsed back",
                   (int)f->name_len, http_field_name(want, f));
        g = &r->m.fields[j++];
        v1 = http_field_value(want, f, &vl1);
        v2 = http_field_value(&r->m, g, &vl2);
        FUZZ_CHECK(f->name_len == g->name_len &&
                       memcmp(http_field_name(want, f), http_field_name(&r->m, g),
                              f->name_len) == 0,
                   "field '%.*s' parses back as '%.*s'", (int)f->name_len,
                   http_field_name(want, f), (int)g->name_len, http_field_name(&r->m, g));
        FUZZ_CHECK(vl1 == vl2 && memcmp(v1, v2, vl1) == 0,
                   "the value of '%.*s' parses back differently", (int)f->name_len,
                   http_field_name(want, f));
    }
    FUZZ_CHECK(r->m.nfields == before + live + after,
               "the forwarded head parses back with %u fields, not %u + %u + %u",
               r->m.nfields, before, live, after);
    http_msg_free(&r->m);
    free(r);
}

/* ---- feeds ------------------------------------------------------------------ */

enum feed { FEED_WHOLE, FEED_BYTES, FEED_RANDOM, FEED_N };

/* Fills cuts[] (ascending, ending with n) with the ends of the reads of a
 * feed; returns how many. */
static size_t feed_cuts(enum feed how, const uint8_t *data, size_t n, size_t *cuts)
{
    size_t k = 0;

    if (how == FEED_WHOLE || n == 0) {
        cuts[k++] = n;
    } else if (how == FEED_BYTES) {
        for (size_t i = 1; i <= n; i++)
            cuts[k++] = i;
    } else {
        uint64_t seed = fuzz_hash(data, n);
        size_t at = 0;
        while (at < n) {
            at += 1 + fuzz_rand(&seed) % 17;
            if (at > n)
                at = n;
            cuts[k++] = at;
        }
    }
    return k;
}

#endif
