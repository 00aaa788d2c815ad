/* Integration tests for the document and retrieval API: uploads (JSON
 * batches and text), replace, get, delete, collections, /v1/retrieve in
 * every mode, validation errors that store nothing, and durability across a
 * restart (SIGKILL included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <sqlite3.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

static struct daemon D;

static int start(void **state) {
    (void)state;
    daemon_prepare(&D, "{\"server\": {\"max_upload_bytes\": 65536}, \"retrieval\": {\"max_batch_documents\": 10,"
                       " \"index_save_interval_ms\": 100, \"ann_threshold\": 2}}");
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

static json_t *req_json(const char *method, const char *path, const char *ct, const char *body, long want) {
    struct http_resp r;
    http_do(&D, method, path, ct, body, body ? strlen(body) : 0, &r);
    if (r.status != want)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, want, r.body);
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    if (!j)
        fail_msg("not JSON: %s", r.body);
    http_resp_done(&r);
    return j;
}

static const char *err_code(json_t *j) {
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static const char batch[] =
    "[{\"id\": \"tides\", \"title\": \"Tides\", \"text\": \"High tide at Velmora comes twice a day. "
    "The spring tides are the strongest.\", \"metadata\": {\"lang\": \"en\"}},"
    " {\"id\": \"guides/boats.md\", \"text\": \"Rowing boats can be rented at the north jetty for five crowns an hour.\"}]";

static void test_upload_get_retrieve(void **state) {
    (void)state;
    json_t *j = req_json("POST", "/v1/collections/port/documents", "application/json", batch, 201);
    assert_int_equal(json_integer_value(json_object_get(j, "stored")), 2);
    json_t *d0 = json_array_get(json_object_get(j, "documents"), 0);
    assert_false(json_is_true(json_object_get(d0, "replaced")));
    assert_true(json_integer_value(json_object_get(d0, "chunks")) >= 1);
    json_decref(j);

    /* ids may contain '/' */
    j = req_json("GET", "/v1/collections/port/documents/guides/boats.md", NULL, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "guides/boats.md");
    assert_non_null(strstr(json_string_value(json_object_get(j, "text")), "north jetty"));
    json_decref(j);
    j = req_json("GET", "/v1/collections/port/documents/tides", NULL, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "metadata"), "lang")), "en");
    json_decref(j);

    /* every retrieval mode finds it, with per-retriever scores and signals */
    static const char *const modes[] = {"lexical", "dense", "hybrid"};
    for (int m = 0; m < 3; m++) {
        char body[256];
        snprintf(body, sizeof body, "{\"question\": \"when is high tide\", \"collection\": \"port\", \"k\": 2, \"mode\": \"%s\"}",
                 modes[m]);
        j = req_json("POST", "/v1/retrieve", "application/json", body, 200);
        assert_string_equal(json_string_value(json_object_get(j, "mode")), modes[m]);
        json_t *r0 = json_array_get(json_object_get(j, "results"), 0);
        assert_non_null(r0);
        assert_string_equal(json_string_value(json_object_get(r0, "document_id")), "tides");
        json_t *scores = json_object_get(r0, "scores");
        if (m != 1)
            assert_non_null(json_object_get(scores, "lexical"));
        if (m != 0)
            assert_non_null(json_object_get(scores, "dense"));
        json_t *sig = json_object_get(j, "signals");
        assert_true(json_integer_value(json_object_get(sig, "candidates")) >= 1);
        json_decref(j);
    }

    /* the answer path uses the same collection */
    j = req_json("POST", "/v1/query", "application/json",
                 "{\"question\": \"Where can I rent a rowing boat?\", \"collection\": \"port\"}", 200);
    assert_non_null(strstr(json_string_value(json_object_get(j, "answer")), "north jetty"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(j, "decision"), "plan"), "retriever")),
                        "hybrid");
    json_decref(j);

    j = req_json("GET", "/v1/collections", NULL, NULL, 200);
    json_t *c0 = json_array_get(json_object_get(j, "collections"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "name")), "port");
    assert_int_equal(json_integer_value(json_object_get(c0, "documents")), 2);
    json_decref(j);

    /* past retrieval.ann_threshold (2 here) the collection's index is
     * rebuilt as an IVF in the background; searches go on meanwhile */
    const char *kind = NULL;
    for (int i = 0; i < 100; i++) {
        j = req_json("GET", "/v1/collections", NULL, NULL, 200);
        json_t *ix = json_object_get(json_array_get(json_object_get(j, "collections"), 0), "index");
        kind = json_string_value(json_object_get(ix, "kind"));
        bool done = kind && strcmp(kind, "approximate") == 0 && json_is_false(json_object_get(ix, "building"));
        if (done) {
            assert_true(json_integer_value(json_object_get(ix, "nlist")) >= 1);
            assert_true(json_integer_value(json_object_get(ix, "vectors")) >= 2);
        }
        json_decref(j);
        if (done)
            break;
        kind = NULL;
        usleep(50 * 1000);
    }
    assert_non_null(kind);
    j = req_json("POST", "/v1/retrieve", "application/json",
                 "{\"question\": \"rowing boat\", \"collection\": \"port\", \"mode\": \"dense\"}", 200);
    assert_true(json_array_size(json_object_get(j, "results")) >= 1);
    json_decref(j);
}

