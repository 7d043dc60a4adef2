/* test_store.c - the Redis store against a real redis-server, its fallback
 * LRU while Redis is down, and the reconnect when it comes back. */
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
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/lru.h"
#include "net/store.h"

#include "fixtures.h"

#define STORE_OPTS "\"store\": {\"timeout_ms\": 300, \"retry_ms\": 100}"

struct fx {
    struct test_fx t;
    char buf[512];
};

static struct mr_conf *conf_for(const char *redis)
{
    return test_conf_load(redis, STORE_OPTS);
}

/* With a running redis-server (skipped when none is installed). */
static int setup_redis(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    *state = f;
    test_fx_init(&f->t, 256);
    if (test_fx_redis(&f->t))
        test_fx_store(&f->t, STORE_OPTS);
    return 0;
}

/* Without Redis: only the fallback. */
static int setup_plain(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    *state = f;
    test_fx_init(&f->t, 256);
    return 0;
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

/* The last error is a readable message ("Broken pipe", "Connection
 * refused"), not bytes from freed memory. */
static void assert_readable_error(const struct mr_store *s)
{
    const char *e = mr_store_last_error(s);
    size_t n = strlen(e);
    bool ok = n >= 4;
    for (size_t i = 0; i < n; i++)
        ok = ok && e[i] >= 0x20 && e[i] < 0x7f;
    if (!ok) {
        print_message("last error is not readable: \"");
        for (size_t i = 0; i < n; i++)
            print_message("\\x%02x", (unsigned char)e[i]);
        print_message("\"\n");
    }
    assert_true(ok);
}

#define NEED_REDIS(f) do { if (!(f)->t.redis.pid) skip(); } while (0)

static const char *raw(struct fx *f, const char *fmt, const char *a1, const char *a2)
{
    return test_redis_cmd(f->t.raw, f->buf, sizeof(f->buf), fmt, a1, a2);
}

static void test_get_set_del(void **state)
{
    struct fx *f = *state;
    struct mr_str v;
    char longkey[600];

    NEED_REDIS(f);
    assert_false(mr_store_redis_up(f->t.store));     /* no I/O yet */
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);
    assert_true(mr_store_redis_up(f->t.store));
    assert_string_equal(mr_store_last_error(f->t.store), "");

    assert_int_equal(mr_store_set(f->t.store, "k1", "v1", 2, 0), MR_OK);
    /* The prefix is added: the raw key is "mr:k1". */
    assert_string_equal(raw(f, "GET %s", "mr:k1", NULL), "v1");
    assert_string_equal(raw(f, "EXISTS %s", "k1", NULL), "0");
    assert_string_equal(raw(f, "PTTL %s", "mr:k1", NULL), "-1");
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "k1", &v), MR_OK);
    assert_int_equal(v.len, 2);
    assert_string_equal(v.p, "v1");

    /* Written raw, read through the store. */
    raw(f, "SET %s %s", "mr:from-raw", "hello");
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "from-raw", &v), MR_OK);
    assert_string_equal(v.p, "hello");

    /* Binary-safe, NUL-terminated. */
    assert_int_equal(mr_store_set(f->t.store, "bin", "a\0b\xff", 4, 0), MR_OK);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "bin", &v), MR_OK);
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.p, "a\0b\xff", 4);
    assert_int_equal(v.p[4], '\0');

    /* Overwrite, missing, delete. */
    assert_int_equal(mr_store_set(f->t.store, "k1", "v2", 2, 0), MR_OK);
    assert_string_equal(raw(f, "GET %s", "mr:k1", NULL), "v2");
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "missing", &v), MR_ENOTFOUND);
    assert_int_equal(mr_store_del(f->t.store, "k1"), MR_OK);
    assert_string_equal(raw(f, "EXISTS %s", "mr:k1", NULL), "0");
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "k1", &v), MR_ENOTFOUND);
    assert_int_equal(mr_store_del(f->t.store, "k1"), MR_OK);   /* absent: still OK */

    /* A key of the wrong type is an error, not "absent". */
    raw(f, "HSET %s f %s", "mr:hash", "1");
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "hash", &v), MR_EINTERNAL);

    /* Keys past MR_STORE_KEY_MAX are refused before any I/O. */
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_int_equal(mr_store_set(f->t.store, longkey, "x", 1, 0), MR_ETOOBIG);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, longkey, &v), MR_ETOOBIG);
    assert_true(mr_store_redis_up(f->t.store));
}

