/* api-stacks.c - stacks: create, read, delete, tags, rename, export and import. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "gzip.h"
#include "jspan.h"
#include "names.h"
#include "stack.h"
#include "urn.h"

void api_project_exists(Ctx *c)
{
    if (!name_valid_org(c->captures[0]) || !name_valid_project(c->captures[1])) {
        reply_error(c, 400, "Bad Request: invalid organization or project name");
        return;
    }
    DbParam p[] = {DB_TEXT(c->captures[0]), DB_TEXT(c->captures[1])};
    /* A scoped token sees a project only through a stack of it inside its scope: out of scope
     * answers as if the project did not exist. */
    PGresult *r = c->scope ? db_exec(c->db, "SELECT name FROM extension_pulumi_state_stacks WHERE org = $1 AND "
                                            "project = $2", 2, p, false)
                           : db_exec(c->db, "SELECT name FROM extension_pulumi_state_stacks WHERE org = $1 AND "
                                            "project = $2 LIMIT 1", 2, p, false);
    if (!r) {
        reply_internal(c);
        return;
    }
    bool found = false;
    for (int i = 0; i < PQntuples(r) && !found; i++)
        found = auth_scope_allows(c, c->captures[0], c->captures[1], PQgetvalue(r, i, 0));
    PQclear(r);
    if (found)
        reply_ok(c);
    else
        reply_error(c, 404, "Not Found: project '%s/%s' has no stacks", c->captures[0], c->captures[1]);
}

/* Validate a tags object: string values, valid names. */
static bool tags_valid(Ctx *c, json_t *tags)
{
    if (!json_is_object(tags)) {
        reply_error(c, 400, "Bad Request: tags must be an object of strings");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(tags, k, v) {
        if (!json_is_string(v) || !name_valid_tag(k, json_string_value(v))) {
            reply_error(c, 400, "Bad Request: invalid tag '%.60s'", k);
            return false;
        }
    }
    return true;
}

void api_create_stack(Ctx *c)
{
    const char *org = c->captures[0], *project = c->captures[1];
    if (!name_valid_org(org) || !name_valid_project(project)) {
        reply_error(c, 400, "Bad Request: invalid organization or project name");
        return;
    }
    /* The initial state, if any, is kept as the bytes sent (a tree would change its numbers); the
     * rest of the body is parsed with the state replaced by null. */
    const char *b = (const char *)c->body;
    size_t ss = 0, se = 0;
    bool has_state = b && jspan_validate(b, c->body_len) && jspan_member(b, c->body_len, "state", &ss, &se) &&
                     !jspan_is_null(b + ss, se - ss);
    if (has_state) {
        Buf rest;
        buf_init(&rest);
        buf_append(&rest, b, ss);
        buf_puts(&rest, "null");
        buf_append(&rest, b + se, c->body_len - se);
        c->json = json_loadb(rest.data, rest.len, JSON_REJECT_DUPLICATES, NULL);
        buf_free(&rest);
    }
    json_t *body = ctx_json(c);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "stackName"));
    if (!name || !name_valid_stack(name)) {
        reply_error(c, 400, "Bad Request: invalid stack name");
        return;
    }
    if (!auth_scope_allows(c, org, project, name)) {
        reply_error(c, 403, "Forbidden: stack '%s/%s/%s' is outside the scope of token '%s'", org, project, name,
                    c->actor);
        return;
    }
    json_t *tags = json_object_get(body, "tags");
    if (tags && !json_is_null(tags) && !tags_valid(c, tags))
        return;
    if (has_state && (b[ss] != '{' || !state_doc_valid(b + ss, se - ss))) {
        reply_error(c, 400, "Bad Request: state must be an untyped deployment with version 1..4");
        return;
    }
    unsigned char datakey[CRYPTO_KEY_LEN];
    char uuid[37];
    PGresult *r = db_exec(c->db, "SELECT gen_random_uuid()", 0, NULL, false);
    if (!r || !crypto_random(datakey, sizeof(datakey))) {
        PQclear(r);
        reply_internal(c);
        return;
    }
    snprintf(uuid, sizeof(uuid), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    char *wrapped = crypto_wrap_key(c->w->master_key, uuid, datakey);
    OPENSSL_cleanse(datakey, sizeof(datakey));
    char *tagtext = json_dumps(tags && json_is_object(tags) ? tags : json_object(), JSON_COMPACT);
    DbParam p[] = {DB_TEXT(uuid), DB_TEXT(org), DB_TEXT(project), DB_TEXT(name), DB_TEXT(tagtext), DB_TEXT(wrapped)};
    bool ok = db_begin(c->db);
    if (ok && !db_run(c->db,
                      "INSERT INTO extension_pulumi_state_stacks (id, org, project, name, tags, secrets_key) "
                      "VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
                      6, p)) {
        db_rollback(c->db);
        if (!strcmp(db_last_sqlstate(), "23505"))
            reply_error(c, 409, "Conflict: stack '%s/%s/%s' already exists", org, project, name);
        else
            reply_internal(c);
        goto out;
    }
    if (ok && has_state) {
        Stack *s = stack_load(c, org, project, name);
        ok = s && stack_add_version(c, s, NULL, b + ss, se - ss);
        stack_free(s);
    }
    if (!ok || !audit_commit(c)) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    reply_json(c, 200, json_pack("{s:[]}", "messages"));
out:
    free(tagtext);
    free(wrapped);
}

