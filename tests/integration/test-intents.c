/* Integration tests for per-tenant intent examples on the real daemon:
 * PUT /v1/admin/tenants/{id}/intents changes how that tenant's questions
 * are classified (decision.intent) and no one else's; GET reads the set
 * back; bad bodies are 400/422 with a path-qualified message, an unknown
 * tenant 404, a missing or tenant key 401/403; and a low-confidence intent
 * plans with the tenant's default profile, not the intent's override. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define ADMIN "test-admin-key-0123456789"
#define AUTH_ADMIN "Bearer " ADMIN

static struct daemon D;
static char acme[160], globex[160]; /* "Bearer sk-..." */

/* Fails the test unless the status is want; returns the JSON body. */
static json_t *call(const char *method, const char *path, const char *auth, const char *body, long want) {
    struct http_resp r;
    http_do_auth(&D, method, path, auth, "application/json", body, body ? strlen(body) : 0, &r);
    if (r.status != want)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, want, r.body ? r.body : "");
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    if (!j)
        fail_msg("%s %s: not JSON: %s", method, path, r.body ? r.body : "");
    http_resp_done(&r);
    return j;
}

static const char *error_of(json_t *j, const char *field) {
    return json_string_value(json_object_get(json_object_get(j, "error"), field));
}

static void new_tenant(const char *id, char *auth, size_t n) {
    char body[64];
    snprintf(body, sizeof body, "{\"id\": \"%s\"}", id);
    json_t *j = call("POST", "/v1/admin/tenants", AUTH_ADMIN, body, 201);
    snprintf(auth, n, "Bearer %s", json_string_value(json_object_get(j, "api_key")));
    json_decref(j);
    j = call("POST", "/v1/collections/kb/documents", auth,
             "[{\"id\": \"status\", \"text\": \"The migration to the new data centre finished on Tuesday. "
             "The billing project is on hold until March.\"}]",
             201);
    json_decref(j);
}

static int start(void **state) {
    (void)state;
    daemon_prepare(&D, "{\"admin_key\": \"" ADMIN "\"}");
    if (!daemon_start(&D)) {
        daemon_dump_log(&D);
        return -1;
    }
    new_tenant("acme", acme, sizeof acme);
    new_tenant("globex", globex, sizeof globex);
    return 0;
}

static int stop(void **state) {
    (void)state;
    return daemon_finish(&D);
}

/* The decision record of one query by auth; caller frees. */
static json_t *decide(const char *auth, const char *question) {
    char body[256];
    snprintf(body, sizeof body, "{\"question\": \"%s\", \"collection\": \"kb\", \"tier\": \"extractive\"}", question);
    json_t *j = call("POST", "/v1/query", auth, body, 200);
    json_t *d = json_incref(json_object_get(j, "decision"));
    json_decref(j);
    assert_non_null(d);
    return d;
}

static const char *intent_of(json_t *d) {
    return json_string_value(json_object_get(d, "intent"));
}

#define SITREP "sitrep on the migration"
#define EXAMPLES                                                                         \
    "{\"examples\": [{\"intent\": \"summary\", \"question\": \"sitrep on the release\"}," \
    " {\"intent\": \"summary\", \"question\": \"sitrep for the billing project\"},"       \
    " {\"intent\": \"summary\", \"question\": \"sitrep on hiring\"}]}"

