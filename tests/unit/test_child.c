/* test_child.c - running another program (core/child.h) with real children:
 * exit statuses, programs that are not there, both pipes drained at once, a
 * deadline and stops that kill the whole process group, the child's
 * directory, environment, stdin and descriptors; and the pure halves, the
 * stderr tail's message and the line splitter.
 *
 * The program makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so
 * that a grandchild orphaned by a killed child is reparented here: the test
 * reaps it and sees that it died by SIGKILL, whatever PID 1 does with
 * zombies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/child.h"
#include "core/clock.h"
#include "core/error.h"

static char dir[64];           /* the program's temporary directory */

/* ---- helpers ----------------------------------------------------------------- */

struct ev {
    pid_t pid;
    bool alive;
};

/* What the callbacks saw. */
struct run {
    struct mr_buf out, err;
    size_t out_calls, err_calls, ticks;
    size_t stop_out_after;      /* on_out says stop at this call (0: never) */
    size_t stop_err_after;
    size_t stop_tick_after;
    struct ev ev[4];
    size_t nev;
    bool alive_ok;              /* on_pid(alive) found the pid alive, its own group */
    struct mr_child_result r;
    char msg[512];
    int rc;
    long long ms;               /* how long mr_child_run took */
};

static int on_out(void *arg, const char *p, size_t n)
{
    struct run *x = arg;
    assert_int_equal(mr_buf_append(&x->out, p, n), MR_OK);
    x->out_calls++;
    return x->stop_out_after && x->out_calls >= x->stop_out_after;
}

static int on_err(void *arg, const char *p, size_t n)
{
    struct run *x = arg;
    assert_int_equal(mr_buf_append(&x->err, p, n), MR_OK);
    x->err_calls++;
    return x->stop_err_after && x->err_calls >= x->stop_err_after;
}

static int on_tick(void *arg)
{
    struct run *x = arg;
    x->ticks++;
    return x->stop_tick_after && x->ticks >= x->stop_tick_after;
}

static void on_pid(void *arg, pid_t pid, bool alive)
{
    struct run *x = arg;
    if (x->nev < sizeof(x->ev) / sizeof(x->ev[0]))
        x->ev[x->nev] = (struct ev){ pid, alive };
    x->nev++;
    if (alive)
        x->alive_ok = kill(pid, 0) == 0 && getpgid(pid) == pid;
}

static void run_init(struct run *x)
{
    memset(x, 0, sizeof(*x));
    mr_buf_init(&x->out, 16 << 20);
    mr_buf_init(&x->err, 16 << 20);
}

static void run_free(struct run *x)
{
    mr_buf_free(&x->out);
    mr_buf_free(&x->err);
}

/* Runs path/argv with every callback wired to *x; deadline_ms from now (0:
 * none), cwd as given. */
static void run_spec(struct run *x, const char *path, char *const *argv, const char *cwd,
                     long deadline_ms, long tick_ms)
{
    struct mr_child_spec s = {
        .path = path,
        .argv = argv,
        .cwd = cwd,
        .on_out = on_out,
        .on_err = on_err,
        .tick = on_tick,
        .tick_ms = tick_ms,
        .on_pid = on_pid,
        .arg = x,
    };
    long long t0 = mr_clock_mono_ms();

    if (deadline_ms)
        s.deadline_ms = t0 + deadline_ms;
    x->msg[0] = '\0';
    x->rc = mr_child_run(&s, &x->r, x->msg, sizeof(x->msg));
    x->ms = mr_clock_mono_ms() - t0;
}

/* /bin/sh -c script, with a generous deadline (a hang fails, it does not
 * block the suite). */
static void run_sh(struct run *x, const char *script)
{
    char *argv[] = { (char *)"sh", (char *)"-c", (char *)script, NULL };
    run_spec(x, "/bin/sh", argv, NULL, 30000, 0);
}

