/* journal.c - replay journal entries into a deployment, as the CLI's own JournalReplayer does. */

/*
 * DESIGN
 *
 * A port of the semantics of pkg/backend/journal.go (JournalReplayer.Add, GenerateDeployment,
 * rebuildDependencies, undangleParentResources) and apitype.DeploymentV3.NormalizeURNReferences.
 *
 * State: the base deployment (its members held separately, so SecretsManager, Snippets, Write and
 * RebuiltBaseState replace one member or all of them), flags per base index (toDeleteInSnapshot,
 * markAsDeletion, markAsPendingReplacement) and the replacement state per base index
 * (toReplaceInSnapshot) in plain arrays, the new resources in order with their delete /
 * pendingReplacement marks, and small int64 hash maps for operationID -> new resource index,
 * the toRemove set and the incomplete operations (kept in Begin order, so the pending operations
 * come out in a stable order where Go iterates a map).
 *
 * Resources are JSON objects passed through untouched: the output shares them with base and
 * entries by reference count, and a resource is shallow-copied (json_copy) only when a member of
 * its own must change (a flag, a pruned dependency list, a rewritten URN). Nothing is deep-copied
 * except the snippets when an alias rewrites their references, so replay is linear in the number
 * of entries and resources, whatever the size of their states.
 *
 * Where Go would panic or silently use index 0 (an unknown operation ID looked up in a Go map, a
 * base index out of range) we reject the journal instead. One deliberate difference: Go does not
 * reset its running new-resource index on RebuiltBaseState, so operation IDs recorded after it
 * would point past the emptied list; here the index is always the position in the current list.
 */
#include "journal.h"
#include "journal-replay.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "jspan.h"
#include "util.h"

static void base_clear(Base *b)
{
    json_decref(b->resources);
    json_decref(b->pending);
    json_decref(b->metadata);
    json_decref(b->secrets);
    json_decref(b->snippets);
    json_decref(b->extensions);
    memset(b, 0, sizeof(*b));
}

/* Take the members of DeploymentV3 object dep (borrowed) as the base. */
static void base_set(Base *b, json_t *dep)
{
    Base nb = {
        .resources = json_incref(member_of_type(dep, "resources", JSON_ARRAY)),
        .pending = json_incref(member_of_type(dep, "pending_operations", JSON_ARRAY)),
        .metadata = json_incref(member_of_type(dep, "metadata", JSON_OBJECT)),
        .secrets = json_incref(member_of_type(dep, "secrets_providers", JSON_OBJECT)),
        .snippets = json_incref(member_of_type(dep, "snippets", JSON_ARRAY)),
        .extensions = json_incref(member_of_type(dep, "extensions", JSON_OBJECT)),
    };
    base_clear(b);
    *b = nb;
}

/* Size the per-base-index arrays for the current base, keeping marks below the new size (Write
 * keeps them, as Go keeps its index-keyed maps). */
static void resize_base_arrays(Replay *r)
{
    size_t n = json_array_size(r->base.resources), old = r->nbase;
    for (size_t i = n; i < old; i++)
        json_decref(r->to_replace[i]);
    r->to_delete = xrealloc(r->to_delete, (n + 1) * sizeof(bool));
    r->mark_delete = xrealloc(r->mark_delete, (n + 1) * sizeof(bool));
    r->mark_pending = xrealloc(r->mark_pending, (n + 1) * sizeof(bool));
    r->to_replace = xrealloc(r->to_replace, (n + 1) * sizeof(json_t *));
    for (size_t i = old; i < n; i++) {
        r->to_delete[i] = r->mark_delete[i] = r->mark_pending[i] = false;
        r->to_replace[i] = NULL;
    }
    r->nbase = n;
}

/* Forget everything recorded against the base and the new resources (RebuiltBaseState). */
static void reset_records(Replay *r)
{
    for (size_t i = 0; i < r->nbase; i++)
        json_decref(r->to_replace[i]);
    for (size_t i = 0; i < r->nnews; i++)
        json_decref(r->news[i].state);
    for (size_t i = 0; i < r->nbegins; i++)
        json_decref(r->begins[i]);
    r->nbase = r->nnews = r->nbegins = 0;
    intmap_free(&r->op_index);
    intmap_free(&r->to_remove);
    intmap_free(&r->incomplete);
    json_object_clear(r->extensions);
    resize_base_arrays(r);
}

