/* stack.c - stacks and their stored versions; the one place an update's state becomes a version. */
#include "autoconfig.h"

#include "stack.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "gzip.h"
#include "journal.h"
#include "jspan.h"
#include "names.h"

#define STACK_COLUMNS                                                                                         \
    "s.id, s.org, s.project, s.name, s.tags::text, s.version, s.resource_count, s.secrets_key, "              \
    "coalesce(s.active_update::text, ''), coalesce(s.last_update::text, ''), "                                \
    "coalesce(u.lease_expires_at < now(), false), coalesce(u.kind, ''), "                                      \
    "coalesce(extract(epoch from u.started_at)::bigint, 0) "                                                   \
    "FROM extension_pulumi_state_stacks s LEFT JOIN extension_pulumi_state_updates u ON u.id = s.active_update "

static Stack *stack_from_row(PGresult *r, bool *expired)
{
    Stack *s = xcalloc(1, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", PQgetvalue(r, 0, 0));
    s->org = xstrdup(PQgetvalue(r, 0, 1));
    s->project = xstrdup(PQgetvalue(r, 0, 2));
    s->name = xstrdup(PQgetvalue(r, 0, 3));
    s->tags = xstrdup(PQgetvalue(r, 0, 4));
    s->version = atoi(PQgetvalue(r, 0, 5));
    s->resource_count = atoi(PQgetvalue(r, 0, 6));
    s->secrets_key = xstrdup(PQgetvalue(r, 0, 7));
    snprintf(s->active_update, sizeof(s->active_update), "%s", PQgetvalue(r, 0, 8));
    snprintf(s->last_update, sizeof(s->last_update), "%s", PQgetvalue(r, 0, 9));
    *expired = PQgetvalue(r, 0, 10)[0] == 't';
    s->active_kind = xstrdup(PQgetvalue(r, 0, 11));
    s->active_started = atoll(PQgetvalue(r, 0, 12));
    return s;
}

void stack_free(Stack *s)
{
    if (!s)
        return;
    free(s->org);
    free(s->project);
    free(s->name);
    free(s->tags);
    free(s->secrets_key);
    free(s->active_kind);
    free(s);
}

static Stack *load(Ctx *c, const char *sql, int n, const DbParam *p, bool *expired, bool *dberr)
{
    PGresult *r = db_exec(c->db, sql, n, p, false);
    *dberr = r == NULL;
    if (!r)
        return NULL;
    Stack *s = PQntuples(r) == 1 ? stack_from_row(r, expired) : NULL;
    PQclear(r);
    return s;
}

Stack *stack_load(Ctx *c, const char *org, const char *project, const char *name)
{
    DbParam p[] = {DB_TEXT(org), DB_TEXT(project), DB_TEXT(name)};
    bool expired, dberr;
    return load(c, "SELECT " STACK_COLUMNS "WHERE s.org = $1 AND s.project = $2 AND s.name = $3", 3, p, &expired,
                &dberr);
}

static bool valid_captures(Ctx *c)
{
    if (!name_valid_org(c->captures[0])) {
        reply_error(c, 400, "Bad Request: invalid organization name");
        return false;
    }
    if (!name_valid_project(c->captures[1])) {
        reply_error(c, 400, "Bad Request: invalid project name");
        return false;
    }
    if (!name_valid_stack(c->captures[2])) {
        reply_error(c, 400, "Bad Request: invalid stack name");
        return false;
    }
    return true;
}

/* Reap the stack's expired lease (transaction open, lock held). */
static bool reap(Ctx *c, Stack *s)
{
    char prior[16];
    char uid[37];
    snprintf(uid, sizeof(uid), "%s", s->active_update);
    log_info("[%s] lease of update %s on %s/%s/%s expired; marking it failed", c->request_id, uid, s->org,
             s->project, s->name);
    return update_finish(c, s, uid, "failed", prior, NULL, 0);
}

Stack *stack_fetch_locked(Ctx *c)
{
    if (!valid_captures(c))
        return NULL;
    DbParam p[] = {DB_TEXT(c->captures[0]), DB_TEXT(c->captures[1]), DB_TEXT(c->captures[2])};
    PGresult *r = db_exec(c->db,
                          "SELECT id FROM extension_pulumi_state_stacks WHERE org = $1 AND project = $2 AND name = $3",
                          3, p, false);
    if (!r) {
        reply_internal(c);
        return NULL;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        reply_error(c, 404, "Not Found: stack '%s/%s/%s' not found", c->captures[0], c->captures[1], c->captures[2]);
        return NULL;
    }
    char *id = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    char *key = xasprintf("stack:%s", id);
    bool ok = db_begin(c->db) && db_lock(c->db, key);
    free(key);
    Stack *s = NULL;
    bool expired = false, dberr = false;
    if (ok) {
        /* Still under the names asked for: a rename or delete may have committed while we waited. */
        DbParam q[] = {DB_TEXT(id), DB_TEXT(c->captures[0]), DB_TEXT(c->captures[1]), DB_TEXT(c->captures[2])};
        s = load(c, "SELECT " STACK_COLUMNS "WHERE s.id = $1 AND s.org = $2 AND s.project = $3 AND s.name = $4", 4, q,
                 &expired, &dberr);
    }
    free(id);
    if (!ok || dberr) {
        db_rollback(c->db);
        reply_internal(c);
        return NULL;
    }
    if (!s) {
        db_rollback(c->db);
        reply_error(c, 404, "Not Found: stack '%s/%s/%s' not found", c->captures[0], c->captures[1], c->captures[2]);
        return NULL;
    }
    if (expired && s->active_update[0] && !reap(c, s)) {
        db_rollback(c->db);
        stack_free(s);
        reply_internal(c);
        return NULL;
    }
    return s;
}

Stack *stack_fetch(Ctx *c)
{
    if (!valid_captures(c))
        return NULL;
    DbParam p[] = {DB_TEXT(c->captures[0]), DB_TEXT(c->captures[1]), DB_TEXT(c->captures[2])};
    bool expired = false, dberr = false;
    Stack *s = load(c, "SELECT " STACK_COLUMNS "WHERE s.org = $1 AND s.project = $2 AND s.name = $3", 3, p, &expired,
                    &dberr);
    if (dberr) {
        reply_internal(c);
        return NULL;
    }
    if (!s) {
        reply_error(c, 404, "Not Found: stack '%s/%s/%s' not found", c->captures[0], c->captures[1], c->captures[2]);
        return NULL;
    }
    if (!expired)
        return s;
    stack_free(s);
    s = stack_fetch_locked(c);
    if (!s)
        return NULL;
    if (!db_commit(c->db)) {
        stack_free(s);
        reply_internal(c);
        return NULL;
    }
    return s;
}

char *stack_empty_state(size_t *len)
{
    static const char empty[] = "{\"version\":3,\"deployment\":{\"manifest\":{\"time\":\"0001-01-01T00:00:00Z\","
                                "\"magic\":\"\",\"version\":\"\"},\"metadata\":{}}}";
    *len = sizeof(empty) - 1;
    return xstrdup(empty);
}

bool stack_state(Ctx *c, const Stack *s, int version, char **doc, size_t *len)
{
    if (version == 0) {
        *doc = stack_empty_state(len);
        return true;
    }
    char vbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", version);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(vbuf)};
    PGresult *r = db_exec(c->db, "SELECT data FROM extension_pulumi_state_versions WHERE stack_id = $1 AND version = $2",
                          2, p, true);
    if (!r) {
        reply_internal(c);
        return false;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        reply_error(c, 404, "Not Found: version %d of stack '%s' not found", version, s->name);
        return false;
    }
    unsigned char *out = NULL;
    GzResult g = gz_inflate(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), (size_t)1 << 34, &out, len);
    PQclear(r);
    if (g != GZ_OK) {
        log_error("[%s] stored version %d of stack %s does not inflate", c->request_id, version, s->id);
        reply_internal(c);
        return false;
    }
    *doc = (char *)out;
    return true;
}

