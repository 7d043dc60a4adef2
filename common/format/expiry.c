/* expiry.c - expiry times written into signed links. */
#include "format/expiry.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define MIN_EPOCH 978307200LL    /* 2001-01-01 */
#define MAX_EPOCH 7258118400LL   /* 2200-01-01 */

/* A decimal number of at most 12 digits, the whole of [p, end). */
static bool number(const char *p, const char *end, long long *out)
{
    long long v = 0;

    if (p == end || end - p > 12)
        return false;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

static bool epoch_ok(long long t)
{
    return t >= MIN_EPOCH && t <= MAX_EPOCH;
}

/* "YYYYMMDDTHHMMSSZ" (ISO 8601 basic, UTC) as an epoch.  (curl_getdate
 * does not read the basic format.) */
static bool amz_date(const char *v, size_t n, long long *out)
{
    long long y, mo, d, h, mi, se;
    struct tm tm;
    time_t t;

    if (n != 16 || v[8] != 'T' || v[15] != 'Z' ||
        !number(v, v + 4, &y) || !number(v + 4, v + 6, &mo) || !number(v + 6, v + 8, &d) ||
        !number(v + 9, v + 11, &h) || !number(v + 11, v + 13, &mi) ||
        !number(v + 13, v + 15, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)y - 1900;
    tm.tm_mon = (int)mo - 1;
    tm.tm_mday = (int)d;
    tm.tm_hour = (int)h;
    tm.tm_min = (int)mi;
    tm.tm_sec = (int)se;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out = (long long)t;
    return true;
}

/* Akamai's token: "st=…~exp=EPOCH~acl=…~hmac=…". */
static bool akamai_exp(const char *v, size_t n, long long *out)
{
    const char *end = v + n;
    while (v < end) {
        const char *tilde = memchr(v, '~', (size_t)(end - v));
        const char *stop = tilde ? tilde : end;
        if (stop - v > 4 && !strncmp(v, "exp=", 4))
            return number(v + 4, stop, out);
        v = tilde ? tilde + 1 : end;
    }
    return false;
}

static bool name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && !strncasecmp(p, name, n);
}

time_t mr_expiry_from_url(const char *url)
{
    const char *q = strchr(url, '?'), *end;
    long long deadline = 0, amz_at = 0, amz_for = -1, oss_at = 0, oss_for = -1, v;
    bool have = false;

    if (!q)
        return 0;
    end = q + strcspn(q, "#");
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        /* An empty value says nothing: curl_easy_unescape takes a length
         * of 0 as "up to the NUL", which would read the rest of the URL. */
        if (eq && stop - eq > 1) {
            size_t nl = (size_t)(eq - p);
            int len = 0;
            char *val = curl_easy_unescape(NULL, eq + 1, (int)(stop - eq - 1), &len);
            size_t vl = val ? (size_t)len : 0;
            if (val && vl && !memchr(val, '\0', vl)) {
                if ((name_is(p, nl, "deadline") || name_is(p, nl, "expires")) &&
                    number(val, val + vl, &v) && epoch_ok(v)) {
                    if (!have || v < deadline)
                        deadline = v;
                    have = true;
                } else if (name_is(p, nl, "x-amz-date")) {
                    amz_date(val, vl, &amz_at);
                } else if (name_is(p, nl, "x-amz-expires")) {
                    number(val, val + vl, &amz_for);
                } else if (name_is(p, nl, "x-oss-date")) {
                    amz_date(val, vl, &oss_at);
                } else if (name_is(p, nl, "x-oss-expires")) {
                    /* OSS v1 puts an epoch here, v4 seconds after x-oss-date. */
                    if (number(val, val + vl, &v)) {
                        if (epoch_ok(v)) {
                            if (!have || v < deadline)
                                deadline = v;
                            have = true;
                        } else {
                            oss_for = v;
                        }
                    }
                } else if ((name_is(p, nl, "hdnts") || name_is(p, nl, "__token__")) &&
                           akamai_exp(val, vl, &v) && epoch_ok(v)) {
                    if (!have || v < deadline)
                        deadline = v;
                    have = true;
                }
            }
            curl_free(val);
        }
        p = amp ? amp + 1 : end;
    }
    if (amz_at && amz_for >= 0 && amz_for <= 7 * 86400 && epoch_ok(amz_at + amz_for) &&
        (!have || amz_at + amz_for < deadline)) {
        deadline = amz_at + amz_for;
        have = true;
    }
    if (oss_at && oss_for >= 0 && oss_for <= 7 * 86400 && epoch_ok(oss_at + oss_for) &&
        (!have || oss_at + oss_for < deadline)) {
        deadline = oss_at + oss_for;
        have = true;
    }
    return have ? (time_t)deadline : 0;
}
