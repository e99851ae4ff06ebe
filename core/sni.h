/* sni.h - the TLS ClientHello parser behind the CONNECT peek (SNI, ALPN, versions). */
#ifndef PC_SNI_H
#define PC_SNI_H

#include <stddef.h>
#include <stdint.h>

/*
 * On a CONNECT the proxy reads the client's first bytes before it decides:
 * they should be a TLS ClientHello (RFC 8446 section 4.1.2) in one or more
 * handshake records. sni_parse() looks at the bytes read so far and says
 * whether they hold a whole ClientHello, need more, or are no TLS at all.
 * It is a pure function: no allocation, no global state, no OpenSSL, safe on
 * any thread and on any input (it is a fuzzing target).
 *
 * What it decides, and why:
 *  - Records: content type 22 (handshake) only; another type before the
 *    hello is complete is malformed (RFC 8446 section 5.1: handshake
 *    messages are not interleaved with other record types). Record version
 *    major 3; length 1..16384 (zero-length handshake fragments are
 *    forbidden, longer ones are a record_overflow).
 *  - The first handshake message must be a ClientHello (type 1). It may be
 *    fragmented over up to SNI_MAX_RECORDS records; its last record must end
 *    where the hello ends (RFC 8446 section 5.1: a ClientHello can precede a
 *    key change, so it is aligned with a record boundary), which makes
 *    `consumed` exact: those bytes are the hello, what follows is not.
 *  - Bounded: a hello longer than SNI_MAX_HELLO bytes, or spread over more
 *    than SNI_MAX_RECORDS records, is refused; so a caller that buffers
 *    while sni_parse() returns 0 never holds more than SNI_PEEK_MAX bytes.
 *  - SSLv2-compatible hellos (RFC 5246 appendix E.2, first byte with the
 *    high bit set) are refused: no client worth serving sends them, and
 *    they carry no extensions, so no SNI to filter on.
 *  - Extensions: a type seen twice is malformed (RFC 8446 section 4.2);
 *    GREASE values (RFC 8701) are skipped like any unknown extension.
 *  - server_name (RFC 6066 section 3): the first host_name entry is used,
 *    later entries are ignored; entries of other name types are skipped,
 *    and a list without any host_name entry is malformed. An empty
 *    extension (what servers send back) is malformed in a ClientHello.
 *  - The name is normalised: ASCII letters lowercased, one trailing dot
 *    removed. It must be a DNS name: 1..253 bytes, labels of 1..63 bytes of
 *    letters, digits, '-' and '_' (seen in the wild), and a last label that
 *    is not all digits (browsers read "1.2.3" as an IPv4 address). Bytes
 *    >= 0x80 are malformed: RFC 6066 wants A-labels (punycode).
 *  - IP literals: RFC 6066 forbids them in HostName, but some non-browser
 *    clients send them anyway. They are not treated as malformed (that
 *    would cut off those clients at the default block policy): the parse
 *    succeeds, server_name stays empty as if no SNI was sent, and
 *    ip_literal is set so that policy can see it. An IP literal cannot be
 *    used for domain fronting; the CONNECT authority is what is filtered.
 *  - ALPN (RFC 7301): records whether "h2" and "http/1.1" are offered; an
 *    empty list or an empty protocol name is malformed.
 *  - supported_versions (RFC 8446 section 4.2.1): the offered versions as a
 *    bit set, GREASE ignored; max_version is the highest offered of SSL 3.0
 *    to TLS 1.3 (0 when none of those), or legacy_version when the
 *    extension is absent (a TLS 1.2 or older client).
 */

#define SNI_MAX_HELLO 16384  /* handshake message bytes, header included */
#define SNI_MAX_RECORDS 4
#define SNI_PEEK_MAX (SNI_MAX_HELLO + 5 * SNI_MAX_RECORDS)
#define SNI_NAME_MAX 253

/* Bits of sni_info_t.versions. */
#define SNI_V_SSL3 0x01   /* 0x0300 */
#define SNI_V_TLS10 0x02  /* 0x0301 */
#define SNI_V_TLS11 0x04  /* 0x0302 */
#define SNI_V_TLS12 0x08  /* 0x0303 */
#define SNI_V_TLS13 0x10  /* 0x0304 */

typedef struct sni_info {
    char server_name[SNI_NAME_MAX + 1]; /* normalised host_name; "" when none */
    int ip_literal;         /* 1: host_name was an IP address (server_name "") */
    int alpn;               /* 1: the ALPN extension is present */
    int alpn_h2;            /* 1: ALPN offers "h2" */
    int alpn_http11;        /* 1: ALPN offers "http/1.1" */
    uint16_t record_version; /* of the first record, e.g. 0x0301 */
    uint16_t legacy_version; /* ClientHello.legacy_version, e.g. 0x0303 */
    int has_supported_versions; /* 1: the supported_versions extension is present */
    unsigned versions;       /* SNI_V_* offered in supported_versions */
    uint16_t max_version;    /* highest offered version (see above) */
    size_t consumed;         /* bytes of the records that hold the hello */
} sni_info_t;

/* Parses the ClientHello at the start of p[0..len). Returns 1 when it is
 * complete and valid (out filled, out->consumed <= len), 0 when the bytes so
 * far are a valid prefix and more are needed (never once len >=
 * SNI_PEEK_MAX), -1 when they are not TLS or the hello is malformed, with
 * *why (when why is not NULL) pointing at a static English phrase such as
 * "duplicate extension". out is only meaningful after 1. */
int sni_parse(const uint8_t *p, size_t len, sni_info_t *out, const char **why);

#endif
