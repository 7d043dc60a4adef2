/* fixtures.h - the setup the cmocka programs share: a configuration from a
 * JSON fragment, an arena, the store's LRU and the store, and perhaps a
 * private redis-server (redis_helper.h) with the test's own connection to it.
 *
 * A program's fixture embeds struct test_fx (as `t`) beside what is its
 * own; failures are cmocka assertions, so these are for test bodies and
 * setup functions alike.  Included after <cmocka.h>; everything is static
 * inline.
 */
#ifndef MR_TEST_FIXTURES_H
#define MR_TEST_FIXTURES_H

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/lru.h"
#include "net/store.h"

#include "redis_helper.h"

#define TEST_SECRET "0123456789abcdef0123456789abcdef"

struct test_fx {
    struct test_redis redis;    /* pid 0: none running */
    struct mr_conf *conf;
    struct mr_lru *lru;
    struct mr_store *store;
    struct mr_arena arena;
    redisContext *raw;          /* the test's own connection to redis-server */
};

/* {"secret": TEST_SECRET, "redis": "<redis>", <body>}: body is more members
 * of the object ("" for none).  Fails the test, printing the report, when
 * the configuration has errors.  Free with mr_conf_free. */
static inline struct mr_conf *test_conf_load(const char *redis, const char *body)
{
    char json[4096];
    struct mr_conf *c = NULL;
    struct mr_buf err;
    int n, rc;

    n = snprintf(json, sizeof(json), "{\"secret\": \"%s\", \"redis\": \"%s\"%s%s}", TEST_SECRET,
                 redis, body && *body ? ", " : "", body ? body : "");
    assert_true(n > 0 && (size_t)n < sizeof(json));
    mr_buf_init(&err, 4096);
    rc = mr_conf_load_string("t", json, strlen(json), &c, &err);
    if (rc)
        print_message("conf errors: %s\n", err.p ? err.p : "");
    mr_buf_free(&err);
    assert_int_equal(rc, MR_OK);
    assert_non_null(c);
    return c;
}

/* The arena, and an LRU (the store's fallback) of lru_items entries. */
static inline void test_fx_init(struct test_fx *f, size_t lru_items)
{
    memset(f, 0, sizeof(*f));
    mr_arena_init(&f->arena, 0);
    f->lru = mr_lru_new(lru_items, 1 << 20);
    assert_non_null(f->lru);
}

/* Starts a private redis-server and connects f->raw to it.  False, with
 * nothing started, when redis-server is not installed: the test skips. */
static inline bool test_fx_redis(struct test_fx *f)
{
    if (!test_redis_installed())
        return false;
    assert_int_equal(test_redis_start(&f->redis), 0);
    f->raw = test_redis_connect(&f->redis);
    assert_non_null(f->raw);
    return true;
}

/* The configuration (test_conf_load with the fixture's redis-server when
 * one runs, else "redis": "", the fallback alone) and a store on it. */
static inline void test_fx_store(struct test_fx *f, const char *body)
{
    char addr[200] = "";

    if (f->redis.pid)
        snprintf(addr, sizeof(addr), "unix:%s", f->redis.sock);
    f->conf = test_conf_load(addr, body);
    f->store = mr_store_new(f->conf, f->lru);
    assert_non_null(f->store);
}

/* Frees what the fixture holds, stops its redis-server and removes its
 * directory.  Safe on a fixture partly set up. */
static inline void test_fx_free(struct test_fx *f)
{
    if (f->raw)
        redisFree(f->raw);
    f->raw = NULL;
    mr_store_free(f->store);
    f->store = NULL;
    mr_conf_free(f->conf);
    f->conf = NULL;
    if (f->lru)
        mr_lru_free(f->lru);
    f->lru = NULL;
    mr_arena_free(&f->arena);
    test_redis_cleanup(&f->redis);
}

#endif