static void test_set_nx_and_ttl(void **state)
{
    struct fx *f = *state;
    struct mr_str v;
    long pttl;

    NEED_REDIS(f);
    assert_int_equal(mr_store_set_nx(f->t.store, "lock:a", "1", 1, 5000), MR_OK);
    assert_int_equal(mr_store_set_nx(f->t.store, "lock:a", "2", 1, 5000), MR_EBUSY);
    assert_string_equal(raw(f, "GET %s", "mr:lock:a", NULL), "1");
    pttl = strtol(raw(f, "PTTL %s", "mr:lock:a", NULL), NULL, 10);
    assert_true(pttl > 0 && pttl <= 5000);
    assert_int_equal(mr_store_del(f->t.store, "lock:a"), MR_OK);
    assert_int_equal(mr_store_set_nx(f->t.store, "lock:a", "3", 1, 0), MR_OK);
    assert_string_equal(raw(f, "PTTL %s", "mr:lock:a", NULL), "-1");

    /* PX is honoured: gone after it expires. */
    assert_int_equal(mr_store_set(f->t.store, "short", "x", 1, 1000), MR_OK);
    pttl = strtol(raw(f, "PTTL %s", "mr:short", NULL), NULL, 10);
    assert_true(pttl > 0 && pttl <= 1000);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "short", &v), MR_OK);
    assert_int_equal(mr_store_set_nx(f->t.store, "short-nx", "x", 1, 1000), MR_OK);
    test_sleep_ms(1600);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "short", &v), MR_ENOTFOUND);
    assert_int_equal(mr_store_set_nx(f->t.store, "short-nx", "y", 1, 1000), MR_OK);
}

/* Polls until key is gone from Redis (its TTL ran out), at most 5 s. */
static bool wait_gone(struct fx *f, const char *key)
{
    for (int i = 0; i < 500; i++) {
        if (!strcmp(raw(f, "EXISTS %s", key, NULL), "0"))
            return true;
        test_sleep_ms(10);
    }
    return false;
}

