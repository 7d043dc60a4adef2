/* token.c - opaque relay tokens (token.h) with libcrypto. */
#include "core/token.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

/* The low-level SHA-256 API is deprecated in OpenSSL 3 in favour of EVP,
 * but its context is a plain struct: copying a prepared HMAC state is a
 * memcpy, where EVP_MD_CTX_copy_ex allocates and frees on every copy --
 * which was half the cost of a token, and a playlist of 20,000 segments
 * makes 20,000 tokens. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include "core/error.h"
#include "core/limits.h"

#define BLOCK 64          /* SHA-256's block, HMAC's pad */
#define EXP_LEN 8
#define MAX_SECRETS 16    /* the current one and up to 15 previous ones */

_Static_assert(MR_TOKEN_HEAD_LEN % 3 == 0, "the head is whole base64 groups");
_Static_assert(MR_TOKEN_MAX_DATA == 4087, "limits.h's token payload");

/* HMAC-SHA256 with the key's pads absorbed once. */
struct hmac {
    SHA256_CTX inner;    /* SHA-256 after absorbing key ^ ipad */
    SHA256_CTX outer;    /* SHA-256 after absorbing key ^ opad */
};

/* One secret of the ring. */
struct secret {
    unsigned char id;             /* the key id */
    struct hmac mac;              /* keyed with Kmac: the SIV */
    struct hmac raw;              /* keyed with the secret: /stream links */
    unsigned char enc[32];        /* Kenc, for AES-256 */
};

struct mr_token_key {
    size_t n;
    struct secret s[MAX_SECRETS];
    EVP_CIPHER *ctr;              /* AES-256-CTR, fetched once */
};

/* ---- keys ------------------------------------------------------------------ */

static int hmac_init(struct hmac *h, const void *secret, size_t len)
{
    unsigned char key[BLOCK] = { 0 }, pad[BLOCK];
    unsigned int n;
    int rc = MR_EINTERNAL;

    /* RFC 2104: a key longer than the block is hashed first. */
    if (len > BLOCK) {
        if (!EVP_Digest(secret, len, key, &n, EVP_sha256(), NULL))
            goto out;
    } else if (len) {
        memcpy(key, secret, len);
    }
    for (int i = 0; i < BLOCK; i++)
        pad[i] = key[i] ^ 0x36;
    if (!SHA256_Init(&h->inner) || !SHA256_Update(&h->inner, pad, BLOCK))
        goto out;
    for (int i = 0; i < BLOCK; i++)
        pad[i] = key[i] ^ 0x5c;
    if (!SHA256_Init(&h->outer) || !SHA256_Update(&h->outer, pad, BLOCK))
        goto out;
    rc = MR_OK;
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(pad, sizeof(pad));
    return rc;
}

/* HKDF-SHA256 (RFC 5869) of the secret, for one purpose. */
static int hkdf(const void *secret, size_t len, const char *info, unsigned char *out,
                size_t outlen)
{
    static const char salt[] = "mediarelay token v2";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5];
    int ok;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    /* an empty secret is refused by conf; HKDF itself wants some key */
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  len ? (void *)secret : (void *)"", len ? len : 1);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
                                                  sizeof(salt) - 1);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                                  strlen(info));
    params[4] = OSSL_PARAM_construct_end();
    ok = c && EVP_KDF_derive(c, out, outlen, params) == 1;
    EVP_KDF_CTX_free(c);
    EVP_KDF_free(kdf);
    return ok ? MR_OK : MR_EINTERNAL;
}

static int secret_init(struct secret *s, const void *secret, size_t len)
{
    unsigned char kmac[32];
    int rc;

    if ((rc = hkdf(secret, len, "mediarelay token siv", kmac, sizeof(kmac))) ||
        (rc = hkdf(secret, len, "mediarelay token enc", s->enc, sizeof(s->enc))) ||
        (rc = hkdf(secret, len, "mediarelay token key id", &s->id, 1)) ||
        (rc = hmac_init(&s->mac, kmac, sizeof(kmac))) ||
        (rc = hmac_init(&s->raw, secret, len)))
        OPENSSL_cleanse(s, sizeof(*s));
    OPENSSL_cleanse(kmac, sizeof(kmac));
    return rc;
}

void mr_token_key_free(struct mr_token_key *k)
{
    if (!k)
        return;
    EVP_CIPHER_free(k->ctr);
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

struct mr_token_key *mr_token_key_new(const void *secret, size_t len)
{
    struct mr_token_key *k = calloc(1, sizeof(*k));

    if (!k)
        return NULL;
    if (!(k->ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL)) ||
        secret_init(&k->s[0], secret, len)) {
        mr_token_key_free(k);
        return NULL;
    }
    k->n = 1;
    return k;
}

