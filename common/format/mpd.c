/* mpd.c - rewriting DASH manifests so every segment comes back through the relay.
 *
 * libxml2 parses the MPD, but builds no tree: its SAX hooks count elements
 * and depth and stop the parser past the caps, and any entity declaration
 * or entity reference stops it too, before anything is expanded or loaded.
 * While it parses, the hooks record the byte ranges of the values to
 * replace (BaseURL, Location and PatchLocation text; the URL attributes;
 * xlink:href) with their decoded values, and the level (element) each
 * belongs to.  libxml2 gives an attribute's value but not where it is, so
 * the start tag it has just read (from its '<' to the parser's position)
 * is scanned again for the value's quotes.  After the parse, the effective
 * base of each level is resolved from the top down (a level's BaseURLs may
 * follow its children), and the output is the input's bytes with only
 * those ranges replaced by relay URLs, XML-escaped for where they go.
 *
 * A 1 MB MPD is mostly a run of S or SegmentURL elements, which libxml2
 * takes ~9 ms to tokenize.  So a pre-scan finds runs of such sibling
 * elements of a plain shape (no prefix, no entity or character reference,
 * printable ASCII values, no duplicate or xml* attribute) and libxml2
 * parses the document without all but the first of each run.  That first
 * one anchors the run: only when libxml2 reports an element starting at
 * its exact offset (so the run is element content, not a comment, CDATA
 * or literal) does the run count, its elements added to the element cap
 * and their URLs recorded as the first one's would be; if any anchor is
 * not reported, the whole document is parsed again without the pre-scan.
 * The runs' bytes are plain elements in element content, so libxml2 would
 * have reported exactly what the pre-scan read: the entity refusals and
 * the caps hold as if it had seen them.
 *
 * URLs are resolved with the URL module (curl's URL API).  An absolute URL
 * already in the form curl would give skips curl, and URLs that share a
 * directory share one token: a SegmentList of ten thousand absolute
 * SegmentURLs costs one HMAC.
 */
#include "format/mpd.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "core/error.h"
#include "core/limits.h"
#include "core/str.h"
#include "core/token.h"
#include "net/url.h"

#define XLINK_NS "http://www.w3.org/1999/xlink"
#define SEA_NS "urn:mpeg:dash:schema:sea:2012"
#define RESOLVE_TO_ZERO "urn:mpeg:dash:resolve-to-zero:2013"

/* No XML_PARSE_NOENT (entity substitution), DTDLOAD, DTDATTR, DTDVALID,
 * XINCLUDE or HUGE: libxml2's own limits on names, text and nesting apply,
 * and ours are enforced by the hooks below. */
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

/* The attributes (without a namespace) that hold segment-like URLs, per
 * element of the DASH namespace. */
static const struct {
    const char *elem, *attr;
} url_attrs[] = {
    { "SegmentTemplate", "media" },
    { "SegmentTemplate", "initialization" },
    { "SegmentTemplate", "index" },
    { "SegmentTemplate", "bitstreamSwitching" },
    { "SegmentURL", "media" },
    { "SegmentURL", "index" },
    { "Initialization", "sourceURL" },
    { "RepresentationIndex", "sourceURL" },
    { "BitstreamSwitching", "sourceURL" },
};

/* What is done with an element and what is inside it. */
enum mode {
    M_WALK,    /* a DASH element: its URL attributes, BaseURLs, children */
    M_SKIP,    /* nothing inside (SegmentTimeline, foreign elements) */
    M_SEA,     /* inside ContentProtection: only SEA CryptoPeriod keys */
    M_TEXT,    /* inside BaseURL, Location, PatchLocation: its text */
};

/* Kinds of replaced values. */
enum kind {
    R_BASE,       /* a BaseURL's text, against its level's enclosing base */
    R_SEG,        /* a segment-like URL attribute, against its level's base */
    R_MANIFEST,   /* Location, PatchLocation, xlink:href: the MPD's URL */
};

/* A level: an element whose children resolve against its effective base. */
struct level {
    uint32_t parent;
    int32_t first_base, last_base;   /* its BaseURL refs, chained */
    bool has_base;                   /* a BaseURL child, usable or not */
    bool rel;                        /* a child's URL attribute stays under its base */
    bool based_in;                   /* what encloses it is based on some BaseURL */
    const char *in, *eff;            /* the enclosing base, its own effective base */
};

/* A value that may be replaced: body[from, to). */
struct ref {
    size_t from, to;
    const char *v;           /* decoded and trimmed (arena) */
    const char *out;         /* R_BASE: the relay URL (arena), NULL: kept */
    uint32_t lv;             /* R_BASE: the level it is a BaseURL of; R_SEG: the
                              * level the element is a child of */
    int32_t next;            /* R_BASE: the next BaseURL of the level */
    char quote;              /* the attribute's quote; 0 for text */
    uint8_t kind;
    bool empty;              /* <BaseURL/>: from..to is the "/>" */
    const char *qname;       /* with empty: the element's name, for its end tag */
};

/* An open element. */
struct frame {
    uint8_t mode;
    bool owner;              /* the M_TEXT element whose text it is */
    bool empty;              /* written as <x/> */
    uint32_t lv;             /* M_WALK: its level; M_SEA: the level above */
    size_t content;          /* M_TEXT owner: the body offset after its '>' */
    int32_t ref;
};

/* A run found by the pre-scan: what libxml2 does not see. */
struct run {
    size_t anchor;           /* the first element's '<', in the parsed bytes */
    size_t cut;              /* where the removed bytes were, in the parsed bytes */
    size_t removed;          /* their length; cumulative over the runs so far */
    size_t total;
    uint32_t count;          /* elements removed */
    bool segment_url;        /* SegmentURL elements, else S */
    size_t first_val, nvals; /* their URL values in `vals` */
};

/* A SegmentURL@media or @index value in a run. */
struct run_val {
    size_t from, to;         /* in the body */
    char quote;
};

struct rw {
    struct mr_arena *a;
    const struct mr_mpd_ctx *c;
    const char *final_url;
    const char *prefix;              /* c->prefix, "" for NULL */
    size_t prefix_len;
    size_t scope_len;
    char *data;                      /* kind scope '\n' URL: token data */
    struct mr_token_signer *signer;  /* the key and expiry of every token */
    char *scratch;                   /* one relay URL */
    size_t scratch_size;
    /* The last directory signed and its token (data and token lengths). */
    size_t last_dlen;
    char *last_tok;
    size_t last_tlen;
    const char *why;
    size_t relay_len, relay_tail;    /* of the last relay URL: its length, where its tail is */
    bool last_query;                 /* the last seg_url's token holds a query */
    bool prefix_plain;               /* the prefix needs no XML escaping */
    /* The last plain absolute segment URL made a relay URL, its directory's
     * length and its relay URL's head (PREFIX/api/seg/TOKEN, arena). */
    const char *seg_v;
    size_t seg_dir, seg_hlen;
    char *seg_head;

