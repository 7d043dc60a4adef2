/* test_log.c - escaping, the access line and level filtering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/str.h"

/* ---- capturing stderr ------------------------------------------------------ */

struct capture {
    FILE *tmp;
    int saved;
};

static void cap_start(struct capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    assert_non_null(c->tmp);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->tmp), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns what was written (free it). */
static char *cap_end(struct capture *c)
{
    long n;
    char *s;

    fflush(stderr);
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    /* The fd was written by write(2), not through the FILE. */
    n = lseek(fileno(c->tmp), 0, SEEK_END);
    assert_true(n >= 0);
    s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(pread(fileno(c->tmp), s, (size_t)n, 0), n);
    fclose(c->tmp);
    return s;
}

static int count_char(const char *s, char ch)
{
    int n = 0;
    for (; *s; s++)
        n += *s == ch;
    return n;
}

/* ---- mr_log_escape ----------------------------------------------------------- */

static void test_escape(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        size_t dstlen;
        const char *out;
    } cases[] = {
        { "abc", 3, 64, "abc" },
        { "", 0, 64, "" },
        { "/a b?c=d&e", 10, 64, "/a b?c=d&e" },
        { "a\nb", 3, 64, "a\\x0ab" },
        { "\r\n\t", 3, 64, "\\x0d\\x0a\\x09" },
        { "\"q\"", 3, 64, "\\x22q\\x22" },
        { "back\\slash", 10, 64, "back\\x5cslash" },
        { "\x1b[31m", 5, 64, "\\x1b[31m" },
        { "\x7f\x80\xff", 3, 64, "\\x7f\\x80\\xff" },
        { "a\0b", 3, 64, "a\\x00b" },                 /* a NUL inside is shown */
        { "\xc3\xa9", 2, 64, "\\xc3\\xa9" },          /* UTF-8 bytes too */
        /* Truncation: plain bytes up to dstlen - 1 ... */
        { "abcdef", 6, 4, "abc" },
        { "abc", 3, 4, "abc" },
        { "abcd", 4, 1, "" },
        /* ... and an escape is written whole or not at all. */
        { "ab\n", 3, 6, "ab" },
        { "ab\n", 3, 7, "ab\\x0a" },
        { "\n", 1, 4, "" },
        { "\n", 1, 5, "\\x0a" },
        { "\n\n", 2, 8, "\\x0a" },
        { "\n\n", 2, 9, "\\x0a\\x0a" },
        { "a\nbcdef", 7, 7, "a\\x0ab" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dst[80];
        memset(dst, 'Z', sizeof(dst));
        mr_log_escape((struct mr_str){ cases[i].in, cases[i].len }, dst, cases[i].dstlen);
        if (strcmp(dst, cases[i].out))
            print_message("case %zu: got \"%s\" want \"%s\"\n", i, dst, cases[i].out);
        assert_string_equal(dst, cases[i].out);
        /* Always terminated inside dstlen; nothing written past it. */
        assert_true(strlen(dst) < cases[i].dstlen);
        assert_int_equal(dst[cases[i].dstlen], 'Z');
    }
}

/* Whatever the input and the size, the output is terminated, fits, never
 * ends in a partial escape, and holds no byte a log line must not hold. */
static void test_escape_exhaustive(void **state)
{
    char in[96];
    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)(i * 37 % 256);
    for (size_t dstlen = 1; dstlen < 64; dstlen++) {
        char dst[70];
        size_t n;
        memset(dst, 'Z', sizeof(dst));
        mr_log_escape((struct mr_str){ in, sizeof(in) }, dst, dstlen);
        n = strlen(dst);
        assert_true(n < dstlen);
        assert_int_equal(dst[dstlen], 'Z');
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)dst[k];
            assert_true(c >= 0x20 && c < 0x7f && c != '"');
            if (c == '\\') {
                /* A complete \xNN. */
                assert_true(k + 3 < n);
                assert_int_equal(dst[k + 1], 'x');
                assert_non_null(strchr("0123456789abcdef", dst[k + 2]));
                assert_non_null(strchr("0123456789abcdef", dst[k + 3]));
                k += 3;
            }
        }
    }
    /* dstlen 0: nothing is touched. */
    {
        char dst[2] = { 'Z', 'Z' };
        mr_log_escape(MR_STR("abc"), dst, 0);
        assert_int_equal(dst[0], 'Z');
    }
}

/* ---- the access line --------------------------------------------------------- */

static void test_access_line(void **state)
{
    static const struct {
        const char *method;
        const char *path;
        size_t plen;
        int status;
        unsigned long long bytes;
        long up;
        double ms;
        const char *expect;
    } cases[] = {
        { "GET", "/api/health", 11, 200, 67, 0, 0.4, "GET /api/health 200 67B up=- 0.4ms" },
        { "GET", "/api/seg/x.ts", 13, 206, 1048576, 206, 12.25,
          "GET /api/seg/x.ts 206 1048576B up=206 12.2ms" },
        { "HEAD", "/x", 2, 404, 0, 404, 1.0, "HEAD /x 404 0B up=404 1.0ms" },
        { "GET", "/a\nFAKE 200\"\\", 13, 400, 5, -1, 0.0,
          "GET /a\\x0aFAKE 200\\x22\\x5c 400 5B up=- 0.0ms" },
        { "G\rT", "/", 1, 405, 0, 0, 0.0, "G\\x0dT / 405 0B up=- 0.0ms" },
    };
    (void)state;
    mr_log_setup("test_log", "info", "stderr");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct capture cap;
        char *out;

        cap_start(&cap);
        mr_log_access(mr_str_c(cases[i].method), (struct mr_str){ cases[i].path, cases[i].plen },
                      cases[i].status, cases[i].bytes, cases[i].up, cases[i].ms);
        out = cap_end(&cap);
        if (!strstr(out, cases[i].expect))
            print_message("case %zu: got \"%s\" want \"%s\"\n", i, out, cases[i].expect);
        assert_non_null(strstr(out, cases[i].expect));
        /* One line, ending in a newline, with the program and level. */
        assert_int_equal(count_char(out, '\n'), 1);
        assert_int_equal(out[strlen(out) - 1], '\n');
        assert_non_null(strstr(out, "test_log["));
        assert_non_null(strstr(out, "] info: "));
        free(out);
    }
}