int mr_token_key_add_previous(struct mr_token_key *k, const void *secret, size_t len)
{
    int rc;

    if (k->n == MAX_SECRETS)
        return MR_ETOOBIG;
    if ((rc = secret_init(&k->s[k->n], secret, len)))
        return rc;
    k->n++;
    return MR_OK;
}

struct mr_token_key *mr_token_key_ring(const char *secret, char *const *previous, size_t n)
{
    struct mr_token_key *k = mr_token_key_new(secret, strlen(secret));

    for (size_t i = 0; k && i < n; i++)
        if (mr_token_key_add_previous(k, previous[i], strlen(previous[i]))) {
            mr_token_key_free(k);
            k = NULL;
        }
    return k;
}

size_t mr_token_key_count(const struct mr_token_key *k)
{
    return k->n;
}

unsigned mr_token_key_id(const struct mr_token_key *k, size_t i)
{
    return i < k->n ? k->s[i].id : 0;
}

/* The MAC from the inner context `c`, which has absorbed the message.  No
 * OPENSSL_cleanse of c after: the outer state replaces the inner one
 * whole, and after SHA256_Final (which wipes its block buffer) c holds the
 * MAC, which is public.  (This runs per token, 20,000 times a playlist.) */
static int hmac_finish(const struct hmac *h, SHA256_CTX *c, unsigned char mac[MR_HMAC_LEN])
{
    unsigned char ih[MR_HMAC_LEN];

    if (!SHA256_Final(ih, c))
        return MR_EINTERNAL;
    *c = h->outer;
    if (!SHA256_Update(c, ih, sizeof(ih)) || !SHA256_Final(mac, c))
        return MR_EINTERNAL;
    return MR_OK;
}

