/* jobs.c - media-job tasks and their queues in Redis (jobs.h). */
#include "app/jobs.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <openssl/rand.h>

#include "core/config.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "net/store.h"

#define MAX_ARGS 48

/* ---- small things ------------------------------------------------------------ */

const char *mr_task_get(const struct mr_task *t, const char *field)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->kv[2 * i], field))
            return t->kv[2 * i + 1];
    return NULL;
}

/* "<task>/<name>" -> name, when name is a plain file name. */
static const char *file_name(const char *path)
{
    const char *name = path ? strchr(path, '/') : NULL;
    size_t n;

    if (!name)
        return NULL;
    n = strlen(++name);
    if (!n || n > 255 || name[0] == '.' || strchr(name, '/') || strchr(name, '\\') ||
        mr_str_has_ctl(name, n))
        return NULL;
    return name;
}

size_t mr_task_files(const struct mr_task *t, struct mr_arena *a, const char **names,
                     size_t max)
{
    const char *list = mr_task_get(t, "files");
    const char *one[2] = { mr_task_get(t, "output_file"), mr_task_get(t, "thumbnail_file") };
    struct json_object *arr = list ? json_tokener_parse(list) : NULL;
    size_t n = 0;

    for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) &&
                       i < json_object_array_length(arr) && n < max; i++) {
        const char *name = file_name(json_object_get_string(json_object_array_get_idx(arr, i)));
        if (name && (names[n] = mr_arena_strdup(a, name)))
            n++;
    }
    json_object_put(arr);
    for (size_t i = 0; i < 2 && n < max; i++) {
        const char *name = file_name(one[i]);
        if (name)
            names[n++] = name;
    }
    return n;
}

