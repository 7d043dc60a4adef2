/* test_request.c - FastCGI params to struct mr_request, cookies, query
 * parameters, bodies and the base URL. */
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
#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"
#include "http/request.h"

#define SECRET "0123456789abcdef0123456789abcdef"

static int setup(void **state)
{
    struct mr_arena *a = malloc(sizeof(*a));
    if (!a)
        return -1;
    mr_arena_init(a, 0);
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    mr_arena_free(*state);
    free(*state);
    return 0;
}

/* Parses a NULL-terminated list of literals (copied: parse may keep
 * pointers into them, so they live in the arena). */
static int parse(struct mr_request *r, struct mr_arena *a, const char *const *params)
{
    size_t n = 0;
    char **copy;

    while (params[n])
        n++;
    copy = mr_arena_calloc(a, n + 1, sizeof(char *));
    assert_non_null(copy);
    for (size_t i = 0; i < n; i++)
        copy[i] = mr_arena_strdup(a, params[i]);
    return mr_request_parse(r, a, copy);
}

static void parse_ok(struct mr_request *r, struct mr_arena *a, const char *const *params)
{
    assert_int_equal(parse(r, a, params), MR_OK);
}

static struct mr_conf *conf_load(const char *body)
{
    char json[1024];
    struct mr_conf *c = NULL;
    struct mr_buf err;
    int rc;

    snprintf(json, sizeof(json), "{\"secret\": \"%s\"%s%s}", SECRET, *body ? ", " : "", body);
    mr_buf_init(&err, 4096);
    rc = mr_conf_load_string("t", json, strlen(json), &c, &err);
    if (rc)
        print_message("%s", err.p);
    mr_buf_free(&err);
    assert_int_equal(rc, MR_OK);
    return c;
}

/* ---- parse ------------------------------------------------------------------- */

static void test_parse_basic(void **state)
{
    struct mr_arena *a = *state;
    struct mr_request r;
    const char *const params[] = {
        "GATEWAY_INTERFACE=CGI/1.1",
        "REQUEST_METHOD=GET",
        "REQUEST_URI=/a/b%20c?x=1&y=%2F",
        "DOCUMENT_URI=/ignored",
        "QUERY_STRING=x=1&y=%2F",
        "SCRIPT_NAME=/a/b c",
        "REMOTE_ADDR=192.0.2.7",
        "HTTP_HOST=relay.example",
        "HTTP_RANGE=bytes=0-",
        "HTTP_IF_NONE_MATCH=\"etag=1\"",
        "HTTP_X_FORWARDED_FOR=198.51.100.1",
        "HTTP_USER_AGENT=Player/1.0 (x=y)",
        "CONTENT_TYPE=application/json; charset=utf-8",
        "CONTENT_LENGTH=17",
        "HTTP_EMPTY=",
        "NOEQUALS",
        NULL,
    };

    parse_ok(&r, a, params);
    assert_true(mr_str_eq_c(r.method, "GET"));
    assert_true(mr_str_eq_c(r.uri, "/a/b%20c?x=1&y=%2F"));
    assert_true(mr_str_eq_c(r.path, "/a/b%20c"));        /* raw, not decoded */
    assert_true(mr_str_eq_c(r.query, "x=1&y=%2F"));
    assert_true(mr_str_eq_c(r.remote_addr, "192.0.2.7"));
    assert_int_equal(r.content_length, 17);
    assert_false(r.https);
    assert_string_equal(mr_request_header(&r, "host"), "relay.example");
    assert_string_equal(mr_request_header(&r, "range"), "bytes=0-");
    assert_string_equal(mr_request_header(&r, "if-none-match"), "\"etag=1\"");
    assert_string_equal(mr_request_header(&r, "x-forwarded-for"), "198.51.100.1");
    assert_string_equal(mr_request_header(&r, "user-agent"), "Player/1.0 (x=y)");
    assert_string_equal(mr_request_header(&r, "content-type"),
                        "application/json; charset=utf-8");
    assert_string_equal(mr_request_header(&r, "content-length"), "17");
    assert_string_equal(mr_request_header(&r, "empty"), "");
    /* Only HTTP_* and CONTENT_* become headers; lookups are by lowercase. */
    assert_int_equal(r.nheaders, 8);
    assert_null(mr_request_header(&r, "Range"));
    assert_null(mr_request_header(&r, "RANGE"));
    assert_null(mr_request_header(&r, "remote-addr"));
    assert_null(mr_request_header(&r, "script-name"));
    assert_null(mr_request_header(&r, "query-string"));
    assert_null(mr_request_header(&r, "x-missing"));
    for (size_t i = 0; i < r.nheaders; i++)
        for (const char *c = r.headers[i].name; *c; c++)
            assert_true(*c == '-' || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'));
}

static void test_parse_uri_forms(void **state)
{
    static const struct {
        const char *uri;
        const char *path;
        const char *query;
    } cases[] = {
        { "/", "/", "" },
        { "/a", "/a", "" },
        { "/a?", "/a", "" },
        { "/a?b", "/a", "b" },
        { "/a?b?c=d", "/a", "b?c=d" },
        { "//double/slash", "//double/slash", "" },
        { "/a#frag", "/a#frag", "" },
    };
    struct mr_arena *a = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_request r;
        char uri[128];
        const char *params[] = { "REQUEST_METHOD=GET", uri, NULL };
        snprintf(uri, sizeof(uri), "REQUEST_URI=%s", cases[i].uri);
        parse_ok(&r, a, params);
        assert_true(mr_str_eq_c(r.path, cases[i].path));
        assert_true(mr_str_eq_c(r.query, cases[i].query));
        assert_non_null(r.query.p);
        assert_int_equal(r.content_length, -1);
    }
    /* DOCUMENT_URI when REQUEST_URI is absent or empty. */
    {
        struct mr_request r;
        const char *const p1[] = { "REQUEST_METHOD=GET", "DOCUMENT_URI=/doc", NULL };
        const char *const p2[] = { "REQUEST_METHOD=GET", "REQUEST_URI=", "DOCUMENT_URI=/doc",
                                   NULL };
        parse_ok(&r, a, p1);
        assert_true(mr_str_eq_c(r.path, "/doc"));
        parse_ok(&r, a, p2);
        assert_true(mr_str_eq_c(r.path, "/doc"));
    }
}

