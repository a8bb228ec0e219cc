/* main.c - pulumi-state-fcgi: the FastCGI worker process and its request threads.
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

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "crypto.h"
#include "gzip.h"
#include "http.h"
#include "migrate.h"
#include "router.h"

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static int listen_fd = 0;

static const char *param(FCGX_Request *r, const char *name)
{
    return FCGX_GetParam(name, r->envp);
}

/* The client address: REMOTE_ADDR, or the last X-Forwarded-For hop when REMOTE_ADDR is a
 * configured trusted proxy. */
static char *client_address(const Config *cfg, FCGX_Request *r)
{
    const char *remote = param(r, "REMOTE_ADDR");
    const char *xff = param(r, "HTTP_X_FORWARDED_FOR");
    if (!remote)
        remote = "";
    if (xff && *xff && *cfg->trusted_proxies) {
        char *list = xstrdup(cfg->trusted_proxies), *save = NULL;
        bool trusted = false;
        for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            if (!strcmp(t, remote))
                trusted = true;
        free(list);
        if (trusted) {
            const char *last = strrchr(xff, ',');
            last = last ? last + 1 : xff;
            while (*last == ' ')
                last++;
            return xstrdup(last);
        }
    }
    return xstrdup(remote);
}

/* Read and (if gzip) inflate the body. Replies and returns false on failure. */
static bool read_body(Ctx *c, FCGX_Request *r)
{
    const char *cl = param(r, "CONTENT_LENGTH");
    long long n = 0;
    if (cl && *cl && !parse_int64(cl, -1, 0, LLONG_MAX, &n)) {
        reply_error(c, 400, "Bad Request: invalid Content-Length");
        return false;
    }
    if (n > c->cfg->max_body_bytes) {
        reply_error(c, 413, "Payload Too Large: the request body exceeds %lld bytes", c->cfg->max_body_bytes);
        return false;
    }
    if (n == 0)
        return true;
    unsigned char *raw = xmalloc((size_t)n + 1);
    long long got = 0;
    while (got < n) {
        int k = FCGX_GetStr((char *)raw + got, (int)((n - got) > (1 << 20) ? (1 << 20) : (n - got)), r->in);
        if (k <= 0)
            break;
        got += k;
    }
    if (got != n) {
        free(raw);
        reply_error(c, 400, "Bad Request: the request body is shorter than its Content-Length");
        return false;
    }
    raw[n] = '\0';
    const char *enc = param(r, "HTTP_CONTENT_ENCODING");
    if (!enc || !*enc || !strcasecmp(enc, "identity")) {
        c->body = raw;
        c->body_len = (size_t)n;
        return true;
    }
    if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "x-gzip") != 0) {
        free(raw);
        reply_error(c, 415, "Unsupported Media Type: Content-Encoding '%.40s' is not supported", enc);
        return false;
    }
    unsigned char *out = NULL;
    size_t outlen = 0;
    GzResult gr = gz_inflate(raw, (size_t)n, (size_t)c->cfg->max_inflated_bytes, &out, &outlen);
    free(raw);
    if (gr == GZ_TOO_BIG) {
        reply_error(c, 413, "Payload Too Large: the inflated request body exceeds %lld bytes",
                    c->cfg->max_inflated_bytes);
        return false;
    }
    if (gr != GZ_OK) {
        reply_error(c, 400, "Bad Request: the gzip request body is malformed");
        return false;
    }
    c->body = out;
    c->body_len = outlen;
    return true;
}

