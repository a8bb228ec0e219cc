/* update.c - the update lifecycle and the one place an update's state becomes a stack version. */
#include "autoconfig.h"

#include "update.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "names.h"
#include "token.h"

static const char *const status_names[] = {"missing", "not started", "running", "succeeded", "failed", "cancelled"};

UpdateStatus update_status_parse(const char *s)
{
    for (int i = UPDATE_NOT_STARTED; i <= UPDATE_CANCELLED; i++)
        if (s && !strcmp(s, status_names[i]))
            return (UpdateStatus)i;
    return UPDATE_MISSING;
}

const char *update_status_name(UpdateStatus st)
{
    return status_names[st];
}

const char *update_status_wire(UpdateStatus st)
{
    return st == UPDATE_CANCELLED ? "failed" : status_names[st];
}

bool update_status_active(UpdateStatus st)
{
    return st == UPDATE_NOT_STARTED || st == UPDATE_RUNNING;
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

MatResult journal_materialize(Db *db, const Stack *s, const char *update_id, int base_version, bool lenient, char **doc,
                              size_t *len, char *why, size_t whylen)
{
    *doc = NULL;
    if (whylen)
        why[0] = '\0';
    double t0 = mono_ms(), t1 = 0, t2 = 0, t3 = 0;
    DbParam p[] = {DB_TEXT(update_id)};
    /* The CLI release that ran the update stamps the manifest, as the CLI's own replay does. */
    PGresult *r =
        db_exec(db, "SELECT coalesce(cli_version, '') FROM extension_pulumi_state_updates WHERE id = $1", 1, p, false);
    if (!r)
        return MAT_DB_ERROR;
    char version[64];
    snprintf(version, sizeof(version), "%s",
             PQntuples(r) == 1 && *PQgetvalue(r, 0, 0) ? PQgetvalue(r, 0, 0) : "v" PACKAGE_VERSION);
    PQclear(r);
    r = db_exec(db, "SELECT entry FROM extension_pulumi_state_journal WHERE update_id = $1 ORDER BY sequence_id", 1, p,
                true);
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
        return MAT_DB_ERROR;
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
            log_warn("journal entry %d of update %s does not parse", i, update_id);
            continue;
        }
        json_array_append_new(entries, e);
    }
    if (unparsed && !lenient) {
        result = MAT_INVALID;
        goto fail;
    }
    if (!stack_state(db, s, base_version, &basedoc, &baselen, NULL))
        goto fail;
    base = load_lean(&lean, basedoc, baselen);
    if (!base) {
        log_error("base state of update %s does not parse", update_id);
        goto fail;
    }
    buf_free(&scratch);
    t2 = mono_ms();
    char err[256] = "";
    json_t *dep = json_object_get(base, "deployment");
    out = journal_replay(json_is_object(dep) ? dep : NULL, entries, version, lenient ? JOURNAL_LENIENT : 0, &skipped,
                         err, sizeof(err));
    if (!out || skipped) {
        log_warn("journal replay of update %s: %s%s", update_id, err, out ? " (skipped, keeping the rest)" : "");
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
        log_error("the replayed state of update %s does not serialise", update_id);
        goto fail;
    }
    *doc = buf_steal(&outbuf, len);
    result = MAT_OK;
    log_debug("replayed %d journal entries of update %s: fetch %.1f ms, parse %.1f ms, replay %.1f ms, "
              "dump %.1f ms (%zu bytes, %zu values set aside)",
              n, update_id, t1 - t0, t2 - t1, t3 - t2, mono_ms() - t3, *len, lean.nraw);
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

/* The state a finished real update leaves: the last checkpoint, else the replayed journal, else the
 * base unchanged; stored as the next version. *status may turn from succeeded to failed. */
