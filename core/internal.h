/* internal.h - requests addressed to the proxy itself (origin-form): PAC files, status. */
#ifndef PC_INTERNAL_H
#define PC_INTERNAL_H

struct txn;

/* Answers an origin-form request: a known path gets its page, any other
 * 404. The transaction ends inside. */
void internal_request(struct txn *t);

#endif
