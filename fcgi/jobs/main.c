/* main.c - mediarelay-jobs: the media-jobs API (docs/jobs.md).  It queues
 * tasks, reports them and serves their results; mediarelay-worker runs
 * them. */
#include "app/server.h"

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/jobs", mr_handle_health, 0 },
    { MR_POST, "/api/analyze", mr_handle_not_implemented, 0 },
    { MR_POST, "/api/download", mr_handle_not_implemented, 0 },
    { MR_POST, "/api/process", mr_handle_not_implemented, 0 },
    { MR_GET, "/api/tasks", mr_handle_not_implemented, 0 },
    { MR_GET | MR_DELETE, "/api/tasks/{id}", mr_handle_not_implemented, 0 },
    { MR_GET, "/api/tasks/{id}/events", mr_handle_not_implemented, 0 },
    { MR_POST, "/api/tasks/{id}/media", mr_handle_not_implemented, 0 },
    { MR_GET, "/api/download-result/{id}", mr_handle_not_implemented, 0 },
    { 0 }
};

static const struct mr_app app = {
    .name = "jobs",
    .routes = routes,
};

int main(int argc, char **argv)
{
    return mr_server_main(&app, argc, argv);
}
