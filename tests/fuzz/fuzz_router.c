/* fuzz_router.c - path decoding and routing: "<method> <path>[?query]". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "util.h"

char *url_decode(const char *s, size_t n, bool plus_is_space);

static void h(struct Ctx *c)
{
    (void)c;
}

static const Route table[] = {
    {"GET", "/api/user", AUTH_USER, ROLE_READ, 0, NULL, h},
    {"HEAD", "/api/stacks/:org/:project", AUTH_USER, ROLE_READ, 0, NULL, h},
    {"GET", "/api/stacks/:org/:project/:stack/updates/latest", AUTH_USER, ROLE_READ, 0, NULL, h},
    {"POST", "/api/stacks/:org/:project/:stack/update|preview|refresh|destroy", AUTH_USER, ROLE_WRITE, 0, NULL, h},
    {"PATCH", "/api/stacks/:org/:project/:stack/update|updates/:update/checkpoint", AUTH_UPDATE, ROLE_WRITE, 0,
     NULL, h},
    {"GET", "/api/stacks/:org/:project/:stack/export/:version", AUTH_USER, ROLE_READ, 0, NULL, h},
    {NULL, NULL, AUTH_NONE, ROLE_READ, 0, NULL, NULL},
};

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
