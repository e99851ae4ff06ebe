/* sni.c - parses a TLS ClientHello from the bytes peeked on a CONNECT (see sni.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "sni.h"

#define TLS_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
#define TLS_RECORD_MAX 16384

#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_SUPPORTED_VERSIONS 43
#define SNI_HOST_NAME 0

/* A bounds-checked reader over one vector of the hello. */
typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd_t;

static int rd_u8(rd_t *r, unsigned *v)
{
    if (r->n < 1)
        return -1;
    *v = r->p[0];
    r->p++;
    r->n--;
    return 0;
}

static int rd_u16(rd_t *r, unsigned *v)
{
    if (r->n < 2)
        return -1;
    *v = (unsigned)r->p[0] << 8 | r->p[1];
    r->p += 2;
    r->n -= 2;
    return 0;
}

static int rd_skip(rd_t *r, size_t k)
{
    if (r->n < k)
        return -1;
    r->p += k;
    r->n -= k;
    return 0;
}

/* Reads a vector with a lenbytes-byte length prefix into *sub. */
static int rd_vec(rd_t *r, int lenbytes, rd_t *sub)
{
    unsigned len;

    if ((lenbytes == 1 ? rd_u8(r, &len) : rd_u16(r, &len)) < 0 || r->n < len)
        return -1;
    sub->p = r->p;
    sub->n = len;
    r->p += len;
    r->n -= len;
    return 0;
}

