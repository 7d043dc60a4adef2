/* test_media.c - media items from conf and from the store, their parsing,
 * and the direct provider. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/lru.h"
#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "net/store.h"

#define SECRET "0123456789abcdef0123456789abcdef"

struct fx {
    struct mr_conf *conf;
    struct mr_lru *lru;
    struct mr_store *store;
    struct mr_arena arena;
};

static int setup(void **state)
{
    static const char json[] =
        "{\"secret\": \"" SECRET "\", \"redis\": \"\","
        " \"media\": {"
        "  \"intro\": {\"provider\": \"direct\", \"title\": \"Intro\", \"room\": \"r1\","
        "    \"source\": {\"url\": \"http://cdn.example/intro.mp4\","
        "                 \"headers\": {\"Referer\": \"http://cdn.example/\"}}},"
        "  \"open\": {\"provider\": \"direct\", \"source\": {\"url\": \"https://cdn.example/a.m3u8\"}}"
        " }}";
    struct fx *f = calloc(1, sizeof(*f));
    struct mr_buf err;
    int rc;

    if (!f)
        return -1;
    mr_buf_init(&err, 4096);
    rc = mr_conf_load_string("t", json, strlen(json), &f->conf, &err);
    if (rc)
        print_message("%s", err.p);
    mr_buf_free(&err);
    if (rc)
        return -1;
    f->lru = mr_lru_new(64, 1 << 20);
    f->store = f->lru ? mr_store_new(f->conf, f->lru) : NULL;
    if (!f->store)
        return -1;
    mr_arena_init(&f->arena, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mr_store_free(f->store);
    mr_lru_free(f->lru);
    mr_conf_free(f->conf);
    mr_arena_free(&f->arena);
    free(f);
    return 0;
}

static const char *source_url(const struct mr_media *m)
{
    struct json_object *u;
    if (!m->source || !json_object_object_get_ex(m->source, "url", &u))
        return NULL;
    return json_object_get_string(u);
}

/* ---- mr_media_parse ------------------------------------------------------------ */

static void test_parse_good(void **state)
{
    static const struct {
        const char *json;
        const char *title;   /* NULL: none */
        const char *room;
        const char *url;
    } cases[] = {
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a.example/v.mp4\"},"
          "\"title\":\"T\",\"room\":\"r\"}", "T", "r", "http://a.example/v.mp4" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"https://a.example/v.m3u8\"}}",
          NULL, NULL, "https://a.example/v.m3u8" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\"},\"title\":null,"
          "\"room\":null}", NULL, NULL, "http://a/" },
        { " \n{\"source\":{\"url\":\"http://a/\",\"headers\":{\"Referer\":\"http://r/\","
          "\"User-Agent\":\"UA 1\"}},\"provider\":\"direct\"}\n ", NULL, NULL, "http://a/" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\",\"headers\":{}},"
          "\"other\":1}", NULL, NULL, "http://a/" },
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_media m;
        char why[256] = "";
        int rc = mr_media_parse(&f->arena, "id-1", mr_str_c(cases[i].json), &m, why,
                                sizeof(why));
        if (rc)
            print_message("case %zu: rc %d why %s\n", i, rc, why);
        assert_int_equal(rc, MR_OK);
        assert_string_equal(m.id, "id-1");
        assert_string_equal(m.provider, "direct");
        assert_false(m.from_conf);
        if (cases[i].title)
            assert_string_equal(m.title, cases[i].title);
        else
            assert_null(m.title);
        if (cases[i].room)
            assert_string_equal(m.room, cases[i].room);
        else
            assert_null(m.room);
        assert_string_equal(source_url(&m), cases[i].url);
    }
}

