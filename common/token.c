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

/* Encoding is done here, a table lookup per 12 bits: it runs twice per
 * token, a playlist of 20,000 segments makes 20,000 tokens, and libcrypto's
 * EVP_EncodeBlock plus a pass mapping its alphabet to the URL one (RFC 4648
 * section 5) was the largest single cost of a token.  Decoding (once per
 * request) stays with libcrypto. */

/* The characters for a 6-bit value, as a constant expression. */
#define B64C(x) ((char)((x) < 26 ? 'A' + (x) : (x) < 52 ? 'a' + (x) - 26 : \
                        (x) < 62 ? '0' + (x) - 52 : (x) == 62 ? '-' : '_'))
/* ... and for 12 bits, two characters at a time: 4096 pairs, 8 KiB. */
#define B64P(x) { B64C((x) >> 6), B64C((x) & 63) }
#define B64P4(x) B64P(x), B64P((x) + 1), B64P((x) + 2), B64P((x) + 3)
#define B64P16(x) B64P4(x), B64P4((x) + 4), B64P4((x) + 8), B64P4((x) + 12)
#define B64P64(x) B64P16(x), B64P16((x) + 16), B64P16((x) + 32), B64P16((x) + 48)
#define B64P256(x) B64P64(x), B64P64((x) + 64), B64P64((x) + 128), B64P64((x) + 192)
#define B64P1024(x) B64P256(x), B64P256((x) + 256), B64P256((x) + 512), B64P256((x) + 768)

static const char b64url_pairs[4096][2] = {
    B64P1024(0), B64P1024(1024), B64P1024(2048), B64P1024(3072),
};

size_t mr_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Encodes without padding and without a NUL; returns mr_b64url_len(n). */
static size_t b64url(const unsigned char *s, size_t n, char *d)
{
    char *o = d;

    for (; n >= 3; n -= 3, s += 3, o += 4) {
        uint32_t v = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];
        memcpy(o, b64url_pairs[v >> 12], 2);
        memcpy(o + 2, b64url_pairs[v & 0xfff], 2);
    }
    if (n) {
        uint32_t v = (uint32_t)s[0] << 16 | (n == 2 ? (uint32_t)s[1] << 8 : 0);
        memcpy(o, b64url_pairs[v >> 12], 2);
        o += 2;
        if (n == 2)
            *o++ = b64url_pairs[v & 0xfff][0];
    }
    return (size_t)(o - d);
}

