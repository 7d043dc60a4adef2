/* hls.c - playlists fetched and rewritten, segments relayed. */
#include "hls.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "error.h"
#include "m3u8.h"
#include "media.h"
#include "provider.h"
#include "relay.h"
#include "server.h"
#include "token.h"
#include "upstream.h"

/* Tokens are made per hour: the same playlist rewritten twice within the
 * hour gives the same bytes, and every token lives at least token_ttl_s. */
#define TOKEN_BUCKET_S 3600

static time_t token_expiry(const struct mr_conf *c)
{
    time_t now = time(NULL);
    return (now / TOKEN_BUCKET_S + 1) * TOKEN_BUCKET_S + c->hls.token_ttl_s;
}

/* The header policy and stats identity of a scope. */
static int scope_policy(struct mr_ctx *ctx, struct mr_str scope, struct mr_headers *policy,
                        const char **kind, const char **id)
{
    struct mr_str rest, head;

    rest = mr_str_cut(scope, ':', &head);
    if (!rest.p || !rest.len)
        return MR_EFORBIDDEN;
    *policy = (struct mr_headers){ NULL, 0 };
    if (mr_str_eq_c(head, "c")) {
        const struct mr_conf_channel *ch = mr_conf_channel_find(ctx->conf, rest);
        if (!ch)
            return MR_ENOTFOUND;
        *policy = ch->headers;
        *kind = "channel";
        *id = ch->id;
        return MR_OK;
    }
    if (mr_str_eq_c(head, "u")) {
        /* A /stream URL: no policy; counted under its host. */
        *kind = "stream";
        *id = mr_arena_strdup_str(ctx->arena, rest);
        return *id ? MR_OK : MR_ENOMEM;
    }
    if (mr_str_eq_c(head, "m")) {
        struct mr_media *m = mr_arena_calloc(ctx->arena, 1, sizeof(*m));
        struct mr_source src;
        const struct mr_provider *p;
        int rc;
        if (!m)
            return MR_ENOMEM;
        if ((rc = mr_media_get(ctx->conf, ctx->store, ctx->arena, rest, m)))
            return rc;
        p = mr_provider_find(m->provider);
        if (!p || (rc = p->resolve(ctx, m, &src)))
            return p ? rc : MR_EINTERNAL;
        *policy = src.headers;
        *kind = "media";
        *id = m->id;
        return MR_OK;
    }
    return MR_EFORBIDDEN;
}

/* "payload.mac" out of "payload.mac[.ext]" and checked: *data is what it
 * signed. */
static int open_token(struct mr_ctx *ctx, struct mr_str cap, struct mr_str *data)
{
    const char *dot = memchr(cap.p, '.', cap.len), *ext;
    int rc;

    if (!dot)
        return MR_EFORBIDDEN;
    ext = memchr(dot + 1, '.', cap.len - (size_t)(dot + 1 - cap.p));
    if (ext)
        cap.len = (size_t)(ext - cap.p);
    rc = mr_token_verify(ctx->proc->key, ctx->arena, cap, time(NULL), data, NULL);
    return rc;
}

static int token_error(struct mr_ctx *ctx, int rc)
{
    if (rc == MR_ETOKEN_EXPIRED)
        return mr_resp_error(&ctx->resp, rc, "this relay URL has expired: reload the playlist");
    if (rc == MR_ENOTFOUND)
        return mr_resp_error(&ctx->resp, rc, "the media item or channel of this URL is gone");
    return mr_resp_error(&ctx->resp, MR_EFORBIDDEN, "bad token");
}

