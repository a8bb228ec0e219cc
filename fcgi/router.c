/* router.c - split a path into decoded segments and find the route that matches them. */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_SEGS 16

int router_split(const char *path, char ***segs_out)
{
    char **segs = xcalloc(MAX_SEGS, sizeof(char *));
    int n = 0;
    if (path[0] != '/')
        goto fail;
    const char *p = path + 1;
    if (!*p) {
        *segs_out = segs;
        return 0;
    }
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0) {
            /* A single trailing slash is tolerated; "//" is not. */
            if (!slash && n > 0)
                break;
            goto fail;
        }
        if (n == MAX_SEGS)
            goto fail;
        char *seg = url_decode(p, len, false);
        if (!seg)
            goto fail;
        segs[n++] = seg;
        if (strchr(seg, '/') || !strcmp(seg, ".") || !strcmp(seg, ".."))
            goto fail;
        if (!slash)
            break;
        p = slash + 1;
    }
    *segs_out = segs;
    return n;
fail:
    router_free_segs(segs, n);
    return -1;
}

void router_free_segs(char **segs, int n)
{
    for (int i = 0; i < n; i++)
        free(segs[i]);
    free(segs);
}

static bool seg_matches(const char *pat, size_t plen, const char *seg, bool *capture)
{
    *capture = false;
    if (pat[0] == ':') {
        *capture = true;
        return true;
    }
    if (!memchr(pat, '|', plen))
        return strlen(seg) == plen && memcmp(pat, seg, plen) == 0;
    *capture = true;
    const char *a = pat, *end = pat + plen;
    while (a < end) {
        const char *bar = memchr(a, '|', (size_t)(end - a));
        size_t al = bar ? (size_t)(bar - a) : (size_t)(end - a);
        if (strlen(seg) == al && memcmp(a, seg, al) == 0)
            return true;
        a += al + 1;
    }
    return false;
}

RouteMatch router_match(const Route *table, const char *method, char **segs, int nsegs, const Route **route,
                        char **captures, int *ncaptures, int maxcaptures)
{
    bool path_found = false;
    for (const Route *r = table; r->method; r++) {
        const char *p = r->pattern + 1;
        int i = 0, nc = 0;
        bool ok = true;
        while (ok) {
            if (!*p) {
                ok = i == nsegs;
                break;
            }
            if (i >= nsegs) {
                ok = false;
                break;
            }
            const char *slash = strchr(p, '/');
            size_t plen = slash ? (size_t)(slash - p) : strlen(p);
            bool cap;
            if (!seg_matches(p, plen, segs[i], &cap)) {
                ok = false;
                break;
            }
            if (cap) {
                if (nc == maxcaptures) {
                    ok = false;
                    break;
                }
                captures[nc++] = segs[i];
            }
            i++;
            p = slash ? slash + 1 : p + plen;
        }
        if (!ok)
            continue;
        path_found = true;
        if (strcmp(r->method, method) != 0)
            continue;
        *route = r;
        *ncaptures = nc;
        return ROUTE_FOUND;
    }
    return path_found ? ROUTE_NO_METHOD : ROUTE_NO_PATH;
}
