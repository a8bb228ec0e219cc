/* api-checkpoints.c - the state an update sends: full checkpoints, verbatim + delta, journal. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "delta.h"
#include "journal.h"
#include "jspan.h"
#include "stack.h"

/* Check the update may take state now: running, not a dry run, in the right mode. Commits (to
 * keep a reap) and replies 409/400 otherwise. */
static bool update_accepts_state(Ctx *c, const UpdateInfo *info, bool journal)
{
    if (strcmp(info->status, "running") != 0) {
        db_commit(c->db);
        reply_error(c, 409, "Conflict: the update is not in progress (it is %s)", status_wire(info->status));
        return false;
    }
    if (info->dry_run) {
        db_rollback(c->db);
        reply_error(c, 400, "Bad Request: a preview does not take state");
        return false;
    }
    if (journal != (info->journal_version > 0)) {
        db_rollback(c->db);
        reply_error(c, 409, journal ? "Conflict: journaling was not negotiated for this update"
                                    : "Conflict: this update sends journal entries, not checkpoints");
        return false;
    }
    return true;
}

/* Store the checkpoint bytes (transaction open, lock held) and commit. */
static void store_checkpoint(Ctx *c, const char *mode, long long seq, const char *doc, size_t len)
{
    char sbuf[24];
    snprintf(sbuf, sizeof(sbuf), "%lld", seq);
    DbParam p[] = {DB_TEXT(c->update_id), DB_TEXT(sbuf), DB_TEXT(mode), DB_BIN(doc, len)};
    if (!db_run(c->db,
                "INSERT INTO extension_pulumi_state_checkpoints (update_id, seq, mode, raw) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (update_id) DO UPDATE SET seq = $2, mode = $3, raw = $4, updated_at = now()",
                4, p) ||
        !db_run(c->db, "UPDATE extension_pulumi_state_updates SET last_seq = $2, checkpoint_mode = $3 WHERE id = $1", 3,
                p) ||
        !db_commit(c->db)) {
        db_rollback(c->db);
        reply_internal(c);
        return;
    }
    reply_ok(c);
}

void api_checkpoint(Ctx *c)
{
    const char *b = (const char *)c->body;
    size_t n = c->body_len;
    size_t vs, ve, ds, de, fs, fe;
    long long version;
    if (!b || !jspan_validate(b, n) || b[strspn(b, " \t\r\n")] != '{') {
        reply_error(c, 400, "Bad Request: malformed JSON body");
        return;
    }
    if (!jspan_member(b, n, "version", &vs, &ve) || !jspan_int(b + vs, ve - vs, &version) || version < 1 ||
        version > 4 || !jspan_member(b, n, "deployment", &ds, &de) ||
        (b[ds] != '{' && !jspan_is_null(b + ds, de - ds))) {
        reply_error(c, 400, "Bad Request: a checkpoint needs version 1..4 and a deployment object");
        return;
    }
    Buf doc;
    buf_init(&doc);
    buf_printf(&doc, "{\"version\":%lld,", version);
    if (jspan_member(b, n, "features", &fs, &fe) && b[fs] == '[') {
        buf_puts(&doc, "\"features\":");
        buf_append(&doc, b + fs, fe - fs);
        buf_puts(&doc, ",");
    }
    buf_puts(&doc, "\"deployment\":");
    buf_append(&doc, b + ds, de - ds);
    buf_puts(&doc, "}");
    UpdateInfo info;
    Stack *s = NULL;
    if (update_auth(c, true, &s, &info) && update_accepts_state(c, &info, false))
        store_checkpoint(c, "full", info.last_seq, doc.data, doc.len);
    stack_free(s);
    buf_free(&doc);
}

