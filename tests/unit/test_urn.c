/* test_urn.c - stack rename rewriting of URNs and the service secrets state. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "urn.h"
#include "unit.h"

START_TEST(test_urn_rename)
{
    char *u = urn_rename("urn:pulumi:dev::proj::pulumi:Stash::a::b", "prod", "");
    ck_assert_str_eq(u, "urn:pulumi:prod::proj::pulumi:Stash::a::b");
    free(u);
    u = urn_rename("urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev", "prod", "p2");
    ck_assert_str_eq(u, "urn:pulumi:prod::p2::pulumi:pulumi:Stack::p2-prod");
    free(u);
    u = urn_rename("urn:pulumi:dev::proj::a:b:C$d:e:F::child", "prod", "");
    ck_assert_str_eq(u, "urn:pulumi:prod::proj::a:b:C$d:e:F::child");
    free(u);
    ck_assert_ptr_null(urn_rename("urn:other:dev::p::t::n", "prod", ""));
    ck_assert_ptr_null(urn_rename("urn:pulumi:dev::p", "prod", ""));
}
END_TEST

START_TEST(test_deployment)
{
    const char *text =
        "{\"secrets_providers\":{\"type\":\"service\",\"state\":{\"url\":\"http://x\",\"owner\":\"o\",\"project\":"
        "\"proj\",\"stack\":\"dev\"}},\"resources\":["
        "{\"urn\":\"urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev\"},"
        "{\"urn\":\"urn:pulumi:dev::proj::pulumi:providers:pulumi::default\",\"id\":\"abc\"},"
        "{\"urn\":\"urn:pulumi:dev::proj::pulumi:Stash::s\",\"parent\":\"urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev\","
        "\"provider\":\"urn:pulumi:dev::proj::pulumi:providers:pulumi::default::abc\","
        "\"dependencies\":[\"urn:pulumi:dev::proj::pulumi:Stash::t\"],"
        "\"propertyDependencies\":{\"input\":[\"urn:pulumi:dev::proj::pulumi:Stash::t\"]}}],"
        "\"pending_operations\":[{\"resource\":{\"urn\":\"urn:pulumi:dev::proj::pulumi:Stash::u\"},\"type\":\"creating\"}]}";
    json_t *d = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(d);
    ck_assert(urn_rename_deployment(d, "o", "prod", "proj"));
    json_t *r = json_array_get(json_object_get(d, "resources"), 2);
    ck_assert_str_eq(json_string_value(json_object_get(r, "urn")), "urn:pulumi:prod::proj::pulumi:Stash::s");
    ck_assert_str_eq(json_string_value(json_object_get(r, "parent")),
                     "urn:pulumi:prod::proj::pulumi:pulumi:Stack::proj-prod");
    ck_assert_str_eq(json_string_value(json_object_get(r, "provider")),
                     "urn:pulumi:prod::proj::pulumi:providers:pulumi::default::abc");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "dependencies"), 0)),
                     "urn:pulumi:prod::proj::pulumi:Stash::t");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(r, "propertyDependencies"), "input"), 0)),
                     "urn:pulumi:prod::proj::pulumi:Stash::t");
    json_t *op = json_array_get(json_object_get(d, "pending_operations"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(op, "resource"), "urn")),
                     "urn:pulumi:prod::proj::pulumi:Stash::u");
    json_t *st = json_object_get(json_object_get(d, "secrets_providers"), "state");
    ck_assert_str_eq(json_string_value(json_object_get(st, "stack")), "prod");
    ck_assert_str_eq(json_string_value(json_object_get(st, "url")), "http://x");
    json_decref(d);

    json_t *bad = json_loads("{\"resources\":[{\"urn\":\"not-a-urn\"}]}", 0, NULL);
    ck_assert(!urn_rename_deployment(bad, "o", "prod", "proj"));
    json_decref(bad);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("urn");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_urn_rename);
    tcase_add_test(tc, test_deployment);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
