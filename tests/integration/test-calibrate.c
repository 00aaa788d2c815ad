/* `slorag eval --calibrate` end to end: it measures the SQuAD mini set,
 * writes a calibration file that loads, and a daemon started with
 * "query": {"calibration": FILE} plans from those priors (a fresh model's
 * prediction is its prior).  A missing or malformed file stops start-up
 * with a message naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "daemon.h"
#include "intent.h"
#include "model.h"
#include "space.h"

static struct daemon D;

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_config(const char *cal_path) {
    char path[160];
    snprintf(path, sizeof path, "%s/config.json", D.dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"query\": {\"calibration\": \"%s\"}}", cal_path);
    fclose(f);
}

static void test_calibrate_and_plan_from_it(void **state) {
    (void)state;
    daemon_prepare(&D, NULL);
    char cal[160], cmd[1024];
    snprintf(cal, sizeof cal, "%s/priors.json", D.dir);
    snprintf(cmd, sizeof cmd, "'%s' eval --dataset '%s/tests/data/squad-mini.json' --calibrate '%s' > '%s/cal.out' 2>&1",
             getenv("SLORAG_BIN"), getenv("SLORAG_SOURCE_ROOT"), cal, D.dir);
    assert_int_equal(run(cmd), 0);

    json_error_t je;
    json_t *doc = json_load_file(cal, 0, &je);
    assert_non_null(doc);
    json_t *configs = json_object_get(doc, "configs");
    /* no LLM backend in the default config: the extractive tier, three retrievers, k x rerank each */
    assert_int_equal(json_object_size(configs), 3 * 3 * 2);
    json_t *base = json_object_get(json_object_get(configs, "hybrid/k5/extractive"), "*");
    assert_non_null(base);
    assert_int_equal(json_integer_value(json_object_get(base, "n")), 30); /* every question of the mini set */
    double q = json_real_value(json_object_get(base, "quality"));
    assert_true(q > 0.05 && q < 0.95);
    assert_int_equal(json_array_size(json_object_get(doc, "measured")), 3);
    double sig = json_number_value(json_object_get(base, "signal")); /* the confidence signal's mean */
    assert_true(json_is_number(json_object_get(base, "signal")) && sig > 0 && sig <= 1);

    /* an intent's figures are its own pulled toward the overall ones with
     * the weight of 10 questions: checked against a plain eval of the
     * same configuration (the extractive reader is deterministic) */
    char raw[160];
    snprintf(raw, sizeof raw, "%s/raw.json", D.dir);
    snprintf(cmd, sizeof cmd,
             "'%s' eval --dataset '%s/tests/data/squad-mini.json' --tier extractive --mode hybrid --json-out '%s' "
             "> /dev/null 2>&1",
             getenv("SLORAG_BIN"), getenv("SLORAG_SOURCE_ROOT"), raw);
    assert_int_equal(run(cmd), 0);
    json_t *rawdoc = json_load_file(raw, 0, &je);
    assert_non_null(rawdoc);
    json_t *factoid = json_object_get(json_object_get(rawdoc, "intents"), "factoid");
    assert_non_null(factoid);
    double fn = (double)json_integer_value(json_object_get(factoid, "questions"));
    double fa = (double)json_integer_value(json_object_get(factoid, "answerable"));
    double fq = (json_number_value(json_object_get(factoid, "f1")) * fa +
                 json_number_value(json_object_get(factoid, "abstain_recall")) * (fn - fa)) / fn;
    json_t *fcell = json_object_get(json_object_get(configs, "hybrid/k5/extractive"), "factoid");
    assert_non_null(fcell);
    double wantq = (fn * fq + 10 * q) / (fn + 10);
    if (fabs(json_number_value(json_object_get(fcell, "quality")) - wantq) > 1e-3)
        fail_msg("factoid cell %.4f, want %.4f (measured %.4f on %.0f questions, overall %.4f)",
                 json_number_value(json_object_get(fcell, "quality")), wantq, fq, fn, q);
    json_decref(rawdoc);

    write_config(cal);
    assert_int_equal(daemon_ingest(&D, "default", getenv("SLORAG_TEST_DOCS")), 0);
    assert_true(daemon_start(&D));
    const char *body = "{\"question\": \"When does the harbour office open?\"}";
    struct http_resp r;
    http_do(&D, "POST", "/v1/query", "application/json", body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    http_resp_done(&r);
    json_t *d = json_object_get(j, "decision");
    const char *key = json_string_value(json_object_get(json_object_get(d, "planner"), "config"));
    const char *intent = json_string_value(json_object_get(d, "intent"));
    assert_non_null(key);
    json_t *cell = json_object_get(configs, key);
    assert_non_null(cell);
    json_t *want = json_object_get(cell, intent) ? json_object_get(cell, intent) : json_object_get(cell, "*");
    double predicted = json_number_value(json_object_get(json_object_get(d, "predicted"), "quality"));
    double prior = json_number_value(json_object_get(want, "quality"));
    /* the planner hedges quality by the intent's confidence
     * (SLO_INTENT_UNCERTAINTY, 0.25, slo/planner.h) */
    double conf = json_number_value(json_object_get(d, "intent_confidence"));
    double hedged = prior - (1 - conf) * 0.25 * (1 - prior);
    if (fabs(predicted - hedged) > 1e-3)
        fail_msg("planned %s for %s: predicted quality %.4f, calibrated prior %.4f (hedged %.4f)", key, intent,
                 predicted, prior, hedged);
    json_decref(j);
    json_decref(doc);
    assert_int_equal(daemon_stop(&D, SIGTERM, 10000), 0);
    /* the log says which file it loaded */
    FILE *f = fopen(D.log_path, "r");
    char line[1024];
    bool seen = false;
    while (f && fgets(line, sizeof line, f))
        seen = seen || strstr(line, "\"event\":\"calibration_loaded\"");
    if (f)
        fclose(f);
    assert_true(seen);
}

