/* test_journal.c - journal replay: every entry kind against small hand-written journals. */
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal.h"
#include "jspan.h"
#include "util.h"
#include "unit.h"

#define VERSION "v1.2.3"

#define STACK "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev"
#define PROV "urn:pulumi:dev::proj::pulumi:providers:random::default"
#define PROVREF PROV "::prov-id"
#define URN(n) "urn:pulumi:dev::proj::random:index:Thing::" n

#define STACK_RES(extra) "{\"urn\":\"" STACK "\",\"custom\":false,\"type\":\"pulumi:pulumi:Stack\"" extra "}"
#define PROV_RES "{\"urn\":\"" PROV "\",\"custom\":true,\"id\":\"prov-id\",\"type\":\"pulumi:providers:random\"}"
#define RES(n, extra)                                                                                                  \
    "{\"urn\":\"" URN(n) "\",\"custom\":true,\"id\":\"id-" n                                                           \
                         "\",\"type\":\"random:index:Thing\",\"provider\":\"" PROVREF "\"" extra "}"

/* A journal entry; rest starts with a comma. */
#define E(kind, seq, op, rest) "{\"version\":1,\"kind\":" #kind ",\"sequenceID\":" #seq ",\"operationID\":" #op rest "}"
#define NULLS ",\"removeOld\":null,\"removeNew\":null"
#define OP(type, res) ",\"operation\":{\"resource\":" res ",\"type\":\"" type "\"}"
#define STATE(res) ",\"state\":" res

#define SP_JSON                                                                                                        \
    "{\"type\":\"service\",\"state\":{\"url\":\"https://api.example\",\"owner\":\"o\",\"project\":\"proj\"}}"
#define MANIFEST "{\"time\":\"2024-01-01T00:00:00Z\",\"magic\":\"\",\"version\":\"v0.0.1\"}"
#define DEPLOYMENT(resources)                                                                                          \
    "{\"manifest\":" MANIFEST ",\"secrets_providers\":" SP_JSON ",\"resources\":[" resources "],\"metadata\":{}}"

#define BASE3 DEPLOYMENT(STACK_RES("") "," PROV_RES "," RES("a", ""))
#define BASE4 DEPLOYMENT(STACK_RES("") "," PROV_RES "," RES("a", "") "," RES("b", ""))

/* The worked example of the protocol page: a new stack with a provider and one resource. */
static const char *worked_example =
    "[" E(6, 1, 0, NULLS ",\"secretsProvider\":" SP_JSON) "," E(0, 2, 1, NULLS OP("creating", STACK_RES(""))) "," E(
        1, 3, 1,
        NULLS STATE(STACK_RES(
            ""))) "," E(0, 4, 2,
                        NULLS OP(
                            "creating",
                            PROV_RES)) "," E(1, 5, 2,
                                             NULLS STATE(
                                                 PROV_RES)) "," E(0, 6, 3,
                                                                  NULLS OP(
                                                                      "creating",
                                                                      RES("r",
                                                                          ""))) "," E(1, 7, 3,
                                                                                      NULLS STATE(RES(
                                                                                          "r",
                                                                                          ""))) "," E(4, 8, 4,
                                                                                                      ",\"removeOld\":"
                                                                                                      "null,"
                                                                                                      "\"removeNew\":"
                                                                                                      "1" STATE(
                                                                                                          STACK_RES(
                                                                                                              ",\"outpu"
                                                                                                              "ts\":{"
                                                                                                              "\"greeti"
                                                                                                              "ng\":"
                                                                                                              "\"hi\""
                                                                                                              "}"))) "]";

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    ck_assert_msg(v != NULL, "bad fixture: %s at %d", e.text, e.position);
    return v;
}

/* Replay entries (JSON text) onto base (DeploymentV3 text or NULL). */
static json_t *replay(const char *base, const char *entries, char err[256])
{
    json_t *b = base ? load(base) : NULL;
    json_t *e = load(entries);
    err[0] = '\0';
    json_t *out = journal_replay(b, e, VERSION, 0, NULL, err, 256);
    json_decref(b);
    json_decref(e);
    return out;
}

static json_t *replay_ok(const char *base, const char *entries)
{
    char err[256];
    json_t *out = replay(base, entries, err);
    ck_assert_msg(out != NULL, "replay failed: %s", err);
    return out;
}

static void replay_fails(const char *base, const char *entries, const char *why)
{
    char err[256];
    json_t *out = replay(base, entries, err);
    ck_assert_msg(out == NULL, "replay should fail: %s", why);
    ck_assert_msg(err[0] != '\0', "a failure must say why (%s)", why);
}

static json_t *dep_of(json_t *out)
{
    return json_object_get(out, "deployment");
}

static json_t *resources(json_t *out)
{
    return json_object_get(dep_of(out), "resources");
}

static json_t *resource(json_t *out, size_t i)
{
    json_t *r = json_array_get(resources(out), i);
    ck_assert_msg(r != NULL, "no resource %zu", i);
    return r;
}

static void append(char *buf, size_t len, const char *s)
{
    strncat(buf, s, len - strlen(buf) - 1);
}

/* The resources as "name[!del][!pr] ...", name being what follows the URN's last "::". */
static const char *summary(json_t *out, char *buf, size_t len)
{
    size_t i;
    json_t *r;
    buf[0] = '\0';
    json_array_foreach(resources(out), i, r)
    {
        const char *u = json_string_value(json_object_get(r, "urn"));
        const char *name = u ? strrchr(u, ':') + 1 : "?";
        if (i)
            append(buf, len, " ");
        append(buf, len, name);
        if (json_is_true(json_object_get(r, "delete")))
            append(buf, len, "!del");
        if (json_is_true(json_object_get(r, "pendingReplacement")))
            append(buf, len, "!pr");
    }
    return buf;
}

/* The pending operations as "type:name ...". */
static const char *pending(json_t *out, char *buf, size_t len)
{
    size_t i;
    json_t *op;
    buf[0] = '\0';
    json_array_foreach(json_object_get(dep_of(out), "pending_operations"), i, op)
    {
        const char *u = json_string_value(json_object_get(json_object_get(op, "resource"), "urn"));
        if (i)
            append(buf, len, " ");
        append(buf, len, json_string_value(json_object_get(op, "type")));
        append(buf, len, ":");
        append(buf, len, u ? strrchr(u, ':') + 1 : "?");
    }
    return buf;
}

/* The object's keys in order, comma-separated. */
static const char *keys(json_t *obj, char *buf, size_t len)
{
    const char *k;
    json_t *v;
    buf[0] = '\0';
    json_object_foreach(obj, k, v)
    {
        if (buf[0])
            append(buf, len, ",");
        append(buf, len, k);
    }
    return buf;
}

/* The feature list joined by commas ("" if absent). */
static const char *features(json_t *out, char *buf, size_t len)
{
    size_t i;
    json_t *f;
    buf[0] = '\0';
    json_array_foreach(json_object_get(out, "features"), i, f)
    {
        if (i)
            append(buf, len, ",");
        append(buf, len, json_string_value(f));
    }
    return buf;
}