static void test_examples_change_one_tenant(void **state) {
    (void)state;
    /* the built-in model has never seen "sitrep" */
    json_t *d = decide(acme, SITREP);
    assert_string_not_equal(intent_of(d), "summary");
    json_decref(d);
    json_t *j = call("GET", "/v1/admin/tenants/acme/intents", AUTH_ADMIN, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "examples")), 0);
    json_decref(j);

    j = call("PUT", "/v1/admin/tenants/acme/intents", AUTH_ADMIN, EXAMPLES, 200);
    assert_string_equal(json_string_value(json_object_get(j, "tenant")), "acme");
    assert_int_equal(json_array_size(json_object_get(j, "examples")), 3);
    json_t *model = json_object_get(j, "model");
    assert_int_equal(json_integer_value(json_object_get(model, "examples")),
                     json_integer_value(json_object_get(model, "builtin_examples")) - 1 + 3); /* "?!" has no words */
    assert_true(json_number_value(json_object_get(model, "training_ms")) > 0);
    json_decref(j);

    d = decide(acme, SITREP);
    assert_string_equal(intent_of(d), "summary");
    assert_non_null(strstr(json_string_value(json_object_get(d, "intent_cue")), "sitrep"));
    json_decref(d);
    d = decide(globex, SITREP); /* another tenant is unaffected */
    assert_string_not_equal(intent_of(d), "summary");
    json_decref(d);

    j = call("GET", "/v1/admin/tenants/acme/intents", AUTH_ADMIN, NULL, 200);
    json_t *first = json_array_get(json_object_get(j, "examples"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "intent")), "summary");
    assert_string_equal(json_string_value(json_object_get(first, "question")), "sitrep on the release");
    json_decref(j);
    j = call("GET", "/v1/admin/tenants/globex/intents", AUTH_ADMIN, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "examples")), 0);
    json_decref(j);
}

static void test_bad_requests(void **state) {
    (void)state;
    char big[700], many[40000];
    memset(big, 'a', sizeof big);
    snprintf(big, sizeof big, "{\"examples\": [{\"intent\": \"list\", \"question\": \"%0600d\"}]}", 7);
    size_t used = (size_t)snprintf(many, sizeof many, "{\"examples\": [");
    for (int i = 0; i < 501; i++)
        used += (size_t)snprintf(many + used, sizeof many - used, "%s{\"intent\": \"list\", \"question\": \"q%d\"}",
                                 i ? "," : "", i);
    snprintf(many + used, sizeof many - used, "]}");
    static const char invalid_utf8[] = "{\"examples\": [{\"intent\": \"list\", \"question\": \"\xff\xfe\"}]}";
    const struct {
        const char *body;
        long status;
        const char *message; /* a prefix of error.message, or NULL */
    } cases[] = {
        {"{\"examples\": [", 400, NULL},
        {invalid_utf8, 400, NULL},
        {"[]", 422, NULL},
        {"{}", 422, "examples: required"},
        {"{\"examples\": 5}", 422, "examples: required"},
        {"{\"examples\": [], \"extra\": 1}", 422, "unknown field \"extra\""},
        {"{\"examples\": [\"sitrep\"]}", 422, "examples[0]: must be an object"},
        {"{\"examples\": [{\"intent\": \"summary\", \"question\": \"ok\"}, {\"intent\": \"poetry\", \"question\": \"x\"}]}",
         422, "examples[1].intent: unknown intent \"poetry\""},
        {"{\"examples\": [{\"question\": \"x\"}]}", 422, "examples[0].intent: required"},
        {"{\"examples\": [{\"intent\": \"list\"}]}", 422, "examples[0].question: required"},
        {"{\"examples\": [{\"intent\": \"list\", \"question\": \"\"}]}", 422, "examples[0].question: must contain"},
        {"{\"examples\": [{\"intent\": \"list\", \"question\": \" ?! \"}]}", 422, "examples[0].question: must contain"},
        {"{\"examples\": [{\"intent\": \"list\", \"question\": \"a\\u0000b\"}]}", 400, NULL}, /* jansson refuses NUL */
        {"{\"examples\": [{\"intent\": \"list\", \"question\": \"x\", \"why\": 1}]}", 422,
         "examples[0]: unknown field \"why\""},
        {big, 422, "examples[0].question: at most 512 bytes"},
        {many, 422, "examples: at most 500 examples (got 501)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = call("PUT", "/v1/admin/tenants/acme/intents", AUTH_ADMIN, cases[i].body, cases[i].status);
        assert_non_null(error_of(j, "code"));
        if (cases[i].message && strncmp(error_of(j, "message"), cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: message \"%s\", want it to start with \"%s\"", i, error_of(j, "message"),
                     cases[i].message);
        json_decref(j);
    }
    /* none of that changed acme's set */
    json_t *j = call("GET", "/v1/admin/tenants/acme/intents", AUTH_ADMIN, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "examples")), 3);
    json_decref(j);

    j = call("PUT", "/v1/admin/tenants/nobody/intents", AUTH_ADMIN, EXAMPLES, 404);
    assert_string_equal(error_of(j, "code"), "not_found");
    json_decref(j);
    j = call("GET", "/v1/admin/tenants/nobody/intents", AUTH_ADMIN, NULL, 404);
    json_decref(j);
    j = call("PUT", "/v1/admin/tenants/acme/intents", NULL, EXAMPLES, 401);
    assert_string_equal(error_of(j, "code"), "unauthorized");
    json_decref(j);
    j = call("GET", "/v1/admin/tenants/acme/intents", NULL, NULL, 401);
    json_decref(j);
    j = call("PUT", "/v1/admin/tenants/acme/intents", acme, EXAMPLES, 403); /* a tenant cannot teach itself */
    json_decref(j);
}

