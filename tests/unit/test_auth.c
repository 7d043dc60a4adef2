/* test_auth.c - the admin bearer token and room membership, with a store
 * that has no Redis and one with a real redis-server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "app/auth.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/lru.h"
#include "app/media.h"
#include "http/request.h"
#include "app/server.h"
#include "net/store.h"

#include "fixtures.h"

#define ADMIN "admin-token-0123456789abcdef0123456789"
#define METRICS "metrics-0123456789abcdef0123456789abcdef"

struct fx {
    struct test_fx t;
    struct mr_ctx ctx;
};

/* conf_body NULL: no configuration or store yet (the test makes them). */
static struct fx *fx_new(const char *conf_body)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_fx_init(&f->t, 64);
    if (conf_body)
        test_fx_store(&f->t, conf_body);
    return f;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    test_fx_free(&f->t);
    free(f);
    return 0;
}

/* A request with up to two extra params ("HTTP_AUTHORIZATION=...") as the
 * context's request. */
static void ctx_request(struct fx *f, const char *p1, const char *p2)
{
    char **params = mr_arena_calloc(&f->t.arena, 5, sizeof(char *));
    size_t n = 0;

    assert_non_null(params);
    params[n++] = mr_arena_strdup(&f->t.arena, "REQUEST_METHOD=GET");
    params[n++] = mr_arena_strdup(&f->t.arena, "REQUEST_URI=/api/media/x/source");
    if (p1)
        params[n++] = mr_arena_strdup(&f->t.arena, p1);
    if (p2)
        params[n++] = mr_arena_strdup(&f->t.arena, p2);
    memset(&f->ctx, 0, sizeof(f->ctx));
    f->ctx.conf = f->t.conf;
    f->ctx.arena = &f->t.arena;
    f->ctx.store = f->t.store;
    assert_int_equal(mr_request_parse(&f->ctx.req, &f->t.arena, params), MR_OK);
}

/* ---- admin -------------------------------------------------------------------- */

static void test_admin(void **state)
{
    static const struct {
        const char *auth;        /* NULL: no Authorization header */
        int rc;
    } cases[] = {
        { "HTTP_AUTHORIZATION=Bearer s3cret-admin-token-0123456789abcdef", MR_OK },
        { "HTTP_AUTHORIZATION=bearer s3cret-admin-token-0123456789abcdef", MR_OK },
        { "HTTP_AUTHORIZATION=BEARER s3cret-admin-token-0123456789abcdef", MR_OK },
        { "HTTP_AUTHORIZATION=Bearer   s3cret-admin-token-0123456789abcdef", MR_OK },
        { "HTTP_AUTHORIZATION=Bearer s3cret-admin-token-0123456789abcde", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer s3cret-admin-token-0123456789abcdefX", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer S3CRET-ADMIN-TOKEN-0123456789ABCDEF", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer s3cret-admin-token-0123456789abcdef ", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer ", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=s3cret-admin-token-0123456789abcdef", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Basic s3cret-admin-token-0123456789abcdef", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Token s3cret-admin-token-0123456789abcdef", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearers3cret-admin-token-0123456789abcdef", MR_EUNAUTHORIZED },
        { "HTTP_X_AUTHORIZATION=Bearer s3cret-admin-token-0123456789abcdef", MR_EUNAUTHORIZED },
        { "HTTP_COOKIE=admin_token=s3cret-admin-token-0123456789abcdef", MR_EUNAUTHORIZED },
        { NULL, MR_EUNAUTHORIZED },
    };
    struct fx *f = fx_new("\"admin_token\": \"s3cret-admin-token-0123456789abcdef\"");

    *state = f;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        ctx_request(f, cases[i].auth, NULL);
        rc = mr_auth_admin(&f->ctx);
        if (rc != cases[i].rc)
            print_message("case %zu (%s): rc %d\n", i, cases[i].auth, rc);
        assert_int_equal(rc, cases[i].rc);
    }
}

/* No admin_token configured: the admin endpoints are closed to everyone. */
static void test_admin_without_token(void **state)
{
    static const char *const auths[] = {
        "HTTP_AUTHORIZATION=Bearer ", "HTTP_AUTHORIZATION=Bearer", "HTTP_AUTHORIZATION=Bearer x",
        "HTTP_AUTHORIZATION=", NULL,
    };
    struct fx *f = fx_new("");

    *state = f;
    for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
        ctx_request(f, auths[i], NULL);
        assert_int_equal(mr_auth_admin(&f->ctx), MR_EUNAUTHORIZED);
    }
}

/* The counters' routes: the admin token or metrics_token; metrics_token
 * opens nothing else. */
