/* pac.h - the proxy auto-config file served at /wpad.dat and /proxy.pac. */
#ifndef PC_PAC_H
#define PC_PAC_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct txn;

/* Writes the PAC file for conf; local_addr/local_port name the proxy when
 * pac_proxy is not set. Returns a malloc()ed text (caller frees) and its
 * length, or NULL when out of memory. */
char *pac_generate(const conf_t *conf, const char *local_addr,
                   uint16_t local_port, size_t *len);

/* Answers an origin-form request for the PAC file. */
void pac_serve(struct txn *t);

#endif
