/* deploy.c - the deployment queue: queued by the API, claimed, run and finished by agents. */
#include "deploy.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "names.h"
#include "token.h"
#include "update.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define LOG_PAGE 500

/* A member looked up without regard to case (the CLI sends repoUrl, the docs show repoURL). */
static json_t *get_ci(json_t *obj, const char *key)
{
    const char *k;
    json_t *v;
    if (!json_is_object(obj))
        return NULL;
    json_object_foreach(obj, k, v)
    {
        if (!strcasecmp(k, key))
            return json_is_null(v) ? NULL : v;
    }
    return NULL;
}

static const char *str_ci(json_t *obj, const char *key)
{
    return json_string_value(get_ci(obj, key));
}

bool deploy_url_allowed(const Config *cfg, const char *url)
{
    if (!url || !*url || strlen(url) > 2000 || strpbrk(url, " \t\r\n'\"\\`$;|&<>"))
        return false;
    if (!strncmp(url, "https://", 8) || !strncmp(url, "ssh://", 6))
        return true;
    if (!strncmp(url, "file://", 7))
        return cfg->deploy_allow_file_urls;
    /* scp-like "git@host:path" */
    const char *at = strchr(url, '@'), *colon = strchr(url, ':');
    return at && colon && at < colon && !strstr(url, "://") && url[0] != '-';
}

static bool operation_valid(const char *op)
{
    return op && (!strcmp(op, "update") || !strcmp(op, "preview") || !strcmp(op, "refresh") || !strcmp(op, "destroy"));
}

/* The environment of a request: the public list (names, secret or not) and the sealed values. */
static bool read_env(json_t *vars, json_t *listing, json_t *values, ApiError *e)
{
    const char *k;
    json_t *v;
    if (vars && !json_is_object(vars))
        return api_fail(e, 400, "Bad Request: environmentVariables must be an object");
    json_object_foreach(vars, k, v)
    {
        if (!*k || strlen(k) > 200 || strchr(k, '=') ||
            k[strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")])
            return api_fail(e, 400, "Bad Request: invalid environment variable name '%.60s'", k);
        bool secret = false;
        const char *value = NULL;
        if (json_is_string(v)) {
            value = json_string_value(v);
        } else if (json_is_object(v) && json_is_string(json_object_get(v, "secret"))) {
            value = json_string_value(json_object_get(v, "secret"));
            secret = true;
        } else if (json_is_object(v) && json_is_string(json_object_get(v, "value"))) {
            value = json_string_value(json_object_get(v, "value"));
            secret = json_is_true(json_object_get(v, "isSecret"));
        } else {
            return api_fail(e, 400, "Bad Request: environment variable '%.60s' must be a string or {\"secret\": ...}",
                            k);
        }
        json_array_append_new(listing, json_pack("{s:s, s:b}", "name", k, "secret", secret));
        json_object_set_new(values, k, json_string(value));
    }
    return true;
}

static bool create_from(Db *db, const Config *cfg, const unsigned char *master, const StackRef *ref, json_t *body,
                        const char *actor, const char *initiator, Audit *a, Buf *out, ApiError *e)
{
    const char *op = json_string_value(json_object_get(body, "operation"));
    json_t *oc = get_ci(body, "operationContext");
    const char *inner_op = str_ci(oc, "operation");
    if (!op && inner_op && *inner_op)
        return api_fail(e, 400,
                        "Bad Request: operation belongs at the top level of the request, not in "
                        "operationContext");
    if (!operation_valid(op))
        return api_fail(e, 400, "Bad Request: operation must be update, preview, refresh or destroy");
    json_t *git = get_ci(get_ci(body, "sourceContext"), "git");
    if (!git)
        git = get_ci(body, "source");
    const char *url = str_ci(git, "repoUrl"), *branch = str_ci(git, "branch"), *commit = str_ci(git, "commit");
    const char *dir = str_ci(git, "repoDir");
    if (!url || !*url)
        return api_fail(e, 400,
                        "Bad Request: the deployment has no source: give sourceContext.git.repoUrl "
                        "(or source.repoURL), or save deployment settings with one first");
    if (!deploy_url_allowed(cfg, url))
        return api_fail(e, 400, "Bad Request: the repository URL is not allowed (https://, ssh:// or git@host:path%s)",
                        cfg->deploy_allow_file_urls ? ", file://" : "");
    if (branch && *branch && commit && *commit)
        return api_fail(e, 400, "Bad Request: give a branch or a commit, not both");
    if ((branch && (strlen(branch) > 250 || branch[0] == '-')) ||
        (commit && (strlen(commit) > 64 || commit[0] == '-')) ||
        (dir && (strlen(dir) > 500 || strstr(dir, "..") || dir[0] == '/')))
        return api_fail(e, 400, "Bad Request: invalid branch, commit or repoDir");
    json_t *pre = get_ci(oc, "preRunCommands");
    if (pre && !json_is_array(pre))
        return api_fail(e, 400, "Bad Request: preRunCommands must be an array of strings");
    size_t i;
    json_t *c;
    json_array_foreach(pre, i, c)
    {
        if (!json_is_string(c))
            return api_fail(e, 400, "Bad Request: preRunCommands must be an array of strings");
    }
    json_t *vars = get_ci(oc, "environmentVariables");
    if (!vars)
        vars = get_ci(body, "environmentVariables");
    json_t *auth = get_ci(git, "gitAuth");
    if (auth && !json_is_object(auth))
        return api_fail(e, 400, "Bad Request: gitAuth must be an object");
    json_t *listing = json_array(), *values = json_object();
    bool ok = false;
    char *source = NULL, *bundle = NULL, *sealed = NULL;
    Stack *s = NULL;
    unsigned char key[CRYPTO_KEY_LEN];
    if (!read_env(vars, listing, values, e))
        goto out;
    json_t *src = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O}", "repoURL", url, "branch", branch ? branch : "", "commit",
                            commit ? commit : "", "repoDir", dir ? dir : "", "preRunCommands", pre ? pre : json_array(),
                            "environmentVariables", listing);
    if (!pre)
        json_decref(json_object_get(src, "preRunCommands"));
    source = json_dumps(src, JSON_COMPACT);
    json_decref(src);
    json_t *secret = json_pack("{s:O}", "env", values);
    if (auth)
        json_object_set(secret, "gitAuth", auth);
    bundle = json_dumps(secret, JSON_COMPACT);
    json_decref(secret);
    if (!(s = stack_get_locked(db, ref, e)))
        goto out;
    if (!stack_data_key(s, master, NULL, key, e))
        goto out;
    sealed = crypto_seal(key, s->id, strlen(s->id), (const unsigned char *)bundle, strlen(bundle));
    OPENSSL_cleanse(key, sizeof(key));
    if (!sealed) {
        api_internal(e);
        goto out;
    }
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(op), DB_TEXT(source), DB_TEXT(sealed), DB_TEXT(actor), DB_TEXT(initiator)};
    PGresult *r = db_exec(db,
                          "INSERT INTO extension_pulumi_state_deployments (stack_id, version, operation, source, "
                          "env_sealed, requested_by, initiator) SELECT $1, coalesce(max(version), 0) + 1, $2, "
                          "$3::jsonb, $4, $5, $6 FROM extension_pulumi_state_deployments WHERE stack_id = $1 "
                          "RETURNING id, version",
                          6, p, false);
    if (!r) {
        api_internal(e);
        goto out;
    }
    char id[37];
    snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
    int version = atoi(PQgetvalue(r, 0, 1));
    PQclear(r);
    if (!db_notify(db, DEPLOY_CHANNEL_QUEUE, id) || !audit_commit(db, a)) {
        api_internal(e);
        goto out;
    }
    buf_printf(out, "{\"id\":\"%s\",\"consoleUrl\":\"%s/%s/%s/%s/deployments/%s\",\"version\":%d}", id, cfg->public_url,
               s->org, s->project, s->name, id, version);
    ok = true;