static void test_metrics(void **state)
{
    static const struct {
        const char *auth;
        int metrics, admin;
    } cases[] = {
        { "HTTP_AUTHORIZATION=Bearer " ADMIN, MR_OK, MR_OK },
        { "HTTP_AUTHORIZATION=Bearer " METRICS, MR_OK, MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=bearer " METRICS, MR_OK, MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer " METRICS "x", MR_EUNAUTHORIZED, MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer metrics-0123456789abcdef0123456789abcde",
          MR_EUNAUTHORIZED, MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Basic " METRICS, MR_EUNAUTHORIZED, MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer ", MR_EUNAUTHORIZED, MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=", MR_EUNAUTHORIZED, MR_EUNAUTHORIZED },
        { NULL, MR_EUNAUTHORIZED, MR_EUNAUTHORIZED },
    };
    struct fx *f = fx_new("\"admin_token\": \"" ADMIN "\", "
                          "\"metrics_token\": \"" METRICS "\"");

    *state = f;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ctx_request(f, cases[i].auth, NULL);
        if (mr_auth_metrics(&f->ctx) != cases[i].metrics ||
            mr_auth_admin(&f->ctx) != cases[i].admin)
            print_message("case %zu (%s)\n", i, cases[i].auth);
        assert_int_equal(mr_auth_metrics(&f->ctx), cases[i].metrics);
        assert_int_equal(mr_auth_admin(&f->ctx), cases[i].admin);
    }
}

/* Without metrics_token only the admin token reads the counters; without
 * either, no one does (an empty Bearer never matches an empty token). */
static void test_metrics_without_token(void **state)
{
    struct fx *f = fx_new("\"admin_token\": \"" ADMIN "\"");

    *state = f;
    ctx_request(f, "HTTP_AUTHORIZATION=Bearer " ADMIN, NULL);
    assert_int_equal(mr_auth_metrics(&f->ctx), MR_OK);
    ctx_request(f, "HTTP_AUTHORIZATION=Bearer " METRICS, NULL);
    assert_int_equal(mr_auth_metrics(&f->ctx), MR_EUNAUTHORIZED);
    ctx_request(f, "HTTP_AUTHORIZATION=Bearer ", NULL);
    assert_int_equal(mr_auth_metrics(&f->ctx), MR_EUNAUTHORIZED);
    mr_conf_free(f->t.conf);
    mr_store_free(f->t.store);
    f->t.conf = test_conf_load("", "");
    f->t.store = mr_store_new(f->t.conf, f->t.lru);
    for (int i = 0; i < 3; i++) {
        ctx_request(f, i == 0 ? "HTTP_AUTHORIZATION=Bearer " : i == 1 ? "HTTP_AUTHORIZATION=Bearer"
                    : NULL, NULL);
        assert_int_equal(mr_auth_metrics(&f->ctx), MR_EUNAUTHORIZED);
    }
}

/* ---- rooms ---------------------------------------------------------------------- */

static void test_room_open_media(void **state)
{
    struct fx *f = fx_new("");
    struct mr_media m = { .id = "x", .provider = "direct" };

    *state = f;
    /* No room: anyone, no cookie needed, no Redis needed. */
    ctx_request(f, NULL, NULL);
    assert_int_equal(mr_auth_room(&f->ctx, &m), MR_OK);
    m.room = "";
    assert_int_equal(mr_auth_room(&f->ctx, &m), MR_OK);
}

/* Sessions live in Redis only: without it, a room cannot be checked. */
static void test_room_without_redis(void **state)
{
    struct fx *f = fx_new("");
    struct mr_media m = { .id = "x", .provider = "direct", .room = "r1" };

    *state = f;
    /* Even a session the fallback happens to hold is not trusted. */
    assert_int_equal(mr_store_set(f->t.store, "session:sid1", "alice", 5, 0), MR_OK);
    ctx_request(f, "HTTP_COOKIE=session=sid1", NULL);
    assert_int_equal(mr_auth_room(&f->ctx, &m), MR_EUNAVAILABLE);
    /* Without a cookie it is simply unauthenticated. */
    ctx_request(f, NULL, NULL);
    assert_int_equal(mr_auth_room(&f->ctx, &m), MR_EUNAUTHORIZED);
}