static void test_parse_https(void **state)
{
    static const struct {
        const char *p1, *p2;
        bool https;
    } cases[] = {
        { "HTTPS=on", NULL, true },
        { "HTTPS=ON", NULL, true },
        { "HTTPS=1", NULL, true },
        { "HTTPS=off", NULL, false },
        { "HTTPS=OFF", NULL, false },
        { "HTTPS=", NULL, false },
        { "REQUEST_SCHEME=https", NULL, true },
        { "REQUEST_SCHEME=http", NULL, false },
        { "HTTPS=off", "REQUEST_SCHEME=https", true },
        { "HTTPS=on", "REQUEST_SCHEME=http", true },
        { NULL, NULL, false },
    };
    struct mr_arena *a = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_request r;
        const char *params[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/", cases[i].p1,
                                 cases[i].p2, NULL };
        parse_ok(&r, a, params);
        if (r.https != cases[i].https)
            print_message("case %zu\n", i);
        assert_int_equal(r.https, cases[i].https);
    }
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *p[4];
        int rc;
    } cases[] = {
        { { "REQUEST_URI=/", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=", "REQUEST_URI=/", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", "REQUEST_URI=", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", "REQUEST_URI=relative", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", "REQUEST_URI=http://x/", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", "REQUEST_URI=/", "CONTENT_LENGTH=abc", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", "REQUEST_URI=/", "CONTENT_LENGTH=-1", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", "REQUEST_URI=/", "CONTENT_LENGTH=1x", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", "REQUEST_URI=/",
            "CONTENT_LENGTH=99999999999999999999999", NULL }, MR_EINVAL },
        { { "REQUEST_METHOD=GET", "REQUEST_URI=/", "CONTENT_LENGTH=", NULL }, MR_OK },
        { { "REQUEST_METHOD=POST", "REQUEST_URI=/", "CONTENT_LENGTH=0", NULL }, MR_OK },
        { { "XREQUEST_METHOD=GET", "REQUEST_URI=/", NULL }, MR_EINVAL },
        { { "REQUEST_METHODX=GET", "REQUEST_URI=/", NULL }, MR_EINVAL },
    };
    struct mr_arena *a = *state;
    struct mr_request r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(&r, a, cases[i].p);
        if (rc != cases[i].rc)
            print_message("case %zu: rc %d\n", i, rc);
        assert_int_equal(rc, cases[i].rc);
    }
    /* A NULL params array. */
    assert_int_equal(mr_request_parse(&r, a, NULL), MR_EINVAL);
}

