/* fastcgi.c - the FastCGI adapter: accept, parse the request (path, query, headers, body with size
 * limits and gzip inflation), route, authenticate, run the handler, write the reply.
 *
 * Every thread owns one FCGX_Request and one PostgreSQL connection (Db) and serves requests one at a
 * time. Nothing survives a request but the connection. FCGX_Accept_r is serialised by one mutex
 * (libfcgi's documented pattern). Request threads run with cancellation disabled and enable it only
 * while waiting in accept, so pthread_cancel stops idle threads at once and busy ones right after
 * their current request.
 */
#include "autoconfig.h"

#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "auth.h"
#include "fastcgi.h"
#include "gzip.h"
#include "http.h"
#include "metrics.h"
#include "router.h"

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
int fcgi_listen_fd = 0;

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
    unsigned char *raw;
    if (!cl || !*cl) {
        /* No Content-Length: a chunked body the front end passes on as it comes (Apache's
         * mod_proxy_fcgi): read to the end of FCGI_STDIN, within the same limit. */
        size_t cap = 64 * 1024, len = 0;
        raw = xmalloc(cap + 1);
        for (;;) {
            if (len == cap) {
                cap *= 2;
                raw = xrealloc(raw, cap + 1);
            }
            int k = FCGX_GetStr((char *)raw + len, (int)(cap - len > (1 << 20) ? (1 << 20) : cap - len), r->in);
            if (k <= 0)
                break;
            len += (size_t)k;
            if ((long long)len > c->cfg->max_body_bytes) {
                free(raw);
                reply_error(c, 413, "Payload Too Large: the request body exceeds %lld bytes", c->cfg->max_body_bytes);
                return false;
            }
        }
        if (len == 0) {
            free(raw);
            return true;
        }
        n = (long long)len;
    } else {
        if (n == 0)
            return true;
        raw = xmalloc((size_t)n + 1);
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
    /* Every parameter must decode (no bad escape, no NUL): a broken one is refused here, not taken
     * by a handler for an absent one. Some front ends refuse these themselves, some pass them on. */
    char *whole = url_decode(c->query, strlen(c->query), true);
    if (!whole) {
        reply_error(c, 400, "Bad Request: malformed query string");
        return;
    }
    free(whole);
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
    RouteMatch rm =
        router_match(api_routes, c->method, segs, nsegs, &c->route, c->captures, &c->ncaptures, MAX_CAPTURES);
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
    if (!(c->route->flags & ROUTE_NODB) && !db_ensure(c->db)) {
        reply_error(c, 503, "Service Unavailable: the database is unreachable (request id %s)", c->request_id);
        return;
    }
    c->audit.enabled = (c->route->flags & ROUTE_AUDIT) != 0;
    c->audit.action = c->route->action;
    c->audit.org = c->ncaptures > 0 ? c->captures[0] : NULL;
    c->audit.project = c->ncaptures > 1 ? c->captures[1] : NULL;
    c->audit.stack = (c->route->flags & ROUTE_STACK) && c->ncaptures > 2 ? c->captures[2] : NULL;
    if (c->route->flags & ROUTE_MACHINE) {
        c->audit.org = c->audit.project = NULL;
        c->audit.detail = c->ncaptures > 0 ? c->captures[0] : NULL;
    }
    /* Who is calling is known before a byte of the body is read or inflated: a refused request
     * costs its headers and one indexed lookup, whatever its body. */
    bool authed = auth_request(c);
    c->audit.actor = c->actor;
    if (!authed)
        return;
    if (!read_body(c, r))
        return;
    c->route->handler(c);
    if (c->db->in_tx) {
        log_error("handler for %s %s left a transaction open; rolled back", c->method, c->route->pattern);
        db_rollback(c->db);
    }
}

/* After the handler: the audit row of an audited route the handler did not write in its change's
 * transaction (refusals, errors, calls that changed nothing), with the reply's status. */
static void audit_after(Ctx *c)
{
    if (!c->audit.enabled || c->audit.written || !c->status)
        return;
    db_rollback(c->db);
    c->audit.actor = c->actor;
    if (!db_ensure(c->db) || !audit_insert(c->db, &c->audit, c->status))
        log_error("could not write the audit row for %s", c->audit.action);
}

static void ctx_free(Ctx *c)
{
    free(c->path);
    free(c->query);
    free(c->auth);
    free(c->user_agent);
    free(c->initiator);
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
    log_set_context(c.request_id);
    const char *a = param(r, "HTTP_AUTHORIZATION");
    c.auth = a ? xstrdup(a) : NULL;
    const char *ua = param(r, "HTTP_USER_AGENT");
    c.user_agent = ua ? xstrndup(ua, strnlen(ua, 300)) : NULL;
    const char *di = param(r, "HTTP_X_PULUMI_DEPLOYMENT_INITIATOR");
    c.initiator = di ? xstrndup(di, strnlen(di, 40)) : NULL;
    const char *ae = param(r, "HTTP_ACCEPT_ENCODING");
    c.accepts_gzip = ae && strstr(ae, "gzip");
    c.client_addr = client_address(w->cfg, r);
    c.audit.client_addr = c.client_addr;
    c.audit.request_id = c.request_id;
    dispatch(&c, r);
    if (!c.status)
        reply_internal(&c);
    if (c.status >= 500 && w->db->lost && !(c.route && (c.route->flags & ROUTE_NODB))) {
        /* The database went away during the request (and came back too late, or not at all): what
         * the request did was rolled back, so the client may simply send it again. */
        log_warn("the database connection was lost during the request; answering 503");
        reply_error(&c, 503,
                    "Service Unavailable: the database connection was lost; retry the request "
                    "(request id %s)",
                    c.request_id);
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
    metrics_observe(metrics_classify(c.route ? c.route->pattern : NULL), c.status, ms, w->db->wait_ms);
    bool slow = w->cfg->slow_request_ms > 0 && ms >= w->cfg->slow_request_ms;
    log_msg(c.status >= 500 || slow ? LOG_WARN : LOG_DEBUG, "%s%s %s -> %d (%.2f ms, db %.2f ms)",
            slow ? "slow request: " : "", c.method, c.path ? c.path : "?", c.status, ms, w->db->wait_ms);
    ctx_free(&c);
    log_set_context(NULL);
}

static void unlock_accept(void *arg)
{
    (void)arg;
    pthread_mutex_unlock(&accept_lock);
}

void *fcgi_thread_main(void *arg)
{
    Worker *w = arg;
    FCGX_Request req;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    FCGX_InitRequest(&req, fcgi_listen_fd, 0);
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
