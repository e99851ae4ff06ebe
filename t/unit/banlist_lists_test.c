/* banlist_lists_test.c - unit tests for the banlist's list files, site/regex matchers and file types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banlist.h"
#include "tap.h"

static char tmpdir[] = "/tmp/banlist_lists_test.XXXXXX";

static const char *write_tmp(const char *name, const char *data, size_t len)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    if (f == NULL)
        return NULL;
    fwrite(data, 1, len, f);
    fclose(f);
    return path;
}

/* ---- lists.c ---------------------------------------------------------------- */

typedef struct collect {
    char got[16][128];
    long lines[16];
    int n;
    const char *refuse;   /* an entry the callback rejects */
} collect_t;

static int collect_entry(void *arg, char *text, long line, char *err, size_t errlen)
{
    collect_t *c = arg;

    if (c->refuse && strcmp(text, c->refuse) == 0) {
        snprintf(err, errlen, "refused '%s'", text);
        return -1;
    }
    if (c->n < 16) {
        snprintf(c->got[c->n], sizeof(c->got[0]), "%s", text);
        c->lines[c->n] = line;
        c->n++;
    }
    return 0;
}

static int warned;
static char last_warning[512];

static void warn_cb(void *arg, const char *msg)
{
    (void)arg;
    warned++;
    snprintf(last_warning, sizeof(last_warning), "%s", msg);
}

static void test_list_read(void)
{
    const char data[] = "\xef\xbb\xbf" "first\r\n"
                        "# a comment\n"
                        "\n"
                        "   second   # trailing comment\n"
                        "third#not-a-comment\n"
                        "\t\n"
                        "last";
    collect_t c = {0};
    char err[600];
    const char *p = write_tmp("l1", data, sizeof(data) - 1);
    long n = bl_list_read(p, BL_COMMENT_ANY, collect_entry, &c, 0, NULL, NULL, err,
                          sizeof(err));

    is_int(n, 4, "list: four entries (BOM, CRLF, comments, blank lines)");
    is_str(c.got[0], "first", "list: BOM and CR removed");
    is_str(c.got[1], "second", "list: space and trailing comment removed");
    is_str(c.got[2], "third#not-a-comment", "list: '#' inside a word is kept");
    is_str(c.got[3], "last", "list: last line without a newline");
    is_int(c.lines[3], 7, "list: line numbers count comments and blanks");

    memset(&c, 0, sizeof(c));
    n = bl_list_read(p, BL_COMMENT_LINE, collect_entry, &c, 0, NULL, NULL, err,
                     sizeof(err));
    is_str(c.got[1], "second   # trailing comment",
           "regex lists: only whole-line comments");

    memset(&c, 0, sizeof(c));
    c.refuse = "second";
    n = bl_list_read(p, BL_COMMENT_ANY, collect_entry, &c, 0, NULL, NULL, err,
                     sizeof(err));
    is_int(n, -1, "list: a bad entry fails the load");
    {
        char want[600];
        snprintf(want, sizeof(want), "%s:4: refused 'second'", p);
        is_str(err, want, "list: the error is FILE:LINE: message");
    }

    memset(&c, 0, sizeof(c));
    c.refuse = "second";
    warned = 0;
    n = bl_list_read(p, BL_COMMENT_ANY, collect_entry, &c, 1, warn_cb, NULL, err,
                     sizeof(err));
    is_int(n, 3, "list_errors skip: the other entries load");
    is_int(warned, 1, "list_errors skip: the bad line is reported");
    ok(strstr(last_warning, ":4: refused 'second' (line skipped)") != NULL,
       "list_errors skip: the report names the line");

    {
        const char nul[] = "a\nb\0c\n";
        memset(&c, 0, sizeof(c));
        p = write_tmp("l2", nul, sizeof(nul) - 1);
        n = bl_list_read(p, BL_COMMENT_ANY, collect_entry, &c, 0, NULL, NULL, err,
                         sizeof(err));
        is_int(n, -1, "list: a NUL byte is an error");
        ok(strstr(err, ":2: NUL byte") != NULL, "list: NUL byte reported at its line");
    }
    {
        size_t len = BL_LINE_MAX + 10;
        char *big = malloc(len + 1);
        memset(big, 'a', len);
        big[len] = '\n';
        memset(&c, 0, sizeof(c));
        p = write_tmp("l3", big, len + 1);
        n = bl_list_read(p, BL_COMMENT_ANY, collect_entry, &c, 0, NULL, NULL, err,
                         sizeof(err));
        is_int(n, -1, "list: an overlong line is an error");
        ok(strstr(err, ":1: line longer than") != NULL, "list: overlong line reported");
        free(big);
    }
    memset(&c, 0, sizeof(c));
    n = bl_list_read("/nonexistent/list", BL_COMMENT_ANY, collect_entry, &c, 0, NULL,
                     NULL, err, sizeof(err));
    is_int(n, -1, "list: a missing file is an error");
    is_str(err, "/nonexistent/list: cannot open: No such file or directory",
           "list: missing file message");
}

