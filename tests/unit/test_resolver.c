/* test_resolver.c - the URL cache in front of the providers, with the
 * real alist provider asking an in-test Alist (origin_helper.h) and a real
 * redis-server holding the cache: one provider call however many resolve
 * at once, the early refresh that keeps the others on the old link, and a
 * failure remembered for its TTL.  Time moves with the clock's offset;
 * nothing sleeps for a fixed time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/lru.h"
#include "http/request.h"
#include "http/response.h"
#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "net/store.h"
#include "net/upstream.h"
#include "relay/resolver.h"

#include "origin_helper.h"
#include "redis_helper.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define ERROR_TTL_S 30
#define DEADLINE_MS 10000

struct fx {
    struct test_redis redis;
    struct test_origin origin;
    struct mr_conf *conf;
    struct mr_lru *lru;
    redisContext *raw;
    struct mr_media media;
    char fail_key[128];
    /* What the Alist answers: a failure (code 500) while `failing`; each
     * answer's raw_url names its number (v1, v2, ...). */
    _Atomic bool failing;
    _Atomic int answered;
};

/* One request's context, as a worker thread has it. */
struct client {
    struct fx *f;
    struct mr_arena arena;
    struct mr_store *store;
    struct mr_upstream *up;
    struct mr_ctx ctx;
    struct mr_out out;
    struct mr_source src;
    char url[256];                  /* src.url, copied */
    int rc;
    bool again;                     /* mr_resolve_again of `failed` */
    char failed[256];
    _Atomic bool done;
    pthread_t th;
};

static void alist(struct test_origin *o, int fd, const char *method, const char *path,
                  const char *body)
{
    struct fx *f = o->arg;
    char answer[512], head[256];
    int n;

    (void)method;
    (void)body;
    if (strcmp(path, "/api/fs/get")) {
        test_origin_send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n");
        return;
    }
    test_origin_gate(o);
    n = atomic_fetch_add(&f->answered, 1) + 1;
    if (atomic_load(&f->failing))
        snprintf(answer, sizeof(answer), "{\"code\":500,\"message\":\"storage broke\","
                 "\"data\":null}");
    else
        snprintf(answer, sizeof(answer), "{\"code\":200,\"message\":\"success\",\"data\":"
                 "{\"name\":\"a.mp4\",\"is_dir\":false,\"provider\":\"Local\","
                 "\"raw_url\":\"http://media.test/v%d.mp4\"}}", n);
    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(answer));
    test_origin_send_str(fd, head);
    test_origin_send_str(fd, answer);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char json[1024];
    struct mr_buf err;

    assert_non_null(f);
    *state = f;
    mr_clock_set_offset(0);
    if (!test_redis_installed())
        return 0;
    assert_int_equal(test_redis_start(&f->redis), 0);
    assert_int_equal(test_origin_start(&f->origin, alist, f), 0);
    snprintf(json, sizeof(json),
             "{\"secret\": \"%s\", \"redis\": \"unix:%s\", "
             "\"store\": {\"timeout_ms\": 2000, \"retry_ms\": 100}, "
             "\"upstream\": {\"allow_private_networks\": true}, "
             "\"resolve\": {\"default_ttl_s\": 600, \"refresh_margin_s\": 300, "
             "\"lock_timeout_s\": 30, \"error_ttl_s\": %d}, "
             "\"providers\": {\"alist\": {\"instances\": "
             "{\"a\": {\"url\": \"http://127.0.0.1:%d\"}}}}}",
             SECRET, f->redis.sock, ERROR_TTL_S, f->origin.port);
    mr_buf_init(&err, 4096);
    if (mr_conf_load_string("t", json, strlen(json), &f->conf, &err))
        print_message("%s", err.p);
    mr_buf_free(&err);
    assert_non_null(f->conf);
    assert_non_null(f->lru = mr_lru_new(64, 1 << 20));
    assert_non_null(f->raw = test_redis_connect(&f->redis));
    f->media.id = "m1";
    f->media.provider = "alist";
    f->media.source = json_tokener_parse("{\"instance\": \"a\", \"path\": \"/a.mp4\"}");
    assert_non_null(f->media.source);
    snprintf(f->fail_key, sizeof(f->fail_key), "%sfail:url:alist:m1", f->conf->key_prefix);
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
    json_object_put(f->media.source);
    mr_conf_free(f->conf);
    mr_lru_free(f->lru);
    test_redis_cleanup(&f->redis);
    free(f);
    return 0;
}

