/* checkpoint.c - the state an update sends: full checkpoints, verbatim + delta, journal entries
 * and engine events (the hot path: one round trip per batch). */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "delta.h"
#include "textdiff.h"
#include "token.h"
#include "update.h"

/* Check the update may take state now: running, not a dry run, in the right mode. On refusal the
 * transaction is committed (keeping a reap done on the way) or rolled back, and e filled. */
static bool accepts_state(Db *db, const UpdateInfo *info, bool journal, ApiError *e)
{
    if (info->status != UPDATE_RUNNING) {
        if (!db_commit(db))
            return api_internal(e);
        return api_fail(e, 409, "Conflict: the update is not in progress (it is %s)", update_status_wire(info->status));
    }
    if (info->dry_run)
        return api_fail(e, 400, "Bad Request: a preview does not take state");
    if (journal != (info->journal_version > 0))
        return api_fail(e, 409,
                        journal ? "Conflict: journaling was not negotiated for this update"
                                : "Conflict: this update sends journal entries, not checkpoints");
    return true;
}

/* A worker's copy of the document a delta applies to: the last one this process produced. It is used
 * only when its update and generation are the database's (read under the stack's lock), so any worker
 * can serve any delta: a miss rebuilds the document from the database. A thread takes the copy out
 * while it works on it, so another thread never sees it half-made. */
static pthread_mutex_t working_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char uid[37];
    long long gen;
    Buf doc;
    int pending; /* deltas stored after the base */
} working;

/* Whether the copy is update uid's document at generation gen (working_lock held). */
static bool working_is(const char *uid, long long gen)
{
    return working.doc.data && working.gen == gen && !strcmp(working.uid, uid);
}

/* The copy, when it is update uid's at generation gen: moved into *doc. A copy that is not is dropped:
 * generations only move on, and the caller is about to rebuild the document beside it. */
static bool working_take(const char *uid, long long gen, Buf *doc, int *pending)
{
    bool hit = false;
    Buf stale;
    buf_init(&stale);
    pthread_mutex_lock(&working_lock);
    if (working_is(uid, gen)) {
        *doc = working.doc;
        *pending = working.pending;
        hit = true;
    } else {
        stale = working.doc;
    }
    buf_init(&working.doc);
    pthread_mutex_unlock(&working_lock);
    buf_free(&stale);
    return hit;
}

/* Whether this process holds a copy of update uid's document (of some generation). */
static bool working_holds(const char *uid)
{
    pthread_mutex_lock(&working_lock);
    bool held = working.doc.data && !strcmp(working.uid, uid);
    pthread_mutex_unlock(&working_lock);
    return held;
}

/* A copy of the copy, when it is update uid's at generation gen: new *doc. */
static bool working_copy(const char *uid, long long gen, char **doc, size_t *len)
{
    bool hit = false;
    pthread_mutex_lock(&working_lock);
    if (working_is(uid, gen)) {
        *doc = xstrndup(working.doc.data, working.doc.len);
        *len = working.doc.len;
        hit = true;
    }
    pthread_mutex_unlock(&working_lock);
    return hit;
}

/* Keep doc (taken over) as update uid's document at generation gen. */
static void working_put(const char *uid, long long gen, Buf *doc, int pending)
{
    pthread_mutex_lock(&working_lock);
    Buf old = working.doc;
    snprintf(working.uid, sizeof(working.uid), "%s", uid);
    working.gen = gen;
    working.doc = *doc;
    working.pending = pending;
    pthread_mutex_unlock(&working_lock);
    buf_init(doc);
    buf_free(&old);
}

/* A Buf over a malloc'd document of len bytes (NUL past them). */
static Buf buf_of(char *doc, size_t len)
{
    return (Buf){.data = doc, .len = len, .cap = len + 1};
}

/* Store a whole document as the update's base (transaction open, lock held) and commit: the deltas
 * before it are dropped, and the generation moves on. */
