/* state.c - the dynamic-ban state file: its format, reading it at start, and atomic rewrites. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banlist.h"

/*
 * One ban per line, so an admin can read it (and, with the daemon
 * stopped, edit it):
 *
 *   # portcullis banlist state ...
 *   client 10.0.0.5 2026-05-01T14:00:00.000Z 2026-05-01T13:00:00.000Z ctl crypto-locker
 *   site example.com forever 2026-05-01T13:00:00.000Z auto:av.infected Eicar-Test-Signature
 *
 * KIND TARGET UNTIL CREATED SOURCE REASON: times in UTC, UNTIL "forever"
 * for a ban without end, the reason the rest of the line.
 *
 * A rewrite never leaves a half-written file behind: the new content goes
 * to PATH.tmp, is fsync()ed, renamed over PATH (atomic on POSIX file
 * systems), and the directory is fsync()ed so the rename itself survives a
 * power cut. Writes are serialised by a lock, so the shutdown's last write
 * and a write still running on the worker pool cannot interleave.
 */

#define STATE_HEADER                                                          \
    "# portcullis banlist state: the dynamic bans, rewritten by the daemon at\n" \
    "# every change. Edit only while the daemon is stopped.\n"                 \
    "# KIND TARGET UNTIL CREATED SOURCE REASON (times in UTC)\n"

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct buf {
    char *p;
    size_t len, cap;
    int failed;
} buf_t;

static void buf_add(buf_t *b, const char *s)
{
    size_t n = strlen(s);

    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        char *p;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        p = realloc(b->p, ncap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd, rc = -1;

    if (copy == NULL)
        return -1;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

int bl_state_write(const char *path, const bl_snap_t *s, int64_t now_ms,
                   char *err, size_t errlen)
{
    buf_t b = {0};
    char tmp[4096], until[40], created[40];
    int fd = -1;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    buf_add(&b, STATE_HEADER);
    for (size_t i = 0; i < bl_snap_count(s); i++) {
        const bl_ban_t *ban = bl_snap_at(s, i);
        if (ban->until_ms && ban->until_ms <= now_ms)
            continue;
        buf_add(&b, bl_kind_name(ban->kind));
        buf_add(&b, " ");
        buf_add(&b, ban->target);
        buf_add(&b, " ");
        buf_add(&b, ban->until_ms ? bl_fmt_iso(ban->until_ms, until, sizeof(until))
                                  : "forever");
        buf_add(&b, " ");
        buf_add(&b, bl_fmt_iso(ban->created_ms, created, sizeof(created)));
        buf_add(&b, " ");
        buf_add(&b, ban->source && *ban->source ? ban->source : "-");
        if (ban->reason && *ban->reason) {
            buf_add(&b, " ");
            buf_add(&b, ban->reason);
        }
        buf_add(&b, "\n");
    }
    if (b.failed) {
        free(b.p);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    pthread_mutex_lock(&write_lock);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (write_all(fd, b.p, b.len) < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    if (fsync_dir(path) < 0) {
        snprintf(err, errlen, "cannot sync the directory of %s: %s", path,
                 strerror(errno));
        goto fail;
    }
    pthread_mutex_unlock(&write_lock);
    free(b.p);
    return 0;
fail:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    pthread_mutex_unlock(&write_lock);
    free(b.p);
    return -1;
}

/* Splits off the next space-separated word of *p. */
static char *word(char **p)
{
    char *s = *p, *e;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return NULL;
    e = s;
    while (*e && *e != ' ' && *e != '\t')
        e++;
    if (*e)
        *e++ = '\0';
    *p = e;
    return s;
}

/* One line into a ban; NULL with a message in err. */
static bl_ban_t *parse_line(char *line, char *err, size_t errlen)
{
    char *p = line, *kind, *target, *until, *created, *source, *reason;
    char full[600];
    bl_ban_t *b;

    kind = word(&p);
    target = word(&p);
    until = word(&p);
    created = word(&p);
    source = word(&p);
    if (kind == NULL || target == NULL || until == NULL || created == NULL ||
        source == NULL) {
        snprintf(err, errlen, "expected KIND TARGET UNTIL CREATED SOURCE REASON");
        return NULL;
    }
    if (strcmp(kind, "client") != 0 && strcmp(kind, "site") != 0) {
        snprintf(err, errlen, "unknown kind '%.40s' (client or site)", kind);
        return NULL;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    reason = p;
    snprintf(full, sizeof(full), "%s:%s", kind, target);
    b = bl_ban_parse_target(full, err, errlen);
    if (b == NULL)
        return NULL;
    if (strcmp(until, "forever") == 0) {
        b->until_ms = 0;
    } else if (bl_parse_iso(until, &b->until_ms) < 0) {
        snprintf(err, errlen, "invalid time '%.40s'", until);
        goto fail;
    }
    if (bl_parse_iso(created, &b->created_ms) < 0) {
        snprintf(err, errlen, "invalid time '%.40s'", created);
        goto fail;
    }
    if (bl_ban_set_text(b, reason, source) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return b;
fail:
    bl_ban_unref(b);
    return NULL;
}

int bl_state_read(const char *path, int64_t now_ms, bl_ban_t ***out, size_t *n,
                  void (*warn)(void *arg, const char *msg), void *warg,
                  char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0, nb = 0, bcap = 0;
    ssize_t len;
    long lineno = 0;
    bl_ban_t **v = NULL;

    *out = NULL;
    *n = 0;
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char msg[512], full[1024];
        bl_ban_t *b;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (memchr(line, '\0', (size_t)len) != NULL) {
            snprintf(msg, sizeof(msg), "NUL byte in the line");
            b = NULL;
        } else {
            b = parse_line(line, msg, sizeof(msg));
        }
        if (b == NULL) {
            snprintf(full, sizeof(full), "%s:%ld: %s (ban dropped)", path, lineno, msg);
            if (warn)
                warn(warg, full);
            continue;
        }
        if (b->until_ms && b->until_ms <= now_ms) {
            bl_ban_unref(b);  /* ended while the daemon was down */
            continue;
        }
        if (nb == bcap) {
            size_t ncap = bcap ? bcap * 2 : 64;
            bl_ban_t **nv = realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                bl_ban_unref(b);
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            v = nv;
            bcap = ncap;
        }
        v[nb++] = b;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    free(line);
    fclose(f);
    *out = v;
    *n = nb;
    return 0;
fail:
    for (size_t i = 0; i < nb; i++)
        bl_ban_unref(v[i]);
    free(v);
    free(line);
    fclose(f);
    return -1;
}
