/* jspan.c - JSON syntax scanning over raw bytes: validation and member spans, no allocation. */
#include "jspan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct Scan {
    const char *p;
    const char *end;
    JspanLean *lean;    /* set aside member values while scanning (jspan_lean), or NULL */
    const char *copied; /* jspan_lean: the source is copied to lean->out up to here */
} Scan;

static bool lean_key(const JspanLean *l, const char *key, size_t klen);
static void lean_member(Scan *sc, const char *vstart);
static void lean_set_aside(Scan *sc, const char *vstart);

/* A number a JSON tree keeps as the same text: an integer of at most 18 digits, not "-0". Anything
 * else (longer integers, fractions, exponents) a tree would turn into a double or refuse. */
static bool number_exact(const char *s, size_t n)
{
    size_t i = s[0] == '-';
    if (n - i > 18 || n == i)
        return false;
    for (size_t k = i; k < n; k++)
        if (s[k] < '0' || s[k] > '9')
            return false;
    return !(i && s[1] == '0');
}

static void skip_ws(Scan *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

static bool is_hex(char c)
{
    return hex_digit((unsigned char)c) >= 0;
}

/* Four hex digits (already checked) as a number. */
static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v = v * 16 + (unsigned)hex_digit((unsigned char)p[i]);
    return v;
}

/* Length of the UTF-8 sequence at p: shortest form, no surrogates, at most U+10FFFF; 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t n = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
               : p[0] >= 0xe0 && p[0] <= 0xef ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                              : 0;
    if (n == 0 || (size_t)(end - p) < n)
        return 0;
    unsigned long cp = p[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Strict: valid UTF-8, no control characters, known escapes, surrogate escapes only in pairs (what
 * PostgreSQL's json type and jansson accept, and all Go's encoder produces). */
static bool scan_string(Scan *sc)
{
    if (sc->p >= sc->end || *sc->p != '"')
        return false;
    sc->p++;
    while (sc->p < sc->end) {
        /* Plain ASCII runs (most of any state) eight bytes at a time: stop at a byte that is a
         * control character, '"', '\\' or not ASCII. */
        while (sc->end - sc->p >= 8) {
            uint64_t w;
            memcpy(&w, sc->p, 8);
            const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
            uint64_t quote = w ^ (ones * '"'), bslash = w ^ (ones * '\\');
            uint64_t special = ((w - ones * 0x20) | (quote - ones) | (bslash - ones)) & ~w & highs;
            if ((special | (w & highs)) != 0)
                break;
            sc->p += 8;
        }
        if (sc->p >= sc->end)
            break;
        unsigned char c = (unsigned char)*sc->p;
        if (c == '"') {
            sc->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            sc->p++;
            if (sc->p >= sc->end)
                return false;
            char e = *sc->p;
            if (e == 'u') {
                if (sc->end - sc->p < 5)
                    return false;
                for (int i = 1; i <= 4; i++)
                    if (!is_hex(sc->p[i]))
                        return false;
                unsigned u = hex4(sc->p + 1);
                sc->p += 5;
                if (u >= 0xdc00 && u <= 0xdfff)
                    return false;
                if (u >= 0xd800 && u <= 0xdbff) {
                    if (sc->end - sc->p < 6 || sc->p[0] != '\\' || sc->p[1] != 'u')
                        return false;
                    for (int i = 2; i <= 5; i++)
                        if (!is_hex(sc->p[i]))
                            return false;
                    u = hex4(sc->p + 2);
                    if (u < 0xdc00 || u > 0xdfff)
                        return false;
                    sc->p += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return false;
        } else if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)sc->p, (const unsigned char *)sc->end);
            if (n == 0)
                return false;
            sc->p += n;
            continue;
        }
        sc->p++;
    }
    return false;
}

static bool scan_digits(Scan *sc)
{
    const char *start = sc->p;
    while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9')
        sc->p++;
    return sc->p > start;
}

static bool scan_number(Scan *sc)
{
    if (sc->p < sc->end && *sc->p == '-')
        sc->p++;
    if (sc->p < sc->end && *sc->p == '0')
        sc->p++;
    else if (!scan_digits(sc))
        return false;
    if (sc->p < sc->end && *sc->p == '.') {
        sc->p++;
        if (!scan_digits(sc))
            return false;
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        sc->p++;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
            sc->p++;
        if (!scan_digits(sc))
            return false;
    }
    return true;
}

