/* Unit tests for slo/model.c: built-in priors, online learning of quality,
 * cost and latency, the tier level, calibration and the state round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "model.h"

static int key(const char *k) {
    int i = slo_space_find(k);
    if (i < 0)
        fail_msg("no configuration %s", k);
    return i;
}

static void test_priors(void **state) {
    (void)state;
    double q[4], c[4], l[4];
    const char *keys[4] = {"hybrid/k5/extractive", "hybrid/k5/small/t256", "hybrid/k5/medium/t256",
                           "hybrid/k5/large/t256"};
    for (int t = 0; t < 4; t++)
        slo_model_prior(key(keys[t]), SLO_INTENT_EXPLANATION, &q[t], &c[t], &l[t]);
    /* documented figures (explanation: LLM length factor 1.1, extractive -0.12) */
    assert_true(fabs(q[0] - 0.38) < 1e-9 && c[0] == 0 && fabs(l[0] - 120) < 1e-9);
    assert_true(fabs(q[1] - 0.66) < 1e-9 && fabs(c[1] - 0.00044) < 1e-12 && fabs(l[1] - (35 + 1320)) < 1e-9);
    assert_true(fabs(q[2] - 0.76) < 1e-9 && fabs(c[2] - 0.00165) < 1e-12 && fabs(l[2] - (35 + 2750)) < 1e-9);
    assert_true(fabs(q[3] - 0.85) < 1e-9 && fabs(c[3] - 0.0066) < 1e-12 && fabs(l[3] - (35 + 5500)) < 1e-9);
    for (int t = 1; t < 4; t++)
        assert_true(q[t] > q[t - 1] && c[t] > c[t - 1] && l[t] > l[t - 1]);
    /* replicas multiply cost, add a little latency and some quality */
    double q3, c3, l3;
    slo_model_prior(key("hybrid/k5/medium/x3/vote/t256"), SLO_INTENT_EXPLANATION, &q3, &c3, &l3);
    assert_true(fabs(c3 - 3 * c[2]) < 1e-12);
    assert_true(fabs(q3 - (0.76 + 0.24 * 0.22)) < 1e-9);
    assert_true(fabs(l3 - (35 + 2750 * 1.24)) < 1e-9);
    /* long answers help explanations, cost more, take longer */
    double ql, cl, ll;
    slo_model_prior(key("hybrid/k5/medium/t1024"), SLO_INTENT_EXPLANATION, &ql, &cl, &ll);
    assert_true(fabs(ql - 0.79) < 1e-9 && fabs(cl - 1.6 * c[2]) < 1e-12 && fabs(ll - (35 + 2750 * 1.5)) < 1e-9);
    slo_model_prior(key("hybrid/k5/medium/t1024"), SLO_INTENT_FACTOID, &ql, &cl, &ll);
    assert_true(fabs(ql - 0.78) < 1e-9); /* not a factoid */
    assert_true(slo_model_tier_nominal_p95_ms(SLO_TIER_MEDIUM) == 2500);

    struct slo_model *m;
    assert_int_equal(slo_model_new(&m), ERR_OK);
    struct slo_estimate e;
    slo_model_estimate(m, key("hybrid/k5/medium/t256"), SLO_INTENT_EXPLANATION, 0, &e);
    assert_true(fabs(e.quality - 0.76) < 1e-6 && fabs(e.cost - 0.00165) < 1e-9);
    assert_true(fabs(e.latency_p95_ms - 2785) < 1e-2 && fabs(e.latency_mean_ms - 0.7 * 2785) < 1e-2);
    assert_true(e.tier_factor == 1 && e.n == 0 && e.nq == 0);
    assert_true(sizeof(struct slo_model) < 1500000); /* the documented bound */
    slo_model_free(m);
}

/* The generator's own signal is read against its calibrated mean: a
 * signal at that mean keeps the calibrated quality, a lower one lowers it
 * by the difference; without a calibrated mean it is quality itself. */
