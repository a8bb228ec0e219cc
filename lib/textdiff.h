/* textdiff.h - a few byte-range edits that turn one document into the next (full checkpoints stored
 * as deltas when little changed). Not a minimal diff: a greedy scan that resynchronises after small
 * substitutions and ends with one edit before the common suffix. */
#ifndef PS_TEXTDIFF_H
#define PS_TEXTDIFF_H

#include <stddef.h>

typedef struct TextEdit {
    size_t start, end;   /* the replaced bytes of a: [start, end) */
    size_t bstart, bend; /* their replacement, bytes of b: [bstart, bend) */
} TextEdit;

/* Fill edits (at most max) so that a with them applied (ascending, non-overlapping) is b; every
 * boundary falls between UTF-8 characters. Returns how many, or max + 1 when more would be needed
 * (edits then undefined). Identical inputs give 0. */
size_t textdiff(const char *a, size_t alen, const char *b, size_t blen, TextEdit *edits, size_t max);

#endif
