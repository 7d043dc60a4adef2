/* bilibili.c - the "bilibili" provider: a video (bvid, page) through the
 * web API, as DASH (an MPD built here) or as one progressive file.
 *
 * Two API calls per resolution (the URL cache keeps the answer until the
 * links' `deadline=`): `/x/web-interface/view?bvid=` gives the title, cover,
 * duration and the pages with their cid; `/x/player/playurl?bvid&cid&qn=80
 * &fnval=4048&fourk=1` gives the streams.  Both answer HTTP 200 with
 * {"code","message","data"}; a non-zero code is an error (logged with its
 * message; -404/62002/62004/62012 are not found, -403/-10403/-101 are
 * forbidden, anything else a bad upstream).
 *
 * DASH (`data.dash`): Bilibili hands out separate video and audio files,
 * each a fragmented MP4 with a sidx, in up to three codec families (AVC
 * codecid 7, HEVC 12, AV1 13).  The main source is an inline MPD
 * (mpd_build.h) with every representation of ONE family -- AVC when there
 * is one, because every player decodes it -- and all the audio, so a player
 * switches quality by itself.  A MediaSource's other sources are URLs, not
 * MPDs, and the relay serves an inline MPD only for the main source; so
 * each other family is offered honestly as what it is: its best video file
 * alone, video_type "mp4", named "1080p HEVC (video only)".  `url` is the
 * first video file of the MPD (every BaseURL in it is absolute, so it is
 * only the nominal base and what the URL cache reads the expiry from).
 *
 * Progressive (`data.durl`): url = the first part; a video the API cuts in
 * several parts (old FLVs) gets the others as more_sources "part N".
 * Backup URLs are not used (a cached resolution is refreshed instead).
 *
 * Header policy: the CDN and the API want `Referer: https://www.bilibili.com`
 * and a browser User-Agent (upstream.user_agent); the API also gets the
 * cookie of providers.bilibili.cookie when it is set: a value without '='
 * is a SESSDATA value ("SESSDATA=" is put before it), a value with '=' is a
 * whole Cookie header ("SESSDATA=…; bili_jct=…") sent as it is.  The cookie
 * never goes to the CDN, which does not need it.
 *
 * Everything the API says is checked before use: http(s) URLs without
 * spaces or control bytes, capped strings and counts, positive numbers.
 * A representation that fails is left out (logged); nothing usable left is
 * a bad upstream (502).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/str.h"
#include "format/expiry.h"
#include "format/mpd_build.h"
#include "net/upstream.h"

#define BILI_REFERER        "https://www.bilibili.com"
#define BILI_MAX_API_BYTES  (2u << 20)  /* one API answer */
#define BILI_MAX_JSON_DEPTH 32
#define BILI_MAX_PAGES      1000        /* source.page */
#define BILI_MAX_STREAMS    MR_MPD_BUILD_MAX_REPS  /* dash.video[], dash.audio[] each */
#define BILI_MAX_BACKUP     4           /* backup URLs kept per representation */
#define BILI_MAX_PARTS      16          /* durl[] */
#define BILI_MAX_TITLE      512         /* bytes of a title, cut on a UTF-8 boundary */
#define BILI_MAX_COOKIE     4096
#define BILI_MAX_MESSAGE    160         /* an API message in a log line */

enum { CODEC_AVC = 7, CODEC_HEVC = 12, CODEC_AV1 = 13 };

/* providers.bilibili (app/provider.h): its section of mediarelay.json. */
struct bilibili_conf {
    char *mode;
    char *api_base;
    char *cookie;
};

static const struct mr_conf_field bilibili_fields[] = {
    MR_PROVIDER_MODE(struct bilibili_conf, "proxy"),
    MR_CONF_STR("api_base", offsetof(struct bilibili_conf, api_base), "https://api.bilibili.com"),
    MR_CONF_STR("cookie", offsetof(struct bilibili_conf, cookie), ""),
    MR_CONF_END
};

extern const struct mr_provider mr_provider_bilibili;

