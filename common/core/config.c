/* config.c - schema-driven loading and validation of mediarelay.json.
 *
 * The schema below is the one list of keys, types, bounds and defaults, but
 * for the sections under "providers": each provider declares its own with
 * the same field tables (core/config.h, mr_conf_sections) and the loader
 * treats them as it treats its own.  The loader first applies every default,
 * then walks the JSON object next to the schema, so an unknown key or a
 * wrong type anywhere is found with its full path, and every problem is
 * reported (not just the first).  Sections may carry a "_doc" string: JSON
 * has no comments, and the shipped file explains each section in place.
 */
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/error.h"
#include "core/header.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/str.h"

#ifndef MR_SYSCONFDIR
#define MR_SYSCONFDIR "/etc"
#endif

#define C(m) offsetof(struct mr_conf, m)
#define STR MR_CONF_STR
#define STRCH MR_CONF_STRCH
#define INT MR_CONF_INT
#define BOOL MR_CONF_BOOL
#define LIST MR_CONF_LIST
#define SECTION MR_CONF_SECTION
#define MAP MR_CONF_MAP
#define END MR_CONF_END

static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const targets[] = { "stderr", "syslog", NULL };
static const char *const offloads[] = { "off", "nginx", NULL };

#define DEFAULT_UA "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 " \
    "(KHTML, like Gecko) Chrome/124.0 Safari/537.36"

static const struct mr_conf_field threads_fields[] = {
    INT("resolve", C(server.threads_resolve), 8, 1, 1024),
    INT("m3u8", C(server.threads_m3u8), 16, 1, 1024),
    INT("segment", C(server.threads_segment), 64, 1, 1024),
    INT("proxy", C(server.threads_proxy), 128, 1, 1024),
    INT("jobs", C(server.threads_jobs), 32, 1, 1024),
    END
};
static const struct mr_conf_field server_fields[] = {
    SECTION("threads", threads_fields),
    INT("drain_timeout_s", C(server.drain_timeout_s), 30, 0, 86400),
    INT("max_body_bytes", C(server.max_body_bytes), 65536, 0, 16 << 20),
    LIST("trusted_proxies", C(server.trusted_proxies), NULL),
    END
};
static const struct mr_conf_field log_fields[] = {
    STRCH("level", C(log.level), "info", levels),
    STRCH("target", C(log.target), "stderr", targets),
    BOOL("access", C(log.access), 1),
    END
};
static const struct mr_conf_field store_fields[] = {
    INT("timeout_ms", C(store.timeout_ms), 500, 1, 60000),
    INT("retry_ms", C(store.retry_ms), 1000, 0, 600000),
    INT("fallback_entries", C(store.fallback_entries), 4096, 16, 1 << 24),
    INT("fallback_bytes", C(store.fallback_bytes), 64L << 20, 4096, 16L << 30),
    END
};
static const struct mr_conf_field auth_fields[] = {
    STR("cookie", C(auth.cookie), "session"),
    END
};
static const struct mr_conf_field cors_fields[] = {
    LIST("allow_origin", C(cors.allow_origin), "*"),
    BOOL("allow_credentials", C(cors.allow_credentials), 0),
    INT("max_age_s", C(cors.max_age_s), 86400, 0, 604800),
    END
};
static const struct mr_conf_field upstream_fields[] = {
    BOOL("allow_private_networks", C(upstream.allow_private_networks), 0),
    LIST("allow_networks", C(upstream.allow_networks), NULL),
    INT("connect_timeout_ms", C(upstream.connect_timeout_ms), 5000, 1, 600000),
    INT("fetch_timeout_ms", C(upstream.fetch_timeout_ms), 15000, 1, 3600000),
    INT("low_speed_bytes", C(upstream.low_speed_bytes), 1, 0, 1L << 30),
    INT("low_speed_time_s", C(upstream.low_speed_time_s), 30, 0, 86400),
    INT("max_redirects", C(upstream.max_redirects), 5, 0, 20),
    INT("buffer_bytes", C(upstream.buffer_bytes), 256 << 10, 1024, 512 << 10),
    INT("splice_min_bytes", C(upstream.splice_min_bytes), 1 << 20, 0, 1L << 40),
    INT("max_fetch_bytes", C(upstream.max_fetch_bytes), 8 << 20, 1024, 1L << 30),
    STR("user_agent", C(upstream.user_agent), DEFAULT_UA),
    END
};
static const struct mr_conf_field stream_fields[] = {
    LIST("allow_hosts", C(stream.allow_hosts), NULL),
    STRCH("offload", C(stream.offload), "off", offloads),
    INT("sign_max_ttl_s", C(stream.sign_max_ttl_s), 7 * 86400, 60, 366L * 86400),
    END
};

