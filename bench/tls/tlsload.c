/* tlsload.c - an HTTPS load generator through a proxy: CONNECT, TLS, then GETs on keep-alive or one per connection (what wrk cannot do for intercepting proxies). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/*
 * Usage: tlsload -x PROXY_HOST:PORT [-c CONNS] [-t THREADS] [-d SECONDS]
 *                [-w WARMUP] [-n [-r]] https://HOST:PORT/PATH
 *
 * Each connection sends "CONNECT HOST:PORT", reads the proxy's 200, makes
 * a TLS handshake through the tunnel (full handshakes: no session reuse,
 * no certificate check, the same work for every proxy), then sends GET
 * PATH and reads the response (Content-Length framing). With -n every
 * request uses a new connection (the cost of a new intercepted tunnel);
 * otherwise requests follow each other on the connection (keep-alive).
 * With -r a new connection resumes the TLS session of the previous one of
 * its slot (session tickets, as a returning browser does); the proxy may
 * or may not accept it.
 * After the warm-up, requests completed within the measured time are
 * counted. Prints a summary and a line "RESULT rps=R errors=E p50_ms=A
 * p99_ms=B".
 */

enum cstate { C_CONNECT, C_PROXY, C_TLS, C_SEND, C_RECV };

typedef struct conn {
    int fd;
    SSL *ssl;
    SSL_SESSION *sess;    /* -r: the session to resume */
    enum cstate st;
    char buf[65536];
    size_t len;           /* bytes in buf (proxy answer or response head) */
    size_t sent;          /* request bytes written */
    long body_left;       /* -1 until the head was parsed */
    int close_after;
    uint64_t t_start;     /* ns: the request (or, with -n, the connection) began */
    unsigned events;
} conn_t;

typedef struct worker {
    pthread_t thread;
    uint64_t resumed, full;
    int ep;
    int nconns;
    conn_t *conns;
    uint64_t done, errors;
    uint32_t *lat_us;     /* samples of the measured phase */
    size_t nlat, lat_cap;
} worker_t;

static struct sockaddr_storage proxy_ss;
static socklen_t proxy_len;
static char connect_req[512], get_req[1024], sni_host[256];
static size_t connect_len, get_len;
static SSL_CTX *ctx;
static int new_per_request, resume;
static volatile int measuring, stopping;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void want(worker_t *w, conn_t *c, unsigned ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};

    if (c->events == ev)
        return;
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void conn_start(worker_t *w, conn_t *c)
{
    struct epoll_event e;
    int one = 1;

    c->fd = socket(proxy_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        perror("socket");
        exit(1);
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->st = C_CONNECT;
    c->len = c->sent = 0;
    c->body_left = -1;
    c->close_after = 0;
    c->ssl = NULL;
    c->t_start = now_ns();
    if (connect(c->fd, (struct sockaddr *)&proxy_ss, proxy_len) < 0 && errno != EINPROGRESS) {
        perror("connect");
        exit(1);
    }
    c->events = EPOLLOUT;
    e.events = EPOLLOUT;
    e.data.ptr = c;
    epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &e);
}

