/* admin.c - pulumi-state-admin: one-shot operator commands, one row each in the command table
 * (name, handler, usage); the usage text is made from the table. Tokens, audit rows, migrations and
 * the lease reaper are the lib/ code the worker runs too. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <errno.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "config.h"
#include "crypto.h"
#include "audit.h"
#include "db.h"
#include "migrate.h"
#include "retention.h"
#include "token.h"
#include "update.h"
#include "util.h"

static int usage(void);

static int cmd_migrate(const Config *cfg)
{
    Db *db = db_open(cfg->database);
    if (!db)
        return 1;
    int applied = 0;
    bool ok = migrate_run(db, &applied);
    if (ok)
        printf("schema at version %d (%d applied now)\n", migrate_latest(), applied);
    db_close(db);
    return ok ? 0 : 1;
}

static int cmd_schema_version(const Config *cfg)
{
    Db *db = db_open(cfg->database);
    if (!db)
        return 1;
    printf("applied %d, latest %d\n", migrate_current(db), migrate_latest());
    db_close(db);
    return 0;
}

static int cmd_gen_key(void)
{
    unsigned char key[CRYPTO_KEY_LEN];
    char hex[2 * CRYPTO_KEY_LEN + 1];
    if (!crypto_random(key, sizeof(key)))
        return 1;
    hex_encode(key, sizeof(key), hex);
    printf("%s\n", hex);
    return 0;
}

/* The operator running the command, as the audit trail names it: "admin:<user>". */
static const char *admin_actor(void)
{
    static char actor[128];
    const char *u = getenv("SUDO_USER");
    if (!u || !*u)
        u = getenv("USER");
    snprintf(actor, sizeof(actor), "admin:%s", u && *u ? u : "admin-cli");
    return actor;
}

/* The audit row of an operator command (inside the caller's transaction). */
static Audit admin_audit(const char *action, const char *detail)
{
    return (Audit){.enabled = true, .actor = admin_actor(), .action = action, .client_addr = "local", .detail = detail};
}

static void print_error(const ApiError *e)
{
    /* "Conflict: a token named 'x' exists already" -> "a token named 'x' exists already". */
    const char *m = strchr(e->message, ':');
    fprintf(stderr, "pulumi-state-admin: %s\n", m && e->status < 500 ? m + 2 : e->message);
}

