/* test_token.c - HMAC-SHA256 (RFC 4231), base64url, and signed tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "arena.h"
#include "error.h"
#include "limits.h"
#include "token.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#define HEAD_LEN 9   /* version byte + 8 bytes of expiry */
#define MAX_DATA (MR_TOKEN_MAX_PAYLOAD - HEAD_LEN)

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
    f->k = mr_token_key_new("test secret", 11);
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
        assert_int_equal(mr_hmac_sha256(k, data, datalen, got), MR_OK);
        if (memcmp(got, want, maclen) != 0)
            fail_msg("RFC 4231 test case %d: wrong HMAC", cases[i].tc);
        /* The key is reusable: a second MAC is the same. */
        memset(got, 0, sizeof(got));
        assert_int_equal(mr_hmac_sha256(k, data, datalen, got), MR_OK);
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
    assert_int_equal(mr_hmac_sha256(k1, "", 0, m1), MR_OK);
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
    assert_int_equal(mr_hmac_sha256(k1, "x", 1, m1), MR_OK);
    assert_int_equal(mr_hmac_sha256(k2, "x", 1, m2), MR_OK);
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

static void test_roundtrip(void **state)
{
    struct fix *f = *state;
    static const char *const datas[] = { "", "x", "ab", "abc", url, "media:42" };
    (void)state;

    for (size_t i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
        size_t len = strlen(datas[i]);
        char *tok = sign_ok(f, EXP, datas[i], len);
        struct mr_str data = { NULL, 0 };
        time_t exp = 0;
        const char *dot = strchr(tok, '.');

        /* base64url "." base64url, nothing else. */
        assert_non_null(dot);
        assert_null(strchr(dot + 1, '.'));
        assert_int_equal((size_t)(dot - tok), mr_b64url_len(HEAD_LEN + len));
        assert_int_equal(strlen(dot + 1), mr_b64url_len(MR_HMAC_LEN));
        for (const char *c = tok; *c; c++)
            assert_true(c == dot || memchr(alphabet, *c, 64));

        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, &data, &exp), MR_OK);
        assert_int_equal(exp, EXP);
        assert_int_equal(data.len, len);
        assert_memory_equal(data.p, datas[i], len);
        assert_int_equal(data.p[len], '\0');
        /* The outputs are optional. */
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, NULL, NULL), MR_OK);
    }
}

static void test_deterministic(void **state)
{
    struct fix *f = *state;
    struct mr_token_key *same = mr_token_key_new("test secret", 11);
    char *t1, *t2, *t3;
    (void)state;

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
    (void)state;

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
    (void)state;

    for (size_t n = 0; n < len; n++)
        assert_int_equal(mr_token_verify(f->k, &f->a, (struct mr_str){ tok, n }, NOW, NULL, NULL),
                         MR_EFORBIDDEN);
    /* Missing leading characters. */
    for (size_t n = 1; n < len; n++)
        assert_int_equal(mr_token_verify(f->k, &f->a, (struct mr_str){ tok + n, len - n }, NOW,
                                         NULL, NULL),
                         MR_EFORBIDDEN);
    /* Appended characters. */
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
    /* Oddities. */
    assert_int_equal(mr_token_verify(f->k, &f->a, MR_STR(""), NOW, NULL, NULL), MR_EFORBIDDEN);
    assert_int_equal(mr_token_verify(f->k, &f->a, MR_STR("."), NOW, NULL, NULL), MR_EFORBIDDEN);
    assert_int_equal(mr_token_verify(f->k, &f->a, MR_STR_NULL, NOW, NULL, NULL), MR_EFORBIDDEN);
}

static void test_other_key(void **state)
{
    struct fix *f = *state;
    static const char *const secrets[] = { "test secreT", "test secret ", "test secre", "", "x" };
    char *tok = sign_ok(f, EXP, url, strlen(url));
    (void)state;

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
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_str data = { NULL, 0 };
        time_t exp = 0;
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), cases[i].now, &data, &exp),
                         cases[i].rc);
        /* What was signed is reported for expired tokens too. */
        assert_int_equal(exp, EXP);
        assert_int_equal(data.len, strlen(url));
        assert_memory_equal(data.p, url, data.len);
    }
    /* An expiry of 0 is always past. */
    tok = sign_ok(f, 0, "x", 1);
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), 1, NULL, NULL),
                     MR_ETOKEN_EXPIRED);
}

