/* range.c - the HTTP Range header: what the segment cache serves, what the
 * relay forwards. */
#include "http/range.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int mr_range_parse(const char *v, long long len, struct mr_range *out)
{
    long long a, b = -1;
    char *end;

    out->from = 0;
    out->to = len >= 0 ? len - 1 : -1;
    out->partial = false;
    if (!v || strncmp(v, "bytes=", 6) || strchr(v, ','))
        return MR_OK;
    v += 6;
    v += strspn(v, " ");
    if (*v == '-') {
        long long n = strtoll(v + 1, &end, 10);
        if (end == v + 1 || *end || n < 0)
            return MR_OK;
        if (len < 0)
            return MR_OK;
        if (n == 0)
            return MR_ERANGE;
        if (len == 0)
            return MR_OK;   /* the last n bytes of nothing: all of it */
        a = n > len ? 0 : len - n;
        b = len - 1;
    } else {
        a = strtoll(v, &end, 10);
        if (end == v || *end != '-' || a < 0)
            return MR_OK;
        v = end + 1;
        if (*v) {
            b = strtoll(v, &end, 10);
            if (*end || b < a)
                return MR_OK;
        }
        if (len >= 0) {
            if (a >= len)
                return MR_ERANGE;
            if (b < 0 || b >= len)
                b = len - 1;
        } else if (b < 0 || b == LLONG_MAX) {
            /* Open-ended with no known length: all of it.  So is an end
             * at the largest number (strtoll's cap too): its end + 1 and
             * its length would pass LLONG_MAX. */
            return MR_OK;
        }
    }
    out->from = a;
    out->to = b;
    out->partial = true;
    return MR_OK;
}

bool mr_range_forwardable(const char *v)
{
    size_t n = strlen(v);
    if (n > 256 || strncmp(v, "bytes=", 6) || n == 6)
        return false;
    return strspn(v + 6, "0123456789-, ") == n - 6;
}
