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

#endif
