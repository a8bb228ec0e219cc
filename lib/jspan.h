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
/* Iterate the members of the JSON object s[0..len) (already validated): start with *pos = 0; each
 * call sets the next key's span without its quotes [*ks, *ke) (escapes as written) and its value's
 * span [*vs, *ve), and returns true; false at the end. */
bool jspan_object_next(const char *s, size_t len, size_t *pos, size_t *ks, size_t *ke, size_t *vs, size_t *ve);
/* True if the members of the validated JSON object s[0..len) have keys written without escapes and
 * no key twice (at most JSPAN_MAX_KEYS of them): then what the span scanner finds for a key is what a
 * tree builder (last one wins, escapes decoded) finds too. */
#define JSPAN_MAX_KEYS 256
bool jspan_keys_plain_unique(const char *s, size_t len);
/* The same check, and in the same one pass the value spans of keys[0..n) (plain ASCII): start[i] and
 * end[i], start[i] = (size_t)-1 when keys[i] is absent. */
bool jspan_members(const char *s, size_t len, const char *const *keys, size_t n, size_t *start, size_t *end);
/* The value of the validated JSON string s[0..len) (quotes included), escapes decoded to UTF-8: new,
 * or NULL if it holds \u0000. */
char *jspan_string_value(const char *s, size_t len);
/* Parse the span as a JSON integer (no fraction or exponent) into *out. */
bool jspan_int(const char *s, size_t len, long long *out);
/* True if the span is the literal null. */
bool jspan_is_null(const char *s, size_t len);

/* Lean parsing: copy JSON text while setting aside the values of chosen members (an object's or
 * array's, at least min bytes, under one of keys at any depth), each replaced by the string
 * "<tag><n>"; so is every number a tree would not keep as the same text (beyond 18 digits, "-0",
 * fractions, exponents), wherever it is. The lean text is small enough to build a tree of, keeps
 * every number's exact text through the tree, and jspan_unlean splices the
 * values back into what that tree serialises to. tag must be plain ASCII (no '"' or '\\') and
 * unique enough not to occur in the data (a random nonce). The source text must outlive l. */
typedef struct JspanRaw {
    const char *p;
    size_t len;
} JspanRaw;

typedef struct JspanLean {
    const char *const *keys; /* NULL-terminated */
    size_t min;
    const char *tag;
    Buf *out;      /* the lean text is appended here */
    JspanRaw *raw; /* the values set aside, by n */
    size_t nraw, cap;
} JspanLean;

/* Append the lean form of s[0..len) to l->out; false if s is not exactly one valid JSON value. */
bool jspan_lean(JspanLean *l, const char *s, size_t len);
/* Append s[0..len) to out with every "<tag><n>" string replaced by the value set aside as n. */
bool jspan_unlean(const JspanLean *l, const char *s, size_t len, Buf *out);

/* Elements of a JSON array with their integer ids (jspan_collect_ids). */
typedef struct JspanIds {
    long long *ids;
    JspanRaw *spans; /* each element's text */
    size_t n, cap;
} JspanIds;

/* For each element of the JSON array s[0..len) (already validated): it must be an object whose
 * member key is an integer >= min, and check (may be NULL) must accept it. The ids and the
 * elements' spans are appended to out. Returns -1 when all elements pass, else the index of the
 * first that does not. */
long jspan_collect_ids(const char *s, size_t len, const char *key, long long min,
                       bool (*check)(const char *elem, size_t elen, void *arg), void *arg, JspanIds *out);
void jspan_ids_free(JspanIds *ids);

#endif
