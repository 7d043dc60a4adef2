/* response.c - CGI-style response output with CORS and JSON errors. */
#include "http/response.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "core/config.h"
#include "core/error.h"
#include "core/json.h"
#include "core/str.h"
#include "http/mimetype.h"
#include "http/request.h"

/* What a player may read from a cross-origin answer. */
#define CORS_EXPOSE "Content-Range, Content-Length, Accept-Ranges, Content-Type, " \
                    "ETag, Last-Modified, Content-Disposition"
/* What a player may send: Range and the conditionals, plus what the API uses. */
#define CORS_ALLOW_HEADERS "Range, If-Range, If-None-Match, If-Modified-Since, " \
                           "Authorization, Content-Type"

void mr_resp_init(struct mr_response *r, struct mr_arena *a, const struct mr_out *out,
                  bool head_only)
{
    memset(r, 0, sizeof(*r));
    r->arena = a;
    r->out = out;
    r->status = 200;
    r->head_only = head_only;
}

void mr_resp_status(struct mr_response *r, int status)
{
    r->status = status;
}

int mr_resp_header(struct mr_response *r, const char *name, const char *value)
{
    char *n, *v;

    if (r->headers_sent)
        return MR_EINTERNAL;
    if (!mr_http_token(name, strlen(name)) || mr_str_has_ctl_but_tab(value, strlen(value)))
        return MR_EINVAL;
    if (r->nheaders == MR_RESP_MAX_HEADERS)
        return MR_ETOOBIG;
    n = mr_arena_strdup(r->arena, name);
    v = mr_arena_strdup(r->arena, value);
    if (!n || !v)
        return MR_ENOMEM;
    r->headers[r->nheaders].name = n;
    r->headers[r->nheaders].value = v;
    r->nheaders++;
    return MR_OK;
}

int mr_resp_headerf(struct mr_response *r, const char *name, const char *fmt, ...)
{
    va_list ap;
    char *v;

    va_start(ap, fmt);
    v = mr_arena_vprintf(r->arena, fmt, ap);
    va_end(ap);
    if (!v)
        return MR_ENOMEM;
    return mr_resp_header(r, name, v);
}

const char *mr_resp_get_header(const struct mr_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strcasecmp(r->headers[i].name, name))
            return r->headers[i].value;
    return NULL;
}

int mr_resp_set_header(struct mr_response *r, const char *name, const char *value)
{
    if (r->headers_sent)
        return MR_EINTERNAL;
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strcasecmp(r->headers[i].name, name)) {
            char *v;
            if (mr_str_has_ctl_but_tab(value, strlen(value)))
                return MR_EINVAL;
            if (!(v = mr_arena_strdup(r->arena, value)))
                return MR_ENOMEM;
            r->headers[i].value = v;
            return MR_OK;
        }
    return mr_resp_header(r, name, value);
}

static int out_write(struct mr_response *r, const void *p, size_t n)
{
    if (r->failed)
        return MR_ECLIENT;
    if (n && r->out->write(r->out->arg, p, n) < 0) {
        r->failed = true;
        return MR_ECLIENT;
    }
    return MR_OK;
}

int mr_resp_send_headers(struct mr_response *r)
{
    char line[MR_HEADER_MAX_LINE];
    const char *reason;
    int n, rc;

    if (r->headers_sent)
        return MR_OK;
    r->headers_sent = true;
    reason = mr_http_reason(r->status);
    /* snprintf, not FCGX_FPrintF: libfcgi's printf mishandles %zu. */
    n = snprintf(line, sizeof(line), "Status: %d%s%s\r\n", r->status,
                 *reason ? " " : "", reason);
    rc = out_write(r, line, (size_t)n);
    for (size_t i = 0; !rc && i < r->nheaders; i++) {
        n = snprintf(line, sizeof(line), "%s: %s\r\n", r->headers[i].name,
                     r->headers[i].value);
        if (n < 0 || (size_t)n >= sizeof(line))
            continue;   /* a header longer than a line is dropped, not cut */
        rc = out_write(r, line, (size_t)n);
    }
    if (!rc)
        rc = out_write(r, "\r\n", 2);
    return rc;
}

int mr_resp_write(struct mr_response *r, const void *p, size_t n)
{
    int rc = mr_resp_send_headers(r);
    if (rc)
        return rc;
    if (r->head_only)
        return MR_OK;
    rc = out_write(r, p, n);
    if (!rc)
        r->bytes_out += n;
    return rc;
}

bool mr_resp_can_move(const struct mr_response *r)
{
    return r->out->move && !r->head_only;
}

int mr_resp_move(struct mr_response *r, int fd, size_t n, size_t *moved)
{
    int rc;

    *moved = 0;
    if (!mr_resp_can_move(r))
        return MR_EINTERNAL;
    if ((rc = mr_resp_send_headers(r)))
        return rc;
    if (r->failed)
        return MR_ECLIENT;
    rc = r->out->move(r->out->arg, fd, n, moved);
    if (rc == MR_ECLIENT)
        r->failed = true;
    r->bytes_out += *moved;
    return rc;
}

int mr_resp_flush(struct mr_response *r)
{
    if (r->failed)
        return MR_ECLIENT;
    if (r->out->flush && r->out->flush(r->out->arg) < 0) {
        r->failed = true;
        return MR_ECLIENT;
    }
    return MR_OK;
}

bool mr_resp_client_gone(struct mr_response *r)
{
    if (!r->failed && r->out->closed && r->out->closed(r->out->arg))
        r->failed = true;
    return r->failed;
}

int mr_resp_finish(struct mr_response *r)
{
    int rc = mr_resp_send_headers(r);
    if (rc)
        return rc;
    return mr_resp_flush(r);
}

