/* route.h - the route table: {methods, pattern, handler, flags}.
 *
 * Patterns are literal path segments and captures: "/api/media/{id}/source".
 * A capture matches one non-empty segment, or the part of it before a
 * literal suffix ("/live/{channel}.m3u8"); "{name*}" at the end matches the
 * rest of the path, slashes included.  Flags are checked once, before the
 * handler runs (cgit's want_repo).
 */
#ifndef MR_ROUTE_H
#define MR_ROUTE_H

#include <stddef.h>

#include "core/limits.h"
#include "core/str.h"

struct mr_ctx;

enum {
    MR_GET = 1 << 0,
    MR_HEAD = 1 << 1,
    MR_POST = 1 << 2,
    MR_PUT = 1 << 3,
    MR_DELETE = 1 << 4,
    MR_PATCH = 1 << 5,
    MR_OPTIONS = 1 << 6,
};

enum {
    MR_ROUTE_ADMIN = 1 << 0,   /* needs Authorization: Bearer <admin_token> */
    MR_ROUTE_MEDIA = 1 << 1,   /* {id} must be a known media item (404 if not);
                                  its room, if any, must admit the session */
    MR_ROUTE_METRICS = 1 << 2, /* needs Authorization: Bearer <admin_token>
                                  or <metrics_token> */
};

typedef int (*mr_handler_fn)(struct mr_ctx *ctx);

struct mr_route {
    unsigned methods;          /* MR_GET also allows HEAD */
    const char *pattern;
    mr_handler_fn handler;
    unsigned flags;
};

struct mr_route_match {
    const struct mr_route *route;
    struct mr_str names[MR_ROUTE_MAX_CAPTURES];
    struct mr_str values[MR_ROUTE_MAX_CAPTURES];
    size_t n;
    unsigned allowed;          /* methods of every route whose pattern matched */
};

/* The MR_GET... bit of a method name, 0 for others. */
unsigned mr_method_bit(struct mr_str method);
/* "GET, HEAD, POST" for a mask, into buf. */
void mr_methods_str(unsigned mask, char *buf, size_t len);

/* Finds the route for method + path in a table ending with {0}.  MR_OK with
 * m->route set; MR_EMETHOD when the path matched but not the method
 * (m->allowed says which would); MR_ENOTFOUND when nothing matched. */
int mr_route_find(const struct mr_route *table, struct mr_str method,
                  struct mr_str path, struct mr_route_match *m);

/* A capture by name, MR_STR_NULL (p == NULL) when absent. */
struct mr_str mr_route_capture(const struct mr_route_match *m, const char *name);

#endif
