/* auth.c - the Authorization header: "token <t>" for users, "update-token <t>" for leases. */
#include "auth.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "names.h"
#include "token.h"

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
    } else {
        TokenInfo t = {0};
        ApiError e;
        if (!token_lookup(c->db, token, &t, &e)) {
            reply_api_error(c, &e);
            return false;
        }
        c->actor = t.name;
        c->role = (int)t.role;
        c->scope = t.scope;
    }
    if ((int)c->route->role > c->role) {
        reply_error(c, 403, "Forbidden: token '%s' has role %s; this call needs %s", c->actor, role_name((Role)c->role),
                    role_name(c->route->role));
        return false;
    }
    if ((c->route->flags & ROUTE_MACHINE) && c->scope && strcmp(c->scope, "*") != 0) {
        reply_error(c, 403,
                    "Forbidden: token '%s' is scoped to stacks (%.100s); the machine API needs an unscoped token",
                    c->actor, c->scope);
        return false;
    }
    if ((c->route->flags & ROUTE_STACK) && !auth_scope_allows(c, c->captures[0], c->captures[1], c->captures[2])) {
        reply_error(c, 403, "Forbidden: stack '%.100s/%.100s/%.100s' is outside the scope of token '%s'",
                    c->captures[0], c->captures[1], c->captures[2], c->actor);
        return false;
    }
    return true;
}

/* The update's id is the capture after org/project/stack; the token must be that update's (its
 * current or previous lease token). This is checked here, before a byte of the body is read or
 * inflated, so a made-up token costs one indexed lookup; the full check (status, lease, stack)
 * happens in lib/update.c (update_auth / the batch statement), inside the handler's transaction. */
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
        reply_error(c, 404, MSG_UNKNOWN_UPDATE);
        return false;
    }
    int m = token_update_matches(c->db, c->captures[4], token);
    if (m == -2)
        reply_internal(c);
    else if (m == -1)
        reply_error(c, 404, "Not Found: update '%s' not found on this stack", c->captures[4]);
    else if (m == 0)
        reply_error(c, 403, MSG_BAD_UPDATE_TOKEN);
    if (m != 1)
        return false;
    c->update_id = xstrdup(c->captures[4]);
    c->update_token = token;
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
