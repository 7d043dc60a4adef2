/* main.c - mediarelay-worker: runs media jobs (docs/jobs.md).
 *
 * One main thread takes entries from the queues (XREADGROUP on the streams
 * jobs:q:download and jobs:q:process, as consumer --id of the group
 * "workers") while it has free slots (jobs.max_running, of which
 * jobs.max_running_process for ffmpeg), takes over entries whose worker
 * went silent (XAUTOCLAIM after jobs.claim_idle_s), and runs each job in a
 * thread of its own (run.c).  Every minute it removes result folders whose
 * task has expired.  On SIGTERM or SIGINT it takes nothing new, lets the
 * running jobs finish for server.drain_timeout_s, then hands the rest back
 * to the queue and exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/jobs.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/lru.h"
#include "net/store.h"
#include "worker/worker.h"

#define MAX_SLOTS 256
#define TAKE_BLOCK_MS 500          /* a stop is seen within this */
#define SWEEP_EVERY_MS 60000
#define SWEEP_GRACE_S 600          /* a folder without a record, kept this long */

static struct worker W;
static struct job *slots[MAX_SLOTS];
static int guard_fd = -1;          /* the guardian's pipe, write end */

/* ---- the guardian ------------------------------------------------------------
 *
 * A process forked at start, before any thread, that reads "+PGID" and
 * "-PGID" records from a pipe.  When the worker ends, however it ends, the
 * pipe's last write end closes and the guardian kills every group it was
 * told of and not told gone, then exits.  (PR_SET_PDEATHSIG would reach
 * only the direct child, not yt-dlp's ffmpeg.)  The write end is
 * O_CLOEXEC, so no program of a job holds it open. */

#define GUARD_MAX 1024

static void guardian(int fd)
{
    pid_t groups[GUARD_MAX];
    size_t n = 0;
    char buf[4096], rec[32];
    size_t rn = 0;
    ssize_t got;

    signal(SIGINT, SIG_IGN);    /* a terminal's ^C is for the worker: it */
    signal(SIGTERM, SIG_IGN);   /* stops its jobs itself, then EOF comes */
    signal(SIGHUP, SIG_IGN);
    while ((got = read(fd, buf, sizeof(buf))) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] != '\n') {
                if (rn + 1 < sizeof(rec))
                    rec[rn++] = buf[i];
                continue;
            }
            rec[rn] = '\0';
            rn = 0;
            {
                long pgid = strtol(rec + 1, NULL, 10);
                if (pgid <= 1)
                    continue;
                if (rec[0] == '+' && n < GUARD_MAX) {
                    groups[n++] = (pid_t)pgid;
                } else if (rec[0] == '-') {
                    for (size_t k = 0; k < n; k++)
                        if (groups[k] == (pid_t)pgid) {
                            groups[k] = groups[--n];
                            break;
                        }
                }
            }
        }
    }
    for (size_t k = 0; k < n; k++)
        kill(-groups[k], SIGKILL);
    _exit(0);
}

static int guardian_start(void)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC))
        return -1;
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[1]);
        guardian(p[0]);
    }
    close(p[0]);
    guard_fd = p[1];
    return 0;
}

void mr_worker_guard(pid_t pgid, bool alive)
{
    char rec[32];
    int n = snprintf(rec, sizeof(rec), "%c%ld\n", alive ? '+' : '-', (long)pgid);

    /* One record is far below PIPE_BUF: written whole, never interleaved. */
    if (guard_fd >= 0 && write(guard_fd, rec, (size_t)n) != n)
        mr_warn("the guardian did not get %s", rec);
}

static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;

    while (sigwait(set, &sig) == 0) {
        if (sig == SIGTERM || sig == SIGINT) {
            mr_info("stopping: no new jobs; running ones get server.drain_timeout_s");
            atomic_store(&W.stopping, true);
            return NULL;
        }
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mediarelay-worker [--config FILE] [--id NAME] [--check] [--version]\n"
            "\n"
            "Runs media jobs (yt-dlp downloads, ffmpeg processing) queued by\n"
            "mediarelay-jobs in Redis.  Any number of workers on any number of hosts\n"
            "may share one Redis; --id names this one in the queues' consumer group\n"
            "(default HOSTNAME:PID; keep it stable across restarts so that its jobs\n"
            "are found again).  SIGTERM: finish or hand back the running jobs, exit.\n");
}

