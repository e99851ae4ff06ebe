/* conf_parse_test.c - unit tests for core/conf_parse.c: tokens, quotes, blocks, includes, errors. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"

static char dir[PATH_MAX];  /* the test's temp directory */

/* ---- helpers ------------------------------------------------------------- */

static const char *P(const char *rel)
{
    static char bufs[4][PATH_MAX * 2];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, PATH_MAX * 2, "%s/%s", dir, rel);
    return b;
}

static void mkdirs(const char *rel)
{
    if (mkdir(P(rel), 0700) < 0 && errno != EEXIST)
        diag("mkdir %s: %s", rel, strerror(errno));
}

static void writef_len(const char *rel, const char *text, size_t len)
{
    FILE *f = fopen(P(rel), "wb");
    if (f == NULL || fwrite(text, 1, len, f) != len) {
        diag("cannot write %s", rel);
        exit(1);
    }
    fclose(f);
}

static void writef(const char *rel, const char *text)
{
    writef_len(rel, text, strlen(text));
}

/* Appends a compact form of the nodes from n on: name|arg|arg@line{...};
 * with the file shown as [file] when it differs from main. */
static void dump_nodes(const conf_node_t *n, const char *main_file, char *out, size_t len)
{
    for (; n != NULL; n = n->next) {
        int k;
        strncat(out, n->name, len - strlen(out) - 1);
        for (k = 0; k < n->argc; k++) {
            strncat(out, "|", len - strlen(out) - 1);
            strncat(out, n->argv[k], len - strlen(out) - 1);
        }
        if (n->argv[n->argc] != NULL)
            strncat(out, "<argv not NULL-terminated>", len - strlen(out) - 1);
        snprintf(out + strlen(out), len - strlen(out), "@%d", n->line);
        if (main_file != NULL && strcmp(n->file, main_file) != 0) {
            const char *f = n->file;
            if (strncmp(f, dir, strlen(dir)) == 0)
                f += strlen(dir) + 1;
            snprintf(out + strlen(out), len - strlen(out), "[%s]", f);
        }
        if (n->has_block) {
            strncat(out, "{", len - strlen(out) - 1);
            dump_nodes(n->child, main_file, out, len);
            strncat(out, "}", len - strlen(out) - 1);
        } else if (n->child != NULL) {
            strncat(out, "<child without block>", len - strlen(out) - 1);
        }
        strncat(out, ";", len - strlen(out) - 1);
    }
}

static char dumpbuf[8192];

static const char *dump(conf_tree_t *t)
{
    conf_node_t *root = conf_tree_root(t);
    dumpbuf[0] = '\0';
    dump_nodes(root->child, root->file, dumpbuf, sizeof(dumpbuf));
    return dumpbuf;
}

/* Parses text from memory as "DIR/mem.conf" and compares the dump. */
static void parse_is(const char *text, size_t len, const char *want, const char *name)
{
    char err[512] = "";
    conf_tree_t *t = conf_tree_parse(P("mem.conf"), text, len, err, sizeof(err));

    if (!ok(t != NULL, "%s: parses", name)) {
        diag("  %s", err);
        return;
    }
    is_str(dump(t), want, "%s: tree", name);
    conf_tree_free(t);
}

#define PARSE_IS(text, want, name) parse_is(text, sizeof(text) - 1, want, name)

/* Parses text and expects the error "DIR/mem.conf:" + want. */
static void parse_err_len(const char *text, size_t len, const char *want, const char *name)
{
    char err[512] = "", exp[PATH_MAX + 512];
    conf_tree_t *t = conf_tree_parse(P("mem.conf"), text, len, err, sizeof(err));

    snprintf(exp, sizeof(exp), "%s:%s", P("mem.conf"), want);
    ok(t == NULL, "%s: refused", name);
    is_str(err, exp, "%s: message", name);
    conf_tree_free(t);
}

#define PARSE_ERR(text, want, name) parse_err_len(text, sizeof(text) - 1, want, name)

