/* confval.c - directive value parsers: sizes, durations, flags, integers (see confval.h). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "confval.h"

/* Shows at most this much of a bad value in a message. */
#define SHOW "%.64s"

/* Reads the decimal digits at *p into *out and moves *p past them; returns
 * the count of digits, or -1 when the value does not fit in uint64_t. */
static int read_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    int n = 0, overflow = 0;

    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = 1;
        v = v * 10 + d;
        s++;
        n++;
    }
    *p = s;
    *out = v;
    return overflow ? -1 : n;
}

int conf_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
    const char *p = s;
    uint64_t v, mult = 1;
    int n = read_digits(&p, &v);

    if (n < 0)
        goto too_large;
    if (n == 0)
        goto invalid;
    switch (*p) {
    case '\0':
        break;
    case 'k': case 'K':
        mult = 1024;
        p++;
        break;
    case 'm': case 'M':
        mult = 1024 * 1024;
        p++;
        break;
    case 'g': case 'G':
        mult = 1024 * 1024 * 1024;
        p++;
        break;
    default:
        goto invalid;
    }
    if (*p != '\0')
        goto invalid;
    if (v > UINT64_MAX / mult)
        goto too_large;
    *out = v * mult;
    return 0;

invalid:
    snprintf(err, errlen, "invalid size '" SHOW "' (use a number with k, m or g)", s);
    return -1;
too_large:
    snprintf(err, errlen, "size '" SHOW "' is too large", s);
    return -1;
}

int conf_parse_duration(const char *s, uint64_t *out_ms, char *err,
                        size_t errlen)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {
        /* Largest first; "ms" before "m" so the longer unit wins. */
        {"d", 86400000}, {"h", 3600000}, {"ms", 1}, {"m", 60000}, {"s", 1000},
    };
    /* Rank of each unit in units[] by size, to insist on largest first. */
    static const int rank[] = {5, 4, 1, 3, 2};
    const char *p = s;
    uint64_t total = 0;
    int last_rank = 6;

    for (;;) {
        uint64_t v;
        size_t i;
        int n = read_digits(&p, &v);

        if (n < 0)
            goto too_large;
        if (n == 0)
            goto invalid;
        if (*p == '\0') {
            /* A bare number is seconds, and only on its own. */
            if (p - s != n)
                goto invalid;
            if (v > UINT64_MAX / 1000)
                goto too_large;
            *out_ms = v * 1000;
            return 0;
        }
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, ul) == 0 &&
                (p[ul] == '\0' || (p[ul] >= '0' && p[ul] <= '9')))
                break;
        }
        if (i == sizeof(units) / sizeof(units[0]) || rank[i] >= last_rank)
            goto invalid;
        last_rank = rank[i];
        p += strlen(units[i].unit);
        if (v > UINT64_MAX / units[i].ms)
            goto too_large;
        v *= units[i].ms;
        if (total > UINT64_MAX - v)
            goto too_large;
        total += v;
        if (*p == '\0')
            break;
    }
    *out_ms = total;
    return 0;

invalid:
    snprintf(err, errlen,
             "invalid duration '" SHOW "' (use a number with ms, s, m, h or d)", s);
    return -1;
too_large:
    snprintf(err, errlen, "duration '" SHOW "' is too large", s);
    return -1;
}

int conf_parse_flag(const char *s, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"on", "yes", "true", "1"};
    static const char *const no[] = {"off", "no", "false", "0"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    snprintf(err, errlen, "invalid flag '" SHOW "' (use on or off)", s);
    return -1;
}

int conf_parse_int(const char *s, long min, long max, long *out, char *err,
                   size_t errlen)
{
    const char *p = s;
    int neg = 0;
    uint64_t v;
    long r;
    int n;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    n = read_digits(&p, &v);
    if (n == 0 || *p != '\0')
        goto invalid;
    /* Too many digits for a long is simply out of range. */
    if (n < 0 || (!neg && v > (uint64_t)LONG_MAX) ||
        (neg && v > (uint64_t)LONG_MAX + 1))
        goto range;
    if (neg)
        r = v == (uint64_t)LONG_MAX + 1 ? LONG_MIN : -(long)v;
    else
        r = (long)v;
    if (r < min || r > max)
        goto range;
    *out = r;
    return 0;

invalid:
    snprintf(err, errlen, "invalid number '" SHOW "'", s);
    return -1;
range:
    snprintf(err, errlen, "'" SHOW "' is out of range (%ld..%ld)", s, min, max);
    return -1;
}
