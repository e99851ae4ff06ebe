/* urlnorm.c - host and URL normalisation shared by the core and the filtering plugins. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <idn2.h>

#include "netaddr.h"
#include "urlnorm.h"

/*
 * Why every step exists: a filter compares names, a resolver resolves
 * them. Whatever the resolver (or the origin server) would treat as the
 * same target must compare equal here, or a list entry is evaded by
 * spelling the target differently: "EXAMPLE.com.", "%65xample.com",
 * "ｅｘａｍｐｌｅ.com", "0x7f.1" and "[::ffff:127.0.0.1]" all reach the
 * same place as their plain forms.
 */

/* Longest raw host we look at: percent-escapes and UTF-8 make the input
 * longer than the 253 bytes of the result, but not by more than this. */
#define RAW_HOST_MAX 1024

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 1 when s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Parses one part of a numeric IPv4 host as the WHATWG URL standard's IPv4
 * number parser does: "0x" hex (digits optional), a leading 0 octal, else
 * decimal. Returns 0, or -1 when the part is not a number or overflows. */
static int ipv4_part(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    int base = 10;

    if (n >= 2 && s[0] == '0' && s[1] == 'x') {
        base = 16;
        s += 2;
        n -= 2;
    } else if (n >= 2 && s[0] == '0') {
        base = 8;
        s++;
        n--;
    } else if (n == 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int d = hexval((unsigned char)s[i]);
        if (d < 0 || d >= base || (base != 16 && s[i] > '9'))
            return -1;
        v = v * (uint64_t)base + (uint64_t)d;
        if (v > 0xffffffffull)
            return -1;
    }
    *out = v;
    return 0;
}

/* 1 when the last label of h is a number (digits, or 0x and hex digits):
 * then the whole host must be an IPv4 address (WHATWG "ends in a number"). */
static int ends_in_number(const char *h, size_t n)
{
    size_t s = n;

    while (s > 0 && h[s - 1] != '.')
        s--;
    if (s == n)
        return 0;
    if (n - s >= 2 && h[s] == '0' && h[s + 1] == 'x') {
        for (size_t i = s + 2; i < n; i++)
            if (hexval((unsigned char)h[i]) < 0)
                return 0;
        return 1;
    }
    for (size_t i = s; i < n; i++)
        if (h[i] < '0' || h[i] > '9')
            return 0;
    return 1;
}

/* "127.1", "0x7f000001", "017700000001", "127.0.0.1" -> 32-bit address.
 * Up to four parts; the last fills the remaining bytes. Returns 0 or -1. */
static int ipv4_parse(const char *h, size_t n, uint32_t *addr)
{
    uint64_t part[4];
    int np = 0;
    size_t s = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && h[i] != '.')
            continue;
        if (np == 4 || ipv4_part(h + s, i - s, &part[np]) < 0)
            return -1;
        np++;
        s = i + 1;
    }
    for (int i = 0; i < np - 1; i++)
        if (part[i] > 255)
            return -1;
    if (part[np - 1] >= (1ull << (8 * (5 - np))))
        return -1;
    *addr = (uint32_t)part[np - 1];
    for (int i = 0; i < np - 1; i++)
        *addr |= (uint32_t)part[i] << (8 * (3 - i));
    return 0;
}

/* An IPv6 literal without brackets: RFC 5952 text, or the dotted quad of an
 * IPv4-mapped address (the same host as the IPv4 one). */
static int host_ipv6(const char *in, size_t len, char *out, size_t outlen,
                     const char **why)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    netaddr_t a;

    if (len == 0 || len >= sizeof(tmp)) {
        *why = "bad IPv6 literal";
        return -1;
    }
    memcpy(tmp, in, len);
    tmp[len] = '\0';
    if (memchr(tmp, '%', len)) {
        /* RFC 6874 zones name an interface of this machine: never a
         * target a client may ask a proxy for. */
        *why = "zone identifier in IPv6 literal";
        return -1;
    }
    if (strchr(tmp, ':') == NULL || netaddr_parse(tmp, &a) < 0) {
        *why = "bad IPv6 literal";
        return -1;
    }
    netaddr_format(&a, out, outlen);
    return 0;
}

/* Checks the characters and labels of an ASCII, lowercased host. */
static int host_check_ldh(const char *h, size_t n, const char **why)
{
    size_t label = 0;

    if (n == 0) {
        *why = "empty host";
        return -1;
    }
    if (n > URLNORM_HOST_MAX) {
        *why = "host name too long";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0) {
                *why = "empty label in host";
                return -1;
            }
            label = 0;
            continue;
        }
        /* LDH plus '_', which real DNS names carry (RFC 2181 11). */
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_')) {
            *why = "invalid character in host";
            return -1;
        }
        if (++label > 63) {
            *why = "label longer than 63 bytes in host";
            return -1;
        }
    }
    if (label == 0) {
        *why = "empty label in host";
        return -1;
    }
    return 0;
}

/* 1 when some label of the NUL-terminated h starts with "xn--". */
static int has_alabel(const char *h)
{
    for (const char *p = h; *p;) {
        if (strncmp(p, "xn--", 4) == 0)
            return 1;
        p = strchr(p, '.');
        if (p == NULL)
            break;
        p++;
    }
    return 0;
}

int urlnorm_host(const char *in, size_t len, char *out, size_t outlen,
                 const char **why)
{
    char buf[RAW_HOST_MAX + 1];
    size_t n = 0;
    int non_ascii = 0;

    if (outlen < URLNORM_HOST_MAX + 1) {
        *why = "output buffer too small";
        return -1;
    }
    out[0] = '\0';
    if (len == 0) {
        *why = "empty host";
        return -1;
    }
    if (len > RAW_HOST_MAX) {
        *why = "host name too long";
        return -1;
    }
    if (in[0] == '[') {
        if (len < 2 || in[len - 1] != ']') {
            *why = "unterminated IPv6 literal";
            return -1;
        }
        return host_ipv6(in + 1, len - 2, out, outlen, why);
    }
    if (memchr(in, ':', len))
        return host_ipv6(in, len, out, outlen, why);

    /* Percent-escapes first (the WHATWG host parser decodes them before
     * anything else), so "%65xample.com" is "example.com". */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "bad percent-escape in host";
                return -1;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c == 0) {
            *why = "NUL in host";
            return -1;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "control character in host";
            return -1;
        }
        if (c >= 0x80)
            non_ascii = 1;
        else if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        buf[n++] = (char)c;
    }
    buf[n] = '\0';

    if (non_ascii || has_alabel(buf)) {
        /* IDNA 2008 with UTS #46 mapping, as browsers look names up:
         * full-width letters and digits, ideographic full stops and
         * upper case map to their plain forms; U-labels become A-labels;
         * existing A-labels are decoded and checked. */
        char *res = NULL;
        int rc;
        size_t rlen;

        if (non_ascii && !utf8_valid((const unsigned char *)buf, n)) {
            *why = "invalid UTF-8 in host";
            return -1;
        }
        rc = idn2_lookup_u8((const uint8_t *)buf, (uint8_t **)&res,
                            IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (rc != IDN2_OK) {
            *why = "invalid international host name";
            return -1;
        }
        rlen = strlen(res);
        if (rlen > RAW_HOST_MAX) {
            idn2_free(res);
            *why = "host name too long";
            return -1;
        }
        for (size_t i = 0; i < rlen; i++)
            buf[i] = (char)((res[i] >= 'A' && res[i] <= 'Z') ? res[i] + 32 : res[i]);
        n = rlen;
        buf[n] = '\0';
        idn2_free(res);
    }

    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';  /* "example.com." is "example.com" */
    if (host_check_ldh(buf, n, why) < 0)
        return -1;
    if (ends_in_number(buf, n)) {
        /* Every numeric form (1.2.3.4, 0x7f.1, 2130706433, 017700000001)
         * names an IPv4 address; a host whose last label is a number but
         * is no address is invalid (WHATWG URL "ends in a number"). */
        uint32_t a;
        struct in_addr ia;
        if (ipv4_parse(buf, n, &a) < 0) {
            *why = "invalid numeric host";
            return -1;
        }
        ia.s_addr = htonl(a);
        if (inet_ntop(AF_INET, &ia, out, (socklen_t)outlen) == NULL) {
            *why = "output buffer too small";
            return -1;
        }
        return 0;
    }
    memcpy(out, buf, n + 1);
    return 0;
}

int urlnorm_host_is_ip(const char *host)
{
    struct in_addr a;

    return strchr(host, ':') != NULL || inet_pton(AF_INET, host, &a) == 1;
}