static bool all_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A lock holds its owner's random token; only the owner releases it. */
static void test_lock_owner(void **state)
{
    struct fx *f = *state;
    struct mr_store_lock a, b, forged;
    char owner[MR_STORE_LOCK_OWNER_HEX + 1];
    long pttl;

    NEED_REDIS(f);
    assert_int_equal(mr_store_lock(f->t.store, "lock:x", 5000, &a), MR_OK);
    assert_true(a.held);
    assert_true(all_hex(a.owner, MR_STORE_LOCK_OWNER_HEX));
    assert_string_equal(raw(f, "GET %s", "mr:lock:x", NULL), a.owner);
    pttl = strtol(raw(f, "PTTL %s", "mr:lock:x", NULL), NULL, 10);
    assert_true(pttl > 0 && pttl <= 5000);

    /* Held: the next one is busy, and is left with nothing to release. */
    assert_int_equal(mr_store_lock(f->t.store, "lock:x", 5000, &b), MR_EBUSY);
    assert_false(b.held);
    assert_int_equal(mr_store_unlock(f->t.store, &b), MR_OK);
    assert_string_equal(raw(f, "GET %s", "mr:lock:x", NULL), a.owner);

    /* A release by anyone but the owner leaves it as it is. */
    forged = a;
    memcpy(forged.owner, "00000000000000000000000000000000", MR_STORE_LOCK_OWNER_HEX);
    assert_int_equal(mr_store_unlock(f->t.store, &forged), MR_EBUSY);
    assert_false(forged.held);
    assert_string_equal(raw(f, "GET %s", "mr:lock:x", NULL), a.owner);

    /* The owner's release deletes it; a second one is a no-op. */
    assert_int_equal(mr_store_unlock(f->t.store, &a), MR_OK);
    assert_false(a.held);
    assert_string_equal(raw(f, "EXISTS %s", "mr:lock:x", NULL), "0");
    assert_int_equal(mr_store_unlock(f->t.store, &a), MR_OK);

    /* Every take draws a new owner. */
    snprintf(owner, sizeof(owner), "%s", a.owner);
    assert_int_equal(mr_store_lock(f->t.store, "lock:x", 5000, &b), MR_OK);
    assert_string_not_equal(b.owner, owner);
    assert_int_equal(mr_store_unlock(f->t.store, &b), MR_OK);

    /* Nonsense is refused before any I/O. */
    {
        char longkey[600];
        memset(longkey, 'k', sizeof(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        assert_int_equal(mr_store_lock(f->t.store, longkey, 5000, &a), MR_ETOOBIG);
        assert_false(a.held);
        assert_int_equal(mr_store_lock(f->t.store, "lock:y", 0, &a), MR_EINTERNAL);
        assert_false(a.held);
        assert_string_equal(raw(f, "EXISTS %s", "mr:lock:y", NULL), "0");
    }
}

/* The bug this lock exists for: A's lock lapses while A still works, B
 * takes it, and A's late release must not delete B's lock. */
static void test_lock_lapsed_then_taken(void **state)
{
    struct fx *f = *state;
    struct mr_store_lock a, b, c;

    NEED_REDIS(f);
    assert_int_equal(mr_store_lock(f->t.store, "lock:slow", 100, &a), MR_OK);
    assert_true(wait_gone(f, "mr:lock:slow"));
    assert_int_equal(mr_store_lock(f->t.store, "lock:slow", 5000, &b), MR_OK);
    assert_int_equal(mr_store_unlock(f->t.store, &a), MR_EBUSY);
    assert_string_equal(raw(f, "GET %s", "mr:lock:slow", NULL), b.owner);
    /* So C still finds it held. */
    assert_int_equal(mr_store_lock(f->t.store, "lock:slow", 5000, &c), MR_EBUSY);
    assert_int_equal(mr_store_unlock(f->t.store, &b), MR_OK);
    assert_string_equal(raw(f, "EXISTS %s", "mr:lock:slow", NULL), "0");
    /* A lapsed lock nobody took: the late release finds nothing. */
    assert_int_equal(mr_store_lock(f->t.store, "lock:slow", 100, &a), MR_OK);
    assert_true(wait_gone(f, "mr:lock:slow"));
    assert_int_equal(mr_store_unlock(f->t.store, &a), MR_EBUSY);
}

/* A lock's TTL is the bound of the work it covers plus the margin: the
 * playlist cache's lock (upstream.fetch_timeout_ms, 15 s by default)
 * outlives a fetch that takes longer than the old fixed 10 s. */
static void test_lock_ttl(void **state)
{
    struct fx *f = *state;
    struct mr_store_lock a;
    long ttl = mr_store_lock_ttl(f->t.conf->upstream.fetch_timeout_ms), pttl;

    NEED_REDIS(f);
    assert_int_equal(f->t.conf->upstream.fetch_timeout_ms, 15000);
    assert_int_equal(ttl, 15000 + MR_STORE_LOCK_MARGIN_MS);
    assert_true(MR_STORE_LOCK_MARGIN_MS > 0);
    assert_int_equal(mr_store_lock_ttl(1), 1 + MR_STORE_LOCK_MARGIN_MS);
    assert_int_equal(mr_store_lock(f->t.store, "lock:pl:t", ttl, &a), MR_OK);
    pttl = strtol(raw(f, "PTTL %s", "mr:lock:pl:t", NULL), NULL, 10);
    assert_true(pttl > 15000 && pttl <= ttl);
    assert_int_equal(mr_store_unlock(f->t.store, &a), MR_OK);
}

/* Redis goes away while a lock is held, and comes back while another is
 * held in the fallback: each release touches only what is its own. */
static void test_lock_across_failover(void **state)
{
    struct fx *f = *state;
    struct mr_store_lock a, b, c;
    struct mr_str v;

    NEED_REDIS(f);
    assert_int_equal(mr_store_lock(f->t.store, "lock:f", 5000, &a), MR_OK);
    redisFree(f->t.raw);
    f->t.raw = NULL;
    test_redis_stop(&f->t.redis);
    /* The release cannot reach Redis: not released (it lapses there). */
    assert_int_equal(mr_store_unlock(f->t.store, &a), MR_EBUSY);
    assert_false(mr_store_redis_up(f->t.store));
    /* While Redis is down the fallback holds locks. */
    assert_int_equal(mr_store_lock(f->t.store, "lock:f", 5000, &b), MR_OK);
    assert_int_equal(mr_store_lock(f->t.store, "lock:f", 5000, &c), MR_EBUSY);
    assert_int_equal(mr_lru_get(f->t.lru, "mr:lock:f", &f->t.arena, &v), MR_OK);
    assert_string_equal(v.p, b.owner);

    assert_int_equal(test_redis_start(&f->t.redis), 0);
    f->t.raw = test_redis_connect(&f->t.redis);
    assert_non_null(f->t.raw);
    raw(f, "SET %s %s", "mr:lock:f", "someone-else");
    test_sleep_ms(150);                   /* past store.retry_ms (100) */
    /* Released in the fallback; what Redis holds now is not b's. */
    assert_int_equal(mr_store_unlock(f->t.store, &b), MR_OK);
    assert_true(mr_store_redis_up(f->t.store));
    assert_int_equal(mr_lru_get(f->t.lru, "mr:lock:f", &f->t.arena, &v), MR_ENOTFOUND);
    assert_string_equal(raw(f, "GET %s", "mr:lock:f", NULL), "someone-else");
}

/* Without Redis: the same semantics in the process's fallback, shared by
 * its threads' stores. */
static void test_lock_fallback(void **state)
{
    struct fx *f = *state;
    struct mr_store_lock a, b, forged;
    struct mr_store *other;
    struct mr_str v;

    f->t.conf = conf_for("");
    f->t.store = mr_store_new(f->t.conf, f->t.lru);
    other = mr_store_new(f->t.conf, f->t.lru);
    assert_non_null(f->t.store);
    assert_non_null(other);

    assert_int_equal(mr_store_lock(f->t.store, "lock:p", 5000, &a), MR_OK);
    assert_true(all_hex(a.owner, MR_STORE_LOCK_OWNER_HEX));
    assert_int_equal(mr_store_lock(other, "lock:p", 5000, &b), MR_EBUSY);
    assert_int_equal(mr_store_get(other, &f->t.arena, "lock:p", &v), MR_OK);  /* waiters see it */
    assert_string_equal(v.p, a.owner);
    forged = a;
    forged.owner[0] = forged.owner[0] == 'a' ? 'b' : 'a';
    assert_int_equal(mr_store_unlock(other, &forged), MR_EBUSY);
    assert_int_equal(mr_store_get(other, &f->t.arena, "lock:p", &v), MR_OK);
    assert_int_equal(mr_store_unlock(f->t.store, &a), MR_OK);
    assert_int_equal(mr_store_get(other, &f->t.arena, "lock:p", &v), MR_ENOTFOUND);

    /* Lapsed, taken by another thread, released late by the first. */
    assert_int_equal(mr_store_lock(f->t.store, "lock:p", 50, &a), MR_OK);
    for (int i = 0; i < 500 && mr_store_get(other, &f->t.arena, "lock:p", &v) == MR_OK; i++)
        test_sleep_ms(10);
    assert_int_equal(mr_store_lock(other, "lock:p", 5000, &b), MR_OK);
    assert_int_equal(mr_store_unlock(f->t.store, &a), MR_EBUSY);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "lock:p", &v), MR_OK);
    assert_string_equal(v.p, b.owner);
    assert_int_equal(mr_store_unlock(other, &b), MR_OK);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "lock:p", &v), MR_ENOTFOUND);
    mr_store_free(other);
}

