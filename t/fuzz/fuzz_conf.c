/* fuzz_conf.c - fuzz target: the configuration parser (core/conf_parse.c) and the core directives (core/conf_core.c). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "fuzz.h"
#include "http_msg.h"

/*
 * The input is a configuration file, parsed from memory with
 * conf_tree_parse() as DIR/main.conf, where DIR is a temporary directory
 * holding files to include (a plain one, a glob directory, one that
 * includes itself, one that leaves a block open, a FIFO); sandbox.c keeps
 * every other path of the machine out of reach. A tree that parses goes
 * through conf_core_build().
 *
 * Invariants:
 *   - an error is one line "FILE:LINE: message" or "FILE: message", FILE
 *     the main file or one of the included ones;
 *   - the tree is well formed: names not empty, argv NULL-terminated,
 *     blocks at most 8 deep, children only under a block, lines >= 1;
 *   - written back out (every word double-quoted, with \" \\ \n \t) and
 *     parsed again, the tree is the same: what conf_parse.c reads as a
 *     word is what a writer of the format means by it;
 *   - conf_core_build() accepts the tree written back exactly when it
 *     accepts the original (file names and lines play no part in what a
 *     directive means).
 */

static char dir[4096], main_name[4200], rt_name[4200];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char fifo[4300];

    snprintf(dir, sizeof(dir), "%s", fuzz_tmpdir());
    snprintf(main_name, sizeof(main_name), "%s/main.conf", dir);
    snprintf(rt_name, sizeof(rt_name), "%s/written.conf", dir);
    fuzz_write_file(dir, "a.conf", "listen 127.0.0.1:3129\n", 22);
    fuzz_write_file(dir, "b.conf", "allow_clients 10.0.0.0/8 # b\nworkers 2\n", 39);
    fuzz_write_file(dir, "conf.d/10-first.conf", "connect_ports 443 8443\n", 23);
    fuzz_write_file(dir, "conf.d/20-second.conf", "pac_direct_fallback on\n", 23);
    fuzz_write_file(dir, "self.conf", "include self.conf\n", 18);
    fuzz_write_file(dir, "open.conf", "policy x {\n", 11);
    fuzz_write_file(dir, "inner.conf", "clients 192.168.0.0/16\nintercept off\n", 37);
    /* A FIFO must be refused, not block the parser. */
    snprintf(fifo, sizeof(fifo), "%s/fifo.conf", dir);
    if (mkfifo(fifo, 0600) < 0 && errno != EEXIST) {
        perror(fifo);
        abort();
    }
    return 0;
}

/* ---- the tree ------------------------------------------------------------ */

static void check_node(const conf_node_t *n, int depth)
{
    for (; n; n = n->next) {
        FUZZ_CHECK(depth <= 8, "directive '%s' inside %d blocks", n->name, depth);
        FUZZ_CHECK(n->name != NULL && n->name[0] != '\0', "empty directive name");
        FUZZ_CHECK(strcmp(n->name, "include") != 0, "'include' reached the tree");
        FUZZ_CHECK(n->argc >= 0 && n->argv != NULL && n->argv[n->argc] == NULL,
                   "argv of '%s' not NULL-terminated", n->name);
        for (int i = 0; i < n->argc; i++)
            FUZZ_CHECK(n->argv[i] != NULL, "NULL argument %d of '%s'", i, n->name);
        FUZZ_CHECK(n->file != NULL && n->line >= 1, "'%s' without a place", n->name);
        FUZZ_CHECK(n->has_block || n->child == NULL, "children of '%s' without a block",
                   n->name);
        check_node(n->child, depth + 1);
    }
}

static void put_word(strbuf_t *s, const char *w)
{
    strbuf_add(s, "\"", 1);
    for (; *w; w++) {
        if (*w == '"' || *w == '\\') {
            char e[2] = {'\\', *w};
            strbuf_add(s, e, 2);
        } else if (*w == '\n') {
            strbuf_add(s, "\\n", 2);
        } else {
            FUZZ_CHECK((unsigned char)*w >= 0x20 || *w == '\t',
                       "control byte 0x%02x in a word", (unsigned char)*w);
            strbuf_add(s, w, 1);
        }
    }
    strbuf_add(s, "\"", 1);
}

