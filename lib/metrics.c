/* metrics.c - Prometheus metrics: atomic counters in a shared memory segment, and gauges from SQL. */
#include "metrics.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

/* Upper bounds of the latency buckets, in seconds (then +Inf). */
static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

typedef struct ClassCounters {
    uint64_t codes[5];             /* 1xx..5xx */
    uint64_t buckets[NBOUNDS + 1]; /* non-cumulative; the last is past every bound */
    uint64_t sum_us, db_us;
} ClassCounters;

#define SEGMENT_MAGIC 0x70736d6574726963ULL /* "psmetric" */
#define SEGMENT_VERSION 1

typedef struct Segment {
    uint64_t magic;
    uint64_t version;
    ClassCounters c[MC_N];
} Segment;

static Segment local_segment;
static Segment *seg = &local_segment;

static const char *const class_names[MC_N] = {"stacks",      "updates",  "checkpoints", "events", "secrets",
                                              "deployments", "machines", "ops",         "other"};

const char *metrics_class_name(MetricsClass c)
{
    return c < MC_N ? class_names[c] : "other";
}

MetricsClass metrics_classify(const char *p)
{
    if (!p)
        return MC_OTHER;
    if (!strncmp(p, "/healthz", 8) || !strncmp(p, "/readyz", 7) || !strncmp(p, "/metrics", 8))
        return MC_OPS;
    if (!strncmp(p, "/api/v1/", 8))
        return MC_MACHINES;
    if (strstr(p, "/deployments"))
        return MC_DEPLOYMENTS;
    if (strstr(p, "/checkpoint") || strstr(p, "/journalentries"))
        return MC_CHECKPOINTS;
    if (strstr(p, "/events"))
        return MC_EVENTS;
    if (strstr(p, "crypt"))
        return MC_SECRETS;
    if (strstr(p, "/update|") || strstr(p, ":update") || strstr(p, "renew_lease"))
        return MC_UPDATES;
    if (!strncmp(p, "/api/stacks", 11))
        return MC_STACKS;
    return MC_OTHER;
}

char *metrics_default_name(const char *database, const char *base_path)
{
    char *key = xasprintf("%s|%s|%d", database ? database : "", base_path ? base_path : "", (int)getuid());
    char hex[65];
    sha256_hex(key, strlen(key), hex);
    free(key);
    return xasprintf("/pulumi-state-%.16s", hex);
}

