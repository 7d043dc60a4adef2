/* server.h - the process model every executable shares, and the request
 * context handlers get.
 *
 * An executable is a struct mr_app (its name and route table) handed to
 * mr_server_main: it loads the configuration (refusing to start on any
 * error), starts N threads (server.threads.<name>), each with its own
 * FCGX_Accept_r loop, arena, curl handle and Redis connection, and on
 * SIGTERM/SIGINT stops accepting, lets in-flight requests finish (at most
 * server.drain_timeout_s) and exits 0.
 */
#ifndef MR_SERVER_H
#define MR_SERVER_H

#include <time.h>

#include "app/media.h"
#include "core/arena.h"
#include "core/config.h"
#include "http/request.h"
#include "http/response.h"
#include "http/route.h"

struct mr_store;
struct mr_upstream;
struct mr_token_key;

struct mr_app {
    const char *name;                   /* "proxy": runs as mediarelay-proxy */
    const struct mr_route *routes;      /* ends with {0} */
    /* Optional, once per process after the configuration is loaded. */
    int (*init)(const struct mr_conf *conf);
};

/* Process-wide state, read-only once the threads run. */
struct mr_process {
    const struct mr_app *app;
    const struct mr_conf *conf;
    struct mr_lru *fallback;            /* the store's in-process cache */
    struct mr_token_key *key;           /* from conf's secret */
    char exe[64];                       /* "mediarelay-proxy" */
};

/* Everything a handler needs; one per thread, reset per request. */
struct mr_ctx {
    const struct mr_process *proc;
    const struct mr_conf *conf;
    struct mr_arena *arena;             /* reset after each request */
    struct mr_request req;
    struct mr_response resp;
    struct mr_route_match match;
    struct mr_store *store;             /* this thread's */
    struct mr_upstream *up;             /* this thread's */
    const struct mr_media *media;       /* for MR_ROUTE_MEDIA routes */
    long upstream_status;               /* for the access line */
    long long start_us;                 /* mr_clock_mono_us() at its start */
    char why[256];                      /* why resolving failed, for the
                                           error answer (mr_fail), or "" */
};

/* Runs the executable; returns the process exit status. */
int mr_server_main(const struct mr_app *app, int argc, char **argv);

/* Runs one request through the route table: CORS, preflight, 404/405,
 * route flags, the handler, the error answer if the handler failed before
 * answering.  The server calls it; tests may too. */
void mr_server_dispatch(struct mr_ctx *ctx);

/* Handlers every executable has. */
int mr_handle_health(struct mr_ctx *ctx);
/* 501 until the issue that implements a route lands. */
int mr_handle_not_implemented(struct mr_ctx *ctx);

#endif