static bool scan_literal(Scan *sc, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n) != 0)
        return false;
    sc->p += n;
    return true;
}

static bool scan_value(Scan *sc, int depth)
{
    if (depth > JSPAN_MAX_DEPTH)
        return false;
    skip_ws(sc);
    if (sc->p >= sc->end)
        return false;
    switch (*sc->p) {
    case '"':
        return scan_string(sc);
    case '{':
        sc->p++;
        skip_ws(sc);
        if (sc->p < sc->end && *sc->p == '}') {
            sc->p++;
            return true;
        }
        for (;;) {
            skip_ws(sc);
            const char *key = sc->p + 1;
            if (!scan_string(sc))
                return false;
            size_t klen = (size_t)(sc->p - 1 - key);
            skip_ws(sc);
            if (sc->p >= sc->end || *sc->p != ':')
                return false;
            sc->p++;
            skip_ws(sc);
            const char *vstart = sc->p;
            JspanLean *lean = sc->lean;
            bool aside = lean && sc->p < sc->end && (*sc->p == '{' || *sc->p == '[') && lean_key(lean, key, klen);
            if (aside)
                sc->lean = NULL; /* nothing inside a value set aside is set aside on its own */
            bool ok = scan_value(sc, depth + 1);
            sc->lean = lean;
            if (!ok)
                return false;
            if (aside)
                lean_member(sc, vstart);
            skip_ws(sc);
            if (sc->p >= sc->end)
                return false;
            if (*sc->p == '}') {
                sc->p++;
                return true;
            }
            if (*sc->p != ',')
                return false;
            sc->p++;
        }
    case '[':
        sc->p++;
        skip_ws(sc);
        if (sc->p < sc->end && *sc->p == ']') {
            sc->p++;
            return true;
        }
        for (;;) {
            if (!scan_value(sc, depth + 1))
                return false;
            skip_ws(sc);
            if (sc->p >= sc->end)
                return false;
            if (*sc->p == ']') {
                sc->p++;
                return true;
            }
            if (*sc->p != ',')
                return false;
            sc->p++;
        }
    case 't':
        return scan_literal(sc, "true");
    case 'f':
        return scan_literal(sc, "false");
    case 'n':
        return scan_literal(sc, "null");
    default: {
        const char *start = sc->p;
        if (!scan_number(sc))
            return false;
        if (sc->lean && !number_exact(start, (size_t)(sc->p - start)))
            lean_set_aside(sc, start);
        return true;
    }
    }
}

bool jspan_validate(const char *s, size_t len)
{
    Scan sc = {s, s + len, NULL, NULL};
    if (!scan_value(&sc, 0))
        return false;
    skip_ws(&sc);
    return sc.p == sc.end;
}

bool jspan_member(const char *s, size_t len, const char *key, size_t *start, size_t *end)
{
    size_t klen = strlen(key), pos = 0, ks, ke;
    while (jspan_object_next(s, len, &pos, &ks, &ke, start, end))
        if (ke - ks == klen && memcmp(s + ks, key, klen) == 0)
            return true;
    return false;
}

bool jspan_members(const char *s, size_t len, const char *const *keys, size_t nkeys, size_t *start, size_t *end)
{
    size_t ks[JSPAN_MAX_KEYS], kl[JSPAN_MAX_KEYS], n = 0, pos = 0, a, z, vs, ve;
    for (size_t k = 0; k < nkeys; k++)
        start[k] = end[k] = (size_t)-1;
    while (jspan_object_next(s, len, &pos, &a, &z, &vs, &ve)) {
        if (n == JSPAN_MAX_KEYS || memchr(s + a, '\\', z - a))
            return false;
        for (size_t i = 0; i < n; i++)
            if (kl[i] == z - a && memcmp(s + ks[i], s + a, z - a) == 0)
                return false;
        ks[n] = a;
        kl[n++] = z - a;
        for (size_t k = 0; k < nkeys; k++)
            if (strlen(keys[k]) == z - a && memcmp(keys[k], s + a, z - a) == 0) {
                start[k] = vs;
                end[k] = ve;
            }
    }
    return true;
}