    /* the parse */
    struct mr_str body;
    const char *src;                 /* what libxml2 parses: body, or body without runs */
    size_t src_len;
    xmlParserCtxtPtr p;
    int rc;
    bool fallback;                   /* a run's anchor was not an element */
    bool again;                      /* parse again with w->options */
    int options;                     /* libxml2's: PARSE_OPTIONS, and IGNORE_ENC */
    size_t nodes;
    int depth;
    struct frame stack[MR_MPD_MAX_DEPTH + 2];
    struct mr_buf text;              /* of the open M_TEXT element */
    bool root_seen, root_known, root_mpd, root_empty;
    char *ns;                        /* the root's namespace (the DASH one), or NULL */
    const char *root_prefix;         /* arena */
    size_t root_content;             /* body offset after the root's start tag */
    bool dynamic;                    /* the root MPD's type="dynamic" */
    long update_ms;                  /* its minimumUpdatePeriod, or -1 */

    struct level *lv;
    size_t nlv, lv_cap;
    struct ref *refs;
    size_t nrefs, refs_cap;
    struct run *runs;
    size_t nruns, runs_cap, run_i;
    struct run_val *vals;
    size_t nvals, vals_cap;
};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

/* Room for one more element of a malloc'd array. */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    void *p;
    size_t c;

    if (n < *cap)
        return MR_OK;
    c = *cap ? *cap * 2 : 64;
    p = realloc(*v, c * size);
    if (!p)
        return MR_ENOMEM;
    *v = p;
    *cap = c;
    return MR_OK;
}

/* ---- URLs --------------------------------------------------------------------- */

/* Whether u is an absolute http(s) URL in the form curl's URL API gives
 * back unchanged (lowercase scheme and host, a path, no dot segments, no
 * byte it would encode or a player would read differently), so that it
 * need not be parsed.  No fragment either. */
static bool plain_absolute(const char *u)
{
    const char *p;
    size_t n;

    if (!strncmp(u, "https://", 8))
        p = u + 8;
    else if (!strncmp(u, "http://", 7))
        p = u + 7;
    else
        return false;
    n = strcspn(p, "/?#");
    if (!n || p[n] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':'))
            return false;
    }
    if (p[n - 1] == ':' || p[0] == ':')
        return false;
    p += n;
    for (const char *s = p; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!mr_is_vchar(c) || c == '\\' || c == '#')
            return false;
    }
    /* no "//" (curl keeps it, but a tail may not have it) and no "/." */
    n = strcspn(p, "?");
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '/' && (p[i + 1] == '.' || p[i + 1] == '/'))
            return false;
    return strlen(u) <= MR_URL_MAX;
}

/* ref (trimmed) resolved against base, without its fragment, into *abs
 * (arena, or ref itself); *abs NULL when it is not an http(s) URL the relay
 * can fetch or does not resolve: such references are kept as written. */
static int resolve(struct rw *w, const char *base, const char *ref, char **abs)
{
    char *r;
    int rc;

    *abs = NULL;
    if (plain_absolute(ref)) {
        *abs = (char *)ref;
        return MR_OK;
    }
    rc = mr_url_resolve(w->a, base, ref, &r);
    if (rc == MR_ENOMEM)
        return rc;
    if (rc || !mr_url_is_http(r))
        return MR_OK;
    mr_url_strip_fragment(r);
    *abs = r;
    return MR_OK;
}

/* The length of u's directory: up to and including the last '/' of its
 * path, and for a template before its first identifier ('$'); 0 when u
 * has no path. */
static size_t dir_len(const char *u, bool template)
{
    const char *p = strstr(u, "://"), *s;
    size_t last;

    if (!p)
        return 0;
    p += 3;
    p += strcspn(p, "/?#");
    if (*p != '/')
        return 0;
    last = (size_t)(p - u);
    for (s = p; *s && *s != '?' && *s != '#' && !(template && *s == '$'); s++)
        if (*s == '/')
            last = (size_t)(s - u);
    return last + 1;
}

/* The token for data kind scope '\n' url[0..n) ['?' query ['\n' name]]
 * into w->last_tok, kept for the next URL with the same data. */
