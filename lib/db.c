/* db.c - libpq access: one exec wrapper, parameters only, one reconnect policy. */
#include "db.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static void db_reset(Db *db)
{
    PQreset(db->conn);
    db->nprepared = 0; /* prepared statements die with the session */
}

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

bool db_recycle_if_big(Db *db, size_t limit)
{
    if (!db)
        return false;
    size_t moved = db->traffic;
    db->traffic = 0;
    if (moved <= limit || db->in_tx)
        return false;
    PGconn *fresh = PQconnectdb(db->conninfo);
    if (PQstatus(fresh) != CONNECTION_OK) {
        PQfinish(fresh); /* keep the old one: memory is a lesser evil than no connection */
        return true;
    }
    PQfinish(db->conn);
    db->conn = fresh;
    db->nprepared = 0;
    return true;
}

/* Count what a statement moved (parameters and result). */
static void count_traffic(Db *db, int nparams, const char *const *values, const int *lengths, const PGresult *r)
{
    for (int i = 0; i < nparams; i++)
        db->traffic += lengths[i] ? (size_t)lengths[i] : values[i] ? strlen(values[i]) : 0;
    int rows = PQntuples(r), cols = PQnfields(r);
    if ((long)rows * cols > 100000) {
        db->traffic += (size_t)1 << 30;
        return;
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            db->traffic += (size_t)PQgetlength(r, i, j);
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
    db_reset(db);
    db->in_tx = false;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        log_error("database reconnect failed: %s", PQerrorMessage(db->conn));
        return false;
    }
    return true;
}

/* Whether a failed call failed because the connection is gone: the socket (CONNECTION_BAD), or the
 * server said so (class 08: connection exception; 57P01..57P03: shutdown, crash, starting up). */
static bool connection_lost(Db *db, const PGresult *r)
{
    if (PQstatus(db->conn) == CONNECTION_BAD)
        return true;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state &&
           (!strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03"));
}

/* After a call failed with r: true when it should be made once more (the connection was lost
 * outside a transaction and is back); sets db->lost when the loss is final for this request. */
static bool retry_after_loss(Db *db, const PGresult *r)
{
    if (!connection_lost(db, r))
        return false;
    if (db->in_tx) {
        db->lost = true;
        return false;
    }
    log_warn("database connection lost; reconnecting");
    db_reset(db);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        log_error("database reconnect failed: %s", PQerrorMessage(db->conn));
        db->lost = true;
        return false;
    }
    return true;
}

/* Log a failure (unless it is one a caller expects: a unique violation, a refused check) and say
 * which it was. */
static DbOutcome note_failure(Db *db, PGresult *r, const char *sql)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && !strcmp(state, "23505"))
        return DB_DUPLICATE;
    if (state && !strcmp(state, "22012"))
        return DB_REFUSED;
    log_error("query failed: %s [%.80s]", PQerrorMessage(db->conn), sql);
    return DB_ERROR;
}

/* Prepared statements live in a server session: a pooler in transaction mode (PgBouncer before
 * 1.21) hands each transaction another one, so they are turned off for it (prepared_statements). */
static bool use_prepared = true;

void db_set_prepared(bool on)
{
    use_prepared = on;
}

