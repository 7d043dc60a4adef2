/* test_upstream.c - fetch and stream against an in-test HTTP/1.1 origin on
 * 127.0.0.1, the SSRF guard, schemes, caps and timeouts, and the hand-over
 * of a body's rest to the sink's move(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/header.h"
#include "core/log.h"
#include "net/upstream.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define CONF_UA "mediarelay-unit/1.0"
#define BIG (1 << 20)

/* ---- the origin ------------------------------------------------------------ */

struct origin {
    int lfd;                 /* HTTP */
    int cfd;                 /* accepts and closes at once */
    int port, close_port;
    int stop[2];
    pthread_t th;
    pthread_mutex_t mu;
    char last_req[8192];     /* the last request head */
    int requests;            /* requests read on lfd */
    int accepted;            /* connections on lfd and cfd */
    int aborted;             /* a body write failed: the client left */
    int slow_closed;         /* /slow saw the client close */
};

static struct origin origin;

static void set_flag(int *flag)
{
    pthread_mutex_lock(&origin.mu);
    (*flag)++;
    pthread_mutex_unlock(&origin.mu);
}

static int get_flag(const int *flag)
{
    int v;
    pthread_mutex_lock(&origin.mu);
    v = *flag;
    pthread_mutex_unlock(&origin.mu);
    return v;
}

static int send_all(int fd, const void *p, size_t n)
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

static int send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

/* Waits (at most 10 s) until the peer closes. */
static void wait_peer_close(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buf[512];
    for (int i = 0; i < 100; i++) {
        if (poll(&p, 1, 100) > 0) {
            ssize_t k = recv(fd, buf, sizeof(buf), 0);
            if (k <= 0)
                return;
        }
    }
}

static void send_body(int fd, size_t total, bool count_abort)
{
    char chunk[16384];
    size_t sent = 0;

    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('a' + i % 26);
    while (sent < total) {
        size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
        if (send_all(fd, chunk, n)) {
            if (count_abort)
                set_flag(&origin.aborted);
            return;
        }
        sent += n;
    }
}

/* The head and 100 bytes of the body, a pause, then the rest of n bytes:
 * libcurl's first read ends short, where a body can be handed over. */
static void send_paced(int fd, const char *head, size_t n)
{
    static char body[BIG];
    struct timespec ts = { 0, 20 * 1000000L };

    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + (i % 16384) % 26);
    send_str(fd, head);
    send_all(fd, body, 100);
    nanosleep(&ts, NULL);
    send_all(fd, body + 100, n - 100);
}

static void serve(int fd)
{
    char req[8192], method[16], path[1024], head[512];
    size_t len = 0;
    struct timeval tv = { 5, 0 };
    bool is_head;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (len < sizeof(req) - 1) {
        ssize_t k = recv(fd, req + len, sizeof(req) - 1 - len, 0);
        if (k <= 0)
            return;
        len += (size_t)k;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    pthread_mutex_lock(&origin.mu);
    snprintf(origin.last_req, sizeof(origin.last_req), "%s", req);
    origin.requests++;
    pthread_mutex_unlock(&origin.mu);
    if (sscanf(req, "%15s %1023s", method, path) != 2)
        return;
    is_head = !strcmp(method, "HEAD");

    if (!strcmp(path, "/hello")) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: yes\r\n"
                     "Content-Length: 11\r\nConnection: close\r\n\r\n");
        if (!is_head)
            send_str(fd, "hello world");
    } else if (!strcmp(path, "/echo")) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n", strlen(req));
        send_str(fd, head);
        send_str(fd, req);
    } else if (!strcmp(path, "/big")) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n\r\n", BIG);
        send_str(fd, head);
        if (!is_head)
            send_body(fd, BIG, false);
    } else if (!strcmp(path, "/big-nolen")) {
        send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        send_body(fd, BIG, false);
    } else if (!strcmp(path, "/paced")) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                 "Connection: close\r\n\r\n", BIG);
        send_paced(fd, head, BIG);
    } else if (!strcmp(path, "/paced-nolen")) {
        send_paced(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", BIG);
    } else if (!strcmp(path, "/big-chunked") || !strcmp(path, "/many-headers-chunked")) {
        char line[32];
        send_str(fd, "HTTP/1.1 200 OK\r\n");
        /* More headers than a head keeps (MR_UPSTREAM_HEADERS_MAX) before
         * the one that says the body is coded. */
        for (int i = 0; path[1] == 'm' && i < MR_UPSTREAM_HEADERS_MAX + 6; i++) {
            snprintf(line, sizeof(line), "X-Filler-%d: %d\r\n", i, i);
            send_str(fd, line);
        }
        send_str(fd, "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        for (int i = 0; i < BIG / 16384; i++) {
            snprintf(line, sizeof(line), "%x\r\n", 16384);
            send_str(fd, line);
            send_body(fd, 16384, false);
            send_str(fd, "\r\n");
        }
        send_str(fd, "0\r\n\r\n");
    } else if (!strcmp(path, "/short")) {     /* promises BIG, sends half */
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                 "Connection: close\r\n\r\n", BIG);
        send_paced(fd, head, BIG / 2);
    } else if (!strcmp(path, "/endless")) {
        int small = 8192;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n"
                     "Connection: close\r\n\r\n");
        send_body(fd, 256u << 20, true);
    } else if (!strcmp(path, "/redirect")) {
        send_str(fd, "HTTP/1.1 302 Found\r\nLocation: /hello\r\nX-Hop: 1\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (!strcmp(path, "/redirect-localhost")) {
        snprintf(head, sizeof(head), "HTTP/1.1 302 Found\r\nLocation: http://localhost:%d/hello"
                 "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", origin.port);
        send_str(fd, head);
    } else if (!strcmp(path, "/redirect-twice")) {
        send_str(fd, "HTTP/1.1 301 Moved\r\nLocation: /redirect-localhost\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (!strcmp(path, "/redirect-file")) {
        send_str(fd, "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (!strcmp(path, "/redirect-gopher")) {
        send_str(fd, "HTTP/1.1 301 Moved\r\nLocation: gopher://127.0.0.1:1/x\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (!strcmp(path, "/redirect-loop")) {
        send_str(fd, "HTTP/1.1 302 Found\r\nLocation: /redirect-loop\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (!strcmp(path, "/slow")) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
                     "xxxxxxxxxx");
        wait_peer_close(fd);
        set_flag(&origin.slow_closed);
    } else {
        send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\n");
        if (!is_head)
            send_str(fd, "nope");
    }
}

static void *origin_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[3] = {
            { .fd = origin.lfd, .events = POLLIN },
            { .fd = origin.cfd, .events = POLLIN },
            { .fd = origin.stop[0], .events = POLLIN },
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[2].revents)
            break;
        if (p[1].revents & POLLIN) {
            int fd = accept(origin.cfd, NULL, NULL);
            if (fd >= 0) {
                set_flag(&origin.accepted);
                close(fd);
            }
        }
        if (p[0].revents & POLLIN) {
            int fd = accept(origin.lfd, NULL, NULL);
            if (fd >= 0) {
                set_flag(&origin.accepted);
                serve(fd);
                close(fd);
            }
        }
    }
    return NULL;
}

static int listen_loopback(int *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl)) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ---- fixtures ---------------------------------------------------------------- */

