/* lists.c - loading urlcat's list files (UT1/squidGuard trees, e2guardian-style lists) into a snapshot. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lists.h"
#include "urlnorm.h"

/*
 * File formats (docs/lists.md has the admin's view):
 *
 *   squidGuard/UT1 tree   DIR/<category>/{domains,urls,expressions}, and
 *                         DIR/global_usage with titles and descriptions.
 *                         '#' starts a comment line; a domain or URL line
 *                         is its first token, lowercased; an expression
 *                         line is the whole line, as written.
 *   e2guardian-style      the same entries, plus ".Include<path>" (nested,
 *                         relative to the including file), "#listcategory:
 *                         NAME" (the category of the lines after it) and
 *                         comments after " #" on a line; "**" (every host)
 *                         and "*ip" (every address host) in site lists.
 *   exception lists       hosts, addresses, CIDRs and URLs mixed, in the
 *                         e2guardian syntax.
 *
 * Every bad line is an error "FILE:LINE: message": the whole load fails
 * and the lists in force stay (list_errors warn skips it instead).
 */

#define MAX_INCLUDE_DEPTH 16
#define MAX_WARNINGS 20
#define LINE_MAX_LEN 65536

typedef struct loader {
    const uc_conf_t *conf;
    ucdb_builder_t *b;
    uc_lists_t *l;
    int capfiles;
    uc_warn_fn warn;
    void *warn_arg;
    char *err;
    size_t errlen;
    /* The files being read, outermost first: include loops. */
    dev_t stack_dev[MAX_INCLUDE_DEPTH + 1];
    ino_t stack_ino[MAX_INCLUDE_DEPTH + 1];
    int depth;
} loader_t;

/* What kind of entries a file holds. */
enum entry_kind { E_DOMAINS, E_URLS, E_EXPRESSIONS, E_ANY };

/* Reports a bad line: under list_errors fail it becomes the load's error
 * (returns -1); under warn it is logged (the first MAX_WARNINGS) and
 * skipped (returns 0). */
