/* resolver.c - the URL cache in front of the providers. */
#include "relay/resolver.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "format/expiry.h"
#include "net/store.h"

/* A link is never handed out closer to its expiry than this. */
#define SAFETY_S 10
#define POLL_MAX_US 50000

static void add_str(struct json_object *o, const char *k, const char *v)
{
    if (v)
        json_object_object_add(o, k, json_object_new_string(v));
}

struct json_object *mr_source_to_json(const struct mr_source *s, long long refresh_at)
{
    struct json_object *o = json_object_new_object(), *h, *more, *subs;

    if (!o)
        return NULL;
    add_str(o, "url", s->url);
    add_str(o, "video_type", s->video_type);
    add_str(o, "title", s->title);
    add_str(o, "thumbnail", s->thumbnail);
    add_str(o, "inline_mpd", s->inline_mpd);
    json_object_object_add(o, "expire_at", json_object_new_int64((int64_t)s->expire_at));
    json_object_object_add(o, "refresh_at", json_object_new_int64(refresh_at));
    json_object_object_add(o, "resolved_at", json_object_new_int64((int64_t)s->resolved_at));
    if (s->duration > 0)
        json_object_object_add(o, "duration", json_object_new_double(s->duration));
    h = json_object_new_object();
    for (size_t i = 0; h && i < s->headers.n; i++)
        add_str(h, s->headers.v[i].name, s->headers.v[i].value);
    json_object_object_add(o, "headers", h);
    more = json_object_new_array();
    for (size_t i = 0; more && i < s->nmore; i++) {
        struct json_object *m = json_object_new_object();
        add_str(m, "name", s->more[i].name);
        add_str(m, "url", s->more[i].url);
        add_str(m, "video_type", s->more[i].video_type);
        json_object_array_add(more, m);
    }
    json_object_object_add(o, "more_sources", more);
    subs = json_object_new_array();
    for (size_t i = 0; subs && i < s->nsubs; i++) {
        struct json_object *m = json_object_new_object();
        add_str(m, "lang", s->subs[i].lang);
        add_str(m, "url", s->subs[i].url);
        add_str(m, "type", s->subs[i].type);
        json_object_array_add(subs, m);
    }
    json_object_object_add(o, "subtitles", subs);
    return o;
}

static const char *get_str(struct mr_arena *a, struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return mr_arena_strdup(a, json_object_get_string(v));
}

int mr_source_from_json(struct mr_arena *a, const char *text, size_t len,
                        struct mr_source *out, long long *refresh_at)
{
    struct json_object *o, *v;
    int rc = MR_OK;

