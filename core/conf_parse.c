/* conf_parse.c - the configuration tokenizer and tree builder (files and includes to nodes). */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

#define CONF_MAX_DEPTH 8                   /* nested blocks */
#define CONF_MAX_INCLUDE 16                /* nested includes */
#define CONF_MAX_LINE 65536                /* bytes in one physical line */
#define CONF_MAX_FILE (16 * 1024 * 1024)   /* bytes in one file */
#define ARENA_CHUNK 8192

/* ---- the arena: every node and string of a tree -------------------------- */

struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    size_t used;
    max_align_t data[];
};

struct conf_tree {
    struct arena_chunk *chunks;  /* the head is the one being filled */
    conf_node_t *root;
};

/* Returns n bytes that live until conf_tree_free(), or NULL. */
static void *arena_alloc(conf_tree_t *t, size_t n)
{
    const size_t align = alignof(max_align_t);
    struct arena_chunk *c = t->chunks;
    void *p;

    if (n > SIZE_MAX - sizeof(*c) - align)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n > ARENA_CHUNK / 4) {
        /* A big piece gets a chunk of its own, linked behind the head so
         * the head keeps filling. */
        c = malloc(sizeof(*c) + n);
        if (c == NULL)
            return NULL;
        c->size = n;
        c->used = n;
        if (t->chunks == NULL) {
            c->next = NULL;
            t->chunks = c;
        } else {
            c->next = t->chunks->next;
            t->chunks->next = c;
        }
        return c->data;
    }
    if (c == NULL || c->size - c->used < n) {
        c = malloc(sizeof(*c) + ARENA_CHUNK);
        if (c == NULL)
            return NULL;
        c->size = ARENA_CHUNK;
        c->used = 0;
        c->next = t->chunks;
        t->chunks = c;
    }
    p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static char *arena_strndup(conf_tree_t *t, const char *s, size_t n)
{
    char *d = arena_alloc(t, n + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ---- parser state -------------------------------------------------------- */

/* One open block level: where its next directive goes. */
struct level {
    conf_node_t **tail;
    int line;  /* line of the '{' that opened it */
};

struct file_id {
    dev_t dev;
    ino_t ino;
};

struct parser {
    conf_tree_t *tree;
    char *err;
    size_t errlen;
    struct file_id open[CONF_MAX_INCLUDE + 1];  /* files being read */
    int nopen;
    int include_depth;  /* 0 in the main file */
    char *tok;          /* the token being read */
    size_t toklen, tokcap;
    char **args;        /* tokens of the directive being read (arena strings) */
    int nargs, argcap;
};

/* One file being tokenized. */
struct file_ctx {
    const char *name;  /* arena string */
    const char *text;
    size_t len;
    size_t i;
    int line;
    int dline;       /* line of the directive's first token */
    int base_depth;  /* blocks open around the include of this file */
    int sp;
    struct level stack[CONF_MAX_DEPTH + 1];
};

static int parse_file(struct parser *p, const char *name, const char *text,
                      size_t len, struct level *base, int base_depth);

/* Writes "FILE:LINE: message" (or "FILE: message" when line is 0). */
static void perr(struct parser *p, const char *file, int line, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));
static void perr(struct parser *p, const char *file, int line, const char *fmt,
                 ...)
{
    va_list ap;
    int n;

    if (p->err == NULL || p->errlen == 0)
        return;
    if (line > 0)
        n = snprintf(p->err, p->errlen, "%s:%d: ", file, line);
    else
        n = snprintf(p->err, p->errlen, "%s: ", file);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    /* A path or word may hold "\n" (a quoted escape): the message stays
     * one line (-t output, the error log). */
    for (char *e = p->err; *e; e++)
        if ((unsigned char)*e < 0x20 || *e == 0x7f)
            *e = '?';
}

static int tok_put(struct parser *p, char c)
{
    if (p->toklen == p->tokcap) {
        size_t ncap = p->tokcap ? p->tokcap * 2 : 64;
        char *n = realloc(p->tok, ncap);
        if (n == NULL)
            return -1;
        p->tok = n;
        p->tokcap = ncap;
    }
    p->tok[p->toklen++] = c;
    return 0;
}

/* Moves the finished token into the arena and onto the directive. */
static int args_push(struct parser *p)
{
    char *s;

    if (p->nargs == p->argcap) {
        int ncap = p->argcap ? p->argcap * 2 : 8;
        char **n = realloc(p->args, (size_t)ncap * sizeof(char *));
        if (n == NULL)
            return -1;
        p->args = n;
        p->argcap = ncap;
    }
    s = arena_strndup(p->tree, p->tok ? p->tok : "", p->toklen);
    if (s == NULL)
        return -1;
    p->args[p->nargs++] = s;
    p->toklen = 0;
    return 0;
}

/* Returns dirname(file)/arg, or arg when it is absolute or file has no '/';
 * escape_dir backslash-escapes glob(3) characters in the directory part. The
 * caller frees. */
static char *path_join(const char *file, const char *arg, int escape_dir)
{
    const char *slash = file ? strrchr(file, '/') : NULL;
    size_t dlen, alen = strlen(arg), i, o = 0;
    char *r;

    if (arg[0] == '/' || slash == NULL)
        return strdup(arg);
    dlen = (size_t)(slash - file);
    r = malloc(2 * dlen + alen + 3);
    if (r == NULL)
        return NULL;
    for (i = 0; i < dlen; i++) {
        if (escape_dir && strchr("*?[\\", file[i]) != NULL)
            r[o++] = '\\';
        r[o++] = file[i];
    }
    r[o++] = '/';
    memcpy(r + o, arg, alen + 1);
    return r;
}

char *conf_path_resolve(const conf_node_t *node, const char *arg)
{
    return path_join(node->file, arg, 0);
}

/* ---- reading files ------------------------------------------------------- */

/* strerror() may share its buffer between threads, and a reload parses on a
 * worker thread; returns the text for eno in buf or a static string. */
static const char *errstr(int eno, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(eno, buf, len);
#else
    if (strerror_r(eno, buf, len) != 0)
        snprintf(buf, len, "error %d", eno);
    return buf;
#endif
}

enum read_status { READ_OK, READ_OPEN, READ_NOTREG, READ_TOOBIG, READ_READ, READ_NOMEM };

/* Reads a whole regular file into *text (caller frees) and sets *id.
 * Returns READ_OK or why not, with errno in *eno. */
static enum read_status read_whole(const char *path, char **text, size_t *len,
                                   struct file_id *id, int *eno)
{
    enum read_status st = READ_OK;
    struct stat sb;
    char *buf = NULL;
    size_t got = 0;
    int fd;

    *text = NULL;
    *eno = 0;
    /* O_NONBLOCK: opening a FIFO for reading waits for a writer, before
     * the S_ISREG check below could refuse it. It changes nothing for a
     * regular file. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        *eno = errno;
        return READ_OPEN;
    }
    if (fstat(fd, &sb) < 0) {
        *eno = errno;
        st = READ_READ;
        goto fail;
    }
    /* A FIFO or a device could block the reload thread forever. */
    if (!S_ISREG(sb.st_mode)) {
        st = READ_NOTREG;
        goto fail;
    }
    if (sb.st_size > CONF_MAX_FILE) {
        st = READ_TOOBIG;
        goto fail;
    }
    id->dev = sb.st_dev;
    id->ino = sb.st_ino;
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        st = READ_NOMEM;
        goto fail;
    }
    /* Read to EOF, not to st_size: the file may change under us. */
    for (;;) {
        ssize_t n;
        if (got == (size_t)sb.st_size + 1) {
            st = READ_TOOBIG;  /* grew while we read; try again later */
            goto fail;
        }
        n = read(fd, buf + got, (size_t)sb.st_size + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *eno = errno;
            st = READ_READ;
            goto fail;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *text = buf;
    *len = got;
    return READ_OK;

fail:
    free(buf);
    close(fd);
    return st;
}

/* ---- includes ------------------------------------------------------------ */

/* Reads path and parses it into the current level of f. */
static int include_file(struct parser *p, struct file_ctx *f, const char *path)
{
    struct file_id id;
    char *text = NULL, ebuf[128];
    const char *name;
    size_t len = 0;
    int eno, i, rc;

    switch (read_whole(path, &text, &len, &id, &eno)) {
    case READ_OK:
        break;
    case READ_OPEN:
        perr(p, f->name, f->dline, "include: cannot open '%s': %s", path,
             errstr(eno, ebuf, sizeof(ebuf)));
        goto fail;
    case READ_NOTREG:
        perr(p, f->name, f->dline, "include: '%s' is not a regular file", path);
        goto fail;
    case READ_TOOBIG:
        perr(p, f->name, f->dline, "include: '%s' is too large (max %d MiB)", path,
             CONF_MAX_FILE >> 20);
        goto fail;
    case READ_READ:
        perr(p, f->name, f->dline, "include: cannot read '%s': %s", path,
             errstr(eno, ebuf, sizeof(ebuf)));
        goto fail;
    case READ_NOMEM:
        perr(p, f->name, f->dline, "include: out of memory reading '%s'", path);
        goto fail;
    }
    for (i = 0; i < p->nopen; i++) {
        if (p->open[i].dev == id.dev && p->open[i].ino == id.ino) {
            perr(p, f->name, f->dline, "include: cycle: '%s' is already being read", path);
            goto fail;
        }
    }
    name = arena_strndup(p->tree, path, strlen(path));
    if (name == NULL) {
        perr(p, f->name, f->dline, "out of memory");
        goto fail;
    }
    p->open[p->nopen++] = id;
    p->include_depth++;
    rc = parse_file(p, name, text, len, &f->stack[f->sp], f->base_depth + f->sp);
    p->include_depth--;
    p->nopen--;
    if (rc < 0)
        goto fail;
    free(text);
    return 0;

fail:
    free(text);
    return -1;
}

/* A directory of the pattern that does not exist just matches nothing; one
 * that cannot be read (permissions, I/O) stops the include. */
static int glob_error(const char *epath, int eerrno)
{
    (void)epath;
    return eerrno != ENOENT && eerrno != ENOTDIR;
}

/* Handles "include PATH" at the current level of f: a glob pattern may match
 * nothing; a plain path must exist. */
static int do_include(struct parser *p, struct file_ctx *f, const char *arg)
{
    char *path = NULL, *pattern = NULL;
    glob_t g;
    int rc;
    size_t k;

    if (p->include_depth >= CONF_MAX_INCLUDE) {
        perr(p, f->name, f->dline, "include: nested too deeply (max %d)", CONF_MAX_INCLUDE);
        goto fail;
    }
    path = path_join(f->name, arg, 0);
    if (path == NULL)
        goto nomem;
    if (strpbrk(arg, "*?[") == NULL) {
        if (include_file(p, f, path) < 0)
            goto fail;
        goto done;
    }

    pattern = path_join(f->name, arg, 1);
    if (pattern == NULL)
        goto nomem;
    /* glob() starts by emptying g, so globfree() is right on every path;
     * no match leaves gl_pathc at 0. The matches come sorted, so
     * conf.d/10-x.conf is read before conf.d/20-y.conf. */
    rc = glob(pattern, 0, glob_error, &g);
    if (rc != 0 && rc != GLOB_NOMATCH) {
        if (rc == GLOB_NOSPACE)
            perr(p, f->name, f->dline, "out of memory");
        else
            perr(p, f->name, f->dline, "include: cannot read '%s'", path);
        globfree(&g);
        goto fail;
    }
    for (k = 0; k < g.gl_pathc; k++) {
        if (include_file(p, f, g.gl_pathv[k]) < 0) {
            globfree(&g);
            goto fail;
        }
    }
    globfree(&g);
done:
    free(pattern);
    free(path);
    return 0;

nomem:
    perr(p, f->name, f->dline, "out of memory");
fail:
    free(pattern);
    free(path);
    return -1;
}

/* ---- the tokenizer ------------------------------------------------------- */

/* Rejects what is no configuration text before reading any token, so the
 * tokenizer can trust every byte: NUL bytes, control characters other than
 * tab and line ends (CR only before LF), and lines longer than
 * CONF_MAX_LINE. Bytes >= 0x80 are allowed anywhere. */
static int check_bytes(struct parser *p, const char *name, const char *text, size_t len)
{
    size_t i, start = 0;
    int line = 1;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            /* The CR of a CRLF does not count: same limit for both. */
            size_t l = i - start - (i > start && text[i - 1] == '\r');
            if (l > CONF_MAX_LINE)
                goto too_long;
            line++;
            start = i + 1;
            continue;
        }
        if (c == '\0') {
            perr(p, name, line, "NUL byte");
            return -1;
        }
        if ((c < 0x20 && c != '\t' && !(c == '\r' && i + 1 < len && text[i + 1] == '\n')) ||
            c == 0x7f) {
            perr(p, name, line, "control character 0x%02x", c);
            return -1;
        }
    }
    if (i - start > CONF_MAX_LINE)
        goto too_long;
    return 0;

too_long:
    perr(p, name, line, "line too long (more than %d bytes)", CONF_MAX_LINE);
    return -1;
}