static const struct mr_conf_field hls_fields[] = {
    INT("token_ttl_s", C(hls.token_ttl_s), 21600, 300, 30L * 86400),
    INT("max_playlist_bytes", C(hls.max_playlist_bytes), 8 << 20, 1024, MR_M3U8_MAX_CONF_BYTES),
    INT("segment_cache_max_bytes", C(hls.segment_cache_max_bytes), 16 << 20, 0, 256 << 20),
    INT("segment_cache_ttl_s", C(hls.segment_cache_ttl_s), 600, 1, 7 * 86400),
    INT("edge_cache_s", C(hls.edge_cache_s), 600, 0, 7 * 86400),
    INT("live_playlist_max_cache_ms", C(hls.live_playlist_max_cache_ms), 5000, 0, 60000),
    INT("vod_playlist_cache_s", C(hls.vod_playlist_cache_s), 300, 0, 3600),
    END
};

static const struct mr_conf_field resolve_fields[] = {
    INT("refresh_margin_s", C(resolve.refresh_margin_s), 300, 0, 86400),
    INT("default_ttl_s", C(resolve.default_ttl_s), 3600, 10, 7 * 86400),
    INT("lock_timeout_s", C(resolve.lock_timeout_s), 40, 1, 600),
    INT("again_min_s", C(resolve.again_min_s), 15, 0, 3600),
    INT("error_ttl_s", C(resolve.error_ttl_s), 5, 0, 3600),
    BOOL("open", C(resolve.open), 0),
    INT("open_client_budget", C(resolve.open_client_budget), 20, 0, 1000000),
    INT("open_window_s", C(resolve.open_window_s), 600, 1, 7 * 86400),
    INT("open_max_items", C(resolve.open_max_items), 1000, 1, 10000000),
    END
};

static const struct mr_conf_field dash_fields[] = {
    INT("max_manifest_bytes", C(dash.max_manifest_bytes), 4 << 20, 1024, 64 << 20),
    END
};

static const struct mr_conf_field jobs_fields[] = {
    STR("dir", C(jobs.dir), "/var/lib/mediarelay/jobs"),
    INT("max_bytes", C(jobs.max_bytes), 5L << 30, 1 << 20, 1L << 42),
    INT("max_running", C(jobs.max_running), 5, 1, 256),
    INT("max_running_process", C(jobs.max_running_process), 2, 1, 256),
    INT("timeout_s", C(jobs.timeout_s), 3600, 10, 7 * 86400),
    INT("keep_s", C(jobs.keep_s), 86400, 60, 365L * 86400),
    INT("max_queued_per_user", C(jobs.max_queued_per_user), 20, 1, 100000),
    INT("claim_idle_s", C(jobs.claim_idle_s), 60, 2, 86400),
    INT("max_attempts", C(jobs.max_attempts), 3, 1, 100),
    INT("analyze_ttl_s", C(jobs.analyze_ttl_s), 600, 0, 7 * 86400),
    INT("analyze_timeout_s", C(jobs.analyze_timeout_s), 60, 1, 600),
    INT("analyze_max_bytes", C(jobs.analyze_max_bytes), 16 << 20, 4096, 256 << 20),
    INT("progress_interval_ms", C(jobs.progress_interval_ms), 250, 50, 10000),
    INT("queue_max_len", C(jobs.queue_max_len), 10000, 100, 10000000),
    STR("ytdlp", C(jobs.ytdlp), "yt-dlp"),
    STR("ffmpeg", C(jobs.ffmpeg), "ffmpeg"),
    STR("ffprobe", C(jobs.ffprobe), "ffprobe"),
    STR("accel_prefix", C(jobs.accel_prefix), "/_mr_jobs/"),
    END
};

#define CH(m) offsetof(struct mr_conf_channel, m)
static const struct mr_conf_field channel_fields[] = {
    { .key = "url", .kind = MR_CONF_K_STRING, .off = CH(url), .required = true },
    STR("name", CH(name), NULL),
    STR("group", CH(group), NULL),
    STR("logo", CH(logo), NULL),
    { .key = "headers", .kind = MR_CONF_K_HEADERS, .off = CH(headers) },
    BOOL("cache_ignore_query", CH(cache_ignore_query), 0),
    END
};

#define ME(m) offsetof(struct mr_conf_media, m)
static const struct mr_conf_field media_fields[] = {
    { .key = "provider", .kind = MR_CONF_K_STRING, .off = ME(provider), .required = true },
    { .key = "source", .kind = MR_CONF_K_OBJECT, .off = ME(source), .required = true },
    STR("title", ME(title), NULL),
    STR("room", ME(room), NULL),
    END
};