bool mr_task_id_ok(const char *s, size_t n)
{
    if (n != MR_TASK_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool mr_task_ended(const char *st)
{
    return st && (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "canceled"));
}

const char *mr_jobs_queue(const char *type)
{
    return !strcmp(type, "process") ? "jobs:q:process" : "jobs:q:download";
}

/* A prefixed key from a format. */
static int key(struct mr_store *s, char *buf, size_t len, const char *fmt, const char *a,
               const char *b)
{
    char rel[MR_STORE_KEY_MAX];
    int n = snprintf(rel, sizeof(rel), fmt, a, b);

    if (n < 0 || (size_t)n >= sizeof(rel))
        return MR_ETOOBIG;
    return mr_store_key(s, rel, buf, len) ? MR_ETOOBIG : MR_OK;
}

/* One command from an argv; NULL (and Redis marked down) when it fails.
 * A connection made before Redis restarted fails its first command: then
 * the command is tried once more on a new one at once (mr_store_ping
 * reconnects without waiting out store.retry_ms), rather than every
 * thread answering 503 for a while. */
static redisReply *command(struct mr_store *s, int argc, const char **argv)
{
    redisContext *c = mr_store_redis(s);
    redisReply *r;

    if (!c)
        return NULL;
    r = redisCommandArgv(c, argc, argv, NULL);
    if (!r) {
        /* Only a connection that was closed under it: after a timeout the
         * command may have run, and a task must not be queued twice. */
        bool closed = c->err == REDIS_ERR_EOF ||
                      (c->err == REDIS_ERR_IO && (strstr(c->errstr, "Broken pipe") ||
                                                  strstr(c->errstr, "reset by peer")));
        mr_store_lost(s);
        if (closed && mr_store_ping(s) == MR_OK && (c = mr_store_redis(s)) &&
            !(r = redisCommandArgv(c, argc, argv, NULL)))
            mr_store_lost(s);
    }
    return r;
}

/* EVAL script with keys and args; the reply, or NULL. */
static redisReply *eval(struct mr_store *s, const char *script, int nkeys,
                        const char *const *keys, int nargs, const char *const *args)
{
    const char *argv[MAX_ARGS + 3];
    char nk[8];
    int n = 0;

    if (nkeys + nargs > MAX_ARGS)
        return NULL;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[n++] = "EVAL";
    argv[n++] = script;
    argv[n++] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[n++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[n++] = args[i];
    return command(s, n, argv);
}

/* An integer reply's value into *v: MR_OK, or MR_EUNAVAILABLE (logged). */
static int int_reply(redisReply *r, const char *what, long long *v)
{
    int rc = MR_OK;

    if (!r)
        return MR_EUNAVAILABLE;
    if (r->type == REDIS_REPLY_INTEGER) {
        *v = r->integer;
    } else {
        mr_warn("jobs: %s: %s", what, r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        rc = MR_EUNAVAILABLE;
    }
    freeReplyObject(r);
    return rc;
}

/* Lua: the time in ms, from Redis, so that every host agrees. */
#define LUA_NOW \
    "local t = redis.call('TIME')\n" \
    "local now = string.format('%d', tonumber(t[1]) * 1000 + " \
    "math.floor(tonumber(t[2]) / 1000))\n"

/* ---- queues ------------------------------------------------------------------ */

int mr_jobs_group_ensure(struct mr_store *s, const char *queue)
{
    char k[MR_STORE_KEY_MAX];
    const char *argv[] = { "XGROUP", "CREATE", k, MR_JOBS_GROUP, "0", "MKSTREAM" };
    redisReply *r;
    int rc = MR_OK;

    if (key(s, k, sizeof(k), "%s%s", queue, ""))
        return MR_EINTERNAL;
    if (!(r = command(s, 6, argv)))
        return MR_EUNAVAILABLE;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9)) {
        mr_warn("jobs: XGROUP CREATE %s: %s", queue, r->str);
        rc = MR_EUNAVAILABLE;
    }
    freeReplyObject(r);
    return rc;
}

/* KEYS: task, tasks:{user}, tasks-all, tasks-open:{user}, queue.
 * ARGV: id, type, user, request, max queued, queue max len.  The queue's
 * consumer group is made (from its start) unless it exists: in the same
 * step, so a queued task never waits on a stream without its group. */
static const char lua_create[] =
    LUA_NOW
    "if redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[5]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'type', ARGV[2], 'user', ARGV[3],\n"
    "  'status', 'pending', 'progress', '0', 'bytes', '0', 'total_bytes', '0',\n"
    "  'speed', '0', 'created_at', now, 'attempts', '0', 'rev', '1', 'request', ARGV[4])\n"
    "redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
    "redis.call('ZADD', KEYS[3], now, ARGV[1])\n"
    "redis.call('SADD', KEYS[4], ARGV[1])\n"
    "pcall(redis.call, 'XGROUP', 'CREATE', KEYS[5], '" MR_JOBS_GROUP "', '0', 'MKSTREAM')\n"
    "redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'task', ARGV[1])\n"
    "return 1\n";

int mr_task_create(struct mr_store *s, const struct mr_conf *c, const char *type,
                   const char *user, const char *request_json, char id[MR_TASK_ID_LEN + 1])
{
    char k[5][MR_STORE_KEY_MAX], maxq[24], maxlen[24];
    const char *keys[5] = { k[0], k[1], k[2], k[3], k[4] };
    unsigned char raw[MR_TASK_ID_LEN / 2];
    long long v = 0;
    int rc;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return MR_EINTERNAL;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
    if (key(s, k[0], sizeof(k[0]), "task:%s%s", id, "") ||
        key(s, k[1], sizeof(k[1]), "tasks:%s%s", user, "") ||
        key(s, k[2], sizeof(k[2]), "tasks-all%s%s", "", "") ||
        key(s, k[3], sizeof(k[3]), "tasks-open:%s%s", user, "") ||
        key(s, k[4], sizeof(k[4]), "%s%s", mr_jobs_queue(type), ""))
        return MR_ETOOBIG;
    snprintf(maxq, sizeof(maxq), "%ld", c->jobs.max_queued_per_user);
    snprintf(maxlen, sizeof(maxlen), "%ld", c->jobs.queue_max_len);
    {
        const char *args[] = { id, type, user, request_json, maxq, maxlen };
        if ((rc = int_reply(eval(s, lua_create, 5, keys, 6, args), "create", &v)))
            return rc;
    }
    return v == 1 ? MR_OK : MR_ELIMIT;
}

/* ---- reading ------------------------------------------------------------------ */

/* An array reply of field, value, ... into *t. */
static int take_pairs(struct mr_arena *a, redisReply *r, struct mr_task *t)
{
    t->n = 0;
    t->kv = NULL;
    if (r->type != REDIS_REPLY_ARRAY)
        return MR_EUNAVAILABLE;
    if (!r->elements)
        return MR_OK;
    if (!(t->kv = mr_arena_calloc(a, r->elements + 1, sizeof(char *))))
        return MR_ENOMEM;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        t->kv[2 * t->n] = mr_arena_strndup(a, f->str, f->len);
        t->kv[2 * t->n + 1] = mr_arena_strndup(a, v->str, v->len);
        if (!t->kv[2 * t->n] || !t->kv[2 * t->n + 1])
            return MR_ENOMEM;
        t->n++;
    }
    return MR_OK;
}