/* The one pid on_pid was told, alive then not. */
static void assert_pid_events(const struct run *x)
{
    assert_int_equal(x->nev, 2);
    assert_true(x->ev[0].pid > 0);
    assert_true(x->ev[0].alive);
    assert_int_equal(x->ev[1].pid, x->ev[0].pid);
    assert_false(x->ev[1].alive);
    assert_true(x->alive_ok);
    /* Reaped: not even a zombie is left. */
    assert_int_equal(kill(x->ev[0].pid, 0), -1);
    assert_int_equal(errno, ESRCH);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static const char *tmp_path(const char *name)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

/* A file of n deterministic, varied bytes (NULs and high bytes included). */
static char *make_file(const char *name, size_t n, unsigned seed)
{
    char *p = malloc(n);
    FILE *f;
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(seed >> 16);
    }
    f = fopen(tmp_path(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return p;
}

/* ---- exit statuses ----------------------------------------------------------- */

static void test_exit_status(void **state)
{
    struct run x;
    char text[64];
    (void)state;

    run_init(&x);
    run_sh(&x, "exit 0");
    assert_int_equal(x.rc, MR_OK);
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_true(WIFEXITED(x.r.status));
    assert_int_equal(WEXITSTATUS(x.r.status), 0);
    mr_child_status_str(x.r.status, text, sizeof(text));
    assert_string_equal(text, "exited with status 0");
    assert_pid_events(&x);
    run_free(&x);

    run_init(&x);
    run_sh(&x, "exit 3");
    assert_int_equal(x.rc, MR_OK);
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_true(WIFEXITED(x.r.status));
    assert_int_equal(WEXITSTATUS(x.r.status), 3);
    mr_child_status_str(x.r.status, text, sizeof(text));
    assert_string_equal(text, "exited with status 3");
    run_free(&x);

    run_init(&x);
    run_sh(&x, "kill -9 $$");
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_true(WIFSIGNALED(x.r.status));
    mr_child_status_str(x.r.status, text, sizeof(text));
    assert_string_equal(text, "was killed by signal 9");
    run_free(&x);

    /* Neither exited nor signaled (a stopped child's status). */
    mr_child_status_str(0x137f, text, sizeof(text));
    assert_string_equal(text, "ended with wait status 4991");
    /* Cut to the buffer. */
    mr_child_status_str(0x0300, text, 8);
    assert_string_equal(text, "exited ");
}

/* ---- programs that cannot be run ------------------------------------------------ */

/* Under valgrind, posix_spawn's vfork is a fork: an exec that fails cannot
 * tell the parent, and the child exits 127 instead (glibc's SPAWN_ERROR). */
static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

/* Whether the run ended as one whose program could not be started. */
static bool assert_not_run(struct run *x, int err)
{
    assert_int_equal(x->rc, MR_OK);
    assert_int_equal(x->out_calls, 0);
    if (x->r.end == MR_CHILD_EXITED && under_valgrind()) {
        assert_true(WIFEXITED(x->r.status));
        assert_int_equal(WEXITSTATUS(x->r.status), 127);
        return false;
    }
    assert_int_equal(x->r.end, MR_CHILD_NOT_RUN);
    assert_int_equal(x->r.spawn_errno, err);
    assert_int_equal(x->nev, 0);                 /* never ran: on_pid not told */
    assert_int_equal(x->err_calls, 0);
    return true;
}

static void test_not_found(void **state)
{
    char *argv[] = { (char *)"x", NULL };
    struct run x;
    int fds = count_fds();
    FILE *f;
    (void)state;

    /* A bare name: looked up in PATH. */
    run_init(&x);
    run_spec(&x, "mr-no-such-program-here", argv, NULL, 10000, 0);
    if (assert_not_run(&x, ENOENT))
        assert_string_equal(x.msg, "mr-no-such-program-here cannot be run: not found");
    run_free(&x);

    /* A path. */
    run_init(&x);
    run_spec(&x, "/nonexistent/dir/prog", argv, NULL, 10000, 0);
    if (assert_not_run(&x, ENOENT))
        assert_string_equal(x.msg, "/nonexistent/dir/prog cannot be run: not found");
    run_free(&x);

    /* A name with a slash is a path, not looked up in PATH. */
    run_init(&x);
    run_spec(&x, "mr-no-such-dir/sh", argv, NULL, 10000, 0);
    assert_not_run(&x, ENOENT);
    run_free(&x);

    /* No program at all. */
    run_init(&x);
    run_spec(&x, "", argv, NULL, 10000, 0);
    assert_not_run(&x, ENOENT);
    assert_string_equal(x.msg, "no program to run");
    run_free(&x);

    /* A file that is not executable: the reason is said. */
    f = fopen(tmp_path("noexec"), "w");
    assert_non_null(f);
    fputs("#!/bin/sh\nexit 0\n", f);
    fclose(f);
    assert_int_equal(chmod(tmp_path("noexec"), 0644), 0);
    run_init(&x);
    run_spec(&x, tmp_path("noexec"), argv, NULL, 10000, 0);
    if (assert_not_run(&x, EACCES))
        assert_non_null(strstr(x.msg, strerror(EACCES)));
    run_free(&x);
    unlink(tmp_path("noexec"));

    /* A directory to run in that is not there. */
    {
        char *sh[] = { (char *)"sh", (char *)"-c", (char *)"exit 0", NULL };
        run_init(&x);
        run_spec(&x, "/bin/sh", sh, "/nonexistent-mr-dir", 10000, 0);
        assert_not_run(&x, ENOENT);
        run_free(&x);
    }
    assert_int_equal(count_fds(), fds);
}

/* ---- output ------------------------------------------------------------------- */

static void test_output_exact(void **state)
{
    struct run x;
    (void)state;

    run_init(&x);
    run_sh(&x, "printf 'out1\\n'; printf 'err1\\n' >&2; printf 'x\\000y\\377' ; "
                "printf 'e\\000' >&2");
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_int_equal(x.r.status, 0);
    assert_int_equal(x.out.len, 9);
    assert_memory_equal(x.out.p, "out1\nx\0y\xff", 9);
    assert_int_equal(x.err.len, 7);
    assert_memory_equal(x.err.p, "err1\ne\0", 7);
    run_free(&x);

    /* Nothing written: no call. */
    run_init(&x);
    run_sh(&x, "exit 0");
    assert_int_equal(x.out_calls, 0);
    assert_int_equal(x.err_calls, 0);
    run_free(&x);

    /* NULL callbacks: the output is dropped, the run goes on. */
    {
        char *argv[] = { (char *)"sh", (char *)"-c",
                         (char *)"head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2; exit 4",
                         NULL };
        struct mr_child_spec s = { .path = "/bin/sh", .argv = argv,
                                   .deadline_ms = mr_clock_mono_ms() + 30000 };
        struct mr_child_result r;
        char msg[128];
        assert_int_equal(mr_child_run(&s, &r, msg, sizeof(msg)), MR_OK);
        assert_int_equal(r.end, MR_CHILD_EXITED);
        assert_true(WIFEXITED(r.status));
        assert_int_equal(WEXITSTATUS(r.status), 4);
    }
}

/* More than a pipe holds on both streams at once: a reader that drained one
 * at a time would deadlock with the child blocked on the other. */
static void test_output_large_both_pipes(void **state)
{
    const size_t na = (3u << 19) + 7, nb = (5u << 18) + 3;   /* 1.5 MiB, 1.25 MiB */
    char *a = make_file("big-a", na, 1), *b = make_file("big-b", nb, 2);
    char script[512];
    struct run x;
    (void)state;

    /* cat A & cat B >&2 (tmp_path's buffer is one: dir twice instead). */
    snprintf(script, sizeof(script), "cat '%s/big-a' & cat '%s/big-b' >&2; wait", dir, dir);
    run_init(&x);
    run_sh(&x, script);
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_int_equal(x.r.status, 0);
    assert_int_equal(x.out.len, na);
    assert_int_equal(x.err.len, nb);
    assert_memory_equal(x.out.p, a, na);
    assert_memory_equal(x.err.p, b, nb);
    assert_true(x.out_calls > 1 && x.err_calls > 1);
    assert_pid_events(&x);
    run_free(&x);
    free(a);
    free(b);
    unlink(tmp_path("big-a"));
    unlink(tmp_path("big-b"));
}

/* ---- ends: a deadline, a tick, a callback ---------------------------------------- */

static void test_timeout_kills_the_group(void **state)
{
    struct run x;
    pid_t pgid, gpid;
    char *end;
    long long until;
    int st = 0;
    (void)state;

    run_init(&x);
    /* The shell starts a grandchild in the background (in the same group),
     * tells its pid, then waits itself. */
    {
        char *argv[] = { (char *)"sh", (char *)"-c",
                         (char *)"sleep 60 & echo $!; sleep 60", NULL };
        run_spec(&x, "/bin/sh", argv, NULL, 1500, 0);
    }
    assert_int_equal(x.rc, MR_OK);
    assert_int_equal(x.r.end, MR_CHILD_TIMEOUT);
    assert_true(x.ms >= 1400);
    assert_true(x.ms < 1500 + 3000);                 /* promptly, not after 60 s */
    assert_true(WIFSIGNALED(x.r.status));
    assert_int_equal(WTERMSIG(x.r.status), SIGKILL);
    assert_pid_events(&x);
    pgid = x.ev[0].pid;

    /* The grandchild was killed with the group.  What the killed shell
     * left are zombies reparented here (or reaped by the shell itself as it
     * died): reaped, until no process of the group is left. */
    assert_true(x.out.len > 0);
    gpid = (pid_t)strtol(x.out.p, &end, 10);
    assert_true(gpid > 0 && gpid != pgid);
    assert_int_equal(*end, '\n');
    until = mr_clock_mono_ms() + 5000;
    while (kill(-pgid, 0) == 0) {
        while (waitpid(-pgid, &st, WNOHANG) > 0)
            assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        assert_true(mr_clock_mono_ms() < until);
        {
            struct timespec ts = { 0, 5 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(errno, ESRCH);
    assert_int_equal(kill(gpid, 0), -1);
    assert_int_equal(errno, ESRCH);
    run_free(&x);

    /* A deadline already past: killed at once. */
    run_init(&x);
    {
        char *argv[] = { (char *)"sleep", (char *)"60", NULL };
        struct mr_child_spec s = { .path = "sleep", .argv = argv, .on_pid = on_pid, .arg = &x,
                                   .deadline_ms = mr_clock_mono_ms() - 1 };
        long long t0 = mr_clock_mono_ms();
        assert_int_equal(mr_child_run(&s, &x.r, x.msg, sizeof(x.msg)), MR_OK);
        assert_true(mr_clock_mono_ms() - t0 < 3000);
        assert_int_equal(x.r.end, MR_CHILD_TIMEOUT);
    }
    assert_pid_events(&x);
    run_free(&x);
}

static void test_tick_stops(void **state)
{
    char *argv[] = { (char *)"sleep", (char *)"60", NULL };
    struct run x;
    (void)state;

    run_init(&x);
    x.stop_tick_after = 3;
    run_spec(&x, "sleep", argv, NULL, 0, 20);
    assert_int_equal(x.rc, MR_OK);
    assert_int_equal(x.r.end, MR_CHILD_STOPPED);
    assert_int_equal(x.ticks, 3);
    assert_true(x.ms >= 50);              /* three ticks 20 ms apart */
    assert_true(x.ms < 3000);
    assert_true(WIFSIGNALED(x.r.status));
    assert_int_equal(WTERMSIG(x.r.status), SIGKILL);
    assert_pid_events(&x);
    run_free(&x);

    /* A tick that says go on: the child runs to its end. */
    run_init(&x);
    {
        char *sh[] = { (char *)"sh", (char *)"-c", (char *)"sleep 0.3; echo done", NULL };
        run_spec(&x, "/bin/sh", sh, NULL, 30000, 20);
    }
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_int_equal(x.r.status, 0);
    assert_true(x.ticks >= 2);
    assert_string_equal(x.out.p, "done\n");
    run_free(&x);
}

static void test_callback_stops(void **state)
{
    char *yes[] = { (char *)"yes", NULL };
    char *yes_err[] = { (char *)"sh", (char *)"-c", (char *)"exec yes >&2", NULL };
    struct run x;
    (void)state;

    /* `yes` never ends by itself. */
    run_init(&x);
    x.stop_out_after = 1;
    run_spec(&x, "yes", yes, NULL, 30000, 0);
    assert_int_equal(x.rc, MR_OK);
    assert_int_equal(x.r.end, MR_CHILD_STOPPED);
    assert_int_equal(x.out_calls, 1);
    assert_true(x.ms < 10000);
    assert_true(WIFSIGNALED(x.r.status));
    assert_pid_events(&x);
    run_free(&x);

    run_init(&x);
    x.stop_err_after = 2;
    run_spec(&x, "/bin/sh", yes_err, NULL, 30000, 0);
    assert_int_equal(x.r.end, MR_CHILD_STOPPED);
    assert_int_equal(x.err_calls, 2);
    assert_int_equal(x.out_calls, 0);
    assert_pid_events(&x);
    run_free(&x);
}

/* on_pid: the pid is the child's and its group's. */
static void test_on_pid(void **state)
{
    struct run x;
    char want[32];
    (void)state;

    run_init(&x);
    run_sh(&x, "echo $$; cut -d' ' -f5 /proc/$$/stat");
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_pid_events(&x);
    snprintf(want, sizeof(want), "%d\n", (int)x.ev[0].pid);
    assert_true(x.out.len > strlen(want));
    assert_memory_equal(x.out.p, want, strlen(want));
    /* The second line is the group id: the same number. */
    assert_int_equal(strtol(x.out.p + strlen(want), NULL, 10), x.ev[0].pid);
    run_free(&x);
}

/* ---- what the child gets ----------------------------------------------------------- */

static void test_cwd(void **state)
{
    char *argv[] = { (char *)"sh", (char *)"-c", (char *)"pwd -P", NULL };
    char real[PATH_MAX], want[PATH_MAX + 2];
    struct run x;
    (void)state;

    assert_non_null(realpath(dir, real));
    snprintf(want, sizeof(want), "%s\n", real);
    run_init(&x);
    run_spec(&x, "/bin/sh", argv, dir, 30000, 0);
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_string_equal(x.out.p, want);
    run_free(&x);

    /* By default "/", wherever we are. */
    run_init(&x);
    run_spec(&x, "/bin/sh", argv, NULL, 30000, 0);
    assert_string_equal(x.out.p, "/\n");
    run_free(&x);
}

static void test_environment(void **state)
{
    char *argv[] = { (char *)"env", NULL };
    char want[8192];
    struct run x;
    (void)state;

    setenv("MR_TEST_SECRET", "do-not-leak", 1);
    setenv("http_proxy", "http://127.0.0.1:3128", 1);
    run_init(&x);
    run_spec(&x, "env", argv, NULL, 30000, 0);
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    snprintf(want, sizeof(want), "PATH=%s\nHOME=/nonexistent\nLANG=C.UTF-8\n", getenv("PATH"));
    assert_string_equal(x.out.p, want);
    run_free(&x);
    unsetenv("MR_TEST_SECRET");
    unsetenv("http_proxy");
}

static void test_stdin_is_devnull(void **state)
{
    char *cat[] = { (char *)"cat", NULL };
    struct run x;
    (void)state;

    /* Our stdin holds something: cat gets none of it, it reads EOF at
     * once. */
    {
        int p[2], saved = dup(0);
        assert_true(saved >= 0);
        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], "stdin-leaked\n", 13), 13);
        close(p[1]);
        assert_int_equal(dup2(p[0], 0), 0);
        close(p[0]);
        run_init(&x);
        run_spec(&x, "cat", cat, NULL, 30000, 0);
        assert_int_equal(dup2(saved, 0), 0);
        close(saved);
        assert_int_equal(x.r.end, MR_CHILD_EXITED);
        assert_int_equal(x.r.status, 0);
        assert_int_equal(x.out.len, 0);
        run_free(&x);
    }

    run_init(&x);
    run_sh(&x, "readlink /proc/self/fd/0");
    assert_string_equal(x.out.p, "/dev/null\n");
    run_free(&x);
}

/* Descriptors we hold without O_CLOEXEC do not reach the child; its 1 and 2
 * are pipes.  Also an empty signal mask and no ignored signal, whatever
 * ours are. */
static void test_no_inherited_fds(void **state)
{
    char *argv[] = { (char *)"ls", (char *)"-l", (char *)"/proc/self/fd/", NULL };
    char *sig[] = { (char *)"grep", (char *)"-E", (char *)"^Sig(Blk|Ign):", (char *)"/proc/self/status",
                    NULL };
    struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
    sigset_t block, old_mask;
    struct run x;
    int fd, hi = 57;
    (void)state;

    fd = open(tmp_path("marker-inherited"), O_WRONLY | O_CREAT | O_TRUNC, 0600);   /* no O_CLOEXEC */
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, hi), hi);
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    assert_int_equal(fcntl(hi, F_GETFD) & FD_CLOEXEC, 0);

    run_init(&x);
    run_spec(&x, "ls", argv, NULL, 30000, 0);
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    assert_int_equal(x.r.status, 0);
    assert_null(strstr(x.out.p, "marker-inherited"));
    assert_null(strstr(x.out.p, " 57 -> "));
    assert_non_null(strstr(x.out.p, " 0 -> /dev/null\n"));
    assert_non_null(strstr(x.out.p, " 1 -> pipe:["));
    assert_non_null(strstr(x.out.p, " 2 -> pipe:["));
    run_free(&x);
    close(fd);
    close(hi);
    unlink(tmp_path("marker-inherited"));

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
    assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
    run_init(&x);
    run_spec(&x, "grep", sig, NULL, 30000, 0);
    assert_int_equal(x.r.end, MR_CHILD_EXITED);
    /* glibc's posix_spawn leaves its two internal signals (32, 33) ignored
     * in every child: only the others are ours to check. */
    {
        const char *sigign = strstr(x.out.p, "SigIgn:\t");
        assert_non_null(strstr(x.out.p, "SigBlk:\t0000000000000000\n"));
        assert_non_null(sigign);
        assert_int_equal(strtoull(sigign + 8, NULL, 16) & ~(3ULL << 31), 0);
    }
    run_free(&x);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
}