static const struct mr_conf_field root_fields[] = {
    STR("public_url", C(public_url), ""),
    STR("secret", C(secret), ""),
    STR("secret_file", C(secret_file), ""),
    LIST("previous_secrets", C(previous_secrets), NULL),
    STR("admin_token", C(admin_token), ""),
    STR("metrics_token", C(metrics_token), ""),
    STR("redis", C(redis), "unix:/run/mediarelay/redis.sock"),
    STR("key_prefix", C(key_prefix), "mr:"),
    SECTION("server", server_fields),
    SECTION("log", log_fields),
    SECTION("store", store_fields),
    SECTION("auth", auth_fields),
    SECTION("cors", cors_fields),
    SECTION("upstream", upstream_fields),
    SECTION("stream", stream_fields),
    SECTION("hls", hls_fields),
    SECTION("dash", dash_fields),
    SECTION("resolve", resolve_fields),
    SECTION("jobs", jobs_fields),
    MAP("channels", C(channels), struct mr_conf_channel, channel_fields),
    STR("channels_m3u", C(channels_m3u), ""),
    MAP("media", C(media), struct mr_conf_media, media_fields),
    { .key = "providers", .kind = MR_CONF_K_SECTIONS },
    END
};

/* ---- loading ------------------------------------------------------------ */

struct mr_conf_loader {
    struct mr_conf *conf;
    struct mr_buf *errors;
    int nerrors;
};

#define MAX_ERRORS 50

void mr_conf_report(struct mr_conf_loader *l, const char *path, const char *fmt, ...)
{
    va_list ap;
    char msg[512];

    l->nerrors++;
    if (l->nerrors > MAX_ERRORS || !l->errors)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mr_buf_printf(l->errors, "%s%s%s\n", path, *path ? ": " : "", msg);
}

static void *at(void *base, size_t off)
{
    return (char *)base + off;
}

static char *join(struct mr_conf_loader *l, const char *path, const char *key)
{
    return *path ? mr_arena_printf(&l->conf->arena, "%s.%s", path, key)
                 : mr_arena_strdup(&l->conf->arena, key);
}

static const char *type_name(enum mr_conf_kind k)
{
    switch (k) {
    case MR_CONF_K_STRING: return "a string";
    case MR_CONF_K_INT: return "an integer";
    case MR_CONF_K_BOOL: return "true or false";
    case MR_CONF_K_STRLIST: return "a string or an array of strings";
    default: return "an object";
    }
}

static bool strlist_one(struct mr_conf_loader *l, struct mr_strlist *out, const char *s)
{
    out->v = NULL;
    out->n = 0;
    if (!s)
        return true;
    out->v = mr_arena_calloc(&l->conf->arena, 1, sizeof(char *));
    if (!out->v)
        return false;
    out->v[0] = (char *)s;
    out->n = 1;
    return true;
}

static void set_defaults(struct mr_conf_loader *l, const struct mr_conf_field *f, void *base);

static size_t nsections(void)
{
    size_t n = 0;
    while (mr_conf_sections[n])
        n++;
    return n;
}

/* Every section's settings struct, with its defaults. */
static void sections_defaults(struct mr_conf_loader *l, const char *path)
{
    struct mr_conf *c = l->conf;
    size_t n = nsections();

    c->sections = mr_arena_calloc(&c->arena, n ? n : 1, sizeof(void *));
    if (!c->sections) {
        mr_conf_report(l, path, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mr_conf_section *s = mr_conf_sections[i];
        if (!s->name)
            continue;
        c->sections[i] = mr_arena_calloc(&c->arena, 1, s->size ? s->size : 1);
        if (!c->sections[i]) {
            mr_conf_report(l, path, "out of memory");
            return;
        }
        set_defaults(l, s->fields, c->sections[i]);
    }
}

const void *mr_conf_settings(const struct mr_conf *c, const struct mr_conf_section *s)
{
    for (size_t i = 0; c->sections && mr_conf_sections[i]; i++)
        if (mr_conf_sections[i] == s)
            return s->name ? c->sections[i] : NULL;
    return NULL;
}

static void set_defaults(struct mr_conf_loader *l, const struct mr_conf_field *f, void *base)
{
    for (; f->key; f++) {
        switch (f->kind) {
        case MR_CONF_K_STRING:
            *(char **)at(base, f->off) = (char *)f->def;
            break;
        case MR_CONF_K_INT:
            *(long *)at(base, f->off) = f->idef;
            break;
        case MR_CONF_K_BOOL:
            *(bool *)at(base, f->off) = f->idef != 0;
            break;
        case MR_CONF_K_STRLIST:
            strlist_one(l, at(base, f->off), f->def);
            break;
        case MR_CONF_K_HEADERS:
            *(struct mr_headers *)at(base, f->off) = (struct mr_headers){ NULL, 0 };
            break;
        case MR_CONF_K_OBJECT:
            *(struct json_object **)at(base, f->off) = NULL;
            break;
        case MR_CONF_K_SECTION:
            set_defaults(l, f->sub, base);
            break;
        case MR_CONF_K_MAP:
            *(struct mr_conf_map *)at(base, f->off) = (struct mr_conf_map){ NULL, 0 };
            break;
        case MR_CONF_K_SECTIONS:
            sections_defaults(l, f->key);
            break;
        }
    }
}

static bool has_ctl(const char *s)
{
    return mr_str_has_ctl(s, strlen(s));
}

bool mr_conf_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MR_MEDIA_ID_MAX)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static void load_fields(struct mr_conf_loader *l, const struct mr_conf_field *fields,
                        struct json_object *obj, void *base, const char *path);

