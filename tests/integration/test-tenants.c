/* Integration tests for tenants and auth: the admin API, API keys (issue,
 * use, revoke: effective at once), 401/403 for every kind of wrong
 * credential, and isolation: a tenant can neither read, search nor learn
 * the existence of another tenant's collections and documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"

#define ADMIN "test-admin-key-0123456789"
#define VIEWER "test-dashboard-key-987654321"

static struct daemon D;
static char acme_key[128], acme_key_id[32], globex_key[128];

static int start(void **state) {
    (void)state;
    daemon_prepare(&D, "{\"admin_key\": \"" ADMIN "\", \"dashboard_key\": \"" VIEWER "\"}");
    if (!daemon_start(&D)) {
        daemon_dump_log(&D);
        return -1;
    }
    return 0;
}

static int stop(void **state) {
    (void)state;
    return daemon_finish(&D); /* non-zero: a crash or a leak (ASan) at exit */
}

/* A request with an Authorization header value (NULL: none); fails the
 * test unless the status is want; keep receives the response if given. */
static json_t *call(const char *method, const char *path, const char *auth, const char *body, long want,
                    struct http_resp *keep) {
    struct http_resp r;
    http_do_auth(&D, method, path, auth, "application/json", body, body ? strlen(body) : 0, &r);
    if (r.status != want)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, want, r.body ? r.body : "");
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    if (!j)
        fail_msg("%s %s: not JSON", method, path);
    if (keep)
        *keep = r;
    else
        http_resp_done(&r);
    return j;
}

static const char *code_of(json_t *j) {
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static void bearer(char *out, size_t n, const char *key) {
    snprintf(out, n, "Bearer %s", key);
}

static void test_admin_creates_tenants(void **state) {
    (void)state;
    struct http_resp r;
    json_t *j = call("POST", "/v1/admin/tenants", NULL, "{\"id\": \"acme\"}", 401, &r);
    assert_string_equal(code_of(j), "unauthorized");
    assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
    free(r.body);
    json_decref(j);
    j = call("POST", "/v1/admin/tenants", "Bearer not-the-admin-key-at-all", "{\"id\": \"acme\"}", 401, NULL);
    json_decref(j);

    j = call("POST", "/v1/admin/tenants", "Bearer " ADMIN, "{\"id\": \"acme\"}", 201, NULL);
    const char *key = json_string_value(json_object_get(j, "api_key"));
    assert_non_null(key);
    assert_int_equal(strlen(key), 3 + 16 + 1 + 48);
    snprintf(acme_key, sizeof acme_key, "%s", key);
    snprintf(acme_key_id, sizeof acme_key_id, "%s", json_string_value(json_object_get(j, "key_id")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "tenant"), "id")), "acme");
    json_decref(j);
    j = call("POST", "/v1/admin/tenants", "Bearer " ADMIN, "{\"id\": \"globex\"}", 201, NULL);
    snprintf(globex_key, sizeof globex_key, "%s", json_string_value(json_object_get(j, "api_key")));
    json_decref(j);

    j = call("POST", "/v1/admin/tenants", "Bearer " ADMIN, "{\"id\": \"acme\"}", 409, NULL);
    assert_string_equal(code_of(j), "conflict");
    json_decref(j);
    j = call("POST", "/v1/admin/tenants", "Bearer " ADMIN, "{\"id\": \"Not Valid/..\"}", 422, NULL);
    json_decref(j);
    j = call("GET", "/v1/admin/tenants", "Bearer " ADMIN, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "tenants")), 2);
    /* keys are never shown again: only their ids */
    char *dump = json_dumps(j, 0);
    assert_null(strstr(dump, acme_key));
    free(dump);
    json_decref(j);
}

