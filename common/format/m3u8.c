/* m3u8.c - rewriting HLS playlists so every URI comes back through the relay.
 *
 * One pass over the lines.  A line is copied as it is unless it holds a
 * URI: then only the URI's bytes are replaced, so attribute order, quoting,
 * line endings and everything the rewriter does not understand survive.
 * Relative URIs are resolved with the URL module (curl's URL API, with a
 * fast path for plain relative names, which are most of a VOD playlist).
 */
#include "format/m3u8.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "core/error.h"
#include "core/limits.h"
#include "core/token.h"
#include "net/url.h"

struct var {
    struct mr_str name;
    struct mr_str value;
};

struct rw {
    struct mr_arena *a;
    const struct mr_m3u8_ctx *c;
    const char *base;                /* the final URL */
    struct mr_url_base ub;           /* the same, prepared for plain names */
    bool base_http;                  /* whether plain names resolve to http(s) */
    size_t prefix_len;
    size_t scope_len;
    char *data;                      /* kind scope '\n' URL: the token data */
    /* For plain names: the tokens' data up to the name (kind scope '\n'
     * and the base's directory) hashed and encoded once, per kind; made
     * when first needed. */
    struct mr_token_prefix *name_prefix[2];
    struct mr_token_signer *signer;  /* the key and expiry of every token */
    struct mr_buf *out;
    struct var vars[MR_M3U8_MAX_VARS];
    size_t nvars;
    bool next_is_playlist;           /* after EXT-X-STREAM-INF */
    bool relayed;                    /* relay_uri wrote a relay URL (not the
                                        URI as it was) */
    long long msn;                   /* the next segment's media sequence number */
    long nplaylists;                 /* playlist URIs so far (a master's) */
    const char *why;
};

/* The tags whose URI attribute is rewritten, and what it points at. */
static const struct {
    const char *tag;
    char kind;
} uri_tags[] = {
    { "#EXT-X-MEDIA:", MR_TOKEN_PLAYLIST },
    { "#EXT-X-I-FRAME-STREAM-INF:", MR_TOKEN_PLAYLIST },
    { "#EXT-X-RENDITION-REPORT:", MR_TOKEN_PLAYLIST },
    { "#EXT-X-KEY:", MR_TOKEN_SEGMENT },
    { "#EXT-X-SESSION-KEY:", MR_TOKEN_SEGMENT },
    { "#EXT-X-MAP:", MR_TOKEN_SEGMENT },
    { "#EXT-X-PART:", MR_TOKEN_SEGMENT },
    { "#EXT-X-PRELOAD-HINT:", MR_TOKEN_SEGMENT },
    { "#EXT-X-SESSION-DATA:", MR_TOKEN_SEGMENT },
};

bool mr_m3u8_is_playlist(struct mr_str b)
{
    if (b.len >= 3 && !memcmp(b.p, "\xEF\xBB\xBF", 3)) {
        b.p += 3;
        b.len -= 3;
    }
    while (b.len) {
        struct mr_str line, rest = mr_str_cut(b, '\n', &line);
        line = mr_str_trim(line);
        if (line.len && line.p[line.len - 1] == '\r')
            line.len--;
        if (line.len) {
            if (mr_str_starts_c(line, "#EXTM3U"))
                return true;
            if (line.p[0] != '#' || mr_str_starts_c(line, "#EXT"))
                return false;
        }
        if (!rest.p)
            break;
        b = rest;
    }
    return false;
}

/* ---- variables (EXT-X-DEFINE) -------------------------------------------- */

static bool var_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

static const struct var *var_find(const struct rw *w, struct mr_str name)
{
    for (size_t i = w->nvars; i-- > 0;)
        if (mr_str_eq(w->vars[i].name, name))
            return &w->vars[i];
    return NULL;
}

/* s with every {$name} that is defined replaced by its value (arena);
 * undefined references stay as written, as the playlist is broken then and
 * a player fails on it anyway. */
