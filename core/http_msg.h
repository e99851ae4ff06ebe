/* http_msg.h - header fields of one HTTP message, as parsed and as rewritten. */
#ifndef PC_HTTP_MSG_H
#define PC_HTTP_MSG_H

#include <stddef.h>
#include <stdint.h>

/*
 * Field names and values live in one growing byte store bounded by `max`
 * (max_header_size), so a header flood costs at most that much memory.
 * Fields are appended while parsing (llhttp delivers names and values in
 * pieces), marked deleted when removed, and appended when added.
 */
typedef struct http_field {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
    int deleted;
} http_field_t;

typedef struct http_msg {
    char *store;
    size_t len, cap, max;
    http_field_t *fields;
    unsigned nfields, cap_fields;
    int in_value;  /* parsing: last piece appended was a value */
} http_msg_t;

void http_msg_init(http_msg_t *m, size_t max);
void http_msg_reset(http_msg_t *m);
void http_msg_free(http_msg_t *m);

/* Parsing: append a piece of a field name / value. Return 0, or -1 when the
 * header section would exceed max (the caller answers 431) or memory ran
 * out. */
int http_msg_name_piece(http_msg_t *m, const char *p, size_t len);
int http_msg_value_piece(http_msg_t *m, const char *p, size_t len);

/* Stores bytes (e.g. the request target) in the same bounded store and
 * returns their offset, or -1. */
long http_msg_store(http_msg_t *m, const char *p, size_t len);

static inline const char *http_field_name(const http_msg_t *m,
                                          const http_field_t *f)
{
    return m->store + f->name_off;
}

/* The value with optional whitespace trimmed on both sides; *len set. */
const char *http_field_value(const http_msg_t *m, const http_field_t *f,
                             size_t *len);

/* Index of the first live field called name (case-insensitive) at or after
 * start, or -1. */
int http_msg_find(const http_msg_t *m, const char *name, int start);
/* First value of name, or NULL. */
const char *http_msg_get(const http_msg_t *m, const char *name, size_t *len);
unsigned http_msg_count(const http_msg_t *m, const char *name);
/* Removes every field called name; returns how many. */
int http_msg_remove(http_msg_t *m, const char *name);
/* Appends a field. Returns 0 or -1. */
int http_msg_add(http_msg_t *m, const char *name, const char *value,
                 size_t value_len);
/* 1 when a comma-separated field (e.g. Connection) holds token, any case. */
int http_msg_has_token(const http_msg_t *m, const char *name,
                       const char *token);
/* 1 when the value holds a bare CR, LF or NUL (obs-fold or smuggling). */
int http_msg_has_ctl(const http_msg_t *m);
/* 1 when a field has an empty name (a line ": value"): llhttp lets it
 * through, RFC 9110 5.1 wants a token, and a next hop could read such a
 * line in any way. */
int http_msg_has_empty_name(const http_msg_t *m);

/* 1 when every Transfer-Encoding field of m is just "chunked". */
int http_msg_te_chunked_only(const http_msg_t *m);

/* What a request head is refused for by http_req_check(). */
typedef enum http_req_refusal {
    HTTP_REQ_OK,
    HTTP_REQ_BAD,      /* 400 Bad Request; *why says what is wrong */
    HTTP_REQ_VERSION,  /* 505: an HTTP major version above 1 */
    HTTP_REQ_CODING,   /* 501: a transfer coding other than chunked */
    HTTP_REQ_EXPECT,   /* 417: an expectation other than 100-continue */
} http_req_refusal_t;

/* The checks of a request head that depend on the head alone, in the
 * order the proxy applies them (after access control, before the target
 * is parsed): the version, control bytes and obs-fold in values, empty
 * field names, exactly one Host in HTTP/1.1, no Transfer-Encoding in
 * HTTP/1.0, chunked as the only coding, and Expect. chunked: llhttp saw
 * a chunked body. *why is a static string for HTTP_REQ_BAD, else NULL.
 * txn_request_head() answers with it, and so does the fuzz target
 * t/fuzz/fuzz_http_request. */
http_req_refusal_t http_req_check(const http_msg_t *m, int vmajor, int vminor, int chunked,
                                  const char **why);

/* How the response body travels to the client. */
enum txn_resp_mode {
    RESP_NONE,     /* no body (HEAD, 1xx, 204, 304) */
    RESP_RAW,      /* bytes as received: Content-Length or chunked to HTTP/1.1 */
    RESP_CHUNK,    /* close-delimited from upstream, re-chunked to HTTP/1.1 */
    RESP_DECODED,  /* chunked from upstream, decoded for HTTP/1.0, close after */
    RESP_EOF,      /* close-delimited to an HTTP/1.0 client, close after */
    RESP_LENGTH,   /* decoded pieces (inspected) with a Content-Length */
};

/* The mode of a response body from its head, as llhttp framed it
 * (skipbody: no body by method or status; chunked, te, clen: its
 * F_CHUNKED, F_TRANSFER_ENCODING, F_CONTENT_LENGTH flags) for a client
 * speaking HTTP/1.client_minor; never RESP_LENGTH, which only plugins
 * choose. -1 for a transfer coding that cannot be passed on: another
 * than chunked (RFC 9112 6.3), or one under the chunks ("gzip, chunked"),
 * which no client could decode once the field is rebuilt as plain
 * "chunked". Used by txn_response_head() and t/fuzz/fuzz_http_response. */
int http_resp_mode(const http_msg_t *m, int skipbody, int chunked, int te, int clen,
                   int client_minor);

/* Removes the hop-by-hop fields of RFC 9110 section 7.6.1 and those named in
 * Connection, plus the framing fields (Content-Length, Transfer-Encoding),
 * which the proxy writes itself. */
void http_msg_strip_hop_by_hop(http_msg_t *m);

/* A growable output string (for serialising header blocks). */
typedef struct strbuf {
    char *p;
    size_t len, cap;
    int failed;  /* an append ran out of memory */
} strbuf_t;

void strbuf_init(strbuf_t *s);
void strbuf_free(strbuf_t *s);
void strbuf_add(strbuf_t *s, const char *p, size_t len);
void strbuf_adds(strbuf_t *s, const char *str);
void strbuf_addf(strbuf_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends v in decimal, left-padded with pad to at least width digits
 * (width 0: no padding); printf costs too much on the per-request path. */
void strbuf_add_u64(strbuf_t *s, uint64_t v, int width, char pad);
/* Appends "Name: value\r\n" for every live field. */
void strbuf_add_fields(strbuf_t *s, const http_msg_t *m);

#endif
