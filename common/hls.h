/* hls.h - serving HLS through the relay: playlists fetched and rewritten,
 * segments, keys and init sections relayed, all behind signed tokens.
 *
 * A token's scope says whose header policy applies upstream: "m:{media}"
 * (the media item's provider), "c:{channel}" (the channel's headers) or
 * "u:{host}" (a /stream URL: none).
 */
#ifndef MR_HLS_H
#define MR_HLS_H

#include "str.h"

struct mr_ctx;

/* Fetches the playlist at url with the scope's header policy, rewrites it
 * and answers it.  Upstream errors keep their status; a body that is not a
 * playlist is a 502. */
int mr_hls_serve_playlist(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                          const char *scope);

/* The handlers of the routes (fcgi/m3u8.c and fcgi/segment.c). */
int mr_hls_media_playlist(struct mr_ctx *ctx);     /* /api/media/{id}/index.m3u8 */
int mr_hls_nested_playlist(struct mr_ctx *ctx);    /* /api/m3u8/{token}.m3u8 */
int mr_hls_channel_playlist(struct mr_ctx *ctx);   /* /live/{channel}.m3u8 */
int mr_hls_segment(struct mr_ctx *ctx);            /* /api/seg/{token}[.ext] */
int mr_hls_channel_list(struct mr_ctx *ctx);       /* /live/channels.m3u */

/* DASH, on the same machinery (docs/dash.md). */
int mr_dash_media_manifest(struct mr_ctx *ctx);    /* /api/media/{id}/manifest.mpd */
int mr_dash_nested_manifest(struct mr_ctx *ctx);   /* /api/m3u8/{token}.mpd */
int mr_dash_segment(struct mr_ctx *ctx);           /* /api/seg/{token}/{tail*} */

#endif
