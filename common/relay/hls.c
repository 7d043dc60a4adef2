/* hls.c - playlists fetched and rewritten, segments relayed. */
#include "relay/hls.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

#include "app/auth.h"
#include "format/channels.h"
#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/log.h"
#include "format/m3u8.h"
#include "format/mpd.h"
#include "app/media.h"
#include "relay/mediasource.h"
#include "app/provider.h"
#include "relay/relay.h"
#include "relay/segcache.h"
#include "relay/resolver.h"
#include "app/server.h"
#include "net/store.h"
#include "core/token.h"
#include "net/upstream.h"
#include "net/url.h"

/* How many variants of a master are searched for a URI whose link
 * expired, when no hint says which. */
#define RELOCATE_MAX_VARIANTS 16
/* How long a URI that could not be found again is not looked for again. */
#define RELOCATE_MISS_MS 30000

/* Tokens are made per hour: the same playlist rewritten twice within the
 * hour gives the same bytes, and every token lives at least token_ttl_s. */
#define TOKEN_BUCKET_S 3600

static time_t token_expiry(const struct mr_conf *c)
{
    time_t now = time(NULL);
    return (now / TOKEN_BUCKET_S + 1) * TOKEN_BUCKET_S + c->hls.token_ttl_s;
}

/* What a token's scope means for this request. */
struct scope {
    struct mr_headers policy;          /* headers the upstream wants */
    const char *kind, *id;             /* the stats identity */
    bool members_only;                 /* a media item with a room */
    const struct mr_media *media;      /* the media item, when its provider's
                                          links may expire (provider.remote) */
    const char *t;                     /* "m:ID/NAME": which of its sources
                                          (?t=NAME), else NULL */
};

/* Opens a token's scope: the channel or media item it is bound to, its
 * header policy and stats identity.  A media item with a room is for its
 * members on every path, as on its own routes: checked before anything is
 * resolved.  MR_OK, or an error: answered already when the room refused
 * the request (ctx->resp.headers_sent), else for token_error. */
static int open_scope(struct mr_ctx *ctx, struct mr_str scope, struct scope *out)
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

/* The token out of "token[.ext]", opened: *data is what it sealed. */
static int open_token(struct mr_ctx *ctx, struct mr_str cap, struct mr_str *data, time_t *exp)
{
    const char *ext = memchr(cap.p, '.', cap.len);

    if (ext)
        cap.len = (size_t)(ext - cap.p);
    return mr_token_verify(ctx->proc->key, ctx->arena, cap, time(NULL), data, exp);
}

static int token_error(struct mr_ctx *ctx, int rc)
{
    if (ctx->resp.headers_sent)
        return rc;      /* answered by open_scope: a room refused the request */
    if (rc == MR_ETOKEN_EXPIRED)
        return mr_resp_error(&ctx->resp, rc, "this relay URL has expired: reload the playlist");
    if (rc == MR_ENOTFOUND)
        return mr_resp_error(&ctx->resp, rc, "the media item or channel of this URL is gone");
    return mr_resp_error(&ctx->resp, MR_EFORBIDDEN, "bad token");
}

/* A manifest to fetch, rewrite and answer: an HLS playlist or a DASH MPD. */
struct manifest {
    const char *url;
    const struct mr_headers *policy;
    const char *scope;
    const char *vars;                  /* HLS: the parent's variables as carried
                                          in the token ("" for none) */
    const struct mr_headers *imports;  /* the same parsed, or NULL */
    mr_mpd_rewrite_fn *mpd_rewrite;    /* DASH: mr_mpd_rewrite, handed in by
                                          dash.c; NULL for HLS */
    const char *inline_body;           /* a manifest the provider built (url is
                                          then only its base): not fetched */
    bool expiry_back;                  /* 401/403/404/410 not answered but
                                          returned as MR_ETOKEN_EXPIRED */
    bool locate;                       /* HLS: position hints (mr_m3u8_ctx) */
    long variant;                      /* the hint this playlist came with, or -1 */
    time_t expire_cap;                 /* tokens made expire no later (0: none) */
    const struct mr_strlist *redirect_hosts;   /* redirects only to these (NULL: any) */
};

/* A dynamic MPD's minimumUpdatePeriod ("PT2S", "PT1M30.5S"), in ms; -1 when
 * absent or not of that form. */
static long iso_duration_ms(const char *p, const char *end)
{
    double total = 0;
    bool time = false, any = false;

    if (end - p < 2 || p[0] != 'P')
        return -1;
    for (p++; p < end && *p != '"' && *p != '\''; ) {
        char *stop;
        double v;
        if (*p == 'T') {
            time = true;
            p++;
            continue;
        }
        v = strtod(p, &stop);
        if (stop == p || stop >= end || v < 0 || v > 1e7)
            return -1;
        switch (*stop) {
        case 'D': if (time) return -1; total += v * 86400; break;
        case 'H': if (!time) return -1; total += v * 3600; break;
        case 'M': if (!time) return -1; total += v * 60; break;
        case 'S': if (!time) return -1; total += v; break;
        default: return -1;
        }
        any = true;
        p = stop + 1;
    }
    return any && total < 1e7 ? (long)(total * 1000) : -1;
}

