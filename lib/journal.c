/* journal.c - replay journal entries into a deployment, as the CLI's own JournalReplayer does. */
#include "journal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "util.h"

/* The replayer's state; indices refer to the base's resources. */
typedef struct Replay {
    json_t *base;            /* owned DeploymentV3 object */
    size_t nbase;            /* resources in base */
    json_t *news;            /* owned array: new resource states, in order */
    json_t *op_index;        /* owned object: "opID" -> index in news */
    json_t *to_remove;       /* owned object: "opID" -> true */
    bool *to_delete;         /* per base index */
    json_t **to_replace;     /* per base index, owned, or NULL */
    bool *mark_delete;
    bool *mark_pending;
    json_t *incomplete;      /* owned object: "opID" -> entry, insertion order */
    json_t *extensions;      /* owned object */
    bool has_refresh;
    bool byte_string;
} Replay;

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

static void reset_base_arrays(Replay *r)
{
    json_t *res = json_object_get(r->base, "resources");
    size_t n = json_is_array(res) ? json_array_size(res) : 0;
    if (r->to_replace)
        for (size_t i = 0; i < r->nbase; i++)
            json_decref(r->to_replace[i]);
    free(r->to_delete);
    free(r->to_replace);
    free(r->mark_delete);
    free(r->mark_pending);
    r->nbase = n;
    r->to_delete = xcalloc(n + 1, sizeof(bool));
    r->to_replace = xcalloc(n + 1, sizeof(json_t *));
    r->mark_delete = xcalloc(n + 1, sizeof(bool));
    r->mark_pending = xcalloc(n + 1, sizeof(bool));
}

static void reset_maps(Replay *r)
{
    json_decref(r->news);
    json_decref(r->op_index);
    json_decref(r->to_remove);
    json_decref(r->incomplete);
    json_decref(r->extensions);
    r->news = json_array();
    r->op_index = json_object();
    r->to_remove = json_object();
    r->incomplete = json_object();
    r->extensions = json_object();
    reset_base_arrays(r);
}

static void replay_free(Replay *r)
{
    if (r->to_replace)
        for (size_t i = 0; i < r->nbase; i++)
            json_decref(r->to_replace[i]);
    free(r->to_delete);
    free(r->to_replace);
    free(r->mark_delete);
    free(r->mark_pending);
    json_decref(r->base);
    json_decref(r->news);
    json_decref(r->op_index);
    json_decref(r->to_remove);
    json_decref(r->incomplete);
    json_decref(r->extensions);
}

static void opkey(json_int_t id, char buf[32])
{
    snprintf(buf, 32, "%lld", (long long)id);
}

/* A base index from member name of e, if present (non-null). */
static bool base_index(Replay *r, json_t *e, const char *name, bool *present, size_t *idx, char *err, size_t errlen)
{
    json_t *v = json_object_get(e, name);
    *present = v && !json_is_null(v);
    if (!*present)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (size_t)json_integer_value(v) >= r->nbase) {
        set_err(err, errlen, "journal entry refers to base resource %lld, which does not exist",
                json_is_integer(v) ? (long long)json_integer_value(v) : -1);
        return false;
    }
    *idx = (size_t)json_integer_value(v);
    return true;
}

/* The index in news of the operation named by member name of e, if present. */
static bool new_index(Replay *r, json_t *e, const char *name, bool *present, json_int_t *op, size_t *idx, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(e, name);
    *present = v && !json_is_null(v);
    if (!*present)
        return true;
    char key[32];
    if (!json_is_integer(v))
        goto bad;
    *op = json_integer_value(v);
    opkey(*op, key);
    json_t *i = json_object_get(r->op_index, key);
    if (!json_is_integer(i))
        goto bad;
    *idx = (size_t)json_integer_value(i);
    return true;
bad:
    set_err(err, errlen, "journal entry refers to operation %lld, which created no resource",
            json_is_integer(v) ? (long long)json_integer_value(v) : -1);
    return false;
}

