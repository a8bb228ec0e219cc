/* auth.c - the Authorization header: "token <t>" for users, "update-token <t>" for leases. */
#include "auth.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "names.h"

char *auth_token_hash(const char *token)
{
    char *out = xmalloc(65);
    sha256_hex(token, strlen(token), out);
    return out;
}

char *auth_token_new(const char *prefix)
{
    unsigned char raw[32];
    char hex[65];
    if (!crypto_random(raw, sizeof(raw)))
        return NULL;
    hex_encode(raw, sizeof(raw), hex);
    return xasprintf("%s%s", prefix, hex);
}

/* Split "scheme value" into a borrowed value for the expected scheme, or NULL. */
static const char *auth_value(const char *header, const char *scheme)
{
    if (!header)
        return NULL;
    size_t n = strlen(scheme);
    if (strncasecmp(header, scheme, n) != 0 || header[n] != ' ')
        return NULL;
    const char *v = header + n + 1;
    while (*v == ' ')
        v++;
    return *v ? v : NULL;
}

static const char *role_names[] = {"read", "write", "admin"};

/* Look an API token up by its hash: name, role, scope; refused when expired or revoked. */
static bool auth_api_token(Ctx *c, const char *token)
{
    char *hash = auth_token_hash(token);
    DbParam p[] = {DB_TEXT(hash)};
    bool ok = false;
    if (!db_ensure(c->db)) {
        reply_error(c, 503, "Service Unavailable: the database is unreachable (request id %s)", c->request_id);
        goto out;
    }
    /* last_used_at is written at most once a minute per token. */
    PGresult *r = db_exec(c->db,
                          "WITH t AS (SELECT id, name, role, scope, token_hash, coalesce(expires_at <= now(), false) "
                          "AS expired, revoked_at IS NOT NULL AS revoked, last_used_at FROM "
                          "extension_pulumi_state_tokens WHERE token_hash = $1), "
                          "u AS (UPDATE extension_pulumi_state_tokens k SET last_used_at = now() FROM t "
                          "WHERE k.id = t.id AND NOT t.expired AND NOT t.revoked AND (t.last_used_at IS NULL OR "
                          "t.last_used_at < now() - interval '1 minute') RETURNING k.id) "
                          "SELECT name, role, scope, token_hash, expired, revoked FROM t",
                          1, p, false);
    if (!r) {
        reply_internal(c);
        goto out;
    }
    if (PQntuples(r) != 1 || !str_eq_const_time(hash, PQgetvalue(r, 0, 3))) {
        reply_error(c, 401, "Unauthorized: the access token is invalid");
    } else if (PQgetvalue(r, 0, 5)[0] == 't') {
        reply_error(c, 401, "Unauthorized: the access token has been revoked");
    } else if (PQgetvalue(r, 0, 4)[0] == 't') {
        reply_error(c, 401, "Unauthorized: the access token has expired");
    } else {
        c->actor = xstrdup(PQgetvalue(r, 0, 0));
        const char *role = PQgetvalue(r, 0, 1);
        c->role = !strcmp(role, "admin") ? ROLE_ADMIN : !strcmp(role, "write") ? ROLE_WRITE : ROLE_READ;
        const char *scope = PQgetvalue(r, 0, 2);
        c->scope = strcmp(scope, "*") ? xstrdup(scope) : NULL;
        ok = true;
    }
    PQclear(r);
out:
    free(hash);
    return ok;
}

bool auth_scope_allows(const Ctx *c, const char *org, const char *project, const char *stack)
{
    if (!c->scope)
        return true;
    char *full = xasprintf("%s/%s/%s", org, project, stack);
    bool ok = fnmatch(c->scope, full, 0) == 0;
    free(full);
    return ok;
}

static bool auth_user(Ctx *c)
{
    const char *token = auth_value(c->auth, "token");
    if (!token) {
        if (auth_value(c->auth, "update-token"))
            reply_error(c, 403, "Forbidden: an update token cannot be used for this call");
        else
            reply_error(c, 401, "Unauthorized: no access token was provided");
        return false;
    }
    if (*c->cfg->operator_token && str_eq_const_time(token, c->cfg->operator_token)) {
        c->actor = xstrdup("operator");
        c->role = ROLE_ADMIN;
    } else if (!auth_api_token(c, token)) {
        return false;
    }
    if ((int)c->route->role > c->role) {
        reply_error(c, 403, "Forbidden: token '%s' has role %s; this call needs %s", c->actor, role_names[c->role],
                    role_names[c->route->role]);
        return false;
    }
    if ((c->route->flags & ROUTE_STACK) &&
        !auth_scope_allows(c, c->captures[0], c->captures[1], c->captures[2])) {
        reply_error(c, 403, "Forbidden: stack '%.100s/%.100s/%.100s' is outside the scope of token '%s'",
                    c->captures[0], c->captures[1], c->captures[2], c->actor);
        return false;
    }
    return true;
}

/* The update's id is the capture after org/project/stack; the token must be that update's (its
 * current or previous lease token). This is checked here, before a byte of the body is read or
 * inflated, so a made-up token costs one indexed lookup; the full check (status, lease, stack)
 * happens in api-updates.c (update_auth / the batch statement), inside the handler's transaction. */
static bool auth_update(Ctx *c)
{
    const char *token = auth_value(c->auth, "update-token");
    if (!token) {
        if (auth_value(c->auth, "token"))
            reply_error(c, 403, "Forbidden: this call requires the update's lease token");
        else
            reply_error(c, 401, "Unauthorized: no update token was provided");
        return false;
    }
    if (c->ncaptures < 5 || !name_valid_uuid(c->captures[4])) {
        reply_error(c, 404, "Not Found: unknown update");
        return false;
    }
    char *hash = auth_token_hash(token);
    DbParam p[] = {DB_TEXT(c->captures[4]), DB_TEXT(hash)};
    PGresult *r = db_exec_hot(c->db,
                              "SELECT coalesce($2 IN (token_hash, prev_token_hash), false) FROM "
                              "extension_pulumi_state_updates WHERE id = $1",
                              2, p, false);
    free(hash);
    bool ok = false;
    if (!r)
        reply_internal(c);
    else if (PQntuples(r) != 1)
        reply_error(c, 404, "Not Found: update '%s' not found on this stack", c->captures[4]);
    else if (PQgetvalue(r, 0, 0)[0] != 't')
        reply_error(c, 403, "Forbidden: the update token is not valid for this update");
    else
        ok = true;
    PQclear(r);
    if (!ok)
        return false;
    c->update_id = xstrdup(c->captures[4]);
    c->actor = xstrdup("update-token");
    c->role = ROLE_WRITE;
    return true;
}

bool auth_request(Ctx *c)
{
    switch (c->route->auth) {
    case AUTH_NONE:
        return true;
    case AUTH_USER:
        return auth_user(c);
    case AUTH_UPDATE:
        return auth_update(c);
    }
    return false;
}
