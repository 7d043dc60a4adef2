/* server.c - main(), the worker threads, dispatch and graceful shutdown.
 *
 * Each worker thread runs its own FCGX_Accept_r loop (libfcgi's
 * examples/threaded.c) with its own arena, curl handle and Redis
 * connection, so a long stream holds one thread, not a process.
 *
 * Shutdown: SIGTERM/SIGINT are blocked in every thread and taken by the main
 * thread with sigwait.  It sets `stopping`, marks libfcgi's shutdown flag,
 * and wakes the threads that wait in accept() with SIGUSR1 (their requests
 * are made with FCGI_FAIL_ACCEPT_ON_INTR); threads that are serving finish
 * their request and then see `stopping`.  When all of them are done, main
 * joins them, frees the process state and returns 0 (a normal exit, so
 * LeakSanitizer checks an ASan build); past server.drain_timeout_s it
 * _exit()s with the stragglers still in flight.  The listening socket is left
 * alone: spawn-fcgi -F shares it between processes, and shutting it down
 * would stop the siblings too.
 */
#include "app/server.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "app/auth.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "core/lru.h"
#include "core/token.h"
#include "http/cgi_io.h"
#include "http/fcgi_io.h"
#include "net/store.h"
#include "net/upstream.h"

#ifndef MR_SYSCONFDIR
#define MR_SYSCONFDIR "/etc"
#endif

enum { T_STARTING, T_ACCEPTING, T_BUSY, T_DONE };

struct worker {
    pthread_t tid;
    int index;
    int listen_fd;
    _Atomic int state;
    const struct mr_process *proc;
};

static atomic_bool stopping;

/* ---- dispatch -------------------------------------------------------------- */

static double elapsed_ms(long long start_us)
{
    return (double)(mr_clock_mono_us() - start_us) / 1e3;
}

static int check_flags(struct mr_ctx *ctx, unsigned flags)
{
    int rc;

    if (flags & MR_ROUTE_ADMIN) {
        rc = mr_auth_admin(ctx);
        if (rc) {
            mr_resp_header(&ctx->resp, "WWW-Authenticate", "Bearer");
            return mr_resp_error(&ctx->resp, rc, "this endpoint needs "
                                 "Authorization: Bearer <admin_token>");
        }
    }
    if (flags & MR_ROUTE_METRICS) {
        rc = mr_auth_metrics(ctx);
        if (rc) {
            mr_resp_header(&ctx->resp, "WWW-Authenticate", "Bearer");
            return mr_resp_error(&ctx->resp, rc, "this endpoint needs Authorization: "
                                 "Bearer <metrics_token> (or <admin_token>)");
        }
    }
    if (flags & MR_ROUTE_MEDIA) {
        struct mr_str id = mr_route_capture(&ctx->match, "id");
        struct mr_media *m = mr_arena_calloc(ctx->arena, 1, sizeof(*m));
        if (!m)
            return MR_ENOMEM;
        rc = mr_media_get(ctx->conf, ctx->store, ctx->arena, id, m);
        if (rc == MR_ENOTFOUND)
            return mr_resp_error(&ctx->resp, rc, "no media item \"%.*s\"",
                                 (int)(id.len > 64 ? 64 : id.len), id.p);
        if (rc)
            return mr_resp_error(&ctx->resp, rc, NULL);
        /* The admin token is the host application's own: it manages rooms'
         * media without a viewer's session. */
        if (!(flags & MR_ROUTE_ADMIN) && (rc = mr_auth_media(ctx, m)))
            return rc;      /* answered */
        ctx->media = m;
    }
    return MR_OK;
}

