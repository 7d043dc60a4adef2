/* test_route.c - route matching, captures, 404 and 405. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "http/route.h"

static int h_health(struct mr_ctx *ctx)
{
    (void)ctx;
    return 0;
}

static int h_other(struct mr_ctx *ctx)
{
    (void)ctx;
    return 0;
}

/* Like the executables' tables (see fcgi/), merged. */
static const struct mr_route routes[] = {
    { MR_GET, "/api/health", h_health, 0 },                                         /* 0 */
    { MR_GET, "/api/health/m3u8", h_health, 0 },                                    /* 1 */
    { MR_POST, "/api/media", h_other, MR_ROUTE_ADMIN },                             /* 2 */
    { MR_GET, "/api/media/{id}", h_other, MR_ROUTE_MEDIA },                         /* 3 */
    { MR_DELETE, "/api/media/{id}", h_other, MR_ROUTE_ADMIN | MR_ROUTE_MEDIA },     /* 4 */
    { MR_GET, "/api/media/{id}/source", h_other, MR_ROUTE_MEDIA },                  /* 5 */
    { MR_GET, "/api/media/{id}/index.m3u8", h_other, MR_ROUTE_MEDIA },              /* 6 */
    { MR_GET, "/api/m3u8/{token}.m3u8", h_other, 0 },                               /* 7 */
    { MR_GET, "/live/channels.m3u", h_other, 0 },                                   /* 8 */
    { MR_GET, "/live/{channel}.m3u8", h_other, 0 },                                 /* 9 */
    { MR_GET, "/api/seg/{token}", h_other, 0 },                                     /* 10 */
    { MR_GET, "/api/seg/{token}/{tail*}", h_other, 0 },                             /* 11 */
    { MR_PUT | MR_PATCH, "/api/rooms/{room}/members/{user}", h_other, 0 },          /* 12 */
    { MR_GET, "/files/{path*}", h_other, 0 },                                       /* 13 */
    { 0, NULL, NULL, 0 },
};

#define NONE (-1)

