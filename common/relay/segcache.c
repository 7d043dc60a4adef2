/* segcache.c - the segment cache in Redis, with collapsed forwarding. */
#include "relay/segcache.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "app/server.h"
#include "app/stats.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "http/range.h"
#include "net/store.h"
#include "net/upstream.h"
#include "relay/relay.h"

/* A filler renews its lock with every append; a lock this old means the
 * filler is gone (or its upstream sent nothing for that long). */
#define LOCK_MS 10000
/* What a follower reads per GETRANGE, and what a filler appends at once. */
#define READ_CHUNK (512 * 1024)
#define FILL_CHUNK (256 * 1024)
#define CURL_PIECE 16384
/* A follower that finds nothing new sleeps 1, 2, 4 ... up to this. */
#define POLL_MAX_US 16000
/* A follower waits at most this long for a fill to show its head. */
#define WAIT_HEAD_MS (LOCK_MS + 5000)
#define HANGUP_CHECK_MS 200

/* Every write of a filler happens only while it holds the lock: the check
 * and the write are one script, so a filler that stalled past its lock
 * cannot write into a newer fill. */
static const char lua_start[] =
    "if redis.call('get',KEYS[1])~=ARGV[1] then return 0 end "
    "redis.call('del',KEYS[2],KEYS[3]) "
    "redis.call('hset',KEYS[2],'st','fill','ct',ARGV[2],'cc',ARGV[3],'etag',ARGV[4],"
    "'lm',ARGV[5],'len',ARGV[6]) "
    "redis.call('pexpire',KEYS[2],ARGV[7]) return 1";
static const char lua_append[] =
    "if redis.call('get',KEYS[1])~=ARGV[1] then return 0 end "
    "redis.call('pexpire',KEYS[1],ARGV[2]) redis.call('append',KEYS[3],ARGV[4]) "
    "redis.call('pexpire',KEYS[3],ARGV[3]) return 1";
static const char lua_done[] =
    "if redis.call('get',KEYS[1])~=ARGV[1] then return 0 end "
    "redis.call('hset',KEYS[2],'st','done','len',ARGV[2]) "
    "redis.call('pexpire',KEYS[2],ARGV[3]) redis.call('pexpire',KEYS[3],ARGV[3]) "
    "redis.call('del',KEYS[1]) return 1";
static const char lua_drop[] =
    "if redis.call('get',KEYS[1])~=ARGV[1] then return 0 end "
    "redis.call('del',KEYS[2],KEYS[3]) "
    "if ARGV[2]~='0' then redis.call('hset',KEYS[2],'st','skip') "
    "redis.call('pexpire',KEYS[2],ARGV[2]) end "
    "redis.call('del',KEYS[1]) return 1";

enum state { ST_NONE, ST_FILL, ST_DONE, ST_SKIP };

struct seg {
    struct mr_ctx *ctx;
    const struct mr_relay *r;
    struct mr_store *store;
    char meta[MR_STORE_KEY_MAX], body[MR_STORE_KEY_MAX], lock[MR_STORE_KEY_MAX];
    struct mr_store_lock lk;        /* the fill lock, when this request took it;
                                       its owner token is what the scripts check */
    long ttl_ms;

    /* The object's head, as read from (or written to) the meta hash. */
    enum state st;
    const char *ct, *cc, *etag, *lm;
    long long len;                  /* -1: not known (yet) */
    long long have;                 /* bytes in the body key */
    bool locked;                    /* someone holds the fill lock */

    /* The client's part of the object: [from, to], to -1 = to the end. */
    long long from, to;
    bool partial;

    /* Filling. */
    bool caching;                   /* still writing to Redis */
    bool client_done;               /* the client has its answer, or left */
    bool retry, may_retry;
    long status;
    long long pos;                  /* upstream bytes so far */
    size_t gathered;
    long long checked_ms;
    unsigned long long bytes_up;
    bool upstream_error;
};

static void lost(struct seg *s, redisReply *r)
{
    if (r)
        freeReplyObject(r);
    mr_store_lost(s->store);
}

static bool is_int(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER;
}

