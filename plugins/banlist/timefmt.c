/* timefmt.c - durations and wall-clock times as admins read them, and the state file's timestamps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banlist.h"

int64_t bl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bl_now_coarse_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *bl_fmt_duration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    const size_t nunits = sizeof(units) / sizeof(units[0]);
    int64_t left;

    if (ms < 0)
        ms = 0;
    /* Whole seconds, rounded up: "1s" left rather than "0s" left. */
    left = (ms + 999) / 1000 * 1000;
    snprintf(buf, len, "0s");
    for (size_t i = 0; i < nunits; i++) {
        int64_t v = left / units[i].ms, v2;
        if (v == 0)
            continue;
        left -= v * units[i].ms;
        v2 = i + 1 < nunits ? left / units[i + 1].ms : 0;
        if (v2 > 0)
            snprintf(buf, len, "%lld%s%lld%s", (long long)v, units[i].unit,
                     (long long)v2, units[i + 1].unit);
        else
            snprintf(buf, len, "%lld%s", (long long)v, units[i].unit);
        break;
    }
    return buf;
}

char *bl_fmt_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

char *bl_fmt_iso(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];

    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, (int)(ms % 1000));
    return buf;
}

int bl_parse_iso(const char *s, int64_t *ms)
{
    struct tm tm;
    const char *p;
    int frac = 0;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return -1;
    if (*p == '.') {
        int digits = 0;
        p++;
        while (*p >= '0' && *p <= '9' && digits < 3) {
            frac = frac * 10 + (*p++ - '0');
            digits++;
        }
        if (digits != 3)
            return -1;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    t = timegm(&tm);
    if (t == (time_t)-1 || t < 0)
        return -1;
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}
