/* store.h - shared state in Redis, with an in-process fallback.
 *
 * One struct mr_store per thread, each with its own hiredis connection (TCP
 * or a unix socket).  A failed command closes the connection and marks Redis
 * down; for the next store.retry_ms every call goes straight to the
 * process's bounded LRU, then one call tries to reconnect.  So when Redis
 * goes away, requests keep working on per-process state, and when it comes
 * back the store uses it again by itself.  Keys are given without the
 * configured prefix; the store adds it.
 */
#ifndef MR_STORE_H
#define MR_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/limits.h"
#include "core/str.h"

struct mr_conf;
struct mr_lru;
struct mr_store;

/* A new per-thread store; it does not connect until first used.  `fallback`
 * is the process's LRU (shared, outlives the store).  NULL when out of
 * memory. */
struct mr_store *mr_store_new(const struct mr_conf *conf, struct mr_lru *fallback);
void mr_store_free(struct mr_store *s);

/* Asks Redis now (reconnecting if the retry interval has passed).  MR_OK
 * when it answered PONG, MR_EUNAVAILABLE when not. */
int mr_store_ping(struct mr_store *s);
/* Whether the last contact with Redis worked (no I/O). */
bool mr_store_redis_up(const struct mr_store *s);
/* The last Redis error, for logs ("" when none). */
const char *mr_store_last_error(const struct mr_store *s);

/* Values are binary-safe; what is returned lives in the arena and is
 * NUL-terminated.  MR_ENOTFOUND when absent. */
int mr_store_get(struct mr_store *s, struct mr_arena *a, const char *key, struct mr_str *out);
/* ttl_ms 0: no expiry. */
int mr_store_set(struct mr_store *s, const char *key, const void *val, size_t len, long ttl_ms);
/* SET NX PX: MR_OK when this call took the key, MR_EBUSY when it exists.
 * Not for locks (a value anyone could delete): mr_store_lock below. */
int mr_store_set_nx(struct mr_store *s, const char *key, const void *val, size_t len,
                    long ttl_ms);
int mr_store_del(struct mr_store *s, const char *key);
int mr_store_hget(struct mr_store *s, struct mr_arena *a, const char *key,
                  const char *field, struct mr_str *out);

/* Single-flight locks.  A lock is a key holding its owner's token, 16
 * random bytes (RAND_bytes) in hex, new for every take: taken with
 * SET key OWNER NX PX ttl, released by a script that deletes the key only
 * while it still holds OWNER (compare-and-delete, one EVAL).  So a holder
 * that overran its TTL, whose lock lapsed and was taken by another request,
 * cannot delete that request's lock.  Waiters may read the key (any value:
 * held; MR_ENOTFOUND: free).  While Redis is down the process's fallback
 * holds locks the same way, under its mutex: single flight within the
 * process.  A lock taken in Redis that Redis loses before its release
 * lapses by its TTL. */
#define MR_STORE_LOCK_OWNER_HEX 32
struct mr_store_lock {
    char key[MR_STORE_KEY_MAX];           /* without the prefix */
    char owner[MR_STORE_LOCK_OWNER_HEX + 1];
    bool held;
};
/* Takes `key` for ttl_ms (> 0).  MR_OK: taken, *l says by whom; MR_EBUSY:
 * someone holds it; MR_ETOOBIG: the key is too long; MR_EINTERNAL: no
 * randomness, a TTL that is not positive, or a Redis error.  *l is always initialized (held false
 * unless MR_OK), so mr_store_unlock may be called on it whatever came
 * back. */
int mr_store_lock(struct mr_store *s, const char *key, long ttl_ms, struct mr_store_lock *l);
/* Releases *l if it still holds its key.  MR_OK when it did; MR_EBUSY
 * when the key lapsed or is someone else's now (left as it is); MR_OK
 * for a lock not held. */