static void replay_free(Replay *r)
{
    reset_records(r);
    free(r->to_delete);
    free(r->mark_delete);
    free(r->mark_pending);
    free(r->to_replace);
    free(r->news);
    free(r->begins);
    json_decref(r->extensions);
    base_clear(&r->base);
}

/* ---- reading entries ---- */

/* An optional int64 member: absent or null leaves *present false; anything but an integer fails. */
static bool opt_int(json_t *e, const char *key, bool *present, int64_t *val, char *err, size_t errlen)
{
    json_t *v = json_object_get(e, key);
    *present = false;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v)) {
        set_err(err, errlen, "journal entry member %s is not an integer", key);
        return false;
    }
    *present = true;
    *val = (int64_t)json_integer_value(v);
    return true;
}

/* An optional base index (removeOld, deleteOld, pendingReplacementOld), checked against the base. */
static bool old_index(Replay *r, json_t *e, const char *key, bool *present, size_t *idx, char *err, size_t errlen)
{
    int64_t v = 0;
    if (!opt_int(e, key, present, &v, err, errlen))
        return false;
    if (!*present)
        return true;
    if (v < 0 || (uint64_t)v >= (uint64_t)r->nbase) {
        set_err(err, errlen, "journal entry %s %lld: the base has %zu resources", key, (long long)v, r->nbase);
        return false;
    }
    *idx = (size_t)v;
    return true;
}

/* An optional operation ID (removeNew, deleteNew, pendingReplacementNew) that must have produced a
 * new resource; *idx is that resource's index in news. */
static bool new_index(Replay *r, json_t *e, const char *key, bool *present, int64_t *op, size_t *idx, char *err,
                      size_t errlen)
{
    if (!opt_int(e, key, present, op, err, errlen))
        return false;
    if (*present && !intmap_get(&r->op_index, *op, idx)) {
        set_err(err, errlen, "journal entry %s names operation %lld, which produced no resource", key, (long long)*op);
        return false;
    }
    return true;
}

/* The entry's "state": NULL when absent or null; an error when not an object. */
static bool entry_state(json_t *e, json_t **state, char *err, size_t errlen)
{
    json_t *s = json_object_get(e, "state");
    *state = NULL;
    if (!s || json_is_null(s))
        return true;
    if (!json_is_object(s)) {
        set_err(err, errlen, "journal entry state is not an object");
        return false;
    }
    *state = s;
    return true;
}

static void replace_old(Replay *r, size_t idx, json_t *state)
{
    json_decref(r->to_replace[idx]);
    r->to_replace[idx] = json_incref(state);
}

static void replace_new(Replay *r, size_t idx, json_t *state)
{
    json_decref(r->news[idx].state);
    r->news[idx].state = json_incref(state);
    r->news[idx].del = r->news[idx].pending = false;
}

static void complete_op(Replay *r, int64_t op)
{
    size_t i;
    if (!intmap_get(&r->incomplete, op, &i))
        return;
    json_decref(r->begins[i]);
    r->begins[i] = NULL;
    intmap_del(&r->incomplete, op);
}

static bool apply_success(Replay *r, json_t *e, int64_t op, char *err, size_t errlen)
{
    json_t *state;
    bool present;
    size_t idx = 0;
    int64_t x = 0;
    if (!entry_state(e, &state, err, errlen))
        return false;
    complete_op(r, op);
    if (state) {
        if (r->nnews == r->capnews) {
            r->capnews = r->capnews ? r->capnews * 2 : 64;
            r->news = xrealloc(r->news, r->capnews * sizeof(NewRes));
        }
        r->news[r->nnews] = (NewRes){.state = json_incref(state)};
        intmap_put(&r->op_index, op, r->nnews++);
    }
    if (!old_index(r, e, "removeOld", &present, &idx, err, errlen))
        return false;
    if (present)
        r->to_delete[idx] = true;
    if (!new_index(r, e, "removeNew", &present, &x, &idx, err, errlen))
        return false;
    if (present)
        intmap_put(&r->to_remove, x, 0);
    if (!old_index(r, e, "deleteOld", &present, &idx, err, errlen))
        return false;
    if (present)
        r->mark_delete[idx] = true;
    if (!new_index(r, e, "deleteNew", &present, &x, &idx, err, errlen))
        return false;
    if (present)
        r->news[idx].del = true;
    if (!old_index(r, e, "pendingReplacementOld", &present, &idx, err, errlen))
        return false;
    if (present)
        r->mark_pending[idx] = true;
    if (!new_index(r, e, "pendingReplacementNew", &present, &x, &idx, err, errlen))
        return false;
    if (present)
        r->news[idx].pending = true;
    if (json_is_true(json_object_get(e, "isRefresh")))
        r->has_refresh = true;
    return true;
}

