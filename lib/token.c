/* token.c - API tokens and lease tokens: only their SHA-256 is ever stored. */
#include "token.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "crypto.h"

static const char *const role_names[] = {"read", "write", "admin"};

const char *role_name(Role r)
{
    return r <= ROLE_ADMIN ? role_names[r] : "?";
}

int role_parse(const char *s)
{
    for (int i = 0; i <= ROLE_ADMIN; i++)
        if (s && !strcmp(s, role_names[i]))
            return i;
    return -1;
}

char *token_hash(const char *token)
{
    char *out = xmalloc(65);
    sha256_hex(token, strlen(token), out);
    return out;
}

char *token_new(const char *prefix)
{
    unsigned char raw[32];
    char hex[65];
    if (!crypto_random(raw, sizeof(raw)))
        return NULL;
    hex_encode(raw, sizeof(raw), hex);
    return xasprintf("%s%s", prefix, hex);
}

void token_info_free(TokenInfo *t)
{
    free(t->name);
    free(t->scope);
    t->name = t->scope = NULL;
}

bool token_lookup(Db *db, const char *token, TokenInfo *out, ApiError *e)
{
    char *hash = token_hash(token);
    DbParam p[] = {DB_TEXT(hash)};
    /* last_used_at is written at most once a minute per token. */
    PGresult *r = db_exec(db,
                          "WITH t AS (SELECT id, name, role, scope, token_hash, coalesce(expires_at <= now(), false) "
                          "AS expired, revoked_at IS NOT NULL AS revoked, last_used_at FROM "
                          "extension_pulumi_state_tokens WHERE token_hash = $1), "
                          "u AS (UPDATE extension_pulumi_state_tokens k SET last_used_at = now() FROM t "
                          "WHERE k.id = t.id AND NOT t.expired AND NOT t.revoked AND (t.last_used_at IS NULL OR "
                          "t.last_used_at < now() - interval '1 minute') RETURNING k.id) "
                          "SELECT name, role, scope, token_hash, expired, revoked FROM t",
                          1, p, false);
    bool ok = false;
    if (!r)
        api_internal(e);
    else if (PQntuples(r) != 1 || !str_eq_const_time(hash, PQgetvalue(r, 0, 3)))
        api_fail(e, 401, "Unauthorized: the access token is invalid");
    else if (PQgetvalue(r, 0, 5)[0] == 't')
        api_fail(e, 401, "Unauthorized: the access token has been revoked");
    else if (PQgetvalue(r, 0, 4)[0] == 't')
        api_fail(e, 401, "Unauthorized: the access token has expired");
    else {
        int role = role_parse(PQgetvalue(r, 0, 1));
        out->name = xstrdup(PQgetvalue(r, 0, 0));
        out->role = role < 0 ? ROLE_READ : (Role)role;
        const char *scope = PQgetvalue(r, 0, 2);
        out->scope = strcmp(scope, "*") ? xstrdup(scope) : NULL;
        ok = true;
    }
    PQclear(r);
    free(hash);
    return ok;
}

int token_update_matches(Db *db, const char *uid, const char *token)
{
    char *hash = token_hash(token);
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(hash)};
    PGresult *r = db_exec_hot(db,
                              "SELECT coalesce($2 IN (token_hash, prev_token_hash), false) FROM "
                              "extension_pulumi_state_updates WHERE id = $1",
                              2, p, false);
    free(hash);
    int result = !r ? -2 : PQntuples(r) != 1 ? -1 : PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return result;
}

bool token_scope_valid(const char *s)
{
    if (!*s || strlen(s) > 300)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-_./*?", *s))
            return false;
    return true;
}

bool token_name_reserved(const char *name)
{
    return !strcmp(name, "operator") || !strcmp(name, "update-token") || !strcmp(name, "anonymous");
}

bool token_create(Db *db, const char *name, Role role, const char *scope, long long expires_secs, const char *actor,
                  char **token_out, ApiError *e)
{
    *token_out = NULL;
    char *token = token_new("pst_");
    if (!token)
        return api_internal(e);
    char *hash = token_hash(token), sbuf[24];
    snprintf(sbuf, sizeof(sbuf), "%lld", expires_secs);
    DbParam p[] = {DB_TEXT(name), DB_TEXT(hash), DB_TEXT(role_name(role)), DB_TEXT(scope), DB_TEXT(sbuf)};
    char *detail = xasprintf("name=%s role=%s scope=%s", name, role_name(role), scope);
    Audit a = {.enabled = true, .actor = actor, .action = "token.create", .client_addr = "local", .detail = detail};
    bool ok = false;
    if (!db_begin(db)) {
        api_internal(e);
        goto out;
    }
    DbOutcome o =
        db_run_outcome(db,
                       "INSERT INTO extension_pulumi_state_tokens (name, token_hash, role, scope, expires_at) "
                       "VALUES ($1, $2, $3, $4, CASE WHEN $5::bigint > 0 THEN now() + "
                       "make_interval(secs => $5::bigint) END)",
                       5, p);
    if (o == DB_DUPLICATE)
        api_fail(e, 409, "Conflict: a token named '%s' exists already", name);
    else if (o != DB_OK || !audit_commit(db, &a))
        api_internal(e);
    else
        ok = true;
out:
    db_rollback(db);
    if (ok)
        *token_out = token;
    else
        free(token);
    free(hash);
    free(detail);
    return ok;
}

bool token_revoke(Db *db, const char *name, const char *actor, ApiError *e)
{
    DbParam p[] = {DB_TEXT(name)};
    char *detail = xasprintf("name=%s", name);
    Audit a = {.enabled = true, .actor = actor, .action = "token.revoke", .client_addr = "local", .detail = detail};
    bool ok = false;
    PGresult *r = NULL;
    if (!db_begin(db) || !(r = db_exec(db,
                                       "UPDATE extension_pulumi_state_tokens SET revoked_at = coalesce(revoked_at, "
                                       "now()) WHERE name = $1 RETURNING 1",
                                       1, p, false)))
        api_internal(e);
    else if (PQntuples(r) == 0)
        api_fail(e, 404, "Not Found: no token named '%s'", name);
    else if (!audit_commit(db, &a))
        api_internal(e);
    else
        ok = true;
    PQclear(r);
    db_rollback(db);
    free(detail);
    return ok;
}

PGresult *token_list(Db *db)
{
    return db_exec(db,
                   "SELECT name, role, scope, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), "
                   "coalesce(to_char(expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), '-'), "
                   "coalesce(to_char(last_used_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), '-'), "
                   "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at <= now() THEN "
                   "'expired' ELSE 'active' END FROM extension_pulumi_state_tokens ORDER BY name",
                   0, NULL, false);
}