struct fx {
    struct mr_conf *conf;
    struct mr_upstream *u;
    struct mr_arena arena;
    struct mr_buf body;
    struct mr_upstream_head head;
    char url[256];
};

static struct mr_conf *conf_load(const char *body)
{
    char json[2048];
    struct mr_conf *c = NULL;
    struct mr_buf err;
    int rc;

    snprintf(json, sizeof(json), "{\"secret\": \"%s\", %s}", SECRET, body);
    mr_buf_init(&err, 4096);
    rc = mr_conf_load_string("t", json, strlen(json), &c, &err);
    if (rc)
        print_message("%s", err.p);
    mr_buf_free(&err);
    assert_int_equal(rc, MR_OK);
    return c;
}

#define UPSTREAM_KEYS "\"allow_private_networks\": true, " \
    "\"connect_timeout_ms\": 1000, \"fetch_timeout_ms\": 2000, \"low_speed_time_s\": 1, " \
    "\"low_speed_bytes\": 1000, \"user_agent\": \"" CONF_UA "\""
#define OPEN_UPSTREAM "\"upstream\": {" UPSTREAM_KEYS "}"
/* Every body that can be handed over is. */
#define SPLICE_UPSTREAM "\"upstream\": {" UPSTREAM_KEYS ", \"splice_min_bytes\": 1}"

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    mr_log_setup("test_upstream", "error", "stderr");
    if (mr_upstream_global_init() != MR_OK)
        return -1;
    pthread_mutex_init(&origin.mu, NULL);
    origin.lfd = listen_loopback(&origin.port);
    origin.cfd = listen_loopback(&origin.close_port);
    if (origin.lfd < 0 || origin.cfd < 0 || pipe(origin.stop))
        return -1;
    return pthread_create(&origin.th, NULL, origin_main, NULL) ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (write(origin.stop[1], "x", 1) != 1)
        return -1;
    pthread_join(origin.th, NULL);
    close(origin.lfd);
    close(origin.cfd);
    close(origin.stop[0]);
    close(origin.stop[1]);
    pthread_mutex_destroy(&origin.mu);
    mr_upstream_global_cleanup();
    return 0;
}

static int setup_with(void **state, const char *conf)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->conf = conf_load(conf);
    f->u = mr_upstream_new(f->conf);
    if (!f->u)
        return -1;
    mr_arena_init(&f->arena, 0);
    mr_buf_init(&f->body, 16 << 20);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, OPEN_UPSTREAM);
}

static int setup_splice(void **state)
{
    return setup_with(state, SPLICE_UPSTREAM);
}

static int setup_guarded(void **state)
{
    return setup_with(state, "\"upstream\": {\"connect_timeout_ms\": 1000}");
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mr_upstream_free(f->u);
    mr_buf_free(&f->body);
    mr_arena_free(&f->arena);
    mr_conf_free(f->conf);
    free(f);
    return 0;
}

static const char *url(struct fx *f, const char *path)
{
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d%s", origin.port, path);
    return f->url;
}

static int fetch(struct fx *f, const struct mr_upstream_req *req)
{
    mr_buf_reset(&f->body);
    return mr_upstream_fetch(f->u, &f->arena, req, &f->head, &f->body);
}

static bool body_is_pattern(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (char)('a' + (i % 16384) % 26))
            return false;
    return true;
}

/* Waits (at most 10 s) for an origin counter to reach `want`. */
static bool wait_flag(const int *flag, int want)
{
    for (int i = 0; i < 200; i++) {
        struct timespec ts = { 0, 50 * 1000000L };
        if (get_flag(flag) >= want)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

/* ---- fetch --------------------------------------------------------------------- */

static void test_fetch_basic(void **state)
{
    struct fx *f = *state;
    struct mr_upstream_req req = { .url = url(f, "/hello") };

    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->head.status, 200);
    assert_int_equal(f->body.len, 11);
    assert_string_equal(f->body.p, "hello world");
    assert_int_equal(f->head.content_length, 11);
    assert_string_equal(f->head.final_url, url(f, "/hello"));
    assert_string_equal(mr_upstream_header(&f->head, "X-Test"), "yes");
    assert_string_equal(mr_upstream_header(&f->head, "x-test"), "yes");
    assert_string_equal(mr_upstream_header(&f->head, "CONTENT-TYPE"), "text/plain");
    assert_null(mr_upstream_header(&f->head, "X-Missing"));
    assert_string_equal(mr_upstream_error(f->u), "");
    /* Names are kept as sent. */
    {
        bool found = false;
        for (size_t i = 0; i < f->head.nheaders; i++)
            found |= !strcmp(f->head.headers[i].name, "X-Test");
        assert_true(found);
    }
}

static void test_fetch_status_passes(void **state)
{
    struct fx *f = *state;
    struct mr_upstream_req req = { .url = url(f, "/missing") };

    /* Any HTTP status is MR_OK: the caller judges it. */
    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->head.status, 404);
    assert_string_equal(f->body.p, "nope");
}

static void test_fetch_big(void **state)
{
    struct fx *f = *state;
    struct mr_upstream_req req = { .url = url(f, "/big") };

    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->head.status, 200);
    assert_int_equal(f->body.len, BIG);
    assert_int_equal(f->head.content_length, BIG);
    assert_true(body_is_pattern(f->body.p, f->body.len));

    req.url = url(f, "/big-nolen");
    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->body.len, BIG);
    assert_true(body_is_pattern(f->body.p, f->body.len));
}