/* The value of attribute `name` in the MPD's root element, or NULL. */
static const char *root_attr(struct mr_str body, const char *name, const char **end)
{
    const char *mpd = memmem(body.p, body.len, "<MPD", 4), *gt, *p;
    size_t nl = strlen(name);

    if (!mpd || !(gt = memchr(mpd, '>', (size_t)(body.p + body.len - mpd))))
        return NULL;
    for (p = mpd; (p = memmem(p, (size_t)(gt - p), name, nl)); p += nl) {
        const char *q = p + nl;
        if ((p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r') &&
            q + 1 < gt && q[0] == '=' && (q[1] == '"' || q[1] == '\'')) {
            const char *v = q + 2, *e = memchr(v, q[1], (size_t)(gt - v));
            if (!e)
                return NULL;
            *end = e;
            return v;
        }
    }
    return NULL;
}

/* How long a rewritten MPD may be served again: a dynamic one for half its
 * minimumUpdatePeriod (1 s when it has none), bounded like a live
 * playlist; a static one like a VOD playlist. */
static long mpd_fresh_ms(const struct mr_conf *c, struct mr_str body)
{
    const char *v, *end;
    long ms;

    v = root_attr(body, "type", &end);
    if (!v || end - v != 7 || memcmp(v, "dynamic", 7))
        return c->hls.vod_playlist_cache_s * 1000;
    v = root_attr(body, "minimumUpdatePeriod", &end);
    ms = v ? iso_duration_ms(v, end) : -1;
    ms = ms > 0 ? ms / 2 : 1000;
    return ms < c->hls.live_playlist_max_cache_ms ? ms : c->hls.live_playlist_max_cache_ms;
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

/* Fetches and rewrites a manifest into *out.  On failure the error is
 * answered and *out is NULL. */
static int fetch_rewritten(struct mr_ctx *ctx, const struct manifest *m, struct mr_buf **out,
                           long *fresh)
{
    size_t cap = (size_t)(m->mpd_rewrite ? ctx->conf->dash.max_manifest_bytes
                                  : ctx->conf->hls.max_playlist_bytes);
    bool is_dash = m->mpd_rewrite != NULL;
    const char *what = is_dash ? "manifest" : "playlist";
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct mr_m3u8_ctx mc;
    struct mr_buf *body, *o;
    const char *why, *final;
    time_t exp;
    int rc;

    *out = NULL;
    body = mr_arena_alloc(ctx->arena, sizeof(*body));
    o = mr_arena_alloc(ctx->arena, sizeof(*o));
    if (!body || !o)
        return MR_ENOMEM;
    mr_buf_init(body, cap);
    mr_buf_init(o, 4 * cap + (64u << 10));
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, body)) ||
        (rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, o)))
        return rc;

    memset(&req, 0, sizeof(req));
    req.url = m->url;
    req.headers = m->policy->v;
    req.nheaders = m->policy->n;
    req.max_bytes = cap;
    req.decode = true;
    req.redirect_hosts = m->redirect_hosts;
    memset(&head, 0, sizeof(head));
    if (m->inline_body) {
        head.status = 200;
        rc = mr_buf_append_str(body, mr_str_c(m->inline_body));
    } else {
        rc = mr_upstream_fetch(ctx->up, ctx->arena, &req, &head, body);
    }
    ctx->upstream_status = head.status;
    if (rc == MR_ETOOBIG)
        return mr_resp_error_status(&ctx->resp, 502, is_dash ? "manifest_too_large"
                                                             : "playlist_too_large",
                                    is_dash ? "the upstream manifest is larger than "
                                              "dash.max_manifest_bytes"
                                            : "the upstream playlist is larger than "
                                              "hls.max_playlist_bytes");
    if (rc)
        return mr_resp_error(&ctx->resp, rc, "%s", mr_upstream_error(ctx->up));
    if (m->expiry_back && mr_relay_link_expired(head.status))
        return MR_ETOKEN_EXPIRED;
    if (head.status >= 400)
        return mr_resp_error_status(&ctx->resp, (int)head.status, "upstream_status",
                                    mr_arena_printf(ctx->arena, "the upstream answered %ld %s",
                                                    head.status,
                                                    mr_http_reason((int)head.status)));
    if (head.status != 200)
        return mr_resp_error(&ctx->resp, MR_EUPSTREAM, "the upstream answered %ld", head.status);

    final = head.final_url ? head.final_url : m->url;
    exp = token_expiry(ctx->conf);
    if (m->expire_cap && m->expire_cap < exp)
        exp = m->expire_cap;
    if (is_dash) {
        struct mr_mpd_ctx dc = { ctx->proc->key, ctx->conf->public_url, m->scope, exp, cap };
        rc = m->mpd_rewrite(ctx->arena, &dc, mr_buf_str(body), final, o, &why);
    } else {
        memset(&mc, 0, sizeof(mc));
        mc.key = ctx->proc->key;
        mc.prefix = ctx->conf->public_url;
        mc.scope = m->scope;
        mc.imports = m->imports;
        mc.expire_at = exp;
        mc.max_bytes = cap;
        mc.locate = m->locate;
        mc.variant = m->variant;
        rc = mr_m3u8_rewrite(ctx->arena, &mc, mr_buf_str(body), final, o, &why);
    }
    if (rc == MR_EUPSTREAM || rc == MR_ETOOBIG || rc == MR_EINVAL)
        return mr_resp_error_status(&ctx->resp, 502, is_dash ? "bad_manifest" : "bad_playlist",
                                    mr_arena_printf(ctx->arena, "the upstream %s cannot be "
                                                    "relayed: %s", what, why ? why : "invalid"));
    if (rc)
        return rc;
    *fresh = is_dash ? mpd_fresh_ms(ctx->conf, mr_buf_str(body))
                     : fresh_ms(ctx->conf, mr_buf_str(body));
    *out = o;
    return MR_OK;
}

