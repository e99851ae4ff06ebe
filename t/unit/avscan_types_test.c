/* avscan_types_test.c - unit tests of plugins/avscan/avscan_types.c: MIME types, file names, codings. */
#include <string.h>

#include "avscan.h"
#include "tap.h"

static avscan_strlist_t list(const char *const *v)
{
    avscan_strlist_t l = {NULL, 0, 0};

    for (int i = 0; v[i]; i++)
        avscan_strlist_add(&l, v[i]);
    return l;
}

static const char *mime(const char *v)
{
    static char out[64];

    return avscan_mime_type(v, strlen(v), out, sizeof(out)) == 0 ? out : NULL;
}

static const char *disp(const char *v)
{
    static char out[64];

    return avscan_disposition_filename(v, strlen(v), out, sizeof(out)) == 0 ? out : NULL;
}

static const char *pathname(const char *v)
{
    static char out[64];

    return avscan_path_filename(v, out, sizeof(out)) == 0 ? out : NULL;
}

static const char *boundary(const char *v)
{
    static char out[80];

    return avscan_multipart_boundary(v, strlen(v), out, sizeof(out)) == 0 ? out : NULL;
}

static const char *accept_enc(const char *v, int *rc)
{
    static char out[128];

    *rc = avscan_accept_encoding(v, strlen(v), out, sizeof(out));
    return out;
}

int main(void)
{
    static const char *const skip[] = {"video/*", "text/event-stream", NULL};
    static const char *const exts[] = {"exe", ".zip", "JS", NULL};
    avscan_strlist_t skipl = list(skip), extl = list(exts);
    char buf[32];
    int rc;

    /* Content-Type */
    is_str(mime("Text/HTML; charset=utf-8"), "text/html", "MIME type lowercased, parameters dropped");
    is_str(mime("  application/zip"), "application/zip", "leading space skipped");
    is_str(mime("application/octet-stream;x=1"), "application/octet-stream", "no space before ';'");
    ok(mime("") == NULL, "empty Content-Type is no type");
    ok(mime("garbage") == NULL, "a type without '/' is no type");
    ok(avscan_mime_match(&skipl, "video/mp4"), "video/* matches video/mp4");
    ok(avscan_mime_match(&skipl, "VIDEO/webm"), "type patterns ignore case");
    ok(!avscan_mime_match(&skipl, "videos/mp4"), "video/* does not match videos/mp4");
    ok(avscan_mime_match(&skipl, "text/event-stream"), "exact type matches");
    ok(!avscan_mime_match(&skipl, "text/html"), "other types do not match");
    ok(!avscan_mime_match(&skipl, ""), "an empty type never matches");

    /* Content-Disposition (RFC 6266) */
    is_str(disp("attachment; filename=\"invoice.pdf.exe\""), "invoice.pdf.exe", "quoted filename");
    is_str(disp("attachment; filename=setup.exe"), "setup.exe", "token filename");
    is_str(disp("attachment; filename=\"a.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.exe"),
           "r\xc3\xa9sum\xc3\xa9.exe", "filename* wins and is percent-decoded");
    is_str(disp("attachment; FILENAME=\"x.zip\""), "x.zip", "parameter names ignore case");
    is_str(disp("attachment; filename=\"..\\\\..\\\\evil.exe\""), "evil.exe", "directories are dropped");
    is_str(disp("attachment; name=\"x\"; filename=\"C:\\\\Users\\\\a.js\""), "a.js", "Windows paths too");
    ok(disp("inline") == NULL, "no filename");
    ok(disp("attachment; filename=\"\"") == NULL, "an empty filename is none");

    /* URL paths */
    is_str(pathname("/dl/setup.exe?x=1"), "setup.exe", "last segment, query dropped");
    is_str(pathname("/dl/a%2Eexe"), "a.exe", "percent-escapes decoded");
    is_str(pathname("/dl/x.zip#frag"), "x.zip", "fragment dropped");
    ok(pathname("/dir/") == NULL, "a directory has no file name");
    is_str(pathname("/a/b%2Fc.exe"), "c.exe", "an escaped slash still separates");

    /* extensions */
    ok(avscan_ext_match(&extl, "SETUP.EXE"), "extensions ignore case");
    ok(avscan_ext_match(&extl, "a.zip"), "a list entry may start with a dot");
    ok(avscan_ext_match(&extl, "x.js"), "JS in the list matches .js");
    ok(avscan_ext_match(&extl, "invoice.pdf.exe"), "the last extension counts");
    ok(!avscan_ext_match(&extl, "exe"), "a name without a dot has no extension");
    ok(!avscan_ext_match(&extl, "a.exe."), "a trailing dot is no extension");
    ok(!avscan_ext_match(&extl, NULL), "no name, no match");

    /* multipart boundaries */
    is_str(boundary("multipart/form-data; boundary=----WebKitFormBoundaryX"),
           "----WebKitFormBoundaryX", "token boundary");
    is_str(boundary("multipart/form-data; boundary=\"a b\""), "a b", "quoted boundary");
    is_str(boundary("Multipart/Form-Data;charset=x;BOUNDARY=zz"), "zz", "names ignore case");
    ok(boundary("multipart/mixed; boundary=zz") == NULL, "only form-data uploads are split");
    ok(boundary("multipart/form-data") == NULL, "no boundary");
    ok(boundary("multipart/form-data; boundary=01234567890123456789012345678901234567890"
                "123456789012345678901234567890X") == NULL, "boundary over 70 characters");

    /* Content-Encoding */
    is_int(avscan_content_coding("gzip", 4), AVSCAN_CODING_GZIP, "gzip");
    is_int(avscan_content_coding("X-GZIP", 6), AVSCAN_CODING_GZIP, "x-gzip");
    is_int(avscan_content_coding("deflate", 7), AVSCAN_CODING_DEFLATE, "deflate");
    is_int(avscan_content_coding("identity", 8), AVSCAN_CODING_NONE, "identity");
    is_int(avscan_content_coding(" gzip , identity", 16), AVSCAN_CODING_GZIP, "identity ignored in a list");
    is_int(avscan_content_coding("br", 2), AVSCAN_CODING_UNKNOWN, "br is not decoded");
    is_int(avscan_content_coding("gzip, gzip", 10), AVSCAN_CODING_UNKNOWN, "layered codings are not unwrapped");
    is_int(avscan_content_coding(NULL, 0), AVSCAN_CODING_NONE, "no header: no coding");

    /* Accept-Encoding */
    is_str(accept_enc("gzip, deflate, br, zstd", &rc), "gzip, deflate", "br and zstd removed");
    is_int(rc, 1, "changed");
    accept_enc("gzip, deflate", &rc);
    is_int(rc, 0, "nothing to change");
    is_str(accept_enc("br", &rc), "identity", "nothing decodable left: identity");
    is_str(accept_enc("gzip;q=1.0, br;q=0.9, *;q=0.1", &rc), "gzip;q=1.0",
           "q-values kept; '*' removed too (it would admit br)");

    avscan_format_size(100ull << 20, buf, sizeof(buf));
    is_str(buf, "100M", "sizes in messages: 100M");
    avscan_format_size(1000, buf, sizeof(buf));
    is_str(buf, "1000 bytes", "sizes in messages: bytes");

    avscan_strlist_clear(&skipl);
    avscan_strlist_clear(&extl);
    return done_testing();
}
