/* fuzz_mpd.c - the DASH rewriter on arbitrary manifests, and the segment
 * endpoint's tail join on the same bytes: a tail it accepts never leaves
 * its prefix, even after curl normalizes the joined URL. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "format/mpd.h"
#include "core/token.h"
#include "net/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char prefix[] = "https://cdn.example.com/a/b/";
    static struct mr_token_key *key;
    struct mr_mpd_ctx c = { .prefix = "", .scope = "m:fuzz", .expire_at = 4000000000 };
    struct mr_arena a;
    struct mr_buf out;
    const char *why;
    char *joined, *norm;

    if (!key)
        key = mr_token_key_new("fuzz-secret-fuzz-secret-fuzz-secret", 35);
    c.key = key;
    mr_arena_init(&a, 0);
    mr_buf_init(&out, 64u << 20);
    mr_mpd_rewrite(&a, &c, (struct mr_str){ (const char *)data, size },
                   "https://cdn.example.com/a/b/manifest.mpd?q=1&x=%2F", &out, &why);
    mr_buf_free(&out);
    if (size < 4096 &&
        !mr_mpd_join_tail(&a, prefix, (struct mr_str){ (const char *)data, size },
                          (struct mr_dir_query){ MR_STR_NULL, MR_STR_NULL }, MR_STR_NULL,
                          &joined)) {
        if (strncmp(joined, prefix, sizeof(prefix) - 1))
            __builtin_trap();
        if (!mr_url_normalize(&a, joined, &norm) && strncmp(norm, prefix, sizeof(prefix) - 1))
            __builtin_trap();
    }
    mr_arena_free(&a);
    return 0;
}