/* Returns how many bytes a '\' at f->i joins the next line with (2 for
 * "\\\n", 3 for "\\\r\n", 1 at the end of the text), or 0. */
static size_t continuation(const struct file_ctx *f)
{
    size_t i = f->i;

    if (f->text[i] != '\\')
        return 0;
    if (i + 1 == f->len)
        return 1;
    if (f->text[i + 1] == '\n')
        return 2;
    if (f->text[i + 1] == '\r' && i + 2 < f->len && f->text[i + 2] == '\n')
        return 3;
    return 0;
}

static void skip_continuation(struct file_ctx *f, size_t n)
{
    f->i += n;
    if (n > 1)
        f->line++;
}

static int oom(struct parser *p, struct file_ctx *f)
{
    perr(p, f->name, f->line, "out of memory");
    return -1;
}

/* Appends the directive in p->args as a node at the current level. */
static conf_node_t *add_node(struct parser *p, struct file_ctx *f, int has_block)
{
    conf_node_t *n;
    int k;

    if (p->args[0][0] == '\0') {
        perr(p, f->name, f->dline, "empty directive name");
        return NULL;
    }
    n = arena_alloc(p->tree, sizeof(*n));
    if (n == NULL)
        goto nomem;
    memset(n, 0, sizeof(*n));
    n->argv = arena_alloc(p->tree, (size_t)p->nargs * sizeof(char *));
    if (n->argv == NULL)
        goto nomem;
    n->name = p->args[0];
    n->argc = p->nargs - 1;
    for (k = 1; k < p->nargs; k++)
        n->argv[k - 1] = p->args[k];
    n->argv[n->argc] = NULL;
    n->file = f->name;
    n->line = f->dline;
    n->has_block = has_block;
    *f->stack[f->sp].tail = n;
    f->stack[f->sp].tail = &n->next;
    p->nargs = 0;
    return n;

nomem:
    oom(p, f);
    return NULL;
}

