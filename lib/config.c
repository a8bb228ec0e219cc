/* config.c - the settings table, the INI reader and the environment overrides. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

typedef enum { CF_STR, CF_INT, CF_SIZE, CF_BOOL } ConfigType;

typedef struct ConfigEntry {
    const char *name;
    const char *env;
    ConfigType type;
    const char *def;
    size_t offset;
    const char *help;
} ConfigEntry;

#define OFF(f) offsetof(Config, f)

/* Adding a setting is one line here (and one field in Config). */
static const ConfigEntry entries[] = {
    {"database", "PULUMI_STATE_DATABASE", CF_STR, "", OFF(database),
     "libpq conninfo string; empty uses the PG* variables"},
    {"operator_token", "ITL_PULUMI_TOKEN", CF_STR, "", OFF(operator_token), "operator (admin) API token; required"},
    {"operator_token_file", "ITL_PULUMI_TOKEN_FILE", CF_STR, "", OFF(operator_token_file),
     "file holding the operator token (a Docker or systemd secret); used when operator_token is empty"},
    {"org", "ITL_PULUMI_ORG", CF_STR, "itlusions", OFF(org),
     "organization returned by /api/user and used as the default org"},
    {"enabled", "ITL_PULUMI_ENABLED", CF_BOOL, "true", OFF(enabled), "false answers every API call with 503"},
    {"master_key", "PULUMI_STATE_MASTER_KEY", CF_STR, "", OFF(master_key),
     "master key (64 hex digits or base64 of 32 bytes)"},
    {"master_key_file", "PULUMI_STATE_MASTER_KEY_FILE", CF_STR, "", OFF(master_key_file),
     "file holding the master key"},
    {"old_master_key", "PULUMI_STATE_OLD_MASTER_KEY", CF_STR, "", OFF(old_master_key),
     "during a key rotation: the previous master key, still accepted"},
    {"old_master_key_file", "PULUMI_STATE_OLD_MASTER_KEY_FILE", CF_STR, "", OFF(old_master_key_file),
     "file holding the previous master key"},
    {"prepared_statements", "PULUMI_STATE_PREPARED_STATEMENTS", CF_BOOL, "true", OFF(prepared_statements),
     "prepare hot-path statements; false behind a transaction-pooling PgBouncer (before 1.21)"},
    {"base_path", "PULUMI_STATE_BASE_PATH", CF_STR, "", OFF(base_path), "URL prefix before /api (e.g. /pulumi)"},
    {"socket", "PULUMI_STATE_SOCKET", CF_STR, "", OFF(socket),
     "listen on this Unix socket path or :port (default: fd 0 from the web server)"},
    {"threads", "PULUMI_STATE_THREADS", CF_INT, "4", OFF(threads), "request threads per worker process"},
    {"lease_ttl", "PULUMI_STATE_LEASE_TTL", CF_INT, "300", OFF(lease_ttl), "update lease lifetime in seconds"},
    {"max_body_bytes", "PULUMI_STATE_MAX_BODY_BYTES", CF_SIZE, "67108864", OFF(max_body_bytes),
     "largest request body as sent (413 past it)"},
    {"max_inflated_bytes", "PULUMI_STATE_MAX_INFLATED_BYTES", CF_SIZE, "268435456", OFF(max_inflated_bytes),
     "largest gzip request body after inflating (413 past it)"},
    {"list_page_size", "PULUMI_STATE_LIST_PAGE_SIZE", CF_INT, "100", OFF(list_page_size),
     "stacks per page of /api/user/stacks"},
    {"journaling", "PULUMI_STATE_JOURNALING", CF_BOOL, "true", OFF(journaling),
     "accept journaling (journalVersion 1) when the CLI asks"},
    {"checkpoint_cutoff_bytes", "PULUMI_STATE_CHECKPOINT_CUTOFF_BYTES", CF_SIZE, "1048576",
     OFF(checkpoint_cutoff_bytes), "advertise delta checkpoints with this cutoff; 0 = off"},
    {"log_level", "PULUMI_STATE_LOG_LEVEL", CF_STR, "info", OFF(log_level), "debug, info, warn or error"},
    {"trusted_proxies", "PULUMI_STATE_TRUSTED_PROXIES", CF_STR, "", OFF(trusted_proxies),
     "comma-separated proxy addresses whose X-Forwarded-For is believed"},
    {"public_url", "PULUMI_STATE_PUBLIC_URL", CF_STR, "", OFF(public_url),
     "the URL clients log in to (consoleUrl of deployments; the deploy agent's PULUMI_BACKEND_URL)"},
    {"deploy_allow_file_urls", "PULUMI_STATE_DEPLOY_ALLOW_FILE_URLS", CF_BOOL, "false", OFF(deploy_allow_file_urls),
     "accept file:// repositories for deployments (tests, local runs); https:// and ssh:// always"},
    {"agent_jobs", "PULUMI_STATE_AGENT_JOBS", CF_INT, "2", OFF(agent_jobs), "deployments one agent runs at once"},
    {"agent_heartbeat", "PULUMI_STATE_AGENT_HEARTBEAT", CF_INT, "5", OFF(agent_heartbeat),
     "seconds between an agent's heartbeats"},
    {"agent_dead_after", "PULUMI_STATE_AGENT_DEAD_AFTER", CF_INT, "30", OFF(agent_dead_after),
     "seconds without a heartbeat after which a running deployment is failed by another agent"},
    {"agent_timeout", "PULUMI_STATE_AGENT_TIMEOUT", CF_INT, "7200", OFF(agent_timeout),
     "wall-clock limit of one deployment, seconds"},
    {"agent_listen", "PULUMI_STATE_AGENT_LISTEN", CF_BOOL, "true", OFF(agent_listen),
     "wake on LISTEN/NOTIFY; false polls every second (for poolers without LISTEN, e.g. transaction pooling)"},
    {"agent_stop_grace", "PULUMI_STATE_AGENT_STOP_GRACE", CF_INT, "60", OFF(agent_stop_grace),
     "on SIGTERM, seconds running deployments may take to finish before they are cancelled"},
    {"agent_log_cap", "PULUMI_STATE_AGENT_LOG_CAP", CF_INT, "100000", OFF(agent_log_cap),
     "log lines kept per deployment (then one truncation line)"},
    {"agent_workdir", "PULUMI_STATE_AGENT_WORKDIR", CF_STR, "/tmp", OFF(agent_workdir),
     "where each deployment's fresh temporary directory is made"},
    {"agent_pass_env", "PULUMI_STATE_AGENT_PASS_ENV", CF_STR, "PATH LANG TZ", OFF(agent_pass_env),
     "variables of the agent's environment passed on to deployments (space-separated names)"},
    {"image_factory_url", "PULUMI_STATE_IMAGE_FACTORY_URL", CF_STR, "", OFF(image_factory_url),
     "base URL of the boot images in machines' signed iso_url (default: public_url + /images)"},
    {"iso_url_ttl", "PULUMI_STATE_ISO_URL_TTL", CF_INT, "604800", OFF(iso_url_ttl),
     "seconds a machine's signed iso_url stays valid"},
    {"log_format", "PULUMI_STATE_LOG_FORMAT", CF_STR, "text", OFF(log_format),
     "text, or json: one object per line with the request id"},
    {"log_file", "PULUMI_STATE_LOG_FILE", CF_STR, "", OFF(log_file),
     "append the log to this file instead of stderr (spawn-fcgi gives workers no stderr)"},
    {"slow_request_ms", "PULUMI_STATE_SLOW_REQUEST_MS", CF_INT, "2000", OFF(slow_request_ms),
     "log requests that take at least this long as warnings (0 = off)"},
    {"retain_versions", "PULUMI_STATE_RETAIN_VERSIONS", CF_INT, "0", OFF(retain_versions),
     "newest state versions kept per stack by prune (0 = all; the current one always)"},
    {"retain_version_days", "PULUMI_STATE_RETAIN_VERSION_DAYS", CF_INT, "0", OFF(retain_version_days),
     "prune state versions older than this many days (0 = never; the current one always stays)"},
    {"retain_events_days", "PULUMI_STATE_RETAIN_EVENTS_DAYS", CF_INT, "0", OFF(retain_events_days),
     "prune the engine events of updates that ended more than this many days ago (0 = never)"},
    {"retain_audit_days", "PULUMI_STATE_RETAIN_AUDIT_DAYS", CF_INT, "0", OFF(retain_audit_days),
     "prune audit rows older than this many days (0 = never)"},
    {"retain_deployment_log_days", "PULUMI_STATE_RETAIN_DEPLOYMENT_LOG_DAYS", CF_INT, "0",
     OFF(retain_deployment_log_days),
     "prune the logs of deployments that ended more than this many days ago (0 = never)"},
    {"prune_interval", "PULUMI_STATE_PRUNE_INTERVAL", CF_INT, "3600", OFF(prune_interval),
     "seconds between the deploy agents' periodic prunes (one agent at a time; 0 = off)"},
    {"metrics_shm", "PULUMI_STATE_METRICS_SHM", CF_STR, "", OFF(metrics_shm),
     "shared memory segment the workers of a host count requests in (default: one per database and base path; "
     "off = each process alone)"},
};

