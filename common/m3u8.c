/* m3u8.c - rewriting HLS playlists so every URI comes back through the relay.
 *
 * One pass over the lines.  A line is copied as it is unless it holds a
 * URI: then only the URI's bytes are replaced, so attribute order, quoting,
 * line endings and everything the rewriter does not understand survive.
 * Relative URIs are resolved with the URL module (curl's URL API, with a
 * fast path for plain relative names, which are most of a VOD playlist).
 */
#include "m3u8.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "limits.h"
#include "token.h"
#include "url.h"

struct var {
    struct mr_str name;
    struct mr_str value;
};

struct rw {
    struct mr_arena *a;
    const struct mr_m3u8_ctx *c;
    const char *base;                /* the final URL */
    struct mr_buf *out;
    struct var vars[MR_M3U8_MAX_VARS];
    size_t nvars;
    bool next_is_playlist;           /* after EXT-X-STREAM-INF */
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
static struct mr_str extension(const char *url)
{
    const char *end = url + strcspn(url, "?#"), *p = end;

    while (p > url && p[-1] != '/' && p[-1] != '.')
        p--;
    if (p == url || p[-1] != '.' || end - p == 0 || end - p > 8)
        return MR_STR_NULL;
    for (const char *c = p; c < end; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return MR_STR_NULL;
    return (struct mr_str){ p, (size_t)(end - p) };
}

/* Writes the relay URL for `uri` (as written in the playlist). */
static int relay_uri(struct rw *w, struct mr_str uri, char kind)
{
    struct mr_str subst;
    char *ref, *abs, *data, *token;
    size_t dlen, slen = strlen(w->c->scope);
    struct mr_str ext;
    int rc;

    for (size_t i = 0; i < uri.len; i++)
        if ((unsigned char)uri.p[i] < 0x20 || uri.p[i] == 0x7f) {
            w->why = "a URI holds control bytes";
            return MR_EUPSTREAM;
        }
    if ((rc = substitute(w, uri, &subst)))
        return rc;
    ref = mr_arena_strdup_str(w->a, subst);
    if (!ref)
        return MR_ENOMEM;
    mr_url_strip_fragment(ref);
    /* Keys delivered out of band and inline data are not fetched by URL. */
    if (!strncasecmp(ref, "skd:", 4) || !strncasecmp(ref, "data:", 5))
        return mr_buf_append_str(w->out, uri);
    rc = mr_url_resolve(w->a, w->base, ref, &abs);
    if (rc || !mr_url_is_http(abs)) {
        /* Not something the relay can fetch (another scheme, garbage):
         * kept as written. */
        return mr_buf_append_str(w->out, uri);
    }
    mr_url_strip_fragment(abs);
    dlen = 1 + slen + 1 + strlen(abs);
    data = mr_arena_alloc(w->a, dlen);
    if (!data)
        return MR_ENOMEM;
    data[0] = kind;
    memcpy(data + 1, w->c->scope, slen);
    data[1 + slen] = '\n';
    memcpy(data + 2 + slen, abs, strlen(abs));
    if ((rc = mr_token_sign(w->c->key, w->a, w->c->expire_at, data, dlen, &token)))
        return rc;
    /* Appends, not printf: this runs once per segment. */
    ext = kind == MR_TOKEN_PLAYLIST ? MR_STR("m3u8") : extension(abs);
    if ((rc = mr_buf_puts(w->out, w->c->prefix)) ||
        (rc = mr_buf_puts(w->out, kind == MR_TOKEN_PLAYLIST ? "/api/m3u8/" : "/api/seg/")) ||
        (rc = mr_buf_puts(w->out, token)))
        return rc;
    if (ext.len && ((rc = mr_buf_append(w->out, ".", 1)) || (rc = mr_buf_append_str(w->out, ext))))
        return rc;
    return MR_OK;
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
            (rc = relay_uri(w, value, kind)))
            return rc;
        return mr_buf_append(w->out, line.p + tail, line.len - tail);
    }
}

static int do_line(struct rw *w, struct mr_str line)
{
    struct mr_str t = mr_str_trim(line);

    if (!t.len)
        return mr_buf_append_str(w->out, line);
    if (t.p[0] == '#') {
        /* Only #EXT-X-... tags hold URIs (#EXTINF, comments: as they are). */
        if (!mr_str_starts_c(line, "#EXT-X-"))
            return mr_buf_append_str(w->out, line);
        if (mr_str_starts_c(line, "#EXT-X-STREAM-INF:")) {
            w->next_is_playlist = true;
            return mr_buf_append_str(w->out, line);
        }
        if (mr_str_starts_c(line, "#EXT-X-DEFINE:")) {
            int rc = define(w, (struct mr_str){ line.p + 14, line.len - 14 }, w->base);
            if (rc)
                return rc;
            return mr_buf_append_str(w->out, line);
        }
        for (size_t i = 0; i < sizeof(uri_tags) / sizeof(uri_tags[0]); i++)
            if (mr_str_starts_c(line, uri_tags[i].tag))
                return tag_line(w, line, strlen(uri_tags[i].tag), uri_tags[i].kind);
        return mr_buf_append_str(w->out, line);
    }
    /* A URI line: spaces and tabs around it go. */
    {
        char kind = w->next_is_playlist ? MR_TOKEN_PLAYLIST : MR_TOKEN_SEGMENT;
        w->next_is_playlist = false;
        return relay_uri(w, t, kind);
    }
}

int mr_m3u8_rewrite(struct mr_arena *a, const struct mr_m3u8_ctx *c, struct mr_str body,
                    const char *final_url, struct mr_buf *out, const char **why)
{
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
    w->out = out;
    /* A byte-order mark is tolerated, and not passed on (RFC 8216 forbids
     * it, and players refuse it). */
    if (body.len >= 3 && !memcmp(body.p, "\xEF\xBB\xBF", 3)) {
        body.p += 3;
        body.len -= 3;
    }
    while (body.len && !rc) {
        struct mr_str line, rest = mr_str_cut(body, '\n', &line), content = line;
        bool cr = content.len && content.p[content.len - 1] == '\r';
        if (line.len > MR_M3U8_MAX_LINE) {
            *why = "a playlist line is longer than the limit";
            return MR_ETOOBIG;
        }
        if (cr)
            content.len--;
        rc = do_line(w, content);
        if (!rc && cr)
            rc = mr_buf_append(out, "\r", 1);
        if (!rc && rest.p)
            rc = mr_buf_append(out, "\n", 1);
        if (!rest.p)
            break;
        body = rest;
    }
    if (rc && !*why)
        *why = w->why ? w->why : rc == MR_ETOOBIG ? "the rewritten playlist is too large"
                                                 : "the playlist cannot be rewritten";
    return rc;
}

int mr_m3u8_token_data(struct mr_str data, char *kind, struct mr_str *scope,
                       struct mr_str *url)
{
    struct mr_str head, rest;

    if (data.len < 3 || (data.p[0] != MR_TOKEN_PLAYLIST && data.p[0] != MR_TOKEN_SEGMENT))
        return MR_EFORBIDDEN;
    *kind = data.p[0];
    rest = mr_str_cut((struct mr_str){ data.p + 1, data.len - 1 }, '\n', &head);
    if (!rest.p || !rest.len)
        return MR_EFORBIDDEN;
    *scope = head;
    *url = rest;
    return MR_OK;
}
