/* textdiff.c - see textdiff.h. */
#include "textdiff.h"

#include <stdbool.h>
#include <string.h>

/* How far ahead a resynchronisation looks, and how long a common run must be to count as one. */
#define LOOKAHEAD 64
#define ANCHOR 32

static bool continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* The first (i, j), i + j smallest, i, j <= LOOKAHEAD, where a run of ANCHOR bytes agrees. */
static bool resync(const char *a, size_t alen, size_t ai, const char *b, size_t blen, size_t bi, size_t *di, size_t *dj)
{
    for (size_t sum = 1; sum <= 2 * LOOKAHEAD; sum++)
        for (size_t i = sum > LOOKAHEAD ? sum - LOOKAHEAD : 0; i <= sum && i <= LOOKAHEAD; i++) {
            size_t j = sum - i;
            if (ai + i + ANCHOR > alen || bi + j + ANCHOR > blen)
                continue;
            if (!memcmp(a + ai + i, b + bi + j, ANCHOR)) {
                *di = i;
                *dj = j;
                return true;
            }
        }
    return false;
}

size_t textdiff(const char *a, size_t alen, const char *b, size_t blen, TextEdit *edits, size_t max)
{
    /* The common suffix first, so the scan knows where to stop. */
    size_t suffix = 0;
    while (suffix < alen && suffix < blen && a[alen - 1 - suffix] == b[blen - 1 - suffix])
        suffix++;
    size_t n = 0, ai = 0, bi = 0;
    for (;;) {
        while (ai < alen && bi < blen && a[ai] == b[bi])
            ai++, bi++;
        if (ai == alen && bi == blen)
            break;
        /* a difference at (ai, bi): start it on a character boundary (the bytes before are common) */
        size_t s = ai, bs = bi;
        while (s > 0 && bs > 0 && (n == 0 || s > edits[n - 1].end) &&
               ((s < alen && continuation((unsigned char)a[s])) || (bs < blen && continuation((unsigned char)b[bs]))))
            s--, bs--;
        size_t di, dj, e, be;
        bool tail = alen - ai <= suffix || blen - bi <= suffix;
        if (!tail && resync(a, alen, ai, b, blen, bi, &di, &dj)) {
            e = ai + di;
            be = bi + dj;
        } else {
            /* the rest up to the common suffix (trimmed so it never overlaps what is consumed) */
            size_t keep = suffix;
            if (keep > alen - s)
                keep = alen - s;
            if (keep > blen - bs)
                keep = blen - bs;
            e = alen - keep;
            be = blen - keep;
        }
        while (e < alen && be < blen && continuation((unsigned char)a[e]))
            e++, be++;
        if (n > 0 && s <= edits[n - 1].end) { /* touches the one before: one edit */
            edits[n - 1].end = e;
            edits[n - 1].bend = be;
        } else {
            if (n == max)
                return max + 1;
            edits[n++] = (TextEdit){s, e, bs, be};
        }
        ai = e;
        bi = be;
    }
    return n;
}
