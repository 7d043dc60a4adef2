/* mpd.h - the DASH manifest rewriter: MPD bytes + final URL -> bytes.
 *
 * A pure function, like the HLS rewriter.  The MPD is parsed with libxml2
 * (no network, no DTD loading, no entity substitution; a document that
 * declares entities is refused, so neither an external entity nor an entity
 * bomb gets anywhere), but no tree is built and nothing is serialized: the
 * output is the input's own bytes with only the rewritten values replaced
 * (an attribute's value between its quotes, a BaseURL's or Location's text
 * between the whitespace around it), each written XML-escaped for where it
 * goes.  Everything else stays byte for byte: the BOM, the XML declaration,
 * CRLF, quotes, <x></x>, namespaces and prefixes, ContentProtection and its
 * children, unknown elements and attributes, comments, attribute order.  A
 * rewritten text is all replaced: CDATA or comments inside a BaseURL do not
 * stay (its text, CDATA included, is what is resolved), and <BaseURL/>
 * gets an end tag.  The body must be UTF-8 (or ASCII, whatever it declares).
 *
 * What is rewritten (ISO/IEC 23009-1 5.6: each BaseURL resolves against its
 * parent level's effective base, the first level being the MPD's URL):
 * - every BaseURL (MPD, Period, AdaptationSet, Representation; several at
 *   one level are all kept, in order) becomes PREFIX/api/seg/TOKEN/ and its
 *   file part, if any: the token signs 'd' scope '\n' and the resolved
 *   URL's directory (up to its last '/'), so SegmentTemplate, SegmentList,
 *   SegmentBase, Initialization and RepresentationIndex references that are
 *   plain relative names resolve under the relay by themselves, and the
 *   segment endpoint joins the rest (mr_mpd_join_tail).  When such a name
 *   has no BaseURL above it, one for the MPD's own directory is inserted as
 *   the first child of the root.  Children resolve against the first
 *   usable BaseURL of their parent level.
 * - URL attributes that would not resolve under a relay base by themselves
 *   (absolute, protocol- or root-relative, dot segments: SegmentTemplate
 *   @media @initialization @index @bitstreamSwitching, SegmentURL @media
 *   @index, Initialization, RepresentationIndex and BitstreamSwitching
 *   @sourceURL, SEA CryptoPeriod@keyUriTemplate) are resolved and become
 *   PREFIX/api/seg/TOKEN/REST, the token signing the directory before the
 *   first template identifier ($...$), REST the remaining template.
 * - Queries are secrets (CDN signatures): a URL's query goes into its
 *   token, after the directory ('?' QUERY), and REST is the path alone; the
 *   segment endpoint puts the query back.  So a relative reference with a
 *   query is made a relay URL of its own too.  A query with template
 *   identifiers stays in REST as well (the player fills it in; the
 *   endpoint takes the player's query only in that shape).  A BaseURL that
 *   is a directory with a query ("v/?auth=x") gives its children no query,
 *   as RFC 3986 resolution would not; a BaseURL naming a file keeps its.
 * - Location, PatchLocation and remote xlink:href (not resolve-to-zero)
 *   become PREFIX/api/m3u8/TOKEN.mpd, the token signing 'p' scope '\n' and
 *   the absolute URL (resolved against the MPD's URL).
 * Everything else, license URLs in ContentProtection included, is left
 * as it is.  Tokens are deterministic: the same input gives the same bytes.
 */
#ifndef MR_MPD_H
#define MR_MPD_H

#include <stdbool.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/str.h"
#include "format/m3u8.h"   /* MR_TOKEN_PLAYLIST: one namespace of token kinds */

struct mr_token_key;

/* Token data kind of a signed URL prefix (a directory). */
#define MR_TOKEN_DIR 'd'