/* A rewritten manifest is the relay's output, but every byte of it other
 * than the URIs is the upstream's, and an MPD is XML: a browser that opens
 * one renders it as a document, XHTML or SVG elements in it included.  So
 * it gets the headers of a relayed body (mr_resp_foreign), with the type
 * the relay gives it. */
static int send_manifest(struct mr_ctx *ctx, const struct manifest *m, const char *p, size_t n,
                         const char *how)
{
    int rc;

    if ((rc = mr_resp_foreign(&ctx->resp)) ||
        (rc = mr_resp_set_header(&ctx->resp, "Content-Type",
                                 m->mpd_rewrite ? "application/dash+xml"
                                         : "application/vnd.apple.mpegurl")) ||
        (rc = mr_resp_set_header(&ctx->resp, "Cache-Control", "no-cache")) ||
        (how && (rc = mr_resp_set_header(&ctx->resp, "X-Cache", how))) ||
        (rc = mr_resp_headerf(&ctx->resp, "Content-Length", "%zu", n)))
        return rc;
    return mr_resp_write(&ctx->resp, p ? p : "", n);
}

/* The playlist cache.  pl:{hash of scope, URL and prefix} holds
 * "MRPL1 <fresh until, ms since the epoch>\n" and the rewritten playlist;
 * it is kept past its freshness (a stale copy is what the others serve
 * while one request refreshes it under lock:pl:{hash}).  The lock lives
 * as long as the fetch it covers may (upstream.fetch_timeout_ms, plus the
 * store's margin for rewriting and writing the copy), so a slow fetch
 * keeps it to the end; those without a copy wait for it as long. */
#define PL_MAGIC "MRPL1 "
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

static void pl_keys(struct mr_ctx *ctx, const struct manifest *m, char **key, char **lock)
{
    /* A capped expiry is part of what was made: a playlist rewritten for a
     * link that ends sooner is not served to one that ends later, nor the
     * other way round. */
    char *all = mr_arena_printf(ctx->arena, "%c\n%s\n%s\n%s\n%s\n%ld%s%lld",
                                m->mpd_rewrite ? 'd' : 'h', m->scope, m->url,
                                ctx->conf->public_url, m->vars, m->locate ? m->variant : -1,
                                m->expire_cap ? "\nexp " : "", (long long)m->expire_cap);
    char h[33];

    *key = *lock = NULL;
    if (!all)
        return;
    mr_hash_hex(all, h);
    *key = mr_arena_printf(ctx->arena, "pl:%s", h);
    *lock = mr_arena_printf(ctx->arena, "lock:pl:%s", h);
}

