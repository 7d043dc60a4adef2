/* origin_helper.h - a canned HTTP/1.1 origin on 127.0.0.1 for a unit test,
 * and waiting for a condition with a deadline.
 *
 * A thread accepts; each connection gets its own thread, which reads one
 * request (head and a Content-Length body), counts it and hands it to the
 * test's handler, which answers with test_origin_send and closes nothing
 * (the helper does).  A handler may stop at the gate (test_origin_gate):
 * while the test holds it (test_origin_hold) the answer waits there, so a
 * test sees a fetch in flight for as long as it likes.  Everything is
 * static inline; included by test_segcache.c and test_resolver.c.
 */
#ifndef MR_TEST_ORIGIN_HELPER_H
#define MR_TEST_ORIGIN_HELPER_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TEST_ORIGIN_CONNS 256

struct test_origin;

/* Answers one request on fd; `body` is the request's (NUL-terminated). */
typedef void (*test_origin_fn)(struct test_origin *o, int fd, const char *method,
                               const char *path, const char *body);

struct test_origin {
    int lfd, port;
    int stop[2];
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    test_origin_fn handle;
    void *arg;                          /* the test's */
    int requests;                       /* requests read */
    int at_gate;                        /* handlers waiting at the gate */
    bool held;
    bool stopping;
    pthread_t conns[TEST_ORIGIN_CONNS];
    int nconns;
};

struct test_origin_conn {
    struct test_origin *o;
    int fd;
};

/* Now, on the monotonic clock the tests' offset does not move. */
static inline long long test_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls pred (every millisecond or so) until it holds or deadline_ms have
 * passed; whether it held. */
static inline bool test_wait_for(bool (*pred)(void *), void *arg, long deadline_ms)
{
    long long end = test_real_ms() + deadline_ms;
    struct timespec ts = { 0, 1000000 };

    for (;;) {
        if (pred(arg))
            return true;
        if (test_real_ms() > end)
            return false;
        nanosleep(&ts, NULL);
    }
}

static inline int test_origin_send(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static inline int test_origin_send_str(int fd, const char *s)
{
    return test_origin_send(fd, s, strlen(s));
}

static inline int test_origin_requests(struct test_origin *o)
{
    int n;
    pthread_mutex_lock(&o->mu);
    n = o->requests;
    pthread_mutex_unlock(&o->mu);
    return n;
}

static inline int test_origin_at_gate(struct test_origin *o)
{
    int n;
    pthread_mutex_lock(&o->mu);
    n = o->at_gate;
    pthread_mutex_unlock(&o->mu);
    return n;
}

/* Answers wait at the gate from now on. */
static inline void test_origin_hold(struct test_origin *o)
{
    pthread_mutex_lock(&o->mu);
    o->held = true;
    pthread_mutex_unlock(&o->mu);
}

static inline void test_origin_release(struct test_origin *o)
{
    pthread_mutex_lock(&o->mu);
    o->held = false;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* For handlers: waits while the test holds the gate. */
static inline void test_origin_gate(struct test_origin *o)
{
    pthread_mutex_lock(&o->mu);
    o->at_gate++;
    while (o->held && !o->stopping)
        pthread_cond_wait(&o->cv, &o->mu);
    o->at_gate--;
    pthread_mutex_unlock(&o->mu);
}

static inline void *test_origin_conn_main(void *arg)
{
    struct test_origin_conn *c = arg;
    struct test_origin *o = c->o;
    char req[16384], method[16], path[1024];
    const char *end, *cl;
    size_t len = 0, want = 0;
    struct timeval tv = { 10, 0 };

    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (;;) {
        ssize_t k;
        if (len >= sizeof(req) - 1)
            goto out;
        k = recv(c->fd, req + len, sizeof(req) - 1 - len, 0);
        if (k <= 0)
            goto out;
        len += (size_t)k;
        req[len] = '\0';
        if ((end = strstr(req, "\r\n\r\n"))) {
            if (!want) {
                cl = strcasestr(req, "\r\ncontent-length:");
                want = (size_t)(end + 4 - req) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            }
            if (len >= want)
                break;
        }
    }
    if (sscanf(req, "%15s %1023s", method, path) != 2)
        goto out;
    pthread_mutex_lock(&o->mu);
    o->requests++;
    pthread_mutex_unlock(&o->mu);
    o->handle(o, c->fd, method, path, strstr(req, "\r\n\r\n") + 4);
out:
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
    free(c);
    return NULL;
}

static inline void *test_origin_main(void *arg)
{
    struct test_origin *o = arg;
    struct pollfd p[2] = { { .fd = o->lfd, .events = POLLIN }, { .fd = o->stop[0], .events = POLLIN } };

    for (;;) {
        struct test_origin_conn *c;
        int fd;
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        if ((fd = accept(o->lfd, NULL, NULL)) < 0)
            continue;
        if (!(c = malloc(sizeof(*c)))) {
            close(fd);
            continue;
        }
        c->o = o;
        c->fd = fd;
        pthread_mutex_lock(&o->mu);
        if (o->nconns == TEST_ORIGIN_CONNS ||
            pthread_create(&o->conns[o->nconns], NULL, test_origin_conn_main, c)) {
            pthread_mutex_unlock(&o->mu);
            free(c);
            close(fd);
            continue;
        }
        o->nconns++;
        pthread_mutex_unlock(&o->mu);
    }
    return NULL;
}

/* Starts the origin on an ephemeral port of 127.0.0.1 (o->port); 0 or -1. */
static inline int test_origin_start(struct test_origin *o, test_origin_fn handle, void *arg)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof(a);

    memset(o, 0, sizeof(*o));
    o->handle = handle;
    o->arg = arg;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((o->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || pipe(o->stop) ||
        bind(o->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(o->lfd, 64) ||
        getsockname(o->lfd, (struct sockaddr *)&a, &alen))
        return -1;
    o->port = ntohs(a.sin_port);
    return pthread_create(&o->th, NULL, test_origin_main, o) ? -1 : 0;
}

/* Stops accepting, opens the gate, joins every connection's thread. */
static inline void test_origin_stop(struct test_origin *o)
{
    if (write(o->stop[1], "x", 1) != 1)
        return;
    pthread_join(o->th, NULL);
    pthread_mutex_lock(&o->mu);
    o->stopping = true;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    for (int i = 0; i < o->nconns; i++)
        pthread_join(o->conns[i], NULL);
    close(o->lfd);
    close(o->stop[0]);
    close(o->stop[1]);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
}

#endif