/* RFC 8701: 0x0a0a, 0x1a1a, ... 0xfafa. */
static int is_grease(unsigned v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

static int is_alnum(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Checks and normalises one host_name into out->server_name, or flags an
 * IP literal. Returns 0 or -1 with *why. */
static int take_host_name(const uint8_t *s, size_t n, sni_info_t *out, const char **why)
{
    char name[SNI_NAME_MAX + 1];
    size_t k, label = 0;
    int all_digits = 1;

    if (n > 0 && s[n - 1] == '.')
        n--;  /* the root label: "example.com." is "example.com" */
    if (n == 0) {
        *why = "empty server name";
        return -1;
    }
    if (n > SNI_NAME_MAX) {
        *why = "server name too long";
        return -1;
    }
    if (memchr(s, ':', n) != NULL) {
        struct in6_addr a6;
        size_t off = 0, m = n;
        if (n > 2 && s[0] == '[' && s[n - 1] == ']') {
            off = 1;
            m = n - 2;
        }
        memcpy(name, s + off, m);
        name[m] = '\0';
        if (inet_pton(AF_INET6, name, &a6) == 1) {
            out->ip_literal = 1;
            return 0;
        }
        *why = "invalid character in server name";
        return -1;
    }
    for (k = 0; k < n; k++) {
        uint8_t c = s[k];
        if (c == '.') {
            if (label == 0) {
                *why = "empty label in server name";
                return -1;
            }
            label = 0;
            all_digits = 1;
            name[k] = '.';
            continue;
        }
        if (!is_alnum(c) && c != '-' && c != '_') {
            *why = "invalid character in server name";
            return -1;
        }
        if (++label > 63) {
            *why = "label longer than 63 bytes in server name";
            return -1;
        }
        if (c < '0' || c > '9')
            all_digits = 0;
        name[k] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    name[n] = '\0';
    if (label == 0) {
        *why = "empty label in server name";
        return -1;
    }
    /* inet_aton() also takes the shorthand forms ("127.1", "0x7f000001")
     * that browsers and resolvers read as IPv4 addresses. */
    {
        struct in_addr a4;
        if (inet_aton(name, &a4) != 0) {
            out->ip_literal = 1;
            return 0;
        }
    }
    if (all_digits) {
        *why = "numeric top-level label in server name";
        return -1;
    }
    memcpy(out->server_name, name, n + 1);
    return 0;
}

/* RFC 6066 section 3: struct { NameType name_type; opaque HostName<1..2^16-1>; }
 * ServerName; ServerName server_name_list<1..2^16-1>. */
static int parse_server_name(rd_t ext, sni_info_t *out, const char **why)
{
    rd_t list, name;
    unsigned type;
    int found = 0;

    if (rd_vec(&ext, 2, &list) < 0 || ext.n != 0 || list.n == 0) {
        *why = "malformed server_name extension";
        return -1;
    }
    while (list.n > 0) {
        if (rd_u8(&list, &type) < 0 || rd_vec(&list, 2, &name) < 0 || name.n == 0) {
            *why = "malformed server_name extension";
            return -1;
        }
        if (type != SNI_HOST_NAME || found)
            continue;
        found = 1;
        if (take_host_name(name.p, name.n, out, why) < 0)
            return -1;
    }
    if (!found) {
        *why = "server_name extension without a host_name";
        return -1;
    }
    return 0;
}

/* RFC 7301 section 3.1: ProtocolName protocol_name_list<2..2^16-1>, each
 * ProtocolName<1..2^8-1>. */
static int parse_alpn(rd_t ext, sni_info_t *out, const char **why)
{
    rd_t list, proto;

    if (rd_vec(&ext, 2, &list) < 0 || ext.n != 0 || list.n < 2) {
        *why = "malformed ALPN extension";
        return -1;
    }
    out->alpn = 1;
    while (list.n > 0) {
        if (rd_vec(&list, 1, &proto) < 0 || proto.n == 0) {
            *why = "malformed ALPN extension";
            return -1;
        }
        if (proto.n == 2 && memcmp(proto.p, "h2", 2) == 0)
            out->alpn_h2 = 1;
        else if (proto.n == 8 && memcmp(proto.p, "http/1.1", 8) == 0)
            out->alpn_http11 = 1;
    }
    return 0;
}

/* RFC 8446 section 4.2.1: ProtocolVersion versions<2..254> in a ClientHello. */
static int parse_versions(rd_t ext, sni_info_t *out, const char **why)
{
    rd_t list;
    unsigned v;

    if (rd_vec(&ext, 1, &list) < 0 || ext.n != 0 || list.n < 2 || list.n % 2 != 0) {
        *why = "malformed supported_versions extension";
        return -1;
    }
    out->has_supported_versions = 1;
    out->max_version = 0;
    while (rd_u16(&list, &v) == 0) {
        if (is_grease(v) || v < 0x0300 || v > 0x0304)
            continue;
        out->versions |= 1u << (v - 0x0300);
        if (v > out->max_version)
            out->max_version = (uint16_t)v;
    }
    return 0;
}

/* The body of a ClientHello (after its 4-byte handshake header). */
static int parse_hello(const uint8_t *b, size_t n, sni_info_t *out, const char **why)
{
    uint8_t seen[65536 / 8];
    rd_t r = {b, n}, v, exts;
    unsigned legacy;

    if (rd_u16(&r, &legacy) < 0 || rd_skip(&r, 32) < 0) {
        *why = "truncated ClientHello";
        return -1;
    }
    out->legacy_version = (uint16_t)legacy;
    out->max_version = (uint16_t)legacy;
    if (rd_vec(&r, 1, &v) < 0 || v.n > 32) {
        *why = "malformed session id";
        return -1;
    }
    if (rd_vec(&r, 2, &v) < 0 || v.n < 2 || v.n % 2 != 0) {
        *why = "malformed cipher suites";
        return -1;
    }
    if (rd_vec(&r, 1, &v) < 0 || v.n < 1) {
        *why = "malformed compression methods";
        return -1;
    }
    if (r.n == 0)
        return 0;  /* no extensions at all: an old client, no SNI */
    if (rd_vec(&r, 2, &exts) < 0 || r.n != 0) {
        *why = "malformed extensions";
        return -1;
    }
    memset(seen, 0, sizeof(seen));
    while (exts.n > 0) {
        unsigned type;
        rd_t ext;
        int rc = 0;

        if (rd_u16(&exts, &type) < 0 || rd_vec(&exts, 2, &ext) < 0) {
            *why = "malformed extensions";
            return -1;
        }
        if (seen[type / 8] & (1u << (type % 8))) {
            *why = "duplicate extension";
            return -1;
        }
        seen[type / 8] |= (uint8_t)(1u << (type % 8));
        if (type == EXT_SERVER_NAME)
            rc = parse_server_name(ext, out, why);
        else if (type == EXT_ALPN)
            rc = parse_alpn(ext, out, why);
        else if (type == EXT_SUPPORTED_VERSIONS)
            rc = parse_versions(ext, out, why);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int sni_parse(const uint8_t *p, size_t len, sni_info_t *out, const char **why)
{
    uint8_t hs[SNI_MAX_HELLO];  /* the handshake message, reassembled */
    size_t pos = 0, have = 0, need = 0, inrecords = 0;
    int nrec = 0;
    const char *dummy;

    if (why == NULL)
        why = &dummy;
    *why = NULL;
    memset(out, 0, sizeof(*out));
    for (;;) {
        const uint8_t *r = p + pos;
        size_t avail = len - pos, rlen, take;

        if (avail == 0)
            return 0;
        if (r[0] != TLS_HANDSHAKE) {
            if (nrec > 0)
                *why = "record of another type inside the ClientHello";
            else if ((r[0] & 0x80) && (avail < 3 || r[2] == HS_CLIENT_HELLO))
                *why = "SSLv2-compatible ClientHello";
            else
                *why = "not a TLS handshake record";
            goto fail;
        }
        if (avail >= 2 && r[1] != 3) {
            *why = "unknown TLS record version";
            goto fail;
        }
        if (avail < 5)
            return 0;
        rlen = (size_t)r[3] << 8 | r[4];
        if (rlen == 0) {
            *why = "empty handshake record";
            goto fail;
        }
        if (rlen > TLS_RECORD_MAX) {
            *why = "TLS record too long";
            goto fail;
        }
        if (++nrec > SNI_MAX_RECORDS) {
            *why = "ClientHello spread over too many records";
            goto fail;
        }
        if (nrec == 1)
            out->record_version = (uint16_t)((unsigned)r[1] << 8 | r[2]);
        inrecords += rlen;
        take = rlen < avail - 5 ? rlen : avail - 5;
        if (take > sizeof(hs) - have)
            take = sizeof(hs) - have;  /* only when the hello is too long anyway */
        memcpy(hs + have, r + 5, take);
        have += take;
        if (need == 0 && have >= 4) {
            if (hs[0] != HS_CLIENT_HELLO) {
                *why = "first handshake message is not a ClientHello";
                goto fail;
            }
            need = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
            if (need > SNI_MAX_HELLO) {
                *why = "ClientHello too long";
                goto fail;
            }
        }
        if (need != 0 && inrecords > need) {
            *why = "more data after the ClientHello in its record";
            goto fail;
        }
        if (avail - 5 < rlen)
            return 0;
        pos += 5 + rlen;
        if (need != 0 && have == need)
            break;
    }
    if (parse_hello(hs + 4, need - 4, out, why) < 0)
        goto fail;
    out->consumed = pos;
    return 1;

fail:
    return -1;
}
