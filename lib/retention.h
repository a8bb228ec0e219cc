/* retention.h - pruning what the configured retention no longer keeps: old state versions (by count
 * per stack and by age, never a stack's current version), the journals of ended updates, engine
 * events, audit rows and deployment logs (by age). Deletes go in small batches, each its own short
 * transaction, so a prune never holds a stack's lock or blocks an update for long. */
#ifndef PS_RETENTION_H
#define PS_RETENTION_H

#include <stdbool.h>

#include "config.h"
#include "db.h"

/* Called after each batch: the table's short name and the rows deleted from it so far. */
typedef void (*PruneProgress)(const char *what, long long so_far, void *arg);

/* Prune by cfg's retain_* settings (0 = keep forever). Returns the rows deleted, or -1 on a
 * database error (what was deleted before it stays deleted: each batch commits). */
long long retention_prune(Db *db, const Config *cfg, PruneProgress progress, void *arg);

#endif
