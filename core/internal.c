/* internal.c - requests addressed to the proxy itself (origin-form): PAC files, status. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "log.h"
#include "pac.h"
#include "txn.h"

typedef void (*internal_handler_t)(txn_t *t);

/* Paths the proxy serves itself; later features add rows here. */
static const struct {
    const char *path;
    internal_handler_t handler;
} internal_paths[] = {
    {"/wpad.dat", pac_serve},
    {"/proxy.pac", pac_serve},
    {NULL, NULL},
};

void internal_request(txn_t *t)
{
    size_t plen = strcspn(t->target, "?");

    t->code = "TCP_MISS";
    snprintf(t->hier, sizeof(t->hier), "HIER_NONE/-");
    for (size_t i = 0; internal_paths[i].path; i++) {
        if (strlen(internal_paths[i].path) == plen &&
            strncmp(internal_paths[i].path, t->target, plen) == 0) {
            internal_paths[i].handler(t);
            return;
        }
    }
    t->close_after = t->req_body != BODY_NONE && !t->req_done;
    txn_respond_error(t, 404, "TCP_MISS", "ERR_NOT_FOUND", NULL);
}
