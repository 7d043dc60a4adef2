/* test_response.c - the exact CGI output, header checks, JSON errors and
 * CORS, through a struct mr_out bound to a buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"
#include "http/request.h"
#include "http/response.h"

#define SECRET "0123456789abcdef0123456789abcdef"

/* The output: a buffer, and a switch to make writes fail. */
struct sink {
    struct mr_buf buf;
    int writes;          /* write calls */
    int flushes;
    int fail_from;       /* writes numbered >= this fail (0: never) */
    int closed;          /* what closed() reports */
};

static int sink_write(void *arg, const void *p, size_t n)
{
    struct sink *s = arg;
    s->writes++;
    if (s->fail_from && s->writes >= s->fail_from)
        return -1;
    return mr_buf_append(&s->buf, p, n) ? -1 : 0;
}

static int sink_flush(void *arg)
{
    struct sink *s = arg;
    s->flushes++;
    return s->fail_from && s->writes >= s->fail_from ? -1 : 0;
}

static int sink_closed(void *arg)
{
    return ((struct sink *)arg)->closed;
}

/* move() as a read into the buffer; fails like write() does. */
static int sink_move(void *arg, int fd, size_t n, size_t *moved)
{
    struct sink *s = arg;
    char tmp[4096];
    ssize_t k;

    *moved = 0;
    s->writes++;
    if (s->fail_from && s->writes >= s->fail_from)
        return MR_ECLIENT;
    k = read(fd, tmp, n < sizeof(tmp) ? n : sizeof(tmp));
    if (k < 0)
        return errno == EAGAIN ? MR_OK : MR_EUPSTREAM;
    if (mr_buf_append(&s->buf, tmp, (size_t)k))
        return MR_ECLIENT;
    *moved = (size_t)k;
    return MR_OK;
}

struct fx {
    struct mr_arena arena;
    struct sink sink;
    struct mr_out out;
    struct mr_response r;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    mr_arena_init(&f->arena, 0);
    mr_buf_init(&f->sink.buf, 1 << 20);
    f->out = (struct mr_out){ .write = sink_write, .flush = sink_flush, .arg = &f->sink };
    mr_resp_init(&f->r, &f->arena, &f->out, false);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mr_arena_free(&f->arena);
    mr_buf_free(&f->sink.buf);
    free(f);
    return 0;
}

static const char *output(struct fx *f)
{
    return f->sink.buf.p ? f->sink.buf.p : "";
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

static void request(struct fx *f, struct mr_request *req, const char *h1, const char *h2)
{
    char **params = mr_arena_calloc(&f->arena, 5, sizeof(char *));
    size_t n = 0;
    assert_non_null(params);
    params[n++] = mr_arena_strdup(&f->arena, "REQUEST_METHOD=GET");
    params[n++] = mr_arena_strdup(&f->arena, "REQUEST_URI=/x");
    if (h1)
        params[n++] = mr_arena_strdup(&f->arena, h1);
    if (h2)
        params[n++] = mr_arena_strdup(&f->arena, h2);
    assert_int_equal(mr_request_parse(req, &f->arena, params), MR_OK);
}

/* The value of a header line in the output, or NULL (static buffer). */
static const char *out_header(struct fx *f, const char *name)
{
    static char value[1024];
    const char *p = output(f), *end = strstr(p, "\r\n\r\n");
    size_t nl = strlen(name);

    if (!end)
        return NULL;
    while (p < end) {
        const char *eol = strstr(p, "\r\n");
        if (!strncasecmp(p, name, nl) && p[nl] == ':' && p[nl + 1] == ' ') {
            snprintf(value, sizeof(value), "%.*s", (int)(eol - p - nl - 2), p + nl + 2);
            return value;
        }
        p = eol + 2;
    }
    return NULL;
}

static const char *out_body(struct fx *f)
{
    const char *end = strstr(output(f), "\r\n\r\n");
    return end ? end + 4 : NULL;
}

/* ---- plain output ---------------------------------------------------------- */

static void test_exact_output(void **state)
{
    struct fx *f = *state;

    assert_int_equal(f->r.status, 200);
    assert_int_equal(mr_resp_header(&f->r, "Content-Type", "text/plain"), MR_OK);
    assert_int_equal(mr_resp_headerf(&f->r, "Content-Length", "%d", 5), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "X-Tab", "a\tb"), MR_OK);
    assert_false(f->r.headers_sent);
    assert_int_equal(f->sink.writes, 0);          /* nothing before the body */
    assert_int_equal(mr_resp_write(&f->r, "hel", 3), MR_OK);
    assert_true(f->r.headers_sent);
    assert_int_equal(mr_resp_write(&f->r, "lo", 2), MR_OK);
    assert_int_equal(mr_resp_write(&f->r, "", 0), MR_OK);
    assert_int_equal(mr_resp_finish(&f->r), MR_OK);
    assert_string_equal(output(f),
                        "Status: 200 OK\r\n"
                        "Content-Type: text/plain\r\n"
                        "Content-Length: 5\r\n"
                        "X-Tab: a\tb\r\n"
                        "\r\n"
                        "hello");
    assert_int_equal(f->r.bytes_out, 5);
    assert_int_equal(f->sink.flushes, 1);
    assert_false(f->r.failed);
}

