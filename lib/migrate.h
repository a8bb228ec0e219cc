/* migrate.h - the embedded, numbered, forward-only schema migrations and their runner. */
#ifndef PS_MIGRATE_H
#define PS_MIGRATE_H

#include <stdbool.h>

#include "db.h"

typedef struct Migration {
    int number;
    const char *name;
    const char *sql;
} Migration;

/* Generated from the sql/ migrations, ended by a { 0, NULL, NULL } row. */
extern const Migration migrations[];

/* Apply every migration not yet recorded, each in its own transaction, under an advisory lock
 * so that concurrent runs serialise. Returns false (logged) on failure. *applied (may be NULL)
 * receives the number applied by this run. */
bool migrate_run(Db *db, int *applied) DB_WUR;
/* The highest migration number compiled in. */
int migrate_latest(void);
/* The highest applied, or -1 on error / 0 if none. */
int migrate_current(Db *db);

#endif