static void set_flag(json_t *arr, size_t idx, const char *flag)
{
    json_t *res = json_array_get(arr, idx);
    if (json_is_object(res))
        json_object_set_new(res, flag, json_true());
}

/* An entry's (old, new) pair naming a resource to flag: a base index recorded in marks (applied
 * when the deployment is generated), or an earlier operation's new resource flagged now. */
static bool mark_pair(Replay *r, json_t *e, const char *old_key, const char *new_key, bool *marks, const char *flag,
                      char *err, size_t errlen)
{
    bool p_old, p_new;
    size_t i_old = 0, i_new = 0;
    json_int_t op = 0;
    if (!base_index(r, e, old_key, &p_old, &i_old, err, errlen) ||
        !new_index(r, e, new_key, &p_new, &op, &i_new, err, errlen))
        return false;
    if (p_old)
        marks[i_old] = true;
    if (p_new)
        set_flag(r->news, i_new, flag);
    return true;
}

static json_t *generate(Replay *r, const char *server_version, char *err, size_t errlen);

static bool apply(Replay *r, json_t *e, const char *server_version, char *err, size_t errlen)
{
    json_int_t kind = json_integer_value(json_object_get(e, "kind"));
    json_int_t op = json_integer_value(json_object_get(e, "operationID"));
    char key[32];
    opkey(op, key);
    json_t *state = json_object_get(e, "state");
    if (json_is_null(state))
        state = NULL;
    bool p_old, p_new;
    size_t i_old = 0, i_new = 0;
    json_int_t x = 0;
    if (json_is_true(json_object_get(e, "requiresByteString")))
        r->byte_string = true;
    switch (kind) {
    case 0: /* Begin */
        json_object_set(r->incomplete, key, e);
        return true;
    case 1: /* Success */
        json_object_del(r->incomplete, key);
        if (state) {
            json_array_append_new(r->news, json_deep_copy(state));
            json_object_set_new(r->op_index, key, json_integer((json_int_t)json_array_size(r->news) - 1));
        }
        if (!base_index(r, e, "removeOld", &p_old, &i_old, err, errlen))
            return false;
        if (p_old)
            r->to_delete[i_old] = true;
        {
            json_t *rn = json_object_get(e, "removeNew");
            if (json_is_integer(rn)) {
                opkey(json_integer_value(rn), key);
                json_object_set_new(r->to_remove, key, json_true());
                opkey(op, key);
            }
        }
        if (!mark_pair(r, e, "deleteOld", "deleteNew", r->mark_delete, "delete", err, errlen) ||
            !mark_pair(r, e, "pendingReplacementOld", "pendingReplacementNew", r->mark_pending, "pendingReplacement",
                       err, errlen))
            return false;
        if (json_is_true(json_object_get(e, "isRefresh")))
            r->has_refresh = true;
        return true;
    case 2: /* Failure */
        json_object_del(r->incomplete, key);
        return true;
    case 3: /* RefreshSuccess */
        json_object_del(r->incomplete, key);
        r->has_refresh = true;
        if (!base_index(r, e, "removeOld", &p_old, &i_old, err, errlen))
            return false;
        if (p_old) {
            if (!state)
                r->to_delete[i_old] = true;
            else {
                json_decref(r->to_replace[i_old]);
                r->to_replace[i_old] = json_deep_copy(state);
            }
        }
        {
            json_t *rn = json_object_get(e, "removeNew");
            if (json_is_integer(rn) && !state) {
                opkey(json_integer_value(rn), key);
                json_object_set_new(r->to_remove, key, json_true());
            } else if (json_is_integer(rn)) {
                if (!new_index(r, e, "removeNew", &p_new, &x, &i_new, err, errlen))
                    return false;
                json_array_set_new(r->news, i_new, json_deep_copy(state));
            }
        }
        return true;
    case 4: /* Outputs */
        if (!state)
            return true;
        if (!base_index(r, e, "removeOld", &p_old, &i_old, err, errlen))
            return false;
        if (p_old) {
            json_decref(r->to_replace[i_old]);
            r->to_replace[i_old] = json_deep_copy(state);
        }
        if (!new_index(r, e, "removeNew", &p_new, &x, &i_new, err, errlen))
            return false;
        if (p_new)
            json_array_set_new(r->news, i_new, json_deep_copy(state));
        return true;
    case 5: { /* Write */
        json_t *snap = json_object_get(e, "newSnapshot");
        if (!json_is_object(snap)) {
            set_err(err, errlen, "Write entry %lld has no newSnapshot", (long long)json_integer_value(json_object_get(e, "sequenceID")));
            return false;
        }
        json_decref(r->base);
        r->base = json_deep_copy(snap);
        reset_base_arrays(r);
        return true;
    }
    case 6: { /* SecretsManager */
        json_t *sp = json_object_get(e, "secretsProvider");
        if (!json_is_object(sp))
            return true;
        json_t *cur = json_object_get(r->base, "secrets_providers");
        if (!cur || !json_equal(cur, sp))
            json_object_set(r->base, "secrets_providers", sp);
        return true;
    }
    case 7: { /* RebuiltBaseState */
        json_t *untyped = generate(r, server_version, err, errlen);
        if (!untyped)
            return false;
        json_decref(r->base);
        r->base = json_incref(json_object_get(untyped, "deployment"));
        json_decref(untyped);
        reset_maps(r);
        return true;
    }
    case 8: { /* ExtensionParameterize */
        const char *ref = json_string_value(json_object_get(e, "extensionRef"));
        json_t *ext = json_object_get(e, "extension");
        if (ref && ext)
            json_object_set(r->extensions, ref, ext);
        return true;
    }
    case 9: { /* Snippets */
        json_t *sn = json_object_get(e, "snippets");
        if (sn && !json_is_null(sn))
            json_object_set(r->base, "snippets", sn);
        else
            json_object_del(r->base, "snippets");
        return true;
    }
    default:
        set_err(err, errlen, "unknown journal entry kind %lld", (long long)kind);
        return false;
    }
}

