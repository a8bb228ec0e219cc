/* audit.h - the audit trail: one row per state-changing request or operator command, written in the
 * change's own transaction (so a change and its row commit or vanish together). */
#ifndef PS_AUDIT_H
#define PS_AUDIT_H

#include <stdbool.h>

#include "db.h"

/* What is being done and by whom. The front end fills it (borrowed strings); domain functions that
 * change something take it and write it at their commit. */
typedef struct Audit {
    bool enabled;       /* this action is audited */
    bool written;       /* the row went in with the change's transaction */
    const char *actor;  /* token name, "operator", "admin:<user>", "agent:<id>" */
    const char *action; /* "stack.delete", "token.create", ... */
    const char *org, *project, *stack;
    const char *client_addr;
    const char *request_id;
    const char *detail;
    int ok_status; /* what the route answers when the change is made (0: 200), for the row written with it */
} Audit;

/* Insert a's row with outcome status (inside or outside a transaction). */
bool audit_insert(Db *db, const Audit *a, int status) DB_WUR;
/* The success point of a change: insert a's row (outcome 200) when a is enabled (a may be NULL),
 * then commit. On failure the transaction is rolled back. */
bool audit_commit(Db *db, Audit *a) DB_WUR;

#endif
