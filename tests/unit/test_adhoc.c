/* test_adhoc.c - the bounds of anonymous /api/resolve: the client's
 * address behind trusted proxies, its budget (GCRA in Redis) and the
 * bounded set of ad-hoc items, with a real redis-server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/adhoc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/lru.h"
#include "http/request.h"
#include "app/server.h"
#include "net/store.h"

#include "fixtures.h"

struct fx {
    struct test_fx t;
    struct mr_ctx ctx;
};

/* A fixture; with_redis starts a private redis-server (the test skips
 * without one: then there is no store either). */
static struct fx *fx_new(const char *conf_body, bool with_redis)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    test_fx_init(&f->t, 64);
    if (with_redis && !test_fx_redis(&f->t))
        return f;
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

/* The context's request: REMOTE_ADDR (NULL: none) and X-Forwarded-For (NULL:
 * none). */
static void ctx_request(struct fx *f, const char *remote, const char *xff)
{
    char **params = mr_arena_calloc(&f->t.arena, 5, sizeof(char *));
    size_t n = 0;

    assert_non_null(params);
    params[n++] = mr_arena_strdup(&f->t.arena, "REQUEST_METHOD=GET");
    params[n++] = mr_arena_strdup(&f->t.arena, "REQUEST_URI=/api/resolve?url=x");
    if (remote)
        params[n++] = mr_arena_printf(&f->t.arena, "REMOTE_ADDR=%s", remote);
    if (xff)
        params[n++] = mr_arena_printf(&f->t.arena, "HTTP_X_FORWARDED_FOR=%s", xff);
    memset(&f->ctx, 0, sizeof(f->ctx));
    f->ctx.conf = f->t.conf;
    f->ctx.arena = &f->t.arena;
    f->ctx.store = f->t.store;
    assert_int_equal(mr_request_parse(&f->ctx.req, &f->t.arena, params), MR_OK);
}

static const char *client(struct fx *f, const char *remote, const char *xff)
{
    static char out[MR_ADHOC_CLIENT_MAX];
    ctx_request(f, remote, xff);
    mr_adhoc_client(&f->ctx, out, sizeof(out));
    return out;
}

/* ---- the client ------------------------------------------------------------ */

static void test_client_without_trusted_proxies(void **state)
{
    struct fx *f = fx_new("\"admin_token\": \"\"", false);

    *state = f;
    assert_string_equal(client(f, "192.0.2.7", NULL), "192.0.2.7");
    /* A client's own X-Forwarded-For is not believed. */
    assert_string_equal(client(f, "192.0.2.7", "198.51.100.1"), "192.0.2.7");
    assert_string_equal(client(f, "127.0.0.1", "198.51.100.1, 127.0.0.1"), "127.0.0.1");
    /* IPv6: the /64; v4-mapped: the IPv4 address. */
    assert_string_equal(client(f, "2001:db8:1:2:3:4:5:6", NULL), "2001:db8:1:2::/64");
    assert_string_equal(client(f, "2001:db8:1:2:ffff::1", NULL), "2001:db8:1:2::/64");
    assert_string_equal(client(f, "::ffff:192.0.2.9", NULL), "192.0.2.9");
    /* Nothing that parses. */
    assert_string_equal(client(f, NULL, NULL), "unknown");
    assert_string_equal(client(f, "", NULL), "unknown");
    assert_string_equal(client(f, "unix:", NULL), "unknown");
    assert_string_equal(client(f, "192.0.2.7:5555", NULL), "unknown");
}