void api_checkpoint_verbatim(Ctx *c)
{
    const char *b = (const char *)c->body;
    size_t n = c->body_len;
    size_t us, ue, ss, se;
    long long seq;
    if (!b || !jspan_validate(b, n) || b[strspn(b, " \t\r\n")] != '{') {
        reply_error(c, 400, "Bad Request: malformed JSON body");
        return;
    }
    if (!jspan_member(b, n, "sequenceNumber", &ss, &se) || !jspan_int(b + ss, se - ss, &seq) || seq < 1 ||
        !jspan_member(b, n, "untypedDeployment", &us, &ue) || b[us] != '{' || !state_doc_valid(b + us, ue - us)) {
        reply_error(c, 400, "Bad Request: a verbatim checkpoint needs sequenceNumber >= 1 and an untypedDeployment");
        return;
    }
    UpdateInfo info;
    Stack *s = NULL;
    if (update_auth(c, true, &s, &info) && update_accepts_state(c, &info, false)) {
        if (seq < info.last_seq) {
            db_rollback(c->db);
            reply_error(c, 409, "Conflict: checkpoint sequence number %lld is older than %lld", seq, info.last_seq);
        } else {
            store_checkpoint(c, "verbatim", seq, b + us, ue - us);
        }
    }
    stack_free(s);
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
    long long seq = json_integer_value(seqj);
    UpdateInfo info;
    Stack *s = NULL;
    if (!update_auth(c, true, &s, &info) || !update_accepts_state(c, &info, false))
        goto out;
    if (seq == info.last_seq) {
        db_rollback(c->db);
        reply_ok(c); /* a retry of a delta already applied */
        goto out;
    }
    if (seq < info.last_seq) {
        db_rollback(c->db);
        reply_error(c, 409, "Conflict: checkpoint sequence number %lld is older than %lld", seq, info.last_seq);
        goto out;
    }
    DbParam p[] = {DB_TEXT(c->update_id)};
    PGresult *r = db_exec(c->db, "SELECT raw FROM extension_pulumi_state_checkpoints WHERE update_id = $1", 1, p, true);
    if (!r) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        db_rollback(c->db);
        reply_error(c, 409, "Conflict: no verbatim checkpoint to apply a delta to; send a verbatim checkpoint");
        goto out;
    }
    char *out = NULL, err[160] = "";
    size_t outlen = 0;
    DeltaResult dr = delta_apply(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), edits, hash, &out, &outlen, err,
                                 sizeof(err));
    PQclear(r);
    if (dr != DELTA_OK) {
        db_rollback(c->db);
        if (dr == DELTA_HASH_MISMATCH)
            reply_error(c, 409, "Conflict: the checkpoint hash does not match the result of the delta");
        else
            reply_error(c, 400, "Bad Request: invalid delta: %s", err);
        goto out;
    }
    if (!jspan_validate(out, outlen) || !state_doc_valid(out, outlen)) {
        db_rollback(c->db);
        reply_error(c, 400, "Bad Request: the delta does not produce a valid deployment");
    } else {
        store_checkpoint(c, "verbatim", seq, out, outlen);
    }
    free(out);
out:
    stack_free(s);
}

static bool entry_valid(const char *e, size_t len, void *arg)
{
    return journal_entry_check(e, len, arg, 200);
}

void api_journal_entries(Ctx *c)
{
    /* The hot path: validate with the span scanner (never a tree) and store the entries' exact
     * text in one statement that also checks the update. */
    const char *b = (const char *)c->body;
    size_t n = c->body_len, es, ee;
    if (!b || !jspan_validate(b, n) || b[strspn(b, " \t\r\n")] != '{') {
        reply_error(c, 400, "Bad Request: malformed JSON body");
        return;
    }
    if (!jspan_member(b, n, "entries", &es, &ee) || b[es] != '[') {
        reply_error(c, 400, "Bad Request: entries must be an array");
        return;
    }
    JspanIds batch = {0};
    char why[200] = "sequenceID must be an integer >= 1";
    long bad = jspan_collect_ids(b + es, ee - es, "sequenceID", 1, entry_valid, why, &batch);
    if (bad >= 0) {
        reply_error(c, 400, "Bad Request: journal entry %ld cannot be replayed: %s", bad, why);
        goto out;
    }
    int stored = update_store_batch(c, true, &batch);
    if (stored == 0) {
        /* Not taken: find out why (this reaps an expired lease and answers as every state route
         * does), or store it if the update was only busy being renewed. */
        UpdateInfo info;
        Stack *s = NULL;
        bool ok = update_auth(c, true, &s, &info) && update_accepts_state(c, &info, true);
        stack_free(s);
        if (!ok)
            goto out;
        db_rollback(c->db);
        stored = update_store_batch(c, true, &batch);
        if (stored == 0) {
            reply_error(c, 409, "Conflict: the update no longer takes journal entries");
            goto out;
        }
    }
    if (stored < 0)
        reply_internal(c);
    else
        reply_ok(c);
out:
    jspan_ids_free(&batch);
}
