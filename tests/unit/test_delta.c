/* test_delta.c - checkpointdelta edits: the CLI's own test vectors, then well-formed and malformed deltas. */
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delta.h"
#include "util.h"
#include "unit.h"

/* Lowercase hex SHA-256 of len bytes of s, into buf. */
static const char *sha_hex(const char *s, size_t len, char buf[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ck_assert(EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL));
    ck_assert_uint_eq(mdlen, 32);
    hex_encode(md, mdlen, buf);
    return buf;
}

static const char *hash_of(const char *s, char buf[65])
{
    return sha_hex(s, strlen(s), buf);
}

/* Apply edits_json (a JSON array text) to base; *out is set only on DELTA_OK. */
static DeltaResult apply(const char *base, const char *edits_json, const char *hash, char **out, size_t *len)
{
    json_error_t e;
    json_t *edits = json_loads(edits_json, JSON_ALLOW_NUL, &e);
    ck_assert_msg(edits != NULL, "bad test edits: %s", e.text);
    char err[128] = "";
    DeltaResult r = delta_apply(base, strlen(base), edits, hash, out, len, err, sizeof(err));
    if (r != DELTA_OK)
        ck_assert_msg(err[0] != '\0', "a failure must say why");
    json_decref(edits);
    return r;
}

/* An edit replacing [s, e) with text (already JSON-escaped). */
#define EDIT(s, e, text)                                                                                               \
    "{\"Span\":{\"uri\":\"\",\"start\":{\"line\":1,\"column\":1,\"offset\":" #s "},"                                   \
    "\"end\":{\"line\":1,\"column\":1,\"offset\":" #e "}},\"NewText\":\"" text "\"}"
/* A legacy edit: 1-based line/column, offset -1. */
#define LEDIT(l1, c1, l2, c2, text)                                                                                    \
    "{\"Span\":{\"start\":{\"line\":" #l1 ",\"column\":" #c1 ",\"offset\":-1},"                                        \
    "\"end\":{\"line\":" #l2 ",\"column\":" #c2 ",\"offset\":-1}},\"NewText\":\"" text "\"}"

START_TEST(test_cli_vectors)
{
    json_error_t e;
    json_t *v = json_load_file(SHARED_TESTDATA_DIR "/snapshot_test_vectors.json", 0, &e);
    ck_assert_msg(v != NULL, "cannot load the test vectors: %s", e.text);
    json_t *req1 = json_object_get(v, "req1");
    ck_assert(json_is_string(req1));
    char *state = xstrndup(json_string_value(req1), json_string_length(req1));
    size_t statelen = json_string_length(req1);
    const char *reqs[] = {"req2", "req3", "req4"};
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        char key[16], err[128] = "";
        snprintf(key, sizeof(key), "%s.hash", reqs[i]);
        const char *text = json_string_value(json_object_get(v, reqs[i]));
        const char *hash = json_string_value(json_object_get(v, key));
        ck_assert_ptr_nonnull(text);
        ck_assert_ptr_nonnull(hash);
        json_t *edits = json_loads(text, 0, &e);
        ck_assert_msg(edits != NULL, "%s does not parse: %s", reqs[i], e.text);
        char *out = NULL;
        size_t len = 0;
        DeltaResult r = delta_apply(state, statelen, edits, hash, &out, &len, err, sizeof(err));
        ck_assert_msg(r == DELTA_OK, "%s: %s", reqs[i], err);
        ck_assert_uint_eq(len, strlen(out));
        char got[65];
        ck_assert_str_eq(sha_hex(out, len, got), hash);
        json_decref(edits);
        free(state);
        state = out;
        statelen = len;
    }
    /* The last state is a version 4 deployment declaring refreshBeforeUpdate. */
    json_t *last = json_loadb(state, statelen, 0, &e);
    ck_assert_msg(last != NULL, "final state does not parse: %s", e.text);
    ck_assert_int_eq(json_integer_value(json_object_get(last, "version")), 4);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(last, "features"), 0)), "refreshBeforeUpdate");
    json_t *res = json_object_get(json_object_get(last, "deployment"), "resources");
    ck_assert_uint_eq(json_array_size(res), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res, 0), "urn")), "urn-1");
    json_decref(last);
    free(state);
    json_decref(v);
}
END_TEST

START_TEST(test_replace_middle)
{
    char h[65], *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(apply("hello world", "[" EDIT(6, 11, "there") "]", hash_of("hello there", h), &out, &len),
                     DELTA_OK);
    ck_assert_str_eq(out, "hello there");
    ck_assert_uint_eq(len, 11);
    free(out);
}
END_TEST

