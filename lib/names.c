/* names.c - the character rules for names the CLI sends in paths and bodies. */
#include "names.h"

#include <stdio.h>

#include <ctype.h>
#include <string.h>

static bool all_chars(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return false;
    return true;
}

bool name_valid_org(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 40)
        return false;
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    return all_chars(s, "-_");
}

static bool valid_simple(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 100)
        return false;
    if (!strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    return all_chars(s, "-_.");
}

bool name_valid_project(const char *s)
{
    return valid_simple(s);
}

bool name_valid_stack(const char *s)
{
    return valid_simple(s);
}

bool name_valid_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

bool name_valid_tag(const char *name, const char *value)
{
    size_t n = strlen(name);
    if (n < 1 || n > 40 || !all_chars(name, "-_.:/"))
        return false;
    return value && strlen(value) <= 256;
}

bool names_tags_valid(json_t *tags, char *why, size_t whylen)
{
    if (!json_is_object(tags)) {
        snprintf(why, whylen, "tags must be an object of strings");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(tags, k, v)
    {
        if (!json_is_string(v) || !name_valid_tag(k, json_string_value(v))) {
            snprintf(why, whylen, "invalid tag '%.60s'", k);
            return false;
        }
    }
    return true;
}