static void test_wrong_credentials(void **state) {
    (void)state;
    char auth[160];
    static const char *const bad[] = {NULL, "Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer sk-short",
                                      "Bearer sk-0000000000000000-000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = call("GET", "/v1/collections", bad[i], NULL, 401, NULL);
        assert_string_equal(code_of(j), "unauthorized");
        json_decref(j);
    }
    /* a tenant key cannot use the admin API; the admin key cannot act as a tenant */
    bearer(auth, sizeof auth, acme_key);
    json_t *j = call("GET", "/v1/admin/tenants", auth, NULL, 403, NULL);
    assert_string_equal(code_of(j), "forbidden");
    json_decref(j);
    j = call("GET", "/v1/collections", "Bearer " ADMIN, NULL, 403, NULL);
    json_decref(j);
    /* health stays public */
    j = call("GET", "/healthz", NULL, NULL, 200, NULL);
    json_decref(j);
}

static void test_isolation(void **state) {
    (void)state;
    char a[160], g[160];
    bearer(a, sizeof a, acme_key);
    bearer(g, sizeof g, globex_key);
    json_t *j = call("POST", "/v1/collections/kb/documents", a,
                     "[{\"id\": \"secret-plan\", \"text\": \"The acme launch date is the ninth of March.\"}]", 201, NULL);
    json_decref(j);
    /* globex sees nothing of it, under any endpoint, and gets the same
     * answer as for a collection that does not exist at all */
    j = call("GET", "/v1/collections", g, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "collections")), 0);
    json_decref(j);
    static const struct {
        const char *method, *path, *body;
    } probes[] = {
        {"GET", "/v1/collections/kb/documents/secret-plan", NULL},
        {"DELETE", "/v1/collections/kb/documents/secret-plan", NULL},
        {"DELETE", "/v1/collections/kb", NULL},
        {"POST", "/v1/query", "{\"question\": \"When is the launch?\", \"collection\": \"kb\"}"},
        {"POST", "/v1/retrieve", "{\"question\": \"launch date\", \"collection\": \"kb\"}"},
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        j = call(probes[i].method, probes[i].path, g, probes[i].body, 404, NULL);
        assert_string_equal(code_of(j), "not_found");
        json_decref(j);
    }
    /* path tricks are refused, not resolved */
    j = call("POST", "/v1/query", g, "{\"question\": \"x\", \"collection\": \"../acme/kb\"}", 422, NULL);
    json_decref(j);
    /* an encoded slash is decoded before routing: "..", "acme" are two
     * segments and no route matches */
    j = call("GET", "/v1/collections/..%2Facme/documents/secret-plan", g, NULL, 404, NULL);
    json_decref(j);
    j = call("GET", "/v1/collections/..acme/documents/secret-plan", g, NULL, 422, NULL);
    json_decref(j);
    /* globex's own "kb" is a different collection */
    j = call("POST", "/v1/collections/kb/documents", g,
             "[{\"id\": \"menu\", \"text\": \"The globex canteen serves soup on Mondays.\"}]", 201, NULL);
    json_decref(j);
    j = call("POST", "/v1/retrieve", g, "{\"question\": \"launch date March\", \"collection\": \"kb\", \"mode\": \"lexical\"}",
             200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 0);
    json_decref(j);
    j = call("POST", "/v1/query", a, "{\"question\": \"When is the launch date?\", \"collection\": \"kb\"}", 200, NULL);
    assert_non_null(strstr(json_string_value(json_object_get(j, "answer")), "ninth of March"));
    json_decref(j);
    /* acme still has its document after globex's attempts */
    j = call("GET", "/v1/collections/kb/documents/secret-plan", a, NULL, 200, NULL);
    json_decref(j);
}

/* /v1/stats: a tenant key sees its own tenant only; the admin and the
 * read-only dashboard key see every tenant; nothing without a key. */
static bool file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    char line[1024];
    bool seen = false;
    while (f && fgets(line, sizeof line, f))
        seen = seen || strstr(line, needle);
    if (f)
        fclose(f);
    return seen;
}

/* `slorag eval --url`: the mini set through the public API as tenant acme
 * (a scratch collection, deleted afterwards); a wrong key stops it with the
 * server's 401 message. */