static void load_value(struct mr_conf_loader *l, const struct mr_conf_field *f,
                       struct json_object *v, void *base, const char *path)
{
    json_type t = json_object_get_type(v);

    switch (f->kind) {
    case MR_CONF_K_STRING: {
        const char *s;
        if (t != json_type_string) {
            mr_conf_report(l, path, "expected %s", type_name(f->kind));
            return;
        }
        s = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) != strlen(s) || has_ctl(s)) {
            mr_conf_report(l, path, "control characters are not allowed");
            return;
        }
        if (f->choices) {
            const char *const *c;
            for (c = f->choices; *c; c++)
                if (strcmp(*c, s) == 0)
                    break;
            if (!*c) {
                char list[256] = "";
                for (c = f->choices; *c; c++) {
                    strncat(list, *c, sizeof(list) - strlen(list) - 1);
                    if (c[1])
                        strncat(list, ", ", sizeof(list) - strlen(list) - 1);
                }
                mr_conf_report(l, path, "\"%s\" is not one of: %s", s, list);
                return;
            }
        }
        *(char **)at(base, f->off) = (char *)s;
        return;
    }
    case MR_CONF_K_INT: {
        int64_t n;
        if (t != json_type_int) {
            mr_conf_report(l, path, "expected %s", type_name(f->kind));
            return;
        }
        errno = 0;
        n = json_object_get_int64(v);
        if (errno || n < f->min || n > f->max) {
            mr_conf_report(l, path, "must be between %ld and %ld", f->min, f->max);
            return;
        }
        *(long *)at(base, f->off) = (long)n;
        return;
    }
    case MR_CONF_K_BOOL:
        if (t != json_type_boolean) {
            mr_conf_report(l, path, "expected %s", type_name(f->kind));
            return;
        }
        *(bool *)at(base, f->off) = json_object_get_boolean(v);
        return;
    case MR_CONF_K_STRLIST: {
        struct mr_strlist *out = at(base, f->off);
        size_t n;
        if (t == json_type_string) {
            strlist_one(l, out, json_object_get_string(v));
            return;
        }
        if (t != json_type_array) {
            mr_conf_report(l, path, "expected %s", type_name(f->kind));
            return;
        }
        n = json_object_array_length(v);
        out->n = 0;
        out->v = mr_arena_calloc(&l->conf->arena, n ? n : 1, sizeof(char *));
        if (!out->v)
            return;
        for (size_t i = 0; i < n; i++) {
            struct json_object *e = json_object_array_get_idx(v, i);
            if (json_object_get_type(e) != json_type_string ||
                has_ctl(json_object_get_string(e))) {
                mr_conf_report(l, path, "item %zu: expected a string", i);
                continue;
            }
            out->v[out->n++] = (char *)json_object_get_string(e);
        }
        return;
    }
    case MR_CONF_K_HEADERS: {
        struct mr_headers *out = at(base, f->off);
        size_t n, i = 0;
        if (t != json_type_object) {
            mr_conf_report(l, path, "expected an object of \"Header-Name\": \"value\"");
            return;
        }
        n = (size_t)json_object_object_length(v);
        out->v = mr_arena_calloc(&l->conf->arena, n ? n : 1, sizeof(*out->v));
        out->n = 0;
        if (!out->v)
            return;
        json_object_object_foreach(v, name, hv) {
            char *hpath = join(l, path, name);
            const char *why;
            if (json_object_get_type(hv) != json_type_string) {
                mr_conf_report(l, hpath, "expected a string");
                continue;
            }
            /* The upstream module's filter: a malformed header is an
             * error; one it declines to send (Host, Connection, Range...)
             * is left out, as docs/proxy.md has always said. */
            if ((why = mr_header_malformed(name, json_object_get_string(hv))) ||
                (size_t)json_object_get_string_len(hv) != strlen(json_object_get_string(hv))) {
                mr_conf_report(l, hpath, "%s", why ? why : "a control byte in the value");
                continue;
            }
            if (mr_header_refused(name, json_object_get_string(hv), true))
                continue;
            out->v[i].name = name;
            out->v[i].value = json_object_get_string(hv);
            out->n = ++i;
        }
        return;
    }
    case MR_CONF_K_OBJECT:
        if (t != json_type_object) {
            mr_conf_report(l, path, "expected an object");
            return;
        }
        *(struct json_object **)at(base, f->off) = v;
        return;
    case MR_CONF_K_SECTION:
        if (t != json_type_object) {
            mr_conf_report(l, path, "expected an object");
            return;
        }
        load_fields(l, f->sub, v, base, path);
        return;
    case MR_CONF_K_SECTIONS:
        if (t != json_type_object) {
            mr_conf_report(l, path, "expected an object");
            return;
        }
        json_object_object_foreach(v, name, sv) {
            char *spath = join(l, path, name);
            size_t i;
            if (!strcmp(name, "_doc")) {
                if (json_object_get_type(sv) != json_type_string)
                    mr_conf_report(l, spath, "expected a string");
                continue;
            }
            for (i = 0; mr_conf_sections[i]; i++)
                if (mr_conf_sections[i]->name && !strcmp(mr_conf_sections[i]->name, name))
                    break;
            if (!mr_conf_sections[i]) {
                mr_conf_report(l, spath, "unknown key");
                continue;
            }
            if (json_object_get_type(sv) != json_type_object) {
                mr_conf_report(l, spath, "expected an object");
                continue;
            }
            if (l->conf->sections && l->conf->sections[i])
                load_fields(l, mr_conf_sections[i]->fields, sv, l->conf->sections[i], spath);
        }
        return;
    case MR_CONF_K_MAP: {
        struct mr_conf_map *map = at(base, f->off);
        size_t n;
        char *items;
        if (t != json_type_object) {
            mr_conf_report(l, path, "expected an object of id -> entry");
            return;
        }
        n = (size_t)json_object_object_length(v);
        items = mr_arena_calloc(&l->conf->arena, n ? n : 1, f->entry_size);
        if (!items)
            return;
        map->items = items;
        map->n = 0;
        json_object_object_foreach(v, id, ev) {
            char *epath = join(l, path, id);
            void *entry = items + map->n * f->entry_size;
            if (!strcmp(id, "_doc"))
                continue;
            if (!mr_conf_id_ok(id)) {
                mr_conf_report(l, epath, "ids are 1-%d characters of A-Z a-z 0-9 . _ -",
                       MR_MEDIA_ID_MAX);
                continue;
            }
            if (json_object_get_type(ev) != json_type_object) {
                mr_conf_report(l, epath, "expected an object");
                continue;
            }
            *(char **)entry = id;
            set_defaults(l, f->sub, entry);
            load_fields(l, f->sub, ev, entry, epath);
            map->n++;
        }
        return;
    }
    }
}

