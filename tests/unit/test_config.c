/* test_config.c - the schema, the shipped conf/mediarelay.json, and every
 * way a configuration is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"

#define SHIPPED MR_TOP_SRCDIR "/conf/mediarelay.json"
#define SECRET "0123456789abcdef0123456789abcdef"
#define ADMIN "admin-0123456789abcdef0123456789"     /* 32 characters, the least */
#define METRICS "metrics-0123456789abcdef0123456789abcdef"

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- the providers' sections, read through their own field tables ---- */

static const struct mr_conf_section *section(const char *name)
{
    for (size_t i = 0; mr_conf_sections[i]; i++)
        if (mr_conf_sections[i]->name && !strcmp(mr_conf_sections[i]->name, name))
            return mr_conf_sections[i];
    fail_msg("no section \"%s\"", name);
    return NULL;
}

static const struct mr_conf_field *field_of(const struct mr_conf_field *f, const char *key,
                                            enum mr_conf_kind kind)
{
    for (; f->key; f++)
        if (!strcmp(f->key, key)) {
            assert_int_equal(f->kind, kind);
            return f;
        }
    fail_msg("no key \"%s\"", key);
    return NULL;
}

/* Where providers.NAME.KEY of c is. */
static const void *setting(const struct mr_conf *c, const char *name, const char *key,
                           enum mr_conf_kind kind)
{
    const struct mr_conf_section *s = section(name);
    const char *base = mr_conf_settings(c, s);

    assert_non_null(base);
    return base + field_of(s->fields, key, kind)->off;
}

#define PSTR(c, n, k) (*(char *const *)setting(c, n, k, MR_CONF_K_STRING))
#define PINT(c, n, k) (*(const long *)setting(c, n, k, MR_CONF_K_INT))
#define PMAP(c, n, k) ((const struct mr_conf_map *)setting(c, n, k, MR_CONF_K_MAP))

/* KEY of entry i of the map providers.NAME.MAPKEY, a string. */
static const char *entry_str(const struct mr_conf *c, const char *name, const char *mapkey,
                             size_t i, const char *key)
{
    const struct mr_conf_field *mf = field_of(section(name)->fields, mapkey, MR_CONF_K_MAP);
    const struct mr_conf_map *m = PMAP(c, name, mapkey);
    const char *entry;

    assert_true(i < m->n);
    entry = (const char *)m->items + i * mf->entry_size;
    if (!strcmp(key, "id"))
        return *(char *const *)entry;
    return *(char *const *)(entry + field_of(mf->sub, key, MR_CONF_K_STRING)->off);
}

static int load(const char *json, struct mr_conf **out, struct mr_buf *err)
{
    mr_buf_init(err, 1 << 16);
    return mr_conf_load_string("t.json", json, strlen(json), out, err);
}

/* Loads {"secret": SECRET, <body>}; must succeed. */
static struct mr_conf *load_ok(const char *body)
{
    char json[8192];
    struct mr_conf *c = NULL;
    struct mr_buf err;
    int rc;

    snprintf(json, sizeof(json), "{\"secret\": \"%s\"%s%s}", SECRET, *body ? ", " : "", body);
    rc = load(json, &c, &err);
    if (rc)
        print_message("unexpected errors for %s:\n%s", json, err.p ? err.p : "");
    mr_buf_free(&err);
    assert_int_equal(rc, MR_OK);
    assert_non_null(c);
    return c;
}

/* ---- the shipped file ------------------------------------------------------ */

static void test_shipped_documents_every_key(void **state)
{
    struct json_object *doc = json_object_from_file(SHIPPED);
    struct mr_buf err;
    int n;

    (void)state;
    if (!doc)
        print_message("cannot parse %s: %s\n", SHIPPED, json_util_get_last_err());
    assert_non_null(doc);
    assert_true(json_object_is_type(doc, json_type_object));
    assert_true(json_object_object_get_ex(doc, "_doc", NULL));
    mr_buf_init(&err, 1 << 16);
    n = mr_conf_check_documented(doc, &err);
    if (n)
        print_message("%s", err.p);
    assert_int_equal(n, 0);
    mr_buf_free(&err);
    json_object_put(doc);
}

/* The check itself notices a missing key, a wrong default, a section
 * without "_doc" and a non-empty map. */
