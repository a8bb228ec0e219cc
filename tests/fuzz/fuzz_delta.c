/* fuzz_delta.c - delta apply: the input is "<base>\n<edits JSON>"; edits are applied to the base. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    if (!nl)
        return 0;
    size_t baselen = (size_t)(nl - s);
    json_t *edits = json_loadb(nl + 1, size - baselen - 1, 0, NULL);
    if (!edits)
        return 0;
    char *out = NULL, err[160];
    size_t outlen = 0;
    static const char zero[] = "0000000000000000000000000000000000000000000000000000000000000000";
    DeltaResult r = delta_apply(s, baselen, edits, zero, &out, &outlen, err, sizeof(err));
    if (r == DELTA_OK)
        free(out);
    json_decref(edits);
    return 0;
}
