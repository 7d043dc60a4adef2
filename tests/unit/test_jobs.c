/* test_jobs.c - media-job tasks and their queues (app/jobs.h) against a real
 * redis-server: the record and its indexes, the API's JSON view, the
 * consumer group's entries as workers take, renew, take over, ack and hand
 * back, every guarded change of a task (start, update, finish, cancel),
 * result folders, and what all of it answers while Redis is down.  Each test
 * has a private redis-server (redis_helper.h) and jobs.dir in a mkdtemp
 * directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "app/jobs.h"
#include "net/store.h"

#include "fixtures.h"

/* The default key prefix. */
#define P "mr:"
#define QD "jobs:q:download"
#define QP "jobs:q:process"
#define KEEP_S 60
#define MAX_QUEUED 3
#define MAX_ATTEMPTS 2

struct fx {
    struct test_fx t;
    char dir[64];              /* jobs.dir */
    char buf[1024];
};

#define NEED_REDIS(f) do { if (!(f)->t.redis.pid) skip(); } while (0)

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char body[512];

    if (!f)
        return -1;
    *state = f;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mr-unit-jobs-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(body, sizeof(body),
             "\"store\": {\"timeout_ms\": 1000, \"retry_ms\": 100}, "
             "\"jobs\": {\"dir\": \"%s\", \"claim_idle_s\": 2, \"max_attempts\": %d, "
             "\"keep_s\": %d, \"max_queued_per_user\": %d}",
             f->dir, MAX_ATTEMPTS, KEEP_S, MAX_QUEUED);
    test_fx_init(&f->t, 64);
    test_fx_redis(&f->t);
    test_fx_store(&f->t, body);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *w)
{
    (void)st;
    (void)w;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (!f)
        return 0;
    test_fx_free(&f->t);
    if (f->dir[0])
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

/* One raw command's reply as text (test_redis_cmd), in f->buf. */
static const char *raw(struct fx *f, const char *fmt, const char *a1, const char *a2)
{
    return test_redis_cmd(f->t.raw, f->buf, sizeof(f->buf), fmt, a1, a2);
}

static const char *hget(struct fx *f, const char *id, const char *field)
{
    return test_redis_cmd(f->t.raw, f->buf, sizeof(f->buf), "HGET " P "task:%s %s", id, field);
}

static long long hget_ll(struct fx *f, const char *id, const char *field)
{
    return strtoll(hget(f, id, field), NULL, 10);
}

static long long raw_ll(struct fx *f, const char *fmt, const char *a1, const char *a2)
{
    return strtoll(raw(f, fmt, a1, a2), NULL, 10);
}

/* A raw command whose reply is not looked at. */
static void rawf(struct fx *f, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(f->t.raw, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        print_message("redis: %s\n", r->str);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* A reply for a closer look; freeReplyObject it. */
static redisReply *rawr(struct fx *f, const char *fmt, const char *a1, const char *a2)
{
    redisReply *r = redisCommand(f->t.raw, fmt, a1, a2);
    assert_non_null(r);
    return r;
}

/* Entries of a queue pending in the group. */
static long long pending(struct fx *f, const char *queue)
{
    redisReply *r = rawr(f, "XPENDING " P "%s " MR_JOBS_GROUP, queue, NULL);
    long long n;
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_INTEGER);
    n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

/* The consumer an entry is pending with ("" when it is not pending). */
static const char *pending_owner(struct fx *f, const char *queue, const char *msg_id)
{
    redisReply *r = redisCommand(f->t.raw, "XPENDING " P "%s " MR_JOBS_GROUP " %s %s 1", queue,
                                 msg_id, msg_id);
    assert_non_null(r);
    f->buf[0] = '\0';
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    if (r->elements)
        snprintf(f->buf, sizeof(f->buf), "%s", r->element[0]->element[1]->str);
    freeReplyObject(r);
    return f->buf;
}

/* The groups of a queue's stream (0 when there is no stream). */
static size_t groups(struct fx *f, const char *queue)
{
    redisReply *r = rawr(f, "XINFO GROUPS " P "%s", queue, NULL);
    size_t n = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        n = r->elements;
        /* [name, "workers", ...] */
        for (size_t i = 0; i < n; i++)
            assert_string_equal(r->element[i]->element[1]->str, MR_JOBS_GROUP);
    }
    freeReplyObject(r);
    return n;
}

static void create(struct fx *f, const char *type, const char *user, const char *req,
                   char id[MR_TASK_ID_LEN + 1])
{
    assert_int_equal(mr_task_create(f->t.store, f->t.conf, type, user, req, id), MR_OK);
    assert_true(mr_task_id_ok(id, strlen(id)));
}

/* Waits until Redis's clock has passed ms (a deadline loop: creation times
 * in ms order the indexes). */
static void after_ms(struct fx *f, long long ms)
{
    long long until = mr_clock_mono_ms() + 5000;
    for (;;) {
        redisReply *r = rawr(f, "TIME", NULL, NULL);
        long long now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
                        strtoll(r->element[1]->str, NULL, 10) / 1000;
        freeReplyObject(r);
        if (now > ms)
            return;
        assert_true(mr_clock_mono_ms() < until);
        test_sleep_ms(1);
    }
}

static void create_ordered(struct fx *f, const char *type, const char *user,
                           char id[MR_TASK_ID_LEN + 1])
{
    create(f, type, user, "{}", id);
    after_ms(f, hget_ll(f, id, "created_at"));
}

/* Creates a task and takes its entry as `consumer` (entries of older tasks
 * still queued before it are taken and acked). */
static void create_take(struct fx *f, const char *type, const char *user, const char *consumer,
                        char id[MR_TASK_ID_LEN + 1], struct mr_job_msg *m)
{
    const char *q[1] = { mr_jobs_queue(type) };
    create(f, type, user, "{}", id);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, consumer, q, 1, 100, m), 1);
        if (!strcmp(m->task, id))
            return;
        assert_int_equal(mr_jobs_ack(f->t.store, m), MR_OK);
    }
    fail_msg("task %s was not in its queue", id);
}

static long long ttl(struct fx *f, const char *id)
{
    return raw_ll(f, "TTL " P "task:%s", id, NULL);
}

static bool in_open(struct fx *f, const char *user, const char *id)
{
    return raw_ll(f, "SISMEMBER " P "tasks-open:%s %s", user, id) == 1;
}

