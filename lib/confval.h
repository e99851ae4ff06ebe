/* confval.h - directive value parsers (size, duration, flag, integer) for core and plugins. */
#ifndef PC_CONFVAL_H
#define PC_CONFVAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Each parser takes the whole argument: no leading or trailing space, no
 * sign unless stated, plain decimal digits. Each returns 0, or -1 with a
 * message (no FILE:LINE prefix; the caller adds it) in err:
 *   "invalid size '64KB' (use a number with k, m or g)"
 *   "size '99999999999g' is too large"
 *   "invalid duration '5x' (use a number with ms, s, m, h or d)"
 *   "duration '...' is too large"
 *   "invalid flag 'maybe' (use on or off)"
 *   "invalid number 'ten'"
 *   "'0' is out of range (1..1000000)"
 */

/* "64k", "1M", "100M", "2G", "512" (bytes); powers of 1024; the suffix is
 * k, m or g in either case, with no "B" after it (nginx's form, so "64kB"
 * and "64KiB" are errors rather than guesses). */
int conf_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);

/* "500ms", "30s", "5m", "1h", "2d", "30" (seconds); result in ms. Parts may
 * be combined, largest first and each unit once ("1h30m", "1m30s500ms"); a
 * bare number stands alone. "0" is allowed; ranges are the setter's job. */
int conf_parse_duration(const char *s, uint64_t *out_ms, char *err,
                        size_t errlen);

/* "on" / "off" (also yes/no, true/false, 1/0); case-insensitive. */
int conf_parse_flag(const char *s, int *out, char *err, size_t errlen);

/* A decimal integer in [min, max]; an optional leading '-'. */
int conf_parse_int(const char *s, long min, long max, long *out, char *err,
                   size_t errlen);

#endif
