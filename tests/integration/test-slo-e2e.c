/* End-to-end SLO planning: tenants with different profiles against the
 * LLM simulator's three tiers.  Each tenant's plan follows its profile,
 * budgets are enforced (refuse or degrade, as configured), and a request
 * may tighten but not loosen its tenant's objectives. */
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
#include <string.h>

#include "daemon.h"

#define ADMIN "slo-e2e-admin-key-123456"

static struct daemon D;
static pid_t sim_pid;
static int sim_port;

static const char sim_config[] =
    "{\"seed\": 5, \"models\": ["
    "{\"name\": \"small\", \"ttft_ms\": 5, \"ms_per_token\": 1, \"jitter\": 0, \"max_concurrency\": 64},"
    "{\"name\": \"medium\", \"ttft_ms\": 10, \"ms_per_token\": 1, \"jitter\": 0, \"max_concurrency\": 64},"
    "{\"name\": \"large\", \"ttft_ms\": 20, \"ms_per_token\": 1, \"jitter\": 0, \"max_concurrency\": 64,"
    " \"wrong_rate\": 0.4}]}";

static json_t *call(const char *method, const char *path, const char *key, const char *body, long *ret_status,
                    char *ret_headers, size_t hlen) {
    char auth[256];
    snprintf(auth, sizeof auth, "Bearer %s", key);
    struct http_resp r;
    http_do_auth(&D, method, path, auth, "application/json", body, body ? strlen(body) : 0, &r);
    *ret_status = r.status;
    if (ret_headers)
        snprintf(ret_headers, hlen, "%.*s", (int)(hlen - 1), r.headers);
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    http_resp_done(&r);
    return j;
}

struct tenant {
    const char *id, *profile;
    char key[128];
};

static struct tenant tenants[] = {
    {"thrifty", "{\"default\": {\"quality_min\": 0.4, \"cost_max\": 0.0001, \"latency_p95_ms\": 3000, \"deadline_ms\": 8000}}"},
    {"balanced", "{\"default\": {\"quality_min\": 0.7, \"cost_max\": 0.0018, \"latency_p95_ms\": 4000, \"deadline_ms\": 8000}}"},
    {"premium", "{\"default\": {\"quality_min\": 0.8, \"cost_max\": 0.05, \"latency_p95_ms\": 20000, \"deadline_ms\": 30000,"
                " \"priorities\": [\"quality\", \"latency\", \"cost\"]}}"},
    {"snappy", "{\"default\": {\"quality_min\": 0.3, \"cost_max\": 0.05, \"latency_p95_ms\": 400, \"deadline_ms\": 2000}}"},
    {"perfectionist", "{\"default\": {\"quality_min\": 0.97, \"cost_max\": 0.5, \"latency_p95_ms\": 20000,"
                      " \"deadline_ms\": 30000, \"priorities\": [\"quality\", \"latency\", \"cost\"]}}"},
    {"capped", "{\"default\": {\"quality_min\": 0.8, \"cost_max\": 0.01, \"latency_p95_ms\": 6000, \"deadline_ms\": 8000},"
               " \"budget\": {\"per_day\": 0.003, \"per_month\": 0, \"when_spent\": \"refuse\"}}"},
    {"frugal", "{\"default\": {\"quality_min\": 0.8, \"cost_max\": 0.01, \"latency_p95_ms\": 6000, \"deadline_ms\": 8000},"
               " \"budget\": {\"per_day\": 0.003, \"per_month\": 0, \"when_spent\": \"degrade\"}}"},
};

static struct tenant *find(const char *id) {
    for (size_t i = 0; i < sizeof tenants / sizeof tenants[0]; i++)
        if (strcmp(tenants[i].id, id) == 0)
            return &tenants[i];
    return NULL;
}

