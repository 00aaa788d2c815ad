/* Unit tests for slo/ledger.c: the UTC calendar, day and month rollover,
 * rebuilding from stored rows, attainment counters, limits, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ledger.h"

/* Seconds of a UTC date-time, for readable test data. */
static int64_t at(int y, int mo, int d, int h, int mi, int s) {
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += (yy % 4 == 0 && (yy % 100 != 0 || yy % 400 == 0)) ? 366 : 365;
    days += before[mo - 1] + (mo > 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) + d - 1;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

static void test_calendar(void **state) {
    (void)state;
    assert_int_equal(at(2023, 11, 14, 22, 13, 20), 1700000000);
    assert_int_equal(slo_utc_day(0), 0);
    assert_int_equal(slo_utc_day(86399), 0);
    assert_int_equal(slo_utc_day(86400), 1);
    assert_int_equal(slo_utc_day(-1), -1);
    assert_int_equal(slo_utc_month(0), 1970 * 12);
    assert_int_equal(slo_utc_month(at(2024, 2, 29, 12, 0, 0)), 2024 * 12 + 1);
    assert_int_equal(slo_utc_month(at(2024, 3, 1, 0, 0, 0)), 2024 * 12 + 2);
    assert_int_equal(slo_utc_month(at(2024, 2, 29, 23, 59, 59) + 1), 2024 * 12 + 2);
    assert_int_equal(slo_utc_month(at(2023, 12, 31, 23, 59, 59)), 2023 * 12 + 11);
    assert_int_equal(slo_utc_month(at(2024, 1, 1, 0, 0, 0)), 2024 * 12);
    assert_int_equal(slo_utc_month(at(2000, 2, 29, 0, 0, 0)), 2000 * 12 + 1); /* 400-year leap */
    assert_int_equal(slo_utc_month(at(2100, 3, 1, 0, 0, 0)), 2100 * 12 + 2);  /* 2100 is not leap */
    assert_int_equal(slo_utc_month(at(2100, 2, 28, 23, 0, 0)), 2100 * 12 + 1);
    assert_int_equal(slo_utc_month(-1), 1969 * 12 + 11);
    /* every day boundary of four years maps to the right month */
    for (int64_t s = at(2023, 1, 1, 0, 0, 0); s < at(2027, 1, 1, 0, 0, 0); s += 86400) {
        int64_t m = slo_utc_month(s), next = slo_utc_seconds_to_next_month(s);
        assert_true(next > 0 && next <= 31 * 86400);
        assert_int_equal(slo_utc_month(s + next), m + 1);
        assert_int_equal(slo_utc_month(s + next - 1), m);
    }
    assert_int_equal(slo_utc_seconds_to_next_day(1700000000), 6400);
    assert_int_equal(slo_utc_seconds_to_next_day(86400), 86400);
    assert_int_equal(slo_utc_seconds_to_next_month(1700000000), at(2023, 12, 1, 0, 0, 0) - 1700000000);
    assert_int_equal(slo_utc_seconds_to_next_month(at(2024, 2, 29, 23, 59, 59)), 1);
}

static void test_rollover(void **state) {
    (void)state;
    struct slo_ledger *l;
    assert_int_equal(slo_ledger_new(10, &l), ERR_OK);
    double d, m;
    int64_t t = at(2024, 1, 30, 23, 0, 0);
    assert_int_equal(slo_ledger_add(l, "acme", 1.0, t), ERR_OK);
    assert_int_equal(slo_ledger_add(l, "acme", 0.5, t + 1800), ERR_OK);
    assert_int_equal(slo_ledger_add(l, "other", 7.0, t), ERR_OK);
    slo_ledger_spent(l, "acme", t + 3599, &d, &m);
    assert_true(d == 1.5 && m == 1.5);
    /* next day, same month: the day starts over, the month goes on */
    slo_ledger_spent(l, "acme", t + 3600, &d, &m);
    assert_true(d == 0 && m == 1.5);
    assert_int_equal(slo_ledger_add(l, "acme", 0.25, t + 3600 + 60), ERR_OK);
    slo_ledger_spent(l, "acme", t + 3600 + 61, &d, &m);
    assert_true(d == 0.25 && m == 1.75);
    /* next month (Jan 31 -> Feb 1): both start over */
    int64_t feb = at(2024, 2, 1, 0, 0, 0);
    slo_ledger_spent(l, "acme", feb, &d, &m);
    assert_true(d == 0 && m == 0);
    assert_int_equal(slo_ledger_add(l, "acme", 2.0, feb + 5), ERR_OK);
    slo_ledger_spent(l, "acme", feb + 10, &d, &m);
    assert_true(d == 2.0 && m == 2.0);
    /* a clock stepped back counts in the current period, never forgets */
    assert_int_equal(slo_ledger_add(l, "acme", 1.0, feb - 10), ERR_OK);
    slo_ledger_spent(l, "acme", feb + 20, &d, &m);
    assert_true(d == 3.0 && m == 3.0);
    /* tenants are separate; unknown tenants have spent nothing */
    slo_ledger_spent(l, "other", t + 10, &d, &m);
    assert_true(d == 7.0 && m == 7.0);
    slo_ledger_spent(l, "nobody", t, &d, &m);
    assert_true(d == 0 && m == 0);
    /* bad input */
    assert_int_equal(slo_ledger_add(l, "", 1, t), ERR_INVALID_FIELD);
    assert_int_equal(slo_ledger_add(l, NULL, 1, t), ERR_INVALID_FIELD);
    assert_int_equal(slo_ledger_add(l, "acme", -1, t), ERR_INVALID_FIELD);
    assert_int_equal(slo_ledger_add(l, "acme", NAN, t), ERR_INVALID_FIELD);
    char longid[SLO_TENANT_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(slo_ledger_add(l, longid, 1, t), ERR_INVALID_FIELD);
    longid[SLO_TENANT_MAX] = '\0';
    assert_int_equal(slo_ledger_add(l, longid, 1, t), ERR_OK);
    slo_ledger_free(l);
    assert_null(slo_ledger_free(NULL));
    assert_int_equal(slo_ledger_new(0, &l), ERR_INVALID_FIELD);
}

static void test_capacity(void **state) {
    (void)state;
    struct slo_ledger *l;
    assert_int_equal(slo_ledger_new(100, &l), ERR_OK);
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "t%d", i);
        assert_int_equal(slo_ledger_add(l, id, i, 1000), ERR_OK); /* grows the table on the way */
    }
    assert_int_equal(slo_ledger_add(l, "one-too-many", 1, 1000), ERR_OVERLOADED);
    assert_int_equal(slo_ledger_add(l, "t5", 1, 1000), ERR_OK); /* known tenants still work */
    for (int i = 0; i < 100; i++) {
        double d, m;
        snprintf(id, sizeof id, "t%d", i);
        slo_ledger_spent(l, id, 1000, &d, &m);
        assert_true(d == i + (i == 5));
    }
    slo_ledger_free(l);
}

