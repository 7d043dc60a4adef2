/* route.c - matching request paths against the route table. */
#include "http/route.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

static const char *const method_names[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"
};

unsigned mr_method_bit(struct mr_str method)
{
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
        if (mr_str_eq_c(method, method_names[i]))
            return 1u << i;
    return 0;
}

void mr_methods_str(unsigned mask, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
        int n;
        if (!(mask & (1u << i)))
            continue;
        n = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", method_names[i]);
        if (n < 0 || (size_t)n >= len - o)
            return;
        o += (size_t)n;
    }
}

/* Matches one pattern; fills captures.  Returns true on a match. */
static bool match(const char *pat, struct mr_str path, struct mr_route_match *m)
{
    const char *p = pat;
    size_t i = 0;

    m->n = 0;
    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            struct mr_str name;
            bool rest;
            const char *lit;
            size_t litlen, seg_end, start = i;

            if (!close || m->n == MR_ROUTE_MAX_CAPTURES)
                return false;
            name = (struct mr_str){ p + 1, (size_t)(close - p - 1) };
            rest = name.len && name.p[name.len - 1] == '*';
            if (rest)
                name.len--;
            /* The literal that follows the capture inside its segment. */
            lit = close + 1;
            litlen = strcspn(lit, "/{");
            if (rest) {
                seg_end = path.len;
            } else {
                seg_end = i;
                while (seg_end < path.len && path.p[seg_end] != '/')
                    seg_end++;
            }
            if (litlen) {
                /* The capture ends where the segment's suffix begins. */
                if (seg_end - start < litlen + 1 ||
                    memcmp(path.p + seg_end - litlen, lit, litlen))
                    return false;
                i = seg_end - litlen;
            } else {
                i = seg_end;
            }
            if (i == start)
                return false;
            m->names[m->n] = name;
            m->values[m->n] = (struct mr_str){ path.p + start, i - start };
            m->n++;
            p = close + 1;
            continue;
        }
        if (i >= path.len || path.p[i] != *p)
            return false;
        i++;
        p++;
    }
    return i == path.len;
}

int mr_route_find(const struct mr_route *table, struct mr_str method,
                  struct mr_str path, struct mr_route_match *m)
{
    unsigned bit = mr_method_bit(method);
    struct mr_route_match tmp;

    memset(m, 0, sizeof(*m));
    for (const struct mr_route *r = table; r->pattern; r++) {
        unsigned methods = r->methods;
        if (methods & MR_GET)
            methods |= MR_HEAD;
        if (!match(r->pattern, path, &tmp))
            continue;
        m->allowed |= methods;
        if (bit & methods) {
            unsigned allowed = m->allowed;
            *m = tmp;
            m->route = r;
            m->allowed = allowed;
            return MR_OK;
        }
    }
    return m->allowed ? MR_EMETHOD : MR_ENOTFOUND;
}

struct mr_str mr_route_capture(const struct mr_route_match *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (mr_str_eq_c(m->names[i], name))
            return m->values[i];
    return MR_STR_NULL;
}
