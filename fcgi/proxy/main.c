/* main.c - mediarelay-proxy: whole files and dynamic upstreams. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "app/provider.h"
#include "app/server.h"
#include "app/sign.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "net/url.h"
#include "relay/manifest.h"
#include "relay/mediasource.h"
#include "relay/relay.h"
#include "relay/resolver.h"
#include "relay/retry.h"

/* A try of proxy_media: the source ?t= names, relayed; a dead link is
 * handed back only on the first try. */
struct media_try {
    const struct mr_media *m;
    const struct mr_provider *p;
    const char *t;
};

static int try_media(struct mr_ctx *ctx, void *arg, const struct mr_source *src, int attempt,
                     enum mr_outcome *out)
{
    const struct media_try *mt = arg;
    const char *url, *type;
    struct mr_relay r;

    /* ?t=name: another quality (more_sources) or a subtitle ("sub:LANG"). */
    if (mr_source_pick(src, mt->t, &url, &type)) {
        *out = MR_ANSWERED;
        return mr_answer_no_source(ctx, mt->m, mt->t);
    }
    if (mt->p->own_files) {
        *out = MR_ANSWERED;
        return mr_answer_moved(ctx, url);
    }
    r = (struct mr_relay){ .url = url, .policy = src->headers, .stats_kind = "media",
                           .stats_id = mt->m->id, .expiry_back = mt->p->remote && !attempt,
                           .members_only = mt->m->room && *mt->m->room };
    return mr_relay_run(ctx, &r, out);
}

/* GET|HEAD /api/proxy/media/{id}[?t=name] */
static int proxy_media(struct mr_ctx *ctx)
{
    struct media_try mt = { ctx->media, mr_provider_find(ctx->media->provider), NULL };
    struct mr_retry retry = { try_media, NULL, &mt };
    enum mr_outcome o;
    char *t = NULL;
    int rc;

    rc = mr_request_query(&ctx->req, ctx->arena, "t", &t);
    if (rc == MR_EINVAL)
        return mr_resp_error(&ctx->resp, rc, "malformed query string");
    if (!mt.p)
        return MR_EINTERNAL;
    mt.t = t;
    /* When the provider's link fails, the item is resolved again (once for
     * all the requests that meet it) and the request retried once: the
     * player sees nothing of it. */
    if ((rc = mr_retry_resolved(ctx, mt.m, &retry, &o)))
        return rc;
    return o == MR_ANSWERED ? MR_OK : MR_EINTERNAL;
}

/* GET|HEAD /stream?url=U[&exp=&sig=], /api/proxy/stream?url=U */
static int proxy_stream(struct mr_ctx *ctx)
{
    struct mr_url_parts u;
    struct mr_relay r;
    struct mr_manifest_limits lim = { 0, NULL };
    char *url = NULL, *exp = NULL, *sig = NULL, *id;
    bool listed;
    int rc;

    rc = mr_request_query(&ctx->req, ctx->arena, "url", &url);
    if (rc == MR_ENOTFOUND || (url && !*url))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "the url parameter is required");
    if (rc)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "malformed query string");
    if (!mr_url_is_http(url))
        return mr_resp_error(&ctx->resp, MR_EBLOCKED, "only http and https upstreams "
                             "are allowed");
    if (mr_url_parts(ctx->arena, url, &u))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "the url parameter is not a valid URL");
    /* A valid signature is the operator's word for this URL until exp,
     * whether or not its host is listed: the tokens of its playlist expire
     * by exp, and its redirects go where the upstream says (the guard still
     * vets each hop's address).  Without one, a listed host is open to
     * anyone, and whoever may name the URL may name where it redirects to:
     * so every hop stays on the list (an open redirect on a listed host
     * would open every host).  A listed URL with a bad or expired signature
     * is taken as listed, as it always was. */
    listed = mr_url_host_listed(&ctx->conf->stream.allow_hosts, &u);
    rc = MR_ENOTFOUND;
    if (!mr_request_query(&ctx->req, ctx->arena, "exp", &exp) &&
        !mr_request_query(&ctx->req, ctx->arena, "sig", &sig))
        rc = mr_sign_stream_verify(ctx->proc->key, ctx->arena, url, exp, sig, mr_clock_wall_s());
    if (!rc) {
        long e;
        if (!mr_str_to_long(mr_str_c(exp), 1, LONG_MAX, &e))
            return mr_resp_error(&ctx->resp, MR_EFORBIDDEN, "bad signature");
        lim.expire_cap = (time_t)e;
        listed = false;
    } else if (listed) {
        lim.redirect_hosts = &ctx->conf->stream.allow_hosts;
    } else if (rc == MR_ENOTFOUND) {
        return mr_resp_error(&ctx->resp, MR_EFORBIDDEN, "this upstream host is not on "
                             "stream.allow_hosts and the link is not signed");
    } else if (rc == MR_ETOKEN_EXPIRED) {
        return mr_resp_error(&ctx->resp, rc, "this signed link has expired");
    } else {
        return mr_resp_error(&ctx->resp, MR_EFORBIDDEN, "bad signature");
    }
    id = u.port == (!strcasecmp(u.scheme, "https") ? 443 : 80)
         ? u.host : mr_arena_printf(ctx->arena, "%s:%ld", u.host, u.port);
    /* A playlist comes back rewritten, its segments through the relay: by
     * its name first, else by the Content-Type of the answer. */
    {
        const char *type = mr_video_type_from_url(url);
        static const struct mr_headers none = { NULL, 0 };
        char *scope = mr_arena_printf(ctx->arena, "%c:%s", listed ? 'u' : 's', id);
        if (!scope)
            return MR_ENOMEM;
        if (type && !strcmp(type, "hls"))
            return mr_manifest_serve_playlist(ctx, url, &none, scope, &lim);
        enum mr_outcome o;
        r = (struct mr_relay){ .url = url, .stats_kind = "stream", .stats_id = id,
                               .redirect_hosts = lim.redirect_hosts, .playlists_back = true };
        if ((rc = mr_relay_run(ctx, &r, &o)))
            return rc;
        if (o == MR_PLAYLIST)
            return mr_manifest_serve_playlist(ctx, url, &none, scope, &lim);
        return MR_OK;
    }
}

