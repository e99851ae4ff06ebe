/* lists.c - reading the banlist's list files: entries, comments, FILE:LINE errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banlist.h"

/*
 * List files are what admins keep by hand or download (squidGuard, UT1,
 * e2guardian lists): one entry per line, '#' comments, blank lines, CRLF
 * or LF, maybe a UTF-8 byte order mark. Anything that cannot be an entry
 * is an error with the file and line, never silently dropped, unless the
 * admin chose to skip bad lines (list_errors skip) for lists they do not
 * control.
 */

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Cuts the comment and the surrounding space off line (in place). */
static char *entry_of(char *line, enum bl_comment comments)
{
    char *p = line, *end;

    while (is_space((unsigned char)*p))
        p++;
    if (*p == '#')
        return p + strlen(p);  /* an empty entry */
    if (comments == BL_COMMENT_ANY) {
        for (char *q = p; *q; q++) {
            if (*q == '#' && q > p && is_space((unsigned char)q[-1])) {
                *q = '\0';
                break;
            }
        }
    }
    end = p + strlen(p);
    while (end > p && is_space((unsigned char)end[-1]))
        end--;
    *end = '\0';
    return p;
}

long bl_list_read(const char *path, enum bl_comment comments, bl_entry_fn fn,
                  void *arg, int skip_bad, void (*warn)(void *warg, const char *msg),
                  void *warg, char *err, size_t errlen)
{
    FILE *f;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    long count = 0, lineno = 0;
    char msg[512];

    f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while ((n = getline(&buf, &cap, f)) >= 0) {
        char *e;
        lineno++;
        if (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        if (lineno == 1 && n >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
            memmove(buf, buf + 3, (size_t)n - 2);
            n -= 3;
        }
        msg[0] = '\0';
        if (memchr(buf, '\0', (size_t)n) != NULL)
            snprintf(msg, sizeof(msg), "NUL byte in the line (not a text file?)");
        else if (n > BL_LINE_MAX)
            snprintf(msg, sizeof(msg), "line longer than %d bytes", BL_LINE_MAX);
        if (msg[0] == '\0') {
            e = entry_of(buf, comments);
            if (*e == '\0')
                continue;
            if (fn(arg, e, lineno, msg, sizeof(msg)) == 0) {
                count++;
                continue;
            }
        }
        if (!skip_bad) {
            snprintf(err, errlen, "%s:%ld: %s", path, lineno, msg);
            goto fail;
        }
        if (warn) {
            char full[1024];
            snprintf(full, sizeof(full), "%s:%ld: %s (line skipped)", path, lineno, msg);
            warn(warg, full);
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    free(buf);
    fclose(f);
    return count;
fail:
    free(buf);
    fclose(f);
    return -1;
}
