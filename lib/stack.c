/* stack.c - stacks and their stored versions, independent of who asks (worker, agent, admin). */
#include "autoconfig.h"

#include "stack.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "gzip.h"
#include "jspan.h"
#include "names.h"
#include "update.h"
#include "urn.h"

#define STACK_COLUMNS                                                                                                  \
    "s.id, s.org, s.project, s.name, s.tags::text, s.version, s.resource_count, s.secrets_key, "                       \
    "coalesce(s.active_update::text, ''), coalesce(s.last_update::text, ''), "                                         \
    "coalesce(u.lease_expires_at < now(), false), coalesce(u.kind, ''), "                                              \
    "coalesce(extract(epoch from u.started_at)::bigint, 0) "                                                           \
    "FROM extension_pulumi_state_stacks s LEFT JOIN extension_pulumi_state_updates u ON u.id = s.active_update "

static Stack *stack_from_row(PGresult *r, bool *expired)
{
    Stack *s = xcalloc(1, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", PQgetvalue(r, 0, 0));
    s->org = xstrdup(PQgetvalue(r, 0, 1));
    s->project = xstrdup(PQgetvalue(r, 0, 2));
    s->name = xstrdup(PQgetvalue(r, 0, 3));
    s->tags = xstrdup(PQgetvalue(r, 0, 4));
    s->version = atoi(PQgetvalue(r, 0, 5));
    s->resource_count = atoi(PQgetvalue(r, 0, 6));
    s->secrets_key = xstrdup(PQgetvalue(r, 0, 7));
    snprintf(s->active_update, sizeof(s->active_update), "%s", PQgetvalue(r, 0, 8));
    snprintf(s->last_update, sizeof(s->last_update), "%s", PQgetvalue(r, 0, 9));
    *expired = PQgetvalue(r, 0, 10)[0] == 't';
    s->active_kind = xstrdup(PQgetvalue(r, 0, 11));
    s->active_started = atoll(PQgetvalue(r, 0, 12));
    return s;
}

void stack_free(Stack *s)
{
    if (!s)
        return;
    free(s->org);
    free(s->project);
    free(s->name);
    free(s->tags);
    free(s->secrets_key);
    free(s->active_kind);
    free(s);
}

static Stack *load(Db *db, const char *sql, int n, const DbParam *p, bool *expired, bool *dberr)
{
    PGresult *r = db_exec(db, sql, n, p, false);
    *dberr = r == NULL;
    if (!r)
        return NULL;
    Stack *s = PQntuples(r) == 1 ? stack_from_row(r, expired) : NULL;
    PQclear(r);
    return s;
}

Stack *stack_load(Db *db, const char *org, const char *project, const char *name)
{
    DbParam p[] = {DB_TEXT(org), DB_TEXT(project), DB_TEXT(name)};
    bool expired, dberr;
    return load(db, "SELECT " STACK_COLUMNS "WHERE s.org = $1 AND s.project = $2 AND s.name = $3", 3, p, &expired,
                &dberr);
}

bool stack_ref_valid(const StackRef *ref, ApiError *e)
{
    if (!name_valid_org(ref->org))
        return api_fail(e, 400, "Bad Request: invalid organization name");
    if (!name_valid_project(ref->project))
        return api_fail(e, 400, "Bad Request: invalid project name");
    if (!name_valid_stack(ref->name))
        return api_fail(e, 400, "Bad Request: invalid stack name");
    return true;
}

static bool not_found(const StackRef *ref, ApiError *e)
{
    return api_fail(e, 404, "Not Found: stack '%s/%s/%s' not found", ref->org, ref->project, ref->name);
}

Stack *stack_get_locked(Db *db, const StackRef *ref, ApiError *e)
{
    if (!stack_ref_valid(ref, e))
        return NULL;
    DbParam p[] = {DB_TEXT(ref->org), DB_TEXT(ref->project), DB_TEXT(ref->name)};
    PGresult *r = db_exec(
        db, "SELECT id FROM extension_pulumi_state_stacks WHERE org = $1 AND project = $2 AND name = $3", 3, p, false);
    if (!r) {
        api_internal(e);
        return NULL;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        not_found(ref, e);
        return NULL;
    }
    char *id = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    char *key = xasprintf("stack:%s", id);
    Stack *s = NULL;
    bool expired = false, dberr = true;
    if (db_begin(db) && db_lock(db, key)) {
        /* Still under the names asked for: a rename or delete may have committed while we waited. */
        DbParam q[] = {DB_TEXT(id), DB_TEXT(ref->org), DB_TEXT(ref->project), DB_TEXT(ref->name)};
        s = load(db, "SELECT " STACK_COLUMNS "WHERE s.id = $1 AND s.org = $2 AND s.project = $3 AND s.name = $4", 4, q,
                 &expired, &dberr);
    }
    free(key);
    free(id);
    if (dberr)
        api_internal(e);
    else if (!s)
        not_found(ref, e);
    else if (expired && s->active_update[0] && !update_reap(db, s))
        api_internal(e);
    else
        return s;
    db_rollback(db);
    stack_free(s);
    return NULL;
}

Stack *stack_get(Db *db, const StackRef *ref, ApiError *e)
{
    if (!stack_ref_valid(ref, e))
        return NULL;
    DbParam p[] = {DB_TEXT(ref->org), DB_TEXT(ref->project), DB_TEXT(ref->name)};
    bool expired = false, dberr = false;
    Stack *s =
        load(db, "SELECT " STACK_COLUMNS "WHERE s.org = $1 AND s.project = $2 AND s.name = $3", 3, p, &expired, &dberr);
    if (dberr) {
        api_internal(e);
        return NULL;
    }
    if (!s) {
        not_found(ref, e);
        return NULL;
    }
    if (!expired)
        return s;
    stack_free(s);
    s = stack_get_locked(db, ref, e);
    if (s && !db_commit(db)) {
        db_rollback(db);
        stack_free(s);
        api_internal(e);
        return NULL;
    }
    return s;
}

char *stack_empty_state(size_t *len)
{
    static const char empty[] = "{\"version\":3,\"deployment\":{\"manifest\":{\"time\":\"0001-01-01T00:00:00Z\","
                                "\"magic\":\"\",\"version\":\"\"},\"metadata\":{}}}";
    *len = sizeof(empty) - 1;
    return xstrdup(empty);
}

/* The stored gzip bytes of version v (new result with one row, one binary column), or NULL. */
static PGresult *version_data(Db *db, const Stack *s, int version, ApiError *e)
{
    char vbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", version);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(vbuf)};
    PGresult *r = db_exec(db, "SELECT data FROM extension_pulumi_state_versions WHERE stack_id = $1 AND version = $2",
                          2, p, true);
    if (!r) {
        api_internal(e);
        return NULL;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        api_fail(e, 404, "Not Found: version %d of stack '%s' not found", version, s->name);
        return NULL;
    }
    return r;
}

bool stack_state(Db *db, const Stack *s, int version, char **doc, size_t *len, ApiError *e)
{
    if (version == 0) {
        *doc = stack_empty_state(len);
        return true;
    }
    PGresult *r = version_data(db, s, version, e);
    if (!r)
        return false;
    unsigned char *out = NULL;
    GzResult g = gz_inflate(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), (size_t)1 << 34, &out, len);
    PQclear(r);
    if (g != GZ_OK) {
        log_error("stored version %d of stack %s does not inflate", version, s->id);
        return api_internal(e);
    }
    *doc = (char *)out;
    return true;
}

