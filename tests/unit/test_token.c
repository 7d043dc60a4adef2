/* test_token.c - HMAC-SHA256 (RFC 4231), base64url, and opaque tokens:
 * the documented format rebuilt with libcrypto's one-shot APIs, AES-256-CTR
 * against libcrypto's, tampering, rotation and the caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/token.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#define HEAD_LEN 18  /* version, key id, SIV */
#define MAX_DATA (MR_TOKEN_MAX_PAYLOAD - HEAD_LEN - 8)
#define SECRET "test secret, at least 32 characters"

/* ---- helpers ------------------------------------------------------------- */

struct fix {
    struct mr_arena a;
    struct mr_token_key *k;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    mr_arena_init(&f->a, 0);
    f->k = mr_token_key_new(SECRET, strlen(SECRET));
    if (!f->k) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    mr_token_key_free(f->k);
    mr_arena_free(&f->a);
    free(f);
    return 0;
}

static size_t unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
    return n;
}

/* ---- HMAC-SHA256: RFC 4231 section 4 ------------------------------------- */

static void test_rfc4231(void **state)
{
    static const struct {
        int tc;
        unsigned char keybyte;  /* the key: keylen times keybyte ... */
        size_t keylen;
        const char *keyhex;     /* ... or these bytes */
        const char *data;       /* the data as text ... */
        unsigned char databyte; /* ... or datalen times databyte */
        size_t datalen;
        const char *mac;        /* hex; compared over its length */
    } cases[] = {
        { 1, 0x0b, 20, NULL, "Hi There", 0, 0,
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
        { 2, 0, 0, "4a656665", "what do ya want for nothing?", 0, 0,
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
        { 3, 0xaa, 20, NULL, NULL, 0xdd, 50,
          "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
        { 4, 0, 0, "0102030405060708090a0b0c0d0e0f10111213141516171819", NULL, 0xcd, 50,
          "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
        /* Test case 5 specifies a truncated (128-bit) output. */
        { 5, 0x0c, 20, NULL, "Test With Truncation", 0, 0,
          "a3b6167473100ee06e0c796c2955552b" },
        { 6, 0xaa, 131, NULL, "Test Using Larger Than Block-Size Key - Hash Key First", 0, 0,
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
        { 7, 0xaa, 131, NULL,
          "This is a test using a larger than block-size key and a larger than "
          "block-size data. The key needs to be hashed before being used by the "
          "HMAC algorithm.", 0, 0,
          "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char key[200], data[200], want[MR_HMAC_LEN], got[MR_HMAC_LEN];
        size_t keylen, datalen, maclen;
        struct mr_token_key *k;

        if (cases[i].keyhex) {
            keylen = unhex(cases[i].keyhex, key, sizeof(key));
        } else {
            keylen = cases[i].keylen;
            memset(key, cases[i].keybyte, keylen);
        }
        if (cases[i].data) {
            datalen = strlen(cases[i].data);
            memcpy(data, cases[i].data, datalen);
        } else {
            datalen = cases[i].datalen;
            memset(data, cases[i].databyte, datalen);
        }
        maclen = unhex(cases[i].mac, want, sizeof(want));
        k = mr_token_key_new(key, keylen);
        assert_non_null(k);
        memset(got, 0, sizeof(got));
        assert_int_equal(mr_hmac_sha256(k, 0, data, datalen, got), MR_OK);
        if (memcmp(got, want, maclen) != 0)
            fail_msg("RFC 4231 test case %d: wrong HMAC", cases[i].tc);
        /* The key is reusable: a second MAC is the same. */
        memset(got, 0, sizeof(got));
        assert_int_equal(mr_hmac_sha256(k, 0, data, datalen, got), MR_OK);
        assert_memory_equal(got, want, maclen);
        mr_token_key_free(k);
    }
}

static void test_hmac_misc(void **state)
{
    unsigned char m1[MR_HMAC_LEN], m2[MR_HMAC_LEN];
    struct mr_token_key *k1, *k2;
    unsigned char key64[64], key65[65];
    (void)state;

    /* An empty key and empty data are valid. */
    k1 = mr_token_key_new("", 0);
    assert_non_null(k1);
    assert_int_equal(mr_hmac_sha256(k1, 0, "", 0, m1), MR_OK);
    /* HMAC-SHA256("", "") */
    unhex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", m2, sizeof(m2));
    assert_memory_equal(m1, m2, MR_HMAC_LEN);
    mr_token_key_free(k1);
    mr_token_key_free(NULL);

    /* Keys at the block size and one past it (which is hashed first)
     * give different MACs. */
    memset(key64, 'k', sizeof(key64));
    memset(key65, 'k', sizeof(key65));
    k1 = mr_token_key_new(key64, sizeof(key64));
    k2 = mr_token_key_new(key65, sizeof(key65));
    assert_int_equal(mr_hmac_sha256(k1, 0, "x", 1, m1), MR_OK);
    assert_int_equal(mr_hmac_sha256(k2, 0, "x", 1, m2), MR_OK);
    assert_memory_not_equal(m1, m2, MR_HMAC_LEN);
    mr_token_key_free(k1);
    mr_token_key_free(k2);
}

/* ---- base64url ----------------------------------------------------------- */

static void test_b64_vectors(void **state)
{
    /* RFC 4648 section 10, without padding, and the URL alphabet. */
    static const struct {
        const char *raw;
        size_t n;
        const char *enc;
    } cases[] = {
        { "", 0, "" },
        { "f", 1, "Zg" },
        { "fo", 2, "Zm8" },
        { "foo", 3, "Zm9v" },
        { "foob", 4, "Zm9vYg" },
        { "fooba", 5, "Zm9vYmE" },
        { "foobar", 6, "Zm9vYmFy" },
        { "\xfb\xff", 2, "-_8" },
        { "\xfb\xef\xbe", 3, "----" },
        { "\xff\xff\xff", 3, "____" },
        { "\0\0\0", 3, "AAAA" },
        { "\0", 1, "AA" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char enc[32];
        unsigned char dec[32];
        size_t n = mr_b64url_encode(cases[i].raw, cases[i].n, enc);
        assert_int_equal(n, strlen(cases[i].enc));
        assert_int_equal(n, mr_b64url_len(cases[i].n));
        assert_string_equal(enc, cases[i].enc);
        assert_int_equal(mr_b64url_decode(cases[i].enc, n, dec, sizeof(dec)), (long)cases[i].n);
        assert_memory_equal(dec, cases[i].raw, cases[i].n);
    }
}

static void test_b64_roundtrip(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 70; n++) {
        unsigned char raw[70], dec[80];
        char enc[(70 + 2) / 3 * 4 + 1 + 1];
        size_t len;

        for (size_t i = 0; i < n; i++)
            raw[i] = (unsigned char)(i * 37 + n * 11 + 0xf0);
        memset(enc, '#', sizeof(enc));
        len = mr_b64url_encode(raw, n, enc);
        assert_int_equal(len, mr_b64url_len(n));
        assert_int_equal(len, (n * 4 + 2) / 3);
        assert_int_equal(enc[len], '\0');
        for (size_t i = 0; i < len; i++)
            assert_non_null(memchr(alphabet, enc[i], 64));
        memset(dec, 0, sizeof(dec));
        assert_int_equal(mr_b64url_decode(enc, len, dec, sizeof(dec)), (long)n);
        assert_memory_equal(dec, raw, n);
        /* Exactly enough room is enough; one byte less is not. */
        assert_int_equal(mr_b64url_decode(enc, len, dec, n), (long)n);
        if (n)
            assert_int_equal(mr_b64url_decode(enc, len, dec, n - 1), -1);
    }
}

static void test_b64_refuse(void **state)
{
    static const struct {
        const char *in;
        size_t n;            /* 0: strlen */
        const char *why;
    } cases[] = {
        { "Zm9v+A", 0, "standard alphabet +" },
        { "Zm9v/A", 0, "standard alphabet /" },
        { "Zm 9v", 0, "space" },
        { "Zm9v\n", 0, "newline" },
        { "Zm9v.A", 0, "dot" },
        { "Zm9\xc3\xa9", 0, "non-ASCII" },
        { "Zm\0v", 4, "NUL" },
        { "Zg==", 0, "padding" },
        { "Zm8=", 0, "padding" },
        { "Zg=", 0, "padding" },
        { "Zm9vYg==", 0, "padding" },
        { "====", 0, "padding only" },
        { "A", 0, "impossible length 1" },
        { "AAAAA", 0, "impossible length 5" },
        { "Zm9vYmFyZ", 0, "impossible length 9" },
        { "Zh", 0, "stray bits after 1 byte" },
        { "Zn", 0, "stray bits after 1 byte" },
        { "Z_", 0, "stray bits after 1 byte" },
        { "Zm9", 0, "stray bits after 2 bytes" },
        { "Zm-", 0, "stray bits after 2 bytes" },
        { "Zm9vYmF", 0, "stray bits after 5 bytes" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char dec[32];
        size_t n = cases[i].n ? cases[i].n : strlen(cases[i].in);
        long got = mr_b64url_decode(cases[i].in, n, dec, sizeof(dec));
        if (got != -1)
            fail_msg("decode \"%s\" (%s): got %ld, want -1", cases[i].in, cases[i].why, got);
    }
    /* Every single bad byte at every position of a valid string. */
    for (int c = 1; c < 256; c++) {
        char s[9] = "Zm9vYmFy";
        unsigned char dec[8];
        if (memchr(alphabet, c, 64))
            continue;
        for (size_t pos = 0; pos < 8; pos++) {
            s[pos] = (char)c;
            assert_int_equal(mr_b64url_decode(s, 8, dec, sizeof(dec)), -1);
            memcpy(s, "Zm9vYmFy", 8);
        }
    }
}

/* Exactly one encoding is accepted for each byte string: of the 64 last
 * characters, only the canonical ones decode. */
static void test_b64_canonical(void **state)
{
    (void)state;
    for (int tail = 2; tail <= 3; tail++) {
        int ok = 0;
        for (int c = 0; c < 64; c++) {
            char s[4] = { 'Z', 'm', 'A', 0 };
            unsigned char dec[4];
            s[tail - 1] = alphabet[c];
            if (mr_b64url_decode(s, (size_t)tail, dec, sizeof(dec)) >= 0) {
                char re[8];
                ok++;
                mr_b64url_encode(dec, (size_t)tail - 1, re);
                assert_memory_equal(re, s, (size_t)tail);
            }
        }
        /* 1 byte: 4 of 64 last characters; 2 bytes: 16 of 64. */
        assert_int_equal(ok, tail == 2 ? 4 : 16);
    }
}

/* The encoder is this module's own; libcrypto's EVP_EncodeBlock, mapped to
 * the URL alphabet and without its padding, is the reference: every length
 * 0..300 of random bytes, and every single byte value at each position of
 * a group. */
static void ref_b64url(const unsigned char *raw, size_t n, char *out)
{
    int o = n ? EVP_EncodeBlock((unsigned char *)out, raw, (int)n) : 0;
    out[o] = '\0';
    while (o > 0 && out[o - 1] == '=')
        out[--o] = '\0';
    for (int i = 0; i < o; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

static void test_b64_libcrypto(void **state)
{
    unsigned char raw[300];
    char want[(300 + 2) / 3 * 4 + 1], got[sizeof(want) + 8];
    uint32_t x = 0x12345678;
    (void)state;

    for (int round = 0; round < 20; round++) {
        for (size_t n = 0; n <= sizeof(raw); n++) {
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                raw[i] = (unsigned char)(x >> 11);
            }
            ref_b64url(raw, n, want);
            memset(got, '#', sizeof(got));
            assert_int_equal(mr_b64url_encode(raw, n, got), strlen(want));
            assert_string_equal(got, want);
            /* Nothing is written past the NUL. */
            assert_int_equal(got[strlen(want) + 1], '#');
        }
    }
    for (int b = 0; b < 256; b++) {
        for (size_t pos = 0; pos < 6; pos++) {
            memset(raw, 0x5a, 6);
            raw[pos] = (unsigned char)b;
            for (size_t n = pos + 1; n <= 6; n++) {
                ref_b64url(raw, n, want);
                mr_b64url_encode(raw, n, got);
                assert_string_equal(got, want);
            }
        }
    }
}

/* ---- tokens -------------------------------------------------------------- */

static const char url[] = "https://cdn.example.com/live/seg-00042.ts?sig=a%2Fb&exp=1";
#define EXP ((time_t)2000000000)
#define NOW ((time_t)1700000000)

static char *sign_ok(struct fix *f, time_t exp, const void *data, size_t len)
{
    char *tok = NULL;
    assert_int_equal(mr_token_sign(f->k, &f->a, exp, data, len, &tok), MR_OK);
    assert_non_null(tok);
    return tok;
}

/* HKDF-SHA256 through EVP_PKEY (another libcrypto API than token.c's). */
static void ref_hkdf(const char *secret, const char *info, unsigned char *out, size_t n)
{
    static const char salt[] = "mediarelay token v2";
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t got = n;

    assert_non_null(c);
    assert_int_equal(EVP_PKEY_derive_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_salt(c, (const unsigned char *)salt,
                                                 (int)strlen(salt)), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(c, (const unsigned char *)secret,
                                                (int)strlen(secret)), 1);
    assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)info,
                                                 (int)strlen(info)), 1);
    assert_int_equal(EVP_PKEY_derive(c, out, &got), 1);
    assert_int_equal(got, n);
    EVP_PKEY_CTX_free(c);
}

/* AES-256-CTR with libcrypto's own mode. */
static void ref_ctr(const unsigned char key[32], const unsigned char iv[16],
                    const unsigned char *in, size_t n, unsigned char *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int got = 0, fin = 0;

    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, out, &got, in, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, out + got, &fin), 1);
    assert_int_equal((size_t)(got + fin), n);
    EVP_CIPHER_CTX_free(c);
}

/* The documented format (token.h), made with libcrypto's one-shot APIs:
 * base64url of version 2, key id, SIV = HMAC-SHA256(Kmac, version | key id
 * | exp | data)[0..16), AES-256-CTR(Kenc, SIV, exp | data). */
static void doc_token(const char *secret, time_t exp, const void *data, size_t len, char *out)
{
    unsigned char kmac[32], kenc[32], kid, mac[MR_HMAC_LEN];
    unsigned char *msg = malloc(2 + 8 + len + 1), *raw = malloc(HEAD_LEN + 8 + len + 1);
    unsigned int maclen = 0;

    assert_non_null(msg);
    assert_non_null(raw);
    ref_hkdf(secret, "mediarelay token siv", kmac, sizeof(kmac));
    ref_hkdf(secret, "mediarelay token enc", kenc, sizeof(kenc));
    ref_hkdf(secret, "mediarelay token key id", &kid, 1);
    msg[0] = 2;
    msg[1] = kid;
    for (int i = 0; i < 8; i++)
        msg[2 + i] = (unsigned char)((uint64_t)exp >> (56 - 8 * i));
    if (len)
        memcpy(msg + 10, data, len);
    assert_non_null(HMAC(EVP_sha256(), kmac, sizeof(kmac), msg, 10 + len, mac, &maclen));
    raw[0] = 2;
    raw[1] = kid;
    memcpy(raw + 2, mac, 16);
    ref_ctr(kenc, mac, msg + 2, 8 + len, raw + HEAD_LEN);
    ref_b64url(raw, HEAD_LEN + 8 + len, out);
    free(msg);
    free(raw);
}

static void test_roundtrip(void **state)
{
    struct fix *f = *state;
    static const char *const datas[] = { "", "x", "ab", "abc", url, "media:42" };

    for (size_t i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
        size_t len = strlen(datas[i]);
        char *tok = sign_ok(f, EXP, datas[i], len);
        struct mr_str data = { NULL, 0 };
        time_t exp = 0;

        /* base64url of head, expiry and data, nothing else */
        assert_int_equal(strlen(tok), mr_b64url_len(HEAD_LEN + 8 + len));
        assert_int_equal(strlen(tok), mr_token_len(len));
        for (const char *c = tok; *c; c++)
            assert_true(memchr(alphabet, *c, 64));
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, &data, &exp), MR_OK);
        assert_int_equal(exp, EXP);
        assert_int_equal(data.len, len);
        assert_memory_equal(data.p, datas[i], len);
        assert_int_equal(data.p[len], '\0');
        /* The outputs are optional. */
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, NULL, NULL), MR_OK);
    }
}