static void test_parse_bad(void **state)
{
    static const struct {
        const char *json;
        const char *why;       /* names the field */
    } cases[] = {
        { "", "not valid JSON" },
        { "not json", "not valid JSON" },
        { "{\"provider\":\"direct\"", "not valid JSON" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\"}} x", "not valid JSON" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\"}}{}", "not valid JSON" },
        { "[1,2]", "not a JSON object" },
        { "\"direct\"", "not a JSON object" },
        { "{}", "provider" },
        { "{\"source\":{\"url\":\"http://a/\"}}", "provider" },
        { "{\"provider\":\"nope\",\"source\":{\"url\":\"http://a/\"}}", "provider: unknown \"nope\"" },
        { "{\"provider\":5,\"source\":{\"url\":\"http://a/\"}}", "provider" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\"},\"title\":5}", "title" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\"},\"room\":[]}", "room" },
        { "{\"provider\":\"direct\"}", "source" },
        { "{\"provider\":\"direct\",\"source\":\"http://a/\"}", "source" },
        { "{\"provider\":\"direct\",\"source\":null}", "source" },
        { "{\"provider\":\"direct\",\"source\":{}}", "source.url" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":5}}", "source.url" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"ftp://a/x.mp4\"}}", "source.url" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"file:///etc/passwd\"}}", "source.url" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/b c\"}}", "source.url" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\\r\\nX: y\"}}", "source.url" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\",\"headers\":[]}}",
          "source.headers" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\",\"headers\":"
          "{\"Bad Name\":\"x\"}}}", "source.headers.Bad Name" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\",\"headers\":"
          "{\"X:Y\":\"x\"}}}", "source.headers.X:Y" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\",\"headers\":"
          "{\"X-A\":\"a\\r\\nInjected: 1\"}}}", "source.headers.X-A" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\",\"headers\":"
          "{\"X-A\":5}}}", "source.headers.X-A" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\",\"headers\":"
          "{\"\":\"x\"}}}", "source.headers" },
        { "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\",\"cookie\":\"c\"}}",
          "source.cookie" },
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_media m;
        char why[256] = "";
        int rc = mr_media_parse(&f->arena, "x", mr_str_c(cases[i].json), &m, why, sizeof(why));
        if (rc != MR_EINVAL || !strstr(why, cases[i].why))
            print_message("case %zu: %s\n  rc %d why \"%s\"\n", i, cases[i].json, rc, why);
        assert_int_equal(rc, MR_EINVAL);
        assert_non_null(strstr(why, cases[i].why));
    }
}

static void test_parse_limits(void **state)
{
    struct fx *f = *state;
    size_t n = MR_MEDIA_JSON_MAX + 1, o;
    char *big = malloc(n + 1);
    struct mr_media m;
    char why[256] = "";

    assert_non_null(big);
    /* Valid JSON, one byte too large. */
    o = (size_t)snprintf(big, n + 1, "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\"},"
                         "\"title\":\"");
    memset(big + o, 't', n - o - 2);
    big[n - 2] = '"';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_int_equal(mr_media_parse(&f->arena, "x", (struct mr_str){ big, n }, &m, why,
                                    sizeof(why)), MR_EINVAL);
    assert_non_null(strstr(why, "larger than"));
    /* At the limit it is fine. */
    memmove(big + o, big + o + 1, n - o - 1);
    assert_int_equal(mr_media_parse(&f->arena, "x", (struct mr_str){ big, n - 1 }, &m, why,
                                    sizeof(why)), MR_OK);
    assert_int_equal(strlen(m.title), n - o - 3);
    free(big);

    /* Nesting past the depth limit is not parsed. */
    {
        char deep[512];
        size_t k = 0;
        k += (size_t)snprintf(deep, sizeof(deep), "{\"provider\":\"direct\",\"x\":");
        for (int i = 0; i < 40; i++)
            deep[k++] = '[';
        for (int i = 0; i < 40; i++)
            deep[k++] = ']';
        k += (size_t)snprintf(deep + k, sizeof(deep) - k, "}");
        assert_int_equal(mr_media_parse(&f->arena, "x", (struct mr_str){ deep, k }, &m, why,
                                        sizeof(why)), MR_EINVAL);
        assert_non_null(strstr(why, "not valid JSON"));
    }
    /* A NUL inside is not JSON. */
    {
        static const char nul[] = "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a/\"}}\0x";
        assert_int_equal(mr_media_parse(&f->arena, "x", (struct mr_str){ nul, sizeof(nul) - 1 },
                                        &m, why, sizeof(why)), MR_EINVAL);
    }
}

/* ---- mr_media_get ---------------------------------------------------------------- */

static void test_get_from_conf(void **state)
{
    struct fx *f = *state;
    struct mr_media m;
    struct json_object *h, *ref;

    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("intro"), &m), MR_OK);
    assert_true(m.from_conf);
    assert_string_equal(m.id, "intro");
    assert_string_equal(m.provider, "direct");
    assert_string_equal(m.title, "Intro");
    assert_string_equal(m.room, "r1");
    assert_string_equal(source_url(&m), "http://cdn.example/intro.mp4");
    assert_true(json_object_object_get_ex(m.source, "headers", &h));
    assert_true(json_object_object_get_ex(h, "Referer", &ref));
    assert_string_equal(json_object_get_string(ref), "http://cdn.example/");

    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("open"), &m), MR_OK);
    assert_null(m.room);
    assert_null(m.title);

    /* The conf wins over the store. */
    {
        static const char other[] =
            "{\"provider\":\"direct\",\"source\":{\"url\":\"http://other/\"},\"title\":\"Other\"}";
        assert_int_equal(mr_store_set(f->store, "media:intro", other, sizeof(other) - 1, 0),
                         MR_OK);
        assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("intro"), &m), MR_OK);
        assert_true(m.from_conf);
        assert_string_equal(m.title, "Intro");
    }
}