/* Keep only the URNs of list seen so far; returns a new array. */
static json_t *filter_seen(json_t *list, json_t *seen)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (json_is_string(v) && json_object_get(seen, json_string_value(v)))
            json_array_append(out, v);
    }
    return out;
}

/* Replace a non-empty URN list member by its seen part (dropping it when nothing is left). */
static void filter_member(json_t *res, const char *key, json_t *seen)
{
    json_t *list = json_object_get(res, key);
    if (!json_is_array(list) || !json_array_size(list))
        return;
    json_t *f = filter_seen(list, seen);
    if (json_array_size(f))
        json_object_set_new(res, key, f);
    else {
        json_decref(f);
        json_object_del(res, key);
    }
}

/* After a refresh deleted resources, drop references to anything not earlier in the list
 * (resources are in dependency order): dependencies, property dependencies, replaceWith,
 * deletedWith; a dangling parent becomes its nearest surviving ancestor, or none. */
static void rebuild_dependencies(json_t *resources)
{
    json_t *parents = json_object();  /* urn -> parent, for every resource */
    json_t *seen = json_object();
    size_t i;
    json_t *res;
    json_array_foreach(resources, i, res) {
        const char *urn = json_string_value(json_object_get(res, "urn"));
        const char *parent = json_string_value(json_object_get(res, "parent"));
        if (urn)
            json_object_set_new(parents, urn, json_string(parent ? parent : ""));
    }
    json_array_foreach(resources, i, res) {
        filter_member(res, "dependencies", seen);
        filter_member(res, "replaceWith", seen);
        json_t *pdeps = json_object_get(res, "propertyDependencies");
        if (json_is_object(pdeps) && json_object_size(pdeps)) {
            json_t *fresh = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(pdeps, k, v) {
                json_t *f = filter_seen(v, seen);
                if (json_array_size(f))
                    json_object_set_new(fresh, k, f);
                else
                    json_decref(f);
            }
            if (json_object_size(fresh))
                json_object_set_new(res, "propertyDependencies", fresh);
            else {
                json_decref(fresh);
                json_object_del(res, "propertyDependencies");
            }
        }
        const char *dw = json_string_value(json_object_get(res, "deletedWith"));
        if (dw && !json_object_get(seen, dw))
            json_object_del(res, "deletedWith");
        const char *parent = json_string_value(json_object_get(res, "parent"));
        if (parent && *parent && !json_object_get(seen, parent)) {
            const char *up = parent;
            int guard = 0;
            while (up && *up && !json_object_get(seen, up) && guard++ < 1000)
                up = json_string_value(json_object_get(parents, up));
            if (up && *up && json_object_get(seen, up))
                json_object_set_new(res, "parent", json_string(up));
            else
                json_object_del(res, "parent");
        }
        const char *urn = json_string_value(json_object_get(res, "urn"));
        if (urn)
            json_object_set_new(seen, urn, json_true());
    }
    json_decref(seen);
    json_decref(parents);
}

