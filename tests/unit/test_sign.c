/* test_sign.c - signed /stream links: round trip, tamper, expiry, the link. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "app/sign.h"
#include "core/token.h"

#define URL "http://cdn.example/v/a.m3u8?token=x%2Fy&b=2"

struct fx {
    struct mr_token_key *key, *other;
    struct mr_arena a;
};

static int setup(void **state)
{
    static struct fx f;
    f.key = mr_token_key_new("0123456789abcdef0123456789abcdef", 32);
    f.other = mr_token_key_new("another secret, 32 characters!!", 31);
    mr_arena_init(&f.a, 0);
    *state = &f;
    return f.key && f.other ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mr_arena_free(&f->a);
    mr_token_key_free(f->key);
    mr_token_key_free(f->other);
    return 0;
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    char *sig, *sig2;

    assert_int_equal(mr_sign_stream(f->key, &f->a, URL, 2000, &sig), MR_OK);
    assert_int_equal(strlen(sig), 43);   /* 32 bytes, base64url, no padding */
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000", sig, 1000), MR_OK);
    /* Deterministic. */
    assert_int_equal(mr_sign_stream(f->key, &f->a, URL, 2000, &sig2), MR_OK);
    assert_string_equal(sig, sig2);
}

static void test_expired(void **state)
{
    struct fx *f = *state;
    char *sig;

    assert_int_equal(mr_sign_stream(f->key, &f->a, URL, 2000, &sig), MR_OK);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000", sig, 2000),
                     MR_ETOKEN_EXPIRED);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000", sig, 5000),
                     MR_ETOKEN_EXPIRED);
}

static void test_tampered(void **state)
{
    struct fx *f = *state;
    char *sig, bad[64];

    assert_int_equal(mr_sign_stream(f->key, &f->a, URL, 2000, &sig), MR_OK);
    /* Another URL, another expiry, another key. */
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL "&c=3", "2000", sig, 1000),
                     MR_EFORBIDDEN);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2001", sig, 1000),
                     MR_EFORBIDDEN);
    assert_int_equal(mr_sign_stream_verify(f->other, &f->a, URL, "2000", sig, 1000),
                     MR_EFORBIDDEN);
    /* Every character of the signature changed in turn. */
    for (size_t i = 0; i < strlen(sig); i++) {
        snprintf(bad, sizeof(bad), "%s", sig);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000", bad, 1000),
                         MR_EFORBIDDEN);
    }
    /* Truncated, extended, empty, missing. */
    snprintf(bad, sizeof(bad), "%.*s", (int)strlen(sig) - 1, sig);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000", bad, 1000), MR_EFORBIDDEN);
    snprintf(bad, sizeof(bad), "%sA", sig);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000", bad, 1000), MR_EFORBIDDEN);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000", "", 1000), MR_EFORBIDDEN);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000", NULL, 1000), MR_EFORBIDDEN);
    /* Malformed expiries. */
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, NULL, sig, 1000), MR_EFORBIDDEN);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "", sig, 1000), MR_EFORBIDDEN);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "2000x", sig, 1000), MR_EFORBIDDEN);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "-5", sig, 1000), MR_EFORBIDDEN);
    assert_int_equal(mr_sign_stream_verify(f->key, &f->a, URL, "02000", sig, 1000), MR_EFORBIDDEN);
}

static void test_link(void **state)
{
    struct fx *f = *state;
    char *link, *sig, want[512];

    assert_int_equal(mr_sign_stream_link(f->key, &f->a, "https://relay.example", URL, 2000,
                                         &link), MR_OK);
    assert_int_equal(mr_sign_stream(f->key, &f->a, URL, 2000, &sig), MR_OK);
    /* The URL is escaped whole, so its own query stays inside url=. */
    snprintf(want, sizeof(want), "https://relay.example/stream?url=http%%3A%%2F%%2Fcdn.example"
             "%%2Fv%%2Fa.m3u8%%3Ftoken%%3Dx%%252Fy%%26b%%3D2&exp=2000&sig=%s", sig);
    assert_string_equal(link, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_link),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
