/* test_clock.c - the clocks, and the offset tests move them with: it moves
 * both, at once for every thread, and what reads the clock (the in-process
 * cache's TTLs here) sees time pass without a sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/lru.h"

/* Far more than a test run takes: an upper bound that cannot flake. */
#define SLACK_MS (10LL * 60 * 1000)

static int reset(void **state)
{
    (void)state;
    mr_clock_set_offset(0);
    return 0;
}

static void test_monotonic(void **state)
{
    long long prev = mr_clock_mono_ms(), prev_us = mr_clock_mono_us();

    (void)state;
    for (int i = 0; i < 100000; i++) {
        long long ms = mr_clock_mono_ms(), us = mr_clock_mono_us();
        assert_true(ms >= prev);
        assert_true(us >= prev_us);
        /* The two units read one clock. */
        assert_true(us / 1000 >= ms);
        prev = ms;
        prev_us = us;
    }
}

static void test_wall_is_time(void **state)
{
    time_t before = time(NULL);
    time_t s = mr_clock_wall_s();
    long long ms = mr_clock_wall_ms();
    time_t after = time(NULL);

    (void)state;
    /* time() may lag the fine clock by a tick: a second either side. */
    assert_true(s >= before - 1 && s <= after + 1);
    assert_true(ms / 1000 >= before - 1 && ms / 1000 <= after + 1);
}

static void test_offset_moves_both(void **state)
{
    long long m0 = mr_clock_mono_ms(), w0 = mr_clock_wall_ms();
    time_t s0 = mr_clock_wall_s();
    long long m1, w1;

    (void)state;
    mr_clock_set_offset(3600 * 1000);
    m1 = mr_clock_mono_ms();
    w1 = mr_clock_wall_ms();
    assert_true(m1 - m0 >= 3600 * 1000 && m1 - m0 < 3600 * 1000 + SLACK_MS);
    assert_true(w1 - w0 >= 3600 * 1000 && w1 - w0 < 3600 * 1000 + SLACK_MS);
    assert_true(mr_clock_wall_s() - s0 >= 3600);
    assert_true(mr_clock_mono_us() / 1000 >= m1);
    /* Back to the real time: not before where it started. */
    mr_clock_set_offset(0);
    assert_true(mr_clock_mono_ms() >= m0 && mr_clock_mono_ms() < m1);
    assert_true(mr_clock_wall_ms() >= w0 && mr_clock_wall_ms() < w1);
}

static void *read_mono(void *arg)
{
    *(long long *)arg = mr_clock_mono_ms();
    return NULL;
}

static void test_offset_seen_by_other_threads(void **state)
{
    long long here, there = 0;
    pthread_t th;

    (void)state;
    mr_clock_set_offset(24LL * 3600 * 1000);
    here = mr_clock_mono_ms();
    assert_int_equal(pthread_create(&th, NULL, read_mono, &there), 0);
    pthread_join(th, NULL);
    assert_true(there >= here);
    mr_clock_set_offset(0);
    assert_true(mr_clock_mono_ms() < here);
}

/* The in-process cache counts its TTLs on this clock. */
static void test_lru_ttl_follows_the_clock(void **state)
{
    struct mr_lru *l = mr_lru_new(16, 1 << 16);
    struct mr_arena a;
    struct mr_str v;

    (void)state;
    assert_non_null(l);
    mr_arena_init(&a, 0);
    assert_int_equal(mr_lru_set(l, "k", "v", 1, 60 * 1000, 0), MR_OK);
    assert_int_equal(mr_lru_get(l, "k", &a, &v), MR_OK);
    mr_clock_set_offset(59 * 1000);
    assert_int_equal(mr_lru_get(l, "k", &a, &v), MR_OK);
    mr_clock_set_offset(61 * 1000);
    assert_int_equal(mr_lru_get(l, "k", &a, &v), MR_ENOTFOUND);
    mr_clock_set_offset(0);
    mr_arena_free(&a);
    mr_lru_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_monotonic, reset),
        cmocka_unit_test_teardown(test_wall_is_time, reset),
        cmocka_unit_test_teardown(test_offset_moves_both, reset),
        cmocka_unit_test_teardown(test_offset_seen_by_other_threads, reset),
        cmocka_unit_test_teardown(test_lru_ttl_follows_the_clock, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