static void apply_features(json_t *res, json_t *features)
{
    if (!json_is_object(res))
        return;
    if (json_is_true(json_object_get(res, "refreshBeforeUpdate")))
        json_object_set_new(features, "refreshBeforeUpdate", json_true());
    const char *v = json_string_value(json_object_get(res, "viewOf"));
    if (v && *v)
        json_object_set_new(features, "views", json_true());
    json_t *h = json_object_get(res, "resourceHooks");
    if ((json_is_object(h) && json_object_size(h)) || (json_is_array(h) && json_array_size(h)))
        json_object_set_new(features, "hooks", json_true());
    if (json_is_true(json_object_get(res, "taint")))
        json_object_set_new(features, "taint", json_true());
    json_t *rw = json_object_get(res, "replaceWith");
    if (json_is_array(rw) && json_array_size(rw))
        json_object_set_new(features, "replaceWith", json_true());
    const char *er = json_string_value(json_object_get(res, "extensionRef"));
    if (er && *er)
        json_object_set_new(features, "extensionParameterization", json_true());
    const char *sn = json_string_value(json_object_get(res, "snippetID"));
    if (sn && *sn)
        json_object_set_new(features, "snippets-prototype", json_true());
}

/* Rewrite string member key of obj through the alias map. */
static void alias_member(json_t *obj, const char *key, json_t *aliases)
{
    const char *v = json_string_value(json_object_get(obj, key));
    json_t *to = v ? json_object_get(aliases, v) : NULL;
    if (to)
        json_object_set(obj, key, to);
}

static void alias_array(json_t *arr, json_t *aliases)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        json_t *to = json_is_string(v) ? json_object_get(aliases, json_string_value(v)) : NULL;
        if (to)
            json_array_set(arr, i, to);
    }
}

static void alias_resource(json_t *res, json_t *aliases)
{
    if (!json_is_object(res))
        return;
    alias_member(res, "urn", aliases);
    alias_member(res, "parent", aliases);
    alias_member(res, "deletedWith", aliases);
    alias_member(res, "viewOf", aliases);
    alias_array(json_object_get(res, "dependencies"), aliases);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(res, "propertyDependencies"), k, v) alias_array(v, aliases);
    const char *prov = json_string_value(json_object_get(res, "provider"));
    if (prov) {
        const char *sep = NULL;
        for (const char *p = strstr(prov, "::"); p; p = strstr(p + 1, "::"))
            sep = p;
        if (sep) {
            char *urn = xstrndup(prov, (size_t)(sep - prov));
            json_t *to = json_object_get(aliases, urn);
            if (to) {
                char *full = xasprintf("%s%s", json_string_value(to), sep);
                json_object_set_new(res, "provider", json_string(full));
                free(full);
            }
            free(urn);
        }
    }
    json_object_del(res, "aliases");
}

