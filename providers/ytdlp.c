/* ytdlp.c - the "ytdlp" provider: any page yt-dlp understands, as the last resort.
 *
 * resolve() runs `yt-dlp --ignore-config --no-cache-dir --dump-single-json …
 * -- URL` with posix_spawn and an argv array (never a shell), in a process
 * group of its own, stdin from /dev/null, stdout and stderr into O_CLOEXEC
 * pipes that one poll() loop drains against a deadline: past it, or past
 * the output cap, the whole group gets SIGKILL; the child is always reaped.
 * The JSON is then mapped to a struct mr_source by a pure function
 * (mr_ytdlp_map), so the choice of format is tested without a process.
 * Caching, refresh and single-flight are the resolver's (.remote = true):
 * 50 viewers start one yt-dlp.
 *
 * What yt-dlp does is what this file says, not what its surroundings say:
 * no configuration file (system, user, portable, the working directory's)
 * is read, and it gets an environment of three variables -- the server's
 * PATH, HOME=/nonexistent (no ~/.config, plugins, .netrc or cache of the
 * service user) and LANG=C.UTF-8 -- so neither secrets in the server's
 * environment nor PYTHON*, XDG_* or proxy variables reach it (the relay's
 * own transfers ignore proxy variables too); it runs in "/".  At most
 * providers.ytdlp.max_running runs are in flight per process; one more is
 * refused at once (MR_EOVERLOADED: 503 with Retry-After) rather than
 * queued, since a queued request would hold one of the process's few
 * threads.
 */
#include "providers/ytdlp.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/child.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/header.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "net/upstream.h"

#define MAX_TITLE 1024

/* providers.ytdlp (app/provider.h): its section of mediarelay.json. */
struct ytdlp_conf {
    char *mode;
    char *path;
    long timeout_s;
    long max_output_bytes;
    long max_running;            /* yt-dlp runs at once, per process */
};

static const struct mr_conf_field ytdlp_fields[] = {
#define Y(m) offsetof(struct ytdlp_conf, m)
    MR_PROVIDER_MODE(struct ytdlp_conf, "proxy"),
    MR_CONF_STR("path", Y(path), "yt-dlp"),
    MR_CONF_INT("timeout_s", Y(timeout_s), 30, 1, 600),
    MR_CONF_INT("max_output_bytes", Y(max_output_bytes), 16 << 20, 4096, 256 << 20),
    MR_CONF_INT("max_running", Y(max_running), 4, 1, 1024),
#undef Y
    MR_CONF_END
};

extern const struct mr_provider mr_provider_ytdlp;

static const struct ytdlp_conf *settings(const struct mr_conf *c)
{
    return mr_conf_settings(c, &mr_provider_ytdlp.conf);
}

static bool ytdlp_is_direct(const struct mr_conf *c)
{
    return !strcmp(settings(c)->mode, "direct");
}

/* --- small checks ------------------------------------------------------------ */

/* At most max bytes, none a control byte or a space. */
static bool no_ctl(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    return n <= max && !mr_str_has_ctl(s, n) && !memchr(s, ' ', n);
}

bool mr_ytdlp_url_ok(const char *s)
{
    if (strncasecmp(s, "http://", 7) && strncasecmp(s, "https://", 8))
        return false;
    if (!s[strncasecmp(s, "http://", 7) ? 8 : 7])
        return false;   /* no host */
    return no_ctl(s, MR_YTDLP_MAX_URL);
}

/* --- running yt-dlp ------------------------------------------------------------ */

struct run {
    struct mr_buf *out;
    struct mr_child_tail err;
    bool too_big;
};

static int run_out(void *arg, const char *p, size_t n)
{
    struct run *r = arg;

    if (mr_buf_append(r->out, p, n)) {
        r->too_big = true;
        return 1;
    }
    return 0;
}

