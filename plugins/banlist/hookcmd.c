/* hookcmd.c - the hook command: run from the main loop for each ban change, in order, with a timeout. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banlist_rt.h"

/*
 *   hook_command /usr/local/sbin/ban-hook [ARGS...]
 *
 * runs as  PROGRAM ARGS... ACTION KIND TARGET DURATION REASON
 *   ACTION    ban, unban, expire, or restore (a ban read from the state
 *             file at start, so a firewall set emptied by a reboot is
 *             filled again)
 *   KIND      client or site
 *   TARGET    10.0.0.5, 10.0.0.0/24, example.com
 *   DURATION  seconds: the ban's length (ban), what was left (unban,
 *             restore), 0 (expire); or "forever"
 *   REASON    the ban's reason
 * with PORTCULLIS_BAN_ACTION, _KIND, _TARGET, _DURATION, _REASON, _UNTIL
 * (UTC, or "forever") and _SOURCE in the environment as well.
 *
 * Runs are queued and run one at a time, so a ban and the unban after it
 * reach a firewall in that order. uv_spawn() from the main loop: nothing
 * waits. The child gets a session of its own, so a timeout kills the
 * whole group (a shell script and what it started): SIGTERM at the
 * timeout, SIGKILL 2 s later. A non-zero exit, a signal or a timeout is
 * logged as an error with the first line of what the command printed.
 */

#define QUEUE_MAX 1000
#define OUTPUT_MAX 2048
#define KILL_GRACE_MS 2000
#define DRAIN_GRACE_MS 500   /* reading output after the exit */

typedef struct hook_job {
    struct hook_job *next;
    char **argv;
    char **env;
    uint64_t timeout_ms;
    char what[320];       /* "ban client 10.0.0.5" for the log */
} hook_job_t;

static struct {
    hook_job_t *head, *tail;
    int len;
    /* The run in progress. */
    hook_job_t *job;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;
    int handles;          /* open handles of the run */
    int pipes_open;
    int exited, timed_out, killed;
    int64_t status;
    int term_signal;
    uint64_t start;
    char output[OUTPUT_MAX + 1];
    size_t outlen;
    int stopping;
} hk;

const char *bl_action_name(enum bl_action action)
{
    switch (action) {
    case BL_ACT_BAN: return "ban";
    case BL_ACT_UNBAN: return "unban";
    case BL_ACT_EXPIRE: return "expire";
    case BL_ACT_RESTORE: return "restore";
    }
    return "?";
}

static void job_free(hook_job_t *j)
{
    if (j == NULL)
        return;
    for (int i = 0; j->argv && j->argv[i]; i++)
        free(j->argv[i]);
    free(j->argv);
    for (int i = 0; j->env && j->env[i]; i++)
        free(j->env[i]);
    free(j->env);
    free(j);
}

static void start_next(void);
static void on_timer(uv_timer_t *t);

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
    if (--hk.handles > 0)
        return;
    job_free(hk.job);
    hk.job = NULL;
    start_next();
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/* The first line of the output, for the log. */
static const char *first_line(void)
{
    char *nl;

    hk.output[hk.outlen] = '\0';
    nl = strchr(hk.output, '\n');
    if (nl)
        *nl = '\0';
    return hk.output;
}

/* Everything is known: log the outcome and release the run. */
static void finish(void)
{
    uint64_t ms = uv_now(uv_handle_get_loop((uv_handle_t *)&hk.timer)) - hk.start;
    const char *out = first_line();

    if (hk.timed_out)
        host->log(bl_rt.self, PC_LOG_ERR, "hook command timed out after %llu ms and "
                  "was killed (%s)%s%s", (unsigned long long)hk.job->timeout_ms,
                  hk.job->what, *out ? ": " : "", out);
    else if (hk.term_signal)
        host->log(bl_rt.self, PC_LOG_ERR, "hook command killed by signal %d (%s)%s%s",
                  hk.term_signal, hk.job->what, *out ? ": " : "", out);
    else if (hk.status != 0)
        host->log(bl_rt.self, PC_LOG_ERR, "hook command failed with exit status %lld "
                  "(%s)%s%s", (long long)hk.status, hk.job->what, *out ? ": " : "", out);
    else
        host->log(bl_rt.self, PC_LOG_INFO, "hook command done in %llu ms (%s)",
                  (unsigned long long)ms, hk.job->what);
    host->metric_add(bl_rt.self, hk.timed_out || hk.term_signal || hk.status
                                     ? "hook_failures" : "hook_runs", 1);
    close_handle((uv_handle_t *)&hk.timer);
}

