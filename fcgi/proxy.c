/* proxy.c - mediarelay-proxy: whole files and dynamic upstreams. */
#include "server.h"

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/proxy", mr_handle_health, 0 },
    { MR_GET, "/api/proxy/media/{id}", mr_handle_not_implemented, MR_ROUTE_MEDIA },
    { MR_GET, "/stream", mr_handle_not_implemented, 0 },
    { MR_GET, "/api/proxy/stream", mr_handle_not_implemented, 0 },
    { 0 }
};

static const struct mr_app app = {
    .name = "proxy",
    .routes = routes,
};

int main(int argc, char **argv)
{
    return mr_server_main(&app, argc, argv);
}
