/* fuzz_range.c - the Range header: mr_range_parse and mr_range_forwardable
 * on arbitrary values and object lengths.
 *
 * The input's first byte picks the length (unknown, 0, 1, a small one, the
 * largest, or the next 8 bytes as a number); the rest is the header value.
 * Checked (__builtin_trap): a satisfiable range is 0 <= from <= to < length
 * (to < LLONG_MAX when the length is unknown), so its length to - from + 1
 * and its end to + 1 never overflow; the whole object is [0, length - 1];
 * only a known length makes a range unsatisfiable. */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "http/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mr_range r;
    long long len;
    char *v;
    int rc;

    if (!size)
        return 0;
    switch (data[0] % 8) {
    case 0: len = -1; break;
    case 1: len = 0; break;
    case 2: len = 1; break;
    case 3: len = 1000; break;
    case 4: len = LLONG_MAX; break;
    case 5: len = LLONG_MAX - 1; break;
    default: {
        uint64_t u = 0;
        size_t k = size - 1 < 8 ? size - 1 : 8;
        for (size_t i = 0; i < k; i++)
            u = u << 8 | data[1 + i];
        len = (long long)(u & (uint64_t)LLONG_MAX);
        data += k;
        size -= k;
    }
    }
    if (!(v = malloc(size)))
        return 0;
    memcpy(v, data + 1, size - 1);
    v[size - 1] = '\0';
    rc = mr_range_parse(v, len, &r);
    if (rc == MR_ERANGE) {
        if (len < 0)
            __builtin_trap();
    } else if (rc != MR_OK) {
        __builtin_trap();
    } else if (r.partial) {
        if (r.from < 0 || r.from > r.to || (len >= 0 && r.to >= len) ||
            (len < 0 && r.to == LLONG_MAX))
            __builtin_trap();
    } else if (r.from != 0 || r.to != (len >= 0 ? len - 1 : -1)) {
        __builtin_trap();
    }
    if (mr_range_forwardable(v)) {
        size_t n = strlen(v);
        if (n > 256 || strncmp(v, "bytes=", 6) || strspn(v + 6, "0123456789-, ") != n - 6)
            __builtin_trap();
    }
    free(v);
    return 0;
}
