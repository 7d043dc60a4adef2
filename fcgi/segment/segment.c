/* segment.c - mediarelay-segment's routes: an HLS segment, key or init
 * section, and a file under a DASH BaseURL, through the segment cache;
 * a provider's link that died is found again (relay/recovery.h). */
#include "fcgi/segment/handlers.h"

#include <string.h>

#include "app/server.h"
#include "core/error.h"
#include "format/m3u8.h"
#include "format/mpd.h"
#include "relay/recovery.h"
#include "relay/relay.h"
#include "relay/scope.h"
#include "relay/segcache.h"

/* The segment from the cache, else relayed as it is. */
static int serve(struct mr_ctx *ctx, const struct mr_relay *r, const char *key,
                 enum mr_outcome *out)
{
    int rc = mr_segcache_serve(ctx, r, key, out);

    if (!rc && *out == MR_DECLINED)
        rc = mr_relay_run(ctx, r, out);
    return rc;
}

static int try_segment(struct mr_ctx *ctx, void *arg, const char *url, bool expiry_back,
                       enum mr_outcome *out)
{
    struct mr_relay *r = arg;

    r->url = url;
    r->expiry_back = expiry_back;
    return serve(ctx, r, url, out);
}

/* Relays a segment (key: what it is cached under); when its provider's
 * link expired, finds it again and relays that. */
static int relay_segment(struct mr_ctx *ctx, struct mr_relay *r, const char *key,
                         const struct mr_scope *sco, bool hls)
{
    enum mr_outcome o;
    int rc;

    r->expiry_back = sco->media != NULL;
    if ((rc = serve(ctx, r, key, &o)) || o != MR_LINK_DEAD)
        return rc;
    return mr_recover(ctx, sco, r->url, hls, false, &r->policy, try_segment, r);
}

int mr_hls_segment(struct mr_ctx *ctx)
{
    struct mr_str data, scope, url, vars;
    const char *key;
    struct mr_relay r;
    struct mr_scope sco;
    char kind;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = mr_scope_open_token(ctx, mr_route_capture(&ctx->match, "token"), &data,
                                  &r.expire_at)))
        return mr_scope_token_error(ctx, rc);
    if (mr_m3u8_token_data(data, &kind, &scope, &url, &vars) || kind != MR_TOKEN_SEGMENT)
        return mr_scope_token_error(ctx, MR_EFORBIDDEN);
    if ((rc = mr_scope_open(ctx, scope, &sco)))
        return mr_scope_token_error(ctx, rc);
    mr_scope_relay(&r, &sco);
    r.url = mr_arena_strdup_str(ctx->arena, url);
    if (!r.url)
        return MR_ENOMEM;
    if (!(key = mr_scope_cache_key(ctx, scope, url)))
        return MR_ENOMEM;
    return relay_segment(ctx, &r, key, &sco, true);
}

/* /api/seg/{token}/{tail}: a file under a signed directory (a DASH
 * BaseURL).  The tail is joined as received, and refused when it could
 * leave the directory. */
int mr_dash_segment(struct mr_ctx *ctx)
{
    struct mr_str data, scope, dir, tail = mr_route_capture(&ctx->match, "tail");
    struct mr_dir_query query;
    const char *key;
    struct mr_relay r;
    struct mr_scope sco;
    char kind, *d, *url;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = mr_scope_open_token(ctx, mr_route_capture(&ctx->match, "token"), &data,
                                  &r.expire_at)))
        return mr_scope_token_error(ctx, rc);
    if (mr_mpd_token_data(data, &kind, &scope, &dir, &query) || kind != MR_TOKEN_DIR)
        return mr_scope_token_error(ctx, MR_EFORBIDDEN);
    if (!(d = mr_arena_strdup_str(ctx->arena, dir)))
        return MR_ENOMEM;
    /* The query is the token's (the client's only where the token's is a
     * template): what a client adds reaches neither the upstream nor the
     * cache key. */
    rc = mr_mpd_join_tail(ctx->arena, d, tail, query, ctx->req.query, &url);
    if (rc == MR_EFORBIDDEN)
        return mr_resp_error(&ctx->resp, MR_EFORBIDDEN,
                             query.query.p && memchr(query.query.p, '$', query.query.len)
                             ? "the query does not fill the manifest's template"
                             : "the path after the token leaves the signed directory");
    if (rc)
        return rc == MR_ETOOBIG ? mr_resp_error(&ctx->resp, MR_EINVAL, "the URL is too long")
                                : rc;
    if ((rc = mr_scope_open(ctx, scope, &sco)))
        return mr_scope_token_error(ctx, rc);
    mr_scope_relay(&r, &sco);
    r.url = url;
    if (!(key = mr_scope_cache_key(ctx, scope, mr_str_c(url))))
        return MR_ENOMEM;
    return relay_segment(ctx, &r, key, &sco, false);
}
