/* Unit tests for slo/planner.c and slo/gate.c: exact plans for budget,
 * load, relaxation, refusal and hints; learning from a slowed tier;
 * exploration; the adaptive depth gates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gate.h"
#include "planner.h"

#define NOW_S 1700000000 /* 2023-11-14 22:13:20 UTC: 6400 s to the next day */

static struct slo_model *model;

static int setup(void **state) {
    (void)state;
    return slo_model_new(&model) == ERR_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    model = slo_model_free(model);
    return 0;
}

/* The default profile for a factoid, every tier usable and idle, no
 * reranker, 256 tokens, k up to 50. */
static struct slo_planner_input base_input(void) {
    struct slo_profile prof;
    slo_profile_defaults(&prof);
    struct slo_planner_input in = {
        .budget = prof.budget,
        .now_s = NOW_S,
        .intent = SLO_INTENT_FACTOID,
        .intent_confidence = 1,
        .model = model,
        .limits = slo_space_limits_all(),
        .hints = {.retriever = -1, .tier = -1},
        .min_confidence = 0.25,
        .seed = 42,
    };
    slo_profile_resolve(&prof, SLO_INTENT_FACTOID, &in.objectives);
    for (int t = SLO_TIER_SMALL; t < SLO_TIERS; t++)
        in.tiers[t] = (struct slo_tier_live){.usable = true, .max_concurrency = 8};
    in.limits.reranker = false;
    in.limits.max_tokens = 256;
    in.limits.max_k = 50;
    return in;
}

static void set_priorities(struct slo_planner_input *in, enum slo_objective a, enum slo_objective b,
                           enum slo_objective c) {
    in->objectives.priorities[0] = a;
    in->objectives.priorities[1] = b;
    in->objectives.priorities[2] = c;
}

static void s_default(struct slo_planner_input *in) { (void)in; }
static void s_rerank_long(struct slo_planner_input *in) {
    in->limits.reranker = true;
    in->limits.max_tokens = 1024;
}
static void s_tight_budget(struct slo_planner_input *in) {
    in->budget.per_day = 1.0;
    in->spent_day = 0.9993; /* 0.0007 left: medium (0.0014) no longer fits */
}
static void s_pacing(struct slo_planner_input *in) {
    in->budget.per_day = 1.0;
    in->spent_day = 0.5;
    in->spend_rate_per_hour = 0.5; /* 0.89 projected over the 1.78 h left: pace 0.5625 */
}
static void s_medium_queue(struct slo_planner_input *in) {
    in->tiers[SLO_TIER_MEDIUM].in_flight = 8;
    in->tiers[SLO_TIER_MEDIUM].queued = 6; /* 7 calls ahead x 1750 ms / 8 = 1531 ms wait */
}
static void s_small_only(struct slo_planner_input *in) {
    in->limits.tiers = SLO_TIER_BIT(SLO_TIER_EXTRACTIVE) | SLO_TIER_BIT(SLO_TIER_SMALL);
    in->objectives.latency_p95_ms = 1400;
    in->objectives.quality_min = 0.65;
}
static void s_small_loaded(struct slo_planner_input *in) {
    s_small_only(in);
    in->tiers[SLO_TIER_SMALL].in_flight = 8;
    in->tiers[SLO_TIER_SMALL].queued = 2; /* x1 waits 315 ms, x3 525 ms */
}
static void s_quality_unreachable(struct slo_planner_input *in) {
    in->objectives.quality_min = 0.99; /* priorities latency, quality, cost */
}
static void s_latency_lowest(struct slo_planner_input *in) {
    set_priorities(in, SLO_OBJ_QUALITY, SLO_OBJ_COST, SLO_OBJ_LATENCY);
    in->objectives.quality_min = 0.72;
    in->objectives.latency_p95_ms = 100;
}
static void s_cost_lowest(struct slo_planner_input *in) {
    set_priorities(in, SLO_OBJ_QUALITY, SLO_OBJ_LATENCY, SLO_OBJ_COST);
    in->objectives.quality_min = 0.72;
    in->objectives.cost_max = 0.0001;
}
static void s_day_spent_refuse(struct slo_planner_input *in) {
    in->budget = (struct slo_budget){.per_day = 1.0, .when_spent = SLO_SPENT_REFUSE};
    in->spent_day = 1.0;
}
static void s_month_spent_refuse(struct slo_planner_input *in) {
    in->budget = (struct slo_budget){.per_day = 5.0, .per_month = 10.0, .when_spent = SLO_SPENT_REFUSE};
    in->spent_day = 0.5;
    in->spent_month = 10.25;
}
static void s_day_spent_degrade(struct slo_planner_input *in) {
    in->budget = (struct slo_budget){.per_day = 1.0, .when_spent = SLO_SPENT_DEGRADE};
    in->spent_day = 1.01;
}
static void s_day_spent_degrade_forced(struct slo_planner_input *in) {
    s_day_spent_degrade(in);
    in->hints.tier = SLO_TIER_LARGE;
}
static void s_forced(struct slo_planner_input *in) {
    in->hints = (struct slo_request_hints){.k = 12, .retriever = SLO_RETRIEVER_DENSE, .tier = SLO_TIER_LARGE};
}
static void s_forced_unusable(struct slo_planner_input *in) {
    in->hints.tier = SLO_TIER_LARGE;
    in->tiers[SLO_TIER_LARGE].usable = false;
}
static void s_pinned(struct slo_planner_input *in) {
    in->hints.pin = slo_space_find("lexical/k3/small/x2/vote/t256") + 1;
}
static void s_pinned_unusable(struct slo_planner_input *in) {
    in->hints.pin = slo_space_find("dense/k5/large/t256") + 1;
    in->tiers[SLO_TIER_LARGE].usable = false;
}
static void s_pinned_degrade(struct slo_planner_input *in) {
    s_day_spent_degrade(in);
    in->hints.pin = slo_space_find("dense/k5/medium/t256") + 1;
}
static void s_medium_breaker(struct slo_planner_input *in) { in->tiers[SLO_TIER_MEDIUM].usable = false; }
static void s_deadline_hint(struct slo_planner_input *in) { in->hints.deadline_ms = 1000; }

