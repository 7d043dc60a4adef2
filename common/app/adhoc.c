/* adhoc.c - the client's budget and the bounded set of anonymous ad-hoc items. */
#include "app/adhoc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>

#include "app/server.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/log.h"
#include "net/netguard.h"
#include "net/store.h"

/* ---- the client ------------------------------------------------------------ */

/* Parses a numeric address (no port, no brackets) into *ss. */
static bool parse_addr(const char *s, size_t n, struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

    if (!n || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        *len = sizeof(*v4);
        return true;
    }
    if (inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        *len = sizeof(*v6);
        return true;
    }
    return false;
}

static bool trusted(const struct mr_ctx *ctx, const struct sockaddr_storage *ss, socklen_t len)
{
    const struct mr_strlist *t = &ctx->conf->server.trusted_proxies;

    for (size_t i = 0; i < t->n; i++)
        if (mr_netguard_match((const struct sockaddr *)ss, len, t->v[i]))
            return true;
    return false;
}

/* The key of an address: IPv4 as it is (also when mapped into IPv6), IPv6
 * as its /64. */
static void key_of(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char buf[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, sizeof(buf));
        snprintf(out, len, "%s", buf);
        return;
    }
    {
        struct in6_addr a = ((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof(buf));
            snprintf(out, len, "%s", buf);
            return;
        }
        memset(&a.s6_addr[8], 0, 8);
        inet_ntop(AF_INET6, &a, buf, sizeof(buf));
        snprintf(out, len, "%s/64", buf);
    }
}

void mr_adhoc_client(const struct mr_ctx *ctx, char *out, size_t len)
{
    const struct mr_str ra = ctx->req.remote_addr;
    const char *xff = mr_request_header(&ctx->req, "x-forwarded-for");
    struct sockaddr_storage cur, next;
    socklen_t curlen, nextlen;
    size_t end;

    if (!ra.p || !parse_addr(ra.p, ra.len, &cur, &curlen)) {
        snprintf(out, len, "unknown");
        return;
    }
    /* Walk X-Forwarded-For from the right while the hop that added the
     * entry is trusted; the first untrusted one is the client.  A
     * malformed entry ends the walk: what its writer said is not
     * believed. */
    end = xff ? strlen(xff) : 0;
    for (int hops = 0; xff && hops < MR_ADHOC_XFF_HOPS && trusted(ctx, &cur, curlen); hops++) {
        size_t start = end, a, b;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        a = start;
        b = end;
        while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
            a++;
        while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
            b--;
        if (!parse_addr(xff + a, b - a, &next, &nextlen))
            break;
        cur = next;
        curlen = nextlen;
        if (start == 0)
            break;
        end = start - 1;
    }
    key_of(&cur, out, len);
}

/* ---- the budget ------------------------------------------------------------ */

/* GCRA: KEYS[1] holds the theoretical arrival time (ms) of the next
 * request; a request is let through when it is at most `period` ahead of
 * now, and moves it by `step`.  Returns 0, or the ms to wait. */
static const char lua_spend[] =
    "local burst, period = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local step = math.max(1, math.floor(period / burst))\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') or 0, now)\n"
    "local wait = tat + step - period - now\n"
    "if wait > 0 then return wait end\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', tat + step), 'PX',\n"
    "           string.format('%.0f', tat + step - now))\n"
    "return 0\n";

int mr_adhoc_spend(struct mr_store *store, const char *client, long burst, long window_s,
                   long *retry_s)
{
    redisContext *c = mr_store_redis(store);
    char key[MR_STORE_KEY_MAX], rel[MR_STORE_KEY_MAX], b[24], p[24];
    redisReply *r;
    int rc;

    *retry_s = 0;
    if (!c)
        return MR_EUNAVAILABLE;
    snprintf(rel, sizeof(rel), "rl:open:%s", client);
    if (mr_store_key(store, rel, key, sizeof(key)))
        return MR_EINTERNAL;
    snprintf(b, sizeof(b), "%ld", burst);
    snprintf(p, sizeof(p), "%lld", (long long)window_s * 1000);
    r = redisCommand(c, "EVAL %s 1 %s %s %s", lua_spend, key, b, p);
    if (!r) {
        mr_store_lost(store);
        return MR_EUNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        rc = r->integer > 0 ? MR_ELIMIT : MR_OK;
        *retry_s = r->integer > 0 ? (long)((r->integer + 999) / 1000) : 0;
    } else {
        mr_warn("open resolve budget: %s", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        rc = MR_EUNAVAILABLE;
    }
    freeReplyObject(r);
    return rc;
}

/* ---- the set of anonymous items ---------------------------------------------- */

int mr_adhoc_cached(struct mr_ctx *ctx, const char *provider, bool remote, const char *id,
                    bool *registered, bool *cached)
{
    redisContext *c = mr_store_redis(ctx->store);
    char k[3][MR_STORE_KEY_MAX], rel[3][MR_STORE_KEY_MAX];
    long long have[3] = { 0, 0, 0 };
    int rc = MR_OK;

    *registered = *cached = false;
    if (!c)
        return MR_EUNAVAILABLE;
    snprintf(rel[0], sizeof(rel[0]), "media:%s", id);
    snprintf(rel[1], sizeof(rel[1]), "url:%s:%s", provider, id);
    snprintf(rel[2], sizeof(rel[2]), "fail:url:%s:%s", provider, id);
    for (int i = 0; i < 3; i++)
        if (mr_store_key(ctx->store, rel[i], k[i], sizeof(k[i])))
            return MR_EINTERNAL;
    for (int i = 0; i < 3; i++)
        redisAppendCommand(c, "EXISTS %s", k[i]);
    for (int i = 0; i < 3; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            mr_store_lost(ctx->store);
            return MR_EUNAVAILABLE;
        }
        if (r->type == REDIS_REPLY_INTEGER)
            have[i] = r->integer;
        else
            rc = MR_EUNAVAILABLE;
        freeReplyObject(r);
    }
    *registered = have[0] > 0;
    *cached = have[0] && (!remote || have[1] || have[2]);
    return rc;
}