static int substitute(struct rw *w, struct mr_str s, struct mr_str *out)
{
    struct mr_buf b;
    size_t i = 0;
    char *copy;
    int rc = MR_OK;

    if (!w->nvars || !memmem(s.p, s.len, "{$", 2)) {
        *out = s;
        return MR_OK;
    }
    mr_buf_init(&b, MR_M3U8_MAX_LINE);
    while (i < s.len && !rc) {
        size_t j;
        const struct var *v;
        if (s.p[i] != '{' || i + 1 >= s.len || s.p[i + 1] != '$') {
            rc = mr_buf_append(&b, s.p + i, 1);
            i++;
            continue;
        }
        for (j = i + 2; j < s.len && var_char(s.p[j]); j++)
            ;
        if (j < s.len && s.p[j] == '}' &&
            (v = var_find(w, (struct mr_str){ s.p + i + 2, j - i - 2 }))) {
            rc = mr_buf_append_str(&b, v->value);
            i = j + 1;
        } else {
            rc = mr_buf_append(&b, s.p + i, 1);
            i++;
        }
    }
    if (!rc) {
        copy = mr_arena_strndup(w->a, b.p ? b.p : "", b.len);
        rc = copy ? MR_OK : MR_ENOMEM;
        if (copy)
            *out = (struct mr_str){ copy, b.len };
    }
    mr_buf_free(&b);
    return rc;
}

/* The value of attribute `name` in an attribute list, without quotes;
 * *start and *end bound the value as written (quotes included). */
static bool attr_find(struct mr_str list, const char *name, struct mr_str *value,
                      size_t *start, size_t *end)
{
    size_t n = strlen(name), i = 0;

    while (i < list.len) {
        size_t k = i, v0, v1;
        while (k < list.len && (list.p[k] == ' ' || list.p[k] == '\t'))
            k++;
        /* NAME= at an attribute boundary */
        if (k + n < list.len && !memcmp(list.p + k, name, n) && list.p[k + n] == '=') {
            v0 = k + n + 1;
            if (v0 < list.len && list.p[v0] == '"') {
                const char *q = memchr(list.p + v0 + 1, '"', list.len - v0 - 1);
                v1 = q ? (size_t)(q - list.p) + 1 : list.len;
                *value = (struct mr_str){ list.p + v0 + 1, (q ? v1 - 1 : v1) - v0 - 1 };
            } else {
                for (v1 = v0; v1 < list.len && list.p[v1] != ','; v1++)
                    ;
                *value = (struct mr_str){ list.p + v0, v1 - v0 };
            }
            *start = v0;
            *end = v1;
            return true;
        }
        /* skip this attribute: up to the next comma outside quotes */
        {
            bool quoted = false;
            for (; k < list.len; k++) {
                if (list.p[k] == '"')
                    quoted = !quoted;
                else if (list.p[k] == ',' && !quoted)
                    break;
            }
        }
        i = k + 1;
    }
    return false;
}

static int define(struct rw *w, struct mr_str attrs, const char *final_url)
{
    struct mr_str name, value, q;
    size_t s0, s1;
    int rc;

    if (w->nvars == MR_M3U8_MAX_VARS)
        return MR_OK;   /* beyond the cap, like an undefined variable */
    if (attr_find(attrs, "NAME", &name, &s0, &s1) &&
        attr_find(attrs, "VALUE", &value, &s0, &s1)) {
        if ((rc = substitute(w, value, &value)))
            return rc;
    } else if (attr_find(attrs, "QUERYPARAM", &name, &s0, &s1)) {
        /* The value of that parameter in the playlist's own URL. */
        const char *query = strchr(final_url, '?');
        value = MR_STR_NULL;
        if (!query)
            return MR_OK;
        q = mr_str_c(query + 1);
        while (q.p && q.len) {
            struct mr_str pair, k, v;
            q = mr_str_cut(q, '&', &pair);
            v = mr_str_cut(pair, '=', &k);
            if (mr_str_eq(k, name) && v.p) {
                value = v;
                break;
            }
        }
        if (!value.p)
            return MR_OK;
    } else if (attr_find(attrs, "IMPORT", &name, &s0, &s1)) {
        const struct mr_headers *im = w->c->imports;
        value = MR_STR_NULL;
        for (size_t i = 0; im && i < im->n; i++)
            if (mr_str_eq_c(name, im->v[i].name))
                value = mr_str_c(im->v[i].value);
        if (!value.p)
            return MR_OK;
    } else {
        return MR_OK;
    }
    if (!name.len || name.len > 256 || value.len > MR_M3U8_MAX_VAR_VALUE)
        return MR_OK;
    for (size_t i = 0; i < name.len; i++)
        if (!var_char(name.p[i]))
            return MR_OK;
    w->vars[w->nvars].name = name;
    w->vars[w->nvars].value = value;
    w->nvars++;
    return MR_OK;
}