out:
    db_rollback(db);
    stack_free(s);
    json_decref(listing);
    json_decref(values);
    free(source);
    if (bundle)
        OPENSSL_cleanse(bundle, strlen(bundle));
    free(bundle);
    free(sealed);
    return ok;
}

#define DEPLOY_COLUMNS                                                                                                 \
    "d.id, " TS("d.created_at") ", " TS(                                                                               \
        "d.modified_at") ", d.status, d.version, "                                                                     \
                         "(SELECT max(version) FROM extension_pulumi_state_deployments x WHERE x.stack_id = "          \
                         "d.stack_id), "                                                                               \
                         "coalesce(d.requested_by, ''), d.operation, coalesce(d.initiator, ''), coalesce(" TS(         \
                             "d.started_at") ", ''), coalesce(" TS("d.ended_at") ", ''), coalesce(d.exit_code::text, " \
                                                                                 "''), coalesce(d.reason, ''), "       \
                                                                                 "d.source::text, coalesce(d.agent, "  \
                                                                                 "'') "

/* The JSON of one deployment row (columns DEPLOY_COLUMNS). Never a secret: the source keeps names. */
static json_t *deployment_json(PGresult *r, int i, const StackRef *ref)
{
    const char *status = PQgetvalue(r, i, 3);
    const char *started = PQgetvalue(r, i, 9), *ended = PQgetvalue(r, i, 10);
    json_t *src = json_loads(PQgetvalue(r, i, 13), 0, NULL);
    const char *job = !strcmp(status, "queued") ? "not-started" : !strcmp(status, "cancelled") ? "failed" : status;
    json_t *steps = json_array();
    json_array_append_new(steps,
                          json_pack("{s:s, s:s, s:s, s:s}", "name", "pulumi", "status", job, "started",
                                    *started ? started : "0001-01-01T00:00:00Z", "lastUpdated", PQgetvalue(r, i, 2)));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:{s:s, s:s, s:s}, s:s, s:s, s:b, s:s, s:s}", "id",
                          PQgetvalue(r, i, 0), "created", PQgetvalue(r, i, 1), "modified", PQgetvalue(r, i, 2),
                          "status", status, "version", atoi(PQgetvalue(r, i, 4)), "latestVersion",
                          atoi(PQgetvalue(r, i, 5)), "requestedBy", "name", PQgetvalue(r, i, 6), "githubLogin",
                          PQgetvalue(r, i, 6), "avatarUrl", "", "pulumiOperation", PQgetvalue(r, i, 7), "initiator",
                          PQgetvalue(r, i, 8), "paused", 0, "projectName", ref->project, "stackName", ref->name);
    json_object_set_new(o, "operation", json_string(PQgetvalue(r, i, 7))); /* the original design's name */
    json_object_set_new(o, "startedAt", *started ? json_string(started) : json_null());
    json_object_set_new(o, "completedAt", *ended ? json_string(ended) : json_null());
    json_object_set_new(o, "exitCode", *PQgetvalue(r, i, 11) ? json_integer(atoi(PQgetvalue(r, i, 11))) : json_null());
    if (*PQgetvalue(r, i, 12))
        json_object_set_new(o, "reason", json_string(PQgetvalue(r, i, 12)));
    if (*PQgetvalue(r, i, 14))
        json_object_set_new(o, "agent", json_string(PQgetvalue(r, i, 14)));
    json_object_set_new(o, "jobs",
                        json_pack("[{s:s, s:s, s:s, s:o}]", "status", job, "started",
                                  *started ? started : "0001-01-01T00:00:00Z", "lastUpdated", PQgetvalue(r, i, 2),
                                  "steps", steps));
    json_t *cfgj = json_object();
    if (src) {
        json_object_set(cfgj, "environmentVariables", json_object_get(src, "environmentVariables"));
        json_t *git = json_pack("{s:O, s:O, s:O, s:O}", "repoURL", json_object_get(src, "repoURL"), "branch",
                                json_object_get(src, "branch"), "commit", json_object_get(src, "commit"), "repoDir",
                                json_object_get(src, "repoDir"));
        json_object_set_new(cfgj, "source", json_pack("{s:o}", "git", git));
    }
    json_object_set_new(o, "configuration", cfgj);
    json_decref(src);
    return o;
}

