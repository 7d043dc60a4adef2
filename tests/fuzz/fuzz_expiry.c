/* fuzz_expiry.c - expiry times read from arbitrary URLs. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/expiry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);

    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    (void)mr_expiry_from_url(url);
    free(url);
    return 0;
}