static bool apply_refresh_success(Replay *r, json_t *e, int64_t op, char *err, size_t errlen)
{
    json_t *state;
    bool present;
    size_t idx = 0;
    int64_t x = 0;
    if (!entry_state(e, &state, err, errlen))
        return false;
    complete_op(r, op);
    r->has_refresh = true;
    if (!old_index(r, e, "removeOld", &present, &idx, err, errlen))
        return false;
    if (present && !state)
        r->to_delete[idx] = true;
    else if (present)
        replace_old(r, idx, state);
    if (!new_index(r, e, "removeNew", &present, &x, &idx, err, errlen))
        return false;
    if (present && !state)
        intmap_put(&r->to_remove, x, 0);
    else if (present)
        replace_new(r, idx, state);
    return true;
}

static bool apply_outputs(Replay *r, json_t *e, char *err, size_t errlen)
{
    json_t *state;
    bool present;
    size_t idx = 0;
    int64_t x = 0;
    if (!entry_state(e, &state, err, errlen))
        return false;
    if (!state)
        return true;
    if (!old_index(r, e, "removeOld", &present, &idx, err, errlen))
        return false;
    if (present)
        replace_old(r, idx, state);
    if (!new_index(r, e, "removeNew", &present, &x, &idx, err, errlen))
        return false;
    if (present)
        replace_new(r, idx, state);
    return true;
}

/* SecretsManager: keep the base's provider when type and state are the same, else take the entry's. */
static void apply_secrets_manager(Replay *r, json_t *e)
{
    json_t *sp = member_of_type(e, "secretsProvider", JSON_OBJECT);
    if (!sp)
        return; /* Go would dereference nil here; nothing sensible to change */
    json_t *cur = r->base.secrets;
    if (cur) {
        json_t *t1 = json_object_get(cur, "type"), *t2 = json_object_get(sp, "type");
        json_t *s1 = json_object_get(cur, "state"), *s2 = json_object_get(sp, "state");
        bool same_type = (!t1 && !t2) || (t1 && t2 && json_equal(t1, t2));
        bool same_state = (!s1 && !s2) || (s1 && s2 && json_equal(s1, s2));
        if (same_type && same_state)
            return;
    }
    json_decref(r->base.secrets);
    r->base.secrets = json_incref(sp);
}

