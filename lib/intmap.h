/* intmap.h - an int64 -> size_t open-addressing hash map (linear probing, tombstones). */
#ifndef PS_INTMAP_H
#define PS_INTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct IntMap {
    int64_t *keys;
    size_t *vals;
    unsigned char *state; /* 0 empty, 1 used, 2 deleted */
    size_t cap;           /* power of two, or 0 */
    size_t used;          /* used + deleted slots */
} IntMap;

/* A zeroed IntMap is empty. */
void intmap_free(IntMap *m);
bool intmap_get(const IntMap *m, int64_t k, size_t *val);
void intmap_put(IntMap *m, int64_t k, size_t val);
void intmap_del(IntMap *m, int64_t k);

#endif