static void load_fields(struct mr_conf_loader *l, const struct mr_conf_field *fields,
                        struct json_object *obj, void *base, const char *path)
{
    const struct mr_conf_field *f;

    json_object_object_foreach(obj, key, v) {
        char *kpath = join(l, path, key);
        if (!strcmp(key, "_doc")) {
            if (json_object_get_type(v) != json_type_string)
                mr_conf_report(l, kpath, "expected a string");
            continue;
        }
        for (f = fields; f->key; f++)
            if (!strcmp(f->key, key))
                break;
        if (!f->key) {
            mr_conf_report(l, kpath, "unknown key");
            continue;
        }
        load_value(l, f, v, base, kpath);
    }
    for (f = fields; f->key; f++)
        if (f->required && !json_object_object_get_ex(obj, f->key, NULL))
            mr_conf_report(l, path, "\"%s\" is required", f->key);
}

/* ---- checks that span fields -------------------------------------------- */

static bool http_url(const char *s)
{
    return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

const char *mr_conf_file_path(struct mr_conf *c, const char *path)
{
    const char *slash = strrchr(c->path, '/');

    if (path[0] == '/' || !slash)
        return path;
    return mr_arena_printf(&c->arena, "%.*s/%s", (int)(slash - c->path), c->path, path);
}

/* secret_file: the secret is the file's content, less a trailing newline
 * (so that `openssl rand -hex 32 > FILE` makes one).  A relative path is
 * taken from the configuration file's directory.  The file is read whole,
 * at most 4 KiB; a secret with control bytes in it is refused (a stray
 * second line, a binary file). */
static void read_secret_file(struct mr_conf_loader *l)
{
    struct mr_conf *c = l->conf;
    const char *path = c->secret_file;
    char buf[4097];
    size_t n = 0;
    ssize_t k;
    int fd;

    if (c->secret[0]) {
        mr_conf_report(l, "secret_file", "set \"secret\" or \"secret_file\", not both");
        return;
    }
    path = mr_conf_file_path(c, path);
    if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        mr_conf_report(l, "secret_file", "cannot open %s: %s", path ? path : c->secret_file,
                       strerror(errno));
        return;
    }
    while (n < sizeof(buf) && (k = read(fd, buf + n, sizeof(buf) - n)) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            mr_conf_report(l, "secret_file", "cannot read %s: %s", path, strerror(errno));
            close(fd);
            return;
        }
        n += (size_t)k;
    }
    close(fd);
    if (n == sizeof(buf)) {
        mr_conf_report(l, "secret_file", "%s is larger than %zu bytes", path, sizeof(buf) - 1);
        return;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (mr_str_has_ctl(buf, n)) {
        mr_conf_report(l, "secret_file", "%s holds more than one line or control bytes", path);
        return;
    }
    c->secret = mr_arena_strndup(&c->arena, buf, n);
    explicit_bzero(buf, sizeof(buf));
    if (!c->secret)
        mr_conf_report(l, "secret_file", "out of memory");
}