static const struct bilibili_conf *settings(const struct mr_conf *c)
{
    return mr_conf_settings(c, &mr_provider_bilibili.conf);
}

static bool bilibili_is_direct(const struct mr_conf *c)
{
    return !strcmp(settings(c)->mode, "direct");
}

/* --- checks ---------------------------------------------------------------- */

static bool http_url(const char *s)
{
    return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

/* An http(s) URL the relay can carry: capped, no spaces, no control bytes. */
static bool url_ok(const char *s)
{
    size_t n;

    if (!s || !http_url(s))
        return false;
    n = strlen(s);
    if (n > MR_URL_MAX)
        return false;
    return !mr_str_has_ctl(s, n) && !memchr(s, ' ', n);
}

/* "BV" and 10 letters or digits. */
static bool bvid_ok(const char *s, size_t n)
{
    if (n != 12 || s[0] != 'B' || s[1] != 'V')
        return false;
    for (size_t i = 2; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

/* A short printable value (codecs, mime type, frame rate, sar). */
static bool field_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (!n || n > MR_MPD_BUILD_MAX_FIELD)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!mr_is_vchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Only the shapes an MPD can carry; the API says "N/A" or "" at times. */
static bool frame_rate_ok(const char *s)
{
    size_t d = strspn(s, "0123456789");

    if (!field_ok(s) || !d)
        return false;
    if (!s[d])
        return true;
    if (s[d] == '.' || s[d] == '/')
        return s[d + 1] && strspn(s + d + 1, "0123456789") == strlen(s + d + 1);
    return false;
}

static bool sar_ok(const char *s)
{
    size_t d = strspn(s, "0123456789");
    return field_ok(s) && d && s[d] == ':' && s[d + 1] &&
           strspn(s + d + 1, "0123456789") == strlen(s + d + 1);
}

/* --- the source object: {"bvid","page"?,"cid"?} or {"url"} ------------------ */

/* A www.bilibili.com/video/BV… page URL: its bvid (into bvid[13]) and ?p=N
 * (default 1).  False for anything else. */
static bool parse_page_url(const char *url, char *bvid, long *page)
{
    static const char *const prefixes[] = {
        "https://www.bilibili.com/video/", "http://www.bilibili.com/video/",
        "https://bilibili.com/video/", "https://m.bilibili.com/video/", NULL
    };
    const char *p = NULL, *q;

    for (const char *const *pre = prefixes; *pre && !p; pre++)
        if (!strncmp(url, *pre, strlen(*pre)))
            p = url + strlen(*pre);
    if (!p || strlen(url) > MR_URL_MAX || strnlen(p, 12) < 12 || !bvid_ok(p, 12))
        return false;
    memcpy(bvid, p, 12);
    bvid[12] = '\0';
    *page = 1;
    p += 12;
    if (*p == '/')
        p++;
    if (*p && *p != '?' && *p != '#')
        return false;   /* /video/BV…/something: not a video page */
    if (*p != '?')
        return true;
    /* ?…&p=N&…; other parameters (spm_id_from, t) are ignored. */
    for (q = p + 1; *q && *q != '#'; ) {
        size_t n = strcspn(q, "&#");
        if (n > 2 && q[0] == 'p' && q[1] == '=') {
            long v;
            if (!mr_str_to_long((struct mr_str){ q + 2, n - 2 }, 1, BILI_MAX_PAGES, &v))
                return false;
            *page = v;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return true;
}

static int bili_validate(struct json_object *source, char *field, size_t fieldlen,
                         char *msg, size_t msglen)
{
    struct json_object *v;
    bool has_url = json_object_object_get_ex(source, "url", &v);

#define BAD(f, ...) do { snprintf(field, fieldlen, "%s", f); \
                         snprintf(msg, msglen, __VA_ARGS__); return MR_EINVAL; } while (0)
    json_object_object_foreach(source, key, val) {
        (void)val;
        if (strcmp(key, "bvid") && strcmp(key, "page") && strcmp(key, "cid") &&
            strcmp(key, "url"))
            BAD(key, "unknown key (bvid, page, cid; or url)");
    }
    if (has_url) {
        char bvid[13];
        long page;
        if (json_object_object_length(source) != 1)
            BAD("url", "give either url or bvid (+ page or cid)");
        if (!json_object_is_type(v, json_type_string) ||
            !parse_page_url(json_object_get_string(v), bvid, &page))
            BAD("url", "must be a https://www.bilibili.com/video/BV… page URL (?p=1-%d)",
                BILI_MAX_PAGES);
        return MR_OK;
    }
    if (!json_object_object_get_ex(source, "bvid", &v) || !json_object_is_type(v, json_type_string))
        BAD("bvid", "a string is required (\"BV\" and 10 letters or digits)");
    if (!bvid_ok(json_object_get_string(v), (size_t)json_object_get_string_len(v)))
        BAD("bvid", "must be \"BV\" and 10 letters or digits");
    if (json_object_object_get_ex(source, "page", &v) &&
        (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
         json_object_get_int64(v) > BILI_MAX_PAGES))
        BAD("page", "an integer from 1 to %d", BILI_MAX_PAGES);
    if (json_object_object_get_ex(source, "cid", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
            BAD("cid", "a positive integer");
        if (json_object_object_get_ex(source, "page", NULL))
            BAD("cid", "give page or cid, not both");
    }
#undef BAD
    return MR_OK;
}

static bool bili_can_handle(const char *url)
{
    char bvid[13];
    long page;
    return parse_page_url(url, bvid, &page);
}

/* --- JSON helpers ----------------------------------------------------------- */

static struct json_object *jget(struct json_object *o, const char *k, json_type t)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
        return NULL;
    return v;
}

/* A string under either spelling (the API gives camelCase and snake_case). */
static const char *jstr(struct json_object *o, const char *k, const char *k2)
{
    struct json_object *v = jget(o, k, json_type_string);
    if (!v && k2)
        v = jget(o, k2, json_type_string);
    return v ? json_object_get_string(v) : NULL;
}

static bool jlong(struct json_object *o, const char *k, const char *k2, long long *out)
{
    struct json_object *v = jget(o, k, json_type_int);
    if (!v && k2)
        v = jget(o, k2, json_type_int);
    if (!v)
        return false;
    *out = (long long)json_object_get_int64(v);
    return true;
}

/* A number of seconds (int or double), 0 when absent or nonsense. */
static double jseconds(struct json_object *o, const char *k, double scale)
{
    struct json_object *v;
    double d;

    if (!o || !json_object_object_get_ex(o, k, &v) ||
        (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)))
        return 0;
    d = json_object_get_double(v) * scale;
    return d > 0 && d < MR_MPD_BUILD_MAX_SECONDS ? d : 0;
}

/* --- the API ------------------------------------------------------------------ */

struct api {
    struct mr_ctx *ctx;
    const char *base;             /* api_base without its trailing '/' */
    struct mr_header hv[3];
    size_t nh;
    const char *id;               /* the media id, for logs */
};

static int api_init(struct mr_ctx *ctx, const struct mr_media *media, struct api *api)
{
    const char *base = settings(ctx->conf)->api_base;
    const char *cookie = settings(ctx->conf)->cookie;
    size_t n = strlen(base);

    memset(api, 0, sizeof(*api));
    api->ctx = ctx;
    api->id = media->id;
    while (n && base[n - 1] == '/')
        n--;
    if (!(api->base = mr_arena_strndup(ctx->arena, base, n)))
        return MR_ENOMEM;
    if (!url_ok(api->base)) {
        mr_error("providers.bilibili.api_base is not an http(s) URL");
        return MR_EINTERNAL;
    }
    api->hv[api->nh++] = (struct mr_header){ "Referer", BILI_REFERER };
    api->hv[api->nh++] = (struct mr_header){ "User-Agent", ctx->conf->upstream.user_agent };
    if (cookie && *cookie) {
        size_t cn = strlen(cookie);
        if (mr_str_has_ctl(cookie, cn))
            cn = 0;
        if (!cn || cn > BILI_MAX_COOKIE) {
            mr_error("providers.bilibili.cookie holds control bytes or is too long: not sent");
        } else {
            const char *c = strchr(cookie, '=') ? cookie
                            : mr_arena_printf(ctx->arena, "SESSDATA=%s", cookie);
            if (!c)
                return MR_ENOMEM;
            api->hv[api->nh++] = (struct mr_header){ "Cookie", c };
        }
    }
    return MR_OK;
}

/* The error of an API code. */
static int code_error(long long code)
{
    switch (code) {
    case -404: case 62002: case 62004: case 62012:
        return MR_ENOTFOUND;        /* no such video, hidden, under review */
    case -403: case -10403: case -101:
        return MR_EFORBIDDEN;       /* region, login, paid content */
    default:
        return MR_EUPSTREAM;
    }
}

/* GET base + path_query; *data = the answer's "data" object (owned by the
 * arena).  The answer must be HTTP 200, a JSON object, code 0. */
static int api_get(struct api *api, const char *what, const char *path_query,
                   struct json_object **data)
{
    struct mr_ctx *ctx = api->ctx;
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct json_object *root, *d, *msgv;
    struct mr_buf *body;
    long long code;
    int rc;

    *data = NULL;
    if (!path_query || !(body = mr_arena_alloc(ctx->arena, sizeof(*body))))
        return MR_ENOMEM;
    mr_buf_init(body, BILI_MAX_API_BYTES);
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, body)))
        return rc;
    memset(&req, 0, sizeof(req));
    req.url = mr_arena_printf(ctx->arena, "%s%s", api->base, path_query);
    if (!req.url)
        return MR_ENOMEM;
    req.headers = api->hv;
    req.nheaders = api->nh;
    req.max_bytes = BILI_MAX_API_BYTES;
    req.decode = true;
    memset(&head, 0, sizeof(head));
    rc = mr_upstream_fetch(ctx->up, ctx->arena, &req, &head, body);
    ctx->upstream_status = head.status;
    if (rc)
        return mr_fail(ctx, api->id, rc == MR_ETOOBIG ? MR_EUPSTREAM : rc,
                       "bilibili %s API: %s (%s)", what, mr_strerror(rc),
                       mr_upstream_error(ctx->up));
    if (head.status != 200)
        return mr_fail(ctx, api->id, MR_EUPSTREAM, "bilibili %s API answered HTTP %ld", what,
                       head.status);
    rc = mr_json_parse_object(ctx->arena, body->p, body->len, BILI_MAX_JSON_DEPTH, &root);
    if (rc == MR_ENOMEM)
        return rc;
    if (rc)
        return mr_fail(ctx, api->id, MR_EUPSTREAM,
                       "bilibili %s API: the answer is not a JSON object", what);
    if (!jlong(root, "code", NULL, &code))
        return mr_fail(ctx, api->id, MR_EUPSTREAM, "bilibili %s API: the answer has no code", what);
    if (code != 0) {
        char m[BILI_MAX_MESSAGE];
        msgv = jget(root, "message", json_type_string);
        mr_log_escape(mr_str_c(msgv ? json_object_get_string(msgv) : ""), m, sizeof(m));
        return mr_fail(ctx, api->id, code_error(code), "bilibili %s API: code %lld: %s", what,
                       code, m);
    }
    if (!(d = jget(root, "data", json_type_object)))
        return mr_fail(ctx, api->id, MR_EUPSTREAM, "bilibili %s API: code 0 but no data", what);
    *data = d;
    return MR_OK;
}