/* With an LLM tier: besides a single call per retriever, replicas with
 * their aggregation are measured whole (x3 vote, x2 judge, pinned at
 * hybrid/k5), and the other retrievers' configurations of the same
 * replicas and aggregation are moved by that measurement. */
static void test_calibrate_llm_tier(void **state) {
    (void)state;
    pid_t sim;
    int port;
    /* the simulated tier reads as well as the answer key allows and errs
     * 30% of the time (docs/llmsim.md, Answer key): independent errors
     * that three votes can outvote */
    char simconf[1024];
    snprintf(simconf, sizeof simconf,
             "{\"seed\": 3, \"answer_key\": \"%s/tests/data/squad-mini.json\", \"models\": [{\"name\": \"small\","
             " \"ttft_ms\": 1, \"ms_per_token\": 0, \"max_concurrency\": 64, \"wrong_rate\": 0.3, \"spans\": 1}]}",
             getenv("SLORAG_SOURCE_ROOT"));
    assert_true(sim_start(D.dir, simconf, NULL, &sim, &port));
    char conf[160], cal[160], cmd[1024];
    snprintf(conf, sizeof conf, "%s/llm.json", D.dir);
    FILE *f = fopen(conf, "w");
    fprintf(f,
            "{\"backends\": [{\"name\": \"s\", \"tier\": \"small\", \"url\": \"http://127.0.0.1:%d\","
            " \"model\": \"small\", \"price_in_per_1k\": 0.001, \"price_out_per_1k\": 0.002}]}",
            port);
    fclose(f);
    snprintf(cal, sizeof cal, "%s/priors-llm.json", D.dir);
    snprintf(cmd, sizeof cmd,
             "'%s' eval --dataset '%s/tests/data/squad-mini.json' --calibrate '%s' --config '%s' > '%s/cal2.out' 2>&1",
             getenv("SLORAG_BIN"), getenv("SLORAG_SOURCE_ROOT"), cal, conf, D.dir);
    int rc = run(cmd);
    proc_stop(sim, SIGTERM, 10000);
    assert_int_equal(rc, 0);
    json_error_t je;
    json_t *doc = json_load_file(cal, 0, &je);
    assert_non_null(doc);
    /* extractive and small on three retrievers, and small's two aggregated passes */
    json_t *measured = json_object_get(doc, "measured");
    assert_int_equal(json_array_size(measured), 3 + 3 + 2);
    bool vote = false, judge = false;
    for (size_t i = 0; i < json_array_size(measured); i++) {
        const char *k = json_string_value(json_object_get(json_array_get(measured, i), "config"));
        vote = vote || strcmp(k, "hybrid/k5/small/x3/vote/t256") == 0;
        judge = judge || strcmp(k, "hybrid/k5/small/x2/judge/t256") == 0;
    }
    assert_true(vote && judge);
    json_t *configs = json_object_get(doc, "configs");
    json_t *m = json_object_get(json_object_get(configs, "hybrid/k5/small/x3/vote/t256"), "*");
    json_t *one = json_object_get(json_object_get(configs, "hybrid/k5/small/t256"), "*");
    json_t *derived = json_object_get(json_object_get(configs, "lexical/k5/small/x3/vote/t256"), "*");
    assert_non_null(m);
    assert_non_null(one);
    assert_non_null(derived);
    assert_int_equal(json_integer_value(json_object_get(m, "n")), 30);
    assert_int_equal(json_integer_value(json_object_get(derived, "n")), 5);
    /* three votes of a tier wrong 30% of the time beat one call */
    double qv = json_number_value(json_object_get(m, "quality")), q1 = json_number_value(json_object_get(one, "quality"));
    if (!(qv > q1))
        fail_msg("x3 vote %.3f, one call %.3f", qv, q1);
    /* slorag eval --plan: one configuration pinned; a key that is not one is a usage error */
    snprintf(cmd, sizeof cmd, "'%s' eval --dataset '%s/tests/data/squad-mini.json' --plan lexical/k3/extractive --limit 4 "
             "> '%s/plan.out' 2>&1 && grep -q '| overall | 4 |' '%s/plan.out'",
             getenv("SLORAG_BIN"), getenv("SLORAG_SOURCE_ROOT"), D.dir, D.dir);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' eval --dataset '%s/tests/data/squad-mini.json' --plan hybrid/k4/extractive "
             "> /dev/null 2>&1", getenv("SLORAG_BIN"), getenv("SLORAG_SOURCE_ROOT"));
    assert_int_equal(run(cmd), 2);
    /* the derived configuration's cost per intent: the prior's shape for
     * it, times how the measured neighbour's figure for that intent stood
     * against its prior, relative to the neighbour overall (an intent it
     * measured on fewer than 3 questions keeps the prior's shape) */
    json_t *dall = json_object_get(configs, "lexical/k5/small/x3/vote/t256");
    json_t *mall = json_object_get(configs, "hybrid/k5/small/x3/vote/t256");
    int dk = slo_space_find("lexical/k5/small/x3/vote/t256"), mk = slo_space_find("hybrid/k5/small/x3/vote/t256");
    double dmean = 0, mmean = 0, pq, pc, pl;
    for (int in = 0; in < SLO_INTENT__COUNT; in++) {
        slo_model_prior(dk, (enum slo_intent)in, &pq, &pc, &pl);
        dmean += pc / SLO_INTENT__COUNT;
        slo_model_prior(mk, (enum slo_intent)in, &pq, &pc, &pl);
        mmean += pc / SLO_INTENT__COUNT;
    }
    double dstar = json_number_value(json_object_get(derived, "cost"));
    double mstar = json_number_value(json_object_get(m, "cost"));
    int moved = 0;
    for (int in = 0; in < SLO_INTENT__COUNT; in++) {
        const char *name = slo_intent_name((enum slo_intent)in);
        json_t *dc = json_object_get(dall, name), *mc = json_object_get(mall, name);
        assert_non_null(dc);
        double dpc, mpc;
        slo_model_prior(dk, (enum slo_intent)in, &pq, &dpc, &pl);
        slo_model_prior(mk, (enum slo_intent)in, &pq, &mpc, &pl);
        double k = mc ? (json_number_value(json_object_get(mc, "cost")) / mpc) / (mstar / mmean) : 1;
        double want = dstar * (dpc / dmean) * k, got = json_number_value(json_object_get(dc, "cost"));
        if (fabs(got - want) > 1e-6 * want + 1e-9)
            fail_msg("%s: derived cost %.8f, want %.8f", name, got, want);
        moved += mc != NULL;
        assert_true(fabs(json_number_value(json_object_get(dc, "quality")) -
                         json_number_value(json_object_get(derived, "quality"))) < 1e-9);
    }
    assert_true(moved >= 2); /* factoid, and intents of one or two questions (their cost) */
    /* a measured configuration's intent of one or two questions: its own
     * cost, the overall quality and p95 (too few for those) */
    int partial = 0;
    for (int in = 0; in < SLO_INTENT__COUNT; in++) {
        json_t *mc = json_object_get(mall, slo_intent_name((enum slo_intent)in));
        if (!mc || json_integer_value(json_object_get(mc, "n")) != json_integer_value(json_object_get(m, "n")))
            continue;
        partial++;
        assert_true(json_number_value(json_object_get(mc, "quality")) == json_number_value(json_object_get(m, "quality")));
        assert_true(json_number_value(json_object_get(mc, "latency_p95_ms")) ==
                    json_number_value(json_object_get(m, "latency_p95_ms")));
        assert_true(json_number_value(json_object_get(mc, "cost")) > 0);
    }
    assert_true(partial >= 1);
    json_t *cells[] = {m, one, derived};
    for (size_t i = 0; i < 3; i++) {
        double sig = json_number_value(json_object_get(cells[i], "signal"));
        assert_true(json_is_number(json_object_get(cells[i], "signal")) && sig >= 0 && sig <= 1);
    }
    json_decref(doc);
}

