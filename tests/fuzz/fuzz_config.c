/* fuzz_config.c - the configuration loader on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mr_conf *conf = NULL;
    struct mr_buf errors;

    mr_buf_init(&errors, 1 << 16);
    if (mr_conf_load_string("fuzz.json", (const char *)data, size, &conf, &errors) == 0)
        mr_conf_free(conf);
    mr_buf_free(&errors);
    return 0;
}