/* One pipeline: the meta hash, the body's length, whether a fill holds
 * the lock.  MR_EUNAVAILABLE when Redis failed. */
static int read_meta(struct seg *s)
{
    redisContext *c = mr_store_redis(s->store);
    redisReply *r[3] = { NULL, NULL, NULL };
    struct mr_arena *a = s->ctx->arena;

    if (!c)
        return MR_EUNAVAILABLE;
    redisAppendCommand(c, "HGETALL %s", s->meta);
    redisAppendCommand(c, "STRLEN %s", s->body);
    redisAppendCommand(c, "EXISTS %s", s->lock);
    for (int i = 0; i < 3; i++) {
        if (redisGetReply(c, (void **)&r[i]) != REDIS_OK) {
            for (int k = 0; k < i; k++)
                freeReplyObject(r[k]);
            lost(s, NULL);
            return MR_EUNAVAILABLE;
        }
    }
    s->st = ST_NONE;
    s->ct = s->cc = s->etag = s->lm = NULL;
    s->len = -1;
    if (r[0]->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < r[0]->elements; i += 2) {
            const char *f = r[0]->element[i]->str, *v = r[0]->element[i + 1]->str;
            if (!f || !v)
                continue;
            if (!strcmp(f, "st"))
                s->st = !strcmp(v, "fill") ? ST_FILL : !strcmp(v, "done") ? ST_DONE
                      : !strcmp(v, "skip") ? ST_SKIP : ST_NONE;
            else if (!strcmp(f, "len"))
                s->len = *v ? strtoll(v, NULL, 10) : -1;
            else if (!strcmp(f, "ct"))
                s->ct = *v ? mr_arena_strdup(a, v) : NULL;
            else if (!strcmp(f, "cc"))
                s->cc = *v ? mr_arena_strdup(a, v) : NULL;
            else if (!strcmp(f, "etag"))
                s->etag = *v ? mr_arena_strdup(a, v) : NULL;
            else if (!strcmp(f, "lm"))
                s->lm = *v ? mr_arena_strdup(a, v) : NULL;
        }
    }
    s->have = is_int(r[1]) ? r[1]->integer : 0;
    s->locked = is_int(r[2]) && r[2]->integer > 0;
    for (int i = 0; i < 3; i++)
        freeReplyObject(r[i]);
    return MR_OK;
}

/* Runs one of the lock-checked scripts: 1 when it ran as the owner, 0
 * when the lock is someone else's, -1 when Redis failed. */
static int script(struct seg *s, const char *lua, const char *const *argv, const size_t *argl,
                  int argc)
{
    redisContext *c = mr_store_redis(s->store);
    const char *v[16];
    size_t l[16];
    redisReply *r;
    int n = 0, rc;

    if (!c)
        return -1;
    v[n] = "EVAL"; l[n++] = 4;
    v[n] = lua; l[n++] = strlen(lua);
    v[n] = "3"; l[n++] = 1;
    v[n] = s->lock; l[n++] = strlen(s->lock);
    v[n] = s->meta; l[n++] = strlen(s->meta);
    v[n] = s->body; l[n++] = strlen(s->body);
    v[n] = s->lk.owner; l[n++] = strlen(s->lk.owner);
    for (int i = 0; i < argc && n < 16; i++) {
        v[n] = argv[i];
        l[n++] = argl ? argl[i] : strlen(argv[i]);
    }
    r = redisCommandArgv(c, n, v, l);
    if (!r) {
        lost(s, NULL);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR)
        mr_warn("segment cache script: %s", r->str);
    rc = is_int(r) ? (int)r->integer : -1;
    freeReplyObject(r);
    return rc;
}

/* Gives up the fill: the keys go (and "skip" stays for skip_ms when it is
 * not 0), and the lock is released. */
static void drop(struct seg *s, long skip_ms)
{
    char ms[24];
    const char *argv[] = { ms };

    snprintf(ms, sizeof(ms), "%ld", skip_ms);
    script(s, lua_drop, argv, NULL, 1);
    s->caching = false;
}

/* --- What the client asked for ------------------------------------------ */

/* True when one of the entity tags in a list (If-None-Match) matches; weak
 * comparison, as RFC 9110 asks for If-None-Match. */
