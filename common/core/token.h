/* token.h - opaque relay tokens: deterministic authenticated encryption.
 *
 * A token carries what a relay URL stands for (an upstream URL, a URL
 * prefix, the media it belongs to) and its expiry, and tells a viewer
 * nothing of them:
 *
 *   token   = base64url( version | key id | siv | ciphertext )
 *   siv     = HMAC-SHA256(Kmac, version | key id | plain)[0..16)
 *   cipher  = AES-256-CTR(Kenc, iv = siv, plain)
 *   plain   = expiry (8 bytes, big-endian seconds since the epoch) | data
 *
 * (the SIV construction of RFC 5297 with HMAC for S2V.)  Kmac, Kenc and the
 * one-byte key id are derived from the secret with HKDF-SHA256.  The same
 * key, data and expiry give the same token, so rewritten manifests can be
 * cached and shared; a changed byte fails the SIV check (compared in
 * constant time) after decryption.
 *
 * A key is a key ring: the secret tokens are made with, and previous
 * secrets (conf previous_secrets) they are still accepted under, so that an
 * operator rotates the secret without breaking the players holding
 * playlists made with the old one.  The key id picks the secret to try.
 *
 * The primitives are libcrypto's: HKDF, HMAC-SHA256 (its SHA-256 states
 * kept after the key's pads, so a token costs no key schedule), AES-256
 * (with a cipher context per signer, so a token costs no key expansion).
 */
#ifndef MR_TOKEN_H
#define MR_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/arena.h"
#include "core/limits.h"
#include "core/str.h"

#define MR_HMAC_LEN 32
#define MR_TOKEN_VERSION 2
#define MR_TOKEN_SIV_LEN 16
/* version, key id and SIV: 18 bytes, a whole number of base64 groups */
#define MR_TOKEN_HEAD_LEN (2 + MR_TOKEN_SIV_LEN)
/* The most data a token holds: the payload less the head and the expiry. */
#define MR_TOKEN_MAX_DATA (MR_TOKEN_MAX_PAYLOAD - MR_TOKEN_HEAD_LEN - 8)

struct mr_token_key;

/* A key ring whose current secret is `secret`; NULL when out of memory or
 * libcrypto fails.  Immutable once its previous secrets are added, so one
 * key serves every thread. */
struct mr_token_key *mr_token_key_new(const void *secret, size_t len);
/* Adds a previous secret: tokens made with it are still accepted, none is
 * made with it.  MR_ENOMEM, MR_EINTERNAL. */
int mr_token_key_add_previous(struct mr_token_key *k, const void *secret, size_t len);
void mr_token_key_free(struct mr_token_key *k);
/* The ring of a configuration: `secret` and `n` previous ones (C
 * strings); NULL when out of memory, libcrypto fails or n > 15. */
struct mr_token_key *mr_token_key_ring(const char *secret, char *const *previous, size_t n);
/* The number of secrets in the ring (the current one first). */
size_t mr_token_key_count(const struct mr_token_key *k);
/* The key id of the ring's i-th secret (for tests and mediarelay-sign). */
unsigned mr_token_key_id(const struct mr_token_key *k, size_t i);

/* HMAC-SHA256 keyed with the ring's i-th secret itself (not a derived
 * key), into out (MR_HMAC_LEN bytes): the MAC of signed /stream links.
 * MR_EINVAL when there is no i-th secret. */
int mr_hmac_sha256(const struct mr_token_key *k, size_t i, const void *data, size_t len,
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

/* The length of a token for `len` bytes of data (without a NUL). */
size_t mr_token_len(size_t len);

/* A signer makes the tokens of one rewrite: one key ring's current secret,
 * one expiry, and its own cipher context (not shared between threads).
 * Arena-allocated; its secrets are wiped and its context freed when the
 * arena is reset.  MR_ENOMEM, MR_EINTERNAL. */
struct mr_token_signer;
int mr_token_signer_new(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                        struct mr_token_signer **out);
/* The token for `data` into dst, which has room for mr_token_len(len)
 * bytes; no NUL is written and nothing is allocated (for rewriters that
 * make a token per segment and write it straight into their output).
 * MR_ETOOBIG past MR_TOKEN_MAX_DATA. */
int mr_token_sign_to(struct mr_token_signer *s, const void *data, size_t len, char *dst);

/* AES-256-CTR of n bytes (at most an expiry and a token's data) under the
 * signer's key and `iv`: what tokens are encrypted with, made from
 * libcrypto's AES block by block (token.c says why).  Public for the
 * tests, which hold it against libcrypto's AES-256-CTR. */
int mr_token_ctr_encrypt(struct mr_token_signer *s, const unsigned char iv[16], const void *in,
                         size_t n, void *out);

/* A token in one call (a signer of its own): arena-allocated,
 * NUL-terminated. */
int mr_token_sign(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                  const void *data, size_t len, char **out);

/* Many tokens whose data begin with the same bytes (the segments of one
 * playlist: kind, scope and the playlist's directory) are made faster when
 * those bytes are hashed once: the HMAC state after them is kept, and they
 * wait in a plaintext buffer for each rest.  The tokens are the same as
 * mr_token_sign_to's for prefix || rest.  Arena-allocated, valid while the
 * signer is; MR_ETOOBIG when the prefix alone is longer than a token's
 * data may be. */
struct mr_token_prefix;
int mr_token_prefix_new(struct mr_token_signer *s, const void *prefix, size_t len,
                        struct mr_token_prefix **out);
/* The token for prefix || rest into dst, which has room for
 * mr_token_len(prefix length + len) bytes; no NUL is written. */
int mr_token_sign_prefixed(struct mr_token_prefix *p, const void *rest, size_t len, char *dst);

/* Checks a token at time `now` against every secret of the ring with its
 * key id.  On MR_OK, *data (arena, NUL-terminated) and *exp hold what was
 * sealed.  MR_EFORBIDDEN for anything malformed or not made by this ring;
 * MR_ETOKEN_EXPIRED for a good token past its expiry (*data and *exp are
 * set then too). */
int mr_token_verify(const struct mr_token_key *k, struct mr_arena *a, struct mr_str token,
                    time_t now, struct mr_str *data, time_t *exp);

#endif
