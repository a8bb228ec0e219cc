/* delta.h - apply checkpointdelta text edits to the exact bytes of the last checkpoint. */
#ifndef PS_DELTA_H
#define PS_DELTA_H

#include <jansson.h>
#include <stddef.h>

#include "util.h"

typedef enum { DELTA_OK, DELTA_BAD_EDITS, DELTA_HASH_MISMATCH } DeltaResult;

/* edits: borrowed JSON array of {"Span":{"start":{"line","column","offset"},"end":{...}},"NewText":s}.
 * Offsets are byte offsets into base; offset < 0 is the legacy form (1-based line + byte column).
 * hash_hex: expected lowercase hex SHA-256 of the result (NULL: not checked, for edits verified before). On DELTA_OK
 * *out is new (NUL-terminated past *outlen). err (may be NULL) receives a short reason on failure. */
DeltaResult delta_apply(const char *base, size_t baselen, json_t *edits, const char *hash_hex, char **out,
                        size_t *outlen, char *err, size_t errlen);

/* The same edits applied to doc itself: the result's SHA-256 is checked against hash_hex first (from
 * the pieces, no copy), and doc changes only on DELTA_OK (moving the bytes after each edit). */
DeltaResult delta_apply_inplace(Buf *doc, json_t *edits, const char *hash_hex, char *err, size_t errlen);

/* Apply deltas[0..n) in order to base with one copy at the end (a piece table in between): each an
 * edits array in the offset form, relative to the document the ones before it make, checked when it
 * arrived (no hash here). DELTA_BAD_EDITS for anything else, the legacy line/column form included:
 * the caller then applies them one by one with delta_apply. */
DeltaResult delta_apply_chain(const char *base, size_t baselen, json_t *const *deltas, size_t n, char **out,
                              size_t *outlen);

#endif
