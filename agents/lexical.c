/* lexical.c - the BM25 retriever agent over the store's FTS5 index. */
#include "agent.h"

static enum err lexical_run(void *state, struct agent_ctx *ctx, struct agent_io *io) {
    (void)state;
    return ret_search_lexical(ctx->store, io->collection_id, io->question, io->k, ctx->arena, &io->hits,
                              &io->nhits);
}

const struct agent_ops agent_lexical = {
    .name = "lexical",
    .kind = AGENT_RETRIEVER,
    .run = lexical_run,
};
