/* history.h - what readers see: the update history, engine events, and the stack listing. Each
 * writes the JSON reply body into a Buf. */
#ifndef PS_HISTORY_H
#define PS_HISTORY_H

#include <stdbool.h>

#include "apierror.h"
#include "db.h"
#include "stack.h"
#include "util.h"

/* {"updates":[UpdateInfo...]}: page (1-based) of size, newest first. */
bool history_page(Db *db, const StackRef *ref, long size, long page, Buf *out, ApiError *e);
/* {"info":UpdateInfo} of the latest update; 404 when there is none. */
bool history_latest(Db *db, const StackRef *ref, Buf *out, ApiError *e);

/* {"events":[...],"continuationToken":..}: the events of uid after sequence `after` (-1: from the
 * start). While the update runs, only up to the first gap (batches arrive concurrently), and the
 * continuation stays open; once it has ended everything is shown and the last page ends with null. */
bool events_page(Db *db, const StackRef *ref, const char *uid, long long after, Buf *out, ApiError *e);

/* A page of the stack listing. */
typedef struct StackQuery {
    const char *project, *org, *tag_name, *tag_value; /* NULL: any */
    const char *continuation;                         /* NULL or "": from the start */
    const char *scope;                                /* the token's glob, NULL: everything */
    int limit;
} StackQuery;
/* {"stacks":[...],"continuationToken":..}; 400 for a malformed continuation token. */
bool stack_list(Db *db, const StackQuery *q, Buf *out, ApiError *e);
/* The stack names of org/project: all of them, or (all false) at most one, to learn whether the
 * project exists. NULL on a database error. */
PGresult *stack_names_of_project(Db *db, const char *org, const char *project, bool all);

#endif
