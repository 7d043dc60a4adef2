/* redis_helper.h - a private redis-server for a unit test.
 *
 * Started with posix_spawn on a unix socket in a mkdtemp directory (no TCP
 * port, no persistence), stopped with SIGKILL by its pid.  Included by
 * test_store.c and test_auth.c; everything is static inline.
 */
#ifndef MR_TEST_REDIS_HELPER_H
#define MR_TEST_REDIS_HELPER_H

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

extern char **environ;

struct test_redis {
    pid_t pid;                 /* 0 when not running */
    char dir[64];              /* the mkdtemp directory, "" before */
    char sock[128];            /* DIR/r.sock */
    int port;                  /* also listen on 127.0.0.1:port when > 0 */
    char portstr[16];
};

static inline void test_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Whether an executable of that name is in PATH. */
static inline bool test_in_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096];

    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n && n + strlen(name) + 2 < sizeof(buf)) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
            if (access(buf, X_OK) == 0)
                return true;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

/* Whether a redis-server can be run at all (else the tests skip). */
static inline bool test_redis_installed(void)
{
    return test_in_path("redis-server");
}

/* A raw hiredis connection to the test server (NULL when it does not
 * answer); free with redisFree. */
static inline redisContext *test_redis_connect(const struct test_redis *r)
{
    struct timeval tv = { 1, 0 };
    redisContext *c = redisConnectUnixWithTimeout(r->sock, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c)
        redisSetTimeout(c, tv);
    return c;
}

static inline bool test_redis_ping(const struct test_redis *r)
{
    redisContext *c = test_redis_connect(r);
    redisReply *rep;
    bool ok;

    if (!c)
        return false;
    rep = redisCommand(c, "PING");
    ok = rep && rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG");
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

/* Stops the server (SIGKILL, waits for it).  The directory stays. */
static inline void test_redis_stop(struct test_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    r->pid = 0;
}

/* Starts (or restarts, on the same socket) the server; 0 when it answers
 * PING within 10 s, -1 otherwise (nothing left running). */
static inline int test_redis_start(struct test_redis *r)
{
    posix_spawn_file_actions_t fa;
    char *argv[24];
    int i = 0, rc;
    bool setpriv = test_in_path("setpriv");

    if (!r->dir[0]) {
        snprintf(r->dir, sizeof(r->dir), "/tmp/mr-unit-redis-XXXXXX");
        if (!mkdtemp(r->dir)) {
            r->dir[0] = '\0';
            return -1;
        }
        snprintf(r->sock, sizeof(r->sock), "%s/r.sock", r->dir);
    }
    unlink(r->sock);
    /* Through setpriv --pdeathsig when there is one: if the test dies (an
     * ASan abort, a crash) its redis-server dies with it. */
    if (setpriv) {
        argv[i++] = (char *)"setpriv";
        argv[i++] = (char *)"--pdeathsig";
        argv[i++] = (char *)"KILL";
    }
    argv[i++] = (char *)"redis-server";
    argv[i++] = (char *)"--port";
    snprintf(r->portstr, sizeof(r->portstr), "%d", r->port > 0 ? r->port : 0);
    argv[i++] = r->portstr;
    argv[i++] = (char *)"--bind";
    argv[i++] = (char *)"127.0.0.1";
    argv[i++] = (char *)"--unixsocket";
    argv[i++] = r->sock;
    argv[i++] = (char *)"--unixsocketperm";
    argv[i++] = (char *)"700";
    argv[i++] = (char *)"--save";
    argv[i++] = (char *)"";
    argv[i++] = (char *)"--appendonly";
    argv[i++] = (char *)"no";
    argv[i++] = (char *)"--daemonize";
    argv[i++] = (char *)"no";
    argv[i++] = (char *)"--dir";
    argv[i++] = r->dir;
    argv[i] = NULL;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(&r->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        r->pid = 0;
        return -1;
    }
    for (int tries = 0; tries < 500; tries++) {
        if (test_redis_ping(r))
            return 0;
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;   /* it exited by itself */
            return -1;
        }
        test_sleep_ms(20);
    }
    test_redis_stop(r);
    return -1;
}

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
static inline int test_free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Stops the server and removes its directory. */
static inline void test_redis_cleanup(struct test_redis *r)
{
    test_redis_stop(r);
    if (r->dir[0]) {
        char path[160];
        unlink(r->sock);
        snprintf(path, sizeof(path), "%s/dump.rdb", r->dir);
        unlink(path);
        rmdir(r->dir);
        r->dir[0] = '\0';
    }
}

/* Runs one raw command and returns its reply as a string ("" for nil,
 * the number for an integer); into buf.  For checks only. */
static inline const char *test_redis_cmd(redisContext *c, char *buf, size_t len,
                                         const char *fmt, ...)
{
    redisReply *rep;
    va_list ap;

    buf[0] = '\0';
    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!rep) {
        snprintf(buf, len, "<connection error>");
        return buf;
    }
    switch (rep->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        snprintf(buf, len, "%.*s", (int)rep->len, rep->str);
        break;
    case REDIS_REPLY_ERROR:
        snprintf(buf, len, "<error %.*s>", (int)rep->len, rep->str);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(buf, len, "%lld", rep->integer);
        break;
    default:
        break;
    }
    freeReplyObject(rep);
    return buf;
}

#endif
