/* control.h - the control socket behind `portcullis ctl`: reload, stats and plugin commands. */
#ifndef PC_CONTROL_H
#define PC_CONTROL_H

#include <portcullis/plugin.h>
#include <stddef.h>

struct server;

/* Listens on path (NULL: no control socket) on the main loop. Returns 0 or
 * -1 with err. */
int control_start(struct server *srv, const char *path, char *err, size_t errlen);
/* Stops listening and removes the socket file. */
void control_stop(void);
/* Frees the registered commands (at exit). */
void control_free(void);

/* The SDK's ctl_register / ctl_reply. */
int control_register(pc_plugin_t *p, const char *name, const char *usage,
                     pc_ctl_fn fn);
void control_reply(pc_ctl_t *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* `portcullis ctl ARGS...`: sends one command to the socket at path and
 * prints the answer. Returns the exit status: 0 OK, 1 ERR, 2 no daemon. */
int control_client(const char *path, int argc, char **argv);

#endif