/* ---- URIs -------------------------------------------------------------- */

/* The extension of a URL's last path segment ("ts"), if short and plain. */
static struct mr_str extension(struct mr_str u)
{
    const char *url = u.p, *end = memchr(u.p, '?', u.len), *p;

    if (!end)
        end = u.p + u.len;
    if ((p = memchr(u.p, '#', (size_t)(end - u.p))))
        end = p;
    p = end;

    while (p > url && p[-1] != '/' && p[-1] != '.')
        p--;
    if (p == url || p[-1] != '.' || end - p == 0 || end - p > 8)
        return MR_STR_NULL;
    for (const char *c = p; c < end; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return MR_STR_NULL;
    return (struct mr_str){ p, (size_t)(end - p) };
}

/* Whether s begins with `lower` (lowercase ASCII), ignoring case. */
static bool starts_ci(struct mr_str s, const char *lower)
{
    size_t n = strlen(lower);

    if (s.len < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s.p[i];
        if ((c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c) != lower[i])
            return false;
    }
    return true;
}

/* The token data of a plain name (mr_url_is_name) up to the name: kind,
 * scope, '\n', the base's directory and a '/' when it has no path. */
static size_t name_prefix_len(const struct rw *w)
{
    return 2 + w->scope_len + w->ub.dir + w->ub.slash;
}

/* The token for a plain name into dst (room for its mr_token_len). */
static int sign_name(struct rw *w, struct mr_str name, char kind, char *dst)
{
    struct mr_token_prefix **tp = &w->name_prefix[kind == MR_TOKEN_PLAYLIST];
    size_t plen = name_prefix_len(w);
    int rc;

    if (!*tp) {
        /* The prefix's bytes, in w->data for a moment. */
        char *d = w->data;
        if (plen > MR_TOKEN_MAX_DATA)
            return MR_ETOOBIG;
        d[0] = kind;
        memcpy(d + 2 + w->scope_len, w->base, w->ub.dir);
        if (w->ub.slash)
            d[plen - 1] = '/';
        if ((rc = mr_token_prefix_new(w->signer, d, plen, tp)))
            return rc;
    }
    return mr_token_sign_prefixed(*tp, name.p, name.len, dst);
}

/* "\nname=value&name=value" (values percent-encoded) of the variables this
 * playlist defined, into dst if it fits in room; returns the length
 * written (0 when they do not fit: the nested playlist's IMPORT finds
 * nothing, as if they were not defined). */
static size_t carry_vars(struct rw *w, char *dst, size_t room)
{
    size_t n = 0;

    for (size_t i = 0; i < w->nvars; i++) {
        const struct var *v = &w->vars[i];
        size_t need = 1 + v->name.len + 1;
        char *esc;
        if (n + need > room)
            return 0;
        dst[n] = i ? '&' : '\n';
        memcpy(dst + n + 1, v->name.p, v->name.len);
        dst[n + 1 + v->name.len] = '=';
        n += need;
        esc = v->value.len ? curl_easy_escape(NULL, v->value.p, (int)v->value.len) : NULL;
        if (v->value.len && !esc)
            return 0;
        if (esc) {
            size_t el = strlen(esc);
            if (n + el > room) {
                curl_free(esc);
                return 0;
            }
            memcpy(dst + n, esc, el);
            n += el;
            curl_free(esc);
        }
    }
    return n;
}

/* Writes the relay URL for `uri` (as written in the playlist).  This runs
 * once per segment: for a plain name, the token is made from the prefix
 * prepared for the playlist and the name, straight into the output;
 * nothing is allocated.  Other references go through mr_url_resolve and
 * the arena. */
static int relay_uri(struct rw *w, struct mr_str uri, char kind)
{
    struct mr_str subst, ref, ext;
    const char *route = kind == MR_TOKEN_PLAYLIST ? "/api/m3u8/" : "/api/seg/", *cut;
    size_t dlen, tlen, rlen = strlen(route), need;
    bool name;
    char *o;
    int rc;

    w->relayed = false;
    if (mr_url_has_ctl(uri)) {
        w->why = "a URI holds control bytes";
        return MR_EUPSTREAM;
    }
    if ((rc = substitute(w, uri, &subst)))
        return rc;
    /* The reference without its fragment (and, like the C string it is
     * resolved as, up to a NUL a variable may have brought in). */
    ref = subst;
    if ((cut = memchr(ref.p, '#', ref.len)))
        ref.len = (size_t)(cut - ref.p);
    if (subst.p != uri.p && (cut = memchr(ref.p, '\0', ref.len)))
        ref.len = (size_t)(cut - ref.p);
    /* Keys delivered out of band and inline data are not fetched by URL. */
    if (starts_ci(ref, "skd:") || starts_ci(ref, "data:"))
        return mr_buf_append_str(w->out, uri);
    /* A nested playlist's token also carries this playlist's variables
     * (for its EXT-X-DEFINE:IMPORT): no prepared prefix for those. */
    name = w->base_http && mr_url_is_name(&w->ub, ref) &&
           !(kind == MR_TOKEN_PLAYLIST && w->nvars);
    if (name) {
        /* The URL is the base's directory and the name, and what follows
         * its last '/' is in the name. */
        dlen = name_prefix_len(w) + ref.len;
        ext = extension(ref);
    } else {
        char *r = mr_arena_strdup_str(w->a, ref), *abs, *url = w->data + 2 + w->scope_len;
        size_t n;
        if (!r)
            return MR_ENOMEM;
        rc = mr_url_resolve(w->a, w->base, r, &abs);
        if (rc || !mr_url_is_http(abs)) {
            /* Not something the relay can fetch (another scheme, garbage):
             * kept as written. */
            return mr_buf_append_str(w->out, uri);
        }
        mr_url_strip_fragment(abs);
        n = strlen(abs);
        /* w->data holds MR_TOKEN_MAX_DATA bytes and 2 + scope_len of them
         * are taken (mr_m3u8_rewrite checked that they fit): the URL must
         * fit in the rest, so that dlen never passes the cap and the room
         * left for the variables is never negative. */
        if (n > MR_TOKEN_MAX_DATA - 2 - w->scope_len)
            return MR_ETOOBIG;   /* too long for a token's data, then */
        memcpy(url, abs, n);
        w->data[0] = kind;
        dlen = 2 + w->scope_len + n;
        ext = extension((struct mr_str){ url, n });
        if (kind == MR_TOKEN_PLAYLIST && w->nvars)
            dlen += carry_vars(w, w->data + dlen, MR_TOKEN_MAX_DATA - dlen);
    }
    if (dlen > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    if (kind == MR_TOKEN_PLAYLIST)
        ext = MR_STR("m3u8");
    /* PREFIX ROUTE TOKEN [.EXT], written in place. */
    tlen = mr_token_len(dlen);
    need = w->prefix_len + rlen + tlen + (ext.len ? 1 + ext.len : 0);
    if ((rc = mr_buf_reserve(w->out, need)))
        return rc;
    o = w->out->p + w->out->len;
    memcpy(o, w->c->prefix, w->prefix_len);
    o += w->prefix_len;
    memcpy(o, route, rlen);
    o += rlen;
    rc = name ? sign_name(w, ref, kind, o)
              : mr_token_sign_to(w->signer, w->data, dlen, o);
    if (rc)
        return rc;
    o += tlen;
    if (ext.len) {
        *o++ = '.';
        memcpy(o, ext.p, ext.len);
    }
    w->out->len += need;
    w->out->p[w->out->len] = '\0';
    w->relayed = true;
    return MR_OK;
}

/* The number of an #EXT-X-MEDIA-SEQUENCE: line (digits only, at most
 * MR_M3U8_MAX_SEQUENCE: the digits that would pass it are not read). */
static long long media_sequence(struct mr_str line)
{
    long long n = 0;

    for (size_t i = 22; i < line.len && line.p[i] >= '0' && line.p[i] <= '9' &&
         n <= (MR_M3U8_MAX_SEQUENCE - 9) / 10; i++)
        n = n * 10 + (line.p[i] - '0');
    return n;
}

long long mr_m3u8_hint(const char *v, long long max)
{
    long long n = 0;

    if (!v || !*v)
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (max - (*v - '0')) / 10)
            return -1;
        n = n * 10 + (*v - '0');
    }
    return n;
}

