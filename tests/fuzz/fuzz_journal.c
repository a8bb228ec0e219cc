/* fuzz_journal.c - journal replay: the input is "<base deployment>\n<entries array>", each entry also
 * put through the batch-time check; strict and lenient replays, lean parsing as the worker does. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "jspan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    if (!nl)
        return 0;
    size_t blen = (size_t)(nl - s);
    const char *e = nl + 1;
    size_t elen = size - blen - 1;
    if (!jspan_validate(e, elen))
        return 0;
    size_t pos = 0, a, z;
    char why[200];
    bool all_pass = e[strspn(e, " \t\r\n")] == '[';
    while (jspan_array_next(e, elen, &pos, &a, &z))
        all_pass = journal_entry_check(e + a, z - a, why, sizeof(why)) && all_pass;
    json_t *base = json_loadb(s, blen, JSON_ALLOW_NUL, NULL);
    json_t *entries = json_loadb(e, elen, JSON_ALLOW_NUL, NULL);
    if (entries) {
        char err[256];
        size_t skipped = 0;
        json_t *out = journal_replay(json_is_object(base) ? base : NULL, entries, "v3.0.0", 0, NULL, err, sizeof(err));
        json_decref(out);
        out = journal_replay(json_is_object(base) ? base : NULL, entries, "v3.0.0", JOURNAL_LENIENT, &skipped, err,
                             sizeof(err));
        if (all_pass && json_is_array(entries) && !out)
            abort(); /* entries the batch check takes always replay leniently into a state */
        char *dumped = out ? json_dumps(out, JSON_COMPACT) : NULL;
        free(dumped);
        json_decref(out);
    }
    json_decref(base);
    json_decref(entries);
    return 0;
}