static void test_status_lines(void **state)
{
    static const struct {
        int status;
        const char *line;
    } cases[] = {
        { 200, "Status: 200 OK\r\n" },
        { 201, "Status: 201 Created\r\n" },
        { 204, "Status: 204 No Content\r\n" },
        { 206, "Status: 206 Partial Content\r\n" },
        { 302, "Status: 302 Found\r\n" },
        { 304, "Status: 304 Not Modified\r\n" },
        { 400, "Status: 400 Bad Request\r\n" },
        { 403, "Status: 403 Forbidden\r\n" },
        { 404, "Status: 404 Not Found\r\n" },
        { 413, "Status: 413 Content Too Large\r\n" },
        { 416, "Status: 416 Range Not Satisfiable\r\n" },
        { 502, "Status: 502 Bad Gateway\r\n" },
        { 504, "Status: 504 Gateway Timeout\r\n" },
        { 299, "Status: 299\r\n" },     /* unknown: no reason phrase */
    };
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mr_buf_reset(&f->sink.buf);
        mr_resp_init(&f->r, &f->arena, &f->out, false);
        mr_resp_status(&f->r, cases[i].status);
        assert_int_equal(mr_resp_send_headers(&f->r), MR_OK);
        assert_int_equal(mr_resp_send_headers(&f->r), MR_OK);   /* once only */
        assert_int_equal(f->sink.buf.len, strlen(cases[i].line) + 2);
        assert_memory_equal(output(f), cases[i].line, strlen(cases[i].line));
        assert_string_equal(output(f) + strlen(cases[i].line), "\r\n");
    }
}

static void test_head_drops_body(void **state)
{
    struct fx *f = *state;

    mr_resp_init(&f->r, &f->arena, &f->out, true);
    mr_resp_status(&f->r, 206);
    assert_int_equal(mr_resp_header(&f->r, "Content-Length", "5"), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "Content-Range", "bytes 0-4/10"), MR_OK);
    assert_int_equal(mr_resp_write(&f->r, "hello", 5), MR_OK);
    assert_int_equal(mr_resp_finish(&f->r), MR_OK);
    assert_string_equal(output(f),
                        "Status: 206 Partial Content\r\n"
                        "Content-Length: 5\r\n"
                        "Content-Range: bytes 0-4/10\r\n"
                        "\r\n");
    assert_int_equal(f->r.bytes_out, 0);

    /* A JSON answer to HEAD keeps its Content-Length. */
    {
        struct json_object *o = json_object_new_object();
        mr_buf_reset(&f->sink.buf);
        mr_resp_init(&f->r, &f->arena, &f->out, true);
        json_object_object_add(o, "a", json_object_new_int(1));
        assert_int_equal(mr_resp_json(&f->r, 200, o), MR_OK);
        assert_string_equal(out_header(f, "Content-Length"), "8");
        assert_string_equal(out_body(f), "");
        json_object_put(o);
    }
}

