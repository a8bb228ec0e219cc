/* fuzz_gzip.c - bounded inflate: never more than the limit, whatever the stream. */
#include <stdint.h>
#include <stdlib.h>

#include "gzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    const size_t limit = 1 << 20;
    GzResult r = gz_inflate(data, size, limit, &out, &outlen);
    if (r == GZ_OK && outlen > limit)
        abort();
    if (r != GZ_OK && out)
        abort();
    free(out);
    return 0;
}