/* Ends the directive being read (at a line end, '}' or the end of text). */
static int end_directive(struct parser *p, struct file_ctx *f)
{
    if (p->nargs == 0)
        return 0;
    if (strcmp(p->args[0], "include") == 0) {
        const char *arg;
        if (p->nargs != 2) {
            perr(p, f->name, f->dline, "'include' takes 1 argument");
            return -1;
        }
        /* The argument is an arena string, so it survives the nested parse
         * reusing p->args. */
        arg = p->args[1];
        p->nargs = 0;
        return do_include(p, f, arg);
    }
    return add_node(p, f, 0) == NULL ? -1 : 0;
}

static int open_block(struct parser *p, struct file_ctx *f)
{
    conf_node_t *n;

    if (p->nargs == 0) {
        perr(p, f->name, f->line, "'{' without a directive name");
        return -1;
    }
    if (strcmp(p->args[0], "include") == 0) {
        perr(p, f->name, f->dline, "'include' takes no block");
        return -1;
    }
    if (f->base_depth + f->sp + 1 > CONF_MAX_DEPTH) {
        perr(p, f->name, f->line, "blocks nested too deeply (max %d)", CONF_MAX_DEPTH);
        return -1;
    }
    n = add_node(p, f, 1);
    if (n == NULL)
        return -1;
    f->sp++;
    f->stack[f->sp].tail = &n->child;
    f->stack[f->sp].line = f->line;
    return 0;
}