static void test_header_checks(void **state)
{
    static const struct {
        const char *name;
        const char *value;
        int rc;
    } cases[] = {
        { "X-A", "plain value", MR_OK },
        { "X-A", "", MR_OK },
        { "X-A", "a\tb", MR_OK },
        { "X-A", "caf\xc3\xa9", MR_OK },
        { "X-A", "a\r\nSet-Cookie: x=1", MR_EINVAL },
        { "X-A", "a\nb", MR_EINVAL },
        { "X-A", "a\rb", MR_EINVAL },
        { "X-A", "a\x01", MR_EINVAL },
        { "X-A", "a\x7f", MR_EINVAL },
        { "", "v", MR_EINVAL },
        { "X A", "v", MR_EINVAL },
        { "X:A", "v", MR_EINVAL },
        { "X-A\r\nY", "v", MR_EINVAL },
        { "X(A)", "v", MR_EINVAL },
        { "X/A", "v", MR_EINVAL },
        { "X\xc3\xa9", "v", MR_EINVAL },
        { "X-Custom_1.2~!#$%&'*+^`|", "v", MR_OK },
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t before = f->r.nheaders;
        int rc = mr_resp_header(&f->r, cases[i].name, cases[i].value);
        if (rc != cases[i].rc)
            print_message("case %zu: rc %d\n", i, rc);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(f->r.nheaders, before + (rc == MR_OK));
    }
    /* set_header checks the value of a header it replaces too. */
    assert_int_equal(mr_resp_set_header(&f->r, "X-A", "b\r\nc"), MR_EINVAL);
    assert_int_equal(mr_resp_set_header(&f->r, "Bad Name", "v"), MR_EINVAL);
    assert_int_equal(mr_resp_headerf(&f->r, "X-F", "%s", "a\nb"), MR_EINVAL);
    /* Nothing refused reached the output. */
    assert_int_equal(mr_resp_send_headers(&f->r), MR_OK);
    assert_null(strstr(output(f), "Set-Cookie"));
    assert_null(strstr(output(f), "X A"));
}

static void test_set_and_get_header(void **state)
{
    struct fx *f = *state;

    assert_null(mr_resp_get_header(&f->r, "X-A"));
    assert_int_equal(mr_resp_set_header(&f->r, "X-A", "1"), MR_OK);
    assert_int_equal(mr_resp_set_header(&f->r, "x-a", "2"), MR_OK);   /* replaces */
    assert_int_equal(f->r.nheaders, 1);
    assert_string_equal(mr_resp_get_header(&f->r, "X-A"), "2");
    assert_string_equal(mr_resp_get_header(&f->r, "x-A"), "2");
    assert_int_equal(mr_resp_header(&f->r, "X-A", "3"), MR_OK);       /* adds */
    assert_int_equal(f->r.nheaders, 2);
    assert_int_equal(mr_resp_finish(&f->r), MR_OK);
    assert_string_equal(output(f), "Status: 200 OK\r\nX-A: 2\r\nX-A: 3\r\n\r\n");
}

static void test_header_limits(void **state)
{
    struct fx *f = *state;
    char name[32];

    for (int i = 0; i < MR_RESP_MAX_HEADERS; i++) {
        snprintf(name, sizeof(name), "X-H%d", i);
        assert_int_equal(mr_resp_header(&f->r, name, "v"), MR_OK);
    }
    assert_int_equal(mr_resp_header(&f->r, "X-One-More", "v"), MR_ETOOBIG);
    assert_int_equal(mr_resp_set_header(&f->r, "X-One-More", "v"), MR_ETOOBIG);
    assert_int_equal(mr_resp_set_header(&f->r, "X-H0", "w"), MR_OK);     /* replacing is fine */
    assert_int_equal(f->r.nheaders, MR_RESP_MAX_HEADERS);

    /* After the headers went out, no more. */
    assert_int_equal(mr_resp_send_headers(&f->r), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "X-Late", "v"), MR_EINTERNAL);
    assert_int_equal(mr_resp_set_header(&f->r, "X-H1", "v"), MR_EINTERNAL);
    assert_null(strstr(output(f), "X-Late"));
    assert_non_null(strstr(output(f), "X-H0: w\r\n"));
    assert_non_null(strstr(output(f), "X-H63: v\r\n\r\n"));
}

/* A header value longer than a line is dropped whole, never cut. */
static void test_overlong_header(void **state)
{
    struct fx *f = *state;
    char *big = malloc(MR_HEADER_MAX_LINE + 10);

    assert_non_null(big);
    memset(big, 'v', MR_HEADER_MAX_LINE + 9);
    big[MR_HEADER_MAX_LINE + 9] = '\0';
    assert_int_equal(mr_resp_header(&f->r, "X-Big", big), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "X-Small", "s"), MR_OK);
    assert_int_equal(mr_resp_finish(&f->r), MR_OK);
    assert_string_equal(output(f), "Status: 200 OK\r\nX-Small: s\r\n\r\n");
    free(big);
}