/* The position hint after a relay URL (mr_m3u8_ctx.locate): "?v=K" for a
 * master's playlist, "?n=MSN[&v=K]" for a segment, "?v=K" for another
 * object of the K-th playlist; nothing when there is nothing to say. */
static int hint(struct rw *w, long variant, long long msn)
{
    char h[64];
    int n;

    /* Only what a request may send back (mr_m3u8_hint): a master's
     * playlists past MR_M3U8_MAX_VARIANTS are found by path alone. */
    if (variant >= MR_M3U8_MAX_VARIANTS)
        variant = -1;
    if (msn > MR_M3U8_MAX_MSN)
        msn = -1;
    if (!w->c->locate || (variant < 0 && msn < 0))
        return MR_OK;
    if (msn >= 0 && variant >= 0)
        n = snprintf(h, sizeof(h), "?n=%lld&v=%ld", msn, variant);
    else if (msn >= 0)
        n = snprintf(h, sizeof(h), "?n=%lld", msn);
    else
        n = snprintf(h, sizeof(h), "?v=%ld", variant);
    return mr_buf_append(w->out, h, (size_t)n);
}

/* The hint for a URI of this kind, on a tag line or not. */
static int uri_hint(struct rw *w, char kind, bool segment_line, bool rendition_report)
{
    if (!w->c->locate)
        return MR_OK;
    if (!w->relayed) {          /* kept as written: counted all the same */
        if (kind == MR_TOKEN_PLAYLIST && !rendition_report)
            w->nplaylists++;
        else if (segment_line)
            w->msn++;
        return MR_OK;
    }
    if (kind == MR_TOKEN_PLAYLIST)
        return rendition_report ? MR_OK : hint(w, w->nplaylists++, -1);
    return hint(w, w->c->variant, segment_line ? w->msn++ : -1);
}

