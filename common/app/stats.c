/* stats.c - one request's counters as one pipelined batch. */
#include "app/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/error.h"

#include "core/limits.h"
#include "net/store.h"

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

static void fill(struct mr_stats_item *it, char **kv)
{
    static const char *const fields[] = MR_STATS_FIELDS;
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
        for (int f = 0; f < MR_STATS_NFIELDS; f++)
            if (!strcmp(kv[i], fields[f]))
                it->v[f] = strtoll(kv[i + 1], NULL, 10);
}

static int cmp_items(const void *a, const void *b)
{
    const struct mr_stats_item *x = a, *y = b;
    int c = strcmp(x->kind, y->kind);
    return c ? c : strcmp(x->id, y->id);
}

int mr_stats_read(struct mr_store *store, struct mr_arena *a, struct mr_stats *out)
{
    char **members, ***vals;
    const char **keys;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = mr_store_smembers(store, a, "stats:index", MR_STATS_MAX_ITEMS, &members, &n);
    if (rc == MR_EUNAVAILABLE)
        return MR_OK;
    if (rc)
        return rc;
    keys = mr_arena_calloc(a, n + 1, sizeof(*keys));
    out->items = mr_arena_calloc(a, n ? n : 1, sizeof(*out->items));
    if (!keys || !out->items)
        return MR_ENOMEM;
    keys[0] = "stats:total";
    for (size_t i = 0; i < n; i++)
        if (!(keys[i + 1] = mr_arena_printf(a, "stats:%s", members[i])))
            return MR_ENOMEM;
    rc = mr_store_hgetall_many(store, a, keys, n + 1, &vals);
    if (rc == MR_EUNAVAILABLE)
        return MR_OK;
    if (rc)
        return rc;
    out->redis_up = true;
    fill(&out->total, vals[0]);
    for (size_t i = 0; i < n; i++) {
        char *colon = strchr(members[i], ':');
        if (!colon)
            continue;
        *colon = '\0';
        out->items[out->n].kind = members[i];
        out->items[out->n].id = colon + 1;
        fill(&out->items[out->n], vals[i + 1]);
        out->n++;
    }
    qsort(out->items, out->n, sizeof(*out->items), cmp_items);
    return MR_OK;
}

static struct json_object *item_json(const struct mr_stats_item *it)
{
    static const char *const fields[] = MR_STATS_FIELDS;
    struct json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    if (it->kind) {
        json_object_object_add(o, "kind", json_object_new_string(it->kind));
        json_object_object_add(o, "id", json_object_new_string(it->id));
    }
    for (int f = 0; f < MR_STATS_NFIELDS; f++)
        json_object_object_add(o, fields[f], json_object_new_int64(it->v[f]));
    return o;
}

struct json_object *mr_stats_json(const struct mr_stats *s)
{
    struct json_object *o = json_object_new_object(), *items;
    if (!o)
        return NULL;
    json_object_object_add(o, "redis", json_object_new_string(s->redis_up ? "ok" : "down"));
    json_object_object_add(o, "total", item_json(&s->total));
    items = json_object_new_array();
    for (size_t i = 0; i < s->n; i++)
        json_object_array_add(items, item_json(&s->items[i]));
    json_object_object_add(o, "items", items);
    return o;
}

/* Label values: backslash, double quote and newline escaped. */
static int label(struct mr_buf *b, const char *v)
{
    int rc = MR_OK;
    for (; *v && !rc; v++) {
        if (*v == '\\' || *v == '"')
            rc = mr_buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            rc = mr_buf_puts(b, "\\n");
        else
            rc = mr_buf_append(b, v, 1);
    }
    return rc;
}

int mr_stats_prometheus(const struct mr_stats *s, struct mr_buf *b)
{
    static const char *const fields[] = MR_STATS_FIELDS;
    static const char *const help[] = {
        "Requests relayed", "Bytes read from upstreams", "Bytes sent to clients",
        "Requests whose upstream failed or answered an error"
    };
    int rc;

    if ((rc = mr_buf_printf(b, "# HELP mediarelay_redis_up Whether the stats store "
                            "answered.\n# TYPE mediarelay_redis_up gauge\n"
                            "mediarelay_redis_up %d\n", s->redis_up ? 1 : 0)))
        return rc;
    for (int f = 0; f < MR_STATS_NFIELDS; f++) {
        /* The total is a metric of its own: summing the labelled series
         * of a metric must not count it twice. */
        if ((rc = mr_buf_printf(b, "# HELP mediarelay_all_%s_total %s (all items)\n"
                                "# TYPE mediarelay_all_%s_total counter\n"
                                "mediarelay_all_%s_total %lld\n"
                                "# HELP mediarelay_%s_total %s (per item)\n"
                                "# TYPE mediarelay_%s_total counter\n",
                                fields[f], help[f], fields[f], fields[f], s->total.v[f],
                                fields[f], help[f], fields[f])))
            return rc;
        for (size_t i = 0; i < s->n; i++) {
            if ((rc = mr_buf_printf(b, "mediarelay_%s_total{kind=\"", fields[f])) ||
                (rc = label(b, s->items[i].kind)) ||
                (rc = mr_buf_puts(b, "\",id=\"")) ||
                (rc = label(b, s->items[i].id)) ||
                (rc = mr_buf_printf(b, "\"} %lld\n", s->items[i].v[f])))
                return rc;
        }
    }
    return MR_OK;
}