/* A long path is cut at 512 bytes; the line stays one line. */
static void test_access_long_path(void **state)
{
    char path[3000];
    struct capture cap;
    char *out, *p, *sp;

    (void)state;
    mr_log_setup("test_log", "info", "stderr");
    path[0] = '/';
    memset(path + 1, 'a', sizeof(path) - 1);
    cap_start(&cap);
    mr_log_access(MR_STR("GET"), (struct mr_str){ path, sizeof(path) }, 200, 1, 0, 1.0);
    out = cap_end(&cap);
    assert_int_equal(count_char(out, '\n'), 1);
    p = strstr(out, "GET /");
    assert_non_null(p);
    p += 4;
    sp = strchr(p, ' ');
    assert_non_null(sp);
    assert_true(sp - p <= 512);
    assert_true(sp - p >= 500);
    assert_non_null(strstr(sp, " 200 1B up=- 1.0ms\n"));
    free(out);

    /* Escapes count toward the cut, and none is split. */
    memset(path + 1, '\n', sizeof(path) - 1);
    cap_start(&cap);
    mr_log_access(MR_STR("GET"), (struct mr_str){ path, sizeof(path) }, 200, 1, 0, 1.0);
    out = cap_end(&cap);
    assert_int_equal(count_char(out, '\n'), 1);
    p = strstr(out, "GET /");
    assert_non_null(p);
    p += 5;
    sp = strchr(p, ' ');
    assert_non_null(sp);
    assert_true((sp - p) % 4 == 0);
    assert_true(sp - p <= 512);
    free(out);
}

/* ---- levels ------------------------------------------------------------------ */

static void test_levels(void **state)
{
    static const struct {
        const char *min;
        bool debug, info, warn, error;
    } cases[] = {
        { "debug", true, true, true, true },
        { "info", false, true, true, true },
        { "warn", false, false, true, true },
        { "error", false, false, false, true },
        { "nonsense", false, true, true, true },   /* unknown: info */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct capture cap;
        char *out;

        mr_log_setup("lv", cases[i].min, "stderr");
        assert_int_equal(mr_log_enabled(MR_LOG_DEBUG), cases[i].debug);
        assert_int_equal(mr_log_enabled(MR_LOG_INFO), cases[i].info);
        assert_int_equal(mr_log_enabled(MR_LOG_WARN), cases[i].warn);
        assert_int_equal(mr_log_enabled(MR_LOG_ERROR), cases[i].error);

        cap_start(&cap);
        mr_debug("the debug line %d", 1);
        mr_info("the info line %s", "x");
        mr_warn("the warn line");
        mr_error("the error line");
        mr_log_access(MR_STR("GET"), MR_STR("/acc"), 200, 0, 0, 0.0);
        out = cap_end(&cap);
        assert_int_equal(strstr(out, "lv[") != NULL, cases[i].error);
        assert_int_equal(strstr(out, "debug: the debug line 1\n") != NULL, cases[i].debug);
        assert_int_equal(strstr(out, "info: the info line x\n") != NULL, cases[i].info);
        assert_int_equal(strstr(out, "warn: the warn line\n") != NULL, cases[i].warn);
        assert_int_equal(strstr(out, "error: the error line\n") != NULL, cases[i].error);
        /* The access line is an info line. */
        assert_int_equal(strstr(out, "GET /acc 200") != NULL, cases[i].info);
        free(out);
    }
    /* Leaving level NULL keeps the current one. */
    mr_log_setup("lv", "warn", NULL);
    mr_log_setup("lv2", NULL, NULL);
    assert_false(mr_log_enabled(MR_LOG_INFO));
    assert_true(mr_log_enabled(MR_LOG_WARN));
    mr_log_setup("test_log", "info", "stderr");
}

/* A message longer than the line buffer is cut, still one line. */
static void test_long_message(void **state)
{
    char *msg = malloc(10000);
    struct capture cap;
    char *out;

    (void)state;
    assert_non_null(msg);
    memset(msg, 'm', 9999);
    msg[9999] = '\0';
    mr_log_setup("test_log", "info", "stderr");
    cap_start(&cap);
    mr_info("%s", msg);
    out = cap_end(&cap);
    assert_int_equal(count_char(out, '\n'), 1);
    assert_int_equal(out[strlen(out) - 1], '\n');
    assert_true(strlen(out) < 4096 + 128 + 1);
    free(out);
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_exhaustive),
        cmocka_unit_test(test_access_line),
        cmocka_unit_test(test_access_long_path),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_long_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
