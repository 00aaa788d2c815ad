/* Unit tests for config/tenants.c: a tenant's intent examples, and the
 * migration that adds their table to a database from before it existed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tenants.h"

/* The schema as the first release wrote it, with one tenant. */
static const char old_schema[] =
    "CREATE TABLE tenants(id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, profile TEXT,"
    "  rate_rps REAL NOT NULL DEFAULT 0, tokens_per_min REAL NOT NULL DEFAULT 0);"
    "CREATE TABLE api_keys(key_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  hash BLOB NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX api_keys_by_tenant ON api_keys(tenant_id);"
    "INSERT INTO tenants(id, created_at) VALUES ('acme', 1700000000);";

static void test_intent_examples_on_old_db(void **state) {
    (void)state;
    char dir[] = "/tmp/slorag-test-tenants-XXXXXX", path[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/slorag.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, old_schema, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct cfg_tenants *t;
    assert_int_equal(cfg_tenants_open(path, &t), ERR_OK);
    struct cfg_tenant tn;
    assert_int_equal(cfg_tenant_get(t, "acme", &tn), ERR_OK); /* the old row is intact */
    cfg_tenant_done(&tn);

    struct cfg_intent_example *got = NULL;
    size_t n = 99;
    assert_int_equal(cfg_tenant_get_intents(t, "acme", &got, &n), ERR_OK);
    assert_int_equal(n, 0);
    assert_null(got);
    assert_int_equal(cfg_tenant_get_intents(t, "nobody", &got, &n), ERR_NOT_FOUND);

    struct cfg_intent_example ex[] = {{"summary", "sitrep on the release"},
                                      {"comparison", "delta between staging and prod"},
                                      {"summary", "sitrep on hiring"}};
    assert_int_equal(cfg_tenant_set_intents(t, "nobody", ex, 3), ERR_NOT_FOUND);
    assert_int_equal(cfg_tenant_set_intents(t, "acme", ex, 3), ERR_OK);
    assert_int_equal(cfg_tenant_get_intents(t, "acme", &got, &n), ERR_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) { /* in the order they were set */
        assert_string_equal(got[i].intent, ex[i].intent);
        assert_string_equal(got[i].question, ex[i].question);
    }
    cfg_intent_examples_free(got, n);

    /* a PUT replaces the set */
    assert_int_equal(cfg_tenant_set_intents(t, "acme", ex + 1, 1), ERR_OK);
    assert_int_equal(cfg_tenant_get_intents(t, "acme", &got, &n), ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].question, "delta between staging and prod");
    cfg_intent_examples_free(got, n);
    cfg_tenants_free(t);

    /* reopening is a no-op migration; the examples survive it and go
     * with their tenant */
    assert_int_equal(cfg_tenants_open(path, &t), ERR_OK);
    assert_int_equal(cfg_tenant_get_intents(t, "acme", &got, &n), ERR_OK);
    assert_int_equal(n, 1);
    cfg_intent_examples_free(got, n);
    assert_int_equal(cfg_tenant_delete(t, "acme"), ERR_OK);
    cfg_tenants_free(t);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM tenant_intent_examples", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_intent_examples_on_old_db)};
    return cmocka_run_group_tests_name("config-tenants", tests, NULL, NULL);
}