static int serve_manifest(struct mr_ctx *ctx, const struct manifest *m)
{
    const struct mr_conf *c = ctx->conf;
    struct cached_pl pl;
    struct mr_buf *o;
    struct mr_store_lock lk;
    char *key, *lock;
    long fresh = 0, lock_ms = mr_store_lock_ttl(c->upstream.fetch_timeout_ms);
    bool have, locked;
    int rc;

    if (!c->hls.live_playlist_max_cache_ms && !c->hls.vod_playlist_cache_s) {
        if ((rc = fetch_rewritten(ctx, m, &o, &fresh)) || !o)
            return rc;
        return send_manifest(ctx, m, o->p, o->len, NULL);
    }
    pl_keys(ctx, m, &key, &lock);
    if (!key || !lock)
        return MR_ENOMEM;
    have = !pl_get(ctx, key, &pl);
    if (have && wall_ms() < pl.fresh_until)
        return send_manifest(ctx, m, pl.p, pl.n, "HIT");

    locked = mr_store_lock(ctx->store, lock, lock_ms, &lk) == MR_OK;
    if (!locked) {
        /* Another request is refreshing it: the copy there is, or wait
         * for the new one. */
        long long deadline = wall_ms() + lock_ms;
        if (have)
            return send_manifest(ctx, m, pl.p, pl.n, "STALE");
        for (long us = 1000; wall_ms() < deadline && !mr_resp_client_gone(&ctx->resp);
             us = us < PL_POLL_MAX_US ? us * 2 : PL_POLL_MAX_US) {
            struct timespec ts = { 0, us * 1000 };
            struct mr_str v;
            nanosleep(&ts, NULL);
            if (!pl_get(ctx, key, &pl))
                return send_manifest(ctx, m, pl.p, pl.n, "WAIT");
            if (mr_store_get(ctx->store, ctx->arena, lock, &v) == MR_ENOTFOUND) {
                /* Done since we looked (its copy is there now), or it
                 * failed: then ask the upstream ourselves. */
                if (!pl_get(ctx, key, &pl))
                    return send_manifest(ctx, m, pl.p, pl.n, "WAIT");
                break;
            }
        }
    }
    rc = fetch_rewritten(ctx, m, &o, &fresh);
    if (!rc && o && fresh > 0)
        pl_put(ctx, key, o, fresh);
    mr_store_unlock(ctx->store, &lk);
    if (rc || !o)
        return rc;
    return send_manifest(ctx, m, o->p, o->len, "MISS");
}

int mr_hls_serve_playlist(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                          const char *scope, const struct mr_hls_limits *lim)
{
    struct manifest m = { url, policy, scope, "", NULL, NULL, NULL, false, false, -1,
                          lim ? lim->expire_cap : 0, lim ? lim->redirect_hosts : NULL };
    return serve_manifest(ctx, &m);
}

/* How long the tokens a rewrite under `scope` makes may live, when the
 * token that opened it (expiring at exp) says: those of a signed /stream
 * link ("s:") never outlive the link, so none outlives the token it came
 * from.  0: token_expiry's own. */
static time_t scope_cap(struct mr_str scope, time_t exp)
{
    return scope.len >= 2 && scope.p[0] == 's' && scope.p[1] == ':' ? exp : 0;
}

/* --- links that expired under a player ------------------------------------ */

/* A position hint of the request's query, or -1: absent, or not a value a
 * playlist can hold (mr_m3u8_hint).  The hints are unsigned, so whatever a
 * client sends comes out as one of few values or as -1. */
static long long query_hint(struct mr_ctx *ctx, const char *name, long long max)
{
    char *v = NULL;

    if (mr_request_query(&ctx->req, ctx->arena, name, &v) || !v)
        return -1;
    return mr_m3u8_hint(v, max);
}

/* The "v" hint: which playlist of its master this is (at most
 * MR_M3U8_MAX_VARIANTS - 1), or -1. */
static long variant_hint(struct mr_ctx *ctx)
{
    return (long)query_hint(ctx, "v", MR_M3U8_MAX_VARIANTS - 1);
}

/* The "n" hint: a segment's media sequence number, or -1. */
static long long msn_hint(struct mr_ctx *ctx)
{
    return query_hint(ctx, "n", MR_M3U8_MAX_MSN);
}

/* A playlist of a freshly resolved source, whole, into b (initialized by
 * the caller, capped at hls.max_playlist_bytes); *final: its URL after
 * redirects.  Anything but a 200 is MR_ENOTFOUND. */
static int fetch_playlist(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                          struct mr_buf *b, const char **final)
{
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    int rc;

    memset(&req, 0, sizeof(req));
    req.url = url;
    req.headers = policy->v;
    req.nheaders = policy->n;
    req.max_bytes = (size_t)ctx->conf->hls.max_playlist_bytes;
    req.decode = true;
    memset(&head, 0, sizeof(head));
    if ((rc = mr_upstream_fetch(ctx->up, ctx->arena, &req, &head, b)) || head.status != 200)
        return rc == MR_ENOMEM ? rc : MR_ENOTFOUND;
    *final = head.final_url ? head.final_url : url;
    return MR_OK;
}

/* The playlist at `url`, fetched, and `want` found in it (mr_m3u8_find);
 * its body is let go at once.  *fetched grows by its size. */
static int find_in(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                   const struct mr_m3u8_want *want, char **out, bool *nested, size_t *fetched)
{
    const char *final;
    struct mr_buf b;
    int rc;

    mr_buf_init(&b, (size_t)ctx->conf->hls.max_playlist_bytes);
    rc = fetch_playlist(ctx, url, policy, &b, &final);
    *fetched += b.len;
    if (!rc)
        rc = mr_m3u8_find(ctx->arena, mr_buf_str(&b), final, want, out, nested);
    mr_buf_free(&b);
    return rc;
}