/* The row of deployment id (or version) of the stack, with DEPLOY_COLUMNS; NULL with e filled. */
static PGresult *find(Db *db, const StackRef *ref, const char *id, long long version, ApiError *e)
{
    if (id && !name_valid_uuid(id)) {
        api_fail(e, 404, "Not Found: unknown deployment");
        return NULL;
    }
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return NULL;
    char vbuf[24];
    snprintf(vbuf, sizeof(vbuf), "%lld", version);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(id), DB_TEXT(vbuf)};
    PGresult *r = db_exec(db,
                          "SELECT " DEPLOY_COLUMNS "FROM extension_pulumi_state_deployments d WHERE d.stack_id = $1 "
                          "AND ($2::uuid IS NULL OR d.id = $2::uuid) AND ($2::uuid IS NOT NULL OR d.version = $3::int)",
                          3, p, false);
    stack_free(s);
    if (!r) {
        api_internal(e);
        return NULL;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        api_fail(e, 404, "Not Found: deployment not found on this stack");
        return NULL;
    }
    return r;
}

/* find, keeping only the deployment's id. */
static bool find_id(Db *db, const StackRef *ref, const char *id, char did[37], ApiError *e)
{
    PGresult *d = find(db, ref, id, 0, e);
    if (!d)
        return false;
    snprintf(did, 37, "%s", PQgetvalue(d, 0, 0));
    PQclear(d);
    return true;
}

bool deploy_get(Db *db, const Config *cfg, const StackRef *ref, const char *id, long long version, Buf *out,
                ApiError *e)
{
    (void)cfg;
    PGresult *r = find(db, ref, id, version, e);
    if (!r)
        return false;
    json_t *o = deployment_json(r, 0, ref);
    PQclear(r);
    return api_json_into(o, out, e);
}

bool deploy_list(Db *db, const Config *cfg, const StackRef *ref, long page, long page_size, Buf *out, ApiError *e)
{
    (void)cfg;
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    char lbuf[16], obuf[24];
    snprintf(lbuf, sizeof(lbuf), "%ld", page_size);
    snprintf(obuf, sizeof(obuf), "%ld", (page - 1) * page_size);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(lbuf), DB_TEXT(obuf)};
    PGresult *r = db_exec(db,
                          "SELECT " DEPLOY_COLUMNS ", count(*) OVER () FROM extension_pulumi_state_deployments d "
                          "WHERE d.stack_id = $1 ORDER BY d.version DESC LIMIT $2::int OFFSET $3::bigint",
                          3, p, false);
    stack_free(s);
    if (!r)
        return api_internal(e);
    json_t *list = json_array();
    int total = PQntuples(r) ? atoi(PQgetvalue(r, 0, 15)) : 0;
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(list, deployment_json(r, i, ref));
    PQclear(r);
    return api_json_into(
        json_pack("{s:o, s:i, s:i}", "deployments", list, "itemsPerPage", (int)page_size, "total", total), out, e);
}

static bool terminal(const char *status)
{
    return strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
}