static void maybe_finish(void)
{
    if (hk.exited && hk.pipes_open == 0)
        finish();
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char scratch[1024];

    (void)h;
    (void)hint;
    if (hk.outlen < OUTPUT_MAX)
        *buf = uv_buf_init(hk.output + hk.outlen, (unsigned)(OUTPUT_MAX - hk.outlen));
    else
        *buf = uv_buf_init(scratch, sizeof(scratch));  /* read and dropped */
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        if (buf->base == hk.output + hk.outlen)
            hk.outlen += (size_t)n;
        return;
    }
    if (n == 0)
        return;
    close_handle((uv_handle_t *)s);
    hk.pipes_open--;
    maybe_finish();
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    hk.exited = 1;
    hk.status = status;
    hk.term_signal = term_signal;
    close_handle((uv_handle_t *)p);
    if (hk.pipes_open) {
        /* A background child may hold the pipes open for ever: read what
         * is there for a moment, then stop listening. */
        uv_timer_start(&hk.timer, on_timer, DRAIN_GRACE_MS, 0);
        return;
    }
    maybe_finish();
}

static void on_timer(uv_timer_t *t)
{
    if (hk.exited) {
        /* The drain grace is over. */
        if (!uv_is_closing((uv_handle_t *)&hk.out)) {
            close_handle((uv_handle_t *)&hk.out);
            hk.pipes_open--;
        }
        if (!uv_is_closing((uv_handle_t *)&hk.err)) {
            close_handle((uv_handle_t *)&hk.err);
            hk.pipes_open--;
        }
        maybe_finish();
        return;
    }
    if (!hk.timed_out) {
        hk.timed_out = 1;
        host->log(bl_rt.self, PC_LOG_WARN, "hook command still running after %llu ms, "
                  "terminating it (%s)", (unsigned long long)hk.job->timeout_ms,
                  hk.job->what);
        kill(-hk.proc.pid, SIGTERM);
        uv_timer_start(t, on_timer, KILL_GRACE_MS, 0);
    } else if (!hk.killed) {
        hk.killed = 1;
        kill(-hk.proc.pid, SIGKILL);
    }
}

static void start_next(void)
{
    uv_loop_t *loop = host->loop_uv(host->loop_main());
    uv_process_options_t opt;
    uv_stdio_container_t stdio[3];
    hook_job_t *j;
    int rc;

    if (hk.job || hk.head == NULL)
        return;
    j = hk.head;
    hk.head = j->next;
    if (hk.head == NULL)
        hk.tail = NULL;
    hk.len--;
    hk.job = j;
    hk.exited = hk.timed_out = hk.killed = 0;
    hk.status = 0;
    hk.term_signal = 0;
    hk.outlen = 0;
    hk.handles = 0;
    uv_timer_init(loop, &hk.timer);
    uv_pipe_init(loop, &hk.out, 0);
    uv_pipe_init(loop, &hk.err, 0);
    hk.handles = 3;
    hk.start = uv_now(loop);

    memset(&opt, 0, sizeof(opt));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&hk.out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&hk.err;
    opt.file = j->argv[0];
    opt.args = j->argv;
    opt.env = j->env;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    opt.exit_cb = on_exit_cb;
    /* A session of its own: the timeout kills the whole process group. */
    opt.flags = UV_PROCESS_DETACHED;
    rc = uv_spawn(loop, &hk.proc, &opt);
    if (rc < 0) {
        host->log(bl_rt.self, PC_LOG_ERR, "hook command %s cannot be started: %s (%s)",
                  j->argv[0], uv_strerror(rc), j->what);
        host->metric_add(bl_rt.self, "hook_failures", 1);
        /* uv_spawn initialised the process handle: it must be closed too. */
        hk.handles = 4;
        close_handle((uv_handle_t *)&hk.proc);
        close_handle((uv_handle_t *)&hk.out);
        close_handle((uv_handle_t *)&hk.err);
        close_handle((uv_handle_t *)&hk.timer);
        return;
    }
    hk.handles = 4;
    hk.pipes_open = 2;
    uv_read_start((uv_stream_t *)&hk.out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&hk.err, on_alloc, on_read);
    uv_timer_start(&hk.timer, on_timer, j->timeout_ms, 0);
}

/* environ plus the PORTCULLIS_BAN_* variables; NULL when out of memory. */
static char **make_env(char *const *extra, int nextra)
{
    extern char **environ;
    int n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    env = calloc((size_t)(n + nextra + 1), sizeof(char *));
    if (env == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (strncmp(environ[i], "PORTCULLIS_BAN_", 15) == 0)
            continue;
        if ((env[k++] = strdup(environ[i])) == NULL)
            goto fail;
    }
    for (int i = 0; i < nextra; i++)
        if ((env[k++] = strdup(extra[i])) == NULL)
            goto fail;
    return env;
fail:
    for (int i = 0; i < k; i++)
        free(env[i]);
    free(env);
    return NULL;
}

