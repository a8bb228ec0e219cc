/* api-history.c - the stack's update history, newest first, and its latest update. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "stack.h"

#define HISTORY_ROW                                                                                              \
    "json_build_object('kind', kind, 'startTime', extract(epoch from coalesce(started_at, created_at))::bigint, " \
    "'message', coalesce(metadata ->> 'message', ''), 'environment', coalesce(metadata -> 'environment', '{}'), " \
    "'config', config, 'result', CASE status WHEN 'succeeded' THEN 'succeeded' WHEN 'running' THEN "            \
    "'in-progress' WHEN 'not started' THEN 'not-started' ELSE 'failed' END, "                                     \
    "'endTime', coalesce(extract(epoch from ended_at)::bigint, 0), 'version', coalesce(result_version, 0), "     \
    "'resourceChanges', coalesce(resource_changes, '{}'), 'resourceCount', coalesce(resource_count, 0))::text "   \
    "FROM extension_pulumi_state_updates WHERE stack_id = $1 AND NOT dry_run AND status <> 'not started' "

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
    Stack *s = stack_fetch(c);
    if (!s)
        return;
    char lbuf[16], obuf[24];
    snprintf(lbuf, sizeof(lbuf), "%ld", size);
    snprintf(obuf, sizeof(obuf), "%ld", (page - 1) * size);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(lbuf), DB_TEXT(obuf)};
    PGresult *r = db_exec(c->db, "SELECT " HISTORY_ROW "ORDER BY created_at DESC, id LIMIT $2::int OFFSET $3::bigint",
                          3, p, false);
    stack_free(s);
    if (!r) {
        reply_internal(c);
        return;
    }
    Buf out;
    buf_init(&out);
    buf_puts(&out, "{\"updates\":[");
    for (int i = 0; i < PQntuples(r); i++) {
        if (i)
            buf_puts(&out, ",");
        buf_puts(&out, PQgetvalue(r, i, 0));
    }
    buf_puts(&out, "]}");
    PQclear(r);
    reply_bytes(c, 200, out.data, out.len, false);
    buf_free(&out);
}

void api_latest_update(Ctx *c)
{
    Stack *s = stack_fetch(c);
    if (!s)
        return;
    DbParam p[] = {DB_TEXT(s->id)};
    PGresult *r = db_exec(c->db, "SELECT " HISTORY_ROW "ORDER BY created_at DESC LIMIT 1", 1, p, false);
    stack_free(s);
    if (!r) {
        reply_internal(c);
        return;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        reply_error(c, 404, "Not Found: the stack has no previous update");
        return;
    }
    Buf out;
    buf_init(&out);
    buf_printf(&out, "{\"info\":%s}", PQgetvalue(r, 0, 0));
    PQclear(r);
    reply_bytes(c, 200, out.data, out.len, false);
    buf_free(&out);
}