static void test_hash(void **state)
{
    struct fx *f = *state;
    struct mr_str v;
    const struct mr_store_op incr[] = {
        { MR_OP_HINCRBY, "stats:x", "a", 2 },
        { MR_OP_HINCRBY, "stats:x", "b", 5 },
        { MR_OP_HINCRBY, "stats:x", "a", 3 },
        { MR_OP_HINCRBY, "stats:y", "a", -4 },
    };

    NEED_REDIS(f);
    assert_int_equal(mr_store_batch(f->t.store, incr, 4), MR_OK);
    assert_string_equal(raw(f, "HGET %s %s", "mr:stats:x", "a"), "5");
    assert_string_equal(raw(f, "HGET %s %s", "mr:stats:x", "b"), "5");
    assert_string_equal(raw(f, "HGET %s %s", "mr:stats:y", "a"), "-4");
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "stats:x", "a", &v), MR_OK);
    assert_string_equal(v.p, "5");
    assert_int_equal(mr_store_batch(f->t.store, incr, 1), MR_OK);
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "stats:x", "a", &v), MR_OK);
    assert_string_equal(v.p, "7");
    assert_int_equal(mr_store_batch(f->t.store, incr, 0), MR_OK);

    raw(f, "HSET %s name %s", "mr:settings", "value with spaces");
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "settings", "name", &v), MR_OK);
    assert_string_equal(v.p, "value with spaces");
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "settings", "nope", &v), MR_ENOTFOUND);
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "nohash", "a", &v), MR_ENOTFOUND);
}

/* HINCRBY and SADD in one pipeline; SMEMBERS; HGETALL of many keys. */
static void test_batch_and_sets(void **state)
{
    struct fx *f = *state;
    const struct mr_store_op ops[] = {
        { MR_OP_HINCRBY, "stats:b", "bytes", 2 },
        { MR_OP_SADD, "stats:index", "b", 0 },
        { MR_OP_SADD, "stats:index", "c", 0 },
        { MR_OP_HINCRBY, "stats:b", "bytes", 3 },
        { MR_OP_HINCRBY, "stats:b", "hits", 1 },
        { MR_OP_SADD, "stats:index", "b", 0 },
    };
    const char *const keys[] = { "stats:b", "stats:missing" };
    char **members, ***all;
    size_t n;
    bool seen_b = false, seen_c = false;

    NEED_REDIS(f);
    assert_int_equal(mr_store_batch(f->t.store, ops, 6), MR_OK);
    assert_string_equal(raw(f, "HGET %s %s", "mr:stats:b", "bytes"), "5");
    assert_string_equal(raw(f, "SCARD %s", "mr:stats:index", NULL), "2");
    assert_int_equal(mr_store_batch(f->t.store, ops, 0), MR_OK);

    assert_int_equal(mr_store_smembers(f->t.store, &f->t.arena, "stats:index", 10, &members, &n),
                     MR_OK);
    assert_int_equal(n, 2);
    assert_null(members[2]);
    for (size_t i = 0; i < n; i++) {
        seen_b |= !strcmp(members[i], "b");
        seen_c |= !strcmp(members[i], "c");
    }
    assert_true(seen_b && seen_c);
    assert_int_equal(mr_store_smembers(f->t.store, &f->t.arena, "stats:index", 1, &members, &n),
                     MR_OK);
    assert_int_equal(n, 1);
    assert_null(members[1]);
    assert_int_equal(mr_store_smembers(f->t.store, &f->t.arena, "stats:none", 10, &members, &n),
                     MR_OK);
    assert_int_equal(n, 0);
    assert_null(members[0]);
    raw(f, "SET %s %s", "mr:plain", "x");
    assert_int_equal(mr_store_smembers(f->t.store, &f->t.arena, "plain", 10, &members, &n),
                     MR_EINTERNAL);

    assert_int_equal(mr_store_hgetall_many(f->t.store, &f->t.arena, keys, 2, &all), MR_OK);
    assert_non_null(all[0]);
    n = 0;
    for (char **kv = all[0]; *kv; kv += 2) {
        assert_non_null(kv[1]);
        if (!strcmp(kv[0], "bytes"))
            assert_string_equal(kv[1], "5");
        else if (!strcmp(kv[0], "hits"))
            assert_string_equal(kv[1], "1");
        else
            fail_msg("unexpected field %s", kv[0]);
        n++;
    }
    assert_int_equal(n, 2);
    assert_non_null(all[1]);
    assert_null(all[1][0]);
    assert_null(all[2]);
    /* The connection is still in step after the pipelines. */
    assert_int_equal(mr_store_set(f->t.store, "after-pipe", "1", 1, 0), MR_OK);
    assert_string_equal(raw(f, "GET %s", "mr:after-pipe", NULL), "1");
}

