/* scope.h - what a relay token is bound to, opened for a request.
 *
 * The tokens that playlists and MPDs are rewritten with (format/m3u8.h,
 * format/mpd.h) seal a scope: "m:{media}[/{t}]" (a media item, and which of
 * its sources ?t= named: its provider's header policy applies upstream),
 * "c:{channel}" (the channel's headers), "u:{host}" (an allow-listed /stream
 * URL: none) or "s:{host}" (a signed /stream link: none, and no token made
 * under it outlives the token it came from, so none outlives the link).
 * Here: opening a token and its scope, answering a bad one, and what the
 * scope means for the relay (its policy, stats identity, cache key).
 */
#ifndef MR_SCOPE_H
#define MR_SCOPE_H

#include <stdbool.h>
#include <time.h>

#include "core/str.h"

struct mr_ctx;
struct mr_media;
struct mr_relay;

/* What a token's scope means for this request. */
struct mr_scope {
    struct mr_headers policy;          /* headers the upstream wants */
    const char *kind, *id;             /* the stats identity */
    bool members_only;                 /* a media item with a room */
    const struct mr_media *media;      /* the media item, when its provider's
                                          links may expire (provider.remote) */
    const char *t;                     /* "m:ID/NAME": which of its sources
                                          (?t=NAME), else NULL */
};

/* The token out of "token[.ext]" (a route's capture), verified: *data is
 * what it sealed, *exp when it expires.  mr_token_verify's errors. */
int mr_scope_open_token(struct mr_ctx *ctx, struct mr_str cap, struct mr_str *data, time_t *exp);

/* Opens a token's scope: the channel or media item it is bound to, its
 * header policy and stats identity.  A media item with a room is for its
 * members on every path, as on its own routes: checked before anything is
 * resolved.  MR_OK, or an error: answered already when the room refused
 * the request (ctx->resp.headers_sent), else for mr_scope_token_error. */
int mr_scope_open(struct mr_ctx *ctx, struct mr_str scope, struct mr_scope *out);

/* Answers a token that could not be opened (rc: the error of
 * mr_scope_open_token or mr_scope_open): expired, its item or channel
 * gone, else a bad token (403).  Returns rc. */
int mr_scope_token_error(struct mr_ctx *ctx, int rc);

/* How long the tokens a rewrite under `scope` makes may live, when the
 * token that opened it (expiring at exp) says: those of a signed /stream
 * link ("s:") never outlive the link, so none outlives the token it came
 * from.  0: the relay's own token expiry. */
time_t mr_scope_cap(struct mr_str scope, time_t exp);

/* What a segment is cached under: its URL, without the query for a channel
 * whose upstream rotates tokens in it (arena), or NULL (no memory). */
const char *mr_scope_cache_key(struct mr_ctx *ctx, struct mr_str scope, struct mr_str url);

/* The scope's policy, stats identity and room on a relay. */
void mr_scope_relay(struct mr_relay *r, const struct mr_scope *sco);

#endif
