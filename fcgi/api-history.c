/* api-history.c - the stack's update history, newest first, and its latest update. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "history.h"

static bool query_int(Ctx *c, const char *name, long def, long min, long max, long *out)
{
    char *v = ctx_query(c, name);
    *out = def;
    if (!v)
        return true;
    long long n = 0;
    bool ok = parse_int64(v, -1, min, max, &n);
    free(v);
    if (!ok) {
        reply_error(c, 400, "Bad Request: %s must be an integer between %ld and %ld", name, min, max);
        return false;
    }
    *out = (long)n;
    return true;
}

void api_history(Ctx *c)
{
    long page, size;
    if (!query_int(c, "pageSize", 0, -1, 1000, &size) || !query_int(c, "page", 1, 0, 1000000, &page))
        return;
    if (size <= 0)
        size = 1000;
    if (page < 1)
        page = 1;
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    if (history_page(c->db, &ref, size, page, &out, &e))
        reply_bytes(c, 200, out.data, out.len, false);
    else
        reply_api_error(c, &e);
    buf_free(&out);
}

void api_latest_update(Ctx *c)
{
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    if (history_latest(c->db, &ref, &out, &e))
        reply_bytes(c, 200, out.data, out.len, false);
    else
        reply_api_error(c, &e);
    buf_free(&out);
}
