/* db.h - the one libpq wrapper: parameterised queries, transactions, advisory locks, reconnects. */
#ifndef PS_DB_H
#define PS_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct Db {
    PGconn *conn;
    char *conninfo;
    bool in_tx;
} Db;

/* A parameter: text (len < 0, NUL-terminated, may be NULL for SQL NULL) or binary bytes. */
typedef struct DbParam {
    const char *value;
    int len;        /* < 0: text; >= 0: binary of that many bytes */
} DbParam;

#define DB_TEXT(s) ((DbParam){(s), -1})
#define DB_BIN(p, n) ((DbParam){(const char *)(p), (int)(n)})

/* new: connects (logs and returns NULL on failure). */
Db *db_open(const char *conninfo);
void db_close(Db *db);
/* Make sure the connection is usable (reset it if PostgreSQL went away). */
bool db_ensure(Db *db);

/* Run one statement. Returns a new PGresult (PGRES_COMMAND_OK or PGRES_TUPLES_OK) or NULL after
 * logging the error. binary_result asks for binary columns (for bytea). */
PGresult *db_exec(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result);
/* Same, for statements whose result is not needed. */
bool db_run(Db *db, const char *sql, int nparams, const DbParam *params);
/* The SQLSTATE of the last failed statement, or "" (thread-local). */
const char *db_last_sqlstate(void);

bool db_begin(Db *db);
bool db_commit(Db *db);
void db_rollback(Db *db);
/* pg_advisory_xact_lock on a key derived from text (inside a transaction). */
bool db_lock(Db *db, const char *key);

#endif
