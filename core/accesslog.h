/* accesslog.h - the access log: Squid native and JSON lines, buffered per worker. */
#ifndef PC_ACCESSLOG_H
#define PC_ACCESSLOG_H

#include <stdint.h>
#include <uv.h>

#include "conf.h"

/*
 * One line per transaction. The Squid native format is exactly Squid's
 * default "squid" logformat, so SARG, Calamaris and other analysers read it:
 *
 *   time.ms elapsed client code/status bytes method URL user hier/peer type
 *   1764200000.123     12 10.0.0.5 TCP_MISS/200 1234 GET http://a.example/ - HIER_DIRECT/192.0.2.1 text/html
 *
 * The JSON format writes one object per line with the same fields and more
 * (block reason, plugin, category) under stable names.
 *
 * Lines are appended to a per-worker buffer and written with uv_fs_write
 * (the thread pool), one write at a time per log, so the loop never blocks
 * on the disk and a busy loop writes in large batches. Files are opened
 * O_APPEND, so workers' batches never interleave inside a line.
 */

/* A plugin's note on a transaction ("category" = "adult"), in the JSON
 * log under "notes". */
typedef struct accesslog_note {
    struct accesslog_note *next;
    char *name;
    char *value;
} accesslog_note_t;

typedef struct accesslog_rec {
    uint64_t end_ms;           /* wall clock at the end, ms since the epoch */
    uint64_t elapsed_ms;
    const char *client;
    const char *code;          /* TCP_MISS, TCP_DENIED, TCP_TUNNEL, ... */
    int status;
    uint64_t bytes;            /* sent to the client, headers included */
    uint64_t bytes_in;         /* received from the client */
    const char *method;
    const char *url;
    const char *user;          /* "-" */
    const char *hier;          /* HIER_DIRECT/192.0.2.1 or HIER_NONE/- */
    const char *mime;          /* response Content-Type or "-" */
    const char *block_plugin;  /* NULL unless blocked */
    const char *block_reason;
    const char *category;
    uint64_t conn_id;
    const accesslog_note_t *notes;
} accesslog_rec_t;

/* The process-wide set of open log files (shared by workers; descriptors
 * kept stable across reopen with dup2). */
typedef struct accesslog_files accesslog_files_t;

/* Opens every access_log of conf. Returns NULL with err set. */
accesslog_files_t *accesslog_files_open(const conf_t *conf, char *err,
                                        size_t errlen);
/* Reopens after rotation (SIGUSR1). Returns 0 or -1 (failed files keep
 * the old descriptor). */
int accesslog_files_reopen(accesslog_files_t *f);
accesslog_files_t *accesslog_files_ref(accesslog_files_t *f);
void accesslog_files_unref(accesslog_files_t *f);

/* A worker's writer for one set of files. */
typedef struct accesslog accesslog_t;

accesslog_t *accesslog_new(uv_loop_t *loop, accesslog_files_t *files);
void accesslog_write(accesslog_t *a, const accesslog_rec_t *rec);
/* Flushes and frees once the last write finished. */
void accesslog_close(accesslog_t *a);

#endif
