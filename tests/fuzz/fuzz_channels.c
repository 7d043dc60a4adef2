/* fuzz_channels.c - the M3U channel-list reader on arbitrary bytes, and the
 * writer on what it read. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "format/channels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mr_conf_channel *v;
    struct mr_arena a;
    size_t n, skipped;

    mr_arena_init(&a, 0);
    if (mr_channels_parse_m3u(&a, (const char *)data, size, NULL, 0, &v, &n, &skipped) == 0) {
        struct mr_conf c;
        struct mr_buf out;
        memset(&c, 0, sizeof(c));
        c.channels.items = v;
        c.channels.n = n;
        mr_buf_init(&out, 64u << 20);
        mr_channels_write_m3u(&c, "http://relay.example", &out);
        mr_buf_cleanup(&out);
    }
    mr_arena_free(&a);
    return 0;
}
