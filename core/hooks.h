/* hooks.h - running plugin hook chains: verdicts, deferral tokens, deadlines. */
#ifndef PC_HOOKS_H
#define PC_HOOKS_H

#include <portcullis/plugin.h>

#include "client.h"
#include "txn.h"
#include "worker.h"

typedef struct defer_table defer_table_t;

/* Runs hook for every plugin of t's snapshot in configuration order, then
 * done(t, verdict) with PC_CONTINUE, PC_ALLOW or PC_BLOCK (t->block set).
 * done may run before hooks_run returns, or later after a deferral; it
 * never runs once hooks_cancel() was called. */
void hooks_run(txn_t *t, pc_hook_t hook, txn_hooks_done_fn done);
/* A hook that cannot wait (UPSTREAM_ADDR): PC_CONTINUE or PC_BLOCK. */
int hooks_run_sync(txn_t *t, pc_hook_t hook);
/* TXN_END for every plugin, then slot destructors; once per transaction. */
void hooks_txn_end(txn_t *t);
/* The transaction is ending: drop a pending chain, cancel its token (the
 * plugin's cancel callback runs). */
void hooks_cancel(txn_t *t);
/* ACCEPT and CONN_CLOSE: PC_CONTINUE or PC_BLOCK (c->block_* set). */
int hooks_conn(client_t *c, pc_hook_t hook);

/* The SDK's txn_defer / defer_resume / defer_resume_threadsafe. */
pc_defer_t *hooks_defer(pc_plugin_t *p, txn_t *t, uint64_t timeout_ms,
                        int fallback, void (*cancel)(void *), void *arg);
void hooks_resume(pc_defer_t *token, int verdict);
void hooks_resume_threadsafe(pc_defer_t *token, int verdict, int status,
                             const char *reason, const char *category);

/* Marks t blocked by plugin (a name that outlives t) unless it is blocked
 * already: the first block wins. Details from txn_block() count only when
 * that same plugin gave them; otherwise the block is a plain 403 with why
 * (copied) as the reason. */
void hooks_block(txn_t *t, const char *plugin, const char *why);

/* Frees a worker's token table when it exits. */
void hooks_worker_free(worker_t *w);

#endif