static int start(void **state) {
    (void)state;
    daemon_prepare(&D, NULL);
    if (!sim_start(D.dir, sim_config, NULL, &sim_pid, &sim_port))
        return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", D.dir);
    FILE *f = fopen(path, "w");
    /* prices chosen so one small call costs about 0.0003 */
    fprintf(f,
            "{\"admin_key\": \"" ADMIN "\", \"query\": {\"explore_rate\": 0},"
            " \"backends\": ["
            "{\"name\": \"s\", \"tier\": \"small\", \"url\": \"http://127.0.0.1:%d\", \"model\": \"small\","
            " \"price_in_per_1k\": 0.002, \"price_out_per_1k\": 0.002},"
            "{\"name\": \"m\", \"tier\": \"medium\", \"url\": \"http://127.0.0.1:%d\", \"model\": \"medium\","
            " \"price_in_per_1k\": 0.006, \"price_out_per_1k\": 0.006},"
            "{\"name\": \"l\", \"tier\": \"large\", \"url\": \"http://127.0.0.1:%d\", \"model\": \"large\","
            " \"price_in_per_1k\": 0.03, \"price_out_per_1k\": 0.03}]}",
            sim_port, sim_port, sim_port);
    fclose(f);
    if (!daemon_start(&D))
        return -1;
    for (size_t i = 0; i < sizeof tenants / sizeof tenants[0]; i++) {
        long st;
        char body[128], ppath[128];
        snprintf(body, sizeof body, "{\"id\": \"%s\"}", tenants[i].id);
        json_t *j = call("POST", "/v1/admin/tenants", ADMIN, body, &st, NULL, 0);
        if (st != 201)
            return -1;
        snprintf(tenants[i].key, sizeof tenants[i].key, "%s", json_string_value(json_object_get(j, "api_key")));
        json_decref(j);
        snprintf(ppath, sizeof ppath, "/v1/admin/tenants/%s/profile", tenants[i].id);
        j = call("PUT", ppath, ADMIN, tenants[i].profile, &st, NULL, 0);
        json_decref(j);
        if (st != 200)
            return -1;
        j = call("POST", "/v1/collections/kb/documents", tenants[i].key,
                 "[{\"id\": \"h\", \"text\": \"The harbour office opens at seven in the morning. "
                 "Ferries to the island leave every two hours from pier four.\"}]",
                 &st, NULL, 0);
        json_decref(j);
        if (st != 201)
            return -1;
    }
    return 0;
}

static int stop(void **state) {
    (void)state;
    proc_stop(sim_pid, SIGTERM, 10000);
    return daemon_finish(&D);
}

static const char *ask_body = "{\"question\": \"When does the harbour office open?\", \"collection\": \"kb\"}";

static json_t *ask(const char *tenant, const char *body, long want) {
    long st;
    json_t *j = call("POST", "/v1/query", find(tenant)->key, body ? body : ask_body, &st, NULL, 0);
    if (st != want) {
        char *s = j ? json_dumps(j, 0) : NULL;
        fail_msg("%s: status %ld, want %ld: %s", tenant, st, want, s ? s : "");
    }
    return j;
}

static const char *tier_of(json_t *j) {
    return json_string_value(json_object_get(json_object_get(json_object_get(j, "decision"), "plan"), "generator_tier"));
}

