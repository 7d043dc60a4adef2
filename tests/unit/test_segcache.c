/* test_segcache.c - the segment cache answering from what a real
 * redis-server holds: a follower of a fill, with the Range it asked for, and
 * with Redis changing under it (the test's client does that as the answer's
 * bytes arrive, through the output sink). */
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
#include "core/lru.h"
#include "relay/relay.h"
#include "http/request.h"
#include "http/response.h"
#include "relay/segcache.h"
#include "app/server.h"
#include "net/store.h"
#include "core/str.h"

#include "fixtures.h"

#define SEG_URL "http://origin.test/v/seg-1.ts"

struct fx {
    struct test_fx t;
    struct mr_ctx ctx;
    struct mr_out out;
    char meta[128], body[128], lock[128];
    /* What the answer received: everything written, and how much was
     * asked to be written (more than what fits is read, then refused). */
    char got[64 << 10];
    size_t len;
    unsigned long long asked;
    /* Run once, when the answer's body is exactly `when` (NULL: never):
     * commands whose one %s is the meta key, or the body key when
     * `on_body`. */
    const char *when;
    struct {
        const char *cmd;
        bool on_body;
    } then[3];
};

static int sink_write(void *arg, const void *p, size_t n)
{
    struct fx *f = arg;
    size_t room = sizeof(f->got) - 1 - f->len, take = n < room ? n : room;
    const char *b;
    char buf[128];

    /* Read what the writer hands over, as a socket write would. */
    memcpy(f->got + f->len, p, take);
    f->len += take;
    f->got[f->len] = '\0';
    f->asked += n;
    if (take < n)
        return -1;
    b = strstr(f->got, "\r\n\r\n");
    if (f->when && b && !strcmp(b + 4, f->when)) {
        f->when = NULL;
        for (size_t i = 0; i < 3 && f->then[i].cmd; i++)
            test_redis_cmd(f->t.raw, buf, sizeof(buf), f->then[i].cmd,
                           f->then[i].on_body ? f->body : f->meta);
    }
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char h[33];

    assert_non_null(f);
    *state = f;
    test_fx_init(&f->t, 64);
    if (!test_fx_redis(&f->t))
        return 0;
    test_fx_store(&f->t, "\"store\": {\"timeout_ms\": 1000, \"retry_ms\": 100}");
    mr_hash_hex(SEG_URL, h);
    snprintf(f->meta, sizeof(f->meta), "%sseg:%s", f->t.conf->key_prefix, h);
    snprintf(f->body, sizeof(f->body), "%sseg:%s:b", f->t.conf->key_prefix, h);
    snprintf(f->lock, sizeof(f->lock), "%slock:seg:%s", f->t.conf->key_prefix, h);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    test_fx_free(&f->t);
    free(f);
    return 0;
}

/* A fill in progress that has not said how long the object is: its head,
 * `body` so far, and a live lock (someone else's). */
static void running_fill(struct fx *f, const char *body)
{
    char buf[128];

    test_redis_cmd(f->t.raw, buf, sizeof(buf), "DEL %s %s %s", f->meta, f->body, f->lock);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "HSET %s st fill ct video/mp2t", f->meta);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SET %s %s", f->body, body);
    test_redis_cmd(f->t.raw, buf, sizeof(buf), "SET %s other-filler PX 60000", f->lock);
}

/* When the answer's body is `body`, the fill is done: `cmd` on the meta. */
static void done_at(struct fx *f, const char *body, const char *cmd)
{
    memset(f->then, 0, sizeof(f->then));
    f->when = body;
    f->then[0].cmd = cmd;
}

/* GET of the segment (with a Range header when `range`) through
 * mr_segcache_serve; the answer in f->got. */
