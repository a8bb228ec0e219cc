/* api-user.c - identity, default organization, capabilities and the stack listing. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "history.h"
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

void api_list_stacks(Ctx *c)
{
    char *project = ctx_query(c, "project"), *org = ctx_query(c, "organization");
    char *tag_name = ctx_query(c, "tagName"), *tag_value = ctx_query(c, "tagValue");
    char *cont = ctx_query(c, "continuationToken"), *page = ctx_query(c, "pageSize");
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
    StackQuery q = {project && *project ? project : NULL,
                    org && *org ? org : NULL,
                    tag_name && *tag_name ? tag_name : NULL,
                    tag_value && *tag_value ? tag_value : NULL,
                    cont,
                    c->scope,
                    limit};
    Buf out;
    buf_init(&out);
    ApiError e;
    if (stack_list(c->db, &q, &out, &e))
        reply_bytes(c, 200, out.data, out.len, false);
    else
        reply_api_error(c, &e);
    buf_free(&out);
out:
    free(project);
    free(org);
    free(tag_name);
    free(tag_value);
    free(cont);
    free(page);
}