int mr_hls_serve_playlist(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                          const char *scope)
{
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct mr_m3u8_ctx mc;
    struct mr_buf *body, *out;
    const char *why, *final;
    int rc;

    body = mr_arena_alloc(ctx->arena, sizeof(*body));
    out = mr_arena_alloc(ctx->arena, sizeof(*out));
    if (!body || !out)
        return MR_ENOMEM;
    mr_buf_init(body, (size_t)ctx->conf->hls.max_playlist_bytes);
    mr_buf_init(out, 4 * (size_t)ctx->conf->hls.max_playlist_bytes + (64u << 10));
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, body)) ||
        (rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, out)))
        return rc;

    memset(&req, 0, sizeof(req));
    req.url = url;
    req.headers = policy->v;
    req.nheaders = policy->n;
    req.max_bytes = (size_t)ctx->conf->hls.max_playlist_bytes;
    req.decode = true;
    rc = mr_upstream_fetch(ctx->up, ctx->arena, &req, &head, body);
    ctx->upstream_status = head.status;
    if (rc == MR_ETOOBIG)
        return mr_resp_error_status(&ctx->resp, 502, "playlist_too_large",
                                    "the upstream playlist is larger than hls.max_playlist_bytes");
    if (rc)
        return mr_resp_error(&ctx->resp, rc, "%s", mr_upstream_error(ctx->up));
    if (head.status >= 400)
        return mr_resp_error_status(&ctx->resp, (int)head.status, "upstream_status",
                                    mr_arena_printf(ctx->arena, "the upstream answered %ld %s",
                                                    head.status,
                                                    mr_http_reason((int)head.status)));
    if (head.status != 200)
        return mr_resp_error(&ctx->resp, MR_EUPSTREAM, "the upstream answered %ld", head.status);

    memset(&mc, 0, sizeof(mc));
    mc.key = ctx->proc->key;
    mc.prefix = ctx->conf->public_url;
    mc.scope = scope;
    mc.expire_at = token_expiry(ctx->conf);
    mc.max_bytes = (size_t)ctx->conf->hls.max_playlist_bytes;
    final = head.final_url ? head.final_url : url;
    rc = mr_m3u8_rewrite(ctx->arena, &mc, mr_buf_str(body), final, out, &why);
    if (rc == MR_EUPSTREAM || rc == MR_ETOOBIG)
        return mr_resp_error_status(&ctx->resp, 502, "bad_playlist", why);
    if (rc)
        return rc;
    if ((rc = mr_resp_set_header(&ctx->resp, "Content-Type", "application/vnd.apple.mpegurl")) ||
        (rc = mr_resp_set_header(&ctx->resp, "Cache-Control", "no-cache")) ||
        (rc = mr_resp_headerf(&ctx->resp, "Content-Length", "%zu", out->len)))
        return rc;
    return mr_resp_write(&ctx->resp, out->p ? out->p : "", out->len);
}

int mr_hls_media_playlist(struct mr_ctx *ctx)
{
    const struct mr_media *m = ctx->media;
    const struct mr_provider *p = mr_provider_find(m->provider);
    struct mr_source src;
    int rc;

    if (!p)
        return MR_EINTERNAL;
    if ((rc = p->resolve(ctx, m, &src)))
        return mr_resp_error(&ctx->resp, rc, "media item \"%s\" cannot be resolved", m->id);
    return mr_hls_serve_playlist(ctx, src.url, &src.headers,
                                 mr_arena_printf(ctx->arena, "m:%s", m->id));
}

int mr_hls_channel_playlist(struct mr_ctx *ctx)
{
    struct mr_str id = mr_route_capture(&ctx->match, "channel");
    const struct mr_conf_channel *ch = mr_conf_channel_find(ctx->conf, id);

    if (!ch)
        return mr_resp_error(&ctx->resp, MR_ENOTFOUND, "no channel \"%.*s\"",
                             (int)(id.len > 64 ? 64 : id.len), id.p);
    return mr_hls_serve_playlist(ctx, ch->url, &ch->headers,
                                 mr_arena_printf(ctx->arena, "c:%s", ch->id));
}

int mr_hls_nested_playlist(struct mr_ctx *ctx)
{
    char *u, *sc;
    struct mr_str data, scope, url;
    struct mr_headers policy;
    const char *kind_s, *id;
    char kind;
    int rc;

    if ((rc = open_token(ctx, mr_route_capture(&ctx->match, "token"), &data)))
        return token_error(ctx, rc);
    if (mr_m3u8_token_data(data, &kind, &scope, &url) || kind != MR_TOKEN_PLAYLIST)
        return token_error(ctx, MR_EFORBIDDEN);
    if ((rc = scope_policy(ctx, scope, &policy, &kind_s, &id)))
        return token_error(ctx, rc);
    u = mr_arena_strdup_str(ctx->arena, url);
    sc = mr_arena_strdup_str(ctx->arena, scope);
    if (!u || !sc)
        return MR_ENOMEM;
    return mr_hls_serve_playlist(ctx, u, &policy, sc);
}

int mr_hls_segment(struct mr_ctx *ctx)
{
    struct mr_str data, scope, url;
    struct mr_relay r;
    char kind;
    int rc;

    if ((rc = open_token(ctx, mr_route_capture(&ctx->match, "token"), &data)))
        return token_error(ctx, rc);
    if (mr_m3u8_token_data(data, &kind, &scope, &url) || kind != MR_TOKEN_SEGMENT)
        return token_error(ctx, MR_EFORBIDDEN);
    memset(&r, 0, sizeof(r));
    if ((rc = scope_policy(ctx, scope, &r.policy, &r.stats_kind, &r.stats_id)))
        return token_error(ctx, rc);
    r.url = mr_arena_strdup_str(ctx->arena, url);
    if (!r.url)
        return MR_ENOMEM;
    return mr_relay_run(ctx, &r);
}
