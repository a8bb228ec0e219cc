/* metrics.h - request counts and latency histograms shared by every worker process of a host that
 * names the same segment (POSIX shared memory of atomic counters), so a scrape that reaches any one
 * worker reports them all; plus the cluster's gauges read from PostgreSQL at scrape time. Rendered in
 * the Prometheus text format (version 0.0.4). */
#ifndef PS_METRICS_H
#define PS_METRICS_H

#include <stdbool.h>

#include "db.h"
#include "util.h"

typedef enum {
    MC_STACKS,      /* stacks, tags, export/import, history */
    MC_UPDATES,     /* the update lifecycle: create, start, complete, cancel, leases */
    MC_CHECKPOINTS, /* checkpoint, checkpointverbatim, checkpointdelta, journalentries */
    MC_EVENTS,      /* engine events */
    MC_SECRETS,     /* encrypt, decrypt */
    MC_DEPLOYMENTS, /* server-side deployments */
    MC_MACHINES,    /* the machine attestation API */
    MC_OPS,         /* /healthz, /readyz, /metrics */
    MC_OTHER,       /* user, capabilities, unmatched paths */
    MC_N
} MetricsClass;

const char *metrics_class_name(MetricsClass c);
/* The class of a route pattern (NULL: an unmatched request). */
MetricsClass metrics_classify(const char *pattern);

/* Attach to the segment name ("/pulumi-state-..."; created when missing). NULL, "" or "off" keep
 * the counters in this process only. False (counters kept in the process) if it cannot be mapped. */
bool metrics_open(const char *name);
/* The default segment name of a configuration: one per database and base path. New. */
char *metrics_default_name(const char *database, const char *base_path);
/* Count one answered request: its class, HTTP status, wall time and database wait (ms). */
void metrics_observe(MetricsClass c, int status, double ms, double db_ms);
/* Append the request metrics (counters and histograms). */
void metrics_render(Buf *out);
/* Append the cluster gauges from db (updates and deployments by status, queue depth, agent
 * heartbeats, machines by status). False on a database error (nothing appended). */
bool metrics_render_db(Db *db, Buf *out);

#endif
