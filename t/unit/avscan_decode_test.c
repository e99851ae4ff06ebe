/* avscan_decode_test.c - unit tests of plugins/avscan/avscan_decode.c: gzip and deflate bodies, limits, spilling to a file. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "avscan.h"
#include "tap.h"

typedef struct mem {
    const unsigned char *p;
    size_t len;
    size_t step;   /* largest read, to exercise refills */
} mem_t;

static long mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    mem_t *m = ctx;

    if (off >= m->len)
        return 0;
    if (len > m->len - off)
        len = (size_t)(m->len - off);
    if (m->step && len > m->step)
        len = m->step;
    memcpy(buf, m->p + off, len);
    return (long)len;
}

/* Compresses in into a malloc()ed buffer: windowBits as deflateInit2. */
static unsigned char *squeeze(const void *in, size_t len, int bits, size_t *outlen)
{
    z_stream z;
    size_t cap = compressBound((uLong)len) + 64;
    unsigned char *out = malloc(cap);

    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

/* The whole blob content (memory or file), malloc()ed. */
static char *blob_bytes(avscan_blob_t *b)
{
    uint64_t n = avscan_blob_size(b);
    char *out = malloc(n + 1);

    if (b->fd >= 0) {
        if (pread(b->fd, out, n, 0) != (ssize_t)n) {
            free(out);
            return NULL;
        }
    } else {
        memcpy(out, b->mem, n);
    }
    return out;
}

static int decode(int coding, const unsigned char *p, size_t len, size_t step,
                  uint64_t limit, avscan_blob_t *out, char *err)
{
    mem_t m = {p, len, step};

    avscan_blob_init(out, "/tmp", 1024 * 1024);
    return avscan_decode(coding, mem_read, &m, out, limit, NULL, err, 256);
}

int main(void)
{
    static const char text[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    size_t big_len = 3 * 1024 * 1024 + 17, zlen, zlen2;
    char *big = malloc(big_len), *got, err[256];
    unsigned char *z, *z2, *both;
    avscan_blob_t out;
    int rc;

    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)((i * 7) ^ (i >> 9));

    z = squeeze(text, sizeof(text) - 1, 16 + 15, &zlen);
    rc = decode(AVSCAN_CODING_GZIP, z, zlen, 0, 0, &out, err);
    is_int(rc, 0, "gzip: decoded");
    is_int(avscan_blob_size(&out), sizeof(text) - 1, "gzip: the original length");
    ok(out.mem && memcmp(out.mem, text, sizeof(text) - 1) == 0, "gzip: the original bytes");
    avscan_blob_free(&out);

    /* Two members back to back (RFC 1952 2.2), read 5 bytes at a time. */
    both = malloc(2 * zlen);
    memcpy(both, z, zlen);
    memcpy(both + zlen, z, zlen);
    rc = decode(AVSCAN_CODING_GZIP, both, 2 * zlen, 5, 0, &out, err);
    is_int(rc, 0, "gzip, two members, tiny reads: decoded");
    is_int(avscan_blob_size(&out), 2 * (sizeof(text) - 1), "gzip, two members: both decoded");
    avscan_blob_free(&out);

    /* Trailing junk after the end is ignored, as browsers do. */
    memcpy(both + zlen, "garbage!", 8);
    rc = decode(AVSCAN_CODING_GZIP, both, zlen + 8, 0, 0, &out, err);
    is_int(rc, 0, "gzip with trailing junk: decoded");
    is_int(avscan_blob_size(&out), sizeof(text) - 1, "gzip with trailing junk: the member only");
    avscan_blob_free(&out);
    free(both);

    rc = decode(AVSCAN_CODING_GZIP, z, zlen - 6, 0, 0, &out, err);
    is_int(rc, -1, "truncated gzip: an error");
    ok(strstr(err, "truncated") != NULL, "truncated gzip: says so (%s)", err);
    avscan_blob_free(&out);

    rc = decode(AVSCAN_CODING_GZIP, (const unsigned char *)"not gzip at all", 15, 0, 0, &out, err);
    is_int(rc, -1, "not gzip: an error");
    ok(strstr(err, "invalid gzip") != NULL, "not gzip: says so (%s)", err);
    avscan_blob_free(&out);
    free(z);

    /* deflate: zlib-wrapped (RFC 9110 8.4.1.2) and raw (what some
     * servers send). */
    z = squeeze(text, sizeof(text) - 1, 15, &zlen);
    rc = decode(AVSCAN_CODING_DEFLATE, z, zlen, 0, 0, &out, err);
    ok(rc == 0 && avscan_blob_size(&out) == sizeof(text) - 1 &&
       memcmp(out.mem, text, sizeof(text) - 1) == 0, "deflate (zlib format): decoded");
    avscan_blob_free(&out);
    free(z);
    z = squeeze(text, sizeof(text) - 1, -15, &zlen);
    rc = decode(AVSCAN_CODING_DEFLATE, z, zlen, 0, 0, &out, err);
    ok(rc == 0 && avscan_blob_size(&out) == sizeof(text) - 1 &&
       memcmp(out.mem, text, sizeof(text) - 1) == 0, "deflate (raw): decoded");
    avscan_blob_free(&out);
    free(z);

    /* Larger than memory allows: spilled to an unlinked file, intact. */
    z2 = squeeze(big, big_len, 16 + 15, &zlen2);
    rc = decode(AVSCAN_CODING_GZIP, z2, zlen2, 4096, 0, &out, err);
    is_int(rc, 0, "3 MiB gzip body: decoded");
    ok(out.fd >= 0, "3 MiB: went to a temporary file past the 1 MiB memory limit");
    is_int(avscan_blob_size(&out), big_len, "3 MiB: every byte");
    got = blob_bytes(&out);
    ok(got && memcmp(got, big, big_len) == 0, "3 MiB: the same bytes");
    free(got);
    avscan_blob_free(&out);

    /* A decompression bomb stops at the limit. */
    rc = decode(AVSCAN_CODING_GZIP, z2, zlen2, 0, 1024 * 1024, &out, err);
    is_int(rc, 1, "limit 1 MiB on a 3 MiB body: 'too large'");
    is_int(avscan_blob_size(&out), 1024 * 1024, "limit: exactly the limit kept");
    avscan_blob_free(&out);
    free(z2);

    /* The stop flag ends a decode early (an abandoned scan). */
    {
        atomic_int stop = 1;
        mem_t m = {(const unsigned char *)text, sizeof(text), 0};
        z = squeeze(text, sizeof(text) - 1, 16 + 15, &zlen);
        m.p = z;
        m.len = zlen;
        avscan_blob_init(&out, "/tmp", 1024);
        rc = avscan_decode(AVSCAN_CODING_GZIP, mem_read, &m, &out, 0, &stop, err, sizeof(err));
        is_int(rc, -1, "stop flag: decoding stops");
        avscan_blob_free(&out);
        free(z);
    }

    /* Blobs on their own. */
    avscan_blob_init(&out, "/nonexistent-dir", 4);
    ok(avscan_blob_append(&out, "abc", 3) == 0, "blob: small appends stay in memory");
    ok(avscan_blob_append(&out, "defgh", 5) < 0, "blob: spilling into a missing directory fails");
    avscan_blob_free(&out);

    free(big);
    return done_testing();
}
