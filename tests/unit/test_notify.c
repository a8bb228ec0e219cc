/* test_notify.c - the LISTEN/NOTIFY module against a real, throwaway PostgreSQL.
 *
 * Needs PS_TEST_CONNINFO (tests/integration/test_notify.py starts a cluster and runs this with it);
 * without it the program exits 77, which `make check` reports as skipped. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "migrate.h"
#include "notify.h"
#include "unit.h"

static const char *conninfo;

static Db *sender(void)
{
    Db *db = db_open(conninfo);
    ck_assert_ptr_nonnull(db);
    return db;
}

START_TEST(test_migrations_apply_once)
{
    Db *db = sender();
    int applied = -1;
    ck_assert(migrate_run(db, &applied));
    ck_assert_int_eq(migrate_current(db), migrate_latest());
    ck_assert(migrate_run(db, &applied));
    ck_assert_int_eq(applied, 0);
    db_close(db);
}
END_TEST

START_TEST(test_notify_delivered_in_order)
{
    Listener *l = listener_open(conninfo);
    ck_assert_ptr_nonnull(l);
    ck_assert(listener_listen(l, "ps_test_a"));
    ck_assert(listener_listen(l, "ps_test_b"));
    Db *db = sender();
    ck_assert(db_notify(db, "ps_test_a", "first"));
    ck_assert(db_notify(db, "ps_test_b", "second"));
    const char *ch, *payload;
    ck_assert_int_eq(listener_wait(l, -1, &ch, &payload), LISTEN_NOTIFY);
    ck_assert_str_eq(ch, "ps_test_a");
    ck_assert_str_eq(payload, "first");
    ck_assert_int_eq(listener_wait(l, -1, &ch, &payload), LISTEN_NOTIFY);
    ck_assert_str_eq(ch, "ps_test_b");
    ck_assert_str_eq(payload, "second");
    /* Nothing else is pending: a zero timeout says so at once. */
    ck_assert_int_eq(listener_wait(l, 0, &ch, &payload), LISTEN_TIMEOUT);
    db_close(db);
    listener_close(l);
}
END_TEST

START_TEST(test_notify_waits_for_commit)
{
    Listener *l = listener_open(conninfo);
    ck_assert(listener_listen(l, "ps_test_tx"));
    Db *db = sender();
    const char *ch, *payload;
    ck_assert(db_begin(db));
    ck_assert(db_notify(db, "ps_test_tx", "queued"));
    /* Not sent before the commit. */
    ck_assert_int_eq(listener_wait(l, 0, &ch, &payload), LISTEN_TIMEOUT);
    ck_assert(db_commit(db));
    ck_assert_int_eq(listener_wait(l, -1, &ch, &payload), LISTEN_NOTIFY);
    ck_assert_str_eq(payload, "queued");
    db_close(db);
    listener_close(l);
}
END_TEST

START_TEST(test_reconnect_listens_again)
{
    Listener *l = listener_open(conninfo);
    ck_assert(listener_listen(l, "ps_test_r"));
    Db *db = sender();
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", listener_backend_pid(l));
    PGresult *r = db_exec(db, "SELECT pg_terminate_backend($1::int)", 1, (DbParam[]){DB_TEXT(pid)}, false);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    /* The lost connection is noticed, made again, and the channel listened to again; the caller is
     * told so it can catch up from the tables. */
    const char *ch, *payload;
    ck_assert_int_eq(listener_wait(l, -1, &ch, &payload), LISTEN_RECONNECTED);
    ck_assert_int_ne(listener_backend_pid(l), atoi(pid));
    ck_assert(db_notify(db, "ps_test_r", "after"));
    ck_assert_int_eq(listener_wait(l, -1, &ch, &payload), LISTEN_NOTIFY);
    ck_assert_str_eq(ch, "ps_test_r");
    ck_assert_str_eq(payload, "after");
    db_close(db);
    listener_close(l);
}
END_TEST

START_TEST(test_copy_checked_outcomes)
{
    Db *db = sender();
    ck_assert(db_run(db, "CREATE TEMP TABLE t (id int8 PRIMARY KEY)", 0, NULL));
    Buf s;
    buf_init(&s);
    db_copy_header(&s);
    db_copy_row(&s, 1);
    db_copy_field_int8(&s, 7);
    db_copy_trailer(&s);
    DbParam yes[] = {DB_TEXT("1")}, no[] = {DB_TEXT("0")};
    /* The check refuses (division by zero): nothing stored. */
    ck_assert_int_eq(db_copy_checked(db, "SELECT 1 / $1::int", 1, no, "COPY t FROM STDIN (FORMAT binary)", &s),
                     DB_REFUSED);
    ck_assert_int_eq(db_copy_checked(db, "SELECT 1 / $1::int", 1, yes, "COPY t FROM STDIN (FORMAT binary)", &s), DB_OK);
    ck_assert_int_eq(db_copy_checked(db, "SELECT 1 / $1::int", 1, yes, "COPY t FROM STDIN (FORMAT binary)", &s),
                     DB_DUPLICATE);
    /* A value with a quote in it travels as a literal, not as SQL. */
    DbParam quoted[] = {DB_TEXT("x'; DROP TABLE t; --")};
    ck_assert_int_eq(
        db_copy_checked(db, "SELECT 1 / (length($1) > 0)::int", 1, quoted, "COPY t FROM STDIN (FORMAT binary)", &s),
        DB_DUPLICATE);
    PGresult *r = db_exec(db, "SELECT count(*) FROM t", 0, NULL, false);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    buf_free(&s);
    db_close(db);
}
END_TEST

int main(void)
{
    conninfo = getenv("PS_TEST_CONNINFO");
    if (!conninfo || !*conninfo)
        return 77; /* skipped: no database to test against */
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("postgres");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_migrations_apply_once);
    tcase_add_test(tc, test_notify_delivered_in_order);
    tcase_add_test(tc, test_notify_waits_for_commit);
    tcase_add_test(tc, test_reconnect_listens_again);
    tcase_add_test(tc, test_copy_checked_outcomes);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_NOFORK);
}