struct mr_mpd_ctx {
    const struct mr_token_key *key;
    const char *prefix;          /* before "/api/...": "" or "https://relay.example/x" */
    const char *scope;           /* what the tokens are bound to: "m:intro" */
    time_t expire_at;            /* of every token made */
    size_t max_bytes;            /* input cap; 0 = MR_MPD_MAX_BYTES */
    struct mr_manifest_refresh *refresh; /* out, or NULL: on success, whether
                                            the root MPD is type="dynamic" and
                                            its minimumUpdatePeriod */
};

/* Rewrites `body` (fetched from `final_url`, an absolute http(s) URL, after
 * redirects) into `out` (a buffer the caller initialized; its cap is
 * respected).  The arena holds the values found (about the size of the
 * URLs rewritten); the parser's memory is freed before returning.
 * MR_EUPSTREAM with `why` (static text) for a body that is not well-formed
 * XML, declares entities, is not UTF-8 (nor ASCII), or is not an MPD (its
 * root is not MPD, or an element an xlink may point at: Period,
 * AdaptationSet, EventStream, SegmentList); MR_ETOOBIG past the size,
 * depth (MR_MPD_MAX_DEPTH) or element (MR_MPD_MAX_NODES) cap, or the
 * output's cap; MR_EINVAL when final_url is not an absolute http(s) URL. */
int mr_mpd_rewrite(struct mr_arena *a, const struct mr_mpd_ctx *c, struct mr_str body,
                   const char *final_url, struct mr_buf *out, const char **why);

/* The query a directory token holds for the segments under it, and for a
 * BaseURL naming a file, the one name the query is that file's (the names
 * beside it resolve without it, as RFC 3986 has it); MR_STR_NULL each when
 * there is none. */
struct mr_dir_query {
    struct mr_str query;
    struct mr_str name;
};

/* Parses token data made by the rewriter: kind (MR_TOKEN_DIR or
 * MR_TOKEN_PLAYLIST), scope, '\n', absolute URL.  For MR_TOKEN_DIR the URL
 * is a directory URL, ending in '/', then optionally '?' and the query of
 * the segment URLs under it, and after it optionally '\n' and the name it
 * belongs to (*query): the MPD's own, which the player never sees.
 * Everything points into data.  MR_EFORBIDDEN when it is not of that
 * shape. */
int mr_mpd_token_data(struct mr_str data, char *kind, struct mr_str *scope,
                      struct mr_str *url, struct mr_dir_query *query);

/* The upstream URL of a request under a signed directory: `prefix_url`
 * (the directory), the request's tail (what follows "/api/seg/TOKEN/" in
 * its path, still percent-encoded) as bytes, nothing decoded or re-encoded,
 * and a query:
 * - the token's query when it has one without template identifiers (and
 *   no name, or the tail is that name):
 *   the client's own query is ignored (it cannot reach the upstream, the
 *   cache key or the origin's load);
 * - when the token's query has identifiers ("n=$Number$"), the client's
 *   query if it is that template filled in (each identifier 1-64 of
 *   [A-Za-z0-9._~-]), else MR_EFORBIDDEN;
 * - none when the token has none, whatever the client sent.
 * *out is arena-allocated.  MR_EFORBIDDEN for a tail that could leave the
 * prefix or is not a plain relative path: a '?', a leading '/', a scheme,
 * an empty segment ("a//b"), "." or ".." segments (also percent-encoded:
 * %2e), %2f or %5c in the path, a backslash, '#', a space, a control byte
 * or %00 anywhere, a malformed escape; and for a prefix_url that is not an
 * http(s) directory URL.  An empty tail is the directory itself.
 * MR_ETOOBIG when the result is longer than MR_URL_MAX. */
int mr_mpd_join_tail(struct mr_arena *a, const char *prefix_url, struct mr_str tail,
                     struct mr_dir_query query, struct mr_str client_query, char **out);

/* Whether t is a relative reference that stays under any directory it is
 * resolved against (the rules mr_mpd_join_tail lists); the rewriter leaves
 * such references as they are. */
bool mr_mpd_stays_under(struct mr_str t);

#endif
