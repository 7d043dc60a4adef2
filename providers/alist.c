/* alist.c - the "alist" provider: a file on an Alist server, by instance and path.
 *
 * Source: {"instance": id in providers.alist.instances, "path": "/movies/a.mkv",
 * "password"?: "..."}.  One POST {instance}/api/fs/get (Authorization: the
 * raw token, no "Bearer") gives the file's raw_url, its storage driver, name,
 * thumbnail and `related` files; Alist answers HTTP 200 with
 * {"code","message","data"} and a code other than 200 is the error.  Related
 * subtitle files are fetched through Alist's own download route
 * ({instance}/d{dir}/{name}?sign=...).  Drivers that transcode to HLS are
 * asked once more (POST /api/fs/other, method "video_preview"); its finished
 * qualities become more_sources, and a failure there costs only them.
 *
 * Some drivers bind raw_url to the User-Agent that asked for it.  The client's
 * own User-Agent (or upstream.user_agent when it has none) is therefore what
 * asks Alist, and for those drivers it goes into the header policy too, so
 * that every later fetch of the link -- by whichever client -- sends it.  A
 * header in the policy keeps such items in proxy mode (mediasource.c).
 *
 * The answer is cached by common/relay/resolver.c (.remote): 50 viewers cost one
 * Alist call.  Alist's error messages are untrusted text: they are cut and
 * stripped of control bytes before they reach a log line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "format/expiry.h"
#include "net/upstream.h"

#define ALIST_MAX_PATH        4096        /* source.path */
#define ALIST_MAX_PASSWORD    256         /* source.password */
#define ALIST_MAX_BODY        (2u << 20)  /* an /api/fs/get or /api/fs/other answer */
#define ALIST_MAX_DEPTH       32          /* nesting of that answer */
#define ALIST_MAX_RELATED     1000        /* related entries looked at */
#define ALIST_MAX_SUBS        32          /* subtitles kept */
#define ALIST_MAX_QUALITIES   16          /* transcoded qualities kept */
#define ALIST_MAX_NAME        255         /* a file name */
#define ALIST_MAX_TEMPLATE    32          /* a template_id ("FHD") */
#define ALIST_MAX_UA          512         /* a client's User-Agent passed on */
#define ALIST_MAX_MSG         200         /* Alist's message, in a log line */

/* providers.alist (app/provider.h): its section of mediarelay.json. */
struct alist_instance {
    char *id;
    char *url;
    char *token;
};

static const struct mr_conf_field alist_instance_fields[] = {
    { .key = "url", .kind = MR_CONF_K_STRING, .off = offsetof(struct alist_instance, url),
      .required = true },
    MR_CONF_STR("token", offsetof(struct alist_instance, token), ""),
    MR_CONF_END
};

struct alist_conf {
    char *mode;
    struct mr_conf_map instances;  /* of struct alist_instance */
};

static const struct mr_conf_field alist_fields[] = {
    MR_PROVIDER_MODE(struct alist_conf, "proxy"),
    MR_CONF_MAP("instances", offsetof(struct alist_conf, instances), struct alist_instance,
                alist_instance_fields),
    MR_CONF_END
};

extern const struct mr_provider mr_provider_alist;

static const struct alist_conf *settings(const struct mr_conf *c)
{
    return mr_conf_settings(c, &mr_provider_alist.conf);
}

static bool alist_is_direct(const struct mr_conf *c)
{
    return !strcmp(settings(c)->mode, "direct");
}

/* Drivers whose raw_url only works with the User-Agent that asked for it. */
static const char *const ua_bound_drivers[] = {
    "BaiduNetdisk", "AliyundriveOpen", "115 Cloud", "115 Share",
};

/* Drivers that answer /api/fs/other video_preview with transcoded HLS. */
static const char *const hls_drivers[] = {
    "AliyundriveOpen", "Aliyundrive", "AliyundriveShare", "BaiduNetdisk",
};

static const char *const sub_exts[] = { "vtt", "srt", "ass", "ssa" };

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool in_table(const char *s, const char *const *t, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(s, t[i]))
            return true;
    return false;
}

/* Any byte below 0x20, or DEL. */
static bool has_ctl(const char *s)
{
    return mr_str_has_ctl(s, strlen(s));
}

static bool http_url(const char *s)
{
    return (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8)) &&
           strlen(s) <= MR_URL_MAX && !strpbrk(s, " ") && !has_ctl(s);
}

/* A member that is a string, or NULL. */
static const char *get_str(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static struct json_object *get_type(struct json_object *o, const char *k, enum json_type t)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
        return NULL;
    return v;
}