static void check(struct mr_conf_loader *l)
{
    struct mr_conf *c = l->conf;

    if (c->secret_file[0])
        read_secret_file(l);
    if (!c->secret || strlen(c->secret) < MR_CONF_KEY_MIN)
        mr_conf_report(l, "secret", "must be at least %d characters (generate one with "
               "`openssl rand -hex 32`)", MR_CONF_KEY_MIN);
    for (size_t i = 0; i < c->previous_secrets.n; i++)
        if (strlen(c->previous_secrets.v[i]) < MR_CONF_KEY_MIN)
            mr_conf_report(l, "previous_secrets", "secret %zu is shorter than %d characters", i + 1,
                   MR_CONF_KEY_MIN);
    if (c->previous_secrets.n > 15)
        mr_conf_report(l, "previous_secrets", "at most 15 previous secrets");
    /* A bearer token is a password sent on every admin call: one short
     * enough to guess is refused rather than warned about.  "" closes the
     * routes it opens. */
    if (c->admin_token[0] && strlen(c->admin_token) < MR_CONF_KEY_MIN)
        mr_conf_report(l, "admin_token", "must be at least %d characters, or \"\" to close the admin "
               "endpoints (generate one with `openssl rand -hex 32`)", MR_CONF_KEY_MIN);
    if (c->metrics_token[0] && strlen(c->metrics_token) < MR_CONF_KEY_MIN)
        mr_conf_report(l, "metrics_token", "must be at least %d characters, or \"\" to leave the stats "
               "to admin_token (generate one with `openssl rand -hex 32`)", MR_CONF_KEY_MIN);
    if (c->public_url[0]) {
        size_t n = strlen(c->public_url);
        if (!http_url(c->public_url) || strpbrk(c->public_url, "?# "))
            mr_conf_report(l, "public_url", "must be an http(s) URL without query or fragment");
        else if (c->public_url[n - 1] == '/')
            c->public_url[n - 1] = '\0';
    }
    if (c->redis[0] && strncmp(c->redis, "unix:", 5) && !strchr(c->redis, ':'))
        mr_conf_report(l, "redis", "expected \"unix:/path/to/redis.sock\", \"host:port\" or \"\"");
    if (strlen(c->key_prefix) > 64)
        mr_conf_report(l, "key_prefix", "must be at most 64 characters");
    for (size_t i = 0; i < c->cors.allow_origin.n; i++) {
        const char *o = c->cors.allow_origin.v[i];
        if (strcmp(o, "*") && !http_url(o))
            mr_conf_report(l, "cors.allow_origin", "\"%s\" is neither \"*\" nor an http(s) origin", o);
    }
    for (size_t i = 0; i < c->stream.allow_hosts.n; i++) {
        const char *h = c->stream.allow_hosts.v[i];
        if (!*h || strpbrk(h, "/?#@ \\") || strstr(h, "://"))
            mr_conf_report(l, "stream.allow_hosts", "\"%s\" is not a host or host:port", h);
    }
    if (c->cors.allow_credentials && c->cors.allow_origin.n == 1 &&
        !strcmp(c->cors.allow_origin.v[0], "*"))
        mr_conf_report(l, "cors.allow_credentials", "needs an explicit allow_origin list, not \"*\"");
    for (size_t i = 0; i < c->channels.n; i++) {
        const struct mr_conf_channel *ch = (struct mr_conf_channel *)c->channels.items + i;
        if (ch->url && !http_url(ch->url)) {
            char p[128];
            snprintf(p, sizeof(p), "channels.%s.url", ch->id);
            mr_conf_report(l, p, "must be an http(s) URL");
        }
    }
    for (const struct mr_conf_check *k = mr_conf_checks; k->run; k++)
        k->run(c, l);
}

/* ---- entry points -------------------------------------------------------- */

