/* connload.c - a load generator for CONNECT tunnels: what wrk cannot do (bench/run builds it). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Usage: connload -p PORT -o ORIGIN_PORT [-c CONNS] [-d SECONDS] [-P PATH]
 *                 [-n] [-D] [-t TIMEOUT_S]
 *
 * CONNS connections to 127.0.0.1:PORT (a proxy). Each sends "CONNECT
 * 127.0.0.1:ORIGIN_PORT", reads the proxy's 200, then sends "GET PATH" to
 * the origin through the tunnel and reads the response (Content-Length
 * framing), again and again on the same tunnel (keep-alive inside it);
 * with -n every request gets a new tunnel. -D skips the CONNECT: PORT is
 * the origin itself (the "direct" ceiling). Requests completed within
 * SECONDS are counted; one thread, epoll, like wrk -t1.
 *
 * Prints one line "PCBENCH {json}" with the fields of bench/wrk.lua:
 * duration_us, requests, bytes (response bytes with heads, and the
 * proxy's CONNECT answers), connect/read/write/status/timeout errors,
 * p50/p90/p99/max/mean latency of a request in microseconds (with -n,
 * from the connect(), so the tunnel's set-up counts).
 */

enum cstate { C_CONNECTING, C_PROXY, C_SEND, C_HEAD, C_BODY };

typedef struct conn {
    int fd;
    enum cstate st;
    char head[8192];
    size_t hlen;
    size_t sent;
    long long body_left;
    uint64_t t_start;
    uint64_t t_io;
} conn_t;

static struct {
    int port, oport, nconns, seconds, per_request, direct, timeout_s;
    const char *path;
    char req[512], connect[256];
    size_t reqlen, connlen;
    int ep;
    uint64_t t_end, requests, bytes;
    uint64_t e_connect, e_read, e_write, e_status, e_timeout;
    uint32_t *lat;
    size_t nlat, caplat;
} G;