/* A token tells nothing of its data: neither the data's bytes nor their
 * base64 (at any of the three alignments) appear in it or in its decoded
 * bytes, and two tokens for data sharing a long prefix share nothing past
 * the version and key id. */
static void test_opaque(void **state)
{
    struct fix *f = *state;
    static const char a[] = "https://cdn.example.com/vod/movie/seg-00001.ts?sig=SECRETSIG";
    static const char b[] = "https://cdn.example.com/vod/movie/seg-00002.ts?sig=SECRETSIG";
    char *ta = sign_ok(f, EXP, a, strlen(a)), *tb = sign_ok(f, EXP, b, strlen(b));
    unsigned char raw[512];
    long n = mr_b64url_decode(ta, strlen(ta), raw, sizeof(raw));

    assert_true(n > 0);
    for (size_t off = 0; off < 3; off++) {
        char enc[256];
        mr_b64url_encode(a + off, 12, enc);
        assert_null(strstr(ta, enc));
    }
    for (const char *w = a; *w; w += 4)
        assert_null(memmem(raw, (size_t)n, w, strlen(w) < 6 ? strlen(w) : 6));
    assert_true(memmem(raw, (size_t)n, "SECRETSIG", 9) == NULL);
    /* same length, same first 3 characters (version, key id), then apart */
    assert_int_equal(strlen(ta), strlen(tb));
    assert_memory_equal(ta, tb, 2);
    {
        size_t same = 0;
        for (size_t i = 3; ta[i]; i++)
            same += ta[i] == tb[i];
        assert_true(same < strlen(ta) / 8);   /* ~1/64 agree by chance */
    }
}

