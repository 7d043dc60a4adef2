/* request.h - a request as the library sees it, parsed from FastCGI params.
 *
 * Parsing takes the params as a NULL-terminated "NAME=value" array (what
 * libfcgi hands over), so it is testable without FastCGI.  Values point into
 * that array or into the request's arena; both live until the request ends.
 */
#ifndef MR_REQUEST_H
#define MR_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/limits.h"
#include "core/str.h"

struct mr_conf;

/* Reads up to n body bytes; returns the count, 0 at the end, -1 on error. */
typedef long (*mr_read_fn)(void *arg, void *buf, size_t n);

struct mr_request {
    struct mr_str method;        /* "GET" */
    struct mr_str uri;           /* REQUEST_URI, raw, with the query */
    struct mr_str path;          /* the raw path part of uri */
    struct mr_str query;         /* after '?', raw; len 0 when none */
    struct mr_header headers[MR_REQ_MAX_HEADERS];
    size_t nheaders;             /* names lowercased: "if-none-match" */
    struct mr_str remote_addr;
    bool https;
    long content_length;         /* -1 when absent */
    char **params;               /* every FastCGI param, "NAME=value" */
    mr_read_fn read;
    void *read_arg;
};

/* Fills *r from params.  MR_EINVAL when a required param is missing or the
 * path is not an absolute path; MR_ETOOBIG when the path or query exceed
 * their limits. */
int mr_request_parse(struct mr_request *r, struct mr_arena *a, char **params);

/* A FastCGI param set by the web server (not a client header), or NULL. */
const char *mr_request_param(const struct mr_request *r, const char *name);

/* A request header by lowercase name, or NULL. */
const char *mr_request_header(const struct mr_request *r, const char *lname);

/* A cookie's raw value; MR_ENOTFOUND when absent. */
int mr_request_cookie(const struct mr_request *r, const char *name, struct mr_str *out);

/* A query parameter, percent-decoded ('+' is a space) into the arena;
 * MR_ENOTFOUND when absent, MR_EINVAL when malformed (bad escape, NUL). */
int mr_request_query(const struct mr_request *r, struct mr_arena *a,
                     const char *name, char **out);

/* Reads the whole body (at most cap bytes: MR_ETOOBIG beyond) into the
 * arena; NUL-terminated.  MR_EINVAL when it is shorter than its
 * Content-Length (the client stopped sending). */
int mr_request_body(struct mr_request *r, struct mr_arena *a, size_t cap,
                    struct mr_str *out);

/* "scheme://host[:port]" for absolute URLs to this service: public_url,
 * else X-Forwarded-Proto + X-Forwarded-Host, else the scheme and Host of the
 * request.  Forwarded values that are not a plain scheme / host[:port] are
 * ignored.  Arena-allocated; MR_EINVAL when nothing usable is there. */
int mr_request_base_url(const struct mr_request *r, const struct mr_conf *conf,
                        struct mr_arena *a, char **out);

#endif