/* --- the answer ---------------------------------------------------------------- */

/* A copy of s cut to BILI_MAX_TITLE bytes on a UTF-8 boundary. */
static const char *title_copy(struct mr_arena *a, const char *s)
{
    size_t n = strlen(s);

    if (n > BILI_MAX_TITLE) {
        n = BILI_MAX_TITLE;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return mr_arena_strndup(a, s, n);
}

/* The earlier non-zero expiry. */
static time_t earlier(time_t a, time_t b)
{
    return !a ? b : !b ? a : a < b ? a : b;
}

/* One dash.video[] / dash.audio[] entry as a representation; false (logged)
 * when it is not usable. */
static bool dash_rep(struct mr_arena *a, struct json_object *o, bool video,
                     struct mr_mpd_rep *r, long long *codecid, const char *mid)
{
    struct json_object *sb, *backups;
    const char *init = NULL, *index = NULL, *s;
    long long id, bw, w = 0, h = 0;

    memset(r, 0, sizeof(*r));
    *codecid = 0;
    if (!json_object_is_type(o, json_type_object) || !jlong(o, "id", NULL, &id) ||
        id < 0 || id > 1000000)
        goto bad;
    r->base_url = jstr(o, "baseUrl", "base_url");
    if (!url_ok(r->base_url))
        goto bad;
    r->mime_type = jstr(o, "mimeType", "mime_type");
    if (!field_ok(r->mime_type) ||
        strncmp(r->mime_type, video ? "video/" : "audio/", 6))
        goto bad;
    if (!jlong(o, "bandwidth", NULL, &bw) || bw <= 0 || bw > 1000000000LL)
        goto bad;
    r->bandwidth = (long)bw;
    s = jstr(o, "codecs", NULL);
    r->codecs = field_ok(s) ? s : NULL;
    sb = jget(o, "SegmentBase", json_type_object);
    if (sb) {
        init = jstr(sb, "Initialization", "initialization");
        index = jstr(sb, "indexRange", "index_range");
    } else if ((sb = jget(o, "segment_base", json_type_object))) {
        init = jstr(sb, "initialization", "Initialization");
        index = jstr(sb, "index_range", "indexRange");
    }
    if (!field_ok(init) || !field_ok(index))
        goto bad;
    r->init_range = init;
    r->index_range = index;
    if (video) {
        jlong(o, "codecid", NULL, codecid);
        if (jlong(o, "width", NULL, &w) && w > 0 && w <= 100000)
            r->width = (long)w;
        if (jlong(o, "height", NULL, &h) && h > 0 && h <= 100000)
            r->height = (long)h;
        s = jstr(o, "frameRate", "frame_rate");
        r->frame_rate = s && frame_rate_ok(s) ? s : NULL;
        s = jstr(o, "sar", NULL);
        r->sar = s && sar_ok(s) ? s : NULL;
        r->id = *codecid ? mr_arena_printf(a, "%lld-%lld", id, *codecid)
                         : mr_arena_printf(a, "%lld", id);
    } else {
        r->id = mr_arena_printf(a, "a%lld", id);
    }
    if (!r->id)
        return false;
    backups = jget(o, "backupUrl", json_type_array);
    if (!backups)
        backups = jget(o, "backup_url", json_type_array);
    if (backups) {
        size_t n = json_object_array_length(backups), k = 0;
        const char **v = mr_arena_calloc(a, BILI_MAX_BACKUP, sizeof(*v));
        if (!v)
            return false;
        for (size_t i = 0; i < n && k < BILI_MAX_BACKUP; i++) {
            struct json_object *u = json_object_array_get_idx(backups, i);
            if (json_object_is_type(u, json_type_string) && url_ok(json_object_get_string(u)))
                v[k++] = json_object_get_string(u);
        }
        r->backup_urls = v;
        r->nbackup = k;
    }
    return true;
bad:
    mr_warn("media %s: bilibili: a dash.%s entry is not usable: left out", mid,
            video ? "video" : "audio");
    return false;
}

static const char *codec_name(long long codecid)
{
    return codecid == CODEC_AVC ? "AVC" : codecid == CODEC_HEVC ? "HEVC"
         : codecid == CODEC_AV1 ? "AV1" : "other codec";
}

static bool unique_id(const struct mr_mpd_rep *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].id, id))
            return false;
    return true;
}

