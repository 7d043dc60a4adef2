/* test_segcache.c - the segment cache answering from what a real
 * redis-server holds: a follower of a fill, with the Range it asked for, and
 * with Redis changing under it (the test's client does that as the answer's
 * bytes arrive, through the output sink); and fills from an in-test origin
 * (origin_helper.h): a fill and its hits, followers of a fill in progress, a
 * filler that died, an upstream that broke off. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/lru.h"
#include "relay/relay.h"
#include "http/request.h"
#include "http/response.h"
#include "relay/segcache.h"
#include "app/server.h"
#include "net/store.h"
#include "net/upstream.h"
#include "core/str.h"

#include "origin_helper.h"
#include "redis_helper.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define SEG_URL "http://origin.test/v/seg-1.ts"

struct fx {
    struct test_redis redis;
    struct test_origin origin;
    struct mr_conf *conf;
    struct mr_lru *lru;
    struct mr_store *store;
    struct mr_arena arena;
    struct mr_ctx ctx;
    struct mr_out out;
    redisContext *raw;              /* the test's own connection */
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
            test_redis_cmd(f->raw, buf, sizeof(buf), f->then[i].cmd,
                           f->then[i].on_body ? f->body : f->meta);
    }
    return 0;
}

/* --- the origin --------------------------------------------------------- */

/* The object every origin path serves: more than a fill pushes at once
 * and than a follower reads at once.  PART is what comes before the
 * origin's gate (or before it breaks off). */
#define OBJ_LEN (600 * 1000)
#define PART (100 * 1000)
#define DEADLINE_MS 10000
static char object[OBJ_LEN];

/* /full/..: the object.  /gated/..: PART, the gate, the rest.
 * /trunc/..: PART of the OBJ_LEN it announced, then the connection closes;
 * /gated-trunc/..: that after the gate. */
static void origin(struct test_origin *o, int fd, const char *method, const char *path,
                   const char *body)
{
    bool gated = !strncmp(path, "/gated", 6), trunc = strstr(path, "trunc") != NULL;
    char head[256];

    (void)method;
    (void)body;
    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n"
             "Content-Length: %d\r\nETag: \"e1\"\r\nConnection: close\r\n\r\n", OBJ_LEN);
    if (test_origin_send_str(fd, head) || test_origin_send(fd, object, PART))
        return;
    if (gated)
        test_origin_gate(o);
    if (!trunc)
        test_origin_send(fd, object + PART, OBJ_LEN - PART);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char json[768], h[33];
    struct mr_buf err;

    assert_non_null(f);
    *state = f;
    for (size_t i = 0; i < OBJ_LEN; i++)
        object[i] = (char)('a' + (i * 7 + i / 26) % 26);
    if (!test_redis_installed())
        return 0;
    assert_int_equal(test_redis_start(&f->redis), 0);
    assert_int_equal(test_origin_start(&f->origin, origin, f), 0);
    snprintf(json, sizeof(json), "{\"secret\": \"%s\", \"redis\": \"unix:%s\", "
             "\"store\": {\"timeout_ms\": 2000, \"retry_ms\": 100}, "
             "\"upstream\": {\"allow_private_networks\": true}}", SECRET, f->redis.sock);
    mr_buf_init(&err, 4096);
    if (mr_conf_load_string("t", json, strlen(json), &f->conf, &err))
        print_message("%s", err.p);
    mr_buf_free(&err);
    assert_non_null(f->conf);
    f->lru = mr_lru_new(64, 1 << 20);
    f->store = mr_store_new(f->conf, f->lru);
    f->raw = test_redis_connect(&f->redis);
    assert_non_null(f->lru);
    assert_non_null(f->store);
    assert_non_null(f->raw);
    mr_arena_init(&f->arena, 0);
    mr_hash_hex(SEG_URL, h);
    snprintf(f->meta, sizeof(f->meta), "%sseg:%s", f->conf->key_prefix, h);
    snprintf(f->body, sizeof(f->body), "%sseg:%s:b", f->conf->key_prefix, h);
    snprintf(f->lock, sizeof(f->lock), "%slock:seg:%s", f->conf->key_prefix, h);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    mr_clock_set_offset(0);
    if (f->conf) {
        test_origin_release(&f->origin);
        test_origin_stop(&f->origin);
    }
    if (f->raw)
        redisFree(f->raw);
    mr_store_free(f->store);
    mr_conf_free(f->conf);
    mr_lru_free(f->lru);
    mr_arena_free(&f->arena);
    test_redis_cleanup(&f->redis);
    free(f);
    return 0;
}

