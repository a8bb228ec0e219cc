/* intmap.c - an int64 -> size_t open-addressing hash map (linear probing, tombstones). */
#include "intmap.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t int_hash(int64_t k)
{
    uint64_t x = (uint64_t)k + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(x ^ (x >> 31));
}

void intmap_free(IntMap *m)
{
    free(m->keys);
    free(m->vals);
    free(m->state);
    memset(m, 0, sizeof(*m));
}

/* The slot holding k, or (if absent) the slot to insert it into. */
static size_t intmap_slot(const IntMap *m, int64_t k, bool *found)
{
    size_t mask = m->cap - 1, i = int_hash(k) & mask, tomb = SIZE_MAX;
    for (;;) {
        if (m->state[i] == 0) {
            *found = false;
            return tomb != SIZE_MAX ? tomb : i;
        }
        if (m->state[i] == 2) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (m->keys[i] == k) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

bool intmap_get(const IntMap *m, int64_t k, size_t *val)
{
    bool found = false;
    if (!m->cap)
        return false;
    size_t i = intmap_slot(m, k, &found);
    if (found && val)
        *val = m->vals[i];
    return found;
}

void intmap_put(IntMap *m, int64_t k, size_t val);

static void intmap_grow(IntMap *m)
{
    IntMap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = xcalloc(m->cap, sizeof(int64_t));
    m->vals = xcalloc(m->cap, sizeof(size_t));
    m->state = xcalloc(m->cap, 1);
    m->used = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.state[i] == 1)
            intmap_put(m, old.keys[i], old.vals[i]);
    intmap_free(&old);
}

void intmap_put(IntMap *m, int64_t k, size_t val)
{
    bool found = false;
    if ((m->used + 1) * 2 > m->cap)
        intmap_grow(m);
    size_t i = intmap_slot(m, k, &found);
    if (!found && m->state[i] == 0)
        m->used++;
    m->keys[i] = k;
    m->vals[i] = val;
    m->state[i] = 1;
}

void intmap_del(IntMap *m, int64_t k)
{
    bool found = false;
    if (!m->cap)
        return;
    size_t i = intmap_slot(m, k, &found);
    if (found)
        m->state[i] = 2;
}