/* Many runs of every kind leave no descriptor and no child behind. */
static void test_no_leaks(void **state)
{
    int fds = count_fds();
    (void)state;

    for (int i = 0; i < 40; i++) {
        struct run x;
        run_init(&x);
        switch (i % 4) {
        case 0:
            run_sh(&x, "echo out; echo err >&2; exit 1");
            assert_int_equal(x.r.end, MR_CHILD_EXITED);
            break;
        case 1: {
            char *argv[] = { (char *)"x", NULL };
            run_spec(&x, "mr-no-such-program-here", argv, NULL, 10000, 0);
            assert_not_run(&x, ENOENT);
            break;
        }
        case 2: {
            char *argv[] = { (char *)"yes", NULL };
            x.stop_out_after = 1;
            run_spec(&x, "yes", argv, NULL, 10000, 0);
            assert_int_equal(x.r.end, MR_CHILD_STOPPED);
            break;
        }
        default: {
            char *argv[] = { (char *)"sleep", (char *)"60", NULL };
            run_spec(&x, "sleep", argv, NULL, 30, 0);
            assert_int_equal(x.r.end, MR_CHILD_TIMEOUT);
            break;
        }
        }
        run_free(&x);
    }
    assert_int_equal(count_fds(), fds);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);     /* no child, no zombie */
    assert_int_equal(errno, ECHILD);
}

