/* test_lru.c - the in-process fallback cache: get/set/del, nx, TTL,
 * eviction by count and by bytes, incr, threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/lru.h"

struct fix {
    struct mr_arena a;
};

static int setup(void **state)
{
    struct fix *f = malloc(sizeof(*f));
    if (!f)
        return -1;
    mr_arena_init(&f->a, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    mr_arena_free(&f->a);
    free(f);
    return 0;
}

static void set_ok(struct mr_lru *l, const char *key, const char *val)
{
    assert_int_equal(mr_lru_set(l, key, val, strlen(val), 0, 0), MR_OK);
}

static void assert_value(struct mr_lru *l, struct mr_arena *a, const char *key, const char *want)
{
    struct mr_str v = { NULL, 0 };
    int rc = mr_lru_get(l, key, a, &v);
    if (!want) {
        if (rc != MR_ENOTFOUND)
            fail_msg("get(%s): got %d, want MR_ENOTFOUND", key, rc);
        return;
    }
    if (rc != MR_OK)
        fail_msg("get(%s): got %d, want \"%s\"", key, rc, want);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.p, want, v.len);
    assert_int_equal(v.p[v.len], '\0');
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void test_basic(void **state)
{
    struct fix *f = *state;
    struct mr_lru *l = mr_lru_new(100, 1 << 20);
    struct mr_str v;
    static const char bin[] = { 'a', 0, 'b', 0 };

    assert_non_null(l);
    assert_int_equal(mr_lru_count(l), 0);
    assert_int_equal(mr_lru_bytes(l), 0);
    assert_value(l, &f->a, "k", NULL);

    set_ok(l, "k", "v1");
    assert_value(l, &f->a, "k", "v1");
    assert_int_equal(mr_lru_count(l), 1);
    assert_true(mr_lru_bytes(l) > 0);
    /* Overwrite. */
    set_ok(l, "k", "value two");
    assert_value(l, &f->a, "k", "value two");
    assert_int_equal(mr_lru_count(l), 1);
    /* Empty value, binary value. */
    set_ok(l, "empty", "");
    assert_value(l, &f->a, "empty", "");
    assert_int_equal(mr_lru_set(l, "bin", bin, sizeof(bin), 0, 0), MR_OK);
    assert_int_equal(mr_lru_get(l, "bin", &f->a, &v), MR_OK);
    assert_int_equal(v.len, sizeof(bin));
    assert_memory_equal(v.p, bin, sizeof(bin));
    /* Keys are exact: no prefix or case folding. */
    set_ok(l, "ke", "other");
    set_ok(l, "K", "upper");
    assert_value(l, &f->a, "k", "value two");
    assert_value(l, &f->a, "ke", "other");
    assert_value(l, &f->a, "K", "upper");
    assert_value(l, &f->a, "", NULL);
    assert_int_equal(mr_lru_count(l), 5);

    /* The copy is the caller's: changing it does not change the cache. */
    assert_int_equal(mr_lru_get(l, "k", &f->a, &v), MR_OK);
    ((char *)v.p)[0] = 'X';
    assert_value(l, &f->a, "k", "value two");

    /* del */
    assert_int_equal(mr_lru_del(l, "k"), MR_OK);
    assert_value(l, &f->a, "k", NULL);
    assert_int_equal(mr_lru_del(l, "k"), MR_OK);   /* absent: fine */
    assert_int_equal(mr_lru_count(l), 4);
    assert_int_equal(mr_lru_del(l, "ke"), MR_OK);
    assert_int_equal(mr_lru_del(l, "K"), MR_OK);
    assert_int_equal(mr_lru_del(l, "empty"), MR_OK);
    assert_int_equal(mr_lru_del(l, "bin"), MR_OK);
    assert_int_equal(mr_lru_count(l), 0);
    assert_int_equal(mr_lru_bytes(l), 0);
    mr_lru_free(l);
    mr_lru_free(NULL);
}

/* Many keys: the hash table holds them all apart. */
static void test_many(void **state)
{
    struct fix *f = *state;
    struct mr_lru *l = mr_lru_new(5000, 64 << 20);
    char key[32], val[32];

    assert_non_null(l);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(val, sizeof(val), "val-%d", i * 7);
        set_ok(l, key, val);
    }
    assert_int_equal(mr_lru_count(l), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(val, sizeof(val), "val-%d", i * 7);
        assert_value(l, &f->a, key, val);
        if (i % 100 == 99)
            mr_arena_reset(&f->a);
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof(key), "key:%d", i);
        assert_int_equal(mr_lru_del(l, key), MR_OK);
    }
    assert_int_equal(mr_lru_count(l), 2500);
    assert_value(l, &f->a, "key:1", "val-7");
    assert_value(l, &f->a, "key:2", NULL);
    mr_lru_free(l);
}

