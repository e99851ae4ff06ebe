/* localaddr.c - which addresses are the proxy server itself (never upstreams by default). */
#include <stdio.h>
#include <uv.h>

#include "localaddr.h"

netaddr_set_t *localaddr_scan(char *err, size_t errlen)
{
    uv_interface_address_t *ifs = NULL;
    netaddr_set_t *set;
    int n = 0, rc;

    set = netaddr_set_new();
    if (set == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rc = uv_interface_addresses(&ifs, &n);
    if (rc < 0) {
        snprintf(err, errlen, "cannot list interface addresses: %s",
                 uv_strerror(rc));
        netaddr_set_free(set);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        netaddr_t a;
        if (netaddr_from_sockaddr(&a, (struct sockaddr *)&ifs[i].address.address4) == 0)
            netaddr_set_add_range(set, &a, &a);
    }
    uv_free_interface_addresses(ifs, n);
    if (netaddr_set_finish(set) < 0) {
        snprintf(err, errlen, "out of memory");
        netaddr_set_free(set);
        return NULL;
    }
    return set;
}

int localaddr_is_local(const conf_t *conf, const netaddr_t *addr)
{
    if (netaddr_is_loopback(addr))
        return 1;
    return conf->own_addrs && netaddr_set_contains(conf->own_addrs, addr);
}
