/* test_error.c - the error enum's statuses, codes and texts; HTTP reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"

static const struct {
    int err;
    int status;
    const char *code;
} expected[] = {
    { MR_OK, 200, "ok" },
    { MR_EINVAL, 400, "bad_request" },
    { MR_EUNAUTHORIZED, 401, "unauthorized" },
    { MR_EFORBIDDEN, 403, "forbidden" },
    { MR_ETOKEN_EXPIRED, 403, "token_expired" },
    { MR_EBLOCKED, 403, "upstream_blocked" },
    { MR_ENOTFOUND, 404, "not_found" },
    { MR_EMETHOD, 405, "method_not_allowed" },
    { MR_ETOOBIG, 413, "too_large" },
    { MR_ERANGE, 416, "range_not_satisfiable" },
    { MR_ENOTIMPL, 501, "not_implemented" },
    { MR_EUPSTREAM, 502, "upstream_error" },
    { MR_EREFUSED, 502, "upstream_refused" },
    { MR_EUNAVAILABLE, 503, "unavailable" },
    { MR_ETIMEOUT, 504, "upstream_timeout" },
    { MR_ENOMEM, 500, "internal" },
    { MR_EINTERNAL, 500, "internal" },
    { MR_EBUSY, 503, "busy" },
    { MR_ECLIENT, 499, "client_closed" },
    { MR_ELIMIT, 429, "too_many_requests" },
    { MR_EOVERLOADED, 503, "overloaded" },
};

/* Every value of the enum has a status, a code and a text. */
static void test_every_value(void **state)
{
    (void)state;
    for (int e = 0; e < MR_ERR_COUNT; e++) {
        const char *text = mr_strerror(e), *code = mr_err_code(e);
        int status = mr_err_status(e);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        assert_string_not_equal(text, "unknown error");
        assert_non_null(code);
        assert_true(strlen(code) > 0);
        /* A JSON code: lowercase letters and underscores. */
        for (const char *c = code; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z') || *c == '_');
        assert_in_range(status, 200, 599);
        /* Every status but 499 (the client is gone, nothing is sent) has a
         * reason phrase for the status line. */
        if (e != MR_ECLIENT)
            assert_true(strlen(mr_http_reason(status)) > 0);
    }
}

static void test_table(void **state)
{
    (void)state;
    assert_int_equal(sizeof(expected) / sizeof(expected[0]), MR_ERR_COUNT);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        assert_int_equal(mr_err_status(expected[i].err), expected[i].status);
        assert_string_equal(mr_err_code(expected[i].err), expected[i].code);
    }
    /* Errors are 4xx/5xx; only success is 2xx. */
    for (int e = 1; e < MR_ERR_COUNT; e++)
        assert_true(mr_err_status(e) >= 400);
}

static void test_distinct_texts(void **state)
{
    (void)state;
    for (int e = 0; e < MR_ERR_COUNT; e++)
        for (int f = e + 1; f < MR_ERR_COUNT; f++)
            assert_string_not_equal(mr_strerror(e), mr_strerror(f));
}

static void test_unknown(void **state)
{
    static const int bad[] = { -1, MR_ERR_COUNT, MR_ERR_COUNT + 1, 1000, INT32_MIN, INT32_MAX };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mr_err_status(bad[i]), 500);
        assert_string_equal(mr_err_code(bad[i]), "internal");
        assert_string_equal(mr_strerror(bad[i]), "unknown error");
    }
}

static void test_http_reason(void **state)
{
    static const struct {
        int status;
        const char *reason;
    } cases[] = {
        { 200, "OK" },
        { 201, "Created" },
        { 204, "No Content" },
        { 206, "Partial Content" },
        { 301, "Moved Permanently" },
        { 302, "Found" },
        { 304, "Not Modified" },
        { 307, "Temporary Redirect" },
        { 308, "Permanent Redirect" },
        { 400, "Bad Request" },
        { 401, "Unauthorized" },
        { 403, "Forbidden" },
        { 404, "Not Found" },
        { 405, "Method Not Allowed" },
        { 413, "Content Too Large" },
        { 416, "Range Not Satisfiable" },
        { 429, "Too Many Requests" },
        { 500, "Internal Server Error" },
        { 501, "Not Implemented" },
        { 502, "Bad Gateway" },
        { 503, "Service Unavailable" },
        { 504, "Gateway Timeout" },
        { 0, "" },
        { -1, "" },
        { 299, "" },
        { 499, "" },
        { 600, "" },
        { 999, "" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *r = mr_http_reason(cases[i].status);
        assert_non_null(r);
        assert_string_equal(r, cases[i].reason);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_value),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_distinct_texts),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_http_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