bool state_doc_valid(const char *doc, size_t len)
{
    size_t vs, ve, ds, de;
    long long v;
    if (!jspan_member(doc, len, "version", &vs, &ve) || !jspan_int(doc + vs, ve - vs, &v) || v < 1 || v > 4)
        return false;
    if (!jspan_member(doc, len, "deployment", &ds, &de))
        return false;
    return doc[ds] == '{' || jspan_is_null(doc + ds, de - ds);
}

long state_resource_count(const char *doc, size_t len)
{
    size_t ds, de, rs, re;
    if (!jspan_member(doc, len, "deployment", &ds, &de))
        return -1;
    if (jspan_is_null(doc + ds, de - ds))
        return 0;
    if (!jspan_member(doc + ds, de - ds, "resources", &rs, &re))
        return 0;
    if (jspan_is_null(doc + ds + rs, re - rs))
        return 0;
    return jspan_array_count(doc + ds + rs, re - rs);
}

bool stack_add_version(Db *db, Stack *s, const char *update_id, const char *doc, size_t len)
{
    unsigned char *gz = NULL;
    size_t gzlen = 0;
    char sha[65], vbuf[16], sizebuf[24], countbuf[24];
    long count = state_resource_count(doc, len);
    if (count < 0)
        count = 0;
    if (!gz_deflate(doc, len, 1, &gz, &gzlen)) /* level 1: about the ratio of 3 at 60% of the time */
        return false;
    sha256_hex(doc, len, sha);
    snprintf(vbuf, sizeof(vbuf), "%d", s->version + 1);
    snprintf(sizebuf, sizeof(sizebuf), "%zu", len);
    snprintf(countbuf, sizeof(countbuf), "%ld", count);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(vbuf),    DB_TEXT(update_id), DB_BIN(gz, gzlen),
                   DB_TEXT(sha),   DB_TEXT(sizebuf), DB_TEXT(countbuf)};
    bool ok = db_run(db,
                     "INSERT INTO extension_pulumi_state_versions (stack_id, version, update_id, data, sha256, size, "
                     "resource_count) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                     7, p) &&
              db_run(db,
                     "UPDATE extension_pulumi_state_stacks SET version = $2, resource_count = $3, updated_at = now() "
                     "WHERE id = $1",
                     3, (DbParam[]){DB_TEXT(s->id), DB_TEXT(vbuf), DB_TEXT(countbuf)});
    free(gz);
    if (ok) {
        s->version++;
        s->resource_count = (int)count;
    }
    return ok;
}