/* Whether `url` has the path `path` (its query, host and scheme aside). */
static bool same_path(struct mr_ctx *ctx, const char *url, const char *path)
{
    const char *p = url && path ? mr_m3u8_url_path(ctx->arena, url) : NULL;
    return p && !strcmp(p, path);
}

/* The BaseURLs of an MPD a provider built, absolute: the first with the
 * path `path`, or NULL. */
static char *inline_base_url(struct mr_ctx *ctx, const char *mpd, const char *base,
                             const char *path)
{
    static const struct { const char *ent; char c; } ents[] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
    };

    for (const char *p = strstr(mpd, "<BaseURL>"); p; p = strstr(p, "<BaseURL>")) {
        const char *v = p + 9, *end = strstr(v, "</BaseURL>");
        char *text, *abs, *o;
        if (!end || !(text = mr_arena_strndup(ctx->arena, v, (size_t)(end - v))))
            return NULL;
        /* Our builder writes only the five predefined entities. */
        for (o = text, v = text; *v; ) {
            size_t i;
            for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
                if (!strncmp(v, ents[i].ent, strlen(ents[i].ent)))
                    break;
            if (i < sizeof(ents) / sizeof(ents[0])) {
                *o++ = ents[i].c;
                v += strlen(ents[i].ent);
            } else {
                *o++ = *v++;
            }
        }
        *o = '\0';
        if (!mr_url_resolve(ctx->arena, base, text, &abs) && same_path(ctx, abs, path))
            return abs;
        p = end;
    }
    return NULL;
}

/* `url` with its path replaced by `path` (arena), through curl's URL API. */
static int with_path(struct mr_ctx *ctx, const char *url, const char *path, char **out)
{
    CURLU *h = curl_url();
    char *u = NULL;
    int rc = MR_ENOTFOUND;

    if (!h)
        return MR_ENOMEM;
    if (!curl_url_set(h, CURLUPART_URL, url, 0) &&
        !curl_url_set(h, CURLUPART_PATH, path, 0) &&
        !curl_url_get(h, CURLUPART_URL, &u, 0))
        rc = (*out = mr_arena_strdup(ctx->arena, u)) ? MR_OK : MR_ENOMEM;
    curl_free(u);
    curl_url_cleanup(h);
    return rc;
}

/* Where `old`, an upstream URL of a media item that just answered
 * 401/403/404/410, is in the item's resolution `s`, in order: a URL of the fresh source with the same path (the
 * source's own, its other qualities, the BaseURLs of an MPD the provider
 * built); for HLS, the same path in the fresh playlists, else the position
 * the relay URL's hints gave (variant, media sequence number; `playlist`:
 * old is a variant playlist, not something in one); last, the
 * same directory as the fresh source's URL, with that URL's host and query
 * (a signature that covers the directory).  MR_ENOTFOUND when it is not
 * there. */
static int relocate(struct mr_ctx *ctx, const struct mr_source *s, const char *t,
                    const char *old, bool hls, bool playlist, long variant, long long msn,
                    char **url)
{
    struct mr_m3u8_want want = { mr_m3u8_url_path(ctx->arena, old), variant, msn };
    const struct mr_headers *policy = &s->headers;
    const struct mr_source src = *s;
    const char *slash, *entry = NULL, *type;
    int rc;

    *url = NULL;
    if (!want.path || mr_source_pick(&src, t, &entry, &type))
        return MR_ENOTFOUND;
    /* The source's own URLs -- not for what lies inside an HLS playlist. */
    if (!hls || playlist) {
        if (same_path(ctx, src.url, want.path))
            return (*url = (char *)src.url) ? MR_OK : MR_ENOTFOUND;
        for (size_t i = 0; i < src.nmore; i++)
            if (same_path(ctx, src.more[i].url, want.path))
                return (*url = (char *)src.more[i].url) ? MR_OK : MR_ENOTFOUND;
    }
    if (src.inline_mpd && (*url = inline_base_url(ctx, src.inline_mpd, src.url, want.path)))
        return MR_OK;
    if (hls && entry) {
        struct mr_m3u8_want by_path = { want.path, -1, -1 }, nth = { NULL, -1, -1 };
        size_t fetched = 0, budget = 4 * (size_t)ctx->conf->hls.max_playlist_bytes;
        const char *final;
        struct mr_buf master;
        bool nested;
        char *u;
        /* The entry playlist: the URI itself, or the variant the hint names
         * and the URI in it. */
        mr_buf_init(&master, (size_t)ctx->conf->hls.max_playlist_bytes);
        rc = fetch_playlist(ctx, entry, policy, &master, &final);
        fetched += master.len;
        if (!rc)
            rc = mr_m3u8_find(ctx->arena, mr_buf_str(&master), final, &want, &u, &nested);
        if (!rc && (!nested || playlist || same_path(ctx, u, want.path))) {
            mr_buf_free(&master);
            return (*url = u) ? MR_OK : MR_ENOTFOUND;
        }
        if (!rc) {
            struct mr_m3u8_want inside = { want.path, -1, want.msn };
            if (!(rc = find_in(ctx, u, policy, &inside, &u, &nested, &fetched)) && !nested) {
                mr_buf_free(&master);
                return (*url = u) ? MR_OK : MR_ENOTFOUND;
            }
        }
        /* No hint, or a stale one: the same path in the other variants,
         * within a budget of bytes fetched. */
        for (nth.variant = 0; master.len && rc != MR_ENOMEM && fetched < budget &&
             nth.variant < RELOCATE_MAX_VARIANTS; nth.variant++) {
            if (nth.variant == want.variant)
                continue;
            if ((rc = mr_m3u8_find(ctx->arena, mr_buf_str(&master), final, &nth, &u, &nested)) ||
                !nested)
                break;
            if (!(rc = find_in(ctx, u, policy, &by_path, &u, &nested, &fetched)) && !nested) {
                mr_buf_free(&master);
                return (*url = u) ? MR_OK : MR_ENOTFOUND;
            }
        }
        mr_buf_free(&master);
        if (rc == MR_ENOMEM)
            return rc;
    }
    /* The same directory as the source: its host and query, the old path. */
    if ((slash = strrchr(want.path, '/')) && entry) {
        const char *sp = mr_m3u8_url_path(ctx->arena, entry), *ss;
        if (sp && (ss = strrchr(sp, '/')) && ss - sp == slash - want.path &&
            !memcmp(sp, want.path, (size_t)(ss - sp)))
            return with_path(ctx, entry, want.path, url);
    }
    return *url ? MR_OK : MR_ENOTFOUND;
}

