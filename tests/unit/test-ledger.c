/* Unit tests for orchestrator/ledger: rows committed before their
 * callback, spend rebuilt at open, and the move of an older layout's
 * ledger table out of the store's file (once, without duplicates, also
 * after a crash between the two files' commits), and retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"

static char dir[64], store_db[128], ledger_db[128];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/slorag-ledger-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(store_db, sizeof store_db, "%s/slorag.db", dir);
    snprintf(ledger_db, sizeof ledger_db, "%s/ledger.db", dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void exec_sql(const char *path, const char *sql) {
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(h);
}

static int count(const char *path, const char *sql) {
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int n = -1;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

static void done_cb(void *ud, enum err e) {
    *(int *)ud += e == ERR_OK ? 1 : 1000;
}

/* The store's file as an earlier version left it: a ledger table with
 * three rows of this month, two of them tenant "a"'s. */
static void make_legacy(void) {
    char sql[1024];
    long long now_ms = (long long)time(NULL) * 1000;
    snprintf(sql, sizeof sql,
             "CREATE TABLE ledger(id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, tenant TEXT NOT NULL,"
             " request_id TEXT NOT NULL, intent TEXT, plan TEXT, cost REAL NOT NULL, predicted_cost REAL,"
             " latency_ms REAL, predicted_latency_ms REAL, quality REAL, predicted_quality REAL, slo_met INTEGER,"
             " slo_total INTEGER, slo TEXT);"
             "CREATE TABLE keep_me(x);"
             "INSERT INTO ledger(ts_ms, tenant, request_id, cost) VALUES (%lld, 'a', 'r1', 0.25), (%lld, 'a', 'r2', 0.5),"
             " (%lld, 'b', 'r3', 1.0);",
             now_ms - 2000, now_ms - 1000, now_ms - 500);
    exec_sql(store_db, sql);
}

static void test_moves_legacy_rows_once(void **state) {
    (void)state;
    make_legacy();
    struct ledger *l = NULL;
    assert_int_equal(ledger_open(ledger_db, store_db, 16, &l), ERR_OK);
    double day = 0, month = 0;
    ledger_spent(l, "a", (int64_t)time(NULL), &day, &month);
    assert_true(fabs(month - 0.75) < 1e-9);
    assert_int_equal(ledger_committed(l), 3);
    /* new rows go to the ledger's own file */
    struct ledger_entry e = {.ts_ms = (int64_t)time(NULL) * 1000, .cost = 0.125};
    snprintf(e.tenant, sizeof e.tenant, "a");
    snprintf(e.request_id, sizeof e.request_id, "r4");
    int called = 0;
    assert_int_equal(ledger_append(l, &e, done_cb, &called), ERR_OK);
    ledger_free(l);
    assert_int_equal(called, 1);
    assert_int_equal(count(ledger_db, "SELECT count(*) FROM ledger"), 4);
    assert_int_equal(count(store_db, "SELECT count(*) FROM sqlite_master WHERE name = 'ledger'"), 0);
    assert_int_equal(count(store_db, "SELECT count(*) FROM sqlite_master WHERE name = 'keep_me'"), 1);

    /* reopening moves nothing more */
    assert_int_equal(ledger_open(ledger_db, store_db, 16, &l), ERR_OK);
    ledger_spent(l, "a", (int64_t)time(NULL), &day, &month);
    assert_true(fabs(month - 0.875) < 1e-9);
    ledger_free(l);
    assert_int_equal(count(ledger_db, "SELECT count(*) FROM ledger"), 4);
}

/* A crash after the copy committed but before the old table was dropped
 * leaves the rows in both files: the next open must not count them twice. */
static void test_crash_between_commits(void **state) {
    (void)state;
    make_legacy();
    struct ledger *l = NULL;
    /* the copy, as it was committed before the crash */
    assert_int_equal(ledger_open(ledger_db, NULL, 16, &l), ERR_OK);
    ledger_free(l);
    char sql[512];
    snprintf(sql, sizeof sql,
             "ATTACH '%s' AS legacy; INSERT INTO ledger(ts_ms, tenant, request_id, cost)"
             " SELECT ts_ms, tenant, request_id, cost FROM legacy.ledger WHERE request_id <> 'r3';",
             store_db);
    exec_sql(ledger_db, sql);
    assert_int_equal(ledger_open(ledger_db, store_db, 16, &l), ERR_OK);
    double day = 0, month = 0;
    ledger_spent(l, "a", (int64_t)time(NULL), &day, &month);
    assert_true(fabs(month - 0.75) < 1e-9);
    ledger_spent(l, "b", (int64_t)time(NULL), &day, &month);
    assert_true(fabs(month - 1.0) < 1e-9);
    ledger_free(l);
    assert_int_equal(count(ledger_db, "SELECT count(*) FROM ledger"), 3);
    assert_int_equal(count(store_db, "SELECT count(*) FROM sqlite_master WHERE name = 'ledger'"), 0);
}

