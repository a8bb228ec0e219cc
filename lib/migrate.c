/* migrate.c - apply the embedded migrations once each, serialised by an advisory lock. */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

#define MIGRATE_LOCK_KEY 7311000001LL

static bool exec_simple(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        log_error("migration statement failed: %s", PQerrorMessage(conn));
    PQclear(r);
    return ok;
}

int migrate_latest(void)
{
    int n = 0;
    for (const Migration *m = migrations; m->name; m++)
        if (m->number > n)
            n = m->number;
    return n;
}

int migrate_current(PGconn *conn)
{
    PGresult *r = PQexec(conn, "SELECT coalesce(max(substr(name, 11)::int), 0) FROM extension_pulumi_state_schema "
                               "WHERE name LIKE 'migration:%'");
    int v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

bool migrate_run(PGconn *conn, int *applied)
{
    char sql[256];
    int count = 0;
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", MIGRATE_LOCK_KEY);
    if (!exec_simple(conn, sql))
        return false;
    if (!exec_simple(conn, "CREATE TABLE IF NOT EXISTS extension_pulumi_state_schema ("
                           " name text PRIMARY KEY, value text NOT NULL,"
                           " at timestamptz NOT NULL DEFAULT now())"))
        goto fail;
    int current = migrate_current(conn);
    if (current < 0)
        goto fail;
    for (const Migration *m = migrations; m->name; m++) {
        if (m->number <= current)
            continue;
        log_info("applying migration %s", m->name);
        if (!exec_simple(conn, "BEGIN"))
            goto fail;
        if (!exec_simple(conn, m->sql))
            goto fail_tx;
        char num[32];
        snprintf(num, sizeof(num), "migration:%04d", m->number);
        const char *params[] = {num, m->name};
        PGresult *r = PQexecParams(conn, "INSERT INTO extension_pulumi_state_schema (name, value) VALUES ($1, $2)",
                                   2, NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            log_error("recording migration failed: %s", PQerrorMessage(conn));
        PQclear(r);
        if (!ok || !exec_simple(conn, "COMMIT"))
            goto fail_tx;
        count++;
    }
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", MIGRATE_LOCK_KEY);
    exec_simple(conn, sql);
    if (applied)
        *applied = count;
    return true;
fail_tx:
    PQclear(PQexec(conn, "ROLLBACK"));
fail:
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", MIGRATE_LOCK_KEY);
    PQclear(PQexec(conn, sql));
    return false;
}
