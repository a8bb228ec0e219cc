/* test_jspan.c - the validating JSON span scanner. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jspan.h"
#include "unit.h"

static bool valid(const char *s)
{
    return jspan_validate(s, strlen(s));
}

START_TEST(test_validate)
{
    ck_assert(valid("{}"));
    ck_assert(valid(" [1, -2.5e+3, \"a\\u00e9\\n\", true, false, null, {\"k\": []}] "));
    ck_assert(valid("0"));
    ck_assert(!valid(""));
    ck_assert(!valid("{"));
    ck_assert(!valid("{\"a\":1,}"));
    ck_assert(!valid("[1 2]"));
    ck_assert(!valid("01"));
    ck_assert(!valid("\"\\x\""));
    ck_assert(!valid("\"a\nb\""));
    ck_assert(!valid("{} {}"));
    ck_assert(!valid("nul"));
    ck_assert(!valid("\"\\u12\""));
    ck_assert(!valid("1."));
}
END_TEST

START_TEST(test_depth)
{
    char deep[2000];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    ck_assert(!jspan_validate(deep, sizeof(deep)));
    ck_assert(jspan_validate(deep + 500, 1000));
}
END_TEST

START_TEST(test_member)
{
    const char *s = "{\"version\":3,\"x\":{\"deployment\":1},\"deployment\": {\"resources\":[{},{\"a\":[1,2]},3]} }";
    size_t a, b;
    ck_assert(jspan_member(s, strlen(s), "version", &a, &b));
    ck_assert_int_eq(b - a, 1);
    ck_assert(jspan_member(s, strlen(s), "deployment", &a, &b));
    ck_assert(strncmp(s + a, "{\"resources\"", 12) == 0);
    size_t c, d;
    ck_assert(jspan_member(s + a, b - a, "resources", &c, &d));
    ck_assert_int_eq(jspan_array_count(s + a + c, d - c), 3);
    ck_assert(!jspan_member(s, strlen(s), "missing", &a, &b));
    ck_assert_int_eq(jspan_array_count("[]", 2), 0);
    ck_assert_int_eq(jspan_array_count("{}", 2), -1);
    ck_assert(jspan_is_null(" null ", 6));
    ck_assert(!jspan_is_null("nullx", 5));
}
END_TEST

START_TEST(test_iterate)
{
    const char *s = " [ {\"a\":1} , 22,\"x,y\" ,[3]] ";
    size_t pos = 0, a, b;
    const char *want[] = {"{\"a\":1}", "22", "\"x,y\"", "[3]"};
    int n = 0;
    while (jspan_array_next(s, strlen(s), &pos, &a, &b)) {
        ck_assert_int_lt(n, 4);
        ck_assert_int_eq(b - a, strlen(want[n]));
        ck_assert(strncmp(s + a, want[n], b - a) == 0);
        n++;
    }
    ck_assert_int_eq(n, 4);
    pos = 0;
    ck_assert(!jspan_array_next("[]", 2, &pos, &a, &b));
    long long v;
    ck_assert(jspan_int("-42", 3, &v) && v == -42);
    ck_assert(jspan_int("0", 1, &v) && v == 0);
    ck_assert(!jspan_int("1.5", 3, &v));
    ck_assert(!jspan_int("", 0, &v));
    ck_assert(!jspan_int("1234567890123456789", 19, &v));
}
END_TEST

static bool no_b(const char *e, size_t len, void *arg)
{
    size_t a, z;
    (*(int *)arg)++;
    return !jspan_member(e, len, "b", &a, &z);
}

START_TEST(test_collect_ids)
{
    JspanIds ids = {0};
    int calls = 0;
    const char *ok = "[{\"id\":3},{\"x\":[1],\"id\":7}]";
    ck_assert_int_eq(jspan_collect_ids(ok, strlen(ok), "id", 1, no_b, &calls, &ids), -1);
    ck_assert_int_eq(ids.n, 2);
    ck_assert_int_eq(ids.ids[0], 3);
    ck_assert_int_eq(ids.ids[1], 7);
    ck_assert_int_eq(ids.spans[1].len, strlen("{\"x\":[1],\"id\":7}"));
    ck_assert(memcmp(ids.spans[1].p, "{\"x\":[1],\"id\":7}", ids.spans[1].len) == 0);
    ck_assert_int_eq(calls, 2);
    jspan_ids_free(&ids);
    const char *bad[] = {"[{\"id\":3},{\"id\":0}]", "[{\"id\":3},7]", "[{\"id\":\"3\"}]",
                         "[{\"id\":3},{\"id\":4,\"b\":1}]", "[{\"id\":1.5}]"};
    long want[] = {1, 1, 0, 1, 0};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(jspan_collect_ids(bad[i], strlen(bad[i]), "id", 1, no_b, &calls, &ids), want[i]);
        jspan_ids_free(&ids);
    }
    ck_assert_int_eq(jspan_collect_ids("[]", 2, "id", 1, NULL, NULL, &ids), -1);
    ck_assert_int_eq(ids.n, 0);
    jspan_ids_free(&ids);
}
END_TEST

/* The eight-bytes-at-a-time string path: every special byte at every position of a long run. */
START_TEST(test_long_strings)
{
    char s[64];
    const char specials[] = {'"', '\\', '\n', '\x01', '\x1f', (char)0xc3};
    for (size_t at = 1; at < 40; at++)
        for (size_t k = 0; k < sizeof(specials); k++) {
            memset(s, 'a', sizeof(s));
            s[0] = '"';
            s[at] = specials[k];
            s[50] = '"';
            bool expect = false; /* a raw quote ends the string early, the others are invalid here */
            ck_assert_msg(jspan_validate(s, 51) == expect, "byte %02x at %zu", (unsigned char)specials[k], at);
        }
    memset(s, 'a', sizeof(s));
    s[0] = '"';
    s[50] = '"';
    ck_assert(jspan_validate(s, 51));
    memcpy(s + 20, "\\\\\\\"\xc3\xa9", 6); /* \\ \" and a two-byte character */
    ck_assert(jspan_validate(s, 51));
}
END_TEST

