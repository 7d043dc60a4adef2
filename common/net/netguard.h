/* netguard.h - which peer addresses an upstream connection may reach.
 *
 * The SSRF guard's address policy: loopback, private (RFC 1918, ULA),
 * link-local (cloud metadata at 169.254.169.254 among them), CGNAT,
 * multicast, unspecified and reserved ranges are refused, also when they
 * hide inside an IPv6 address (v4-mapped and v4-translated, the NAT64
 * well-known prefix, 6to4), and so are a network's own NAT64 prefix
 * (64:ff9b:1::/48) and Teredo.  The upstream
 * module asks it for the address it is about to connect to, so neither DNS
 * rebinding nor a redirect can get around it.
 */
#ifndef MR_NETGUARD_H
#define MR_NETGUARD_H

#include <stdbool.h>
#include <sys/socket.h>

/* NULL when the address may be reached; else why not: "loopback",
 * "private", "link_local", "cgnat", "multicast", "unspecified",
 * "reserved". */
const char *mr_netguard_check(const struct sockaddr *sa, socklen_t len);

/* The same for a numeric address string ("10.0.0.1", "::1"); "invalid"
 * for anything that is not one. */
const char *mr_netguard_check_str(const char *addr);

/* True when the address lies in `cidr` ("10.1.2.0/24", "fd00::/8", or a
 * single address).  False for a malformed cidr. */
bool mr_netguard_match(const struct sockaddr *sa, socklen_t len, const char *cidr);
/* True when `cidr` is well-formed. */
bool mr_netguard_cidr_ok(const char *cidr);

/* The configuration's check (core/config.h): server.trusted_proxies and
 * upstream.allow_networks hold addresses or CIDR blocks. */
struct mr_conf;
struct mr_conf_loader;
void mr_netguard_conf_check(struct mr_conf *c, struct mr_conf_loader *l);

#endif