bool jspan_keys_plain_unique(const char *s, size_t len)
{
    return jspan_members(s, len, NULL, 0, NULL, NULL);
}

long jspan_array_count(const char *s, size_t len)
{
    Scan sc = {s, s + len, NULL, NULL};
    skip_ws(&sc);
    if (sc.p >= sc.end || *sc.p != '[')
        return -1;
    sc.p++;
    skip_ws(&sc);
    if (sc.p < sc.end && *sc.p == ']')
        return 0;
    long n = 0;
    for (;;) {
        if (!scan_value(&sc, 1))
            return -1;
        n++;
        skip_ws(&sc);
        if (sc.p >= sc.end)
            return -1;
        if (*sc.p == ']')
            return n;
        if (*sc.p != ',')
            return -1;
        sc.p++;
    }
}

bool jspan_is_null(const char *s, size_t len)
{
    Scan sc = {s, s + len, NULL, NULL};
    skip_ws(&sc);
    if (!scan_literal(&sc, "null"))
        return false;
    skip_ws(&sc);
    return sc.p == sc.end;
}

bool jspan_array_next(const char *s, size_t len, size_t *pos, size_t *start, size_t *end)
{
    Scan sc = {s + *pos, s + len, NULL, NULL};
    skip_ws(&sc);
    if (sc.p >= sc.end)
        return false;
    if (*pos == 0) {
        if (*sc.p != '[')
            return false;
        sc.p++;
        skip_ws(&sc);
        if (sc.p < sc.end && *sc.p == ']')
            return false;
    } else {
        if (*sc.p != ',')
            return false;
        sc.p++;
        skip_ws(&sc);
    }
    const char *vstart = sc.p;
    if (!scan_value(&sc, 1))
        return false;
    *start = (size_t)(vstart - s);
    *end = (size_t)(sc.p - s);
    *pos = *end;
    return true;
}

static void put_utf8(Buf *b, unsigned long cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(b, u, n);
}

char *jspan_string_value(const char *s, size_t len)
{
    Buf b;
    buf_init(&b);
    for (size_t i = 1; i + 1 < len; i++) {
        if (s[i] != '\\') {
            buf_append(&b, s + i, 1);
            continue;
        }
        char e = s[++i];
        if (e == 'u') {
            unsigned long cp = hex4(s + i + 1);
            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(s + i + 3) - 0xdc00);
                i += 6;
            }
            if (cp == 0) {
                buf_free(&b);
                return NULL;
            }
            put_utf8(&b, cp);
            continue;
        }
        char c = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
        buf_append(&b, &c, 1);
    }
    return buf_steal(&b, NULL);
}

bool jspan_object_next(const char *s, size_t len, size_t *pos, size_t *ks, size_t *ke, size_t *vs, size_t *ve)
{
    Scan sc = {s + *pos, s + len, NULL, NULL};
    skip_ws(&sc);
    if (sc.p >= sc.end)
        return false;
    if (*pos == 0) {
        if (*sc.p != '{')
            return false;
        sc.p++;
        skip_ws(&sc);
        if (sc.p < sc.end && *sc.p == '}')
            return false;
    } else {
        if (*sc.p != ',')
            return false;
        sc.p++;
        skip_ws(&sc);
    }
    const char *kstart = sc.p;
    if (!scan_string(&sc))
        return false;
    *ks = (size_t)(kstart + 1 - s);
    *ke = (size_t)(sc.p - 1 - s);
    skip_ws(&sc);
    if (sc.p >= sc.end || *sc.p != ':')
        return false;
    sc.p++;
    skip_ws(&sc);
    const char *vstart = sc.p;
    if (!scan_value(&sc, 1))
        return false;
    *vs = (size_t)(vstart - s);
    *ve = (size_t)(sc.p - s);
    *pos = *ve;
    return true;
}