static void test_rebuild(void **state) {
    (void)state;
    struct slo_ledger *l;
    assert_int_equal(slo_ledger_new(10, &l), ERR_OK);
    int64_t now = at(2024, 3, 15, 12, 0, 0);
    assert_int_equal(slo_ledger_add(l, "stale", 99, now), ERR_OK); /* cleared by the rebuild */
    struct slo_ledger_spend rows[] = {
        {"acme", 1.0, at(2024, 2, 29, 23, 59, 59)}, /* last month: ignored */
        {"acme", 2.0, at(2024, 3, 1, 0, 0, 0)},    /* this month */
        {"acme", 4.0, at(2024, 3, 14, 23, 59, 59)}, /* this month, yesterday */
        {"acme", 8.0, at(2024, 3, 15, 0, 0, 0)},    /* today */
        {"beta", 0.5, at(2024, 3, 15, 11, 0, 0)},
        {"", 100, now},                              /* skipped */
        {"beta", -1, now},                           /* skipped */
        {"gamma", 3.0, at(2023, 3, 15, 12, 0, 0)},  /* a year ago: takes no slot */
    };
    assert_int_equal(slo_ledger_rebuild(l, rows, sizeof rows / sizeof rows[0], now), ERR_OK);
    double d, m;
    slo_ledger_spent(l, "acme", now, &d, &m);
    assert_true(d == 8.0 && m == 14.0);
    slo_ledger_spent(l, "beta", now, &d, &m);
    assert_true(d == 0.5 && m == 0.5);
    slo_ledger_spent(l, "stale", now, &d, &m);
    assert_true(d == 0 && m == 0);
    /* the rebuilt state rolls over like a live one */
    slo_ledger_spent(l, "acme", at(2024, 3, 16, 0, 0, 0), &d, &m);
    assert_true(d == 0 && m == 14.0);
    slo_ledger_free(l);

    /* more tenants than slots: what fits is kept */
    assert_int_equal(slo_ledger_new(2, &l), ERR_OK);
    struct slo_ledger_spend three[] = {{"a", 1, now}, {"b", 2, now}, {"c", 3, now}};
    assert_int_equal(slo_ledger_rebuild(l, three, 3, now), ERR_OVERLOADED);
    slo_ledger_spent(l, "b", now, &d, &m);
    assert_true(d == 2);
    slo_ledger_free(l);
}