static void test_sismember(void **state)
{
    struct fx *f = *state;
    bool in = false;

    NEED_REDIS(f);
    raw(f, "SADD %s %s", "mr:room:r1:members", "alice");
    assert_int_equal(mr_store_sismember(f->t.store, "room:r1:members", "alice", &in), MR_OK);
    assert_true(in);
    assert_int_equal(mr_store_sismember(f->t.store, "room:r1:members", "bob", &in), MR_OK);
    assert_false(in);
    in = true;
    assert_int_equal(mr_store_sismember(f->t.store, "room:none:members", "alice", &in), MR_OK);
    assert_false(in);
    /* Not a set: an error reply, not "no". */
    raw(f, "SET %s %s", "mr:str", "x");
    assert_int_equal(mr_store_sismember(f->t.store, "str", "x", &in), MR_EINTERNAL);
}

/* Redis goes away: every call works on the fallback; it comes back: the
 * store uses it again by itself. */
static void test_failover_and_back(void **state)
{
    struct fx *f = *state;
    const struct mr_store_op incr[] = { { MR_OP_HINCRBY, "stats:z", "n", 2 } };
    struct mr_str v;
    bool in;

    NEED_REDIS(f);
    assert_int_equal(mr_store_set(f->t.store, "before", "1", 1, 0), MR_OK);
    assert_true(mr_store_redis_up(f->t.store));

    redisFree(f->t.raw);
    f->t.raw = NULL;
    test_redis_stop(&f->t.redis);

    /* The first call finds the connection dead and falls back. */
    assert_int_equal(mr_store_set(f->t.store, "after", "x", 1, 0), MR_OK);
    assert_false(mr_store_redis_up(f->t.store));
    assert_string_not_equal(mr_store_last_error(f->t.store), "");
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "after", &v), MR_OK);
    assert_string_equal(v.p, "x");
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "absent", &v), MR_ENOTFOUND);

    assert_int_equal(mr_store_set_nx(f->t.store, "lock:b", "1", 1, 5000), MR_OK);
    assert_int_equal(mr_store_set_nx(f->t.store, "lock:b", "2", 1, 5000), MR_EBUSY);
    assert_int_equal(mr_store_del(f->t.store, "lock:b"), MR_OK);
    assert_int_equal(mr_store_set_nx(f->t.store, "lock:b", "3", 1, 5000), MR_OK);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "lock:b", &v), MR_OK);
    assert_string_equal(v.p, "3");

    /* TTLs hold in the fallback too. */
    assert_int_equal(mr_store_set(f->t.store, "fb-short", "x", 1, 300), MR_OK);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "fb-short", &v), MR_OK);

    /* Counters are kept in-process. */
    assert_int_equal(mr_store_batch(f->t.store, incr, 1), MR_OK);
    assert_int_equal(mr_store_batch(f->t.store, incr, 1), MR_OK);
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "stats:z", "n", &v), MR_OK);
    assert_string_equal(v.p, "4");

    /* Sessions and rooms need Redis; so does the health check. */
    assert_int_equal(mr_store_sismember(f->t.store, "room:r1:members", "alice", &in),
                     MR_EUNAVAILABLE);
    assert_int_equal(mr_store_ping(f->t.store), MR_EUNAVAILABLE);
    assert_false(mr_store_redis_up(f->t.store));

    test_sleep_ms(800);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "fb-short", &v), MR_ENOTFOUND);

    /* Back on the same socket: after retry_ms the next call reconnects. */
    assert_int_equal(test_redis_start(&f->t.redis), 0);
    f->t.raw = test_redis_connect(&f->t.redis);
    assert_non_null(f->t.raw);
    test_sleep_ms(300);
    assert_int_equal(mr_store_set(f->t.store, "back", "yes", 3, 0), MR_OK);
    assert_true(mr_store_redis_up(f->t.store));
    assert_string_equal(raw(f, "GET %s", "mr:back", NULL), "yes");
    assert_string_equal(mr_store_last_error(f->t.store), "");
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);
    in = false;
    raw(f, "SADD %s %s", "mr:room:r2:members", "carol");
    assert_int_equal(mr_store_sismember(f->t.store, "room:r2:members", "carol", &in), MR_OK);
    assert_true(in);
}

/* The health check does not wait out retry_ms. */
static void test_ping_reconnects_at_once(void **state)
{
    struct fx *f = *state;

    NEED_REDIS(f);
    redisFree(f->t.raw);
    f->t.raw = NULL;
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);
    test_redis_stop(&f->t.redis);
    assert_int_equal(mr_store_ping(f->t.store), MR_EUNAVAILABLE);
    assert_int_equal(test_redis_start(&f->t.redis), 0);
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);
    assert_true(mr_store_redis_up(f->t.store));
}

/* Redis restarted while this store was idle: its connection is dead but
 * it does not know yet.  The health check finds that out and asks again on a
 * new connection, so it says "up" at once. */
