/* mpd.c - rewriting DASH manifests so every segment comes back through the relay.
 *
 * libxml2 parses the MPD into a tree.  Its SAX hooks are wrapped: the
 * start-element hook counts elements and depth and stops the parser past
 * the caps (so no huge tree is ever built), and any entity declaration or
 * entity reference stops it too, before anything is expanded or loaded.
 * One recursive walk then rewrites URL-bearing text and attributes in
 * place, carrying the effective upstream base down the levels, and libxml2
 * serializes the tree, unformatted, straight into the caller's capped
 * buffer.
 *
 * URLs are resolved with the URL module (curl's URL API).  An absolute URL
 * already in the form curl would give skips curl, and URLs that share a
 * directory share one token: a SegmentList of ten thousand absolute
 * SegmentURLs costs one HMAC.
 */
#include "mpd.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "error.h"
#include "limits.h"
#include "token.h"
#include "url.h"

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

/* What the parser hooks found. */
struct parse_state {
    startElementNsSAX2Func start;    /* libxml2's own */
    size_t nodes;
    int rc;
    const char *why;
};

struct rw {
    struct mr_arena *a;
    const struct mr_mpd_ctx *c;
    const char *final_url;
    xmlDocPtr doc;
    const xmlChar *ns;               /* the DASH namespace (the root's), or NULL */
    const char *prefix;              /* c->prefix, "" for NULL */
    size_t prefix_len;
    size_t scope_len;
    char *data;                      /* kind scope '\n' URL: token data */
    char *scratch;                   /* one relay URL, before libxml2 copies it */
    size_t scratch_size;
    /* The last directory signed and its token (data and token lengths). */
    size_t last_dlen;
    char *last_tok;
    size_t last_tlen;
    bool need_doc_base;              /* a relative name with no BaseURL above it */
    const char *why;
};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

/* ---- parsing ---------------------------------------------------------------- */

static void stop(void *ctx, int rc, const char *why)
{
    xmlParserCtxtPtr p = ctx;
    struct parse_state *st = p->_private;

    if (!st->rc) {
        st->rc = rc;
        st->why = why;
    }
    xmlStopParser(p);
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                     const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
                     int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    xmlParserCtxtPtr p = ctx;
    struct parse_state *st = p->_private;

    if (++st->nodes > MR_MPD_MAX_NODES) {
        stop(ctx, MR_ETOOBIG, "the MPD has more elements than the limit");
        return;
    }
    /* nameNr: the open elements around this one */
    if (p->nameNr >= MR_MPD_MAX_DEPTH) {
        stop(ctx, MR_ETOOBIG, "the MPD nests elements deeper than the limit");
        return;
    }
    st->start(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
              nb_defaulted, attributes);
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                           const xmlChar *system_id, xmlChar *content)
{
    (void)name;
    (void)type;
    (void)public_id;
    (void)system_id;
    (void)content;
    stop(ctx, MR_EUPSTREAM, "the MPD declares XML entities (refused)");
}

static void on_reference(void *ctx, const xmlChar *name)
{
    (void)name;
    stop(ctx, MR_EUPSTREAM, "the MPD references an undeclared XML entity");
}

