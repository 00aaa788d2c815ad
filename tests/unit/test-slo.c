/* Unit tests for slo/: intent classification and the planner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "intent.h"
#include "plan.h"

static void test_intents(void **state) {
    (void)state;
    static const struct {
        const char *q;
        enum slo_intent want;
    } cases[] = {
        {"Who wrote Hamlet?", SLO_INTENT_FACTOID},
        {"When did the war end?", SLO_INTENT_FACTOID},
        {"How many moons does Mars have?", SLO_INTENT_FACTOID},
        {"Why is the sky blue?", SLO_INTENT_EXPLANATION},
        {"Explain the thread model", SLO_INTENT_EXPLANATION},
        {"How do I run the tests?", SLO_INTENT_PROCEDURAL},
        {"how to configure the listen address", SLO_INTENT_PROCEDURAL},
        {"Compare FAISS and BM25", SLO_INTENT_COMPARISON},
        {"What is the difference between dense and lexical search?", SLO_INTENT_COMPARISON},
        {"List the folders of the project", SLO_INTENT_LIST},
        {"Summarize the architecture", SLO_INTENT_SUMMARY},
        {"hello", SLO_INTENT_CHITCHAT},
        {"thanks!", SLO_INTENT_CHITCHAT},
        {"?!", SLO_INTENT_OUT_OF_SCOPE},
        {"hi, where is the configuration file stored on disk", SLO_INTENT_FACTOID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct slo_intent_result r;
        slo_intent_classify(cases[i].q, &r);
        if (r.intent != cases[i].want)
            fail_msg("\"%s\": got %s, want %s", cases[i].q, slo_intent_name(r.intent), slo_intent_name(cases[i].want));
        assert_true(r.confidence > 0 && r.confidence <= 1);
    }
    struct slo_intent_result r;
    slo_intent_classify("What is the capital of France?", &r);
    assert_int_equal(r.question_words, 6);
    assert_int_equal(r.content_words, 2); /* capital, france */
    assert_int_equal(slo_intent_parse("summary"), SLO_INTENT_SUMMARY);
    assert_int_equal(slo_intent_parse("nope"), -1);
}

static void test_plan(void **state) {
    (void)state;
    struct slo_plan_limits lim = {.default_k = 5, .max_k = 8, .deadline_ms = 8000, .min_confidence = 0.3};
    struct slo_intent_result factoid = {.intent = SLO_INTENT_FACTOID}, list = {.intent = SLO_INTENT_LIST};
    struct slo_request_hints none = {.retriever = -1, .tier = -1};
    struct slo_plan p;
    slo_plan_make(&lim, &factoid, &none, &p);
    assert_int_equal(p.k, 5);
    assert_int_equal(p.retriever, SLO_RETRIEVER_LEXICAL);
    assert_int_equal(p.tier, SLO_TIER_EXTRACTIVE);
    assert_int_equal(p.replicas, 1);
    assert_int_equal(p.deadline_ms, 8000);
    assert_false(p.rerank);
    slo_plan_make(&lim, &list, &none, &p);
    assert_int_equal(p.k, 8); /* 2 x default, capped at max_k */
    struct slo_request_hints hints = {.k = 3, .deadline_ms = 500, .retriever = SLO_RETRIEVER_DENSE, .tier = SLO_TIER_LARGE};
    slo_plan_make(&lim, &list, &hints, &p);
    assert_int_equal(p.k, 3);
    assert_int_equal(p.deadline_ms, 500);
    assert_int_equal(p.retriever, SLO_RETRIEVER_DENSE);
    assert_int_equal(p.tier, SLO_TIER_LARGE);
    struct slo_request_hints looser = {.deadline_ms = 20000, .retriever = -1, .tier = -1}; /* cannot loosen */
    slo_plan_make(&lim, &factoid, &looser, &p);
    assert_int_equal(p.deadline_ms, 8000);
    assert_string_equal(slo_tier_name(SLO_TIER_LARGE), "large");
    assert_int_equal(slo_tier_parse("small"), SLO_TIER_SMALL);
    assert_int_equal(slo_tier_parse("huge"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_intents), cmocka_unit_test(test_plan)};
    return cmocka_run_group_tests_name("slo", tests, NULL, NULL);
}
