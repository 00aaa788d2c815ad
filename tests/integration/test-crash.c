/* Crash consistency: the daemon is killed with SIGKILL at random moments
 * while clients ingest documents and ask questions; after each restart,
 * every acknowledged document is readable and searchable by both
 * retrievers, no document is half there, the vector index agrees with
 * SQLite, and every acknowledged answer has its ledger row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define ROUNDS 4
#define MAX_DOCS 4000

static struct daemon D;

enum doc_state { DOC_NONE, DOC_SENT, DOC_ACKED };
static _Atomic int doc_state[MAX_DOCS];
static atomic_int next_doc, answers_acked;
static atomic_bool stop_clients;

static int start(void **state) {
    (void)state;
    /* a low ann_threshold: kills also land during approximate-index builds */
    daemon_prepare(&D, "{\"retrieval\": {\"index_save_interval_ms\": 50, \"ann_threshold\": 64}}");
    return daemon_start(&D) ? 0 : -1;
}

static int stop(void **state) {
    (void)state;
    return daemon_finish(&D); /* non-zero: a crash or a leak (ASan) at exit */
}

/* Each document's text is derived from its number, so a reader can check
 * that what it gets back is whole. */
static void doc_text(int i, char *out, size_t n) {
    snprintf(out, n,
             "Document %d tells of lighthouse keeper number %d. The keeper %d lit lamp %d every night. "
             "Marker word zq%dzq closes it.",
             i, i, i, i, i);
}

static size_t sink(char *p, size_t s, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return s * n;
}

static void *ingest_client(void *arg) {
    (void)arg;
    CURL *c = curl_easy_init();
    char url[128];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    while (!atomic_load(&stop_clients)) {
        int i = atomic_fetch_add(&next_doc, 1);
        if (i >= MAX_DOCS)
            break;
        char text[256], body[512];
        doc_text(i, text, sizeof text);
        snprintf(body, sizeof body, "[{\"id\": \"d%d\", \"text\": \"%s\"}]", i, text);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/collections/crash/documents", D.port);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        atomic_store(&doc_state[i], DOC_SENT);
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 201)
            atomic_store(&doc_state[i], DOC_ACKED);
        else if (status == 0)
            break; /* the daemon died under us */
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static void *query_client(void *arg) {
    (void)arg;
    CURL *c = curl_easy_init();
    char url[128];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    while (!atomic_load(&stop_clients)) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/query", D.port);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"question\": \"Who lit the lamp?\", \"collection\": \"crash\"}");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200)
            atomic_fetch_add(&answers_acked, 1);
        else if (status == 0)
            break;
        else
            usleep(5000); /* 404 before the collection exists */
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static json_t *get_json(const char *path, const char *body, long *ret_status) {
    struct http_resp r;
    http_do(&D, body ? "POST" : "GET", path, body ? "application/json" : NULL, body, body ? strlen(body) : 0, &r);
    *ret_status = r.status;
    json_t *j = json_loads(r.body, 0, NULL);
    http_resp_done(&r);
    return j;
}

static double scrape_gauge(const char *name) {
    struct http_resp r;
    http_do(&D, "GET", "/metrics", NULL, NULL, 0, &r);
    double v = r.body ? metric_sample(r.body, name) : -1;
    http_resp_done(&r);
    return v;
}

static int ledger_rows(void) {
    char db[160];
    snprintf(db, sizeof db, "%s/ledger.db", D.dir);
    sqlite3 *h = NULL;
    int n = -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT count(*) FROM ledger", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* The crash collection's in-memory lexical index, as GET /v1/collections
 * shows it; false when it is not listed. */
static bool lexical_info(bool *ret_ready, double *ret_chunks, double *ret_stored) {
    long status = 0;
    json_t *j = get_json("/v1/collections", NULL, &status);
    json_t *arr = json_object_get(j, "collections");
    bool found = false;
    for (size_t i = 0; status == 200 && i < json_array_size(arr); i++) {
        json_t *c = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(c, "name")), "crash") != 0)
            continue;
        json_t *lx = json_object_get(c, "lexical");
        *ret_ready = json_is_true(json_object_get(lx, "ready"));
        *ret_chunks = json_number_value(json_object_get(lx, "chunks"));
        *ret_stored = json_number_value(json_object_get(c, "chunks"));
        found = true;
    }
    json_decref(j);
    return found;
}

