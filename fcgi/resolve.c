/* resolve.c - mediarelay-resolve: the JSON control plane. */
#include "server.h"

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/resolve", mr_handle_health, 0 },
    { MR_POST, "/api/media", mr_handle_not_implemented, MR_ROUTE_ADMIN },
    { MR_GET, "/api/media/{id}", mr_handle_not_implemented, MR_ROUTE_MEDIA },
    { MR_DELETE, "/api/media/{id}", mr_handle_not_implemented, MR_ROUTE_ADMIN | MR_ROUTE_MEDIA },
    { MR_GET, "/api/media/{id}/source", mr_handle_not_implemented, MR_ROUTE_MEDIA },
    { MR_GET, "/api/resolve", mr_handle_not_implemented, 0 },
    { MR_GET, "/api/stats", mr_handle_not_implemented, 0 },
    { MR_GET, "/metrics", mr_handle_not_implemented, 0 },
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
