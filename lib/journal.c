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

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "jspan.h"
#include "util.h"

#define ROOT_STACK_TYPE "pulumi:pulumi:Stack"
#define URN_PREFIX "urn:pulumi:"
#define PROVIDER_TYPE_PREFIX "pulumi:providers:"
#define UNKNOWN_PROVIDER_ID "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

enum {
    KIND_BEGIN = 0,
    KIND_SUCCESS = 1,
    KIND_FAILURE = 2,
    KIND_REFRESH_SUCCESS = 3,
    KIND_OUTPUTS = 4,
    KIND_WRITE = 5,
    KIND_SECRETS_MANAGER = 6,
    KIND_REBUILT_BASE_STATE = 7,
    KIND_EXTENSION_PARAMETERIZE = 8,
    KIND_SNIPPETS = 9,
};

/* ---- int64 -> size_t open-addressing map ---- */

typedef struct IntMap {
    int64_t *keys;
    size_t *vals;
    unsigned char *state; /* 0 empty, 1 used, 2 deleted */
    size_t cap;           /* power of two, or 0 */
    size_t used;          /* used + deleted slots */
} IntMap;

static size_t int_hash(int64_t k)
{
    uint64_t x = (uint64_t)k + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(x ^ (x >> 31));
}

static void intmap_free(IntMap *m)
{
    free(m->keys);
    free(m->vals);
    free(m->state);
    memset(m, 0, sizeof(*m));
}

