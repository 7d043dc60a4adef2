/* test_recovery.c - an upstream link found again after it died
 * (relay/recovery.h): mr_recover with the real alist provider asking an
 * in-test Alist whose raw_url is an HLS master on the same in-test origin
 * (origin_helper.h), signed with the resolution's number (?sign=N); the
 * links of a resolution die when the test says so.  A real redis-server
 * holds the URL cache and the reloc: memo.  Covered: a dead segment found
 * in a fresh resolution by its path and, renamed, at the ?v=/?n= position;
 * the memo that spares a second search; a link that is not found (the
 * upstream's status, the miss remembered, nothing else kept); made-up
 * hints (ignored, no key of their own); mr_probe_link telling a dead link
 * from a live one.  Time moves with the clock's offset; nothing sleeps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/lru.h"
#include "core/str.h"
#include "http/request.h"
#include "http/response.h"
#include "app/media.h"
#include "app/outcome.h"
#include "app/provider.h"
#include "app/server.h"
#include "net/store.h"
#include "net/upstream.h"
#include "relay/recovery.h"
#include "relay/resolver.h"
#include "relay/scope.h"

#include "origin_helper.h"
#include "redis_helper.h"

#define SECRET "0123456789abcdef0123456789abcdef"
/* resolve.again_min_s is 15: later than that, a dead link is resolved
 * again. */
#define PAST_AGAIN_MS (20 * 1000)
#define MSN0 100                        /* the playlists' first segment */
#define NSEG 5

struct fx {
    struct test_redis redis;
    struct test_origin origin;
    struct mr_conf *conf;
    struct mr_lru *lru;
    struct mr_store *store;
    struct mr_upstream *up;
    redisContext *raw;
    struct mr_arena arena;
    struct mr_media media;
    struct mr_scope sco;
    struct mr_ctx ctx;
    struct mr_out out;
    char got[16384];                    /* what mr_recover answered */
    size_t len;
    /* The origin: links signed below valid_from answer 403; with `rename`
     * a resolution's segments are named s{N}-{MSN}.ts, else seg-{MSN}.ts. */
    _Atomic int answered;               /* Alist answers: resolution N */
    _Atomic int valid_from;
    _Atomic bool rename;
    _Atomic int playlists;              /* playlists fetched */
    _Atomic int segments;               /* segments fetched */
    /* What try() was given and what it found. */
    int tries;
    char tried[512];                    /* the last URL */
    char body[256];                     /* the body of a live one */
};

static void send_status(int fd, int status)
{
    char head[160];

    snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
             status);
    test_origin_send_str(fd, head);
}

static void send_body(int fd, const char *type, const char *body)
{
    char head[256];

    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n", type, strlen(body));
    if (!test_origin_send_str(fd, head))
        test_origin_send_str(fd, body);
}

/* /api/fs/get: the Alist.  /hls/master.m3u8?sign=N: two variants,
 * /hls/vK/index.m3u8?sign=N.  /hls/vK/NAME.ts?sign=N: "vK/NAME.ts".
 * /probe/S: status S.  A sign below valid_from: 403. */
