/* store.c - hiredis per thread, falling back to the process LRU. */
#include "net/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/rand.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/lru.h"

struct mr_store {
    redisContext *rc;
    struct mr_lru *lru;
    const char *addr;          /* "unix:/path", "host:port" or "" */
    const char *prefix;
    long timeout_ms;
    long retry_ms;
    long long next_try_ms;     /* no reconnect before this (monotonic) */
    bool up;
    bool was_up;               /* for logging transitions once */
    char err[128];
};

struct mr_store *mr_store_new(const struct mr_conf *conf, struct mr_lru *fallback)
{
    struct mr_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->lru = fallback;
    s->addr = conf->redis;
    s->prefix = conf->key_prefix;
    s->timeout_ms = conf->store.timeout_ms;
    s->retry_ms = conf->store.retry_ms;
    s->was_up = true;
    return s;
}

void mr_store_free(struct mr_store *s)
{
    if (!s)
        return;
    if (s->rc)
        redisFree(s->rc);
    free(s);
}

bool mr_store_redis_up(const struct mr_store *s)
{
    return s->up;
}

const char *mr_store_last_error(const struct mr_store *s)
{
    return s->err;
}

static void mark_down(struct mr_store *s, const char *why)
{
    /* `why` may be the context's own errstr: copy it before the free. */
    snprintf(s->err, sizeof(s->err), "%s", why);
    if (s->rc) {
        redisFree(s->rc);
        s->rc = NULL;
    }
    s->up = false;
    s->next_try_ms = mr_clock_mono_ms() + s->retry_ms;
    if (s->was_up) {
        mr_warn("redis %s unreachable (%s): using the in-process cache", s->addr, s->err);
        s->was_up = false;
    }
}

/* A live connection, or NULL while Redis is down. */
static redisContext *conn(struct mr_store *s)
{
    struct timeval tv;
    redisContext *c;

    if (s->rc)
        return s->rc;
    if (!s->addr[0] || mr_clock_mono_ms() < s->next_try_ms) {
        if (!s->addr[0])
            snprintf(s->err, sizeof(s->err), "no redis configured");
        return NULL;
    }
    tv.tv_sec = s->timeout_ms / 1000;
    tv.tv_usec = (s->timeout_ms % 1000) * 1000;
    if (!strncmp(s->addr, "unix:", 5)) {
        c = redisConnectUnixWithTimeout(s->addr + 5, tv);
    } else {
        char host[256];
        const char *colon = strrchr(s->addr, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 6379;
        size_t hl = colon ? (size_t)(colon - s->addr) : strlen(s->addr);
        if (hl >= sizeof(host))
            hl = sizeof(host) - 1;
        memcpy(host, s->addr, hl);
        host[hl] = '\0';
        c = redisConnectWithTimeout(host, (int)port, tv);
    }
    if (!c) {
        mark_down(s, "out of memory");
        return NULL;
    }
    if (c->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", c->errstr);
        redisFree(c);
        mark_down(s, why);
        return NULL;
    }
    redisSetTimeout(c, tv);
    s->rc = c;
    s->up = true;
    s->err[0] = '\0';
    if (!s->was_up) {
        mr_info("redis %s reachable again", s->addr);
        s->was_up = true;
    }
    return c;
}

/* Runs a command; NULL (and Redis marked down) on a connection failure.  A
 * Redis error reply is returned as a reply, for the caller to judge. */
static redisReply *command(struct mr_store *s, const char *fmt, ...)
{
    redisContext *c = conn(s);
    redisReply *r;
    va_list ap;

    if (!c)
        return NULL;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        mark_down(s, c->errstr[0] ? c->errstr : "connection lost");
        return NULL;
    }
    return r;
}

static int full_key(const struct mr_store *s, const char *key, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s%s", s->prefix, key);
    return n < 0 || (size_t)n >= len ? MR_ETOOBIG : MR_OK;
}

int mr_store_ping(struct mr_store *s)
{
    bool had_conn = s->rc != NULL;
    redisReply *r;
    int rc;

    /* The health check asks now rather than waiting out the retry
     * interval: it is what operators watch.  A connection made before Redis
     * restarted fails the first command on it: then ask again on a new one,
     * or a thread that slept through the restart says "down" once more. */
    if (!s->rc)
        s->next_try_ms = 0;
    r = command(s, "PING");
    if (!r && had_conn) {
        s->next_try_ms = 0;
        r = command(s, "PING");
    }
    if (!r)
        return MR_EUNAVAILABLE;
    rc = r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG") ? MR_OK : MR_EUNAVAILABLE;
    freeReplyObject(r);
    return rc;
}