/* The slot holding k, or (if absent) the slot to insert it into. */
static size_t intmap_slot(const IntMap *m, int64_t k, bool *found)
{
    size_t mask = m->cap - 1, i = int_hash(k) & mask, tomb = SIZE_MAX;
    for (;;) {
        if (m->state[i] == 0) {
            *found = false;
            return tomb != SIZE_MAX ? tomb : i;
        }
        if (m->state[i] == 2) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (m->keys[i] == k) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static bool intmap_get(const IntMap *m, int64_t k, size_t *val)
{
    bool found = false;
    if (!m->cap)
        return false;
    size_t i = intmap_slot(m, k, &found);
    if (found && val)
        *val = m->vals[i];
    return found;
}

static void intmap_put(IntMap *m, int64_t k, size_t val);

static void intmap_grow(IntMap *m)
{
    IntMap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = xcalloc(m->cap, sizeof(int64_t));
    m->vals = xcalloc(m->cap, sizeof(size_t));
    m->state = xcalloc(m->cap, 1);
    m->used = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.state[i] == 1)
            intmap_put(m, old.keys[i], old.vals[i]);
    intmap_free(&old);
}

static void intmap_put(IntMap *m, int64_t k, size_t val)
{
    bool found = false;
    if ((m->used + 1) * 2 > m->cap)
        intmap_grow(m);
    size_t i = intmap_slot(m, k, &found);
    if (!found && m->state[i] == 0)
        m->used++;
    m->keys[i] = k;
    m->vals[i] = val;
    m->state[i] = 1;
}

static void intmap_del(IntMap *m, int64_t k)
{
    bool found = false;
    if (!m->cap)
        return;
    size_t i = intmap_slot(m, k, &found);
    if (found)
        m->state[i] = 2;
}

/* ---- replay state ---- */

/* The members of the base deployment the replay reads; each an owned reference or NULL. */
typedef struct Base {
    json_t *resources;  /* array */
    json_t *pending;    /* pending_operations array */
    json_t *metadata;   /* object */
    json_t *secrets;    /* secrets_providers object */
    json_t *snippets;   /* array */
    json_t *extensions; /* object */
} Base;

typedef struct NewRes {
    json_t *state; /* owned reference */
    bool del;      /* deleteNew: "delete": true */
    bool pending;  /* pendingReplacementNew: "pendingReplacement": true */
} NewRes;

typedef struct Replay {
    Base base;
    size_t nbase;
    bool *to_delete;      /* toDeleteInSnapshot, per base index */
    bool *mark_delete;    /* markAsDeletion */
    bool *mark_pending;   /* markAsPendingReplacement */
    json_t **to_replace;  /* toReplaceInSnapshot: owned state or NULL */
    NewRes *news;         /* newResources */
    size_t nnews, capnews;
    IntMap op_index;      /* operationID -> index in news */
    IntMap to_remove;     /* set of operationIDs */
    IntMap incomplete;    /* operationID -> index in begins */
    json_t **begins;      /* owned Begin entries in order; NULL once completed */
    size_t nbegins, capbegins;
    json_t *extensions;   /* ref -> extension, from ExtensionParameterize */
    bool has_refresh;
    bool byte_string;
    bool lenient;         /* JOURNAL_LENIENT: skip what cannot be applied */
    size_t skipped;
    const char *server_version;
} Replay;

/* A generated resource list: each resource an owned reference; own[i] when this generation made it
 * (a shallow copy), so it can be changed in place. */
typedef struct Gen {
    json_t **res;
    bool *own;
    size_t n;
    json_t *pending;  /* array */
    json_t *snippets; /* owned reference or NULL */
    json_t *features; /* object used as a set */
} Gen;

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static json_t *member_of_type(json_t *obj, const char *key, json_type type)
{
    json_t *v = json_object_get(obj, key);
    return v && json_typeof(v) == type ? v : NULL;
}

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
        set_err(err, errlen, "journal entry %s names operation %lld, which produced no resource", key,
                (long long)*op);
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

static json_t *generate(Replay *r, json_t **features, char *err, size_t errlen);

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
        json_t *dep = generate(r, &features, err, errlen);
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

/* ---- generating the deployment ---- */

static void gen_free(Gen *g)
{
    for (size_t i = 0; i < g->n; i++)
        json_decref(g->res[i]);
    free(g->res);
    free(g->own);
    json_decref(g->pending);
    json_decref(g->snippets);
    json_decref(g->features);
    memset(g, 0, sizeof(*g));
}

/* Resource i, made safe to change in place. */
static json_t *gen_mut(Gen *g, size_t i)
{
    if (!g->own[i]) {
        json_t *c = json_copy(g->res[i]);
        json_decref(g->res[i]);
        g->res[i] = c;
        g->own[i] = true;
    }
    return g->res[i];
}

static bool nonempty_string(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s;
}

static bool nonempty_container(json_t *v)
{
    return (json_is_array(v) && json_array_size(v)) || (json_is_object(v) && json_object_size(v));
}

/* stack.ApplyFeatures: the deployment features resource res needs. */
static void apply_features(json_t *res, bool byte_string, json_t *features)
{
    if (byte_string)
        json_object_set_new(features, "byteString", json_true());
    if (!json_is_object(res))
        return;
    if (json_is_true(json_object_get(res, "refreshBeforeUpdate")))
        json_object_set_new(features, "refreshBeforeUpdate", json_true());
    if (nonempty_string(res, "viewOf"))
        json_object_set_new(features, "views", json_true());
    if (nonempty_container(json_object_get(res, "resourceHooks")))
        json_object_set_new(features, "hooks", json_true());
    if (json_is_true(json_object_get(res, "taint")))
        json_object_set_new(features, "taint", json_true());
    if (nonempty_container(member_of_type(res, "replaceWith", JSON_ARRAY)))
        json_object_set_new(features, "replaceWith", json_true());
    if (nonempty_string(res, "extensionRef"))
        json_object_set_new(features, "extensionParameterization", json_true());
    if (nonempty_string(res, "snippetID"))
        json_object_set_new(features, "snippets-prototype", json_true());
}

/* Append res (borrowed); with a flag to set, a shallow copy carrying it. */
static void gen_push(Gen *g, Replay *r, json_t *res, bool del, bool pending)
{
    json_t *v = json_incref(res);
    bool own = false;
    if (del || pending) {
        json_decref(v);
        v = json_copy(res);
        own = true;
        if (del)
            json_object_set_new(v, "delete", json_true());
        if (pending)
            json_object_set_new(v, "pendingReplacement", json_true());
    }
    g->res[g->n] = v;
    g->own[g->n++] = own;
    apply_features(v, r->byte_string, g->features);
}

static bool is_seen(json_t *seen, json_t *urn)
{
    return json_is_string(urn) && json_object_getn(seen, json_string_value(urn), json_string_length(urn)) != NULL;
}

static bool all_seen(json_t *list, json_t *seen)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (!is_seen(seen, v))
            return false;
    }
    return true;
}