static void test_check_documented_finds_drift(void **state)
{
    static const struct {
        const char *edit;      /* what is done to the shipped document */
        const char *expect;    /* in the report */
    } cases[] = {
        { "del upstream.user_agent", "upstream.user_agent: not documented" },
        { "del server.threads", "server.threads: not documented" },
        { "int store.timeout_ms", "store.timeout_ms: documented value is not the default" },
        { "str log.level", "log.level: documented value is not the default" },
        { "bool log.access", "log.access: documented value is not the default" },
        { "doc cors", "cors: section has no \"_doc\"" },
        { "map media", "media: the default is an empty map" },
        /* the providers' sections, walked through their own tables */
        { "doc providers", "providers: section has no \"_doc\"" },
        { "del providers.direct", "providers.direct: not documented" },
        { "del providers.ytdlp.timeout_s", "providers.ytdlp.timeout_s: not documented" },
        { "int providers.ytdlp.max_running",
          "providers.ytdlp.max_running: documented value is not the default" },
        { "str providers.bilibili.api_base",
          "providers.bilibili.api_base: documented value is not the default" },
        { "doc providers.bilibili", "providers.bilibili: section has no \"_doc\"" },
        { "map providers.alist.instances",
          "providers.alist.instances: the default is an empty map" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *doc = json_object_from_file(SHIPPED), *sec;
        char op[8], path[64], *dot;
        struct mr_buf err;
        int n;

        assert_non_null(doc);
        assert_int_equal(sscanf(cases[i].edit, "%7s %63s", op, path), 2);
        /* sec: the object holding the last key of the path, dot: that key. */
        sec = doc;
        dot = path;
        for (char *next; (next = strchr(dot, '.')); dot = next + 1) {
            *next = '\0';
            assert_true(json_object_object_get_ex(sec, dot, &sec));
        }
        if (!strcmp(op, "del"))
            json_object_object_del(sec, dot);
        else if (!strcmp(op, "int"))
            json_object_object_add(sec, dot, json_object_new_int(12345));
        else if (!strcmp(op, "str"))
            json_object_object_add(sec, dot, json_object_new_string("debug"));
        else if (!strcmp(op, "bool"))
            json_object_object_add(sec, dot, json_object_new_boolean(0));
        else if (!strcmp(op, "doc")) {
            assert_true(json_object_object_get_ex(sec, dot, &sec));
            json_object_object_del(sec, "_doc");
        } else if (!strcmp(op, "map")) {
            struct json_object *e = json_object_new_object();
            assert_true(json_object_object_get_ex(sec, dot, &sec));
            json_object_object_add(sec, "x", e);
        }
        mr_buf_init(&err, 1 << 16);
        n = mr_conf_check_documented(doc, &err);
        if (n < 1 || !strstr(err.p, cases[i].expect))
            print_message("case %zu (%s): got %d:\n%s", i, cases[i].edit, n, err.p ? err.p : "");
        assert_true(n >= 1);
        assert_non_null(strstr(err.p, cases[i].expect));
        mr_buf_free(&err);
        json_object_put(doc);
    }
}

static void test_shipped_refused_only_for_secret(void **state)
{
    struct mr_conf *c = (struct mr_conf *)1;
    struct mr_buf err;
    int rc;

    (void)state;
    mr_buf_init(&err, 1 << 16);
    rc = mr_conf_load(SHIPPED, &c, &err);
    assert_int_equal(rc, MR_EINVAL);
    assert_null(c);
    assert_non_null(err.p);
    if (count_lines(err.p) != 1 || strncmp(err.p, "secret:", 7))
        print_message("%s", err.p);
    assert_int_equal(count_lines(err.p), 1);
    assert_true(strncmp(err.p, "secret:", 7) == 0);
    assert_non_null(strstr(err.p, "openssl rand -hex 32"));
    mr_buf_free(&err);
}

/* Every field of two configurations, one by one. */
static void assert_same_conf(const struct mr_conf *a, const struct mr_conf *b)
{
#define S(f) assert_string_equal(a->f, b->f)
#define L(f) assert_int_equal(a->f, b->f)
    S(public_url); S(secret); S(admin_token); S(metrics_token); S(redis); S(key_prefix);
    L(server.threads_resolve); L(server.threads_m3u8); L(server.threads_segment);
    L(server.threads_proxy); L(server.drain_timeout_s); L(server.max_body_bytes);
    S(log.level); S(log.target); L(log.access);
    L(store.timeout_ms); L(store.retry_ms); L(store.fallback_entries); L(store.fallback_bytes);
    S(auth.cookie);
    L(cors.allow_origin.n);
    for (size_t i = 0; i < a->cors.allow_origin.n; i++)
        S(cors.allow_origin.v[i]);
    L(cors.allow_credentials); L(cors.max_age_s);
    L(upstream.allow_private_networks); L(upstream.connect_timeout_ms);
    L(upstream.fetch_timeout_ms); L(upstream.low_speed_bytes); L(upstream.low_speed_time_s);
    L(upstream.max_redirects); L(upstream.buffer_bytes); L(upstream.max_fetch_bytes);
    S(upstream.user_agent);
    L(upstream.allow_networks.n);
    L(stream.allow_hosts.n); S(stream.offload); L(stream.sign_max_ttl_s);
    L(channels.n); S(channels_m3u); L(media.n);
#undef S
#undef L
    /* Every key of every provider's section. */
    for (size_t i = 0; mr_conf_sections[i]; i++) {
        const struct mr_conf_section *s = mr_conf_sections[i];
        const char *pa = mr_conf_settings(a, s), *pb = mr_conf_settings(b, s);
        if (!s->name)
            continue;
        assert_non_null(pa);
        assert_non_null(pb);
        for (const struct mr_conf_field *f = s->fields; f->key; f++) {
            switch (f->kind) {
            case MR_CONF_K_STRING:
                assert_string_equal(*(char *const *)(pa + f->off), *(char *const *)(pb + f->off));
                break;
            case MR_CONF_K_INT:
                assert_int_equal(*(const long *)(pa + f->off), *(const long *)(pb + f->off));
                break;
            case MR_CONF_K_BOOL:
                assert_int_equal(*(const bool *)(pa + f->off), *(const bool *)(pb + f->off));
                break;
            case MR_CONF_K_MAP:
                assert_int_equal(((const struct mr_conf_map *)(pa + f->off))->n,
                                 ((const struct mr_conf_map *)(pb + f->off))->n);
                break;
            default:
                break;
            }
        }
    }
}

static void test_shipped_with_secret_loads_defaults(void **state)
{
    struct json_object *doc = json_object_from_file(SHIPPED);
    struct mr_conf *shipped = NULL, *defaults;
    struct mr_buf err;
    const char *text;
    size_t len;
    int rc;

    (void)state;
    assert_non_null(doc);
    json_object_object_add(doc, "secret", json_object_new_string(SECRET));
    text = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PRETTY, &len);
    mr_buf_init(&err, 1 << 16);
    rc = mr_conf_load_string("shipped+secret", text, len, &shipped, &err);
    if (rc)
        print_message("%s", err.p);
    assert_int_equal(rc, MR_OK);
    mr_buf_free(&err);
    json_object_put(doc);

    /* The same values as a file that sets nothing but the secret. */
    defaults = load_ok("");
    assert_same_conf(shipped, defaults);

    /* A few defaults spelled out, against the design's key list. */
    assert_string_equal(shipped->redis, "unix:/run/mediarelay/redis.sock");
    assert_string_equal(shipped->key_prefix, "mr:");
    assert_string_equal(shipped->auth.cookie, "session");
    assert_int_equal(shipped->cors.allow_origin.n, 1);
    assert_string_equal(shipped->cors.allow_origin.v[0], "*");
    assert_false(shipped->upstream.allow_private_networks);
    assert_int_equal(shipped->upstream.connect_timeout_ms, 5000);
    assert_int_equal(shipped->stream.allow_hosts.n, 0);
    assert_int_equal(shipped->upstream.allow_networks.n, 0);
    assert_int_equal(shipped->stream.sign_max_ttl_s, 7 * 86400);
    assert_string_equal(PSTR(shipped, "direct", "mode"), "proxy");
    assert_string_equal(PSTR(shipped, "ytdlp", "path"), "yt-dlp");
    assert_int_equal(PINT(shipped, "ytdlp", "timeout_s"), 30);
    assert_string_equal(shipped->public_url, "");
    assert_string_equal(shipped->path, "shipped+secret");
    mr_conf_free(shipped);
    mr_conf_free(defaults);
}

