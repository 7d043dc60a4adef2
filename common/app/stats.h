/* stats.h - bandwidth and request counters, in Redis hashes.
 *
 * `stats:total` and `stats:{kind}:{id}` hold requests, bytes_up (from the
 * upstream), bytes_out (to clients) and upstream_errors; `stats:index` is
 * the set of "{kind}:{id}" that have counters.  One request's counters are
 * one pipelined batch at its end.
 */
#ifndef MR_STATS_H
#define MR_STATS_H

#include <stdbool.h>
#include <stddef.h>

struct mr_ctx;
struct mr_store;
struct json_object;
struct mr_buf;

struct mr_stats_req {
    const char *kind;                /* "media", "channel", "stream" */
    const char *id;
    unsigned long long bytes_up;
    unsigned long long bytes_out;
    bool upstream_error;
};

/* Adds one request's counters (one round trip; on the fallback while Redis
 * is down). */
void mr_stats_record(struct mr_store *store, const struct mr_stats_req *s);

#define MR_STATS_FIELDS { "requests", "bytes_up", "bytes_out", "upstream_errors" }
#define MR_STATS_NFIELDS 4
/* At most this many items are listed by /api/stats and /metrics. */
#define MR_STATS_MAX_ITEMS 10000

struct mr_arena;

struct mr_stats_item {
    const char *kind;                /* NULL for the total */
    const char *id;
    long long v[MR_STATS_NFIELDS];   /* in MR_STATS_FIELDS order */
};

struct mr_stats {
    bool redis_up;
    struct mr_stats_item total;
    struct mr_stats_item *items;     /* sorted by kind, then id */
    size_t n;
};

/* Reads every counter (two round trips).  While Redis is down: redis_up
 * false and zero counters. */
int mr_stats_read(struct mr_store *store, struct mr_arena *a, struct mr_stats *out);

/* As JSON: {"redis":"ok","total":{...},"items":[{"kind","id",...}]}.
 * The object is new (json_object_put it). */
struct json_object *mr_stats_json(const struct mr_stats *s);

/* As Prometheus text exposition (version 0.0.4) into buf. */
int mr_stats_prometheus(const struct mr_stats *s, struct mr_buf *buf);

#endif
