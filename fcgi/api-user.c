/* api-user.c - identity, default organization, capabilities and the stack listing. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "names.h"

void api_get_user(Ctx *c)
{
    json_t *orgs = json_pack("[{s:s, s:s, s:s}]", "githubLogin", c->cfg->org, "name", c->cfg->org, "avatarUrl", "");
    reply_json(c, 200,
               json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:[], s:b, s:{s:s}}", "id", c->actor, "githubLogin", c->actor,
                         "name", c->actor, "email", "", "avatarUrl", "", "organizations", orgs, "identities",
                         "siteAdmin", 0, "tokenInfo", "name", c->actor));
}

void api_get_default_org(Ctx *c)
{
    reply_json(c, 200, json_pack("{s:s, s:[]}", "GitHubLogin", c->cfg->org, "Messages"));
}

void api_get_capabilities(Ctx *c)
{
    json_t *caps = json_array();
    json_array_append_new(caps, json_pack("{s:s}", "capability", "batch-encrypt"));
    json_array_append_new(caps, json_pack("{s:s, s:i, s:{s:i}}", "capability", "deployment-schema-version", "version",
                                          1, "configuration", "version", 4));
    if (c->cfg->checkpoint_cutoff_bytes > 0)
        json_array_append_new(caps, json_pack("{s:s, s:i, s:{s:I}}", "capability", "delta-checkpoint-uploads-v2",
                                              "version", 2, "configuration", "checkpointCutoffSizeBytes",
                                              (json_int_t)c->cfg->checkpoint_cutoff_bytes));
    reply_json(c, 200, json_pack("{s:o}", "capabilities", caps));
}

/* Continuation tokens are the hex of "org\x1fproject\x1fstack" of the last stack returned. */
static char *token_encode(const char *org, const char *project, const char *name)
{
    char *raw = xasprintf("%s\x1f%s\x1f%s", org, project, name);
    size_t n = strlen(raw);
    char *hex = xmalloc(2 * n + 1);
    hex_encode((const unsigned char *)raw, n, hex);
    free(raw);
    return hex;
}

static bool token_decode(const char *tok, char **org, char **project, char **name)
{
    size_t n = strlen(tok);
    if (n == 0 || n % 2 || n > 1024)
        return false;
    char *raw = xmalloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(tok + 2 * i, "%2x", &v) != 1) {
            free(raw);
            return false;
        }
        raw[i] = (char)v;
    }
    raw[n / 2] = '\0';
    char *a = raw, *b = strchr(a, '\x1f'), *d = b ? strchr(b + 1, '\x1f') : NULL;
    bool ok = b && d;
    if (ok) {
        *b = *d = '\0';
        ok = name_valid_org(a) && name_valid_project(b + 1) && name_valid_stack(d + 1);
    }
    if (ok) {
        *org = xstrdup(a);
        *project = xstrdup(b + 1);
        *name = xstrdup(d + 1);
    }
    free(raw);
    return ok;
}

/* A token scope glob as a LIKE pattern (new), or NULL for everything. */
static char *scope_like(const char *glob)
{
    if (!glob)
        return NULL;
    Buf b;
    buf_init(&b);
    for (const char *p = glob; *p; p++) {
        if (*p == '*')
            buf_puts(&b, "%");
        else if (*p == '?')
            buf_puts(&b, "_");
        else if (*p == '%' || *p == '_' || *p == '\\') {
            buf_puts(&b, "\\");
            buf_append(&b, p, 1);
        } else {
            buf_append(&b, p, 1);
        }
    }
    return buf_steal(&b, NULL);
}

