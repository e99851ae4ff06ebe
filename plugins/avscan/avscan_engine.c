/* avscan_engine.c - libclamav engines: load, compile, refcounted swap, database change checks off the loop. */
#include <clamav.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "avscan.h"

#define host pc_plugin_host_

/*
 * One engine is in force at a time (engine_current). A scan takes a
 * reference for its duration, so a reload only swaps the pointer: the old
 * engine is freed when its last scan drops it. Compiling and freeing the
 * official databases take seconds and hundreds of MB, so both happen off
 * every loop: on the main thread in conf_finish (which may block), or on
 * the background thread below, which also runs the periodic database
 * checks (cl_statchkdir) the main loop's timer asks for.
 */

struct avscan_engine {
    struct cl_engine *cl;
    atomic_int refs;
    avscan_engine_opts_t opts;      /* a deep copy: what it was built from */
    unsigned sigs;
    uint64_t load_ms;
    int test_only;
    struct cl_stat dbstat;          /* the database directory when loaded */
    int have_stat;
    int db_files;                   /* database files in it then */
    uint64_t db_stamp;              /* and their fingerprint */
    struct timespec *sig_mtimes;    /* of opts.signatures */
    char desc[600];
    struct avscan_engine *next_free;
};

/* ---- options ------------------------------------------------------------ */

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *failed = 1;
    return d;
}

static void opts_free(avscan_engine_opts_t *o)
{
    free(o->database);
    free(o->test_signatures);
    free(o->temp_dir);
    avscan_strlist_clear(&o->signatures);
}

