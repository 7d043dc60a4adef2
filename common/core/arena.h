/* arena.h - one memory arena per request; nothing in it is freed alone.
 *
 * Small allocations come from blocks that are released together by
 * mr_arena_reset() after the request ends (nginx pools, h2o's req->pool).
 * Foreign objects (json-c, libxml2, curl slists) are handed to the arena as
 * cleanups, so an error path cannot leak them.  The first block is kept
 * across resets, so a steady stream of small requests does not touch malloc.
 */
#ifndef MR_ARENA_H
#define MR_ARENA_H

#include <stdarg.h>
#include <stddef.h>

#include "core/str.h"

struct mr_arena_block;
struct mr_arena_cleanup;

/* Built with AddressSanitizer, each allocation is followed by this many
 * poisoned bytes (arena.c); 0 otherwise. */
#if defined(__SANITIZE_ADDRESS__)
#define MR_ARENA_REDZONE 16u
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MR_ARENA_REDZONE 16u
#endif
#endif
#ifndef MR_ARENA_REDZONE
#define MR_ARENA_REDZONE 0u
#endif

struct mr_arena {
    struct mr_arena_block *head;     /* current block; list of earlier ones */
    struct mr_arena_block *large;    /* one-off blocks for large allocations */
    struct mr_arena_cleanup *cleanups;
    size_t block_size;
    size_t total;                    /* bytes handed out since the last reset
                                        (rounded up, red zones not counted) */
};

/* Initializes an arena whose blocks are `block_size` bytes (0: default). */
void mr_arena_init(struct mr_arena *a, size_t block_size);
/* Runs the cleanups (last registered first) and frees all blocks. */
void mr_arena_free(struct mr_arena *a);
/* Runs the cleanups and releases every block but the first. */
void mr_arena_reset(struct mr_arena *a);

/* Memory valid until the next reset; NULL when malloc fails.  Aligned for
 * any type. */
void *mr_arena_alloc(struct mr_arena *a, size_t n);
void *mr_arena_calloc(struct mr_arena *a, size_t n, size_t size);
char *mr_arena_strndup(struct mr_arena *a, const char *s, size_t n);
char *mr_arena_strdup(struct mr_arena *a, const char *s);
char *mr_arena_strdup_str(struct mr_arena *a, struct mr_str s);
char *mr_arena_printf(struct mr_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *mr_arena_vprintf(struct mr_arena *a, const char *fmt, va_list ap);

/* Registers fn(arg) to run at the next reset or free.  Returns 0, or
 * MR_ENOMEM after running fn(arg) at once (so the object never leaks). */
int mr_arena_cleanup(struct mr_arena *a, void (*fn)(void *), void *arg);

#endif
