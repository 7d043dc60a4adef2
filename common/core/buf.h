/* buf.h - a growable byte buffer that refuses to grow past its cap.
 *
 * Like curl's dynbuf: the cap is fixed when the buffer is made, and an append
 * that would exceed it fails with MR_ETOOBIG and leaves the contents as they
 * were.  The contents are always NUL-terminated (the NUL is not counted).
 */
#ifndef MR_BUF_H
#define MR_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/str.h"

struct mr_buf {
    char *p;
    size_t len;
    size_t size;   /* allocated bytes */
    size_t cap;    /* the most len may ever be */
};

void mr_buf_init(struct mr_buf *b, size_t cap);
/* Frees the memory; the buffer may be reused after mr_buf_init. */
void mr_buf_free(struct mr_buf *b);
/* Empties the buffer and keeps its memory. */
void mr_buf_reset(struct mr_buf *b);
/* Makes room for n more bytes without appending them. */
int mr_buf_reserve(struct mr_buf *b, size_t n);
int mr_buf_append(struct mr_buf *b, const void *p, size_t n);
int mr_buf_append_str(struct mr_buf *b, struct mr_str s);
int mr_buf_puts(struct mr_buf *b, const char *s);
int mr_buf_printf(struct mr_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline struct mr_str mr_buf_str(const struct mr_buf *b)
{
    return (struct mr_str){ b->p ? b->p : "", b->len };
}
/* Hands the memory to the caller (free() it) and empties the buffer. */
char *mr_buf_steal(struct mr_buf *b, size_t *len);
/* An arena cleanup that frees a struct mr_buf's memory. */
void mr_buf_cleanup(void *buf);

#endif
