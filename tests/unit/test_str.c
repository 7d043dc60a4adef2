/* test_str.c - the mr_str_* helpers. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/str.h"

static void assert_str(struct mr_str s, const char *want)
{
    assert_non_null(s.p);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void test_eq(void **state)
{
    (void)state;
    assert_true(mr_str_eq(MR_STR("abc"), MR_STR("abc")));
    assert_false(mr_str_eq(MR_STR("abc"), MR_STR("abd")));
    assert_false(mr_str_eq(MR_STR("abc"), MR_STR("ab")));
    assert_true(mr_str_eq(MR_STR(""), MR_STR_NULL));
    assert_true(mr_str_eq_c((struct mr_str){ "abcdef", 3 }, "abc"));
    assert_false(mr_str_eq_c((struct mr_str){ "abcdef", 3 }, "abcd"));
    assert_true(mr_str_caseeq_c(MR_STR("Content-Type"), "content-type"));
    assert_false(mr_str_caseeq_c(MR_STR("Content-Typ"), "content-type"));
    assert_true(mr_str_caseeq_c(MR_STR_NULL, ""));
    assert_true(mr_str_starts_c(MR_STR("Bearer xyz"), "Bearer "));
    assert_false(mr_str_starts_c(MR_STR("Bear"), "Bearer "));
    assert_true(mr_str_starts_c(MR_STR("x"), ""));
    assert_int_equal(mr_str_c(NULL).len, 0);
    assert_int_equal(mr_str_c("four").len, 4);
}

static void test_cut(void **state)
{
    static const struct {
        const char *in;
        char sep;
        const char *head;
        const char *tail;    /* NULL: separator absent */
    } cases[] = {
        { "a=b", '=', "a", "b" },
        { "a=b=c", '=', "a", "b=c" },
        { "=b", '=', "", "b" },
        { "a=", '=', "a", "" },
        { "=", '=', "", "" },
        { "abc", '=', "abc", NULL },
        { "", '=', "", NULL },
        { "k: v", ':', "k", " v" },
        { "/a/b", '/', "", "a/b" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_str head = { NULL, 99 }, tail;
        tail = mr_str_cut(mr_str_c(cases[i].in), cases[i].sep, &head);
        assert_int_equal(head.len, strlen(cases[i].head));
        if (head.len)
            assert_memory_equal(head.p, cases[i].head, head.len);
        if (cases[i].tail) {
            assert_str(tail, cases[i].tail);
        } else {
            assert_null(tail.p);
            assert_int_equal(tail.len, 0);
        }
    }
    /* The separator is searched within the length only. */
    {
        struct mr_str head, tail;
        tail = mr_str_cut((struct mr_str){ "ab=c", 2 }, '=', &head);
        assert_null(tail.p);
        assert_str(head, "ab");
        tail = mr_str_cut(MR_STR_NULL, '=', &head);
        assert_null(tail.p);
        assert_int_equal(head.len, 0);
    }
}

static void test_trim(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "abc", "abc" },
        { "  abc", "abc" },
        { "abc  ", "abc" },
        { " \t a b \t ", "a b" },
        { "\t", "" },
        { "   ", "" },
        { "", "" },
        { "\nx\n", "\nx\n" },   /* only spaces and tabs */
        { " \r", "\r" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_str t = mr_str_trim(mr_str_c(cases[i].in));
        assert_int_equal(t.len, strlen(cases[i].out));
        if (t.len)
            assert_memory_equal(t.p, cases[i].out, t.len);
    }
    assert_int_equal(mr_str_trim(MR_STR_NULL).len, 0);
}

