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
 * with err filled on invalid input (bad indices, unknown operation ids, alias clashes).
 * With JOURNAL_LENIENT, what cannot be applied is skipped instead (whatever the journal recorded up
 * to it stays), *skipped (may be NULL) counts it, and err describes the first such entry. */
#define JOURNAL_LENIENT 1 /* skip entries that cannot be applied (counted in *skipped, the first in err) */
json_t *journal_replay(json_t *base, json_t *entries, const char *server_version, int flags, size_t *skipped, char *err,
                       size_t errlen);

/* The structural checks of one journal entry (its JSON text, already validated), made when its batch
 * arrives so that a batch that could never replay is refused then: sequenceID >= 1, kind 0..9,
 * integer operationID, indices (removeOld, removeNew, deleteOld, ...) absent, null or integers >= 0,
 * state/operation/newSnapshot/secretsProvider objects when present, a Write with a newSnapshot, an
 * ExtensionParameterize with extensionRef and extension, snippets an array. What depends on the
 * other entries or the base (an unknown operation, an index out of range, an alias clash) is left
 * to the replay. False with why filled when the entry is refused. */
bool journal_entry_check(const char *e, size_t len, char *why, size_t whylen);

#endif