static int close_block(struct parser *p, struct file_ctx *f)
{
    if (end_directive(p, f) < 0)
        return -1;
    if (f->sp == 0) {
        perr(p, f->name, f->line, "'}' without matching '{'");
        return -1;
    }
    f->sp--;
    return 0;
}

/* Reads a quoted token at f->i into p->tok. In "...", \" \\ \n \t are
 * escapes, '\' before a line end joins the lines, and any other '\x' stays
 * as written (so regular expressions need no doubling). In '...', every
 * byte is literal. A quoted token never spans a raw line end. */
static int read_quoted(struct parser *p, struct file_ctx *f)
{
    char q = f->text[f->i];
    int start = f->line;
    size_t n;

    f->i++;
    for (;;) {
        char c;
        if (f->i == f->len)
            goto unterminated;
        c = f->text[f->i];
        if (c == q) {
            f->i++;
            break;
        }
        if (c == '\n')
            goto unterminated;
        if (q == '"' && c == '\\') {
            if (f->i + 1 == f->len)
                goto unterminated;
            if ((n = continuation(f)) > 1) {
                skip_continuation(f, n);
                continue;
            }
            c = f->text[f->i + 1];
            if (c == '"' || c == '\\') {
                if (tok_put(p, c) < 0)
                    return oom(p, f);
            } else if (c == 'n' || c == 't') {
                if (tok_put(p, c == 'n' ? '\n' : '\t') < 0)
                    return oom(p, f);
            } else if (c == '\n' || c == '\r') {
                goto unterminated;
            } else {
                if (tok_put(p, '\\') < 0 || tok_put(p, c) < 0)
                    return oom(p, f);
            }
            f->i += 2;
            continue;
        }
        if (tok_put(p, c) < 0)
            return oom(p, f);
        f->i++;
    }

    /* "a"b would be ambiguous (shells join, nginx refuses): refuse. */
    if (f->i < f->len) {
        unsigned char c = (unsigned char)f->text[f->i];
        if (!(c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '{' ||
              c == '}' || c == '#' || continuation(f) > 0)) {
            if (c > 0x20 && c < 0x7f)
                perr(p, f->name, f->line, "unexpected '%c' after closing quote", c);
            else
                perr(p, f->name, f->line, "unexpected byte 0x%02x after closing quote", c);
            return -1;
        }
    }
    return 0;

unterminated:
    perr(p, f->name, start, "unterminated quote");
    return -1;
}

