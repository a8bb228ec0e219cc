/* api-ops.c - operations endpoints without authentication: /healthz (the process answers),
 * /readyz (the database is reachable, the schema current, the master key matches the canary) and
 * /metrics (Prometheus text: this host's request metrics and the cluster's gauges). */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "crypto.h"
#include "metrics.h"
#include "migrate.h"

void api_healthz(Ctx *c)
{
    reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(Ctx *c)
{
    const char *db = "ok", *schema = "ok", *key = "ok";
    char why[200] = "";
    /* A real round trip (a connection can look open to a server that is gone). */
    PGresult *r = db_ensure(c->db) ? db_exec(c->db,
                                             "SELECT value FROM extension_pulumi_state_schema WHERE name = "
                                             "'canary'",
                                             0, NULL, false)
                                   : NULL;
    if (!r) {
        db = "unreachable";
        schema = key = "unknown";
        snprintf(why, sizeof(why), "the database is unreachable");
    } else {
        bool match = PQntuples(r) == 1 &&
                     (crypto_canary_check(c->w->master_key, PQgetvalue(r, 0, 0)) ||
                      (c->w->old_master_key && crypto_canary_check(c->w->old_master_key, PQgetvalue(r, 0, 0))));
        PQclear(r);
        int cur = migrate_current(c->db);
        if (cur != migrate_latest()) {
            schema = cur < 0 ? "unknown" : "behind";
            snprintf(why, sizeof(why), "the schema is at %d, this build needs %d (run pulumi-state-admin migrate)", cur,
                     migrate_latest());
        }
        if (!match) {
            key = "mismatch";
            if (!*why)
                snprintf(why, sizeof(why), "the master key does not match the database's canary");
        }
    }
    json_t *checks = json_pack("{s:s, s:s, s:s}", "database", db, "schema", schema, "master_key", key);
    if (*why)
        reply_json(
            c, 503,
            json_pack("{s:i, s:s+, s:o}", "code", 503, "message", "Service Unavailable: ", why, "checks", checks));
    else
        reply_json(c, 200, json_pack("{s:s, s:o}", "status", "ready", "checks", checks));
}

void api_metrics(Ctx *c)
{
    Buf out;
    buf_init(&out);
    metrics_render(&out);
    bool db = db_ensure(c->db) && metrics_render_db(c->db, &out);
    buf_printf(&out,
               "# HELP pulumi_state_up Whether the answering worker reached the database for this scrape.\n"
               "# TYPE pulumi_state_up gauge\npulumi_state_up %d\n",
               db ? 1 : 0);
    reply_bytes(c, 200, out.data, out.len, false);
    free(c->content_type);
    c->content_type = xstrdup("text/plain; version=0.0.4; charset=utf-8");
    buf_free(&out);
}
