/* request.c - FastCGI params to struct mr_request. */
#include "http/request.h"

#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"

static struct mr_str param(char **params, const char *name, bool *found)
{
    size_t n = strlen(name);
    for (char **p = params; p && *p; p++)
        if (!strncmp(*p, name, n) && (*p)[n] == '=') {
            if (found)
                *found = true;
            return mr_str_c(*p + n + 1);
        }
    if (found)
        *found = false;
    return MR_STR_NULL;
}

/* HTTP_IF_NONE_MATCH -> "if-none-match" */
static char *header_name(struct mr_arena *a, const char *var, size_t n)
{
    char *s = mr_arena_strndup(a, var, n);
    if (!s)
        return NULL;
    for (char *c = s; *c; c++) {
        if (*c == '_')
            *c = '-';
        else if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    }
    return s;
}

/* nginx blanks the client's Range and conditional headers on the way to
 * a location with fastcgi_cache (it asks for whole objects to keep), so
 * contrib/nginx passes them again as MEDIARELAY_HTTP_RANGE and the like
 * (parameters, which a client cannot set): they count as the headers. */
static int restore_cache_headers(struct mr_request *r)
{
    static const char *const names[][2] = {
        { "MEDIARELAY_HTTP_RANGE", "range" },
        { "MEDIARELAY_HTTP_IF_RANGE", "if-range" },
        { "MEDIARELAY_HTTP_IF_NONE_MATCH", "if-none-match" },
        { "MEDIARELAY_HTTP_IF_MODIFIED_SINCE", "if-modified-since" },
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        bool found;
        struct mr_str v = param(r->params, names[i][0], &found);
        size_t k = 0;
        if (!found || !v.len)
            continue;
        while (k < r->nheaders && strcmp(r->headers[k].name, names[i][1]))
            k++;
        if (k == sizeof(r->headers) / sizeof(r->headers[0]))
            return MR_ETOOBIG;
        r->headers[k].name = names[i][1];
        r->headers[k].value = v.p;
        if (k == r->nheaders)
            r->nheaders++;
    }
    return MR_OK;
}

int mr_request_parse(struct mr_request *r, struct mr_arena *a, char **params)
{
    struct mr_str v, rest;
    bool found;

    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    r->params = params;
    r->method = param(params, "REQUEST_METHOD", &found);
    if (!found || !r->method.len)
        return MR_EINVAL;
    r->uri = param(params, "REQUEST_URI", &found);
    if (!found || !r->uri.len)
        r->uri = param(params, "DOCUMENT_URI", &found);
    if (!r->uri.len || r->uri.p[0] != '/')
        return MR_EINVAL;
    rest = mr_str_cut(r->uri, '?', &r->path);
    r->query = rest.p ? rest : (struct mr_str){ "", 0 };
    if (r->path.len > MR_REQ_MAX_PATH || r->query.len > MR_REQ_MAX_QUERY)
        return MR_ETOOBIG;

    r->remote_addr = param(params, "REMOTE_ADDR", NULL);
    v = param(params, "HTTPS", NULL);
    r->https = v.len && !mr_str_caseeq_c(v, "off");
    if (!r->https)
        r->https = mr_str_eq_c(param(params, "REQUEST_SCHEME", NULL), "https");
    v = param(params, "CONTENT_LENGTH", &found);
    if (found && v.len && !mr_str_to_long(v, 0, __LONG_MAX__, &r->content_length))
        return MR_EINVAL;

    for (char **p = params; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        const char *name;
        size_t skip;
        if (!eq)
            continue;
        if (!strncmp(*p, "HTTP_", 5))
            skip = 5;
        else if (!strncmp(*p, "CONTENT_TYPE=", 13) || !strncmp(*p, "CONTENT_LENGTH=", 15))
            skip = 0;
        else
            continue;
        if (r->nheaders == sizeof(r->headers) / sizeof(r->headers[0]))
            return MR_ETOOBIG;
        name = header_name(a, *p + skip, (size_t)(eq - *p) - skip);
        if (!name)
            return MR_ENOMEM;
        r->headers[r->nheaders].name = name;
        r->headers[r->nheaders].value = eq + 1;
        r->nheaders++;
    }
    return restore_cache_headers(r);
}

const char *mr_request_param(const struct mr_request *r, const char *name)
{
    bool found;
    struct mr_str v = param(r->params, name, &found);
    return found ? v.p : NULL;
}

const char *mr_request_header(const struct mr_request *r, const char *lname)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strcmp(r->headers[i].name, lname))
            return r->headers[i].value;
    return NULL;
}

