/* avscan_multipart_test.c - unit tests of plugins/avscan/avscan_multipart.c: the parts of multipart/form-data uploads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avscan.h"
#include "tap.h"

typedef struct mem {
    const char *p;
    size_t len;
} mem_t;

static long mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    mem_t *m = ctx;

    if (off >= m->len)
        return 0;
    if (len > m->len - off)
        len = (size_t)(m->len - off);
    memcpy(buf, m->p + off, len);
    return (long)len;
}

typedef struct seen {
    int n;
    char content[8][128];
    char name[8][64];
    int stop_at;
} seen_t;

static int on_part(void *arg, uint64_t off, uint64_t len, const char *filename)
{
    seen_t *s = arg;

    if (s->n < 8) {
        snprintf(s->content[s->n], sizeof(s->content[0]), "%llu+%llu",
                 (unsigned long long)off, (unsigned long long)len);
        snprintf(s->name[s->n], sizeof(s->name[0]), "%s", filename ? filename : "-");
    }
    s->n++;
    return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

/* Runs the walker over body; returns its result, fills s. */
static int walk(const char *body, const char *boundary, int max_parts, seen_t *s)
{
    mem_t m = {body, strlen(body)};

    memset(s->content, 0, sizeof(s->content));
    s->n = 0;
    return avscan_multipart_each(mem_read, &m, m.len, boundary, max_parts, on_part, s);
}

/* The content of part i as text. */
static const char *part(const char *body, const seen_t *s, int i)
{
    static char out[128];
    unsigned long long off, len;

    if (i >= s->n || sscanf(s->content[i], "%llu+%llu", &off, &len) != 2 || len >= sizeof(out))
        return NULL;
    memcpy(out, body + off, len);
    out[len] = '\0';
    return out;
}

int main(void)
{
    static const char form[] =
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"comment\"\r\n"
        "\r\n"
        "hello\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"eicar.com\"\r\n"
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "FILE\r\nBYTES--XyZ not a delimiter\r\n"
        "--XyZ--\r\n"
        "epilogue\r\n";
    static const char preamble[] =
        "This is a preamble\r\n"
        "--b\r\n"
        "\r\n"
        "no headers\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''a%20b.exe\r\n"
        "\r\n"
        "x\r\n"
        "--b--";
    static const char truncated[] =
        "--b\r\n"
        "Content-Disposition: form-data; name=\"f\"; filename=\"cut.bin\"\r\n"
        "\r\n"
        "the upload was cut";
    static const char empty_part[] =
        "--b\r\n"
        "Content-Disposition: form-data; name=\"e\"; filename=\"empty.txt\"\r\n"
        "\r\n"
        "\r\n"
        "--b--\r\n";
    seen_t s;
    int rc;

    memset(&s, 0, sizeof(s));
    rc = walk(form, "XyZ", 100, &s);
    is_int(rc, 0, "form: walked to the end");
    is_int(s.n, 2, "form: two parts");
    is_str(part(form, &s, 0), "hello", "form: a field's content, without the delimiter's CRLF");
    is_str(s.name[0], "-", "form: a field has no filename");
    is_str(part(form, &s, 1), "FILE\r\nBYTES--XyZ not a delimiter",
           "form: the file's content, binary-safe; a boundary not after CRLF is data");
    is_str(s.name[1], "eicar.com", "form: the file's name");

    rc = walk(preamble, "b", 100, &s);
    is_int(s.n, 2, "preamble: skipped; two parts");
    is_str(part(preamble, &s, 0), "no headers", "a part without header fields");
    is_str(s.name[1], "a b.exe", "filename* decoded");

    rc = walk(truncated, "b", 100, &s);
    is_int(s.n, 1, "truncated body: the part is still seen");
    is_str(part(truncated, &s, 0), "the upload was cut", "truncated: content runs to the end");

    rc = walk(empty_part, "b", 100, &s);
    is_int(s.n, 1, "empty file part seen");
    is_str(part(empty_part, &s, 0), "", "empty file part: no bytes");

    rc = walk(form, "other", 100, &s);
    is_int(rc, -1, "wrong boundary: not multipart");
    is_int(s.n, 0, "wrong boundary: no parts");

    rc = walk(form, "XyZ", 1, &s);
    is_int(s.n, 1, "max_parts bounds the walk");

    s.stop_at = 1;
    rc = walk(form, "XyZ", 100, &s);
    is_int(rc, 7, "the callback's non-zero stops the walk and is returned");
    is_int(s.n, 1, "stopped after the first part");
    s.stop_at = 0;

    /* A large body with the file far past the first window. */
    {
        size_t pad = 200 * 1024, n;
        char *big = malloc(pad + 512);
        n = (size_t)sprintf(big, "--q\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n");
        memset(big + n, 'a', pad);
        n += pad;
        n += (size_t)sprintf(big + n, "\r\n--q\r\nContent-Disposition: form-data; name=\"f\"; "
                             "filename=\"far.exe\"\r\n\r\nFAR\r\n--q--\r\n");
        rc = walk(big, "q", 100, &s);
        is_int(s.n, 2, "200 KiB field: both parts found across windows");
        is_str(s.name[1], "far.exe", "the far part's name");
        is_str(part(big, &s, 1), "FAR", "the far part's content");
        free(big);
    }
    return done_testing();
}
