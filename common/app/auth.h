/* auth.h - who may call what: the admin token and room membership. */
#ifndef MR_AUTH_H
#define MR_AUTH_H

#include <stdbool.h>

#include "core/str.h"

struct mr_ctx;
struct mr_media;

/* MR_OK when the request carries "Authorization: Bearer <admin_token>"
 * (compared in constant time).  MR_EUNAUTHORIZED otherwise, and always
 * when no admin_token is configured. */
int mr_auth_admin(struct mr_ctx *ctx);

/* The same for the counters (GET /api/stats, /metrics): the admin token, or
 * metrics_token (a read-only credential for Prometheus' bearer auth, good
 * for nothing else). */
int mr_auth_metrics(struct mr_ctx *ctx);

/* MR_OK when the media item has no room, or the session cookie's user
 * (session:{sid}) is in room:{room}:members.  MR_EUNAUTHORIZED without a
 * known session, MR_EFORBIDDEN for a user not in the room,
 * MR_EUNAVAILABLE while Redis (where the host application keeps sessions)
 * is down. */
int mr_auth_room(struct mr_ctx *ctx, const struct mr_media *media);

/* The gate of every path to a media item (its routes, and the relay URLs
 * made for it: nested playlists, segments): mr_auth_room, answered.  MR_OK
 * when the request may go on, nothing sent.  Otherwise the refusal has been
 * answered as a JSON error (401 without a known session, 403 for a user not
 * in the room, 503 while the session store is down) and its error is
 * returned: the caller stops and answers nothing more. */
int mr_auth_media(struct mr_ctx *ctx, const struct mr_media *media);

/* Who calls: the admin (the admin token; *user "admin", *admin true), or
 * the user of the session cookie (session:{sid}, as for rooms).
 * MR_EUNAUTHORIZED with neither, MR_EUNAVAILABLE while Redis is down and
 * there is no admin token.  *user lives in the arena. */
int mr_auth_user(struct mr_ctx *ctx, const char **user, bool *admin);

/* Whether a session id is one the relay would look up: 1 to 256 bytes of
 * printable ASCII without space, ';' or ','. */
bool mr_auth_sid_ok(struct mr_str sid);

#endif