static int from_dash(struct mr_ctx *ctx, const struct mr_media *media,
                     struct json_object *dash, double fallback_duration, struct mr_source *out)
{
    struct mr_arena *a = ctx->arena;
    struct json_object *va = jget(dash, "video", json_type_array);
    struct json_object *aa = jget(dash, "audio", json_type_array);
    size_t nv = va ? json_object_array_length(va) : 0, na = aa ? json_object_array_length(aa) : 0;
    struct mr_mpd_rep *video, *audio, *mainv;
    long long *codec, main_codec = -1, families[BILI_MAX_STREAMS];
    size_t nvideo = 0, naudio = 0, nmain = 0, nfam = 0;
    struct mr_mpd_spec spec;
    struct mr_buf *mpd;
    const char *why = NULL;
    int rc;

    if (nv > BILI_MAX_STREAMS || na > BILI_MAX_STREAMS)
        return mr_fail(ctx, media->id, MR_EUPSTREAM,
                       "bilibili: %zu video and %zu audio streams: more than %d", nv, na,
                       BILI_MAX_STREAMS);
    video = mr_arena_calloc(a, nv + 1, sizeof(*video));
    mainv = mr_arena_calloc(a, nv + 1, sizeof(*mainv));
    codec = mr_arena_calloc(a, nv + 1, sizeof(*codec));
    audio = mr_arena_calloc(a, na + 1, sizeof(*audio));
    if (!video || !mainv || !codec || !audio)
        return MR_ENOMEM;
    for (size_t i = 0; i < nv; i++) {
        long long c;
        if (dash_rep(a, json_object_array_get_idx(va, i), true, &video[nvideo], &c, media->id) &&
            unique_id(video, nvideo, video[nvideo].id))
            codec[nvideo++] = c;
    }
    for (size_t i = 0; i < na; i++) {
        long long c;
        if (dash_rep(a, json_object_array_get_idx(aa, i), false, &audio[naudio], &c, media->id) &&
            unique_id(audio, naudio, audio[naudio].id))
            naudio++;
    }
    if (!nvideo)
        return mr_fail(ctx, media->id, MR_EUPSTREAM,
                       "bilibili: the DASH answer has no usable video");
    /* The families in the order the API lists them; AVC first if present. */
    for (size_t i = 0; i < nvideo; i++) {
        bool seen = false;
        for (size_t k = 0; k < nfam; k++)
            seen |= families[k] == codec[i];
        if (!seen)
            families[nfam++] = codec[i];
        if (codec[i] == CODEC_AVC)
            main_codec = CODEC_AVC;
    }
    if (main_codec < 0)
        main_codec = families[0];
    for (size_t i = 0; i < nvideo; i++)
        if (codec[i] == main_codec)
            mainv[nmain++] = video[i];

