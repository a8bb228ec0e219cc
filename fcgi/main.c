/* main.c - pulumi-state-fcgi: startup (config, keys, schema and canary checks, threads, signals);
 * the FastCGI adapter the threads run is fastcgi.c.
 *
 * DESIGN
 * ------
 * Processes: the web server (lighttpd bin-path, spawn-fcgi, or the worker's own socket for
 * Apache mod_proxy_fcgi) starts N worker processes; each runs `threads` request threads.
 *
 * Threads: every thread owns one FCGX_Request and one PostgreSQL connection (Db), and serves
 * requests one at a time: accept, parse (method, path under base_path, query, headers, body with
 * size limits and gzip inflation), match the route table (routes.c), authenticate (auth.c),
 * run the handler (api-*.c), write the reply. Nothing survives a request but the connection:
 * the whole truth of a stack lives in PostgreSQL, so any thread of any worker on any host can
 * serve any request. FCGX_Accept_r is serialised by one mutex (libfcgi's documented pattern).
 *
 * Ordering and concurrency: handlers that change a stack take a transaction-scoped advisory lock
 * on the stack (db_lock) for the length of one short transaction; nothing is held across
 * requests. Leases are rows with an expiry, reaped when the stack is next touched.
 *
 * Shutdown: SIGTERM/SIGINT are blocked in every thread and taken by the main thread with
 * sigwait. Request threads run with cancellation disabled and enable it only while waiting in
 * accept, so pthread_cancel stops idle threads at once and busy ones right after their current
 * request. The main thread then closes the database connections and exits 0.
 */
#include "autoconfig.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "db.h"
#include "fastcgi.h"
#include "http.h"
#include "metrics.h"
#include "migrate.h"

/* Check the schema is current and the master key (or, during a rotation, the old one) matches
 * the canary, writing the canary on first use. */