/* A tag line with a URI attribute: the line with only the value replaced. */
static int tag_line(struct rw *w, struct mr_str line, size_t taglen, char kind)
{
    struct mr_str attrs = { line.p + taglen, line.len - taglen }, value;
    size_t v0, v1;
    int rc;

    if (!attr_find(attrs, "URI", &value, &v0, &v1))
        return mr_buf_append_str(w->out, line);
    /* Up to the value's first byte (after its quote, if quoted). */
    {
        size_t head = taglen + (size_t)(value.p - attrs.p);
        size_t tail = head + value.len;
        if ((rc = mr_buf_append(w->out, line.p, head)) ||
            (rc = relay_uri(w, value, kind)) ||
            (rc = uri_hint(w, kind, false, taglen == 24 &&
                           mr_str_starts_c(line, "#EXT-X-RENDITION-REPORT:"))))
            return rc;
        return mr_buf_append(w->out, line.p + tail, line.len - tail);
    }
}

/* Writes one line: `line` is its content, `eol` the line ending after it
 * ("\r\n", "\n", or less on the last line), which directly follows it in
 * the body.  Most lines are kept: they go out with their ending in one
 * append. */
static int do_line(struct rw *w, struct mr_str line, struct mr_str eol)
{
    struct mr_str t = mr_str_trim(line), all = { line.p, line.len + eol.len };
    int rc;

    if (!t.len)
        return mr_buf_append_str(w->out, all);
    if (t.p[0] == '#') {
        /* Only #EXT-X-... tags hold URIs (#EXTINF, comments: as they are). */
        if (!mr_str_starts_c(line, "#EXT-X-"))
            return mr_buf_append_str(w->out, all);
        if (mr_str_starts_c(line, "#EXT-X-STREAM-INF:")) {
            w->next_is_playlist = true;
            return mr_buf_append_str(w->out, all);
        }
        if (mr_str_starts_c(line, "#EXT-X-MEDIA-SEQUENCE:")) {
            w->msn = media_sequence(line);
            return mr_buf_append_str(w->out, all);
        }
        if (mr_str_starts_c(line, "#EXT-X-DEFINE:")) {
            rc = define(w, (struct mr_str){ line.p + 14, line.len - 14 }, w->base);
            if (rc)
                return rc;
            return mr_buf_append_str(w->out, all);
        }
        for (size_t i = 0; i < sizeof(uri_tags) / sizeof(uri_tags[0]); i++)
            if (mr_str_starts_c(line, uri_tags[i].tag)) {
                rc = tag_line(w, line, strlen(uri_tags[i].tag), uri_tags[i].kind);
                return rc ? rc : mr_buf_append_str(w->out, eol);
            }
        return mr_buf_append_str(w->out, all);
    }
    /* A URI line: spaces and tabs around it go. */
    {
        char kind = w->next_is_playlist ? MR_TOKEN_PLAYLIST : MR_TOKEN_SEGMENT;
        w->next_is_playlist = false;
        if ((rc = relay_uri(w, t, kind)) || (rc = uri_hint(w, kind, true, false)))
            return rc;
        return mr_buf_append_str(w->out, eol);
    }
}

