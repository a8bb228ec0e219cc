/* audit.h - the audit trail: one row per state-changing request, in the change's transaction. */
#ifndef PS_AUDIT_H
#define PS_AUDIT_H

#include <stdbool.h>

#include "http.h"

/* Write the audit row for c (outcome 200) inside the open transaction, then commit. Handlers of
 * audited routes call this instead of db_commit at their success point. */
bool audit_commit(Ctx *c);
/* After the handler: write the row on its own if the handler did not (refusals, errors, calls
 * without a transaction). No-op for routes that are not audited. */
void audit_after(Ctx *c);

#endif
