/* exprset.c - urlcat's expression sets: PCRE2 (JIT) patterns per category behind a literal prefilter. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "exprset.h"

/* Expression matches give up after this many backtracking steps (a
 * pathological pattern must not stall a worker loop). */
#define MATCH_LIMIT 100000
#define DEPTH_LIMIT 10000

#define MIN_LITERAL 3
#define BUCKETS 4096    /* literal index: 12-bit hash of the first 3 bytes */

typedef struct expr {
    char *src;
    pcre2_code *code;
    int cat;
    char *lit;            /* required literal (lowercase), or NULL */
    size_t litlen;
    int next;             /* next literal in its bucket, or -1 */
} expr_t;

/* The expressions of one category that have no literal: one code, or
 * several when they cannot be joined. */
typedef struct always {
    int cat;
    int n;
    pcre2_code **codes;
} always_t;

struct exprset {
    int caseless;
    expr_t *e;
    int n, cap;
    int heads[BUCKETS];   /* first expression with a literal in the bucket */
    always_t *always;
    int nalways;
    pcre2_match_context *mctx;
};

static inline unsigned char lc(unsigned char c)
{
    return (unsigned char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
}

static inline unsigned tri(const unsigned char *p)
{
    return ((unsigned)lc(p[0]) * 961u + (unsigned)lc(p[1]) * 31u + lc(p[2])) & (BUCKETS - 1);
}

/* Skips a group "(...)" or class "[...]" starting at p; returns the byte
 * after it, or the end of the string when it is unterminated. */
static const char *skip_class(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;  /* a ']' first is literal */
    while (*p && *p != ']') {
        if (*p == '\\' && p[1])
            p++;
        else if (p[0] == '[' && p[1] == ':') {
            const char *e = strstr(p + 2, ":]");
            if (e)
                p = e + 1;
        }
        p++;
    }
    return *p ? p + 1 : p;
}

static const char *skip_group(const char *p)
{
    int depth = 0;

    while (*p) {
        if (*p == '\\' && p[1]) {
            p += 2;
            continue;
        }
        if (*p == '[') {
            p = skip_class(p);
            continue;
        }
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            return p + 1;
        p++;
    }
    return p;
}

int exprset_required_literal(const char *re, char *out, size_t outlen)
{
    char run[256], best[256];
    size_t rl = 0, bl = 0;
    const char *p = re;

    /* Inline options ("(?x)" makes spaces meaningless, "(?i)" changes
     * case) change what the bytes mean: no literal then. */
    for (const char *q = strstr(re, "(?"); q; q = strstr(q + 2, "(?"))
        if (q[2] && strchr("imnsxJU^-", q[2]))
            return -1;
    /* A top-level alternation has no literal every match needs. */
    for (const char *q = re; *q;) {
        if (*q == '\\' && q[1])
            q += 2;
        else if (*q == '[')
            q = skip_class(q);
        else if (*q == '(')
            q = skip_group(q);
        else if (*q == '|')
            return -1;
        else
            q++;
    }
    while (*p) {
        int lit = -1;  /* the literal byte of this atom, or -1 */

        if (*p == '\\') {
            unsigned char c = (unsigned char)p[1];
            if (c == '\0')
                break;
            /* Escaped punctuation is a literal; \d, \b, \x41, \Q... are not
             * (conservative: a missed literal only costs speed). */
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9')))
                lit = c;
            p += 2;
        } else if (*p == '[') {
            p = skip_class(p);
        } else if (*p == '(') {
            p = skip_group(p);
        } else if (strchr(".^$", *p)) {
            p++;
        } else if (strchr("?*+{", *p)) {
            /* A quantifier: the atom before it may be absent or repeated,
             * so it leaves the run. */
            if (rl > 0)
                rl--;
            if (rl > bl) {
                memcpy(best, run, rl);
                bl = rl;
            }
            rl = 0;
            if (*p == '{') {
                /* {n}, {n,}, {n,m}: skip it whole; a '{' that is no
                 * quantifier just ends the run. */
                const char *q = p + 1;
                while ((*q >= '0' && *q <= '9') || *q == ',')
                    q++;
                p = *q == '}' && q > p + 1 ? q + 1 : p + 1;
            } else {
                p++;
            }
            continue;
        } else {
            lit = (unsigned char)*p++;
        }
        if (lit >= 0 && rl < sizeof(run)) {
            run[rl++] = (char)lc((unsigned char)lit);
            /* The next byte may quantify this one: decided there. */
            continue;
        }
        if (rl > bl) {
            memcpy(best, run, rl);
            bl = rl;
        }
        rl = 0;
    }
    if (rl > bl) {
        memcpy(best, run, rl);
        bl = rl;
    }
    if (bl < MIN_LITERAL || bl + 1 > outlen)
        return -1;
    memcpy(out, best, bl);
    out[bl] = '\0';
    return 0;
}

exprset_t *exprset_new(int caseless)
{
    exprset_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->caseless = caseless;
    for (int i = 0; i < BUCKETS; i++)
        s->heads[i] = -1;
    return s;
}

int exprset_add(exprset_t *s, const char *re, int cat, char *err, size_t errlen)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *code;
    char lit[256];

    code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                         s->caseless ? PCRE2_CASELESS : 0, &errcode, &erroff, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        snprintf(err, errlen, "invalid expression at offset %zu: %s", (size_t)erroff,
                 (const char *)msg);
        return -1;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        expr_t *e = realloc(s->e, (size_t)cap * sizeof(*e));
        if (e == NULL)
            goto oom;
        s->e = e;
        s->cap = cap;
    }
    memset(&s->e[s->n], 0, sizeof(s->e[s->n]));
    s->e[s->n].src = strdup(re);
    if (s->e[s->n].src == NULL)
        goto oom;
    if (exprset_required_literal(re, lit, sizeof(lit)) == 0) {
        s->e[s->n].lit = strdup(lit);
        if (s->e[s->n].lit == NULL) {
            free(s->e[s->n].src);
            goto oom;
        }
        s->e[s->n].litlen = strlen(lit);
    }
    s->e[s->n].code = code;
    s->e[s->n].cat = cat;
    s->e[s->n].next = -1;
    s->n++;
    return 0;