static char sink[1 << 18];

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void record(uint64_t us)
{
    if (G.nlat == G.caplat) {
        size_t cap = G.caplat ? G.caplat * 2 : 1 << 16;
        uint32_t *n = realloc(G.lat, cap * sizeof(*n));
        if (n == NULL)
            return;
        G.lat = n;
        G.caplat = cap;
    }
    G.lat[G.nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void want(conn_t *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    epoll_ctl(G.ep, op, c->fd, &ev);
}

static void conn_open(conn_t *c)
{
    struct sockaddr_in sa;
    int one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)G.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("socket");
        exit(2);
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->hlen = c->sent = 0;
    c->t_start = c->t_io = now_us();
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        G.e_connect++;
        close(c->fd);
        c->fd = -1;
        return;
    }
    c->st = C_CONNECTING;
    want(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void conn_restart(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    conn_open(c);
}

/* Sends what is left of buf; returns 1 when all of it went, 0 to wait, -1
 * on error. */
static int send_rest(conn_t *c, const char *buf, size_t len)
{
    while (c->sent < len) {
        ssize_t n = send(c->fd, buf + c->sent, len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        c->sent += (size_t)n;
    }
    return 1;
}

static void start_request(conn_t *c)
{
    c->st = C_SEND;
    c->sent = 0;
    c->hlen = 0;
    if (!G.per_request)
        c->t_start = now_us();
    want(c, EPOLLOUT, EPOLL_CTL_MOD);
}

/* Parses a complete head in c->head; leaves the bytes after it at the
 * start of the buffer. Returns the status, or -1 when incomplete. */
static int head_done(conn_t *c, size_t *after, long long *clen)
{
    char *end = memmem(c->head, c->hlen, "\r\n\r\n", 4);
    char *p;

    if (end == NULL)
        return -1;
    *after = (size_t)(end + 4 - c->head);
    *clen = -1;
    for (p = c->head; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
        if (*p == '\n')
            p++;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            *clen = atoll(p + 15);
    }
    if (c->hlen < 12)
        return 0;
    return atoi(c->head + 9);
}

static void on_event(conn_t *c, uint32_t events)
{
    int rc;

    c->t_io = now_us();
    if (c->st == C_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            G.e_connect++;
            conn_restart(c);
            return;
        }
        c->sent = 0;
        c->st = G.direct ? C_SEND : C_PROXY;
        if (G.direct) {
            start_request(c);
            return;
        }
    }
    if (c->st == C_PROXY) {
        size_t after;
        long long clen;
        if (c->sent < G.connlen) {
            rc = send_rest(c, G.connect, G.connlen);
            if (rc < 0) {
                G.e_write++;
                conn_restart(c);
                return;
            }
            if (rc == 0) {
                want(c, EPOLLOUT, EPOLL_CTL_MOD);
                return;
            }
            want(c, EPOLLIN, EPOLL_CTL_MOD);
            return;
        }
        ssize_t n = recv(c->fd, c->head + c->hlen, sizeof(c->head) - c->hlen, 0);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN)
                return;
            G.e_read++;
            conn_restart(c);
            return;
        }
        c->hlen += (size_t)n;
        rc = head_done(c, &after, &clen);
        if (rc < 0)
            return;
        G.bytes += after;
        if (rc != 200) {
            G.e_status++;
            conn_restart(c);
            return;
        }
        start_request(c);
        return;
    }
    if (c->st == C_SEND) {
        rc = send_rest(c, G.req, G.reqlen);
        if (rc < 0) {
            G.e_write++;
            conn_restart(c);
            return;
        }
        if (rc == 1) {
            c->st = C_HEAD;
            c->hlen = 0;
            want(c, EPOLLIN, EPOLL_CTL_MOD);
        }
        return;
    }
    for (;;) {
        if (c->st == C_HEAD) {
            size_t after;
            long long clen;
            ssize_t n = recv(c->fd, c->head + c->hlen, sizeof(c->head) - c->hlen, 0);
            if (n <= 0) {
                if (n < 0 && errno == EAGAIN)
                    return;
                G.e_read++;
                conn_restart(c);
                return;
            }
            c->hlen += (size_t)n;
            rc = head_done(c, &after, &clen);
            if (rc < 0)
                continue;
            if (rc != 200 || clen < 0) {
                G.e_status++;
                conn_restart(c);
                return;
            }
            G.bytes += after;
            c->body_left = clen - (long long)(c->hlen - after);
            G.bytes += c->hlen - after;
            c->st = C_BODY;
        } else {
            if (c->body_left > 0) {
                size_t want_n = c->body_left < (long long)sizeof(sink)
                                    ? (size_t)c->body_left : sizeof(sink);
                ssize_t n = recv(c->fd, sink, want_n, 0);
                if (n <= 0) {
                    if (n < 0 && errno == EAGAIN)
                        return;
                    G.e_read++;
                    conn_restart(c);
                    return;
                }
                c->body_left -= n;
                G.bytes += (uint64_t)n;
                continue;
            }
            /* One response complete. */
            if (now_us() <= G.t_end) {
                G.requests++;
                record(now_us() - c->t_start);
            }
            if (G.per_request) {
                conn_restart(c);
                return;
            }
            start_request(c);
            return;
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct epoll_event evs[256];
    conn_t *conns;
    uint64_t t0, sum = 0;
    int opt;

    G.nconns = 50;
    G.seconds = 10;
    G.timeout_s = 10;
    G.path = "/1m";
    while ((opt = getopt(argc, argv, "p:o:c:d:P:nDt:")) != -1) {
        switch (opt) {
        case 'p': G.port = atoi(optarg); break;
        case 'o': G.oport = atoi(optarg); break;
        case 'c': G.nconns = atoi(optarg); break;
        case 'd': G.seconds = atoi(optarg); break;
        case 'P': G.path = optarg; break;
        case 'n': G.per_request = 1; break;
        case 'D': G.direct = 1; break;
        case 't': G.timeout_s = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: connload -p PORT -o ORIGIN_PORT [-c N] [-d S] [-P PATH] "
                            "[-n] [-D] [-t S]\n");
            return 2;
        }
    }
    if (G.port <= 0 || G.oport <= 0 || G.nconns <= 0 || G.seconds <= 0) {
        fprintf(stderr, "connload: -p and -o are needed\n");
        return 2;
    }
    G.connlen = (size_t)snprintf(G.connect, sizeof(G.connect),
                                 "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                                 G.oport, G.oport);
    G.reqlen = (size_t)snprintf(G.req, sizeof(G.req),
                                "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", G.path,
                                G.oport);
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)G.nconns, sizeof(*conns));
    if (G.ep < 0 || conns == NULL)
        return 2;
    t0 = now_us();
    G.t_end = t0 + (uint64_t)G.seconds * 1000000u;
    for (int i = 0; i < G.nconns; i++) {
        conns[i].fd = -1;
        conn_open(&conns[i]);
    }
    for (;;) {
        uint64_t now = now_us();
        int n;
        if (now >= G.t_end)
            break;
        n = epoll_wait(G.ep, evs, 256, 100);
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events);
        now = now_us();
        for (int i = 0; i < G.nconns; i++) {
            conn_t *c = &conns[i];
            if (c->fd < 0) {
                conn_open(c);
            } else if (now - c->t_io > (uint64_t)G.timeout_s * 1000000u) {
                G.e_timeout++;
                conn_restart(c);
            }
        }
    }
    for (size_t i = 0; i < G.nlat; i++)
        sum += G.lat[i];
    qsort(G.lat, G.nlat, sizeof(*G.lat), cmp_u32);
    {
        const uint32_t *l = G.lat;
        size_t n = G.nlat;
        printf("PCBENCH {\"duration_us\": %llu, \"requests\": %llu, \"bytes\": %llu, "
               "\"connect\": %llu, \"read\": %llu, \"write\": %llu, \"status\": %llu, "
               "\"timeout\": %llu, \"p50_us\": %u, \"p90_us\": %u, \"p99_us\": %u, "
               "\"max_us\": %u, \"mean_us\": %.1f}\n",
               (unsigned long long)(G.t_end - t0), (unsigned long long)G.requests,
               (unsigned long long)G.bytes, (unsigned long long)G.e_connect,
               (unsigned long long)G.e_read, (unsigned long long)G.e_write,
               (unsigned long long)G.e_status, (unsigned long long)G.e_timeout,
               n ? l[n / 2] : 0, n ? l[n * 9 / 10] : 0, n ? l[n * 99 / 100] : 0,
               n ? l[n - 1] : 0, n ? (double)sum / (double)n : 0.0);
    }
    return 0;
}