static void test_fetch_cap(void **state)
{
    struct fx *f = *state;
    static const char *const paths[] = { "/big", "/big-nolen" };

    for (size_t i = 0; i < 2; i++) {
        struct mr_upstream_req req = { .url = url(f, paths[i]), .max_bytes = 1000 };
        assert_int_equal(fetch(f, &req), MR_ETOOBIG);
        assert_true(f->body.len <= 1000);
        assert_non_null(strstr(mr_upstream_error(f->u), "limit"));
        /* Exactly the size is fine. */
        req.max_bytes = BIG;
        assert_int_equal(fetch(f, &req), MR_OK);
        assert_int_equal(f->body.len, BIG);
    }
    /* The buffer's own cap counts as well. */
    {
        struct mr_upstream_req req = { .url = url(f, "/big") };
        struct mr_buf small;
        mr_buf_init(&small, 4096);
        assert_int_equal(mr_upstream_fetch(f->u, &f->arena, &req, &f->head, &small), MR_ETOOBIG);
        mr_buf_free(&small);
    }
    /* conf's max_fetch_bytes is the default cap. */
    {
        struct mr_conf *c = conf_load(
            "\"upstream\": {\"allow_private_networks\": true, \"max_fetch_bytes\": 4096}");
        struct mr_upstream *u = mr_upstream_new(c);
        struct mr_upstream_req req = { .url = url(f, "/big-nolen") };
        assert_non_null(u);
        mr_buf_reset(&f->body);
        assert_int_equal(mr_upstream_fetch(u, &f->arena, &req, &f->head, &f->body), MR_ETOOBIG);
        mr_upstream_free(u);
        mr_conf_free(c);
    }
}

static void test_fetch_head(void **state)
{
    struct fx *f = *state;
    struct mr_upstream_req req = { .method = "HEAD", .url = url(f, "/hello") };

    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->head.status, 200);
    assert_int_equal(f->body.len, 0);
    assert_int_equal(f->head.content_length, 11);
    assert_string_equal(mr_upstream_header(&f->head, "X-Test"), "yes");
    pthread_mutex_lock(&origin.mu);
    assert_int_equal(strncmp(origin.last_req, "HEAD /hello HTTP/1.1\r\n", 22), 0);
    pthread_mutex_unlock(&origin.mu);

    /* HEAD of a big file does not wait for its body. */
    req.url = url(f, "/big");
    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->body.len, 0);
    assert_int_equal(f->head.content_length, BIG);
}

static void test_request_headers(void **state)
{
    struct fx *f = *state;
    const struct mr_header hs[] = {
        { "Referer", "http://ref.example/page" },
        { "X-Custom", "a value" },
        { "X-Evil", "a\r\nInjected: 1" },
        { "X-Bad\r\nName", "v" },
        { "Colon:Name", "v" },
    };
    const struct mr_header ua[] = { { "user-agent", "MyPlayer/2.0" } };
    struct mr_upstream_req req = { .url = url(f, "/echo"), .headers = hs, .nheaders = 5 };
    char seen[8192];

    assert_int_equal(fetch(f, &req), MR_OK);
    pthread_mutex_lock(&origin.mu);
    snprintf(seen, sizeof(seen), "%s", origin.last_req);
    pthread_mutex_unlock(&origin.mu);
    assert_string_equal(f->body.p, seen);            /* the echo is what it saw */
    assert_int_equal(strncmp(seen, "GET /echo HTTP/1.1\r\n", 20), 0);
    assert_non_null(strstr(seen, "\r\nReferer: http://ref.example/page\r\n"));
    assert_non_null(strstr(seen, "\r\nX-Custom: a value\r\n"));
    assert_non_null(strstr(seen, "\r\nUser-Agent: " CONF_UA "\r\n"));   /* conf's default */
    assert_null(strstr(seen, "Injected"));
    assert_null(strstr(seen, "X-Evil"));
    assert_null(strstr(seen, "X-Bad"));
    assert_null(strstr(seen, "Colon"));

    /* A User-Agent of the request replaces conf's, whatever its case. */
    req.headers = ua;
    req.nheaders = 1;
    assert_int_equal(fetch(f, &req), MR_OK);
    pthread_mutex_lock(&origin.mu);
    snprintf(seen, sizeof(seen), "%s", origin.last_req);
    pthread_mutex_unlock(&origin.mu);
    assert_non_null(strstr(seen, "\r\nuser-agent: MyPlayer/2.0\r\n"));
    assert_null(strstr(seen, CONF_UA));
    /* Headers of the last request do not leak into the next. */
    assert_null(strstr(seen, "Referer"));
}

/* Headers that frame the message or the connection never leave, whoever
 * asked for them; the rest of the request's headers do. */
static void test_request_headers_filtered(void **state)
{
    struct fx *f = *state;
    const struct mr_header hs[] = {
        { "Host", "evil.example" },
        { "Content-Length", "5" },
        { "Transfer-Encoding", "chunked" },
        { "transfer-encoding", "gzip, chunked" },
        { "Connection", "keep-alive, X-Secret" },
        { "Keep-Alive", "timeout=5" },
        { "Upgrade", "websocket" },
        { "TE", "trailers" },
        { "Trailer", "X-Later" },
        { "Expect", "100-continue" },
        { "Proxy-Connection", "keep-alive" },
        { "Proxy-Authorization", "Basic c2VjcmV0" },
        { "X-Empty", "" },
        { "X-Nul", "a\001b" },
        { "X Space", "v" },
        { "Cookie", "sid=abc" },
        { "Authorization", "Bearer t0k3n" },
        { "Referer", "https://ref.example/" },
        { "Range", "bytes=0-3" },        /* the relay's own code may send it */
    };
    struct mr_upstream_req req = { .url = url(f, "/echo"), .headers = hs,
                                   .nheaders = sizeof(hs) / sizeof(hs[0]) };
    char seen[8192], want[64];

    assert_int_equal(fetch(f, &req), MR_OK);
    pthread_mutex_lock(&origin.mu);
    snprintf(seen, sizeof(seen), "%s", origin.last_req);
    pthread_mutex_unlock(&origin.mu);
    snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%d\r\n", origin.port);
    assert_non_null(strstr(seen, want));
    for (const char *p = seen; (p = strcasestr(p, "\nhost:")); p++)
        assert_int_equal(strncmp(p, want + 1, strlen(want) - 1), 0);   /* one Host, ours */
    assert_null(strcasestr(seen, "evil.example"));
    assert_null(strcasestr(seen, "Content-Length"));
    assert_null(strcasestr(seen, "Transfer-Encoding"));
    assert_null(strcasestr(seen, "chunked"));
    assert_null(strcasestr(seen, "Connection"));
    assert_null(strcasestr(seen, "Keep-Alive"));
    assert_null(strcasestr(seen, "Upgrade"));
    assert_null(strcasestr(seen, "\nTE:"));
    assert_null(strcasestr(seen, "Trailer"));
    assert_null(strcasestr(seen, "Expect"));
    assert_null(strcasestr(seen, "Proxy-"));
    assert_null(strcasestr(seen, "X-Empty"));
    assert_null(strcasestr(seen, "X-Nul"));
    assert_null(strcasestr(seen, "X Space"));
    assert_non_null(strstr(seen, "\r\nCookie: sid=abc\r\n"));
    assert_non_null(strstr(seen, "\r\nAuthorization: Bearer t0k3n\r\n"));
    assert_non_null(strstr(seen, "\r\nReferer: https://ref.example/\r\n"));
    assert_non_null(strstr(seen, "\r\nRange: bytes=0-3\r\n"));
    assert_non_null(strstr(seen, "\r\nUser-Agent: " CONF_UA "\r\n"));
}

