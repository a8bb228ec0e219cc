/* api-updates.c - the update lifecycle: create, start (lease), status, renew, complete, cancel. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "names.h"
#include "update.h"

/* The release in the CLI's User-Agent, "pulumi-cli/1 (v3.259.0; linux; cmd=up)": "v3.259.0". */
static bool cli_version_of(const char *ua, char *out, size_t outlen)
{
    static const char prefix[] = "pulumi-cli/";
    if (!ua || strncmp(ua, prefix, sizeof(prefix) - 1) != 0)
        return false;
    const char *open = strchr(ua, '(');
    if (!open)
        return false;
    open++;
    size_t n = strcspn(open, ";) ");
    if (n == 0 || n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)open[i]) && !strchr(".-+_", open[i]))
            return false;
    memcpy(out, open, n);
    out[n] = '\0';
    return true;
}

/* A JSON object member as compact text (new), "{}" when absent or null. */
static char *object_text(json_t *v)
{
    return json_is_object(v) ? json_dumps(v, JSON_COMPACT) : xstrdup("{}");
}

void api_create_update(Ctx *c)
{
    const char *kind = c->captures[3];
    json_t *body = ctx_json(c);
    if (!body)
        return;
    json_t *options = json_object_get(body, "options");
    json_t *config = json_object_get(body, "config");
    json_t *metadata = json_object_get(body, "metadata");
    if ((options && !json_is_object(options)) || (config && !json_is_object(config) && !json_is_null(config)) ||
        (metadata && !json_is_object(metadata) && !json_is_null(metadata))) {
        reply_error(c, 400, "Bad Request: options, config and metadata must be objects");
        return;
    }
    json_t *env = json_object_get(metadata, "environment");
    if (env && !json_is_object(env) && !json_is_null(env)) {
        reply_error(c, 400, "Bad Request: metadata.environment must be an object");
        return;
    }
    json_t *dry = json_object_get(options, "dryRun");
    if (dry && !json_is_boolean(dry)) {
        reply_error(c, 400, "Bad Request: options.dryRun must be a boolean");
        return;
    }
    bool dry_run = !strcmp(kind, "preview") || json_is_true(dry);
    char *cfg = object_text(config), *meta = object_text(metadata), *opts = object_text(options);
    char cli_version[64], uid[37];
    bool have_version = cli_version_of(c->user_agent, cli_version, sizeof(cli_version));
    StackRef ref = ctx_stack(c);
    ApiError e;
    if (update_create(c->db, &ref, kind, dry_run, cfg, meta, opts, c->actor, have_version ? cli_version : NULL, uid,
                      &e))
        reply_json(c, 200, json_pack("{s:s}", "updateID", uid));
    else
        reply_api_error(c, &e);
    free(cfg);
    free(meta);
    free(opts);
}

void api_start_update(Ctx *c)
{
    const char *uid = c->captures[4];
    if (!name_valid_uuid(uid)) {
        reply_error(c, 404, MSG_UNKNOWN_UPDATE);
        return;
    }
    json_t *body = ctx_json(c);
    if (!body)
        return;
    json_t *tags = json_object_get(body, "tags");
    json_t *jv = json_object_get(body, "journalVersion");
    if (jv && !json_is_integer(jv) && !json_is_null(jv)) {
        reply_error(c, 400, "Bad Request: journalVersion must be an integer");
        return;
    }
    char why[120];
    if (tags && !json_is_null(tags) && !names_tags_valid(tags, why, sizeof(why))) {
        reply_error(c, 400, "Bad Request: %s", why);
        return;
    }
    char *tagtext = json_is_object(tags) ? json_dumps(tags, JSON_COMPACT) : NULL;
    bool journal = c->cfg->journaling && jv && json_integer_value(jv) >= 1;
    StackRef ref = ctx_stack(c);
    StartResult st;
    ApiError e;
    if (update_start(c->db, &ref, uid, tagtext, journal, c->cfg->lease_ttl, &c->audit, &st, &e)) {
        reply_json(c, 200,
                   json_pack("{s:i, s:s, s:I, s:i}", "version", st.version, "token", st.token, "tokenExpiration",
                             (json_int_t)st.expires, "journalVersion", st.journal_version));
        OPENSSL_cleanse(st.token, strlen(st.token));
        free(st.token);
    } else {
        reply_api_error(c, &e);
    }
    free(tagtext);
}

void api_get_update(Ctx *c)
{
    const char *uid = c->captures[4];
    if (!name_valid_uuid(uid)) {
        reply_error(c, 404, MSG_UNKNOWN_UPDATE);
        return;
    }
    StackRef ref = ctx_stack(c);
    UpdateStatus st;
    ApiError e;
    if (!update_get_status(c->db, &ref, uid, &st, &e)) {
        reply_api_error(c, &e);
        return;
    }
    json_t *o = json_pack("{s:s, s:[]}", "status", update_status_wire(st), "events");
    json_object_set_new(o, "continuationToken", update_status_active(st) ? json_string("0") : json_null());
    reply_json(c, 200, o);
}

void api_renew_lease(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    json_t *d = json_object_get(body, "duration");
    if (d && !json_is_integer(d)) {
        reply_error(c, 400, "Bad Request: duration must be an integer number of seconds");
        return;
    }
    StackRef ref = ctx_stack(c);
    char *token = NULL;
    long long expires = 0;
    ApiError e;
    if (update_renew(c->db, &ref, c->update_id, c->update_token, c->cfg->lease_ttl, &token, &expires, &e))
        reply_json(c, 200, json_pack("{s:s, s:I}", "token", token, "tokenExpiration", (json_int_t)expires));
    else
        reply_api_error(c, &e);
    if (token)
        OPENSSL_cleanse(token, strlen(token));
    free(token);
}

void api_complete_update(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    UpdateStatus st = update_status_parse(json_string_value(json_object_get(body, "status")));
    if (st != UPDATE_SUCCEEDED && st != UPDATE_FAILED && st != UPDATE_CANCELLED) {
        reply_error(c, 400, "Bad Request: status must be succeeded, failed or cancelled");
        return;
    }
    StackRef ref = ctx_stack(c);
    ApiError e;
    if (update_complete(c->db, &ref, c->update_id, c->update_token, st, &c->audit, &e))
        reply_ok(c);
    else
        reply_api_error(c, &e);
}

void api_cancel_update(Ctx *c)
{
    const char *uid = c->captures[4];
    if (!name_valid_uuid(uid)) {
        reply_error(c, 404, MSG_UNKNOWN_UPDATE);
        return;
    }
    StackRef ref = ctx_stack(c);
    ApiError e;
    if (update_cancel(c->db, &ref, uid, c->actor, c->role >= ROLE_ADMIN, &c->audit, &e))
        reply_ok(c);
    else
        reply_api_error(c, &e);
}