bool deploy_logs(Db *db, const StackRef *ref, const char *id, const char *token, Buf *out, ApiError *e)
{
    long long after = 0;
    if (token && *token && !parse_int64(token, -1, 0, 1LL << 62, &after))
        return api_fail(e, 400, "Bad Request: invalid continuationToken");
    PGresult *d = find(db, ref, id, 0, e);
    if (!d)
        return false;
    bool done = terminal(PQgetvalue(d, 0, 3));
    char abuf[24], lbuf[16];
    snprintf(abuf, sizeof(abuf), "%lld", after);
    snprintf(lbuf, sizeof(lbuf), "%d", LOG_PAGE + 1);
    char did[37];
    snprintf(did, sizeof(did), "%s", PQgetvalue(d, 0, 0));
    DbParam p[] = {DB_TEXT(did), DB_TEXT(abuf), DB_TEXT(lbuf)};
    PQclear(d);
    PGresult *r = db_exec(
        db,
        "SELECT line_no, header, " TS(
            "created_at") ", line FROM "
                          "extension_pulumi_state_deployment_logs WHERE deployment_id = $1 AND line_no > $2::bigint "
                          "ORDER BY line_no LIMIT $3::int",
        3, p, false);
    if (!r)
        return api_internal(e);
    int n = PQntuples(r), shown = n > LOG_PAGE ? LOG_PAGE : n;
    json_t *lines = json_array();
    long long last = after;
    for (int i = 0; i < shown; i++) {
        json_t *l = json_pack("{s:s, s:s}", "timestamp", PQgetvalue(r, i, 2), "line", PQgetvalue(r, i, 3));
        if (!PQgetisnull(r, i, 1))
            json_object_set_new(l, "header", json_string(PQgetvalue(r, i, 1)));
        json_array_append_new(lines, l);
        last = atoll(PQgetvalue(r, i, 0));
    }
    PQclear(r);
    char next[24] = "";
    if (!(done && n <= LOG_PAGE))
        snprintf(next, sizeof(next), "%lld", last);
    return api_json_into(json_pack("{s:o, s:s}", "lines", lines, "nextToken", next), out, e);
}

bool deploy_log_step(Db *db, const StackRef *ref, const char *id, long step, long offset, long count, Buf *out,
                     ApiError *e)
{
    char did[37];
    if (!find_id(db, ref, id, did, e))
        return false;
    char sbuf[24], obuf[24], cbuf[24];
    snprintf(sbuf, sizeof(sbuf), "%ld", step);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    snprintf(cbuf, sizeof(cbuf), "%ld", count + 1);
    DbParam p[] = {DB_TEXT(did), DB_TEXT(sbuf), DB_TEXT(obuf), DB_TEXT(cbuf)};
    /* Steps are the runs of lines after each header row, numbered from 0. */
    PGresult *r = db_exec(
        db,
        "WITH h AS (SELECT line_no, header, row_number() OVER (ORDER BY line_no) - 1 AS step FROM "
        "extension_pulumi_state_deployment_logs WHERE deployment_id = $1 AND header IS NOT NULL), "
        "b AS (SELECT h.line_no AS first, h.header, (SELECT min(x.line_no) FROM h x WHERE x.line_no "
        "> h.line_no) AS next FROM h WHERE h.step = $2::bigint) "
        "SELECT b.header, " TS(
            "l.created_at") ", l.line FROM b LEFT JOIN "
                            "extension_pulumi_state_deployment_logs l ON l.deployment_id = $1 AND l.header IS NULL AND "
                            "l.line_no > b.first AND (b.next IS NULL OR l.line_no < b.next) ORDER BY l.line_no "
                            "OFFSET $3::bigint LIMIT $4::int",
        4, p, false);
    if (!r)
        return api_internal(e);
    PGresult *name = NULL;
    if (PQntuples(r) == 0) {
        /* Past the end of the step, or no such step: tell them apart by the header. */
        name = db_exec(db,
                       "SELECT header FROM extension_pulumi_state_deployment_logs WHERE deployment_id = $1 AND header "
                       "IS NOT NULL ORDER BY line_no OFFSET $2::bigint LIMIT 1",
                       2, p, false);
        if (!name || PQntuples(name) != 1) {
            PQclear(r);
            PQclear(name);
            return name ? api_fail(e, 404, "Not Found: no such step") : api_internal(e);
        }
    }
    json_t *lines = json_array();
    int n = PQntuples(r), shown = n > count ? (int)count : n;
    for (int i = 0; i < shown; i++)
        if (!PQgetisnull(r, i, 2))
            json_array_append_new(
                lines, json_pack("{s:s, s:s}", "timestamp", PQgetvalue(r, i, 1), "line", PQgetvalue(r, i, 2)));
    json_t *o = json_pack("{s:s, s:o}", "name", name ? PQgetvalue(name, 0, 0) : PQgetvalue(r, 0, 0), "lines", lines);
    if (n > count)
        json_object_set_new(o, "nextOffset", json_integer(offset + count));
    PQclear(r);
    PQclear(name);
    return api_json_into(o, out, e);
}

