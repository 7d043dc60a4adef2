/* main.c - mediarelay-resolve: the JSON control plane. */
#include <json-c/json.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app/adhoc.h"
#include "app/auth.h"
#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "app/stats.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "net/store.h"
#include "relay/mediasource.h"
#include "relay/resolver.h"

/* GET /api/stats (admin_token or metrics_token) */
static int get_stats(struct mr_ctx *ctx)
{
    struct mr_stats st;
    struct json_object *o;
    int rc;

    if ((rc = mr_stats_read(ctx->store, ctx->arena, &st)))
        return rc;
    o = mr_stats_json(&st);
    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    return mr_resp_json(&ctx->resp, 200, o);
}

/* GET /metrics (Prometheus; admin_token or metrics_token) */
static int get_metrics(struct mr_ctx *ctx)
{
    struct mr_stats st;
    struct mr_buf *b;
    int rc;

    if ((rc = mr_stats_read(ctx->store, ctx->arena, &st)))
        return rc;
    b = mr_arena_alloc(ctx->arena, sizeof(*b));
    if (!b)
        return MR_ENOMEM;
    mr_buf_init(b, 64u << 20);
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, b)) ||
        (rc = mr_stats_prometheus(&st, b)))
        return rc;
    if ((rc = mr_resp_set_header(&ctx->resp, "Content-Type",
                                 "text/plain; version=0.0.4; charset=utf-8")) ||
        (rc = mr_resp_set_header(&ctx->resp, "Cache-Control", "no-store")) ||
        (rc = mr_resp_headerf(&ctx->resp, "Content-Length", "%zu", b->len)))
        return rc;
    return mr_resp_write(&ctx->resp, b->p, b->len);
}

/* The item as the registry has it; its source (which may hold headers and
 * cookies) only for the admin. */
static struct json_object *media_json(struct mr_ctx *ctx, const struct mr_media *m)
{
    struct json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    json_object_object_add(o, "id", json_object_new_string(m->id));
    json_object_object_add(o, "provider", json_object_new_string(m->provider));
    json_object_object_add(o, "title", m->title ? json_object_new_string(m->title) : NULL);
    json_object_object_add(o, "room", m->room ? json_object_new_string(m->room) : NULL);
    json_object_object_add(o, "read_only", json_object_new_boolean(m->from_conf));
    if (m->source && mr_auth_admin(ctx) == MR_OK)
        json_object_object_add(o, "source", json_object_get(m->source));
    return o;
}

/* GET /api/media/{id} */
static int get_media(struct mr_ctx *ctx)
{
    struct json_object *o = media_json(ctx, ctx->media);
    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    return mr_resp_json(&ctx->resp, 200, o);
}

/* DELETE /api/media/{id} (admin) */
static int delete_media(struct mr_ctx *ctx)
{
    const struct mr_media *m = ctx->media;
    char key[MR_MEDIA_ID_MAX + 16];

    if (m->from_conf)
        return mr_resp_error(&ctx->resp, MR_EMETHOD, "media item \"%s\" is in the "
                             "configuration: it is read-only", m->id);
    snprintf(key, sizeof(key), "media:%s", m->id);
    mr_store_del(ctx->store, key);
    mr_resolve_forget(ctx, m);
    mr_resp_status(&ctx->resp, 204);
    return mr_resp_finish(&ctx->resp);
}