int mr_store_get(struct mr_store *s, struct mr_arena *a, const char *key, struct mr_str *out)
{
    char k[MR_STORE_KEY_MAX];
    redisReply *r;
    int rc;

    if ((rc = full_key(s, key, k, sizeof(k))))
        return rc;
    r = command(s, "GET %s", k);
    if (!r)
        return mr_lru_get(s->lru, k, a, out);
    if (r->type == REDIS_REPLY_STRING) {
        char *v = mr_arena_strndup(a, r->str, r->len);
        rc = v ? MR_OK : MR_ENOMEM;
        if (v)
            *out = (struct mr_str){ v, r->len };
    } else if (r->type == REDIS_REPLY_NIL) {
        rc = MR_ENOTFOUND;
    } else {
        rc = MR_EINTERNAL;
    }
    freeReplyObject(r);
    return rc;
}

static int set(struct mr_store *s, const char *key, const void *val, size_t len,
               long ttl_ms, bool nx)
{
    char k[MR_STORE_KEY_MAX];
    redisReply *r;
    int rc;

    if ((rc = full_key(s, key, k, sizeof(k))))
        return rc;
    if (ttl_ms > 0)
        r = command(s, nx ? "SET %s %b PX %ld NX" : "SET %s %b PX %ld", k, val, len, ttl_ms);
    else
        r = command(s, nx ? "SET %s %b NX" : "SET %s %b", k, val, len);
    if (!r)
        return mr_lru_set(s->lru, k, val, len, ttl_ms, nx);
    if (r->type == REDIS_REPLY_STATUS)
        rc = MR_OK;
    else if (r->type == REDIS_REPLY_NIL)
        rc = MR_EBUSY;
    else
        rc = MR_EINTERNAL;
    freeReplyObject(r);
    return rc;
}

int mr_store_set(struct mr_store *s, const char *key, const void *val, size_t len, long ttl_ms)
{
    return set(s, key, val, len, ttl_ms, false);
}

int mr_store_set_nx(struct mr_store *s, const char *key, const void *val, size_t len,
                    long ttl_ms)
{
    return set(s, key, val, len, ttl_ms, true);
}

int mr_store_del(struct mr_store *s, const char *key)
{
    char k[MR_STORE_KEY_MAX];
    redisReply *r;
    int rc;

    if ((rc = full_key(s, key, k, sizeof(k))))
        return rc;
    /* The fallback copy goes too, so a stale value cannot come back when
     * Redis goes away again. */
    mr_lru_del(s->lru, k);
    r = command(s, "DEL %s", k);
    if (r)
        freeReplyObject(r);
    return MR_OK;
}

/* The release: compare-and-delete in one script.  EVAL, not EVALSHA: the
 * script is under 100 bytes, Redis caches its compiled form by hash
 * anyway, and there is no NOSCRIPT to handle after a restart or a
 * SCRIPT FLUSH. */
static const char lua_unlock[] =
    "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) end "
    "return 0";

int mr_store_lock(struct mr_store *s, const char *key, long ttl_ms, struct mr_store_lock *l)
{
    unsigned char rnd[MR_STORE_LOCK_OWNER_HEX / 2];
    int n, rc;

    l->held = false;
    l->owner[0] = '\0';
    n = snprintf(l->key, sizeof(l->key), "%s", key);
    if (n < 0 || (size_t)n >= sizeof(l->key))
        return MR_ETOOBIG;
    if (ttl_ms <= 0)
        return MR_EINTERNAL;    /* a lock that never lapses is a bug */
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return MR_EINTERNAL;
    mr_hex(rnd, sizeof(rnd), l->owner);
    rc = set(s, key, l->owner, MR_STORE_LOCK_OWNER_HEX, ttl_ms, true);
    l->held = rc == MR_OK;
    return rc;
}