static bool apply_entry(Replay *r, json_t *e, char *err, size_t errlen)
{
    int64_t kind = (int64_t)json_integer_value(json_object_get(e, "kind")), op = 0;
    bool present;
    if (!opt_int(e, "operationID", &present, &op, err, errlen))
        return false;
    if (json_is_true(json_object_get(e, "requiresByteString")))
        r->byte_string = true;
    switch (kind) {
    case KIND_BEGIN: {
        json_t *operation = json_object_get(e, "operation");
        if (operation && !json_is_null(operation) && !json_is_object(operation)) {
            set_err(err, errlen, "journal entry operation is not an object");
            return false;
        }
        size_t i;
        if (intmap_get(&r->incomplete, op, &i)) {
            json_decref(r->begins[i]);
            r->begins[i] = json_incref(e);
            return true;
        }
        if (r->nbegins == r->capbegins) {
            r->capbegins = r->capbegins ? r->capbegins * 2 : 64;
            r->begins = xrealloc(r->begins, r->capbegins * sizeof(json_t *));
        }
        r->begins[r->nbegins] = json_incref(e);
        intmap_put(&r->incomplete, op, r->nbegins++);
        return true;
    }
    case KIND_SUCCESS:
        return apply_success(r, e, op, err, errlen);
    case KIND_FAILURE:
        complete_op(r, op);
        return true;
    case KIND_REFRESH_SUCCESS:
        return apply_refresh_success(r, e, op, err, errlen);
    case KIND_OUTPUTS:
        return apply_outputs(r, e, err, errlen);
    case KIND_WRITE: {
        json_t *snap = member_of_type(e, "newSnapshot", JSON_OBJECT);
        if (!snap) {
            set_err(err, errlen, "Write journal entry without newSnapshot");
            return false;
        }
        base_set(&r->base, snap);
        resize_base_arrays(r);
        return true;
    }
    case KIND_SECRETS_MANAGER:
        apply_secrets_manager(r, e);
        return true;
    case KIND_REBUILT_BASE_STATE: {
        json_t *features = NULL;
        json_t *dep = journal_generate(r, &features, err, errlen);
        if (!dep)
            return false;
        base_set(&r->base, dep);
        json_decref(dep);
        json_decref(features);
        reset_records(r);
        return true;
    }
    case KIND_EXTENSION_PARAMETERIZE: {
        json_t *ref = json_object_get(e, "extensionRef"), *ext = json_object_get(e, "extension");
        if (!json_is_string(ref) || !ext || json_is_null(ext)) {
            set_err(err, errlen, "ExtensionParameterize journal entry without extensionRef and extension");
            return false;
        }
        json_object_set(r->extensions, json_string_value(ref), ext);
        return true;
    }
    case KIND_SNIPPETS: {
        json_t *sn = json_object_get(e, "snippets");
        if (sn && !json_is_null(sn) && !json_is_array(sn)) {
            set_err(err, errlen, "Snippets journal entry snippets is not an array");
            return false;
        }
        json_decref(r->base.snippets);
        r->base.snippets = json_is_array(sn) ? json_incref(sn) : NULL;
        return true;
    }
    default:
        return true; /* kinds this replayer does not know are ignored, as in Go */
    }
}

/* ---- entry point ---- */

typedef struct Entry {
    json_t *e;
    int64_t seq;
    size_t pos;
} Entry;

static int entry_cmp(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

json_t *journal_replay(json_t *base, json_t *entries, const char *server_version, int flags, size_t *skipped, char *err,
                       size_t errlen)
{
    Replay r = {0};
    r.lenient = (flags & JOURNAL_LENIENT) != 0;
    json_t *out = NULL, *dep = NULL, *features = NULL;
    size_t n = json_array_size(entries);
    Entry *sorted = xcalloc(n + 1, sizeof(Entry));
    r.extensions = json_object();
    r.server_version = server_version ? server_version : "";
    if (!json_is_array(entries)) {
        set_err(err, errlen, "journal entries are not an array");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i);
        json_t *seq = json_object_get(e, "sequenceID");
        if (!json_is_object(e) || !json_is_integer(seq) || !json_is_integer(json_object_get(e, "kind"))) {
            set_err(err, errlen, "journal entry %zu needs an integer sequenceID and kind", i);
            goto fail;
        }
        sorted[i] = (Entry){.e = e, .seq = (int64_t)json_integer_value(seq), .pos = i};
    }
    qsort(sorted, n, sizeof(Entry), entry_cmp);
    if (json_is_object(base))
        base_set(&r.base, base);
    resize_base_arrays(&r);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && sorted[i].seq == sorted[i - 1].seq)
            continue;                     /* a retried batch: the first copy counts */
        char *e = r.skipped ? NULL : err; /* lenient: the first failure is the one reported */
        if (!apply_entry(&r, sorted[i].e, e, e ? errlen : 0)) {
            size_t len = e ? strlen(e) : 0;
            if (e && len + 1 < errlen)
                snprintf(e + len, errlen - len, " (sequenceID %lld)", (long long)sorted[i].seq);
            if (!r.lenient)
                goto fail;
            r.skipped++;
        }
    }
    dep = journal_generate(&r, &features, r.skipped ? NULL : err, r.skipped ? 0 : errlen);
    if (!dep)
        goto fail;
    out = json_object();
    json_object_set_new(out, "version", json_integer(features ? 4 : 3));
    if (features)
        json_object_set_new(out, "features", features);
    json_object_set_new(out, "deployment", dep);
fail:
    if (skipped)
        *skipped = r.skipped;
    replay_free(&r);
    free(sorted);
    return out;
}
