/* http_msg.c - header fields of one HTTP message, as parsed and as rewritten. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_msg.h"

void http_msg_init(http_msg_t *m, size_t max)
{
    memset(m, 0, sizeof(*m));
    m->max = max;
}

void http_msg_reset(http_msg_t *m)
{
    m->len = 0;
    m->nfields = 0;
    m->in_value = 0;
}

void http_msg_free(http_msg_t *m)
{
    free(m->store);
    free(m->fields);
    memset(m, 0, sizeof(*m));
}

/* Makes room for n more bytes; keeps a NUL after the last byte. */
static int store_reserve(http_msg_t *m, size_t n)
{
    size_t need = m->len + n + 1, cap;
    char *p;

    if (m->len + n > m->max)
        return -1;
    if (need <= m->cap)
        return 0;
    cap = m->cap ? m->cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > m->max + 1)
        cap = m->max + 1;
    p = realloc(m->store, cap);
    if (p == NULL)
        return -1;
    m->store = p;
    m->cap = cap;
    return 0;
}

static int store_append(http_msg_t *m, const char *p, size_t len)
{
    if (store_reserve(m, len) < 0)
        return -1;
    memcpy(m->store + m->len, p, len);
    m->len += len;
    m->store[m->len] = '\0';
    return 0;
}

long http_msg_store(http_msg_t *m, const char *p, size_t len)
{
    size_t off = m->len;

    /* +1 keeps the stored bytes NUL-terminated for the reader. */
    if (store_append(m, p, len) < 0 || store_append(m, "", 1) < 0)
        return -1;
    m->len = off + len + 1;
    return (long)off;
}

static http_field_t *field_new(http_msg_t *m)
{
    http_field_t *f;

    if (m->nfields == m->cap_fields) {
        unsigned cap = m->cap_fields ? m->cap_fields * 2 : 32;
        f = realloc(m->fields, cap * sizeof(*f));
        if (f == NULL)
            return NULL;
        m->fields = f;
        m->cap_fields = cap;
    }
    f = &m->fields[m->nfields++];
    memset(f, 0, sizeof(*f));
    return f;
}

/* Names and values are stored NUL-terminated: a piece continues the current
 * string by overwriting its terminator. */
int http_msg_name_piece(http_msg_t *m, const char *p, size_t len)
{
    http_field_t *f;

    if (m->nfields == 0 || m->in_value) {
        f = field_new(m);
        if (f == NULL)
            return -1;
        if (store_reserve(m, 1) < 0)
            return -1;
        f->name_off = (uint32_t)m->len;
        m->store[m->len++] = '\0';
        m->in_value = 0;
        f->value_off = f->name_off;  /* empty value until one arrives */
    }
    f = &m->fields[m->nfields - 1];
    m->len--;  /* drop the terminator */
    if (store_append(m, p, len) < 0 || store_append(m, "", 1) < 0)
        return -1;
    f->name_len += (uint32_t)len;
    f->value_off = (uint32_t)m->len - 1;  /* points at the name's NUL */
    return 0;
}

int http_msg_value_piece(http_msg_t *m, const char *p, size_t len)
{
    http_field_t *f;

    if (m->nfields == 0)
        return -1;
    f = &m->fields[m->nfields - 1];
    if (!m->in_value) {
        if (store_reserve(m, 1) < 0)
            return -1;
        f->value_off = (uint32_t)m->len;
        f->value_len = 0;
        m->store[m->len++] = '\0';
        m->in_value = 1;
    }
    m->len--;
    if (store_append(m, p, len) < 0 || store_append(m, "", 1) < 0)
        return -1;
    f->value_len += (uint32_t)len;
    return 0;
}

const char *http_field_value(const http_msg_t *m, const http_field_t *f,
                             size_t *len)
{
    const char *v = m->store + f->value_off;
    size_t n = f->value_len;

    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    *len = n;
    return v;
}

int http_msg_find(const http_msg_t *m, const char *name, int start)
{
    size_t nlen = strlen(name);

    for (unsigned i = (unsigned)start; i < m->nfields; i++) {
        const http_field_t *f = &m->fields[i];
        if (!f->deleted && f->name_len == nlen &&
            strncasecmp(m->store + f->name_off, name, nlen) == 0)
            return (int)i;
    }
    return -1;
}

const char *http_msg_get(const http_msg_t *m, const char *name, size_t *len)
{
    int i = http_msg_find(m, name, 0);
    size_t dummy;

    if (i < 0)
        return NULL;
    return http_field_value(m, &m->fields[i], len ? len : &dummy);
}

unsigned http_msg_count(const http_msg_t *m, const char *name)
{
    unsigned n = 0;

    for (int i = http_msg_find(m, name, 0); i >= 0;
         i = http_msg_find(m, name, i + 1))
        n++;
    return n;
}

