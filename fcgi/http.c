/* http.c - replies in the one JSON error shape, body parsing, query strings. */
#include "http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_reset(Ctx *c, int status, const char *ctype)
{
    buf_free(&c->out);
    free(c->content_type);
    c->content_type = xstrdup(ctype);
    c->status = status;
    c->reply_gzip = false;
}

void reply_json(Ctx *c, int status, json_t *obj)
{
    reply_reset(c, status, "application/json");
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!s) {
        log_error("could not serialise a reply");
        reply_internal(c);
        return;
    }
    buf_puts(&c->out, s);
    free(s);
}

void reply_bytes(Ctx *c, int status, const void *data, size_t len, bool gzip)
{
    reply_reset(c, status, "application/json");
    buf_append(&c->out, data, len);
    c->reply_gzip = gzip;
}

void reply_take(Ctx *c, int status, char *data, size_t len, bool gzip)
{
    reply_reset(c, status, "application/json");
    c->out = (Buf){.data = data, .len = len, .cap = len};
    if (!data)
        buf_init(&c->out);
    c->reply_gzip = gzip;
}

void reply_buf(Ctx *c, bool ok, Buf *out, const ApiError *e, int status)
{
    if (ok) {
        size_t len;
        char *data = buf_steal(out, &len);
        reply_take(c, status, data, len, false);
    } else {
        reply_api_error(c, e);
    }
    buf_free(out);
}

void reply_error(Ctx *c, int status, const char *fmt, ...)
{
    va_list ap;
    char msg[512];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_json(c, status, json_pack("{s:i, s:s}", "code", status, "message", msg));
}

void reply_internal(Ctx *c)
{
    reply_error(c, 500, "Internal server error (request id %s)", c->request_id);
}

void reply_ok(Ctx *c)
{
    reply_reset(c, 200, "application/json");
    buf_puts(&c->out, "{}");
}

void reply_api_error(Ctx *c, const ApiError *e)
{
    if (e->status >= 500 || e->status < 400)
        reply_internal(c);
    else
        reply_error(c, e->status, "%s", e->message);
}

StackRef ctx_stack(const Ctx *c)
{
    return (StackRef){c->captures[0], c->captures[1], c->captures[2]};
}

json_t *ctx_json(Ctx *c)
{
    if (c->json)
        return c->json;
    if (!c->body || c->body_len == 0) {
        reply_error(c, 400, "Bad Request: a JSON body is required");
        return NULL;
    }
    json_error_t e;
    c->json = json_loadb((const char *)c->body, c->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!c->json) {
        reply_error(c, 400, "Bad Request: malformed JSON body (line %d, column %d)", e.line, e.column);
        return NULL;
    }
    if (!json_is_object(c->json)) {
        json_decref(c->json);
        c->json = NULL;
        reply_error(c, 400, "Bad Request: the body must be a JSON object");
        return NULL;
    }
    return c->json;
}

char *ctx_query(Ctx *c, const char *name)
{
    size_t nl = strlen(name);
    const char *p = c->query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', seg);
        size_t kl = eq ? (size_t)(eq - p) : seg;
        if (kl == nl && memcmp(p, name, nl) == 0) {
            if (!eq)
                return xstrdup("");
            return url_decode(eq + 1, seg - kl - 1, true);
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

bool ctx_query_long(Ctx *c, const char *name, long def, long min, long max, long *out)
{
    char *v = ctx_query(c, name);
    long long n = def;
    bool ok = !v || parse_int64(v, -1, min, max, &n);
    free(v);
    if (!ok)
        reply_error(c, 400, "Bad Request: %s must be an integer between %ld and %ld", name, min, max);
    *out = (long)n;
    return ok;
}