static int opts_copy(avscan_engine_opts_t *dst, const avscan_engine_opts_t *src)
{
    int failed = 0;

    *dst = *src;
    dst->database = dup_or_null(src->database, &failed);
    dst->test_signatures = dup_or_null(src->test_signatures, &failed);
    dst->temp_dir = dup_or_null(src->temp_dir, &failed);
    memset(&dst->signatures, 0, sizeof(dst->signatures));
    for (int i = 0; i < src->signatures.n; i++)
        if (avscan_strlist_add(&dst->signatures, src->signatures.v[i]) < 0)
            failed = 1;
    if (failed) {
        opts_free(dst);
        return -1;
    }
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

int avscan_engine_same_opts(const avscan_engine_t *e, const avscan_engine_opts_t *o)
{
    const avscan_engine_opts_t *a = &e->opts;

    if (!str_eq(a->database, o->database) ||
        !str_eq(a->test_signatures, o->test_signatures) ||
        !str_eq(a->temp_dir, o->temp_dir) || a->max_scan_size != o->max_scan_size ||
        a->max_file_size != o->max_file_size || a->max_recursion != o->max_recursion ||
        a->max_files != o->max_files || a->scan_timeout != o->scan_timeout ||
        a->detect_pua != o->detect_pua || a->scan_cache != o->scan_cache ||
        a->signatures.n != o->signatures.n)
        return 0;
    for (int i = 0; i < a->signatures.n; i++)
        if (strcmp(a->signatures.v[i], o->signatures.v[i]) != 0)
            return 0;
    return 1;
}

/* ---- libclamav set-up ----------------------------------------------------- */

static void on_clamav_msg(enum cl_msg severity, const char *fullmsg,
                          const char *msg, void *context)
{
    pc_plugin_t *self = avscan_self();
    char line[512];
    size_t n;
    int level;

    (void)fullmsg;
    (void)context;
    if (self == NULL || msg == NULL)
        return;
    snprintf(line, sizeof(line), "%s", msg);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    switch (severity) {
    case CL_MSG_ERROR:
        level = PC_LOG_ERR;
        break;
    case CL_MSG_WARN:
        level = PC_LOG_WARN;
        break;
    default:
        level = PC_LOG_DEBUG;
        break;
    }
    host->log(self, level, "libclamav: %s", line);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static cl_error_t global_rc = CL_SUCCESS;

static void global_init_once(void)
{
    cl_set_clcb_msg(on_clamav_msg);
    global_rc = cl_init(CL_INIT_DEFAULT);
}

int avscan_engine_global_init(char *err, size_t errlen)
{
    pthread_once(&global_once, global_init_once);
    if (global_rc != CL_SUCCESS) {
        snprintf(err, errlen, "cannot initialise libclamav: %s", cl_strerror(global_rc));
        return -1;
    }
    return 0;
}

/* The file name extensions libclamav loads signatures from. */
static int is_db_file(const char *name)
{
    static const char *const exts[] = {
        "cvd", "cld", "cud", "ndb", "ndu", "hdb", "hdu", "hsb", "hsu", "mdb",
        "mdu", "msb", "msu", "ldb", "ldu", "cdb", "pdb", "gdb", "wdb", "cbc",
        "ftm", "idb", "crb", "yar", "yara", "pwdb", "imp", "sdb", "zmd",
        "rmd", "db", NULL,
    };
    const char *dot = strrchr(name, '.');

    if (dot == NULL || name[0] == '.')
        return 0;
    for (int i = 0; exts[i]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return 1;
    return 0;
}

/* Database files in dir, or -1 when it cannot be read (errno set). With
 * stamp, also a fingerprint of their names, inodes, sizes and mtimes (in
 * nanoseconds, where cl_statchkdir() only sees seconds: an admin who
 * fixes a local .ndb twice in a second is noticed too). */
static int scan_db_dir(const char *dir, uint64_t *stamp)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t sum = 0;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        char path[4096];
        uint64_t h = 0xcbf29ce484222325ull;
        if (!is_db_file(de->d_name))
            continue;
        n++;
        if (stamp == NULL)
            continue;
        for (const char *c = de->d_name; *c; c++)
            h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0) {
            uint64_t v[4] = {(uint64_t)st.st_ino, (uint64_t)st.st_size,
                             (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec};
            for (int i = 0; i < 4; i++)
                h = (h ^ v[i]) * 0x100000001b3ull;
        }
        sum += h;  /* order-independent: readdir order is arbitrary */
    }
    closedir(d);
    if (stamp)
        *stamp = sum;
    return n;
}

static int count_db_files(const char *dir)
{
    return scan_db_dir(dir, NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int set_num(struct cl_engine *cl, enum cl_engine_field f, long long v,
                   const char *what, char *err, size_t errlen)
{
    cl_error_t rc = cl_engine_set_num(cl, f, v);

    if (rc != CL_SUCCESS) {
        snprintf(err, errlen, "cannot set %s: %s", what, cl_strerror(rc));
        return -1;
    }
    return 0;
}

static void engine_free_now(avscan_engine_t *e)
{
    if (e->cl)
        cl_engine_free(e->cl);
    if (e->have_stat)
        cl_statfree(&e->dbstat);
    opts_free(&e->opts);
    free(e->sig_mtimes);
    free(e);
}

int avscan_engine_load(const avscan_engine_opts_t *o, avscan_engine_t **out,
                       char *err, size_t errlen)
{
    uint64_t t0 = now_ms();
    avscan_engine_t *e;
    const char *from;
    unsigned int dbopts = CL_DB_STDOPT;
    cl_error_t rc;
    int n;

    *out = NULL;
    if (avscan_engine_global_init(err, errlen) < 0)
        return -1;
    e = calloc(1, sizeof(*e));
    if (e == NULL || opts_copy(&e->opts, o) < 0) {
        free(e);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_init(&e->refs, 1);
    n = scan_db_dir(o->database, &e->db_stamp);
    if (n < 0 && (o->database_set || errno != ENOENT)) {
        snprintf(err, errlen, "database directory %s: %s", o->database, strerror(errno));
        goto fail;
    }
    e->db_files = n < 0 ? 0 : n;
    from = o->database;
    if (n <= 0) {
        /* A first run before freshclam, or a broken install: better the
         * test signatures, said loudly, than no scanning at all. */
        if (o->test_signatures == NULL || count_db_files(o->test_signatures) <= 0) {
            snprintf(err, errlen, "no ClamAV databases in %s, and no test signatures "
                     "in %s (install clamav-freshclam, or set test_signatures)",
                     o->database, o->test_signatures ? o->test_signatures : "(not found)");
            goto fail;
        }
        from = o->test_signatures;
        e->test_only = 1;
    }
    e->cl = cl_engine_new();
    if (e->cl == NULL) {
        snprintf(err, errlen, "cannot create a libclamav engine (out of memory)");
        goto fail;
    }
    if (o->temp_dir && cl_engine_set_str(e->cl, CL_ENGINE_TMPDIR, o->temp_dir) != CL_SUCCESS) {
        snprintf(err, errlen, "cannot set the temporary directory");
        goto fail;
    }
    if (set_num(e->cl, CL_ENGINE_MAX_SCANSIZE, (long long)o->max_scan_size, "max_scan_size", err, errlen) < 0 ||
        set_num(e->cl, CL_ENGINE_MAX_FILESIZE, (long long)o->max_file_size, "max_file_size", err, errlen) < 0 ||
        set_num(e->cl, CL_ENGINE_MAX_RECURSION, o->max_recursion, "max_recursion", err, errlen) < 0 ||
        set_num(e->cl, CL_ENGINE_MAX_FILES, o->max_files, "max_files", err, errlen) < 0 ||
        set_num(e->cl, CL_ENGINE_MAX_SCANTIME,
                (long long)(o->scan_timeout > 0xffffffffu ? 0xffffffffu : o->scan_timeout),
                "scan_timeout", err, errlen) < 0 ||
        (!o->scan_cache &&
         set_num(e->cl, CL_ENGINE_DISABLE_CACHE, 1, "scan_cache", err, errlen) < 0))
        goto fail;
    cl_engine_set_clcb_pre_scan(e->cl, avscan_pool_pre_scan);
    cl_engine_set_clcb_virus_found(e->cl, avscan_pool_virus_found);
    if (o->detect_pua)
        dbopts |= CL_DB_PUA;
    rc = cl_load(from, e->cl, &e->sigs, dbopts);
    if (rc != CL_SUCCESS) {
        snprintf(err, errlen, "cannot load the signatures in %s: %s", from, cl_strerror(rc));
        goto fail;
    }
    if (o->signatures.n) {
        e->sig_mtimes = calloc((size_t)o->signatures.n, sizeof(*e->sig_mtimes));
        if (e->sig_mtimes == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    for (int i = 0; i < o->signatures.n; i++) {
        struct stat st;
        if (stat(o->signatures.v[i], &st) < 0) {
            snprintf(err, errlen, "signatures %s: %s", o->signatures.v[i], strerror(errno));
            goto fail;
        }
        e->sig_mtimes[i] = st.st_mtim;
        rc = cl_load(o->signatures.v[i], e->cl, &e->sigs, dbopts);
        if (rc != CL_SUCCESS) {
            snprintf(err, errlen, "cannot load the signatures in %s: %s",
                     o->signatures.v[i], cl_strerror(rc));
            goto fail;
        }
    }
    rc = cl_engine_compile(e->cl);
    if (rc != CL_SUCCESS) {
        snprintf(err, errlen, "cannot compile the signatures of %s: %s", from,
                 cl_strerror(rc));
        goto fail;
    }
    /* Watch the configured directory even when it was empty, so that
     * freshclam's first download is picked up. */
    if (n >= 0) {
        memset(&e->dbstat, 0, sizeof(e->dbstat));
        if (cl_statinidir(o->database, &e->dbstat) == CL_SUCCESS)
            e->have_stat = 1;
    }
    e->load_ms = now_ms() - t0;
    {
        int verr = 0;
        long long ver = cl_engine_get_num(e->cl, CL_ENGINE_DB_VERSION, &verr);
        char vbuf[48] = "";
        if (verr == CL_SUCCESS && ver > 0)
            snprintf(vbuf, sizeof(vbuf), ", database version %lld", ver);
        snprintf(e->desc, sizeof(e->desc), "ClamAV %s, %u signatures from %s%s%s%s",
                 cl_retver(), e->sigs, from, vbuf,
                 o->signatures.n ? " and extra files" : "",
                 e->test_only ? " (TEST SIGNATURES ONLY: no real protection)" : "");
    }
    *out = e;
    return 0;
fail:
    engine_free_now(e);
    return -1;
}

avscan_engine_t *avscan_engine_ref(avscan_engine_t *e)
{
    if (e)
        atomic_fetch_add(&e->refs, 1);
    return e;
}

const struct cl_engine *avscan_engine_cl(const avscan_engine_t *e)
{
    return e->cl;
}

int avscan_engine_test_only(const avscan_engine_t *e)
{
    return e->test_only;
}

unsigned avscan_engine_signatures(const avscan_engine_t *e)
{
    return e->sigs;
}

uint64_t avscan_engine_load_ms(const avscan_engine_t *e)
{
    return e->load_ms;
}

const char *avscan_engine_describe(const avscan_engine_t *e)
{
    return e->desc;
}

void avscan_engine_log_loaded(pc_plugin_t *self, const avscan_engine_t *e,
                              const char *why)
{
    host->log(self, PC_LOG_NOTICE, "%s: %u signatures in %llu ms (%s)", why, e->sigs,
              (unsigned long long)e->load_ms, e->desc);
    if (e->test_only) {
        /* Loud on purpose: this is a machine that believes it is
         * protected and is not. */
        host->log(self, PC_LOG_WARN, "*************************************************************");
        host->log(self, PC_LOG_WARN, "NO CLAMAV DATABASES in %s: only the Portcullis TEST", e->opts.database);
        host->log(self, PC_LOG_WARN, "signatures (EICAR, the clamav-testfiles hash) are loaded.");
        host->log(self, PC_LOG_WARN, "Downloads are NOT checked for real malware. Install");
        host->log(self, PC_LOG_WARN, "clamav-freshclam (or point 'database' at its directory);");
        host->log(self, PC_LOG_WARN, "the new databases are picked up without a restart.");
        host->log(self, PC_LOG_WARN, "*************************************************************");
    }
}

/* 1 when the databases changed since e was loaded. Blocking (stat). */
static int engine_changed(const avscan_engine_t *e)
{
    const avscan_engine_opts_t *o = &e->opts;
    uint64_t stamp = 0;
    int n = scan_db_dir(o->database, &stamp);

    if (n < 0)
        n = 0;
    if (n != e->db_files || (n > 0 && stamp != e->db_stamp))
        return 1;  /* added, removed or rewritten */
    if (e->have_stat && cl_statchkdir(&e->dbstat) == 1)
        return 1;
    for (int i = 0; i < o->signatures.n; i++) {
        struct stat st;
        if (stat(o->signatures.v[i], &st) < 0 ||
            st.st_mtim.tv_sec != e->sig_mtimes[i].tv_sec ||
            st.st_mtim.tv_nsec != e->sig_mtimes[i].tv_nsec)
            return 1;
    }
    return 0;
}

/* ---- the engine in force ---------------------------------------------------- */

static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static avscan_engine_t *current;

avscan_engine_t *avscan_engine_current(void)
{
    avscan_engine_t *e;

    pthread_mutex_lock(&cur_lock);
    e = avscan_engine_ref(current);
    pthread_mutex_unlock(&cur_lock);
    return e;
}

/* Swaps in e when the engine in force is still expect (or always when
 * expect is the magic ANY). Returns 1 when e went in force; 0 otherwise
 * (the caller keeps its reference). */
#define ANY ((avscan_engine_t *)1)
static int commit_if(avscan_engine_t *expect, avscan_engine_t *e)
{
    avscan_engine_t *old;

    pthread_mutex_lock(&cur_lock);
    if (expect != ANY && current != expect) {
        pthread_mutex_unlock(&cur_lock);
        return 0;
    }
    old = current;
    current = e;
    pthread_mutex_unlock(&cur_lock);
    avscan_scanner_set_description(e ? e->desc : NULL);
    if (old)
        avscan_engine_unref(old);
    return 1;
}

void avscan_engine_commit(avscan_engine_t *e)
{
    commit_if(ANY, e);
}

/* ---- the background thread ---------------------------------------------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int running;
    int stop;
    int check;                 /* a check is asked for */
    int force;
    int checking;              /* a check is under way */
    avscan_engine_t *frees;    /* engines to free */
    pc_plugin_t *self;
    int have_failed;           /* the directory as it was when a load failed: */
    uint64_t failed_stamp;
    int failed_files;
    uint64_t reloads, failures;
    int64_t last_reload;       /* wall clock seconds */
} bg = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

void avscan_engine_unref(avscan_engine_t *e)
{
    if (e == NULL || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    pthread_mutex_lock(&bg.lock);
    if (bg.running && !bg.stop) {
        e->next_free = bg.frees;
        bg.frees = e;
        pthread_cond_signal(&bg.cond);
        pthread_mutex_unlock(&bg.lock);
        return;
    }
    pthread_mutex_unlock(&bg.lock);
    engine_free_now(e);
}

static void bg_check(int force)
{
    avscan_engine_t *cur = avscan_engine_current(), *ne = NULL;
    char err[1024];

    if (cur == NULL)
        return;
    if (!force && !engine_changed(cur))
        goto done;
    /* Unchanged since the last failed attempt: do not fail again every
     * interval (the error was logged once). */
    if (!force && bg.have_failed) {
        uint64_t stamp = 0;
        if (scan_db_dir(cur->opts.database, &stamp) == bg.failed_files &&
            stamp == bg.failed_stamp)
            goto done;
    }
    host->log(bg.self, PC_LOG_INFO, "%s: reloading the signatures",
              force ? "reload asked for" : "database change detected");
    if (avscan_engine_load(&cur->opts, &ne, err, sizeof(err)) < 0) {
        host->log(bg.self, PC_LOG_ERR, "signature reload failed, keeping the "
                  "engine in force (%u signatures): %s", cur->sigs, err);
        pthread_mutex_lock(&bg.lock);
        bg.failures++;
        pthread_mutex_unlock(&bg.lock);
        bg.failed_files = scan_db_dir(cur->opts.database, &bg.failed_stamp);
        bg.have_failed = 1;
        goto done;
    }
    if (!commit_if(cur, ne)) {
        /* A configuration reload put another engine in force meanwhile:
         * that one is newer. */
        host->log(bg.self, PC_LOG_INFO, "signature reload superseded by a "
                  "configuration reload");
        avscan_engine_unref(ne);
        goto done;
    }
    bg.have_failed = 0;
    pthread_mutex_lock(&bg.lock);
    bg.reloads++;
    bg.last_reload = (int64_t)time(NULL);
    pthread_mutex_unlock(&bg.lock);
    host->metric_set(bg.self, "signatures", ne->sigs);
    host->metric_add(bg.self, "reloads", 1);
    avscan_engine_log_loaded(bg.self, ne, "signatures reloaded");
done:
    avscan_engine_unref(cur);
}

static void *bg_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&bg.lock);
    for (;;) {
        if (bg.frees) {
            avscan_engine_t *e = bg.frees;
            bg.frees = e->next_free;
            pthread_mutex_unlock(&bg.lock);
            engine_free_now(e);
            pthread_mutex_lock(&bg.lock);
            continue;
        }
        if (bg.stop)
            break;
        if (bg.check) {
            int force = bg.force;
            bg.check = bg.force = 0;
            bg.checking = 1;
            pthread_mutex_unlock(&bg.lock);
            bg_check(force);
            pthread_mutex_lock(&bg.lock);
            bg.checking = 0;
            continue;
        }
        pthread_cond_wait(&bg.cond, &bg.lock);
    }
    pthread_mutex_unlock(&bg.lock);
    return NULL;
}

int avscan_bg_start(pc_plugin_t *self, char *err, size_t errlen)
{
    int rc;

    bg.self = self;
    bg.stop = 0;
    rc = pthread_create(&bg.thread, NULL, bg_main, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the reload thread: %s", strerror(rc));
        return -1;
    }
    pthread_mutex_lock(&bg.lock);
    bg.running = 1;
    pthread_mutex_unlock(&bg.lock);
    return 0;
}

int avscan_bg_check(int force)
{
    int rc = 0;

    pthread_mutex_lock(&bg.lock);
    if (!bg.running || bg.stop || bg.checking || bg.check) {
        rc = -1;
    } else {
        bg.check = 1;
        bg.force = force;
        pthread_cond_signal(&bg.cond);
    }
    pthread_mutex_unlock(&bg.lock);
    return rc;
}

void avscan_bg_stop(void)
{
    pthread_mutex_lock(&bg.lock);
    if (!bg.running) {
        pthread_mutex_unlock(&bg.lock);
        return;
    }
    bg.stop = 1;
    pthread_cond_signal(&bg.cond);
    pthread_mutex_unlock(&bg.lock);
    pthread_join(bg.thread, NULL);
    pthread_mutex_lock(&bg.lock);
    bg.running = 0;
    bg.have_failed = 0;
    pthread_mutex_unlock(&bg.lock);
}

void avscan_bg_stats(uint64_t *reloads, uint64_t *failures, int64_t *last_reload)
{
    pthread_mutex_lock(&bg.lock);
    *reloads = bg.reloads;
    *failures = bg.failures;
    *last_reload = bg.last_reload;
    pthread_mutex_unlock(&bg.lock);
}
