/* Unit tests for slo/profile.c: parsing with exact error messages,
 * inheritance of intent overrides, serialisation and request tightening. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "profile.h"

static const char *example =
    "{\"default\": {\"quality_min\": 0.7, \"cost_max\": 0.002, \"latency_p95_ms\": 3000, \"deadline_ms\": 8000,"
    "              \"priorities\": [\"latency\", \"quality\", \"cost\"]},"
    " \"intents\": {\"factoid\": {\"latency_p95_ms\": 1500}},"
    " \"budget\": {\"per_day\": 5.0, \"per_month\": 100.0, \"when_spent\": \"degrade\"}}";

static void test_defaults_and_example(void **state) {
    (void)state;
    char err[256] = "";
    struct slo_profile p;
    assert_int_equal(slo_profile_parse(NULL, err, sizeof err, &p), ERR_OK);
    struct slo_objectives o;
    slo_profile_resolve(&p, SLO_INTENT_SUMMARY, &o);
    assert_true(o.quality_min == 0.7 && o.cost_max == 0.002);
    assert_int_equal(o.latency_p95_ms, 3000);
    assert_int_equal(o.deadline_ms, 8000);
    assert_int_equal(o.priorities[0], SLO_OBJ_LATENCY);
    assert_int_equal(o.priorities[1], SLO_OBJ_QUALITY);
    assert_int_equal(o.priorities[2], SLO_OBJ_COST);
    assert_true(p.budget.per_day == 0 && p.budget.per_month == 0);
    assert_int_equal(p.budget.when_spent, SLO_SPENT_DEGRADE);

    assert_int_equal(slo_profile_parse_text(example, err, sizeof err, &p), ERR_OK);
    slo_profile_resolve(&p, SLO_INTENT_FACTOID, &o);
    assert_int_equal(o.latency_p95_ms, 1500);
    assert_int_equal(o.deadline_ms, 8000); /* inherited */
    assert_true(o.cost_max == 0.002 && o.quality_min == 0.7);
    slo_profile_resolve(&p, SLO_INTENT_COMPARISON, &o);
    assert_int_equal(o.latency_p95_ms, 3000);
    assert_int_equal(p.intents[SLO_INTENT_FACTOID].set, SLO_KEY_LATENCY_P95);
    assert_int_equal(p.intents[SLO_INTENT_LIST].set, 0);
    assert_true(p.budget.per_day == 5.0 && p.budget.per_month == 100.0);

    /* overrides inherit from the parsed defaults, whatever the key order */
    assert_int_equal(slo_profile_parse_text("{\"intents\": {\"summary\": {\"quality_min\": 0.9, \"priorities\":"
                                            " [\"quality\", \"latency\", \"cost\"]}},"
                                            " \"default\": {\"deadline_ms\": 20000, \"latency_p95_ms\": 9000}}",
                                            err, sizeof err, &p),
                     ERR_OK);
    slo_profile_resolve(&p, SLO_INTENT_SUMMARY, &o);
    assert_true(o.quality_min == 0.9);
    assert_int_equal(o.deadline_ms, 20000);
    assert_int_equal(o.latency_p95_ms, 9000);
    assert_int_equal(o.priorities[0], SLO_OBJ_QUALITY);
    slo_profile_resolve(&p, SLO_INTENT_FACTOID, &o);
    assert_int_equal(o.priorities[0], SLO_OBJ_LATENCY);

    assert_string_equal(slo_objective_name(SLO_OBJ_COST), "cost");
    assert_int_equal(slo_objective_parse("latency"), SLO_OBJ_LATENCY);
    assert_int_equal(slo_objective_parse("speed"), -1);
}

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"intents\": {\"factoid\": {\"latency_p95_ms\": 9000}}}",
         "intents.factoid.latency_p95_ms: must be <= deadline_ms (8000)"},
        {"{\"intents\": {\"summary\": {\"deadline_ms\": 2000}}}",
         "intents.summary.deadline_ms: must be >= latency_p95_ms (3000)"},
        {"{\"default\": {\"latency_p95_ms\": 9000, \"deadline_ms\": 5000}}",
         "default.latency_p95_ms: must be <= deadline_ms (5000)"},
        {"{\"budget\": {\"when_spent\": \"panic\"}}", "budget.when_spent: must be \"refuse\" or \"degrade\""},
        {"{\"budget\": {\"when_spent\": 1}}", "budget.when_spent: must be \"refuse\" or \"degrade\""},
        {"{\"budget\": {\"per_day\": -5}}", "budget.per_day: must be a number >= 0 (0 = unlimited)"},
        {"{\"budget\": {\"per_month\": \"10\"}}", "budget.per_month: must be a number >= 0 (0 = unlimited)"},
        {"{\"budget\": {\"limit\": 1}}", "budget.limit: unknown key"},
        {"{\"budget\": []}", "budget: must be an object"},
        {"{\"default\": {\"quality_min\": 1.5}}", "default.quality_min: must be a number in 0..1"},
        {"{\"default\": {\"quality_min\": true}}", "default.quality_min: must be a number in 0..1"},
        {"{\"default\": {\"cost_max\": -0.1}}", "default.cost_max: must be a number >= 0"},
        {"{\"default\": {\"latency_p95_ms\": 2.5}}", "default.latency_p95_ms: must be an integer in 1..600000"},
        {"{\"default\": {\"deadline_ms\": 0}}", "default.deadline_ms: must be an integer in 1..600000"},
        {"{\"default\": {\"deadline_ms\": 600001}}", "default.deadline_ms: must be an integer in 1..600000"},
        {"{\"default\": {\"speed\": 1}}", "default.speed: unknown key"},
        {"{\"default\": 7}", "default: must be an object"},
        {"{\"default\": {\"priorities\": [\"latency\", \"quality\"]}}",
         "default.priorities: must be an array listing \"quality\", \"cost\" and \"latency\" once each"},
        {"{\"default\": {\"priorities\": \"latency\"}}",
         "default.priorities: must be an array listing \"quality\", \"cost\" and \"latency\" once each"},
        {"{\"default\": {\"priorities\": [\"latency\", \"speed\", \"cost\"]}}",
         "default.priorities[1]: must be \"quality\", \"cost\" or \"latency\""},
        {"{\"default\": {\"priorities\": [\"cost\", \"quality\", \"cost\"]}}",
         "default.priorities[2]: \"cost\" is listed twice"},
        {"{\"intents\": {\"factoid\": {\"priorities\": [1, 2, 3]}}}",
         "intents.factoid.priorities[0]: must be \"quality\", \"cost\" or \"latency\""},
        {"{\"intents\": {\"poetry\": {}}}", "intents.poetry: unknown intent"},
        {"{\"intents\": {\"factoid\": 3}}", "intents.factoid: must be an object"},
        {"{\"intents\": {\"list\": {\"budget\": 1}}}", "intents.list.budget: unknown key"},
        {"{\"intents\": []}", "intents: must be an object"},
        {"{\"colour\": 1}", "colour: unknown key"},
        {"[]", "profile: must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct slo_profile p, sentinel;
        memset(&p, 0x5a, sizeof p);
        sentinel = p;
        char err[256] = "";
        enum err e = slo_profile_parse_text(cases[i].json, err, sizeof err, &p);
        if (e != ERR_INVALID_FIELD || strcmp(err, cases[i].msg))
            fail_msg("%s: got %s \"%s\", want \"%s\"", cases[i].json, err_name(e), err, cases[i].msg);
        assert_memory_equal(&p, &sentinel, sizeof p); /* untouched on failure */
    }
    char err[256];
    struct slo_profile p;
    assert_int_equal(slo_profile_parse_text("{\"default\": ", err, sizeof err, &p), ERR_BAD_JSON);
    assert_non_null(strstr(err, "profile: invalid JSON at line 1"));
    assert_int_equal(slo_profile_parse_text("{\"budget\": {}, \"budget\": {}}", err, sizeof err, &p), ERR_BAD_JSON);
}