static bool store_checkpoint(Db *db, const char *uid, const char *mode, long long seq, const char *doc, size_t len,
                             ApiError *e)
{
    char sbuf[24];
    snprintf(sbuf, sizeof(sbuf), "%lld", seq);
    DbParam p[] = {DB_TEXT(uid), DB_TEXT(sbuf), DB_TEXT(mode), DB_BIN(doc, len)};
    if (!db_run(db,
                "INSERT INTO extension_pulumi_state_checkpoints (update_id, seq, mode, raw) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (update_id) DO UPDATE SET seq = $2, mode = $3, raw = $4, updated_at = now()",
                4, p) ||
        !db_run(db, "DELETE FROM extension_pulumi_state_checkpoint_deltas WHERE update_id = $1", 1, p) ||
        !db_run(db,
                "UPDATE extension_pulumi_state_updates SET last_seq = $2, checkpoint_mode = $3, "
                "checkpoint_gen = checkpoint_gen + 1 WHERE id = $1",
                3, p) ||
        !db_commit(db))
        return api_internal(e);
    return true;
}

/* update_auth with the lock, then accepts_state: the common start of every checkpoint call. */
static bool begin_state(Db *db, const StackRef *ref, const char *uid, const char *token, bool journal, UpdateInfo *info,
                        ApiError *e)
{
    Stack *s = NULL;
    bool ok = update_auth(db, ref, uid, token, true, &s, info, e) && accepts_state(db, info, journal, e);
    stack_free(s);
    return ok;
}

bool update_checkpoint_verbatim(Db *db, const StackRef *ref, const char *uid, const char *token, long long seq,
                                char *doc, size_t len, ApiError *e)
{
    UpdateInfo info;
    bool ok = begin_state(db, ref, uid, token, false, &info, e);
    if (ok && seq < info.last_seq)
        ok = api_fail(e, 409, "Conflict: checkpoint sequence number %lld is older than %lld", seq, info.last_seq);
    ok = ok && store_checkpoint(db, uid, "verbatim", seq, doc, len, e);
    Buf kept = buf_of(doc, len);
    if (ok) /* the base the next delta applies to */
        working_put(uid, info.checkpoint_gen + 1, &kept, 0);
    else
        buf_free(&kept);
    db_rollback(db);
    return ok;
}

/* Deltas kept after the base before the document is written back as the new base: bounds what a
 * rebuild replays, at one whole-document write per this many deltas. */
#define DELTAS_PER_BASE 32

/* Stored deltas[0..n) (n >= 1, verified against the CLI's hash when they arrived) applied to base
 * (borrowed): new *out. Together with one copy at the end, or one by one for the legacy line/column
 * form delta_apply_chain leaves alone. */
static DeltaResult apply_stored(const char *base, size_t len, json_t *const *deltas, size_t n, char **out,
                                size_t *outlen)
{
    if (delta_apply_chain(base, len, deltas, n, out, outlen) == DELTA_OK)
        return DELTA_OK;
    char *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        char *next = NULL;
        size_t nextlen = 0;
        DeltaResult dr = delta_apply(cur ? cur : base, cur ? *outlen : len, deltas[i], NULL, &next, &nextlen, NULL, 0);
        free(cur);
        if (dr != DELTA_OK)
            return dr;
        cur = next;
        *outlen = nextlen;
    }
    *out = cur;
    return DELTA_OK;
}

/* A base document is read in pieces of this size (libpq's single-row mode), never as one result: a
 * large state is then held once while it is read, not three times (socket buffer, result, copy). */
#define BASE_CHUNK (2 << 20)

