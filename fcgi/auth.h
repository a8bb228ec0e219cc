/* auth.h - who is calling: the operator token, API tokens, or an update's lease token. */
#ifndef PS_AUTH_H
#define PS_AUTH_H

#include <stdbool.h>

#include "http.h"
#include "router.h"

/* Authenticate c per its route's auth kind. On failure replies (401/403) and returns false. */
bool auth_request(Ctx *c);
/* True if the caller's token scope covers org/project/stack. */
bool auth_scope_allows(const Ctx *c, const char *org, const char *project, const char *stack);

#endif