size_t mr_b64url_encode(const void *src, size_t n, char *dst)
{
    size_t len = b64url(src, n, dst);
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

#define HEAD_LEN 9   /* version + 8 bytes of expiry: a multiple of 3, so its
                      * base64 ends on a whole group and the data's follows */
_Static_assert(MR_TOKEN_MAX_DATA == MR_TOKEN_MAX_PAYLOAD - HEAD_LEN, "token.h's data cap");

/* The MAC from the inner context `c`, which has absorbed the payload.  No
 * OPENSSL_cleanse of c after: the outer state replaces the inner one
 * whole, and after SHA256_Final (which wipes its block buffer) c holds the
 * MAC, which is public.  (This runs per token, 20,000 times a playlist.) */
static int hmac_finish(const struct mr_token_key *k, SHA256_CTX *c,
                       unsigned char mac[MR_HMAC_LEN])
{
    unsigned char ih[MR_HMAC_LEN];

    if (!SHA256_Final(ih, c))
        return MR_EINTERNAL;
    *c = k->outer;
    if (!SHA256_Update(c, ih, sizeof(ih)) || !SHA256_Final(mac, c))
        return MR_EINTERNAL;
    return MR_OK;
}

size_t mr_token_len(size_t len)
{
    return mr_b64url_len(HEAD_LEN + len) + 1 + mr_b64url_len(MR_HMAC_LEN);
}

int mr_token_sign_to(const struct mr_token_key *k, time_t exp, const void *data, size_t len,
                     char *dst)
{
    unsigned char head[HEAD_LEN], mac[MR_HMAC_LEN];
    uint64_t e = (uint64_t)exp;
    SHA256_CTX c;
    size_t o;
    int rc;

    if (len > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    head[0] = MR_TOKEN_VERSION;
    for (int i = 0; i < 8; i++)
        head[1 + i] = (unsigned char)(e >> (56 - 8 * i));
    /* The HMAC of head || data, fed in two pieces (mr_hmac_sha256 without
     * the copy into one payload). */
    c = k->inner;
    if (!SHA256_Update(&c, head, HEAD_LEN) || (len && !SHA256_Update(&c, data, len)))
        return MR_EINTERNAL;
    if ((rc = hmac_finish(k, &c, mac)))
        return rc;
    o = b64url(head, HEAD_LEN, dst);
    o += b64url(data, len, dst + o);
    dst[o++] = '.';
    b64url(mac, sizeof(mac), dst + o);
    return MR_OK;
}

int mr_token_sign(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                  const void *data, size_t len, char **out)
{
    size_t n;
    char *t;
    int rc;

    if (len > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    n = mr_token_len(len);
    t = mr_arena_alloc(a, n + 1);
    if (!t)
        return MR_ENOMEM;
    if ((rc = mr_token_sign_to(k, exp, data, len, t)))
        return rc;
    t[n] = '\0';
    *out = t;
    return MR_OK;
}

/* ---- tokens with a common prefix ------------------------------------------ */

struct mr_token_prefix {
    const struct mr_token_key *k;
    SHA256_CTX inner;                 /* after key ^ ipad, head and prefix */
    size_t len;                       /* of the prefix */
    char *b64;                        /* the encoding of head || prefix ... */
    size_t b64len;                    /* ... up to its last whole group */
    unsigned char tail[2];            /* the bytes after that group */
    size_t ntail;
};

static void prefix_wipe(void *p)
{
    OPENSSL_cleanse(p, sizeof(struct mr_token_prefix));
}

int mr_token_prefix_new(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                        const void *prefix, size_t len, struct mr_token_prefix **out)
{
    struct mr_token_prefix *p;
    unsigned char *payload;
    uint64_t e = (uint64_t)exp;
    size_t plen = HEAD_LEN + len, whole = plen / 3 * 3;
    int rc;

    if (len > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    p = mr_arena_alloc(a, sizeof(*p));
    payload = mr_arena_alloc(a, plen);
    if (!p || !payload || !(p->b64 = mr_arena_alloc(a, whole / 3 * 4 + 1)))
        return MR_ENOMEM;
    payload[0] = MR_TOKEN_VERSION;
    for (int i = 0; i < 8; i++)
        payload[1 + i] = (unsigned char)(e >> (56 - 8 * i));
    if (len)
        memcpy(payload + HEAD_LEN, prefix, len);
    p->k = k;
    p->len = len;
    p->inner = k->inner;
    if ((rc = mr_arena_cleanup(a, prefix_wipe, p)))
        return rc;
    if (!SHA256_Update(&p->inner, payload, plen))
        return MR_EINTERNAL;
    p->b64len = b64url(payload, whole, p->b64);
    p->ntail = plen - whole;
    memcpy(p->tail, payload + whole, p->ntail);
    *out = p;
    return MR_OK;
}

int mr_token_sign_prefixed(const struct mr_token_prefix *p, const void *rest, size_t len,
                           char *dst)
{
    const unsigned char *r = rest;
    unsigned char mac[MR_HMAC_LEN], group[3];
    SHA256_CTX c;
    size_t o, take;
    int rc;

    if (len > MR_TOKEN_MAX_DATA - p->len)
        return MR_ETOOBIG;
    c = p->inner;
    if (len && !SHA256_Update(&c, rest, len))
        return MR_EINTERNAL;
    if ((rc = hmac_finish(p->k, &c, mac)))
        return rc;
    memcpy(dst, p->b64, p->b64len);
    o = p->b64len;
    /* The prefix's last bytes and the first of the rest make one group. */
    if (p->ntail) {
        take = len < 3 - p->ntail ? len : 3 - p->ntail;
        memcpy(group, p->tail, p->ntail);
        if (take)
            memcpy(group + p->ntail, r, take);
        o += b64url(group, p->ntail + take, dst + o);
        r += take;
        len -= take;
    }
    o += b64url(r, len, dst + o);
    dst[o++] = '.';
    b64url(mac, sizeof(mac), dst + o);
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