/* Loads DIR/rel and expects the error want with "@" replaced by DIR. */
static void load_err(const char *rel, const char *want, const char *name)
{
    char err[1024] = "", exp[4 * PATH_MAX], *o = exp;
    const char *w;
    conf_tree_t *t = conf_tree_load(P(rel), err, sizeof(err));

    for (w = want; *w != '\0' && o + strlen(dir) + 2 < exp + sizeof(exp); w++) {
        if (*w == '@') {
            strcpy(o, dir);
            o += strlen(dir);
        } else {
            *o++ = *w;
        }
    }
    *o = '\0';
    ok(t == NULL, "%s: refused", name);
    is_str(err, exp, "%s: message", name);
    conf_tree_free(t);
}

static conf_tree_t *load_ok(const char *path, const char *name)
{
    char err[1024] = "";
    conf_tree_t *t = conf_tree_load(path, err, sizeof(err));
    if (!ok(t != NULL, "%s: loads", name))
        diag("  %s", err);
    return t;
}

/* ---- tokens -------------------------------------------------------------- */

static void test_basic(void)
{
    char err[64];
    conf_tree_t *t;
    conf_node_t *root;

    PARSE_IS("listen 127.0.0.1:3128\nallow_clients 10.0.0.0/8 192.168.0.0/16\n",
             "listen|127.0.0.1:3128@1;allow_clients|10.0.0.0/8|192.168.0.0/16@2;",
             "two directives");
    PARSE_IS("\n\n  a\t b  \n\n\tc\n", "a|b@3;c@5;", "blank lines, tabs, indent");
    PARSE_IS("a b", "a|b@1;", "no newline at the end");
    PARSE_IS("", "", "empty text");
    PARSE_IS("# only\n   # comments\n", "", "only comments");

    t = conf_tree_parse("x.conf", "a 1\n", 4, err, sizeof(err));
    root = t ? conf_tree_root(t) : NULL;
    ok(root != NULL && strcmp(root->name, "") == 0 && root->argc == 0 &&
           root->argv[0] == NULL && root->has_block == 1 && root->line == 0 &&
           strcmp(root->file, "x.conf") == 0 && root->next == NULL,
       "root is a synthetic block node named ''");
    ok(root != NULL && root->child != NULL && strcmp(root->child->file, "x.conf") == 0 &&
           root->child->argc == 1 && strcmp(root->child->argv[0], "1") == 0,
       "node file and argv");
    conf_tree_free(t);
    conf_tree_free(NULL);
    ok(1, "conf_tree_free(NULL) is a no-op");
}

static void test_comments(void)
{
    PARSE_IS("# c\na b # comment\nc d#e\n  # indented\nf http://x/#top\n",
             "a|b@2;c|d#e@3;f|http://x/#top@5;", "'#' starts a comment only at a token start");
    PARSE_IS("a #c { \" '\nb\n", "a@1;b@2;", "a comment hides braces and quotes");
    PARSE_IS("a # c \\\nb\n", "a@1;b@2;", "a '\\' does not continue a comment");
    PARSE_IS("a{#c\n}\n", "a@1{};", "a comment right after '{'");
    PARSE_IS("a \"b\"#c\n", "a|b@1;", "a comment right after a quote");
}