static void test_replace_text_upload_delete(void **state) {
    (void)state;
    json_t *j = req_json("POST", "/v1/collections/port/documents?id=tides&title=New%20tides", "text/markdown",
                         "# Tides\n\nLow tide exposes the old wreck.\n", 201);
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(j, "documents"), 0), "replaced")));
    json_decref(j);
    /* the old text is gone from every index */
    j = req_json("POST", "/v1/retrieve", "application/json",
                 "{\"question\": \"spring strongest\", \"collection\": \"port\", \"mode\": \"lexical\"}", 200);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 0);
    json_decref(j);
    j = req_json("GET", "/v1/collections/port/documents/tides", NULL, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "title")), "New tides");
    json_decref(j);

    j = req_json("DELETE", "/v1/collections/port/documents/tides", NULL, NULL, 200);
    json_decref(j);
    j = req_json("GET", "/v1/collections/port/documents/tides", NULL, NULL, 404);
    assert_string_equal(err_code(j), "not_found");
    json_decref(j);
    j = req_json("DELETE", "/v1/collections/port/documents/tides", NULL, NULL, 404);
    json_decref(j);
    j = req_json("POST", "/v1/retrieve", "application/json",
                 "{\"question\": \"wreck\", \"collection\": \"port\", \"mode\": \"dense\"}", 200);
    json_t *res = json_object_get(j, "results");
    for (size_t i = 0; i < json_array_size(res); i++)
        assert_string_not_equal(json_string_value(json_object_get(json_array_get(res, i), "document_id")), "tides");
    json_decref(j);
}

static void test_bad_uploads_store_nothing(void **state) {
    (void)state;
    static const struct {
        const char *path, *ct, *body;
        long status;
        const char *code;
    } cases[] = {
        {"/v1/collections/bad/documents", "application/json",
         "[{\"id\": \"a\", \"text\": \"one\"}, {\"id\": \"a\", \"text\": \"two\"}]", 422, "invalid_request"},
        {"/v1/collections/bad/documents", "application/json", "[{\"id\": \"a\", \"text\": \"\"}]", 422, "invalid_request"},
        {"/v1/collections/bad/documents", "application/json", "[{\"id\": \"a\", \"text\": 5}]", 422, "invalid_request"},
        {"/v1/collections/bad/documents", "application/json", "[{\"id\": \"a\", \"text\": \"x\", \"color\": 1}]", 422,
         "invalid_request"},
        {"/v1/collections/bad/documents", "application/json", "[{\"id\": \"a\", \"text\": \"x\", \"metadata\": 3}]", 422,
         "invalid_request"},
        {"/v1/collections/bad/documents", "application/json", "[]", 422, "invalid_request"},
        {"/v1/collections/bad/documents", "application/json", "{\"id\": \"a\"}", 422, "invalid_request"},
        {"/v1/collections/bad/documents", "application/json", "[{\"id\": \"a\", \"text\": \"ok\"}, 7]", 422,
         "invalid_request"},
        {"/v1/collections/bad/documents", "application/json", "[{\"id\":", 400, "invalid_json"},
        {"/v1/collections/bad/documents?id=x", "text/plain", "caf\xe9", 400, "invalid_utf8"},
        {"/v1/collections/bad/documents", "text/plain", "no id given", 422, "invalid_request"},
        {"/v1/collections/bad/documents", "image/png", "\x89PNG", 415, "unsupported_media_type"},
        {"/v1/collections/..bad/documents", "application/json", "[{\"id\": \"a\", \"text\": \"x\"}]", 422,
         "invalid_request"},
        /* an encoded NUL would cut the name short ("ab"): refused wherever it is */
        {"/v1/collections/bad/documents?id=ab%00cd", "text/plain", "hello", 400, "bad_request"},
        {"/v1/collections/bad/documents?id=abcd&title=t%00", "text/plain", "hello", 400, "bad_request"},
        {"/v1/collections/bad/documents?x%00=1&id=abcd", "text/plain", "hello", 400, "bad_request"},
        {"/v1/collections/bad/documents?id=ab%c0%80cd", "text/plain", "hello", 400, "bad_request"},
        {"/v1/collections/bad%00/documents", "application/json", "[{\"id\": \"a\", \"text\": \"x\"}]", 400,
         "bad_request"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = req_json("POST", cases[i].path, cases[i].ct, cases[i].body, cases[i].status);
        if (strcmp(err_code(j), cases[i].code) != 0)
            fail_msg("case %zu: code %s, want %s", i, err_code(j), cases[i].code);
        json_decref(j);
    }
    /* more documents than retrieval.max_batch_documents (10) */
    char big[2048] = "[";
    for (int i = 0; i < 11; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s{\"id\": \"d%d\", \"text\": \"t\"}", i ? "," : "", i);
    strcat(big, "]");
    json_t *j = req_json("POST", "/v1/collections/bad/documents", "application/json", big, 413);
    json_decref(j);
    /* none of it created the collection or stored anything */
    j = req_json("GET", "/v1/collections/bad/documents/a", NULL, NULL, 404);
    json_decref(j);
    j = req_json("GET", "/v1/collections", NULL, NULL, 200);
    json_t *cs = json_object_get(j, "collections");
    for (size_t i = 0; i < json_array_size(cs); i++)
        assert_string_not_equal(json_string_value(json_object_get(json_array_get(cs, i), "name")), "bad");
    json_decref(j);
    j = req_json("POST", "/v1/retrieve", "application/json", "{\"question\": \"x\", \"collection\": \"nope\"}", 404);
    json_decref(j);
    j = req_json("POST", "/v1/retrieve", "application/json", "{\"question\": \"x\", \"mode\": \"psychic\"}", 422);
    json_decref(j);
}

/* Percent-escapes in the path and the query decode as before (%HH of
 * either case; a '%' not followed by two hex digits stays; '+' in the
 * query is a space), but an encoded NUL is refused instead of ending the
 * name. */
static void test_percent_escapes(void **state) {
    (void)state;
    json_t *j = req_json("POST", "/v1/collections/port/documents?id=50%25off%zz%2F%4a&title=a%2500b+c%2B", "text/plain",
                         "Half price on every ferry ticket this week.", 201);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "documents"), 0), "id")),
                        "50%off%zz/J");
    json_decref(j);
    j = req_json("GET", "/v1/collections/port/documents/50%25off%25zz%2FJ", NULL, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "title")), "a%00b c+");
    json_decref(j);
    j = req_json("GET", "/v1/collections/port/documents/50%25off%25zz%2FJ%00.html", NULL, NULL, 400);
    assert_string_equal(err_code(j), "bad_request");
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "NUL"));
    json_decref(j);
    j = req_json("DELETE", "/v1/collections/port/documents/50%25off%25zz%2FJ%00", NULL, NULL, 400);
    json_decref(j);
    j = req_json("DELETE", "/v1/collections/port/documents/50%25off%25zz%2FJ", NULL, NULL, 200);
    json_decref(j);
}