static bool only_space(const char *s, size_t len, size_t from)
{
    for (size_t i = from; i < len; i++)
        if (!strchr(" \t\r\n", s[i]) || !s[i])
            return false;
    return true;
}

int mr_conf_load_string(const char *name, const char *json, size_t len,
                        struct mr_conf **out, struct mr_buf *errors)
{
    struct mr_conf *c;
    struct mr_conf_loader l;
    struct json_tokener *tok;
    enum json_tokener_error jerr;

    *out = NULL;
    if (len > MR_CONF_MAX_BYTES) {
        if (errors)
            mr_buf_printf(errors, "%s: larger than %u bytes\n", name, MR_CONF_MAX_BYTES);
        return MR_ETOOBIG;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return MR_ENOMEM;
    mr_arena_init(&c->arena, 0);
    c->path = mr_arena_strdup(&c->arena, name);

    tok = json_tokener_new_ex(MR_CONF_MAX_DEPTH);
    if (!tok) {
        mr_conf_free(c);
        return MR_ENOMEM;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    c->root = json_tokener_parse_ex(tok, json, (int)len);
    jerr = json_tokener_get_error(tok);
    if (!c->root && jerr == json_tokener_success && only_space(json, len,
                                                               json_tokener_get_parse_end(tok))) {
        /* "null": valid JSON, but not a configuration. */
        if (errors)
            mr_buf_printf(errors, "%s: the configuration must be a JSON object\n", name);
        json_tokener_free(tok);
        mr_conf_free(c);
        return MR_EINVAL;
    }
    if (!c->root || jerr != json_tokener_success ||
        json_tokener_get_parse_end(tok) < len) {
        size_t end = json_tokener_get_parse_end(tok), line = 1, col = 1;
        for (size_t i = 0; i < end && i < len; i++) {
            if (json[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (errors)
            mr_buf_printf(errors, "%s:%zu:%zu: invalid JSON: %s\n", name, line, col,
                          jerr == json_tokener_success ? "trailing data after the object"
                          : jerr == json_tokener_continue ? "unexpected end of file"
                          : json_tokener_error_desc(jerr));
        json_tokener_free(tok);
        json_object_put(c->root);   /* a value parsed before the junk */
        mr_conf_free(c);
        return MR_EINVAL;
    }
    json_tokener_free(tok);
    if (mr_json_own(&c->arena, c->root)) {
        mr_conf_free(c);
        return MR_ENOMEM;
    }

    l = (struct mr_conf_loader){ .conf = c, .errors = errors };
    set_defaults(&l, root_fields, c);
    if (json_object_get_type(c->root) != json_type_object)
        mr_conf_report(&l, name, "the configuration must be a JSON object");
    else
        load_fields(&l, root_fields, c->root, c, "");
    if (!l.nerrors)
        check(&l);
    if (l.nerrors > MAX_ERRORS && errors)
        mr_buf_printf(errors, "... and %d more\n", l.nerrors - MAX_ERRORS);
    if (l.nerrors) {
        mr_conf_free(c);
        return MR_EINVAL;
    }
    *out = c;
    return MR_OK;
}

int mr_conf_load(const char *path, struct mr_conf **out, struct mr_buf *errors)
{
    struct mr_buf data;
    char chunk[16384];
    ssize_t n;
    int fd, rc = MR_OK;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errors)
            mr_buf_printf(errors, "%s: cannot open: %s\n", path, strerror(errno));
        return MR_ENOTFOUND;
    }
    mr_buf_init(&data, MR_CONF_MAX_BYTES);
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errors)
                mr_buf_printf(errors, "%s: read error: %s\n", path, strerror(errno));
            rc = MR_EINVAL;
            break;
        }
        rc = mr_buf_append(&data, chunk, (size_t)n);
        if (rc) {
            if (errors)
                mr_buf_printf(errors, "%s: larger than %u bytes\n", path, MR_CONF_MAX_BYTES);
            break;
        }
    }
    close(fd);
    if (!rc)
        rc = mr_conf_load_string(path, data.p ? data.p : "", data.len, out, errors);
    mr_buf_free(&data);
    return rc;
}

void mr_conf_free(struct mr_conf *conf)
{
    if (!conf)
        return;
    mr_arena_free(&conf->arena);
    free(conf);
}

const char *mr_conf_path(int argc, char **argv)
{
    const char *env;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            return argv[i + 1];
        if (!strncmp(argv[i], "--config=", 9))
            return argv[i] + 9;
    }
    env = getenv("MEDIARELAY_CONFIG");
    if (env && *env)
        return env;
    return MR_SYSCONFDIR "/mediarelay/mediarelay.json";
}

static const void *map_find(const struct mr_conf_map *m, size_t size, struct mr_str id)
{
    for (size_t i = 0; i < m->n; i++) {
        const void *e = (const char *)m->items + i * size;
        if (mr_str_eq_c(id, *(char *const *)e))
            return e;
    }
    return NULL;
}

