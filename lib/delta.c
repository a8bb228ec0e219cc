/* delta.c - checkpointdelta: splice byte-offset text edits into the last checkpoint's exact bytes. */
#include "delta.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "util.h"

/* One edit, resolved to byte offsets in base. */
typedef struct Edit {
    size_t start;
    size_t end;
    const char *text; /* borrowed from the edit's NewText */
    size_t textlen;
    size_t order; /* position in the request: ties keep request order */
} Edit;

/* new: the offset of the first byte of every line of base (line 1 at index 0). */
static size_t *line_starts(const char *base, size_t len, size_t *nlines)
{
    size_t n = 1;
    for (const char *p = base; (p = memchr(p, '\n', len - (size_t)(p - base))) != NULL; p++)
        n++;
    size_t *starts = xmalloc(n * sizeof(size_t));
    size_t k = 0;
    starts[k++] = 0;
    for (const char *p = base; (p = memchr(p, '\n', len - (size_t)(p - base))) != NULL; p++)
        starts[k++] = (size_t)(p - base) + 1;
    *nlines = n;
    return starts;
}

/* A span end-point ({"line","column","offset"}) as a byte offset into base. The legacy form
 * (offset < 0 or absent) counts a 1-based line and a 1-based byte column; *starts is computed on
 * first use. */
static bool resolve_point(json_t *point, const char *base, size_t baselen, size_t **starts, size_t *nlines, size_t *out)
{
    if (!json_is_object(point))
        return false;
    json_t *off = json_object_get(point, "offset");
    if (off && !json_is_integer(off))
        return false;
    json_int_t o = off ? json_integer_value(off) : -1;
    if (o < 0) {
        json_t *line = json_object_get(point, "line"), *col = json_object_get(point, "column");
        if (!json_is_integer(line) || !json_is_integer(col))
            return false;
        json_int_t l = json_integer_value(line), c = json_integer_value(col);
        if (!*starts)
            *starts = line_starts(base, baselen, nlines);
        if (l < 1 || (size_t)l > *nlines || c < 1 || (size_t)(c - 1) > baselen)
            return false;
        size_t at = (*starts)[l - 1] + (size_t)(c - 1);
        if (at > baselen)
            return false;
        *out = at;
        return true;
    }
    if ((unsigned long long)o > (unsigned long long)baselen)
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

static bool sha256_matches(const char *data, size_t len, const char *hash_hex)
{
    char hex[65];
    sha256_hex(data, len, hex);
    return strcasecmp(hex, hash_hex) == 0;
}

/* The edits of a request resolved against base and sorted: *ed (new) and *n; DELTA_OK or
 * DELTA_BAD_EDITS with err set. */
static DeltaResult parse_edits(const char *base, size_t baselen, json_t *edits, Edit **out, size_t *count,
                               size_t *total, char *err, size_t errlen)
{
    size_t n = json_array_size(edits), nlines = 0, *starts = NULL;
    *out = NULL;
    if (!json_is_array(edits)) {
        set_err(err, errlen, "deploymentDelta is not an array");
        return DELTA_BAD_EDITS;
    }
    Edit *ed = xcalloc(n ? n : 1, sizeof(Edit));
    bool sorted = true;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(edits, i);
        json_t *span = json_object_get(e, "Span"), *text = json_object_get(e, "NewText");
        if (!json_is_object(span) || !json_is_string(text)) {
            set_err(err, errlen, "edit %zu: needs a Span object and a NewText string", i);
            goto fail;
        }
        if (!resolve_point(json_object_get(span, "start"), base, baselen, &starts, &nlines, &ed[i].start) ||
            !resolve_point(json_object_get(span, "end"), base, baselen, &starts, &nlines, &ed[i].end)) {
            set_err(err, errlen, "edit %zu: span missing or outside the checkpoint", i);
            goto fail;
        }
        if (ed[i].end < ed[i].start) {
            set_err(err, errlen, "edit %zu: span ends before it starts", i);
            goto fail;
        }
        ed[i].text = json_string_value(text);
        ed[i].textlen = json_string_length(text);
        ed[i].order = i;
        if (i > 0 && ed[i].start < ed[i - 1].start)
            sorted = false;
    }
    /* The CLI sends edits ascending; only the legacy line/column form may need this. */
    if (!sorted)
        qsort(ed, n, sizeof(Edit), edit_cmp);
    size_t len = baselen, last = 0;
    for (size_t i = 0; i < n; i++) {
        if (ed[i].start < last) {
            set_err(err, errlen, "edit %zu overlaps the edit before it", ed[i].order);
            goto fail;
        }
        len = len - (ed[i].end - ed[i].start) + ed[i].textlen;
        last = ed[i].end;
    }
    free(starts);
    *out = ed;
    *count = n;
    *total = len;
    return DELTA_OK;
fail:
    free(starts);
    free(ed);
    return DELTA_BAD_EDITS;
}