void api_list_stacks(Ctx *c)
{
    char *project = ctx_query(c, "project"), *org = ctx_query(c, "organization");
    char *tag_name = ctx_query(c, "tagName"), *tag_value = ctx_query(c, "tagValue");
    char *cont = ctx_query(c, "continuationToken"), *page = ctx_query(c, "pageSize");
    char *a_org = NULL, *a_proj = NULL, *a_name = NULL, *like = NULL;
    int limit = c->cfg->list_page_size;
    if (page) {
        long long v = 0;
        if (!parse_int64(page, -1, 1, 1000, &v)) {
            reply_error(c, 400, "Bad Request: pageSize must be between 1 and 1000");
            goto out;
        }
        limit = (int)v;
    }
    if (project && *project && !name_valid_project(project)) {
        reply_error(c, 400, "Bad Request: invalid project name");
        goto out;
    }
    if (org && *org && !name_valid_org(org)) {
        reply_error(c, 400, "Bad Request: invalid organization name");
        goto out;
    }
    if (cont && *cont && !token_decode(cont, &a_org, &a_proj, &a_name)) {
        reply_error(c, 400, "Bad Request: invalid continuationToken");
        goto out;
    }
    char lbuf[16];
    snprintf(lbuf, sizeof(lbuf), "%d", limit + 1);
    like = scope_like(c->scope);
    DbParam p[] = {DB_TEXT(project && *project ? project : NULL), DB_TEXT(org && *org ? org : NULL),
                   DB_TEXT(tag_name && *tag_name ? tag_name : NULL), DB_TEXT(tag_value && *tag_value ? tag_value : NULL),
                   DB_TEXT(a_org), DB_TEXT(a_proj), DB_TEXT(a_name), DB_TEXT(lbuf),
                   DB_TEXT(like)};
    PGresult *r = db_exec(
        c->db,
        "SELECT s.id, s.org, s.project, s.name, s.resource_count, "
        "coalesce(extract(epoch from u.ended_at)::bigint, 0) "
        "FROM extension_pulumi_state_stacks s LEFT JOIN extension_pulumi_state_updates u ON u.id = s.last_update "
        "WHERE ($1::text IS NULL OR s.project = $1) AND ($2::text IS NULL OR s.org = $2) "
        "AND ($3::text IS NULL OR s.tags ? $3) AND ($4::text IS NULL OR s.tags ->> $3 = $4) "
        "AND ($5::text IS NULL OR (s.org, s.project, s.name) > ($5, $6, $7)) "
        "AND ($9::text IS NULL OR s.org || '/' || s.project || '/' || s.name LIKE $9) "
        "ORDER BY s.org, s.project, s.name LIMIT $8::int",
        9, p, false);
    if (!r) {
        reply_internal(c);
        goto out;
    }
    int n = PQntuples(r);
    json_t *stacks = json_array();
    for (int i = 0; i < n && i < limit; i++) {
        json_t *st = json_pack("{s:s, s:s, s:s, s:s}", "id", PQgetvalue(r, i, 0), "orgName", PQgetvalue(r, i, 1),
                               "projectName", PQgetvalue(r, i, 2), "stackName", PQgetvalue(r, i, 3));
        long long last = atoll(PQgetvalue(r, i, 5));
        if (last)
            json_object_set_new(st, "lastUpdate", json_integer(last));
        json_object_set_new(st, "resourceCount", json_integer(atoi(PQgetvalue(r, i, 4))));
        json_array_append_new(stacks, st);
    }
    json_t *resp = json_pack("{s:o}", "stacks", stacks);
    if (n > limit) {
        char *tok = token_encode(PQgetvalue(r, limit - 1, 1), PQgetvalue(r, limit - 1, 2), PQgetvalue(r, limit - 1, 3));
        json_object_set_new(resp, "continuationToken", json_string(tok));
        free(tok);
    } else {
        json_object_set_new(resp, "continuationToken", json_null());
    }
    PQclear(r);
    reply_json(c, 200, resp);
out:
    free(project);
    free(org);
    free(tag_name);
    free(tag_value);
    free(cont);
    free(page);
    free(a_org);
    free(a_proj);
    free(a_name);
    free(like);
}