static void test_plans_follow_profiles(void **state) {
    (void)state;
    static const struct {
        const char *tenant, *tier;
    } want[] = {
        {"thrifty", "extractive"}, /* only the free tier fits a 0.0001 cost ceiling */
        {"balanced", "medium"},    /* small misses quality 0.7; large costs more than 0.0018 */
        {"premium", "large"},      /* only large reaches quality 0.8 */
        {"snappy", "extractive"},  /* no LLM tier has a p95 under 400 ms in the priors */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *j = ask(want[i].tenant, NULL, 200);
        if (strcmp(tier_of(j), want[i].tier) != 0) {
            char *s = json_dumps(json_object_get(j, "decision"), JSON_INDENT(1));
            fail_msg("%s: planned %s, want %s: %s", want[i].tenant, tier_of(j), want[i].tier, s);
        }
        json_t *d = json_object_get(j, "decision");
        /* the record carries the objectives, the prediction and each SLO's verdict */
        assert_non_null(json_object_get(d, "objectives"));
        assert_non_null(json_object_get(json_object_get(d, "predicted"), "cost"));
        json_t *met = json_object_get(d, "slo_met");
        assert_true(json_is_boolean(json_object_get(met, "quality")) && json_is_boolean(json_object_get(met, "cost")) &&
                    json_is_boolean(json_object_get(met, "latency")) && json_is_boolean(json_object_get(met, "deadline")));
        json_decref(j);
    }
    /* a request can tighten its tenant's objectives: premium asking for a
     * 400 ms p95 that no LLM tier meets keeps its first priority, quality,
     * and says it relaxed latency */
    json_t *j = ask("premium",
                    "{\"question\": \"When does the harbour office open?\", \"collection\": \"kb\","
                    " \"slo\": {\"latency_p95_ms\": 400}}",
                    200);
    json_t *pl = json_object_get(json_object_get(j, "decision"), "planner");
    assert_string_not_equal(tier_of(j), "extractive");
    assert_true(json_real_value(json_object_get(json_object_get(pl, "predicted"), "quality")) >= 0.8);
    char *relaxed = json_dumps(json_object_get(pl, "relaxed"), 0);
    assert_non_null(strstr(relaxed, "latency"));
    assert_null(strstr(relaxed, "quality"));
    free(relaxed);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(j, "decision"), "objectives"),
                                                        "latency_p95_ms")),
                     400);
    json_decref(j);
    /* but not loosen them: thrifty asking for a big ceiling stays free */
    j = ask("thrifty",
            "{\"question\": \"When does the harbour office open?\", \"collection\": \"kb\", \"slo\": {\"cost_max\": 1}}", 200);
    assert_string_equal(tier_of(j), "extractive");
    json_decref(j);
    /* bad objectives are refused with their path */
    j = ask("thrifty", "{\"question\": \"x\", \"collection\": \"kb\", \"slo\": {\"quality_min\": 2}}", 422);
    json_decref(j);
    long st;
    j = call("PUT", "/v1/admin/tenants/thrifty/profile", ADMIN,
             "{\"default\": {\"latency_p95_ms\": 9000, \"deadline_ms\": 8000}}", &st, NULL, 0);
    assert_int_equal(st, 422);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "default."));
    json_decref(j);
}

/* Budgets: the planner never plans a paid answer the remaining budget
 * cannot cover; once the day's budget is spent the profile's rule applies:
 * refuse (429 budget_exhausted + Retry-After) or degrade to the free tier. */
