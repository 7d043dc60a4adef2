/* recovery.h - finding an upstream link again after it died under a
 * player.
 *
 * A provider's links expire (provider.remote): a playlist, MPD or segment
 * URL that answered 401/403/404/410 is looked for in the item's fresh
 * resolution -- by path among the source's URLs and the BaseURLs of an MPD
 * the provider built, in the fresh HLS playlists (by path, else by the
 * position hints the relay URL carries: ?v= the variant, ?n= the media
 * sequence number), last in the source's directory -- and fetched again
 * there.  What was found is kept (reloc:{media}:{hash}) so a VOD player
 * whose playlist holds dead links costs one resolution, not one per
 * segment.
 */
#ifndef MR_RECOVERY_H
#define MR_RECOVERY_H

#include <stdbool.h>

#include "app/outcome.h"
#include "core/str.h"

struct mr_ctx;
struct mr_scope;

/* The "v" hint of the request's query: which playlist of its master this
 * is (at most MR_M3U8_MAX_VARIANTS - 1), or -1.  The hints are unsigned,
 * so whatever a client sends comes out as one of few values or as -1. */
long mr_recovery_variant_hint(struct mr_ctx *ctx);

/* Fetches and answers `url` for mr_recover: MR_OK with *out (expiry_back:
 * a 401/403/404/410 is handed back unanswered, MR_LINK_DEAD), or an error
 * for the caller to answer. */
typedef int (*mr_recovery_try_fn)(struct mr_ctx *ctx, void *arg, const char *url,
                                  bool expiry_back, enum mr_outcome *out);

/* After `old`, an upstream URL of the scope's media item (sco->media), answered
 * 401/403/404/410 (ctx->upstream_status): finds it again and answers
 * through try().  First where an earlier request with the same hints found
 * it; then in the item's cached resolution (another request may have
 * refreshed it already); last in a fresh one.  hls: old came from an HLS
 * playlist (the hints apply); playlist: old is a playlist itself.  *policy
 * becomes the fresh resolution's headers before try() runs.  Answers what
 * it cannot find with the upstream's status; returns what it or try()
 * returned. */
int mr_recover(struct mr_ctx *ctx, const struct mr_scope *sco, const char *old, bool hls,
               bool playlist, struct mr_headers *policy, mr_recovery_try_fn try, void *arg);

/* *dead when `url` answers 401/403/404/410 to a one-byte request (other
 * failures are for the player's own requests to meet).  For a manifest the
 * provider built, which is never fetched.  MR_OK, or MR_ENOMEM. */
int mr_probe_link(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                  bool *dead);

#endif
