/* error.c - names, HTTP statuses and JSON codes of the library's errors. */
#include "core/error.h"

#include <stddef.h>

static const struct {
    int status;
    const char *code;
    const char *text;
} errors[MR_ERR_COUNT] = {
    [MR_OK]             = {200, "ok", "success"},
    [MR_EINVAL]         = {400, "bad_request", "bad request"},
    [MR_EUNAUTHORIZED]  = {401, "unauthorized", "authentication required"},
    [MR_EFORBIDDEN]     = {403, "forbidden", "forbidden"},
    [MR_ETOKEN_EXPIRED] = {403, "token_expired", "token expired"},
    [MR_EBLOCKED]       = {403, "upstream_blocked", "upstream address not allowed"},
    [MR_ENOTFOUND]      = {404, "not_found", "not found"},
    [MR_EMETHOD]        = {405, "method_not_allowed", "method not allowed"},
    [MR_ETOOBIG]        = {413, "too_large", "too large"},
    [MR_ERANGE]         = {416, "range_not_satisfiable", "range not satisfiable"},
    [MR_ENOTIMPL]       = {501, "not_implemented", "not implemented"},
    [MR_EUPSTREAM]      = {502, "upstream_error", "upstream error"},
    [MR_EREFUSED]       = {502, "upstream_refused", "upstream refused the connection"},
    [MR_EUNAVAILABLE]   = {503, "unavailable", "service unavailable"},
    [MR_ETIMEOUT]       = {504, "upstream_timeout", "upstream timed out"},
    [MR_ENOMEM]         = {500, "internal", "out of memory"},
    [MR_EINTERNAL]      = {500, "internal", "internal error"},
    [MR_EBUSY]          = {503, "busy", "busy"},
    [MR_ECLIENT]        = {499, "client_closed", "client closed the connection"},
    [MR_ELIMIT]         = {429, "too_many_requests", "too many requests"},
    [MR_EOVERLOADED]    = {503, "overloaded", "too busy; try again shortly"},
};

static int valid(int err)
{
    return err >= 0 && err < MR_ERR_COUNT;
}

const char *mr_strerror(int err)
{
    return valid(err) ? errors[err].text : "unknown error";
}

int mr_err_status(int err)
{
    return valid(err) ? errors[err].status : 500;
}

const char *mr_err_code(int err)
{
    return valid(err) ? errors[err].code : "internal";
}

const char *mr_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}
