/* recovery.c - upstream links found again after they died (recovery.h). */
#include "relay/recovery.h"

#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/token.h"
#include "format/m3u8.h"
#include "net/store.h"
#include "net/upstream.h"
#include "net/url.h"
#include "relay/mediasource.h"
#include "relay/relay.h"
#include "relay/resolver.h"
#include "relay/retry.h"
#include "relay/scope.h"

/* How many variants of a master are searched for a URI whose link
 * expired, when no hint says which. */
#define RELOCATE_MAX_VARIANTS 16
/* How long a URI that could not be found again is not looked for again. */
#define RELOCATE_MISS_MS 30000

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
long mr_recovery_variant_hint(struct mr_ctx *ctx)
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
        char *u, *hinted = NULL;
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
        /* The same path first: in the variant the hint names, then (no
         * hint, or a stale or made-up one) in the others, within a budget
         * of bytes fetched; only then the position the hints give, in the
         * hinted variant.  A hint never wins over the path: it cannot hand
         * a player another rendition's segment while its own is there. */
        if (!rc) {
            hinted = u;
            if (!(rc = find_in(ctx, hinted, policy, &by_path, &u, &nested, &fetched)) &&
                !nested) {
                mr_buf_free(&master);
                return (*url = u) ? MR_OK : MR_ENOTFOUND;
            }
        }
        for (nth.variant = 0; master.len && rc != MR_ENOMEM && fetched < budget &&
             nth.variant < RELOCATE_MAX_VARIANTS; nth.variant++) {
            if (hinted && nth.variant == want.variant)
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
        if (hinted && want.msn >= 0 && fetched < budget) {
            struct mr_m3u8_want at = { NULL, -1, want.msn };
            if (!(rc = find_in(ctx, hinted, policy, &at, &u, &nested, &fetched)) && !nested)
                return (*url = u) ? MR_OK : MR_ENOTFOUND;
            if (rc == MR_ENOMEM)
                return rc;
        }
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

/* One search of recover(): the state mr_retry_resolved's tries share. */
struct search {
    const struct mr_scope *sco;
    const char *old, *key, *hints;
    bool hls, playlist;
    long variant;
    long long msn;
    long status;                       /* what the old link answered */
    struct mr_headers *policy;
    mr_recovery_try_fn try;
    void *arg;
};

/* Looks for the old URL in the resolution src and tries it there.  Not
 * found (or the same URL: the cached resolution is the one that failed)
 * is a dead link too: the next resolution is searched. */
static int search_in(struct mr_ctx *ctx, void *arg, const struct mr_source *src, int attempt,
                     enum mr_outcome *out)
{
    struct search *se = arg;
    char *url, *val;
    int rc;

    (void)attempt;
    *out = MR_LINK_DEAD;
    rc = relocate(ctx, src, se->sco->t, se->old, se->hls, se->playlist, se->variant, se->msn,
                  &url);
    if (rc == MR_ENOTFOUND || (!rc && !strcmp(url, se->old)))
        return MR_OK;
    if (rc) {
        *out = MR_ANSWERED;
        return relocate_failed(ctx, se->sco->media, rc, se->status);
    }
    {
        long long ttl = src->expire_at ? (long long)(src->expire_at - mr_clock_wall_s()) - 10
                                       : ctx->conf->resolve.default_ttl_s;
        if (ttl > 0 && (val = mr_arena_printf(ctx->arena, "%s\n%s", se->hints, url)))
            mr_store_set(ctx->store, se->key, val, strlen(val), ttl * 1000);
    }
    *se->policy = src->headers;
    return se->try(ctx, se->arg, url, true, out);
}

static int search_unresolved(struct mr_ctx *ctx, void *arg, int rc)
{
    const struct search *se = arg;

    return relocate_failed(ctx, se->sco->media, rc, se->status);
}

/* After an upstream URL of provider-bound media answered 401/403/404/410:
 * finds it again and answers through try().  First where an earlier request
 * with the same hints found it (reloc:{media}:{hash of the URL and the
 * source}: "V N\n" and the URL, kept while the new link lives, or "V N\n-"
 * for 30 s when it was not found);
 * then in the item's cached resolution (another request may have refreshed
 * it already); last in a fresh one (mr_retry_resolved).  So a VOD player
 * whose playlist holds dead links costs one resolution, not one per
 * segment. */
int mr_recover(struct mr_ctx *ctx, const struct mr_scope *sco, const char *old, bool hls,
               bool playlist, struct mr_headers *policy, mr_recovery_try_fn try, void *arg)
{
    const struct mr_media *me = sco->media;
    /* A DASH segment's query is the upstream's: no hints there. */
    struct search se = { sco, old, NULL, NULL, hls, playlist,
                         hls ? mr_recovery_variant_hint(ctx) : -1, hls ? msn_hint(ctx) : -1,
                         ctx->upstream_status, policy, try, arg };
    struct mr_retry retry = { search_in, search_unresolved, &se };
    enum mr_outcome o;
    char h[33], *key, *url, *what, *hints, *val;
    struct mr_str known, head, rest;
    int rc;

    /* The key is the URL and the source, both signed: the hints, which are
     * not, never make a key, so a client cannot add keys by varying them.
     * They are written before the answer, and only a request with the
     * same hints takes it: one with made-up hints searches for itself
     * (as it would without the entry) and finds nothing for the others;
     * what it writes, the next honest request does not take either. */
    if (!(what = mr_arena_printf(ctx->arena, "%s\n%s", old, sco->t ? sco->t : "")) ||
        !(hints = mr_arena_printf(ctx->arena, "%ld %lld", se.variant, se.msn)))
        return MR_ENOMEM;
    mr_hash_hex(what, h);
    if (!(key = mr_arena_printf(ctx->arena, "reloc:%s:%s", me->id, h)))
        return MR_ENOMEM;
    se.key = key;
    se.hints = hints;
    if (!mr_store_get(ctx->store, ctx->arena, key, &known) &&
        (rest = mr_str_cut(known, '\n', &head)).p && rest.len && mr_str_eq_c(head, hints)) {
        if (mr_str_eq_c(rest, "-"))     /* looked for a moment ago, in vain */
            return relocate_failed(ctx, me, MR_ENOTFOUND, se.status);
        if (!(url = mr_arena_strdup_str(ctx->arena, rest)))
            return MR_ENOMEM;
        if ((rc = try(ctx, arg, url, true, &o)) || o != MR_LINK_DEAD)
            return rc;
    }
    if ((rc = mr_retry_resolved(ctx, me, &retry, &o)) || o != MR_LINK_DEAD)
        return rc;
    /* Not there, or dead there too: said at once to the requests that come
     * for it soon (a search may fetch every variant of the stream). */
    if ((val = mr_arena_printf(ctx->arena, "%s\n-", hints)))
        mr_store_set(ctx->store, key, val, strlen(val), RELOCATE_MISS_MS);
    return relocate_failed(ctx, me, MR_ENOTFOUND, se.status);
}

int mr_probe_link(struct mr_ctx *ctx, const char *url, const struct mr_headers *policy,
                  bool *dead)
{
    struct mr_header *hv = mr_arena_calloc(ctx->arena, policy->n + 1, sizeof(*hv));
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct mr_buf b;

    *dead = false;
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
    *dead = mr_relay_link_expired(head.status);
    return MR_OK;
}