/* ---- paths ---------------------------------------------------------------- */

static int is_unreserved(unsigned char c)
{
    /* RFC 3986 2.3: escaping these changes nothing, so decode them. */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends in[0..len) to out at *o with the escapes normalised (RFC 3986
 * 6.2.2.1-2): unreserved characters decoded, other escapes upper-case,
 * raw bytes above 0x7e and spaces escaped. strict refuses a '%' that starts
 * no escape; otherwise it stays a literal '%'. Returns 0 or -1.
 *
 * A literal '%' must not become an escape with what follows it in the
 * output, or normalising twice would differ ("?%%341" would give "?%41",
 * and that "?A" on the next pass): a hex digit decoded from an escape
 * within the two bytes after a literal '%' stays escaped. */
static int add_escaped(const char *in, size_t len, int strict, char *out,
                       size_t outlen, size_t *o, const char **why)
{
    static const char hex[] = "0123456789ABCDEF";
    int after_stray = 0;  /* output bytes left that could extend a literal '%' */

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int esc = 0, stray = 0;

        if (c == 0 || c < 0x20 || c == 0x7f) {
            *why = c == 0 ? "NUL in URL" : "control character in URL";
            return -1;
        }
        if (c == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                if (strict) {
                    *why = "bad percent-escape in URL";
                    return -1;
                }
                stray = 1;
            } else {
                c = (unsigned char)(hi * 16 + lo);
                if (c == 0) {
                    *why = "escaped NUL in URL";
                    return -1;
                }
                i += 2;
                esc = !is_unreserved(c) || (after_stray > 0 && hexval(c) >= 0);
            }
        } else if (c >= 0x7f || c == ' ') {
            esc = 1;
        }
        if (stray)
            after_stray = 2;
        else if (!esc && after_stray > 0 && hexval(c) >= 0)
            after_stray--;
        else
            after_stray = 0;
        if (*o + (esc ? 3 : 1) >= outlen) {
            *why = "too long";
            return -1;
        }
        if (esc) {
            out[(*o)++] = '%';
            out[(*o)++] = hex[c >> 4];
            out[(*o)++] = hex[c & 15];
        } else {
            out[(*o)++] = (char)c;
        }
    }
    return 0;
}

/* Removes dot-segments (RFC 3986 5.2.4) and collapses "//" runs in the
 * path p[0..n), which starts with '/', in place. Returns the new length
 * (at least 1: "/"). */
static size_t remove_dots(char *p, size_t n)
{
    size_t w = 0, i = 0;
    int end_slash = 0;

    while (i < n) {
        size_t s, sl;

        while (i < n && p[i] == '/')
            i++;
        if (i == n) {
            end_slash = 1;  /* "/a/" keeps its slash */
            break;
        }
        s = i;
        while (i < n && p[i] != '/')
            i++;
        sl = i - s;
        end_slash = 0;
        if (sl == 1 && p[s] == '.') {
            end_slash = i == n;
            continue;
        }
        if (sl == 2 && p[s] == '.' && p[s + 1] == '.') {
            while (w > 0 && p[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
            end_slash = i == n;
            continue;
        }
        /* w <= s - 1: at least one '/' was skipped before s. */
        p[w++] = '/';
        memmove(p + w, p + s, sl);
        w += sl;
    }
    if (end_slash || w == 0)
        p[w++] = '/';
    return w;
}

int urlnorm_path(const char *in, size_t len, char *out, size_t outlen,
                 const char **why)
{
    const char *hash, *q;
    size_t plen, o = 0;

    if (outlen < 2) {
        *why = "too long";
        return -1;
    }
    hash = memchr(in, '#', len);
    if (hash)
        len = (size_t)(hash - in);  /* a fragment never reaches a server */
    q = memchr(in, '?', len);
    plen = q ? (size_t)(q - in) : len;

    out[o++] = '/';
    if (add_escaped(in, plen, 1, out, outlen, &o, why) < 0)
        return -1;
    /* The '/' we put first doubles the input's own leading one; the
     * "//" collapse removes it again. */
    o = remove_dots(out, o);
    if (q) {
        if (o + 1 >= outlen) {
            *why = "too long";
            return -1;
        }
        out[o++] = '?';
        if (add_escaped(q + 1, len - plen - 1, 0, out, outlen, &o, why) < 0)
            return -1;
    }
    out[o] = '\0';
    return 0;
}
