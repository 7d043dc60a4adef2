/* arena.c - per-request bump allocator with cleanups.
 *
 * Built with AddressSanitizer, every allocation is followed by a poisoned
 * red zone and a block's free space stays poisoned until handed out, so a
 * write past one allocation into the next is reported where it happens,
 * as it would be for malloc, rather than corrupting a neighbour silently.
 */
#include "core/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/limits.h"

#define ALIGN 16u

#define REDZONE MR_ARENA_REDZONE
#if MR_ARENA_REDZONE
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct mr_arena_block {
    struct mr_arena_block *prev;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct mr_arena_cleanup {
    struct mr_arena_cleanup *next;
    void (*fn)(void *);
    void *arg;
};

void mr_arena_init(struct mr_arena *a, size_t block_size)
{
    a->head = NULL;
    a->large = NULL;
    a->cleanups = NULL;
    a->block_size = block_size ? block_size : MR_ARENA_BLOCK;
    a->total = 0;
}

static void run_cleanups(struct mr_arena *a)
{
    /* A cleanup may not allocate from the arena it is being run for. */
    struct mr_arena_cleanup *c = a->cleanups;
    a->cleanups = NULL;
    while (c) {
        struct mr_arena_cleanup *next = c->next;
        c->fn(c->arg);
        c = next;
    }
}

static void free_large(struct mr_arena *a)
{
    while (a->large) {
        struct mr_arena_block *prev = a->large->prev;
        free(a->large);
        a->large = prev;
    }
}

void mr_arena_free(struct mr_arena *a)
{
    run_cleanups(a);
    free_large(a);
    while (a->head) {
        struct mr_arena_block *prev = a->head->prev;
        free(a->head);
        a->head = prev;
    }
    a->total = 0;
}

void mr_arena_reset(struct mr_arena *a)
{
    run_cleanups(a);
    free_large(a);
    a->total = 0;
    if (!a->head)
        return;
    while (a->head->prev) {
        struct mr_arena_block *prev = a->head->prev;
        free(a->head);
        a->head = prev;
    }
    a->head->used = 0;
    POISON(a->head->data, a->head->size);
}

static struct mr_arena_block *new_block(size_t size, struct mr_arena_block *prev)
{
    struct mr_arena_block *b;
    if (size > SIZE_MAX - sizeof(*b))
        return NULL;
    b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->prev = prev;
    b->size = size;
    b->used = 0;
    POISON(b->data, size);
    return b;
}

void *mr_arena_alloc(struct mr_arena *a, size_t n)
{
    struct mr_arena_block *b = a->head;
    size_t need, n_round;
    void *p;

    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - ALIGN - REDZONE)
        return NULL;
    n_round = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    need = n_round + REDZONE;

    if (!b || b->size - b->used < need) {
        if (need > a->block_size / 4) {
            /* A large allocation gets a block of its own, on a list of its
             * own: the current block's free space is not lost, and a reset
             * frees it rather than keeping it for the thread's lifetime. */
            struct mr_arena_block *big = new_block(need, a->large);
            if (!big)
                return NULL;
            big->used = need;
            a->large = big;
            a->total += n_round;
            UNPOISON(big->data, n);
            return big->data;
        }
        b = new_block(a->block_size, a->head);
        if (!b)
            return NULL;
        a->head = b;
    }
    p = b->data + b->used;
    b->used += need;
    a->total += n_round;
    UNPOISON(p, n);
    return p;
}

void *mr_arena_calloc(struct mr_arena *a, size_t n, size_t size)
{
    void *p;
    if (size && n > SIZE_MAX / size)
        return NULL;
    p = mr_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

char *mr_arena_strndup(struct mr_arena *a, const char *s, size_t n)
{
    char *p;
    if (n == SIZE_MAX)
        return NULL;
    p = mr_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *mr_arena_strdup(struct mr_arena *a, const char *s)
{
    return mr_arena_strndup(a, s, strlen(s));
}

char *mr_arena_strdup_str(struct mr_arena *a, struct mr_str s)
{
    return mr_arena_strndup(a, s.p ? s.p : "", s.len);
}

char *mr_arena_vprintf(struct mr_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    char *p;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    p = mr_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *mr_arena_printf(struct mr_arena *a, const char *fmt, ...)
{
    va_list ap;
    char *p;
    va_start(ap, fmt);
    p = mr_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

int mr_arena_cleanup(struct mr_arena *a, void (*fn)(void *), void *arg)
{
    struct mr_arena_cleanup *c = mr_arena_alloc(a, sizeof(*c));
    if (!c) {
        fn(arg);
        return MR_ENOMEM;
    }
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return MR_OK;
}
