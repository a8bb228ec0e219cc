/* fuzz_jspan.c - the span scanner: validation, members, iteration, lean parsing and its inverse. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jspan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    if (!jspan_validate(s, size))
        return 0;
    size_t a, z, pos = 0, ks, ke;
    long long v;
    jspan_member(s, size, "deployment", &a, &z);
    jspan_array_count(s, size);
    while (jspan_object_next(s, size, &pos, &ks, &ke, &a, &z))
        jspan_int(s + a, z - a, &v);
    pos = 0;
    while (jspan_array_next(s, size, &pos, &a, &z))
        jspan_is_null(s + a, z - a);
    static const char *const keys[] = {"inputs", "outputs", NULL};
    Buf lean, back;
    buf_init(&lean);
    buf_init(&back);
    JspanLean l = {.keys = keys, .min = 8, .tag = "fz-", .out = &lean};
    /* The tag must not occur in the data (the server's is a 128-bit random nonce); this one is fixed,
     * so inputs holding it are not a round trip to check. */
    bool tag_free = !memmem(s, size, "fz-", 3);
    if (tag_free && jspan_lean(&l, s, size)) {
        /* The lean text is valid JSON, and unlean gives back the input exactly. */
        if (!jspan_validate(lean.data, lean.len))
            abort();
        if (!jspan_unlean(&l, lean.data, lean.len, &back) || back.len != size || memcmp(back.data, s, size) != 0)
            abort();
    }
    JspanIds ids = {0};
    jspan_collect_ids(s, size, "sequenceID", 1, NULL, NULL, &ids);
    jspan_ids_free(&ids);
    free(l.raw);
    buf_free(&lean);
    buf_free(&back);
    return 0;
}