static json_t *stack_json(const Stack *s)
{
    json_t *tags = json_loads(s->tags, 0, NULL);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:i}", "id", s->id, "orgName", s->org, "projectName",
                          s->project, "stackName", s->name, "activeUpdate",
                          s->active_update[0] ? s->active_update : s->last_update, "tags",
                          tags ? tags : json_object(), "version", s->version);
    if (s->active_update[0])
        json_object_set_new(o, "currentOperation", json_pack("{s:s, s:s, s:I}", "kind", s->active_kind, "author",
                                                             "", "started", (json_int_t)s->active_started));
    return o;
}

void api_get_stack(Ctx *c)
{
    Stack *s = stack_fetch(c);
    if (!s)
        return;
    reply_json(c, 200, stack_json(s));
    stack_free(s);
}

void api_delete_stack(Ctx *c)
{
    char *force = ctx_query(c, "force");
    bool forced = force && !strcmp(force, "true");
    free(force);
    Stack *s = stack_fetch_locked(c);
    if (!s)
        return;
    if (s->active_update[0] && !forced) {
        db_rollback(c->db);
        reply_error(c, 409, "Conflict: Another update is currently in progress.");
        goto out;
    }
    if (s->resource_count > 0 && !forced) {
        db_rollback(c->db);
        reply_error(c, 400, "Bad Request: Stack still contains resources.");
        goto out;
    }
    DbParam p[] = {DB_TEXT(s->id)};
    /* Journal and event rows carry no foreign key (0004): they go with their updates here. */
    if (!db_run(c->db,
                "DELETE FROM extension_pulumi_state_journal WHERE update_id IN "
                "(SELECT id FROM extension_pulumi_state_updates WHERE stack_id = $1)",
                1, p) ||
        !db_run(c->db,
                "DELETE FROM extension_pulumi_state_events WHERE update_id IN "
                "(SELECT id FROM extension_pulumi_state_updates WHERE stack_id = $1)",
                1, p) ||
        !db_run(c->db, "DELETE FROM extension_pulumi_state_stacks WHERE id = $1", 1, p) || !audit_commit(c)) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    reply_ok(c);
out:
    stack_free(s);
}

void api_update_tags(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body || !tags_valid(c, body))
        return;
    Stack *s = stack_fetch_locked(c);
    if (!s)
        return;
    char *text = json_dumps(body, JSON_COMPACT);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(text)};
    if (!db_run(c->db, "UPDATE extension_pulumi_state_stacks SET tags = $2::jsonb, updated_at = now() WHERE id = $1",
                2, p) ||
        !audit_commit(c)) {
        db_rollback(c->db);
        reply_internal(c);
    } else {
        reply_ok(c);
    }
    free(text);
    stack_free(s);
}