/* ---- JSON and errors --------------------------------------------------------- */

static void test_json(void **state)
{
    struct fx *f = *state;
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "a", json_object_new_int(1));
    json_object_object_add(o, "u", json_object_new_string("http://x/y"));
    assert_int_equal(mr_resp_json(&f->r, 201, o), MR_OK);
    assert_string_equal(output(f),
                        "Status: 201 Created\r\n"
                        "Content-Type: application/json\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "Cache-Control: no-store\r\n"
                        "Content-Length: 25\r\n"
                        "\r\n"
                        "{\"a\":1,\"u\":\"http://x/y\"}\n");
    assert_int_equal(f->r.bytes_out, 25);
    /* Once the answer is out, there is no second one. */
    assert_int_equal(mr_resp_json(&f->r, 200, o), MR_EINTERNAL);
    json_object_put(o);
}

/* The JSON error object of the output, parsed back (put it). */
static struct json_object *error_body(struct fx *f, const char **code, const char **message)
{
    struct json_object *root, *err, *v;
    const char *body = out_body(f);

    assert_non_null(body);
    root = json_tokener_parse(body);
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "error", &err));
    assert_int_equal(json_object_object_length(root), 1);
    assert_true(json_object_object_get_ex(err, "code", &v));
    *code = json_object_get_string(v);
    assert_true(json_object_object_get_ex(err, "message", &v));
    *message = json_object_get_string(v);
    return root;
}

static void test_error_shape(void **state)
{
    static const struct {
        int err;
        const char *status_line;
        const char *code;
    } cases[] = {
        { MR_EINVAL, "Status: 400 Bad Request\r\n", "bad_request" },
        { MR_EUNAUTHORIZED, "Status: 401 Unauthorized\r\n", "unauthorized" },
        { MR_EFORBIDDEN, "Status: 403 Forbidden\r\n", "forbidden" },
        { MR_ETOKEN_EXPIRED, "Status: 403 Forbidden\r\n", "token_expired" },
        { MR_EBLOCKED, "Status: 403 Forbidden\r\n", "upstream_blocked" },
        { MR_ENOTFOUND, "Status: 404 Not Found\r\n", "not_found" },
        { MR_EMETHOD, "Status: 405 Method Not Allowed\r\n", "method_not_allowed" },
        { MR_ETOOBIG, "Status: 413 Content Too Large\r\n", "too_large" },
        { MR_ERANGE, "Status: 416 Range Not Satisfiable\r\n", "range_not_satisfiable" },
        { MR_ENOTIMPL, "Status: 501 Not Implemented\r\n", "not_implemented" },
        { MR_EUPSTREAM, "Status: 502 Bad Gateway\r\n", "upstream_error" },
        { MR_EREFUSED, "Status: 502 Bad Gateway\r\n", "upstream_refused" },
        { MR_EUNAVAILABLE, "Status: 503 Service Unavailable\r\n", "unavailable" },
        { MR_ETIMEOUT, "Status: 504 Gateway Timeout\r\n", "upstream_timeout" },
        { MR_EINTERNAL, "Status: 500 Internal Server Error\r\n", "internal" },
        { MR_ELIMIT, "Status: 429 Too Many Requests\r\n", "too_many_requests" },
        { MR_EOVERLOADED, "Status: 503 Service Unavailable\r\n", "overloaded" },
        { 9999, "Status: 500 Internal Server Error\r\n", "internal" },
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *root;
        const char *code, *message;

        mr_buf_reset(&f->sink.buf);
        mr_resp_init(&f->r, &f->arena, &f->out, false);
        assert_int_equal(mr_resp_error(&f->r, cases[i].err, NULL), MR_OK);
        assert_int_equal(strncmp(output(f), cases[i].status_line, strlen(cases[i].status_line)),
                         0);
        assert_string_equal(out_header(f, "Content-Type"), "application/json");
        root = error_body(f, &code, &message);
        assert_string_equal(code, cases[i].code);
        assert_string_equal(message, mr_strerror(cases[i].err));   /* NULL: mr_strerror */
        assert_int_equal(strtol(out_header(f, "Content-Length"), NULL, 10), strlen(out_body(f)));
        json_object_put(root);
    }
}

