/* test_dispatch.c - mr_server_dispatch on a route table of its own, with a
 * real redis-server behind the store: 404 and 405 (with Allow), the
 * preflight, MR_ROUTE_MEDIA loading the item (from the configuration and
 * from Redis) and checking its room, the admin and metrics tokens, and the
 * error answer of a handler that failed before answering.  No FastCGI
 * socket: the answer goes to a sink. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/lru.h"
#include "http/request.h"
#include "http/response.h"
#include "http/route.h"
#include "app/server.h"
#include "net/store.h"

#include "redis_helper.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define ADMIN "admin-token-0123456789abcdef0123"
#define METRICS "metrics-token-0123456789abcdef01"

struct fx {
    struct test_redis redis;
    struct mr_conf *conf;
    struct mr_lru *lru;
    struct mr_store *store;
    redisContext *raw;
    struct mr_arena arena;
    struct mr_process proc;
    struct mr_ctx ctx;
    struct mr_out out;
    char got[16384];
    size_t len;
};

/* What the handlers saw. */
static int calls;
static char media_seen[64];

static int answer(struct mr_ctx *ctx, const char *text)
{
    mr_resp_status(&ctx->resp, 200);
    if (mr_resp_header(&ctx->resp, "Content-Type", "text/plain") ||
        mr_resp_send_headers(&ctx->resp))
        return MR_ECLIENT;
    return mr_resp_write(&ctx->resp, text, strlen(text)) ? MR_ECLIENT : MR_OK;
}

static int h_ok(struct mr_ctx *ctx)
{
    calls++;
    return answer(ctx, "ok");
}

static int h_media(struct mr_ctx *ctx)
{
    calls++;
    snprintf(media_seen, sizeof(media_seen), "%s", ctx->media ? ctx->media->id : "(none)");
    return answer(ctx, "media");
}

/* Fails before answering: dispatch answers with the error. */
static int h_fails(struct mr_ctx *ctx)
{
    (void)ctx;
    calls++;
    return MR_EINVAL;
}

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET | MR_POST, "/api/thing", h_ok, 0 },
    { MR_GET, "/api/media/{id}/source", h_media, MR_ROUTE_MEDIA },
    { MR_POST, "/api/admin/ping", h_ok, MR_ROUTE_ADMIN },
    { MR_DELETE, "/api/admin/media/{id}", h_media, MR_ROUTE_ADMIN | MR_ROUTE_MEDIA },
    { MR_GET, "/api/stats", h_ok, MR_ROUTE_METRICS },
    { MR_GET, "/api/fails", h_fails, 0 },
    { 0 },
};

static const struct mr_app app = { .name = "test", .routes = routes };

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
    if (!test_redis_installed())
        return 0;
    assert_int_equal(test_redis_start(&f->redis), 0);
    snprintf(json, sizeof(json),
             "{\"secret\": \"%s\", \"redis\": \"unix:%s\", \"admin_token\": \"%s\", "
             "\"metrics_token\": \"%s\", "
             "\"store\": {\"timeout_ms\": 1000, \"retry_ms\": 100}, "
             "\"media\": {\"conf-item\": {\"provider\": \"direct\", "
             "\"source\": {\"url\": \"http://media.test/a.mp4\"}}}}",
             SECRET, f->redis.sock, ADMIN, METRICS);
    mr_buf_init(&err, 4096);
    if (mr_conf_load_string("t", json, strlen(json), &f->conf, &err))
        print_message("%s", err.p);
    mr_buf_free(&err);
    assert_non_null(f->conf);
    assert_non_null(f->lru = mr_lru_new(64, 1 << 20));
    assert_non_null(f->store = mr_store_new(f->conf, f->lru));
    assert_non_null(f->raw = test_redis_connect(&f->redis));
    mr_arena_init(&f->arena, 0);
    f->proc.app = &app;
    f->proc.conf = f->conf;
    snprintf(f->proc.exe, sizeof(f->proc.exe), "mediarelay-test");
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (f->raw)
        redisFree(f->raw);
    mr_store_free(f->store);
    mr_conf_free(f->conf);
    mr_lru_free(f->lru);
    mr_arena_free(&f->arena);
    test_redis_cleanup(&f->redis);
    free(f);
    return 0;
}

