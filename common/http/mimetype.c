/* mimetype.c - the allow-list of Content-Types a relayed body may carry.
 *
 * The value is read as RFC 9110 has it (type "/" subtype, then
 * ";"-separated name=value parameters, optional whitespace around the
 * semicolons) but stricter: type and subtype in RFC 6838's restricted
 * characters, a quoted parameter value without escapes or control bytes.
 * Whatever does not read so is not guessed at: anything after a well-formed
 * type other than parameters (a comma: browsers take the last type of a
 * comma-separated list) sends the value to the fallback, and a malformed
 * parameter drops them all.
 */
#include "http/mimetype.h"

#include <string.h>
#include <strings.h>

#include "core/str.h"

/* Top-level types whose every subtype a browser plays or downloads (but
 * see xml_suffix). */
static const char *const any_subtype[] = { "video", "audio", NULL };

static const char *const exact[] = {
    /* raster images: segments disguised as pictures, thumbnails */
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
    /* HLS playlists relayed as they are (/stream in offload mode) */
    "application/vnd.apple.mpegurl", "application/x-mpegurl",
    /* segments, init sections, keys */
    "application/mp4", "application/octet-stream",
    /* subtitles: <track> wants text/vtt; SRT comes as either of the others */
    "text/vtt", "text/plain", "application/x-subrip",
    NULL
};

#define NAME_MAX_LEN 127        /* RFC 6838: a type or subtype name */

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 6838 restricted-name-chars. */
static bool is_name_char(unsigned char c)
{
    return is_alnum(c) || (c && strchr("!#$&^_.+-", c));
}

/* RFC 9110 qdtext, without obs-text. */
static bool is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* A restricted name at p: its length (0 when there is none, or it is too
 * long). */
static size_t name_len(const char *p, const char *end)
{
    size_t n = 0;

    if (p == end || !is_alnum((unsigned char)*p))
        return 0;
    while (p + n < end && is_name_char((unsigned char)p[n]))
        n++;
    return n <= NAME_MAX_LEN ? n : 0;
}

/* "+xml" at the end: any such type is an XML document to a browser
 * (MIME Sniffing, "XML MIME type"), which may hold XHTML or SVG. */
static bool xml_suffix(const char *sub, size_t n)
{
    return n >= 4 && !strncasecmp(sub + n - 4, "+xml", 4);
}

static bool allowed(const char *type, size_t tlen, const char *sub, size_t slen)
{
    for (const char *const *t = any_subtype; *t; t++)
        if (strlen(*t) == tlen && !strncasecmp(type, *t, tlen))
            return !xml_suffix(sub, slen);
    for (const char *const *t = exact; *t; t++)
        if (strlen(*t) == tlen + 1 + slen && !strncasecmp(type, *t, tlen + 1 + slen))
            return true;
    return false;
}

/* Whether [p, end) is a run of parameters, each OWS ";" OWS name "="
 * (token / quoted-string), with nothing after the last. */
static bool params_ok(const char *p, const char *end)
{
    while (p < end) {
        size_t n;
        while (p < end && is_ows(*p))
            p++;
        if (p == end || *p != ';')
            return false;
        p++;
        while (p < end && is_ows(*p))
            p++;
        n = mr_http_token_span(p, (size_t)(end - p));
        p += n;
        if (!n || p == end || *p != '=')
            return false;
        p++;
        if (p < end && *p == '"') {
            for (p++; p < end && is_qdtext((unsigned char)*p); p++)
                ;
            if (p == end || *p != '"')
                return false;
            p++;
        } else {
            n = mr_http_token_span(p, (size_t)(end - p));
            p += n;
            if (!n)
                return false;
        }
    }
    return true;
}

const char *mr_mimetype_relayed(struct mr_arena *a, const char *upstream)
{
    struct mr_str v;
    const char *end, *sub, *rest;
    size_t tlen, slen;
    char *out;

    if (!upstream)
        return MR_MIMETYPE_FALLBACK;
    v = mr_str_trim(mr_str_c(upstream));
    end = v.p + v.len;
    if (!(tlen = name_len(v.p, end)) || v.p + tlen == end || v.p[tlen] != '/')
        return MR_MIMETYPE_FALLBACK;
    sub = v.p + tlen + 1;
    if (!(slen = name_len(sub, end)))
        return MR_MIMETYPE_FALLBACK;
    rest = sub + slen;
    while (rest < end && is_ows(*rest))
        rest++;
    if ((rest < end && *rest != ';') || !allowed(v.p, tlen, sub, slen))
        return MR_MIMETYPE_FALLBACK;
    /* As written when its parameters all read well, else the type alone. */
    if (rest < end && v.len <= MR_MIMETYPE_MAX && params_ok(rest, end))
        out = mr_arena_strndup(a, v.p, v.len);
    else
        out = mr_arena_strndup(a, v.p, tlen + 1 + slen);
    return out ? out : MR_MIMETYPE_FALLBACK;
}
