/* manifest.c - manifests fetched, rewritten, cached and answered
 * (manifest.h). */
#include "relay/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/server.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "format/m3u8.h"
#include "format/mpd.h"
#include "net/store.h"
#include "net/upstream.h"
#include "relay/relay.h"

/* Tokens are made per hour: the same playlist rewritten twice within the
 * hour gives the same bytes, and every token lives at least token_ttl_s. */
#define TOKEN_BUCKET_S 3600

static time_t token_expiry(const struct mr_conf *c)
{
    time_t now = mr_clock_wall_s();
    return (now / TOKEN_BUCKET_S + 1) * TOKEN_BUCKET_S + c->hls.token_ttl_s;
}


/* How long a rewritten manifest may be served again, from what its engine
 * read in it: a live HLS playlist for half its target duration (RFC
 * 8216bis 6.3.4 lets a client reload no sooner than that), a dynamic MPD
 * for half its minimumUpdatePeriod (1 s when it has none), both bounded by
 * conf; a VOD or master playlist and a static MPD for
 * hls.vod_playlist_cache_s.  0: not at all. */
static long fresh_ms(const struct mr_conf *c, const struct mr_manifest_refresh *r, bool dash)
{
    long ms;

    if (!r->live)
        return c->hls.vod_playlist_cache_s * 1000;
    if (dash)
        ms = r->period_ms > 0 ? r->period_ms / 2 : 1000;
    else
        ms = r->period_ms / 2;
    return ms < c->hls.live_playlist_max_cache_ms ? ms : c->hls.live_playlist_max_cache_ms;
}

/* Fetches and rewrites a manifest into *out.  On failure the error is
 * answered and *out is NULL; *dead (*out NULL, nothing answered) when
 * m->expiry_back and the upstream answered 401/403/404/410. */
static int fetch_rewritten(struct mr_ctx *ctx, const struct mr_manifest *m, struct mr_buf **out,
                           long *fresh, bool *dead)
{
    size_t cap = (size_t)(m->mpd_rewrite ? ctx->conf->dash.max_manifest_bytes
                                  : ctx->conf->hls.max_playlist_bytes);
    bool is_dash = m->mpd_rewrite != NULL;
    const char *what = is_dash ? "manifest" : "playlist";
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct mr_m3u8_ctx mc;
    struct mr_manifest_refresh refresh = { false, -1 };
    struct mr_buf *body, *o;
    const char *why, *final;
    time_t exp;
    int rc;

    *out = NULL;
    *dead = false;
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
    if (m->expiry_back && mr_relay_link_expired(head.status)) {
        *dead = true;
        return MR_OK;
    }
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
        struct mr_mpd_ctx dc = { ctx->proc->key, ctx->conf->public_url, m->scope, exp, cap,
                                 &refresh };
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
        mc.refresh = &refresh;
        rc = mr_m3u8_rewrite(ctx->arena, &mc, mr_buf_str(body), final, o, &why);
    }
    if (rc == MR_EUPSTREAM || rc == MR_ETOOBIG || rc == MR_EINVAL)
        return mr_resp_error_status(&ctx->resp, 502, is_dash ? "bad_manifest" : "bad_playlist",
                                    mr_arena_printf(ctx->arena, "the upstream %s cannot be "
                                                    "relayed: %s", what, why ? why : "invalid"));
    if (rc)
        return rc;
    *fresh = fresh_ms(ctx->conf, &refresh, is_dash);
    *out = o;
    return MR_OK;
}

/* A rewritten manifest is the relay's output, but every byte of it other
 * than the URIs is the upstream's, and an MPD is XML: a browser that opens
 * one renders it as a document, XHTML or SVG elements in it included.  So
 * it gets the headers of a relayed body (mr_resp_foreign), with the type
 * the relay gives it. */
