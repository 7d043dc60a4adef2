/* provider.h - the interface every media source implements.
 *
 * A provider is a const struct of function pointers and its configuration
 * section, one per file, listed in providers/registry.c (nginx modules,
 * curl's protocol handlers): adding a source is that file and one line
 * there.  Everything that is not specific to a source -- caching, proxy vs
 * direct, rewriting, refresh -- is common code.
 */
#ifndef MR_PROVIDER_H
#define MR_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/config.h"
#include "core/str.h"

struct json_object;
struct mr_ctx;
struct mr_media;

/* Another quality or codec of the same item (MediaSource.more_sources). */
struct mr_alt_source {
    const char *name;               /* "1080p HEVC" */
    const char *url;
    const char *video_type;
};

struct mr_subtitle {
    const char *lang;               /* "zh-CN" */
    const char *url;
    const char *type;               /* "vtt", "srt", "ass" */
};

/* What a provider's resolve() finds: where the bytes are and how to ask. */
struct mr_source {
    const char *url;                /* upstream URL, as the upstream gave it */
    struct mr_headers headers;      /* headers the upstream wants */
    const char *video_type;         /* "mp4", "hls", "mpd", "flv", ... or NULL */
    time_t expire_at;               /* 0: does not expire */
    time_t resolved_at;             /* when the resolver asked the provider
                                       (0: not through the resolver) */
    const char *title;
    double duration;                /* seconds, 0 when unknown */
    const char *thumbnail;
    struct mr_alt_source *more;
    size_t nmore;
    struct mr_subtitle *subs;
    size_t nsubs;
    const char *inline_mpd;         /* an MPD the provider built (mpd_build.h),
                                       served for manifest.mpd instead of
                                       fetching url, which is then its base */
};

struct mr_provider {
    /* The name used in conf and in POST /api/media ("direct"). */
    const char *name;
    /* Its section "providers.<name>" of mediarelay.json: the same name, its
     * fields (keys, types, defaults, bounds; core/config.h) and the size of
     * the settings struct they fill.  The loader checks it with the rest of
     * the file; mr_conf_settings(conf, &provider.conf) gives the loaded
     * settings back.  { 0 }: no section. */
    struct mr_conf_section conf;
    /* Whether its items go to the player as they are ("direct") rather than
     * through the relay ("proxy"): its default, usually its
     * providers.<name>.mode (MR_PROVIDER_MODE).  The runtime setting
     * proxy.enable_<name> overrides it, and a source that needs headers is
     * always relayed (relay/mediasource.c).  May be NULL: relayed. */
    bool (*direct)(const struct mr_conf *c);
    /* Checks a media item's "source" object.  Returns 0, or MR_EINVAL with
     * the offending field (relative to source, "" for the whole object) and
     * a message written into the buffers.  May be NULL: anything goes. */
    int (*validate)(struct json_object *source, char *field, size_t fieldlen,
                    char *msg, size_t msglen);
    /* For /api/resolve?url=: whether this provider understands the URL.
     * May be NULL: never. */
    bool (*can_handle)(const char *url);
    /* Finds the upstream for a media item.  Strings in *out live in the
     * request's arena (or in the media item, which outlives it). */
    int (*resolve)(struct mr_ctx *ctx, const struct mr_media *media,
                   struct mr_source *out);
    /* Resolving asks the network (an API, yt-dlp): the answer is cached
     * (common/relay/resolver.c).  False for providers that only read their
     * source object. */
    bool remote;
    /* The conf channel (its id) whose relay caches the media item shares,
     * or NULL.  The item's entry manifest is then rewritten in that
     * channel's scope, as /live/{channel}.m3u8 is, instead of the item's
     * own: both URLs share one live playlist cache and one segment cache
     * (with the channel's cache_ignore_query), so N viewers cost one
     * upstream fetch whichever URL they use.  Room checks on the item's
     * manifest are unchanged.  May be NULL: the item's own scope. */
    const char *(*channel_of)(const struct mr_media *media);
    /* Its sources are files this relay serves itself (the media jobs'
     * results, /api/results/): the MediaSource gives their URLs as they
     * are, and the relay paths of the item (/api/proxy/media/{id},
     * index.m3u8) redirect there; nothing is fetched from an upstream. */
    bool own_files;
};

/* A provider's failure: logs "media MEDIA_ID: message" as a warning and keeps the
 * message (control bytes as '?') for the request's error answer, which then
 * says why rather than only that.  Returns rc. */
int mr_fail(struct mr_ctx *ctx, const char *media_id, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The error answer for a media item that could not be resolved: rc's status
 * and code, with the provider's message when it gave one. */
int mr_answer_unresolved(struct mr_ctx *ctx, const struct mr_media *m, int rc);

/* The 404 answer for a ?t=name that names none of the item's sources. */
int mr_answer_no_source(struct mr_ctx *ctx, const struct mr_media *m, const char *t);

/* The "mode" key of a provider's section: "proxy" or "direct", default
 * `def`, into the `char *mode` of its settings struct T. */
extern const char *const mr_provider_modes[];
#define MR_PROVIDER_MODE(T, def) MR_CONF_STRCH("mode", offsetof(T, mode), def, mr_provider_modes)

/* The providers, NULL-terminated, in the order can_handle is asked. */
extern const struct mr_provider *const mr_providers[];

/* The provider called `name`, or NULL. */
const struct mr_provider *mr_provider_find(const char *name);

/* A media type from a URL path's extension ("mp4", "hls", "mpd", "flv",
 * "webm", "mkv", "ts"), or NULL when it says nothing. */
const char *mr_video_type_from_url(const char *url);

#endif