/* ---- create --------------------------------------------------------------------- */

static void test_create(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1], id2[MR_TASK_ID_LEN + 1], more[MR_TASK_ID_LEN + 1];
    const char *req = "{\"url\":\"http://example.com/v\",\"format\":\"best\"}";
    long long created, now_ms = (long long)time(NULL) * 1000;
    redisReply *r;
    int done;

    NEED_REDIS(f);
    create(f, "download", "alice", req, id);
    assert_int_equal(strlen(id), MR_TASK_ID_LEN);
    for (size_t i = 0; i < MR_TASK_ID_LEN; i++)
        assert_true((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'));

    /* The record. */
    assert_string_equal(hget(f, id, "id"), id);
    assert_string_equal(hget(f, id, "type"), "download");
    assert_string_equal(hget(f, id, "user"), "alice");
    assert_string_equal(hget(f, id, "status"), "pending");
    assert_string_equal(hget(f, id, "progress"), "0");
    assert_string_equal(hget(f, id, "bytes"), "0");
    assert_string_equal(hget(f, id, "total_bytes"), "0");
    assert_string_equal(hget(f, id, "speed"), "0");
    assert_string_equal(hget(f, id, "attempts"), "0");
    assert_string_equal(hget(f, id, "rev"), "1");
    assert_string_equal(hget(f, id, "request"), req);
    assert_string_equal(hget(f, id, "worker"), "");
    created = hget_ll(f, id, "created_at");
    assert_true(created > now_ms - 10000 && created < now_ms + 10000);
    assert_int_equal(raw_ll(f, "HLEN " P "task:%s", id, NULL), 12);
    assert_int_equal(ttl(f, id), -1);            /* lives while it has not ended */

    /* Its indexes. */
    assert_int_equal(raw_ll(f, "ZSCORE " P "tasks:alice %s", id, NULL), created);
    assert_int_equal(raw_ll(f, "ZSCORE " P "tasks-all %s", id, NULL), created);
    assert_true(in_open(f, "alice", id));

    /* One stream entry naming it, in a stream with the group. */
    assert_int_equal(raw_ll(f, "XLEN " P QD, NULL, NULL), 1);
    r = rawr(f, "XRANGE " P QD " - +", NULL, NULL);
    assert_int_equal(r->elements, 1);
    assert_int_equal(r->element[0]->element[1]->elements, 2);
    assert_string_equal(r->element[0]->element[1]->element[0]->str, "task");
    assert_string_equal(r->element[0]->element[1]->element[1]->str, id);
    freeReplyObject(r);
    assert_int_equal(groups(f, QD), 1);
    assert_string_equal(raw(f, "EXISTS " P QP, NULL, NULL), "0");

    /* Another id; a process task goes to its own queue. */
    create(f, "process", "alice", "{}", id2);
    assert_string_not_equal(id, id2);
    assert_string_equal(hget(f, id2, "type"), "process");
    assert_int_equal(raw_ll(f, "XLEN " P QP, NULL, NULL), 1);
    assert_int_equal(raw_ll(f, "XLEN " P QD, NULL, NULL), 1);
    assert_int_equal(groups(f, QP), 1);

    /* The cap: alice has MAX_QUEUED open tasks. */
    create(f, "download", "alice", "{}", more);
    assert_int_equal(raw_ll(f, "SCARD " P "tasks-open:alice", NULL, NULL), MAX_QUEUED);
    assert_int_equal(mr_task_create(f->t.store, f->t.conf, "download", "alice", "{}", more),
                     MR_ELIMIT);
    /* Nothing of it was written. */
    assert_int_equal(raw_ll(f, "ZCARD " P "tasks:alice", NULL, NULL), MAX_QUEUED);
    assert_int_equal(raw_ll(f, "ZCARD " P "tasks-all", NULL, NULL), MAX_QUEUED);
    assert_int_equal(raw_ll(f, "XLEN " P QD, NULL, NULL), 2);
    assert_string_equal(raw(f, "EXISTS " P "task:%s", more, NULL), "0");
    /* Bob is not affected. */
    create(f, "download", "bob", "{}", more);
    assert_int_equal(raw_ll(f, "SCARD " P "tasks-open:bob", NULL, NULL), 1);
    /* One of alice's ends: she may queue one more. */
    assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, id, &done), MR_OK);
    assert_int_equal(done, 1);
    create(f, "download", "alice", "{}", more);
    assert_int_equal(mr_task_create(f->t.store, f->t.conf, "download", "alice", "{}", more),
                     MR_ELIMIT);
}

/* ---- reading ------------------------------------------------------------------- */

static struct json_object *get(struct json_object *o, const char *k)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, k, &v)) {
        print_message("no member %s in %s\n", k, json_object_to_json_string(o));
        fail();
    }
    return v;
}

static void assert_null_member(struct json_object *o, const char *k)
{
    assert_null(get(o, k));
}