/* No descriptor left for a pipe (the run's first failure path): an error
 * with its reason, nothing started, nothing left open.  In a forked
 * process with stdin and stdout closed and RLIMIT_NOFILE at 3, so that the
 * pipe's ends land on 0 and 1 and cannot be moved above 2. */
static void test_no_pipe(void **state)
{
    pid_t pid;
    int st = 0;
    (void)state;

    if (under_valgrind())
        skip();                 /* valgrind keeps descriptors of its own */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = { (char *)"sh", (char *)"-c", (char *)"exit 0", NULL };
        struct mr_child_spec s = { .path = "/bin/sh", .argv = argv };
        struct mr_child_result r;
        struct rlimit rl = { 3, 3 };
        char msg[256] = "";
        int rc;

        close(0);
        close(1);
        if (setrlimit(RLIMIT_NOFILE, &rl))
            _exit(2);
        rc = mr_child_run(&s, &r, msg, sizeof(msg));
        if (rc != MR_EINTERNAL)
            _exit(3);
        if (strncmp(msg, "cannot make a pipe: ", 20))
            _exit(4);
        if (fcntl(0, F_GETFD) != -1 || fcntl(1, F_GETFD) != -1)
            _exit(5);           /* a pipe's end left open */
        _exit(0);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- the stderr tail ------------------------------------------------------------- */

static void tail_msg(const struct mr_child_tail *t, char *msg, size_t len)
{
    memset(msg, 'Z', len);
    mr_child_tail_message(t, msg, len, "the fallback");
}

static void tail_of(struct mr_child_tail *t, const char *s)
{
    memset(t, 0, sizeof(*t));
    mr_child_tail_add(t, s, strlen(s));
}

static void test_tail_message(void **state)
{
    struct mr_child_tail t;
    char msg[512];
    (void)state;

    memset(&t, 0, sizeof(t));
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "the fallback");
    tail_of(&t, "\n\r\n\n");
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "the fallback");

    /* The last "ERROR:" line wins over later lines and earlier errors. */
    tail_of(&t, "WARNING: w\nERROR: one\nmore\nERROR: two\ntrailing\n\n");
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "ERROR: two");
    /* Not at the start of a line: not a mark. */
    tail_of(&t, "x ERROR: not this\nlast one\n");
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "last one");
    /* No mark: the last non-empty line; \r ends lines too; no newline at
     * the end. */
    tail_of(&t, "first\nsecond\n\n\r\n");
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "second");
    tail_of(&t, "50%\r75%\rERROR: broke\r100%");
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "ERROR: broke");
    tail_of(&t, "a\nno newline");
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "no newline");
    tail_of(&t, "ERROR:");
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "ERROR:");

    /* Printable ASCII only. */
    memset(&t, 0, sizeof(t));
    {
        static const char raw[] = "ERROR: a\tb\001c\xff" "d\x7f" "e \033[31mf\0g\n";
        mr_child_tail_add(&t, raw, sizeof(raw) - 1);
    }
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "ERROR: a?b?c?d?e ?[31mf?g");

    /* Capped at MR_CHILD_MAX_MESSAGE, and at the buffer. */
    {
        char line[1000];
        memset(line, 'x', sizeof(line) - 1);
        line[sizeof(line) - 1] = '\0';
        memcpy(line, "ERROR: ", 7);
        tail_of(&t, line);
        tail_msg(&t, msg, sizeof(msg));
        assert_int_equal(strlen(msg), MR_CHILD_MAX_MESSAGE);
        assert_memory_equal(msg, line, MR_CHILD_MAX_MESSAGE);
        tail_msg(&t, msg, 10);
        assert_string_equal(msg, "ERROR: xx");
        tail_msg(&t, msg, 1);
        assert_string_equal(msg, "");
        memset(&t, 0, sizeof(t));
        tail_msg(&t, msg, 5);
        assert_string_equal(msg, "the ");
    }
}