void mr_server_dispatch(struct mr_ctx *ctx)
{
    struct mr_response *resp = &ctx->resp;
    struct mr_request *req = &ctx->req;
    char methods[80];
    int rc;

    rc = mr_resp_cors(resp, ctx->conf, req);
    if (rc)
        goto fail;

    if (mr_str_eq_c(req->method, "OPTIONS")) {
        rc = mr_route_find(ctx->proc->app->routes, req->method, req->path, &ctx->match);
        if (rc == MR_ENOTFOUND) {
            rc = mr_resp_error(resp, rc, "no such endpoint");
            goto done;
        }
        mr_methods_str(ctx->match.allowed | MR_OPTIONS, methods, sizeof(methods));
        rc = mr_resp_preflight(resp, ctx->conf, req, methods);
        goto done;
    }

    rc = mr_route_find(ctx->proc->app->routes, req->method, req->path, &ctx->match);
    if (rc == MR_ENOTFOUND) {
        rc = mr_resp_error(resp, rc, "no such endpoint");
        goto done;
    }
    if (rc == MR_EMETHOD) {
        mr_methods_str(ctx->match.allowed | MR_OPTIONS, methods, sizeof(methods));
        mr_resp_header(resp, "Allow", methods);
        rc = mr_resp_error(resp, rc, "%.*s is not allowed here; use %s",
                           (int)(req->method.len > 16 ? 16 : req->method.len),
                           req->method.p, methods);
        goto done;
    }

    if (!(rc = check_flags(ctx, ctx->match.route->flags)) && !resp->headers_sent)
        rc = ctx->match.route->handler(ctx);
fail:
    if (rc && !resp->headers_sent)
        rc = mr_resp_error(resp, rc, NULL);
done:
    if (!resp->failed)
        mr_resp_finish(resp);
    (void)rc;
}

/* ---- handlers every executable has ---------------------------------------- */

int mr_handle_health(struct mr_ctx *ctx)
{
    struct json_object *o = json_object_new_object();
    bool redis_ok;

    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    redis_ok = mr_store_ping(ctx->store) == MR_OK;
    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "redis", json_object_new_string(redis_ok ? "ok" : "down"));
    json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(o, "executable", json_object_new_string(ctx->proc->app->name));
    return mr_resp_json(&ctx->resp, 200, o);
}

int mr_handle_not_implemented(struct mr_ctx *ctx)
{
    return mr_resp_error(&ctx->resp, MR_ENOTIMPL, "%.*s %.*s is not implemented yet (%s)",
                         (int)ctx->req.method.len, ctx->req.method.p,
                         (int)(ctx->req.path.len > 200 ? 200 : ctx->req.path.len),
                         ctx->req.path.p, ctx->proc->exe);
}

/* ---- worker threads --------------------------------------------------------- */

/* One request: from a FastCGI connection (fr) or, as a CGI program, from
 * the environment and stdin (cgi). */
static void serve_one(struct mr_ctx *ctx, FCGX_Request *fr, struct mr_cgi_io *cgi)
{
    extern char **environ;
    struct mr_out out;
    int rc;

    ctx->start_us = mr_clock_mono_us();
    ctx->media = NULL;
    ctx->upstream_status = 0;
    ctx->why[0] = 0;
    memset(&ctx->match, 0, sizeof(ctx->match));
    rc = mr_request_parse(&ctx->req, ctx->arena, fr ? fr->envp : environ);
    if (fr)
        mr_fcgi_bind(fr, &out, &ctx->req);
    else
        mr_cgi_bind(cgi, &out, &ctx->req);
    mr_resp_init(&ctx->resp, ctx->arena, &out, mr_str_eq_c(ctx->req.method, "HEAD"));
    if (rc) {
        mr_resp_cors(&ctx->resp, ctx->conf, &ctx->req);
        if (rc == MR_ETOOBIG)
            mr_resp_error_status(&ctx->resp, 414, "uri_too_long", "the request URI is too long");
        else
            mr_resp_error(&ctx->resp, MR_EINVAL, "malformed request");
        mr_resp_finish(&ctx->resp);
    } else {
        mr_server_dispatch(ctx);
    }
    if (ctx->conf->log.access)
        mr_log_access(ctx->req.method, ctx->req.path, ctx->resp.status,
                      ctx->resp.bytes_out, ctx->upstream_status, elapsed_ms(ctx->start_us));
}

