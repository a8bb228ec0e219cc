/* test_journal.c - journal replay: every entry kind against hand-written journals. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "unit.h"

#define SP "{\"type\":\"service\",\"state\":{\"url\":\"http://x\",\"owner\":\"o\",\"project\":\"p\",\"stack\":\"s\"}}"
#define URN(n) "urn:pulumi:s::p::pulumi:Stash::" n
#define STACK_URN "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s"
#define RES(n, extra) "{\"urn\":\"" URN(n) "\",\"custom\":true,\"type\":\"pulumi:Stash\"" extra "}"

static json_t *replay(const char *base, const char *entries, char *err)
{
    json_t *b = base ? json_loads(base, 0, NULL) : NULL;
    json_t *e = json_loads(entries, 0, NULL);
    ck_assert_msg(e != NULL, "bad test entries");
    json_t *out = journal_replay(b, e, "v1.2.3", err, 256);
    json_decref(b);
    json_decref(e);
    return out;
}

/* The URNs of the resulting resources, joined by spaces, with flags as suffixes. */
static void urns(json_t *out, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(json_object_get(out, "deployment"), "resources"), i, r) {
        const char *u = json_string_value(json_object_get(r, "urn"));
        const char *name = strrchr(u, ':') + 1;
        strncat(buf, name, len - strlen(buf) - 1);
        if (json_is_true(json_object_get(r, "delete")))
            strncat(buf, "!del", len - strlen(buf) - 1);
        if (json_is_true(json_object_get(r, "pendingReplacement")))
            strncat(buf, "!pr", len - strlen(buf) - 1);
        strncat(buf, " ", len - strlen(buf) - 1);
    }
}

static const char *created_abc =
    "[{\"version\":1,\"kind\":6,\"sequenceID\":1,\"operationID\":0,\"removeOld\":null,\"removeNew\":null,"
    "\"secretsProvider\":" SP "},"
    "{\"kind\":0,\"sequenceID\":2,\"operationID\":1,\"removeOld\":null,\"removeNew\":null,"
    "\"operation\":{\"resource\":{\"urn\":\"" STACK_URN "\"},\"type\":\"creating\"}},"
    "{\"kind\":1,\"sequenceID\":3,\"operationID\":1,\"removeOld\":null,\"removeNew\":null,"
    "\"state\":{\"urn\":\"" STACK_URN "\",\"custom\":false}},"
    "{\"kind\":0,\"sequenceID\":4,\"operationID\":2,\"removeOld\":null,\"removeNew\":null,"
    "\"operation\":{\"resource\":" RES("a", "") ",\"type\":\"creating\"}},"
    "{\"kind\":1,\"sequenceID\":5,\"operationID\":2,\"removeOld\":null,\"removeNew\":null,\"state\":" RES("a", "") "},"
    "{\"kind\":0,\"sequenceID\":6,\"operationID\":3,\"removeOld\":null,\"removeNew\":null,"
    "\"operation\":{\"resource\":" RES("b", ",\"dependencies\":[\"" URN("a") "\"]") ",\"type\":\"creating\"}},"
    "{\"kind\":1,\"sequenceID\":7,\"operationID\":3,\"removeOld\":null,\"removeNew\":null,"
    "\"state\":" RES("b", ",\"dependencies\":[\"" URN("a") "\"]") "},"
    "{\"kind\":4,\"sequenceID\":8,\"operationID\":4,\"removeOld\":null,\"removeNew\":1,"
    "\"state\":{\"urn\":\"" STACK_URN "\",\"custom\":false,\"outputs\":{\"x\":1}}}]";

static char *state_text(json_t *out)
{
    return json_dumps(json_object_get(out, "deployment"), JSON_COMPACT);
}