static void test_parse_limits(void **state)
{
    struct mr_arena *a = *state;
    struct mr_request r;
    size_t n = MR_REQ_MAX_PATH + 64;
    char *uri = malloc(n + 32);
    const char *params[4] = { "REQUEST_METHOD=GET", uri, NULL, NULL };

    assert_non_null(uri);
    /* A path of exactly the limit is fine, one more byte is not. */
    memcpy(uri, "REQUEST_URI=/", 13);
    memset(uri + 13, 'p', MR_REQ_MAX_PATH - 1);
    uri[12 + MR_REQ_MAX_PATH] = '\0';
    assert_int_equal(parse(&r, a, params), MR_OK);
    assert_int_equal(r.path.len, MR_REQ_MAX_PATH);
    uri[12 + MR_REQ_MAX_PATH] = 'p';
    uri[13 + MR_REQ_MAX_PATH] = '\0';
    assert_int_equal(parse(&r, a, params), MR_ETOOBIG);
    /* The query has its own, larger limit. */
    free(uri);
    uri = malloc(MR_REQ_MAX_QUERY + 64);
    assert_non_null(uri);
    params[1] = uri;
    memcpy(uri, "REQUEST_URI=/a?", 15);
    memset(uri + 15, 'q', MR_REQ_MAX_QUERY);
    uri[15 + MR_REQ_MAX_QUERY] = '\0';
    assert_int_equal(parse(&r, a, params), MR_OK);
    assert_int_equal(r.query.len, MR_REQ_MAX_QUERY);
    uri[15 + MR_REQ_MAX_QUERY] = 'q';
    uri[16 + MR_REQ_MAX_QUERY] = '\0';
    assert_int_equal(parse(&r, a, params), MR_ETOOBIG);
    free(uri);
}

/* Up to 64 headers are kept; more is refused, not silently cut. */
static void test_parse_header_count(void **state)
{
    struct mr_arena *a = *state;
    const size_t max = sizeof(((struct mr_request *)0)->headers) /
                       sizeof(((struct mr_request *)0)->headers[0]);
    const char **params = calloc(max + 4, sizeof(char *));
    struct mr_request r;
    char name[32];
    size_t i;

    assert_int_equal(max, 64);
    assert_non_null(params);
    params[0] = "REQUEST_METHOD=GET";
    params[1] = "REQUEST_URI=/";
    for (i = 0; i < max; i++) {
        snprintf(name, sizeof(name), "HTTP_X_H%zu=v%zu", i, i);
        params[2 + i] = mr_arena_strdup(a, name);
    }
    assert_int_equal(parse(&r, a, params), MR_OK);
    assert_int_equal(r.nheaders, max);
    assert_string_equal(mr_request_header(&r, "x-h63"), "v63");
    params[2 + max] = "HTTP_ONE_MORE=x";
    assert_int_equal(parse(&r, a, params), MR_ETOOBIG);
    free(params);
}

/* ---- cookies ------------------------------------------------------------------- */