static const char *str_at(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static json_int_t int_at(json_t *obj, const char *k1, const char *k2)
{
    return json_integer_value(json_object_get(json_object_get(obj, k1), k2));
}

#define ASSERT_RESOURCES(out, want)                                                                                    \
    do {                                                                                                               \
        char sbuf_[512];                                                                                               \
        ck_assert_str_eq(summary(out, sbuf_, sizeof(sbuf_)), want);                                                    \
    } while (0)

#define ASSERT_PENDING(out, want)                                                                                      \
    do {                                                                                                               \
        char pbuf_[512];                                                                                               \
        ck_assert_str_eq(pending(out, pbuf_, sizeof(pbuf_)), want);                                                    \
    } while (0)

START_TEST(test_worked_example)
{
    char buf[256];
    json_t *out = replay_ok(NULL, worked_example);
    ck_assert_str_eq(keys(out, buf, sizeof(buf)), "version,deployment");
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 3);
    json_t *dep = dep_of(out);
    ck_assert_str_eq(keys(dep, buf, sizeof(buf)), "manifest,secrets_providers,resources,metadata");
    ASSERT_RESOURCES(out, "proj-dev default r");
    ck_assert_str_eq(str_at(json_object_get(resource(out, 0), "outputs"), "greeting"), "hi");
    ck_assert_str_eq(str_at(resource(out, 2), "provider"), PROVREF);
    json_t *sp = load(SP_JSON);
    ck_assert(json_equal(json_object_get(dep, "secrets_providers"), sp));
    json_decref(sp);
    ck_assert_int_eq(json_object_size(json_object_get(dep, "metadata")), 0);
    /* manifest: now, our version and its magic */
    json_t *m = json_object_get(dep, "manifest");
    ck_assert_str_eq(keys(m, buf, sizeof(buf)), "time,magic,version");
    ck_assert_str_eq(str_at(m, "version"), VERSION);
    unsigned char md[32];
    unsigned int mdlen = 0;
    char magic[65];
    ck_assert(EVP_Digest(VERSION, strlen(VERSION), md, &mdlen, EVP_sha256(), NULL));
    hex_encode(md, mdlen, magic);
    ck_assert_str_eq(str_at(m, "magic"), magic);
    const char *t = str_at(m, "time");
    int year, mon, day, hour, min, sec;
    ck_assert_msg(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d", &year, &mon, &day, &hour, &min, &sec) == 6, "time %s", t);
    ck_assert_msg(t[19] == '.' || t[19] == 'Z', "time %s", t);
    ck_assert_msg(t[strlen(t) - 1] == 'Z', "time %s is not UTC", t);
    ck_assert_int_ge(year, 2024);
    json_decref(out);
}
END_TEST

START_TEST(test_empty_version_has_empty_magic)
{
    json_t *e = json_array();
    char err[64];
    json_t *out = journal_replay(NULL, e, "", 0, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(out);
    json_t *m = json_object_get(dep_of(out), "manifest");
    ck_assert_str_eq(str_at(m, "magic"), "");
    ck_assert_str_eq(str_at(m, "version"), "");
    /* nothing at all: no resources member, an empty metadata */
    ck_assert_ptr_null(resources(out));
    ck_assert_ptr_null(json_object_get(dep_of(out), "secrets_providers"));
    ck_assert(json_is_object(json_object_get(dep_of(out), "metadata")));
    json_decref(out);
    json_decref(e);
}
END_TEST

START_TEST(test_noop_rerun)
{
    json_t *first = replay_ok(NULL, worked_example);
    char *base = json_dumps(dep_of(first), JSON_COMPACT);
    const char *entries = "[" E(6, 1, 0, NULLS ",\"secretsProvider\":" SP_JSON) "," E(0, 2, 1, NULLS) "," E(
        1, 3, 1,
        ",\"removeOld\":0,\"removeNew\":null" STATE(STACK_RES(
            ""))) "," E(0, 4, 2,
                        NULLS) "," E(1, 5, 2,
                                     ",\"removeOld\":1,\"removeNew\":null" STATE(
                                         PROV_RES)) "," E(0, 6, 3,
                                                          NULLS) "," E(1, 7, 3,
                                                                       ",\"removeOld\":2,\"removeNew\":null" STATE(RES(
                                                                           "r",
                                                                           ""))) "," E(4, 8, 4,
                                                                                       ",\"removeOld\":null,"
                                                                                       "\"removeNew\":1" STATE(
                                                                                           STACK_RES(",\"outputs\":{"
                                                                                                     "\"greeting\":"
                                                                                                     "\"hi\"}"))) "]";
    json_t *out = replay_ok(base, entries);
    ASSERT_RESOURCES(out, "proj-dev default r");
    ck_assert(json_equal(resources(out), resources(first)));
    ck_assert(json_equal(json_object_get(dep_of(out), "secrets_providers"),
                         json_object_get(dep_of(first), "secrets_providers")));
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 3);
    json_decref(out);
    free(base);
    json_decref(first);
}
END_TEST

START_TEST(test_update_in_place)
{
    /* only the update: the new state first, then what the base had */
    json_t *out = replay_ok(
        BASE3, "[" E(0, 1, 1, OP("updating", RES("a", ""))) "," E(
                   1, 2, 1, ",\"removeOld\":2,\"removeNew\":null" STATE(RES("a", ",\"outputs\":{\"v\":2}"))) "]");
    ASSERT_RESOURCES(out, "a proj-dev default");
    ck_assert_int_eq(int_at(resource(out, 0), "outputs", "v"), 2);
    ck_assert_ptr_null(json_object_get(dep_of(out), "pending_operations"));
    json_decref(out);
    /* with same steps for the others first, the program order is kept */
    out = replay_ok(
        BASE3,
        "[" E(0, 1, 1, "") "," E(1, 2, 1, ",\"removeOld\":0" STATE(STACK_RES(""))) "," E(0, 3, 2, "") "," E(
            1, 4, 2,
            ",\"removeOld\":1" STATE(
                PROV_RES)) "," E(0, 5, 3, OP("updating", RES("a", ""))) "," E(1, 6, 3,
                                                                              ",\"removeOld\":2" STATE(RES(
                                                                                  "a", ",\"outputs\":{\"v\":2}"))) "]");
    ASSERT_RESOURCES(out, "proj-dev default a");
    ck_assert_int_eq(int_at(resource(out, 2), "outputs", "v"), 2);
    json_decref(out);
}
END_TEST

START_TEST(test_delete_by_remove_old)
{
    json_t *out = replay_ok(BASE4, "[" E(0, 1, 1, OP("deleting", RES("b", ""))) "," E(1, 2, 1, ",\"removeOld\":3") "]");
    ASSERT_RESOURCES(out, "proj-dev default a");
    json_decref(out);
    /* deleting a resource created earlier in the same update */
    out = replay_ok(BASE3, "[" E(1, 1, 1, STATE(RES("n", ""))) "," E(1, 2, 2, ",\"removeNew\":1") "]");
    ASSERT_RESOURCES(out, "proj-dev default a");
    json_decref(out);
}
END_TEST

START_TEST(test_create_replacement_then_delete_replaced)
{
    const char *head = "[" E(1, 1, 1, ",\"removeOld\":0" STATE(STACK_RES(""))) "," E(
        1, 2, 2,
        ",\"removeOld\":1" STATE(
            PROV_RES)) "," E(0, 3, 3,
                             OP("creating",
                                RES("a", ",\"outputs\":{\"g\":2}"))) "," E(1, 4, 3,
                                                                           ",\"deleteOld\":2" STATE(
                                                                               RES("a", ",\"outputs\":{\"g\":2}")));
    char *text = xasprintf("%s]", head);
    json_t *out = replay_ok(BASE3, text);
    /* the old one stays, marked for deletion, after the new states */
    ASSERT_RESOURCES(out, "proj-dev default a a!del");
    ck_assert_int_eq(int_at(resource(out, 2), "outputs", "g"), 2);
    ck_assert_ptr_null(json_object_get(resource(out, 3), "outputs"));
    json_decref(out);
    free(text);
    text = xasprintf("%s," E(0, 5, 4, OP("deleting", RES("a", ""))) "," E(1, 6, 4, ",\"removeOld\":2") "]", head);
    out = replay_ok(BASE3, text);
    ASSERT_RESOURCES(out, "proj-dev default a");
    ck_assert_int_eq(int_at(resource(out, 2), "outputs", "g"), 2);
    json_decref(out);
    free(text);
    /* the same with a resource created earlier in this update (deleteNew, then removeNew) */
    out = replay_ok(NULL, "[" E(1, 1, 1, STATE(RES("a", ""))) "," E(
                              1, 2, 2, ",\"deleteNew\":1" STATE(RES("a", ",\"outputs\":{\"g\":2}"))) "]");
    ASSERT_RESOURCES(out, "a!del a");
    json_decref(out);
    out = replay_ok(
        NULL, "[" E(1, 1, 1, STATE(RES("a", ""))) "," E(
                  1, 2, 2, ",\"deleteNew\":1" STATE(RES("a", ",\"outputs\":{\"g\":2}"))) "," E(1, 3, 3,
                                                                                               ",\"removeNew\":1") "]");
    ASSERT_RESOURCES(out, "a");
    ck_assert_int_eq(int_at(resource(out, 0), "outputs", "g"), 2);
    json_decref(out);
}
END_TEST

START_TEST(test_pending_replacement)
{
    /* delete-before-replace: the old one is deleted first and marked pendingReplacement */
    const char *del = E(0, 1, 1, OP("deleting", RES("a", ""))) "," E(1, 2, 1, ",\"pendingReplacementOld\":2");
    char *text = xasprintf("[%s]", del);
    json_t *out = replay_ok(BASE3, text);
    ASSERT_RESOURCES(out, "proj-dev default a!pr");
    json_decref(out);
    free(text);
    /* then the replacement is created and removes it */
    text = xasprintf("[%s," E(0, 3, 2, OP("creating", RES("a", ""))) "," E(
                         1, 4, 2, ",\"removeOld\":2" STATE(RES("a", ",\"outputs\":{\"g\":2}"))) "]",
                     del);
    out = replay_ok(BASE3, text);
    ASSERT_RESOURCES(out, "a proj-dev default");
    ck_assert_ptr_null(json_object_get(resource(out, 0), "pendingReplacement"));
    json_decref(out);
    free(text);
    /* the same for a resource created in this update */
    out = replay_ok(NULL, "[" E(1, 1, 1, STATE(RES("a", ""))) "," E(1, 2, 2, ",\"pendingReplacementNew\":1") "]");
    ASSERT_RESOURCES(out, "a!pr");
    json_decref(out);
    out = replay_ok(NULL, "[" E(1, 1, 1, STATE(RES("a", ""))) "," E(1, 2, 2, ",\"pendingReplacementNew\":1") "," E(
                              1, 3, 3, ",\"removeNew\":1" STATE(RES("a", ",\"outputs\":{\"g\":2}"))) "]");
    ASSERT_RESOURCES(out, "a");
    json_decref(out);
}
END_TEST

START_TEST(test_lone_begin_is_pending)
{
    json_t *out = replay_ok(NULL, "[" E(0, 1, 1, OP("creating", STACK_RES(""))) "," E(
                                      1, 2, 1, STATE(STACK_RES(""))) "," E(0, 3, 2, OP("creating", RES("a", ""))) "]");
    ASSERT_RESOURCES(out, "proj-dev");
    ASSERT_PENDING(out, "creating:a");
    char buf[128];
    ck_assert_str_eq(keys(dep_of(out), buf, sizeof(buf)), "manifest,resources,pending_operations,metadata");
    json_decref(out);
    /* a Begin without an operation (same, refresh) leaves nothing pending */
    out = replay_ok(NULL, "[" E(0, 1, 1, "") "]");
    ck_assert_ptr_null(json_object_get(dep_of(out), "pending_operations"));
    json_decref(out);
}
END_TEST

START_TEST(test_base_pending_creates_are_kept)
{
    const char *base = "{\"manifest\":" MANIFEST ",\"resources\":[" STACK_RES(
        "") "],\"pending_operations\":["
            "{\"resource\":" RES("x", "") ",\"type\":\"creating\"},"
                                          "{\"resource\":" RES("y", "") ",\"type\":\"updating\"}],\"metadata\":{}}";
    json_t *out = replay_ok(base, "[" E(0, 1, 1, OP("updating", STACK_RES(""))) "]");
    ASSERT_RESOURCES(out, "proj-dev");
    ASSERT_PENDING(out, "updating:proj-dev creating:x");
    json_decref(out);
}
END_TEST

START_TEST(test_failure_removes_incomplete_op)
{
    json_t *out = replay_ok(BASE3, "[" E(0, 1, 1, OP("creating", RES("b", ""))) "," E(2, 2, 1, "") "," E(
                                       0, 3, 2, OP("updating", RES("a", ""))) "," E(2, 4, 2, "") "]");
    ASSERT_RESOURCES(out, "proj-dev default a");
    ck_assert_ptr_null(json_object_get(dep_of(out), "pending_operations"));
    json_decref(out);
}
END_TEST

/* A base for refresh: b depends on a in every way; c depends on d, which comes after it; d's parent is a. */
#define REFRESH_BASE                                                                                                   \
    DEPLOYMENT(STACK_RES("") "," PROV_RES "," RES("a", "") "," RES(                                                    \
        "b", ",\"parent\":\"" URN("a") "\",\"dependencies\":[\"" URN(                                                  \
                 "a") "\",\"" STACK "\"],"                                                                             \
                      "\"propertyDependencies\":{\"x\":[\"" URN(                                                       \
                          "a") "\"],\"y\":[\"" STACK "\"],\"z\":[]},"                                                  \
                               "\"deletedWith\":\"" URN("a") "\",\"replaceWith\":[\"" URN(                             \
                                   "a") "\",\"" STACK                                                                  \
                                        "\"]") "," RES("c",                                                            \
                                                       ",\"parent\":\"" URN("d") "\",\"dependencies\":[\"" URN(        \
                                                           "d") "\"]") "," RES("d",                                    \
                                                                               ",\"parent\":\"" URN(                   \
                                                                                   "a") "\",\"dependencies\":["        \
                                                                                        "\"" URN("b") "\"]"))

START_TEST(test_refresh_deletes_and_rebuilds_dependencies)
{
    json_t *out = replay_ok(
        REFRESH_BASE, "[" E(0, 1, 1, "") "," E(3, 2, 1, ",\"removeOld\":2,\"isRefresh\":true") "," E(
                          3, 3, 2,
                          ",\"removeOld\":4" STATE(RES("c", ",\"parent\":\"" URN("d") "\",\"dependencies\":[\"" URN(
                                                                "d") "\"],\"outputs\":{\"fresh\":true}"))) "]");
    ASSERT_RESOURCES(out, "proj-dev default b c d");
    json_t *b = resource(out, 2), *c = resource(out, 3), *d = resource(out, 4);
    char *got = json_dumps(b, JSON_COMPACT);
    json_t *want = load(RES("b", ",\"dependencies\":[\"" STACK "\"],\"propertyDependencies\":{\"y\":[\"" STACK "\"]},"
                                 "\"replaceWith\":[\"" STACK "\"]"));
    ck_assert_msg(json_equal(b, want), "b is %s", got);
    json_decref(want);
    free(got);
    /* refreshed in place; a dependency on a later resource goes, a parent later in the list stays */
    ck_assert(json_is_true(json_object_get(json_object_get(c, "outputs"), "fresh")));
    ck_assert_ptr_null(json_object_get(c, "dependencies"));
    ck_assert_str_eq(str_at(c, "parent"), URN("d"));
    /* a parent that is gone is dropped */
    ck_assert_ptr_null(json_object_get(d, "parent"));
    ck_assert_uint_eq(json_array_size(json_object_get(d, "dependencies")), 1);
    /* replaceWith was declared before pruning: the feature stays */
    char buf[128];
    ck_assert_str_eq(features(out, buf, sizeof(buf)), "replaceWith");
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 4);
    json_decref(out);
}
END_TEST

