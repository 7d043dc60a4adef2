/* test_stats.c - counters recorded and read back (Redis and fallback), and
 * their JSON and Prometheus forms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/lru.h"
#include "app/stats.h"
#include "net/store.h"

#include "fixtures.h"

#define STORE_OPTS "\"store\": {\"timeout_ms\": 300, \"retry_ms\": 100}"

struct fx {
    struct test_fx t;
};

static struct mr_conf *conf_for(const char *redis)
{
    return test_conf_load(redis, STORE_OPTS);
}

/* On a private redis-server when there is one, else the fallback alone. */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    *state = f;
    test_fx_init(&f->t, 256);
    test_fx_redis(&f->t);
    test_fx_store(&f->t, STORE_OPTS);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    test_fx_free(&f->t);
    free(f);
    return 0;
}

static void test_record_and_read(void **state)
{
    struct fx *f = *state;
    struct mr_stats st;
    struct mr_stats_req a = { "media", "intro", 1000, 900, false };
    struct mr_stats_req b = { "stream", "cdn.example:8080", 50, 50, true };

    if (!f->t.redis.pid)
        skip();
    mr_stats_record(f->t.store, &a);
    mr_stats_record(f->t.store, &a);
    mr_stats_record(f->t.store, &b);
    assert_int_equal(mr_stats_read(f->t.store, &f->t.arena, &st), MR_OK);
    assert_true(st.redis_up);
    assert_int_equal(st.total.v[0], 3);
    assert_int_equal(st.total.v[1], 2050);
    assert_int_equal(st.total.v[2], 1850);
    assert_int_equal(st.total.v[3], 1);
    assert_int_equal(st.n, 2);
    /* Sorted by kind, then id. */
    assert_string_equal(st.items[0].kind, "media");
    assert_string_equal(st.items[0].id, "intro");
    assert_int_equal(st.items[0].v[0], 2);
    assert_int_equal(st.items[0].v[2], 1800);
    assert_string_equal(st.items[1].kind, "stream");
    assert_string_equal(st.items[1].id, "cdn.example:8080");
    assert_int_equal(st.items[1].v[3], 1);
}

static void test_redis_down(void **state)
{
    struct fx *f = *state;
    struct mr_conf *c = conf_for("");
    struct mr_store *s = mr_store_new(c, f->t.lru);
    struct mr_stats st;
    struct mr_stats_req a = { "media", "x", 10, 10, false };

    mr_stats_record(s, &a);   /* goes to the fallback, does not fail */
    assert_int_equal(mr_stats_read(s, &f->t.arena, &st), MR_OK);
    assert_false(st.redis_up);
    assert_int_equal(st.n, 0);
    mr_store_free(s);
    mr_conf_free(c);
}

static void test_formats(void **state)
{
    struct fx *f = *state;
    struct mr_stats_item items[2] = {
        { "media", "intro", { 2, 100, 90, 0 } },
        { "stream", "we\"ird\\host\n", { 1, 5, 5, 1 } },
    };
    struct mr_stats st = { true, { NULL, NULL, { 3, 105, 95, 1 } }, items, 2 };
    struct json_object *o = mr_stats_json(&st), *v, *arr;
    struct mr_buf b;

    (void)f;
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "redis", &v));
    assert_string_equal(json_object_get_string(v), "ok");
    assert_true(json_object_object_get_ex(o, "total", &v));
    assert_true(json_object_object_get_ex(v, "bytes_out", &v));
    assert_int_equal(json_object_get_int64(v), 95);
    assert_true(json_object_object_get_ex(o, "items", &arr));
    assert_int_equal(json_object_array_length(arr), 2);
    v = json_object_array_get_idx(arr, 1);
    assert_true(json_object_object_get_ex(v, "id", &v));
    assert_string_equal(json_object_get_string(v), "we\"ird\\host\n");
    json_object_put(o);

    mr_buf_init(&b, 1 << 20);
    assert_int_equal(mr_stats_prometheus(&st, &b), MR_OK);
    assert_non_null(strstr(b.p, "mediarelay_redis_up 1\n"));
    assert_non_null(strstr(b.p, "# TYPE mediarelay_all_requests_total counter\n"
                                "mediarelay_all_requests_total 3\n"));
    assert_non_null(strstr(b.p, "mediarelay_bytes_out_total{kind=\"media\",id=\"intro\"} 90\n"));
    /* Label values escaped as the exposition format says. */
    assert_non_null(strstr(b.p, "mediarelay_upstream_errors_total{kind=\"stream\","
                                "id=\"we\\\"ird\\\\host\\n\"} 1\n"));
    /* Every line is a comment or "name[{labels}] value". */
    for (char *line = b.p; *line; line = strchr(line, '\n') + 1) {
        assert_non_null(strchr(line, '\n'));
        if (line[0] != '#')
            assert_non_null(strstr(line, "mediarelay_"));
    }
    mr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_and_read),
        cmocka_unit_test(test_redis_down),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
