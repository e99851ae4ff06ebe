/* pac.c - the proxy auto-config file served at /wpad.dat and /proxy.pac. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_msg.h"
#include "log.h"
#include "pac.h"
#include "txn.h"

/*
 * The PAC file is generated from the configuration for each request, so it
 * always names the address the client actually reached the proxy on (or
 * pac_proxy), and follows reloads. Only what a browser can evaluate without
 * DNS lookups is used for bypass decisions on names: isInNet() is applied
 * only to hosts that are IP literals, since it would otherwise resolve every
 * host name the browser visits, slowly and on the client.
 */

/* Networks a proxy normally does not handle: RFC 1918, loopback,
 * link-local (used unless pac_bypass_networks is given). */
static const char *const default_bypass[] = {
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
    "169.254.0.0/16", NULL,
};

/* An address as a 128-bit number, IPv4 in its mapped form ::ffff:a.b.c.d
 * (the order netaddr's sets use). */
typedef struct pac_key {
    uint64_t hi, lo;
} pac_key_t;

static pac_key_t key_of(const netaddr_t *a)
{
    pac_key_t k = {0, 0};

    if (a->family == AF_INET) {
        k.lo = 0xffff00000000ull | (uint64_t)a->a[0] << 24 | (uint64_t)a->a[1] << 16 |
               (uint64_t)a->a[2] << 8 | a->a[3];
        return k;
    }
    for (int i = 0; i < 8; i++)
        k.hi = k.hi << 8 | a->a[i];
    for (int i = 8; i < 16; i++)
        k.lo = k.lo << 8 | a->a[i];
    return k;
}

static int key_lt(pac_key_t a, pac_key_t b)
{
    return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}

/* Writes the isInNet() tests that send exactly the IPv4 addresses of one
 * network entry DIRECT: "10.0.0.0/8", "10.0.0.5", a range
 * "10.0.0.5-10.0.0.50" (as the CIDR blocks that cover it), and the IPv4
 * part of an IPv6 entry ("::ffff:10.0.0.0/104", "::/0"), as netaddr's set
 * reads them. isInNet() has no IPv6 form in the classic PAC API, so the
 * rest of an IPv6 entry has none either. The entry was checked by the
 * configuration (netaddr_set_add_text); one that does not parse is
 * skipped. */
static void add_innet(strbuf_t *s, const char *entry)
{
    static const pac_key_t v4lo = {0, 0xffff00000000ull}, v4hi = {0, 0xffffffffffffull};
    char buf[128];
    char *dash, *slash;
    netaddr_t a, b;
    pac_key_t lo, hi;
    uint64_t x, end;

    if (strlen(entry) >= sizeof(buf))
        return;
    strcpy(buf, entry);
    dash = strchr(buf, '-');
    slash = strchr(buf, '/');
    if (dash) {
        *dash = '\0';
        if (netaddr_parse(buf, &a) < 0 || netaddr_parse(dash + 1, &b) < 0)
            return;
        lo = key_of(&a);
        hi = key_of(&b);
    } else {
        unsigned long bits = 128;
        if (slash) {
            *slash = '\0';
            bits = strtoul(slash + 1, NULL, 10);
            if (strchr(buf, ':') == NULL)
                bits += 96;  /* "/8" after an IPv4 address */
            if (bits > 128)
                return;
        }
        if (netaddr_parse(buf, &a) < 0)
            return;
        lo = hi = key_of(&a);
        if (bits <= 64) {
            uint64_t m = bits ? ~0ull << (64 - bits) : 0;
            lo.hi &= m;
            hi.hi |= ~m;
            lo.lo = 0;
            hi.lo = ~0ull;
        } else {
            uint64_t m = ~0ull << (128 - bits);
            lo.lo &= m;
            hi.lo |= ~m;
        }
    }
    /* Only the IPv4 part: [::ffff:0.0.0.0, ::ffff:255.255.255.255]. */
    if (key_lt(hi, v4lo) || key_lt(v4hi, lo) || key_lt(hi, lo))
        return;
    if (key_lt(lo, v4lo))
        lo = v4lo;
    if (key_lt(v4hi, hi))
        hi = v4hi;
    /* The largest aligned blocks, from the bottom up. */
    for (x = lo.lo & 0xffffffffull, end = hi.lo & 0xffffffffull; x <= end;) {
        unsigned bits = 32;
        uint32_t m;
        while (bits > 0) {
            uint64_t size = 1ull << (33 - bits);
            if ((x & (size - 1)) != 0 || x + size - 1 > end)
                break;
            bits--;
        }
        m = bits ? 0xffffffffu << (32 - bits) : 0;
        strbuf_addf(s, "        if (isInNet(host, \"%u.%u.%u.%u\", \"%u.%u.%u.%u\"))\n"
                       "            return \"DIRECT\";\n",
                    (unsigned)(x >> 24), (unsigned)(x >> 16) & 255, (unsigned)(x >> 8) & 255,
                    (unsigned)x & 255, m >> 24, (m >> 16) & 255, (m >> 8) & 255, m & 255);
        x += 1ull << (32 - bits);
    }
}