/* A thread's context: its arena, Redis connection and curl handle. */
static int ctx_open(struct mr_ctx *ctx, struct mr_arena *arena, const struct mr_process *proc)
{
    memset(ctx, 0, sizeof(*ctx));
    mr_arena_init(arena, 0);
    ctx->proc = proc;
    ctx->conf = proc->conf;
    ctx->arena = arena;
    ctx->store = mr_store_new(proc->conf, proc->fallback);
    ctx->up = mr_upstream_new(proc->conf);
    return ctx->store && ctx->up ? MR_OK : MR_ENOMEM;
}

static void ctx_close(struct mr_ctx *ctx)
{
    mr_arena_free(ctx->arena);
    mr_store_free(ctx->store);
    mr_upstream_free(ctx->up);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct mr_arena arena;
    struct mr_ctx ctx;
    FCGX_Request fr;

    if (ctx_open(&ctx, &arena, w->proc) ||
        FCGX_InitRequest(&fr, w->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR)) {
        mr_error("worker %d: out of memory at start", w->index);
        ctx_close(&ctx);
        atomic_store(&w->state, T_DONE);
        return NULL;
    }

    while (!atomic_load(&stopping)) {
        int rc;
        atomic_store(&w->state, T_ACCEPTING);
        rc = FCGX_Accept_r(&fr);
        atomic_store(&w->state, T_BUSY);
        if (rc < 0) {
            if (atomic_load(&stopping))
                break;
            if (errno != EINTR) {
                mr_warn("accept failed: %s", strerror(errno));
                usleep(10000);   /* EMFILE and friends: do not spin */
            }
            continue;
        }
        serve_one(&ctx, &fr, NULL);
        if (ctx.resp.abort)
            mr_fcgi_abort(&fr);
        FCGX_Finish_r(&fr);
        mr_fcgi_end();
        mr_arena_reset(&arena);
    }
    FCGX_Free(&fr, 0);
    ctx_close(&ctx);
    atomic_store(&w->state, T_DONE);
    return NULL;
}

/* Plain CGI: the one request in this process's environment, in the main
 * thread; then the process ends.  A body that broke off midway simply
 * ends: the web server's response is then short of its Content-Length,
 * which the client sees (there is no other way to say it in CGI). */
static int serve_cgi(const struct mr_process *proc)
{
    struct mr_cgi_io io = { .in_fd = 0, .out_fd = 1 };
    struct mr_arena arena;
    struct mr_ctx ctx;

    if (ctx_open(&ctx, &arena, proc)) {
        ctx_close(&ctx);
        return -1;
    }
    serve_one(&ctx, NULL, &io);
    mr_cgi_drain(&io, 16L << 20, 2000);
    ctx_close(&ctx);
    return 0;
}

static void on_wake(int sig)
{
    (void)sig;   /* only to interrupt accept() */
}

/* ---- main ------------------------------------------------------------------- */

static long threads_for(const struct mr_conf *c, const char *name)
{
    if (!strcmp(name, "resolve"))
        return c->server.threads_resolve;
    if (!strcmp(name, "m3u8"))
        return c->server.threads_m3u8;
    if (!strcmp(name, "segment"))
        return c->server.threads_segment;
    if (!strcmp(name, "jobs"))
        return c->server.threads_jobs;
    return c->server.threads_proxy;
}

