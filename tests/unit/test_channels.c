/* test_channels.c - M3U channel lists: names, groups, logos, VLC options and
 * Kodi headers in; ids; skipped entries; caps; the list written back out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "format/channels.h"
#include "core/error.h"
#include "core/limits.h"

static const char *header(const struct mr_conf_channel *ch, const char *name)
{
    for (size_t i = 0; i < ch->headers.n; i++)
        if (!strcmp(ch->headers.v[i].name, name))
            return ch->headers.v[i].value;
    return NULL;
}

static int parse(struct mr_arena *a, const char *text, struct mr_conf_channel **v, size_t *n,
                 size_t *skipped)
{
    return mr_channels_parse_m3u(a, text, strlen(text), NULL, 0, v, n, skipped);
}

static void test_entries(void **state)
{
    static const char list[] =
        "\xEF\xBB\xBF#EXTM3U x-tvg-url=\"http://epg.example/guide.xml\"\r\n"
        "#EXTINF:-1 tvg-id=\"news.us\" tvg-name=\"News\" tvg-logo=\"http://l.example/n.png\" "
        "group-title=\"News, World\",News HD, 24/7\r\n"
        "#EXTVLCOPT:http-referrer=https://tv.example/\r\n"
        "#EXTVLCOPT:http-user-agent=Mozilla/5.0 (X11)\r\n"
        "http://cdn.example/news/index.m3u8\r\n"
        "\n"
        "#EXTINF:-1 group-title=\"Sport\",Sport 1\n"
        "https://cdn.example/s1.m3u8?token=a|Referer=https%3A%2F%2Fs.example%2F&User-Agent=Kodi%2F20\n"
        "#EXTINF:-1,Music Box\n"
        "#EXTGRP:Music\n"
        "http://cdn.example/m.m3u8\n"
        "#EXTINF:-1 tvg-id=\"bad id!\",Sport 1\n"
        "http://cdn.example/s1b.m3u8\n"
        "#EXTINF:-1,\n"
        "http://cdn.example/anon.m3u8\n";
    struct mr_arena a;
    struct mr_conf_channel *v;
    size_t n, skipped;

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(parse(&a, list, &v, &n, &skipped), MR_OK);
    assert_int_equal(n, 5);
    assert_int_equal(skipped, 0);
    assert_string_equal(v[0].id, "news.us");
    assert_string_equal(v[0].name, "News HD, 24/7");
    assert_string_equal(v[0].group, "News, World");
    assert_string_equal(v[0].logo, "http://l.example/n.png");
    assert_string_equal(v[0].url, "http://cdn.example/news/index.m3u8");
    assert_string_equal(header(&v[0], "Referer"), "https://tv.example/");
    assert_string_equal(header(&v[0], "User-Agent"), "Mozilla/5.0 (X11)");
    assert_string_equal(v[1].id, "sport-1");
    assert_string_equal(v[1].url, "https://cdn.example/s1.m3u8?token=a");
    assert_string_equal(header(&v[1], "Referer"), "https://s.example/");
    assert_string_equal(header(&v[1], "User-Agent"), "Kodi/20");
    assert_string_equal(v[2].id, "music-box");
    assert_string_equal(v[2].group, "Music");
    assert_null(v[2].headers.v);
    assert_string_equal(v[3].id, "sport-1-2");       /* taken: a suffix */
    assert_string_equal(v[4].id, "ch5");             /* no name: by position */
    assert_null(v[4].name);
    mr_arena_free(&a);
}

/* A list's headers pass the upstream filter: what frames the message or
 * the connection, what carries a line break and what the relay takes from
 * the player are left out; the rest of the channel stays. */