static void test_size_cap(void **state)
{
    struct fix *f = *state;
    char *data = malloc(MAX_DATA + 2), *tok = NULL;
    struct mr_str got;
    time_t exp;
    (void)state;

    assert_non_null(data);
    for (size_t i = 0; i < MAX_DATA + 2; i++)
        data[i] = (char)('a' + i % 26);
    /* At the cap. */
    assert_int_equal(mr_token_sign(f->k, &f->a, EXP, data, MAX_DATA, &tok), MR_OK);
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, &got, &exp), MR_OK);
    assert_int_equal(got.len, MAX_DATA);
    assert_memory_equal(got.p, data, MAX_DATA);
    /* Over it. */
    tok = NULL;
    assert_int_equal(mr_token_sign(f->k, &f->a, EXP, data, MAX_DATA + 1, &tok), MR_ETOOBIG);
    assert_null(tok);
    assert_int_equal(mr_token_sign(f->k, &f->a, EXP, data, SIZE_MAX, &tok), MR_ETOOBIG);
    free(data);
}

/* A payload over the cap, or shorter than its header, or of another
 * version is refused even when the MAC over it is right. */
static void test_forged_payloads(void **state)
{
    struct fix *f = *state;
    static const size_t lens[] = { 0, 1, 8, MR_TOKEN_MAX_PAYLOAD + 1, MR_TOKEN_MAX_PAYLOAD + 3 };
    unsigned char *payload = calloc(1, MR_TOKEN_MAX_PAYLOAD + 3);
    char *tok = malloc((MR_TOKEN_MAX_PAYLOAD + 5) / 3 * 4 + 100);
    unsigned char mac[MR_HMAC_LEN];
    (void)state;

    assert_non_null(payload);
    assert_non_null(tok);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t o;
        payload[0] = MR_TOKEN_VERSION;
        for (int b = 0; b < 8; b++)
            payload[1 + b] = (unsigned char)((uint64_t)EXP >> (56 - 8 * b));
        assert_int_equal(mr_hmac_sha256(f->k, payload, lens[i], mac), MR_OK);
        o = mr_b64url_encode(payload, lens[i], tok);
        tok[o++] = '.';
        mr_b64url_encode(mac, sizeof(mac), tok + o);
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, NULL, NULL),
                         MR_EFORBIDDEN);
    }
    /* The same construction with the right header and version verifies
     * (so the refusals above are about the payload), and with another
     * version it does not. */
    for (int version = 0; version < 256; version += 1) {
        size_t o;
        payload[0] = (unsigned char)version;
        for (int b = 0; b < 8; b++)
            payload[1 + b] = (unsigned char)((uint64_t)EXP >> (56 - 8 * b));
        memcpy(payload + HEAD_LEN, "data", 4);
        assert_int_equal(mr_hmac_sha256(f->k, payload, HEAD_LEN + 4, mac), MR_OK);
        o = mr_b64url_encode(payload, HEAD_LEN + 4, tok);
        tok[o++] = '.';
        mr_b64url_encode(mac, sizeof(mac), tok + o);
        assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, NULL, NULL),
                         version == MR_TOKEN_VERSION ? MR_OK : MR_EFORBIDDEN);
    }
    free(payload);
    free(tok);
}

static void test_nul_bytes(void **state)
{
    struct fix *f = *state;
    static const unsigned char bin[] = { 0, 'a', 0, 0, 0xff, 'b', 0 };
    char *tok = sign_ok(f, EXP, bin, sizeof(bin));
    struct mr_str data;
    (void)state;

    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(tok), NOW, &data, NULL), MR_OK);
    assert_int_equal(data.len, sizeof(bin));
    assert_memory_equal(data.p, bin, sizeof(bin));
    assert_int_equal(data.p[data.len], '\0');
    /* Tokens for data that differ only after a NUL differ. */
    assert_string_not_equal(tok, sign_ok(f, EXP, bin, 1));
}

/* The documented format, made with libcrypto alone: base64url without
 * padding of (version, 8 bytes of expiry big-endian, data), ".", base64url
 * of HMAC-SHA256(secret, that payload). */
