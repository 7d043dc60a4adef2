/* segcache.h - segments cached in Redis and fetched from the upstream once.
 *
 * An object (a segment, key, init section or part) is cached whole, up to
 * hls.segment_cache_max_bytes, for hls.segment_cache_ttl_s, in three keys:
 *
 *   seg:{h}        hash: st ("fill", "done" or "skip"), ct, cc, etag, lm, len
 *                  (ct as the upstream sent it: it goes through the allow-list
 *                  of mimetype.h each time it is served)
 *   seg:{h}:b      the body, grown by APPEND while the upstream sends it
 *   lock:seg:{h}   the filler's id, renewed with every append
 *
 * {h} is a hash of the upstream URL (without its query for channels that
 * say so).  The first request takes the lock and fetches; the requests that
 * come while the fill runs follow it, reading the body as it grows, so they
 * get bytes as they arrive, not after.  Only the filler writes, and only
 * while it holds the lock (each write checks, in Redis, that it still does).
 * A fill is "done" only once the whole body arrived; a fill whose writer
 * died (its lock lapsed) or failed is never served as complete: the answers
 * that followed it break off and the next request fetches again.  "skip"
 * remembers for a while that an object is not for the cache (no-store,
 * private, larger than the cap), so it is relayed at once.
 *
 * A cached object answers Range (single ranges; others get the whole
 * object), HEAD, If-None-Match, If-Modified-Since and If-Range itself.
 * The filler goes on when its own client leaves: others may be following,
 * and a fill is bounded by the cap.
 */
#ifndef MR_SEGCACHE_H
#define MR_SEGCACHE_H

#include "app/outcome.h"

struct mr_ctx;
struct mr_relay;

/* Answers the request from the cache, or fills it.  MR_OK with *out:
 * MR_ANSWERED (whatever the status); MR_DECLINED, not answered, for the
 * caller to relay it as it is: the cache is off or Redis is down, the
 * object is not cacheable, a HEAD that missed, an upstream error status
 * (the relay passes it on); MR_LINK_DEAD, not answered, for an upstream
 * 401/403/404/410 when r->expiry_back.  Errors: answer them (nothing sent
 * yet). */
int mr_segcache_serve(struct mr_ctx *ctx, const struct mr_relay *r, const char *key_url,
                      enum mr_outcome *out);

#endif