static void test_cookie(void **state)
{
    static const struct {
        const char *header;   /* NULL: no Cookie header */
        const char *name;
        int rc;
        const char *value;
    } cases[] = {
        { "a=1; session=abc; b=2", "session", MR_OK, "abc" },
        { "a=1; session=abc; b=2", "a", MR_OK, "1" },
        { "a=1; session=abc; b=2", "b", MR_OK, "2" },
        { "a=1;session=abc;b=2", "session", MR_OK, "abc" },
        { "  session  =  abc  ;  x=y", "session", MR_OK, "abc" },
        { "session=\"quoted value\"", "session", MR_OK, "quoted value" },
        { "session=\"", "session", MR_OK, "\"" },
        { "session=", "session", MR_OK, "" },
        { "session=a=b", "session", MR_OK, "a=b" },
        { "sessionx=1; session=2", "session", MR_OK, "2" },
        { "session=2; sessionx=1", "sessionx", MR_OK, "1" },
        { "xsession=1", "session", MR_ENOTFOUND, NULL },
        { "sessionx=1", "session", MR_ENOTFOUND, NULL },
        { "sess=1", "session", MR_ENOTFOUND, NULL },
        { "session", "session", MR_ENOTFOUND, NULL },
        { "", "session", MR_ENOTFOUND, NULL },
        { ";;;", "session", MR_ENOTFOUND, NULL },
        { "a=1; b=2", "missing", MR_ENOTFOUND, NULL },
        { NULL, "session", MR_ENOTFOUND, NULL },
        { "Session=1", "session", MR_ENOTFOUND, NULL },     /* names are case-sensitive */
        { "a=1; a=2", "a", MR_OK, "1" },                   /* the first wins */
    };
    struct mr_arena *a = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_request r;
        struct mr_str v = MR_STR("unchanged");
        char cookie[256];
        const char *params[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/", NULL, NULL };
        int rc;

        if (cases[i].header) {
            snprintf(cookie, sizeof(cookie), "HTTP_COOKIE=%s", cases[i].header);
            params[2] = cookie;
        }
        parse_ok(&r, a, params);
        rc = mr_request_cookie(&r, cases[i].name, &v);
        if (rc != cases[i].rc || (cases[i].value && !mr_str_eq_c(v, cases[i].value)))
            print_message("case %zu: rc %d value \"%.*s\"\n", i, rc, (int)v.len, v.p);
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].value)
            assert_true(mr_str_eq_c(v, cases[i].value));
    }
}

/* ---- query parameters ---------------------------------------------------------- */

static void test_query(void **state)
{
    static const struct {
        const char *name;
        int rc;
        const char *value;
    } cases[] = {
        { "a", MR_OK, "1" },
        { "b", MR_OK, "hello world" },
        { "c", MR_OK, "AB" },
        { "url", MR_OK, "http://x/?y=1&z" },         /* its name was escaped: u%72l */
        { "empty", MR_OK, "" },
        { "flag", MR_OK, "" },
        { "sp ace", MR_OK, "s" },
        { "utf", MR_OK, "\xc3\xa9" },
        { "dup", MR_OK, "first" },
        { "bad", MR_EINVAL, NULL },
        { "short", MR_EINVAL, NULL },
        { "nul", MR_EINVAL, NULL },
        { "missing", MR_ENOTFOUND, NULL },
        { "ur", MR_ENOTFOUND, NULL },                 /* a prefix of "url" */
        { "aa", MR_ENOTFOUND, NULL },
    };
    const char *const params[] = {
        "REQUEST_METHOD=GET",
        "REQUEST_URI=/p?a=1&b=hello+world&c=%41%42&u%72l=http%3A%2F%2Fx%2F%3Fy%3D1%26z"
        "&empty=&flag&sp+ace=s&utf=%C3%A9&dup=first&dup=second&bad=%zz&short=%4"
        "&nul=a%00b&&=x",
        NULL,
    };
    struct mr_arena *a = *state;
    struct mr_request r;

    parse_ok(&r, a, params);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *v = NULL;
        int rc = mr_request_query(&r, a, cases[i].name, &v);
        if (rc != cases[i].rc || (cases[i].value && (!v || strcmp(v, cases[i].value))))
            print_message("case %zu (%s): rc %d value \"%s\"\n", i, cases[i].name, rc,
                          v ? v : "(null)");
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].value)
            assert_string_equal(v, cases[i].value);
    }

    /* No query at all. */
    {
        const char *const p2[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/p", NULL };
        char *v;
        parse_ok(&r, a, p2);
        assert_int_equal(mr_request_query(&r, a, "a", &v), MR_ENOTFOUND);
    }
}

/* ---- bodies ------------------------------------------------------------------ */

struct feed {
    const char *data;
    size_t len, pos;
    size_t chunk;       /* at most this much per read */
    bool fail;          /* the next read fails */
    int reads;
};

static long feed_read(void *arg, void *buf, size_t n)
{
    struct feed *f = arg;
    size_t k = f->len - f->pos;

    f->reads++;
    if (f->fail)
        return -1;
    if (k > n)
        k = n;
    if (f->chunk && k > f->chunk)
        k = f->chunk;
    memcpy(buf, f->data + f->pos, k);
    f->pos += k;
    return (long)k;
}

