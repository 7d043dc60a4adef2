/* stats.c - one request's counters as one pipelined batch. */
#include "stats.h"

#include <stdio.h>

#include "limits.h"
#include "store.h"

void mr_stats_record(struct mr_store *store, const struct mr_stats_req *s)
{
    static const char *const fields[] = MR_STATS_FIELDS;
    char key[MR_STORE_KEY_MAX], member[MR_STORE_KEY_MAX];
    long long vals[4] = {
        1, (long long)s->bytes_up, (long long)s->bytes_out, s->upstream_error ? 1 : 0
    };
    struct mr_store_op ops[9];
    size_t n = 0;

    snprintf(key, sizeof(key), "stats:%s:%s", s->kind, s->id);
    snprintf(member, sizeof(member), "%s:%s", s->kind, s->id);
    for (int i = 0; i < 4; i++) {
        if (!vals[i] && i)
            continue;
        ops[n++] = (struct mr_store_op){ MR_OP_HINCRBY, "stats:total", fields[i], vals[i] };
        ops[n++] = (struct mr_store_op){ MR_OP_HINCRBY, key, fields[i], vals[i] };
    }
    ops[n++] = (struct mr_store_op){ MR_OP_SADD, "stats:index", member, 0 };
    mr_store_batch(store, ops, n);
}