bool state_doc_valid(const char *doc, size_t len)
{
    size_t vs, ve, ds, de;
    long long v;
    if (!jspan_member(doc, len, "version", &vs, &ve) || !jspan_int(doc + vs, ve - vs, &v) || v < 1 || v > 4)
        return false;
    if (!jspan_member(doc, len, "deployment", &ds, &de))
        return false;
    return doc[ds] == '{' || jspan_is_null(doc + ds, de - ds);
}

long state_resource_count(const char *doc, size_t len)
{
    size_t ds, de, rs, re;
    if (!jspan_member(doc, len, "deployment", &ds, &de))
        return -1;
    if (jspan_is_null(doc + ds, de - ds))
        return 0;
    if (!jspan_member(doc + ds, de - ds, "resources", &rs, &re))
        return 0;
    if (jspan_is_null(doc + ds + rs, re - rs))
        return 0;
    return jspan_array_count(doc + ds + rs, re - rs);
}

bool stack_add_version(Ctx *c, Stack *s, const char *update_id, const char *doc, size_t len)
{
    unsigned char *gz = NULL;
    size_t gzlen = 0;
    char sha[65], vbuf[16], sizebuf[24], countbuf[24];
    long count = state_resource_count(doc, len);
    if (count < 0)
        count = 0;
    if (!gz_deflate(doc, len, 1, &gz, &gzlen)) /* level 1: about the ratio of 3 at 60% of the time */
        return false;
    sha256_hex(doc, len, sha);
    snprintf(vbuf, sizeof(vbuf), "%d", s->version + 1);
    snprintf(sizebuf, sizeof(sizebuf), "%zu", len);
    snprintf(countbuf, sizeof(countbuf), "%ld", count);
    DbParam p[] = {DB_TEXT(s->id), DB_TEXT(vbuf), DB_TEXT(update_id), DB_BIN(gz, gzlen),
                   DB_TEXT(sha),   DB_TEXT(sizebuf), DB_TEXT(countbuf)};
    bool ok = db_run(c->db,
                     "INSERT INTO extension_pulumi_state_versions (stack_id, version, update_id, data, sha256, size, "
                     "resource_count) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                     7, p) &&
              db_run(c->db,
                     "UPDATE extension_pulumi_state_stacks SET version = $2, resource_count = $3, updated_at = now() "
                     "WHERE id = $1",
                     3, (DbParam[]){DB_TEXT(s->id), DB_TEXT(vbuf), DB_TEXT(countbuf)});
    free(gz);
    if (ok) {
        s->version++;
        s->resource_count = (int)count;
    }
    return ok;
}

/* The members of a resource state that replay never looks into: parsed lean (set aside as spans of
 * the stored text and spliced back after), so replay costs what the resources' shapes cost, not
 * what their property values (or the stack traces SDKs record for each resource) weigh. */
static const char *const lean_keys[] = {"inputs", "outputs", "stackTrace", NULL};

static json_t *load_lean(JspanLean *l, const char *text, size_t len)
{
    l->out->len = 0;
    if (!jspan_lean(l, text, len))
        return NULL;
    return json_loadb(l->out->data, l->out->len, JSON_ALLOW_NUL, NULL);
}

MatResult journal_materialize(Ctx *c, const Stack *s, const char *update_id, int base_version, bool lenient,
                              char **doc, size_t *len, char *why, size_t whylen)
{
    *doc = NULL;
    if (whylen)
        why[0] = '\0';
    double t0 = mono_ms(), t1 = 0, t2 = 0, t3 = 0;
    DbParam p[] = {DB_TEXT(update_id)};
    /* The CLI release that ran the update stamps the manifest, as the CLI's own replay does. */
    PGresult *r = db_exec(c->db, "SELECT coalesce(cli_version, '') FROM extension_pulumi_state_updates WHERE id = $1",
                          1, p, false);
    if (!r)
        return MAT_DB_ERROR;
    char version[64];
    snprintf(version, sizeof(version), "%s", PQntuples(r) == 1 && *PQgetvalue(r, 0, 0) ? PQgetvalue(r, 0, 0)
                                                                                         : "v" PACKAGE_VERSION);
    PQclear(r);
    r = db_exec(c->db, "SELECT entry FROM extension_pulumi_state_journal WHERE update_id = $1 ORDER BY sequence_id",
                1, p, true);
    if (!r)
        return MAT_DB_ERROR;
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        return MAT_OK;
    }
    MatResult result = MAT_DB_ERROR;
    size_t unparsed = 0, skipped = 0;
    t1 = mono_ms();
    unsigned char nonce[16];
    char tag[48] = "psraw-";
    if (!crypto_random(nonce, sizeof(nonce))) {
        PQclear(r);
        return false;
    }
    hex_encode(nonce, sizeof(nonce), tag + 6);
    strcat(tag, "-");
    Buf scratch, outbuf;
    buf_init(&scratch);
    buf_init(&outbuf);
    JspanLean lean = {.keys = lean_keys, .min = 64, .tag = tag, .out = &scratch};
    json_t *entries = json_array();
    json_t *base = NULL, *out = NULL;
    char *basedoc = NULL, *dumped = NULL;
    size_t baselen = 0;
    for (int i = 0; i < n; i++) {
        json_t *e = load_lean(&lean, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
        if (!e) {
            if (!unparsed++ && whylen)
                snprintf(why, whylen, "journal entry %d cannot be read", i);
            log_warn("[%s] journal entry %d of update %s does not parse", c->request_id, i, update_id);
            continue;
        }
        json_array_append_new(entries, e);
    }
    if (unparsed && !lenient) {
        result = MAT_INVALID;
        goto fail;
    }
    if (!stack_state(c, s, base_version, &basedoc, &baselen))
        goto fail;
    base = load_lean(&lean, basedoc, baselen);
    if (!base) {
        log_error("[%s] base state of update %s does not parse", c->request_id, update_id);
        goto fail;
    }
    buf_free(&scratch);
    t2 = mono_ms();
    char err[256] = "";
    json_t *dep = json_object_get(base, "deployment");
    out = journal_replay(json_is_object(dep) ? dep : NULL, entries, version, lenient ? JOURNAL_LENIENT : 0, &skipped,
                         err, sizeof(err));
    if (!out || skipped) {
        log_warn("[%s] journal replay of update %s: %s%s", c->request_id, update_id, err,
                 out ? " (skipped, keeping the rest)" : "");
        if (whylen && !why[0])
            snprintf(why, whylen, "%s", err);
    }
    if (!out) {
        result = MAT_INVALID;
        goto fail;
    }
    t3 = mono_ms();
    dumped = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!dumped || !jspan_unlean(&lean, dumped, strlen(dumped), &outbuf)) {
        log_error("[%s] the replayed state of update %s does not serialise", c->request_id, update_id);
        goto fail;
    }
    *doc = buf_steal(&outbuf, len);
    result = MAT_OK;
    log_debug("[%s] replayed %d journal entries of update %s: fetch %.1f ms, parse %.1f ms, replay %.1f ms, "
              "dump %.1f ms (%zu bytes, %zu values set aside)", c->request_id, n, update_id, t1 - t0, t2 - t1,
              t3 - t2, mono_ms() - t3, *len, lean.nraw);
fail:
    PQclear(r);
    json_decref(entries);
    json_decref(base);
    json_decref(out);
    free(basedoc);
    free(dumped);
    free(lean.raw);
    buf_free(&scratch);
    buf_free(&outbuf);
    return result;
}