bool stack_data_key(const Stack *s, const unsigned char *master, const unsigned char *old_master,
                    unsigned char key[CRYPTO_KEY_LEN], ApiError *e)
{
    if (crypto_unwrap_key(master, s->id, s->secrets_key, key) ||
        (old_master && crypto_unwrap_key(old_master, s->id, s->secrets_key, key)))
        return true;
    log_error("the data key of stack %s does not unwrap under the master key", s->id);
    return api_internal(e);
}

bool stack_create(Db *db, const unsigned char *master, const StackRef *ref, const char *tags, const char *state,
                  size_t state_len, Audit *a, ApiError *e)
{
    unsigned char datakey[CRYPTO_KEY_LEN];
    char id[37];
    if (!crypto_random(datakey, sizeof(datakey)))
        return api_internal(e);
    uuid_new(id);
    char *wrapped = crypto_wrap_key(master, id, datakey);
    OPENSSL_cleanse(datakey, sizeof(datakey));
    DbParam p[] = {DB_TEXT(id),        DB_TEXT(ref->org), DB_TEXT(ref->project),
                   DB_TEXT(ref->name), DB_TEXT(tags),     DB_TEXT(wrapped)};
    bool ok = false;
    Stack *s = NULL;
    DbOutcome o = DB_ERROR;
    if (wrapped && db_begin(db))
        o = db_run_outcome(db,
                           "INSERT INTO extension_pulumi_state_stacks (id, org, project, name, tags, secrets_key) "
                           "VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
                           6, p);
    if (o == DB_DUPLICATE)
        api_fail(e, 409, "Conflict: stack '%s/%s/%s' already exists", ref->org, ref->project, ref->name);
    else if (o != DB_OK)
        api_internal(e);
    else if (state && (!(s = stack_load(db, ref->org, ref->project, ref->name)) ||
                       !stack_add_version(db, s, NULL, state, state_len)))
        api_internal(e);
    else if (!audit_commit(db, a))
        api_internal(e);
    else
        ok = true;
    db_rollback(db);
    stack_free(s);
    free(wrapped);
    return ok;
}