bool deploy_updates(Db *db, const StackRef *ref, const char *id, Buf *out, ApiError *e)
{
    char did[37];
    if (!find_id(db, ref, id, did, e))
        return false;
    DbParam p[] = {DB_TEXT(did)};
    /* The updates its CLI ran: those created with the token minted for it. */
    PGresult *r =
        db_exec(db,
                "SELECT u.id, coalesce(u.result_version, coalesce(u.base_version, s.version) + 1), "
                "s.version FROM extension_pulumi_state_deployments d JOIN extension_pulumi_state_updates u "
                "ON u.stack_id = d.stack_id AND u.created_by = d.token_name AND (NOT u.dry_run OR d.operation = "
                "'preview') JOIN "
                "extension_pulumi_state_stacks s ON s.id = d.stack_id WHERE d.id = $1 ORDER BY u.created_at",
                1, p, false);
    if (!r)
        return api_internal(e);
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(list, json_pack("{s:s, s:i, s:i}", "updateID", PQgetvalue(r, i, 0), "version",
                                              atoi(PQgetvalue(r, i, 1)), "latestVersion", atoi(PQgetvalue(r, i, 2))));
    PQclear(r);
    return api_json_into(list, out, e);
}

bool deploy_cancel(Db *db, const StackRef *ref, const char *id, Audit *a, ApiError *e)
{
    char did[37];
    if (!find_id(db, ref, id, did, e))
        return false;
    DbParam p[] = {DB_TEXT(did)};
    bool ok = false;
    PGresult *r = NULL;
    if (!db_begin(db) ||
        !(r = db_exec(db,
                      "UPDATE extension_pulumi_state_deployments SET status = CASE WHEN status = 'queued' THEN "
                      "'cancelled' ELSE status END, ended_at = CASE WHEN status = 'queued' THEN now() ELSE ended_at "
                      "END, reason = CASE WHEN status = 'queued' THEN 'cancelled before it started' ELSE reason END, "
                      "cancel_requested = cancel_requested OR status = 'running', modified_at = now() WHERE id = $1 "
                      "RETURNING status",
                      1, p, false)))
        api_internal(e);
    else if (!strcmp(PQgetvalue(r, 0, 0), "running") && !db_notify(db, DEPLOY_CHANNEL_CANCEL, p[0].value))
        api_internal(e);
    else if (!audit_commit(db, a))
        api_internal(e);
    else
        ok = true;
    PQclear(r);
    db_rollback(db);
    return ok;
}

void deploy_job_free(DeployJob *j)
{
    free(j->org);
    free(j->project);
    free(j->stack);
    free(j->operation);
    free(j->repo_url);
    free(j->branch);
    free(j->commit);
    free(j->repo_dir);
    json_decref(j->pre_run);
    json_decref(j->env);
    json_decref(j->git_auth);
    memset(j, 0, sizeof(*j));
}

static char *dup_member(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return xstrdup(v ? v : "");
}

int deploy_claim(Db *db, const unsigned char *master, const unsigned char *old_master, const char *agent,
                 DeployJob *job)
{
    memset(job, 0, sizeof(*job));
    DbParam p[] = {DB_TEXT(agent)};
    DbOutcome o;
    PGresult *r = db_exec_outcome(
        db,
        "UPDATE extension_pulumi_state_deployments SET status = 'running', agent = $1, started_at = now(), "
        "heartbeat_at = now(), modified_at = now() WHERE id = (SELECT d.id FROM extension_pulumi_state_deployments d "
        "WHERE d.status = 'queued' AND NOT EXISTS (SELECT 1 FROM extension_pulumi_state_deployments x WHERE "
        "x.stack_id = d.stack_id AND x.status = 'running') ORDER BY d.created_at, d.version "
        "FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, stack_id, version, operation, source::text, env_sealed",
        1, p, false, &o);
    if (!r)
        return o == DB_DUPLICATE ? 0 : -1; /* another agent took this stack's turn first */
    if (PQntuples(r) != 1) {
        PQclear(r);
        return 0;
    }
    snprintf(job->id, sizeof(job->id), "%s", PQgetvalue(r, 0, 0));
    snprintf(job->stack_id, sizeof(job->stack_id), "%s", PQgetvalue(r, 0, 1));
    job->version = atoi(PQgetvalue(r, 0, 2));
    job->operation = xstrdup(PQgetvalue(r, 0, 3));
    json_t *src = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
    char *sealed = xstrdup(PQgetvalue(r, 0, 5));
    PQclear(r);
    job->repo_url = dup_member(src, "repoURL");
    job->branch = dup_member(src, "branch");
    job->commit = dup_member(src, "commit");
    job->repo_dir = dup_member(src, "repoDir");
    json_t *pre = json_object_get(src, "preRunCommands");
    job->pre_run = json_is_array(pre) ? json_incref(pre) : json_array();
    json_decref(src);
    r = db_exec(db, "SELECT s.org, s.project, s.name FROM extension_pulumi_state_stacks s WHERE s.id = $1", 1,
                (DbParam[]){DB_TEXT(job->stack_id)}, false);
    bool ok = r && PQntuples(r) == 1;
    if (ok) {
        job->org = xstrdup(PQgetvalue(r, 0, 0));
        job->project = xstrdup(PQgetvalue(r, 0, 1));
        job->stack = xstrdup(PQgetvalue(r, 0, 2));
    }
    PQclear(r);
    Stack *s = ok ? stack_load(db, job->org, job->project, job->stack) : NULL;
    unsigned char key[CRYPTO_KEY_LEN];
    unsigned char *pt = NULL;
    size_t ptlen = 0;
    ApiError e;
    ok = s && stack_data_key(s, master, old_master, key, &e) &&
         crypto_open(key, s->id, strlen(s->id), sealed, strlen(sealed), &pt, &ptlen);
    OPENSSL_cleanse(key, sizeof(key));
    stack_free(s);
    free(sealed);
    json_t *secret = ok ? json_loadb((const char *)pt, ptlen, 0, NULL) : NULL;
    if (pt) {
        OPENSSL_cleanse(pt, ptlen);
        free(pt);
    }
    if (!secret) {
        log_error("deployment %s: its sealed settings do not open", job->id);
        if (!deploy_finish(db, job->id, "failed", -1, "the deployment's sealed settings could not be opened"))
            log_error("deployment %s: could not record the failure", job->id);
        deploy_job_free(job);
        return -1;
    }
    job->env = json_incref(json_object_get(secret, "env"));
    if (!job->env)
        job->env = json_object();
    json_t *auth = json_object_get(secret, "gitAuth");
    job->git_auth = auth ? json_incref(auth) : NULL;
    json_decref(secret);
    return 1;
}

