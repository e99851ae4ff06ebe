/* notify.h - readiness notifications to a service manager (the sd_notify protocol). */
#ifndef PC_NOTIFY_H
#define PC_NOTIFY_H

/* Sends state ("READY=1", "RELOADING=1", "STOPPING=1", ...) to
 * $NOTIFY_SOCKET when it is set. */
void notify_send(const char *state);

#endif