START_TEST(test_lean)
{
    const char *doc = "{\"resources\":[{\"urn\":\"u1\",\"inputs\":{\"big\":\"0123456789\",\"outputs\":{\"x\":1}},"
                      "\"outputs\":[1,2,3,4,5,6,7,8,9]},{\"urn\":\"u2\",\"inputs\":{}}],\"outputs\":\"a string\"}";
    static const char *const keys[] = {"inputs", "outputs", NULL};
    Buf lean_text, back;
    buf_init(&lean_text);
    buf_init(&back);
    JspanLean l = {.keys = keys, .min = 3, .tag = "T-", .out = &lean_text};
    ck_assert(jspan_lean(&l, doc, strlen(doc)));
    /* The nested "outputs" inside a value set aside is not set aside on its own; {} is too small;
     * a string is never set aside. */
    ck_assert_int_eq(l.nraw, 2);
    ck_assert_str_eq(lean_text.data, "{\"resources\":[{\"urn\":\"u1\",\"inputs\":\"T-0\",\"outputs\":\"T-1\"},"
                                     "{\"urn\":\"u2\",\"inputs\":{}}],\"outputs\":\"a string\"}");
    ck_assert(jspan_unlean(&l, lean_text.data, lean_text.len, &back));
    ck_assert_str_eq(back.data, doc);
    /* Set-aside values may be spliced in any number of times, in any place. */
    back.len = 0;
    const char *moved = "[\"T-1\",\"T-1\",{\"k\":\"T-0\"},\"T-\",\"T-x\"]";
    ck_assert(jspan_unlean(&l, moved, strlen(moved), &back));
    ck_assert_str_eq(back.data, "[[1,2,3,4,5,6,7,8,9],[1,2,3,4,5,6,7,8,9],{\"k\":{\"big\":\"0123456789\",\"outputs\":"
                                "{\"x\":1}}},\"T-\",\"T-x\"]");
    /* An index that was never set aside is refused. */
    back.len = 0;
    ck_assert(!jspan_unlean(&l, "\"T-7\"", 5, &back));
    /* Invalid JSON is refused. */
    lean_text.len = 0;
    ck_assert(!jspan_lean(&l, "{\"inputs\":{", 12));
    free(l.raw);
    buf_free(&lean_text);
    buf_free(&back);
}
END_TEST

