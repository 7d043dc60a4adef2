/* fuzz_token.c - token verification and base64url decoding on arbitrary
 * bytes; a token made from the input must verify back to it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "error.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mr_token_key *key;
    struct mr_arena a;
    struct mr_str out;
    unsigned char buf[8192];
    char *tok;
    time_t exp;

    if (!key)
        key = mr_token_key_new("fuzz-secret-fuzz-secret-fuzz-secret", 35);
    mr_arena_init(&a, 0);
    mr_token_verify(key, &a, (struct mr_str){ (const char *)data, size }, 1000, &out, &exp);
    mr_b64url_decode((const char *)data, size, buf, sizeof(buf));
    if (mr_token_sign(key, &a, 2000, data, size, &tok) == MR_OK) {
        if (mr_token_verify(key, &a, mr_str_c(tok), 1000, &out, &exp) != MR_OK ||
            out.len != size || (size && memcmp(out.p, data, size)) || exp != 2000)
            abort();
    }
    mr_arena_free(&a);
    return 0;
}