/* new: the members of list that are seen, or NULL when all are. */
static json_t *filter_seen(json_t *list, json_t *seen)
{
    if (all_seen(list, seen))
        return NULL;
    size_t i;
    json_t *v, *out = json_array();
    json_array_foreach(list, i, v) {
        if (is_seen(seen, v))
            json_array_append(out, v);
    }
    return out;
}

/* A non-empty URN list member pruned to what is seen; a list left empty goes (omitempty). */
static void prune_list(Gen *g, size_t i, const char *key, json_t *seen)
{
    json_t *list = json_object_get(g->res[i], key);
    if (!nonempty_container(list) || !json_is_array(list))
        return;
    json_t *f = filter_seen(list, seen);
    if (!f)
        return;
    if (json_array_size(f))
        json_object_set_new(gen_mut(g, i), key, f);
    else {
        json_decref(f);
        json_object_del(gen_mut(g, i), key);
    }
}

/* propertyDependencies pruned to what is seen; keys left with nothing go, as does an empty map. */
static void prune_property_deps(Gen *g, size_t i, json_t *seen)
{
    json_t *pd = member_of_type(g->res[i], "propertyDependencies", JSON_OBJECT);
    if (!pd || !json_object_size(pd))
        return;
    bool changed = false;
    const char *k;
    json_t *v;
    json_object_foreach(pd, k, v) {
        if (!json_is_array(v) || !json_array_size(v) || !all_seen(v, seen)) {
            changed = true;
            break;
        }
    }
    if (!changed)
        return;
    json_t *fresh = json_object();
    json_object_foreach(pd, k, v) {
        if (!json_is_array(v))
            continue;
        json_t *f = filter_seen(v, seen);
        if (!f)
            f = json_incref(v);
        if (json_array_size(f))
            json_object_set_new(fresh, k, f);
        else
            json_decref(f);
    }
    if (json_object_size(fresh))
        json_object_set_new(gen_mut(g, i), "propertyDependencies", fresh);
    else {
        json_decref(fresh);
        json_object_del(gen_mut(g, i), "propertyDependencies");
    }
}

/* rebuildDependencies + undangleParentResources: after a refresh deleted resources, keep only
 * references to resources earlier in the list; a parent that is nowhere in the list goes. */
static void rebuild_dependencies(Gen *g)
{
    json_t *seen = json_object();
    for (size_t i = 0; i < g->n; i++) {
        prune_list(g, i, "dependencies", seen);
        prune_property_deps(g, i, seen);
        prune_list(g, i, "replaceWith", seen);
        json_t *dw = json_object_get(g->res[i], "deletedWith");
        if (dw && !is_seen(seen, dw))
            json_object_del(gen_mut(g, i), "deletedWith");
        json_t *urn = json_object_get(g->res[i], "urn");
        if (json_is_string(urn))
            json_object_setn_new(seen, json_string_value(urn), json_string_length(urn), json_true());
        else
            json_object_set_new(seen, "", json_true());
    }
    for (size_t i = 0; i < g->n; i++) {
        json_t *parent = json_object_get(g->res[i], "parent");
        if (parent && !is_seen(seen, parent))
            json_object_del(gen_mut(g, i), "parent");
    }
    json_decref(seen);
}

/* ---- URNs ---- */

/* Component index of "::"-separated s (urn.getComponentN); open: everything from it on. */
static void urn_component(const char *s, int index, bool open, const char **start, size_t *len)
{
    size_t n = strlen(s), part = 0;
    int count = 0;
    if (open && index == 0) {
        *start = s;
        *len = n;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ':' && s[i + 1] == ':') {
            count++;
            if (count == index) {
                part = i + 2;
                if (open)
                    break;
                i++;
            } else if (count > index) {
                *start = s + part;
                *len = i - part;
                return;
            } else {
                i++;
            }
        }
    }
    *start = s + part;
    *len = n - part;
}

static bool urn_valid_prefix(const char *urn)
{
    return strncmp(urn, URN_PREFIX, strlen(URN_PREFIX)) == 0;
}

/* The qualified type of a URN with the standard prefix, as a new string. */
static char *urn_qualified_type(const char *urn)
{
    const char *p;
    size_t len;
    urn_component(urn + strlen(URN_PREFIX), 2, false, &p, &len);
    return xstrndup(p, len);
}

