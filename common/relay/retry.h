/* retry.h - a media item's upstream tried, and on a dead link tried once
 * more with a fresh resolution.
 *
 * A provider's links expire (provider.remote).  The one rule for every
 * path that fetches one (the proxy's whole files, a media item's manifest,
 * a segment's link found again): resolve the item (through the URL cache),
 * try; when the try says the link is dead (MR_LINK_DEAD), resolve it again
 * (mr_resolve_again: once for all the requests that meet it) and try once
 * more.  The player sees nothing of an expired link.
 */
#ifndef MR_RETRY_H
#define MR_RETRY_H

#include "app/outcome.h"

struct mr_ctx;
struct mr_media;
struct mr_source;

struct mr_retry {
    /* Fetches and answers from the resolution src (attempt 0: the cached
     * one; 1: the fresh one).  MR_OK with *out (MR_LINK_DEAD: nothing
     * answered, try the next resolution), or an error, which ends the
     * retry and is returned. */
    int (*try)(struct mr_ctx *ctx, void *arg, const struct mr_source *src, int attempt,
               enum mr_outcome *out);
    /* Answers a resolution that failed (rc, the resolver's error); NULL:
     * mr_answer_unresolved. */
    int (*unresolved)(struct mr_ctx *ctx, void *arg, int rc);
    void *arg;
};

/* Runs the rule above for the item m.  MR_OK with *out: MR_ANSWERED, or
 * MR_LINK_DEAD when the fresh resolution's link was dead too (nothing
 * answered); or an error (what try or unresolved returned). */
int mr_retry_resolved(struct mr_ctx *ctx, const struct mr_media *m, const struct mr_retry *t,
                      enum mr_outcome *out);

#endif