static void conn_reset(worker_t *w, conn_t *c, int error)
{
    if (error && measuring)
        w->errors++;
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) {
        if (resume && !error) {
            SSL_SESSION *s = SSL_get1_session(c->ssl);
            if (s && SSL_SESSION_is_resumable(s)) {
                SSL_SESSION_free(c->sess);
                c->sess = s;
            } else {
                SSL_SESSION_free(s);
            }
        }
        /* Without a shutdown SSL_free() marks the session not resumable. */
        if (!error) {
            SSL_set_quiet_shutdown(c->ssl, 1);
            SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    if (!stopping)
        conn_start(w, c);
}

static void request_start(worker_t *w, conn_t *c)
{
    c->st = C_SEND;
    c->sent = 0;
    c->len = 0;
    c->body_left = -1;
    if (!new_per_request)
        c->t_start = now_ns();
    want(w, c, EPOLLOUT);
}

static void record(worker_t *w, conn_t *c)
{
    uint64_t us = (now_ns() - c->t_start) / 1000;

    if (!measuring)
        return;
    w->done++;
    if (w->nlat == w->lat_cap) {
        size_t cap = w->lat_cap ? w->lat_cap * 2 : 65536;
        uint32_t *n = realloc(w->lat_us, cap * sizeof(*n));
        if (n == NULL)
            return;
        w->lat_us = n;
        w->lat_cap = cap;
    }
    w->lat_us[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* The response head is in c->buf[0..len); returns 0, or -1 when it is not
 * a 200 with a Content-Length. */
static int parse_head(conn_t *c, size_t head_len)
{
    const char *p = c->buf, *end = c->buf + head_len;

    if (head_len < 12 || strncmp(p, "HTTP/1.1 200", 12) != 0)
        return -1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            c->body_left = strtol(p + 15, NULL, 10);
        else if ((size_t)(eol - p) > 17 && strncasecmp(p, "Connection: close", 17) == 0)
            c->close_after = 1;
        p = eol + 1;
    }
    return c->body_left >= 0 ? 0 : -1;
}

static void on_event(worker_t *w, conn_t *c)
{
    for (;;) {
        switch (c->st) {
        case C_CONNECT: {
            int err = 0;
            socklen_t l = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err) {
                conn_reset(w, c, 1);
                return;
            }
            if (send(c->fd, connect_req, connect_len, MSG_NOSIGNAL) != (ssize_t)connect_len) {
                conn_reset(w, c, 1);
                return;
            }
            c->st = C_PROXY;
            want(w, c, EPOLLIN);
            return;
        }
        case C_PROXY: {
            /* Peek, then take exactly the answer: what follows is TLS. */
            ssize_t n = recv(c->fd, c->buf, sizeof(c->buf) - 1, MSG_PEEK);
            char *e;
            if (n < 0 && errno == EAGAIN)
                return;
            if (n <= 0) {
                conn_reset(w, c, 1);
                return;
            }
            c->buf[n] = '\0';
            e = strstr(c->buf, "\r\n\r\n");
            if (e == NULL)
                return;
            if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0 &&
                strncmp(c->buf, "HTTP/1.0 200", 12) != 0) {
                conn_reset(w, c, 1);
                return;
            }
            recv(c->fd, c->buf, (size_t)(e + 4 - c->buf), 0);
            c->ssl = SSL_new(ctx);
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_tlsext_host_name(c->ssl, sni_host);
            if (resume && c->sess)
                SSL_set_session(c->ssl, c->sess);
            SSL_set_connect_state(c->ssl);
            c->st = C_TLS;
            break;
        }
        case C_TLS: {
            int rc = SSL_do_handshake(c->ssl);
            if (rc == 1) {
                if (measuring) {
                    if (SSL_session_reused(c->ssl))
                        w->resumed++;
                    else
                        w->full++;
                }
                request_start(w, c);
                break;
            }
            switch (SSL_get_error(c->ssl, rc)) {
            case SSL_ERROR_WANT_READ:
                want(w, c, EPOLLIN);
                return;
            case SSL_ERROR_WANT_WRITE:
                want(w, c, EPOLLOUT);
                return;
            default:
                ERR_clear_error();
                conn_reset(w, c, 1);
                return;
            }
        }
        case C_SEND: {
            int rc = SSL_write(c->ssl, get_req + c->sent, (int)(get_len - c->sent));
            if (rc > 0) {
                c->sent += (size_t)rc;
                if (c->sent < get_len)
                    break;
                c->st = C_RECV;
                want(w, c, EPOLLIN);
                break;
            }
            if (SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_WRITE) {
                want(w, c, EPOLLOUT);
                return;
            }
            if (SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_READ) {
                want(w, c, EPOLLIN);
                return;
            }
            ERR_clear_error();
            conn_reset(w, c, 1);
            return;
        }
        case C_RECV: {
            char tmp[65536];
            char *dst = c->body_left < 0 ? c->buf + c->len : tmp;
            size_t cap = c->body_left < 0 ? sizeof(c->buf) - 1 - c->len : sizeof(tmp);
            int rc = SSL_read(c->ssl, dst, (int)cap);
            if (rc <= 0) {
                int e = SSL_get_error(c->ssl, rc);
                if (e == SSL_ERROR_WANT_READ) {
                    want(w, c, EPOLLIN);
                    return;
                }
                ERR_clear_error();
                conn_reset(w, c, 1);
                return;
            }
            if (c->body_left < 0) {
                char *e;
                c->len += (size_t)rc;
                c->buf[c->len] = '\0';
                e = strstr(c->buf, "\r\n\r\n");
                if (e == NULL) {
                    if (c->len >= sizeof(c->buf) - 1) {
                        conn_reset(w, c, 1);
                        return;
                    }
                    break;
                }
                if (parse_head(c, (size_t)(e + 4 - c->buf)) < 0) {
                    conn_reset(w, c, 1);
                    return;
                }
                c->body_left -= (long)(c->len - (size_t)(e + 4 - c->buf));
            } else {
                c->body_left -= rc;
            }
            if (c->body_left > 0)
                break;
            if (c->body_left < 0) {
                conn_reset(w, c, 1);
                return;
            }
            record(w, c);
            if (new_per_request || c->close_after) {
                conn_reset(w, c, 0);
                return;
            }
            request_start(w, c);
            break;
        }
        }
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct epoll_event evs[256];

    for (int i = 0; i < w->nconns; i++)
        conn_start(w, &w->conns[i]);
    while (!stopping) {
        int n = epoll_wait(w->ep, evs, 256, 100);
        for (int i = 0; i < n; i++)
            on_event(w, evs[i].data.ptr);
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: tlsload -x PROXY_HOST:PORT [-c CONNS] [-t THREADS] [-d SECONDS] "
                    "[-w WARMUP] [-n [-r]] https://HOST:PORT/PATH\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *proxy = NULL, *url;
    int conns = 50, threads = 1, opt;
    double duration = 10, warmup = 2;
    char host[256], path[512], phost[256], pport[16];
    unsigned port;
    struct addrinfo hints, *ai;
    worker_t *ws;
    uint64_t total = 0, errors = 0, resumed = 0, full = 0;
    uint32_t *all;
    size_t nall = 0;
    struct timespec ts;

    while ((opt = getopt(argc, argv, "x:c:t:d:w:nr")) != -1) {
        switch (opt) {
        case 'x': proxy = optarg; break;
        case 'c': conns = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'n': new_per_request = 1; break;
        case 'r': resume = 1; break;
        default: usage();
        }
    }
    if (proxy == NULL || optind != argc - 1 || conns < 1 || threads < 1 || conns < threads)
        usage();
    url = argv[optind];
    if (sscanf(url, "https://%255[^:/]:%u%511s", host, &port, path) < 2)
        usage();
    if (strchr(url + 8, '/') == NULL)
        strcpy(path, "/");
    else
        snprintf(path, sizeof(path), "%s", strchr(url + 8, '/'));
    if (sscanf(proxy, "%255[^:]:%15s", phost, pport) != 2)
        usage();
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(phost, pport, &hints, &ai) != 0) {
        fprintf(stderr, "tlsload: cannot resolve %s\n", proxy);
        return 1;
    }
    memcpy(&proxy_ss, ai->ai_addr, ai->ai_addrlen);
    proxy_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(sni_host, sizeof(sni_host), "%s", host);
    connect_len = (size_t)snprintf(connect_req, sizeof(connect_req),
                                   "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n", host, port,
                                   host, port);
    get_len = (size_t)snprintf(get_req, sizeof(get_req),
                               "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: tlsload\r\n%s\r\n",
                               path, host, port, new_per_request ? "Connection: close\r\n" : "");
    signal(SIGPIPE, SIG_IGN);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (resume) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);

    ws = calloc((size_t)threads, sizeof(*ws));
    for (int i = 0; i < threads; i++) {
        ws[i].nconns = conns / threads + (i < conns % threads);
        ws[i].conns = calloc((size_t)ws[i].nconns, sizeof(conn_t));
        ws[i].ep = epoll_create1(0);
        pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
    }
    ts.tv_sec = (time_t)warmup;
    ts.tv_nsec = (long)((warmup - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
    measuring = 1;
    ts.tv_sec = (time_t)duration;
    ts.tv_nsec = (long)((duration - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
    measuring = 0;
    stopping = 1;
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].thread, NULL);
        total += ws[i].done;
        errors += ws[i].errors;
        resumed += ws[i].resumed;
        full += ws[i].full;
        nall += ws[i].nlat;
    }
    all = malloc((nall ? nall : 1) * sizeof(*all));
    nall = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + nall, ws[i].lat_us, ws[i].nlat * sizeof(*all));
        nall += ws[i].nlat;
    }
    qsort(all, nall, sizeof(*all), cmp_u32);
    printf("%s through %s: %d connections, %s, %.0f s\n", url, proxy, conns,
           new_per_request ? "a new tunnel per request" : "keep-alive", duration);
    printf("  requests %llu  errors %llu  req/s %.1f  latency p50 %.2f ms  p99 %.2f ms\n",
           (unsigned long long)total, (unsigned long long)errors, (double)total / duration,
           nall ? all[nall / 2] / 1000.0 : 0.0, nall ? all[nall * 99 / 100] / 1000.0 : 0.0);
    printf("RESULT rps=%.1f errors=%llu p50_ms=%.2f p99_ms=%.2f resumed=%llu full=%llu\n",
           (double)total / duration, (unsigned long long)errors,
           nall ? all[nall / 2] / 1000.0 : 0.0, nall ? all[nall * 99 / 100] / 1000.0 : 0.0,
           (unsigned long long)resumed, (unsigned long long)full);
    return total > 0 ? 0 : 1;
}
