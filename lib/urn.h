/* urn.h - rewrite a stored state for a stack rename: URNs and the service secrets state. */
#ifndef PS_URN_H
#define PS_URN_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

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
