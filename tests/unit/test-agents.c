/* Unit tests for agents/: registry and the extractive generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "agent.h"
#include "llm.h"

static struct ret_hit hits[] = {
    {.chunk_id = 1, .document_id = "d1", .title = "Guide", .start = 100,
     .text = "# Setup\nThe service listens on port 8080 by default. Logs go to stderr as JSON lines."},
    {.chunk_id = 2, .document_id = "d2", .title = "Testing", .start = 0,
     .text = "Running the tests is done with make test. It builds everything and runs every suite."},
};

static struct agent_io io_for(const char *q, size_t nhits) {
    return (struct agent_io){.question = q, .hits = hits, .nhits = nhits, .min_confidence = 0.3, .max_tokens = 256};
}

static void test_registry(void **state) {
    (void)state;
    assert_ptr_equal(agent_find("extractive"), &agent_extractive);
    assert_ptr_equal(agent_find("lexical"), &agent_lexical);
    assert_null(agent_find("gpt-17"));
    assert_true(agent_extractive.kind & AGENT_GENERATOR);
}

static void test_extractive_answers_with_citation(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    struct agent_ctx ctx = {.arena = a};
    struct agent_io io = io_for("How are the tests run?", 2);
    assert_int_equal(agent_extractive.run(NULL, &ctx, &io), ERR_OK);
    assert_false(io.abstained);
    assert_string_equal(io.answer, "Running the tests is done with make test.");
    assert_int_equal(io.ncitations, 1);
    assert_string_equal(io.citations[0].hit->document_id, "d2");
    assert_int_equal(io.citations[0].start, 0);
    assert_int_equal(io.citations[0].end, (int64_t)strlen(io.answer));
    assert_true(io.confidence >= 0.3 && io.confidence <= 1.0);

    io = io_for("Which port does the service listen on?", 2);
    assert_int_equal(agent_extractive.run(NULL, &ctx, &io), ERR_OK);
    /* "which ...": the span, not the sentence; the citation quotes the sentence */
    assert_string_equal(io.answer, "8080");
    assert_string_equal(io.citations[0].snippet, "The service listens on port 8080 by default.");
    /* offsets are document offsets: chunk start + position in the chunk */
    assert_int_equal(io.citations[0].start, 100 + 8);
    assert_int_equal(io.citations[0].end, 100 + 8 + (int64_t)strlen(io.citations[0].snippet));
    arena_free(a);
}

static void test_extractive_abstains(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    struct agent_ctx ctx = {.arena = a};
    struct agent_io io = io_for("What is the airspeed velocity of swallows?", 2);
    assert_int_equal(agent_extractive.run(NULL, &ctx, &io), ERR_OK);
    assert_true(io.abstained);
    assert_null(io.answer);
    assert_int_equal(io.ncitations, 0);

    io = io_for("tests", 0);
    assert_int_equal(agent_extractive.run(NULL, &ctx, &io), ERR_OK);
    assert_true(io.abstained);
    assert_string_equal(io.abstain_reason, "no passage matched the question");

    io = io_for("what is the", 2);
    assert_int_equal(agent_extractive.run(NULL, &ctx, &io), ERR_OK);
    assert_true(io.abstained);
    arena_free(a);
}

static void test_extractive_token_limit(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    struct agent_ctx ctx = {.arena = a};
    struct agent_io io = io_for("How are the tests run?", 2);
    io.max_tokens = 4;
    assert_int_equal(agent_extractive.run(NULL, &ctx, &io), ERR_OK);
    assert_string_equal(io.answer, "Running the tests is");
    assert_int_equal(io.output_tokens, 4);
    arena_free(a);
}

static void test_llm_prompt(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    struct agent_io io = io_for("Which port?", 2);
    const char *sys = NULL, *user = NULL;
    assert_int_equal(agent_llm_prompt(&io, a, &sys, &user), ERR_OK);
    assert_non_null(strstr(sys, AGENT_LLM_ABSTAIN));
    /* numbered passages, one line each (newlines flattened), then the question */
    assert_non_null(strstr(user, "[1] # Setup The service listens on port 8080 by default."));
    assert_non_null(strstr(user, "\n[2] Running the tests"));
    const char *qline = strstr(user, "\nQuestion: Which port?\nAnswer:");
    assert_non_null(qline);
    assert_true(qline > strstr(user, "[2]"));
    arena_free(a);
}

static void test_llm_read_answer(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    struct agent_io io = io_for("Which port?", 2);
    assert_int_equal(agent_llm_read_answer("The service listens on port 8080 [1]. See also [7] and [1].", &io, a), ERR_OK);
    assert_false(io.abstained);
    assert_int_equal(io.ncitations, 1); /* [7] is not a passage; [1] counted once */
    assert_string_equal(io.citations[0].hit->document_id, "d1");
    assert_int_equal(io.citations[0].start, 100);
    /* content words service, listens, port, 8080, see: 4 of 5 are in [1] */
    assert_true(io.confidence > 0.79 && io.confidence < 0.81);

    io = io_for("Which port?", 2);
    assert_int_equal(agent_llm_read_answer("  I cannot answer from the documents.\n", &io, a), ERR_OK);
    assert_true(io.abstained);
    assert_null(io.answer);
    assert_int_equal(io.ncitations, 0);

    io = io_for("Which port?", 2);
    assert_int_equal(agent_llm_read_answer("Bananas are yellow.", &io, a), ERR_OK);
    assert_false(io.abstained);
    assert_int_equal(io.ncitations, 0);
    assert_true(io.confidence == 0.0); /* uncited and ungrounded */

    io = io_for("Which port?", 2);
    assert_int_equal(agent_llm_read_answer("", &io, a), ERR_OK);
    assert_true(io.abstained);
    arena_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_extractive_answers_with_citation),
        cmocka_unit_test(test_extractive_abstains),
        cmocka_unit_test(test_extractive_token_limit),
        cmocka_unit_test(test_llm_prompt),
        cmocka_unit_test(test_llm_read_answer),
    };
    return cmocka_run_group_tests_name("agents", tests, NULL, NULL);
}