static int send_manifest(struct mr_ctx *ctx, const struct mr_manifest *m, const char *p, size_t n,
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
    int hn = snprintf(head, sizeof(head), PL_MAGIC "%lld\n", mr_clock_wall_ms() + fresh);
    struct mr_buf v;
    /* A stale copy stays for a while: twice its freshness, at least 10 s. */
    long keep = fresh * 2 > 10000 ? fresh * 2 : 10000;

    mr_buf_init(&v, o->len + (size_t)hn);
    if (!mr_buf_append(&v, head, (size_t)hn) && !mr_buf_append(&v, o->p ? o->p : "", o->len))
        mr_store_set(ctx->store, key, v.p, v.len, keep);
    mr_buf_cleanup(&v);
}

static void pl_keys(struct mr_ctx *ctx, const struct mr_manifest *m, char **key, char **lock)
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

/* For mr_store_lock_or_wait: the copy another request is making. */
struct pl_wait {
    struct mr_ctx *ctx;
    const char *key;
    struct cached_pl *pl;
};

static int pl_ready(void *arg)
{
    struct pl_wait *w = arg;

    return pl_get(w->ctx, w->key, w->pl) ? MR_ENOTFOUND : MR_OK;
}

static bool client_gone(void *arg)
{
    struct pl_wait *w = arg;

    return mr_resp_client_gone(&w->ctx->resp);
}

int mr_manifest_serve(struct mr_ctx *ctx, const struct mr_manifest *m, enum mr_outcome *out)
{
    const struct mr_conf *c = ctx->conf;
    struct cached_pl pl;
    struct mr_buf *o;
    struct mr_store_lock lk;
    struct mr_store_wait w;
    struct pl_wait pw = { ctx, NULL, &pl };
    char *key, *lock;
    long fresh = 0, lock_ms = mr_store_lock_ttl(c->upstream.fetch_timeout_ms);
    bool have, dead;
    int rc;

    *out = MR_ANSWERED;
    if (!c->hls.live_playlist_max_cache_ms && !c->hls.vod_playlist_cache_s) {
        if ((rc = fetch_rewritten(ctx, m, &o, &fresh, &dead)) || !o) {
            if (dead)
                *out = MR_LINK_DEAD;
            return rc;
        }
        return send_manifest(ctx, m, o->p, o->len, NULL);
    }
    pl_keys(ctx, m, &key, &lock);
    if (!key || !lock)
        return MR_ENOMEM;
    pw.key = key;
    have = !pl_get(ctx, key, &pl);
    if (have && mr_clock_wall_ms() < pl.fresh_until)
        return send_manifest(ctx, m, pl.p, pl.n, "HIT");

    /* Refresh it under the lock, or (another request holds it) answer
     * the copy there is, or wait for the new one. */
    w = (struct mr_store_wait){ .wait_ms = have ? 0 : lock_ms, .pause_us = 1000,
                                .max_pause_us = PL_POLL_MAX_US, .ready = pl_ready,
                                .give_up = client_gone, .arg = &pw };
    rc = mr_store_lock_or_wait(ctx->store, lock, lock_ms, &w, &lk);
    if (!rc && !lk.held)
        return send_manifest(ctx, m, pl.p, pl.n, "WAIT");
    if (rc == MR_EBUSY && have)
        return send_manifest(ctx, m, pl.p, pl.n, "STALE");
    /* Ours to fetch: under the lock, or without it when the wait ended
     * (its holder took too long, the client left, Redis failed). */
    rc = fetch_rewritten(ctx, m, &o, &fresh, &dead);
    if (!rc && o && fresh > 0)
        pl_put(ctx, key, o, fresh);
    mr_store_unlock(ctx->store, &lk);
    if (rc || !o) {
        if (dead)
            *out = MR_LINK_DEAD;
        return rc;
    }
    return send_manifest(ctx, m, o->p, o->len, "MISS");
}

int mr_manifest_serve_playlist(struct mr_ctx *ctx, const char *url,
                               const struct mr_headers *policy, const char *scope,
                               const struct mr_manifest_limits *lim)
{
    struct mr_manifest m = { url, policy, scope, "", NULL, NULL, NULL, false, false, -1,
                             lim ? lim->expire_cap : 0, lim ? lim->redirect_hosts : NULL };
    enum mr_outcome o;     /* answered: m.expiry_back is false */

    return mr_manifest_serve(ctx, &m, &o);
}
