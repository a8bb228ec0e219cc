/* api-events.c - engine events: stored once per sequence, read back in order. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jspan.h"
#include "names.h"
#include "stack.h"

#define EVENTS_PAGE 500

static bool event_is_summary(const char *e, size_t len, void *arg)
{
    size_t a, z;
    if (jspan_member(e, len, "summaryEvent", &a, &z) && e[a] == '{')
        *(bool *)arg = true;
    return true;
}

void api_post_events(Ctx *c)
{
    /* Event batches carry whole resource states: validate with the span scanner, store as json. */
    const char *b = (const char *)c->body;
    size_t n = c->body_len, es, ee;
    if (!b || !jspan_validate(b, n) || b[strspn(b, " \t\r\n")] != '{') {
        reply_error(c, 400, "Bad Request: malformed JSON body");
        return;
    }
    if (!jspan_member(b, n, "events", &es, &ee) || b[es] != '[') {
        reply_error(c, 400, "Bad Request: events must be an array");
        return;
    }
    bool summary = false;
    Buf seqs;
    buf_init(&seqs);
    long bad = jspan_collect_ids(b + es, ee - es, "sequence", 0, event_is_summary, &summary, &seqs);
    if (bad >= 0) {
        reply_error(c, 400, "Bad Request: event %ld needs an integer sequence >= 0", bad);
        buf_free(&seqs);
        return;
    }
    UpdateInfo info;
    char *arr = NULL;
    if (!update_auth(c, false, NULL, &info))
        goto out;
    if (strcmp(info.status, "running") != 0) {
        reply_error(c, 409, "Conflict: the update is not in progress (it is %s)", status_wire(info.status));
        goto out;
    }
    arr = xstrndup(b + es, ee - es);
    DbParam p[] = {DB_TEXT(c->update_id), DB_TEXT(arr), DB_TEXT(seqs.data)};
    bool ok = db_run(c->db,
                     "INSERT INTO extension_pulumi_state_events (update_id, sequence, event) "
                     "SELECT $1, q.seq, e.elem FROM json_array_elements($2::json) WITH ORDINALITY e(elem, n) "
                     "JOIN unnest($3::bigint[]) WITH ORDINALITY q(seq, n) USING (n) ON CONFLICT DO NOTHING",
                     3, p);
    if (ok && summary)
        ok = db_run(c->db,
                    "UPDATE extension_pulumi_state_updates SET resource_changes = "
                    "(SELECT (e -> 'summaryEvent' -> 'resourceChanges')::text::jsonb FROM json_array_elements($2::json) e "
                    "WHERE e -> 'summaryEvent' IS NOT NULL LIMIT 1) WHERE id = $1",
                    2, p);
    if (ok)
        reply_ok(c);
    else
        reply_internal(c);
out:
    free(arr);
    buf_free(&seqs);
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
