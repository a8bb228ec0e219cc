/* api-updates.c - the update lifecycle: create, start (lease), status, renew, complete, cancel. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "names.h"
#include "stack.h"

static const char *auth_value_update(Ctx *c)
{
    const char *v = c->auth + strlen("update-token");
    while (*v == ' ')
        v++;
    return v;
}

bool update_auth(Ctx *c, bool lock, Stack **out, UpdateInfo *info)
{
    Stack *s = lock ? stack_fetch_locked(c) : stack_fetch(c);
    if (!s)
        return false;
    DbParam p[] = {DB_TEXT(c->update_id), DB_TEXT(s->id)};
    PGresult *r = db_exec(c->db,
                          "SELECT status, dry_run, journal_version, last_seq, coalesce(token_hash, ''), "
                          "coalesce(prev_token_hash, ''), coalesce(lease_expires_at < now(), false) "
                          "FROM extension_pulumi_state_updates WHERE id = $1 AND stack_id = $2",
                          2, p, false);
    if (!r) {
        reply_internal(c);
        goto fail;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        reply_error(c, 404, "Not Found: update '%s' not found on this stack", c->update_id);
        goto fail;
    }
    char *hash = auth_token_hash(auth_value_update(c));
    bool match = (PQgetvalue(r, 0, 4)[0] && str_eq_const_time(hash, PQgetvalue(r, 0, 4))) ||
                 (PQgetvalue(r, 0, 5)[0] && str_eq_const_time(hash, PQgetvalue(r, 0, 5)));
    free(hash);
    snprintf(info->status, sizeof(info->status), "%s", PQgetvalue(r, 0, 0));
    info->dry_run = PQgetvalue(r, 0, 1)[0] == 't';
    info->journal_version = atoi(PQgetvalue(r, 0, 2));
    info->last_seq = atoll(PQgetvalue(r, 0, 3));
    bool expired = PQgetvalue(r, 0, 6)[0] == 't';
    PQclear(r);
    if (!match) {
        reply_error(c, 403, "Forbidden: the update token is not valid for this update");
        goto fail;
    }
    if (expired && !strcmp(info->status, "running")) {
        /* An expired lease of a dry run (a real update's was reaped by stack_fetch). */
        char prior[16];
        bool own_tx = !lock;
        if (own_tx && !db_begin(c->db)) {
            reply_internal(c);
            goto fail;
        }
        if (!update_finish(c, s, c->update_id, "failed", prior, NULL, 0) || (own_tx && !db_commit(c->db))) {
            reply_internal(c);
            goto fail;
        }
        snprintf(info->status, sizeof(info->status), "failed");
    }
    if (out)
        *out = s;
    else
        stack_free(s);
    return true;
fail:
    db_rollback(c->db);
    stack_free(s);
    return false;
}

/* The update checks of update_auth (token, running, lease, stack) as a locking CTE; the journal
 * also needs a real update holding the stack, with journaling on. */
#define BATCH_UPDATE_CTE                                                                                  \
    "WITH up AS (SELECT u.id FROM extension_pulumi_state_updates u "                                     \
    "JOIN extension_pulumi_state_stacks s ON s.id = u.stack_id "                                          \
    "WHERE u.id = $1 AND s.org = $2 AND s.project = $3 AND s.name = $4 AND u.status = 'running' "          \
    "AND u.lease_expires_at > now() AND $5 IN (u.token_hash, u.prev_token_hash) "
#define JOURNAL_CHECKS "AND NOT u.dry_run AND u.journal_version > 0 AND s.active_update = u.id "

typedef struct BatchTable {
    const char *check_sql;  /* $1..$5: the update's row FOR SHARE; division by zero when refused */
    const char *copy_sql;
    const char *insert_sql; /* the fallback: one INSERT .. ON CONFLICT DO NOTHING */
} BatchTable;

