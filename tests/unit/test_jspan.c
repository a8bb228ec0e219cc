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
    Buf ids;
    int calls = 0;
    buf_init(&ids);
    const char *ok = "[{\"id\":3},{\"x\":[1],\"id\":7}]";
    ck_assert_int_eq(jspan_collect_ids(ok, strlen(ok), "id", 1, no_b, &calls, &ids), -1);
    ck_assert_str_eq(ids.data, "{3,7}");
    ck_assert_int_eq(calls, 2);
    buf_free(&ids);
    const char *bad[] = {"[{\"id\":3},{\"id\":0}]", "[{\"id\":3},7]", "[{\"id\":\"3\"}]",
                         "[{\"id\":3},{\"id\":4,\"b\":1}]", "[{\"id\":1.5}]"};
    long want[] = {1, 1, 0, 1, 0};
    for (int i = 0; i < 5; i++) {
        buf_init(&ids);
        ck_assert_int_eq(jspan_collect_ids(bad[i], strlen(bad[i]), "id", 1, no_b, &calls, &ids), want[i]);
        buf_free(&ids);
    }
    buf_init(&ids);
    ck_assert_int_eq(jspan_collect_ids("[]", 2, "id", 1, NULL, NULL, &ids), -1);
    ck_assert_str_eq(ids.data, "{}");
    buf_free(&ids);
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
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
