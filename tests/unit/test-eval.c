/* Unit tests for orchestrator/eval: SQuAD answer normalisation and scores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "eval.h"

static void test_normalize(void **state) {
    (void)state;
    char out[256];
    eval_normalize("  The Harbour, of   Velmora!  [2]", out, sizeof out);
    assert_string_equal(out, "harbour of velmora");
    eval_normalize("An apple a day", out, sizeof out);
    assert_string_equal(out, "apple day");
    eval_normalize("[1][22]", out, sizeof out);
    assert_string_equal(out, "");
}

static void test_scores(void **state) {
    (void)state;
    assert_true(eval_exact("The salt traders from the north. [1]", "salt traders from the north"));
    assert_false(eval_exact("salt traders", "salt traders from the north"));
    /* prediction 2 tokens, gold 4 tokens, 2 in common: P=1, R=0.5, F1=2/3 */
    assert_true(fabs(eval_f1("salt traders", "salt traders from north") - 2.0 / 3.0) < 1e-9);
    assert_true(eval_f1("nothing alike", "salt traders") == 0.0);
    assert_true(eval_f1("", "") == 1.0);
    /* repeated tokens count once each */
    assert_true(fabs(eval_f1("north north", "north") - 2.0 / 3.0) < 1e-9);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_normalize), cmocka_unit_test(test_scores)};
    return cmocka_run_group_tests_name("eval", tests, NULL, NULL);
}
