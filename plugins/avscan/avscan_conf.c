/* avscan_conf.c - the avscan directive table, defaults and validation (nothing here runs at traffic time). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avscan.h"

#define host pc_plugin_host_

/* Where `make install` puts sigs/ (set by the build). */
#ifndef AVSCAN_SIGDIR
#define AVSCAN_SIGDIR "/usr/share/portcullis/avscan/sigs"
#endif

#define KB 1024ull
#define MB (1024ull * 1024)

/* Streams that never end, or media nobody executes: holding them would
 * stall players and live updates for nothing. */
static const char *const default_skip_mime[] = {
    "video/*", "audio/*", "text/event-stream", "multipart/x-mixed-replace", NULL,
};
static const char *const default_skip_extension[] = {
    "mp4", "m4v", "mkv", "webm", "mov", "avi", "flv", "mp3", "m4a", "aac",
    "ogg", "oga", "opus", "flac", "wav", "ts", "m4s", NULL,
};
/* What crypto-lockers arrive as: programs, scripts, archives, disk images,
 * macro documents. Always scanned (skip rules do not apply) and blocked
 * when too large to scan (on_oversize_risky). */
static const char *const default_risky_mime[] = {
    "application/x-msdownload", "application/x-msdos-program",
    "application/x-dosexec", "application/x-executable",
    "application/vnd.microsoft.portable-executable", "application/x-msi",
    "application/x-ms-installer", "application/x-ms-shortcut",
    "application/hta", "application/x-sh", "application/java-archive",
    "application/zip", "application/x-zip-compressed",
    "application/x-rar-compressed", "application/vnd.rar",
    "application/x-7z-compressed", "application/x-tar", "application/gzip",
    "application/x-gzip", "application/x-bzip2", "application/x-xz",
    "application/vnd.ms-cab-compressed", "application/x-iso9660-image",
    "application/x-apple-diskimage", "application/vnd.android.package-archive",
    "application/vnd.ms-word.document.macroenabled.12",
    "application/vnd.ms-excel.sheet.macroenabled.12", NULL,
};
static const char *const default_risky_extension[] = {
    "exe", "dll", "scr", "com", "pif", "cpl", "msi", "msp", "msc", "bat",
    "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "ps1", "psm1",
    "jar", "lnk", "reg", "scf", "iso", "img", "vhd", "vhdx", "zip", "rar",
    "7z", "tar", "gz", "tgz", "bz2", "xz", "cab", "arj", "lzh", "ace", "apk",
    "dmg", "docm", "xlsm", "pptm", "one", NULL,
};

static const char *const allow_block[] = {"allow", "block", NULL};
static const char *const range_modes[] = {"strip", "refuse", NULL};

static const pc_int_range_t threads_range = {0, 64};
static const pc_int_range_t queue_range = {1, 100000};
static const pc_int_range_t recursion_range = {1, 100};
static const pc_int_range_t files_range = {1, 10000000};

#define OFF(f) offsetof(avscan_conf_t, f)

/* database DIR: when named, it must be a readable directory now. */
static int set_database(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                        char *err, size_t errlen)
{
    avscan_conf_t *c = obj;
    struct stat st;

    (void)self;
    c->eng.database_set = 1;
    if (stat(c->eng.database, &st) < 0) {
        snprintf(err, errlen, "%s: %s", c->eng.database, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode) || access(c->eng.database, R_OK | X_OK) < 0) {
        snprintf(err, errlen, "%s is not a readable directory", c->eng.database);
        return -1;
    }
    (void)a;
    return 0;
}

