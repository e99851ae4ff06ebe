/* avscan_decode.c - gzip and deflate content decoding (zlib) into memory or a temporary file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "avscan.h"

/*
 * A body sent with Content-Encoding gzip or deflate (RFC 9110 8.4.1) is
 * what the browser decodes and saves, so that is what gets scanned: the
 * decoder runs on a scan thread, before libclamav, and its output is
 * bounded (a small compressed body can expand a thousandfold).
 */

#define IN_CHUNK (64 * 1024)
#define OUT_CHUNK (256 * 1024)

void avscan_blob_init(avscan_blob_t *b, const char *tmpdir, size_t max_mem)
{
    memset(b, 0, sizeof(*b));
    b->fd = -1;
    b->tmpdir = tmpdir;
    b->max_mem = max_mem;
}

/* An unlinked file in dir: O_TMPFILE, or mkstemp and unlink where the file
 * system lacks it. Returns the descriptor or -1. */
static int tmpfile_open(const char *dir)
{
    char path[4096];
    int fd;

    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    if (snprintf(path, sizeof(path), "%s/portcullis-avscan-XXXXXX", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static int write_all(int fd, const void *p, size_t len, uint64_t off)
{
    const char *c = p;

    while (len > 0) {
        ssize_t n = pwrite(fd, c, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int avscan_blob_append(avscan_blob_t *b, const void *p, size_t len)
{
    if (len == 0)
        return 0;
    if (b->fd < 0 && b->len + len > b->max_mem) {
        /* Too big for memory: what we have goes to a file first. */
        b->fd = tmpfile_open(b->tmpdir ? b->tmpdir : "/tmp");
        if (b->fd < 0)
            return -1;
        if (write_all(b->fd, b->mem, b->len, 0) < 0)
            return -1;
        b->flen = b->len;
        free(b->mem);
        b->mem = NULL;
        b->len = b->cap = 0;
    }
    if (b->fd >= 0) {
        if (write_all(b->fd, p, len, b->flen) < 0)
            return -1;
        b->flen += len;
        return 0;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        char *n;
        while (cap < b->len + len)
            cap *= 2;
        n = realloc(b->mem, cap);
        if (n == NULL)
            return -1;
        b->mem = n;
        b->cap = cap;
    }
    memcpy(b->mem + b->len, p, len);
    b->len += len;
    return 0;
}

uint64_t avscan_blob_size(const avscan_blob_t *b)
{
    return b->fd >= 0 ? b->flen : b->len;
}

void avscan_blob_free(avscan_blob_t *b)
{
    free(b->mem);
    if (b->fd >= 0)
        close(b->fd);
    b->mem = NULL;
    b->fd = -1;
    b->len = b->cap = 0;
    b->flen = 0;
}

/* RFC 1950 2.2: a zlib stream starts with CMF FLG, CM = 8, and the pair
 * read as a 16-bit number is a multiple of 31. Servers that send "deflate"
 * as raw RFC 1951 data exist; browsers accept both, and so do we. */
static int looks_zlib(const unsigned char *p, size_t n)
{
    return n >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 &&
           ((p[0] << 8) | p[1]) % 31 == 0;
}

static void read_error(char *err, size_t errlen)
{
    snprintf(err, errlen, "cannot read the body: %s", strerror(errno));
}

/* Reads the next piece of input into z; sets *eof at the end. */
static int fill(z_stream *z, unsigned char *in, avscan_read_fn rd, void *rctx,
                uint64_t *off, int *eof)
{
    long n = rd(rctx, in, IN_CHUNK, *off);

    if (n < 0)
        return -1;
    if (n == 0)
        *eof = 1;
    *off += (uint64_t)n;
    z->next_in = in;
    z->avail_in = (uInt)n;
    return 0;
}

int avscan_decode(int coding, avscan_read_fn rd, void *rctx, avscan_blob_t *out,
                  uint64_t limit, const atomic_int *stop, char *err,
                  size_t errlen)
{
    const char *what = coding == AVSCAN_CODING_GZIP ? "gzip" : "deflate";
    unsigned char *in = malloc(IN_CHUNK), *obuf = malloc(OUT_CHUNK);
    z_stream z;
    uint64_t off = 0, total = 0;
    int inited = 0, rc = 0, eof = 0, out_full = 0, zr = Z_OK;

    memset(&z, 0, sizeof(z));
    if (in == NULL || obuf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (fill(&z, in, rd, rctx, &off, &eof) < 0) {
        read_error(err, errlen);
        goto fail;
    }
    if (inflateInit2(&z, coding == AVSCAN_CODING_GZIP ? 16 + MAX_WBITS
                         : looks_zlib(in, z.avail_in) ? MAX_WBITS : -MAX_WBITS) != Z_OK) {
        snprintf(err, errlen, "zlib: %s", z.msg ? z.msg : "cannot initialise");
        goto fail;
    }
    inited = 1;
    for (;;) {
        size_t got;

        if (stop && *stop) {
            snprintf(err, errlen, "stopped");
            goto fail;
        }
        if (zr == Z_STREAM_END) {
            /* Another gzip member may follow (RFC 1952 2.2); anything
             * else after the end is ignored, as browsers do. */
            if (coding != AVSCAN_CODING_GZIP)
                break;
            if (z.avail_in == 0 && !eof && fill(&z, in, rd, rctx, &off, &eof) < 0) {
                read_error(err, errlen);
                goto fail;
            }
            if (z.avail_in == 0 || z.next_in[0] != 0x1f)
                break;
            if (inflateReset(&z) != Z_OK) {
                snprintf(err, errlen, "zlib: cannot restart");
                goto fail;
            }
            zr = Z_OK;
        }
        if (z.avail_in == 0 && !eof && !out_full &&
            fill(&z, in, rd, rctx, &off, &eof) < 0) {
            read_error(err, errlen);
            goto fail;
        }
        z.next_out = obuf;
        z.avail_out = OUT_CHUNK;
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            snprintf(err, errlen, "invalid %s data: %s", what, z.msg ? z.msg : "corrupt");
            goto fail;
        }
        got = OUT_CHUNK - z.avail_out;
        if (limit && total + got > limit) {
            got = (size_t)(limit - total);
            rc = 1;  /* too large: keep what fits, stop */
        }
        if (avscan_blob_append(out, obuf, got) < 0) {
            snprintf(err, errlen, "cannot store the decoded body in %s: %s",
                     out->tmpdir ? out->tmpdir : "/tmp", strerror(errno));
            rc = -1;
            goto fail;
        }
        total += got;
        if (rc == 1)
            break;
        out_full = z.avail_out == 0;
        if (zr != Z_STREAM_END && got == 0) {
            /* No progress: either the input ended early or it is junk. */
            if (eof) {
                snprintf(err, errlen, "the %s body is truncated", what);
                goto fail;
            }
            if (z.avail_in != 0) {
                snprintf(err, errlen, "invalid %s data", what);
                goto fail;
            }
        }
    }
    inflateEnd(&z);
    free(in);
    free(obuf);
    return rc == 1 ? 1 : 0;
fail:
    if (inited)
        inflateEnd(&z);
    free(in);
    free(obuf);
    return -1;
}