static void test_entries(void **state) {
    (void)state;
    struct slo_ledger *l;
    assert_int_equal(slo_ledger_new(4, &l), ERR_OK);
    struct slo_objectives o = {.quality_min = 0.7, .cost_max = 0.002, .latency_p95_ms = 3000, .deadline_ms = 8000};
    struct slo_ledger_entry e = {.tenant = "acme", .intent = SLO_INTENT_FACTOID, .plan_key = "hybrid/k8/medium/t256",
                                 .predicted_quality = 0.8, .quality = 0.9, .predicted_cost = 0.0014, .cost = 0.0013,
                                 .predicted_latency_ms = 2158, .latency_ms = 2500,
                                 .ts_ms = at(2024, 3, 15, 12, 0, 0) * 1000 + 250};
    slo_ledger_entry_judge(&e, &o, o.deadline_ms);
    assert_int_equal(e.checked, 0xf);
    assert_int_equal(e.met, 0xf);
    assert_int_equal(slo_ledger_record(l, &e), ERR_OK);
    /* slow, no quality signal, over budget */
    e.quality = -1;
    e.latency_ms = 5000;
    e.cost = 0.003;
    slo_ledger_entry_judge(&e, &o, 4000);
    assert_int_equal(e.checked, 1u << SLO_OBJ_COST | 1u << SLO_OBJ_LATENCY | 1u << SLO_LEDGER_DEADLINE);
    assert_int_equal(e.met, 0);
    assert_int_equal(slo_ledger_record(l, &e), ERR_OK);
    e.latency_ms = 3500; /* misses the p95 target, meets the deadline */
    slo_ledger_entry_judge(&e, &o, o.deadline_ms);
    assert_int_equal(e.met, 1u << SLO_LEDGER_DEADLINE);
    assert_int_equal(slo_ledger_record(l, &e), ERR_OK);

    uint64_t met, total;
    slo_ledger_attainment(l, "acme", SLO_OBJ_QUALITY, &met, &total);
    assert_true(met == 1 && total == 1);
    slo_ledger_attainment(l, "acme", SLO_OBJ_COST, &met, &total);
    assert_true(met == 1 && total == 3);
    slo_ledger_attainment(l, "acme", SLO_OBJ_LATENCY, &met, &total);
    assert_true(met == 1 && total == 3);
    slo_ledger_attainment(l, "acme", SLO_LEDGER_DEADLINE, &met, &total);
    assert_true(met == 2 && total == 3);
    slo_ledger_attainment(l, "acme", 9, &met, &total);
    assert_true(met == 0 && total == 0);
    double d, m;
    slo_ledger_spent(l, "acme", e.ts_ms / 1000, &d, &m);
    assert_true(fabs(d - 0.0073) < 1e-12 && fabs(m - 0.0073) < 1e-12);

    json_t *j = slo_ledger_entry_to_json(&e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "plan")), "hybrid/k8/medium/t256");
    assert_string_equal(json_string_value(json_object_get(j, "intent")), "factoid");
    assert_true(json_is_null(json_object_get(json_object_get(j, "actual"), "quality")));
    json_t *slo = json_object_get(j, "slo_met");
    assert_true(json_is_false(json_object_get(slo, "latency")) && json_is_true(json_object_get(slo, "deadline")));
    assert_null(json_object_get(slo, "quality"));
    json_decref(j);
    slo_ledger_free(l);
}

struct adder {
    struct slo_ledger *l;
    const char *tenant;
};

static void *add_many(void *arg) {
    struct adder *a = arg;
    for (int i = 0; i < 20000; i++)
        slo_ledger_add(a->l, a->tenant, 0.25, 1700000000);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    struct slo_ledger *l;
    assert_int_equal(slo_ledger_new(1000, &l), ERR_OK);
    pthread_t th[4];
    struct adder a[4] = {{l, "shared"}, {l, "shared"}, {l, "t-one"}, {l, "t-two"}};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, add_many, &a[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    double d, m;
    slo_ledger_spent(l, "shared", 1700000000, &d, &m);
    assert_true(d == 10000.0 && m == 10000.0); /* 0.25 sums exactly */
    slo_ledger_spent(l, "t-two", 1700000000, &d, &m);
    assert_true(d == 5000.0);
    slo_ledger_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calendar), cmocka_unit_test(test_rollover), cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_rebuild),  cmocka_unit_test(test_entries),  cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests_name("slo-ledger", tests, NULL, NULL);
}