static bool store_result(Db *db, Stack *s, const char *update_id, int base_version, UpdateStatus *status, char *why,
                         size_t whylen)
{
    char *doc = NULL;
    size_t len = 0;
    if (checkpoint_materialize(db, update_id, true, &doc, &len) < 0)
        return false;
    /* A journal that cannot be replayed must not wedge the stack. A success must replay whole;
     * when it does not, the update ends failed instead, keeping whatever the journal recorded (a
     * lenient replay skips what cannot be applied), and the caller says why. An update that
     * failed, was cancelled or is reaped keeps what its journal recorded likewise. */
    bool strict = *status == UPDATE_SUCCEEDED;
    MatResult m = doc ? MAT_OK : journal_materialize(db, s, update_id, base_version, !strict, &doc, &len, why, whylen);
    if (m == MAT_INVALID && strict) {
        *status = UPDATE_FAILED;
        m = journal_materialize(db, s, update_id, base_version, true, &doc, &len, NULL, 0);
        if (whylen && !why[0])
            snprintf(why, whylen, "the journal cannot be replayed");
    }
    bool ok = false;
    if (m == MAT_DB_ERROR)
        goto out;
    if (m == MAT_INVALID)
        log_warn("update %s ends %s with its base state: its journal cannot be replayed", update_id,
                 update_status_name(*status));
    if (!doc && !stack_state(db, s, s->version, &doc, &len, NULL))
        goto out;
    double t0 = mono_ms();
    if (!stack_add_version(db, s, update_id, doc, len))
        goto out;
    log_debug("stored version %d of %s/%s/%s: %zu bytes in %.1f ms", s->version, s->org, s->project, s->name, len,
              mono_ms() - t0);
    ok = true;
out:
    free(doc);
    return ok;
}

bool update_finish(Db *db, Stack *s, const char *update_id, UpdateStatus status, UpdateStatus *prior, char *why,
                   size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    DbParam p[] = {DB_TEXT(update_id), DB_TEXT(s->id)};
    PGresult *r = db_exec(db,
                          "SELECT status, dry_run, coalesce(base_version, 0) FROM extension_pulumi_state_updates "
                          "WHERE id = $1 AND stack_id = $2 FOR UPDATE",
                          2, p, false);
    if (!r)
        return false;
    *prior = PQntuples(r) == 1 ? update_status_parse(PQgetvalue(r, 0, 0)) : UPDATE_MISSING;
    bool dry_run = *prior != UPDATE_MISSING && PQgetvalue(r, 0, 1)[0] == 't';
    int base_version = *prior != UPDATE_MISSING ? atoi(PQgetvalue(r, 0, 2)) : 0;
    PQclear(r);
    if (!update_status_active(*prior))
        return true;
    bool holds_stack = !strcmp(s->active_update, update_id);
    if (!dry_run && *prior == UPDATE_RUNNING && holds_stack &&
        !store_result(db, s, update_id, base_version, &status, why, whylen))
        return false;
    char vbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", s->version);
    DbParam q[] = {DB_TEXT(update_id), DB_TEXT(update_status_name(status)), DB_TEXT(vbuf), DB_TEXT(s->id)};
    if (!db_run(db,
                "UPDATE extension_pulumi_state_updates SET status = $2, ended_at = now(), lease_expires_at = NULL, "
                "result_version = CASE WHEN dry_run THEN NULL ELSE $3::int END, "
                "resource_count = CASE WHEN dry_run THEN NULL ELSE (SELECT resource_count FROM "
                "extension_pulumi_state_stacks WHERE id = $4) END WHERE id = $1",
                4, q))
        return false;
    if (holds_stack) {
        if (!db_run(
                db,
                "UPDATE extension_pulumi_state_stacks SET active_update = NULL, last_update = $1, updated_at = now() "
                "WHERE id = $2",
                2, p))
            return false;
        s->active_update[0] = '\0';
        snprintf(s->last_update, sizeof(s->last_update), "%s", update_id);
    }
    double t0 = mono_ms();
    if (!db_run(db, "DELETE FROM extension_pulumi_state_checkpoints WHERE update_id = $1", 1, p) ||
        !db_run(db, "DELETE FROM extension_pulumi_state_checkpoint_deltas WHERE update_id = $1", 1, p) ||
        !db_run(db, "DELETE FROM extension_pulumi_state_journal WHERE update_id = $1", 1, p))
        return false;
    log_debug("dropped the working state of update %s in %.1f ms", update_id, mono_ms() - t0);
    return true;
}

bool update_reap(Db *db, Stack *s)
{
    UpdateStatus prior;
    char uid[37];
    snprintf(uid, sizeof(uid), "%s", s->active_update);
    log_info("lease of update %s on %s/%s/%s expired; marking it failed", uid, s->org, s->project, s->name);
    return update_finish(db, s, uid, UPDATE_FAILED, &prior, NULL, 0);
}

