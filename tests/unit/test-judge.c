/* Unit tests for the LLM judge's prompt and for reading its pick
 * (agents/llm.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "llm.h"

static void test_judge_prompt(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    const char *cands[] = {"It opens at seven [1].", "At nine\non weekdays [2].", AGENT_LLM_ABSTAIN};
    const char *system = NULL, *user = NULL;
    assert_int_equal(agent_llm_judge_prompt("When does it open?", cands, 3, a, &system, &user), ERR_OK);
    assert_non_null(strstr(system, "square brackets"));
    /* one numbered line per candidate, newlines inside folded */
    assert_non_null(strstr(user, "[1] It opens at seven [1].\n"));
    assert_non_null(strstr(user, "[2] At nine on weekdays [2].\n"));
    assert_non_null(strstr(user, "[3] " AGENT_LLM_ABSTAIN "\n"));
    assert_non_null(strstr(user, "\nQuestion: When does it open?\n"));
    arena_free(a);
}

static void test_judge_pick(void **state) {
    (void)state;
    assert_int_equal(agent_llm_judge_pick("[2]", 3), 1);
    assert_int_equal(agent_llm_judge_pick("The best is [3].", 3), 2);
    assert_int_equal(agent_llm_judge_pick("[7] no, [1]", 3), 0);   /* out of range skipped */
    assert_int_equal(agent_llm_judge_pick("Candidate 2", 3), 1);    /* a bare number */
    assert_int_equal(agent_llm_judge_pick("12 apples", 3), -1);     /* 12 is not 1 then 2 */
    assert_int_equal(agent_llm_judge_pick("none of them", 3), -1);
    assert_int_equal(agent_llm_judge_pick("[0]", 3), -1);
    assert_int_equal(agent_llm_judge_pick("", 2), -1);
    assert_int_equal(agent_llm_judge_pick(NULL, 2), -1);
    assert_int_equal(agent_llm_judge_pick("[2x] or 1", 2), 1); /* no [k]: the first bare number, 2 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_judge_prompt),
        cmocka_unit_test(test_judge_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