START_TEST(test_delete_without_refresh_keeps_references)
{
    json_t *out = replay_ok(REFRESH_BASE, "[" E(1, 1, 1, ",\"removeOld\":2") "]");
    ASSERT_RESOURCES(out, "proj-dev default b c d");
    ck_assert_uint_eq(json_array_size(json_object_get(resource(out, 2), "dependencies")), 2);
    ck_assert_str_eq(str_at(resource(out, 2), "parent"), URN("a"));
    ck_assert_str_eq(str_at(resource(out, 4), "parent"), URN("a"));
    json_decref(out);
    /* a persisted refresh (Success with isRefresh) does rebuild */
    out = replay_ok(REFRESH_BASE, "[" E(1, 1, 1, ",\"removeOld\":2,\"isRefresh\":true") "]");
    ck_assert_uint_eq(json_array_size(json_object_get(resource(out, 2), "dependencies")), 1);
    ck_assert_ptr_null(json_object_get(resource(out, 2), "parent"));
    json_decref(out);
}
END_TEST

START_TEST(test_refresh_success_on_new_resources)
{
    json_t *out = replay_ok(
        NULL,
        "[" E(1, 1, 1, STATE(RES("a", ""))) "," E(
            3, 2, 2,
            ",\"removeNew\":1" STATE(
                RES("a", ",\"outputs\":{\"r\":1}"))) "," E(1, 3, 3, STATE(RES("b", ""))) "," E(3, 4, 4,
                                                                                               ",\"removeNew\":3") "]");
    ASSERT_RESOURCES(out, "a");
    ck_assert_int_eq(int_at(resource(out, 0), "outputs", "r"), 1);
    json_decref(out);
}
END_TEST