/* A media playlist is live when it has a target duration and no
 * EXT-X-ENDLIST; the target duration's digits are read up to 100000 s. */
static void read_refresh(struct mr_str body, struct mr_manifest_refresh *r)
{
    static const char target[] = "#EXT-X-TARGETDURATION:";
    bool live = false, endlist = false;
    long target_s = 0;

    for (const char *p = body.p, *end = body.p + body.len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n >= sizeof(target) - 1 && !memcmp(p, target, sizeof(target) - 1)) {
            live = true;
            for (const char *d = p + sizeof(target) - 1; d < p + n && *d >= '0' && *d <= '9'
                 && target_s < 100000; d++)
                target_s = target_s * 10 + (*d - '0');
        } else if (n >= 14 && !memcmp(p, "#EXT-X-ENDLIST", 14)) {
            endlist = true;
        }
        p = nl ? nl + 1 : end;
    }
    r->live = live && !endlist;
    r->period_ms = target_s * 1000;
}

int mr_m3u8_rewrite(struct mr_arena *a, const struct mr_m3u8_ctx *c, struct mr_str body,
                    const char *final_url, struct mr_buf *out, const char **why)
{
    const struct mr_str whole = body;
    struct rw *w;
    size_t cap = c->max_bytes ? c->max_bytes : MR_M3U8_MAX_BYTES;
    int rc = MR_OK;

    *why = NULL;
    if (body.len > cap) {
        *why = "the playlist is larger than the limit";
        return MR_ETOOBIG;
    }
    if (!mr_m3u8_is_playlist(body)) {
        *why = "not an HLS playlist (no #EXTM3U)";
        return MR_EUPSTREAM;
    }
    w = mr_arena_calloc(a, 1, sizeof(*w));
    if (!w)
        return MR_ENOMEM;
    w->a = a;
    w->c = c;
    w->base = final_url;
    mr_url_base_init(&w->ub, final_url);
    w->base_http = mr_url_is_http(final_url);
    w->prefix_len = strlen(c->prefix);
    w->scope_len = strlen(c->scope);
    if (w->scope_len > MR_TOKEN_MAX_DATA / 2) {
        *why = "the token scope is too long";
        return MR_EINVAL;
    }
    /* A token's data: kind, scope, '\n', then the URL (and variables) in
     * what is left of MR_TOKEN_MAX_DATA. */
    w->data = mr_arena_alloc(a, MR_TOKEN_MAX_DATA);
    if (!w->data)
        return MR_ENOMEM;
    if ((rc = mr_token_signer_new(c->key, a, c->expire_at, &w->signer)))
        return rc;
    memcpy(w->data + 1, c->scope, w->scope_len);
    w->data[1 + w->scope_len] = '\n';
    w->out = out;
    /* A byte-order mark is tolerated, and not passed on (RFC 8216 forbids
     * it, and players refuse it). */
    if (body.len >= 3 && !memcmp(body.p, "\xEF\xBB\xBF", 3)) {
        body.p += 3;
        body.len -= 3;
    }
    while (body.len && !rc) {
        struct mr_str line, rest = mr_str_cut(body, '\n', &line), content = line;
        if (line.len > MR_M3U8_MAX_LINE) {
            *why = "a playlist line is longer than the limit";
            return MR_ETOOBIG;
        }
        if (content.len && content.p[content.len - 1] == '\r')
            content.len--;
        /* The line ending: what lies between the content and the rest. */
        rc = do_line(w, content, (struct mr_str){ content.p + content.len,
                                                  (rest.p ? (size_t)(rest.p - content.p)
                                                          : body.len) - content.len });
        if (!rest.p)
            break;
        body = rest;
    }
    if (rc && !*why)
        *why = w->why ? w->why : rc == MR_ETOOBIG ? "the rewritten playlist is too large"
                                                 : "the playlist cannot be rewritten";
    if (!rc && c->refresh)
        read_refresh(whole, c->refresh);
    return rc;
}