static void test_quotes(void)
{
    PARSE_IS("a \"b c\" 'd e' \"\" ''\n", "a|b c|d e||@1;", "double, single and empty quotes");
    PARSE_IS("a \"x\\\"y\" \"p\\\\q\" \"re\\.x\" \"\\d+\"\n", "a|x\"y|p\\q|re\\.x|\\d+@1;",
             "escapes \\\" \\\\ and kept unknown escapes");
    PARSE_IS("a \"n\\nl\" \"t\\tt\"\n", "a|n\nl|t\tt@1;", "escapes \\n \\t");
    PARSE_IS("a 'x\\\"y' 'q\\'\n", "a|x\\\"y|q\\@1;", "single quotes are literal");
    PARSE_IS("a it's b\"c d'\n", "a|it's|b\"c|d'@1;", "quotes inside a word are literal");
    PARSE_IS("a \"#not\" '#no'\n", "a|#not|#no@1;", "quoted '#'");
    PARSE_IS("a \"{\" '}'\n", "a|{|}@1;", "quoted braces are arguments");
    PARSE_IS("\"quoted name\" x\n", "quoted name|x@1;", "quoted directive name");
    PARSE_IS("a \"b\"{\n}\n", "a|b@1{};", "'{' right after a quote");
    PARSE_IS("a \"caf\xc3\xa9\" \xe2\x82\xac \xff\xfe\n", "a|caf\xc3\xa9|\xe2\x82\xac|\xff\xfe@1;",
             "bytes >= 0x80 anywhere");
    PARSE_IS("a \"x\ty\"\n", "a|x\ty@1;", "a tab inside quotes");

    PARSE_ERR("a \"b\n", "1: unterminated quote", "double quote at line end");
    PARSE_ERR("x\na 'b\nc'\n", "2: unterminated quote", "single quote at line end");
    PARSE_ERR("a \"b", "1: unterminated quote", "quote at end of text");
    PARSE_ERR("a \"b\\", "1: unterminated quote", "backslash at end inside quotes");
    PARSE_ERR("a 'b\\\nc'\n", "1: unterminated quote", "no continuation in single quotes");
    PARSE_ERR("a \"b\"c\n", "1: unexpected 'c' after closing quote", "word glued to a quote");
    PARSE_ERR("a 'b''c'\n", "1: unexpected ''' after closing quote", "two quotes glued");
    PARSE_ERR("a\n\"b\"\xc3\xa9\n", "2: unexpected byte 0xc3 after closing quote",
              "non-ASCII after a quote");
    PARSE_ERR("\"\" x\n", "1: empty directive name", "empty name");
}

static void test_continuation(void)
{
    PARSE_IS("a b \\\n  c\nd\n", "a|b|c@1;d@3;", "continuation between words");
    PARSE_IS("a fo\\\no\n", "a|foo@1;", "continuation inside a word joins it");
    PARSE_IS("a \"x\\\ny\"\n", "a|xy@1;", "continuation inside double quotes");
    PARSE_IS("a \\\nb\nc\n", "a|b@1;c@3;", "lines after a continuation are counted");
    PARSE_IS("a \\\n\\\nb\n", "a|b@1;", "two continuations");
    PARSE_IS("a b\\", "a|b@1;", "backslash at the end of the text");
    PARSE_IS("a b\\c\n", "a|b\\c@1;", "backslash inside a word is literal");
    PARSE_IS("a b\r\nc d\r\n", "a|b@1;c|d@2;", "CRLF line ends");
    PARSE_IS("a \\\r\nb\r\n", "a|b@1;", "continuation before CRLF");
    PARSE_IS("a \\\n# c\nb\n", "a@1;b@3;", "a comment line after a continuation ends it");
}

