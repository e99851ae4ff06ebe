/* fuzz_sni.c - fuzz target: the TLS ClientHello parser of the CONNECT peek (core/sni.c), whole and fed in pieces. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "sni.h"

/*
 * The proxy calls sni_parse() on what it has read so far after every read
 * of a CONNECT tunnel, until the answer is not "need more". So on top of
 * memory safety:
 *
 *   - feeding the bytes one at a time decides exactly what parsing them all
 *     at once decides, at the first prefix where the hello is complete
 *     (consumed == that prefix), with the same fields: a verdict never
 *     depends on how TCP cut the stream;
 *   - "need more" (0) never comes once SNI_PEEK_MAX bytes are there;
 *     -1 always has a reason, 0 and 1 none;
 *   - a parsed hello is sane: server_name NUL-terminated, at most 253
 *     bytes, a lowercase DNS name of letters, digits, '-', '_' with labels
 *     of 1..63 bytes and a non-numeric last label, empty for an IP
 *     literal; versions only SSL 3.0..TLS 1.3 bits and max_version the
 *     highest of them; consumed within the input.
 */

static void check_name(const char *s)
{
    size_t n = strnlen(s, SNI_NAME_MAX + 1), label = 0;
    int digits = 1;

    FUZZ_CHECK(n <= SNI_NAME_MAX, "server_name not terminated within 253 bytes");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            FUZZ_CHECK(label > 0, "empty label in server_name '%s'", s);
            label = 0;
            digits = 1;
            continue;
        }
        FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                       c == '_',
                   "byte 0x%02x in server_name", (unsigned char)c);
        FUZZ_CHECK(++label <= 63, "label longer than 63 bytes in server_name");
        if (c < '0' || c > '9')
            digits = 0;
    }
    if (n > 0) {
        FUZZ_CHECK(label > 0, "server_name '%s' ends in a dot", s);
        FUZZ_CHECK(!digits, "server_name '%s' has a numeric last label", s);
    }
}

static void check_info(const sni_info_t *in, size_t len)
{
    check_name(in->server_name);
    if (in->ip_literal)
        FUZZ_CHECK(in->server_name[0] == '\0', "IP literal with a server_name");
    FUZZ_CHECK(in->consumed >= 5 + 4 + 38 && in->consumed <= len,
               "consumed %zu of %zu bytes", in->consumed, len);
    FUZZ_CHECK((in->versions & ~0x1fu) == 0, "versions 0x%x", in->versions);
    if (in->alpn_h2 || in->alpn_http11)
        FUZZ_CHECK(in->alpn, "ALPN protocols without the extension");
    if (in->has_supported_versions) {
        unsigned want = 0;
        for (unsigned b = 0; b < 5; b++)
            if (in->versions & (1u << b))
                want = 0x0300 + b;
        FUZZ_CHECK(in->max_version == want, "max_version 0x%04x, versions 0x%x",
                   in->max_version, in->versions);
    } else {
        FUZZ_CHECK(in->versions == 0, "versions without the extension");
        FUZZ_CHECK(in->max_version == in->legacy_version,
                   "max_version 0x%04x is not legacy_version 0x%04x", in->max_version,
                   in->legacy_version);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sni_info_t whole, part;
    const char *why = "unset";
    int rc = sni_parse(data, size, &whole, &why);

    FUZZ_CHECK(rc >= -1 && rc <= 1, "sni_parse returned %d", rc);
    FUZZ_CHECK(rc == -1 ? why != NULL : why == NULL, "reason '%s' with result %d",
               why ? why : "(null)", rc);
    if (rc == 0)
        FUZZ_CHECK(size < SNI_PEEK_MAX, "need more after %zu bytes", size);
    if (rc == 1)
        check_info(&whole, size);

    /* The peek: after every read, everything read so far. One byte per read
     * over the first 4 KiB (every hello of a real client fits), then
     * larger steps, always ending with the whole input. */
    for (size_t k = 0;; k += k < 4096 ? 1 : 97) {
        int r;
        if (k > size)
            k = size;
        r = sni_parse(data, k, &part, NULL);
        if (r != 0) {
            FUZZ_CHECK(r == rc, "fed in pieces: %d after %zu bytes; whole input: %d", r,
                       k, rc);
            if (r == 1) {
                FUZZ_CHECK(k >= whole.consumed, "complete after %zu bytes, consumed %zu",
                           k, whole.consumed);
                if (k < 4096)
                    FUZZ_CHECK(k == whole.consumed,
                               "complete after %zu bytes, but the hello is %zu", k,
                               whole.consumed);
                FUZZ_CHECK(memcmp(&part, &whole, sizeof(part)) == 0,
                           "fed in pieces, the hello parses differently");
            }
            break;
        }
        FUZZ_CHECK(k < SNI_PEEK_MAX, "need more after %zu bytes", k);
        if (k == size) {
            FUZZ_CHECK(rc == 0, "fed in pieces: undecided; whole input: %d", rc);
            break;
        }
    }
    return 0;
}