START_TEST(test_outputs)
{
    /* on a base resource: replaced where it stands */
    json_t *out = replay_ok(BASE3, "[" E(4, 1, 1, ",\"removeOld\":0" STATE(STACK_RES(",\"outputs\":{\"o\":1}"))) "]");
    ASSERT_RESOURCES(out, "proj-dev default a");
    ck_assert_int_eq(int_at(resource(out, 0), "outputs", "o"), 1);
    json_decref(out);
    /* without state: nothing */
    out = replay_ok(BASE3, "[" E(4, 1, 1, ",\"removeOld\":0") "]");
    ASSERT_RESOURCES(out, "proj-dev default a");
    ck_assert_ptr_null(json_object_get(resource(out, 0), "outputs"));
    json_decref(out);
}
END_TEST

START_TEST(test_rebuilt_base_state)
{
    const char *refresh = E(6, 1, 0, ",\"secretsProvider\":" SP_JSON) "," E(3, 2, 1, ",\"removeOld\":3") "," E(
        3, 3, 2,
        ",\"removeOld\":2" STATE(
            RES("a",
                ",\"outputs\":{\"refreshed\":true}"))) "," E(0, 4, 3,
                                                             OP("creating",
                                                                RES("x",
                                                                    ""))) "," E(0, 5, 4,
                                                                                OP("updating",
                                                                                   PROV_RES)) "," E(8, 6, 5,
                                                                                                    ",\"extensionRef\":"
                                                                                                    "\"ext1\","
                                                                                                    "\"extension\":{"
                                                                                                    "\"name\":\"e\","
                                                                                                    "\"version\":\"1\","
                                                                                                    "\"value\":\"YQ=="
                                                                                                    "\"}") "," E(7, 7,
                                                                                                                 0, "");
    /* indices after RebuiltBaseState point into the rebuilt base: [stack, provider, a] */
    char *text = xasprintf(
        "[%s," E(1, 8, 6, ",\"removeOld\":0" STATE(STACK_RES(""))) "," E(
            1, 9, 7,
            ",\"removeOld\":1" STATE(PROV_RES)) "," E(1, 10, 8,
                                                      ",\"removeOld\":2" STATE(RES("a", ",\"outputs\":{\"v\":3}"))) "]",
        refresh);
    json_t *out = replay_ok(BASE4, text);
    ASSERT_RESOURCES(out, "proj-dev default a");
    ck_assert_int_eq(int_at(resource(out, 2), "outputs", "v"), 3);
    /* incomplete ops became base pending operations; only the create survives the next generation */
    ASSERT_PENDING(out, "creating:x");
    ck_assert_str_eq(str_at(json_object_get(json_object_get(dep_of(out), "extensions"), "ext1"), "name"), "e");
    json_decref(out);
    free(text);
    /* the rebuilt base alone */
    text = xasprintf("[%s]", refresh);
    out = replay_ok(BASE4, text);
    ASSERT_RESOURCES(out, "proj-dev default a");
    ck_assert(json_is_true(json_object_get(json_object_get(resource(out, 2), "outputs"), "refreshed")));
    ASSERT_PENDING(out, "creating:x");
    json_decref(out);
    free(text);
    /* the rebuilt base has three resources: index 3 is gone */
    text = xasprintf("[%s," E(1, 8, 6, ",\"removeOld\":3") "]", refresh);
    replay_fails(BASE4, text, "removeOld past the rebuilt base");
    free(text);
    /* operation IDs from before the rebuild are forgotten */
    replay_fails(NULL, "[" E(1, 1, 1, STATE(RES("a", ""))) "," E(7, 2, 0, "") "," E(1, 3, 2, ",\"removeNew\":1") "]",
                 "removeNew of an operation before RebuiltBaseState");
    /* new resources before the rebuild are part of the new base */
    out = replay_ok(NULL, "[" E(1, 1, 1, STATE(RES("a", ""))) "," E(7, 2, 0, "") "," E(
                              1, 3, 2, ",\"removeOld\":0") "," E(1, 4, 3, STATE(RES("b", ""))) "]");
    ASSERT_RESOURCES(out, "b");
    json_decref(out);
}
END_TEST

START_TEST(test_write_replaces_base)
{
    const char *sp2 = "{\"type\":\"passphrase\",\"state\":{\"salt\":\"v1:abc\"}}";
    char *text = xasprintf(
        "[" E(5, 1, 0,
              ",\"newSnapshot\":{\"manifest\":" MANIFEST ",\"secrets_providers\":%s,"
              "\"resources\":[" STACK_RES("") "," PROV_RES "," RES(
                  "a", "") "],"
                           "\"metadata\":{}}") "," E(1, 2, 1,
                                                     ",\"removeOld\":1" STATE(
                                                         PROV_RES)) "," E(1, 3, 2,
                                                                          ",\"removeOld\":2" STATE(
                                                                              RES("a", ",\"outputs\":{\"g\":2}"))) "]",
        sp2);
    json_t *out = replay_ok(DEPLOYMENT(STACK_RES("") "," RES("a", "")), text);
    ASSERT_RESOURCES(out, "default a proj-dev");
    ck_assert_int_eq(int_at(resource(out, 1), "outputs", "g"), 2);
    ck_assert_str_eq(str_at(json_object_get(dep_of(out), "secrets_providers"), "type"), "passphrase");
    json_decref(out);
    free(text);
    replay_fails(BASE3, "[" E(5, 1, 0, "") "]", "Write without newSnapshot");
}
END_TEST

