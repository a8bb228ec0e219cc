/* urn.c - stack rename: URN rewriting as the CLI's own RenameStack does it, plus secrets state. */
#include "urn.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define URN_PREFIX "urn:pulumi:"
#define ROOT_STACK_TYPE "pulumi:pulumi:Stack"

char *urn_rename(const char *urn, const char *new_stack, const char *new_project)
{
    size_t pl = strlen(URN_PREFIX);
    if (strncmp(urn, URN_PREFIX, pl) != 0)
        return NULL;
    const char *stack = urn + pl;
    const char *s_end = strstr(stack, "::");
    if (!s_end)
        return NULL;
    const char *project = s_end + 2;
    const char *p_end = strstr(project, "::");
    if (!p_end)
        return NULL;
    const char *type = p_end + 2;
    const char *t_end = strstr(type, "::");
    if (!t_end)
        return NULL;
    const char *name = t_end + 2;
    int tlen = (int)(t_end - type);
    const char *proj = new_project;
    int projlen = (int)strlen(new_project);
    if (!*new_project) {
        proj = project;
        projlen = (int)(p_end - project);
    }
    if (tlen == (int)strlen(ROOT_STACK_TYPE) && strncmp(type, ROOT_STACK_TYPE, (size_t)tlen) == 0)
        return xasprintf(URN_PREFIX "%s::%.*s::%.*s::%.*s-%s", new_stack, projlen, proj, tlen, type, projlen, proj,
                         new_stack);
    return xasprintf(URN_PREFIX "%s::%.*s::%.*s::%s", new_stack, projlen, proj, tlen, type, name);
}

/* Replace the string member key of obj by its renamed URN. */
static bool rename_member(json_t *obj, const char *key, const char *stack, const char *project)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || !*json_string_value(v))
        return true;
    char *n = urn_rename(json_string_value(v), stack, project);
    if (!n)
        return false;
    json_object_set_new(obj, key, json_string(n));
    free(n);
    return true;
}

static bool rename_array(json_t *arr, const char *stack, const char *project)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            continue;
        char *n = urn_rename(json_string_value(v), stack, project);
        if (!n)
            return false;
        json_array_set_new(arr, i, json_string(n));
        free(n);
    }
    return true;
}

/* A provider reference is "<urn>::<id>"; the id follows the last "::". */
static bool rename_provider(json_t *res, const char *stack, const char *project)
{
    json_t *v = json_object_get(res, "provider");
    if (!json_is_string(v) || !*json_string_value(v))
        return true;
    const char *ref = json_string_value(v);
    const char *sep = NULL;
    for (const char *p = strstr(ref, "::"); p; p = strstr(p + 1, "::"))
        sep = p;
    if (!sep)
        return false;
    char *urn = xstrndup(ref, (size_t)(sep - ref));
    char *n = urn_rename(urn, stack, project);
    free(urn);
    if (!n)
        return false;
    char *full = xasprintf("%s%s", n, sep);
    json_object_set_new(res, "provider", json_string(full));
    free(full);
    free(n);
    return true;
}

static bool rename_resource(json_t *res, const char *stack, const char *project)
{
    if (!json_is_object(res))
        return true;
    if (!rename_member(res, "urn", stack, project) || !rename_member(res, "parent", stack, project) ||
        !rename_member(res, "deletedWith", stack, project) || !rename_provider(res, stack, project))
        return false;
    json_t *deps = json_object_get(res, "dependencies");
    if (json_is_array(deps) && !rename_array(deps, stack, project))
        return false;
    json_t *pdeps = json_object_get(res, "propertyDependencies");
    const char *k;
    json_t *v;
    json_object_foreach(pdeps, k, v) {
        if (json_is_array(v) && !rename_array(v, stack, project))
            return false;
    }
    return true;
}

bool urn_rename_deployment(json_t *deployment, const char *new_org, const char *new_stack,
                           const char *new_project)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(deployment, "resources"), i, v) {
        if (!rename_resource(v, new_stack, new_project))
            return false;
    }
    json_array_foreach(json_object_get(deployment, "pending_operations"), i, v) {
        if (!rename_resource(json_object_get(v, "resource"), new_stack, new_project))
            return false;
    }
    json_t *sp = json_object_get(deployment, "secrets_providers");
    const char *type = json_string_value(json_object_get(sp, "type"));
    json_t *state = json_object_get(sp, "state");
    if (type && !strcmp(type, "service") && json_is_object(state)) {
        json_object_set_new(state, "owner", json_string(new_org));
        json_object_set_new(state, "project", json_string(new_project));
        json_object_set_new(state, "stack", json_string(new_stack));
    }
    return true;
}