bool deploy_heartbeat(Db *db, const char *id, const char *agent, bool *cancel)
{
    DbParam p[] = {DB_TEXT(id), DB_TEXT(agent)};
    PGresult *r = db_exec(db,
                          "UPDATE extension_pulumi_state_deployments SET heartbeat_at = now() WHERE id = $1 AND "
                          "agent = $2 AND status = 'running' RETURNING cancel_requested",
                          2, p, false);
    bool ok = r && PQntuples(r) == 1;
    *cancel = ok && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return ok;
}

bool deploy_log_append(Db *db, const char *id, long long first_line, int n, const char *const *headers,
                       const char *const *lines)
{
    if (n <= 0)
        return true;
    /* Text arrays in PostgreSQL's array syntax would need quoting: send JSON arrays instead. */
    json_t *h = json_array(), *t = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(h, headers && headers[i] ? json_string(headers[i]) : json_null());
        json_array_append_new(t, json_stringn(lines[i], strlen(lines[i])));
    }
    char *hj = json_dumps(h, JSON_COMPACT), *tj = json_dumps(t, JSON_COMPACT);
    json_decref(h);
    json_decref(t);
    char fbuf[24];
    snprintf(fbuf, sizeof(fbuf), "%lld", first_line);
    DbParam p[] = {DB_TEXT(id), DB_TEXT(fbuf), DB_TEXT(hj), DB_TEXT(tj)};
    bool ok = hj && tj &&
              db_run(db,
                     "INSERT INTO extension_pulumi_state_deployment_logs (deployment_id, line_no, header, line) "
                     "SELECT $1, $2::bigint + h.n - 1, h.v, t.v FROM jsonb_array_elements_text($3::jsonb) WITH "
                     "ORDINALITY h(v, n) JOIN jsonb_array_elements_text($4::jsonb) WITH ORDINALITY t(v, n) "
                     "ON t.n = h.n ON CONFLICT DO NOTHING",
                     4, p) &&
              db_notify(db, DEPLOY_CHANNEL_LOG, id);
    free(hj);
    free(tj);
    return ok;
}

bool deploy_set_token(Db *db, const char *id, const char *token_name)
{
    DbParam p[] = {DB_TEXT(id), DB_TEXT(token_name)};
    return db_run(db, "UPDATE extension_pulumi_state_deployments SET token_name = $2 WHERE id = $1", 2, p);
}

/* Revoke the deployment's token (it expires by itself too). */
static void revoke_token(Db *db, const char *id)
{
    DbParam p[] = {DB_TEXT(id)};
    if (!db_run(db,
                "UPDATE extension_pulumi_state_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE name = "
                "(SELECT token_name FROM extension_pulumi_state_deployments WHERE id = $1)",
                1, p))
        log_warn("deployment %s: could not revoke its token (it expires by itself)", id);
}

bool deploy_finish(Db *db, const char *id, const char *status, int exit_code, const char *reason)
{
    char ebuf[16];
    snprintf(ebuf, sizeof(ebuf), "%d", exit_code);
    DbParam p[] = {DB_TEXT(id), DB_TEXT(status), DB_TEXT(exit_code == -1 ? NULL : ebuf), DB_TEXT(reason)};
    bool ok = db_run(db,
                     "UPDATE extension_pulumi_state_deployments SET status = $2, exit_code = $3::int, reason = "
                     "coalesce($4, reason), ended_at = now(), modified_at = now() WHERE id = $1 AND status IN "
                     "('queued', 'running')",
                     4, p) &&
              db_notify(db, DEPLOY_CHANNEL_LOG, id);
    revoke_token(db, id);
    return ok;
}

bool deploy_link_update(Db *db, const char *id)
{
    DbParam p[] = {DB_TEXT(id)};
    return db_run(db,
                  "UPDATE extension_pulumi_state_deployments d SET update_id = (SELECT u.id FROM "
                  "extension_pulumi_state_updates u WHERE u.stack_id = d.stack_id AND u.created_by = d.token_name "
                  "AND (NOT u.dry_run OR d.operation = 'preview') ORDER BY u.created_at DESC LIMIT 1) WHERE d.id = $1",
                  1, p);
}