static int run_err(void *arg, const char *p, size_t n)
{
    mr_child_tail_add(&((struct run *)arg)->err, p, n);
    return 0;
}

int mr_ytdlp_run(const char *path, const char *url, long timeout_s, struct mr_buf *out,
                 char *msg, size_t msglen)
{
    char *const argv[] = {
        (char *)path, "--ignore-config", "--no-cache-dir", "--dump-single-json",
        "--no-playlist", "--no-warnings", "--no-progress", "--", (char *)url, NULL
    };
    struct run *run;
    struct mr_child_spec spec = {
        .path = path, .argv = argv, .on_out = run_out, .on_err = run_err,
        .deadline_ms = mr_clock_mono_ms() + timeout_s * 1000,
    };
    struct mr_child_result res;
    char what[300];
    int rc;

    snprintf(msg, msglen, "yt-dlp failed");
    if (!path || !*path || !url) {
        snprintf(msg, msglen, "providers.ytdlp.path is empty");
        return MR_EUNAVAILABLE;
    }
    if (!(run = calloc(1, sizeof(*run))))
        return MR_ENOMEM;
    run->out = out;
    spec.arg = run;
    rc = mr_child_run(&spec, &res, msg, msglen);
    if (rc)
        goto done;
    snprintf(what, sizeof(what), "yt-dlp cannot be run (providers.ytdlp.path \"%.200s\"): "
             "%s", path, res.spawn_errno && res.spawn_errno != ENOENT
             ? strerror(res.spawn_errno) : "not found");
    if (res.end == MR_CHILD_NOT_RUN) {
        int e = res.spawn_errno;
        snprintf(msg, msglen, "%s", what);
        rc = e == ENOENT || e == EACCES || e == ENOEXEC || e == ENOTDIR
             ? MR_EUNAVAILABLE : MR_EINTERNAL;
    } else if (run->too_big) {
        snprintf(msg, msglen, "yt-dlp printed more than providers.ytdlp.max_output_bytes "
                 "(%zu bytes)", out->cap);
        rc = MR_EUPSTREAM;
    } else if (res.end == MR_CHILD_TIMEOUT) {
        snprintf(msg, msglen, "yt-dlp did not finish within providers.ytdlp.timeout_s (%ld s)",
                 timeout_s);
        rc = MR_ETIMEOUT;
    } else if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0) {
        rc = MR_OK;
    } else if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 127) {
        /* The exec failed after all (where posix_spawn cannot tell, as
         * under valgrind), or a wrapper's exec did: the shell's 127. */
        mr_child_tail_message(&run->err, msg, msglen, what);
        rc = MR_EUNAVAILABLE;
    } else {
        char st[64];
        mr_child_status_str(res.status, st, sizeof(st));
        snprintf(what, sizeof(what), "yt-dlp %s", st);
        mr_child_tail_message(&run->err, msg, msglen, what);
        rc = MR_EUPSTREAM;
    }
done:
    free(run);
    return rc;
}

/* --- mapping its JSON ------------------------------------------------------------ */

enum kind { K_NONE, K_FILE, K_HLS, K_DASH };

struct cand {
    struct json_object *f;
    enum kind kind;
    const char *url;
    const char *type;
    long height;
    double tbr;
    size_t index;
};

