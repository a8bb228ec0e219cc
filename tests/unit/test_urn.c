/* test_urn.c - stack rename rewriting of URNs and the service secrets state, on the stored text. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "urn.h"
#include "unit.h"

START_TEST(test_urn_rename)
{
    char *u = urn_rename("urn:pulumi:dev::proj::pulumi:Stash::a::b", "dev", "proj", "prod", "");
    ck_assert_str_eq(u, "urn:pulumi:prod::proj::pulumi:Stash::a::b");
    free(u);
    u = urn_rename("urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev", NULL, NULL, "prod", "p2");
    ck_assert_str_eq(u, "urn:pulumi:prod::p2::pulumi:pulumi:Stack::p2-prod");
    free(u);
    u = urn_rename("urn:pulumi:dev::proj::a:b:C$d:e:F::child", "dev", NULL, "prod", "");
    ck_assert_str_eq(u, "urn:pulumi:prod::proj::a:b:C$d:e:F::child");
    free(u);
    ck_assert_ptr_null(urn_rename("urn:other:dev::p::t::n", NULL, NULL, "prod", ""));
    ck_assert_ptr_null(urn_rename("urn:pulumi:dev::p", NULL, NULL, "prod", ""));
    /* Another stack's or project's URN is left alone. */
    ck_assert_ptr_null(urn_rename("urn:pulumi:dev2::proj::t::n", "dev", "proj", "prod", ""));
    ck_assert_ptr_null(urn_rename("urn:pulumi:dev::proj2::t::n", "dev", "proj", "prod", ""));
    ck_assert_ptr_null(urn_rename("urn:pulumi:de::proj::t::n", "dev", "proj", "prod", ""));
}
END_TEST

static char *renamed(const char *doc, UrnResult want)
{
    Buf out;
    buf_init(&out);
    ck_assert_int_eq(urn_rename_state(doc, strlen(doc), "dev", "proj", "o2", "prod", "", &out), want);
    return buf_steal(&out, NULL);
}

#define D "urn:pulumi:dev::proj::"
#define P "urn:pulumi:prod::proj::"