static xmlParserInputPtr on_resolve(void *ctx, const xmlChar *public_id, const xmlChar *system_id)
{
    (void)public_id;
    (void)system_id;
    stop(ctx, MR_EUPSTREAM, "the MPD refers to an external XML resource");
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

/* The document, or MR_EUPSTREAM / MR_ETOOBIG with *why. */
static int parse(struct mr_str body, xmlDocPtr *out, const char **why)
{
    struct parse_state st = { 0 };
    xmlParserCtxtPtr p;
    xmlDocPtr doc;
    int rc = MR_OK;

    *out = NULL;
    pthread_once(&xml_once, xml_init);
    p = xmlCreateMemoryParserCtxt(body.p, (int)body.len);
    if (!p)
        return MR_ENOMEM;
    xmlCtxtUseOptions(p, PARSE_OPTIONS);
    p->_private = &st;
    st.start = p->sax->startElementNs ? p->sax->startElementNs : xmlSAX2StartElementNs;
    p->sax->startElementNs = on_start;
    p->sax->entityDecl = on_entity_decl;
    p->sax->reference = on_reference;
    p->sax->resolveEntity = on_resolve;
    p->sax->externalSubset = on_external_subset;
    p->sax->serror = on_error;
    p->sax->error = NULL;
    p->sax->warning = NULL;
    p->vctxt.error = NULL;
    p->vctxt.warning = NULL;
    xmlParseDocument(p);
    doc = p->myDoc;
    p->myDoc = NULL;
    if (st.rc) {
        rc = st.rc;
        *why = st.why;
    } else if (!p->wellFormed || !doc || !xmlDocGetRootElement(doc)) {
        rc = MR_EUPSTREAM;
        *why = p->errNo == XML_ERR_DOCUMENT_EMPTY ? "the MPD is empty"
                                                  : "the MPD is not well-formed XML";
    }
    xmlFreeParserCtxt(p);
    if (rc) {
        xmlFreeDoc(doc);
        return rc;
    }
    *out = doc;
    return MR_OK;
}

/* ---- URLs --------------------------------------------------------------------- */

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
static bool stays_under(struct mr_str t)
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
        if (c <= 0x20 || c == 0x7f || c == '\\' || c == '#')
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
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#')
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

/* The token for data kind scope '\n' url[0..n) into w->last_tok, kept for
 * the next URL with the same data. */
static int sign(struct rw *w, char kind, const char *url, size_t n)
{
    size_t head = 2 + w->scope_len, dlen = head + n;

    if (dlen > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    if (w->last_tok && w->last_dlen == dlen && w->data[0] == kind &&
        !memcmp(w->data + head, url, n))
        return MR_OK;
    w->data[0] = kind;
    memcpy(w->data + head, url, n);
    w->last_dlen = dlen;
    w->last_tlen = mr_token_len(dlen);
    w->last_tok = w->scratch + w->scratch_size - w->last_tlen - 1;
    return mr_token_sign_to(w->c->key, w->c->expire_at, w->data, dlen, w->last_tok);
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
    *out = w->scratch;
    return MR_OK;
}

/* The relay URL of an upstream URL under a signed directory:
 * PREFIX/api/seg/TOKEN/ and what follows the directory. */
static int seg_url(struct rw *w, const char *abs, bool template, const char **out)
{
    size_t n = dir_len(abs, template);
    int rc;

    *out = NULL;
    if (!n)
        return MR_OK;
    if ((rc = sign(w, MR_TOKEN_DIR, abs, n)))
        return rc;
    return relay_url(w, "/api/seg/", (struct mr_str){ abs + n - 1, strlen(abs + n - 1) },
                     out);
}

/* The relay URL of a manifest (or a part of one): PREFIX/api/m3u8/TOKEN.mpd */
static int manifest_url(struct rw *w, const char *abs, const char **out)
{
    int rc = sign(w, MR_TOKEN_PLAYLIST, abs, strlen(abs));
    return rc ? rc : relay_url(w, "/api/m3u8/", MR_STR(".mpd"), out);
}

/* ---- the tree ----------------------------------------------------------------- */

static bool xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The text of an element, or the value of an attribute (cast), trimmed:
 * pointing into the tree (valid until it changes) or into the arena. */
static int node_text(struct rw *w, xmlNodePtr n, const char **out)
{
    xmlNodePtr c = n->children;
    const char *s;
    size_t len;

    if (!c) {
        s = "";
    } else if (!c->next && c->type == XML_TEXT_NODE && c->content) {
        s = (const char *)c->content;
    } else {
        xmlChar *t = xmlNodeGetContent(n);
        if (!t)
            return MR_ENOMEM;
        s = mr_arena_strdup(w->a, (const char *)t);
        xmlFree(t);
        if (!s)
            return MR_ENOMEM;
    }
    while (xml_space(*s))
        s++;
    len = strlen(s);
    if (len && xml_space(s[len - 1])) {
        while (len && xml_space(s[len - 1]))
            len--;
        if (!(s = mr_arena_strndup(w->a, s, len)))
            return MR_ENOMEM;
    }
    *out = s;
    return MR_OK;
}

static int set_text(struct rw *w, xmlNodePtr n, const char *s)
{
    xmlNodePtr t = xmlNewDocText(w->doc, (const xmlChar *)s);

    if (!t)
        return MR_ENOMEM;
    while (n->children) {
        xmlNodePtr c = n->children;
        xmlUnlinkNode(c);
        xmlFreeNode(c);
    }
    xmlAddChild(n, t);
    return MR_OK;
}

static int set_attr(xmlAttrPtr at, const char *s)
{
    xmlNodePtr t = at->children;

    /* The usual value, one text node: its content replaced (one copy). */
    if (t && !t->next && t->type == XML_TEXT_NODE) {
        xmlNodeSetContent(t, (const xmlChar *)s);
        return t->content ? MR_OK : MR_ENOMEM;
    }
    return xmlSetNsProp(at->parent, at->ns, at->name, (const xmlChar *)s) ? MR_OK : MR_ENOMEM;
}

static bool same_ns(const struct rw *w, xmlNsPtr ns)
{
    if (!w->ns)
        return !ns || !ns->href;
    return ns && ns->href && !strcmp((const char *)ns->href, (const char *)w->ns);
}

static bool is_dash(const struct rw *w, xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name) &&
           same_ns(w, n->ns);
}

/* A segment-like URL attribute (a template, perhaps) seen against `base`:
 * left as it is when it stays under the relay's BaseURL by itself, else
 * resolved and made a relay URL of its own. */
static int url_attr(struct rw *w, xmlAttrPtr at, const char *base, bool based)
{
    const char *v, *relay;
    char *abs;
    int rc;

    if ((rc = node_text(w, (xmlNodePtr)at, &v)))
        return rc;
    if (!*v)
        return MR_OK;
    if (stays_under(mr_str_c(v))) {
        if (!based)
            w->need_doc_base = true;
        return MR_OK;
    }
    if ((rc = resolve(w, base, v, &abs)) || !abs)
        return rc;
    if ((rc = seg_url(w, abs, true, &relay)) || !relay)
        return rc;
    return set_attr(at, relay);
}

/* A reference the player fetches as a manifest (Location, PatchLocation,
 * xlink:href), resolved against the MPD's URL. */
static int manifest_ref(struct rw *w, const char *v, xmlNodePtr elem, xmlAttrPtr at)
{
    const char *relay;
    char *abs;
    int rc;

    if (!*v || !strcmp(v, RESOLVE_TO_ZERO))
        return MR_OK;
    if ((rc = resolve(w, w->final_url, v, &abs)) || !abs)
        return rc;
    if ((rc = manifest_url(w, abs, &relay)))
        return rc;
    return at ? set_attr(at, relay) : set_text(w, elem, relay);
}

/* SEA (ISO/IEC 23009-4) keys are fetched by the player like segments:
 * CryptoPeriod@keyUriTemplate, anywhere inside a ContentProtection, which
 * is otherwise left alone. */
static int sea_keys(struct rw *w, xmlNodePtr n, const char *base, bool based, int depth)
{
    int rc;

    if (depth > MR_MPD_MAX_DEPTH)
        return MR_ETOOBIG;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)c->name, "CryptoPeriod") && c->ns && c->ns->href &&
            !strcmp((const char *)c->ns->href, SEA_NS)) {
            for (xmlAttrPtr at = c->properties; at; at = at->next)
                if (!at->ns && !strcmp((const char *)at->name, "keyUriTemplate") &&
                    (rc = url_attr(w, at, base, based)))
                    return rc;
        }
        if ((rc = sea_keys(w, c, base, based, depth + 1)))
            return rc;
    }
    return MR_OK;
}

