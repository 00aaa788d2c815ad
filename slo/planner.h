/* planner.h - per query, the configuration that keeps the tenant's SLOs.
 *
 * slo_planner_choose predicts quality, cost and p95 latency (queueing
 * included) for every available configuration, keeps those that meet every
 * objective, and takes the best predicted quality (ties: cheaper, then
 * faster).  When none does, objectives are relaxed from the lowest priority
 * up; a relaxed objective is then minimised (its shortfall or excess is
 * made as small as possible) before quality is maximised.  Budgets: a
 * spent day or month refuses or degrades to the extractive tier, as the
 * profile says; a budget being spent too fast scales the cost ceiling down.
 * A small, seeded share of decisions explores a near-feasible alternative
 * so that the models keep learning.
 *
 * Pure and deterministic: no I/O, no clock, no heap allocation (one
 * 11 KB array on the stack); a call takes about 5 microseconds. */
#ifndef SLORAG_SLO_PLANNER_H
#define SLORAG_SLO_PLANNER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "plan.h"
#include "profile.h"
#include "space.h"

#define SLO_INTENT_UNCERTAINTY 0.25     /* quality penalty share at intent confidence 0 */
#define SLO_EXPLORE_QUALITY_SLACK 0.05  /* exploring may lose this much predicted quality */
#define SLO_EXPLORE_SLACK 1.25          /* ... and exceed cost/latency bounds by this factor */
#define SLO_EXPLORE_RATE_MAX 0.2        /* higher rates are clipped */

struct slo_tier_live {
    bool usable;         /* a backend of the tier exists and not every breaker is open */
    int in_flight;       /* calls running on the tier's usable backends */
    int queued;          /* calls waiting for a slot */
    int max_concurrency; /* sum over those backends; 0 = no queueing estimate */
    double service_ms;   /* mean time a call holds a slot, measured on those backends; 0 = none yet */
};

struct slo_planner_input {
    struct slo_objectives objectives; /* resolved for the intent, tightened by the request */
    struct slo_budget budget;         /* the tenant profile's */
    double spent_day, spent_month;    /* slo_ledger_spent at now_s */
    double spend_rate_per_hour;       /* the tenant's recent spend rate; 0 = no pacing */
    int64_t now_s;                    /* wall clock, UTC seconds */
    enum slo_intent intent;
    double intent_confidence;         /* 0..1 */
    const struct slo_model *model;    /* required; read only (hold its read lock) */
    struct slo_tier_live tiers[SLO_TIERS]; /* [extractive] is ignored: always usable */
    struct slo_space_limits limits;   /* what exists: tiers, retrievers, reranker, caps */
    struct slo_request_hints hints;   /* client: k > 0, deadline_ms > 0, retriever/tier >= 0, pin > 0 force */
    double min_confidence;            /* copied into the plan: below it the answer abstains */
    uint64_t seed, counter;           /* exploration draws are a hash of both */
    double explore_rate;              /* 0..SLO_EXPLORE_RATE_MAX */
};

struct slo_decision {
    int config;                  /* space index of the plan, -1 when refused */
    char key[SLO_KEY_MAX];       /* its key, "" when refused */
    double predicted_quality, predicted_cost, predicted_latency_p95_ms;
    double queue_ms;             /* part of the latency that is queueing */
    enum slo_objective relaxed[SLO_OBJ__COUNT]; /* in the order relaxed */
    int nrelaxed;
    bool refuse;                 /* do not answer: budget spent with when_spent refuse */
    int retry_after_s;           /* refusals: until the spent day or month rolls over */
    bool budget_spent, degraded, exploring;
    bool hint_dropped;           /* the forced tier or configuration was unusable or unaffordable */
    int considered;              /* configurations evaluated */
    int feasible;                /* of those, meeting every objective */
    double cost_cap;             /* cost_max after pacing */
    double pace;                 /* 1 = on pace; < 1 = spending too fast */
    double budget_left;          /* -1 = unlimited */
    char reason[192];            /* one line for the decision record */
};

struct slo_prediction {
    double quality, cost, latency_p95_ms, queue_ms;
};

void slo_planner_choose(const struct slo_planner_input *in, struct slo_plan *ret_plan,
                        struct slo_decision *ret_decision);

/* What the planner predicts for one configuration under in. */
void slo_planner_predict(const struct slo_planner_input *in, int config, struct slo_prediction *ret);
/* Expected wait for a tier slot when `replicas` calls are added. */
double slo_planner_queue_ms(const struct slo_planner_input *in, enum slo_tier t, int replicas);

/* {"config", "predicted": {...}, "relaxed": [...], "refused", ...}; NULL on
 * allocation failure. */
json_t *slo_decision_to_json(const struct slo_decision *d);

#endif