static void test_error_message_and_headers(void **state)
{
    struct fx *f = *state;
    struct json_object *root;
    const char *code, *message;

    /* Headers of a success answer go; CORS, Vary, Allow and
     * WWW-Authenticate stay. */
    assert_int_equal(mr_resp_header(&f->r, "Access-Control-Allow-Origin", "*"), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "Content-Disposition", "attachment"), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "Vary", "Origin"), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "Content-Type", "video/mp4"), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "Allow", "GET, HEAD"), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "Accept-Ranges", "bytes"), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "WWW-Authenticate", "Bearer"), MR_OK);
    assert_int_equal(mr_resp_header(&f->r, "Content-Length", "999"), MR_OK);
    mr_resp_status(&f->r, 206);
    assert_int_equal(mr_resp_error(&f->r, MR_ENOTFOUND, "no media \"%s\"\n%d", "x\\y", 7), MR_OK);
    assert_int_equal(strncmp(output(f), "Status: 404 Not Found\r\n", 23), 0);
    assert_string_equal(out_header(f, "Access-Control-Allow-Origin"), "*");
    assert_string_equal(out_header(f, "Vary"), "Origin");
    assert_string_equal(out_header(f, "Allow"), "GET, HEAD");
    assert_string_equal(out_header(f, "WWW-Authenticate"), "Bearer");
    assert_null(out_header(f, "Content-Disposition"));
    assert_null(out_header(f, "Accept-Ranges"));
    assert_string_equal(out_header(f, "Content-Type"), "application/json");
    assert_int_equal(strtol(out_header(f, "Content-Length"), NULL, 10), strlen(out_body(f)));
    root = error_body(f, &code, &message);
    assert_string_equal(code, "not_found");
    assert_string_equal(message, "no media \"x\\y\"\n7");   /* escaped, and back */
    json_object_put(root);

    /* Explicit status and code. */
    mr_buf_reset(&f->sink.buf);
    mr_resp_init(&f->r, &f->arena, &f->out, false);
    assert_int_equal(mr_resp_error_status(&f->r, 410, "gone", "the upstream said 410"), MR_OK);
    assert_int_equal(strncmp(output(f), "Status: 410 Gone\r\n", 18), 0);
    root = error_body(f, &code, &message);
    assert_string_equal(code, "gone");
    assert_string_equal(message, "the upstream said 410");
    json_object_put(root);
}

/* "Try again later" answers say when: the handler's Retry-After, else the
 * default; other errors carry none, and drop one set for a success. */
static void test_error_retry_after(void **state)
{
    struct fx *f = *state;

    assert_int_equal(mr_resp_error(&f->r, MR_EOVERLOADED, NULL), MR_OK);
    assert_string_equal(out_header(f, "Retry-After"), "5");

    mr_buf_reset(&f->sink.buf);
    mr_resp_init(&f->r, &f->arena, &f->out, false);
    assert_int_equal(mr_resp_header(&f->r, "Retry-After", "42"), MR_OK);
    assert_int_equal(mr_resp_error(&f->r, MR_ELIMIT, "slow down"), MR_OK);
    assert_int_equal(strncmp(output(f), "Status: 429 Too Many Requests\r\n", 31), 0);
    assert_string_equal(out_header(f, "Retry-After"), "42");

    mr_buf_reset(&f->sink.buf);
    mr_resp_init(&f->r, &f->arena, &f->out, false);
    assert_int_equal(mr_resp_error(&f->r, MR_EUNAVAILABLE, NULL), MR_OK);
    assert_null(out_header(f, "Retry-After"));

    mr_buf_reset(&f->sink.buf);
    mr_resp_init(&f->r, &f->arena, &f->out, false);
    assert_int_equal(mr_resp_header(&f->r, "Retry-After", "42"), MR_OK);
    assert_int_equal(mr_resp_error(&f->r, MR_ENOTFOUND, NULL), MR_OK);
    assert_null(out_header(f, "Retry-After"));
}