/* --- the source object ------------------------------------------------------- */

static int bad(char *field, size_t fieldlen, const char *f, char *msg, size_t msglen,
               const char *m)
{
    snprintf(field, fieldlen, "%s", f);
    snprintf(msg, msglen, "%s", m);
    return MR_EINVAL;
}

/* Absolute, no control bytes, no "." or ".." segment, capped. */
static const char *path_problem(const char *p)
{
    if (p[0] != '/')
        return "must be an absolute path (\"/movies/a.mkv\")";
    if (strlen(p) > ALIST_MAX_PATH)
        return "too long";
    if (has_ctl(p))
        return "must not contain control characters";
    for (const char *s = p; *s; ) {
        size_t n;
        s += strspn(s, "/");
        n = strcspn(s, "/");
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return "must not contain \".\" or \"..\" segments";
        s += n;
    }
    return NULL;
}

static int alist_validate(struct json_object *source, char *field, size_t fieldlen,
                          char *msg, size_t msglen)
{
    struct json_object *v;
    const char *why;

    if (!json_object_object_get_ex(source, "instance", &v) ||
        !json_object_is_type(v, json_type_string))
        return bad(field, fieldlen, "instance", msg, msglen,
                   "a string is required (an id in providers.alist.instances)");
    if (!mr_conf_id_ok(json_object_get_string(v)))
        return bad(field, fieldlen, "instance", msg, msglen,
                   "not a valid instance id (A-Z a-z 0-9 . _ -)");
    if (!json_object_object_get_ex(source, "path", &v) ||
        !json_object_is_type(v, json_type_string))
        return bad(field, fieldlen, "path", msg, msglen, "a string is required");
    if ((why = path_problem(json_object_get_string(v))))
        return bad(field, fieldlen, "path", msg, msglen, why);
    if (json_object_object_get_ex(source, "password", &v)) {
        if (!json_object_is_type(v, json_type_string))
            return bad(field, fieldlen, "password", msg, msglen, "must be a string");
        if (strlen(json_object_get_string(v)) > ALIST_MAX_PASSWORD ||
            has_ctl(json_object_get_string(v)))
            return bad(field, fieldlen, "password", msg, msglen,
                       "at most 256 bytes, no control characters");
    }
    json_object_object_foreach(source, key, val) {
        (void)val;
        if (strcmp(key, "instance") && strcmp(key, "path") && strcmp(key, "password"))
            return bad(field, fieldlen, key, msg, msglen, "unknown key");
    }
    return MR_OK;
}

/* --- talking to Alist ---------------------------------------------------------- */

struct call {
    struct mr_ctx *ctx;
    const struct mr_media *media;
    const struct alist_instance *inst;
    const char *base;       /* the instance URL without a trailing '/' */
    const char *path;       /* source.path as given */
    const char *logpath;    /* the same, escaped for log lines */
    const char *ua;
};

static const struct alist_instance *find_instance(const struct mr_conf *c, const char *id)
{
    const struct mr_conf_map *m = &settings(c)->instances;
    const struct alist_instance *v = m->items;
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(v[i].id, id))
            return &v[i];
    return NULL;
}

/* Alist's message fit for a log line: cut, control bytes replaced. */
static void clean_msg(const char *m, char *out, size_t outlen)
{
    size_t k = 0;
    for (; m && *m && k + 1 < outlen && k < ALIST_MAX_MSG; m++)
        out[k++] = mr_is_ctl((unsigned char)*m) ? '?' : *m;
    out[k] = '\0';
}

/* Which error an Alist `code` is. */
static int code_err(long code, const char *msg)
{
    if (code == 401 || code == 403)
        return MR_EFORBIDDEN;
    if (code == 404 || (msg && strcasestr(msg, "not found")))
        return MR_ENOTFOUND;
    return MR_EUPSTREAM;
}

/* A failed call: "alist ID: ENDPOINT PATH: what", logged and kept for the
 * answer (mr_fail).  Returns rc. */
__attribute__((format(printf, 4, 5)))
static int post_fail(const struct call *c, const char *endpoint, int rc, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return mr_fail(c->ctx, c->media->id, rc, "alist %s: %s %s: %s", c->inst->id, endpoint,
                   c->logpath, what);
}

/* POST {base}{endpoint} with a JSON body; *data is the answer's "data" when
 * its code is 200 (owned by the arena).  Any other outcome is logged and
 * returned as an error. */