int update_reap_expired(Db *db)
{
    PGresult *r = db_exec(db,
                          "SELECT s.org, s.project, s.name FROM extension_pulumi_state_stacks s JOIN "
                          "extension_pulumi_state_updates u ON u.id = s.active_update WHERE u.lease_expires_at < now() "
                          "UNION SELECT s.org, s.project, s.name FROM extension_pulumi_state_updates u JOIN "
                          "extension_pulumi_state_stacks s ON s.id = u.stack_id WHERE u.status = 'running' AND "
                          "u.dry_run AND u.lease_expires_at < now()",
                          0, NULL, false);
    if (!r)
        return -1;
    int reaped = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        StackRef ref = {PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)};
        ApiError e;
        /* Loading a stack with an expired lease reaps it (real updates) ... */
        Stack *s = stack_get_locked(db, &ref, &e);
        if (!s)
            continue;
        /* ... and expired previews on it end here. */
        DbParam p[] = {DB_TEXT(s->id)};
        PGresult *d = db_exec(db,
                              "SELECT id FROM extension_pulumi_state_updates WHERE stack_id = $1 AND status = "
                              "'running' AND dry_run AND lease_expires_at < now()",
                              1, p, false);
        bool ok = d != NULL;
        for (int k = 0; ok && k < PQntuples(d); k++) {
            UpdateStatus prior;
            ok = update_finish(db, s, PQgetvalue(d, k, 0), UPDATE_FAILED, &prior, NULL, 0);
        }
        PQclear(d);
        if (ok && db_commit(db))
            reaped++;
        db_rollback(db);
        stack_free(s);
    }
    PQclear(r);
    return reaped;
}

bool update_auth(Db *db, const StackRef *ref, const char *uid, const char *token, bool lock, Stack **out,
                 UpdateInfo *info, ApiError *e)
{
    if (out)
        *out = NULL;
    Stack *s = lock ? stack_get_locked(db, ref, e) : stack_get(db, ref, e);
    if (!s)
        return false;
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(s->id)};
    PGresult *r = db_exec(db,
                          "SELECT status, dry_run, journal_version, last_seq, coalesce(token_hash, ''), "
                          "coalesce(prev_token_hash, ''), coalesce(lease_expires_at < now(), false), checkpoint_gen "
                          "FROM extension_pulumi_state_updates WHERE id = $1 AND stack_id = $2",
                          2, p, false);
    bool ok = false;
    if (!r) {
        api_internal(e);
        goto out;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        api_fail(e, 404, "Not Found: update '%s' not found on this stack", uid);
        goto out;
    }
    char *hash = token_hash(token);
    bool match = (PQgetvalue(r, 0, 4)[0] && str_eq_const_time(hash, PQgetvalue(r, 0, 4))) ||
                 (PQgetvalue(r, 0, 5)[0] && str_eq_const_time(hash, PQgetvalue(r, 0, 5)));
    free(hash);
    info->status = update_status_parse(PQgetvalue(r, 0, 0));
    info->dry_run = PQgetvalue(r, 0, 1)[0] == 't';
    info->journal_version = atoi(PQgetvalue(r, 0, 2));
    info->last_seq = atoll(PQgetvalue(r, 0, 3));
    info->checkpoint_gen = atoll(PQgetvalue(r, 0, 7));
    bool expired = PQgetvalue(r, 0, 6)[0] == 't';
    PQclear(r);
    if (!match) {
        api_fail(e, 403, MSG_BAD_UPDATE_TOKEN);
        goto out;
    }
    if (expired && info->status == UPDATE_RUNNING) {
        /* An expired lease of a dry run (a real update's was reaped when the stack was loaded). */
        UpdateStatus prior;
        bool own_tx = !lock;
        if ((own_tx && !db_begin(db)) || !update_finish(db, s, uid, UPDATE_FAILED, &prior, NULL, 0) ||
            (own_tx && !db_commit(db))) {
            api_internal(e);
            goto out;
        }
        info->status = UPDATE_FAILED;
    }
    ok = true;
out:
    if (!ok) {
        db_rollback(db);
        stack_free(s);
    } else if (out) {
        *out = s;
    } else {
        stack_free(s);
    }
    return ok;
}