static int discard(void *arg, const void *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    return 0;
}

static void client_init(struct client *c, struct fx *f)
{
    char **params;

    memset(c, 0, sizeof(*c));
    c->f = f;
    mr_arena_init(&c->arena, 0);
    assert_non_null(c->store = mr_store_new(f->conf, f->lru));
    assert_non_null(c->up = mr_upstream_new(f->conf));
    params = mr_arena_calloc(&c->arena, 3, sizeof(char *));
    assert_non_null(params);
    params[0] = mr_arena_strdup(&c->arena, "REQUEST_METHOD=GET");
    params[1] = mr_arena_strdup(&c->arena, "REQUEST_URI=/api/media/m1/source");
    c->ctx.conf = f->conf;
    c->ctx.arena = &c->arena;
    c->ctx.store = c->store;
    c->ctx.up = c->up;
    assert_int_equal(mr_request_parse(&c->ctx.req, &c->arena, params), MR_OK);
    c->out = (struct mr_out){ .write = discard, .arg = c };
    mr_resp_init(&c->ctx.resp, &c->arena, &c->out, false);
}

static void client_free(struct client *c)
{
    mr_store_free(c->store);
    mr_upstream_free(c->up);
    mr_arena_free(&c->arena);
}

static void *client_main(void *arg)
{
    struct client *c = arg;

    if (c->again)
        c->rc = mr_resolve_again(&c->ctx, &c->f->media, c->failed, &c->src);
    else
        c->rc = mr_resolve(&c->ctx, &c->f->media, &c->src);
    if (!c->rc && c->src.url)
        snprintf(c->url, sizeof(c->url), "%s", c->src.url);
    atomic_store(&c->done, true);
    return NULL;
}

/* Resolves on this thread. */
static int resolve(struct fx *f, char *url, size_t len)
{
    struct client c;
    int rc;

    client_init(&c, f);
    client_main(&c);
    rc = c.rc;
    snprintf(url, len, "%s", c.url);
    client_free(&c);
    return rc;
}

static void start(struct client *c)
{
    assert_int_equal(pthread_create(&c->th, NULL, client_main, c), 0);
}

static bool is_done(void *arg)
{
    return atomic_load(&((struct client *)arg)->done);
}

struct count_at_least {
    struct test_origin *o;
    int requests, at_gate;
};

static bool origin_reached(void *arg)
{
    struct count_at_least *w = arg;
    return test_origin_requests(w->o) >= w->requests && test_origin_at_gate(w->o) >= w->at_gate;
}

static void wait_origin(struct fx *f, int requests, int at_gate)
{
    struct count_at_least w = { &f->origin, requests, at_gate };
    if (!test_wait_for(origin_reached, &w, DEADLINE_MS))
        fail_msg("the origin saw %d requests (%d at the gate), not %d (%d)",
                 test_origin_requests(&f->origin), test_origin_at_gate(&f->origin),
                 requests, at_gate);
}

/* How many GET commands the redis-server ran so far. */
static long redis_gets(redisContext *raw)
{
    redisReply *r = redisCommand(raw, "INFO commandstats");
    const char *p;
    long n = -1;

    p = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    if (p && (p = strstr(p, "cmdstat_get:calls=")))
        n = strtol(p + 18, NULL, 10);
    else if (p)
        n = 0;
    if (r)
        freeReplyObject(r);
    return n;
}

struct waiting {
    struct fx *f;
    long gets_from;
};

/* The second request is either in the wait for the first one's answer
 * (it has read the cache, the failure key, and then the cache and the lock
 * at least once) or, were it not kept out, asking the provider itself. */