bool update_finish(Ctx *c, Stack *s, const char *update_id, const char *status, char prior[16], char *why,
                   size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    DbParam p[] = {DB_TEXT(update_id), DB_TEXT(s->id)};
    PGresult *r = db_exec(c->db,
                          "SELECT status, dry_run, coalesce(base_version, 0) FROM extension_pulumi_state_updates "
                          "WHERE id = $1 AND stack_id = $2 FOR UPDATE",
                          2, p, false);
    if (!r)
        return false;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(prior, 16, "missing");
        return true;
    }
    snprintf(prior, 16, "%s", PQgetvalue(r, 0, 0));
    bool dry_run = PQgetvalue(r, 0, 1)[0] == 't';
    int base_version = atoi(PQgetvalue(r, 0, 2));
    PQclear(r);
    if (strcmp(prior, "running") != 0 && strcmp(prior, "not started") != 0)
        return true;

    bool ok = false;
    char *doc = NULL;
    size_t len = 0;
    bool holds_stack = !strcmp(s->active_update, update_id);
    if (!dry_run && !strcmp(prior, "running") && holds_stack) {
        /* The state: the last checkpoint, else the replayed journal, else the base unchanged. */
        r = db_exec(c->db, "SELECT raw FROM extension_pulumi_state_checkpoints WHERE update_id = $1", 1, p, true);
        if (!r)
            return false;
        if (PQntuples(r) == 1) {
            len = (size_t)PQgetlength(r, 0, 0);
            doc = xstrndup(PQgetvalue(r, 0, 0), len);
        }
        PQclear(r);
        /* A journal that cannot be replayed must not wedge the stack. A success must replay whole;
         * when it does not, the update ends failed instead, keeping whatever the journal recorded (a
         * lenient replay skips what cannot be applied), and the caller says why. An update that
         * failed, was cancelled or is reaped keeps what its journal recorded likewise. */
        bool strict = !strcmp(status, "succeeded");
        MatResult m = doc ? MAT_OK
                          : journal_materialize(c, s, update_id, base_version, !strict, &doc, &len, why, whylen);
        if (m == MAT_INVALID && strict) {
            status = "failed";
            m = journal_materialize(c, s, update_id, base_version, true, &doc, &len, NULL, 0);
            if (whylen && !why[0])
                snprintf(why, whylen, "the journal cannot be replayed");
        }
        if (m == MAT_DB_ERROR)
            goto out;
        if (m == MAT_INVALID)
            log_warn("[%s] update %s ends %s with its base state: its journal cannot be replayed", c->request_id,
                     update_id, status);
        if (!doc && !stack_state(c, s, s->version, &doc, &len))
            goto out;
        double t0 = mono_ms();
        if (!stack_add_version(c, s, update_id, doc, len))
            goto out;
        log_debug("[%s] stored version %d of %s/%s/%s: %zu bytes in %.1f ms", c->request_id, s->version, s->org,
                  s->project, s->name, len, mono_ms() - t0);
    }
    char vbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", s->version);
    DbParam q[] = {DB_TEXT(update_id), DB_TEXT(status), DB_TEXT(vbuf), DB_TEXT(s->id)};
    if (!db_run(c->db,
                "UPDATE extension_pulumi_state_updates SET status = $2, ended_at = now(), lease_expires_at = NULL, "
                "result_version = CASE WHEN dry_run THEN NULL ELSE $3::int END, "
                "resource_count = CASE WHEN dry_run THEN NULL ELSE (SELECT resource_count FROM "
                "extension_pulumi_state_stacks WHERE id = $4) END WHERE id = $1",
                4, q))
        goto out;
    if (holds_stack) {
        DbParam f[] = {DB_TEXT(update_id), DB_TEXT(s->id)};
        if (!db_run(c->db,
                    "UPDATE extension_pulumi_state_stacks SET active_update = NULL, last_update = $1, updated_at = now() "
                    "WHERE id = $2",
                    2, f))
            goto out;
        s->active_update[0] = '\0';
        snprintf(s->last_update, sizeof(s->last_update), "%s", update_id);
    }
    double t0 = mono_ms();
    if (!db_run(c->db, "DELETE FROM extension_pulumi_state_checkpoints WHERE update_id = $1", 1, p) ||
        !db_run(c->db, "DELETE FROM extension_pulumi_state_journal WHERE update_id = $1", 1, p))
        goto out;
    log_debug("[%s] dropped the working state of update %s in %.1f ms", c->request_id, update_id, mono_ms() - t0);
    ok = true;
out:
    free(doc);
    return ok;
}

const char *status_wire(const char *status)
{
    if (!strcmp(status, "cancelled"))
        return "failed";
    return status;
}

const char *status_result(const char *status)
{
    if (!strcmp(status, "running"))
        return "in-progress";
    if (!strcmp(status, "not started"))
        return "not-started";
    if (!strcmp(status, "succeeded"))
        return "succeeded";
    return "failed";
}
