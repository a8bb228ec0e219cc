/* token.h - API tokens (minted, hashed, looked up, revoked) and update lease tokens. */
#ifndef PS_TOKEN_H
#define PS_TOKEN_H

#include <stdbool.h>

#include "apierror.h"
#include "db.h"

typedef enum { ROLE_READ, ROLE_WRITE, ROLE_ADMIN } Role;

/* "read", "write", "admin"; role_parse gives -1 for anything else. */
const char *role_name(Role r);
int role_parse(const char *s);

/* new: lowercase hex SHA-256 of a token (what the database keeps). */
char *token_hash(const char *token);
/* new: a fresh random token (256 bits, hex) after prefix, or NULL if randomness failed. */
char *token_new(const char *prefix);

/* Who an API token is. */
typedef struct TokenInfo {
    char *name;
    Role role;
    char *scope; /* glob over "org/project/stack"; NULL = everything */
} TokenInfo;
void token_info_free(TokenInfo *t);

/* Look an API token up (by its hash; last use recorded at most once a minute). 401 when unknown,
 * revoked or expired; 500 on a database error. */
bool token_lookup(Db *db, const char *token, TokenInfo *out, ApiError *e) DB_WUR;
/* Whether token is the current or previous lease token of update uid: 1 yes, 0 no, -1 no such
 * update, -2 database error. One prepared, indexed lookup: made before a request body is read. */
int token_update_matches(Db *db, const char *uid, const char *token);

/* A valid scope: a glob over ORG/PROJECT/STACK using * and ?, at most 300 characters. */
bool token_scope_valid(const char *scope);
/* A reserved name: operator, update-token, anonymous (those actors are not API tokens). */
bool token_name_reserved(const char *name);
/* Mint an API token (printed once by the caller: *token_out, new) with its audit row detail; the
 * insert, the audit row and the commit are one transaction. 409 when the name is taken. */
bool token_create(Db *db, const char *name, Role role, const char *scope, long long expires_secs, const char *actor,
                  char **token_out, ApiError *e) DB_WUR;
/* Revoke at once (every worker looks tokens up per request). 404 when there is no such token. */
bool token_revoke(Db *db, const char *name, const char *actor, ApiError *e) DB_WUR;
/* The tokens for listing: name, role, scope, created, expires, last used, state; NULL on error. */
PGresult *token_list(Db *db);

#endif