static bool second_waits_or_asks(void *arg)
{
    struct waiting *w = arg;
    return redis_gets(w->f->raw) - w->gets_from >= 4 || test_origin_requests(&w->f->origin) >= 2;
}

/* Two resolves at once: one provider call, and both get its answer. */
static void test_single_flight(void **state)
{
    struct fx *f = *state;
    struct client a, b;
    struct waiting w = { f, 0 };

    if (!test_redis_installed())
        skip();
    test_origin_hold(&f->origin);
    client_init(&a, f);
    client_init(&b, f);
    start(&a);
    wait_origin(f, 1, 1);              /* a holds the lock, its call in flight */
    w.gets_from = redis_gets(f->raw);
    start(&b);
    assert_true(test_wait_for(second_waits_or_asks, &w, DEADLINE_MS));
    assert_false(atomic_load(&b.done));
    test_origin_release(&f->origin);
    pthread_join(a.th, NULL);
    pthread_join(b.th, NULL);
    assert_int_equal(a.rc, MR_OK);
    assert_int_equal(b.rc, MR_OK);
    assert_string_equal(a.url, "http://media.test/v1.mp4");
    assert_string_equal(b.url, "http://media.test/v1.mp4");
    assert_int_equal(test_origin_requests(&f->origin), 1);
    client_free(&a);
    client_free(&b);
}

/* A cached resolution is used as it is until its refresh time; past it, one
 * request refreshes while the others get the old link at once. */
static void test_early_refresh(void **state)
{
    struct fx *f = *state;
    struct client a, b;
    char url[256];

    if (!test_redis_installed())
        skip();
    assert_int_equal(resolve(f, url, sizeof(url)), MR_OK);
    assert_string_equal(url, "http://media.test/v1.mp4");
    /* Before the refresh margin (300 s before the 600 s default expiry):
     * the cache's answer. */
    mr_clock_set_offset(290 * 1000);
    assert_int_equal(resolve(f, url, sizeof(url)), MR_OK);
    assert_string_equal(url, "http://media.test/v1.mp4");
    assert_int_equal(test_origin_requests(&f->origin), 1);

    /* Inside it: the first request refreshes (held at the origin)... */
    mr_clock_set_offset(310 * 1000);
    test_origin_hold(&f->origin);
    client_init(&a, f);
    client_init(&b, f);
    start(&a);
    wait_origin(f, 2, 1);
    /* ... and another one gets the old link without waiting for it. */
    start(&b);
    if (!test_wait_for(is_done, &b, DEADLINE_MS)) {
        test_origin_release(&f->origin);
        pthread_join(a.th, NULL);
        pthread_join(b.th, NULL);
        fail_msg("a request waited for the refresh instead of using the cached link");
    }
    pthread_join(b.th, NULL);
    assert_int_equal(b.rc, MR_OK);
    assert_string_equal(b.url, "http://media.test/v1.mp4");
    assert_false(atomic_load(&a.done));
    test_origin_release(&f->origin);
    pthread_join(a.th, NULL);
    assert_int_equal(a.rc, MR_OK);
    assert_string_equal(a.url, "http://media.test/v2.mp4");
    /* The refreshed link is the cache's now. */
    assert_int_equal(resolve(f, url, sizeof(url)), MR_OK);
    assert_string_equal(url, "http://media.test/v2.mp4");
    assert_int_equal(test_origin_requests(&f->origin), 2);
    client_free(&a);
    client_free(&b);
}

/* A refresh that fails keeps the cached link (until it expires). */
static void test_failed_refresh_keeps_link(void **state)
{
    struct fx *f = *state;
    char url[256];

    if (!test_redis_installed())
        skip();
    assert_int_equal(resolve(f, url, sizeof(url)), MR_OK);
    atomic_store(&f->failing, true);
    mr_clock_set_offset(310 * 1000);
    assert_int_equal(resolve(f, url, sizeof(url)), MR_OK);
    assert_string_equal(url, "http://media.test/v1.mp4");
    assert_int_equal(test_origin_requests(&f->origin), 2);
}

