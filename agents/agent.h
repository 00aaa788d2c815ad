/* agent.h - the agent interface.
 *
 * An agent is a `const struct agent_ops` vtable (Redis ConnectionType style)
 * registered in one static table in agent.c; config names agents by string
 * and unknown names are rejected at start-up.  Agents are stateless per
 * call: everything a call allocates comes from ctx->arena. */
#ifndef SLORAG_AGENT_H
#define SLORAG_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "err.h"
#include "engine.h"
#include "store.h"
#include "util.h"

enum agent_kind {
    AGENT_RETRIEVER = 1u << 0,
    AGENT_GENERATOR = 1u << 1,
    AGENT_RERANKER = 1u << 2,
    AGENT_AGGREGATOR = 1u << 3,
};

struct agent_ctx {
    struct arena *arena;     /* the request's pool */
    struct ret_engine *engine; /* borrowed */
    int64_t deadline_us;     /* absolute, on clock_us(); 0 = none */
};

struct agent_citation {
    const struct ret_hit *hit; /* points into agent_io.hits */
    int64_t start, end;        /* byte offsets of the quoted span in the document */
    const char *snippet;       /* arena-owned */
};

/* A word of a passage that stems to question terms: its byte range and
 * the terms it is, a bit each (index in the question's list). */
struct agent_term_at {
    size_t start, end;
    uint32_t mask;
};

struct agent_passage_terms {
    const char *text;              /* the passage read (a hit's text) */
    uint64_t signature;            /* of the term list (agent_terms_signature) */
    const struct agent_term_at *v; /* in text order */
    size_t n;
    uint32_t mask;                 /* the terms the passage holds */
};

/* A signature of a question's content-term list: its stems in order. */
static inline uint64_t agent_terms_signature(const char *const *stems, size_t n) {
    uint64_t h = UTIL_FNV64_BASIS ^ n;
    for (size_t i = 0; i < n; i++)
        h = util_fnv64(h, stems[i], strlen(stems[i]) + 1); /* each with its NUL */
    return h;
}

/* One call's inputs and outputs; each agent reads and writes its part. */
struct agent_io {
    /* inputs */
    const char *question;
    int64_t collection_id;
    int k;
    double min_confidence;
    int max_tokens;

    /* retriever output, generator input */
    struct ret_hit *hits;       /* arena-owned, best first */
    size_t nhits;
    struct ret_scored *scored;  /* per-retriever detail for hits, same order */
    struct ret_signals signals; /* for the planner's stage gates */

    /* reranker output: how much it changed the first-stage order */
    struct agent_rerank_report {
        int candidates, kept; /* passages in, passages kept (io->k) */
        int moved;            /* kept passages whose rank changed */
        bool top_changed;     /* a different passage is now first */
        double displacement;  /* mean |old rank - new rank| over the kept */
        double top_score;     /* the reranker's score of the new first, 0..1 */
    } rerank;

    /* Also from the reranker: where each kept passage's words stem to the
     * question's content terms (the extractive reader's question terms
     * too), so that the reader does not stem the passage again.  Parallel
     * to hits; NULL when the reranker did not run.  The reader uses an
     * entry only when its text and the term list's signature are its own
     * (agent_terms_signature). */
    const struct agent_passage_terms *pterms;

    /* generator output */
    const char *answer;
    double confidence;
    bool abstained;
    const char *abstain_reason; /* static string */
    struct agent_citation *citations;
    size_t ncitations;
    int input_tokens;
    int output_tokens;
};

struct agent_ops {
    const char *name;
    unsigned kind; /* enum agent_kind bits */
    enum err (*init)(void **ret_state);
    enum err (*run)(void *state, struct agent_ctx *ctx, struct agent_io *io);
    enum err (*health)(void *state);
    void (*fini)(void *state);
};

/* NULL when no agent has that name. */
const struct agent_ops *agent_find(const char *name);

extern const struct agent_ops agent_lexical;
extern const struct agent_ops agent_dense;
extern const struct agent_ops agent_hybrid;
extern const struct agent_ops agent_extractive;
extern const struct agent_ops agent_rerank;

#endif