START_TEST(test_secrets_manager)
{
    /* identical type and state (member order aside): the base's provider stays as it was */
    json_t *out = replay_ok(BASE3, "[" E(6, 1, 0,
                                         ",\"secretsProvider\":{\"type\":\"service\",\"state\":{\"project\":"
                                         "\"proj\",\"owner\":\"o\",\"url\":\"https://api.example\"},"
                                         "\"extra\":true}") "]");
    json_t *sp = load(SP_JSON);
    ck_assert(json_equal(json_object_get(dep_of(out), "secrets_providers"), sp));
    json_decref(sp);
    json_decref(out);
    /* a different one replaces it */
    const char *other = "{\"type\":\"passphrase\",\"state\":{\"salt\":\"v1:abc\"}}";
    char *text = xasprintf("[" E(6, 1, 0, ",\"secretsProvider\":%s") "]", other);
    out = replay_ok(BASE3, text);
    sp = load(other);
    ck_assert(json_equal(json_object_get(dep_of(out), "secrets_providers"), sp));
    json_decref(out);
    /* a stack without state takes it */
    out = replay_ok(NULL, text);
    ck_assert(json_equal(json_object_get(dep_of(out), "secrets_providers"), sp));
    json_decref(sp);
    json_decref(out);
    free(text);
    /* same type, different state: replaced */
    out = replay_ok(BASE3, "[" E(6, 1, 0, ",\"secretsProvider\":{\"type\":\"service\",\"state\":{\"url\":\"x\"}}") "]");
    ck_assert_str_eq(str_at(json_object_get(json_object_get(dep_of(out), "secrets_providers"), "state"), "url"), "x");
    json_decref(out);
    /* no provider in the entry: unchanged */
    out = replay_ok(BASE3, "[" E(6, 1, 0, "") "]");
    ck_assert_str_eq(str_at(json_object_get(dep_of(out), "secrets_providers"), "type"), "service");
    json_decref(out);
}
END_TEST

START_TEST(test_duplicates_and_order)
{
    /* the worked example shuffled, with retried copies; the first copy of a sequenceID counts */
    const char *entries =
        "[" E(4, 8, 4, ",\"removeNew\":1" STATE(STACK_RES(",\"outputs\":{\"greeting\":\"hi\"}"))) "," E(1, 3, 1, STATE(STACK_RES(""))) "," E(6, 1, 0, ",\"secretsProvider\":" SP_JSON) "," E(
            1, 5, 2,
            STATE(
                PROV_RES)) "," E(2, 3, 1,
                                 "") "," E(0, 2, 1,
                                           OP("creating",
                                              STACK_RES(
                                                  ""))) "," E(1, 7, 3,
                                                              STATE(RES(
                                                                  "r",
                                                                  ""))) "," E(1, 5, 2,
                                                                              STATE(
                                                                                  "{\"urn\":\"" PROV
                                                                                  "\",\"custom\":true,\"id\":\"other\","
                                                                                  "\"type\":\"x\"}")) "," E(0, 4, 2,
                                                                                                            OP("creatin"
                                                                                                               "g",
                                                                                                               PROV_RES)) "," E(0,
                                                                                                                                6,
                                                                                                                                3,
                                                                                                                                OP("creating",
                                                                                                                                   RES("r",
                                                                                                                                       ""))) "," E(4,
                                                                                                                                                   8,
                                                                                                                                                   4,
                                                                                                                                                   ",\"removeNew\":1" STATE(
                                                                                                                                                       STACK_RES(
                                                                                                                                                           ",\"outputs\":{\"greeting\":\"bye\"}"))) "]";
    json_t *out = replay_ok(NULL, entries), *want = replay_ok(NULL, worked_example);
    ASSERT_RESOURCES(out, "proj-dev default r");
    ck_assert(json_equal(resources(out), resources(want)));
    ck_assert_str_eq(str_at(resource(out, 1), "id"), "prov-id");
    ck_assert_str_eq(str_at(json_object_get(resource(out, 0), "outputs"), "greeting"), "hi");
    json_decref(out);
    json_decref(want);
}
END_TEST

#define COMP_OLD "urn:pulumi:dev::proj::my:index:Comp::p"
#define COMP_NEW "urn:pulumi:dev::proj::my:index:Component::p"
#define CHILD_OLD "urn:pulumi:dev::proj::my:index:Comp$random:index:Thing::c"
#define CHILD_NEW "urn:pulumi:dev::proj::my:index:Component$random:index:Thing::c"
#define PROV_OLD "urn:pulumi:dev::proj::pulumi:providers:random::old"
#define PROV_NEW "urn:pulumi:dev::proj::pulumi:providers:random::new"

START_TEST(test_alias_normalisation)
{
    const char *base = DEPLOYMENT(STACK_RES(
        "") ",{\"urn\":\"" PROV_OLD "\",\"custom\":true,\"id\":\"pid\",\"type\":\"pulumi:providers:random\"},"
            "{\"urn\":\"" COMP_OLD "\",\"custom\":false,\"type\":\"my:index:Comp\",\"parent\":\"" STACK "\"},"
            "{\"urn\":\"" CHILD_OLD "\",\"custom\":true,\"id\":\"cid\",\"type\":\"random:index:Thing\","
            "\"parent\":\"" COMP_OLD "\",\"provider\":\"" PROV_OLD "::pid\"},"
            "{\"urn\":\"" URN("u") "\",\"custom\":true,\"id\":\"uid\",\"type\":\"random:index:Thing\","
                                   "\"parent\":\"" STACK "\",\"dependencies\":[\"" COMP_OLD "\",\"" CHILD_OLD "\"],"
                                   "\"propertyDependencies\":{\"in\":[\"" CHILD_OLD "\"],\"other\":[\"" STACK "\"]},"
                                   "\"deletedWith\":\"" CHILD_OLD "\",\"provider\":\"" PROV_OLD "::pid\"}");
    const char *entries = "[" E(
        1, 1, 1,
        ",\"removeOld\":1" STATE(
            "{\"urn\":\"" PROV_NEW "\",\"custom\":true,\"id\":\"pid\","
            "\"type\":\"pulumi:providers:random\",\"aliases\":[\"" PROV_OLD
            "\"]}")) "," E(1, 2, 2,
                           ",\"removeOld\":2" STATE(
                               "{\"urn\":\"" COMP_NEW "\",\"custom\":false,\"type\":\"my:index:Component\","
                               "\"parent\":\"" STACK "\",\"aliases\":[\"" COMP_OLD "\",\"" COMP_OLD
                               "\"]}")) "," E(9, 3, 0,
                                              ",\"snippets\":[{\"uuid\":\"s1\",\"name\":\"n\",\"type\":\"t\",\"code\":"
                                              "\"c\","
                                              "\"descriptor\":{\"name\":\"random\"},\"references\":{\"x\":\"" COMP_OLD
                                              "\",\"y\":\"" STACK
                                              "\"}}]") "," E(0, 4, 3,
                                                             OP("creating",
                                                                "{\"urn\":\"" URN(
                                                                    "q") "\",\"custom\":true,\"type\":\"random:index:"
                                                                         "Thing\","
                                                                         "\"aliases\":[\"" URN(
                                                                             "q0") "\"],\"dependencies\":[\"" COMP_OLD
                                                                                   "\"]}")) "]";
    json_t *b = load(base), *e = load(entries);
    char err[256] = "";
    json_t *out = journal_replay(b, e, VERSION, 0, NULL, err, sizeof(err));
    ck_assert_msg(out != NULL, "%s", err);
    ASSERT_RESOURCES(out, "new p proj-dev c u");
    json_t *prov = resource(out, 0), *comp = resource(out, 1), *child = resource(out, 3), *u = resource(out, 4);
    ck_assert_ptr_null(json_object_get(prov, "aliases"));
    ck_assert_ptr_null(json_object_get(comp, "aliases"));
    ck_assert_str_eq(str_at(child, "urn"), CHILD_NEW);
    ck_assert_str_eq(str_at(child, "parent"), COMP_NEW);
    ck_assert_str_eq(str_at(child, "provider"), PROV_NEW "::pid");
    json_t *want = load("[\"" COMP_NEW "\",\"" CHILD_NEW "\"]");
    ck_assert(json_equal(json_object_get(u, "dependencies"), want));
    json_decref(want);
    json_t *pd = json_object_get(u, "propertyDependencies");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(pd, "in"), 0)), CHILD_NEW);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(pd, "other"), 0)), STACK);
    ck_assert_str_eq(str_at(u, "deletedWith"), CHILD_NEW);
    ck_assert_str_eq(str_at(u, "provider"), PROV_NEW "::pid");
    ck_assert_str_eq(str_at(u, "parent"), STACK);
    /* snippet references follow; the feature it needs is declared */
    json_t *refs = json_object_get(json_array_get(json_object_get(dep_of(out), "snippets"), 0), "references");
    ck_assert_str_eq(str_at(refs, "x"), COMP_NEW);
    ck_assert_str_eq(str_at(refs, "y"), STACK);
    char buf[128];
    ck_assert_str_eq(features(out, buf, sizeof(buf)), "snippets-prototype");
    /* pending operations are left as they are, aliases and all */
    json_t *op = json_object_get(json_array_get(json_object_get(dep_of(out), "pending_operations"), 0), "resource");
    ck_assert_uint_eq(json_array_size(json_object_get(op, "aliases")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(op, "dependencies"), 0)), COMP_OLD);
    /* the inputs were not changed */
    json_t *in_refs =
        json_object_get(json_array_get(json_object_get(json_array_get(e, 2), "snippets"), 0), "references");
    ck_assert_str_eq(str_at(in_refs, "x"), COMP_OLD);
    json_t *in_child = json_array_get(json_object_get(b, "resources"), 3);
    ck_assert_str_eq(str_at(in_child, "urn"), CHILD_OLD);
    ck_assert_ptr_nonnull(json_object_get(json_object_get(json_array_get(e, 0), "state"), "aliases"));
    json_decref(out);
    json_decref(b);
    json_decref(e);
}
END_TEST