static bool etag_match(const char *list, const char *etag)
{
    const char *e = etag, *p = list;
    size_t el;

    if (!etag)
        return false;
    if (!strncmp(e, "W/", 2))
        e += 2;
    el = strlen(e);
    while (*p) {
        const char *q;
        size_t n;
        p += strspn(p, " \t,");
        if (!*p)
            break;
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2))
            p += 2;
        q = p + strcspn(p, ",");
        n = (size_t)(q - p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == el && !memcmp(p, e, n))
            return true;
        p = q;
    }
    return false;
}

static bool not_modified(struct seg *s)
{
    const char *inm = mr_request_header(&s->ctx->req, "if-none-match");
    const char *ims = mr_request_header(&s->ctx->req, "if-modified-since");

    if (inm)
        return etag_match(inm, s->etag);
    if (ims && s->lm) {
        time_t a = curl_getdate(s->lm, NULL), b = curl_getdate(ims, NULL);
        return a != -1 && b != -1 && a <= b;
    }
    return false;
}

/* The client's Range against an object of `len` bytes (-1: unknown).
 * Sets from/to/partial; MR_ERANGE when it cannot be satisfied.  An If-Range
 * that is not this object's validator asks for the whole object. */
static int plan_range(struct seg *s, long long len)
{
    const char *v = mr_request_header(&s->ctx->req, "range");
    const char *ifr = mr_request_header(&s->ctx->req, "if-range");
    struct mr_range r;
    int rc;

    if (v && ifr && !(s->etag && !strcmp(ifr, s->etag) && strncmp(ifr, "W/", 2)) &&
        !(s->lm && !strcmp(ifr, s->lm)))
        v = NULL;   /* the client's copy is another: the whole object */
    rc = mr_range_parse(v, len, &r);
    s->from = r.from;
    s->to = r.to;
    s->partial = r.partial;
    return rc;
}

/* Seconds the web server in front may keep this answer (0: not at all):
 * a whole object the cache holds, or is filling, for hls.edge_cache_s but
 * never past the expiry of the URL the client used.  contrib/nginx keeps
 * such answers (X-Accel-Expires) and serves them itself, Range and 304
 * included, without asking this process again: so never one of a room's
 * media item, whose every request must reach the room check. */
static long edge_seconds(const struct seg *s, long long len)
{
    long n = s->ctx->conf->hls.edge_cache_s;
    time_t left;

    if (s->partial || len < 0 || n <= 0 || s->ctx->resp.head_only || s->r->members_only)
        return 0;
    if (s->r->expire_at) {
        /* time() is the second begun: up to a second more has passed, and
         * nginx counts from its own whole second (an entry is used while
         * its second lasts).  One less keeps the edge from serving a URL
         * that has expired. */
        left = s->r->expire_at - mr_clock_wall_s() - 1;
        if (left < n)
            n = left > 0 ? (long)left : 0;
    }
    return n;
}

/* The object's validators and its caching rule (upstream values go back
 * only if they are well-formed). */
static int put_validators(struct seg *s)
{
    struct mr_response *resp = &s->ctx->resp;

    if (s->etag)
        mr_resp_set_header(resp, "ETag", s->etag);
    if (s->lm)
        mr_resp_set_header(resp, "Last-Modified", s->lm);
    if (s->r->members_only)
        return mr_relay_members_only(resp);
    if (s->cc)
        mr_resp_set_header(resp, "Cache-Control", s->cc);
    return MR_OK;
}

