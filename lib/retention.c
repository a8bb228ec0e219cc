/* retention.c - batched pruning by the retain_* settings. */
#include "retention.h"

#include <stdio.h>
#include <stdlib.h>

#define PRUNE_BATCH "1000"

/* Run a batched DELETE (sql deletes at most one batch and takes $1..$n) until it deletes nothing;
 * the rows deleted, or -1. */
static long long drain(Db *db, const char *what, const char *sql, int nparams, const DbParam *p, PruneProgress progress,
                       void *arg)
{
    long long total = 0;
    for (;;) {
        PGresult *r = db_exec(db, sql, nparams, p, false);
        if (!r)
            return -1;
        long long n = atoll(PQcmdTuples(r));
        PQclear(r);
        if (n == 0)
            return total;
        total += n;
        if (progress)
            progress(what, total, arg);
    }
}

long long retention_prune(Db *db, const Config *cfg, PruneProgress progress, void *arg)
{
    char count[16], vdays[16], edays[16], adays[16], ldays[16];
    snprintf(count, sizeof(count), "%d", cfg->retain_versions);
    snprintf(vdays, sizeof(vdays), "%d", cfg->retain_version_days);
    snprintf(edays, sizeof(edays), "%d", cfg->retain_events_days);
    snprintf(adays, sizeof(adays), "%d", cfg->retain_audit_days);
    snprintf(ldays, sizeof(ldays), "%d", cfg->retain_deployment_log_days);
    long long total = 0, n;
    if (cfg->retain_versions > 0 || cfg->retain_version_days > 0) {
        DbParam p[] = {DB_TEXT(count), DB_TEXT(vdays)};
        n = drain(db, "versions",
                  "DELETE FROM extension_pulumi_state_versions d USING (SELECT v.stack_id, v.version FROM "
                  "extension_pulumi_state_versions v JOIN extension_pulumi_state_stacks s ON s.id = v.stack_id WHERE "
                  "v.version <> s.version AND (($1::int > 0 AND v.version <= s.version - $1::int) OR ($2::int > 0 "
                  "AND v.created_at < now() - make_interval(days => $2::int))) LIMIT " PRUNE_BATCH ") x WHERE "
                  "d.stack_id = x.stack_id AND d.version = x.version",
                  2, p, progress, arg);
        if (n < 0)
            return -1;
        total += n;
    }
    /* The journal of an ended update was materialised into its version: it is never read again. */
    n = drain(db, "journal",
              "DELETE FROM extension_pulumi_state_journal d USING (SELECT j.update_id, j.sequence_id FROM "
              "extension_pulumi_state_journal j JOIN extension_pulumi_state_updates u ON u.id = j.update_id WHERE "
              "u.status IN ('succeeded', 'failed', 'cancelled') LIMIT " PRUNE_BATCH ") x WHERE d.update_id = "
              "x.update_id AND d.sequence_id = x.sequence_id",
              0, NULL, progress, arg);
    if (n < 0)
        return -1;
    total += n;
    if (cfg->retain_events_days > 0) {
        DbParam p[] = {DB_TEXT(edays)};
        n = drain(db, "events",
                  "DELETE FROM extension_pulumi_state_events d USING (SELECT e.update_id, e.sequence FROM "
                  "extension_pulumi_state_events e JOIN extension_pulumi_state_updates u ON u.id = e.update_id WHERE "
                  "u.ended_at < now() - make_interval(days => $1::int) LIMIT " PRUNE_BATCH ") x WHERE d.update_id = "
                  "x.update_id AND d.sequence = x.sequence",
                  1, p, progress, arg);
        if (n < 0)
            return -1;
        total += n;
    }
    if (cfg->retain_audit_days > 0) {
        DbParam p[] = {DB_TEXT(adays)};
        n = drain(db, "audit",
                  "DELETE FROM extension_pulumi_state_audit WHERE id IN (SELECT id FROM extension_pulumi_state_audit "
                  "WHERE at < now() - make_interval(days => $1::int) LIMIT " PRUNE_BATCH ")",
                  1, p, progress, arg);
        if (n < 0)
            return -1;
        total += n;
    }
    if (cfg->retain_deployment_log_days > 0) {
        DbParam p[] = {DB_TEXT(ldays)};
        n = drain(db, "deployment logs",
                  "DELETE FROM extension_pulumi_state_deployment_logs d USING (SELECT l.deployment_id, l.line_no FROM "
                  "extension_pulumi_state_deployment_logs l JOIN extension_pulumi_state_deployments x ON x.id = "
                  "l.deployment_id WHERE x.ended_at < now() - make_interval(days => $1::int) LIMIT " PRUNE_BATCH
                  ") o WHERE d.deployment_id = o.deployment_id AND d.line_no = o.line_no",
                  1, p, progress, arg);
        if (n < 0)
            return -1;
        total += n;
    }
    return total;
}
