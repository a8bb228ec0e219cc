/* urn.c - stack rename: URN rewriting as the CLI's own RenameStack does it, plus secrets state.
 *
 * The rewrite works on the stored text, never on a tree: every byte it does not rename (numbers of
 * any length, string escapes, key order) stays as it was. It renames what the CLI's RenameStack
 * (pkg/resource/edit) renames, in resources and pending operations' resources: urn, parent,
 * dependencies, propertyDependencies, deletedWith, replaceWith, aliases, viewOf, the provider
 * reference, and resource references (and output values' dependencies) inside inputs, outputs and
 * replacementTrigger; only URNs of the old stack and project. Secret plaintexts are not re-encoded
 * (in a service-backed state secrets are ciphertext, which RenameStack leaves alone too).
 */
#include "urn.h"

#include <stdlib.h>
#include <string.h>

#include "jspan.h"
#include "util.h"

#define SIG_KEY "4dabf18193072939515e22adb298388d"
#define SIG_RESOURCE_REF "5cf8f73096256a8f31e491e813e4eb8e"
#define SIG_OUTPUT_VALUE "d0e6a833031e9bbcd3f4e8bde6ca49a4"
#define SIG_SECRET "1b47061264138c4ac30d75fd1eb44270"

/* ---- parsing ---- */

/* Component index of "::"-separated s (urn.getComponentN); open: everything from it on. */
void urn_component(const char *s, int index, bool open, const char **start, size_t *len)
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

bool urn_has_prefix(const char *urn)
{
    return strncmp(urn, URN_PREFIX, strlen(URN_PREFIX)) == 0;
}

/* The qualified type of a URN with the standard prefix, as a new string. */
char *urn_qualified_type(const char *urn)
{
    const char *p;
    size_t len;
    urn_component(urn + strlen(URN_PREFIX), 2, false, &p, &len);
    return xstrndup(p, len);
}

/* NewURN(child.Stack(), child.Project(), parentType, child.Type(), child.Name()). */
char *urn_reparent(const char *child, const char *parent_type)
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

const char *urn_provider_sep(const char *ref)
{
    const char *sep = NULL;
    for (const char *p = strstr(ref, "::"); p; p = strstr(p + 1, "::"))
        sep = p;
    return sep;
}

/* How many "::" separators s has (non-overlapping, as urn_component counts them). */
static int separators(const char *s)
{
    int n = 0;
    for (const char *p = strstr(s, "::"); p; p = strstr(p + 2, "::"))
        n++;
    return n;
}

bool urn_parse(const char *urn, UrnParts *out)
{
    if (!urn_has_prefix(urn) || separators(urn + strlen(URN_PREFIX)) < 3)
        return false;
    const char *body = urn + strlen(URN_PREFIX);
    urn_component(body, 0, false, &out->stack, &out->stack_len);
    urn_component(body, 1, false, &out->project, &out->project_len);
    urn_component(body, 2, false, &out->type, &out->type_len);
    urn_component(body, 3, true, &out->name, &out->name_len);
    return true;
}

static bool part_is(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && strncmp(p, s, n) == 0;
}

char *urn_rename(const char *urn, const char *old_stack, const char *old_project, const char *new_stack,
                 const char *new_project)
{
    UrnParts u;
    if (!urn_parse(urn, &u))
        return NULL;
    if ((old_stack && !part_is(u.stack, u.stack_len, old_stack)) ||
        (old_project && !part_is(u.project, u.project_len, old_project)))
        return NULL;
    int tlen = (int)u.type_len;
    const char *proj = new_project;
    int projlen = (int)strlen(new_project);
    if (!*new_project) {
        proj = u.project;
        projlen = (int)u.project_len;
    }
    if (part_is(u.type, u.type_len, ROOT_STACK_TYPE))
        return xasprintf(URN_PREFIX "%s::%.*s::%.*s::%.*s-%s", new_stack, projlen, proj, tlen, u.type, projlen, proj,
                         new_stack);
    return xasprintf(URN_PREFIX "%s::%.*s::%.*s::%s", new_stack, projlen, proj, tlen, u.type, u.name);
}

/* ---- the text rewrite ---- */

typedef struct Edit {
    size_t off, len; /* the span replaced, in the document */
    char *text;      /* its replacement (owned) */
} Edit;

typedef struct Renamer {
    const char *doc;
    const char *old_stack, *old_project, *new_stack, *new_project;
    Edit *edits;
    size_t n, cap;
    bool bad_provider;
} Renamer;

static void add_edit(Renamer *r, const char *at, size_t len, char *text)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 32;
        r->edits = xrealloc(r->edits, r->cap * sizeof(Edit));
    }
    r->edits[r->n++] = (Edit){(size_t)(at - r->doc), len, text};
}

