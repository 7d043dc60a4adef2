/* buf.c - capped growable buffers. */
#include "core/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

void mr_buf_init(struct mr_buf *b, size_t cap)
{
    b->p = NULL;
    b->len = 0;
    b->size = 0;
    b->cap = cap;
}

void mr_buf_free(struct mr_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->size = 0;
}

void mr_buf_cleanup(void *buf)
{
    mr_buf_free(buf);
}

void mr_buf_reset(struct mr_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

int mr_buf_reserve(struct mr_buf *b, size_t n)
{
    size_t want, size;
    char *p;

    if (n > b->cap || b->len > b->cap - n)
        return MR_ETOOBIG;
    want = b->len + n + 1;
    if (want <= b->size)
        return MR_OK;
    size = b->size ? b->size : 256;
    while (size < want)
        size = size > SIZE_MAX / 2 ? want : size * 2;
    if (size > b->cap + 1)
        size = b->cap + 1;
    p = realloc(b->p, size);
    if (!p)
        return MR_ENOMEM;
    b->p = p;
    b->size = size;
    return MR_OK;
}

int mr_buf_append(struct mr_buf *b, const void *p, size_t n)
{
    int rc = mr_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return MR_OK;
}

int mr_buf_append_str(struct mr_buf *b, struct mr_str s)
{
    return mr_buf_append(b, s.p, s.len);
}

int mr_buf_puts(struct mr_buf *b, const char *s)
{
    return mr_buf_append(b, s, strlen(s));
}

int mr_buf_printf(struct mr_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MR_EINVAL;
    rc = mr_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MR_OK;
}

char *mr_buf_steal(struct mr_buf *b, size_t *len)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = 0;
    b->size = 0;
    return p;
}
