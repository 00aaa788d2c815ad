/* gate.c - the skip and expand gates of the agent pipeline.
 *
 * The escalation gate prices one more generator call with the planner's
 * own predictions (the x1 configuration of the target tier, queueing
 * included), so "is there budget and time for it?" is answered by the same
 * models that made the plan rather than by a second set of constants. */
#include "gate.h"

#include <math.h>

bool slo_gate_skip_rerank(double topk_overlap, const char **ret_reason) {
    bool skip = topk_overlap >= SLO_GATE_RERANK_OVERLAP;
    if (ret_reason)
        *ret_reason = skip ? "dense and lexical top-k agree: rerank skipped" : "top lists disagree: rerank runs";
    return skip;
}

bool slo_gate_stop_replicas(int planned, int answered, int agreeing, const char **ret_reason) {
    const char *why = "answers disagree: keep launching";
    bool stop = false;
    if (answered >= planned) {
        why = "every planned replica launched";
        stop = true;
    } else if (agreeing * 2 > planned) {
        why = "a majority already agrees: the vote cannot change";
        stop = true;
    } else if (answered >= 2 && agreeing >= answered) {
        why = "the first answers agree: further replicas skipped";
        stop = true;
    }
    if (ret_reason)
        *ret_reason = why;
    return stop;
}

/* The x1 configuration of tier t with c's retrieval and token level. */
static int single_call_config(const struct slo_config *c, enum slo_tier t) {
    struct slo_config x = *c;
    x.tier = t;
    x.replicas = 1;
    x.aggregate = SLO_AGG_NONE;
    if (t == SLO_TIER_EXTRACTIVE)
        x.max_tokens = 0;
    else if (x.max_tokens == 0)
        x.max_tokens = slo_space_token_levels[0];
    return slo_space_index(&x);
}

static bool tier_usable(const struct slo_planner_input *p, enum slo_tier t) {
    return (p->limits.tiers & SLO_TIER_BIT(t)) && (t == SLO_TIER_EXTRACTIVE || p->tiers[t].usable);
}

void slo_gate_escalate(const struct slo_escalation_input *in, struct slo_escalation *ret) {
    const struct slo_planner_input *p = in->planner;
    struct slo_escalation r = {.kind = SLO_ESCALATE_NONE, .config = in->config};
    struct slo_config c;
    if (!slo_space_config(in->config, &c)) {
        r.reason = "unknown configuration";
        *ret = r;
        return;
    }
    r.tier = c.tier;
    if (in->confidence >= SLO_GATE_ESCALATE_CONFIDENCE) {
        r.reason = "confident enough: no escalation";
        *ret = r;
        return;
    }
    /* Money left for this request: its ceiling and the tenant's budget. */
    double money = p->objectives.cost_max - in->spent;
    if (p->budget.per_day > 0)
        money = fmin(money, p->budget.per_day - p->spent_day - in->spent);
    if (p->budget.per_month > 0)
        money = fmin(money, p->budget.per_month - p->spent_month - in->spent);

    bool tried = false;
    struct slo_prediction pr;
    for (int t = c.tier + 1; t < SLO_TIERS; t++) {
        if (!tier_usable(p, (enum slo_tier)t))
            continue;
        int x = single_call_config(&c, (enum slo_tier)t);
        if (x < 0)
            break;
        slo_planner_predict(p, x, &pr);
        tried = true;
        if (pr.cost <= money && pr.latency_p95_ms <= in->ms_left) {
            struct slo_config xc;
            slo_space_config(x, &xc);
            r = (struct slo_escalation){.kind = SLO_ESCALATE_TIER, .config = x, .tier = xc.tier,
                                        .max_tokens = xc.max_tokens, .predicted_cost = pr.cost,
                                        .predicted_latency_ms = pr.latency_p95_ms,
                                        .reason = "low confidence: escalated to a stronger tier"};
            *ret = r;
            return;
        }
        break; /* only the next stronger usable tier */
    }
    int max_rep = p->limits.max_replicas < SLO_MAX_REPLICAS ? p->limits.max_replicas : SLO_MAX_REPLICAS;
    if (c.tier != SLO_TIER_EXTRACTIVE && c.replicas < max_rep && tier_usable(p, c.tier)) {
        struct slo_config more = c;
        more.replicas++;
        if (more.aggregate == SLO_AGG_NONE)
            more.aggregate = SLO_AGG_CONFIDENCE;
        int x = slo_space_index(&more), one = single_call_config(&c, c.tier);
        if (x >= 0 && one >= 0) {
            slo_planner_predict(p, one, &pr);
            tried = true;
            if (pr.cost <= money && pr.latency_p95_ms <= in->ms_left) {
                r = (struct slo_escalation){.kind = SLO_ESCALATE_REPLICA, .config = x, .tier = c.tier,
                                            .max_tokens = c.max_tokens, .predicted_cost = pr.cost,
                                            .predicted_latency_ms = pr.latency_p95_ms,
                                            .reason = "low confidence: one more replica"};
                *ret = r;
                return;
            }
        }
    }
    r.reason = tried ? "low confidence, but no budget or time left to escalate"
                     : "low confidence, but nothing stronger is available";
    *ret = r;
}
