/* filetype.c - file names and types of downloads: URL paths, Content-Disposition, extensions, MIME types. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "banlist.h"
#include "urlnorm.h"

/*
 * What a browser will save a download as is decided by, in order, the
 * Content-Disposition filename (RFC 6266 4.3: filename* wins over
 * filename), then the last segment of the URL path; what the system will
 * run it as, by its last extension. A banned extension is looked for in
 * every extension of the name, not only the last, so "invoice.pdf.exe"
 * (shown as "invoice.pdf" where extensions are hidden) and
 * "invoice.exe.pdf" are both caught by "exe".
 */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int bl_ext_normalise(const char *entry, char *out, size_t outlen, char *err,
                     size_t errlen)
{
    const char *p = entry;
    size_t n = 0;

    if (p[0] == '*' && p[1] == '.')
        p += 2;
    else if (p[0] == '.')
        p++;
    if (*p == '\0') {
        snprintf(err, errlen, "empty extension '%.200s'", entry);
        return -1;
    }
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f || c == '.' || c == '/' || c == '\\') {
            snprintf(err, errlen, "invalid extension '%.200s' (one extension "
                     "without the dot, e.g. exe)", entry);
            return -1;
        }
        if (n + 1 >= outlen) {
            snprintf(err, errlen, "extension '%.40s...' is too long", entry);
            return -1;
        }
        out[n++] = (char)lower(c);
    }
    out[n] = '\0';
    return 0;
}

/* RFC 9110 5.6.2 token characters. */
static int is_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int bl_mime_normalise(const char *entry, char *out, size_t outlen, char *err,
                      size_t errlen)
{
    const char *slash = strchr(entry, '/');
    size_t n = strlen(entry);

    if (slash == NULL || slash == entry || slash[1] == '\0' ||
        strchr(slash + 1, '/') != NULL) {
        snprintf(err, errlen, "invalid MIME type '%.200s' (type/subtype, "
                 "e.g. application/x-msdownload or video/*)", entry);
        return -1;
    }
    if (n + 1 > outlen) {
        snprintf(err, errlen, "MIME type '%.40s...' is too long", entry);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)entry[i];
        if (entry + i != slash && !is_tchar(c)) {
            snprintf(err, errlen, "invalid character in MIME type '%.200s'", entry);
            return -1;
        }
        out[i] = (char)lower(c);
    }
    out[n] = '\0';
    if (strchr(out, '*') && strcmp(slash + 1, "*") != 0) {
        snprintf(err, errlen, "invalid MIME type '%.200s': '*' only as the "
                 "whole subtype (video/*)", entry);
        return -1;
    }
    return 0;
}

/* The last path segment of s[0..len), '/' and '\' both separating (a
 * Windows path in a filename parameter counts too). */
static void base_name(const char *s, size_t len, char *out, size_t outlen)
{
    size_t start = 0, n;

    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' || s[i] == '\\')
            start = i + 1;
    n = len - start;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, s + start, n);
    out[n] = '\0';
}

