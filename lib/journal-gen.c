/* journal-gen.c - GenerateDeployment: the deployment a replay produces (resource order, pending
 * operations, rebuilt dependencies after a refresh, URN references normalised through aliases,
 * features, the manifest), as pkg/backend/journal.go and apitype's NormalizeURNReferences do it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "journal-replay.h"
#include "urn.h"
#include "util.h"

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
    json_array_foreach(list, i, v)
    {
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
    json_array_foreach(list, i, v)
    {
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
    json_object_foreach(pd, k, v)
    {
        if (!json_is_array(v) || !json_array_size(v) || !all_seen(v, seen)) {
            changed = true;
            break;
        }
    }
    if (!changed)
        return;
    json_t *fresh = json_object();
    json_object_foreach(pd, k, v)
    {
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
    json_array_foreach(list, i, v)
    {
        json_t *to = alias_of(aliased, v);
        if (to && !json_equal(to, v)) {
            out = json_copy(list);
            break;
        }
    }
    if (!out)
        return NULL;
    json_array_foreach(out, i, v)
    {
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
    const char *sep = urn_provider_sep(prov);
    if (!sep)
        return;
    char *urn = xstrndup(prov, (size_t)(sep - prov));
    const char *id = sep + 2;
    UrnParts parts;
    if (urn_parse(urn, &parts)) {
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
        json_array_foreach(member_of_type(res, "aliases", JSON_ARRAY), j, a)
        {
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
        if (np && *np && urn_has_prefix(np) && urn_has_prefix(urn)) {
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
            json_object_foreach(pd, k, v)
            {
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
        json_array_foreach(g->snippets, i, sn)
        {
            const char *k;
            json_t *v;
            json_object_foreach(member_of_type(sn, "references", JSON_OBJECT), k, v)
            {
                json_t *to = alias_of(aliased, v);
                if (to && !json_equal(to, v)) {
                    copy = json_deep_copy(g->snippets);
                    break;
                }
            }
            if (copy)
                break;
        }
        json_array_foreach(copy, i, sn)
        {
            const char *k;
            json_t *v;
            json_t *refs = member_of_type(sn, "references", JSON_OBJECT);
            json_object_foreach(refs, k, v)
            {
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

/* GenerateDeployment (declared in journal-replay.h). */
json_t *journal_generate(Replay *r, json_t **features, char *err, size_t errlen)
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
    json_array_foreach(r->base.pending, i, op)
    {
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