static void test_round_trip(void **state) {
    (void)state;
    const char *text =
        "{\"default\": {\"quality_min\": 0.65, \"cost_max\": 0.01, \"latency_p95_ms\": 2500, \"deadline_ms\": 6000,"
        "              \"priorities\": [\"cost\", \"latency\", \"quality\"]},"
        " \"intents\": {\"factoid\": {\"latency_p95_ms\": 1500},"
        "             \"summary\": {\"deadline_ms\": 12000, \"latency_p95_ms\": 9000, \"cost_max\": 0.05},"
        "             \"chitchat\": {\"priorities\": [\"latency\", \"cost\", \"quality\"], \"quality_min\": 0}},"
        " \"budget\": {\"per_day\": 2.5, \"per_month\": 0, \"when_spent\": \"refuse\"}}";
    char err[256];
    struct slo_profile a, b;
    assert_int_equal(slo_profile_parse_text(text, err, sizeof err, &a), ERR_OK);
    json_t *j = slo_profile_to_json(&a);
    assert_non_null(j);
    /* overrides keep only the keys they name */
    json_t *factoid = json_object_get(json_object_get(j, "intents"), "factoid");
    assert_int_equal(json_object_size(factoid), 1);
    assert_int_equal(json_integer_value(json_object_get(factoid, "latency_p95_ms")), 1500);
    assert_int_equal(json_object_size(json_object_get(j, "default")), 5);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "budget"), "when_spent")), "refuse");
    assert_int_equal(slo_profile_parse(j, err, sizeof err, &b), ERR_OK);
    json_decref(j);
    for (int i = 0; i < SLO_INTENT__COUNT; i++) {
        struct slo_objectives oa, ob;
        slo_profile_resolve(&a, (enum slo_intent)i, &oa);
        slo_profile_resolve(&b, (enum slo_intent)i, &ob);
        assert_memory_equal(&oa, &ob, sizeof oa);
        assert_int_equal(a.intents[i].set, b.intents[i].set);
    }
    assert_memory_equal(&a.budget, &b.budget, sizeof a.budget);
    assert_memory_equal(&a.def, &b.def, sizeof a.def);
}