/* Joins the threads that are done; counts the others. */
static void reap(long *running, long *running_process)
{
    *running = *running_process = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct job *j = slots[i];
        if (!j)
            continue;
        if (atomic_load(&j->done)) {
            pthread_join(j->thread, NULL);
            free(j);
            slots[i] = NULL;
            continue;
        }
        (*running)++;
        if (j->process)
            (*running_process)++;
    }
}

static void launch(const struct mr_job_msg *m)
{
    struct job *j = calloc(1, sizeof(*j));
    int i;

    for (i = 0; i < MAX_SLOTS && slots[i]; i++)
        ;
    if (!j || i == MAX_SLOTS) {
        free(j);
        mr_error("no room for job %s: left pending", m->task);
        return;
    }
    j->w = &W;
    j->m = *m;
    j->process = strstr(m->queue, "process") != NULL;
    atomic_init(&j->done, false);
    if (pthread_create(&j->thread, NULL, mr_worker_run, j)) {
        mr_error("cannot start a thread for job %s: left pending", m->task);
        free(j);
        return;
    }
    slots[i] = j;
}

/* Removes result folders whose task record is gone (expired after
 * jobs.keep_s, or deleted), once they are older than SWEEP_GRACE_S (a
 * task being queued has its folder made before its record can be read). */
static void sweep(struct mr_store *s)
{
    DIR *d = opendir(W.conf->jobs.dir);
    struct dirent *e;
    time_t now = time(NULL);

    if (!d)
        return;
    while ((e = readdir(d))) {
        struct stat st;
        bool exists = true;
        if (!mr_task_id_ok(e->d_name, strlen(e->d_name)))
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode) ||
            now - st.st_mtime < SWEEP_GRACE_S)
            continue;
        if (mr_task_exists(s, e->d_name, &exists) || exists)
            continue;
        mr_info("removing the results of expired task %s", e->d_name);
        mr_jobs_remove_dir(W.conf, e->d_name);
    }
    closedir(d);
}

static void serve(struct mr_store *s)
{
    const struct mr_conf *c = W.conf;
    long long next_claim = 0, next_sweep = mr_clock_mono_ms() + 5000;
    long running, running_process;

    mr_jobs_group_ensure(s, "jobs:q:download");
    mr_jobs_group_ensure(s, "jobs:q:process");
    while (!atomic_load(&W.stopping)) {
        const char *queues[2];
        size_t nq = 0;
        struct mr_job_msg m;
        int got = 0;

        reap(&running, &running_process);
        if (running < c->jobs.max_running)
            queues[nq++] = "jobs:q:download";
        if (running < c->jobs.max_running && running_process < c->jobs.max_running_process)
            queues[nq++] = "jobs:q:process";
        if (!nq) {
            struct timespec ts = { 0, 200 * 1000000L };
            nanosleep(&ts, NULL);
            continue;
        }
        if (!mr_store_redis_up(s) && mr_store_ping(s)) {
            struct timespec ts = { 0, 500 * 1000000L };
            nanosleep(&ts, NULL);
            continue;
        }
        if (mr_clock_mono_ms() >= next_claim) {
            /* Entries of workers that went silent, first. */
            for (size_t i = 0; i < nq && !got; i++)
                got = mr_jobs_take_idle(s, W.id, queues[i], c->jobs.claim_idle_s * 1000, &m) == 1;
            if (got)
                mr_info("took over job %s (its worker went silent)", m.task);
            else
                next_claim = mr_clock_mono_ms() + c->jobs.claim_idle_s * 1000 / 4;
        }
        if (!got)
            got = mr_jobs_take(s, c, W.id, queues, nq, TAKE_BLOCK_MS, &m) == 1;
        if (got) {
            if (m.task[0])
                launch(&m);
            else
                mr_jobs_ack(s, &m);
        }
        if (mr_clock_mono_ms() >= next_sweep) {
            sweep(s);
            next_sweep = mr_clock_mono_ms() + SWEEP_EVERY_MS;
        }
    }

    /* Draining: the running jobs may finish, then are handed back. */
    {
        long long deadline = mr_clock_mono_ms() + c->server.drain_timeout_s * 1000;
        for (;;) {
            reap(&running, &running_process);
            if (!running)
                break;
            if (mr_clock_mono_ms() >= deadline && !atomic_load(&W.hand_back)) {
                mr_info("handing %ld running job(s) back to the queue", running);
                atomic_store(&W.hand_back, true);
            }
            {
                struct timespec ts = { 0, 100 * 1000000L };
                nanosleep(&ts, NULL);
            }
        }
    }
}

