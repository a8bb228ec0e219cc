/* admin.c - pulumi-state-admin: one-shot operator commands (migrate, gen-key, config reference). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    else
        rc = usage();
    config_free(&cfg);
    return rc;
}
