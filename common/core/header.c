/* header.c - which request headers may be sent upstream. */
#include "core/header.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/limits.h"
#include "core/str.h"

const char mr_header_bad_name[] = "not a valid header name";

const char *mr_header_malformed(const char *name, const char *value)
{
    size_t nlen, vlen;

    if (!name || !value)
        return mr_header_bad_name;
    nlen = strlen(name);
    if (!mr_http_token(name, nlen))
        return mr_header_bad_name;
    vlen = strlen(value);
    if (mr_str_has_ctl_but_tab(value, vlen))
        return "a control byte in the value";
    if (nlen + 2 + vlen > MR_HEADER_MAX_LINE)
        return "longer than a header line may be";
    return NULL;
}

const char *mr_header_refused(const char *name, const char *value, bool policy)
{
    static const char *const framing[] = {
        "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
        "Proxy-Connection", "Upgrade", "TE", "Trailer", "Expect", "HTTP2-Settings",
        "Proxy-Authorization", NULL
    };
    static const char *const clients[] = {
        "Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match",
        "If-Unmodified-Since", NULL
    };
    const char *why = mr_header_malformed(name, value);

    if (why)
        return why;
    for (const char *const *f = framing; *f; f++)
        if (!strcasecmp(name, *f))
            return "the relay sets this header itself, or it is for one hop only";
    for (const char *const *c = clients; policy && *c; c++)
        if (!strcasecmp(name, *c))
            return "the relay takes this header from the player's request";
    if (!*value)
        return "an empty value";
    return NULL;
}