static void test_nx(void **state)
{
    struct fix *f = *state;
    struct mr_lru *l = mr_lru_new(10, 1 << 20);

    assert_int_equal(mr_lru_set(l, "lock", "a", 1, 0, 1), MR_OK);
    assert_int_equal(mr_lru_set(l, "lock", "b", 1, 0, 1), MR_EBUSY);
    assert_value(l, &f->a, "lock", "a");
    /* Without nx it overwrites. */
    assert_int_equal(mr_lru_set(l, "lock", "c", 1, 0, 0), MR_OK);
    assert_value(l, &f->a, "lock", "c");
    /* After a del, nx succeeds again. */
    assert_int_equal(mr_lru_del(l, "lock"), MR_OK);
    assert_int_equal(mr_lru_set(l, "lock", "d", 1, 0, 1), MR_OK);
    assert_value(l, &f->a, "lock", "d");
    assert_int_equal(mr_lru_count(l), 1);
    /* Compare-and-delete: only the value it holds deletes it. */
    assert_int_equal(mr_lru_del_if(l, "lock", "e", 1), MR_EBUSY);
    assert_int_equal(mr_lru_del_if(l, "lock", "dd", 2), MR_EBUSY);
    assert_int_equal(mr_lru_del_if(l, "lock", "", 0), MR_EBUSY);
    assert_value(l, &f->a, "lock", "d");
    assert_int_equal(mr_lru_del_if(l, "lock", "d", 1), MR_OK);
    assert_value(l, &f->a, "lock", NULL);
    assert_int_equal(mr_lru_del_if(l, "lock", "d", 1), MR_ENOTFOUND);
    assert_int_equal(mr_lru_count(l), 0);
    mr_lru_free(l);
}

/* The only timing-dependent test: a 30 ms TTL, a 60 ms sleep. */
static void test_ttl(void **state)
{
    struct fix *f = *state;
    struct mr_lru *l = mr_lru_new(10, 1 << 20);
    long long n = 0;

    assert_int_equal(mr_lru_set(l, "short", "x", 1, 30, 0), MR_OK);
    assert_int_equal(mr_lru_set(l, "long", "y", 1, 600000, 0), MR_OK);
    assert_int_equal(mr_lru_set(l, "forever", "z", 1, 0, 0), MR_OK);
    assert_int_equal(mr_lru_set(l, "lock", "l", 1, 30, 1), MR_OK);
    assert_int_equal(mr_lru_incr(l, "counter", 5, &n), MR_OK);
    assert_int_equal(mr_lru_set(l, "counter", "5", 1, 30, 0), MR_OK);
    assert_int_equal(mr_lru_incr(l, "counter", 1, &n), MR_OK);   /* keeps the TTL */
    assert_int_equal(n, 6);
    assert_int_equal(mr_lru_count(l), 5);

    sleep_ms(60);

    assert_value(l, &f->a, "short", NULL);
    assert_value(l, &f->a, "long", "y");
    assert_value(l, &f->a, "forever", "z");
    /* An expired lock is not there to delete, and can be taken again
     * with nx. */
    assert_int_equal(mr_lru_del_if(l, "lock", "l", 1), MR_ENOTFOUND);
    assert_int_equal(mr_lru_set(l, "lock", "m", 1, 0, 1), MR_OK);
    assert_value(l, &f->a, "lock", "m");
    /* An expired counter starts over. */
    assert_int_equal(mr_lru_incr(l, "counter", 1, &n), MR_OK);
    assert_int_equal(n, 1);
    /* Expired entries are gone from the counts once seen. */
    assert_int_equal(mr_lru_count(l), 4);
    mr_lru_free(l);
}

/* Entry count bound: the least recently used goes first; a get makes an
 * entry recent. */
