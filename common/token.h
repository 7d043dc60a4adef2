/* token.h - signed tokens: base64url(payload) "." base64url(HMAC-SHA256).
 *
 * The payload is a version byte, the expiry (8 bytes, big-endian seconds
 * since the epoch) and the caller's data (what the token binds: an upstream
 * URL, a URL prefix, a media id...).  The HMAC covers the whole payload and
 * is compared in constant time.  Tokens are deterministic: the same key,
 * data and expiry give the same token, so rewritten manifests can be cached
 * and shared.
 *
 * The HMAC key schedule (the SHA-256 states after key^ipad and key^opad) is
 * computed once in mr_token_key_new, not per token.
 */
#ifndef MR_TOKEN_H
#define MR_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "str.h"

#define MR_HMAC_LEN 32
#define MR_TOKEN_VERSION 1

struct mr_token_key;

/* A key from a secret; NULL when out of memory.  Immutable after creation,
 * so one key serves every thread. */
struct mr_token_key *mr_token_key_new(const void *secret, size_t len);
void mr_token_key_free(struct mr_token_key *k);

/* HMAC-SHA256(key, data) into out (MR_HMAC_LEN bytes). */
int mr_hmac_sha256(const struct mr_token_key *k, const void *data, size_t len,
                   unsigned char out[MR_HMAC_LEN]);

/* base64url without padding.  Encode returns the length written, which is
 * mr_b64url_len(n); dst needs room for the padded form and a NUL,
 * (n + 2) / 3 * 4 + 1 bytes.  Decode returns the
 * decoded length, or -1 on any character outside the alphabet, a length
 * that is impossible, or a non-canonical encoding (stray low bits). */
size_t mr_b64url_len(size_t n);
size_t mr_b64url_encode(const void *src, size_t n, char *dst);
long mr_b64url_decode(const char *src, size_t n, void *dst, size_t dstlen);

/* Makes a token for `data` that expires at `exp`; arena-allocated. */
int mr_token_sign(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                  const void *data, size_t len, char **out);

/* Checks a token at time `now`.  On MR_OK, *data (arena, NUL-terminated)
 * and *exp hold what was signed.  MR_EFORBIDDEN for anything malformed or
 * not signed by this key; MR_ETOKEN_EXPIRED for a good token past its
 * expiry. */
int mr_token_verify(const struct mr_token_key *k, struct mr_arena *a, struct mr_str token,
                    time_t now, struct mr_str *data, time_t *exp);

#endif