static void test_survives_restart_and_kill(void **state) {
    (void)state;
    json_t *j = req_json("POST", "/v1/collections/keep/documents", "application/json",
                         "[{\"id\": \"k1\", \"text\": \"The beacon on the breakwater flashes green every four seconds.\"}]", 201);
    json_decref(j);
    /* two answered queries: their ledger rows commit before the responses */
    for (int i = 0; i < 2; i++) {
        j = req_json("POST", "/v1/query", "application/json",
                     "{\"question\": \"How often does the beacon flash?\", \"collection\": \"keep\"}", 200);
        json_decref(j);
    }
    /* acknowledged = durable: SIGKILL right after the response */
    assert_int_equal(daemon_stop(&D, SIGKILL, 5000), -1);
    char db[160];
    snprintf(db, sizeof db, "%s/ledger.db", D.dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*), sum(slo_total) FROM ledger", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3); /* one from the first test, two here */
    assert_int_equal(sqlite3_column_int(st, 1), 3 * 4); /* quality, cost, latency, deadline each */
    sqlite3_finalize(st);
    sqlite3_close(h);
    assert_true(daemon_start(&D));
    j = req_json("POST", "/v1/retrieve", "application/json",
                 "{\"question\": \"beacon breakwater flashes\", \"collection\": \"keep\", \"mode\": \"dense\"}", 200);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "results"), 0), "document_id")),
                        "k1");
    json_decref(j);
    j = req_json("GET", "/v1/collections/keep/documents/k1", NULL, NULL, 200);
    json_decref(j);

    /* dropping a collection */
    j = req_json("DELETE", "/v1/collections/keep", NULL, NULL, 200);
    json_decref(j);
    j = req_json("GET", "/v1/collections/keep/documents/k1", NULL, NULL, 404);
    json_decref(j);
    j = req_json("DELETE", "/v1/collections/keep", NULL, NULL, 404);
    json_decref(j);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upload_get_retrieve),
        cmocka_unit_test(test_replace_text_upload_delete),
        cmocka_unit_test(test_bad_uploads_store_nothing),
        cmocka_unit_test(test_percent_escapes),
        cmocka_unit_test(test_survives_restart_and_kill),
    };
    int rc = cmocka_run_group_tests_name("documents", tests, start, stop);
    curl_global_cleanup();
    return rc;
}