/* mr_token_sign, mr_token_sign_to and prefixed tokens all give the
 * documented format, for every split of the data into prefix and rest. */
static void test_documented_format(void **state)
{
    struct fix *f = *state;
    char data[300], want[500], got[500], *tok;
    struct mr_token_signer *s;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + 1);
    assert_int_equal(mr_token_signer_new(f->k, &f->a, EXP, &s), MR_OK);
    for (size_t len = 0; len <= sizeof(data); len += len < 40 ? 1 : 13) {
        doc_token(SECRET, EXP, data, len, want);
        assert_int_equal(mr_token_len(len), strlen(want));
        assert_int_equal(mr_token_sign(f->k, &f->a, EXP, data, len, &tok), MR_OK);
        assert_string_equal(tok, want);
        memset(got, '#', sizeof(got));
        assert_int_equal(mr_token_sign_to(s, data, len, got), MR_OK);
        assert_memory_equal(got, want, strlen(want));
        assert_int_equal(got[strlen(want)], '#');   /* no NUL written */
        for (size_t split = 0; split <= len; split += split < 8 || len - split < 8 ? 1 : 11) {
            struct mr_token_prefix *p = NULL;
            assert_int_equal(mr_token_prefix_new(s, data, split, &p), MR_OK);
            memset(got, '#', sizeof(got));
            assert_int_equal(mr_token_sign_prefixed(p, data + split, len - split, got), MR_OK);
            assert_memory_equal(got, want, strlen(want));
            assert_int_equal(got[strlen(want)], '#');
            /* A prefix serves many tokens; a token between does not
             * disturb it. */
            assert_int_equal(mr_token_sign_to(s, "other", 5, got), MR_OK);
            assert_int_equal(mr_token_sign_prefixed(p, data + split, len - split, got), MR_OK);
            assert_memory_equal(got, want, strlen(want));
        }
    }
}