int mr_task_read(struct mr_store *s, struct mr_arena *a, const char *id, struct mr_task *t)
{
    char k[MR_STORE_KEY_MAX];
    const char *argv[] = { "HGETALL", k };
    redisReply *r;
    int rc;

    t->n = 0;
    if (key(s, k, sizeof(k), "task:%s%s", id, ""))
        return MR_ETOOBIG;
    if (!(r = command(s, 2, argv)))
        return MR_EUNAVAILABLE;
    rc = take_pairs(a, r, t);
    freeReplyObject(r);
    if (!rc && !t->n)
        rc = MR_ENOTFOUND;
    return rc;
}

int mr_task_ids(struct mr_store *s, struct mr_arena *a, const char *user, size_t max,
                char ***ids, size_t *n)
{
    char k[MR_STORE_KEY_MAX], stop[24];
    const char *argv[] = { "ZRANGE", k, "0", stop, "REV" };
    redisReply *r;

    *ids = NULL;
    *n = 0;
    if (user ? key(s, k, sizeof(k), "tasks:%s%s", user, "")
             : key(s, k, sizeof(k), "tasks-all%s%s", "", ""))
        return MR_ETOOBIG;
    snprintf(stop, sizeof(stop), "%zu", max ? max - 1 : 0);
    if (!(r = command(s, 5, argv)))
        return MR_EUNAVAILABLE;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return MR_EUNAVAILABLE;
    }
    if (!(*ids = mr_arena_calloc(a, r->elements + 1, sizeof(char *)))) {
        freeReplyObject(r);
        return MR_ENOMEM;
    }
    for (size_t i = 0; i < r->elements && i < max; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && mr_task_id_ok(e->str, e->len))
            (*ids)[(*n)++] = mr_arena_strndup(a, e->str, e->len);
    }
    freeReplyObject(r);
    return MR_OK;
}

int mr_task_read_many(struct mr_store *s, struct mr_arena *a, const char *user,
                      char **ids, size_t n, struct mr_task *out)
{
    redisContext *c = mr_store_redis(s);
    int rc = MR_OK;

    if (!c)
        return MR_EUNAVAILABLE;
    /* Every key first: a pipeline left half sent would put the
     * connection out of step. */
    for (size_t i = 0; i < n; i++) {
        char k[MR_STORE_KEY_MAX];
        if (key(s, k, sizeof(k), "task:%s%s", ids[i], ""))
            return MR_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        char k[MR_STORE_KEY_MAX];
        key(s, k, sizeof(k), "task:%s%s", ids[i], "");
        redisAppendCommand(c, "HGETALL %s", k);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            mr_store_lost(s);
            return MR_EUNAVAILABLE;
        }
        if (!rc)
            rc = take_pairs(a, r, &out[i]);
        freeReplyObject(r);
    }
    /* Records that expired leave their index entries behind: drop them. */
    for (size_t i = 0; !rc && i < n; i++)
        if (!out[i].n)
            mr_task_delete(s, ids[i], user);
    return rc;
}

/* ---- the API's view -------------------------------------------------------------- */

static void put_num(struct json_object *o, const char *k, const char *v)
{
    char *end;
    long long n;

    if (!v || !*v) {
        json_object_object_add(o, k, NULL);
        return;
    }
    n = strtoll(v, &end, 10);
    if (*end == '.') {
        json_object_object_add(o, k, json_object_new_double(strtod(v, NULL)));
        return;
    }
    json_object_object_add(o, k, *end ? NULL : json_object_new_int64(n));
}

/* A time field (ms in Redis) as Unix seconds with milliseconds. */
static void put_time(struct json_object *o, const char *k, const char *v)
{
    char *end;
    long long ms;

    if (!v || !*v || (ms = strtoll(v, &end, 10)) <= 0 || *end) {
        json_object_object_add(o, k, NULL);
        return;
    }
    {
        char text[32];
        snprintf(text, sizeof(text), "%lld.%03lld", ms / 1000, ms % 1000);
        json_object_object_add(o, k, json_object_new_double_s((double)ms / 1000.0, text));
    }
}