static bool skipped_has(json_t *d, const char *stage) {
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(d, "skipped"), i, v) if (strcmp(json_string_value(json_object_get(v, "stage")),
                                                                      stage) == 0) return true;
    return false;
}

static void test_low_confidence_uses_default_profile(void **state) {
    (void)state;
    json_t *j = call("PUT", "/v1/admin/tenants/globex/profile", AUTH_ADMIN,
                     "{\"default\": {\"latency_p95_ms\": 3000}, \"intents\": {\"chitchat\": {\"latency_p95_ms\": 1000}}}",
                     200);
    json_decref(j);
    json_t *d = decide(globex, "hello there");
    assert_string_equal(intent_of(d), "chitchat");
    assert_true(json_number_value(json_object_get(d, "intent_confidence")) >= 0.5);
    assert_false(skipped_has(d, "intent"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "objectives"), "latency_p95_ms")), 1000);
    json_decref(d);
    /* words the model never saw: a guess, below the threshold */
    d = decide(globex, "zorblax quimwuff frobnicate?");
    assert_string_equal(intent_of(d), "chitchat");
    assert_true(json_number_value(json_object_get(d, "intent_confidence")) < 0.5);
    assert_true(skipped_has(d, "intent"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "objectives"), "latency_p95_ms")), 3000);
    json_decref(d);
}

static void test_replace_and_delete(void **state) {
    (void)state;
    json_t *j = call("PUT", "/v1/admin/tenants/acme/intents", AUTH_ADMIN, "{\"examples\": []}", 200);
    json_decref(j);
    json_t *d = decide(acme, SITREP); /* back to the built-in model */
    assert_string_not_equal(intent_of(d), "summary");
    json_decref(d);

    /* a deleted tenant's examples go with it: recreated, it starts afresh */
    j = call("PUT", "/v1/admin/tenants/acme/intents", AUTH_ADMIN, EXAMPLES, 200);
    json_decref(j);
    d = decide(acme, SITREP);
    assert_string_equal(intent_of(d), "summary");
    json_decref(d);
    j = call("DELETE", "/v1/admin/tenants/acme", AUTH_ADMIN, NULL, 200);
    json_decref(j);
    new_tenant("acme", acme, sizeof acme);
    j = call("GET", "/v1/admin/tenants/acme/intents", AUTH_ADMIN, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "examples")), 0);
    json_decref(j);
    d = decide(acme, SITREP);
    assert_string_not_equal(intent_of(d), "summary");
    json_decref(d);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_change_one_tenant),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_low_confidence_uses_default_profile),
        cmocka_unit_test(test_replace_and_delete),
    };
    int rc = cmocka_run_group_tests_name("intents", tests, start, stop);
    curl_global_cleanup();
    return rc;
}