static void test_get_not_found(void **state)
{
    static const struct mr_str ids[] = {
        { "nope", 4 },
        { "", 0 },
        { "../x", 4 },
        { "a b", 3 },
        { "a/b", 3 },
        { "intro/", 6 },
        { "intr", 4 },                  /* a prefix of a conf id */
        { "introx", 6 },
        { "INTRO", 5 },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 65 },
        { "in%74ro", 7 },
        { "x\r\nDEL y", 8 },
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        struct mr_media m;
        int rc = mr_media_get(f->conf, f->store, &f->arena, ids[i], &m);
        if (rc != MR_ENOTFOUND)
            print_message("case %zu: rc %d\n", i, rc);
        assert_int_equal(rc, MR_ENOTFOUND);
    }
}

/* An id holding a NUL byte is malformed, not the id up to the NUL. */
static void test_get_id_with_nul(void **state)
{
    static const char good[] =
        "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a.example/x.mp4\"}}";
    struct fx *f = *state;
    struct mr_media m;

    assert_int_equal(mr_store_set(f->store, "media:x2", good, sizeof(good) - 1, 0), MR_OK);
    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("x2"), &m), MR_OK);
    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, (struct mr_str){ "x2\0zz", 5 },
                                  &m), MR_ENOTFOUND);
}

static void test_get_from_store(void **state)
{
    static const char json[] =
        "{\"provider\":\"direct\",\"source\":{\"url\":\"https://s.example/v.mpd\","
        "\"headers\":{\"Referer\":\"https://s.example/\"}},\"title\":\"Stored\",\"room\":\"r9\"}";
    struct fx *f = *state;
    struct mr_media m;

    assert_int_equal(mr_store_set(f->store, "media:stored-1", json, sizeof(json) - 1, 0), MR_OK);
    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("stored-1"), &m), MR_OK);
    assert_false(m.from_conf);
    assert_string_equal(m.id, "stored-1");
    assert_string_equal(m.provider, "direct");
    assert_string_equal(m.title, "Stored");
    assert_string_equal(m.room, "r9");
    assert_string_equal(source_url(&m), "https://s.example/v.mpd");

    /* A 64-character id is a valid one. */
    {
        char id[65], key[80];
        memset(id, 'k', 64);
        id[64] = '\0';
        snprintf(key, sizeof(key), "media:%s", id);
        assert_int_equal(mr_store_set(f->store, key, json, sizeof(json) - 1, 0), MR_OK);
        assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, mr_str_c(id), &m), MR_OK);
        assert_string_equal(m.id, id);
    }
    /* Deleted: gone. */
    assert_int_equal(mr_store_del(f->store, "media:stored-1"), MR_OK);
    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("stored-1"), &m),
                     MR_ENOTFOUND);
}

static void test_get_unusable_store_entry(void **state)
{
    static const char *const bad[] = {
        "not json",
        "{\"provider\":\"nope\",\"source\":{}}",
        "{\"provider\":\"direct\",\"source\":{\"url\":\"ftp://a/\"}}",
        "[]",
        "",
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mr_media m;
        char key[32], id[16];
        snprintf(id, sizeof(id), "bad%zu", i);
        snprintf(key, sizeof(key), "media:%s", id);
        assert_int_equal(mr_store_set(f->store, key, bad[i], strlen(bad[i]), 0), MR_OK);
        assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, mr_str_c(id), &m),
                         MR_EINTERNAL);
    }
}

/* ---- providers ------------------------------------------------------------------ */

