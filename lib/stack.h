/* stack.h - stacks and their stored versions: load (reaping an expired lease), lock, create,
 * delete, tags, rename, import, export. Every function takes a Db and reports by value. */
#ifndef PS_STACK_H
#define PS_STACK_H

#include <stdbool.h>
#include <stddef.h>

#include "apierror.h"
#include "audit.h"
#include "crypto.h"
#include "db.h"

typedef struct Stack {
    char id[37];
    char *org;
    char *project;
    char *name;
    char *tags; /* JSON object text */
    int version;
    int resource_count;
    char *secrets_key;      /* wrapped data key */
    char active_update[37]; /* "" when free */
    char last_update[37];
    char *active_kind;        /* kind of the active update, or "" */
    long long active_started; /* unix seconds */
} Stack;

/* A stack as a request names it (borrowed strings, not yet validated). */
typedef struct StackRef {
    const char *org, *project, *name;
} StackRef;

/* 400 unless the three names are valid. */
bool stack_ref_valid(const StackRef *ref, ApiError *e);
/* Load the stack ref names (validated first), reaping an expired lease (in a transaction of its
 * own). NULL with e filled (400, 404, 500) on failure. No transaction is left open. */
Stack *stack_get(Db *db, const StackRef *ref, ApiError *e);
/* Same, but opens a transaction holding the stack's advisory lock (an expired lease is reaped
 * inside it); the caller commits (audit_commit) or rolls back. Nothing is left open on failure. */
Stack *stack_get_locked(Db *db, const StackRef *ref, ApiError *e);
/* Load by names already validated, without reaping; NULL if absent or on error. */
Stack *stack_load(Db *db, const char *org, const char *project, const char *name);
void stack_free(Stack *s);

/* The uncompressed state document of version v ("{"version":..,"deployment":..}"); v == 0 gives
 * the empty document. *doc is new. 404 (absent version) or 500. */
bool stack_state(Db *db, const Stack *s, int version, char **doc, size_t *len, ApiError *e);
/* The empty state of a stack never updated. new. */
char *stack_empty_state(size_t *len);
/* Store doc as version s->version+1 (transaction open, lock held); updates s. */
bool stack_add_version(Db *db, Stack *s, const char *update_id, const char *doc, size_t len) DB_WUR;
/* A state document's shape (already validated JSON): an object with version 1..4 and a
 * deployment object or null. */
bool state_doc_valid(const char *doc, size_t len);
/* Count deployment.resources in a state document (0 when absent, -1 when malformed). */
long state_resource_count(const char *doc, size_t len);

/* The stack's data key, unwrapped under the master key (or, during a rotation, the old one). */
bool stack_data_key(const Stack *s, const unsigned char *master, const unsigned char *old_master,
                    unsigned char key[CRYPTO_KEY_LEN], ApiError *e);

/* Create org/project/name (names validated by the caller) with tags (JSON object text) and, when
 * state is non-NULL, that state as version 1 (its exact bytes). 409 when it exists. */
bool stack_create(Db *db, const unsigned char *master, const StackRef *ref, const char *tags, const char *state,
                  size_t state_len, Audit *a, ApiError *e);
/* Delete: 409 (MSG_UPDATE_IN_PROGRESS) while an update holds it, 400 (MSG_STACK_HAS_RESOURCES)
 * while it has resources, unless forced. */
bool stack_delete(Db *db, const StackRef *ref, bool force, Audit *a, ApiError *e);
/* Replace the tags (a validated JSON object text). */
bool stack_set_tags(Db *db, const StackRef *ref, const char *tags, Audit *a, ApiError *e);
/* Rename to new_project ("" or NULL keeps it) / new_name, rewriting the stored state's URNs and
 * the service secrets state into a new version. 409 when taken or busy. */
bool stack_rename(Db *db, const StackRef *ref, const char *new_project, const char *new_name, Audit *a, ApiError *e);
/* Store doc (validated JSON; its exact bytes) as the next version, recorded in the history as an
 * import; uid receives the operation's id. */
bool stack_import(Db *db, const StackRef *ref, const char *doc, size_t len, Audit *a, char uid[37], ApiError *e);

/* What an export serves: the bytes, gzip or not. */
typedef struct Export {
    char *data;
    size_t len;
    bool gzip;
} Export;
/* Version `version` of the stack (0: the current one, or during an update the freshest state: the
 * last checkpoint, else its journal replayed so far). Stored gzip bytes are served as they are
 * when the client takes gzip. */
bool stack_export(Db *db, const StackRef *ref, int version, bool accepts_gzip, Export *out, ApiError *e);

#endif