static void test_client_behind_trusted_proxies(void **state)
{
    struct fx *f = fx_new("\"server\": {\"trusted_proxies\": [\"127.0.0.1\", \"10.0.0.0/8\","
                          " \"fd00::/8\"]}", false);

    *state = f;
    /* contrib/nginx appends $remote_addr itself; either way. */
    assert_string_equal(client(f, "127.0.0.1", "198.51.100.1, 127.0.0.1"), "198.51.100.1");
    assert_string_equal(client(f, "127.0.0.1", "198.51.100.1"), "198.51.100.1");
    /* Hops that are trusted are skipped; the first other one, from the
     * right, is the client, whatever the client wrote before it. */
    assert_string_equal(client(f, "127.0.0.1", "6.6.6.6, 198.51.100.2, 10.1.1.1, 10.2.2.2"),
                        "198.51.100.2");
    assert_string_equal(client(f, "127.0.0.1", " 198.51.100.3 ,\t10.1.1.1"), "198.51.100.3");
    assert_string_equal(client(f, "fd00::1", "2001:db8:9:9::1"), "2001:db8:9:9::/64");
    /* Everything trusted: the leftmost. */
    assert_string_equal(client(f, "127.0.0.1", "10.1.1.1, 10.2.2.2"), "10.1.1.1");
    /* No header: the proxy itself. */
    assert_string_equal(client(f, "127.0.0.1", NULL), "127.0.0.1");
    /* A malformed entry ends the walk at the last hop believed. */
    assert_string_equal(client(f, "127.0.0.1", "198.51.100.1, bogus, 10.1.1.1"), "10.1.1.1");
    assert_string_equal(client(f, "127.0.0.1", "198.51.100.1,"), "127.0.0.1");
    assert_string_equal(client(f, "127.0.0.1", ""), "127.0.0.1");
    assert_string_equal(client(f, "127.0.0.1", "198.51.100.1:443"), "127.0.0.1");
    /* An untrusted peer's header is not read at all. */
    assert_string_equal(client(f, "192.0.2.50", "198.51.100.1"), "192.0.2.50");
    /* At most MR_ADHOC_XFF_HOPS entries are looked at. */
    {
        char xff[1024] = "198.51.100.4";
        for (int i = 0; i < MR_ADHOC_XFF_HOPS + 4; i++)
            strncat(xff, ", 10.0.0.1", sizeof(xff) - strlen(xff) - 1);
        assert_string_equal(client(f, "127.0.0.1", xff), "10.0.0.1");
    }
}

/* ---- the budget ------------------------------------------------------------ */

static void test_budget(void **state)
{
    struct fx *f = fx_new("\"admin_token\": \"\"", true);
    char buf[64];
    long retry;

    *state = f;
    if (!f->t.store)
        skip();
    /* 3 at once, then one every 100 s (window 300 s). */
    for (int i = 0; i < 3; i++)
        assert_int_equal(mr_adhoc_spend(f->t.store, "192.0.2.1", 3, 300, &retry), MR_OK);
    assert_int_equal(mr_adhoc_spend(f->t.store, "192.0.2.1", 3, 300, &retry), MR_ELIMIT);
    assert_in_range(retry, 99, 100);
    assert_int_equal(mr_adhoc_spend(f->t.store, "192.0.2.1", 3, 300, &retry), MR_ELIMIT);
    /* Another client has its own. */
    assert_int_equal(mr_adhoc_spend(f->t.store, "2001:db8::/64", 3, 300, &retry), MR_OK);
    /* One key per client, expiring when the budget is whole again. */
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "PTTL mr:rl:open:192.0.2.1");
    assert_in_range(strtol(buf, NULL, 10), 250000, 300000);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "DBSIZE");
    assert_string_equal(buf, "2");
    /* As time passes, it comes back: the key moved 101 s back = one more. */
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "EVAL %s 1 mr:rl:open:192.0.2.1",
                   "redis.call('SET', KEYS[1], tonumber(redis.call('GET', KEYS[1])) - 101000)");
    assert_int_equal(mr_adhoc_spend(f->t.store, "192.0.2.1", 3, 300, &retry), MR_OK);
    assert_int_equal(mr_adhoc_spend(f->t.store, "192.0.2.1", 3, 300, &retry), MR_ELIMIT);
    /* A budget of 1 per second. */
    assert_int_equal(mr_adhoc_spend(f->t.store, "192.0.2.2", 1, 1, &retry), MR_OK);
    assert_int_equal(mr_adhoc_spend(f->t.store, "192.0.2.2", 1, 1, &retry), MR_ELIMIT);
    assert_int_equal(retry, 1);
}

