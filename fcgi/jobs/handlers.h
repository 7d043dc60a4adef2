/* handlers.h - mediarelay-jobs' request handlers and what they share. */
#ifndef MR_JOBS_HANDLERS_H
#define MR_JOBS_HANDLERS_H

#include <stdbool.h>

#include "app/jobs.h"
#include "app/server.h"

struct json_object;

/* Answers an error and returns its code, never MR_OK: what the checks
 * below do when they refuse, so that "if ((rc = check(ctx))) return rc;"
 * stops the handler (mr_resp_error itself returns MR_OK once it has
 * answered). */
#define JOBS_REFUSE(ctx, err, ...) \
    (mr_resp_error(&(ctx)->resp, (err), __VA_ARGS__), (err))
#define JOBS_REFUSE_STATUS(ctx, status, code, msg) \
    (mr_resp_error_status(&(ctx)->resp, (status), (code), (msg)), MR_EINVAL)

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
int jobs_results_file(struct mr_ctx *ctx);
int jobs_task_media(struct mr_ctx *ctx);

#endif