DeltaResult delta_apply(const char *base, size_t baselen, json_t *edits, const char *hash_hex, char **out,
                        size_t *outlen, char *err, size_t errlen)
{
    Edit *ed = NULL;
    size_t n = 0, total = 0;
    *out = NULL;
    *outlen = 0;
    if (!base) {
        base = "";
        baselen = 0;
    }
    DeltaResult result = parse_edits(base, baselen, edits, &ed, &n, &total, err, errlen);
    if (result != DELTA_OK)
        return result;
    Buf b;
    buf_init(&b);
    buf_reserve(&b, total);
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        buf_append(&b, base + last, ed[i].start - last);
        buf_append(&b, ed[i].text, ed[i].textlen);
        last = ed[i].end;
    }
    buf_append(&b, base + last, baselen - last);
    if (hash_hex && !sha256_matches(b.data, b.len, hash_hex)) {
        set_err(err, errlen, "the result's SHA-256 does not match checkpointHash");
        result = DELTA_HASH_MISMATCH;
    } else {
        *out = buf_steal(&b, outlen);
    }
    buf_free(&b);
    free(ed);
    return result;
}

DeltaResult delta_apply_inplace(Buf *doc, json_t *edits, const char *hash_hex, char *err, size_t errlen)
{
    Edit *ed = NULL;
    size_t n = 0, total = 0;
    const char *base = doc->data ? doc->data : "";
    DeltaResult result = parse_edits(base, doc->len, edits, &ed, &n, &total, err, errlen);
    if (result != DELTA_OK)
        return result;
    /* The result's hash first, from the pieces: the document is touched only when it matches. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool hashed = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    size_t last = 0;
    for (size_t i = 0; hashed && i < n; i++) {
        hashed =
            EVP_DigestUpdate(ctx, base + last, ed[i].start - last) && EVP_DigestUpdate(ctx, ed[i].text, ed[i].textlen);
        last = ed[i].end;
    }
    hashed = hashed && EVP_DigestUpdate(ctx, base + last, doc->len - last) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    char hex[65];
    if (hashed)
        hex_encode(md, mdlen, hex);
    if (!hashed || !hash_hex || strcasecmp(hex, hash_hex) != 0) {
        set_err(err, errlen, "the result's SHA-256 does not match checkpointHash");
        free(ed);
        return DELTA_HASH_MISMATCH;
    }
    /* From the last edit back: each moves only what follows it, earlier offsets stay valid. On the
     * way the document can be longer than at the end (a later edit grows it, an earlier one shrinks
     * it): room for the longest it gets, and some growth, not the doubling of appends. */
    size_t peak = doc->len, running = doc->len;
    for (size_t i = n; i-- > 0;) {
        running = running + ed[i].textlen - (ed[i].end - ed[i].start);
        if (running > peak)
            peak = running;
    }
    if (peak + 1 > doc->cap) {
        doc->cap = peak + total / 8 + 1;
        doc->data = xrealloc(doc->data, doc->cap);
    }
    size_t len = doc->len;
    for (size_t i = n; i-- > 0;) {
        Edit *e = &ed[i];
        if (e->textlen != e->end - e->start) /* the same length (the manifest's time, mostly): nothing moves */
            memmove(doc->data + e->start + e->textlen, doc->data + e->end, len - e->end);
        memcpy(doc->data + e->start, e->text, e->textlen);
        len = len + e->textlen - (e->end - e->start);
    }
    doc->len = len;
    if (doc->data)
        doc->data[len] = '\0';
    free(ed);
    return DELTA_OK;
}