/* A fill in progress that has not said how long the object is: its head,
 * `body` so far, and a live lock (someone else's). */
static void running_fill(struct fx *f, const char *body)
{
    char buf[128];

    test_redis_cmd(f->raw, buf, sizeof(buf), "DEL %s %s %s", f->meta, f->body, f->lock);
    test_redis_cmd(f->raw, buf, sizeof(buf), "HSET %s st fill ct video/mp2t", f->meta);
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %s %s", f->body, body);
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %s other-filler PX 60000", f->lock);
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
static int serve_o(struct fx *f, const char *range, enum mr_outcome *o)
{
    char **params = mr_arena_calloc(&f->arena, 4, sizeof(char *));
    struct mr_relay r;

    assert_non_null(params);
    params[0] = mr_arena_strdup(&f->arena, "REQUEST_METHOD=GET");
    params[1] = mr_arena_strdup(&f->arena, "REQUEST_URI=/api/seg/x.ts");
    if (range)
        params[2] = mr_arena_printf(&f->arena, "HTTP_RANGE=%s", range);
    memset(&f->ctx, 0, sizeof(f->ctx));
    f->ctx.conf = f->conf;
    f->ctx.arena = &f->arena;
    f->ctx.store = f->store;
    assert_int_equal(mr_request_parse(&f->ctx.req, &f->arena, params), MR_OK);
    f->out = (struct mr_out){ .write = sink_write, .arg = f };
    mr_resp_init(&f->ctx.resp, &f->arena, &f->out, false);
    f->len = 0;
    f->asked = 0;
    f->got[0] = '\0';
    memset(&r, 0, sizeof(r));
    r.url = SEG_URL;
    return mr_segcache_serve(&f->ctx, &r, SEG_URL, o);
}

/* Answered from the cache: MR_OK and MR_ANSWERED, or the error. */
static int serve(struct fx *f, const char *range)
{
    enum mr_outcome o;
    int rc = serve_o(f, range, &o);

    if (!rc)
        assert_int_equal(o, MR_ANSWERED);
    return rc;
}

/* With the cache off, the request is declined untouched: the caller
 * relays it. */
static void test_declined(void **state)
{
    struct fx *f = *state;
    long max = f->conf->hls.segment_cache_max_bytes;
    enum mr_outcome o = MR_ANSWERED;

    f->conf->hls.segment_cache_max_bytes = 0;
    assert_int_equal(serve_o(f, NULL, &o), MR_OK);
    f->conf->hls.segment_cache_max_bytes = max;
    assert_int_equal(o, MR_DECLINED);
    assert_int_equal(f->len, 0);
    assert_false(f->ctx.resp.headers_sent);
    mr_arena_reset(&f->arena);
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
        mr_arena_reset(&f->arena);
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
    mr_arena_reset(&f->arena);
    running_fill(f, "hello");
    done_at(f, "hello", "HSET %s st done len 5");
    assert_int_equal(serve(f, "bytes=0-9223372036854775806"), MR_OK);
    assert_true(!strncmp(f->got, "Status: 206", 11));
    assert_non_null(strstr(f->got, "Content-Length: 9223372036854775807\r\n"));
    assert_string_equal(answer_body(f), "hello");
    mr_arena_reset(&f->arena);
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

/* --- fills from the origin ---------------------------------------------- */

/* One request through mr_segcache_serve, as a worker thread has it. */
struct req {
    struct fx *f;
    struct mr_arena arena;
    struct mr_store *store;
    struct mr_upstream *up;
    struct mr_ctx ctx;
    struct mr_out out;
    struct mr_relay r;
    char url[128];
    char *got;                      /* the answer: head and body */
    _Atomic size_t len;
    int rc;
    enum mr_outcome outcome;        /* MR_ANSWERED, unless the cache declined */
    _Atomic bool done;
    pthread_t th;
};

#define GOT_MAX (OBJ_LEN + 4096)

static int req_write(void *arg, const void *p, size_t n)
{
    struct req *q = arg;
    size_t len = atomic_load(&q->len);

    if (n > GOT_MAX - len)
        return -1;
    memcpy(q->got + len, p, n);
    atomic_store(&q->len, len + n);
    return 0;
}

static void req_init(struct req *q, struct fx *f, const char *path)
{
    char **params;

    memset(q, 0, sizeof(*q));
    q->f = f;
    mr_arena_init(&q->arena, 0);
    assert_non_null(q->store = mr_store_new(f->conf, f->lru));
    assert_non_null(q->up = mr_upstream_new(f->conf));
    assert_non_null(q->got = malloc(GOT_MAX));
    snprintf(q->url, sizeof(q->url), "http://127.0.0.1:%d%s", f->origin.port, path);
    assert_non_null(params = mr_arena_calloc(&q->arena, 3, sizeof(char *)));
    params[0] = mr_arena_strdup(&q->arena, "REQUEST_METHOD=GET");
    params[1] = mr_arena_strdup(&q->arena, "REQUEST_URI=/api/seg/x.ts");
    q->ctx.conf = f->conf;
    q->ctx.arena = &q->arena;
    q->ctx.store = q->store;
    q->ctx.up = q->up;
    assert_int_equal(mr_request_parse(&q->ctx.req, &q->arena, params), MR_OK);
    q->out = (struct mr_out){ .write = req_write, .arg = q };
    mr_resp_init(&q->ctx.resp, &q->arena, &q->out, false);
    q->r.url = q->url;
}

static void req_free(struct req *q)
{
    mr_store_free(q->store);
    mr_upstream_free(q->up);
    mr_arena_free(&q->arena);
    free(q->got);
}

static void *req_main(void *arg)
{
    struct req *q = arg;

    q->rc = mr_segcache_serve(&q->ctx, &q->r, q->url, &q->outcome);
    if (!q->rc && q->outcome == MR_ANSWERED && !q->ctx.resp.failed)
        mr_resp_finish(&q->ctx.resp);
    atomic_store(&q->done, true);
    return NULL;
}

static void req_start(struct req *q)
{
    assert_int_equal(pthread_create(&q->th, NULL, req_main, q), 0);
}

static bool req_is_done(void *arg)
{
    return atomic_load(&((struct req *)arg)->done);
}

static void req_join(struct req *q)
{
    if (!test_wait_for(req_is_done, q, DEADLINE_MS))
        fail_msg("%s: no answer within %d ms", q->url, DEADLINE_MS);
    pthread_join(q->th, NULL);
}

/* The answer's body so far (NULL before the head is complete). */
static const char *req_body(struct req *q, size_t *n)
{
    size_t len = atomic_load(&q->len);
    const char *b = memmem(q->got, len, "\r\n\r\n", 4);

    if (!b)
        return NULL;
    *n = len - (size_t)(b + 4 - q->got);
    return b + 4;
}

static size_t req_body_len(struct req *q)
{
    size_t n = 0;
    return req_body(q, &n) ? n : 0;
}

static bool req_has_header(struct req *q, const char *line)
{
    size_t len = atomic_load(&q->len);
    const char *b = memmem(q->got, len, "\r\n\r\n", 4);

    return b && memmem(q->got, (size_t)(b + 2 - q->got), line, strlen(line));
}

/* The whole object, with the cache status `how`, ended cleanly. */
static void assert_whole(struct req *q, const char *how)
{
    char line[64];
    const char *b;
    size_t n = 0;

    assert_int_equal(q->rc, MR_OK);
    assert_false(q->ctx.resp.abort);
    assert_true(!strncmp(q->got, "Status: 200", 11));
    snprintf(line, sizeof(line), "X-Cache: %s\r\n", how);
    if (!req_has_header(q, line))
        fail_msg("%s: no %s", q->url, line);
    assert_non_null(b = req_body(q, &n));
    assert_int_equal(n, OBJ_LEN);
    assert_memory_equal(b, object, OBJ_LEN);
}

/* The answer broke off: less than the object, and not ended cleanly. */
static void assert_broken(struct req *q)
{
    assert_int_equal(q->rc, MR_OK);
    assert_true(q->ctx.resp.abort);
    assert_true(req_body_len(q) < OBJ_LEN);
}

struct keys {
    char meta[128], body[128], lock[128];
};

static void keys_of(struct fx *f, const struct req *q, struct keys *k)
{
    char h[33];

    mr_hash_hex(q->url, h);
    snprintf(k->meta, sizeof(k->meta), "%sseg:%s", f->conf->key_prefix, h);
    snprintf(k->body, sizeof(k->body), "%sseg:%s:b", f->conf->key_prefix, h);
    snprintf(k->lock, sizeof(k->lock), "%slock:seg:%s", f->conf->key_prefix, h);
}

/* A Redis reply that must be a number (the test fails on anything else). */
static long reply_long(const char *reply)
{
    long v = 0;

    if (!mr_str_to_long(mr_str_c(reply), 0, LONG_MAX, &v))
        fail_msg("not a number: \"%s\"", reply);
    return v;
}

/* The cache holds the whole object, done, and no fill runs. */
static void assert_cached(struct fx *f, const struct keys *k)
{
    char buf[64];

    assert_string_equal(test_redis_cmd(f->raw, buf, sizeof(buf), "HGET %s st", k->meta), "done");
    assert_int_equal(reply_long(test_redis_cmd(f->raw, buf, sizeof(buf), "HGET %s len",
                                               k->meta)), OBJ_LEN);
    assert_int_equal(reply_long(test_redis_cmd(f->raw, buf, sizeof(buf), "STRLEN %s", k->body)),
                     OBJ_LEN);
    assert_string_equal(test_redis_cmd(f->raw, buf, sizeof(buf), "EXISTS %s", k->lock), "0");
}

/* Nothing of the object is left in the cache. */
static void assert_not_cached(struct fx *f, const struct keys *k)
{
    char buf[64];

    assert_string_equal(test_redis_cmd(f->raw, buf, sizeof(buf), "EXISTS %s %s %s", k->meta,
                                       k->body, k->lock), "0");
}

struct body_at_least {
    struct fx *f;
    const char *key;
    long n;
};

static bool cache_body_at_least(void *arg)
{
    struct body_at_least *w = arg;
    char buf[32];
    return reply_long(test_redis_cmd(w->f->raw, buf, sizeof(buf), "STRLEN %s", w->key)) >= w->n;
}

struct got_at_least {
    struct req *q;
    size_t n;
};

static bool got_at_least(void *arg)
{
    struct got_at_least *w = arg;
    return req_body_len(w->q) >= w->n;
}

static void wait_got(struct req *q, size_t n)
{
    struct got_at_least w = { q, n };
    if (!test_wait_for(got_at_least, &w, DEADLINE_MS))
        fail_msg("%s: %zu bytes of the body, not %zu", q->url, req_body_len(q), n);
}

/* How many times the redis-server ran a command ("hgetall"). */
static long redis_calls(redisContext *raw, const char *cmd)
{
    redisReply *r = redisCommand(raw, "INFO commandstats");
    char pat[64];
    const char *p;
    long n = 0;

    snprintf(pat, sizeof(pat), "cmdstat_%s:calls=", cmd);
    if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, pat)))
        n = strtol(p + strlen(pat), NULL, 10);
    if (r)
        freeReplyObject(r);
    return n;
}

