/* space.h - the configuration space the planner chooses from.
 *
 * A configuration is one combination of
 *   retriever   lexical | dense | hybrid                         3
 *   k           3 | 5 | 8 passages                               3
 *   rerank      off | on                                         2
 *   generator   extractive, or an LLM tier (small|medium|large)
 *               x max_tokens 256 | 1024
 *               x replicas 1 (aggregation none)
 *                 or 2..SLO_MAX_REPLICAS with vote | confidence | judge
 *                                                                1 + 3*2*7 = 43
 * so SLO_SPACE_SIZE = 3*3*2*43 = 774 configurations.  That bound is what
 * keeps the planner a few microseconds and the models a fixed array.
 *
 * Every configuration has a stable index (0..SLO_SPACE_SIZE-1, fixed by the
 * constants below) and a stable key string such as "hybrid/k5/medium/x3/vote/t256"
 * or "lexical/k3/rerank/extractive", which persisted model state uses. */
#ifndef SLORAG_SLO_SPACE_H
#define SLORAG_SLO_SPACE_H

#include <stdbool.h>
#include <stddef.h>

#include "plan.h"

#define SLO_TIERS 4          /* enum slo_tier values */
#define SLO_RETRIEVERS 3     /* enum slo_retriever values */
#define SLO_SPACE_KS 3       /* k levels: 3, 5, 8 */
#define SLO_SPACE_TOKENS 2   /* max_tokens levels: 256, 1024 */
#define SLO_MAX_REPLICAS 3
/* Replica variants per LLM tier and token level: x1/none, then vote and
 * confidence for each of 2..SLO_MAX_REPLICAS, then judge for each. */
#define SLO_SPACE_REPLICA_VARIANTS (1 + 3 * (SLO_MAX_REPLICAS - 1))
#define SLO_SPACE_GENERATORS (1 + (SLO_TIERS - 1) * SLO_SPACE_TOKENS * SLO_SPACE_REPLICA_VARIANTS)
#define SLO_SPACE_SIZE (SLO_RETRIEVERS * SLO_SPACE_KS * 2 * SLO_SPACE_GENERATORS)
#define SLO_KEY_MAX 48 /* longest key, "lexical/k8/rerank/medium/x3/confidence/t1024", is 44 */

#define SLO_TIER_BIT(t) (1u << (t))
#define SLO_TIERS_ALL 0xfu

struct slo_config {
    enum slo_retriever retriever;
    int k;                       /* 3, 5 or 8 */
    bool rerank;
    enum slo_tier tier;
    int replicas;                /* 1 for extractive */
    enum slo_aggregate aggregate; /* none iff replicas == 1 */
    int max_tokens;              /* 256 or 1024; 0 for extractive (no generation) */
};

/* What is available right now.  A zero field means "nothing": callers
 * start from slo_space_limits_all() and clear what is missing. */
struct slo_space_limits {
    unsigned tiers;      /* SLO_TIER_BIT(t) for each tier that has a usable generator */
    unsigned retrievers; /* 1u << enum slo_retriever */
    bool reranker;       /* a reranker agent exists; otherwise rerank is never on */
    int max_replicas;    /* 1..SLO_MAX_REPLICAS (below 1 counts as 1) */
    int max_tokens;      /* the service's generation cap; the 1024 level needs > 256 */
    int max_k;           /* levels above it are out, except 3 when max_k < 3 */
};

extern const int slo_space_k_levels[SLO_SPACE_KS];
extern const int slo_space_token_levels[SLO_SPACE_TOKENS];

struct slo_space_limits slo_space_limits_all(void);

/* Decodes an index.  False (and *ret untouched) when out of range. */
bool slo_space_config(int index, struct slo_config *ret);
/* The index of c, or -1 when c is not in the space (k, max_tokens or
 * replicas not one of the levels, aggregation inconsistent). */
int slo_space_index(const struct slo_config *c);
/* Writes the key of index into buf (SLO_KEY_MAX is enough); returns its
 * length, or -1 when index is out of range or buf too small. */
int slo_space_key(int index, char *buf, size_t len);
/* The index of a key, or -1 when it is not a canonical key of this space. */
int slo_space_find(const char *key);

bool slo_space_allowed(const struct slo_space_limits *lim, int index);
/* Writes the allowed indexes, ascending, into ret (up to max); returns how
 * many are allowed. */
size_t slo_space_enumerate(const struct slo_space_limits *lim, int *ret, size_t max);

/* The plan fields a configuration fixes (retriever, k, rerank, tier,
 * replicas, aggregate, max_tokens); max_tokens_cap clips max_tokens and is
 * used as is for extractive.  Other plan fields are left alone. */
void slo_space_apply(const struct slo_config *c, int max_tokens_cap, struct slo_plan *plan);

#endif