static void dispatch(Ctx *c, FCGX_Request *r)
{
    const char *uri = param(r, "REQUEST_URI");
    const char *m = param(r, "REQUEST_METHOD");
    if (!c->cfg->enabled) {
        reply_error(c, 503, "Service Unavailable: the pulumi-state API is disabled (ITL_PULUMI_ENABLED=false)");
        return;
    }
    if (!uri || !m || strlen(m) >= sizeof(c->method)) {
        reply_error(c, 400, "Bad Request: malformed request line");
        return;
    }
    strcpy(c->method, m);
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    c->query = xstrdup(q ? q + 1 : "");
    size_t bl = strlen(c->cfg->base_path);
    if (bl && (plen < bl || strncmp(uri, c->cfg->base_path, bl) != 0 || (plen > bl && uri[bl] != '/'))) {
        reply_error(c, 404, "Not Found: %s", "no such route");
        return;
    }
    c->path = xstrndup(uri + bl, plen - bl);
    char **segs = NULL;
    int nsegs = router_split(c->path, &segs);
    if (nsegs < 0) {
        reply_error(c, 400, "Bad Request: malformed request path");
        return;
    }
    RouteMatch rm = router_match(api_routes, c->method, segs, nsegs, &c->route, c->captures, &c->ncaptures,
                                 MAX_CAPTURES);
    if (rm != ROUTE_FOUND) {
        router_free_segs(segs, nsegs);
        if (rm == ROUTE_NO_METHOD)
            reply_error(c, 405, "Method Not Allowed: %s is not allowed here", c->method);
        else
            reply_error(c, 404, "Not Found: no such route");
        return;
    }
    /* Captures point into segs: keep our own copies so segs can go. */
    for (int i = 0; i < c->ncaptures; i++)
        c->captures[i] = xstrdup(c->captures[i]);
    router_free_segs(segs, nsegs);
    if (!db_ensure(c->db)) {
        reply_error(c, 503, "Service Unavailable: the database is unreachable (request id %s)", c->request_id);
        return;
    }
    /* Who is calling is known before a byte of the body is read or inflated: a refused request
     * costs its headers and one indexed lookup, whatever its body. */
    if (!auth_request(c))
        return;
    if (!read_body(c, r))
        return;
    c->route->handler(c);
    if (c->db->in_tx) {
        log_error("[%s] handler for %s %s left a transaction open; rolled back", c->request_id, c->method,
                  c->route->pattern);
        db_rollback(c->db);
    }
}

static void ctx_free(Ctx *c)
{
    free(c->path);
    free(c->query);
    free(c->auth);
    free(c->user_agent);
    free(c->client_addr);
    free(c->body);
    json_decref(c->json);
    for (int i = 0; i < c->ncaptures; i++)
        free(c->captures[i]);
    free(c->actor);
    free(c->scope);
    free(c->update_id);
    free(c->content_type);
    buf_free(&c->out);
}

static void serve(Worker *w, FCGX_Request *r)
{
    double t0 = mono_ms();
    w->db->wait_ms = 0;
    w->db->lost = false;
    Ctx c;
    memset(&c, 0, sizeof(c));
    c.w = w;
    c.cfg = w->cfg;
    c.db = w->db;
    unsigned char rid[16];
    if (!crypto_random(rid, sizeof(rid)))
        memset(rid, 0, sizeof(rid));
    hex_encode(rid, sizeof(rid), c.request_id);
    const char *a = param(r, "HTTP_AUTHORIZATION");
    c.auth = a ? xstrdup(a) : NULL;
    const char *ua = param(r, "HTTP_USER_AGENT");
    c.user_agent = ua ? xstrndup(ua, strnlen(ua, 300)) : NULL;
    const char *ae = param(r, "HTTP_ACCEPT_ENCODING");
    c.accepts_gzip = ae && strstr(ae, "gzip");
    c.client_addr = client_address(w->cfg, r);
    dispatch(&c, r);
    if (!c.status)
        reply_internal(&c);
    if (c.status >= 500 && w->db->lost) {
        /* The database went away during the request (and came back too late, or not at all): what
         * the request did was rolled back, so the client may simply send it again. */
        log_warn("[%s] the database connection was lost during the request; answering 503", c.request_id);
        reply_error(&c, 503, "Service Unavailable: the database connection was lost; retry the request "
                             "(request id %s)", c.request_id);
    }
    audit_after(&c);

    /* libfcgi's own printf lacks %zu: format the head here. */
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "Status: %d\r\nContent-Type: %s\r\nX-Pulumi-Request-ID: %s\r\n%s%sContent-Length: %zu\r\n\r\n",
                      c.status, c.content_type ? c.content_type : "application/json", c.request_id,
                      c.reply_gzip ? "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n" : "",
                      c.status == 503 ? "Retry-After: 1\r\n" : "", c.out.len);
    FCGX_PutStr(head, hl, r->out);
    if (strcmp(c.method, "HEAD") != 0 && c.out.len)
        FCGX_PutStr(c.out.data, (int)c.out.len, r->out);
    double ms = mono_ms() - t0;
    log_msg(c.status >= 500 ? LOG_WARN : LOG_DEBUG, "[%s] %s %s -> %d (%.2f ms, db %.2f ms)", c.request_id,
            c.method, c.path ? c.path : "?", c.status, ms, w->db->wait_ms);
    ctx_free(&c);
}

