/* api-stacks.c - stacks: create, read, delete, tags, rename, export and import. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "jspan.h"
#include "history.h"
#include "names.h"

void api_project_exists(Ctx *c)
{
    if (!name_valid_org(c->captures[0]) || !name_valid_project(c->captures[1])) {
        reply_error(c, 400, "Bad Request: invalid organization or project name");
        return;
    }
    /* A scoped token sees a project only through a stack of it inside its scope: out of scope
     * answers as if the project did not exist. */
    PGresult *r = stack_names_of_project(c->db, c->captures[0], c->captures[1], c->scope != NULL);
    if (!r) {
        reply_internal(c);
        return;
    }
    bool found = false;
    for (int i = 0; i < PQntuples(r) && !found; i++)
        found = auth_scope_allows(c, c->captures[0], c->captures[1], PQgetvalue(r, i, 0));
    PQclear(r);
    if (found)
        reply_ok(c);
    else
        reply_error(c, 404, "Not Found: project '%s/%s' has no stacks", c->captures[0], c->captures[1]);
}

/* A tags object (validated), as text (new); NULL after replying 400. */
static char *tags_text(Ctx *c, json_t *tags)
{
    char why[120];
    if (!names_tags_valid(tags, why, sizeof(why))) {
        reply_error(c, 400, "Bad Request: %s", why);
        return NULL;
    }
    return json_dumps(tags, JSON_COMPACT);
}

void api_create_stack(Ctx *c)
{
    const char *org = c->captures[0], *project = c->captures[1];
    if (!name_valid_org(org) || !name_valid_project(project)) {
        reply_error(c, 400, "Bad Request: invalid organization or project name");
        return;
    }
    /* The initial state, if any, is kept as the bytes sent (a tree would change its numbers); the
     * rest of the body is parsed with the state replaced by null. */
    const char *b = (const char *)c->body;
    size_t ss = 0, se = 0;
    bool has_state = b && jspan_validate(b, c->body_len) && jspan_member(b, c->body_len, "state", &ss, &se) &&
                     !jspan_is_null(b + ss, se - ss);
    if (has_state) {
        Buf rest;
        buf_init(&rest);
        buf_append(&rest, b, ss);
        buf_puts(&rest, "null");
        buf_append(&rest, b + se, c->body_len - se);
        c->json = json_loadb(rest.data, rest.len, JSON_REJECT_DUPLICATES, NULL);
        buf_free(&rest);
    }
    json_t *body = ctx_json(c);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "stackName"));
    c->audit.stack = name;
    if (!name || !name_valid_stack(name)) {
        reply_error(c, 400, "Bad Request: invalid stack name");
        return;
    }
    if (!auth_scope_allows(c, org, project, name)) {
        reply_error(c, 403, "Forbidden: stack '%s/%s/%s' is outside the scope of token '%s'", org, project, name,
                    c->actor);
        return;
    }
    json_t *tags = json_object_get(body, "tags");
    char *tagtext = json_is_null(tags) || !tags ? xstrdup("{}") : tags_text(c, tags);
    if (!tagtext)
        return;
    if (has_state && (b[ss] != '{' || !state_doc_valid(b + ss, se - ss))) {
        reply_error(c, 400, "Bad Request: state must be an untyped deployment with version 1..4");
        free(tagtext);
        return;
    }
    StackRef ref = {org, project, name};
    ApiError e;
    if (stack_create(c->db, c->w->master_key, &ref, tagtext, has_state ? b + ss : NULL, se - ss, &c->audit, &e))
        reply_json(c, 200, json_pack("{s:[]}", "messages"));
    else
        reply_api_error(c, &e);
    free(tagtext);
}