bool stack_delete(Db *db, const StackRef *ref, bool force, Audit *a, ApiError *e)
{
    Stack *s = stack_get_locked(db, ref, e);
    if (!s)
        return false;
    bool ok = false;
    DbParam p[] = {DB_TEXT(s->id)};
    if (s->active_update[0] && !force)
        api_fail(e, 409, MSG_UPDATE_IN_PROGRESS);
    else if (s->resource_count > 0 && !force)
        api_fail(e, 400, MSG_STACK_HAS_RESOURCES);
    /* Journal and event rows carry no foreign key (0004): they go with their updates here. */
    else if (!db_run(db,
                     "DELETE FROM extension_pulumi_state_journal WHERE update_id IN "
                     "(SELECT id FROM extension_pulumi_state_updates WHERE stack_id = $1)",
                     1, p) ||
             !db_run(db,
                     "DELETE FROM extension_pulumi_state_events WHERE update_id IN "
                     "(SELECT id FROM extension_pulumi_state_updates WHERE stack_id = $1)",
                     1, p) ||
             !db_run(db, "DELETE FROM extension_pulumi_state_stacks WHERE id = $1", 1, p) || !audit_commit(db, a))
        api_internal(e);
    else
        ok = true;
    db_rollback(db);
    stack_free(s);
    return ok;
}

bool stack_set_tags(Db *db, const StackRef *ref, const char *tags, Audit *a, ApiError *e)
{
    Stack *s = stack_get_locked(db, ref, e);
    if (!s)
        return false;
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(tags)};
    bool ok = db_run(db, "UPDATE extension_pulumi_state_stacks SET tags = $2::jsonb, updated_at = now() WHERE id = $1",
                     2, p) &&
              audit_commit(db, a);
    if (!ok)
        api_internal(e);
    db_rollback(db);
    stack_free(s);
    return ok;
}

/* Record a finished operation that is not a CLI update (import, rename) in the history. */
static bool record_operation(Db *db, Stack *s, const char *kind, const char *doc, size_t len, char uid[37])
{
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(kind)};
    PGresult *r =
        db_exec(db,
                "INSERT INTO extension_pulumi_state_updates (stack_id, kind, status, started_at, base_version) "
                "SELECT $1, $2, 'running', now(), version FROM extension_pulumi_state_stacks WHERE id = $1 "
                "RETURNING id",
                2, p, false);
    if (!r)
        return false;
    snprintf(uid, 37, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!stack_add_version(db, s, uid, doc, len))
        return false;
    char vbuf[16], cbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", s->version);
    snprintf(cbuf, sizeof(cbuf), "%d", s->resource_count);
    DbParam q[] = {DB_TEXT(uid), DB_TEXT(vbuf), DB_TEXT(cbuf)};
    DbParam f[] = {DB_TEXT(uid), DB_TEXT(s->id)};
    return db_run(db,
                  "UPDATE extension_pulumi_state_updates SET status = 'succeeded', ended_at = now(), "
                  "result_version = $2, resource_count = $3 WHERE id = $1",
                  3, q) &&
           db_run(db, "UPDATE extension_pulumi_state_stacks SET last_update = $1 WHERE id = $2", 2, f);
}