/* Once the body started, an error cannot be said any more. */
static void test_error_after_body(void **state)
{
    struct fx *f = *state;
    size_t len;

    assert_int_equal(mr_resp_write(&f->r, "partial", 7), MR_OK);
    len = f->sink.buf.len;
    assert_int_equal(mr_resp_error(&f->r, MR_EUPSTREAM, "broke"), MR_EINTERNAL);
    assert_int_equal(mr_resp_error_status(&f->r, 502, "x", "y"), MR_EINTERNAL);
    assert_int_equal(f->sink.buf.len, len);
    assert_null(strstr(output(f), "broke"));

    /* Also after headers only. */
    mr_buf_reset(&f->sink.buf);
    mr_resp_init(&f->r, &f->arena, &f->out, false);
    assert_int_equal(mr_resp_send_headers(&f->r), MR_OK);
    assert_int_equal(mr_resp_error(&f->r, MR_EINVAL, NULL), MR_EINTERNAL);
}

/* ---- a client that goes away --------------------------------------------------- */

static void test_failing_write(void **state)
{
    static const int fail_from[] = { 1, 2, 3, 4 };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(fail_from) / sizeof(fail_from[0]); i++) {
        int writes;

        mr_buf_reset(&f->sink.buf);
        f->sink.writes = 0;
        f->sink.flushes = 0;
        f->sink.fail_from = fail_from[i];
        mr_resp_init(&f->r, &f->arena, &f->out, false);
        assert_int_equal(mr_resp_header(&f->r, "X-A", "1"), MR_OK);
        /* status line, X-A, blank line, body: the failure is somewhere. */
        assert_int_equal(mr_resp_write(&f->r, "body", 4), MR_ECLIENT);
        assert_true(f->r.failed);
        assert_int_equal(f->r.bytes_out, 0);
        writes = f->sink.writes;
        assert_int_equal(writes, fail_from[i]);
        /* Nothing more is attempted. */
        assert_int_equal(mr_resp_write(&f->r, "more", 4), MR_ECLIENT);
        assert_int_equal(mr_resp_flush(&f->r), MR_ECLIENT);
        assert_int_equal(mr_resp_finish(&f->r), MR_ECLIENT);
        assert_int_equal(f->sink.writes, writes);
        assert_int_equal(f->sink.flushes, 0);
        assert_true(mr_resp_client_gone(&f->r));
    }
    f->sink.fail_from = 0;
}

static void test_client_gone(void **state)
{
    struct fx *f = *state;
    struct mr_out out = { .write = sink_write, .flush = sink_flush, .closed = sink_closed,
                          .arg = &f->sink };

    /* Without a closed() callback: only a failed write tells. */
    assert_false(mr_resp_client_gone(&f->r));
    /* With one: a hang-up is seen without I/O. */
    mr_resp_init(&f->r, &f->arena, &out, false);
    assert_false(mr_resp_client_gone(&f->r));
    f->sink.closed = 1;
    assert_true(mr_resp_client_gone(&f->r));
    assert_true(f->r.failed);
    assert_int_equal(mr_resp_write(&f->r, "x", 1), MR_ECLIENT);
    assert_int_equal(f->sink.writes, 0);
    f->sink.closed = 0;
}

static void test_bytes_out(void **state)
{
    struct fx *f = *state;
    char chunk[1000];

    memset(chunk, 'b', sizeof(chunk));
    for (int i = 0; i < 100; i++)
        assert_int_equal(mr_resp_write(&f->r, chunk, sizeof(chunk)), MR_OK);
    assert_int_equal(f->r.bytes_out, 100000);
    assert_int_equal(strlen(out_body(f)), 100000);
}

/* ---- CORS ------------------------------------------------------------------- */

static void test_cors_star(void **state)
{
    struct fx *f = *state;
    struct mr_conf *c = conf_load("");
    struct mr_request req;
    const char *expose;

    request(f, &req, "HTTP_ORIGIN=https://player.example", NULL);
    assert_int_equal(mr_resp_cors(&f->r, c, &req), MR_OK);
    assert_int_equal(mr_resp_finish(&f->r), MR_OK);
    assert_string_equal(out_header(f, "Access-Control-Allow-Origin"), "*");
    expose = out_header(f, "Access-Control-Expose-Headers");
    assert_non_null(expose);
    assert_non_null(strstr(expose, "Content-Range"));
    assert_non_null(strstr(expose, "Content-Length"));
    assert_non_null(strstr(expose, "Accept-Ranges"));
    assert_null(out_header(f, "Vary"));
    assert_null(out_header(f, "Access-Control-Allow-Credentials"));

    /* Without an Origin: the same. */
    mr_buf_reset(&f->sink.buf);
    mr_resp_init(&f->r, &f->arena, &f->out, false);
    request(f, &req, NULL, NULL);
    assert_int_equal(mr_resp_cors(&f->r, c, &req), MR_OK);
    assert_int_equal(mr_resp_finish(&f->r), MR_OK);
    assert_string_equal(out_header(f, "Access-Control-Allow-Origin"), "*");
    mr_conf_free(c);
}