START_TEST(test_lean_numbers)
{
    /* Numbers a tree would change are set aside wherever they are; exact ones stay; a small value
     * under a lean key that holds one is set aside whole. */
    const char *doc = "{\"a\":100000000000000000000,\"b\":[-0,0,-1,123456789012345678,1234567890123456789,1.5,"
                      "2e3,-7E-1],\"inputs\":{\"x\":1e20},\"outputs\":{\"y\":12},\"s\":\"1e20 -0\"}";
    static const char *const keys[] = {"inputs", "outputs", NULL};
    Buf lean_text, back;
    buf_init(&lean_text);
    buf_init(&back);
    JspanLean l = {.keys = keys, .min = 64, .tag = "T-", .out = &lean_text};
    ck_assert(jspan_lean(&l, doc, strlen(doc)));
    ck_assert_str_eq(lean_text.data, "{\"a\":\"T-0\",\"b\":[\"T-1\",0,-1,123456789012345678,\"T-2\",\"T-3\","
                                     "\"T-4\",\"T-5\"],\"inputs\":\"T-6\",\"outputs\":{\"y\":12},"
                                     "\"s\":\"1e20 -0\"}");
    ck_assert(jspan_unlean(&l, lean_text.data, lean_text.len, &back));
    ck_assert_str_eq(back.data, doc);
    free(l.raw);
    buf_free(&lean_text);
    buf_free(&back);
}
END_TEST

START_TEST(test_object_next)
{
    const char *o = " { \"a\" : 1 , \"b\\\"c\":[2,3],\"d\":{}} ";
    size_t pos = 0, ks, ke, vs, ve;
    ck_assert(jspan_object_next(o, strlen(o), &pos, &ks, &ke, &vs, &ve));
    ck_assert_int_eq(ke - ks, 1);
    ck_assert(!strncmp(o + vs, "1", ve - vs));
    ck_assert(jspan_object_next(o, strlen(o), &pos, &ks, &ke, &vs, &ve));
    ck_assert(!strncmp(o + ks, "b\\\"c", ke - ks));
    ck_assert(!strncmp(o + vs, "[2,3]", ve - vs));
    ck_assert(jspan_object_next(o, strlen(o), &pos, &ks, &ke, &vs, &ve));
    ck_assert(!strncmp(o + vs, "{}", ve - vs));
    ck_assert(!jspan_object_next(o, strlen(o), &pos, &ks, &ke, &vs, &ve));
    pos = 0;
    ck_assert(!jspan_object_next("{}", 2, &pos, &ks, &ke, &vs, &ve));
    pos = 0;
    ck_assert(!jspan_object_next("[1]", 3, &pos, &ks, &ke, &vs, &ve));
}
END_TEST

START_TEST(test_keys_plain_unique)
{
    ck_assert(jspan_keys_plain_unique("{}", 2));
    const char *ok = " {\"a\":1, \"ab\":{\"a\":1,\"a\":2}, \"b\":\"\\u0061\"}";
    ck_assert(jspan_keys_plain_unique(ok, strlen(ok)));
    const char *dup = "{\"a\":1,\"b\":2,\"a\":3}";
    ck_assert(!jspan_keys_plain_unique(dup, strlen(dup)));
    const char *esc = "{\"\\u0061\":1}";
    ck_assert(!jspan_keys_plain_unique(esc, strlen(esc)));
    Buf b;
    buf_init(&b);
    buf_puts(&b, "{");
    for (int i = 0; i <= JSPAN_MAX_KEYS; i++)
        buf_printf(&b, "%s\"k%d\":0", i ? "," : "", i);
    buf_puts(&b, "}");
    ck_assert(!jspan_keys_plain_unique(b.data, b.len));
    buf_free(&b);
    /* The spans of chosen keys from the same pass. */
    static const char *const keys[] = {"ab", "zz", "a"};
    size_t at[3], to[3];
    ck_assert(jspan_members(ok, strlen(ok), keys, 3, at, to));
    ck_assert_int_eq(to[0] - at[0], strlen("{\"a\":1,\"a\":2}"));
    ck_assert(at[1] == (size_t)-1 && to[1] == (size_t)-1);
    ck_assert(ok[at[2]] == '1' && to[2] == at[2] + 1);
    ck_assert(!jspan_members(dup, strlen(dup), keys, 3, at, to));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jspan");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_member);
    tcase_add_test(tc, test_iterate);
    tcase_add_test(tc, test_collect_ids);
    tcase_add_test(tc, test_long_strings);
    tcase_add_test(tc, test_lean);
    tcase_add_test(tc, test_lean_numbers);
    tcase_add_test(tc, test_object_next);
    tcase_add_test(tc, test_keys_plain_unique);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