static void test_budgets(void **state) {
    (void)state;
    static const char *const which[] = {"capped", "frugal"};
    for (int w = 0; w < 2; w++) {
        double spent = 0;
        for (int i = 0; i < 2; i++) {
            json_t *j = ask(which[w], NULL, 200);
            json_t *pl = json_object_get(json_object_get(j, "decision"), "planner");
            double cost = json_real_value(json_object_get(json_object_get(j, "usage"), "cost"));
            double left = json_real_value(json_object_get(pl, "budget_left"));
            double predicted = json_real_value(json_object_get(json_object_get(pl, "predicted"), "cost"));
            assert_true(left >= 0 && predicted <= left + 1e-12); /* within what is left */
            spent += cost;
            json_decref(j);
        }
        assert_true(spent > 0); /* quality 0.8 needs a paid tier: it spent */
        /* the operator lowers the daily budget under what is already spent */
        char profile[512], path[128];
        snprintf(profile, sizeof profile,
                 "{\"default\": {\"quality_min\": 0.8, \"cost_max\": 0.01, \"latency_p95_ms\": 6000,"
                 " \"deadline_ms\": 8000}, \"budget\": {\"per_day\": %.9f, \"when_spent\": \"%s\"}}",
                 spent / 2, w == 0 ? "refuse" : "degrade");
        snprintf(path, sizeof path, "/v1/admin/tenants/%s/profile", which[w]);
        long st;
        json_t *j = call("PUT", path, ADMIN, profile, &st, NULL, 0);
        assert_int_equal(st, 200);
        json_decref(j);
        char headers[2048];
        j = call("POST", "/v1/query", find(which[w])->key, ask_body, &st, headers, sizeof headers);
        if (w == 0) {
            assert_int_equal(st, 429);
            assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "budget_exhausted");
            const char *ra = strstr(headers, "Retry-After: ");
            assert_non_null(ra);
            assert_true(atoi(ra + 13) >= 1 && atoi(ra + 13) <= 86400); /* until the UTC day rolls over */
        } else {
            assert_int_equal(st, 200);
            assert_string_equal(tier_of(j), "extractive");
            assert_true(json_real_value(json_object_get(json_object_get(j, "usage"), "cost")) == 0.0);
            json_t *pl = json_object_get(json_object_get(j, "decision"), "planner");
            assert_true(json_is_true(json_object_get(pl, "budget_spent")));
            assert_true(json_is_true(json_object_get(pl, "degraded")));
        }
        json_decref(j);
    }
    /* spend is durable: after a restart the ledger rebuilds it and "capped"
     * is still refused */
    assert_int_equal(daemon_stop(&D, SIGTERM, 10000), 0);
    assert_true(daemon_start(&D));
    long st;
    json_t *j = call("POST", "/v1/query", find("capped")->key, ask_body, &st, NULL, 0);
    assert_int_equal(st, 429);
    json_decref(j);
}

/* Adaptive depth, expand: a weak answer (here the model abstains: the
 * passages do not hold it) gets one more generator call when the tenant's
 * cost ceiling and deadline allow; the record says so; never twice. */
static void test_escalation(void **state) {
    (void)state;
    json_t *j = ask("balanced", "{\"question\": \"What colour is the harbour master's cat?\", \"collection\": \"kb\"}", 200);
    json_t *d = json_object_get(j, "decision");
    json_t *exp = json_object_get(d, "expanded");
    int escalations = 0;
    for (size_t i = 0; i < json_array_size(exp); i++)
        escalations += strcmp(json_string_value(json_object_get(json_array_get(exp, i), "stage")), "escalate") == 0;
    {
        char *dump0 = json_dumps(json_object_get(d, "expanded"), 0);
        print_message("# expanded: %s attempts %lld\n", dump0, (long long)json_integer_value(json_object_get(json_object_get(d, "actual"), "attempts")));
        free(dump0);
    }
    if (escalations < 1) {
        char *dump = json_dumps(d, 0);
        fail_msg("no escalation: %s", dump);
    }
    /* the thrifty tenant's ceiling leaves no room for a paid call */
    json_decref(j);
    j = ask("thrifty", "{\"question\": \"What colour is the harbour master's cat?\", \"collection\": \"kb\"}", 200);
    exp = json_object_get(json_object_get(j, "decision"), "expanded");
    for (size_t i = 0; i < json_array_size(exp); i++)
        assert_string_not_equal(json_string_value(json_object_get(json_array_get(exp, i), "stage")), "escalate");
    assert_true(json_real_value(json_object_get(json_object_get(j, "usage"), "cost")) == 0.0);
    json_decref(j);
}

/* A request's "config" pins the whole configuration: the planner neither
 * chooses, explores nor escalates; a bad key or a combination with what
 * the key already fixes is a 422 naming the field. */
