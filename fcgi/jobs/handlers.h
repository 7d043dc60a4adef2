/* handlers.h - mediarelay-jobs' request handlers and what they share. */
#ifndef MR_JOBS_HANDLERS_H
#define MR_JOBS_HANDLERS_H

#include <stdbool.h>

#include "app/jobs.h"
#include "app/server.h"

struct json_object;

/* The caller and, when the route names one, its task. */
struct caller {
    const char *user;
    bool admin;
};

/* Who calls (answered with 401/503 when no one known). */
int jobs_caller(struct mr_ctx *ctx, struct caller *who);
/* The task {id} of the route, when the caller may see it: the admin any,
 * a user their own (others' are 404, as if they did not exist).  Answered
 * when not. */
int jobs_task(struct mr_ctx *ctx, const struct caller *who, struct mr_task *t);
/* The request body as a JSON object of at most cap bytes (answered when
 * not). */
int jobs_body(struct mr_ctx *ctx, size_t cap, struct json_object **root);
/* Media jobs need Redis: MR_OK when it answers, else answered 503. */
int jobs_need_redis(struct mr_ctx *ctx);

/* analyze.c */
int jobs_analyze(struct mr_ctx *ctx);
/* tasks.c */
int jobs_download(struct mr_ctx *ctx);
int jobs_process(struct mr_ctx *ctx);
int jobs_task_get(struct mr_ctx *ctx);
int jobs_task_delete(struct mr_ctx *ctx);
int jobs_task_list(struct mr_ctx *ctx);
int jobs_task_events(struct mr_ctx *ctx);
/* result.c */
int jobs_result(struct mr_ctx *ctx);
int jobs_task_media(struct mr_ctx *ctx);

#endif
