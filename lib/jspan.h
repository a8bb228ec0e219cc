/* jspan.h - a validating JSON scanner that finds the byte spans of values without building a tree. */
#ifndef PS_JSPAN_H
#define PS_JSPAN_H

#include <stdbool.h>
#include <stddef.h>

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
/* True if the span is the literal null. */
bool jspan_is_null(const char *s, size_t len);

#endif
