/* Unit tests for slo/admission.c: every rule of the table, with the
 * predicted wait and Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "admission.h"

static void test_decisions(void **state) {
    (void)state;
    static const struct {
        const char *name;
        struct slo_admission_input in;
        enum slo_admit want;
        double wait_ms;
        int retry_after_s;
        const char *reason;
    } cases[] = {
        {"idle", {0, 0, 4, 64, 2000, 100, 8000, SLO_PRIORITY_NORMAL}, SLO_ADMIT, 0, 0, "admitted"},
        {"one worker left", {0, 3, 4, 64, 2000, 100, 8000, SLO_PRIORITY_NORMAL}, SLO_ADMIT, 0, 0, "admitted"},
        /* 4 busy, 2 queued: 3 must finish first, one every 500 ms */
        {"short queue", {2, 4, 4, 64, 2000, 100, 8000, SLO_PRIORITY_NORMAL}, SLO_ADMIT, 1500, 0, "admitted"},
        {"no capacity", {0, 0, 0, 64, 2000, 100, 8000, SLO_PRIORITY_HIGH}, SLO_ADMIT_SHED, 0, 1,
         "no worker capacity"},
        {"queue full", {64, 4, 4, 64, 100, 10, 8000, SLO_PRIORITY_HIGH}, SLO_ADMIT_SHED, 65 * 25.0, 2, "queue full"},
        /* 4 + 20 busy on 4 workers: 21 x 2000 / 4 = 10.5 s > 8 s */
        {"wait beyond the deadline", {20, 4, 4, 64, 2000, 100, 8000, SLO_PRIORITY_HIGH}, SLO_ADMIT_SHED, 10500, 11,
         "predicted queue wait exceeds the deadline"},
        {"wait equal to the deadline", {15, 4, 4, 0, 2000, 100, 8000, SLO_PRIORITY_HIGH}, SLO_ADMIT_SHED, 8000, 8,
         "predicted queue wait exceeds the deadline"},
        {"long wait, capped retry", {999, 4, 4, 0, 2000, 100, 8000, SLO_PRIORITY_HIGH}, SLO_ADMIT_SHED,
         1000 * 500.0, 60, "predicted queue wait exceeds the deadline"},
        /* 8 busy on 4: occupancy 2; wait 5 x 500 = 2500 ms */
        {"low priority shed under load", {4, 4, 4, 64, 2000, 100, 8000, SLO_PRIORITY_LOW}, SLO_ADMIT_SHED, 2500, 3,
         "low priority shed under load"},
        {"normal admitted under load while the wait fits", {4, 4, 4, 64, 2000, 100, 8000, SLO_PRIORITY_NORMAL},
         SLO_ADMIT, 2500, 0, "admitted"},
        {"high admitted under load", {4, 4, 4, 64, 2000, 100, 8000, SLO_PRIORITY_HIGH}, SLO_ADMIT, 2500, 0,
         "admitted"},
        /* occupancy 1.25: low degraded, normal admitted */
        {"low degraded when busy", {1, 4, 4, 64, 2000, 100, 8000, SLO_PRIORITY_LOW}, SLO_ADMIT_DEGRADE, 1000, 0,
         "degraded under load"},
        {"normal admitted when busy", {1, 4, 4, 64, 2000, 100, 8000, SLO_PRIORITY_NORMAL}, SLO_ADMIT, 1000, 0,
         "admitted"},
        /* 1500 ms wait + 2000 ms service > 3000 ms deadline, extractive fits */
        {"full plan misses the deadline", {2, 4, 4, 64, 2000, 100, 3000, SLO_PRIORITY_HIGH}, SLO_ADMIT_DEGRADE, 1500,
         0, "full plan would miss the deadline after queueing: extractive"},
        {"not even extractive fits", {2, 4, 4, 64, 2000, 100, 1550, SLO_PRIORITY_HIGH}, SLO_ADMIT_SHED, 1500, 2,
         "not even an extractive answer fits the deadline"},
        /* unknown service times fall back to 1000 and 100 ms */
        {"defaults", {2, 4, 4, 64, 0, 0, 800, SLO_PRIORITY_HIGH}, SLO_ADMIT_SHED, 750, 1,
         "not even an extractive answer fits the deadline"},
        {"defaults fit", {2, 4, 4, 64, -1, -1, 1800, SLO_PRIORITY_HIGH}, SLO_ADMIT, 750, 0, "admitted"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct slo_admission a;
        slo_admission_decide(&cases[i].in, &a);
        if (a.action != cases[i].want || fabs(a.wait_ms - cases[i].wait_ms) > 1e-9 ||
            a.retry_after_s != cases[i].retry_after_s || strcmp(a.reason, cases[i].reason))
            fail_msg("%s: got %s wait %.1f retry %d \"%s\"; want %s wait %.1f retry %d \"%s\"", cases[i].name,
                     slo_admit_name(a.action), a.wait_ms, a.retry_after_s, a.reason, slo_admit_name(cases[i].want),
                     cases[i].wait_ms, cases[i].retry_after_s, cases[i].reason);
    }
    assert_string_equal(slo_admit_name(SLO_ADMIT_DEGRADE), "degrade");
}

/* The invariant: nothing is admitted (fully or degraded) whose predicted
 * wait reaches its deadline, whatever the load and priority. */
static void test_never_admits_past_deadline(void **state) {
    (void)state;
    for (int q = 0; q < 40; q++)
        for (int f = 0; f <= 8; f++)
            for (int p = SLO_PRIORITY_LOW; p <= SLO_PRIORITY_HIGH; p++)
                for (int dl = 100; dl <= 10000; dl += 700) {
                    struct slo_admission_input in = {q, f, 8, 32, 1500, 80, dl, (enum slo_priority)p};
                    struct slo_admission a;
                    slo_admission_decide(&in, &a);
                    if (a.action != SLO_ADMIT_SHED) {
                        assert_true(a.wait_ms < dl);
                        assert_true(a.wait_ms + 80 <= dl);
                        assert_int_equal(a.retry_after_s, 0);
                    } else {
                        assert_true(a.retry_after_s >= 1 && a.retry_after_s <= 60);
                    }
                    if (a.action == SLO_ADMIT)
                        assert_true(a.wait_ms + 1500 <= dl);
                }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_never_admits_past_deadline),
    };
    return cmocka_run_group_tests_name("slo-admission", tests, NULL, NULL);
}
