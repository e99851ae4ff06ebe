/* confval_test.c - unit tests for lib/confval.c: sizes, durations, flags, integers. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "confval.h"
#include "tap.h"

static void size_ok(const char *s, uint64_t want)
{
    uint64_t v = 12345;
    char err[128] = "";

    if (!ok(conf_parse_size(s, &v, err, sizeof(err)) == 0 && v == want, "size '%s'", s))
        diag("  got %llu (%s), expected %llu", (unsigned long long)v, err,
             (unsigned long long)want);
}

static void size_bad(const char *s, const char *msg)
{
    uint64_t v = 777;
    char err[128] = "";

    is_int(conf_parse_size(s, &v, err, sizeof(err)), -1, "size refuses '%s'", s);
    is_str(err, msg, "size message for '%s'", s);
    is_int(v, 777, "size '%s' leaves the output alone", s);
}

static void dur_ok(const char *s, uint64_t want)
{
    uint64_t v = 12345;
    char err[128] = "";

    if (!ok(conf_parse_duration(s, &v, err, sizeof(err)) == 0 && v == want, "duration '%s'", s))
        diag("  got %llu (%s), expected %llu", (unsigned long long)v, err,
             (unsigned long long)want);
}

static void dur_bad(const char *s, const char *msg)
{
    uint64_t v = 777;
    char err[128] = "";

    is_int(conf_parse_duration(s, &v, err, sizeof(err)), -1, "duration refuses '%s'", s);
    is_str(err, msg, "duration message for '%s'", s);
    is_int(v, 777, "duration '%s' leaves the output alone", s);
}

static void int_ok(const char *s, long min, long max, long want)
{
    long v = 12345;
    char err[128] = "";

    if (!ok(conf_parse_int(s, min, max, &v, err, sizeof(err)) == 0 && v == want, "int '%s'", s))
        diag("  got %ld (%s), expected %ld", v, err, want);
}

static void int_bad(const char *s, long min, long max, const char *msg)
{
    long v = 777;
    char err[128] = "";

    is_int(conf_parse_int(s, min, max, &v, err, sizeof(err)), -1, "int refuses '%s'", s);
    is_str(err, msg, "int message for '%s'", s);
    is_int(v, 777, "int '%s' leaves the output alone", s);
}

static void test_size(void)
{
    size_ok("0", 0);
    size_ok("512", 512);
    size_ok("64k", 65536);
    size_ok("64K", 65536);
    size_ok("1m", 1048576);
    size_ok("100M", 104857600);
    size_ok("2g", 2147483648ull);
    size_ok("2G", 2147483648ull);
    size_ok("007k", 7168);
    size_ok("18446744073709551615", UINT64_MAX);
    size_ok("17179869183g", 17179869183ull << 30);
    size_bad("17179869184g", "size '17179869184g' is too large");
    size_bad("18446744073709551616", "size '18446744073709551616' is too large");
    size_bad("99999999999999999999999k", "size '99999999999999999999999k' is too large");
    size_bad("", "invalid size '' (use a number with k, m or g)");
    size_bad("k", "invalid size 'k' (use a number with k, m or g)");
    size_bad("64KB", "invalid size '64KB' (use a number with k, m or g)");
    size_bad("64kb", "invalid size '64kb' (use a number with k, m or g)");
    size_bad("64KiB", "invalid size '64KiB' (use a number with k, m or g)");
    size_bad("512B", "invalid size '512B' (use a number with k, m or g)");
    size_bad("-1", "invalid size '-1' (use a number with k, m or g)");
    size_bad("+1", "invalid size '+1' (use a number with k, m or g)");
    size_bad(" 1", "invalid size ' 1' (use a number with k, m or g)");
    size_bad("1 ", "invalid size '1 ' (use a number with k, m or g)");
    size_bad("1.5k", "invalid size '1.5k' (use a number with k, m or g)");
    size_bad("1t", "invalid size '1t' (use a number with k, m or g)");
    size_bad("0x10", "invalid size '0x10' (use a number with k, m or g)");
    size_bad("1kk", "invalid size '1kk' (use a number with k, m or g)");
}

static void test_duration(void)
{
    dur_ok("0", 0);
    dur_ok("0s", 0);
    dur_ok("30", 30000);
    dur_ok("500ms", 500);
    dur_ok("30s", 30000);
    dur_ok("5m", 300000);
    dur_ok("1h", 3600000);
    dur_ok("2d", 172800000);
    dur_ok("1h30m", 5400000);
    dur_ok("1m30s500ms", 90500);
    dur_ok("1d1h1m1s1ms", 90061001);
    dur_ok("18446744073709551615ms", UINT64_MAX);
    dur_ok("18446744073709551s", 18446744073709551000ull);
    dur_ok("18446744073709551", 18446744073709551000ull);
    dur_bad("18446744073709552", "duration '18446744073709552' is too large");
    dur_bad("18446744073709552s", "duration '18446744073709552s' is too large");
    dur_bad("1s18446744073709551615ms", "duration '1s18446744073709551615ms' is too large");
    dur_bad("213503982335d", "duration '213503982335d' is too large");
    dur_bad("", "invalid duration '' (use a number with ms, s, m, h or d)");
    dur_bad("s", "invalid duration 's' (use a number with ms, s, m, h or d)");
    dur_bad("ms", "invalid duration 'ms' (use a number with ms, s, m, h or d)");
    dur_bad("5x", "invalid duration '5x' (use a number with ms, s, m, h or d)");
    dur_bad("5S", "invalid duration '5S' (use a number with ms, s, m, h or d)");
    dur_bad("5 s", "invalid duration '5 s' (use a number with ms, s, m, h or d)");
    dur_bad("1.5s", "invalid duration '1.5s' (use a number with ms, s, m, h or d)");
    dur_bad("-1", "invalid duration '-1' (use a number with ms, s, m, h or d)");
    dur_bad("30m1h", "invalid duration '30m1h' (use a number with ms, s, m, h or d)");
    dur_bad("1s1s", "invalid duration '1s1s' (use a number with ms, s, m, h or d)");
    dur_bad("1h30", "invalid duration '1h30' (use a number with ms, s, m, h or d)");
    dur_bad("5mss", "invalid duration '5mss' (use a number with ms, s, m, h or d)");
    dur_bad("5sm", "invalid duration '5sm' (use a number with ms, s, m, h or d)");
    dur_bad("1w", "invalid duration '1w' (use a number with ms, s, m, h or d)");
}

static void test_flag(void)
{
    static const char *on[] = {"on", "ON", "On", "yes", "true", "1", "TRUE"};
    static const char *off[] = {"off", "OFF", "no", "false", "0", "No"};
    static const char *bad[] = {"", "2", "enable", "o", "onn", " on", "-1"};
    char err[128];
    size_t i;
    int v;

    for (i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
        v = -1;
        ok(conf_parse_flag(on[i], &v, err, sizeof(err)) == 0 && v == 1, "flag '%s' is on", on[i]);
    }
    for (i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
        v = -1;
        ok(conf_parse_flag(off[i], &v, err, sizeof(err)) == 0 && v == 0, "flag '%s' is off",
           off[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[64];
        v = -1;
        err[0] = '\0';
        snprintf(want, sizeof(want), "invalid flag '%s' (use on or off)", bad[i]);
        ok(conf_parse_flag(bad[i], &v, err, sizeof(err)) == -1 && v == -1, "flag refuses '%s'",
           bad[i]);
        is_str(err, want, "flag message for '%s'", bad[i]);
    }
}

static void test_int(void)
{
    int_ok("0", 0, 5, 0);
    int_ok("5", 0, 5, 5);
    int_ok("-5", -10, 10, -5);
    int_ok("007", 0, 10, 7);
    int_ok("9223372036854775807", LONG_MIN, LONG_MAX, LONG_MAX);
    int_ok("-9223372036854775808", LONG_MIN, LONG_MAX, LONG_MIN);
    int_bad("6", 0, 5, "'6' is out of range (0..5)");
    int_bad("-1", 0, 5, "'-1' is out of range (0..5)");
    int_bad("0", 1, 1000000, "'0' is out of range (1..1000000)");
    int_bad("9223372036854775808", LONG_MIN, LONG_MAX,
            "'9223372036854775808' is out of range (-9223372036854775808..9223372036854775807)");
    int_bad("-9223372036854775809", LONG_MIN, LONG_MAX,
            "'-9223372036854775809' is out of range (-9223372036854775808..9223372036854775807)");
    int_bad("99999999999999999999999", 0, 10, "'99999999999999999999999' is out of range (0..10)");
    int_bad("", 0, 10, "invalid number ''");
    int_bad("-", 0, 10, "invalid number '-'");
    int_bad("+1", 0, 10, "invalid number '+1'");
    int_bad("1e3", 0, 10000, "invalid number '1e3'");
    int_bad("ten", 0, 10, "invalid number 'ten'");
    int_bad("1 ", 0, 10, "invalid number '1 '");
    int_bad("0x10", 0, 100, "invalid number '0x10'");
    int_bad("--1", -10, 10, "invalid number '--1'");
}

static void test_long_value(void)
{
    char big[300], err[256];
    uint64_t v;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    conf_parse_size(big, &v, err, sizeof(err));
    ok(strlen(err) < 120, "a long bad value is cut short in the message (%zu bytes)",
       strlen(err));
    ok(conf_parse_size("zz", &v, err, 8) == -1 && strlen(err) == 7,
       "message is truncated to errlen");
}

int main(void)
{
    test_size();
    test_duration();
    test_flag();
    test_int();
    test_long_value();
    return done_testing();
}