static const char *str_of(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static double num_of(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return 0;
    return json_object_get_double(v);
}

static const char *url_of(struct json_object *o, const char *k)
{
    const char *s = str_of(o, k);
    return s && mr_ytdlp_url_ok(s) ? s : NULL;
}

static bool is_none(const char *codec)
{
    return codec && !strcmp(codec, "none");
}

/* A file's type from yt-dlp's ext; NULL lets the relay sniff it. */
static const char *type_of_ext(const char *ext)
{
    static const struct {
        const char *ext, *type;
    } map[] = {
        { "mp4", "mp4" }, { "m4v", "mp4" }, { "mov", "mp4" }, { "m4a", "mp4" },
        { "webm", "webm" }, { "flv", "flv" }, { "mkv", "mkv" }, { "ts", "ts" },
    };
    for (size_t i = 0; ext && i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcasecmp(ext, map[i].ext))
            return map[i].type;
    return NULL;
}

/* What a format (or the top-level object, which is the chosen format) is. */
static enum kind classify(struct json_object *f, const char **url, const char **type)
{
    const char *proto = str_of(f, "protocol");
    const char *vc = str_of(f, "vcodec"), *ac = str_of(f, "acodec");

    if (is_none(vc) && !(proto && !strcmp(proto, "http_dash_segments")))
        return K_NONE;      /* audio only */
    if (!proto || !strcmp(proto, "http") || !strcmp(proto, "https")) {
        if (is_none(ac))
            return K_NONE;  /* video only: no sound on its own */
        if (!(*url = url_of(f, "url")))
            return K_NONE;
        *type = type_of_ext(str_of(f, "ext"));
        return K_FILE;
    }
    if (!strcmp(proto, "m3u8") || !strcmp(proto, "m3u8_native")) {
        /* A variant whose audio is a separate rendition plays with it
         * only from the master playlist. */
        *url = is_none(ac) ? url_of(f, "manifest_url") : NULL;
        if (!*url && !is_none(ac))
            *url = url_of(f, "url");
        *type = "hls";
        return *url ? K_HLS : K_NONE;
    }
    if (!strcmp(proto, "http_dash_segments")) {
        *url = url_of(f, "manifest_url");
        *type = "mpd";
        return *url ? K_DASH : K_NONE;
    }
    return K_NONE;          /* rtmp, f4m, ism, mhtml, websocket_frag, … */
}

/* Better first: kind (file, HLS, DASH), then height, tbr, yt-dlp's order
 * (it lists formats worst to best). */
static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->height != b->height)
        return a->height > b->height ? -1 : 1;
    if (a->tbr != b->tbr)
        return a->tbr > b->tbr ? -1 : 1;
    return a->index > b->index ? -1 : a->index < b->index;
}

/* Headers a browser sends anyway (they say nothing about the upstream);
 * what is hop-by-hop, frames the message or is the relay's own is the
 * upstream filter's to refuse (mr_header_refused). */
static bool header_dropped(const char *name)
{
    static const char *const drop[] = {
        "Accept", "Accept-Language", "Accept-Encoding", "Accept-Charset", "Content-Type",
        "Cache-Control", "Pragma", "DNT", "Upgrade-Insecure-Requests", "Priority", NULL
    };
    if (!strncasecmp(name, "Sec-", 4))
        return true;    /* Sec-Fetch-*, Sec-Ch-Ua*: the browser's own */
    for (const char *const *d = drop; *d; d++)
        if (!strcasecmp(name, *d))
            return true;
    return false;
}

static int map_headers(struct mr_arena *a, struct json_object *h, struct mr_source *out)
{
    if (!h || !json_object_is_type(h, json_type_object))
        return MR_OK;
    out->headers.v = mr_arena_calloc(a, MR_YTDLP_MAX_HEADERS, sizeof(*out->headers.v));
    if (!out->headers.v)
        return MR_ENOMEM;
    json_object_object_foreach(h, name, v) {
        const char *val;
        if (out->headers.n == MR_YTDLP_MAX_HEADERS)
            break;
        if (!json_object_is_type(v, json_type_string) || header_dropped(name))
            continue;
        val = json_object_get_string(v);
        if (strlen(name) > 64 || strlen(val) >= MR_YTDLP_MAX_HEADER ||
            (size_t)json_object_get_string_len(v) != strlen(val) ||
            mr_header_refused(name, val, true))
            continue;
        out->headers.v[out->headers.n++] = (struct mr_header){ name, val };
    }
    return MR_OK;
}

