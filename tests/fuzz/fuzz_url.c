/* fuzz_url.c - URL resolution and parsing on arbitrary bytes: the input is
 * "base\nreference". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "net/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mr_url_parts parts;
    struct mr_arena a;
    char *copy, *nl, *out;

    copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    mr_arena_init(&a, 0);
    nl = strchr(copy, '\n');
    if (nl) {
        *nl = '\0';
        if (mr_url_resolve(&a, copy, nl + 1, &out) == 0)
            mr_url_parts(&a, out, &parts);
    } else {
        mr_url_normalize(&a, copy, &out);
        mr_url_parts(&a, copy, &parts);
    }
    mr_arena_free(&a);
    free(copy);
    return 0;
}