START_TEST(test_alias_of_stack_parent)
{
    /* a child of a renamed stack keeps its URN; only the parent reference moves */
    const char *old_stack = "urn:pulumi:old::proj::pulumi:pulumi:Stack::proj-old";
    char *text =
        xasprintf("[" E(1, 1, 1,
                        STATE("{\"urn\":\"" STACK "\",\"custom\":false,\"type\":\"pulumi:pulumi:Stack\","
                              "\"aliases\":[\"%s\"]}")) "," E(1, 2, 2, STATE(RES("x", ",\"parent\":\"%s\""))) "]",
                  old_stack, old_stack);
    json_t *out = replay_ok(NULL, text);
    ck_assert_str_eq(str_at(resource(out, 1), "urn"), URN("x"));
    ck_assert_str_eq(str_at(resource(out, 1), "parent"), STACK);
    json_decref(out);
    free(text);
}
END_TEST

START_TEST(test_alias_clash)
{
    char err[256];
    json_t *out = replay(NULL,
                         "[" E(1, 1, 1, STATE(RES("a", ",\"aliases\":[\"" URN("old") "\"]"))) "," E(
                             1, 2, 2, STATE(RES("b", ",\"aliases\":[\"" URN("old") "\"]"))) "]",
                         err);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "same alias") != NULL, "err: %s", err);
    /* the same alias on the same URN twice is fine */
    out = replay_ok(NULL, "[" E(1, 1, 1, STATE(RES("a", ",\"aliases\":[\"" URN("old") "\"]"))) "," E(
                              1, 2, 2, ",\"deleteNew\":1" STATE(RES("a", ",\"aliases\":[\"" URN("old") "\"]"))) "]");
    ASSERT_RESOURCES(out, "a!del a");
    json_decref(out);
}
END_TEST

START_TEST(test_features_and_version)
{
    char buf[256];
    json_t *out = replay_ok(
        NULL,
        "[" E(1, 1, 1, STATE(RES("a", ",\"refreshBeforeUpdate\":true,\"taint\":true"))) "," E(
            1, 2, 2,
            STATE(RES(
                "b",
                ",\"viewOf\":\"" URN(
                    "a") "\",\"resourceHooks\":{\"before\":[\"h\"]}"))) "," E(1, 3, 3,
                                                                              ",\"requiresByteString\":true" STATE(RES(
                                                                                  "c", ",\"replaceWith\":[\"" URN(
                                                                                           "a") "\"],\"extensionRef\":"
                                                                                                "\"r1\",\"snippetID\":"
                                                                                                "\"s1\""))) "]");
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 4);
    ck_assert_str_eq(keys(out, buf, sizeof(buf)), "version,features,deployment");
    ck_assert_str_eq(features(out, buf, sizeof(buf)), "byteString,extensionParameterization,hooks,refreshBeforeUpdate,"
                                                      "replaceWith,snippets-prototype,taint,views");
    json_decref(out);
    /* empty or false values declare nothing */
    out = replay_ok(NULL, "[" E(1, 1, 1,
                                STATE(RES("a", ",\"refreshBeforeUpdate\":false,\"viewOf\":\"\","
                                               "\"resourceHooks\":{},\"replaceWith\":[],\"taint\":false"))) "]");
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 3);
    ck_assert_ptr_null(json_object_get(out, "features"));
    json_decref(out);
    /* a pending operation's resource counts; a removed resource does not */
    out = replay_ok(
        NULL, "[" E(0, 1, 1, OP("creating", RES("a", ",\"taint\":true"))) "," E(
                  1, 2, 2, STATE(RES("b", ",\"refreshBeforeUpdate\":true"))) "," E(1, 3, 3, ",\"removeNew\":2") "]");
    ck_assert_str_eq(features(out, buf, sizeof(buf)), "taint");
    json_decref(out);
    /* byteString is only declared along with some resource (Go applies it per resource) */
    out = replay_ok(NULL, "[" E(6, 1, 0, ",\"requiresByteString\":true,\"secretsProvider\":" SP_JSON) "]");
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 3);
    json_decref(out);
    out = replay_ok(BASE3, "[" E(6, 1, 0, ",\"requiresByteString\":true,\"secretsProvider\":" SP_JSON) "]");
    ck_assert_str_eq(features(out, buf, sizeof(buf)), "byteString");
    json_decref(out);
}
END_TEST