static void test_pinned_config(void **state) {
    (void)state;
    json_t *j = ask("balanced",
                    "{\"question\": \"What colour is the harbour master's cat?\", \"collection\": \"kb\","
                    " \"config\": \"lexical/k3/small/x2/vote/t256\"}",
                    200);
    json_t *d = json_object_get(j, "decision"), *plan = json_object_get(d, "plan");
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "planner"), "config")),
                        "lexical/k3/small/x2/vote/t256");
    assert_string_equal(json_string_value(json_object_get(plan, "retriever")), "lexical");
    assert_int_equal(json_integer_value(json_object_get(plan, "k")), 3);
    assert_string_equal(tier_of(j), "small");
    assert_int_equal(json_integer_value(json_object_get(plan, "replicas")), 2);
    assert_string_equal(json_string_value(json_object_get(plan, "aggregation")), "vote");
    json_t *exp = json_object_get(d, "expanded");
    for (size_t i = 0; i < json_array_size(exp); i++) /* the unpinned ask escalates (test_escalation) */
        assert_string_not_equal(json_string_value(json_object_get(json_array_get(exp, i), "stage")), "escalate");
    json_decref(j);
    static const struct {
        const char *body, *message;
    } bad[] = {
        {"{\"question\": \"x\", \"config\": \"hybrid/k4/medium/t256\"}", "config: must be a configuration key"},
        {"{\"question\": \"x\", \"config\": 7}", "config: must be a configuration key"},
        {"{\"question\": \"x\", \"config\": \"hybrid/k5/medium/t256\", \"tier\": \"large\"}",
         "config: cannot be combined with tier"},
        {"{\"question\": \"x\", \"config\": \"hybrid/k5/medium/t256\", \"k\": 4}", "config: cannot be combined with k"},
        {"{\"question\": \"x\", \"config\": \"hybrid/k5/medium/t256\", \"mode\": \"dense\"}",
         "config: cannot be combined with mode"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = ask("balanced", bad[i].body, 422);
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        if (!msg || !strstr(msg, bad[i].message))
            fail_msg("%s: message \"%s\", want \"%s\"", bad[i].body, msg ? msg : "", bad[i].message);
        json_decref(j);
    }
}

static int count_stage(json_t *list, const char *stage, const char **ret_reason) {
    int n = 0;
    for (size_t i = 0; i < json_array_size(list); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(list, i), "stage")), stage) == 0) {
            n++;
            if (ret_reason)
                *ret_reason = json_string_value(json_object_get(json_array_get(list, i), "reason"));
        }
    return n;
}

/* Adaptive depth, skip: a plan of three replicas sends two first; when
 * they agree the third is never sent (one call fewer, billed and counted
 * in attempts), and the record says so.  The other way round, all three go
 * out and are aggregated. */
static void test_replicas_stop_early(void **state) {
    (void)state;
    json_t *j = ask("perfectionist", NULL, 200);
    json_t *d = json_object_get(j, "decision");
    char *dump = json_dumps(d, 0);
    json_int_t planned = json_integer_value(json_object_get(json_object_get(d, "plan"), "replicas"));
    if (planned != 3)
        fail_msg("the planner did not plan three replicas: %s", dump);
    json_int_t attempts = json_integer_value(json_object_get(json_object_get(d, "actual"), "attempts"));
    const char *why = NULL;
    if (count_stage(json_object_get(d, "skipped"), "replicas", &why) == 1) {
        assert_non_null(strstr(why, "2 of 3 replicas sent"));
        assert_int_equal(attempts, 2);
    } else {
        assert_int_equal(count_stage(json_object_get(d, "expanded"), "replicas", &why), 1);
        assert_non_null(strstr(why, "3 replicas"));
        assert_int_equal(attempts, 3);
    }
    free(dump);
    json_decref(j);
}

/* Aggregation by an LLM judge: when the replicas disagree, one more call
 * on the same tier picks the answer (the simulator's large tier answers
 * from the wrong passage 40% of the time, so its replicas do disagree on
 * some questions); when they agree the judge is skipped.  Every record is
 * consistent: attempts = replicas sent + 1 exactly when the judge ran. */