static void test_read_and_json(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1], pid[MR_TASK_ID_LEN + 1], text[40];
    struct mr_task t;
    struct json_object *o, *v;
    long long created;

    NEED_REDIS(f);
    create(f, "download", "alice",
           "{\"url\":\"http://example.com/v\",\"format\":\"best\",\"input_name\":\"x/y\"}", id);
    created = hget_ll(f, id, "created_at");

    assert_int_equal(mr_task_read(f->t.store, &f->t.arena, id, &t), MR_OK);
    assert_int_equal(t.n, 12);
    assert_string_equal(mr_task_get(&t, "id"), id);
    assert_string_equal(mr_task_get(&t, "status"), "pending");
    assert_string_equal(mr_task_get(&t, "user"), "alice");
    assert_null(mr_task_get(&t, "worker"));
    assert_null(mr_task_get(&t, "no-such-field"));
    {
        char missing[] = "0123456789abcdef01234567";
        assert_int_equal(mr_task_read(f->t.store, &f->t.arena, missing, &t), MR_ENOTFOUND);
        assert_int_equal(t.n, 0);
    }

    assert_int_equal(mr_task_read(f->t.store, &f->t.arena, id, &t), MR_OK);
    o = mr_task_json(&t);
    assert_non_null(o);
    assert_string_equal(json_object_get_string(get(o, "task_id")), id);
    assert_string_equal(json_object_get_string(get(o, "type")), "download");
    assert_string_equal(json_object_get_string(get(o, "status")), "pending");
    assert_true(json_object_is_type(get(o, "progress"), json_type_int));
    assert_int_equal(json_object_get_int64(get(o, "progress")), 0);
    assert_int_equal(json_object_get_int64(get(o, "bytes")), 0);
    assert_int_equal(json_object_get_int64(get(o, "total_bytes")), 0);
    assert_int_equal(json_object_get_int64(get(o, "speed")), 0);
    assert_int_equal(json_object_get_int64(get(o, "attempts")), 0);
    /* Absent fields are there, as null. */
    assert_null_member(o, "eta_s");
    assert_null_member(o, "started_at");
    assert_null_member(o, "completed_at");
    assert_null_member(o, "error");
    assert_null_member(o, "title");
    assert_null_member(o, "downloaded_files");
    assert_false(json_object_object_get_ex(o, "output_file", NULL));
    /* created_at in seconds, with the milliseconds. */
    v = get(o, "created_at");
    assert_true(json_object_is_type(v, json_type_double));
    assert_true(json_object_get_double(v) > created / 1000.0 - 0.0015 &&
                json_object_get_double(v) < created / 1000.0 + 0.0015);
    snprintf(text, sizeof(text), "%lld.%03lld", created / 1000, created % 1000);
    assert_string_equal(json_object_to_json_string(v), text);
    /* The request's fields, never a path. */
    assert_string_equal(json_object_get_string(get(o, "url")), "http://example.com/v");
    assert_string_equal(json_object_get_string(get(o, "format")), "best");
    assert_false(json_object_object_get_ex(o, "input_name", NULL));
    assert_false(json_object_object_get_ex(o, "user", NULL));
    assert_false(json_object_object_get_ex(o, "request", NULL));
    json_object_put(o);

    /* What a worker writes. */
    raw(f, "HSET " P "task:%s files %s", id, "[\"a.mp4\",\"b b.mp4\"]");
    rawf(f, "HSET " P "task:%s progress 42.5 eta_s 7 title T error %s "
         "started_at 1700000000007", id, "");
    assert_int_equal(mr_task_read(f->t.store, &f->t.arena, id, &t), MR_OK);
    o = mr_task_json(&t);
    assert_non_null(o);
    v = get(o, "downloaded_files");
    assert_true(json_object_is_type(v, json_type_array));
    assert_int_equal(json_object_array_length(v), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)), "a.mp4");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 1)), "b b.mp4");
    assert_true(json_object_is_type(get(o, "progress"), json_type_double));
    assert_true(json_object_get_double(get(o, "progress")) == 42.5);
    assert_int_equal(json_object_get_int64(get(o, "eta_s")), 7);
    assert_string_equal(json_object_get_string(get(o, "title")), "T");
    assert_null_member(o, "error");                       /* "" is none */
    assert_string_equal(json_object_to_json_string(get(o, "started_at")), "1700000000.007");
    json_object_put(o);

    /* Garbage in a stored field is null, not a crash. */
    rawf(f, "HSET " P "task:%s files {nope bytes x12 created_at -5", id);
    assert_int_equal(mr_task_read(f->t.store, &f->t.arena, id, &t), MR_OK);
    o = mr_task_json(&t);
    assert_null_member(o, "downloaded_files");
    assert_null_member(o, "bytes");
    assert_null_member(o, "created_at");
    json_object_put(o);

    /* A process task: its files, no downloaded_files. */
    create(f, "process", "alice", "{\"input\":\"x.mp4\",\"operations\":[\"thumbnail\"]}", pid);
    raw(f, "HSET " P "task:%s output_file %s", pid, "out.mp4");
    assert_int_equal(mr_task_read(f->t.store, &f->t.arena, pid, &t), MR_OK);
    o = mr_task_json(&t);
    assert_string_equal(json_object_get_string(get(o, "type")), "process");
    assert_string_equal(json_object_get_string(get(o, "output_file")), "out.mp4");
    assert_null_member(o, "thumbnail_file");
    assert_false(json_object_object_get_ex(o, "downloaded_files", NULL));
    assert_string_equal(json_object_get_string(get(o, "input")), "x.mp4");
    assert_int_equal(json_object_array_length(get(o, "operations")), 1);
    json_object_put(o);
}

static void test_ids_and_read_many(void **state)
{
    struct fx *f = *state;
    char a[3][MR_TASK_ID_LEN + 1], b[MR_TASK_ID_LEN + 1];
    struct mr_task out[4];
    char **ids;
    size_t n;

    NEED_REDIS(f);
    create_ordered(f, "download", "alice", a[0]);
    create_ordered(f, "download", "bob", b);
    create_ordered(f, "process", "alice", a[1]);
    create_ordered(f, "download", "alice", a[2]);

    /* Newest first; the user's own, or everyone's. */
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, "alice", 10, &ids, &n), MR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], a[2]);
    assert_string_equal(ids[1], a[1]);
    assert_string_equal(ids[2], a[0]);
    assert_null(ids[3]);
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, "alice", 2, &ids, &n), MR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], a[2]);
    assert_string_equal(ids[1], a[1]);
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, "bob", 10, &ids, &n), MR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], b);
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, NULL, 10, &ids, &n), MR_OK);
    assert_int_equal(n, 4);
    assert_string_equal(ids[0], a[2]);
    assert_string_equal(ids[1], a[1]);
    assert_string_equal(ids[2], b);
    assert_string_equal(ids[3], a[0]);
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, "nobody", 10, &ids, &n), MR_OK);
    assert_int_equal(n, 0);
    /* Something in an index that is not an id is skipped. */
    raw(f, "ZADD " P "tasks:alice 1 %s", "not-an-id", NULL);
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, "alice", 10, &ids, &n), MR_OK);
    assert_int_equal(n, 3);

    /* All in one go; one record expired: dropped from the indexes. */
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, "alice", 3, &ids, &n), MR_OK);
    raw(f, "DEL " P "task:%s", a[1], NULL);
    assert_int_equal(mr_task_read_many(f->t.store, &f->t.arena, "alice", ids, n, out), MR_OK);
    assert_string_equal(mr_task_get(&out[0], "id"), a[2]);
    assert_int_equal(out[1].n, 0);
    assert_string_equal(mr_task_get(&out[2], "id"), a[0]);
    assert_string_equal(raw(f, "ZSCORE " P "tasks:alice %s", a[1], NULL), "");
    assert_string_equal(raw(f, "ZSCORE " P "tasks-all %s", a[1], NULL), "");
    assert_false(in_open(f, "alice", a[1]));
    assert_string_not_equal(raw(f, "ZSCORE " P "tasks:alice %s", a[0], NULL), "");
    assert_string_not_equal(raw(f, "ZSCORE " P "tasks-all %s", a[2], NULL), "");
    assert_true(in_open(f, "alice", a[2]));

    /* Everyone's list: the owner is not known, tasks-all is cleaned. */
    raw(f, "DEL " P "task:%s", b, NULL);
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, NULL, 10, &ids, &n), MR_OK);
    assert_int_equal(n, 3);
    assert_int_equal(mr_task_read_many(f->t.store, &f->t.arena, NULL, ids, n, out), MR_OK);
    assert_int_equal(out[1].n, 0);
    assert_string_equal(raw(f, "ZSCORE " P "tasks-all %s", b, NULL), "");
    assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, NULL, 10, &ids, &n), MR_OK);
    assert_int_equal(n, 2);
    /* None at all. */
    assert_int_equal(mr_task_read_many(f->t.store, &f->t.arena, NULL, ids, 0, out), MR_OK);
}