static void test_budget_without_redis(void **state)
{
    struct fx *f = fx_new("\"admin_token\": \"\"", false);
    long retry = 7;
    bool cached = true, registered = true;

    *state = f;
    assert_int_equal(mr_adhoc_spend(f->t.store, "192.0.2.1", 3, 300, &retry), MR_EUNAVAILABLE);
    assert_int_equal(retry, 0);
    ctx_request(f, "192.0.2.1", NULL);
    assert_int_equal(mr_adhoc_cached(&f->ctx, "ytdlp", true, "u-1", &registered, &cached),
                     MR_EUNAVAILABLE);
    assert_false(cached);
    assert_false(registered);
    assert_int_equal(mr_adhoc_keep(f->t.store, "ytdlp", "u-1", true, 10, NULL), MR_EUNAVAILABLE);
}

/* ---- the set of anonymous items ---------------------------------------------- */

static void put_item(struct fx *f, const char *prov, const char *id)
{
    char buf[64];
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SET mr:media:%s {}", id);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SET mr:url:%s:%s {}", prov, id);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "HSET mr:stats:media:%s requests 1", id);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SADD mr:stats:index media:%s", id);
}

static bool exists(struct fx *f, const char *fmt, const char *id)
{
    char key[128], buf[64];
    snprintf(key, sizeof(key), fmt, id);
    return !strcmp(test_redis_cmd(f->t.raw, buf, sizeof(buf), "EXISTS %s", key), "1");
}

static void test_cached(void **state)
{
    struct fx *f = fx_new("\"admin_token\": \"\"", true);
    char buf[64];
    bool cached, reg;

    *state = f;
    if (!f->t.store)
        skip();
    ctx_request(f, "192.0.2.1", NULL);
    assert_int_equal(mr_adhoc_cached(&f->ctx, "ytdlp", true, "u-a", &reg, &cached), MR_OK);
    assert_false(reg);                                  /* not registered */
    assert_false(cached);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SET mr:media:u-a {}");
    assert_int_equal(mr_adhoc_cached(&f->ctx, "ytdlp", true, "u-a", &reg, &cached), MR_OK);
    assert_true(reg);
    assert_false(cached);                               /* not resolved */
    assert_int_equal(mr_adhoc_cached(&f->ctx, "direct", false, "u-a", &reg, &cached), MR_OK);
    assert_true(cached);                                /* nothing to resolve */
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SET mr:fail:url:ytdlp:u-a 3");
    assert_int_equal(mr_adhoc_cached(&f->ctx, "ytdlp", true, "u-a", &reg, &cached), MR_OK);
    assert_true(cached);                                /* a remembered failure */
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "DEL mr:fail:url:ytdlp:u-a");
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SET mr:url:ytdlp:u-a {}");
    assert_int_equal(mr_adhoc_cached(&f->ctx, "ytdlp", true, "u-a", &reg, &cached), MR_OK);
    assert_true(cached);
    /* A resolution without its item (it went) is not enough. */
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "DEL mr:media:u-a");
    assert_int_equal(mr_adhoc_cached(&f->ctx, "ytdlp", true, "u-a", &reg, &cached), MR_OK);
    assert_false(reg);
    assert_false(cached);
}