/* Runs METHOD URI (with up to two more CGI params, "HTTP_X=v") through
 * the dispatch; the answer in f->got. */
static void run(struct fx *f, const char *method, const char *uri, const char *p1,
                const char *p2)
{
    char **params;
    int n = 0;

    mr_arena_reset(&f->arena);
    params = mr_arena_calloc(&f->arena, 5, sizeof(char *));
    assert_non_null(params);
    params[n++] = mr_arena_printf(&f->arena, "REQUEST_METHOD=%s", method);
    params[n++] = mr_arena_printf(&f->arena, "REQUEST_URI=%s", uri);
    if (p1)
        params[n++] = mr_arena_strdup(&f->arena, p1);
    if (p2)
        params[n++] = mr_arena_strdup(&f->arena, p2);
    memset(&f->ctx, 0, sizeof(f->ctx));
    f->ctx.proc = &f->proc;
    f->ctx.conf = f->conf;
    f->ctx.arena = &f->arena;
    f->ctx.store = f->store;
    assert_int_equal(mr_request_parse(&f->ctx.req, &f->arena, params), MR_OK);
    f->out = (struct mr_out){ .write = sink_write, .arg = f };
    mr_resp_init(&f->ctx.resp, &f->arena, &f->out, !strcmp(method, "HEAD"));
    f->len = 0;
    f->got[0] = '\0';
    calls = 0;
    media_seen[0] = '\0';
    mr_server_dispatch(&f->ctx);
}

static void assert_status(struct fx *f, int status)
{
    char want[32];

    snprintf(want, sizeof(want), "Status: %d", status);
    if (strncmp(f->got, want, strlen(want)))
        fail_msg("want %s, got:\n%s", want, f->got);
}

static void assert_has(struct fx *f, const char *text)
{
    if (!strstr(f->got, text))
        fail_msg("no \"%s\" in:\n%s", text, f->got);
}

static void test_not_found(void **state)
{
    struct fx *f = *state;

    if (!test_redis_installed())
        skip();
    run(f, "GET", "/api/nothing", NULL, NULL);
    assert_status(f, 404);
    assert_has(f, "application/json");
    assert_has(f, "no such endpoint");
    assert_int_equal(calls, 0);
    run(f, "OPTIONS", "/api/nothing", NULL, NULL);
    assert_status(f, 404);
}

static void test_method_not_allowed(void **state)
{
    struct fx *f = *state;

    if (!test_redis_installed())
        skip();
    run(f, "DELETE", "/api/thing", NULL, NULL);
    assert_status(f, 405);
    assert_has(f, "Allow: GET, HEAD, POST, OPTIONS\r\n");
    assert_int_equal(calls, 0);
    /* HEAD goes where GET does. */
    run(f, "HEAD", "/api/thing", NULL, NULL);
    assert_status(f, 200);
    assert_int_equal(calls, 1);
    run(f, "POST", "/api/thing", NULL, NULL);
    assert_status(f, 200);
    /* The preflight names the same methods and calls nothing. */
    run(f, "OPTIONS", "/api/thing", "HTTP_ORIGIN=https://app.test",
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD=POST");
    assert_status(f, 204);
    assert_has(f, "Allow: GET, HEAD, POST, OPTIONS\r\n");
    assert_int_equal(calls, 0);
}

static void test_handler_error_answered(void **state)
{
    struct fx *f = *state;

    if (!test_redis_installed())
        skip();
    run(f, "GET", "/api/fails", NULL, NULL);
    assert_int_equal(calls, 1);
    assert_status(f, 400);
    assert_has(f, "application/json");
    run(f, "GET", "/api/health", NULL, NULL);
    assert_status(f, 200);
    assert_has(f, "\"redis\":\"ok\"");
}

static void test_media_route(void **state)
{
    struct fx *f = *state;
    char buf[64];

    if (!test_redis_installed())
        skip();
    /* From the configuration. */
    run(f, "GET", "/api/media/conf-item/source", NULL, NULL);
    assert_status(f, 200);
    assert_string_equal(media_seen, "conf-item");
    /* Unknown, and malformed: 404, the handler never runs. */
    run(f, "GET", "/api/media/nope/source", NULL, NULL);
    assert_status(f, 404);
    assert_has(f, "no media item \\\"nope\\\"");
    assert_int_equal(calls, 0);
    run(f, "GET", "/api/media/%00bad/source", NULL, NULL);
    assert_true(!strncmp(f->got, "Status: 4", 9));
    assert_int_equal(calls, 0);
    /* From Redis. */
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %smedia:redis-item %s", f->conf->key_prefix,
                   "{\"provider\":\"direct\",\"source\":{\"url\":\"http://media.test/b.mp4\"}}");
    run(f, "GET", "/api/media/redis-item/source", NULL, NULL);
    assert_status(f, 200);
    assert_string_equal(media_seen, "redis-item");
    /* One that does not parse: an internal error, not a crash or a 200. */
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %smedia:broken {\"provider\":", f->conf->key_prefix);
    run(f, "GET", "/api/media/broken/source", NULL, NULL);
    assert_status(f, 500);
    assert_int_equal(calls, 0);
}