/* ---- the worker's side ------------------------------------------------------------ */

static void test_take(void **state)
{
    struct fx *f = *state;
    char id1[MR_TASK_ID_LEN + 1], id2[MR_TASK_ID_LEN + 1], id3[MR_TASK_ID_LEN + 1];
    const char *qd[1] = { QD }, *both[2] = { QD, QP };
    struct mr_job_msg m1, m2, m3;
    long long t0, ms;

    NEED_REDIS(f);
    create(f, "download", "alice", "{}", id1);
    create(f, "download", "alice", "{}", id2);

    /* Two consumers, two different entries. */
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c1", qd, 1, 100, &m1), 1);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c2", qd, 1, 100, &m2), 1);
    assert_string_equal(m1.queue, QD);
    assert_string_equal(m2.queue, QD);
    assert_string_not_equal(m1.msg_id, m2.msg_id);
    assert_string_not_equal(m1.task, m2.task);
    assert_string_equal(m1.task, id1);             /* in queue order */
    assert_string_equal(m2.task, id2);
    assert_int_equal(pending(f, QD), 2);
    assert_string_equal(pending_owner(f, QD, m1.msg_id), "c1");
    assert_string_equal(pending_owner(f, QD, m2.msg_id), "c2");
    /* Taking changes nothing in the task. */
    assert_string_equal(hget(f, id1, "status"), "pending");
    assert_string_equal(hget(f, id1, "attempts"), "0");

    /* Nothing new: 0 after the block time. */
    t0 = mr_clock_mono_ms();
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c3", qd, 1, 200, &m3), 0);
    ms = mr_clock_mono_ms() - t0;
    assert_true(ms >= 190);
    assert_true(ms < 200 + f->t.conf->store.timeout_ms);
    /* The connection's own timeout is back, and it still works. */
    assert_int_equal(mr_store_ping(f->t.store), MR_OK);

    /* Two queues at once. */
    create(f, "process", "bob", "{}", id3);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c3", both, 2, 100, &m3), 1);
    assert_string_equal(m3.queue, QP);
    assert_string_equal(m3.task, id3);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c3", both, 2, 50, &m3), 0);

    /* Bad queue counts. */
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c3", both, 0, 50, &m3), MR_EINTERNAL);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c3", both, 3, 50, &m3), MR_EINTERNAL);
}

static void test_start(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1], pid[MR_TASK_ID_LEN + 1], started[32];
    struct mr_job_msg m, mp, mx;
    long attempt = -1;
    int done;

    NEED_REDIS(f);
    create_take(f, "download", "alice", "c1", id, &m);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 1);
    assert_int_equal(attempt, 1);
    assert_string_equal(hget(f, id, "status"), "downloading");
    assert_string_equal(hget(f, id, "worker"), "c1");
    assert_string_equal(hget(f, id, "attempts"), "1");
    assert_string_equal(hget(f, id, "rev"), "2");
    assert_true(hget_ll(f, id, "started_at") >= hget_ll(f, id, "created_at"));
    snprintf(started, sizeof(started), "%s", hget(f, id, "started_at"));
    assert_true(in_open(f, "alice", id));

    /* A process task is "processing". */
    create_take(f, "process", "alice", "c1", pid, &mp);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &mp, "c1", &attempt), 1);
    assert_string_equal(hget(f, pid, "status"), "processing");

    /* Taken over: the next attempt, another worker, started_at kept. */
    after_ms(f, strtoll(started, NULL, 10));
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c2", &attempt), 1);
    assert_int_equal(attempt, 2);
    assert_string_equal(hget(f, id, "worker"), "c2");
    assert_string_equal(hget(f, id, "started_at"), started);
    assert_string_equal(hget(f, id, "rev"), "3");

    /* Past jobs.max_attempts: failed, and said why. */
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c3", &attempt), 2);
    assert_int_equal(attempt, 0);
    assert_string_equal(hget(f, id, "status"), "failed");
    assert_non_null(strstr(hget(f, id, "error"), "jobs.max_attempts"));
    assert_string_equal(hget(f, id, "attempts"), "2");
    assert_string_equal(hget(f, id, "worker"), "c2");
    assert_true(hget_ll(f, id, "completed_at") > 0);
    assert_false(in_open(f, "alice", id));
    assert_true(ttl(f, id) > 0 && ttl(f, id) <= KEEP_S);
    /* Ended: nothing to do. */
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c3", &attempt), 0);
    assert_string_equal(hget(f, id, "attempts"), "2");

    /* Canceled before it started: 0, left canceled. */
    create_take(f, "download", "bob", "c1", id, &m);
    assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, id, &done), MR_OK);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 0);
    assert_string_equal(hget(f, id, "status"), "canceled");
    assert_string_equal(hget(f, id, "attempts"), "0");

    /* Gone. */
    mx = m;
    snprintf(mx.task, sizeof(mx.task), "%s", "00000000000000000000beef");
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &mx, "c1", &attempt), MR_ENOTFOUND);
    assert_string_equal(raw(f, "EXISTS " P "task:%s", mx.task, NULL), "0");
}