/* s as a JSON string, escaped the way Go's encoder escapes. new. */
static char *string_json(const char *s)
{
    Buf b;
    buf_init(&b);
    buf_puts(&b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_printf(&b, "\\%c", *p);
        } else if (*p == '\n') {
            buf_puts(&b, "\\n");
        } else if (*p == '\r') {
            buf_puts(&b, "\\r");
        } else if (*p == '\t') {
            buf_puts(&b, "\\t");
        } else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
            buf_printf(&b, "\\u%04x", *p);
        } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            buf_printf(&b, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
            p += 2;
        } else {
            buf_append(&b, p, 1);
        }
    }
    buf_puts(&b, "\"");
    return buf_steal(&b, NULL);
}

/* Rename the URN string at v (a string span) if it is one of the old stack's. */
static void rename_string(Renamer *r, const char *v, size_t len)
{
    if (len < 2 || v[0] != '"')
        return;
    char *s = jspan_string_value(v, len);
    char *n = s ? urn_rename(s, r->old_stack, r->old_project, r->new_stack, r->new_project) : NULL;
    if (n)
        add_edit(r, v, len, string_json(n));
    free(n);
    free(s);
}

static void rename_strings(Renamer *r, const char *v, size_t len)
{
    size_t pos = 0, a, z;
    if (len == 0 || v[0] != '[')
        return;
    while (jspan_array_next(v, len, &pos, &a, &z))
        rename_string(r, v + a, z - a);
}

/* "<urn>::<id>": the id follows the last "::". */
static void rename_provider(Renamer *r, const char *v, size_t len)
{
    if (len < 2 || v[0] != '"')
        return;
    char *s = jspan_string_value(v, len);
    if (!s || !*s) {
        free(s);
        return;
    }
    const char *sep = urn_provider_sep(s);
    char *urn = sep ? xstrndup(s, (size_t)(sep - s)) : NULL;
    if (!urn || !urn_has_prefix(urn) || !strstr(urn + strlen(URN_PREFIX), "::")) {
        r->bad_provider = true;
    } else {
        char *n = urn_rename(urn, r->old_stack, r->old_project, r->new_stack, r->new_project);
        if (n) {
            char *full = xasprintf("%s%s", n, sep);
            add_edit(r, v, len, string_json(full));
            free(full);
        }
        free(n);
    }
    free(urn);
    free(s);
}

static bool string_is(const char *v, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n + 2 && v[0] == '"' && memcmp(v + 1, lit, n) == 0;
}

/* A property value: resource references renamed, output values' dependencies too; recursively. */
static void rename_property(Renamer *r, const char *v, size_t len, int depth)
{
    size_t pos = 0, ks, ke, a, z;
    if (len == 0 || depth > JSPAN_MAX_DEPTH)
        return;
    if (v[0] == '[') {
        while (jspan_array_next(v, len, &pos, &a, &z))
            rename_property(r, v + a, z - a, depth + 1);
        return;
    }
    if (v[0] != '{')
        return;
    if (jspan_member(v, len, SIG_KEY, &a, &z)) {
        const char *sig = v + a;
        size_t slen = z - a;
        if (string_is(sig, slen, SIG_RESOURCE_REF)) {
            if (jspan_member(v, len, "urn", &a, &z))
                rename_string(r, v + a, z - a);
            return;
        }
        if (string_is(sig, slen, SIG_SECRET))
            return;
        if (string_is(sig, slen, SIG_OUTPUT_VALUE)) {
            if (jspan_member(v, len, "value", &a, &z))
                rename_property(r, v + a, z - a, depth + 1);
            if (jspan_member(v, len, "dependencies", &a, &z))
                rename_strings(r, v + a, z - a);
            return;
        }
    }
    while (jspan_object_next(v, len, &pos, &ks, &ke, &a, &z))
        rename_property(r, v + a, z - a, depth + 1);
}