struct polling {
    redisContext *raw;
    long from;
};

/* A request waiting for a fill's head reads the meta again and again. */
static bool polls_meta(void *arg)
{
    struct polling *w = arg;
    return redis_calls(w->raw, "hgetall") - w->from >= 3;
}

/* A miss fills the cache as it answers; the next request is a hit, and
 * the origin was asked once. */
static void test_fill_then_hit(void **state)
{
    struct fx *f = *state;
    struct req q;
    struct keys k;
    int before;

    if (!test_redis_installed())
        skip();
    before = test_origin_requests(&f->origin);
    req_init(&q, f, "/full/a");
    keys_of(f, &q, &k);
    req_main(&q);
    assert_whole(&q, "MISS");
    assert_cached(f, &k);
    req_free(&q);
    req_init(&q, f, "/full/a");
    req_main(&q);
    assert_whole(&q, "HIT");
    req_free(&q);
    assert_int_equal(test_origin_requests(&f->origin) - before, 1);
}

/* Requests that come while a fill runs follow it: they get what is there
 * at once and the rest as it arrives, from the one upstream fetch. */
static void test_followers_of_a_fill(void **state)
{
    struct fx *f = *state;
    struct req filler, a, b;
    struct keys k;
    struct body_at_least w;
    int before;

    if (!test_redis_installed())
        skip();
    before = test_origin_requests(&f->origin);
    test_origin_hold(&f->origin);
    req_init(&filler, f, "/gated/b");
    req_init(&a, f, "/gated/b");
    req_init(&b, f, "/gated/b");
    keys_of(f, &filler, &k);
    req_start(&filler);
    w = (struct body_at_least){ f, k.body, PART };
    assert_true(test_wait_for(cache_body_at_least, &w, DEADLINE_MS));
    req_start(&a);
    req_start(&b);
    wait_got(&a, PART);
    wait_got(&b, PART);
    wait_got(&filler, PART);
    assert_false(atomic_load(&filler.done));
    assert_false(atomic_load(&a.done));
    test_origin_release(&f->origin);
    req_join(&filler);
    req_join(&a);
    req_join(&b);
    assert_whole(&filler, "MISS");
    assert_whole(&a, "WAIT");
    assert_whole(&b, "WAIT");
    assert_cached(f, &k);
    assert_int_equal(test_origin_requests(&f->origin) - before, 1);
    req_free(&filler);
    req_free(&a);
    req_free(&b);
}