struct key_gone {
    redisContext *raw;
    const char *key;
};

static bool key_gone(void *arg)
{
    struct key_gone *k = arg;
    char buf[32];
    return !strcmp(test_redis_cmd(k->raw, buf, sizeof(buf), "EXISTS %s", k->key), "0");
}

/* A failure is remembered for resolve.error_ttl_s: the requests that come
 * meanwhile get it without asking the provider, those that waited for it
 * too; after it the provider is asked again. */
static void test_error_memory(void **state)
{
    struct fx *f = *state;
    struct client a, b;
    struct waiting w = { f, 0 };
    struct key_gone k;
    char url[256], buf[32];
    long pttl;

    if (!test_redis_installed())
        skip();
    atomic_store(&f->failing, true);
    /* Two at once: one call, and the one that waited gets its failure. */
    test_origin_hold(&f->origin);
    client_init(&a, f);
    client_init(&b, f);
    start(&a);
    wait_origin(f, 1, 1);
    w.gets_from = redis_gets(f->raw);
    start(&b);
    assert_true(test_wait_for(second_waits_or_asks, &w, DEADLINE_MS));
    test_origin_release(&f->origin);
    pthread_join(a.th, NULL);
    pthread_join(b.th, NULL);
    assert_int_equal(a.rc, MR_EUPSTREAM);
    assert_int_equal(b.rc, MR_EUPSTREAM);
    assert_non_null(strstr(b.ctx.why, "storage broke"));
    client_free(&a);
    client_free(&b);
    assert_int_equal(test_origin_requests(&f->origin), 1);

    /* Those that come later get it too, without a call. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(resolve(f, url, sizeof(url)), MR_EUPSTREAM);
    assert_int_equal(test_origin_requests(&f->origin), 1);
    /* For error_ttl_s: the key's TTL; when it runs out (here at once, as
     * Redis would after it) the provider is asked again. */
    pttl = strtol(test_redis_cmd(f->raw, buf, sizeof(buf), "PTTL %s", f->fail_key), NULL, 10);
    assert_true(pttl > 0 && pttl <= ERROR_TTL_S * 1000);
    atomic_store(&f->failing, false);
    test_redis_cmd(f->raw, buf, sizeof(buf), "PEXPIRE %s 1", f->fail_key);
    k = (struct key_gone){ f->raw, f->fail_key };
    assert_true(test_wait_for(key_gone, &k, DEADLINE_MS));
    assert_int_equal(resolve(f, url, sizeof(url)), MR_OK);
    assert_string_equal(url, "http://media.test/v2.mp4");
    assert_int_equal(test_origin_requests(&f->origin), 2);
}

/* A resolve-again of the link that failed: within resolve.again_min_s
 * (15 s) of its resolution the cached answer stands -- a client cannot make
 * the relay ask the provider on every request; after it the provider is
 * asked once, and the others that saw the old link fail take the new one. */
static void again(struct fx *f, const char *failed, const char *want)
{
    struct client c;

    client_init(&c, f);
    c.again = true;
    snprintf(c.failed, sizeof(c.failed), "%s", failed);
    client_main(&c);
    assert_int_equal(c.rc, MR_OK);
    assert_string_equal(c.url, want);
    client_free(&c);
}

static void test_resolve_again_once(void **state)
{
    struct fx *f = *state;
    char url[256];

    if (!test_redis_installed())
        skip();
    assert_int_equal(resolve(f, url, sizeof(url)), MR_OK);
    mr_clock_set_offset(10 * 1000);
    again(f, "http://media.test/v1.mp4", "http://media.test/v1.mp4");
    assert_int_equal(test_origin_requests(&f->origin), 1);
    mr_clock_set_offset(16 * 1000);
    for (int i = 0; i < 3; i++)
        again(f, "http://media.test/v1.mp4", "http://media.test/v2.mp4");
    assert_int_equal(test_origin_requests(&f->origin), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_early_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_refresh_keeps_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_again_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