static bool append_chunk(const PGresult *r, void *arg)
{
    buf_append(arg, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    return true;
}

/* The document from the database: the base, its deltas applied. All from one snapshot: in the
 * caller's transaction (which holds the stack's lock), or in a read-only one of its own. */
static int materialize_db(Db *db, const char *uid, char **doc, size_t *len, int *ndeltas)
{
    *doc = NULL;
    *len = 0;
    bool own_tx = !db->in_tx;
    if (own_tx && !db_begin_snapshot(db))
        return -1;
    int result = -1, rows = 0;
    PGresult *head = NULL, *r = NULL;
    json_t **deltas = NULL;
    Buf base;
    buf_init(&base);
    DbParam p[] = {DB_TEXT(uid)};
    head = db_exec(db,
                   "SELECT octet_length(raw)::text, seq::text FROM extension_pulumi_state_checkpoints WHERE "
                   "update_id = $1",
                   1, p, false);
    if (!head)
        goto out;
    if (PQntuples(head) != 1) {
        result = 0;
        goto out;
    }
    size_t n = (size_t)strtoull(PQgetvalue(head, 0, 0), NULL, 10);
    buf_reserve(&base, n);
    char chunk[16];
    snprintf(chunk, sizeof(chunk), "%d", BASE_CHUNK);
    DbParam q[] = {DB_TEXT(uid), DB_TEXT(chunk)};
    if (db_each_row(db,
                    "SELECT substring(c.raw FROM g FOR $2::int) FROM extension_pulumi_state_checkpoints c, "
                    "generate_series(1, octet_length(c.raw), $2::int) g WHERE c.update_id = $1 ORDER BY g",
                    2, q, true, append_chunk, &base) != DB_OK ||
        base.len != n)
        goto out;
    DbParam d[] = {DB_TEXT(uid), DB_TEXT(PQgetvalue(head, 0, 1))};
    r = db_exec(db,
                "SELECT seq, edits FROM extension_pulumi_state_checkpoint_deltas WHERE update_id = $1 AND "
                "seq > $2::bigint ORDER BY seq",
                2, d, false);
    if (!r)
        goto out;
    rows = PQntuples(r);
    deltas = xcalloc(rows ? (size_t)rows : 1, sizeof(json_t *));
    bool loaded = true;
    for (int i = 0; i < rows && loaded; i++)
        loaded = (deltas[i] = json_loadb(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), 0, NULL)) != NULL;
    PQclear(r);
    r = NULL;
    if (rows == 0) {
        *doc = buf_steal(&base, len);
    } else if (!loaded ||
               apply_stored(base.data ? base.data : "", base.len, deltas, (size_t)rows, doc, len) != DELTA_OK) {
        log_error("update %s: its stored deltas no longer apply", uid);
        goto out;
    }
    if (ndeltas)
        *ndeltas = rows;
    result = 1;
out:
    PQclear(head);
    PQclear(r);
    for (int i = 0; deltas && i < rows; i++)
        json_decref(deltas[i]);
    free(deltas);
    buf_free(&base);
    if (own_tx)
        db_rollback(db);
    return result;
}

int checkpoint_materialize(Db *db, const char *uid, bool ending, char **doc, size_t *len)
{
    /* This process's copy when it is the current document (the generation read from the database). */
    if (working_holds(uid)) {
        DbParam p[] = {DB_TEXT(uid)};
        PGresult *r =
            db_exec(db, "SELECT checkpoint_gen FROM extension_pulumi_state_updates WHERE id = $1", 1, p, false);
        if (!r)
            return -1;
        long long gen = PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : -1;
        PQclear(r);
        Buf taken;
        int pending;
        if (ending && working_take(uid, gen, &taken, &pending)) {
            *doc = buf_steal(&taken, len);
            return 1;
        }
        if (!ending && working_copy(uid, gen, doc, len))
            return 1;
    }
    return materialize_db(db, uid, doc, len, NULL);
}

/* Store one accepted change of the document as its edits (text: a deploymentDelta array), or every
 * DELTAS_PER_BASE changes the whole document as the new base; move the update to seq and the next
 * generation, commit. pending: deltas stored since the base, -1 when not known. The deltas stored
 * after it, or -1 on a database error. */
