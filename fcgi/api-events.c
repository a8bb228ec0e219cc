/* api-events.c - engine events: stored once per sequence, read back in order. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jspan.h"
#include "names.h"
#include "stack.h"

#define EVENTS_PAGE 500

void api_post_events(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    json_t *events = json_object_get(body, "events");
    if (!json_is_array(events)) {
        reply_error(c, 400, "Bad Request: events must be an array");
        return;
    }
    size_t i;
    json_t *e;
    bool summary = false;
    json_array_foreach(events, i, e) {
        json_t *seq = json_object_get(e, "sequence");
        if (!json_is_object(e) || !json_is_integer(seq) || json_integer_value(seq) < 0) {
            reply_error(c, 400, "Bad Request: event %zu needs an integer sequence >= 0", i);
            return;
        }
        if (json_is_object(json_object_get(e, "summaryEvent")))
            summary = true;
    }
    size_t es, ee;
    if (!jspan_member((const char *)c->body, c->body_len, "events", &es, &ee)) {
        reply_error(c, 400, "Bad Request: events must be an array");
        return;
    }
    UpdateInfo info;
    if (!update_auth(c, false, NULL, &info))
        return;
    if (strcmp(info.status, "running") != 0) {
        reply_error(c, 409, "Conflict: the update is not in progress (it is %s)", status_wire(info.status));
        return;
    }
    char *arr = xstrndup((const char *)c->body + es, ee - es);
    DbParam p[] = {DB_TEXT(c->update_id), DB_TEXT(arr)};
    bool ok = db_run(c->db,
                     "INSERT INTO extension_pulumi_state_events (update_id, sequence, event) "
                     "SELECT $1, (e ->> 'sequence')::bigint, e::jsonb FROM json_array_elements($2::json) e "
                     "ON CONFLICT DO NOTHING",
                     2, p);
    if (ok && summary)
        ok = db_run(c->db,
                    "UPDATE extension_pulumi_state_updates SET resource_changes = "
                    "(SELECT (e -> 'summaryEvent' -> 'resourceChanges')::jsonb FROM json_array_elements($2::json) e "
                    "WHERE e -> 'summaryEvent' IS NOT NULL LIMIT 1) WHERE id = $1",
                    2, p);
    free(arr);
    if (ok)
        reply_ok(c);
    else
        reply_internal(c);
}

void api_get_events(Ctx *c)
{
    const char *uid = c->captures[4];
    if (!name_valid_uuid(uid)) {
        reply_error(c, 404, "Not Found: unknown update");
        return;
    }
    char *tok = ctx_query(c, "continuationToken");
    long long after = -1;
    if (tok && *tok) {
        char *end;
        after = strtoll(tok, &end, 10);
        if (*end || after < -1) {
            free(tok);
            reply_error(c, 400, "Bad Request: invalid continuationToken");
            return;
        }
    }
    free(tok);
    Stack *s = stack_fetch(c);
    if (!s)
        return;
    char abuf[24], lbuf[16];
    snprintf(abuf, sizeof(abuf), "%lld", after);
    snprintf(lbuf, sizeof(lbuf), "%d", EVENTS_PAGE + 1);
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(s->id)};
    PGresult *st = db_exec(c->db, "SELECT status FROM extension_pulumi_state_updates WHERE id = $1 AND stack_id = $2", 2,
                           p, false);
    if (!st || PQntuples(st) != 1) {
        if (st)
            reply_error(c, 404, "Not Found: update '%s' not found on this stack", uid);
        else
            reply_internal(c);
        PQclear(st);
        stack_free(s);
        return;
    }
    const char *status = PQgetvalue(st, 0, 0);
    bool done = strcmp(status, "running") != 0 && strcmp(status, "not started") != 0;
    DbParam q[] = {DB_TEXT(uid), DB_TEXT(abuf), DB_TEXT(lbuf)};
    PGresult *r = db_exec(c->db,
                          "SELECT sequence, event::text FROM extension_pulumi_state_events WHERE update_id = $1 "
                          "AND sequence > $2::bigint ORDER BY sequence LIMIT $3::int",
                          3, q, false);
    if (!r) {
        PQclear(st);
        stack_free(s);
        reply_internal(c);
        return;
    }
    int n = PQntuples(r);
    int shown = n > EVENTS_PAGE ? EVENTS_PAGE : n;
    Buf out;
    buf_init(&out);
    buf_puts(&out, "{\"events\":[");
    for (int i = 0; i < shown; i++) {
        if (i)
            buf_puts(&out, ",");
        buf_puts(&out, PQgetvalue(r, i, 1));
    }
    buf_puts(&out, "],\"continuationToken\":");
    if (done && n <= EVENTS_PAGE)
        buf_puts(&out, "null");
    else
        buf_printf(&out, "\"%s\"", shown ? PQgetvalue(r, shown - 1, 0) : abuf);
    buf_puts(&out, "}");
    reply_bytes(c, 200, out.data, out.len, false);
    buf_free(&out);
    PQclear(r);
    PQclear(st);
    stack_free(s);
}