static const ConfigEntry *find_entry(const char *name)
{
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        if (strcmp(entries[i].name, name) == 0)
            return &entries[i];
    return NULL;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1"))
        *out = true;
    else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcmp(v, "0"))
        *out = false;
    else
        return false;
    return true;
}

/* Integers with an optional k/m/g suffix (powers of 1024). */
static bool parse_size(const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || n < 0)
        return false;
    long long mul = 1;
    if (*end) {
        switch (tolower((unsigned char)*end)) {
        case 'k':
            mul = 1024LL;
            break;
        case 'm':
            mul = 1024LL * 1024;
            break;
        case 'g':
            mul = 1024LL * 1024 * 1024;
            break;
        default:
            return false;
        }
        end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return false;
    }
    if (n > (1LL << 50) / mul)
        return false;
    *out = n * mul;
    return true;
}

static bool apply(Config *cfg, const ConfigEntry *e, const char *value, char *err, size_t errlen)
{
    void *field = (char *)cfg + e->offset;
    switch (e->type) {
    case CF_STR:
        free(*(char **)field);
        *(char **)field = xstrdup(value);
        return true;
    case CF_BOOL:
        if (parse_bool(value, (bool *)field))
            return true;
        break;
    case CF_INT: {
        long long n;
        if (parse_size(value, &n) && n <= 1000000000) {
            *(int *)field = (int)n;
            return true;
        }
        break;
    }
    case CF_SIZE:
        if (parse_size(value, (long long *)field))
            return true;
        break;
    }
    snprintf(err, errlen, "invalid value for %s: '%s'", e->name, value);
    return false;
}

