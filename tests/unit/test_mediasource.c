/* test_mediasource.c - the cache's JSON form of a source (round trip and
 * hostile input), the type sniffer, and ?t= picking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "core/arena.h"
#include "core/error.h"
#include "relay/mediasource.h"
#include "app/provider.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
