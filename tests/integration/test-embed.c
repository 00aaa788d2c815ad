/* End-to-end: slorag with the HTTP embedder against the real simulator's
 * /v1/embeddings on loopback.  Ingestion (`slorag ingest` and the upload
 * API) and dense search in both encodings, which must agree to the float;
 * backend faults (500, malformed JSON, a hung backend, a closed port) as
 * 502 with the cause; a start-up probe that cannot reach its backend; and
 * the dimension rule: a collection embedded at one dimension, served by an
 * embedder of another, answers 409 until it is emptied and re-ingested. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

#define SIM_DIM 64

static char sim_dir[64];
static pid_t sim_pid;
static int sim_port;

static const char sim_config[] =
    "{\"seed\": 5, \"embedding_dim\": 64, \"hang_ms\": 3000, \"models\": ["
    "{\"name\": \"emb\", \"max_concurrency\": 64},"
    "{\"name\": \"e500\", \"faults\": {\"http500\": 1.0}},"
    "{\"name\": \"garbled\", \"faults\": {\"malformed\": 1.0}},"
    "{\"name\": \"hung\", \"faults\": {\"timeout\": 1.0}}"
    "]}";

static int sim_up(void **state) {
    (void)state;
    snprintf(sim_dir, sizeof sim_dir, "/tmp/slorag-embsim-XXXXXX");
    if (!mkdtemp(sim_dir))
        return -1;
    return sim_start(sim_dir, sim_config, NULL, &sim_pid, &sim_port) ? 0 : -1;
}

static int sim_down(void **state) {
    (void)state;
    int st = proc_stop(sim_pid, SIGTERM, 10000);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sim_dir);
    if (system(cmd) != 0)
        return -1;
    return st == 0 ? 0 : -1;
}

/* Writes d's config: an HTTP embedder on the simulator (or at url) with
 * the given model, encoding and dimension; model NULL = the built-in one. */
/* When set, "query.calibration": priors that make the planner choose
 * hybrid retrieval (so the lexical fallback can be seen). */
static char prefer_hybrid[160];

static void write_config(struct daemon *d, const char *url, const char *model, const char *encoding, int dim) {
    char path[128], sim_url[64];
    snprintf(path, sizeof path, "%s/config.json", d->dir);
    snprintf(sim_url, sizeof sim_url, "http://127.0.0.1:%d", sim_port);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    char query[256];
    snprintf(query, sizeof query, "{\"default_tier\": \"extractive\"%s%s%s}", prefer_hybrid[0] ? ", \"calibration\": \"" : "",
             prefer_hybrid, prefer_hybrid[0] ? "\"" : "");
    if (model)
        fprintf(f,
                "{\"query\": %s,"
                " \"embedder\": {\"kind\": \"http\", \"url\": \"%s\", \"model\": \"%s\", \"encoding\": \"%s\","
                " \"batch\": 8, \"connect_timeout_ms\": 300, \"timeout_ms\": 300, \"dimension\": %d}}",
                query, url ? url : sim_url, model, encoding, dim);
    else
        fputs("{\"query\": {\"default_tier\": \"extractive\"}}", f);
    fclose(f);
}

static void start(struct daemon *d) {
    if (!daemon_start(d)) {
        daemon_dump_log(d);
        fail_msg("daemon did not start");
    }
}

