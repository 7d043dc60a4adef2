/* manifest.h - manifests through the relay: an HLS playlist or a DASH MPD
 * fetched with a scope's header policy, rewritten behind signed tokens
 * (format/m3u8.h, format/mpd.h) and answered, through the playlist cache.
 *
 * The playlist cache: pl:{hash of kind, scope, URL, prefix, variables,
 * position hint and expiry cap} holds "MRPL1 <fresh until, ms since the
 * epoch>\n" and the rewritten manifest; it is kept past its freshness (a
 * stale copy is what the others serve while one request refreshes it under
 * lock:pl:{hash}).  How long a copy is fresh is what the manifest's engine
 * read in it (mr_manifest_refresh): a live HLS playlist for half its target
 * duration, a dynamic MPD for half its minimumUpdatePeriod (1 s without
 * one), both bounded by hls.live_playlist_max_cache_ms; a VOD or master
 * playlist and a static MPD for hls.vod_playlist_cache_s.
 *
 * A relay service: it answers (or returns an error for the caller to
 * answer), except that a dead upstream link is handed back when asked
 * (mr_manifest.expiry_back: the outcome MR_LINK_DEAD), for the caller to
 * find the link again.
 */
#ifndef MR_MANIFEST_H
#define MR_MANIFEST_H

#include <stdbool.h>
#include <time.h>

#include "app/outcome.h"
#include "core/str.h"

struct mr_arena;
struct mr_buf;
struct mr_ctx;
struct mr_mpd_ctx;
struct mr_strlist;

/* The MPD rewriter (mr_mpd_rewrite's signature), handed in by the program
 * that serves DASH rather than named here, so that a program serving only
 * HLS (mediarelay-proxy) links neither the MPD parser nor libxml2: GNU ld
 * decides --as-needed before --gc-sections drops unused code. */
typedef int mr_mpd_rewrite_fn(struct mr_arena *a, const struct mr_mpd_ctx *c, struct mr_str body,
                              const char *final_url, struct mr_buf *out, const char **why);

/* A manifest to fetch, rewrite and answer: an HLS playlist or a DASH MPD. */
struct mr_manifest {
    const char *url;
    const struct mr_headers *policy;
    const char *scope;
    const char *vars;                  /* HLS: the parent's variables as carried
                                          in the token ("" for none) */
    const struct mr_headers *imports;  /* the same parsed, or NULL */
    mr_mpd_rewrite_fn *mpd_rewrite;    /* DASH: mr_mpd_rewrite; NULL for HLS */
    const char *inline_body;           /* a manifest the provider built (url is
                                          then only its base): not fetched */
    bool expiry_back;                  /* 401/403/404/410 not answered but
                                          handed back (MR_LINK_DEAD) */
    bool locate;                       /* HLS: position hints (mr_m3u8_ctx) */
    long variant;                      /* the hint this playlist came with, or -1 */
    time_t expire_cap;                 /* tokens made expire no later (0: none) */
    const struct mr_strlist *redirect_hosts;   /* redirects only to these (NULL: any) */
};

/* Answers the manifest, from the playlist cache or fetched and rewritten.
 * Upstream errors keep their status; a body that is not a manifest is a
 * 502.  MR_OK with *out: MR_ANSWERED, or MR_LINK_DEAD unanswered when
 * expiry_back and the upstream answered 401/403/404/410
 * (ctx->upstream_status says which); else an error for the caller to
 * answer. */
int mr_manifest_serve(struct mr_ctx *ctx, const struct mr_manifest *m, enum mr_outcome *out);

/* What a /stream URL puts on the playlist it opens. */
struct mr_manifest_limits {
    time_t expire_cap;                       /* the tokens made expire no later
                                                (a signed link's exp); 0: none */
    const struct mr_strlist *redirect_hosts; /* the fetch redirects only to these
                                                hosts (an allow-listed URL); NULL: any */
};

/* Fetches the HLS playlist at url with the scope's header policy, rewrites
 * it and answers it (mr_manifest_serve).  lim may be NULL. */
int mr_manifest_serve_playlist(struct mr_ctx *ctx, const char *url,
                               const struct mr_headers *policy, const char *scope,
                               const struct mr_manifest_limits *lim);

#endif