static void test_update(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1];
    struct mr_job_msg m;
    long attempt;
    int done;

    NEED_REDIS(f);
    create_take(f, "download", "alice", "c1", id, &m);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 1);
    assert_string_equal(hget(f, id, "rev"), "2");
    {
        const char *fl[] = { "progress", "10", "bytes", "100", "title", "A title", NULL };
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", fl), 1);
    }
    assert_string_equal(hget(f, id, "progress"), "10");
    assert_string_equal(hget(f, id, "bytes"), "100");
    assert_string_equal(hget(f, id, "title"), "A title");
    assert_string_equal(hget(f, id, "rev"), "3");
    /* Progress never goes down. */
    {
        const char *down[] = { "progress", "5.5", "bytes", "50", NULL };
        const char *up[] = { "progress", "20.25", NULL };
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", down), 1);
        assert_string_equal(hget(f, id, "progress"), "10");
        assert_string_equal(hget(f, id, "bytes"), "50");
        assert_string_equal(hget(f, id, "rev"), "4");
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", up), 1);
        assert_string_equal(hget(f, id, "progress"), "20.25");
    }
    /* No fields: the guard only, no new revision. */
    {
        const char *none[] = { NULL };
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", none), 1);
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", NULL), 1);
        assert_string_equal(hget(f, id, "rev"), "5");
    }
    /* Another worker, or another attempt: -2, nothing touched. */
    {
        const char *fl[] = { "bytes", "999", NULL };
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c2", fl), -2);
        assert_int_equal(mr_task_update(f->t.store, id, attempt + 1, "c1", fl), -2);
        assert_string_equal(hget(f, id, "bytes"), "50");
        assert_string_equal(hget(f, id, "rev"), "5");
        /* Gone. */
        assert_int_equal(mr_task_update(f->t.store, "00000000000000000000beef", attempt, "c1",
                                        fl), MR_ENOTFOUND);
        /* Canceled: 0, the worker stops. */
        assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, id, &done), MR_OK);
        assert_int_equal(done, 1);
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", fl), 0);
        assert_string_equal(hget(f, id, "bytes"), "50");
    }
    /* Pending (not started): 0 too. */
    create(f, "download", "alice", "{}", id);
    {
        const char *fl[] = { "bytes", "1", NULL };
        assert_int_equal(mr_task_update(f->t.store, id, 0, "", fl), 0);
    }
}

static void test_finish(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1], id2[MR_TASK_ID_LEN + 1];
    struct mr_job_msg m, m2;
    long attempt, attempt2;

    NEED_REDIS(f);
    create_take(f, "download", "alice", "c1", id, &m);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 1);
    {
        const char *fl[] = { "progress", "50", "speed", "1234", "eta_s", "3", NULL };
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", fl), 1);
    }
    assert_true(in_open(f, "alice", id));
    assert_int_equal(ttl(f, id), -1);
    {
        const char *fl[] = { "progress", "100", "files", "[\"a.mp4\"]", NULL };
        const char *wrong[] = { "files", "[]", NULL };
        /* Not this worker's: -2, nothing done. */
        assert_int_equal(mr_task_finish(f->t.store, f->t.conf, id, attempt, "c2", "completed",
                                        wrong), -2);
        assert_string_equal(hget(f, id, "status"), "downloading");
        assert_true(in_open(f, "alice", id));
        assert_int_equal(mr_task_finish(f->t.store, f->t.conf, id, attempt, "c1", "completed",
                                        fl), 1);
    }
    assert_string_equal(hget(f, id, "status"), "completed");
    assert_string_equal(hget(f, id, "progress"), "100");
    assert_string_equal(hget(f, id, "files"), "[\"a.mp4\"]");
    assert_string_equal(hget(f, id, "speed"), "0");
    assert_string_equal(hget(f, id, "eta_s"), "");
    assert_true(hget_ll(f, id, "completed_at") >= hget_ll(f, id, "started_at"));
    assert_false(in_open(f, "alice", id));
    assert_true(ttl(f, id) > 0 && ttl(f, id) <= KEEP_S);
    /* Still in the lists until it expires. */
    assert_string_not_equal(raw(f, "ZSCORE " P "tasks:alice %s", id, NULL), "");
    /* Ended: 0 for anything more. */
    assert_int_equal(mr_task_finish(f->t.store, f->t.conf, id, attempt, "c1", "failed", NULL), 0);
    assert_string_equal(hget(f, id, "status"), "completed");

    /* Failed, with its error. */
    create_take(f, "process", "alice", "c1", id2, &m2);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m2, "c1", &attempt2), 1);
    {
        const char *fl[] = { "error", "ffmpeg exited with status 1", NULL };
        assert_int_equal(mr_task_finish(f->t.store, f->t.conf, id2, attempt2, "c1", "failed", fl),
                         1);
    }
    assert_string_equal(hget(f, id2, "status"), "failed");
    assert_string_equal(hget(f, id2, "error"), "ffmpeg exited with status 1");
    assert_false(in_open(f, "alice", id2));
    /* Gone. */
    assert_int_equal(mr_task_finish(f->t.store, f->t.conf, "00000000000000000000beef", 1, "c1",
                                    "completed", NULL), MR_ENOTFOUND);
}