int mr_store_unlock(struct mr_store *s, struct mr_store_lock *l)
{
    char k[MR_STORE_KEY_MAX];
    redisReply *r;
    int rc, local;

    if (!l->held)
        return MR_OK;
    l->held = false;
    if ((rc = full_key(s, l->key, k, sizeof(k))))
        return rc;
    /* Taken in the fallback while Redis was down, perhaps: the fallback's
     * copy goes if it is ours, and Redis is asked as well (if it is back,
     * what it holds under that key is someone else's and stays). */
    local = mr_lru_del_if(s->lru, k, l->owner, MR_STORE_LOCK_OWNER_HEX);
    r = command(s, "EVAL %s 1 %s %s", lua_unlock, k, l->owner);
    if (!r)
        return local == MR_OK ? MR_OK : MR_EBUSY;
    if (r->type == REDIS_REPLY_INTEGER)
        rc = r->integer == 1 || local == MR_OK ? MR_OK : MR_EBUSY;
    else
        rc = MR_EINTERNAL;
    freeReplyObject(r);
    return rc;
}

long mr_store_lock_ttl(long work_ms)
{
    return work_ms + MR_STORE_LOCK_MARGIN_MS;
}

static void pause_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int mr_store_lock_or_wait(struct mr_store *s, const char *key, long ttl_ms,
                          const struct mr_store_wait *w, struct mr_store_lock *l)
{
    long long deadline = mr_clock_mono_ms() + (w->wait_ms > 0 ? w->wait_ms : 0);
    long pause = w->pause_us > 0 ? w->pause_us : 1000;
    int rc;

    for (;;) {
        long long left;
        rc = mr_store_lock(s, key, ttl_ms, l);
        /* A caller that waits has no result of its own: a lock it takes is
         * not kept before ready() looked once more, with l->held set.  The
         * holder may have finished between the caller's look (or ready()'s
         * last) and this lock: its result is written before its lock goes. */
        if (rc == MR_OK && w->wait_ms > 0 && w->ready) {
            int r = w->ready(w->arg);
            if (r != MR_ENOTFOUND) {
                mr_store_unlock(s, l);
                return r;
            }
        }
        if (rc != MR_EBUSY)
            return rc;
        left = deadline - mr_clock_mono_ms();
        if (left <= 0 || (w->give_up && w->give_up(w->arg)))
            return MR_EBUSY;
        pause_us(pause < left * 1000 ? pause : (long)(left * 1000));
        if (pause < w->max_pause_us)
            pause = pause * 2 < w->max_pause_us ? pause * 2 : w->max_pause_us;
        if (w->ready && (rc = w->ready(w->arg)) != MR_ENOTFOUND)
            return rc;
    }
}

/* Hash fields live in the fallback as "key\x1ffield". */
static int hash_key(const struct mr_store *s, const char *key, const char *field,
                    char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s%s\x1f%s", s->prefix, key, field);
    return n < 0 || (size_t)n >= len ? MR_ETOOBIG : MR_OK;
}

int mr_store_hget(struct mr_store *s, struct mr_arena *a, const char *key,
                  const char *field, struct mr_str *out)
{
    char k[MR_STORE_KEY_MAX], hk[MR_STORE_KEY_MAX];
    redisReply *r;
    int rc;

    if ((rc = full_key(s, key, k, sizeof(k))) || (rc = hash_key(s, key, field, hk, sizeof(hk))))
        return rc;
    r = command(s, "HGET %s %s", k, field);
    if (!r)
        return mr_lru_get(s->lru, hk, a, out);
    if (r->type == REDIS_REPLY_STRING) {
        char *v = mr_arena_strndup(a, r->str, r->len);
        rc = v ? MR_OK : MR_ENOMEM;
        if (v)
            *out = (struct mr_str){ v, r->len };
    } else {
        rc = r->type == REDIS_REPLY_NIL ? MR_ENOTFOUND : MR_EINTERNAL;
    }
    freeReplyObject(r);
    return rc;
}

