/* worker.h - mediarelay-worker's parts: the daemon (main.c) takes jobs
 * from the queues and runs each in a thread of its own (run.c). */
#ifndef MR_WORKER_H
#define MR_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "app/jobs.h"

struct mr_conf;
struct mr_lru;

struct worker {
    const struct mr_conf *conf;
    struct mr_lru *fallback;           /* the stores' in-process cache */
    char id[128];                      /* the consumer name */
    atomic_bool stopping;              /* SIGTERM: take nothing new */
    atomic_bool hand_back;             /* the drain is over: give jobs back */
};

/* One job being run. */
struct job {
    struct worker *w;
    struct mr_job_msg m;
    bool process;                      /* of the process queue */
    pthread_t thread;
    atomic_bool done;                  /* the thread may be joined */
};

/* Tells the guardian (main.c) about a program a job runs: the process
 * group pgid now runs (alive) or is gone.  When the worker dies, even by
 * SIGKILL, the guardian kills every group still running, so no yt-dlp or
 * ffmpeg outlives its worker to write into a folder that another worker's
 * attempt now owns. */
void mr_worker_guard(pid_t pgid, bool alive);

/* The thread of one job: start its attempt, run it, record how it ended,
 * acknowledge its queue entry (or leave it for another worker, or hand it
 * back).  Sets j->done last. */
void *mr_worker_run(void *job);

#endif