    memset(&spec, 0, sizeof(spec));
    spec.duration_s = jseconds(dash, "duration", 1);
    if (!(spec.duration_s > 0))
        spec.duration_s = fallback_duration;
    if (!(spec.duration_s > 0))
        return mr_fail(ctx, media->id, MR_EUPSTREAM, "bilibili: no duration for the DASH streams");
    spec.min_buffer_s = jseconds(dash, "minBufferTime", 1);
    if (!(spec.min_buffer_s > 0))
        spec.min_buffer_s = jseconds(dash, "min_buffer_time", 1);
    if (spec.min_buffer_s > 60)
        spec.min_buffer_s = 0;
    spec.video = mainv;
    spec.nvideo = nmain;
    spec.audio = audio;
    spec.naudio = naudio;
    if (!(mpd = mr_arena_alloc(a, sizeof(*mpd))))
        return MR_ENOMEM;
    mr_buf_init(mpd, (size_t)ctx->conf->dash.max_manifest_bytes);
    if ((rc = mr_arena_cleanup(a, mr_buf_cleanup, mpd)))
        return rc;
    if ((rc = mr_mpd_build(&spec, mpd, &why)))
        return mr_fail(ctx, media->id, rc == MR_ENOMEM ? rc : MR_EUPSTREAM,
                       "bilibili: cannot build the MPD: %s", why ? why : mr_strerror(rc));
    out->inline_mpd = mpd->p;
    out->url = mainv[0].base_url;
    out->video_type = "mpd";
    out->duration = spec.duration_s;
    for (size_t i = 0; i < nmain; i++)
        out->expire_at = earlier(out->expire_at, mr_expiry_from_url(mainv[i].base_url));
    for (size_t i = 0; i < naudio; i++)
        out->expire_at = earlier(out->expire_at, mr_expiry_from_url(audio[i].base_url));

