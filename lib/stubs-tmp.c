/* stubs-tmp.c - placeholder for journal.c until it lands (temporary). */
#include "journal.h"
json_t *journal_replay(json_t *base, json_t *entries, const char *v, char *err, size_t errlen)
{ (void)base;(void)entries;(void)v;(void)err;(void)errlen; return NULL; }