static int store_delta(Db *db, const char *uid, long long seq, const char *mode, const char *text, const char *doc,
                       size_t len, int pending)
{
    char sbuf[24];
    snprintf(sbuf, sizeof(sbuf), "%lld", seq);
    if (pending < 0) {
        DbParam c[] = {DB_TEXT(uid)};
        PGresult *r = db_exec(db, "SELECT count(*) FROM extension_pulumi_state_checkpoint_deltas WHERE update_id = $1",
                              1, c, false);
        if (!r)
            return -1;
        pending = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
        PQclear(r);
    }
    bool ok;
    if (pending + 1 >= DELTAS_PER_BASE) {
        DbParam b[] = {DB_TEXT(uid), DB_TEXT(sbuf), DB_TEXT(mode), DB_BIN(doc, len)};
        ok = db_run(db,
                    "WITH c AS (UPDATE extension_pulumi_state_checkpoints SET seq = $2::bigint, raw = $4, "
                    "updated_at = now() WHERE update_id = $1), d AS (DELETE FROM "
                    "extension_pulumi_state_checkpoint_deltas WHERE update_id = $1) UPDATE "
                    "extension_pulumi_state_updates SET last_seq = $2::bigint, checkpoint_mode = $3, "
                    "checkpoint_gen = checkpoint_gen + 1 WHERE id = $1",
                    4, b);
        pending = 0;
    } else {
        DbParam p[] = {DB_TEXT(uid), DB_TEXT(sbuf), DB_TEXT(mode), DB_TEXT(text)};
        ok = db_run_hot_outcome(db,
                                "WITH d AS (INSERT INTO extension_pulumi_state_checkpoint_deltas (update_id, seq, "
                                "edits) VALUES ($1, $2::bigint, $4)) UPDATE extension_pulumi_state_updates SET "
                                "last_seq = $2::bigint, checkpoint_mode = $3, checkpoint_gen = checkpoint_gen + 1 "
                                "WHERE id = $1",
                                4, p) == DB_OK;
        pending++;
    }
    return ok && db_commit(db) ? pending : -1;
}

/* A full checkpoint as edits of the document before it, when this worker holds that document and
 * little changed (the CLI sends the whole state every time; most of it is the same bytes). NULL when
 * it should be stored whole. */
static char *full_as_edits(const char *base, size_t baselen, const char *doc, size_t len)
{
    TextEdit ed[64];
    size_t n = textdiff(base, baselen, doc, len, ed, 64), changed = 0;
    if (n > 64)
        return NULL;
    for (size_t i = 0; i < n; i++)
        changed += (ed[i].end - ed[i].start) + (ed[i].bend - ed[i].bstart);
    if (changed > len / 4)
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *text = json_stringn(doc + ed[i].bstart, ed[i].bend - ed[i].bstart);
        if (!text) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr,
                              json_pack("{s:{s:{s:I},s:{s:I}},s:o}", "Span", "start", "offset", (json_int_t)ed[i].start,
                                        "end", "offset", (json_int_t)ed[i].end, "NewText", text));
    }
    char *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return out;
}

bool update_checkpoint(Db *db, const StackRef *ref, const char *uid, const char *token, char *doc, size_t len,
                       ApiError *e)
{
    UpdateInfo info;
    if (!begin_state(db, ref, uid, token, false, &info, e)) {
        db_rollback(db);
        free(doc);
        return false;
    }
    int pending = 0;
    Buf base;
    buf_init(&base);
    char *text =
        working_take(uid, info.checkpoint_gen, &base, &pending) ? full_as_edits(base.data, base.len, doc, len) : NULL;
    buf_free(&base);
    bool ok;
    if (text) {
        pending = store_delta(db, uid, info.last_seq + 1, "full", text, doc, len, pending);
        ok = pending >= 0 || api_internal(e);
    } else {
        ok = store_checkpoint(db, uid, "full", info.last_seq + 1, doc, len, e);
        pending = 0;
    }
    free(text);
    Buf kept = buf_of(doc, len);
    if (ok)
        working_put(uid, info.checkpoint_gen + 1, &kept, pending); /* the next one is diffed against it */
    else
        buf_free(&kept);
    db_rollback(db);
    return ok;
}

