/* space.c - enumerating, indexing and naming configurations.
 *
 * The index is a mixed-radix number, most significant first: retriever,
 * k level, rerank, generator; the generator digit is 0 for extractive and
 * 1 + ((tier-1) * tokens levels + token level) * replica variants + variant
 * for LLM tiers.  Decoding is arithmetic: there is no table and no global
 * state, so the space is usable from any thread without initialisation.
 * Keys are parsed, then re-rendered and compared, so only the canonical
 * spelling of a key is accepted. */
#include "space.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int slo_space_k_levels[SLO_SPACE_KS] = {3, 5, 8};
const int slo_space_token_levels[SLO_SPACE_TOKENS] = {256, 1024};

struct slo_space_limits slo_space_limits_all(void) {
    return (struct slo_space_limits){
        .tiers = SLO_TIERS_ALL,
        .retrievers = 0x7u,
        .reranker = true,
        .max_replicas = SLO_MAX_REPLICAS,
        .max_tokens = slo_space_token_levels[SLO_SPACE_TOKENS - 1],
        .max_k = slo_space_k_levels[SLO_SPACE_KS - 1],
    };
}

static void decode_generator(int g, struct slo_config *c) {
    if (g == 0) {
        c->tier = SLO_TIER_EXTRACTIVE;
        c->replicas = 1;
        c->aggregate = SLO_AGG_NONE;
        c->max_tokens = 0;
        return;
    }
    int h = g - 1;
    int variant = h % SLO_SPACE_REPLICA_VARIANTS;
    h /= SLO_SPACE_REPLICA_VARIANTS;
    c->max_tokens = slo_space_token_levels[h % SLO_SPACE_TOKENS];
    c->tier = (enum slo_tier)(1 + h / SLO_SPACE_TOKENS);
    if (variant == 0) {
        c->replicas = 1;
        c->aggregate = SLO_AGG_NONE;
    } else if (variant <= 2 * (SLO_MAX_REPLICAS - 1)) {
        c->replicas = 2 + (variant - 1) / 2;
        c->aggregate = (variant - 1) % 2 == 0 ? SLO_AGG_VOTE : SLO_AGG_CONFIDENCE;
    } else {
        c->replicas = 2 + (variant - 1 - 2 * (SLO_MAX_REPLICAS - 1));
        c->aggregate = SLO_AGG_JUDGE;
    }
}

bool slo_space_config(int index, struct slo_config *ret) {
    if (index < 0 || index >= SLO_SPACE_SIZE)
        return false;
    struct slo_config c;
    decode_generator(index % SLO_SPACE_GENERATORS, &c);
    int rest = index / SLO_SPACE_GENERATORS;
    c.rerank = rest % 2;
    rest /= 2;
    c.k = slo_space_k_levels[rest % SLO_SPACE_KS];
    c.retriever = (enum slo_retriever)(rest / SLO_SPACE_KS);
    *ret = c;
    return true;
}

static int level_of(const int *levels, int n, int v) {
    for (int i = 0; i < n; i++)
        if (levels[i] == v)
            return i;
    return -1;
}

int slo_space_index(const struct slo_config *c) {
    if ((unsigned)c->retriever >= SLO_RETRIEVERS || (unsigned)c->tier >= SLO_TIERS)
        return -1;
    int kl = level_of(slo_space_k_levels, SLO_SPACE_KS, c->k);
    if (kl < 0)
        return -1;
    int g;
    if (c->tier == SLO_TIER_EXTRACTIVE) {
        if (c->replicas != 1 || c->aggregate != SLO_AGG_NONE)
            return -1;
        g = 0;
    } else {
        int tl = level_of(slo_space_token_levels, SLO_SPACE_TOKENS, c->max_tokens);
        if (tl < 0 || c->replicas < 1 || c->replicas > SLO_MAX_REPLICAS)
            return -1;
        int variant;
        if (c->replicas == 1) {
            if (c->aggregate != SLO_AGG_NONE)
                return -1;
            variant = 0;
        } else if (c->aggregate == SLO_AGG_VOTE || c->aggregate == SLO_AGG_CONFIDENCE) {
            variant = 1 + (c->replicas - 2) * 2 + (c->aggregate == SLO_AGG_CONFIDENCE);
        } else if (c->aggregate == SLO_AGG_JUDGE) {
            variant = 1 + 2 * (SLO_MAX_REPLICAS - 1) + (c->replicas - 2);
        } else {
            return -1;
        }
        g = 1 + ((c->tier - 1) * SLO_SPACE_TOKENS + tl) * SLO_SPACE_REPLICA_VARIANTS + variant;
    }
    return ((c->retriever * SLO_SPACE_KS + kl) * 2 + (c->rerank ? 1 : 0)) * SLO_SPACE_GENERATORS + g;
}

