/* jspan.h - a validating JSON scanner that finds the byte spans of values without building a tree. */
#ifndef PS_JSPAN_H
#define PS_JSPAN_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define JSPAN_MAX_DEPTH 512

/* True if s[0..len) is exactly one JSON value (surrounding whitespace allowed), nesting <= 512. */
bool jspan_validate(const char *s, size_t len);
/* s[0..len) must be a JSON object (already validated): find member key (exact, unescaped ASCII
 * key) and return its value's span [*start, *end) relative to s. False if absent. */
bool jspan_member(const char *s, size_t len, const char *key, size_t *start, size_t *end);
/* Number of elements of the JSON array s[0..len), or -1 if it is not an array. */
long jspan_array_count(const char *s, size_t len);
/* Iterate the elements of the JSON array s[0..len) (already validated): start with *pos = 0;
 * each call sets the next element's span [*start, *end) and returns true, false at the end. */
bool jspan_array_next(const char *s, size_t len, size_t *pos, size_t *start, size_t *end);
/* Parse the span as a JSON integer (no fraction or exponent) into *out. */
bool jspan_int(const char *s, size_t len, long long *out);
/* For each element of the JSON array s[0..len) (already validated): it must be an object whose
 * member key is an integer >= min, and check (may be NULL) must accept it. The integers are
 * appended to ids as a PostgreSQL bigint[] literal ("{1,2}"). Returns -1 when all elements pass,
 * else the index of the first that does not. */
long jspan_collect_ids(const char *s, size_t len, const char *key, long long min,
                       bool (*check)(const char *elem, size_t elen, void *arg), void *arg, Buf *ids);
/* True if the span is the literal null. */
bool jspan_is_null(const char *s, size_t len);

#endif
