/* history.c - the update history, engine events and the stack listing, as reply bodies. */
#include "history.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "update.h"

#define HISTORY_ROW                                                                                                    \
    "json_build_object('kind', kind, 'startTime', extract(epoch from coalesce(started_at, created_at))::bigint, "      \
    "'message', coalesce(metadata ->> 'message', ''), 'environment', coalesce(metadata -> 'environment', '{}'), "      \
    "'config', config, 'result', CASE status WHEN 'succeeded' THEN 'succeeded' WHEN 'running' THEN "                   \
    "'in-progress' WHEN 'not started' THEN 'not-started' ELSE 'failed' END, "                                          \
    "'endTime', coalesce(extract(epoch from ended_at)::bigint, 0), 'version', coalesce(result_version, 0), "           \
    "'resourceChanges', coalesce(resource_changes, '{}'), 'resourceCount', coalesce(resource_count, 0))::text "        \
    "FROM extension_pulumi_state_updates WHERE stack_id = $1 AND NOT dry_run AND status <> 'not started' "

#define EVENTS_PAGE 500

bool history_page(Db *db, const StackRef *ref, long size, long page, Buf *out, ApiError *e)
{
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    char lbuf[16], obuf[24];
    snprintf(lbuf, sizeof(lbuf), "%ld", size);
    snprintf(obuf, sizeof(obuf), "%ld", (page - 1) * size);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(lbuf), DB_TEXT(obuf)};
    PGresult *r =
        db_exec(db, "SELECT " HISTORY_ROW "ORDER BY created_at DESC, id LIMIT $2::int OFFSET $3::bigint", 3, p, false);
    stack_free(s);
    if (!r)
        return api_internal(e);
    buf_puts(out, "{\"updates\":[");
    for (int i = 0; i < PQntuples(r); i++) {
        if (i)
            buf_puts(out, ",");
        buf_puts(out, PQgetvalue(r, i, 0));
    }
    buf_puts(out, "]}");
    PQclear(r);
    return true;
}

bool history_latest(Db *db, const StackRef *ref, Buf *out, ApiError *e)
{
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    DbParam p[] = {DB_TEXT(s->id)};
    PGresult *r = db_exec(db, "SELECT " HISTORY_ROW "ORDER BY created_at DESC LIMIT 1", 1, p, false);
    stack_free(s);
    if (!r)
        return api_internal(e);
    bool ok = PQntuples(r) == 1;
    if (ok)
        buf_printf(out, "{\"info\":%s}", PQgetvalue(r, 0, 0));
    else
        api_fail(e, 404, "Not Found: the stack has no previous update");
    PQclear(r);
    return ok;
}

