/* api-events.c - engine events: stored once per sequence, read back in order. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jspan.h"
#include "names.h"
#include "stack.h"

#define EVENTS_PAGE 500
#define EVENTS_MAX_SEQ 9223372036854775807LL

/* The resourceChanges of a summary event, if this event is one. */
static bool find_summary(const char *e, size_t len, void *arg)
{
    JspanRaw *changes = arg;
    size_t a, z, ra, rz;
    if (jspan_member(e, len, "summaryEvent", &a, &z) && e[a] == '{' &&
        jspan_member(e + a, z - a, "resourceChanges", &ra, &rz) && e[a + ra] == '{') {
        changes->p = e + a + ra;
        changes->len = rz - ra;
    }
    return true;
}

/* A summary's resourceChanges is stored as jsonb: an object of non-negative integer counts under
 * plain keys (jsonb refuses \u0000; a count must be an integer the CLI can have sent). */
static bool resource_changes_valid(const char *text, size_t len)
{
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    bool ok = json_is_object(o);
    const char *k;
    json_t *v;
    if (ok)
        json_object_foreach(o, k, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || strlen(k) > 200) {
                ok = false;
                break;
            }
        }
    json_decref(o);
    return ok;
}

void api_post_events(Ctx *c)
{
    /* Event batches carry whole resource states: validate with the span scanner and store each
     * event's exact text, in one statement that also checks the update. */
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
    JspanRaw changes = {NULL, 0};
    JspanIds batch = {0};
    char *changes_text = NULL;
    long bad = jspan_collect_ids(b + es, ee - es, "sequence", 0, find_summary, &changes, &batch);
    if (bad >= 0) {
        reply_error(c, 400, "Bad Request: event %ld needs an integer sequence >= 0", bad);
        goto out;
    }
    if (changes.p && !resource_changes_valid(changes.p, changes.len)) {
        reply_error(c, 400, "Bad Request: summaryEvent.resourceChanges must map operation names to counts");
        goto out;
    }
    int stored = update_store_batch(c, false, &batch);
    if (stored == 0) {
        UpdateInfo info;
        if (!update_auth(c, false, NULL, &info))
            goto out;
        if (strcmp(info.status, "running") != 0) {
            reply_error(c, 409, "Conflict: the update is not in progress (it is %s)", status_wire(info.status));
            goto out;
        }
        stored = update_store_batch(c, false, &batch);
        if (stored == 0) {
            reply_error(c, 409, "Conflict: the update no longer takes events");
            goto out;
        }
    }
    if (stored > 0 && changes.p) {
        changes_text = xstrndup(changes.p, changes.len);
        DbParam p[] = {DB_TEXT(c->update_id), DB_TEXT(changes_text)};
        if (!db_run(c->db, "UPDATE extension_pulumi_state_updates SET resource_changes = $2::jsonb WHERE id = $1", 2,
                    p))
            stored = -1;
    }
    if (stored < 0)
        reply_internal(c);
    else
        reply_ok(c);
out:
    free(changes_text);
    jspan_ids_free(&batch);
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
    /* The token is the last sequence shown; the next one is after + 1, so the top value is one
     * below the largest integer. */
    if (tok && *tok && !parse_int64(tok, -1, -1, EVENTS_MAX_SEQ - 1, &after)) {
        free(tok);
        reply_error(c, 400, "Bad Request: invalid continuationToken");
        return;
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
                          "SELECT e.sequence::text AS seq, e.event FROM extension_pulumi_state_events e "
                          "WHERE e.update_id = $1 AND e.sequence > $2::bigint ORDER BY e.sequence LIMIT $3::int",
                          3, q, true);
    if (!r) {
        PQclear(st);
        stack_free(s);
        reply_internal(c);
        return;
    }
    int n = PQntuples(r);
    int shown = n > EVENTS_PAGE ? EVENTS_PAGE : n;
    if (!done) {
        /* The CLI numbers events 0, 1, 2, .. but sends batches concurrently: while the update runs,
         * answer only up to the first gap, so a reader's continuation never skips a batch that is
         * still on its way. Once the update has ended, gaps are final and everything is shown. */
        long long next = after + 1;
        for (int i = 0; i < shown; i++, next++)
            if (strtoll(PQgetvalue(r, i, 0), NULL, 10) != next) {
                shown = i;
                n = i; /* not the end: the continuation stays open */
                break;
            }
    }
    Buf out;
    buf_init(&out);
    buf_puts(&out, "{\"events\":[");
    for (int i = 0; i < shown; i++) {
        if (i)
            buf_puts(&out, ",");
        buf_append(&out, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
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
