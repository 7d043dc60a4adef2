/* fcgi_io.c - FastCGI streams as struct mr_out and mr_read_fn. */
#include "fcgi_io.h"

#include <limits.h>

static int fcgi_write(void *arg, const void *p, size_t n)
{
    FCGX_Request *r = arg;
    const char *s = p;

    while (n) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (FCGX_PutStr(s, chunk, r->out) != chunk)
            return -1;
        s += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

static int fcgi_flush(void *arg)
{
    FCGX_Request *r = arg;
    return FCGX_FFlush(r->out) < 0 ? -1 : 0;
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
    out->write = fcgi_write;
    out->flush = fcgi_flush;
    out->arg = r;
    req->read = fcgi_read;
    req->read_arg = r;
}