    /* Each other family: its best video file alone (see the top). */
    if (nfam > 1) {
        if (!(out->more = mr_arena_calloc(a, nfam - 1, sizeof(*out->more))))
            return MR_ENOMEM;
        for (size_t k = 0; k < nfam; k++) {
            const struct mr_mpd_rep *best = NULL;
            if (families[k] == main_codec)
                continue;
            for (size_t i = 0; i < nvideo; i++)
                if (codec[i] == families[k] &&
                    (!best || video[i].height > best->height ||
                     (video[i].height == best->height && video[i].bandwidth > best->bandwidth)))
                    best = &video[i];
            out->more[out->nmore].url = best->base_url;
            out->more[out->nmore].video_type = "mp4";
            out->more[out->nmore].name = best->height
                ? mr_arena_printf(a, "%ldp %s (video only)", best->height,
                                  codec_name(families[k]))
                : mr_arena_printf(a, "%s (video only)", codec_name(families[k]));
            if (!out->more[out->nmore].name)
                return MR_ENOMEM;
            out->expire_at = earlier(out->expire_at, mr_expiry_from_url(best->base_url));
            out->nmore++;
        }
    }
    return MR_OK;
}

static const char *durl_type(const char *url, const char *format)
{
    const char *t = mr_video_type_from_url(url);

    if (t)
        return t;
    if (format && !strncmp(format, "mp4", 3))
        return "mp4";
    if (format && !strncmp(format, "flv", 3))
        return "flv";
    return NULL;    /* sniffed by the MediaSource */
}