static void put_str(struct json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v && *v ? json_object_new_string(v) : NULL);
}

/* A JSON field stored by the worker or the API, copied in as it is. */
static void put_json(struct json_object *o, const char *k, const char *v)
{
    struct json_object *j = v && *v ? json_tokener_parse(v) : NULL;

    json_object_object_add(o, k, j);
}

struct json_object *mr_task_json(const struct mr_task *t)
{
    struct json_object *o = json_object_new_object(), *req = NULL;
    const char *type = mr_task_get(t, "type");
    const char *v;

    if (!o)
        return NULL;
    put_str(o, "task_id", mr_task_get(t, "id"));
    put_str(o, "type", type);
    put_str(o, "status", mr_task_get(t, "status"));
    put_num(o, "progress", mr_task_get(t, "progress"));
    put_num(o, "bytes", mr_task_get(t, "bytes"));
    put_num(o, "total_bytes", mr_task_get(t, "total_bytes"));
    put_num(o, "speed", mr_task_get(t, "speed"));
    put_num(o, "eta_s", mr_task_get(t, "eta_s"));
    put_time(o, "created_at", mr_task_get(t, "created_at"));
    put_time(o, "started_at", mr_task_get(t, "started_at"));
    put_time(o, "completed_at", mr_task_get(t, "completed_at"));
    put_num(o, "attempts", mr_task_get(t, "attempts"));
    put_str(o, "error", mr_task_get(t, "error"));
    put_str(o, "title", mr_task_get(t, "title"));
    if ((v = mr_task_get(t, "request")) && (req = json_tokener_parse(v))) {
        json_object_object_foreach(req, k, val) {
            /* The request as asked: url and format for a download, the
             * input and operations for a process; never a path, nor a
             * media item's upstream (its URL, the headers it needs). */
            if (strcmp(k, "input_name") && strcmp(k, "input_url") &&
                strcmp(k, "input_headers") && strcmp(k, "input_title"))
                json_object_object_add(o, k, json_object_get(val));
        }
        json_object_put(req);
    }
    if (type && !strcmp(type, "process")) {
        put_str(o, "output_file", mr_task_get(t, "output_file"));
        put_str(o, "thumbnail_file", mr_task_get(t, "thumbnail_file"));
    } else {
        put_json(o, "downloaded_files", mr_task_get(t, "files"));
    }
    return o;
}

/* ---- cancel and delete ------------------------------------------------------------ */

/* KEYS[2] of the scripts that end a task: the prefix of its owner's open
 * set, whose name the script completes with the record's user, so that
 * ending a task is one round trip.  (The set's name is a key name made in
 * the script: fine for one Redis, not for a Redis Cluster.) */
static int open_prefix(struct mr_store *s, char *buf, size_t len)
{
    return key(s, buf, len, "tasks-open:%s%s", "", "");
}

/* Lua: takes the task out of its owner's open set. */
#define LUA_UNOPEN \
    "redis.call('SREM', KEYS[2] .. redis.call('HGET', KEYS[1], 'user'),\n" \
    "  redis.call('HGET', KEYS[1], 'id'))\n"

/* KEYS: task, the tasks-open: prefix.  ARGV: keep (s). */
static const char lua_cancel[] =
    LUA_NOW
    "local st = redis.call('HGET', KEYS[1], 'status')\n"
    "if not st then return -1 end\n"
    "if st == 'completed' or st == 'failed' or st == 'canceled' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'status', 'canceled', 'completed_at', now,\n"
    "  'error', 'canceled', 'speed', '0', 'eta_s', '')\n"
    "redis.call('HINCRBY', KEYS[1], 'rev', 1)\n"
    LUA_UNOPEN
    "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
    "return 1\n";

int mr_task_cancel(struct mr_store *s, const struct mr_conf *c, const char *id, int *done)
{
    char k[2][MR_STORE_KEY_MAX], keep[24];
    const char *keys[2] = { k[0], k[1] }, *args[1] = { keep };
    long long v = 0;
    int rc;

    *done = 0;
    if (key(s, k[0], sizeof(k[0]), "task:%s%s", id, ""))
        return MR_ETOOBIG;
    if ((rc = open_prefix(s, k[1], sizeof(k[1]))))
        return rc;
    snprintf(keep, sizeof(keep), "%ld", c->jobs.keep_s);
    if ((rc = int_reply(eval(s, lua_cancel, 2, keys, 1, args), "cancel", &v)))
        return rc;
    if (v < 0)
        return MR_ENOTFOUND;
    *done = (int)v;
    return MR_OK;
}

