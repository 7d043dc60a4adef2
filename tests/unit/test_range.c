/* test_range.c - the Range header: what the segment cache serves, what the
 * relay forwards. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "http/range.h"

#define WHOLE (-2)      /* want: the whole object */
#define UNSAT (-3)      /* want: 416 */

static void test_parse(void **state)
{
    static const struct {
        const char *value;
        long long len, from, to;   /* from WHOLE or UNSAT: no range */
    } cases[] = {
        { NULL, 100, WHOLE, 0 },
        { "bytes=0-9", 100, 0, 9 },
        { "bytes= 5-9", 100, 5, 9 },
        { "bytes=5-", 100, 5, 99 },
        { "bytes=5-1000", 100, 5, 99 },
        { "bytes=99-99", 100, 99, 99 },
        { "bytes=-10", 100, 90, 99 },
        { "bytes=-1000", 100, 0, 99 },
        { "bytes=100-", 100, UNSAT, 0 },
        { "bytes=100-200", 100, UNSAT, 0 },
        { "bytes=-0", 100, UNSAT, 0 },
        { "bytes=0-", 0, UNSAT, 0 },
        /* regression (found by fuzz_range): the suffix of an empty object was
         * [0, -1], a 206 with "Content-Range: bytes 0--1/0" */
        { "bytes=-5", 0, WHOLE, 0 },
        { "bytes=-0", 0, UNSAT, 0 },
        /* ignored: not one plain byte range */
        { "items=0-9", 100, WHOLE, 0 },
        { "bytes=0-1,5-9", 100, WHOLE, 0 },
        { "bytes=9-5", 100, WHOLE, 0 },
        { "bytes=", 100, WHOLE, 0 },
        { "bytes=-", 100, WHOLE, 0 },
        { "bytes=a-b", 100, WHOLE, 0 },
        { "bytes=5", 100, WHOLE, 0 },
        { "bytes=5-9x", 100, WHOLE, 0 },
        { "bytes=--5", 100, WHOLE, 0 },
        { "bytes=-5-", 100, WHOLE, 0 },
        { "bytes=+5-9", 100, 5, 9 },     /* strtoll's sign: as before */
        /* an unknown length: what needs the length is the whole object */
        { "bytes=1-3", -1, 1, 3 },
        { "bytes=5-", -1, WHOLE, 0 },
        { "bytes=-5", -1, WHOLE, 0 },
        { "bytes=-0", -1, WHOLE, 0 },
        /* the largest numbers: strtoll saturates, nothing overflows */
        { "bytes=0-9223372036854775807", -1, WHOLE, 0 },
        { "bytes=0-99999999999999999999", -1, WHOLE, 0 },
        { "bytes=0-9223372036854775806", -1, 0, LLONG_MAX - 1 },
        { "bytes=0-99999999999999999999", 100, 0, 99 },
        { "bytes=99999999999999999999-", 100, UNSAT, 0 },
        { "bytes=-99999999999999999999", 100, 0, 99 },
        { "bytes=9223372036854775806-", LLONG_MAX, LLONG_MAX - 1, LLONG_MAX - 1 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_range r;
        int rc = mr_range_parse(cases[i].value, cases[i].len, &r);
        print_message("%s on %lld\n", cases[i].value ? cases[i].value : "(none)", cases[i].len);
        if (cases[i].from == UNSAT) {
            assert_int_equal(rc, MR_ERANGE);
            continue;
        }
        assert_int_equal(rc, MR_OK);
        if (cases[i].from == WHOLE) {
            assert_false(r.partial);
            assert_int_equal(r.from, 0);
            assert_int_equal(r.to, cases[i].len >= 0 ? cases[i].len - 1 : -1);
        } else {
            assert_true(r.partial);
            assert_int_equal(r.from, cases[i].from);
            assert_int_equal(r.to, cases[i].to);
        }
    }
}

static void test_forwardable(void **state)
{
    (void)state;
    assert_true(mr_range_forwardable("bytes=0-9"));
    assert_true(mr_range_forwardable("bytes=0-1, 5-9"));
    assert_true(mr_range_forwardable("bytes=-5"));
    assert_false(mr_range_forwardable("bytes="));
    assert_false(mr_range_forwardable("items=0-9"));
    assert_false(mr_range_forwardable("bytes=0-9\r\nX: y"));
    assert_false(mr_range_forwardable("bytes=0-9;x"));
    char big[300];
    memset(big, '1', sizeof(big) - 1);
    memcpy(big, "bytes=", 6);
    big[sizeof(big) - 1] = 0;
    assert_false(mr_range_forwardable(big));
    big[256] = 0;
    assert_true(mr_range_forwardable(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_forwardable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
