/* main.c - mediarelay-jobs: the media-jobs API (docs/jobs.md).  It queues
 * tasks, reports them and serves their results; mediarelay-worker runs
 * them.  Its own executable, so that a client following a task's progress
 * (Server-Sent Events) holds one of its threads, never a resolver's. */
#include "app/server.h"
#include "fcgi/jobs/handlers.h"

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/jobs", mr_handle_health, 0 },
    { MR_POST, "/api/analyze", jobs_analyze, 0 },
    { MR_POST, "/api/download", jobs_download, 0 },
    { MR_POST, "/api/process", jobs_process, 0 },
    { MR_GET, "/api/tasks", jobs_task_list, 0 },
    { MR_GET, "/api/tasks/{id}", jobs_task_get, 0 },
    { MR_DELETE, "/api/tasks/{id}", jobs_task_delete, 0 },
    { MR_GET, "/api/tasks/{id}/events", jobs_task_events, 0 },
    { MR_POST, "/api/tasks/{id}/media", jobs_task_media, 0 },
    { MR_GET, "/api/download-result/{id}", jobs_result, 0 },
    { MR_GET, "/api/results/{token}/{name}", jobs_results_file, 0 },
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
