/* m3u8.h - the HLS playlist rewriter: playlist bytes + final URL -> bytes.
 *
 * A pure function: every URI of the playlist (RFC 8216bis: URI lines and the
 * URI attribute of EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-KEY,
 * EXT-X-SESSION-KEY, EXT-X-MAP, EXT-X-PART, EXT-X-PRELOAD-HINT,
 * EXT-X-RENDITION-REPORT, EXT-X-SESSION-DATA) is resolved against the
 * playlist's final URL and replaced by a signed relay URL; every other byte
 * is kept (tags, comments, blank lines, attribute order and quoting, CRLF or
 * LF, a missing last newline).  Playlist-like URIs (variant lines, URI= of
 * EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-RENDITION-REPORT) become
 * PREFIX/api/m3u8/TOKEN.m3u8, the others PREFIX/api/seg/TOKEN[.ext] with the
 * upstream file's extension.  skd:// and data: URIs stay as they are.
 * EXT-X-DEFINE variables ({$name}: NAME/VALUE, QUERYPARAM, IMPORT) are
 * substituted in URIs before resolving, as a player would.
 *
 * Knows nothing of FastCGI or the network, so unit tests and the fuzzer
 * call it directly.
 */
#ifndef MR_M3U8_H
#define MR_M3U8_H

#include <stdbool.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/str.h"

struct mr_token_key;

/* Token payload kinds (the first byte of a token's data). */
#define MR_TOKEN_PLAYLIST 'p'
#define MR_TOKEN_SEGMENT  's'

/* How often a manifest changes, as its engine read it while rewriting it
 * (the HLS rewriter here, the MPD one in mpd.h): what the relay's playlist
 * cache needs to say how long a rewritten copy stays fresh. */
struct mr_manifest_refresh {
    bool live;           /* HLS: EXT-X-TARGETDURATION and no EXT-X-ENDLIST;
                            DASH: the MPD's type="dynamic" */
    long period_ms;      /* HLS: the target duration (0 when it has no digits);
                            DASH: minimumUpdatePeriod (xs:duration), -1 when
                            absent or not of the form PnDTnHnMnS */
};

struct mr_m3u8_ctx {
    const struct mr_token_key *key;
    const char *prefix;              /* before "/api/...": "" or "https://relay.example/x" */
    const char *scope;               /* what the tokens are bound to: "m:intro", "c:news" */
    time_t expire_at;                /* of every token made */
    const struct mr_headers *imports;/* EXT-X-DEFINE:IMPORT values, or NULL */
    size_t max_bytes;                /* input cap; 0 = MR_M3U8_MAX_BYTES */
    /* Position hints for media whose links expire (a provider's): relay
     * URLs get an unsigned query saying where the URI sits -- "?v=K" on the
     * K-th playlist of a master (variants, renditions, I-frame playlists,
     * counted from 0), "?n=MSN" on a segment (its media sequence number),
     * with "&v=K" when this playlist is itself the master's K-th.  They
     * only guide mr_m3u8_find after the link expired, within the scope the
     * token binds, so they need no signature.  Only values a request may
     * send back are written (mr_m3u8_hint): no "v" past
     * MR_M3U8_MAX_VARIANTS. */
    bool locate;
    long variant;                    /* this playlist's K, or -1 */
    struct mr_manifest_refresh *refresh; /* out, or NULL: filled on success */
};

/* Rewrites `body` (fetched from `final_url`, after redirects) into `out`
 * (a buffer the caller initialized; its cap is respected).  MR_EUPSTREAM
 * with `why` (static text) for a body that is not a playlist or holds a URI
 * with control bytes; MR_ETOOBIG past the size or line cap. */
int mr_m3u8_rewrite(struct mr_arena *a, const struct mr_m3u8_ctx *c, struct mr_str body,
                    const char *final_url, struct mr_buf *out, const char **why);

/* The token data for a URI: kind, scope, '\n', absolute URL, and for a
 * playlist of a playlist that defined variables, '\n' and those variables
 * as name=value&... (values percent-encoded), for the nested playlist's
 * EXT-X-DEFINE:IMPORT.  Parses it back (*vars "" when there are none):
 * MR_EFORBIDDEN when it is not of that shape. */
int mr_m3u8_token_data(struct mr_str data, char *kind, struct mr_str *scope,
                       struct mr_str *url, struct mr_str *vars);
/* Those variables as name/value pairs (arena), for mr_m3u8_ctx.imports. */
int mr_m3u8_parse_vars(struct mr_arena *a, struct mr_str vars, struct mr_headers *out);

/* A position hint's value as a request carries it (the "v" or "n" of a
 * relay URL's query, unsigned): plain decimal digits, at most `max`
 * (MR_M3U8_MAX_VARIANTS - 1 for "v", MR_M3U8_MAX_MSN for "n": no playlist
 * can present more); else -1, the same as no hint.  A hint is only ever
 * compared with the positions of a fetched playlist. */
long long mr_m3u8_hint(const char *v, long long max);

/* What to look for in a freshly fetched playlist, for a URI whose link
 * expired: the same path (its query, host and scheme may have changed),
 * else the position the hints gave (-1: none). */
struct mr_m3u8_want {
    const char *path;                /* the old URL's path, without its query */
    long variant;                    /* in a master: its K-th playlist */
    long long msn;                   /* in a media playlist: this segment */
};

/* Finds `want` in `body` (fetched from final_url): *url the absolute URL
 * (arena): the one URI with the same path, else the one at the position
 * (want->variant in a master: *nested says it is a playlist to look in
 * next; want->msn in a media playlist), else the first with the same path.
 * Lines are read as the rewriter reads them (BOM, CRLF); EXT-X-DEFINE
 * variables are not substituted.  The caller bounds body.len.
 * MR_ENOTFOUND when nothing fits. */
int mr_m3u8_find(struct mr_arena *a, struct mr_str body, const char *final_url,
                 const struct mr_m3u8_want *want, char **url, bool *nested);

/* The path of an absolute URL, without query or fragment (arena), or NULL. */
char *mr_m3u8_url_path(struct mr_arena *a, const char *url);

/* Whether the body looks like a playlist (after an optional BOM, its first
 * line that is not blank begins with #EXTM3U, comments allowed before). */
bool mr_m3u8_is_playlist(struct mr_str body);

#endif