/* A filler that died before its head: the request waiting for that head
 * takes the fill over when the dead one's lock runs out. */
static void test_dead_writer_before_head(void **state)
{
    struct fx *f = *state;
    struct req q;
    struct keys k;
    struct polling w;
    char buf[64];
    int before;

    if (!test_redis_installed())
        skip();
    before = test_origin_requests(&f->origin);
    req_init(&q, f, "/full/c");
    keys_of(f, &q, &k);
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %s dead-filler PX 60000", k.lock);
    w = (struct polling){ f->raw, redis_calls(f->raw, "hgetall") };
    req_start(&q);
    assert_true(test_wait_for(polls_meta, &w, DEADLINE_MS));
    assert_false(atomic_load(&q.done));
    assert_int_equal(test_origin_requests(&f->origin), before);
    /* Its lease runs out (as after LOCK_MS without a renewal). */
    test_redis_cmd(f->raw, buf, sizeof(buf), "PEXPIRE %s 1", k.lock);
    req_join(&q);
    assert_whole(&q, "MISS");
    assert_cached(f, &k);
    assert_int_equal(test_origin_requests(&f->origin) - before, 1);
    req_free(&q);
}

/* A request waits for a fill's head at most WAIT_HEAD_MS (on the
 * monotonic clock), then is relayed without the cache (MR_DECLINED). */