static int send_head(struct seg *s, long long len, const char *how)
{
    struct mr_response *resp = &s->ctx->resp;
    long edge = edge_seconds(s, len);
    int rc;

    mr_resp_status(resp, s->partial ? 206 : 200);
    /* Bytes go on as they come (X-Accel-Buffering: no), except for an
     * answer the web server keeps: it must buffer to keep it, and still
     * passes bytes on as they arrive. */
    if ((rc = mr_resp_relayed(resp, s->ct)) ||
        (rc = mr_resp_set_header(resp, "X-Cache", how)) ||
        (rc = mr_resp_set_header(resp, "X-Accel-Buffering", edge ? "yes" : "no")))
        return rc;
    if (edge && (rc = mr_resp_headerf(resp, "X-Accel-Expires", "%ld", edge)))
        return rc;
    if (len >= 0 && (rc = mr_resp_set_header(resp, "Accept-Ranges", "bytes")))
        return rc;
    if (s->partial && s->to >= 0 &&
        (rc = mr_resp_headerf(resp, "Content-Length", "%lld", s->to - s->from + 1)))
        return rc;
    if (!s->partial && len >= 0 && (rc = mr_resp_headerf(resp, "Content-Length", "%lld", len)))
        return rc;
    if (s->partial) {
        if (len >= 0)
            rc = mr_resp_headerf(resp, "Content-Range", "bytes %lld-%lld/%lld", s->from,
                                 s->to, len);
        else
            rc = mr_resp_headerf(resp, "Content-Range", "bytes %lld-%lld/*", s->from, s->to);
        if (rc)
            return rc;
    }
    if ((rc = put_validators(s)))
        return rc;
    if (mr_resp_send_headers(resp) || mr_resp_flush(resp))
        return MR_ECLIENT;
    return MR_OK;
}

static int answer_416(struct seg *s, long long len)
{
    struct mr_response *resp = &s->ctx->resp;
    int rc;

    if ((rc = mr_resp_headerf(resp, "Content-Range", "bytes */%lld", len)))
        return rc;
    return mr_resp_error(resp, MR_ERANGE, "the range is outside the object (%lld bytes)", len);
}

static int answer_304(struct seg *s)
{
    struct mr_response *resp = &s->ctx->resp;
    int rc;

    mr_resp_status(resp, 304);
    if ((rc = mr_resp_relayed(resp, s->ct)))
        return rc;
    if ((rc = put_validators(s)))
        return rc;
    mr_resp_set_header(resp, "X-Cache", "HIT");
    return mr_resp_send_headers(resp) ? MR_ECLIENT : MR_OK;
}

/* --- Following: a done object, or a fill as it grows --------------------- */

static void pause_us(long us)
{
    struct timespec ts = { 0, us * 1000 };
    nanosleep(&ts, NULL);
}

/* Sends [from, to] of the body (to -1 on an unknown length: until the fill
 * says how long), reading it as it grows while the fill runs.  A known
 * length of 0 is [0, -1] too, and nothing to send. */
