/* url.c - resolving and normalizing URLs through curl's URL API. */
#include "net/url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core/error.h"
#include "core/limits.h"

/* CURLU_PATH_AS_IS is not used: dot segments are removed as RFC 3986 says.
 * CURLU_ALLOW_SPACE: playlists in the wild have spaces in URIs.  curl keeps
 * them in an absolute URL but encodes them in a relative reference (as "+"
 * in a query), so spaces are encoded as %20 here first, the same way in
 * both cases, and a "+" in a query never appears from nowhere. */
#define PARSE_FLAGS (CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE)

size_t mr_url_scheme_len(const char *s)
{
    size_t i = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (i = 1; s[i]; i++) {
        char c = s[i];
        if (c == ':')
            return i;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return 0;
    }
    return 0;
}

bool mr_url_is_http(const char *url)
{
    size_t n = mr_url_scheme_len(url);
    return (n == 4 && !strncasecmp(url, "http", 4)) ||
           (n == 5 && !strncasecmp(url, "https", 5));
}

void mr_url_strip_fragment(char *url)
{
    char *hash = strchr(url, '#');
    if (hash)
        *hash = '\0';
}

/* Spaces as %20, into the arena; s itself when it has none. */
static const char *encode_spaces(struct mr_arena *a, const char *s)
{
    size_t n = 0, len = strlen(s);
    char *out, *o;

    for (const char *p = s; *p; p++)
        n += *p == ' ';
    if (!n)
        return s;
    out = mr_arena_alloc(a, len + 2 * n + 1);
    if (!out)
        return NULL;
    for (o = out; *s; s++) {
        if (*s == ' ') {
            memcpy(o, "%20", 3);
            o += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

/* curl keeps the host's case; hosts are case-insensitive, and one spelling
 * makes cache keys and allow-list checks simpler. */
static void lower_host(CURLU *h)
{
    char *host = NULL;
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
        bool upper = false;
        for (char *c = host; *c; c++)
            if (*c >= 'A' && *c <= 'Z') {
                *c = (char)(*c - 'A' + 'a');
                upper = true;
            }
        if (upper)
            curl_url_set(h, CURLUPART_HOST, host, 0);
    }
    curl_free(host);
}

static int get_url(struct mr_arena *a, CURLU *h, char **out)
{
    char *s = NULL;
    lower_host(h);
    if (curl_url_get(h, CURLUPART_URL, &s, 0) != CURLUE_OK || !s)
        return MR_EINVAL;
    *out = mr_arena_strdup(a, s);
    curl_free(s);
    return *out ? MR_OK : MR_ENOMEM;
}

bool mr_url_has_ctl(struct mr_str s)
{
    return mr_str_has_ctl(s.p, s.len);
}

static bool has_ctl(const char *s)
{
    return mr_str_has_ctl(s, strlen(s));
}

int mr_url_normalize(struct mr_arena *a, const char *url, char **out)
{
    CURLU *h;
    int rc;

    if (strlen(url) > MR_URL_MAX || has_ctl(url) || !mr_url_is_http(url))
        return MR_EINVAL;
    if (!(url = encode_spaces(a, url)))
        return MR_ENOMEM;
    h = curl_url();
    if (!h)
        return MR_ENOMEM;
    rc = curl_url_set(h, CURLUPART_URL, url, PARSE_FLAGS) == CURLUE_OK
         ? get_url(a, h, out) : MR_EINVAL;
    curl_url_cleanup(h);
    return rc;
}

/* Most references in a playlist are plain relative names ("seg-1.ts?t=x"):
 * RFC 3986's merge is then the base's directory plus the reference, with no
 * dot segments to remove.  Done here without parsing, as curl would give
 * it; anything less plain goes to curl.  The base's part is found once per
 * base (mr_url_base_init), so a playlist pays only for checking its names. */

void mr_url_base_init(struct mr_url_base *b, const char *base)
{
    size_t slen, auth, end, len = strlen(base);
    const char *p;

    b->url = base;
    b->dir = 0;
    b->slash = false;
    /* What mr_url_resolve refuses before it gets to names. */
    if (len > MR_URL_MAX || has_ctl(base))
        return;
    /* The base: scheme "://" authority [path] with a lowercase authority
     * (curl lowercases hosts) and no dot segments in its path. */
    slen = mr_url_scheme_len(base);
    if (!slen || strncmp(base + slen, "://", 3))
        return;
    auth = slen + 3;
    end = auth + strcspn(base + auth, "/?#");
    for (size_t i = auth; i < end; i++)
        if ((base[i] >= 'A' && base[i] <= 'Z') || base[i] == '@' || base[i] == '%')
            return;
    for (size_t i = 0; i < slen; i++)
        if (base[i] >= 'A' && base[i] <= 'Z')
            return;
    p = base + end;
    if (*p == '/') {
        size_t plen = strcspn(p, "?#"), dir = end;
        if (memmem(p, plen, "/.", 2) || memchr(p, '%', plen) || memchr(p, ' ', plen))
            return;
        for (size_t i = 0; i < plen; i++)
            if (p[i] == '/')
                dir = end + i + 1;
        b->dir = dir;
    } else {
        b->dir = end;
        b->slash = true;
    }
}

static bool scheme_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '-' || c == '.';
}

/* Whether mr_url_resolve would take its fast path for ref: not too long, no
 * control bytes, no scheme, not empty, not starting with '/', '?', '#' or
 * '.', no space, backslash or '%', no "/." anywhere, and the path not
 * ending in '.'.  (ref need not be NUL-terminated.) */
static bool plain_name(const char *ref, size_t n)
{
    const char *end = ref + n, *q;
    size_t i;

    if (!n || n > MR_URL_MAX || ref[0] == '/' || ref[0] == '?' || ref[0] == '#' ||
        ref[0] == '.' || mr_str_has_ctl(ref, n) || memchr(ref, ' ', n) ||
        memchr(ref, '\\', n) || memchr(ref, '%', n))
        return false;
    if ((ref[0] >= 'a' && ref[0] <= 'z') || (ref[0] >= 'A' && ref[0] <= 'Z')) {
        for (i = 1; i < n && scheme_char(ref[i]); i++)
            ;
        if (i < n && ref[i] == ':')
            return false;   /* an absolute reference */
    }
    for (const char *s = memchr(ref, '/', n); s; s = memchr(s + 1, '/', (size_t)(end - s - 1)))
        if (s + 1 < end && s[1] == '.')
            return false;
    if ((q = memchr(ref, '?', n)))
        end = q;
    if ((q = memchr(ref, '#', (size_t)(end - ref))))
        end = q;
    return end[-1] != '.';
}

bool mr_url_is_name(const struct mr_url_base *b, struct mr_str ref)
{
    return b->dir && plain_name(ref.p, ref.len);
}

/* The fast path of mr_url_resolve; true when it answered. */
static bool fast_resolve(struct mr_arena *a, const char *base, const char *ref, char **out)
{
    struct mr_url_base b;
    size_t n = strlen(ref);
    char *o;

    mr_url_base_init(&b, base);
    if (!mr_url_is_name(&b, (struct mr_str){ ref, n }))
        return false;
    o = mr_arena_alloc(a, b.dir + b.slash + n + 1);
    if (o) {
        memcpy(o, base, b.dir);
        if (b.slash)
            o[b.dir] = '/';
        memcpy(o + b.dir + b.slash, ref, n + 1);
    }
    *out = o;
    return true;
}

int mr_url_resolve(struct mr_arena *a, const char *base, const char *ref, char **out)
{
    size_t slen;
    CURLU *h;
    int rc = MR_EINVAL;

    if (strlen(base) > MR_URL_MAX || strlen(ref) > MR_URL_MAX || has_ctl(ref) ||
        has_ctl(base) || !mr_url_scheme_len(base))
        return MR_EINVAL;

    /* An absolute reference stands alone (RFC 3986 5.2.2: "if R.scheme is
     * defined").  curl only parses schemes that have an authority, so other
     * absolute references ("data:", "skd://", "g:h") are returned as they
     * are; http(s) ones are normalized. */
    slen = mr_url_scheme_len(ref);
    if (slen) {
        if (mr_url_is_http(ref) && !strncmp(ref + slen, "://", 3))
            return mr_url_normalize(a, ref, out);
        *out = mr_arena_strdup(a, ref);
        return *out ? MR_OK : MR_ENOMEM;
    }

    /* An empty reference is the base; "#frag" is the base with that
     * fragment (curl would drop the base's last segment). */
    if (ref[0] == '\0' || ref[0] == '#') {
        size_t n = strcspn(base, "#");
        *out = mr_arena_printf(a, "%.*s%s", (int)n, base, ref);
        return *out ? MR_OK : MR_ENOMEM;
    }

    if (fast_resolve(a, base, ref, out))
        return *out ? MR_OK : MR_ENOMEM;
    if (!(ref = encode_spaces(a, ref)) || !(base = encode_spaces(a, base)))
        return MR_ENOMEM;
    h = curl_url();
    if (!h)
        return MR_ENOMEM;
    if (curl_url_set(h, CURLUPART_URL, base, PARSE_FLAGS) == CURLUE_OK &&
        curl_url_set(h, CURLUPART_URL, ref, PARSE_FLAGS) == CURLUE_OK)
        rc = get_url(a, h, out);
    curl_url_cleanup(h);
    return rc;
}

int mr_url_parts(struct mr_arena *a, const char *url, struct mr_url_parts *out)
{
    CURLU *h;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int rc = MR_EINVAL;

    memset(out, 0, sizeof(*out));
    if (!mr_url_is_http(url) || has_ctl(url) || strlen(url) > MR_URL_MAX)
        return MR_EINVAL;
    h = curl_url();
    if (!h)
        return MR_ENOMEM;
    if (curl_url_set(h, CURLUPART_URL, url, PARSE_FLAGS) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto done;
    curl_url_get(h, CURLUPART_QUERY, &query, 0);
    out->scheme = mr_arena_strdup(a, scheme);
    {
        size_t n = strlen(host);
        const char *hp = host;
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
            hp = host + 1;
            n -= 2;
        }
        out->host = mr_arena_strndup(a, hp, n);
        if (out->host)
            for (char *c = out->host; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
    }
    out->port = strtol(port, NULL, 10);
    out->path = query ? mr_arena_printf(a, "%s?%s", path, query) : mr_arena_strdup(a, path);
    rc = out->scheme && out->host && out->path ? MR_OK : MR_ENOMEM;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(h);
    return rc;
}

bool mr_url_host_listed(const struct mr_strlist *list, const struct mr_url_parts *u)
{
    long defport = !strcasecmp(u->scheme, "https") ? 443 : 80;

    for (size_t i = 0; list && i < list->n; i++) {
        const char *e = list->v[i], *port;
        size_t hlen;
        long want = defport;
        if (e[0] == '[') {
            const char *close = strchr(e, ']');
            if (!close)
                continue;
            e++;
            hlen = (size_t)(close - e);
            port = close[1] == ':' ? close + 2 : NULL;
        } else {
            const char *colon = strchr(e, ':');
            hlen = colon ? (size_t)(colon - e) : strlen(e);
            port = colon ? colon + 1 : NULL;
        }
        if (port && !mr_str_to_long(mr_str_c(port), 1, 65535, &want))
            continue;
        if (hlen == strlen(u->host) && !strncasecmp(e, u->host, hlen) && want == u->port)
            return true;
    }
    return false;
}