static int set_test_signatures(pc_plugin_t *self, void *obj,
                               const pc_directive_args_t *a, char *err, size_t errlen)
{
    avscan_conf_t *c = obj;
    struct stat st;

    (void)self;
    (void)a;
    if (stat(c->eng.test_signatures, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", c->eng.test_signatures);
        return -1;
    }
    return 0;
}

static int set_temp_dir(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                        char *err, size_t errlen)
{
    avscan_conf_t *c = obj;
    struct stat st;

    (void)self;
    (void)a;
    if (stat(c->eng.temp_dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
        access(c->eng.temp_dir, W_OK | X_OK) < 0) {
        snprintf(err, errlen, "%s is not a writable directory", c->eng.temp_dir);
        return -1;
    }
    return 0;
}

/* signatures FILE...: extra signature files (a .cdb policy, local .ndb
 * rules) loaded on top of the databases. */
static int set_signatures(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                          char *err, size_t errlen)
{
    avscan_conf_t *c = obj;

    (void)self;
    for (int i = 0; i < a->argc; i++) {
        char *path = host->conf_path(a, a->argv[i]);
        struct stat st;
        int rc;
        if (path == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, R_OK) < 0) {
            snprintf(err, errlen, "%s is not a readable file", path);
            free(path);
            return -1;
        }
        rc = avscan_strlist_add(&c->eng.signatures, path);
        free(path);
        if (rc < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* skip_mime / risky_mime TYPE...: exact types, or a type with "/" and "*" for all its subtypes; "none" empties
 * the list (the first use replaces the defaults). */
static int set_list(avscan_strlist_t *l, const pc_directive_args_t *a, int mime,
                    char *err, size_t errlen)
{
    if (!l->set) {
        avscan_strlist_clear(l);
        l->set = 1;
    }
    for (int i = 0; i < a->argc; i++) {
        const char *v = a->argv[i];
        if (strcmp(v, "none") == 0) {
            if (a->argc != 1) {
                snprintf(err, errlen, "'none' stands alone");
                return -1;
            }
            avscan_strlist_clear(l);
            return 0;
        }
        if (mime) {
            const char *slash = strchr(v, '/');
            if (slash == NULL || slash == v || slash[1] == '\0' ||
                strchr(slash + 1, '/') || (strchr(v, '*') && strcmp(slash + 1, "*") != 0)) {
                snprintf(err, errlen, "invalid MIME type '%s' (use type/subtype or type/*)", v);
                return -1;
            }
        } else if (*v == '\0' || strchr(v + (*v == '.'), '.') || strchr(v, '/')) {
            snprintf(err, errlen, "invalid extension '%s' (use exe or .exe)", v);
            return -1;
        }
        if (avscan_strlist_add(l, v) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int set_skip_mime(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                         char *err, size_t errlen)
{
    (void)self;
    return set_list(&((avscan_conf_t *)obj)->skip_mime, a, 1, err, errlen);
}

static int set_skip_extension(pc_plugin_t *self, void *obj,
                              const pc_directive_args_t *a, char *err, size_t errlen)
{
    (void)self;
    return set_list(&((avscan_conf_t *)obj)->skip_extension, a, 0, err, errlen);
}

static int set_risky_mime(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                          char *err, size_t errlen)
{
    (void)self;
    return set_list(&((avscan_conf_t *)obj)->risky_mime, a, 1, err, errlen);
}

static int set_risky_extension(pc_plugin_t *self, void *obj,
                               const pc_directive_args_t *a, char *err, size_t errlen)
{
    (void)self;
    return set_list(&((avscan_conf_t *)obj)->risky_extension, a, 0, err, errlen);
}

/* A size or duration that must not be zero. */
static int set_nonzero_u64(pc_plugin_t *self, void *obj, const pc_directive_args_t *a,
                           char *err, size_t errlen)
{
    const uint64_t *v = (const uint64_t *)(const void *)((const char *)obj + a->directive->offset);

    (void)self;
    if (*v == 0) {
        snprintf(err, errlen, "must be greater than 0");
        return -1;
    }
    return 0;
}

const pc_directive_t avscan_directives[] = {
    /* where the signatures are */
    {"database", 1, 1, 0, PC_DIR_PATH, OFF(eng.database), NULL, set_database},
    {"signatures", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_signatures},
    {"test_signatures", 1, 1, 0, PC_DIR_PATH, OFF(eng.test_signatures), NULL, set_test_signatures},
    {"check_interval", 1, 1, 0, PC_DIR_DURATION, OFF(check_interval), NULL, NULL},
    {"detect_pua", 1, 1, 0, PC_DIR_FLAG, OFF(eng.detect_pua), NULL, NULL},
    {"scan_cache", 1, 1, 0, PC_DIR_FLAG, OFF(eng.scan_cache), NULL, NULL},
    {"temp_dir", 1, 1, 0, PC_DIR_PATH, OFF(eng.temp_dir), NULL, set_temp_dir},
    /* the scan pool */
    {"threads", 1, 1, 0, PC_DIR_INT, OFF(threads), &threads_range, NULL},
    {"queue_size", 1, 1, 0, PC_DIR_INT, OFF(queue_size), &queue_range, NULL},
    {"scan_timeout", 1, 1, 0, PC_DIR_DURATION, OFF(eng.scan_timeout), NULL, set_nonzero_u64},
    /* libclamav's limits */
    {"max_scan_size", 1, 1, 0, PC_DIR_SIZE, OFF(eng.max_scan_size), NULL, set_nonzero_u64},
    {"max_file_size", 1, 1, 0, PC_DIR_SIZE, OFF(eng.max_file_size), NULL, set_nonzero_u64},
    {"max_recursion", 1, 1, 0, PC_DIR_INT, OFF(eng.max_recursion), &recursion_range, NULL},
    {"max_files", 1, 1, 0, PC_DIR_INT, OFF(eng.max_files), &files_range, NULL},
    {"on_limits", 1, 1, 0, PC_DIR_ENUM, OFF(on_limits), allow_block, NULL},
    {"heuristic_alerts", 1, 1, 0, PC_DIR_FLAG, OFF(heuristic_alerts), NULL, NULL},
    {"block_encrypted", 1, 1, 0, PC_DIR_FLAG, OFF(block_encrypted), NULL, NULL},
    {"block_macros", 1, 1, 0, PC_DIR_FLAG, OFF(block_macros), NULL, NULL},
    {"on_error", 1, 1, 0, PC_DIR_ENUM, OFF(on_error), allow_block, NULL},
    /* HTTP */
    {"max_size", 1, 1, 0, PC_DIR_SIZE, OFF(max_size), NULL, set_nonzero_u64},
    {"on_oversize", 1, 1, 0, PC_DIR_ENUM, OFF(on_oversize), allow_block, NULL},
    {"on_oversize_risky", 1, 1, 0, PC_DIR_ENUM, OFF(on_oversize_risky), allow_block, NULL},
    {"scan_uploads", 1, 1, 0, PC_DIR_FLAG, OFF(scan_uploads), NULL, NULL},
    {"range_requests", 1, 1, 0, PC_DIR_ENUM, OFF(range_requests), range_modes, NULL},
    {"skip_mime", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_skip_mime},
    {"skip_extension", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_skip_extension},
    {"risky_mime", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_risky_mime},
    {"risky_extension", 1, PC_ARGS_ANY, PC_DIR_REPEAT, PC_DIR_CUSTOM, 0, NULL, set_risky_extension},
    PC_DIRECTIVE_END,
};

/* The test signatures: next to the plugin in a build tree
 * (plugins/avscan/sigs), else where `make install` put them. */
static char *default_test_signatures(void)
{
    Dl_info info;
    struct stat st;

    if (dladdr((void *)default_test_signatures, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        char path[PATH_MAX];
        if (slash && snprintf(path, sizeof(path), "%.*s/sigs",
                              (int)(slash - info.dli_fname), info.dli_fname) < (int)sizeof(path) &&
            stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return strdup(path);
    }
    return strdup(AVSCAN_SIGDIR);
}

static int fill_defaults(avscan_strlist_t *l, const char *const *defaults)
{
    if (l->set)
        return 0;
    for (int i = 0; defaults[i]; i++)
        if (avscan_strlist_add(l, defaults[i]) < 0)
            return -1;
    return 0;
}

void *avscan_conf_create(pc_plugin_t *self)
{
    avscan_conf_t *c = calloc(1, sizeof(*c));
    const char *tmp = getenv("TMPDIR");

    (void)self;
    if (c == NULL)
        return NULL;
    c->eng.database = strdup("/var/lib/clamav");
    c->eng.test_signatures = default_test_signatures();
    c->eng.temp_dir = strdup(tmp && *tmp == '/' ? tmp : "/tmp");
    /* clamd's defaults (clamd.conf(5)), so a ClamAV admin finds no
     * surprise. */
    c->eng.max_scan_size = 400 * MB;
    c->eng.max_file_size = 100 * MB;
    c->eng.max_recursion = 17;
    c->eng.max_files = 10000;
    c->eng.scan_timeout = 120000;
    c->eng.scan_cache = 1;
    c->threads = 0;
    c->queue_size = 256;
    c->check_interval = 5 * 60 * 1000;
    c->heuristic_alerts = 1;
    c->on_limits = AVSCAN_ALLOW;
    c->on_error = AVSCAN_BLOCK;
    c->max_size = 100 * MB;
    c->on_oversize = AVSCAN_ALLOW;
    c->on_oversize_risky = AVSCAN_BLOCK;
    c->range_requests = AVSCAN_RANGE_STRIP;
    if (c->eng.database == NULL || c->eng.test_signatures == NULL ||
        c->eng.temp_dir == NULL) {
        avscan_conf_free(self, c);
        return NULL;
    }
    return c;
}

int avscan_conf_threads(const avscan_conf_t *conf)
{
    long n = conf->threads;

    if (n == 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1)
            n = 2;
        if (n > 64)
            n = 64;
    }
    return (int)n;
}

int avscan_conf_finish(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    avscan_conf_t *c = obj;
    avscan_engine_t *cur;
    char a[32], b[32];

    if (fill_defaults(&c->skip_mime, default_skip_mime) < 0 ||
        fill_defaults(&c->skip_extension, default_skip_extension) < 0 ||
        fill_defaults(&c->risky_mime, default_risky_mime) < 0 ||
        fill_defaults(&c->risky_extension, default_risky_extension) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* A body is scanned whole or not at all: libclamav must be allowed to
     * read everything max_size lets through. */
    if (c->max_size > c->eng.max_scan_size) {
        avscan_format_size(c->max_size, a, sizeof(a));
        avscan_format_size(c->eng.max_scan_size, b, sizeof(b));
        snprintf(err, errlen, "max_size %s is larger than max_scan_size %s: raise "
                 "max_scan_size, or bodies in between are only partly scanned", a, b);
        return -1;
    }
    if (c->max_size > c->eng.max_file_size) {
        avscan_format_size(c->max_size, a, sizeof(a));
        avscan_format_size(c->eng.max_file_size, b, sizeof(b));
        snprintf(err, errlen, "max_size %s is larger than max_file_size %s: raise "
                 "max_file_size, or bodies in between are not scanned", a, b);
        return -1;
    }
    /* The engine: the one in force when nothing it depends on changed
     * (a reload of other settings costs nothing), else a new one, built
     * now so that a database that does not load fails the reload. */
    cur = avscan_engine_current();
    if (cur && avscan_engine_same_opts(cur, &c->eng)) {
        avscan_engine_unref(cur);
        return 0;
    }
    avscan_engine_unref(cur);
    if (avscan_engine_load(&c->eng, &c->engine, err, errlen) < 0)
        return -1;
    /* Said here too, so that `portcullis -t` shows it. */
    if (avscan_engine_test_only(c->engine))
        host->log(self, PC_LOG_WARN, "no ClamAV databases in %s: the test signatures "
                  "are loaded, downloads are NOT checked for real malware",
                  c->eng.database);
    return 0;
}

void avscan_conf_free(pc_plugin_t *self, void *obj)
{
    avscan_conf_t *c = obj;

    (void)self;
    if (c == NULL)
        return;
    avscan_engine_unref(c->engine);
    free(c->eng.database);
    free(c->eng.test_signatures);
    free(c->eng.temp_dir);
    avscan_strlist_clear(&c->eng.signatures);
    avscan_strlist_clear(&c->skip_mime);
    avscan_strlist_clear(&c->skip_extension);
    avscan_strlist_clear(&c->risky_mime);
    avscan_strlist_clear(&c->risky_extension);
    free(c);
}