/* ---- refused configurations -------------------------------------------- */

struct bad_case {
    const char *body;      /* inside {"secret": SECRET, ...} */
    const char *expect;    /* a line of the report contains this */
};

static const struct bad_case bad_cases[] = {
    /* unknown keys */
    { "\"upstrem\": {}", "upstrem: unknown key" },
    { "\"upstream\": {\"conect_timeout_ms\": 5}", "upstream.conect_timeout_ms: unknown key" },
    { "\"server\": {\"threads\": {\"workers\": 5}}", "server.threads.workers: unknown key" },
    { "\"providers\": {\"youtube\": {}}", "providers.youtube: unknown key" },
    { "\"media\": {\"x\": {\"provider\": \"direct\", \"source\": {\"url\": \"http://a/\"},"
      " \"titel\": \"t\"}}", "media.x.titel: unknown key" },
    /* wrong types */
    { "\"store\": {\"timeout_ms\": \"5\"}", "store.timeout_ms: expected an integer" },
    { "\"store\": {\"timeout_ms\": 1.5}", "store.timeout_ms: expected an integer" },
    { "\"key_prefix\": 5", "key_prefix: expected a string" },
    { "\"admin_token\": null", "admin_token: expected a string" },
    { "\"log\": {\"access\": {}}", "log.access: expected true or false" },
    { "\"upstream\": {\"allow_private_networks\": \"yes\"}",
      "upstream.allow_private_networks: expected true or false" },
    { "\"cors\": {\"allow_origin\": [\"http://a.example\", 5]}", "cors.allow_origin: item 1" },
    { "\"cors\": {\"allow_origin\": 5}", "cors.allow_origin: expected a string or an array" },
    { "\"upstream\": 5", "upstream: expected an object" },
    { "\"server\": {\"threads\": []}", "server.threads: expected an object" },
    { "\"media\": []", "media: expected an object" },
    { "\"media\": {\"x\": 5}", "media.x: expected an object" },
    { "\"media\": {\"x\": {\"provider\": \"direct\", \"source\": \"http://x/\"}}",
      "media.x.source: expected an object" },
    { "\"channels\": {\"c\": {\"url\": \"http://a/\", \"headers\": []}}", "channels.c.headers" },
    { "\"channels\": {\"c\": {\"url\": \"http://a/\", \"headers\": {\"X-A\": 5}}}",
      "channels.c.headers.X-A: expected a string" },
    { "\"log\": {\"_doc\": 5}", "log._doc: expected a string" },
    /* bad values */
    { "\"server\": {\"threads\": {\"proxy\": 0}}", "server.threads.proxy: must be between 1 and 1024" },
    { "\"server\": {\"threads\": {\"proxy\": 1025}}", "server.threads.proxy: must be between" },
    { "\"upstream\": {\"max_redirects\": 21}", "upstream.max_redirects: must be between 0 and 20" },
    { "\"store\": {\"retry_ms\": -1}", "store.retry_ms: must be between" },
    { "\"store\": {\"fallback_bytes\": 9223372036854775807}", "store.fallback_bytes: must be between" },
    { "\"log\": {\"level\": \"loud\"}", "log.level: \"loud\" is not one of: debug, info, warn, error" },
    { "\"log\": {\"target\": \"file\"}", "log.target" },
    { "\"stream\": {\"offload\": \"apache\"}", "stream.offload" },
    { "\"providers\": {\"alist\": {\"mode\": \"proxied\"}}", "providers.alist.mode" },
    { "\"admin_token\": \"a\\u0001b\"", "admin_token: control characters" },
    { "\"admin_token\": \"a\\u0000b\"", "admin_token: control characters" },
    { "\"channels\": {\"c\": {\"url\": \"http://a/\", \"headers\": {\"Bad Name\": \"x\"}}}",
      "channels.c.headers.Bad Name: not a valid header name" },
    { "\"channels\": {\"c\": {\"url\": \"http://a/\", \"headers\": {\"X-A\": \"a\\r\\nb\"}}}",
      "channels.c.headers.X-A: a control byte in the value" },
    { "\"channels\": {\"c\": {\"url\": \"http://a/\", \"headers\": {\"X-A\": \"a\\u0000b\"}}}",
      "channels.c.headers.X-A: a control byte in the value" },
    { "\"channels\": {\"c\": {\"url\": \"http://a/\", \"headers\": {\"X(A)\": \"v\"}}}",
      "channels.c.headers.X(A): not a valid header name" },
    /* ids and entries */
    { "\"media\": {\"bad id\": {\"provider\": \"direct\", \"source\": {\"url\": \"http://a/\"}}}",
      "media.bad id: ids are" },
    { "\"media\": {\"../x\": {\"provider\": \"direct\", \"source\": {\"url\": \"http://a/\"}}}",
      "media.../x: ids are" },
    { "\"channels\": {\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":"
      " {\"url\": \"http://a/\"}}", "ids are 1-64 characters" },
    { "\"channels\": {\"\": {\"url\": \"http://a/\"}}", "channels.: ids are" },
    { "\"media\": {\"x\": {\"source\": {\"url\": \"http://a/\"}}}", "media.x: \"provider\" is required" },
    { "\"media\": {\"x\": {\"provider\": \"direct\"}}", "media.x: \"source\" is required" },
    { "\"channels\": {\"c\": {\"name\": \"C\"}}", "channels.c: \"url\" is required" },
    { "\"providers\": {\"alist\": {\"instances\": {\"home\": {\"token\": \"t\"}}}}",
      "providers.alist.instances.home: \"url\" is required" },
    { "\"media\": {\"x\": {\"provider\": \"nope\", \"source\": {}}}",
      "media.x.provider: unknown provider \"nope\"" },
    { "\"media\": {\"x\": {\"provider\": \"direct\", \"source\": {}}}", "media.x.source.url" },
    { "\"media\": {\"x\": {\"provider\": \"direct\", \"source\": {\"url\": \"ftp://a/\"}}}",
      "media.x.source.url: must be an http(s) URL" },
    { "\"media\": {\"x\": {\"provider\": \"direct\", \"source\": {\"url\": \"http://a/\","
      " \"cookie\": \"c\"}}}", "media.x.source.cookie: unknown key" },
    { "\"channels\": {\"c\": {\"url\": \"ftp://a/x.m3u8\"}}", "channels.c.url: must be an http(s) URL" },
    { "\"channels\": {\"c\": {\"url\": \"/local/x.m3u8\"}}", "channels.c.url" },
    /* checks across fields */
    { "\"cors\": {\"allow_credentials\": true}",
      "cors.allow_credentials: needs an explicit allow_origin list" },
    { "\"cors\": {\"allow_credentials\": true, \"allow_origin\": [\"*\"]}",
      "cors.allow_credentials" },
    { "\"cors\": {\"allow_origin\": \"example.com\"}", "cors.allow_origin: \"example.com\"" },
    { "\"public_url\": \"ftp://relay.example\"", "public_url: must be an http(s) URL" },
    { "\"public_url\": \"https://relay.example/?x=1\"", "public_url" },
    { "\"redis\": \"localhost\"", "redis: expected" },
    { "\"upstream\": {\"allow_networks\": [\"10.0.0.0/33\"]}", "upstream.allow_networks: \"10.0.0.0/33\"" },
    { "\"upstream\": {\"allow_networks\": \"lan\"}", "upstream.allow_networks" },
    { "\"stream\": {\"allow_hosts\": [\"https://cdn.example.com\"]}", "stream.allow_hosts" },
    { "\"stream\": {\"allow_hosts\": [\"cdn.example.com/path\"]}", "stream.allow_hosts" },
    { "\"stream\": {\"sign_max_ttl_s\": 59}", "stream.sign_max_ttl_s: must be between" },
    { "\"key_prefix\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
      "key_prefix: must be at most 64 characters" },
    { "\"server\": {\"trusted_proxies\": [\"10.0.0.0/33\"]}",
      "server.trusted_proxies: \"10.0.0.0/33\" is not an address or CIDR block" },
    { "\"server\": {\"trusted_proxies\": \"cdn\"}", "server.trusted_proxies: \"cdn\"" },
    { "\"resolve\": {\"open_window_s\": 0}", "resolve.open_window_s: must be between 1 and" },
    { "\"resolve\": {\"open_max_items\": 0}", "resolve.open_max_items: must be between 1 and" },
    { "\"resolve\": {\"open_client_budget\": -1}", "resolve.open_client_budget: must be between" },
    { "\"providers\": {\"ytdlp\": {\"max_running\": 0}}",
      "providers.ytdlp.max_running: must be between 1 and 1024" },
    /* the providers' sections, each checked with its own table */
    { "\"providers\": {\"ytdlp\": {\"timeout_s\": 601}}",
      "providers.ytdlp.timeout_s: must be between 1 and 600" },
    { "\"providers\": {\"ytdlp\": {\"timeout_s\": \"30\"}}",
      "providers.ytdlp.timeout_s: expected an integer" },
    { "\"providers\": {\"bilibili\": {\"mode\": \"relay\"}}",
      "providers.bilibili.mode: \"relay\" is not one of: proxy, direct" },
    { "\"providers\": {\"direct\": {\"path\": \"x\"}}", "providers.direct.path: unknown key" },
    { "\"providers\": {\"channel\": []}", "providers.channel: expected an object" },
    { "\"providers\": []", "providers: expected an object" },
    { "\"providers\": {\"_doc\": 5}", "providers._doc: expected a string" },
    { "\"providers\": {\"alist\": {\"instances\": {\"a b\": {\"url\": \"http://a/\"}}}}",
      "providers.alist.instances.a b: ids are" },
    /* bearer tokens as long as the secret, or "" */
    { "\"admin_token\": \"x\"", "admin_token: must be at least 32 characters, or \"\"" },
    { "\"admin_token\": \"0123456789abcdef0123456789abcde\"", "admin_token: must be at least 32" },
    { "\"metrics_token\": \"prometheus\"", "metrics_token: must be at least 32 characters" },
    { "\"metrics_token\": 5", "metrics_token: expected a string" },
};