int mr_task_delete(struct mr_store *s, const char *id, const char *user)
{
    char k[4][MR_STORE_KEY_MAX];
    redisContext *c = mr_store_redis(s);
    int rc = MR_OK;

    if (!c)
        return MR_EUNAVAILABLE;
    if (key(s, k[0], sizeof(k[0]), "task:%s%s", id, "") ||
        key(s, k[1], sizeof(k[1]), "tasks-all%s%s", "", ""))
        return MR_ETOOBIG;
    if (user && (key(s, k[2], sizeof(k[2]), "tasks:%s%s", user, "") ||
                 key(s, k[3], sizeof(k[3]), "tasks-open:%s%s", user, "")))
        return MR_ETOOBIG;
    redisAppendCommand(c, "DEL %s", k[0]);
    redisAppendCommand(c, "ZREM %s %s", k[1], id);
    if (user) {
        redisAppendCommand(c, "ZREM %s %s", k[2], id);
        redisAppendCommand(c, "SREM %s %s", k[3], id);
    }
    for (int i = 0; i < (user ? 4 : 2); i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            mr_store_lost(s);
            return MR_EUNAVAILABLE;
        }
        if (r->type == REDIS_REPLY_ERROR)
            rc = MR_EUNAVAILABLE;
        freeReplyObject(r);
    }
    return rc;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int mr_jobs_remove_dir(const struct mr_conf *c, const char *id)
{
    char path[4096];
    int n;

    if (!mr_task_id_ok(id, strlen(id)))
        return MR_EINVAL;
    n = snprintf(path, sizeof(path), "%s/%s", c->jobs.dir, id);
    if (n < 0 || (size_t)n >= sizeof(path))
        return MR_ETOOBIG;
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT) {
        mr_warn("jobs: cannot remove %s: %s", path, strerror(errno));
        return MR_EINTERNAL;
    }
    return MR_OK;
}

int mr_task_exists(struct mr_store *s, const char *id, bool *exists)
{
    char k[MR_STORE_KEY_MAX];
    const char *argv[] = { "EXISTS", k };
    long long v = 0;
    int rc;

    *exists = true;
    if (key(s, k, sizeof(k), "task:%s%s", id, ""))
        return MR_ETOOBIG;
    if ((rc = int_reply(command(s, 2, argv), "exists", &v)))
        return rc;
    *exists = v > 0;
    return MR_OK;
}

/* ---- the worker's side ------------------------------------------------------------ */

/* An XREADGROUP or XAUTOCLAIM entry [id, [field, value, ...]] into *m. */
static bool take_entry(redisReply *e, const char *queue, struct mr_job_msg *m)
{
    redisReply *f;

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len >= sizeof(m->msg_id))
        return false;
    memset(m, 0, sizeof(*m));
    snprintf(m->queue, sizeof(m->queue), "%s", queue);
    memcpy(m->msg_id, e->element[0]->str, e->element[0]->len);
    f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return true;     /* deleted meanwhile: acked without a task */
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && !strcmp(k->str, "task") &&
            v->type == REDIS_REPLY_STRING && mr_task_id_ok(v->str, v->len))
            memcpy(m->task, v->str, v->len);
    }
    return true;
}

/* The queue a prefixed stream key names. */
static const char *queue_of(struct mr_store *s, const char *k, size_t n)
{
    static const char *const names[] = { "jobs:q:download", "jobs:q:process" };
    char full[MR_STORE_KEY_MAX];

    for (size_t i = 0; i < 2; i++)
        if (!key(s, full, sizeof(full), "%s%s", names[i], "") && strlen(full) == n &&
            !memcmp(full, k, n))
            return names[i];
    return NULL;
}