int mr_request_cookie(const struct mr_request *r, const char *name, struct mr_str *out)
{
    const char *h = mr_request_header(r, "cookie");
    struct mr_str rest, pair, k;
    int count = 0;

    if (!h)
        return MR_ENOTFOUND;
    rest = mr_str_c(h);
    while (rest.p && count++ < MR_REQ_MAX_COOKIES) {
        struct mr_str val;
        rest = mr_str_cut(rest, ';', &pair);
        val = mr_str_cut(mr_str_trim(pair), '=', &k);
        if (val.p && mr_str_eq_c(mr_str_trim(k), name)) {
            val = mr_str_trim(val);
            if (val.len >= 2 && val.p[0] == '"' && val.p[val.len - 1] == '"') {
                val.p++;
                val.len -= 2;
            }
            *out = val;
            return MR_OK;
        }
    }
    return MR_ENOTFOUND;
}

int mr_request_query(const struct mr_request *r, struct mr_arena *a,
                     const char *name, char **out)
{
    struct mr_str rest = r->query, pair, k, v;
    char *kbuf = NULL;
    size_t nlen = strlen(name);

    while (rest.p && rest.len) {
        long n;
        rest = mr_str_cut(rest, '&', &pair);
        v = mr_str_cut(pair, '=', &k);
        if (k.len < nlen || k.len > 3 * nlen)
            continue;
        /* Names may be escaped too ("u%72l"); decode before comparing. */
        if (!kbuf && !(kbuf = mr_arena_alloc(a, 3 * nlen + 1)))
            return MR_ENOMEM;
        n = mr_str_unescape(k, kbuf, 3 * nlen + 1, true);
        if (n < 0 || (size_t)n != nlen || memcmp(kbuf, name, nlen))
            continue;
        *out = mr_arena_alloc(a, v.len + 1);
        if (!*out)
            return MR_ENOMEM;
        if (!v.p) {
            (*out)[0] = '\0';
            return MR_OK;
        }
        if (mr_str_unescape(v, *out, v.len + 1, true) < 0)
            return MR_EINVAL;
        return MR_OK;
    }
    return MR_ENOTFOUND;
}

int mr_request_body(struct mr_request *r, struct mr_arena *a, size_t cap,
                    struct mr_str *out)
{
    size_t want, got = 0;
    char *p;

    if (r->content_length > (long)cap)
        return MR_ETOOBIG;
    want = r->content_length >= 0 ? (size_t)r->content_length : cap;
    p = mr_arena_alloc(a, want + 1);
    if (!p)
        return MR_ENOMEM;
    while (got < want && r->read) {
        long n = r->read(r->read_arg, p + got, want - got);
        if (n < 0)
            return MR_EINVAL;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (r->content_length >= 0 && got < want)
        return MR_EINVAL;
    if (r->content_length < 0 && got == cap && r->read) {
        char extra;
        if (r->read(r->read_arg, &extra, 1) > 0)
            return MR_ETOOBIG;
    }
    p[got] = '\0';
    *out = (struct mr_str){ p, got };
    return MR_OK;
}

static bool host_ok(struct mr_str h)
{
    if (!h.len || h.len > 255)
        return false;
    for (size_t i = 0; i < h.len; i++) {
        char c = h.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
            return false;
    }
    return true;
}

int mr_request_base_url(const struct mr_request *r, const struct mr_conf *conf,
                        struct mr_arena *a, char **out)
{
    const char *xp, *xh, *h;
    struct mr_str proto, host;

    if (conf && conf->public_url && conf->public_url[0]) {
        *out = mr_arena_strdup(a, conf->public_url);
        return *out ? MR_OK : MR_ENOMEM;
    }
    proto = mr_str_c(r->https ? "https" : "http");
    host = MR_STR_NULL;
    xp = mr_request_header(r, "x-forwarded-proto");
    xh = mr_request_header(r, "x-forwarded-host");
    if (xp && xh) {
        struct mr_str p1, h1;
        mr_str_cut(mr_str_c(xp), ',', &p1);
        mr_str_cut(mr_str_c(xh), ',', &h1);
        p1 = mr_str_trim(p1);
        h1 = mr_str_trim(h1);
        if ((mr_str_caseeq_c(p1, "http") || mr_str_caseeq_c(p1, "https")) && host_ok(h1)) {
            proto = mr_str_caseeq_c(p1, "https") ? MR_STR("https") : MR_STR("http");
            host = h1;
        }
    }
    if (!host.len) {
        h = mr_request_header(r, "host");
        if (!h || !host_ok(mr_str_c(h)))
            return MR_EINVAL;
        host = mr_str_c(h);
    }
    *out = mr_arena_printf(a, "%.*s://%.*s", (int)proto.len, proto.p, (int)host.len, host.p);
    return *out ? MR_OK : MR_ENOMEM;
}
