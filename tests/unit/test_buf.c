/* test_buf.c - capped buffers: the cap, NUL termination, printf, steal,
 * reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/error.h"

static void assert_contents(const struct mr_buf *b, const char *want, size_t n)
{
    struct mr_str s = mr_buf_str(b);
    assert_int_equal(b->len, n);
    assert_int_equal(s.len, n);
    assert_memory_equal(s.p, want, n);
    assert_int_equal(s.p[n], '\0');
    assert_true(b->len <= b->cap);
}

static void test_empty(void **state)
{
    struct mr_buf b;
    struct mr_str s;
    (void)state;
    mr_buf_init(&b, 100);
    s = mr_buf_str(&b);
    assert_non_null(s.p);
    assert_int_equal(s.len, 0);
    assert_string_equal(s.p, "");
    mr_buf_reset(&b);
    assert_int_equal(b.len, 0);
    mr_buf_free(&b);
    mr_buf_free(&b);   /* twice is harmless */
}

static void test_append_nul(void **state)
{
    struct mr_buf b;
    char expect[3000];
    size_t n = 0;
    (void)state;

    mr_buf_init(&b, sizeof(expect));
    /* Grows through several reallocations; always NUL-terminated. */
    for (int i = 0; i < 300; i++) {
        char chunk[10];
        for (int j = 0; j < 9; j++)
            chunk[j] = (char)('a' + (i + j) % 26);
        chunk[9] = '\0';
        assert_int_equal(mr_buf_append(&b, chunk, 9), MR_OK);
        memcpy(expect + n, chunk, 9);
        n += 9;
        assert_contents(&b, expect, n);
        assert_true(b.size > b.len);
    }
    /* Embedded NUL bytes are kept and counted. */
    assert_int_equal(mr_buf_append(&b, "x\0y", 3), MR_OK);
    memcpy(expect + n, "x\0y", 3);
    n += 3;
    assert_contents(&b, expect, n);
    /* Appending nothing keeps everything. */
    assert_int_equal(mr_buf_append(&b, "", 0), MR_OK);
    assert_contents(&b, expect, n);
    mr_buf_free(&b);

    /* An empty append to an empty buffer still gives a terminated string. */
    mr_buf_init(&b, 10);
    assert_int_equal(mr_buf_append(&b, "", 0), MR_OK);
    assert_non_null(b.p);
    assert_contents(&b, "", 0);
    assert_int_equal(mr_buf_puts(&b, "ab"), MR_OK);
    assert_int_equal(mr_buf_append_str(&b, MR_STR("cd")), MR_OK);
    assert_contents(&b, "abcd", 4);
    mr_buf_free(&b);
}

static void test_cap(void **state)
{
    static const struct {
        size_t cap;
        const char *first;     /* appended first, fits */
        const char *second;    /* then this, must not fit */
    } cases[] = {
        { 0, "", "a" },
        { 1, "a", "b" },
        { 5, "abc", "def" },
        { 5, "abcde", "f" },
        { 255, "", NULL },     /* NULL: 256 bytes of 'z' */
        { 256, "0123456789", NULL },
        { 1000, "x", NULL },
    };
    char big[1200];
    (void)state;

    memset(big, 'z', sizeof(big));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_buf b;
        size_t flen = strlen(cases[i].first);
        size_t slen = cases[i].second ? strlen(cases[i].second) : cases[i].cap - flen + 1;
        const char *second = cases[i].second ? cases[i].second : big;

        mr_buf_init(&b, cases[i].cap);
        assert_int_equal(mr_buf_append(&b, cases[i].first, flen), MR_OK);
        assert_int_equal(mr_buf_append(&b, second, slen), MR_ETOOBIG);
        assert_contents(&b, cases[i].first, flen);
        assert_int_equal(mr_buf_reserve(&b, slen), MR_ETOOBIG);
        assert_int_equal(mr_buf_printf(&b, "%.*s", (int)slen, second), MR_ETOOBIG);
        assert_contents(&b, cases[i].first, flen);
        if (cases[i].second)
            assert_int_equal(mr_buf_puts(&b, cases[i].second), MR_ETOOBIG);
        assert_contents(&b, cases[i].first, flen);
        /* Exactly up to the cap is fine. */
        assert_int_equal(mr_buf_append(&b, second, slen - 1), MR_OK);
        assert_int_equal(b.len, cases[i].cap);
        assert_int_equal(b.p[b.len], '\0');
        assert_int_equal(mr_buf_append(&b, "q", 1), MR_ETOOBIG);
        assert_int_equal(b.len, cases[i].cap);
        assert_true(b.size <= cases[i].cap + 1);
        mr_buf_free(&b);
    }
}