    memset(out, 0, sizeof(*out));
    if (len > MR_MPD_MAX_BYTES)
        return MR_ETOOBIG;
    if ((rc = mr_json_parse_object(a, text, len, 8, &o)))
        return rc;
    if (!(out->url = get_str(a, o, "url")))
        return MR_EINVAL;
    out->video_type = get_str(a, o, "video_type");
    out->title = get_str(a, o, "title");
    out->thumbnail = get_str(a, o, "thumbnail");
    out->inline_mpd = get_str(a, o, "inline_mpd");
    out->expire_at = json_object_object_get_ex(o, "expire_at", &v)
                     ? (time_t)json_object_get_int64(v) : 0;
    *refresh_at = json_object_object_get_ex(o, "refresh_at", &v) ? json_object_get_int64(v) : 0;
    out->resolved_at = json_object_object_get_ex(o, "resolved_at", &v)
                       ? (time_t)json_object_get_int64(v) : 0;
    if (json_object_object_get_ex(o, "duration", &v))
        out->duration = json_object_get_double(v);
    if (json_object_object_get_ex(o, "headers", &v) && json_object_is_type(v, json_type_object)) {
        size_t n = (size_t)json_object_object_length(v);
        out->headers.v = mr_arena_calloc(a, n ? n : 1, sizeof(*out->headers.v));
        if (!out->headers.v)
            return MR_ENOMEM;
        json_object_object_foreach(v, name, val) {
            if (!json_object_is_type(val, json_type_string))
                continue;
            out->headers.v[out->headers.n].name = mr_arena_strdup(a, name);
            out->headers.v[out->headers.n].value = mr_arena_strdup(a, json_object_get_string(val));
            out->headers.n++;
        }
    }
    if (json_object_object_get_ex(o, "more_sources", &v) &&
        json_object_is_type(v, json_type_array) && json_object_array_length(v)) {
        size_t n = json_object_array_length(v);
        if (!(out->more = mr_arena_calloc(a, n, sizeof(*out->more))))
            return MR_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            struct json_object *m = json_object_array_get_idx(v, i);
            out->more[out->nmore] = (struct mr_alt_source){ get_str(a, m, "name"),
                                                            get_str(a, m, "url"),
                                                            get_str(a, m, "video_type") };
            if (out->more[out->nmore].url)
                out->nmore++;
        }
    }
    if (json_object_object_get_ex(o, "subtitles", &v) &&
        json_object_is_type(v, json_type_array) && json_object_array_length(v)) {
        size_t n = json_object_array_length(v);
        if (!(out->subs = mr_arena_calloc(a, n, sizeof(*out->subs))))
            return MR_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            struct json_object *m = json_object_array_get_idx(v, i);
            out->subs[out->nsubs] = (struct mr_subtitle){ get_str(a, m, "lang"),
                                                          get_str(a, m, "url"),
                                                          get_str(a, m, "type") };
            if (out->subs[out->nsubs].url)
                out->nsubs++;
        }
    }
    return rc;
}

static char *cache_key(struct mr_ctx *ctx, const struct mr_media *m, const char *what)
{
    return mr_arena_printf(ctx->arena, "%s:%s:%s", what, m->provider, m->id);
}

/* Asks the provider and keeps the answer.  *made_at: when. */
static int resolve_and_store(struct mr_ctx *ctx, const struct mr_provider *p,
                             const struct mr_media *m, const char *key, struct mr_source *out)
{
    const struct mr_conf *c = ctx->conf;
    time_t now = mr_clock_wall_s(), exp;
    long long refresh_at, ttl;
    struct json_object *o;
    const char *text;
    int rc;

    if ((rc = p->resolve(ctx, m, out)))
        return rc;
    out->resolved_at = now;
    exp = out->expire_at;
    if (!exp && out->url)
        exp = mr_expiry_from_url(out->url);
    if (!exp || exp <= now) {
        if (exp && exp <= now)
            mr_warn("media %s: the link %s says it expired already", m->id, p->name);
        exp = now + c->resolve.default_ttl_s;
    }
    out->expire_at = exp;
    /* Kept until shortly before the link dies; refreshed from a margin
     * before that, or a quarter of the way for links that live less long
     * than the margin -- always before the entry goes, so there is a window
     * where one request refreshes while the others use the old link. */
    ttl = (long long)(exp - now) - SAFETY_S;
    if (ttl < 1)
        return MR_OK;   /* too short to keep */
    refresh_at = (long long)exp - c->resolve.refresh_margin_s;
    if (refresh_at < now + (exp - now) / 4)
        refresh_at = now + (exp - now) / 4;
    if (refresh_at >= now + ttl)
        refresh_at = now + ttl / 2;
    o = mr_source_to_json(out, refresh_at);
    if (mr_json_own(ctx->arena, o))
        return MR_OK;   /* used, not kept */
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    mr_store_set(ctx->store, key, text, strlen(text), ttl * 1000);
    return MR_OK;
}

/* Whether a resolution read from the cache can be used: any, for a plain
 * resolve; for a resolve-again, one whose link is not the one that failed
 * (another request resolved it again already), or one younger than
 * resolve.again_min_s -- a client must not be able to make the relay ask
 * the provider on every request. */
