/* fuzz_urlnorm.c - fuzz target: host and path normalisation (lib/urlnorm.c) and request targets (core/url.c). */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "url.h"
#include "urlnorm.h"

/*
 * The first byte picks the function; the rest is its input:
 *
 *   0  urlnorm_host        4  url_parse_absolute
 *   1  urlnorm_path        5  url_parse_authority (CONNECT)
 *   2  urlnorm_path into an output buffer of a fuzzed size (next byte)
 *   3  urlnorm_host into a buffer of exactly URLNORM_HOST_MAX + 1
 *
 * Outputs go to heap buffers of exactly the promised size, so a write past
 * them is an ASan report. Invariants, every function:
 *   - -1 always has a reason; the output is NUL-terminated within its
 *     buffer either way;
 *   - normalising an output again gives it back (idempotence: an admin's
 *     list entry written in normal form matches itself);
 *   - hosts: at most 253 bytes of [a-z0-9._-], or an IPv6 literal of
 *     [0-9a-f:.] (what urlnorm_host_is_ip says), no control bytes;
 *   - paths: start with '/', no control bytes, no raw space or byte above
 *     0x7e, no '#', and in the path part no "//" and no "." or ".."
 *     segment; a result that fits a small buffer is the one of a big one;
 *   - request targets: host is urlnorm_host output, the path lies inside
 *     the target and holds no '#', and writing the authority back with
 *     url_format_authority() parses to the same host and port.
 */

#define BIG 65536

static void check_host(const char *h)
{
    size_t n = strnlen(h, URLNORM_HOST_MAX + 1);
    int ip = urlnorm_host_is_ip(h);

    FUZZ_CHECK(n >= 1 && n <= URLNORM_HOST_MAX, "host of %zu bytes", n);
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (ip && strchr(h, ':'))
            FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' ||
                           c == '.',
                       "byte 0x%02x in IPv6 host '%s'", (unsigned char)c, h);
        else
            FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                           c == '_' || c == '.',
                       "byte 0x%02x in host '%s'", (unsigned char)c, h);
    }
    FUZZ_CHECK(h[0] != '.' && h[n - 1] != '.' && strstr(h, "..") == NULL,
               "empty label in host '%s'", h);
}

/* urlnorm_host(in) into a heap buffer of outlen bytes. */
static int host_into(const char *in, size_t len, size_t outlen, char **out,
                     const char **why)
{
    int rc;

    *out = malloc(outlen);
    if (*out == NULL)
        abort();
    *why = NULL;
    rc = urlnorm_host(in, len, *out, outlen, why);
    FUZZ_CHECK(rc == 0 || rc == -1, "urlnorm_host returned %d", rc);
    FUZZ_CHECK(rc == 0 || *why != NULL, "urlnorm_host failed without a reason");
    FUZZ_CHECK(memchr(*out, '\0', outlen) != NULL, "host output not NUL-terminated");
    return rc;
}

static void fuzz_host(const char *in, size_t len, size_t outlen)
{
    char *out, *again;
    const char *why;

    if (host_into(in, len, outlen, &out, &why) == 0) {
        check_host(out);
        FUZZ_CHECK(host_into(out, strlen(out), outlen, &again, &why) == 0,
                   "host '%s' refused the second time: %s", out, why);
        FUZZ_CHECK(strcmp(out, again) == 0, "host '%s' normalises to '%s'", out, again);
        free(again);
    }
    free(out);
}

static void check_path(const char *p, size_t outlen)
{
    size_t n = strlen(p), plen = strcspn(p, "?");

    FUZZ_CHECK(n < outlen, "path of %zu bytes in a %zu-byte buffer", n, outlen);
    FUZZ_CHECK(p[0] == '/', "path '%s' does not start with '/'", p);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '#', "byte 0x%02x in path '%s'", c, p);
    }
    for (size_t i = 0; i < plen; i++) {
        if (p[i] != '/')
            continue;
        FUZZ_CHECK(i + 1 >= plen || p[i + 1] != '/', "\"//\" in path '%.*s'", (int)plen, p);
        if (i + 1 < plen && p[i + 1] == '.') {
            size_t s = i + 1, e = s;
            while (e < plen && p[e] != '/')
                e++;
            FUZZ_CHECK(!(e - s == 1 || (e - s == 2 && p[s + 1] == '.')),
                       "dot-segment in path '%.*s'", (int)plen, p);
        }
    }
}