static void relaxed_string(const struct slo_decision *d, char *buf, size_t len) {
    buf[0] = '\0';
    for (int i = 0; i < d->nrelaxed; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "", slo_objective_name(d->relaxed[i]));
}

static void test_plans(void **state) {
    (void)state;
    static const struct {
        const char *name;
        void (*setup)(struct slo_planner_input *);
        const char *key; /* "" = refused */
        int k;
        const char *relaxed;
        bool refuse, degraded, hint_dropped;
    } cases[] = {
        {"default profile", s_default, "hybrid/k8/medium/t256", 8, "", false, false, false},
        {"rerank and long answers on offer", s_rerank_long, "hybrid/k8/rerank/medium/t256", 8, "", false, false, false},
        {"tight budget left: cheap tier", s_tight_budget, "hybrid/k5/small/x2/confidence/t256", 5, "", false, false, false},
        {"spending too fast: ceiling paced", s_pacing, "hybrid/k5/small/x3/judge/t256", 5, "", false, false, false},
        {"long medium queue: moves tier", s_medium_queue, "hybrid/k8/small/x3/judge/t256", 8, "", false, false, false},
        {"small tier idle: three replicas", s_small_only, "hybrid/k8/small/x3/vote/t256", 8, "", false, false, false},
        {"small tier loaded: drops replicas", s_small_loaded, "hybrid/k8/small/t256", 8, "", false, false, false},
        {"quality floor unreachable", s_quality_unreachable, "hybrid/k8/medium/x3/vote/t256", 8, "cost,quality", false,
         false, false},
        {"latency lowest priority", s_latency_lowest, "hybrid/k5/small/x2/confidence/t256", 5, "latency", false, false,
         false},
        {"cost lowest priority", s_cost_lowest, "hybrid/k5/small/x2/confidence/t256", 5, "cost", false, false, false},
        {"day spent, refuse", s_day_spent_refuse, "", 5, "", true, false, false},
        {"month spent, refuse", s_month_spent_refuse, "", 5, "", true, false, false},
        {"day spent, degrade", s_day_spent_degrade, "hybrid/k8/extractive", 8, "cost,quality", false, true, false},
        {"day spent, degrade, large forced", s_day_spent_degrade_forced, "hybrid/k8/extractive", 8, "cost,quality",
         false, true, true},
        {"forced tier, retriever, k", s_forced, "dense/k8/large/t256", 12, "cost,quality,latency", false, false, false},
        {"forced tier unusable", s_forced_unusable, "hybrid/k8/medium/t256", 8, "", false, false, true},
        {"pinned configuration", s_pinned, "lexical/k3/small/x2/vote/t256", 3, "cost,quality", false, false, false},
        {"pinned configuration unusable", s_pinned_unusable, "hybrid/k8/medium/t256", 8, "", false, false, true},
        {"pinned, day spent, degrade", s_pinned_degrade, "hybrid/k8/extractive", 8, "cost,quality", false, true, true},
        {"medium breaker open", s_medium_breaker, "hybrid/k8/small/x3/judge/t256", 8, "", false, false, false},
        {"client deadline 1000 ms", s_deadline_hint, "hybrid/k5/small/t256", 5, "cost,quality", false, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct slo_planner_input in = base_input();
        cases[i].setup(&in);
        struct slo_plan p;
        struct slo_decision d;
        slo_planner_choose(&in, &p, &d);
        char relaxed[64];
        relaxed_string(&d, relaxed, sizeof relaxed);
        if (strcmp(d.key, cases[i].key) || p.k != cases[i].k || strcmp(relaxed, cases[i].relaxed) ||
            d.refuse != cases[i].refuse || d.degraded != cases[i].degraded || d.hint_dropped != cases[i].hint_dropped)
            fail_msg("%s: got %s k=%d relaxed=[%s] refuse=%d degraded=%d hint_dropped=%d (%s); want %s k=%d "
                     "relaxed=[%s] refuse=%d degraded=%d hint_dropped=%d",
                     cases[i].name, d.key, p.k, relaxed, d.refuse, d.degraded, d.hint_dropped, d.reason,
                     cases[i].key, cases[i].k, cases[i].relaxed, cases[i].refuse, cases[i].degraded,
                     cases[i].hint_dropped);
        /* the plan and the decision say the same thing */
        if (!d.refuse) {
            char key[SLO_KEY_MAX];
            struct slo_config c;
            assert_true(slo_space_config(d.config, &c));
            slo_space_key(d.config, key, sizeof key);
            assert_string_equal(key, d.key);
            assert_int_equal(p.tier, c.tier);
            assert_int_equal(p.replicas, c.replicas);
            assert_int_equal(p.aggregate, c.aggregate);
            assert_int_equal(p.retriever, c.retriever);
            assert_true(p.predicted_cost == d.predicted_cost);
            assert_true(p.predicted_latency_ms == d.predicted_latency_p95_ms);
            assert_int_equal(p.degraded, d.degraded);
            assert_false(d.exploring);
            assert_true(d.considered > 0);
        } else {
            assert_int_equal(d.config, -1);
            assert_int_equal(p.tier, SLO_TIER_EXTRACTIVE);
        }
        /* objectives kept are kept */
        if (!d.refuse && !d.degraded)
            for (int o = 0; o < SLO_OBJ__COUNT; o++) {
                bool relaxed_o = false;
                for (int r = 0; r < d.nrelaxed; r++)
                    relaxed_o |= (int)d.relaxed[r] == o;
                if (relaxed_o)
                    continue;
                if (o == SLO_OBJ_QUALITY)
                    assert_true(d.predicted_quality >= in.objectives.quality_min - 1e-6);
                else if (o == SLO_OBJ_COST)
                    assert_true(d.predicted_cost <= d.cost_cap * (1 + 1e-6));
                else
                    assert_true(d.predicted_latency_p95_ms <= p.deadline_ms &&
                                d.predicted_latency_p95_ms <= in.objectives.latency_p95_ms);
            }
    }
}

static void test_plan_details(void **state) {
    (void)state;
    struct slo_plan p;
    struct slo_decision d;
    struct slo_planner_input in = base_input();

    /* default: deadline, confidence and feasibility counts */
    slo_planner_choose(&in, &p, &d);
    assert_int_equal(p.deadline_ms, 8000);
    assert_true(p.min_confidence == 0.25);
    assert_int_equal(p.max_tokens, 256);
    assert_int_equal(d.considered, 3 * 3 * (1 + 3 * 7)); /* no rerank, one token level */
    assert_true(d.feasible > 1 && d.feasible < d.considered);
    assert_true(d.budget_left == -1 && d.pace == 1 && d.cost_cap == 0.002);
    assert_string_equal(p.reason, "every objective met: best predicted quality");

    /* pacing: 0.5 left, 0.5/h for 6400 s projects 0.8889 -> pace 0.5625 */
    in = base_input();
    s_pacing(&in);
    slo_planner_choose(&in, &p, &d);
    assert_true(fabs(d.pace - 0.5 / (0.5 * 6400 / 3600.0)) < 1e-12);
    assert_true(fabs(d.cost_cap - 0.002 * d.pace) < 1e-15);
    assert_true(d.budget_left == 0.5);

    /* refusals say when to retry */
    in = base_input();
    s_day_spent_refuse(&in);
    slo_planner_choose(&in, &p, &d);
    assert_true(d.refuse && d.budget_spent);
    assert_int_equal(d.retry_after_s, 6400);
    assert_string_equal(d.reason, "daily budget of 1 spent (1)");
    in = base_input();
    s_month_spent_refuse(&in);
    slo_planner_choose(&in, &p, &d);
    assert_int_equal(d.retry_after_s, 1701388800 - NOW_S); /* 2023-12-01T00:00:00Z */
    assert_string_equal(d.reason, "monthly budget of 10 spent (10.25)");

    /* degrade: extractive, flagged in plan and decision */
    in = base_input();
    s_day_spent_degrade(&in);
    slo_planner_choose(&in, &p, &d);
    assert_int_equal(p.tier, SLO_TIER_EXTRACTIVE);
    assert_true(p.degraded && d.degraded && d.budget_spent && !d.refuse);
    assert_string_equal(p.reason, "budget spent: extractive answers only");

    /* forced k beyond the service maximum is clipped; deadline hint */
    in = base_input();
    in.hints.k = 80;
    in.hints.deadline_ms = 20000; /* cannot loosen */
    slo_planner_choose(&in, &p, &d);
    assert_int_equal(p.k, 50);
    assert_int_equal(p.deadline_ms, 8000);
    in = base_input();
    s_deadline_hint(&in);
    slo_planner_choose(&in, &p, &d);
    assert_int_equal(p.deadline_ms, 1000);
    assert_true(d.predicted_latency_p95_ms <= 1000);

    /* k hint 4 uses the nearest level (5) for prediction and keeps k=4 */
    in = base_input();
    in.hints.k = 4;
    slo_planner_choose(&in, &p, &d);
    assert_int_equal(p.k, 4);
    assert_non_null(strstr(d.key, "/k5/"));

    /* nothing usable and no extractive offered: refused */
    in = base_input();
    in.limits.tiers = SLO_TIER_BIT(SLO_TIER_LARGE);
    in.tiers[SLO_TIER_LARGE].usable = false;
    slo_planner_choose(&in, &p, &d);
    assert_true(d.refuse && !d.budget_spent);
    assert_string_equal(d.reason, "no available configuration: every generator tier is unusable");

    /* queueing estimate: 7 calls ahead of 8 slots at the live 1750 ms (no call measured yet) */
    in = base_input();
    s_medium_queue(&in);
    assert_true(fabs(slo_planner_queue_ms(&in, SLO_TIER_MEDIUM, 1) - 7 * 1750.0 / 8) < 1e-3);
    assert_true(fabs(slo_planner_queue_ms(&in, SLO_TIER_MEDIUM, 3) - 9 * 1750.0 / 8) < 1e-3);
    assert_true(slo_planner_queue_ms(&in, SLO_TIER_SMALL, 3) == 0);
    assert_true(slo_planner_queue_ms(&in, SLO_TIER_EXTRACTIVE, 1) == 0);
    /* once the backends' calls are measured (180 ms each), that is the
     * service time, not the model's level in nominal units */
    in.tiers[SLO_TIER_MEDIUM].service_ms = 180;
    assert_true(fabs(slo_planner_queue_ms(&in, SLO_TIER_MEDIUM, 1) - 7 * 180.0 / 8) < 1e-3);

    /* an uncertain intent is a lower predicted quality */
    in = base_input();
    struct slo_prediction sure, unsure;
    slo_planner_predict(&in, d.config >= 0 ? d.config : 0, &sure);
    in.intent_confidence = 0;
    slo_planner_predict(&in, d.config >= 0 ? d.config : 0, &unsure);
    assert_true(fabs(unsure.quality - (sure.quality - SLO_INTENT_UNCERTAINTY * (1 - sure.quality))) < 1e-6);

    /* the decision record */
    in = base_input();
    s_quality_unreachable(&in);
    slo_planner_choose(&in, &p, &d);
    json_t *j = slo_decision_to_json(&d);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "config")), "hybrid/k8/medium/x3/vote/t256");
    assert_int_equal(json_array_size(json_object_get(j, "relaxed")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "relaxed"), 1)), "quality");
    assert_true(json_is_false(json_object_get(j, "refused")));
    assert_string_equal(json_string_value(json_object_get(j, "reason")),
                        "relaxed quality and cost; cost_max 0.002; quality_min 0.99");
    json_decref(j);
}