static const BatchTable journal_table = {
    BATCH_UPDATE_CTE JOURNAL_CHECKS "FOR SHARE OF u) SELECT 1 / count(*) FROM up",
    "COPY extension_pulumi_state_journal (update_id, sequence_id, entry) FROM STDIN (FORMAT binary)",
    BATCH_UPDATE_CTE JOURNAL_CHECKS "FOR SHARE OF u), ins AS (INSERT INTO extension_pulumi_state_journal "
    "(update_id, sequence_id, entry) SELECT up.id, q.seq, q.entry FROM up, unnest($6::int8[], $7::bytea[]) "
    "q(seq, entry) ON CONFLICT DO NOTHING) SELECT count(*) FROM up",
};

static const BatchTable events_table = {
    BATCH_UPDATE_CTE "FOR SHARE OF u) SELECT 1 / count(*) FROM up",
    "COPY extension_pulumi_state_events (update_id, sequence, event) FROM STDIN (FORMAT binary)",
    BATCH_UPDATE_CTE "FOR SHARE OF u), ins AS (INSERT INTO extension_pulumi_state_events "
    "(update_id, sequence, event) SELECT up.id, q.seq, q.entry FROM up, unnest($6::int8[], $7::bytea[]) "
    "q(seq, entry) ON CONFLICT DO NOTHING) SELECT count(*) FROM up",
};