static void write_tree(strbuf_t *s, const conf_node_t *n)
{
    for (; n; n = n->next) {
        put_word(s, n->name);
        for (int i = 0; i < n->argc; i++) {
            strbuf_add(s, " ", 1);
            put_word(s, n->argv[i]);
        }
        if (n->has_block) {
            strbuf_add(s, " {\n", 3);
            write_tree(s, n->child);
            strbuf_add(s, "}\n", 2);
        } else {
            strbuf_add(s, "\n", 1);
        }
    }
}

static void same_tree(const conf_node_t *a, const conf_node_t *b)
{
    for (; a || b; a = a->next, b = b->next) {
        FUZZ_CHECK(a && b, "written back, the tree has %s directives",
                   a ? "fewer" : "more");
        FUZZ_CHECK(strcmp(a->name, b->name) == 0, "directive '%s' reads back as '%s'",
                   a->name, b->name);
        FUZZ_CHECK(a->argc == b->argc, "'%s' has %d arguments, %d written back", a->name,
                   a->argc, b->argc);
        for (int i = 0; i < a->argc; i++)
            FUZZ_CHECK(strcmp(a->argv[i], b->argv[i]) == 0,
                       "argument %d of '%s' is '%s', '%s' written back", i, a->name,
                       a->argv[i], b->argv[i]);
        FUZZ_CHECK(a->has_block == b->has_block, "the block of '%s'", a->name);
        same_tree(a->child, b->child);
    }
}

/* 1 when every line of s is at most the parser's 65536 bytes. */
static int lines_fit(const strbuf_t *s)
{
    size_t start = 0;

    for (size_t i = 0; i < s->len; i++) {
        if (s->p[i] == '\n') {
            if (i - start > 65536)
                return 0;
            start = i + 1;
        }
    }
    return s->len - start <= 65536;
}

static void check_error(const char *err)
{
    size_t dl = strlen(dir);

    FUZZ_CHECK(err[0] != '\0', "failure without a message");
    FUZZ_CHECK(strchr(err, '\n') == NULL, "message of more than one line: %s", err);
    FUZZ_CHECK(strncmp(err, dir, dl) == 0 && err[dl] == '/',
               "message without the file: %s", err);
}

/* conf_core_build() on tree; 1 when it built. Frees the tree either way. */
static int build(conf_tree_t *tree, const char *name)
{
    char err[1024] = "";
    conf_t *conf = conf_core_build(tree, name, err, sizeof(err));

    if (conf == NULL) {
        check_error(err);
        conf_tree_free(tree);
        return 0;
    }
    {
        netaddr_t a;
        netaddr_parse("10.1.2.3", &a);
        (void)conf_policy_for(conf, &a);
        (void)conf_intercept_wanted(conf);
    }
    conf_unref(conf);  /* the snapshot owns the tree */
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024] = "";
    conf_tree_t *tree, *again;
    strbuf_t s;
    int built;

    if (size > 1 << 20)
        return 0;
    fuzz_sandbox(dir);
    tree = conf_tree_parse(main_name, (const char *)data, size, err, sizeof(err));
    fuzz_sandbox_off();
    if (tree == NULL) {
        check_error(err);
        return 0;
    }
    check_node(conf_tree_root(tree)->child, 0);

    strbuf_init(&s);
    write_tree(&s, conf_tree_root(tree)->child);
    FUZZ_CHECK(!s.failed, "out of memory");
    if (!lines_fit(&s)) {
        /* Escapes made a line longer than the parser takes. */
        strbuf_free(&s);
        build(tree, main_name);
        return 0;
    }
    fuzz_sandbox(dir);
    again = conf_tree_parse(rt_name, s.p ? s.p : "", s.len, err, sizeof(err));
    fuzz_sandbox_off();
    FUZZ_CHECK(again != NULL, "the tree written back does not parse: %s\n%s", err,
               s.p ? s.p : "");
    same_tree(conf_tree_root(tree)->child, conf_tree_root(again)->child);
    strbuf_free(&s);

    built = build(tree, main_name);
    FUZZ_CHECK(build(again, rt_name) == built, "conf_core_build %s the original, %s the copy",
               built ? "accepts" : "refuses", built ? "refuses" : "accepts");
    return 0;
}
