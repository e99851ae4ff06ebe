/* localaddr.h - which addresses are the proxy server itself (never upstreams by default). */
#ifndef PC_LOCALADDR_H
#define PC_LOCALADDR_H

#include "conf.h"
#include "netaddr.h"

/* Collects the addresses of every local interface (uv_interface_addresses)
 * into a set. Returns NULL with err set. Called on the main thread when a
 * configuration is loaded, so a reload also picks up new addresses. */
netaddr_set_t *localaddr_scan(char *err, size_t errlen);

/* 1 when addr is loopback, unspecified, or one of conf->own_addrs: a LAN
 * client must not reach services on the proxy server through the proxy
 * (unless allow_local_upstreams is on). */
int localaddr_is_local(const conf_t *conf, const netaddr_t *addr);

#endif
