/* test_mediasource.c - the cache's JSON form of a source (round trip and
 * hostile input), the type sniffer, ?t= picking, and the mode of the answer
 * (the provider's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/lru.h"
#include "relay/mediasource.h"
#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "net/store.h"
#include "relay/resolver.h"

static void test_round_trip(void **state)
{
    struct mr_header h[2] = { { "Referer", "https://www.bilibili.com" }, { "Cookie", "a=b" } };
    struct mr_alt_source more[1] = { { "1080p HEVC", "https://c.example/h.mp4", "mp4" } };
    struct mr_subtitle subs[1] = { { "zh-CN", "https://c.example/s.vtt", "vtt" } };
    struct mr_source s = { .url = "https://c.example/v.mpd?deadline=1795000000",
                           .headers = { h, 2 }, .video_type = "mpd",
                           .expire_at = 1795000000, .title = "T \"q\"", .duration = 12.5,
                           .thumbnail = "https://c.example/t.jpg", .more = more, .nmore = 1,
                           .subs = subs, .nsubs = 1, .inline_mpd = "<MPD/>" };
    struct json_object *o;
    struct mr_source back;
    struct mr_arena a;
    long long refresh;
    const char *text;

    (void)state;
    mr_arena_init(&a, 0);
    o = mr_source_to_json(&s, 1794999700);
    assert_non_null(o);
    text = json_object_to_json_string(o);
    assert_int_equal(mr_source_from_json(&a, text, strlen(text), &back, &refresh), MR_OK);
    assert_int_equal(refresh, 1794999700);
    assert_string_equal(back.url, s.url);
    assert_int_equal(back.headers.n, 2);
    assert_string_equal(back.headers.v[1].value, "a=b");
    assert_string_equal(back.video_type, "mpd");
    assert_int_equal((long long)back.expire_at, 1795000000);
    assert_string_equal(back.title, "T \"q\"");
    assert_true(back.duration == 12.5);
    assert_int_equal(back.nmore, 1);
    assert_string_equal(back.more[0].name, "1080p HEVC");
    assert_int_equal(back.nsubs, 1);
    assert_string_equal(back.subs[0].lang, "zh-CN");
    assert_string_equal(back.inline_mpd, "<MPD/>");
    json_object_put(o);
    /* Hostile or broken cache entries are refused, never half-read. */
    assert_int_equal(mr_source_from_json(&a, "{", 1, &back, &refresh), MR_EINVAL);
    assert_int_equal(mr_source_from_json(&a, "[1]", 3, &back, &refresh), MR_EINVAL);
    assert_int_equal(mr_source_from_json(&a, "{\"url\":5}", 9, &back, &refresh), MR_EINVAL);
    text = "{\"url\":\"x\",\"headers\":{\"a\":1},\"more_sources\":[1,{\"name\":2}]}";
    assert_int_equal(mr_source_from_json(&a, text, strlen(text), &back, &refresh), MR_OK);
    assert_int_equal(back.headers.n, 0);
    assert_int_equal(back.nmore, 0);
    mr_arena_free(&a);
}

static void test_sniff(void **state)
{
    static const unsigned char ts[376] = { 0x47, [188] = 0x47 };
    (void)state;
    assert_string_equal(mr_sniff_type("application/vnd.apple.mpegurl; charset=utf-8", NULL, 0),
                        "hls");
    assert_string_equal(mr_sniff_type("Application/Dash+XML", NULL, 0), "mpd");
    assert_string_equal(mr_sniff_type("application/octet-stream", "#EXTM3U\n", 8), "hls");
    assert_string_equal(mr_sniff_type(NULL, "\xEF\xBB\xBF#EXTM3U\n", 11), "hls");
    assert_string_equal(mr_sniff_type(NULL, "<?xml version=\"1.0\"?><MPD", 26), "mpd");
    assert_string_equal(mr_sniff_type(NULL, "FLV\x01", 4), "flv");
    assert_string_equal(mr_sniff_type(NULL, "\0\0\0\x18" "ftypisom", 12), "mp4");
    assert_string_equal(mr_sniff_type(NULL, "\x1A\x45\xDF\xA3....webm", 12), "webm");
    assert_string_equal(mr_sniff_type(NULL, "\x1A\x45\xDF\xA3....matroska", 16), "mkv");
    assert_string_equal(mr_sniff_type(NULL, ts, sizeof(ts)), "ts");
    assert_null(mr_sniff_type("text/html", "<html>", 6));
    assert_null(mr_sniff_type(NULL, "", 0));
    assert_null(mr_sniff_type(NULL, "FL", 2));
}

static void test_pick(void **state)
{
    struct mr_alt_source more[2] = { { "720p", "u720", "mp4" }, { NULL, "unnamed", "mp4" } };
    struct mr_subtitle subs[1] = { { "en", "usub", "vtt" } };
    struct mr_source s = { .url = "main", .video_type = "hls", .more = more, .nmore = 2,
                           .subs = subs, .nsubs = 1 };
    const char *url, *type;

    (void)state;
    assert_int_equal(mr_source_pick(&s, NULL, &url, &type), MR_OK);
    assert_string_equal(url, "main");
    assert_int_equal(mr_source_pick(&s, "720p", &url, &type), MR_OK);
    assert_string_equal(url, "u720");
    assert_int_equal(mr_source_pick(&s, "sub:en", &url, &type), MR_OK);
    assert_string_equal(type, "vtt");
    assert_int_equal(mr_source_pick(&s, "sub:fr", &url, &type), MR_ENOTFOUND);
    assert_int_equal(mr_source_pick(&s, "1080p", &url, &type), MR_ENOTFOUND);
}