static int from_durl(struct mr_ctx *ctx, const struct mr_media *media, struct json_object *data,
                     struct json_object *durl, double fallback_duration, struct mr_source *out)
{
    size_t n = json_object_array_length(durl);
    const char *format = jstr(data, "format", NULL);
    double total = 0;

    if (n > BILI_MAX_PARTS)
        return mr_fail(ctx, media->id, MR_EUPSTREAM, "bilibili: %zu parts: more than %d", n,
                       BILI_MAX_PARTS);
    if (n > 1 && !(out->more = mr_arena_calloc(ctx->arena, n - 1, sizeof(*out->more))))
        return MR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(durl, i);
        const char *u = jstr(e, "url", NULL);
        if (!url_ok(u))
            return mr_fail(ctx, media->id, MR_EUPSTREAM, "bilibili: durl[%zu] has no usable url",
                           i);
        total += jseconds(e, "length", 0.001);
        out->expire_at = earlier(out->expire_at, mr_expiry_from_url(u));
        if (!i) {
            out->url = u;
            out->video_type = durl_type(u, format);
        } else {
            struct mr_alt_source *alt = &out->more[out->nmore++];
            alt->url = u;
            alt->video_type = durl_type(u, format);
            if (!(alt->name = mr_arena_printf(ctx->arena, "part %zu", i + 1)))
                return MR_ENOMEM;
        }
    }
    if (!out->url)
        return mr_fail(ctx, media->id, MR_EUPSTREAM,
                       "bilibili: the answer has neither dash nor durl");
    out->duration = total > 0 ? total : fallback_duration;
    return MR_OK;
}