static void test_body(void **state)
{
    static const struct {
        const char *data;
        long content_length;   /* -1: unknown */
        size_t chunk;
        size_t cap;
        bool fail;
        int rc;
        const char *body;
    } cases[] = {
        { "hello", 5, 0, 100, false, MR_OK, "hello" },
        { "hello", 5, 1, 100, false, MR_OK, "hello" },
        { "hello", 5, 2, 5, false, MR_OK, "hello" },
        { "hello world", 5, 0, 100, false, MR_OK, "hello" },     /* only what was announced */
        { "", 0, 0, 100, false, MR_OK, "" },
        { "0123456789", 10, 3, 9, false, MR_ETOOBIG, NULL },      /* announced past the cap */
        { "0123456789", -1, 3, 100, false, MR_OK, "0123456789" },
        { "0123456789", -1, 4, 10, false, MR_OK, "0123456789" },  /* exactly the cap */
        { "0123456789", -1, 4, 9, false, MR_ETOOBIG, NULL },      /* unknown, over the cap */
        { "", -1, 0, 10, false, MR_OK, "" },
        { "hello", 5, 0, 100, true, MR_EINVAL, NULL },            /* read error */
        { "hello", -1, 0, 100, true, MR_EINVAL, NULL },
    };
    struct mr_arena *a = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_request r;
        struct feed f = { cases[i].data, strlen(cases[i].data), 0, cases[i].chunk,
                          cases[i].fail, 0 };
        struct mr_str body = MR_STR_NULL;
        const char *params[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/api/media", NULL };
        int rc;

        parse_ok(&r, a, params);
        r.content_length = cases[i].content_length;
        r.read = feed_read;
        r.read_arg = &f;
        rc = mr_request_body(&r, a, cases[i].cap, &body);
        if (rc != cases[i].rc)
            print_message("case %zu: rc %d\n", i, rc);
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].body) {
            assert_int_equal(body.len, strlen(cases[i].body));
            assert_memory_equal(body.p, cases[i].body, body.len);
            assert_int_equal(body.p[body.len], '\0');
        }
    }

    /* Binary bodies keep their NULs. */
    {
        struct mr_request r;
        struct feed f = { "a\0b", 3, 0, 0, false, 0 };
        struct mr_str body;
        const char *params[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/", "CONTENT_LENGTH=3",
                                 NULL };
        parse_ok(&r, a, params);
        r.read = feed_read;
        r.read_arg = &f;
        assert_int_equal(mr_request_body(&r, a, 10, &body), MR_OK);
        assert_int_equal(body.len, 3);
        assert_memory_equal(body.p, "a\0b", 3);
    }
    /* No read function: an empty body. */
    {
        struct mr_request r;
        struct mr_str body;
        const char *params[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/", NULL };
        parse_ok(&r, a, params);
        assert_int_equal(mr_request_body(&r, a, 10, &body), MR_OK);
        assert_int_equal(body.len, 0);
        assert_string_equal(body.p, "");
    }
}

/* ---- base URL ------------------------------------------------------------------ */

