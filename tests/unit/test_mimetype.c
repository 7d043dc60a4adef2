/* test_mimetype.c - the Content-Type relayed for an upstream's: every case of
 * tests/data/mimetype/cases.txt (INPUT <TAB> EXPECTED, escapes \t \\ \xNN,
 * INPUT "(none)" for no header), and what the answer's headers become. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/error.h"
#include "http/mimetype.h"
#include "http/response.h"

#ifndef MR_TOP_SRCDIR
#define MR_TOP_SRCDIR "."
#endif
#define CASES MR_TOP_SRCDIR "/tests/data/mimetype/cases.txt"

/* Undoes the file's escapes in place; false on a bad one. */
static bool unescape(char *s)
{
    char *o = s;

    while (*s) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        if (s[1] == 't') {
            *o++ = '\t';
            s += 2;
        } else if (s[1] == '\\') {
            *o++ = '\\';
            s += 2;
        } else if (s[1] == 'x' && s[2] && s[3]) {
            char hex[3] = { s[2], s[3], 0 }, *end;
            long v = strtol(hex, &end, 16);
            if (*end || v <= 0)
                return false;
            *o++ = (char)v;
            s += 4;
        } else {
            return false;
        }
    }
    *o = '\0';
    return true;
}

static void every_case_of_the_table(void **state)
{
    FILE *f = fopen(CASES, "r");
    char line[2048];
    int n = 0, bad = 0, lineno = 0;
    struct mr_arena a;

    (void)state;
    assert_non_null(f);
    mr_arena_init(&a, 0);
    while (fgets(line, sizeof(line), f)) {
        char *tab, *in, *want;
        const char *got;
        char *nl = strchr(line, '\n');

        lineno++;
        assert_non_null(nl);                            /* no line is cut */
        *nl = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        in = line;
        want = tab + 1;
        assert_null(strchr(want, '\t'));
        assert_true(unescape(in) && unescape(want));
        got = mr_mimetype_relayed(&a, strcmp(in, "(none)") ? in : NULL);
        if (strcmp(got, want)) {
            print_error("line %d: \"%s\" -> \"%s\", expected \"%s\"\n", lineno, in, got, want);
            bad++;
        }
        n++;
    }
    fclose(f);
    mr_arena_free(&a);
    assert_int_equal(bad, 0);
    assert_true(n >= 100);
}

/* Whatever the input, the answer is a header value the response accepts,
 * at most MR_MIMETYPE_MAX bytes: every single byte after a listed type and
 * in its parameters. */
static void any_byte_gives_a_usable_value(void **state)
{
    struct mr_arena a;

    (void)state;
    mr_arena_init(&a, 0);
    for (int c = 1; c < 256; c++) {
        const char *fmt[] = { "video/mp4%c", "video/mp4; a=%c", "video/mp4; a=\"%c\"",
                              "%cvideo/mp4", "video/mp%c4" };
        for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
            char in[32];
            const char *got;
            snprintf(in, sizeof(in), fmt[i], c);
            got = mr_mimetype_relayed(&a, in);
            assert_true(strlen(got) <= MR_MIMETYPE_MAX);
            for (const char *p = got; *p; p++)
                assert_true(((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f) ||
                            *p == '\t');
            assert_true(!strncmp(got, "video/mp", 8) || !strcmp(got, MR_MIMETYPE_FALLBACK));
        }
        mr_arena_reset(&a);
    }
    mr_arena_free(&a);
}

/* --- the headers of a relayed answer -------------------------------------- */

static int buf_write(void *arg, const void *p, size_t n)
{
    return mr_buf_append(arg, p, n) ? -1 : 0;
}

static const char *answer(int status, const char *upstream_type, bool foreign_only)
{
    static char out[1024];
    struct mr_arena a;
    struct mr_buf b;
    struct mr_out o = { .write = buf_write };
    struct mr_response r;

    mr_arena_init(&a, 0);
    mr_buf_init(&b, 4096);
    o.arg = &b;
    mr_resp_init(&r, &a, &o, false);
    mr_resp_status(&r, status);
    if (foreign_only)
        assert_int_equal(mr_resp_foreign(&r), MR_OK);
    else
        assert_int_equal(mr_resp_relayed(&r, upstream_type), MR_OK);
    assert_int_equal(mr_resp_send_headers(&r), MR_OK);
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.p);
    mr_buf_free(&b);
    mr_arena_free(&a);
    return out;
}

static void relayed_answers_carry_the_two_headers(void **state)
{
    (void)state;
    assert_string_equal(answer(200, "text/html; charset=utf-8", false),
                        "Status: 200 OK\r\n"
                        "Content-Type: application/octet-stream\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "Content-Security-Policy: sandbox\r\n\r\n");
    assert_string_equal(answer(206, "video/mp2t", false),
                        "Status: 206 Partial Content\r\n"
                        "Content-Type: video/mp2t\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "Content-Security-Policy: sandbox\r\n\r\n");
    assert_string_equal(answer(416, NULL, false),
                        "Status: 416 Range Not Satisfiable\r\n"
                        "Content-Type: application/octet-stream\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "Content-Security-Policy: sandbox\r\n\r\n");
    /* A 304 has no body: no type (a browser would merge it into its copy). */
    assert_string_equal(answer(304, "text/html", false),
                        "Status: 304 Not Modified\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "Content-Security-Policy: sandbox\r\n\r\n");
    assert_string_equal(answer(200, NULL, true),
                        "Status: 200 OK\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "Content-Security-Policy: sandbox\r\n\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_case_of_the_table),
        cmocka_unit_test(any_byte_gives_a_usable_value),
        cmocka_unit_test(relayed_answers_carry_the_two_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