int mr_jobs_take(struct mr_store *s, const struct mr_conf *c, const char *consumer, const char *const *queues,
                 size_t nqueues, long block_ms, struct mr_job_msg *m)
{
    char k[2][MR_STORE_KEY_MAX], block[24];
    const char *argv[16];
    redisReply *r;
    int n = 0, got = 0;

    if (nqueues < 1 || nqueues > 2)
        return MR_EINTERNAL;
    snprintf(block, sizeof(block), "%ld", block_ms);
    argv[n++] = "XREADGROUP";
    argv[n++] = "GROUP";
    argv[n++] = MR_JOBS_GROUP;
    argv[n++] = consumer;
    argv[n++] = "COUNT";
    argv[n++] = "1";
    argv[n++] = "BLOCK";
    argv[n++] = block;
    argv[n++] = "STREAMS";
    for (size_t i = 0; i < nqueues; i++) {
        if (key(s, k[i], sizeof(k[i]), "%s%s", queues[i], ""))
            return MR_ETOOBIG;
        argv[n++] = k[i];
    }
    for (size_t i = 0; i < nqueues; i++)
        argv[n++] = ">";
    {
        /* The wait is the command's: the store's timeout on top of it. */
        redisContext *rc = mr_store_redis(s);
        long long ms = block_ms + c->store.timeout_ms;
        struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
        struct timeval back = { (time_t)(c->store.timeout_ms / 1000),
                                (suseconds_t)(c->store.timeout_ms % 1000) * 1000 };
        if (!rc)
            return MR_EUNAVAILABLE;
        redisSetTimeout(rc, tv);
        r = command(s, n, argv);
        if (r)
            redisSetTimeout(rc, back);
        if (!r)
            return MR_EUNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* NOGROUP: the stream was deleted (FLUSHALL, a Redis without its
         * data after a restart): made again. */
        if (!strncmp(r->str, "NOGROUP", 7))
            for (size_t i = 0; i < nqueues; i++)
                mr_jobs_group_ensure(s, queues[i]);
        else
            mr_warn("jobs: XREADGROUP: %s", r->str);
        freeReplyObject(r);
        return 0;
    }
    /* [[stream, [[id, [f, v]]]], ...] */
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !got; i++) {
        redisReply *st = r->element[i];
        const char *q;
        if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 ||
            st->element[0]->type != REDIS_REPLY_STRING ||
            !(q = queue_of(s, st->element[0]->str, st->element[0]->len)))
            continue;
        if (st->element[1]->type == REDIS_REPLY_ARRAY && st->element[1]->elements)
            got = take_entry(st->element[1]->element[0], q, m);
    }
    freeReplyObject(r);
    return got;
}