static void test_bad_configs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        char json[4096];
        struct mr_conf *c = (struct mr_conf *)1;
        struct mr_buf err;
        int rc;

        snprintf(json, sizeof(json), "{\"secret\": \"%s\", %s}", SECRET, bad_cases[i].body);
        rc = load(json, &c, &err);
        if (rc != MR_EINVAL || !err.p || !strstr(err.p, bad_cases[i].expect))
            print_message("case %zu: %s\n  rc %d, errors:\n%s", i, json, rc,
                          err.p ? err.p : "(none)");
        assert_int_equal(rc, MR_EINVAL);
        assert_null(c);
        assert_non_null(strstr(err.p, bad_cases[i].expect));
        /* Every line names a path (or the file) before ": ". */
        assert_non_null(strstr(err.p, ": "));
        mr_buf_free(&err);
    }
}

/* Documents that are not a configuration object at all. */
static void test_bad_documents(void **state)
{
    static const struct {
        const char *json;
        const char *expect;
    } cases[] = {
        { "{\n  \"a\": 1,,\n  \"b\": 2\n}\n", "t.json:2:" },
        { "{\"secret\": \"" SECRET "\"} x", "t.json:1:" },
        { "{\"secret\": \"" SECRET "\"}\n{}", "t.json:" },
        { "{\"a\": ", "t.json:1:" },
        { "", "t.json:1:1: invalid JSON" },
        { "{\"a\": 'x'}", "invalid JSON" },
        { "{\"a\": 1, }", "invalid JSON" },
        { "/* comment */ {}", "invalid JSON" },
        { "[1, 2]", "t.json: the configuration must be a JSON object" },
        { "\"text\"", "must be a JSON object" },
        { "42\n", "must be a JSON object" },
        { "42", "t.json:" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_conf *c = (struct mr_conf *)1;
        struct mr_buf err;
        int rc = load(cases[i].json, &c, &err);
        if (rc != MR_EINVAL || !err.p || !strstr(err.p, cases[i].expect))
            print_message("case %zu: %s\n  rc %d, errors:\n%s", i, cases[i].json, rc,
                          err.p ? err.p : "(none)");
        assert_int_equal(rc, MR_EINVAL);
        assert_null(c);
        assert_non_null(strstr(err.p, cases[i].expect));
        mr_buf_free(&err);
    }
}

/* A JSON null is valid JSON that is not an object: it is to be reported as
 * such, not as "trailing data" at a position past the end. */
static void test_null_document(void **state)
{
    struct mr_conf *c = (struct mr_conf *)1;
    struct mr_buf err;
    char got[256];
    int rc;

    (void)state;
    rc = load("null\n", &c, &err);
    snprintf(got, sizeof(got), "%s", err.p ? err.p : "");
    mr_buf_free(&err);     /* before any assertion: a failure must not leak */
    assert_int_equal(rc, MR_EINVAL);
    assert_null(c);
    if (!strstr(got, "must be a JSON object"))
        print_message("got: %s", got);
    assert_non_null(strstr(got, "t.json: the configuration must be a JSON object"));
}

/* file:line:col, with the column of the problem. */
static void test_invalid_json_position(void **state)
{
    const char *json = "{\n  \"secret\": \"" SECRET "\",\n  \"admin_token\": \"x\",,\n}\n";
    struct mr_conf *c;
    struct mr_buf err;
    unsigned line = 0, col = 0;

    (void)state;
    assert_int_equal(load(json, &c, &err), MR_EINVAL);
    assert_int_equal(sscanf(err.p, "t.json:%u:%u: invalid JSON", &line, &col), 2);
    assert_int_equal(line, 3);
    assert_true(col >= 21 && col <= 23);
    mr_buf_free(&err);
}

static void test_depth_limit(void **state)
{
    char json[256];
    size_t o = 0;
    struct mr_conf *c;
    struct mr_buf err;

    (void)state;
    /* 16 levels is the limit: the root object and 15 arrays are fine as
     * JSON (the key is then refused as unknown) ... */
    o += (size_t)snprintf(json + o, sizeof(json) - o, "{\"x\": ");
    for (int i = 0; i < MR_CONF_MAX_DEPTH - 1; i++)
        json[o++] = '[';
    for (int i = 0; i < MR_CONF_MAX_DEPTH - 1; i++)
        json[o++] = ']';
    snprintf(json + o, sizeof(json) - o, "}");
    assert_int_equal(load(json, &c, &err), MR_EINVAL);
    assert_non_null(strstr(err.p, "x: unknown key"));
    mr_buf_free(&err);

    /* ... one more is not JSON we read. */
    o = 0;
    o += (size_t)snprintf(json + o, sizeof(json) - o, "{\"x\": ");
    for (int i = 0; i < MR_CONF_MAX_DEPTH; i++)
        json[o++] = '[';
    for (int i = 0; i < MR_CONF_MAX_DEPTH; i++)
        json[o++] = ']';
    snprintf(json + o, sizeof(json) - o, "}");
    assert_int_equal(load(json, &c, &err), MR_EINVAL);
    assert_non_null(strstr(err.p, "t.json:1:"));
    assert_non_null(strstr(err.p, "invalid JSON"));
    mr_buf_free(&err);

    /* 40 levels of objects. */
    o = 0;
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(json + o, sizeof(json) - o, "{\"a\":");
    o += (size_t)snprintf(json + o, sizeof(json) - o, "1");
    for (int i = 0; i < 40; i++)
        json[o++] = '}';
    json[o] = '\0';
    assert_int_equal(load(json, &c, &err), MR_EINVAL);
    assert_non_null(strstr(err.p, "invalid JSON"));
    mr_buf_free(&err);
}

static void test_several_errors_together(void **state)
{
    const char *json =
        "{\"secret\": \"" SECRET "\", \"upstrem\": 1, \"log\": {\"level\": \"loud\","
        " \"access\": 1}, \"store\": {\"timeout_ms\": 0, \"x\": 1},"
        " \"media\": {\"a b\": {}}}";
    struct mr_conf *c;
    struct mr_buf err;

    (void)state;
    assert_int_equal(load(json, &c, &err), MR_EINVAL);
    if (count_lines(err.p) != 6)
        print_message("%s", err.p);
    assert_int_equal(count_lines(err.p), 6);
    assert_non_null(strstr(err.p, "upstrem: unknown key\n"));
    assert_non_null(strstr(err.p, "log.level: "));
    assert_non_null(strstr(err.p, "log.access: "));
    assert_non_null(strstr(err.p, "store.timeout_ms: "));
    assert_non_null(strstr(err.p, "store.x: unknown key\n"));
    assert_non_null(strstr(err.p, "media.a b: "));
    mr_buf_free(&err);

    /* Without an errors buffer the result is the same. */
    c = (struct mr_conf *)1;
    assert_int_equal(mr_conf_load_string("t", json, strlen(json), &c, NULL), MR_EINVAL);
    assert_null(c);
}

/* Past 50 problems the report says how many more there were. */
static void test_many_errors_capped(void **state)
{
    char json[8192];
    size_t o = 0;
    struct mr_conf *c;
    struct mr_buf err;

    (void)state;
    o += (size_t)snprintf(json + o, sizeof(json) - o, "{\"secret\": \"%s\"", SECRET);
    for (int i = 0; i < 60; i++)
        o += (size_t)snprintf(json + o, sizeof(json) - o, ", \"k%d\": 1", i);
    snprintf(json + o, sizeof(json) - o, "}");
    assert_int_equal(load(json, &c, &err), MR_EINVAL);
    assert_int_equal(count_lines(err.p), 51);
    assert_non_null(strstr(err.p, "... and 10 more\n"));
    mr_buf_free(&err);
}

/* ---- good configurations --------------------------------------------------- */

static void test_allow_origin_forms(void **state)
{
    struct mr_conf *c;

    (void)state;
    c = load_ok("\"cors\": {\"allow_origin\": \"https://a.example\"}");
    assert_int_equal(c->cors.allow_origin.n, 1);
    assert_string_equal(c->cors.allow_origin.v[0], "https://a.example");
    mr_conf_free(c);

    c = load_ok("\"cors\": {\"allow_origin\": [\"https://a.example\", \"http://b.example:8080\"],"
                " \"allow_credentials\": true, \"max_age_s\": 600}");
    assert_int_equal(c->cors.allow_origin.n, 2);
    assert_string_equal(c->cors.allow_origin.v[0], "https://a.example");
    assert_string_equal(c->cors.allow_origin.v[1], "http://b.example:8080");
    assert_true(c->cors.allow_credentials);
    assert_int_equal(c->cors.max_age_s, 600);
    mr_conf_free(c);

    c = load_ok("\"cors\": {\"allow_origin\": []}, \"stream\": {\"allow_hosts\": "
                "[\"cdn.example.com\", \"127.0.0.1:8081\"]}, \"upstream\": {\"allow_networks\": "
                "[\"10.1.2.0/24\", \"fd00::/8\", \"192.168.1.5\"]}");
    assert_int_equal(c->upstream.allow_networks.n, 3);
    assert_int_equal(c->cors.allow_origin.n, 0);
    assert_int_equal(c->stream.allow_hosts.n, 2);
    assert_string_equal(c->stream.allow_hosts.v[1], "127.0.0.1:8081");
    mr_conf_free(c);
}

/* Well-formed headers the upstream filter declines to send (what frames
 * the message or the connection, what the relay takes from the player, an
 * empty value) are left out of a channel's headers, not an error; the
 * others stay, in order. */
static void test_channel_headers_declined(void **state)
{
    struct mr_conf *c;
    const struct mr_conf_channel *ch;

    (void)state;
    c = load_ok("\"channels\": {\"c\": {\"url\": \"http://a/\", \"headers\": {"
                "\"Host\": \"evil.example\", \"Referer\": \"http://r/\", \"Content-Length\": \"5\","
                "\"transfer-encoding\": \"chunked\", \"Connection\": \"X-Smuggle\", \"TE\": \"t\","
                "\"Range\": \"bytes=0-\", \"If-None-Match\": \"*\", \"X-Empty\": \"\","
                "\"Cookie\": \"a=1\", \"Expect\": \"100-continue\", \"X-Tab\": \"a\\tb\"}}}");
    ch = mr_conf_channel_find(c, MR_STR("c"));
    assert_non_null(ch);
    assert_int_equal(ch->headers.n, 3);
    assert_string_equal(ch->headers.v[0].name, "Referer");
    assert_string_equal(ch->headers.v[1].name, "Cookie");
    assert_string_equal(ch->headers.v[2].name, "X-Tab");
    assert_string_equal(ch->headers.v[2].value, "a\tb");
    mr_conf_free(c);
}

static void test_values_and_maps(void **state)
{
    struct mr_conf *c;
    const struct mr_conf_channel *ch;
    const struct mr_conf_media *m;
    struct json_object *url;

    (void)state;
    c = load_ok(
        "\"_doc\": \"mine\", \"public_url\": \"https://relay.example/\","
        " \"admin_token\": \"" ADMIN "\", \"metrics_token\": \"" METRICS "\","
        " \"redis\": \"127.0.0.1:6379\", \"key_prefix\": \"x:\","
        " \"server\": {\"_doc\": \"s\", \"threads\": {\"proxy\": 3}, \"max_body_bytes\": 0},"
        " \"log\": {\"level\": \"debug\", \"access\": false},"
        " \"upstream\": {\"allow_private_networks\": true, \"user_agent\": \"UA/1\"},"
        " \"channels\": {\"_doc\": \"channels\", \"news\": {\"url\": \"http://tv.example/news.m3u8\","
        "   \"name\": \"News\", \"group\": \"G\", \"logo\": \"http://tv.example/l.png\","
        "   \"headers\": {\"Referer\": \"http://tv.example/\", \"User-Agent\": \"VLC\"}},"
        "   \"sport.hd\": {\"url\": \"https://tv.example/s.m3u8\"}},"
        " \"media\": {\"intro\": {\"provider\": \"direct\", \"source\": {\"url\":"
        "   \"http://cdn.example/intro.mp4\", \"headers\": {\"Referer\": \"http://r/\"}},"
        "   \"title\": \"Intro\", \"room\": \"r1\"},"
        "   \"open_1\": {\"provider\": \"direct\", \"source\": {\"url\": \"https://cdn.example/a.m3u8\"}}},"
        " \"providers\": {\"alist\": {\"mode\": \"direct\", \"instances\": {\"_doc\": \"d\","
        "   \"home\": {\"url\": \"http://alist:5244\", \"token\": \"t0k\"},"
        "   \"work\": {\"url\": \"https://alist.example\"}}},"
        "   \"ytdlp\": {\"timeout_s\": 600}}");

    assert_string_equal(c->public_url, "https://relay.example");   /* '/' dropped */
    assert_string_equal(c->admin_token, ADMIN);
    assert_string_equal(c->metrics_token, METRICS);
    assert_string_equal(c->redis, "127.0.0.1:6379");
    assert_string_equal(c->key_prefix, "x:");
    assert_int_equal(c->server.threads_proxy, 3);
    assert_int_equal(c->server.threads_resolve, 8);     /* untouched default */
    assert_int_equal(c->server.max_body_bytes, 0);
    assert_string_equal(c->log.level, "debug");
    assert_false(c->log.access);
    assert_true(c->upstream.allow_private_networks);
    assert_string_equal(c->upstream.user_agent, "UA/1");
    assert_int_equal(PINT(c, "ytdlp", "timeout_s"), 600);
    assert_string_equal(PSTR(c, "alist", "mode"), "direct");
    assert_string_equal(PSTR(c, "bilibili", "mode"), "proxy");

    assert_int_equal(c->channels.n, 2);
    ch = mr_conf_channel_find(c, MR_STR("news"));
    assert_non_null(ch);
    assert_string_equal(ch->id, "news");
    assert_string_equal(ch->url, "http://tv.example/news.m3u8");
    assert_string_equal(ch->name, "News");
    assert_string_equal(ch->group, "G");
    assert_string_equal(ch->logo, "http://tv.example/l.png");
    assert_int_equal(ch->headers.n, 2);
    assert_string_equal(ch->headers.v[0].name, "Referer");
    assert_string_equal(ch->headers.v[0].value, "http://tv.example/");
    assert_string_equal(ch->headers.v[1].name, "User-Agent");
    assert_string_equal(ch->headers.v[1].value, "VLC");
    ch = mr_conf_channel_find(c, MR_STR("sport.hd"));
    assert_non_null(ch);
    assert_null(ch->name);
    assert_int_equal(ch->headers.n, 0);
    assert_null(mr_conf_channel_find(c, MR_STR("new")));
    assert_null(mr_conf_channel_find(c, MR_STR("newsx")));
    assert_null(mr_conf_channel_find(c, MR_STR("intro")));
    assert_null(mr_conf_channel_find(c, (struct mr_str){ "news", 3 }));

    assert_int_equal(c->media.n, 2);
    m = mr_conf_media_find(c, MR_STR("intro"));
    assert_non_null(m);
    assert_string_equal(m->id, "intro");
    assert_string_equal(m->provider, "direct");
    assert_string_equal(m->title, "Intro");
    assert_string_equal(m->room, "r1");
    assert_non_null(m->source);
    assert_true(json_object_object_get_ex(m->source, "url", &url));
    assert_string_equal(json_object_get_string(url), "http://cdn.example/intro.mp4");
    m = mr_conf_media_find(c, MR_STR("open_1"));
    assert_non_null(m);
    assert_null(m->title);
    assert_null(m->room);
    assert_null(mr_conf_media_find(c, MR_STR("news")));
    assert_null(mr_conf_media_find(c, MR_STR("_doc")));
    assert_null(mr_conf_media_find(c, MR_STR("")));

    assert_int_equal(PMAP(c, "alist", "instances")->n, 2);
    assert_string_equal(entry_str(c, "alist", "instances", 0, "id"), "home");
    assert_string_equal(entry_str(c, "alist", "instances", 0, "url"), "http://alist:5244");
    assert_string_equal(entry_str(c, "alist", "instances", 0, "token"), "t0k");
    assert_string_equal(entry_str(c, "alist", "instances", 1, "id"), "work");
    assert_string_equal(entry_str(c, "alist", "instances", 1, "token"), "");  /* default */
    mr_conf_free(c);

    /* Empty maps and "redis": "" (no Redis). */
    c = load_ok("\"channels\": {}, \"media\": {}, \"redis\": \"\"");
    assert_int_equal(c->channels.n, 0);
    assert_int_equal(c->media.n, 0);
    assert_null(mr_conf_media_find(c, MR_STR("x")));
    assert_string_equal(c->redis, "");
    mr_conf_free(c);
    mr_conf_free(NULL);
}

static void test_id_ok(void **state)
{
    static const struct {
        const char *id;
        bool ok;
    } cases[] = {
        { "a", true }, { "A-z_0.9", true }, { "..", true }, { "", false }, { "a b", false },
        { "a/b", false }, { "a:b", false }, { "é", false }, { "a\n", false },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true },   /* 64 */
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },  /* 65 */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mr_conf_id_ok(cases[i].id) != cases[i].ok)
            print_message("case %zu: \"%s\"\n", i, cases[i].id);
        assert_int_equal(mr_conf_id_ok(cases[i].id), cases[i].ok);
    }
}