static int serve(struct fx *f, const char *range)
{
    char **params = mr_arena_calloc(&f->t.arena, 4, sizeof(char *));
    struct mr_relay r;

    assert_non_null(params);
    params[0] = mr_arena_strdup(&f->t.arena, "REQUEST_METHOD=GET");
    params[1] = mr_arena_strdup(&f->t.arena, "REQUEST_URI=/api/seg/x.ts");
    if (range)
        params[2] = mr_arena_printf(&f->t.arena, "HTTP_RANGE=%s", range);
    memset(&f->ctx, 0, sizeof(f->ctx));
    f->ctx.conf = f->t.conf;
    f->ctx.arena = &f->t.arena;
    f->ctx.store = f->t.store;
    assert_int_equal(mr_request_parse(&f->ctx.req, &f->t.arena, params), MR_OK);
    f->out = (struct mr_out){ .write = sink_write, .arg = f };
    mr_resp_init(&f->ctx.resp, &f->t.arena, &f->out, false);
    f->len = 0;
    f->asked = 0;
    f->got[0] = '\0';
    memset(&r, 0, sizeof(r));
    r.url = SEG_URL;
    return mr_segcache_serve(&f->ctx, &r, SEG_URL);
}

static const char *answer_body(const struct fx *f)
{
    const char *b = strstr(f->got, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* Regression (signed overflow, a wrong answer): a range that ends at the
 * largest number, on an object of unknown length.  Its end plus one was
 * the end of what is sent, and its length end - start + 1: both past
 * LLONG_MAX.  The whole object is the answer, as for "bytes=0-" then;
 * ranges that end below the largest number are served as they were. */
static void test_range_end_max(void **state)
{
    static const char *const huge[] = {
        "bytes=0-9223372036854775807",
        "bytes=0-99999999999999999999",           /* strtoll saturates */
        "bytes=9223372036854775807-9223372036854775807",
    };
    struct fx *f = *state;

    if (!test_redis_installed())
        skip();
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        running_fill(f, "hello");
        done_at(f, "hello", "HSET %s st done len 5");
        assert_int_equal(serve(f, huge[i]), MR_OK);
        if (strncmp(f->got, "Status: 200", 11))
            fail_msg("%s: %s", huge[i], f->got);
        assert_null(strstr(f->got, "Content-Length"));
        assert_string_equal(answer_body(f), "hello");
        assert_false(f->ctx.resp.abort);
        mr_arena_reset(&f->t.arena);
    }
    /* A range that ends below the largest number is that range, as
     * before (the last one reaches past the object: it breaks off). */
    running_fill(f, "hello");
    f->when = NULL;
    assert_int_equal(serve(f, "bytes=1-3"), MR_OK);
    assert_true(!strncmp(f->got, "Status: 206", 11));
    assert_non_null(strstr(f->got, "Content-Length: 3\r\n"));
    assert_non_null(strstr(f->got, "Content-Range: bytes 1-3/*\r\n"));
    assert_string_equal(answer_body(f), "ell");
    assert_false(f->ctx.resp.abort);
    mr_arena_reset(&f->t.arena);
    running_fill(f, "hello");
    done_at(f, "hello", "HSET %s st done len 5");
    assert_int_equal(serve(f, "bytes=0-9223372036854775806"), MR_OK);
    assert_true(!strncmp(f->got, "Status: 206", 11));
    assert_non_null(strstr(f->got, "Content-Length: 9223372036854775807\r\n"));
    assert_string_equal(answer_body(f), "hello");
    mr_arena_reset(&f->t.arena);
}

/* Regression (a heap over-read sent to the client): a follower of a fill
 * of unknown length has sent 10 bytes; the fill it then finds done says 4,
 * and the body holds more (another fill's, or the keys replaced between
 * the follower's reads).  The 4 - 10 bytes left were a size_t near
 * SIZE_MAX, written from a reply of 10 bytes.  The answer now breaks off:
 * what was sent is not that object. */
static void test_done_shorter_than_sent(void **state)
{
    struct fx *f = *state;

    if (!test_redis_installed())
        skip();
    running_fill(f, "0123456789");
    done_at(f, "0123456789", "HSET %s st done len 4");
    f->then[1].cmd = "APPEND %s abcdefghij";
    f->then[1].on_body = true;
    assert_int_equal(serve(f, NULL), MR_OK);
    assert_true(!strncmp(f->got, "Status: 200", 11));
    assert_string_equal(answer_body(f), "0123456789");
    assert_true(f->asked == f->len);
    assert_true(f->ctx.resp.abort);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_end_max),
        cmocka_unit_test(test_done_shorter_than_sent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