static bool usable(const struct mr_ctx *ctx, const struct mr_source *s, const char *failed)
{
    return !failed || !s->url || strcmp(s->url, failed) ||
           mr_clock_wall_s() - s->resolved_at < ctx->conf->resolve.again_min_s;
}

/* A failed resolution is remembered for resolve.error_ttl_s as "RC\nwhy":
 * the requests that waited for it, and those that come soon after, get
 * its answer instead of each asking the provider again. */
static void remember_failure(struct mr_ctx *ctx, const char *ekey, int rc)
{
    char *v;

    /* Nor a full cap: it says nothing of the item, and its Retry-After
     * would be lost. */
    if (!ctx->conf->resolve.error_ttl_s || rc == MR_ENOMEM || rc == MR_ECLIENT ||
        rc == MR_EOVERLOADED || rc == MR_ELIMIT)
        return;
    if ((v = mr_arena_printf(ctx->arena, "%d\n%s", rc, ctx->why)))
        mr_store_set(ctx->store, ekey, v, strlen(v), ctx->conf->resolve.error_ttl_s * 1000);
}

static bool remembered_failure(struct mr_ctx *ctx, const char *ekey, int *rc)
{
    struct mr_str v, why, num;
    long n;

    if (!ctx->conf->resolve.error_ttl_s || mr_store_get(ctx->store, ctx->arena, ekey, &v))
        return false;
    why = mr_str_cut(v, '\n', &num);
    if (!why.p || !mr_str_to_long(num, MR_OK + 1, MR_ERR_COUNT - 1, &n) || n == MR_EBUSY)
        return false;
    snprintf(ctx->why, sizeof(ctx->why), "%.*s", (int)why.len, why.p);
    *rc = (int)n;
    return true;
}

/* Asks the provider: the answer is kept under key, a failure under ekey. */
static int resolve_now(struct mr_ctx *ctx, const struct mr_provider *p, const struct mr_media *m,
                       const char *key, const char *ekey, struct mr_source *out)
{
    int rc = resolve_and_store(ctx, p, m, key, out);

    if (rc)
        remember_failure(ctx, ekey, rc);
    return rc;
}

/* A request waiting for another's resolution of the same item. */
struct waiter {
    struct mr_ctx *ctx;
    const char *key, *lock, *ekey, *failed;
    struct mr_source *out;
    const struct mr_store_lock *lk;   /* the waiter's own, once taken */
    int looks;                  /* ready() calls so far */
    bool remembered;            /* ready() gave the holder's failure */
};

/* mr_store_wait.ready: the holder's answer, when it is there. */
static int resolved(void *arg)
{
    struct waiter *w = arg;
    struct mr_ctx *ctx = w->ctx;
    long long refresh_at;
    struct mr_str v;
    int rc;

    if (!mr_store_get(ctx->store, ctx->arena, w->key, &v) &&
        !mr_source_from_json(ctx->arena, v.p, v.len, w->out, &refresh_at) &&
        usable(ctx, w->out, w->failed))
        return MR_OK;
    w->looks++;
    if (w->lk->held && w->looks == 1) {
        /* The lock taken at once: only what came in since the caller
         * looked (a usable answer, above, or a failure) is a holder's. */
        if (remembered_failure(ctx, w->ekey, &rc)) {
            w->remembered = true;
            return rc;
        }
        return MR_ENOTFOUND;
    }
    /* Its lock still there (not ours: the last look after taking it). */
    if (!w->lk->held && mr_store_get(ctx->store, ctx->arena, w->lock, &v) != MR_ENOTFOUND)
        return MR_ENOTFOUND;
    /* It is done: its answer, even with the same link (one resolution for
     * all), or its failure; or it gave up, and the lock is the waiter's
     * next turn. */
    if (!mr_store_get(ctx->store, ctx->arena, w->key, &v) &&
        !mr_source_from_json(ctx->arena, v.p, v.len, w->out, &refresh_at))
        return MR_OK;
    if (remembered_failure(ctx, w->ekey, &rc)) {
        w->remembered = true;
        return rc;
    }
    return MR_ENOTFOUND;
}

