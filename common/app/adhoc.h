/* adhoc.h - ad-hoc media items (GET /api/resolve?url=) and the bounds on
 * the anonymous clients that make them (resolve.open).
 *
 * An ad-hoc item is registered under an id made from its URL, for
 * MR_ADHOC_TTL_S after its last use.  With resolve.open anyone may make
 * one, so two bounds keep a client that iterates URLs from growing Redis
 * or running yt-dlp without end:
 *
 * - a budget per client: a request that registers a new URL, or one whose
 *   resolution is not cached, spends one; answers from the cache are free.
 *   It is a GCRA (the generic cell rate algorithm of ATM networks, the
 *   "leaky bucket as a meter") in one Redis key per client, `rl:open:
 *   {client}`: resolve.open_client_budget at once, then one every
 *   open_window_s / open_client_budget seconds; beyond, MR_ELIMIT with the
 *   exact wait.
 * - a bound on the items anonymous clients made: they are kept in the
 *   sorted set `adhoc` by last use, and past resolve.open_max_items the
 *   least recently used go, with their cached resolution and counters.
 *
 * The client is the web server's REMOTE_ADDR or, when that is one of
 * server.trusted_proxies, the first address of X-Forwarded-For, from the
 * right, that is not; an IPv6 client is its /64 (one subscriber's block,
 * which a client can cycle through).  All of this needs Redis (so do
 * ad-hoc items): MR_EUNAVAILABLE without it.
 */
#ifndef MR_ADHOC_H
#define MR_ADHOC_H

#include <stdbool.h>
#include <stddef.h>

struct mr_ctx;
struct mr_store;

#define MR_ADHOC_TTL_S        86400   /* an ad-hoc item lives this long after its last use */
#define MR_ADHOC_CLIENT_MAX   64      /* a client key: "2001:db8:1:2::/64", "unknown" */
#define MR_ADHOC_XFF_HOPS     16      /* X-Forwarded-For entries looked at, from the right */
#define MR_ADHOC_EVICT_MAX    256     /* items dropped by one call, at most */

/* The client of the request as a budget key into out (at least
 * MR_ADHOC_CLIENT_MAX bytes): "192.0.2.7", "2001:db8:1:2::/64", or
 * "unknown" when the web server gave no address that parses. */
void mr_adhoc_client(const struct mr_ctx *ctx, char *out, size_t len);

/* Whether the item is registered, and whether asking for it costs no
 * work: it is registered and, for a remote provider, its resolution or its
 * remembered failure is cached. */
int mr_adhoc_cached(struct mr_ctx *ctx, const char *provider, bool remote, const char *id,
                    bool *registered, bool *cached);

/* Spends one of the client's budget (burst at once, then one every
 * window_s / burst seconds).  MR_OK; MR_ELIMIT when it is spent, with
 * *retry_s the seconds until the next one (at least 1); MR_EUNAVAILABLE
 * while Redis is down. */
int mr_adhoc_spend(struct mr_store *store, const char *client, long burst, long window_s,
                   long *retry_s);

/* Notes the item as used now: `add` puts it in the set of anonymous items
 * (for an item an anonymous client registered; else it is only touched
 * when there already: an item the admin registered never joins), then the set is cut to
 * `max` by dropping the least recently used (never this one) and those
 * unused for MR_ADHOC_TTL_S, with their keys: media:{id},
 * url:{provider}:{id}, fail:url:{provider}:{id}, stats:media:{id} and its
 * stats:index entry.  At most MR_ADHOC_EVICT_MAX go per call.  *evicted
 * (may be NULL): how many went. */
int mr_adhoc_keep(struct mr_store *store, const char *provider, const char *id, bool add,
                  long max, size_t *evicted);

#endif