/* The signer's AES-256-CTR is libcrypto's, for every length a token has
 * and counters about to carry within the low 64 bits and across all 128. */
static void test_ctr(void **state)
{
    struct fix *f = *state;
    static const char *const ivs[] = {
        "00000000000000000000000000000000", "0123456789abcdef0123456789abcdef",
        "00000000000000fffffffffffffffffe", "0000000000000000fffffffffffffff0",
        "ffffffffffffffffffffffffffffffff", "ffffffffffffffffffffffffffffff00",
        "7fffffffffffffffffffffffffffffff", "000000000000000000000000ffffffff",
    };
    size_t max = 8 + MR_TOKEN_MAX_DATA;
    unsigned char kenc[32], iv[16], *in = malloc(max), *got = malloc(max), *want = malloc(max);
    struct mr_token_signer *s;

    assert_non_null(in);
    assert_non_null(got);
    assert_non_null(want);
    for (size_t i = 0; i < max; i++)
        in[i] = (unsigned char)(i * 131 + 7);
    ref_hkdf(SECRET, "mediarelay token enc", kenc, sizeof(kenc));
    assert_int_equal(mr_token_signer_new(f->k, &f->a, EXP, &s), MR_OK);
    for (size_t v = 0; v < sizeof(ivs) / sizeof(ivs[0]); v++) {
        unhex(ivs[v], iv, sizeof(iv));
        for (size_t n = 0; n <= max; n += n < 70 ? 1 : n < 4000 ? 97 : 1) {
            assert_int_equal(mr_token_ctr_encrypt(s, iv, in, n, got), MR_OK);
            ref_ctr(kenc, iv, in, n, want);
            if (n && memcmp(got, want, n))
                fail_msg("CTR differs from libcrypto's: iv %s, %zu bytes", ivs[v], n);
        }
    }
    assert_int_equal(mr_token_ctr_encrypt(s, iv, in, max + 1, got), MR_ETOOBIG);
    free(in);
    free(got);
    free(want);
}