static bool key_is(const char *k, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

static void rename_resource(Renamer *r, const char *v, size_t len)
{
    size_t pos = 0, ks, ke, a, z;
    if (len == 0 || v[0] != '{')
        return;
    while (jspan_object_next(v, len, &pos, &ks, &ke, &a, &z)) {
        const char *k = v + ks, *val = v + a;
        size_t kl = ke - ks, vl = z - a;
        if (key_is(k, kl, "urn") || key_is(k, kl, "parent") || key_is(k, kl, "deletedWith") ||
            key_is(k, kl, "viewOf")) {
            rename_string(r, val, vl);
        } else if (key_is(k, kl, "dependencies") || key_is(k, kl, "replaceWith") || key_is(k, kl, "aliases")) {
            rename_strings(r, val, vl);
        } else if (key_is(k, kl, "propertyDependencies") && val[0] == '{') {
            size_t p2 = 0, k2s, k2e, b, y;
            while (jspan_object_next(val, vl, &p2, &k2s, &k2e, &b, &y))
                rename_strings(r, val + b, y - b);
        } else if (key_is(k, kl, "provider")) {
            rename_provider(r, val, vl);
        } else if (key_is(k, kl, "inputs") || key_is(k, kl, "outputs") || key_is(k, kl, "replacementTrigger")) {
            rename_property(r, val, vl, 0);
        }
    }
}

/* secrets_providers.state.{owner,project,stack} of a "service" provider: replaced, or added. */
static void rename_secrets(Renamer *r, const char *sp, size_t len, const char *new_org)
{
    size_t a, z, ss, se;
    if (len == 0 || sp[0] != '{' || !jspan_member(sp, len, "type", &a, &z) || !string_is(sp + a, z - a, "service") ||
        !jspan_member(sp, len, "state", &ss, &se) || sp[ss] != '{')
        return;
    const char *st = sp + ss;
    size_t stlen = se - ss;
    const char *keys[] = {"owner", "project", "stack"};
    const char *vals[] = {new_org, *r->new_project ? r->new_project : r->old_project, r->new_stack};
    Buf added;
    buf_init(&added);
    size_t p0 = 0, k1, k2, v1, v2;
    bool empty = !jspan_object_next(st, stlen, &p0, &k1, &k2, &v1, &v2);
    for (int i = 0; i < 3; i++) {
        char *js = string_json(vals[i]);
        if (jspan_member(st, stlen, keys[i], &a, &z)) {
            add_edit(r, st + a, z - a, js);
        } else {
            buf_printf(&added, "%s\"%s\":%s", empty && !added.len ? "" : ",", keys[i], js);
            free(js);
        }
    }
    if (added.len) {
        /* Before the closing brace of the state object. */
        const char *close = st + stlen - 1;
        add_edit(r, close, 0, buf_steal(&added, NULL));
    }
    buf_free(&added);
}

static int edit_cmp(const void *x, const void *y)
{
    const Edit *a = x, *b = y;
    return a->off < b->off ? -1 : a->off > b->off;
}

UrnResult urn_rename_state(const char *doc, size_t len, const char *old_stack, const char *old_project,
                           const char *new_org, const char *new_stack, const char *new_project, Buf *out)
{
    size_t ds, de, a, z, pos = 0, x, y;
    if (!jspan_validate(doc, len) || !jspan_member(doc, len, "deployment", &ds, &de))
        return URN_BAD_STATE;
    Renamer r = {.doc = doc,
                 .old_stack = old_stack,
                 .old_project = old_project,
                 .new_stack = new_stack,
                 .new_project = new_project};
    const char *dep = doc + ds;
    size_t dlen = de - ds;
    if (dep[0] == '{') {
        if (jspan_member(dep, dlen, "resources", &a, &z) && dep[a] == '[')
            while (jspan_array_next(dep + a, z - a, &pos, &x, &y))
                rename_resource(&r, dep + a + x, y - x);
        pos = 0;
        if (jspan_member(dep, dlen, "pending_operations", &a, &z) && dep[a] == '[') {
            while (jspan_array_next(dep + a, z - a, &pos, &x, &y)) {
                size_t rs, re;
                const char *op = dep + a + x;
                if (op[0] == '{' && jspan_member(op, y - x, "resource", &rs, &re))
                    rename_resource(&r, op + rs, re - rs);
            }
        }
        if (jspan_member(dep, dlen, "secrets_providers", &a, &z))
            rename_secrets(&r, dep + a, z - a, new_org);
    }
    UrnResult result = r.bad_provider ? URN_BAD_PROVIDER : URN_OK;
    if (result == URN_OK) {
        if (r.n)
            qsort(r.edits, r.n, sizeof(Edit), edit_cmp);
        size_t at = 0, total = len;
        for (size_t i = 0; i < r.n; i++)
            total += strlen(r.edits[i].text);
        buf_reserve(out, total);
        for (size_t i = 0; i < r.n; i++) {
            buf_append(out, doc + at, r.edits[i].off - at);
            buf_puts(out, r.edits[i].text);
            at = r.edits[i].off + r.edits[i].len;
        }
        buf_append(out, doc + at, len - at);
    }
    for (size_t i = 0; i < r.n; i++)
        free(r.edits[i].text);
    free(r.edits);
    return result;
}
