/* http.h - the per-request context: parsed request, auth result, database, and the reply. */
#ifndef PS_HTTP_H
#define PS_HTTP_H

#include <fcgiapp.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "apierror.h"
#include "audit.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "stack.h"
#include "util.h"

#define MAX_CAPTURES 8

struct Route;

/* What one worker thread shares with every request it serves (borrowed by Ctx). */
typedef struct Worker {
    const Config *cfg;
    const unsigned char *master_key;     /* CRYPTO_KEY_LEN bytes */
    const unsigned char *old_master_key; /* during a rotation, or NULL */
    Db *db;
    int id;
} Worker;

typedef struct Ctx {
    Worker *w;
    const Config *cfg;
    Db *db;
    /* request */
    char method[16];
    char *path;       /* raw path after the base path, before decoding */
    char *query;      /* raw query string, or "" */
    char *auth;       /* Authorization header, or NULL */
    char *user_agent; /* User-Agent header, or NULL */
    char *initiator;  /* X-Pulumi-Deployment-Initiator header, or NULL */
    bool accepts_gzip;
    char *client_addr;
    char request_id[33];
    unsigned char *body; /* inflated body, NUL-terminated past body_len */
    size_t body_len;
    json_t *json; /* parsed body (lazily, by ctx_json) */
    /* route */
    const struct Route *route;
    char *captures[MAX_CAPTURES];
    int ncaptures;
    /* auth */
    char *actor;              /* token name */
    int role;                 /* Role of the token (router.h) */
    char *scope;              /* glob over "org/project/stack", NULL = everything */
    Audit audit;              /* the route's audit row (enabled for audited routes), filled after auth */
    char *update_id;          /* for update-token calls: the update the token belongs to */
    const char *update_token; /* for update-token calls: the lease token (borrowed from auth) */
    /* reply */
    int status;
    char *content_type;
    bool reply_gzip; /* body is gzip; send Content-Encoding: gzip */
    Buf out;
} Ctx;

/* Reply helpers. Each sets the whole reply (a later call replaces an earlier one). */
void reply_json(Ctx *c, int status, json_t *obj); /* steals obj */
void reply_bytes(Ctx *c, int status, const void *data, size_t len, bool gzip);
/* reply_bytes taking over data (malloc'd; NULL for an empty body) instead of copying it. */
void reply_take(Ctx *c, int status, char *data, size_t len, bool gzip);
void reply_error(Ctx *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 500 with the request id; the cause is logged by the caller before. */
void reply_internal(Ctx *c);
/* 200 {} */
void reply_ok(Ctx *c);
/* The one rendering of a domain error: its status and message; 5xx carry the request id only. */
void reply_api_error(Ctx *c, const ApiError *e);

/* A domain function's answer: out (JSON it filled) with status when ok, else e; frees out. */
void reply_buf(Ctx *c, bool ok, Buf *out, const ApiError *e, int status);

/* The stack of a ROUTE_STACK route's path (captures 0..2, borrowed). */
StackRef ctx_stack(const Ctx *c);

/* Parse the body as a JSON object; on failure replies 400 and returns NULL. Borrowed result. */
json_t *ctx_json(Ctx *c);
/* A query-string parameter, decoded (new), or NULL. */
char *ctx_query(Ctx *c, const char *name);
/* An integer query parameter in [min, max] (def when absent); on a bad one replies 400, false. */
bool ctx_query_long(Ctx *c, const char *name, long def, long min, long max, long *out);

#endif