/* One execution: as a prepared statement when hot (preparing it on first use on this connection). */
static PGresult *exec_once(Db *db, bool hot, const char *sql, int nparams, const char *const *values,
                           const int *lengths, const int *formats, bool binary_result)
{
    if (!hot || !use_prepared)
        return PQexecParams(db->conn, sql, nparams, NULL, values, lengths, formats, binary_result ? 1 : 0);
    int i = 0;
    while (i < db->nprepared && db->prepared[i] != sql)
        i++;
    char name[24];
    snprintf(name, sizeof(name), "ps_hot_%d", i);
    if (i == db->nprepared) {
        if (i == DB_MAX_PREPARED)
            return PQexecParams(db->conn, sql, nparams, NULL, values, lengths, formats, binary_result ? 1 : 0);
        PGresult *r = PQprepare(db->conn, name, sql, nparams, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return r;
        PQclear(r);
        db->prepared[db->nprepared++] = sql;
    }
    return PQexecPrepared(db->conn, name, nparams, values, lengths, formats, binary_result ? 1 : 0);
}

/* params[0..n) as libpq takes them: values, lengths and formats (text when len < 0, else binary). */
static void libpq_params(const DbParam *params, int n, const char **values, int *lengths, int *formats)
{
    for (int i = 0; i < n; i++) {
        values[i] = params[i].value;
        lengths[i] = params[i].len < 0 ? 0 : params[i].len;
        formats[i] = params[i].len < 0 ? 0 : 1;
    }
}

static PGresult *exec_params(Db *db, bool hot, const char *sql, int nparams, const DbParam *params, bool binary_result,
                             DbOutcome *outcome);

static PGresult *exec_timed(Db *db, bool hot, const char *sql, int nparams, const DbParam *params, bool binary_result,
                            DbOutcome *outcome)
{
    double t0 = mono_ms();
    DbOutcome o;
    PGresult *r = exec_params(db, hot, sql, nparams, params, binary_result, outcome ? outcome : &o);
    db->wait_ms += mono_ms() - t0;
    return r;
}

PGresult *db_exec(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result)
{
    return exec_timed(db, false, sql, nparams, params, binary_result, NULL);
}

PGresult *db_exec_hot(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result)
{
    return exec_timed(db, true, sql, nparams, params, binary_result, NULL);
}

PGresult *db_exec_outcome(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result,
                          DbOutcome *outcome)
{
    return exec_timed(db, false, sql, nparams, params, binary_result, outcome);
}

DbOutcome db_run_outcome(Db *db, const char *sql, int nparams, const DbParam *params)
{
    DbOutcome o;
    PQclear(exec_timed(db, false, sql, nparams, params, false, &o));
    return o;
}

DbOutcome db_run_hot_outcome(Db *db, const char *sql, int nparams, const DbParam *params)
{
    DbOutcome o;
    PQclear(exec_timed(db, true, sql, nparams, params, false, &o));
    return o;
}

static PGresult *exec_params(Db *db, bool hot, const char *sql, int nparams, const DbParam *params, bool binary_result,
                             DbOutcome *outcome)
{
    const char *values[16];
    int lengths[16];
    int formats[16];
    *outcome = DB_ERROR;
    if (nparams > 16) {
        log_error("db_exec: too many parameters (%d)", nparams);
        return NULL;
    }
    libpq_params(params, nparams, values, lengths, formats);
    for (int attempt = 0;; attempt++) {
        PGresult *r = exec_once(db, hot, sql, nparams, values, lengths, formats, binary_result);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            count_traffic(db, nparams, values, lengths, r);
            *outcome = DB_OK;
            return r;
        }
        bool again = attempt == 0 && retry_after_loss(db, r);
        if (!again) {
            if (attempt > 0 && connection_lost(db, r))
                db->lost = true;
            *outcome = note_failure(db, r, sql);
            PQclear(r);
            return NULL;
        }
        PQclear(r);
    }
}

/* One attempt; *retry says whether it failed because the connection was lost and may be made again. */
static DbOutcome copy_rows(Db *db, const char *copy_sql, const Buf *stream, bool *retry);

/* sql with $1..$n (n <= 9) replaced by the quoted literals lits. */
static char *inline_params(const char *sql, char *const *lits, int n)
{
    Buf b;
    buf_init(&b);
    for (const char *p = sql; *p; p++) {
        if (*p == '$' && p[1] >= '1' && p[1] <= '0' + n && !(p[2] >= '0' && p[2] <= '9')) {
            buf_puts(&b, lits[p[1] - '1']);
            p++;
        } else {
            buf_append(&b, p, 1);
        }
    }
    return buf_steal(&b, NULL);
}

DbOutcome db_copy_checked(Db *db, const char *check_sql, int nparams, const DbParam *params, const char *copy_sql,
                          const Buf *stream)
{
    char *lits[9] = {NULL};
    DbOutcome o = DB_ERROR;
    if (nparams > 9 || db->in_tx)
        return DB_ERROR;
    for (int i = 0; i < nparams; i++) {
        const char *v = params[i].value;
        if (params[i].len >= 0 || !v || !(lits[i] = PQescapeLiteral(db->conn, v, strlen(v))))
            goto out;
    }
    char *check = inline_params(check_sql, lits, nparams);
    char *sql = xasprintf("%s; %s", check, copy_sql);
    free(check);
    double t0 = mono_ms();
    bool retry = false;
    o = copy_rows(db, sql, stream, &retry);
    if (o != DB_OK && retry)
        o = copy_rows(db, sql, stream, &retry);
    db->wait_ms += mono_ms() - t0;
    free(sql);
out:
    for (int i = 0; i < nparams; i++)
        PQfreemem(lits[i]);
    return o;
}

