/* analyze.c - POST /api/analyze {"url"}: what yt-dlp finds on a page.
 *
 * One yt-dlp run (--dump-single-json) answers every caller of the same URL
 * for jobs.analyze_ttl_s: its mapped answer is kept in Redis under
 * analyze:{sha256(url)}, and while it runs, the others wait for it under a
 * lock (single flight).  A failure is kept for resolve.error_ttl_s, so the
 * callers that waited get its answer instead of each running yt-dlp again.
 * At most ANALYZE_RUNNING runs per process at once; one more is 503 with
 * Retry-After rather than a thread held for a minute.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/sha.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "fcgi/jobs/handlers.h"
#include "format/jobspec.h"
#include "net/store.h"
#include "net/upstream.h"
#include "providers/ytdlp.h"

#define ANALYZE_RUNNING 4
#define BODY_MAX 16384

static atomic_int running;

struct wait_arg {
    struct mr_ctx *ctx;
    const char *key;
    struct mr_str *out;
};

static int cached(void *arg)
{
    struct wait_arg *w = arg;

    return mr_store_get(w->ctx->store, w->ctx->arena, w->key, w->out) ? MR_ENOTFOUND : MR_OK;
}

static bool client_gone(void *arg)
{
    return mr_resp_client_gone(&((struct wait_arg *)arg)->ctx->resp);
}

/* Answers a kept result: {"error": {...}, "status": N} or the analysis. */
static int answer(struct mr_ctx *ctx, struct mr_str v)
{
    struct json_object *o, *err, *st;

    if (mr_json_parse_object(ctx->arena, v.p, v.len, MR_JOBS_JSON_DEPTH + 4, &o))
        return mr_resp_error(&ctx->resp, MR_EINTERNAL, "a kept analysis is unreadable");
    if (json_object_object_get_ex(o, "error", &err) &&
        json_object_object_get_ex(o, "status", &st)) {
        struct json_object *m = NULL;
        json_object_object_get_ex(err, "message", &m);
        return mr_resp_error_status(&ctx->resp, json_object_get_int(st), "upstream_failed",
                                    m ? json_object_get_string(m) : "yt-dlp failed");
    }
    mr_resp_header(&ctx->resp, "Cache-Control", "no-store");
    return mr_resp_json(&ctx->resp, 200, o);
}

/* Runs yt-dlp and keeps what it says (or why it failed). */
static int run(struct mr_ctx *ctx, const char *url, const char *key, struct mr_str *out)
{
    const struct mr_conf *c = ctx->conf;
    struct json_object *o = NULL;
    struct mr_buf buf;
    char msg[400];
    long ttl_ms;
    int rc, status = 502;

    if (atomic_fetch_add(&running, 1) >= ANALYZE_RUNNING) {
        atomic_fetch_sub(&running, 1);
        return MR_EOVERLOADED;
    }
    mr_buf_init(&buf, (size_t)c->jobs.analyze_max_bytes);
    rc = mr_ytdlp_run(c->jobs.ytdlp, url, c->jobs.analyze_timeout_s, &buf, msg, sizeof(msg));
    atomic_fetch_sub(&running, 1);
    if (!rc && mr_jobs_analyze_map(buf.p ? buf.p : "", buf.len, &o, msg, sizeof(msg)))
        rc = MR_EUPSTREAM;
    mr_buf_free(&buf);
    if (rc) {
        status = rc == MR_ETIMEOUT ? 504 : rc == MR_EUNAVAILABLE ? 503 : 502;
        mr_warn("analyze: %s", msg);
        o = json_object_new_object();
        if (o) {
            struct json_object *e = json_object_new_object();
            json_object_object_add(e, "code", json_object_new_string("upstream_failed"));
            json_object_object_add(e, "message", json_object_new_string(msg));
            json_object_object_add(o, "error", e);
            json_object_object_add(o, "status", json_object_new_int(status));
        }
        ttl_ms = c->resolve.error_ttl_s * 1000;
    } else {
        ttl_ms = c->jobs.analyze_ttl_s * 1000;
    }
    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    out->p = mr_arena_strdup(ctx->arena, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    if (!out->p)
        return MR_ENOMEM;
    out->len = strlen(out->p);
    if (ttl_ms > 0)
        mr_store_set(ctx->store, key, out->p, out->len, ttl_ms);
    return MR_OK;
}

int jobs_analyze(struct mr_ctx *ctx)
{
    struct json_object *root, *v;
    struct caller who;
    const char *url, *why = NULL;
    unsigned char md[SHA256_DIGEST_LENGTH];
    char key[128], lock[160];
    struct mr_str out = { NULL, 0 };
    struct mr_store_lock l;
    int rc;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_body(ctx, BODY_MAX, &root)))
        return rc;
    json_object_object_foreach(root, k, val) {
        if (strcmp(k, "url"))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "%.64s: unknown field (url)", k);
        (void)val;
    }
    if (!json_object_object_get_ex(root, "url", &v))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "url: missing");
    url = json_object_get_string(v);
    if (!json_object_is_type(v, json_type_string) || !mr_ytdlp_url_ok(url))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "url: an http or https URL of at most %d "
                             "bytes, without spaces", MR_YTDLP_MAX_URL);
    rc = mr_upstream_vet(ctx->conf, ctx->arena, url, &why);
    if (rc == MR_EBLOCKED)
        return mr_resp_error(&ctx->resp, rc, "url: its host's address is not one the relay "
                             "may reach (%s)", why ? why : "refused");
    if (rc)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "url: its host cannot be resolved");

    SHA256((const unsigned char *)url, strlen(url), md);
    snprintf(key, sizeof(key), "analyze:");
    for (size_t i = 0; i < 16; i++)
        snprintf(key + 8 + 2 * i, 3, "%02x", md[i]);
    snprintf(lock, sizeof(lock), "lock:%s", key);
    if (!mr_store_get(ctx->store, ctx->arena, key, &out))
        return answer(ctx, out);
    {
        struct wait_arg wa = { ctx, key, &out };
        long ttl = mr_store_lock_ttl(ctx->conf->jobs.analyze_timeout_s * 1000);
        struct mr_store_wait w = { .wait_ms = ttl, .pause_us = 20000, .max_pause_us = 250000,
                                   .ready = cached, .give_up = client_gone, .arg = &wa };
        rc = mr_store_lock_or_wait(ctx->store, lock, ttl, &w, &l);
    }
    if (rc == MR_OK && !l.held)
        return answer(ctx, out);
    if (rc == MR_EBUSY)
        return mr_resp_error(&ctx->resp, MR_ETIMEOUT, "another analysis of this URL did not "
                             "finish in time");
    if (rc)
        return mr_resp_error(&ctx->resp, rc, NULL);
    rc = run(ctx, url, key, &out);
    mr_store_unlock(ctx->store, &l);
    if (rc == MR_EOVERLOADED) {
        mr_resp_header(&ctx->resp, "Retry-After", "5");
        return mr_resp_error(&ctx->resp, rc, "too many analyses at once; try again shortly");
    }
    if (rc)
        return rc;
    return answer(ctx, out);
}
