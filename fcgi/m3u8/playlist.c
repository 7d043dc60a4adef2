/* playlist.c - mediarelay-m3u8's HLS routes: a media item's playlist,
 * the playlists nested in it, a channel's, and the channel list. */
#include "fcgi/m3u8/handlers.h"

#include <string.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "format/channels.h"
#include "format/m3u8.h"
#include "net/url.h"
#include "relay/manifest.h"
#include "relay/mediasource.h"
#include "relay/recovery.h"
#include "relay/retry.h"
#include "relay/scope.h"

/* A try of mr_hls_media_manifest (mr_retry_resolved): the source ?t=
 * names, its manifest served; a dead link is handed back only on the
 * first try. */
struct manifest_try {
    const struct mr_media *me;
    const struct mr_provider *p;
    const char *t, *scope;
    mr_mpd_rewrite_fn *mpd_rewrite;
};

static int try_manifest(struct mr_ctx *ctx, void *arg, const struct mr_source *src, int attempt,
                        enum mr_outcome *out)
{
    const struct manifest_try *mt = arg;
    struct mr_manifest m;
    const char *url, *type;
    bool dead = false;
    int rc;

    *out = MR_ANSWERED;
    if (mr_source_pick(src, mt->t, &url, &type))
        return mr_answer_no_source(ctx, mt->me, mt->t);
    if (mt->p->own_files)
        return mr_answer_moved(ctx, url);
    m = (struct mr_manifest){ url, &src->headers, mt->scope, "", NULL, mt->mpd_rewrite,
                              mt->t ? NULL : src->inline_mpd, mt->p->remote && !attempt,
                              mt->p->remote, -1, 0, NULL };
    /* A built MPD is not fetched: its link is asked for one byte to
     * learn whether it still works. */
    if (m.inline_body && m.expiry_back &&
        (rc = mr_probe_link(ctx, url, &src->headers, &dead)))
        return rc;
    if (dead) {
        *out = MR_LINK_DEAD;
        return MR_OK;
    }
    return mr_manifest_serve(ctx, &m, out);
}

/* The entry manifest of a media item (?t=name: one of its other sources).
 * When the provider's link fails (401/403/404/410), the item is resolved
 * again, bypassing the cache, and the manifest fetched once more: the
 * player sees nothing of an expired link.  An item that is a conf channel
 * (provider.channel_of) is rewritten in the channel's scope, so that it and
 * /live/{channel}.m3u8 share their caches. */
int mr_hls_media_manifest(struct mr_ctx *ctx, mr_mpd_rewrite_fn *mpd_rewrite)
{
    const struct mr_media *me = ctx->media;
    const struct mr_provider *p = mr_provider_find(me->provider);
    const char *channel = p && p->channel_of ? p->channel_of(me) : NULL;
    struct manifest_try mt = { me, p, NULL, NULL, mpd_rewrite };
    struct mr_retry retry = { try_manifest, NULL, &mt };
    enum mr_outcome o;
    char *t = NULL, *scope;
    int rc;

    if (!p)
        return MR_EINTERNAL;
    if (mr_request_query(&ctx->req, ctx->arena, "t", &t) == MR_EINVAL)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "malformed query string");
    if (t && (strlen(t) > 200 || mr_url_has_ctl(mr_str_c(t))))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "t: at most 200 bytes, no control bytes");
    /* The tokens say which source (?t=) they came from, so a link that dies
     * is looked for again in that one. */
    scope = channel ? mr_arena_printf(ctx->arena, "c:%s", channel)
          : t ? mr_arena_printf(ctx->arena, "m:%s/%s", me->id, t)
              : mr_arena_printf(ctx->arena, "m:%s", me->id);
    if (!scope)
        return MR_ENOMEM;
    mt.t = t;
    mt.scope = scope;
    if ((rc = mr_retry_resolved(ctx, me, &retry, &o)))
        return rc;
    return o == MR_ANSWERED ? MR_OK : MR_EINTERNAL;
}