static void test_evict_count(void **state)
{
    struct fix *f = *state;
    struct mr_lru *l = mr_lru_new(3, 1 << 20);

    set_ok(l, "a", "1");
    set_ok(l, "b", "2");
    set_ok(l, "c", "3");
    assert_int_equal(mr_lru_count(l), 3);
    set_ok(l, "d", "4");                       /* evicts a */
    assert_int_equal(mr_lru_count(l), 3);
    assert_value(l, &f->a, "a", NULL);
    /* Order now (recent first): d c b.  Touch b. */
    assert_value(l, &f->a, "b", "2");          /* b d c */
    set_ok(l, "e", "5");                       /* evicts c */
    assert_value(l, &f->a, "c", NULL);
    assert_value(l, &f->a, "b", "2");
    assert_value(l, &f->a, "d", "4");
    assert_value(l, &f->a, "e", "5");          /* e d b */
    /* Overwriting makes an entry recent too. */
    set_ok(l, "b", "22");                      /* b e d */
    set_ok(l, "f", "6");                       /* evicts d */
    assert_value(l, &f->a, "d", NULL);
    assert_value(l, &f->a, "b", "22");
    assert_value(l, &f->a, "e", "5");
    assert_value(l, &f->a, "f", "6");
    /* A failed nx set does not evict anything. */
    assert_int_equal(mr_lru_set(l, "f", "x", 1, 0, 1), MR_EBUSY);
    assert_int_equal(mr_lru_count(l), 3);
    assert_value(l, &f->a, "b", "22");
    mr_lru_free(l);

    /* max_entries 1. */
    l = mr_lru_new(1, 1 << 20);
    set_ok(l, "a", "1");
    set_ok(l, "b", "2");
    assert_int_equal(mr_lru_count(l), 1);
    assert_value(l, &f->a, "a", NULL);
    assert_value(l, &f->a, "b", "2");
    mr_lru_free(l);
}

/* Byte bound, with entries of equal cost. */
static void test_evict_bytes(void **state)
{
    struct fix *f = *state;
    struct mr_lru *probe = mr_lru_new(10, 1 << 20);
    struct mr_lru *l;
    size_t cost;
    char big[4096];

    set_ok(probe, "k1", "0123456789");
    cost = mr_lru_bytes(probe);
    assert_true(cost >= 12);   /* at least key and value */
    mr_lru_free(probe);

    /* Room for three entries by bytes, ten by count. */
    l = mr_lru_new(10, 3 * cost + cost / 2);
    set_ok(l, "k1", "0123456789");
    set_ok(l, "k2", "0123456789");
    set_ok(l, "k3", "0123456789");
    assert_int_equal(mr_lru_count(l), 3);
    assert_int_equal(mr_lru_bytes(l), 3 * cost);
    assert_value(l, &f->a, "k1", "0123456789");    /* k1 k3 k2 */
    set_ok(l, "k4", "0123456789");                  /* evicts k2 */
    assert_int_equal(mr_lru_count(l), 3);
    assert_true(mr_lru_bytes(l) <= 3 * cost + cost / 2);
    assert_value(l, &f->a, "k2", NULL);
    assert_value(l, &f->a, "k1", "0123456789");
    assert_value(l, &f->a, "k3", "0123456789");
    assert_value(l, &f->a, "k4", "0123456789");     /* k4 k3 k1 */

    /* A bigger value pushes out as many as it needs, oldest first.  An
     * entry costs overhead + key + value: with a value one cost longer
     * than k1's, k5 costs two. */
    memset(big, 'b', sizeof(big));
    assert_int_equal(mr_lru_set(l, "k5", big, cost + 10, 0, 0), MR_OK);
    assert_int_equal(mr_lru_bytes(l), 3 * cost);
    assert_true(mr_lru_bytes(l) <= 3 * cost + cost / 2);
    assert_value(l, &f->a, "k1", NULL);
    assert_value(l, &f->a, "k3", NULL);
    assert_value(l, &f->a, "k4", "0123456789");
    assert_int_equal(mr_lru_count(l), 2);

    /* A value that could never fit: MR_ETOOBIG, and nothing is evicted. */
    assert_int_equal(mr_lru_set(l, "huge", big, 4 * cost, 0, 0), MR_ETOOBIG);
    assert_int_equal(mr_lru_set(l, "huge", big, 4 * cost, 0, 1), MR_ETOOBIG);
    assert_value(l, &f->a, "huge", NULL);
    assert_int_equal(mr_lru_count(l), 2);
    assert_value(l, &f->a, "k4", "0123456789");
    mr_lru_free(l);

    /* Larger than max_bytes in an empty cache. */
    l = mr_lru_new(10, 100);
    assert_int_equal(mr_lru_set(l, "k", big, 101, 0, 0), MR_ETOOBIG);
    assert_int_equal(mr_lru_set(l, "k", big, sizeof(big), 0, 0), MR_ETOOBIG);
    assert_int_equal(mr_lru_count(l), 0);
    assert_int_equal(mr_lru_bytes(l), 0);
    mr_lru_free(l);
}