static void test_conf_path(void **state)
{
    char a0[] = "prog", a1[] = "--config", a2[] = "/x/a.json", a3[] = "--config=/y/b.json";
    char a4[] = "--listen", a5[] = "/s.sock", a6[] = "--config";
    char *argv_sep[] = { a0, a4, a5, a1, a2, NULL };
    char *argv_eq[] = { a0, a3, NULL };
    char *argv_none[] = { a0, a4, a5, NULL };
    char *argv_dangling[] = { a0, a6, NULL };

    (void)state;
    setenv("MEDIARELAY_CONFIG", "/env/c.json", 1);
    assert_string_equal(mr_conf_path(5, argv_sep), "/x/a.json");
    assert_string_equal(mr_conf_path(2, argv_eq), "/y/b.json");
    assert_string_equal(mr_conf_path(3, argv_none), "/env/c.json");
    assert_string_equal(mr_conf_path(2, argv_dangling), "/env/c.json");
    assert_string_equal(mr_conf_path(1, argv_sep), "/env/c.json");
    assert_string_equal(mr_conf_path(0, NULL), "/env/c.json");
    setenv("MEDIARELAY_CONFIG", "", 1);
    assert_string_equal(mr_conf_path(3, argv_none), MR_SYSCONFDIR "/mediarelay/mediarelay.json");
    unsetenv("MEDIARELAY_CONFIG");
    assert_string_equal(mr_conf_path(3, argv_none), MR_SYSCONFDIR "/mediarelay/mediarelay.json");
    assert_string_equal(mr_conf_path(5, argv_sep), "/x/a.json");
}