static void test_cors_list(void **state)
{
    static const struct {
        const char *origin;      /* NULL: none sent */
        bool credentials;
        const char *allow;       /* NULL: no Allow-Origin */
    } cases[] = {
        { "https://b.example", false, "https://b.example" },
        { "https://a.example", false, "https://a.example" },
        { "https://c.example", false, NULL },
        { "https://b.example.evil", false, NULL },
        { "https://B.example", false, NULL },
        { "http://b.example", false, NULL },
        { "null", false, NULL },
        { NULL, false, NULL },
        { "https://b.example", true, "https://b.example" },
        { "https://c.example", true, NULL },
    };
    struct fx *f = *state;
    struct mr_conf *plain = conf_load(
        "\"cors\": {\"allow_origin\": [\"https://a.example\", \"https://b.example\"]}");
    struct mr_conf *cred = conf_load(
        "\"cors\": {\"allow_origin\": [\"https://a.example\", \"https://b.example\"],"
        " \"allow_credentials\": true}");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_request req;
        char origin[128];
        const char *acao;

        mr_buf_reset(&f->sink.buf);
        mr_resp_init(&f->r, &f->arena, &f->out, false);
        if (cases[i].origin)
            snprintf(origin, sizeof(origin), "HTTP_ORIGIN=%s", cases[i].origin);
        request(f, &req, cases[i].origin ? origin : NULL, NULL);
        assert_int_equal(mr_resp_cors(&f->r, cases[i].credentials ? cred : plain, &req), MR_OK);
        assert_int_equal(mr_resp_finish(&f->r), MR_OK);
        acao = out_header(f, "Access-Control-Allow-Origin");
        if (cases[i].allow) {
            if (!acao || strcmp(acao, cases[i].allow))
                print_message("case %zu: %s\n", i, output(f));
            assert_non_null(acao);
            assert_string_equal(acao, cases[i].allow);
            assert_non_null(out_header(f, "Access-Control-Expose-Headers"));
        } else {
            assert_null(acao);
            assert_null(out_header(f, "Access-Control-Expose-Headers"));
        }
        /* The answer depends on Origin: caches must know, always. */
        assert_string_equal(out_header(f, "Vary"), "Origin");
        if (cases[i].credentials && cases[i].allow)
            assert_string_equal(out_header(f, "Access-Control-Allow-Credentials"), "true");
        else
            assert_null(out_header(f, "Access-Control-Allow-Credentials"));
    }
    mr_conf_free(plain);
    mr_conf_free(cred);
}

/* CORS headers survive an error answer. */
static void test_cors_on_error(void **state)
{
    struct fx *f = *state;
    struct mr_conf *c = conf_load("\"cors\": {\"allow_origin\": \"https://a.example\"}");
    struct mr_request req;

    request(f, &req, "HTTP_ORIGIN=https://a.example", NULL);
    assert_int_equal(mr_resp_cors(&f->r, c, &req), MR_OK);
    assert_int_equal(mr_resp_error(&f->r, MR_EFORBIDDEN, NULL), MR_OK);
    assert_string_equal(out_header(f, "Access-Control-Allow-Origin"), "https://a.example");
    assert_string_equal(out_header(f, "Vary"), "Origin");
    assert_non_null(out_header(f, "Access-Control-Expose-Headers"));
    mr_conf_free(c);
}

