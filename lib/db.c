/* db.c - libpq access: one exec wrapper, parameters only, one reconnect policy. */
#include "db.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static __thread char last_sqlstate[6];

Db *db_open(const char *conninfo)
{
    Db *db = xcalloc(1, sizeof(*db));
    db->conninfo = xstrdup(conninfo ? conninfo : "");
    db->conn = PQconnectdb(db->conninfo);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        log_error("database connection failed: %s", PQerrorMessage(db->conn));
        db_close(db);
        return NULL;
    }
    return db;
}

void db_close(Db *db)
{
    if (!db)
        return;
    if (db->conn)
        PQfinish(db->conn);
    free(db->conninfo);
    free(db);
}

bool db_ensure(Db *db)
{
    if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) == PQTRANS_IDLE)
        return true;
    if (PQstatus(db->conn) == CONNECTION_OK) {
        /* A transaction left open by a failed request: end it. */
        PGresult *r = PQexec(db->conn, "ROLLBACK");
        PQclear(r);
        db->in_tx = false;
        if (PQstatus(db->conn) == CONNECTION_OK)
            return true;
    }
    log_warn("database connection lost; reconnecting");
    PQreset(db->conn);
    db->in_tx = false;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        log_error("database reconnect failed: %s", PQerrorMessage(db->conn));
        return false;
    }
    return true;
}

PGresult *db_exec(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result)
{
    const char *values[16];
    int lengths[16];
    int formats[16];
    last_sqlstate[0] = '\0';
    if (nparams > 16) {
        log_error("db_exec: too many parameters (%d)", nparams);
        return NULL;
    }
    for (int i = 0; i < nparams; i++) {
        values[i] = params[i].value;
        lengths[i] = params[i].len < 0 ? 0 : params[i].len;
        formats[i] = params[i].len < 0 ? 0 : 1;
    }
    PGresult *r = PQexecParams(db->conn, sql, nparams, NULL, values, lengths, formats, binary_result ? 1 : 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    if (PQstatus(db->conn) == CONNECTION_BAD && !db->in_tx) {
        /* PostgreSQL went away (restart, failover): reconnect once and retry. Inside a
         * transaction the work is lost anyway, so the caller fails instead. */
        PQclear(r);
        log_warn("database connection lost; reconnecting");
        PQreset(db->conn);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            log_error("database reconnect failed: %s", PQerrorMessage(db->conn));
            return NULL;
        }
        r = PQexecParams(db->conn, sql, nparams, NULL, values, lengths, formats, binary_result ? 1 : 0);
        st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
            return r;
    }
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state) {
        strncpy(last_sqlstate, state, sizeof(last_sqlstate) - 1);
        last_sqlstate[sizeof(last_sqlstate) - 1] = '\0';
    }
    /* Unique violations are expected by callers that check db_last_sqlstate(). */
    if (!state || strcmp(state, "23505") != 0)
        log_error("query failed: %s [%.80s]", PQerrorMessage(db->conn), sql);
    PQclear(r);
    return NULL;
}

bool db_run(Db *db, const char *sql, int nparams, const DbParam *params)
{
    PGresult *r = db_exec(db, sql, nparams, params, false);
    if (!r)
        return false;
    PQclear(r);
    return true;
}

const char *db_last_sqlstate(void)
{
    return last_sqlstate;
}

bool db_begin(Db *db)
{
    if (!db_run(db, "BEGIN", 0, NULL))
        return false;
    db->in_tx = true;
    return true;
}

bool db_commit(Db *db)
{
    db->in_tx = false;
    return db_run(db, "COMMIT", 0, NULL);
}

void db_rollback(Db *db)
{
    if (!db->in_tx)
        return;
    db->in_tx = false;
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    PQclear(r);
}

bool db_lock(Db *db, const char *key)
{
    DbParam p[] = {DB_TEXT(key)};
    return db_run(db, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", 1, p);
}
