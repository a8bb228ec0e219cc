/* urn.h - rewrite a stored deployment for a stack rename: URNs and the service secrets state. */
#ifndef PS_URN_H
#define PS_URN_H

#include <jansson.h>
#include <stdbool.h>

/* new: urn with its stack and project replaced (and the root Stack resource's name
 * "<project>-<stack>" renamed), or NULL if urn is not a well-formed URN. */
char *urn_rename(const char *urn, const char *new_stack, const char *new_project);

/* Rewrite, in place, a deployment object (the "deployment" member): every resource's and pending
 * operation resource's urn, parent, dependencies, propertyDependencies, deletedWith and provider
 * reference; and secrets_providers.state.{owner,project,stack} when its type is "service".
 * Returns false if a URN is malformed. */
bool urn_rename_deployment(json_t *deployment, const char *new_org, const char *new_stack,
                           const char *new_project);

#endif
