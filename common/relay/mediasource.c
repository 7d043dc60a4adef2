/* mediasource.c - what GET /api/media/{id}/source answers. */
#include "relay/mediasource.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/error.h"
#include "core/json.h"
#include "net/store.h"
#include "net/upstream.h"
#include "relay/relay.h"

const char *mr_sniff_type(const char *ct, const void *head, size_t n)
{
    static const struct {
        const char *ct, *type;
    } types[] = {
        { "application/vnd.apple.mpegurl", "hls" }, { "application/x-mpegurl", "hls" },
        { "audio/mpegurl", "hls" }, { "audio/x-mpegurl", "hls" },
        { "application/dash+xml", "mpd" }, { "video/mp4", "mp4" }, { "audio/mp4", "mp4" },
        { "video/x-flv", "flv" }, { "video/webm", "webm" }, { "audio/webm", "webm" },
        { "video/x-matroska", "mkv" }, { "video/mp2t", "ts" },
    };
    const unsigned char *b = head;

    for (size_t i = 0; ct && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strncasecmp(ct, types[i].ct, strlen(types[i].ct)))
            return types[i].type;
    if (!b)
        return NULL;
    if (n >= 3 && !memcmp(b, "\xEF\xBB\xBF", 3)) {
        b += 3;
        n -= 3;
    }
    if (n >= 7 && !memcmp(b, "#EXTM3U", 7))
        return "hls";
    if (n >= 4 && memmem(b, n, "<MPD", 4))
        return "mpd";
    if (n >= 3 && !memcmp(b, "FLV", 3))
        return "flv";
    if (n >= 8 && !memcmp(b + 4, "ftyp", 4))
        return "mp4";
    if (n >= 4 && !memcmp(b, "\x1A\x45\xDF\xA3", 4))
        return memmem(b, n < 64 ? n : 64, "webm", 4) ? "webm" : "mkv";
    if (n >= 189 && b[0] == 0x47 && b[188] == 0x47)
        return "ts";
    return NULL;
}

int mr_source_pick(const struct mr_source *src, const char *name, const char **url,
                   const char **type)
{
    if (!name || !*name) {
        *url = src->url;
        *type = src->video_type;
        return MR_OK;
    }
    if (!strncmp(name, "sub:", 4)) {
        for (size_t i = 0; i < src->nsubs; i++)
            if (src->subs[i].lang && !strcmp(src->subs[i].lang, name + 4)) {
                *url = src->subs[i].url;
                *type = src->subs[i].type;
                return MR_OK;
            }
        return MR_ENOTFOUND;
    }
    for (size_t i = 0; i < src->nmore; i++)
        if (src->more[i].name && !strcmp(src->more[i].name, name)) {
            *url = src->more[i].url;
            *type = src->more[i].video_type;
            return MR_OK;
        }
    return MR_ENOTFOUND;
}

/* --- the type of an upstream that does not say ------------------------- */

struct sniff {
    const char *ct;
    char head[1024];
    size_t n;
};

static int sniff_head(void *arg, const struct mr_upstream_head *h)
{
    struct sniff *s = arg;
    if (h->status >= 400)
        return MR_EUPSTREAM;
    s->ct = mr_upstream_header(h, "Content-Type");
    return MR_OK;
}

static int sniff_data(void *arg, const void *p, size_t n)
{
    struct sniff *s = arg;
    size_t k = sizeof(s->head) - s->n;
    if (k > n)
        k = n;
    memcpy(s->head + s->n, p, k);
    s->n += k;
    return s->n == sizeof(s->head) ? MR_EBUSY : MR_OK;   /* enough: stop */
}

static const char *sniff_upstream(struct mr_ctx *ctx, const struct mr_source *src)
{
    struct sniff s = { NULL, { 0 }, 0 };
    struct mr_sink sink = { .head = sniff_head, .data = sniff_data, .arg = &s };
    struct mr_upstream_head head;
    struct mr_upstream_req req;
    struct mr_header *hv = mr_arena_calloc(ctx->arena, src->headers.n + 1, sizeof(*hv));
    int rc;

    if (!hv)
        return NULL;
    if (src->headers.n)
        memcpy(hv, src->headers.v, src->headers.n * sizeof(*hv));
    hv[src->headers.n] = (struct mr_header){ "Range", "bytes=0-1023" };
    memset(&req, 0, sizeof(req));
    req.url = src->url;
    req.headers = hv;
    req.nheaders = src->headers.n + 1;
    req.timeout_ms = ctx->conf->upstream.fetch_timeout_ms;
    rc = mr_upstream_stream(ctx->up, ctx->arena, &req, &head, &sink);
    if (rc && rc != MR_EBUSY)
        return NULL;
    return mr_sniff_type(s.ct, s.head, s.n);
}

/* --- the answer ----------------------------------------------------------- */