/* The filter as a table: name, value, from a policy, refused. */
static void test_header_filter_table(void **state)
{
    static char long_value[MR_HEADER_MAX_LINE];
    static const struct {
        const char *name, *value;
        bool policy, refused;
    } cases[] = {
        { "Referer", "https://a.example/", true, false },
        { "User-Agent", "Kodi/20 (Linux)", true, false },
        { "Cookie", "a=1; b=2", true, false },
        { "Authorization", "Bearer x", true, false },
        { "Origin", "https://a.example", true, false },
        { "X-Custom", "tab\there", true, false },
        { "X-Utf8", "caf\xc3\xa9", true, false },          /* obs-text is a value byte */
        { "x-!#$%&'*+-.^_`|~", "v", true, false },          /* every tchar */
        { "Host", "a.example", false, true },
        { "HOST", "a.example", true, true },
        { "Content-Length", "0", false, true },
        { "Transfer-Encoding", "chunked", false, true },
        { "Connection", "close", false, true },
        { "Keep-Alive", "1", false, true },
        { "Proxy-Connection", "1", false, true },
        { "Upgrade", "h2c", false, true },
        { "HTTP2-Settings", "AAMAAABkAAQAAP__", false, true },
        { "TE", "trailers", false, true },
        { "te", "trailers", false, true },
        { "Trailer", "X", false, true },
        { "Expect", "100-continue", false, true },
        { "Proxy-Authorization", "Basic eDp5", false, true },
        { "Range", "bytes=0-1", false, false },             /* the relay's own */
        { "Range", "bytes=0-1", true, true },               /* a policy's */
        { "If-Range", "\"e\"", true, true },
        { "If-None-Match", "\"e\"", true, true },
        { "If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT", true, true },
        { "If-Match", "*", true, true },
        { "If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT", true, true },
        { "If-None-Match", "\"e\"", false, false },
        { "", "v", false, true },
        { "X Space", "v", false, true },
        { "X:Colon", "v", false, true },
        { "X-Bad\r\nInjected", "v", false, true },
        { "X(paren)", "v", false, true },
        { "X/slash", "v", false, true },
        { "X-\xc3\xa9", "v", false, true },
        { ":authority", "a.example", false, true },
        { "X-Evil", "a\r\nInjected: 1", false, true },
        { "X-Evil", "a\nb", false, true },
        { "X-Evil", "a\rb", false, true },
        { "X-Evil", "a\x7f", false, true },
        { "X-Evil", "\x1b[31m", false, true },
        { "X-Empty", "", false, true },
        { "X-Long", long_value, false, true },
    };
    int failures = 0;
    (void)state;

    memset(long_value, 'a', sizeof(long_value) - 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = mr_header_refused(cases[i].name, cases[i].value,
                                                     cases[i].policy);
        if ((why != NULL) != cases[i].refused) {
            print_error("case %zu (%s, policy %d): %s\n", i, cases[i].name, cases[i].policy,
                        why ? why : "sent");
            failures++;
        }
    }
    /* The first half: malformed, as opposed to declined. */
    assert_null(mr_header_malformed("Host", "a.example"));
    assert_null(mr_header_malformed("Transfer-Encoding", "chunked"));
    assert_null(mr_header_malformed("Range", "bytes=0-"));
    assert_null(mr_header_malformed("X-Empty", ""));
    assert_null(mr_header_malformed("X-Tab", "a\tb"));
    assert_non_null(mr_header_malformed("X Space", "v"));
    assert_non_null(mr_header_malformed("", "v"));
    assert_non_null(mr_header_malformed("X-Evil", "a\r\nInjected: 1"));
    assert_non_null(mr_header_malformed("X-Long", long_value));
    assert_non_null(mr_header_malformed(NULL, "v"));
    assert_non_null(mr_header_malformed("X", NULL));
    assert_null(mr_header_refused("X-Ok", "v", false));
    assert_non_null(mr_header_refused(NULL, "v", false));
    assert_non_null(mr_header_refused("X-Ok", NULL, false));
    /* Just under the line limit is fine. */
    long_value[MR_HEADER_MAX_LINE - 2 - 6] = '\0';
    assert_null(mr_header_refused("X-Long", long_value, false));
    assert_int_equal(failures, 0);
}

/* Where a redirect may go, as a table: from, Location, hosts, refused
 * (a word of the reason, or NULL: followed). */
