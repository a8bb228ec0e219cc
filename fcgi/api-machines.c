/* api-machines.c - the machine attestation API: register, list, read, approve, revoke, lock,
 * unlock, the machine's one-time configuration, and signed image URL checks (lib/machine.c). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "machine.h"

void api_machine_register(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    Buf out;
    buf_init(&out);
    ApiError e;
    c->audit.ok_status = 201;
    bool ok = machine_register(c->db, c->cfg, c->w->master_key, body, c->actor, &c->audit, &out, &e);
    reply_buf(c, ok, &out, &e, 201);
}

void api_machine_list(Ctx *c)
{
    long page, size;
    if (!ctx_query_long(c, "page", 1, 1, 1000000, &page) || !ctx_query_long(c, "pageSize", 50, 1, 500, &size))
        return;
    char *status = ctx_query(c, "status"), *role = ctx_query(c, "role");
    Buf out;
    buf_init(&out);
    ApiError e;
    bool ok = machine_list(c->db, c->cfg, c->w->master_key, status && *status ? status : NULL,
                           role && *role ? role : NULL, page, size, &out, &e);
    free(status);
    free(role);
    reply_buf(c, ok, &out, &e, 200);
}

void api_machine_get(Ctx *c)
{
    Buf out;
    buf_init(&out);
    ApiError e;
    reply_buf(c, machine_get(c->db, c->cfg, c->w->master_key, c->captures[0], &out, &e), &out, &e, 200);
}

void api_machine_approve(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    Buf out;
    buf_init(&out);
    ApiError e;
    bool ok = machine_approve(c->db, c->cfg, c->w->master_key, c->captures[0], body, &c->audit, &out, &e);
    reply_buf(c, ok, &out, &e, 200);
}

static void transition(Ctx *c, MachineAction act)
{
    Buf out;
    buf_init(&out);
    ApiError e;
    bool ok = machine_transition(c->db, c->cfg, c->w->master_key, c->captures[0], act, &c->audit, &out, &e);
    reply_buf(c, ok, &out, &e, 200);
}

void api_machine_revoke(Ctx *c)
{
    transition(c, MACHINE_REVOKE);
}

void api_machine_lock(Ctx *c)
{
    transition(c, MACHINE_LOCK);
}

void api_machine_unlock(Ctx *c)
{
    transition(c, MACHINE_UNLOCK);
}

void api_machine_config(Ctx *c)
{
    /* The machine presents its config token: "Authorization: Bearer <t>" or ?token=<t>. */
    char *query = ctx_query(c, "token");
    const char *token = query;
    if (c->auth && !strncasecmp(c->auth, "Bearer ", 7))
        token = c->auth + 7;
    c->audit.actor = "machine";
    Buf out;
    buf_init(&out);
    ApiError e;
    bool ok = machine_config(c->db, c->captures[0], token, &c->audit, &out, &e);
    free(query);
    reply_buf(c, ok, &out, &e, 200);
}

void api_iso_verify(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    Buf out;
    buf_init(&out);
    ApiError e;
    reply_buf(c, machine_iso_verify(c->w->master_key, body, &out, &e), &out, &e, 200);
}