static void test_signal(void **state) {
    (void)state;
    struct slo_model *m;
    assert_int_equal(slo_model_new(&m), ERR_OK);
    json_t *doc = json_loads("{\"configs\": {\"hybrid/k5/small/t256\": {\"*\": {\"quality\": 0.6, \"n\": 30,"
                             " \"signal\": 0.95}}}}",
                             0, NULL);
    char err[160];
    assert_int_equal(slo_model_calibrate(m, doc, err, sizeof err), ERR_OK);
    json_decref(doc);
    int cfg = key("hybrid/k5/small/t256"), other = key("hybrid/k5/medium/t256");
    enum slo_intent in = SLO_INTENT_FACTOID;
    struct slo_estimate e;
    /* a high signal at its usual level teaches nothing new */
    for (int i = 0; i < 100; i++)
        assert_true(fabs(slo_model_observe_signal(m, cfg, in, 0.95, 1) - 0.6) < 1e-6);
    slo_model_estimate(m, cfg, in, 0, &e);
    assert_true(fabs(e.quality - 0.6) < 1e-4);
    /* the signal drops by 0.3: quality heads for 0.3 */
    for (int i = 0; i < 1000; i++)
        slo_model_observe_signal(m, cfg, in, 0.65, 1);
    slo_model_estimate(m, cfg, in, 0, &e);
    if (!(e.quality < 0.35 && e.quality > 0.29))
        fail_msg("quality %.4f after the signal fell to 0.65, want about 0.3", e.quality);
    /* clamped to 0..1 */
    assert_true(slo_model_observe_signal(m, cfg, in, 0.0, 1) == 0.0);
    /* no calibrated mean: the signal is the quality */
    assert_true(fabs(slo_model_observe_signal(m, other, in, 0.42, 1) - 0.42) < 1e-6);
    assert_true(slo_model_observe_signal(m, other, in, 1.5, 1) < 0); /* out of range: ignored */
    /* a calibration signal out of range fails with its path */
    doc = json_loads("{\"configs\": {\"hybrid/k5/small/t256\": {\"*\": {\"signal\": 2}}}}", 0, NULL);
    assert_int_equal(slo_model_calibrate(m, doc, err, sizeof err), ERR_INVALID_FIELD);
    assert_non_null(strstr(err, "configs.hybrid/k5/small/t256.*.signal"));
    json_decref(doc);
    slo_model_free(m);
}

