/* avscan_types.c - header parsing for scanning decisions: MIME types, file names, content codings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "avscan.h"

/*
 * Everything here is a pure function of its arguments, so the hooks can
 * call it on any thread and the unit test (t/unit/avscan_types_test.c) can
 * pin the corner cases an origin may send.
 */

static int is_space(int c)
{
    return c == ' ' || c == '\t';
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

int avscan_mime_type(const char *v, size_t len, char *out, size_t outlen)
{
    size_t i = 0, o = 0;

    while (i < len && is_space(v[i]))
        i++;
    while (i < len && v[i] != ';' && !is_space(v[i])) {
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)lower((unsigned char)v[i++]);
    }
    out[o] = '\0';
    return o > 0 && strchr(out, '/') ? 0 : -1;
}

int avscan_mime_match(const avscan_strlist_t *patterns, const char *mime)
{
    if (mime == NULL || *mime == '\0')
        return 0;
    for (int i = 0; i < patterns->n; i++) {
        const char *p = patterns->v[i];
        size_t n = strlen(p);
        if (n >= 2 && p[n - 1] == '*' && p[n - 2] == '/') {
            if (strncasecmp(p, mime, n - 1) == 0)
                return 1;
        } else if (strcasecmp(p, mime) == 0) {
            return 1;
        }
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Copies src[0..len) into out with %XX decoded, keeping only what follows
 * the last '/' or '\\' (a file name, never a path). NUL and control bytes
 * end the name. Returns 0, or -1 when nothing is left or it does not fit. */
static int copy_name(const char *src, size_t len, int pct, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (pct && c == '%' && i + 2 < len &&
            hexval((unsigned char)src[i + 1]) >= 0 &&
            hexval((unsigned char)src[i + 2]) >= 0) {
            c = hexval((unsigned char)src[i + 1]) * 16 + hexval((unsigned char)src[i + 2]);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            break;
        if (c == '/' || c == '\\') {
            o = 0;
            continue;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return o > 0 ? 0 : -1;
}

/* Finds parameter name (case-insensitive) in a header value's parameters
 * and returns its value (unquoted into buf when quoted). NULL when absent. */
static const char *param(const char *v, size_t len, const char *name, char *buf,
                         size_t buflen, size_t *vlen)
{
    size_t nlen = strlen(name), i = 0;

    /* Parameters follow the first ';'. */
    while (i < len && v[i] != ';')
        i++;
    while (i < len) {
        size_t ks, ke;
        i++;  /* the ';' */
        while (i < len && is_space(v[i]))
            i++;
        ks = i;
        while (i < len && v[i] != '=' && v[i] != ';' && !is_space(v[i]))
            i++;
        ke = i;
        while (i < len && is_space(v[i]))
            i++;
        if (i >= len || v[i] != '=') {
            while (i < len && v[i] != ';')
                i++;
            continue;
        }
        i++;
        while (i < len && is_space(v[i]))
            i++;
        if (i < len && v[i] == '"') {
            size_t o = 0;
            i++;
            while (i < len && v[i] != '"') {
                if (v[i] == '\\' && i + 1 < len)
                    i++;
                if (o + 1 < buflen)
                    buf[o++] = v[i];
                i++;
            }
            buf[o] = '\0';
            if (i < len)
                i++;
            while (i < len && v[i] != ';')
                i++;
            if (ke - ks == nlen && strncasecmp(v + ks, name, nlen) == 0) {
                *vlen = o;
                return buf;
            }
        } else {
            size_t vs = i;
            while (i < len && v[i] != ';' && !is_space(v[i]))
                i++;
            if (ke - ks == nlen && strncasecmp(v + ks, name, nlen) == 0) {
                *vlen = i - vs;
                return v + vs;
            }
            while (i < len && v[i] != ';')
                i++;
        }
    }
    return NULL;
}

int avscan_disposition_filename(const char *v, size_t len, char *out,
                                size_t outlen)
{
    char buf[1024];
    const char *p;
    size_t plen;

    /* filename* (RFC 8187: charset'language'pct-encoded) wins over
     * filename (RFC 6266 4.3). The bytes are kept as they are: only the
     * extension matters here, and it is ASCII in every charset we meet. */
    p = param(v, len, "filename*", buf, sizeof(buf), &plen);
    if (p) {
        const char *q1 = memchr(p, '\'', plen);
        const char *q2 = q1 ? memchr(q1 + 1, '\'', plen - (size_t)(q1 + 1 - p)) : NULL;
        if (q2 && copy_name(q2 + 1, plen - (size_t)(q2 + 1 - p), 1, out, outlen) == 0)
            return 0;
    }
    p = param(v, len, "filename", buf, sizeof(buf), &plen);
    if (p && copy_name(p, plen, 0, out, outlen) == 0)
        return 0;
    return -1;
}

int avscan_path_filename(const char *path, char *out, size_t outlen)
{
    size_t len = strcspn(path, "?#");

    return copy_name(path, len, 1, out, outlen);
}

int avscan_ext_match(const avscan_strlist_t *list, const char *filename)
{
    const char *dot;

    if (filename == NULL)
        return 0;
    dot = strrchr(filename, '.');
    if (dot == NULL || dot[1] == '\0')
        return 0;
    dot++;
    for (int i = 0; i < list->n; i++) {
        const char *e = list->v[i];
        if (*e == '.')
            e++;
        if (strcasecmp(e, dot) == 0)
            return 1;
    }
    return 0;
}

int avscan_multipart_boundary(const char *v, size_t len, char *out, size_t outlen)
{
    char mime[128], buf[256];
    const char *p;
    size_t plen;

    if (avscan_mime_type(v, len, mime, sizeof(mime)) < 0 ||
        strcmp(mime, "multipart/form-data") != 0)
        return -1;
    p = param(v, len, "boundary", buf, sizeof(buf), &plen);
    /* RFC 2046 5.1.1: 1 to 70 characters. */
    if (p == NULL || plen == 0 || plen > 70 || plen + 1 > outlen)
        return -1;
    memcpy(out, p, plen);
    out[plen] = '\0';
    return 0;
}

/* Calls fn for each comma-separated element of v (trimmed). */
static int each_element(const char *v, size_t len,
                        int (*fn)(const char *e, size_t elen, void *arg), void *arg)
{
    size_t i = 0;

    while (i < len) {
        size_t s, e;
        while (i < len && (is_space(v[i]) || v[i] == ','))
            i++;
        s = i;
        while (i < len && v[i] != ',')
            i++;
        e = i;
        while (e > s && is_space(v[e - 1]))
            e--;
        if (e > s) {
            int rc = fn(v + s, e - s, arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int coding_of(const char *e, size_t n)
{
    if ((n == 4 && strncasecmp(e, "gzip", 4) == 0) ||
        (n == 6 && strncasecmp(e, "x-gzip", 6) == 0))
        return AVSCAN_CODING_GZIP;
    if (n == 7 && strncasecmp(e, "deflate", 7) == 0)
        return AVSCAN_CODING_DEFLATE;
    if (n == 8 && strncasecmp(e, "identity", 8) == 0)
        return AVSCAN_CODING_NONE;
    return AVSCAN_CODING_UNKNOWN;
}

typedef struct coding_acc {
    int coding;
    int count;
} coding_acc_t;

static int acc_coding(const char *e, size_t n, void *arg)
{
    coding_acc_t *a = arg;
    int c = coding_of(e, n);

    if (c == AVSCAN_CODING_NONE)
        return 0;
    a->count++;
    a->coding = c;
    return 0;
}

int avscan_content_coding(const char *v, size_t len)
{
    coding_acc_t a = {AVSCAN_CODING_NONE, 0};

    if (v == NULL)
        return AVSCAN_CODING_NONE;
    each_element(v, len, acc_coding, &a);
    /* Layered codings ("gzip, deflate") are legal but never seen in
     * practice from a sane origin: we do not unwrap them. */
    if (a.count > 1)
        return AVSCAN_CODING_UNKNOWN;
    return a.coding;
}

typedef struct ae_acc {
    char *out;
    size_t outlen, o;
    int dropped, overflow;
} ae_acc_t;

static int acc_accept(const char *e, size_t n, void *arg)
{
    ae_acc_t *a = arg;
    size_t name = 0;

    while (name < n && is_tchar((unsigned char)e[name]))
        name++;
    if (coding_of(e, name) == AVSCAN_CODING_UNKNOWN) {
        a->dropped = 1;
        return 0;
    }
    if (a->o + n + 3 > a->outlen) {
        a->overflow = 1;
        return 1;
    }
    if (a->o) {
        memcpy(a->out + a->o, ", ", 2);
        a->o += 2;
    }
    memcpy(a->out + a->o, e, n);
    a->o += n;
    a->out[a->o] = '\0';
    return 0;
}

int avscan_accept_encoding(const char *v, size_t len, char *out, size_t outlen)
{
    ae_acc_t a = {out, outlen, 0, 0, 0};

    if (outlen < 9)
        return -1;
    out[0] = '\0';
    each_element(v, len, acc_accept, &a);
    if (a.overflow)
        return -1;
    if (!a.dropped)
        return 0;
    if (a.o == 0)
        snprintf(out, outlen, "identity");
    return 1;
}

void avscan_format_size(uint64_t n, char *out, size_t outlen)
{
    static const char units[] = "kMG";

    for (int i = 2; i >= 0; i--) {
        uint64_t u = 1ull << (10 * (i + 1));
        if (n >= u && n % u == 0) {
            snprintf(out, outlen, "%llu%c", (unsigned long long)(n / u), units[i]);
            return;
        }
    }
    snprintf(out, outlen, "%llu bytes", (unsigned long long)n);
}

void avscan_strlist_clear(avscan_strlist_t *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int avscan_strlist_add(avscan_strlist_t *l, const char *s)
{
    char **v = realloc(l->v, (size_t)(l->n + 1) * sizeof(*v));

    if (v == NULL)
        return -1;
    l->v = v;
    v[l->n] = strdup(s);
    if (v[l->n] == NULL)
        return -1;
    l->n++;
    return 0;
}
