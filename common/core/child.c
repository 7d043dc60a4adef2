/* child.c - running another program: spawn, drain, kill, reap (child.h). */
#include "core/child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/str.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* ---- the stderr tail and its message ---------------------------------------- */

void mr_child_tail_add(struct mr_child_tail *t, const char *p, size_t n)
{
    if (n >= MR_CHILD_TAIL) {
        memcpy(t->b, p + n - MR_CHILD_TAIL, MR_CHILD_TAIL);
        t->n = MR_CHILD_TAIL;
        return;
    }
    if (t->n + n > sizeof(t->b)) {
        size_t keep = MR_CHILD_TAIL - n;
        memmove(t->b, t->b + t->n - keep, keep);
        t->n = keep;
    }
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

/* One printable ASCII line: other bytes become '?', cut at dstlen - 1. */
static void sanitize_line(char *dst, size_t dstlen, const char *s, size_t n)
{
    size_t k = 0;

    if (!dstlen)
        return;
    for (size_t i = 0; i < n && k + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[k++] = mr_is_vchar(c) || c == ' ' ? (char)c : '?';
    }
    dst[k] = '\0';
}

void mr_child_tail_message(const struct mr_child_tail *t, char *msg, size_t msglen,
                           const char *fallback)
{
    const char *best = NULL, *last = NULL;
    size_t bestn = 0, lastn = 0, i = 0;

    while (i < t->n) {
        size_t j = i;
        while (j < t->n && t->b[j] != '\n' && t->b[j] != '\r')
            j++;
        if (j > i) {
            last = t->b + i;
            lastn = j - i;
            if (lastn >= 6 && !memcmp(last, "ERROR:", 6)) {
                best = last;
                bestn = lastn;
            }
        }
        i = j + 1;
    }
    if (!best) {
        best = last;
        bestn = lastn;
    }
    if (!best) {
        snprintf(msg, msglen, "%s", fallback);
        return;
    }
    sanitize_line(msg, msglen < MR_CHILD_MAX_MESSAGE + 1 ? msglen : MR_CHILD_MAX_MESSAGE + 1,
                  best, bestn);
}

/* ---- lines ---------------------------------------------------------------- */

void mr_child_lines_feed(struct mr_child_lines *l, const char *p, size_t n,
                         void (*line)(void *arg, const char *s, size_t n), void *arg)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\n' || c == '\r') {
            if (!l->overlong && l->n)
                line(arg, l->b, l->n);
            l->n = 0;
            l->overlong = false;
        } else if (l->n < sizeof(l->b)) {
            l->b[l->n++] = c;
        } else {
            l->overlong = true;
        }
    }
}

/* ---- the environment ------------------------------------------------------ */

static char *child_env[4];
static pthread_once_t child_env_once = PTHREAD_ONCE_INIT;

static void child_env_init(void)
{
    static char path_default[] = "PATH=" DEFAULT_PATH;
    static char home[] = "HOME=/nonexistent";
    static char lang[] = "LANG=C.UTF-8";
    const char *path = getenv("PATH");
    char *p = NULL;

    if (path && *path && (p = malloc(strlen(path) + 6)))
        snprintf(p, strlen(path) + 6, "PATH=%s", path);    /* kept for the process */
    child_env[0] = p ? p : path_default;
    child_env[1] = home;
    child_env[2] = lang;
    child_env[3] = NULL;
}

char *const *mr_child_env(void)
{
    pthread_once(&child_env_once, child_env_init);
    return child_env;
}

/* ---- running ---------------------------------------------------------------- */

/* A pipe whose ends are O_CLOEXEC and above stderr, so that the dup2 of the
 * file actions always makes a fresh, inheritable descriptor. */