int deploy_expire_queued(Db *db, int days)
{
    char dbuf[16];
    snprintf(dbuf, sizeof(dbuf), "%d", days);
    DbParam p[] = {DB_TEXT(dbuf)};
    PGresult *r = db_exec(db,
                          "UPDATE extension_pulumi_state_deployments SET status = 'skipped', ended_at = now(), "
                          "modified_at = now(), reason = 'queued for more than ' || $1 || ' days; it never ran' "
                          "WHERE status = 'queued' AND created_at < now() - make_interval(days => $1::int) "
                          "RETURNING id",
                          1, p, false);
    if (!r)
        return -1;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        log_warn("deployment %s: queued for more than %d days; skipped", PQgetvalue(r, i, 0), days);
        if (!db_notify(db, DEPLOY_CHANNEL_LOG, PQgetvalue(r, i, 0)))
            log_warn("could not wake the readers of deployment %s", PQgetvalue(r, i, 0));
    }
    PQclear(r);
    return n;
}

int deploy_rescue(Db *db, int dead_after)
{
    char dbuf[16];
    snprintf(dbuf, sizeof(dbuf), "%d", dead_after);
    DbParam p[] = {DB_TEXT(dbuf)};
    PGresult *r = db_exec(db,
                          "UPDATE extension_pulumi_state_deployments SET status = 'failed', ended_at = now(), "
                          "modified_at = now(), reason = 'its agent ' || coalesce(agent, '?') || ' stopped sending "
                          "heartbeats' WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => "
                          "$1::int) RETURNING id, stack_id, coalesce(token_name, '')",
                          1, p, false);
    if (!r)
        return -1;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        const char *id = PQgetvalue(r, i, 0);
        log_warn("deployment %s: its agent stopped sending heartbeats; marked failed", id);
        revoke_token(db, id);
        /* The update its CLI held ends failed now, keeping what its journal recorded. */
        PGresult *s = db_exec(db, "SELECT org, project, name FROM extension_pulumi_state_stacks WHERE id = $1", 1,
                              (DbParam[]){DB_TEXT(PQgetvalue(r, i, 1))}, false);
        if (s && PQntuples(s) == 1) {
            StackRef ref = {PQgetvalue(s, 0, 0), PQgetvalue(s, 0, 1), PQgetvalue(s, 0, 2)};
            ApiError e;
            Stack *st = stack_get_locked(db, &ref, &e);
            bool ok = st != NULL;
            if (st && st->active_update[0]) {
                DbParam q[] = {DB_TEXT(st->active_update), DB_TEXT(PQgetvalue(r, i, 2))};
                PGresult *u = db_exec(
                    db, "SELECT 1 FROM extension_pulumi_state_updates WHERE id = $1 AND created_by = $2", 2, q, false);
                UpdateStatus prior;
                if (u && PQntuples(u) == 1) {
                    char uid[37];
                    snprintf(uid, sizeof(uid), "%s", st->active_update);
                    ok = update_finish(db, st, uid, UPDATE_FAILED, &prior, NULL, 0);
                }
                PQclear(u);
            }
            if (ok && !db_commit(db))
                log_warn("deployment %s: could not end its update", id);
            db_rollback(db);
            stack_free(st);
        }
        PQclear(s);
    }
    PQclear(r);
    return n;
}

/* ---- settings ---- */

/* Replace (sealing) or resolve (opening) secret values everywhere in v: {"secret": s} becomes
 * {"ciphertext": seal(s)} when sealing; {"ciphertext": c} becomes {"secret": open(c)} when opening. */
static bool walk_secrets(json_t *v, const unsigned char *key, const char *aad, bool seal)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (!walk_secrets(x, key, aad, seal))
                return false;
        }
        return true;
    }
    if (!json_is_object(v))
        return true;
    json_t *sec = json_object_get(v, "secret"), *ct = json_object_get(v, "ciphertext");
    if (seal && json_is_string(sec) && json_object_size(v) == 1) {
        const char *pt = json_string_value(sec);
        char *sealed = crypto_seal(key, aad, strlen(aad), (const unsigned char *)pt, strlen(pt));
        if (!sealed)
            return false;
        json_object_del(v, "secret");
        json_object_set_new(v, "ciphertext", json_string(sealed));
        free(sealed);
        return true;
    }
    if (!seal && json_is_string(ct) && json_object_size(v) == 1) {
        unsigned char *pt = NULL;
        size_t ptlen = 0;
        const char *c = json_string_value(ct);
        if (!crypto_open(key, aad, strlen(aad), c, strlen(c), &pt, &ptlen))
            return false;
        json_object_del(v, "ciphertext");
        json_object_set_new(v, "secret", json_stringn((const char *)pt, ptlen));
        OPENSSL_cleanse(pt, ptlen);
        free(pt);
        return true;
    }
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (!walk_secrets(x, key, aad, seal))
            return false;
    }
    return true;
}

/* RFC 7386 merge patch of patch into target (both objects). Inheriting (a deployment request
 * over the saved settings), null, "" and [] mean "not given" and keep the saved value: the CLI sends
 * "preRunCommands": null (or []) and "branch": "" for what it was not told. */
static void merge_patch(json_t *target, json_t *patch, bool inherit)
{
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        json_t *cur = json_object_get(target, k);
        if (inherit && (json_is_null(v) || (json_is_string(v) && !*json_string_value(v)) ||
                        (json_is_array(v) && json_array_size(v) == 0)))
            continue;
        if (json_is_null(v))
            json_object_del(target, k);
        else if (json_is_object(v) && json_is_object(cur))
            merge_patch(cur, v, inherit);
        else
            json_object_set_new(target, k, json_deep_copy(v));
    }
}