/* The answer when relocate() failed: the upstream's status (saved before
 * it ran) when the object is not found again, else the resolver's error. */
static int relocate_failed(struct mr_ctx *ctx, const struct mr_media *m, int rc, long status)
{
    if (rc != MR_ENOTFOUND)
        return mr_answer_unresolved(ctx, m, rc);
    mr_warn("media %s: what answered %ld is not in the freshly resolved source", m->id, status);
    ctx->upstream_status = status;
    return mr_relay_answer_status(ctx, status);
}

/* Fetches and answers `url` for recover(); MR_ETOKEN_EXPIRED, unanswered,
 * when it too answers 401/403/404/410 and expiry_back says so. */
typedef int (*try_fn)(struct mr_ctx *ctx, void *arg, const char *url, bool expiry_back);

/* After an upstream URL of provider-bound media answered 401/403/404/410:
 * finds it again and answers through try().  First where an earlier request
 * with the same hints found it (reloc:{media}:{hash of the URL and the
 * source}: "V N\n" and the URL, kept while the new link lives, or "V N\n-"
 * for 30 s when it was not found);
 * then in the item's cached resolution (another request may have refreshed
 * it already); last in a fresh one.  So a VOD player whose playlist holds
 * dead links costs one resolution, not one per segment. */
static int recover(struct mr_ctx *ctx, const struct scope *sco, const char *old, bool hls,
                   bool playlist, struct mr_headers *policy, try_fn try, void *arg)
{
    const struct mr_media *me = sco->media;
    /* A DASH segment's query is the upstream's: no hints there. */
    long long msn = hls ? msn_hint(ctx) : -1;
    long status = ctx->upstream_status, variant = hls ? variant_hint(ctx) : -1;
    char h[33], *key, *url, *what, *hints, *val;
    struct mr_source src;
    struct mr_str known, head, rest;
    int rc;

    /* The key is the URL and the source, both signed: the hints, which are
     * not, never make a key, so a client cannot add keys by varying them.
     * They are written before the answer, and only a request with the
     * same hints takes it: one with made-up hints searches for itself
     * (as it would without the entry) and finds nothing for the others;
     * what it writes, the next honest request does not take either. */
    if (!(what = mr_arena_printf(ctx->arena, "%s\n%s", old, sco->t ? sco->t : "")) ||
        !(hints = mr_arena_printf(ctx->arena, "%ld %lld", variant, msn)))
        return MR_ENOMEM;
    mr_hash_hex(what, h);
    if (!(key = mr_arena_printf(ctx->arena, "reloc:%s:%s", me->id, h)))
        return MR_ENOMEM;
    if (!mr_store_get(ctx->store, ctx->arena, key, &known) &&
        (rest = mr_str_cut(known, '\n', &head)).p && rest.len && mr_str_eq_c(head, hints)) {
        if (mr_str_eq_c(rest, "-"))     /* looked for a moment ago, in vain */
            return relocate_failed(ctx, me, MR_ENOTFOUND, status);
        if (!(url = mr_arena_strdup_str(ctx->arena, rest)))
            return MR_ENOMEM;
        rc = try(ctx, arg, url, true);
        if (rc != MR_ETOKEN_EXPIRED)
            return rc;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass) {
            mr_info("media %s: the upstream answered %ld: resolving again", me->id, status);
            rc = mr_resolve_again(ctx, me, src.url, &src);
        } else {
            rc = mr_resolve(ctx, me, &src);
        }
        if (rc)
            return relocate_failed(ctx, me, rc, status);
        rc = relocate(ctx, &src, sco->t, old, hls, playlist, variant, msn, &url);
        if (rc == MR_ENOTFOUND || (!rc && !strcmp(url, old)))
            continue;       /* the cached resolution is the one that failed */
        if (rc)
            return relocate_failed(ctx, me, rc, status);
        {
            long long ttl = src.expire_at ? (long long)(src.expire_at - time(NULL)) - 10
                                          : ctx->conf->resolve.default_ttl_s;
            if (ttl > 0 && (val = mr_arena_printf(ctx->arena, "%s\n%s", hints, url)))
                mr_store_set(ctx->store, key, val, strlen(val), ttl * 1000);
        }
        *policy = src.headers;
        rc = try(ctx, arg, url, true);
        if (rc != MR_ETOKEN_EXPIRED)
            return rc;
    }
    /* Not there, or dead there too: said at once to the requests that come
     * for it soon (a search may fetch every variant of the stream). */
    if ((val = mr_arena_printf(ctx->arena, "%s\n-", hints)))
        mr_store_set(ctx->store, key, val, strlen(val), RELOCATE_MISS_MS);
    return relocate_failed(ctx, me, MR_ENOTFOUND, status);
}