/* POST /api/proxy/sign {"url": U, "ttl_s": N} (admin) -> {"url", "expires_at"} */
static int proxy_sign(struct mr_ctx *ctx)
{
    struct json_object *in, *v, *out;
    struct mr_str body;
    const char *url;
    char *base, *link;
    long max = ctx->conf->stream.sign_max_ttl_s, ttl = max < 86400 ? max : 86400;
    time_t exp;
    int rc;

    rc = mr_request_body(&ctx->req, ctx->arena, (size_t)ctx->conf->server.max_body_bytes, &body);
    if (rc == MR_ETOOBIG)
        return mr_resp_error(&ctx->resp, rc, "the body is larger than %ld bytes",
                             ctx->conf->server.max_body_bytes);
    if (rc)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "cannot read the body");
    in = json_tokener_parse(body.p);
    if (mr_json_own(ctx->arena, in) ||
        json_object_get_type(in) != json_type_object)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "the body must be a JSON object");
    if (!json_object_object_get_ex(in, "url", &v) || json_object_get_type(v) != json_type_string)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "url: a string is required");
    url = json_object_get_string(v);
    if (!mr_url_is_http(url) || strpbrk(url, " \t\r\n"))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "url: must be an http(s) URL");
    if (json_object_object_get_ex(in, "ttl_s", &v)) {
        if (json_object_get_type(v) != json_type_int)
            return mr_resp_error(&ctx->resp, MR_EINVAL, "ttl_s: must be an integer");
        ttl = (long)json_object_get_int64(v);
    }
    if (ttl < 1 || ttl > max)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "ttl_s: must be between 1 and %ld", max);
    if (mr_request_base_url(&ctx->req, ctx->conf, ctx->arena, &base))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "no usable Host to build the link from");
    exp = mr_clock_wall_s() + ttl;
    if ((rc = mr_sign_stream_link(ctx->proc->key, ctx->arena, base, url, exp, &link)))
        return rc;
    out = json_object_new_object();
    if (mr_json_own(ctx->arena, out))
        return MR_ENOMEM;
    json_object_object_add(out, "url", json_object_new_string(link));
    json_object_object_add(out, "expires_at", json_object_new_int64((int64_t)exp));
    return mr_resp_json(&ctx->resp, 200, out);
}

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/proxy", mr_handle_health, 0 },
    { MR_GET, "/api/proxy/media/{id}", proxy_media, MR_ROUTE_MEDIA },
    { MR_GET, "/stream", proxy_stream, 0 },
    { MR_GET, "/api/proxy/stream", proxy_stream, 0 },
    { MR_POST, "/api/proxy/sign", proxy_sign, MR_ROUTE_ADMIN },
    { 0 }
};

static const struct mr_app app = {
    .name = "proxy",
    .routes = routes,
};

int main(int argc, char **argv)
{
    return mr_server_main(&app, argc, argv);
}