/* NewURN(child.Stack(), child.Project(), parentType, child.Type(), child.Name()). */
static char *urn_reparent(const char *child, const char *parent_type)
{
    const char *body = child + strlen(URN_PREFIX), *stack, *project, *qt, *name;
    size_t lstack, lproject, lqt, lname;
    urn_component(body, 0, false, &stack, &lstack);
    urn_component(body, 1, false, &project, &lproject);
    urn_component(body, 2, false, &qt, &lqt);
    urn_component(body, 3, true, &name, &lname);
    const char *type = qt;
    for (size_t i = 0; i < lqt; i++)
        if (qt[i] == '$')
            type = qt + i + 1;
    size_t ltype = lqt - (size_t)(type - qt);
    Buf b;
    buf_init(&b);
    buf_puts(&b, URN_PREFIX);
    buf_append(&b, stack, lstack);
    buf_puts(&b, "::");
    buf_append(&b, project, lproject);
    buf_puts(&b, "::");
    if (*parent_type && strcmp(parent_type, ROOT_STACK_TYPE) != 0) {
        buf_puts(&b, parent_type);
        buf_puts(&b, "$");
    }
    buf_append(&b, type, ltype);
    buf_puts(&b, "::");
    buf_append(&b, name, lname);
    return buf_steal(&b, NULL);
}

/* The alias target of urn (NULL-safe; absent means ""), or NULL if it is not aliased. */
static json_t *alias_of(json_t *aliased, json_t *urn)
{
    if (!urn)
        return json_object_get(aliased, "");
    if (!json_is_string(urn))
        return NULL;
    return json_object_getn(aliased, json_string_value(urn), json_string_length(urn));
}

/* Rewrite URN member key of resource i through the aliases; "" (omitempty) removes it. */
static void fix_member(Gen *g, size_t i, const char *key, json_t *aliased)
{
    json_t *v = json_object_get(g->res[i], key), *to = alias_of(aliased, v);
    if (!to || (v && json_equal(v, to)))
        return;
    if (json_string_length(to))
        json_object_set(gen_mut(g, i), key, to);
    else if (v)
        json_object_del(gen_mut(g, i), key);
}

/* A new array with the aliased members of list rewritten, or NULL if none is. */
static json_t *fix_list(json_t *list, json_t *aliased)
{
    size_t i;
    json_t *v, *out = NULL;
    json_array_foreach(list, i, v) {
        json_t *to = alias_of(aliased, v);
        if (to && !json_equal(to, v)) {
            out = json_copy(list);
            break;
        }
    }
    if (!out)
        return NULL;
    json_array_foreach(out, i, v) {
        json_t *to = alias_of(aliased, v);
        if (to)
            json_array_set(out, i, to);
    }
    return out;
}

/* provider is "<urn>::<id>" (providers.ParseReference/NewReference): rewrite the URN part, and an
 * empty ID becomes the unknown ID. References Go would refuse to parse stay as they are. */
static void fix_provider(Gen *g, size_t i, json_t *aliased)
{
    const char *prov = json_string_value(json_object_get(g->res[i], "provider"));
    if (!prov || !*prov)
        return;
    const char *sep = NULL;
    for (const char *p = strstr(prov, "::"); p; p = strstr(p + 1, "::"))
        sep = p;
    if (!sep)
        return;
    char *urn = xstrndup(prov, (size_t)(sep - prov));
    const char *id = sep + 2;
    int delims = 0;
    for (const char *p = strstr(urn, "::"); p; p = strstr(p + 2, "::"))
        delims++;
    if (urn_valid_prefix(urn) && delims >= 3) {
        char *qt = urn_qualified_type(urn);
        const char *type = strrchr(qt, '$') ? strrchr(qt, '$') + 1 : qt;
        if (strncmp(type, PROVIDER_TYPE_PREFIX, strlen(PROVIDER_TYPE_PREFIX)) == 0 &&
            type[strlen(PROVIDER_TYPE_PREFIX)] != '\0') {
            json_t *to = json_object_get(aliased, urn);
            const char *newurn = to ? json_string_value(to) : urn;
            char *ref = xasprintf("%s::%s", newurn, *id ? id : UNKNOWN_PROVIDER_ID);
            if (strcmp(ref, prov) != 0)
                json_object_set_new(gen_mut(g, i), "provider", json_string(ref));
            free(ref);
        }
        free(qt);
    }
    free(urn);
}

