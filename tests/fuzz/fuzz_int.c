/* fuzz_int.c - the integer parser of query strings, headers and bodies, checked against strtoll. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64)
        return 0;
    char buf[65];
    memcpy(buf, data, size);
    buf[size] = '\0';
    long long v = 0;
    bool ok = parse_int64(buf, (long)size, LLONG_MIN, LLONG_MAX, &v);
    if (ok) {
        /* Whatever it accepts, strtoll reads the same way, whole. */
        char *end;
        errno = 0;
        long long w = strtoll(buf, &end, 10);
        if (errno || *end || w != v || buf[0] == '+' || buf[0] == ' ')
            abort();
    }
    long long r;
    if (parse_int64(buf, (long)size, -1, 1000, &r) && (r < -1 || r > 1000))
        abort();
    return 0;
}
