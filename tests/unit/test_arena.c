/* test_arena.c - the per-request arena: alignment, large blocks, resets,
 * cleanups, printf and strndup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/limits.h"

#define ALIGNMENT 16

static void assert_aligned(const void *p)
{
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % ALIGNMENT, 0);
}

static void test_alignment(void **state)
{
    struct mr_arena a;
    (void)state;
    mr_arena_init(&a, 0);
    for (size_t n = 0; n <= 200; n++) {
        unsigned char *p = mr_arena_alloc(&a, n);
        assert_aligned(p);
        memset(p, 0xa5, n);
    }
    /* Odd sizes interleaved with large ones. */
    for (size_t n = 1; n < 100000; n = n * 3 + 1) {
        assert_aligned(mr_arena_alloc(&a, n));
        assert_aligned(mr_arena_alloc(&a, 1));
        assert_aligned(mr_arena_calloc(&a, n, 3));
        assert_aligned(mr_arena_strdup(&a, "x"));
    }
    mr_arena_free(&a);
}

/* Allocations never overlap: each keeps the pattern written into it. */
static void test_no_overlap(void **state)
{
    static const size_t sizes[] = { 1, 7, 16, 17, 100, 1000, 4095, 4096, 4097, 5000,
                                    16384, 20000, 3, 65536, 9, 100000, 33 };
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    unsigned char *p[N];
    struct mr_arena a;
    (void)state;

    mr_arena_init(&a, 0);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < N; i++) {
            p[i] = mr_arena_alloc(&a, sizes[i]);
            assert_aligned(p[i]);
            memset(p[i], (int)(i + 1), sizes[i]);
        }
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < sizes[i]; j++)
                assert_int_equal(p[i][j], (unsigned char)(i + 1));
        mr_arena_reset(&a);
    }
    mr_arena_free(&a);
}

/* A large allocation does not waste the current block's free space and
 * survives alongside later small ones. */
static void test_large(void **state)
{
    struct mr_arena a;
    char *small1, *big, *small2;
    (void)state;

    mr_arena_init(&a, 1024);
    small1 = mr_arena_alloc(&a, 16);
    big = mr_arena_alloc(&a, 1 << 20);
    small2 = mr_arena_alloc(&a, 16);
    assert_non_null(small1);
    assert_aligned(big);
    assert_non_null(small2);
    /* The small ones share the first block, right after each other (past
     * a red zone under ASan). */
    assert_ptr_equal(small2, small1 + 16 + MR_ARENA_REDZONE);
    memset(big, 'b', 1 << 20);
    memset(small1, 's', 16);
    memset(small2, 't', 16);
    assert_int_equal(big[0], 'b');
    assert_int_equal(big[(1 << 20) - 1], 'b');
    assert_true(a.total >= (1 << 20) + 32);

    /* Larger than the block, with no block yet. */
    mr_arena_reset(&a);
    assert_int_equal(a.total, 0);
    big = mr_arena_alloc(&a, 5000);
    assert_aligned(big);
    memset(big, 'c', 5000);
    assert_non_null(mr_arena_alloc(&a, 10));
    mr_arena_reset(&a);
    assert_non_null(mr_arena_alloc(&a, 10));

    /* Sizes that cannot be satisfied fail cleanly. */
    assert_null(mr_arena_alloc(&a, SIZE_MAX));
    assert_null(mr_arena_alloc(&a, SIZE_MAX - 8));
    assert_null(mr_arena_calloc(&a, SIZE_MAX / 2, 3));
    assert_null(mr_arena_strndup(&a, "x", SIZE_MAX));
    mr_arena_free(&a);
}