static void origin(struct test_origin *o, int fd, const char *method, const char *path,
                   const char *body)
{
    struct fx *f = o->arg;
    const char *q = strstr(path, "?sign=");
    char buf[2048], name[64];
    long v;
    int sign = -1, k, n;
    size_t len;

    (void)method;
    (void)body;
    /* "?sign=N" up to the end of the path or the next parameter. */
    if (q && mr_str_to_long((struct mr_str){ q + 6, strcspn(q + 6, "&") }, 0, INT_MAX, &v))
        sign = (int)v;
    if (!strcmp(path, "/api/fs/get")) {
        n = atomic_fetch_add(&f->answered, 1) + 1;
        snprintf(buf, sizeof(buf), "{\"code\":200,\"message\":\"success\",\"data\":"
                 "{\"name\":\"master.m3u8\",\"is_dir\":false,\"provider\":\"Local\","
                 "\"raw_url\":\"http://127.0.0.1:%d/hls/master.m3u8?sign=%d\"}}", o->port, n);
        send_body(fd, "application/json", buf);
        return;
    }
    if (!strncmp(path, "/probe/", 7)) {
        send_status(fd, mr_str_to_long(mr_str_c(path + 7), 100, 599, &v) ? (int)v : 400);
        return;
    }
    if (strncmp(path, "/hls/", 5) || !q) {
        send_status(fd, 404);
        return;
    }
    if (sign < atomic_load(&f->valid_from)) {
        send_status(fd, 403);
        return;
    }
    if (!strncmp(path, "/hls/master.m3u8?", 17)) {
        atomic_fetch_add(&f->playlists, 1);
        snprintf(buf, sizeof(buf), "#EXTM3U\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=800000\nv0/index.m3u8?sign=%d\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=1600000\nv1/index.m3u8?sign=%d\n", sign, sign);
        send_body(fd, "application/vnd.apple.mpegurl", buf);
        return;
    }
    if (sscanf(path, "/hls/v%d/", &k) == 1 && strstr(path, "/index.m3u8?")) {
        atomic_fetch_add(&f->playlists, 1);
        len = (size_t)snprintf(buf, sizeof(buf), "#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
                               "#EXT-X-MEDIA-SEQUENCE:%d\n", MSN0);
        for (n = MSN0; n < MSN0 + NSEG && len < sizeof(buf); n++) {
            if (atomic_load(&f->rename))
                snprintf(name, sizeof(name), "s%d-%d.ts", sign, n);
            else
                snprintf(name, sizeof(name), "seg-%d.ts", n);
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "#EXTINF:4,\n%s?sign=%d\n",
                                    name, sign);
        }
        send_body(fd, "application/vnd.apple.mpegurl", buf);
        return;
    }
    atomic_fetch_add(&f->segments, 1);
    len = strcspn(path + 5, "?");
    snprintf(buf, sizeof(buf), "%.*s", (int)len, path + 5);
    send_body(fd, "video/mp2t", buf);
}

static int sink_write(void *arg, const void *p, size_t n)
{
    struct fx *f = arg;

    if (n > sizeof(f->got) - 1 - f->len)
        return -1;
    memcpy(f->got + f->len, p, n);
    f->len += n;
    f->got[f->len] = '\0';
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char json[1024];
    struct mr_buf err;

    assert_non_null(f);
    *state = f;
    mr_clock_set_offset(0);
    if (!test_redis_installed())
        return 0;
    assert_int_equal(test_redis_start(&f->redis), 0);
    assert_int_equal(test_origin_start(&f->origin, origin, f), 0);
    snprintf(json, sizeof(json),
             "{\"secret\": \"%s\", \"redis\": \"unix:%s\", "
             "\"store\": {\"timeout_ms\": 2000, \"retry_ms\": 100}, "
             "\"upstream\": {\"allow_private_networks\": true}, "
             "\"resolve\": {\"default_ttl_s\": 600, \"again_min_s\": 15}, "
             "\"providers\": {\"alist\": {\"instances\": "
             "{\"a\": {\"url\": \"http://127.0.0.1:%d\"}}}}}",
             SECRET, f->redis.sock, f->origin.port);
    mr_buf_init(&err, 4096);
    if (mr_conf_load_string("t", json, strlen(json), &f->conf, &err))
        print_message("%s", err.p);
    mr_buf_free(&err);
    assert_non_null(f->conf);
    assert_non_null(f->lru = mr_lru_new(64, 1 << 20));
    assert_non_null(f->store = mr_store_new(f->conf, f->lru));
    assert_non_null(f->up = mr_upstream_new(f->conf));
    assert_non_null(f->raw = test_redis_connect(&f->redis));
    mr_arena_init(&f->arena, 0);
    f->media.id = "m1";
    f->media.provider = "alist";
    f->media.source = json_tokener_parse("{\"instance\": \"a\", \"path\": \"/master.m3u8\"}");
    assert_non_null(f->media.source);
    f->sco.media = &f->media;
    atomic_store(&f->valid_from, 1);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    mr_clock_set_offset(0);
    if (f->conf) {
        test_origin_release(&f->origin);
        test_origin_stop(&f->origin);
    }
    if (f->raw)
        redisFree(f->raw);
    json_object_put(f->media.source);
    mr_upstream_free(f->up);
    mr_store_free(f->store);
    mr_conf_free(f->conf);
    mr_lru_free(f->lru);
    mr_arena_free(&f->arena);
    test_redis_cleanup(&f->redis);
    free(f);
    return 0;
}