static void test_learning(void **state) {
    (void)state;
    struct slo_model *m;
    assert_int_equal(slo_model_new(&m), ERR_OK);
    int cfg = key("hybrid/k5/small/t256");
    enum slo_intent in = SLO_INTENT_FACTOID;
    struct slo_estimate e;

    /* quality: prior 0.68 counted 5 times, then 0.2 with weight 5 */
    slo_model_observe_quality(m, cfg, in, 0.2, 5);
    slo_model_estimate(m, cfg, in, 0, &e);
    assert_true(fabs(e.quality - (0.68 * 5 + 1.0) / 10) < 1e-6);
    assert_int_equal(e.nq, 1);
    /* invalid signals are ignored */
    slo_model_observe_quality(m, cfg, in, 1.5, 1);
    slo_model_observe_quality(m, cfg, in, 0.5, 0);
    slo_model_observe_quality(m, cfg, in, NAN, 1);
    slo_model_observe_quality(m, -1, in, 0.5, 1);
    slo_model_estimate(m, cfg, in, 0, &e);
    assert_int_equal(e.nq, 1);
    /* the weight is capped, so new ratings keep moving it */
    for (int i = 0; i < 1000; i++)
        slo_model_observe_quality(m, cfg, in, 1.0, 1);
    slo_model_estimate(m, cfg, in, 0, &e);
    assert_true(e.quality > 0.97);
    for (int i = 0; i < 200; i++)
        slo_model_observe_quality(m, cfg, in, 0.0, 1);
    slo_model_estimate(m, cfg, in, 0, &e);
    assert_true(e.quality < 0.4);

    /* cost and latency at a steady 900 ms converge; the p95 of a constant
     * is the constant (the Cantelli cap removes bucket coarseness: the
     * histogram alone says ~1300 ms).  The tier level follows the calls:
     * 880 ms normalised by this cell's prior (995 ms vs the nominal 1200).
     * While that level converges the first latencies are normalised by a
     * moving level; their spread fades with the decay (p95 913 ms after 60
     * calls, 902 after 120). */
    for (int i = 0; i < 120; i++) {
        struct slo_observation o = {.cost = 0.0005, .latency_ms = 900, .call_ms = 880};
        slo_model_observe(m, cfg, in, &o);
    }
    double level = 880 * 1200.0 / 995;
    assert_true(fabs(slo_model_tier_live_ms(m, SLO_TIER_SMALL) - level) < 1);
    slo_model_estimate(m, cfg, in, 0, &e);
    assert_int_equal(e.n, 120);
    assert_true(fabs(e.cost - 0.0005) < 1e-6);
    assert_true(fabs(e.latency_mean_ms - 900) < 1);
    assert_true(fabs(e.latency_p95_ms - 900) < 9);
    assert_true(fabs(e.tier_factor - level / 840) < 1e-3);

    /* a spread: 90% at 1000 ms, 10% at 3000 ms -> p95 near 3000 */
    struct slo_model *s;
    assert_int_equal(slo_model_new(&s), ERR_OK);
    int ex = key("hybrid/k5/extractive");
    for (int i = 0; i < 200; i++) {
        struct slo_observation o = {.cost = 0, .latency_ms = i % 10 == 0 ? 3000 : 1000, .call_ms = -1};
        slo_model_observe(s, ex, in, &o);
    }
    slo_model_estimate(s, ex, in, 0, &e);
    assert_true(e.latency_p95_ms > 2000 && e.latency_p95_ms < 3400);
    assert_true(e.tier_factor == 1); /* extractive has no tier level */
    /* bad observations are ignored */
    slo_model_observe(s, ex, in, &(struct slo_observation){.cost = -1, .latency_ms = 5});
    slo_model_observe(s, ex, in, &(struct slo_observation){.cost = 0, .latency_ms = NAN});
    slo_model_observe(s, SLO_SPACE_SIZE, in, &(struct slo_observation){.cost = 0, .latency_ms = 5});
    slo_model_estimate(s, ex, in, 0, &e);
    assert_int_equal(e.n, 200);
    slo_model_free(s);
    slo_model_free(m);
}