static void test_find(void **state)
{
    static const struct {
        const char *method, *path;
        int rc;
        int route;               /* index into routes, NONE */
        unsigned allowed;        /* checked when rc is MR_EMETHOD */
        const char *name1, *value1, *name2, *value2;
    } cases[] = {
        /* Literal routes. */
        { "GET", "/api/health", MR_OK, 0, 0, NULL, NULL, NULL, NULL },
        { "HEAD", "/api/health", MR_OK, 0, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/health/m3u8", MR_OK, 1, 0, NULL, NULL, NULL, NULL },
        { "POST", "/api/media", MR_OK, 2, 0, NULL, NULL, NULL, NULL },
        { "GET", "/live/channels.m3u", MR_OK, 8, 0, NULL, NULL, NULL, NULL },
        /* Literal mismatches: 404. */
        { "GET", "/api/health/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/healthz", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/healt", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/API/health", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "api/health", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/nope", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "POST", "/nope", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        /* {id} captures one non-empty segment. */
        { "GET", "/api/media/abc123", MR_OK, 3, 0, "id", "abc123", NULL, NULL },
        { "DELETE", "/api/media/abc123", MR_OK, 4, 0, "id", "abc123", NULL, NULL },
        { "GET", "/api/media/a.b-c_d~e%20", MR_OK, 3, 0, "id", "a.b-c_d~e%20", NULL, NULL },
        { "GET", "/api/media/x/source", MR_OK, 5, 0, "id", "x", NULL, NULL },
        { "GET", "/api/media/x/index.m3u8", MR_OK, 6, 0, "id", "x", NULL, NULL },
        { "GET", "/api/media/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/media//source", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/media/x/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/media/x/y", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/media/x/source/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        /* Suffix captures. */
        { "GET", "/live/cctv1.m3u8", MR_OK, 9, 0, "channel", "cctv1", NULL, NULL },
        { "GET", "/live/a.b.m3u8", MR_OK, 9, 0, "channel", "a.b", NULL, NULL },
        { "GET", "/live/x.m3u8.m3u8", MR_OK, 9, 0, "channel", "x.m3u8", NULL, NULL },
        { "GET", "/live/m.m3u8", MR_OK, 9, 0, "channel", "m", NULL, NULL },
        { "GET", "/live/.m3u8", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/live/m3u8", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/live/cctv1.m3u", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/live/cctv1.m3u8x", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/live/a/b.m3u8", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/live/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/m3u8/tok.en-_.m3u8", MR_OK, 7, 0, "token", "tok.en-_", NULL, NULL },
        /* Rest captures take slashes. */
        { "GET", "/api/seg/TOKEN", MR_OK, 10, 0, "token", "TOKEN", NULL, NULL },
        { "GET", "/api/seg/TOKEN/seg1.ts", MR_OK, 11, 0, "token", "TOKEN", "tail", "seg1.ts" },
        { "GET", "/api/seg/T/a/b/c.ts", MR_OK, 11, 0, "token", "T", "tail", "a/b/c.ts" },
        { "GET", "/api/seg/T/a//b/", MR_OK, 11, 0, "token", "T", "tail", "a//b/" },
        { "GET", "/api/seg/T//", MR_OK, 11, 0, "token", "T", "tail", "/" },
        { "GET", "/api/seg/T/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/seg/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/api/seg//x", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/files/a", MR_OK, 13, 0, "path", "a", NULL, NULL },
        { "GET", "/files/a/b.mp4", MR_OK, 13, 0, "path", "a/b.mp4", NULL, NULL },
        { "GET", "/files/", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        { "GET", "/files", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
        /* Two captures. */
        { "PUT", "/api/rooms/r1/members/u2", MR_OK, 12, 0, "room", "r1", "user", "u2" },
        { "PATCH", "/api/rooms/r1/members/u2", MR_OK, 12, 0, "room", "r1", "user", "u2" },
        /* 405: the union of the methods of every route whose pattern
         * matched; GET implies HEAD. */
        { "POST", "/api/health", MR_EMETHOD, NONE, MR_GET | MR_HEAD, NULL, NULL, NULL, NULL },
        { "GET", "/api/media", MR_EMETHOD, NONE, MR_POST, NULL, NULL, NULL, NULL },
        { "HEAD", "/api/media", MR_EMETHOD, NONE, MR_POST, NULL, NULL, NULL, NULL },
        { "PUT", "/api/media/x", MR_EMETHOD, NONE, MR_GET | MR_HEAD | MR_DELETE,
          NULL, NULL, NULL, NULL },
        { "POST", "/api/media/x", MR_EMETHOD, NONE, MR_GET | MR_HEAD | MR_DELETE,
          NULL, NULL, NULL, NULL },
        { "DELETE", "/api/media/x/source", MR_EMETHOD, NONE, MR_GET | MR_HEAD,
          NULL, NULL, NULL, NULL },
        { "GET", "/api/rooms/r/members/u", MR_EMETHOD, NONE, MR_PUT | MR_PATCH,
          NULL, NULL, NULL, NULL },
        /* Unknown or lowercase methods are not allowed anywhere. */
        { "get", "/api/health", MR_EMETHOD, NONE, MR_GET | MR_HEAD, NULL, NULL, NULL, NULL },
        { "BREW", "/api/health", MR_EMETHOD, NONE, MR_GET | MR_HEAD, NULL, NULL, NULL, NULL },
        { "", "/api/health", MR_EMETHOD, NONE, MR_GET | MR_HEAD, NULL, NULL, NULL, NULL },
        /* OPTIONS is not in any route: MR_EMETHOD, and allowed answers it. */
        { "OPTIONS", "/api/media/x", MR_EMETHOD, NONE, MR_GET | MR_HEAD | MR_DELETE,
          NULL, NULL, NULL, NULL },
        { "OPTIONS", "/live/x.m3u8", MR_EMETHOD, NONE, MR_GET | MR_HEAD, NULL, NULL, NULL, NULL },
        { "OPTIONS", "/nope", MR_ENOTFOUND, NONE, 0, NULL, NULL, NULL, NULL },
    };
    int failures = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_route_match m;
        int rc;

        memset(&m, 0x5a, sizeof(m));
        rc = mr_route_find(routes, mr_str_c(cases[i].method), mr_str_c(cases[i].path), &m);
        if (rc != cases[i].rc) {
            print_error("%s %s: got %d, want %d\n", cases[i].method, cases[i].path, rc,
                        cases[i].rc);
            failures++;
            continue;
        }
        if (rc == MR_OK) {
            struct mr_str v;
            if (m.route != &routes[cases[i].route]) {
                print_error("%s %s: matched route %td, want %d\n", cases[i].method,
                            cases[i].path, m.route - routes, cases[i].route);
                failures++;
                continue;
            }
            assert_int_equal(m.n, (cases[i].name1 != NULL) + (cases[i].name2 != NULL));
            /* The matched route's own methods are among the allowed. */
            assert_true(m.allowed & routes[cases[i].route].methods);
            if (cases[i].name1) {
                v = mr_route_capture(&m, cases[i].name1);
                assert_non_null(v.p);
                assert_int_equal(v.len, strlen(cases[i].value1));
                assert_memory_equal(v.p, cases[i].value1, v.len);
                /* Captures point into the path. */
                assert_true(v.p >= cases[i].path &&
                            v.p + v.len <= cases[i].path + strlen(cases[i].path));
            }
            if (cases[i].name2) {
                v = mr_route_capture(&m, cases[i].name2);
                assert_non_null(v.p);
                assert_int_equal(v.len, strlen(cases[i].value2));
                assert_memory_equal(v.p, cases[i].value2, v.len);
            }
            assert_null(mr_route_capture(&m, "nonexistent").p);
        } else {
            assert_null(m.route);
            if (rc == MR_EMETHOD && m.allowed != cases[i].allowed) {
                print_error("%s %s: allowed 0x%x, want 0x%x\n", cases[i].method, cases[i].path,
                            m.allowed, cases[i].allowed);
                failures++;
            }
            if (rc == MR_ENOTFOUND)
                assert_int_equal(m.allowed, 0);
        }
    }
    assert_int_equal(failures, 0);
}

/* Only the path's length counts, not a NUL after it. */
static void test_path_length(void **state)
{
    struct mr_route_match m;
    (void)state;
    assert_int_equal(mr_route_find(routes, MR_STR("GET"),
                                   (struct mr_str){ "/api/health/m3u8", 11 }, &m), MR_OK);
    assert_ptr_equal(m.route, &routes[0]);
    assert_int_equal(mr_route_find(routes, (struct mr_str){ "GETX", 3 },
                                   MR_STR("/live/a.m3u8?x=1"), &m), MR_ENOTFOUND);
    assert_int_equal(mr_route_find(routes, (struct mr_str){ "GETX", 3 },
                                   (struct mr_str){ "/live/a.m3u8?x=1", 12 }, &m), MR_OK);
    assert_int_equal(mr_route_capture(&m, "channel").len, 1);
}

/* An empty table finds nothing. */
static void test_empty_table(void **state)
{
    static const struct mr_route none[] = { { 0, NULL, NULL, 0 } };
    struct mr_route_match m;
    (void)state;
    assert_int_equal(mr_route_find(none, MR_STR("GET"), MR_STR("/"), &m), MR_ENOTFOUND);
    assert_null(m.route);
    assert_int_equal(m.allowed, 0);
}

/* The first matching route wins; a later route with the same pattern adds
 * its methods to a 405's allowed mask. */
static void test_order(void **state)
{
    static const struct mr_route t[] = {
        { MR_GET, "/x/{a}", h_health, 0 },
        { MR_GET, "/x/literal", h_other, 0 },
        { MR_POST, "/x/{b}", h_other, 0 },
        { MR_PUT, "/x/literal", h_other, 0 },
        { 0, NULL, NULL, 0 },
    };
    struct mr_route_match m;
    (void)state;
    assert_int_equal(mr_route_find(t, MR_STR("GET"), MR_STR("/x/literal"), &m), MR_OK);
    assert_ptr_equal(m.route, &t[0]);
    assert_int_equal(mr_route_capture(&m, "a").len, 7);
    assert_int_equal(mr_route_find(t, MR_STR("POST"), MR_STR("/x/literal"), &m), MR_OK);
    assert_ptr_equal(m.route, &t[2]);
    assert_int_equal(mr_route_capture(&m, "b").len, 7);
    assert_null(mr_route_capture(&m, "a").p);
    assert_int_equal(mr_route_find(t, MR_STR("DELETE"), MR_STR("/x/literal"), &m), MR_EMETHOD);
    assert_int_equal(m.allowed, MR_GET | MR_HEAD | MR_POST | MR_PUT);
    assert_int_equal(mr_route_find(t, MR_STR("DELETE"), MR_STR("/x/other"), &m), MR_EMETHOD);
    assert_int_equal(m.allowed, MR_GET | MR_HEAD | MR_POST);
}

/* MR_ROUTE_MAX_CAPTURES captures work; a pattern with more never matches. */
static void test_max_captures(void **state)
{
    static const struct mr_route t[] = {
        { MR_GET, "/{a}/{b}/{c}/{d}", h_other, 0 },
        { MR_GET, "/{a}/{b}/{c}/{d}/{e}", h_other, 0 },
        { 0, NULL, NULL, 0 },
    };
    struct mr_route_match m;
    (void)state;
    assert_int_equal(MR_ROUTE_MAX_CAPTURES, 4);
    assert_int_equal(mr_route_find(t, MR_STR("GET"), MR_STR("/1/2/3/4"), &m), MR_OK);
    assert_int_equal(m.n, 4);
    assert_int_equal(mr_route_capture(&m, "d").p[0], '4');
    assert_int_equal(mr_route_find(t, MR_STR("GET"), MR_STR("/1/2/3/4/5"), &m), MR_ENOTFOUND);
}

static void test_method_bit(void **state)
{
    static const struct {
        const char *name;
        unsigned bit;
    } cases[] = {
        { "GET", MR_GET },
        { "HEAD", MR_HEAD },
        { "POST", MR_POST },
        { "PUT", MR_PUT },
        { "DELETE", MR_DELETE },
        { "PATCH", MR_PATCH },
        { "OPTIONS", MR_OPTIONS },
        { "get", 0 },
        { "Get", 0 },
        { "GETS", 0 },
        { "GE", 0 },
        { "TRACE", 0 },
        { "CONNECT", 0 },
        { "", 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(mr_method_bit(mr_str_c(cases[i].name)), cases[i].bit);
    assert_int_equal(mr_method_bit(MR_STR_NULL), 0);
    assert_int_equal(mr_method_bit((struct mr_str){ "POSTX", 4 }), MR_POST);
}

static void test_methods_str(void **state)
{
    static const struct {
        unsigned mask;
        const char *want;
    } cases[] = {
        { 0, "" },
        { MR_GET, "GET" },
        { MR_GET | MR_HEAD, "GET, HEAD" },
        { MR_GET | MR_HEAD | MR_POST, "GET, HEAD, POST" },
        { MR_DELETE | MR_GET, "GET, DELETE" },
        { MR_OPTIONS | MR_PATCH | MR_PUT, "PUT, PATCH, OPTIONS" },
        { 0x7f, "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS" },
        { 0x7f | 0x80 | 0x100, "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS" },
        { 0x80, "" },
    };
    char buf[128];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(buf, 'X', sizeof(buf));
        mr_methods_str(cases[i].mask, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
    /* A short buffer stays terminated and is not overrun. */
    for (size_t len = 1; len < 20; len++) {
        char small[32];
        memset(small, 'X', sizeof(small));
        mr_methods_str(MR_GET | MR_HEAD | MR_POST, small, len);
        assert_non_null(memchr(small, '\0', len));
        assert_true(strlen(small) < len);
        assert_int_equal(strncmp(small, "GET, HEAD, POST", strlen(small)), 0);
        for (size_t j = len; j < sizeof(small); j++)
            assert_int_equal(small[j], 'X');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_path_length),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_max_captures),
        cmocka_unit_test(test_method_bit),
        cmocka_unit_test(test_methods_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