int mr_hmac_sha256(const struct mr_token_key *k, size_t i, const void *data, size_t len,
                   unsigned char out[MR_HMAC_LEN])
{
    SHA256_CTX c;
    int rc;

    if (i >= k->n)
        return MR_EINVAL;
    c = k->s[i].raw.inner;
    rc = SHA256_Update(&c, data, len) ? hmac_finish(&k->s[i].raw, &c, out) : MR_EINTERNAL;
    OPENSSL_cleanse(&c, sizeof(c));
    return rc;
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

    /* Six bytes at a time from one 64-bit load (eight must be readable). */
    for (; n >= 8; n -= 6, s += 6, o += 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        v = be64toh(v);
        memcpy(o, b64url_pairs[v >> 52], 2);
        memcpy(o + 2, b64url_pairs[(v >> 40) & 0xfff], 2);
        memcpy(o + 4, b64url_pairs[(v >> 28) & 0xfff], 2);
        memcpy(o + 6, b64url_pairs[(v >> 16) & 0xfff], 2);
    }
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

/* ---- tokens ---------------------------------------------------------------- */

#define MAX_RAW MR_TOKEN_MAX_PAYLOAD        /* head, expiry, data */
#define MAX_PLAIN (EXP_LEN + MR_TOKEN_MAX_DATA)

struct mr_token_signer {
    struct mr_arena *a;             /* where its prefixes are made */
    const struct secret *s;
    EVP_CIPHER_CTX *ecb;            /* AES-256-ECB under Kenc: the CTR key stream */
    unsigned char *ks;              /* counter blocks, then the key stream */
    unsigned char head[2];          /* version, key id */
    SHA256_CTX inner;               /* the SIV's HMAC after head and expiry */
    unsigned char *plain;           /* expiry | data */
    unsigned char *raw;             /* head | SIV | ciphertext: what is encoded */
};

struct mr_token_prefix {
    struct mr_token_signer *s;
    SHA256_CTX inner;               /* after head, expiry and prefix */
    unsigned char *plain;           /* expiry | prefix | (the rest, per token) */
    size_t len;                     /* of the prefix */
};

size_t mr_token_len(size_t len)
{
    return mr_b64url_len(MR_TOKEN_HEAD_LEN + EXP_LEN + len);
}

static void signer_wipe(void *p)
{
    struct mr_token_signer *s = p;

    EVP_CIPHER_CTX_free(s->ecb);
    OPENSSL_cleanse(s, sizeof(*s));
}

static void prefix_wipe(void *p)
{
    OPENSSL_cleanse(p, sizeof(struct mr_token_prefix));
}

int mr_token_signer_new(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                        struct mr_token_signer **out)
{
    struct mr_token_signer *s = mr_arena_calloc(a, 1, sizeof(*s));
    uint64_t e = (uint64_t)exp;
    int rc;

    if (!s || !(s->plain = mr_arena_alloc(a, MAX_PLAIN)) || !(s->raw = mr_arena_alloc(a, MAX_RAW)) ||
        !(s->ks = mr_arena_alloc(a, (MAX_PLAIN + 15) / 16 * 16)))
        return MR_ENOMEM;
    if ((rc = mr_arena_cleanup(a, signer_wipe, s)))
        return rc;
    s->a = a;
    s->s = &k->s[0];
    s->head[0] = MR_TOKEN_VERSION;
    s->head[1] = s->s->id;
    for (int i = 0; i < EXP_LEN; i++)
        s->plain[i] = (unsigned char)(e >> (56 - 8 * i));
    s->inner = s->s->mac.inner;
    if (!(s->ecb = EVP_CIPHER_CTX_new()) ||
        !EVP_EncryptInit_ex(s->ecb, EVP_aes_256_ecb(), NULL, s->s->enc, NULL) ||
        !EVP_CIPHER_CTX_set_padding(s->ecb, 0) ||
        !SHA256_Update(&s->inner, s->head, sizeof(s->head)) ||
        !SHA256_Update(&s->inner, s->plain, EXP_LEN))
        return MR_EINTERNAL;
    memcpy(s->raw, s->head, sizeof(s->head));
    *out = s;
    return MR_OK;
}

/* AES-256-CTR (NIST SP 800-38A): block i of the key stream is AES(iv + i),
 * iv a 128-bit big-endian counter.  The counter blocks are written out and
 * libcrypto's AES-256-ECB encrypts them in one call.  libcrypto's own
 * AES-256-CTR gives the same bytes, but resetting its IV per token costs
 * more than the encryption (OpenSSL 3.0 reads parameters on every init:
 * a 20,000-segment playlist took 1.6 times as long); test_token holds the
 * two against each other, and mr_token_verify decrypts with libcrypto's. */
int mr_token_ctr_encrypt(struct mr_token_signer *s, const unsigned char iv[16], const void *in,
                         size_t n, void *out)
{
    const unsigned char *p = in;
    unsigned char *o = out;
    size_t nb = (n + 15) / 16, i = 0;
    uint64_t hi, lo;
    int got;

    if (n > MAX_PLAIN)
        return MR_ETOOBIG;
    memcpy(&hi, iv, 8);
    memcpy(&lo, iv + 8, 8);
    hi = be64toh(hi);
    lo = be64toh(lo);
    for (size_t b = 0; b < nb; b++) {
        uint64_t l = lo + b, blk[2] = { htobe64(hi + (l < lo)), htobe64(l) };
        memcpy(s->ks + 16 * b, blk, 16);
    }
    if (nb && (!EVP_EncryptUpdate(s->ecb, s->ks, &got, s->ks, (int)(nb * 16)) ||
               (size_t)got != nb * 16))
        return MR_EINTERNAL;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, s->ks + i, 8);
        x ^= y;
        memcpy(o + i, &x, 8);
    }
    for (; i < n; i++)
        o[i] = p[i] ^ s->ks[i];
    return MR_OK;
}

/* The token for `plain` (n bytes: expiry and data) whose HMAC is in `c`,
 * which has absorbed the head and plain: the SIV, the ciphertext under it,
 * all encoded into dst. */
static int seal(struct mr_token_signer *s, SHA256_CTX *c, const unsigned char *plain, size_t n,
                char *dst)
{
    unsigned char mac[MR_HMAC_LEN];
    int rc;

    if ((rc = hmac_finish(&s->s->mac, c, mac)))
        return rc;
    memcpy(s->raw + 2, mac, MR_TOKEN_SIV_LEN);
    if ((rc = mr_token_ctr_encrypt(s, mac, plain, n, s->raw + MR_TOKEN_HEAD_LEN)))
        return rc;
    b64url(s->raw, MR_TOKEN_HEAD_LEN + n, dst);
    return MR_OK;
}

