/* handlers.h - mediarelay-m3u8's request handlers (main.c routes them):
 * HLS playlists in playlist.c, DASH manifests in dash.c, both served by
 * the relay's manifest service (relay/manifest.h). */
#ifndef MR_M3U8_HANDLERS_H
#define MR_M3U8_HANDLERS_H

#include "relay/manifest.h"

struct mr_ctx;

int mr_hls_media_playlist(struct mr_ctx *ctx);     /* /api/media/{id}/index.m3u8 */
int mr_hls_nested_playlist(struct mr_ctx *ctx);    /* /api/m3u8/{token}.m3u8 */
int mr_hls_channel_playlist(struct mr_ctx *ctx);   /* /live/{channel}.m3u8 */
int mr_hls_channel_list(struct mr_ctx *ctx);       /* /live/channels.m3u */
int mr_dash_media_manifest(struct mr_ctx *ctx);    /* /api/media/{id}/manifest.mpd */
int mr_dash_nested_manifest(struct mr_ctx *ctx);   /* /api/m3u8/{token}.mpd */

/* A media item's entry manifest: its HLS playlist (mpd_rewrite NULL) or
 * its MPD (dash.c hands mr_mpd_rewrite in). */
int mr_hls_media_manifest(struct mr_ctx *ctx, mr_mpd_rewrite_fn *mpd_rewrite);

#endif
