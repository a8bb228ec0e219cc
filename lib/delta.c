/* delta.c - checkpointdelta: splice byte-offset text edits into the last checkpoint's exact bytes. */
#include "delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "util.h"

typedef struct Edit {
    size_t start;
    size_t end;
    const char *text;
    size_t textlen;
    size_t order;       /* position in the request, for a stable sort */
} Edit;

static void set_err(char *err, size_t errlen, const char *msg, size_t i)
{
    if (err && errlen)
        snprintf(err, errlen, "edit %zu: %s", i, msg);
}

/* Offsets of the start of every line of base, for the legacy (offset < 0) form. */
static size_t *line_starts(const char *base, size_t len, size_t *nlines)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        if (base[i] == '\n')
            n++;
    size_t *starts = xmalloc(n * sizeof(size_t));
    starts[0] = 0;
    size_t k = 1;
    for (size_t i = 0; i < len; i++)
        if (base[i] == '\n')
            starts[k++] = i + 1;
    *nlines = n;
    return starts;
}

/* Resolve one span end-point to a byte offset in base. */
static bool resolve(json_t *point, const size_t *starts, size_t nlines, size_t baselen, size_t *out)
{
    json_t *off = json_object_get(point, "offset");
    if (!json_is_integer(off))
        return false;
    json_int_t o = json_integer_value(off);
    if (o < 0) {
        json_t *line = json_object_get(point, "line"), *col = json_object_get(point, "column");
        if (!json_is_integer(line) || !json_is_integer(col) || !starts)
            return false;
        json_int_t l = json_integer_value(line), c = json_integer_value(col);
        if (l < 1 || (size_t)l > nlines || c < 1)
            return false;
        o = (json_int_t)(starts[l - 1] + (size_t)(c - 1));
    }
    if ((size_t)o > baselen)
        return false;
    *out = (size_t)o;
    return true;
}

static int edit_cmp(const void *a, const void *b)
{
    const Edit *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

DeltaResult delta_apply(const char *base, size_t baselen, json_t *edits, const char *hash_hex,
                        char **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if (!json_is_array(edits)) {
        set_err(err, errlen, "the delta is not an array", 0);
        return DELTA_BAD_EDITS;
    }
    size_t n = json_array_size(edits), nlines = 0, *starts = NULL;
    Edit *ed = xcalloc(n ? n : 1, sizeof(Edit));
    DeltaResult result = DELTA_BAD_EDITS;
    bool legacy = false;
    Buf b;
    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(edits, i);
        json_t *span = json_object_get(e, "Span"), *text = json_object_get(e, "NewText");
        json_t *s = json_object_get(span, "start"), *f = json_object_get(span, "end");
        if (!json_is_object(s) || !json_is_object(f) || !json_is_string(text)) {
            set_err(err, errlen, "needs Span.start, Span.end and NewText", i);
            goto fail;
        }
        json_t *so = json_object_get(s, "offset");
        if (json_is_integer(so) && json_integer_value(so) < 0 && !starts) {
            starts = line_starts(base, baselen, &nlines);
            legacy = true;
        }
        if (!resolve(s, starts, nlines, baselen, &ed[i].start) || !resolve(f, starts, nlines, baselen, &ed[i].end)) {
            set_err(err, errlen, "offset outside the checkpoint", i);
            goto fail;
        }
        if (ed[i].end < ed[i].start) {
            set_err(err, errlen, "span ends before it starts", i);
            goto fail;
        }
        ed[i].text = json_string_value(text);
        ed[i].textlen = json_string_length(text);
        ed[i].order = i;
    }
    /* Current CLIs send edits sorted; the legacy line/column form may not be. */
    if (legacy)
        qsort(ed, n, sizeof(Edit), edit_cmp);
    buf_reserve(&b, baselen);
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (ed[i].start < last) {
            set_err(err, errlen, "edits overlap or are out of order", ed[i].order);
            goto fail;
        }
        buf_append(&b, base + last, ed[i].start - last);
        buf_append(&b, ed[i].text, ed[i].textlen);
        last = ed[i].end;
    }
    buf_append(&b, base + last, baselen - last);
    char sum[65];
    sha256_hex(b.data, b.len, sum);
    if (!hash_hex || strcasecmp(sum, hash_hex) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "the result's SHA-256 does not match checkpointHash");
        result = DELTA_HASH_MISMATCH;
        goto fail;
    }
    *out = buf_steal(&b, outlen);
    result = DELTA_OK;
fail:
    buf_free(&b);
    free(starts);
    free(ed);
    return result;
}
