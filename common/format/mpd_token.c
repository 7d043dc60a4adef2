/* mpd_token.c - the MPD rewriter's token data and the DASH segment route's
 * path join: no XML.
 *
 * Apart from mpd.c so that the segment route, which needs only these, does
 * not link the MPD parser and with it libxml2 (GNU ld decides --as-needed
 * before --gc-sections drops unused code, so a reference anywhere in a
 * linked object keeps the library).
 */
#include "format/mpd.h"

#include <string.h>

#include "core/error.h"
#include "core/limits.h"
#include "core/str.h"
#include "net/url.h"

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static bool scheme_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '-' || c == '.';
}

/* Whether a path segment is "." or "..", dots percent-encoded or not
 * (browsers' URL parsers take %2e for a dot). */
static bool dot_segment(const char *s, size_t n)
{
    size_t i = 0, dots = 0;

    while (i < n) {
        if (s[i] == '.') {
            i++;
        } else if (i + 2 < n && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e') {
            i += 3;
        } else {
            return false;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

/* Whether t is a relative reference that stays under any directory it is
 * resolved against, by RFC 3986 and by browsers alike: no scheme, no
 * leading '/', no empty, "." or ".." segment (but an empty last one), no
 * encoded slash, backslash or NUL, no malformed escape in the path; no
 * backslash, '#', space, control byte or %00 anywhere.  An empty t (the
 * directory itself) is one.  The segment endpoint's rule for tails, and
 * the rewriter's for references it can leave as they are. */
bool mr_mpd_stays_under(struct mr_str t)
{
    const char *p = t.p, *q;
    size_t n = t.len, path, seg = 0, i;

    /* a scheme first: most references that do not stay under are absolute */
    if (n && ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z'))) {
        for (i = 1; i < n && scheme_char(p[i]); i++)
            ;
        if (i < n && p[i] == ':')
            return false;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (mr_is_ctl(c) || c == ' ' || c == '\\' || c == '#')
            return false;
        if (c == '%' && i + 2 < n && p[i + 1] == '0' && p[i + 2] == '0')
            return false;
    }
    q = memchr(p, '?', n);
    path = q ? (size_t)(q - p) : n;
    for (i = 0; i <= path; i++) {
        if (i == path || p[i] == '/') {
            if (i == seg && i < path)
                return false;   /* a leading '/' or an empty segment */
            if (dot_segment(p + seg, i - seg))
                return false;
            seg = i + 1;
        } else if (p[i] == '%') {
            int b;
            if (i + 2 >= path || !is_hex(p[i + 1]) || !is_hex(p[i + 2]))
                return false;
            b = hex_val(p[i + 1]) * 16 + hex_val(p[i + 2]);
            if (b == '/' || b == '\\' || b == 0)
                return false;
        }
    }
    return true;
}

int mr_mpd_token_data(struct mr_str data, char *kind, struct mr_str *scope, struct mr_str *url,
                      struct mr_dir_query *query)
{
    struct mr_str head, rest, q, name;

    *query = (struct mr_dir_query){ MR_STR_NULL, MR_STR_NULL };
    if (data.len < 3 || (data.p[0] != MR_TOKEN_DIR && data.p[0] != MR_TOKEN_PLAYLIST))
        return MR_EFORBIDDEN;
    rest = mr_str_cut((struct mr_str){ data.p + 1, data.len - 1 }, '\n', &head);
    if (!rest.p || !rest.len)
        return MR_EFORBIDDEN;
    if (!mr_str_starts_c(rest, "http://") && !mr_str_starts_c(rest, "https://"))
        return MR_EFORBIDDEN;
    if (data.p[0] == MR_TOKEN_PLAYLIST && memchr(rest.p, '\n', rest.len))
        return MR_EFORBIDDEN;
    if (data.p[0] == MR_TOKEN_DIR) {
        /* DIR ['?' QUERY ['\n' NAME]] */
        name = mr_str_cut(rest, '\n', &rest);
        q = mr_str_cut(rest, '?', &rest);
        if (!rest.len || rest.p[rest.len - 1] != '/' || memchr(rest.p, '#', rest.len) ||
            (q.p && (!q.len || memchr(q.p, '#', q.len))) || (name.p && !q.p) ||
            (name.p && (!name.len || memchr(name.p, '\n', name.len))))
            return MR_EFORBIDDEN;
        *query = (struct mr_dir_query){ q, name };
    }
    *kind = data.p[0];
    *scope = head;
    *url = rest;
    return MR_OK;
}

static bool value_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '~' || c == '-';
}

/* Whether q is the query template t with each identifier ($Number$,
 * $Time%05d$, ...) replaced by 1-64 characters of [A-Za-z0-9._~-] up to the
 * literal that follows it in t ("$$" is a '$').  Linear: a value ends at
 * the first byte of the next literal, so two identifiers in a row (which
 * could split anywhere) never match. */
static bool query_matches(struct mr_str t, struct mr_str q)
{
    size_t i = 0, j = 0;

    while (i < t.len) {
        const char *close;
        size_t k;
        char stop;
        if (t.p[i] != '$' || (i + 1 < t.len && t.p[i + 1] == '$')) {
            if (j >= q.len || q.p[j] != t.p[i])
                return false;
            i += t.p[i] == '$' ? 2 : 1;
            j++;
            continue;
        }
        if (!(close = memchr(t.p + i + 1, '$', t.len - i - 1)))
            return false;
        i = (size_t)(close - t.p) + 1;
        stop = i < t.len ? t.p[i] : '\0';
        if (stop == '$' && !(i + 1 < t.len && t.p[i + 1] == '$'))
            return false;
        for (k = j; k < q.len && k - j < 64 && q.p[k] != stop && value_char(q.p[k]); k++)
            ;
        if (k == j || (k < q.len && q.p[k] != stop) || (!stop && k != q.len))
            return false;
        j = k;
    }
    return j == q.len;
}

int mr_mpd_join_tail(struct mr_arena *a, const char *prefix_url, struct mr_str tail,
                     struct mr_dir_query dq, struct mr_str client_query, char **out)
{
    struct mr_str q = MR_STR_NULL, query = dq.query;
    size_t n;

    *out = NULL;
    if (!prefix_url || !mr_url_is_http(prefix_url) || !strstr(prefix_url, "://"))
        return MR_EFORBIDDEN;
    n = strlen(prefix_url);
    if (!n || prefix_url[n - 1] != '/' || strpbrk(prefix_url, "?#") ||
        mr_url_has_ctl(mr_str_c(prefix_url)))
        return MR_EFORBIDDEN;
    if ((tail.len && !tail.p) || (query.p && mr_url_has_ctl(query)))
        return MR_EFORBIDDEN;
    /* a path: its query, if any, is the token's */
    if (memchr(tail.p ? tail.p : "", '?', tail.len) || !mr_mpd_stays_under(tail))
        return MR_EFORBIDDEN;
    /* a file's query: not that of the names beside it */
    if (dq.name.p && !mr_str_eq(tail, dq.name))
        query = MR_STR_NULL;
    if (query.p && memchr(query.p, '$', query.len)) {
        /* the player fills a template: its query, when it has that shape */
        if (!client_query.p || !query_matches(query, client_query))
            return MR_EFORBIDDEN;
        q = client_query;
    } else if (query.p) {
        q = query;
    }
    if (n + tail.len + (q.p ? 1 + q.len : 0) > MR_URL_MAX)
        return MR_ETOOBIG;
    *out = mr_arena_alloc(a, n + tail.len + (q.p ? 1 + q.len : 0) + 1);
    if (!*out)
        return MR_ENOMEM;
    memcpy(*out, prefix_url, n);
    if (tail.len)
        memcpy(*out + n, tail.p, tail.len);
    n += tail.len;
    if (q.p) {
        (*out)[n++] = '?';
        memcpy(*out + n, q.p, q.len);
        n += q.len;
    }
    (*out)[n] = '\0';
    return MR_OK;
}