/* Reads an unquoted word at f->i into p->tok: it runs to a space, a line
 * end, '{' or '}'. Quotes and '#' inside a word are literal. */
static int read_word(struct parser *p, struct file_ctx *f)
{
    while (f->i < f->len) {
        char c = f->text[f->i];
        size_t n;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '{' || c == '}')
            break;
        if ((n = continuation(f)) > 0) {
            skip_continuation(f, n);
            continue;
        }
        if (tok_put(p, c) < 0)
            return oom(p, f);
        f->i++;
    }
    return 0;
}

/* Tokenizes one file into the level base (updated to its new tail). */
static int parse_file(struct parser *p, const char *name, const char *text,
                      size_t len, struct level *base, int base_depth)
{
    struct file_ctx f;

    if (check_bytes(p, name, text, len) < 0)
        return -1;
    memset(&f, 0, sizeof(f));
    f.name = name;
    f.text = text;
    f.len = len;
    f.line = 1;
    f.base_depth = base_depth;
    f.stack[0] = *base;
    p->nargs = 0;
    p->toklen = 0;

    while (f.i < f.len) {
        char c = f.text[f.i];
        size_t n;

        if (c == '\n') {
            if (end_directive(p, &f) < 0)
                return -1;
            f.line++;
            f.i++;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            f.i++;
        } else if ((n = continuation(&f)) > 0) {
            skip_continuation(&f, n);
        } else if (c == '#') {
            /* A comment starts only where a token could: "a#b" and
             * "http://x/#top" are words. It ends at the line end; a '\'
             * before that does not continue it. */
            while (f.i < f.len && f.text[f.i] != '\n')
                f.i++;
        } else if (c == '{') {
            if (open_block(p, &f) < 0)
                return -1;
            f.i++;
        } else if (c == '}') {
            if (close_block(p, &f) < 0)
                return -1;
            f.i++;
        } else {
            int line = f.line;
            if (c == '"' || c == '\'') {
                if (read_quoted(p, &f) < 0)
                    return -1;
            } else if (read_word(p, &f) < 0) {
                return -1;
            }
            if (p->nargs == 0)
                f.dline = line;
            if (args_push(p) < 0)
                return oom(p, &f);
        }
    }
    if (end_directive(p, &f) < 0)
        return -1;
    if (f.sp > 0) {
        perr(p, f.name, f.stack[f.sp].line, "'{' without matching '}'");
        return -1;
    }
    *base = f.stack[0];
    return 0;
}

