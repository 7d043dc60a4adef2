/* fuzz_request.c - FastCGI params, the query string, cookies and the base
 * URL built from forwarded headers, on arbitrary bytes.  The input is a
 * list of NUL-separated "NAME=value" params. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "url", "sig", "exp", "t", "" };
    struct mr_request r;
    struct mr_arena a;
    struct mr_str v;
    char *copy, *params[130], *s;
    size_t n = 0;

    copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (s = copy; s < copy + size && n < 128; s += strlen(s) + 1)
        params[n++] = s;
    params[n] = NULL;
    mr_arena_init(&a, 0);
    if (mr_request_parse(&r, &a, params) == 0) {
        char *out;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            mr_request_query(&r, &a, names[i], &out);
        mr_request_cookie(&r, "session", &v);
        mr_request_base_url(&r, NULL, &a, &out);
    }
    mr_arena_free(&a);
    free(copy);
    return 0;
}