oom:
    pcre2_code_free(code);
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* 1 when a pattern can join an alternation: no back references (their
 * numbers would shift) and no leading (*VERB) settings. */
static int combinable(const expr_t *e)
{
    uint32_t backref = 0;

    if (strncmp(e->src, "(*", 2) == 0)
        return 0;
    return pcre2_pattern_info(e->code, PCRE2_INFO_BACKREFMAX, &backref) == 0 &&
           backref == 0;
}

/* Builds the always-run codes of category cat. Returns 0 or -1. */
static int build_always(exprset_t *s, int cat)
{
    always_t *a;
    int n = 0, all = 1;
    size_t len = 0;

    for (int i = 0; i < s->n; i++) {
        if (s->e[i].cat != cat || s->e[i].lit)
            continue;
        n++;
        all &= combinable(&s->e[i]);
        len += strlen(s->e[i].src) + 6;
    }
    if (n == 0)
        return 0;
    a = &s->always[s->nalways];
    a->cat = cat;
    a->codes = calloc((size_t)n, sizeof(*a->codes));
    if (a->codes == NULL)
        return -1;
    s->nalways++;
    if (all && n > 1) {
        char *src = malloc(len + 1), *p = src;
        int errcode;
        PCRE2_SIZE erroff;
        pcre2_code *code;

        if (src == NULL)
            return -1;
        for (int i = 0; i < s->n; i++)
            if (s->e[i].cat == cat && !s->e[i].lit)
                p += sprintf(p, "%s(?:%s)", p == src ? "" : "|", s->e[i].src);
        code = pcre2_compile((PCRE2_SPTR)src, (PCRE2_SIZE)(p - src),
                             s->caseless ? PCRE2_CASELESS : 0, &errcode, &erroff, NULL);
        free(src);
        if (code) {
            pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
            a->codes[a->n++] = code;
            return 0;
        }
        /* Only valid alone: one code each. */
    }
    for (int i = 0; i < s->n; i++) {
        if (s->e[i].cat != cat || s->e[i].lit)
            continue;
        a->codes[a->n++] = s->e[i].code;
        s->e[i].code = NULL;  /* owned by the always list now */
    }
    return 0;
}

int exprset_build(exprset_t *s)
{
    int maxcat = -1;

    s->mctx = pcre2_match_context_create(NULL);
    if (s->mctx == NULL)
        return -1;
    pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, DEPTH_LIMIT);
    for (int i = 0; i < s->n; i++) {
        expr_t *e = &s->e[i];
        if (e->cat > maxcat)
            maxcat = e->cat;
        if (e->lit) {
            unsigned b = tri((const unsigned char *)e->lit);
            pcre2_jit_compile(e->code, PCRE2_JIT_COMPLETE);
            e->next = s->heads[b];
            s->heads[b] = i;
        }
    }
    if (maxcat >= 0) {
        s->always = calloc((size_t)maxcat + 1, sizeof(*s->always));
        if (s->always == NULL)
            return -1;
        for (int c = 0; c <= maxcat; c++)
            if (build_always(s, c) < 0)
                return -1;
        for (int i = 0; i < s->nalways; i++)
            for (int k = 0; k < s->always[i].n; k++)
                pcre2_jit_compile(s->always[i].codes[k], PCRE2_JIT_COMPLETE);
    }
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].src);
        s->e[i].src = NULL;
    }
    return 0;
}