bool stack_rename(Db *db, const StackRef *ref, const char *new_project, const char *new_name, Audit *a, ApiError *e)
{
    Stack *s = stack_get_locked(db, ref, e);
    if (!s)
        return false;
    if (!new_project || !*new_project)
        new_project = s->project;
    char *doc = NULL, uid[37];
    size_t len = 0;
    Buf renamed;
    buf_init(&renamed);
    bool ok = false;
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(new_project), DB_TEXT(new_name)};
    if (s->active_update[0]) {
        api_fail(e, 409, MSG_UPDATE_IN_PROGRESS);
        goto out;
    }
    if (!strcmp(new_name, s->name) && !strcmp(new_project, s->project)) {
        ok = true;
        goto out;
    }
    DbOutcome o = db_run_outcome(
        db, "UPDATE extension_pulumi_state_stacks SET project = $2, name = $3, updated_at = now() WHERE id = $1", 3, p);
    if (o != DB_OK) {
        if (o == DB_DUPLICATE)
            api_fail(e, 409, "Conflict: stack '%s/%s/%s' already exists", s->org, new_project, new_name);
        else
            api_internal(e);
        goto out;
    }
    if (s->version > 0) {
        /* Rewrite the URNs and the service secrets state into a new version. */
        if (!stack_state(db, s, s->version, &doc, &len, e))
            goto out;
        UrnResult ur = urn_rename_state(doc, len, s->name, s->project, s->org, new_name, new_project, &renamed);
        if (ur != URN_OK) {
            api_fail(e, 409, "Conflict: the stack's state holds a malformed %s and cannot be renamed",
                     ur == URN_BAD_PROVIDER ? "provider reference" : "document");
            goto out;
        }
        if (!record_operation(db, s, "rename", renamed.data, renamed.len, uid)) {
            api_internal(e);
            goto out;
        }
    }
    if (!audit_commit(db, a)) {
        api_internal(e);
        goto out;
    }
    ok = true;
out:
    db_rollback(db);
    free(doc);
    buf_free(&renamed);
    stack_free(s);
    return ok;
}

bool stack_import(Db *db, const StackRef *ref, const char *doc, size_t len, Audit *a, char uid[37], ApiError *e)
{
    Stack *s = stack_get_locked(db, ref, e);
    if (!s)
        return false;
    bool ok = false;
    if (s->active_update[0])
        api_fail(e, 409, MSG_UPDATE_IN_PROGRESS);
    else if (!record_operation(db, s, "import", doc, len, uid) || !audit_commit(db, a))
        api_internal(e);
    else
        ok = true;
    db_rollback(db);
    stack_free(s);
    return ok;
}

/* The freshest state of an update in progress: its last checkpoint, else its journal replayed so
 * far. False when it has neither (the stored version is then the freshest). */
static bool in_progress_state(Db *db, const Stack *s, Export *out)
{
    int m = checkpoint_materialize(db, s->active_update, false, &out->data, &out->len);
    if (m != 0)
        return m > 0;
    DbParam p[] = {DB_TEXT(s->active_update)};
    PGresult *r = db_exec(db,
                          "SELECT journal_version, coalesce(base_version, 0) FROM extension_pulumi_state_updates "
                          "WHERE id = $1",
                          1, p, false);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return false;
    }
    bool journaled = atoi(PQgetvalue(r, 0, 0)) > 0;
    int base = atoi(PQgetvalue(r, 0, 1));
    PQclear(r);
    return journaled &&
           journal_materialize(db, s, s->active_update, base, true, &out->data, &out->len, NULL, 0) == MAT_OK &&
           out->data;
}

bool stack_export(Db *db, const StackRef *ref, int version, bool accepts_gzip, Export *out, ApiError *e)
{
    memset(out, 0, sizeof(*out));
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    bool ok = true;
    if (version == 0 && s->active_update[0] && in_progress_state(db, s, out))
        goto out;
    if (version == 0)
        version = s->version;
    if (version == 0 || !accepts_gzip) {
        ok = stack_state(db, s, version, &out->data, &out->len, e);
        goto out;
    }
    PGresult *r = version_data(db, s, version, e);
    ok = r != NULL;
    if (ok) {
        out->len = (size_t)PQgetlength(r, 0, 0);
        out->data = xmalloc(out->len + 1);
        memcpy(out->data, PQgetvalue(r, 0, 0), out->len);
        out->gzip = true;
    }
    PQclear(r);
out:
    stack_free(s);
    return ok;
}
