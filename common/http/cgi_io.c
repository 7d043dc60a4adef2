/* cgi_io.c - plain CGI's stdin and stdout as struct mr_out and mr_read_fn.
 *
 * Nothing is buffered here: the response writer hands over the header block
 * in one piece and bodies in large ones, and each goes to stdout at once, so
 * a stream reaches the web server as it comes.  A client that leaves shows
 * as an error on stdout (the web server closed its end: EPIPE, SIGPIPE being
 * ignored) or, under mod_cgi, as the SIGTERM with which Apache ends the
 * program; either way the relay stops its upstream transfer.
 */
#include "http/cgi_io.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int cgi_write(void *arg, const void *p, size_t n)
{
    struct mr_cgi_io *io = arg;
    const char *s = p;

    while (n) {
        ssize_t k = write(io->out_fd, s, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The web server's end of stdout is gone: a pipe whose reader closed
 * (POLLERR), or a socket whose peer closed both ways (POLLHUP).  Not a
 * peer that only stopped sending: mod_cgid's stdin and stdout are one
 * socket, which Apache half-closes once the request body is sent. */
static int cgi_closed(void *arg)
{
    struct mr_cgi_io *io = arg;
    struct pollfd pfd = { .fd = io->out_fd, .events = 0 };

    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static long cgi_read(void *arg, void *buf, size_t n)
{
    struct mr_cgi_io *io = arg;
    ssize_t k;

    if (io->left <= 0)
        return 0;
    if ((long)n > io->left)
        n = (size_t)io->left;
    do
        k = read(io->in_fd, buf, n);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return -1;
    io->left -= k;
    return k;
}

void mr_cgi_drain(struct mr_cgi_io *io, long cap, int wait_ms)
{
    char buf[16384];

    while (io->left > 0 && cap > 0) {
        struct pollfd p = { io->in_fd, POLLIN, 0 };
        long k;
        if (poll(&p, 1, wait_ms) <= 0)
            return;
        k = cgi_read(io, buf, sizeof(buf) < (size_t)cap ? sizeof(buf) : (size_t)cap);
        if (k <= 0)
            return;
        cap -= k;
    }
}

void mr_cgi_bind(struct mr_cgi_io *io, struct mr_out *out, struct mr_request *req)
{
    memset(out, 0, sizeof(*out));
    io->left = req->content_length > 0 ? req->content_length : 0;
    out->write = cgi_write;
    out->closed = cgi_closed;
    out->arg = io;
    req->read = cgi_read;
    req->read_arg = io;
}

bool mr_cgi_started(void)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    const char *gw = getenv("GATEWAY_INTERFACE");

    if (!gw || strncmp(gw, "CGI/", 4))
        return false;
    /* FastCGI's listening socket on fd 0 answers getpeername with
     * ENOTCONN; a CGI program's stdin is a pipe, a file, a connected
     * socket (mod_cgid) or closed. */
    if (getpeername(0, (struct sockaddr *)&sa, &len) < 0 && errno == ENOTCONN)
        return false;
    return true;
}