static void test_tier_level(void **state) {
    (void)state;
    struct slo_model *m;
    assert_int_equal(slo_model_new(&m), ERR_OK);
    enum slo_intent in = SLO_INTENT_FACTOID;
    int used = key("hybrid/k8/medium/t256"), sibling = key("lexical/k3/medium/x2/vote/t1024"),
        other = key("hybrid/k8/small/t256");
    struct slo_estimate before, after, other_e;
    slo_model_estimate(m, sibling, in, 0, &before);
    /* one call of a nominal-sized configuration at 3x the nominal mean */
    double prior_q, prior_c, prior_p95;
    slo_model_prior(used, in, &prior_q, &prior_c, &prior_p95);
    double call = 3 * 1750 * prior_p95 / 2500;
    slo_model_observe(m, used, in, &(struct slo_observation){.cost = 0.001, .latency_ms = call, .call_ms = call,
                                                             .now_s = 1000});
    double live = 0.7 * 1750 + 0.3 * 3 * 1750;
    assert_true(fabs(slo_model_tier_live_ms(m, SLO_TIER_MEDIUM) - live) < 0.5);
    slo_model_estimate(m, sibling, in, 1000, &after);
    assert_true(fabs(after.tier_factor - live / 1750) < 1e-5);
    assert_true(fabs(after.latency_p95_ms - before.latency_p95_ms * live / 1750) < 0.5);
    slo_model_estimate(m, other, in, 1000, &other_e);
    assert_true(other_e.tier_factor == 1); /* small is not affected */

    /* the evidence ages: after 30 s half of the excess over the baseline */
    double base = 0.995 * 1750 + 0.005 * 3 * 1750;
    assert_true(slo_model_tier_freshness(m, SLO_TIER_MEDIUM, 1000) == 1);
    assert_true(fabs(slo_model_tier_freshness(m, SLO_TIER_MEDIUM, 1030) - 0.5) < 1e-12);
    assert_true(slo_model_tier_freshness(m, SLO_TIER_MEDIUM, 0) == 1); /* time unknown */
    assert_true(fabs(slo_model_tier_factor(m, SLO_TIER_MEDIUM, 1030) - (base + (live - base) / 2) / 1750) < 1e-5);
    assert_true(fabs(slo_model_tier_factor(m, SLO_TIER_MEDIUM, 1000 + 3000) - base / 1750) < 1e-5);
    assert_true(slo_model_tier_factor(m, SLO_TIER_EXTRACTIVE, 1000) == 1);
    /* a call after a long gap starts from the aged level */
    slo_model_observe(m, used, in, &(struct slo_observation){.cost = 0.001, .latency_ms = 1000,
                                                             .call_ms = 1750 * prior_p95 / 2500, .now_s = 4000});
    assert_true(fabs(slo_model_tier_live_ms(m, SLO_TIER_MEDIUM) - (0.7 * base + 0.3 * 1750)) < 0.5);
    slo_model_free(m);
}

/* The spread: calls that reach further than their predicted p95 widen
 * the p95 predictions of their tier (a slowed backend under load spreads
 * its calls), not the means; steady calls leave it at 1; it ages like the
 * level; and once the cells have learned a spread it is not counted twice.
 * Over a sudden widening (log-normal call times, sigma 0.1 then 0.8 at
 * twice the mean), the predictions with it are exceeded less often than
 * those without. */
static void test_tier_spread(void **state) {
    (void)state;
    struct slo_model *m;
    assert_int_equal(slo_model_new(&m), ERR_OK);
    enum slo_intent in = SLO_INTENT_FACTOID;
    int used = key("hybrid/k8/medium/t256");
    double pq, pc, p95;
    slo_model_prior(used, in, &pq, &pc, &p95);
    uint64_t rng = 12345;
    int64_t now = 1000;
    struct slo_estimate e;
    for (int i = 0; i < 100; i++, now++) { /* steady: sigma 0.1 around 0.7 p95 */
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((rng >> 11) + 0.5) / 9007199254740992.0;
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = ((rng >> 11) + 0.5) / 9007199254740992.0;
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        double call = 0.7 * p95 * exp(0.1 * z);
        slo_model_observe(m, used, in, &(struct slo_observation){.cost = 0.001, .latency_ms = call, .call_ms = call,
                                                                 .now_s = now});
    }
    assert_true(slo_model_tier_spread(m, SLO_TIER_MEDIUM, now) == 1);
    int over_with = 0, over_without = 0, n = 0;
    for (int i = 0; i < 60; i++, now++) { /* wider, and twice as slow */
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((rng >> 11) + 0.5) / 9007199254740992.0;
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = ((rng >> 11) + 0.5) / 9007199254740992.0;
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        double call = 1.4 * p95 * exp(0.8 * z - 0.32); /* mean 1.4 p95 */
        slo_model_estimate(m, used, in, now, &e);
        assert_true(fabs(e.latency_p95_ms - m->cells[used][in].latency_p95_ms * e.tier_factor * e.spread) < 1e-3);
        if (i >= 20) { /* once the level and the window have seen the change */
            over_with += call > e.latency_p95_ms;
            over_without += call > e.latency_p95_ms / e.spread;
            n++;
        }
        slo_model_observe(m, used, in, &(struct slo_observation){.cost = 0.001, .latency_ms = call, .call_ms = call,
                                                                 .now_s = now});
    }
    double s = slo_model_tier_spread(m, SLO_TIER_MEDIUM, now - 1);
    print_message("spread %.2f; of %d calls, %d beyond the p95 predicted with it, %d without\n", s, n, over_with,
                  over_without);
    assert_true(s > 1.05);
    assert_true(over_with < over_without);
    assert_true(over_with <= n / 5);
    /* small and extractive are not affected; the spread ages like the level */
    assert_true(slo_model_tier_spread(m, SLO_TIER_SMALL, now) == 1);
    assert_true(slo_model_tier_spread(m, SLO_TIER_EXTRACTIVE, now) == 1);
    assert_true(fabs(slo_model_tier_spread(m, SLO_TIER_MEDIUM, now - 1 + 30) - (1 + (s - 1) / 2)) < 1e-5);
    /* steady calls at what the cell has now learned: back to 1 */
    for (int i = 0; i < 40; i++, now++) {
        slo_model_estimate(m, used, in, now, &e);
        double call = e.latency_p95_ms / e.spread * 0.7;
        slo_model_observe(m, used, in, &(struct slo_observation){.cost = 0.001, .latency_ms = call, .call_ms = call,
                                                                 .now_s = now});
    }
    assert_true(slo_model_tier_spread(m, SLO_TIER_MEDIUM, now) == 1);
    slo_model_free(m);
}