static void test_deterministic(void **state)
{
    struct fix *f = *state;
    struct mr_token_key *same = mr_token_key_new(SECRET, strlen(SECRET));
    char *t1, *t2, *t3;

    assert_non_null(same);
    t1 = sign_ok(f, EXP, url, strlen(url));
    t2 = sign_ok(f, EXP, url, strlen(url));
    assert_string_equal(t1, t2);
    assert_int_equal(mr_token_sign(same, &f->a, EXP, url, strlen(url), &t3), MR_OK);
    assert_string_equal(t1, t3);
    /* Any input changes it. */
    t2 = sign_ok(f, EXP + 1, url, strlen(url));
    assert_string_not_equal(t1, t2);
    t2 = sign_ok(f, EXP, url, strlen(url) - 1);
    assert_string_not_equal(t1, t2);
    mr_token_key_free(same);
}

/* Every single-character change of a token is refused. */
static void test_tamper(void **state)
{
    struct fix *f = *state;
    char *tok = sign_ok(f, EXP, url, strlen(url));
    size_t len = strlen(tok);
    char *bad = malloc(len + 1);

    assert_non_null(bad);
    for (size_t i = 0; i < len; i++) {
        for (int c = 0; c <= 64; c++) {
            char repl = c < 64 ? alphabet[c] : '.';
            int rc;
            if (repl == tok[i])
                continue;
            memcpy(bad, tok, len + 1);
            bad[i] = repl;
            rc = mr_token_verify(f->k, &f->a, (struct mr_str){ bad, len }, NOW, NULL, NULL);
            if (rc != MR_EFORBIDDEN)
                fail_msg("token with [%zu] = '%c': got %d, want MR_EFORBIDDEN", i, repl, rc);
        }
        mr_arena_reset(&f->a);
        tok = sign_ok(f, EXP, url, strlen(url));
    }
    free(bad);
}