static void test_bad_calibration_stops_startup(void **state) {
    (void)state;
    static const char *const bad[] = {
        "{\"configs\": {\"hybrid/k5/huge/t256\": {}}}",      /* unknown configuration */
        "{\"configs\": {\"hybrid/k5/extractive\": {\"*\": {\"quality\": 7}}}}", /* out of range */
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] + 1; i++) {
        char cal[160], cmd[1024];
        snprintf(cal, sizeof cal, "%s/bad%zu.json", D.dir, i);
        if (i < sizeof bad / sizeof bad[0]) {
            FILE *f = fopen(cal, "w");
            fputs(bad[i], f);
            fclose(f);
        } /* else: the file does not exist */
        write_config(cal);
        snprintf(cmd, sizeof cmd, "timeout 10 '%s' serve --config '%s/config.json' --data '%s' --listen 127.0.0.1:0 > /dev/null 2> '%s/bad.err'",
                 getenv("SLORAG_BIN"), D.dir, D.dir, D.dir);
        assert_int_equal(run(cmd), 1);
        char errp[160], line[512] = "";
        snprintf(errp, sizeof errp, "%s/bad.err", D.dir);
        FILE *f = fopen(errp, "r");
        bool named = false;
        while (f && fgets(line, sizeof line, f))
            named = named || (strstr(line, "query.calibration") && strstr(line, cal));
        if (f)
            fclose(f);
        assert_true(named);
    }
}

static int stop(void **state) {
    (void)state;
    return daemon_finish(&D);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calibrate_and_plan_from_it),
        cmocka_unit_test(test_calibrate_llm_tier),
        cmocka_unit_test(test_bad_calibration_stops_startup),
    };
    int rc = cmocka_run_group_tests_name("calibrate", tests, NULL, stop);
    curl_global_cleanup();
    return rc;
}