static void test_round_trip(void **state) {
    (void)state;
    struct slo_model *a, *b;
    assert_int_equal(slo_model_new(&a), ERR_OK);
    assert_int_equal(slo_model_new(&b), ERR_OK);
    const char *keys[] = {"hybrid/k5/medium/t256", "dense/k8/rerank/large/x3/vote/t1024", "lexical/k3/extractive"};
    for (int r = 0; r < 25; r++)
        for (int k = 0; k < 3; k++) {
            struct slo_observation o = {.cost = 0.001 * (k + 1) + r * 1e-5, .latency_ms = 500 + 97 * ((r * 7 + k) % 13),
                                        .call_ms = 400 + 50 * (r % 5), .now_s = 1000 + r};
            slo_model_observe(a, key(keys[k]), (enum slo_intent)(r % 3), &o);
            if (r % 4 == 0)
                slo_model_observe_quality(a, key(keys[k]), SLO_INTENT_SUMMARY, 0.1 * (r % 10), 1 + k);
        }
    json_t *j = slo_model_to_json(a);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    assert_int_equal(json_object_size(json_object_get(j, "cells")), 3); /* only cells with data */
    char *text = json_dumps(j, JSON_SORT_KEYS);
    json_t *back = json_loads(text, 0, NULL);
    char err[256] = "";
    assert_int_equal(slo_model_load_json(b, back, err, sizeof err), ERR_OK);
    for (int i = 0; i < SLO_SPACE_SIZE; i++)
        for (int in = 0; in < SLO_INTENT__COUNT; in++) {
            struct slo_estimate ea, eb;
            slo_model_estimate(a, i, (enum slo_intent)in, 1100, &ea);
            slo_model_estimate(b, i, (enum slo_intent)in, 1100, &eb);
            if (fabs(ea.quality - eb.quality) > 1e-6 || fabs(ea.cost - eb.cost) > 1e-9 ||
                fabs(ea.latency_p95_ms - eb.latency_p95_ms) > 1e-3 * (1 + ea.latency_p95_ms) ||
                fabs(ea.latency_mean_ms - eb.latency_mean_ms) > 1e-3 * (1 + ea.latency_mean_ms) || ea.n != eb.n ||
                ea.nq != eb.nq)
                fail_msg("cell %d/%d differs after the round trip", i, in);
        }
    json_t *again = slo_model_to_json(b);
    char *text2 = json_dumps(again, JSON_SORT_KEYS);
    assert_string_equal(text, text2);
    free(text2);
    json_decref(again);

    /* loading replaces: cells absent from the state go back to priors */
    json_t *empty = json_pack("{s:i}", "version", 2);
    assert_int_equal(slo_model_load_json(b, empty, err, sizeof err), ERR_OK);
    struct slo_estimate e;
    slo_model_estimate(b, key(keys[0]), SLO_INTENT_FACTOID, 0, &e);
    assert_int_equal(e.n, 0);
    assert_true(fabs(slo_model_tier_live_ms(b, SLO_TIER_MEDIUM) - 1750) < 1e-3);
    json_decref(empty);

    /* unknown configurations and intents are skipped; malformed values fail
     * and leave the model as it was */
    assert_int_equal(slo_model_load_json(b, back, err, sizeof err), ERR_OK);
    json_t *cells = json_object_get(back, "cells");
    json_object_set(cells, "hybrid/k5/huge/t256", json_object_get(cells, keys[0]));
    json_object_set_new(json_object_get(cells, keys[0]), "poetry", json_object());
    assert_int_equal(slo_model_load_json(b, back, err, sizeof err), ERR_OK);
    static const struct {
        const char *path, *field, *value, *msg;
    } bad[] = {
        {"hybrid/k5/medium/t256", "latency_hist", "[1, 2, 3]",
         "cells.hybrid/k5/medium/t256.factoid.latency_hist: must be an array of 28 numbers >= 0"},
        {"hybrid/k5/medium/t256", "cost_sum", "-1", "cells.hybrid/k5/medium/t256.factoid.cost_sum: out of range"},
        {"hybrid/k5/medium/t256", "n", "1.5", "cells.hybrid/k5/medium/t256.factoid.n: out of range"},
        {"hybrid/k5/medium/t256", "weight", "0",
         "cells.hybrid/k5/medium/t256.factoid: n needs weight > 0, prior_weight, cost_sum, latency_sum, "
         "latency_sq_sum and latency_hist"},
        {"hybrid/k5/medium/t256", "colour", "1", "cells.hybrid/k5/medium/t256.factoid.colour: unknown key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *copy = json_deep_copy(back);
        json_t *cell = json_object_get(json_object_get(json_object_get(copy, "cells"), bad[i].path), "factoid");
        assert_non_null(cell);
        json_object_set_new(cell, bad[i].field, json_loads(bad[i].value, JSON_DECODE_ANY, NULL));
        json_t *before = slo_model_to_json(b);
        if (slo_model_load_json(b, copy, err, sizeof err) != ERR_INVALID_FIELD || strcmp(err, bad[i].msg))
            fail_msg("%s=%s: got \"%s\", want \"%s\"", bad[i].field, bad[i].value, err, bad[i].msg);
        json_t *after = slo_model_to_json(b);
        assert_true(json_equal(before, after));
        json_decref(before);
        json_decref(after);
        json_decref(copy);
    }
    json_t *v1 = json_pack("{s:i}", "version", 1); /* the pre-release format */
    assert_int_equal(slo_model_load_json(b, v1, err, sizeof err), ERR_INVALID_FIELD);
    assert_string_equal(err, "version: must be 2");
    json_decref(v1);
    json_t *tiers = json_loads("{\"version\": 2, \"tiers\": {\"small\": {\"live_ms\": -3, \"base_ms\": 1}}}", 0, NULL);
    assert_int_equal(slo_model_load_json(b, tiers, err, sizeof err), ERR_INVALID_FIELD);
    assert_string_equal(err, "tiers.small: must be {\"live_ms\": > 0, \"base_ms\": > 0, \"n\": >= 0, \"last_s\": >= 0}");
    json_decref(tiers);

    free(text);
    json_decref(back);
    json_decref(j);
    slo_model_free(a);
    slo_model_free(b);
}

static void test_calibration(void **state) {
    (void)state;
    struct slo_model *m;
    assert_int_equal(slo_model_new(&m), ERR_OK);
    char err[256] = "";
    json_t *j = json_loads("{\"configs\": {\"hybrid/k5/medium/t256\": {"
                           "  \"factoid\": {\"quality\": 0.9, \"n\": 20},"
                           "  \"*\": {\"quality\": 0.5, \"cost\": 0.003, \"latency_p95_ms\": 4000}}}}",
                           0, NULL);
    assert_int_equal(slo_model_calibrate(m, j, err, sizeof err), ERR_OK);
    json_decref(j);
    int cfg = key("hybrid/k5/medium/t256");
    struct slo_estimate e;
    slo_model_estimate(m, cfg, SLO_INTENT_FACTOID, 0, &e);
    assert_true(fabs(e.quality - 0.9) < 1e-6); /* the named intent wins over "*" */
    assert_true(fabs(e.cost - 0.003) < 1e-9 && fabs(e.latency_p95_ms - 4000) < 1e-3);
    slo_model_estimate(m, cfg, SLO_INTENT_SUMMARY, 0, &e);
    assert_true(fabs(e.quality - 0.5) < 1e-6);
    /* n = 20 is the quality prior count: one rating of 0 moves it by 1/21 */
    slo_model_observe_quality(m, cfg, SLO_INTENT_FACTOID, 0, 1);
    slo_model_estimate(m, cfg, SLO_INTENT_FACTOID, 0, &e);
    assert_true(fabs(e.quality - 0.9 * 20 / 21) < 1e-6);
    /* other configurations keep the built-in priors */
    slo_model_estimate(m, key("hybrid/k5/small/t256"), SLO_INTENT_FACTOID, 0, &e);
    assert_true(fabs(e.quality - 0.68) < 1e-6);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"configs\": {\"hybrid/k5/huge/t256\": {}}}", "configs.hybrid/k5/huge/t256: unknown configuration"},
        {"{\"configs\": {\"hybrid/k5/small/t256\": {\"poetry\": {}}}}",
         "configs.hybrid/k5/small/t256.poetry: unknown intent"},
        {"{\"configs\": {\"hybrid/k5/small/t256\": {\"*\": {\"quality\": 1.2}}}}",
         "configs.hybrid/k5/small/t256.*.quality: must be a number in 0..1"},
        {"{\"configs\": {\"hybrid/k5/small/t256\": {\"list\": {\"latency_p95_ms\": 0}}}}",
         "configs.hybrid/k5/small/t256.list.latency_p95_ms: must be a number in (0, 600000]"},
        {"{\"configs\": {\"hybrid/k5/small/t256\": {\"list\": {\"n\": 0}}}}",
         "configs.hybrid/k5/small/t256.list.n: must be a number in (0, 200]"},
        {"{\"configs\": {\"hybrid/k5/small/t256\": {\"list\": {\"p99\": 1}}}}",
         "configs.hybrid/k5/small/t256.list.p99: unknown key"},
        {"{\"tiers\": {}}", "tiers: unknown key"},
        {"{\"configs\": []}", "configs: must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_loads(bad[i].json, 0, NULL);
        assert_non_null(j);
        if (slo_model_calibrate(m, j, err, sizeof err) != ERR_INVALID_FIELD || strcmp(err, bad[i].msg))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].json, err, bad[i].msg);
        json_decref(j);
    }
    /* a failing document changes nothing, even its valid first part */
    j = json_loads("{\"configs\": {\"hybrid/k5/small/t256\": {\"*\": {\"quality\": 0.1}},"
                   " \"hybrid/k5/nothing/t256\": {}}}",
                   0, NULL);
    assert_int_equal(slo_model_calibrate(m, j, err, sizeof err), ERR_INVALID_FIELD);
    json_decref(j);
    slo_model_estimate(m, key("hybrid/k5/small/t256"), SLO_INTENT_FACTOID, 0, &e);
    assert_true(fabs(e.quality - 0.68) < 1e-6);
    slo_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priors),     cmocka_unit_test(test_learning),
        cmocka_unit_test(test_signal),    cmocka_unit_test(test_tier_level), cmocka_unit_test(test_tier_spread),
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_calibration),
    };
    return cmocka_run_group_tests_name("slo-model", tests, NULL, NULL);
}