static void test_load_files(void **state)
{
    char dir[] = "/tmp/mr-unit-conf-XXXXXX", path[128];
    struct mr_conf *c = (struct mr_conf *)1;
    struct mr_buf err;
    FILE *f;
    int rc;

    (void)state;
    assert_non_null(mkdtemp(dir));

    /* Missing. */
    snprintf(path, sizeof(path), "%s/missing.json", dir);
    mr_buf_init(&err, 4096);
    assert_int_equal(mr_conf_load(path, &c, &err), MR_ENOTFOUND);
    assert_null(c);
    assert_non_null(strstr(err.p, path));
    mr_buf_free(&err);

    /* A good file. */
    snprintf(path, sizeof(path), "%s/good.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\n  \"secret\": \"%s\",\n  \"log\": {\"level\": \"warn\"}\n}\n", SECRET);
    fclose(f);
    mr_buf_init(&err, 4096);
    rc = mr_conf_load(path, &c, &err);
    assert_int_equal(rc, MR_OK);
    assert_string_equal(c->log.level, "warn");
    assert_string_equal(c->path, path);
    mr_conf_free(c);
    mr_buf_free(&err);

    /* A bad file is named in the error. */
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\n  \"secret\": \"%s\",\n  \"log\": {\"level\": \"warn\"},\n}\n", SECRET);
    fclose(f);
    mr_buf_init(&err, 4096);
    assert_int_equal(mr_conf_load(path, &c, &err), MR_EINVAL);
    assert_non_null(strstr(err.p, path));
    mr_buf_free(&err);
    unlink(path);

    /* Larger than 4 MiB: refused whatever it holds. */
    snprintf(path, sizeof(path), "%s/big.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputc('{', f);
    for (size_t i = 0; i < MR_CONF_MAX_BYTES; i++)
        fputc(' ', f);
    fputc('}', f);
    fclose(f);
    mr_buf_init(&err, 4096);
    c = (struct mr_conf *)1;
    assert_int_equal(mr_conf_load(path, &c, &err), MR_ETOOBIG);
    assert_null(c);
    assert_non_null(strstr(err.p, "larger than"));
    mr_buf_free(&err);
    unlink(path);

    /* A directory is not a file. */
    mr_buf_init(&err, 4096);
    assert_int_not_equal(mr_conf_load(dir, &c, &err), MR_OK);
    assert_null(c);
    mr_buf_free(&err);
    rmdir(dir);
}

