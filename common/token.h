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
#include "limits.h"
#include "str.h"

#define MR_HMAC_LEN 32
#define MR_TOKEN_VERSION 1
/* The most data a token holds: the payload less the version and expiry. */
#define MR_TOKEN_MAX_DATA (MR_TOKEN_MAX_PAYLOAD - 9)

struct mr_token_key;

/* A key from a secret; NULL when out of memory.  Immutable after creation,
 * so one key serves every thread. */
struct mr_token_key *mr_token_key_new(const void *secret, size_t len);
void mr_token_key_free(struct mr_token_key *k);

/* HMAC-SHA256(key, data) into out (MR_HMAC_LEN bytes). */
int mr_hmac_sha256(const struct mr_token_key *k, const void *data, size_t len,
                   unsigned char out[MR_HMAC_LEN]);

/* base64url without padding.  Encode returns the length written, which is
 * mr_b64url_len(n), and NUL-terminates; dst needs mr_b64url_len(n) + 1
 * bytes (the padded form's (n + 2) / 3 * 4 + 1 is more than enough).
 * Decode returns the decoded length, or -1 on any character outside the
 * alphabet, a length that is impossible, or a non-canonical encoding (stray
 * low bits). */
size_t mr_b64url_len(size_t n);
size_t mr_b64url_encode(const void *src, size_t n, char *dst);
long mr_b64url_decode(const char *src, size_t n, void *dst, size_t dstlen);

/* Makes a token for `data` that expires at `exp`; arena-allocated. */
int mr_token_sign(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                  const void *data, size_t len, char **out);

/* The length of a token for `len` bytes of data (without a NUL). */
size_t mr_token_len(size_t len);
/* mr_token_sign into the caller's dst, which has room for mr_token_len(len)
 * bytes; no NUL is written and nothing is allocated (for rewriters that
 * make a token per segment and write it straight into their output). */
int mr_token_sign_to(const struct mr_token_key *k, time_t exp, const void *data, size_t len,
                     char *dst);

/* Many tokens whose data begin with the same bytes (the segments of one
 * playlist: kind, scope and the playlist's directory) are made faster when
 * those bytes are hashed and encoded once: the HMAC state after them is
 * kept, and so is the base64 of their whole 3-byte groups.  The tokens are
 * the same as mr_token_sign's for prefix || rest.
 *
 * mr_token_prefix_new: arena-allocated, valid until the arena's reset (which
 * wipes the key-derived state) and while the key lives; MR_ETOOBIG when the
 * prefix alone is longer than a token's data may be. */
struct mr_token_prefix;
int mr_token_prefix_new(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                        const void *prefix, size_t len, struct mr_token_prefix **out);
/* The token for prefix || rest into dst, which has room for
 * mr_token_len(prefix length + len) bytes; no NUL is written. */
int mr_token_sign_prefixed(const struct mr_token_prefix *p, const void *rest, size_t len,
                           char *dst);

/* Checks a token at time `now`.  On MR_OK, *data (arena, NUL-terminated)
 * and *exp hold what was signed.  MR_EFORBIDDEN for anything malformed or
 * not signed by this key; MR_ETOKEN_EXPIRED for a good token past its
 * expiry. */
int mr_token_verify(const struct mr_token_key *k, struct mr_arena *a, struct mr_str token,
                    time_t now, struct mr_str *data, time_t *exp);

#endif