static void test_preflight(void **state)
{
    static const struct {
        const char *want;        /* Access-Control-Request-Headers, NULL: none */
        bool echoed;
    } cases[] = {
        { NULL, false },
        { "X-Custom", true },
        { "x-custom, x-other", true },
        { "range,if-range", true },
        { "X-Custom\r\nSet-Cookie: a=b", false },
        { "a;b", false },
        { "x:y", false },
        { "<script>", false },
        { "", false },
    };
    struct fx *f = *state;
    struct mr_conf *c = conf_load("\"cors\": {\"max_age_s\": 600}");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_request req;
        char want[128];
        const char *allow;

        mr_buf_reset(&f->sink.buf);
        f->sink.flushes = 0;
        mr_resp_init(&f->r, &f->arena, &f->out, false);
        if (cases[i].want)
            snprintf(want, sizeof(want), "HTTP_ACCESS_CONTROL_REQUEST_HEADERS=%s", cases[i].want);
        request(f, &req, "HTTP_ACCESS_CONTROL_REQUEST_METHOD=GET", cases[i].want ? want : NULL);
        assert_int_equal(mr_resp_preflight(&f->r, c, &req, "GET, HEAD, OPTIONS"), MR_OK);
        assert_true(f->r.headers_sent);
        assert_int_equal(f->sink.flushes, 1);
        assert_int_equal(strncmp(output(f), "Status: 204 No Content\r\n", 24), 0);
        assert_string_equal(out_header(f, "Access-Control-Allow-Methods"), "GET, HEAD, OPTIONS");
        assert_string_equal(out_header(f, "Access-Control-Max-Age"), "600");
        allow = out_header(f, "Access-Control-Allow-Headers");
        assert_non_null(allow);
        assert_non_null(strstr(allow, "Range"));
        if (cases[i].echoed)
            assert_non_null(strstr(allow, cases[i].want));
        else
            assert_true(!cases[i].want || !*cases[i].want || !strstr(allow, cases[i].want));
        assert_null(strstr(output(f), "Set-Cookie"));
        assert_null(strstr(output(f), "<script>"));
        assert_string_equal(out_body(f), "");
    }
    mr_conf_free(c);
}

/* Moving bytes from a descriptor: the head goes first, bytes are counted,
 * a failure marks the client gone, and no move without a body or a mover. */
static void test_move(void **state)
{
    struct fx *f = *state;
    struct mr_out plain = f->out;
    struct mr_response head_only;
    int p[2];
    size_t moved = 1;

    assert_false(mr_resp_can_move(&f->r));
    assert_int_equal(mr_resp_move(&f->r, 0, 10, &moved), MR_EINTERNAL);
    assert_int_equal(moved, 0);
    assert_false(f->r.headers_sent);

    f->out.move = sink_move;
    assert_true(mr_resp_can_move(&f->r));
    mr_resp_init(&head_only, &f->arena, &f->out, true);
    assert_false(mr_resp_can_move(&head_only));

    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "0123456789", 10), 10);
    close(p[1]);
    mr_resp_status(&f->r, 206);
    assert_int_equal(mr_resp_move(&f->r, p[0], 4, &moved), MR_OK);
    assert_int_equal(moved, 4);
    assert_int_equal(mr_resp_move(&f->r, p[0], 100, &moved), MR_OK);
    assert_int_equal(moved, 6);
    assert_int_equal(mr_resp_move(&f->r, p[0], 100, &moved), MR_OK);
    assert_int_equal(moved, 0);                 /* the end */
    assert_string_equal(output(f), "Status: 206 Partial Content\r\n\r\n0123456789");
    assert_int_equal(f->r.bytes_out, 10);
    close(p[0]);

    f->sink.fail_from = f->sink.writes + 1;
    assert_int_equal(mr_resp_move(&f->r, 0, 10, &moved), MR_ECLIENT);
    assert_true(f->r.failed);
    assert_int_equal(mr_resp_move(&f->r, 0, 10, &moved), MR_ECLIENT);
    assert_int_equal(f->r.bytes_out, 10);
    f->out = plain;
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_exact_output),
        T(test_status_lines),
        T(test_head_drops_body),
        T(test_header_checks),
        T(test_set_and_get_header),
        T(test_header_limits),
        T(test_overlong_header),
        T(test_json),
        T(test_error_shape),
        T(test_error_message_and_headers),
        T(test_error_retry_after),
        T(test_error_after_body),
        T(test_failing_write),
        T(test_client_gone),
        T(test_bytes_out),
        T(test_move),
        T(test_cors_star),
        T(test_cors_list),
        T(test_cors_on_error),
        T(test_preflight),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