/* ---- the public entry points --------------------------------------------- */

static conf_tree_t *tree_new(const char *name)
{
    conf_tree_t *t = calloc(1, sizeof(*t));
    conf_node_t *root;

    if (t == NULL)
        return NULL;
    root = arena_alloc(t, sizeof(*root));
    if (root == NULL)
        goto fail;
    memset(root, 0, sizeof(*root));
    root->name = "";
    root->argv = arena_alloc(t, sizeof(char *));
    root->file = arena_strndup(t, name, strlen(name));
    if (root->argv == NULL || root->file == NULL)
        goto fail;
    root->argv[0] = NULL;
    root->has_block = 1;
    t->root = root;
    return t;

fail:
    conf_tree_free(t);
    return NULL;
}

static int parse_root(struct parser *p, const char *text, size_t len)
{
    struct level base;
    conf_node_t *root = p->tree->root;
    int rc;

    base.tail = &root->child;
    base.line = 0;
    rc = parse_file(p, root->file, text, len, &base, 0);
    free(p->tok);
    free(p->args);
    return rc;
}

conf_tree_t *conf_tree_parse(const char *name, const char *text, size_t len,
                             char *err, size_t errlen)
{
    struct parser p;

    memset(&p, 0, sizeof(p));
    p.err = err;
    p.errlen = errlen;
    p.tree = tree_new(name);
    if (p.tree == NULL) {
        perr(&p, name, 0, "out of memory");
        goto fail;
    }
    if (parse_root(&p, text, len) < 0)
        goto fail;
    return p.tree;

fail:
    conf_tree_free(p.tree);
    return NULL;
}

conf_tree_t *conf_tree_load(const char *path, char *err, size_t errlen)
{
    struct parser p;
    char *text = NULL, ebuf[128];
    size_t len = 0;
    int eno;

    memset(&p, 0, sizeof(p));
    p.err = err;
    p.errlen = errlen;
    switch (read_whole(path, &text, &len, &p.open[0], &eno)) {
    case READ_OK:
        break;
    case READ_OPEN:
        perr(&p, path, 0, "cannot open: %s", errstr(eno, ebuf, sizeof(ebuf)));
        goto fail;
    case READ_NOTREG:
        perr(&p, path, 0, "not a regular file");
        goto fail;
    case READ_TOOBIG:
        perr(&p, path, 0, "too large (max %d MiB)", CONF_MAX_FILE >> 20);
        goto fail;
    case READ_READ:
        perr(&p, path, 0, "cannot read: %s", errstr(eno, ebuf, sizeof(ebuf)));
        goto fail;
    case READ_NOMEM:
        perr(&p, path, 0, "out of memory");
        goto fail;
    }
    p.nopen = 1;
    p.tree = tree_new(path);
    if (p.tree == NULL) {
        perr(&p, path, 0, "out of memory");
        goto fail;
    }
    if (parse_root(&p, text, len) < 0)
        goto fail;
    free(text);
    return p.tree;

fail:
    free(text);
    conf_tree_free(p.tree);
    return NULL;
}

conf_node_t *conf_tree_root(conf_tree_t *tree)
{
    return tree->root;
}

void conf_tree_free(conf_tree_t *tree)
{
    struct arena_chunk *c, *next;

    if (tree == NULL)
        return;
    for (c = tree->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(tree);
}