int http_msg_remove(http_msg_t *m, const char *name)
{
    int n = 0;

    for (int i = http_msg_find(m, name, 0); i >= 0;
         i = http_msg_find(m, name, i + 1)) {
        m->fields[i].deleted = 1;
        n++;
    }
    return n;
}

int http_msg_add(http_msg_t *m, const char *name, const char *value,
                 size_t value_len)
{
    http_field_t *f;
    long noff, voff;
    size_t nlen = strlen(name);

    noff = http_msg_store(m, name, nlen);
    if (noff < 0)
        return -1;
    voff = http_msg_store(m, value, value_len);
    if (voff < 0)
        return -1;
    f = field_new(m);
    if (f == NULL)
        return -1;
    f->name_off = (uint32_t)noff;
    f->name_len = (uint32_t)nlen;
    f->value_off = (uint32_t)voff;
    f->value_len = (uint32_t)value_len;
    m->in_value = 1;
    return 0;
}

/* Calls fn for each comma-separated token of every field called name. */
static int each_token(const http_msg_t *m, const char *name,
                      int (*fn)(const char *tok, size_t len, void *arg),
                      void *arg)
{
    for (int i = http_msg_find(m, name, 0); i >= 0;
         i = http_msg_find(m, name, i + 1)) {
        size_t vlen;
        const char *v = http_field_value(m, &m->fields[i], &vlen);
        const char *end = v + vlen;

        while (v < end) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            const char *te = comma ? comma : end;
            const char *ts = v;
            while (ts < te && (*ts == ' ' || *ts == '\t'))
                ts++;
            while (te > ts && (te[-1] == ' ' || te[-1] == '\t'))
                te--;
            if (te > ts && fn(ts, (size_t)(te - ts), arg))
                return 1;
            v = comma ? comma + 1 : end;
        }
    }
    return 0;
}

static int token_equals(const char *tok, size_t len, void *arg)
{
    const char *want = arg;

    return strlen(want) == len && strncasecmp(tok, want, len) == 0;
}

int http_msg_has_token(const http_msg_t *m, const char *name,
                       const char *token)
{
    return each_token(m, name, token_equals, (void *)token);
}

int http_msg_has_ctl(const http_msg_t *m)
{
    for (unsigned i = 0; i < m->nfields; i++) {
        const http_field_t *f = &m->fields[i];
        const char *v = m->store + f->value_off;
        for (uint32_t k = 0; k < f->value_len; k++)
            if (v[k] == '\r' || v[k] == '\n' || v[k] == '\0')
                return 1;
    }
    return 0;
}

int http_msg_has_empty_name(const http_msg_t *m)
{
    for (unsigned i = 0; i < m->nfields; i++)
        if (m->fields[i].name_len == 0)
            return 1;
    return 0;
}

int http_msg_te_chunked_only(const http_msg_t *m)
{
    for (int i = http_msg_find(m, "Transfer-Encoding", 0); i >= 0;
         i = http_msg_find(m, "Transfer-Encoding", i + 1)) {
        size_t vlen;
        const char *v = http_field_value(m, &m->fields[i], &vlen);
        if (vlen != 7 || strncasecmp(v, "chunked", 7) != 0)
            return 0;
    }
    return 1;
}

http_req_refusal_t http_req_check(const http_msg_t *m, int vmajor, int vminor, int chunked,
                                  const char **why)
{
    const char *expect;
    size_t elen;
    unsigned hosts;

    *why = NULL;
    if (vmajor > 1)
        return HTTP_REQ_VERSION;
    if (vmajor != 1) {
        *why = "HTTP/0.9 request";
        return HTTP_REQ_BAD;
    }
    /* RFC 9112 5.2: a proxy must reject obs-fold or replace it; control
     * bytes in a value have no legitimate use either. */
    if (http_msg_has_ctl(m)) {
        *why = "line folding or control character in a header";
        return HTTP_REQ_BAD;
    }
    if (http_msg_has_empty_name(m)) {
        *why = "empty header field name";
        return HTTP_REQ_BAD;
    }
    /* RFC 9112 3.2: exactly one Host in HTTP/1.1. */
    hosts = http_msg_count(m, "Host");
    if (hosts > 1 || (hosts == 0 && vminor >= 1)) {
        *why = hosts ? "more than one Host header" : "missing Host header";
        return HTTP_REQ_BAD;
    }
    /* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request means the
     * framing cannot be trusted. */
    if (vminor == 0 && chunked) {
        *why = "Transfer-Encoding in an HTTP/1.0 request";
        return HTTP_REQ_BAD;
    }
    /* The body goes upstream as "Transfer-Encoding: chunked" alone; a
     * coding under the chunks (gzip, chunked) would reach the server
     * unannounced (RFC 9112 6.1: 501 for codings we do not handle). */
    if (chunked && !http_msg_te_chunked_only(m))
        return HTTP_REQ_CODING;
    expect = http_msg_get(m, "Expect", &elen);
    if (expect && (elen != 12 || strncasecmp(expect, "100-continue", 12) != 0))
        return HTTP_REQ_EXPECT;
    return HTTP_REQ_OK;
}