/* Rewrites element n, whose enclosing level's effective upstream base is
 * `base` (`based`: through some BaseURL, not the MPD's own URL), and what
 * is under it. */
static int walk(struct rw *w, xmlNodePtr n, const char *base, bool based, int depth)
{
    const char *eff = NULL, *v;
    bool has_base = false, url_elem = false;
    int rc;

    if (depth > MR_MPD_MAX_DEPTH)
        return MR_ETOOBIG;
    for (size_t i = 0; i < sizeof(url_attrs) / sizeof(url_attrs[0]) && !url_elem; i++)
        url_elem = !strcmp((const char *)n->name, url_attrs[i].elem);
    /* Its attributes: xlink:href, and the URLs of segment elements. */
    for (xmlAttrPtr at = n->properties; at; at = at->next) {
        if (at->ns) {
            if (at->ns->href && !strcmp((const char *)at->ns->href, XLINK_NS) &&
                !strcmp((const char *)at->name, "href")) {
                if ((rc = node_text(w, (xmlNodePtr)at, &v)) ||
                    (rc = manifest_ref(w, v, n, at)))
                    return rc;
            }
            continue;
        }
        if (!url_elem)
            continue;
        for (size_t i = 0; i < sizeof(url_attrs) / sizeof(url_attrs[0]); i++)
            if (!strcmp((const char *)at->name, url_attrs[i].attr) &&
                !strcmp((const char *)n->name, url_attrs[i].elem)) {
                if ((rc = url_attr(w, at, base, based)))
                    return rc;
                break;
            }
    }
    /* Its BaseURLs (wherever they are among the children), each against
     * the enclosing base; the first usable one is the base of the rest. */
    for (xmlNodePtr c = n->children; c; c = c->next) {
        const char *relay;
        char *abs;
        if (!is_dash(w, c, "BaseURL"))
            continue;
        has_base = true;
        if ((rc = node_text(w, c, &v)) || (rc = resolve(w, base, v, &abs)))
            return rc;
        if (!abs)
            continue;
        if (abs == v && !(abs = mr_arena_strdup(w->a, v)))
            return MR_ENOMEM;   /* v is in the text about to be replaced */
        if ((rc = seg_url(w, abs, false, &relay)))
            return rc;
        if (!relay)
            continue;
        if ((rc = set_text(w, c, relay)))
            return rc;
        if (!eff)
            eff = abs;
    }
    if (!eff)
        eff = base;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || !same_ns(w, c->ns) ||
            !strcmp((const char *)c->name, "BaseURL"))
            continue;
        if (!strcmp((const char *)c->name, "Location") ||
            !strcmp((const char *)c->name, "PatchLocation")) {
            if ((rc = node_text(w, c, &v)) || (rc = manifest_ref(w, v, c, NULL)))
                return rc;
        } else if (!strcmp((const char *)c->name, "SegmentTimeline")) {
            continue;   /* S elements, thousands of them, and no URL */
        } else if (!strcmp((const char *)c->name, "ContentProtection")) {
            if ((rc = sea_keys(w, c, eff, based || has_base, depth + 1)))
                return rc;
        } else if ((rc = walk(w, c, eff, based || has_base, depth + 1))) {
            return rc;
        }
    }
    return MR_OK;
}

