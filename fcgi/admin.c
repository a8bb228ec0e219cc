/* admin.c - pulumi-state-admin: one-shot operator commands (migrate, gen-key, config reference). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <openssl/crypto.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "migrate.h"
#include "util.h"

static int usage(void)
{
    fprintf(stderr, "usage: pulumi-state-admin [-c CONFIG] COMMAND\n"
                    "commands:\n"
                    "  migrate            apply pending schema migrations (safe to run concurrently)\n"
                    "  schema-version     print the applied and the latest schema version\n"
                    "  gen-key            print a new random master key (64 hex digits)\n"
                    "  token create --name NAME --role read|write|admin [--scope ORG/PROJECT/STACK-glob]\n"
                    "               [--expires DURATION]   create an API token (printed once; 30d, 12h, 90m, 600s)\n"
                    "  token list         list tokens (name, role, scope, created, expires, last used, revoked)\n"
                    "  token revoke NAME  revoke a token at once, on every worker\n"
                    "  rotate-master-key --old-key-file F --new-key-file G\n"
                    "                     re-wrap every stack key under the new master key, in one transaction\n"
                    "  audit [--since TIMESTAMP] [--stack ORG/PROJECT/STACK] [--limit N]   print the audit trail\n"
                    "  config-reference   print the settings table (Markdown)\n");
    return 2;
}

static int cmd_migrate(const Config *cfg)
{
    Db *db = db_open(cfg->database);
    if (!db)
        return 1;
    int applied = 0;
    bool ok = migrate_run(db->conn, &applied);
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
    printf("applied %d, latest %d\n", migrate_current(db->conn), migrate_latest());
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

static const char *admin_actor(void)
{
    const char *u = getenv("SUDO_USER");
    if (!u || !*u)
        u = getenv("USER");
    return u && *u ? u : "admin-cli";
}

/* Write an audit row for an operator command, inside the caller's transaction. */
static bool admin_audit(Db *db, const char *action, const char *detail, int status)
{
    char actor[128], sbuf[16];
    snprintf(actor, sizeof(actor), "admin:%s", admin_actor());
    snprintf(sbuf, sizeof(sbuf), "%d", status);
    DbParam p[] = {DB_TEXT(actor), DB_TEXT(action), DB_TEXT(sbuf), DB_TEXT(detail)};
    return db_run(db,
                  "INSERT INTO extension_pulumi_state_audit (actor, action, status, client_addr, detail) "
                  "VALUES ($1, $2, $3::int, 'local', $4)",
                  4, p);
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

static bool scope_valid(const char *s)
{
    if (!*s || strlen(s) > 300)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-_./*?", *s))
            return false;
    return true;
}

static int cmd_token(const Config *cfg, int argc, char **argv, int i)
{
    const char *sub = i < argc ? argv[i] : "";
    Db *db = NULL;
    int rc = 1;
    if (!strcmp(sub, "create")) {
        const char *name = opt(argc, argv, i, "--name"), *role = opt(argc, argv, i, "--role");
        const char *scope = opt(argc, argv, i, "--scope"), *expires = opt(argc, argv, i, "--expires");
        if (!scope)
            scope = "*";
        if (!name || !*name || strlen(name) > 100 || !role ||
            (strcmp(role, "read") && strcmp(role, "write") && strcmp(role, "admin"))) {
            fprintf(stderr, "pulumi-state-admin: token create needs --name NAME --role read|write|admin\n");
            return 2;
        }
        if (!strcmp(name, "operator") || !strcmp(name, "update-token") || !strcmp(name, "anonymous")) {
            fprintf(stderr, "pulumi-state-admin: the token name '%s' is reserved\n", name);
            return 2;
        }
        if (!scope_valid(scope)) {
            fprintf(stderr, "pulumi-state-admin: --scope is a glob over ORG/PROJECT/STACK using * and ?\n");
            return 2;
        }
        long long secs = expires ? parse_duration(expires) : 0;
        if (secs < 0) {
            fprintf(stderr, "pulumi-state-admin: --expires takes a duration such as 30d, 12h, 90m or 600s\n");
            return 2;
        }
        unsigned char raw[32];
        char hex[65], token[70], hash[65], sbuf[24];
        if (!crypto_random(raw, sizeof(raw)))
            return 1;
        hex_encode(raw, sizeof(raw), hex);
        snprintf(token, sizeof(token), "pst_%s", hex);
        sha256_hex(token, strlen(token), hash);
        snprintf(sbuf, sizeof(sbuf), "%lld", secs);
        if (!(db = db_open(cfg->database)) || !db_begin(db))
            goto out;
        DbParam p[] = {DB_TEXT(name), DB_TEXT(hash), DB_TEXT(role), DB_TEXT(scope), DB_TEXT(sbuf)};
        if (!db_run(db,
                    "INSERT INTO extension_pulumi_state_tokens (name, token_hash, role, scope, expires_at) VALUES "
                    "($1, $2, $3, $4, CASE WHEN $5::bigint > 0 THEN now() + make_interval(secs => $5::bigint) END)",
                    5, p)) {
            if (!strcmp(db_last_sqlstate(), "23505"))
                fprintf(stderr, "pulumi-state-admin: a token named '%s' exists already\n", name);
            goto out;
        }
        char *detail = xasprintf("name=%s role=%s scope=%s", name, role, scope);
        bool ok = admin_audit(db, "token.create", detail, 200) && db_commit(db);
        free(detail);
        if (!ok)
            goto out;
        printf("%s\n", token);
        OPENSSL_cleanse(token, sizeof(token));
        rc = 0;
    } else if (!strcmp(sub, "list")) {
        if (!(db = db_open(cfg->database)))
            goto out;
        PGresult *r = db_exec(db,
                              "SELECT name, role, scope, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), "
                              "coalesce(to_char(expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), '-'), "
                              "coalesce(to_char(last_used_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), '-'), "
                              "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at <= now() THEN "
                              "'expired' ELSE 'active' END FROM extension_pulumi_state_tokens ORDER BY name",
                              0, NULL, false);
        if (!r)
            goto out;
        printf("%-24s %-6s %-30s %-25s %-25s %-25s %s\n", "NAME", "ROLE", "SCOPE", "CREATED", "EXPIRES", "LAST USED",
               "STATE");
        for (int k = 0; k < PQntuples(r); k++)
            printf("%-24s %-6s %-30s %-25s %-25s %-25s %s\n", PQgetvalue(r, k, 0), PQgetvalue(r, k, 1),
                   PQgetvalue(r, k, 2), PQgetvalue(r, k, 3), PQgetvalue(r, k, 4), PQgetvalue(r, k, 5),
                   PQgetvalue(r, k, 6));
        PQclear(r);
        rc = 0;
    } else if (!strcmp(sub, "revoke") && i + 1 < argc) {
        const char *name = argv[i + 1];
        if (!(db = db_open(cfg->database)) || !db_begin(db))
            goto out;
        DbParam p[] = {DB_TEXT(name)};
        PGresult *r = db_exec(db,
                              "UPDATE extension_pulumi_state_tokens SET revoked_at = coalesce(revoked_at, now()) "
                              "WHERE name = $1 RETURNING 1",
                              1, p, false);
        if (!r)
            goto out;
        int n = PQntuples(r);
        PQclear(r);
        if (n == 0) {
            fprintf(stderr, "pulumi-state-admin: no token named '%s'\n", name);
            goto out;
        }
        char *detail = xasprintf("name=%s", name);
        bool ok = admin_audit(db, "token.revoke", detail, 200) && db_commit(db);
        free(detail);
        if (!ok)
            goto out;
        printf("revoked %s\n", name);
        rc = 0;
    } else {
        return usage();
    }
out:
    if (db)
        db_rollback(db);
    db_close(db);
    return rc;
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
    PGresult *r = db_exec(db, "SELECT value FROM extension_pulumi_state_schema WHERE name = 'canary' FOR UPDATE", 0,
                          NULL, false);
    if (!r)
        goto out;
    bool canary_old = PQntuples(r) == 1 && crypto_canary_check(old_key, PQgetvalue(r, 0, 0));
    bool canary_new = PQntuples(r) == 1 && crypto_canary_check(new_key, PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!canary_old && !canary_new) {
        fprintf(stderr, "pulumi-state-admin: neither key matches this database's canary; nothing changed\n");
        goto out;
    }
    r = db_exec(db, "SELECT id, secrets_key FROM extension_pulumi_state_stacks ORDER BY id FOR UPDATE", 0, NULL,
                false);
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
    ok = ok && admin_audit(db, "master-key.rotate", detail, 200) && db_commit(db);
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
    const char *cmd = argv[i];
    if (!strcmp(cmd, "--version")) {
        printf("pulumi-state-admin %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "gen-key"))
        return cmd_gen_key();
    if (!strcmp(cmd, "config-reference")) {
        config_print_reference();
        return 0;
    }
    Config cfg;
    char err[512];
    if (!config_load(&cfg, conf_path, err, sizeof(err))) {
        fprintf(stderr, "pulumi-state-admin: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    int rc;
    if (!strcmp(cmd, "migrate"))
        rc = cmd_migrate(&cfg);
    else if (!strcmp(cmd, "schema-version"))
        rc = cmd_schema_version(&cfg);
    else if (!strcmp(cmd, "token"))
        rc = cmd_token(&cfg, argc, argv, i + 1);
    else if (!strcmp(cmd, "rotate-master-key"))
        rc = cmd_rotate(&cfg, argc, argv, i + 1);
    else if (!strcmp(cmd, "audit"))
        rc = cmd_audit(&cfg, argc, argv, i + 1);
    else
        rc = usage();
    config_free(&cfg);
    return rc;
}
