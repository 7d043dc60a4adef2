/* test_fcgi_io.c - the mover (struct mr_out's move on a FastCGI request):
 * bytes from an upstream socket reach the web server as whole FCGI_STDOUT
 * records, in order, whatever the pipes' size, without pipes at all, and
 * nothing is left open when the client is gone.
 *
 * The request is an FCGX_Request with its connection and id and a closed
 * reader stream in place of libfcgi's output stream: the mover only flushes
 * that stream (a no-op for a reader) before it writes records itself. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fastcgi.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "http/fcgi_io.h"
#include "http/request.h"
#include "http/response.h"

#define REQUEST_ID 0x1234
#define TOTAL (3 * 1024 * 1024 + 12345)

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

/* A connected TCP pair on 127.0.0.1: *a connects, *b accepted. */
static void tcp_pair(int *a, int *b)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(l >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    *a = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*a, (struct sockaddr *)&sa, sl), 0);
    *b = accept(l, NULL, NULL);
    assert_true(*b >= 0);
    close(l);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* The upstream: TOTAL bytes of the pattern in pieces of random size with
 * pauses, then the end. */
static void *upstream_main(void *arg)
{
    int fd = *(int *)arg;
    static unsigned char buf[200000];
    unsigned int seed = 7;
    size_t off = 0;

    while (off < TOTAL) {
        size_t k = 1 + (size_t)rand_r(&seed) % (seed % 3 ? 150000 : 3000);
        if (k > TOTAL - off)
            k = TOTAL - off;
        for (size_t i = 0; i < k; i++)
            buf[i] = pattern(off + i);
        if (send(fd, buf, k, MSG_NOSIGNAL) != (ssize_t)k)
            break;
        off += k;
        if (rand_r(&seed) % 4 == 0) {
            struct timespec ts = { 0, (rand_r(&seed) % 2000) * 1000L };
            nanosleep(&ts, NULL);
        }
    }
    shutdown(fd, SHUT_WR);
    return NULL;
}

/* The web server: reads records until the connection ends and checks each. */
struct web {
    int fd;
    size_t body;
    int records;
    const char *bad;      /* what was wrong, or NULL */
};

static int read_n(int fd, unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void *web_main(void *arg)
{
    struct web *w = arg;
    static unsigned char content[65536 + 256];
    unsigned char h[FCGI_HEADER_LEN];

    while (!w->bad && read_n(w->fd, h, sizeof(h)) == 0) {
        size_t len = (size_t)h[4] << 8 | h[5];
        if (h[0] != FCGI_VERSION_1 || h[1] != FCGI_STDOUT || h[2] != REQUEST_ID >> 8 ||
            h[3] != (REQUEST_ID & 0xff) || h[6] != 0 || !len) {
            w->bad = "a record header";
            break;
        }
        if (read_n(w->fd, content, len)) {
            w->bad = "a short record";
            break;
        }
        for (size_t i = 0; i < len; i++)
            if (content[i] != pattern(w->body + i)) {
                w->bad = "a body byte";
                break;
            }
        w->body += len;
        w->records++;
    }
    return NULL;
}

/* An upstream connection (the origin's end and the relay's, non-blocking as
 * libcurl's are) and a FastCGI request on a connection to the web server,
 * bound as server.c binds it. */
struct conn {
    int origin, up;
    int ipc, web;
    FCGX_Request r;
    struct mr_out out;
    struct mr_request req;
};

static void conn_open(struct conn *c)
{
    static FCGX_Stream stream = { .isReader = 1, .isClosed = 1 };
    int peer[2];

    memset(c, 0, sizeof(*c));
    tcp_pair(&c->origin, &c->up);
    fcntl(c->up, F_SETFL, O_NONBLOCK);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, peer), 0);
    c->ipc = peer[0];
    c->web = peer[1];
    c->r.requestId = REQUEST_ID;
    c->r.ipcFd = c->ipc;
    c->r.out = &stream;
    mr_fcgi_bind(&c->r, &c->out, &c->req);
}

static void conn_close(struct conn *c)
{
    mr_fcgi_end();
    close(c->origin);
    close(c->up);
    close(c->ipc);
    if (c->web >= 0)
        close(c->web);
}