static int bili_resolve(struct mr_ctx *ctx, const struct mr_media *media, struct mr_source *out)
{
    struct mr_arena *a = ctx->arena;
    struct json_object *v, *view, *play, *pages, *pg = NULL, *dash, *durl;
    const char *bvid, *s;
    char bvbuf[13];
    long long cid = 0, page = 1;
    double duration;
    struct api api;
    int rc;

    memset(out, 0, sizeof(*out));
    if (json_object_object_get_ex(media->source, "url", &v)) {
        long p;
        if (!parse_page_url(json_object_get_string(v), bvbuf, &p))
            return MR_EINVAL;
        bvid = bvbuf;
        page = p;
    } else {
        if (!(bvid = jstr(media->source, "bvid", NULL)) || !bvid_ok(bvid, strlen(bvid)))
            return MR_EINVAL;
        jlong(media->source, "page", NULL, &page);
        jlong(media->source, "cid", NULL, &cid);
    }
    if ((rc = api_init(ctx, media, &api)))
        return rc;

    /* The view API: metadata and the page's cid. */
    if ((rc = api_get(&api, "view", mr_arena_printf(a, "/x/web-interface/view?bvid=%s", bvid),
                      &view)))
        return rc;
    pages = jget(view, "pages", json_type_array);
    for (size_t i = 0; pages && i < json_object_array_length(pages) && i < BILI_MAX_PAGES; i++) {
        struct json_object *p = json_object_array_get_idx(pages, i);
        long long c = 0, n = 0;
        if (!json_object_is_type(p, json_type_object) || !jlong(p, "cid", NULL, &c) || c <= 0)
            continue;
        if (!jlong(p, "page", NULL, &n))
            n = (long long)i + 1;
        if (cid ? c == cid : n == page) {
            pg = p;
            cid = c;
            break;
        }
    }
    if (!pg)
        return mr_fail(ctx, media->id, MR_ENOTFOUND, "bilibili: %s has no page %lld%s", bvid,
                       cid ? cid : page, cid ? " (cid)" : "");
    duration = jseconds(pg, "duration", 1);
    if (!(duration > 0))
        duration = jseconds(view, "duration", 1);
    if (media->title) {
        out->title = media->title;
    } else if ((s = jstr(view, "title", NULL)) && *s) {
        const char *part = jstr(pg, "part", NULL);
        /* A video of several pages: say which one. */
        if (pages && json_object_array_length(pages) > 1 && part && *part && strcmp(part, s))
            s = mr_arena_printf(a, "%s - %s", s, part);
        if (!s || !(out->title = title_copy(a, s)))
            return MR_ENOMEM;
    }
    if ((s = jstr(view, "pic", NULL)) && url_ok(s))
        out->thumbnail = s;

    /* The playurl API: the streams. */
    if ((rc = api_get(&api, "playurl",
                      mr_arena_printf(a, "/x/player/playurl?bvid=%s&cid=%lld&qn=80&fnval=4048"
                                      "&fourk=1", bvid, cid), &play)))
        return rc;
    if (!(duration > 0))
        duration = jseconds(play, "timelength", 0.001);
    if ((dash = jget(play, "dash", json_type_object)))
        rc = from_dash(ctx, media, dash, duration, out);
    else if ((durl = jget(play, "durl", json_type_array)) && json_object_array_length(durl))
        rc = from_durl(ctx, media, play, durl, duration, out);
    else
        rc = mr_fail(ctx, media->id, MR_EUPSTREAM,
                     "bilibili: the playurl answer has neither dash nor durl");
    if (rc)
        return rc;

    /* What the CDN wants (the cookie is the API's only). */
    if (!(out->headers.v = mr_arena_calloc(a, 2, sizeof(*out->headers.v))))
        return MR_ENOMEM;
    out->headers.v[0] = (struct mr_header){ "Referer", BILI_REFERER };
    out->headers.v[1] = (struct mr_header){ "User-Agent", ctx->conf->upstream.user_agent };
    out->headers.n = 2;
    return MR_OK;
}

const struct mr_provider mr_provider_bilibili = {
    .name = "bilibili",
    .conf = { "bilibili", bilibili_fields, sizeof(struct bilibili_conf) },
    .direct = bilibili_is_direct,
    .validate = bili_validate,
    .can_handle = bili_can_handle,
    .resolve = bili_resolve,
    .remote = true,
};