/* ---- strset.c --------------------------------------------------------------- */

static void test_strset(void)
{
    bl_strset_t *s = bl_strset_new();
    char buf[64];
    int all = 1;

    for (int i = 0; i < 100000; i++) {
        int n = snprintf(buf, sizeof(buf), "host%d.example", i);
        bl_strset_add(s, buf, (size_t)n);
    }
    bl_strset_add(s, "host5.example", 13);  /* a duplicate */
    ok(bl_strset_finish(s) == 0, "strset: 100,000 entries indexed");
    is_int(bl_strset_count(s), 100000, "strset: a duplicate is kept once");
    for (int i = 0; i < 100000; i += 7) {
        int n = snprintf(buf, sizeof(buf), "host%d.example", i);
        all &= bl_strset_find(s, buf, (size_t)n) != NULL;
    }
    ok(all, "strset: every entry is found");
    ok(bl_strset_find(s, "host100000.example", 18) == NULL, "strset: a miss");
    ok(bl_strset_find(s, "host1.exampl", 12) == NULL, "strset: a prefix is a miss");
    bl_strset_free(s);
    ok(bl_strset_find(NULL, "x", 1) == NULL, "strset: NULL set finds nothing");
}

/* ---- sites.c ---------------------------------------------------------------- */

static void test_sites(void)
{
    bl_sites_t *s = bl_sites_new();
    char err[256];
    static const char *good[] = {"bad.example", ".dot.example", "*.star.example",
                                 "UPPER.Example.", "bücher.example", "203.0.113.7",
                                 "198.51.100.0/24", "2001:db8::/32", "[2001:db9::1]"};
    static const struct {
        const char *entry, *msg;
    } bad[] = {
        {"http://x.example/", "is not a site"},
        {"x.example/path", "is not a site"},
        {"x.example:8080", "a site has no port"},
        {"a..b", "invalid site 'a..b': empty label"},
        {"10.0.0.0/33", "invalid prefix length"},
        {"bad host", "invalid site"},
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ok(bl_sites_add(s, good[i], err, sizeof(err)) == 0, "sites: '%s' accepted", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ok(bl_sites_add(s, bad[i].entry, err, sizeof(err)) < 0 &&
               strstr(err, bad[i].msg) != NULL,
           "sites: '%s' refused (%s)", bad[i].entry, err);
    }
    bl_sites_finish(s);
    is_str(bl_sites_match(s, "bad.example"), "bad.example", "sites: the domain itself");
    is_str(bl_sites_match(s, "a.b.bad.example"), "bad.example", "sites: a subdomain");
    ok(bl_sites_match(s, "notbad.example") == NULL, "sites: only at a label boundary");
    ok(bl_sites_match(s, "example") == NULL, "sites: not the parent");
    is_str(bl_sites_match(s, "www.dot.example"), "dot.example", "sites: '.' prefix");
    is_str(bl_sites_match(s, "star.example"), "star.example", "sites: '*.' prefix");
    is_str(bl_sites_match(s, "upper.example"), "upper.example", "sites: case and dot");
    is_str(bl_sites_match(s, "xn--bcher-kva.example"), "xn--bcher-kva.example",
           "sites: IDN entry as A-label");
    ok(bl_sites_match(s, "203.0.113.7") != NULL, "sites: an address");
    ok(bl_sites_match(s, "203.0.113.8") == NULL, "sites: another address");
    ok(bl_sites_match(s, "198.51.100.99") != NULL, "sites: an address in a CIDR");
    ok(bl_sites_match(s, "2001:db8::5") != NULL, "sites: IPv6 in a CIDR");
    ok(bl_sites_match(s, "2001:db9::1") != NULL, "sites: bracketed IPv6 entry");
    is_int(bl_sites_count(s), 9, "sites: count");
    bl_sites_free(s);
}

/* ---- regex.c ---------------------------------------------------------------- */

static void test_regex(void)
{
    bl_relist_t *l = bl_relist_new();
    const char *where = NULL;
    char err[512];
    const char *u1 = "http://x.example/download/setup.EXE";

    ok(bl_relist_add(l, "/download/.*\\.exe$", "urls:1", err, sizeof(err)) == 0,
       "regex: a pattern");
    ok(bl_relist_add(l, "^https?://[^/]*casino", "urls:2", err, sizeof(err)) == 0,
       "regex: another");
    ok(bl_relist_add(l, "(unclosed", "urls:3", err, sizeof(err)) < 0, "regex: bad pattern");
    ok(strstr(err, "invalid pattern '(unclosed'") && strstr(err, "at offset 9"),
       "regex: message with the offset (%s)", err);
    bl_relist_finish(l, err, sizeof(err));
    ok(bl_relist_match(l, u1, strlen(u1), &where) == 1, "regex: caseless match");
    is_str(where, "urls:1", "regex: the matching pattern is named");
    ok(bl_relist_match(l, "http://bestcasino.example/", 26, &where) == 1 &&
           strcmp(where, "urls:2") == 0,
       "regex: the second pattern");
    ok(bl_relist_match(l, "http://x.example/", 17, &where) == 0, "regex: no match");
    is_int(bl_relist_count(l), 2, "regex: count");
    bl_relist_free(l);

    /* Extended mode would swallow the alternation: matched one by one. */
    l = bl_relist_new();
    bl_relist_add(l, "(?x) evil  # a comment", "x:1", err, sizeof(err));
    bl_relist_add(l, "good(?-i)CASE", "x:2", err, sizeof(err));
    bl_relist_add(l, "(a)\\1", "x:3", err, sizeof(err));
    bl_relist_finish(l, err, sizeof(err));
    ok(bl_relist_match(l, "xxEVILxx", 8, &where) && strcmp(where, "x:1") == 0,
       "regex: (?x) pattern works");
    ok(bl_relist_match(l, "goodCASE", 8, &where) && strcmp(where, "x:2") == 0,
       "regex: a later pattern still matches");
    ok(!bl_relist_match(l, "goodcase", 8, &where), "regex: (?-i) is honoured");
    ok(bl_relist_match(l, "aa", 2, &where) && strcmp(where, "x:3") == 0,
       "regex: backreference pattern works");
    bl_relist_free(l);
}

/* ---- filetype.c ------------------------------------------------------------- */

static void test_filetype(void)
{
    bl_strset_t *ban = bl_strset_new(), *exc = bl_strset_new(), *mime = bl_strset_new();
    char out[256], n1[256], n2[256], err[256];
    static const char *const bans[] = {"exe", ".SCR", "*.js"};

    for (size_t i = 0; i < 3; i++) {
        bl_ext_normalise(bans[i], out, sizeof(out), err, sizeof(err));
        bl_strset_add(ban, out, strlen(out));
    }
    bl_ext_normalise("pdf", out, sizeof(out), err, sizeof(err));
    bl_strset_add(exc, out, strlen(out));
    bl_strset_add(ban, "pdf", 3);  /* banned and excepted: the exception wins */
    bl_strset_finish(ban);
    bl_strset_finish(exc);
    ok(bl_ext_normalise("a.b", out, sizeof(out), err, sizeof(err)) < 0,
       "ext: two extensions in one entry refused");
    ok(bl_ext_normalise(".", out, sizeof(out), err, sizeof(err)) < 0, "ext: empty refused");

    is_str(bl_ext_banned(ban, exc, "setup.exe"), "exe", "ext: .exe");
    is_str(bl_ext_banned(ban, exc, "SETUP.EXE"), "exe", "ext: any case");
    is_str(bl_ext_banned(ban, exc, "invoice.pdf.exe"), "exe", "ext: double extension");
    is_str(bl_ext_banned(ban, exc, "invoice.exe.pdf"), "exe",
           "ext: inner banned extension, outer excepted");
    is_str(bl_ext_banned(ban, exc, "evil.exe. . "), "exe", "ext: trailing dots and spaces");
    is_str(bl_ext_banned(ban, exc, "screen.scr"), "scr", "ext: entry written .SCR");
    is_str(bl_ext_banned(ban, exc, "app.min.js"), "js", "ext: entry written *.js");
    ok(bl_ext_banned(ban, exc, "report.pdf") == NULL, "ext: excepted extension passes");
    ok(bl_ext_banned(ban, exc, "exe") == NULL, "ext: a name without a dot");
    ok(bl_ext_banned(ban, exc, ".exe") == NULL, "ext: a hidden file is not an extension");
    ok(bl_ext_banned(ban, exc, "notes.txt") == NULL, "ext: other extension");
    bl_ext_last("archive.tar.GZ", out, sizeof(out));
    is_str(out, "gz", "ext: last extension");

    ok(bl_path_filename("/a/b/invoice.pdf%2Eexe?x=1.txt", out, sizeof(out)) == 0,
       "path: a file name");
    is_str(out, "invoice.pdf.exe", "path: escapes decoded, query dropped");
    bl_path_filename("/dl/setup.exe;jsessionid=1", out, sizeof(out));
    is_str(out, "setup.exe", "path: ;params dropped");
    bl_path_filename("/dl/../x/./y.exe", out, sizeof(out));
    is_str(out, "y.exe", "path: dot segments");
    ok(bl_path_filename("/dir/", out, sizeof(out)) < 0, "path: no file name");

    is_int(bl_disposition_filenames("attachment; filename=\"invoice.pdf.exe\"", 37, n1,
                                    n2, sizeof(n1)), 1, "disposition: one name");
    is_str(n1, "invoice.pdf.exe", "disposition: quoted");
    {
        const char *v = "attachment; filename=\"a.pdf\"; filename*=UTF-8''b%2Eexe";
        is_int(bl_disposition_filenames(v, strlen(v), n1, n2, sizeof(n1)), 2,
               "disposition: filename and filename*");
        is_str(n1, "b.exe", "disposition: filename* first, percent-decoded");
        is_str(n2, "a.pdf", "disposition: then filename");
    }
    {
        const char *v = "attachment; filename*=UTF-8''first.exe; filename=\"second.pdf\"";
        bl_disposition_filenames(v, strlen(v), n1, n2, sizeof(n1));
        ok(strcmp(n1, "first.exe") == 0 && strcmp(n2, "second.pdf") == 0,
           "disposition: filename* wins in either order");
    }
    {
        const char *v = "inline;filename=C:\\Users\\x\\evil.scr ; size=3";
        bl_disposition_filenames(v, strlen(v), n1, n2, sizeof(n1));
        is_str(n1, "evil.scr", "disposition: unquoted, Windows path removed");
    }
    {
        const char *v = "filename=\"no-type.exe\"";
        is_int(bl_disposition_filenames(v, strlen(v), n1, n2, sizeof(n1)), 1,
               "disposition: without a type");
        is_str(n1, "no-type.exe", "disposition: name without a type");
    }
    {
        const char *v = "attachment; name=\"x.exe\"; filename=\"a\\\"b.exe\"";
        bl_disposition_filenames(v, strlen(v), n1, n2, sizeof(n1));
        is_str(n1, "a\"b.exe", "disposition: other parameters skipped, escapes");
    }
    is_int(bl_disposition_filenames("attachment", 10, n1, n2, sizeof(n1)), 0,
           "disposition: no name");

    ok(bl_mime_normalise("Application/X-MSDownload", out, sizeof(out), err,
                         sizeof(err)) == 0 && strcmp(out, "application/x-msdownload") == 0,
       "mime: normalised");
    bl_strset_add(mime, out, strlen(out));
    bl_mime_normalise("video/*", out, sizeof(out), err, sizeof(err));
    bl_strset_add(mime, out, strlen(out));
    ok(bl_mime_normalise("text", out, sizeof(out), err, sizeof(err)) < 0,
       "mime: no subtype refused");
    ok(bl_mime_normalise("te*t/html", out, sizeof(out), err, sizeof(err)) < 0,
       "mime: '*' in the type refused");
    bl_strset_finish(mime);
    bl_mime_of(" Application/X-MSDownload ; charset=binary", 42, out, sizeof(out));
    is_str(out, "application/x-msdownload", "mime: parameters dropped");
    is_str(bl_mime_find(mime, out), "application/x-msdownload", "mime: found");
    is_str(bl_mime_find(mime, "video/mp4"), "video/*", "mime: wildcard");
    ok(bl_mime_find(mime, "text/html") == NULL, "mime: other type");
    ok(bl_mime_of("garbage", 7, out, sizeof(out)) < 0, "mime: not a type");

    bl_strset_free(ban);
    bl_strset_free(exc);
    bl_strset_free(mime);
}

int main(void)
{
    char cmd[600];

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_list_read();
    test_strset();
    test_sites();
    test_regex();
    test_filetype();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        diag("could not remove %s", tmpdir);
    return done_testing();
}