static void test_truncate_extend(void **state)
{
    struct fix *f = *state;
    char *tok = sign_ok(f, EXP, url, strlen(url));
    size_t len = strlen(tok);
    char *longer;

    for (size_t n = 0; n < len; n++)
        assert_int_equal(mr_token_verify(f->k, &f->a, (struct mr_str){ tok, n }, NOW, NULL, NULL),
                         MR_EFORBIDDEN);
    for (size_t n = 1; n < len; n++)
        assert_int_equal(mr_token_verify(f->k, &f->a, (struct mr_str){ tok + n, len - n }, NOW,
                                         NULL, NULL),
                         MR_EFORBIDDEN);
    longer = mr_arena_printf(&f->a, "%sA", tok);
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(longer), NOW, NULL, NULL),
                     MR_EFORBIDDEN);
    longer = mr_arena_printf(&f->a, "%sAAAA", tok);
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(longer), NOW, NULL, NULL),
                     MR_EFORBIDDEN);
    longer = mr_arena_printf(&f->a, "%s.", tok);
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(longer), NOW, NULL, NULL),
                     MR_EFORBIDDEN);
    longer = mr_arena_printf(&f->a, "A%s", tok);
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(longer), NOW, NULL, NULL),
                     MR_EFORBIDDEN);
    assert_int_equal(mr_token_verify(f->k, &f->a, MR_STR(""), NOW, NULL, NULL), MR_EFORBIDDEN);
    assert_int_equal(mr_token_verify(f->k, &f->a, MR_STR("."), NOW, NULL, NULL), MR_EFORBIDDEN);
    assert_int_equal(mr_token_verify(f->k, &f->a, MR_STR_NULL, NOW, NULL, NULL), MR_EFORBIDDEN);
}

static void test_other_key(void **state)
{
    struct fix *f = *state;
    static const char *const secrets[] = { "test secret, at least 32 characterS",
                                           SECRET " ", "", "x" };
    char *tok = sign_ok(f, EXP, url, strlen(url));

    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        struct mr_token_key *other = mr_token_key_new(secrets[i], strlen(secrets[i]));
        char *tok2 = NULL;
        assert_non_null(other);
        assert_int_equal(mr_token_verify(other, &f->a, mr_str_c(tok), NOW, NULL, NULL),
                         MR_EFORBIDDEN);
        /* And the other way round; even an expired foreign token is just
         * forbidden. */
        assert_int_equal(mr_token_sign(other, &f->a, EXP, url, strlen(url), &tok2), MR_OK);
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok2), NOW, NULL, NULL),
                         MR_EFORBIDDEN);
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok2), EXP + 10, NULL, NULL),
                         MR_EFORBIDDEN);
        mr_token_key_free(other);
    }
}

/* Rotation: a ring made with a new secret and the old one as previous
 * makes tokens with the new one only and accepts both; a ring without the
 * old one refuses its tokens.  /stream links (mr_hmac_sha256 by index)
 * have each secret of the ring. */
static void test_rotation(void **state)
{
    struct fix *f = *state;
    static const char *old = SECRET, *fresh = "a brand new secret of 32 characters..";
    char *const previous[] = { (char *)old };
    struct mr_token_key *ring = mr_token_key_ring(fresh, previous, 1);
    struct mr_token_key *alone = mr_token_key_new(fresh, strlen(fresh));
    char *told = sign_ok(f, EXP, url, strlen(url)), *tnew = NULL, *talone = NULL;
    unsigned char m1[MR_HMAC_LEN], m2[MR_HMAC_LEN];
    struct mr_str data;

    assert_non_null(ring);
    assert_non_null(alone);
    assert_int_equal(mr_token_key_count(ring), 2);
    assert_int_equal(mr_token_key_id(ring, 1), mr_token_key_id(f->k, 0));
    assert_int_equal(mr_token_verify(ring, &f->a, mr_str_c(told), NOW, &data, NULL), MR_OK);
    assert_true(mr_str_eq_c(data, url));
    assert_int_equal(mr_token_sign(ring, &f->a, EXP, url, strlen(url), &tnew), MR_OK);
    assert_int_equal(mr_token_sign(alone, &f->a, EXP, url, strlen(url), &talone), MR_OK);
    assert_string_equal(tnew, talone);
    assert_int_equal(mr_token_verify(alone, &f->a, mr_str_c(told), NOW, NULL, NULL),
                     MR_EFORBIDDEN);
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tnew), NOW, NULL, NULL),
                     MR_EFORBIDDEN);
    /* The raw-secret MACs, by index. */
    assert_int_equal(mr_hmac_sha256(ring, 1, "m", 1, m1), MR_OK);
    assert_int_equal(mr_hmac_sha256(f->k, 0, "m", 1, m2), MR_OK);
    assert_memory_equal(m1, m2, MR_HMAC_LEN);
    assert_int_equal(mr_hmac_sha256(ring, 2, "m", 1, m1), MR_EINVAL);
    /* A ring holds at most 15 previous secrets. */
    for (int i = 0; i < 14; i++)
        assert_int_equal(mr_token_key_add_previous(ring, "p", 1), MR_OK);
    assert_int_equal(mr_token_key_add_previous(ring, "p", 1), MR_ETOOBIG);
    mr_token_key_free(ring);
    mr_token_key_free(alone);
}