static void usage(const char *exe, FILE *f)
{
    fprintf(f,
            "usage: %s [--config FILE] [--listen SOCKET] [--threads N] [--check] [--version]\n"
            "\n"
            "A mediarelay FastCGI executable.  Run it under spawn-fcgi or Apache's\n"
            "mod_fcgid (the listening socket on fd 0), or give --listen (a unix\n"
            "socket path, or host:port for TCP).  Started as a CGI program (the web\n"
            "server set GATEWAY_INTERFACE, no socket on fd 0) it answers the one\n"
            "request in its environment and exits.  --threads N serves N requests\n"
            "at once instead of server.threads.<name> (mod_fcgid: 1).  The\n"
            "configuration is FILE, else $MEDIARELAY_CONFIG, else\n"
            "%s/mediarelay/mediarelay.json.  --check validates it and exits.\n",
            exe, MR_SYSCONFDIR);
}

/* --listen SPEC: a unix socket path (anything with a '/', or without a
 * ':'), or [HOST]:PORT for TCP (HOST a name, an address, [v6], or empty
 * for every address).  Not libfcgi's FCGX_OpenSocket: it exit()s on a
 * bind that fails and takes any number for a port.  A stale socket file
 * is replaced; any other file at the path is not.  The fd, or -1 with
 * why it failed in `why`. */