/* Moves an upstream's TOTAL bytes through the mover until the upstream's end,
 * as upstream.c's hand_over does; the web server's view in *w. */
static void relay(struct web *w)
{
    struct conn c;
    pthread_t origin_th, web_th;
    size_t moved_total = 0;

    conn_open(&c);
    memset(w, 0, sizeof(*w));
    w->fd = c.web;
    assert_int_equal(pthread_create(&origin_th, NULL, upstream_main, &c.origin), 0);
    assert_int_equal(pthread_create(&web_th, NULL, web_main, w), 0);

    for (;;) {
        size_t moved = 0;
        int rc = c.out.move(c.out.arg, c.up, TOTAL - moved_total + 100, &moved);
        assert_int_equal(rc, MR_OK);
        moved_total += moved;
        if (!moved) {
            struct pollfd p = { .fd = c.up, .events = POLLIN };
            char ch;
            assert_true(poll(&p, 1, 5000) == 1);
            if (recv(c.up, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
                break;
        }
    }
    mr_fcgi_end();
    shutdown(c.ipc, SHUT_WR);
    pthread_join(origin_th, NULL);
    pthread_join(web_th, NULL);
    assert_int_equal(moved_total, TOTAL);
    conn_close(&c);
}

static void check_web(const struct web *w)
{
    if (w->bad)
        fail_msg("the web server saw %s after %zu body bytes", w->bad, w->body);
    assert_int_equal(w->body, TOTAL);
    assert_true(w->records >= TOTAL / 65535);
}

static void test_move(void **state)
{
    struct web w;
    int fds = open_fds();

    (void)state;
    relay(&w);
    check_web(&w);
    assert_int_equal(open_fds(), fds);    /* the pipes are closed at the end */
}

/* Pipes of one page: every record fills them midway. */
static void test_move_small_pipes(void **state)
{
    struct web w;

    (void)state;
    mr_fcgi_pipe_bytes(4096);
    relay(&w);
    mr_fcgi_pipe_bytes(1024 * 1024);
    check_web(&w);
}

/* No descriptors left for pipes: the bytes go by copy, records the same. */
static void test_move_without_pipes(void **state)
{
    struct rlimit old, low;
    struct conn c;
    int probe[2];
    unsigned char buf[100], h[FCGI_HEADER_LEN];
    size_t moved = 0;

    (void)state;
    conn_open(&c);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = pattern(i);
    assert_int_equal(send(c.origin, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));

    /* One descriptor to spare: a pipe needs two. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)fcntl(0, F_DUPFD, 0);
    close((int)low.rlim_cur);
    low.rlim_cur += 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    assert_int_not_equal(pipe(probe), 0);
    assert_int_equal(c.out.move(c.out.arg, c.up, 1000, &moved), MR_OK);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

    assert_int_equal(moved, sizeof(buf));
    assert_int_equal(read_n(c.web, h, sizeof(h)), 0);
    assert_int_equal(h[1], FCGI_STDOUT);
    assert_int_equal((size_t)h[4] << 8 | h[5], sizeof(buf));
    memset(buf, 0, sizeof(buf));
    assert_int_equal(read_n(c.web, buf, sizeof(buf)), 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], pattern(i));
    conn_close(&c);
}

/* The web server hung up: MR_ECLIENT, and nothing stays open. */
static void test_move_client_gone(void **state)
{
    static unsigned char buf[256 * 1024];
    struct conn c;
    int fds = open_fds();
    size_t moved = 0;
    int rc = MR_OK;

    (void)state;
    conn_open(&c);
    close(c.web);
    c.web = -1;
    fcntl(c.origin, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 20 && rc == MR_OK; i++) {
        send(c.origin, buf, sizeof(buf), MSG_NOSIGNAL);
        rc = c.out.move(c.out.arg, c.up, sizeof(buf), &moved);
    }
    assert_int_equal(rc, MR_ECLIENT);
    assert_int_equal(moved, 0);
    conn_close(&c);
    assert_int_equal(open_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_move_small_pipes),
        cmocka_unit_test(test_move_without_pipes),
        cmocka_unit_test(test_move_client_gone),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