int mr_jobs_take_idle(struct mr_store *s, const char *consumer, const char *queue,
                      long idle_ms, struct mr_job_msg *m)
{
    char k[MR_STORE_KEY_MAX], idle[24];
    const char *argv[] = { "XAUTOCLAIM", k, MR_JOBS_GROUP, consumer, idle, "0-0",
                           "COUNT", "1" };
    redisReply *r;
    int got = 0;

    if (key(s, k, sizeof(k), "%s%s", queue, ""))
        return MR_ETOOBIG;
    snprintf(idle, sizeof(idle), "%ld", idle_ms);
    if (!(r = command(s, 8, argv)))
        return MR_EUNAVAILABLE;
    if (r->type == REDIS_REPLY_ERROR) {
        if (!strncmp(r->str, "NOGROUP", 7))
            mr_jobs_group_ensure(s, queue);
        else
            mr_warn("jobs: XAUTOCLAIM: %s", r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
               r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements) {
        got = take_entry(r->element[1]->element[0], queue, m);
    }
    freeReplyObject(r);
    return got;
}

/* KEYS: queue.  ARGV: entry id, consumer. */
static const char lua_renew[] =
    "local p = redis.call('XPENDING', KEYS[1], '" MR_JOBS_GROUP "', ARGV[1], ARGV[1], 1)\n"
    "if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end\n"
    "redis.call('XCLAIM', KEYS[1], '" MR_JOBS_GROUP "', ARGV[2], 0, ARGV[1], 'JUSTID')\n"
    "return 1\n";

int mr_jobs_renew(struct mr_store *s, const char *consumer, const struct mr_job_msg *m)
{
    char k[MR_STORE_KEY_MAX];
    const char *keys[1] = { k }, *args[2] = { m->msg_id, consumer };
    long long v = 0;
    int rc;

    if (key(s, k, sizeof(k), "%s%s", m->queue, ""))
        return MR_ETOOBIG;
    if ((rc = int_reply(eval(s, lua_renew, 1, keys, 2, args), "renew", &v)))
        return rc;
    return v == 1;
}

int mr_jobs_ack(struct mr_store *s, const struct mr_job_msg *m)
{
    char k[MR_STORE_KEY_MAX];
    const char *ack[] = { "XACK", k, MR_JOBS_GROUP, m->msg_id };
    const char *del[] = { "XDEL", k, m->msg_id };
    redisReply *r;

    if (key(s, k, sizeof(k), "%s%s", m->queue, ""))
        return MR_ETOOBIG;
    if (!(r = command(s, 4, ack)))
        return MR_EUNAVAILABLE;
    freeReplyObject(r);
    if (!(r = command(s, 3, del)))
        return MR_EUNAVAILABLE;
    freeReplyObject(r);
    return MR_OK;
}

/* KEYS: task, the tasks-open: prefix.  ARGV: consumer, max attempts, running
 * status, keep (s).  {1, attempt} started; {0} ended; {-1} gone; {2}
 * failed for too many attempts. */
static const char lua_start[] =
    LUA_NOW
    "local st = redis.call('HGET', KEYS[1], 'status')\n"
    "if not st then return {-1} end\n"
    "if st == 'completed' or st == 'failed' or st == 'canceled' then return {0} end\n"
    "local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)\n"
    "if n > tonumber(ARGV[2]) then\n"
    "  redis.call('HSET', KEYS[1], 'status', 'failed', 'completed_at', now,\n"
    "    'attempts', tostring(n - 1), 'speed', '0', 'eta_s', '',\n"
    "    'error', 'the workers running it stopped ' .. tostring(n - 1) ..\n"
    "    ' times (jobs.max_attempts)')\n"
    "  redis.call('HINCRBY', KEYS[1], 'rev', 1)\n"
    "  " LUA_UNOPEN
    "  redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
    "  return {2}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'status', ARGV[3], 'worker', ARGV[1])\n"
    "if not redis.call('HGET', KEYS[1], 'started_at') then\n"
    "  redis.call('HSET', KEYS[1], 'started_at', now)\n"
    "end\n"
    "redis.call('HINCRBY', KEYS[1], 'rev', 1)\n"
    "return {1, n}\n";

int mr_task_start(struct mr_store *s, const struct mr_conf *c, const struct mr_job_msg *m,
                  const char *consumer, long *attempt)
{
    char k[2][MR_STORE_KEY_MAX], maxa[24], keep[24];
    const char *keys[2] = { k[0], k[1] };
    const char *running = strstr(m->queue, "process") ? "processing" : "downloading";
    const char *args[4] = { consumer, maxa, running, keep };
    redisReply *r;
    int rc;

    *attempt = 0;
    if (key(s, k[0], sizeof(k[0]), "task:%s%s", m->task, ""))
        return MR_ETOOBIG;
    if ((rc = open_prefix(s, k[1], sizeof(k[1]))))
        return rc;
    snprintf(maxa, sizeof(maxa), "%ld", c->jobs.max_attempts);
    snprintf(keep, sizeof(keep), "%ld", c->jobs.keep_s);
    if (!(r = eval(s, lua_start, 2, keys, 4, args)))
        return MR_EUNAVAILABLE;
    rc = MR_EUNAVAILABLE;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        long long v = r->element[0]->integer;
        rc = v == -1 ? MR_ENOTFOUND : (int)v;
        if (v == 1 && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_INTEGER)
            *attempt = (long)r->element[1]->integer;
    } else {
        mr_warn("jobs: start: %s", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    }
    freeReplyObject(r);
    return rc;
}

/* The guard of every change a worker makes: the record is there, running,
 * on this attempt, by this worker.  ARGV[1] attempt, ARGV[2] consumer. */
#define LUA_GUARD \
    "local st = redis.call('HGET', KEYS[1], 'status')\n" \
    "if not st then return -1 end\n" \
    "if st ~= 'downloading' and st ~= 'processing' then return 0 end\n" \
    "if redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[1] or\n" \
    "   redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then return -2 end\n"

/* Sets ARGV[first..] as field, value pairs; progress never goes down. */
#define LUA_SET_PAIRS(first) \
    "for i = " #first ", #ARGV - 1, 2 do\n" \
    "  local v = ARGV[i + 1]\n" \
    "  if ARGV[i] == 'progress' then\n" \
    "    local old = tonumber(redis.call('HGET', KEYS[1], 'progress') or '0') or 0\n" \
    "    if (tonumber(v) or 0) < old then v = tostring(old) end\n" \
    "  end\n" \
    "  redis.call('HSET', KEYS[1], ARGV[i], v)\n" \
    "end\n"

static const char lua_update[] =
    LUA_GUARD
    LUA_SET_PAIRS(3)
    "if #ARGV > 2 then redis.call('HINCRBY', KEYS[1], 'rev', 1) end\n"
    "return 1\n";

/* KEYS: task, the tasks-open: prefix.  ARGV: attempt, consumer, status, keep,
 * pairs. */
static const char lua_finish[] =
    LUA_NOW
    LUA_GUARD
    LUA_SET_PAIRS(5)
    "redis.call('HSET', KEYS[1], 'status', ARGV[3], 'completed_at', now,\n"
    "  'speed', '0', 'eta_s', '')\n"
    "redis.call('HINCRBY', KEYS[1], 'rev', 1)\n"
    LUA_UNOPEN
    "redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
    "return 1\n";

static int change(struct mr_store *s, const char *script, const char *id, const char *open,
                  const char *const *head, int nhead, const char *const *fields)
{
    char k[MR_STORE_KEY_MAX];
    const char *keys[2] = { k, open }, *args[MAX_ARGS];
    long long v = 0;
    int n = 0, rc;

    if (key(s, k, sizeof(k), "task:%s%s", id, ""))
        return MR_ETOOBIG;
    for (int i = 0; i < nhead; i++)
        args[n++] = head[i];
    for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
        if (n + 2 > MAX_ARGS - 2)
            return MR_EINTERNAL;
        args[n++] = fields[i];
        args[n++] = fields[i + 1];
    }
    if ((rc = int_reply(eval(s, script, open ? 2 : 1, keys, n, args), "update", &v)))
        return rc;
    return v == -1 ? MR_ENOTFOUND : (int)v;
}

