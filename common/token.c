/* token.c - HMAC-SHA256 signed tokens with libcrypto. */
#include "token.h"

#include <stdlib.h>
#include <string.h>

/* The low-level SHA-256 API is deprecated in OpenSSL 3 in favour of EVP,
 * but its context is a plain struct: copying a prepared HMAC state is a
 * memcpy, where EVP_MD_CTX_copy_ex allocates and frees on every copy --
 * which was half the cost of a token, and a playlist of 20,000 segments
 * makes 20,000 tokens. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "error.h"
#include "limits.h"

#define BLOCK 64

struct mr_token_key {
    SHA256_CTX inner;    /* SHA-256 after absorbing key ^ ipad */
    SHA256_CTX outer;    /* SHA-256 after absorbing key ^ opad */
};

void mr_token_key_free(struct mr_token_key *k)
{
    if (!k)
        return;
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

struct mr_token_key *mr_token_key_new(const void *secret, size_t len)
{
    unsigned char key[BLOCK] = { 0 }, pad[BLOCK];
    struct mr_token_key *k = calloc(1, sizeof(*k));
    unsigned int n;

    if (!k)
        return NULL;
    /* RFC 2104: a key longer than the block is hashed first. */
    if (len > BLOCK) {
        if (!EVP_Digest(secret, len, key, &n, EVP_sha256(), NULL))
            goto fail;
    } else if (len) {
        memcpy(key, secret, len);
    }
    for (int i = 0; i < BLOCK; i++)
        pad[i] = key[i] ^ 0x36;
    if (!SHA256_Init(&k->inner) || !SHA256_Update(&k->inner, pad, BLOCK))
        goto fail;
    for (int i = 0; i < BLOCK; i++)
        pad[i] = key[i] ^ 0x5c;
    if (!SHA256_Init(&k->outer) || !SHA256_Update(&k->outer, pad, BLOCK))
        goto fail;
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(pad, sizeof(pad));
    return k;
fail:
    OPENSSL_cleanse(key, sizeof(key));
    mr_token_key_free(k);
    return NULL;
}

int mr_hmac_sha256(const struct mr_token_key *k, const void *data, size_t len,
                   unsigned char out[MR_HMAC_LEN])
{
    unsigned char ih[MR_HMAC_LEN];
    SHA256_CTX c = k->inner;

    if (!SHA256_Update(&c, data, len) || !SHA256_Final(ih, &c))
        return MR_EINTERNAL;
    c = k->outer;
    if (!SHA256_Update(&c, ih, sizeof(ih)) || !SHA256_Final(out, &c))
        return MR_EINTERNAL;
    OPENSSL_cleanse(&c, sizeof(c));
    return MR_OK;
}

/* ---- base64url ----------------------------------------------------------- */

/* libcrypto does the coding in the standard alphabet; these map it to the
 * URL alphabet (RFC 4648 section 5) and drop the padding. */

size_t mr_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t mr_b64url_encode(const void *src, size_t n, char *dst)
{
    size_t len = mr_b64url_len(n);
    int o = n ? EVP_EncodeBlock((unsigned char *)dst, src, (int)n) : 0;

    for (int i = 0; i < o; i++) {
        if (dst[i] == '+')
            dst[i] = '-';
        else if (dst[i] == '/')
            dst[i] = '_';
    }
    dst[len] = '\0';
    return len;
}

long mr_b64url_decode(const char *src, size_t n, void *dst, size_t dstlen)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t pad = (4 - n % 4) % 4, need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    unsigned char stackbuf[512], *in, *out;
    const char *last;
    int got;

    if (n % 4 == 1 || need > dstlen || n > (size_t)INT32_MAX - 4)
        return -1;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!src[i] || !strchr(alphabet, src[i]))
            return -1;
    /* The bits below the last whole byte must be zero, or two strings would
     * decode to the same bytes. */
    last = strchr(alphabet, src[n - 1]);
    if ((pad == 1 && ((last - alphabet) & 0x03)) || (pad == 2 && ((last - alphabet) & 0x0f)))
        return -1;

    in = n + pad + 3 + (n + pad) / 4 * 3 <= sizeof(stackbuf) ? stackbuf
         : malloc(n + pad + 3 + (n + pad) / 4 * 3);
    if (!in)
        return -1;
    out = in + n + pad;
    for (size_t i = 0; i < n; i++)
        in[i] = src[i] == '-' ? '+' : src[i] == '_' ? '/' : (unsigned char)src[i];
    memset(in + n, '=', pad);
    got = EVP_DecodeBlock(out, in, (int)(n + pad));
    if (got >= 0 && (size_t)got >= pad)
        memcpy(dst, out, need);
    if (in != stackbuf)
        free(in);
    return got < 0 || (size_t)got - pad != need ? -1 : (long)need;
}