static void test_room_with_redis(void **state)
{
    static const struct {
        const char *cookie;      /* NULL: none */
        const char *room;
        int rc;
    } cases[] = {
        { "HTTP_COOKIE=session=sid-alice", "r1", MR_OK },
        { "HTTP_COOKIE=a=1; session=sid-alice; b=2", "r1", MR_OK },
        { "HTTP_COOKIE=session=\"sid-alice\"", "r1", MR_OK },
        { "HTTP_COOKIE=session=sid-bob", "r1", MR_EFORBIDDEN },      /* not a member */
        { "HTTP_COOKIE=session=sid-bob", "r2", MR_OK },
        { "HTTP_COOKIE=session=sid-alice", "r2", MR_EFORBIDDEN },
        { "HTTP_COOKIE=session=sid-alice", "empty-room", MR_EFORBIDDEN },
        { "HTTP_COOKIE=session=unknown", "r1", MR_EUNAUTHORIZED },
        { "HTTP_COOKIE=session=", "r1", MR_EUNAUTHORIZED },
        { "HTTP_COOKIE=sessionx=sid-alice", "r1", MR_EUNAUTHORIZED },
        { "HTTP_COOKIE=other=sid-alice", "r1", MR_EUNAUTHORIZED },
        { "HTTP_COOKIE=session=sid alice", "r1", MR_EUNAUTHORIZED },
        { "HTTP_AUTHORIZATION=Bearer sid-alice", "r1", MR_EUNAUTHORIZED },
        { NULL, "r1", MR_EUNAUTHORIZED },
    };
    struct fx *f = fx_new(NULL);
    char buf[128];
    redisContext *raw;

    *state = f;
    if (!test_fx_redis(&f->t))
        skip();
    test_fx_store(&f->t, "\"store\": {\"timeout_ms\": 300, \"retry_ms\": 100}");

    /* What the host application writes. */
    raw = f->t.raw;
    test_redis_cmd(raw, buf, sizeof(buf), "SET mr:session:sid-alice alice");
    test_redis_cmd(raw, buf, sizeof(buf), "SET mr:session:sid-bob bob");
    test_redis_cmd(raw, buf, sizeof(buf), "SADD mr:room:r1:members alice carol");
    test_redis_cmd(raw, buf, sizeof(buf), "SADD mr:room:r2:members bob");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_media m = { .id = "x", .provider = "direct", .room = cases[i].room };
        int rc;
        ctx_request(f, cases[i].cookie, NULL);
        rc = mr_auth_room(&f->ctx, &m);
        if (rc != cases[i].rc)
            print_message("case %zu (%s, %s): rc %d\n", i, cases[i].cookie, cases[i].room, rc);
        assert_int_equal(rc, cases[i].rc);
    }

    /* Redis goes away: a room cannot be checked, whoever asks. */
    test_redis_stop(&f->t.redis);
    {
        struct mr_media m = { .id = "x", .provider = "direct", .room = "r1" };
        ctx_request(f, "HTTP_COOKIE=session=sid-alice", NULL);
        assert_int_equal(mr_auth_room(&f->ctx, &m), MR_EUNAVAILABLE);
        ctx_request(f, "HTTP_COOKIE=session=unknown", NULL);
        assert_int_equal(mr_auth_room(&f->ctx, &m), MR_EUNAVAILABLE);
        /* Open media still play. */
        m.room = NULL;
        assert_int_equal(mr_auth_room(&f->ctx, &m), MR_OK);
    }
}

/* The cookie name and the key prefix come from conf. */
static void test_room_conf_names(void **state)
{
    struct fx *f = fx_new(NULL);
    struct mr_media m = { .id = "x", .provider = "direct", .room = "lobby" };
    char buf[128];
    redisContext *raw;

    *state = f;
    if (!test_fx_redis(&f->t))
        skip();
    test_fx_store(&f->t, "\"key_prefix\": \"app1:\", \"auth\": {\"cookie\": \"sid\"}");
    raw = f->t.raw;
    test_redis_cmd(raw, buf, sizeof(buf), "SET app1:session:abc dora");
    test_redis_cmd(raw, buf, sizeof(buf), "SADD app1:room:lobby:members dora");
    test_redis_cmd(raw, buf, sizeof(buf), "SET mr:session:abc mallory");

    ctx_request(f, "HTTP_COOKIE=sid=abc", NULL);
    assert_int_equal(mr_auth_room(&f->ctx, &m), MR_OK);
    ctx_request(f, "HTTP_COOKIE=session=abc", NULL);
    assert_int_equal(mr_auth_room(&f->ctx, &m), MR_EUNAUTHORIZED);
}

/* ---- the gate: mr_auth_room answered as JSON ------------------------------------ */

struct sink {
    char buf[4096];
    size_t len;
};

static int sink_write(void *arg, const void *p, size_t n)
{
    struct sink *k = arg;
    if (k->len + n >= sizeof(k->buf))
        return -1;
    memcpy(k->buf + k->len, p, n);
    k->len += n;
    k->buf[k->len] = '\0';
    return 0;
}

/* mr_auth_media on a request with `cookie` (or none): its return, and what
 * it answered ("" when nothing). */