/* POST path with body; expects status want; returns the parsed reply. */
static json_t *post(struct daemon *d, const char *path, const char *body, long want) {
    struct http_resp r;
    http_do(d, "POST", path, "application/json", body, strlen(body), &r);
    if (r.status != want)
        fail_msg("POST %s: status %ld, want %ld: %s", path, r.status, want, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", r.body);
    http_resp_done(&r);
    return j;
}

static json_t *retrieve(struct daemon *d, const char *collection, const char *mode, long want) {
    char body[256];
    snprintf(body, sizeof body,
             "{\"question\": \"How tall is the lighthouse?\", \"collection\": \"%s\", \"mode\": \"%s\", \"k\": 3}",
             collection, mode);
    return post(d, "/v1/retrieve", body, want);
}

static void expect_message(json_t *j, const char *want) {
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (!m || !strstr(m, want))
        fail_msg("error message \"%s\" does not contain \"%s\"", m ? m : "(none)", want);
}

static const char docs_batch[] =
    "[{\"id\": \"pier\", \"text\": \"The new pier was built of oak in 1902 and is two hundred metres long.\"},"
    " {\"id\": \"bells\", \"text\": \"The church bells ring at noon on Sundays.\"}]";

/* Ingests the test documents (CLI) and a batch (API), then searches. */
static double embed_and_search(const char *encoding, int dim) {
    struct daemon d;
    daemon_prepare(&d, NULL);
    write_config(&d, NULL, "emb", encoding, dim);
    assert_int_equal(daemon_ingest(&d, "docs", getenv("SLORAG_TEST_DOCS")), 0);
    start(&d);
    json_t *j = post(&d, "/v1/collections/docs/documents", docs_batch, 201);
    assert_int_equal(json_integer_value(json_object_get(j, "stored")), 2);
    json_decref(j);

    j = retrieve(&d, "docs", "dense", 200);
    json_t *top = json_array_get(json_object_get(j, "results"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(top, "document_id")), "lighthouse.txt"));
    double score = json_real_value(json_object_get(json_object_get(json_object_get(top, "scores"), "dense"), "score"));
    assert_true(score > 0.2 && score <= 1.0001);
    json_decref(j);
    j = retrieve(&d, "docs", "hybrid", 200);
    top = json_array_get(json_object_get(j, "results"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(top, "document_id")), "lighthouse.txt"));
    json_decref(j);
    /* a question to the pier document, stored through the API */
    j = post(&d, "/v1/retrieve",
             "{\"question\": \"How long is the pier?\", \"collection\": \"docs\", \"mode\": \"dense\", \"k\": 1}", 200);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "results"), 0),
                                                          "document_id")),
                        "pier");
    json_decref(j);
    /* a whole answer through the dense retriever */
    j = post(&d, "/v1/query", "{\"question\": \"How tall is the lighthouse?\", \"collection\": \"docs\", \"mode\": \"dense\"}",
             200);
    assert_non_null(strstr(json_string_value(json_object_get(j, "answer")), "forty-two metres"));
    json_decref(j);
    assert_int_equal(daemon_finish(&d), 0);
    return score;
}

static void test_float_and_base64(void **state) {
    (void)state;
    double f = embed_and_search("float", 0); /* dimension learned by the start-up probe */
    double b = embed_and_search("base64", SIM_DIM);
    /* the simulator's two encodings carry the same float32 values */
    assert_float_equal(f, b, 1e-6);
}

/* Each faulty backend, serving a collection embedded by a good one. */
static void test_backend_faults(void **state) {
    (void)state;
    struct daemon d;
    daemon_prepare(&d, NULL);
    snprintf(prefer_hybrid, sizeof prefer_hybrid, "%s/prefer-hybrid.json", d.dir);
    FILE *cf = fopen(prefer_hybrid, "w");
    assert_non_null(cf);
    fputs("{\"configs\": {\"hybrid/k8/rerank/extractive\": {\"*\": {\"quality\": 0.95, \"n\": 200}}}}", cf);
    fclose(cf);
    write_config(&d, NULL, "emb", "float", SIM_DIM);
    assert_int_equal(daemon_ingest(&d, "docs", getenv("SLORAG_TEST_DOCS")), 0);
    static const struct {
        const char *url, *model, *why;
    } cases[] = {
        {NULL, "e500", "/v1/embeddings: HTTP 500: {\"error\":"},
        {NULL, "garbled", "reply is not JSON"},
        {NULL, "hung", "timed out after 300 ms"},
        {"http://127.0.0.1:1", "emb", "embedding backend http://127.0.0.1:1/v1/embeddings: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_config(&d, cases[i].url, cases[i].model, "float", SIM_DIM);
        start(&d);
        json_t *j = retrieve(&d, "docs", "dense", 502);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "backend_error");
        expect_message(j, "retrieval failed: embedding backend ");
        expect_message(j, cases[i].why);
        json_decref(j);
        j = post(&d, "/v1/query",
                 "{\"question\": \"How tall is the lighthouse?\", \"collection\": \"docs\", \"mode\": \"hybrid\"}", 502);
        expect_message(j, cases[i].why);
        json_decref(j);
        /* without a mode the planner chose dense retrieval: the answer
         * comes from lexical search, and the record says why */
        j = post(&d, "/v1/query", "{\"question\": \"How tall is the lighthouse?\", \"collection\": \"docs\"}", 200);
        {
            json_t *dec = json_object_get(j, "decision");
            assert_string_equal(json_string_value(json_object_get(json_object_get(dec, "plan"), "retriever")), "lexical");
            char *sk = json_dumps(json_object_get(dec, "skipped"), 0);
            if (!strstr(sk, "\"stage\": \"dense\"")) { char *dd = json_dumps(dec, 0); fail_msg("no dense note: %s", dd); }
            assert_non_null(strstr(sk, "lexical search only"));
            free(sk);
            assert_non_null(json_string_value(json_object_get(j, "answer")));
        }
        json_decref(j);
        j = post(&d, "/v1/collections/docs/documents", docs_batch, 502);
        expect_message(j, "stored 0 of 2 documents, then: embedding backend ");
        expect_message(j, cases[i].why);
        json_decref(j);
        /* lexical search needs no embedding */
        j = retrieve(&d, "docs", "lexical", 200);
        assert_true(json_array_size(json_object_get(j, "results")) > 0);
        json_decref(j);
        assert_int_equal(daemon_stop(&d, SIGTERM, 10000), 0); /* clean exit; under ASan, no leak */
    }
    prefer_hybrid[0] = '\0';
    assert_int_equal(daemon_finish(&d), 0);
}