static int sign(struct rw *w, char kind, const char *url, size_t n, struct mr_dir_query q)
{
    size_t head = 2 + w->scope_len, dlen = head + n, o;

    dlen += q.query.p ? 1 + q.query.len : 0;
    dlen += q.name.p ? 1 + q.name.len : 0;
    if (dlen > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    /* the data, after the kept token's (compared as it is written) */
    o = head + n;
    if (w->last_tok && w->last_dlen == dlen && w->data[0] == kind &&
        !memcmp(w->data + head, url, n) &&
        (!q.query.p || (w->data[o] == '?' &&
                        !memcmp(w->data + o + 1, q.query.p, q.query.len))) &&
        (!q.name.p || (w->data[o + 1 + q.query.len] == '\n' &&
                       !memcmp(w->data + o + 2 + q.query.len, q.name.p, q.name.len))))
        return MR_OK;
    w->data[0] = kind;
    memcpy(w->data + head, url, n);
    if (q.query.p) {
        w->data[o++] = '?';
        memcpy(w->data + o, q.query.p, q.query.len);
        o += q.query.len;
    }
    if (q.name.p) {
        w->data[o++] = '\n';
        memcpy(w->data + o, q.name.p, q.name.len);
    }
    w->last_dlen = dlen;
    w->last_tlen = mr_token_len(dlen);
    w->last_tok = w->scratch + w->scratch_size - w->last_tlen - 1;
    return mr_token_sign_to(w->signer, w->data, dlen, w->last_tok);
}

/* PREFIX ROUTE TOKEN TAIL into w->scratch (NUL-terminated). */
static int relay_url(struct rw *w, const char *route, struct mr_str tail, const char **out)
{
    size_t rlen = strlen(route), need = w->prefix_len + rlen + w->last_tlen + tail.len;
    char *o = w->scratch;

    /* the token sits at the scratch's end, out of the way */
    if (need + 1 + w->last_tlen + 1 > w->scratch_size)
        return MR_ETOOBIG;
    memcpy(o, w->prefix, w->prefix_len);
    o += w->prefix_len;
    memcpy(o, route, rlen);
    o += rlen;
    memcpy(o, w->last_tok, w->last_tlen);
    o += w->last_tlen;
    memcpy(o, tail.p, tail.len);
    o[tail.len] = '\0';
    w->relay_len = need;
    w->relay_tail = need - tail.len;
    *out = w->scratch;
    return MR_OK;
}

/* The relay URL of an upstream URL under a signed directory:
 * PREFIX/api/seg/TOKEN/ and the path that follows the directory.  The
 * URL's query goes into the token (mpd.h): for a segment-like URL (a
 * template: `template`), the query of every name under the directory; for
 * a BaseURL, its file's alone, bound to its name, and none for a
 * directory.  w->last_query says whether the token has one. */
static int seg_url(struct rw *w, const char *abs, bool template, const char **out)
{
    size_t n = dir_len(abs, template), plen;
    struct mr_dir_query dq = { MR_STR_NULL, MR_STR_NULL };
    const char *rest, *q;
    int rc;

    *out = NULL;
    if (!n)
        return MR_OK;
    rest = abs + n - 1;                  /* "/name?query" */
    q = strchr(rest, '?');
    plen = q ? (size_t)(q - rest) : strlen(rest);
    if (q && q[1] && plen > 1) {
        dq.query = mr_str_c(q + 1);
        if (!template)
            dq.name = (struct mr_str){ rest + 1, plen - 1 };
    }
    if ((rc = sign(w, MR_TOKEN_DIR, abs, n, dq)))
        return rc;
    w->last_query = dq.query.p != NULL;
    /* a template's query is filled in by the player: it stays in the tail */
    if (dq.query.p && memchr(dq.query.p, '$', dq.query.len))
        plen = strlen(rest);
    return relay_url(w, "/api/seg/", (struct mr_str){ rest, plen }, out);
}

/* The relay URL of a manifest (or a part of one): PREFIX/api/m3u8/TOKEN.mpd */
static int manifest_url(struct rw *w, const char *abs, const char **out)
{
    int rc = sign(w, MR_TOKEN_PLAYLIST, abs, strlen(abs),
                  (struct mr_dir_query){ MR_STR_NULL, MR_STR_NULL });
    return rc ? rc : relay_url(w, "/api/m3u8/", MR_STR(".mpd"), out);
}


/* ---- escaping ---------------------------------------------------------------- */

static bool xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Bytes that may need escaping: & < > " ' and the whitespace an attribute
 * value would not keep. */
static const unsigned char esc_class[256] = {
    ['&'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1, ['\''] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

/* s as XML text (quote 0) or as an attribute value in `quote`. */
static int put_escaped(struct mr_buf *o, const char *s, size_t n, char quote)
{
    size_t start = 0, i = 0;
    int rc;

    for (;;) {
        const char *e;
        while (i < n && !esc_class[(unsigned char)s[i]])
            i++;
        if (i == n)
            break;
        switch (s[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = quote == '"' ? "&quot;" : NULL; break;
        case '\'': e = quote == '\'' ? "&apos;" : NULL; break;
        /* an attribute's whitespace would become spaces */
        case '\t': e = quote ? "&#9;" : NULL; break;
        case '\n': e = quote ? "&#10;" : NULL; break;
        default: e = "&#13;"; break;
        }
        i++;
        if (!e)
            continue;
        if ((rc = mr_buf_append(o, s + start, i - 1 - start)) || (rc = mr_buf_puts(o, e)))
            return rc;
        start = i;
    }
    return mr_buf_append(o, s + start, n - start);
}

/* The relay URL just made (w->scratch): its prefix, route and token need
 * no escaping (unless the configured prefix does), its tail may. */
static int put_relay(struct rw *w, struct mr_buf *o, char quote)
{
    size_t head = w->prefix_plain ? w->relay_tail : 0;
    int rc = mr_buf_append(o, w->scratch, head);

    return rc ? rc : put_escaped(o, w->scratch + head, w->relay_len - head, quote);
}

/* ---- recording what to replace ----------------------------------------------- */

static void trim(const char **p, size_t *n)
{
    while (*n && xml_space(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && xml_space((*p)[*n - 1]))
        (*n)--;
}

static int new_ref(struct rw *w, enum kind kind, uint32_t lv, struct ref **out)
{
    struct ref *r;
    int rc = grow((void **)&w->refs, &w->refs_cap, w->nrefs, sizeof(*w->refs));

    if (rc)
        return rc;
    r = &w->refs[w->nrefs++];
    memset(r, 0, sizeof(*r));
    r->kind = (uint8_t)kind;
    r->lv = lv;
    r->next = -1;
    r->v = "";
    *out = r;
    return MR_OK;
}

static int new_level(struct rw *w, uint32_t parent, uint32_t *out)
{
    struct level *l;
    int rc = grow((void **)&w->lv, &w->lv_cap, w->nlv, sizeof(*w->lv));

    if (rc)
        return rc;
    if (w->nlv >= UINT32_MAX)
        return MR_ETOOBIG;
    l = &w->lv[w->nlv];
    memset(l, 0, sizeof(*l));
    l->parent = parent;
    l->first_base = l->last_base = -1;
    *out = (uint32_t)w->nlv++;
    return MR_OK;
}

/* A segment-like URL attribute of a child of level lv, body[from, to):
 * kept when it stays under the relay's BaseURL by itself (then that level
 * needs one) and has no query, else to be made a relay URL of its own. */
static int add_seg(struct rw *w, uint32_t lv, const char *v, size_t n, size_t from, size_t to,
                   char quote)
{
    struct ref *r;
    int rc;

    trim(&v, &n);
    if (!n)
        return MR_OK;
    /* a query must go into a token: such a reference is rewritten */
    if (mr_mpd_stays_under((struct mr_str){ v, n }) && !memchr(v, '?', n)) {
        w->lv[lv].rel = true;
        return MR_OK;
    }
    if ((rc = new_ref(w, R_SEG, lv, &r)))
        return rc;
    r->from = from;
    r->to = to;
    r->quote = quote;
    return (r->v = mr_arena_strndup(w->a, v, n)) ? MR_OK : MR_ENOMEM;
}

/* xlink:href: a reference the player fetches as (a part of) a manifest. */
static int add_href(struct rw *w, const char *v, size_t n, size_t from, size_t to, char quote)
{
    struct ref *r;
    int rc;

    trim(&v, &n);
    if (!n || (n == sizeof(RESOLVE_TO_ZERO) - 1 && !memcmp(v, RESOLVE_TO_ZERO, n)))
        return MR_OK;
    if ((rc = new_ref(w, R_MANIFEST, 0, &r)))
        return rc;
    r->from = from;
    r->to = to;
    r->quote = quote;
    return (r->v = mr_arena_strndup(w->a, v, n)) ? MR_OK : MR_ENOMEM;
}

/* ---- the pre-scan -------------------------------------------------------------- */

static bool is_alpha(char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* The bytes of a plain attribute value, but for its quotes: printable
 * ASCII but '<' and '&' (and the quotes, which are looked at). */
static unsigned char value_ok[256];
static pthread_once_t value_once = PTHREAD_ONCE_INIT;

static void value_init(void)
{
    for (int c = 0x20; c < 0x7f; c++)
        value_ok[c] = c != '<' && c != '&' && c != '"' && c != '\'';
}

/* Past the bytes from s[i] on that value_ok takes: eight at a time (a
 * 1 MB SegmentList is mostly these), then one at a time. */
static size_t plain_run(const char *s, size_t i, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;

    while (i + 8 <= n) {
        uint64_t x, bad;
        memcpy(&x, s + i, 8);
#define HAS_ZERO(y) (((y) - ones) & ~(y) & high)
        bad = (x & high) | HAS_ZERO(x & 0xe0e0e0e0e0e0e0e0u) | HAS_ZERO(x ^ (ones * 0x7f)) |
              HAS_ZERO(x ^ (ones * '<')) | HAS_ZERO(x ^ (ones * '&')) |
              HAS_ZERO(x ^ (ones * '"')) | HAS_ZERO(x ^ (ones * '\''));
#undef HAS_ZERO
        if (bad)
            break;
        i += 8;
    }
    while (i < n && value_ok[(unsigned char)s[i]])
        i++;
    return i;
}

/* The end (past "/>") of a plain empty element <NAME a="v" .../> at body
 * offset i, or 0 when it is not one: no prefix, attribute names of letters
 * (none twice, none xml*), values of printable ASCII without '<' or '&' (so
 * what a parser reports is the bytes).  With `urls`, its media and index
 * values go to w->vals (*rc MR_ENOMEM when they cannot). */
static size_t plain_elem(struct rw *w, size_t i, const char *name, size_t nlen, bool urls,
                         int *rc)
{
    const char *s = w->body.p;
    size_t n = w->body.len, j = i + 1 + nlen, nv0 = w->nvals;
    struct mr_str seen[8];
    int nseen = 0;

    if (j >= n || s[i] != '<' || memcmp(s + i + 1, name, nlen))
        return 0;
    for (;;) {
        size_t ws = j, k, v, an;
        char q;

        while (j < n && xml_space(s[j]))
            j++;
        if (j + 1 < n && s[j] == '/' && s[j + 1] == '>')
            return j + 2;
        if (j == ws || nseen == 8)
            break;   /* an attribute needs space before it */
        for (k = j; k < n && is_alpha(s[k]); k++)
            ;
        an = k - j;
        if (!an || an > 32 || k + 1 >= n || s[k] != '=')
            break;
        if (an >= 3 && (s[j] | 0x20) == 'x' && (s[j + 1] | 0x20) == 'm' &&
            (s[j + 2] | 0x20) == 'l')
            break;
        for (int m = 0; m < nseen; m++)
            if (seen[m].len == an && !memcmp(seen[m].p, s + j, an))
                goto no;
        seen[nseen++] = (struct mr_str){ s + j, an };
        q = s[k + 1];
        if (q != '"' && q != '\'')
            break;
        for (v = k + 2;; v++) {
            v = plain_run(s, v, n);
            if (v >= n || s[v] == q)
                break;
            if (s[v] != '"' && s[v] != '\'')
                goto no;
        }
        if (v >= n)
            break;
        if (urls && an == 5 && (!memcmp(s + j, "media", 5) || !memcmp(s + j, "index", 5))) {
            if ((*rc = grow((void **)&w->vals, &w->vals_cap, w->nvals, sizeof(*w->vals))))
                break;
            w->vals[w->nvals++] = (struct run_val){ k + 2, v, q };
        }
        j = v + 1;
    }
no:
    w->nvals = nv0;
    return 0;
}

/* Finds the runs of plain S and SegmentURL siblings (separated by
 * whitespace only) and, when there are any, makes w->src the body without
 * all but the first of each run.  What it finds is only a guess until the
 * parse confirms each run's first element (on_start). */
static int prescan(struct rw *w)
{
    const char *s = w->body.p;
    size_t n = w->body.len, i = 0, removed = 0, prev = 0;
    char *dst;
    int rc = MR_OK;

    pthread_once(&value_once, value_init);
    while (i < n) {
        const char *lt = memchr(s + i, '<', n - i), *name;
        size_t a, e, last, nlen, nv0;
        uint32_t count = 0;
        bool su;
        struct run *r;

        if (!lt)
            break;
        a = (size_t)(lt - s);
        i = a + 1;
        if (a + 2 < n && s[a + 1] == 'S' && (xml_space(s[a + 2]) || s[a + 2] == '/'))
            su = false;
        else if (a + 11 < n && s[a + 1] == 'S' && !memcmp(s + a + 1, "SegmentURL", 10))
            su = true;
        else
            continue;
        name = su ? "SegmentURL" : "S";
        nlen = su ? 10 : 1;
        if (!(e = plain_elem(w, a, name, nlen, false, &rc)))
            continue;
        last = e;
        nv0 = w->nvals;
        for (;;) {
            size_t j = last, f;
            while (j < n && xml_space(s[j]))
                j++;
            if (j >= n || s[j] != '<' || !(f = plain_elem(w, j, name, nlen, su, &rc)))
                break;
            last = f;
            count++;
        }
        if (rc)
            return rc;
        i = last;
        if (!count)
            continue;
        if ((rc = grow((void **)&w->runs, &w->runs_cap, w->nruns, sizeof(*w->runs))))
            return rc;
        r = &w->runs[w->nruns++];
        r->anchor = a - removed;
        r->cut = e - removed;
        r->removed = last - e;
        removed += last - e;
        r->total = removed;
        r->count = count;
        r->segment_url = su;
        r->first_val = nv0;
        r->nvals = w->nvals - nv0;
    }
    if (!w->nruns)
        return MR_OK;
    w->src_len = n - removed;
    dst = malloc(w->src_len ? w->src_len : 1);
    if (!dst)
        return MR_ENOMEM;
    w->src = dst;
    for (size_t k = 0; k < w->nruns; k++) {
        size_t cut = w->runs[k].cut + w->runs[k].total - w->runs[k].removed;   /* in the body */
        memcpy(dst, s + prev, cut - prev);
        dst += cut - prev;
        prev = cut + w->runs[k].removed;
    }
    memcpy(dst, s + prev, n - prev);
    return MR_OK;
}

/* ---- parsing -------------------------------------------------------------------- */

static void stop(struct rw *w, int rc, const char *why)
{
    if (!w->rc) {
        w->rc = rc;
        w->why = why;
    }
    xmlStopParser(w->p);
}

/* Where the parser is, in w->src. */
static size_t src_pos(const struct rw *w)
{
    xmlParserInputPtr in = w->p->input;
    return (size_t)in->consumed + (size_t)(in->cur - in->base);
}

/* A w->src offset as a body offset: past each run cut before it. */
static size_t to_body(const struct rw *w, size_t off)
{
    size_t lo = 0, hi = w->nruns;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->runs[mid].cut <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? off + w->runs[lo - 1].total : off;
}

/* The '<' that begins the tag around w->src offset pos: a tag has no other
 * ('<' is not allowed in attribute values). */
static size_t tag_start(const struct rw *w, size_t pos)
{
    while (pos > 0 && w->src[pos] != '<')
        pos--;
    return pos;
}

/* The value of attribute prefix:local in the start tag src[lt, gt), as a
 * body range and its quote; false when it is not there. */
static bool attr_range(const struct rw *w, size_t lt, size_t gt, const xmlChar *prefix,
                       const xmlChar *local, size_t *from, size_t *to, char *quote)
{
    const char *s = w->src;
    size_t pl = prefix ? strlen((const char *)prefix) : 0, ll = strlen((const char *)local);
    size_t i = lt + 1;

    while (i < gt && !xml_space(s[i]) && s[i] != '/' && s[i] != '>')
        i++;   /* the element's name */
    while (i < gt) {
        size_t ns, ne;
        const char *q;
        while (i < gt && xml_space(s[i]))
            i++;
        ns = i;
        while (i < gt && !xml_space(s[i]) && s[i] != '=')
            i++;
        ne = i;
        while (i < gt && s[i] != '"' && s[i] != '\'')
            i++;
        if (i >= gt || !(q = memchr(s + i + 1, s[i], gt - i - 1)))
            return false;
        if (ne - ns == (pl ? pl + 1 : 0) + ll &&
            (!pl || (!memcmp(s + ns, prefix, pl) && s[ns + pl] == ':')) &&
            !memcmp(s + ne - ll, local, ll)) {
            *quote = s[i];
            *from = to_body(w, i + 1);
            *to = to_body(w, (size_t)(q - s));
            return true;
        }
        i = (size_t)(q - s) + 1;
    }
    return false;
}

static bool same_ns(const struct rw *w, const xmlChar *uri)
{
    if (!w->ns)
        return !uri;
    return uri && !strcmp((const char *)uri, w->ns);
}

static bool is_ascii_text(struct mr_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!s.p[i] || (unsigned char)s.p[i] >= 0x80)
            return false;
    return true;
}

/* An attribute value as libxml2 reports it without entity substitution
 * (which stays off): each '&' of the value (from "&amp;" or "&#38;") as
 * "&#38;", for a tree builder to decode; the rest decoded.  The value
 * itself, in the arena. */
static const char *amp_decode(struct rw *w, const char *v, size_t *n)
{
    char *d = mr_arena_alloc(w->a, *n + 1), *o = d;

    if (!d)
        return NULL;
    for (size_t i = 0; i < *n; i++) {
        *o++ = v[i];
        if (v[i] == '&' && *n - i >= 5 && !memcmp(v + i, "&#38;", 5))
            i += 4;
    }
    *o = '\0';
    *n = (size_t)(o - d);
    return d;
}

/* The attributes of a walked element (or of a CryptoPeriod, `sea`) whose
 * children resolve against level up. */
static int elem_attrs(struct rw *w, const char *name, int nb, const xmlChar **at, size_t lt,
                      size_t gt, uint32_t up, bool sea)
{
    bool url_elem = false;
    size_t first = w->nrefs;
    int rc;

    if (!sea)
        for (size_t i = 0; i < sizeof(url_attrs) / sizeof(url_attrs[0]) && !url_elem; i++)
            url_elem = !strcmp(name, url_attrs[i].elem);
    for (int j = 0; j < nb; j++) {
        const xmlChar **a = at + 5 * j;
        const char *local = (const char *)a[0];
        const char *v = (const char *)a[3];
        size_t n = (size_t)(a[4] - a[3]), from, to;
        bool want = false, href = false;
        char quote;

        if (a[2]) {
            href = !sea && !strcmp((const char *)a[2], XLINK_NS) && !strcmp(local, "href");
            want = href;
        } else if (sea) {
            want = !strcmp(local, "keyUriTemplate");
        } else if (url_elem) {
            for (size_t i = 0; i < sizeof(url_attrs) / sizeof(url_attrs[0]) && !want; i++)
                want = !strcmp(local, url_attrs[i].attr) && !strcmp(name, url_attrs[i].elem);
        }
        if (!want)
            continue;
        if (memchr(v, '&', n) && !(v = amp_decode(w, v, &n)))
            return MR_ENOMEM;
        if (!attr_range(w, lt, gt, a[1], a[0], &from, &to, &quote))
            return MR_EUPSTREAM;
        rc = href ? add_href(w, v, n, from, to, quote) : add_seg(w, up, v, n, from, to, quote);
        if (rc)
            return rc;
    }
    /* in document order (libxml2 reports them in it; this makes sure) */
    for (size_t i = first + 1; i < w->nrefs; i++)
        for (size_t k = i; k > first && w->refs[k - 1].from > w->refs[k].from; k--) {
            struct ref t = w->refs[k];
            w->refs[k] = w->refs[k - 1];
            w->refs[k - 1] = t;
        }
    return MR_OK;
}

/* A BaseURL, Location or PatchLocation child of level lv opens. */
static int open_text(struct rw *w, struct frame *f, enum kind kind, uint32_t lv, size_t pos,
                     const xmlChar *prefix, const xmlChar *local)
{
    struct ref *r;
    int rc;

    if ((rc = new_ref(w, kind, lv, &r)))
        return rc;
    f->mode = M_TEXT;
    f->owner = true;
    f->ref = (int32_t)(w->nrefs - 1);
    if (f->empty) {
        r->empty = true;
        r->from = to_body(w, pos);
        r->to = r->from + 2;
        r->qname = prefix ? mr_arena_printf(w->a, "%s:%s", prefix, local)
                          : mr_arena_strdup(w->a, (const char *)local);
        if (!r->qname)
            return MR_ENOMEM;
    } else {
        f->content = to_body(w, pos + 1);
    }
    mr_buf_reset(&w->text);
    if (kind == R_BASE) {
        struct level *l = &w->lv[lv];
        if (l->last_base >= 0)
            w->refs[l->last_base].next = f->ref;
        else
            l->first_base = f->ref;
        l->last_base = f->ref;
        l->has_base = true;
    }
    return MR_OK;
}

/* The parse reached a run's first element (f, just opened): the rest of
 * the run are its siblings, treated as it is. */
static int take_run(struct rw *w, const struct frame *f, uint32_t up)
{
    const struct run *r = &w->runs[w->run_i++];
    int rc;

    w->nodes += r->count;
    if (w->nodes > MR_MPD_MAX_NODES) {
        w->why = "the MPD has more elements than the limit";
        return MR_ETOOBIG;
    }
    if (f->mode != M_WALK || !r->segment_url)
        return MR_OK;
    for (size_t k = r->first_val; k < r->first_val + r->nvals; k++) {
        const struct run_val *v = &w->vals[k];
        if ((rc = add_seg(w, up, w->body.p + v->from, v->to - v->from, v->from, v->to,
                          v->quote)))
            return rc;
    }
    return MR_OK;
}

/* An xs:duration of the form PnDTnHnMnS ("PT2S", "PT1M30.5S"), in ms;
 * -1 when it is not of that form, negative or 1e7 s or more. */
static long iso_duration_ms(const char *p, const char *end)
{
    double total = 0;
    bool time = false, any = false;
    char num[32];

    if (end - p < 2 || p[0] != 'P')
        return -1;
    for (p++; p < end; ) {
        size_t n = 0;
        char *stop;
        double v;
        if (*p == 'T') {
            time = true;
            p++;
            continue;
        }
        /* strtod on a copy: the value is not NUL-terminated */
        while (p + n < end && n < sizeof(num) - 1 && ((p[n] >= '0' && p[n] <= '9') || p[n] == '.'))
            n++;
        memcpy(num, p, n);
        num[n] = '\0';
        v = strtod(num, &stop);
        if (!n || stop != num + n || p + n >= end || v < 0 || v > 1e7)
            return -1;
        switch (p[n]) {
        case 'D': if (time) return -1; total += v * 86400; break;
        case 'H': if (!time) return -1; total += v * 3600; break;
        case 'M': if (!time) return -1; total += v * 60; break;
        case 'S': if (!time) return -1; total += v; break;
        default: return -1;
        }
        any = true;
        p += n + 1;
    }
    return any && total < 1e7 ? (long)(total * 1000) : -1;
}

/* The root MPD's type and minimumUpdatePeriod (attributes in no
 * namespace), for mr_mpd_ctx.refresh. */
static void root_refresh(struct rw *w, int nb, const xmlChar **at)
{
    for (int j = 0; j < nb; j++) {
        const xmlChar **a = at + 5 * j;
        const char *local = (const char *)a[0], *v = (const char *)a[3];
        size_t n = (size_t)(a[4] - a[3]);
        if (a[2])
            continue;
        if (!strcmp(local, "type"))
            w->dynamic = n == 7 && !memcmp(v, "dynamic", 7);
        else if (!strcmp(local, "minimumUpdatePeriod"))
            w->update_ms = iso_duration_ms(v, v + n);
    }
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                     const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
                     int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    static const char *const roots[] = {
        "MPD", "Period", "AdaptationSet", "EventStream", "SegmentList", NULL
    };
    xmlParserCtxtPtr p = ctx;
    struct rw *w = p->_private;
    const char *name = (const char *)localname;
    struct frame *f, *up;
    size_t pos, lt = 0;
    bool anchor = false;
    int nb = nb_attributes - nb_defaulted, rc = MR_OK;

    (void)nb_namespaces;
    (void)namespaces;
    if (++w->nodes > MR_MPD_MAX_NODES) {
        stop(w, MR_ETOOBIG, "the MPD has more elements than the limit");
        return;
    }
    /* nameNr: the open elements around this one */
    if (p->nameNr >= MR_MPD_MAX_DEPTH || w->depth > MR_MPD_MAX_DEPTH) {
        stop(w, MR_ETOOBIG, "the MPD nests elements deeper than the limit");
        return;
    }
    /* Offsets are the body's only when libxml2 does not convert it.
     * ASCII declared as some ASCII superset (ISO-8859-1, ...) is read
     * again as the UTF-8 it also is. */
    if (!w->depth && p->input->buf && p->input->buf->encoder) {
        if (!(w->options & XML_PARSE_IGNORE_ENC) && is_ascii_text(w->body)) {
            w->options |= XML_PARSE_IGNORE_ENC;
            w->again = true;
            xmlStopParser(p);
        } else {
            stop(w, MR_EUPSTREAM, "the MPD is not encoded in UTF-8 (refused)");
        }
        return;
    }
    pos = src_pos(w);
    if (p->inputNr != 1 || pos >= w->src_len || (w->src[pos] != '>' && w->src[pos] != '/')) {
        stop(w, MR_EUPSTREAM, "the MPD cannot be rewritten in place");
        return;
    }
    if (w->run_i < w->nruns && pos > w->runs[w->run_i].anchor) {
        const struct run *r = &w->runs[w->run_i];
        lt = tag_start(w, pos);
        if (lt != r->anchor || prefix || !w->depth ||
            strcmp(name, r->segment_url ? "SegmentURL" : "S")) {
            w->fallback = true;   /* not an element where the pre-scan saw one */
            xmlStopParser(p);
            return;
        }
        anchor = true;
    }
    up = w->depth ? &w->stack[w->depth - 1] : NULL;
    f = &w->stack[w->depth++];
    memset(f, 0, sizeof(*f));
    f->ref = -1;
    f->empty = w->src[pos] == '/';
    if (!up) {
        uint32_t lv;
        w->root_seen = true;
        for (int i = 0; roots[i]; i++)
            w->root_known |= !strcmp(name, roots[i]);
        w->root_mpd = !strcmp(name, "MPD");
        if (w->root_mpd)
            root_refresh(w, nb, attributes);
        w->root_empty = f->empty;
        w->root_content = to_body(w, pos + 1);
        if (!w->root_known) {
            f->mode = M_SKIP;
            return;
        }
        w->ns = uri ? mr_arena_strdup(w->a, (const char *)uri) : NULL;
        w->root_prefix = prefix ? mr_arena_strdup(w->a, (const char *)prefix) : NULL;
        if ((uri && !w->ns) || (prefix && !w->root_prefix) || (rc = new_level(w, 0, &lv)))
            goto fail;
        f->mode = M_WALK;
        f->lv = lv;
        if (nb && (rc = elem_attrs(w, name, nb, attributes, tag_start(w, pos), pos, 0, false)))
            goto fail;
        return;
    }
    switch (up->mode) {
    case M_SKIP:
    case M_TEXT:
        f->mode = up->mode;
        break;
    case M_SEA:
        f->mode = M_SEA;
        f->lv = up->lv;
        if (nb && !strcmp(name, "CryptoPeriod") && uri && !strcmp((const char *)uri, SEA_NS) &&
            (rc = elem_attrs(w, name, nb, attributes, lt ? lt : tag_start(w, pos), pos, up->lv,
                             true)))
            goto fail;
        break;
    case M_WALK:
        if (!same_ns(w, uri) || !strcmp(name, "SegmentTimeline")) {
            f->mode = M_SKIP;   /* S elements, thousands of them, and no URL */
        } else if (!strcmp(name, "BaseURL")) {
            rc = open_text(w, f, R_BASE, up->lv, pos, prefix, localname);
        } else if (!strcmp(name, "Location") || !strcmp(name, "PatchLocation")) {
            rc = open_text(w, f, R_MANIFEST, up->lv, pos, prefix, localname);
        } else if (!strcmp(name, "ContentProtection")) {
            f->mode = M_SEA;
            f->lv = up->lv;
        } else {
            f->mode = M_WALK;
            if (!(rc = new_level(w, up->lv, &f->lv)) && nb)
                rc = elem_attrs(w, name, nb, attributes, lt ? lt : tag_start(w, pos), pos,
                                up->lv, false);
        }
        if (rc)
            goto fail;
        break;
    }
    if (anchor) {
        if (f->mode == M_TEXT) {
            w->fallback = true;   /* its whitespace would be text */
            xmlStopParser(p);
            return;
        }
        if ((rc = take_run(w, f, up->lv)))
            goto fail;
    }
    return;
fail:
    stop(w, rc, rc == MR_EUPSTREAM ? "the MPD cannot be rewritten in place" : w->why);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                   const xmlChar *uri)
{
    xmlParserCtxtPtr p = ctx;
    struct rw *w = p->_private;
    struct frame *f;
    struct ref *r;
    const char *v;
    size_t n, b0, b1, end;

    (void)localname;
    (void)prefix;
    (void)uri;
    if (!w->depth)
        return;
    f = &w->stack[--w->depth];
    if (!f->owner)
        return;
    r = &w->refs[f->ref];
    if (!f->empty) {
        /* the text: from after the start tag to the end tag's '<', less
         * the whitespace around it, which stays */
        end = src_pos(w);
        b0 = f->content;
        b1 = end ? to_body(w, tag_start(w, end - 1)) : 0;
        if (b1 < b0 || b1 > w->body.len) {
            stop(w, MR_EUPSTREAM, "the MPD cannot be rewritten in place");
            return;
        }
        while (b0 < b1 && xml_space(w->body.p[b0]))
            b0++;
        while (b1 > b0 && xml_space(w->body.p[b1 - 1]))
            b1--;
        r->from = b0;
        r->to = b1;
    }
    v = w->text.p ? w->text.p : "";
    n = w->text.len;
    trim(&v, &n);
    if (!(r->v = mr_arena_strndup(w->a, v, n)))
        stop(w, MR_ENOMEM, NULL);
}

/* Text, and CDATA sections: what a BaseURL or Location says. */
static void on_text(void *ctx, const xmlChar *s, int len)
{
    xmlParserCtxtPtr p = ctx;
    struct rw *w = p->_private;
    int rc;

    if (!w->depth || w->stack[w->depth - 1].mode != M_TEXT || len <= 0)
        return;
    if ((rc = mr_buf_append(&w->text, s, (size_t)len)))
        stop(w, rc, "the MPD's text is too long");
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                           const xmlChar *system_id, xmlChar *content)
{
    xmlParserCtxtPtr p = ctx;

    (void)name;
    (void)type;
    (void)public_id;
    (void)system_id;
    (void)content;
    stop(p->_private, MR_EUPSTREAM, "the MPD declares XML entities (refused)");
}

static void on_reference(void *ctx, const xmlChar *name)
{
    xmlParserCtxtPtr p = ctx;

    (void)name;
    stop(p->_private, MR_EUPSTREAM, "the MPD references an undeclared XML entity");
}

static xmlParserInputPtr on_resolve(void *ctx, const xmlChar *public_id, const xmlChar *system_id)
{
    xmlParserCtxtPtr p = ctx;

    (void)public_id;
    (void)system_id;
    stop(p->_private, MR_EUPSTREAM, "the MPD refers to an external XML resource");
    return NULL;
}

static void on_external_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                               const xmlChar *system_id)
{
    /* Never loaded (no DTDLOAD); this hook is not even called then. */
    (void)ctx;
    (void)name;
    (void)external_id;
    (void)system_id;
}

static void on_error(void *ctx, xmlErrorPtr err)
{
    /* Silence: the caller gets a `why`, nothing goes to stderr. */
    (void)ctx;
    (void)err;
}

/* One SAX pass over w->src: w->rc and w->why, or w->fallback. */
static int parse(struct rw *w)
{
    xmlParserCtxtPtr p;
    xmlSAXHandlerPtr sax;
    int rc = MR_OK;

    w->rc = MR_OK;
    w->why = NULL;
    w->fallback = false;
    w->again = false;
    w->nodes = 0;
    w->depth = 0;
    w->nlv = 1;   /* level 0: the MPD's URL, above the root */
    w->nrefs = 0;
    w->run_i = 0;
    w->root_seen = w->root_known = w->root_mpd = w->root_empty = false;
    w->dynamic = false;
    w->update_ms = -1;
    pthread_once(&xml_once, xml_init);
    if (w->src_len > INT32_MAX)
        return MR_ETOOBIG;
    p = xmlCreateMemoryParserCtxt(w->src, (int)w->src_len);
    if (!p)
        return MR_ENOMEM;
    xmlCtxtUseOptions(p, w->options);
    p->_private = w;
    w->p = p;
    /* No tree: the element, text and comment hooks are ours or none; the
     * document and DTD hooks stay libxml2's, the entity ones refuse. */
    sax = p->sax;
    sax->startElementNs = on_start;
    sax->endElementNs = on_end;
    sax->startElement = NULL;
    sax->endElement = NULL;
    sax->characters = on_text;
    sax->ignorableWhitespace = on_text;
    sax->cdataBlock = on_text;
    sax->comment = NULL;
    sax->processingInstruction = NULL;
    sax->entityDecl = on_entity_decl;
    sax->reference = on_reference;
    sax->resolveEntity = on_resolve;
    sax->externalSubset = on_external_subset;
    sax->serror = on_error;
    sax->error = NULL;
    sax->warning = NULL;
    p->vctxt.error = NULL;
    p->vctxt.warning = NULL;
    xmlParseDocument(p);
    if (w->again) {
        /* w->options changed: nothing of this parse counts */
    } else if (w->run_i < w->nruns) {
        /* A run the parse did not confirm: this parse is not the body's,
         * whatever it found. */
        w->fallback = true;
    } else if (w->rc) {
        rc = w->rc;
    } else if (!p->wellFormed || !w->root_seen) {
        rc = MR_EUPSTREAM;
        w->why = p->errNo == XML_ERR_DOCUMENT_EMPTY ? "the MPD is empty"
                                                    : "the MPD is not well-formed XML";
    }
    if (p->myDoc)
        xmlFreeDoc(p->myDoc);
    p->myDoc = NULL;
    xmlFreeParserCtxt(p);
    w->p = NULL;
    return rc;
}

/* ---- resolving and writing ------------------------------------------------------- */

/* Each level's effective base, top down: its first usable BaseURL against
 * the base enclosing it; each BaseURL's relay URL.  *need_doc_base when a
 * URL attribute that stays under its base has no BaseURL above it. */
static int resolve_levels(struct rw *w, bool *need_doc_base)
{
    int rc;

    *need_doc_base = false;
    w->lv[0].in = w->lv[0].eff = w->final_url;
    for (size_t i = 1; i < w->nlv; i++) {
        struct level *l = &w->lv[i];
        const struct level *up = &w->lv[l->parent];
        l->in = up->eff;
        l->based_in = up->based_in || up->has_base;
        l->eff = NULL;
        for (int32_t k = l->first_base; k >= 0; k = w->refs[k].next) {
            struct ref *b = &w->refs[k];
            const char *relay;
            char *abs;
            if ((rc = resolve(w, l->in, b->v, &abs)))
                return rc;
            if (!abs)
                continue;
            if ((rc = seg_url(w, abs, false, &relay)))
                return rc;
            if (!relay)
                continue;
            if (!(b->out = mr_arena_strdup(w->a, relay)))
                return MR_ENOMEM;
            if (!l->eff)
                l->eff = abs;
        }
        if (!l->eff)
            l->eff = l->in;
    }
    for (size_t i = 0; i < w->nlv; i++)
        if (w->lv[i].rel && !w->lv[i].based_in && !w->lv[i].has_base)
            *need_doc_base = true;
    return MR_OK;
}

/* Whether s, after a plain absolute URL's directory, leaves it plain
 * (plain_absolute) and that directory its directory (dir_len): printable
 * ASCII, no '/', '?', '#', '$' or '\\', not a leading '.'. */
static bool plain_name(const char *s)
{
    if (*s == '.')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!mr_is_vchar(c) || c == '/' || c == '?' || c == '#' || c == '$' || c == '\\')
            return false;
    }
    return true;
}

/* The replacement of r (or its own bytes) into out. */
static int write_ref(struct rw *w, const struct ref *r, struct mr_buf *out)
{
    const char *relay = NULL;
    char *abs;
    int rc;

    switch (r->kind) {
    case R_BASE:
        relay = r->out;
        break;
    case R_SEG: {
        const struct level *l = &w->lv[r->lv];
        if (w->seg_v && !strncmp(r->v, w->seg_v, w->seg_dir) && plain_name(r->v + w->seg_dir) &&
            strlen(r->v) <= MR_URL_MAX) {
            /* the next of a SegmentList of absolute URLs: what follows the
             * same directory is a plain name, so that resolve, dir_len and
             * sign would give what they gave for the last one */
            if ((rc = mr_buf_append(out, w->seg_head, w->seg_hlen)))
                return rc;
            return put_escaped(out, r->v + w->seg_dir - 1, strlen(r->v + w->seg_dir - 1),
                               r->quote);
        }
        if ((rc = resolve(w, l->eff, r->v, &abs)))
            return rc;
        if (abs && (rc = seg_url(w, abs, true, &relay)))
            return rc;
        if (relay && abs == r->v &&
            (!w->seg_v || w->seg_hlen != w->relay_tail ||
             memcmp(w->seg_head, w->scratch, w->relay_tail))) {
            w->seg_v = NULL;
            if (!(w->seg_head = mr_arena_strndup(w->a, w->scratch, w->relay_tail)))
                return MR_ENOMEM;
            w->seg_hlen = w->relay_tail;
        }
        /* the names after it share its token: not when that holds a query */
        if (relay && abs == r->v && !w->last_query) {
            w->seg_v = r->v;
            w->seg_dir = dir_len(r->v, true);
        }
        break;
    }
    case R_MANIFEST:
        if (!*r->v || !strcmp(r->v, RESOLVE_TO_ZERO))
            break;
        if ((rc = resolve(w, w->final_url, r->v, &abs)))
            return rc;
        if (abs && (rc = manifest_url(w, abs, &relay)))
            return rc;
        break;
    }
    if (!relay)
        return mr_buf_append(out, w->body.p + r->from, r->to - r->from);
    if (r->kind != R_BASE)
        return put_relay(w, out, r->quote);
    if (!r->empty)
        return put_escaped(out, relay, strlen(relay), r->quote);
    /* <BaseURL/> -> <BaseURL>URL</BaseURL> */
    if ((rc = mr_buf_puts(out, ">")) || (rc = put_escaped(out, relay, strlen(relay), 0)) ||
        (rc = mr_buf_puts(out, "</")) || (rc = mr_buf_puts(out, r->qname)))
        return rc;
    return mr_buf_puts(out, ">");
}

/* A BaseURL for the MPD's own directory, as the root's first child. */
static int write_doc_base(struct rw *w, struct mr_buf *out)
{
    const char *relay;
    char *abs;
    int rc;

    if ((rc = mr_url_normalize(w->a, w->final_url, &abs)))
        return rc;
    /* Only the directory: the MPD's own name and query are not a base. */
    abs[dir_len(abs, false)] = '\0';
    if ((rc = seg_url(w, abs, false, &relay)) || !relay)
        return rc ? rc : MR_EINVAL;
    if (w->root_prefix)
        rc = mr_buf_printf(out, "<%s:BaseURL>", w->root_prefix);
    else
        rc = mr_buf_puts(out, "<BaseURL>");
    if (rc || (rc = put_relay(w, out, 0)))
        return rc;
    if (w->root_prefix)
        return mr_buf_printf(out, "</%s:BaseURL>", w->root_prefix);
    return mr_buf_puts(out, "</BaseURL>");
}

/* The body with the refs replaced (and the BaseURL inserted). */
static int write_out(struct rw *w, bool insert, struct mr_buf *out)
{
    const char *b = w->body.p;
    size_t pos = 0;
    int rc;

    /* most of it at once: the body, and relay URLs a little longer than
     * what they replace (a failure here is only an early cap check) */
    if ((rc = mr_buf_reserve(out, w->body.len + w->nrefs * (w->prefix_len + 128) + 256)) &&
        rc != MR_ETOOBIG)
        return rc;
    for (size_t i = 0; i <= w->nrefs; i++) {
        const struct ref *r = i < w->nrefs ? &w->refs[i] : NULL;
        if (insert && (!r || r->from >= w->root_content)) {
            if ((rc = mr_buf_append(out, b + pos, w->root_content - pos)) ||
                (rc = write_doc_base(w, out)))
                return rc;
            pos = w->root_content;
            insert = false;
        }
        if (!r)
            break;
        if (r->from < pos || r->to < r->from || r->to > w->body.len)
            return MR_EUPSTREAM;   /* cannot happen: refs are in order */
        if ((rc = mr_buf_append(out, b + pos, r->from - pos)) || (rc = write_ref(w, r, out)))
            return rc;
        pos = r->to;
    }
    return mr_buf_append(out, b + pos, w->body.len - pos);
}

/* ---- the entry points ----------------------------------------------------------- */

int mr_mpd_rewrite(struct mr_arena *a, const struct mr_mpd_ctx *c, struct mr_str body,
                   const char *final_url, struct mr_buf *out, const char **why)
{
    size_t cap = c->max_bytes ? c->max_bytes : MR_MPD_MAX_BYTES;
    struct rw *w;
    bool insert;
    int rc;

    *why = NULL;
    if (body.len > cap || body.len > (size_t)1 << 30) {
        *why = "the MPD is larger than the limit";
        return MR_ETOOBIG;
    }
    if (!final_url || !mr_url_is_http(final_url) || !strstr(final_url, "://")) {
        *why = "the MPD's URL is not an absolute http(s) URL";
        return MR_EINVAL;
    }
    if (!body.len) {
        *why = "the MPD is empty";
        return MR_EUPSTREAM;
    }
    w = mr_arena_calloc(a, 1, sizeof(*w));
    if (!w)
        return MR_ENOMEM;
    w->a = a;
    w->c = c;
    w->final_url = final_url;
    w->prefix = c->prefix ? c->prefix : "";
    w->prefix_len = strlen(w->prefix);
    w->prefix_plain = !strpbrk(w->prefix, "&<>\"'\t\n\r");
    w->scope_len = c->scope ? strlen(c->scope) : 0;
    w->data = mr_arena_alloc(a, 2 + w->scope_len + MR_TOKEN_MAX_DATA);
    /* a relay URL (prefix, route, token, a tail as long as a URL) and,
     * at its end, the last token */
    w->scratch_size = w->prefix_len + 16 + 2 * mr_token_len(MR_TOKEN_MAX_DATA) + MR_URL_MAX + 2;
    w->scratch = mr_arena_alloc(a, w->scratch_size);
    if (!w->data || !w->scratch)
        return MR_ENOMEM;
    if ((rc = mr_token_signer_new(c->key, a, c->expire_at, &w->signer)))
        return rc;
    if (w->scope_len)
        memcpy(w->data + 1, c->scope, w->scope_len);
    w->data[1 + w->scope_len] = '\n';
    w->body = body;
    w->src = body.p;
    w->src_len = body.len;
    mr_buf_init(&w->text, body.len + 1);
    w->lv_cap = 0;

    if ((rc = grow((void **)&w->lv, &w->lv_cap, 0, sizeof(*w->lv))) || (rc = prescan(w)))
        goto done;
    memset(&w->lv[0], 0, sizeof(w->lv[0]));
    w->lv[0].first_base = w->lv[0].last_base = -1;
    w->options = PARSE_OPTIONS;
    while (!(rc = parse(w)) && (w->again || w->fallback)) {
        if (w->again)
            continue;   /* at most once: IGNORE_ENC is then set */
        /* the pre-scan guessed wrong: libxml2 reads all of it */
        if (w->src != body.p)
            free((void *)w->src);
        w->src = body.p;
        w->src_len = body.len;
        w->nruns = 0;
    }
    if (rc)
        goto done;
    if (!w->root_known) {
        w->why = "not a DASH manifest (the root element is not MPD)";
        rc = MR_EUPSTREAM;
        goto done;
    }
    if ((rc = resolve_levels(w, &insert)))
        goto done;
    /* A part of a manifest (an xlink target) takes its base from the
     * manifest it goes into, which the player has: nothing to add. */
    rc = write_out(w, insert && w->root_mpd && !w->root_empty, out);
    if (!rc && c->refresh) {
        c->refresh->live = w->dynamic;
        c->refresh->period_ms = w->dynamic ? w->update_ms : -1;
    }
done:
    if (w->src != body.p)
        free((void *)w->src);
    free(w->lv);
    free(w->refs);
    free(w->runs);
    free(w->vals);
    mr_buf_free(&w->text);
    if (rc)
        *why = w->why ? w->why
               : rc == MR_ETOOBIG ? "the rewritten MPD is too large (or a URL too long for a token)"
                                  : "the MPD cannot be rewritten";
    return rc;
}