static bool lang_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 32)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static bool sub_type_ok(const char *ext)
{
    static const char *const ok[] = { "vtt", "srt", "ass", "ssa", "ttml", "dfxp", NULL };
    for (const char *const *o = ok; ext && *o; o++)
        if (!strcmp(ext, *o))
            return true;
    return false;
}

/* Subtitles of one map (lang -> [{ext,url}, …]), vtt preferred per lang. */
static int map_subs(struct mr_arena *a, struct json_object *subs, struct mr_source *out)
{
    if (!subs || !json_object_is_type(subs, json_type_object))
        return MR_OK;
    json_object_object_foreach(subs, lang, list) {
        struct json_object *pick = NULL;
        size_t n;
        if (out->nsubs == MR_YTDLP_MAX_SUBS)
            break;
        if (!lang_ok(lang) || !json_object_is_type(list, json_type_array))
            continue;
        n = json_object_array_length(list);
        for (size_t i = 0; i < n; i++) {
            struct json_object *e = json_object_array_get_idx(list, i);
            const char *ext = str_of(e, "ext");
            if (!json_object_is_type(e, json_type_object) || !sub_type_ok(ext) ||
                !url_of(e, "url"))
                continue;
            if (!pick || !strcmp(ext, "vtt"))
                pick = e;
            if (!strcmp(ext, "vtt"))
                break;
        }
        if (!pick)
            continue;
        if (!out->subs &&
            !(out->subs = mr_arena_calloc(a, MR_YTDLP_MAX_SUBS, sizeof(*out->subs))))
            return MR_ENOMEM;
        out->subs[out->nsubs++] = (struct mr_subtitle){ lang, url_of(pick, "url"),
                                                        str_of(pick, "ext") };
    }
    return MR_OK;
}

/* A quality's name: "720p mp4", "hls", "1080p hls (2)" when taken. */
static const char *alt_name(struct mr_arena *a, const struct cand *c, const struct mr_source *out)
{
    const char *type = c->type ? c->type : "file";
    char *name = c->height > 0 ? mr_arena_printf(a, "%ldp %s", c->height, type)
                               : mr_arena_printf(a, "%s", type);
    for (int k = 2; name && k < 100; k++) {
        bool taken = false;
        for (size_t i = 0; i < out->nmore && !taken; i++)
            taken = !strcmp(out->more[i].name, name);
        if (!taken)
            return name;
        name = c->height > 0 ? mr_arena_printf(a, "%ldp %s (%d)", c->height, type, k)
                             : mr_arena_printf(a, "%s (%d)", type, k);
    }
    return NULL;
}

/* A title for a JSON answer: cut at MAX_TITLE bytes, on a UTF-8 boundary. */
static const char *title_of(struct mr_arena *a, struct json_object *o)
{
    const char *t = str_of(o, "title");
    size_t n;
    if (!t || !*t)
        return NULL;
    n = strlen(t);
    if (n <= MAX_TITLE)
        return t;
    n = MAX_TITLE;
    while (n && ((unsigned char)t[n] & 0xC0) == 0x80)
        n--;
    return mr_arena_strndup(a, t, n);
}