/* dimension 0 makes start-up ask the backend; unreachable, it is fatal. */
static void test_probe_unreachable(void **state) {
    (void)state;
    struct daemon d;
    daemon_prepare(&d, NULL);
    write_config(&d, "http://127.0.0.1:1", "emb", "float", 0);
    assert_false(daemon_start(&d));
    assert_int_equal(daemon_stop(&d, 0, 10000), 1);
    char path[160], log[4096] = "";
    snprintf(path, sizeof path, "%s", d.log_path);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    if (!strstr(log, "slorag: cannot start the embedder: embedding backend http://127.0.0.1:1/v1/embeddings: "))
        fail_msg("log: %s", log);
    daemon_cleanup(&d);
}

static void test_dimension_change(void **state) {
    (void)state;
    struct daemon d;
    daemon_prepare(&d, NULL);
    write_config(&d, NULL, "emb", "base64", SIM_DIM);
    assert_int_equal(daemon_ingest(&d, "docs", getenv("SLORAG_TEST_DOCS")), 0);

    /* the built-in embedder (256 dimensions) over 64-dimension vectors */
    write_config(&d, NULL, NULL, NULL, 0);
    start(&d);
    static const char want[] = "embedding dimension changed: the collection's stored embeddings have 64 dimensions, "
                               "the embedder (builtin) gives 256 - re-embed the collection (see docs/retrieval.md)";
    json_t *j = retrieve(&d, "docs", "dense", 409);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "conflict");
    expect_message(j, want);
    json_decref(j);
    j = retrieve(&d, "docs", "hybrid", 409);
    expect_message(j, want);
    json_decref(j);
    j = post(&d, "/v1/collections/docs/documents", docs_batch, 409);
    expect_message(j, want);
    json_decref(j);
    j = retrieve(&d, "docs", "lexical", 200);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(json_object_get(j, "results"), 0),
                                                             "document_id")),
                           "lighthouse.txt"));
    json_decref(j);
    /* re-embedding = ingesting again into an emptied collection */
    struct http_resp r;
    http_do(&d, "DELETE", "/v1/collections/docs", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    http_resp_done(&r);
    j = post(&d, "/v1/collections/docs/documents", docs_batch, 201);
    json_decref(j);
    j = post(&d, "/v1/retrieve",
             "{\"question\": \"How long is the pier?\", \"collection\": \"docs\", \"mode\": \"dense\", \"k\": 1}", 200);
    json_decref(j);
    assert_int_equal(daemon_stop(&d, SIGTERM, 10000), 0);

    /* the backend changes its dimension under a configured one: nothing is
     * stored, the reply says what happened */
    write_config(&d, NULL, "emb", "float", 32);
    start(&d);
    j = post(&d, "/v1/collections/fresh/documents", docs_batch, 409);
    expect_message(j, "stored 0 of 2 documents, then: embedding backend ");
    expect_message(j, "embedding dimension changed: the backend returned 64, the index has 32 - re-embed the "
                      "collection (see docs/retrieval.md)");
    json_decref(j);
    assert_int_equal(daemon_finish(&d), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_and_base64),
        cmocka_unit_test(test_backend_faults),
        cmocka_unit_test(test_probe_unreachable),
        cmocka_unit_test(test_dimension_change),
    };
    return cmocka_run_group_tests(tests, sim_up, sim_down);
}