static int follow_body(struct seg *s)
{
    struct mr_response *resp = &s->ctx->resp;
    long long off = s->from, stop = s->partial || s->len >= 0 ? s->to + 1 : -1;
    long long last_ms = mr_clock_mono_ms();
    bool done = s->st == ST_DONE;
    long sleep_us = 0;

    while (stop < 0 || off < stop) {
        redisContext *c = mr_store_redis(s->store);
        redisReply *meta = NULL, *lk = NULL, *data = NULL;
        long long want = READ_CHUNK;
        bool got = false, turned_done = false;

        if (!c)
            return MR_EUNAVAILABLE;
        if (stop >= 0 && stop - off < want)
            want = stop - off;
        /* The meta is read before the body in the same pipeline: when it
         * says "done", the GETRANGE after it sees every byte. */
        if (!done) {
            redisAppendCommand(c, "HMGET %s st len", s->meta);
            redisAppendCommand(c, "EXISTS %s", s->lock);
        }
        redisAppendCommand(c, "GETRANGE %s %lld %lld", s->body, off, off + want - 1);
        if ((!done && (redisGetReply(c, (void **)&meta) != REDIS_OK ||
                       redisGetReply(c, (void **)&lk) != REDIS_OK)) ||
            redisGetReply(c, (void **)&data) != REDIS_OK) {
            if (meta)
                freeReplyObject(meta);
            if (lk)
                freeReplyObject(lk);
            lost(s, NULL);
            return MR_EUNAVAILABLE;
        }
        if (meta) {
            const redisReply *st = meta->type == REDIS_REPLY_ARRAY && meta->elements == 2
                                   ? meta->element[0] : NULL;
            const redisReply *ln = st ? meta->element[1] : NULL;
            bool alive = is_int(lk) && lk->integer > 0;
            if (st && st->str && !strcmp(st->str, "done")) {
                done = turned_done = true;
                if (stop < 0 && ln && ln->str)
                    stop = strtoll(ln->str, NULL, 10);
            } else if (!(st && st->str && !strcmp(st->str, "fill")) || !alive) {
                /* The fill died or was dropped: this answer is broken. */
                freeReplyObject(meta);
                freeReplyObject(lk);
                freeReplyObject(data);
                return MR_EUPSTREAM;
            }
            freeReplyObject(meta);
            freeReplyObject(lk);
        }
        if (data->type == REDIS_REPLY_STRING && data->len > 0) {
            size_t n = data->len;
            if (stop >= 0 && stop <= off) {
                /* A fill that says done with fewer bytes than were sent
                 * (the keys were replaced between our reads): what was
                 * sent is not that object, and stop - off is not a size. */
                freeReplyObject(data);
                return MR_EUPSTREAM;
            }
            if (stop >= 0 && (long long)n > stop - off)
                n = (size_t)(stop - off);
            got = true;
            if (mr_resp_write(resp, data->str, n) || mr_resp_flush(resp)) {
                freeReplyObject(data);
                return MR_ECLIENT;
            }
            off += (long long)n;
        }
        freeReplyObject(data);
        if (got) {
            sleep_us = 0;
            continue;
        }
        if (done) {
            if (stop >= 0 && off >= stop)
                break;
            if (!turned_done || stop < 0)
                return MR_EUPSTREAM;    /* done, yet bytes are missing: evicted */
            continue;                   /* just turned done: one more read */
        }
        sleep_us = sleep_us ? sleep_us * 2 : 1000;
        if (sleep_us > POLL_MAX_US)
            sleep_us = POLL_MAX_US;
        pause_us(sleep_us);
        if (mr_clock_mono_ms() - last_ms >= HANGUP_CHECK_MS) {
            last_ms = mr_clock_mono_ms();
            if (mr_resp_client_gone(resp))
                return MR_ECLIENT;
        }
    }
    return MR_OK;
}

/* Serves a done object or follows a running fill whose head is known. */
static int follow(struct seg *s)
{
    long long len = s->len;
    int rc;

    if (s->st == ST_DONE && not_modified(s))
        return answer_304(s);
    if ((rc = plan_range(s, len)) == MR_ERANGE)
        return answer_416(s, len);
    if ((rc = send_head(s, len, s->st == ST_DONE ? "HIT" : "WAIT")))
        return rc;
    if (s->ctx->resp.head_only)
        return MR_OK;
    return follow_body(s);
}

/* --- Filling ------------------------------------------------------------ */

/* Kept for the thread's life like relay.c's gather buffer, and freed by
 * the key's destructor when the thread ends. */
static _Thread_local char *fill_buf;
static pthread_key_t fill_key;
static pthread_once_t fill_once = PTHREAD_ONCE_INIT;

static void fill_key_make(void)
{
    if (pthread_key_create(&fill_key, free))
        mr_error("segcache: no thread-specific key for the fill buffer");
}

static char *fill_buffer(void)
{
    if (fill_buf)
        return fill_buf;
    pthread_once(&fill_once, fill_key_make);
    fill_buf = malloc(FILL_CHUNK);
    if (fill_buf && pthread_setspecific(fill_key, fill_buf)) {
        free(fill_buf);         /* no key: it could not be freed at the end */
        fill_buf = NULL;
    }
    return fill_buf;
}

/* Hands what is gathered to Redis (while caching) and to the client (the
 * part of it the client asked for, while it is there). */
