/* auth.h - who may call what: the admin token and room membership. */
#ifndef MR_AUTH_H
#define MR_AUTH_H

struct mr_ctx;
struct mr_media;

/* MR_OK when the request carries "Authorization: Bearer <admin_token>"
 * (compared in constant time).  MR_EUNAUTHORIZED otherwise, and always
 * when no admin_token is configured. */
int mr_auth_admin(struct mr_ctx *ctx);

/* MR_OK when the media item has no room, or the session cookie's user
 * (session:{sid}) is in room:{room}:members.  MR_EUNAUTHORIZED without a
 * known session, MR_EFORBIDDEN for a user not in the room,
 * MR_EUNAVAILABLE while Redis (where the host application keeps sessions)
 * is down. */
int mr_auth_room(struct mr_ctx *ctx, const struct mr_media *media);

#endif