static void test_blocks(void)
{
    char deep[256] = "", deeper[256] = "";
    int k;

    PARSE_IS("plugin urlcat {\n lists /x\n block a b\n}\nnext 1\n",
             "plugin|urlcat@1{lists|/x@2;block|a|b@3;};next|1@5;", "a block");
    PARSE_IS("p x { a 1 }\n", "p|x@1{a|1@1;};", "a block on one line");
    PARSE_IS("p {}\nq {\n}\n", "p@1{};q@2{};", "empty blocks");
    PARSE_IS("a { b } c d\n", "a@1{b@1;};c|d@1;", "a directive after '}'");
    PARSE_IS("a { b { c { } } }\n", "a@1{b@1{c@1{};};};", "nested blocks");
    PARSE_IS("a x{b}\n", "a|x@1{b@1;};", "braces end words");
    PARSE_IS("a {\n b \\\n   c\n}\n", "a@1{b|c@2;};", "continuation inside a block");

    for (k = 0; k < 8; k++)
        strcat(deep, "a {\n");
    for (k = 0; k < 8; k++)
        strcat(deep, "}\n");
    parse_is(deep, strlen(deep), "a@1{a@2{a@3{a@4{a@5{a@6{a@7{a@8{};};};};};};};};",
             "8 nested blocks");
    for (k = 0; k < 9; k++)
        strcat(deeper, "a {\n");
    for (k = 0; k < 9; k++)
        strcat(deeper, "}\n");
    parse_err_len(deeper, strlen(deeper), "9: blocks nested too deeply (max 8)",
                  "9 nested blocks");

    PARSE_ERR("a 1\nb 2\n}\n", "3: '}' without matching '{'", "'}' without '{'");
    PARSE_ERR("a {\n}\n}\n", "3: '}' without matching '{'", "one '}' too many");
    PARSE_ERR("a {\n b 1\n", "1: '{' without matching '}'", "missing '}' at EOF");
    PARSE_ERR("x\na {\n b {\n c\n}\n", "2: '{' without matching '}'",
              "missing outer '}' reports the outer '{'");
    PARSE_ERR("a {\n b {\n c\n", "2: '{' without matching '}'",
              "two missing '}' report the inner '{'");
    PARSE_ERR("{\n}\n", "1: '{' without a directive name", "'{' alone");
    PARSE_ERR("a\n{\n}\n", "2: '{' without a directive name", "'{' on its own line");
    PARSE_ERR("a { { } }\n", "1: '{' without a directive name", "'{' after '{'");
}

static void test_bytes(void)
{
    static char longline[65536 + 64];

    PARSE_ERR("a b\nc\0d\n", "2: NUL byte", "NUL byte");
    PARSE_ERR("# c\0\n", "1: NUL byte", "NUL byte in a comment");
    PARSE_ERR("a \"\0\"\n", "1: NUL byte", "NUL byte in quotes");
    PARSE_ERR("a\nb\n\x01\n", "3: control character 0x01", "control character");
    PARSE_ERR("a \"\x1b[0m\"\n", "1: control character 0x1b", "escape character in quotes");
    PARSE_ERR("a \x7f\n", "1: control character 0x7f", "DEL");
    PARSE_ERR("a\rb\n", "1: control character 0x0d", "lone CR");
    PARSE_ERR("a\r", "1: control character 0x0d", "CR at the end");
    PARSE_ERR("a \"b\r\n", "1: unterminated quote", "CRLF inside quotes");

    memset(longline, 'x', 65536);
    longline[0] = '#';
    longline[65536] = '\n';
    parse_is(longline, 65537, "", "a line of 65536 bytes is fine");
    longline[0] = 'a';
    longline[1] = ' ';
    {
        char err[512];
        conf_tree_t *t = conf_tree_parse("m", longline, 65537, err, sizeof(err));
        ok(t != NULL && conf_tree_root(t)->child != NULL &&
               strlen(conf_tree_root(t)->child->argv[0]) == 65534,
           "a 65534-byte argument");
        conf_tree_free(t);
    }
    memset(longline, 'x', 65537);
    longline[65537] = '\n';
    parse_err_len(longline, 65538, "1: line too long (more than 65536 bytes)",
                  "a line of 65537 bytes");
    parse_err_len(longline, 65537, "1: line too long (more than 65536 bytes)",
                  "a last line of 65537 bytes without newline");
    memcpy(longline, "a\nb\n", 4);
    memset(longline + 4, 'x', 65537);
    longline[4 + 65537] = '\n';
    parse_err_len(longline, 4 + 65538, "3: line too long (more than 65536 bytes)",
                  "a long third line");
    memset(longline, 'x', 65536);
    longline[0] = '#';
    memcpy(longline + 65536, "\r\n", 2);
    parse_is(longline, 65538, "", "the CR of CRLF does not count against the limit");
}

/* ---- includes ------------------------------------------------------------ */

