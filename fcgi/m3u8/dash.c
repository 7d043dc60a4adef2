/* dash.c - mediarelay-m3u8's DASH routes: the playlist machinery with the
 * MPD rewriter.
 *
 * The one file that names mr_mpd_rewrite, so that only this program links
 * the MPD parser, and with it libxml2, ICU and libstdc++ (~1.7 MiB
 * resident): GNU ld decides --as-needed before --gc-sections drops unused
 * code, so a reference in the relay services would keep libxml2 in every
 * program that serves a playlist (mediarelay-proxy).
 */
#include "fcgi/m3u8/handlers.h"

#include "app/server.h"
#include "core/error.h"
#include "format/mpd.h"
#include "relay/manifest.h"
#include "relay/scope.h"

int mr_dash_media_manifest(struct mr_ctx *ctx)
{
    return mr_hls_media_manifest(ctx, mr_mpd_rewrite);
}


/* /api/m3u8/{token}.mpd: an MPD's Location, PatchLocation or remote
 * xlink:href, through the relay. */
int mr_dash_nested_manifest(struct mr_ctx *ctx)
{
    struct mr_dir_query query;
    struct mr_str data, scope, url;
    struct mr_scope sco;
    struct mr_manifest m;
    enum mr_outcome o;     /* answered: m.expiry_back is false */
    time_t exp = 0;
    char kind;
    int rc;

    if ((rc = mr_scope_open_token(ctx, mr_route_capture(&ctx->match, "token"), &data, &exp)))
        return mr_scope_token_error(ctx, rc);
    if (mr_mpd_token_data(data, &kind, &scope, &url, &query) || kind != MR_TOKEN_PLAYLIST)
        return mr_scope_token_error(ctx, MR_EFORBIDDEN);
    if ((rc = mr_scope_open(ctx, scope, &sco)))
        return mr_scope_token_error(ctx, rc);
    m = (struct mr_manifest){ mr_arena_strdup_str(ctx->arena, url), &sco.policy,
                              mr_arena_strdup_str(ctx->arena, scope), "", NULL, mr_mpd_rewrite,
                              NULL, false, false, -1, mr_scope_cap(scope, exp), NULL };
    return m.url && m.scope ? mr_manifest_serve(ctx, &m, &o) : MR_ENOMEM;
}