static bool check_database(const Config *cfg, const unsigned char key[CRYPTO_KEY_LEN], const unsigned char *old_key)
{
    Db *db = db_open(cfg->database);
    if (!db) {
        fprintf(stderr, "pulumi-state-fcgi: cannot connect to the database\n");
        return false;
    }
    bool ok = false;
    int cur = migrate_current(db);
    if (cur < migrate_latest()) {
        fprintf(stderr,
                "pulumi-state-fcgi: the database schema is not current (have %d, need %d); "
                "run `pulumi-state-admin migrate`\n",
                cur, migrate_latest());
        goto out;
    }
    char *canary = crypto_canary_new(key);
    DbParam p[] = {DB_TEXT(canary)};
    if (!db_run(db,
                "INSERT INTO extension_pulumi_state_schema (name, value) VALUES ('canary', $1) "
                "ON CONFLICT (name) DO NOTHING",
                1, p))
        log_warn("could not record the master key canary");
    free(canary);
    PGresult *r = db_exec(db, "SELECT value FROM extension_pulumi_state_schema WHERE name = 'canary'", 0, NULL, false);
    if (r && PQntuples(r) == 1 &&
        (crypto_canary_check(key, PQgetvalue(r, 0, 0)) ||
         (old_key && crypto_canary_check(old_key, PQgetvalue(r, 0, 0)))))
        ok = true;
    else
        fprintf(stderr, "pulumi-state-fcgi: the master key does not match this database (canary check failed); "
                        "refusing to start\n");
    PQclear(r);
out:
    db_close(db);
    return ok;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    int rc = config_args(argc, argv, "pulumi-state-fcgi", PACKAGE_VERSION, &conf_path);
    if (rc >= 0)
        return rc;
    log_set_program("pulumi-state-fcgi");
    /* States are megabytes: buffers from 128 KiB up are mapped on their own and go back to the
     * system when freed, so a worker's memory follows the request in hand, not the largest one it
     * ever served (glibc would otherwise raise this threshold after the first big free). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    Config cfg;
    char err[512];
    if (!config_load(&cfg, conf_path, err, sizeof(err))) {
        fprintf(stderr, "pulumi-state-fcgi: %s\n", err);
        goto fail;
    }
    db_set_prepared(cfg.prepared_statements);
    if (!strcmp(cfg.log_level, "debug"))
        log_set_level(LOG_DEBUG);
    else if (!strcmp(cfg.log_level, "warn"))
        log_set_level(LOG_WARN);
    else if (!strcmp(cfg.log_level, "error"))
        log_set_level(LOG_ERROR);
    log_set_json(!strcmp(cfg.log_format, "json"));
    if (!log_set_file(cfg.log_file)) {
        fprintf(stderr, "pulumi-state-fcgi: cannot open the log file %s\n", cfg.log_file);
        goto fail;
    }
    char *segment = *cfg.metrics_shm ? xstrdup(cfg.metrics_shm) : metrics_default_name(cfg.database, cfg.base_path);
    metrics_open(segment);
    free(segment);
    if (!*cfg.operator_token) {
        fprintf(stderr, "pulumi-state-fcgi: ITL_PULUMI_TOKEN is required: set the operator token in the "
                        "environment (or operator_token in the config file)\n");
        goto fail;
    }
    static unsigned char master[CRYPTO_KEY_LEN], old_master[CRYPTO_KEY_LEN];
    bool given, old_given;
    if (!crypto_load_key(cfg.master_key, cfg.master_key_file, master, &given)) {
        fprintf(stderr, "pulumi-state-fcgi: a master key is required: set PULUMI_STATE_MASTER_KEY or "
                        "PULUMI_STATE_MASTER_KEY_FILE (64 hex digits or base64 of 32 bytes)\n");
        goto fail;
    }
    bool have_old = crypto_load_key(cfg.old_master_key, cfg.old_master_key_file, old_master, &old_given);
    if (old_given && !have_old) {
        fprintf(stderr, "pulumi-state-fcgi: the old master key (PULUMI_STATE_OLD_MASTER_KEY[_FILE]) is not a key\n");
        goto fail;
    }
    if (!check_database(&cfg, master, have_old ? old_master : NULL))
        goto fail;

    if (FCGX_Init() != 0) {
        fprintf(stderr, "pulumi-state-fcgi: FCGX_Init failed\n");
        goto fail;
    }
    if (*cfg.socket) {
        fcgi_listen_fd = FCGX_OpenSocket(cfg.socket, 1024);
        if (fcgi_listen_fd < 0) {
            fprintf(stderr, "pulumi-state-fcgi: cannot listen on %s\n", cfg.socket);
            goto fail;
        }
        if (cfg.socket[0] == '/')
            chmod(cfg.socket, 0666);
    } else if (FCGX_IsCGI()) {
        fprintf(stderr, "pulumi-state-fcgi: not started by a FastCGI server; set PULUMI_STATE_SOCKET "
                        "(a Unix socket path or :port) to listen on a socket of its own\n");
        goto fail;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int n = cfg.threads;
    Worker *workers = xcalloc((size_t)n, sizeof(Worker));
    pthread_t *threads = xcalloc((size_t)n, sizeof(pthread_t));
    for (int i = 0; i < n; i++) {
        workers[i].cfg = &cfg;
        workers[i].master_key = master;
        workers[i].old_master_key = have_old ? old_master : NULL;
        workers[i].id = i;
        workers[i].db = db_open(cfg.database);
        if (!workers[i].db) {
            fprintf(stderr, "pulumi-state-fcgi: cannot connect to the database\n");
            exit(1);
        }
        pthread_create(&threads[i], NULL, fcgi_thread_main, &workers[i]);
    }
    log_info("started: %d threads, org %s, lease %d s", n, cfg.org, cfg.lease_ttl);

    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
        ;
    log_info("signal %d: shutting down", sig);
    for (int i = 0; i < n; i++)
        pthread_cancel(threads[i]);
    for (int i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        db_close(workers[i].db);
    }
    free(threads);
    free(workers);
    OPENSSL_cleanse(master, sizeof(master));
    OPENSSL_cleanse(old_master, sizeof(old_master));
    config_free(&cfg);
    return 0;
fail:
    OPENSSL_cleanse(master, sizeof(master));
    config_free(&cfg);
    return 1;
}