static void test_wait_for_head_gives_up(void **state)
{
    struct fx *f = *state;
    struct req q;
    struct keys k;
    struct polling w;
    char buf[64];

    if (!test_redis_installed())
        skip();
    req_init(&q, f, "/full/g");
    keys_of(f, &q, &k);
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %s stuck-filler PX 60000", k.lock);
    w = (struct polling){ f->raw, redis_calls(f->raw, "hgetall") };
    req_start(&q);
    assert_true(test_wait_for(polls_meta, &w, DEADLINE_MS));
    assert_false(atomic_load(&q.done));
    mr_clock_set_offset(16 * 1000);
    req_join(&q);
    mr_clock_set_offset(0);
    assert_int_equal(q.rc, MR_OK);
    assert_int_equal(q.outcome, MR_DECLINED);
    assert_int_equal(atomic_load(&q.len), 0);
    test_redis_cmd(f->raw, buf, sizeof(buf), "DEL %s", k.lock);
    req_free(&q);
}

/* A filler that died in the middle: its follower's answer breaks off (it
 * must not end as if whole) when the lock runs out, and the next request
 * fills the object anew. */
static void test_dead_writer_mid_fill(void **state)
{
    struct fx *f = *state;
    struct req q;
    struct keys k;
    char buf[64];

    if (!test_redis_installed())
        skip();
    req_init(&q, f, "/full/d");
    keys_of(f, &q, &k);
    test_redis_cmd(f->raw, buf, sizeof(buf), "HSET %s st fill ct video/mp2t len %d", k.meta,
                   OBJ_LEN);
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %s %b", k.body, object, (size_t)PART);
    test_redis_cmd(f->raw, buf, sizeof(buf), "SET %s dead-filler PX 60000", k.lock);
    req_start(&q);
    wait_got(&q, PART);
    assert_false(atomic_load(&q.done));
    test_redis_cmd(f->raw, buf, sizeof(buf), "PEXPIRE %s 1", k.lock);
    req_join(&q);
    assert_true(req_has_header(&q, "X-Cache: WAIT\r\n"));
    assert_broken(&q);
    assert_int_equal(req_body_len(&q), PART);
    req_free(&q);

    req_init(&q, f, "/full/d");
    req_main(&q);
    assert_whole(&q, "MISS");
    assert_cached(f, &k);
    req_free(&q);
}

