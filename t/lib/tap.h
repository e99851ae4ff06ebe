/* tap.h - a tiny TAP producer for the C unit tests (header only). */
#ifndef PC_TAP_H
#define PC_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static void tap_vok(int cond, const char *fmt, va_list ap)
{
    tap_count++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_count);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
}

/* ok(cond, "name %d", ...): one test point; returns cond. */
static inline int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vok(cond, fmt, ap);
    va_end(ap);
    return cond;
}

static inline void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* is_int(got, expected, name): compares integers and shows both on failure. */
#define is_int(got, exp, ...)                                              \
    do {                                                                   \
        long long tap_g_ = (long long)(got), tap_e_ = (long long)(exp);    \
        if (!ok(tap_g_ == tap_e_, __VA_ARGS__))                            \
            diag("  got: %lld, expected: %lld", tap_g_, tap_e_);           \
    } while (0)

/* is_str(got, expected, name): compares strings (NULL allowed). */
#define is_str(got, exp, ...)                                              \
    do {                                                                   \
        const char *tap_g_ = (got), *tap_e_ = (exp);                       \
        int tap_same_ = (tap_g_ == NULL || tap_e_ == NULL)                 \
                            ? tap_g_ == tap_e_                             \
                            : strcmp(tap_g_, tap_e_) == 0;                 \
        if (!ok(tap_same_, __VA_ARGS__))                                   \
            diag("  got: '%s', expected: '%s'", tap_g_ ? tap_g_ : "(null)", \
                 tap_e_ ? tap_e_ : "(null)");                              \
    } while (0)

/* Prints the plan and returns the exit status for main(). */
static inline int done_testing(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif
