/* config.h - the configuration file: its schema, defaults and validation.
 *
 * One JSON file (conf/mediarelay.json documents every key).  The schema in
 * config.c, with the providers' sections (mr_conf_sections: each provider's
 * own table, in its own file), is the single source of names, types and
 * defaults; the loader fills struct mr_conf (and the sections' settings)
 * from it, reports every unknown key, wrong type and out-of-range value with
 * the key's path, and refuses the file if there is any.  A loaded
 * configuration is immutable and shared by all threads.
 */
#ifndef MR_CONFIG_H
#define MR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/str.h"

struct json_object;

/* A conf map whose keys are ids (channels, media, instances): an array of
 * entry structs, each starting with `char *id`. */
struct mr_conf_map {
    void *items;
    size_t n;
};

struct mr_conf_media {
    char *id;
    char *provider;
    char *title;
    char *room;
    struct json_object *source;   /* owned by the conf; read-only */
};

struct mr_conf_channel {
    char *id;
    char *url;
    char *name;
    char *group;
    char *logo;
    struct mr_headers headers;
    bool cache_ignore_query;      /* segment cache keys without the query */
};

struct mr_conf {
    char *public_url;
    char *secret;
    char *secret_file;                  /* the secret read from a file, or "" */
    struct mr_strlist previous_secrets; /* still accepted in tokens and links */
    char *admin_token;               /* "": the admin routes are closed */
    char *metrics_token;             /* "": only admin_token reads the stats */
    char *redis;
    char *key_prefix;
    struct {
        long threads_resolve, threads_m3u8, threads_segment, threads_proxy, threads_jobs;
        long drain_timeout_s;
        long max_body_bytes;
        struct mr_strlist trusted_proxies;  /* whose X-Forwarded-For is believed */
    } server;
    struct {
        char *level;
        char *target;
        bool access;
    } log;
    struct {
        long timeout_ms;
        long retry_ms;
        long fallback_entries;
        long fallback_bytes;
    } store;
    struct {
        char *cookie;
    } auth;
    struct {
        struct mr_strlist allow_origin;
        bool allow_credentials;
        long max_age_s;
    } cors;
    struct {
        bool allow_private_networks;
        struct mr_strlist allow_networks;
        long connect_timeout_ms;
        long fetch_timeout_ms;
        long low_speed_bytes;
        long low_speed_time_s;
        long max_redirects;
        long buffer_bytes;
        long splice_min_bytes;          /* 0: bodies always go through libcurl */
        long max_fetch_bytes;
        char *user_agent;
    } upstream;
    struct {
        struct mr_strlist allow_hosts;
        char *offload;
        long sign_max_ttl_s;
    } stream;
    struct {
        long token_ttl_s;
        long max_playlist_bytes;
        long segment_cache_max_bytes;  /* 0: no segment cache */
        long segment_cache_ttl_s;
        long edge_cache_s;                /* 0: the web server keeps nothing */
        long live_playlist_max_cache_ms;  /* 0: live playlists not cached */
        long vod_playlist_cache_s;        /* 0: VOD playlists not cached */
    } hls;
    struct {
        long max_manifest_bytes;
    } dash;
    struct {
        long refresh_margin_s;
        long default_ttl_s;
        long lock_timeout_s;
        long again_min_s;
        long error_ttl_s;
        bool open;
        long open_client_budget;      /* 0: no per-client budget */
        long open_window_s;
        long open_max_items;
    } resolve;
    struct {
        char *dir;                    /* results: dir/<task id>/ */
        long max_bytes;               /* one task's result */
        long max_running;             /* tasks one worker runs at once */
        long max_running_process;     /* of which ffmpeg jobs */
        long timeout_s;               /* one attempt of a task */
        long keep_s;                  /* a task and its result, once it ended */
        long max_queued_per_user;     /* tasks not ended, per user */
        long claim_idle_s;            /* a job whose worker went silent is
                                         taken over after this */
        long max_attempts;
        long analyze_ttl_s;
        long analyze_timeout_s;
        long analyze_max_bytes;       /* yt-dlp's JSON */
        long progress_interval_ms;    /* progress written at most this often */
        long queue_max_len;           /* entries kept in each stream */
        char *ytdlp;
        char *ffmpeg;
        char *ffprobe;
        char *accel_prefix;           /* results by X-Accel-Redirect under this
                                         internal location (stream.offload nginx) */
    } jobs;
    struct mr_conf_map channels;      /* of struct mr_conf_channel; the
                                         configuration's, then channels_m3u's */
    char *channels_m3u;
    size_t channels_imported;         /* from channels_m3u */
    size_t channels_skipped;          /* entries of it that were not usable */
    struct mr_conf_map media;         /* of struct mr_conf_media */
    void **sections;                  /* "providers": one settings struct per
                                         entry of mr_conf_sections, in the
                                         arena (mr_conf_settings) */

    /* Where the values live: everything above points into this arena or
     * into `root`. */
    struct mr_arena arena;
    struct json_object *root;
    char *path;
};

/* ---- the schema ----------------------------------------------------------
 *
 * A key is a field: its name, its kind, where its value goes (an offset from
 * the struct being filled), its default and its bounds.  config.c's tables
 * describe struct mr_conf; a layer above describes its own settings the same
 * way, as a section (below). */
enum mr_conf_kind {
    MR_CONF_K_STRING,     /* char * */
    MR_CONF_K_INT,        /* long, within [min, max] */
    MR_CONF_K_BOOL,       /* bool */
    MR_CONF_K_STRLIST,    /* struct mr_strlist; a single string is a list of one */
    MR_CONF_K_HEADERS,    /* struct mr_headers from {"Name": "value"} */
    MR_CONF_K_OBJECT,     /* struct json_object *, any object (checked by its user) */
    MR_CONF_K_SECTION,    /* nested fields, same base */
    MR_CONF_K_MAP,        /* struct mr_conf_map: id -> entry with fields `sub` */
    MR_CONF_K_SECTIONS,   /* an object of the mr_conf_sections, by name (config.c) */
};

struct mr_conf_field {
    const char *key;
    enum mr_conf_kind kind;
    size_t off;                          /* offset from the base struct */
    const char *def;                     /* STRING / STRLIST default */
    long idef, min, max;                 /* INT (and BOOL: idef) */
    const struct mr_conf_field *sub;     /* SECTION, MAP */
    size_t entry_size;                   /* MAP */
    const char *const *choices;          /* STRING: the allowed values */
    bool required;                       /* inside map entries */
};

/* Field tables end with MR_CONF_END.  `m` is an offsetof() into the struct the
 * table fills. */
#define MR_CONF_STR(k, m, d) { .key = k, .kind = MR_CONF_K_STRING, .off = m, .def = d }
#define MR_CONF_STRCH(k, m, d, ch) \
    { .key = k, .kind = MR_CONF_K_STRING, .off = m, .def = d, .choices = ch }
#define MR_CONF_INT(k, m, d, lo, hi) \
    { .key = k, .kind = MR_CONF_K_INT, .off = m, .idef = d, .min = lo, .max = hi }
#define MR_CONF_BOOL(k, m, d) { .key = k, .kind = MR_CONF_K_BOOL, .off = m, .idef = d }
#define MR_CONF_LIST(k, m, d) { .key = k, .kind = MR_CONF_K_STRLIST, .off = m, .def = d }
#define MR_CONF_SECTION(k, s) { .key = k, .kind = MR_CONF_K_SECTION, .sub = s }
#define MR_CONF_MAP(k, m, T, s) \
    { .key = k, .kind = MR_CONF_K_MAP, .off = m, .sub = s, .entry_size = sizeof(T) }
#define MR_CONF_END { .key = NULL }

/* A section a layer above owns: "providers.<name>" in the file, loaded with
 * its own fields into its own settings struct of `size` bytes (zeroed, then
 * the defaults, then the file's values), which the configuration keeps and
 * mr_conf_settings gives back.  A section without a name has no keys. */
struct mr_conf_section {
    const char *name;
    const struct mr_conf_field *fields;
    size_t size;
};

/* The sections, NULL-terminated: the list is the layer above's (every
 * provider's, providers/registry.c), as mr_conf_checks is. */
extern const struct mr_conf_section *const mr_conf_sections[];

/* The loaded settings of a section of mr_conf_sections, or NULL for one that
 * is not in the list or has no name. */
const void *mr_conf_settings(const struct mr_conf *c, const struct mr_conf_section *s);

/* The path to load: --config PATH / --config=PATH in argv, else
 * $MEDIARELAY_CONFIG, else SYSCONFDIR/mediarelay/mediarelay.json. */
const char *mr_conf_path(int argc, char **argv);

/* A path the configuration names (channels_m3u, secret_file): as it is when
 * absolute, else from the configuration file's directory; in c's arena
 * (NULL when out of memory). */
const char *mr_conf_file_path(struct mr_conf *c, const char *path);

/* Loads and validates a file.  On success *out is a new configuration (free
 * with mr_conf_free).  On failure returns MR_EINVAL (or MR_ENOTFOUND,
 * MR_ETOOBIG) and `errors` holds one line per problem, each starting with
 * the key's path ("upstream.connect_timeout_ms: expected an integer"). */
int mr_conf_load(const char *path, struct mr_conf **out, struct mr_buf *errors);
/* The same from a string (tests, fuzzing); `name` is used in messages. */
int mr_conf_load_string(const char *name, const char *json, size_t len,
                        struct mr_conf **out, struct mr_buf *errors);
void mr_conf_free(struct mr_conf *conf);

/* Checks that need a layer above this one are that layer's: the SSRF
 * guard's address blocks (common/net/netguard.c), the channel list import
 * (common/format/channels.c), the media items' providers and sources
 * (common/app/media.c).  Once every key has the right type, the loader runs
 * mr_conf_checks, in order (the list is common/app/conf_checks.c, as
 * nginx's module list is its own file); a check may add to the
 * configuration (the import does) and reports each problem with
 * mr_conf_report, which refuses the file. */
struct mr_conf_loader;
struct mr_conf_check {
    const char *name;
    void (*run)(struct mr_conf *c, struct mr_conf_loader *l);
};
extern const struct mr_conf_check mr_conf_checks[];   /* ends with { 0 } */

/* One problem at a key's path ("channels.tv.url"): a line of the errors. */
void mr_conf_report(struct mr_conf_loader *l, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True for a valid media, channel or instance id: 1..MR_MEDIA_ID_MAX bytes
 * of A-Z a-z 0-9 . _ - */
bool mr_conf_id_ok(const char *s);

/* Lookups in the maps; NULL when absent. */
const struct mr_conf_media *mr_conf_media_find(const struct mr_conf *c, struct mr_str id);
const struct mr_conf_channel *mr_conf_channel_find(const struct mr_conf *c, struct mr_str id);

/* For tests: walks the schema and reports (into `errors`) every key the
 * schema knows that the JSON object `doc` does not list, and every value in
 * it that differs from the schema's default.  Maps must be present and empty.
 * Returns the number of differences. */
int mr_conf_check_documented(struct json_object *doc, struct mr_buf *errors);

#endif