static void test_video_type(void **state)
{
    static const struct {
        const char *url;
        const char *type;     /* NULL: says nothing */
    } cases[] = {
        { "http://a/v.mp4", "mp4" },
        { "http://a/v.MP4", "mp4" },
        { "http://a/v.m4v", "mp4" },
        { "http://a/v.mov", "mp4" },
        { "http://a/live/index.m3u8", "hls" },
        { "http://a/list.m3u", "hls" },
        { "http://a/x.M3U8?token=abc.mp4", "hls" },
        { "http://a/manifest.mpd#t=10", "mpd" },
        { "http://a/v.flv", "flv" },
        { "http://a/v.webm", "webm" },
        { "http://a/v.mkv", "mkv" },
        { "http://a/seg-1.ts", "ts" },
        { "http://a/v.flv?x=a.mp4", "flv" },
        { "http://a/v", NULL },
        { "http://a/v.txt", NULL },
        { "http://a/v.mp4.txt", NULL },
        { "http://a/v.mp4/", NULL },
        { "http://a.mp4/", NULL },
        { "http://a.mp4/page", NULL },
        { "http://a/dir.mp4/file", NULL },
        { "http://a/v.", NULL },
        { "http://a/v.mp", NULL },
        { "http://a/v.mp44", NULL },
        { "http://a/?f=v.mp4", NULL },
        { "", NULL },
        { "v.mkv", "mkv" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = mr_video_type_from_url(cases[i].url);
        if ((t == NULL) != (cases[i].type == NULL) || (t && strcmp(t, cases[i].type)))
            print_message("case %zu: %s -> %s\n", i, cases[i].url, t ? t : "(null)");
        if (cases[i].type)
            assert_string_equal(t, cases[i].type);
        else
            assert_null(t);
    }
}

static void test_registry(void **state)
{
    const struct mr_provider *p = mr_provider_find("direct");
    size_t n = 0;

    (void)state;
    assert_non_null(p);
    assert_string_equal(p->name, "direct");
    assert_non_null(p->validate);
    assert_non_null(p->can_handle);
    assert_non_null(p->resolve);
    assert_null(mr_provider_find("nope"));
    assert_null(mr_provider_find("Direct"));
    assert_null(mr_provider_find(""));
    assert_null(mr_provider_find("direct "));
    for (const struct mr_provider *const *q = mr_providers; *q; q++) {
        assert_ptr_equal(mr_provider_find((*q)->name), *q);
        n++;
    }
    assert_true(n >= 1);
}

static void test_direct_validate(void **state)
{
    static const struct {
        const char *source;
        int rc;
        const char *field;
    } cases[] = {
        { "{\"url\":\"http://a/v.mp4\"}", MR_OK, "" },
        { "{\"url\":\"https://a/v.m3u8\",\"headers\":{\"Referer\":\"http://r/\"}}", MR_OK, "" },
        { "{}", MR_EINVAL, "url" },
        { "{\"url\":null}", MR_EINVAL, "url" },
        { "{\"url\":\"ftp://a/\"}", MR_EINVAL, "url" },
        { "{\"url\":\"//a/v.mp4\"}", MR_EINVAL, "url" },
        { "{\"url\":\"http://a/\\t\"}", MR_EINVAL, "url" },
        { "{\"url\":\"http://a/\",\"headers\":\"Referer: x\"}", MR_EINVAL, "headers" },
        { "{\"url\":\"http://a/\",\"headers\":{\"A B\":\"x\"}}", MR_EINVAL, "headers.A B" },
        { "{\"url\":\"http://a/\",\"headers\":{\"X\":\"a\\nb\"}}", MR_EINVAL, "headers.X" },
        { "{\"url\":\"http://a/\",\"extra\":1}", MR_EINVAL, "extra" },
        /* Well-formed headers the upstream filter declines to send are
         * accepted (an item stored with one keeps working) and left out
         * when it resolves (test_direct_resolve_declined). */
        { "{\"url\":\"http://a/\",\"headers\":{\"Host\":\"b\"}}", MR_OK, "" },
        { "{\"url\":\"http://a/\",\"headers\":{\"Content-Length\":\"5\","
          "\"transfer-encoding\":\"chunked\",\"Connection\":\"close\",\"Range\":\"bytes=0-\","
          "\"X\":\"\"}}", MR_OK, "" },
        /* Malformed ones are refused. */
        { "{\"url\":\"http://a/\",\"headers\":{\"X\":\"a\\u0000b\"}}", MR_EINVAL, "headers.X" },
        { "{\"url\":\"http://a/\",\"headers\":{\"X(1)\":\"v\"}}", MR_EINVAL, "headers.X(1)" },
        { "{\"url\":\"http://a/\",\"headers\":{\"Cookie\":\"a=1\",\"Authorization\":\"B x\","
          "\"User-Agent\":\"U\",\"Origin\":\"http://o\",\"X-Tab\":\"a\\tb\"}}", MR_OK, "" },
    };
    const struct mr_provider *p = mr_provider_find("direct");

    (void)state;
    assert_non_null(p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *src = json_tokener_parse(cases[i].source);
        char field[64] = "", msg[256] = "";
        int rc;

        assert_non_null(src);
        rc = p->validate(src, field, sizeof(field), msg, sizeof(msg));
        if (rc != cases[i].rc || strcmp(field, cases[i].field))
            print_message("case %zu: rc %d field \"%s\" msg \"%s\"\n", i, rc, field, msg);
        assert_int_equal(rc, cases[i].rc);
        assert_string_equal(field, cases[i].field);
        if (rc)
            assert_string_not_equal(msg, "");
        json_object_put(src);
    }
}

static void test_direct_can_handle(void **state)
{
    static const struct {
        const char *url;
        bool yes;
    } cases[] = {
        { "http://a/v.mp4", true },
        { "https://a/live.m3u8?t=1", true },
        { "https://a/m.mpd", true },
        { "http://a/page", false },
        { "http://a/page.html", false },
        { "ftp://a/v.mp4", false },
        { "file:///v.mp4", false },
        { "v.mp4", false },
        { "", false },
    };
    const struct mr_provider *p = mr_provider_find("direct");

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (p->can_handle(cases[i].url) != cases[i].yes)
            print_message("case %zu: %s\n", i, cases[i].url);
        assert_int_equal(p->can_handle(cases[i].url), cases[i].yes);
    }
}

