/* stubs-tmp.c - placeholders for delta.c and journal.c until they land (temporary). */
#include "delta.h"
#include "journal.h"
DeltaResult delta_apply(const char *base, size_t baselen, json_t *edits, const char *hash_hex, char **out, size_t *outlen, char *err, size_t errlen)
{ (void)base;(void)baselen;(void)edits;(void)hash_hex;(void)out;(void)outlen;(void)err;(void)errlen; return DELTA_BAD_EDITS; }
json_t *journal_replay(json_t *base, json_t *entries, const char *v, char *err, size_t errlen)
{ (void)base;(void)entries;(void)v;(void)err;(void)errlen; return NULL; }