static void write_file(const char *dir, const char *name, const char *body)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
}

/* secret_file: the file's one line is the secret, wherever it is; what
 * is wrong with it is said with the key's path. */
static void test_secret_file(void **state)
{
    char dir[] = "/tmp/mr-unit-secret-XXXXXX", path[128], body[512];
    struct mr_conf *c;
    struct mr_buf err;
    static const struct {
        const char *secret, *conf, *error;
    } bad[] = {
        { SECRET "\n", "{\"secret\": \"" SECRET "\", \"secret_file\": \"secret\"}", "not both" },
        { NULL, "{\"secret_file\": \"missing\"}", "cannot open" },
        { SECRET "\nsecond line\n", "{\"secret_file\": \"secret\"}", "more than one line" },
        { "short\n", "{\"secret_file\": \"secret\"}", "at least 32" },
        { "\n", "{\"secret_file\": \"secret\"}", "at least 32" },
    };

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/mediarelay.json", dir);

    /* A relative path from the configuration's directory; the newline
     * `openssl rand -hex 32 > FILE` leaves is not part of it. */
    write_file(dir, "secret", SECRET "\r\n");
    write_file(dir, "mediarelay.json", "{\"secret_file\": \"secret\"}");
    mr_buf_init(&err, 4096);
    assert_int_equal(mr_conf_load(path, &c, &err), MR_OK);
    assert_string_equal(c->secret, SECRET);
    mr_conf_free(c);
    mr_buf_free(&err);
    /* An absolute one. */
    snprintf(body, sizeof(body), "{\"secret_file\": \"%s/secret\"}", dir);
    write_file(dir, "mediarelay.json", body);
    mr_buf_init(&err, 4096);
    assert_int_equal(mr_conf_load(path, &c, &err), MR_OK);
    assert_string_equal(c->secret, SECRET);
    mr_conf_free(c);
    mr_buf_free(&err);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "%s/secret", dir);
        unlink(body);
        if (bad[i].secret)
            write_file(dir, "secret", bad[i].secret);
        write_file(dir, "mediarelay.json", bad[i].conf);
        mr_buf_init(&err, 4096);
        assert_int_not_equal(mr_conf_load(path, &c, &err), MR_OK);
        assert_null(c);
        assert_non_null(err.p);
        if (!strstr(err.p, bad[i].error) || !strstr(err.p, "secret"))
            fail_msg("case %zu: %s", i, err.p);
        mr_buf_free(&err);
    }
    /* A file too large to be a secret. */
    {
        char big[5000];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        write_file(dir, "secret", big);
        write_file(dir, "mediarelay.json", "{\"secret_file\": \"secret\"}");
        mr_buf_init(&err, 4096);
        assert_int_not_equal(mr_conf_load(path, &c, &err), MR_OK);
        assert_non_null(strstr(err.p, "larger than"));
        mr_buf_free(&err);
    }
    snprintf(body, sizeof(body), "%s/secret", dir);
    unlink(body);
    unlink(path);
    rmdir(dir);
}

static void test_load_string_too_big(void **state)
{
    size_t n = MR_CONF_MAX_BYTES + 1;
    char *big = malloc(n);
    struct mr_conf *c = (struct mr_conf *)1;
    struct mr_buf err;

    (void)state;
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    mr_buf_init(&err, 4096);
    assert_int_equal(mr_conf_load_string("big", big, n, &c, &err), MR_ETOOBIG);
    assert_null(c);
    assert_non_null(strstr(err.p, "big: larger than"));
    mr_buf_free(&err);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_documents_every_key),
        cmocka_unit_test(test_check_documented_finds_drift),
        cmocka_unit_test(test_shipped_refused_only_for_secret),
        cmocka_unit_test(test_shipped_with_secret_loads_defaults),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_null_document),
        cmocka_unit_test(test_invalid_json_position),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_several_errors_together),
        cmocka_unit_test(test_many_errors_capped),
        cmocka_unit_test(test_allow_origin_forms),
        cmocka_unit_test(test_values_and_maps),
        cmocka_unit_test(test_channel_headers_declined),
        cmocka_unit_test(test_id_ok),
        cmocka_unit_test(test_conf_path),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_load_string_too_big),
        cmocka_unit_test(test_secret_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
