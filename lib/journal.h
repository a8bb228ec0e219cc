/* journal.h - replay journal entries into a deployment, as the CLI's own JournalReplayer does. */
#ifndef PS_JOURNAL_H
#define PS_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>

/* base: borrowed DeploymentV3 object (the "deployment" member of the state the update started
 * from), or NULL for a stack with no state. entries: borrowed array of JournalEntry objects, any
 * order; they are deduplicated by sequenceID and applied in ascending sequenceID.
 * server_version: written into manifest.version (magic = sha256 hex of it).
 * Returns new untyped deployment {"version":3|4,["features":[...]],"deployment":{...}}, or NULL
 * with err filled on invalid input (bad indices, unknown operation ids, alias clashes). */
json_t *journal_replay(json_t *base, json_t *entries, const char *server_version, char *err, size_t errlen);

#endif
