/* retrievers.c - the retriever agents: lexical (FTS5 BM25), dense (FAISS
 * over the built-in embedder) and hybrid (reciprocal rank fusion of both).
 * All three go through the retrieval engine, which also reports the signals
 * (top score, margin, dense/lexical overlap) the stage gates read. */
#include "agent.h"

static enum err run_mode(struct agent_ctx *ctx, struct agent_io *io, enum ret_mode mode) {
    struct ret_scored *res = NULL;
    size_t n = 0;
    enum err e = ret_engine_search(ctx->engine, io->collection_id, io->question, io->k, mode, ctx->arena, &res, &n,
                                   &io->signals);
    if (e)
        return e;
    struct ret_hit *hits = arena_calloc(ctx->arena, n + 1, sizeof(*hits));
    if (!hits)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        hits[i] = res[i].hit;
    io->hits = hits;
    io->nhits = n;
    io->scored = res;
    return ERR_OK;
}

static enum err lexical_run(void *state, struct agent_ctx *ctx, struct agent_io *io) {
    (void)state;
    return run_mode(ctx, io, RET_MODE_LEXICAL);
}

static enum err dense_run(void *state, struct agent_ctx *ctx, struct agent_io *io) {
    (void)state;
    return run_mode(ctx, io, RET_MODE_DENSE);
}

static enum err hybrid_run(void *state, struct agent_ctx *ctx, struct agent_io *io) {
    (void)state;
    return run_mode(ctx, io, RET_MODE_HYBRID);
}

const struct agent_ops agent_lexical = {.name = "lexical", .kind = AGENT_RETRIEVER, .run = lexical_run};
const struct agent_ops agent_dense = {.name = "dense", .kind = AGENT_RETRIEVER, .run = dense_run};
const struct agent_ops agent_hybrid = {.name = "hybrid", .kind = AGENT_RETRIEVER, .run = hybrid_run};