bool jspan_int(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    bool neg = false;
    long long v = 0;
    if (len && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len || len - i > 18)
        return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

long jspan_collect_ids(const char *s, size_t len, const char *key, long long min,
                       bool (*check)(const char *elem, size_t elen, void *arg), void *arg, JspanIds *out)
{
    size_t pos = 0, a, z, ks, ke;
    long i = 0;
    long long v;
    while (jspan_array_next(s, len, &pos, &a, &z)) {
        const char *e = s + a;
        size_t elen = z - a;
        if (*e != '{' || !jspan_member(e, elen, key, &ks, &ke) || !jspan_int(e + ks, ke - ks, &v) || v < min ||
            (check && !check(e, elen, arg)))
            return i;
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 64;
            out->ids = xrealloc(out->ids, out->cap * sizeof(*out->ids));
            out->spans = xrealloc(out->spans, out->cap * sizeof(*out->spans));
        }
        out->ids[out->n] = v;
        out->spans[out->n].p = e;
        out->spans[out->n].len = elen;
        out->n++;
        i++;
    }
    return -1;
}

void jspan_ids_free(JspanIds *ids)
{
    free(ids->ids);
    free(ids->spans);
    memset(ids, 0, sizeof(*ids));
}

static bool lean_key(const JspanLean *l, const char *key, size_t klen)
{
    for (const char *const *k = l->keys; *k; k++)
        if (strlen(*k) == klen && memcmp(*k, key, klen) == 0)
            return true;
    return false;
}

/* Whether the (valid) JSON text s[0..n) holds a number that is not number_exact. */
static bool has_inexact_number(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
        } else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
            size_t j = i;
            while (j < n && s[j] && strchr("+-.eE0123456789", s[j]))
                j++;
            if (!number_exact(s + i, j - i))
                return true;
            i = j - 1;
        }
    }
    return false;
}

/* The member value just scanned, [vstart, sc->p), under one of the keys: set it aside if it is at
 * least lean->min bytes. */
static void lean_member(Scan *sc, const char *vstart)
{
    size_t vlen = (size_t)(sc->p - vstart);
    if (vlen < sc->lean->min && !has_inexact_number(vstart, vlen))
        return;
    lean_set_aside(sc, vstart);
}

/* Replace [vstart, sc->p) by the next marker. */
static void lean_set_aside(Scan *sc, const char *vstart)
{
    JspanLean *l = sc->lean;
    size_t vlen = (size_t)(sc->p - vstart);
    if (l->nraw == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->raw = xrealloc(l->raw, l->cap * sizeof(*l->raw));
    }
    l->raw[l->nraw].p = vstart;
    l->raw[l->nraw].len = vlen;
    buf_append(l->out, sc->copied, (size_t)(vstart - sc->copied));
    buf_printf(l->out, "\"%s%zu\"", l->tag, l->nraw);
    l->nraw++;
    sc->copied = sc->p;
}

bool jspan_lean(JspanLean *l, const char *s, size_t len)
{
    Scan sc = {s, s + len, l, s};
    bool ok = scan_value(&sc, 0);
    if (ok) {
        skip_ws(&sc);
        ok = sc.p == sc.end;
    }
    buf_append(l->out, sc.copied, (size_t)(s + len - sc.copied));
    return ok;
}

bool jspan_unlean(const JspanLean *l, const char *s, size_t len, Buf *out)
{
    size_t tlen = strlen(l->tag), total = len;
    for (size_t i = 0; i < l->nraw; i++)
        total += l->raw[i].len;
    buf_reserve(out, total); /* one allocation the size of the whole document */
    const char *p = s, *q = s, *end = s + len;
    while ((q = memchr(q, '"', (size_t)(end - q))) != NULL) {
        const char *d = q + 1 + tlen;
        if ((size_t)(end - q) <= tlen + 2 || memcmp(q + 1, l->tag, tlen) != 0) {
            q++;
            continue;
        }
        const char *digits = d;
        size_t idx = 0;
        while (d < end && *d >= '0' && *d <= '9' && d - digits < 12)
            idx = idx * 10 + (size_t)(*d++ - '0');
        if (d == digits || d >= end || *d != '"') {
            q++; /* the tag, but not a marker */
            continue;
        }
        if (idx >= l->nraw)
            return false;
        buf_append(out, p, (size_t)(q - p));
        buf_append(out, l->raw[idx].p, l->raw[idx].len);
        p = q = d + 1;
    }
    buf_append(out, p, (size_t)(end - p));
    return true;
}