static void test_to_long(void **state)
{
    static const struct {
        const char *in;
        long min, max;
        bool ok;
        long want;
    } cases[] = {
        { "0", 0, 10, true, 0 },
        { "10", 0, 10, true, 10 },
        { "11", 0, 10, false, 0 },
        { "-1", 0, 10, false, 0 },
        { "-1", -5, 10, true, -1 },
        { "-5", -5, 10, true, -5 },
        { "-6", -5, 10, false, 0 },
        { "-0", 0, 0, true, 0 },
        { "007", 0, 10, true, 7 },
        { "65535", 1, 65535, true, 65535 },
        { "65536", 1, 65535, false, 0 },
        { "9223372036854775807", LONG_MIN, LONG_MAX, true, LONG_MAX },
        { "9223372036854775808", LONG_MIN, LONG_MAX, false, 0 },
        { "9999999999999999999", LONG_MIN, LONG_MAX, false, 0 },
        { "18446744073709551616", LONG_MIN, LONG_MAX, false, 0 },
        { "99999999999999999999999", LONG_MIN, LONG_MAX, false, 0 },
        { "-9223372036854775807", LONG_MIN, LONG_MAX, true, -LONG_MAX },
        { "-9223372036854775808", LONG_MIN, LONG_MAX, true, LONG_MIN },
        { "-9223372036854775809", LONG_MIN, LONG_MAX, false, 0 },
        /* Garbage: nothing but digits and one leading minus. */
        { "", LONG_MIN, LONG_MAX, false, 0 },
        { "-", LONG_MIN, LONG_MAX, false, 0 },
        { "+1", LONG_MIN, LONG_MAX, false, 0 },
        { " 1", LONG_MIN, LONG_MAX, false, 0 },
        { "1 ", LONG_MIN, LONG_MAX, false, 0 },
        { "1a", LONG_MIN, LONG_MAX, false, 0 },
        { "a1", LONG_MIN, LONG_MAX, false, 0 },
        { "1.5", LONG_MIN, LONG_MAX, false, 0 },
        { "1e3", LONG_MIN, LONG_MAX, false, 0 },
        { "0x10", LONG_MIN, LONG_MAX, false, 0 },
        { "--1", LONG_MIN, LONG_MAX, false, 0 },
        { "-+1", LONG_MIN, LONG_MAX, false, 0 },
        { "1-", LONG_MIN, LONG_MAX, false, 0 },
        { "١", LONG_MIN, LONG_MAX, false, 0 },   /* Arabic-Indic one, UTF-8 */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long v = 12345;
        bool ok = mr_str_to_long(mr_str_c(cases[i].in), cases[i].min, cases[i].max, &v);
        if (ok != cases[i].ok)
            fail_msg("\"%s\" in [%ld, %ld]: got %s", cases[i].in, cases[i].min, cases[i].max,
                     ok ? "true" : "false");
        if (ok)
            assert_int_equal(v, cases[i].want);
        else
            assert_int_equal(v, 12345);   /* untouched on failure */
    }
    /* Only the given length is parsed. */
    {
        long v = 0;
        assert_true(mr_str_to_long((struct mr_str){ "123abc", 3 }, 0, 1000, &v));
        assert_int_equal(v, 123);
        assert_false(mr_str_to_long(MR_STR_NULL, 0, 1000, &v));
        assert_true(mr_str_to_long((struct mr_str){ "5\0", 1 }, 0, 10, &v));
        assert_false(mr_str_to_long((struct mr_str){ "5\0", 2 }, 0, 10, &v));
    }
}

static void test_unescape(void **state)
{
    static const struct {
        const char *in;
        bool plus_space;
        const char *out;     /* NULL: refused (-1) */
    } cases[] = {
        { "", false, "" },
        { "abc", false, "abc" },
        { "a%20b", false, "a b" },
        { "%41%42%43", false, "ABC" },
        { "%2f%2F", false, "//" },
        { "%7e%7E", false, "~~" },
        { "%ff", false, "\xff" },
        { "%C3%A9", false, "\xc3\xa9" },
        { "100%25", false, "100%" },
        { "%2525", false, "%25" },     /* decoded once only */
        { "a+b", false, "a+b" },
        { "a+b", true, "a b" },
        { "%2B+", true, "+ " },        /* an escaped plus stays a plus */
        { "++", true, "  " },
        { "%20", true, " " },
        /* Malformed escapes. */
        { "%", false, NULL },
        { "a%", false, NULL },
        { "%4", false, NULL },
        { "a%4", false, NULL },
        { "%g0", false, NULL },
        { "%0g", false, NULL },
        { "%%41", false, NULL },
        { "%-1", false, NULL },
        { "% 1", false, NULL },
        { "%+1", true, NULL },
        { "abc%zz", false, NULL },
        /* A NUL byte is refused, however it is written. */
        { "%00", false, NULL },
        { "a%00b", false, NULL },
        { "a%00", true, NULL },
    };
    char dst[64];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_str in = mr_str_c(cases[i].in);
        long n = mr_str_unescape(in, dst, in.len + 1, cases[i].plus_space);
        if (!cases[i].out) {
            if (n != -1)
                fail_msg("\"%s\": got %ld, want -1", cases[i].in, n);
            continue;
        }
        if (n != (long)strlen(cases[i].out))
            fail_msg("\"%s\": got %ld, want %zu", cases[i].in, n, strlen(cases[i].out));
        assert_memory_equal(dst, cases[i].out, (size_t)n + 1);   /* NUL-terminated */
    }
}