/* Two secrets whose key ids collide are both tried. */
static void test_key_id_collision(void **state)
{
    struct fix *f = *state;
    char other[64];
    struct mr_token_key *probe = NULL, *ring;
    char *const previous[1] = { other };
    char *tok, *tok2;
    unsigned id = mr_token_key_id(f->k, 0);
    int i;

    /* a secret with the same key id: one in 256 */
    for (i = 0; i < 5000; i++) {
        snprintf(other, sizeof(other), "colliding secret number %d, padded to 32", i);
        probe = mr_token_key_new(other, strlen(other));
        assert_non_null(probe);
        if (mr_token_key_id(probe, 0) == id)
            break;
        mr_token_key_free(probe);
        probe = NULL;
    }
    assert_non_null(probe);
    ring = mr_token_key_ring(SECRET, previous, 1);
    assert_non_null(ring);
    assert_int_equal(mr_token_sign(probe, &f->a, EXP, url, strlen(url), &tok), MR_OK);
    tok2 = sign_ok(f, EXP, url, strlen(url));
    assert_int_equal(mr_token_verify(ring, &f->a, mr_str_c(tok), NOW, NULL, NULL), MR_OK);
    assert_int_equal(mr_token_verify(ring, &f->a, mr_str_c(tok2), NOW, NULL, NULL), MR_OK);
    mr_token_key_free(probe);
    mr_token_key_free(ring);
}

static void test_expired(void **state)
{
    struct fix *f = *state;
    char *tok = sign_ok(f, EXP, url, strlen(url));
    static const struct {
        time_t now;
        int rc;
    } cases[] = {
        { 0, MR_OK },
        { EXP - 1, MR_OK },
        { EXP, MR_ETOKEN_EXPIRED },
        { EXP + 1, MR_ETOKEN_EXPIRED },
        { EXP + 100000000, MR_ETOKEN_EXPIRED },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_str data = { NULL, 0 };
        time_t exp = 0;
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), cases[i].now, &data, &exp),
                         cases[i].rc);
        /* What was sealed is reported for expired tokens too. */
        assert_int_equal(exp, EXP);
        assert_int_equal(data.len, strlen(url));
        assert_memory_equal(data.p, url, data.len);
    }
    /* An expiry of 0 is always past. */
    tok = sign_ok(f, 0, "x", 1);
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), 1, NULL, NULL),
                     MR_ETOKEN_EXPIRED);
}