/* Record a finished operation that is not a CLI update (import, rename) in the history. */
static char *record_operation(Ctx *c, Stack *s, const char *kind)
{
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(kind)};
    PGresult *r = db_exec(c->db,
                          "INSERT INTO extension_pulumi_state_updates (stack_id, kind, status, started_at, base_version) "
                          "SELECT $1, $2, 'running', now(), version FROM extension_pulumi_state_stacks WHERE id = $1 "
                          "RETURNING id",
                          2, p, false);
    if (!r)
        return NULL;
    char *id = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return id;
}

static bool finish_operation(Ctx *c, Stack *s, const char *uid)
{
    char vbuf[16], cbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", s->version);
    snprintf(cbuf, sizeof(cbuf), "%d", s->resource_count);
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(vbuf), DB_TEXT(cbuf)};
    DbParam q[] = {DB_TEXT(uid), DB_TEXT(s->id)};
    return db_run(c->db,
                  "UPDATE extension_pulumi_state_updates SET status = 'succeeded', ended_at = now(), "
                  "result_version = $2, resource_count = $3 WHERE id = $1",
                  3, p) &&
           db_run(c->db, "UPDATE extension_pulumi_state_stacks SET last_update = $1 WHERE id = $2", 2, q);
}

void api_rename_stack(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    const char *new_name = json_string_value(json_object_get(body, "newName"));
    const char *new_project = json_string_value(json_object_get(body, "newProject"));
    if (!new_name || !name_valid_stack(new_name)) {
        reply_error(c, 400, "Bad Request: invalid new stack name");
        return;
    }
    if (new_project && *new_project && !name_valid_project(new_project)) {
        reply_error(c, 400, "Bad Request: invalid new project name");
        return;
    }
    if (!auth_scope_allows(c, c->captures[0], new_project && *new_project ? new_project : c->captures[1], new_name)) {
        reply_error(c, 403, "Forbidden: the new name is outside the scope of token '%s'", c->actor);
        return;
    }
    Stack *s = stack_fetch_locked(c);
    if (!s)
        return;
    if (!new_project || !*new_project)
        new_project = s->project;
    char *doc = NULL, *uid = NULL, *newdoc = NULL;
    size_t len = 0;
    if (s->active_update[0]) {
        db_rollback(c->db);
        reply_error(c, 409, "Conflict: Another update is currently in progress.");
        goto out;
    }
    if (!strcmp(new_name, s->name) && !strcmp(new_project, s->project)) {
        db_rollback(c->db);
        reply_ok(c);
        goto out;
    }
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(new_project), DB_TEXT(new_name)};
    if (!db_run(c->db, "UPDATE extension_pulumi_state_stacks SET project = $2, name = $3, updated_at = now() WHERE id = $1",
                3, p)) {
        db_rollback(c->db);
        if (!strcmp(db_last_sqlstate(), "23505"))
            reply_error(c, 409, "Conflict: stack '%s/%s/%s' already exists", s->org, new_project, new_name);
        else
            reply_internal(c);
        goto out;
    }
    if (s->version > 0) {
        /* Rewrite the URNs and the service secrets state into a new version. */
        if (!stack_state(c, s, s->version, &doc, &len)) {
            db_rollback(c->db);
            goto out;
        }
        Buf renamed;
        buf_init(&renamed);
        UrnResult ur = urn_rename_state(doc, len, s->name, s->project, s->org, new_name, new_project, &renamed);
        if (ur != URN_OK) {
            buf_free(&renamed);
            db_rollback(c->db);
            reply_error(c, 409, "Conflict: the stack's state holds a malformed %s and cannot be renamed",
                        ur == URN_BAD_PROVIDER ? "provider reference" : "document");
            goto out;
        }
        size_t newlen = 0;
        newdoc = buf_steal(&renamed, &newlen);
        uid = record_operation(c, s, "rename");
        if (!uid || !stack_add_version(c, s, uid, newdoc, newlen) || !finish_operation(c, s, uid)) {
            db_rollback(c->db);
            reply_internal(c);
            goto out;
        }
    }
    if (!audit_commit(c)) {
        reply_internal(c);
        goto out;
    }
    reply_ok(c);
out:
    free(doc);
    free(newdoc);
    free(uid);
    stack_free(s);
}