/* ---- several deltas at once ---- */

typedef struct Piece {
    const char *p;
    size_t len;
} Piece;

typedef struct Pieces {
    Piece *v;
    size_t n, cap;
} Pieces;

static void piece_push(Pieces *ps, const char *p, size_t len)
{
    if (!len)
        return;
    if (ps->n && ps->v[ps->n - 1].p + ps->v[ps->n - 1].len == p) {
        ps->v[ps->n - 1].len += len;
        return;
    }
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 64;
        ps->v = xrealloc(ps->v, ps->cap * sizeof(Piece));
    }
    ps->v[ps->n++] = (Piece){p, len};
}

/* The bytes [a, b) of the document cur describes, onto next; *ci / *cpos: the piece the walk is at
 * and the document offset it starts at (both only move forward). */
static void piece_copy(const Pieces *cur, size_t *ci, size_t *cpos, size_t a, size_t b, Pieces *next)
{
    while (a < b) {
        while (*cpos + cur->v[*ci].len <= a) {
            *cpos += cur->v[*ci].len;
            (*ci)++;
        }
        size_t off = a - *cpos, take = cur->v[*ci].len - off;
        if (take > b - a)
            take = b - a;
        piece_push(next, cur->v[*ci].p + off, take);
        a += take;
    }
}

static bool span_offset(json_t *point, json_int_t *out)
{
    json_t *off = json_object_get(point, "offset");
    if (!json_is_integer(off) || json_integer_value(off) < 0)
        return false;
    *out = json_integer_value(off);
    return true;
}

DeltaResult delta_apply_chain(const char *base, size_t baselen, json_t *const *deltas, size_t n, char **out,
                              size_t *outlen)
{
    Pieces cur = {0}, next = {0};
    size_t doclen = baselen;
    DeltaResult result = DELTA_BAD_EDITS;
    *out = NULL;
    *outlen = 0;
    piece_push(&cur, base, baselen);
    for (size_t d = 0; d < n; d++) {
        json_t *edits = deltas[d];
        if (!json_is_array(edits))
            goto out;
        next.n = 0;
        size_t ci = 0, cpos = 0, at = 0, newlen = 0;
        for (size_t i = 0; i < json_array_size(edits); i++) {
            json_t *e = json_array_get(edits, i), *span = json_object_get(e, "Span"),
                   *text = json_object_get(e, "NewText");
            json_int_t s, t;
            if (!json_is_string(text) || !span_offset(json_object_get(span, "start"), &s) ||
                !span_offset(json_object_get(span, "end"), &t) || (size_t)s < at || t < s || (size_t)t > doclen)
                goto out;
            piece_copy(&cur, &ci, &cpos, at, (size_t)s, &next);
            piece_push(&next, json_string_value(text), json_string_length(text));
            newlen += ((size_t)s - at) + json_string_length(text);
            at = (size_t)t;
        }
        piece_copy(&cur, &ci, &cpos, at, doclen, &next);
        newlen += doclen - at;
        Pieces tmp = cur;
        cur = next;
        next = tmp;
        doclen = newlen;
    }
    Buf b;
    buf_init(&b);
    buf_reserve(&b, doclen);
    for (size_t i = 0; i < cur.n; i++)
        buf_append(&b, cur.v[i].p, cur.v[i].len);
    *out = buf_steal(&b, outlen);
    result = DELTA_OK;
out:
    free(cur.v);
    free(next.v);
    return result;
}
