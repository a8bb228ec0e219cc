/* update.h - the update lifecycle: create, start (lease), renew, complete, cancel, the lease
 * reaper, and the one place an update's state becomes a stack version. */
#ifndef PS_UPDATE_H
#define PS_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "apierror.h"
#include "audit.h"
#include "db.h"
#include "jspan.h"
#include "stack.h"

/* The statuses as stored (extension_pulumi_state_updates.status). UPDATE_MISSING: no such row. */
typedef enum {
    UPDATE_MISSING,
    UPDATE_NOT_STARTED,
    UPDATE_RUNNING,
    UPDATE_SUCCEEDED,
    UPDATE_FAILED,
    UPDATE_CANCELLED,
} UpdateStatus;

UpdateStatus update_status_parse(const char *s);
/* The stored word ("not started", "running", ...). */
const char *update_status_name(UpdateStatus st);
/* The word of the wire's UpdateResults (GET .../update/{id}): cancelled shows as failed. */
const char *update_status_wire(UpdateStatus st);
/* Not started or running. */
bool update_status_active(UpdateStatus st);

/* What an update-token call learns about its update. */
typedef struct UpdateInfo {
    UpdateStatus status;
    bool dry_run;
    int journal_version;
    long long last_seq;
    long long checkpoint_gen; /* bumped by every change of the working state (checkpoint.c) */
} UpdateInfo;

/* The working state of a checkpointing update (new *doc): this worker's copy when it is current, else
 * its base document with the deltas after it applied. ending: the update is ending, so the copy is
 * handed over rather than copied. 1 when the update has a checkpoint, 0 when it has none, -1 on a
 * database error. */
int checkpoint_materialize(Db *db, const char *uid, bool ending, char **doc, size_t *len);

/* Rebuild the state of a journaled update from its base version and its entries (new *doc, NULL
 * when the update has no journal entries), stamped with the version of the CLI that ran it. Strict
 * (lenient false): any entry that cannot be read or applied makes it MAT_INVALID, why (may be NULL
 * with whylen 0) saying which. Lenient: such entries are skipped, why names the first. */
typedef enum { MAT_OK, MAT_INVALID, MAT_DB_ERROR } MatResult;
MatResult journal_materialize(Db *db, const Stack *s, const char *update_id, int base_version, bool lenient, char **doc,
                              size_t *len, char *why, size_t whylen);

/* Finish update_id of s with status (succeeded, failed, cancelled), inside the caller's transaction
 * with the lock held: materialise its state into a new version (non-dry-run), free the stack,
 * record the end. *prior receives the status it had (active, or a terminal one, in which case
 * nothing changed; UPDATE_MISSING when there is no such update of s). False on a database error
 * (logged). When a success's journal cannot be replayed whole, the update ends failed instead with
 * what it recorded, and why (whylen > 0) says what was wrong; it is "" otherwise. */
bool update_finish(Db *db, Stack *s, const char *update_id, UpdateStatus status, UpdateStatus *prior, char *why,
                   size_t whylen) DB_WUR;
/* The lease reaper: if s's active update's lease has expired (expired says so, from the load),
 * end it failed, keeping what it recorded (transaction open, lock held). */
bool update_reap(Db *db, Stack *s) DB_WUR;
/* The periodic sweep (the deploy agent, `pulumi-state-admin reap-leases`): reap every expired
 * lease, each stack in a transaction of its own. Returns how many, or -1 on a database error. */
int update_reap_expired(Db *db);

/* For update-token calls: check token against update uid of the stack ref names. With lock,
 * opens a transaction holding the stack's lock (the caller commits or rolls back) and returns the
 * stack in *out (may be NULL without lock); an expired lease is reaped first. 401/403/404 on
 * failure (nothing left open). */
bool update_auth(Db *db, const StackRef *ref, const char *uid, const char *token, bool lock, Stack **out,
                 UpdateInfo *info, ApiError *e);

/* POST .../{update|preview|refresh|destroy}: a new update of kind; config, metadata, options are
 * JSON object texts; cli_version may be NULL. */
bool update_create(Db *db, const StackRef *ref, const char *kind, bool dry_run, const char *config,
                   const char *metadata, const char *options, const char *actor, const char *cli_version, char uid[37],
                   ApiError *e);

/* What starting an update hands the CLI. */
typedef struct StartResult {
    int version;
    char *token; /* the lease token (new; the caller cleanses and frees it) */
    long long expires;
    int journal_version;
} StartResult;
/* Start uid (its lease): 409 when started already, or MSG_UPDATE_IN_PROGRESS when another update
 * holds the stack. tags (JSON object text or NULL) replace the stack's tags; journal asks for
 * journaling (granted for real updates when allowed). */
bool update_start(Db *db, const StackRef *ref, const char *uid, const char *tags, bool journal, int lease_ttl, Audit *a,
                  StartResult *out, ApiError *e);
/* The stored status of uid on the stack (UPDATE_MISSING gives 404). */
bool update_get_status(Db *db, const StackRef *ref, const char *uid, UpdateStatus *st, ApiError *e);
/* Renew the lease: a new token (new, in *token) expiring lease_ttl seconds from now. */
bool update_renew(Db *db, const StackRef *ref, const char *uid, const char *token, int lease_ttl, char **new_token,
                  long long *expires, ApiError *e);
/* Complete with status (succeeded, failed, cancelled); a retried complete of the same status
 * succeeds again. A success whose journal cannot be replayed ends failed (keeping what it recorded)
 * and answers 400 saying why. */
bool update_complete(Db *db, const StackRef *ref, const char *uid, const char *token, UpdateStatus status, Audit *a,
                     ApiError *e);
/* Cancel uid (any active update); only an admin may cancel one another actor started. */
bool update_cancel(Db *db, const StackRef *ref, const char *uid, const char *actor, bool admin, Audit *a, ApiError *e);

/* The state an update sends. */
/* A full checkpoint (doc: {"version":..,["features":..,]"deployment":..}, malloc'd: taken). */
bool update_checkpoint(Db *db, const StackRef *ref, const char *uid, const char *token, char *doc, size_t len,
                       ApiError *e);
/* A verbatim checkpoint: the exact bytes, with its sequence number (doc malloc'd, NUL past len: taken). */
bool update_checkpoint_verbatim(Db *db, const StackRef *ref, const char *uid, const char *token, long long seq,
                                char *doc, size_t len, ApiError *e);
/* A delta (json_t array of edits, borrowed) against the last verbatim checkpoint, checked by hash. */
bool update_checkpoint_delta(Db *db, const StackRef *ref, const char *uid, const char *token, long long seq,
                             json_t *edits, const char *hash, ApiError *e);

/* Journal entries (journal) or engine events: store the elements of batch (text as bytea, ids as
 * sequence numbers; a retried element is kept as first stored) in one round trip that also checks
 * the update, falling back to update_auth for the exact refusal. resource_changes (may be NULL):
 * the summary event's counts (JSON object text), stored with the update. */
bool update_append(Db *db, const StackRef *ref, const char *uid, const char *token, bool journal, const JspanIds *batch,
                   const char *resource_changes, ApiError *e);

#endif