static const char *opt(int argc, char **argv, int from, const char *name)
{
    for (int i = from; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return NULL;
}

/* "30d", "12h", "90m", "600s" or plain seconds -> seconds; -1 if malformed. */
static long long parse_duration(const char *s)
{
    size_t digits = strspn(s, "0123456789");
    const char *end = s + digits;
    long long n = 0;
    /* At most 100 years, whatever the unit. */
    if (!parse_int64(s, (long)digits, 1, 100LL * 366 * 86400, &n))
        return -1;
    long long mul = 1;
    if (*end == 'd')
        mul = 86400;
    else if (*end == 'h')
        mul = 3600;
    else if (*end == 'm')
        mul = 60;
    else if (*end == 's' || *end == '\0')
        mul = 1;
    else
        return -1;
    if (*end && end[1])
        return -1;
    if (n > 100LL * 366 * 86400 / mul)
        return -1;
    return n * mul;
}

static int cmd_token_create(const Config *cfg, int argc, char **argv, int i)
{
    const char *name = opt(argc, argv, i, "--name"), *role = opt(argc, argv, i, "--role");
    const char *scope = opt(argc, argv, i, "--scope"), *expires = opt(argc, argv, i, "--expires");
    if (!scope)
        scope = "*";
    int r = role_parse(role);
    if (!name || !*name || strlen(name) > 100 || r < 0) {
        fprintf(stderr, "pulumi-state-admin: token create needs --name NAME --role read|write|admin\n");
        return 2;
    }
    if (token_name_reserved(name)) {
        fprintf(stderr, "pulumi-state-admin: the token name '%s' is reserved\n", name);
        return 2;
    }
    if (!token_scope_valid(scope)) {
        fprintf(stderr, "pulumi-state-admin: --scope is a glob over ORG/PROJECT/STACK using * and ?\n");
        return 2;
    }
    long long secs = expires ? parse_duration(expires) : 0;
    if (secs < 0) {
        fprintf(stderr, "pulumi-state-admin: --expires takes a duration such as 30d, 12h, 90m or 600s\n");
        return 2;
    }
    Db *db = db_open(cfg->database);
    if (!db)
        return 1;
    char *token = NULL;
    ApiError e;
    int rc = 0;
    if (token_create(db, name, (Role)r, scope, secs, admin_actor(), &token, &e)) {
        printf("%s\n", token);
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    } else {
        print_error(&e);
        rc = 1;
    }
    db_close(db);
    return rc;
}

static int cmd_token_list(const Config *cfg, int argc, char **argv, int i)
{
    (void)argc, (void)argv, (void)i;
    Db *db = db_open(cfg->database);
    PGresult *r = db ? token_list(db) : NULL;
    if (r) {
        printf("%-24s %-6s %-30s %-25s %-25s %-25s %s\n", "NAME", "ROLE", "SCOPE", "CREATED", "EXPIRES", "LAST USED",
               "STATE");
        for (int k = 0; k < PQntuples(r); k++)
            printf("%-24s %-6s %-30s %-25s %-25s %-25s %s\n", PQgetvalue(r, k, 0), PQgetvalue(r, k, 1),
                   PQgetvalue(r, k, 2), PQgetvalue(r, k, 3), PQgetvalue(r, k, 4), PQgetvalue(r, k, 5),
                   PQgetvalue(r, k, 6));
    }
    int rc = r ? 0 : 1;
    PQclear(r);
    db_close(db);
    return rc;
}

static int cmd_token_revoke(const Config *cfg, int argc, char **argv, int i)
{
    if (i >= argc)
        return usage();
    Db *db = db_open(cfg->database);
    if (!db)
        return 1;
    ApiError e;
    int rc = 0;
    if (token_revoke(db, argv[i], admin_actor(), &e)) {
        printf("revoked %s\n", argv[i]);
    } else {
        print_error(&e);
        rc = 1;
    }
    db_close(db);
    return rc;
}

static int cmd_reap_leases(const Config *cfg, int argc, char **argv, int i)
{
    (void)argc, (void)argv, (void)i;
    Db *db = db_open(cfg->database);
    int n = db ? update_reap_expired(db) : -1;
    if (n >= 0)
        printf("reaped %d expired leases\n", n);
    db_close(db);
    return n >= 0 ? 0 : 1;
}

static void prune_progress(const char *what, long long so_far, void *arg)
{
    (void)arg;
    printf("  %s: %lld deleted\n", what, so_far);
    fflush(stdout);
}

static int cmd_prune(const Config *cfg, int argc, char **argv, int i)
{
    (void)argc, (void)argv, (void)i;
    Db *db = db_open(cfg->database);
    if (!db)
        return 1;
    printf("pruning: versions beyond %d per stack or older than %d days (0 = kept), journals of ended updates, "
           "events after %d days, audit after %d days, deployment logs after %d days\n",
           cfg->retain_versions, cfg->retain_version_days, cfg->retain_events_days, cfg->retain_audit_days,
           cfg->retain_deployment_log_days);
    long long n = retention_prune(db, cfg, prune_progress, NULL);
    db_close(db);
    if (n < 0) {
        fprintf(stderr, "pulumi-state-admin: the prune failed (what was deleted before stays deleted)\n");
        return 1;
    }
    printf("pruned %lld rows\n", n);
    return 0;
}

/* Re-wrap every stack key from the old master key to the new one in one transaction; keys
 * already under the new one (stacks created by workers that have it) are left as they are. */
static int cmd_rotate(const Config *cfg, int argc, char **argv, int i)
{
    unsigned char old_key[CRYPTO_KEY_LEN], new_key[CRYPTO_KEY_LEN], data[CRYPTO_KEY_LEN];
    if (!crypto_read_key_file(opt(argc, argv, i, "--old-key-file"), old_key) ||
        !crypto_read_key_file(opt(argc, argv, i, "--new-key-file"), new_key)) {
        fprintf(stderr, "pulumi-state-admin: rotate-master-key needs --old-key-file F --new-key-file G, each "
                        "holding a key (64 hex digits or base64 of 32 bytes)\n");
        return 2;
    }
    int rc = 1, rewrapped = 0, kept = 0;
    Db *db = db_open(cfg->database);
    if (!db || !db_begin(db) || !db_lock(db, "pulumi-state:rotate-master-key"))
        goto out;
    PGresult *r =
        db_exec(db, "SELECT value FROM extension_pulumi_state_schema WHERE name = 'canary' FOR UPDATE", 0, NULL, false);
    if (!r)
        goto out;
    bool canary_old = PQntuples(r) == 1 && crypto_canary_check(old_key, PQgetvalue(r, 0, 0));
    bool canary_new = PQntuples(r) == 1 && crypto_canary_check(new_key, PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!canary_old && !canary_new) {
        fprintf(stderr, "pulumi-state-admin: neither key matches this database's canary; nothing changed\n");
        goto out;
    }
    r = db_exec(db, "SELECT id, secrets_key FROM extension_pulumi_state_stacks ORDER BY id FOR UPDATE", 0, NULL, false);
    if (!r)
        goto out;
    for (int k = 0; k < PQntuples(r); k++) {
        const char *id = PQgetvalue(r, k, 0), *wrapped = PQgetvalue(r, k, 1);
        if (crypto_unwrap_key(new_key, id, wrapped, data)) {
            kept++;
            continue;
        }
        if (!crypto_unwrap_key(old_key, id, wrapped, data)) {
            fprintf(stderr, "pulumi-state-admin: stack %s's key opens under neither key; nothing changed\n", id);
            PQclear(r);
            goto out;
        }
        char *rewrap = crypto_wrap_key(new_key, id, data);
        DbParam p[] = {DB_TEXT(id), DB_TEXT(rewrap)};
        bool ok = db_run(db, "UPDATE extension_pulumi_state_stacks SET secrets_key = $2 WHERE id = $1", 2, p);
        free(rewrap);
        if (!ok) {
            PQclear(r);
            goto out;
        }
        rewrapped++;
    }
    PQclear(r);
    char *canary = crypto_canary_new(new_key);
    DbParam c[] = {DB_TEXT(canary)};
    bool ok = db_run(db, "UPDATE extension_pulumi_state_schema SET value = $1, at = now() WHERE name = 'canary'", 1, c);
    free(canary);
    char *detail = xasprintf("rewrapped=%d already=%d", rewrapped, kept);
    Audit a = admin_audit("master-key.rotate", detail);
    ok = ok && audit_commit(db, &a);
    free(detail);
    if (!ok)
        goto out;
    printf("re-wrapped %d stack keys (%d were already under the new key); the canary now needs the new key\n",
           rewrapped, kept);
    rc = 0;
out:
    OPENSSL_cleanse(old_key, sizeof(old_key));
    OPENSSL_cleanse(new_key, sizeof(new_key));
    OPENSSL_cleanse(data, sizeof(data));
    if (db)
        db_rollback(db);
    db_close(db);
    return rc;
}

static int cmd_audit(const Config *cfg, int argc, char **argv, int i)
{
    const char *since = opt(argc, argv, i, "--since"), *stack = opt(argc, argv, i, "--stack");
    const char *limit = opt(argc, argv, i, "--limit");
    char *org = NULL, *project = NULL, *name = NULL;
    if (stack) {
        char *copy = xstrdup(stack), *a = strchr(copy, '/'), *b = a ? strchr(a + 1, '/') : NULL;
        if (!a || !b) {
            free(copy);
            fprintf(stderr, "pulumi-state-admin: --stack takes ORG/PROJECT/STACK\n");
            return 2;
        }
        *a = *b = '\0';
        org = xstrdup(copy);
        project = xstrdup(a + 1);
        name = xstrdup(b + 1);
        free(copy);
    }
    int rc = 1;
    Db *db = db_open(cfg->database);
    if (!db)
        goto out;
    DbParam p[] = {DB_TEXT(since), DB_TEXT(org), DB_TEXT(project), DB_TEXT(name), DB_TEXT(limit ? limit : "1000")};
    PGresult *r = db_exec(db,
                          "SELECT to_char(at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF'), actor, action, "
                          "coalesce(org || '/' || project || '/' || coalesce(stack, '-'), '-'), status, "
                          "coalesce(client_addr, '-'), coalesce(request_id, '-'), coalesce(detail, '') "
                          "FROM extension_pulumi_state_audit WHERE ($1::timestamptz IS NULL OR at >= $1::timestamptz) "
                          "AND ($2::text IS NULL OR (org = $2 AND project = $3 AND stack = $4)) "
                          "ORDER BY id LIMIT $5::int",
                          5, p, false);
    if (!r) {
        fprintf(stderr, "pulumi-state-admin: the audit query failed (check --since and --limit)\n");
        goto out;
    }
    printf("%-29s %-24s %-28s %-40s %-6s %-16s %-32s %s\n", "TIME", "ACTOR", "ACTION", "STACK", "STATUS", "CLIENT",
           "REQUEST", "DETAIL");
    for (int k = 0; k < PQntuples(r); k++)
        printf("%-29s %-24s %-28s %-40s %-6s %-16s %-32s %s\n", PQgetvalue(r, k, 0), PQgetvalue(r, k, 1),
               PQgetvalue(r, k, 2), PQgetvalue(r, k, 3), PQgetvalue(r, k, 4), PQgetvalue(r, k, 5), PQgetvalue(r, k, 6),
               PQgetvalue(r, k, 7));
    PQclear(r);
    rc = 0;
out:
    db_close(db);
    free(org);
    free(project);
    free(name);
    return rc;
}

typedef int (*CommandFn)(const Config *cfg, int argc, char **argv, int i);

/* The commands: name (one or two words), whether it needs the configuration (and database), the
 * handler (argv[i] is the first argument after the name), and its usage line. */
/* The -c file, for the commands that load the configuration themselves. */
static const char *check_config_path;

typedef struct Command {
    const char *name;
    bool needs_config;
    CommandFn run;
    const char *args;
    const char *help;
} Command;

static int cmd_migrate_fn(const Config *cfg, int argc, char **argv, int i)
{
    (void)argc, (void)argv, (void)i;
    return cmd_migrate(cfg);
}

static int cmd_schema_version_fn(const Config *cfg, int argc, char **argv, int i)
{
    (void)argc, (void)argv, (void)i;
    return cmd_schema_version(cfg);
}

static int cmd_gen_key_fn(const Config *cfg, int argc, char **argv, int i)
{
    (void)cfg, (void)argc, (void)argv, (void)i;
    return cmd_gen_key();
}

static int cmd_config_reference(const Config *cfg, int argc, char **argv, int i)
{
    (void)cfg, (void)argc, (void)argv, (void)i;
    config_print_reference();
    return 0;
}

/* One key setting: absent (fine unless required), loads, or a clear problem. */
static bool check_key(const char *what, const char *value, const char *file, bool required,
                      unsigned char key[CRYPTO_KEY_LEN], bool *have, Buf *problems)
{
    bool given = false;
    *have = crypto_load_key(value, file, key, &given);
    if (*have)
        return true;
    if (!given) {
        if (required)
            buf_printf(problems, "no %s: set PULUMI_STATE_MASTER_KEY or PULUMI_STATE_MASTER_KEY_FILE (gen-key)\n",
                       what);
        return !required;
    }
    if (*file && access(file, R_OK) != 0)
        buf_printf(problems, "the %s file %s cannot be read: %s\n", what, file, strerror(errno));
    else
        buf_printf(problems, "the %s is not a key (64 hex digits or base64 of 32 bytes)\n", what);
    return false;
}

/* check-config: everything a worker or an agent would refuse at start, and what would quietly not
 * work, said at once before a deploy. */
static int cmd_check_config(const Config *unused, int argc, char **argv, int i)
{
    (void)unused, (void)argc, (void)argv, (void)i;
    const char *path = check_config_path;
    Config cfg;
    Buf problems;
    buf_init(&problems);
    config_check(&cfg, path, &problems);
    if (!*cfg.operator_token)
        buf_puts(&problems, "no operator token: set ITL_PULUMI_TOKEN (or operator_token)\n");
    unsigned char master[CRYPTO_KEY_LEN], old[CRYPTO_KEY_LEN];
    bool have_master = false, have_old = false;
    check_key("master key", cfg.master_key, cfg.master_key_file, true, master, &have_master, &problems);
    check_key("old master key", cfg.old_master_key, cfg.old_master_key_file, false, old, &have_old, &problems);
    if (!*cfg.public_url)
        printf("note: public_url is not set: deployments' consoleUrl and machines' config_url are relative, and "
               "the deploy agent will not start\n");
    Db *db = db_open(cfg.database);
    if (!db) {
        buf_puts(&problems, "the database is unreachable with the configured conninfo\n");
    } else {
        printf("ok: the database answers\n");
        int cur = migrate_current(db);
        if (cur != migrate_latest())
            buf_printf(&problems, "the schema is at %d, this build needs %d: run pulumi-state-admin migrate\n", cur,
                       migrate_latest());
        else
            printf("ok: the schema is current (%d)\n", cur);
        PGresult *r =
            db_exec(db, "SELECT value FROM extension_pulumi_state_schema WHERE name = 'canary'", 0, NULL, false);
        if (r && PQntuples(r) == 1 && have_master) {
            if (crypto_canary_check(master, PQgetvalue(r, 0, 0)) ||
                (have_old && crypto_canary_check(old, PQgetvalue(r, 0, 0))))
                printf("ok: the master key matches the database\n");
            else
                buf_puts(&problems, "the master key does not match this database (canary); the workers refuse it\n");
        } else if (r && PQntuples(r) == 0) {
            printf("note: no canary yet: the first worker to start records it\n");
        }
        PQclear(r);
        db_close(db);
    }
    OPENSSL_cleanse(master, sizeof(master));
    OPENSSL_cleanse(old, sizeof(old));
    int n = 0;
    for (size_t k = 0; k < problems.len; k++)
        n += problems.data[k] == '\n';
    if (n)
        printf("%.*s", (int)problems.len, problems.data);
    if (n)
        printf("%d problem%s\n", n, n == 1 ? "" : "s");
    else
        printf("the configuration is good\n");
    buf_free(&problems);
    config_free(&cfg);
    return n ? 1 : 0;
}

static const Command commands[] = {
    {"migrate", true, cmd_migrate_fn, "", "apply pending schema migrations (safe to run concurrently)"},
    {"schema-version", true, cmd_schema_version_fn, "", "print the applied and the latest schema version"},
    {"gen-key", false, cmd_gen_key_fn, "", "print a new random master key (64 hex digits)"},
    {"token create", true, cmd_token_create,
     "--name NAME --role read|write|admin [--scope ORG/PROJECT/STACK-glob] [--expires DURATION]",
     "create an API token (printed once; durations: 30d, 12h, 90m, 600s)"},
    {"token list", true, cmd_token_list, "", "list tokens (name, role, scope, created, expires, last used, state)"},
    {"token revoke", true, cmd_token_revoke, "NAME", "revoke a token at once, on every worker"},
    {"rotate-master-key", true, cmd_rotate, "--old-key-file F --new-key-file G",
     "re-wrap every stack key under the new master key, in one transaction"},
    {"reap-leases", true, cmd_reap_leases, "", "end every update whose lease has expired (keeping what it recorded)"},
    {"prune", true, cmd_prune, "",
     "delete what the retain_* settings no longer keep, in small batches (never a stack's current version)"},
    {"audit", true, cmd_audit, "[--since TIMESTAMP] [--stack ORG/PROJECT/STACK] [--limit N]", "print the audit trail"},
    {"config-reference", false, cmd_config_reference, "", "print the settings table (Markdown)"},
    {"check-config", false, cmd_check_config, "",
     "check the config file and environment: unknown or bad settings, keys, the database, the schema, the canary"},
    {NULL, false, NULL, NULL, NULL},
};

static int usage(void)
{
    fprintf(stderr, "usage: pulumi-state-admin [-c CONFIG] COMMAND\ncommands:\n");
    for (const Command *c = commands; c->name; c++) {
        fprintf(stderr, "  %s%s%s\n", c->name, *c->args ? " " : "", c->args);
        fprintf(stderr, "      %s\n", c->help);
    }
    return 2;
}

/* The command named by argv[i] (and argv[i+1] for two-word names); *next is the argument after. */
static const Command *find_command(int argc, char **argv, int i, int *next)
{
    for (const Command *c = commands; c->name; c++) {
        const char *space = strchr(c->name, ' ');
        size_t first = space ? (size_t)(space - c->name) : strlen(c->name);
        if (strlen(argv[i]) != first || strncmp(argv[i], c->name, first) != 0)
            continue;
        if (!space) {
            *next = i + 1;
            return c;
        }
        if (i + 1 < argc && !strcmp(argv[i + 1], space + 1)) {
            *next = i + 2;
            return c;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    int i = 1;
    log_set_program("pulumi-state-admin");
    if (i + 1 < argc && (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))) {
        conf_path = argv[i + 1];
        i += 2;
    }
    if (i >= argc)
        return usage();
    if (!strcmp(argv[i], "--version")) {
        printf("pulumi-state-admin %s\n", PACKAGE_VERSION);
        return 0;
    }
    check_config_path = conf_path;
    int next = 0;
    const Command *cmd = find_command(argc, argv, i, &next);
    if (!cmd)
        return usage();
    if (!cmd->needs_config)
        return cmd->run(NULL, argc, argv, next);
    Config cfg;
    char err[512];
    if (!config_load(&cfg, conf_path, err, sizeof(err))) {
        fprintf(stderr, "pulumi-state-admin: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    db_set_prepared(cfg.prepared_statements);
    int rc = cmd->run(&cfg, argc, argv, next);
    config_free(&cfg);
    return rc;
}
