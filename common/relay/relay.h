/* relay.h - the stream pump: one upstream response relayed to the client.
 *
 * Upstream bytes go to the client as they arrive (curl's write callback ->
 * the FastCGI record writer); nothing holds a body.  The client's Range and
 * conditional headers are forwarded with the item's header policy; status
 * and the entity headers come back; a 403 is retried once without Referer
 * and Origin; an upstream error status is answered as a JSON error with the
 * same status; a client that leaves stops the upstream transfer within a
 * second; a body that breaks off midway ends the client's response without
 * a clean end.
 */
#ifndef MR_RELAY_H
#define MR_RELAY_H

#include <stdbool.h>
#include <time.h>

#include "app/outcome.h"
#include "core/str.h"

struct mr_ctx;
struct mr_response;

struct mr_relay {
    const char *url;                 /* the upstream, as given */
    struct mr_headers policy;        /* headers the upstream wants */
    const char *stats_kind;          /* "media", "channel", "stream" */
    const char *stats_id;
    time_t expire_at;                /* of the URL the client used (0: none): a
                                        shared cache may keep the answer until then */
    bool expiry_back;                /* an upstream 401/403/404/410 (the link of a
                                        provider may have expired) is not answered:
                                        the outcome is MR_LINK_DEAD, for the caller
                                        to resolve again and retry */
    bool members_only;               /* a room's media item: the answer is for the
                                        members who were checked, never for a
                                        shared cache (mr_relay_members_only) */
    const struct mr_strlist *redirect_hosts;
                                     /* not NULL: redirects only to these hosts
                                        (an allow-listed /stream URL) */
    bool playlists_back;             /* a 2xx HLS playlist answer is not relayed:
                                        the outcome is MR_PLAYLIST, for the caller
                                        to fetch it whole and rewrite it (a Range
                                        on it is ignored) */
};

/* Relays and answers.  Returns MR_OK with *out: MR_ANSWERED (whatever the
 * status), or MR_LINK_DEAD / MR_PLAYLIST unanswered as r asked; or an error
 * the caller answers (nothing sent yet). */
int mr_relay_run(struct mr_ctx *ctx, const struct mr_relay *r, enum mr_outcome *out);

/* The request headers for the upstream: the policy's that pass
 * mr_header_refused (without Referer and Origin when
 * !with_referer) and, when client_conditionals, the client's Range and
 * conditional headers.  *had_referer: the policy has either. */
int mr_relay_headers(struct mr_ctx *ctx, const struct mr_relay *r, bool with_referer,
                     bool client_conditionals, struct mr_header **out, size_t *n,
                     bool *had_referer);

/* Whether an upstream status may mean "this link expired" (401, 403, 404,
 * 410): for provider-bound media, resolve again and retry once. */
bool mr_relay_link_expired(long status);

/* Answers an upstream status the relay does not pass through as it is:
 * 4xx/5xx as a JSON error with the same status, 3xx (a redirect that was not
 * followed) as 502. */
int mr_relay_answer_status(struct mr_ctx *ctx, long status);

/* Marks an answer as one no shared cache may keep, for a media item with a
 * room (every request must reach the relay's room check):
 * "X-Accel-Expires: 0" (the web server's own cache, contrib/nginx's edge
 * cache on /api/seg/, never stores it, whatever its fastcgi_cache_valid
 * says) and "Cache-Control: private" (nor does a CDN; replaces the
 * upstream's).  The member's own player may still keep it. */
int mr_relay_members_only(struct mr_response *resp);

#endif
