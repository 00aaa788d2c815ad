/* Unit tests for aggregating replicas' answers (agents/aggregate.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <strings.h>

#include "aggregate.h"

/* Agreement for the tests: equal ignoring case and a trailing "[n]". */
static double similar(const char *a, const char *b) {
    size_t la = strcspn(a, "["), lb = strcspn(b, "[");
    while (la && a[la - 1] == ' ')
        la--;
    while (lb && b[lb - 1] == ' ')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0 ? 1.0 : 0.0;
}

static void test_vote(void **state) {
    (void)state;
    const char *a[] = {"In 1642 [1]", "in 1642", "In 1911 [2]"};
    double c[] = {0.5, 0.4, 0.9};
    struct agent_agg_result r;
    agent_aggregate(a, c, 3, true, 0.8, similar, &r);
    assert_int_equal(r.best, 0); /* two votes beat the most confident loner; ties go to confidence */
    assert_int_equal(r.ok, 3);
    assert_int_equal(r.agreeing, 2);
    assert_true(r.agreement > 0.66 && r.agreement < 0.67);
    /* by confidence the loner wins */
    agent_aggregate(a, c, 3, false, 0.8, similar, &r);
    assert_int_equal(r.best, 2);
    assert_int_equal(r.agreeing, 2); /* agreement is reported either way */
}

static void test_ties_failures_and_empty(void **state) {
    (void)state;
    struct agent_agg_result r;
    /* all disagree: one vote each, the most confident wins */
    const char *a[] = {"oak", "pine", "ash"};
    double c[] = {0.2, 0.7, 0.5};
    agent_aggregate(a, c, 3, true, 0.8, similar, &r);
    assert_int_equal(r.best, 1);
    assert_int_equal(r.agreeing, 1);
    /* failed replicas do not vote */
    const char *f[] = {NULL, "oak [1]", NULL};
    agent_aggregate(f, c, 3, true, 0.8, similar, &r);
    assert_int_equal(r.best, 1);
    assert_int_equal(r.ok, 1);
    assert_true(r.agreement == 1.0);
    /* every replica failed */
    const char *none[] = {NULL, NULL};
    agent_aggregate(none, c, 2, true, 0.8, similar, &r);
    assert_int_equal(r.best, -1);
    assert_int_equal(r.ok, 0);
    assert_true(r.agreement == 0.0);
    /* unanimous */
    const char *u[] = {"Hessby [1]", "hessby", "HESSBY [3]"};
    agent_aggregate(u, c, 3, true, 0.8, similar, &r);
    assert_int_equal(r.agreeing, 3);
    assert_true(r.agreement == 1.0);
    assert_int_equal(r.best, 1); /* all tie on votes: the most confident (0.7) */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vote),
        cmocka_unit_test(test_ties_failures_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