static void test_redirect_refused_table(void **state)
{
    static char *listed_v[] = { "a.example", "b.example:8080", "[::1]:8081", "127.0.0.1:8081" };
    static const struct mr_strlist listed = { listed_v, 4 };
    static const struct {
        const char *from, *location;
        bool hosts;
        const char *why;
    } cases[] = {
        { "http://a.example/x", "/y", false, NULL },
        { "http://a.example/x", "y?q=1", false, NULL },
        { "http://a.example/x", "http://c.example/y", false, NULL },
        { "http://a.example/x", "https://c.example/y", false, NULL },
        { "https://a.example/x", "https://c.example/y", false, NULL },
        { "https://a.example/x", "//c.example/y", false, NULL },      /* stays https */
        { "https://a.example/x", "/y", false, NULL },
        { "https://a.example/x", "http://a.example/y", false, "https to http" },
        { "https://a.example/x", "HTTP://a.example/y", false, "https to http" },
        { "HTTPS://a.example/x", "http://a.example/y", false, "https to http" },
        { "https://a.example/x", "http://c.example:443/y", false, "https to http" },
        { "https://a.example/x", "http:/y", false, "https to http" },
        { "http://a.example/x", "file:///etc/passwd", false, "scheme" },
        { "http://a.example/x", "gopher://a.example/x", false, "scheme" },
        { "http://a.example/x", "javascript:alert(1)", false, "not a URL" },
        { "http://a.example/x", "data:text/plain,x", false, "not a URL" },
        { "http://a.example/x", "http://", false, "not a URL" },
        { "http://a.example/x", "http://[::1/x", false, "not a URL" },
        /* With an allow-list. */
        { "http://a.example/x", "/y", true, NULL },
        { "http://a.example/x", "https://a.example/y", true, NULL },
        { "http://a.example/x", "http://A.EXAMPLE/y", true, NULL },
        { "http://a.example/x", "http://a.example:80/y", true, NULL },
        { "http://a.example/x", "https://a.example:443/y", true, NULL },
        { "http://a.example/x", "http://b.example:8080/y", true, NULL },
        { "http://a.example/x", "http://[::1]:8081/y", true, NULL },
        { "http://a.example/x", "http://127.0.0.1:8081/y", true, NULL },
        { "http://a.example/x", "http://c.example/y", true, "allow-list" },
        { "http://a.example/x", "//c.example/y", true, "allow-list" },
        { "http://a.example/x", "http://a.example:8080/y", true, "allow-list" },
        { "http://a.example/x", "http://b.example/y", true, "allow-list" },
        { "http://a.example/x", "http://a.example.evil.example/y", true, "allow-list" },
        { "http://a.example/x", "http://evila.example/y", true, "allow-list" },
        { "http://a.example/x", "http://a.example@c.example/y", true, "allow-list" },
        { "http://a.example/x", "http://localhost:8081/y", true, "allow-list" },
        { "http://a.example/x", "http://[::1]:8082/y", true, "allow-list" },
        { "http://a.example/x", "http://127.0.0.1/y", true, "allow-list" },
        { "https://a.example/x", "http://a.example/y", true, "https to http" },
    };
    struct mr_arena a;
    int failures = 0;
    (void)state;

    mr_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = mr_upstream_redirect_refused(&a, cases[i].from, cases[i].location,
                                                       cases[i].hosts ? &listed : NULL);
        if ((why == NULL) != (cases[i].why == NULL) ||
            (why && !strstr(why, cases[i].why))) {
            print_error("%s -> %s (hosts %d): %s, want %s\n", cases[i].from, cases[i].location,
                        cases[i].hosts, why ? why : "followed",
                        cases[i].why ? cases[i].why : "followed");
            failures++;
        }
    }
    mr_arena_free(&a);
    assert_int_equal(failures, 0);
}

/* redirect_hosts: a hop to a host not on it is refused before it is asked,
 * also when it is the second hop; hops within it are followed. */
static void test_redirect_hosts(void **state)
{
    struct fx *f = *state;
    char entry[64], *entries[] = { entry };
    const struct mr_strlist hosts = { entries, 1 };
    struct mr_upstream_req req = { .url = url(f, "/redirect"), .redirect_hosts = &hosts };
    int before;

    snprintf(entry, sizeof(entry), "127.0.0.1:%d", origin.port);
    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->head.status, 200);
    assert_string_equal(f->body.p, "hello world");

    for (int i = 0; i < 2; i++) {
        req.url = url(f, i ? "/redirect-twice" : "/redirect-localhost");
        before = get_flag(&origin.requests);
        assert_int_equal(fetch(f, &req), MR_EBLOCKED);
        assert_non_null(strstr(mr_upstream_error(f->u), "localhost"));
        assert_non_null(strstr(mr_upstream_error(f->u), "allow-list"));
        assert_int_equal(f->body.len, 0);
        /* The refused hop was never asked. */
        assert_int_equal(get_flag(&origin.requests), before + 1 + i);
    }
    /* Without a list, the same redirect is followed (localhost is the
     * origin). */
    req.redirect_hosts = NULL;
    assert_int_equal(fetch(f, &req), MR_OK);
    assert_string_equal(f->body.p, "hello world");
    /* Not followed at all: nothing to vet. */
    req.redirect_hosts = &hosts;
    req.no_redirects = true;
    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->head.status, 301);
}

static void test_redirects(void **state)
{
    struct fx *f = *state;
    struct mr_upstream_req req = { .url = url(f, "/redirect") };
    char want[256];

    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->head.status, 200);
    assert_string_equal(f->body.p, "hello world");
    snprintf(want, sizeof(want), "http://127.0.0.1:%d/hello", origin.port);
    assert_string_equal(f->head.final_url, want);
    /* Only the final response's headers. */
    assert_null(mr_upstream_header(&f->head, "Location"));
    assert_null(mr_upstream_header(&f->head, "X-Hop"));
    assert_string_equal(mr_upstream_header(&f->head, "X-Test"), "yes");

    /* Not followed when asked. */
    req.no_redirects = true;
    assert_int_equal(fetch(f, &req), MR_OK);
    assert_int_equal(f->head.status, 302);
    assert_string_equal(mr_upstream_header(&f->head, "Location"), "/hello");

    /* A loop ends at max_redirects. */
    req.no_redirects = false;
    req.url = url(f, "/redirect-loop");
    assert_int_equal(fetch(f, &req), MR_EUPSTREAM);
    assert_string_not_equal(mr_upstream_error(f->u), "");
}

/* A redirect to another scheme is never followed: never the file. */
static void test_redirect_to_other_scheme(void **state)
{
    static const char *const paths[] = { "/redirect-file", "/redirect-gopher" };
    struct fx *f = *state;

    for (size_t i = 0; i < 2; i++) {
        struct mr_upstream_req req = { .url = url(f, paths[i]) };
        int rc = fetch(f, &req);
        if (rc != MR_EBLOCKED && rc != MR_EUPSTREAM)
            print_message("%s: rc %d (%s)\n", paths[i], rc, mr_upstream_error(f->u));
        assert_true(rc == MR_EBLOCKED || rc == MR_EUPSTREAM);
        assert_null(f->body.p ? strstr(f->body.p, "root:") : NULL);
    }
}