/* A BaseURL for the MPD's own directory, as the root's first child. */
static int insert_doc_base(struct rw *w, xmlNodePtr root)
{
    const char *relay;
    char *abs;
    xmlNodePtr b;
    int rc;

    if ((rc = mr_url_normalize(w->a, w->final_url, &abs)))
        return rc;
    /* Only the directory: the MPD's own name and query are not a base. */
    abs[dir_len(abs, false)] = '\0';
    if ((rc = seg_url(w, abs, false, &relay)) || !relay)
        return rc ? rc : MR_EINVAL;
    b = xmlNewDocNode(w->doc, root->ns, (const xmlChar *)"BaseURL", NULL);
    if (!b)
        return MR_ENOMEM;
    if ((rc = set_text(w, b, relay))) {
        xmlFreeNode(b);
        return rc;
    }
    if (root->children)
        xmlAddPrevSibling(root->children, b);
    else
        xmlAddChild(root, b);
    return MR_OK;
}

/* ---- output --------------------------------------------------------------------- */

struct sink {
    struct mr_buf *out;
    int rc;
};

static int sink_write(void *ctx, const char *p, int n)
{
    struct sink *s = ctx;
    int rc = mr_buf_append(s->out, p, (size_t)n);

    if (rc) {
        if (!s->rc)
            s->rc = rc;
        return -1;
    }
    return n;
}

static int sink_close(void *ctx)
{
    (void)ctx;
    return 0;
}

static void quiet(void *ctx, const char *fmt, ...)
{
    (void)ctx;
    (void)fmt;
}

static int serialize(xmlDocPtr doc, struct mr_buf *out)
{
    struct sink s = { out, MR_OK };
    /* A write refused at the cap is an I/O error to libxml2, which would
     * print it: its error handlers are per thread, silenced for the save. */
    xmlGenericErrorFunc old = xmlGenericError;
    void *old_ctx = xmlGenericErrorContext;
    xmlStructuredErrorFunc old_s = xmlStructuredError;
    void *old_s_ctx = xmlStructuredErrorContext;
    xmlSaveCtxtPtr save;
    long r = -1;

    xmlSetGenericErrorFunc(NULL, quiet);
    xmlSetStructuredErrorFunc(NULL, on_error);
    save = xmlSaveToIO(sink_write, sink_close, &s, "UTF-8", 0);
    if (save) {
        r = xmlSaveDoc(save, doc);
        if (xmlSaveClose(save) < 0)
            r = -1;
    }
    xmlSetGenericErrorFunc(old_ctx, old);
    xmlSetStructuredErrorFunc(old_s_ctx, old_s);
    if (r < 0)
        return s.rc ? s.rc : MR_ENOMEM;
    return s.rc;
}

/* ---- the entry points ----------------------------------------------------------- */