const struct mr_conf_media *mr_conf_media_find(const struct mr_conf *c, struct mr_str id)
{
    return map_find(&c->media, sizeof(struct mr_conf_media), id);
}

const struct mr_conf_channel *mr_conf_channel_find(const struct mr_conf *c, struct mr_str id)
{
    return map_find(&c->channels, sizeof(struct mr_conf_channel), id);
}

/* ---- documentation check ------------------------------------------------- */

static int doc_walk(const struct mr_conf_field *fields, struct json_object *obj,
                    const char *path, struct mr_buf *errors);

static int doc_section(const struct mr_conf_field *fields, struct json_object *v,
                       const char *path, struct mr_buf *errors)
{
    int diffs = 0;

    if (!json_object_object_get_ex(v, "_doc", NULL)) {
        mr_buf_printf(errors, "%s: section has no \"_doc\"\n", path);
        diffs++;
    }
    return diffs + doc_walk(fields, v, path, errors);
}

static int doc_walk(const struct mr_conf_field *fields, struct json_object *obj,
                    const char *path, struct mr_buf *errors)
{
    int diffs = 0;
    char kpath[256];

    for (const struct mr_conf_field *f = fields; f->key; f++) {
        struct json_object *v = NULL;
        snprintf(kpath, sizeof(kpath), "%s%s%s", path, *path ? "." : "", f->key);
        if (!obj || !json_object_object_get_ex(obj, f->key, &v)) {
            if (f->required)
                continue;
            mr_buf_printf(errors, "%s: not documented\n", kpath);
            diffs++;
            continue;
        }
        switch (f->kind) {
        case MR_CONF_K_STRING:
            if (json_object_get_type(v) != json_type_string ||
                strcmp(json_object_get_string(v), f->def ? f->def : "") != 0) {
                mr_buf_printf(errors, "%s: documented value is not the default \"%s\"\n",
                              kpath, f->def ? f->def : "");
                diffs++;
            }
            break;
        case MR_CONF_K_INT:
            if (json_object_get_type(v) != json_type_int ||
                json_object_get_int64(v) != f->idef) {
                mr_buf_printf(errors, "%s: documented value is not the default %ld\n",
                              kpath, f->idef);
                diffs++;
            }
            break;
        case MR_CONF_K_BOOL:
            if (json_object_get_type(v) != json_type_boolean ||
                json_object_get_boolean(v) != (f->idef != 0)) {
                mr_buf_printf(errors, "%s: documented value is not the default\n", kpath);
                diffs++;
            }
            break;
        case MR_CONF_K_STRLIST: {
            bool ok;
            if (json_object_get_type(v) == json_type_string)
                ok = f->def && !strcmp(json_object_get_string(v), f->def);
            else
                ok = json_object_get_type(v) == json_type_array &&
                     json_object_array_length(v) == (f->def ? 1u : 0u);
            if (!ok) {
                mr_buf_printf(errors, "%s: documented value is not the default\n", kpath);
                diffs++;
            }
            break;
        }
        case MR_CONF_K_SECTION:
            diffs += doc_section(f->sub, v, kpath, errors);
            break;
        case MR_CONF_K_SECTIONS: {
            char spath[256];
            struct json_object *sv;
            if (!json_object_object_get_ex(v, "_doc", NULL)) {
                mr_buf_printf(errors, "%s: section has no \"_doc\"\n", kpath);
                diffs++;
            }
            for (size_t i = 0; mr_conf_sections[i]; i++) {
                const struct mr_conf_section *s = mr_conf_sections[i];
                if (!s->name)
                    continue;
                if (snprintf(spath, sizeof(spath), "%s.%s", kpath, s->name) >=
                    (int)sizeof(spath)) {
                    mr_buf_printf(errors, "%s: a section name that long\n", kpath);
                    diffs++;
                    continue;
                }
                if (!json_object_object_get_ex(v, s->name, &sv)) {
                    mr_buf_printf(errors, "%s: not documented\n", spath);
                    diffs++;
                    continue;
                }
                diffs += doc_section(s->fields, sv, spath, errors);
            }
            break;
        }
        case MR_CONF_K_MAP: {
            int n = 0;
            json_object_object_foreach(v, k, ev) {
                (void)ev;
                if (strcmp(k, "_doc"))
                    n++;
            }
            if (n) {
                mr_buf_printf(errors, "%s: the default is an empty map\n", kpath);
                diffs++;
            }
            break;
        }
        default:
            break;
        }
    }
    return diffs;
}

int mr_conf_check_documented(struct json_object *doc, struct mr_buf *errors)
{
    return doc_walk(root_fields, doc, "", errors);
}