/* Lengths near SIZE_MAX must not wrap the cap check. */
static void test_cap_overflow(void **state)
{
    struct mr_buf b;
    (void)state;
    mr_buf_init(&b, SIZE_MAX - 1);
    assert_int_equal(mr_buf_puts(&b, "abc"), MR_OK);
    assert_int_equal(mr_buf_reserve(&b, SIZE_MAX), MR_ETOOBIG);
    assert_int_equal(mr_buf_reserve(&b, SIZE_MAX - 3), MR_ETOOBIG);
    assert_contents(&b, "abc", 3);
    mr_buf_free(&b);
}

static void test_printf(void **state)
{
    struct mr_buf b;
    char big[600];
    (void)state;

    mr_buf_init(&b, 2000);
    assert_int_equal(mr_buf_printf(&b, "%d-%s", 42, "x"), MR_OK);
    assert_contents(&b, "42-x", 4);
    assert_int_equal(mr_buf_printf(&b, "%s", ""), MR_OK);
    assert_contents(&b, "42-x", 4);
    assert_int_equal(mr_buf_printf(&b, "[%05u|%-3s|%x]", 7u, "a", 255u), MR_OK);
    assert_contents(&b, "42-x[00007|a  |ff]", 18);
    /* A long one, past the first allocation. */
    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(mr_buf_printf(&b, "%s", big), MR_OK);
    assert_int_equal(b.len, 18 + sizeof(big) - 1);
    assert_memory_equal(b.p + 18, big, sizeof(big) - 1);
    assert_int_equal(b.p[b.len], '\0');
    mr_buf_free(&b);

    /* printf exactly to the cap, then one more byte. */
    mr_buf_init(&b, 6);
    assert_int_equal(mr_buf_printf(&b, "%s%d", "abc", 123), MR_OK);
    assert_contents(&b, "abc123", 6);
    assert_int_equal(mr_buf_printf(&b, "%c", 'x'), MR_ETOOBIG);
    assert_contents(&b, "abc123", 6);
    mr_buf_free(&b);
}

static void test_steal(void **state)
{
    struct mr_buf b;
    char *p;
    size_t len = 999;
    (void)state;

    mr_buf_init(&b, 100);
    assert_int_equal(mr_buf_puts(&b, "stolen"), MR_OK);
    p = mr_buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 6);
    assert_string_equal(p, "stolen");
    /* The buffer is empty and usable; the stolen memory is the caller's. */
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.size, 0);
    assert_int_equal(b.cap, 100);
    assert_int_equal(mr_buf_str(&b).len, 0);
    assert_int_equal(mr_buf_puts(&b, "again"), MR_OK);
    assert_contents(&b, "again", 5);
    assert_string_equal(p, "stolen");
    free(p);
    p = mr_buf_steal(&b, NULL);
    assert_string_equal(p, "again");
    free(p);
    mr_buf_free(&b);
}

static void test_reset(void **state)
{
    struct mr_buf b;
    char *mem;
    size_t size;
    (void)state;

    mr_buf_init(&b, 1000);
    assert_int_equal(mr_buf_puts(&b, "some content"), MR_OK);
    mem = b.p;
    size = b.size;
    mr_buf_reset(&b);
    assert_contents(&b, "", 0);
    /* The memory is kept. */
    assert_ptr_equal(b.p, mem);
    assert_int_equal(b.size, size);
    assert_int_equal(mr_buf_puts(&b, "new"), MR_OK);
    assert_contents(&b, "new", 3);
    /* The whole cap is available again after a reset. */
    mr_buf_reset(&b);
    for (int i = 0; i < 100; i++)
        assert_int_equal(mr_buf_puts(&b, "0123456789"), MR_OK);
    assert_int_equal(b.len, 1000);
    assert_int_equal(mr_buf_puts(&b, "x"), MR_ETOOBIG);
    mr_buf_free(&b);
    assert_null(b.p);
    /* Reusable after init. */
    mr_buf_init(&b, 10);
    assert_int_equal(mr_buf_puts(&b, "ok"), MR_OK);
    mr_buf_free(&b);
}

/* mr_buf_cleanup frees a buffer's memory when its arena is reset. */
static void test_arena_cleanup(void **state)
{
    struct mr_arena a;
    struct mr_buf *b;
    (void)state;

    mr_arena_init(&a, 0);
    b = mr_arena_alloc(&a, sizeof(*b));
    mr_buf_init(b, 1 << 20);
    assert_int_equal(mr_arena_cleanup(&a, mr_buf_cleanup, b), MR_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(mr_buf_puts(b, "grow the buffer "), MR_OK);
    mr_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_append_nul),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_cap_overflow),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_arena_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