int bl_path_filename(const char *path, char *out, size_t outlen)
{
    char norm[8192];
    const char *why, *seg;
    size_t end;

    out[0] = '\0';
    if (path == NULL || *path == '\0')
        return -1;
    /* The common case, for every request: a last segment without escapes
     * that is no dot segment is its own normal form; only its name
     * matters, so the whole path need not be normalised. */
    end = strcspn(path, "?#;");
    seg = path + end;
    while (seg > path && seg[-1] != '/' && seg[-1] != '\\')
        seg--;
    if (memchr(seg, '%', (size_t)(path + end - seg)) == NULL &&
        !(path + end - seg == 1 && seg[0] == '.') &&
        !(path + end - seg == 2 && seg[0] == '.' && seg[1] == '.')) {
        base_name(seg, (size_t)(path + end - seg), out, outlen);
        return out[0] ? 0 : -1;
    }
    if (urlnorm_path(path, strlen(path), norm, sizeof(norm), &why) < 0) {
        /* Too long or hostile: the core refuses what is hostile; a long
         * path is checked as received. */
        snprintf(norm, sizeof(norm), "%s", path);
    }
    end = strcspn(norm, "?#;");
    base_name(norm, end, out, outlen);
    return out[0] ? 0 : -1;
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

/* A parameter value at *pp: a quoted-string (with \-escapes) or a token
 * run to ';'. Copied into out; *pp left after it. */
static void param_value(const char **pp, const char *end, char *out, size_t outlen)
{
    const char *p = *pp;
    size_t n = 0;

    if (p < end && *p == '"') {
        p++;
        while (p < end && *p != '"') {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (n + 1 < outlen)
                out[n++] = *p;
            p++;
        }
        if (p < end)
            p++;
    } else {
        while (p < end && *p != ';') {
            if (n + 1 < outlen)
                out[n++] = *p;
            p++;
        }
        while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
            n--;
    }
    out[n] = '\0';
    *pp = p;
}

/* RFC 8187 ext-value: charset'language'percent-encoded, decoded in place
 * (the bytes are kept as they are: only the dots matter to us). */
static void ext_value_decode(char *v)
{
    char *q = strchr(v, '\'');
    char *r = q ? strchr(q + 1, '\'') : NULL;
    char *o = v;

    if (r == NULL)
        return;
    for (char *p = r + 1; *p; p++) {
        int hi, lo;
        if (*p == '%' && (hi = hexval((unsigned char)p[1])) >= 0 &&
            (lo = hexval((unsigned char)p[2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

int bl_disposition_filenames(const char *value, size_t len, char *out1,
                             char *out2, size_t outlen)
{
    const char *p = value, *end = value + len;
    char v[1024];
    int have_star = 0, have_plain = 0, bare = 1;

    out1[0] = out2[0] = '\0';
    /* The disposition type, then ";name=value" parameters. A value
     * without the type ("filename=x.exe") is read as browsers read it:
     * the parameter counts. */
    while (p < end && *p != ';' && *p != '=')
        p++;
    if (p < end && *p == '=')
        p = value;
    else
        bare = 0;
    while (p < end) {
        const char *name;
        size_t nlen;
        if (!bare)
            p++;  /* the ';' */
        bare = 0;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        name = p;
        while (p < end && *p != '=' && *p != ';')
            p++;
        nlen = (size_t)(p - name);
        while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        if (p >= end || *p == ';')
            continue;
        p++;  /* the '=' */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        param_value(&p, end, v, sizeof(v));
        while (p < end && *p != ';')
            p++;
        if (nlen == 9 && strncasecmp(name, "filename*", 9) == 0) {
            /* RFC 6266 4.3: filename* wins over filename. */
            ext_value_decode(v);
            if (have_star)
                continue;
            if (out1[0] || have_plain)
                memcpy(out2, out1, outlen);
            base_name(v, strlen(v), out1, outlen);
            have_star = 1;
        } else if (nlen == 8 && strncasecmp(name, "filename", 8) == 0) {
            if (have_plain)
                continue;
            base_name(v, strlen(v), have_star ? out2 : out1, outlen);
            have_plain = 1;
        }
    }
    return have_star + have_plain;
}

/* Extension [s, e) of a name, lowercased into buf. */
static const char *ext_copy(const char *s, const char *e, char *buf, size_t len)
{
    size_t n = (size_t)(e - s);

    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)lower((unsigned char)s[i]);
    buf[n] = '\0';
    return buf;
}

/* The name without the trailing dots and spaces Windows drops. */
static size_t trimmed_len(const char *name)
{
    size_t n = strlen(name);

    while (n > 0 && (name[n - 1] == '.' || name[n - 1] == ' '))
        n--;
    return n;
}

const char *bl_ext_banned(const bl_strset_t *ban, const bl_strset_t *exc,
                          const char *name)
{
    size_t n;
    const char *s, *end;
    char ext[256];

    if (ban == NULL || bl_strset_count(ban) == 0 || name == NULL)
        return NULL;
    n = trimmed_len(name);
    end = name + n;
    /* Extensions follow the first dot that is not the name's first byte
     * (".bashrc" has none, ".x.exe" has "exe"). */
    s = n > 1 ? memchr(name + 1, '.', n - 1) : NULL;
    while (s && s < end) {
        const char *e = memchr(s + 1, '.', (size_t)(end - s - 1));
        const char *hit;
        if (e == NULL)
            e = end;
        ext_copy(s + 1, e, ext, sizeof(ext));
        if (ext[0] && (hit = bl_strset_find(ban, ext, strlen(ext))) != NULL &&
            bl_strset_find(exc, ext, strlen(ext)) == NULL)
            return hit;
        s = e < end ? e : NULL;
    }
    return NULL;
}

void bl_ext_last(const char *name, char *out, size_t outlen)
{
    size_t n = trimmed_len(name);
    const char *dot = NULL;

    out[0] = '\0';
    for (size_t i = 1; i < n; i++)
        if (name[i] == '.')
            dot = name + i;
    if (dot)
        ext_copy(dot + 1, name + n, out, outlen);
}

int bl_mime_of(const char *value, size_t len, char *out, size_t outlen)
{
    size_t s = 0, n = 0;
    int slash = 0;

    while (s < len && (value[s] == ' ' || value[s] == '\t'))
        s++;
    /* One pass: copy, lowercase, stop at the parameters (every response
     * goes through here). */
    for (; s < len && n + 1 < outlen; s++, n++) {
        char c = value[s];
        if (c == ';' || c == ' ' || c == '\t' || c == ',')
            break;
        slash |= c == '/';
        out[n] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (n == 0 || !slash || (s < len && n + 1 >= outlen))
        return -1;
    out[n] = '\0';
    return 0;
}

const char *bl_mime_find(const bl_strset_t *set, const char *mime)
{
    const char *hit, *slash;
    char wild[256];
    size_t tl;

    if (set == NULL || bl_strset_count(set) == 0 || mime == NULL)
        return NULL;
    hit = bl_strset_find(set, mime, strlen(mime));
    if (hit)
        return hit;
    slash = strchr(mime, '/');
    if (slash == NULL)
        return NULL;
    tl = (size_t)(slash - mime);
    if (tl + 3 > sizeof(wild))
        return NULL;
    memcpy(wild, mime, tl);
    memcpy(wild + tl, "/*", 3);
    return bl_strset_find(set, wild, tl + 2);
}