static DbOutcome copy_rows(Db *db, const char *copy_sql, const Buf *stream, bool *retry)
{
    bool first = !*retry;
    *retry = false;
    DbOutcome o = DB_ERROR;
    db->traffic += stream->len;
    PGresult *r = PQexec(db->conn, copy_sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        /* The statements before the COPY in one implicit transaction: nothing was stored. */
        if (first)
            *retry = retry_after_loss(db, r);
        else if (connection_lost(db, r))
            db->lost = true;
        if (!*retry)
            o = note_failure(db, r, copy_sql);
        PQclear(r);
        return o;
    }
    PQclear(r);
    /* Large streams go in slices: PQputCopyData takes an int length. */
    bool sent = true;
    for (size_t off = 0; sent && off < stream->len;) {
        size_t n = stream->len - off > (1u << 30) ? (1u << 30) : stream->len - off;
        sent = PQputCopyData(db->conn, stream->data + off, (int)n) == 1;
        off += n;
    }
    if (PQputCopyEnd(db->conn, sent ? NULL : "the worker could not send the rows") != 1) {
        log_error("COPY failed: %s", PQerrorMessage(db->conn));
        db->lost = connection_lost(db, NULL);
        return DB_ERROR;
    }
    bool ok = true, lost = false;
    while ((r = PQgetResult(db->conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            lost = lost || connection_lost(db, r);
            if (!lost)
                o = note_failure(db, r, copy_sql);
            ok = false;
        }
        PQclear(r);
        if (PQstatus(db->conn) == CONNECTION_BAD)
            break;
    }
    if (!ok || !sent) {
        lost = lost || connection_lost(db, NULL);
        /* The COPY ends its implicit transaction: when the connection died before the end, nothing
         * was committed, and the whole call may be made again. */
        if (lost && first && !db->in_tx)
            *retry = retry_after_loss(db, NULL);
        else if (lost)
            db->lost = true;
    }
    return ok && sent ? DB_OK : lost || !sent ? DB_ERROR : o;
}

bool db_run(Db *db, const char *sql, int nparams, const DbParam *params)
{
    PGresult *r = db_exec(db, sql, nparams, params, false);
    if (!r)
        return false;
    PQclear(r);
    return true;
}

bool db_run_script(Db *db, const char *sql)
{
    double t0 = mono_ms();
    PGresult *r = PQexec(db->conn, sql);
    db->wait_ms += mono_ms() - t0;
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        if (connection_lost(db, r))
            db->lost = true;
        log_error("script failed: %s", PQerrorMessage(db->conn));
    }
    PQclear(r);
    return ok;
}

bool db_notify(Db *db, const char *channel, const char *payload)
{
    DbParam p[] = {DB_TEXT(channel), DB_TEXT(payload ? payload : "")};
    return db_run(db, "SELECT pg_notify($1, $2)", 2, p);
}

bool db_begin(Db *db)
{
    if (!db_run(db, "BEGIN", 0, NULL))
        return false;
    db->in_tx = true;
    return true;
}

bool db_begin_snapshot(Db *db)
{
    if (!db_run(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL))
        return false;
    db->in_tx = true;
    return true;
}

DbOutcome db_each_row(Db *db, const char *sql, int nparams, const DbParam *params, bool binary_result,
                      bool (*row)(const PGresult *r, void *arg), void *arg)
{
    const char *values[16];
    int lengths[16], formats[16];
    if (nparams > 16)
        return DB_ERROR;
    libpq_params(params, nparams, values, lengths, formats);
    double t0 = mono_ms();
    if (!PQsendQueryParams(db->conn, sql, nparams, NULL, values, lengths, formats, binary_result ? 1 : 0)) {
        db->lost = connection_lost(db, NULL);
        db->wait_ms += mono_ms() - t0;
        return note_failure(db, NULL, sql);
    }
    PQsetSingleRowMode(db->conn);
    DbOutcome o = DB_OK;
    bool wanted = true;
    PGresult *r;
    while ((r = PQgetResult(db->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            db->traffic += (size_t)PQgetlength(r, 0, 0);
            if (wanted && !row(r, arg)) {
                wanted = false;
                o = DB_REFUSED;
            }
        } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && o == DB_OK) {
            if (connection_lost(db, r))
                db->lost = true;
            o = note_failure(db, r, sql);
            if (o == DB_REFUSED)
                o = DB_ERROR;
        }
        PQclear(r);
    }
    db->wait_ms += mono_ms() - t0;
    return o;
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

static void put_be32(Buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    buf_append(b, x, 4);
}

void db_array_begin(Buf *b, uint32_t elem_oid, size_t n)
{
    put_be32(b, 1); /* dimensions */
    put_be32(b, 0); /* no NULLs */
    put_be32(b, elem_oid);
    put_be32(b, (uint32_t)n); /* length of the dimension */
    put_be32(b, 1);           /* lower bound */
}

void db_array_add(Buf *b, const void *data, size_t len)
{
    put_be32(b, (uint32_t)len);
    buf_append(b, data, len);
}

void db_array_add_int8(Buf *b, int64_t v)
{
    put_be32(b, 8);
    put_be32(b, (uint32_t)((uint64_t)v >> 32));
    put_be32(b, (uint32_t)v);
}

void db_copy_header(Buf *b)
{
    static const unsigned char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    buf_append(b, sig, sizeof(sig));
    put_be32(b, 0); /* flags */
    put_be32(b, 0); /* header extension */
}

void db_copy_row(Buf *b, uint16_t nfields)
{
    unsigned char x[2] = {(unsigned char)(nfields >> 8), (unsigned char)nfields};
    buf_append(b, x, 2);
}

void db_copy_field(Buf *b, const void *data, size_t len)
{
    db_array_add(b, data, len); /* the same (length, bytes) layout as an array element */
}

void db_copy_field_int8(Buf *b, int64_t v)
{
    db_array_add_int8(b, v);
}

void db_copy_trailer(Buf *b)
{
    static const unsigned char end[2] = {0xff, 0xff};
    buf_append(b, end, 2);
}
