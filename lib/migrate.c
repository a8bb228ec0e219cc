/* migrate.c - apply the embedded migrations once each, serialised by an advisory lock. */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* The session-level lock every migrating process takes (pg_advisory_lock(bigint)). */
#define MIGRATE_LOCK_KEY "7311000001"

int migrate_latest(void)
{
    int n = 0;
    for (const Migration *m = migrations; m->name; m++)
        if (m->number > n)
            n = m->number;
    return n;
}

int migrate_current(Db *db)
{
    PGresult *r = db_exec(db,
                          "SELECT coalesce(max(substr(name, 11)::int), 0) FROM extension_pulumi_state_schema "
                          "WHERE name LIKE 'migration:%'",
                          0, NULL, false);
    int v = r && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

/* Apply migration m in its own transaction, recording it. */
static bool apply(Db *db, const Migration *m)
{
    char num[32];
    snprintf(num, sizeof(num), "migration:%04d", m->number);
    DbParam p[] = {DB_TEXT(num), DB_TEXT(m->name)};
    log_info("applying migration %s", m->name);
    bool ok = db_begin(db) && db_run_script(db, m->sql) &&
              db_run(db, "INSERT INTO extension_pulumi_state_schema (name, value) VALUES ($1, $2)", 2, p) &&
              db_commit(db);
    if (!ok)
        db_rollback(db);
    return ok;
}

bool migrate_run(Db *db, int *applied)
{
    int count = 0;
    DbParam key[] = {DB_TEXT(MIGRATE_LOCK_KEY)};
    if (!db_run(db, "SELECT pg_advisory_lock($1::bigint)", 1, key))
        return false;
    bool ok = db_run(db,
                     "CREATE TABLE IF NOT EXISTS extension_pulumi_state_schema (name text PRIMARY KEY, "
                     "value text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
                     0, NULL);
    int current = ok ? migrate_current(db) : -1;
    ok = current >= 0;
    for (const Migration *m = migrations; ok && m->name; m++) {
        if (m->number <= current)
            continue;
        ok = apply(db, m);
        count += ok;
    }
    if (!db_run(db, "SELECT pg_advisory_unlock($1::bigint)", 1, key))
        log_warn("could not release the migration lock (it goes with the session)");
    if (ok && applied)
        *applied = count;
    return ok;
}