/* ---- tokens -------------------------------------------------------------- */

#define HEAD_LEN 9   /* version + 8 bytes of expiry */

int mr_token_sign(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                  const void *data, size_t len, char **out)
{
    unsigned char *payload, mac[MR_HMAC_LEN];
    uint64_t e = (uint64_t)exp;
    size_t plen = HEAD_LEN + len, o;
    char *t;
    int rc;

    if (len > MR_TOKEN_MAX_PAYLOAD - HEAD_LEN)
        return MR_ETOOBIG;
    payload = mr_arena_alloc(a, plen);
    /* EVP_EncodeBlock writes the padded form and a NUL: room for that. */
    t = mr_arena_alloc(a, (plen + 2) / 3 * 4 + 1 + (MR_HMAC_LEN + 2) / 3 * 4 + 1);
    if (!payload || !t)
        return MR_ENOMEM;
    payload[0] = MR_TOKEN_VERSION;
    for (int i = 0; i < 8; i++)
        payload[1 + i] = (unsigned char)(e >> (56 - 8 * i));
    if (len)
        memcpy(payload + HEAD_LEN, data, len);
    if ((rc = mr_hmac_sha256(k, payload, plen, mac)))
        return rc;
    o = mr_b64url_encode(payload, plen, t);
    t[o++] = '.';
    mr_b64url_encode(mac, sizeof(mac), t + o);
    *out = t;
    return MR_OK;
}

int mr_token_verify(const struct mr_token_key *k, struct mr_arena *a, struct mr_str token,
                    time_t now, struct mr_str *data, time_t *exp)
{
    struct mr_str p64, s64;
    unsigned char mac[MR_HMAC_LEN], want[MR_HMAC_LEN], *payload;
    long plen;
    uint64_t e = 0;
    int rc;

    s64 = mr_str_cut(token, '.', &p64);
    if (!s64.p || s64.len != mr_b64url_len(MR_HMAC_LEN) ||
        p64.len > mr_b64url_len(MR_TOKEN_MAX_PAYLOAD))
        return MR_EFORBIDDEN;
    payload = mr_arena_alloc(a, p64.len / 4 * 3 + 3 + 1);
    if (!payload)
        return MR_ENOMEM;
    plen = mr_b64url_decode(p64.p, p64.len, payload, p64.len / 4 * 3 + 3);
    if (plen < HEAD_LEN || mr_b64url_decode(s64.p, s64.len, mac, sizeof(mac)) != MR_HMAC_LEN)
        return MR_EFORBIDDEN;
    if ((rc = mr_hmac_sha256(k, payload, (size_t)plen, want)))
        return rc;
    if (CRYPTO_memcmp(mac, want, sizeof(mac)) != 0)
        return MR_EFORBIDDEN;
    if (payload[0] != MR_TOKEN_VERSION)
        return MR_EFORBIDDEN;
    for (int i = 0; i < 8; i++)
        e = e << 8 | payload[1 + i];
    payload[plen] = '\0';
    if (exp)
        *exp = (time_t)e;
    if (data)
        *data = (struct mr_str){ (char *)payload + HEAD_LEN, (size_t)plen - HEAD_LEN };
    if ((uint64_t)now >= e)
        return MR_ETOKEN_EXPIRED;
    return MR_OK;
}