static void unlock_accept(void *arg)
{
    (void)arg;
    pthread_mutex_unlock(&accept_lock);
}

static void *thread_main(void *arg)
{
    Worker *w = arg;
    FCGX_Request req;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    FCGX_InitRequest(&req, listen_fd, 0);
    for (;;) {
        int rc;
        pthread_mutex_lock(&accept_lock);
        pthread_cleanup_push(unlock_accept, NULL);
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        pthread_testcancel();
        rc = FCGX_Accept_r(&req);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        pthread_cleanup_pop(1);
        if (rc < 0) {
            log_warn("accept failed (%d); thread %d stops", rc, w->id);
            break;
        }
        serve(w, &req);
        FCGX_Finish_r(&req);
        /* After the reply is out: give back what a big state made libpq and the heap keep (the
         * many small blocks of a parsed document leave free pages behind that glibc only returns
         * from the top of a heap). */
        if (db_recycle_if_big(w->db, (size_t)8 << 20))
            malloc_trim(0);
    }
    return NULL;
}

/* Read a key from its setting or its file; *given says whether either was set. */
static bool load_key(const char *value, const char *file, unsigned char key[CRYPTO_KEY_LEN], bool *given)
{
    *given = *value || *file;
    if (*value)
        return crypto_parse_key(value, key);
    return *file && crypto_read_key_file(file, key);
}

/* Check the schema is current and the master key (or, during a rotation, the old one) matches
 * the canary, writing the canary on first use. */
static bool check_database(const Config *cfg, const unsigned char key[CRYPTO_KEY_LEN],
                           const unsigned char *old_key)
{
    Db *db = db_open(cfg->database);
    if (!db) {
        fprintf(stderr, "pulumi-state-fcgi: cannot connect to the database\n");
        return false;
    }
    bool ok = false;
    int cur = migrate_current(db->conn);
    if (cur < migrate_latest()) {
        fprintf(stderr, "pulumi-state-fcgi: the database schema is not current (have %d, need %d); "
                        "run `pulumi-state-admin migrate`\n", cur, migrate_latest());
        goto out;
    }
    char *canary = crypto_canary_new(key);
    DbParam p[] = {DB_TEXT(canary)};
    db_run(db, "INSERT INTO extension_pulumi_state_schema (name, value) VALUES ('canary', $1) "
               "ON CONFLICT (name) DO NOTHING", 1, p);
    free(canary);
    PGresult *r = db_exec(db, "SELECT value FROM extension_pulumi_state_schema WHERE name = 'canary'", 0, NULL, false);
    if (r && PQntuples(r) == 1 &&
        (crypto_canary_check(key, PQgetvalue(r, 0, 0)) || (old_key && crypto_canary_check(old_key, PQgetvalue(r, 0, 0)))))
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
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
            conf_path = argv[++i];
        else if (!strcmp(argv[i], "--version")) {
            printf("pulumi-state-fcgi %s\n", PACKAGE_VERSION);
            return 0;
        } else {
            fprintf(stderr, "usage: pulumi-state-fcgi [-c CONFIG] [--version]\n");
            return 2;
        }
    }
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
    if (!strcmp(cfg.log_level, "debug"))
        log_set_level(LOG_DEBUG);
    else if (!strcmp(cfg.log_level, "warn"))
        log_set_level(LOG_WARN);
    else if (!strcmp(cfg.log_level, "error"))
        log_set_level(LOG_ERROR);
    if (!*cfg.operator_token) {
        fprintf(stderr, "pulumi-state-fcgi: ITL_PULUMI_TOKEN is required: set the operator token in the "
                        "environment (or operator_token in the config file)\n");
        goto fail;
    }
    static unsigned char master[CRYPTO_KEY_LEN], old_master[CRYPTO_KEY_LEN];
    bool given, old_given;
    if (!load_key(cfg.master_key, cfg.master_key_file, master, &given)) {
        fprintf(stderr, "pulumi-state-fcgi: a master key is required: set PULUMI_STATE_MASTER_KEY or "
                        "PULUMI_STATE_MASTER_KEY_FILE (64 hex digits or base64 of 32 bytes)\n");
        goto fail;
    }
    bool have_old = load_key(cfg.old_master_key, cfg.old_master_key_file, old_master, &old_given);
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
        listen_fd = FCGX_OpenSocket(cfg.socket, 1024);
        if (listen_fd < 0) {
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
        pthread_create(&threads[i], NULL, thread_main, &workers[i]);
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