/* NormalizeURNReferences: references through aliases point at the current URNs; aliases go. */
static bool normalise_urns(json_t *resources, json_t *pending, char *err, size_t errlen)
{
    json_t *aliases = json_object();
    size_t i, j;
    json_t *res, *a;
    json_array_foreach(resources, i, res) {
        const char *urn = json_string_value(json_object_get(res, "urn"));
        json_array_foreach(json_object_get(res, "aliases"), j, a) {
            const char *al = json_string_value(a);
            if (!al || !urn)
                continue;
            const char *prev = json_string_value(json_object_get(aliases, al));
            if (prev && strcmp(prev, urn) != 0) {
                set_err(err, errlen, "an alias names two resources (resource %lld)", (long long)i);
                json_decref(aliases);
                return false;
            }
            json_object_set_new(aliases, al, json_string(urn));
        }
    }
    bool any = json_object_size(aliases) > 0;
    json_array_foreach(resources, i, res) {
        if (any)
            alias_resource(res, aliases);
        else
            json_object_del(res, "aliases");
    }
    json_array_foreach(pending, i, res) {
        json_t *r = json_object_get(res, "resource");
        if (any)
            alias_resource(r, aliases);
        else if (json_is_object(r))
            json_object_del(r, "aliases");
    }
    json_decref(aliases);
    return true;
}

static json_t *generate(Replay *r, const char *server_version, char *err, size_t errlen)
{
    json_t *features = json_object();
    json_t *resources = json_array();
    /* New resources, less those a later step removed. */
    size_t nnew = json_array_size(r->news);
    bool *removed = xcalloc(nnew + 1, sizeof(bool));
    const char *k;
    json_t *v;
    json_object_foreach(r->to_remove, k, v) {
        json_t *idx = json_object_get(r->op_index, k);
        if (json_is_integer(idx) && (size_t)json_integer_value(idx) < nnew)
            removed[json_integer_value(idx)] = true;
    }
    for (size_t i = 0; i < nnew; i++) {
        if (removed[i])
            continue;
        json_t *res = json_deep_copy(json_array_get(r->news, i));
        apply_features(res, features);
        json_array_append_new(resources, res);
    }
    free(removed);
    /* Then what the base had that this update did not produce. */
    json_t *base_res = json_object_get(r->base, "resources");
    for (size_t i = 0; i < r->nbase; i++) {
        if (r->to_delete[i])
            continue;
        json_t *res;
        if (r->to_replace[i]) {
            res = json_deep_copy(r->to_replace[i]);
        } else {
            res = json_deep_copy(json_array_get(base_res, i));
            if (r->mark_pending[i])
                json_object_set_new(res, "pendingReplacement", json_true());
            if (r->mark_delete[i])
                json_object_set_new(res, "delete", json_true());
        }
        apply_features(res, features);
        json_array_append_new(resources, res);
    }
    /* Pending operations: what began and never ended, and the base's pending creates. */
    json_t *pending = json_array();
    json_object_foreach(r->incomplete, k, v) {
        json_t *op = json_object_get(v, "operation");
        if (json_is_object(op)) {
            json_array_append_new(pending, json_deep_copy(op));
            apply_features(json_object_get(op, "resource"), features);
        }
    }
    size_t i;
    json_array_foreach(json_object_get(r->base, "pending_operations"), i, v) {
        const char *type = json_string_value(json_object_get(v, "type"));
        if (type && !strcmp(type, "creating")) {
            json_array_append_new(pending, json_deep_copy(v));
            apply_features(json_object_get(v, "resource"), features);
        }
    }
    if (r->has_refresh)
        rebuild_dependencies(resources);
    if (!normalise_urns(resources, pending, err, errlen)) {
        json_decref(features);
        json_decref(resources);
        json_decref(pending);
        return NULL;
    }
    /* The manifest, as the CLI writes it: now, our version, its magic; no plugins. */
    char when[64], magic[65] = "";
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t wl = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wl, sizeof(when) - wl, ".%09ldZ", ts.tv_nsec);
    if (*server_version)
        sha256_hex(server_version, strlen(server_version), magic);
    json_t *dep = json_object();
    json_object_set_new(dep, "manifest", json_pack("{s:s, s:s, s:s}", "time", when, "magic", magic, "version",
                                                   server_version));
    json_t *sp = json_object_get(r->base, "secrets_providers");
    if (json_is_object(sp))
        json_object_set(dep, "secrets_providers", sp);
    if (json_array_size(resources))
        json_object_set(dep, "resources", resources);
    if (json_array_size(pending))
        json_object_set(dep, "pending_operations", pending);
    json_t *meta = json_object_get(r->base, "metadata");
    json_object_set_new(dep, "metadata", json_is_object(meta) ? json_deep_copy(meta) : json_object());
    json_t *snippets = json_object_get(r->base, "snippets");
    if (json_is_array(snippets) && json_array_size(snippets)) {
        json_object_set(dep, "snippets", snippets);
        json_object_set_new(features, "snippets-prototype", json_true());
    }
    json_t *ext = json_object_get(r->base, "extensions");
    json_t *merged = json_is_object(ext) ? json_deep_copy(ext) : json_object();
    json_object_update_missing(merged, r->extensions);
    if (json_object_size(merged))
        json_object_set(dep, "extensions", merged);
    json_decref(merged);
    if (r->byte_string)
        json_object_set_new(features, "byteString", json_true());
    json_decref(resources);
    json_decref(pending);
    /* Sorted feature names; version 4 when there are any. */
    json_t *out = json_object();
    size_t nf = json_object_size(features);
    json_object_set_new(out, "version", json_integer(nf ? 4 : 3));
    if (nf) {
        const char **names = xcalloc(nf, sizeof(char *));
        size_t n = 0;
        json_object_foreach(features, k, v) names[n++] = k;
        for (size_t a = 1; a < n; a++)
            for (size_t b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
                const char *t = names[b];
                names[b] = names[b - 1];
                names[b - 1] = t;
            }
        json_t *fa = json_array();
        for (size_t a = 0; a < n; a++)
            json_array_append_new(fa, json_string(names[a]));
        json_object_set_new(out, "features", fa);
        free(names);
    }
    json_object_set_new(out, "deployment", dep);
    json_decref(features);
    return out;
}