static void test_base_url(void **state)
{
    static const struct {
        const char *p[5];
        int rc;
        const char *url;
    } cases[] = {
        { { "HTTP_HOST=relay.example", NULL }, MR_OK, "http://relay.example" },
        { { "HTTP_HOST=relay.example:8080", NULL }, MR_OK, "http://relay.example:8080" },
        { { "HTTP_HOST=relay.example", "HTTPS=on", NULL }, MR_OK, "https://relay.example" },
        { { "HTTP_HOST=[::1]:8080", NULL }, MR_OK, "http://[::1]:8080" },
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=https",
            "HTTP_X_FORWARDED_HOST=front.example", NULL }, MR_OK, "https://front.example" },
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=HTTP",
            "HTTP_X_FORWARDED_HOST=front.example:81", NULL }, MR_OK, "http://front.example:81" },
        /* the first of a comma list (the client-most proxy) */
        { { "HTTP_HOST=backend", "HTTP_X_FORWARDED_PROTO=https, http",
            "HTTP_X_FORWARDED_HOST= a.example , b.example", NULL }, MR_OK, "https://a.example" },
        /* forged or broken forwarded values are ignored: Host is used */
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=https",
            "HTTP_X_FORWARDED_HOST=evil.example/path", NULL }, MR_OK, "http://backend:8080" },
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=https",
            "HTTP_X_FORWARDED_HOST=evil example", NULL }, MR_OK, "http://backend:8080" },
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=https",
            "HTTP_X_FORWARDED_HOST=evil.example\r\nSet-Cookie: x=1", NULL }, MR_OK,
          "http://backend:8080" },
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=https",
            "HTTP_X_FORWARDED_HOST=user@evil.example", NULL }, MR_OK, "http://backend:8080" },
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=https",
            "HTTP_X_FORWARDED_HOST=", NULL }, MR_OK, "http://backend:8080" },
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=javascript",
            "HTTP_X_FORWARDED_HOST=front.example", NULL }, MR_OK, "http://backend:8080" },
        { { "HTTP_HOST=backend:8080", "HTTP_X_FORWARDED_PROTO=https://x",
            "HTTP_X_FORWARDED_HOST=front.example", NULL }, MR_OK, "http://backend:8080" },
        /* both forwarded headers are needed */
        { { "HTTP_HOST=backend", "HTTP_X_FORWARDED_HOST=front.example", NULL }, MR_OK,
          "http://backend" },
        { { "HTTP_HOST=backend", "HTTP_X_FORWARDED_PROTO=https", NULL }, MR_OK,
          "http://backend" },
        /* no usable Host */
        { { NULL }, MR_EINVAL, NULL },
        { { "HTTP_HOST=", NULL }, MR_EINVAL, NULL },
        { { "HTTP_HOST=a/b", NULL }, MR_EINVAL, NULL },
        { { "HTTP_HOST=a b", NULL }, MR_EINVAL, NULL },
        { { "HTTP_X_FORWARDED_PROTO=https", "HTTP_X_FORWARDED_HOST=evil/x", NULL }, MR_EINVAL,
          NULL },
        /* ... unless the forwarded pair is good */
        { { "HTTP_X_FORWARDED_PROTO=https", "HTTP_X_FORWARDED_HOST=front.example", NULL }, MR_OK,
          "https://front.example" },
    };
    struct mr_arena *a = *state;
    struct mr_conf *plain = conf_load("");
    struct mr_conf *pub = conf_load("\"public_url\": \"https://relay.example/base/\"");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_request r;
        const char *params[8] = { "REQUEST_METHOD=GET", "REQUEST_URI=/x" };
        char *url = NULL;
        int rc;

        for (size_t k = 0; k < 5 && cases[i].p[k]; k++)
            params[2 + k] = cases[i].p[k];
        parse_ok(&r, a, params);
        rc = mr_request_base_url(&r, plain, a, &url);
        if (rc != cases[i].rc || (cases[i].url && (!url || strcmp(url, cases[i].url))))
            print_message("case %zu: rc %d url %s\n", i, rc, url ? url : "(null)");
        assert_int_equal(rc, cases[i].rc);
        if (cases[i].url)
            assert_string_equal(url, cases[i].url);
        /* Without a conf: the same. */
        url = NULL;
        assert_int_equal(mr_request_base_url(&r, NULL, a, &url), cases[i].rc);
        if (cases[i].url)
            assert_string_equal(url, cases[i].url);
        /* public_url wins over everything (its trailing '/' dropped). */
        url = NULL;
        assert_int_equal(mr_request_base_url(&r, pub, a, &url), MR_OK);
        assert_string_equal(url, "https://relay.example/base");
    }
    mr_conf_free(plain);
    mr_conf_free(pub);

    /* A hand-made conf works as well. */
    {
        struct mr_conf *c = calloc(1, sizeof(*c));
        struct mr_request r;
        const char *params[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/", NULL };
        char *url = NULL;
        char pu[] = "http://hand.example:8000";
        assert_non_null(c);
        c->public_url = pu;
        parse_ok(&r, a, params);
        assert_int_equal(mr_request_base_url(&r, c, a, &url), MR_OK);
        assert_string_equal(url, "http://hand.example:8000");
        free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_uri_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_https, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_header_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_url, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