void bl_hook_run(const bl_conf_t *conf, enum bl_action action, const bl_ban_t *ban,
                 int64_t now_ms)
{
    hook_job_t *j;
    char duration[32], until[64];
    char *extra[7];
    int n = 0, ok = 1;

    if (conf == NULL || conf->hook_argv == NULL)
        return;
    if (hk.stopping) {
        host->log(bl_rt.self, PC_LOG_WARN, "stopping: hook command not run for %s %s %s",
                  bl_action_name(action), bl_kind_name(ban->kind), ban->target);
        return;
    }
    if (hk.len >= QUEUE_MAX) {
        host->log(bl_rt.self, PC_LOG_ERR, "hook command queue full (%d): not run for "
                  "%s %s %s", QUEUE_MAX, bl_action_name(action),
                  bl_kind_name(ban->kind), ban->target);
        host->metric_add(bl_rt.self, "hook_failures", 1);
        return;
    }
    if (ban->until_ms == 0) {
        snprintf(duration, sizeof(duration), "forever");
        snprintf(until, sizeof(until), "forever");
    } else {
        int64_t ms = action == BL_ACT_BAN      ? ban->until_ms - ban->created_ms
                     : action == BL_ACT_EXPIRE ? 0
                                               : ban->until_ms - now_ms;
        snprintf(duration, sizeof(duration), "%lld",
                 (long long)((ms < 0 ? 0 : ms) + 999) / 1000);
        bl_fmt_time(ban->until_ms, until, sizeof(until));
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        goto oom;
    j->timeout_ms = conf->hook_timeout_ms;
    snprintf(j->what, sizeof(j->what), "%s %s %s", bl_action_name(action),
             bl_kind_name(ban->kind), ban->target);
    j->argv = calloc((size_t)conf->hook_argc + 6, sizeof(char *));
    if (j->argv == NULL)
        goto oom;
    for (int i = 0; i < conf->hook_argc; i++)
        ok &= (j->argv[i] = strdup(conf->hook_argv[i])) != NULL;
    ok &= (j->argv[conf->hook_argc] = strdup(bl_action_name(action))) != NULL;
    ok &= (j->argv[conf->hook_argc + 1] = strdup(bl_kind_name(ban->kind))) != NULL;
    ok &= (j->argv[conf->hook_argc + 2] = strdup(ban->target)) != NULL;
    ok &= (j->argv[conf->hook_argc + 3] = strdup(duration)) != NULL;
    ok &= (j->argv[conf->hook_argc + 4] = strdup(ban->reason ? ban->reason : "")) != NULL;
    if (!ok)
        goto oom;
    if (asprintf(&extra[n++], "PORTCULLIS_BAN_ACTION=%s", bl_action_name(action)) < 0 ||
        asprintf(&extra[n++], "PORTCULLIS_BAN_KIND=%s", bl_kind_name(ban->kind)) < 0 ||
        asprintf(&extra[n++], "PORTCULLIS_BAN_TARGET=%s", ban->target) < 0 ||
        asprintf(&extra[n++], "PORTCULLIS_BAN_DURATION=%s", duration) < 0 ||
        asprintf(&extra[n++], "PORTCULLIS_BAN_REASON=%s", ban->reason ? ban->reason : "") < 0 ||
        asprintf(&extra[n++], "PORTCULLIS_BAN_UNTIL=%s", until) < 0 ||
        asprintf(&extra[n++], "PORTCULLIS_BAN_SOURCE=%s", ban->source ? ban->source : "-") < 0) {
        n--;  /* the failed one holds nothing */
        for (int i = 0; i < n; i++)
            free(extra[i]);
        goto oom;
    }
    j->env = make_env(extra, n);
    for (int i = 0; i < n; i++)
        free(extra[i]);
    if (j->env == NULL)
        goto oom;
    if (hk.tail)
        hk.tail->next = j;
    else
        hk.head = j;
    hk.tail = j;
    hk.len++;
    start_next();
    return;
oom:
    job_free(j);
    host->log(bl_rt.self, PC_LOG_ERR, "out of memory: hook command not run for %s %s %s",
              bl_action_name(action), bl_kind_name(ban->kind), ban->target);
}

void bl_hook_drain(void)
{
    int dropped = 0;

    hk.stopping = 1;
    while (hk.head) {
        hook_job_t *j = hk.head;
        hk.head = j->next;
        job_free(j);
        dropped++;
    }
    hk.tail = NULL;
    hk.len = 0;
    if (dropped)
        host->log(bl_rt.self, PC_LOG_WARN, "stopping: %d queued hook command%s not run",
                  dropped, dropped == 1 ? "" : "s");
}
