/* scope.c - relay tokens and their scopes, opened (scope.h). */
#include "relay/scope.h"

#include <string.h>
#include <time.h>

#include "app/auth.h"
#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/token.h"
#include "relay/relay.h"
#include "relay/resolver.h"

int mr_scope_open(struct mr_ctx *ctx, struct mr_str scope, struct mr_scope *out)
{
    struct mr_str rest, head;

    rest = mr_str_cut(scope, ':', &head);
    if (!rest.p || !rest.len)
        return MR_EFORBIDDEN;
    memset(out, 0, sizeof(*out));
    if (mr_str_eq_c(head, "c")) {
        const struct mr_conf_channel *ch = mr_conf_channel_find(ctx->conf, rest);
        if (!ch)
            return MR_ENOTFOUND;
        out->policy = ch->headers;
        out->kind = "channel";
        out->id = ch->id;
        return MR_OK;
    }
    if (mr_str_eq_c(head, "u") || mr_str_eq_c(head, "s")) {
        /* A /stream URL (allow-listed, or signed): no policy; counted under
         * its host. */
        out->kind = "stream";
        out->id = mr_arena_strdup_str(ctx->arena, rest);
        return out->id ? MR_OK : MR_ENOMEM;
    }
    if (mr_str_eq_c(head, "m")) {
        struct mr_media *m = mr_arena_calloc(ctx->arena, 1, sizeof(*m));
        struct mr_source src;
        const struct mr_provider *p;
        int rc;
        struct mr_str id, t = mr_str_cut(rest, '/', &id);
        if (!m)
            return MR_ENOMEM;
        if (t.p && !(out->t = mr_arena_strdup_str(ctx->arena, t)))
            return MR_ENOMEM;
        if ((rc = mr_media_get(ctx->conf, ctx->store, ctx->arena, id, m)))
            return rc;
        if ((rc = mr_auth_media(ctx, m)))
            return rc;
        out->members_only = m->room && *m->room;
        p = mr_provider_find(m->provider);
        if (!p || (rc = mr_resolve(ctx, m, &src)))
            return p ? rc : MR_EINTERNAL;
        out->policy = src.headers;
        out->kind = "media";
        out->id = m->id;
        if (p->remote)
            out->media = m;
        return MR_OK;
    }
    return MR_EFORBIDDEN;
}

int mr_scope_open_token(struct mr_ctx *ctx, struct mr_str cap, struct mr_str *data, time_t *exp)
{
    const char *ext = memchr(cap.p, '.', cap.len);

    if (ext)
        cap.len = (size_t)(ext - cap.p);
    return mr_token_verify(ctx->proc->key, ctx->arena, cap, mr_clock_wall_s(), data, exp);
}

int mr_scope_token_error(struct mr_ctx *ctx, int rc)
{
    if (ctx->resp.headers_sent)
        return rc;      /* answered by mr_scope_open: a room refused the request */
    if (rc == MR_ETOKEN_EXPIRED)
        return mr_resp_error(&ctx->resp, rc, "this relay URL has expired: reload the playlist");
    if (rc == MR_ENOTFOUND)
        return mr_resp_error(&ctx->resp, rc, "the media item or channel of this URL is gone");
    return mr_resp_error(&ctx->resp, MR_EFORBIDDEN, "bad token");
}

time_t mr_scope_cap(struct mr_str scope, time_t exp)
{
    return scope.len >= 2 && scope.p[0] == 's' && scope.p[1] == ':' ? exp : 0;
}

const char *mr_scope_cache_key(struct mr_ctx *ctx, struct mr_str scope, struct mr_str url)
{
    struct mr_str head, rest = mr_str_cut(scope, ':', &head);

    if (mr_str_eq_c(head, "c")) {
        const struct mr_conf_channel *ch = mr_conf_channel_find(ctx->conf, rest);
        const char *q = memchr(url.p, '?', url.len);
        if (ch && ch->cache_ignore_query && q)
            url.len = (size_t)(q - url.p);
    }
    return mr_arena_strdup_str(ctx->arena, url);
}

void mr_scope_relay(struct mr_relay *r, const struct mr_scope *sco)
{
    r->policy = sco->policy;
    r->stats_kind = sco->kind;
    r->stats_id = sco->id;
    r->members_only = sco->members_only;
}
