/* db.h - the one libpq wrapper: parameterised queries, transactions, advisory locks, reconnects. */
#ifndef PS_DB_H
#define PS_DB_H

#include <libpq-fe.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define DB_MAX_PREPARED 16
/* For calls whose failure must be handled: a commit, a statement that changes something. */
#define DB_WUR __attribute__((warn_unused_result))

typedef struct Db {
    PGconn *conn;
    char *conninfo;
    bool in_tx;
    const char *prepared[DB_MAX_PREPARED]; /* statements prepared on this connection (db_exec_hot) */
    int nprepared;
    size_t traffic; /* bytes sent and received since db_recycle_if_big last looked */
    double wait_ms; /* time spent in statements (waiting for PostgreSQL), summed; the caller resets */
    bool lost;      /* a call failed because the connection to PostgreSQL was lost; the caller resets */
} Db;

/* A parameter: text (len < 0, NUL-terminated, may be NULL for SQL NULL) or binary bytes. */
typedef struct DbParam {
    const char *value;
    int len; /* < 0: text; >= 0: binary of that many bytes */
} DbParam;

#define DB_TEXT(s) ((DbParam){(s), -1})
#define DB_BIN(p, n) ((DbParam){(const char *)(p), (int)(n)})

/* new: connects (logs and returns NULL on failure). */
Db *db_open(const char *conninfo);
void db_close(Db *db);
/* The one retry policy, for every call (statements, COPY, BEGIN): when a call fails because the
 * connection was lost (a PostgreSQL restart, failover, a dead socket that still looked open) and no
 * transaction is open, the connection is reset and the call made once more. When it fails for that
 * reason anyway (or inside a transaction, whose work is gone), db->lost is set: the request should
 * be answered 503 with Retry-After, which clients retry, not 500. */

/* Make sure the connection is usable (reset it if PostgreSQL went away). */
bool db_ensure(Db *db);
/* libpq keeps its buffers as large as the largest message a connection ever carried: after more
 * than limit bytes went through (a state of many megabytes), open a fresh connection so the worker
 * gives that memory back. Resets the count; true when the limit was passed. */
bool db_recycle_if_big(Db *db, size_t limit);

/* Run one statement. Returns a new PGresult (PGRES_COMMAND_OK or PGRES_TUPLES_OK) or NULL after
 * logging the error. binary_result asks for binary columns (for bytea). */
PGresult *db_exec(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result);
/* Whether db_exec_hot prepares its statements (true by default; false behind a transaction-mode pooler). */
void db_set_prepared(bool on);

/* Same, for a hot-path statement: sql must be a string constant; it is prepared once per
 * connection (the pointer identifies it) and then only executed. */
PGresult *db_exec_hot(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result);
/* Same, for statements whose result is not needed. */
bool db_run(Db *db, const char *sql, int nparams, const DbParam *params) DB_WUR;

/* How a call ended, for the callers that tell failures apart: the SQLSTATE travels with the call's
 * result. Unique violations (23505) and division by zero (22012, how a checking statement refuses)
 * are not logged; every other failure is. */
typedef enum { DB_OK, DB_ERROR, DB_DUPLICATE, DB_REFUSED } DbOutcome;
DbOutcome db_run_outcome(Db *db, const char *sql, int nparams, const DbParam *params) DB_WUR;
/* db_run_outcome for a hot-path statement (see db_exec_hot). */
DbOutcome db_run_hot_outcome(Db *db, const char *sql, int nparams, const DbParam *params) DB_WUR;
/* db_exec that also says how it ended (for callers that tell a unique violation from an error). */
PGresult *db_exec_outcome(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result,
                          DbOutcome *outcome);
/* Run a script of several statements (no parameters: migrations), as one simple query. */
bool db_run_script(Db *db, const char *sql) DB_WUR;

/* A binary one-dimensional array parameter (array_recv's layout) of n elements of the type with
 * OID elem_oid: db_array_begin, then db_array_add n times; pass b as DB_BIN(b.data, b.len). */
#define DB_OID_BYTEA 17
#define DB_OID_INT8 20
void db_array_begin(Buf *b, uint32_t elem_oid, size_t n);
void db_array_add(Buf *b, const void *data, size_t len);
void db_array_add_int8(Buf *b, int64_t v);

/* COPY ... FROM STDIN (FORMAT binary): build the stream with db_copy_header, then per row
 * db_copy_row (field count) and db_copy_field / db_copy_field_int8 per field, then
 * db_copy_trailer; db_copy_checked sends it. */
void db_copy_header(Buf *b);
void db_copy_row(Buf *b, uint16_t nfields);
void db_copy_field(Buf *b, const void *data, size_t len);
void db_copy_field_int8(Buf *b, int64_t v);
void db_copy_trailer(Buf *b);
/* Rows in one round trip: check_sql (a statement with $1..$n text parameters that refuses by
 * dividing by zero) and then `copy_sql` (COPY .. FROM STDIN (FORMAT binary)) sent as one simple
 * query, which PostgreSQL runs as one implicit transaction: committed when the COPY ends, the
 * check's row locks held from the check on. A simple query takes no parameters, so this is the one
 * place SQL is built from values: each is quoted by PQescapeLiteral. DB_REFUSED: the check refused
 * (nothing stored); DB_DUPLICATE: a row exists already (nothing stored). Outside a transaction only. */
DbOutcome db_copy_checked(Db *db, const char *check_sql, int nparams, const DbParam *params, const char *copy_sql,
                          const Buf *stream) DB_WUR;

bool db_begin(Db *db) DB_WUR;
bool db_commit(Db *db) DB_WUR;
/* BEGIN a read-only transaction whose statements all see one snapshot (end it with db_rollback). */
bool db_begin_snapshot(Db *db) DB_WUR;
/* A query whose rows are handed to row(r, arg) one at a time as they arrive (libpq's single-row mode:
 * a large result is never held whole). row returns false to stop looking (DB_REFUSED then). */
DbOutcome db_each_row(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result,
                      bool (*row)(const PGresult *r, void *arg), void *arg) DB_WUR;
/* Ends the open transaction, if any (a no-op otherwise): the one way a failed unit of work ends. */
void db_rollback(Db *db);
/* pg_advisory_xact_lock on a key derived from text (inside a transaction). */
bool db_lock(Db *db, const char *key) DB_WUR;
/* NOTIFY channel with payload (delivered when the transaction commits, at once outside one). */
bool db_notify(Db *db, const char *channel, const char *payload) DB_WUR;

#endif