static void test_judge(void **state) {
    (void)state;
    static const char *const questions[] = {
        "When does the harbour office open?", "How often do ferries leave for the island?",
        "Where do the ferries leave from?", "What opens at seven in the morning?",
        "Which pier do ferries use?", "At what time does the harbour office open?",
    };
    int judged = 0, skipped = 0, picked = 0;
    for (size_t i = 0; i < sizeof questions / sizeof questions[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"question\": \"%s\", \"collection\": \"kb\"}", questions[i]);
        json_t *j = ask("perfectionist", body, 200);
        json_t *d = json_object_get(j, "decision");
        char *dump = json_dumps(d, 0);
        const char *agg = json_string_value(json_object_get(json_object_get(d, "plan"), "aggregation"));
        if (!agg || strcmp(agg, "judge") != 0)
            fail_msg("the planner did not plan a judge: %s", dump);
        const char *why = NULL;
        int sent = count_stage(json_object_get(d, "skipped"), "replicas", &why) ? 2 : 3;
        json_int_t attempts = json_integer_value(json_object_get(json_object_get(d, "actual"), "attempts"));
        if (count_stage(json_object_get(d, "expanded"), "judge", &why)) {
            judged++;
            picked += strstr(why, "the judge picked answer") != NULL;
            if (attempts != sent + 1 || !strstr(why, "the judge"))
                fail_msg("judge record inconsistent (attempts %lld, sent %d): %s", (long long)attempts, sent, dump);
        } else {
            skipped += count_stage(json_object_get(d, "skipped"), "judge", NULL);
            if (attempts != sent)
                fail_msg("attempts %lld, sent %d: %s", (long long)attempts, sent, dump);
        }
        free(dump);
        json_decref(j);
    }
    print_message("# judge ran on %d questions (named an answer on %d), skipped (answers agreed) on %d\n", judged,
                  picked, skipped);
    assert_true(judged >= 1);
    assert_true(picked >= 1); /* the simulator reads the candidates as passages and cites one */
    assert_true(skipped >= 1);
}

/* Feedback on an answer reaches the planner's model for that plan. */
static void test_feedback(void **state) {
    (void)state;
    json_t *j = ask("balanced", NULL, 200);
    char body[160];
    snprintf(body, sizeof body, "{\"request_id\": \"%s\", \"rating\": 0.0}",
             json_string_value(json_object_get(j, "request_id")));
    json_decref(j);
    long st;
    j = call("POST", "/v1/feedback", find("balanced")->key, body, &st, NULL, 0);
    assert_int_equal(st, 200);
    assert_true(json_is_true(json_object_get(j, "learned")));
    json_decref(j);
    /* another tenant cannot rate it, nor can anyone rate an unknown id */
    j = call("POST", "/v1/feedback", find("premium")->key, body, &st, NULL, 0);
    assert_int_equal(st, 404);
    json_decref(j);
    j = call("POST", "/v1/feedback", find("balanced")->key, "{\"request_id\": \"nope\", \"rating\": 1}", &st, NULL, 0);
    assert_int_equal(st, 404);
    json_decref(j);
    j = call("POST", "/v1/feedback", find("balanced")->key, "{\"request_id\": \"x\", \"rating\": 3}", &st, NULL, 0);
    assert_int_equal(st, 422);
    json_decref(j);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plans_follow_profiles),
        cmocka_unit_test(test_budgets),
        cmocka_unit_test(test_feedback),
        cmocka_unit_test(test_escalation),
        cmocka_unit_test(test_pinned_config),
        cmocka_unit_test(test_replicas_stop_early),
        cmocka_unit_test(test_judge),
    };
    int rc = cmocka_run_group_tests_name("slo-e2e", tests, start, stop);
    curl_global_cleanup();
    return rc;
}