/* The learning test, one request per second:
 * - medium runs at its normal speed for 30 requests;
 * - then its calls take 5.9 s (3.5x).  N = 1: the request after the first
 *   slow call is planned on another tier.  While the slowdown lasts, the
 *   planner only probes medium when its evidence has aged (half-life 30 s):
 *   at most 6 medium requests in 300 s (the first slow one included), each
 *   followed by leaving again;
 * - then medium is fast again: with 5% exploration the planner is back on
 *   it, for good, within 300 requests. */
static void test_learning(void **state) {
    (void)state;
    struct slo_model *m;
    assert_int_equal(slo_model_new(&m), ERR_OK);
    struct slo_planner_input in = base_input();
    in.model = m;
    struct slo_plan p;
    struct slo_decision d;
    for (int i = 0; i < 30; i++) {
        in.counter++, in.now_s++;
        slo_planner_choose(&in, &p, &d);
        assert_string_equal(d.key, "hybrid/k8/medium/t256");
        struct slo_observation o = {.cost = 0.0014, .latency_ms = 1700, .call_ms = 1650, .now_s = in.now_s};
        slo_model_observe(m, d.config, in.intent, &o);
    }
    assert_true(d.predicted_latency_p95_ms > 1650 && d.predicted_latency_p95_ms < 1800);

    int moved_after = -1, on_medium = 0;
    bool prev_medium = false;
    for (int i = 0; i < 300; i++) {
        in.counter++, in.now_s++;
        slo_planner_choose(&in, &p, &d);
        bool medium = p.tier == SLO_TIER_MEDIUM;
        if (medium) {
            on_medium++;
            assert_false(prev_medium); /* a slow probe is never repeated at once */
        } else {
            if (moved_after < 0)
                moved_after = i;
            assert_true(d.predicted_latency_p95_ms <= 3000);
        }
        double ms = medium ? 6000 : 1000;
        struct slo_observation o = {.cost = d.predicted_cost, .latency_ms = ms, .call_ms = ms - 100, .now_s = in.now_s};
        slo_model_observe(m, d.config, in.intent, &o);
        prev_medium = medium;
    }
    assert_int_equal(moved_after, 1); /* N = 1 slow observation */
    if (on_medium > 6)
        fail_msg("medium planned %d times in 300 s of slowness", on_medium);

    in.explore_rate = 0.05;
    int streak = 0, back_after = -1;
    for (int i = 0; i < 300 && back_after < 0; i++) {
        in.counter++, in.now_s++;
        slo_planner_choose(&in, &p, &d);
        bool medium = p.tier == SLO_TIER_MEDIUM;
        streak = medium && !d.exploring ? streak + 1 : 0;
        if (streak == 20)
            back_after = i - 19;
        double ms = medium ? 1700 : 1000;
        struct slo_observation o = {.cost = d.predicted_cost, .latency_ms = ms, .call_ms = ms - 50, .now_s = in.now_s};
        slo_model_observe(m, d.config, in.intent, &o);
    }
    if (back_after < 0)
        fail_msg("the planner did not return to the recovered medium tier within 300 s");
    print_message("# left medium after %d slow call, planned it %d times in 300 s of slowness, back %d s after "
                  "recovery\n",
                  moved_after, on_medium, back_after);
    slo_model_free(m);
}

