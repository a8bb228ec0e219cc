/* api-deployments.c - server-side deployments: queue, list, read, logs, linked updates, cancel. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "deploy.h"

void api_deploy_create(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    const char *initiator = c->initiator && *c->initiator ? c->initiator : "api";
    c->audit.ok_status = 202;
    bool ok = deploy_create(c->db, c->cfg, c->w->master_key, &ref, body, c->actor, initiator, &c->audit, &out, &e);
    reply_buf(c, ok, &out, &e, 202);
}

void api_deploy_list(Ctx *c)
{
    long page, size;
    if (!ctx_query_long(c, "page", 1, 1, 1000000, &page) || !ctx_query_long(c, "pageSize", 10, 1, 100, &size))
        return;
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    reply_buf(c, deploy_list(c->db, c->cfg, &ref, page, size, &out, &e), &out, &e, 200);
}

void api_deploy_get(Ctx *c)
{
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    reply_buf(c, deploy_get(c->db, c->cfg, &ref, c->captures[3], 0, &out, &e), &out, &e, 200);
}

void api_deploy_get_version(Ctx *c)
{
    long long v = 0;
    if (!parse_int64(c->captures[3], -1, 1, 1000000000, &v)) {
        reply_error(c, 400, "Bad Request: the version must be a positive integer");
        return;
    }
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    reply_buf(c, deploy_get(c->db, c->cfg, &ref, NULL, v, &out, &e), &out, &e, 200);
}

void api_deploy_logs(Ctx *c)
{
    char *job = ctx_query(c, "job");
    if (job) {
        /* Step mode (pulumi deployment log --job --step). */
        free(job);
        long j, step, offset, count;
        if (!ctx_query_long(c, "job", 0, 0, 0, &j) || !ctx_query_long(c, "step", 0, 0, 1000000, &step) ||
            !ctx_query_long(c, "offset", 0, 0, 1LL << 40, &offset) || !ctx_query_long(c, "count", 100, 1, 499, &count))
            return;
        StackRef ref = ctx_stack(c);
        Buf out;
        buf_init(&out);
        ApiError e;
        reply_buf(c, deploy_log_step(c->db, &ref, c->captures[3], step, offset, count, &out, &e), &out, &e, 200);
        return;
    }
    char *token = ctx_query(c, "continuationToken");
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    reply_buf(c, deploy_logs(c->db, &ref, c->captures[3], token, &out, &e), &out, &e, 200);
    free(token);
}

void api_deploy_updates(Ctx *c)
{
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    reply_buf(c, deploy_updates(c->db, &ref, c->captures[3], &out, &e), &out, &e, 200);
}

void api_deploy_cancel(Ctx *c)
{
    StackRef ref = ctx_stack(c);
    ApiError e;
    c->audit.ok_status = strcmp(c->method, "DELETE") ? 200 : 204;
    if (!deploy_cancel(c->db, &ref, c->captures[3], &c->audit, &e))
        reply_api_error(c, &e);
    else if (!strcmp(c->method, "DELETE"))
        reply_bytes(c, 204, "", 0, false);
    else
        reply_ok(c);
}

void api_deploy_settings_get(Ctx *c)
{
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    reply_buf(c, deploy_settings_get(c->db, &ref, &out, &e), &out, &e, 200);
}

void api_deploy_settings_set(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    bool merge = !strcmp(c->method, "POST");
    reply_buf(c, deploy_settings_set(c->db, c->w->master_key, &ref, body, merge, &c->audit, &out, &e), &out, &e, 200);
}

void api_deploy_settings_delete(Ctx *c)
{
    StackRef ref = ctx_stack(c);
    ApiError e;
    if (deploy_settings_delete(c->db, &ref, &c->audit, &e))
        reply_ok(c);
    else
        reply_api_error(c, &e);
}

void api_deploy_settings_encrypt(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    StackRef ref = ctx_stack(c);
    Buf out;
    buf_init(&out);
    ApiError e;
    const char *secret = json_string_value(json_object_get(body, "secret"));
    reply_buf(c, deploy_settings_encrypt(c->db, c->w->master_key, &ref, secret, &out, &e), &out, &e, 200);
}
