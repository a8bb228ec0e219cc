/* test_router.c - path splitting and the route table matcher. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "test_routes.h"
#include "unit.h"

#define table test_routes

static RouteMatch match(const char *method, const char *path, const Route **r, char **caps, int *n, char ***segs,
                        int *nsegs)
{
    *nsegs = router_split(path, segs);
    ck_assert_int_ge(*nsegs, 0);
    return router_match(table, method, *segs, *nsegs, r, caps, n, 8);
}

START_TEST(test_match)
{
    const Route *r;
    char *caps[8], **segs;
    int n, ns;
    ck_assert_int_eq(match("GET", "/api/user", &r, caps, &n, &segs, &ns), ROUTE_FOUND);
    ck_assert_ptr_eq(r, &table[0]);
    router_free_segs(segs, ns);
    ck_assert_int_eq(match("POST", "/api/user", &r, caps, &n, &segs, &ns), ROUTE_NO_METHOD);
    router_free_segs(segs, ns);
    ck_assert_int_eq(match("GET", "/api/nope", &r, caps, &n, &segs, &ns), ROUTE_NO_PATH);
    router_free_segs(segs, ns);
    ck_assert_int_eq(match("GET", "/api/stacks/o/p/s/updates/latest", &r, caps, &n, &segs, &ns), ROUTE_FOUND);
    ck_assert_ptr_eq(r, &table[1]);
    router_free_segs(segs, ns);
    ck_assert_int_eq(match("POST", "/api/stacks/o/p/s/preview", &r, caps, &n, &segs, &ns), ROUTE_FOUND);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(caps[3], "preview");
    router_free_segs(segs, ns);
    ck_assert_int_eq(match("GET", "/api/stacks/o/p/s/updates/abc", &r, caps, &n, &segs, &ns), ROUTE_FOUND);
    ck_assert_ptr_eq(r, &table[3]);
    ck_assert_str_eq(caps[4], "abc");
    router_free_segs(segs, ns);
    ck_assert_int_eq(match("GET", "/api/stacks/o%2Dx/p/s/update/abc", &r, caps, &n, &segs, &ns), ROUTE_FOUND);
    ck_assert_str_eq(caps[0], "o-x");
    router_free_segs(segs, ns);
    ck_assert_int_eq(match("GET", "/api/user/", &r, caps, &n, &segs, &ns), ROUTE_FOUND);
    router_free_segs(segs, ns);
}
END_TEST

START_TEST(test_split_rejects)
{
    char **segs;
    ck_assert_int_eq(router_split("/api/../etc", &segs), -1);
    ck_assert_int_eq(router_split("/api/./x", &segs), -1);
    ck_assert_int_eq(router_split("/api//x", &segs), -1);
    ck_assert_int_eq(router_split("/api/a%2Fb", &segs), -1);
    ck_assert_int_eq(router_split("/api/a%00b", &segs), -1);
    ck_assert_int_eq(router_split("/api/a%zz", &segs), -1);
    ck_assert_int_eq(router_split("/api/%2e%2e/x", &segs), -1);
    ck_assert_int_eq(router_split("api", &segs), -1);
    ck_assert_int_eq(router_split("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", &segs), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_match);
    tcase_add_test(tc, test_split_rejects);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