static bool proxy_mode(struct mr_ctx *ctx, const struct mr_media *m, const struct mr_source *s)
{
    const struct mr_provider *p = mr_provider_find(m->provider);
    char field[96];
    struct mr_str v;

    /* A header the upstream wants is one a page cannot send for a <video>. */
    if (s->headers.n)
        return true;
    /* The runtime setting, then the provider's own default. */
    snprintf(field, sizeof(field), "proxy.enable_%s", m->provider);
    if (!mr_store_hget(ctx->store, ctx->arena, "settings", field, &v)) {
        if (mr_str_eq_c(v, "1") || mr_str_caseeq_c(v, "true"))
            return true;
        if (mr_str_eq_c(v, "0") || mr_str_caseeq_c(v, "false"))
            return false;
    }
    return !(p && p->direct && p->direct(ctx->conf));
}

/* The relay URL for a type: the executable that handles it. */
static char *relay_url(struct mr_ctx *ctx, const char *base, const struct mr_media *m,
                       const char *type, const char *name)
{
    const char *path = type && !strcmp(type, "hls") ? "/index.m3u8"
                     : type && !strcmp(type, "mpd") ? "/manifest.mpd" : NULL;
    char *t = NULL;

    if (name) {
        char *esc = curl_easy_escape(NULL, name, 0);
        if (!esc)
            return NULL;
        t = mr_arena_printf(ctx->arena, "?t=%s", esc);
        curl_free(esc);
        if (!t)
            return NULL;
    }
    return path ? mr_arena_printf(ctx->arena, "%s/api/media/%s%s%s", base, m->id, path,
                                  t ? t : "")
                : mr_arena_printf(ctx->arena, "%s/api/proxy/media/%s%s", base, m->id,
                                  t ? t : "");
}

static void put(struct json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

int mr_mediasource_json(struct mr_ctx *ctx, const struct mr_media *m,
                        const struct mr_source *src, struct json_object **out)
{
    struct json_object *o, *more, *subs;
    const struct mr_provider *p;
    const char *type = src->video_type;
    char *base = NULL;
    bool proxy, own;
    int rc;

    /* The relay's own files (the media jobs' results): their URLs are the
     * relay's already, and nothing is fetched to tell their type. */
    own = (p = mr_provider_find(m->provider)) && p->own_files;
    if (!type)
        type = mr_video_type_from_url(src->url);
    if (!type && !own)
        type = sniff_upstream(ctx, src);
    proxy = own || proxy_mode(ctx, m, src);
    if (proxy && !own && (rc = mr_request_base_url(&ctx->req, ctx->conf, ctx->arena, &base)))
        return rc;
    o = json_object_new_object();
    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    put(o, "id", m->id);
    put(o, "provider", m->provider);
    put(o, "mode", proxy ? "proxy" : "direct");
    put(o, "url", proxy && !own ? relay_url(ctx, base, m, type, NULL) : src->url);
    json_object_object_add(o, "expire_at", src->expire_at
                           ? json_object_new_int64((int64_t)src->expire_at) : NULL);
    put(o, "video_type", type);
    put(o, "title", src->title ? src->title : m->title);
    json_object_object_add(o, "duration",
                           src->duration > 0 ? json_object_new_double(src->duration) : NULL);
    put(o, "thumbnail", src->thumbnail);
    more = json_object_new_array();
    for (size_t i = 0; more && i < src->nmore; i++) {
        const struct mr_alt_source *a = &src->more[i];
        struct json_object *e = json_object_new_object();
        put(e, "name", a->name);
        put(e, "url", proxy && !own && a->name
                      ? relay_url(ctx, base, m, a->video_type, a->name) : a->url);
        put(e, "video_type", a->video_type);
        json_object_array_add(more, e);
    }
    json_object_object_add(o, "more_sources", more);
    subs = json_object_new_object();
    for (size_t i = 0; subs && i < src->nsubs; i++) {
        const struct mr_subtitle *s = &src->subs[i];
        struct json_object *e = json_object_new_object();
        char *name = s->lang ? mr_arena_printf(ctx->arena, "sub:%s", s->lang) : NULL;
        if (!s->lang)
            continue;
        put(e, "url", proxy && !own && name ? relay_url(ctx, base, m, NULL, name) : s->url);
        put(e, "type", s->type);
        json_object_object_add(subs, s->lang, e);
    }
    json_object_object_add(o, "subtitles", subs);
    *out = o;
    return MR_OK;
}

int mr_answer_moved(struct mr_ctx *ctx, const char *url)
{
    int rc;

    mr_resp_status(&ctx->resp, 302);
    if ((rc = mr_resp_header(&ctx->resp, "Location", url)) ||
        (rc = mr_resp_header(&ctx->resp, "Cache-Control", "no-store")))
        return rc;
    return mr_resp_finish(&ctx->resp);
}