static void verify(int upto) {
    int acked = 0, present_unacked = 0;
    /* the restarted server builds the lexical index from SQLite in the
     * background: wait for it, so the searches below use it */
    bool ready = false, listed = true;
    double lex_chunks = 0, stored = 0;
    for (int i = 0; i < 400 && (listed = lexical_info(&ready, &lex_chunks, &stored)) && !ready; i++)
        usleep(25 * 1000);
    if (listed && !ready)
        fail_msg("the lexical index was not ready 10 s after the restart");
    if (lex_chunks != stored)
        fail_msg("the lexical index holds %.0f chunks, the store %.0f", lex_chunks, stored);
    for (int i = 0; i < upto; i++) {
        int st = atomic_load(&doc_state[i]);
        if (st == DOC_NONE)
            continue;
        char path[96], want[256];
        snprintf(path, sizeof path, "/v1/collections/crash/documents/d%d", i);
        long status = 0;
        json_t *j = get_json(path, NULL, &status);
        doc_text(i, want, sizeof want);
        if (st == DOC_ACKED) {
            acked++;
            if (status != 200)
                fail_msg("acknowledged document d%d is gone (status %ld)", i, status);
        }
        if (status == 200) {
            /* never half there: the whole text, and findable by its marker */
            if (strcmp(json_string_value(json_object_get(j, "text")), want) != 0)
                fail_msg("document d%d is not whole", i);
            present_unacked += st != DOC_ACKED;
            if (i % 7 == 0 || st != DOC_ACKED) { /* spot-check search on a sample, and every unacked one */
                /* lexical: its unique marker word; dense: its whole text
                 * (cosine 1 with its own vector, and no other text is equal) */
                char q[512];
                static const char *const modes[] = {"lexical", "dense"};
                for (int m = 0; m < 2; m++) {
                    if (m == 0)
                        snprintf(q, sizeof q,
                                 "{\"question\": \"zq%dzq\", \"collection\": \"crash\", \"k\": 3, \"mode\": \"lexical\"}", i);
                    else
                        snprintf(q, sizeof q,
                                 "{\"question\": \"%s\", \"collection\": \"crash\", \"k\": 3, \"mode\": \"dense\"}", want);
                    long s2 = 0;
                    json_t *rj = get_json("/v1/retrieve", q, &s2);
                    json_t *r0 = json_array_get(json_object_get(rj, "results"), 0);
                    char want_id[16];
                    snprintf(want_id, sizeof want_id, "d%d", i);
                    if (s2 != 200 || !r0 || strcmp(json_string_value(json_object_get(r0, "document_id")), want_id) != 0)
                        fail_msg("d%d is not the top %s result for its marker", i, modes[m]);
                    json_decref(rj);
                }
            }
        } else if (status != 404) {
            fail_msg("d%d: unexpected status %ld", i, status);
        }
        json_decref(j);
    }
    /* the vector index holds exactly the chunks SQLite holds */
    double vectors = scrape_gauge("slorag_index_vectors"), chunks = scrape_gauge("slorag_store_chunks");
    if (vectors != chunks)
        fail_msg("index has %.0f vectors but the store %.0f chunks", vectors, chunks);
    print_message("# verified %d acknowledged documents (%d unacknowledged ones were fully stored), %.0f chunks\n",
                  acked, present_unacked, chunks);
}

static void test_kill_during_writes(void **state) {
    (void)state;
    srand((unsigned)time(NULL));
    for (int round = 0; round < ROUNDS; round++) {
        atomic_store(&stop_clients, false);
        int answers_before = atomic_load(&answers_acked);
        int rows_before = ledger_rows();
        (void)rows_before;
        pthread_t th[3];
        pthread_create(&th[0], NULL, ingest_client, NULL);
        pthread_create(&th[1], NULL, ingest_client, NULL);
        pthread_create(&th[2], NULL, query_client, NULL);
        usleep((useconds_t)(150 + rand() % 450) * 1000); /* a random moment */
        assert_int_equal(daemon_stop(&D, SIGKILL, 5000), -1);
        atomic_store(&stop_clients, true);
        for (int i = 0; i < 3; i++)
            pthread_join(th[i], NULL);
        /* every acknowledged answer has its row (rows can exceed: answers
         * whose response was lost in the kill) */
        int rows = ledger_rows();
        if (rows < atomic_load(&answers_acked))
            fail_msg("round %d: %d answers acknowledged but %d ledger rows", round, atomic_load(&answers_acked), rows);
        (void)answers_before;
        assert_true(daemon_start(&D));
        verify(atomic_load(&next_doc) < MAX_DOCS ? atomic_load(&next_doc) : MAX_DOCS);
    }
    assert_true(atomic_load(&next_doc) > 20); /* the test really wrote */
}

/* ledger.retention_days, asked for at start-up (then hourly): a row older
 * than that goes, the rows the kills above left (this month's) stay. */
static void test_ledger_retention(void **state) {
    (void)state;
    assert_int_equal(daemon_stop(&D, SIGTERM, 10000), 0);
    char db[160], sql[256];
    snprintf(db, sizeof db, "%s/ledger.db", D.dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    snprintf(sql, sizeof sql, "INSERT INTO ledger(ts_ms, tenant, request_id, cost) VALUES (%lld, 'default', 'old', 0)",
             ((long long)time(NULL) - 400LL * 86400) * 1000);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    int rows = ledger_rows();
    assert_true(rows > 1);
    char cfg[160];
    snprintf(cfg, sizeof cfg, "%s/config.json", D.dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("{\"retrieval\": {\"index_save_interval_ms\": 50}, \"ledger\": {\"retention_days\": 365}}", f);
    fclose(f);
    assert_true(daemon_start(&D));
    for (int i = 0; i < 500 && ledger_rows() != rows - 1; i++)
        usleep(10 * 1000);
    assert_int_equal(ledger_rows(), rows - 1);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_during_writes), cmocka_unit_test(test_ledger_retention)};
    int rc = cmocka_run_group_tests_name("crash", tests, start, stop);
    curl_global_cleanup();
    return rc;
}