/* The data cap holds whichever way a token is made. */
static void test_size_cap(void **state)
{
    struct fix *f = *state;
    char *data = malloc(MAX_DATA + 1), *dst = malloc(mr_token_len(MAX_DATA + 1) + 1), *tok;
    struct mr_token_prefix *p = NULL;
    struct mr_token_signer *s;
    struct mr_str got;

    assert_non_null(data);
    assert_non_null(dst);
    assert_int_equal(MR_TOKEN_MAX_DATA, MAX_DATA);
    for (size_t i = 0; i < MAX_DATA + 1; i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(mr_token_signer_new(f->k, &f->a, EXP, &s), MR_OK);
    assert_int_equal(mr_token_sign_to(s, data, MAX_DATA, dst), MR_OK);
    assert_int_equal(mr_token_sign_to(s, data, MAX_DATA + 1, dst), MR_ETOOBIG);
    assert_int_equal(mr_token_sign_to(s, data, SIZE_MAX, dst), MR_ETOOBIG);
    assert_int_equal(mr_token_prefix_new(s, data, MAX_DATA + 1, &p), MR_ETOOBIG);
    assert_int_equal(mr_token_prefix_new(s, data, MAX_DATA, &p), MR_OK);
    assert_int_equal(mr_token_sign_prefixed(p, "", 0, dst), MR_OK);
    assert_int_equal(mr_token_sign_prefixed(p, "x", 1, dst), MR_ETOOBIG);
    assert_int_equal(mr_token_prefix_new(s, data, 100, &p), MR_OK);
    assert_int_equal(mr_token_sign_prefixed(p, data + 100, MAX_DATA - 100, dst), MR_OK);
    dst[mr_token_len(MAX_DATA)] = '\0';
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(dst), NOW, &got, NULL), MR_OK);
    assert_int_equal(got.len, MAX_DATA);
    assert_memory_equal(got.p, data, MAX_DATA);
    assert_int_equal(mr_token_sign(f->k, &f->a, EXP, data, MAX_DATA, &tok), MR_OK);
    assert_string_equal(tok, dst);
    assert_int_equal(mr_token_sign_prefixed(p, data, MAX_DATA - 99, dst), MR_ETOOBIG);
    assert_int_equal(mr_token_sign_prefixed(p, data, SIZE_MAX, dst), MR_ETOOBIG);
    tok = NULL;
    assert_int_equal(mr_token_sign(f->k, &f->a, EXP, data, MAX_DATA + 1, &tok), MR_ETOOBIG);
    assert_null(tok);
    free(data);
    free(dst);
}

/* Tokens sealed with the right keys but of another version, shorter than a
 * head and an expiry, or longer than the cap, are refused. */
static void test_forged_payloads(void **state)
{
    struct fix *f = *state;
    size_t lens[] = { 0, 1, 2, 7, 8, 100, MR_TOKEN_MAX_DATA + 1, MR_TOKEN_MAX_DATA + 40 };
    unsigned char kmac[32], kenc[32], kid, mac[MR_HMAC_LEN];
    size_t max = MR_TOKEN_MAX_DATA + 64;
    unsigned char *msg = calloc(1, 10 + max), *raw = calloc(1, HEAD_LEN + 8 + max);
    char *tok = malloc((HEAD_LEN + 8 + max) / 3 * 4 + 8);
    unsigned int maclen;

    assert_non_null(msg);
    assert_non_null(raw);
    assert_non_null(tok);
    ref_hkdf(SECRET, "mediarelay token siv", kmac, sizeof(kmac));
    ref_hkdf(SECRET, "mediarelay token enc", kenc, sizeof(kenc));
    ref_hkdf(SECRET, "mediarelay token key id", &kid, 1);
    for (int version = 0; version < 256; version++)
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            /* the plaintext: lens[i] bytes (an expiry is 8 of them) */
            size_t n = lens[i];
            int want;
            if (version != 2 && version != 1 && version != 3 && version != 0 && version != 255 &&
                i != 4)
                continue;
            msg[0] = (unsigned char)version;
            msg[1] = kid;
            for (int b = 0; b < 8 && b < (int)n; b++)
                msg[2 + b] = (unsigned char)((uint64_t)EXP >> (56 - 8 * b));
            assert_non_null(HMAC(EVP_sha256(), kmac, sizeof(kmac), msg, 2 + n, mac, &maclen));
            raw[0] = (unsigned char)version;
            raw[1] = kid;
            memcpy(raw + 2, mac, 16);
            if (n)
                ref_ctr(kenc, mac, msg + 2, n, raw + HEAD_LEN);
            ref_b64url(raw, HEAD_LEN + n, tok);
            want = version == 2 && n >= 8 && n <= 8 + MR_TOKEN_MAX_DATA ? MR_OK : MR_EFORBIDDEN;
            if (mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, NULL, NULL) != want)
                fail_msg("version %d, %zu bytes: want %d", version, n, want);
            mr_arena_reset(&f->a);
        }
    free(msg);
    free(raw);
    free(tok);
}

static void test_nul_bytes(void **state)
{
    struct fix *f = *state;
    static const unsigned char bin[] = { 0, 'a', 0, 0, 0xff, 'b', 0 };
    char *tok = sign_ok(f, EXP, bin, sizeof(bin));
    struct mr_str data;

    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, &data, NULL), MR_OK);
    assert_int_equal(data.len, sizeof(bin));
    assert_memory_equal(data.p, bin, sizeof(bin));
    assert_int_equal(data.p[data.len], '\0');
    /* Tokens for data that differ only after a NUL differ. */
    assert_string_not_equal(tok, sign_ok(f, EXP, bin, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_hmac_misc),
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_roundtrip),
        cmocka_unit_test(test_b64_refuse),
        cmocka_unit_test(test_b64_canonical),
        cmocka_unit_test(test_b64_libcrypto),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opaque, setup, teardown),
        cmocka_unit_test_setup_teardown(test_documented_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_extend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_id_collision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_payloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
