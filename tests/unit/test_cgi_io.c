/* test_cgi_io.c - plain CGI's stdin and stdout as the request body and the
 * response: the response writer's output reaches stdout whole and in order,
 * the body reader stops at CONTENT_LENGTH even when stdin goes on, a web
 * server that went away is seen (a pipe's reader closed; a socket closed
 * both ways, not one that only stopped sending, as mod_cgid's does once the
 * body is sent), and mr_cgi_started tells a CGI program from a FastCGI one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/error.h"
#include "http/cgi_io.h"
#include "http/request.h"
#include "http/response.h"

static char *env_get[] = {
    "GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET", "REQUEST_URI=/api/health?x=1",
    "HTTP_RANGE=bytes=0-9", NULL
};

/* A whole answer through the response writer reaches the pipe as the web
 * server reads it: a Status line, the headers, the body. */
static void test_answer_reaches_stdout(void **state)
{
    struct mr_arena a;
    struct mr_request req;
    struct mr_response resp;
    struct mr_out out;
    struct mr_cgi_io io;
    static char body[100000];
    int p[2];
    ssize_t n, got = 0;

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    io.in_fd = -1;
    io.out_fd = p[1];
    assert_int_equal(mr_request_parse(&req, &a, env_get), MR_OK);
    assert_string_equal(mr_request_header(&req, "range"), "bytes=0-9");
    mr_cgi_bind(&io, &out, &req);
    memset(body, 'b', sizeof(body));
    mr_resp_init(&resp, &a, &out, false);
    resp.status = 200;
    assert_int_equal(mr_resp_header(&resp, "Content-Type", "video/mp4"), MR_OK);
    assert_int_equal(mr_resp_write(&resp, body, sizeof(body)), MR_OK);
    mr_resp_finish(&resp);
    close(p[1]);
    {
        static char all[200000];
        while ((n = read(p[0], all + got, sizeof(all) - (size_t)got)) > 0)
            got += n;
        all[got] = 0;
        assert_true(!strncmp(all, "Status: 200", 11));
        assert_non_null(strstr(all, "Content-Type: video/mp4\r\n"));
        char *b = strstr(all, "\r\n\r\n");
        assert_non_null(b);
        b += 4;
        assert_int_equal(got - (b - all), (ssize_t)sizeof(body));
        assert_memory_equal(b, body, sizeof(body));
    }
    close(p[0]);
    mr_arena_free(&a);
}

/* The body is CONTENT_LENGTH bytes of stdin, whatever follows them. */
static void test_body_stops_at_content_length(void **state)
{
    char *env[] = { "GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=POST",
                    "REQUEST_URI=/api/media", "CONTENT_LENGTH=5", NULL };
    struct mr_arena a;
    struct mr_request req;
    struct mr_out out;
    struct mr_cgi_io io;
    char buf[64];
    int p[2];
    long n, total = 0;

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "hello, and more", 15), 15);   /* stays open */
    io.in_fd = p[0];
    io.out_fd = -1;
    assert_int_equal(mr_request_parse(&req, &a, env), MR_OK);
    mr_cgi_bind(&io, &out, &req);
    while ((n = req.read(req.read_arg, buf + total, sizeof(buf) - (size_t)total)) > 0)
        total += n;
    assert_int_equal(n, 0);            /* the end, not a wait for more */
    assert_int_equal(total, 5);
    assert_memory_equal(buf, "hello", 5);
    close(p[0]);
    close(p[1]);
    mr_arena_free(&a);
}

/* No CONTENT_LENGTH: no body, and stdin is not read at all. */
static void test_no_body_without_length(void **state)
{
    struct mr_arena a;
    struct mr_request req;
    struct mr_out out;
    struct mr_cgi_io io = { .in_fd = -1, .out_fd = -1 };
    char buf[8];

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(mr_request_parse(&req, &a, env_get), MR_OK);
    mr_cgi_bind(&io, &out, &req);
    assert_int_equal(req.read(req.read_arg, buf, sizeof(buf)), 0);
    mr_arena_free(&a);
}

static void test_closed_pipe(void **state)
{
    struct mr_arena a;
    struct mr_request req;
    struct mr_out out;
    struct mr_cgi_io io = { .in_fd = -1 };
    int p[2];

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(pipe(p), 0);
    io.out_fd = p[1];
    assert_int_equal(mr_request_parse(&req, &a, env_get), MR_OK);
    mr_cgi_bind(&io, &out, &req);
    assert_int_equal(out.closed(out.arg), 0);
    close(p[0]);
    assert_int_not_equal(out.closed(out.arg), 0);
    assert_int_equal(out.write(out.arg, "x", 1), -1);   /* EPIPE, SIGPIPE ignored */
    close(p[1]);
    mr_arena_free(&a);
}

/* mod_cgid: stdin and stdout are one socket.  A half-close (the body is
 * sent) is not a client that left; a close is. */
static void test_closed_socket(void **state)
{
    struct mr_arena a;
    struct mr_request req;
    struct mr_out out;
    struct mr_cgi_io io;
    int sv[2];

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    io.in_fd = io.out_fd = sv[0];
    assert_int_equal(mr_request_parse(&req, &a, env_get), MR_OK);
    mr_cgi_bind(&io, &out, &req);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
    assert_int_equal(out.closed(out.arg), 0);
    assert_int_equal(out.write(out.arg, "still there", 11), 0);
    close(sv[1]);
    assert_int_not_equal(out.closed(out.arg), 0);
    close(sv[0]);
    mr_arena_free(&a);
}

static void test_started(void **state)
{
    int sv[2], lfd, saved;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    (void)state;
    saved = dup(0);
    unsetenv("GATEWAY_INTERFACE");
    assert_false(mr_cgi_started());            /* run by hand: no web server */
    setenv("GATEWAY_INTERFACE", "CGI/1.1", 1);
    /* stdin a pipe, a connected socket (mod_cgid), or closed: CGI */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    dup2(sv[0], 0);
    assert_true(mr_cgi_started());
    close(0);
    assert_true(mr_cgi_started());
    /* a listening socket on fd 0 (spawn-fcgi, mod_fcgid): FastCGI */
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/test_cgi_io.%d.sock", (int)getpid());
    unlink(sa.sun_path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    dup2(lfd, 0);
    assert_false(mr_cgi_started());
    setenv("GATEWAY_INTERFACE", "nonsense", 1);
    close(0);
    assert_false(mr_cgi_started());
    unlink(sa.sun_path);
    unsetenv("GATEWAY_INTERFACE");
    dup2(saved, 0);
    close(saved);
    close(lfd);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_reaches_stdout),
        cmocka_unit_test(test_body_stops_at_content_length),
        cmocka_unit_test(test_no_body_without_length),
        cmocka_unit_test(test_closed_pipe),
        cmocka_unit_test(test_closed_socket),
        cmocka_unit_test(test_started),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