START_TEST(test_create_from_nothing)
{
    char err[256], buf[256];
    json_t *out = replay(NULL, created_abc, err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 3);
    ck_assert_ptr_null(json_object_get(out, "features"));
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p-s a b ");
    json_t *dep = json_object_get(out, "deployment");
    json_t *stack = json_array_get(json_object_get(dep, "resources"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(stack, "outputs"), "x")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(dep, "secrets_providers"), "type")), "service");
    ck_assert_ptr_null(json_object_get(dep, "pending_operations"));
    json_t *man = json_object_get(dep, "manifest");
    ck_assert_str_eq(json_string_value(json_object_get(man, "version")), "v1.2.3");
    ck_assert_int_eq(strlen(json_string_value(json_object_get(man, "magic"))), 64);
    json_decref(out);
}
END_TEST

/* Replay created_abc, then run entries against its result. */
static json_t *second(const char *entries, char *err)
{
    json_t *first = replay(NULL, created_abc, err);
    ck_assert_ptr_nonnull(first);
    char *base = state_text(first);
    json_decref(first);
    json_t *out = replay(base, entries, err);
    free(base);
    return out;
}

START_TEST(test_noop_rerun_and_update_and_delete)
{
    char err[256], buf[256];
    /* same steps for the stack and a; b updated in place; then outputs for the stack */
    json_t *out = second("[{\"kind\":6,\"sequenceID\":1,\"operationID\":0,\"removeOld\":null,\"removeNew\":null,"
                         "\"secretsProvider\":" SP "},"
                         "{\"kind\":0,\"sequenceID\":2,\"operationID\":1,\"removeOld\":null,\"removeNew\":null},"
                         "{\"kind\":1,\"sequenceID\":3,\"operationID\":1,\"removeOld\":0,\"removeNew\":null,"
                         "\"state\":{\"urn\":\"" STACK_URN "\"}},"
                         "{\"kind\":0,\"sequenceID\":4,\"operationID\":2,\"removeOld\":null,\"removeNew\":null},"
                         "{\"kind\":1,\"sequenceID\":5,\"operationID\":2,\"removeOld\":1,\"removeNew\":null,"
                         "\"state\":" RES("a", "") "},"
                         "{\"kind\":0,\"sequenceID\":6,\"operationID\":3,\"removeOld\":null,\"removeNew\":null,"
                         "\"operation\":{\"resource\":" RES("b", "") ",\"type\":\"updating\"}},"
                         "{\"kind\":1,\"sequenceID\":7,\"operationID\":3,\"removeOld\":2,\"removeNew\":null,"
                         "\"state\":" RES("b", ",\"inputs\":{\"v\":2}") "}]",
                         err);
    ck_assert_msg(out != NULL, "%s", err);
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p-s a b ");
    json_t *b = json_array_get(json_object_get(json_object_get(out, "deployment"), "resources"), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(b, "inputs"), "v")), 2);
    json_decref(out);

    /* delete b (base index 2) */
    out = second("[{\"kind\":0,\"sequenceID\":1,\"operationID\":1,\"removeOld\":null,\"removeNew\":null,"
                 "\"operation\":{\"resource\":" RES("b", "") ",\"type\":\"deleting\"}},"
                 "{\"kind\":1,\"sequenceID\":2,\"operationID\":1,\"removeOld\":2,\"removeNew\":null}]",
                 err);
    ck_assert_msg(out != NULL, "%s", err);
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p-s a ");
    json_decref(out);
}
END_TEST