static bool uuid_bytes(const char *text, unsigned char out[16])
{
    size_t k = 0;
    for (const char *p = text; *p && k < 32; p++) {
        if (*p == '-')
            continue;
        int v = *p >= '0' && *p <= '9' ? *p - '0' : (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f' ? (*p | 0x20) - 'a' + 10 : -1;
        if (v < 0)
            return false;
        out[k / 2] = (unsigned char)(k % 2 ? (out[k / 2] | v) : (v << 4));
        k++;
    }
    return k == 32;
}

/* The binary COPY stream of batch's rows (update_id, id, text). */
static bool copy_stream(const char *update_id, const JspanIds *batch, Buf *stream)
{
    unsigned char uid[16];
    if (!uuid_bytes(update_id, uid))
        return false;
    size_t total = 32;
    for (size_t i = 0; i < batch->n; i++)
        total += batch->spans[i].len + 42;
    buf_reserve(stream, total);
    db_copy_header(stream);
    for (size_t i = 0; i < batch->n; i++) {
        db_copy_row(stream, 3);
        db_copy_field(stream, uid, sizeof(uid));
        db_copy_field_int8(stream, batch->ids[i]);
        db_copy_field(stream, batch->spans[i].p, batch->spans[i].len);
    }
    db_copy_trailer(stream);
    return true;
}

/* sql with $1..$n replaced by the literals lits (already quoted). */
static char *inline_params(const char *sql, char *const *lits, int n)
{
    Buf b;
    buf_init(&b);
    for (const char *p = sql; *p; p++) {
        if (*p == '$' && p[1] >= '1' && p[1] <= '0' + n && !(p[2] >= '0' && p[2] <= '9')) {
            buf_puts(&b, lits[p[1] - '1']);
            p++;
        } else {
            buf_append(&b, p, 1);
        }
    }
    return buf_steal(&b, NULL);
}

/* The batch in one round trip: "<check>; COPY .. FROM STDIN" as one simple query, which PostgreSQL
 * runs as one implicit transaction (committed when the COPY ends, the update's row locked from the
 * check on). A refused check is a division by zero (22012), so the COPY never starts. */
static int copy_in_one_trip(Ctx *c, const BatchTable *t, const DbParam *p, const JspanIds *batch)
{
    char *lits[5] = {NULL};
    int result = -1;
    for (int i = 0; i < 5; i++)
        if (!(lits[i] = PQescapeLiteral(c->db->conn, p[i].value, strlen(p[i].value))))
            goto out;
    char *check = inline_params(t->check_sql, lits, 5);
    char *sql = xasprintf("%s; %s", check, t->copy_sql);
    free(check);
    Buf stream;
    buf_init(&stream);
    if (copy_stream(c->update_id, batch, &stream)) {
        if (db_copy(c->db, sql, &stream))
            result = 1;
        else if (!strcmp(db_last_sqlstate(), "22012"))
            result = 0;
        else if (!strcmp(db_last_sqlstate(), "23505"))
            result = 2;
    }
    buf_free(&stream);
    free(sql);
out:
    for (int i = 0; i < 5; i++)
        PQfreemem(lits[i]);
    return result;
}

int update_store_batch(Ctx *c, bool journal, const JspanIds *batch)
{
    const BatchTable *t = journal ? &journal_table : &events_table;
    char *hash = auth_token_hash(auth_value_update(c));
    DbParam p[] = {DB_TEXT(c->update_id), DB_TEXT(c->captures[0]), DB_TEXT(c->captures[1]),
                   DB_TEXT(c->captures[2]), DB_TEXT(hash),          DB_BIN(NULL, 0), DB_BIN(NULL, 0)};
    int result;
    if (batch->n == 0) {
        PGresult *r = db_exec_hot(c->db, t->check_sql, 5, p, false);
        result = r ? 1 : !strcmp(db_last_sqlstate(), "22012") ? 0 : -1;
        PQclear(r);
    } else {
        result = copy_in_one_trip(c, t, p, batch);
    }
    if (result == 2) {
        /* Some of it is stored already (a retried batch): one statement that skips what is there. */
        Buf seqs, items;
        buf_init(&seqs);
        buf_init(&items);
        db_array_begin(&seqs, DB_OID_INT8, batch->n);
        db_array_begin(&items, DB_OID_BYTEA, batch->n);
        for (size_t i = 0; i < batch->n; i++) {
            db_array_add_int8(&seqs, batch->ids[i]);
            db_array_add(&items, batch->spans[i].p, batch->spans[i].len);
        }
        p[5] = DB_BIN(seqs.data, seqs.len);
        p[6] = DB_BIN(items.data, items.len);
        PGresult *r = db_exec(c->db, t->insert_sql, 7, p, false);
        result = r ? (PQntuples(r) == 1 && atoi(PQgetvalue(r, 0, 0)) == 1) : -1;
        PQclear(r);
        buf_free(&seqs);
        buf_free(&items);
    }
    free(hash);
    return result;
}

/* The release in the CLI's User-Agent, "pulumi-cli/1 (v3.259.0; linux; cmd=up)": "v3.259.0". */
static bool cli_version_of(const char *ua, char *out, size_t outlen)
{
    static const char prefix[] = "pulumi-cli/";
    if (!ua || strncmp(ua, prefix, sizeof(prefix) - 1) != 0)
        return false;
    const char *open = strchr(ua, '(');
    if (!open)
        return false;
    open++;
    size_t n = strcspn(open, ";) ");
    if (n == 0 || n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)open[i]) && !strchr(".-+_", open[i]))
            return false;
    memcpy(out, open, n);
    out[n] = '\0';
    return true;
}