static void test_keep_evicts_the_least_recently_used(void **state)
{
    struct fx *f = fx_new("\"admin_token\": \"\"", true);
    char buf[64], id[16];
    size_t evicted;

    *state = f;
    if (!f->t.store)
        skip();
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "u-%d", i);
        put_item(f, "ytdlp", id);
        assert_int_equal(mr_adhoc_keep(f->t.store, "ytdlp", id, true, 3, &evicted), MR_OK);
        assert_int_equal(evicted, i < 3 ? 0 : 1);
        test_sleep_ms(3);   /* distinct scores (ms) */
    }
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZCARD mr:adhoc");
    assert_string_equal(buf, "3");
    /* u-0 and u-1 went, with their resolution and counters. */
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "u-%d", i);
        assert_int_equal(exists(f, "mr:media:%s", id), i >= 2);
        assert_int_equal(exists(f, "mr:url:ytdlp:%s", id), i >= 2);
        assert_int_equal(exists(f, "mr:stats:media:%s", id), i >= 2);
    }
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SISMEMBER mr:stats:index media:u-1");
    assert_string_equal(buf, "0");
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SISMEMBER mr:stats:index media:u-2");
    assert_string_equal(buf, "1");
    /* Using u-2 again makes u-3 the oldest. */
    assert_int_equal(mr_adhoc_keep(f->t.store, "ytdlp", "u-2", true, 3, &evicted), MR_OK);
    assert_int_equal(evicted, 0);
    test_sleep_ms(3);
    put_item(f, "direct", "u-5");
    assert_int_equal(mr_adhoc_keep(f->t.store, "direct", "u-5", true, 3, &evicted), MR_OK);
    assert_int_equal(evicted, 1);
    assert_false(exists(f, "mr:media:%s", "u-3"));
    assert_true(exists(f, "mr:media:%s", "u-2"));
    assert_true(exists(f, "mr:url:direct:%s", "u-5"));
    /* The admin's items are not added, only touched when there. */
    put_item(f, "ytdlp", "u-admin");
    assert_int_equal(mr_adhoc_keep(f->t.store, "ytdlp", "u-admin", false, 3, &evicted), MR_OK);
    assert_int_equal(evicted, 0);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZSCORE mr:adhoc ytdlp:u-admin");
    assert_string_equal(buf, "");
    /* The one kept now never goes, even among equal scores or max 1. */
    assert_int_equal(mr_adhoc_keep(f->t.store, "ytdlp", "u-4", true, 1, &evicted), MR_OK);
    assert_int_equal(evicted, 2);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZCARD mr:adhoc");
    assert_string_equal(buf, "1");
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZSCORE mr:adhoc ytdlp:u-4");
    assert_string_not_equal(buf, "");
    assert_true(exists(f, "mr:media:%s", "u-4"));
}

static void test_keep_drops_what_outlived_its_ttl(void **state)
{
    struct fx *f = fx_new("\"admin_token\": \"\"", true);
    char buf[64];
    size_t evicted;

    *state = f;
    if (!f->t.store)
        skip();
    put_item(f, "ytdlp", "u-old");
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZADD mr:adhoc 1000 ytdlp:u-old");
    /* Members that are not ours are dropped from the set and nothing else. */
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZADD mr:adhoc 1000 no-colon");
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZADD mr:adhoc 1000 ytdlp:../../x");
    put_item(f, "ytdlp", "u-new");
    assert_int_equal(mr_adhoc_keep(f->t.store, "ytdlp", "u-new", true, 100, &evicted), MR_OK);
    assert_int_equal(evicted, 3);
    assert_false(exists(f, "mr:media:%s", "u-old"));
    assert_true(exists(f, "mr:media:%s", "u-new"));
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZCARD mr:adhoc");
    assert_string_equal(buf, "1");
}

static void test_keep_drops_a_bounded_number_per_call(void **state)
{
    struct fx *f = fx_new("\"admin_token\": \"\"", true);
    char buf[64];
    size_t evicted;

    *state = f;
    if (!f->t.store)
        skip();
    /* 300 members (as after open_max_items was lowered). */
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "EVAL %s 1 mr:adhoc",
                   "local now = tonumber(redis.call('TIME')[1]) * 1000 "
                   "for i = 1, 300 do "
                   "redis.call('ZADD', KEYS[1], now - 1000 + i, 'direct:u-' .. i) end");
    assert_int_equal(mr_adhoc_keep(f->t.store, "direct", "u-new", true, 10, &evicted), MR_OK);
    assert_int_equal(evicted, MR_ADHOC_EVICT_MAX);
    assert_int_equal(mr_adhoc_keep(f->t.store, "direct", "u-new", true, 10, &evicted), MR_OK);
    assert_int_equal(evicted, 301 - MR_ADHOC_EVICT_MAX - 10);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "ZCARD mr:adhoc");
    assert_string_equal(buf, "10");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_client_without_trusted_proxies, teardown),
        cmocka_unit_test_teardown(test_client_behind_trusted_proxies, teardown),
        cmocka_unit_test_teardown(test_budget, teardown),
        cmocka_unit_test_teardown(test_budget_without_redis, teardown),
        cmocka_unit_test_teardown(test_cached, teardown),
        cmocka_unit_test_teardown(test_keep_evicts_the_least_recently_used, teardown),
        cmocka_unit_test_teardown(test_keep_drops_what_outlived_its_ttl, teardown),
        cmocka_unit_test_teardown(test_keep_drops_a_bounded_number_per_call, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    mr_log_setup("test_adhoc", "error", "stderr");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
