/* test_names.c - name rules for orgs, projects, stacks, tags and update ids. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "unit.h"

START_TEST(test_org)
{
    ck_assert(name_valid_org("itlusions"));
    ck_assert(name_valid_org("a-b_c9"));
    ck_assert(!name_valid_org("ab"));
    ck_assert(!name_valid_org("-abc"));
    ck_assert(!name_valid_org("abc-"));
    ck_assert(!name_valid_org("a.bc"));
    ck_assert(!name_valid_org("a/bc"));
    ck_assert(!name_valid_org("01234567890123456789012345678901234567890"));
}
END_TEST

START_TEST(test_stack_project)
{
    ck_assert(name_valid_stack("dev"));
    ck_assert(name_valid_stack("a.b-c_d"));
    ck_assert(!name_valid_stack(""));
    ck_assert(!name_valid_stack(".."));
    ck_assert(!name_valid_stack("."));
    ck_assert(!name_valid_stack("a b"));
    ck_assert(!name_valid_stack("a/b"));
    ck_assert(!name_valid_stack("a%2e"));
    char long_name[102];
    memset(long_name, 'a', 101);
    long_name[101] = '\0';
    ck_assert(!name_valid_project(long_name));
    long_name[100] = '\0';
    ck_assert(name_valid_project(long_name));
}
END_TEST

START_TEST(test_uuid_tag)
{
    ck_assert(name_valid_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
    ck_assert(!name_valid_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
    ck_assert(!name_valid_uuid("0f8fad5b-d9cb-469f-a165-70867728950"));
    ck_assert(!name_valid_uuid("0f8fad5b-d9cb-469f-a165_70867728950e"));
    ck_assert(name_valid_tag("pulumi:project", "x"));
    ck_assert(name_valid_tag("vcs:root", ""));
    ck_assert(!name_valid_tag("", "x"));
    ck_assert(!name_valid_tag("a b", "x"));
    char big[300];
    memset(big, 'v', 299);
    big[299] = '\0';
    ck_assert(!name_valid_tag("k", big));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_org);
    tcase_add_test(tc, test_stack_project);
    tcase_add_test(tc, test_uuid_tag);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