static void test_schemes_blocked(void **state)
{
    struct fx *f = *state;
    char gopher[128], ftp[128], dict[128], noscheme[128];
    const char *const urls[] = {
        "file:///etc/passwd", gopher, ftp, dict, noscheme, "data:text/plain,hi",
        "javascript:alert(1)", "", NULL,
    };
    int before;

    snprintf(gopher, sizeof(gopher), "gopher://127.0.0.1:%d/x", origin.port);
    snprintf(ftp, sizeof(ftp), "ftp://127.0.0.1:%d/x", origin.port);
    snprintf(dict, sizeof(dict), "dict://127.0.0.1:%d/x", origin.port);
    snprintf(noscheme, sizeof(noscheme), "127.0.0.1:%d/hello", origin.port);
    before = get_flag(&origin.accepted);
    for (size_t i = 0; urls[i]; i++) {
        struct mr_upstream_req req = { .url = urls[i] };
        int rc = fetch(f, &req);
        if (rc != MR_EBLOCKED)
            print_message("%s: rc %d\n", urls[i], rc);
        assert_int_equal(rc, MR_EBLOCKED);
        assert_int_equal(f->body.len, 0);
        assert_string_not_equal(mr_upstream_error(f->u), "");
    }
    {
        struct mr_upstream_req req = { .url = NULL };
        assert_int_equal(fetch(f, &req), MR_EBLOCKED);
    }
    /* Without any I/O. */
    assert_int_equal(get_flag(&origin.accepted), before);
}

static void test_refused_and_closed(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    char u[128];
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

    /* A bound socket that does not listen: connections are refused. */
    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
    {
        struct mr_upstream_req req = { .url = u };
        rc = fetch(f, &req);
        assert_int_equal(rc, MR_EREFUSED);
        assert_string_not_equal(mr_upstream_error(f->u), "");
    }
    close(fd);

    /* A server that closes at once. */
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", origin.close_port);
    {
        struct mr_upstream_req req = { .url = u };
        assert_int_equal(fetch(f, &req), MR_EUPSTREAM);
        assert_string_not_equal(mr_upstream_error(f->u), "");
    }
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct mr_upstream_req req = { .url = url(f, "/slow") };
    int closed = get_flag(&origin.slow_closed);

    /* fetch_timeout_ms (and the low-speed limit) end a stalled fetch. */
    assert_int_equal(fetch(f, &req), MR_ETIMEOUT);
    assert_non_null(strstr(mr_upstream_error(f->u), "timed out"));
    assert_true(wait_flag(&origin.slow_closed, closed + 1));
    /* The handle is usable afterwards. */
    req.url = url(f, "/hello");
    assert_int_equal(fetch(f, &req), MR_OK);
    assert_string_equal(f->body.p, "hello world");
}

/* ---- the SSRF guard ---------------------------------------------------------- */

static void test_guard_blocks_loopback(void **state)
{
    struct fx *f = *state;
    char localhost[128];
    const char *const urls[] = { url(f, "/hello"), localhost };
    int before = get_flag(&origin.requests);

    snprintf(localhost, sizeof(localhost), "http://localhost:%d/hello", origin.port);
    for (size_t i = 0; i < 2; i++) {
        struct mr_upstream_req req = { .url = urls[i] };
        int rc = fetch(f, &req);
        if (rc != MR_EBLOCKED)
            print_message("%s: rc %d %s\n", urls[i], rc, mr_upstream_error(f->u));
        assert_int_equal(rc, MR_EBLOCKED);
        assert_non_null(strstr(mr_upstream_error(f->u), "loopback"));
        assert_int_equal(f->body.len, 0);
    }
    {
        struct mr_upstream_req req = { .url = "http://[::ffff:127.0.0.1]:1/" };
        assert_int_equal(fetch(f, &req), MR_EBLOCKED);
    }
    assert_int_equal(get_flag(&origin.requests), before);
}

/* allow_networks opens a block without opening everything. */
static void test_guard_allow_networks(void **state)
{
    struct fx *f = *state;
    struct mr_conf *c = conf_load("\"upstream\": {\"allow_networks\": [\"127.0.0.1/32\"]}");
    struct mr_conf *other = conf_load("\"upstream\": {\"allow_networks\": [\"10.0.0.0/8\"]}");
    struct mr_upstream *u = mr_upstream_new(c), *v = mr_upstream_new(other);
    struct mr_upstream_req req = { .url = url(f, "/hello") };

    assert_non_null(u);
    assert_non_null(v);
    mr_buf_reset(&f->body);
    assert_int_equal(mr_upstream_fetch(u, &f->arena, &req, &f->head, &f->body), MR_OK);
    assert_string_equal(f->body.p, "hello world");
    mr_buf_reset(&f->body);
    assert_int_equal(mr_upstream_fetch(v, &f->arena, &req, &f->head, &f->body), MR_EBLOCKED);
    mr_upstream_free(u);
    mr_upstream_free(v);
    mr_conf_free(c);
    mr_conf_free(other);
}

/* ---- stream ------------------------------------------------------------------- */

struct rec {
    int heads;
    int datas;
    int data_before_head;
    long head_status;
    long long head_length;
    size_t bytes;
    int fail_head;        /* returned by head() */
    int fail_data_after;  /* data() fails once this many calls were made (0: never) */
    int fail_check;       /* returned by check() */
    int checks;
    int moves;            /* move() calls that moved bytes */
    int fail_move_after;  /* move() fails once this many moved bytes (0: never) */
    bool pattern_ok;
};

static int rec_head(void *arg, const struct mr_upstream_head *h)
{
    struct rec *r = arg;
    r->heads++;
    r->head_status = h->status;
    r->head_length = h->content_length;
    return r->fail_head;
}

static int rec_data(void *arg, const void *p, size_t n)
{
    struct rec *r = arg;
    const char *c = p;

    if (!r->heads)
        r->data_before_head++;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (char)('a' + ((r->bytes + i) % 16384) % 26))
            r->pattern_ok = false;
    r->datas++;
    r->bytes += n;
    if (r->fail_data_after && r->datas >= r->fail_data_after)
        return MR_ECLIENT;
    return 0;
}

/* The sink's move() as plain reads: what upstream.c hands over, not how
 * the bytes travel (fcgi_io.c's splice is tested on the real stack). */
