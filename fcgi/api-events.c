/* api-events.c - engine events: stored once per sequence, read back in order. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jspan.h"
#include "names.h"
#include "history.h"
#include "update.h"

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
        json_object_foreach(o, k, v)
        {
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
    if (changes.p)
        changes_text = xstrndup(changes.p, changes.len);
    StackRef ref = ctx_stack(c);
    ApiError e;
    if (update_append(c->db, &ref, c->update_id, c->update_token, false, &batch, changes_text, &e))
        reply_ok(c);
    else
        reply_api_error(c, &e);
out:
    free(changes_text);
    jspan_ids_free(&batch);
}

void api_get_events(Ctx *c)
{
    const char *uid = c->captures[4];
    if (!name_valid_uuid(uid)) {
        reply_error(c, 404, MSG_UNKNOWN_UPDATE);
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
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    if (events_page(c->db, &ref, uid, after, &out, &e))
        reply_bytes(c, 200, out.data, out.len, false);
    else
        reply_api_error(c, &e);
    buf_free(&out);
}