static void test_exploration(void **state) {
    (void)state;
    struct slo_planner_input in = base_input();
    struct slo_plan p, p2;
    struct slo_decision d, d2, best;
    slo_planner_choose(&in, &p, &best);
    int explored = 0;
    for (int rate_pass = 0; rate_pass < 2; rate_pass++) {
        in.explore_rate = rate_pass ? 0.1 : 0;
        explored = 0;
        for (uint64_t c = 0; c < 2000; c++) {
            in.counter = c;
            slo_planner_choose(&in, &p, &d);
            if (!d.exploring) {
                assert_string_equal(d.key, best.key);
                continue;
            }
            explored++;
            assert_string_not_equal(d.key, best.key);
            assert_true(p.exploring);
            /* near-feasible: within the slack of every bound */
            assert_true(d.predicted_quality >= in.objectives.quality_min - SLO_EXPLORE_QUALITY_SLACK - 1e-6);
            assert_true(d.predicted_cost <= in.objectives.cost_max * SLO_EXPLORE_SLACK + 1e-9);
            assert_true(d.predicted_latency_p95_ms <= in.objectives.latency_p95_ms * SLO_EXPLORE_SLACK);
            /* deterministic in (seed, counter) */
            slo_planner_choose(&in, &p2, &d2);
            assert_string_equal(d2.key, d.key);
        }
        if (rate_pass == 0)
            assert_int_equal(explored, 0);
    }
    if (explored < 150 || explored > 250)
        fail_msg("explored %d of 2000 at rate 0.1", explored);
    /* rates above the cap are clipped */
    in.explore_rate = 1.0;
    explored = 0;
    for (uint64_t c = 0; c < 2000; c++) {
        in.counter = c;
        slo_planner_choose(&in, &p, &d);
        explored += d.exploring;
    }
    if (explored < 330 || explored > 470)
        fail_msg("explored %d of 2000 at rate 1.0 (cap %.2f)", explored, SLO_EXPLORE_RATE_MAX);
    /* a pinned configuration is never explored away from */
    in.hints.pin = slo_space_find("dense/k5/medium/t256") + 1;
    for (uint64_t c = 0; c < 2000; c++) {
        in.counter = c;
        slo_planner_choose(&in, &p, &d);
        assert_false(d.exploring);
        assert_string_equal(d.key, "dense/k5/medium/t256");
    }
}

