/* child.h - running another program (yt-dlp, ffprobe, ffmpeg) safely.
 *
 * posix_spawn with an argv array (never a shell), in a process group of its
 * own (so all it starts can be killed at once), stdin from /dev/null,
 * stdout and stderr into O_CLOEXEC pipes, no descriptor of ours inherited,
 * an empty signal mask and default dispositions, in a given directory, with
 * the environment it is given (mr_child_env: PATH, HOME=/nonexistent,
 * LANG=C.UTF-8 and nothing else).  mr_child_run drains both pipes in one
 * poll() loop against a deadline and a stop check; whatever ends it, the
 * whole group is killed and the child reaped: nothing outlives the call.
 */
#ifndef MR_CHILD_H
#define MR_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MR_CHILD_TAIL 2048          /* stderr kept for the message */
#define MR_CHILD_MAX_MESSAGE 300    /* the one line handed on */

/* The last MR_CHILD_TAIL bytes of a stream. */
struct mr_child_tail {
    char b[2 * MR_CHILD_TAIL];
    size_t n;
};
void mr_child_tail_add(struct mr_child_tail *t, const char *p, size_t n);
/* The line to report: the last one that starts with "ERROR:" (yt-dlp's
 * mark) or, failing that, the last non-empty one; printable ASCII only
 * (other bytes as '?'), at most MR_CHILD_MAX_MESSAGE bytes.  `fallback`
 * when the tail is empty. */
void mr_child_tail_message(const struct mr_child_tail *t, char *msg, size_t msglen,
                           const char *fallback);

/* Cuts a stream into lines ('\n' or '\r' ends one; empty ones are
 * skipped).  A line longer than MR_CHILD_MAX_LINE is dropped whole. */
#define MR_CHILD_MAX_LINE 4096
struct mr_child_lines {
    char b[MR_CHILD_MAX_LINE];
    size_t n;
    bool overlong;
};
void mr_child_lines_feed(struct mr_child_lines *l, const char *p, size_t n,
                         void (*line)(void *arg, const char *s, size_t n), void *arg);

/* PATH (the caller's), HOME=/nonexistent, LANG=C.UTF-8. */
char *const *mr_child_env(void);

struct mr_child_spec {
    const char *path;               /* a name looked up in PATH, or a path */
    char *const *argv;
    const char *cwd;                /* NULL: "/" */
    /* Called with what the child writes; either may be NULL (dropped).
     * Returning nonzero stops the run (as a stop). */
    int (*on_out)(void *arg, const char *p, size_t n);
    int (*on_err)(void *arg, const char *p, size_t n);
    /* Called at least every tick_ms (and after output); nonzero stops the
     * run: the group is killed.  NULL: never. */
    int (*tick)(void *arg);
    long tick_ms;                   /* 0: 1000 */
    /* Told the child's pid (its process group's id) once it runs, and again
     * with alive false once it was killed and reaped.  NULL: not told. */
    void (*on_pid)(void *arg, pid_t pid, bool alive);
    void *arg;
    long long deadline_ms;          /* mr_clock_mono_ms() time; 0: none */
};

enum mr_child_end {
    MR_CHILD_EXITED,                /* status says how */
    MR_CHILD_STOPPED,               /* a callback said stop */
    MR_CHILD_TIMEOUT,               /* the deadline passed */
    MR_CHILD_NOT_RUN,               /* it could not be started: msg says why */
};

struct mr_child_result {
    enum mr_child_end end;
    int status;                     /* the wait status, when EXITED */
    int spawn_errno;                /* when NOT_RUN */
};

/* Runs s->path to its end.  MR_OK with *r filled, or MR_ENOMEM /
 * MR_EINTERNAL (no pipe, no spawn attributes) with msg set. */
int mr_child_run(const struct mr_child_spec *s, struct mr_child_result *r, char *msg,
                 size_t msglen);

/* "exited with status 3", "was killed by signal 9" for a wait status. */
void mr_child_status_str(int status, char *buf, size_t len);

#endif
