/* embed.h - deterministic text embeddings by feature hashing.
 *
 * Each content term of the text (see terms.h) adds +1 or -1 to one of dim
 * buckets, both chosen by a hash of the term; the vector is then scaled to
 * unit length.  Texts that share words therefore have a positive cosine,
 * texts that share none are near-orthogonal, and the same text always maps
 * to the same vector, whatever the seed. */
#ifndef SLORAG_LLMSIM_EMBED_H
#define SLORAG_LLMSIM_EMBED_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

/* Writes the unit-length embedding of s[0..n) into out[0..dim).  A text
 * without content words falls back to all its words, and one without
 * words to a hash of its bytes, so the vector is never zero. */
void sim_embed(const char *s, size_t n, float *out, size_t dim);

/* Appends base64 of the vector's little-endian float32 bytes. */
enum err sim_embed_base64(const float *v, size_t dim, struct buf *out);

#endif
