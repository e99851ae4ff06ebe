/* avscan_multipart.c - finds the file parts of a multipart/form-data upload so each is scanned as the file it is. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "avscan.h"

/*
 * A browser uploads files as multipart/form-data (RFC 7578): each file is
 * a part between boundary delimiters (RFC 2046 5.1.1). Hash signatures and
 * file-type parsers only see a file when it starts at offset 0, so the
 * upload is scanned whole and then part by part; this walks the parts
 * through a reader, a window at a time, so a large upload in a spool file
 * is never read into memory.
 */

#define WINDOW (64 * 1024)
#define HEAD_MAX (16 * 1024)

typedef struct mp {
    avscan_read_fn rd;
    void *rctx;
    uint64_t size;
    char *buf;           /* WINDOW + delimiter bytes */
} mp_t;

/* The offset of the first pat at or after from, or -1. */
static int64_t mp_find(mp_t *m, const char *pat, size_t plen, uint64_t from)
{
    uint64_t off = from;

    while (off + plen <= m->size) {
        uint64_t want = m->size - off;
        long n;
        const char *hit;
        if (want > WINDOW + plen)
            want = WINDOW + plen;
        n = m->rd(m->rctx, m->buf, (size_t)want, off);
        if (n < (long)plen)
            return -1;
        hit = memmem(m->buf, (size_t)n, pat, plen);
        if (hit)
            return (int64_t)(off + (uint64_t)(hit - m->buf));
        off += (uint64_t)n - (plen - 1);
    }
    return -1;
}

/* Reads the part head at off: sets *content to where the content starts
 * and fills filename (empty when the part has none). Returns 0 or -1. */
static int mp_head(mp_t *m, uint64_t off, uint64_t *content, char *filename,
                   size_t fnlen)
{
    uint64_t want = m->size - off;
    const char *end, *line;
    long n;

    filename[0] = '\0';
    if (want > HEAD_MAX)
        want = HEAD_MAX;
    n = m->rd(m->rctx, m->buf, (size_t)want, off);
    if (n < 2)
        return -1;
    if (m->buf[0] == '\r' && m->buf[1] == '\n') {
        *content = off + 2;  /* a part without header fields */
        return 0;
    }
    end = memmem(m->buf, (size_t)n, "\r\n\r\n", 4);
    if (end == NULL)
        return -1;
    *content = off + (uint64_t)(end - m->buf) + 4;
    for (line = m->buf; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        size_t len = eol ? (size_t)(eol - line) : (size_t)(end - line);
        if (len > 20 && strncasecmp(line, "Content-Disposition:", 20) == 0)
            avscan_disposition_filename(line + 20, len - 20, filename, fnlen);
        line += len + 2;
    }
    return 0;
}

int avscan_multipart_each(avscan_read_fn rd, void *rctx, uint64_t size,
                          const char *boundary, int max_parts,
                          avscan_part_fn fn, void *arg)
{
    mp_t m = {rd, rctx, size, NULL};
    char delim[80], filename[256];
    size_t dlen;
    int64_t pos;
    int rc = -1, parts = 0;

    dlen = strlen(boundary);
    if (dlen == 0 || dlen > 70)
        return -1;
    /* "\r\n--boundary": the CRLF belongs to the delimiter (RFC 2046). */
    delim[0] = '\r';
    delim[1] = '\n';
    delim[2] = delim[3] = '-';
    memcpy(delim + 4, boundary, dlen);
    dlen += 4;
    m.buf = malloc(WINDOW + dlen + HEAD_MAX);
    if (m.buf == NULL)
        return -1;
    /* The first delimiter may start the body, without its CRLF. */
    if (rd(rctx, m.buf, dlen - 2, 0) == (long)(dlen - 2) &&
        memcmp(m.buf, delim + 2, dlen - 2) == 0)
        pos = 0;
    else if ((pos = mp_find(&m, delim, dlen, 0)) >= 0)
        pos += 2;
    else
        goto fail;
    rc = 0;
    while (parts < max_parts) {
        uint64_t after = (uint64_t)pos + dlen - 2, content;
        int64_t eol, next;
        char two[2];

        /* "--boundary--" closes the body. */
        if (rd(rctx, two, 2, after) != 2 || (two[0] == '-' && two[1] == '-'))
            break;
        eol = mp_find(&m, "\r\n", 2, after);
        if (eol < 0 || mp_head(&m, (uint64_t)eol + 2, &content, filename,
                               sizeof(filename)) < 0)
            break;
        next = mp_find(&m, delim, dlen, content);
        parts++;
        rc = fn(arg, content, (next < 0 ? size : (uint64_t)next) - content,
                filename[0] ? filename : NULL);
        if (rc || next < 0)
            break;
        pos = next + 2;
    }
fail:
    free(m.buf);
    return rc;
}