static void test_unescape_bounds(void **state)
{
    char dst[16];
    (void)state;

    /* s.len + 1 is always enough; less than the decoded length + 1 is not. */
    memset(dst, 'X', sizeof(dst));
    assert_int_equal(mr_str_unescape(MR_STR("abcd"), dst, 5, false), 4);
    assert_string_equal(dst, "abcd");
    memset(dst, 'X', sizeof(dst));
    assert_int_equal(mr_str_unescape(MR_STR("abcd"), dst, 4, false), -1);
    assert_int_equal(dst[4], 'X');   /* nothing written past dstlen */
    assert_int_equal(mr_str_unescape(MR_STR("%41%42"), dst, 3, false), 2);
    assert_string_equal(dst, "AB");
    assert_int_equal(mr_str_unescape(MR_STR("%41%42"), dst, 2, false), -1);
    assert_int_equal(mr_str_unescape(MR_STR(""), dst, 1, false), 0);
    assert_string_equal(dst, "");
    assert_int_equal(mr_str_unescape(MR_STR(""), dst, 0, false), -1);
    /* Only the given length is decoded: an escape cut by it is malformed. */
    assert_int_equal(mr_str_unescape((struct mr_str){ "a%41", 3 }, dst, 16, false), -1);
    assert_int_equal(mr_str_unescape((struct mr_str){ "a%41", 1 }, dst, 16, false), 1);
    assert_string_equal(dst, "a");
    /* A raw NUL inside the length is refused too. */
    assert_int_equal(mr_str_unescape((struct mr_str){ "a\0b", 3 }, dst, 16, false), -1);
}

/* Every byte against RFC 9110's tchar list, spelled out here apart from
 * the code's own. */
static void test_http_tchar(void **state)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (void)state;
    for (int c = 0; c < 256; c++) {
        bool want = c && memchr(tchar, c, sizeof(tchar) - 1);
        if (mr_http_tchar((unsigned char)c) != want)
            fail_msg("tchar 0x%02x: got %d", c, !want);
    }
}

static void test_http_token(void **state)
{
    (void)state;
    assert_true(mr_http_token("GET", 3));
    assert_true(mr_http_token("X-Forwarded-For", 15));
    assert_true(mr_http_token("a!#$%&'*+-.^_`|~z", 17));
    assert_true(mr_http_token("GET /", 3));     /* only len bytes count */
    assert_false(mr_http_token("", 0));
    assert_false(mr_http_token(NULL, 0));
    assert_false(mr_http_token("GET /", 5));
    assert_false(mr_http_token("X-Foo:", 6));
    assert_false(mr_http_token("a\tb", 3));
    assert_false(mr_http_token("a\0b", 3));     /* a NUL inside */
    assert_false(mr_http_token("a\x7f", 2));
    assert_false(mr_http_token("caf\xc3\xa9", 5));
    assert_false(mr_http_token("a\"b", 3));
    assert_false(mr_http_token("(a)", 3));
    assert_int_equal(mr_http_token_span("text/html", 9), 4);
    assert_int_equal(mr_http_token_span("charset=utf-8", 13), 7);
    assert_int_equal(mr_http_token_span("abc", 3), 3);
    assert_int_equal(mr_http_token_span(";", 1), 0);
    assert_int_equal(mr_http_token_span(NULL, 0), 0);
}

static void test_ctl_bytes(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        assert_int_equal(mr_is_ctl((unsigned char)c), c <= 0x1f || c == 0x7f);
        assert_int_equal(mr_is_vchar((unsigned char)c), c >= '!' && c <= '~');
    }
}

/* Every byte at every position of strings of 1 to 40 bytes (the check
 * reads eight bytes at a time, the tail as the last eight): a control byte
 * is found, nothing else is, and nothing past the end counts. */
static void test_has_ctl(void **state)
{
    char s[40];
    (void)state;

    assert_false(mr_str_has_ctl("", 0));
    assert_false(mr_str_has_ctl(NULL, 0));
    assert_false(mr_str_has_ctl_but_tab(NULL, 0));
    for (size_t n = 1; n <= sizeof(s); n++) {
        memset(s, 'a', sizeof(s));
        assert_false(mr_str_has_ctl(s, n));
        for (int c = 0; c < 256; c++) {
            bool ctl = c < 0x20 || c == 0x7f;
            for (size_t pos = 0; pos < n; pos++) {
                s[pos] = (char)c;
                if (mr_str_has_ctl(s, n) != ctl)
                    fail_msg("has_ctl: byte 0x%02x at %zu of %zu", c, pos, n);
                if (mr_str_has_ctl_but_tab(s, n) != (ctl && c != '\t'))
                    fail_msg("has_ctl_but_tab: byte 0x%02x at %zu of %zu", c, pos, n);
                s[pos] = 'a';
            }
            if (n < sizeof(s)) {
                s[n] = (char)c;
                assert_false(mr_str_has_ctl(s, n));
                assert_false(mr_str_has_ctl_but_tab(s, n));
                s[n] = 'a';
            }
        }
    }
    assert_true(mr_str_has_ctl("a\tb", 3));
    assert_false(mr_str_has_ctl_but_tab("a\tb", 3));
    assert_true(mr_str_has_ctl_but_tab("a\tb\r\n", 5));
    assert_false(mr_str_has_ctl("caf\xc3\xa9 ~", 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eq),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_to_long),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_unescape_bounds),
        cmocka_unit_test(test_http_tchar),
        cmocka_unit_test(test_http_token),
        cmocka_unit_test(test_ctl_bytes),
        cmocka_unit_test(test_has_ctl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