/* POST /api/media (admin): {"provider","source",("id","title","room")} */
static int post_media(struct mr_ctx *ctx)
{
    struct mr_str body;
    struct json_object *root, *idv, *item, *o;
    struct mr_media m, existing;
    char id[MR_MEDIA_ID_MAX + 1], why[320];
    int rc;

    rc = mr_request_body(&ctx->req, ctx->arena, MR_MEDIA_JSON_MAX, &body);
    if (rc == MR_ETOOBIG)
        return mr_resp_error(&ctx->resp, rc, "a media item is at most %u bytes",
                             MR_MEDIA_JSON_MAX);
    if (rc)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "cannot read the request body");
    rc = mr_json_parse_object(ctx->arena, body.p, body.len, 16, &root);
    if (rc == MR_ENOMEM)
        return rc;
    if (rc)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "the body must be a JSON object");
    if (json_object_object_get_ex(root, "id", &idv)) {
        const char *s = json_object_get_string(idv);
        if (!json_object_is_type(idv, json_type_string) || !mr_conf_id_ok(s))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "id: 1-%d characters of A-Z a-z 0-9 "
                                 ". _ -", MR_MEDIA_ID_MAX);
        snprintf(id, sizeof(id), "%s", s);
        if (!mr_media_get(ctx->conf, ctx->store, ctx->arena, mr_str_c(id), &existing))
            return mr_resp_error_status(&ctx->resp, 409, "conflict",
                                        "a media item with this id exists");
    } else if ((rc = mr_media_new_id(id))) {
        return rc;
    }
    /* What is stored is what was checked: the known fields only. */
    item = json_object_new_object();
    if (mr_json_own(ctx->arena, item))
        return MR_ENOMEM;
    json_object_object_foreach(root, k, v) {
        if (!strcmp(k, "provider") || !strcmp(k, "source") || !strcmp(k, "title") ||
            !strcmp(k, "room"))
            json_object_object_add(item, k, json_object_get(v));
        else if (strcmp(k, "id"))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "%.64s: unknown field", k);
    }
    {
        const char *text = json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN);
        if ((rc = mr_media_parse(ctx->arena, id, mr_str_c(text), &m, why, sizeof(why))))
            return rc == MR_EINVAL ? mr_resp_error(&ctx->resp, rc, "%s", why) : rc;
    }
    if ((rc = mr_media_store(ctx->store, id, item, 0)))
        return mr_resp_error(&ctx->resp, rc, "the media item cannot be stored (Redis)");
    o = media_json(ctx, &m);
    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    json_object_object_add(o, "source_url", json_object_new_string(
        mr_arena_printf(ctx->arena, "/api/media/%s/source", id)));
    return mr_resp_json(&ctx->resp, 201, o);
}

static int answer_source(struct mr_ctx *ctx, const struct mr_media *m)
{
    struct mr_source src;
    struct json_object *o;
    int rc;

    if ((rc = mr_resolve(ctx, m, &src)))
        return mr_answer_unresolved(ctx, m, rc);
    if ((rc = mr_mediasource_json(ctx, m, &src, &o)))
        return rc == MR_EINVAL ? mr_resp_error(&ctx->resp, rc, "cannot tell this server's "
                                               "own URL: set public_url") : rc;
    return mr_resp_json(&ctx->resp, 200, o);
}

/* GET /api/media/{id}/source */
static int get_source(struct mr_ctx *ctx)
{
    return answer_source(ctx, ctx->media);
}

/* The bounds of an anonymous /api/resolve (resolve.open; adhoc.h): a
 * request that would cost a registration or a resolution spends one of
 * the client's budget.  MR_OK when it may go on, nothing sent (*registered:
 * whether the item was there already); otherwise the refusal is answered
 * (429 with Retry-After, or 503 without Redis) and its error returned. */
static int open_gate(struct mr_ctx *ctx, const struct mr_provider *p, const char *id,
                     bool *registered)
{
    const struct mr_conf *c = ctx->conf;
    char client[MR_ADHOC_CLIENT_MAX];
    bool cached;
    long retry_s;
    int rc;

    rc = mr_adhoc_cached(ctx, p->name, p->remote, id, registered, &cached);
    if (!rc && (cached || !c->resolve.open_client_budget))
        return MR_OK;
    if (!rc) {
        mr_adhoc_client(ctx, client, sizeof(client));
        rc = mr_adhoc_spend(ctx->store, client, c->resolve.open_client_budget,
                            c->resolve.open_window_s, &retry_s);
    }
    if (rc == MR_ELIMIT) {
        mr_resp_headerf(&ctx->resp, "Retry-After", "%ld", retry_s);
        mr_resp_error(&ctx->resp, rc, "%s has resolved its %ld new URLs per %ld s "
                      "(resolve.open_client_budget): the next one in %ld s; URLs resolved "
                      "already are answered meanwhile", client, c->resolve.open_client_budget,
                      c->resolve.open_window_s, retry_s);
    } else if (rc) {
        rc = MR_EUNAVAILABLE;
        mr_resp_error(&ctx->resp, rc, "/api/resolve cannot count this client's URLs while "
                      "Redis is down");
    }
    return rc;
}