/* Serve version v of s: the stored gzip bytes as they are when the client takes gzip. */
static void export_version(Ctx *c, Stack *s, int version)
{
    if (version == 0 || !c->accepts_gzip) {
        char *doc;
        size_t len;
        if (stack_state(c, s, version, &doc, &len)) {
            reply_bytes(c, 200, doc, len, false);
            free(doc);
        }
        return;
    }
    char vbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", version);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(vbuf)};
    PGresult *r = db_exec(c->db, "SELECT data FROM extension_pulumi_state_versions WHERE stack_id = $1 AND version = $2",
                          2, p, true);
    if (!r) {
        reply_internal(c);
        return;
    }
    if (PQntuples(r) != 1)
        reply_error(c, 404, "Not Found: version %d of stack '%s' not found", version, s->name);
    else
        reply_bytes(c, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), true);
    PQclear(r);
}

void api_export(Ctx *c)
{
    Stack *s = stack_fetch(c);
    if (!s)
        return;
    /* During an update, the last checkpoint (or the journal so far, replayed) is the freshest
     * state. */
    if (s->active_update[0]) {
        DbParam p[] = {DB_TEXT(s->active_update)};
        PGresult *r = db_exec(c->db,
                              "SELECT c.raw, u.journal_version, coalesce(u.base_version, 0) FROM "
                              "extension_pulumi_state_updates u LEFT JOIN extension_pulumi_state_checkpoints c "
                              "ON c.update_id = u.id WHERE u.id = $1",
                              1, p, true);
        if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
            reply_bytes(c, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), false);
            PQclear(r);
            stack_free(s);
            return;
        }
        /* Binary results: int4 in network byte order. */
        bool journaled = r && PQntuples(r) == 1 && PQgetlength(r, 0, 1) == 4 && PQgetvalue(r, 0, 1)[3] != 0;
        int base = 0;
        if (journaled) {
            const unsigned char *bv = (const unsigned char *)PQgetvalue(r, 0, 2);
            base = (int)((unsigned)bv[0] << 24 | (unsigned)bv[1] << 16 | (unsigned)bv[2] << 8 | bv[3]);
        }
        PQclear(r);
        char *doc = NULL;
        size_t len = 0;
        if (journaled && journal_materialize(c, s, s->active_update, base, true, &doc, &len, NULL, 0) == MAT_OK && doc) {
            reply_bytes(c, 200, doc, len, false);
            free(doc);
            stack_free(s);
            return;
        }
    }
    export_version(c, s, s->version);
    stack_free(s);
}

void api_export_version(Ctx *c)
{
    const char *v = c->captures[3];
    long long version = 0;
    if (!parse_int64(v, -1, 1, 1000000000, &version)) {
        reply_error(c, 400, "Bad Request: the version must be a positive integer");
        return;
    }
    Stack *s = stack_fetch(c);
    if (!s)
        return;
    export_version(c, s, (int)version);
    stack_free(s);
}

void api_import(Ctx *c)
{
    /* Not a tree: the state is stored as the exact bytes received, numbers of any length, \u0000
     * and all, as checkpoints are. */
    const char *b = (const char *)c->body;
    if (!b || !jspan_validate(b, c->body_len) || b[strspn(b, " \t\r\n")] != '{') {
        reply_error(c, 400, "Bad Request: the body must be a JSON object");
        return;
    }
    if (!state_doc_valid(b, c->body_len)) {
        reply_error(c, 400, "Bad Request: the body must be an untyped deployment with version 1..4");
        return;
    }
    Stack *s = stack_fetch_locked(c);
    if (!s)
        return;
    char *uid = NULL;
    if (s->active_update[0]) {
        db_rollback(c->db);
        reply_error(c, 409, "Conflict: Another update is currently in progress.");
        goto out;
    }
    /* Store exactly the bytes received (after inflation). */
    uid = record_operation(c, s, "import");
    if (!uid || !stack_add_version(c, s, uid, (const char *)c->body, c->body_len) || !finish_operation(c, s, uid) ||
        !audit_commit(c)) {
        db_rollback(c->db);
        reply_internal(c);
        goto out;
    }
    reply_json(c, 200, json_pack("{s:s}", "updateId", uid));
out:
    free(uid);
    stack_free(s);
}
