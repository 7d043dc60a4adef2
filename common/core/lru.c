/* lru.c - hash table + doubly linked recency list, under one mutex. */
#include "core/lru.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"

struct entry {
    struct entry *hnext;          /* hash chain */
    struct entry *prev, *next;    /* recency: head is the most recent */
    uint64_t hash;
    int64_t expires;              /* monotonic ms, 0: never */
    size_t klen, vlen;
    char *key;                    /* key and value in one allocation */
    char *val;
};

struct mr_lru {
    pthread_mutex_t mu;
    struct entry **buckets;
    size_t nbuckets;              /* a power of two */
    struct entry *head, *tail;
    size_t count, bytes;
    size_t max_entries, max_bytes;
};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct mr_lru *mr_lru_new(size_t max_entries, size_t max_bytes)
{
    struct mr_lru *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->nbuckets = 16;
    while (l->nbuckets < max_entries && l->nbuckets < ((size_t)1 << 24))
        l->nbuckets <<= 1;
    l->buckets = calloc(l->nbuckets, sizeof(*l->buckets));
    if (!l->buckets) {
        free(l);
        return NULL;
    }
    l->max_entries = max_entries ? max_entries : 1;
    l->max_bytes = max_bytes;
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void mr_lru_free(struct mr_lru *l)
{
    struct entry *e, *next;
    if (!l)
        return;
    for (e = l->head; e; e = next) {
        next = e->next;
        free(e);
    }
    free(l->buckets);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static size_t cost(const struct entry *e)
{
    return sizeof(*e) + e->klen + e->vlen + 2;
}

static void unlink_entry(struct mr_lru *l, struct entry *e)
{
    struct entry **pp = &l->buckets[e->hash & (l->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    l->count--;
    l->bytes -= cost(e);
    free(e);
}

static void touch(struct mr_lru *l, struct entry *e)
{
    if (l->head == e)
        return;
    e->prev->next = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = NULL;
    e->next = l->head;
    l->head->prev = e;
    l->head = e;
}

/* The live entry for key, or NULL; an expired one is removed. */
static struct entry *find(struct mr_lru *l, const char *key, size_t klen, uint64_t h)
{
    struct entry *e;
    for (e = l->buckets[h & (l->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen)) {
            if (e->expires && e->expires <= mr_clock_mono_ms()) {
                unlink_entry(l, e);
                return NULL;
            }
            return e;
        }
    }
    return NULL;
}

int mr_lru_get(struct mr_lru *l, const char *key, struct mr_arena *a, struct mr_str *out)
{
    size_t klen = strlen(key);
    struct entry *e;
    char *copy = NULL;
    int rc = MR_ENOTFOUND;

    pthread_mutex_lock(&l->mu);
    e = find(l, key, klen, fnv1a(key, klen));
    if (e) {
        touch(l, e);
        copy = mr_arena_strndup(a, e->val, e->vlen);
        rc = copy ? MR_OK : MR_ENOMEM;
        if (copy)
            *out = (struct mr_str){ copy, e->vlen };
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int store(struct mr_lru *l, const char *key, size_t klen, uint64_t h,
                 const void *val, size_t len, long ttl_ms)
{
    struct entry *e;
    size_t need = sizeof(*e) + klen + len + 2;

    if (need > l->max_bytes)
        return MR_ETOOBIG;
    e = malloc(need);
    if (!e)
        return MR_ENOMEM;
    e->hash = h;
    e->klen = klen;
    e->vlen = len;
    e->key = (char *)(e + 1);
    e->val = e->key + klen + 1;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    if (len)
        memcpy(e->val, val, len);
    e->val[len] = '\0';
    e->expires = ttl_ms > 0 ? mr_clock_mono_ms() + ttl_ms : 0;
    /* Make room: least recently used first. */
    while (l->tail && (l->count + 1 > l->max_entries || l->bytes + need > l->max_bytes))
        unlink_entry(l, l->tail);
    e->hnext = l->buckets[h & (l->nbuckets - 1)];
    l->buckets[h & (l->nbuckets - 1)] = e;
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    l->head = e;
    if (!l->tail)
        l->tail = e;
    l->count++;
    l->bytes += need;
    return MR_OK;
}

int mr_lru_set(struct mr_lru *l, const char *key, const void *val, size_t len,
               long ttl_ms, int nx)
{
    size_t klen = strlen(key);
    uint64_t h = fnv1a(key, klen);
    struct entry *e;
    int rc;

    pthread_mutex_lock(&l->mu);
    e = find(l, key, klen, h);
    if (e && nx) {
        rc = MR_EBUSY;
    } else {
        if (e)
            unlink_entry(l, e);
        rc = store(l, key, klen, h, val, len, ttl_ms);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int mr_lru_del(struct mr_lru *l, const char *key)
{
    size_t klen = strlen(key);
    struct entry *e;

    pthread_mutex_lock(&l->mu);
    e = find(l, key, klen, fnv1a(key, klen));
    if (e)
        unlink_entry(l, e);
    pthread_mutex_unlock(&l->mu);
    return MR_OK;
}

int mr_lru_del_if(struct mr_lru *l, const char *key, const void *val, size_t len)
{
    size_t klen = strlen(key);
    struct entry *e;
    int rc = MR_ENOTFOUND;

    pthread_mutex_lock(&l->mu);
    e = find(l, key, klen, fnv1a(key, klen));
    if (e) {
        rc = e->vlen == len && !memcmp(e->val, val, len) ? MR_OK : MR_EBUSY;
        if (!rc)
            unlink_entry(l, e);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int mr_lru_incr(struct mr_lru *l, const char *key, long long by, long long *out)
{
    size_t klen = strlen(key);
    uint64_t h = fnv1a(key, klen);
    struct entry *e;
    long long v = 0;
    int64_t expires = 0;
    char num[32];
    int n, rc;

    pthread_mutex_lock(&l->mu);
    e = find(l, key, klen, h);
    if (e) {
        char *end;
        v = strtoll(e->val, &end, 10);
        expires = e->expires;
        unlink_entry(l, e);
    }
    v += by;
    n = snprintf(num, sizeof(num), "%lld", v);
    rc = store(l, key, klen, h, num, (size_t)n, 0);
    if (!rc && expires)
        l->head->expires = expires;
    pthread_mutex_unlock(&l->mu);
    if (!rc && out)
        *out = v;
    return rc;
}

size_t mr_lru_count(struct mr_lru *l)
{
    size_t n;
    pthread_mutex_lock(&l->mu);
    n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

size_t mr_lru_bytes(struct mr_lru *l)
{
    size_t n;
    pthread_mutex_lock(&l->mu);
    n = l->bytes;
    pthread_mutex_unlock(&l->mu);
    return n;
}
