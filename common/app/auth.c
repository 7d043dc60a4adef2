/* auth.c - the admin bearer token and room membership checks. */
#include "app/auth.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "app/server.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/str.h"
#include "net/store.h"

/* The credential of "Authorization: Bearer <token>", or NULL. */
static const char *bearer(struct mr_ctx *ctx)
{
    const char *h = mr_request_header(&ctx->req, "authorization");

    if (!h || strncasecmp(h, "Bearer ", 7))
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return h;
}

/* Whether `got` is `want` (a configured token; "" matches nothing), in
 * time that does not depend on where they differ. */
static bool token_is(const char *got, const char *want)
{
    size_t n = strlen(want);

    return got && n && strlen(got) == n && CRYPTO_memcmp(got, want, n) == 0;
}

int mr_auth_admin(struct mr_ctx *ctx)
{
    return token_is(bearer(ctx), ctx->conf->admin_token) ? MR_OK : MR_EUNAUTHORIZED;
}

int mr_auth_metrics(struct mr_ctx *ctx)
{
    const char *got = bearer(ctx);
    /* Both compared, so the time says nothing of which one was close. */
    bool admin = token_is(got, ctx->conf->admin_token);
    bool metrics = token_is(got, ctx->conf->metrics_token);

    return admin || metrics ? MR_OK : MR_EUNAUTHORIZED;
}

bool mr_auth_sid_ok(struct mr_str s)
{
    if (!s.len || s.len > 256)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!mr_is_vchar(c) || c == ';' || c == ',')
            return false;
    }
    return true;
}

/* The user of the request's session cookie (session:{sid}): MR_OK with
 * *user; MR_EUNAUTHORIZED without a known session; MR_EUNAVAILABLE while
 * Redis is down. */
static int session_user(struct mr_ctx *ctx, struct mr_str *user)
{
    struct mr_str sid;
    char key[MR_STORE_KEY_MAX];
    int rc;

    if (mr_request_cookie(&ctx->req, ctx->conf->auth.cookie, &sid) || !mr_auth_sid_ok(sid))
        return MR_EUNAUTHORIZED;
    snprintf(key, sizeof(key), "session:%.*s", (int)sid.len, sid.p);
    rc = mr_store_get(ctx->store, ctx->arena, key, user);
    /* Sessions are the host application's: only Redis knows them, and the
     * in-process fallback must not answer for it. */
    if (!mr_store_redis_up(ctx->store))
        return MR_EUNAVAILABLE;
    return rc == MR_ENOTFOUND ? MR_EUNAUTHORIZED : rc;
}

int mr_auth_user(struct mr_ctx *ctx, const char **user, bool *admin)
{
    struct mr_str u;
    int rc;

    *user = NULL;
    *admin = false;
    if (mr_auth_admin(ctx) == MR_OK) {
        *user = "admin";
        *admin = true;
        return MR_OK;
    }
    if ((rc = session_user(ctx, &u)))
        return rc;
    /* A user name is a key part and a field in answers: printable, short. */
    if (!u.len || u.len > 256 || mr_str_has_ctl(u.p, u.len) || !strcmp(u.p, "admin"))
        return MR_EFORBIDDEN;
    *user = u.p;
    return MR_OK;
}

int mr_auth_room(struct mr_ctx *ctx, const struct mr_media *media)
{
    struct mr_str user;
    char key[MR_STORE_KEY_MAX];
    bool member = false;
    int rc;

    if (!media->room || !*media->room)
        return MR_OK;
    if ((rc = session_user(ctx, &user)))
        return rc;
    snprintf(key, sizeof(key), "room:%s:members", media->room);
    rc = mr_store_sismember(ctx->store, key, user.p, &member);
    if (rc)
        return rc;
    return member ? MR_OK : MR_EFORBIDDEN;
}

int mr_auth_media(struct mr_ctx *ctx, const struct mr_media *media)
{
    int rc = mr_auth_room(ctx, media);

    switch (rc) {
    case MR_OK:
        return MR_OK;
    case MR_EUNAVAILABLE:
        mr_resp_error(&ctx->resp, rc, "room membership cannot be checked while the "
                      "session store is down");
        break;
    case MR_EFORBIDDEN:
        mr_resp_error(&ctx->resp, rc, "you are not a member of this media item's room");
        break;
    case MR_EUNAUTHORIZED:
        mr_resp_error(&ctx->resp, rc, "this media item needs a session");
        break;
    default:
        mr_resp_error(&ctx->resp, rc, NULL);
        break;
    }
    return rc;
}