static void test_cancel_delete_exists(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1], run[MR_TASK_ID_LEN + 1];
    struct mr_job_msg m;
    long attempt;
    int done = -1;
    bool ex = false;

    NEED_REDIS(f);
    /* Pending. */
    create(f, "download", "alice", "{}", id);
    assert_int_equal(mr_task_exists(f->t.store, id, &ex), MR_OK);
    assert_true(ex);
    assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, id, &done), MR_OK);
    assert_int_equal(done, 1);
    assert_string_equal(hget(f, id, "status"), "canceled");
    assert_string_equal(hget(f, id, "error"), "canceled");
    assert_string_equal(hget(f, id, "rev"), "2");
    assert_true(hget_ll(f, id, "completed_at") > 0);
    assert_false(in_open(f, "alice", id));
    assert_true(ttl(f, id) > 0 && ttl(f, id) <= KEEP_S);
    /* Ended already: 0, unchanged. */
    assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, id, &done), MR_OK);
    assert_int_equal(done, 0);
    assert_string_equal(hget(f, id, "rev"), "2");

    /* Running. */
    create_take(f, "download", "alice", "c1", run, &m);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 1);
    assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, run, &done), MR_OK);
    assert_int_equal(done, 1);
    assert_string_equal(hget(f, run, "status"), "canceled");
    /* Completed: 0. */
    create_take(f, "download", "alice", "c1", run, &m);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 1);
    assert_int_equal(mr_task_finish(f->t.store, f->t.conf, run, attempt, "c1", "completed",
                                    NULL), 1);
    assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, run, &done), MR_OK);
    assert_int_equal(done, 0);
    assert_string_equal(hget(f, run, "status"), "completed");
    /* Gone. */
    done = -1;
    assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, "00000000000000000000beef", &done),
                     MR_ENOTFOUND);
    assert_int_equal(done, 0);

    /* Delete: the record and every index entry. */
    create(f, "download", "bob", "{}", id);
    assert_int_equal(mr_task_delete(f->t.store, id, "bob"), MR_OK);
    assert_string_equal(raw(f, "EXISTS " P "task:%s", id, NULL), "0");
    assert_string_equal(raw(f, "ZSCORE " P "tasks:bob %s", id, NULL), "");
    assert_string_equal(raw(f, "ZSCORE " P "tasks-all %s", id, NULL), "");
    assert_false(in_open(f, "bob", id));
    assert_int_equal(mr_task_read(f->t.store, &f->t.arena, id, (struct mr_task[1]){ 0 }),
                     MR_ENOTFOUND);
    assert_int_equal(mr_task_exists(f->t.store, id, &ex), MR_OK);
    assert_false(ex);
    /* Again: nothing there, still fine. */
    assert_int_equal(mr_task_delete(f->t.store, id, "bob"), MR_OK);
    /* Without the user: the record and everyone's list. */
    create(f, "download", "bob", "{}", id);
    assert_int_equal(mr_task_delete(f->t.store, id, NULL), MR_OK);
    assert_string_equal(raw(f, "EXISTS " P "task:%s", id, NULL), "0");
    assert_string_equal(raw(f, "ZSCORE " P "tasks-all %s", id, NULL), "");
    assert_string_not_equal(raw(f, "ZSCORE " P "tasks:bob %s", id, NULL), "");
}

static void test_renew_and_take_idle(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1], before[1024];
    struct mr_job_msg m, m2, m3;
    long long until;
    int got;

    NEED_REDIS(f);
    create_take(f, "download", "alice", "c1", id, &m);
    assert_int_equal(mr_jobs_renew(f->t.store, "c1", &m), 1);
    assert_string_equal(pending_owner(f, QD, m.msg_id), "c1");
    /* Not c2's to renew. */
    assert_int_equal(mr_jobs_renew(f->t.store, "c2", &m), 0);
    assert_string_equal(pending_owner(f, QD, m.msg_id), "c1");

    /* Not idle long enough. */
    assert_int_equal(mr_jobs_take_idle(f->t.store, "c2", QD, 60000, &m2), 0);
    {
        redisReply *r = rawr(f, "HGETALL " P "task:%s", id, NULL);
        size_t k = 0;
        for (size_t i = 0; i < r->elements; i++)
            k += (size_t)snprintf(before + k, sizeof(before) - k, "%s|", r->element[i]->str);
        freeReplyObject(r);
    }

    /* Once it has been idle 300 ms: taken over. */
    until = mr_clock_mono_ms() + 5000;
    while (!(got = mr_jobs_take_idle(f->t.store, "c2", QD, 300, &m2))) {
        assert_true(mr_clock_mono_ms() < until);
        test_sleep_ms(10);
    }
    assert_int_equal(got, 1);
    assert_string_equal(m2.queue, QD);
    assert_string_equal(m2.msg_id, m.msg_id);
    assert_string_equal(m2.task, id);
    assert_string_equal(pending_owner(f, QD, m.msg_id), "c2");
    /* The task was not touched. */
    {
        redisReply *r = rawr(f, "HGETALL " P "task:%s", id, NULL);
        char after[1024];
        size_t k = 0;
        for (size_t i = 0; i < r->elements; i++)
            k += (size_t)snprintf(after + k, sizeof(after) - k, "%s|", r->element[i]->str);
        freeReplyObject(r);
        assert_string_equal(after, before);
    }
    /* The old owner's claim is gone, the new one's holds. */
    assert_int_equal(mr_jobs_renew(f->t.store, "c1", &m), 0);
    assert_int_equal(mr_jobs_renew(f->t.store, "c2", &m2), 1);
    /* A renewal makes it fresh: not idle for another taker. */
    assert_int_equal(mr_jobs_take_idle(f->t.store, "c3", QD, 300, &m3), 0);
    assert_string_equal(pending_owner(f, QD, m.msg_id), "c2");
    /* Nothing pending at all: 0. */
    assert_int_equal(mr_jobs_take_idle(f->t.store, "c3", QP, 0, &m3), 0);
    /* An entry acked: renew says it is not ours any more. */
    assert_int_equal(mr_jobs_ack(f->t.store, &m2), MR_OK);
    assert_int_equal(mr_jobs_renew(f->t.store, "c2", &m2), 0);
}

/* An entry the idle scan took even though the record's worker died: the
 * idle measure is the stream's, from the last take or renewal. */
static void test_take_idle_measures_from_take(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1];
    struct mr_job_msg m, m2;
    long long t0, until;
    int got;

    NEED_REDIS(f);
    create(f, "download", "alice", "{}", id);
    t0 = mr_clock_mono_ms();
    {
        const char *q[1] = { QD };
        assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c1", q, 1, 100, &m), 1);
    }
    until = t0 + 5000;
    while (!(got = mr_jobs_take_idle(f->t.store, "c2", QD, 250, &m2))) {
        assert_true(mr_clock_mono_ms() < until);
        test_sleep_ms(10);
    }
    assert_true(mr_clock_mono_ms() - t0 >= 250);
    assert_string_equal(m2.task, id);
}

