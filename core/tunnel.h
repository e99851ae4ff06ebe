/* tunnel.h - CONNECT: checks, connecting, and the spliced byte tunnel. */
#ifndef PC_TUNNEL_H
#define PC_TUNNEL_H

#include "iobuf.h"

struct txn;

/* The CONNECT head was parsed and its authority is in t->url. */
void tunnel_start(struct txn *t);
void tunnel_connected(struct txn *t, int status);
/* Writes "200 Connection established". Returns 0, or -1 when that failed
 * and t ended. */
int tunnel_established(struct txn *t);
/* Splices client and upstream: what the client sent so far (c->in: the
 * ClientHello the peek read) goes upstream unchanged first. Once nothing
 * waits in either output queue, bytes move with splice(2) (splice.h)
 * when the configuration allows. */
void tunnel_splice(struct txn *t);
/* The same, when the server spoke first: its bytes [p, p+len) of b go to
 * the client before anything else from it. */
void tunnel_splice_with(struct txn *t, iobuf_t *b, const char *p, size_t len);

void tunnel_client_data(struct txn *t, iobuf_t *b, const char *p, size_t len);
void tunnel_upstream_data(struct txn *t, iobuf_t *b, const char *p, size_t len);
void tunnel_client_eof(struct txn *t, int status);
void tunnel_upstream_eof(struct txn *t, int status);
void tunnel_client_drained(struct txn *t);
void tunnel_upstream_drained(struct txn *t);
void tunnel_timeout(struct txn *t);

#endif
