/* sign.h - signed /stream links.
 *
 * A link is /stream?url=<url>&exp=<unix time>&sig=<base64url HMAC-SHA256 of
 * "stream\n" exp "\n" url>, with the configured secret.  It opens exactly
 * that upstream URL until exp; operators mint links with the admin endpoint
 * POST /api/proxy/sign or the mediarelay-sign tool.  The URL is in the link
 * in clear: the operator chose to hand it out.  Links made with a previous
 * secret (conf previous_secrets) are still accepted.
 */
#ifndef MR_SIGN_H
#define MR_SIGN_H

#include <time.h>

#include "core/arena.h"

struct mr_token_key;

/* The sig parameter for url and exp; arena-allocated. */
int mr_sign_stream(const struct mr_token_key *k, struct mr_arena *a, const char *url,
                   time_t exp, char **sig);

/* Checks exp (decimal) and sig for url at time now: MR_OK, MR_EFORBIDDEN
 * (malformed or wrong), MR_ETOKEN_EXPIRED. */
int mr_sign_stream_verify(const struct mr_token_key *k, struct mr_arena *a, const char *url,
                          const char *exp, const char *sig, time_t now);

/* base "/stream?url=" escaped-url "&exp=" exp "&sig=" sig; arena-allocated. */
int mr_sign_stream_link(const struct mr_token_key *k, struct mr_arena *a, const char *base,
                        const char *url, time_t exp, char **out);

#endif