static void test_gates(void **state) {
    (void)state;
    const char *why;
    assert_true(slo_gate_skip_rerank(0.6, &why));
    assert_string_equal(why, "dense and lexical top-k agree: rerank skipped");
    assert_false(slo_gate_skip_rerank(0.59, &why));
    assert_string_equal(why, "top lists disagree: rerank runs");

    static const struct {
        int planned, answered, agreeing;
        bool stop;
        const char *why;
    } rep[] = {
        {3, 1, 1, false, "answers disagree: keep launching"},
        {3, 2, 2, true, "a majority already agrees: the vote cannot change"},
        {3, 2, 1, false, "answers disagree: keep launching"},
        {5, 2, 2, true, "the first answers agree: further replicas skipped"},
        {5, 3, 2, false, "answers disagree: keep launching"},
        {5, 4, 3, true, "a majority already agrees: the vote cannot change"},
        {2, 2, 1, true, "every planned replica launched"},
    };
    for (size_t i = 0; i < sizeof rep / sizeof rep[0]; i++) {
        bool stop = slo_gate_stop_replicas(rep[i].planned, rep[i].answered, rep[i].agreeing, &why);
        if (stop != rep[i].stop || strcmp(why, rep[i].why))
            fail_msg("replicas %d/%d/%d: got %d \"%s\"", rep[i].planned, rep[i].answered, rep[i].agreeing, stop, why);
    }

    struct slo_planner_input in = base_input();
    struct slo_escalation e;
    int extractive = slo_space_find("hybrid/k5/extractive");
    int medium = slo_space_find("hybrid/k5/medium/t256");
    int large = slo_space_find("hybrid/k5/large/t256");

    /* confident: nothing */
    slo_gate_escalate(&(struct slo_escalation_input){&in, extractive, 0.6, 0, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_NONE);
    assert_int_equal(e.config, extractive);
    assert_string_equal(e.reason, "confident enough: no escalation");
    /* weak extractive answer: the small tier, same retrieval */
    slo_gate_escalate(&(struct slo_escalation_input){&in, extractive, 0.3, 0, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_TIER);
    assert_int_equal(e.config, slo_space_find("hybrid/k5/small/t256"));
    assert_int_equal(e.tier, SLO_TIER_SMALL);
    assert_int_equal(e.max_tokens, 256);
    assert_true(e.predicted_cost > 0 && e.predicted_latency_ms < 7000);
    /* ... but not without time */
    slo_gate_escalate(&(struct slo_escalation_input){&in, extractive, 0.3, 0, 500}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_NONE);
    assert_string_equal(e.reason, "low confidence, but no budget or time left to escalate");
    /* the next stronger tier is skipped when unusable */
    in.tiers[SLO_TIER_SMALL].usable = false;
    slo_gate_escalate(&(struct slo_escalation_input){&in, extractive, 0.3, 0, 7000}, &e);
    assert_int_equal(e.config, slo_space_find("hybrid/k5/medium/t256"));
    in = base_input();
    /* medium to large needs cost room: 0.0048 > 0.002 - 0.0012, and a
     * second medium call (0.0012) does not fit either */
    slo_gate_escalate(&(struct slo_escalation_input){&in, medium, 0.3, 0.0012, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_NONE);
    in.objectives.cost_max = 0.01;
    slo_gate_escalate(&(struct slo_escalation_input){&in, medium, 0.3, 0.0012, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_TIER);
    assert_int_equal(e.config, large);
    /* large is not there in time (p95 4035 ms): one more medium replica */
    slo_gate_escalate(&(struct slo_escalation_input){&in, medium, 0.3, 0.0012, 3000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_REPLICA);
    assert_int_equal(e.config, slo_space_find("hybrid/k5/medium/x2/confidence/t256"));
    assert_string_equal(e.reason, "low confidence: one more replica");
    /* the strongest tier can only add replicas, up to the cap */
    slo_gate_escalate(&(struct slo_escalation_input){&in, large, 0.3, 0.0055, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_NONE); /* 0.0055 + 0.0048 > 0.01 */
    in.objectives.cost_max = 0.05;
    slo_gate_escalate(&(struct slo_escalation_input){&in, large, 0.3, 0.005, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_REPLICA);
    assert_int_equal(e.config, slo_space_find("hybrid/k5/large/x2/confidence/t256"));
    int large3 = slo_space_find("hybrid/k5/large/x3/vote/t256");
    slo_gate_escalate(&(struct slo_escalation_input){&in, large3, 0.3, 0.015, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_NONE);
    assert_string_equal(e.reason, "low confidence, but nothing stronger is available");
    /* the tenant's budget caps escalation too */
    in.budget.per_day = 1.0;
    in.spent_day = 0.999;
    slo_gate_escalate(&(struct slo_escalation_input){&in, extractive, 0.3, 0, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_TIER); /* small costs 0.0004 < 0.001 */
    in.spent_day = 0.9999;
    slo_gate_escalate(&(struct slo_escalation_input){&in, extractive, 0.3, 0, 7000}, &e);
    assert_int_equal(e.kind, SLO_ESCALATE_NONE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plans),       cmocka_unit_test(test_plan_details), cmocka_unit_test(test_learning),
        cmocka_unit_test(test_exploration), cmocka_unit_test(test_gates),
    };
    return cmocka_run_group_tests_name("slo-planner", tests, setup, teardown);
}
