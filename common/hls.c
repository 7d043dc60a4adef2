/* hls.c - playlists fetched and rewritten, segments relayed. */
#include "hls.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/sha.h>

#include "channels.h"
#include "config.h"
#include "error.h"
#include "m3u8.h"
#include "media.h"
#include "provider.h"
#include "relay.h"
#include "segcache.h"
#include "server.h"
#include "store.h"
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
static int open_token(struct mr_ctx *ctx, struct mr_str cap, struct mr_str *data, time_t *exp)
{
    const char *dot = memchr(cap.p, '.', cap.len), *ext;
    int rc;

    if (!dot)
        return MR_EFORBIDDEN;
    ext = memchr(dot + 1, '.', cap.len - (size_t)(dot + 1 - cap.p));
    if (ext)
        cap.len = (size_t)(ext - cap.p);
    rc = mr_token_verify(ctx->proc->key, ctx->arena, cap, time(NULL), data, exp);
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

/* How long a rewritten playlist may be served again: a live one (no
 * EXT-X-ENDLIST) for half its target duration (RFC 8216bis 6.3.4 lets a
 * client reload no sooner than that), bounded by conf; a VOD or master
 * playlist for hls.vod_playlist_cache_s.  0: not at all. */
static long fresh_ms(const struct mr_conf *c, struct mr_str body)
{
    static const char target[] = "#EXT-X-TARGETDURATION:";
    bool live = false, endlist = false;
    long target_s = 0, ms;

    for (const char *p = body.p, *end = body.p + body.len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n >= sizeof(target) - 1 && !memcmp(p, target, sizeof(target) - 1)) {
            live = true;
            for (const char *d = p + sizeof(target) - 1; d < p + n && *d >= '0' && *d <= '9'
                 && target_s < 100000; d++)
                target_s = target_s * 10 + (*d - '0');
        } else if (n >= 14 && !memcmp(p, "#EXT-X-ENDLIST", 14)) {
            endlist = true;
        }
        p = nl ? nl + 1 : end;
    }
    if (!live || endlist)
        return c->hls.vod_playlist_cache_s * 1000;
    ms = target_s * 500;
    return ms < c->hls.live_playlist_max_cache_ms ? ms : c->hls.live_playlist_max_cache_ms;
}

/* Fetches and rewrites a playlist into *out.  On failure the error is
 * answered and *out is NULL. */
static int fetch_rewritten(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                           const char *scope, const struct mr_headers *imports,
                           struct mr_buf **out, long *fresh)
{
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct mr_m3u8_ctx mc;
    struct mr_buf *body, *o;
    const char *why, *final;
    int rc;

    *out = NULL;
    body = mr_arena_alloc(ctx->arena, sizeof(*body));
    o = mr_arena_alloc(ctx->arena, sizeof(*o));
    if (!body || !o)
        return MR_ENOMEM;
    mr_buf_init(body, (size_t)ctx->conf->hls.max_playlist_bytes);
    mr_buf_init(o, 4 * (size_t)ctx->conf->hls.max_playlist_bytes + (64u << 10));
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, body)) ||
        (rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, o)))
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
    mc.imports = imports;
    mc.expire_at = token_expiry(ctx->conf);
    mc.max_bytes = (size_t)ctx->conf->hls.max_playlist_bytes;
    final = head.final_url ? head.final_url : url;
    rc = mr_m3u8_rewrite(ctx->arena, &mc, mr_buf_str(body), final, o, &why);
    if (rc == MR_EUPSTREAM || rc == MR_ETOOBIG)
        return mr_resp_error_status(&ctx->resp, 502, "bad_playlist", why);
    if (rc)
        return rc;
    *fresh = fresh_ms(ctx->conf, mr_buf_str(body));
    *out = o;
    return MR_OK;
}

static int send_playlist(struct mr_ctx *ctx, const char *p, size_t n, const char *how)
{
    int rc;

    if ((rc = mr_resp_set_header(&ctx->resp, "Content-Type", "application/vnd.apple.mpegurl")) ||
        (rc = mr_resp_set_header(&ctx->resp, "Cache-Control", "no-cache")) ||
        (how && (rc = mr_resp_set_header(&ctx->resp, "X-Cache", how))) ||
        (rc = mr_resp_headerf(&ctx->resp, "Content-Length", "%zu", n)))
        return rc;
    return mr_resp_write(&ctx->resp, p ? p : "", n);
}