static int fill_push(struct seg *s)
{
    struct mr_response *resp = &s->ctx->resp;
    long long start = s->pos - (long long)s->gathered;
    size_t n = s->gathered;

    if (!n)
        return MR_OK;
    s->gathered = 0;
    if (s->caching) {
        if (s->pos > s->ctx->conf->hls.segment_cache_max_bytes) {
            drop(s, s->ttl_ms);          /* larger than it said, or than the cap */
        } else {
            char lock_ms[24], ttl[24];
            const char *argv[] = { lock_ms, ttl, fill_buf };
            size_t argl[3];
            int rc;
            argl[0] = (size_t)snprintf(lock_ms, sizeof(lock_ms), "%d", LOCK_MS);
            argl[1] = (size_t)snprintf(ttl, sizeof(ttl), "%ld", s->ttl_ms);
            argl[2] = n;
            rc = script(s, lua_append, argv, argl, 3);
            if (rc != 1) {
                /* Redis went, or another fill took over after a stall:
                 * this one stops writing and just relays. */
                if (rc == 0)
                    mr_warn("segment cache: lost the fill lock of %s", s->r->url);
                s->caching = false;
            }
        }
    }
    if (!s->client_done && !s->ctx->resp.head_only) {
        long long a = start > s->from ? start : s->from;
        long long b = start + (long long)n;
        if (s->to >= 0 && b > s->to + 1)
            b = s->to + 1;
        if (b > a && (mr_resp_write(resp, fill_buf + (a - start), (size_t)(b - a)) ||
                      mr_resp_flush(resp)))
            s->client_done = true;
        if (s->to >= 0 && s->pos > s->to)
            s->client_done = true;
    }
    /* Without a fill to finish, nobody needs the rest. */
    return s->client_done && !s->caching ? MR_ECLIENT : MR_OK;
}

static bool no_store(const char *cc)
{
    if (!cc)
        return false;
    for (const char *p = cc; *p; p++)
        if (!strncasecmp(p, "no-store", 8) || !strncasecmp(p, "private", 7))
            return true;
    return false;
}

static int fill_head(void *arg, const struct mr_upstream_head *h)
{
    struct seg *s = arg;
    const char *argv[6];
    char ttl[24], len[24];
    int rc;

    s->status = h->status;
    s->ctx->upstream_status = h->status;
    if (h->status == 403 && s->may_retry) {
        s->retry = true;
        return MR_EFORBIDDEN;
    }
    if (h->status != 200)
        return MR_EBUSY;        /* the relay passes it on as it is */
    s->cc = mr_upstream_header(h, "Cache-Control");
    if (no_store(s->cc) ||
        h->content_length > s->ctx->conf->hls.segment_cache_max_bytes) {
        drop(s, s->ttl_ms);
        return MR_EBUSY;
    }
    s->ct = mr_upstream_header(h, "Content-Type");
    s->etag = mr_upstream_header(h, "ETag");
    s->lm = mr_upstream_header(h, "Last-Modified");
    s->len = h->content_length;
    snprintf(ttl, sizeof(ttl), "%ld", s->ttl_ms);
    if (s->len >= 0)
        snprintf(len, sizeof(len), "%lld", s->len);
    else
        len[0] = '\0';
    argv[0] = s->ct ? s->ct : "";
    argv[1] = s->cc ? s->cc : "";
    argv[2] = s->etag ? s->etag : "";
    argv[3] = s->lm ? s->lm : "";
    argv[4] = len;
    argv[5] = ttl;
    rc = script(s, lua_start, argv, NULL, 6);
    s->caching = rc == 1;
    /* The filler's own client: its part of the object, as it arrives. */
    if (plan_range(s, s->len) == MR_ERANGE) {
        answer_416(s, s->len);
        s->client_done = true;  /* answered; the fill goes on for others */
        return s->caching ? MR_OK : MR_ECLIENT;
    }
    if (send_head(s, s->len, "MISS"))
        s->client_done = true;
    return s->client_done && !s->caching ? MR_ECLIENT : MR_OK;
}

static int fill_data(void *arg, const void *p, size_t n)
{
    struct seg *s = arg;

    s->bytes_up += n;
    if (!fill_buffer())
        return MR_ENOMEM;
    while (n) {
        size_t k = FILL_CHUNK - s->gathered;
        int rc;
        if (k > n)
            k = n;
        memcpy(fill_buf + s->gathered, p, k);
        s->gathered += k;
        s->pos += (long long)k;
        p = (const char *)p + k;
        n -= k;
        if (s->gathered == FILL_CHUNK && (rc = fill_push(s)))
            return rc;
    }
    return MR_OK;
}

/* After each round of reads (and about once a second when idle): what
 * arrived goes on, so followers see bytes promptly. */