static void test_ack_and_handback(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1];
    const char *q[1] = { QD };
    struct mr_job_msg m, m2;
    long attempt, attempt2;

    NEED_REDIS(f);
    create_take(f, "download", "alice", "c1", id, &m);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 1);
    assert_int_equal(attempt, 1);
    {
        const char *fl[] = { "speed", "1000", "eta_s", "9", "progress", "30", NULL };
        assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", fl), 1);
    }
    /* Not this worker's, or not this attempt: -2. */
    assert_int_equal(mr_task_handback(f->t.store, f->t.conf, &m, attempt, "c2"), -2);
    assert_int_equal(mr_task_handback(f->t.store, f->t.conf, &m, attempt + 1, "c1"), -2);
    assert_int_equal(pending(f, QD), 1);

    assert_int_equal(mr_task_handback(f->t.store, f->t.conf, &m, attempt, "c1"), 1);
    assert_string_equal(hget(f, id, "status"), "pending");
    assert_string_equal(hget(f, id, "attempts"), "0");
    assert_string_equal(hget(f, id, "worker"), "");
    assert_string_equal(hget(f, id, "speed"), "0");
    assert_string_equal(hget(f, id, "eta_s"), "");
    assert_string_equal(hget(f, id, "progress"), "30");
    assert_true(in_open(f, "alice", id));
    /* The old entry acked and deleted, a new one queued. */
    assert_int_equal(pending(f, QD), 0);
    assert_int_equal(raw_ll(f, "XLEN " P QD, NULL, NULL), 1);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c2", q, 1, 100, &m2), 1);
    assert_string_equal(m2.task, id);
    assert_string_not_equal(m2.msg_id, m.msg_id);
    /* The handed-back attempt was not counted. */
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m2, "c2", &attempt2), 1);
    assert_int_equal(attempt2, 1);
    assert_string_equal(hget(f, id, "worker"), "c2");
    /* The old owner is out. */
    assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", NULL), -2);
    /* Handing back a task that ended: 0. */
    assert_int_equal(mr_task_finish(f->t.store, f->t.conf, id, attempt2, "c2", "completed",
                                    NULL), 1);
    assert_int_equal(mr_task_handback(f->t.store, f->t.conf, &m2, attempt2, "c2"), 0);
    assert_int_equal(pending(f, QD), 1);

    /* Ack: nothing pending, nothing left in the stream. */
    assert_int_equal(mr_jobs_ack(f->t.store, &m2), MR_OK);
    assert_int_equal(pending(f, QD), 0);
    assert_int_equal(raw_ll(f, "XLEN " P QD, NULL, NULL), 0);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c2", q, 1, 50, &m2), 0);
    /* Twice: harmless. */
    assert_int_equal(mr_jobs_ack(f->t.store, &m2), MR_OK);
}

static void test_group(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1];
    const char *q[1] = { QD };
    struct mr_job_msg m;

    NEED_REDIS(f);
    assert_int_equal(mr_jobs_group_ensure(f->t.store, QD), MR_OK);
    assert_int_equal(mr_jobs_group_ensure(f->t.store, QD), MR_OK);
    assert_int_equal(groups(f, QD), 1);
    assert_int_equal(raw_ll(f, "XLEN " P QD, NULL, NULL), 0);   /* MKSTREAM */

    /* The stream deleted (FLUSHALL, Redis restarted empty): a take says
     * none and makes the group again. */
    raw(f, "DEL " P QD, NULL, NULL);
    assert_int_equal(groups(f, QD), 0);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c1", q, 1, 50, &m), 0);
    assert_int_equal(groups(f, QD), 1);
    /* An entry added by anyone from then on is delivered. */
    create(f, "download", "alice", "{}", id);
    raw(f, "DEL " P QD, NULL, NULL);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c1", q, 1, 50, &m), 0);
    assert_int_equal(groups(f, QD), 1);
    rawf(f, "XADD " P QD " * task %s", id);
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c1", q, 1, 100, &m), 1);
    assert_string_equal(m.task, id);
    /* The idle scan recovers too. */
    raw(f, "DEL " P QD, NULL, NULL);
    assert_int_equal(mr_jobs_take_idle(f->t.store, "c1", QD, 0, &m), 0);
    assert_int_equal(groups(f, QD), 1);
    /* An entry without a valid task: taken, with no task, to be acked. */
    rawf(f, "XADD " P QD " * task %s", "../../etc");
    assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c1", q, 1, 100, &m), 1);
    assert_string_equal(m.task, "");
    assert_int_equal(mr_jobs_ack(f->t.store, &m), MR_OK);
    assert_int_equal(pending(f, QD), 0);
}

/* ---- result folders ------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void test_remove_dir(void **state)
{
    struct fx *f = *state;
    const char *id = "0123456789abcdef01234567";
    char p[512], outside[256], keep[300], other[256];
    struct stat st;
    FILE *fp;
    char text[16] = "";

    snprintf(outside, sizeof(outside), "%s/outside", f->dir);
    assert_int_equal(mkdir(outside, 0700), 0);
    snprintf(keep, sizeof(keep), "%s/keep.txt", outside);
    write_file(keep, "kept");

    snprintf(p, sizeof(p), "%s/%s", f->dir, id);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/%s/a", f->dir, id);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/%s/a/b", f->dir, id);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/%s/a/b/deep.mp4", f->dir, id);
    write_file(p, "x");
    snprintf(p, sizeof(p), "%s/%s/top.mp4", f->dir, id);
    write_file(p, "y");
    snprintf(p, sizeof(p), "%s/%s/.hidden", f->dir, id);
    write_file(p, "z");
    snprintf(p, sizeof(p), "%s/%s/empty", f->dir, id);
    assert_int_equal(mkdir(p, 0700), 0);
    /* Links out of it, to a folder and to a file, and a dangling one. */
    snprintf(p, sizeof(p), "%s/%s/a/to-dir", f->dir, id);
    assert_int_equal(symlink(outside, p), 0);
    snprintf(p, sizeof(p), "%s/%s/to-file", f->dir, id);
    assert_int_equal(symlink(keep, p), 0);
    snprintf(p, sizeof(p), "%s/%s/dangling", f->dir, id);
    assert_int_equal(symlink("/nonexistent/x", p), 0);
    /* A folder beside it that is not a task's. */
    snprintf(other, sizeof(other), "%s/not-a-task", f->dir);
    assert_int_equal(mkdir(other, 0700), 0);

    assert_int_equal(mr_jobs_remove_dir(f->t.conf, id), MR_OK);
    snprintf(p, sizeof(p), "%s/%s", f->dir, id);
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(errno, ENOENT);
    /* What the links pointed at is still there. */
    assert_int_equal(stat(outside, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    fp = fopen(keep, "r");
    assert_non_null(fp);
    assert_non_null(fgets(text, sizeof(text), fp));
    fclose(fp);
    assert_string_equal(text, "kept");
    assert_int_equal(stat(other, &st), 0);

    /* Not there: fine. */
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, id), MR_OK);
    /* Not a task id: refused, nothing removed. */
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, "not-a-task"), MR_EINVAL);
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, "outside"), MR_EINVAL);
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, ""), MR_EINVAL);
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, ".."), MR_EINVAL);
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, "0123456789ABCDEF01234567"), MR_EINVAL);
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, "0123456789abcdef0123456"), MR_EINVAL);
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, "0123456789abcdef012345678"), MR_EINVAL);
    assert_int_equal(mr_jobs_remove_dir(f->t.conf, "../23456789abcdef01234567"), MR_EINVAL);
    assert_int_equal(stat(other, &st), 0);
    assert_int_equal(stat(keep, &st), 0);
    assert_int_equal(stat(f->dir, &st), 0);
}