/* The playlist cache.  pl:{hash of scope, URL and prefix} holds
 * "MRPL1 <fresh until, ms since the epoch>\n" and the rewritten playlist;
 * it is kept past its freshness (a stale copy is what the others serve
 * while one request refreshes it under lock:pl:{hash}). */
#define PL_MAGIC "MRPL1 "
#define PL_LOCK_MS 10000
#define PL_POLL_MAX_US 16000

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct cached_pl {
    long long fresh_until;
    const char *p;
    size_t n;
};

static int pl_get(struct mr_ctx *ctx, const char *key, struct cached_pl *out)
{
    struct mr_str v;
    const char *nl;
    int rc;

    if ((rc = mr_store_get(ctx->store, ctx->arena, key, &v)))
        return rc;
    nl = memchr(v.p, '\n', v.len);
    if (!nl || v.len < sizeof(PL_MAGIC) || memcmp(v.p, PL_MAGIC, sizeof(PL_MAGIC) - 1))
        return MR_ENOTFOUND;
    out->fresh_until = strtoll(v.p + sizeof(PL_MAGIC) - 1, NULL, 10);
    out->p = nl + 1;
    out->n = v.len - (size_t)(nl + 1 - v.p);
    return MR_OK;
}

static void pl_put(struct mr_ctx *ctx, const char *key, const struct mr_buf *o, long fresh)
{
    char head[48];
    int hn = snprintf(head, sizeof(head), PL_MAGIC "%lld\n", wall_ms() + fresh);
    struct mr_buf v;
    /* A stale copy stays for a while: twice its freshness, at least 10 s. */
    long keep = fresh * 2 > 10000 ? fresh * 2 : 10000;

    mr_buf_init(&v, o->len + (size_t)hn);
    if (!mr_buf_append(&v, head, (size_t)hn) && !mr_buf_append(&v, o->p ? o->p : "", o->len))
        mr_store_set(ctx->store, key, v.p, v.len, keep);
    mr_buf_cleanup(&v);
}

static void pl_keys(struct mr_ctx *ctx, const char *url, const char *scope, const char *vars,
                    char **key, char **lock)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    char *all = mr_arena_printf(ctx->arena, "%s\n%s\n%s\n%s", scope, url,
                                ctx->conf->public_url, vars);
    char h[33];

    *key = *lock = NULL;
    if (!all)
        return;
    SHA256((const unsigned char *)all, strlen(all), md);
    for (int i = 0; i < 16; i++) {
        h[2 * i] = hex[md[i] >> 4];
        h[2 * i + 1] = hex[md[i] & 15];
    }
    h[32] = '\0';
    *key = mr_arena_printf(ctx->arena, "pl:%s", h);
    *lock = mr_arena_printf(ctx->arena, "lock:pl:%s", h);
}

/* vars: the parent playlist's variables as carried in the token ("" for
 * none), imports: the same parsed. */