static int rec_move(void *arg, int fd, size_t n, size_t *moved)
{
    struct rec *r = arg;
    char buf[65536];
    ssize_t k = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));

    *moved = 0;
    if (k < 0)
        return errno == EAGAIN ? MR_OK : MR_EUPSTREAM;
    if (k == 0)
        return MR_OK;
    if (rec_data(r, buf, (size_t)k))
        return MR_ECLIENT;
    r->datas--;
    r->moves++;
    *moved = (size_t)k;
    return r->fail_move_after && r->moves >= r->fail_move_after ? MR_ECLIENT : MR_OK;
}

static int rec_check(void *arg)
{
    struct rec *r = arg;
    r->checks++;
    /* The client "leaves" once the stall began (bytes arrived). */
    return r->bytes ? r->fail_check : 0;
}

static int stream(struct fx *f, const char *path, const char *method, struct rec *r,
                  bool with_check)
{
    struct mr_sink sink = { .head = rec_head, .data = rec_data, .arg = r };
    struct mr_upstream_req req = { .method = method, .url = url(f, path) };
    if (with_check)
        sink.check = rec_check;
    r->pattern_ok = true;
    return mr_upstream_stream(f->u, &f->arena, &req, &f->head, &sink);
}

static void test_stream(void **state)
{
    struct fx *f = *state;
    struct rec r = { 0 };

    assert_int_equal(stream(f, "/big", NULL, &r, false), MR_OK);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.data_before_head, 0);
    assert_true(r.datas >= 1);
    assert_int_equal(r.bytes, BIG);
    assert_true(r.pattern_ok);
    assert_int_equal(r.head_status, 200);
    assert_int_equal(r.head_length, BIG);
    assert_int_equal(f->head.status, 200);
    assert_string_equal(mr_upstream_header(&f->head, "Content-Type"), "video/mp4");

    /* No cap on streams: the bytes just pass. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream(f, "/big-nolen", NULL, &r, false), MR_OK);
    assert_int_equal(r.bytes, BIG);
    assert_int_equal(r.head_length, -1);

    /* An error status is streamed like any other. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream(f, "/missing", NULL, &r, false), MR_OK);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.head_status, 404);
    assert_int_equal(r.bytes, 4);
}

static void test_stream_head(void **state)
{
    struct fx *f = *state;
    struct rec r = { 0 };

    /* No body: head() once, at the end. */
    assert_int_equal(stream(f, "/hello", "HEAD", &r, false), MR_OK);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.datas, 0);
    assert_int_equal(r.head_status, 200);
    assert_int_equal(r.head_length, 11);
}

static void test_stream_sink_errors(void **state)
{
    struct fx *f = *state;
    struct rec r = { 0 };
    int aborted = get_flag(&origin.aborted);

    /* head() refuses: that error, and no data. */
    r.fail_head = MR_EFORBIDDEN;
    assert_int_equal(stream(f, "/hello", NULL, &r, false), MR_EFORBIDDEN);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.datas, 0);

    /* data() fails (the client left): the transfer stops at once with that
     * error, and the origin sees the connection closed. */
    memset(&r, 0, sizeof(r));
    r.fail_data_after = 1;
    assert_int_equal(stream(f, "/endless", NULL, &r, false), MR_ECLIENT);
    assert_int_equal(r.datas, 1);
    assert_true(r.bytes < BIG);
    assert_true(wait_flag(&origin.aborted, aborted + 1));

    /* The handle is usable afterwards. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream(f, "/hello", NULL, &r, false), MR_OK);
    assert_int_equal(r.bytes, 11);
}

/* A stalled stream: no whole-transfer limit, but the low-speed limit and
 * the sink's check() end it. */
static void test_stream_stalled(void **state)
{
    struct fx *f = *state;
    struct rec r = { 0 };
    int closed = get_flag(&origin.slow_closed);

    assert_int_equal(stream(f, "/slow", NULL, &r, false), MR_ETIMEOUT);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.bytes, 10);
    assert_true(wait_flag(&origin.slow_closed, closed + 1));

    /* check() says the client left while nothing moves. */
    memset(&r, 0, sizeof(r));
    r.fail_check = MR_ECLIENT;
    assert_int_equal(stream(f, "/slow", NULL, &r, true), MR_ECLIENT);
    assert_true(r.checks >= 1);
    assert_int_equal(r.bytes, 10);
    assert_true(wait_flag(&origin.slow_closed, closed + 2));

    /* A per-request timeout applies to streams too. */
    {
        struct mr_sink sink = { .head = rec_head, .data = rec_data, .arg = &r };
        struct mr_upstream_req req = { .url = url(f, "/slow"), .timeout_ms = 300 };
        memset(&r, 0, sizeof(r));
        assert_int_equal(mr_upstream_stream(f->u, &f->arena, &req, &f->head, &sink),
                         MR_ETIMEOUT);
        assert_true(wait_flag(&origin.slow_closed, closed + 3));
    }
}

/* ---- handing a body's rest over ------------------------------------------- */

static int stream_moving(struct fx *f, const char *path, const char *method, struct rec *r,
                         long timeout_ms)
{
    struct mr_sink sink = { .head = rec_head, .data = rec_data, .check = rec_check,
                            .move = rec_move, .arg = r };
    struct mr_upstream_req req = { .method = method, .url = url(f, path),
                                   .timeout_ms = timeout_ms };
    r->pattern_ok = true;
    return mr_upstream_stream(f->u, &f->arena, &req, &f->head, &sink);
}

/* The whole BIG body arrived, by move() or not at all by it. */
static void assert_whole(const struct rec *r, bool handed_over)
{
    assert_int_equal(r->bytes, BIG);
    assert_true(r->pattern_ok);
    if (handed_over)
        assert_true(r->moves >= 1);
    else
        assert_int_equal(r->moves, 0);
}

static void test_hand_over(void **state)
{
    struct fx *f = *state;
    struct rec r = { 0 };

    /* A length: what libcurl read went to data(), the rest to move(). */
    assert_int_equal(stream_moving(f, "/paced", NULL, &r, 0), MR_OK);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.data_before_head, 0);
    assert_whole(&r, true);

    /* No length: until the upstream closes. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/paced-nolen", NULL, &r, 0), MR_OK);
    assert_whole(&r, true);

    /* Where libcurl reads on while bytes wait, the body is whole whichever
     * way it went. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/big", NULL, &r, 0), MR_OK);
    assert_int_equal(r.bytes, BIG);
    assert_true(r.pattern_ok);

    /* The connection's socket is found again and again: sockets libcurl
     * closed are forgotten. */
    for (int i = 0; i < 3 * 16; i++) {
        memset(&r, 0, sizeof(r));
        assert_int_equal(stream_moving(f, "/paced", NULL, &r, 0), MR_OK);
        assert_whole(&r, true);
    }
}