bool update_checkpoint_delta(Db *db, const StackRef *ref, const char *uid, const char *token, long long seq,
                             json_t *edits, const char *hash, ApiError *e)
{
    UpdateInfo info;
    Buf doc;
    buf_init(&doc);
    bool ok = false, current = false;
    if (!begin_state(db, ref, uid, token, false, &info, e))
        goto done;
    if (seq == info.last_seq) {
        ok = true; /* a retry of a delta already applied */
        goto done;
    }
    if (seq < info.last_seq) {
        api_fail(e, 409, "Conflict: checkpoint sequence number %lld is older than %lld", seq, info.last_seq);
        goto done;
    }
    /* The document now: this worker's copy when it is current, else the base and its deltas. */
    int pending = -1;
    if (!working_take(uid, info.checkpoint_gen, &doc, &pending)) {
        char *rebuilt = NULL;
        size_t len = 0;
        int m = materialize_db(db, uid, &rebuilt, &len, &pending);
        if (m < 0) {
            api_internal(e);
            goto done;
        }
        if (m == 0) {
            api_fail(e, 409, "Conflict: no verbatim checkpoint to apply a delta to; send a verbatim checkpoint");
            goto done;
        }
        doc = buf_of(rebuilt, len);
        log_debug("delta %lld of update %s: the document rebuilt from its base and %d deltas", seq, uid, pending);
    }
    current = true; /* doc is the document at info.checkpoint_gen */
    char err[160] = "";
    DeltaResult dr = delta_apply_inplace(&doc, edits, hash, err, sizeof(err));
    if (dr == DELTA_HASH_MISMATCH) {
        api_fail(e, 409, "Conflict: the checkpoint hash does not match the result of the delta");
        goto done;
    }
    if (dr != DELTA_OK) {
        api_fail(e, 400, "Bad Request: invalid delta: %s", err);
        goto done;
    }
    current = false; /* changed in place: the next generation's once stored, nobody's if not */
    /* The result is byte for byte the CLI's own serialisation (its SHA-256 matched), and the base was
     * checked as a deployment when it arrived: no second parse of the whole document. */
    char *text = json_dumps(edits, JSON_COMPACT);
    pending = text ? store_delta(db, uid, seq, "delta", text, doc.data, doc.len, pending) : -1;
    free(text);
    if (pending < 0) {
        api_internal(e);
        goto done;
    }
    working_put(uid, info.checkpoint_gen + 1, &doc, pending);
    ok = true;
done:
    db_rollback(db);
    if (current) /* refused, unchanged: still the document at this generation */
        working_put(uid, info.checkpoint_gen, &doc, pending);
    buf_free(&doc);
    return ok;
}

/* The update checks of update_auth (token, running, lease, stack) as a locking CTE; the journal
 * also needs a real update holding the stack, with journaling on. */
#define BATCH_UPDATE_CTE                                                                                               \
    "WITH up AS (SELECT u.id FROM extension_pulumi_state_updates u "                                                   \
    "JOIN extension_pulumi_state_stacks s ON s.id = u.stack_id "                                                       \
    "WHERE u.id = $1 AND s.org = $2 AND s.project = $3 AND s.name = $4 AND u.status = 'running' "                      \
    "AND u.lease_expires_at > now() AND $5 IN (u.token_hash, u.prev_token_hash) "
#define JOURNAL_CHECKS "AND NOT u.dry_run AND u.journal_version > 0 AND s.active_update = u.id "

typedef struct BatchTable {
    const char *check_sql; /* $1..$5: the update's row FOR SHARE; division by zero when refused */
    const char *copy_sql;
    const char *insert_sql; /* the fallback: one INSERT .. ON CONFLICT DO NOTHING */
} BatchTable;

static const BatchTable journal_table = {
    BATCH_UPDATE_CTE JOURNAL_CHECKS "FOR SHARE OF u) SELECT 1 / count(*) FROM up",
    "COPY extension_pulumi_state_journal (update_id, sequence_id, entry) FROM STDIN (FORMAT binary)",
    BATCH_UPDATE_CTE JOURNAL_CHECKS
    "FOR SHARE OF u), ins AS (INSERT INTO extension_pulumi_state_journal "
    "(update_id, sequence_id, entry) SELECT up.id, q.seq, q.entry FROM up, unnest($6::int8[], $7::bytea[]) "
    "q(seq, entry) ON CONFLICT DO NOTHING) SELECT count(*) FROM up",
};

static const BatchTable events_table = {
    BATCH_UPDATE_CTE "FOR SHARE OF u) SELECT 1 / count(*) FROM up",
    "COPY extension_pulumi_state_events (update_id, sequence, event) FROM STDIN (FORMAT binary)",
    BATCH_UPDATE_CTE
    "FOR SHARE OF u), ins AS (INSERT INTO extension_pulumi_state_events "
    "(update_id, sequence, event) SELECT up.id, q.seq, q.entry FROM up, unnest($6::int8[], $7::bytea[]) "
    "q(seq, entry) ON CONFLICT DO NOTHING) SELECT count(*) FROM up",
};

