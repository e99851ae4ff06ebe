/* tunnel.h - CONNECT: checks, connecting, and the spliced byte tunnel. */
#ifndef PC_TUNNEL_H
#define PC_TUNNEL_H

#include "iobuf.h"

struct txn;

/* The CONNECT head was parsed and its authority is in t->url. */
void tunnel_start(struct txn *t);
void tunnel_connected(struct txn *t, int status);
void tunnel_client_data(struct txn *t, iobuf_t *b, const char *p, size_t len);
void tunnel_upstream_data(struct txn *t, iobuf_t *b, const char *p, size_t len);
void tunnel_client_eof(struct txn *t, int status);
void tunnel_upstream_eof(struct txn *t, int status);
void tunnel_client_drained(struct txn *t);
void tunnel_upstream_drained(struct txn *t);
void tunnel_timeout(struct txn *t);

#endif