bool config_set(Config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    const ConfigEntry *e = find_entry(name);
    if (!e) {
        snprintf(err, errlen, "unknown setting '%s'", name);
        return false;
    }
    return apply(cfg, e, value, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Read path into cfg. problems NULL: stop at the first error (in err); else note every error there,
 * one per line, and go on. */
static bool load_file(Config *cfg, const char *path, char *err, size_t errlen, Buf *problems)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return false;
    }
    char line[4096];
    int lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';' || *s == '[')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected name = value", path, lineno);
            if (problems) {
                buf_printf(problems, "%s\n", err);
                continue;
            }
            ok = false;
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        char inner[512];
        if (!config_set(cfg, name, value, inner, sizeof(inner))) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, inner);
            if (problems)
                buf_printf(problems, "%s\n", err);
            else
                ok = false;
        }
    }
    fclose(f);
    return ok;
}

/* The rules between settings; the first broken one in err. */
static bool validate(Config *cfg, char *err, size_t errlen)
{
    if (cfg->threads < 1 || cfg->threads > 256) {
        snprintf(err, errlen, "threads must be between 1 and 256");
        return false;
    }
    if (cfg->lease_ttl < 5) {
        snprintf(err, errlen, "lease_ttl must be at least 5 seconds");
        return false;
    }
    if (strcmp(cfg->log_level, "debug") && strcmp(cfg->log_level, "info") && strcmp(cfg->log_level, "warn") &&
        strcmp(cfg->log_level, "error")) {
        snprintf(err, errlen, "log_level must be debug, info, warn or error (not '%s')", cfg->log_level);
        return false;
    }
    if (strcmp(cfg->log_format, "text") && strcmp(cfg->log_format, "json")) {
        snprintf(err, errlen, "log_format must be text or json (not '%s')", cfg->log_format);
        return false;
    }
    if (*cfg->public_url && strncmp(cfg->public_url, "http://", 7) && strncmp(cfg->public_url, "https://", 8)) {
        snprintf(err, errlen, "public_url must start with http:// or https:// (not '%s')", cfg->public_url);
        return false;
    }
    if (cfg->agent_jobs < 1 || cfg->agent_heartbeat < 1 || cfg->agent_dead_after <= 2 * cfg->agent_heartbeat) {
        snprintf(err, errlen,
                 "agent_jobs and agent_heartbeat must be at least 1, and agent_dead_after more than "
                 "twice agent_heartbeat");
        return false;
    }
    if (!*cfg->operator_token && *cfg->operator_token_file) {
        FILE *f = fopen(cfg->operator_token_file, "r");
        char line[512];
        if (!f || !fgets(line, sizeof(line), f)) {
            snprintf(err, errlen, "operator_token_file %s cannot be read: %s", cfg->operator_token_file,
                     f ? "it is empty" : strerror(errno));
            if (f)
                fclose(f);
            return false;
        }
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        free(cfg->operator_token);
        cfg->operator_token = xstrdup(trim(line));
    }
    if (cfg->list_page_size < 1)
        cfg->list_page_size = 1;
    size_t bl = strlen(cfg->base_path);
    while (bl > 0 && cfg->base_path[bl - 1] == '/')
        cfg->base_path[--bl] = '\0';
    return true;
}