static void doc_token(const char *secret, time_t exp, const void *data, size_t len, char *out)
{
    unsigned char *payload = malloc(HEAD_LEN + len + 1), mac[MR_HMAC_LEN];
    unsigned int maclen = 0;
    size_t o;

    assert_non_null(payload);
    payload[0] = MR_TOKEN_VERSION;
    for (int i = 0; i < 8; i++)
        payload[1 + i] = (unsigned char)((uint64_t)exp >> (56 - 8 * i));
    if (len)
        memcpy(payload + HEAD_LEN, data, len);
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), payload, HEAD_LEN + len, mac,
                         &maclen));
    assert_int_equal(maclen, MR_HMAC_LEN);
    ref_b64url(payload, HEAD_LEN + len, out);
    o = strlen(out);
    out[o++] = '.';
    ref_b64url(mac, sizeof(mac), out + o);
    free(payload);
}

/* mr_token_sign, mr_token_sign_to and prefixed tokens all give the
 * documented format, for every split of the data into prefix and rest
 * (each of the three alignments of the prefix's base64). */
static void test_sign_forms(void **state)
{
    struct fix *f = *state;
    char data[260], want[400], got[400], *tok;
    (void)state;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + 1);
    for (size_t len = 0; len <= sizeof(data); len += len < 16 ? 1 : 13) {
        doc_token("test secret", EXP, data, len, want);
        assert_int_equal(mr_token_len(len), strlen(want));
        assert_int_equal(mr_token_sign(f->k, &f->a, EXP, data, len, &tok), MR_OK);
        assert_string_equal(tok, want);
        memset(got, '#', sizeof(got));
        assert_int_equal(mr_token_sign_to(f->k, EXP, data, len, got), MR_OK);
        assert_memory_equal(got, want, strlen(want));
        assert_int_equal(got[strlen(want)], '#');   /* no NUL written */
        for (size_t split = 0; split <= len; split += split < 8 || len - split < 8 ? 1 : 11) {
            struct mr_token_prefix *p = NULL;
            assert_int_equal(mr_token_prefix_new(f->k, &f->a, EXP, data, split, &p), MR_OK);
            memset(got, '#', sizeof(got));
            assert_int_equal(mr_token_sign_prefixed(p, data + split, len - split, got), MR_OK);
            assert_memory_equal(got, want, strlen(want));
            assert_int_equal(got[strlen(want)], '#');
            /* A prefix serves many tokens. */
            assert_int_equal(mr_token_sign_prefixed(p, data + split, len - split, got), MR_OK);
            assert_memory_equal(got, want, strlen(want));
        }
        mr_arena_reset(&f->a);
    }
}

/* The data cap holds whichever way a token is made. */
static void test_sign_forms_cap(void **state)
{
    struct fix *f = *state;
    char *data = malloc(MAX_DATA + 1), *dst = malloc(mr_token_len(MAX_DATA + 1) + 1), *tok;
    struct mr_token_prefix *p = NULL;
    (void)state;

    assert_non_null(data);
    assert_non_null(dst);
    assert_int_equal(MR_TOKEN_MAX_DATA, MAX_DATA);
    memset(data, 'd', MAX_DATA + 1);
    assert_int_equal(mr_token_sign_to(f->k, EXP, data, MAX_DATA, dst), MR_OK);
    assert_int_equal(mr_token_sign_to(f->k, EXP, data, MAX_DATA + 1, dst), MR_ETOOBIG);
    assert_int_equal(mr_token_prefix_new(f->k, &f->a, EXP, data, MAX_DATA + 1, &p), MR_ETOOBIG);
    assert_int_equal(mr_token_prefix_new(f->k, &f->a, EXP, data, MAX_DATA, &p), MR_OK);
    assert_int_equal(mr_token_sign_prefixed(p, "", 0, dst), MR_OK);
    assert_int_equal(mr_token_sign_prefixed(p, "x", 1, dst), MR_ETOOBIG);
    assert_int_equal(mr_token_prefix_new(f->k, &f->a, EXP, data, 100, &p), MR_OK);
    assert_int_equal(mr_token_sign_prefixed(p, data, MAX_DATA - 100, dst), MR_OK);
    dst[mr_token_len(MAX_DATA)] = '\0';
    assert_int_equal(mr_token_verify(f->k, &f->a, mr_str_c(dst), NOW, NULL, NULL), MR_OK);
    assert_int_equal(mr_token_sign(f->k, &f->a, EXP, data, MAX_DATA, &tok), MR_OK);
    assert_string_equal(tok, dst);
    assert_int_equal(mr_token_sign_prefixed(p, data, MAX_DATA - 99, dst), MR_ETOOBIG);
    assert_int_equal(mr_token_sign_prefixed(p, data, SIZE_MAX, dst), MR_ETOOBIG);
    free(data);
    free(dst);
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
        cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_extend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_payloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_forms_cap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