int mr_store_batch(struct mr_store *s, const struct mr_store_op *ops, size_t n)
{
    char k[MR_STORE_KEY_MAX];
    redisContext *c = conn(s);
    size_t sent = 0;

    if (c) {
        for (; sent < n; sent++) {
            int ok;
            if (full_key(s, ops[sent].key, k, sizeof(k)))
                break;
            if (ops[sent].op == MR_OP_HINCRBY)
                ok = redisAppendCommand(c, "HINCRBY %s %s %lld", k, ops[sent].field,
                                        ops[sent].by);
            else
                ok = redisAppendCommand(c, "SADD %s %s", k, ops[sent].field);
            if (ok != REDIS_OK)
                break;
        }
        for (size_t i = 0; i < sent; i++) {
            void *reply = NULL;
            if (redisGetReply(c, &reply) != REDIS_OK) {
                mark_down(s, c->errstr[0] ? c->errstr : "connection lost");
                /* What Redis took before it went is not counted twice. */
                ops += i;
                n -= i;
                c = NULL;
                break;
            }
            freeReplyObject(reply);
        }
        if (c)
            return sent == n ? MR_OK : MR_EINTERNAL;
    }
    /* Redis is down: count in-process so the numbers are not simply lost. */
    for (size_t i = 0; i < n; i++) {
        char hk[MR_STORE_KEY_MAX];
        if (ops[i].op == MR_OP_HINCRBY &&
            !hash_key(s, ops[i].key, ops[i].field, hk, sizeof(hk)))
            mr_lru_incr(s->lru, hk, ops[i].by, NULL);
    }
    return MR_OK;
}

int mr_store_smembers(struct mr_store *s, struct mr_arena *a, const char *key, size_t max,
                      char ***out, size_t *n)
{
    char k[MR_STORE_KEY_MAX];
    redisReply *r;
    int rc;

    *n = 0;
    *out = NULL;
    if ((rc = full_key(s, key, k, sizeof(k))))
        return rc;
    r = command(s, "SMEMBERS %s", k);
    if (!r)
        return MR_EUNAVAILABLE;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return MR_EINTERNAL;
    }
    *out = mr_arena_calloc(a, (r->elements < max ? r->elements : max) + 1, sizeof(char *));
    if (!*out) {
        freeReplyObject(r);
        return MR_ENOMEM;
    }
    for (size_t i = 0; i < r->elements && *n < max; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            ((*out)[*n] = mr_arena_strndup(a, r->element[i]->str, r->element[i]->len)))
            (*n)++;
    freeReplyObject(r);
    return MR_OK;
}

int mr_store_hgetall_many(struct mr_store *s, struct mr_arena *a, const char *const *keys,
                          size_t n, char ****out)
{
    char k[MR_STORE_KEY_MAX];
    redisContext *c = conn(s);
    char ***res;

    if (!c)
        return MR_EUNAVAILABLE;
    res = mr_arena_calloc(a, n + 1, sizeof(*res));
    if (!res)
        return MR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (full_key(s, keys[i], k, sizeof(k)) ||
            redisAppendCommand(c, "HGETALL %s", k) != REDIS_OK) {
            mark_down(s, "pipeline failed");
            return MR_EUNAVAILABLE;
        }
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        size_t m = 0;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            mark_down(s, c->errstr[0] ? c->errstr : "connection lost");
            return MR_EUNAVAILABLE;
        }
        m = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        res[i] = mr_arena_calloc(a, m + 1, sizeof(char *));
        for (size_t j = 0; res[i] && j < m; j++)
            res[i][j] = r->element[j]->type == REDIS_REPLY_STRING
                        ? mr_arena_strndup(a, r->element[j]->str, r->element[j]->len)
                        : mr_arena_strdup(a, "");
        freeReplyObject(r);
        if (!res[i])
            return MR_ENOMEM;
    }
    *out = res;
    return MR_OK;
}

int mr_store_sismember(struct mr_store *s, const char *key, const char *member, bool *out)
{
    char k[MR_STORE_KEY_MAX];
    redisReply *r;
    int rc;

    if ((rc = full_key(s, key, k, sizeof(k))))
        return rc;
    r = command(s, "SISMEMBER %s %s", k, member);
    if (!r)
        return MR_EUNAVAILABLE;
    rc = r->type == REDIS_REPLY_INTEGER ? MR_OK : MR_EINTERNAL;
    if (!rc)
        *out = r->integer == 1;
    freeReplyObject(r);
    return rc;
}

struct redisContext *mr_store_redis(struct mr_store *s)
{
    return conn(s);
}

int mr_store_key(const struct mr_store *s, const char *key, char *buf, size_t len)
{
    return full_key(s, key, buf, len);
}

void mr_store_lost(struct mr_store *s)
{
    mark_down(s, s->rc && s->rc->errstr[0] ? s->rc->errstr : "connection lost");
}