int mr_token_sign_to(struct mr_token_signer *s, const void *data, size_t len, char *dst)
{
    SHA256_CTX c;

    if (len > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    if (len)
        memcpy(s->plain + EXP_LEN, data, len);
    c = s->inner;
    if (!SHA256_Update(&c, s->plain + EXP_LEN, len))
        return MR_EINTERNAL;
    return seal(s, &c, s->plain, EXP_LEN + len, dst);
}

int mr_token_sign(const struct mr_token_key *k, struct mr_arena *a, time_t exp,
                  const void *data, size_t len, char **out)
{
    struct mr_token_signer *s;
    size_t n;
    char *t;
    int rc;

    if (len > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    n = mr_token_len(len);
    if (!(t = mr_arena_alloc(a, n + 1)))
        return MR_ENOMEM;
    if ((rc = mr_token_signer_new(k, a, exp, &s)) || (rc = mr_token_sign_to(s, data, len, t)))
        return rc;
    t[n] = '\0';
    *out = t;
    return MR_OK;
}

int mr_token_prefix_new(struct mr_token_signer *s, const void *prefix, size_t len,
                        struct mr_token_prefix **out)
{
    struct mr_token_prefix *p;
    int rc;

    if (len > MR_TOKEN_MAX_DATA)
        return MR_ETOOBIG;
    p = mr_arena_alloc(s->a, sizeof(*p));
    if (!p || !(p->plain = mr_arena_alloc(s->a, MAX_PLAIN)))
        return MR_ENOMEM;
    if ((rc = mr_arena_cleanup(s->a, prefix_wipe, p)))
        return rc;
    p->s = s;
    p->len = len;
    memcpy(p->plain, s->plain, EXP_LEN);
    if (len)
        memcpy(p->plain + EXP_LEN, prefix, len);
    p->inner = s->inner;
    if (!SHA256_Update(&p->inner, p->plain + EXP_LEN, len))
        return MR_EINTERNAL;
    *out = p;
    return MR_OK;
}

int mr_token_sign_prefixed(struct mr_token_prefix *p, const void *rest, size_t len, char *dst)
{
    SHA256_CTX c;

    if (len > MR_TOKEN_MAX_DATA - p->len)
        return MR_ETOOBIG;
    if (len)
        memcpy(p->plain + EXP_LEN + p->len, rest, len);
    c = p->inner;
    if (!SHA256_Update(&c, p->plain + EXP_LEN + p->len, len))
        return MR_EINTERNAL;
    return seal(p->s, &c, p->plain, EXP_LEN + p->len + len, dst);
}

int mr_token_verify(const struct mr_token_key *k, struct mr_arena *a, struct mr_str token,
                    time_t now, struct mr_str *data, time_t *exp)
{
    unsigned char *raw, *plain, mac[MR_HMAC_LEN];
    const struct secret *ok = NULL;
    EVP_CIPHER_CTX *ctr;
    long n;
    size_t plen;
    uint64_t e = 0;
    int got, rc = MR_OK;

    if (!token.p || token.len < mr_b64url_len(MR_TOKEN_HEAD_LEN + EXP_LEN) ||
        token.len > mr_b64url_len(MAX_RAW))
        return MR_EFORBIDDEN;
    raw = mr_arena_alloc(a, token.len / 4 * 3 + 3);
    if (!raw)
        return MR_ENOMEM;
    n = mr_b64url_decode(token.p, token.len, raw, token.len / 4 * 3 + 3);
    if (n < MR_TOKEN_HEAD_LEN + EXP_LEN || raw[0] != MR_TOKEN_VERSION)
        return MR_EFORBIDDEN;
    plen = (size_t)n - MR_TOKEN_HEAD_LEN;
    if (!(plain = mr_arena_alloc(a, plen + 1)) || !(ctr = EVP_CIPHER_CTX_new()))
        return MR_ENOMEM;
    /* Every secret with this key id (one, but for a collision of ids):
     * decrypt under the SIV, then the SIV must be what the plaintext
     * gives. */
    for (size_t i = 0; i < k->n && !ok && !rc; i++) {
        const struct secret *s = &k->s[i];
        SHA256_CTX c;
        if (s->id != raw[1])
            continue;
        c = s->mac.inner;
        if (!EVP_DecryptInit_ex(ctr, k->ctr, NULL, s->enc, raw + 2) ||
            !EVP_DecryptUpdate(ctr, plain, &got, raw + MR_TOKEN_HEAD_LEN, (int)plen) ||
            (size_t)got != plen || !SHA256_Update(&c, raw, 2) ||
            !SHA256_Update(&c, plain, plen))
            rc = MR_EINTERNAL;
        else if (!(rc = hmac_finish(&s->mac, &c, mac)) &&
                 !CRYPTO_memcmp(mac, raw + 2, MR_TOKEN_SIV_LEN))
            ok = s;
        OPENSSL_cleanse(&c, sizeof(c));
    }
    EVP_CIPHER_CTX_free(ctr);
    if (rc)
        return rc;
    if (!ok)
        return MR_EFORBIDDEN;
    for (int i = 0; i < EXP_LEN; i++)
        e = e << 8 | plain[i];
    plain[plen] = '\0';
    if (exp)
        *exp = (time_t)e;
    if (data)
        *data = (struct mr_str){ (char *)plain + EXP_LEN, plen - EXP_LEN };
    if ((uint64_t)now >= e)
        return MR_ETOKEN_EXPIRED;
    return MR_OK;
}
