/* fcgi_io.c - FastCGI streams as struct mr_out and mr_read_fn, with a bulk
 * record writer and a zero-copy record mover.
 *
 * Why a record writer: libfcgi's output stream has a fixed 8 KiB buffer and
 * no API to change it, so every 8 KiB of a body is a copy, a write() and a
 * FastCGI record.  Measured on these machines, writing bodies as 64 KiB
 * records straight to the connection (after flushing what the stream holds,
 * so the order of bytes is kept) raised relay throughput by 70 % and cut CPU
 * by a quarter to a half.  Small writes (headers, JSON) still go through
 * the stream.  The connection fd and request id come from FCGX_Request's
 * ipcFd and requestId; libfcgi marks ipcFd "don't use", and this file is the
 * one place that does, on purpose.
 *
 * Why a mover: through libcurl, the relay cost 1.5-1.75x proxy_pass's CPU
 * per GiB, most of it in many small reads of the upstream's socket, the
 * rest in copies (libcurl's, the gather's, the write to this connection).
 * fcgi_move splices up to 1 MiB of the upstream socket at a time through
 * two pipes into this connection, putting the record headers between the
 * pieces: the kernel hands pages on and this process copies nothing.
 */
#include "http/fcgi_io.h"

#include <errno.h>
#include <fastcgi.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/error.h"

/* Below this a write goes through libfcgi's buffer. */
#define BULK_MIN 8192
/* A record's content is at most 65535 bytes; 65528 keeps it 8-aligned, so
 * no padding is needed. */
#define RECORD_MAX 65528

