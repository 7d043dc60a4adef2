/* test_expiry.c - expiry times read from signed links. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "format/expiry.h"

static void test_forms(void **state)
{
    static const struct {
        const char *url;
        long long want;
    } cases[] = {
        { "https://upos.bilivideo.com/v.m4s?e=ig8&deadline=1795000000&gen=playurlv2", 1795000000 },
        { "https://d1.cloudfront.net/a.mp4?Expires=1795000001&Signature=x&Key-Pair-Id=K",
          1795000001 },
        { "https://b.oss-cn-hangzhou.aliyuncs.com/a.mp4?OSSAccessKeyId=k&Expires=1795000002"
          "&Signature=s", 1795000002 },
        { "https://b.oss.example/a.mp4?x-oss-expires=1795000003&x-oss-signature=s", 1795000003 },
        { "https://b.oss.example/a.mp4?x-oss-date=20261122T010203Z&x-oss-expires=3600",
          1795309323LL + 3600 },
        { "https://s3.amazonaws.com/b/a.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Date=20261122T010203Z&X-Amz-Expires=900&X-Amz-Signature=s",
          1795309323LL + 900 },
        { "https://x.akamaized.net/a.m3u8?hdnts=st%3D1794990000~exp%3D1795000004~acl%3D%2F*"
          "~hmac%3Dab", 1795000004 },
        { "https://x.akamaized.net/a.m3u8?__token__=exp=1795000005~acl=/*~hmac=ab", 1795000005 },
        /* The earliest when several say. */
        { "https://a.example/v?deadline=1795000010&Expires=1795000009", 1795000009 },
        { "https://a.example/v?DEADLINE=1795000011", 1795000011 },
        /* Nothing, or nonsense. */
        { "https://a.example/v.mp4", 0 },
        { "https://a.example/v.mp4?expires=soon", 0 },
        { "https://a.example/v.mp4?deadline=12", 0 },
        { "https://a.example/v.mp4?deadline=99999999999", 0 },
        { "https://a.example/v.mp4?deadline=1795000000%00", 0 },
        { "https://a.example/v.mp4?X-Amz-Date=2026-11-22&X-Amz-Expires=900", 0 },
        { "https://a.example/v.mp4?X-Amz-Date=20261122T010203Z&X-Amz-Expires=-5", 0 },
        { "https://a.example/v.mp4?X-Amz-Date=20261122T010203Z", 0 },
        { "https://a.example/v.mp4#deadline=1795000000", 0 },
        { "https://a.example/v.mp4?hdnts=st=1~acl=/*", 0 },
        { "https://a.example/v.mp4?deadline=&deadline", 0 },
        /* An empty value is empty: not the rest of the URL read as it (a
         * length of 0 is "up to the NUL" to curl_easy_unescape). */
        { "https://a.example/v.mp4?hdnts=&x=~exp=1795000006", 0 },
        { "https://a.example/v.mp4?__token__=#~exp=1795000007", 0 },
        { "https://a.example/v.mp4?hdnts=&__token__=exp=1795000008~acl=/*", 1795000008 },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long got = (long long)mr_expiry_from_url(cases[i].url);
        if (got != cases[i].want)
            fail_msg("case %zu: %s -> %lld, want %lld", i, cases[i].url, got, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
