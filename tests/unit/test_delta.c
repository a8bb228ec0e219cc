/* test_delta.c - checkpointdelta edits: the CLI's own test vectors, and malformed deltas. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "delta.h"
#include "util.h"
#include "unit.h"

static DeltaResult apply(const char *base, const char *edits_json, const char *hash, char **out, size_t *len)
{
    json_t *edits = json_loads(edits_json, 0, NULL);
    ck_assert_ptr_nonnull(edits);
    char err[128];
    DeltaResult r = delta_apply(base, strlen(base), edits, hash, out, len, err, sizeof(err));
    json_decref(edits);
    return r;
}

static const char *hash_of(const char *s, char buf[65])
{
    sha256_hex(s, strlen(s), buf);
    return buf;
}

START_TEST(test_cli_vectors)
{
    json_error_t e;
    json_t *v = json_load_file(SHARED_TESTDATA_DIR "/snapshot_test_vectors.json", 0, &e);
    ck_assert_msg(v != NULL, "cannot load the test vectors: %s", e.text);
    char *state = xstrdup(json_string_value(json_object_get(v, "req1")));
    const char *reqs[] = {"req2", "req3", "req4"};
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof(key), "%s.hash", reqs[i]);
        char *out = NULL;
        size_t len = 0;
        DeltaResult r = apply(state, json_string_value(json_object_get(v, reqs[i])),
                              json_string_value(json_object_get(v, key)), &out, &len);
        ck_assert_int_eq(r, DELTA_OK);
        ck_assert_int_eq(len, strlen(out));
        free(state);
        state = out;
    }
    free(state);
    json_decref(v);
}
END_TEST

START_TEST(test_simple_edits)
{
    char h[65], *out;
    size_t len;
    /* replace the middle */
    ck_assert_int_eq(apply("hello world", "[{\"Span\":{\"start\":{\"offset\":6},\"end\":{\"offset\":11}},"
                                          "\"NewText\":\"there\"}]", hash_of("hello there", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "hello there");
    free(out);
    /* insertion at the end, deletion at the start */
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":0},\"end\":{\"offset\":1}},\"NewText\":\"\"},"
                                  "{\"Span\":{\"start\":{\"offset\":3},\"end\":{\"offset\":3}},\"NewText\":\"de\"}]",
                           hash_of("bcde", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "bcde");
    free(out);
    /* no edits: the base itself */
    ck_assert_int_eq(apply("same", "[]", hash_of("same", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "same");
    free(out);
    /* escaped text, upper-case hash */
    char upper[65];
    strcpy(upper, hash_of("a\"\\\nb", h));
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p -= 32;
    ck_assert_int_eq(apply("ab", "[{\"Span\":{\"start\":{\"offset\":1},\"end\":{\"offset\":1}},"
                                 "\"NewText\":\"\\\"\\\\\\n\"}]", upper, &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "a\"\\\nb");
    free(out);
}
END_TEST

START_TEST(test_legacy_line_column)
{
    char h[65], *out;
    size_t len;
    /* line 2 column 3 is "c" in "ab\ncd"; legacy edits may come unsorted */
    ck_assert_int_eq(apply("ab\ncd\n", "[{\"Span\":{\"start\":{\"line\":2,\"column\":2,\"offset\":-1},"
                                       "\"end\":{\"line\":2,\"column\":3,\"offset\":-1}},\"NewText\":\"X\"},"
                                       "{\"Span\":{\"start\":{\"line\":1,\"column\":1,\"offset\":-1},"
                                       "\"end\":{\"line\":1,\"column\":2,\"offset\":-1}},\"NewText\":\"Y\"}]",
                           hash_of("Yb\ncX\n", h), &out, &len), DELTA_OK);
    ck_assert_str_eq(out, "Yb\ncX\n");
    free(out);
    ck_assert_int_eq(apply("ab", "[{\"Span\":{\"start\":{\"line\":5,\"column\":1,\"offset\":-1},"
                                 "\"end\":{\"line\":5,\"column\":1,\"offset\":-1}},\"NewText\":\"X\"}]",
                           hash_of("x", h), &out, &len), DELTA_BAD_EDITS);
}
END_TEST

START_TEST(test_bad_edits)
{
    char h[65], *out = NULL;
    size_t len;
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":0},\"end\":{\"offset\":1}},\"NewText\":\"x\"}]",
                           hash_of("nope", h), &out, &len), DELTA_HASH_MISMATCH);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":2},\"end\":{\"offset\":9}},\"NewText\":\"\"}]",
                           hash_of("ab", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":2},\"end\":{\"offset\":1}},\"NewText\":\"\"}]",
                           hash_of("ab", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abcdef", "[{\"Span\":{\"start\":{\"offset\":0},\"end\":{\"offset\":3}},\"NewText\":\"\"},"
                                     "{\"Span\":{\"start\":{\"offset\":2},\"end\":{\"offset\":4}},\"NewText\":\"\"}]",
                           hash_of("ef", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":0}},\"NewText\":\"\"}]", hash_of("", h), &out, &len),
                     DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abc", "[{\"Span\":{\"start\":{\"offset\":0},\"end\":{\"offset\":1}},\"NewText\":5}]",
                           hash_of("", h), &out, &len), DELTA_BAD_EDITS);
    ck_assert_int_eq(apply("abc", "[\"x\"]", hash_of("", h), &out, &len), DELTA_BAD_EDITS);
    json_t *notarray = json_object();
    char err[64];
    ck_assert_int_eq(delta_apply("abc", 3, notarray, h, &out, &len, err, sizeof(err)), DELTA_BAD_EDITS);
    json_decref(notarray);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("delta");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cli_vectors);
    tcase_add_test(tc, test_simple_edits);
    tcase_add_test(tc, test_legacy_line_column);
    tcase_add_test(tc, test_bad_edits);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