static int write_all(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt) {
        ssize_t n = writev(fd, iov, iovcnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (iovcnt && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Writes p as FCGI_STDOUT records of up to RECORD_MAX bytes, up to
 * BATCH records per writev(). */
#define BATCH 8

static void record_header(const FCGX_Request *r, size_t len, unsigned char *h)
{
    h[0] = FCGI_VERSION_1;
    h[1] = FCGI_STDOUT;
    h[2] = (unsigned char)(r->requestId >> 8);
    h[3] = (unsigned char)r->requestId;
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)len;
    h[6] = 0;
    h[7] = 0;
}

static int write_records(FCGX_Request *r, const char *p, size_t n)
{
    unsigned char heads[BATCH][FCGI_HEADER_LEN];
    struct iovec iov[2 * BATCH];

    while (n) {
        int k = 0;
        for (; k < BATCH && n; k++) {
            size_t chunk = n > RECORD_MAX ? RECORD_MAX : n;
            unsigned char *h = heads[k];
            record_header(r, chunk, h);
            iov[2 * k] = (struct iovec){ h, FCGI_HEADER_LEN };
            iov[2 * k + 1] = (struct iovec){ (void *)p, chunk };
            p += chunk;
            n -= chunk;
        }
        if (write_all(r->ipcFd, iov, 2 * k))
            return -1;
    }
    return 0;
}

/* A bulk body moves in fewer, larger writes when the connection's send
 * buffer holds a whole batch of records (the default is far smaller, and a
 * blocking write then goes out a piece per wake-up).  Once per request:
 * mr_fcgi_bind forgets the last fd. */
#define SNDBUF (2 * BATCH * RECORD_MAX)

static _Thread_local int sndbuf_fd = -1;

static void grow_sndbuf(FCGX_Request *r)
{
    int size = SNDBUF;
    if (sndbuf_fd == r->ipcFd)
        return;
    setsockopt(r->ipcFd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    sndbuf_fd = r->ipcFd;
}

static int fcgi_write(void *arg, const void *p, size_t n)
{
    FCGX_Request *r = arg;
    const char *s = p;

    if (n >= BULK_MIN && r->ipcFd >= 0) {
        if (FCGX_FFlush(r->out) < 0 || FCGX_GetError(r->out))
            return -1;
        grow_sndbuf(r);
        return write_records(r, s, n);
    }
    while (n) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (FCGX_PutStr(s, chunk, r->out) != chunk)
            return -1;
        s += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* The mover's two pipes, made by a request's first move and closed when it
 * ends (mr_fcgi_end): `stage` takes what waits on the upstream's socket in
 * one splice, `out` gets it back record by record behind each header and
 * goes to the web server in one splice.  One large read instead of one per
 * record matters: measured streaming 512 MiB, the proxy spent 25-46 CPU
 * ticks reading a record at a time, 20-27 reading 512 KiB at once and
 * 10-19 reading 1 MiB (fewer, larger reads of the upstream's socket).
 * Pipe sizes are a request the kernel may refuse (an unprivileged user
 * past fs.pipe-user-pages-soft); smaller pipes only make smaller moves. */
#define MOVE_MAX (16 * RECORD_MAX)

static int pipe_bytes = 1024 * 1024;

void mr_fcgi_pipe_bytes(int bytes)
{
    pipe_bytes = bytes;
}

struct mover {
    int stage[2];
    int out[2];
};

static _Thread_local struct mover mover = { { -1, -1 }, { -1, -1 } };

static void close_pipe(int p[2])
{
    if (p[0] >= 0) {
        close(p[0]);
        close(p[1]);
    }
    p[0] = p[1] = -1;
}

static void mover_close(void)
{
    close_pipe(mover.stage);
    close_pipe(mover.out);
}

static int mover_open(void)
{
    int stage[2], out[2];

    if (mover.stage[0] >= 0)
        return 0;
    if (pipe2(stage, O_CLOEXEC | O_NONBLOCK))
        return -1;
    if (pipe2(out, O_CLOEXEC | O_NONBLOCK)) {
        close_pipe(stage);
        return -1;
    }
    fcntl(stage[1], F_SETPIPE_SZ, pipe_bytes);
    fcntl(out[1], F_SETPIPE_SZ, pipe_bytes);
    mover = (struct mover){ { stage[0], stage[1] }, { out[0], out[1] } };
    return 0;
}

/* Sends the n bytes `out` holds to the web server. */
static int drain(FCGX_Request *r, size_t n)
{
    while (n) {
        ssize_t k = splice(mover.out[0], NULL, r->ipcFd, NULL, n, SPLICE_F_MOVE);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return MR_ECLIENT;
        n -= (size_t)k;
    }
    return MR_OK;
}

/* n staged bytes straight to the web server, through a buffer: the rest
 * of a record whose header went out when the kernel refused to move them
 * between the pipes (short of memory), so that records stay whole. */
static int copy_staged(FCGX_Request *r, size_t n)
{
    char buf[8192];

    while (n) {
        ssize_t k = read(mover.stage[0], buf, n < sizeof(buf) ? n : sizeof(buf));
        struct iovec iov = { buf, (size_t)k };
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return MR_EINTERNAL;   /* the staged bytes are there */
        if (write_all(r->ipcFd, &iov, 1))
            return MR_ECLIENT;
        n -= (size_t)k;
    }
    return MR_OK;
}

/* One record into `out`, which holds *held bytes: its header, then len of
 * the staged bytes; `out` is drained when it is full.  Where the kernel
 * refuses a write or splice into `out`, what `out` holds goes on and the
 * record is finished by copy. */
static int put_record(FCGX_Request *r, size_t len, size_t *held)
{
    unsigned char h[FCGI_HEADER_LEN];
    struct iovec iov = { h, sizeof(h) };
    bool full;
    int rc;

    record_header(r, len, h);
    while (write(mover.out[1], h, sizeof(h)) != (ssize_t)sizeof(h)) {
        if (errno == EINTR)
            continue;
        full = errno == EAGAIN && *held;   /* a pipe with room takes 8 bytes whole */
        if ((rc = drain(r, *held)))
            return rc;
        *held = 0;
        if (!full)
            return write_all(r->ipcFd, &iov, 1) ? MR_ECLIENT : copy_staged(r, len);
    }
    *held += sizeof(h);
    while (len) {
        ssize_t k = splice(mover.stage[0], NULL, mover.out[1], NULL, len,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (k > 0) {
            len -= (size_t)k;
            *held += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        full = k < 0 && errno == EAGAIN && *held;
        if ((rc = drain(r, *held)))
            return rc;
        *held = 0;
        if (!full)
            return copy_staged(r, len);
    }
    return MR_OK;
}

/* Without pipes (the process is out of descriptors): the same bytes through
 * a buffer, as libcurl would have carried them. */
static int move_by_copy(FCGX_Request *r, int fd, size_t n, size_t *moved)
{
    char *buf = malloc(RECORD_MAX);
    ssize_t k;
    int rc = MR_OK, e;

    if (!buf)
        return MR_ENOMEM;
    k = read(fd, buf, n < RECORD_MAX ? n : RECORD_MAX);
    e = errno;
    if (k < 0)
        rc = e == EAGAIN || e == EINTR ? MR_OK : MR_EUPSTREAM;
    else if (k > 0 && write_records(r, buf, (size_t)k))
        rc = MR_ECLIENT;
    else
        *moved = (size_t)k;
    free(buf);
    errno = e;
    return rc;
}

static int fcgi_move(void *arg, int fd, size_t n, size_t *moved)
{
    FCGX_Request *r = arg;
    size_t held = 0, left;
    ssize_t got;
    int rc = MR_OK;

    *moved = 0;
    if (r->ipcFd < 0 || FCGX_FFlush(r->out) < 0 || FCGX_GetError(r->out))
        return MR_ECLIENT;
    grow_sndbuf(r);
    if (mover_open())
        return move_by_copy(r, fd, n, moved);
    got = splice(fd, NULL, mover.stage[1], NULL, n < MOVE_MAX ? n : MOVE_MAX,
                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (got <= 0)   /* nothing waits, the end, or an error (errno says) */
        return got == 0 || errno == EAGAIN || errno == EINTR ? MR_OK : MR_EUPSTREAM;
    for (left = (size_t)got; left && !rc;) {
        size_t len = left < RECORD_MAX ? left : RECORD_MAX;
        rc = put_record(r, len, &held);
        left -= len;
    }
    if (!rc)
        rc = drain(r, held);
    if (rc) {
        mover_close();   /* what they hold belongs to no whole record */
        return rc;
    }
    *moved = (size_t)got;
    return MR_OK;
}

static int fcgi_flush(void *arg)
{
    FCGX_Request *r = arg;
    return FCGX_FFlush(r->out) < 0 ? -1 : 0;
}

/* The web server closes the FastCGI connection when its client leaves
 * (nginx with fastcgi_ignore_client_abort off): a hang-up on the socket. */
static int fcgi_closed(void *arg)
{
    FCGX_Request *r = arg;
    struct pollfd pfd = { .fd = r->ipcFd, .events = POLLRDHUP };

    if (r->ipcFd < 0)
        return 1;
    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static long fcgi_read(void *arg, void *buf, size_t n)
{
    FCGX_Request *r = arg;
    int got = FCGX_GetStr(buf, n > INT_MAX ? INT_MAX : (int)n, r->in);
    if (got < 0 || FCGX_GetError(r->in))
        return -1;
    return got;
}

void mr_fcgi_bind(FCGX_Request *r, struct mr_out *out, struct mr_request *req)
{
    sndbuf_fd = -1;
    out->write = fcgi_write;
    out->flush = fcgi_flush;
    out->closed = fcgi_closed;
    out->move = fcgi_move;
    out->arg = r;
    req->read = fcgi_read;
    req->read_arg = r;
}

void mr_fcgi_end(void)
{
    mover_close();
}

void mr_fcgi_abort(FCGX_Request *r)
{
    /* The web server must end the client's response as broken.  Closing
     * the connection is not enough: nginx treats the end of a FastCGI
     * connection as the end of the body when it does not keep connections
     * (it then sends the final chunk, or leaves a short Content-Length
     * response hanging).  A record header it cannot parse (version 0) makes
     * it fail the request and drop the client connection; every FastCGI
     * web server refuses such a record.  Nothing of a record is pending
     * here: records are written whole (the mover finishes by copy a record
     * whose splice the kernel refused), and the stream was flushed. */
    static const unsigned char broken[FCGI_HEADER_LEN] = { 0 };
    struct iovec iov = { (void *)broken, sizeof(broken) };
    int queued = 0;

    if (r->ipcFd < 0)
        return;
    /* nginx drops whatever arrives in the same read as a record it
     * refuses, the response head included: let it take the bytes already
     * sent first (the socket's unread bytes drain to zero), for at most a
     * fifth of a second. */
    for (int i = 0; i < 200; i++) {
        if (ioctl(r->ipcFd, SIOCOUTQ, &queued) < 0 || queued <= 0)
            break;
        usleep(1000);
    }
    write_all(r->ipcFd, &iov, 1);
    shutdown(r->ipcFd, SHUT_RDWR);
}