int http_resp_mode(const http_msg_t *m, int skipbody, int chunked, int te, int clen,
                   int client_minor)
{
    if (skipbody)
        return RESP_NONE;
    if (chunked && http_msg_te_chunked_only(m))
        return client_minor >= 1 ? RESP_RAW : RESP_DECODED;
    if (te)
        return -1;
    if (clen)
        return RESP_RAW;
    /* Close-delimited: the upstream connection ends with the body. */
    return client_minor >= 1 ? RESP_CHUNK : RESP_EOF;
}

/* Field names that never travel past one connection (RFC 9110 7.6.1, RFC
 * 9112 for the framing fields, plus the deprecated Proxy-Connection and the
 * proxy's own authentication fields). */
static const char *const hop_by_hop[] = {
    "Connection",         "Keep-Alive",          "Proxy-Connection",
    "Proxy-Authenticate", "Proxy-Authorization", "TE",
    "Transfer-Encoding",  "Upgrade",             "Content-Length",
};

static int remove_token_field(const char *tok, size_t len, void *arg)
{
    http_msg_t *m = arg;

    /* "Connection: Connection, X-A" must not delete the Connection fields
     * yet: each_token() skips deleted fields, so the tokens of a later
     * Connection field (X-A) would never be read. Both go below anyway. */
    if ((len == 10 && strncasecmp(tok, "Connection", 10) == 0) ||
        (len == 16 && strncasecmp(tok, "Proxy-Connection", 16) == 0))
        return 0;
    for (unsigned i = 0; i < m->nfields; i++) {
        http_field_t *f = &m->fields[i];
        if (!f->deleted && f->name_len == len &&
            strncasecmp(m->store + f->name_off, tok, len) == 0)
            f->deleted = 1;
    }
    return 0;
}

void http_msg_strip_hop_by_hop(http_msg_t *m)
{
    /* Fields named by Connection first, while Connection is still there. */
    each_token(m, "Connection", remove_token_field, m);
    each_token(m, "Proxy-Connection", remove_token_field, m);
    for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++)
        http_msg_remove(m, hop_by_hop[i]);
}

void strbuf_init(strbuf_t *s)
{
    memset(s, 0, sizeof(*s));
}

void strbuf_free(strbuf_t *s)
{
    free(s->p);
    memset(s, 0, sizeof(*s));
}

static int strbuf_reserve(strbuf_t *s, size_t n)
{
    size_t cap;
    char *p;

    if (s->failed)
        return -1;
    if (s->len + n + 1 <= s->cap)
        return 0;
    cap = s->cap ? s->cap : 512;
    while (cap < s->len + n + 1)
        cap *= 2;
    p = realloc(s->p, cap);
    if (p == NULL) {
        s->failed = 1;
        return -1;
    }
    s->p = p;
    s->cap = cap;
    return 0;
}

void strbuf_add(strbuf_t *s, const char *p, size_t len)
{
    if (strbuf_reserve(s, len) < 0)
        return;
    memcpy(s->p + s->len, p, len);
    s->len += len;
    s->p[s->len] = '\0';
}

void strbuf_adds(strbuf_t *s, const char *str)
{
    strbuf_add(s, str, strlen(str));
}

void strbuf_addf(strbuf_t *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || strbuf_reserve(s, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

void strbuf_add_u64(strbuf_t *s, uint64_t v, int width, char pad)
{
    char buf[24];
    int n = 0;

    do {
        buf[sizeof(buf) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width && n < (int)sizeof(buf))
        buf[sizeof(buf) - 1 - n++] = pad;
    strbuf_add(s, buf + sizeof(buf) - n, (size_t)n);
}

void strbuf_add_fields(strbuf_t *s, const http_msg_t *m)
{
    for (unsigned i = 0; i < m->nfields; i++) {
        const http_field_t *f = &m->fields[i];
        size_t vlen;
        const char *v;

        if (f->deleted)
            continue;
        v = http_field_value(m, f, &vlen);
        strbuf_add(s, m->store + f->name_off, f->name_len);
        strbuf_add(s, ": ", 2);
        strbuf_add(s, v, vlen);
        strbuf_add(s, "\r\n", 2);
    }
}