static int serve_playlist(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                          const char *scope, const char *vars,
                          const struct mr_headers *imports)
{
    const struct mr_conf *c = ctx->conf;
    struct cached_pl pl;
    struct mr_buf *o;
    char *key, *lock;
    long fresh = 0;
    bool have, locked;
    int rc;

    if (!c->hls.live_playlist_max_cache_ms && !c->hls.vod_playlist_cache_s) {
        if ((rc = fetch_rewritten(ctx, url, policy, scope, imports, &o, &fresh)) || !o)
            return rc;
        return send_playlist(ctx, o->p, o->len, NULL);
    }
    pl_keys(ctx, url, scope, vars, &key, &lock);
    if (!key || !lock)
        return MR_ENOMEM;
    have = !pl_get(ctx, key, &pl);
    if (have && wall_ms() < pl.fresh_until)
        return send_playlist(ctx, pl.p, pl.n, "HIT");

    locked = mr_store_set_nx(ctx->store, lock, "1", 1, PL_LOCK_MS) == MR_OK;
    if (!locked) {
        /* Another request is refreshing it: the copy there is, or wait
         * for the new one. */
        long long deadline = wall_ms() + c->upstream.fetch_timeout_ms + 1000;
        if (have)
            return send_playlist(ctx, pl.p, pl.n, "STALE");
        for (long us = 1000; wall_ms() < deadline && !mr_resp_client_gone(&ctx->resp);
             us = us < PL_POLL_MAX_US ? us * 2 : PL_POLL_MAX_US) {
            struct timespec ts = { 0, us * 1000 };
            struct mr_str v;
            nanosleep(&ts, NULL);
            if (!pl_get(ctx, key, &pl))
                return send_playlist(ctx, pl.p, pl.n, "WAIT");
            if (mr_store_get(ctx->store, ctx->arena, lock, &v) == MR_ENOTFOUND)
                break;  /* the refresh failed: ask the upstream ourselves */
        }
    }
    rc = fetch_rewritten(ctx, url, policy, scope, imports, &o, &fresh);
    if (!rc && o && fresh > 0)
        pl_put(ctx, key, o, fresh);
    if (locked)
        mr_store_del(ctx->store, lock);
    if (rc || !o)
        return rc;
    return send_playlist(ctx, o->p, o->len, "MISS");
}

int mr_hls_serve_playlist(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                          const char *scope)
{
    return serve_playlist(ctx, url, policy, scope, "", NULL);
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
    char *u, *sc, *vs;
    struct mr_str data, scope, url, vars;
    struct mr_headers policy, imports;
    const char *kind_s, *id;
    char kind;
    int rc;

    if ((rc = open_token(ctx, mr_route_capture(&ctx->match, "token"), &data, NULL)))
        return token_error(ctx, rc);
    if (mr_m3u8_token_data(data, &kind, &scope, &url, &vars) || kind != MR_TOKEN_PLAYLIST ||
        mr_m3u8_parse_vars(ctx->arena, vars, &imports))
        return token_error(ctx, MR_EFORBIDDEN);
    if ((rc = scope_policy(ctx, scope, &policy, &kind_s, &id)))
        return token_error(ctx, rc);
    u = mr_arena_strdup_str(ctx->arena, url);
    sc = mr_arena_strdup_str(ctx->arena, scope);
    vs = mr_arena_strdup_str(ctx->arena, vars);
    if (!u || !sc || !vs)
        return MR_ENOMEM;
    return serve_playlist(ctx, u, &policy, sc, vs, imports.n ? &imports : NULL);
}

/* What a segment is cached under: its URL, without the query for a channel
 * whose upstream rotates tokens in it. */
static const char *cache_key(struct mr_ctx *ctx, struct mr_str scope, struct mr_str url)
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

int mr_hls_segment(struct mr_ctx *ctx)
{
    struct mr_str data, scope, url, vars;
    const char *key;
    struct mr_relay r;
    char kind;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = open_token(ctx, mr_route_capture(&ctx->match, "token"), &data, &r.expire_at)))
        return token_error(ctx, rc);
    if (mr_m3u8_token_data(data, &kind, &scope, &url, &vars) || kind != MR_TOKEN_SEGMENT)
        return token_error(ctx, MR_EFORBIDDEN);
    if ((rc = scope_policy(ctx, scope, &r.policy, &r.stats_kind, &r.stats_id)))
        return token_error(ctx, rc);
    r.url = mr_arena_strdup_str(ctx->arena, url);
    if (!r.url)
        return MR_ENOMEM;
    if (!(key = cache_key(ctx, scope, url)))
        return MR_ENOMEM;
    rc = mr_segcache_serve(ctx, &r, key);
    return rc == MR_EBUSY ? mr_relay_run(ctx, &r) : rc;
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
    if ((rc = mr_resp_set_header(&ctx->resp, "Content-Type", "audio/x-mpegurl; charset=utf-8")) ||
        (rc = mr_resp_set_header(&ctx->resp, "Cache-Control", "no-cache")) ||
        (rc = mr_resp_headerf(&ctx->resp, "Content-Length", "%zu", out->len)))
        return rc;
    return mr_resp_write(&ctx->resp, out->p ? out->p : "", out->len);
}
