/* main.c - mediarelay-segment: manifest-bound chunks, cached. */
#include "fcgi/segment/handlers.h"

#include "app/server.h"

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/segment", mr_handle_health, 0 },
    { MR_GET, "/api/seg/{token}", mr_hls_segment, 0 },
    { MR_GET, "/api/seg/{token}/{tail*}", mr_dash_segment, 0 },
    { 0 }
};

static const struct mr_app app = {
    .name = "segment",
    .routes = routes,
};

int main(int argc, char **argv)
{
    return mr_server_main(&app, argc, argv);
}
