/* plan.c - the foundation planner.
 *
 * With the extractive tier as the only generator, the plan's free choices
 * are the retriever (configured default: hybrid), retrieval depth and the
 * deadline: list and summary questions read more passages; a client may
 * pick the retriever and tighten k and the deadline but never exceed the
 * configured maxima. */
#include "plan.h"
#include "space.h"

#include <string.h>

const char *slo_retriever_name(enum slo_retriever r) {
    static const char *const n[] = {"lexical", "dense", "hybrid"};
    return (unsigned)r < 3 ? n[r] : "unknown";
}

const char *slo_tier_name(enum slo_tier t) {
    static const char *const n[] = {"extractive", "small", "medium", "large"};
    return (unsigned)t < 4 ? n[t] : "unknown";
}

int slo_tier_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (strcmp(slo_tier_name((enum slo_tier)i), name) == 0)
            return i;
    return -1;
}

const char *slo_aggregate_name(enum slo_aggregate a) {
    static const char *const n[] = {"none", "vote", "confidence", "judge"};
    return (unsigned)a < 4 ? n[a] : "unknown";
}

void slo_plan_make(const struct slo_plan_limits *lim, const struct slo_intent_result *intent,
                   const struct slo_request_hints *hints, struct slo_plan *ret_plan) {
    struct slo_plan p = {
        .retriever = lim->default_retriever,
        .k = lim->default_k,
        .rerank = false,
        .tier = lim->default_tier,
        .replicas = 1,
        .aggregate = SLO_AGG_NONE,
        .max_tokens = lim->max_tokens > 0 ? lim->max_tokens : 256,
        .deadline_ms = lim->deadline_ms,
        .min_confidence = lim->min_confidence,
        .reason = "default profile",
    };
    if (intent->intent == SLO_INTENT_LIST || intent->intent == SLO_INTENT_SUMMARY ||
        intent->intent == SLO_INTENT_COMPARISON) {
        p.k = lim->default_k * 2;
        p.reason = "broad intent reads more passages";
    }
    if (hints->k > 0) {
        p.k = hints->k;
        p.reason = "client-requested depth";
    }
    if (hints->tier >= 0)
        p.tier = (enum slo_tier)hints->tier;
    if (hints->retriever >= 0)
        p.retriever = (enum slo_retriever)hints->retriever;
    if (hints->pin > 0 && hints->pin <= SLO_SPACE_SIZE) {
        struct slo_config c;
        slo_space_config(hints->pin - 1, &c);
        slo_space_apply(&c, p.max_tokens, &p);
        p.reason = "client-requested configuration";
    }
    if (p.k > lim->max_k)
        p.k = lim->max_k;
    if (hints->deadline_ms > 0 && hints->deadline_ms < p.deadline_ms)
        p.deadline_ms = hints->deadline_ms;
    *ret_plan = p;
}