static int alist_post(const struct call *c, const char *endpoint, struct json_object *req_obj,
                      struct json_object **data)
{
    struct mr_ctx *ctx = c->ctx;
    struct mr_header hv[3];
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct json_object *root, *v;
    struct mr_buf *body;
    const char *text, *msg;
    char clean[ALIST_MAX_MSG + 1];
    size_t nh = 0;
    long code;
    int rc;

    *data = NULL;
    text = json_object_to_json_string_ext(req_obj, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text || !(body = mr_arena_alloc(ctx->arena, sizeof(*body))))
        return MR_ENOMEM;
    mr_buf_init(body, ALIST_MAX_BODY);
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, body)))
        return rc;
    hv[nh++] = (struct mr_header){ "Content-Type", "application/json" };
    hv[nh++] = (struct mr_header){ "User-Agent", c->ua };
    if (c->inst->token && *c->inst->token)
        hv[nh++] = (struct mr_header){ "Authorization", c->inst->token };
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = mr_arena_printf(ctx->arena, "%s%s", c->base, endpoint);
    req.headers = hv;
    req.nheaders = nh;
    req.body = text;
    req.body_len = strlen(text);
    req.max_bytes = ALIST_MAX_BODY;
    req.decode = true;
    if (!req.url)
        return MR_ENOMEM;
    memset(&head, 0, sizeof(head));
    rc = mr_upstream_fetch(ctx->up, ctx->arena, &req, &head, body);
    if (rc == MR_ETOOBIG)
        return post_fail(c, endpoint, MR_EUPSTREAM, "the answer is larger than %u bytes",
                         ALIST_MAX_BODY);
    if (rc)
        return post_fail(c, endpoint, rc, "%s", mr_upstream_error(ctx->up));
    if (head.status != 200)
        return post_fail(c, endpoint, MR_EUPSTREAM, "HTTP %ld", head.status);
    rc = mr_json_parse_object(ctx->arena, body->p, body->len, ALIST_MAX_DEPTH, &root);
    if (rc == MR_ENOMEM)
        return rc;
    if (rc)
        return post_fail(c, endpoint, MR_EUPSTREAM, "the answer is not a JSON object");
    if (!(v = get_type(root, "code", json_type_int)))
        return post_fail(c, endpoint, MR_EUPSTREAM, "the answer has no code");
    code = (long)json_object_get_int64(v);
    msg = get_str(root, "message");
    if (code != 200) {
        rc = code_err(code, msg);
        clean_msg(msg, clean, sizeof(clean));
        return post_fail(c, endpoint, rc, "%s (code %ld): %s",
                         rc == MR_EFORBIDDEN ? "alist refused" :
                         rc == MR_ENOTFOUND ? "not found" : "alist failed", code, clean);
    }
    if (!(*data = get_type(root, "data", json_type_object)))
        return post_fail(c, endpoint, MR_EUPSTREAM, "the answer has no data");
    return MR_OK;
}

/* --- what the answer says -------------------------------------------------------- */

/* Percent-encodes everything but unreserved bytes and '/' (Alist's paths). */
static char *escape_path(struct mr_arena *a, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = mr_arena_alloc(a, 3 * n + 1), *o = out;

    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '/') {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}

/* The language tag in "movie.zh-CN.srt" (the part before the extension),
 * else "und".  A tag is 2-3 lower-case letters, then up to three subtags of
 * 2-8 letters or digits after '-' or '_' ('_' becomes '-'). */