/* Runs code on url: 1 match, 0 none, 2 match limit (counted as a match:
 * an expression list must not be evaded by a URL built to exhaust it). */
static int run(const exprset_t *s, pcre2_code *code, const char *url, size_t len,
               pcre2_match_data **md)
{
    int rc;

    if (*md == NULL && (*md = pcre2_match_data_create(1, NULL)) == NULL)
        return 0;
    rc = pcre2_match(code, (PCRE2_SPTR)url, len, 0, 0, *md, s->mctx);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ? 2 : 0;
}

static int wanted(const ucset_t *want, const ucset_t *out, int cat)
{
    return (want == NULL || ucset_has(want, cat)) && !ucset_has(out, cat);
}

int exprset_match(const exprset_t *s, const char *url, size_t len, const ucset_t *want,
                  ucset_t *out)
{
    const unsigned char *u = (const unsigned char *)url;
    pcre2_match_data *md = NULL;
    uint64_t tried_stack[64], *tried = tried_stack;
    int limits = 0;

    if (s == NULL || s->n == 0)
        return 0;
    /* Each pattern runs at most once per URL, however often its literal
     * occurs in it. */
    if ((size_t)s->n > sizeof(tried_stack) * 8) {
        tried = calloc(((size_t)s->n + 63) / 64, sizeof(*tried));
        if (tried == NULL)
            return 0;
    } else {
        memset(tried_stack, 0, sizeof(tried_stack));
    }
    /* One pass: at each position, the literals starting with these three
     * bytes (any case) are compared; a hit runs its pattern. */
    for (size_t i = 0; i + MIN_LITERAL <= len; i++) {
        for (int k = s->heads[tri(u + i)]; k >= 0; k = s->e[k].next) {
            const expr_t *e = &s->e[k];
            size_t j;
            int r;
            if (e->litlen > len - i || !wanted(want, out, e->cat) ||
                (tried[k >> 6] >> (k & 63)) & 1)
                continue;
            for (j = 0; j < e->litlen && lc(u[i + j]) == (unsigned char)e->lit[j]; j++)
                ;
            if (j < e->litlen)
                continue;
            tried[k >> 6] |= 1ull << (k & 63);
            r = run(s, e->code, url, len, &md);
            if (r) {
                limits += r == 2;
                ucset_add(out, e->cat);
            }
        }
    }
    for (int i = 0; i < s->nalways; i++) {
        const always_t *a = &s->always[i];
        if (!wanted(want, out, a->cat))
            continue;
        for (int k = 0; k < a->n; k++) {
            int r = run(s, a->codes[k], url, len, &md);
            if (r) {
                limits += r == 2;
                ucset_add(out, a->cat);
                break;
            }
        }
    }
    pcre2_match_data_free(md);
    if (tried != tried_stack)
        free(tried);
    return limits;
}

size_t exprset_count(const exprset_t *s)
{
    return s ? (size_t)s->n : 0;
}

static size_t code_bytes(const pcre2_code *c)
{
    size_t sz = 0, jsz = 0;

    if (c == NULL)
        return 0;
    pcre2_pattern_info(c, PCRE2_INFO_SIZE, &sz);
    pcre2_pattern_info(c, PCRE2_INFO_JITSIZE, &jsz);
    return sz + jsz;
}

size_t exprset_bytes(const exprset_t *s)
{
    size_t b;

    if (s == NULL)
        return 0;
    b = sizeof(*s) + (size_t)s->cap * sizeof(expr_t);
    for (int i = 0; i < s->n; i++)
        b += code_bytes(s->e[i].code) + s->e[i].litlen;
    for (int i = 0; i < s->nalways; i++)
        for (int k = 0; k < s->always[i].n; k++)
            b += code_bytes(s->always[i].codes[k]);
    return b;
}

void exprset_free(exprset_t *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->n; i++) {
        pcre2_code_free(s->e[i].code);
        free(s->e[i].src);
        free(s->e[i].lit);
    }
    free(s->e);
    for (int i = 0; i < s->nalways; i++) {
        for (int k = 0; k < s->always[i].n; k++)
            pcre2_code_free(s->always[i].codes[k]);
        free(s->always[i].codes);
    }
    free(s->always);
    pcre2_match_context_free(s->mctx);
    free(s);
}