int main(int argc, char **argv)
{
    struct mr_conf *conf = NULL;
    struct mr_buf errors;
    struct mr_store *store;
    const char *path, *id = NULL;
    bool check_only = false;
    pthread_t sig_thread;
    sigset_t set;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("mediarelay-worker %s\n", PACKAGE_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--check")) {
            check_only = true;
        } else if (!strcmp(argv[i], "--id") && i + 1 < argc) {
            id = argv[++i];
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            i++;
        } else {
            fprintf(stderr, "mediarelay-worker: unknown argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (id && (!*id || strlen(id) > 100 || strpbrk(id, " \t\r\n"))) {
        fprintf(stderr, "mediarelay-worker: --id: 1-100 characters without spaces\n");
        return 2;
    }
    mr_log_setup("mediarelay-worker", "info", "stderr");
    path = mr_conf_path(argc, argv);
    mr_buf_init(&errors, 64 << 10);
    if (mr_conf_load(path, &conf, &errors)) {
        fprintf(stderr, "mediarelay-worker: refusing to start: the configuration %s has "
                "errors:\n%s", path, errors.p ? errors.p : "");
        mr_buf_free(&errors);
        return 1;
    }
    mr_buf_free(&errors);
    if (check_only) {
        printf("mediarelay-worker: %s is valid\n", path);
        mr_conf_free(conf);
        return 0;
    }
    if (!*conf->redis) {
        fprintf(stderr, "mediarelay-worker: media jobs need Redis (the configuration's "
                "\"redis\" is empty)\n");
        mr_conf_free(conf);
        return 1;
    }
    mr_log_setup("mediarelay-worker", conf->log.level, conf->log.target);
    if (mkdir(conf->jobs.dir, 0755) && errno != EEXIST) {
        fprintf(stderr, "mediarelay-worker: cannot make jobs.dir %s: %s\n", conf->jobs.dir,
                strerror(errno));
        mr_conf_free(conf);
        return 1;
    }
    W.conf = conf;
    if (id) {
        snprintf(W.id, sizeof(W.id), "%s", id);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof(host) - 1);
        snprintf(W.id, sizeof(W.id), "%s:%ld", host, (long)getpid());
    }
    W.fallback = mr_lru_new((size_t)conf->store.fallback_entries,
                            (size_t)conf->store.fallback_bytes);
    store = W.fallback ? mr_store_new(conf, W.fallback) : NULL;
    if (!store) {
        fprintf(stderr, "mediarelay-worker: out of memory\n");
        mr_lru_free(W.fallback);
        mr_conf_free(conf);
        return 1;
    }

    if (guardian_start()) {
        fprintf(stderr, "mediarelay-worker: cannot start its guardian: %s\n", strerror(errno));
        return 1;
    }
    /* Every thread blocks the stop signals; one thread waits for them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&sig_thread, NULL, signal_thread, &set)) {
        fprintf(stderr, "mediarelay-worker: cannot start its signal thread\n");
        return 1;
    }
    pthread_detach(sig_thread);
    mr_info("worker %s: %ld job(s) at once (%ld of them processing), results in %s",
            W.id, conf->jobs.max_running, conf->jobs.max_running_process, conf->jobs.dir);
    serve(store);
    mr_info("worker %s stopped", W.id);
    mr_store_free(store);
    mr_lru_free(W.fallback);
    mr_conf_free(conf);
    return 0;
}