/* GET /api/resolve?url=U: a MediaSource for a page URL, from the first
 * provider that can handle it.  The item is registered for a day under an
 * id made from the URL, so the relay URLs in the answer work.  Without the
 * admin token (resolve.open), within the client's budget and the bound on
 * anonymous items. */
static int get_resolve(struct mr_ctx *ctx)
{
    const struct mr_conf *c = ctx->conf;
    const struct mr_provider *const *p;
    struct json_object *item, *src;
    struct mr_media m;
    char id[24], why[320], h[33];
    char *url = NULL;
    bool admin = mr_auth_admin(ctx) == MR_OK, registered = true;
    int rc;

    if (!admin && !c->resolve.open) {
        mr_resp_header(&ctx->resp, "WWW-Authenticate", "Bearer");
        return mr_resp_error(&ctx->resp, MR_EUNAUTHORIZED, "/api/resolve needs the admin "
                             "token (or resolve.open)");
    }
    rc = mr_request_query(&ctx->req, ctx->arena, "url", &url);
    if (rc || !url || !*url)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "url: a page or media URL is required");
    for (p = mr_providers; *p; p++)
        if ((*p)->can_handle && (*p)->can_handle(url))
            break;
    if (!*p)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "no provider handles this URL");
    mr_hash_hex(url, h);
    snprintf(id, sizeof(id), "u-%.16s", h);
    item = json_object_new_object();
    src = json_object_new_object();
    if (mr_json_own(ctx->arena, item) || !src)
        return MR_ENOMEM;
    json_object_object_add(src, "url", json_object_new_string(url));
    json_object_object_add(item, "provider", json_object_new_string((*p)->name));
    json_object_object_add(item, "source", src);
    {
        const char *text = json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN);
        if ((rc = mr_media_parse(ctx->arena, id, mr_str_c(text), &m, why, sizeof(why))))
            return rc == MR_EINVAL ? mr_resp_error(&ctx->resp, rc, "%s", why) : rc;
    }
    if (!admin && (rc = open_gate(ctx, *p, id, &registered)))
        return rc;      /* answered */
    if ((rc = mr_media_store(ctx->store, id, item, MR_ADHOC_TTL_S * 1000L)))
        return mr_resp_error(&ctx->resp, rc, "the item cannot be stored (Redis)");
    /* An item an anonymous client registers joins the bounded set; any
     * other use only renews its place there, if it has one (an item the
     * admin registered has none). */
    if (c->resolve.open &&
        mr_adhoc_keep(ctx->store, (*p)->name, id, !registered, c->resolve.open_max_items,
                      NULL) && !registered)
        return mr_resp_error(&ctx->resp, MR_EUNAVAILABLE, "the item cannot be stored (Redis)");
    return answer_source(ctx, &m);
}

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/resolve", mr_handle_health, 0 },
    { MR_POST, "/api/media", post_media, MR_ROUTE_ADMIN },
    { MR_GET, "/api/media/{id}", get_media, MR_ROUTE_MEDIA },
    { MR_DELETE, "/api/media/{id}", delete_media, MR_ROUTE_ADMIN | MR_ROUTE_MEDIA },
    { MR_GET, "/api/media/{id}/source", get_source, MR_ROUTE_MEDIA },
    { MR_GET, "/api/resolve", get_resolve, 0 },
    { MR_GET, "/api/stats", get_stats, MR_ROUTE_METRICS },
    { MR_GET, "/metrics", get_metrics, MR_ROUTE_METRICS },
    { 0 }
};

static const struct mr_app app = {
    .name = "resolve",
    .routes = routes,
};

int main(int argc, char **argv)
{
    return mr_server_main(&app, argc, argv);
}