static void test_includes(void)
{
    char err[1024];
    conf_tree_t *t;
    char chain[64], body[128];
    int k;

    mkdirs("inc");
    writef("inc/main.conf", "a 1\ninclude sub.conf\nb 2\n");
    writef("inc/sub.conf", "s 1\n  s2 x\n");
    t = load_ok(P("inc/main.conf"), "relative include");
    if (t != NULL) {
        conf_node_t *root = conf_tree_root(t);
        is_str(dump(t), "a|1@1;s|1@1[inc/sub.conf];s2|x@2[inc/sub.conf];b|2@3;",
               "include is spliced in place");
        is_str(root->file, P("inc/main.conf"), "root file is the main path");
        is_str(root->child->next->file, P("inc/sub.conf"), "included file is dirname/path");
    }
    conf_tree_free(t);

    /* Relative to the including file, not to the working directory, and
     * nested includes are relative to their own file. */
    mkdirs("inc/sub");
    writef("inc/n1.conf", "include sub/n2.conf\n");
    writef("inc/sub/n2.conf", "n2 1\ninclude n3.conf\n");
    writef("inc/sub/n3.conf", "n3 1\n");
    if (chdir("/") < 0)
        diag("chdir: %s", strerror(errno));
    t = load_ok(P("inc/n1.conf"), "nested relative includes");
    if (t != NULL)
        is_str(dump(t), "n2|1@1[inc/sub/n2.conf];n3|1@1[inc/sub/n3.conf];",
               "nested include resolves against its own directory");
    conf_tree_free(t);

    /* A relative main path keeps relative names. */
    if (chdir(P("inc")) < 0)
        diag("chdir: %s", strerror(errno));
    t = load_ok("n1.conf", "relative main path");
    if (t != NULL) {
        conf_node_t *root = conf_tree_root(t);
        is_str(root->child->file, "sub/n2.conf", "relative main: include named sub/n2.conf");
        is_str(root->child->next->file, "sub/n3.conf", "relative main: nested sub/n3.conf");
    }
    conf_tree_free(t);
    if (chdir("/") < 0)
        diag("chdir: %s", strerror(errno));

    /* Absolute include. */
    snprintf(body, sizeof(body), "include %s\n", P("inc/sub.conf"));
    writef("inc/abs.conf", body);
    t = load_ok(P("inc/abs.conf"), "absolute include");
    if (t != NULL)
        is_str(dump(t), "s|1@1[inc/sub.conf];s2|x@2[inc/sub.conf];", "absolute include tree");
    conf_tree_free(t);

    /* Inside a block the included directives are children of the block. */
    writef("inc/blk.conf", "p x {\n include inner.conf\n q 1\n}\nz\n");
    writef("inc/inner.conf", "c 1\nd {\n e\n}\n");
    t = load_ok(P("inc/blk.conf"), "include inside a block");
    if (t != NULL)
        is_str(dump(t), "p|x@1{c|1@1[inc/inner.conf];d@2[inc/inner.conf]{e@3[inc/inner.conf];};q|1@3;};z@5;",
               "included directives become children");
    conf_tree_free(t);

    /* Glob: sorted, only matches, nothing is fine. */
    mkdirs("inc/conf.d");
    writef("inc/conf.d/20-b.conf", "b 20\n");
    writef("inc/conf.d/10-a.conf", "a 10\n");
    writef("inc/conf.d/x.txt", "txt 1\n");
    writef("inc/conf.d/.hidden.conf", "hidden 1\n");
    writef("inc/glob.conf", "include conf.d/*.conf\ninclude conf.d/*.none\n"
                            "include nodir/*.conf\ninclude conf.d/[0-9]*-a.conf\n");
    t = load_ok(P("inc/glob.conf"), "glob include");
    if (t != NULL)
        is_str(dump(t), "a|10@1[inc/conf.d/10-a.conf];b|20@1[inc/conf.d/20-b.conf];"
                        "a|10@1[inc/conf.d/10-a.conf];",
               "glob matches sorted, skips dot files, empty globs are fine");
    conf_tree_free(t);

    /* The directory of the including file may hold glob characters. */
    mkdirs("we[i]*rd");
    mkdirs("we[i]*rd/d");
    writef("we[i]*rd/d/1.conf", "one 1\n");
    writef("we[i]*rd/main.conf", "include d/*.conf\n");
    t = load_ok(P("we[i]*rd/main.conf"), "glob under a directory named with [ and *");
    if (t != NULL)
        is_str(dump(t), "one|1@1[we[i]*rd/d/1.conf];", "directory part is escaped for glob");
    conf_tree_free(t);

    /* Errors. */
    writef("inc/missing.conf", "a\ninclude nothere.conf\n");
    load_err("inc/missing.conf",
             "@/inc/missing.conf:2: include: cannot open '@/inc/nothere.conf': No such file or directory",
             "missing include");
    writef("inc/isdir.conf", "include sub\n");
    load_err("inc/isdir.conf", "@/inc/isdir.conf:1: include: '@/inc/sub' is not a regular file",
             "include of a directory");
    writef("inc/noarg.conf", "include\n");
    load_err("inc/noarg.conf", "@/inc/noarg.conf:1: 'include' takes 1 argument", "include alone");
    writef("inc/twoarg.conf", "\ninclude a b\n");
    load_err("inc/twoarg.conf", "@/inc/twoarg.conf:2: 'include' takes 1 argument",
             "include with two arguments");
    writef("inc/blockinc.conf", "include sub.conf {\n}\n");
    load_err("inc/blockinc.conf", "@/inc/blockinc.conf:1: 'include' takes no block",
             "include with a block");

    writef("inc/bad.conf", "ok 1\n\nbroken \"x\n");
    writef("inc/incbad.conf", "include bad.conf\n");
    load_err("inc/incbad.conf", "@/inc/bad.conf:3: unterminated quote",
             "an error in an included file names that file");
    writef("inc/close.conf", "}\n");
    writef("inc/inclose.conf", "p {\n include close.conf\n}\n");
    load_err("inc/inclose.conf", "@/inc/close.conf:1: '}' without matching '{'",
             "an included file cannot close the includer's block");
    writef("inc/open.conf", "x\np {\n");
    writef("inc/inopen.conf", "include open.conf\n}\n");
    load_err("inc/inopen.conf", "@/inc/open.conf:2: '{' without matching '}'",
             "an included file must close its blocks");

    /* Block depth counts across files. */
    writef("inc/deep.conf", "a {\na {\na {\na {\na {\na {\na {\na {\ninclude d9.conf\n}\n}\n}\n}\n}\n}\n}\n}\n");
    writef("inc/d9.conf", "ok\nnine {\n}\n");
    load_err("inc/deep.conf", "@/inc/d9.conf:2: blocks nested too deeply (max 8)",
             "block depth counts the includer's blocks");

    /* Cycles. */
    writef("inc/self.conf", "a\ninclude self.conf\n");
    load_err("inc/self.conf",
             "@/inc/self.conf:2: include: cycle: '@/inc/self.conf' is already being read",
             "a file including itself");
    writef("inc/c1.conf", "include c2.conf\n");
    writef("inc/c2.conf", "x\ninclude c3.conf\n");
    writef("inc/c3.conf", "include c1.conf\n");
    load_err("inc/c1.conf", "@/inc/c3.conf:1: include: cycle: '@/inc/c1.conf' is already being read",
             "a cycle through three files");
    writef("inc/gcycle.conf", "include g*.conf\n");
    load_err("inc/gcycle.conf",
             "@/inc/gcycle.conf:1: include: cycle: '@/inc/gcycle.conf' is already being read",
             "a glob that matches its includer");
    if (symlink(P("inc/link.conf"), P("inc/link2.conf")) == 0) {
        writef("inc/link.conf", "include link2.conf\n");
        load_err("inc/link.conf",
                 "@/inc/link.conf:1: include: cycle: '@/inc/link2.conf' is already being read",
                 "a cycle through a symlink");
    }

    /* The same file twice, not nested, is fine. */
    writef("inc/twice.conf", "include sub.conf\np {\n include sub.conf\n}\n");
    t = load_ok(P("inc/twice.conf"), "same file included twice");
    conf_tree_free(t);

    /* Depth: a chain of 16 includes loads, 17 does not. */
    mkdirs("chain");
    for (k = 0; k <= 17; k++) {
        snprintf(chain, sizeof(chain), "chain/f%d.conf", k);
        snprintf(body, sizeof(body), "level %d\ninclude f%d.conf\n", k, k + 1);
        writef(chain, k < 17 ? body : "last 17\n");
    }
    snprintf(body, sizeof(body), "level 1\ninclude f2.conf\n");
    t = load_ok(P("chain/f1.conf"), "16 nested includes");
    if (t != NULL) {
        conf_node_t *n = conf_tree_root(t)->child;
        for (k = 0; n != NULL; n = n->next)
            k++;
        is_int(k, 17, "16 nested includes: all 17 files read");
    }
    conf_tree_free(t);
    load_err("chain/f0.conf", "@/chain/f16.conf:2: include: nested too deeply (max 16)",
             "17 nested includes");

    /* Main file errors. */
    load_err("nope.conf", "@/nope.conf: cannot open: No such file or directory",
             "missing main file");
    load_err("inc", "@/inc: not a regular file", "main file is a directory");

    /* An in-memory parse resolves includes against its name. */
    t = conf_tree_parse(P("inc/virtual.conf"), "include sub.conf\n", 17, err, sizeof(err));
    ok(t != NULL, "in-memory include resolves against the name");
    if (t != NULL)
        is_str(dump(t), "s|1@1[inc/sub.conf];s2|x@2[inc/sub.conf];", "in-memory include tree");
    conf_tree_free(t);

    /* Unreadable directories stop a glob (only when not root: root reads all). */
    if (geteuid() != 0) {
        mkdirs("inc/locked");
        writef("inc/locked/x.conf", "x\n");
        writef("inc/lockglob.conf", "include locked/*.conf\n");
        chmod(P("inc/locked"), 0);
        load_err("inc/lockglob.conf", "@/inc/lockglob.conf:1: include: cannot read '@/inc/locked/*.conf'",
                 "glob in an unreadable directory");
        chmod(P("inc/locked"), 0700);
    }

    /* Binary junk in an included file. */
    writef_len("inc/nul.conf", "a\nb\0\n", 5);
    writef("inc/innul.conf", "include nul.conf\n");
    load_err("inc/innul.conf", "@/inc/nul.conf:2: NUL byte", "NUL byte in an included file");
}

