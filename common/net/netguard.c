/* netguard.c - address classification for the SSRF guard. */
#include "net/netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

static const char *check_v4(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
        const char *why;
    } nets[] = {
        { 0x00000000, 0xff000000, "unspecified" },   /* 0.0.0.0/8 */
        { 0x0a000000, 0xff000000, "private" },       /* 10/8 */
        { 0x64400000, 0xffc00000, "cgnat" },         /* 100.64/10 */
        { 0x7f000000, 0xff000000, "loopback" },      /* 127/8 */
        { 0xa9fe0000, 0xffff0000, "link_local" },    /* 169.254/16 */
        { 0xac100000, 0xfff00000, "private" },       /* 172.16/12 */
        { 0xc0000000, 0xffffff00, "reserved" },      /* 192.0.0/24 */
        { 0xc0000200, 0xffffff00, "reserved" },      /* 192.0.2/24 */
        { 0xc0586300, 0xffffff00, "reserved" },      /* 192.88.99/24, 6to4 relays */
        { 0xc0a80000, 0xffff0000, "private" },       /* 192.168/16 */
        { 0xc6120000, 0xfffe0000, "reserved" },      /* 198.18/15 */
        { 0xc6336400, 0xffffff00, "reserved" },      /* 198.51.100/24 */
        { 0xcb007100, 0xffffff00, "reserved" },      /* 203.0.113/24 */
        { 0xe0000000, 0xf0000000, "multicast" },     /* 224/4 */
        { 0xf0000000, 0xf0000000, "reserved" },      /* 240/4, broadcast */
    };
    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
        if ((a & nets[i].mask) == nets[i].net)
            return nets[i].why;
    return NULL;
}

static uint32_t v4_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* IPv6.  Where an IPv4 address hides inside (v4-mapped ::ffff:0:0/96,
 * IPv4-translated ::ffff:0:0:0/96, the NAT64 well-known prefix
 * 64:ff9b::/96, 6to4 2002::/16) it is judged as that IPv4 address: a
 * translator on the way would take the connection there.  A NAT64 prefix
 * of the network's own (64:ff9b:1::/48, RFC 8215) reaches that network's
 * IPv4 space, whatever the address says: refused, as is the rest of
 * 64:ff9b::/32, which is not assigned. */
static const char *check_v6(const unsigned char *a)
{
    static const unsigned char zero[16];
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const unsigned char translated[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0 };
    static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
    static const unsigned char nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 0x01 };

    if (!memcmp(a, zero, 15))
        return a[15] == 1 ? "loopback" : a[15] == 0 ? "unspecified" : "reserved";
    if (!memcmp(a, mapped, 12) || !memcmp(a, translated, 12) || !memcmp(a, nat64, 12))
        return check_v4(v4_at(a + 12));
    if (!memcmp(a, nat64_local, 6))
        return "private";                        /* 64:ff9b:1::/48, local-use NAT64 */
    if (!memcmp(a, nat64, 4))
        return "reserved";                       /* the rest of 64:ff9b::/32 */
    if (!memcmp(a, zero, 12))
        return "reserved";                       /* ::a.b.c.d, deprecated */
    if (a[0] == 0x20 && a[1] == 0x02)            /* 6to4 2002::/16 */
        return check_v4(v4_at(a + 2));
    if ((a[0] & 0xfe) == 0xfc)
        return "private";                        /* fc00::/7 */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return "link_local";                     /* fe80::/10 */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return "private";                        /* fec0::/10 site-local */
    if (a[0] == 0xff)
        return "multicast";
    if (a[0] == 0x20 && a[1] == 0x01) {
        if (a[2] == 0x0d && a[3] == 0xb8)
            return "reserved";                   /* 2001:db8::/32 documentation */
        if (a[2] == 0 && a[3] == 0)
            return "reserved";                   /* 2001::/32 Teredo: a tunnel to
                                                    an IPv4 address it hides */
        if (a[2] == 0 && a[3] == 0x02 && a[4] == 0 && a[5] == 0)
            return "reserved";                   /* 2001:2::/48 benchmarking */
        if (a[2] == 0 && (a[3] & 0xf0) == 0x10)
            return "reserved";                   /* 2001:10::/28 ORCHID */
    }
    if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0)
        return "reserved";                       /* 3fff::/20 documentation */
    if (a[0] == 0x5f && a[1] == 0x00)
        return "reserved";                       /* 5f00::/16 SRv6 SIDs */
    if (a[0] == 0x01 && !memcmp(a + 1, zero, 7))
        return "reserved";                       /* 100::/64 discard */
    return NULL;
}

const char *mr_netguard_check(const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return check_v4(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return check_v6(in6->sin6_addr.s6_addr);
    }
    return "reserved";   /* unix sockets and anything else */
}

const char *mr_netguard_check_str(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, addr, &a4) == 1)
        return check_v4(ntohl(a4.s_addr));
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return check_v6(a6.s6_addr);
    return "invalid";
}

/* Parses "addr[/bits]" into 16 bytes (IPv4 as v4-mapped) and a prefix
 * length counted over those 16 bytes. */
static bool parse_cidr(const char *cidr, unsigned char net[16], int *bits)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(cidr, '/');
    size_t n = slash ? (size_t)(slash - cidr) : strlen(cidr);
    struct in_addr a4;
    int max, b;

    if (n == 0 || n >= sizeof(addr))
        return false;
    memcpy(addr, cidr, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET, addr, &a4) == 1) {
        memset(net, 0, 10);
        net[10] = net[11] = 0xff;
        memcpy(net + 12, &a4, 4);
        max = 32;
    } else if (inet_pton(AF_INET6, addr, net) == 1) {
        max = 128;
    } else {
        return false;
    }
    b = max;
    if (slash) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || v < 0 || v > max)
            return false;
        b = (int)v;
    }
    *bits = b + (128 - max);
    return true;
}

bool mr_netguard_cidr_ok(const char *cidr)
{
    unsigned char net[16];
    int bits;
    return parse_cidr(cidr, net, &bits);
}

bool mr_netguard_match(const struct sockaddr *sa, socklen_t len, const char *cidr)
{
    unsigned char net[16], a[16];
    int bits;

    if (!parse_cidr(cidr, net, &bits))
        return false;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memset(a, 0, 10);
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        memcpy(a, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
    } else {
        return false;
    }
    for (int i = 0; i < 16 && bits > 0; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
        if ((a[i] & mask) != (net[i] & mask))
            return false;
    }
    return true;
}

void mr_netguard_conf_check(struct mr_conf *c, struct mr_conf_loader *l)
{
    for (size_t i = 0; i < c->server.trusted_proxies.n; i++)
        if (!mr_netguard_cidr_ok(c->server.trusted_proxies.v[i]))
            mr_conf_report(l, "server.trusted_proxies", "\"%s\" is not an address or CIDR block",
                   c->server.trusted_proxies.v[i]);
    for (size_t i = 0; i < c->upstream.allow_networks.n; i++)
        if (!mr_netguard_cidr_ok(c->upstream.allow_networks.v[i]))
            mr_conf_report(l, "upstream.allow_networks", "\"%s\" is not an address or CIDR block",
                   c->upstream.allow_networks.v[i]);
}