/* The stored settings of s (new), or NULL when there are none (*dberr on a database error). */
static json_t *load_settings(Db *db, const Stack *s, bool *dberr)
{
    DbParam p[] = {DB_TEXT(s->id)};
    PGresult *r = db_exec(
        db, "SELECT settings::text FROM extension_pulumi_state_deployment_settings WHERE stack_id = $1", 1, p, false);
    *dberr = r == NULL;
    json_t *j = r && PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
    PQclear(r);
    return j;
}

bool deploy_create(Db *db, const Config *cfg, const unsigned char *master, const StackRef *ref, json_t *body,
                   const char *actor, const char *initiator, Audit *a, Buf *out, ApiError *e)
{
    json_t *inherit = json_object_get(body, "inheritSettings");
    if (json_is_false(inherit))
        return create_from(db, cfg, master, ref, body, actor, initiator, a, out, e);
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    bool dberr = false;
    json_t *settings = load_settings(db, s, &dberr);
    unsigned char key[CRYPTO_KEY_LEN];
    bool ok = false;
    if (dberr) {
        api_internal(e);
    } else if (!settings) {
        ok = create_from(db, cfg, master, ref, body, actor, initiator, a, out, e);
    } else if (!stack_data_key(s, master, NULL, key, e)) {
        ;
    } else {
        merge_patch(settings, body, true);
        bool opened = walk_secrets(settings, key, s->id, false);
        OPENSSL_cleanse(key, sizeof(key));
        ok = opened ? create_from(db, cfg, master, ref, settings, actor, initiator, a, out, e)
                    : api_fail(e, 400, "Bad Request: a ciphertext in the deployment settings does not open");
    }
    json_decref(settings);
    stack_free(s);
    return ok;
}

bool deploy_settings_get(Db *db, const StackRef *ref, Buf *out, ApiError *e)
{
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    bool dberr = false;
    json_t *settings = load_settings(db, s, &dberr);
    stack_free(s);
    if (dberr)
        return api_internal(e);
    if (!settings)
        return api_fail(e, 404, "Not Found: the stack has no deployment settings");
    return api_json_into(settings, out, e);
}

bool deploy_settings_set(Db *db, const unsigned char *master, const StackRef *ref, json_t *body, bool merge, Audit *a,
                         Buf *out, ApiError *e)
{
    Stack *s = stack_get_locked(db, ref, e);
    if (!s)
        return false;
    bool ok = false, dberr = false;
    json_t *settings = merge ? load_settings(db, s, &dberr) : NULL;
    unsigned char key[CRYPTO_KEY_LEN];
    char *text = NULL;
    if (dberr) {
        api_internal(e);
        goto out;
    }
    if (!settings)
        settings = json_object();
    merge_patch(settings, body, false);
    if (!stack_data_key(s, master, NULL, key, e))
        goto out;
    bool sealed = walk_secrets(settings, key, s->id, true);
    OPENSSL_cleanse(key, sizeof(key));
    text = sealed ? json_dumps(settings, JSON_COMPACT) : NULL;
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(text)};
    if (!text ||
        !db_run(db,
                "INSERT INTO extension_pulumi_state_deployment_settings (stack_id, settings) VALUES ($1, "
                "$2::jsonb) ON CONFLICT (stack_id) DO UPDATE SET settings = $2::jsonb, updated_at = now()",
                2, p) ||
        !audit_commit(db, a)) {
        api_internal(e);
        goto out;
    }
    buf_puts(out, text);
    ok = true;
out:
    db_rollback(db);
    json_decref(settings);
    free(text);
    stack_free(s);
    return ok;
}

bool deploy_settings_delete(Db *db, const StackRef *ref, Audit *a, ApiError *e)
{
    Stack *s = stack_get_locked(db, ref, e);
    if (!s)
        return false;
    DbParam p[] = {DB_TEXT(s->id)};
    bool ok = db_run(db, "DELETE FROM extension_pulumi_state_deployment_settings WHERE stack_id = $1", 1, p) &&
              audit_commit(db, a);
    if (!ok)
        api_internal(e);
    db_rollback(db);
    stack_free(s);
    return ok;
}

bool deploy_settings_encrypt(Db *db, const unsigned char *master, const StackRef *ref, const char *secret, Buf *out,
                             ApiError *e)
{
    if (!secret || !*secret)
        return api_fail(e, 400, "Bad Request: secret (a non-empty string) is required");
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    unsigned char key[CRYPTO_KEY_LEN];
    bool ok = stack_data_key(s, master, NULL, key, e);
    char *sealed = ok ? crypto_seal(key, s->id, strlen(s->id), (const unsigned char *)secret, strlen(secret)) : NULL;
    OPENSSL_cleanse(key, sizeof(key));
    stack_free(s);
    if (!ok)
        return false;
    if (!sealed)
        return api_internal(e);
    ok = api_json_into(json_pack("{s:s}", "ciphertext", sealed), out, e);
    free(sealed);
    return ok;
}