static void test_ping_after_an_unnoticed_restart(void **state)
{
    struct fx *f = *state;

    NEED_REDIS(f);
    redisFree(f->t.raw);
    f->t.raw = NULL;
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);
    test_redis_stop(&f->t.redis);
    assert_int_equal(test_redis_start(&f->t.redis), 0);
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);
    assert_true(mr_store_redis_up(f->t.store));
}

/* The pipelined HINCRBY finds Redis gone: the counts go in-process. */
static void test_batch_when_redis_dies(void **state)
{
    struct fx *f = *state;
    const struct mr_store_op incr[] = {
        { MR_OP_HINCRBY, "stats:d", "n", 3 }, { MR_OP_HINCRBY, "stats:d", "m", 1 }
    };
    struct mr_str v;

    NEED_REDIS(f);
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);
    redisFree(f->t.raw);
    f->t.raw = NULL;
    test_redis_stop(&f->t.redis);
    assert_int_equal(mr_store_batch(f->t.store, incr, 2), MR_OK);
    assert_false(mr_store_redis_up(f->t.store));
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "stats:d", "n", &v), MR_OK);
    assert_string_equal(v.p, "3");
    assert_readable_error(f->t.store);
}

/* The connection dies under a plain command: the reason is kept. */
static void test_last_error_after_loss(void **state)
{
    struct fx *f = *state;

    NEED_REDIS(f);
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);
    redisFree(f->t.raw);
    f->t.raw = NULL;
    test_redis_stop(&f->t.redis);
    assert_int_equal(mr_store_set(f->t.store, "k", "v", 1, 0), MR_OK);
    assert_false(mr_store_redis_up(f->t.store));
    assert_readable_error(f->t.store);
}

/* "redis": "": the fallback only, no connection attempts. */
static void test_fallback_only(void **state)
{
    struct fx *f = *state;
    const struct mr_store_op incr[] = { { MR_OP_HINCRBY, "stats:q", "n", 7 } };
    struct mr_str v;
    bool in;

    f->t.conf = conf_for("");
    f->t.store = mr_store_new(f->t.conf, f->t.lru);
    assert_non_null(f->t.store);

    assert_int_equal(mr_store_set(f->t.store, "a", "1", 1, 0), MR_OK);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "a", &v), MR_OK);
    assert_string_equal(v.p, "1");
    assert_int_equal(mr_store_set_nx(f->t.store, "a", "2", 1, 0), MR_EBUSY);
    assert_int_equal(mr_store_set_nx(f->t.store, "b", "2", 1, 0), MR_OK);
    assert_int_equal(mr_store_del(f->t.store, "a"), MR_OK);
    assert_int_equal(mr_store_get(f->t.store, &f->t.arena, "a", &v), MR_ENOTFOUND);
    assert_int_equal(mr_store_batch(f->t.store, incr, 1), MR_OK);
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "stats:q", "n", &v), MR_OK);
    assert_string_equal(v.p, "7");
    assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "stats:q", "m", &v), MR_ENOTFOUND);
    assert_int_equal(mr_store_sismember(f->t.store, "room:r:members", "u", &in), MR_EUNAVAILABLE);
    assert_int_equal(mr_store_ping(f->t.store), MR_EUNAVAILABLE);
    assert_false(mr_store_redis_up(f->t.store));
    assert_non_null(strstr(mr_store_last_error(f->t.store), "no redis"));

    /* Batches: counters in-process, set members dropped; reads of sets
     * and hashes need Redis. */
    {
        const struct mr_store_op ops[] = {
            { MR_OP_HINCRBY, "stats:q", "n", 3 },
            { MR_OP_SADD, "stats:index", "q", 0 },
        };
        const char *const keys[] = { "stats:q" };
        char **members, ***all;
        size_t n;
        assert_int_equal(mr_store_batch(f->t.store, ops, 2), MR_OK);
        assert_int_equal(mr_store_hget(f->t.store, &f->t.arena, "stats:q", "n", &v), MR_OK);
        assert_string_equal(v.p, "10");
        assert_int_equal(mr_store_smembers(f->t.store, &f->t.arena, "stats:index", 10, &members, &n),
                         MR_EUNAVAILABLE);
        assert_int_equal(mr_store_hgetall_many(f->t.store, &f->t.arena, keys, 1, &all),
                         MR_EUNAVAILABLE);
    }

    /* The fallback is the process's: another thread's store sees it. */
    {
        struct mr_store *other = mr_store_new(f->t.conf, f->t.lru);
        assert_non_null(other);
        assert_int_equal(mr_store_get(other, &f->t.arena, "b", &v), MR_OK);
        assert_string_equal(v.p, "2");
        mr_store_free(other);
    }
}