static int try_segment(struct mr_ctx *ctx, void *arg, const char *url, bool expiry_back)
{
    struct mr_relay *r = arg;
    int rc;

    r->url = url;
    r->expiry_back = expiry_back;
    rc = mr_segcache_serve(ctx, r, url);
    return rc == MR_EBUSY ? mr_relay_run(ctx, r) : rc;
}

/* Relays a segment (key: what it is cached under); when its provider's
 * link expired, finds it again and relays that. */
static int relay_segment(struct mr_ctx *ctx, struct mr_relay *r, const char *key,
                         const struct scope *sco, bool hls)
{
    int rc;

    r->expiry_back = sco->media != NULL;
    rc = mr_segcache_serve(ctx, r, key);
    if (rc == MR_EBUSY)
        rc = mr_relay_run(ctx, r);
    if (rc != MR_ETOKEN_EXPIRED)
        return rc;
    return recover(ctx, sco, r->url, hls, false, &r->policy, try_segment, r);
}

/* MR_ETOKEN_EXPIRED when `url` answers 401/403/404/410 to a one-byte
 * request, else MR_OK (other failures are for the player's own requests
 * to meet). */
static int probe_link(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy)
{
    struct mr_header *hv = mr_arena_calloc(ctx->arena, policy->n + 1, sizeof(*hv));
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct mr_buf b;

    if (!hv)
        return MR_ENOMEM;
    if (policy->n)
        memcpy(hv, policy->v, policy->n * sizeof(*hv));
    hv[policy->n] = (struct mr_header){ "Range", "bytes=0-0" };
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.headers = hv;
    req.nheaders = policy->n + 1;
    req.max_bytes = 4096;
    memset(&head, 0, sizeof(head));
    mr_buf_init(&b, 4096);
    mr_upstream_fetch(ctx->up, ctx->arena, &req, &head, &b);
    mr_buf_free(&b);
    ctx->upstream_status = head.status;
    return mr_relay_link_expired(head.status) ? MR_ETOKEN_EXPIRED : MR_OK;
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
    struct mr_source src;
    struct manifest m;
    const char *url, *type;
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
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = attempt ? mr_resolve_again(ctx, me, src.url, &src) : mr_resolve(ctx, me, &src);
        if (rc)
            return mr_answer_unresolved(ctx, me, rc);
        if (mr_source_pick(&src, t, &url, &type))
            return mr_answer_no_source(ctx, me, t);
        m = (struct manifest){ url, &src.headers, scope, "", NULL, mpd_rewrite,
                               t ? NULL : src.inline_mpd, p->remote && !attempt, p->remote, -1,
                               0, NULL };
        /* A built MPD is not fetched: its link is asked for one byte to
         * learn whether it still works. */
        rc = m.inline_body && m.expiry_back ? probe_link(ctx, url, &src.headers) : MR_OK;
        if (!rc)
            rc = serve_manifest(ctx, &m);
        if (rc != MR_ETOKEN_EXPIRED)
            return rc;
        mr_info("media %s: the upstream answered %ld: resolving again", me->id,
                ctx->upstream_status);
    }
    return MR_EINTERNAL;
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
    return mr_hls_serve_playlist(ctx, ch->url, &ch->headers,
                                 mr_arena_printf(ctx->arena, "c:%s", ch->id), NULL);
}

