/* stack.h - loading stacks (with lease reaping), stored versions, and finishing updates. */
#ifndef PS_STACK_H
#define PS_STACK_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "jspan.h"

typedef struct Stack {
    char id[37];
    char *org;
    char *project;
    char *name;
    char *tags;                 /* JSON object text */
    int version;
    int resource_count;
    char *secrets_key;          /* wrapped data key */
    char active_update[37];     /* "" when free */
    char last_update[37];
    char *active_kind;          /* kind of the active update, or "" */
    long long active_started;   /* unix seconds */
} Stack;

/* Validate captures 0..2 and load the stack, reaping an expired lease first. Replies (400/404)
 * and returns NULL on failure. No transaction is left open. */
Stack *stack_fetch(Ctx *c);
/* Same, but opens a transaction and holds the stack's advisory lock; the caller commits or
 * rolls back. An expired lease is reaped inside that transaction. */
Stack *stack_fetch_locked(Ctx *c);
/* Load by explicit names (already validated) without reaping; NULL if absent (no reply). */
Stack *stack_load(Ctx *c, const char *org, const char *project, const char *name);
void stack_free(Stack *s);

/* The uncompressed state document of version v ("{"version":..,"deployment":..}"); v == 0 gives
 * the empty document. *doc is new. Replies 404 (absent version) or 500 and returns false. */
bool stack_state(Ctx *c, const Stack *s, int version, char **doc, size_t *len);
/* The empty state of a stack never updated. new. */
char *stack_empty_state(size_t *len);
/* Store doc as version s->version+1 (transaction open, lock held); updates s. */
bool stack_add_version(Ctx *c, Stack *s, const char *update_id, const char *doc, size_t len);
/* A state document's shape (already validated JSON): an object with version 1..4 and a
 * deployment object or null. */
bool state_doc_valid(const char *doc, size_t len);
/* Count deployment.resources in a state document (0 when absent, -1 when malformed). */
long state_resource_count(const char *doc, size_t len);

/* Rebuild the state of a journaled update from its base version and its entries (new *doc, NULL
 * when the update has no journal entries), stamped with the version of the CLI that ran it. Strict
 * (lenient false): any entry that cannot be read or applied makes it MAT_INVALID, why (may be NULL
 * with whylen 0) saying which. Lenient: such entries are skipped, why names the first. */
typedef enum { MAT_OK, MAT_INVALID, MAT_DB_ERROR } MatResult;
MatResult journal_materialize(Ctx *c, const Stack *s, const char *update_id, int base_version, bool lenient,
                              char **doc, size_t *len, char *why, size_t whylen);

/* Finish update_id of s with status ("succeeded", "failed", "cancelled"), inside the caller's
 * transaction with the lock held: materialise its state into a new version (non-dry-run),
 * free the stack, record the end. *prior receives the status it had ("running", or a terminal
 * one, in which case nothing changed). Returns false on a database error (logged). When a success's
 * journal cannot be replayed whole, the update ends failed instead with what it recorded, and why
 * (whylen > 0) says what was wrong; it is "" otherwise. */
bool update_finish(Ctx *c, Stack *s, const char *update_id, const char *status, char prior[16], char *why,
                   size_t whylen);

/* Map stored statuses onto the wire words of UpdateResults and history. */
const char *status_wire(const char *status);
const char *status_result(const char *status);

#endif

/* What an update-token call learns about its update. */
typedef struct UpdateInfo {
    char status[16];
    bool dry_run;
    int journal_version;
    long long last_seq;
} UpdateInfo;

/* For AUTH_UPDATE routes: check the lease token against update c->update_id of the stack in
 * the path. With lock, opens a transaction holding the stack's lock (the caller commits) and
 * returns the stack in *out; an expired lease is reaped first. Replies 401/403/404 and returns
 * false on failure (nothing left open). */
bool update_auth(Ctx *c, bool lock, Stack **out, UpdateInfo *info);

/* The hot path of journal and event batches: store the elements of batch (text as bytea, ids as
 * sequence numbers; a retried element is kept as first stored) in one statement that also checks
 * the update: the lease token, running, lease not expired, on the stack in the path, and for the
 * journal a real update holding the stack with journaling on. The statement holds the update's
 * row FOR SHARE, so a complete or cancel (which takes it FOR UPDATE first) either sees the batch
 * or makes it fail the check. Returns 1 when stored, 0 when a check failed (nothing stored: the
 * caller takes the slow path for the exact answer), -1 on a database error. */
int update_store_batch(Ctx *c, bool journal, const JspanIds *batch);