static int fill_check(void *arg)
{
    struct seg *s = arg;
    long long ms = mr_clock_mono_ms();

    if (!s->client_done && ms - s->checked_ms >= HANGUP_CHECK_MS) {
        s->checked_ms = ms;
        if (mr_resp_client_gone(&s->ctx->resp)) {
            s->client_done = true;
            if (!s->caching)
                return MR_ECLIENT;
        }
    }
    return fill_push(s);
}

static int fill(struct seg *s, enum mr_outcome *out)
{
    struct mr_upstream_head head;
    struct mr_upstream_req req;
    struct mr_sink sink = { .head = fill_head, .data = fill_data, .check = fill_check, .arg = s };
    bool had_referer;
    int rc = MR_OK;

    *out = MR_ANSWERED;
    memset(&req, 0, sizeof(req));
    req.url = s->r->url;
    s->checked_ms = mr_clock_mono_ms();
    for (int attempt = 0; attempt < 2; attempt++) {
        struct mr_header *hv;
        size_t hn;
        if ((rc = mr_relay_headers(s->ctx, s->r, attempt == 0, false, &hv, &hn, &had_referer)))
            break;
        req.headers = hv;
        req.nheaders = hn;
        s->may_retry = attempt == 0 && had_referer;
        s->retry = false;
        rc = mr_upstream_stream(s->ctx->up, s->ctx->arena, &req, &head, &sink);
        if (!(rc == MR_EFORBIDDEN && s->retry))
            break;
    }
    if (!rc)
        rc = fill_push(s);
    if (s->caching) {
        if (!rc && (s->len < 0 || s->pos == s->len)) {
            char len[24], ttl[24];
            const char *argv[] = { len, ttl };
            snprintf(len, sizeof(len), "%lld", s->pos);
            snprintf(ttl, sizeof(ttl), "%ld", s->ttl_ms);
            if (script(s, lua_done, argv, NULL, 2) != 1)
                mr_warn("segment cache: the fill of %s could not be completed", s->r->url);
        } else {
            drop(s, 0);
        }
    } else {
        drop(s, 0);             /* releases the lock if it is still ours */
    }
    if (rc == MR_ECLIENT || s->client_done)
        return MR_OK;           /* answered, or the client left */
    if (rc && s->ctx->resp.headers_sent) {
        mr_warn("upstream %s broke off after %lld bytes: %s", s->r->url, s->pos,
                mr_upstream_error(s->ctx->up));
        s->upstream_error = true;
        s->ctx->resp.abort = true;
        return MR_OK;
    }
    if ((rc == MR_EBUSY || rc == MR_EFORBIDDEN) && s->r->expiry_back &&
        mr_relay_link_expired(s->status)) {
        *out = MR_LINK_DEAD;    /* nothing answered: the caller finds it again */
        return MR_OK;
    }
    if ((rc == MR_EBUSY || rc == MR_EFORBIDDEN) && s->status >= 300) {
        s->upstream_error = true;   /* passed on, not asked again */
        return mr_relay_answer_status(s->ctx, s->status);
    }
    if (rc == MR_EBUSY) {
        *out = MR_DECLINED;     /* not for the cache: relay it as it is */
        return MR_OK;
    }
    if (rc) {
        s->upstream_error = true;
        return mr_resp_error(&s->ctx->resp, rc, "%s", mr_upstream_error(s->ctx->up));
    }
    return MR_OK;
}

/* --- The entry ---------------------------------------------------------- */

static int make_keys(struct seg *s, const char *key_url)
{
    char h[33], k[64];

    mr_hash_hex(key_url, h);
    snprintf(k, sizeof(k), "seg:%s", h);
    if (mr_store_key(s->store, k, s->meta, sizeof(s->meta)))
        return MR_ETOOBIG;
    snprintf(k, sizeof(k), "seg:%s:b", h);
    if (mr_store_key(s->store, k, s->body, sizeof(s->body)))
        return MR_ETOOBIG;
    snprintf(k, sizeof(k), "lock:seg:%s", h);
    if (mr_store_key(s->store, k, s->lock, sizeof(s->lock)))
        return MR_ETOOBIG;
    return MR_OK;
}