static void test_arena_calloc(void **state)
{
    struct mr_arena a;
    (void)state;
    mr_arena_init(&a, 256);
    for (int i = 0; i < 50; i++) {
        unsigned char *p = mr_arena_alloc(&a, 100);
        memset(p, 0xff, 100);
    }
    mr_arena_reset(&a);
    for (size_t n = 1; n < 300; n += 37) {
        unsigned char *p = mr_arena_calloc(&a, n, 7);
        assert_aligned(p);
        for (size_t i = 0; i < n * 7; i++)
            assert_int_equal(p[i], 0);
    }
    mr_arena_free(&a);
}

/* Many resets: the arena keeps working, totals restart at zero. */
static void test_reset(void **state)
{
    struct mr_arena a;
    (void)state;
    mr_arena_init(&a, 512);
    for (int round = 0; round < 200; round++) {
        size_t want = 0;
        for (int i = 0; i < round % 17 + 1; i++) {
            size_t n = (size_t)(round * 31 + i * 7) % 700 + 1;
            char *p = mr_arena_alloc(&a, n);
            assert_aligned(p);
            memset(p, 'x', n);
            want += (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        }
        assert_int_equal(a.total, want);
        mr_arena_reset(&a);
        assert_int_equal(a.total, 0);
    }
    /* Reset and free of an arena that never allocated. */
    mr_arena_reset(&a);
    mr_arena_free(&a);
    mr_arena_init(&a, 0);
    mr_arena_reset(&a);
    mr_arena_free(&a);
    /* free leaves it reusable after init. */
    mr_arena_init(&a, 0);
    assert_non_null(mr_arena_strdup(&a, "again"));
    mr_arena_free(&a);
}

/* The first block is kept across resets: a request that made a large
 * allocation must not make the next one go back to malloc for it. */
static void test_reset_keeps_first_block(void **state)
{
    struct mr_arena a;
    struct mr_arena_block *first;
    char *p;
    (void)state;

    mr_arena_init(&a, 1024);
    p = mr_arena_alloc(&a, 16);
    first = a.head;
    assert_non_null(first);
    mr_arena_reset(&a);
    assert_ptr_equal(a.head, first);
    assert_ptr_equal(mr_arena_alloc(&a, 16), p);

    /* Several ordinary blocks. */
    for (int i = 0; i < 20; i++)
        assert_non_null(mr_arena_alloc(&a, 200));
    mr_arena_reset(&a);
    assert_ptr_equal(a.head, first);
    assert_ptr_equal(mr_arena_alloc(&a, 16), p);

    /* A large allocation in between. */
    assert_non_null(mr_arena_alloc(&a, 100000));
    assert_non_null(mr_arena_alloc(&a, 16));
    mr_arena_reset(&a);
    assert_ptr_equal(a.head, first);
    mr_arena_free(&a);
}

/* ---- cleanups ------------------------------------------------------------ */

struct log {
    int order[64];
    int n;
};

struct item {
    struct log *log;
    int id;
};

static void record(void *arg)
{
    struct item *it = arg;
    assert_true(it->log->n < 64);
    it->log->order[it->log->n++] = it->id;
}

static void test_cleanup_order(void **state)
{
    struct mr_arena a;
    struct log log = { .n = 0 };
    struct item items[10];
    (void)state;

    mr_arena_init(&a, 256);
    for (int i = 0; i < 10; i++) {
        items[i] = (struct item){ &log, i };
        assert_int_equal(mr_arena_cleanup(&a, record, &items[i]), MR_OK);
        /* Interleave allocations so the cleanups span several blocks. */
        assert_non_null(mr_arena_alloc(&a, 100));
    }
    assert_int_equal(log.n, 0);
    mr_arena_reset(&a);
    assert_int_equal(log.n, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(log.order[i], 9 - i);

    /* A reset runs each cleanup once: a second reset runs nothing. */
    mr_arena_reset(&a);
    assert_int_equal(log.n, 10);

    /* After the reset, registration works again; free runs them too. */
    log.n = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(mr_arena_cleanup(&a, record, &items[i]), MR_OK);
    mr_arena_free(&a);
    assert_int_equal(log.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(log.order[i], 4 - i);
}

static void free_cleanup(void *p)
{
    free(p);
}

/* A foreign object handed to the arena is freed by it (valgrind/ASan say
 * whether it leaked). */
static void test_cleanup_frees(void **state)
{
    struct mr_arena a;
    (void)state;
    mr_arena_init(&a, 0);
    for (int i = 0; i < 100; i++) {
        char *p = malloc(1000);
        assert_non_null(p);
        assert_int_equal(mr_arena_cleanup(&a, free_cleanup, p), MR_OK);
    }
    mr_arena_reset(&a);
    assert_int_equal(mr_arena_cleanup(&a, free_cleanup, malloc(10)), MR_OK);
    mr_arena_free(&a);
}

/* When the cleanup record cannot be allocated, the object is cleaned up at
 * once and MR_ENOMEM is returned.  A block size of SIZE_MAX makes every new
 * block impossible without asking malloc. */
static void test_cleanup_failure(void **state)
{
    struct mr_arena a;
    struct log log = { .n = 0 };
    struct item it = { &log, 42 };
    (void)state;

    mr_arena_init(&a, SIZE_MAX);
    assert_null(mr_arena_alloc(&a, 16));
    assert_int_equal(mr_arena_cleanup(&a, record, &it), MR_ENOMEM);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.order[0], 42);
    assert_int_equal(mr_arena_cleanup(&a, free_cleanup, malloc(32)), MR_ENOMEM);
    mr_arena_reset(&a);
    mr_arena_free(&a);
    /* Nothing was registered, so nothing runs a second time. */
    assert_int_equal(log.n, 1);
}

/* ---- strings ------------------------------------------------------------- */

static void test_printf(void **state)
{
    struct mr_arena a;
    char *s, big[10000];
    (void)state;

    mr_arena_init(&a, 128);
    s = mr_arena_printf(&a, "%s-%d-%05.1f-%c%%", "abc", -42, 3.14159, 'z');
    assert_string_equal(s, "abc--42-003.1-z%");
    assert_aligned(s);
    s = mr_arena_printf(&a, "%s", "");
    assert_non_null(s);
    assert_string_equal(s, "");
    s = mr_arena_printf(&a, "%zu %lld %x", (size_t)123456789, -1LL, 255u);
    assert_string_equal(s, "123456789 -1 ff");
    /* Longer than the block. */
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    s = mr_arena_printf(&a, "<%s>", big);
    assert_int_equal(strlen(s), sizeof(big) + 1);
    assert_int_equal(s[0], '<');
    assert_int_equal(s[1], 'q');
    assert_int_equal(s[sizeof(big) - 1], 'q');
    assert_int_equal(s[sizeof(big)], '>');
    mr_arena_free(&a);
}

static void test_strndup(void **state)
{
    static const char src[] = "hello\0world";
    struct mr_arena a;
    char *s;
    (void)state;

    mr_arena_init(&a, 0);
    s = mr_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    s = mr_arena_strndup(&a, "abc", 0);
    assert_non_null(s);
    assert_string_equal(s, "");
    /* Copies n bytes, NULs included, and terminates. */
    s = mr_arena_strndup(&a, src, sizeof(src) - 1);
    assert_memory_equal(s, src, sizeof(src));
    s = mr_arena_strdup(&a, "dup");
    assert_string_equal(s, "dup");
    s = mr_arena_strdup_str(&a, MR_STR("str"));
    assert_string_equal(s, "str");
    s = mr_arena_strdup_str(&a, (struct mr_str){ "strings", 3 });
    assert_string_equal(s, "str");
    s = mr_arena_strdup_str(&a, MR_STR_NULL);
    assert_non_null(s);
    assert_string_equal(s, "");
    mr_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_no_overlap),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_arena_calloc),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_reset_keeps_first_block),
        cmocka_unit_test(test_cleanup_order),
        cmocka_unit_test(test_cleanup_frees),
        cmocka_unit_test(test_cleanup_failure),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_strndup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
