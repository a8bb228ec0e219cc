/* journal-check.c - the structural checks of a journal entry, made when its batch arrives. */
#include <string.h>

#include "journal.h"
#include "journal-replay.h"
#include "jspan.h"

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
    static const char *const indices[] = {
        "removeOld", "removeNew", "deleteOld", "deleteNew", "pendingReplacementOld", "pendingReplacementNew", NULL};
    static const char *const objects[] = {"state", "operation", "newSnapshot", "secretsProvider", "extension", NULL};
    const char *v = NULL;
    size_t vlen = 0;
    bool present;
    long long n;
    if (len == 0 || e[0] != '{') {
        set_err(why, whylen, "a journal entry must be an object");
        return false;
    }
    if (!jspan_keys_plain_unique(e, len)) {
        set_err(why, whylen, "a journal entry's keys must be unique and written without escapes");
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