/* Whatever is added, the tail holds the stream's end: at least its last
 * MR_CHILD_TAIL bytes, at most its buffer. */
static void test_tail_keeps_the_end(void **state)
{
    static char all[200000];
    struct mr_child_tail t;
    unsigned seed = 7;
    size_t total = 0;
    char msg[512];
    (void)state;

    memset(&t, 0, sizeof(t));
    while (total < sizeof(all) - 5000) {
        size_t n;
        seed = seed * 1103515245u + 12345u;
        n = (seed >> 8) % 3000;          /* below and above MR_CHILD_TAIL */
        if ((seed >> 4) % 7 == 0)
            n = MR_CHILD_TAIL;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            all[total + i] = (char)('a' + (seed >> 16) % 26);
            if ((seed >> 20) % 40 == 0)
                all[total + i] = '\n';
        }
        mr_child_tail_add(&t, all + total, n);
        total += n;
        assert_true(t.n <= sizeof(t.b));
        assert_true(t.n >= (total < MR_CHILD_TAIL ? total : MR_CHILD_TAIL));
        assert_memory_equal(t.b, all + total - t.n, t.n);
    }

    /* An early "ERROR:" line that has left the tail does not count. */
    memset(&t, 0, sizeof(t));
    mr_child_tail_add(&t, "ERROR: early\n", 13);
    for (int i = 0; i < 1000; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "line %04d\n", i);
        mr_child_tail_add(&t, line, (size_t)n);
    }
    tail_msg(&t, msg, sizeof(msg));
    assert_string_equal(msg, "line 0999");

    /* One add of more than MR_CHILD_TAIL: exactly its last MR_CHILD_TAIL. */
    memset(&t, 0, sizeof(t));
    mr_child_tail_add(&t, "old\n", 4);
    mr_child_tail_add(&t, all, 5000);
    assert_int_equal(t.n, MR_CHILD_TAIL);
    assert_memory_equal(t.b, all + 5000 - MR_CHILD_TAIL, MR_CHILD_TAIL);
}