int mr_ytdlp_map(struct mr_arena *a, const char *json, size_t len, struct mr_source *out,
                 char *msg, size_t msglen)
{
    struct json_object *root, *o, *formats, *v;
    struct cand top = { 0 }, *c = NULL, *chosen = NULL;
    size_t nc = 0, nf = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = mr_json_parse_object(a, json, len, MR_YTDLP_JSON_DEPTH, &root);
    if (rc == MR_ENOMEM)
        return rc;
    if (rc) {
        snprintf(msg, msglen, "yt-dlp printed no JSON object");
        return MR_EUPSTREAM;
    }
    o = root;
    /* A page of several videos, even with --no-playlist: its first one. */
    if ((str_of(o, "_type") && !strcmp(str_of(o, "_type"), "playlist")) ||
        (!json_object_object_get_ex(o, "url", &v) &&
         !json_object_object_get_ex(o, "formats", &v) &&
         json_object_object_get_ex(o, "entries", &v))) {
        struct json_object *e = json_object_object_get_ex(o, "entries", &v) &&
                                json_object_is_type(v, json_type_array) &&
                                json_object_array_length(v)
                                ? json_object_array_get_idx(v, 0) : NULL;
        if (!e || !json_object_is_type(e, json_type_object)) {
            snprintf(msg, msglen, "yt-dlp found a playlist with no video in it");
            return MR_EUPSTREAM;
        }
        o = e;
    }

    /* The candidates: every format that plays on its own. */
    if (json_object_object_get_ex(o, "formats", &formats) &&
        json_object_is_type(formats, json_type_array))
        nf = json_object_array_length(formats);
    if (nf && !(c = mr_arena_calloc(a, nf, sizeof(*c))))
        return MR_ENOMEM;
    for (size_t i = 0; i < nf; i++) {
        struct json_object *f = json_object_array_get_idx(formats, i);
        struct cand k = { f, K_NONE, NULL, NULL, 0, 0, i };
        if (!json_object_is_type(f, json_type_object) ||
            (k.kind = classify(f, &k.url, &k.type)) == K_NONE)
            continue;
        k.height = (long)num_of(f, "height");
        k.tbr = num_of(f, "tbr");
        c[nc++] = k;
    }
    if (nc)
        qsort(c, nc, sizeof(*c), cand_cmp);

    /* yt-dlp's own pick, when it is one file that plays on its own. */
    if (!json_object_object_get_ex(o, "requested_formats", &v)) {
        top.f = o;
        top.kind = classify(o, &top.url, &top.type);
        top.height = (long)num_of(o, "height");
    }
    if (top.kind == K_FILE)
        chosen = &top;
    else if (nc)
        chosen = &c[0];
    else if (top.kind != K_NONE)
        chosen = &top;
    if (!chosen) {
        snprintf(msg, msglen, "yt-dlp found no format that plays on its own");
        return MR_EUPSTREAM;
    }
    out->url = chosen->url;
    out->video_type = chosen->type;
    if ((rc = map_headers(a, json_object_object_get_ex(chosen->f, "http_headers", &v)
                             ? v : (json_object_object_get_ex(o, "http_headers", &v) ? v : NULL),
                          out)))
        return rc;

    /* The others, best first, once per URL. */
    for (size_t i = 0; i < nc && out->nmore < MR_YTDLP_MAX_MORE; i++) {
        bool seen = !strcmp(c[i].url, out->url);
        for (size_t j = 0; j < out->nmore && !seen; j++)
            seen = !strcmp(out->more[j].url, c[i].url);
        if (seen)
            continue;
        if (!out->more && !(out->more = mr_arena_calloc(a, MR_YTDLP_MAX_MORE, sizeof(*out->more))))
            return MR_ENOMEM;
        out->more[out->nmore] = (struct mr_alt_source){ alt_name(a, &c[i], out), c[i].url,
                                                        c[i].type };
        if (!out->more[out->nmore].name)
            return MR_ENOMEM;
        out->nmore++;
    }

    if ((rc = map_subs(a, json_object_object_get_ex(o, "subtitles", &v) ? v : NULL, out)))
        return rc;
    if (!out->nsubs &&
        (rc = map_subs(a, json_object_object_get_ex(o, "automatic_captions", &v) ? v : NULL,
                       out)))
        return rc;

    out->title = title_of(a, o);
    out->duration = num_of(o, "duration");
    if (out->duration < 0 || out->duration != out->duration)
        out->duration = 0;
    out->thumbnail = url_of(o, "thumbnail");
    return MR_OK;
}

/* --- the provider ------------------------------------------------------------ */