static void test_tightening(void **state) {
    (void)state;
    struct slo_profile p;
    slo_profile_defaults(&p);
    struct slo_objectives o;
    slo_profile_resolve(&p, SLO_INTENT_FACTOID, &o);

    /* looser values change nothing */
    struct slo_tightening t = {.quality_min = 0.5, .cost_max = 1.0, .latency_p95_ms = 5000, .deadline_ms = 9000};
    struct slo_objectives before = o;
    assert_int_equal(slo_objectives_tighten(&o, &t), 0);
    assert_memory_equal(&o, &before, sizeof o);
    t = SLO_TIGHTENING_NONE;
    assert_int_equal(slo_objectives_tighten(&o, &t), 0);

    /* tighter values apply */
    t = (struct slo_tightening){.quality_min = 0.8, .cost_max = 0.001, .latency_p95_ms = 2000, .deadline_ms = 4000};
    assert_int_equal(slo_objectives_tighten(&o, &t),
                     SLO_KEY_QUALITY_MIN | SLO_KEY_COST_MAX | SLO_KEY_LATENCY_P95 | SLO_KEY_DEADLINE);
    assert_true(o.quality_min == 0.8 && o.cost_max == 0.001);
    assert_int_equal(o.latency_p95_ms, 2000);
    assert_int_equal(o.deadline_ms, 4000);

    /* a deadline under the latency target pulls the target down */
    t = (struct slo_tightening){.quality_min = -1, .cost_max = -1, .latency_p95_ms = 0, .deadline_ms = 1000};
    assert_int_equal(slo_objectives_tighten(&o, &t), SLO_KEY_LATENCY_P95 | SLO_KEY_DEADLINE);
    assert_int_equal(o.latency_p95_ms, 1000);
    assert_int_equal(o.deadline_ms, 1000);

    /* a cost ceiling of 0 is a valid tightening: free answers only */
    t = (struct slo_tightening){.quality_min = -1, .cost_max = 0, .latency_p95_ms = 0, .deadline_ms = 0};
    assert_int_equal(slo_objectives_tighten(&o, &t), SLO_KEY_COST_MAX);
    assert_true(o.cost_max == 0);

    /* parsing a request's "slo" object */
    char err[256];
    json_t *j = json_loads("{\"cost_max\": 0.0005, \"deadline_ms\": 2000}", 0, NULL);
    assert_int_equal(slo_tightening_parse(j, err, sizeof err, &t), ERR_OK);
    assert_true(t.cost_max == 0.0005 && t.quality_min < 0);
    assert_int_equal(t.deadline_ms, 2000);
    assert_int_equal(t.latency_p95_ms, 0);
    json_decref(j);
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"cost_max\": -1}", "slo.cost_max: must be a number >= 0"},
        {"{\"quality_min\": 2}", "slo.quality_min: must be a number in 0..1"},
        {"{\"latency_p95_ms\": 0}", "slo.latency_p95_ms: must be an integer in 1..600000"},
        {"{\"deadline_ms\": \"soon\"}", "slo.deadline_ms: must be an integer in 1..600000"},
        {"{\"budget\": 1}", "slo.budget: unknown key"},
        {"[]", "slo: must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        struct slo_tightening sentinel = {9, 9, 9, 9}, got = sentinel;
        if (slo_tightening_parse(j, err, sizeof err, &got) != ERR_INVALID_FIELD || strcmp(err, bad[i].msg))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].json, err, bad[i].msg);
        assert_memory_equal(&got, &sentinel, sizeof got);
        json_decref(j);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_example),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tightening),
    };
    return cmocka_run_group_tests_name("slo-profile", tests, NULL, NULL);
}