int mr_resp_foreign(struct mr_response *r)
{
    int rc;

    if ((rc = mr_resp_set_header(r, "X-Content-Type-Options", "nosniff")) ||
        (rc = mr_resp_set_header(r, "Content-Security-Policy", "sandbox")))
        return rc;
    return MR_OK;
}

int mr_resp_relayed(struct mr_response *r, const char *upstream_type)
{
    int rc;

    if (r->status != 304 &&
        (rc = mr_resp_set_header(r, "Content-Type", mr_mimetype_relayed(r->arena, upstream_type))))
        return rc;
    return mr_resp_foreign(r);
}

int mr_resp_json(struct mr_response *r, int status, struct json_object *obj)
{
    const char *body;
    size_t len;
    int rc;

    if (r->headers_sent)
        return MR_EINTERNAL;
    body = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN |
                                             JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (!body)
        return MR_ENOMEM;
    mr_resp_status(r, status);
    /* nosniff: an error message may quote an upstream's or a client's
     * bytes, and no browser may read the answer as anything but JSON. */
    if ((rc = mr_resp_set_header(r, "Content-Type", "application/json")) ||
        (rc = mr_resp_set_header(r, "X-Content-Type-Options", "nosniff")) ||
        (rc = mr_resp_set_header(r, "Cache-Control", "no-store")) ||
        (rc = mr_resp_headerf(r, "Content-Length", "%zu", len + 1)))
        return rc;
    if ((rc = mr_resp_write(r, body, len)))
        return rc;
    return mr_resp_write(r, "\n", 1);
}

int mr_resp_error_status(struct mr_response *r, int status, const char *code,
                         const char *message)
{
    struct json_object *root, *err;
    int rc;

    if (r->headers_sent)
        return MR_EINTERNAL;
    /* Headers a handler set for a success answer do not belong on an error,
     * except CORS, Allow and a 416's Content-Range. */
    {
        size_t keep = 0;
        for (size_t i = 0; i < r->nheaders; i++)
            if (!strncasecmp(r->headers[i].name, "Access-Control-", 15) ||
                !strcasecmp(r->headers[i].name, "Vary") ||
                !strcasecmp(r->headers[i].name, "Allow") ||
                !strcasecmp(r->headers[i].name, "WWW-Authenticate") ||
                ((status == 429 || status == 503) &&
                 !strcasecmp(r->headers[i].name, "Retry-After")) ||
                (status == 416 && !strcasecmp(r->headers[i].name, "Content-Range")))
                r->headers[keep++] = r->headers[i];
        r->nheaders = keep;
    }
    root = json_object_new_object();
    if (mr_json_own(r->arena, root))
        return MR_ENOMEM;
    err = json_object_new_object();
    if (!err)
        return MR_ENOMEM;
    json_object_object_add(root, "error", err);
    json_object_object_add(err, "code", json_object_new_string(code));
    json_object_object_add(err, "message", json_object_new_string(message));
    rc = mr_resp_json(r, status, root);
    return rc;
}

int mr_resp_error(struct mr_response *r, int err, const char *fmt, ...)
{
    char msg[1024];

    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    } else {
        snprintf(msg, sizeof(msg), "%s", mr_strerror(err));
    }
    if ((err == MR_ELIMIT || err == MR_EOVERLOADED) && !r->headers_sent &&
        !mr_resp_get_header(r, "Retry-After"))
        mr_resp_headerf(r, "Retry-After", "%d", MR_RETRY_AFTER_S);
    return mr_resp_error_status(r, mr_err_status(err), mr_err_code(err), msg);
}

/* ---- CORS ---------------------------------------------------------------- */

int mr_resp_cors(struct mr_response *r, const struct mr_conf *conf,
                 const struct mr_request *req)
{
    const struct mr_strlist *list = &conf->cors.allow_origin;
    const char *origin = mr_request_header(req, "origin");
    const char *allow = NULL;
    bool vary = false;
    int rc;

    for (size_t i = 0; i < list->n; i++) {
        if (!strcmp(list->v[i], "*") && !conf->cors.allow_credentials) {
            allow = "*";
            break;
        }
        vary = true;
        if (origin && !strcmp(list->v[i], origin)) {
            allow = origin;
            break;
        }
    }
    if (vary && (rc = mr_resp_header(r, "Vary", "Origin")))
        return rc;
    if (!allow)
        return MR_OK;
    if ((rc = mr_resp_header(r, "Access-Control-Allow-Origin", allow)) ||
        (rc = mr_resp_header(r, "Access-Control-Expose-Headers", CORS_EXPOSE)))
        return rc;
    if (conf->cors.allow_credentials)
        return mr_resp_header(r, "Access-Control-Allow-Credentials", "true");
    return MR_OK;
}

/* A requested header list is echoed only when it is a list of tokens. */
static bool header_list_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 512)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(c == ',' || c == ' ' || c == '-' || c == '_' || c == '.' ||
              (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

int mr_resp_preflight(struct mr_response *r, const struct mr_conf *conf,
                      const struct mr_request *req, const char *methods)
{
    const char *want = mr_request_header(req, "access-control-request-headers");
    int rc;

    (void)conf;
    mr_resp_status(r, 204);
    if ((rc = mr_resp_header(r, "Access-Control-Allow-Methods", methods)) ||
        (rc = mr_resp_header(r, "Allow", methods)))
        return rc;
    if (want && header_list_ok(want))
        rc = mr_resp_headerf(r, "Access-Control-Allow-Headers", "%s, %s",
                             CORS_ALLOW_HEADERS, want);
    else
        rc = mr_resp_header(r, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    if (rc)
        return rc;
    if ((rc = mr_resp_headerf(r, "Access-Control-Max-Age", "%ld", conf->cors.max_age_s)))
        return rc;
    return mr_resp_finish(r);
}