static json_t *stack_json(const Stack *s)
{
    json_t *tags = json_loads(s->tags, 0, NULL);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:i}", "id", s->id, "orgName", s->org, "projectName", s->project,
                  "stackName", s->name, "activeUpdate", s->active_update[0] ? s->active_update : s->last_update, "tags",
                  tags ? tags : json_object(), "version", s->version);
    if (s->active_update[0])
        json_object_set_new(o, "currentOperation",
                            json_pack("{s:s, s:s, s:I}", "kind", s->active_kind, "author", "", "started",
                                      (json_int_t)s->active_started));
    return o;
}

void api_get_stack(Ctx *c)
{
    StackRef ref = ctx_stack(c);
    ApiError e;
    Stack *s = stack_get(c->db, &ref, &e);
    if (s)
        reply_json(c, 200, stack_json(s));
    else
        reply_api_error(c, &e);
    stack_free(s);
}

static void render(Ctx *c, bool ok, const ApiError *e)
{
    if (ok)
        reply_ok(c);
    else
        reply_api_error(c, e);
}

void api_delete_stack(Ctx *c)
{
    char *force = ctx_query(c, "force");
    bool forced = force && !strcmp(force, "true");
    free(force);
    StackRef ref = ctx_stack(c);
    ApiError e;
    render(c, stack_delete(c->db, &ref, forced, &c->audit, &e), &e);
}

void api_update_tags(Ctx *c)
{
    json_t *body = ctx_json(c);
    char *text = body ? tags_text(c, body) : NULL;
    if (!text)
        return;
    StackRef ref = ctx_stack(c);
    ApiError e;
    render(c, stack_set_tags(c->db, &ref, text, &c->audit, &e), &e);
    free(text);
}

void api_rename_stack(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    const char *new_name = json_string_value(json_object_get(body, "newName"));
    const char *new_project = json_string_value(json_object_get(body, "newProject"));
    if (!new_name || !name_valid_stack(new_name)) {
        reply_error(c, 400, "Bad Request: invalid new stack name");
        return;
    }
    if (new_project && *new_project && !name_valid_project(new_project)) {
        reply_error(c, 400, "Bad Request: invalid new project name");
        return;
    }
    if (!auth_scope_allows(c, c->captures[0], new_project && *new_project ? new_project : c->captures[1], new_name)) {
        reply_error(c, 403, "Forbidden: the new name is outside the scope of token '%s'", c->actor);
        return;
    }
    StackRef ref = ctx_stack(c);
    ApiError e;
    render(c, stack_rename(c->db, &ref, new_project, new_name, &c->audit, &e), &e);
}

static void export(Ctx *c, int version)
{
    StackRef ref = ctx_stack(c);
    Export x;
    ApiError e;
    if (stack_export(c->db, &ref, version, c->accepts_gzip, &x, &e)) {
        reply_take(c, 200, x.data, x.len, x.gzip); /* a state can be large: not copied again */
    } else {
        reply_api_error(c, &e);
        free(x.data);
    }
}

void api_export(Ctx *c)
{
    export(c, 0);
}

void api_export_version(Ctx *c)
{
    long long version = 0;
    if (!parse_int64(c->captures[3], -1, 1, 1000000000, &version)) {
        reply_error(c, 400, "Bad Request: the version must be a positive integer");
        return;
    }
    export(c, (int)version);
}

void api_import(Ctx *c)
{
    /* Not a tree: the state is stored as the exact bytes received, numbers of any length, \u0000
     * and all, as checkpoints are. */
    const char *b = (const char *)c->body;
    if (!b || !jspan_validate(b, c->body_len) || b[strspn(b, " \t\r\n")] != '{') {
        reply_error(c, 400, "Bad Request: the body must be a JSON object");
        return;
    }
    if (!state_doc_valid(b, c->body_len)) {
        reply_error(c, 400, "Bad Request: the body must be an untyped deployment with version 1..4");
        return;
    }
    StackRef ref = ctx_stack(c);
    char uid[37];
    ApiError e;
    if (stack_import(c->db, &ref, b, c->body_len, &c->audit, uid, &e))
        reply_json(c, 200, json_pack("{s:s}", "updateId", uid));
    else
        reply_api_error(c, &e);
}
