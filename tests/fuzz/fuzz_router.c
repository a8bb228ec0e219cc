/* fuzz_router.c - path decoding and routing: "<method> <path>[?query]". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "test_routes.h"
#include "util.h"

#define table test_routes

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, strnlen((const char *)data, size));
    char *sp = strchr(s, ' ');
    if (sp) {
        *sp = '\0';
        char *path = sp + 1, *q = strchr(path, '?');
        if (q) {
            *q = '\0';
            free(url_decode(q + 1, strlen(q + 1), true));
        }
        char **segs = NULL;
        int n = router_split(path, &segs);
        if (n >= 0) {
            const Route *r = NULL;
            char *caps[8];
            int ncaps = 0;
            RouteMatch m = router_match(table, s, segs, n, &r, caps, &ncaps, 8);
            if (m == ROUTE_FOUND && (!r || ncaps > 8))
                abort();
            router_free_segs(segs, n);
        }
    }
    free(s);
    return 0;
}