static bool client_gone(void *arg)
{
    struct waiter *w = arg;
    return mr_resp_client_gone(&w->ctx->resp);
}

/* mr_resolve (failed NULL) and mr_resolve_again. */
static int resolve(struct mr_ctx *ctx, const struct mr_media *m, const char *failed,
                   struct mr_source *out)
{
    const struct mr_provider *p = mr_provider_find(m->provider);
    char *key, *lock, *ekey;
    struct mr_store_lock lk;
    struct mr_str v;
    long long refresh_at = 0;
    long lock_ms = ctx->conf->resolve.lock_timeout_s * 1000;
    bool have = false;
    int rc;

    ctx->why[0] = '\0';
    if (!p)
        return MR_EINTERNAL;
    if (!p->remote)
        return p->resolve(ctx, m, out);
    key = cache_key(ctx, m, "url");
    lock = cache_key(ctx, m, "lock:url");
    ekey = cache_key(ctx, m, "fail:url");
    if (!key || !lock || !ekey)
        return MR_ENOMEM;

    if (!mr_store_get(ctx->store, ctx->arena, key, &v) &&
        !mr_source_from_json(ctx->arena, v.p, v.len, out, &refresh_at)) {
        if (failed && usable(ctx, out, failed))
            return MR_OK;
        if (!failed && mr_clock_wall_s() < refresh_at)
            return MR_OK;
        have = !failed;     /* still valid, but due for a refresh */
    }
    if (!have && remembered_failure(ctx, ekey, &rc))
        return rc;
    {
        /* Another request resolving it: a still-valid link is used as it
         * is, else its answer is waited for. */
        struct waiter wt = { ctx, key, lock, ekey, failed, out, &lk, 0, false };
        struct mr_store_wait w = { .wait_ms = have ? 0 : lock_ms, .pause_us = 5000,
                                   .max_pause_us = POLL_MAX_US, .ready = resolved,
                                   .give_up = client_gone, .arg = &wt };
        rc = mr_store_lock_or_wait(ctx->store, lock, lock_ms, &w, &lk);
        if (wt.remembered)
            return rc;
    }
    if (rc == MR_OK && lk.held) {
        struct mr_source fresh;
        rc = resolve_now(ctx, p, m, key, ekey, &fresh);
        mr_store_unlock(ctx->store, &lk);
        if (!rc) {
            *out = fresh;
            return MR_OK;
        }
        if (have) {
            mr_warn("media %s: refresh failed (%s); the cached link stays until it expires",
                    m->id, mr_strerror(rc));
            ctx->why[0] = '\0';
            return MR_OK;
        }
        return rc;
    }
    if (rc == MR_OK || have)
        return MR_OK;   /* its answer, or the valid link while it refreshes */
    /* It did not finish in time (or the lock could not be taken): ask
     * the provider without it. */
    {
        struct mr_source fresh;
        if (!(rc = resolve_now(ctx, p, m, key, ekey, &fresh)))
            *out = fresh;
        return rc;
    }
}

int mr_resolve(struct mr_ctx *ctx, const struct mr_media *m, struct mr_source *out)
{
    return resolve(ctx, m, NULL, out);
}

int mr_resolve_again(struct mr_ctx *ctx, const struct mr_media *m, const char *failed,
                     struct mr_source *out)
{
    return resolve(ctx, m, failed ? failed : "", out);
}

void mr_resolve_forget(struct mr_ctx *ctx, const struct mr_media *m)
{
    char *key = cache_key(ctx, m, "url"), *ekey = cache_key(ctx, m, "fail:url");
    if (key)
        mr_store_del(ctx->store, key);
    if (ekey)
        mr_store_del(ctx->store, ekey);
}
