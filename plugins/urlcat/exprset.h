/* exprset.h - urlcat's expression sets: PCRE2 (JIT) patterns per category behind a literal prefilter. */
#ifndef URLCAT_EXPRSET_H
#define URLCAT_EXPRSET_H

#include <stddef.h>

#include "db.h"

/*
 * List expressions are mostly a word between separators
 * ("(^|[-/_.])casino([-/_.]|$)"): each needs a literal that any match must
 * contain. Those literals are indexed by their first three bytes, so one
 * pass over a URL finds the few patterns worth running; a URL that holds
 * none of them runs no regular expression at all. Patterns without such a
 * literal (three bytes or more, outside groups, classes, alternations and
 * quantifiers) run on every URL, joined per category into one alternation
 * when they allow it. The literal test ignores case, so it can only let
 * more URLs through to PCRE2, never fewer.
 */

typedef struct exprset exprset_t;

exprset_t *exprset_new(int caseless);
/* Compiles re for cat. Returns 0, or -1 with "invalid expression at
 * offset N: message" in err. */
int exprset_add(exprset_t *s, const char *re, int cat, char *err, size_t errlen);
/* Freezes the set: JIT, combinations, the literal index. Returns 0 or -1
 * (out of memory). */
int exprset_build(exprset_t *s);
/* Adds to out every category of want (NULL: all) not in out yet whose
 * expressions match url. Returns how many matches hit PCRE2's match limit
 * (they count as matches). Thread-safe after exprset_build(). */
int exprset_match(const exprset_t *s, const char *url, size_t len, const ucset_t *want,
                  ucset_t *out);
size_t exprset_count(const exprset_t *s);   /* patterns added */
size_t exprset_bytes(const exprset_t *s);   /* compiled size, JIT included */
void exprset_free(exprset_t *s);

/* The longest literal (lowercased, at least 3 bytes) every match of re must
 * contain, into out; 0, or -1 when there is none. Exposed for the tests. */
int exprset_required_literal(const char *re, char *out, size_t outlen);

#endif