/* NormalizeURNReferences: build the alias map (an alias naming two resources is an error; a child
 * of an aliased non-stack parent is aliased to its URN under the parent's new type), rewrite every
 * URN reference of the resources and the snippets' references through it, drop the aliases.
 * Pending operations are left alone, as in Go. */
static bool normalise_urns(Gen *g, char *err, size_t errlen)
{
    json_t *aliased = json_object();
    bool ok = false;
    for (size_t i = 0; i < g->n; i++) {
        json_t *res = g->res[i];
        json_t *urnv = json_object_get(res, "urn");
        const char *urn = json_is_string(urnv) ? json_string_value(urnv) : "";
        size_t j;
        json_t *a;
        json_array_foreach(member_of_type(res, "aliases", JSON_ARRAY), j, a) {
            if (!json_is_string(a))
                continue;
            const char *prev = json_string_value(json_object_get(aliased, json_string_value(a)));
            if (prev && strcmp(prev, urn) != 0) {
                set_err(err, errlen, "two resources ('%s' and '%s') have the same alias: '%s'", prev, urn,
                        json_string_value(a));
                goto fail;
            }
            json_object_set_new(aliased, json_string_value(a), json_string(urn));
        }
        json_t *parent = alias_of(aliased, json_object_get(res, "parent"));
        const char *np = json_string_value(parent);
        if (np && *np && urn_valid_prefix(np) && urn_valid_prefix(urn)) {
            char *qt = urn_qualified_type(np);
            if (strcmp(qt, ROOT_STACK_TYPE) != 0) {
                char *child = urn_reparent(urn, qt);
                json_object_set_new(aliased, urn, json_string(child));
                free(child);
            }
            free(qt);
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        if (json_object_size(aliased)) {
            fix_member(g, i, "urn", aliased);
            fix_member(g, i, "parent", aliased);
            fix_member(g, i, "deletedWith", aliased);
            fix_member(g, i, "viewOf", aliased);
            json_t *deps = member_of_type(g->res[i], "dependencies", JSON_ARRAY);
            json_t *fixed = deps ? fix_list(deps, aliased) : NULL;
            if (fixed)
                json_object_set_new(gen_mut(g, i), "dependencies", fixed);
            json_t *pd = member_of_type(g->res[i], "propertyDependencies", JSON_OBJECT);
            const char *k;
            json_t *v, *npd = NULL;
            json_object_foreach(pd, k, v) {
                fixed = json_is_array(v) ? fix_list(v, aliased) : NULL;
                if (!fixed)
                    continue;
                if (!npd)
                    npd = json_copy(pd);
                json_object_set_new(npd, k, fixed);
            }
            if (npd)
                json_object_set_new(gen_mut(g, i), "propertyDependencies", npd);
        }
        fix_provider(g, i, aliased);
        if (json_object_get(g->res[i], "aliases"))
            json_object_del(gen_mut(g, i), "aliases");
    }
    if (json_object_size(aliased) && json_array_size(g->snippets)) {
        json_t *copy = NULL;
        size_t i;
        json_t *sn;
        json_array_foreach(g->snippets, i, sn) {
            const char *k;
            json_t *v;
            json_object_foreach(member_of_type(sn, "references", JSON_OBJECT), k, v) {
                json_t *to = alias_of(aliased, v);
                if (to && !json_equal(to, v)) {
                    copy = json_deep_copy(g->snippets);
                    break;
                }
            }
            if (copy)
                break;
        }
        json_array_foreach(copy, i, sn) {
            const char *k;
            json_t *v;
            json_t *refs = member_of_type(sn, "references", JSON_OBJECT);
            json_object_foreach(refs, k, v) {
                json_t *to = alias_of(aliased, v);
                if (to)
                    json_object_set(refs, k, to);
            }
        }
        if (copy) {
            json_decref(g->snippets);
            g->snippets = copy;
        }
    }
    ok = true;
fail:
    json_decref(aliased);
    return ok;
}

/* ---- the manifest and the deployment ---- */

/* Now as RFC 3339 with nanoseconds, trailing zeros trimmed (Go's time.RFC3339Nano), in UTC. */
static void rfc3339_now(char buf[64])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ts.tv_nsec) {
        n += (size_t)snprintf(buf + n, 64 - n, ".%09ld", (long)ts.tv_nsec);
        while (buf[n - 1] == '0')
            n--;
    }
    buf[n++] = 'Z';
    buf[n] = '\0';
}