static void test_hand_over_not_offered(void **state)
{
    struct fx *f = *state;
    struct rec r = { 0 };

    /* Chunked: the socket's bytes are not the body's, even when the header
     * that says so comes past the ones a head keeps. */
    assert_int_equal(stream_moving(f, "/big-chunked", NULL, &r, 0), MR_OK);
    assert_whole(&r, false);
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/many-headers-chunked", NULL, &r, 0), MR_OK);
    assert_whole(&r, false);
    assert_null(mr_upstream_header(&f->head, "Transfer-Encoding"));   /* past the cap */

    /* HEAD, and an error status. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/big", "HEAD", &r, 0), MR_OK);
    assert_int_equal(r.moves + r.datas, 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/missing", NULL, &r, 0), MR_OK);
    assert_int_equal(r.moves, 0);
    assert_int_equal(r.head_status, 404);
    assert_int_equal(r.bytes, 4);
}

static void test_hand_over_too_short(void **state)
{
    struct fx *f = *state;
    struct rec r = { 0 };

    /* The default upstream.splice_min_bytes (1 MiB) is more than /paced has
     * left once libcurl read its head: it stays with libcurl. */
    assert_int_equal(stream_moving(f, "/paced", NULL, &r, 0), MR_OK);
    assert_whole(&r, false);
    /* Without a length it is handed over whatever its size. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/paced-nolen", NULL, &r, 0), MR_OK);
    assert_whole(&r, true);
}

static void test_hand_over_failures(void **state)
{
    struct fx *f = *state;
    struct rec r = { 0 };
    int closed = get_flag(&origin.slow_closed), aborted = get_flag(&origin.aborted);

    /* The upstream closes before its length: an upstream error. */
    assert_int_equal(stream_moving(f, "/short", NULL, &r, 0), MR_EUPSTREAM);
    assert_int_equal(r.bytes, BIG / 2);
    assert_true(r.pattern_ok);
    assert_non_null(strstr(mr_upstream_error(f->u), "bytes of the body to go"));

    /* A stall: the low-speed limit (1000 B/s for 1 s here) ends it. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/slow", NULL, &r, 0), MR_ETIMEOUT);
    assert_int_equal(r.bytes, 10);
    assert_true(wait_flag(&origin.slow_closed, closed + 1));

    /* check() says the client left while nothing moves. */
    memset(&r, 0, sizeof(r));
    r.fail_check = MR_ECLIENT;
    assert_int_equal(stream_moving(f, "/slow", NULL, &r, 0), MR_ECLIENT);
    assert_true(r.checks >= 1);
    assert_true(wait_flag(&origin.slow_closed, closed + 2));

    /* The request's own timeout. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/slow", NULL, &r, 300), MR_ETIMEOUT);
    assert_true(wait_flag(&origin.slow_closed, closed + 3));

    /* move() fails (the client left): the transfer stops at once and the
     * origin sees the connection close. */
    memset(&r, 0, sizeof(r));
    r.fail_move_after = 1;
    assert_int_equal(stream_moving(f, "/endless", NULL, &r, 0), MR_ECLIENT);
    assert_int_equal(r.moves, 1);
    assert_true(wait_flag(&origin.aborted, aborted + 1));

    /* The handle is usable afterwards. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/hello", NULL, &r, 0), MR_OK);
    assert_int_equal(r.bytes, 11);

    /* Sockets of connections that failed are forgotten too: after more of
     * them than the handle tracks, bodies are still handed over. */
    for (int i = 0; i < 3 * 16; i++) {
        struct mr_upstream_req req = { .url = f->url };
        snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/x", origin.close_port);
        assert_int_equal(fetch(f, &req), MR_EUPSTREAM);
    }
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_moving(f, "/paced", NULL, &r, 0), MR_OK);
    assert_whole(&r, true);
}

static void test_header_lookup(void **state)
{
    struct mr_upstream_head h;

    (void)state;
    memset(&h, 0, sizeof(h));
    h.headers[0] = (struct mr_header){ "Content-Type", "video/mp2t" };
    h.headers[1] = (struct mr_header){ "ETag", "\"x\"" };
    h.headers[2] = (struct mr_header){ "etag", "second" };
    h.nheaders = 3;
    assert_string_equal(mr_upstream_header(&h, "content-type"), "video/mp2t");
    assert_string_equal(mr_upstream_header(&h, "CONTENT-TYPE"), "video/mp2t");
    assert_string_equal(mr_upstream_header(&h, "etag"), "\"x\"");      /* the first */
    assert_null(mr_upstream_header(&h, "Content"));
    assert_null(mr_upstream_header(&h, "Content-Type-X"));
    h.nheaders = 0;
    assert_null(mr_upstream_header(&h, "ETag"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define G(fn) cmocka_unit_test_setup_teardown(fn, setup_guarded, teardown)
#define S(fn) cmocka_unit_test_setup_teardown(fn, setup_splice, teardown)
    const struct CMUnitTest tests[] = {
        T(test_fetch_basic),
        T(test_fetch_status_passes),
        T(test_fetch_big),
        T(test_fetch_cap),
        T(test_fetch_head),
        T(test_request_headers),
        T(test_request_headers_filtered),
        cmocka_unit_test(test_header_filter_table),
        cmocka_unit_test(test_redirect_refused_table),
        T(test_redirect_hosts),
        T(test_redirects),
        T(test_redirect_to_other_scheme),
        T(test_schemes_blocked),
        T(test_refused_and_closed),
        T(test_timeout),
        G(test_guard_blocks_loopback),
        G(test_guard_allow_networks),
        G(test_schemes_blocked),
        T(test_stream),
        T(test_stream_head),
        T(test_stream_sink_errors),
        T(test_stream_stalled),
        S(test_hand_over),
        S(test_hand_over_not_offered),
        T(test_hand_over_too_short),
        S(test_hand_over_failures),
        cmocka_unit_test(test_header_lookup),
    };
#undef T
#undef G
#undef S
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
