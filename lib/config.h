/* config.h - settings from one INI-style file plus environment overrides, driven by one table. */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

typedef struct Config {
    char *database;       /* libpq conninfo; "" = PG* variables */
    char *operator_token; /* ITL_PULUMI_TOKEN */
    char *operator_token_file;
    bool prepared_statements;
    char *org;        /* ITL_PULUMI_ORG */
    bool enabled;     /* ITL_PULUMI_ENABLED */
    char *master_key; /* hex or base64 of 32 bytes */
    char *master_key_file;
    char *old_master_key; /* during a rotation: the key being replaced */
    char *old_master_key_file;
    char *base_path; /* URL prefix in front of /api, e.g. "/pulumi" */
    char *socket;    /* listen path or :port when not spawned with fd 0 */
    int threads;
    int lease_ttl;                /* seconds */
    long long max_body_bytes;     /* compressed request body */
    long long max_inflated_bytes; /* after Content-Encoding: gzip */
    int list_page_size;
    bool journaling;                   /* issue 3: offer journalVersion 1 */
    long long checkpoint_cutoff_bytes; /* issue 3: delta capability; 0 = not advertised */
    char *log_level;
    char *trusted_proxies; /* comma-separated addresses allowed to set X-Forwarded-For */
    char *public_url;      /* what clients log in to */
    bool deploy_allow_file_urls;
    int agent_jobs;
    int agent_heartbeat;
    int agent_dead_after;
    int agent_timeout;
    bool agent_listen;
    int agent_stop_grace;
    int agent_log_cap;
    char *agent_workdir;
    char *agent_pass_env;
    char *image_factory_url; /* base of the machines' signed boot image URLs */
    int iso_url_ttl;         /* seconds a signed image URL stays valid */
    char *log_format;        /* text or json */
    char *log_file;          /* append the log here instead of stderr */
    int slow_request_ms;     /* log requests slower than this (0 = off) */
    char *metrics_shm;       /* shared memory segment of the request metrics; off = per process */
    int retain_versions;     /* newest state versions kept per stack (0 = all) */
    int retain_version_days; /* versions older than this are pruned (0 = never); the current is kept */
    int retain_events_days;  /* engine events of updates ended longer ago are pruned (0 = never) */
    int retain_audit_days;
    int retain_deployment_log_days;
    int prune_interval; /* seconds between the agents' periodic prunes (0 = off) */
} Config;

/* Fill cfg with defaults, then the file at path (NULL: $PULUMI_STATE_CONFIG if set), then the
 * environment. On failure writes a message into err and returns false. */
bool config_load(Config *cfg, const char *path, char *err, size_t errlen);
/* Load like config_load, but note every problem (unknown settings in the file or the environment,
 * bad values, broken rules) in problems, one per line, and go on. True when there was none. */
bool config_check(Config *cfg, const char *path, Buf *problems);
/* Apply one "name = value" setting (file syntax). */
bool config_set(Config *cfg, const char *name, const char *value, char *err, size_t errlen);
void config_free(Config *cfg);
/* The command line every daemon takes: [-c CONFIG] [--version]. Returns -1 to go on (*conf_path set,
 * or NULL), else the exit status (the version printed, or the usage on a bad argument). */
int config_args(int argc, char **argv, const char *program, const char *version, const char **conf_path);
/* Print the settings reference (name, env, default, description) as Markdown rows. */
void config_print_reference(void);

#endif