static json_t *manifest_new(const char *version)
{
    char when[64], magic[65] = "";
    rfc3339_now(when);
    if (*version)
        sha256_hex(version, strlen(version), magic);
    json_t *m = json_object();
    json_object_set_new(m, "time", json_string(when));
    json_object_set_new(m, "magic", json_string(magic));
    json_object_set_new(m, "version", json_string(version));
    return m;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* new: the feature names of set, sorted, or NULL if there are none. */
static json_t *sorted_features(json_t *set)
{
    size_t n = json_object_size(set), k = 0;
    if (!n)
        return NULL;
    const char **names = xmalloc(n * sizeof(char *));
    const char *key;
    json_t *v;
    json_object_foreach(set, key, v) names[k++] = key;
    qsort(names, n, sizeof(char *), str_cmp);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_string(names[i]));
    free(names);
    return out;
}

/* GenerateDeployment: new DeploymentV3 object; *features new sorted array or NULL. */
static json_t *generate(Replay *r, json_t **features, char *err, size_t errlen)
{
    Gen g = {0};
    json_t *dep = NULL;
    bool *removed = xcalloc(r->nnews + 1, sizeof(bool));
    *features = NULL;
    g.res = xcalloc(r->nnews + r->nbase + 1, sizeof(json_t *));
    g.own = xcalloc(r->nnews + r->nbase + 1, sizeof(bool));
    g.pending = json_array();
    g.features = json_object();
    g.snippets = json_incref(r->base.snippets);
    for (size_t s = 0; s < r->to_remove.cap; s++) {
        size_t idx;
        if (r->to_remove.state[s] == 1 && intmap_get(&r->op_index, r->to_remove.keys[s], &idx))
            removed[idx] = true;
    }
    /* What this update produced, less what a later step removed; then what the base had. */
    for (size_t i = 0; i < r->nnews; i++)
        if (!removed[i])
            gen_push(&g, r, r->news[i].state, r->news[i].del, r->news[i].pending);
    for (size_t i = 0; i < r->nbase; i++) {
        if (r->to_delete[i])
            continue;
        if (r->to_replace[i])
            gen_push(&g, r, r->to_replace[i], false, false);
        else
            gen_push(&g, r, json_array_get(r->base.resources, i), r->mark_delete[i], r->mark_pending[i]);
    }
    /* Operations that began and never ended, then the base's pending creates. */
    for (size_t i = 0; i < r->nbegins; i++) {
        json_t *op = r->begins[i] ? member_of_type(r->begins[i], "operation", JSON_OBJECT) : NULL;
        if (op) {
            json_array_append(g.pending, op);
            apply_features(json_object_get(op, "resource"), r->byte_string, g.features);
        }
    }
    size_t i;
    json_t *op;
    json_array_foreach(r->base.pending, i, op) {
        const char *type = json_string_value(json_object_get(op, "type"));
        if (type && strcmp(type, "creating") == 0) {
            json_array_append(g.pending, op);
            apply_features(json_object_get(op, "resource"), r->byte_string, g.features);
        }
    }
    if (r->has_refresh)
        rebuild_dependencies(&g);
    if (json_array_size(g.snippets))
        json_object_set_new(g.features, "snippets-prototype", json_true());
    if (!normalise_urns(&g, err, errlen)) {
        if (!r->lenient)
            goto fail;
        r->skipped++; /* the aliases stay as they are */
    }

    dep = json_object();
    json_object_set_new(dep, "manifest", manifest_new(r->server_version));
    if (r->base.secrets)
        json_object_set(dep, "secrets_providers", r->base.secrets);
    if (g.n) {
        json_t *res = json_array();
        for (size_t k = 0; k < g.n; k++) {
            json_array_append_new(res, g.res[k]);
            g.res[k] = NULL;
        }
        json_object_set_new(dep, "resources", res);
    }
    if (json_array_size(g.pending))
        json_object_set(dep, "pending_operations", g.pending);
    json_object_set_new(dep, "metadata", r->base.metadata ? json_incref(r->base.metadata) : json_object());
    if (json_array_size(g.snippets))
        json_object_set(dep, "snippets", g.snippets);
    json_t *ext = json_copy(r->extensions);
    if (r->base.extensions)
        json_object_update(ext, r->base.extensions);
    if (json_object_size(ext))
        json_object_set(dep, "extensions", ext);
    json_decref(ext);
    *features = sorted_features(g.features);
fail:
    gen_free(&g);
    free(removed);
    return dep;
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

json_t *journal_replay(json_t *base, json_t *entries, const char *server_version, int flags, size_t *skipped,
                       char *err, size_t errlen)
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
            continue; /* a retried batch: the first copy counts */
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
    dep = generate(&r, &features, r.skipped ? NULL : err, r.skipped ? 0 : errlen);
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

/* ---- batch-time checks ---- */

/* Member key of object e: absent or null (true, *present false), else its span. */
static bool span_member(const char *e, size_t len, const char *key, bool *present, const char **v, size_t *vlen)
{
    size_t a, z;
    *present = false;
    if (!jspan_member(e, len, key, &a, &z) || jspan_is_null(e + a, z - a))
        return true;
    *present = true;
    *v = e + a;
    *vlen = z - a;
    return true;
}

bool journal_entry_check(const char *e, size_t len, char *why, size_t whylen)
{
    static const char *const indices[] = {"removeOld", "removeNew", "deleteOld", "deleteNew",
                                          "pendingReplacementOld", "pendingReplacementNew", NULL};
    static const char *const objects[] = {"state", "operation", "newSnapshot", "secretsProvider", "extension", NULL};
    const char *v = NULL;
    size_t vlen = 0;
    bool present;
    long long n;
    if (len == 0 || e[0] != '{') {
        set_err(why, whylen, "a journal entry must be an object");
        return false;
    }
    span_member(e, len, "sequenceID", &present, &v, &vlen);
    if (!present || !jspan_int(v, vlen, &n) || n < 1) {
        set_err(why, whylen, "sequenceID must be an integer >= 1");
        return false;
    }
    long long kind = -1;
    span_member(e, len, "kind", &present, &v, &vlen);
    if (!present || !jspan_int(v, vlen, &kind) || kind < 0 || kind > 9) {
        set_err(why, whylen, "kind must be an integer 0..9");
        return false;
    }
    span_member(e, len, "operationID", &present, &v, &vlen);
    if (present && !jspan_int(v, vlen, &n)) {
        set_err(why, whylen, "operationID must be an integer");
        return false;
    }
    for (const char *const *k = indices; *k; k++) {
        span_member(e, len, *k, &present, &v, &vlen);
        if (present && (!jspan_int(v, vlen, &n) || n < 0)) {
            set_err(why, whylen, "%s must be an integer >= 0", *k);
            return false;
        }
    }
    for (const char *const *k = objects; *k; k++) {
        span_member(e, len, *k, &present, &v, &vlen);
        if (present && v[0] != '{') {
            set_err(why, whylen, "%s must be an object", *k);
            return false;
        }
    }
    span_member(e, len, "snippets", &present, &v, &vlen);
    if (present && v[0] != '[') {
        set_err(why, whylen, "snippets must be an array");
        return false;
    }
    if (kind == KIND_WRITE) {
        span_member(e, len, "newSnapshot", &present, &v, &vlen);
        if (!present) {
            set_err(why, whylen, "a Write entry needs a newSnapshot");
            return false;
        }
    }
    if (kind == KIND_EXTENSION_PARAMETERIZE) {
        span_member(e, len, "extensionRef", &present, &v, &vlen);
        bool ref = present && v[0] == '"';
        span_member(e, len, "extension", &present, &v, &vlen);
        if (!ref || !present) {
            set_err(why, whylen, "an ExtensionParameterize entry needs extensionRef and extension");
            return false;
        }
    }
    return true;
}
