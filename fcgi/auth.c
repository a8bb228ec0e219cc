/* auth.c - the Authorization header: "token <t>" for users, "update-token <t>" for leases. */
#include "auth.h"

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
        return true;
    }
    reply_error(c, 401, "Unauthorized: the access token is invalid");
    return false;
}

/* The update's id is the capture after org/project/stack; the token must be that update's. The
 * update row check (token hash, status, lease) happens in api-updates.c (update_auth), inside the
 * handler's transaction, so here we only check the header's form. */
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
    c->update_id = xstrdup(c->captures[4]);
    c->actor = xstrdup("update-token");
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