/* --- finding a URI again ---------------------------------------------------- */

char *mr_m3u8_url_path(struct mr_arena *a, const char *url)
{
    struct mr_url_parts parts;
    char *q;

    if (mr_url_parts(a, url, &parts))
        return NULL;
    if ((q = strpbrk(parts.path, "?#")))
        *q = '\0';
    return parts.path;
}

/* One URI of the playlist being searched, absolute (arena), or NULL when
 * it is not one the relay could fetch. */
static int find_abs(struct mr_arena *a, const char *base, struct mr_str uri, char **url)
{
    char *ref, *abs;

    *url = NULL;
    uri = mr_str_trim(uri);
    if (!uri.len || mr_url_has_ctl(uri))
        return MR_OK;
    if (!(ref = mr_arena_strdup_str(a, uri)))
        return MR_ENOMEM;
    if (mr_url_resolve(a, base, ref, &abs) || !mr_url_is_http(abs))
        return MR_OK;
    mr_url_strip_fragment(abs);
    *url = abs;
    return MR_OK;
}

/* Whether the reference `uri` (as written) may name a file called `base`:
 * its path part ends with it.  A cheap test before resolving. */
static bool may_name(struct mr_str uri, struct mr_str base)
{
    size_t n = 0;

    while (n < uri.len && uri.p[n] != '?' && uri.p[n] != '#')
        n++;
    return base.len && n >= base.len && !memcmp(uri.p + n - base.len, base.p, base.len);
}

int mr_m3u8_find(struct mr_arena *a, struct mr_str body, const char *final_url,
                 const struct mr_m3u8_want *want, char **url, bool *nested)
{
    long long msn = 0;
    long nplaylists = 0;
    bool next_is_playlist = false, by_path_nested = false, position_nested = false;
    char *at_position = NULL, *by_path = NULL, *u, *path;
    struct mr_str base = { NULL, 0 };
    int nmatch = 0, rc;

    *url = NULL;
    *nested = false;
    if (!mr_m3u8_is_playlist(body))
        return MR_ENOTFOUND;
    if (want->path) {
        const char *slash = strrchr(want->path, '/');
        base = mr_str_c(slash ? slash + 1 : want->path);
    }
    /* Lines are read as the rewriter reads them, so the positions agree:
     * no BOM, no CR, tags recognized at the start of the line. */
    if (body.len >= 3 && !memcmp(body.p, "\xEF\xBB\xBF", 3)) {
        body.p += 3;
        body.len -= 3;
    }
    while (body.p && body.len) {
        struct mr_str line, rest = mr_str_cut(body, '\n', &line), t, uri = { NULL, 0 };
        char kind = MR_TOKEN_SEGMENT;
        bool counted = false, segment_line = false, positional;

        body = rest;
        if (line.len && line.p[line.len - 1] == '\r')
            line.len--;
        t = mr_str_trim(line);
        if (!t.len)
            continue;
        if (t.p[0] == '#') {
            if (!mr_str_starts_c(line, "#EXT-X-"))
                continue;
            if (mr_str_starts_c(line, "#EXT-X-STREAM-INF:")) {
                next_is_playlist = true;
                continue;
            }
            if (mr_str_starts_c(line, "#EXT-X-MEDIA-SEQUENCE:")) {
                msn = media_sequence(line);
                continue;
            }
            for (size_t i = 0; i < sizeof(uri_tags) / sizeof(uri_tags[0]); i++) {
                size_t tl = strlen(uri_tags[i].tag), v0, v1;
                if (!mr_str_starts_c(line, uri_tags[i].tag))
                    continue;
                if (attr_find((struct mr_str){ line.p + tl, line.len - tl }, "URI", &uri,
                              &v0, &v1)) {
                    kind = uri_tags[i].kind;
                    counted = kind == MR_TOKEN_PLAYLIST &&
                              strcmp(uri_tags[i].tag, "#EXT-X-RENDITION-REPORT:");
                }
                break;
            }
            if (!uri.p)
                continue;
        } else {
            uri = t;
            kind = next_is_playlist ? MR_TOKEN_PLAYLIST : MR_TOKEN_SEGMENT;
            counted = next_is_playlist;
            segment_line = !next_is_playlist;
            next_is_playlist = false;
        }
        positional = !at_position &&
                     ((counted && want->variant >= 0 && nplaylists == want->variant) ||
                      (segment_line && want->msn >= 0 && msn == want->msn));
        if (counted)
            nplaylists++;
        if (segment_line)
            msn++;
        if (!positional && !may_name(uri, base))
            continue;
        if ((rc = find_abs(a, final_url, uri, &u)))
            return rc;
        if (!u)
            continue;
        if (want->path && (path = mr_m3u8_url_path(a, u)) && !strcmp(path, want->path)) {
            /* Several URIs with this path (the query picks the file, or
             * byte ranges of one file): the position decides, if there is
             * one. */
            if (!by_path) {
                by_path = u;
                by_path_nested = kind == MR_TOKEN_PLAYLIST;
            }
            nmatch++;
        }
        if (positional) {
            at_position = u;
            position_nested = kind == MR_TOKEN_PLAYLIST;
        }
    }
    if (by_path && (nmatch == 1 || !at_position)) {
        *url = by_path;
        *nested = by_path_nested;
        return MR_OK;
    }
    if (!at_position)
        return MR_ENOTFOUND;
    *url = at_position;
    *nested = position_nested;
    return MR_OK;
}

