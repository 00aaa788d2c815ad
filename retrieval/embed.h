/* embed.h - text embedders.
 *
 * An embedder turns texts into L2-normalised float vectors of a fixed
 * dimension.  The built-in one needs no model files (feature hashing over
 * stemmed words and their character trigrams); an HTTP one speaking the
 * OpenAI /v1/embeddings format can sit behind the same interface. */
#ifndef SLORAG_EMBED_H
#define SLORAG_EMBED_H

#include <stddef.h>
#include "err.h"

struct ret_embedder;

struct ret_embedder_ops {
    const char *name;
    /* Writes n*dim floats to ret_vecs. */
    enum err (*embed)(struct ret_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                      float *ret_vecs);
    void (*free)(struct ret_embedder *e);
};

struct ret_embedder {
    const struct ret_embedder_ops *ops;
    int dim;
};

/* dim in 16..4096. */
enum err ret_embedder_builtin_new(int dim, struct ret_embedder **ret_e);
struct ret_embedder *ret_embedder_free(struct ret_embedder *e);

static inline enum err ret_embed(struct ret_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                                 float *ret_vecs) {
    return e->ops->embed(e, texts, lens, n, ret_vecs);
}

#endif