START_TEST(test_snippets_and_extensions)
{
    const char *base = "{\"manifest\":" MANIFEST ",\"metadata\":{\"integrity_error\":{\"error\":\"x\"}},"
                       "\"snippets\":[{\"uuid\":\"s0\"}],"
                       "\"extensions\":{\"r1\":{\"name\":\"base\",\"version\":\"1\",\"value\":\"YQ==\"}}}";
    json_t *out = replay_ok(
        base,
        "[" E(
            8, 1, 1,
            ",\"extensionRef\":\"r1\",\"extension\":{\"name\":\"mine\","
            "\"version\":\"2\",\"value\":\"Yg==\"}") "," E(8, 2, 2,
                                                           ",\"extensionRef\":\"r2\",\"extension\":{\"name\":\"mine2\","
                                                           "\"version\":\"2\",\"value\":\"Yg==\"}") "]");
    json_t *dep = dep_of(out), *ext = json_object_get(dep, "extensions");
    char buf[256];
    ck_assert_str_eq(keys(dep, buf, sizeof(buf)), "manifest,metadata,snippets,extensions");
    ck_assert_str_eq(str_at(json_object_get(ext, "r1"), "name"), "base");
    ck_assert_str_eq(str_at(json_object_get(ext, "r2"), "name"), "mine2");
    ck_assert_str_eq(str_at(json_object_get(json_object_get(dep, "metadata"), "integrity_error"), "error"), "x");
    ck_assert_str_eq(features(out, buf, sizeof(buf)), "snippets-prototype");
    json_decref(out);
    /* a Snippets entry without snippets clears them */
    out = replay_ok(base, "[" E(9, 1, 0, "") "]");
    ck_assert_ptr_null(json_object_get(dep_of(out), "snippets"));
    ck_assert_int_eq(json_integer_value(json_object_get(out, "version")), 3);
    json_decref(out);
    replay_fails(base, "[" E(8, 1, 1, ",\"extensionRef\":\"r1\"") "]", "ExtensionParameterize without extension");
}
END_TEST

START_TEST(test_full_key_order)
{
    char buf[256];
    json_t *out =
        replay_ok(BASE3, "[" E(0, 1, 1, OP("creating", RES("x", ""))) "," E(
                             9, 2, 0,
                             ",\"snippets\":[{\"uuid\":"
                             "\"s\"}]") "," E(8, 3, 2, ",\"extensionRef\":\"r\",\"extension\":{\"name\":\"n\"}") "]");
    ck_assert_str_eq(keys(dep_of(out), buf, sizeof(buf)),
                     "manifest,secrets_providers,resources,pending_operations,metadata,snippets,extensions");
    json_decref(out);
}
END_TEST

START_TEST(test_unknown_kind_is_ignored)
{
    json_t *out = replay_ok(BASE3, "[" E(42, 1, 1, ",\"removeOld\":99") "]");
    ASSERT_RESOURCES(out, "proj-dev default a");
    json_decref(out);
}
END_TEST

START_TEST(test_invalid_input)
{
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"removeOld\":3") "]", "removeOld past the end");
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"removeOld\":-1") "]", "negative removeOld");
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"removeOld\":\"0\"") "]", "removeOld not an integer");
    replay_fails(NULL, "[" E(1, 1, 1, ",\"removeOld\":0") "]", "removeOld without a base");
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"deleteOld\":7") "]", "deleteOld past the end");
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"pendingReplacementOld\":3") "]", "pendingReplacementOld past the end");
    replay_fails(BASE3, "[" E(3, 1, 1, ",\"removeOld\":3") "]", "refresh removeOld past the end");
    replay_fails(BASE3, "[" E(4, 1, 1, ",\"removeOld\":3" STATE(RES("a", ""))) "]", "outputs removeOld past the end");
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"removeNew\":5") "]", "removeNew of an unknown operation");
    replay_fails(BASE3, "[" E(0, 1, 5, OP("creating", RES("x", ""))) "," E(1, 2, 6, ",\"removeNew\":5") "]",
                 "removeNew of an operation that created nothing");
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"deleteNew\":5") "]", "deleteNew of an unknown operation");
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"pendingReplacementNew\":5") "]", "pendingReplacementNew unknown");
    replay_fails(BASE3, "[" E(3, 1, 1, ",\"removeNew\":5") "]", "refresh removeNew unknown");
    replay_fails(BASE3, "[" E(4, 1, 1, ",\"removeNew\":5" STATE(RES("a", ""))) "]", "outputs removeNew unknown");
    replay_fails(BASE3, "[{\"sequenceID\":1,\"operationID\":1}]", "missing kind");
    replay_fails(BASE3, "[{\"kind\":1,\"operationID\":1}]", "missing sequenceID");
    replay_fails(BASE3, "[{\"kind\":\"1\",\"sequenceID\":1}]", "kind not an integer");
    replay_fails(BASE3, "[5]", "entry not an object");
    replay_fails(BASE3, "[" E(1, 1, 1, ",\"state\":[1]") "]", "state not an object");
    replay_fails(BASE3, "{}", "entries not an array");
    /* an error in a later entry fails the whole replay */
    replay_fails(NULL, "[" E(1, 1, 1, STATE(RES("a", ""))) "," E(1, 2, 2, ",\"removeNew\":9") "]", "late error");
}
END_TEST

/* 600 resources of about 16 KB each: a full update journal (Begin with the operation, Success
 * with the state, outputs for a third) replays quickly. */