bool update_create(Db *db, const StackRef *ref, const char *kind, bool dry_run, const char *config,
                   const char *metadata, const char *options, const char *actor, const char *cli_version, char uid[37],
                   ApiError *e)
{
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    DbParam p[] = {DB_TEXT(s->id),  DB_TEXT(kind),       DB_TEXT(dry_run ? "true" : "false"),
                   DB_TEXT(config), DB_TEXT(metadata),   DB_TEXT(options),
                   DB_TEXT(actor),  DB_TEXT(cli_version)};
    PGresult *r =
        db_exec(db,
                "INSERT INTO extension_pulumi_state_updates (stack_id, kind, dry_run, config, metadata, options, "
                "created_by, cli_version) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8) "
                "RETURNING id",
                8, p, false);
    stack_free(s);
    if (!r)
        return api_internal(e);
    snprintf(uid, 37, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return true;
}

bool update_start(Db *db, const StackRef *ref, const char *uid, const char *tags, bool journal, int lease_ttl, Audit *a,
                  StartResult *out, ApiError *e)
{
    memset(out, 0, sizeof(*out));
    Stack *s = stack_get_locked(db, ref, e);
    if (!s)
        return false;
    bool ok = false;
    char *hash = NULL;
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(s->id)};
    PGresult *r = db_exec(db,
                          "SELECT status, dry_run FROM extension_pulumi_state_updates WHERE id = $1 AND stack_id = $2 "
                          "FOR UPDATE",
                          2, p, false);
    if (!r) {
        api_internal(e);
        goto out;
    }
    UpdateStatus st = PQntuples(r) == 1 ? update_status_parse(PQgetvalue(r, 0, 0)) : UPDATE_MISSING;
    bool dry_run = st != UPDATE_MISSING && PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    if (st == UPDATE_MISSING) {
        api_fail(e, 404, "Not Found: update '%s' not found on this stack", uid);
        goto out;
    }
    if (st != UPDATE_NOT_STARTED) {
        api_fail(e, 409, "Conflict: the update has already been started");
        goto out;
    }
    if (!dry_run && s->active_update[0]) {
        api_fail(e, 409, MSG_UPDATE_IN_PROGRESS);
        goto out;
    }
    out->journal_version = journal && !dry_run ? 1 : 0;
    out->token = token_new("");
    if (!out->token) {
        api_internal(e);
        goto out;
    }
    hash = token_hash(out->token);
    char ttl[16], jbuf[8], vbuf[16];
    snprintf(ttl, sizeof(ttl), "%d", lease_ttl);
    snprintf(jbuf, sizeof(jbuf), "%d", out->journal_version);
    snprintf(vbuf, sizeof(vbuf), "%d", s->version);
    DbParam q[] = {DB_TEXT(uid), DB_TEXT(hash), DB_TEXT(ttl), DB_TEXT(jbuf), DB_TEXT(vbuf)};
    r = db_exec(db,
                "UPDATE extension_pulumi_state_updates SET status = 'running', started_at = now(), token_hash = $2, "
                "lease_expires_at = now() + make_interval(secs => $3::int), journal_version = $4, "
                "base_version = $5, checkpoint_mode = CASE WHEN $4::int = 1 THEN 'journal' ELSE NULL END "
                "WHERE id = $1 RETURNING extract(epoch from lease_expires_at)::bigint",
                5, q, false);
    if (!r) {
        api_internal(e);
        goto out;
    }
    out->expires = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    DbParam t[] = {DB_TEXT(uid), DB_TEXT(tags), DB_TEXT(s->id)};
    if ((!dry_run && !db_run(db,
                             "UPDATE extension_pulumi_state_stacks SET active_update = $1, tags = coalesce($2::jsonb, "
                             "tags), updated_at = now() WHERE id = $3",
                             3, t)) ||
        !audit_commit(db, a)) {
        api_internal(e);
        goto out;
    }
    out->version = dry_run ? s->version : s->version + 1;
    ok = true;
out:
    db_rollback(db);
    if (!ok && out->token) {
        OPENSSL_cleanse(out->token, strlen(out->token));
        free(out->token);
        out->token = NULL;
    }
    free(hash);
    stack_free(s);
    return ok;
}

bool update_get_status(Db *db, const StackRef *ref, const char *uid, UpdateStatus *st, ApiError *e)
{
    Stack *s = stack_get(db, ref, e);
    if (!s)
        return false;
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(s->id)};
    PGresult *r =
        db_exec(db, "SELECT status FROM extension_pulumi_state_updates WHERE id = $1 AND stack_id = $2", 2, p, false);
    stack_free(s);
    if (!r)
        return api_internal(e);
    *st = PQntuples(r) == 1 ? update_status_parse(PQgetvalue(r, 0, 0)) : UPDATE_MISSING;
    PQclear(r);
    if (*st == UPDATE_MISSING)
        return api_fail(e, 404, "Not Found: update '%s' not found on this stack", uid);
    return true;
}

