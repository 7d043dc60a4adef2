/* fuzz_mimetype.c - the allow-list of relayed Content-Types on arbitrary
 * bytes.  Beyond the sanitizers, it checks what every answer must be: a
 * header value (no control byte but a tab) of at most MR_MIMETYPE_MAX bytes,
 * and either the fallback or a value the rule gives back unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "http/mimetype.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mr_arena a;
    const char *out;
    char *copy = malloc(size + 1);

    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    mr_arena_init(&a, 0);
    out = mr_mimetype_relayed(&a, copy);
    if (!out || strlen(out) > MR_MIMETYPE_MAX)
        abort();
    for (const char *p = out; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || (unsigned char)*p >= 0x7f)
            abort();
    if (strcmp(out, MR_MIMETYPE_FALLBACK) && strcmp(mr_mimetype_relayed(&a, out), out))
        abort();
    mr_arena_free(&a);
    free(copy);
    return 0;
}