/* ---- lines ----------------------------------------------------------------------- */

struct lines_seen {
    char s[16][5000];
    size_t len[16];
    size_t n;
};

static void on_line(void *arg, const char *s, size_t n)
{
    struct lines_seen *l = arg;
    assert_true(l->n < 16);
    assert_true(n > 0 && n <= MR_CHILD_MAX_LINE);
    memcpy(l->s[l->n], s, n);
    l->s[l->n][n] = '\0';
    l->len[l->n] = n;
    l->n++;
}

static void feed(struct mr_child_lines *l, struct lines_seen *seen, const char *s)
{
    mr_child_lines_feed(l, s, strlen(s), on_line, seen);
}

static void test_lines(void **state)
{
    static struct lines_seen seen;
    static char big[MR_CHILD_MAX_LINE + 2];
    struct mr_child_lines l;
    (void)state;

    memset(&l, 0, sizeof(l));
    memset(&seen, 0, sizeof(seen));
    feed(&l, &seen, "a\nb\r\n\n\rc");
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.s[0], "a");
    assert_string_equal(seen.s[1], "b");
    /* A line split across feeds; one byte at a time too. */
    feed(&l, &seen, "d");
    feed(&l, &seen, "e\r");
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.s[2], "cde");
    feed(&l, &seen, "f");
    feed(&l, &seen, "");
    feed(&l, &seen, "\n");
    assert_int_equal(seen.n, 4);
    assert_string_equal(seen.s[3], "f");
    /* Not ended: not handed on yet. */
    feed(&l, &seen, "pending");
    assert_int_equal(seen.n, 4);

    /* Exactly MR_CHILD_MAX_LINE: kept; one more byte: dropped whole, and the
     * next line is kept. */
    memset(&l, 0, sizeof(l));
    memset(&seen, 0, sizeof(seen));
    memset(big, 'x', MR_CHILD_MAX_LINE);
    big[MR_CHILD_MAX_LINE] = '\0';
    feed(&l, &seen, big);
    feed(&l, &seen, "\n");
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.len[0], MR_CHILD_MAX_LINE);
    big[MR_CHILD_MAX_LINE] = 'y';
    big[MR_CHILD_MAX_LINE + 1] = '\0';
    feed(&l, &seen, big);
    feed(&l, &seen, "\nnext\n");
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.s[1], "next");
    /* Overlong across feeds, ended by \r. */
    big[3000] = '\0';
    feed(&l, &seen, big);
    feed(&l, &seen, big);
    feed(&l, &seen, "\rafter\r");
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.s[2], "after");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_output_exact),
        cmocka_unit_test(test_output_large_both_pipes),
        cmocka_unit_test(test_timeout_kills_the_group),
        cmocka_unit_test(test_tick_stops),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_on_pid),
        cmocka_unit_test(test_cwd),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_stdin_is_devnull),
        cmocka_unit_test(test_no_inherited_fds),
        cmocka_unit_test(test_no_leaks),
        cmocka_unit_test(test_no_pipe),
        cmocka_unit_test(test_tail_message),
        cmocka_unit_test(test_tail_keeps_the_end),
        cmocka_unit_test(test_lines),
    };
    int rc;

    /* Orphans of a killed child come to us, to be reaped and checked. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return 1;
    snprintf(dir, sizeof(dir), "/tmp/mr-child-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
