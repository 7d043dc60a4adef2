/* resolve.c - mediarelay-resolve: the JSON control plane. */
#include <json-c/json.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "server.h"
#include "stats.h"

/* GET /api/stats */
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

/* GET /metrics (Prometheus) */
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

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/resolve", mr_handle_health, 0 },
    { MR_POST, "/api/media", mr_handle_not_implemented, MR_ROUTE_ADMIN },
    { MR_GET, "/api/media/{id}", mr_handle_not_implemented, MR_ROUTE_MEDIA },
    { MR_DELETE, "/api/media/{id}", mr_handle_not_implemented, MR_ROUTE_ADMIN | MR_ROUTE_MEDIA },
    { MR_GET, "/api/media/{id}/source", mr_handle_not_implemented, MR_ROUTE_MEDIA },
    { MR_GET, "/api/resolve", mr_handle_not_implemented, 0 },
    { MR_GET, "/api/stats", get_stats, 0 },
    { MR_GET, "/metrics", get_metrics, 0 },
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