/* Whether the object can be served now: done and whole, or being filled
 * by a live fill (one that holds the lock). */
static bool followable(const struct seg *s)
{
    return (s->st == ST_DONE && s->len >= 0 && s->have == s->len) ||
           (s->st == ST_FILL && s->locked);
}

/* mr_store_wait.ready: the head of another request's fill, once written.
 * An object marked not to be cached ends the wait (MR_EBUSY: relay it). */
static int head_ready(void *arg)
{
    struct seg *s = arg;

    if (read_meta(s))
        return MR_EUNAVAILABLE;
    if (s->st == ST_SKIP)
        return MR_EBUSY;
    /* The look after taking the lock: the lock read_meta saw is this
     * request's own, so only a fill done since counts. */
    if (s->lk.held)
        return s->st == ST_DONE && s->len >= 0 && s->have == s->len ? MR_OK : MR_ENOTFOUND;
    return followable(s) ? MR_OK : MR_ENOTFOUND;
}

static bool client_gone(void *arg)
{
    struct seg *s = arg;
    return mr_resp_client_gone(&s->ctx->resp);
}

static void record(struct seg *s)
{
    struct mr_stats_req st = { s->r->stats_kind, s->r->stats_id, s->bytes_up,
                               s->ctx->resp.bytes_out, s->upstream_error };
    if (st.kind && st.id)
        mr_stats_record(s->ctx->store, &st);
}

/* Not answered: for the caller to relay as it is. */
static int declined(enum mr_outcome *out)
{
    *out = MR_DECLINED;
    return MR_OK;
}

int mr_segcache_serve(struct mr_ctx *ctx, const struct mr_relay *r, const char *key_url,
                      enum mr_outcome *out)
{
    struct seg *s;
    int rc;

    *out = MR_ANSWERED;
    if (ctx->conf->hls.segment_cache_max_bytes <= 0 || !mr_store_redis(ctx->store))
        return declined(out);
    s = mr_arena_calloc(ctx->arena, 1, sizeof(*s));
    if (!s)
        return MR_ENOMEM;
    s->ctx = ctx;
    s->r = r;
    s->store = ctx->store;
    s->ttl_ms = ctx->conf->hls.segment_cache_ttl_s * 1000;
    if ((rc = make_keys(s, key_url)))
        return rc == MR_ETOOBIG ? declined(out) : rc;

    if (read_meta(s) || s->st == ST_SKIP)
        return declined(out);
    if (!followable(s)) {
        /* Fill it, or wait for the head of the fill someone else is
         * starting.  The fill lock is the store's owner-token lock; the
         * scripts above (lua_done, lua_drop) let it go, comparing the
         * owner as mr_store_unlock does, in the same step as their
         * writes. */
        struct mr_store_wait w = { .wait_ms = WAIT_HEAD_MS, .pause_us = 1000,
                                   .max_pause_us = POLL_MAX_US, .ready = head_ready,
                                   .give_up = client_gone, .arg = s };
        if (ctx->resp.head_only)
            return declined(out);
        rc = mr_store_lock_or_wait(s->store, s->lock + strlen(ctx->conf->key_prefix), LOCK_MS,
                                   &w, &s->lk);
        if (rc)
            return declined(out);   /* no head in time, Redis failed, or not to be cached */
        if (s->lk.held) {
            rc = fill(s, out);
            if (!rc && *out == MR_DECLINED)
                return MR_OK;
            if (rc || *out != MR_LINK_DEAD)     /* counted when found again */
                record(s);
            return rc;
        }
    }
    rc = follow(s);
    if (rc == MR_ECLIENT) {
        ctx->resp.failed = true;
        rc = MR_OK;
    } else if (rc && ctx->resp.headers_sent) {
        /* The fill this answer followed died: it must not end cleanly. */
        mr_warn("segment cache: the fill of %s broke off; answer aborted", r->url);
        ctx->resp.abort = true;
        rc = MR_OK;
    } else if (rc == MR_EUNAVAILABLE || rc == MR_EUPSTREAM) {
        return declined(out);   /* nothing sent: relay it */
    }
    record(s);
    return rc;
}