static void test_path_resolve(void)
{
    conf_node_t n;
    char *p;

    memset(&n, 0, sizeof(n));
    n.file = "/etc/portcullis/portcullis.conf";
    p = conf_path_resolve(&n, "lists/x");
    is_str(p, "/etc/portcullis/lists/x", "relative arg resolves against the file's directory");
    free(p);
    p = conf_path_resolve(&n, "/var/log/a.log");
    is_str(p, "/var/log/a.log", "absolute arg stays");
    free(p);
    n.file = "portcullis.conf";
    p = conf_path_resolve(&n, "x.html");
    is_str(p, "x.html", "file without a directory: arg unchanged");
    free(p);
    n.file = "etc/p.conf";
    p = conf_path_resolve(&n, "../x");
    is_str(p, "etc/../x", "relative file: relative result");
    free(p);
    n.file = "/p.conf";
    p = conf_path_resolve(&n, "x");
    is_str(p, "/x", "file in /");
    free(p);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    char tmpl[] = "/tmp/conf_parse_test.XXXXXX";

    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s", tmpl);

    test_basic();
    test_comments();
    test_quotes();
    test_continuation();
    test_blocks();
    test_bytes();
    test_includes();
    test_path_resolve();

    if (chdir("/") < 0 || nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
        diag("cannot remove %s", dir);
    return done_testing();
}