/* An upstream that closes before the length it announced: the answer
 * breaks off, for the filler's client and its followers, and nothing of
 * it stays in the cache -- the next request is a miss again. */
static void test_truncated_fill_not_cached(void **state)
{
    struct fx *f = *state;
    struct req filler, a, q;
    struct keys k;
    struct body_at_least w;
    int before;

    if (!test_redis_installed())
        skip();
    req_init(&q, f, "/trunc/e");
    keys_of(f, &q, &k);
    req_main(&q);
    assert_true(req_has_header(&q, "X-Cache: MISS\r\n"));
    assert_broken(&q);
    assert_not_cached(f, &k);
    req_free(&q);
    before = test_origin_requests(&f->origin);
    req_init(&q, f, "/trunc/e");
    req_main(&q);
    assert_true(req_has_header(&q, "X-Cache: MISS\r\n"));
    assert_broken(&q);
    assert_int_equal(test_origin_requests(&f->origin) - before, 1);
    req_free(&q);

    /* With a follower. */
    test_origin_hold(&f->origin);
    req_init(&filler, f, "/gated-trunc/f");
    req_init(&a, f, "/gated-trunc/f");
    keys_of(f, &filler, &k);
    req_start(&filler);
    w = (struct body_at_least){ f, k.body, PART };
    assert_true(test_wait_for(cache_body_at_least, &w, DEADLINE_MS));
    req_start(&a);
    wait_got(&a, PART);
    test_origin_release(&f->origin);
    req_join(&filler);
    req_join(&a);
    assert_broken(&filler);
    assert_true(req_has_header(&a, "X-Cache: WAIT\r\n"));
    assert_broken(&a);
    assert_not_cached(f, &k);
    req_free(&filler);
    req_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declined),
        cmocka_unit_test(test_range_end_max),
        cmocka_unit_test(test_done_shorter_than_sent),
        cmocka_unit_test(test_fill_then_hit),
        cmocka_unit_test(test_followers_of_a_fill),
        cmocka_unit_test(test_dead_writer_before_head),
        cmocka_unit_test(test_wait_for_head_gives_up),
        cmocka_unit_test(test_dead_writer_mid_fill),
        cmocka_unit_test(test_truncated_fill_not_cached),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
