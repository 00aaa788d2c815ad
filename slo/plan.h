/* plan.h - a plan is pure data: what the executor will run for one query.
 *
 * The planner never calls an agent; it maps (profile, intent, live state)
 * to a plan, and the plan is serialised into the response as the decision
 * record. */
#ifndef SLORAG_PLAN_H
#define SLORAG_PLAN_H

#include <stdbool.h>
#include "intent.h"

enum slo_retriever { SLO_RETRIEVER_LEXICAL, SLO_RETRIEVER_DENSE, SLO_RETRIEVER_HYBRID };
enum slo_tier { SLO_TIER_EXTRACTIVE, SLO_TIER_SMALL, SLO_TIER_MEDIUM, SLO_TIER_LARGE };
/* How replicas' answers become one: the most common normalised answer, the
 * most confident one, or an LLM judge's pick (one more, short call). */
enum slo_aggregate { SLO_AGG_NONE, SLO_AGG_VOTE, SLO_AGG_CONFIDENCE, SLO_AGG_JUDGE };

struct slo_plan {
    enum slo_retriever retriever;
    int k;
    bool rerank;
    enum slo_tier tier;
    int replicas;
    enum slo_aggregate aggregate;
    int max_tokens;
    int deadline_ms;
    double min_confidence; /* below: abstain */
    const char *reason;    /* static string: why this plan */
    /* Set by slo_planner_choose (slo/planner.h); zero from slo_plan_make. */
    double predicted_quality;
    double predicted_cost;
    double predicted_latency_ms; /* p95, queueing included */
    bool exploring;              /* a deliberate near-feasible alternative */
    bool degraded;               /* budget spent: extractive only */
};

/* What the planner may choose from and the defaults it starts from. */
struct slo_plan_limits {
    enum slo_retriever default_retriever;
    enum slo_tier default_tier;
    bool default_tier_forced; /* the config names a tier: use it unless the request names one */
    int max_tokens;
    int default_k;
    int max_k;
    int deadline_ms;
    double min_confidence;
};

/* Per-request overrides a client may send; zero/negative means "none". */
struct slo_request_hints {
    int k;
    int deadline_ms;
    int retriever; /* enum slo_retriever, or -1 for "planner decides" */
    int tier;      /* enum slo_tier, or -1 for "planner decides" */
    int pin;       /* a configuration's space index + 1: use exactly it; 0 = planner decides */
};

const char *slo_retriever_name(enum slo_retriever r);
const char *slo_tier_name(enum slo_tier t);
const char *slo_aggregate_name(enum slo_aggregate a);
int slo_tier_parse(const char *name); /* -1 when unknown */

void slo_plan_make(const struct slo_plan_limits *lim, const struct slo_intent_result *intent,
                   const struct slo_request_hints *hints, struct slo_plan *ret_plan);

#endif
