/* jobs.h - media-job tasks and their queues in Redis (docs/jobs.md).
 *
 * A task is the hash task:{id} (status, progress, request, result ...);
 * its owner's index is the sorted set tasks:{user} (by creation time),
 * everyone's is tasks-all (the admin's list), and tasks-open:{user} holds
 * the owner's tasks that have not ended (the queue cap).  (No user name
 * can make one of these keys another's.)  The queues are
 * the Redis streams jobs:q:download and jobs:q:process, read by the
 * consumer group "workers" (XREADGROUP); an entry stays pending while a
 * worker runs it, the worker renews its claim (XCLAIM to itself) while it
 * lives, and a pending entry idle for jobs.claim_idle_s is taken over by
 * another worker (XAUTOCLAIM).  Every change of a task is one Lua script,
 * so the checks (who runs it, which attempt, whether it was canceled) and
 * the change are one step for every process and host.
 *
 * All of it needs Redis: without it, MR_EUNAVAILABLE.
 */
#ifndef MR_JOBS_H
#define MR_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"

struct json_object;
struct mr_conf;
struct mr_store;

#define MR_TASK_ID_LEN 24            /* hex */
#define MR_JOBS_GROUP "workers"
#define MR_JOBS_MAX_USER 256
#define MR_TASK_MAX_FILES 32         /* result files looked at */

/* A task as read: field/value pairs from HGETALL, in an arena. */
struct mr_task {
    char **kv;
    size_t n;                        /* pairs */
};

/* A field's value, or NULL. */
const char *mr_task_get(const struct mr_task *t, const char *field);

/* The file names of a completed task's result (in its folder), the main
 * one first: a download's "files", else a process's output_file, then its
 * thumbnail_file.  Only plain names (no '/', no leading '.', no control
 * byte), at most max; strings in the arena.  Returns how many. */
size_t mr_task_files(const struct mr_task *t, struct mr_arena *a, const char **names,
                     size_t max);

/* Whether s is a task id (MR_TASK_ID_LEN lowercase hex digits). */
bool mr_task_id_ok(const char *s, size_t n);
/* Whether a status is final: completed, failed, canceled. */
bool mr_task_ended(const char *status);

/* The queue of a task type ("download", "process"): "jobs:q:download". */
const char *mr_jobs_queue(const char *type);

/* Creates the consumer group of a queue (from its start; MKSTREAM) unless
 * it exists.  Once per process per queue is enough. */
int mr_jobs_group_ensure(struct mr_store *s, const char *queue);

/* Queues a new task: the record, its owner's indexes and the queue entry,
 * in one step.  MR_ELIMIT when the owner has jobs.max_queued_per_user
 * tasks that have not ended.  id gets the new id. */
int mr_task_create(struct mr_store *s, const struct mr_conf *c, const char *type,
                   const char *user, const char *request_json, char id[MR_TASK_ID_LEN + 1]);

/* Reads task:{id}.  MR_ENOTFOUND when there is none. */
int mr_task_read(struct mr_store *s, struct mr_arena *a, const char *id, struct mr_task *t);

/* The API's view of a task (task_id, type, status, progress ...). */
struct json_object *mr_task_json(const struct mr_task *t);

/* Ids of a user's tasks (user NULL: everyone's), newest first, at most
 * max, in the arena. */
int mr_task_ids(struct mr_store *s, struct mr_arena *a, const char *user, size_t max,
                char ***ids, size_t *n);
/* Reads many tasks in one round trip; a vanished one has n == 0 (and is
 * dropped from the indexes). */
int mr_task_read_many(struct mr_store *s, struct mr_arena *a, const char *user,
                      char **ids, size_t n, struct mr_task *out);

/* Cancels a task that has not ended: 1 when it did (a worker running it
 * stops within a second), 0 when it had ended already.  MR_ENOTFOUND. */
int mr_task_cancel(struct mr_store *s, const struct mr_conf *c, const char *id, int *done);
/* Deletes a task's record and index entries (its files are the caller's). */
int mr_task_delete(struct mr_store *s, const char *id, const char *user);

/* ---- the worker's side ------------------------------------------------------ */

/* One entry taken from a queue. */
struct mr_job_msg {
    char queue[32];                  /* "jobs:q:download" */
    char msg_id[48];                 /* the stream entry's id */
    char task[MR_TASK_ID_LEN + 1];
};

/* Waits up to block_ms for a new entry of the given queues (XREADGROUP
 * ... >; the connection's timeout is lengthened for it).  1 with *m
 * filled, 0 when none came. */
int mr_jobs_take(struct mr_store *s, const struct mr_conf *c, const char *consumer, const char *const *queues,
                 size_t nqueues, long block_ms, struct mr_job_msg *m);
/* Takes over one entry of a queue idle for at least idle_ms (XAUTOCLAIM).
 * 1 with *m filled, 0 when there is none. */
int mr_jobs_take_idle(struct mr_store *s, const char *consumer, const char *queue,
                      long idle_ms, struct mr_job_msg *m);
/* Renews the claim on an entry: 1 while it is still ours, 0 when another
 * worker took it over. */
int mr_jobs_renew(struct mr_store *s, const char *consumer, const struct mr_job_msg *m);
/* Done with an entry (XACK, XDEL). */
int mr_jobs_ack(struct mr_store *s, const struct mr_job_msg *m);

/* Starts an attempt of the task: 1 with *attempt set (status
 * downloading/processing, worker = consumer); 0 when it ended or was
 * canceled (nothing to do); MR_ENOTFOUND when the record is gone; 2 when it
 * has had jobs.max_attempts attempts already: it has been failed. */
int mr_task_start(struct mr_store *s, const struct mr_conf *c, const struct mr_job_msg *m,
                  const char *consumer, long *attempt);

/* Sets fields of a running task (pairs, NULL-terminated; "progress" never
 * goes down).  1 done; 0 the task was canceled or ended (stop);
 * -2 another attempt owns it (stop, touch nothing); MR_ENOTFOUND. */
int mr_task_update(struct mr_store *s, const char *id, long attempt, const char *consumer,
                   const char *const *fields);
/* Ends the attempt: status "completed" or "failed" with the fields given;
 * the record then lives jobs.keep_s.  Same answers as mr_task_update. */
int mr_task_finish(struct mr_store *s, const struct mr_conf *c, const char *id,
                   long attempt, const char *consumer, const char *status,
                   const char *const *fields);
/* Gives a running task back to the queue (a worker that stops): pending
 * again, this attempt not counted, a new queue entry. */
int mr_task_handback(struct mr_store *s, const struct mr_conf *c, const struct mr_job_msg *m,
                     long attempt, const char *consumer);

/* Removes jobs.dir/<id>/ and everything in it (no link is followed).
 * MR_OK also when it was not there. */
int mr_jobs_remove_dir(const struct mr_conf *c, const char *id);

/* Whether task:{id} exists (the sweep of old result folders). */
int mr_task_exists(struct mr_store *s, const char *id, bool *exists);

#endif