static int ytdlp_validate(struct json_object *source, char *field, size_t fieldlen, char *msg,
                          size_t msglen)
{
    struct json_object *url;

    if (!json_object_object_get_ex(source, "url", &url) ||
        !json_object_is_type(url, json_type_string)) {
        snprintf(field, fieldlen, "url");
        snprintf(msg, msglen, "a string is required");
        return MR_EINVAL;
    }
    if (!mr_ytdlp_url_ok(json_object_get_string(url))) {
        snprintf(field, fieldlen, "url");
        snprintf(msg, msglen, "must be an http(s) URL of at most %d bytes, without spaces or "
                 "control characters", MR_YTDLP_MAX_URL);
        return MR_EINVAL;
    }
    json_object_object_foreach(source, key, v) {
        (void)v;
        if (strcmp(key, "url")) {
            snprintf(field, fieldlen, "%s", key);
            snprintf(msg, msglen, "unknown key");
            return MR_EINVAL;
        }
    }
    return MR_OK;
}

static bool ytdlp_can_handle(const char *url)
{
    return mr_ytdlp_url_ok(url);
}

/* Runs in flight in this process: a slot is taken before a run and given
 * back after it. */
static atomic_long running;

static bool slot_take(long max)
{
    long n = atomic_load(&running);

    do {
        if (n >= max)
            return false;
    } while (!atomic_compare_exchange_weak(&running, &n, n + 1));
    return true;
}

static void slot_give(void)
{
    atomic_fetch_sub(&running, 1);
}

static int ytdlp_resolve(struct mr_ctx *ctx, const struct mr_media *media, struct mr_source *out)
{
    const struct mr_conf *c = ctx->conf;
    struct json_object *url;
    struct mr_buf *buf;
    const char *why = NULL;
    char msg[512];
    int rc;

    memset(out, 0, sizeof(*out));
    if (!json_object_object_get_ex(media->source, "url", &url) ||
        !mr_ytdlp_url_ok(json_object_get_string(url)))
        return MR_EINVAL;
    if (!(buf = mr_arena_alloc(ctx->arena, sizeof(*buf))))
        return MR_ENOMEM;
    mr_buf_init(buf, (size_t)settings(c)->max_output_bytes);
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, buf)))
        return rc;
    /* yt-dlp fetches the page itself, past the guard libcurl's fetches go
     * through: its address is held to the same rule first. */
    if ((rc = mr_upstream_vet(c, ctx->arena, json_object_get_string(url), &why)))
        return mr_fail(ctx, media->id, rc, rc == MR_EBLOCKED
                       ? "ytdlp: the page's address is not allowed (%s)"
                       : "ytdlp: the page's host does not resolve%s", rc == MR_EBLOCKED ? why : "");
    if (!slot_take(settings(c)->max_running))
        return mr_fail(ctx, media->id, MR_EOVERLOADED, "ytdlp: %ld runs of yt-dlp are under "
                       "way in this process (providers.ytdlp.max_running); try again shortly",
                       settings(c)->max_running);
    rc = mr_ytdlp_run(settings(c)->path, json_object_get_string(url),
                      settings(c)->timeout_s, buf, msg, sizeof(msg));
    slot_give();
    if (!rc)
        rc = mr_ytdlp_map(ctx->arena, buf->p ? buf->p : "", buf->len, out, msg, sizeof(msg));
    if (rc)
        return mr_fail(ctx, media->id, rc, "ytdlp: %s", msg);
    mr_buf_free(buf);   /* the JSON is parsed: the text is no longer needed */
    if (media->title)
        out->title = media->title;  /* the registrant's title wins */
    return MR_OK;
}

const struct mr_provider mr_provider_ytdlp = {
    .name = "ytdlp",
    .conf = { "ytdlp", ytdlp_fields, sizeof(struct ytdlp_conf) },
    .direct = ytdlp_is_direct,
    .validate = ytdlp_validate,
    .can_handle = ytdlp_can_handle,
    .resolve = ytdlp_resolve,
    .remote = true,
};