static int try_playlist(struct mr_ctx *ctx, void *arg, const char *url, bool expiry_back)
{
    struct manifest *m = arg;

    m->url = url;
    m->expiry_back = expiry_back;
    return serve_manifest(ctx, m);
}

int mr_hls_nested_playlist(struct mr_ctx *ctx)
{
    char *u, *sc, *vs;
    struct mr_str data, scope, url, vars;
    struct mr_headers imports;
    struct scope sco;
    time_t exp = 0;
    char kind;
    int rc;

    if ((rc = open_token(ctx, mr_route_capture(&ctx->match, "token"), &data, &exp)))
        return token_error(ctx, rc);
    if (mr_m3u8_token_data(data, &kind, &scope, &url, &vars) || kind != MR_TOKEN_PLAYLIST ||
        mr_m3u8_parse_vars(ctx->arena, vars, &imports))
        return token_error(ctx, MR_EFORBIDDEN);
    if ((rc = open_scope(ctx, scope, &sco)))
        return token_error(ctx, rc);
    u = mr_arena_strdup_str(ctx->arena, url);
    sc = mr_arena_strdup_str(ctx->arena, scope);
    vs = mr_arena_strdup_str(ctx->arena, vars);
    if (!u || !sc || !vs)
        return MR_ENOMEM;
    {
        const struct mr_media *me = sco.media;
        struct manifest m = { u, &sco.policy, sc, vs, imports.n ? &imports : NULL, NULL, NULL,
                              me != NULL, me != NULL, variant_hint(ctx), scope_cap(scope, exp),
                              NULL };
        rc = serve_manifest(ctx, &m);
        if (rc != MR_ETOKEN_EXPIRED)
            return rc;
        return recover(ctx, &sco, u, true, true, &sco.policy, try_playlist, &m);
    }
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

static void relay_scope(struct mr_relay *r, const struct scope *sco)
{
    r->policy = sco->policy;
    r->stats_kind = sco->kind;
    r->stats_id = sco->id;
    r->members_only = sco->members_only;
}

int mr_hls_segment(struct mr_ctx *ctx)
{
    struct mr_str data, scope, url, vars;
    const char *key;
    struct mr_relay r;
    struct scope sco;
    char kind;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = open_token(ctx, mr_route_capture(&ctx->match, "token"), &data, &r.expire_at)))
        return token_error(ctx, rc);
    if (mr_m3u8_token_data(data, &kind, &scope, &url, &vars) || kind != MR_TOKEN_SEGMENT)
        return token_error(ctx, MR_EFORBIDDEN);
    if ((rc = open_scope(ctx, scope, &sco)))
        return token_error(ctx, rc);
    relay_scope(&r, &sco);
    r.url = mr_arena_strdup_str(ctx->arena, url);
    if (!r.url)
        return MR_ENOMEM;
    if (!(key = cache_key(ctx, scope, url)))
        return MR_ENOMEM;
    return relay_segment(ctx, &r, key, &sco, true);
}

/* --- DASH ------------------------------------------------------------------ */

/* /api/m3u8/{token}.mpd: an MPD's Location, PatchLocation or remote
 * xlink:href, through the relay. */
int mr_hls_nested_mpd(struct mr_ctx *ctx, mr_mpd_rewrite_fn *rewrite)
{
    struct mr_dir_query query;
    struct mr_str data, scope, url;
    struct scope sco;
    struct manifest m;
    time_t exp = 0;
    char kind;
    int rc;

    if ((rc = open_token(ctx, mr_route_capture(&ctx->match, "token"), &data, &exp)))
        return token_error(ctx, rc);
    if (mr_mpd_token_data(data, &kind, &scope, &url, &query) || kind != MR_TOKEN_PLAYLIST)
        return token_error(ctx, MR_EFORBIDDEN);
    if ((rc = open_scope(ctx, scope, &sco)))
        return token_error(ctx, rc);
    m = (struct manifest){ mr_arena_strdup_str(ctx->arena, url), &sco.policy,
                           mr_arena_strdup_str(ctx->arena, scope), "", NULL, rewrite, NULL,
                           false, false, -1, scope_cap(scope, exp), NULL };
    return m.url && m.scope ? serve_manifest(ctx, &m) : MR_ENOMEM;
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
    struct scope sco;
    char kind, *d, *url;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = open_token(ctx, mr_route_capture(&ctx->match, "token"), &data, &r.expire_at)))
        return token_error(ctx, rc);
    if (mr_mpd_token_data(data, &kind, &scope, &dir, &query) || kind != MR_TOKEN_DIR)
        return token_error(ctx, MR_EFORBIDDEN);
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
    if ((rc = open_scope(ctx, scope, &sco)))
        return token_error(ctx, rc);
    relay_scope(&r, &sco);
    r.url = url;
    if (!(key = cache_key(ctx, scope, mr_str_c(url))))
        return MR_ENOMEM;
    return relay_segment(ctx, &r, key, &sco, false);
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