/* ---- the mode: the provider's ------------------------------------------ */

static struct mr_conf *conf_with(const char *providers)
{
    char json[1024];
    struct mr_conf *c = NULL;
    struct mr_buf err;
    int n;

    n = snprintf(json, sizeof(json), "{\"secret\": \"0123456789abcdef0123456789abcdef\","
                 " \"redis\": \"\", \"public_url\": \"https://relay.example\","
                 " \"providers\": {%s}}", providers);
    assert_true(n > 0 && (size_t)n < sizeof(json));
    mr_buf_init(&err, 4096);
    if (mr_conf_load_string("t", json, (size_t)n, &c, &err))
        print_message("%s", err.p);
    mr_buf_free(&err);
    assert_non_null(c);
    return c;
}

/* Every provider owns its section: the same name, in the loader's list, with
 * its settings loaded. */
static void test_provider_sections(void **state)
{
    struct mr_conf *c = conf_with("");

    (void)state;
    for (const struct mr_provider *const *p = mr_providers; *p; p++) {
        bool listed = false;
        if (!(*p)->conf.name)
            continue;
        assert_string_equal((*p)->conf.name, (*p)->name);
        for (size_t i = 0; mr_conf_sections[i]; i++)
            listed |= mr_conf_sections[i] == &(*p)->conf;
        assert_true(listed);
        assert_non_null(mr_conf_settings(c, &(*p)->conf));
    }
    assert_null(mr_conf_settings(c, &(const struct mr_conf_section){ "x", NULL, 0 }));
    mr_conf_free(c);
}

/* providers.NAME.mode decides through the provider's own hook, and for its
 * items only. */
static void test_provider_direct_rule(void **state)
{
    static const char *const names[] = { "direct", "channel", "alist", "bilibili", "ytdlp" };

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char body[128];
        struct mr_conf *dflt = conf_with(""), *c;
        snprintf(body, sizeof(body), "\"%s\": {\"mode\": \"direct\"}", names[i]);
        c = conf_with(body);
        for (const struct mr_provider *const *p = mr_providers; *p; p++) {
            if ((*p)->own_files) {
                /* The relay's own files: neither relayed nor direct. */
                assert_null((*p)->direct);
                continue;
            }
            assert_non_null((*p)->direct);
            assert_false((*p)->direct(dflt));
            assert_int_equal((*p)->direct(c), !strcmp((*p)->name, names[i]));
        }
        mr_conf_free(c);
        mr_conf_free(dflt);
    }
}

/* GET /api/media/{id}/source's "mode" and "url" follow the provider's rule;
 * headers keep an item relayed whatever the mode. */
static void test_mediasource_mode(void **state)
{
    static const struct {
        const char *providers, *provider;
        bool headers;
        const char *mode, *url;
    } cases[] = {
        { "", "direct", false, "proxy", "https://relay.example/api/proxy/media/m1" },
        { "\"direct\": {\"mode\": \"direct\"}", "direct", false, "direct",
          "https://cdn.example/v.mp4" },
        { "\"direct\": {\"mode\": \"direct\"}", "direct", true, "proxy",
          "https://relay.example/api/proxy/media/m1" },
        { "\"direct\": {\"mode\": \"direct\"}", "ytdlp", false, "proxy",
          "https://relay.example/api/proxy/media/m1" },
        { "\"ytdlp\": {\"mode\": \"direct\"}", "ytdlp", false, "direct",
          "https://cdn.example/v.mp4" },
        { "\"ytdlp\": {\"mode\": \"direct\"}", "nope", false, "proxy",
          "https://relay.example/api/proxy/media/m1" },
    };
    struct mr_header h = { "Referer", "https://r.example/" };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_conf *c = conf_with(cases[i].providers);
        struct mr_lru *lru = mr_lru_new(16, 1 << 16);
        struct mr_store *store = mr_store_new(c, lru);
        struct mr_media m = { .id = "m1", .provider = cases[i].provider };
        struct mr_source src = { .url = "https://cdn.example/v.mp4", .video_type = "mp4" };
        struct json_object *o = NULL, *v;
        struct mr_arena a;
        struct mr_ctx ctx;

        assert_non_null(store);
        mr_arena_init(&a, 0);
        memset(&ctx, 0, sizeof(ctx));
        ctx.conf = c;
        ctx.arena = &a;
        ctx.store = store;
        if (cases[i].headers)
            src.headers = (struct mr_headers){ &h, 1 };
        assert_int_equal(mr_mediasource_json(&ctx, &m, &src, &o), MR_OK);
        assert_true(json_object_object_get_ex(o, "mode", &v));
        assert_string_equal(json_object_get_string(v), cases[i].mode);
        assert_true(json_object_object_get_ex(o, "url", &v));
        assert_string_equal(json_object_get_string(v), cases[i].url);
        mr_arena_free(&a);
        mr_store_free(store);
        mr_lru_free(lru);
        mr_conf_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_provider_sections),
        cmocka_unit_test(test_provider_direct_rule),
        cmocka_unit_test(test_mediasource_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