/* A room's item: a session of a member, else 401 (no session) or 403. */
static void test_media_room(void **state)
{
    struct fx *f = *state;
    const char *pre;
    char buf[64];

    if (!test_redis_installed())
        skip();
    pre = f->conf->key_prefix;
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %smedia:room-item %s", pre,
                   "{\"provider\":\"direct\",\"source\":{\"url\":\"http://media.test/c.mp4\"},"
                   "\"room\":\"r1\"}");
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %ssession:s-alice alice", pre);
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %ssession:s-bob bob", pre);
    test_redis_cmd(f->raw, buf, sizeof(buf), "SADD %sroom:r1:members alice", pre);
    run(f, "GET", "/api/media/room-item/source", NULL, NULL);
    assert_status(f, 401);
    assert_int_equal(calls, 0);
    run(f, "GET", "/api/media/room-item/source", "HTTP_COOKIE=session=s-nobody", NULL);
    assert_status(f, 401);
    run(f, "GET", "/api/media/room-item/source", "HTTP_COOKIE=session=s-bob", NULL);
    assert_status(f, 403);
    assert_int_equal(calls, 0);
    run(f, "GET", "/api/media/room-item/source", "HTTP_COOKIE=session=s-alice", NULL);
    assert_status(f, 200);
    assert_string_equal(media_seen, "room-item");
    /* The admin token manages it without a session. */
    run(f, "DELETE", "/api/admin/media/room-item", "HTTP_AUTHORIZATION=Bearer " ADMIN, NULL);
    assert_status(f, 200);
    assert_string_equal(media_seen, "room-item");
}

static void test_admin_and_metrics(void **state)
{
    struct fx *f = *state;

    if (!test_redis_installed())
        skip();
    run(f, "POST", "/api/admin/ping", NULL, NULL);
    assert_status(f, 401);
    assert_has(f, "WWW-Authenticate: Bearer\r\n");
    assert_int_equal(calls, 0);
    run(f, "POST", "/api/admin/ping", "HTTP_AUTHORIZATION=Bearer " METRICS, NULL);
    assert_status(f, 401);
    run(f, "POST", "/api/admin/ping", "HTTP_AUTHORIZATION=Bearer " ADMIN "x", NULL);
    assert_status(f, 401);
    assert_int_equal(calls, 0);
    run(f, "POST", "/api/admin/ping", "HTTP_AUTHORIZATION=Bearer " ADMIN, NULL);
    assert_status(f, 200);
    assert_int_equal(calls, 1);
    /* An admin route with a media item: the token first, then the item. */
    run(f, "DELETE", "/api/admin/media/nope", NULL, NULL);
    assert_status(f, 401);
    run(f, "DELETE", "/api/admin/media/nope", "HTTP_AUTHORIZATION=Bearer " ADMIN, NULL);
    assert_status(f, 404);
    assert_int_equal(calls, 0);
    /* Metrics: either token. */
    run(f, "GET", "/api/stats", NULL, NULL);
    assert_status(f, 401);
    run(f, "GET", "/api/stats", "HTTP_AUTHORIZATION=Bearer " METRICS, NULL);
    assert_status(f, 200);
    run(f, "GET", "/api/stats", "HTTP_AUTHORIZATION=Bearer " ADMIN, NULL);
    assert_status(f, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_handler_error_answered),
        cmocka_unit_test(test_media_route),
        cmocka_unit_test(test_media_room),
        cmocka_unit_test(test_admin_and_metrics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
