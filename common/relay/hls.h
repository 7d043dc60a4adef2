/* hls.h - serving HLS through the relay: playlists fetched and rewritten,
 * segments, keys and init sections relayed, all behind signed tokens.
 *
 * A token's scope says whose header policy applies upstream: "m:{media}"
 * (the media item's provider), "c:{channel}" (the channel's headers),
 * "u:{host}" (an allow-listed /stream URL: none) or "s:{host}" (a signed
 * /stream link: none, and no token made under it outlives the token it
 * came from, so none outlives the link).
 */
#ifndef MR_HLS_H
#define MR_HLS_H

#include <time.h>

#include "core/str.h"

struct mr_ctx;

/* What a /stream URL puts on the playlist it opens. */
struct mr_hls_limits {
    time_t expire_cap;                       /* the tokens made expire no later
                                                (a signed link's exp); 0: none */
    const struct mr_strlist *redirect_hosts; /* the fetch redirects only to these
                                                hosts (an allow-listed URL); NULL: any */
};

/* Fetches the playlist at url with the scope's header policy, rewrites it
 * and answers it.  Upstream errors keep their status; a body that is not a
 * playlist is a 502.  lim may be NULL. */
int mr_hls_serve_playlist(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                          const char *scope, const struct mr_hls_limits *lim);

/* The handlers of the routes (fcgi/m3u8.c and fcgi/segment.c). */
int mr_hls_media_playlist(struct mr_ctx *ctx);     /* /api/media/{id}/index.m3u8 */
int mr_hls_nested_playlist(struct mr_ctx *ctx);    /* /api/m3u8/{token}.m3u8 */
int mr_hls_channel_playlist(struct mr_ctx *ctx);   /* /live/{channel}.m3u8 */
int mr_hls_segment(struct mr_ctx *ctx);            /* /api/seg/{token}[.ext] */
int mr_hls_channel_list(struct mr_ctx *ctx);       /* /live/channels.m3u */

/* DASH, on the same machinery (docs/dash.md).  The two manifest routes are
 * in dash.c. */
int mr_dash_media_manifest(struct mr_ctx *ctx);    /* /api/media/{id}/manifest.mpd */
int mr_dash_nested_manifest(struct mr_ctx *ctx);   /* /api/m3u8/{token}.mpd */
int mr_dash_segment(struct mr_ctx *ctx);           /* /api/seg/{token}/{tail*} */

/* For dash.c: the MPD rewriter is handed in (mr_mpd_rewrite's signature)
 * rather than named here, so that a program serving only HLS links neither
 * the MPD parser nor libxml2. */
struct mr_arena;
struct mr_buf;
struct mr_mpd_ctx;
typedef int mr_mpd_rewrite_fn(struct mr_arena *a, const struct mr_mpd_ctx *c, struct mr_str body,
                              const char *final_url, struct mr_buf *out, const char **why);
/* A media item's manifest: its HLS playlist (rewrite NULL) or its MPD. */
int mr_hls_media_manifest(struct mr_ctx *ctx, mr_mpd_rewrite_fn *rewrite);
/* /api/m3u8/{token}.mpd with the given rewriter. */
int mr_hls_nested_mpd(struct mr_ctx *ctx, mr_mpd_rewrite_fn *rewrite);

#endif