/* The binary COPY stream of batch's rows (update_id, id, text). */
static bool copy_stream(const char *update_id, const JspanIds *batch, Buf *stream)
{
    uuid_t uid;
    if (uuid_parse(update_id, uid) != 0)
        return false;
    size_t total = 32;
    for (size_t i = 0; i < batch->n; i++)
        total += batch->spans[i].len + 42;
    buf_reserve(stream, total);
    db_copy_header(stream);
    for (size_t i = 0; i < batch->n; i++) {
        db_copy_row(stream, 3);
        db_copy_field(stream, uid, sizeof(uid));
        db_copy_field_int8(stream, batch->ids[i]);
        db_copy_field(stream, batch->spans[i].p, batch->spans[i].len);
    }
    db_copy_trailer(stream);
    return true;
}

/* Store batch: 1 stored, 0 a check failed (nothing stored), -1 database error. */
static int store_batch(Db *db, const StackRef *ref, const char *uid, const char *token, bool journal,
                       const JspanIds *batch)
{
    const BatchTable *t = journal ? &journal_table : &events_table;
    char *hash = token_hash(token);
    DbParam p[] = {DB_TEXT(uid),  DB_TEXT(ref->org), DB_TEXT(ref->project), DB_TEXT(ref->name),
                   DB_TEXT(hash), DB_BIN(NULL, 0),   DB_BIN(NULL, 0)};
    DbOutcome o;
    if (batch->n == 0) {
        o = db_run_hot_outcome(db, t->check_sql, 5, p);
    } else {
        Buf stream;
        buf_init(&stream);
        o = copy_stream(uid, batch, &stream) ? db_copy_checked(db, t->check_sql, 5, p, t->copy_sql, &stream) : DB_ERROR;
        buf_free(&stream);
    }
    int result = o == DB_OK ? 1 : o == DB_REFUSED ? 0 : -1;
    if (o == DB_DUPLICATE) {
        /* Some of it is stored already (a retried batch): one statement that skips what is there. */
        Buf seqs, items;
        buf_init(&seqs);
        buf_init(&items);
        db_array_begin(&seqs, DB_OID_INT8, batch->n);
        db_array_begin(&items, DB_OID_BYTEA, batch->n);
        for (size_t i = 0; i < batch->n; i++) {
            db_array_add_int8(&seqs, batch->ids[i]);
            db_array_add(&items, batch->spans[i].p, batch->spans[i].len);
        }
        p[5] = DB_BIN(seqs.data, seqs.len);
        p[6] = DB_BIN(items.data, items.len);
        PGresult *r = db_exec(db, t->insert_sql, 7, p, false);
        result = r ? (PQntuples(r) == 1 && atoi(PQgetvalue(r, 0, 0)) == 1) : -1;
        PQclear(r);
        buf_free(&seqs);
        buf_free(&items);
    }
    free(hash);
    return result;
}

bool update_append(Db *db, const StackRef *ref, const char *uid, const char *token, bool journal, const JspanIds *batch,
                   const char *resource_changes, ApiError *e)
{
    int stored = store_batch(db, ref, uid, token, journal, batch);
    if (stored == 0) {
        /* Not taken: find out why (this reaps an expired lease and answers as every state route
         * does), or store it if the update was only busy being renewed. */
        UpdateInfo info;
        Stack *s = NULL;
        bool ok = update_auth(db, ref, uid, token, journal, journal ? &s : NULL, &info, e);
        stack_free(s);
        if (ok && journal)
            ok = accepts_state(db, &info, true, e);
        else if (ok && info.status != UPDATE_RUNNING)
            ok =
                api_fail(e, 409, "Conflict: the update is not in progress (it is %s)", update_status_wire(info.status));
        db_rollback(db);
        if (!ok)
            return false;
        stored = store_batch(db, ref, uid, token, journal, batch);
        if (stored == 0)
            return api_fail(e, 409,
                            journal ? "Conflict: the update no longer takes journal entries"
                                    : "Conflict: the update no longer takes events");
    }
    if (stored > 0 && resource_changes) {
        DbParam p[] = {DB_TEXT(uid), DB_TEXT(resource_changes)};
        if (!db_run(db, "UPDATE extension_pulumi_state_updates SET resource_changes = $2::jsonb WHERE id = $1", 2, p))
            stored = -1;
    }
    return stored > 0 || api_internal(e);
}