/* urlnorm_path(in) into a heap buffer of outlen bytes. */
static int path_into(const char *in, size_t len, size_t outlen, char **out,
                     const char **why)
{
    int rc;

    *out = malloc(outlen);
    if (*out == NULL)
        abort();
    (*out)[0] = '\0';
    *why = NULL;
    rc = urlnorm_path(in, len, *out, outlen, why);
    FUZZ_CHECK(rc == 0 || rc == -1, "urlnorm_path returned %d", rc);
    FUZZ_CHECK(rc == 0 || *why != NULL, "urlnorm_path failed without a reason");
    if (rc == 0)
        FUZZ_CHECK(memchr(*out, '\0', outlen) != NULL, "path output not NUL-terminated");
    return rc;
}

static void fuzz_path(const char *in, size_t len, size_t outlen)
{
    char *out, *big, *again;
    const char *why;
    int rc = path_into(in, len, outlen, &out, &why);
    int rcbig = path_into(in, len, BIG, &big, &why);

    if (rc == 0) {
        check_path(out, outlen);
        FUZZ_CHECK(rcbig == 0 && strcmp(out, big) == 0,
                   "path fits %zu bytes as '%s' but not a bigger buffer", outlen, out);
    }
    if (rcbig == 0) {
        check_path(big, BIG);
        FUZZ_CHECK(path_into(big, strlen(big), BIG, &again, &why) == 0,
                   "path '%s' refused the second time: %s", big, why);
        FUZZ_CHECK(strcmp(big, again) == 0, "path '%s' normalises to '%s'", big, again);
        free(again);
    }
    free(out);
    free(big);
}

static void check_url(const url_t *u, const char *s, size_t len, int authority_form)
{
    char *again, auth[URL_HOST_MAX + 16];
    const char *why;
    url_t v;
    size_t alen;

    check_host(u->host);
    FUZZ_CHECK(host_into(u->host, strlen(u->host), URLNORM_HOST_MAX + 1, &again, &why) == 0 &&
                   strcmp(again, u->host) == 0,
               "URL host '%s' is not in normal form", u->host);
    free(again);
    FUZZ_CHECK(u->host_is_ip == urlnorm_host_is_ip(u->host), "host_is_ip wrong for '%s'",
               u->host);
    FUZZ_CHECK(!u->port_given || u->port != 0, "port 0 given");
    if (authority_form) {
        FUZZ_CHECK(u->port_given, "CONNECT target without a port");
        FUZZ_CHECK(u->path_len == 0, "CONNECT target with a path");
    } else {
        FUZZ_CHECK(u->path >= s && u->path + u->path_len <= s + len,
                   "path outside the target");
        FUZZ_CHECK(memchr(u->path, '#', u->path_len) == NULL, "fragment in the path");
        FUZZ_CHECK(u->path_len == 0 || u->path[0] == '/' || u->path[0] == '?',
                   "path starts with 0x%02x", (unsigned char)u->path[0]);
    }
    alen = url_format_authority(u, 1, auth, sizeof(auth));
    FUZZ_CHECK(alen == strlen(auth) && alen < sizeof(auth), "authority cut short");
    FUZZ_CHECK(url_parse_authority(auth, alen, &v, &why) == 0,
               "authority '%s' does not parse back: %s", auth, why);
    FUZZ_CHECK(strcmp(v.host, u->host) == 0 && v.port == u->port,
               "authority '%s' parses back as %s port %u", auth, v.host, v.port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    unsigned mode = fuzz_byte(&in) % 6;
    size_t outlen = 0;
    char *s;
    url_t u;
    const char *why;

    if (mode == 2)
        outlen = 2 + fuzz_byte(&in) * 4;
    /* Exactly the input: a read past it is an ASan report. */
    s = malloc(in.n ? in.n : 1);
    if (s == NULL)
        abort();
    memcpy(s, in.p, in.n);
    switch (mode) {
    case 0:
        fuzz_host(s, in.n, 1024);
        break;
    case 3:
        fuzz_host(s, in.n, URLNORM_HOST_MAX + 1);
        break;
    case 1:
        fuzz_path(s, in.n, 8192);
        break;
    case 2:
        fuzz_path(s, in.n, outlen);
        break;
    case 4:
        why = NULL;
        if (url_parse_absolute(s, in.n, &u, &why) == 0)
            check_url(&u, s, in.n, 0);
        else
            FUZZ_CHECK(why != NULL, "url_parse_absolute failed without a reason");
        break;
    case 5:
        why = NULL;
        if (url_parse_authority(s, in.n, &u, &why) == 0)
            check_url(&u, s, in.n, 1);
        else
            FUZZ_CHECK(why != NULL, "url_parse_authority failed without a reason");
        break;
    }
    free(s);
    return 0;
}