static int cloexec_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC))
        return -1;
    for (int i = 0; i < 2; i++) {
        if (p[i] <= 2) {
            int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
            if (fd < 0) {
                close(p[0]);
                close(p[1]);
                p[0] = p[1] = -1;    /* the caller's cleanup must not close them again */
                return -1;
            }
            close(p[i]);
            p[i] = fd;
        }
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Reaps pid, waiting until deadline (ms; 0: do not wait) at most; then its
 * whole group is killed.  The group is killed before the reap in every
 * case, while the unreaped leader still holds the group's id: nothing it
 * started outlives it, and no other group can be hit.  Returns the wait
 * status. */
static int reap(pid_t pid, long long deadline, bool *timed_out)
{
    siginfo_t si;
    int status = 0;

    for (;;) {
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
            if (si.si_pid == pid)
                break;      /* exited, not reaped yet */
        } else if (errno != EINTR) {
            break;
        }
        if (mr_clock_mono_ms() >= deadline) {
            *timed_out = true;
            break;
        }
        {
            struct timespec ts = { 0, 10 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static int spawn(const struct mr_child_spec *s, int outp[2], int errp[2], pid_t *pid,
                 int *spawn_errno)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t set;
    int rc = MR_EINTERNAL, e;

    if (posix_spawn_file_actions_init(&fa))
        return MR_EINTERNAL;
    if (posix_spawnattr_init(&attr)) {
        posix_spawn_file_actions_destroy(&fa);
        return MR_EINTERNAL;
    }
    if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
        posix_spawn_file_actions_adddup2(&fa, outp[1], 1) ||
        posix_spawn_file_actions_adddup2(&fa, errp[1], 2))
        goto out;
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 34)
    /* Descriptors that are not O_CLOEXEC (a FastCGI connection, Redis,
     * curl's) must not reach the child. */
    if (posix_spawn_file_actions_addclosefrom_np(&fa, 3))
        goto out;
#endif
#if __GLIBC_PREREQ(2, 29)
    if (posix_spawn_file_actions_addchdir_np(&fa, s->cwd ? s->cwd : "/"))
        goto out;
#endif
#endif
    /* Its own group (to kill all of it), an empty signal mask (the server's
     * threads block SIGTERM) and default dispositions (it ignores SIGPIPE). */
    sigemptyset(&set);
    if (posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF) ||
        posix_spawnattr_setpgroup(&attr, 0) || posix_spawnattr_setsigmask(&attr, &set))
        goto out;
    sigfillset(&set);
    sigdelset(&set, SIGKILL);
    sigdelset(&set, SIGSTOP);
    if (posix_spawnattr_setsigdefault(&attr, &set))
        goto out;
    /* posix_spawnp looks a bare name up in our own PATH. */
    e = strchr(s->path, '/') ? posix_spawn(pid, s->path, &fa, &attr, s->argv, mr_child_env())
                             : posix_spawnp(pid, s->path, &fa, &attr, s->argv, mr_child_env());
    if (e) {
        *pid = -1;
        *spawn_errno = e;
    }
    rc = MR_OK;
out:
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int mr_child_run(const struct mr_child_spec *s, struct mr_child_result *r, char *msg,
                 size_t msglen)
{
    int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
    long tick_ms = s->tick_ms > 0 ? s->tick_ms : 1000;
    long long next_tick;
    bool timed_out = false, stopped = false;
    pid_t pid = -1;
    int rc;

    memset(r, 0, sizeof(*r));
    if (!s->path || !*s->path) {
        r->end = MR_CHILD_NOT_RUN;
        r->spawn_errno = ENOENT;
        snprintf(msg, msglen, "no program to run");
        return MR_OK;
    }
    if (cloexec_pipe(outp) || cloexec_pipe(errp)) {
        snprintf(msg, msglen, "cannot make a pipe: %s", strerror(errno));
        close_fd(&outp[0]);
        close_fd(&outp[1]);
        return MR_EINTERNAL;
    }
    rc = spawn(s, outp, errp, &pid, &r->spawn_errno);
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    if (rc || pid < 0) {
        close_fd(&outp[0]);
        close_fd(&errp[0]);
        if (rc) {
            snprintf(msg, msglen, "cannot prepare to run %.200s", s->path);
            return rc;
        }
        r->end = MR_CHILD_NOT_RUN;
        snprintf(msg, msglen, "%.200s cannot be run: %s", s->path,
                 r->spawn_errno == ENOENT ? "not found" : strerror(r->spawn_errno));
        return MR_OK;
    }
    fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
    fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);
    if (s->on_pid)
        s->on_pid(s->arg, pid, true);

    next_tick = mr_clock_mono_ms() + tick_ms;
    while ((outp[0] >= 0 || errp[0] >= 0) && !stopped) {
        struct pollfd pf[2] = { { outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
        long long now = mr_clock_mono_ms(), wait = next_tick - now;
        char chunk[16384];
        int n;

        if (s->deadline_ms && now >= s->deadline_ms) {
            timed_out = true;
            break;
        }
        if (s->deadline_ms && s->deadline_ms - now < wait)
            wait = s->deadline_ms - now;
        if (wait < 0)
            wait = 0;
        n = poll(pf, 2, (int)wait);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; n > 0 && i < 2 && !stopped; i++) {
            int *fd = i ? &errp[0] : &outp[0];
            int (*cb)(void *, const char *, size_t) = i ? s->on_err : s->on_out;
            ssize_t got;
            if (*fd < 0 || !pf[i].revents)
                continue;
            got = read(*fd, chunk, sizeof(chunk));
            if (got > 0) {
                if (cb && cb(s->arg, chunk, (size_t)got))
                    stopped = true;
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                close_fd(fd);
            }
        }
        if (!stopped && s->tick && mr_clock_mono_ms() >= next_tick) {
            if (s->tick(s->arg))
                stopped = true;
            next_tick = mr_clock_mono_ms() + tick_ms;
        }
    }
    /* Whatever ended the loop, a child that is still there gets until the
     * deadline to exit (with its pipes closed it is about to); a stop or a
     * timeout ends it at once. */
    {
        long long until = stopped || timed_out ? 0
                          : s->deadline_ms ? s->deadline_ms : mr_clock_mono_ms() + 5000;
        bool late = false;
        r->status = reap(pid, until, &late);
        timed_out = timed_out || (late && s->deadline_ms);
    }
    if (s->on_pid)
        s->on_pid(s->arg, pid, false);
    close_fd(&outp[0]);
    close_fd(&errp[0]);
    r->end = stopped ? MR_CHILD_STOPPED : timed_out ? MR_CHILD_TIMEOUT : MR_CHILD_EXITED;
    return MR_OK;
}

void mr_child_status_str(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "ended with wait status %d", status);
}