START_TEST(test_empty_edit_list)
{
    char h[65], *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(apply("{\"a\":1}", "[]", hash_of("{\"a\":1}", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "{\"a\":1}");
    ck_assert_uint_eq(len, 7);
    free(out);
    /* an empty base with no edits is the empty text */
    ck_assert_int_eq(apply("", "[]", hash_of("", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(len, 0);
    free(out);
}
END_TEST

START_TEST(test_insert_at_end)
{
    char h[65], *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(apply("[1,2]", "[" EDIT(4, 4, ",3") "]", hash_of("[1,2,3]", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "[1,2,3]");
    free(out);
    ck_assert_int_eq(apply("abc", "[" EDIT(3, 3, "def") "]", hash_of("abcdef", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "abcdef");
    free(out);
}
END_TEST

START_TEST(test_delete_only)
{
    char h[65], *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(apply("[1,2,3]", "[" EDIT(2, 4, "") "]", hash_of("[1,3]", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "[1,3]");
    free(out);
    /* everything */
    ck_assert_int_eq(apply("abc", "[" EDIT(0, 3, "") "]", hash_of("", h), &out, &len), DELTA_OK);
    ck_assert_uint_eq(len, 0);
    free(out);
}
END_TEST

START_TEST(test_several_edits)
{
    char h[65], *out = NULL;
    size_t len = 0;
    /* delete at the start, insert in the middle, replace at the end; an insertion at the
     * start of the following replacement comes first */
    ck_assert_int_eq(apply("0123456789",
                           "[" EDIT(0, 2, "") "," EDIT(5, 5, "x") "," EDIT(8, 8, "<") "," EDIT(8, 10, "Z") "]",
                           hash_of("234x567<Z", h), &out, &len),
                     DELTA_OK);
    ck_assert_str_eq(out, "234x567<Z");
    free(out);
}
END_TEST

START_TEST(test_escapes_and_nul)
{
    char h[65], *out = NULL;
    size_t len = 0;
    /* escaped quotes, backslashes, newlines and non-ASCII arrive as UTF-8 bytes */
    ck_assert_int_eq(apply("ab", "[" EDIT(1, 1, "\\\"\\\\\\n\\u00e9") "]",
                           hash_of("a\"\\\n\xc3\xa9"
                                   "b",
                                   h),
                           &out, &len),
                     DELTA_OK);
    ck_assert_str_eq(out, "a\"\\\n\xc3\xa9"
                          "b");
    free(out);
    /* an embedded NUL is kept: length comes from the JSON string, not strlen */
    const char want[] = {'a', 'x', '\0', 'y', 'b'};
    ck_assert_int_eq(apply("ab", "[" EDIT(1, 1, "x\\u0000y") "]", sha_hex(want, sizeof(want), h), &out, &len),
                     DELTA_OK);
    ck_assert_uint_eq(len, sizeof(want));
    ck_assert(memcmp(out, want, sizeof(want)) == 0);
    ck_assert_int_eq(out[len], '\0');
    free(out);
}
END_TEST

START_TEST(test_upper_case_hash)
{
    char h[65], *out = NULL;
    size_t len = 0;
    hash_of("xbc", h);
    for (char *p = h; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    ck_assert_int_eq(apply("abc", "[" EDIT(0, 1, "x") "]", h, &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "xbc");
    free(out);
}
END_TEST

START_TEST(test_hash_mismatch)
{
    char h[65], *out = NULL;
    size_t len = 7;
    ck_assert_int_eq(apply("abc", "[" EDIT(0, 1, "x") "]", hash_of("abc", h), &out, &len), DELTA_HASH_MISMATCH);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(len, 0);
    /* a truncated or missing hash never matches */
    ck_assert_int_eq(apply("abc", "[]", "ba7816bf", &out, &len), DELTA_HASH_MISMATCH);
    ck_assert_int_eq(apply("abc", "[]", "", &out, &len), DELTA_HASH_MISMATCH);
    ck_assert_ptr_null(out);
    /* no hash: edits verified when they arrived, applied again unchecked */
    json_t *none = json_array();
    ck_assert_int_eq(delta_apply("abc", 3, none, NULL, &out, &len, NULL, 0), DELTA_OK);
    ck_assert_str_eq(out, "abc");
    free(out);
    json_decref(none);
}
END_TEST

START_TEST(test_out_of_range)
{
    char h[65], *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(apply("abc", "[" EDIT(2, 4, "") "]", hash_of("ab", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abc", "[" EDIT(4, 4, "d") "]", hash_of("abcd", h), &out, &len), DELTA_BAD_EDITS);
    /* end before start */
    ck_assert_int_eq(apply("abc", "[" EDIT(2, 1, "") "]", hash_of("ab", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_overlapping)
{
    char h[65], *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(apply("abcdef", "[" EDIT(0, 3, "") "," EDIT(2, 4, "") "]", hash_of("ef", h), &out, &len),
                     DELTA_BAD_EDITS);
    /* an insertion inside an earlier replacement */
    ck_assert_int_eq(apply("abcdef", "[" EDIT(1, 4, "X") "," EDIT(2, 2, "Y") "]", hash_of("aXYef", h), &out, &len),
                     DELTA_BAD_EDITS);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_malformed)
{
    char h[65], *out = NULL, err[64];
    size_t len = 0;
    hash_of("", h);
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":0}},\"NewText\":\"\"}]", h, &out, &len),
                     DELTA_BAD_EDITS);
    ck_assert_int_eq(
        apply("abc", "[{\"Span\":{\"start\":{\"offset\":0},\"end\":{\"offset\":1}},\"NewText\":5}]", h, &out, &len),
        DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":0},\"end\":{\"offset\":1}}}]", h, &out, &len),
                     DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":\"0\"},\"end\":{\"offset\":1}},\"NewText\":\"\"}]",
                           h, &out, &len),
                     DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abc", "[\"x\"]", h, &out, &len), DELTA_BAD_EDITS);
    json_t *notarray = json_object();
    ck_assert_int_eq(delta_apply("abc", 3, notarray, h, &out, &len, err, sizeof(err)), DELTA_BAD_EDITS);
    json_decref(notarray);
    ck_assert_int_eq(delta_apply("abc", 3, NULL, h, &out, &len, NULL, 0), DELTA_BAD_EDITS);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_legacy_line_column)
{
    char h[65], *out = NULL;
    size_t len = 0;
    /* line 2 column 2 is "d" in "ab\ncd\n"; legacy edits may arrive unsorted */
    ck_assert_int_eq(apply("ab\ncd\n", "[" LEDIT(2, 2, 2, 3, "X") "," LEDIT(1, 1, 1, 2, "Y") "]",
                           hash_of("Yb\ncX\n", h), &out, &len),
                     DELTA_OK);
    ck_assert_str_eq(out, "Yb\ncX\n");
    free(out);
    /* a whole line replaced, and the empty last line (after the final newline) appended to */
    ck_assert_int_eq(apply("ab\ncd\n", "[" LEDIT(1, 1, 2, 1, "") "," LEDIT(3, 1, 3, 1, "ef\\n") "]",
                           hash_of("cd\nef\n", h), &out, &len),
                     DELTA_OK);
    ck_assert_str_eq(out, "cd\nef\n");
    free(out);
    /* no offset at all is the legacy form too */
    ck_assert_int_eq(apply("ab\ncd",
                           "[{\"Span\":{\"start\":{\"line\":2,\"column\":1},\"end\":{\"line\":2,\"column\":3}},"
                           "\"NewText\":\"Z\"}]",
                           hash_of("ab\nZ", h), &out, &len),
                     DELTA_OK);
    ck_assert_str_eq(out, "ab\nZ");
    free(out);
    /* lines past the end, column 0, and a column past the end of the text */
    ck_assert_int_eq(apply("ab", "[" LEDIT(5, 1, 5, 1, "X") "]", hash_of("abX", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("ab", "[" LEDIT(1, 0, 1, 1, "X") "]", hash_of("Xab", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("ab", "[" LEDIT(1, 9, 1, 9, "X") "]", hash_of("abX", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_large_base_is_linear)
{
    /* 4 MB base, 20,000 small edits: finishes quickly and reproduces the expected text */
    size_t n = 4u << 20, nedits = 20000, step = n / nedits;
    char *base = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        base[i] = (char)('a' + i % 26);
    base[n] = '\0';
    json_t *edits = json_array();
    Buf want;
    buf_init(&want);
    size_t last = 0;
    for (size_t k = 0; k < nedits; k++) {
        size_t s = k * step, e = s + 3;
        buf_append(&want, base + last, s - last);
        buf_puts(&want, "Q");
        last = e;
        json_array_append_new(edits, json_pack("{s:{s:{s:I},s:{s:I}},s:s}", "Span", "start", "offset", (json_int_t)s,
                                               "end", "offset", (json_int_t)e, "NewText", "Q"));
    }
    buf_append(&want, base + last, n - last);
    char h[65], *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(delta_apply(base, n, edits, sha_hex(want.data, want.len, h), &out, &len, NULL, 0), DELTA_OK);
    ck_assert_uint_eq(len, want.len);
    ck_assert(memcmp(out, want.data, len) == 0);
    free(out);
    buf_free(&want);
    json_decref(edits);
    free(base);
}
END_TEST

/* Several offset-form deltas applied together give what applying them one by one gives. */
START_TEST(test_chain_equals_one_by_one)
{
    srand(7);
    for (int round = 0; round < 500; round++) {
        char *doc = xstrdup("{\"resources\":[{\"urn\":\"a\"},{\"urn\":\"b\"}],\"x\":\"é\"}");
        size_t len = strlen(doc);
        char *base = xstrndup(doc, len);
        size_t baselen = len;
        json_t *deltas[8];
        int n = 1 + rand() % 8;
        for (int d = 0; d < n; d++) {
            json_t *edits = json_array();
            size_t at = 0;
            int k = rand() % 3;
            for (int i = 0; i < k && at <= len; i++) {
                size_t s0 = at + (size_t)rand() % (len - at + 1);
                size_t e0 = s0 + (size_t)rand() % (len - s0 + 1);
                if (e0 - s0 > 6)
                    e0 = s0 + 6;
                const char *texts[] = {"", "zz", "{\"urn\":\"c\"},", "12345"};
                json_array_append_new(edits,
                                      json_pack("{s:{s:{s:I},s:{s:I}},s:s}", "Span", "start", "offset", (json_int_t)s0,
                                                "end", "offset", (json_int_t)e0, "NewText", texts[rand() % 4]));
                at = e0;
            }
            char *next;
            size_t nextlen;
            ck_assert_int_eq(delta_apply(doc, len, edits, NULL, &next, &nextlen, NULL, 0), DELTA_OK);
            /* in place: a wrong hash leaves the document as it was; the right one gives the same bytes */
            Buf in;
            buf_init(&in);
            buf_append(&in, doc, len);
            char h[65];
            ck_assert_int_eq(delta_apply_inplace(&in, edits, "00", NULL, 0), DELTA_HASH_MISMATCH);
            ck_assert(in.len == len && !memcmp(in.data, doc, len));
            ck_assert_int_eq(delta_apply_inplace(&in, edits, sha_hex(next, nextlen, h), NULL, 0), DELTA_OK);
            ck_assert(in.len == nextlen && !memcmp(in.data, next, nextlen) && in.data[in.len] == '\0');
            buf_free(&in);
            free(doc);
            doc = next;
            len = nextlen;
            deltas[d] = edits;
        }
        char *out;
        size_t outlen;
        ck_assert_int_eq(delta_apply_chain(base, baselen, deltas, (size_t)n, &out, &outlen), DELTA_OK);
        ck_assert_uint_eq(outlen, len);
        ck_assert(!memcmp(out, doc, len));
        free(out);
        for (int d = 0; d < n; d++)
            json_decref(deltas[d]);
        free(doc);
        free(base);
    }
    /* a later edit that grows the document before an earlier one shrinks it, in a buffer with no
     * room to spare: the bytes never run past the buffer on the way (ASan watches) */
    {
        Buf in = {.data = xstrdup("aaaaaaaaaaZ"), .len = 11, .cap = 12};
        json_t *edits = json_loads("[{\"Span\":{\"start\":{\"offset\":0},\"end\":{\"offset\":10}},\"NewText\":\"\"},"
                                   "{\"Span\":{\"start\":{\"offset\":11},\"end\":{\"offset\":11}},"
                                   "\"NewText\":\"bbbbbbbbbb\"}]",
                                   0, NULL);
        char h[65];
        ck_assert_int_eq(delta_apply_inplace(&in, edits, hash_of("Zbbbbbbbbbb", h), NULL, 0), DELTA_OK);
        ck_assert_str_eq(in.data, "Zbbbbbbbbbb");
        json_decref(edits);
        buf_free(&in);
    }
    /* the legacy line/column form is left to the one-by-one path */
    json_t *legacy = json_loads("[{\"Span\":{\"start\":{\"line\":1,\"column\":1},\"end\":{\"line\":1,"
                                "\"column\":2}},\"NewText\":\"x\"}]",
                                0, NULL);
    char *out;
    size_t outlen;
    ck_assert_int_eq(delta_apply_chain("abc", 3, &legacy, 1, &out, &outlen), DELTA_BAD_EDITS);
    json_decref(legacy);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("delta");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cli_vectors);
    tcase_add_test(tc, test_replace_middle);
    tcase_add_test(tc, test_empty_edit_list);
    tcase_add_test(tc, test_insert_at_end);
    tcase_add_test(tc, test_delete_only);
    tcase_add_test(tc, test_several_edits);
    tcase_add_test(tc, test_escapes_and_nul);
    tcase_add_test(tc, test_upper_case_hash);
    tcase_add_test(tc, test_hash_mismatch);
    tcase_add_test(tc, test_out_of_range);
    tcase_add_test(tc, test_overlapping);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_legacy_line_column);
    tcase_add_test(tc, test_large_base_is_linear);
    tcase_add_test(tc, test_chain_equals_one_by_one);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