int mr_m3u8_token_data(struct mr_str data, char *kind, struct mr_str *scope,
                       struct mr_str *url, struct mr_str *vars)
{
    struct mr_str head, rest, u;

    if (data.len < 3 || (data.p[0] != MR_TOKEN_PLAYLIST && data.p[0] != MR_TOKEN_SEGMENT))
        return MR_EFORBIDDEN;
    *kind = data.p[0];
    rest = mr_str_cut((struct mr_str){ data.p + 1, data.len - 1 }, '\n', &head);
    if (!rest.p || !rest.len)
        return MR_EFORBIDDEN;
    *scope = head;
    /* A playlist's URL may be followed by "\n" and its parent's variables. */
    *vars = mr_str_cut(rest, '\n', &u);
    if (!u.len || (vars->p && *kind != MR_TOKEN_PLAYLIST))
        return MR_EFORBIDDEN;
    if (!vars->p)
        *vars = (struct mr_str){ "", 0 };
    *url = u;
    return MR_OK;
}

int mr_m3u8_parse_vars(struct mr_arena *a, struct mr_str vars, struct mr_headers *out)
{
    size_t n = vars.len ? 1 : 0;

    *out = (struct mr_headers){ NULL, 0 };
    for (size_t i = 0; i < vars.len; i++)
        n += vars.p[i] == '&';
    if (!n)
        return MR_OK;
    if (n > MR_M3U8_MAX_VARS || !(out->v = mr_arena_calloc(a, n, sizeof(*out->v))))
        return n > MR_M3U8_MAX_VARS ? MR_EINVAL : MR_ENOMEM;
    while (vars.p && vars.len) {
        struct mr_str pair, name, value;
        char *raw;
        int len = 0;
        vars = mr_str_cut(vars, '&', &pair);
        value = mr_str_cut(pair, '=', &name);
        if (!value.p || !name.len)
            return MR_EINVAL;
        raw = value.len ? curl_easy_unescape(NULL, value.p, (int)value.len, &len) : NULL;
        if (value.len && !raw)
            return MR_ENOMEM;
        out->v[out->n].name = mr_arena_strdup_str(a, name);
        out->v[out->n].value = raw ? mr_arena_strndup(a, raw, (size_t)len) : "";
        curl_free(raw);
        if (!out->v[out->n].name || !out->v[out->n].value)
            return MR_ENOMEM;
        out->n++;
    }
    return MR_OK;
}