void api_create_update(Ctx *c)
{
    const char *kind = c->captures[3];
    json_t *body = ctx_json(c);
    if (!body)
        return;
    json_t *options = json_object_get(body, "options");
    json_t *config = json_object_get(body, "config");
    json_t *metadata = json_object_get(body, "metadata");
    if ((options && !json_is_object(options)) || (config && !json_is_object(config) && !json_is_null(config)) ||
        (metadata && !json_is_object(metadata) && !json_is_null(metadata))) {
        reply_error(c, 400, "Bad Request: options, config and metadata must be objects");
        return;
    }
    json_t *env = json_object_get(metadata, "environment");
    if (env && !json_is_object(env) && !json_is_null(env)) {
        reply_error(c, 400, "Bad Request: metadata.environment must be an object");
        return;
    }
    json_t *dry = json_object_get(options, "dryRun");
    if (dry && !json_is_boolean(dry)) {
        reply_error(c, 400, "Bad Request: options.dryRun must be a boolean");
        return;
    }
    bool dry_run = !strcmp(kind, "preview") || json_is_true(dry);
    Stack *s = stack_fetch(c);
    if (!s)
        return;
    char *cfg = json_dumps(json_is_object(config) ? config : json_object(), JSON_COMPACT);
    char *meta = json_dumps(json_is_object(metadata) ? metadata : json_object(), JSON_COMPACT);
    char *opts = json_dumps(json_is_object(options) ? options : json_object(), JSON_COMPACT);
    char cli_version[64];
    bool have_version = cli_version_of(c->user_agent, cli_version, sizeof(cli_version));
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(kind), DB_TEXT(dry_run ? "true" : "false"), DB_TEXT(cfg), DB_TEXT(meta),
                   DB_TEXT(opts), DB_TEXT(c->actor), DB_TEXT(have_version ? cli_version : NULL)};
    PGresult *r = db_exec(c->db,
                          "INSERT INTO extension_pulumi_state_updates (stack_id, kind, dry_run, config, metadata, options, "
                          "created_by, cli_version) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8) "
                          "RETURNING id",
                          8, p, false);
    if (!r)
        reply_internal(c);
    else
        reply_json(c, 200, json_pack("{s:s}", "updateID", PQgetvalue(r, 0, 0)));
    PQclear(r);
    free(cfg);
    free(meta);
    free(opts);
    stack_free(s);
}

void api_start_update(Ctx *c)
{
    const char *uid = c->captures[4];
    if (!name_valid_uuid(uid)) {
        reply_error(c, 404, "Not Found: unknown update");
        return;
    }
    json_t *body = ctx_json(c);
    if (!body)
        return;
    json_t *tags = json_object_get(body, "tags");
    json_t *jv = json_object_get(body, "journalVersion");
    if (jv && !json_is_integer(jv) && !json_is_null(jv)) {
        reply_error(c, 400, "Bad Request: journalVersion must be an integer");
        return;
    }
    if (tags && !json_is_null(tags)) {
        const char *k;
        json_t *v;
        if (!json_is_object(tags)) {
            reply_error(c, 400, "Bad Request: tags must be an object of strings");
            return;
        }
        json_object_foreach(tags, k, v) {
            if (!json_is_string(v) || !name_valid_tag(k, json_string_value(v))) {
                reply_error(c, 400, "Bad Request: invalid tag '%.60s'", k);
                return;
            }
        }
    }
    Stack *s = stack_fetch_locked(c);
    if (!s)
        return;
    char *token = NULL, *hash = NULL, *tagtext = NULL;
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(s->id)};
    PGresult *r = db_exec(c->db,
                          "SELECT status, dry_run FROM extension_pulumi_state_updates WHERE id = $1 AND stack_id = $2 "
                          "FOR UPDATE",
                          2, p, false);
    if (!r) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        db_rollback(c->db);
        reply_error(c, 404, "Not Found: update '%s' not found on this stack", uid);
        goto out;
    }
    bool started = strcmp(PQgetvalue(r, 0, 0), "not started") != 0;
    bool dry_run = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    if (started) {
        db_rollback(c->db);
        reply_error(c, 409, "Conflict: the update has already been started");
        goto out;
    }
    if (!dry_run && s->active_update[0]) {
        db_rollback(c->db);
        reply_error(c, 409, "Conflict: Another update is currently in progress.");
        goto out;
    }
    int journal = c->cfg->journaling && jv && json_integer_value(jv) >= 1 && !dry_run ? 1 : 0;
    token = auth_token_new("");
    if (!token) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    hash = auth_token_hash(token);
    char ttl[16], jbuf[8], vbuf[16];
    snprintf(ttl, sizeof(ttl), "%d", c->cfg->lease_ttl);
    snprintf(jbuf, sizeof(jbuf), "%d", journal);
    snprintf(vbuf, sizeof(vbuf), "%d", s->version);
    DbParam q[] = {DB_TEXT(uid), DB_TEXT(hash), DB_TEXT(ttl), DB_TEXT(jbuf), DB_TEXT(vbuf), DB_TEXT(s->id)};
    r = db_exec(c->db,
                "UPDATE extension_pulumi_state_updates SET status = 'running', started_at = now(), token_hash = $2, "
                "lease_expires_at = now() + make_interval(secs => $3::int), journal_version = $4, "
                "base_version = $5, checkpoint_mode = CASE WHEN $4::int = 1 THEN 'journal' ELSE NULL END "
                "WHERE id = $1 RETURNING extract(epoch from lease_expires_at)::bigint",
                5, q, false);
    if (!r) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    long long expires = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!dry_run) {
        tagtext = tags && json_is_object(tags) ? json_dumps(tags, JSON_COMPACT) : NULL;
        DbParam t[] = {DB_TEXT(uid), DB_TEXT(tagtext), DB_TEXT(s->id)};
        if (!db_run(c->db,
                    "UPDATE extension_pulumi_state_stacks SET active_update = $1, tags = coalesce($2::jsonb, tags), "
                    "updated_at = now() WHERE id = $3",
                    3, t)) {
            db_rollback(c->db);
            reply_internal(c);
            goto out;
        }
    }
    if (!audit_commit(c)) {
        reply_internal(c);
        goto out;
    }
    reply_json(c, 200, json_pack("{s:i, s:s, s:I, s:i}", "version", dry_run ? s->version : s->version + 1, "token",
                                 token, "tokenExpiration", (json_int_t)expires, "journalVersion", journal));