int mr_hls_media_playlist(struct mr_ctx *ctx)
{
    return mr_hls_media_manifest(ctx, NULL);
}

int mr_hls_channel_playlist(struct mr_ctx *ctx)
{
    struct mr_str id = mr_route_capture(&ctx->match, "channel");
    const struct mr_conf_channel *ch = mr_conf_channel_find(ctx->conf, id);

    if (!ch)
        return mr_resp_error(&ctx->resp, MR_ENOTFOUND, "no channel \"%.*s\"",
                             (int)(id.len > 64 ? 64 : id.len), id.p);
    return mr_manifest_serve_playlist(ctx, ch->url, &ch->headers,
                                      mr_arena_printf(ctx->arena, "c:%s", ch->id), NULL);
}

static int try_playlist(struct mr_ctx *ctx, void *arg, const char *url, bool expiry_back,
                        enum mr_outcome *out)
{
    struct mr_manifest *m = arg;

    m->url = url;
    m->expiry_back = expiry_back;
    return mr_manifest_serve(ctx, m, out);
}

int mr_hls_nested_playlist(struct mr_ctx *ctx)
{
    char *u, *sc, *vs;
    struct mr_str data, scope, url, vars;
    struct mr_headers imports;
    struct mr_scope sco;
    time_t exp = 0;
    char kind;
    int rc;

    if ((rc = mr_scope_open_token(ctx, mr_route_capture(&ctx->match, "token"), &data, &exp)))
        return mr_scope_token_error(ctx, rc);
    if (mr_m3u8_token_data(data, &kind, &scope, &url, &vars) || kind != MR_TOKEN_PLAYLIST ||
        mr_m3u8_parse_vars(ctx->arena, vars, &imports))
        return mr_scope_token_error(ctx, MR_EFORBIDDEN);
    if ((rc = mr_scope_open(ctx, scope, &sco)))
        return mr_scope_token_error(ctx, rc);
    u = mr_arena_strdup_str(ctx->arena, url);
    sc = mr_arena_strdup_str(ctx->arena, scope);
    vs = mr_arena_strdup_str(ctx->arena, vars);
    if (!u || !sc || !vs)
        return MR_ENOMEM;
    {
        const struct mr_media *me = sco.media;
        struct mr_manifest m = { u, &sco.policy, sc, vs, imports.n ? &imports : NULL, NULL, NULL,
                                 me != NULL, me != NULL, mr_recovery_variant_hint(ctx),
                                 mr_scope_cap(scope, exp), NULL };
        enum mr_outcome o;
        if ((rc = mr_manifest_serve(ctx, &m, &o)) || o != MR_LINK_DEAD)
            return rc;
        return mr_recover(ctx, &sco, u, true, true, &sco.policy, try_playlist, &m);
    }
}

int mr_hls_channel_list(struct mr_ctx *ctx)
{
    struct mr_buf *out = mr_arena_alloc(ctx->arena, sizeof(*out));
    char *base;
    int rc;

    if (!out)
        return MR_ENOMEM;
    mr_buf_init(out, 64u << 20);
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, out)))
        return rc;
    /* IPTV players fetch the list and then each entry: absolute URLs. */
    if ((rc = mr_request_base_url(&ctx->req, ctx->conf, ctx->arena, &base)))
        return mr_resp_error(&ctx->resp, rc, "cannot tell this server's own URL: set public_url");
    if ((rc = mr_channels_write_m3u(ctx->conf, base, out)))
        return rc;
    /* Names and logos from channels_m3u, which may be someone else's list. */
    if ((rc = mr_resp_foreign(&ctx->resp)) ||
        (rc = mr_resp_set_header(&ctx->resp, "Content-Type", "audio/x-mpegurl; charset=utf-8")) ||
        (rc = mr_resp_set_header(&ctx->resp, "Cache-Control", "no-cache")) ||
        (rc = mr_resp_headerf(&ctx->resp, "Content-Length", "%zu", out->len)))
        return rc;
    return mr_resp_write(&ctx->resp, out->p ? out->p : "", out->len);
}