int slo_space_key(int index, char *buf, size_t len) {
    struct slo_config c;
    if (!slo_space_config(index, &c))
        return -1;
    char rep[24] = "", tok[16] = "";
    if (c.replicas > 1)
        snprintf(rep, sizeof rep, "/x%d/%s", c.replicas, slo_aggregate_name(c.aggregate));
    if (c.tier != SLO_TIER_EXTRACTIVE)
        snprintf(tok, sizeof tok, "/t%d", c.max_tokens);
    int n = snprintf(buf, len, "%s/k%d%s/%s%s%s", slo_retriever_name(c.retriever), c.k, c.rerank ? "/rerank" : "",
                     slo_tier_name(c.tier), rep, tok);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* Reads a positive decimal number after prefix p: "k5" -> 5. */
static int number_after(const char *s, char p) {
    if (s[0] != p || s[1] < '1' || s[1] > '9' || strlen(s) > 6)
        return -1;
    char *end;
    long v = strtol(s + 1, &end, 10);
    return *end ? -1 : (int)v;
}

int slo_space_find(const char *key) {
    if (!key || strlen(key) >= SLO_KEY_MAX)
        return -1;
    char copy[SLO_KEY_MAX];
    strcpy(copy, key);
    char *part[8];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 8)
            return -1;
        part[n++] = t;
    }
    if (n < 3)
        return -1;
    struct slo_config c = {.replicas = 1, .aggregate = SLO_AGG_NONE};
    int i = 0, r;
    for (r = 0; r < SLO_RETRIEVERS && strcmp(part[i], slo_retriever_name((enum slo_retriever)r)); r++)
        ;
    if (r == SLO_RETRIEVERS)
        return -1;
    c.retriever = (enum slo_retriever)r;
    if ((c.k = number_after(part[++i], 'k')) < 0)
        return -1;
    if (strcmp(part[++i], "rerank") == 0) { /* n >= 3: part[2] exists */
        c.rerank = true;
        if (++i >= n)
            return -1;
    }
    int t = slo_tier_parse(part[i]);
    if (t < 0)
        return -1;
    c.tier = (enum slo_tier)t;
    i++;
    if (i < n && part[i][0] == 'x') {
        if ((c.replicas = number_after(part[i], 'x')) < 0 || ++i >= n)
            return -1;
        c.aggregate = strcmp(part[i], "vote") == 0         ? SLO_AGG_VOTE
                      : strcmp(part[i], "confidence") == 0 ? SLO_AGG_CONFIDENCE
                      : strcmp(part[i], "judge") == 0      ? SLO_AGG_JUDGE
                                                           : SLO_AGG_NONE;
        i++;
    }
    if (i < n && (c.max_tokens = number_after(part[i], 't')) >= 0)
        i++;
    if (i != n)
        return -1;
    int index = slo_space_index(&c);
    char canon[SLO_KEY_MAX];
    if (index < 0 || slo_space_key(index, canon, sizeof canon) < 0 || strcmp(canon, key) != 0)
        return -1;
    return index;
}

/* The k level a limit allows: levels <= max_k, and level 0 (k=3) when
 * max_k is below every level (the plan then clips k to max_k). */
static bool k_allowed(const struct slo_space_limits *lim, int k) {
    return k <= lim->max_k || k == slo_space_k_levels[0];
}

bool slo_space_allowed(const struct slo_space_limits *lim, int index) {
    struct slo_config c;
    if (!slo_space_config(index, &c))
        return false;
    if (!(lim->tiers & SLO_TIER_BIT(c.tier)) || !(lim->retrievers & (1u << c.retriever)))
        return false;
    if (c.rerank && !lim->reranker)
        return false;
    if (!k_allowed(lim, c.k))
        return false;
    if (c.tier != SLO_TIER_EXTRACTIVE) {
        if (c.replicas > (lim->max_replicas > 1 ? lim->max_replicas : 1))
            return false;
        /* The smallest token level is always allowed (clipped to the cap);
         * larger levels only when the cap exceeds the level below. */
        int tl = level_of(slo_space_token_levels, SLO_SPACE_TOKENS, c.max_tokens);
        if (tl > 0 && lim->max_tokens <= slo_space_token_levels[tl - 1])
            return false;
    }
    return true;
}

size_t slo_space_enumerate(const struct slo_space_limits *lim, int *ret, size_t max) {
    size_t n = 0;
    for (int i = 0; i < SLO_SPACE_SIZE; i++)
        if (slo_space_allowed(lim, i)) {
            if (n < max)
                ret[n] = i;
            n++;
        }
    return n;
}

void slo_space_apply(const struct slo_config *c, int max_tokens_cap, struct slo_plan *plan) {
    plan->retriever = c->retriever;
    plan->k = c->k;
    plan->rerank = c->rerank;
    plan->tier = c->tier;
    plan->replicas = c->replicas;
    plan->aggregate = c->aggregate;
    if (c->tier == SLO_TIER_EXTRACTIVE)
        plan->max_tokens = max_tokens_cap > 0 ? max_tokens_cap : slo_space_token_levels[0];
    else if (max_tokens_cap > 0 && max_tokens_cap < c->max_tokens)
        plan->max_tokens = max_tokens_cap;
    else
        plan->max_tokens = c->max_tokens;
}
