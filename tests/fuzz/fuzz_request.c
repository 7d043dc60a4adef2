/* fuzz_request.c - what a request's bytes reach before a handler runs.
 *
 * The input is a list of NUL-separated "NAME=value" FastCGI params.  Then,
 * as mr_server_dispatch does for each executable's route table (the tables
 * of fcgi/NAME.c themselves, compiled in by tests/fuzz/lib.sh): CORS, the
 * route, 405's Allow and message, an OPTIONS preflight, the admin check;
 * and what the handlers take first from their captures (a token up to its
 * extension, a DASH tail's shape).  Also the query, cookies and the base
 * URL.  Checked (__builtin_trap): a route found allows the method, its
 * captures lie in the path, are not empty and hold no '/' but a {name*}'s;
 * a 405 names methods and not the one asked. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "app/auth.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "format/mpd.h"
#include "http/request.h"
#include "http/response.h"
#include "http/route.h"
#include "app/server.h"
#include "core/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const struct mr_app *mr_fuzz_app_m3u8, *mr_fuzz_app_proxy, *mr_fuzz_app_resolve,
    *mr_fuzz_app_segment;

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret"

static int sink_write(void *arg, const void *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    return 0;
}

static const struct mr_out sink = { .write = sink_write };

static struct mr_conf *conf_load(const char *json)
{
    struct mr_conf *c = NULL;
    struct mr_buf err;

    mr_buf_init(&err, 4096);
    if (mr_conf_load_string("fuzz", json, strlen(json), &c, &err))
        abort();
    mr_buf_free(&err);
    return c;
}

/* A capture as the route table promises it. */
static void check_captures(const struct mr_route_match *m, struct mr_str path)
{
    const char *pat = m->route->pattern;

    for (size_t i = 0; i < m->n; i++) {
        struct mr_str v = m->values[i];
        char star[80];
        int rest;
        if (!v.len || v.p < path.p || v.p + v.len > path.p + path.len)
            __builtin_trap();
        snprintf(star, sizeof(star), "{%.*s*}", (int)m->names[i].len, m->names[i].p);
        rest = strstr(pat, star) != NULL;
        if (!rest && memchr(v.p, '/', v.len))
            __builtin_trap();
    }
}

/* mr_server_dispatch up to the handler, for one executable. */
static void dispatch(const struct mr_app *app, const struct mr_conf *conf,
                     const struct mr_token_key *key, struct mr_arena *a,
                     struct mr_request *req)
{
    struct mr_process proc = { .app = app, .conf = conf, .key = (struct mr_token_key *)key };
    struct mr_ctx ctx = { .proc = &proc, .conf = conf, .arena = a, .req = *req };
    unsigned bit = mr_method_bit(req->method);
    char methods[80];
    int rc;

    mr_resp_init(&ctx.resp, a, &sink, mr_str_eq_c(req->method, "HEAD"));
    if (mr_resp_cors(&ctx.resp, conf, req))
        return;
    rc = mr_route_find(app->routes, req->method, req->path, &ctx.match);
    if (rc == MR_OK) {
        unsigned allowed = ctx.match.route->methods;
        if (allowed & MR_GET)
            allowed |= MR_HEAD;
        if (!(bit & allowed) || !(ctx.match.allowed & bit))
            __builtin_trap();
        check_captures(&ctx.match, req->path);
    } else if (rc == MR_EMETHOD) {
        if (!ctx.match.allowed || (ctx.match.allowed & bit))
            __builtin_trap();
    } else if (rc != MR_ENOTFOUND) {
        __builtin_trap();
    }
    if (mr_str_eq_c(req->method, "OPTIONS")) {
        if (rc != MR_ENOTFOUND) {
            mr_methods_str(ctx.match.allowed | MR_OPTIONS, methods, sizeof(methods));
            mr_resp_preflight(&ctx.resp, conf, req, methods);
        }
        goto done;
    }
    if (rc == MR_EMETHOD) {
        mr_methods_str(ctx.match.allowed | MR_OPTIONS, methods, sizeof(methods));
        if (!methods[0])
            __builtin_trap();
        mr_resp_header(&ctx.resp, "Allow", methods);
        mr_resp_error(&ctx.resp, rc, "%.*s is not allowed here; use %s",
                      (int)(req->method.len > 16 ? 16 : req->method.len), req->method.p,
                      methods);
        goto done;
    }
    if (rc) {
        mr_resp_error(&ctx.resp, rc, "no such endpoint");
        goto done;
    }
    if (ctx.match.route->flags & MR_ROUTE_ADMIN)
        mr_auth_admin(&ctx);
    {
        /* what the handlers take first from their captures */
        struct mr_str tok = mr_route_capture(&ctx.match, "token");
        struct mr_str tail = mr_route_capture(&ctx.match, "tail");
        struct mr_str id = mr_route_capture(&ctx.match, "id");
        struct mr_str ch = mr_route_capture(&ctx.match, "channel");
        struct mr_str out;
        time_t exp;
        if (tok.p) {
            const char *ext = memchr(tok.p, '.', tok.len);
            if (ext)
                tok.len = (size_t)(ext - tok.p);
            mr_token_verify(key, a, tok, 1000, &out, &exp);
        }
        if (tail.p)
            mr_mpd_stays_under(tail);
        if (id.p)
            mr_conf_media_find(conf, id);
        if (ch.p)
            mr_conf_channel_find(conf, ch);
    }
done:
    if (!ctx.resp.failed)
        mr_resp_finish(&ctx.resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "url", "sig", "exp", "t", "" };
    static struct mr_conf *conf, *star;
    static struct mr_token_key *key;
    const struct mr_app *apps[4];
    struct mr_request r;
    struct mr_arena a;
    struct mr_str v;
    char *copy, *params[130], *s;
    size_t n = 0;

    if (!conf) {
        conf = conf_load("{\"secret\": \"" SECRET "\", \"admin_token\": \"fuzz-admin-token-fuzz-admin-token\","
                         " \"cors\": {\"allow_origin\": [\"https://player.example\","
                         " \"http://127.0.0.1:8080\"], \"allow_credentials\": true}}");
        star = conf_load("{\"secret\": \"" SECRET "\", \"public_url\": "
                         "\"https://relay.example/x\"}");
        key = mr_token_key_new(SECRET, sizeof(SECRET) - 1);
        if (!key)
            abort();
    }
    apps[0] = mr_fuzz_app_m3u8;
    apps[1] = mr_fuzz_app_proxy;
    apps[2] = mr_fuzz_app_resolve;
    apps[3] = mr_fuzz_app_segment;
    copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (s = copy; s < copy + size && n < 128; s += strlen(s) + 1)
        params[n++] = s;
    params[n] = NULL;
    mr_arena_init(&a, 0);
    if (mr_request_parse(&r, &a, params) == 0) {
        char *out;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            mr_request_query(&r, &a, names[i], &out);
        if (!mr_request_cookie(&r, "session", &v))
            mr_auth_sid_ok(v);
        mr_request_base_url(&r, NULL, &a, &out);
        mr_request_base_url(&r, star, &a, &out);
        for (size_t i = 0; i < 4; i++)
            dispatch(apps[i], i & 1 ? star : conf, key, &a, &r);
    }
    mr_arena_free(&a);
    free(copy);
    return 0;
}