/* Redis over TCP ("host:port") works like the unix socket. */
static void test_tcp(void **state)
{
    struct fx *f = *state;
    struct test_redis tcp = { 0 };
    struct mr_conf *c;
    struct mr_store *s;
    struct mr_str v;
    char addr[64];

    if (!test_redis_installed())
        skip();
    tcp.port = test_free_port();
    assert_true(tcp.port > 0);
    assert_int_equal(test_redis_start(&tcp), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tcp.port);
    c = conf_for(addr);
    s = mr_store_new(c, f->t.lru);
    assert_non_null(s);
    assert_int_equal(mr_store_ping(s), MR_OK);
    assert_true(mr_store_redis_up(s));
    assert_int_equal(mr_store_set(s, "tcp-key", "over tcp", 8, 0), MR_OK);
    assert_int_equal(mr_store_get(s, &f->t.arena, "tcp-key", &v), MR_OK);
    assert_string_equal(v.p, "over tcp");
    mr_store_free(s);
    mr_conf_free(c);
    test_redis_cleanup(&tcp);
}

/* A socket where nothing listens (and a TCP port where nothing listens):
 * every call works on the fallback. */
static void test_nothing_listening(void **state)
{
    struct fx *f = *state;
    static const char *const addrs[] = {
        "unix:/tmp/mr-unit-no-such-dir/none.sock",
        "127.0.0.1:1",
    };

    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        struct mr_conf *c = conf_for(addrs[i]);
        struct mr_store *s = mr_store_new(c, f->t.lru);
        struct mr_str v;
        bool in;
        char key[32];

        assert_non_null(s);
        snprintf(key, sizeof(key), "nl%zu", i);
        assert_int_equal(mr_store_set(s, key, "v", 1, 0), MR_OK);
        assert_false(mr_store_redis_up(s));
        assert_string_not_equal(mr_store_last_error(s), "");
        assert_int_equal(mr_store_get(s, &f->t.arena, key, &v), MR_OK);
        assert_string_equal(v.p, "v");
        assert_int_equal(mr_store_set_nx(s, key, "w", 1, 0), MR_EBUSY);
        assert_int_equal(mr_store_sismember(s, "room:r:members", "u", &in), MR_EUNAVAILABLE);
        assert_int_equal(mr_store_ping(s), MR_EUNAVAILABLE);
        mr_store_free(s);
        mr_conf_free(c);
    }
}

/* --- mr_store_lock_or_wait ------------------------------------------ */

/* The holder is played by the waiter's ready() itself, at a set turn, so
 * the tests need neither threads nor sleeps. */
struct holder {
    struct fx *f;
    struct mr_store_lock lk;    /* the other request's lock */
    int turns;                  /* ready() calls so far */
    int finish_at;              /* the turn it finishes at (0: never) */
    bool with_result;           /* it leaves "res:k" when it finishes */
    bool after_look;            /* it finishes just after that turn's look */
    int rc;                     /* what ready() says when not MR_ENOTFOUND */
    int give_up_at;             /* give_up() is true from that call on */
    int give_ups;
};

static void holder_finish(struct holder *h)
{
    if (h->with_result)
        assert_int_equal(mr_store_set(h->f->t.store, "res:k", "done", 4, 5000), MR_OK);
    assert_int_equal(mr_store_unlock(h->f->t.store, &h->lk), MR_OK);
}

static int holder_ready(void *arg)
{
    struct holder *h = arg;
    struct mr_str v;

    bool there;

    h->turns++;
    if (h->rc)
        return h->rc;
    if (h->turns == h->finish_at && !h->after_look)
        holder_finish(h);
    there = mr_store_get(h->f->t.store, &h->f->t.arena, "res:k", &v) == MR_OK;
    if (h->turns == h->finish_at && h->after_look)
        holder_finish(h);
    return there ? MR_OK : MR_ENOTFOUND;
}

static bool holder_give_up(void *arg)
{
    struct holder *h = arg;
    return h->give_up_at && ++h->give_ups >= h->give_up_at;
}

static struct mr_store_wait holder_wait(struct holder *h, long wait_ms)
{
    return (struct mr_store_wait){ .wait_ms = wait_ms, .pause_us = 100, .max_pause_us = 2000,
                                   .ready = holder_ready, .give_up = holder_give_up, .arg = h };
}

/* A free lock is taken at once, and nothing is waited for; it is kept
 * unless the result came in meanwhile. */