static void test_eval_over_http(void **state) {
    (void)state;
    char cmd[2048], out[160], err[160];
    snprintf(out, sizeof out, "%s/eval.out", D.dir);
    snprintf(err, sizeof err, "%s/eval.err", D.dir);
    snprintf(cmd, sizeof cmd,
             "SLORAG_API_KEY='%s' '%s' eval --dataset '%s/tests/data/squad-mini.json' --url http://127.0.0.1:%d"
             " > '%s' 2> '%s'",
             acme_key, getenv("SLORAG_BIN"), getenv("SLORAG_SOURCE_ROOT"), D.port, out, err);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(file_has(out, "| overall | 30 |"));
    char a[160];
    snprintf(a, sizeof a, "Bearer %s", acme_key);
    json_t *j = call("GET", "/v1/collections", a, NULL, 200, NULL);
    char *dump = json_dumps(j, 0);
    assert_null(strstr(dump, "eval-"));
    free(dump);
    json_decref(j);
    snprintf(cmd, sizeof cmd,
             "SLORAG_API_KEY=sk-0000000000000000-nope '%s' eval --dataset '%s/tests/data/squad-mini.json'"
             " --url http://127.0.0.1:%d > '%s' 2> '%s'",
             getenv("SLORAG_BIN"), getenv("SLORAG_SOURCE_ROOT"), D.port, out, err);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    assert_true(file_has(err, "HTTP 401"));
}

static void test_stats_scoping(void **state) {
    (void)state;
    char a[160], g[160];
    bearer(a, sizeof a, acme_key);
    bearer(g, sizeof g, globex_key);
    json_t *j = call("GET", "/v1/stats", a, NULL, 200, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "acme");
    json_t *ts = json_object_get(j, "tenants");
    assert_int_equal(json_array_size(ts), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ts, 0), "tenant")), "acme");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ts, 0), "queries")), 1);
    assert_int_equal(json_array_size(json_object_get(j, "backends")), 0); /* operators only */
    json_decref(j);
    j = call("GET", "/v1/stats", g, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "tenants")), 0); /* globex answered nothing yet */
    json_decref(j);
    j = call("GET", "/v1/stats", "Bearer " VIEWER, NULL, 200, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "all");
    assert_int_equal(json_array_size(json_object_get(j, "tenants")), 1);
    json_decref(j);
    j = call("GET", "/v1/stats", "Bearer " ADMIN, NULL, 200, NULL);
    json_decref(j);
    j = call("GET", "/v1/stats", NULL, NULL, 401, NULL);
    json_decref(j);
    /* the dashboard key is read-only: no tenant data, no admin API */
    j = call("GET", "/v1/collections", "Bearer " VIEWER, NULL, 401, NULL);
    json_decref(j);
    j = call("GET", "/v1/admin/tenants", "Bearer " VIEWER, NULL, 401, NULL);
    json_decref(j);
}

static void test_key_rotation_and_revocation(void **state) {
    (void)state;
    char old_auth[160], new_auth[160], path[160];
    bearer(old_auth, sizeof old_auth, acme_key);
    json_t *j = call("POST", "/v1/admin/tenants/acme/keys", "Bearer " ADMIN, NULL, 201, NULL);
    bearer(new_auth, sizeof new_auth, json_string_value(json_object_get(j, "api_key")));
    json_decref(j);
    j = call("GET", "/v1/collections", new_auth, NULL, 200, NULL);
    json_decref(j);
    snprintf(path, sizeof path, "/v1/admin/tenants/acme/keys/%s", acme_key_id);
    j = call("DELETE", path, "Bearer " ADMIN, NULL, 200, NULL);
    json_decref(j);
    /* the very next request with the old key is refused */
    j = call("GET", "/v1/collections", old_auth, NULL, 401, NULL);
    json_decref(j);
    j = call("GET", "/v1/collections", new_auth, NULL, 200, NULL);
    json_decref(j);
    j = call("DELETE", path, "Bearer " ADMIN, NULL, 404, NULL); /* already revoked */
    json_decref(j);
    j = call("POST", "/v1/admin/tenants/nobody/keys", "Bearer " ADMIN, NULL, 404, NULL);
    json_decref(j);
    j = call("GET", "/v1/admin/tenants/acme", "Bearer " ADMIN, NULL, 200, NULL);
    json_t *keys = json_object_get(j, "keys");
    assert_int_equal(json_array_size(keys), 2);
    json_decref(j);
}