/* A fresh request for /api/seg/x.ts`query`, its answer going to f->got. */
static void request(struct fx *f, const char *query)
{
    char **params;

    mr_arena_reset(&f->arena);
    assert_non_null(params = mr_arena_calloc(&f->arena, 3, sizeof(char *)));
    params[0] = mr_arena_strdup(&f->arena, "REQUEST_METHOD=GET");
    params[1] = mr_arena_printf(&f->arena, "REQUEST_URI=/api/seg/x.ts%s", query);
    memset(&f->ctx, 0, sizeof(f->ctx));
    f->ctx.conf = f->conf;
    f->ctx.arena = &f->arena;
    f->ctx.store = f->store;
    f->ctx.up = f->up;
    assert_int_equal(mr_request_parse(&f->ctx.req, &f->arena, params), MR_OK);
    f->out = (struct mr_out){ .write = sink_write, .arg = f };
    mr_resp_init(&f->ctx.resp, &f->arena, &f->out, false);
    f->len = 0;
    f->got[0] = '\0';
}

/* The caller's try: fetches url; a dead link goes back (MR_LINK_DEAD), a
 * live one is the answer (its body kept). */
static int try_url(struct mr_ctx *ctx, void *arg, const char *url, bool expiry_back,
                   enum mr_outcome *out)
{
    struct fx *f = arg;
    struct mr_upstream_req req;
    struct mr_upstream_head head;
    struct mr_buf b;
    int rc;

    f->tries++;
    snprintf(f->tried, sizeof(f->tried), "%s", url);
    memset(&req, 0, sizeof(req));
    req.url = url;
    memset(&head, 0, sizeof(head));
    mr_buf_init(&b, 4096);
    rc = mr_upstream_fetch(ctx->up, ctx->arena, &req, &head, &b);
    ctx->upstream_status = head.status;
    if (!rc && expiry_back && (head.status == 401 || head.status == 403 ||
                               head.status == 404 || head.status == 410)) {
        mr_buf_free(&b);
        *out = MR_LINK_DEAD;
        return MR_OK;
    }
    snprintf(f->body, sizeof(f->body), "%s", b.len ? mr_buf_str(&b).p : "");
    mr_buf_free(&b);
    *out = MR_ANSWERED;
    return rc;
}

/* The origin's URL for `path` (arena). */
static const char *at(struct fx *f, const char *path)
{
    const char *u = mr_arena_printf(&f->arena, "http://127.0.0.1:%d%s", f->origin.port, path);
    assert_non_null(u);
    return u;
}

/* Resolution 1 made and cached; then, later than again_min_s, its links
 * die: a recovery must resolve again (resolution 2). */
static void links_die(struct fx *f)
{
    struct mr_source src;

    request(f, "");
    assert_int_equal(mr_resolve(&f->ctx, &f->media, &src), MR_OK);
    assert_string_equal(src.url, at(f, "/hls/master.m3u8?sign=1"));
    mr_clock_set_offset(PAST_AGAIN_MS);
    atomic_store(&f->valid_from, 2);
}

/* mr_recover after `old_path` (of the origin) answered 403, for a request
 * with `query`; the old URL in *old. */
static int recover(struct fx *f, const char *query, const char *old_path, const char **old)
{
    struct mr_headers policy = { 0 };
    char *u;

    request(f, query);
    assert_non_null(u = mr_arena_printf(&f->arena, "http://127.0.0.1:%d%s", f->origin.port,
                                        old_path));
    if (old)
        *old = u;
    f->ctx.upstream_status = 403;
    f->tries = 0;
    f->tried[0] = f->body[0] = '\0';
    return mr_recover(&f->ctx, &f->sco, u, true, false, &policy, try_url, f);
}

/* The reloc: key of `old` (no ?t=), and what Redis holds there ("" when
 * nothing) with its PTTL. */
static const char *memo(struct fx *f, const char *old, long *pttl)
{
    char h[33], *key, *what, buf[32];
    static char val[1024];

    assert_non_null(what = mr_arena_printf(&f->arena, "%s\n", old));
    mr_hash_hex(what, h);
    assert_non_null(key = mr_arena_printf(&f->arena, "%sreloc:m1:%s", f->conf->key_prefix, h));
    test_redis_cmd(f->raw, val, sizeof(val), "GET %s", key);
    if (pttl)
        *pttl = strtol(test_redis_cmd(f->raw, buf, sizeof(buf), "PTTL %s", key), NULL, 10);
    return val;
}

/* How many reloc: keys Redis holds. */
static long reloc_keys(struct fx *f)
{
    redisReply *r = redisCommand(f->raw, "KEYS %sreloc:*", f->conf->key_prefix);
    long n = r && r->type == REDIS_REPLY_ARRAY ? (long)r->elements : -1;

    if (r)
        freeReplyObject(r);
    return n;
}

