/* regex.c - PCRE2 pattern lists (banned URLs, user agents): per-line errors, one JIT-compiled matcher. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banlist.h"

/*
 * Each pattern is compiled alone first, so a mistake is reported with its
 * file, line and offset. Matching then runs one alternation of all of them
 * ("(?:p1)|(?:p2)|..."), JIT-compiled: one pass over the subject instead
 * of one per pattern. Only after a hit are the single patterns tried, to
 * name the one that matched in the log. A list with a pattern that would
 * mean something else inside an alternation, or too big for one pattern,
 * falls back to matching each pattern in turn (see combinable()).
 */

#define RE_OPTS (PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF)

typedef struct re_item {
    char *pattern;
    char *where;        /* "FILE:LINE" */
    pcre2_code *code;
} re_item_t;

struct bl_relist {
    re_item_t *v;
    size_t n, cap;
    pcre2_code *all;    /* the alternation, or NULL: match one by one */
};

bl_relist_t *bl_relist_new(void)
{
    return calloc(1, sizeof(bl_relist_t));
}

static pcre2_code *compile(const char *pattern, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re;

    re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, RE_OPTS, &code,
                       &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "invalid pattern '%.200s': %s at offset %zu", pattern,
                 (const char *)msg, (size_t)off);
        return NULL;
    }
    /* JIT is an optimisation: without it (no JIT on this CPU) the
     * interpreter gives the same answers. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

int bl_relist_add(bl_relist_t *l, const char *pattern, const char *where,
                  char *err, size_t errlen)
{
    re_item_t *it;

    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        re_item_t *v = realloc(l->v, ncap * sizeof(*v));
        if (v == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        l->v = v;
        l->cap = ncap;
    }
    it = &l->v[l->n];
    memset(it, 0, sizeof(*it));
    it->code = compile(pattern, err, errlen);
    if (it->code == NULL)
        return -1;
    it->pattern = strdup(pattern);
    it->where = strdup(where ? where : "?");
    if (it->pattern == NULL || it->where == NULL) {
        pcre2_code_free(it->code);
        free(it->pattern);
        free(it->where);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->n++;
    return 0;
}

/* 1 when pattern means the same inside "(?:...)|" as alone. Not so for
 * numbered backreferences (they would point at another group), numbered
 * subroutine calls and recursion ("(?1)", "(?R)", "\g<1>": another group,
 * or the whole alternation), "\Q" without "\E" (it would quote the
 * closing parenthesis), verbs such as "(*ACCEPT)", and extended mode
 * "(?x)", whose '#' comments would swallow the rest of the alternation.
 * Such lists are matched one by one. */
static int combinable(const pcre2_code *re, const char *pattern)
{
    uint32_t backrefmax = 0;

    pcre2_pattern_info(re, PCRE2_INFO_BACKREFMAX, &backrefmax);
    if (backrefmax > 0 || strstr(pattern, "\\Q") || strstr(pattern, "(*") ||
        strstr(pattern, "\\g<") || strstr(pattern, "\\g'"))
        return 0;
    for (const char *p = strstr(pattern, "(?"); p; p = strstr(p + 2, "(?"))
        if (p[2] == 'R' || (p[2] >= '0' && p[2] <= '9'))
            return 0;
    for (const char *p = strstr(pattern, "(?"); p; p = strstr(p + 2, "(?")) {
        for (const char *q = p + 2; *q && *q != ')' && *q != ':'; q++)
            if (*q == 'x')
                return 0;
    }
    return 1;
}

int bl_relist_finish(bl_relist_t *l, char *err, size_t errlen)
{
    size_t len = 1;
    char *all, *p;
    char msg[512];

    (void)err;
    (void)errlen;
    pcre2_code_free(l->all);
    l->all = NULL;
    if (l->n < 2)
        return 0;
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->v[i].pattern) + 6;
    all = malloc(len);
    if (all == NULL)
        return 0;  /* one by one still works */
    p = all;
    for (size_t i = 0; i < l->n; i++) {
        size_t pl = strlen(l->v[i].pattern);
        if (i)
            *p++ = '|';
        memcpy(p, "(?:", 3);
        p += 3;
        memcpy(p, l->v[i].pattern, pl);
        p += pl;
        *p++ = ')';
    }
    *p = '\0';
    for (size_t i = 0; i < l->n; i++) {
        if (!combinable(l->v[i].code, l->v[i].pattern)) {
            free(all);
            return 0;
        }
    }
    l->all = compile(all, msg, sizeof(msg));
    free(all);
    return 0;
}

static int match_one(const pcre2_code *re, const char *s, size_t len)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc;

    if (md == NULL)
        return 0;
    rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

int bl_relist_match(const bl_relist_t *l, const char *subject, size_t len,
                    const char **where)
{
    if (l == NULL || l->n == 0)
        return 0;
    if (l->all && !match_one(l->all, subject, len))
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        if (match_one(l->v[i].code, subject, len)) {
            if (where)
                *where = l->v[i].where;
            return 1;
        }
    }
    return 0;
}

size_t bl_relist_count(const bl_relist_t *l)
{
    return l ? l->n : 0;
}

void bl_relist_free(bl_relist_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        pcre2_code_free(l->v[i].code);
        free(l->v[i].pattern);
        free(l->v[i].where);
    }
    free(l->v);
    pcre2_code_free(l->all);
    free(l);
}
