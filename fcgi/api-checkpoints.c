/* api-checkpoints.c - the state an update sends: full checkpoints, verbatim + delta, journal. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "journal.h"
#include "jspan.h"
#include "update.h"

/* The body as a JSON object, checked by the span scanner (never a tree), and the value spans of
 * keys[0..n) found in the same pass over its members (start[i] = (size_t)-1: absent). */
static bool body_object(Ctx *c, const char *const *keys, size_t n, size_t *start, size_t *end)
{
    const char *b = (const char *)c->body;
    if (!b || !jspan_validate(b, c->body_len) || b[strspn(b, " \t\r\n")] != '{') {
        reply_error(c, 400, "Bad Request: malformed JSON body");
        return false;
    }
    if (!jspan_members(b, c->body_len, keys, n, start, end)) {
        reply_error(c, 400, "Bad Request: the body's keys must be unique and written without escapes");
        return false;
    }
    return true;
}

static void render(Ctx *c, bool ok, const ApiError *e)
{
    if (ok)
        reply_ok(c);
    else
        reply_api_error(c, e);
}

void api_checkpoint(Ctx *c)
{
    const char *b = (const char *)c->body;
    static const char *const keys[] = {"version", "deployment", "features"};
    size_t at[3], to[3];
    long long version;
    if (!body_object(c, keys, 3, at, to))
        return;
    size_t vs = at[0], ve = to[0], ds = at[1], de = to[1], fs = at[2], fe = to[2];
    if (vs == (size_t)-1 || !jspan_int(b + vs, ve - vs, &version) || version < 1 || version > 4 || ds == (size_t)-1 ||
        (b[ds] != '{' && !jspan_is_null(b + ds, de - ds))) {
        reply_error(c, 400, "Bad Request: a checkpoint needs version 1..4 and a deployment object");
        return;
    }
    /* The stored document: {"version":N[,"features":[...]],"deployment":...}. Made in the body's own
     * buffer when the head fits before the deployment (as the CLI orders the members), so a large
     * state is never held twice here. */
    Buf head;
    buf_init(&head);
    buf_printf(&head, "{\"version\":%lld,", version);
    if (fs != (size_t)-1 && b[fs] == '[') {
        buf_puts(&head, "\"features\":");
        buf_append(&head, b + fs, fe - fs);
        buf_puts(&head, ",");
    }
    buf_puts(&head, "\"deployment\":");
    size_t len = head.len + (de - ds) + 1;
    char *text;
    if (head.len <= ds) {
        /* The head (its own copy of the features) ends before the deployment starts: writing it leaves
         * the deployment's bytes alone, which then move left. The result is shorter than the body, whose
         * buffer has room for the NUL past body_len. */
        text = (char *)c->body;
        memcpy(text, head.data, head.len);
        memmove(text + head.len, text + ds, de - ds);
        c->body = NULL;
        c->body_len = 0;
    } else {
        text = xmalloc(len + 1);
        memcpy(text, head.data, head.len);
        memcpy(text + head.len, b + ds, de - ds);
    }
    text[len - 1] = '}';
    text[len] = '\0';
    buf_free(&head);
    StackRef ref = ctx_stack(c);
    ApiError e;
    render(c, update_checkpoint(c->db, &ref, c->update_id, c->update_token, text, len, &e), &e);
}

void api_checkpoint_verbatim(Ctx *c)
{
    const char *b = (const char *)c->body;
    static const char *const keys[] = {"sequenceNumber", "untypedDeployment"};
    size_t at[2], to[2];
    long long seq;
    if (!body_object(c, keys, 2, at, to))
        return;
    size_t ss = at[0], se = to[0], us = at[1], ue = to[1];
    if (ss == (size_t)-1 || !jspan_int(b + ss, se - ss, &seq) || seq < 1 || us == (size_t)-1 || b[us] != '{' ||
        !state_doc_valid(b + us, ue - us)) {
        reply_error(c, 400, "Bad Request: a verbatim checkpoint needs sequenceNumber >= 1 and an untypedDeployment");
        return;
    }
    /* The document moved to the start of the body's buffer and handed over: it becomes the worker's
     * copy without another one being made. */
    char *doc = (char *)c->body;
    size_t len = ue - us;
    memmove(doc, doc + us, len);
    doc[len] = '\0';
    c->body = NULL;
    c->body_len = 0;
    StackRef ref = ctx_stack(c);
    ApiError e;
    render(c, update_checkpoint_verbatim(c->db, &ref, c->update_id, c->update_token, seq, doc, len, &e), &e);
}

void api_checkpoint_delta(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    json_t *seqj = json_object_get(body, "sequenceNumber");
    const char *hash = json_string_value(json_object_get(body, "checkpointHash"));
    json_t *edits = json_object_get(body, "deploymentDelta");
    if (!json_is_integer(seqj) || json_integer_value(seqj) < 1 || !hash || strlen(hash) != 64 ||
        !json_is_array(edits)) {
        reply_error(c, 400, "Bad Request: a delta needs sequenceNumber >= 1, checkpointHash and deploymentDelta");
        return;
    }
    StackRef ref = ctx_stack(c);
    ApiError e;
    render(
        c,
        update_checkpoint_delta(c->db, &ref, c->update_id, c->update_token, json_integer_value(seqj), edits, hash, &e),
        &e);
}

static bool entry_valid(const char *e, size_t len, void *arg)
{
    return journal_entry_check(e, len, arg, 200);
}

void api_journal_entries(Ctx *c)
{
    /* The hot path: validate with the span scanner (never a tree) and store the entries' exact
     * text in one round trip that also checks the update. */
    const char *b = (const char *)c->body;
    static const char *const keys[] = {"entries"};
    size_t es, ee;
    if (!body_object(c, keys, 1, &es, &ee))
        return;
    if (es == (size_t)-1 || b[es] != '[') {
        reply_error(c, 400, "Bad Request: entries must be an array");
        return;
    }
    JspanIds batch = {0};
    char why[200] = "sequenceID must be an integer >= 1";
    long bad = jspan_collect_ids(b + es, ee - es, "sequenceID", 1, entry_valid, why, &batch);
    if (bad >= 0) {
        reply_error(c, 400, "Bad Request: journal entry %ld cannot be replayed: %s", bad, why);
    } else {
        StackRef ref = ctx_stack(c);
        ApiError e;
        render(c, update_append(c->db, &ref, c->update_id, c->update_token, true, &batch, NULL, &e), &e);
    }
    jspan_ids_free(&batch);
}