int mr_store_unlock(struct mr_store *s, struct mr_store_lock *l);
/* The TTL of a lock held across work bounded by work_ms (a fetch under
 * upstream.fetch_timeout_ms): that bound plus MR_STORE_LOCK_MARGIN_MS for
 * what follows it (rewriting, writing the result), so the lock outlives
 * every holder that finishes within its bound. */
#define MR_STORE_LOCK_MARGIN_MS 2000
long mr_store_lock_ttl(long work_ms);

/* The waiter's half of single flight: take the lock, or wait for what its
 * holder makes.  Each turn tries the lock (so a holder that lets go
 * without a result hands the work to a waiter, still one at a time), then
 * pauses (pause_us, doubling up to max_pause_us, never past the deadline)
 * and asks ready() whether the holder's result is there. */
struct mr_store_wait {
    long wait_ms;           /* how long to wait for the holder; 0: do not */
    long pause_us;          /* the first pause between turns (> 0) */
    long max_pause_us;
    /* MR_OK: the holder's result is there; MR_ENOTFOUND: not yet; any
     * other code ends the wait with that code.  NULL: never there. */
    int (*ready)(void *arg);
    /* Optional: true ends the wait (the client went away). */
    bool (*give_up)(void *arg);
    void *arg;
};
/* Takes `key` for ttl_ms as mr_store_lock, or waits as *w says.
 *   MR_OK, l->held:  this call took the lock: do the work, then
 *                    mr_store_unlock(l).
 *   MR_OK, !l->held: ready() said the holder's result is there.
 *   MR_EBUSY:        someone held it all along: the deadline passed or
 *                    give_up() said so.
 *   anything else:   from mr_store_lock (MR_ETOOBIG, MR_EINTERNAL) or
 *                    from ready().
 * With wait_ms > 0 (the caller has no result of its own), a lock taken is
 * not kept before ready() looked once more, with l->held set: a holder
 * writes its result, then lets the lock go, so a result that came in
 * between the caller's look (or ready()'s last) and the lock is found,
 * not made again.  With wait_ms 0 (the caller has a stale result and
 * refreshes it), the lock is taken as it is.
 * *l is always initialized, so mr_store_unlock may be called on it. */
int mr_store_lock_or_wait(struct mr_store *s, const char *key, long ttl_ms,
                          const struct mr_store_wait *w, struct mr_store_lock *l);

/* HINCRBYs and SADDs in one pipeline (one round trip).  While Redis is
 * down, counters go to the fallback and set members are dropped. */
struct mr_store_op {
    enum { MR_OP_HINCRBY, MR_OP_SADD } op;
    const char *key;
    const char *field;               /* HINCRBY field, or the SADD member */
    long long by;
};
int mr_store_batch(struct mr_store *s, const struct mr_store_op *ops, size_t n);

/* SMEMBERS into an arena array (at most `max`; NULL-terminated). */
int mr_store_smembers(struct mr_store *s, struct mr_arena *a, const char *key, size_t max,
                      char ***out, size_t *n);
/* HGETALL of each key, pipelined; out[i] is a NULL-terminated array of
 * field, value, field, value ... (empty for a missing key). */
int mr_store_hgetall_many(struct mr_store *s, struct mr_arena *a, const char *const *keys,
                          size_t n, char ****out);

/* SISMEMBER.  Needs Redis (sessions and rooms are written by the host
 * application): MR_EUNAVAILABLE while it is down. */
int mr_store_sismember(struct mr_store *s, const char *key, const char *member, bool *out);

/* For data that is Redis-shaped (the segment cache's growing bodies):
 * this thread's live connection, or NULL while Redis is down (no fallback
 * here: the caller does without).  Keys are made with mr_store_key; after a
 * command on the connection fails, mr_store_lost closes it and marks Redis
 * down like any other failure. */
struct redisContext *mr_store_redis(struct mr_store *s);
int mr_store_key(const struct mr_store *s, const char *key, char *buf, size_t len);
void mr_store_lost(struct mr_store *s);

#endif
