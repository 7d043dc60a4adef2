/* fuzz_m3u8.c - the HLS rewriter on arbitrary playlists (with position
 * hints or without, by the first byte), mr_m3u8_find on the same, and
 * mr_m3u8_hint on their first bytes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/limits.h"
#include "format/m3u8.h"
#include "core/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mr_token_key *key;
    static const struct mr_header imports[] = { { "v", "imported" } };
    static const struct mr_headers im = { (struct mr_header *)imports, 1 };
    struct mr_m3u8_ctx c = {
        .prefix = "", .scope = "m:fuzz", .expire_at = 4000000000, .imports = &im,
    };
    struct mr_m3u8_want want = { "/a/b/s1.ts", -1, -1 };
    struct mr_arena a;
    struct mr_buf out;
    const char *why;
    char *url;
    bool nested;

    if (!key)
        key = mr_token_key_new("fuzz-secret-fuzz-secret-fuzz-secret", 35);
    c.key = key;
    if (size) {
        c.locate = data[0] & 1;
        c.variant = (data[0] & 2) ? (long)(data[0] >> 2) : -1;
        want.variant = (data[0] & 4) ? 1 : -1;
        want.msn = (data[0] & 8) ? (long)(data[0] >> 4) : -1;
    }
    mr_arena_init(&a, 0);
    mr_buf_init(&out, 64u << 20);
    mr_m3u8_rewrite(&a, &c, (struct mr_str){ (const char *)data, size },
                    "https://cdn.example.com/a/b/index.m3u8?q=1&x=%2F", &out, &why);
    mr_buf_free(&out);
    mr_m3u8_find(&a, (struct mr_str){ (const char *)data, size },
                 "https://cdn.example.com/a/b/index.m3u8?q=1", &want, &url, &nested);
    mr_arena_free(&a);
    {
        /* A hint is -1 or a value within its bound, whatever the bytes. */
        char hint[40];
        size_t n = size < sizeof(hint) - 1 ? size : sizeof(hint) - 1;
        long long v, w;
        memcpy(hint, data, n);
        hint[n] = '\0';
        v = mr_m3u8_hint(hint, MR_M3U8_MAX_MSN);
        w = mr_m3u8_hint(hint, MR_M3U8_MAX_VARIANTS - 1);
        if (v < -1 || v > MR_M3U8_MAX_MSN || w < -1 || w >= MR_M3U8_MAX_VARIANTS ||
            (w >= 0 && v != w))
            __builtin_trap();
    }
    return 0;
}