static void test_headers_filtered(void **state)
{
    static const char list[] =
        "#EXTM3U\n"
        "#EXTINF:-1,One\n"
        "#EXTVLCOPT:http-referrer=https://tv.example/\n"
        "http://cdn.example/1.m3u8|Host=evil.example&Content-Length=5&Transfer-Encoding=chunked"
        "&Connection=close&Range=bytes%3D0-&X-Injected=a%0D%0AEvil%3A%201&X-Nul=a%00b"
        "&X-Empty=&X[1]=v&Cookie=sid%3D1&User-Agent=Kodi%2F20\n"
        "#EXTINF:-1,Two\n"
        "#EXTVLCOPT:http-user-agent=VLC\r\x01\n"
        "http://cdn.example/2.m3u8|TE=trailers&Expect=100-continue&Upgrade=h2c\n";
    static const char *const gone[] = {
        "Host", "Content-Length", "Transfer-Encoding", "Connection", "Range", "X-Injected",
        "X-Nul", "X-Empty", "X[1]", "TE", "Expect", "Upgrade", NULL
    };
    struct mr_arena a;
    struct mr_conf_channel *v;
    size_t n, skipped;

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(parse(&a, list, &v, &n, &skipped), MR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(skipped, 0);
    assert_int_equal(v[0].headers.n, 3);
    assert_string_equal(header(&v[0], "Referer"), "https://tv.example/");
    assert_string_equal(header(&v[0], "Cookie"), "sid=1");
    assert_string_equal(header(&v[0], "User-Agent"), "Kodi/20");
    for (size_t c = 0; c < 2; c++)
        for (const char *const *g = gone; *g; g++)
            for (size_t i = 0; i < v[c].headers.n; i++)
                assert_string_not_equal(v[c].headers.v[i].name, *g);
    assert_int_equal(v[1].headers.n, 0);        /* a control byte in the UA */
    assert_string_equal(v[1].url, "http://cdn.example/2.m3u8");
    mr_arena_free(&a);
}

static void test_skipped_and_refused(void **state)
{
    static const char list[] =
        "#EXTM3U\n"
        "#EXTINF:-1,File\nfile:///etc/passwd\n"
        "#EXTINF:-1,Rtmp\nrtmp://x.example/live\n"
        "#EXTINF:-1,Space\nhttp://x.example/a b.m3u8\n"
        "#EXTINF:-1,Bad header\nhttp://x.example/ok.m3u8|Bad Name=x&Referer=a%0Db&User-Agent=fine\n";
    struct mr_arena a;
    struct mr_conf_channel *v;
    size_t n, skipped;

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(parse(&a, list, &v, &n, &skipped), MR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(skipped, 3);
    assert_string_equal(v[0].id, "bad-header");
    assert_null(header(&v[0], "Referer"));          /* a CR in it */
    assert_null(header(&v[0], "Bad Name"));
    assert_string_equal(header(&v[0], "User-Agent"), "fine");
    assert_int_equal(parse(&a, "", &v, &n, &skipped), MR_EINVAL);
    assert_int_equal(parse(&a, "http://x.example/a.m3u8\n", &v, &n, &skipped), MR_EINVAL);
    assert_int_equal(parse(&a, "<html>\n#EXTM3U\n", &v, &n, &skipped), MR_EINVAL);
    assert_int_equal(parse(&a, "#EXTM3U", &v, &n, &skipped), MR_OK);
    assert_int_equal(n, 0);
    mr_arena_free(&a);
}

static void test_taken_ids_and_caps(void **state)
{
    struct mr_conf_channel conf[1] = { { .id = "news", .url = "http://a.example/x.m3u8" } };
    static const char list[] = "#EXTM3U\n#EXTINF:-1 tvg-id=\"news\",News\nhttp://b.example/n.m3u8\n";
    struct mr_arena a;
    struct mr_conf_channel *v;
    size_t n, skipped;
    char *big;

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(mr_channels_parse_m3u(&a, list, strlen(list), conf, 1, &v, &n, &skipped),
                     MR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "news-2");
    /* A line past the cap. */
    big = malloc(MR_M3U8_MAX_LINE + 64);
    assert_non_null(big);
    strcpy(big, "#EXTM3U\n#EXTINF:-1,");
    {
        size_t at = strlen(big);
        memset(big + at, 'x', MR_M3U8_MAX_LINE + 8);
        big[at + MR_M3U8_MAX_LINE + 8] = '\0';
    }
    assert_int_equal(mr_channels_parse_m3u(&a, big, strlen(big), NULL, 0, &v, &n, &skipped),
                     MR_ETOOBIG);
    free(big);
    /* Past the size cap: refused before a byte is read. */
    assert_int_equal(mr_channels_parse_m3u(&a, "#EXTM3U\n", MR_M3U_MAX_BYTES + 1, NULL, 0, &v,
                                           &n, &skipped), MR_ETOOBIG);
    mr_arena_free(&a);
}

static void test_many_ids(void **state)
{
    struct mr_arena a;
    struct mr_conf_channel *v;
    size_t n, skipped;
    char *list = malloc(3000 * 64 + 16), *p;

    (void)state;
    assert_non_null(list);
    p = list + sprintf(list, "#EXTM3U\n");
    for (int i = 0; i < 3000; i++)
        p += sprintf(p, "#EXTINF:-1,Same\nhttp://c.example/%d.m3u8\n", i);
    mr_arena_init(&a, 0);
    assert_int_equal(parse(&a, list, &v, &n, &skipped), MR_OK);
    assert_int_equal(n, 3000);
    assert_string_equal(v[0].id, "same");
    assert_string_equal(v[2999].id, "same-3000");
    mr_arena_free(&a);
    free(list);
}

static void test_write(void **state)
{
    struct mr_header h[1] = { { "Referer", "https://tv.example/" } };
    struct mr_conf_channel ch[2] = {
        { .id = "news", .url = "http://a.example/x.m3u8", .name = "News \"HD\"\r\nX",
          .group = "News", .logo = "http://l.example/n.png", .headers = { h, 1 } },
        { .id = "bare", .url = "http://a.example/y.m3u8" },
    };
    struct mr_conf c;
    struct mr_buf out;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.channels.items = ch;
    c.channels.n = 2;
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(mr_channels_write_m3u(&c, "https://relay.example", &out), MR_OK);
    assert_non_null(out.p);
    assert_string_equal(out.p,
        "#EXTM3U\n"
        "#EXTINF:-1 tvg-id=\"news\" tvg-name=\"News 'HD'  X\" tvg-logo=\"http://l.example/n.png\" "
        "group-title=\"News\",News \"HD\"  X\n"
        "https://relay.example/live/news.m3u8\n"
        "#EXTINF:-1 tvg-id=\"bare\",bare\n"
        "https://relay.example/live/bare.m3u8\n");
    mr_buf_cleanup(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_headers_filtered),
        cmocka_unit_test(test_skipped_and_refused),
        cmocka_unit_test(test_taken_ids_and_caps),
        cmocka_unit_test(test_many_ids),
        cmocka_unit_test(test_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