static int open_listener(const char *spec, char *why, size_t n)
{
    struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *ai, *a;
    const char *colon = strrchr(spec, ':');
    char host[256], port[8];
    long portnum;
    int fd = -1, e, one = 1;

    if (strchr(spec, '/') || !colon) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        size_t len = strlen(spec);
        if (len >= sizeof(sa.sun_path)) {
            snprintf(why, n, "a unix socket path is at most %zu bytes", sizeof(sa.sun_path) - 1);
            return -1;
        }
        memcpy(sa.sun_path, spec, len + 1);
        if (lstat(spec, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(spec);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1024)) {
            snprintf(why, n, "%s", strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        return fd;
    }
    if (!mr_str_to_long(mr_str_c(colon + 1), 1, 65535, &portnum)) {
        snprintf(why, n, "\"%s\" is not a port (1-65535)", colon + 1);
        return -1;
    }
    snprintf(port, sizeof(port), "%ld", portnum);
    if ((size_t)(colon - spec) >= sizeof(host)) {
        snprintf(why, n, "the host is too long");
        return -1;
    }
    if (colon - spec >= 2 && spec[0] == '[' && colon[-1] == ']')   /* [v6]:port */
        snprintf(host, sizeof(host), "%.*s", (int)(colon - spec) - 2, spec + 1);
    else
        snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
    if ((e = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port, &hints, &ai))) {
        snprintf(why, n, "%s", gai_strerror(e));
        return -1;
    }
    snprintf(why, n, "no address");
    for (a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 1024)) {
            snprintf(why, n, "%s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

/* What every request of the process shares: libcurl's global state, the
 * store's fallback cache, the token keys, the executable's own set-up.  On
 * a failure (said on stderr) what was made is undone; else process_close
 * undoes it. */
static int process_open(struct mr_process *p)
{
    const struct mr_conf *c = p->conf;
    int rc;

    if (mr_upstream_global_init()) {
        fprintf(stderr, "%s: libcurl initialization failed\n", p->exe);
        return MR_EINTERNAL;
    }
    p->fallback = mr_lru_new((size_t)c->store.fallback_entries, (size_t)c->store.fallback_bytes);
    p->key = mr_token_key_ring(c->secret, c->previous_secrets.v, c->previous_secrets.n);
    if (!p->fallback || !p->key) {
        fprintf(stderr, "%s: out of memory\n", p->exe);
        rc = MR_ENOMEM;
    } else if (p->app->init && (rc = p->app->init(c))) {
        fprintf(stderr, "%s: initialization failed: %s\n", p->exe, mr_strerror(rc));
    } else {
        return MR_OK;
    }
    mr_token_key_free(p->key);
    mr_lru_free(p->fallback);
    mr_upstream_global_cleanup();
    return rc;
}

static void process_close(struct mr_process *p)
{
    mr_token_key_free(p->key);
    mr_lru_free(p->fallback);
    mr_upstream_global_cleanup();
}

/* A CGI program that cannot serve still answers, in the project's error
 * shape; what went wrong is on stderr (the web server's error log), not in
 * the answer. */
static int cgi_fail(const char *exe)
{
    printf("Status: 500 Internal Server Error\r\n"
           "Content-Type: application/json\r\n"
           "Cache-Control: no-store\r\n\r\n"
           "{\"error\":{\"code\":\"internal\",\"message\":\"%s cannot start: "
           "see the web server's error log\"}}\n", exe);
    return 1;
}

int mr_server_main(const struct mr_app *app, int argc, char **argv)
{
    struct mr_process proc;
    struct mr_conf *conf = NULL;
    struct mr_buf errors;
    const char *path, *listen_at = NULL;
    struct worker *workers;
    struct sigaction sa;
    sigset_t stop_set;
    bool check_only = false, cgi;
    long nthreads = 0;
    int listen_fd = 0, sig = 0, rc;

    memset(&proc, 0, sizeof(proc));
    proc.app = app;
    snprintf(proc.exe, sizeof(proc.exe), "mediarelay-%s", app->name);

    /* A CGI program's arguments are the web server's (an ISINDEX query's
     * words), not options: its configuration comes from the environment. */
    cgi = mr_cgi_started();
    if (cgi)
        argc = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(proc.exe, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("%s %s\n", proc.exe, PACKAGE_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--check")) {
            check_only = true;
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen_at = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!mr_str_to_long(mr_str_c(argv[++i]), 1, 1024, &nthreads)) {
                fprintf(stderr, "%s: --threads takes a number from 1 to 1024, not \"%s\"\n",
                        proc.exe, argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            i++;
        } else if (strncmp(argv[i], "--config=", 9)) {
            fprintf(stderr, "%s: unknown argument \"%s\"\n", proc.exe, argv[i]);
            usage(proc.exe, stderr);
            return 2;
        }
    }

    mr_log_setup(proc.exe, "info", "stderr");
    path = mr_conf_path(argc, argv);
    mr_buf_init(&errors, 64 << 10);
    rc = mr_conf_load(path, &conf, &errors);
    if (rc) {
        fprintf(stderr, "%s: refusing to start: the configuration %s has errors:\n%s",
                proc.exe, path, errors.p ? errors.p : "");
        mr_buf_free(&errors);
        return cgi ? cgi_fail(proc.exe) : 1;
    }
    mr_buf_free(&errors);
    if (check_only) {
        printf("%s: %s is valid\n", proc.exe, path);
        mr_conf_free(conf);
        return 0;
    }
    proc.conf = conf;
    mr_log_setup(proc.exe, conf->log.level, conf->log.target);
    if (cgi) {
        signal(SIGPIPE, SIG_IGN);
        if (process_open(&proc)) {
            rc = cgi_fail(proc.exe);
        } else {
            rc = serve_cgi(&proc) ? cgi_fail(proc.exe) : 0;
            process_close(&proc);
        }
        fflush(stdout);
        mr_conf_free(conf);
        return rc;
    }

    /* Signals: TERM/INT/HUP for the main thread's sigwait only; PIPE
     * ignored (a client that left is an error return, not a death). */
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);

    if (FCGX_Init()) {
        fprintf(stderr, "%s: FCGX_Init failed\n", proc.exe);
        goto fail;
    }
    if (listen_at) {
        char why[256];
        listen_fd = open_listener(listen_at, why, sizeof(why));
        if (listen_fd < 0) {
            fprintf(stderr, "%s: cannot listen on %s: %s\n", proc.exe, listen_at, why);
            goto fail;
        }
    } else if (FCGX_IsCGI()) {
        fprintf(stderr, "%s: not started by a web server: run it under spawn-fcgi or "
                "mod_fcgid (FastCGI), give --listen SOCKET, or have the web server run it "
                "as a CGI program (it sets GATEWAY_INTERFACE)\n", proc.exe);
        goto fail;
    }
    /* After FCGX_Init, which installs handlers of its own. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_wake;   /* no SA_RESTART: accept() must return */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

    /* Many threads, little allocation each (arenas are reused across
     * requests): a few malloc arenas keep the resident size flat instead
     * of one heap per thread. */
    mallopt(M_ARENA_MAX, 4);

    if (process_open(&proc))
        goto fail;

    if (!nthreads)
        nthreads = threads_for(conf, app->name);
    workers = calloc((size_t)nthreads, sizeof(*workers));
    if (!workers) {
        process_close(&proc);
        goto fail;
    }
    for (long i = 0; i < nthreads; i++) {
        pthread_attr_t attr;
        workers[i].index = (int)i;
        workers[i].listen_fd = listen_fd;
        workers[i].proc = &proc;
        atomic_store(&workers[i].state, T_STARTING);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1u << 20);
        if (pthread_create(&workers[i].tid, &attr, worker_main, &workers[i])) {
            fprintf(stderr, "%s: cannot start thread %ld: %s\n", proc.exe, i, strerror(errno));
            return 1;
        }
        pthread_attr_destroy(&attr);
    }
    mr_info("serving with %ld threads (config %s, redis %s)", nthreads, path,
            conf->redis[0] ? conf->redis : "none");
    if (conf->channels_m3u[0])
        mr_info("channels_m3u %s: %zu channels imported%s", conf->channels_m3u,
                conf->channels_imported, conf->channels_skipped ? ", some entries skipped "
                "(not an http(s) URL, or spaces or control bytes in it)" : "");
    if (conf->channels_skipped)
        mr_warn("channels_m3u: %zu entries skipped", conf->channels_skipped);

    do {
        if (sigwait(&stop_set, &sig))
            sig = SIGTERM;
    } while (sig == SIGHUP);   /* reload is a restart: nothing to do here */

    /* Drain: stop accepting, let requests in flight finish.  A socket of
     * our own (--listen) is shut: connections wait in no backlog, and a
     * front with several instances sees a refused connect and goes to
     * another one at once.  One from spawn-fcgi or mod_fcgid is left
     * alone (see the top of this file). */
    atomic_store(&stopping, true);
    FCGX_ShutdownPending();
    if (listen_at)
        shutdown(listen_fd, SHUT_RDWR);
    mr_info("%s received: finishing requests in flight (at most %lds)",
            sig == SIGINT ? "SIGINT" : "SIGTERM", conf->server.drain_timeout_s);
    {
        long long start = mr_clock_mono_us();
        long alive, busy;
        for (;;) {
            alive = busy = 0;
            for (long i = 0; i < nthreads; i++) {
                int st = atomic_load(&workers[i].state);
                if (st == T_DONE)
                    continue;
                alive++;
                if (st == T_ACCEPTING || st == T_STARTING)
                    pthread_kill(workers[i].tid, SIGUSR1);
                else
                    busy++;
            }
            if (!alive || elapsed_ms(start) >= conf->server.drain_timeout_s * 1000.0)
                break;
            usleep(20000);
        }
        if (alive) {
            /* Threads still in a request (or, oddly, still in accept)
             * cannot be joined, and exit() would run the libraries' atexit
             * cleanups under them: the process just ends. */
            if (busy)
                mr_warn("drain timeout: exiting with %ld requests still in flight", busy);
            else
                mr_warn("drain timeout: %ld threads did not leave accept()", alive);
            fflush(stderr);
            _exit(0);
        }
        mr_info("drained, exiting");
    }
    /* Every thread is done: join them and free what main holds, so that a
     * normal exit (atexit handlers, LeakSanitizer's check in an ASan build)
     * sees only what is really lost. */
    for (long i = 0; i < nthreads; i++)
        pthread_join(workers[i].tid, NULL);
    free(workers);
    process_close(&proc);
    mr_conf_free(conf);
    return 0;

fail:   /* before any thread runs: free what main holds (LeakSanitizer) */
    mr_conf_free(conf);
    return 1;
}
