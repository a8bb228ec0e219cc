/* test_util.c - the integer parser every query string, header and body integer goes through, at its edges. */
#include <check.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "unit.h"

static bool parse(const char *s, long long min, long long max, long long *out)
{
    return parse_int64(s, -1, min, max, out);
}

START_TEST(test_parse_int64_edges)
{
    long long v = 42;
    ck_assert(parse("9223372036854775807", LLONG_MIN, LLONG_MAX, &v) && v == LLONG_MAX);
    ck_assert(parse("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v) && v == LLONG_MIN);
    ck_assert(parse("0", 0, 0, &v) && v == 0);
    ck_assert(parse("-0", 0, 0, &v) && v == 0);
    ck_assert(parse("007", 0, 10, &v) && v == 7);
    v = 42;
    ck_assert(!parse("9223372036854775808", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("-9223372036854775809", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("99999999999999999999999999", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("18446744073709551616", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("-", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("+1", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse(" 1", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("1 ", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("1e3", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("0x10", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("1.0", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse("--1", LLONG_MIN, LLONG_MAX, &v));
    ck_assert(!parse(NULL, LLONG_MIN, LLONG_MAX, &v));
    ck_assert_int_eq(v, 42); /* untouched on failure */
    /* The range, at its edges. */
    ck_assert(parse("-1", -1, 9223372036854775806LL, &v) && v == -1);
    ck_assert(!parse("-2", -1, 9223372036854775806LL, &v));
    ck_assert(parse("9223372036854775806", -1, 9223372036854775806LL, &v));
    ck_assert(!parse("9223372036854775807", -1, 9223372036854775806LL, &v));
    ck_assert(parse("1000", 1, 1000, &v) && !parse("1001", 1, 1000, &v) && !parse("0", 1, 1000, &v));
    /* A length bound: only the first len bytes count. */
    ck_assert(parse_int64("12345", 2, 0, 100, &v) && v == 12);
    ck_assert(!parse_int64("12345", 0, 0, 100, &v));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_int64_edges);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
