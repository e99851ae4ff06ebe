/* splice.c - zero-copy relay of one direction between two sockets with splice(2). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "splice.h"

/* Large enough that a 2-CPU box moves a MiB in a few system calls, small
 * enough that a slow reader pins little kernel memory per direction. */
#define SPLICE_PIPE_SIZE (256 * 1024)
/* Empty pipes a worker keeps for the next relay (two per tunnel). */
#define SPLICE_POOL_MAX 16
/* Splices per wakeup before other connections get their turn; the level-
 * triggered notifications bring the relay back. */
#define SPLICE_ROUNDS 16

int splice_usable(worker_t *w)
{
    return !w->splice_broken;
}

/* Marks the worker's sockets as not spliceable (an old kernel, a seccomp
 * filter): said once, at debug, since the copying path serves as before. */
static void splice_unsupported(worker_t *w, const char *what, int err)
{
    if (!w->splice_broken)
        log_debug(0, "%s: %s; relaying by copying", what,
                  uv_strerror(uv_translate_sys_error(err)));
    w->splice_broken = 1;
}

/* Takes an empty pipe from the pool or makes one. Returns 0 or -1 (errno). */
static int pipe_get(worker_t *w, int fd[2], size_t *cap)
{
    int n;

    if (w->nsplice_pipes > 0) {
        w->nsplice_pipes--;
        fd[0] = w->splice_pipes[w->nsplice_pipes].fd[0];
        fd[1] = w->splice_pipes[w->nsplice_pipes].fd[1];
        *cap = w->splice_pipes[w->nsplice_pipes].cap;
        return 0;
    }
    if (pipe2(fd, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    /* A smaller pipe (pipe-max-size, per-user limits) only means more
     * rounds; the size actually granted is what counts. */
    (void)fcntl(fd[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
    n = fcntl(fd[1], F_GETPIPE_SZ);
    *cap = n > 0 ? (size_t)n : 65536;
    return 0;
}

/* Gives an empty pipe back for reuse, or closes it. */
static void pipe_put(worker_t *w, int fd[2], size_t cap, int empty)
{
    if (fd[0] < 0)
        return;
    if (empty && w->nsplice_pipes < SPLICE_POOL_MAX && !w->draining) {
        _Static_assert(SPLICE_POOL_MAX <= sizeof(w->splice_pipes) / sizeof(w->splice_pipes[0]),
                       "the pool fits worker_t");
        w->splice_pipes[w->nsplice_pipes].fd[0] = fd[0];
        w->splice_pipes[w->nsplice_pipes].fd[1] = fd[1];
        w->splice_pipes[w->nsplice_pipes].cap = cap;
        w->nsplice_pipes++;
    } else {
        close(fd[0]);
        close(fd[1]);
    }
    fd[0] = fd[1] = -1;
}

void splice_worker_free(worker_t *w)
{
    while (w->nsplice_pipes > 0) {
        w->nsplice_pipes--;
        close(w->splice_pipes[w->nsplice_pipes].fd[0]);
        close(w->splice_pipes[w->nsplice_pipes].fd[1]);
    }
}

/* The writability watcher and the dup it watches. */
struct splice_wpoll {
    uv_poll_t poll;
    int fd;
};

static void on_wpoll_close(uv_handle_t *h)
{
    struct splice_wpoll *wp = (struct splice_wpoll *)h;

    /* The dup goes only now: uv_close() took it out of epoll while it was
     * still open, so no stale registration can outlive it. */
    close(wp->fd);
    free(wp);
}

static void splice_pump(splice_dir_t *d);

static void on_writable(uv_poll_t *p, int status, int events)
{
    splice_dir_t *d = p->data;

    (void)events;
    if (status < 0) {
        d->ended = 1;
        d->failed_dst = 1;
        d->ops->done(d, status);
        return;
    }
    splice_pump(d);
}

/* Arms or disarms the writability watcher. Returns 0 or a UV error. */
static int wpoll_set(splice_dir_t *d, int on)
{
    int rc;

    if (on == d->wpoll_on)
        return 0;
    if (!on) {
        d->wpoll_on = 0;
        return uv_poll_stop(&d->wpoll->poll);
    }
    if (d->wpoll == NULL) {
        struct splice_wpoll *wp = malloc(sizeof(*wp));
        if (wp == NULL)
            return UV_ENOMEM;
        rc = uv_poll_init(&d->w->loop, &wp->poll, d->dup_fd);
        if (rc < 0) {
            free(wp);
            return rc;
        }
        /* The watcher owns the dup from now on. */
        wp->fd = d->dup_fd;
        d->dup_fd = -1;
        wp->poll.data = d;
        d->wpoll = wp;
    }
    rc = uv_poll_start(&d->wpoll->poll, UV_WRITABLE, on_writable);
    if (rc == 0)
        d->wpoll_on = 1;
    return rc;
}

static void read_set(splice_dir_t *d, int on)
{
    if (on == d->reading)
        return;
    d->reading = on;
    d->ops->read_ctl(d, on);
}

splice_dir_t *splice_dir_start(worker_t *w, uv_tcp_t *src, uv_tcp_t *dst, uint64_t limit,
                               const splice_ops_t *ops, void *data)
{
    splice_dir_t *d;
    uv_os_fd_t sfd, dfd;

    if (w->splice_broken || uv_fileno((uv_handle_t *)src, &sfd) < 0 ||
        uv_fileno((uv_handle_t *)dst, &dfd) < 0)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    /* The dup the writability watcher needs is taken now, so that running
     * out of descriptors means copying, never a relay stuck with bytes in
     * its pipe. */
    d->dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    if (d->dup_fd < 0) {
        free(d);
        return NULL;
    }
    if (pipe_get(w, d->pipe, &d->cap) < 0) {
        /* EMFILE and the like pass; a kernel without pipe2 does not. */
        if (errno == ENOSYS || errno == EINVAL)
            splice_unsupported(w, "pipe2", errno);
        close(d->dup_fd);
        free(d);
        return NULL;
    }
    d->w = w;
    d->src_fd = sfd;
    d->dst_fd = dfd;
    d->left = limit;
    d->ops = ops;
    d->data = data;
    /* Whatever the source's reading state is now, the first pump sets it. */
    d->reading = -1;
    return d;
}

int splice_dir_blocked(const splice_dir_t *d)
{
    return d && d->held > 0 && d->wpoll_on;
}

/* Fatal for this relay: a broken connection (on the destination side
 * when dst is set), or splice refused. */
static void splice_fail(splice_dir_t *d, int err, int moved, int dst)
{
    d->ended = 1;
    d->failed_dst = dst;
    if (!moved && (err == EINVAL || err == ENOSYS || err == EOPNOTSUPP)) {
        splice_unsupported(d->w, "splice", err);
        d->ops->done(d, UV_ENOSYS);
        return;
    }
    d->ops->done(d, uv_translate_sys_error(err));
}

/*
 * Moves what can move now: from the source into the pipe while it has
 * room and the limit allows, from the pipe to the destination while it
 * takes bytes. Then read notifications are on exactly when the pipe has
 * room, and the writability watcher exactly when bytes wait in it; a side
 * that cannot go on waits for its event, which is the backpressure.
 */
static void splice_pump(splice_dir_t *d)
{
    int dry = 0;

    if (d->ended || d->in_pump)
        return;
    d->in_pump = 1;
    for (int round = 0; round < SPLICE_ROUNDS; round++) {
        int progress = 0;
        ssize_t n;

        if (!dry && !d->src_eof && d->left > 0 && !d->pipe_full && d->held < d->cap) {
            size_t want = d->cap - d->held;
            if (want > d->left)
                want = (size_t)d->left;
            n = splice(d->src_fd, NULL, d->pipe[1], NULL, want,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n > 0) {
                d->held += (size_t)n;
                d->left -= (uint64_t)n;
                progress = 1;
                /* A short read most likely emptied the socket: another
                 * try in this wakeup would only find EAGAIN. */
                dry = (size_t)n < want;
                d->ops->progress(d, 0, (size_t)n);
            } else if (n == 0) {
                d->src_eof = 1;
            } else if (errno == EAGAIN) {
                /* The pipe runs out of slots before bytes (each TCP
                 * fragment takes one) when it holds data already; an
                 * empty pipe means the socket is empty. */
                if (d->held > 0)
                    d->pipe_full = 1;
                dry = 1;
            } else if (errno != EINTR) {
                d->in_pump = 0;
                splice_fail(d, errno, d->held > 0 || d->moved, 0);
                return;
            }
        }
        if (d->held > 0) {
            n = splice(d->pipe[0], NULL, d->dst_fd, NULL, d->held,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n > 0) {
                d->held -= (size_t)n;
                d->moved = 1;
                d->pipe_full = 0;
                progress = 1;
                d->ops->progress(d, 1, (size_t)n);
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                d->in_pump = 0;
                splice_fail(d, errno, 1, 1);
                return;
            }
        }
        if (!progress || (dry && d->held == 0) || (d->src_eof && d->held == 0))
            break;
    }
    d->in_pump = 0;
    if (d->held == 0 && (d->src_eof || d->left == 0)) {
        /* Reading stays as it is: what the source says next (an idle
         * pooled connection, a tunnel's half-close) is the owner's. */
        wpoll_set(d, 0);
        d->ended = 1;
        d->ops->done(d, d->src_eof ? UV_EOF : 0);
        return;
    }
    if (wpoll_set(d, d->held > 0) < 0) {
        d->ended = 1;
        d->ops->done(d, UV_ENOMEM);
        return;
    }
    read_set(d, !d->src_eof && d->left > 0 && !d->pipe_full && d->held < d->cap);
}

void splice_readable(splice_dir_t *d)
{
    splice_pump(d);
}

void splice_dir_free(splice_dir_t *d)
{
    if (d == NULL)
        return;
    if (d->wpoll)
        uv_close((uv_handle_t *)&d->wpoll->poll, on_wpoll_close);
    if (d->dup_fd >= 0)
        close(d->dup_fd);
    pipe_put(d->w, d->pipe, d->cap, d->held == 0);
    free(d);
}