/* Defaults, the file, the environment, then the rules; problems as in load_file. */
static bool load(Config *cfg, const char *path, char *err, size_t errlen, Buf *problems)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        if (!apply(cfg, &entries[i], entries[i].def, err, errlen))
            return false;
    if (!path || !*path)
        path = getenv("PULUMI_STATE_CONFIG");
    if (path && *path && !load_file(cfg, path, err, errlen, problems))
        return false;
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        const char *v = getenv(entries[i].env);
        if (v && !apply(cfg, &entries[i], v, err, errlen)) {
            if (!problems)
                return false;
            buf_printf(problems, "environment %s: %s\n", entries[i].env, err);
        }
    }
    if (!validate(cfg, err, errlen)) {
        if (!problems)
            return false;
        buf_printf(problems, "%s\n", err);
    }
    return true;
}

bool config_load(Config *cfg, const char *path, char *err, size_t errlen)
{
    return load(cfg, path, err, errlen, NULL);
}

extern char **environ;

bool config_check(Config *cfg, const char *path, Buf *problems)
{
    char err[512];
    size_t before = problems->len;
    if (!load(cfg, path, err, sizeof(err), problems))
        buf_printf(problems, "%s\n", err);
    /* A variable of ours that sets nothing is most likely a typo. */
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "PULUMI_STATE_", 13) != 0 && strncmp(*e, "ITL_PULUMI_", 11) != 0)
            continue;
        size_t n = strcspn(*e, "=");
        bool known = n == strlen("PULUMI_STATE_CONFIG") && !strncmp(*e, "PULUMI_STATE_CONFIG", n);
        for (size_t i = 0; !known && i < sizeof(entries) / sizeof(entries[0]); i++)
            known = strlen(entries[i].env) == n && !strncmp(*e, entries[i].env, n);
        if (!known)
            buf_printf(problems, "environment %.*s: no such setting (see pulumi-state-admin config-reference)\n",
                       (int)n, *e);
    }
    return problems->len == before;
}

void config_free(Config *cfg)
{
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        if (entries[i].type == CF_STR) {
            char **p = (char **)((char *)cfg + entries[i].offset);
            free(*p);
            *p = NULL;
        }
}

void config_print_reference(void)
{
    printf("| setting | environment | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        printf("| `%s` | `%s` | `%s` | %s |\n", entries[i].name, entries[i].env, entries[i].def, entries[i].help);
}

int config_args(int argc, char **argv, const char *program, const char *version, const char **conf_path)
{
    *conf_path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            *conf_path = argv[++i];
        } else if (!strcmp(argv[i], "--version")) {
            printf("%s %s\n", program, version);
            return 0;
        } else {
            fprintf(stderr, "usage: %s [-c CONFIG] [--version]\n", program);
            return 2;
        }
    }
    return -1;
}