/* Only characters safe inside a JavaScript string literal reach the file:
 * the configuration allows no others, this keeps it that way. */
static void add_js_word(strbuf_t *s, const char *w)
{
    for (; *w; w++)
        if ((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z') ||
            (*w >= '0' && *w <= '9') || strchr("-._:[]", *w))
            strbuf_add(s, w, 1);
}

char *pac_generate(const conf_t *conf, const char *local_addr, uint16_t local_port,
                   size_t *len)
{
    strbuf_t s;

    strbuf_init(&s);
    strbuf_adds(&s, "// Proxy auto-config generated by Portcullis from its configuration.\n"
                    "function FindProxyForURL(url, host) {\n"
                    "    host = host.toLowerCase();\n"
                    "    if (isPlainHostName(host) || host == \"localhost\" ||\n"
                    "        dnsDomainIs(host, \".local\") || dnsDomainIs(host, \".localhost\"))\n"
                    "        return \"DIRECT\";\n");
    for (int i = 0; i < conf->pac_bypass_domains.n; i++) {
        const char *d = conf->pac_bypass_domains.v[i];
        if (*d == '.')
            d++;
        strbuf_adds(&s, "    if (host == \"");
        add_js_word(&s, d);
        strbuf_adds(&s, "\" || dnsDomainIs(host, \".");
        add_js_word(&s, d);
        strbuf_adds(&s, "\"))\n        return \"DIRECT\";\n");
    }
    strbuf_adds(&s, "    if (/^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host)) {\n");
    {
        int n = conf->pac_bypass_networks_given ? conf->pac_bypass_networks.n : -1;
        for (int i = 0; n < 0 ? default_bypass[i] != NULL : i < n; i++) {
            add_innet(&s, n < 0 ? default_bypass[i] : conf->pac_bypass_networks.v[i]);
        }
    }
    strbuf_adds(&s, "    }\n    return \"");
    if (conf->pac_proxy.n > 0) {
        for (int i = 0; i < conf->pac_proxy.n; i++) {
            strbuf_adds(&s, i ? "; PROXY " : "PROXY ");
            add_js_word(&s, conf->pac_proxy.v[i]);
        }
    } else {
        strbuf_adds(&s, "PROXY ");
        if (strchr(local_addr, ':'))
            strbuf_addf(&s, "[%s]:%u", local_addr, local_port);
        else
            strbuf_addf(&s, "%s:%u", local_addr, local_port);
    }
    if (conf->pac_direct_fallback)
        strbuf_adds(&s, "; DIRECT");
    strbuf_adds(&s, "\";\n}\n");
    if (s.failed) {
        strbuf_free(&s);
        return NULL;
    }
    *len = s.len;
    return s.p;
}

void pac_serve(txn_t *t)
{
    char addr[NETADDR_STRLEN];
    size_t len = 0;
    char *pac;

    netaddr_format(&t->c->local, addr, sizeof(addr));
    pac = pac_generate(t->conf, addr, t->c->local_port, &len);
    if (pac == NULL) {
        txn_respond_error(t, 500, "TCP_MISS", "ERR_NOT_FOUND", "Out of memory.");
        return;
    }
    txn_respond_page(t, 200, "application/x-ns-proxy-autoconfig",
                     "Cache-Control: max-age=300\r\n", pac, len);
    free(pac);
}