static void test_ids_ok(void **state)
{
    (void)state;
    assert_true(mr_task_id_ok("0123456789abcdef01234567", 24));
    assert_false(mr_task_id_ok("0123456789abcdef01234567", 23));
    assert_false(mr_task_id_ok("0123456789abcdeg01234567", 24));
    assert_false(mr_task_id_ok("0123456789abcdeF01234567", 24));
    assert_true(mr_task_ended("completed"));
    assert_true(mr_task_ended("failed"));
    assert_true(mr_task_ended("canceled"));
    assert_false(mr_task_ended("pending"));
    assert_false(mr_task_ended("downloading"));
    assert_false(mr_task_ended(NULL));
    assert_string_equal(mr_jobs_queue("download"), QD);
    assert_string_equal(mr_jobs_queue("process"), QP);
    assert_string_equal(mr_jobs_queue("other"), QD);
}

/* ---- Redis down ---------------------------------------------------------------- */

static void test_redis_down(void **state)
{
    struct fx *f = *state;
    char id[MR_TASK_ID_LEN + 1], id2[MR_TASK_ID_LEN + 1];
    const char *q[1] = { QD };
    const char *fl[] = { "progress", "1", NULL };
    struct mr_job_msg m;
    struct mr_task t, many[1];
    char **ids, *one[1] = { id };
    size_t n;
    long attempt = 0;
    int done;
    bool ex;
    long long until;
    int rc;

    NEED_REDIS(f);
    create_take(f, "download", "alice", "c1", id, &m);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 1);
    redisFree(f->t.raw);
    f->t.raw = NULL;
    test_redis_stop(&f->t.redis);

    /* Every call says so; nothing crashes (the first finds the connection
     * broken, the others find none). */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(mr_task_read(f->t.store, &f->t.arena, id, &t), MR_EUNAVAILABLE);
        assert_int_equal(mr_task_create(f->t.store, f->t.conf, "download", "alice", "{}", id2),
                         MR_EUNAVAILABLE);
        assert_int_equal(mr_task_ids(f->t.store, &f->t.arena, "alice", 10, &ids, &n),
                         MR_EUNAVAILABLE);
        assert_int_equal(n, 0);
        assert_int_equal(mr_task_read_many(f->t.store, &f->t.arena, "alice", one, 1, many),
                         MR_EUNAVAILABLE);
        assert_int_equal(mr_task_cancel(f->t.store, f->t.conf, id, &done), MR_EUNAVAILABLE);
        assert_int_equal(mr_task_delete(f->t.store, id, "alice"), MR_EUNAVAILABLE);
        assert_int_equal(mr_task_exists(f->t.store, id, &ex), MR_EUNAVAILABLE);
        assert_int_equal(mr_jobs_group_ensure(f->t.store, QD), MR_EUNAVAILABLE);
        assert_int_equal(mr_jobs_take(f->t.store, f->t.conf, "c1", q, 1, 50, &m),
                         MR_EUNAVAILABLE);
        assert_int_equal(mr_jobs_take_idle(f->t.store, "c1", QD, 0, &m), MR_EUNAVAILABLE);
        assert_int_equal(mr_jobs_renew(f->t.store, "c1", &m), MR_EUNAVAILABLE);
        assert_int_equal(mr_jobs_ack(f->t.store, &m), MR_EUNAVAILABLE);
        assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt),
                         MR_EUNAVAILABLE);
        assert_int_equal(mr_task_update(f->t.store, id, 1, "c1", fl), MR_EUNAVAILABLE);
        assert_int_equal(mr_task_finish(f->t.store, f->t.conf, id, 1, "c1", "completed", fl),
                         MR_EUNAVAILABLE);
        assert_int_equal(mr_task_handback(f->t.store, f->t.conf, &m, 1, "c1"), MR_EUNAVAILABLE);
        assert_null(mr_store_redis(f->t.store));
        assert_false(mr_store_redis_up(f->t.store));
    }

    /* Back (empty: no persistence): working again once the store retries. */
    assert_int_equal(test_redis_start(&f->t.redis), 0);
    f->t.raw = test_redis_connect(&f->t.redis);
    assert_non_null(f->t.raw);
    until = mr_clock_mono_ms() + 5000;
    while ((rc = mr_task_exists(f->t.store, id, &ex)) == MR_EUNAVAILABLE) {
        assert_true(mr_clock_mono_ms() < until);
        test_sleep_ms(10);
    }
    assert_int_equal(rc, MR_OK);
    assert_false(ex);
    create_take(f, "download", "alice", "c1", id, &m);
    assert_int_equal(mr_task_start(f->t.store, f->t.conf, &m, "c1", &attempt), 1);
    assert_int_equal(mr_task_update(f->t.store, id, attempt, "c1", fl), 1);
    assert_int_equal(mr_task_read(f->t.store, &f->t.arena, id, &t), MR_OK);
    assert_string_equal(mr_task_get(&t, "progress"), "1");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_ok),
        T(test_create),
        T(test_read_and_json),
        T(test_ids_and_read_many),
        T(test_take),
        T(test_start),
        T(test_update),
        T(test_finish),
        T(test_cancel_delete_exists),
        T(test_renew_and_take_idle),
        T(test_take_idle_measures_from_take),
        T(test_ack_and_handback),
        T(test_group),
        T(test_remove_dir),
        T(test_redis_down),
    };
#undef T
    /* As the servers and the worker do: a write to a Redis that went away
     * is an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