static void test_rate_limit(void **state) {
    (void)state;
    json_t *j = call("POST", "/v1/admin/tenants", "Bearer " ADMIN, "{\"id\": \"tiny\"}", 201, NULL);
    char auth[160];
    bearer(auth, sizeof auth, json_string_value(json_object_get(j, "api_key")));
    json_decref(j);
    j = call("PUT", "/v1/admin/tenants/tiny/limits", "Bearer " ADMIN, "{\"requests_per_second\": 2}", 200, NULL);
    json_decref(j);
    /* a burst of two passes, the third is refused with a Retry-After */
    j = call("GET", "/v1/collections", auth, NULL, 200, NULL);
    json_decref(j);
    j = call("GET", "/v1/collections", auth, NULL, 200, NULL);
    json_decref(j);
    struct http_resp r;
    j = call("GET", "/v1/collections", auth, NULL, 429, &r);
    assert_string_equal(code_of(j), "rate_limited");
    assert_non_null(strstr(r.headers, "Retry-After: 1"));
    free(r.body);
    json_decref(j);
    /* other tenants are not affected */
    char other[160];
    bearer(other, sizeof other, globex_key);
    j = call("GET", "/v1/collections", other, NULL, 200, NULL);
    json_decref(j);
    usleep(600 * 1000); /* refills at 2/s */
    j = call("GET", "/v1/collections", auth, NULL, 200, NULL);
    json_decref(j);
}

static void test_profile_limits_and_delete(void **state) {
    (void)state;
    /* reload through the admin API, as SIGHUP */
    json_t *rl = call("POST", "/v1/admin/reload", "Bearer " ADMIN, NULL, 202, NULL);
    json_decref(rl);
    usleep(200 * 1000);
    FILE *lf = fopen(D.log_path, "r");
    char line[1024];
    bool reloaded = false;
    while (lf && fgets(line, sizeof line, lf))
        reloaded = reloaded || strstr(line, "\"event\":\"reloaded\"");
    if (lf)
        fclose(lf);
    assert_true(reloaded);
    char akey[160];
    bearer(akey, sizeof akey, globex_key);
    rl = call("POST", "/v1/admin/reload", akey, NULL, 403, NULL);
    json_decref(rl);
    json_t *j = call("PUT", "/v1/admin/tenants/globex/limits", "Bearer " ADMIN,
                     "{\"requests_per_second\": 5, \"tokens_per_minute\": 10000}", 200, NULL);
    assert_true(json_real_value(json_object_get(json_object_get(j, "limits"), "requests_per_second")) == 5.0);
    json_decref(j);
    j = call("PUT", "/v1/admin/tenants/globex/limits", "Bearer " ADMIN, "{\"requests_per_second\": -1}", 422, NULL);
    json_decref(j);
    j = call("PUT", "/v1/admin/tenants/nobody/limits", "Bearer " ADMIN, "{}", 404, NULL);
    json_decref(j);
    /* deleting a tenant removes its keys and its data */
    char g[160];
    bearer(g, sizeof g, globex_key);
    j = call("DELETE", "/v1/admin/tenants/globex", "Bearer " ADMIN, NULL, 200, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "collections_deleted")), 1);
    json_decref(j);
    j = call("GET", "/v1/collections", g, NULL, 401, NULL);
    json_decref(j);
    j = call("GET", "/v1/admin/tenants/globex", "Bearer " ADMIN, NULL, 404, NULL);
    json_decref(j);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admin_creates_tenants),
        cmocka_unit_test(test_wrong_credentials),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_stats_scoping),
        cmocka_unit_test(test_eval_over_http), /* after the stats count acme's one query */
        cmocka_unit_test(test_key_rotation_and_revocation),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_profile_limits_and_delete),
    };
    int rc = cmocka_run_group_tests_name("tenants", tests, start, stop);
    curl_global_cleanup();
    return rc;
}