START_TEST(test_replace_and_pending)
{
    char err[256], buf[256];
    /* create-replacement of a (deleteOld marks the old one), then delete-replaced of it */
    json_t *out = second("[{\"kind\":0,\"sequenceID\":1,\"operationID\":1,\"removeOld\":null,\"removeNew\":null,"
                         "\"operation\":{\"resource\":" RES("a", "") ",\"type\":\"creating\"}},"
                         "{\"kind\":1,\"sequenceID\":2,\"operationID\":1,\"removeOld\":null,\"removeNew\":null,"
                         "\"deleteOld\":1,\"state\":" RES("a", ",\"id\":\"new\"") "}]",
                         err);
    ck_assert_msg(out != NULL, "%s", err);
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a p-s a!del b ");
    json_decref(out);
    /* a pending replacement (delete-before-replace) of b */
    out = second("[{\"kind\":1,\"sequenceID\":1,\"operationID\":1,\"removeOld\":null,\"removeNew\":null,"
                 "\"pendingReplacementOld\":2}]",
                 err);
    ck_assert_msg(out != NULL, "%s", err);
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p-s a b!pr ");
    json_decref(out);
    /* a lone Begin is a pending operation; a Failure clears its operation */
    out = second("[{\"kind\":0,\"sequenceID\":1,\"operationID\":1,\"removeOld\":null,\"removeNew\":null,"
                 "\"operation\":{\"resource\":" RES("c", "") ",\"type\":\"creating\"}},"
                 "{\"kind\":0,\"sequenceID\":2,\"operationID\":2,\"removeOld\":null,\"removeNew\":null,"
                 "\"operation\":{\"resource\":" RES("d", "") ",\"type\":\"creating\"}},"
                 "{\"kind\":2,\"sequenceID\":3,\"operationID\":2,\"removeOld\":null,\"removeNew\":null}]",
                 err);
    ck_assert_msg(out != NULL, "%s", err);
    json_t *ops = json_object_get(json_object_get(out, "deployment"), "pending_operations");
    ck_assert_int_eq(json_array_size(ops), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(ops, 0), "resource"), "urn")),
                     URN("c"));
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p-s a b ");
    json_decref(out);
}
END_TEST

START_TEST(test_refresh_rebuilds_dependencies)
{
    char err[256], buf[256];
    /* a vanished on refresh: b's dependency on it goes */
    json_t *out = second("[{\"kind\":3,\"sequenceID\":1,\"operationID\":1,\"removeOld\":1,\"removeNew\":null,"
                         "\"isRefresh\":true}]",
                         err);
    ck_assert_msg(out != NULL, "%s", err);
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p-s b ");
    json_t *b = json_array_get(json_object_get(json_object_get(out, "deployment"), "resources"), 1);
    ck_assert_ptr_null(json_object_get(b, "dependencies"));
    json_decref(out);
    /* refreshed in place */
    out = second("[{\"kind\":3,\"sequenceID\":1,\"operationID\":1,\"removeOld\":1,\"removeNew\":null,"
                 "\"state\":" RES("a", ",\"outputs\":{\"r\":true}") "}]",
                 err);
    ck_assert_msg(out != NULL, "%s", err);
    json_t *a = json_array_get(json_object_get(json_object_get(out, "deployment"), "resources"), 1);
    ck_assert(json_is_true(json_object_get(json_object_get(a, "outputs"), "r")));
    json_decref(out);
}
END_TEST

START_TEST(test_order_dedupe_and_rebuild)
{
    char err[256], buf[256];
    /* entries out of order and repeated give the same result */
    json_t *all = json_loads(created_abc, 0, NULL);
    json_t *shuffled = json_array();
    for (int i = (int)json_array_size(all) - 1; i >= 0; i--) {
        json_array_append(shuffled, json_array_get(all, (size_t)i));
        json_array_append(shuffled, json_array_get(all, (size_t)i));
    }
    json_t *out = journal_replay(NULL, shuffled, "v", err, sizeof(err));
    ck_assert_msg(out != NULL, "%s", err);
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p-s a b ");
    json_decref(out);
    json_decref(all);
    json_decref(shuffled);
    /* RebuiltBaseState folds what came before into the base */
    out = second("[{\"kind\":3,\"sequenceID\":1,\"operationID\":1,\"removeOld\":2,\"removeNew\":null},"
                 "{\"kind\":7,\"sequenceID\":2,\"operationID\":0,\"removeOld\":null,\"removeNew\":null},"
                 "{\"kind\":1,\"sequenceID\":3,\"operationID\":1,\"removeOld\":1,\"removeNew\":null,"
                 "\"state\":" RES("a", ",\"v\":9") "}]",
                 err);
    ck_assert_msg(out != NULL, "%s", err);
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a p-s ");
    json_decref(out);
}
END_TEST