static const char *guess_lang(struct mr_arena *a, const char *name, size_t stem_len)
{
    const char *dot = NULL, *t;
    size_t n, i = 0, subtags = 0;
    char *out;

    for (size_t k = 0; k < stem_len; k++)
        if (name[k] == '.')
            dot = name + k;
    if (!dot)
        return "und";
    t = dot + 1;
    n = (size_t)(name + stem_len - t);
    while (i < n && t[i] >= 'a' && t[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return "und";
    while (i < n) {
        size_t k = 0;
        if (t[i] != '-' && t[i] != '_')
            return "und";
        i++;
        while (i + k < n && ((t[i + k] >= 'a' && t[i + k] <= 'z') ||
                             (t[i + k] >= 'A' && t[i + k] <= 'Z') ||
                             (t[i + k] >= '0' && t[i + k] <= '9')))
            k++;
        if (k < 2 || k > 8 || ++subtags > 3)
            return "und";
        i += k;
    }
    if (!(out = mr_arena_strndup(a, t, n)))
        return NULL;
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
    return out;
}

static bool lang_taken(const struct mr_source *out, const char *lang)
{
    for (size_t i = 0; i < out->nsubs; i++)
        if (!strcmp(out->subs[i].lang, lang))
            return true;
    return false;
}

/* Subtitle files among `related`: Alist's download route in the file's
 * directory, with the related file's own sign. */
static int add_subtitles(const struct call *c, struct json_object *related, struct mr_source *out)
{
    struct mr_arena *a = c->ctx->arena;
    const char *slash = strrchr(c->path, '/');
    size_t n = json_object_array_length(related);
    char *dir;

    if (n > ALIST_MAX_RELATED)
        n = ALIST_MAX_RELATED;
    if (!(out->subs = mr_arena_calloc(a, ALIST_MAX_SUBS, sizeof(*out->subs))))
        return MR_ENOMEM;
    if (!(dir = mr_arena_strndup(a, c->path, (size_t)(slash - c->path))) ||
        !(dir = escape_path(a, dir)))
        return MR_ENOMEM;
    for (size_t i = 0; i < n && out->nsubs < ALIST_MAX_SUBS; i++) {
        struct json_object *r = json_object_array_get_idx(related, i), *isdir;
        const char *name = get_str(r, "name"), *sign = get_str(r, "sign"), *dot, *ext = NULL;
        const char *lang;
        size_t len;
        char *url, *esc;

        if (!name || ((isdir = get_type(r, "is_dir", json_type_boolean)) &&
                      json_object_get_boolean(isdir)))
            continue;
        len = strlen(name);
        if (!len || len > ALIST_MAX_NAME || strchr(name, '/') || has_ctl(name) ||
            !(dot = strrchr(name, '.')))
            continue;
        for (size_t k = 0; k < N_OF(sub_exts); k++)
            if (!strcasecmp(dot + 1, sub_exts[k]))
                ext = sub_exts[k];
        if (!ext)
            continue;
        if (!(lang = guess_lang(a, name, (size_t)(dot - name))))
            return MR_ENOMEM;
        /* One entry per language (the answer is keyed by it): a second file
         * in the same language is told apart by its type. */
        if (lang_taken(out, lang) &&
            (!(lang = mr_arena_printf(a, "%s-%s", lang, ext)) || lang_taken(out, lang)))
            continue;
        if (!(esc = escape_path(a, name)))
            return MR_ENOMEM;
        if (sign && *sign && !has_ctl(sign)) {
            char *s = escape_path(a, sign);
            url = s ? mr_arena_printf(a, "%s/d%s/%s?sign=%s", c->base, dir, esc, s) : NULL;
        } else {
            url = mr_arena_printf(a, "%s/d%s/%s", c->base, dir, esc);
        }
        if (!url)
            return MR_ENOMEM;
        out->subs[out->nsubs++] = (struct mr_subtitle){ lang, url, ext };
    }
    return MR_OK;
}

/* The finished transcodes of /api/fs/other's video_preview as more_sources. */
static int add_qualities(const struct call *c, struct json_object *data, struct mr_source *out)
{
    struct json_object *info = get_type(data, "video_preview_play_info", json_type_object);
    struct json_object *list = get_type(info, "live_transcoding_task_list", json_type_array);
    size_t n = list ? json_object_array_length(list) : 0;

    if (!n)
        return MR_OK;
    if (!(out->more = mr_arena_calloc(c->ctx->arena, ALIST_MAX_QUALITIES, sizeof(*out->more))))
        return MR_ENOMEM;
    for (size_t i = 0; i < n && out->nmore < ALIST_MAX_QUALITIES; i++) {
        struct json_object *t = json_object_array_get_idx(list, i);
        const char *id = get_str(t, "template_id"), *st = get_str(t, "status");
        const char *url = get_str(t, "url");
        bool dup = false;

        if (!id || !*id || strlen(id) > ALIST_MAX_TEMPLATE || has_ctl(id) ||
            !st || strcmp(st, "finished") || !url || !http_url(url))
            continue;
        for (size_t k = 0; k < out->nmore; k++)
            dup |= !strcmp(out->more[k].name, id);
        if (dup)
            continue;
        out->more[out->nmore++] = (struct mr_alt_source){ id, url, "hls" };
    }
    return MR_OK;
}

/* --- resolve ---------------------------------------------------------------------- */

static int alist_resolve(struct mr_ctx *ctx, const struct mr_media *media,
                         struct mr_source *out)
{
    struct json_object *src = media->source, *body, *data, *v;
    const char *id = get_str(src, "instance"), *path = get_str(src, "path");
    const char *password = get_str(src, "password"), *ua, *raw, *name, *driver, *thumb;
    char logpath[256];
    struct call c;
    time_t exp;
    size_t blen;
    char *base;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!id || !path)
        return MR_EINVAL;
    c.ctx = ctx;
    c.media = media;
    if (!(c.inst = find_instance(ctx->conf, id)))
        return mr_fail(ctx, media->id, MR_EINVAL, "source.instance: unknown alist instance \"%s\"",
                       id);
    if (!http_url(c.inst->url)) {
        mr_error("alist %s: providers.alist.instances.%s.url is not an http(s) URL",
                 c.inst->id, c.inst->id);
        return MR_EINTERNAL;
    }
    blen = strlen(c.inst->url);
    while (blen && c.inst->url[blen - 1] == '/')
        blen--;
    if (!(base = mr_arena_strndup(ctx->arena, c.inst->url, blen)))
        return MR_ENOMEM;
    c.base = base;
    mr_log_escape(mr_str_c(path), logpath, sizeof(logpath));
    c.path = path;
    c.logpath = logpath;
    /* The client's User-Agent: the one some drivers bind the link to. */
    ua = mr_request_header(&ctx->req, "user-agent");
    if (!ua || !*ua || strlen(ua) > ALIST_MAX_UA || has_ctl(ua))
        ua = ctx->conf->upstream.user_agent;
    c.ua = ua;

    body = json_object_new_object();
    if (mr_json_own(ctx->arena, body))
        return MR_ENOMEM;
    json_object_object_add(body, "path", json_object_new_string(path));
    json_object_object_add(body, "password", json_object_new_string(password ? password : ""));
    if ((rc = alist_post(&c, "/api/fs/get", body, &data)))
        return rc;

    if ((v = get_type(data, "is_dir", json_type_boolean)) && json_object_get_boolean(v))
        return mr_fail(ctx, media->id, MR_EINVAL, "alist %s: %s is a folder", c.inst->id,
                       c.logpath);
    raw = get_str(data, "raw_url");
    if (!raw || !http_url(raw))
        return mr_fail(ctx, media->id, MR_EUPSTREAM, "alist %s: /api/fs/get %s: no usable raw_url",
                       c.inst->id, c.logpath);
    out->url = raw;
    name = get_str(data, "name");
    if (name && (strlen(name) > ALIST_MAX_NAME || has_ctl(name)))
        name = NULL;
    if (name) {
        char *esc = escape_path(ctx->arena, name);
        if (!esc)
            return MR_ENOMEM;
        out->video_type = mr_video_type_from_url(esc);
    }
    out->title = media->title ? media->title : name;
    if ((thumb = get_str(data, "thumb")) && http_url(thumb))
        out->thumbnail = thumb;
    driver = get_str(data, "provider");
    if (in_table(driver, ua_bound_drivers, N_OF(ua_bound_drivers))) {
        if (!(out->headers.v = mr_arena_calloc(ctx->arena, 1, sizeof(*out->headers.v))))
            return MR_ENOMEM;
        out->headers.v[0] = (struct mr_header){ "User-Agent", ua };
        out->headers.n = 1;
    }
    if ((v = get_type(data, "related", json_type_array)) &&
        (rc = add_subtitles(&c, v, out)))
        return rc;

    if (in_table(driver, hls_drivers, N_OF(hls_drivers))) {
        json_object_object_add(body, "method", json_object_new_string("video_preview"));
        rc = alist_post(&c, "/api/fs/other", body, &data);
        if (rc == MR_ENOMEM)
            return rc;
        if (rc)
            mr_info("alist %s: %s: no transcoded qualities (%s); going on without them",
                    c.inst->id, c.logpath, mr_strerror(rc));
        else if ((rc = add_qualities(&c, data, out)))
            return rc;
    }

    /* The link lives as long as the shortest-lived URL in the answer. */
    exp = mr_expiry_from_url(out->url);
    for (size_t i = 0; i < out->nmore; i++) {
        time_t e = mr_expiry_from_url(out->more[i].url);
        if (e && (!exp || e < exp))
            exp = e;
    }
    out->expire_at = exp;
    return MR_OK;
}

const struct mr_provider mr_provider_alist = {
    .name = "alist",
    .conf = { "alist", alist_fields, sizeof(struct alist_conf) },
    .direct = alist_is_direct,
    .validate = alist_validate,
    .can_handle = NULL,             /* Alist paths are not page URLs */
    .resolve = alist_resolve,
    .remote = true,                 /* asks the instance: cached by the resolver */
};