static void assert_status(struct fx *f, int status)
{
    char want[32];

    snprintf(want, sizeof(want), "Status: %d", status);
    if (strncmp(f->got, want, strlen(want)))
        fail_msg("want %s, got:\n%s", want, f->got);
}

/* A dead segment is in the fresh resolution's variant ?v= names, by its
 * path (its sign changed); the new link is fetched and remembered. */
static void test_found_by_path(void **state)
{
    struct fx *f = *state;
    const char *old, *v;
    long pttl;

    if (!test_redis_installed())
        skip();
    links_die(f);
    assert_int_equal(recover(f, "?v=1&n=102", "/hls/v1/seg-102.ts?sign=1", &old), MR_OK);
    assert_string_equal(f->tried, at(f, "/hls/v1/seg-102.ts?sign=2"));
    assert_string_equal(f->body, "v1/seg-102.ts");
    assert_int_equal(atomic_load(&f->answered), 2);
    assert_int_equal(f->len, 0);                /* try() answered, not mr_recover */
    /* Remembered with the hints, while the new link lives. */
    v = memo(f, old, &pttl);
    assert_string_equal(v, mr_arena_printf(&f->arena, "1 102\n%s", f->tried));
    assert_true(pttl > 0 && pttl <= 600 * 1000);
}

/* A hint that names another variant (stale: the provider reordered its
 * renditions; or made up) never wins over the path: the segment of the
 * player's own rendition is found by its path in the other variant, not
 * the hinted variant's segment at the same position. */
static void test_path_before_hint(void **state)
{
    struct fx *f = *state;

    if (!test_redis_installed())
        skip();
    links_die(f);
    assert_int_equal(recover(f, "?v=0&n=102", "/hls/v1/seg-102.ts?sign=1", NULL), MR_OK);
    assert_string_equal(f->tried, at(f, "/hls/v1/seg-102.ts?sign=2"));
    assert_string_equal(f->body, "v1/seg-102.ts");
}

/* Segments renamed in the fresh resolution: found at the position the
 * hints give (the ?v= variant, the ?n= media sequence number). */
static void test_found_by_position(void **state)
{
    struct fx *f = *state;

    if (!test_redis_installed())
        skip();
    atomic_store(&f->rename, true);
    links_die(f);
    assert_int_equal(recover(f, "?v=1&n=103", "/hls/v1/s1-103.ts?sign=1", NULL), MR_OK);
    assert_string_equal(f->tried, at(f, "/hls/v1/s2-103.ts?sign=2"));
    assert_string_equal(f->body, "v1/s2-103.ts");
    /* The other variant, by its hint. */
    assert_int_equal(recover(f, "?v=0&n=100", "/hls/v0/s1-100.ts?sign=1", NULL), MR_OK);
    assert_string_equal(f->body, "v0/s2-100.ts");
}

/* A second request for the same dead link, with the same hints, takes
 * the memo: the new link at once, no resolution, no playlist.  One with
 * other hints does not take it. */
static void test_memo(void **state)
{
    struct fx *f = *state;
    int playlists, answered;

    if (!test_redis_installed())
        skip();
    links_die(f);
    assert_int_equal(recover(f, "?v=1&n=102", "/hls/v1/seg-102.ts?sign=1", NULL), MR_OK);
    playlists = atomic_load(&f->playlists);
    answered = atomic_load(&f->answered);
    assert_true(playlists >= 2);
    assert_int_equal(atomic_load(&f->segments), 1);

    assert_int_equal(recover(f, "?v=1&n=102", "/hls/v1/seg-102.ts?sign=1", NULL), MR_OK);
    assert_int_equal(f->tries, 1);
    assert_string_equal(f->body, "v1/seg-102.ts");
    assert_int_equal(atomic_load(&f->playlists), playlists);
    assert_int_equal(atomic_load(&f->answered), answered);
    assert_int_equal(atomic_load(&f->segments), 2);

    /* Other hints: a search of its own (in the cached resolution 2). */
    assert_int_equal(recover(f, "?v=1&n=103", "/hls/v1/seg-102.ts?sign=1", NULL), MR_OK);
    assert_string_equal(f->body, "v1/seg-102.ts");
    assert_true(atomic_load(&f->playlists) > playlists);
    assert_int_equal(atomic_load(&f->answered), answered);
}

/* A link that is in no fresh playlist: the upstream's status is the
 * answer, nothing is fetched in its place and only the miss is kept (for
 * 30 s): the next request gets the answer without a search. */
