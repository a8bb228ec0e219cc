/* audit.c - audit rows: actor, action, stack, outcome, client address, request id. */
#include "audit.h"

#include <stdio.h>

#include "router.h"

static bool audit_insert(Ctx *c, int status)
{
    const Route *r = c->route;
    bool stack = r->flags & ROUTE_STACK;
    char sbuf[16];
    snprintf(sbuf, sizeof(sbuf), "%d", status);
    DbParam p[] = {DB_TEXT(c->actor ? c->actor : "anonymous"),
                   DB_TEXT(r->action),
                   DB_TEXT(c->ncaptures > 0 ? c->captures[0] : NULL),
                   DB_TEXT(c->ncaptures > 1 ? c->captures[1] : NULL),
                   DB_TEXT(stack && c->ncaptures > 2 ? c->captures[2]
                                                     : json_string_value(json_object_get(c->json, "stackName"))),
                   DB_TEXT(sbuf),
                   DB_TEXT(c->client_addr),
                   DB_TEXT(c->request_id)};
    return db_run(c->db,
                  "INSERT INTO extension_pulumi_state_audit (actor, action, org, project, stack, status, client_addr, "
                  "request_id) VALUES ($1, $2, $3, $4, $5, $6::int, $7, $8)",
                  8, p);
}

bool audit_commit(Ctx *c)
{
    if (c->route->flags & ROUTE_AUDIT) {
        if (!audit_insert(c, 200))
            return false;
        c->audited = true;
    }
    return db_commit(c->db);
}

void audit_after(Ctx *c)
{
    if (!c->route || !(c->route->flags & ROUTE_AUDIT) || c->audited || !c->status)
        return;
    if (c->db->in_tx)
        db_rollback(c->db);
    if (!db_ensure(c->db) || !audit_insert(c, c->status))
        log_error("[%s] could not write the audit row for %s", c->request_id, c->route->action);
}