static int entry_cmp(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "sequenceID"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "sequenceID"));
    return x < y ? -1 : x > y;
}

json_t *journal_replay(json_t *base, json_t *entries, const char *server_version, char *err, size_t errlen)
{
    if (!json_is_array(entries)) {
        set_err(err, errlen, "journal entries must be an array");
        return NULL;
    }
    size_t n = json_array_size(entries);
    json_t **sorted = xcalloc(n + 1, sizeof(json_t *));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i);
        if (!json_is_object(e) || !json_is_integer(json_object_get(e, "sequenceID")) ||
            !json_is_integer(json_object_get(e, "kind"))) {
            set_err(err, errlen, "journal entry %lld needs sequenceID and kind", (long long)i);
            free(sorted);
            return NULL;
        }
        sorted[i] = e;
    }
    qsort(sorted, n, sizeof(json_t *), entry_cmp);
    Replay r;
    memset(&r, 0, sizeof(r));
    r.base = json_is_object(base) ? json_deep_copy(base) : json_object();
    reset_maps(&r);
    json_t *out = NULL;
    json_int_t last = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        json_int_t seq = json_integer_value(json_object_get(sorted[i], "sequenceID"));
        if (i > 0 && seq == last)
            continue; /* a retried batch: the first copy counts */
        last = seq;
        ok = apply(&r, sorted[i], server_version, err, errlen);
    }
    if (ok)
        out = generate(&r, server_version, err, errlen);
    replay_free(&r);
    free(sorted);
    return out;
}