static void test_not_found(void **state)
{
    struct fx *f = *state;
    const char *old;
    int playlists, answered;
    long pttl;

    if (!test_redis_installed())
        skip();
    links_die(f);
    assert_int_equal(recover(f, "", "/hls/v1/gone-7.ts?sign=1", &old), MR_OK);
    assert_status(f, 403);
    assert_int_equal(f->ctx.upstream_status, 403);
    assert_int_equal(f->tries, 0);
    assert_int_equal(atomic_load(&f->segments), 0);
    assert_string_equal(memo(f, old, &pttl), "-1 -1\n-");
    assert_true(pttl > 0 && pttl <= 30000);
    assert_int_equal(reloc_keys(f), 1);

    playlists = atomic_load(&f->playlists);
    answered = atomic_load(&f->answered);
    assert_int_equal(recover(f, "", "/hls/v1/gone-7.ts?sign=1", NULL), MR_OK);
    assert_status(f, 403);
    assert_int_equal(atomic_load(&f->playlists), playlists);
    assert_int_equal(atomic_load(&f->answered), answered);

    /* Renamed segments and no hints: nothing says where it went. */
    atomic_store(&f->rename, true);
    assert_int_equal(recover(f, "", "/hls/v1/s1-102.ts?sign=1", NULL), MR_OK);
    assert_status(f, 403);
    assert_int_equal(f->tries, 0);
}

/* Hints no playlist can hold are no hints: the link is found by its path
 * as without them, and neither they nor others made up make a key. */
static void test_made_up_hints(void **state)
{
    struct fx *f = *state;
    static const struct { const char *q; long v; } vs[] = {
        { "?v=0", 0 }, { "?v=63", 63 }, { "?v=64", -1 }, { "?v=99999", -1 }, { "?v=-1", -1 },
        { "?v=1x", -1 }, { "?v=", -1 }, { "?v=%31", 1 }, { "?v=+1", -1 }, { "", -1 },
        { "?v=%zz", -1 },
    };
    const char *old;
    int playlists;

    if (!test_redis_installed())
        skip();
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        request(f, vs[i].q);
        if (mr_recovery_variant_hint(&f->ctx) != vs[i].v)
            fail_msg("%s: %ld, not %ld", vs[i].q, mr_recovery_variant_hint(&f->ctx), vs[i].v);
    }
    links_die(f);
    assert_int_equal(recover(f, "?v=99999&n=99999999999999999999", "/hls/v1/seg-102.ts?sign=1",
                             &old), MR_OK);
    assert_string_equal(f->body, "v1/seg-102.ts");
    assert_string_equal(memo(f, old, NULL), mr_arena_printf(&f->arena, "-1 -1\n%s", f->tried));
    assert_int_equal(reloc_keys(f), 1);
    /* Other made-up hints are the same no hints: the memo, no search. */
    playlists = atomic_load(&f->playlists);
    assert_int_equal(recover(f, "?v=abc&n=-5", "/hls/v1/seg-102.ts?sign=1", NULL), MR_OK);
    assert_string_equal(f->body, "v1/seg-102.ts");
    assert_int_equal(atomic_load(&f->playlists), playlists);
    assert_int_equal(reloc_keys(f), 1);
}

/* 401/403/404/410 is a dead link; anything else, failures included, is
 * not (the player's own requests meet those). */
static void test_probe(void **state)
{
    struct fx *f = *state;
    static const struct { int status; bool dead; } cases[] = {
        { 200, false }, { 206, false }, { 401, true }, { 403, true }, { 404, true },
        { 410, true }, { 400, false }, { 500, false }, { 503, false },
    };
    struct mr_headers none = { 0 };
    bool dead;

    if (!test_redis_installed())
        skip();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        request(f, "");
        dead = !cases[i].dead;
        assert_int_equal(mr_probe_link(&f->ctx, at(f, mr_arena_printf(&f->arena, "/probe/%d",
                                                                        cases[i].status)),
                                       &none, &dead), MR_OK);
        if (dead != cases[i].dead)
            fail_msg("%d: dead %d", cases[i].status, dead);
        assert_int_equal(f->ctx.upstream_status, cases[i].status);
    }
    /* Nothing listening: not dead either. */
    request(f, "");
    assert_int_equal(mr_probe_link(&f->ctx, mr_arena_printf(&f->arena, "http://127.0.0.1:%d/x",
                                                            test_free_port()),
                                   &none, &dead), MR_OK);
    assert_false(dead);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_found_by_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_before_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_found_by_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_made_up_hints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
