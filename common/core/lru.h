/* lru.h - a bounded in-process key/value cache with TTLs.
 *
 * The store's fallback while Redis is unreachable: one per process, shared
 * by its threads behind a mutex, bounded by entry count and by bytes; the
 * least recently used entries go first, expired ones are dropped on sight.
 */
#ifndef MR_LRU_H
#define MR_LRU_H

#include <stddef.h>

#include "core/arena.h"
#include "core/str.h"

struct mr_lru;

/* NULL when out of memory. */
struct mr_lru *mr_lru_new(size_t max_entries, size_t max_bytes);
void mr_lru_free(struct mr_lru *l);

/* Copies the value into the arena (NUL-terminated).  MR_ENOTFOUND when
 * absent or expired. */
int mr_lru_get(struct mr_lru *l, const char *key, struct mr_arena *a, struct mr_str *out);
/* Stores a copy; ttl_ms 0 means no expiry.  With nx, MR_EBUSY when a live
 * entry exists.  MR_ETOOBIG for a value that could never fit. */
int mr_lru_set(struct mr_lru *l, const char *key, const void *val, size_t len,
               long ttl_ms, int nx);
int mr_lru_del(struct mr_lru *l, const char *key);
/* Deletes key only while its live value is exactly val (a lock's owner):
 * MR_OK when deleted, MR_EBUSY when it holds another value, MR_ENOTFOUND
 * when absent or expired. */
int mr_lru_del_if(struct mr_lru *l, const char *key, const void *val, size_t len);
/* Adds `by` to an integer value (0 when absent) and returns the result. */
int mr_lru_incr(struct mr_lru *l, const char *key, long long by, long long *out);
size_t mr_lru_count(struct mr_lru *l);
size_t mr_lru_bytes(struct mr_lru *l);

#endif
