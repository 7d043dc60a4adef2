/* dash.c - the DASH manifest routes: hls.c's machinery with the MPD rewriter.
 *
 * A file of their own so that only the program routing them (mediarelay-m3u8)
 * links mpd.c's parser, and with it libxml2, ICU and libstdc++ (~1.7 MiB
 * resident).  GNU ld decides --as-needed before --gc-sections drops unused
 * code, so a reference to mr_mpd_rewrite anywhere in hls.o would keep
 * libxml2 in every program that serves a playlist (mediarelay-proxy).
 */
#include "relay/hls.h"

#include "format/mpd.h"

int mr_dash_media_manifest(struct mr_ctx *ctx)
{
    return mr_hls_media_manifest(ctx, mr_mpd_rewrite);
}

int mr_dash_nested_manifest(struct mr_ctx *ctx)
{
    return mr_hls_nested_mpd(ctx, mr_mpd_rewrite);
}