/* A direct item's headers that the upstream filter declines are not in
 * its source's policy: what is there is what is sent. */
static void test_direct_resolve_declined(void **state)
{
    static const char json[] =
        "{\"provider\":\"direct\",\"source\":{\"url\":\"http://a.example/v.m3u8\",\"headers\":"
        "{\"Host\":\"evil.example\",\"Content-Length\":\"5\",\"Transfer-Encoding\":\"chunked\","
        "\"Referer\":\"http://r/\",\"Connection\":\"close\",\"Range\":\"bytes=0-\",\"X-Empty\":\"\","
        "\"Cookie\":\"a=1\"}}}";
    struct fx *f = *state;
    const struct mr_provider *p = mr_provider_find("direct");
    struct mr_ctx ctx;
    struct mr_media m;
    struct mr_source src;

    memset(&ctx, 0, sizeof(ctx));
    ctx.conf = f->conf;
    ctx.arena = &f->arena;
    ctx.store = f->store;
    assert_int_equal(mr_store_set(f->store, "media:declined", json, sizeof(json) - 1, 0), MR_OK);
    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("declined"), &m), MR_OK);
    assert_int_equal(p->resolve(&ctx, &m, &src), MR_OK);
    assert_int_equal(src.headers.n, 2);
    assert_string_equal(src.headers.v[0].name, "Referer");
    assert_string_equal(src.headers.v[1].name, "Cookie");
}

static void test_direct_resolve(void **state)
{
    struct fx *f = *state;
    const struct mr_provider *p = mr_provider_find("direct");
    struct mr_ctx ctx;
    struct mr_media m;
    struct mr_source src;

    memset(&ctx, 0, sizeof(ctx));
    ctx.conf = f->conf;
    ctx.arena = &f->arena;
    ctx.store = f->store;
    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("intro"), &m), MR_OK);
    assert_int_equal(p->resolve(&ctx, &m, &src), MR_OK);
    assert_string_equal(src.url, "http://cdn.example/intro.mp4");
    assert_string_equal(src.video_type, "mp4");
    assert_string_equal(src.title, "Intro");
    assert_int_equal(src.expire_at, 0);
    assert_int_equal(src.headers.n, 1);
    assert_string_equal(src.headers.v[0].name, "Referer");
    assert_string_equal(src.headers.v[0].value, "http://cdn.example/");

    assert_int_equal(mr_media_get(f->conf, f->store, &f->arena, MR_STR("open"), &m), MR_OK);
    assert_int_equal(p->resolve(&ctx, &m, &src), MR_OK);
    assert_string_equal(src.video_type, "hls");
    assert_int_equal(src.headers.n, 0);
    assert_null(src.title);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_parse_good),
        T(test_parse_bad),
        T(test_parse_limits),
        T(test_get_from_conf),
        T(test_get_not_found),
        T(test_get_id_with_nul),
        T(test_get_from_store),
        T(test_get_unusable_store_entry),
        cmocka_unit_test(test_video_type),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_direct_validate),
        cmocka_unit_test(test_direct_can_handle),
        T(test_direct_resolve),
        T(test_direct_resolve_declined),
    };
#undef T
    /* Unusable store entries are logged as errors: keep the output short. */
    mr_log_setup("test_media", "error", "stderr");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
