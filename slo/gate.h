/* gate.h - adaptive depth: skip a stage or expand one, from cheap signals.
 *
 * After DLO's layer skipping: a stage whose output would barely differ
 * from its input is skipped; a stage whose output is weak is expanded.
 * Each gate is a pure function returning its decision and a short static
 * reason for the decision record. */
#ifndef SLORAG_SLO_GATE_H
#define SLORAG_SLO_GATE_H

#include <stdbool.h>

#include "planner.h"

/* Rerank is skipped when the dense and lexical top-k lists share at least
 * this share of their entries (|dense_k ∩ lexical_k| / k): two views of
 * relevance already agree on the order's head. */
#define SLO_GATE_RERANK_OVERLAP 0.6
/* Two answers agree when the caller's similarity (e.g. content-word
 * Jaccard, or identical cited passages) is at least this. */
#define SLO_GATE_AGREE_SIMILARITY 0.8
/* An answer whose confidence is below this is a candidate for escalation. */
#define SLO_GATE_ESCALATE_CONFIDENCE 0.5

bool slo_gate_skip_rerank(double topk_overlap, const char **ret_reason);

/* Replicas launched one after another (or hedged): with `answered` of
 * `planned` back and the largest group of mutually agreeing answers of
 * size `agreeing`, true means "launch no more".  Stops when the first
 * answers (at least two) all agree, or when a majority of the planned
 * replicas already agrees (the vote cannot change). */
bool slo_gate_stop_replicas(int planned, int answered, int agreeing, const char **ret_reason);

enum slo_escalation_kind { SLO_ESCALATE_NONE, SLO_ESCALATE_TIER, SLO_ESCALATE_REPLICA };

struct slo_escalation_input {
    const struct slo_planner_input *planner; /* the input the plan came from */
    int config;        /* the configuration that answered */
    double confidence; /* of its answer, 0..1 */
    double spent;      /* what this request has cost so far */
    double ms_left;    /* until its deadline */
};

struct slo_escalation {
    enum slo_escalation_kind kind;
    int config;      /* the configuration the request becomes (observe the
                      * models under it); the answering one when NONE */
    enum slo_tier tier; /* run one more generator call on this tier ... */
    int max_tokens;  /* ... with this limit (0 for extractive) */
    double predicted_cost, predicted_latency_ms; /* of that one call */
    const char *reason;
};

/* Escalates when confidence < SLO_GATE_ESCALATE_CONFIDENCE: to the next
 * stronger usable tier when its predicted cost fits what is left of the
 * request's cost_max and of the budget, and its predicted p95 fits ms_left;
 * else, on an LLM tier below the replica cap, one more replica (aggregation
 * by confidence) under the same conditions; else nothing. */
void slo_gate_escalate(const struct slo_escalation_input *in, struct slo_escalation *ret);

#endif