bool events_page(Db *db, const StackRef *ref, const char *uid, long long after, Buf *out, ApiError *e)
{
    UpdateStatus st;
    if (!update_get_status(db, ref, uid, &st, e))
        return false;
    bool done = !update_status_active(st);
    char abuf[24], lbuf[16];
    snprintf(abuf, sizeof(abuf), "%lld", after);
    snprintf(lbuf, sizeof(lbuf), "%d", EVENTS_PAGE + 1);
    DbParam q[] = {DB_TEXT(uid), DB_TEXT(abuf), DB_TEXT(lbuf)};
    PGresult *r = db_exec(db,
                          "SELECT e.sequence::text AS seq, e.event FROM extension_pulumi_state_events e "
                          "WHERE e.update_id = $1 AND e.sequence > $2::bigint ORDER BY e.sequence LIMIT $3::int",
                          3, q, true);
    if (!r)
        return api_internal(e);
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
    buf_puts(out, "{\"events\":[");
    for (int i = 0; i < shown; i++) {
        if (i)
            buf_puts(out, ",");
        buf_append(out, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    }
    buf_puts(out, "],\"continuationToken\":");
    if (done && n <= EVENTS_PAGE)
        buf_puts(out, "null");
    else
        buf_printf(out, "\"%s\"", shown ? PQgetvalue(r, shown - 1, 0) : abuf);
    buf_puts(out, "}");
    PQclear(r);
    return true;
}

/* Continuation tokens are the hex of "org\x1fproject\x1fstack" of the last stack returned. */
static char *token_encode(const char *org, const char *project, const char *name)
{
    char *raw = xasprintf("%s\x1f%s\x1f%s", org, project, name);
    size_t n = strlen(raw);
    char *hex = xmalloc(2 * n + 1);
    hex_encode((const unsigned char *)raw, n, hex);
    free(raw);
    return hex;
}

static bool token_decode(const char *tok, char **org, char **project, char **name)
{
    size_t n = strlen(tok);
    if (n == 0 || n % 2 || n > 1024)
        return false;
    char *raw = xmalloc(n / 2 + 1);
    if (!hex_decode(tok, n, (unsigned char *)raw)) {
        free(raw);
        return false;
    }
    raw[n / 2] = '\0';
    char *a = raw, *b = strchr(a, '\x1f'), *d = b ? strchr(b + 1, '\x1f') : NULL;
    bool ok = b && d;
    if (ok) {
        *b = *d = '\0';
        ok = name_valid_org(a) && name_valid_project(b + 1) && name_valid_stack(d + 1);
    }
    if (ok) {
        *org = xstrdup(a);
        *project = xstrdup(b + 1);
        *name = xstrdup(d + 1);
    }
    free(raw);
    return ok;
}

/* A token scope glob as a LIKE pattern (new), or NULL for everything. */
static char *scope_like(const char *glob)
{
    if (!glob)
        return NULL;
    Buf b;
    buf_init(&b);
    for (const char *p = glob; *p; p++) {
        if (*p == '*')
            buf_puts(&b, "%");
        else if (*p == '?')
            buf_puts(&b, "_");
        else if (*p == '%' || *p == '_' || *p == '\\') {
            buf_puts(&b, "\\");
            buf_append(&b, p, 1);
        } else {
            buf_append(&b, p, 1);
        }
    }
    return buf_steal(&b, NULL);
}

bool stack_list(Db *db, const StackQuery *q, Buf *out, ApiError *e)
{
    char *a_org = NULL, *a_proj = NULL, *a_name = NULL;
    if (q->continuation && *q->continuation && !token_decode(q->continuation, &a_org, &a_proj, &a_name))
        return api_fail(e, 400, "Bad Request: invalid continuationToken");
    char lbuf[16];
    snprintf(lbuf, sizeof(lbuf), "%d", q->limit + 1);
    char *like = scope_like(q->scope);
    DbParam p[] = {DB_TEXT(q->project), DB_TEXT(q->org), DB_TEXT(q->tag_name), DB_TEXT(q->tag_value), DB_TEXT(a_org),
                   DB_TEXT(a_proj),     DB_TEXT(a_name), DB_TEXT(lbuf),        DB_TEXT(like)};
    PGresult *r = db_exec(
        db,
        "SELECT s.id, s.org, s.project, s.name, s.resource_count, "
        "coalesce(extract(epoch from u.ended_at)::bigint, 0) "
        "FROM extension_pulumi_state_stacks s LEFT JOIN extension_pulumi_state_updates u ON u.id = s.last_update "
        "WHERE ($1::text IS NULL OR s.project = $1) AND ($2::text IS NULL OR s.org = $2) "
        "AND ($3::text IS NULL OR s.tags ? $3) AND ($4::text IS NULL OR s.tags ->> $3 = $4) "
        "AND ($5::text IS NULL OR (s.org, s.project, s.name) > ($5, $6, $7)) "
        "AND ($9::text IS NULL OR s.org || '/' || s.project || '/' || s.name LIKE $9) "
        "ORDER BY s.org, s.project, s.name LIMIT $8::int",
        9, p, false);
    free(a_org);
    free(a_proj);
    free(a_name);
    free(like);
    if (!r)
        return api_internal(e);
    int n = PQntuples(r);
    json_t *stacks = json_array();
    for (int i = 0; i < n && i < q->limit; i++) {
        json_t *st = json_pack("{s:s, s:s, s:s, s:s}", "id", PQgetvalue(r, i, 0), "orgName", PQgetvalue(r, i, 1),
                               "projectName", PQgetvalue(r, i, 2), "stackName", PQgetvalue(r, i, 3));
        long long last = atoll(PQgetvalue(r, i, 5));
        if (last)
            json_object_set_new(st, "lastUpdate", json_integer(last));
        json_object_set_new(st, "resourceCount", json_integer(atoi(PQgetvalue(r, i, 4))));
        json_array_append_new(stacks, st);
    }
    json_t *resp = json_pack("{s:o}", "stacks", stacks);
    if (n > q->limit) {
        int l = q->limit - 1;
        char *tok = token_encode(PQgetvalue(r, l, 1), PQgetvalue(r, l, 2), PQgetvalue(r, l, 3));
        json_object_set_new(resp, "continuationToken", json_string(tok));
        free(tok);
    } else {
        json_object_set_new(resp, "continuationToken", json_null());
    }
    PQclear(r);
    char *text = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(resp);
    if (!text)
        return api_internal(e);
    buf_puts(out, text);
    free(text);
    return true;
}

PGresult *stack_names_of_project(Db *db, const char *org, const char *project, bool all)
{
    DbParam p[] = {DB_TEXT(org), DB_TEXT(project)};
    return all ? db_exec(db, "SELECT name FROM extension_pulumi_state_stacks WHERE org = $1 AND project = $2", 2, p,
                         false)
               : db_exec(db, "SELECT name FROM extension_pulumi_state_stacks WHERE org = $1 AND project = $2 LIMIT 1",
                         2, p, false);
}
