/* aggregate.h - one answer from several generator replicas.
 *
 * Vote: the answer most others agree with wins, ties to the more
 * confident.  Confidence: the most confident wins.  Two answers agree when
 * the caller's similarity (0..1) is at least agree_at; the executor uses
 * token F1 between SQuAD-normalised answers, so "In 1642." and "in 1642
 * [1]" are one vote.  The result also says how large the biggest group of
 * agreeing answers is: the stop-replicas gate and the judge read it.  The
 * LLM judge (a third mode) is a backend call, made by the executor only
 * when this finds the answers disagree. */
#ifndef SLORAG_AGGREGATE_H
#define SLORAG_AGGREGATE_H

#include <stdbool.h>

typedef double (*agent_similarity_fn)(const char *a, const char *b);

struct agent_agg_result {
    int best;         /* index of the chosen answer, -1 when every answer is NULL */
    int ok;           /* answers present */
    int agreeing;     /* size of the largest group of mutually agreeing answers */
    double agreement; /* agreeing / ok, 0 when none */
};

/* answers[i] NULL = that replica failed; confidence[i] in 0..1. */
void agent_aggregate(const char *const *answers, const double *confidence, int n, bool vote, double agree_at,
                     agent_similarity_fn similar, struct agent_agg_result *ret);

#endif