out:
    if (token)
        OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(hash);
    free(tagtext);
    stack_free(s);
}

void api_get_update(Ctx *c)
{
    const char *uid = c->captures[4];
    if (!name_valid_uuid(uid)) {
        reply_error(c, 404, "Not Found: unknown update");
        return;
    }
    Stack *s = stack_fetch(c);
    if (!s)
        return;
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(s->id)};
    PGresult *r = db_exec(c->db, "SELECT status FROM extension_pulumi_state_updates WHERE id = $1 AND stack_id = $2", 2,
                          p, false);
    if (!r)
        reply_internal(c);
    else if (PQntuples(r) != 1)
        reply_error(c, 404, "Not Found: update '%s' not found on this stack", uid);
    else {
        const char *st = PQgetvalue(r, 0, 0);
        bool done = strcmp(st, "running") != 0 && strcmp(st, "not started") != 0;
        json_t *o = json_pack("{s:s, s:[]}", "status", status_wire(st), "events");
        json_object_set_new(o, "continuationToken", done ? json_null() : json_string("0"));
        reply_json(c, 200, o);
    }
    PQclear(r);
    stack_free(s);
}

void api_renew_lease(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    json_t *d = json_object_get(body, "duration");
    if (d && !json_is_integer(d)) {
        reply_error(c, 400, "Bad Request: duration must be an integer number of seconds");
        return;
    }
    Stack *s = NULL;
    UpdateInfo info;
    if (!update_auth(c, true, &s, &info))
        return;
    char *token = NULL, *hash = NULL;
    if (strcmp(info.status, "running") != 0) {
        db_commit(c->db);
        reply_error(c, 403, "Forbidden: the update's lease has ended (the update is %s)", status_wire(info.status));
        goto out;
    }
    token = auth_token_new("");
    hash = token ? auth_token_hash(token) : NULL;
    char *old = auth_token_hash(auth_value_update(c));
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", c->cfg->lease_ttl);
    DbParam p[] = {DB_TEXT(c->update_id), DB_TEXT(hash), DB_TEXT(old), DB_TEXT(ttl)};
    /* Renewing with the current token makes it the previous one, so calls already in flight
     * with it still succeed; renewing with the previous one (a retry whose answer was lost)
     * keeps it as the previous one. */
    PGresult *r = hash ? db_exec(c->db,
                                 "UPDATE extension_pulumi_state_updates SET prev_token_hash = CASE WHEN "
                                 "token_hash = $3 THEN token_hash ELSE prev_token_hash END, token_hash = $2, "
                                 "lease_expires_at = now() + make_interval(secs => $4::int) WHERE id = $1 "
                                 "RETURNING extract(epoch from lease_expires_at)::bigint",
                                 4, p, false)
                       : NULL;
    free(old);
    if (!r || !db_commit(c->db)) {
        PQclear(r);
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    reply_json(c, 200, json_pack("{s:s, s:I}", "token", token, "tokenExpiration", (json_int_t)atoll(PQgetvalue(r, 0, 0))));
    PQclear(r);
out:
    free(token);
    free(hash);
    stack_free(s);
}

void api_complete_update(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    const char *status = json_string_value(json_object_get(body, "status"));
    if (!status || (strcmp(status, "succeeded") && strcmp(status, "failed") && strcmp(status, "cancelled"))) {
        reply_error(c, 400, "Bad Request: status must be succeeded, failed or cancelled");
        return;
    }
    Stack *s = NULL;
    UpdateInfo info;
    if (!update_auth(c, true, &s, &info))
        return;
    char prior[16];
    if (strcmp(info.status, "running") != 0) {
        db_commit(c->db); /* keeps a reap done on the way */
        if (!strcmp(info.status, status))
            reply_ok(c); /* a retried complete */
        else
            reply_error(c, 409, "Conflict: the update is already %s", status_wire(info.status));
        goto out;
    }
    char why[256];
    if (!update_finish(c, s, c->update_id, status, prior, why, sizeof(why)) || !audit_commit(c)) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    if (why[0] && !strcmp(status, "succeeded"))
        reply_error(c, 400, "Bad Request: the update's journal cannot be replayed (%s); the update ended as failed, "
                    "keeping every resource its journal recorded", why);
    else
        reply_ok(c);
out:
    stack_free(s);
}

void api_cancel_update(Ctx *c)
{
    const char *uid = c->captures[4];
    if (!name_valid_uuid(uid)) {
        reply_error(c, 404, "Not Found: unknown update");
        return;
    }
    Stack *s = stack_fetch_locked(c);
    if (!s)
        return;
    char prior[16];
    if (c->role < ROLE_ADMIN) {
        /* Only an admin may cancel an update somebody else started. */
        DbParam q[] = {DB_TEXT(uid), DB_TEXT(s->id)};
        PGresult *r = db_exec(c->db,
                              "SELECT coalesce(created_by, '') FROM extension_pulumi_state_updates WHERE id = $1 "
                              "AND stack_id = $2",
                              2, q, false);
        bool other = r && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), c->actor) != 0;
        PQclear(r);
        if (other) {
            db_rollback(c->db);
            reply_error(c, 403, "Forbidden: only an admin token may cancel an update started by another token");
            goto out;
        }
    }
    if (!update_finish(c, s, uid, "cancelled", prior, NULL, 0)) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    if (!strcmp(prior, "missing")) {
        db_rollback(c->db);
        reply_error(c, 404, "Not Found: update '%s' not found on this stack", uid);
        goto out;
    }
    if (strcmp(prior, "running") && strcmp(prior, "not started") && strcmp(prior, "cancelled")) {
        db_commit(c->db); /* keeps a reap done on the way */
        reply_error(c, 409, "Conflict: the update has already completed (%s)", status_wire(prior));
        goto out;
    }
    if (!audit_commit(c)) {
        reply_internal(c);
        goto out;
    }
    reply_ok(c);
out:
    stack_free(s);
}