int mr_task_update(struct mr_store *s, const char *id, long attempt, const char *consumer,
                   const char *const *fields)
{
    char at[24];
    const char *head[2] = { at, consumer };

    snprintf(at, sizeof(at), "%ld", attempt);
    return change(s, lua_update, id, NULL, head, 2, fields);
}

int mr_task_finish(struct mr_store *s, const struct mr_conf *c, const char *id,
                   long attempt, const char *consumer, const char *status,
                   const char *const *fields)
{
    char at[24], keep[24], open[MR_STORE_KEY_MAX];
    const char *head[4] = { at, consumer, status, keep };
    int rc;

    if ((rc = open_prefix(s, open, sizeof(open))))
        return rc;
    snprintf(at, sizeof(at), "%ld", attempt);
    snprintf(keep, sizeof(keep), "%ld", c->jobs.keep_s);
    return change(s, lua_finish, id, open, head, 4, fields);
}

/* KEYS: task, queue.  ARGV: attempt, consumer, entry id, max len, task id. */
static const char lua_handback[] =
    LUA_GUARD
    "redis.call('HSET', KEYS[1], 'status', 'pending', 'worker', '', 'speed', '0',\n"
    "  'eta_s', '')\n"
    "redis.call('HINCRBY', KEYS[1], 'attempts', -1)\n"
    "redis.call('HINCRBY', KEYS[1], 'rev', 1)\n"
    "redis.call('XACK', KEYS[2], '" MR_JOBS_GROUP "', ARGV[3])\n"
    "redis.call('XDEL', KEYS[2], ARGV[3])\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'task', ARGV[5])\n"
    "return 1\n";

int mr_task_handback(struct mr_store *s, const struct mr_conf *c, const struct mr_job_msg *m,
                     long attempt, const char *consumer)
{
    char k[2][MR_STORE_KEY_MAX], at[24], maxlen[24];
    const char *keys[2] = { k[0], k[1] };
    const char *args[5] = { at, consumer, m->msg_id, maxlen, m->task };
    long long v = 0;
    int rc;

    if (key(s, k[0], sizeof(k[0]), "task:%s%s", m->task, "") ||
        key(s, k[1], sizeof(k[1]), "%s%s", m->queue, ""))
        return MR_ETOOBIG;
    snprintf(at, sizeof(at), "%ld", attempt);
    snprintf(maxlen, sizeof(maxlen), "%ld", c->jobs.queue_max_len);
    if ((rc = int_reply(eval(s, lua_handback, 2, keys, 5, args), "handback", &v)))
        return rc;
    return v == -1 ? MR_ENOTFOUND : (int)v;
}