START_TEST(test_state)
{
    const char *doc =
        "{\"version\":3,\"deployment\":{\"manifest\":{\"version\":\"v3\"},"
        "\"secrets_providers\":{\"type\":\"service\",\"state\":{\"url\":\"http://x\",\"owner\":\"o\",\"project\":"
        "\"proj\",\"stack\":\"dev\"}},\"resources\":["
        "{\"urn\":\"" D "pulumi:pulumi:Stack::proj-dev\",\"outputs\":{\"big\":100000000000000000000,\"f\":1.50,"
        "\"z\":-0,\"e\":1E+400}},"
        "{\"urn\":\"" D "pulumi:providers:pulumi::default\",\"id\":\"abc\"},"
        "{\"urn\":\"" D "pulumi:Stash::s\",\"parent\":\"" D "pulumi:pulumi:Stack::proj-dev\","
        "\"provider\":\"" D "pulumi:providers:pulumi::default::abc\","
        "\"dependencies\":[\"" D "pulumi:Stash::t\"],\"replaceWith\":[\"" D "pulumi:Stash::t\"],"
        "\"aliases\":[\"" D "pulumi:Stash::old\"],\"viewOf\":\"" D "pulumi:Stash::t\","
        "\"deletedWith\":\"" D "pulumi:Stash::t\","
        "\"propertyDependencies\":{\"input\":[\"" D "pulumi:Stash::t\"]},"
        "\"inputs\":{\"plain\":\"" D "pulumi:Stash::t\",\"ref\":{\"4dabf18193072939515e22adb298388d\":"
        "\"5cf8f73096256a8f31e491e813e4eb8e\",\"urn\":\"" D "pulumi:Stash::t\",\"n\":12345678901234567890123}},"
        "\"outputs\":{\"list\":[{\"4dabf18193072939515e22adb298388d\":\"5cf8f73096256a8f31e491e813e4eb8e\","
        "\"urn\":\"" D "pulumi\\u003cx\\u003e::n\"}]}}],"
        "\"pending_operations\":[{\"resource\":{\"urn\":\"" D "pulumi:Stash::u\"},\"type\":\"creating\"}]}}";
    const char *want =
        "{\"version\":3,\"deployment\":{\"manifest\":{\"version\":\"v3\"},"
        "\"secrets_providers\":{\"type\":\"service\",\"state\":{\"url\":\"http://x\",\"owner\":\"o2\",\"project\":"
        "\"proj\",\"stack\":\"prod\"}},\"resources\":["
        "{\"urn\":\"" P "pulumi:pulumi:Stack::proj-prod\",\"outputs\":{\"big\":100000000000000000000,\"f\":1.50,"
        "\"z\":-0,\"e\":1E+400}},"
        "{\"urn\":\"" P "pulumi:providers:pulumi::default\",\"id\":\"abc\"},"
        "{\"urn\":\"" P "pulumi:Stash::s\",\"parent\":\"" P "pulumi:pulumi:Stack::proj-prod\","
        "\"provider\":\"" P "pulumi:providers:pulumi::default::abc\","
        "\"dependencies\":[\"" P "pulumi:Stash::t\"],\"replaceWith\":[\"" P "pulumi:Stash::t\"],"
        "\"aliases\":[\"" P "pulumi:Stash::old\"],\"viewOf\":\"" P "pulumi:Stash::t\","
        "\"deletedWith\":\"" P "pulumi:Stash::t\","
        "\"propertyDependencies\":{\"input\":[\"" P "pulumi:Stash::t\"]},"
        "\"inputs\":{\"plain\":\"" D "pulumi:Stash::t\",\"ref\":{\"4dabf18193072939515e22adb298388d\":"
        "\"5cf8f73096256a8f31e491e813e4eb8e\",\"urn\":\"" P "pulumi:Stash::t\",\"n\":12345678901234567890123}},"
        "\"outputs\":{\"list\":[{\"4dabf18193072939515e22adb298388d\":\"5cf8f73096256a8f31e491e813e4eb8e\","
        "\"urn\":\"" P "pulumi\\u003cx\\u003e::n\"}]}}],"
        "\"pending_operations\":[{\"resource\":{\"urn\":\"" P "pulumi:Stash::u\"},\"type\":\"creating\"}]}}";
    char *got = renamed(doc, URN_OK);
    ck_assert_str_eq(got, want);
    free(got);

    /* Missing secrets state members are added; an unchanged document comes back byte for byte. */
    got = renamed("{\"version\":3,\"deployment\":{\"secrets_providers\":{\"type\":\"service\",\"state\":{}}}}", URN_OK);
    ck_assert_str_eq(got, "{\"version\":3,\"deployment\":{\"secrets_providers\":{\"type\":\"service\",\"state\":"
                          "{\"owner\":\"o2\",\"project\":\"proj\",\"stack\":\"prod\"}}}}");
    free(got);
    const char *same = "{\"version\":3, \"deployment\":{\"resources\":[{\"urn\":\"urn:pulumi:other::proj::t::n\","
                       "\"x\":1e999999}]}}";
    got = renamed(same, URN_OK);
    ck_assert_str_eq(got, same);
    free(got);
    got = renamed("{\"version\":3,\"deployment\":null}", URN_OK);
    ck_assert_str_eq(got, "{\"version\":3,\"deployment\":null}");
    free(got);

    free(renamed("{\"version\":3,\"deployment\":{\"resources\":[{\"provider\":\"nonsense\"}]}}", URN_BAD_PROVIDER));
    free(renamed("{\"version\":3", URN_BAD_STATE));
    free(renamed("{\"version\":3}", URN_BAD_STATE));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("urn");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_urn_rename);
    tcase_add_test(tc, test_state);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