static void test_lock_or_wait_free(void **state)
{
    struct fx *f = *state;
    struct holder h = { .f = f };
    struct mr_store_wait w = holder_wait(&h, 10000);
    struct mr_store_lock l;

    NEED_REDIS(f);
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_OK);
    assert_true(l.held);
    assert_int_equal(h.turns, 1);       /* one look, with the lock */
    assert_string_equal(raw(f, "GET %s", "mr:lock:w", NULL), l.owner);
    assert_int_equal(mr_store_unlock(f->t.store, &l), MR_OK);
    /* A caller that refreshes what it has (a wait of 0) takes it as it is. */
    w.wait_ms = 0;
    h.turns = 0;
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_OK);
    assert_true(l.held);
    assert_int_equal(h.turns, 0);
    assert_int_equal(mr_store_unlock(f->t.store, &l), MR_OK);
    /* A result written by a holder that was gone before the first try
     * (after the caller's own look): taken, the lock given back. */
    w.wait_ms = 10000;
    assert_int_equal(mr_store_set(f->t.store, "res:k", "done", 4, 5000), MR_OK);
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_OK);
    assert_false(l.held);
    assert_string_equal(raw(f, "EXISTS %s", "mr:lock:w", NULL), "0");
    assert_int_equal(mr_store_del(f->t.store, "res:k"), MR_OK);
    /* A key too long for a lock is said so, not waited on. */
    {
        char longkey[MR_STORE_KEY_MAX + 10];
        memset(longkey, 'k', sizeof(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        assert_int_equal(mr_store_lock_or_wait(f->t.store, longkey, 5000, &w, &l), MR_ETOOBIG);
        assert_false(l.held);
    }
}

/* The holder finishes with a result: the waiter gets it, without the lock. */
static void test_lock_or_wait_result(void **state)
{
    struct fx *f = *state;
    struct holder h = { .f = f, .finish_at = 3, .with_result = true };
    struct mr_store_wait w = holder_wait(&h, 60000);
    struct mr_store_lock l;

    NEED_REDIS(f);
    assert_int_equal(mr_store_lock(f->t.store, "lock:w", 60000, &h.lk), MR_OK);
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_OK);
    assert_false(l.held);
    assert_int_equal(h.turns, 3);
    assert_string_equal(raw(f, "EXISTS %s", "mr:lock:w", NULL), "0");
    assert_int_equal(mr_store_unlock(f->t.store, &l), MR_OK);
}

/* The holder lets go without a result: the waiter takes the lock (and the
 * work) instead of waiting on, or working unlocked. */
static void test_lock_or_wait_handover(void **state)
{
    struct fx *f = *state;
    struct holder h = { .f = f, .finish_at = 2 };
    struct mr_store_wait w = holder_wait(&h, 60000);
    struct mr_store_lock l;

    NEED_REDIS(f);
    assert_int_equal(mr_store_lock(f->t.store, "lock:w", 60000, &h.lk), MR_OK);
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_OK);
    assert_true(l.held);
    assert_int_equal(h.turns, 3);       /* and one look after taking it */
    assert_string_equal(raw(f, "GET %s", "mr:lock:w", NULL), l.owner);
    assert_int_equal(mr_store_unlock(f->t.store, &l), MR_OK);
}

/* The holder writes its result and lets go just after a look: the lock
 * the waiter then takes is given back, and the result taken, so the work
 * is not done twice (20 requests, one yt-dlp run). */
static void test_lock_or_wait_result_between_looks(void **state)
{
    struct fx *f = *state;
    struct holder h = { .f = f, .finish_at = 2, .with_result = true, .after_look = true };
    struct mr_store_wait w = holder_wait(&h, 60000);
    struct mr_store_lock l;

    NEED_REDIS(f);
    assert_int_equal(mr_store_lock(f->t.store, "lock:w", 60000, &h.lk), MR_OK);
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_OK);
    assert_false(l.held);
    assert_int_equal(h.turns, 3);
    assert_string_equal(raw(f, "EXISTS %s", "mr:lock:w", NULL), "0");
}

/* A holder that never finishes: MR_EBUSY at the deadline, at once for a
 * wait of 0, and when give_up() says so; an error from ready() ends the
 * wait with it. */
static void test_lock_or_wait_busy(void **state)
{
    struct fx *f = *state;
    struct holder h = { .f = f };
    struct mr_store_wait w = holder_wait(&h, 0);
    struct mr_store_lock l;

    NEED_REDIS(f);
    assert_int_equal(mr_store_lock(f->t.store, "lock:w", 60000, &h.lk), MR_OK);
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_EBUSY);
    assert_false(l.held);
    assert_int_equal(h.turns, 0);

    w = holder_wait(&h, 30);
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_EBUSY);
    assert_false(l.held);
    assert_true(h.turns >= 1);

    h.turns = 0;
    h.give_up_at = 3;
    w = holder_wait(&h, 60000);
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_EBUSY);
    assert_int_equal(h.turns, 2);

    h.turns = 0;
    h.give_up_at = 0;
    h.rc = MR_EUPSTREAM;
    assert_int_equal(mr_store_lock_or_wait(f->t.store, "lock:w", 5000, &w, &l), MR_EUPSTREAM);
    assert_int_equal(h.turns, 1);
    assert_false(l.held);
    /* The holder's lock is still the holder's. */
    assert_string_equal(raw(f, "GET %s", "mr:lock:w", NULL), h.lk.owner);
    assert_int_equal(mr_store_unlock(f->t.store, &h.lk), MR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_set_del, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_set_nx_and_ttl, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_lock_owner, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_lock_lapsed_then_taken, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_lock_ttl, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_lock_across_failover, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_lock_fallback, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_lock_or_wait_free, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_lock_or_wait_result, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_lock_or_wait_handover, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_lock_or_wait_result_between_looks, setup_redis,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lock_or_wait_busy, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_hash, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_batch_and_sets, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_sismember, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_failover_and_back, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_ping_reconnects_at_once, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_ping_after_an_unnoticed_restart, setup_redis,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_when_redis_dies, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_last_error_after_loss, setup_redis, teardown),
        cmocka_unit_test_setup_teardown(test_fallback_only, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_listening, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_tcp, setup_plain, teardown),
    };

    /* As the server does: a write to a dead Redis must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    mr_log_setup("test_store", "error", "stderr");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