/* KEYS[1] the set (scores: last use, ms); ARGV: member, max, ttl (ms),
 * add ("1"), most to drop.  Returns the members dropped. */
static const char lua_keep[] =
    "local member, max, ttl, add, most = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),\n"
    "      ARGV[4] == '1', tonumber(ARGV[5])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',\n"
    "                        '(' .. string.format('%.0f', now - ttl), 'LIMIT', 0, most)\n"
    "for _, m in ipairs(gone) do redis.call('ZREM', KEYS[1], m) end\n"
    "if add then redis.call('ZADD', KEYS[1], now, member)\n"
    "else redis.call('ZADD', KEYS[1], 'XX', now, member) end\n"
    "local over = math.min(redis.call('ZCARD', KEYS[1]) - max, most - #gone)\n"
    "if over > 0 then\n"
    "  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, over)) do\n"
    "    if over > 0 and m ~= member then\n"
    "      redis.call('ZREM', KEYS[1], m)\n"
    "      gone[#gone + 1] = m\n"
    "      over = over - 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return gone\n";

/* Drops the keys of the items named "provider:id" in r (one pipeline). */
static int drop_items(struct mr_store *store, redisContext *c, const redisReply *r)
{
    size_t sent = 0;

    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        char rel[MR_STORE_KEY_MAX], k[5][MR_STORE_KEY_MAX], idx[MR_STORE_KEY_MAX];
        const char *colon, *id;
        int prov_len;

        if (e->type != REDIS_REPLY_STRING || !(colon = memchr(e->str, ':', e->len)) ||
            memchr(e->str, '\0', e->len))
            continue;
        prov_len = (int)(colon - e->str);
        id = colon + 1;
        if (!mr_conf_id_ok(id))
            continue;
        snprintf(rel, sizeof(rel), "media:%s", id);
        mr_store_key(store, rel, k[0], sizeof(k[0]));
        snprintf(rel, sizeof(rel), "url:%.*s:%s", prov_len, e->str, id);
        mr_store_key(store, rel, k[1], sizeof(k[1]));
        snprintf(rel, sizeof(rel), "fail:url:%.*s:%s", prov_len, e->str, id);
        mr_store_key(store, rel, k[2], sizeof(k[2]));
        snprintf(rel, sizeof(rel), "stats:media:%s", id);
        mr_store_key(store, rel, k[3], sizeof(k[3]));
        mr_store_key(store, "stats:index", k[4], sizeof(k[4]));
        snprintf(idx, sizeof(idx), "media:%s", id);
        redisAppendCommand(c, "DEL %s %s %s %s", k[0], k[1], k[2], k[3]);
        redisAppendCommand(c, "SREM %s %s", k[4], idx);
        sent += 2;
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *x = NULL;
        if (redisGetReply(c, (void **)&x) != REDIS_OK || !x) {
            mr_store_lost(store);
            return MR_EUNAVAILABLE;
        }
        freeReplyObject(x);
    }
    return MR_OK;
}

int mr_adhoc_keep(struct mr_store *store, const char *provider, const char *id, bool add,
                  long max, size_t *evicted)
{
    redisContext *c = mr_store_redis(store);
    char key[MR_STORE_KEY_MAX], member[MR_STORE_KEY_MAX], m[24], ttl[24], most[24];
    redisReply *r;
    int rc = MR_OK;

    if (evicted)
        *evicted = 0;
    if (!c)
        return MR_EUNAVAILABLE;
    if (mr_store_key(store, "adhoc", key, sizeof(key)))
        return MR_EINTERNAL;
    snprintf(member, sizeof(member), "%s:%s", provider, id);
    snprintf(m, sizeof(m), "%ld", max);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)MR_ADHOC_TTL_S * 1000);
    snprintf(most, sizeof(most), "%d", MR_ADHOC_EVICT_MAX);
    r = redisCommand(c, "EVAL %s 1 %s %s %s %s %s %s", lua_keep, key, member, m, ttl,
                     add ? "1" : "0", most);
    if (!r) {
        mr_store_lost(store);
        return MR_EUNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        if (r->elements)
            rc = drop_items(store, c, r);
        if (!rc && evicted)
            *evicted = r->elements;
        if (r->elements)
            mr_info("open resolve: %zu ad-hoc item(s) dropped (resolve.open_max_items %ld, "
                    "or unused for %d s)", r->elements, max, MR_ADHOC_TTL_S);
    } else {
        mr_warn("open resolve items: %s", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        rc = MR_EUNAVAILABLE;
    }
    freeReplyObject(r);
    return rc;
}
