/* deploy.h - server-side deployments: the queue in PostgreSQL, shared by the worker's API
 * (queue, read, logs, cancel) and the deploy agent (claim, heartbeat, log, finish, rescue). */
#ifndef PS_DEPLOY_H
#define PS_DEPLOY_H

#include <jansson.h>
#include <stdbool.h>

#include "apierror.h"
#include "audit.h"
#include "config.h"
#include "db.h"
#include "stack.h"
#include "util.h"

/* Agents LISTEN here: a new deployment (payload: its id) ... */
#define DEPLOY_CHANNEL_QUEUE "pulumi_state_deploy_queue"
/* ... and a cancel (payload: the deployment's id). */
#define DEPLOY_CHANNEL_CANCEL "pulumi_state_deploy_cancel"
/* Log readers may LISTEN here (payload: the deployment's id). */
#define DEPLOY_CHANNEL_LOG "pulumi_state_deploy_log"

/* Whether a repository URL may be deployed: https:// and ssh:// (and git@host:path), file:// only
 * when the configuration allows it. */
bool deploy_url_allowed(const Config *cfg, const char *url);

/* Queue a deployment of ref from a request body of either shape (the original design's
 * {operation, source, environmentVariables} or Pulumi's {operation, sourceContext.git,
 * operationContext, ...}); secrets (secret environment values, git credentials) are sealed with the
 * stack's key. out receives {"id","consoleUrl","version"}. */
bool deploy_create(Db *db, const Config *cfg, const unsigned char *master, const StackRef *ref, json_t *body,
                   const char *actor, const char *initiator, Audit *a, Buf *out, ApiError *e);
/* GET .../deployments/{id} (id) or .../version/{n} (id NULL, version n). */
bool deploy_get(Db *db, const Config *cfg, const StackRef *ref, const char *id, long long version, Buf *out,
                ApiError *e);
/* GET .../deployments: page (1-based) of page_size, newest first, with the total. */
bool deploy_list(Db *db, const Config *cfg, const StackRef *ref, long page, long page_size, Buf *out, ApiError *e);
/* GET .../{id}/logs?continuationToken=: lines after the token; nextToken "" once the deployment is
 * terminal and every line was read. */
bool deploy_logs(Db *db, const StackRef *ref, const char *id, const char *token, Buf *out, ApiError *e);
/* Step mode of the logs (?job=0&step=S&offset=O&count=C): {"name","lines","nextOffset"?}. */
bool deploy_log_step(Db *db, const StackRef *ref, const char *id, long step, long offset, long count, Buf *out,
                     ApiError *e);
/* GET .../{id}/updates: the bare array of the updates the deployment ran. */
bool deploy_updates(Db *db, const StackRef *ref, const char *id, Buf *out, ApiError *e);
/* Cancel: a queued deployment ends cancelled at once; a running one is asked to stop (its agent
 * hears DEPLOY_CHANNEL_CANCEL). Repeating it is harmless. */
bool deploy_cancel(Db *db, const StackRef *ref, const char *id, Audit *a, ApiError *e);

/* Deployment settings (what inheritSettings merges a request over): read (404 when none), set (merge:
 * an RFC 7386 merge patch over what is stored; else a replacement), delete; {"secret": s} values are
 * stored as {"ciphertext": ...} sealed with the stack key and never given back in clear. */
bool deploy_settings_get(Db *db, const StackRef *ref, Buf *out, ApiError *e);
bool deploy_settings_set(Db *db, const unsigned char *master, const StackRef *ref, json_t *body, bool merge, Audit *a,
                         Buf *out, ApiError *e);
bool deploy_settings_delete(Db *db, const StackRef *ref, Audit *a, ApiError *e);
/* {"ciphertext": ...} of secret, for settings. */
bool deploy_settings_encrypt(Db *db, const unsigned char *master, const StackRef *ref, const char *secret, Buf *out,
                             ApiError *e);

/* What an agent needs to run a claimed deployment (strings new). */
typedef struct DeployJob {
    char id[37];
    char stack_id[37];
    char *org, *project, *stack;
    char *operation;
    int version;
    char *repo_url, *branch, *commit, *repo_dir;
    json_t *pre_run;  /* array of strings */
    json_t *env;      /* object name -> value (plain and unsealed secret values) */
    json_t *git_auth; /* object or NULL (unsealed) */
} DeployJob;
void deploy_job_free(DeployJob *j);

/* Mark skipped the deployments queued longer than days (they never ran, as Pulumi Deployments
 * does after 7 days). The number skipped, or -1 on a database error. */
int deploy_expire_queued(Db *db, int days);

/* Claim the oldest queued deployment whose stack has none running (FOR UPDATE SKIP LOCKED; a partial
 * unique index keeps it to one running per stack whatever the races): 1 claimed (*job filled, secrets
 * unsealed), 0 nothing to do, -1 error. */
int deploy_claim(Db *db, const unsigned char *master, const unsigned char *old_master, const char *agent,
                 DeployJob *job);
/* Heartbeat; *cancel set when a cancel was asked for. False when the row is no longer ours. */
bool deploy_heartbeat(Db *db, const char *id, const char *agent, bool *cancel);
/* Append log lines (header may be NULL per line) in one statement and wake readers. */
bool deploy_log_append(Db *db, const char *id, long long first_line, int n, const char *const *headers,
                       const char *const *lines);
/* Remember the API token minted for the deployment (revoked when it ends). */
bool deploy_set_token(Db *db, const char *id, const char *token_name);
/* The deployment ended: status succeeded, failed or cancelled, exit code, reason (may be NULL); the
 * update the CLI ran is linked, the deployment's token revoked. */
bool deploy_finish(Db *db, const char *id, const char *status, int exit_code, const char *reason);
/* Link the update the deployment's CLI created (the newest update of its stack since it started). */
bool deploy_link_update(Db *db, const char *id);
/* Fail every running deployment whose agent stopped heartbeating dead_after seconds ago, ending
 * the update it held (keeping what its journal recorded). Returns how many, -1 on error. */
int deploy_rescue(Db *db, int dead_after);

#endif