START_TEST(test_large_journal_is_fast)
{
    enum { N = 600 };
    char *blob = xmalloc(16 * 1024 + 1);
    for (size_t i = 0; i < 16 * 1024; i++)
        blob[i] = (char)('a' + i % 26);
    blob[16 * 1024] = '\0';
    json_t *base_res = json_array(), *entries = json_array();
    json_int_t seq = 1;
    json_array_append_new(entries, json_pack("{s:i,s:I,s:i,s:o}", "kind", 6, "sequenceID", seq++, "operationID", 0,
                                             "secretsProvider", load(SP_JSON)));
    for (int i = 0; i < N; i++) {
        char urn[128], dep[128];
        snprintf(urn, sizeof(urn), URN("r%d"), i);
        snprintf(dep, sizeof(dep), URN("r%d"), i ? i - 1 : 0);
        json_t *res = json_pack("{s:s,s:b,s:s,s:s,s:{s:s,s:i},s:{s:s},s:[s]}", "urn", urn, "custom", 1, "id", "x",
                                "type", "random:index:Thing", "inputs", "blob", blob, "n", i, "outputs", "blob", blob,
                                "dependencies", dep);
        json_array_append(base_res, res);
        json_t *next = json_deep_copy(res);
        json_object_set_new(json_object_get(next, "inputs"), "n", json_integer(i + 1));
        json_array_append_new(entries,
                              json_pack("{s:i,s:I,s:i,s:{s:O,s:s}}", "kind", 0, "sequenceID", seq++, "operationID",
                                        i + 1, "operation", "resource", next, "type", "updating"));
        json_array_append_new(entries, json_pack("{s:i,s:I,s:i,s:i,s:n,s:O}", "kind", 1, "sequenceID", seq++,
                                                 "operationID", i + 1, "removeOld", i, "removeNew", "state", next));
        if (i % 3 == 0)
            json_array_append_new(entries,
                                  json_pack("{s:i,s:I,s:i,s:n,s:i,s:O}", "kind", 4, "sequenceID", seq++, "operationID",
                                            N + i + 1, "removeOld", "removeNew", i + 1, "state", next));
        json_decref(next);
        json_decref(res);
    }
    json_t *base = json_pack("{s:{s:s},s:o,s:{}}", "manifest", "version", "v0", "resources", base_res, "metadata");
    struct timespec t0, t1;
    char err[256];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    json_t *out = journal_replay(base, entries, VERSION, 0, NULL, err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(out != NULL, "%s", err);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    ck_assert_uint_eq(json_array_size(resources(out)), N);
    ck_assert_int_eq(int_at(resource(out, N - 1), "inputs", "n"), N);
    ck_assert_uint_eq(json_array_size(entries), 1 + 2 * N + N / 3);
    /* generous under sanitizers; a plain build takes a few milliseconds */
    ck_assert_msg(ms < 1000.0, "replay of %zu entries took %.1f ms", json_array_size(entries), ms);
    json_decref(out);
    json_decref(base);
    json_decref(entries);
    free(blob);
}
END_TEST

static bool entry_ok(const char *e)
{
    char why[200] = "";
    bool ok = journal_entry_check(e, strlen(e), why, sizeof(why));
    ck_assert_msg(ok || why[0], "a refusal must say why: %s", e);
    return ok;
}

START_TEST(test_entry_check)
{
    ck_assert(entry_ok(E(1, 1, 1, NULLS STATE(RES("a", "")))));
    ck_assert(entry_ok(E(0, 1, 1, NULLS OP("creating", RES("a", "")))));
    ck_assert(entry_ok(E(1, 1, 1, ",\"removeOld\":0,\"removeNew\":3,\"deleteOld\":null")));
    ck_assert(entry_ok(E(5, 1, 0, ",\"newSnapshot\":{}")));
    ck_assert(entry_ok(E(8, 1, 0, ",\"extensionRef\":\"r\",\"extension\":{}")));
    ck_assert(entry_ok(E(9, 1, 0, ",\"snippets\":[]")));
    ck_assert(entry_ok(E(9, 1, 0, ",\"snippets\":null")));
    ck_assert(!entry_ok(E(1, 1, 1, ",\"deleteOld\":-1")));
    ck_assert(!entry_ok(E(1, 1, 1, ",\"removeOld\":\"0\"")));
    ck_assert(!entry_ok(E(1, 1, 1, ",\"pendingReplacementNew\":1.5")));
    ck_assert(!entry_ok(E(1, 1, 1, ",\"state\":[]")));
    ck_assert(!entry_ok(E(1, 1, 1, ",\"state\":1")));
    ck_assert(!entry_ok(E(0, 1, 1, ",\"operation\":\"x\"")));
    ck_assert(!entry_ok(E(5, 1, 0, "")));
    ck_assert(!entry_ok(E(5, 1, 0, ",\"newSnapshot\":null")));
    ck_assert(!entry_ok(E(8, 1, 0, ",\"extensionRef\":1,\"extension\":{}")));
    ck_assert(!entry_ok(E(9, 1, 0, ",\"snippets\":{}")));
    ck_assert(!entry_ok(E(10, 1, 0, "")));
    ck_assert(!entry_ok(E(1, 0, 0, "")));
    ck_assert(!entry_ok(E(1, 1, "x", "")));
    ck_assert(!entry_ok("[]"));
    ck_assert(!entry_ok("{}"));
    /* The check reads the first of two equal keys, a tree the last; and it compares keys as written,
     * a tree decoded: both refused, so what the check passes is what the replay sees (a fuzz find:
     * "kind":0 then "kind":null passed the check and failed the lenient replay). */
    ck_assert(!entry_ok(E(0, 1, 1, NULLS OP("creating", RES("a", "")) ",\"kind\":null")));
    ck_assert(!entry_ok("{\"version\":1,\"kind\":1,\"sequenceID\":1,\"k\\u0069nd\":null}"));
    char why[200];
    const char *found = "[{\"version\":1,\"kind\":0,\"sequenceID\":1,\"jperationID\":1,\"operaion\":0,"
                        "\"kind\":null},{\"version\":1,\"kind\":1,\"sequenceID\":3,\"operationID\":1,"
                        "\"removeOld\":0},{\"version\":1,\"kind\":7,\"sequenceID\":4,\"operationID\":3}]";
    size_t pos = 0, a, z;
    ck_assert(jspan_array_next(found, strlen(found), &pos, &a, &z));
    ck_assert(!journal_entry_check(found + a, z - a, why, sizeof(why)));
}
END_TEST

START_TEST(test_lenient_replay)
{
    /* What cannot be applied is skipped; everything the journal recorded before and after stays. */
    json_t *b = load(BASE3);
    json_t *e = load("[" E(0, 1, 5, NULLS OP("creating", RES("x", ""))) "," E(1, 2, 5, NULLS STATE(RES("x", ""))) "," E(
        1, 3, 6,
        ",\"removeOld\":9" STATE(RES(
            "y", ""))) "," E(1, 4, 7,
                             ",\"removeNew\":77") "," E(0, 5, 8,
                                                        NULLS OP("creating",
                                                                 RES("z", ""))) "," E(1, 6, 8,
                                                                                      NULLS STATE(RES("z", ""))) "]");
    char err[256] = "";
    size_t skipped = 0;
    ck_assert_ptr_null(journal_replay(b, e, VERSION, 0, NULL, err, sizeof(err)));
    json_t *out = journal_replay(b, e, VERSION, JOURNAL_LENIENT, &skipped, err, sizeof(err));
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(skipped, 2);
    ck_assert_msg(strstr(err, "removeOld") != NULL, "the first failure is reported: %s", err);
    /* x, y (pushed before its bad index), z, then the base's three. */
    ck_assert_int_eq(json_array_size(resources(out)), 6);
    json_decref(out);
    /* Two resources with one alias: kept as they are, aliases and all. */
    json_t *e2 = load("[" E(1, 1, 1, NULLS STATE(RES("p", ",\"aliases\":[\"" URN("same") "\"]"))) "," E(
        1, 2, 2, NULLS STATE(RES("q", ",\"aliases\":[\"" URN("same") "\"]"))) "]");
    ck_assert_ptr_null(journal_replay(b, e2, VERSION, 0, NULL, err, sizeof(err)));
    out = journal_replay(b, e2, VERSION, JOURNAL_LENIENT, &skipped, err, sizeof(err));
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(skipped, 1);
    ck_assert_int_eq(json_array_size(resources(out)), 5);
    json_decref(out);
    json_decref(e2);
    json_decref(e);
    json_decref(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_worked_example);
    tcase_add_test(tc, test_empty_version_has_empty_magic);
    tcase_add_test(tc, test_noop_rerun);
    tcase_add_test(tc, test_update_in_place);
    tcase_add_test(tc, test_delete_by_remove_old);
    tcase_add_test(tc, test_create_replacement_then_delete_replaced);
    tcase_add_test(tc, test_pending_replacement);
    tcase_add_test(tc, test_lone_begin_is_pending);
    tcase_add_test(tc, test_base_pending_creates_are_kept);
    tcase_add_test(tc, test_failure_removes_incomplete_op);
    tcase_add_test(tc, test_refresh_deletes_and_rebuilds_dependencies);
    tcase_add_test(tc, test_delete_without_refresh_keeps_references);
    tcase_add_test(tc, test_refresh_success_on_new_resources);
    tcase_add_test(tc, test_outputs);
    tcase_add_test(tc, test_rebuilt_base_state);
    tcase_add_test(tc, test_write_replaces_base);
    tcase_add_test(tc, test_secrets_manager);
    tcase_add_test(tc, test_duplicates_and_order);
    tcase_add_test(tc, test_alias_normalisation);
    tcase_add_test(tc, test_alias_of_stack_parent);
    tcase_add_test(tc, test_alias_clash);
    tcase_add_test(tc, test_features_and_version);
    tcase_add_test(tc, test_snippets_and_extensions);
    tcase_add_test(tc, test_full_key_order);
    tcase_add_test(tc, test_unknown_kind_is_ignored);
    tcase_add_test(tc, test_invalid_input);
    tcase_add_test(tc, test_entry_check);
    tcase_add_test(tc, test_lenient_replay);
    tcase_add_test(tc, test_large_journal_is_fast);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