bool update_renew(Db *db, const StackRef *ref, const char *uid, const char *token, int lease_ttl, char **new_token,
                  long long *expires, ApiError *e)
{
    *new_token = NULL;
    Stack *s = NULL;
    UpdateInfo info;
    if (!update_auth(db, ref, uid, token, true, &s, &info, e))
        return false;
    bool ok = false;
    char *hash = NULL, *old = NULL;
    PGresult *r = NULL;
    if (info.status != UPDATE_RUNNING) {
        /* Keep a reap done on the way. */
        if (!db_commit(db))
            api_internal(e);
        else
            api_fail(e, 403, "Forbidden: the update's lease has ended (the update is %s)",
                     update_status_wire(info.status));
        goto out;
    }
    *new_token = token_new("");
    if (!*new_token) {
        api_internal(e);
        goto out;
    }
    hash = token_hash(*new_token);
    old = token_hash(token);
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", lease_ttl);
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(hash), DB_TEXT(old), DB_TEXT(ttl)};
    /* Renewing with the current token makes it the previous one, so calls already in flight
     * with it still succeed; renewing with the previous one (a retry whose answer was lost)
     * keeps it as the previous one. */
    r = db_exec(db,
                "UPDATE extension_pulumi_state_updates SET prev_token_hash = CASE WHEN "
                "token_hash = $3 THEN token_hash ELSE prev_token_hash END, token_hash = $2, "
                "lease_expires_at = now() + make_interval(secs => $4::int) WHERE id = $1 "
                "RETURNING extract(epoch from lease_expires_at)::bigint",
                4, p, false);
    if (!r || !db_commit(db)) {
        api_internal(e);
        goto out;
    }
    *expires = atoll(PQgetvalue(r, 0, 0));
    ok = true;
out:
    db_rollback(db);
    PQclear(r);
    if (!ok) {
        free(*new_token);
        *new_token = NULL;
    }
    free(hash);
    free(old);
    stack_free(s);
    return ok;
}

bool update_complete(Db *db, const StackRef *ref, const char *uid, const char *token, UpdateStatus status, Audit *a,
                     ApiError *e)
{
    Stack *s = NULL;
    UpdateInfo info;
    if (!update_auth(db, ref, uid, token, true, &s, &info, e))
        return false;
    bool ok = false;
    char why[256];
    UpdateStatus prior;
    if (info.status != UPDATE_RUNNING) {
        if (!db_commit(db)) /* keeps a reap done on the way */
            api_internal(e);
        else if (info.status == status)
            ok = true; /* a retried complete */
        else
            api_fail(e, 409, "Conflict: the update is already %s", update_status_wire(info.status));
    } else if (!update_finish(db, s, uid, status, &prior, why, sizeof(why)) || !audit_commit(db, a)) {
        api_internal(e);
    } else if (why[0] && status == UPDATE_SUCCEEDED) {
        api_fail(e, 400,
                 "Bad Request: the update's journal cannot be replayed (%s); the update ended as failed, "
                 "keeping every resource its journal recorded",
                 why);
    } else {
        ok = true;
    }
    db_rollback(db);
    stack_free(s);
    return ok;
}

bool update_cancel(Db *db, const StackRef *ref, const char *uid, const char *actor, bool admin, Audit *a, ApiError *e)
{
    Stack *s = stack_get_locked(db, ref, e);
    if (!s)
        return false;
    bool ok = false;
    UpdateStatus prior;
    if (!admin) {
        /* Only an admin may cancel an update somebody else started. */
        DbParam q[] = {DB_TEXT(uid), DB_TEXT(s->id)};
        PGresult *r = db_exec(db,
                              "SELECT coalesce(created_by, '') FROM extension_pulumi_state_updates WHERE id = $1 "
                              "AND stack_id = $2",
                              2, q, false);
        bool other = r && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), actor) != 0;
        PQclear(r);
        if (other) {
            api_fail(e, 403, "Forbidden: only an admin token may cancel an update started by another token");
            goto out;
        }
    }
    if (!update_finish(db, s, uid, UPDATE_CANCELLED, &prior, NULL, 0))
        api_internal(e);
    else if (prior == UPDATE_MISSING)
        api_fail(e, 404, "Not Found: update '%s' not found on this stack", uid);
    else if (!update_status_active(prior) && prior != UPDATE_CANCELLED) {
        if (!db_commit(db)) /* keeps a reap done on the way */
            api_internal(e);
        else
            api_fail(e, 409, "Conflict: the update has already completed (%s)", update_status_wire(prior));
    } else if (!audit_commit(db, a))
        api_internal(e);
    else
        ok = true;
out:
    db_rollback(db);
    stack_free(s);
    return ok;
}