bool metrics_open(const char *name)
{
    if (!name || !*name || !strcmp(name, "off"))
        return true;
    int fd = shm_open(name, O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        log_warn("metrics: cannot open shared memory %s; this process counts alone", name);
        return false;
    }
    struct stat st;
    /* Every worker grows it to the same size; a new segment is all zero. */
    if (fstat(fd, &st) != 0 || (st.st_size < (off_t)sizeof(Segment) && ftruncate(fd, sizeof(Segment)) != 0)) {
        close(fd);
        log_warn("metrics: cannot size shared memory %s; this process counts alone", name);
        return false;
    }
    void *m = mmap(NULL, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return false;
    Segment *s = m;
    uint64_t zero = 0;
    /* The first to arrive stamps it; a segment of another layout is not used. */
    if (__atomic_compare_exchange_n(&s->magic, &zero, SEGMENT_MAGIC, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        __atomic_store_n(&s->version, SEGMENT_VERSION, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->magic, __ATOMIC_SEQ_CST) != SEGMENT_MAGIC) {
        munmap(m, sizeof(Segment));
        log_warn("metrics: shared memory %s has another layout; this process counts alone", name);
        return false;
    }
    seg = s;
    return true;
}

void metrics_observe(MetricsClass c, int status, double ms, double db_ms)
{
    if (c >= MC_N)
        c = MC_OTHER;
    ClassCounters *k = &seg->c[c];
    int code = status / 100 - 1;
    if (code < 0 || code > 4)
        code = 4;
    size_t b = 0;
    while (b < NBOUNDS && ms / 1000.0 > bounds[b])
        b++;
    __atomic_fetch_add(&k->codes[code], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&k->buckets[b], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&k->sum_us, (uint64_t)(ms * 1000.0), __ATOMIC_RELAXED);
    __atomic_fetch_add(&k->db_us, (uint64_t)(db_ms * 1000.0), __ATOMIC_RELAXED);
}

void metrics_render(Buf *out)
{
    buf_puts(out, "# HELP pulumi_state_http_requests_total Requests answered, by route class and status class.\n"
                  "# TYPE pulumi_state_http_requests_total counter\n");
    for (int c = 0; c < MC_N; c++)
        for (int code = 0; code < 5; code++)
            buf_printf(out, "pulumi_state_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", class_names[c],
                       code + 1, (unsigned long long)__atomic_load_n(&seg->c[c].codes[code], __ATOMIC_RELAXED));
    buf_puts(out, "# HELP pulumi_state_http_request_duration_seconds Time to answer a request, by route class.\n"
                  "# TYPE pulumi_state_http_request_duration_seconds histogram\n");
    for (int c = 0; c < MC_N; c++) {
        unsigned long long cum = 0;
        for (size_t b = 0; b <= NBOUNDS; b++) {
            cum += __atomic_load_n(&seg->c[c].buckets[b], __ATOMIC_RELAXED);
            if (b < NBOUNDS)
                buf_printf(out, "pulumi_state_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                           class_names[c], bounds[b], cum);
            else
                buf_printf(out, "pulumi_state_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                           class_names[c], cum);
        }
        buf_printf(out, "pulumi_state_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", class_names[c],
                   (double)__atomic_load_n(&seg->c[c].sum_us, __ATOMIC_RELAXED) / 1e6);
        buf_printf(out, "pulumi_state_http_request_duration_seconds_count{route=\"%s\"} %llu\n", class_names[c], cum);
    }
    buf_puts(out, "# HELP pulumi_state_db_wait_seconds_total Time requests waited for PostgreSQL, by route class.\n"
                  "# TYPE pulumi_state_db_wait_seconds_total counter\n");
    for (int c = 0; c < MC_N; c++)
        buf_printf(out, "pulumi_state_db_wait_seconds_total{route=\"%s\"} %.6f\n", class_names[c],
                   (double)__atomic_load_n(&seg->c[c].db_us, __ATOMIC_RELAXED) / 1e6);
}

/* One labelled gauge family from a query of (label, value) rows. */
static bool gauge(Db *db, Buf *out, const char *name, const char *help, const char *label, const char *sql)
{
    PGresult *r = db_exec(db, sql, 0, NULL, false);
    if (!r)
        return false;
    buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    for (int i = 0; i < PQntuples(r); i++) {
        if (label)
            buf_printf(out, "%s{%s=\"%s\"} %s\n", name, label, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        else
            buf_printf(out, "%s %s\n", name, PQgetvalue(r, i, 0));
    }
    PQclear(r);
    return true;
}

bool metrics_render_db(Db *db, Buf *out)
{
    Buf b;
    buf_init(&b);
    bool ok =
        gauge(db, &b, "pulumi_state_updates", "Updates by status (cluster-wide).", "status",
              "SELECT replace(status, ' ', '-'), count(*) FROM extension_pulumi_state_updates GROUP BY status "
              "ORDER BY status") &&
        gauge(db, &b, "pulumi_state_updates_active", "Updates holding a lease now.", NULL,
              "SELECT count(*) FROM extension_pulumi_state_updates WHERE status IN ('not started', 'running') "
              "AND lease_expires_at > now()") &&
        gauge(db, &b, "pulumi_state_deployments", "Deployments by status (cluster-wide).", "status",
              "SELECT status, count(*) FROM extension_pulumi_state_deployments GROUP BY status ORDER BY status") &&
        gauge(db, &b, "pulumi_state_deployment_queue_depth", "Deployments queued and not yet claimed.", NULL,
              "SELECT count(*) FROM extension_pulumi_state_deployments WHERE status = 'queued'") &&
        gauge(db, &b, "pulumi_state_agent_heartbeat_age_seconds",
              "Seconds since each agent running a deployment last heartbeat.", "agent",
              "SELECT agent, round(extract(epoch FROM now() - max(heartbeat_at))::numeric, 3) FROM "
              "extension_pulumi_state_deployments WHERE status = 'running' AND agent IS NOT NULL GROUP BY agent "
              "ORDER BY agent") &&
        gauge(db, &b, "pulumi_state_machines", "Machines by status.", "status",
              "SELECT status, count(*) FROM extension_pulumi_state_machines GROUP BY status ORDER BY status");
    if (ok)
        buf_append(out, b.data, b.len);
    buf_free(&b);
    return ok;
}