START_TEST(test_write_secrets_features_aliases)
{
    char err[256], buf[256];
    /* Write replaces the base */
    json_t *out = second("[{\"kind\":5,\"sequenceID\":1,\"operationID\":0,\"removeOld\":null,\"removeNew\":null,"
                         "\"newSnapshot\":{\"manifest\":{},\"resources\":[" RES("z", "") "]}},"
                         "{\"kind\":6,\"sequenceID\":2,\"operationID\":0,\"removeOld\":null,\"removeNew\":null,"
                         "\"secretsProvider\":{\"type\":\"passphrase\",\"state\":{}}}]",
                         err);
    ck_assert_msg(out != NULL, "%s", err);
    urns(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "z ");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(out, "deployment"), "secrets_providers"), "type")),
                     "passphrase");
    json_decref(out);
    /* a tainted resource makes a v4 deployment with the feature */
    out = second("[{\"kind\":1,\"sequenceID\":1,\"operationID\":1,\"removeOld\":1,\"removeNew\":null,"
                 "\"state\":" RES("a", ",\"taint\":true") ",\"requiresByteString\":true}]",
                 err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 4);
    char *f = json_dumps(json_object_get(out, "features"), JSON_COMPACT);
    ck_assert_str_eq(f, "[\"byteString\",\"taint\"]");
    free(f);
    json_decref(out);
    /* references through an alias point at the new URN, and aliases go */
    out = second("[{\"kind\":1,\"sequenceID\":1,\"operationID\":1,\"removeOld\":1,\"removeNew\":null,"
                 "\"state\":" RES("a2", ",\"aliases\":[\"" URN("a") "\"]") "}]",
                 err);
    ck_assert_msg(out != NULL, "%s", err);
    json_t *res = json_object_get(json_object_get(out, "deployment"), "resources");
    json_t *b = json_array_get(res, 2);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(b, "dependencies"), 0)), URN("a2"));
    ck_assert_ptr_null(json_object_get(json_array_get(res, 0), "aliases"));
    json_decref(out);
}
END_TEST

START_TEST(test_invalid)
{
    char err[256];
    ck_assert_ptr_null(second("[{\"kind\":1,\"sequenceID\":1,\"operationID\":1,\"removeOld\":9,\"removeNew\":null}]",
                              err));
    ck_assert(strstr(err, "base resource 9") != NULL);
    ck_assert_ptr_null(second("[{\"kind\":1,\"sequenceID\":1,\"operationID\":1,\"removeOld\":null,"
                              "\"removeNew\":null,\"deleteNew\":42}]",
                              err));
    ck_assert_ptr_null(second("[{\"sequenceID\":1}]", err));
    ck_assert_ptr_null(second("[{\"kind\":12,\"sequenceID\":1,\"operationID\":1}]", err));
    ck_assert_ptr_null(second("[{\"kind\":1,\"sequenceID\":1,\"operationID\":1,\"removeOld\":null,\"removeNew\":null,"
                              "\"state\":" RES("x", ",\"aliases\":[\"" URN("q") "\"]") "},"
                              "{\"kind\":1,\"sequenceID\":2,\"operationID\":2,\"removeOld\":null,\"removeNew\":null,"
                              "\"state\":" RES("y", ",\"aliases\":[\"" URN("q") "\"]") "}]",
                              err));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_create_from_nothing);
    tcase_add_test(tc, test_noop_rerun_and_update_and_delete);
    tcase_add_test(tc, test_replace_and_pending);
    tcase_add_test(tc, test_refresh_rebuilds_dependencies);
    tcase_add_test(tc, test_order_dedupe_and_rebuild);
    tcase_add_test(tc, test_write_secrets_features_aliases);
    tcase_add_test(tc, test_invalid);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