static int line_error(loader_t *L, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int line_error(loader_t *L, const char *path, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int n;

    n = snprintf(msg, sizeof(msg), "%s:%d: ", path, line);
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    if (L->conf->list_errors == UC_ERRORS_WARN) {
        if (L->l->skipped < MAX_WARNINGS && L->warn)
            L->warn(L->warn_arg, msg);
        L->l->skipped++;
        return 0;
    }
    snprintf(L->err, L->errlen, "%s", msg);
    return -1;
}

static int fatal(loader_t *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fatal(loader_t *L, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(L->err, L->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Records what path is now (st NULL: it does not exist). */
static int remember(loader_t *L, const char *path, const struct stat *st)
{
    uc_lists_t *l = L->l;
    uc_filestat_t *f;

    if (l->nfiles == L->capfiles) {
        int cap = L->capfiles ? L->capfiles * 2 : 32;
        f = realloc(l->files, (size_t)cap * sizeof(*f));
        if (f == NULL)
            return fatal(L, "out of memory");
        l->files = f;
        L->capfiles = cap;
    }
    f = &l->files[l->nfiles];
    memset(f, 0, sizeof(*f));
    f->path = strdup(path);
    if (f->path == NULL)
        return fatal(L, "out of memory");
    if (st) {
        f->exists = 1;
        f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
        f->size = (int64_t)st->st_size;
        f->ino = (uint64_t)st->st_ino;
    }
    l->nfiles++;
    return 0;
}

/* a/b into out; -1 when it does not fit. */
static int join_path(char *out, size_t len, const char *a, const char *b)
{
    int n = snprintf(out, len, "%s/%s", a, b);

    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Cuts s at its first space or tab (the first token). */
static char *first_token(char *s)
{
    s[strcspn(s, " \t")] = '\0';
    return s;
}

/* 1 when s is "ADDR/LEN" or "ADDR-ADDR": a netaddr set entry. */
static int is_range(const char *s)
{
    char buf[128];
    const char *sep = strpbrk(s, "/-");
    netaddr_t a;

    if (sep == NULL || strlen(s) >= sizeof(buf))
        return 0;
    memcpy(buf, s, (size_t)(sep - s));
    buf[sep - s] = '\0';
    if (netaddr_parse(buf, &a) < 0)
        return 0;
    if (*sep == '/')
        return sep[1] != '\0' && strspn(sep + 1, "0123456789") == strlen(sep + 1);
    return netaddr_parse(sep + 1, &a) == 0;
}

/* A host entry: "example.com", ".example.com", "*.example.com", an
 * address, a CIDR or range, "**", "*ip". Returns 0 or -1. */
static int add_host(loader_t *L, int cat, char *tok, const char *path, int line)
{
    char host[URLNORM_HOST_MAX + 1], err[256];
    const char *why;

    if (strcmp(tok, "**") == 0 || strcmp(tok, "*ip") == 0) {
        ucdb_add_blanket(L->b, cat, tok[1] == 'i');
        return 0;
    }
    if (is_range(tok)) {
        if (ucdb_add_range(L->b, tok, cat, err, sizeof(err)) < 0)
            return line_error(L, path, line, "%s", err);
        return 0;
    }
    /* squid's ".example.com" and the common "*.example.com" mean the same
     * as "example.com" here: a domain always covers its subdomains. */
    if (strncmp(tok, "*.", 2) == 0)
        tok += 2;
    else if (tok[0] == '.')
        tok++;
    if (strchr(tok, '/'))
        return line_error(L, path, line, "'%s' is not a domain (URLs go in a URL list)",
                          tok);
    if (urlnorm_host(tok, strlen(tok), host, sizeof(host), &why) < 0)
        return line_error(L, path, line, "invalid domain '%s': %s", tok, why);
    if (ucdb_add_domain(L->b, host, strlen(host), cat) < 0)
        return fatal(L, "out of memory");
    return 0;
}

/* A URL entry: "[scheme://][user@]host[:port]/path[?query]". */
static int add_url(loader_t *L, int cat, char *tok, const char *path, int line)
{
    char host[URLNORM_HOST_MAX + 1], key[8192], npath[8192];
    const char *why, *s = tok, *aend, *hs, *he, *p;

    p = strstr(s, "://");
    if (p && (size_t)(p - s) == strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789+.-"))
        s = p + 3;
    aend = s + strcspn(s, "/?#");
    hs = s;
    for (p = s; p < aend; p++)
        if (*p == '@')
            hs = p + 1;  /* user information is never part of the site */
    he = aend;
    if (*hs == '[') {
        p = memchr(hs, ']', (size_t)(aend - hs));
        he = p ? p + 1 : aend;
    } else {
        p = memchr(hs, ':', (size_t)(aend - hs));
        if (p)
            he = p;
    }
    if (he < aend) {
        if (*he != ':' || strspn(he + 1, "0123456789") != (size_t)(aend - he - 1))
            return line_error(L, path, line, "invalid port in URL '%s'", tok);
    }
    if (urlnorm_host(hs, (size_t)(he - hs), host, sizeof(host), &why) < 0)
        return line_error(L, path, line, "invalid host in URL '%s': %s", tok, why);
    if (urlnorm_path(aend, strlen(aend), npath, sizeof(npath), &why) < 0)
        return line_error(L, path, line, "invalid path in URL '%s': %s", tok, why);
    {
        int n = ucdb_url_key(host, npath, key, sizeof(key));
        if (n < 0)
            return line_error(L, path, line, "URL too long");
        if (ucdb_add_url(L->b, key, (size_t)n, cat) < 0)
            return fatal(L, "out of memory");
    }
    return 0;
}

static int add_expression(loader_t *L, int cat, const char *re, const char *path,
                          int line)
{
    char err[512];

    if (ucdb_add_expression(L->b, re, cat, err, sizeof(err)) < 0)
        return line_error(L, path, line, "%s", err);
    return 0;
}

/* One entry line (comments and includes already handled). e2 lines keep
 * their case until here for expressions. */
static int add_entry(loader_t *L, enum entry_kind kind, int cat, char *s,
                     const char *path, int line)
{
    if (kind == E_EXPRESSIONS)
        return add_expression(L, cat, s, path, line);
    s = first_token(s);
    lower(s);
    switch (kind) {
    case E_DOMAINS:
        return add_host(L, cat, s, path, line);
    case E_URLS:
        return add_url(L, cat, s, path, line);
    default:
        /* An exception list mixes both: a '/' that is no CIDR is a URL. */
        if (strchr(s, '/') && !is_range(s))
            return add_url(L, cat, s, path, line);
        return add_host(L, cat, s, path, line);
    }
}

/* Opens path for reading and records it; NULL (error set) when it cannot
 * be read. */
static FILE *open_list(loader_t *L, const char *path, const char *from,
                       int from_line, struct stat *st)
{
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        if (from)
            fatal(L, "%s:%d: cannot open %s: %s", from, from_line, path,
                  strerror(errno));
        else
            fatal(L, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), st) < 0 || !S_ISREG(st->st_mode)) {
        if (from)
            fatal(L, "%s:%d: %s is not a regular file", from, from_line, path);
        else
            fatal(L, "%s is not a regular file", path);
        fclose(f);
        return NULL;
    }
    if (remember(L, path, st) < 0) {
        fclose(f);
        return NULL;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 16);
    return f;
}

/* Reads a line into *buf; returns its length without the newline, or -1 at
 * the end. A line longer than LINE_MAX_LEN is an error (-2). */
static ssize_t read_line(FILE *f, char **buf, size_t *cap)
{
    ssize_t n = getline(buf, cap, f);

    if (n < 0)
        return -1;
    if (n > LINE_MAX_LEN)
        return -2;
    while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r'))
        (*buf)[--n] = '\0';
    return n;
}

/* A squidGuard/UT1 file: DIR/<cat>/domains, urls or expressions. */
static int load_plain(loader_t *L, const char *path, enum entry_kind kind, int cat)
{
    struct stat st;
    FILE *f = open_list(L, path, NULL, 0, &st);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int line = 0, rc = 0;

    if (f == NULL)
        return -1;
    while (rc == 0 && (n = read_line(f, &buf, &cap)) != -1) {
        char *s;
        line++;
        if (n == -2) {
            rc = line_error(L, path, line, "line longer than %d bytes", LINE_MAX_LEN);
            continue;
        }
        if (memchr(buf, '\0', (size_t)n)) {
            rc = line_error(L, path, line, "NUL byte in line");
            continue;
        }
        s = trim(buf);
        if (*s == '\0' || *s == '#')
            continue;
        rc = add_entry(L, kind, cat, s, path, line);
    }
    if (rc == 0 && ferror(f))
        rc = fatal(L, "%s: read error", path);
    free(buf);
    fclose(f);
    return rc;
}

/* The directory of path, for relative includes. */
static void dir_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        snprintf(out, len, ".");
    else
        snprintf(out, len, "%.*s", (int)(slash - path), path);
}

/* The category name of "#listcategory: NAME" (quotes removed, lowercase)
 * into out; 0, or -1 when empty. */
static int listcategory(const char *s, char *out, size_t len)
{
    size_t n;

    s += strlen("#listcategory:");
    while (*s == ' ' || *s == '\t')
        s++;
    snprintf(out, len, "%s", s);
    n = strlen(out);
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        out[--n] = '\0';
    if (n >= 2 && out[0] == '"' && out[n - 1] == '"') {
        memmove(out, out + 1, n - 2);
        out[n - 2] = '\0';
    }
    lower(out);
    return out[0] ? 0 : -1;
}

/* An e2guardian-style list. cat is the category of its lines until a
 * "#listcategory:" changes it (unless fixed: the directive named one). */
static int load_e2(loader_t *L, const char *path, enum entry_kind kind, int cat,
                   const char *defname, int fixed, const char *from, int from_line)
{
    struct stat st;
    FILE *f;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int line = 0, rc = 0;

    if (L->depth >= MAX_INCLUDE_DEPTH)
        return fatal(L, "%s:%d: includes nested deeper than %d", from, from_line,
                      MAX_INCLUDE_DEPTH);
    f = open_list(L, path, from, from_line, &st);
    if (f == NULL)
        return -1;
    for (int i = 0; i < L->depth; i++) {
        if (L->stack_dev[i] == st.st_dev && L->stack_ino[i] == st.st_ino) {
            fclose(f);
            return fatal(L, "%s:%d: include loop: %s is already being read", from,
                         from_line, path);
        }
    }
    L->stack_dev[L->depth] = st.st_dev;
    L->stack_ino[L->depth] = st.st_ino;
    L->depth++;
    while (rc == 0 && (n = read_line(f, &buf, &cap)) != -1) {
        char *s, *c;
        line++;
        if (n == -2) {
            rc = line_error(L, path, line, "line longer than %d bytes", LINE_MAX_LEN);
            continue;
        }
        if (memchr(buf, '\0', (size_t)n)) {
            rc = line_error(L, path, line, "NUL byte in line");
            continue;
        }
        s = trim(buf);
        if (*s == '\0')
            continue;
        if (*s == '#') {
            if (strncasecmp(s, "#listcategory:", 14) == 0 && !fixed) {
                char name[256];
                int c2;
                if (listcategory(s, name, sizeof(name)) < 0) {
                    rc = line_error(L, path, line, "empty #listcategory");
                    continue;
                }
                c2 = ucdb_category(L->b, name);
                if (c2 < 0)
                    rc = fatal(L, "%s:%d: too many categories (at most %d)", path,
                               line, UCDB_MAX_CATEGORIES);
                else
                    cat = c2;
            }
            continue;
        }
        if (strncmp(s, ".Include<", 9) == 0) {
            char *end = strchr(s + 9, '>'), inc[PATH_MAX], dir[PATH_MAX];
            if (end == NULL || end == s + 9) {
                rc = line_error(L, path, line, "bad .Include line (use .Include</path/to/list>)");
                continue;
            }
            *end = '\0';
            dir_of(path, dir, sizeof(dir));
            if (s[9] == '/' ? (int)strlen(s + 9) >= (int)sizeof(inc)
                            : join_path(inc, sizeof(inc), dir, s + 9) < 0) {
                rc = line_error(L, path, line, "include path too long");
                continue;
            }
            if (s[9] == '/')
                memcpy(inc, s + 9, strlen(s + 9) + 1);
            rc = load_e2(L, inc, kind, cat, defname, fixed, path, line);
            continue;
        }
        /* " #" and "\t#" start a comment; '#' inside a token does not. */
        for (c = s + 1; *c; c++) {
            if (*c == '#' && (c[-1] == ' ' || c[-1] == '\t')) {
                *c = '\0';
                s = trim(s);
                break;
            }
        }
        if (cat < 0 && (cat = ucdb_category(L->b, defname)) < 0) {
            rc = fatal(L, "%s:%d: too many categories (at most %d)", path, line,
                       UCDB_MAX_CATEGORIES);
            continue;
        }
        rc = add_entry(L, kind, cat, s, path, line);
    }
    if (rc == 0 && ferror(f))
        rc = fatal(L, "%s: read error", path);
    L->depth--;
    free(buf);
    fclose(f);
    return rc;
}

/* ---- squidGuard/UT1 trees ------------------------------------------------ */

typedef struct catdir {
    char *name;
    char *path;
    char *real;
    int is_link;
} catdir_t;

static int catdir_cmp(const void *a, const void *b)
{
    const catdir_t *x = a, *y = b;

    /* Real directories before symlinks, so a link becomes an alias of the
     * directory it points to; then by name. */
    if (x->is_link != y->is_link)
        return x->is_link - y->is_link;
    return strcmp(x->name, y->name);
}

/* global_usage: "NAME: adult" starts a category's block; "NAME EN:" is
 * its title and "DESC EN:" its description. Descriptive only: lines it
 * does not know are skipped. */
static void load_usage(loader_t *L, const char *path)
{
    struct stat st;
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int cat = -1;

    if (f == NULL) {
        remember(L, path, NULL);
        return;
    }
    if (fstat(fileno(f), &st) == 0)
        remember(L, path, &st);
    while ((n = read_line(f, &buf, &cap)) != -1) {
        char *s;
        if (n < 0)
            continue;
        s = trim(buf);
        if (strncmp(s, "NAME:", 5) == 0) {
            char *name = trim(s + 5);
            lower(name);
            cat = ucdb_builder_find(L->b, name);
        } else if (cat >= 0 && strncmp(s, "NAME EN:", 8) == 0) {
            ucdb_describe(L->b, cat, trim(s + 8), NULL);
        } else if (cat >= 0 && strncmp(s, "DESC EN:", 8) == 0) {
            ucdb_describe(L->b, cat, NULL, trim(s + 8));
        }
    }
    free(buf);
    fclose(f);
}

static const struct {
    const char *file;
    enum entry_kind kind;
} tree_files[] = {
    {"domains", E_DOMAINS},
    {"urls", E_URLS},
    {"expressions", E_EXPRESSIONS},
};

static int load_tree(loader_t *L, const uc_source_t *src)
{
    DIR *d;
    struct dirent *de;
    struct stat st;
    catdir_t *cd = NULL;
    int ncd = 0, capcd = 0, rc = -1;
    char usage[PATH_MAX];

    d = opendir(src->path);
    if (d == NULL)
        return fatal(L, "%s:%d: lists %s: %s", src->file, src->line, src->path,
                     strerror(errno));
    if (fstat(dirfd(d), &st) < 0 || remember(L, src->path, &st) < 0) {
        if (L->err[0] == '\0')
            fatal(L, "%s: %s", src->path, strerror(errno));
        goto done;
    }
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX], real[PATH_MAX];
        struct stat lst;
        int has = 0;

        if (de->d_name[0] == '.')
            continue;
        if (join_path(path, sizeof(path), src->path, de->d_name) < 0 ||
            stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        for (size_t k = 0; k < sizeof(tree_files) / sizeof(tree_files[0]); k++) {
            char f[PATH_MAX];
            has |= join_path(f, sizeof(f), path, tree_files[k].file) == 0 &&
                   access(f, F_OK) == 0;
        }
        if (!has)
            continue;  /* not a category: no list in it */
        if (realpath(path, real) == NULL)
            snprintf(real, sizeof(real), "%s", path);
        if (ncd == capcd) {
            int cap = capcd ? capcd * 2 : 64;
            catdir_t *n = realloc(cd, (size_t)cap * sizeof(*n));
            if (n == NULL) {
                fatal(L, "out of memory");
                goto done;
            }
            cd = n;
            capcd = cap;
        }
        cd[ncd].name = strdup(de->d_name);
        cd[ncd].path = strdup(path);
        cd[ncd].real = strdup(real);
        cd[ncd].is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
        if (!cd[ncd].name || !cd[ncd].path || !cd[ncd].real) {
            ncd++;
            fatal(L, "out of memory");
            goto done;
        }
        lower(cd[ncd].name);
        ncd++;
    }
    qsort(cd, (size_t)ncd, sizeof(*cd), catdir_cmp);
    for (int i = 0; i < ncd; i++) {
        int cat = -1;

        for (int j = 0; j < i && cd[i].is_link; j++) {
            if (strcmp(cd[j].real, cd[i].real) == 0) {
                /* UT1 links some names to others (agressif -> aggressive):
                 * one category under two names, loaded once. */
                cat = ucdb_builder_find(L->b, cd[j].name);
                if (cat >= 0 && ucdb_alias(L->b, cd[i].name, cat) < 0) {
                    fatal(L, "out of memory");
                    goto done;
                }
                break;
            }
        }
        if (cat >= 0)
            continue;
        cat = ucdb_category(L->b, cd[i].name);
        if (cat < 0) {
            fatal(L, "%s: too many categories (at most %d)", src->path,
                  UCDB_MAX_CATEGORIES);
            goto done;
        }
        if (stat(cd[i].path, &st) == 0 && remember(L, cd[i].path, &st) < 0)
            goto done;
        for (size_t k = 0; k < sizeof(tree_files) / sizeof(tree_files[0]); k++) {
            char f[PATH_MAX];
            if (join_path(f, sizeof(f), cd[i].path, tree_files[k].file) < 0 ||
                access(f, F_OK) != 0)
                continue;
            if (load_plain(L, f, tree_files[k].kind, cat) < 0)
                goto done;
        }
    }
    if (join_path(usage, sizeof(usage), src->path, "global_usage") == 0)
        load_usage(L, usage);
    rc = 0;
done:
    for (int i = 0; i < ncd; i++) {
        free(cd[i].name);
        free(cd[i].path);
        free(cd[i].real);
    }
    free(cd);
    closedir(d);
    return rc;
}

/* ---- the whole load ------------------------------------------------------ */

/* The category a list directive names (fixed), or -1 with its file's base
 * name in defname: the lines of the file take that until a
 * "#listcategory:" names another, and a file that names one at its top
 * never creates the base-name category. Returns 0 or -1. */
static int source_category(loader_t *L, const uc_source_t *s, int *cat,
                           char *defname, size_t len)
{
    const char *base = strrchr(s->path, '/');

    *cat = -1;
    snprintf(defname, len, "%s", base ? base + 1 : s->path);
    lower(defname);
    if (s->kind == UC_SRC_ALLOW)
        snprintf(defname, len, "allow:%s", s->path);
    else if (s->category)
        snprintf(defname, len, "%s", s->category);
    else
        return 0;
    *cat = ucdb_category(L->b, defname);
    if (*cat < 0)
        return fatal(L, "%s:%d: too many categories (at most %d)", s->file, s->line,
                     UCDB_MAX_CATEGORIES);
    return 0;
}

/* Resolves names into set; unknown names are errors. */
static int resolve(loader_t *L, const ucdb_t *db, const uc_name_t *names, int n,
                   const char *what, ucset_t *set)
{
    for (int i = 0; i < n; i++) {
        /* Exception lists are categories inside, but not names to block. */
        int c = strncmp(names[i].name, "allow:", 6) == 0 ? -1
                                                           : ucdb_find(db, names[i].name);
        if (c < 0) {
            char known[512];
            size_t k = 0;
            known[0] = '\0';
            for (int j = 0; j < ucdb_ncategories(db) && k < sizeof(known) - 64; j++) {
                if (strncmp(ucdb_name(db, j), "allow:", 6) == 0)
                    continue;
                k += (size_t)snprintf(known + k, sizeof(known) - k, "%s%s",
                                      k ? ", " : "", ucdb_name(db, j));
            }
            return fatal(L, "%s:%d: %s: unknown category '%s' (the lists have: %s)",
                         names[i].file, names[i].line, what, names[i].name,
                         known[0] ? known : "none");
        }
        ucset_add(set, c);
    }
    return 0;
}

static int resolve_policies(loader_t *L, const ucdb_t *db)
{
    const uc_conf_t *conf = L->conf;
    uc_lists_t *l = L->l;

    l->npol = conf->npol;
    l->block = calloc((size_t)conf->npol, sizeof(ucset_t));
    l->allow = calloc((size_t)conf->npol, sizeof(ucset_t));
    l->want = calloc((size_t)conf->npol, sizeof(ucset_t));
    if (!l->block || !l->allow || !l->want)
        return fatal(L, "out of memory");
    for (int p = 0; p < conf->npol; p++) {
        const uc_policy_t *pol = &conf->pol[p];
        if (resolve(L, db, pol->block, pol->nblock, "block", &l->block[p]) < 0 ||
            resolve(L, db, pol->allow_cat, pol->nallow_cat, "allow_category",
                    &l->allow[p]) < 0)
            return -1;
        /* The top level's exceptions apply to every policy. */
        if (p > 0 && resolve(L, db, conf->pol[0].allow_cat, conf->pol[0].nallow_cat,
                             "allow_category", &l->allow[p]) < 0)
            return -1;
        for (int pass = 0; pass < 2; pass++) {
            const uc_policy_t *q = pass ? pol : &conf->pol[0];
            if (pass && p == 0)
                break;
            for (int i = 0; i < q->nallow_src; i++) {
                char name[PATH_MAX + 8];
                int c;
                snprintf(name, sizeof(name), "allow:%s", conf->src[q->allow_src[i]].path);
                c = ucdb_find(db, name);
                if (c >= 0)
                    ucset_add(&l->allow[p], c);
            }
        }
        for (int w = 0; w < UCDB_WORDS; w++)
            l->want[p].w[w] = l->block[p].w[w] | l->allow[p].w[w];
    }
    for (int c = 0; c < ucdb_ncategories(db); c++)
        if (strncmp(ucdb_name(db, c), "allow:", 6) == 0)
            ucset_add(&l->internal, c);
    return 0;
}

static uint64_t sig_of(const uc_filestat_t *f, int n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (int i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)f[i].path;
        int64_t v[4] = {f[i].mtime_ns, f[i].size, (int64_t)f[i].ino, f[i].exists};
        for (; *p; p++)
            h = (h ^ *p) * 0x100000001b3ull;
        for (int k = 0; k < 4; k++)
            for (int b = 0; b < 8; b++)
                h = (h ^ (uint8_t)((uint64_t)v[k] >> (8 * b))) * 0x100000001b3ull;
    }
    return h;
}

uint64_t uc_lists_stat_sig(const uc_lists_t *l)
{
    uc_filestat_t *now = calloc((size_t)(l->nfiles ? l->nfiles : 1), sizeof(*now));
    uint64_t h;

    if (now == NULL)
        return l->sig;  /* no memory to compare: report no change */
    for (int i = 0; i < l->nfiles; i++) {
        struct stat st;
        now[i].path = l->files[i].path;
        if (stat(l->files[i].path, &st) == 0) {
            now[i].exists = 1;
            now[i].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            now[i].size = (int64_t)st.st_size;
            now[i].ino = (uint64_t)st.st_ino;
        }
    }
    h = sig_of(now, l->nfiles);
    free(now);
    return h;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uc_lists_t *uc_lists_load(const uc_conf_t *conf, uc_warn_fn warn, void *arg,
                          char *err, size_t errlen)
{
    loader_t L;
    double t0 = now_s();
    uc_lists_t *l = calloc(1, sizeof(*l));

    memset(&L, 0, sizeof(L));
    L.conf = conf;
    L.l = l;
    L.warn = warn;
    L.warn_arg = arg;
    L.err = err;
    L.errlen = errlen;
    err[0] = '\0';
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    L.b = ucdb_builder_new(conf->caseless);
    if (L.b == NULL) {
        fatal(&L, "out of memory");
        goto fail;
    }
    for (int i = 0; i < conf->nsrc; i++) {
        const uc_source_t *s = &conf->src[i];
        char defname[PATH_MAX + 8];
        enum entry_kind kind;
        int cat, fixed;

        if (s->kind == UC_SRC_TREE) {
            if (load_tree(&L, s) < 0)
                goto fail;
            continue;
        }
        if (source_category(&L, s, &cat, defname, sizeof(defname)) < 0)
            goto fail;
        fixed = cat >= 0;
        switch (s->kind) {
        case UC_SRC_DOMAINS:
            kind = E_DOMAINS;
            break;
        case UC_SRC_URLS:
            kind = E_URLS;
            break;
        case UC_SRC_EXPRESSIONS:
            kind = E_EXPRESSIONS;
            break;
        default:
            kind = E_ANY;
            break;
        }
        if (load_e2(&L, s->path, kind, cat, defname, fixed, s->file, s->line) < 0)
            goto fail;
    }
    l->db = ucdb_build(L.b, err, errlen);
    L.b = NULL;
    if (l->db == NULL)
        goto fail;
    if (resolve_policies(&L, l->db) < 0)
        goto fail;
    l->sig = sig_of(l->files, l->nfiles);
    l->load_s = now_s() - t0;
    return l;
fail:
    ucdb_builder_free(L.b);
    uc_lists_free(l);
    if (err[0] == '\0')
        snprintf(err, errlen, "cannot load the lists");
    return NULL;
}

void uc_lists_free(uc_lists_t *l)
{
    if (l == NULL)
        return;
    ucdb_free(l->db);
    free(l->block);
    free(l->allow);
    free(l->want);
    for (int i = 0; i < l->nfiles; i++)
        free(l->files[i].path);
    free(l->files);
    free(l);
}

/* The resident set of the process in KiB, or 0. */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

void uc_lists_summary(const uc_lists_t *l, char *buf, size_t len)
{
    ucdb_stats_t st;
    int ncat = 0;

    ucdb_get_stats(l->db, &st);
    for (int c = 0; c < st.categories; c++)
        ncat += !ucset_has(&l->internal, c);
    snprintf(buf, len,
             "lists loaded in %.2f s: %zu domains, %zu urls, %zu expressions, "
             "%zu address ranges in %d categories (%d exception lists), "
             "%zu duplicates%s%zu skipped, %.1f MiB (process RSS %.1f MiB)",
             l->load_s, st.domains, st.urls, st.expressions, st.ranges, ncat,
             st.categories - ncat, st.dups, ", ", l->skipped,
             (double)st.bytes / 1048576.0, (double)rss_kib() / 1024.0);
}
