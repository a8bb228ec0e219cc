/* urn.h - URNs: the one parser ("urn:pulumi:<stack>::<project>::<qualified type>::<name>"), the
 * helpers replay needs, and the rewrite of a stored state for a stack rename. */
#ifndef PS_URN_H
#define PS_URN_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define URN_PREFIX "urn:pulumi:"
#define ROOT_STACK_TYPE "pulumi:pulumi:Stack"

/* The components of a URN, borrowed spans of it. */
typedef struct UrnParts {
    const char *stack, *project, *type, *name; /* type: the qualified type ("parent$type") */
    size_t stack_len, project_len, type_len, name_len;
} UrnParts;

/* Parse a URN: the prefix and at least three "::" separators (the name is the rest, "::" and all). */
bool urn_parse(const char *urn, UrnParts *out);
/* Component index (0 stack, 1 project, 2 qualified type, 3 name) of the "::"-separated text s after
 * the prefix, as the CLI's urn.getComponentN does, on malformed URNs too; open: from it to the end. */
void urn_component(const char *s, int index, bool open, const char **start, size_t *len);
/* Starts with "urn:pulumi:". */
bool urn_has_prefix(const char *urn);
/* new: the qualified type of a URN with the prefix. */
char *urn_qualified_type(const char *urn);
/* new: NewURN(child.Stack(), child.Project(), parent_type, child.Type(), child.Name()). */
char *urn_reparent(const char *child, const char *parent_type);
/* The last "::" of a provider reference "<urn>::<id>" (the id follows it), or NULL. */
const char *urn_provider_sep(const char *ref);

/* new: urn with its stack and project replaced (and the root Stack resource's name
 * "<project>-<stack>" renamed; new_project "" keeps the project), or NULL if urn is not a
 * well-formed URN or (old_stack/old_project non-NULL) not one of that stack and project. */
char *urn_rename(const char *urn, const char *old_stack, const char *old_project, const char *new_stack,
                 const char *new_project);

typedef enum { URN_OK, URN_BAD_STATE, URN_BAD_PROVIDER } UrnResult;

/* Append to out the state document doc[0..len) ({"version":..,"deployment":..}) renamed from
 * old_stack/old_project to new_stack/new_project (new_org for the service secrets provider's state),
 * as the CLI's RenameStack does it, every other byte unchanged. URN_BAD_PROVIDER when a provider
 * reference does not parse (nothing appended). */
UrnResult urn_rename_state(const char *doc, size_t len, const char *old_stack, const char *old_project,
                           const char *new_org, const char *new_stack, const char *new_project, Buf *out);

#endif