int mr_mpd_rewrite(struct mr_arena *a, const struct mr_mpd_ctx *c, struct mr_str body,
                   const char *final_url, struct mr_buf *out, const char **why)
{
    static const char *const roots[] = {
        "MPD", "Period", "AdaptationSet", "EventStream", "SegmentList", NULL
    };
    size_t cap = c->max_bytes ? c->max_bytes : MR_MPD_MAX_BYTES;
    xmlDocPtr doc = NULL;
    xmlNodePtr root;
    struct rw *w;
    bool known = false;
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
    w->scope_len = c->scope ? strlen(c->scope) : 0;
    w->data = mr_arena_alloc(a, 2 + w->scope_len + MR_TOKEN_MAX_DATA);
    /* a relay URL (prefix, route, token, a tail as long as a URL) and,
     * at its end, the last token */
    w->scratch_size = w->prefix_len + 16 + 2 * mr_token_len(MR_TOKEN_MAX_DATA) + MR_URL_MAX + 2;
    w->scratch = mr_arena_alloc(a, w->scratch_size);
    if (!w->data || !w->scratch)
        return MR_ENOMEM;
    if (w->scope_len)
        memcpy(w->data + 1, c->scope, w->scope_len);
    w->data[1 + w->scope_len] = '\n';

    if ((rc = parse(body, &doc, why)))
        return rc;
    w->doc = doc;
    root = xmlDocGetRootElement(doc);
    for (int i = 0; roots[i]; i++)
        known |= !strcmp((const char *)root->name, roots[i]);
    if (!known) {
        *why = "not a DASH manifest (the root element is not MPD)";
        rc = MR_EUPSTREAM;
        goto done;
    }
    w->ns = root->ns ? root->ns->href : NULL;
    if ((rc = walk(w, root, final_url, false, 1)))
        goto done;
    /* A part of a manifest (an xlink target) takes its base from the
     * manifest it goes into, which the player has: nothing to add. */
    if (w->need_doc_base && !strcmp((const char *)root->name, "MPD") &&
        (rc = insert_doc_base(w, root)))
        goto done;
    rc = serialize(doc, out);
done:
    xmlFreeDoc(doc);
    if (rc && !*why)
        *why = w->why ? w->why
               : rc == MR_ETOOBIG ? "the rewritten MPD is too large (or a URL too long for a token)"
                                  : "the MPD cannot be rewritten";
    return rc;
}

int mr_mpd_token_data(struct mr_str data, char *kind, struct mr_str *scope, struct mr_str *url)
{
    struct mr_str head, rest;

    if (data.len < 3 || (data.p[0] != MR_TOKEN_DIR && data.p[0] != MR_TOKEN_PLAYLIST))
        return MR_EFORBIDDEN;
    rest = mr_str_cut((struct mr_str){ data.p + 1, data.len - 1 }, '\n', &head);
    if (!rest.p || !rest.len || memchr(rest.p, '\n', rest.len))
        return MR_EFORBIDDEN;
    if (!mr_str_starts_c(rest, "http://") && !mr_str_starts_c(rest, "https://"))
        return MR_EFORBIDDEN;
    if (data.p[0] == MR_TOKEN_DIR &&
        (rest.p[rest.len - 1] != '/' || memchr(rest.p, '?', rest.len) ||
         memchr(rest.p, '#', rest.len)))
        return MR_EFORBIDDEN;
    *kind = data.p[0];
    *scope = head;
    *url = rest;
    return MR_OK;
}

int mr_mpd_join_tail(struct mr_arena *a, const char *prefix_url, struct mr_str tail, char **out)
{
    size_t n;

    *out = NULL;
    if (!prefix_url || !mr_url_is_http(prefix_url) || !strstr(prefix_url, "://"))
        return MR_EFORBIDDEN;
    n = strlen(prefix_url);
    if (!n || prefix_url[n - 1] != '/' || strpbrk(prefix_url, "?#") ||
        mr_url_has_ctl(mr_str_c(prefix_url)))
        return MR_EFORBIDDEN;
    if (tail.len && !tail.p)
        return MR_EFORBIDDEN;
    if (!stays_under(tail))
        return MR_EFORBIDDEN;
    if (n + tail.len > MR_URL_MAX)
        return MR_ETOOBIG;
    *out = mr_arena_alloc(a, n + tail.len + 1);
    if (!*out)
        return MR_ENOMEM;
    memcpy(*out, prefix_url, n);
    if (tail.len)
        memcpy(*out + n, tail.p, tail.len);
    (*out)[n + tail.len] = '\0';
    return MR_OK;
}