static int gate(struct fx *f, const char *cookie, const char *room, struct sink *k)
{
    static struct mr_out out;
    struct mr_media m = { .id = "x", .provider = "direct", .room = room };

    memset(k, 0, sizeof(*k));
    out = (struct mr_out){ .write = sink_write, .arg = k };
    ctx_request(f, cookie, NULL);
    mr_resp_init(&f->ctx.resp, &f->t.arena, &out, false);
    return mr_auth_media(&f->ctx, &m);
}

static void test_media_gate(void **state)
{
    static const struct {
        const char *cookie;
        const char *room;
        int rc;
        const char *status;      /* the answer's status line, NULL: no answer */
        const char *code;
    } cases[] = {
        { "HTTP_COOKIE=session=sid-alice", "r1", MR_OK, NULL, NULL },
        { NULL, NULL, MR_OK, NULL, NULL },                      /* open media */
        { NULL, "r1", MR_EUNAUTHORIZED, "Status: 401", "\"code\":\"unauthorized\"" },
        { "HTTP_COOKIE=session=nobody", "r1", MR_EUNAUTHORIZED, "Status: 401",
          "\"code\":\"unauthorized\"" },
        { "HTTP_COOKIE=session=sid-bob", "r1", MR_EFORBIDDEN, "Status: 403",
          "\"code\":\"forbidden\"" },
    };
    struct fx *f = fx_new(NULL);
    char buf[128];
    redisContext *raw;
    struct sink k;

    *state = f;
    if (!test_fx_redis(&f->t))
        skip();
    test_fx_store(&f->t, "\"store\": {\"timeout_ms\": 300, \"retry_ms\": 100}");
    raw = f->t.raw;
    test_redis_cmd(raw, buf, sizeof(buf), "SET mr:session:sid-alice alice");
    test_redis_cmd(raw, buf, sizeof(buf), "SET mr:session:sid-bob bob");
    test_redis_cmd(raw, buf, sizeof(buf), "SADD mr:room:r1:members alice");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = gate(f, cases[i].cookie, cases[i].room, &k);
        if (rc != cases[i].rc)
            print_message("case %zu: rc %d, answered %s\n", i, rc, k.buf);
        assert_int_equal(rc, cases[i].rc);
        if (!cases[i].status) {
            assert_int_equal(k.len, 0);
            assert_false(f->ctx.resp.headers_sent);
            continue;
        }
        assert_true(f->ctx.resp.headers_sent);
        assert_non_null(strstr(k.buf, cases[i].status));
        assert_non_null(strstr(k.buf, "Content-Type: application/json"));
        assert_non_null(strstr(k.buf, cases[i].code));
    }

    /* Redis down: 503, and open media need nothing from it. */
    test_redis_stop(&f->t.redis);
    assert_int_equal(gate(f, "HTTP_COOKIE=session=sid-alice", "r1", &k), MR_EUNAVAILABLE);
    assert_non_null(strstr(k.buf, "Status: 503"));
    assert_non_null(strstr(k.buf, "\"code\":\"unavailable\""));
    assert_int_equal(gate(f, NULL, NULL, &k), MR_OK);
    assert_int_equal(k.len, 0);
}

static void test_sid_ok(void **state)
{
    static const struct {
        const char *sid;
        bool ok;
    } cases[] = {
        { "abc", true }, { "0123456789abcdef0123456789abcdef", true },
        { "a-b_c.d~e!f*g'h(i)j=k:l/m?n@o[p]q{r}s|t^u`v#w$x%y&z+0", true },
        { "", false }, { "a b", false }, { "a;b", false }, { "a,b", false },
        { "a\tb", false }, { "\x7f", false }, { "\xc3\xa9", false },
    };
    char big[258];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mr_auth_sid_ok(mr_str_c(cases[i].sid)) != cases[i].ok)
            print_message("case %zu\n", i);
        assert_int_equal(mr_auth_sid_ok(mr_str_c(cases[i].sid)), cases[i].ok);
    }
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_false(mr_auth_sid_ok(mr_str_c(big)));            /* 257 bytes */
    big[256] = '\0';
    assert_true(mr_auth_sid_ok(mr_str_c(big)));             /* 256 bytes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_admin, teardown),
        cmocka_unit_test_teardown(test_admin_without_token, teardown),
        cmocka_unit_test_teardown(test_metrics, teardown),
        cmocka_unit_test_teardown(test_metrics_without_token, teardown),
        cmocka_unit_test_teardown(test_room_open_media, teardown),
        cmocka_unit_test_teardown(test_room_without_redis, teardown),
        cmocka_unit_test_teardown(test_room_with_redis, teardown),
        cmocka_unit_test_teardown(test_room_conf_names, teardown),
        cmocka_unit_test_teardown(test_media_gate, teardown),
        cmocka_unit_test(test_sid_ok),
    };

    signal(SIGPIPE, SIG_IGN);
    mr_log_setup("test_auth", "error", "stderr");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
