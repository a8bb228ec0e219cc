/* names.h - validation of org, project, stack, tag names and update ids before any database work. */
#ifndef PS_NAMES_H
#define PS_NAMES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ^[a-zA-Z0-9][a-zA-Z0-9-_]{1,38}[a-zA-Z0-9]$ (the CLI's owner rule), plus 1-char names are refused. */
bool name_valid_org(const char *s);
/* [A-Za-z0-9_.-], 1..100 chars, not "." or "..". */
bool name_valid_project(const char *s);
bool name_valid_stack(const char *s);
/* Canonical lowercase UUID text. */
bool name_valid_uuid(const char *s);
/* Tag names: [A-Za-z0-9_.:/-], 1..40 chars; values <= 256 bytes. */
bool name_valid_tag(const char *name, const char *value);
/* A tags object: string values under valid names (name_valid_tag). False with why filled. */
bool names_tags_valid(json_t *tags, char *why, size_t whylen);

#endif
