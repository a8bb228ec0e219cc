/* audit.c - audit rows: actor, action, stack, outcome, client address, request id, detail. */
#include "audit.h"

#include <stdio.h>

bool audit_insert(Db *db, const Audit *a, int status)
{
    char sbuf[16];
    snprintf(sbuf, sizeof(sbuf), "%d", status);
    DbParam p[] = {DB_TEXT(a->actor ? a->actor : "anonymous"),
                   DB_TEXT(a->action),
                   DB_TEXT(a->org),
                   DB_TEXT(a->project),
                   DB_TEXT(a->stack),
                   DB_TEXT(sbuf),
                   DB_TEXT(a->client_addr),
                   DB_TEXT(a->request_id),
                   DB_TEXT(a->detail)};
    return db_run(db,
                  "INSERT INTO extension_pulumi_state_audit (actor, action, org, project, stack, status, client_addr, "
                  "request_id, detail) VALUES ($1, $2, $3, $4, $5, $6::int, $7, $8, $9)",
                  9, p);
}

bool audit_commit(Db *db, Audit *a)
{
    if (a && a->enabled) {
        if (!audit_insert(db, a, a->ok_status ? a->ok_status : 200)) {
            db_rollback(db);
            return false;
        }
        a->written = true;
    }
    if (!db_commit(db)) {
        if (a)
            a->written = false;
        db_rollback(db);
        return false;
    }
    return true;
}