/* No store file, or one without a ledger table: nothing to move. */
static void test_nothing_to_move(void **state) {
    (void)state;
    struct ledger *l = NULL;
    assert_int_equal(ledger_open(ledger_db, store_db, 16, &l), ERR_OK);
    ledger_free(l);
    assert_int_equal(access(store_db, F_OK), -1); /* not created by the attempt */
    exec_sql(store_db, "CREATE TABLE other(x);");
    assert_int_equal(ledger_open(ledger_db, store_db, 16, &l), ERR_OK);
    assert_int_equal(ledger_committed(l), 0);
    ledger_free(l);
}

static int64_t utc_ms(int year, int mon, int day, int hour) {
    struct tm tm = {.tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day, .tm_hour = hour};
    return (int64_t)timegm(&tm) * 1000;
}

static void append_at(struct ledger *l, int64_t ts_ms, const char *id, int *done) {
    struct ledger_entry e = {.ts_ms = ts_ms, .cost = 0.001};
    snprintf(e.tenant, sizeof e.tenant, "t");
    snprintf(e.request_id, sizeof e.request_id, "%s", id);
    assert_int_equal(ledger_append(l, &e, done_cb, done), ERR_OK);
}

static void wait_pruned(struct ledger *l, int64_t want) {
    for (int i = 0; i < 500 && ledger_pruned(l) < want; i++)
        usleep(10 * 1000);
    usleep(50 * 1000); /* and nothing more than that */
    assert_int_equal(ledger_pruned(l), want);
}

/* Retention deletes rows older than the days asked, never the current
 * month's, the oldest first in batches; rows written meanwhile stay. */
static void test_retention(void **state) {
    (void)state;
    struct ledger *l = NULL;
    assert_int_equal(ledger_open(ledger_db, NULL, 64, &l), ERR_OK);
    int done = 0;
    int64_t now_s = utc_ms(2026, 11, 20, 12) / 1000;
    /* more than a batch of old rows, so that pruning takes several */
    int old = LEDGER_PRUNE_BATCH + 1500;
    for (int i = 0; i < old; i++) {
        char id[32];
        snprintf(id, sizeof id, "old%d", i);
        append_at(l, utc_ms(2026, 9, 1, 0) + i, id, &done);
    }
    append_at(l, utc_ms(2026, 10, 25, 0), "october", &done);
    append_at(l, utc_ms(2026, 11, 1, 0), "november-first", &done);
    append_at(l, utc_ms(2026, 11, 10, 0), "november", &done);
    while (ledger_committed(l) < old + 3)
        usleep(10 * 1000);
    assert_int_equal(done, old + 3);

    ledger_prune(l, 0, now_s); /* 0: keep everything */
    ledger_prune(l, 36500, now_s); /* nothing is a hundred years old */
    usleep(50 * 1000);
    assert_int_equal(ledger_pruned(l), 0);

    /* 30 days before 20 November: 21 October; September goes */
    ledger_prune(l, 30, now_s);
    wait_pruned(l, old);
    assert_int_equal(count(ledger_db, "SELECT count(*) FROM ledger"), 3);

    /* 1 day would be 19 November: the month is kept, October goes */
    ledger_prune(l, 1, now_s);
    wait_pruned(l, old + 1);
    assert_int_equal(count(ledger_db, "SELECT count(*) FROM ledger WHERE request_id LIKE 'november%'"), 2);
    assert_int_equal(count(ledger_db, "SELECT count(*) FROM ledger"), 2);

    /* feedback finds what is kept, not what went */
    char plan[64], intent[24];
    assert_int_equal(ledger_find(l, "t", "november", plan, sizeof plan, intent, sizeof intent), ERR_OK);
    assert_int_equal(ledger_find(l, "t", "october", plan, sizeof plan, intent, sizeof intent), ERR_NOT_FOUND);
    ledger_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_moves_legacy_rows_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_to_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