static void test_incr(void **state)
{
    struct fix *f = *state;
    struct mr_lru *l = mr_lru_new(10, 1 << 20);
    long long n = -1;

    assert_int_equal(mr_lru_incr(l, "c", 1, &n), MR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(mr_lru_incr(l, "c", 41, &n), MR_OK);
    assert_int_equal(n, 42);
    assert_value(l, &f->a, "c", "42");
    assert_int_equal(mr_lru_incr(l, "c", -50, &n), MR_OK);
    assert_int_equal(n, -8);
    assert_value(l, &f->a, "c", "-8");
    assert_int_equal(mr_lru_incr(l, "c", 0, NULL), MR_OK);
    assert_value(l, &f->a, "c", "-8");
    /* A value set as a string counts on from it. */
    set_ok(l, "s", "100");
    assert_int_equal(mr_lru_incr(l, "s", 5, &n), MR_OK);
    assert_int_equal(n, 105);
    /* Large numbers. */
    assert_int_equal(mr_lru_incr(l, "big", 9000000000000000000LL, &n), MR_OK);
    assert_int_equal(mr_lru_incr(l, "big", 1, &n), MR_OK);
    assert_true(n == 9000000000000000001LL);
    assert_value(l, &f->a, "big", "9000000000000000001");
    assert_int_equal(mr_lru_count(l), 3);
    mr_lru_free(l);
}

/* ---- threads ------------------------------------------------------------- */

#define THREADS 4
#define OPS 10000
#define MT_ENTRIES 50
#define MT_BYTES 8192

struct worker {
    struct mr_lru *l;
    struct mr_lru *counters;
    unsigned seed;
    int errors;
};

static unsigned next_rand(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct mr_arena a;
    char key[32], val[128];

    mr_arena_init(&a, 0);
    for (int i = 0; i < OPS; i++) {
        unsigned r = next_rand(&w->seed);
        struct mr_str v;
        long long n;
        int rc;

        snprintf(key, sizeof(key), "k%u", r % 100);
        switch (r >> 8 & 7) {
        case 0:
        case 1:
        case 2: {
            size_t len = (r >> 12) % sizeof(val);
            memset(val, 'a' + (int)(r % 26), len);
            rc = mr_lru_set(w->l, key, val, len, (r & 1) ? 0 : 1000, (int)(r >> 20 & 1));
            if (rc != MR_OK && rc != MR_EBUSY)
                w->errors++;
            break;
        }
        case 3:
        case 4:
        case 5:
            rc = mr_lru_get(w->l, key, &a, &v);
            if (rc == MR_OK) {
                /* A value is all one letter. */
                for (size_t j = 1; j < v.len; j++)
                    if (v.p[j] != v.p[0])
                        w->errors++;
            } else if (rc != MR_ENOTFOUND) {
                w->errors++;
            }
            break;
        case 6:
            if (mr_lru_del(w->l, key) != MR_OK)
                w->errors++;
            break;
        default:
            snprintf(key, sizeof(key), "n%u", r % 100);
            if (mr_lru_incr(w->l, key, 1, &n) != MR_OK || n < 1)
                w->errors++;
            break;
        }
        if (mr_lru_count(w->l) > MT_ENTRIES || mr_lru_bytes(w->l) > MT_BYTES)
            w->errors++;
        /* A counter no other operation touches: increments are atomic. */
        if (mr_lru_incr(w->counters, "total", 1, NULL) != MR_OK)
            w->errors++;
        if (i % 256 == 255)
            mr_arena_reset(&a);
    }
    mr_arena_free(&a);
    return NULL;
}

static void test_threads(void **state)
{
    struct fix *f = *state;
    struct mr_lru *l = mr_lru_new(MT_ENTRIES, MT_BYTES);
    struct mr_lru *counters = mr_lru_new(10, 1 << 20);
    struct worker w[THREADS];
    pthread_t t[THREADS];
    char want[32];

    assert_non_null(l);
    assert_non_null(counters);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ l, counters, 0x9e3779b9u * (unsigned)(i + 1), 0 };
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].errors, 0);
    }
    assert_true(mr_lru_count(l) <= MT_ENTRIES);
    assert_true(mr_lru_bytes(l) <= MT_BYTES);
    snprintf(want, sizeof(want), "%d", THREADS * OPS);
    assert_value(counters, &f->a, "total", want);
    mr_lru_free(l);
    mr_lru_free(counters);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evict_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evict_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
